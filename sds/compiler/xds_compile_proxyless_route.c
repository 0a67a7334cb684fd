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
 *     processed" cases the sidecar retries on.
 * and three because gRPC C core 1.51 (Debian 12's, under grpcio and most other
 * languages) reads an older shape than @grpc/grpc-js-xds; both accept what is
 * emitted here (tests/e2e/test_xds_client_core.sh runs both):
 *   - header matches: C core knows only the deprecated exact_match and
 *     prefix_match (and present_match), not string_match, and NACKs the whole
 *     table on one string_match ("Invalid route header matcher specified.");
 *   - weighted clusters: C core wants the weights to sum to total_weight, 100
 *     when unset; meshd's weights may sum to anything above 0, so total_weight
 *     is set to their sum (grpc-js-xds ignores it and sums itself);
 *   - a rule whose path can never match a gRPC method (a gRPC path is
 *     /<service>/<method>: a prefix with more than two '/', or a path of any
 *     other shape) is dropped, as C core drops it, and a host left with no rule
 *     gets no listener at all, because C core NACKs a table without routes: its
 *     calls fail UNAVAILABLE, as an unmatched call does. */
#include <stdbool.h>
#include <string.h>

#include "sds/compiler/xds_compile_proxyless_internal.h"

#include "envoy/config/route/v3/route.pb-c.h"

typedef Envoy__Config__Route__V3__VirtualHost VirtualHost;
typedef Envoy__Config__Route__V3__RouteAction RouteAction;
typedef Envoy__Config__Route__V3__RouteAction__MaxStreamDuration MaxStreamDuration;
typedef Envoy__Config__Route__V3__HeaderMatcher HeaderMatcher;

#define XP_RETRY_ON "unavailable"

/* The '/'-separated parts of s after its leading '/', as gRPC counts them
 * (split at most twice): "/a/b" -> 2 parts, "/a/b/c" -> 3, "/a/" -> 2 ("a", ""). */
static size_t path_parts(const char *s, bool *first_empty, bool *last_empty)
{
    const char *p = s + 1;
    const char *slash = strchr(p, '/');
    *first_empty = slash ? slash == p : *p == '\0';
    if (slash == NULL) {
        *last_empty = *p == '\0';
        return 1;
    }
    const char *second = strchr(slash + 1, '/');
    *last_empty = second ? false : slash[1] == '\0';
    return second ? 3 : 2;
}

/* gRFC A28 as gRPC C core applies it: could this rule's path match any gRPC
 * method path "/<service>/<method>"? */
static bool grpc_can_match(const mesh_route_rule *rule)
{
    bool first_empty, last_empty;
    if (rule->path != NULL) {
        if (rule->path[0] != '/')
            return false;
        size_t n = path_parts(rule->path, &first_empty, &last_empty);
        return n == 2 && !first_empty && !last_empty;
    }
    const char *prefix = rule->prefix != NULL ? rule->prefix : "/";
    if (prefix[0] == '\0')
        return true;
    if (prefix[0] != '/')
        return false;
    size_t n = path_parts(prefix, &first_empty, &last_empty);
    return n == 1 || (n == 2 && !first_empty);
}

/* string_match {exact|prefix} -> exact_match | prefix_match (see the top of the file). */
static void adapt_headers(Envoy__Config__Route__V3__RouteMatch *m)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        HeaderMatcher *h = m->headers[i];
        if (h->header_match_specifier_case !=
                ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH ||
            h->string_match == NULL)
            continue;
        const Envoy__Type__Matcher__V3__StringMatcher *sm = h->string_match;
        if (sm->match_pattern_case == ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT) {
            h->header_match_specifier_case =
                ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH;
            h->exact_match = sm->exact;
        } else if (sm->match_pattern_case ==
                   ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX) {
            h->header_match_specifier_case =
                ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH;
            h->prefix_match = sm->prefix;
        }
    }
}

static int adapt_weights(xc_ctx *c, RouteAction *a)
{
    if (a->cluster_specifier_case !=
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS ||
        a->weighted_clusters == NULL)
        return MESH_OK;
    Envoy__Config__Route__V3__WeightedCluster *wc = a->weighted_clusters;
    uint32_t total = 0;
    for (size_t i = 0; i < wc->n_clusters; i++)
        total += wc->clusters[i]->weight ? wc->clusters[i]->weight->value : 0;
    if ((wc->total_weight = xc_u32(c, total)) == NULL)
        return xc_status(c);
    return MESH_OK;
}

static int adapt_action(xc_ctx *c, RouteAction *a, const mesh_route_rule *rule)
{
    int st = adapt_weights(c, a);
    if (st != MESH_OK)
        return st;
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
        /* gRPC picks hosts itself and has no per-try timeout (gRFC A44). */
        a->retry_policy->n_retry_host_predicate = 0;
        a->retry_policy->retry_host_predicate = NULL;
        a->retry_policy->host_selection_retry_max_attempts = 0;
        a->retry_policy->per_try_timeout = NULL;
    }
    return MESH_OK;
}

int xp_route_config(xc_ctx *c, const xp_host *h, int *emitted)
{
    *emitted = 0;
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
    size_t kept = 0;
    for (size_t i = 0; i < vh->n_routes; i++) {
        if (!grpc_can_match(&rules[i]))
            continue;
        adapt_headers(vh->routes[i]->match);
        int st = adapt_action(c, vh->routes[i]->route, &rules[i]);
        if (st != MESH_OK)
            return st;
        vh->routes[kept++] = vh->routes[i];
    }
    vh->n_routes = kept;
    if (kept == 0)
        return MESH_OK;   /* nothing a gRPC call could match: no listener (see the top) */
    vhs[0] = vh;
    envoy__config__route__v3__route_configuration__init(rc);
    rc->name = (char *)h->host;
    rc->n_virtual_hosts = 1;
    rc->virtual_hosts = vhs;
    *emitted = 1;
    return xc_emit(c, XDS_RDS, h->host, &rc->base, what);
}
