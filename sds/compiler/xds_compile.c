/* sds/compiler/xds_compile.c — mesh config -> the Envoy v3 resources of one sidecar
 * (xds_compile.h; resource layout in docs/xds.md).
 *
 * This file decides WHAT a node gets; the other xds_compile_*.c files build
 * each resource. A node is one enrolled instance (xds_compile_workload: the
 * workload of that name) or, for an identity enrolled as a whole, a SPIFFE ID
 * (every workload carrying it). Each contributes its inbound listener and local
 * cluster, and its egress listeners pull in the outbound clusters and endpoints
 * they can reach: whole services, and the subsets route destinations name.
 * Nothing else goes in, so an edit to a service this node cannot reach leaves
 * its versions unchanged and meshd pushes nothing to it. */
#include "sds/compiler/xds_compile.h"

#include <stdlib.h>
#include <string.h>

#include "sds/compiler/xds_compile_internal.h"
#include "sds/compiler/xds_compile_workload.h"

void *xc_oom(xc_ctx *c)
{
    mesh_err_set(c->err, MESH_ENOMEM, "xds compile for %s: out of memory", c->spiffe_id);
    return NULL;
}

int xc_oom_status(xc_ctx *c)
{
    xc_oom(c);
    return MESH_ENOMEM;
}

int xc_status(const xc_ctx *c)
{
    return c->err->code < 0 ? c->err->code : MESH_EINTERNAL;
}

static const char *nz(const char *s)
{
    return s != NULL ? s : "";
}

static int cmp_svc(const void *a, const void *b)
{
    const mesh_service *x = *(const mesh_service *const *)a, *y = *(const mesh_service *const *)b;
    int c = strcmp(nz(x->name), nz(y->name));
    /* Ties (a config the validator would refuse) resolve to the first in config order. */
    return c != 0 ? c : (x < y ? -1 : x > y);
}

static int cmp_wl(const void *a, const void *b)
{
    const mesh_workload *x = *(const mesh_workload *const *)a, *y = *(const mesh_workload *const *)b;
    int c = strcmp(nz(x->service), nz(y->service));
    if (c == 0)
        c = strcmp(nz(x->name), nz(y->name));
    if (c == 0)
        c = strcmp(nz(x->inbound), nz(y->inbound));
    return c != 0 ? c : (x < y ? -1 : x > y);
}

int xc_index(xc_ctx *c)
{
    const mesh_config *cfg = c->cfg;
    c->svc_by_name = xc_array(&c->arena, cfg->n_services, sizeof *c->svc_by_name);
    c->wl_by_svc = xc_array(&c->arena, cfg->n_workloads, sizeof *c->wl_by_svc);
    if (c->svc_by_name == NULL || c->wl_by_svc == NULL)
        return xc_oom_status(c);
    for (size_t i = 0; i < cfg->n_services; i++)
        c->svc_by_name[i] = &cfg->services[i];
    qsort(c->svc_by_name, cfg->n_services, sizeof *c->svc_by_name, cmp_svc);
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_workloads; i++) {
        if (cfg->workloads[i].service != NULL)
            c->wl_by_svc[n++] = &cfg->workloads[i];
    }
    qsort(c->wl_by_svc, n, sizeof *c->wl_by_svc, cmp_wl);
    c->n_wl_by_svc = n;
    return MESH_OK;
}

const mesh_service *xc_find_service(const xc_ctx *c, const char *name)
{
    if (name == NULL)
        return NULL;
    size_t lo = 0, hi = c->cfg->n_services;
    while (lo < hi) {   /* first entry >= name */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(nz(c->svc_by_name[mid]->name), name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->cfg->n_services && strcmp(nz(c->svc_by_name[lo]->name), name) == 0)
        return c->svc_by_name[lo];
    return NULL;
}

void xc_service_workloads(const xc_ctx *c, const char *svc, const mesh_workload *const **first,
                          size_t *n)
{
    size_t lo = 0, hi = c->n_wl_by_svc;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(c->wl_by_svc[mid]->service, svc) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < c->n_wl_by_svc && strcmp(c->wl_by_svc[end]->service, svc) == 0)
        end++;
    *first = c->wl_by_svc + lo;
    *n = end - lo;
}

