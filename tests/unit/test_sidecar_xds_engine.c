/* tests/unit/test_sidecar_xds_engine.c — the SotW client engine without a network:
 * ACK echo, NACK with error_detail and last-good kept, the next good version
 * applying (envoy#42438), RDS/EDS subscriptions following LDS/CDS, warming,
 * persistence and restore, and the pure bookkeeping rules. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "sidecar/xds_engine.h"
#include "sidecar/xds_persist.h"
#include "test_sidecar_xds_util.h"

typedef struct sink {
    int calls;
    int fail;
    dp_config *last;
} sink;

static int sink_apply(void *ctx, dp_config *cfg, mesh_err *err)
{
    sink *s = ctx;
    s->calls++;
    if (s->fail)
        return mesh_err_set(err, MESH_EIO, "sink refuses");
    dp_config_unref(s->last);
    s->last = dp_config_ref(cfg);
    return MESH_OK;
}

static void feed(xdsc_engine *e, const xds_snapshot *s, enum xdsc_type t, const char *version,
                 const char *nonce, bool want_accept)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = tx_response_from(s, t, version, nonce);
    bool accepted = !want_accept;
    mesh_err err = {0};
    cr_assert_eq(xdsc_engine_on_response(e, r, 1000, 0, &accepted, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(accepted, want_accept, "%s %s: accepted=%d (%s)", xdsc_type_short(t), version,
                 accepted, e->last_error);
    tx_response_free(r);
}

static void feed_all(xdsc_engine *e, const xds_snapshot *s, const char *v)
{
    static const enum xdsc_type order[] = {XDSC_CDS, XDSC_EDS, XDSC_LDS, XDSC_RDS};
    char nonce[32];
    for (int i = 0; i < 4; i++) {
        snprintf(nonce, sizeof nonce, "%s-%s", v, xdsc_type_short(order[i]));
        feed(e, s, order[i], v, nonce, true);
    }
}

/* Builds the pending request for t and checks its envelope. */
static void expect_request(xdsc_engine *e, enum xdsc_type t, const char *version, const char *nonce,
                           const char *error_substr)
{
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Envoy__Service__Discovery__V3__DiscoveryRequest req;
    Google__Rpc__Status st;
    cr_assert(e->sotw.t[t].pending, "%s not pending", xdsc_type_short(t));
    xdsc_sotw_build_request(&e->sotw, t, &node, &req, &st);
    cr_assert_str_eq(req.type_url, xdsc_type_url(t));
    cr_assert_str_eq(req.version_info, version);
    cr_assert_str_eq(req.response_nonce, nonce);
    if (error_substr) {
        cr_assert_not_null(req.error_detail, "expected a NACK");
        cr_assert_eq(req.error_detail->code, 3);
        cr_assert(strstr(req.error_detail->message, error_substr) != NULL, "NACK detail: %s",
                  req.error_detail->message);
    } else {
        cr_assert_null(req.error_detail, "unexpected NACK: %s",
                       req.error_detail ? req.error_detail->message : "");
    }
    cr_assert(!e->sotw.t[t].pending);
}

static void engine(xdsc_engine *e, const char *dir, sink *s)
{
    mesh_err err = {0};
    cr_assert_eq(xdsc_engine_init(e, NULL, dir, s ? sink_apply : NULL, s, &err), MESH_OK, "%s",
                 err.msg);
}

