/* config/config_store.c — the mesh config in the store: apply, delete, load.
 *
 * apply = read what is stored, upsert the operator's resources over it by
 * kind+name, validate the merged whole, write only the resources whose
 * canonical YAML changed. All of it runs inside one BEGIN IMMEDIATE
 * transaction, so two concurrent `meshctl apply` runs cannot validate against
 * a state the other is about to change, and a failure leaves the store as it
 * was. */
#include "config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* Stored rows as a mesh_config, plus the rows themselves (bodies for the
 * "did it change" comparison). */
typedef struct stored {
    mesh_config cfg;
    store_resource *rows;
    size_t n_rows;
} stored;

static void stored_free(stored *s)
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

static size_t *kind_count_ptr(mesh_config *cfg, enum config_kind k)
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

static int alloc_kinds(mesh_config *cfg, const size_t n[CONFIG_KIND_COUNT], mesh_err *err)
{
    cfg->services = calloc(n[0] ? n[0] : 1, sizeof *cfg->services);
    cfg->workloads = calloc(n[1] ? n[1] : 1, sizeof *cfg->workloads);
    cfg->routes = calloc(n[2] ? n[2] : 1, sizeof *cfg->routes);
    cfg->authz = calloc(n[3] ? n[3] : 1, sizeof *cfg->authz);
    if (!cfg->services || !cfg->workloads || !cfg->routes || !cfg->authz)
        return mesh_err_set(err, MESH_ENOMEM, "loading the mesh config: out of memory");
    return MESH_OK;
}

static int load_stored(mesh_store *st, stored *out, mesh_err *err)
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
        stored_free(out);
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
    if ((rc = alloc_kinds(&out->cfg, want, err)) != MESH_OK)
        goto out;
    for (size_t i = 0; i < out->n_rows; i++) {
        const store_resource *r = &out->rows[i];
        enum config_kind k = kinds[i];
        size_t *cnt = kind_count_ptr(&out->cfg, k);
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
        stored_free(out);
    return rc;
}

