/* sds/compiler/xds_compile_route.c — the RDS resource "outbound|http" (docs/xds.md): what the
 * node's HTTP egress listener does with a request, by Host header.
 *
 * One virtual host per route (domains = its hosts, default [route name]); one per
 * HTTP service that no route claims (domains = [service name], everything to that
 * service). A destination with a subset goes to that subset's cluster. Rules stay in config order, because Envoy takes the first match.
 * Virtual hosts are sorted by name so the bytes, and hence the version, do not
 * depend on the order resources happen to come out of the store. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sds/compiler/xds_compile_internal.h"

#include "envoy/config/route/v3/route.pb-c.h"

typedef Envoy__Config__Route__V3__VirtualHost VirtualHost;
typedef Envoy__Config__Route__V3__Route Route;

static const char *route_where(xc_ctx *c, const mesh_route *r)
{
    const char *s = xc_printf(&c->arena, "route %s (%s)", r->name ? r->name : "<unnamed>",
                              r->source ? r->source : "config");
    return s ? s : "route";
}

static Envoy__Config__Route__V3__HeaderMatcher *header_matcher(xc_ctx *c,
                                                               const mesh_header_matcher *h,
                                                               const char *where)
{
    Envoy__Config__Route__V3__HeaderMatcher *m = xc_alloc(&c->arena, sizeof *m);
    if (m == NULL)
        return xc_oom(c);
    envoy__config__route__v3__header_matcher__init(m);
    m->name = h->name;
    if (h->kind == MESH_HDR_PRESENT) {
        m->header_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
        m->present_match = 1;
        return m;
    }
    if ((h->kind != MESH_HDR_EXACT && h->kind != MESH_HDR_PREFIX) || h->value == NULL) {
        mesh_err_set(c->err, MESH_EINVAL, "xds compile for %s: %s: header %s needs exact, prefix "
                     "or present", c->spiffe_id, where, h->name);
        return NULL;
    }
    Envoy__Type__Matcher__V3__StringMatcher *s = xc_alloc(&c->arena, sizeof *s);
    if (s == NULL)
        return xc_oom(c);
    envoy__type__matcher__v3__string_matcher__init(s);
    if (h->kind == MESH_HDR_EXACT) {
        s->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
        s->exact = h->value;
    } else {
        s->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX;
        s->prefix = h->value;
    }
    m->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
    m->string_match = s;
    return m;
}

static Envoy__Config__Route__V3__RetryPolicy *retry_policy(xc_ctx *c, uint32_t retries,
                                                           int64_t per_try_timeout_ms)
{
    Envoy__Config__Route__V3__RetryPolicy *p = xc_alloc(&c->arena, sizeof *p);
    uint32_t *codes = xc_array(&c->arena, 1, sizeof *codes);
    if (p == NULL || codes == NULL)
        return xc_oom(c);
    envoy__config__route__v3__retry_policy__init(p);
    p->retry_on = XC_RETRY_ON;
    codes[0] = XC_RETRY_STATUS;
    p->n_retriable_status_codes = 1;
    p->retriable_status_codes = codes;
    if ((p->num_retries = xc_u32(c, retries)) == NULL || xc_retry_previous_hosts(c, p) != MESH_OK)
        return NULL;
    if (per_try_timeout_ms > 0 && (p->per_try_timeout = xc_duration_ms(c, per_try_timeout_ms)) == NULL)
        return NULL;
    return p;
}

/* outbound|<svc>, or outbound|<svc>|<subset> for a destination naming a subset. */
static char *outbound_cluster(xc_ctx *c, const mesh_destination *d)
{
    return xc_outbound_name(c, d->service, d->subset);
}