Test(sidecar_xds_engine, acks_echo_version_and_nonce_and_subscriptions_follow)
{
    xds_snapshot s;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    xdsc_engine e;
    engine(&e, NULL, NULL);
    xdsc_sotw_stream_start(&e.sotw);
    cr_assert(e.sotw.t[XDSC_LDS].pending && e.sotw.t[XDSC_CDS].pending && e.sotw.t[XDSC_SDS].pending);
    cr_assert(!e.sotw.t[XDSC_RDS].pending && !e.sotw.t[XDSC_EDS].pending,
              "nothing to ask for RDS/EDS yet");
    /* Initial requests: node only on the very first one. */
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Envoy__Service__Discovery__V3__DiscoveryRequest req;
    Google__Rpc__Status st;
    enum xdsc_type t;
    cr_assert(xdsc_sotw_next_pending(&e.sotw, &t));
    cr_assert_eq(t, XDSC_SDS);
    xdsc_sotw_build_request(&e.sotw, t, &node, &req, &st);
    cr_assert_eq(req.node, &node);
    cr_assert_eq(req.n_resource_names, 2);
    cr_assert(xdsc_sotw_next_pending(&e.sotw, &t));
    cr_assert_eq(t, XDSC_CDS);
    xdsc_sotw_build_request(&e.sotw, t, &node, &req, &st);
    cr_assert_null(req.node);
    cr_assert_eq(req.n_resource_names, 0, "CDS is wildcard");
    cr_assert_str_eq(req.version_info, "");

    feed(&e, &s, XDSC_CDS, "c1", "n1", true);
    expect_request(&e, XDSC_CDS, "c1", "n1", NULL);
    /* CDS named four EDS clusters (every HTTP service is reachable through
     * the egress listener, plus db over tcp_outbound): EDS now has something
     * to ask for. */
    cr_assert_eq(e.sotw.t[XDSC_EDS].subs.n, 4);
    cr_assert(xdsc_names_contains(&e.sotw.t[XDSC_EDS].subs, "outbound|web"));
    cr_assert(e.sotw.t[XDSC_EDS].pending);
    cr_assert(xdsc_names_contains(&e.sotw.t[XDSC_EDS].subs, "outbound|db"));

    feed(&e, &s, XDSC_EDS, "e1", "n2", true);
    feed(&e, &s, XDSC_LDS, "l1", "n3", true);
    cr_assert_eq(e.sotw.t[XDSC_RDS].subs.n, 1);
    cr_assert_str_eq(e.sotw.t[XDSC_RDS].subs.v[0], "outbound|http");
    feed(&e, &s, XDSC_RDS, "r1", "n4", true);
    expect_request(&e, XDSC_EDS, "e1", "n2", NULL);
    expect_request(&e, XDSC_LDS, "l1", "n3", NULL);
    expect_request(&e, XDSC_RDS, "r1", "n4", NULL);
    cr_assert(!xdsc_sotw_next_pending(&e.sotw, &t), "all answered");
    cr_assert_eq(dp_config_n_listeners(e.cur), 3);
    cr_assert_eq(e.sotw.t[XDSC_LDS].n_accepted, 1);
    xdsc_engine_free(&e);
    xds_snapshot_free(&s);
}

/* An LDS response whose outbound listener has an impossible port. */
static Envoy__Service__Discovery__V3__DiscoveryResponse *bad_lds(const xds_snapshot *s,
                                                               const char *version,
                                                               const char *nonce)
{
    const xds_type_set *set = tx_set(s, XDSC_LDS);
    const uint8_t *data[8];
    size_t len[8];
    uint8_t *bad = NULL;
    for (size_t i = 0; i < set->n; i++) {
        data[i] = set->items[i].data;
        len[i] = set->items[i].len;
        if (strcmp(set->items[i].name, "outbound|http") == 0) {
            Envoy__Config__Listener__V3__Listener *l = envoy__config__listener__v3__listener__unpack(
                NULL, set->items[i].len, set->items[i].data);
            cr_assert_not_null(l);
            l->address->socket_address->port_value = 77777;
            bad = tx_pack(&l->base, &len[i]);
            data[i] = bad;
            envoy__config__listener__v3__listener__free_unpacked(l, NULL);
        }
    }
    cr_assert_not_null(bad);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        tx_response(XDSC_LDS, version, nonce, data, len, set->n);
    free(bad);
    return r;
}


