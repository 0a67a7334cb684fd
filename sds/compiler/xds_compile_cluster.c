/* sds/compiler/xds_compile_cluster.c — CDS and EDS resources of one node (docs/xds.md):
 *   CDS "inbound|<svc>|local"  STATIC cluster: the local app behind this sidecar.
 *   CDS "outbound|<svc>"       EDS cluster (over ADS) with mTLS to peer sidecars; the
 *                              peer must present the SVID of a workload of <svc>.
 *   EDS "outbound|<svc>"       every workload of <svc>, at its sidecar's inbound address.
 *   CDS/EDS "outbound|<svc>|<subset>"  the same for the workloads of one subset (those
 *                              carrying every label of its selector), as Istio builds one
 *                              cluster per DestinationRule subset.
 * An endpoint is HEALTHY unless meshd's health set (xds_health.h) names its
 * workload: then UNHEALTHY (its sidecar has not been connected to meshd for
 * the grace), which sidecars and Envoy skip while another endpoint is
 * healthy. The local app endpoint is always HEALTHY: meshd cannot see it.
 * The outbound cluster carries the service's outlier detection, health checks and
 * circuit breakers (xds_compile_health.c): the caller's sidecar applies them. */
#include <stdlib.h>
#include <string.h>

#include "sds/compiler/xds_compile_internal.h"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"

typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__LbEndpoint LbEndpoint;

/* When a service has no workloads its cluster still needs a SAN matcher: an
 * empty list would make the sidecar accept ANY identity of the trust domain. So
 * fail closed with spiffe://<td>/meshd/no-workload/<svc>: a well-formed SPIFFE
 * ID (data planes that check the syntax accept it) that meshd's CA never issues,
 * because it signs only workload-shaped IDs (spiffe://<td>/ns/<ns>/sa/<sa>). The
 * trust domain is the node's own. */
static const char *san_nobody(xc_ctx *c, const mesh_service *svc)
{
    const char *td = "invalid";
    size_t td_len = strlen(td);
    if (strncmp(c->spiffe_id, "spiffe://", 9) == 0) {
        const char *start = c->spiffe_id + 9;
        size_t len = strcspn(start, "/");
        if (len > 0) {
            td = start;
            td_len = len;
        }
    }
    const char *s = xc_printf(&c->arena, "spiffe://%.*s/meshd/no-workload/%s", (int)td_len, td,
                              svc->name);
    return s ? s : xc_oom(c);
}

static int64_t connect_ms(const mesh_service *svc)
{
    return svc->connect_timeout_ms > 0 ? svc->connect_timeout_ms : XC_DEFAULT_CONNECT_MS;
}

static Envoy__Config__Cluster__V3__Cluster__LbPolicy lb_policy(const mesh_service *svc)
{
    return svc->lb == MESH_LB_LEAST_REQUEST ? ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST
                                            : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN;
}

static LbEndpoint *lb_endpoint(xc_ctx *c, const char *hostport, const char *what,
                               int unhealthy)
{
    LbEndpoint *le = xc_alloc(&c->arena, sizeof *le);
    Envoy__Config__Endpoint__V3__Endpoint *ep = xc_alloc(&c->arena, sizeof *ep);
    if (le == NULL || ep == NULL)
        return xc_oom(c);
    envoy__config__endpoint__v3__endpoint__init(ep);
    if ((ep->address = xc_address(c, hostport, what)) == NULL)
        return NULL;
    envoy__config__endpoint__v3__lb_endpoint__init(le);
    le->host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
    le->endpoint = ep;
    le->health_status = unhealthy ? ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY
                                  : ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY;
    return le;
}

static Envoy__Config__Endpoint__V3__ClusterLoadAssignment *
load_assignment(xc_ctx *c, const char *cluster, LbEndpoint **eps, size_t n)
{
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla = xc_alloc(&c->arena, sizeof *cla);
    if (cla == NULL)
        return xc_oom(c);
    envoy__config__endpoint__v3__cluster_load_assignment__init(cla);
    cla->cluster_name = (char *)cluster;
    if (n == 0)
        return cla;   /* no endpoints: requests fail fast with 503 / connection refused */
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = xc_alloc(&c->arena, sizeof *loc);
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints **locs = xc_array(&c->arena, 1, sizeof *locs);
    if (loc == NULL || locs == NULL)
        return xc_oom(c);
    envoy__config__endpoint__v3__locality_lb_endpoints__init(loc);
    loc->n_lb_endpoints = n;
    loc->lb_endpoints = eps;
    locs[0] = loc;
    cla->n_endpoints = 1;
    cla->endpoints = locs;
    return cla;
}

int xc_local_cluster(xc_ctx *c, const mesh_workload *w, const mesh_service *svc)
{
    const char *what = xc_printf(&c->arena, "%s app", xc_where_workload(c, w));
    char *name = xc_printf(&c->arena, "inbound|%s|local", svc->name);
    Cluster *cl = xc_alloc(&c->arena, sizeof *cl);
    LbEndpoint **eps = xc_array(&c->arena, 1, sizeof *eps);
    if (!what || !name || !cl || !eps)
        return xc_oom_status(c);
    if ((eps[0] = lb_endpoint(c, w->app, what, 0)) == NULL)
        return xc_status(c);
    envoy__config__cluster__v3__cluster__init(cl);
    cl->name = name;
    cl->cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
    cl->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN;
    if ((cl->connect_timeout = xc_duration_ms(c, connect_ms(svc))) == NULL ||
        (cl->load_assignment = load_assignment(c, name, eps, 1)) == NULL)
        return xc_status(c);
    /* An http2/grpc app is reached with h2c (prior knowledge), as gRPC servers expect. */
    if (mesh_protocol_is_h2(svc->protocol) && xc_cluster_h2(c, cl) != MESH_OK)
        return xc_status(c);
    return xc_emit(c, XDS_CDS, name, &cl->base, what);
}

