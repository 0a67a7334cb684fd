/* tests/unit/test_meshd_status.c — what meshd writes for `meshctl proxy-status`: the node
 * table and its rows (meshd/meshd_status_rows.c), and the writer thread that applies
 * queued events in batches (meshd/meshd_status.c). Real store (tsd_env). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "meshd/meshd_internal.h"
#include "meshd/meshd_status_rows.h"
#include "tests/unit/test_meshd_util.h"
#include "tests/unit/test_sds_util.h"

#define NODE "web-1"
#define CDS XDS_TYPE_URL_CLUSTER

static tsd_env env;
static md_status_rows rows;

static void setup(void)
{
    tsd_setup(&env);
    mesh_err err = {0};
    cr_assert_eq(md_status_rows_init(&rows, env.st, TMD_INSTANCE, &err), MESH_OK, "%s",
                 err.msg);
}

static void teardown(void)
{
    md_status_rows_free(&rows);
    tsd_teardown(&env);
}

TestSuite(meshd_status_rows, .init = setup, .fini = teardown);

/* The proxy row of node, or NULL; free the list with proxies_free. */
static store_proxy *proxies;
static size_t n_proxies;

static const store_proxy *row(const char *node)
{
    store_proxy_free_list(proxies, n_proxies);
    proxies = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_proxy_list(env.st, &proxies, &n_proxies, &err), MESH_OK, "%s", err.msg);
    for (size_t i = 0; i < n_proxies; i++)
        if (strcmp(proxies[i].node_id, node) == 0)
            return &proxies[i];
    return NULL;
}

static const store_proxy_type_status *type_row(const store_proxy *p, const char *url)
{
    for (size_t i = 0; p && i < p->n_types; i++)
        if (strcmp(p->types[i].type_url, url) == 0)
            return &p->types[i];
    return NULL;
}

static void proxies_free(void)
{
    store_proxy_free_list(proxies, n_proxies);
    proxies = NULL;
    n_proxies = 0;
}

#define OK(call)                                                                                 \
    do {                                                                                         \
        mesh_err e_ = {0};                                                                       \
        cr_assert_eq((call), MESH_OK, "%s", e_.msg);                                             \
    } while (0)
#define E (&e_)

Test(meshd_status_rows, open_writes_a_connected_row)
{
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "ipv4:127.0.0.1:4000", 5000, 100, E));
    const store_proxy *p = row(NODE);
    cr_assert_not_null(p);
    cr_assert_eq(p->connected, 1);
    cr_assert_str_eq(p->spiffe_id, TSD_WEB);
    cr_assert_str_eq(p->peer, "ipv4:127.0.0.1:4000");
    cr_assert_eq(p->svid_not_after, 5000);
    cr_assert_str_eq(p->meshd_instance, TMD_INSTANCE);
    proxies_free();
}

/* ADS and SDS of one sidecar: it is connected until the last one closes. */
Test(meshd_status_rows, disconnected_only_with_the_last_stream)
{
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "peer-a", 5000, 100, E));
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "peer-a", 5000, 101, E));
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 102, E));
    cr_assert_eq(row(NODE)->connected, 1, "one stream is still open");
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 103, E));
    const store_proxy *p = row(NODE);
    cr_assert_eq(p->connected, 0);
    cr_assert_eq(p->svid_not_after, 5000, "the last known expiry stays visible");
    proxies_free();
}

Test(meshd_status_rows, close_of_an_unknown_node_writes_nothing)
{
    OK(md_status_rows_close(&rows, "never-opened", TSD_WEB, 100, E));
    cr_assert_null(row("never-opened"));
    /* An extra close after the last one (a duplicate event) must not go negative
     * and make the next open look closed. */
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "p", 1, 100, E));
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 101, E));
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 102, E));
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "p", 1, 103, E));
    cr_assert_eq(row(NODE)->connected, 1);
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 104, E));
    cr_assert_eq(row(NODE)->connected, 0, "one open, one close");
    proxies_free();
}