Test(sidecar_xds_engine, nack_keeps_last_good_then_next_good_version_applies)
{
    xds_snapshot s, s2;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    xdsc_engine e;
    sink k = {0};
    engine(&e, NULL, &k);
    xdsc_sotw_stream_start(&e.sotw);
    feed_all(&e, &s, "v1");
    int calls = k.calls;
    dp_config *good = dp_config_ref(e.cur);

    Envoy__Service__Discovery__V3__DiscoveryResponse *r = bad_lds(&s, "v2", "bad-nonce");
    bool accepted = true;
    mesh_err err = {0};
    cr_assert_eq(xdsc_engine_on_response(&e, r, 1000, 0, &accepted, &err), MESH_OK);
    tx_response_free(r);
    cr_assert(!accepted);
    /* NACK: nonce echoed, version stays v1, detail names the listener. */
    expect_request(&e, XDSC_LDS, "v1", "bad-nonce", "listener 'outbound|http'");
    cr_assert_eq(e.cur, good, "the last good snapshot is kept");
    cr_assert_eq(e.sotw.t[XDSC_LDS].n_rejected, 1);
    cr_assert_str_eq(e.sotw.t[XDSC_LDS].last_nack_version, "v2");
    cr_assert(strstr(e.last_error, "77777") != NULL, "%s", e.last_error);
    cr_assert_eq(k.calls, calls, "nothing new published after a NACK");

    /* The same bad version again is NACKed again (no wedge, no crash). */
    r = bad_lds(&s, "v2", "bad-nonce-2");
    cr_assert_eq(xdsc_engine_on_response(&e, r, 1000, 0, &accepted, &err), MESH_OK);
    tx_response_free(r);
    cr_assert(!accepted);
    expect_request(&e, XDSC_LDS, "v1", "bad-nonce-2", "port");

    /* The next good version applies normally (envoy#42438). */
    tx_compile(TX_WEB_ID, 0, 90, &s2);
    feed(&e, &s2, XDSC_LDS, "v3", "good-nonce", true);
    expect_request(&e, XDSC_LDS, "v3", "good-nonce", NULL);
    cr_assert_neq(e.cur, good);
    cr_assert_eq(dp_config_n_listeners(e.cur), 2, "outbound|http is gone in v3");
    cr_assert_null(dp_config_find_listener(e.cur, "outbound|http"));
    /* Applied, then applied again without the route table nothing uses. */
    cr_assert_eq(k.calls, calls + 2);
    cr_assert_eq(k.last, e.cur);
    cr_assert_eq(dp_config_n_route_tables(k.last), 0);
    dp_config_unref(good);
    dp_config_unref(k.last);
    xdsc_engine_free(&e);
    xds_snapshot_free(&s);
    xds_snapshot_free(&s2);
}

Test(sidecar_xds_engine, rds_subscription_shrinks_with_lds)
{
    xds_snapshot s, s2;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    tx_compile(TX_WEB_ID, 0, 90, &s2);
    xdsc_engine e;
    engine(&e, NULL, NULL);
    xdsc_sotw_stream_start(&e.sotw);
    feed_all(&e, &s, "v1");
    expect_request(&e, XDSC_RDS, "v1", "v1-RDS", NULL);
    cr_assert_eq(dp_config_n_route_tables(e.cur), 1);

    feed(&e, &s2, XDSC_LDS, "v2", "n-l2", true);
    /* No HTTP egress any more: RDS unsubscribes with an empty name list. */
    cr_assert_eq(e.sotw.t[XDSC_RDS].subs.n, 0);
    cr_assert(e.sotw.t[XDSC_RDS].pending);
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Envoy__Service__Discovery__V3__DiscoveryRequest req;
    Google__Rpc__Status st;
    xdsc_sotw_build_request(&e.sotw, XDSC_RDS, &node, &req, &st);
    cr_assert_eq(req.n_resource_names, 0);
    cr_assert_eq(e.sotw.t[XDSC_RDS].n_res, 0, "held route config dropped");
    cr_assert_eq(dp_config_n_route_tables(e.cur), 0, "route table left the snapshot");

    /* And grows back. */
    feed(&e, &s, XDSC_LDS, "v3", "n-l3", true);
    cr_assert_eq(e.sotw.t[XDSC_RDS].subs.n, 1);
    cr_assert(e.sotw.t[XDSC_RDS].pending);
    xdsc_engine_free(&e);
    xds_snapshot_free(&s);
    xds_snapshot_free(&s2);
}

Test(sidecar_xds_engine, weight_change_reaches_the_snapshot)
{
    xds_snapshot s, s2;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    tx_compile(TX_WEB_ID, 1, 30, &s2);
    xdsc_engine e;
    engine(&e, NULL, NULL);
    xdsc_sotw_stream_start(&e.sotw);
    feed_all(&e, &s, "v1");
    feed(&e, &s2, XDSC_RDS, "v2", "n", true);
    const dp_route_table *rt = dp_config_find_route_table(e.cur, "outbound|http");
    cr_assert_not_null(rt);
    bool found = false;
    for (size_t v = 0; v < rt->n_vhosts; v++)
        for (size_t r = 0; strcmp(rt->vhosts[v].domains[0], "api") == 0 &&
                           r < rt->vhosts[v].n_routes; r++)
            for (size_t c = 0; c < rt->vhosts[v].routes[r].n_clusters; c++) {
                const dp_weighted_cluster *wc = &rt->vhosts[v].routes[r].clusters[c];
                if (strcmp(wc->cluster, "outbound|api-v1") == 0) {
                    cr_assert_eq(wc->weight, 30);
                    found = true;
                }
            }
    cr_assert(found);
    xdsc_engine_free(&e);
    xds_snapshot_free(&s);
    xds_snapshot_free(&s2);
}

