/* config/config_store.c — the mesh config in the store: load, delete, and the
 * pieces apply (config_apply.c) shares: the stored rows read back as a
 * mesh_config, lookups of a row by kind and name, the round-trip check of a
 * canonical body. */
#include "config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

void config_stored_free(config_stored *s)
{
    mesh_config_free(&s->cfg);
    store_resource_free_list(s->rows, s->n_rows);
    memset(s, 0, sizeof *s);
}

static void *kind_slot(mesh_config *cfg, enum config_kind k, size_t i)
{
    switch (k) {
    case CONFIG_KIND_SERVICE: return &cfg->services[i];
    case CONFIG_KIND_WORKLOAD: return &cfg->workloads[i];
    case CONFIG_KIND_ROUTE: return &cfg->routes[i];
    case CONFIG_KIND_AUTHZ: return &cfg->authz[i];
    default: return NULL;
    }
}

size_t *config_kind_count_ptr(mesh_config *cfg, enum config_kind k)
{
    switch (k) {
    case CONFIG_KIND_SERVICE: return &cfg->n_services;
    case CONFIG_KIND_WORKLOAD: return &cfg->n_workloads;
    case CONFIG_KIND_ROUTE: return &cfg->n_routes;
    default: return &cfg->n_authz;
    }
}

static char **kind_source_ptr(mesh_config *cfg, enum config_kind k, size_t i)
{
    switch (k) {
    case CONFIG_KIND_SERVICE: return &cfg->services[i].source;
    case CONFIG_KIND_WORKLOAD: return &cfg->workloads[i].source;
    case CONFIG_KIND_ROUTE: return &cfg->routes[i].source;
    default: return &cfg->authz[i].source;
    }
}

int config_alloc_kinds(mesh_config *cfg, const size_t n[CONFIG_KIND_COUNT], mesh_err *err)
{
    cfg->services = calloc(n[0] ? n[0] : 1, sizeof *cfg->services);
    cfg->workloads = calloc(n[1] ? n[1] : 1, sizeof *cfg->workloads);
    cfg->routes = calloc(n[2] ? n[2] : 1, sizeof *cfg->routes);
    cfg->authz = calloc(n[3] ? n[3] : 1, sizeof *cfg->authz);
    if (!cfg->services || !cfg->workloads || !cfg->routes || !cfg->authz)
        return mesh_err_set(err, MESH_ENOMEM, "loading the mesh config: out of memory");
    return MESH_OK;
}

int config_load_stored(mesh_store *st, config_stored *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = store_resource_list(st, NULL, &out->rows, &out->n_rows, err);
    if (rc != MESH_OK) {
        mesh_err_prefix(err, "loading the mesh config");
        return rc;
    }
    size_t want[CONFIG_KIND_COUNT] = {0};
    enum config_kind *kinds = calloc(out->n_rows ? out->n_rows : 1, sizeof *kinds);
    if (!kinds) {
        config_stored_free(out);
        return mesh_err_set(err, MESH_ENOMEM, "loading the mesh config: out of memory");
    }
    for (size_t i = 0; i < out->n_rows; i++) {
        const store_resource *r = &out->rows[i];
        if (config_kind_parse(r->kind, &kinds[i]) != 0) {
            rc = mesh_err_set(err, MESH_ECORRUPT,
                              "store:%s/%s: unknown resource kind \"%s\" (written by a newer "
                              "meshctl?)",
                              r->kind, r->name, r->kind);
            goto out;
        }
        want[kinds[i]]++;
    }
    if ((rc = config_alloc_kinds(&out->cfg, want, err)) != MESH_OK)
        goto out;
    for (size_t i = 0; i < out->n_rows; i++) {
        const store_resource *r = &out->rows[i];
        enum config_kind k = kinds[i];
        size_t *cnt = config_kind_count_ptr(&out->cfg, k);
        char fname[320];
        snprintf(fname, sizeof fname, "store:%s/%s", r->kind, r->name);
        void *slot = kind_slot(&out->cfg, k, *cnt);
        rc = config_parse_resource(fname, r->body, r->body ? strlen(r->body) : 0, k, slot, err);
        if (rc != MESH_OK) {
            /* a stored body that does not parse was not written by us */
            rc = rc == MESH_ENOMEM ? MESH_ENOMEM : MESH_ECORRUPT;
            if (err)
                err->code = rc;
            goto out;
        }
        (*cnt)++;
        const char *name = config_resource_name(k, &out->cfg, *cnt - 1);
        if (!name || strcmp(name, r->name) != 0) {
            rc = mesh_err_set(err, MESH_ECORRUPT,
                              "%s: the body names \"%s\", not \"%s\"; the row is damaged",
                              fname, name ? name : "", r->name);
            goto out;
        }
        /* where the operator last applied it from, not the row's own lines */
        if (r->source && r->source[0]) {
            char **src = kind_source_ptr(&out->cfg, k, *cnt - 1);
            char *dup = strdup(r->source);
            if (!dup) {
                rc = mesh_err_set(err, MESH_ENOMEM, "loading the mesh config: out of memory");
                goto out;
            }
            free(*src);
            *src = dup;
        }
    }
out:
    free(kinds);
    if (rc != MESH_OK)
        config_stored_free(out);
    return rc;
}

int mesh_config_load_store(mesh_store *st, mesh_config *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    config_stored s;
    int rc = config_load_stored(st, &s, err);
    if (rc != MESH_OK)
        return rc;
    *out = s.cfg;
    store_resource_free_list(s.rows, s.n_rows);
    return MESH_OK;
}

