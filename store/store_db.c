/* store/store_db.c — plumbing shared by every store file, whichever the
 * backend: error messages, the per-handle statement cache, the statement
 * layer's entry points (dispatching to store_sqlite_stmt.c or
 * store_pg_stmt.c), transactions (store_begin/commit/rollback and the
 * per-call store_op_begin/end, savepoints inside), and input checks.
 * Nothing here knows about a particular table or dialect. */
#include "store/store_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What an operator should do about a class of failure. */
const char *store_error_hint(const mesh_store *st, int code)
{
    int pg = st && st->be == &store_pg_backend;
    switch (code) {
    case MESH_EBUSY:
        return pg ? "; the PostgreSQL server is unreachable or the store is locked: meshd "
                    "answers with UNAVAILABLE until it is back, and clients retry"
                  : "; another process held the store's write lock for more than 5 s, retry";
    case MESH_ECORRUPT:
        return pg ? "; PostgreSQL reports damaged data: see its server log"
                  : "; the store file is damaged: stop meshd and restore it from a backup";
    case MESH_EIO:
        return pg ? "; check the PostgreSQL server and its log"
                  : "; check disk space and permissions";
    case MESH_ENOSPC:
        return pg ? "; the PostgreSQL server is out of disk space: free space there (until "
                    "then meshd answers certificate requests with UNAVAILABLE, and clients "
                    "retry)"
                  : "; the file system holding the store is full: free space there (until then "
                    "meshd answers certificate requests with UNAVAILABLE, and clients retry)";
    default:
        return "";
    }
}

void store_record_failure(mesh_store *st, int code, const char *msg)
{
    st->last_code = code;
    snprintf(st->last_msg, sizeof st->last_msg, "%s", msg ? msg : "unknown error");
}

int store_db_error(mesh_store *st, mesh_err *err, int src, const char *fmt, ...)
{
    int code = src == STORE_UNIQUE || src == STORE_FOREIGN_KEY ? MESH_EINVAL : st->last_code;
    if (code == MESH_OK)
        code = MESH_EINTERNAL;   /* called on a path that failed for another reason */
    if (!err)
        return code;
    char context[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);
    return mesh_err_set(err, code, "%s: %s (store %s)%s", context,
                        st->last_msg[0] ? st->last_msg : "unknown error",
                        st->path ? st->path : "?", store_error_hint(st, code));
}

/* ---- statements ----------------------------------------------------------- */

store_q *store_stmt_cached(mesh_store *st, const char *sql)
{
    for (size_t i = 0; i < st->n_stmts; i++)
        if (st->stmts[i].sql == sql)
            return st->stmts[i].q;
    return NULL;
}

int store_stmt_cache_add(mesh_store *st, const char *sql, store_q *q)
{
    if (store_grow((void **)&st->stmts, &st->cap_stmts, st->n_stmts, sizeof *st->stmts) != MESH_OK)
        return MESH_ENOMEM;
    st->stmts[st->n_stmts].sql = sql;
    st->stmts[st->n_stmts].q = q;
    st->n_stmts++;
    return MESH_OK;
}

int store_stmt(mesh_store *st, const char *sql, store_q **out, mesh_err *err)
{
    *out = NULL;
    store_q *q = store_stmt_cached(st, sql);
    if (q) {
        /* Defensive: a statement left active would pin an old snapshot. */
        st->be->release(q);
        *out = q;
        return MESH_OK;
    }
    int rc = st->be->prepare(st, sql, &q, err);
    if (rc != MESH_OK)
        return rc;
    if (store_stmt_cache_add(st, sql, q) != MESH_OK) {
        st->be->free_q(q);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory preparing a store statement");
    }
    *out = q;
    return MESH_OK;
}

void store_stmt_release(store_q *q)
{
    if (q)
        q->st->be->release(q);
}

void store_stmt_cache_free(mesh_store *st)
{
    for (size_t i = 0; i < st->n_stmts; i++)
        st->be->free_q(st->stmts[i].q);
    free(st->stmts);
    st->stmts = NULL;
    st->n_stmts = st->cap_stmts = 0;
}

int store_exec(mesh_store *st, const char *sql, mesh_err *err)
{
    return st->be->exec(st, sql, err);
}

void store_bind_text(store_q *q, int idx, const char *v, int *rc)
{
    q->st->be->bind_text(q, idx, v, rc);
}

void store_bind_int64(store_q *q, int idx, int64_t v, int *rc)
{
    q->st->be->bind_int64(q, idx, v, rc);
}

int store_step(store_q *q)
{
    return q->st->be->step(q);
}

int store_col_is_null(store_q *q, int col)
{
    return q->st->be->col_is_null(q, col);
}

int64_t store_col_int64(store_q *q, int col)
{
    return q->st->be->col_int64(q, col);
}

int store_col_int(store_q *q, int col)
{
    return (int)q->st->be->col_int64(q, col);
}

const char *store_col_text(store_q *q, int col)
{
    return q->st->be->col_text(q, col);
}

int64_t store_changes(mesh_store *st)
{
    return st->be->changes(st);
}

char *store_col_dup(store_q *q, int col, int *rc)
{
    const char *t = store_col_text(q, col);
    if (!t && !store_col_is_null(q, col)) {
        *rc = MESH_ENOMEM;   /* text conversion failed for lack of memory */
        return NULL;
    }
    char *copy = strdup(t ? t : "");
    if (!copy)
        *rc = MESH_ENOMEM;
    return copy;
}

/* ---- transactions ---------------------------------------------------------- */

