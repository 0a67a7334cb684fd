/* sidecar/dp_config.c — building, copying, freeing and indexing dp_config
 * snapshots (see dp_config.h). Validation lives in dp_config_check.c. */
#include "sidecar/dp_config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/dp_addr.h"
#include "sidecar/dp_config_internal.h"

/* ---- deep copy / free of the element types ------------------------------------ */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Copies a string that must exist when src does; *ok goes false on OOM. */
static char *dup_checked(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

static char **dup_strv(char *const *v, size_t n, bool *ok)
{
    if (n == 0 || !v)
        return NULL;
    char **out = calloc(n, sizeof *out);
    if (!out) {
        *ok = false;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = dup_checked(v[i] ? v[i] : "", ok);
    return out;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n && v; i++)
        free(v[i]);
    free(v);
}

static void endpoints_free(dp_endpoint *e, size_t n)
{
    for (size_t i = 0; i < n && e; i++)
        free(e[i].address);
    free(e);
}

static dp_endpoint *endpoints_dup(const dp_endpoint *src, size_t n, bool *ok)
{
    if (n == 0 || !src)
        return NULL;
    dp_endpoint *e = calloc(n, sizeof *e);
    if (!e) {
        *ok = false;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        e[i].address = dup_checked(src[i].address ? src[i].address : "", ok);
        e[i].health = src[i].health;
        e[i].sa = src[i].sa;
        e[i].sa_len = src[i].sa_len;
    }
    return e;
}

static void listener_free(dp_listener *l)
{
    free(l->name);
    free(l->address);
    free_strv(l->allowed_ids, l->n_allowed);
    free(l->local_cluster);
    free(l->cluster);
    free(l->route_table);
}

static int listener_dup(dp_listener *d, const dp_listener *s)
{
    bool ok = true;
    memset(d, 0, sizeof *d);
    d->name = dup_checked(s->name, &ok);
    d->address = dup_checked(s->address ? s->address : "", &ok);
    d->kind = s->kind;
    d->h2 = s->h2;
    d->allowed_ids = dup_strv(s->allowed_ids, s->n_allowed, &ok);
    d->n_allowed = d->allowed_ids ? s->n_allowed : 0;
    d->local_cluster = dup_or_null(s->local_cluster);
    if (s->local_cluster && !d->local_cluster)
        ok = false;
    d->timeout_ms = s->timeout_ms;
    d->cluster = dup_checked(s->cluster, &ok);
    d->route_table = dup_checked(s->route_table, &ok);
    d->sa = s->sa;
    d->sa_len = s->sa_len;
    if (!ok) {
        listener_free(d);
        return MESH_ENOMEM;
    }
    return MESH_OK;
}

static void route_free(dp_route *r)
{
    free(r->name);
    free(r->path);
    for (size_t i = 0; i < r->n_headers && r->headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    for (size_t i = 0; i < r->n_clusters && r->clusters; i++)
        free(r->clusters[i].cluster);
    free(r->clusters);
}

static void route_dup(dp_route *d, const dp_route *s, bool *ok)
{
    memset(d, 0, sizeof *d);
    d->name = dup_checked(s->name, ok);
    d->path_kind = s->path_kind;
    d->path = dup_checked(s->path ? s->path : "", ok);
    if (s->n_headers && s->headers) {
        d->headers = calloc(s->n_headers, sizeof *d->headers);
        if (!d->headers) {
            *ok = false;
        } else {
            d->n_headers = s->n_headers;
            for (size_t i = 0; i < s->n_headers; i++) {
                d->headers[i].name = dup_checked(s->headers[i].name ? s->headers[i].name : "", ok);
                d->headers[i].kind = s->headers[i].kind;
                d->headers[i].value = dup_checked(s->headers[i].value, ok);
                d->headers[i].invert = s->headers[i].invert;
            }
        }
    }
    if (s->n_clusters && s->clusters) {
        d->clusters = calloc(s->n_clusters, sizeof *d->clusters);
        if (!d->clusters) {
            *ok = false;
        } else {
            d->n_clusters = s->n_clusters;
            for (size_t i = 0; i < s->n_clusters; i++) {
                d->clusters[i].cluster =
                    dup_checked(s->clusters[i].cluster ? s->clusters[i].cluster : "", ok);
                d->clusters[i].weight = s->clusters[i].weight;
            }
        }
    }
    d->timeout_ms = s->timeout_ms;
    d->retries = s->retries;
    d->per_try_timeout_ms = s->per_try_timeout_ms;
    d->retry_other_hosts = s->retry_other_hosts;
    d->total_weight = s->total_weight;
}

static void vhost_free(dp_virtual_host *v)
{
    free(v->name);
    free_strv(v->domains, v->n_domains);
    for (size_t i = 0; i < v->n_routes && v->routes; i++)
        route_free(&v->routes[i]);
    free(v->routes);
}

static void route_table_free(dp_route_table *rt)
{
    free(rt->name);
    for (size_t i = 0; i < rt->n_vhosts && rt->vhosts; i++)
        vhost_free(&rt->vhosts[i]);
    free(rt->vhosts);
}

static int route_table_dup(dp_route_table *d, const dp_route_table *s)
{
    bool ok = true;
    memset(d, 0, sizeof *d);
    d->name = dup_checked(s->name, &ok);
    if (s->n_vhosts && s->vhosts) {
        d->vhosts = calloc(s->n_vhosts, sizeof *d->vhosts);
        if (!d->vhosts) {
            ok = false;
        } else {
            d->n_vhosts = s->n_vhosts;
            for (size_t i = 0; i < s->n_vhosts; i++) {
                const dp_virtual_host *sv = &s->vhosts[i];
                dp_virtual_host *dv = &d->vhosts[i];
                dv->name = dup_checked(sv->name, &ok);
                dv->domains = dup_strv(sv->domains, sv->n_domains, &ok);
                dv->n_domains = dv->domains ? sv->n_domains : 0;
                if (sv->n_routes && sv->routes) {
                    dv->routes = calloc(sv->n_routes, sizeof *dv->routes);
                    if (!dv->routes) {
                        ok = false;
                        continue;
                    }
                    dv->n_routes = sv->n_routes;
                    for (size_t j = 0; j < sv->n_routes; j++)
                        route_dup(&dv->routes[j], &sv->routes[j], &ok);
                }
            }
        }
    }
    if (!ok) {
        route_table_free(d);
        return MESH_ENOMEM;
    }
    return MESH_OK;
}

static void cluster_free(dp_cluster *c)
{
    free(c->name);
    free_strv(c->san_ids, c->n_san);
    free(c->eds_service_name);
    endpoints_free(c->endpoints, c->n_endpoints);
    free(c->hc.path);
    free(c->hc.host);
}

static int cluster_dup(dp_cluster *d, const dp_cluster *s)
{
    bool ok = true;
    memset(d, 0, sizeof *d);
    d->name = dup_checked(s->name, &ok);
    d->lb = s->lb;
    d->connect_timeout_ms = s->connect_timeout_ms;
    d->tls = s->tls;
    d->h2 = s->h2;
    d->san_ids = dup_strv(s->san_ids, s->n_san, &ok);
    d->n_san = d->san_ids ? s->n_san : 0;
    d->eds = s->eds;
    d->eds_service_name = dup_checked(s->eds_service_name, &ok);
    d->endpoints = endpoints_dup(s->endpoints, s->n_endpoints, &ok);
    d->n_endpoints = d->endpoints ? s->n_endpoints : 0;
    d->outlier = s->outlier;
    d->hc = s->hc;
    d->hc.path = dup_or_null(s->hc.path);
    d->hc.host = dup_or_null(s->hc.host);
    if ((s->hc.path && !d->hc.path) || (s->hc.host && !d->hc.host))
        ok = false;
    d->breakers = s->breakers;
    if (!d->breakers.set)
        d->breakers = (dp_breaker_cfg){
            .set = true,
            .max_connections = DP_DEFAULT_MAX_CONNECTIONS,
            .max_pending_requests = DP_DEFAULT_MAX_PENDING,
            .max_requests = DP_DEFAULT_MAX_REQUESTS,
            .max_retries = DP_DEFAULT_MAX_RETRIES,
        };
    if (!ok) {
        cluster_free(d);
        return MESH_ENOMEM;
    }
    return MESH_OK;
}

static void assignment_free(dp_load_assignment *a)
{
    free(a->cluster_name);
    endpoints_free(a->endpoints, a->n_endpoints);
}

static int assignment_dup(dp_load_assignment *d, const dp_load_assignment *s)
{
    bool ok = true;
    memset(d, 0, sizeof *d);
    d->cluster_name = dup_checked(s->cluster_name, &ok);
    d->endpoints = endpoints_dup(s->endpoints, s->n_endpoints, &ok);
    d->n_endpoints = d->endpoints ? s->n_endpoints : 0;
    if (!ok) {
        assignment_free(d);
        return MESH_ENOMEM;
    }
    return MESH_OK;
}

/* ---- snapshot lifecycle ------------------------------------------------------- */

dp_config *dp_config_new(void)
{
    dp_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    atomic_init(&cfg->refs, 1);
    return cfg;
}

static void config_free(dp_config *cfg)
{
    for (size_t i = 0; i < cfg->n_listeners; i++)
        listener_free(&cfg->listeners[i]);
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->n_route_tables; i++)
        route_table_free(&cfg->route_tables[i]);
    free(cfg->route_tables);
    for (size_t i = 0; i < cfg->n_clusters; i++)
        cluster_free(&cfg->clusters[i]);
    free(cfg->clusters);
    for (size_t i = 0; i < cfg->n_assignments; i++)
        assignment_free(&cfg->assignments[i]);
    free(cfg->assignments);
    free(cfg->idx_listeners);
    free(cfg->idx_route_tables);
    free(cfg->idx_clusters);
    free(cfg->idx_assignments);
    free(cfg->cluster_la);
    free(cfg);
}

dp_config *dp_config_ref(dp_config *cfg)
{
    if (cfg)
        atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void dp_config_unref(dp_config *cfg)
{
    if (!cfg)
        return;
    /* acq_rel so the freeing thread sees every write made before the last
     * unref on another thread. */
    if (atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
        config_free(cfg);
}

bool dp_config_is_frozen(const dp_config *cfg)
{
    return cfg->frozen;
}

/* Grows an array by one slot; returns the new slot or NULL. */
static void *grow(void **arr, size_t *n, size_t *cap, size_t elem)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        void *p = realloc(*arr, ncap * elem);
        if (!p)
            return NULL;
        *arr = p;
        *cap = ncap;
    }
    return (char *)*arr + (*n) * elem;
}

static int check_mutable(const dp_config *cfg, const char *what, const char *name, mesh_err *err)
{
    if (cfg->frozen)
        return mesh_err_set(err, MESH_EINVAL,
                            "cannot add %s to a frozen config snapshot; copy it first", what);
    if (!name || !*name)
        return mesh_err_set(err, MESH_EINVAL, "%s without a name", what);
    return MESH_OK;
}

int dp_config_add_listener(dp_config *cfg, const dp_listener *l, mesh_err *err)
{
    int rc = check_mutable(cfg, "listener", l->name, err);
    if (rc != MESH_OK)
        return rc;
    dp_listener *slot = grow((void **)&cfg->listeners, &cfg->n_listeners, &cfg->cap_listeners,
                             sizeof *slot);
    if (!slot || listener_dup(slot, l) != MESH_OK)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory adding listener '%s'", l->name);
    cfg->n_listeners++;
    return MESH_OK;
}

int dp_config_add_route_table(dp_config *cfg, const dp_route_table *rt, mesh_err *err)
{
    int rc = check_mutable(cfg, "route table", rt->name, err);
    if (rc != MESH_OK)
        return rc;
    dp_route_table *slot = grow((void **)&cfg->route_tables, &cfg->n_route_tables,
                                &cfg->cap_route_tables, sizeof *slot);
    if (!slot || route_table_dup(slot, rt) != MESH_OK)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory adding route table '%s'", rt->name);
    cfg->n_route_tables++;
    return MESH_OK;
}

int dp_config_add_cluster(dp_config *cfg, const dp_cluster *c, mesh_err *err)
{
    int rc = check_mutable(cfg, "cluster", c->name, err);
    if (rc != MESH_OK)
        return rc;
    dp_cluster *slot = grow((void **)&cfg->clusters, &cfg->n_clusters, &cfg->cap_clusters,
                            sizeof *slot);
    if (!slot || cluster_dup(slot, c) != MESH_OK)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory adding cluster '%s'", c->name);
    cfg->n_clusters++;
    return MESH_OK;
}

int dp_config_add_assignment(dp_config *cfg, const dp_load_assignment *la, mesh_err *err)
{
    int rc = check_mutable(cfg, "load assignment", la->cluster_name, err);
    if (rc != MESH_OK)
        return rc;
    dp_load_assignment *slot = grow((void **)&cfg->assignments, &cfg->n_assignments,
                                    &cfg->cap_assignments, sizeof *slot);
    if (!slot || assignment_dup(slot, la) != MESH_OK)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory adding load assignment '%s'",
                            la->cluster_name);
    cfg->n_assignments++;
    return MESH_OK;
}

