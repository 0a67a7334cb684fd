/* sds/compiler/xds_compile_proxyless_route.c — RDS "<host>" for proxyless gRPC clients
 * (xds_compile_proxyless.h).
 *
 * The virtual host is the one the sidecar's route table has for the same route
 * (xc_route_vhost / xc_service_vhost: same matches, weights and cluster names),
 * so a route edit means the same thing to a sidecar and to a gRPC client. Three
 * things are adapted, because gRPC reads other fields than Envoy does:
 *   - domains: just the host. The client matches domains against its target's
 *     authority and asked for this host's listener by name, so nothing else can
 *     match; the route's other hosts have listeners of their own.
 *   - deadline: gRPC ignores RouteAction.timeout and caps the call's deadline
 *     with max_stream_duration (gRFC A31). Only a timeout the operator wrote is
 *     carried over: the sidecar's 15 s default would cut every long-lived gRPC
 *     stream, while a gRPC client already has its own deadline.
 *   - retries: gRPC retries on gRPC status names (gRFC A44) and ignores Envoy's
 *     HTTP conditions; "unavailable" is the status a gRPC client sees when the
 *     connection failed or the server refused the stream — the same "never
 *     processed" cases the sidecar retries on. */
#include <string.h>

#include "sds/compiler/xds_compile_proxyless_internal.h"

#include "envoy/config/route/v3/route.pb-c.h"

typedef Envoy__Config__Route__V3__VirtualHost VirtualHost;
typedef Envoy__Config__Route__V3__RouteAction RouteAction;
typedef Envoy__Config__Route__V3__RouteAction__MaxStreamDuration MaxStreamDuration;

#define XP_RETRY_ON "unavailable"

static int adapt_action(xc_ctx *c, RouteAction *a, const mesh_route_rule *rule)
{
    a->timeout = NULL;
    if (rule->timeout_ms > 0) {
        MaxStreamDuration *msd = xc_alloc(&c->arena, sizeof *msd);
        if (msd == NULL)
            return xc_oom_status(c);
        envoy__config__route__v3__route_action__max_stream_duration__init(msd);
        if ((msd->max_stream_duration = xc_duration_ms(c, rule->timeout_ms)) == NULL)
            return xc_status(c);
        a->max_stream_duration = msd;
    }
    if (a->retry_policy != NULL) {
        a->retry_policy->retry_on = XP_RETRY_ON;
        a->retry_policy->n_retriable_status_codes = 0;
        a->retry_policy->retriable_status_codes = NULL;
    }
    return MESH_OK;
}

int xp_route_config(xc_ctx *c, const xp_host *h)
{
    VirtualHost *vh;
    const mesh_route_rule *rules;
    size_t n_rules;
    mesh_route_rule everything = { 0 };   /* a service's host: no timeout, no retries */
    if (h->route != NULL) {
        vh = xc_route_vhost(c, h->route);
        rules = h->route->rules;
        n_rules = h->route->n_rules;
    } else {
        vh = xc_service_vhost(c, h->svc);
        rules = &everything;
        n_rules = 1;
    }
    if (vh == NULL)
        return xc_status(c);
    if (vh->n_routes != n_rules)
        return mesh_err_set(c->err, MESH_EINTERNAL,
                            "xds compile (proxyless) for %s: host \"%s\": %zu routes built "
                            "from %zu rules",
                            c->spiffe_id, h->host, vh->n_routes, n_rules);
    char **domains = xc_array(&c->arena, 1, sizeof *domains);
    VirtualHost **vhs = xc_array(&c->arena, 1, sizeof *vhs);
    Envoy__Config__Route__V3__RouteConfiguration *rc = xc_alloc(&c->arena, sizeof *rc);
    const char *what = xc_printf(&c->arena, "route table for host \"%s\"", h->host);
    if (!domains || !vhs || !rc || !what)
        return xc_oom_status(c);
    domains[0] = (char *)h->host;
    vh->n_domains = 1;
    vh->domains = domains;
    for (size_t i = 0; i < vh->n_routes; i++) {
        int st = adapt_action(c, vh->routes[i]->route, &rules[i]);
        if (st != MESH_OK)
            return st;
    }
    vhs[0] = vh;
    envoy__config__route__v3__route_configuration__init(rc);
    rc->name = (char *)h->host;
    rc->n_virtual_hosts = 1;
    rc->virtual_hosts = vhs;
    return xc_emit(c, XDS_RDS, h->host, &rc->base, what);
}