const mesh_workload **xc_subset_workloads(xc_ctx *c, const mesh_service *svc,
                                          const mesh_subset *sub, size_t *n_out)
{
    const mesh_workload *const *wl;
    size_t n;
    xc_service_workloads(c, svc->name, &wl, &n);
    const mesh_workload **out = xc_array(&c->arena, n > 0 ? n : 1, sizeof *out);
    if (out == NULL)
        return xc_oom(c);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (sub == NULL || mesh_subset_selects(sub, wl[i]))
            out[k++] = wl[i];
    }
    *n_out = k;
    return out;
}

char *xc_outbound_name(xc_ctx *c, const char *svc, const char *subset)
{
    char *s = subset != NULL ? xc_printf(&c->arena, "outbound|%s|%s", svc, subset)
                             : xc_printf(&c->arena, "outbound|%s", svc);
    return s != NULL ? s : xc_oom(c);
}

const char *xc_where_workload(xc_ctx *c, const mesh_workload *w)
{
    const char *s = xc_printf(&c->arena, "workload %s (%s)", w->name ? w->name : "<unnamed>",
                              w->source ? w->source : "config");
    return s ? s : "workload";
}

int xc_emit(xc_ctx *c, enum xds_type t, const char *name, const ProtobufCMessage *m,
            const char *what)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        return xc_oom_status(c);
    protobuf_c_message_pack(m, buf);

    const xds_resource *prev = xds_snapshot_find(c->snap, t, name);
    if (prev != NULL) {
        int same = prev->len == len && memcmp(prev->data, buf, len) == 0;
        free(buf);
        if (same)
            return MESH_OK;
        return mesh_err_set(c->err, MESH_EINVAL,
                            "xds compile for %s: %s needs resource \"%s\" (%s), which another "
                            "workload with the same SPIFFE ID defines differently; replicas "
                            "sharing an identity are enrolled one by one ('meshctl workload add "
                            "NAME --id <spiffe id>'), so that each is served its own workload",
                            c->spiffe_id, what, name, xds_type_url(t));
    }
    return xds_snapshot_add(c->snap, t, name, buf, len, c->err);
}

static int unknown_service(xc_ctx *c, const char *who, const char *svc)
{
    return mesh_err_set(c->err, MESH_EINVAL,
                        "xds compile for %s: %s refers to service \"%s\", which is not defined; "
                        "add it under services: or fix the name",
                        c->spiffe_id, who, svc ? svc : "");
}

/* Marks every service the HTTP egress listener can reach: all HTTP services
 * (each has a default virtual host) and every route destination. */
static int mark_http_reachable(xc_ctx *c, unsigned char *needed)
{
    const mesh_config *cfg = c->cfg;
    for (size_t i = 0; i < cfg->n_services; i++) {
        if (mesh_protocol_is_http(cfg->services[i].protocol))
            needed[i] = 1;
    }
    for (size_t r = 0; r < cfg->n_routes; r++) {
        const mesh_route *rt = &cfg->routes[r];
        for (size_t k = 0; k < rt->n_rules; k++) {
            for (size_t d = 0; d < rt->rules[k].n_destinations; d++) {
                const char *name = rt->rules[k].destinations[d].service;
                const mesh_service *svc = xc_find_service(c, name);
                if (svc == NULL) {
                    const char *who = xc_printf(&c->arena, "route %s (%s) rules[%zu]",
                                                rt->name ? rt->name : "<unnamed>",
                                                rt->source ? rt->source : "config", k);
                    return unknown_service(c, who ? who : "a route", name);
                }
                needed[svc - cfg->services] = 1;
            }
        }
    }
    return MESH_OK;
}

