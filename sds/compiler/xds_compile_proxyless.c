/* sds/compiler/xds_compile_proxyless.c — mesh config -> the resources of a proxyless gRPC client
 * (xds_compile_proxyless.h; docs/xds-clients.md).
 *
 * This file decides WHAT such a client may subscribe to and builds its API
 * listeners; the route and cluster files build the rest. A proxyless client
 * subscribes by name (never wildcard), so the snapshot may hold every host of
 * the mesh: ADS sends each client only the subset it asked for, and versions
 * are computed over that subset, so an edit to one host's route pushes nothing
 * to clients of other hosts. */
#include "sds/compiler/xds_compile_proxyless.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sds/compiler/xds_compile_proxyless_internal.h"

#include "envoy/config/listener/v3/api_listener.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter HttpFilter;

/* ---- LDS: API listeners ------------------------------------------------------------- */

/* gRPC requires the router to be the last (here: the only) HTTP filter, with its
 * typed_config, and the route table from RDS over ADS or inline (gRFC A27). */
static int api_listener(xc_ctx *c, const char *host)
{
    Envoy__Config__Listener__V3__Listener *l = xc_alloc(&c->arena, sizeof *l);
    Envoy__Config__Listener__V3__ApiListener *api = xc_alloc(&c->arena, sizeof *api);
    Hcm *hcm = xc_alloc(&c->arena, sizeof *hcm);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds *rds =
        xc_alloc(&c->arena, sizeof *rds);
    Envoy__Extensions__Filters__Http__Router__V3__Router *router = xc_alloc(&c->arena, sizeof *router);
    HttpFilter *hf = xc_alloc(&c->arena, sizeof *hf);
    HttpFilter **hfs = xc_array(&c->arena, 1, sizeof *hfs);
    const char *what = xc_printf(&c->arena, "API listener for host \"%s\"", host);
    if (!l || !api || !hcm || !rds || !router || !hf || !hfs || !what)
        return xc_oom_status(c);

    envoy__extensions__filters__http__router__v3__router__init(router);
    envoy__extensions__filters__network__http_connection_manager__v3__http_filter__init(hf);
    hf->name = XC_FILTER_ROUTER;
    hf->config_type_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    if ((hf->typed_config = xc_any(c, XDS_TYPE_URL_ROUTER, &router->base)) == NULL)
        return xc_status(c);
    hfs[0] = hf;

    envoy__extensions__filters__network__http_connection_manager__v3__rds__init(rds);
    rds->route_config_name = (char *)host;
    if ((rds->config_source = xc_ads_source(c)) == NULL)
        return xc_status(c);

    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__init(hcm);
    hcm->codec_type =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__AUTO;
    hcm->stat_prefix = "proxyless";
    hcm->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
    hcm->rds = rds;
    hcm->n_http_filters = 1;
    hcm->http_filters = hfs;

    envoy__config__listener__v3__api_listener__init(api);
    if ((api->api_listener = xc_any(c, XDS_TYPE_URL_HCM, &hcm->base)) == NULL)
        return xc_status(c);
    /* No address, no filter chains: an API listener is a config holder for a
     * client library, not a socket. */
    envoy__config__listener__v3__listener__init(l);
    l->name = (char *)host;
    l->api_listener = api;
    return xc_emit(c, XDS_LDS, host, &l->base, what);
}

/* ---- which hosts ---------------------------------------------------------------------- */

typedef struct host_ref {
    xp_host h;
    const char *owner;            /* "route backend (mesh.yaml:30)", for errors */
} host_ref;

static int cmp_host_ref(const void *a, const void *b)
{
    const host_ref *x = a, *y = b;
    int r = strcasecmp(x->h.host, y->h.host);
    return r != 0 ? r : strcmp(x->owner, y->owner);
}

/* A host can be subscribed by name only if it is one concrete name: "*" and
 * "*.example.com" match many authorities, which by-name LDS cannot express. */
static int concrete(const char *host)
{
    return host != NULL && host[0] != '\0' && strchr(host, '*') == NULL;
}

