/* store/store_registration.c — registrations (who may join) and their
 * one-time join tokens, kept as SHA-256 hashes only. Spending a token is one
 * conditional UPDATE, so of two processes redeeming it at once exactly one wins.
 *
 * A registration is one instance of an identity, by name (the workload's name
 * in the mesh config; replicas share the identity, each has its own name and
 * tokens), or, name "", the identity as a whole: the only kind a store of
 * schema 1 had, still accepted for identities with one workload. */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REG_COLUMNS "id, name, spiffe_id, selectors, address, created_at"

static const char SQL_REG_ADD[] =
    "INSERT INTO registrations (name, spiffe_id, selectors, address, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_REG_GET_NAME[] =
    "SELECT " REG_COLUMNS " FROM registrations WHERE name = ?1 AND name <> ''";
static const char SQL_REG_GET_WIDE[] =
    "SELECT " REG_COLUMNS " FROM registrations WHERE name = '' AND spiffe_id = ?1";
static const char SQL_REG_LIST[] =
    "SELECT " REG_COLUMNS " FROM registrations ORDER BY spiffe_id, name";
static const char SQL_REG_COUNT[] = "SELECT count(*) FROM registrations WHERE spiffe_id = ?1";
static const char SQL_REG_DELETE[] =
    "DELETE FROM registrations WHERE name = ?1 AND spiffe_id = ?2";
static const char SQL_TOKEN_DELETE_UNUSED[] =
    "DELETE FROM join_tokens WHERE instance = ?1 AND spiffe_id = ?2 AND used_at IS NULL";
/* Inserts only if the registration exists, atomically with respect to a
 * concurrent store_registration_remove. */
static const char SQL_TOKEN_ADD[] =
    "INSERT INTO join_tokens (token_hash, spiffe_id, instance, created_at, expires_at) "
    "SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS "
    "(SELECT 1 FROM registrations WHERE spiffe_id = ?2 AND name = ?3)";
static const char SQL_TOKEN_SPEND[] =
    "UPDATE join_tokens SET used_at = ?2 "
    "WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING spiffe_id, instance";
static const char SQL_TOKEN_LOOKUP[] =
    "SELECT spiffe_id, instance, expires_at, used_at FROM join_tokens WHERE token_hash = ?1";

/* "instance web-1 (spiffe://...)" or "spiffe://..." for messages. */
static void reg_label(const char *name, const char *spiffe_id, char *buf, size_t n)
{
    if (name && name[0])
        snprintf(buf, n, "instance %.200s (%.600s)", name, spiffe_id ? spiffe_id : "?");
    else
        snprintf(buf, n, "%.600s", spiffe_id ? spiffe_id : "?");
}

static int store_reg_read_row(store_q *s, store_registration *out)
{
    int rc = MESH_OK;
    memset(out, 0, sizeof *out);
    out->id = store_col_int64(s, 0);
    out->name = store_col_dup(s, 1, &rc);
    out->spiffe_id = store_col_dup(s, 2, &rc);
    out->selectors = store_col_dup(s, 3, &rc);
    out->address = store_col_dup(s, 4, &rc);
    out->created_at = store_col_int64(s, 5);
    if (rc != MESH_OK)
        store_registration_free(out);
    return rc;
}

int store_registration_add(mesh_store *st, const char *name, const char *spiffe_id,
                           const char *selectors, const char *address, mesh_err *err)
{
    int rc = store_require_spiffe_id(spiffe_id, "registration SPIFFE ID", err);
    if (rc != MESH_OK)
        return rc;
    if (!name)
        name = "";
    store_q *s;
    rc = store_stmt(st, SQL_REG_ADD, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, name, &brc);
    store_bind_text(s, 2, spiffe_id, &brc);
    store_bind_text(s, 3, selectors ? selectors : "", &brc);
    store_bind_text(s, 4, address ? address : "", &brc);
    store_bind_int64(s, 5, (int64_t)time(NULL), &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_UNIQUE) {
        if (name[0])
            rc = mesh_err_set(err, MESH_EEXISTS, "registration %s already exists", name);
        else
            rc = mesh_err_set(err, MESH_EEXISTS, "registration %s already exists", spiffe_id);
    } else if (src != STORE_DONE) {
        char label[900];
        reg_label(name, spiffe_id, label, sizeof label);
        rc = store_db_error(st, err, src, "adding registration %s", label);
    }
    store_stmt_release(s);
    return rc;
}