dp_config *dp_config_copy(const dp_config *src, unsigned keep_mask)
{
    dp_config *cfg = dp_config_new();
    if (!cfg)
        return NULL;
    mesh_err e;
    if (keep_mask & DP_TABLE_LISTENERS)
        for (size_t i = 0; i < src->n_listeners; i++)
            if (dp_config_add_listener(cfg, &src->listeners[i], &e) != MESH_OK)
                goto fail;
    if (keep_mask & DP_TABLE_ROUTES)
        for (size_t i = 0; i < src->n_route_tables; i++)
            if (dp_config_add_route_table(cfg, &src->route_tables[i], &e) != MESH_OK)
                goto fail;
    if (keep_mask & DP_TABLE_CLUSTERS)
        for (size_t i = 0; i < src->n_clusters; i++)
            if (dp_config_add_cluster(cfg, &src->clusters[i], &e) != MESH_OK)
                goto fail;
    if (keep_mask & DP_TABLE_ASSIGNMENTS)
        for (size_t i = 0; i < src->n_assignments; i++)
            if (dp_config_add_assignment(cfg, &src->assignments[i], &e) != MESH_OK)
                goto fail;
    return cfg;
fail:
    dp_config_unref(cfg);
    return NULL;
}

/* ---- freezing: addresses, weights, indexes ------------------------------------ */

