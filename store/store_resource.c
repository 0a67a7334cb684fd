/* store/store_resource.c — mesh config resources (canonical YAML per resource)
 * and the global config version meshd uses as xDS version_info.
 *
 * The version (settings "config_version") moves only when a resource really
 * changes or is deleted; rewriting an identical body is a no-op, so a
 * repeated `meshctl apply` pushes nothing. All changes made inside one
 * store_begin/store_commit share one version bump: one apply = one version. */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char SQL_RES_SAME[] =
    "SELECT body = ?3, source = ?4 AND (?5 IS NULL OR apply_set = ?5) "
    "FROM resources WHERE kind = ?1 AND name = ?2";
/* ?7 NULL keeps the row's apply set (a new row gets none). */
static const char SQL_RES_UPSERT[] =
    "INSERT INTO resources (kind, name, body, source, version, updated_at, apply_set) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, COALESCE(?7, '')) "
    "ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, source = excluded.source, "
    "version = excluded.version, updated_at = excluded.updated_at, "
    "apply_set = COALESCE(?7, resources.apply_set)";
/* Provenance only: no new config version, updated_at stays (it dates the body). */
static const char SQL_RES_PROVENANCE[] =
    "UPDATE resources SET source = ?3, apply_set = COALESCE(?4, apply_set) "
    "WHERE kind = ?1 AND name = ?2";
static const char SQL_RES_DELETE[] = "DELETE FROM resources WHERE kind = ?1 AND name = ?2";
static const char SQL_RES_LIST[] =
    "SELECT kind, name, body, source, version, updated_at, apply_set FROM resources "
    "WHERE ?1 IS NULL OR kind = ?1 ORDER BY kind, name";
static const char SQL_VERSION_BUMP[] =
    "UPDATE settings SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) "
    "WHERE key = 'config_version' RETURNING CAST(value AS BIGINT)";
static const char SQL_VERSION_GET[] =
    "SELECT CAST(value AS BIGINT) FROM settings WHERE key = 'config_version'";

static int store_resource_kind_valid(const char *kind, mesh_err *err)
{
    static const char *const kinds[] = {"service", "workload", "route", "authorization"};
    if (kind) {
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
            if (strcmp(kind, kinds[i]) == 0)
                return MESH_OK;
    }
    return mesh_err_set(err, MESH_EINVAL,
                        "resource kind must be service, workload, route or authorization, got "
                        "'%s'",
                        kind ? kind : "(null)");
}

/* The version the current change is stamped with: bumps the counter, except
 * that later changes in the same store_begin transaction reuse the first
 * bump. Must run inside store_op_begin. */
static int store_config_version_next(mesh_store *st, int64_t *version_out, mesh_err *err)
{
    if (st->in_tx && st->tx_config_version > 0) {
        *version_out = st->tx_config_version;
        return MESH_OK;
    }
    store_q *s;
    int rc = store_stmt(st, SQL_VERSION_BUMP, &s, err);
    if (rc != MESH_OK)
        return rc;
    int src = store_step(s);
    if (src == STORE_ROW) {
        *version_out = store_col_int64(s, 0);
        src = store_step(s);
    } else if (src == STORE_DONE) {
        store_stmt_release(s);
        return mesh_err_set(err, MESH_ECORRUPT,
                            "store %s has no config_version setting; restore it from a backup",
                            st->path);
    }
    if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "bumping the config version");
    store_stmt_release(s);
    return rc;
}

/* Remembers a bump for the rest of the user transaction, once the change that
 * made it has been kept (its savepoint released). */
static void store_config_version_used(mesh_store *st, int64_t version)
{
    if (st->in_tx)
        st->tx_config_version = version;
}

/* *same_out: 1 if (kind, name) exists with exactly this body; *same_prov_out:
 * and with this source and (apply_set non-NULL) apply set. */
static int store_resource_same(mesh_store *st, const char *kind, const char *name,
                               const char *body, const char *source, const char *apply_set,
                               int *same_out, int *same_prov_out, mesh_err *err)
{
    *same_out = 0;
    *same_prov_out = 0;
    store_q *s;
    int rc = store_stmt(st, SQL_RES_SAME, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, kind, &brc);
    store_bind_text(s, 2, name, &brc);
    store_bind_text(s, 3, body, &brc);
    store_bind_text(s, 4, source ? source : "", &brc);
    store_bind_text(s, 5, apply_set, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_ROW) {
        *same_out = store_col_int(s, 0) != 0;
        *same_prov_out = store_col_int(s, 1) != 0;
    }
    else if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "reading %s %s", kind, name);
    store_stmt_release(s);
    return rc;
}

static int store_resource_write(mesh_store *st, const char *kind, const char *name,
                                const char *body, const char *source, const char *apply_set,
                                int64_t version, mesh_err *err)
{
    store_q *s;
    int rc = store_stmt(st, SQL_RES_UPSERT, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, kind, &brc);
    store_bind_text(s, 2, name, &brc);
    store_bind_text(s, 3, body, &brc);
    store_bind_text(s, 4, source ? source : "", &brc);
    store_bind_int64(s, 5, version, &brc);
    store_bind_int64(s, 6, (int64_t)time(NULL), &brc);
    store_bind_text(s, 7, apply_set, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "writing %s %s", kind, name);
    store_stmt_release(s);
    return rc;
}