static Envoy__Config__Route__V3__RouteAction *rule_action(xc_ctx *c, const mesh_route_rule *rule,
                                                          const char *where)
{
    Envoy__Config__Route__V3__RouteAction *a = xc_alloc(&c->arena, sizeof *a);
    if (a == NULL)
        return xc_oom(c);
    envoy__config__route__v3__route_action__init(a);
    uint64_t total = 0;
    for (size_t d = 0; d < rule->n_destinations; d++)
        total += rule->destinations[d].weight;
    if (rule->n_destinations == 0 || total == 0) {
        mesh_err_set(c->err, MESH_EINVAL, "xds compile for %s: %s: %s; give at least one "
                     "destination a weight above 0", c->spiffe_id, where,
                     rule->n_destinations == 0 ? "no destinations" : "destination weights sum to 0");
        return NULL;
    }
    if (rule->n_destinations == 1) {
        a->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
        if ((a->cluster = outbound_cluster(c, &rule->destinations[0])) == NULL)
            return NULL;
    } else {
        Envoy__Config__Route__V3__WeightedCluster *wc = xc_alloc(&c->arena, sizeof *wc);
        Envoy__Config__Route__V3__WeightedCluster__ClusterWeight **cw =
            xc_array(&c->arena, rule->n_destinations, sizeof *cw);
        if (wc == NULL || cw == NULL)
            return xc_oom(c);
        envoy__config__route__v3__weighted_cluster__init(wc);
        for (size_t d = 0; d < rule->n_destinations; d++) {
            Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *w =
                xc_alloc(&c->arena, sizeof *w);
            if (w == NULL)
                return xc_oom(c);
            envoy__config__route__v3__weighted_cluster__cluster_weight__init(w);
            if ((w->name = outbound_cluster(c, &rule->destinations[d])) == NULL ||
                (w->weight = xc_u32(c, rule->destinations[d].weight)) == NULL)
                return NULL;
            cw[d] = w;
        }
        wc->n_clusters = rule->n_destinations;
        wc->clusters = cw;
        a->cluster_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
        a->weighted_clusters = wc;
    }
    int64_t timeout = rule->timeout_ms > 0 ? rule->timeout_ms : XC_DEFAULT_ROUTE_MS;
    if ((a->timeout = xc_duration_ms(c, timeout)) == NULL)
        return NULL;
    if ((rule->retries > 0 || rule->per_try_timeout_ms > 0) &&
        (a->retry_policy = retry_policy(c, rule->retries, rule->per_try_timeout_ms)) == NULL)
        return NULL;
    return a;
}

static Route *rule_route(xc_ctx *c, const mesh_route *r, size_t i)
{
    const mesh_route_rule *rule = &r->rules[i];
    const char *where = xc_printf(&c->arena, "%s rules[%zu]", route_where(c, r), i);
    Route *rt = xc_alloc(&c->arena, sizeof *rt);
    Envoy__Config__Route__V3__RouteMatch *m = xc_alloc(&c->arena, sizeof *m);
    Envoy__Config__Route__V3__HeaderMatcher **hm = xc_array(&c->arena, rule->n_headers, sizeof *hm);
    char *name = xc_printf(&c->arena, "%s/rules[%zu]", r->name, i);
    if (!where || !rt || !m || !hm || !name)
        return xc_oom(c);
    envoy__config__route__v3__route_match__init(m);
    if (rule->path != NULL) {
        m->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH;
        m->path = rule->path;
    } else {
        /* No path given matches everything, as in the config docs. */
        m->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
        m->prefix = rule->prefix != NULL ? rule->prefix : "/";
    }
    for (size_t h = 0; h < rule->n_headers; h++) {
        if ((hm[h] = header_matcher(c, &rule->headers[h], where)) == NULL)
            return NULL;
    }
    m->n_headers = rule->n_headers;
    m->headers = hm;
    envoy__config__route__v3__route__init(rt);
    rt->name = name;
    rt->match = m;
    rt->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    if ((rt->route = rule_action(c, rule, where)) == NULL)
        return NULL;
    return rt;
}

VirtualHost *xc_route_vhost(xc_ctx *c, const mesh_route *r)
{
    VirtualHost *vh = xc_alloc(&c->arena, sizeof *vh);
    Route **routes = xc_array(&c->arena, r->n_rules, sizeof *routes);
    char *name = xc_printf(&c->arena, "route|%s", r->name);
    if (!vh || !routes || !name)
        return xc_oom(c);
    envoy__config__route__v3__virtual_host__init(vh);
    vh->name = name;
    if (r->n_hosts > 0) {
        vh->n_domains = r->n_hosts;
        vh->domains = r->hosts;
    } else {
        char **d = xc_array(&c->arena, 1, sizeof *d);
        if (d == NULL)
            return xc_oom(c);
        d[0] = r->name;
        vh->n_domains = 1;
        vh->domains = d;
    }
    for (size_t i = 0; i < r->n_rules; i++) {
        if ((routes[i] = rule_route(c, r, i)) == NULL)
            return NULL;
    }
    vh->n_routes = r->n_rules;
    vh->routes = routes;
    return vh;
}

/* Everything for host <svc> to service svc, with the default timeout. */
VirtualHost *xc_service_vhost(xc_ctx *c, const mesh_service *svc)
{
    mesh_route_rule rule = { 0 };
    mesh_destination dest = { .service = svc->name, .weight = 1 };
    rule.destinations = &dest;
    rule.n_destinations = 1;
    char *hosts[1] = { svc->name };
    mesh_route r = { .name = svc->name, .hosts = hosts, .n_hosts = 1, .rules = &rule,
                     .n_rules = 1, .source = svc->source };
    VirtualHost *vh = xc_route_vhost(c, &r);
    if (vh == NULL)
        return NULL;
    /* xc_route_vhost borrowed the stack arrays above: move them into the arena. */
    char **d = xc_array(&c->arena, 1, sizeof *d);
    char *name = xc_printf(&c->arena, "service|%s", svc->name);
    if (d == NULL || name == NULL)
        return xc_oom(c);
    d[0] = svc->name;
    vh->domains = d;
    vh->name = name;
    vh->routes[0]->name = "default";
    return vh;
}

