/* config/config_apply.c — `meshctl apply`: the operator's file into the store, in one transaction.
 *
 * apply = read what is stored, upsert the file's resources over it by kind and
 * name, and with --prune drop the stored resources of the file's apply set
 * that the file no longer holds; validate the result as a whole; write only
 * the resources whose canonical YAML changed, delete the pruned ones. All of it
 * runs inside one BEGIN IMMEDIATE transaction, so two concurrent applies cannot
 * validate against a state the other is about to change, and a failure (or a
 * dry run) leaves the store as it was.
 *
 * Which resources a prune may remove: those whose row says its apply set
 * (`resources.apply_set`, written by every apply that carries one) is this
 * apply's. kubectl's --prune had to guess from labels and lost resources that
 * moved between files; keeping the owner in the row makes ownership exact: a
 * resource applied since from another file belongs to that file, one written
 * by meshctl before apply sets existed belongs to none, and neither is ever
 * pruned by this file. */
#include "config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

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

/* One stored resource this apply removes. */
typedef struct pruned {
    enum config_kind kind;
    size_t idx;                 /* in the stored config */
    const store_resource *row;
} pruned;

typedef struct apply_ctx {
    mesh_store *st;
    const mesh_config *in;
    const mesh_apply_opts *o;
    config_stored s;
    pruned *prune;
    size_t n_prune;
    unsigned char *is_pruned[CONFIG_KIND_COUNT];   /* per stored resource of each kind */
    mesh_apply_result *res;
    mesh_err *err;
} apply_ctx;

static int is_pruned(const apply_ctx *a, enum config_kind k, size_t i)
{
    return a->is_pruned[k] && a->is_pruned[k][i];
}

/* The stored resources of this apply set that the file no longer holds. */
static int find_pruned(apply_ctx *a)
{
    if (!a->o->prune)
        return MESH_OK;
    a->prune = calloc(a->s.n_rows ? a->s.n_rows : 1, sizeof *a->prune);
    if (!a->prune)
        return mesh_err_set(a->err, MESH_ENOMEM, "pruning: out of memory");
    for (int ki = 0; ki < CONFIG_KIND_COUNT; ki++) {
        enum config_kind k = (enum config_kind)ki;
        size_t n_stored = config_kind_count(k, &a->s.cfg), n_names;
        const char **names = sorted_names(a->in, k, &n_names);
        a->is_pruned[k] = calloc(n_stored ? n_stored : 1, 1);
        if (!names || !a->is_pruned[k]) {
            free(names);
            return mesh_err_set(a->err, MESH_ENOMEM, "pruning: out of memory");
        }
        for (size_t i = 0; i < n_stored; i++) {
            const char *name = config_resource_name(k, &a->s.cfg, i);
            const store_resource *row = config_stored_row(&a->s, config_kind_name(k), name);
            if (!row || !row->apply_set || strcmp(row->apply_set, a->o->apply_set) != 0)
                continue;
            if (!bsearch(&name, names, n_names, sizeof *names, cmp_str)) {
                a->prune[a->n_prune++] = (pruned){k, i, row};
                a->is_pruned[k][i] = 1;
            }
        }
        free(names);
    }
    return MESH_OK;
}

/* merged = every resource of `in` (first, in order, so error paths such as
 * "routes[2]" match the operator's file) + stored resources `in` does not
 * replace and this apply does not prune. */
static int merge(const apply_ctx *a, mesh_config *merged)
{
    memset(merged, 0, sizeof *merged);
    size_t cap[CONFIG_KIND_COUNT];
    for (int k = 0; k < CONFIG_KIND_COUNT; k++)
        cap[k] = config_kind_count((enum config_kind)k, a->in) +
                 config_kind_count((enum config_kind)k, &a->s.cfg);
    if (config_alloc_kinds(merged, cap, a->err) != MESH_OK) {
        merged_free(merged);
        return MESH_ENOMEM;
    }
    for (int ki = 0; ki < CONFIG_KIND_COUNT; ki++) {
        enum config_kind k = (enum config_kind)ki;
        size_t *cnt = config_kind_count_ptr(merged, k);
        size_t n_in = config_kind_count(k, a->in);
        for (size_t i = 0; i < n_in; i++)
            copy_resource(merged, k, (*cnt)++, a->in, i);
        size_t n_names;
        const char **names = sorted_names(a->in, k, &n_names);
        if (!names) {
            merged_free(merged);
            return mesh_err_set(a->err, MESH_ENOMEM, "merging the mesh config: out of memory");
        }
        for (size_t i = 0; i < config_kind_count(k, &a->s.cfg); i++) {
            const char *name = config_resource_name(k, &a->s.cfg, i);
            if (!bsearch(&name, names, n_names, sizeof *names, cmp_str) && !is_pruned(a, k, i))
                copy_resource(merged, k, (*cnt)++, &a->s.cfg, i);
        }
        free(names);
    }
    return MESH_OK;
}