Test(meshd_status_rows, types_of_open_nodes_only)
{
    OK(md_status_rows_type(&rows, NODE, TSD_WEB, CDS, "v1", NULL, NULL, NULL, 100, E));
    cr_assert_null(row(NODE), "no row for a node that is not open");
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "p", 1, 101, E));
    OK(md_status_rows_type(&rows, NODE, TSD_WEB, CDS, "v1", NULL, NULL, NULL, 102, E));
    OK(md_status_rows_type(&rows, NODE, TSD_WEB, CDS, NULL, "v1", NULL, NULL, 103, E)); /* ACK */
    const store_proxy_type_status *t = type_row(row(NODE), CDS);
    cr_assert_not_null(t);
    cr_assert_str_eq(t->sent_version, "v1", "an ACK keeps the sent version");
    cr_assert_str_eq(t->acked_version, "v1");
    OK(md_status_rows_type(&rows, NODE, TSD_WEB, CDS, "v2", NULL, NULL, NULL, 104, E));
    OK(md_status_rows_type(&rows, NODE, TSD_WEB, CDS, NULL, NULL, "v2", "cluster x: bad lb", 105, E));
    t = type_row(row(NODE), CDS);
    cr_assert_str_eq(t->sent_version, "v2");
    cr_assert_str_eq(t->acked_version, "v1", "a NACK keeps the last good version");
    cr_assert_str_eq(t->nack_version, "v2");
    cr_assert_str_eq(t->nack_error, "cluster x: bad lb");
    proxies_free();
}

/* A late ACK after the stream closed (events race the close) must not
 * resurrect the node's type rows. */
Test(meshd_status_rows, type_after_the_last_close_is_dropped)
{
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "p", 1, 100, E));
    OK(md_status_rows_type(&rows, NODE, TSD_WEB, CDS, "v1", NULL, NULL, NULL, 101, E));
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 102, E));
    OK(md_status_rows_type(&rows, NODE, TSD_WEB, CDS, NULL, "v1", NULL, NULL, 103, E));
    const store_proxy_type_status *t = type_row(row(NODE), CDS);
    cr_assert_not_null(t);
    cr_assert_str_eq(t->acked_version, "", "written after the close");
    proxies_free();
}

Test(meshd_status_rows, svid_expiry_updates)
{
    OK(md_status_rows_svid(&rows, NODE, TSD_WEB, 9000, 100, E));
    cr_assert_null(row(NODE), "not before the node is open");
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "p", 5000, 101, E));
    OK(md_status_rows_svid(&rows, NODE, TSD_WEB, 9000, 102, E)); /* rotated */
    cr_assert_eq(row(NODE)->svid_not_after, 9000);
    /* A second stream that does not know the SVID (0) keeps the known expiry. */
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "p", 0, 103, E));
    cr_assert_eq(row(NODE)->svid_not_after, 9000);
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 104, E));
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 105, E));
    OK(md_status_rows_svid(&rows, NODE, TSD_WEB, 12000, 106, E));
    cr_assert_eq(row(NODE)->svid_not_after, 9000, "closed: no more updates");
    proxies_free();
}

Test(meshd_status_rows, reconnect_shows_the_new_peer)
{
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "ipv4:127.0.0.1:4000", 1, 100, E));
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 101, E));
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "ipv4:127.0.0.1:4001", 1, 102, E));
    const store_proxy *p = row(NODE);
    cr_assert_eq(p->connected, 1);
    cr_assert_str_eq(p->peer, "ipv4:127.0.0.1:4001");
    /* Nodes are independent. */
    OK(md_status_rows_open(&rows, "api-1", TSD_API, "ipv4:127.0.0.1:5000", 1, 103, E));
    OK(md_status_rows_close(&rows, "api-1", TSD_API, 104, E));
    cr_assert_eq(row(NODE)->connected, 1);
    cr_assert_eq(row("api-1")->connected, 0);
    proxies_free();
}

/* ---- identity plus instance (issue 11) -------------------------------------------------- */

static const store_proxy *row_of(const char *node, const char *id)
{
    store_proxy_free_list(proxies, n_proxies);
    proxies = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_proxy_list(env.st, &proxies, &n_proxies, &err), MESH_OK, "%s", err.msg);
    for (size_t i = 0; i < n_proxies; i++)
        if (strcmp(proxies[i].node_id, node) == 0 && strcmp(proxies[i].spiffe_id, id) == 0)
            return &proxies[i];
    return NULL;
}

typedef struct conflicts {
    int n;
    char node[64], id[128], other[128], other_peer[64];
} conflicts;

static void on_conflict(void *arg, const char *node, const char *id, const char *peer,
                        const char *other, const char *other_peer)
{
    conflicts *c = arg;
    c->n++;
    snprintf(c->node, sizeof c->node, "%s", node);
    snprintf(c->id, sizeof c->id, "%s", id);
    snprintf(c->other, sizeof c->other, "%s", other);
    snprintf(c->other_peer, sizeof c->other_peer, "%s", other_peer);
}

/* A client with its own valid SVID (api) that names itself after web's node:
 * a row of its own, reported; web's row, types and connection untouched, even
 * when the impostor's stream closes. */
