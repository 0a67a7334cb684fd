/* sds/compiler/xds_compile_health.c — a service's endpoint-health knobs on its outbound
 * cluster (docs/xds.md), in Envoy's shapes:
 *   outlier_detection  consecutive_5xx / consecutive_gateway_failure (enforced 100 %),
 *                      interval, base/max ejection time, max_ejection_percent
 *   health_checks      one HttpHealthCheck (GET path, expect 2xx) or TcpHealthCheck,
 *                      timeout, interval with 10 % jitter, thresholds
 *   circuit_breakers   one DEFAULT-priority Thresholds with the limits the service sets
 * and, on every retry policy, the previous_hosts host predicate, so that a retry goes to
 * a host no earlier attempt of the request used (Istio sets the same). */
#include "sds/compiler/xds_compile_internal.h"

#include "envoy/config/cluster/v3/circuit_breaker.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/cluster/v3/outlier_detection.pb-c.h"
#include "envoy/config/core/v3/health_check.pb-c.h"
#include "envoy/config/route/v3/route_components.pb-c.h"
#include "envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.pb-c.h"

typedef Envoy__Config__Core__V3__HealthCheck HealthCheck;

static int outlier(xc_ctx *c, Envoy__Config__Cluster__V3__Cluster *cl, const mesh_outlier *o)
{
    if (o->consecutive_5xx == 0 && o->consecutive_gateway_failure == 0)
        return MESH_OK;     /* off: Envoy does no outlier detection without the message */
    Envoy__Config__Cluster__V3__OutlierDetection *od = xc_alloc(&c->arena, sizeof *od);
    if (od == NULL)
        return xc_oom_status(c);
    envoy__config__cluster__v3__outlier_detection__init(od);
    /* Envoy's default consecutive_5xx is 5 when unset: 0 must be sent as
     * "never enforced", which is enforcing_consecutive_5xx 0. */
    if ((od->consecutive_5xx = xc_u32(c, o->consecutive_5xx ? o->consecutive_5xx : 5)) == NULL ||
        (od->enforcing_consecutive_5xx = xc_u32(c, o->consecutive_5xx ? 100 : 0)) == NULL ||
        (od->interval = xc_duration_ms(c, o->interval_ms)) == NULL ||
        (od->base_ejection_time = xc_duration_ms(c, o->base_ejection_ms)) == NULL ||
        (od->max_ejection_time = xc_duration_ms(c, o->max_ejection_ms)) == NULL ||
        (od->max_ejection_percent = xc_u32(c, o->max_ejection_percent)) == NULL)
        return xc_status(c);
    if (o->consecutive_gateway_failure &&
        ((od->consecutive_gateway_failure = xc_u32(c, o->consecutive_gateway_failure)) == NULL ||
         (od->enforcing_consecutive_gateway_failure = xc_u32(c, 100)) == NULL))
        return xc_status(c);
    cl->outlier_detection = od;
    return MESH_OK;
}

static int health_check(xc_ctx *c, Envoy__Config__Cluster__V3__Cluster *cl,
                        const mesh_health_check *h)
{
    if (h->kind == MESH_HC_NONE)
        return MESH_OK;
    HealthCheck *hc = xc_alloc(&c->arena, sizeof *hc);
    HealthCheck **list = xc_array(&c->arena, 1, sizeof *list);
    if (hc == NULL || list == NULL)
        return xc_oom_status(c);
    envoy__config__core__v3__health_check__init(hc);
    if ((hc->timeout = xc_duration_ms(c, h->timeout_ms)) == NULL ||
        (hc->interval = xc_duration_ms(c, h->interval_ms)) == NULL ||
        (hc->unhealthy_threshold = xc_u32(c, h->unhealthy_threshold)) == NULL ||
        (hc->healthy_threshold = xc_u32(c, h->healthy_threshold)) == NULL)
        return xc_status(c);
    /* Spread the probes of many sidecars over the interval. */
    hc->interval_jitter_percent = 10;
    if (h->kind == MESH_HC_HTTP) {
        Envoy__Config__Core__V3__HealthCheck__HttpHealthCheck *http =
            xc_alloc(&c->arena, sizeof *http);
        if (http == NULL)
            return xc_oom_status(c);
        envoy__config__core__v3__health_check__http_health_check__init(http);
        http->path = h->path;
        hc->health_checker_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_HTTP_HEALTH_CHECK;
        hc->http_health_check = http;
    } else {
        Envoy__Config__Core__V3__HealthCheck__TcpHealthCheck *tcp =
            xc_alloc(&c->arena, sizeof *tcp);
        if (tcp == NULL)
            return xc_oom_status(c);
        envoy__config__core__v3__health_check__tcp_health_check__init(tcp);
        hc->health_checker_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_TCP_HEALTH_CHECK;
        hc->tcp_health_check = tcp;
    }
    list[0] = hc;
    cl->n_health_checks = 1;
    cl->health_checks = list;
    return MESH_OK;
}

