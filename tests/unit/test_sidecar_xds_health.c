/* tests/unit/test_sidecar_xds_health.c — the sidecar's translation of a CDS Cluster's
 * outlier_detection, health_checks and circuit_breakers and of a route's
 * retry_policy.per_try_timeout: Envoy's defaults for unset fields, values taken as
 * given, and the NACK (MESH_EINVAL with an error_detail naming the resource and
 * field) for what is invalid or not supported. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/cluster/v3/circuit_breaker.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/cluster/v3/outlier_detection.pb-c.h"
#include "envoy/config/core/v3/health_check.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "sidecar/xds_translate.h"
#include "test_sidecar_xds_util.h"

typedef Google__Protobuf__Duration Duration;
typedef Google__Protobuf__UInt32Value U32;

/* An EDS cluster (no endpoints needed) with optional health parts. */
typedef struct parts {
    Envoy__Config__Cluster__V3__Cluster c;
    Envoy__Config__Cluster__V3__OutlierDetection od;
    Envoy__Config__Core__V3__HealthCheck hc, hc2, *hcs[2];
    Envoy__Config__Core__V3__HealthCheck__HttpHealthCheck http;
    Envoy__Config__Core__V3__HealthCheck__TcpHealthCheck tcp;
    Envoy__Config__Cluster__V3__CircuitBreakers cb;
    Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds t[2], *ts[2];
    Duration d[8];
    U32 u[12];
    int nd, nu;
} parts;

static void p_init(parts *p)
{
    memset(p, 0, sizeof *p);
    envoy__config__cluster__v3__cluster__init(&p->c);
    p->c.name = "outbound|api";
    p->c.cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    p->c.type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
    envoy__config__cluster__v3__outlier_detection__init(&p->od);
    envoy__config__core__v3__health_check__init(&p->hc);
    envoy__config__core__v3__health_check__init(&p->hc2);
    envoy__config__core__v3__health_check__http_health_check__init(&p->http);
    envoy__config__core__v3__health_check__tcp_health_check__init(&p->tcp);
    envoy__config__cluster__v3__circuit_breakers__init(&p->cb);
    for (int i = 0; i < 2; i++) {
        envoy__config__cluster__v3__circuit_breakers__thresholds__init(&p->t[i]);
        p->ts[i] = &p->t[i];
    }
    p->hcs[0] = &p->hc;
    p->hcs[1] = &p->hc2;
}

static Duration *dur(parts *p, int64_t s, int32_t ns)
{
    Duration *d = &p->d[p->nd++];
    google__protobuf__duration__init(d);
    d->seconds = s;
    d->nanos = ns;
    return d;
}

static U32 *u32(parts *p, uint32_t v)
{
    U32 *u = &p->u[p->nu++];
    google__protobuf__uint32_value__init(u);
    u->value = v;
    return u;
}

/* A valid HTTP health check on /healthz. */
static void with_http_hc(parts *p)
{
    p->http.path = "/healthz";
    p->hc.health_checker_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_HTTP_HEALTH_CHECK;
    p->hc.http_health_check = &p->http;
    p->hc.timeout = dur(p, 1, 0);
    p->hc.interval = dur(p, 5, 0);
    p->hc.unhealthy_threshold = u32(p, 2);
    p->hc.healthy_threshold = u32(p, 1);
    p->c.health_checks = p->hcs;
    p->c.n_health_checks = 1;
}

/* Translates p; on success *out is the cluster (in *cfg, which the caller unrefs). */
static int tr(parts *p, dp_config **cfg, const dp_cluster **out, mesh_err *err)
{
    size_t len;
    uint8_t *buf = tx_pack(&p->c.base, &len);
    *cfg = dp_config_new();
    int rc = xdsc_translate_cluster(*cfg, buf, len, err);
    if (rc == MESH_OK)
        rc = dp_config_freeze(*cfg, err);
    free(buf);
    *out = rc == MESH_OK ? dp_config_find_cluster(*cfg, "outbound|api", NULL) : NULL;
    return rc;
}