int store_registration_get(mesh_store *st, const char *name, const char *spiffe_id,
                           store_registration *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    int by_name = name && name[0];
    int rc = by_name ? MESH_OK : store_require(spiffe_id, "registration SPIFFE ID", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, by_name ? SQL_REG_GET_NAME : SQL_REG_GET_WIDE, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, by_name ? name : spiffe_id, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    const char *key = by_name ? name : spiffe_id;
    if (src == STORE_ROW) {
        if (store_reg_read_row(s, out) != MESH_OK)
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory reading registration %s", key);
    } else if (src == STORE_DONE) {
        rc = mesh_err_set(err, MESH_ENOTFOUND,
                          "no registration for %s; add it with 'meshctl workload add'", key);
    } else {
        rc = store_db_error(st, err, src, "reading registration %s", key);
    }
    store_stmt_release(s);
    if (rc == MESH_OK && by_name && spiffe_id && strcmp(out->spiffe_id, spiffe_id) != 0) {
        rc = mesh_err_set(err, MESH_ENOTFOUND,
                          "registration %s is an instance of %s, not of %s", name,
                          out->spiffe_id, spiffe_id);
        store_registration_free(out);
    }
    return rc;
}

int store_registration_count(mesh_store *st, const char *spiffe_id, int64_t *n_out,
                             mesh_err *err)
{
    *n_out = 0;
    int rc = store_require(spiffe_id, "registration SPIFFE ID", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_REG_COUNT, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, spiffe_id, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_ROW)
        *n_out = store_col_int64(s, 0);
    else
        rc = store_db_error(st, err, src, "counting the registrations of %s", spiffe_id);
    store_stmt_release(s);
    return rc;
}

int store_registration_list(mesh_store *st, store_registration **out, size_t *n_out,
                            mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    store_q *s;
    int rc = store_stmt(st, SQL_REG_LIST, &s, err);
    if (rc != MESH_OK)
        return rc;
    store_registration *list = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = store_step(s)) == STORE_ROW) {
        if (store_grow((void **)&list, &cap, n, sizeof *list) != MESH_OK ||
            store_reg_read_row(s, &list[n]) != MESH_OK) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing registrations");
            break;
        }
        n++;
    }
    if (rc == MESH_OK && src != STORE_DONE)
        rc = store_db_error(st, err, src, "listing registrations");
    store_stmt_release(s);
    if (rc != MESH_OK) {
        store_registration_free_list(list, n);
        return rc;
    }
    *out = list;
    *n_out = n;
    return MESH_OK;
}

/* Runs a two-parameter DELETE (name, spiffe_id); *deleted_out = rows removed. */
static int store_delete_by_key(mesh_store *st, const char *sql, const char *name,
                               const char *spiffe_id, int64_t *deleted_out, mesh_err *err)
{
    store_q *s;
    int rc = store_stmt(st, sql, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, name, &brc);
    store_bind_text(s, 2, spiffe_id, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_DONE)
        *deleted_out = store_changes(st);
    else
        rc = store_db_error(st, err, src, "removing registration %s",
                            name[0] ? name : spiffe_id);
    store_stmt_release(s);
    return rc;
}

int store_registration_remove(mesh_store *st, const char *name, const char *spiffe_id,
                              mesh_err *err)
{
    if (!name)
        name = "";
    int rc = store_op_begin(st, 1, err);
    if (rc != MESH_OK)
        return rc;
    /* The key decides which row: an instance by its name, else the
     * identity-wide registration of spiffe_id. */
    store_registration reg;
    rc = store_registration_get(st, name, spiffe_id, &reg, err);
    int64_t n = 0;
    if (rc == MESH_OK)
        rc = store_delete_by_key(st, SQL_REG_DELETE, reg.name, reg.spiffe_id, &n, err);
    if (rc == MESH_OK && n == 0)
        rc = mesh_err_set(err, MESH_ENOTFOUND, "no registration for %s",
                          name[0] ? name : spiffe_id);
    /* Spent tokens stay as the record of who joined; unused ones must not
     * outlive the registration they would admit. */
    if (rc == MESH_OK)
        rc = store_delete_by_key(st, SQL_TOKEN_DELETE_UNUSED, reg.name, reg.spiffe_id, &n, err);
    store_registration_free(&reg);   /* zeroed by the get when it failed */
    return store_op_end(st, rc, err);
}

void store_registration_free(store_registration *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->spiffe_id);
    free(r->selectors);
    free(r->address);
    memset(r, 0, sizeof *r);
}

void store_registration_free_list(store_registration *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_registration_free(&list[i]);
    free(list);
}

/* ---- join tokens ------------------------------------------------------------ */