static int store_resource_write_provenance(mesh_store *st, const char *kind, const char *name,
                                           const char *source, const char *apply_set,
                                           mesh_err *err)
{
    store_q *s;
    int rc = store_stmt(st, SQL_RES_PROVENANCE, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, kind, &brc);
    store_bind_text(s, 2, name, &brc);
    store_bind_text(s, 3, source ? source : "", &brc);
    store_bind_text(s, 4, apply_set, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "recording where %s %s was applied from", kind, name);
    store_stmt_release(s);
    return rc;
}

int store_resource_put(mesh_store *st, const char *kind, const char *name, const char *body,
                       const char *source, int *changed_out, mesh_err *err)
{
    return store_resource_put_from(st, kind, name, body, source, NULL, changed_out, err);
}

int store_resource_put_from(mesh_store *st, const char *kind, const char *name,
                            const char *body, const char *source, const char *apply_set,
                            int *changed_out, mesh_err *err)
{
    if (changed_out)
        *changed_out = 0;
    int rc = store_resource_kind_valid(kind, err);
    if (rc == MESH_OK)
        rc = store_require(name, "resource name", err);
    if (rc == MESH_OK && !body)
        rc = mesh_err_set(err, MESH_EINVAL, "%s %s: body is required", kind, name);
    if (rc != MESH_OK)
        return rc;

    rc = store_op_begin(st, 1, err);
    if (rc != MESH_OK)
        return rc;
    int same = 0, same_prov = 0;
    int64_t version = 0;
    rc = store_resource_same(st, kind, name, body, source, apply_set, &same, &same_prov, err);
    if (rc == MESH_OK && !same) {
        rc = store_config_version_next(st, &version, err);
        if (rc == MESH_OK)
            rc = store_resource_write(st, kind, name, body, source, apply_set, version, err);
    } else if (rc == MESH_OK && !same_prov && apply_set) {
        /* The same resource, now applied from elsewhere: who owns it moves
         * (so a prune of its old file leaves it alone); the config does not. */
        rc = store_resource_write_provenance(st, kind, name, source, apply_set, err);
    }
    rc = store_op_end(st, rc, err);
    if (rc != MESH_OK)
        return rc;
    if (!same)
        store_config_version_used(st, version);
    if (changed_out)
        *changed_out = !same;
    return MESH_OK;
}

int store_resource_delete(mesh_store *st, const char *kind, const char *name, mesh_err *err)
{
    int rc = store_resource_kind_valid(kind, err);
    if (rc == MESH_OK)
        rc = store_require(name, "resource name", err);
    if (rc != MESH_OK)
        return rc;

    rc = store_op_begin(st, 1, err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    int64_t version = 0;
    rc = store_stmt(st, SQL_RES_DELETE, &s, err);
    if (rc == MESH_OK) {
        int brc = STORE_OK;
        store_bind_text(s, 1, kind, &brc);
        store_bind_text(s, 2, name, &brc);
        int src = brc == STORE_OK ? store_step(s) : brc;
        if (src != STORE_DONE)
            rc = store_db_error(st, err, src, "deleting %s %s", kind, name);
        else if (store_changes(st) == 0)
            rc = mesh_err_set(err, MESH_ENOTFOUND, "no %s named %s", kind, name);
        store_stmt_release(s);
    }
    if (rc == MESH_OK)
        rc = store_config_version_next(st, &version, err);
    rc = store_op_end(st, rc, err);
    if (rc == MESH_OK)
        store_config_version_used(st, version);
    return rc;
}

static int store_resource_read_row(store_q *s, store_resource *out)
{
    int rc = MESH_OK;
    memset(out, 0, sizeof *out);
    out->kind = store_col_dup(s, 0, &rc);
    out->name = store_col_dup(s, 1, &rc);
    out->body = store_col_dup(s, 2, &rc);
    out->source = store_col_dup(s, 3, &rc);
    out->version = store_col_int64(s, 4);
    out->updated_at = store_col_int64(s, 5);
    out->apply_set = store_col_dup(s, 6, &rc);
    if (rc != MESH_OK)
        store_resource_free(out);
    return rc;
}

int store_resource_list(mesh_store *st, const char *kind, store_resource **out, size_t *n_out,
                        mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    int rc = kind ? store_resource_kind_valid(kind, err) : MESH_OK;
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_RES_LIST, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, kind, &brc);
    store_resource *list = NULL;
    size_t n = 0, cap = 0;
    int src = brc;
    while (brc == STORE_OK && (src = store_step(s)) == STORE_ROW) {
        if (store_grow((void **)&list, &cap, n, sizeof *list) != MESH_OK ||
            store_resource_read_row(s, &list[n]) != MESH_OK) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing resources");
            break;
        }
        n++;
    }
    if (rc == MESH_OK && src != STORE_DONE)
        rc = store_db_error(st, err, src, "listing resources");
    store_stmt_release(s);
    if (rc != MESH_OK) {
        store_resource_free_list(list, n);
        return rc;
    }
    *out = list;
    *n_out = n;
    return MESH_OK;
}

int64_t store_config_version(mesh_store *st)
{
    store_q *s;
    if (store_stmt(st, SQL_VERSION_GET, &s, NULL) != MESH_OK)
        return -1;
    int64_t v = store_step(s) == STORE_ROW ? store_col_int64(s, 0) : -1;
    store_stmt_release(s);
    return v;
}

void store_resource_free(store_resource *r)
{
    if (!r)
        return;
    free(r->kind);
    free(r->name);
    free(r->body);
    free(r->source);
    free(r->apply_set);
    memset(r, 0, sizeof *r);
}

void store_resource_free_list(store_resource *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_resource_free(&list[i]);
    free(list);
}