static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT store_op";
static const char SQL_RELEASE[] = "RELEASE store_op";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO store_op";

/* Rolls back whatever transaction is open; used on failure paths only. An
 * error here means the database already rolled back (e.g. after a full disk). */
static void store_abort_tx(mesh_store *st)
{
    if (st->be->in_transaction(st))
        (void)store_exec(st, SQL_ROLLBACK, NULL);
}

int store_op_begin(mesh_store *st, int write, mesh_err *err)
{
    int rc;
    if (st->in_tx || st->op_depth > 0)
        rc = store_exec(st, SQL_SAVEPOINT, err);
    else
        rc = st->be->begin(st, write, err);
    if (rc != MESH_OK)
        return rc;
    st->op_depth++;
    return MESH_OK;
}

/* store_op_end's work; the caller ends the outermost transaction afterwards. */
static int store_op_finish(mesh_store *st, int rc, mesh_err *err)
{
    st->op_depth--;
    int savepoint = st->in_tx || st->op_depth > 0;
    if (!st->be->in_transaction(st)) {
        /* The database rolled the whole transaction back by itself (I/O
         * error, disk full, lost connection ...): nothing left to commit. */
        if (rc == MESH_OK)
            rc = mesh_err_set(err, MESH_EIO, "store %s: transaction was rolled back by the "
                              "database", st->path);
        return rc;
    }
    if (savepoint) {
        if (rc != MESH_OK)
            (void)store_exec(st, SQL_ROLLBACK_TO, NULL);
        int rel = store_exec(st, SQL_RELEASE, rc == MESH_OK ? err : NULL);
        return rc != MESH_OK ? rc : rel;
    }
    if (rc != MESH_OK) {
        store_abort_tx(st);
        return rc;
    }
    rc = store_exec(st, SQL_COMMIT, err);
    if (rc != MESH_OK)
        store_abort_tx(st);
    return rc;
}

int store_op_end(mesh_store *st, int rc, mesh_err *err)
{
    rc = store_op_finish(st, rc, err);
    if (!st->in_tx && st->op_depth == 0)
        st->be->end_tx(st);
    return rc;
}

int store_begin(mesh_store *st, mesh_err *err)
{
    if (st->in_tx || st->op_depth > 0)
        return mesh_err_set(err, MESH_EINVAL,
                            "store %s: a transaction is already open (nested store_begin)",
                            st->path);
    int rc = st->be->begin(st, 1, err);
    if (rc != MESH_OK) {
        mesh_err_prefix(err, "starting a transaction");
        return rc;
    }
    st->in_tx = 1;
    st->tx_config_version = 0;
    return MESH_OK;
}

int store_commit(mesh_store *st, mesh_err *err)
{
    if (!st->in_tx)
        return mesh_err_set(err, MESH_EINVAL,
                            "store %s: store_commit without an open transaction", st->path);
    st->in_tx = 0;
    st->tx_config_version = 0;
    int rc;
    if (!st->be->in_transaction(st)) {
        rc = mesh_err_set(err, MESH_EIO,
                          "store %s: the transaction was rolled back by an earlier error; "
                          "nothing was committed", st->path);
    } else if ((rc = store_exec(st, SQL_COMMIT, err)) != MESH_OK) {
        store_abort_tx(st);
        mesh_err_prefix(err, "committing");
    }
    st->be->end_tx(st);
    return rc;
}

void store_rollback(mesh_store *st)
{
    if (!st->in_tx)
        return;
    st->in_tx = 0;
    st->tx_config_version = 0;
    store_abort_tx(st);
    st->be->end_tx(st);
}

int store_schema_version(mesh_store *st)
{
    return st->be->schema_version(st);
}

int64_t store_data_version(mesh_store *st)
{
    return st->be->data_version(st);
}

/* ---- input checks ---------------------------------------------------------- */

int store_require(const char *value, const char *field, mesh_err *err)
{
    if (!value || !value[0])
        return mesh_err_set(err, MESH_EINVAL, "%s is required", field);
    return MESH_OK;
}

int store_require_hex(const char *value, const char *field, size_t min_len, size_t max_len,
                      mesh_err *err)
{
    int rc = store_require(value, field, err);
    if (rc != MESH_OK)
        return rc;
    size_t len = strlen(value);
    if (len < min_len || len > max_len)
        return mesh_err_set(err, MESH_EINVAL, "%s must be %zu..%zu hex digits, got %zu characters",
                            field, min_len, max_len, len);
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return mesh_err_set(err, MESH_EINVAL,
                                "%s must be lowercase hex, found '%c' at position %zu",
                                field, c, i);
    }
    return MESH_OK;
}

int store_require_spiffe_id(const char *value, const char *field, mesh_err *err)
{
    int rc = store_require(value, field, err);
    if (rc != MESH_OK)
        return rc;
    if (strncmp(value, "spiffe://", 9) != 0 || value[9] == '\0')
        return mesh_err_set(err, MESH_EINVAL, "%s must be a SPIFFE ID (spiffe://...), got '%.200s'",
                            field, value);
    if (strlen(value) > 2048)
        return mesh_err_set(err, MESH_EINVAL, "%s is longer than 2048 bytes", field);
    return MESH_OK;
}

void store_fmt_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "@%lld", (long long)t);
}

int store_grow(void **arr, size_t *cap, size_t n, size_t elem_size)
{
    if (n < *cap)
        return MESH_OK;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * elem_size);
    if (!p)
        return MESH_ENOMEM;
    *arr = p;
    *cap = ncap;
    return MESH_OK;
}
