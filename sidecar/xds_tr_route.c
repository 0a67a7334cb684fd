/* sidecar/xds_tr_route.c — RDS RouteConfiguration -> dp_route_table.
 *
 * Virtual hosts, routes (prefix / exact path, header matchers), weighted
 * clusters, timeouts and retries. Match and action features the data plane
 * does not implement (regexes, rewrites, cluster_header, runtime fractions,
 * case-insensitive paths) are refused rather than ignored: ignoring them would
 * route requests somewhere the operator did not ask for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/xds_translate.h"
#include "sidecar/xds_translate_internal.h"

#define DP_PREVIOUS_HOSTS_NAME "envoy.retry_host_predicates.previous_hosts"
#define DP_PREVIOUS_HOSTS_TYPE \
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"

#define MAX_VHOSTS 4096
#define MAX_ROUTES 4096

static int header_matcher(const Envoy__Config__Route__V3__HeaderMatcher *h, const char *what,
                          dp_header_matcher *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    if (!h->name || !h->name[0])
        return mesh_err_set(err, MESH_EINVAL, "%s: header matcher without a name", what);
    if (h->treat_missing_header_as_empty)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: treat_missing_header_as_empty is not supported", what);
    out->name = h->name;
    out->invert = h->invert_match;
    switch (h->header_match_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER__NOT_SET:
        /* Envoy: no specifier means "the header is present". */
        out->kind = DP_HDR_PRESENT;
        return MESH_OK;
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH:
        out->kind = DP_HDR_PRESENT;
        /* present_match: false matches when the header is absent. */
        if (!h->present_match)
            out->invert = !out->invert;
        return MESH_OK;
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH: {
        const Envoy__Type__Matcher__V3__StringMatcher *m = h->string_match;
        if (!m)
            return mesh_err_set(err, MESH_EINVAL, "%s: empty string_match", what);
        if (m->ignore_case)
            return mesh_err_set(err, MESH_EINVAL,
                                "%s: header '%s': ignore_case is not supported", what, h->name);
        if (m->match_pattern_case == ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT) {
            out->kind = DP_HDR_EXACT;
            out->value = m->exact;
        } else if (m->match_pattern_case ==
                   ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX) {
            if (!m->prefix[0])
                return mesh_err_set(err, MESH_EINVAL, "%s: header '%s': empty prefix", what,
                                    h->name);
            out->kind = DP_HDR_PREFIX;
            out->value = m->prefix;
        } else {
            return mesh_err_set(err, MESH_EINVAL,
                                "%s: header '%s': only exact, prefix and present matches are "
                                "supported", what, h->name);
        }
        return MESH_OK;
    }
    default:
        return mesh_err_set(err, MESH_EINVAL, "%s: header '%s': unsupported match kind", what,
                            h->name);
    }
}

/* per_try_timeout and the retry host predicates. previous_hosts is the one
 * predicate there is; host_selection_retry_max_attempts needs no value here,
 * because the load balancer leaves the earlier hosts out of the pick instead
 * of re-drawing until it misses them. */
static int retry_extras(const Envoy__Config__Route__V3__RetryPolicy *rp, const char *what,
                        dp_route *out, mesh_err *err)
{
    if (rp->per_try_timeout) {
        char w[448];
        xdsc_tr_what(w, sizeof w, "%s: retry_policy.per_try_timeout", what);
        int rc = xdsc_tr_duration_ms(rp->per_try_timeout, w, &out->per_try_timeout_ms, err);
        if (rc != MESH_OK)
            return rc;
    }
    for (size_t i = 0; i < rp->n_retry_host_predicate; i++) {
        const Envoy__Config__Route__V3__RetryPolicy__RetryHostPredicate *p =
            rp->retry_host_predicate[i];
        bool by_name = strcmp(p->name, DP_PREVIOUS_HOSTS_NAME) == 0;
        bool by_type = p->config_type_case ==
                           ENVOY__CONFIG__ROUTE__V3__RETRY_POLICY__RETRY_HOST_PREDICATE__CONFIG_TYPE_TYPED_CONFIG &&
                       p->typed_config && strcmp(p->typed_config->type_url, DP_PREVIOUS_HOSTS_TYPE) == 0;
        if (!by_name && !by_type) {
            char q[160];
            return mesh_err_set(err, MESH_EINVAL, "%s: retry_host_predicate[%zu] '%s' is not "
                                "supported (only %s)", what, i,
                                xdsc_tr_quote(p->name, q, sizeof q), DP_PREVIOUS_HOSTS_NAME);
        }
        out->retry_other_hosts = true;
    }
    return MESH_OK;
}

