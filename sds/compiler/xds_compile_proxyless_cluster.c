/* sds/compiler/xds_compile_proxyless_cluster.c — CDS and EDS "outbound|<svc>" (and
 * "outbound|<svc>|<subset>") for proxyless gRPC clients (xds_compile_proxyless.h).
 *
 * The cluster has the sidecar's name but no transport socket: a proxyless client
 * speaks plaintext gRPC straight to the application (`app`), because it cannot
 * do the mesh's mTLS unless it implements xDS security (gRFC A29) with local
 * certificate providers. Its lb_policy is ROUND_ROBIN whatever the service says:
 * gRPC clients NACK a Cluster whose lb_policy is LEAST_REQUEST (they only know
 * ROUND_ROBIN and RING_HASH there, and least_request only through
 * load_balancing_policy in some languages).
 *
 * Endpoints follow what gRPC validates (gRFC A27, and @grpc/grpc-js-xds):
 *   - each LocalityLbEndpoints has a locality and a load_balancing_weight,
 *     or the client silently drops the locality;
 *   - addresses are IP literals (a host name NACKs the whole resource), so
 *     workloads whose `app` is a DNS name are left out;
 *   - no address twice in one resource (NACK), so duplicates are merged.
 * An identity the authorization section does not allow to call the service
 * gets the cluster with no endpoints: its calls fail with UNAVAILABLE, as a
 * sidecar's would be refused, and the application's addresses stay unknown to
 * it. This is not enforcement — the app port is plaintext and reachable — see
 * docs/xds-clients.md. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "sds/compiler/xds_compile_proxyless_internal.h"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"

typedef Envoy__Config__Endpoint__V3__LbEndpoint LbEndpoint;

int xp_cluster(xc_ctx *c, const mesh_service *svc, const mesh_subset *sub)
{
    char *name = xc_outbound_name(c, svc->name, sub ? sub->name : NULL);
    const char *what = xc_printf(&c->arena, "service %s%s%s (%s), proxyless cluster", svc->name,
                                 sub ? " subset " : "", sub ? sub->name : "",
                                 svc->source ? svc->source : "config");
    if (!name || !what)
        return xc_oom_status(c);
    /* Round robin whatever the service says: the gRPC client NACKs LEAST_REQUEST.
     * The connect timeout is ignored by gRPC but kept, so the resource means the
     * same to any xDS reader. */
    Envoy__Config__Cluster__V3__Cluster *cl =
        xc_eds_cluster(c, name, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN, svc);
    if (cl == NULL)
        return xc_status(c);
    return xc_emit(c, XDS_CDS, name, &cl->base, what);
}

static int is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int cmp_endpoint(const void *a, const void *b)
{
    const Envoy__Config__Core__V3__SocketAddress *x =
        (*(LbEndpoint *const *)a)->endpoint->address->socket_address;
    const Envoy__Config__Core__V3__SocketAddress *y =
        (*(LbEndpoint *const *)b)->endpoint->address->socket_address;
    int r = strcmp(x->address, y->address);
    if (r != 0)
        return r;
    return x->port_value < y->port_value ? -1 : x->port_value > y->port_value;
}

/* The app endpoints of svc's workloads (those in sub, if not NULL): IP
 * literals only, sorted by address, each address once. */
static LbEndpoint **app_endpoints(xc_ctx *c, const mesh_service *svc, const mesh_subset *sub,
                                  size_t *n_out)
{
    size_t n;
    const mesh_workload **wl = xc_subset_workloads(c, svc, sub, &n);
    if (wl == NULL)
        return NULL;
    LbEndpoint **eps = xc_array(&c->arena, n, sizeof *eps);
    if (eps == NULL)
        return xc_oom(c);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *what = xc_printf(&c->arena, "%s app", xc_where_workload(c, wl[i]));
        LbEndpoint *le = xc_alloc(&c->arena, sizeof *le);
        Envoy__Config__Endpoint__V3__Endpoint *ep = xc_alloc(&c->arena, sizeof *ep);
        if (!what || !le || !ep)
            return xc_oom(c);
        envoy__config__endpoint__v3__endpoint__init(ep);
        if ((ep->address = xc_address(c, wl[i]->app, what)) == NULL)
            return NULL;
        if (!is_ip_literal(ep->address->socket_address->address))
            continue;
        envoy__config__endpoint__v3__lb_endpoint__init(le);
        le->host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
        le->endpoint = ep;
        le->health_status = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY;
        eps[k++] = le;
    }
    qsort(eps, k, sizeof *eps, cmp_endpoint);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u == 0 || cmp_endpoint(&eps[u - 1], &eps[i]) != 0)
            eps[u++] = eps[i];
    }
    *n_out = u;
    return eps;
}

int xp_endpoints(xc_ctx *c, const mesh_service *svc, const mesh_subset *sub, int allowed)
{
    char *name = xc_outbound_name(c, svc->name, sub ? sub->name : NULL);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla = xc_alloc(&c->arena, sizeof *cla);
    if (!name || !cla)
        return xc_oom_status(c);
    envoy__config__endpoint__v3__cluster_load_assignment__init(cla);
    cla->cluster_name = name;
    size_t n = 0;
    LbEndpoint **eps = NULL;
    if (allowed && (eps = app_endpoints(c, svc, sub, &n)) == NULL)
        return xc_status(c);
    if (n > 0) {
        Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = xc_alloc(&c->arena, sizeof *loc);
        Envoy__Config__Endpoint__V3__LocalityLbEndpoints **locs =
            xc_array(&c->arena, 1, sizeof *locs);
        Envoy__Config__Core__V3__Locality *where = xc_alloc(&c->arena, sizeof *where);
        if (!loc || !locs || !where)
            return xc_oom_status(c);
        envoy__config__core__v3__locality__init(where);   /* present, empty: one locality */
        envoy__config__endpoint__v3__locality_lb_endpoints__init(loc);
        loc->locality = where;
        if ((loc->load_balancing_weight = xc_u32(c, 1)) == NULL)
            return xc_status(c);
        loc->n_lb_endpoints = n;
        loc->lb_endpoints = eps;
        locs[0] = loc;
        cla->n_endpoints = 1;
        cla->endpoints = locs;
    }
    return xc_emit(c, XDS_EDS, name, &cla->base, "proxyless endpoints");
}