static int cmp_host(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every host some route claims (its hosts, or its name when it has none), sorted
 * case-insensitively for bsearch. */
static const char **claimed_hosts(xc_ctx *c, size_t *n_out)
{
    const mesh_config *cfg = c->cfg;
    size_t total = 0;
    for (size_t i = 0; i < cfg->n_routes; i++)
        total += cfg->routes[i].n_hosts > 0 ? cfg->routes[i].n_hosts : 1;
    const char **hosts = xc_array(&c->arena, total, sizeof *hosts);
    if (hosts == NULL)
        return xc_oom(c);
    size_t k = 0;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const mesh_route *r = &cfg->routes[i];
        if (r->n_hosts == 0 && r->name != NULL)
            hosts[k++] = r->name;
        for (size_t h = 0; h < r->n_hosts; h++) {
            if (r->hosts[h] != NULL)
                hosts[k++] = r->hosts[h];
        }
    }
    qsort(hosts, k, sizeof *hosts, cmp_host);
    *n_out = k;
    return hosts;
}

static int host_claimed(const char **claimed, size_t n, const char *host)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcasecmp(claimed[mid], host);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int cmp_vhost(const void *a, const void *b)
{
    return strcmp((*(VirtualHost *const *)a)->name, (*(VirtualHost *const *)b)->name);
}

typedef struct domain_ref {
    const char *domain;
    const char *vhost;
} domain_ref;

static int cmp_domain(const void *a, const void *b)
{
    return strcasecmp(((const domain_ref *)a)->domain, ((const domain_ref *)b)->domain);
}

/* Envoy rejects (NACKs) a route table where two virtual hosts share a domain:
 * refuse to build one, naming both owners. Sorting keeps this O(n log n) for
 * meshes with thousands of hosts. */
static int check_domains(xc_ctx *c, VirtualHost **vhs, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += vhs[i]->n_domains;
    domain_ref *refs = xc_array(&c->arena, total, sizeof *refs);
    if (refs == NULL)
        return xc_oom_status(c);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t d = 0; d < vhs[i]->n_domains; d++)
            refs[k++] = (domain_ref){ vhs[i]->domains[d], vhs[i]->name };
    }
    qsort(refs, total, sizeof *refs, cmp_domain);
    for (size_t i = 1; i < total; i++) {
        if (strcasecmp(refs[i - 1].domain, refs[i].domain) == 0)
            return mesh_err_set(c->err, MESH_EINVAL,
                                "xds compile for %s: host \"%s\" is claimed by both %s and %s; "
                                "each host may belong to one route only",
                                c->spiffe_id, refs[i].domain, refs[i - 1].vhost, refs[i].vhost);
    }
    return MESH_OK;
}

int xc_outbound_routes(xc_ctx *c)
{
    const mesh_config *cfg = c->cfg;
    VirtualHost **vhs = xc_array(&c->arena, cfg->n_routes + cfg->n_services, sizeof *vhs);
    Envoy__Config__Route__V3__RouteConfiguration *rc = xc_alloc(&c->arena, sizeof *rc);
    if (vhs == NULL || rc == NULL)
        return xc_oom_status(c);
    size_t n_claimed = 0;
    const char **claimed = claimed_hosts(c, &n_claimed);
    if (claimed == NULL)
        return xc_status(c);
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        if ((vhs[n++] = xc_route_vhost(c, &cfg->routes[i])) == NULL)
            return xc_status(c);
    }
    for (size_t i = 0; i < cfg->n_services; i++) {
        const mesh_service *svc = &cfg->services[i];
        if (!mesh_protocol_is_http(svc->protocol) ||
            host_claimed(claimed, n_claimed, svc->name))
            continue;
        if ((vhs[n++] = xc_service_vhost(c, svc)) == NULL)
            return xc_status(c);
    }
    qsort(vhs, n, sizeof *vhs, cmp_vhost);
    int rc_status = check_domains(c, vhs, n);
    if (rc_status != MESH_OK)
        return rc_status;
    envoy__config__route__v3__route_configuration__init(rc);
    rc->name = XC_RDS_OUTBOUND_HTTP;
    rc->n_virtual_hosts = n;
    rc->virtual_hosts = vhs;
    rc->ignore_port_in_host_matching = 1;
    return xc_emit(c, XDS_RDS, XC_RDS_OUTBOUND_HTTP, &rc->base, "the HTTP egress route table");
}