int mesh_config_load_store(mesh_store *st, mesh_config *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    stored s;
    int rc = load_stored(st, &s, err);
    if (rc != MESH_OK)
        return rc;
    *out = s.cfg;
    store_resource_free_list(s.rows, s.n_rows);
    return MESH_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names of kind k in `in`, sorted, for "is this stored resource replaced?". */
static const char **sorted_names(const mesh_config *in, enum config_kind k, size_t *n_out)
{
    size_t n = config_kind_count(k, in);
    const char **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (config_resource_name(k, in, i))
            v[m++] = config_resource_name(k, in, i);
    qsort(v, m, sizeof *v, cmp_str);
    *n_out = m;
    return v;
}

static void copy_resource(mesh_config *dst, enum config_kind k, size_t di, const mesh_config *src,
                          size_t si)
{
    /* shallow: the merged view borrows the strings of `in` and of the stored config */
    switch (k) {
    case CONFIG_KIND_SERVICE: dst->services[di] = src->services[si]; break;
    case CONFIG_KIND_WORKLOAD: dst->workloads[di] = src->workloads[si]; break;
    case CONFIG_KIND_ROUTE: dst->routes[di] = src->routes[si]; break;
    case CONFIG_KIND_AUTHZ: dst->authz[di] = src->authz[si]; break;
    default: break;
    }
}

static void merged_free(mesh_config *m)
{
    free(m->services);
    free(m->workloads);
    free(m->routes);
    free(m->authz);
    memset(m, 0, sizeof *m);
}

/* merged = every resource of `in` (first, in order, so error paths such as
 * "routes[2]" match the operator's file) + stored resources `in` does not replace. */
static int merge(const mesh_config *in, const mesh_config *st_cfg, mesh_config *merged,
                 mesh_err *err)
{
    memset(merged, 0, sizeof *merged);
    size_t cap[CONFIG_KIND_COUNT];
    for (int k = 0; k < CONFIG_KIND_COUNT; k++)
        cap[k] = config_kind_count((enum config_kind)k, in) +
                 config_kind_count((enum config_kind)k, st_cfg);
    if (alloc_kinds(merged, cap, err) != MESH_OK) {
        merged_free(merged);
        return MESH_ENOMEM;
    }
    for (int ki = 0; ki < CONFIG_KIND_COUNT; ki++) {
        enum config_kind k = (enum config_kind)ki;
        size_t *cnt = kind_count_ptr(merged, k);
        size_t n_in = config_kind_count(k, in);
        for (size_t i = 0; i < n_in; i++)
            copy_resource(merged, k, (*cnt)++, in, i);
        size_t n_names;
        const char **names = sorted_names(in, k, &n_names);
        if (!names) {
            merged_free(merged);
            return mesh_err_set(err, MESH_ENOMEM, "merging the mesh config: out of memory");
        }
        for (size_t i = 0; i < config_kind_count(k, st_cfg); i++) {
            const char *name = config_resource_name(k, st_cfg, i);
            if (!bsearch(&name, names, n_names, sizeof *names, cmp_str))
                copy_resource(merged, k, (*cnt)++, st_cfg, i);
        }
        free(names);
    }
    return MESH_OK;
}

static const store_resource *find_row(const stored *s, const char *kind, const char *name)
{
    /* binary search over the rows, sorted by (kind, name) in apply_tx */
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

static int cmp_row(const void *a, const void *b)
{
    const store_resource *x = a, *y = b;
    int c = strcmp(x->kind, y->kind);
    return c ? c : strcmp(x->name, y->name);
}

/* The canonical body of resource i must read back as the same resource, or
 * meshd could not load what we are about to store. */
static int check_roundtrip(enum config_kind k, const mesh_config *in, size_t i, const char *body,
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

static int apply_tx(mesh_store *st, const mesh_config *in, mesh_config_check_fn check,
                    void *check_ctx, int *changed_out, mesh_err *err)
{
    char *td = NULL;
    mesh_err e;
    mesh_err_clear(&e);
    int rc = store_setting_get(st, "trust_domain", &td, &e);
    if (rc == MESH_ENOTFOUND) {
        td = NULL;
    } else if (rc != MESH_OK) {
        return mesh_err_set(err, rc, "reading the trust domain: %s", e.msg);
    }
    stored s;
    if ((rc = load_stored(st, &s, err)) != MESH_OK) {
        free(td);
        return rc;
    }
    if (s.n_rows > 1)
        qsort(s.rows, s.n_rows, sizeof *s.rows, cmp_row);   /* for find_row */
    mesh_config merged;
    if ((rc = merge(in, &s.cfg, &merged, err)) != MESH_OK)
        goto out;
    size_t n_input[CONFIG_KIND_COUNT];
    for (int k = 0; k < CONFIG_KIND_COUNT; k++)
        n_input[k] = config_kind_count((enum config_kind)k, in);
    rc = config_validate_ex(&merged, td, n_input, err);
    if (rc == MESH_OK && check)
        rc = check(&merged, check_ctx, err);
    merged_free(&merged);
    if (rc != MESH_OK)
        goto out;

    int changed = 0;
    for (int ki = 0; ki < CONFIG_KIND_COUNT && rc == MESH_OK; ki++) {
        enum config_kind k = (enum config_kind)ki;
        for (size_t i = 0; i < config_kind_count(k, in) && rc == MESH_OK; i++) {
            const char *name = config_resource_name(k, in, i);
            char *body = config_resource_to_yaml(k, in, i);
            if (!body) {
                rc = mesh_err_set(err, MESH_ENOMEM, "%s \"%s\": could not write its YAML",
                                  config_kind_name(k), name);
                break;
            }
            const store_resource *row = find_row(&s, config_kind_name(k), name);
            if (!row || !row->body || strcmp(row->body, body) != 0) {
                rc = check_roundtrip(k, in, i, body, err);
                const char *src = config_resource_source(k, in, i);
                int one = 0;
                if (rc == MESH_OK)
                    rc = store_resource_put(st, config_kind_name(k), name, body,
                                            src ? src : "api", &one, err);
                changed += one;
            }
            free(body);
        }
    }
    if (rc == MESH_OK)
        *changed_out = changed;
out:
    stored_free(&s);
    free(td);
    return rc;
}

static int apply_common(mesh_store *st, const mesh_config *in, mesh_config_check_fn check,
                        void *check_ctx, int *changed_out, int dry_run, mesh_err *err)
{
    int dummy;
    if (!changed_out)
        changed_out = &dummy;
    *changed_out = 0;
    if (!st || !in)
        return mesh_err_set(err, MESH_EINVAL, "apply: no store or no config");
    if (in->n_services + in->n_workloads + in->n_routes + in->n_authz == 0)
        return MESH_OK;   /* an empty file applies nothing, and touches nothing */
    int rc = store_begin(st, err);
    if (rc != MESH_OK)
        return rc;
    int changed = 0;
    rc = apply_tx(st, in, check, check_ctx, &changed, err);
    if (rc != MESH_OK || dry_run) {
        store_rollback(st);
        if (rc == MESH_OK)
            *changed_out = changed;
        return rc;
    }
    rc = store_commit(st, err);
    if (rc == MESH_OK)
        *changed_out = changed;
    return rc;
}

int mesh_config_apply(mesh_store *st, const mesh_config *in, int *changed_out, mesh_err *err)
{
    return apply_common(st, in, NULL, NULL, changed_out, 0, err);
}

int mesh_config_apply_dry_run(mesh_store *st, const mesh_config *in, int *changed_out,
                              mesh_err *err)
{
    return apply_common(st, in, NULL, NULL, changed_out, 1, err);
}

int mesh_config_apply_checked(mesh_store *st, const mesh_config *in, mesh_config_check_fn check,
                              void *check_ctx, int dry_run, int *changed_out, mesh_err *err)
{
    return apply_common(st, in, check, check_ctx, changed_out, dry_run, err);
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
    stored s;
    int rc = load_stored(st, &s, err);
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
    stored_free(&s);
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