static int route_action(const Envoy__Config__Route__V3__RouteAction *a,
                        const Envoy__Config__Route__V3__RetryPolicy *vhost_retry, const char *what,
                        dp_route *out, mesh_err *err)
{
    char q[160];
    if (a->prefix_rewrite && a->prefix_rewrite[0])
        return mesh_err_set(err, MESH_EINVAL, "%s: prefix_rewrite is not supported", what);
    if (a->host_rewrite_specifier_case !=
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER__NOT_SET)
        return mesh_err_set(err, MESH_EINVAL, "%s: host rewrites are not supported", what);
    switch (a->cluster_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER:
        if (!a->cluster[0])
            return mesh_err_set(err, MESH_EINVAL, "%s: empty cluster name", what);
        out->clusters = calloc(1, sizeof *out->clusters);
        if (!out->clusters)
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
        out->clusters[0].cluster = a->cluster;
        out->clusters[0].weight = 1;
        out->n_clusters = 1;
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS: {
        const Envoy__Config__Route__V3__WeightedCluster *wc = a->weighted_clusters;
        if (!wc || wc->n_clusters == 0)
            return mesh_err_set(err, MESH_EINVAL, "%s: weighted_clusters has no clusters", what);
        out->clusters = calloc(wc->n_clusters, sizeof *out->clusters);
        if (!out->clusters)
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
        for (size_t i = 0; i < wc->n_clusters; i++) {
            if (!wc->clusters[i]->name[0])
                return mesh_err_set(err, MESH_EINVAL,
                                    "%s: weighted_clusters.clusters[%zu]: empty name", what, i);
            out->clusters[i].cluster = wc->clusters[i]->name;
            out->clusters[i].weight = wc->clusters[i]->weight ? wc->clusters[i]->weight->value : 0;
        }
        out->n_clusters = wc->n_clusters;
        break;
    }
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER_HEADER:
        return mesh_err_set(err, MESH_EINVAL, "%s: cluster_header '%s' is not supported", what,
                            xdsc_tr_quote(a->cluster_header, q, sizeof q));
    default:
        return mesh_err_set(err, MESH_EINVAL, "%s: route action names no cluster", what);
    }
    /* Envoy: unset timeout = 15 s, explicit 0 = none. */
    out->timeout_ms = DP_DEFAULT_ROUTE_TIMEOUT_MS;
    if (a->timeout) {
        int rc = xdsc_tr_duration_ms(a->timeout, what, &out->timeout_ms, err);
        if (rc != MESH_OK)
            return rc;
    }
    /* A route's retry policy replaces the virtual host's; an unset
     * num_retries in a present policy means 1 (Envoy). */
    const Envoy__Config__Route__V3__RetryPolicy *rp = a->retry_policy ? a->retry_policy : vhost_retry;
    out->retries = 0;
    if (rp) {
        out->retries = rp->num_retries ? rp->num_retries->value : 1;
        if (out->retries > 10)
            return mesh_err_set(err, MESH_EINVAL, "%s: num_retries %u exceeds 10", what,
                                out->retries);
        return retry_extras(rp, what, out, err);
    }
    return MESH_OK;
}

static int route_one(const Envoy__Config__Route__V3__Route *r,
                     const Envoy__Config__Route__V3__RetryPolicy *vhost_retry, const char *what,
                     dp_route *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    out->name = r->name;
    const Envoy__Config__Route__V3__RouteMatch *m = r->match;
    if (!m)
        return mesh_err_set(err, MESH_EINVAL, "%s: missing match", what);
    switch (m->path_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX:
        out->path_kind = DP_PATH_PREFIX;
        /* Envoy accepts prefix "" as "everything"; dp_config wants "/". */
        out->path = m->prefix[0] ? m->prefix : "/";
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH:
        out->path_kind = DP_PATH_EXACT;
        out->path = m->path;
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH_SEPARATED_PREFIX:
        return mesh_err_set(err, MESH_EINVAL, "%s: path_separated_prefix is not supported", what);
    default:
        return mesh_err_set(err, MESH_EINVAL, "%s: match has no prefix or path", what);
    }
    if (m->case_sensitive && !m->case_sensitive->value)
        return mesh_err_set(err, MESH_EINVAL, "%s: case-insensitive path matching is not "
                            "supported", what);
    if (m->runtime_fraction)
        return mesh_err_set(err, MESH_EINVAL, "%s: runtime_fraction is not supported", what);
    if (m->n_headers) {
        out->headers = calloc(m->n_headers, sizeof *out->headers);
        if (!out->headers)
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
        out->n_headers = m->n_headers;
        for (size_t i = 0; i < m->n_headers; i++) {
            int rc = header_matcher(m->headers[i], what, &out->headers[i], err);
            if (rc != MESH_OK)
                return rc;
        }
    }
    if (r->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE || !r->route)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: only 'route' actions are supported (no redirect or direct "
                            "response)", what);
    if (r->n_typed_per_filter_config)
        return mesh_err_set(err, MESH_EINVAL, "%s: typed_per_filter_config is not supported",
                            what);
    return route_action(r->route, vhost_retry, what, out, err);
}

