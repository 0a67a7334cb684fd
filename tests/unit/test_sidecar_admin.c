/* tests/unit/test_sidecar_admin.c — the admin endpoint's /stats and
 * /config_dump bodies, pinned byte for byte: metric names, HELP texts and
 * the JSON shape are what dashboards, alerts and `meshctl` read, so any
 * change to them must be deliberate. (The values themselves are covered by
 * test_sidecar_proxy.c.) */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sidecar/proxy.h"
#include "test_sidecar_util.h"

typedef struct rig {
    cert_pool *pool;
    dp_proxy *px;
    int port;
} rig;

static void rig_up(rig *r)
{
    mesh_err e;
    cr_assert_eq(cert_pool_new(&r->pool, &e), MESH_OK);
    dp_proxy_opts o = {.pool = r->pool, .admin_address = "127.0.0.1:0"};
    cr_assert_eq(dp_proxy_new(&o, &r->px, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_proxy_start(r->px, &e), MESH_OK, "%s", e.msg);
    r->port = dp_proxy_admin_port(r->px);
    cr_assert(r->port > 0);
}

static void rig_down(rig *r)
{
    dp_proxy_free(r->px);
    cert_pool_free(r->pool);
}

static const char stats_fresh[] =
    "# HELP mesh_sidecar_http_requests_total HTTP exchanges finished, by direction and response "
    "class (reset = no response).\n"
    "# TYPE mesh_sidecar_http_requests_total counter\n"
    "mesh_sidecar_http_requests_total{direction=\"outbound\",code_class=\"reset\"} 0\n"
    "mesh_sidecar_http_requests_total{direction=\"outbound\",code_class=\"1xx\"} 0\n"
    "mesh_sidecar_http_requests_total{direction=\"outbound\",code_class=\"2xx\"} 0\n"
    "mesh_sidecar_http_requests_total{direction=\"outbound\",code_class=\"3xx\"} 0\n"
    "mesh_sidecar_http_requests_total{direction=\"outbound\",code_class=\"4xx\"} 0\n"
    "mesh_sidecar_http_requests_total{direction=\"outbound\",code_class=\"5xx\"} 0\n"
    "mesh_sidecar_http_requests_total{direction=\"inbound\",code_class=\"reset\"} 0\n"
    "mesh_sidecar_http_requests_total{direction=\"inbound\",code_class=\"1xx\"} 0\n"
    "mesh_sidecar_http_requests_total{direction=\"inbound\",code_class=\"2xx\"} 0\n"
    "mesh_sidecar_http_requests_total{direction=\"inbound\",code_class=\"3xx\"} 0\n"
    "mesh_sidecar_http_requests_total{direction=\"inbound\",code_class=\"4xx\"} 0\n"
    "mesh_sidecar_http_requests_total{direction=\"inbound\",code_class=\"5xx\"} 0\n"
    "# HELP mesh_sidecar_upstream_handshakes_total mTLS handshakes to peer sidecars.\n"
    "# TYPE mesh_sidecar_upstream_handshakes_total counter\n"
    "mesh_sidecar_upstream_handshakes_total{result=\"ok\"} 0\n"
    "mesh_sidecar_upstream_handshakes_total{result=\"failed\"} 0\n"
    "# HELP mesh_sidecar_downstream_handshakes_total mTLS handshakes from peer sidecars.\n"
    "# TYPE mesh_sidecar_downstream_handshakes_total counter\n"
    "mesh_sidecar_downstream_handshakes_total{result=\"ok\"} 0\n"
    "mesh_sidecar_downstream_handshakes_total{result=\"failed\"} 0\n"
    "# HELP mesh_sidecar_rbac_denied_total Callers refused by authorization policy.\n"
    "# TYPE mesh_sidecar_rbac_denied_total counter\n"
    "mesh_sidecar_rbac_denied_total 0\n"
    "# HELP mesh_sidecar_upstream_retries_total Upstream requests retried by route retry "
    "policy.\n"
    "# TYPE mesh_sidecar_upstream_retries_total counter\n"
    "mesh_sidecar_upstream_retries_total 0\n"
    "# HELP mesh_sidecar_upstream_timeouts_total Upstream requests that hit the route "
    "timeout.\n"
    "# TYPE mesh_sidecar_upstream_timeouts_total counter\n"
    "mesh_sidecar_upstream_timeouts_total 0\n"
    "# HELP mesh_sidecar_outlier_ejections_total Upstream hosts ejected by outlier "
    "detection.\n"
    "# TYPE mesh_sidecar_outlier_ejections_total counter\n"
    "mesh_sidecar_outlier_ejections_total 0\n"
    "# HELP mesh_sidecar_upstream_per_try_timeouts_total Attempts abandoned at the route's "
    "per-try timeout.\n"
    "# TYPE mesh_sidecar_upstream_per_try_timeouts_total counter\n"
    "mesh_sidecar_upstream_per_try_timeouts_total 0\n"
    "# HELP mesh_sidecar_health_checks_total Active health check probes of upstream hosts.\n"
    "# TYPE mesh_sidecar_health_checks_total counter\n"
    "mesh_sidecar_health_checks_total{result=\"ok\"} 0\n"
    "mesh_sidecar_health_checks_total{result=\"failed\"} 0\n"
    "# HELP mesh_sidecar_upstream_overflow_total Requests or connections refused by a "
    "circuit breaker, by limit.\n"
    "# TYPE mesh_sidecar_upstream_overflow_total counter\n"
    "mesh_sidecar_upstream_overflow_total{limit=\"max_connections\"} 0\n"
    "mesh_sidecar_upstream_overflow_total{limit=\"max_pending_requests\"} 0\n"
    "mesh_sidecar_upstream_overflow_total{limit=\"max_requests\"} 0\n"
    "mesh_sidecar_upstream_overflow_total{limit=\"max_retries\"} 0\n"
    "# HELP mesh_sidecar_tls_refused_expired_total Handshakes refused because our SVID had "
    "expired (fail closed).\n"
    "# TYPE mesh_sidecar_tls_refused_expired_total counter\n"
    "mesh_sidecar_tls_refused_expired_total 0\n"
    "# HELP mesh_sidecar_connections_closed_cert_expiry_total Live connections closed when a "
    "certificate on them expired.\n"
    "# TYPE mesh_sidecar_connections_closed_cert_expiry_total counter\n"
    "mesh_sidecar_connections_closed_cert_expiry_total 0\n"
    "# HELP mesh_sidecar_tls_refused_revoked_total Handshakes refused because the peer's "
    "certificate is on a CRL.\n"
    "# TYPE mesh_sidecar_tls_refused_revoked_total counter\n"
    "mesh_sidecar_tls_refused_revoked_total 0\n"
    "# HELP mesh_sidecar_connections_closed_revoked_total Live connections closed when new "
    "CRLs revoked a certificate on them.\n"
    "# TYPE mesh_sidecar_connections_closed_revoked_total counter\n"
    "mesh_sidecar_connections_closed_revoked_total 0\n"
    "# HELP mesh_sidecar_active_connections Open connections.\n"
    "# TYPE mesh_sidecar_active_connections gauge\n"
    "mesh_sidecar_active_connections{side=\"downstream\"} 0\n"
    "mesh_sidecar_active_connections{side=\"upstream\"} 0\n"
    /* per cluster (none yet), under Envoy's names */
    "# HELP envoy_cluster_upstream_cx_overflow_total Connections refused by the cluster's "
    "max_connections circuit breaker.\n"
    "# TYPE envoy_cluster_upstream_cx_overflow_total counter\n"
    "# HELP envoy_cluster_upstream_rq_pending_overflow_total Requests refused by "
    "max_pending_requests or max_requests (Envoy counts both here).\n"
    "# TYPE envoy_cluster_upstream_rq_pending_overflow_total counter\n"
    "# HELP envoy_cluster_upstream_rq_retry_overflow_total Retries not made because of the "
    "cluster's max_retries circuit breaker.\n"
    "# TYPE envoy_cluster_upstream_rq_retry_overflow_total counter\n"
    "# HELP envoy_cluster_upstream_rq_active Requests in flight to the cluster.\n"
    "# TYPE envoy_cluster_upstream_rq_active gauge\n"
    "# HELP envoy_cluster_upstream_cx_active Upstream connections of the cluster (connecting, "
    "in use or pooled).\n"
    "# TYPE envoy_cluster_upstream_cx_active gauge\n"
    "# HELP mesh_sidecar_xds_updates_total xDS versions applied (ACK).\n"
    "# TYPE mesh_sidecar_xds_updates_total counter\n"
    "mesh_sidecar_xds_updates_total{type=\"lds\"} 0\n"
    "mesh_sidecar_xds_updates_total{type=\"rds\"} 0\n"
    "mesh_sidecar_xds_updates_total{type=\"cds\"} 0\n"
    "mesh_sidecar_xds_updates_total{type=\"eds\"} 0\n"
    "mesh_sidecar_xds_updates_total{type=\"sds\"} 0\n"
    "# HELP mesh_sidecar_xds_rejections_total xDS versions rejected (NACK).\n"
    "# TYPE mesh_sidecar_xds_rejections_total counter\n"
    "mesh_sidecar_xds_rejections_total{type=\"lds\"} 0\n"
    "mesh_sidecar_xds_rejections_total{type=\"rds\"} 0\n"
    "mesh_sidecar_xds_rejections_total{type=\"cds\"} 0\n"
    "mesh_sidecar_xds_rejections_total{type=\"eds\"} 0\n"
    "mesh_sidecar_xds_rejections_total{type=\"sds\"} 0\n"
    "# HELP mesh_sidecar_xds_failovers_total ADS streams that came up on another meshd replica "
    "than the one before.\n"
    "# TYPE mesh_sidecar_xds_failovers_total counter\n"
    "mesh_sidecar_xds_failovers_total 0\n"
    "# HELP mesh_sidecar_cert_seconds_left Seconds until the current SVID expires (negative: "
    "expired; the outage budget). Absent without an SVID.\n"
    "# TYPE mesh_sidecar_cert_seconds_left gauge\n"
    "# HELP mesh_sidecar_access_log_dropped_total Access log lines dropped because the log did "
    "not keep up (4 MiB pending).\n"
    "# TYPE mesh_sidecar_access_log_dropped_total counter\n"
    "mesh_sidecar_access_log_dropped_total 0\n"
    "# HELP mesh_sidecar_cluster_requests_total HTTP exchanges finished, by direction, upstream "
    "cluster, route, peer SPIFFE ID (inbound: the caller; outbound: the upstream) and response "
    "class (reset = no response).\n"
    "# TYPE mesh_sidecar_cluster_requests_total counter\n"
    "# HELP mesh_sidecar_cluster_request_duration_seconds Time from the request head to the end "
    "of the response, by direction, cluster, route and peer.\n"
    "# TYPE mesh_sidecar_cluster_request_duration_seconds histogram\n"
    "# HELP mesh_sidecar_cluster_request_bytes_total Request body bytes received from the client, "
    "by direction, cluster, route and peer.\n"
    "# TYPE mesh_sidecar_cluster_request_bytes_total counter\n"
    "# HELP mesh_sidecar_cluster_response_bytes_total Response body bytes sent to the client, by "
    "direction, cluster, route and peer.\n"
    "# TYPE mesh_sidecar_cluster_response_bytes_total counter\n";

Test(sidecar_admin, stats_exposition_is_stable)
{
    rig r;
    rig_up(&r);
    char body[16384];
    cr_assert_eq(tsc_http_get(r.port, "localhost", "/stats", NULL, body, sizeof body), 200);
    cr_assert_str_eq(body, stats_fresh);
    rig_down(&r);
}

/* A stream on another meshd replica than the last one counts as a fail-over; a
 * reconnect to the same replica (new SVID, meshd restart) does not. */
Test(sidecar_admin, failovers_count_moves_between_replicas)
{
    rig r;
    rig_up(&r);
    dp_stats_view v;
    dp_proxy_xds_connected(r.px, true, "127.0.0.1:1");
    dp_proxy_get_stats(r.px, &v);
    cr_assert_eq(v.xds_failovers, 0, "the first stream is not a fail-over");
    dp_proxy_xds_connected(r.px, false, "127.0.0.1:1");
    dp_proxy_xds_connected(r.px, true, "127.0.0.1:1");
    dp_proxy_get_stats(r.px, &v);
    cr_assert_eq(v.xds_failovers, 0, "back on the same replica");
    dp_proxy_xds_connected(r.px, false, "127.0.0.1:1");
    dp_proxy_xds_connected(r.px, true, "127.0.0.1:2");
    dp_proxy_get_stats(r.px, &v);
    cr_assert_eq(v.xds_failovers, 1);
    dp_proxy_xds_connected(r.px, false, "127.0.0.1:2");
    dp_proxy_xds_connected(r.px, false, "");
    dp_proxy_xds_connected(r.px, true, "127.0.0.1:1");
    dp_proxy_get_stats(r.px, &v);
    cr_assert_eq(v.xds_failovers, 2, "a disconnect in between does not reset who we were on");
    char body[16384];
    cr_assert_eq(tsc_http_get(r.port, "localhost", "/stats", NULL, body, sizeof body), 200);
    cr_assert_not_null(strstr(body, "\nmesh_sidecar_xds_failovers_total 2\n"));
    rig_down(&r);
}

/* One of each: a listener per kind, a route table with a header matcher and
 * weighted clusters, a static and an EDS cluster. */
static dp_config *config(void)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    char *allow[] = {"spiffe://example.org/ns/default/sa/web"};
    dp_listener in = {.name = "inbound|http", .address = "127.0.0.1:0",
                      .kind = DP_LISTENER_INBOUND_HTTP, .allowed_ids = allow, .n_allowed = 1,
                      .local_cluster = "local|app"};
    dp_listener out = {.name = "outbound|http", .address = "127.0.0.2:0",
                       .kind = DP_LISTENER_OUTBOUND_HTTP, .route_table = "outbound|http"};
    dp_listener tcp = {.name = "outbound|tcp", .address = "127.0.0.3:0",
                       .kind = DP_LISTENER_OUTBOUND_TCP, .cluster = "outbound|api"};
    cr_assert_eq(dp_config_add_listener(c, &in, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_config_add_listener(c, &out, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_config_add_listener(c, &tcp, &e), MESH_OK, "%s", e.msg);
    dp_endpoint app = {.address = "127.0.0.1:9"};
    dp_cluster local = {.name = "local|app", .endpoints = &app, .n_endpoints = 1};
    char *san[] = {"spiffe://example.org/ns/default/sa/api"};
    dp_cluster api = {.name = "outbound|api", .tls = true, .eds = true, .san_ids = san,
                      .n_san = 1, .connect_timeout_ms = 250, .lb = DP_LB_LEAST_REQUEST};
    cr_assert_eq(dp_config_add_cluster(c, &local, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_config_add_cluster(c, &api, &e), MESH_OK, "%s", e.msg);
    dp_endpoint eps[] = {{.address = "127.0.0.1:7001", .health = DP_HEALTH_HEALTHY},
                         {.address = "127.0.0.1:7002", .health = DP_HEALTH_UNHEALTHY}};
    dp_load_assignment la = {.cluster_name = "outbound|api", .endpoints = eps,
                             .n_endpoints = 2};
    cr_assert_eq(dp_config_add_assignment(c, &la, &e), MESH_OK, "%s", e.msg);
    dp_weighted_cluster split[] = {{.cluster = "outbound|api", .weight = 80},
                                   {.cluster = "local|app", .weight = 20}};
    dp_header_matcher hm = {.name = "x-canary", .kind = DP_HDR_PRESENT, .invert = true};
    dp_route routes[] = {
        {.name = "canary", .path_kind = DP_PATH_PREFIX, .path = "/v2/", .headers = &hm,
         .n_headers = 1, .clusters = split, .n_clusters = 2, .timeout_ms = 1500, .retries = 2},
        {.path_kind = DP_PATH_EXACT, .path = "/health", .clusters = split, .n_clusters = 1},
    };
    char *doms[] = {"api", "api.mesh:8080"};
    dp_virtual_host vh = {.name = "api", .domains = doms, .n_domains = 2, .routes = routes,
                          .n_routes = 2};
    dp_route_table rt = {.name = "outbound|http", .vhosts = &vh, .n_vhosts = 1};
    cr_assert_eq(dp_config_add_route_table(c, &rt, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_config_freeze(c, &e), MESH_OK, "%s", e.msg);
    return c;
}

Test(sidecar_admin, config_dump_shape_is_stable)
{
    rig r;
    rig_up(&r);
    char body[16384], want[8192];
    cr_assert_eq(tsc_http_get(r.port, "localhost", "/config_dump", NULL, body, sizeof body),
                 200);
    cr_assert_str_eq(body, "{\"xds\":{\"connected\":false,\"server\":\"\","
                           "\"lds\":{\"version\":\"\",\"updates\":0,\"rejections\":0},"
                           "\"rds\":{\"version\":\"\",\"updates\":0,\"rejections\":0},"
                           "\"cds\":{\"version\":\"\",\"updates\":0,\"rejections\":0},"
                           "\"eds\":{\"version\":\"\",\"updates\":0,\"rejections\":0},"
                           "\"sds\":{\"version\":\"\",\"updates\":0,\"rejections\":0}},"
                           "\"listeners\":[],\"route_tables\":[],\"clusters\":[],\"configs\":[]}");

    mesh_err e;
    dp_config *c = config();
    cr_assert_eq(dp_proxy_apply_config(r.px, c, &e), MESH_OK, "%s", e.msg);
    dp_config_unref(c);
    dp_proxy_xds_connected(r.px, true, "127.0.0.1:15010");
    cr_assert_eq(tsc_http_get(r.port, "localhost", "/config_dump", NULL, body, sizeof body),
                 200);
    snprintf(want, sizeof want,
             "{\"xds\":{\"connected\":true,\"server\":\"127.0.0.1:15010\","
             "\"lds\":{\"version\":\"\",\"updates\":0,\"rejections\":0},"
             "\"rds\":{\"version\":\"\",\"updates\":0,\"rejections\":0},"
             "\"cds\":{\"version\":\"\",\"updates\":0,\"rejections\":0},"
             "\"eds\":{\"version\":\"\",\"updates\":0,\"rejections\":0},"
             "\"sds\":{\"version\":\"\",\"updates\":0,\"rejections\":0}},"
             "\"listeners\":["
             "{\"name\":\"inbound|http\",\"address\":\"127.0.0.1:0\",\"kind\":\"inbound-http\","
             "\"bound_port\":%d,\"local_cluster\":\"local|app\","
             "\"allowed_ids\":[\"spiffe://example.org/ns/default/sa/web\"]},"
             "{\"name\":\"outbound|http\",\"address\":\"127.0.0.2:0\","
             "\"kind\":\"outbound-http\",\"bound_port\":%d,\"route_table\":\"outbound|http\"},"
             "{\"name\":\"outbound|tcp\",\"address\":\"127.0.0.3:0\",\"kind\":\"outbound-tcp\","
             "\"bound_port\":%d,\"cluster\":\"outbound|api\"}],"
             "\"route_tables\":[{\"name\":\"outbound|http\",\"virtual_hosts\":[{\"name\":\"api\","
             "\"domains\":[\"api\",\"api.mesh:8080\"],\"routes\":["
             "{\"name\":\"canary\",\"prefix\":\"/v2/\",\"headers\":[{\"name\":\"x-canary\","
             "\"match\":\"present\",\"invert\":true}],\"clusters\":[{\"name\":\"outbound|api\","
             "\"weight\":80},{\"name\":\"local|app\",\"weight\":20}],\"timeout_ms\":1500,"
             "\"retries\":2,\"per_try_timeout_ms\":0,\"retry_previous_hosts\":false},"
             "{\"path\":\"/health\",\"clusters\":[{\"name\":\"outbound|api\",\"weight\":80}],"
             "\"timeout_ms\":0,\"retries\":0,\"per_try_timeout_ms\":0,"
             "\"retry_previous_hosts\":false}]}]}],"
             "\"clusters\":["
             "{\"name\":\"local|app\",\"lb\":\"round_robin\",\"mtls\":false,"
             "\"discovery\":\"static\",\"connect_timeout_ms\":%d,\"san_ids\":[],"
             "\"endpoints\":[{\"address\":\"127.0.0.1:9\",\"health\":\"UNKNOWN\","
             "\"active_requests\":0,\"idle_connections\":0}]},"
             "{\"name\":\"outbound|api\",\"lb\":\"least_request\",\"mtls\":true,"
             "\"discovery\":\"eds\",\"connect_timeout_ms\":250,"
             "\"san_ids\":[\"spiffe://example.org/ns/default/sa/api\"],"
             "\"endpoints\":[{\"address\":\"127.0.0.1:7001\",\"health\":\"HEALTHY\","
             "\"active_requests\":0,\"idle_connections\":0},"
             "{\"address\":\"127.0.0.1:7002\",\"health\":\"UNHEALTHY\","
             "\"active_requests\":0,\"idle_connections\":0}]}],\"configs\":[]}",
             dp_proxy_listener_port(r.px, "inbound|http"),
             dp_proxy_listener_port(r.px, "outbound|http"),
             dp_proxy_listener_port(r.px, "outbound|tcp"), DP_DEFAULT_CONNECT_TIMEOUT_MS);
    cr_assert_str_eq(body, want);
    rig_down(&r);
}