/* qsort_r-free sorting of index arrays: names are looked up through a small
 * adapter so one comparison routine serves every table. */
typedef const char *(*name_at_fn)(const dp_config *cfg, size_t i);

static const char *listener_name_at(const dp_config *c, size_t i) { return c->listeners[i].name; }
static const char *rt_name_at(const dp_config *c, size_t i) { return c->route_tables[i].name; }
static const char *cluster_name_at(const dp_config *c, size_t i) { return c->clusters[i].name; }
static const char *la_name_at(const dp_config *c, size_t i) { return c->assignments[i].cluster_name; }

/* Insertion sort: tables are small (tens to a few thousand entries) and this
 * runs once per snapshot on the xDS thread. */
static size_t *build_index(const dp_config *cfg, size_t n, name_at_fn name_at)
{
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        const char *name = name_at(cfg, i);
        while (j > 0 && strcmp(name_at(cfg, idx[j - 1]), name) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return idx;
}

static long find_index(const dp_config *cfg, const size_t *idx, size_t n, name_at_fn name_at,
                       const char *name)
{
    if (!name)
        return -1;
    if (!cfg->frozen) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(name_at(cfg, i), name) == 0)
                return (long)i;
        return -1;
    }
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name_at(cfg, idx[mid]), name);
        if (c == 0)
            return (long)idx[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void resolve_endpoints(dp_endpoint *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dp_addr_parse(e[i].address, false, &e[i].sa, &e[i].sa_len, NULL);
}

int dp_config_freeze(dp_config *cfg, mesh_err *err)
{
    if (cfg->frozen)
        return MESH_OK;
    int rc = dp_config_validate(cfg, err);
    if (rc != MESH_OK)
        return rc;
    size_t *il = build_index(cfg, cfg->n_listeners, listener_name_at);
    size_t *ir = build_index(cfg, cfg->n_route_tables, rt_name_at);
    size_t *ic = build_index(cfg, cfg->n_clusters, cluster_name_at);
    size_t *ia = build_index(cfg, cfg->n_assignments, la_name_at);
    const dp_load_assignment **cla = calloc(cfg->n_clusters ? cfg->n_clusters : 1, sizeof *cla);
    if (!il || !ir || !ic || !ia || !cla) {
        free(il);
        free(ir);
        free(ic);
        free(ia);
        free(cla);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory indexing config");
    }
    /* Validation already proved every address parses; these cannot fail. */
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        dp_listener *l = &cfg->listeners[i];
        dp_addr_parse(l->address, true, &l->sa, &l->sa_len, NULL);
    }
    for (size_t i = 0; i < cfg->n_clusters; i++)
        resolve_endpoints(cfg->clusters[i].endpoints, cfg->clusters[i].n_endpoints);
    for (size_t i = 0; i < cfg->n_assignments; i++)
        resolve_endpoints(cfg->assignments[i].endpoints, cfg->assignments[i].n_endpoints);
    for (size_t i = 0; i < cfg->n_route_tables; i++) {
        dp_route_table *rt = &cfg->route_tables[i];
        for (size_t v = 0; v < rt->n_vhosts; v++)
            for (size_t r = 0; r < rt->vhosts[v].n_routes; r++) {
                dp_route *route = &rt->vhosts[v].routes[r];
                route->total_weight = 0;
                for (size_t k = 0; k < route->n_clusters; k++)
                    route->total_weight += route->clusters[k].weight;
            }
    }
    cfg->idx_listeners = il;
    cfg->idx_route_tables = ir;
    cfg->idx_clusters = ic;
    cfg->idx_assignments = ia;
    cfg->frozen = true;
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        const dp_cluster *c = &cfg->clusters[i];
        if (c->eds)
            cla[i] = dp_config_find_assignment(
                cfg, c->eds_service_name && *c->eds_service_name ? c->eds_service_name : c->name);
    }
    cfg->cluster_la = cla;
    return MESH_OK;
}

