/* tests/unit/test_ca_rollout.c — safe CA activation and pruning: each proxy-status row
 * judged against the prepared CA's root from the trust bundle meshd recorded it ACKed
 * (ready, lagging, offline, gone, no-sds), activation refused while any blocks and
 * nothing changed, --force activating with the laggards in the audit, the check made
 * inside the activating transaction, and what keeps a retired CA in the bundle. Also
 * the fingerprint helpers those decisions rest on. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"
#include "tests/unit/test_ca_util.h"

#define SECRET_URL "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
#define LDS_URL "type.googleapis.com/envoy.config.listener.v3.Listener"

static store_ca ca_row(tca_env *e, int64_t id)
{
    store_ca *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_ca_list(e->st, &list, &n, &err), MESH_OK);
    store_ca out;
    memset(&out, 0, sizeof out);
    for (size_t i = 0; i < n; i++)
        if (list[i].id == id) {
            out = list[i];
            memset(&list[i], 0, sizeof list[i]);
        }
    store_ca_free_list(list, n);
    cr_assert_eq(out.id, id, "no CA %lld", (long long)id);
    return out;
}

static const char *state_of(tca_env *e, int64_t id, char *buf, size_t len)
{
    store_ca c = ca_row(e, id);
    snprintf(buf, len, "%s", c.state);
    store_ca_free(&c);
    return buf;
}

static void root_fp(tca_env *e, int64_t id, char out[65])
{
    store_ca c = ca_row(e, id);
    mesh_err err = {0};
    cr_assert_eq(ca_root_info(&c, NULL, out, &err), MESH_OK, "%s", err.msg);
    store_ca_free(&c);
}

static int64_t prepare(tca_env *e)
{
    ca_init_opts o = {.key_dir = e->keydir};
    int64_t id = 0;
    mesh_err err = {0};
    cr_assert_eq(ca_prepare(e->st, &o, &id, &err), MESH_OK, "%s", err.msg);
    return id;
}

/* A proxy row as meshd writes it; secrets = it was sent an SDS response. */
static void proxy_as(tca_env *e, const char *id, const char *node, int connected,
                     int64_t svid_na, int64_t seen, int secrets)
{
    mesh_err err = {0};
    cr_assert_eq(store_proxy_upsert(e->st, node, id, "127.0.0.1:1", 1, svid_na, "m1", seen, &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(store_proxy_type_update(e->st, node, id, secrets ? SECRET_URL : LDS_URL, "v1",
                                         "v1", NULL, NULL, seen, &err),
                 MESH_OK, "%s", err.msg);
    if (!connected)
        cr_assert_eq(store_proxy_upsert(e->st, node, id, NULL, 0, svid_na, "m1", seen, &err),
                     MESH_OK, "%s", err.msg);
}

static void proxy(tca_env *e, const char *node, int connected, int64_t svid_na, int64_t seen,
                  int secrets)
{
    proxy_as(e, TCA_ID_WEB, node, connected, svid_na, seen, secrets);
}

static void acked_as(tca_env *e, const char *id, const char *node, const char *roots)
{
    mesh_err err = {0};
    cr_assert_eq(store_proxy_trust_set(e->st, node, id, roots, "m1", time(NULL), &err),
                 MESH_OK, "%s", err.msg);
}

static void acked(tca_env *e, const char *node, const char *roots)
{
    acked_as(e, TCA_ID_WEB, node, roots);
}

static const ca_rollout_peer *peer_as(const ca_rollout *r, const char *id, const char *node)
{
    for (size_t i = 0; i < r->n_peers; i++)
        if (strcmp(r->peers[i].node_id, node) == 0 && strcmp(r->peers[i].spiffe_id, id) == 0)
            return &r->peers[i];
    cr_assert_fail("no peer %s (%s)", node, id);
    return NULL;
}

static const ca_rollout_peer *peer(const ca_rollout *r, const char *node)
{
    return peer_as(r, TCA_ID_WEB, node);
}

Test(ca_rollout, fingerprints_sorted_deduplicated_and_matched_whole)
{
    tca_env e;
    tca_setup(&e);
    int64_t a = tca_init(&e, NULL, 0);
    int64_t b = prepare(&e);
    char fa[65], fb[65];
    root_fp(&e, a, fa);
    root_fp(&e, b, fb);
    cr_assert_eq(strlen(fa), 64);
    cr_assert_str_neq(fa, fb);
    char *bundle = NULL, *csv = NULL;
    mesh_err err = {0};
    cr_assert_eq(ca_bundle_pem(e.st, &bundle, &err), MESH_OK, "%s", err.msg);
    /* the same root twice names the same set */
    size_t bl = strlen(bundle);
    char *twice = malloc(2 * bl + 1);
    memcpy(twice, bundle, bl);
    memcpy(twice + bl, bundle, bl + 1);
    cr_assert_eq(ca_bundle_fingerprints(twice, &csv, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(strlen(csv), 64 * 2 + 1, "%s", csv);
    const char *lo = strcmp(fa, fb) < 0 ? fa : fb, *hi = lo == fa ? fb : fa;
    char want[200];
    snprintf(want, sizeof want, "%s,%s", lo, hi);
    cr_assert_str_eq(csv, want);
    cr_assert(ca_fingerprints_contain(csv, fa));
    cr_assert(ca_fingerprints_contain(csv, fb));
    char prefix[65];
    memcpy(prefix, fa, 64);
    prefix[63] = prefix[63] == '0' ? '1' : '0';
    prefix[64] = '\0';
    cr_assert_not(ca_fingerprints_contain(csv, prefix), "one digit off");
    cr_assert_not(ca_fingerprints_contain(csv, "abc"), "a short string is no fingerprint");
    cr_assert_not(ca_fingerprints_contain("", fa));
    cr_assert_not(ca_fingerprints_contain(NULL, fa));
    free(csv);
    csv = NULL;
    /* the fingerprint is what `openssl x509 -fingerprint -sha256` shows */
    store_ca c = ca_row(&e, a);
    char path[256], out[256];
    snprintf(path, sizeof path, "%s/root.pem", e.dir);
    tca_write(path, c.cert_pem);
    store_ca_free(&c);
    cr_assert_eq(tca_sh(out, sizeof out,
                        "openssl x509 -in %s -noout -fingerprint -sha256 | cut -d= -f2 | tr -d ':' "
                        "| tr A-F a-f",
                        path),
                 0);
    out[64] = '\0';
    cr_assert_str_eq(out, fa);
    cr_assert_neq(ca_bundle_fingerprints("not a certificate", &csv, &err), MESH_OK);
    free(twice);
    free(bundle);
    tca_teardown(&e);
}

Test(ca_rollout, each_proxy_judged_against_the_new_root)
{
    tca_env e;
    tca_setup(&e);
    int64_t old_id = tca_init(&e, NULL, 0);
    int64_t new_id = prepare(&e);
    char f_old[65], f_new[65], both[140];
    root_fp(&e, old_id, f_old);
    root_fp(&e, new_id, f_new);
    snprintf(both, sizeof both, "%s,%s", strcmp(f_old, f_new) < 0 ? f_old : f_new,
             strcmp(f_old, f_new) < 0 ? f_new : f_old);
    int64_t now = time(NULL);
    int64_t day = 24 * 3600;
    proxy(&e, "ready-up", 1, now + day, now, 1);
    acked(&e, "ready-up", both);
    proxy(&e, "ready-down", 0, now + day, now - 60, 1); /* ACKed, then left: its pool has it */
    acked(&e, "ready-down", both);
    proxy(&e, "lagging", 1, now + day, now, 1);
    acked(&e, "lagging", f_old);
    proxy(&e, "lagging-never", 1, now + day, now, 1);    /* subscribed, never ACKed a bundle */
    proxy(&e, "offline", 0, now + day, now - 300, 1);
    acked(&e, "offline", f_old);
    /* expired 2 days ago: could still recover by itself (grace 7 days) */
    proxy(&e, "offline-expired", 0, now - 2 * day, now - 3 * day, 1);
    acked(&e, "offline-expired", f_old);
    proxy(&e, "gone", 0, now - 8 * day, now - 9 * day, 1);
    acked(&e, "gone", f_old);
    proxy(&e, "proxyless", 1, 0, now, 0);

    ca_rollout r;
    mesh_err err = {0};
    cr_assert_eq(ca_rollout_check(e.st, new_id, now, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(r.root_sha256, f_new);
    cr_assert_eq(r.n_peers, 8);
    cr_assert_eq(peer(&r, "ready-up")->state, CA_PEER_READY);
    cr_assert_eq(peer(&r, "ready-down")->state, CA_PEER_READY);
    cr_assert_eq(peer(&r, "lagging")->state, CA_PEER_LAGGING);
    cr_assert_eq(peer(&r, "lagging-never")->state, CA_PEER_LAGGING);
    cr_assert_eq(peer(&r, "offline")->state, CA_PEER_OFFLINE);
    cr_assert_eq(peer(&r, "offline-expired")->state, CA_PEER_OFFLINE);
    cr_assert_eq(peer(&r, "gone")->state, CA_PEER_GONE);
    cr_assert_eq(peer(&r, "proxyless")->state, CA_PEER_NO_TRUST);
    cr_assert_eq(peer(&r, "offline")->trust_roots, 1);
    cr_assert_eq(peer(&r, "ready-up")->trust_roots, 2);
    cr_assert_eq(peer(&r, "lagging-never")->trust_acked_at, 0);
    cr_assert_eq(ca_rollout_blocking(&r), 4);
    cr_assert_eq(r.count[CA_PEER_READY], 2);
    cr_assert_eq(r.count[CA_PEER_GONE], 1);
    cr_assert_str_eq(ca_peer_state_name(CA_PEER_OFFLINE), "offline");
    ca_rollout_free(&r);
    /* the old (active) CA's root is in every bundle */
    cr_assert_eq(ca_rollout_check(e.st, old_id, now, &r, &err), MESH_OK);
    cr_assert_eq(ca_rollout_blocking(&r), 1, "only the one that never ACKed a bundle");
    ca_rollout_free(&r);
    cr_assert_eq(ca_rollout_check(e.st, 999, now, &r, &err), MESH_ENOTFOUND);
    tca_teardown(&e);
}

Test(ca_rollout, activation_waits_for_every_blocking_sidecar)
{
    tca_env e;
    tca_setup(&e);
    int64_t old_id = tca_init(&e, NULL, 0);
    int64_t new_id = prepare(&e);
    char f_old[65], f_new[65], both[140];
    root_fp(&e, old_id, f_old);
    root_fp(&e, new_id, f_new);
    snprintf(both, sizeof both, "%s,%s", strcmp(f_old, f_new) < 0 ? f_old : f_new,
             strcmp(f_old, f_new) < 0 ? f_new : f_old);
    int64_t now = time(NULL);
    proxy(&e, "web-1", 1, now + 3600, now, 1);
    acked(&e, "web-1", both);
    proxy(&e, "api-1", 0, now + 3600, now - 30, 1);
    acked(&e, "api-1", f_old);

    ca_rollout r;
    mesh_err err = {0};
    char s[32];
    cr_assert_eq(ca_activate_safely(e.st, new_id, now, 0, &r, &err), MESH_EBUSY);
    cr_assert(strstr(err.msg, "1 sidecar(s)"), "%s", err.msg);
    cr_assert_eq(ca_rollout_blocking(&r), 1);
    cr_assert_eq(peer(&r, "api-1")->state, CA_PEER_OFFLINE);
    ca_rollout_free(&r);
    cr_assert_str_eq(state_of(&e, new_id, s, sizeof s), "prepared", "nothing changed");
    cr_assert_str_eq(state_of(&e, old_id, s, sizeof s), "active");
    cr_assert_eq(tca_audit_count(e.st, "ca.activate", 1), 0);

    /* api-1 comes back and ACKs the bundle with both roots */
    acked(&e, "api-1", both);
    cr_assert_eq(ca_activate_safely(e.st, new_id, now, 0, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca_rollout_blocking(&r), 0);
    ca_rollout_free(&r);
    cr_assert_str_eq(state_of(&e, new_id, s, sizeof s), "active");
    cr_assert_str_eq(state_of(&e, old_id, s, sizeof s), "retired");
    cr_assert_eq(tca_audit_count(e.st, "ca.activate", 1), 1);

    /* activating the now-active CA again is an error, not a wait */
    cr_assert_eq(ca_activate_safely(e.st, new_id, now, 0, &r, &err), MESH_EEXISTS);
    ca_rollout_free(&r);
    tca_teardown(&e);
}

Test(ca_rollout, force_activates_and_audits_the_laggards)
{
    tca_env e;
    tca_setup(&e);
    int64_t old_id = tca_init(&e, NULL, 0);
    int64_t new_id = prepare(&e);
    char f_old[65];
    root_fp(&e, old_id, f_old);
    int64_t now = time(NULL);
    proxy(&e, "db-1", 0, now + 3600, now - 30, 1);
    acked(&e, "db-1", f_old);
    proxy(&e, "cache-1", 1, now + 3600, now, 1);
    ca_rollout r;
    mesh_err err = {0};
    char s[32];
    cr_assert_eq(ca_activate_safely(e.st, new_id, now, 1, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca_rollout_blocking(&r), 2, "the caller learns whom to warn about");
    ca_rollout_free(&r);
    cr_assert_str_eq(state_of(&e, new_id, s, sizeof s), "active");
    store_audit_entry *a = NULL;
    size_t n = 0;
    cr_assert_eq(store_audit_list(e.st, 5, &a, &n, &err), MESH_OK);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i].action, "ca.activate") == 0) {
            found = 1;
            cr_assert(strstr(a[i].detail, "forced: 2 sidecar(s)"), "%s", a[i].detail);
            cr_assert(strstr(a[i].detail, "db-1"), "%s", a[i].detail);
            cr_assert(strstr(a[i].detail, "cache-1"), "%s", a[i].detail);
        }
    store_audit_free_list(a, n);
    cr_assert(found);
    tca_teardown(&e);
}

Test(ca_rollout, no_sidecars_means_nothing_to_wait_for)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    int64_t new_id = prepare(&e);
    int64_t id = 0;
    mesh_err err = {0};
    cr_assert_eq(ca_prepared_id(e.st, &id, &err), MESH_OK);
    cr_assert_eq(id, new_id);
    ca_rollout r;
    cr_assert_eq(ca_activate_safely(e.st, new_id, time(NULL), 0, &r, &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_eq(r.n_peers, 0);
    ca_rollout_free(&r);
    cr_assert_eq(ca_prepared_id(e.st, &id, &err), MESH_ENOTFOUND);
    tca_teardown(&e);
}

Test(ca_rollout, retired_ca_kept_until_its_last_leaf_expires)
{
    tca_env e;
    tca_setup(&e);
    int64_t old_id = tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    ca_issued l1, l2;
    tca_issue(ca, e.st, TCA_ID_WEB, 60, &l1);
    tca_issue(ca, e.st, TCA_ID_DB, 300, &l2);
    ca_free(ca);
    int64_t new_id = prepare(&e);
    mesh_err err = {0};
    cr_assert_eq(ca_activate(e.st, new_id, &err), MESH_OK, "%s", err.msg);
    ca_retired *r = NULL;
    size_t n = 0;
    int64_t now = time(NULL);
    cr_assert_eq(ca_retired_list(e.st, now, &r, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_eq(r[0].ca_id, old_id);
    cr_assert_eq(r[0].live, 2);
    cr_assert_eq(r[0].last_not_after, l2.not_after, "the later of the two");
    free(r);
    cr_assert_eq(ca_retired_list(e.st, l1.not_after + 1, &r, &n, &err), MESH_OK);
    cr_assert_eq(r[0].live, 1);
    free(r);
    cr_assert_eq(ca_retired_list(e.st, l2.not_after + 1, &r, &n, &err), MESH_OK);
    cr_assert_eq(r[0].live, 0);
    cr_assert_eq(r[0].last_not_after, 0);
    free(r);
    int removed = 0;
    cr_assert_eq(ca_prune(e.st, l2.not_after, &removed, &err), MESH_OK);
    cr_assert_eq(removed, 0, "at notAfter the leaf is still valid");
    cr_assert_eq(ca_prune(e.st, l2.not_after + 1, &removed, &err), MESH_OK);
    cr_assert_eq(removed, 1);
    cr_assert_eq(ca_retired_list(e.st, now, &r, &n, &err), MESH_OK);
    cr_assert_eq(n, 0);
    free(r);
    ca_issued_free(&l1);
    ca_issued_free(&l2);
    tca_teardown(&e);
}

Test(ca_rollout, proxy_trust_rows)
{
    tca_env e;
    tca_setup(&e);
    mesh_err err = {0};
    cr_assert_eq(store_proxy_trust_set(e.st, "n1", TCA_ID_WEB, "aa", "m1", 10, &err), MESH_OK);
    cr_assert_eq(store_proxy_trust_set(e.st, "n0", TCA_ID_WEB, "bb", NULL, 11, &err), MESH_OK);
    cr_assert_eq(store_proxy_trust_set(e.st, "n1", TCA_ID_WEB, "cc", NULL, 12, &err), MESH_OK);
    cr_assert_eq(store_proxy_trust_set(e.st, "n1", TCA_ID_DB, "dd", NULL, 13, &err), MESH_OK,
                 "another identity's n1 is another row");
    cr_assert_eq(store_proxy_trust_set(e.st, "", TCA_ID_WEB, "cc", NULL, 12, &err), MESH_EINVAL);
    cr_assert_eq(store_proxy_trust_set(e.st, "n2", "", "cc", NULL, 12, &err), MESH_EINVAL);
    cr_assert_eq(store_proxy_trust_set(e.st, "n2", NULL, "cc", NULL, 12, &err), MESH_EINVAL);
    cr_assert_eq(store_proxy_trust_set(e.st, "n2", TCA_ID_WEB, NULL, NULL, 12, &err),
                 MESH_EINVAL);
    store_proxy_trust *t = NULL;
    size_t n = 0;
    cr_assert_eq(store_proxy_trust_list(e.st, &t, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 3);
    /* ordered by (identity, node): .../db before .../web */
    cr_assert_str_eq(t[0].spiffe_id, TCA_ID_DB);
    cr_assert_str_eq(t[0].roots, "dd");
    cr_assert_str_eq(t[1].node_id, "n0");
    cr_assert_str_eq(t[2].node_id, "n1");
    cr_assert_str_eq(t[2].spiffe_id, TCA_ID_WEB);
    cr_assert_str_eq(t[2].roots, "cc", "the newest ACK wins");
    cr_assert_eq(t[2].acked_at, 12);
    cr_assert_str_eq(t[2].meshd_instance, "m1", "NULL keeps the instance");
    store_proxy_trust_free_list(t, n);
    tca_teardown(&e);
}

/* A client with its own valid SVID that names itself like another sidecar
 * (Node.id) and ACKs the new bundle speaks only for its own row: the real
 * sidecar, which has not, still blocks the activation. */
Test(ca_rollout, an_impostor_node_id_cannot_ack_for_another_identity)
{
    tca_env e;
    tca_setup(&e);
    int64_t old_id = tca_init(&e, NULL, 0);
    int64_t new_id = prepare(&e);
    char f_old[65], f_new[65], both[140];
    root_fp(&e, old_id, f_old);
    root_fp(&e, new_id, f_new);
    snprintf(both, sizeof both, "%s,%s", strcmp(f_old, f_new) < 0 ? f_old : f_new,
             strcmp(f_old, f_new) < 0 ? f_new : f_old);
    int64_t now = time(NULL);
    proxy_as(&e, TCA_ID_WEB, "web-1", 1, now + 3600, now, 1);
    acked_as(&e, TCA_ID_WEB, "web-1", f_old);
    proxy_as(&e, TCA_ID_DB, "web-1", 1, now + 3600, now, 1);
    acked_as(&e, TCA_ID_DB, "web-1", both);
    ca_rollout r;
    mesh_err err = {0};
    cr_assert_eq(ca_activate_safely(e.st, new_id, now, 0, &r, &err), MESH_EBUSY);
    cr_assert_eq(r.n_peers, 2);
    cr_assert_eq(peer_as(&r, TCA_ID_WEB, "web-1")->state, CA_PEER_LAGGING);
    cr_assert_eq(peer_as(&r, TCA_ID_DB, "web-1")->state, CA_PEER_READY);
    cr_assert_eq(ca_rollout_blocking(&r), 1);
    ca_rollout_free(&r);
    tca_teardown(&e);
}
