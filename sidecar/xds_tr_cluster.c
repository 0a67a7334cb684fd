/* sidecar/xds_tr_cluster.c — CDS Cluster -> dp_cluster and EDS ClusterLoadAssignment
 * -> dp_load_assignment.
 *
 * Clusters are STATIC (the local app, endpoints inline) or EDS (peer
 * sidecars, endpoints by name over ADS). DNS and original-destination
 * clusters are refused: the sidecar never resolves names on the request path.
 * An UpstreamTlsContext makes the cluster mTLS with exact SPIFFE SAN
 * matchers; it must use our SDS secrets. Outlier detection, one HTTP or TCP
 * health check and the DEFAULT-priority circuit breaker thresholds are taken
 * with Envoy's defaults for unset fields (dp_health.h, proxy_hc.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "sidecar/xds_translate.h"
#include "sidecar/xds_translate_internal.h"

#define MAX_ENDPOINTS 65536
#define ADDR_LEN 96

typedef struct ep_buf {
    dp_endpoint *eps;
    char (*addrs)[ADDR_LEN];
    size_t n;
} ep_buf;

static void ep_buf_free(ep_buf *b)
{
    free(b->eps);
    free(b->addrs);
    memset(b, 0, sizeof *b);
}

static dp_health health_of(Envoy__Config__Core__V3__HealthStatus h)
{
    switch (h) {
    case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY: return DP_HEALTH_HEALTHY;
    case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY: return DP_HEALTH_UNHEALTHY;
    case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING: return DP_HEALTH_DRAINING;
    case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__TIMEOUT: return DP_HEALTH_TIMEOUT;
    case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DEGRADED: return DP_HEALTH_DEGRADED;
    default: return DP_HEALTH_UNKNOWN;
    }
}

/* Flattens localities into one endpoint list. Locality and endpoint weights
 * are accepted and ignored (balancing preference only); priorities other
 * than 0 would mean failover tiers, which the data plane does not have. */
