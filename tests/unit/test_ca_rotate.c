/* tests/unit/test_ca_rotate.c — CA rotation: prepare publishes the new root,
 * activate switches signing, prune drops the old root only once none of its
 * leaves is live; leaves from either CA verify against the bundle throughout. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/csr.h"
#include "tests/unit/test_ca_util.h"

static char *bundle(tca_env *e)
{
    char *b = NULL;
    mesh_err err = {0};
    cr_assert_eq(ca_bundle_pem(e->st, &b, &err), MESH_OK, "%s", err.msg);
    return b;
}

/* 0 if leaf verifies against the current bundle with openssl. */
static int verify(tca_env *e, const char *leaf_pem)
{
    char *b = bundle(e);
    char bp[256], lp[256], out[4096];
    snprintf(bp, sizeof bp, "%s/bundle.pem", e->dir);
    snprintf(lp, sizeof lp, "%s/leaf.pem", e->dir);
    tca_write(bp, b);
    tca_write(lp, leaf_pem);
    free(b);
    return tca_sh(out, sizeof out, "openssl verify -x509_strict -CAfile %s %s", bp, lp);
}

static const char *state_of(tca_env *e, int64_t id, char *buf, size_t len)
{
    store_ca *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_ca_list(e->st, &list, &n, &err), MESH_OK);
    snprintf(buf, len, "(none)");
    for (size_t i = 0; i < n; i++)
        if (list[i].id == id)
            snprintf(buf, len, "%s", list[i].state);
    store_ca_free_list(list, n);
    return buf;
}

static int64_t prepare(tca_env *e, const char *td)
{
    ca_init_opts o = {.trust_domain = td, .key_dir = e->keydir};
    int64_t id = 0;
    mesh_err err = {0};
    cr_assert_eq(ca_prepare(e->st, &o, &id, &err), MESH_OK, "%s", err.msg);
    return id;
}