void xdsc_tr_route_table_release(dp_route_table *rt)
{
    for (size_t v = 0; rt->vhosts && v < rt->n_vhosts; v++) {
        dp_virtual_host *vh = &rt->vhosts[v];
        for (size_t r = 0; vh->routes && r < vh->n_routes; r++) {
            free(vh->routes[r].headers);
            free(vh->routes[r].clusters);
        }
        free(vh->routes);
    }
    free(rt->vhosts);
    memset(rt, 0, sizeof *rt);
}

int xdsc_tr_route_table_build(const Envoy__Config__Route__V3__RouteConfiguration *rc,
                              const char *what, dp_route_table *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    out->name = rc->name;
    if (rc->n_virtual_hosts > MAX_VHOSTS)
        return mesh_err_set(err, MESH_EINVAL, "%s: more than %d virtual hosts", what, MAX_VHOSTS);
    if (rc->n_virtual_hosts) {
        out->vhosts = calloc(rc->n_virtual_hosts, sizeof *out->vhosts);
        if (!out->vhosts)
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    out->n_vhosts = rc->n_virtual_hosts;
    char w[384];
    for (size_t v = 0; v < rc->n_virtual_hosts; v++) {
        const Envoy__Config__Route__V3__VirtualHost *vh = rc->virtual_hosts[v];
        dp_virtual_host *dv = &out->vhosts[v];
        dv->name = vh->name;
        dv->domains = vh->domains;
        dv->n_domains = vh->n_domains;
        xdsc_tr_what(w, sizeof w, "%s: virtual_hosts[%zu] '%s'", what, v, vh->name);
        if (vh->n_domains == 0)
            return mesh_err_set(err, MESH_EINVAL, "%s: no domains", w);
        if (vh->require_tls != ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__TLS_REQUIREMENT_TYPE__NONE)
            return mesh_err_set(err, MESH_EINVAL, "%s: require_tls is not supported", w);
        if (vh->n_typed_per_filter_config)
            return mesh_err_set(err, MESH_EINVAL, "%s: typed_per_filter_config is not supported",
                                w);
        if (vh->n_routes > MAX_ROUTES)
            return mesh_err_set(err, MESH_EINVAL, "%s: more than %d routes", w, MAX_ROUTES);
        if (vh->n_routes) {
            dv->routes = calloc(vh->n_routes, sizeof *dv->routes);
            if (!dv->routes)
                return mesh_err_set(err, MESH_ENOMEM, "out of memory");
        }
        dv->n_routes = vh->n_routes;
        for (size_t r = 0; r < vh->n_routes; r++) {
            char rw[448];
            xdsc_tr_what(rw, sizeof rw, "%s: routes[%zu]", w, r);
            int rc2 = route_one(vh->routes[r], vh->retry_policy, rw, &dv->routes[r], err);
            if (rc2 != MESH_OK)
                return rc2;
        }
    }
    return MESH_OK;
}

int xdsc_translate_route_config(dp_config *cfg, const uint8_t *data, size_t len, mesh_err *err)
{
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        envoy__config__route__v3__route_configuration__unpack(NULL, len, data);
    if (!rc)
        return mesh_err_set(err, MESH_EINVAL, "RouteConfiguration does not decode");
    char what[320], q[160];
    xdsc_tr_what(what, sizeof what, "route_config '%s'", xdsc_tr_quote(rc->name, q, sizeof q));
    int r;
    dp_route_table rt;
    if (!rc->name[0]) {
        r = mesh_err_set(err, MESH_EINVAL, "RouteConfiguration without a name");
    } else {
        r = xdsc_tr_route_table_build(rc, what, &rt, err);
        if (r == MESH_OK)
            r = dp_config_add_route_table(cfg, &rt, err);
        xdsc_tr_route_table_release(&rt);
    }
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    return r;
}
