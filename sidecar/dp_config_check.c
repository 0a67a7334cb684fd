/* sidecar/dp_config_check.c — whole-snapshot validation (dp_config_validate).
 *
 * The message is what the xDS client sends back as a NACK's error_detail, so
 * each names the resource type, its name and the offending field. References
 * to resources that do not exist (yet) are not errors: Envoy answers 503/404
 * until they arrive, and the xDS push order (CDS, EDS, LDS, RDS) makes such
 * windows short. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sidecar/dp_addr.h"
#include "sidecar/dp_config.h"
#include "sidecar/dp_config_internal.h"
#include "sidecar/dp_spiffe.h"

static bool same_bind(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port != 0 && x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port != 0 && x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

static int check_ids(char *const *ids, size_t n, const char *what, const char *name,
                     const char *field, mesh_err *err)
{
    for (size_t i = 0; i < n; i++) {
        mesh_err e;
        if (dp_spiffe_check(ids[i], NULL, 0, &e) != MESH_OK)
            return mesh_err_set(err, MESH_EINVAL, "%s '%s': %s[%zu]: %s", what, name, field, i,
                                e.msg);
    }
    return MESH_OK;
}

static int check_listeners_into(const dp_config *cfg, struct sockaddr_storage *prev,
                                mesh_err *err)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const dp_listener *l = &cfg->listeners[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->listeners[j].name, l->name) == 0)
                return mesh_err_set(err, MESH_EINVAL, "listener '%s': duplicate name", l->name);
        struct sockaddr_storage sa;
        socklen_t sl;
        mesh_err e;
        if (dp_addr_parse(l->address, true, &sa, &sl, &e) != MESH_OK)
            return mesh_err_set(err, MESH_EINVAL, "listener '%s': %s", l->name, e.msg);
        /* Quadratic, but a sidecar has a handful of listeners. */
        for (size_t j = 0; j < i; j++)
            if (same_bind(&prev[j], &sa))
                return mesh_err_set(err, MESH_EINVAL,
                                    "listener '%s': address %s is already used by listener '%s'",
                                    l->name, l->address, cfg->listeners[j].name);
        prev[i] = sa;
        switch (l->kind) {
        case DP_LISTENER_INBOUND_HTTP:
        case DP_LISTENER_INBOUND_TCP:
            if (!l->local_cluster || !*l->local_cluster)
                return mesh_err_set(err, MESH_EINVAL,
                                    "listener '%s': inbound listener needs local_cluster",
                                    l->name);
            if (check_ids(l->allowed_ids, l->n_allowed, "listener", l->name, "allowed_ids",
                          err) != MESH_OK)
                return MESH_EINVAL;
            break;
        case DP_LISTENER_OUTBOUND_HTTP:
            if (!l->route_table || !*l->route_table)
                return mesh_err_set(err, MESH_EINVAL,
                                    "listener '%s': outbound HTTP listener needs route_table "
                                    "(RDS route_config_name)", l->name);
            break;
        case DP_LISTENER_OUTBOUND_TCP:
            if (!l->cluster || !*l->cluster)
                return mesh_err_set(err, MESH_EINVAL,
                                    "listener '%s': outbound TCP listener needs cluster",
                                    l->name);
            break;
        default:
            return mesh_err_set(err, MESH_EINVAL, "listener '%s': unknown kind %d", l->name,
                                (int)l->kind);
        }
        if (l->timeout_ms < 0)
            return mesh_err_set(err, MESH_EINVAL, "listener '%s': timeout_ms must be >= 0",
                                l->name);
    }
    return MESH_OK;
}

static int check_listeners(const dp_config *cfg, mesh_err *err)
{
    struct sockaddr_storage *prev = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof *prev);
    if (!prev)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory validating listeners");
    int rc = check_listeners_into(cfg, prev, err);
    free(prev);
    return rc;
}