static int breakers(xc_ctx *c, Envoy__Config__Cluster__V3__Cluster *cl,
                    const mesh_circuit_breakers *b)
{
    if (!b->max_connections && !b->max_pending_requests && !b->max_requests && !b->max_retries)
        return MESH_OK;     /* Envoy's defaults apply */
    Envoy__Config__Cluster__V3__CircuitBreakers *cb = xc_alloc(&c->arena, sizeof *cb);
    Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *t = xc_alloc(&c->arena, sizeof *t);
    Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds **ts = xc_array(&c->arena, 1, sizeof *ts);
    if (cb == NULL || t == NULL || ts == NULL)
        return xc_oom_status(c);
    envoy__config__cluster__v3__circuit_breakers__init(cb);
    envoy__config__cluster__v3__circuit_breakers__thresholds__init(t);
    if ((b->max_connections && (t->max_connections = xc_u32(c, b->max_connections)) == NULL) ||
        (b->max_pending_requests &&
         (t->max_pending_requests = xc_u32(c, b->max_pending_requests)) == NULL) ||
        (b->max_requests && (t->max_requests = xc_u32(c, b->max_requests)) == NULL) ||
        (b->max_retries && (t->max_retries = xc_u32(c, b->max_retries)) == NULL))
        return xc_status(c);
    ts[0] = t;
    cb->n_thresholds = 1;
    cb->thresholds = ts;
    cl->circuit_breakers = cb;
    return MESH_OK;
}

int xc_cluster_health(xc_ctx *c, Envoy__Config__Cluster__V3__Cluster *cl,
                      const mesh_service *svc)
{
    mesh_outlier obuf;
    int rc = outlier(c, cl, config_service_outlier(svc, &obuf));
    if (rc == MESH_OK)
        rc = health_check(c, cl, &svc->health_check);
    if (rc == MESH_OK)
        rc = breakers(c, cl, &svc->circuit_breakers);
    return rc;
}

int xc_retry_previous_hosts(xc_ctx *c, Envoy__Config__Route__V3__RetryPolicy *p)
{
    Envoy__Extensions__Retry__Host__PreviousHosts__V3__PreviousHostsPredicate *cfg =
        xc_alloc(&c->arena, sizeof *cfg);
    Envoy__Config__Route__V3__RetryPolicy__RetryHostPredicate *pred =
        xc_alloc(&c->arena, sizeof *pred);
    Envoy__Config__Route__V3__RetryPolicy__RetryHostPredicate **list =
        xc_array(&c->arena, 1, sizeof *list);
    if (cfg == NULL || pred == NULL || list == NULL)
        return xc_oom_status(c);
    envoy__extensions__retry__host__previous_hosts__v3__previous_hosts_predicate__init(cfg);
    envoy__config__route__v3__retry_policy__retry_host_predicate__init(pred);
    pred->name = XC_PREVIOUS_HOSTS;
    pred->config_type_case =
        ENVOY__CONFIG__ROUTE__V3__RETRY_POLICY__RETRY_HOST_PREDICATE__CONFIG_TYPE_TYPED_CONFIG;
    if ((pred->typed_config = xc_any(c, XC_PREVIOUS_HOSTS_TYPE, &cfg->base)) == NULL)
        return xc_status(c);
    list[0] = pred;
    p->n_retry_host_predicate = 1;
    p->retry_host_predicate = list;
    p->host_selection_retry_max_attempts = XC_HOST_SELECTION_ATTEMPTS;
    return MESH_OK;
}