static int endpoints_of(const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla,
                        const char *what, ep_buf *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    size_t total = 0;
    for (size_t i = 0; i < cla->n_endpoints; i++) {
        if (cla->endpoints[i]->priority != 0)
            return mesh_err_set(err, MESH_EINVAL,
                                "%s: endpoints[%zu]: priority %u is not supported (only 0)", what,
                                i, cla->endpoints[i]->priority);
        total += cla->endpoints[i]->n_lb_endpoints;
    }
    if (total > MAX_ENDPOINTS)
        return mesh_err_set(err, MESH_EINVAL, "%s: more than %d endpoints", what, MAX_ENDPOINTS);
    if (total == 0)
        return MESH_OK;
    out->eps = calloc(total, sizeof *out->eps);
    out->addrs = calloc(total, sizeof *out->addrs);
    if (!out->eps || !out->addrs) {
        ep_buf_free(out);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    char w[400];
    for (size_t i = 0; i < cla->n_endpoints; i++) {
        const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle = cla->endpoints[i];
        for (size_t j = 0; j < lle->n_lb_endpoints; j++) {
            const Envoy__Config__Endpoint__V3__LbEndpoint *le = lle->lb_endpoints[j];
            xdsc_tr_what(w, sizeof w, "%s: endpoints[%zu].lb_endpoints[%zu]", what, i, j);
            if (le->host_identifier_case !=
                    ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT ||
                !le->endpoint) {
                ep_buf_free(out);
                return mesh_err_set(err, MESH_EINVAL,
                                    "%s: only inline endpoints are supported (not endpoint_name)",
                                    w);
            }
            char aw[448];
            xdsc_tr_what(aw, sizeof aw, "%s: address", w);
            int rc = xdsc_tr_address(le->endpoint->address, aw, out->addrs[out->n], ADDR_LEN, err);
            if (rc != MESH_OK) {
                ep_buf_free(out);
                return rc;
            }
            out->eps[out->n].address = out->addrs[out->n];
            out->eps[out->n].health = health_of(le->health_status);
            out->n++;
        }
    }
    return MESH_OK;
}

static int upstream_tls(const Envoy__Config__Core__V3__TransportSocket *ts, const char *what,
                        xdsc_names *san, mesh_err *err)
{
    char w[400];
    xdsc_tr_what(w, sizeof w, "%s: transport_socket", what);
    if (ts->config_type_case != ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG)
        return mesh_err_set(err, MESH_EINVAL, "%s: missing typed_config", w);
    int rc = xdsc_tr_any_is(ts->typed_config, XDS_TYPE_URL_UPSTREAM_TLS, w, err);
    if (rc != MESH_OK)
        return rc;
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *u =
        envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__unpack(
            NULL, ts->typed_config->value.len, ts->typed_config->value.data);
    if (!u)
        return mesh_err_set(err, MESH_EINVAL, "%s: UpstreamTlsContext does not decode", w);
    if (u->allow_renegotiation)
        rc = mesh_err_set(err, MESH_EINVAL, "%s: allow_renegotiation is not supported", w);
    else
        rc = xdsc_tr_tls_context(u->common_tls_context, w, san, err);
    envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__free_unpacked(u, NULL);
    return rc;
}

static int duration_or(const Google__Protobuf__Duration *d, int64_t dflt, const char *what,
                       const char *field, int64_t *out, mesh_err *err)
{
    *out = dflt;
    if (!d)
        return MESH_OK;
    char w[448];
    xdsc_tr_what(w, sizeof w, "%s: %s", what, field);
    return xdsc_tr_duration_ms(d, w, out, err);
}

static uint32_t u32_or(const Google__Protobuf__UInt32Value *v, uint32_t dflt)
{
    return v ? v->value : dflt;
}

/* Envoy's defaults for unset fields: consecutive_5xx 5 enforced 100 %,
 * gateway failures 5 enforced 0 %, interval 10 s, ejection 30 s up to 300 s,
 * at most 10 % ejected. */
static int outlier_from(const Envoy__Config__Cluster__V3__OutlierDetection *od,
                        const char *what, dp_outlier_cfg *o, mesh_err *err)
{
    char w[400];
    xdsc_tr_what(w, sizeof w, "%s: outlier_detection", what);
    o->enabled = true;
    o->consecutive_5xx = u32_or(od->enforcing_consecutive_5xx, 100) > 0
                             ? u32_or(od->consecutive_5xx, 5) : 0;
    o->consecutive_gateway_failure = u32_or(od->enforcing_consecutive_gateway_failure, 0) > 0
                                         ? u32_or(od->consecutive_gateway_failure, 5) : 0;
    o->max_ejection_percent = u32_or(od->max_ejection_percent, 10);
    if (o->max_ejection_percent > 100)
        return mesh_err_set(err, MESH_EINVAL, "%s: max_ejection_percent %u exceeds 100", w,
                            o->max_ejection_percent);
    if (od->split_external_local_origin_errors)
        return mesh_err_set(err, MESH_EINVAL, "%s: split_external_local_origin_errors is not "
                            "supported (connect failures count as 503)", w);
    int rc;
    if ((rc = duration_or(od->interval, DP_DEFAULT_OUTLIER_INTERVAL_MS, w, "interval",
                          &o->interval_ms, err)) != MESH_OK ||
        (rc = duration_or(od->base_ejection_time, DP_DEFAULT_BASE_EJECTION_MS, w,
                          "base_ejection_time", &o->base_ejection_ms, err)) != MESH_OK ||
        (rc = duration_or(od->max_ejection_time, DP_DEFAULT_MAX_EJECTION_MS, w,
                          "max_ejection_time", &o->max_ejection_ms, err)) != MESH_OK)
        return rc;
    if (o->interval_ms <= 0 || o->base_ejection_ms <= 0 || o->max_ejection_ms <= 0)
        return mesh_err_set(err, MESH_EINVAL, "%s: interval, base_ejection_time and "
                            "max_ejection_time must be > 0", w);
    return MESH_OK;
}

static int health_check_from(const Envoy__Config__Cluster__V3__Cluster *c, const char *what,
                             dp_health_check_cfg *h, mesh_err *err)
{
    char w[400];
    xdsc_tr_what(w, sizeof w, "%s: health_checks[0]", what);
    if (c->n_health_checks > 1)
        return mesh_err_set(err, MESH_EINVAL, "%s: health_checks: %zu given, at most 1 is "
                            "supported", what, c->n_health_checks);
    const Envoy__Config__Core__V3__HealthCheck *hc = c->health_checks[0];
    switch (hc->health_checker_case) {
    case ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_HTTP_HEALTH_CHECK:
        h->kind = DP_HC_HTTP;
        h->path = hc->http_health_check->path;
        if (!h->path || h->path[0] != '/')
            return mesh_err_set(err, MESH_EINVAL, "%s: http_health_check.path must start "
                                "with '/'", w);
        if (strpbrk(h->path, " \r\n\t"))
            return mesh_err_set(err, MESH_EINVAL, "%s: http_health_check.path contains "
                                "whitespace", w);
        h->host = hc->http_health_check->host[0] ? hc->http_health_check->host : NULL;
        if (h->host && strpbrk(h->host, " \r\n\t"))
            return mesh_err_set(err, MESH_EINVAL, "%s: http_health_check.host contains "
                                "whitespace", w);
        break;
    case ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_TCP_HEALTH_CHECK:
        h->kind = DP_HC_TCP;
        break;
    default:
        return mesh_err_set(err, MESH_EINVAL, "%s: only http_health_check and "
                            "tcp_health_check are supported", w);
    }
    if (!hc->timeout || !hc->interval || !hc->unhealthy_threshold || !hc->healthy_threshold)
        return mesh_err_set(err, MESH_EINVAL, "%s: timeout, interval, unhealthy_threshold and "
                            "healthy_threshold are required", w);
    int rc;
    if ((rc = duration_or(hc->timeout, 0, w, "timeout", &h->timeout_ms, err)) != MESH_OK ||
        (rc = duration_or(hc->interval, 0, w, "interval", &h->interval_ms, err)) != MESH_OK ||
        (rc = duration_or(hc->interval_jitter, 0, w, "interval_jitter", &h->interval_jitter_ms,
                          err)) != MESH_OK)
        return rc;
    if (h->timeout_ms <= 0 || h->interval_ms <= 0)
        return mesh_err_set(err, MESH_EINVAL, "%s: timeout and interval must be > 0", w);
    h->interval_jitter_percent = hc->interval_jitter_percent;
    h->unhealthy_threshold = hc->unhealthy_threshold->value;
    h->healthy_threshold = hc->healthy_threshold->value;
    if (h->unhealthy_threshold == 0 || h->healthy_threshold == 0)
        return mesh_err_set(err, MESH_EINVAL, "%s: thresholds must be >= 1", w);
    return MESH_OK;
}

static int breakers_from(const Envoy__Config__Cluster__V3__CircuitBreakers *cb, const char *what,
                         dp_breaker_cfg *b, mesh_err *err)
{
    for (size_t i = 0; i < cb->n_thresholds; i++) {
        const Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *t = cb->thresholds[i];
        if (t->priority != ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__DEFAULT)
            continue;   /* the sidecar has no HIGH priority traffic */
        b->set = true;
        b->max_connections = u32_or(t->max_connections, DP_DEFAULT_MAX_CONNECTIONS);
        b->max_pending_requests = u32_or(t->max_pending_requests, DP_DEFAULT_MAX_PENDING);
        b->max_requests = u32_or(t->max_requests, DP_DEFAULT_MAX_REQUESTS);
        b->max_retries = u32_or(t->max_retries, DP_DEFAULT_MAX_RETRIES);
        return MESH_OK;
    }
    (void)what;
    (void)err;
    return MESH_OK;
}

static int cluster_from(const Envoy__Config__Cluster__V3__Cluster *c, const char *what,
                        dp_cluster *dc, xdsc_names *san, ep_buf *eps, mesh_err *err)
{
    memset(dc, 0, sizeof *dc);
    dc->name = c->name;
    Envoy__Config__Cluster__V3__Cluster__DiscoveryType type =
        c->cluster_discovery_type_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE
            ? c->type
            : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
    switch (c->lb_policy) {
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN:
        dc->lb = DP_LB_ROUND_ROBIN;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST:
        dc->lb = DP_LB_LEAST_REQUEST;
        break;
    default:
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: lb_policy %d is not supported (ROUND_ROBIN or LEAST_REQUEST)",
                            what, (int)c->lb_policy);
    }
    if (c->connect_timeout) {
        int rc = xdsc_tr_duration_ms(c->connect_timeout, what, &dc->connect_timeout_ms, err);
        if (rc != MESH_OK)
            return rc;
        if (dc->connect_timeout_ms == 0)
            return mesh_err_set(err, MESH_EINVAL, "%s: connect_timeout must be > 0", what);
    }
    if (c->outlier_detection) {
        int rc = outlier_from(c->outlier_detection, what, &dc->outlier, err);
        if (rc != MESH_OK)
            return rc;
    }
    if (c->n_health_checks > 0) {
        int rc = health_check_from(c, what, &dc->hc, err);
        if (rc != MESH_OK)
            return rc;
    }
    if (c->circuit_breakers) {
        int rc = breakers_from(c->circuit_breakers, what, &dc->breakers, err);
        if (rc != MESH_OK)
            return rc;
    }
    {
        int rc = xdsc_tr_cluster_h2(c, what, &dc->h2, err);
        if (rc != MESH_OK)
            return rc;
    }
    if (c->transport_socket) {
        int rc = upstream_tls(c->transport_socket, what, san, err);
        if (rc != MESH_OK)
            return rc;
        dc->tls = true;
        dc->san_ids = san->v;
        dc->n_san = san->n;
    }
    if (type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS) {
        dc->eds = true;
        const Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig *e = c->eds_cluster_config;
        if (e && e->eds_config &&
            e->eds_config->config_source_specifier_case ==
                ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_PATH)
            return mesh_err_set(err, MESH_EINVAL, "%s: file-based EDS is not supported", what);
        dc->eds_service_name = e && e->service_name[0] ? e->service_name : c->name;
        return MESH_OK;
    }
    if (type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: discovery type %d is not supported (STATIC or EDS; the sidecar "
                            "does not resolve DNS)", what, (int)type);
    if (!c->load_assignment || c->load_assignment->n_endpoints == 0)
        return mesh_err_set(err, MESH_EINVAL, "%s: STATIC cluster without endpoints", what);
    char w[400];
    xdsc_tr_what(w, sizeof w, "%s: load_assignment", what);
    int rc = endpoints_of(c->load_assignment, w, eps, err);
    if (rc != MESH_OK)
        return rc;
    dc->endpoints = eps->eps;
    dc->n_endpoints = eps->n;
    return MESH_OK;
}

int xdsc_translate_cluster(dp_config *cfg, const uint8_t *data, size_t len, mesh_err *err)
{
    Envoy__Config__Cluster__V3__Cluster *c =
        envoy__config__cluster__v3__cluster__unpack(NULL, len, data);
    if (!c)
        return mesh_err_set(err, MESH_EINVAL, "Cluster does not decode");
    char what[320], q[160];
    xdsc_tr_what(what, sizeof what, "cluster '%s'", xdsc_tr_quote(c->name, q, sizeof q));
    dp_cluster dc;
    xdsc_names san = {0};
    ep_buf eps = {0};
    int rc;
    if (!c->name[0])
        rc = mesh_err_set(err, MESH_EINVAL, "Cluster without a name");
    else
        rc = cluster_from(c, what, &dc, &san, &eps, err);
    if (rc == MESH_OK)
        rc = dp_config_add_cluster(cfg, &dc, err);
    ep_buf_free(&eps);
    xdsc_names_free(&san);
    envoy__config__cluster__v3__cluster__free_unpacked(c, NULL);
    return rc;
}

int xdsc_translate_assignment(dp_config *cfg, const uint8_t *data, size_t len, mesh_err *err)
{
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla =
        envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, len, data);
    if (!cla)
        return mesh_err_set(err, MESH_EINVAL, "ClusterLoadAssignment does not decode");
    char what[320], q[160];
    xdsc_tr_what(what, sizeof what, "load assignment '%s'",
             xdsc_tr_quote(cla->cluster_name, q, sizeof q));
    ep_buf eps = {0};
    int rc;
    if (!cla->cluster_name[0])
        rc = mesh_err_set(err, MESH_EINVAL, "ClusterLoadAssignment without a cluster_name");
    else
        rc = endpoints_of(cla, what, &eps, err);
    if (rc == MESH_OK) {
        dp_load_assignment la = {
            .cluster_name = cla->cluster_name, .endpoints = eps.eps, .n_endpoints = eps.n};
        rc = dp_config_add_assignment(cfg, &la, err);
    }
    ep_buf_free(&eps);
    envoy__config__endpoint__v3__cluster_load_assignment__free_unpacked(cla, NULL);
    return rc;
}