/* The SPIFFE IDs the peer sidecar of svc (in sub, if not NULL) may present,
 * sorted and unique. */
static const char **service_sans(xc_ctx *c, const mesh_service *svc, const mesh_subset *sub,
                                 size_t *n_out)
{
    size_t n;
    const mesh_workload **wl = xc_subset_workloads(c, svc, sub, &n);
    if (wl == NULL)
        return NULL;
    const char **ids = xc_array(&c->arena, n > 0 ? n : 1, sizeof *ids);
    if (ids == NULL)
        return xc_oom(c);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (wl[i]->spiffe_id != NULL)
            ids[k++] = wl[i]->spiffe_id;
    }
    if (k == 0) {
        if ((ids[0] = san_nobody(c, svc)) == NULL)
            return NULL;
        *n_out = 1;
        return ids;
    }
    return xc_sorted_unique(c, ids, k, n_out);
}

int xc_outbound_cluster(xc_ctx *c, const mesh_service *svc, const mesh_subset *sub)
{
    char *name = xc_outbound_name(c, svc->name, sub ? sub->name : NULL);
    const char *what = xc_printf(&c->arena, "service %s%s%s (%s)", svc->name,
                                 sub ? " subset " : "", sub ? sub->name : "",
                                 svc->source ? svc->source : "config");
    Cluster *cl;
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *utls =
        xc_alloc(&c->arena, sizeof *utls);
    if (!name || !what || !utls)
        return xc_oom_status(c);
    size_t n_sans;
    const char **sans = service_sans(c, svc, sub, &n_sans);
    if (sans == NULL)
        return xc_status(c);
    envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__init(utls);
    if ((utls->common_tls_context = xc_common_tls(c, sans, n_sans)) == NULL)
        return xc_status(c);
    /* HTTP/2 to the peer sidecar: ALPN "h2" only, so a peer that cannot speak it fails
     * the handshake instead of being sent frames it would read as HTTP/1.1. */
    if (mesh_protocol_is_h2(svc->protocol) &&
        xc_tls_alpn(c, utls->common_tls_context, 0) != MESH_OK)
        return xc_status(c);

    if ((cl = xc_eds_cluster(c, name, lb_policy(svc), svc)) == NULL ||
        (cl->transport_socket = xc_tls_socket(c, XDS_TYPE_URL_UPSTREAM_TLS, &utls->base)) == NULL ||
        xc_cluster_health(c, cl, svc) != MESH_OK ||
        (mesh_protocol_is_h2(svc->protocol) && xc_cluster_h2(c, cl) != MESH_OK))
        return xc_status(c);
    return xc_emit(c, XDS_CDS, name, &cl->base, what);
}

Envoy__Config__Cluster__V3__Cluster *xc_eds_cluster(xc_ctx *c, char *name, int lb_policy,
                                                    const mesh_service *svc)
{
    Cluster *cl = xc_alloc(&c->arena, sizeof *cl);
    Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig *eds = xc_alloc(&c->arena, sizeof *eds);
    if (!cl || !eds) {
        xc_oom_status(c);
        return NULL;
    }
    envoy__config__cluster__v3__cluster__eds_cluster_config__init(eds);
    eds->service_name = name;
    if ((eds->eds_config = xc_ads_source(c)) == NULL)
        return NULL;
    envoy__config__cluster__v3__cluster__init(cl);
    cl->name = name;
    cl->cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
    cl->eds_cluster_config = eds;
    cl->lb_policy = (Envoy__Config__Cluster__V3__Cluster__LbPolicy)lb_policy;
    if ((cl->connect_timeout = xc_duration_ms(c, connect_ms(svc))) == NULL)
        return NULL;
    return cl;
}

int xc_endpoints(xc_ctx *c, const mesh_service *svc, const mesh_subset *sub)
{
    char *name = xc_outbound_name(c, svc->name, sub ? sub->name : NULL);
    size_t n;
    /* In (name, inbound) order: config order is store order, which may change
     * without any real change. */
    const mesh_workload **wl = xc_subset_workloads(c, svc, sub, &n);
    if (wl == NULL)
        return xc_status(c);
    LbEndpoint **eps = xc_array(&c->arena, n, sizeof *eps);
    if (!name || !eps)
        return xc_oom_status(c);
    for (size_t i = 0; i < n; i++) {
        const char *what = xc_printf(&c->arena, "%s inbound", xc_where_workload(c, wl[i]));
        if (what == NULL)
            return xc_oom_status(c);
        if ((eps[i] = lb_endpoint(c, wl[i]->inbound, what,
                                  xds_health_is_unhealthy(c->health, wl[i]->name))) == NULL)
            return xc_status(c);
    }
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla = load_assignment(c, name, eps, n);
    if (cla == NULL)
        return xc_status(c);
    return xc_emit(c, XDS_EDS, name, &cla->base, sub ? "subset endpoints" : "endpoints");
}