int xc_mark_route_subsets(xc_ctx *c, uint64_t *needed_sub)
{
    const mesh_config *cfg = c->cfg;
    for (size_t r = 0; r < cfg->n_routes; r++) {
        const mesh_route *rt = &cfg->routes[r];
        for (size_t k = 0; k < rt->n_rules; k++) {
            for (size_t d = 0; d < rt->rules[k].n_destinations; d++) {
                const mesh_destination *dst = &rt->rules[k].destinations[d];
                if (dst->subset == NULL)
                    continue;
                const mesh_service *svc = xc_find_service(c, dst->service);
                size_t idx = 0;
                while (svc != NULL && idx < svc->n_subsets &&
                       strcmp(nz(svc->subsets[idx].name), dst->subset) != 0)
                    idx++;
                if (svc == NULL || idx == svc->n_subsets || idx >= 64)
                    return mesh_err_set(c->err, MESH_EINVAL,
                                        "xds compile for %s: route %s (%s) rules[%zu] sends to "
                                        "subset \"%s\" of service \"%s\", which is not defined",
                                        c->spiffe_id, nz(rt->name), nz(rt->source), k,
                                        dst->subset, nz(dst->service));
                needed_sub[svc - cfg->services] |= (uint64_t)1 << idx;
            }
        }
    }
    return MESH_OK;
}

static int compile_workload(xc_ctx *c, const mesh_workload *w, unsigned char *needed,
                            int *http_egress)
{
    const mesh_service *svc = xc_find_service(c, w->service);
    if (svc == NULL)
        return unknown_service(c, xc_where_workload(c, w), w->service);
    int rc = xc_inbound_listener(c, w, svc);
    if (rc == MESH_OK)
        rc = xc_local_cluster(c, w, svc);
    if (rc == MESH_OK && w->outbound != NULL) {
        rc = xc_outbound_http_listener(c, w);
        *http_egress = 1;
    }
    for (size_t i = 0; rc == MESH_OK && i < w->n_tcp_outbound; i++) {
        const mesh_tcp_outbound *o = &w->tcp_outbound[i];
        const mesh_service *dst = xc_find_service(c, o->service);
        if (dst == NULL) {
            const char *who = xc_printf(&c->arena, "%s tcp_outbound[%zu]",
                                        xc_where_workload(c, w), i);
            return unknown_service(c, who ? who : "tcp_outbound", o->service);
        }
        needed[dst - c->cfg->services] = 1;
        rc = xc_outbound_tcp_listener(c, w, o);
    }
    return rc;
}

static int selected(const xc_ctx *c, const mesh_workload *w, const char *only)
{
    if (w->spiffe_id == NULL || strcmp(w->spiffe_id, c->spiffe_id) != 0)
        return 0;
    return only == NULL || (w->name != NULL && strcmp(w->name, only) == 0);
}

/* Compiles the workloads of the node's identity (only the one named `only`, if
 * not NULL), then what their egress listeners reach. */
static int compile_all(xc_ctx *c, const char *only, unsigned char *needed, uint64_t *needed_sub)
{
    const mesh_config *cfg = c->cfg;
    int http_egress = 0;
    size_t n_selected = 0;
    for (size_t i = 0; i < cfg->n_workloads; i++) {
        const mesh_workload *w = &cfg->workloads[i];
        if (!selected(c, w, only))
            continue;
        n_selected++;
        int rc = compile_workload(c, w, needed, &http_egress);
        if (rc != MESH_OK)
            return rc;
    }
    if (only != NULL && n_selected == 0)
        return mesh_err_set(c->err, MESH_ENOTFOUND,
                            "xds compile: no workload named \"%s\" has SPIFFE ID %s", only,
                            c->spiffe_id);
    if (http_egress) {
        int rc = mark_http_reachable(c, needed);
        if (rc == MESH_OK)
            rc = xc_mark_route_subsets(c, needed_sub);
        if (rc == MESH_OK)
            rc = xc_outbound_routes(c);
        if (rc != MESH_OK)
            return rc;
    }
    for (size_t i = 0; i < cfg->n_services; i++) {
        const mesh_service *svc = &cfg->services[i];
        int rc = MESH_OK;
        if (needed[i]) {
            rc = xc_outbound_cluster(c, svc, NULL);
            if (rc == MESH_OK)
                rc = xc_endpoints(c, svc, NULL);
        }
        for (size_t k = 0; rc == MESH_OK && k < svc->n_subsets && k < 64; k++) {
            if (!(needed_sub[i] & ((uint64_t)1 << k)))
                continue;
            rc = xc_outbound_cluster(c, svc, &svc->subsets[k]);
            if (rc == MESH_OK)
                rc = xc_endpoints(c, svc, &svc->subsets[k]);
        }
        if (rc != MESH_OK)
            return rc;
    }
    return MESH_OK;
}