static const char *route_owner(xc_ctx *c, const mesh_route *r)
{
    const char *s = xc_printf(&c->arena, "route %s (%s)", r->name ? r->name : "<unnamed>",
                              r->source ? r->source : "config");
    return s ? s : xc_oom(c);
}

/* Every route destination must be a defined service, as in the sidecar compile. */
static int check_destinations(xc_ctx *c, const mesh_route *r)
{
    for (size_t k = 0; k < r->n_rules; k++) {
        for (size_t d = 0; d < r->rules[k].n_destinations; d++) {
            const char *svc = r->rules[k].destinations[d].service;
            if (xc_find_service(c, svc) == NULL)
                return mesh_err_set(c->err, MESH_EINVAL,
                                    "xds compile (proxyless) for %s: route %s (%s) rules[%zu] "
                                    "refers to service \"%s\", which is not defined; add it "
                                    "under services: or fix the name",
                                    c->spiffe_id, r->name ? r->name : "<unnamed>",
                                    r->source ? r->source : "config", k, svc ? svc : "");
        }
    }
    return MESH_OK;
}

/* Hosts claimed by routes (their hosts, or their name when they list none)
 * plus every HTTP service no route claims. Sorted case-insensitively; a host
 * claimed twice is an error naming both claimants. */
static host_ref *collect_hosts(xc_ctx *c, size_t *n_out)
{
    const mesh_config *cfg = c->cfg;
    size_t cap = cfg->n_services;
    for (size_t i = 0; i < cfg->n_routes; i++)
        cap += cfg->routes[i].n_hosts > 0 ? cfg->routes[i].n_hosts : 1;
    host_ref *v = xc_array(&c->arena, cap, sizeof *v);
    if (v == NULL)
        return xc_oom(c);
    size_t n = 0;
    /* Every claimed host, concrete or not, hides the service of the same name
     * (as in the sidecar's route table); only concrete ones become listeners. */
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const mesh_route *r = &cfg->routes[i];
        if (check_destinations(c, r) != MESH_OK)
            return NULL;
        const char *owner = route_owner(c, r);
        if (owner == NULL)
            return NULL;
        size_t nh = r->n_hosts > 0 ? r->n_hosts : 1;
        for (size_t k = 0; k < nh; k++) {
            const char *h = r->n_hosts > 0 ? r->hosts[k] : r->name;
            if (h == NULL || h[0] == '\0')
                continue;
            v[n++] = (host_ref){ .h = { .host = h, .route = r }, .owner = owner };
        }
    }
    size_t n_claimed = n;
    qsort(v, n_claimed, sizeof *v, cmp_host_ref);
    for (size_t i = 1; i < n_claimed; i++) {
        if (strcasecmp(v[i - 1].h.host, v[i].h.host) == 0) {
            mesh_err_set(c->err, MESH_EINVAL,
                         "xds compile (proxyless) for %s: host \"%s\" is claimed by both %s and "
                         "%s; each host may belong to one route only",
                         c->spiffe_id, v[i].h.host, v[i - 1].owner, v[i].owner);
            return NULL;
        }
    }
    for (size_t i = 0; i < cfg->n_services; i++) {
        const mesh_service *svc = &cfg->services[i];
        if (svc->protocol != MESH_PROTO_HTTP || svc->name == NULL)
            continue;
        host_ref key = { .h = { .host = svc->name }, .owner = "" };
        int claimed = 0;
        size_t lo = 0, hi = n_claimed;
        while (lo < hi && !claimed) {
            size_t mid = lo + (hi - lo) / 2;
            int r = strcasecmp(v[mid].h.host, key.h.host);
            if (r == 0)
                claimed = 1;
            else if (r < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (!claimed)
            v[n++] = (host_ref){ .h = { .host = svc->name, .svc = svc }, .owner = svc->name };
    }
    /* Drop the hosts a client cannot subscribe to, then sort everything. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (concrete(v[i].h.host))
            v[k++] = v[i];
    }
    qsort(v, k, sizeof *v, cmp_host_ref);
    *n_out = k;
    return v;
}

/* ---- which services the identity may call ------------------------------------------- */

static unsigned char *allowed_services(xc_ctx *c)
{
    const mesh_config *cfg = c->cfg;
    unsigned char *allowed = xc_array(&c->arena, cfg->n_services, 1);
    if (allowed == NULL)
        return xc_oom(c);
    for (size_t i = 0; i < cfg->n_authz; i++) {
        const mesh_authorization *a = &cfg->authz[i];
        const mesh_service *svc = xc_find_service(c, a->service);
        if (svc == NULL)
            continue;   /* the validator refuses these; nothing to allow */
        for (size_t j = 0; j < a->n_allow; j++) {
            if (a->allow[j] != NULL && strcmp(a->allow[j], c->spiffe_id) == 0)
                allowed[svc - cfg->services] = 1;
        }
    }
    return allowed;
}

/* ---- entry point ---------------------------------------------------------------------- */

static int compile_all(xc_ctx *c)
{
    int rc = xc_index(c);
    if (rc != MESH_OK)
        return rc;
    size_t n_hosts = 0;
    host_ref *hosts = collect_hosts(c, &n_hosts);
    if (hosts == NULL)
        return xc_status(c);
    unsigned char *allowed = allowed_services(c);
    if (allowed == NULL)
        return xc_status(c);
    for (size_t i = 0; i < n_hosts; i++) {
        int emitted = 0;
        if ((rc = xp_route_config(c, &hosts[i].h, &emitted)) != MESH_OK)
            return rc;
        if (emitted && (rc = api_listener(c, hosts[i].h.host)) != MESH_OK)
            return rc;
    }
    /* Every HTTP service is a possible destination (its own host or a route's),
     * and so is every subset a route names. */
    uint64_t *needed_sub = xc_array(&c->arena, c->cfg->n_services, sizeof *needed_sub);
    if (needed_sub == NULL)
        return xc_oom_status(c);
    if ((rc = xc_mark_route_subsets(c, needed_sub)) != MESH_OK)
        return rc;
    for (size_t i = 0; i < c->cfg->n_services; i++) {
        const mesh_service *svc = &c->cfg->services[i];
        if (svc->protocol != MESH_PROTO_HTTP)
            continue;
        if ((rc = xp_cluster(c, svc, NULL)) != MESH_OK ||
            (rc = xp_endpoints(c, svc, NULL, allowed[i])) != MESH_OK)
            return rc;
        for (size_t k = 0; k < svc->n_subsets && k < 64; k++) {
            if (!(needed_sub[i] & ((uint64_t)1 << k)))
                continue;
            if ((rc = xp_cluster(c, svc, &svc->subsets[k])) != MESH_OK ||
                (rc = xp_endpoints(c, svc, &svc->subsets[k], allowed[i])) != MESH_OK)
                return rc;
        }
    }
    return MESH_OK;
}

int xds_compile_proxyless(const mesh_config *cfg, const char *spiffe_id, xds_snapshot *out,
                          mesh_err *err)
{
    if (out == NULL)
        return mesh_err_set(err, MESH_EINVAL, "xds compile (proxyless): no output snapshot");
    memset(out, 0, sizeof *out);
    if (cfg == NULL || spiffe_id == NULL || spiffe_id[0] == '\0')
        return mesh_err_set(err, MESH_EINVAL,
                            "xds compile (proxyless): missing config or SPIFFE ID");
    size_t id_len = strlen(spiffe_id);
    if (id_len >= sizeof out->spiffe_id)
        return mesh_err_set(err, MESH_EINVAL,
                            "xds compile (proxyless): SPIFFE ID longer than %zu bytes",
                            sizeof out->spiffe_id - 1);
    memcpy(out->spiffe_id, spiffe_id, id_len + 1);

    mesh_err local;
    xc_ctx c = { .cfg = cfg, .spiffe_id = spiffe_id, .snap = out, .err = err ? err : &local };
    mesh_err_clear(c.err);
    int rc = compile_all(&c);
    xc_arena_free(&c.arena);
    if (rc != MESH_OK) {
        /* Never half a config: the caller keeps serving the last good one. */
        xds_snapshot_free(out);
        memset(out, 0, sizeof *out);
        return rc;
    }
    xds_snapshot_finish(out);
    return MESH_OK;
}