Test(meshd_status_rows, an_impostor_node_id_never_replaces_the_real_row)
{
    conflicts seen = {0};
    rows.conflict_fn = on_conflict;
    rows.conflict_arg = &seen;
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "ipv4:127.0.0.1:4000", 5000, 100, E));
    OK(md_status_rows_type(&rows, NODE, TSD_WEB, CDS, "v1", "v1", NULL, NULL, 101, E));
    cr_assert_eq(seen.n, 0, "the first holder is no conflict");
    OK(md_status_rows_open(&rows, NODE, TSD_API, "ipv4:127.0.0.1:6666", 9999, 102, E));
    OK(md_status_rows_type(&rows, NODE, TSD_API, CDS, "evil", NULL, NULL, NULL, 103, E));
    cr_assert_eq(seen.n, 1);
    cr_assert_str_eq(seen.node, NODE);
    cr_assert_str_eq(seen.id, TSD_API);
    cr_assert_str_eq(seen.other, TSD_WEB);
    cr_assert_str_eq(seen.other_peer, "ipv4:127.0.0.1:4000");
    const store_proxy *real = row_of(NODE, TSD_WEB);
    cr_assert_not_null(real);
    cr_assert_eq(real->connected, 1);
    cr_assert_str_eq(real->peer, "ipv4:127.0.0.1:4000");
    cr_assert_eq(real->svid_not_after, 5000);
    cr_assert_str_eq(type_row(real, CDS)->sent_version, "v1");
    cr_assert_not_null(row_of(NODE, TSD_API), "the impostor has its own row");
    OK(md_status_rows_close(&rows, NODE, TSD_API, 104, E));
    cr_assert_eq(row_of(NODE, TSD_WEB)->connected, 1, "its close does not close web");
    cr_assert_eq(row_of(NODE, TSD_API)->connected, 0);
    /* A close under the wrong identity is not web's close either. */
    OK(md_status_rows_close(&rows, NODE, TSD_API, 105, E));
    cr_assert_eq(row_of(NODE, TSD_WEB)->connected, 1);
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 106, E));
    cr_assert_eq(row_of(NODE, TSD_WEB)->connected, 0);
    proxies_free();
}

/* A reconnect that overlaps the old stream (same identity and instance):
 * the row stays connected throughout and shows the new peer; no conflict. */
Test(meshd_status_rows, an_overlapping_reconnect_does_not_flap)
{
    conflicts seen = {0};
    rows.conflict_fn = on_conflict;
    rows.conflict_arg = &seen;
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "peer-old", 5000, 100, E));
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "peer-new", 6000, 101, E));
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 102, E)); /* the old one ends late */
    const store_proxy *p = row_of(NODE, TSD_WEB);
    cr_assert_eq(p->connected, 1);
    cr_assert_eq(p->connected_at, 100, "never seen disconnected");
    cr_assert_str_eq(p->peer, "peer-new");
    cr_assert_eq(p->svid_not_after, 6000);
    cr_assert_eq(seen.n, 0);
    cr_assert_eq(n_proxies, 1);
    proxies_free();
}

/* Issue 13's shape: replicas of one identity, each its own instance name. */
Test(meshd_status_rows, replicas_of_one_identity_have_their_own_rows)
{
    OK(md_status_rows_open(&rows, "web-a", TSD_WEB, "pa", 1, 100, E));
    OK(md_status_rows_open(&rows, "web-b", TSD_WEB, "pb", 1, 100, E));
    OK(md_status_rows_close(&rows, "web-a", TSD_WEB, 101, E));
    cr_assert_eq(row_of("web-a", TSD_WEB)->connected, 0);
    cr_assert_eq(row_of("web-b", TSD_WEB)->connected, 1);
    proxies_free();
}

Test(meshd_status_rows, an_open_without_identity_is_refused)
{
    mesh_err err = {0};
    cr_assert_eq(md_status_rows_open(&rows, NODE, "", "p", 1, 100, &err), MESH_EINVAL);
    cr_assert_eq(md_status_rows_open(&rows, NODE, NULL, "p", 1, 100, &err), MESH_EINVAL);
    cr_assert_null(row(NODE));
}

/* The bundle (node, id) ACKed (store_proxy_trust), or NULL; free with trust_free. */
static store_proxy_trust *trusts;
static size_t n_trusts;

static void trust_free(void)
{
    store_proxy_trust_free_list(trusts, n_trusts);
    trusts = NULL;
    n_trusts = 0;
}