const store_resource *config_stored_row(const config_stored *s, const char *kind,
                                        const char *name)
{
    /* binary search: store_resource_list returns the rows ordered by (kind, name) */
    size_t lo = 0, hi = s->n_rows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->rows[mid].kind, kind);
        if (c == 0)
            c = strcmp(s->rows[mid].name, name);
        if (c == 0)
            return &s->rows[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int config_check_roundtrip(enum config_kind k, const mesh_config *in, size_t i, const char *body,
                           mesh_err *err)
{
    union {
        mesh_service s;
        mesh_workload w;
        mesh_route r;
        mesh_authorization a;
    } back;
    memset(&back, 0, sizeof back);
    mesh_err e;
    mesh_err_clear(&e);
    int rc = config_parse_resource("canonical", body, strlen(body), k, &back, &e);
    if (rc != MESH_OK)
        return mesh_err_set(err, MESH_EINTERNAL,
                            "%s \"%s\": its canonical YAML does not parse back (%s); please "
                            "report this",
                            config_kind_name(k), config_resource_name(k, in, i), e.msg);
    int same = 0;
    switch (k) {
    case CONFIG_KIND_SERVICE:
        same = config_service_equal(&back.s, &in->services[i]);
        config_service_free(&back.s);
        break;
    case CONFIG_KIND_WORKLOAD:
        same = config_workload_equal(&back.w, &in->workloads[i]);
        config_workload_free(&back.w);
        break;
    case CONFIG_KIND_ROUTE:
        same = config_route_equal(&back.r, &in->routes[i]);
        config_route_free(&back.r);
        break;
    case CONFIG_KIND_AUTHZ:
        same = config_authorization_equal(&back.a, &in->authz[i]);
        config_authorization_free(&back.a);
        break;
    default: break;
    }
    if (!same)
        return mesh_err_set(err, MESH_EINTERNAL,
                            "%s \"%s\": its canonical YAML reads back differently; please report "
                            "this",
                            config_kind_name(k), config_resource_name(k, in, i));
    return MESH_OK;
}

/* Appends "what (where)" to a "still referenced by" list, at most max items. */
static void add_ref(char *buf, size_t n, size_t *count, const char *fmt_kind, const char *name,
                    const char *field)
{
    const size_t max = 5;
    (*count)++;
    if (*count > max)
        return;
    size_t used = strlen(buf);
    snprintf(buf + used, n - used, "%s%s \"%s\" (%s)", *count > 1 ? ", " : "", fmt_kind, name,
             field);
}

static int service_refs(const mesh_config *cfg, const char *svc, char *buf, size_t n,
                        size_t *count)
{
    char field[96];
    for (size_t i = 0; i < cfg->n_workloads; i++) {
        const mesh_workload *w = &cfg->workloads[i];
        if (strcmp(w->service, svc) == 0)
            add_ref(buf, n, count, "workload", w->name, "service");
        for (size_t t = 0; t < w->n_tcp_outbound; t++) {
            if (strcmp(w->tcp_outbound[t].service, svc) == 0) {
                snprintf(field, sizeof field, "tcp_outbound[%zu]", t);
                add_ref(buf, n, count, "workload", w->name, field);
            }
        }
    }
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const mesh_route *r = &cfg->routes[i];
        for (size_t ri = 0; ri < r->n_rules; ri++) {
            for (size_t d = 0; d < r->rules[ri].n_destinations; d++) {
                if (strcmp(r->rules[ri].destinations[d].service, svc) == 0) {
                    snprintf(field, sizeof field, "rules[%zu].destinations[%zu]", ri, d);
                    add_ref(buf, n, count, "route", r->name, field);
                }
            }
        }
    }
    for (size_t i = 0; i < cfg->n_authz; i++)
        if (strcmp(cfg->authz[i].service, svc) == 0)
            add_ref(buf, n, count, "authorization", cfg->authz[i].service, "service");
    return *count > 0;
}

static int delete_tx(mesh_store *st, enum config_kind k, const char *name, mesh_err *err)
{
    config_stored s;
    int rc = config_load_stored(st, &s, err);
    if (rc != MESH_OK)
        return rc;
    int found = 0;
    for (size_t i = 0; i < config_kind_count(k, &s.cfg); i++)
        if (strcmp(config_resource_name(k, &s.cfg, i), name) == 0)
            found = 1;
    if (!found) {
        rc = mesh_err_set(err, MESH_ENOTFOUND, "no %s named \"%s\" in the store",
                          config_kind_name(k), name);
        goto out;
    }
    if (k == CONFIG_KIND_SERVICE) {
        char refs[360] = "";
        size_t count = 0;
        if (service_refs(&s.cfg, name, refs, sizeof refs, &count)) {
            rc = mesh_err_set(err, MESH_EINVAL,
                              "cannot delete service \"%s\": still referenced by %s%s; delete or "
                              "change those first",
                              name, refs, count > 5 ? " and more" : "");
            goto out;
        }
    }
    rc = store_resource_delete(st, config_kind_name(k), name, err);
out:
    config_stored_free(&s);
    return rc;
}

int mesh_config_delete(mesh_store *st, const char *kind, const char *name, mesh_err *err)
{
    enum config_kind k;
    if (!st)
        return mesh_err_set(err, MESH_EINVAL, "delete: no store");
    if (config_kind_parse(kind, &k) != 0)
        return mesh_err_set(err, MESH_EINVAL,
                            "unknown kind \"%s\"; expected service, workload, route or "
                            "authorization",
                            kind ? kind : "");
    if (!name || !*name)
        return mesh_err_set(err, MESH_EINVAL, "delete %s: a name is required", kind);
    int rc = store_begin(st, err);
    if (rc != MESH_OK)
        return rc;
    rc = delete_tx(st, k, name, err);
    if (rc != MESH_OK) {
        store_rollback(st);
        return rc;
    }
    return store_commit(st, err);
}