Test(sidecar_xds_engine, unrequested_ignored_duplicates_and_wrong_types_nacked)
{
    xds_snapshot s;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    xdsc_engine e;
    engine(&e, NULL, NULL);
    xdsc_sotw_stream_start(&e.sotw);
    feed(&e, &s, XDSC_CDS, "c1", "n1", true);
    /* RDS before anything asked for it: resources are ignored, still an ACK. */
    feed(&e, &s, XDSC_RDS, "r0", "n2", true);
    cr_assert_eq(e.sotw.t[XDSC_RDS].n_res, 0);

    /* The same cluster twice in one response. */
    const xds_resource *c = &tx_set(&s, XDSC_CDS)->items[0];
    const uint8_t *data[2] = {c->data, c->data};
    size_t len[2] = {c->len, c->len};
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = tx_response(XDSC_CDS, "c2", "n3", data, len, 2);
    bool accepted = true;
    cr_assert_eq(xdsc_engine_on_response(&e, r, 1000, 0, &accepted, NULL), MESH_OK);
    cr_assert(!accepted);
    expect_request(&e, XDSC_CDS, "c1", "n3", "appears twice");
    tx_response_free(r);

    /* A Listener inside a CDS response. */
    r = tx_response_from(&s, XDSC_CDS, "c3", "n4");
    free(r->resources[0]->type_url);
    r->resources[0]->type_url = strdup(XDS_TYPE_URL_LISTENER);
    cr_assert_eq(xdsc_engine_on_response(&e, r, 1000, 0, &accepted, NULL), MESH_OK);
    cr_assert(!accepted);
    expect_request(&e, XDSC_CDS, "c1", "n4", "in a CDS response");
    tx_response_free(r);

    /* A type we never asked for is ignored without a request. */
    r = tx_response_from(&s, XDSC_CDS, "x", "n5");
    free(r->type_url);
    r->type_url = strdup(XDS_TYPE_URL_PREFIX "envoy.config.core.v3.TypedExtensionConfig");
    cr_assert_eq(xdsc_engine_on_response(&e, r, 1000, 0, &accepted, NULL), MESH_OK);
    cr_assert(!accepted);
    enum xdsc_type t;
    cr_assert(!xdsc_sotw_next_pending(&e.sotw, &t) || t != XDSC_CDS);
    tx_response_free(r);
    xdsc_engine_free(&e);
    xds_snapshot_free(&s);
}

Test(sidecar_xds_engine, warming_holds_a_listener_until_its_routes_arrive)
{
    xds_snapshot s;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    xdsc_engine e;
    sink k = {0};
    engine(&e, NULL, &k);
    xdsc_sotw_stream_start(&e.sotw);
    feed(&e, &s, XDSC_CDS, "v1", "a", true);
    cr_assert_eq(k.calls, 1, "clusters are applied before the ACK");
    feed(&e, &s, XDSC_EDS, "v1", "b", true);
    cr_assert_eq(k.calls, 2);

    /* LDS at t=1000: outbound|http waits for its route table. */
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = tx_response_from(&s, XDSC_LDS, "v1", "c");
    bool accepted = false;
    cr_assert_eq(xdsc_engine_on_response(&e, r, 1000, 1000, &accepted, NULL), MESH_OK);
    tx_response_free(r);
    cr_assert(accepted);
    cr_assert_eq(k.calls, 3);
    cr_assert_eq(dp_config_n_listeners(e.cur), 3, "accepted: all three");
    cr_assert_eq(dp_config_n_listeners(k.last), 2, "served: the warming one held back");
    cr_assert_null(dp_config_find_listener(k.last, "outbound|http"));
    int64_t wait = xdsc_engine_poll(&e, 2000);
    cr_assert(wait > 0 && wait <= XDSC_WARM_TIMEOUT_MS, "wait %lld", (long long)wait);
    cr_assert_eq(k.calls, 3);

    /* meshd never sends RDS: the listener starts anyway after the timeout. */
    cr_assert_eq(xdsc_engine_poll(&e, 1000 + XDSC_WARM_TIMEOUT_MS), -1);
    cr_assert_eq(k.calls, 4);
    cr_assert_not_null(dp_config_find_listener(k.last, "outbound|http"));
    /* Later changes are not held back for a table we already waited for. */
    xds_snapshot s2;
    tx_compile(TX_WEB_ID, 1, 90, &s2);
    feed(&e, &s, XDSC_LDS, "v1", "d", true);   /* same bytes: nothing to apply */
    cr_assert_eq(k.calls, 4);
    feed(&e, &s2, XDSC_RDS, "v1", "e", true);
    cr_assert_eq(k.calls, 5);
    cr_assert_eq(k.last, e.cur);
    cr_assert_not_null(dp_config_find_route_table(k.last, "outbound|http"));
    cr_assert_eq(xdsc_engine_poll(&e, 99999), -1);
    dp_config_unref(k.last);
    xdsc_engine_free(&e);
    xds_snapshot_free(&s);
    xds_snapshot_free(&s2);
}