/* ---- read access ---------------------------------------------------------------- */

size_t dp_config_n_listeners(const dp_config *cfg) { return cfg->n_listeners; }
const dp_listener *dp_config_listener_at(const dp_config *cfg, size_t i)
{
    return i < cfg->n_listeners ? &cfg->listeners[i] : NULL;
}
size_t dp_config_n_route_tables(const dp_config *cfg) { return cfg->n_route_tables; }
const dp_route_table *dp_config_route_table_at(const dp_config *cfg, size_t i)
{
    return i < cfg->n_route_tables ? &cfg->route_tables[i] : NULL;
}
size_t dp_config_n_clusters(const dp_config *cfg) { return cfg->n_clusters; }
const dp_cluster *dp_config_cluster_at(const dp_config *cfg, size_t i)
{
    return i < cfg->n_clusters ? &cfg->clusters[i] : NULL;
}
size_t dp_config_n_assignments(const dp_config *cfg) { return cfg->n_assignments; }
const dp_load_assignment *dp_config_assignment_at(const dp_config *cfg, size_t i)
{
    return i < cfg->n_assignments ? &cfg->assignments[i] : NULL;
}

const dp_listener *dp_config_find_listener(const dp_config *cfg, const char *name)
{
    long i = find_index(cfg, cfg->idx_listeners, cfg->n_listeners, listener_name_at, name);
    return i < 0 ? NULL : &cfg->listeners[i];
}