static int compile(const mesh_config *cfg, const xds_health *health, const char *spiffe_id,
                   const char *only, xds_snapshot *out, mesh_err *err)
{
    if (out == NULL)
        return mesh_err_set(err, MESH_EINVAL, "xds compile: no output snapshot");
    memset(out, 0, sizeof *out);
    if (cfg == NULL || spiffe_id == NULL || spiffe_id[0] == '\0')
        return mesh_err_set(err, MESH_EINVAL, "xds compile: missing config or SPIFFE ID");
    if (strlen(spiffe_id) >= sizeof out->spiffe_id)
        return mesh_err_set(err, MESH_EINVAL, "xds compile: SPIFFE ID longer than %zu bytes",
                            sizeof out->spiffe_id - 1);
    memcpy(out->spiffe_id, spiffe_id, strlen(spiffe_id) + 1);

    mesh_err local;
    xc_ctx c = { .cfg = cfg, .spiffe_id = spiffe_id, .snap = out, .err = err ? err : &local,
                 .health = health };
    mesh_err_clear(c.err);
    unsigned char *needed = calloc(cfg->n_services > 0 ? cfg->n_services : 1, 1);
    uint64_t *needed_sub = calloc(cfg->n_services > 0 ? cfg->n_services : 1, sizeof *needed_sub);
    if (needed == NULL || needed_sub == NULL) {
        free(needed);
        free(needed_sub);
        return xc_oom_status(&c);
    }
    int rc = xc_index(&c);
    if (rc == MESH_OK)
        rc = compile_all(&c, only, needed, needed_sub);
    free(needed);
    free(needed_sub);
    xc_arena_free(&c.arena);
    if (rc != MESH_OK) {
        /* Never hand out half a config: the caller keeps serving the last good one. */
        xds_snapshot_free(out);
        memset(out, 0, sizeof *out);
        return rc;
    }
    xds_snapshot_finish(out);
    return MESH_OK;
}

int xds_compile_node(const mesh_config *cfg, const char *spiffe_id, xds_snapshot *out,
                     mesh_err *err)
{
    return compile(cfg, NULL, spiffe_id, NULL, out, err);
}

int xds_compile_node_health(const mesh_config *cfg, const xds_health *health,
                            const char *spiffe_id, xds_snapshot *out, mesh_err *err)
{
    return compile(cfg, health, spiffe_id, NULL, out, err);
}

int xds_compile_workload(const mesh_config *cfg, const char *spiffe_id,
                         const char *workload_name, xds_snapshot *out, mesh_err *err)
{
    return xds_compile_workload_health(cfg, NULL, spiffe_id, workload_name, out, err);
}

int xds_compile_workload_health(const mesh_config *cfg, const xds_health *health,
                                const char *spiffe_id, const char *workload_name,
                                xds_snapshot *out, mesh_err *err)
{
    if (workload_name == NULL || workload_name[0] == '\0') {
        if (out != NULL)
            memset(out, 0, sizeof *out);
        return mesh_err_set(err, MESH_EINVAL, "xds compile: empty workload name");
    }
    return compile(cfg, health, spiffe_id, workload_name, out, err);
}