Test(sidecar_xds_engine, route_table_in_time_means_no_gap)
{
    xds_snapshot s;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    xdsc_engine e;
    sink k = {0};
    engine(&e, NULL, &k);
    xdsc_sotw_stream_start(&e.sotw);
    feed_all(&e, &s, "v1");
    /* CDS, EDS, LDS (listener held), RDS (listener released with its table). */
    cr_assert_eq(k.calls, 4);
    cr_assert_eq(k.last, e.cur);
    cr_assert_eq(dp_config_n_listeners(k.last), 3);
    cr_assert_eq(xdsc_engine_poll(&e, 0), -1, "nothing left warming");
    dp_config_unref(k.last);
    xdsc_engine_free(&e);
    xds_snapshot_free(&s);
}

Test(sidecar_xds_engine, data_plane_refusal_is_a_nack_and_the_next_version_applies)
{
    xds_snapshot s;
    tx_compile(TX_DB_ID, 1, 90, &s);
    xdsc_engine e;
    sink k = {0};
    engine(&e, NULL, &k);
    xdsc_sotw_stream_start(&e.sotw);
    feed(&e, &s, XDSC_CDS, "v1", "a", true);
    k.calls = 0;
    k.fail = 1;
    feed(&e, &s, XDSC_LDS, "v1", "b", false);   /* e.g. address already in use */
    cr_assert_eq(k.calls, 1);
    expect_request(&e, XDSC_LDS, "", "b", "sink refuses");
    cr_assert_eq(dp_config_n_listeners(e.cur), 0, "nothing accepted");
    cr_assert(strstr(e.last_error, "sink refuses") != NULL);
    k.fail = 0;
    feed(&e, &s, XDSC_LDS, "v2", "c", true);
    expect_request(&e, XDSC_LDS, "v2", "c", NULL);
    cr_assert_eq(k.last, e.cur);
    cr_assert_eq(dp_config_n_listeners(e.cur), 1);
    dp_config_unref(k.last);
    xdsc_engine_free(&e);
    xds_snapshot_free(&s);
}