static const store_proxy_trust *trust_row(const char *node, const char *id)
{
    trust_free();
    mesh_err err = {0};
    cr_assert_eq(store_proxy_trust_list(env.st, &trusts, &n_trusts, &err), MESH_OK, "%s",
                 err.msg);
    for (size_t i = 0; i < n_trusts; i++)
        if (strcmp(trusts[i].node_id, node) == 0 && strcmp(trusts[i].spiffe_id, id) == 0)
            return &trusts[i];
    return NULL;
}

/* A CA rotation judges a sidecar by the bundle it ACKed last, also once it
 * has gone: its persisted cert pool holds that bundle. */
Test(meshd_status_rows, trust_ack_is_written_also_after_the_close)
{
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "p", 1, 100, E));
    OK(md_status_rows_trust(&rows, NODE, TSD_WEB, "aa", 101, E));
    const store_proxy_trust *t = trust_row(NODE, TSD_WEB);
    cr_assert_not_null(t);
    cr_assert_str_eq(t->roots, "aa");
    cr_assert_eq(t->acked_at, 101);
    cr_assert_str_eq(t->meshd_instance, TMD_INSTANCE);
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 102, E));
    OK(md_status_rows_trust(&rows, NODE, TSD_WEB, "aa,bb", 103, E)); /* the ACK raced the close */
    t = trust_row(NODE, TSD_WEB);
    cr_assert_str_eq(t->roots, "aa,bb");
    cr_assert_eq(t->acked_at, 103);
    mesh_err err = {0};
    cr_assert_eq(md_status_rows_trust(&rows, NODE, TSD_WEB, NULL, 104, &err), MESH_ENOMEM,
                 "a copy that failed when queued is an error, not an empty bundle");
    cr_assert_str_eq(trust_row(NODE, TSD_WEB)->roots, "aa,bb");
    trust_free();
}

/* Another identity naming itself like web's node ACKs for its own row only. */
Test(meshd_status_rows, an_impostor_node_id_acks_only_for_itself)
{
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "p", 1, 100, E));
    OK(md_status_rows_trust(&rows, NODE, TSD_WEB, "aa", 101, E));
    OK(md_status_rows_open(&rows, NODE, TSD_API, "q", 1, 102, E));
    OK(md_status_rows_trust(&rows, NODE, TSD_API, "aa,bb", 103, E));
    cr_assert_str_eq(trust_row(NODE, TSD_WEB)->roots, "aa", "web's row untouched");
    cr_assert_str_eq(trust_row(NODE, TSD_API)->roots, "aa,bb");
    cr_assert_eq(n_trusts, 2);
    trust_free();
}

/* ---- the writer thread ---------------------------------------------------------------- */

TestSuite(meshd_status_writer, .init = setup, .fini = teardown);

/* A sidecar refused for a revoked SVID: its row says so, whether or not the node
 * ever opened, until it connects again with a valid one. */
Test(meshd_status_rows, a_stranded_node_shows_its_problem_until_it_reconnects)
{
    OK(md_status_rows_problem(&rows, "never-opened", TSD_API, "SVID revoked", 100, E));
    const store_proxy *p = row("never-opened");
    cr_assert_not_null(p, "refused before its first request named it: still a row");
    cr_assert_str_eq(p->problem, "SVID revoked");
    cr_assert_str_eq(p->spiffe_id, TSD_API);
    cr_assert_eq(p->connected, 0);

    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "p", 5000, 100, E));
    OK(md_status_rows_problem(&rows, NODE, TSD_WEB, "certificate serial 0a revoked", 101, E));
    OK(md_status_rows_close(&rows, NODE, TSD_WEB, 102, E));
    p = row(NODE);
    cr_assert_eq(p->connected, 0);
    cr_assert_str_eq(p->problem, "certificate serial 0a revoked", "the close keeps it");
    OK(md_status_rows_open(&rows, NODE, TSD_WEB, "p", 9000, 103, E));
    p = row(NODE);
    cr_assert_eq(p->connected, 1);
    cr_assert_str_eq(p->problem, "", "a new stream (a valid SVID) clears it");
    proxies_free();
}

static int audit_rows(const char *action, const char *subject)
{
    store_audit_entry *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_audit_list(env.st, 100, &list, &n, &err), MESH_OK, "%s", err.msg);
    int c = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].action, action) == 0 && strcmp(list[i].subject, subject) == 0)
            c++;
    store_audit_free_list(list, n);
    return c;
}