/* A domain is "*", "*suffix", "prefix*" or a plain host; '*' nowhere else. */
static int check_domain(const char *d, const char *rt, const char *vh, mesh_err *err)
{
    size_t n = strlen(d);
    if (n == 0)
        return mesh_err_set(err, MESH_EINVAL, "route table '%s': virtual host '%s': empty domain",
                            rt, vh);
    const char *star = strchr(d, '*');
    if (star && !(n == 1 || star == d || star == d + n - 1) )
        return mesh_err_set(err, MESH_EINVAL,
                            "route table '%s': virtual host '%s': domain '%s': '*' may only "
                            "lead or end a domain", rt, vh, d);
    if (star && strchr(star + 1, '*'))
        return mesh_err_set(err, MESH_EINVAL,
                            "route table '%s': virtual host '%s': domain '%s': only one '*'",
                            rt, vh, d);
    return MESH_OK;
}

static int check_route(const dp_route *r, const char *rt, const char *vh, size_t idx,
                       mesh_err *err)
{
    char where[600];
    snprintf(where, sizeof where, "route table '%s': virtual host '%s': route %zu%s%s%s", rt, vh,
             idx, r->name ? " ('" : "", r->name ? r->name : "", r->name ? "')" : "");
    if (r->path_kind != DP_PATH_PREFIX && r->path_kind != DP_PATH_EXACT)
        return mesh_err_set(err, MESH_EINVAL, "%s: unknown path match kind", where);
    if (!r->path)
        return mesh_err_set(err, MESH_EINVAL, "%s: missing path", where);
    if (r->path_kind == DP_PATH_EXACT && r->path[0] != '/')
        return mesh_err_set(err, MESH_EINVAL, "%s: path '%s' must start with '/'", where,
                            r->path);
    if (r->path_kind == DP_PATH_PREFIX && r->path[0] != '\0' && r->path[0] != '/')
        return mesh_err_set(err, MESH_EINVAL, "%s: prefix '%s' must start with '/'", where,
                            r->path);
    for (size_t h = 0; h < r->n_headers; h++) {
        const dp_header_matcher *m = &r->headers[h];
        if (!m->name || !*m->name)
            return mesh_err_set(err, MESH_EINVAL, "%s: header matcher %zu has no name", where, h);
        if (m->kind != DP_HDR_EXACT && m->kind != DP_HDR_PREFIX && m->kind != DP_HDR_PRESENT)
            return mesh_err_set(err, MESH_EINVAL, "%s: header '%s': unknown match kind", where,
                                m->name);
        if (m->kind != DP_HDR_PRESENT && !m->value)
            return mesh_err_set(err, MESH_EINVAL, "%s: header '%s': %s match needs a value",
                                where, m->name, m->kind == DP_HDR_EXACT ? "exact" : "prefix");
    }
    if (r->n_clusters == 0)
        return mesh_err_set(err, MESH_EINVAL, "%s: no destination cluster", where);
    uint64_t total = 0;
    for (size_t c = 0; c < r->n_clusters; c++) {
        if (!r->clusters[c].cluster || !*r->clusters[c].cluster)
            return mesh_err_set(err, MESH_EINVAL, "%s: destination %zu has no cluster name",
                                where, c);
        total += r->clusters[c].weight;
    }
    if (total == 0)
        return mesh_err_set(err, MESH_EINVAL, "%s: weights of its clusters sum to 0", where);
    if (r->timeout_ms < 0)
        return mesh_err_set(err, MESH_EINVAL, "%s: timeout_ms must be >= 0", where);
    if (r->retries > 10)
        return mesh_err_set(err, MESH_EINVAL, "%s: retries %u exceeds the limit of 10", where,
                            r->retries);
    return MESH_OK;
}