Test(sidecar_xds_engine, persisted_state_restores_and_versions_are_offered)
{
    char dir[64];
    tx_tmpdir(dir, sizeof dir);
    xds_snapshot s;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    xdsc_engine e;
    engine(&e, dir, NULL);
    xdsc_sotw_stream_start(&e.sotw);
    feed_all(&e, &s, "v7");
    size_t nl = dp_config_n_listeners(e.cur), nc = dp_config_n_clusters(e.cur);
    xdsc_engine_free(&e);

    struct stat st;
    char path[128];
    snprintf(path, sizeof path, "%s/xds-lds.pb", dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);

    sink k = {0};
    engine(&e, dir, &k);
    int restored = 0;
    mesh_err err = {0};
    cr_assert_eq(xdsc_engine_restore(&e, 0, &restored, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(restored, 4);
    cr_assert_eq(dp_config_n_listeners(e.cur), nl);
    cr_assert_eq(dp_config_n_clusters(e.cur), nc);
    cr_assert_not_null(dp_config_find_route_table(e.cur, "outbound|http"));
    cr_assert_eq(k.calls, 1, "restored config is served at once");
    /* The first requests of the next stream offer what we hold. */
    xdsc_sotw_stream_start(&e.sotw);
    cr_assert(e.sotw.t[XDSC_RDS].pending, "RDS names known from the restored LDS");
    expect_request(&e, XDSC_LDS, "v7", "", NULL);
    expect_request(&e, XDSC_EDS, "v7", "", NULL);
    /* meshd re-sending the same resources is an ACK without a re-publish. */
    feed(&e, &s, XDSC_LDS, "v7", "n", true);
    cr_assert_eq(k.calls, 1);
    dp_config_unref(k.last);
    xdsc_engine_free(&e);
    xds_snapshot_free(&s);
    tx_rmdir(dir);
}

Test(sidecar_xds_engine, damaged_persisted_file_is_ignored_not_half_applied)
{
    char dir[64];
    tx_tmpdir(dir, sizeof dir);
    xds_snapshot s;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    xdsc_engine e;
    engine(&e, dir, NULL);
    xdsc_sotw_stream_start(&e.sotw);
    feed_all(&e, &s, "v1");
    xdsc_engine_free(&e);

    /* Truncate LDS, flip a byte in CDS. */
    char path[128];
    snprintf(path, sizeof path, "%s/xds-lds.pb", dir);
    cr_assert_eq(truncate(path, 100), 0);
    snprintf(path, sizeof path, "%s/xds-cds.pb", dir);
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    char b;
    cr_assert_eq(pread(fd, &b, 1, 200), 1);
    b ^= 0x40;
    cr_assert_eq(pwrite(fd, &b, 1, 200), 1);
    close(fd);

    Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
    mesh_err err = {0};
    cr_assert_eq(xdsc_persist_load(dir, XDSC_LDS, &r, &err), MESH_ECORRUPT);
    cr_assert(strstr(err.msg, "truncated") != NULL, "%s", err.msg);
    cr_assert_eq(xdsc_persist_load(dir, XDSC_CDS, &r, &err), MESH_ECORRUPT);
    cr_assert_eq(xdsc_persist_load(dir, XDSC_SDS, &r, &err), MESH_ENOTFOUND);

    engine(&e, dir, NULL);
    int restored = 0;
    cr_assert_eq(xdsc_engine_restore(&e, 0, &restored, &err), MESH_OK);
    /* EDS is filtered by CDS names (none) and RDS by LDS names (none). */
    cr_assert_eq(dp_config_n_listeners(e.cur), 0);
    cr_assert_eq(dp_config_n_clusters(e.cur), 0);
    cr_assert_eq(e.sotw.t[XDSC_LDS].version, NULL);
    xdsc_engine_free(&e);
    xds_snapshot_free(&s);
    tx_rmdir(dir);
}

Test(sidecar_xds_engine, bookkeeping_stream_restart_forgets_nonces_and_nacks)
{
    xdsc_sotw s;
    cr_assert_eq(xdsc_sotw_init(&s, NULL), MESH_OK);
    xdsc_sotw_stream_start(&s);
    cr_assert_eq(xdsc_sotw_reject(&s, XDSC_CDS, "v9", "n9", "broken", NULL), MESH_OK);
    cr_assert_not_null(s.t[XDSC_CDS].nack_detail);
    xdsc_sotw_stream_start(&s);
    cr_assert_null(s.t[XDSC_CDS].nonce);
    cr_assert_null(s.t[XDSC_CDS].nack_detail);
    cr_assert_eq(s.t[XDSC_CDS].n_rejected, 1, "counters survive reconnects");
    xdsc_names n = {0};
    cr_assert_eq(xdsc_sotw_set_subs(&s, XDSC_LDS, &n, NULL, NULL), MESH_EINVAL);
    /* Sets stay sorted and unique. */
    xdsc_names_add(&n, "b");
    xdsc_names_add(&n, "a");
    xdsc_names_add(&n, "b");
    cr_assert_eq(n.n, 2);
    cr_assert_str_eq(n.v[0], "a");
    bool changed = false;
    cr_assert_eq(xdsc_sotw_set_subs(&s, XDSC_EDS, &n, &changed, NULL), MESH_OK);
    cr_assert(changed);
    cr_assert_eq(xdsc_sotw_set_subs(&s, XDSC_EDS, &n, &changed, NULL), MESH_OK);
    cr_assert(!changed);
    cr_assert(xdsc_sotw_wants(&s, XDSC_EDS, "a"));
    cr_assert(!xdsc_sotw_wants(&s, XDSC_EDS, "c"));
    cr_assert(xdsc_sotw_wants(&s, XDSC_CDS, "anything"));
    xdsc_names_free(&n);
    xdsc_sotw_free(&s);
}