int store_token_add(mesh_store *st, const char *token_hash_hex, const char *spiffe_id,
                    const char *instance, int64_t expires_at, mesh_err *err)
{
    int rc = store_require_hex(token_hash_hex, "join token hash", 64, 64, err);
    if (rc == MESH_OK)
        rc = store_require_spiffe_id(spiffe_id, "join token SPIFFE ID", err);
    if (rc != MESH_OK)
        return rc;
    if (!instance)
        instance = "";
    char label[900];
    reg_label(instance, spiffe_id, label, sizeof label);
    int64_t now = (int64_t)time(NULL);
    if (expires_at <= now) {
        char when[32];
        store_fmt_time(expires_at, when);
        return mesh_err_set(err, MESH_EINVAL, "join token for %s would already be expired (%s)",
                            label, when);
    }
    store_q *s;
    rc = store_stmt(st, SQL_TOKEN_ADD, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, token_hash_hex, &brc);
    store_bind_text(s, 2, spiffe_id, &brc);
    store_bind_text(s, 3, instance, &brc);
    store_bind_int64(s, 4, now, &brc);
    store_bind_int64(s, 5, expires_at, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_DONE) {
        if (store_changes(st) == 0)
            rc = mesh_err_set(err, MESH_ENOTFOUND,
                              "cannot create a join token for %s: no such registration; add it "
                              "with 'meshctl workload add'", label);
    } else if (src == STORE_UNIQUE) {
        rc = mesh_err_set(err, MESH_EEXISTS, "a join token with this hash already exists");
    } else {
        rc = store_db_error(st, err, src, "adding a join token for %s", label);
    }
    store_stmt_release(s);
    return rc;
}

/* After a failed spend: why did it fail? Only for the message and status; the
 * decision was already made atomically by the UPDATE. */
static int store_token_explain(mesh_store *st, const char *token_hash_hex, mesh_err *err)
{
    store_q *s;
    int rc = store_stmt(st, SQL_TOKEN_LOOKUP, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, token_hash_hex, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_ROW) {
        char label[900], when[32];
        reg_label(store_col_text(s, 1), store_col_text(s, 0),
                  label, sizeof label);
        if (!store_col_is_null(s, 3)) {
            store_fmt_time(store_col_int64(s, 3), when);
            rc = mesh_err_set(err, MESH_EPERM,
                              "join token for %s was already used at %s; a token works once, "
                              "create a new one with 'meshctl workload token'",
                              label, when);
        } else {
            store_fmt_time(store_col_int64(s, 2), when);
            rc = mesh_err_set(err, MESH_EEXPIRED,
                              "join token for %s expired at %s; create a new one with "
                              "'meshctl workload token'",
                              label, when);
        }
    } else if (src == STORE_DONE) {
        rc = mesh_err_set(err, MESH_ENOTFOUND,
                          "join token not recognised (mistyped, or its registration was "
                          "removed)");
    } else {
        rc = store_db_error(st, err, src, "looking up a join token");
    }
    store_stmt_release(s);
    return rc;
}

/* The atomic step: spends the token if it is unused and unexpired. *id_out
 * and *instance_out are set (malloc'd) only if this call spent it. */
static int store_token_spend(mesh_store *st, const char *token_hash_hex, int64_t now,
                             char **id_out, char **instance_out, mesh_err *err)
{
    store_q *s;
    int rc = store_stmt(st, SQL_TOKEN_SPEND, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, token_hash_hex, &brc);
    store_bind_int64(s, 2, now, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_ROW) {
        *id_out = store_col_dup(s, 0, &rc);
        *instance_out = store_col_dup(s, 1, &rc);
        if (rc != MESH_OK)
            mesh_err_set(err, rc, "out of memory spending a join token");
        else
            src = store_step(s);   /* the UPDATE completes with the statement */
    }
    if (rc == MESH_OK && src != STORE_DONE)
        rc = store_db_error(st, err, src, "spending a join token");
    store_stmt_release(s);
    if (rc != MESH_OK) {
        free(*id_out);
        free(*instance_out);
        *id_out = NULL;
        *instance_out = NULL;
    }
    return rc;
}

int store_token_consume(mesh_store *st, const char *token_hash_hex, int64_t now,
                        char **spiffe_id_out, char **instance_out, mesh_err *err)
{
    *spiffe_id_out = NULL;
    if (instance_out)
        *instance_out = NULL;
    int rc = store_require_hex(token_hash_hex, "join token hash", 64, 64, err);
    if (rc != MESH_OK)
        return rc;
    /* A transaction of its own so that a failure after the UPDATE (out of
     * memory copying the identity) un-spends the token instead of losing it. */
    rc = store_op_begin(st, 1, err);
    if (rc != MESH_OK)
        return rc;
    char *id = NULL, *instance = NULL;
    rc = store_token_spend(st, token_hash_hex, now, &id, &instance, err);
    if (rc == MESH_OK && !id)
        rc = store_token_explain(st, token_hash_hex, err);
    rc = store_op_end(st, rc, err);
    if (rc != MESH_OK) {
        free(id);
        free(instance);
        return rc;
    }
    *spiffe_id_out = id;
    if (instance_out)
        *instance_out = instance;
    else
        free(instance);
    return MESH_OK;
}