/* A failed validation after pruning: say what the prune took away, since the
 * error names a stored resource that still needs it. */
static void explain_prune(const apply_ctx *a)
{
    if (a->n_prune == 0 || !a->err)
        return;
    char list[200] = "";
    size_t used = 0;
    for (size_t p = 0; p < a->n_prune && p < 4; p++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s/%s", p ? ", " : "",
                         config_kind_name(a->prune[p].kind), a->prune[p].row->name);
        if (w > 0 && (size_t)w < sizeof list - used)
            used += (size_t)w;
    }
    size_t len = strlen(a->err->msg);
    snprintf(a->err->msg + len, sizeof a->err->msg - len, " (--prune removes %s%s)", list,
             a->n_prune > 4 ? ", ..." : "");
}

static char *dup_or_null(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

static int add_change(apply_ctx *a, enum mesh_change_kind what, enum config_kind k,
                      const char *name, const char *source, const char *before, const char *after)
{
    mesh_apply_result *r = a->res;
    mesh_change *nv = realloc(r->changes, (r->n_changes + 1) * sizeof *nv);
    if (!nv)
        return mesh_err_set(a->err, MESH_ENOMEM, "apply: out of memory");
    r->changes = nv;
    mesh_change *c = &r->changes[r->n_changes];
    int oom = 0;
    *c = (mesh_change){.what = what,
                       .kind = dup_or_null(config_kind_name(k), &oom),
                       .name = dup_or_null(name, &oom),
                       .source = dup_or_null(source ? source : "", &oom),
                       .before = dup_or_null(before, &oom),
                       .after = dup_or_null(after, &oom)};
    r->n_changes++;
    if (oom)
        return mesh_err_set(a->err, MESH_ENOMEM, "apply: out of memory");
    return MESH_OK;
}

/* Writes the file's resources whose canonical YAML differs from the stored
 * one; for the others only the provenance (source line, apply set) moves. */
static int write_input(apply_ctx *a)
{
    int rc = MESH_OK;
    for (int ki = 0; ki < CONFIG_KIND_COUNT && rc == MESH_OK; ki++) {
        enum config_kind k = (enum config_kind)ki;
        for (size_t i = 0; i < config_kind_count(k, a->in) && rc == MESH_OK; i++) {
            const char *name = config_resource_name(k, a->in, i);
            const char *src = config_resource_source(k, a->in, i);
            char *body = config_resource_to_yaml(k, a->in, i);
            if (!body)
                return mesh_err_set(a->err, MESH_ENOMEM, "%s \"%s\": could not write its YAML",
                                    config_kind_name(k), name);
            const store_resource *row = config_stored_row(&a->s, config_kind_name(k), name);
            int same = row && row->body && strcmp(row->body, body) == 0;
            if (!same)
                rc = config_check_roundtrip(k, a->in, i, body, a->err);
            int changed = 0;
            if (rc == MESH_OK)
                rc = store_resource_put_from(a->st, config_kind_name(k), name, body,
                                             src ? src : "api", a->o->apply_set, &changed,
                                             a->err);
            if (rc == MESH_OK && changed)
                rc = add_change(a, row ? MESH_CHANGE_UPDATE : MESH_CHANGE_ADD, k, name, src,
                                row ? row->body : NULL, body);
            else if (rc == MESH_OK)
                a->res->unchanged++;
            free(body);
        }
    }
    return rc;
}

static int delete_pruned(apply_ctx *a)
{
    int rc = MESH_OK;
    for (size_t p = 0; p < a->n_prune && rc == MESH_OK; p++) {
        const store_resource *row = a->prune[p].row;
        rc = store_resource_delete(a->st, row->kind, row->name, a->err);
        if (rc == MESH_OK)
            rc = add_change(a, MESH_CHANGE_REMOVE, a->prune[p].kind, row->name, row->source,
                            row->body, NULL);
    }
    return rc;
}

static int apply_tx(apply_ctx *a)
{
    char *td = NULL;
    mesh_err e;
    mesh_err_clear(&e);
    int rc = store_setting_get(a->st, "trust_domain", &td, &e);
    if (rc == MESH_ENOTFOUND)
        td = NULL;
    else if (rc != MESH_OK)
        return mesh_err_set(a->err, rc, "reading the trust domain: %s", e.msg);
    if ((rc = config_load_stored(a->st, &a->s, a->err)) != MESH_OK) {
        free(td);
        return rc;
    }
    mesh_config merged;
    if ((rc = find_pruned(a)) == MESH_OK && (rc = merge(a, &merged)) == MESH_OK) {
        size_t n_input[CONFIG_KIND_COUNT];
        for (int k = 0; k < CONFIG_KIND_COUNT; k++)
            n_input[k] = config_kind_count((enum config_kind)k, a->in);
        rc = config_validate_ex(&merged, td, n_input, a->err);
        if (rc != MESH_OK)
            explain_prune(a);
        if (rc == MESH_OK && a->o->check)
            rc = a->o->check(&merged, a->o->check_ctx, a->err);
        if (rc == MESH_OK)
            rc = config_warn_ex(&merged, n_input, &a->res->warnings, a->err);
        merged_free(&merged);
    }
    if (rc == MESH_OK)
        rc = write_input(a);
    if (rc == MESH_OK)
        rc = delete_pruned(a);
    if (rc == MESH_OK)
        a->res->config_version = store_config_version(a->st);
    free(td);
    return rc;
}

int mesh_config_apply_ex(mesh_store *st, const mesh_config *in, const mesh_apply_opts *o,
                         mesh_apply_result *res, mesh_err *err)
{
    static const mesh_apply_opts defaults = {0};
    if (res)
        memset(res, 0, sizeof *res);
    if (!st || !in || !res)
        return mesh_err_set(err, MESH_EINVAL, "apply: no store, config or result");
    if (!o)
        o = &defaults;
    if (o->prune && (!o->apply_set || !o->apply_set[0]))
        return mesh_err_set(err, MESH_EINVAL,
                            "apply: --prune needs an apply set (which file's resources to prune)");
    size_t total = in->n_services + in->n_workloads + in->n_routes + in->n_authz;
    if (total == 0 && !o->prune) {
        /* an empty file applies nothing, and touches nothing */
        res->config_version = store_config_version(st);
        return MESH_OK;
    }
    apply_ctx a = {.st = st, .in = in, .o = o, .res = res, .err = err};
    int rc = store_begin(st, err);
    if (rc != MESH_OK)
        return rc;
    rc = apply_tx(&a);
    config_stored_free(&a.s);
    free(a.prune);
    for (int k = 0; k < CONFIG_KIND_COUNT; k++)
        free(a.is_pruned[k]);
    if (rc != MESH_OK || o->dry_run) {
        store_rollback(st);
        if (rc != MESH_OK)
            mesh_apply_result_free(res);
        return rc;
    }
    rc = store_commit(st, err);
    if (rc != MESH_OK)
        mesh_apply_result_free(res);
    return rc;
}

void mesh_apply_result_free(mesh_apply_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_changes; i++) {
        free(r->changes[i].kind);
        free(r->changes[i].name);
        free(r->changes[i].source);
        free(r->changes[i].before);
        free(r->changes[i].after);
    }
    free(r->changes);
    mesh_config_warnings_free(&r->warnings);
    memset(r, 0, sizeof *r);
}

const char *mesh_change_kind_name(enum mesh_change_kind k)
{
    switch (k) {
    case MESH_CHANGE_ADD: return "add";
    case MESH_CHANGE_UPDATE: return "update";
    case MESH_CHANGE_REMOVE: return "remove";
    }
    return "?";
}

static int apply_simple(mesh_store *st, const mesh_config *in, int *changed_out, int dry_run,
                        mesh_err *err)
{
    int dummy;
    if (!changed_out)
        changed_out = &dummy;
    *changed_out = 0;
    mesh_apply_opts o = {.dry_run = dry_run};
    mesh_apply_result res;
    int rc = mesh_config_apply_ex(st, in, &o, &res, err);
    if (rc == MESH_OK)
        *changed_out = (int)res.n_changes;
    mesh_apply_result_free(&res);
    return rc;
}

int mesh_config_apply(mesh_store *st, const mesh_config *in, int *changed_out, mesh_err *err)
{
    return apply_simple(st, in, changed_out, 0, err);
}

int mesh_config_apply_dry_run(mesh_store *st, const mesh_config *in, int *changed_out,
                              mesh_err *err)
{
    return apply_simple(st, in, changed_out, 1, err);
}