const dp_route_table *dp_config_find_route_table(const dp_config *cfg, const char *name)
{
    long i = find_index(cfg, cfg->idx_route_tables, cfg->n_route_tables, rt_name_at, name);
    return i < 0 ? NULL : &cfg->route_tables[i];
}

const dp_cluster *dp_config_find_cluster(const dp_config *cfg, const char *name, size_t *index_out)
{
    long i = find_index(cfg, cfg->idx_clusters, cfg->n_clusters, cluster_name_at, name);
    if (i < 0)
        return NULL;
    if (index_out)
        *index_out = (size_t)i;
    return &cfg->clusters[i];
}

const dp_load_assignment *dp_config_find_assignment(const dp_config *cfg, const char *name)
{
    long i = find_index(cfg, cfg->idx_assignments, cfg->n_assignments, la_name_at, name);
    return i < 0 ? NULL : &cfg->assignments[i];
}

const dp_endpoint *dp_config_cluster_endpoints(const dp_config *cfg, const dp_cluster *c,
                                               size_t *n_out)
{
    if (!c->eds) {
        *n_out = c->n_endpoints;
        return c->endpoints;
    }
    const dp_load_assignment *la = NULL;
    if (cfg->frozen && cfg->cluster_la) {
        size_t i = (size_t)(c - cfg->clusters);
        if (i < cfg->n_clusters)
            la = cfg->cluster_la[i];
    } else {
        la = dp_config_find_assignment(
            cfg, c->eds_service_name && *c->eds_service_name ? c->eds_service_name : c->name);
    }
    *n_out = la ? la->n_endpoints : 0;
    return la ? la->endpoints : NULL;
}

const char *dp_listener_kind_name(dp_listener_kind k)
{
    switch (k) {
    case DP_LISTENER_INBOUND_HTTP: return "inbound-http";
    case DP_LISTENER_INBOUND_TCP: return "inbound-tcp";
    case DP_LISTENER_OUTBOUND_HTTP: return "outbound-http";
    case DP_LISTENER_OUTBOUND_TCP: return "outbound-tcp";
    }
    return "unknown";
}

const char *dp_lb_policy_name(dp_lb_policy p)
{
    return p == DP_LB_LEAST_REQUEST ? "least_request" : "round_robin";
}

const char *dp_health_name(dp_health h)
{
    switch (h) {
    case DP_HEALTH_UNKNOWN: return "UNKNOWN";
    case DP_HEALTH_HEALTHY: return "HEALTHY";
    case DP_HEALTH_UNHEALTHY: return "UNHEALTHY";
    case DP_HEALTH_DRAINING: return "DRAINING";
    case DP_HEALTH_TIMEOUT: return "TIMEOUT";
    case DP_HEALTH_DEGRADED: return "DEGRADED";
    }
    return "UNKNOWN";
}

bool dp_health_usable(dp_health h)
{
    return h == DP_HEALTH_UNKNOWN || h == DP_HEALTH_HEALTHY;
}