static int check_route_tables(const dp_config *cfg, mesh_err *err)
{
    for (size_t i = 0; i < cfg->n_route_tables; i++) {
        const dp_route_table *rt = &cfg->route_tables[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->route_tables[j].name, rt->name) == 0)
                return mesh_err_set(err, MESH_EINVAL, "route table '%s': duplicate name",
                                    rt->name);
        for (size_t v = 0; v < rt->n_vhosts; v++) {
            const dp_virtual_host *vh = &rt->vhosts[v];
            const char *vname = vh->name ? vh->name : "";
            if (vh->n_domains == 0)
                return mesh_err_set(err, MESH_EINVAL,
                                    "route table '%s': virtual host '%s' has no domains",
                                    rt->name, vname);
            for (size_t d = 0; d < vh->n_domains; d++) {
                if (check_domain(vh->domains[d], rt->name, vname, err) != MESH_OK)
                    return MESH_EINVAL;
                /* Envoy rejects a domain listed twice in one table: the match
                 * would be ambiguous. */
                for (size_t v2 = 0; v2 <= v; v2++) {
                    const dp_virtual_host *o = &rt->vhosts[v2];
                    size_t lim = v2 == v ? d : o->n_domains;
                    for (size_t d2 = 0; d2 < lim; d2++)
                        if (strcasecmp(o->domains[d2], vh->domains[d]) == 0)
                            return mesh_err_set(err, MESH_EINVAL,
                                                "route table '%s': domain '%s' appears in virtual "
                                                "hosts '%s' and '%s'", rt->name, vh->domains[d],
                                                o->name ? o->name : "", vname);
                }
            }
            for (size_t r = 0; r < vh->n_routes; r++)
                if (check_route(&vh->routes[r], rt->name, vname, r, err) != MESH_OK)
                    return MESH_EINVAL;
        }
    }
    return MESH_OK;
}

static int check_endpoints(const dp_endpoint *e, size_t n, const char *what, const char *name,
                           mesh_err *err)
{
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage sa;
        socklen_t sl;
        mesh_err ae;
        if (dp_addr_parse(e[i].address, false, &sa, &sl, &ae) != MESH_OK)
            return mesh_err_set(err, MESH_EINVAL, "%s '%s': endpoint %zu: %s", what, name, i,
                                ae.msg);
        if ((int)e[i].health < DP_HEALTH_UNKNOWN || e[i].health > DP_HEALTH_DEGRADED)
            return mesh_err_set(err, MESH_EINVAL, "%s '%s': endpoint %s: unknown health %d",
                                what, name, e[i].address, (int)e[i].health);
    }
    return MESH_OK;
}

static int check_clusters(const dp_config *cfg, mesh_err *err)
{
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        const dp_cluster *c = &cfg->clusters[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->clusters[j].name, c->name) == 0)
                return mesh_err_set(err, MESH_EINVAL, "cluster '%s': duplicate name", c->name);
        if (c->lb != DP_LB_ROUND_ROBIN && c->lb != DP_LB_LEAST_REQUEST)
            return mesh_err_set(err, MESH_EINVAL, "cluster '%s': unsupported lb policy %d",
                                c->name, (int)c->lb);
        if (c->connect_timeout_ms < 0)
            return mesh_err_set(err, MESH_EINVAL, "cluster '%s': connect_timeout must be >= 0",
                                c->name);
        if (check_ids(c->san_ids, c->n_san, "cluster", c->name, "san_ids", err) != MESH_OK)
            return MESH_EINVAL;
        if (!c->tls && c->n_san)
            return mesh_err_set(err, MESH_EINVAL,
                                "cluster '%s': SAN matchers need a TLS (mTLS) cluster", c->name);
        if (!c->eds && check_endpoints(c->endpoints, c->n_endpoints, "cluster", c->name, err))
            return MESH_EINVAL;
    }
    return MESH_OK;
}

static int check_assignments(const dp_config *cfg, mesh_err *err)
{
    for (size_t i = 0; i < cfg->n_assignments; i++) {
        const dp_load_assignment *a = &cfg->assignments[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->assignments[j].cluster_name, a->cluster_name) == 0)
                return mesh_err_set(err, MESH_EINVAL, "load assignment '%s': duplicate name",
                                    a->cluster_name);
        if (check_endpoints(a->endpoints, a->n_endpoints, "load assignment", a->cluster_name,
                            err))
            return MESH_EINVAL;
    }
    return MESH_OK;
}

int dp_config_validate(const dp_config *cfg, mesh_err *err)
{
    int rc = check_listeners(cfg, err);
    if (rc == MESH_OK)
        rc = check_route_tables(cfg, err);
    if (rc == MESH_OK)
        rc = check_clusters(cfg, err);
    if (rc == MESH_OK)
        rc = check_assignments(cfg, err);
    return rc;
}