Test(meshd_status_writer, stop_flushes_and_marks_this_instance_disconnected)
{
    md_ctx *ctx = tmd_ctx_new(env.db);
    mesh_err err = {0};
    md_status_open(ctx, NODE, TSD_WEB, "p", 5000); /* before start: dropped */
    cr_assert_eq(md_status_start(ctx, &err), MESH_OK, "%s", err.msg);
    md_status_open(ctx, NODE, TSD_WEB, "ipv4:127.0.0.1:4000", 5000);
    md_status_type(ctx, NODE, TSD_WEB, CDS, "v7", NULL, NULL, NULL);
    md_status_audit(ctx, TSD_WEB, "sds.denied", "spiffe://example.org/ns/demo/sa/api",
                    "node=web-1: not yours", 0);
    md_status_audit(ctx, "meshd", "test.null", NULL, NULL, 1); /* NULLs are stored as "" */
    md_status_trust(ctx, NODE, TSD_WEB, "aa,bb");
    md_status_stop(ctx);
    md_status_open(ctx, "late-node", TSD_WEB, "p", 1); /* after stop: dropped */
    const store_proxy *p = row(NODE);
    cr_assert_not_null(p, "queued events are written before stop returns");
    cr_assert_eq(p->connected, 0, "meshd is gone: its proxies are disconnected");
    cr_assert_str_eq(p->peer, "ipv4:127.0.0.1:4000");
    cr_assert_str_eq(type_row(p, CDS)->sent_version, "v7");
    cr_assert_null(row("late-node"));
    cr_assert_eq(audit_rows("sds.denied", "spiffe://example.org/ns/demo/sa/api"), 1);
    cr_assert_eq(audit_rows("test.null", ""), 1);
    cr_assert_str_eq(trust_row(NODE, TSD_WEB)->roots, "aa,bb");
    trust_free();
    proxies_free();
    tmd_ctx_free(ctx);
}

Test(meshd_status_writer, a_store_that_cannot_open_fails_start)
{
    md_ctx *ctx = tmd_ctx_new("/nonexistent-dir/mesh.db");
    mesh_err err = {0};
    cr_assert_neq(md_status_start(ctx, &err), MESH_OK);
    cr_assert_not_null(strstr(err.msg, "proxy status"), "%s", err.msg);
    md_status_open(ctx, NODE, TSD_WEB, "p", 1); /* not started: dropped, no crash */
    md_status_stop(ctx);
    tmd_ctx_free(ctx);
}

/* A flood of refusals by unauthenticated peers writes the burst, then one
 * "audit.suppressed" row saying how many were dropped; verified identities
 * have their own budget, and successes are never limited. */
Test(meshd_status_writer, refusal_rows_are_rate_limited_and_the_drop_reported)
{
    md_ctx *ctx = tmd_ctx_new(env.db);
    mesh_err err = {0};
    cr_assert_eq(md_status_start(ctx, &err), MESH_OK, "%s", err.msg);
    int flood = (int)MD_AUDIT_UNAUTH_BURST + 40;
    for (int i = 0; i < flood; i++)
        md_status_audit(ctx, STORE_AUDIT_UNAUTHENTICATED, "tls.denied", "flood", "bad cert", 0);
    md_status_audit(ctx, TSD_WEB, "sds.denied", "verified", "still written", 0);
    md_status_audit(ctx, "meshd", "test.ok", "success", "", 1);
    /* The next unauthenticated row that passes reports the drop first. */
    md_audit_flush(ctx, md_now_ms() + MD_AUDIT_FLUSH_MS + 1);
    md_status_stop(ctx);
    store_audit_entry *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_audit_list(env.st, 1000, &list, &n, &err), MESH_OK, "%s", err.msg);
    int floods = 0, suppressed = 0, verified = 0, oks = 0;
    char summary[600] = "";
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].action, "tls.denied") == 0)
            floods++;
        if (strcmp(list[i].action, "audit.suppressed") == 0) {
            suppressed++;
            snprintf(summary, sizeof summary, "%s", list[i].detail);
            cr_assert_str_eq(list[i].actor, "meshd");
        }
        verified += strcmp(list[i].action, "sds.denied") == 0;
        oks += strcmp(list[i].action, "test.ok") == 0;
    }
    store_audit_free_list(list, n);
    /* The bucket refills at 1/s: a slow machine may let one or two more in. */
    cr_assert(floods >= (int)MD_AUDIT_UNAUTH_BURST && floods <= (int)MD_AUDIT_UNAUTH_BURST + 3,
              "%d rows", floods);
    cr_assert_eq(suppressed, 1);
    char want[100];
    snprintf(want, sizeof want, "%d refusal(s) by unauthenticated peers", flood - floods);
    cr_assert_not_null(strstr(summary, want), "%s", summary);
    cr_assert_eq(verified, 1);
    cr_assert_eq(oks, 1);
    tmd_ctx_free(ctx);
}