static void expect_nack(parts *p, const char *want1, const char *want2)
{
    dp_config *cfg;
    const dp_cluster *c;
    mesh_err err = {0};
    cr_assert_eq(tr(p, &cfg, &c, &err), MESH_EINVAL, "expected a NACK with '%s'", want1);
    cr_assert(strstr(err.msg, "cluster 'outbound|api'"), "names the resource: %s", err.msg);
    cr_assert(strstr(err.msg, want1), "wanted '%s' in: %s", want1, err.msg);
    if (want2)
        cr_assert(strstr(err.msg, want2), "wanted '%s' in: %s", want2, err.msg);
    dp_config_unref(cfg);
}

Test(sidecar_xds_health, outlier_detection_defaults_and_values)
{
    parts p;
    p_init(&p);
    p.c.outlier_detection = &p.od;
    dp_config *cfg;
    const dp_cluster *c;
    mesh_err err = {0};
    cr_assert_eq(tr(&p, &cfg, &c, &err), MESH_OK, "%s", err.msg);
    cr_assert(c->outlier.enabled);
    cr_assert_eq(c->outlier.consecutive_5xx, 5, "Envoy's default");
    cr_assert_eq(c->outlier.consecutive_gateway_failure, 0, "enforced 0 %% by default");
    cr_assert_eq(c->outlier.interval_ms, 10000);
    cr_assert_eq(c->outlier.base_ejection_ms, 30000);
    cr_assert_eq(c->outlier.max_ejection_ms, 300000);
    cr_assert_eq(c->outlier.max_ejection_percent, 10);
    dp_config_unref(cfg);

    p.od.consecutive_5xx = u32(&p, 3);
    p.od.consecutive_gateway_failure = u32(&p, 2);
    p.od.enforcing_consecutive_gateway_failure = u32(&p, 100);
    p.od.interval = dur(&p, 1, 0);
    p.od.base_ejection_time = dur(&p, 4, 0);
    p.od.max_ejection_percent = u32(&p, 50);
    cr_assert_eq(tr(&p, &cfg, &c, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(c->outlier.consecutive_5xx, 3);
    cr_assert_eq(c->outlier.consecutive_gateway_failure, 2);
    cr_assert_eq(c->outlier.interval_ms, 1000);
    cr_assert_eq(c->outlier.base_ejection_ms, 4000);
    cr_assert_eq(c->outlier.max_ejection_percent, 50);
    dp_config_unref(cfg);

    p.od.enforcing_consecutive_5xx = u32(&p, 0);
    cr_assert_eq(tr(&p, &cfg, &c, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(c->outlier.consecutive_5xx, 0, "enforcing 0: not enforced");
    dp_config_unref(cfg);

    p_init(&p);
    cr_assert_eq(tr(&p, &cfg, &c, &err), MESH_OK, "%s", err.msg);
    cr_assert_not(c->outlier.enabled, "no message: no outlier detection (as Envoy)");
    dp_config_unref(cfg);
}

Test(sidecar_xds_health, outlier_detection_bad_values_are_nacked)
{
    parts p;
    p_init(&p);
    p.c.outlier_detection = &p.od;
    p.od.max_ejection_percent = u32(&p, 101);
    expect_nack(&p, "outlier_detection", "max_ejection_percent 101 exceeds 100");

    p_init(&p);
    p.c.outlier_detection = &p.od;
    p.od.split_external_local_origin_errors = 1;
    expect_nack(&p, "outlier_detection", "split_external_local_origin_errors");

    p_init(&p);
    p.c.outlier_detection = &p.od;
    p.od.interval = dur(&p, 0, 0);
    expect_nack(&p, "outlier_detection", "must be > 0");

    p_init(&p);
    p.c.outlier_detection = &p.od;
    p.od.base_ejection_time = dur(&p, -5, 0);
    expect_nack(&p, "outlier_detection: base_ejection_time", "out of range");
}

Test(sidecar_xds_health, health_check_http_and_tcp)
{
    parts p;
    p_init(&p);
    with_http_hc(&p);
    p.hc.interval_jitter_percent = 10;
    p.http.host = "api.internal";
    dp_config *cfg;
    const dp_cluster *c;
    mesh_err err = {0};
    cr_assert_eq(tr(&p, &cfg, &c, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(c->hc.kind, DP_HC_HTTP);
    cr_assert_str_eq(c->hc.path, "/healthz");
    cr_assert_str_eq(c->hc.host, "api.internal");
    cr_assert_eq(c->hc.timeout_ms, 1000);
    cr_assert_eq(c->hc.interval_ms, 5000);
    cr_assert_eq(c->hc.interval_jitter_percent, 10);
    cr_assert_eq(c->hc.unhealthy_threshold, 2);
    cr_assert_eq(c->hc.healthy_threshold, 1);
    dp_config_unref(cfg);

    p.hc.health_checker_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_TCP_HEALTH_CHECK;
    p.hc.tcp_health_check = &p.tcp;
    cr_assert_eq(tr(&p, &cfg, &c, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(c->hc.kind, DP_HC_TCP);
    dp_config_unref(cfg);

    p_init(&p);
    cr_assert_eq(tr(&p, &cfg, &c, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(c->hc.kind, DP_HC_NONE);
    dp_config_unref(cfg);
}

Test(sidecar_xds_health, health_check_bad_values_are_nacked)
{
    parts p;
    p_init(&p);
    with_http_hc(&p);
    p.http.path = "healthz";
    expect_nack(&p, "health_checks[0]", "path must start with '/'");

    p_init(&p);
    with_http_hc(&p);
    p.http.path = "/a b";
    expect_nack(&p, "health_checks[0]", "whitespace");

    p_init(&p);
    with_http_hc(&p);
    p.http.host = "a\r\nx-evil: 1";
    expect_nack(&p, "health_checks[0]", "host contains whitespace");

    p_init(&p);
    with_http_hc(&p);
    p.c.n_health_checks = 2;
    p.hc2 = p.hc;
    expect_nack(&p, "health_checks: 2 given", "at most 1");

    p_init(&p);
    with_http_hc(&p);
    p.hc.health_checker_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER__NOT_SET;
    expect_nack(&p, "health_checks[0]", "only http_health_check and tcp_health_check");

    p_init(&p);
    with_http_hc(&p);
    p.hc.timeout = NULL;
    expect_nack(&p, "health_checks[0]", "are required");

    p_init(&p);
    with_http_hc(&p);
    p.hc.healthy_threshold = NULL;
    expect_nack(&p, "health_checks[0]", "are required");

    p_init(&p);
    with_http_hc(&p);
    p.hc.interval = dur(&p, 0, 0);
    expect_nack(&p, "health_checks[0]", "must be > 0");

    p_init(&p);
    with_http_hc(&p);
    p.hc.timeout = dur(&p, 1, 2000000000);
    expect_nack(&p, "health_checks[0]: timeout", "out of range");

    p_init(&p);
    with_http_hc(&p);
    p.hc.unhealthy_threshold = u32(&p, 0);
    expect_nack(&p, "health_checks[0]", "thresholds must be >= 1");
}

Test(sidecar_xds_health, circuit_breakers_default_priority_with_envoy_defaults)
{
    parts p;
    p_init(&p);
    dp_config *cfg;
    const dp_cluster *c;
    mesh_err err = {0};
    cr_assert_eq(tr(&p, &cfg, &c, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(c->breakers.max_connections, 1024, "no message: Envoy's defaults");
    cr_assert_eq(c->breakers.max_pending_requests, 1024);
    cr_assert_eq(c->breakers.max_requests, 1024);
    cr_assert_eq(c->breakers.max_retries, 3);
    dp_config_unref(cfg);

    p.c.circuit_breakers = &p.cb;
    p.cb.thresholds = p.ts;
    p.cb.n_thresholds = 2;
    p.t[0].priority = ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__HIGH;
    p.t[0].max_requests = u32(&p, 1);
    p.t[1].priority = ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__DEFAULT;
    p.t[1].max_requests = u32(&p, 7);
    p.t[1].max_retries = u32(&p, 0);
    cr_assert_eq(tr(&p, &cfg, &c, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(c->breakers.max_requests, 7, "the DEFAULT priority's, not HIGH's");
    cr_assert_eq(c->breakers.max_retries, 0, "an explicit 0 is kept: no retries");
    cr_assert_eq(c->breakers.max_connections, 1024, "unset fields: Envoy's defaults");
    cr_assert_eq(c->breakers.max_pending_requests, 1024);
    dp_config_unref(cfg);

    /* Only HIGH: the DEFAULT traffic keeps Envoy's defaults. */
    p.cb.n_thresholds = 1;
    cr_assert_eq(tr(&p, &cfg, &c, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(c->breakers.max_requests, 1024);
    dp_config_unref(cfg);
}

/* A route with a retry policy whose per_try_timeout is d. */
static int tr_route(Duration *d, dp_config **cfg, mesh_err *err)
{
    Envoy__Config__Route__V3__RetryPolicy rp = ENVOY__CONFIG__ROUTE__V3__RETRY_POLICY__INIT;
    Envoy__Config__Route__V3__RouteAction ra = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__INIT;
    Envoy__Config__Route__V3__RouteMatch m = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__INIT;
    Envoy__Config__Route__V3__Route r = ENVOY__CONFIG__ROUTE__V3__ROUTE__INIT, *rs[] = {&r};
    Envoy__Config__Route__V3__VirtualHost vh = ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__INIT,
                                          *vhs[] = {&vh};
    Envoy__Config__Route__V3__RouteConfiguration rc =
        ENVOY__CONFIG__ROUTE__V3__ROUTE_CONFIGURATION__INIT;
    char *domains[] = {"api"};
    U32 n = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    n.value = 2;
    rp.retry_on = "5xx,connect-failure";
    rp.num_retries = &n;
    rp.per_try_timeout = d;
    ra.cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
    ra.cluster = "outbound|api";
    ra.retry_policy = &rp;
    m.path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
    m.prefix = "/";
    r.match = &m;
    r.action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    r.route = &ra;
    vh.name = "api";
    vh.domains = domains;
    vh.n_domains = 1;
    vh.routes = rs;
    vh.n_routes = 1;
    rc.name = "outbound|http";
    rc.virtual_hosts = vhs;
    rc.n_virtual_hosts = 1;
    size_t len;
    uint8_t *buf = tx_pack(&rc.base, &len);
    *cfg = dp_config_new();
    int ret = xdsc_translate_route_config(*cfg, buf, len, err);
    free(buf);
    return ret;
}

Test(sidecar_xds_health, per_try_timeout)
{
    parts p;
    p_init(&p);
    dp_config *cfg;
    mesh_err err = {0};
    cr_assert_eq(tr_route(dur(&p, 0, 250000000), &cfg, &err), MESH_OK, "%s", err.msg);
    const dp_route *r = &dp_config_find_route_table(cfg, "outbound|http")->vhosts[0].routes[0];
    cr_assert_eq(r->per_try_timeout_ms, 250);
    cr_assert_eq(r->retries, 2);
    dp_config_unref(cfg);

    cr_assert_eq(tr_route(NULL, &cfg, &err), MESH_OK, "%s", err.msg);
    r = &dp_config_find_route_table(cfg, "outbound|http")->vhosts[0].routes[0];
    cr_assert_eq(r->per_try_timeout_ms, 0, "unset: none");
    dp_config_unref(cfg);

    cr_assert_eq(tr_route(dur(&p, 0, 1), &cfg, &err), MESH_OK, "%s", err.msg);
    r = &dp_config_find_route_table(cfg, "outbound|http")->vhosts[0].routes[0];
    cr_assert_eq(r->per_try_timeout_ms, 1, "sub-millisecond is not 'none'");
    dp_config_unref(cfg);

    cr_assert_eq(tr_route(dur(&p, -1, 0), &cfg, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "route_config 'outbound|http'") || strstr(err.msg, "outbound|http"),
              "names the resource: %s", err.msg);
    cr_assert(strstr(err.msg, "retry_policy.per_try_timeout") && strstr(err.msg, "out of range"),
              "names the field: %s", err.msg);
    dp_config_unref(cfg);
}