Test(ca_rotate, prepare_activate_prune_with_overlap)
{
    tca_env e;
    tca_setup(&e);
    char s[32];
    int64_t old_id = tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    ca_issued old_leaf;
    tca_issue(ca, e.st, TCA_ID_WEB, 60, &old_leaf);
    ca_free(ca);
    char *b = bundle(&e);
    cr_assert_eq(tca_count(b, "BEGIN CERTIFICATE"), 1);
    free(b);

    /* prepare: new root published, old CA still signs */
    int64_t new_id = prepare(&e, NULL); /* trust domain taken from the store */
    cr_assert_neq(new_id, old_id);
    cr_assert_str_eq(state_of(&e, new_id, s, sizeof s), "prepared");
    b = bundle(&e);
    cr_assert_eq(tca_count(b, "BEGIN CERTIFICATE"), 2, "old + new after prepare");
    free(b);
    ca = tca_load(&e);
    cr_assert_eq(ca_id(ca), old_id, "prepared CA does not sign yet");
    ca_free(ca);
    cr_assert_eq(verify(&e, old_leaf.cert_pem), 0);

    /* activate: new signs, old retired but still in the bundle */
    mesh_err err = {0};
    cr_assert_eq(ca_activate(e.st, new_id, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(state_of(&e, old_id, s, sizeof s), "retired");
    cr_assert_str_eq(state_of(&e, new_id, s, sizeof s), "active");
    cr_assert_eq(tca_audit_count(e.st, "ca.activate", 1), 1);
    b = bundle(&e);
    cr_assert_eq(tca_count(b, "BEGIN CERTIFICATE"), 2, "old + new after activate");
    free(b);
    ca = tca_load(&e);
    cr_assert_eq(ca_id(ca), new_id);
    ca_issued new_leaf;
    tca_issue(ca, e.st, TCA_ID_WEB, 3600, &new_leaf);
    ca_free(ca);
    store_cert row;
    cr_assert_eq(store_cert_get(e.st, new_leaf.serial_hex, &row, &err), MESH_OK);
    cr_assert_eq(row.ca_id, new_id);
    store_cert_free(&row);
    /* overlap: both leaves verify against the one bundle */
    cr_assert_eq(verify(&e, old_leaf.cert_pem), 0, "old leaf during overlap");
    cr_assert_eq(verify(&e, new_leaf.cert_pem), 0, "new leaf");

    /* prune while the old leaf is live: nothing removed */
    int removed = -1;
    cr_assert_eq(ca_prune(e.st, time(NULL), &removed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(removed, 0);
    cr_assert_str_eq(state_of(&e, old_id, s, sizeof s), "retired");
    /* after the old leaf's expiry: the old root leaves the bundle */
    cr_assert_eq(ca_prune(e.st, old_leaf.not_after + 1, &removed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(removed, 1);
    cr_assert_str_eq(state_of(&e, old_id, s, sizeof s), "removed");
    cr_assert_str_eq(state_of(&e, new_id, s, sizeof s), "active", "active CA never pruned");
    b = bundle(&e);
    cr_assert_eq(tca_count(b, "BEGIN CERTIFICATE"), 1);
    cr_assert_eq(verify(&e, new_leaf.cert_pem), 0);
    cr_assert_neq(verify(&e, old_leaf.cert_pem), 0, "old root is gone from the bundle");
    free(b);
    cr_assert_eq(tca_audit_count(e.st, "ca.remove", 1), 1);
    /* pruning again is a no-op */
    cr_assert_eq(ca_prune(e.st, old_leaf.not_after + 1, &removed, &err), MESH_OK);
    cr_assert_eq(removed, 0);

    /* a second rotation works the same way */
    int64_t third = prepare(&e, TCA_TD);
    cr_assert_eq(ca_activate(e.st, third, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(state_of(&e, new_id, s, sizeof s), "retired");

    ca_issued_free(&old_leaf);
    ca_issued_free(&new_leaf);
    tca_teardown(&e);
}

Test(ca_rotate, prepare_preconditions)
{
    tca_env e;
    tca_setup(&e);
    ca_init_opts o = {.trust_domain = TCA_TD, .key_dir = e.keydir};
    mesh_err err = {0};
    int64_t id = 0;
    cr_assert_eq(ca_prepare(e.st, &o, &id, &err), MESH_ENOTFOUND);
    cr_assert(strstr(err.msg, "meshctl ca init"), "%s", err.msg);
    tca_init(&e, NULL, 0);
    o.trust_domain = "other.org";
    cr_assert_eq(ca_prepare(e.st, &o, &id, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "belongs to trust domain 'example.org'"), "%s", err.msg);
    o.trust_domain = TCA_TD;
    int64_t p = prepare(&e, TCA_TD);
    cr_assert_eq(ca_prepare(e.st, &o, &id, &err), MESH_EEXISTS);
    cr_assert(strstr(err.msg, "already prepared"), "%s", err.msg);
    /* the refused prepares left no key files: init + one prepare = 2 */
    char out[64];
    tca_sh(out, sizeof out, "ls %s | wc -l", e.keydir);
    cr_assert_eq(atoi(out), 2, "%s", out);
    (void)p;
    tca_teardown(&e);
}

Test(ca_rotate, activate_errors_change_nothing)
{
    tca_env e;
    tca_setup(&e);
    int64_t first = tca_init(&e, NULL, 0);
    mesh_err err = {0};
    char s[32];
    cr_assert_eq(ca_activate(e.st, 999, &err), MESH_ENOTFOUND);
    cr_assert_eq(ca_activate(e.st, first, &err), MESH_EEXISTS);
    cr_assert(strstr(err.msg, "already active"), "%s", err.msg);

    int64_t next = prepare(&e, TCA_TD);
    /* the prepared CA's key has gone missing: activation must refuse */
    store_ca *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_ca_list(e.st, &list, &n, &err), MESH_OK);
    char key_path[512] = "";
    for (size_t i = 0; i < n; i++)
        if (list[i].id == next)
            snprintf(key_path, sizeof key_path, "%s", list[i].key_path);
    store_ca_free_list(list, n);
    char moved[600];
    snprintf(moved, sizeof moved, "%s.away", key_path);
    cr_assert_eq(rename(key_path, moved), 0);
    cr_assert_eq(ca_activate(e.st, next, &err), MESH_ENOTFOUND);
    cr_assert(strstr(err.msg, "missing"), "%s", err.msg);
    cr_assert_str_eq(state_of(&e, first, s, sizeof s), "active", "rolled back");
    cr_assert_str_eq(state_of(&e, next, s, sizeof s), "prepared");
    cr_assert_eq(rename(moved, key_path), 0);
    cr_assert_eq(ca_activate(e.st, next, &err), MESH_OK, "%s", err.msg);
    /* a retired CA cannot be re-activated */
    cr_assert_eq(ca_activate(e.st, first, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "only a prepared CA"), "%s", err.msg);
    tca_teardown(&e);
}

Test(ca_rotate, rotation_to_other_key_type)
{
    /* P-256 root replaced by a P-384 one (trust domain taken from the
     * store); the new CA signs with SHA-384 and its leaves verify. */
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    ca_init_opts o = {.key_dir = e.keydir, .key_type = "ec-p384"};
    int64_t id = 0;
    mesh_err err = {0};
    cr_assert_eq(ca_prepare(e.st, &o, &id, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca_activate(e.st, id, &err), MESH_OK, "%s", err.msg);
    mesh_ca *ca = tca_load(&e);
    ca_issued leaf;
    tca_issue(ca, e.st, TCA_ID_DB, 60, &leaf);
    char out[16384], p[256];
    snprintf(p, sizeof p, "%s/l.pem", e.dir);
    tca_write(p, leaf.cert_pem);
    tca_sh(out, sizeof out, "openssl x509 -in %s -noout -text", p);
    cr_assert(strstr(out, "ecdsa-with-SHA384"), "P-384 CA signs with SHA-384: %s", out);
    cr_assert_eq(verify(&e, leaf.cert_pem), 0);
    ca_issued_free(&leaf);
    ca_free(ca);
    tca_teardown(&e);
}
