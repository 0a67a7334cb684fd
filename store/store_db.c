/* store/store_db.c — plumbing shared by every store file: SQLite error mapping,
 * the per-handle prepared-statement cache, bind/column helpers, transactions
 * (store_begin/commit/rollback and the per-call store_op_begin/end; outermost
 * write transactions pass the in-process write gate of store_gate.c), and
 * input checks. Nothing here knows about a particular table. */
#include "store/store_internal.h"

#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

int store_map_sqlite_rc(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return MESH_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return MESH_EBUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return MESH_ECORRUPT;
    case SQLITE_NOMEM:
        return MESH_ENOMEM;
    case SQLITE_FULL:
        return MESH_ENOSPC;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
        return MESH_EIO;
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return MESH_EINVAL;
    default:
        return MESH_EINTERNAL;
    }
}

/* Free space below which a failed write is taken for a full file system. */
#define STORE_LOW_SPACE_BYTES (1024 * 1024)
/* A file this close to RLIMIT_FSIZE has hit the limit. */
#define STORE_FSIZE_MARGIN (64 * 1024)

static int64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

/* SQLite reports a write that failed outright (quota, file size limit, a
 * -shm extension on a full tmpfs) as SQLITE_IOERR_*, not SQLITE_FULL, and
 * the errno it records is often gone by the time it is read. A failed
 * write while the file system is (nearly) out of space, or while the WAL or
 * the database sits at the process's file size limit, is the same
 * condition as a full disk: temporary, and fixed by the operator. */
int store_write_hit_space_limit(const mesh_store *st, int sqlite_rc)
{
    int ext = sqlite_rc;
    if (ext != SQLITE_IOERR_WRITE && ext != SQLITE_IOERR_SHMSIZE && ext != SQLITE_IOERR_FSYNC &&
        ext != SQLITE_IOERR_TRUNCATE && (ext & 0xff) != SQLITE_FULL)
        return 0;
    if ((ext & 0xff) == SQLITE_FULL)
        return 1;
    char *copy = strdup(st->path);
    struct statvfs vfs;
    int low = copy && statvfs(dirname(copy), &vfs) == 0 &&
              (uint64_t)vfs.f_bfree * vfs.f_frsize < STORE_LOW_SPACE_BYTES;
    free(copy);
    if (low)
        return 1;
    struct rlimit lim;
    if (getrlimit(RLIMIT_FSIZE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY)
        return 0;
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", st->path);
    int64_t biggest = file_size(st->path);
    int64_t w = file_size(wal);
    if (w > biggest)
        biggest = w;
    return biggest + STORE_FSIZE_MARGIN >= (int64_t)lim.rlim_cur;
}

/* What an operator should do about a class of failure. */
static const char *store_error_hint(int code)
{
    switch (code) {
    case MESH_EBUSY:
        return "; another process held the store's write lock for more than 5 s, retry";
    case MESH_ECORRUPT:
        return "; the store file is damaged: stop meshd and restore it from a backup";
    case MESH_EIO:
        return "; check disk space and permissions";
    case MESH_ENOSPC:
        return "; the file system holding the store is full: free space there (until then "
               "meshd answers certificate requests with UNAVAILABLE, and clients retry)";
    default:
        return "";
    }
}

int store_db_error(mesh_store *st, mesh_err *err, int sqlite_rc, const char *fmt, ...)
{
    int code = store_map_sqlite_rc(sqlite_rc);
    if (code == MESH_OK)
        code = MESH_EINTERNAL;   /* called on a path that failed for a non-SQLite reason */
    if (code == MESH_EIO && st && store_write_hit_space_limit(st, sqlite_rc))
        code = MESH_ENOSPC;
    if (!err)
        return code;
    char context[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);
    /* sqlite3_errmsg describes the most recent failing call on this handle;
     * callers report before resetting the statement. */
    const char *detail = st && st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(sqlite_rc);
    return mesh_err_set(err, code, "%s: %s (store %s)%s", context, detail,
                        st && st->path ? st->path : "?", store_error_hint(code));
}

/* ---- statement cache ------------------------------------------------------- */

int store_stmt(mesh_store *st, const char *sql, sqlite3_stmt **out, mesh_err *err)
{
    *out = NULL;
    for (size_t i = 0; i < st->n_stmts; i++) {
        if (st->stmts[i].sql == sql) {
            /* Defensive: a statement left active would pin an old snapshot. */
            sqlite3_reset(st->stmts[i].stmt);
            sqlite3_clear_bindings(st->stmts[i].stmt);
            *out = st->stmts[i].stmt;
            return MESH_OK;
        }
    }
    if (store_grow((void **)&st->stmts, &st->cap_stmts, st->n_stmts, sizeof *st->stmts) != MESH_OK)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory preparing a store statement");
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        int code = store_db_error(st, err, rc, "preparing store statement");
        sqlite3_finalize(s);
        return code;
    }
    st->stmts[st->n_stmts].sql = sql;
    st->stmts[st->n_stmts].stmt = s;
    st->n_stmts++;
    *out = s;
    return MESH_OK;
}

void store_stmt_release(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

void store_stmt_cache_free(mesh_store *st)
{
    for (size_t i = 0; i < st->n_stmts; i++)
        sqlite3_finalize(st->stmts[i].stmt);
    free(st->stmts);
    st->stmts = NULL;
    st->n_stmts = st->cap_stmts = 0;
}

int store_exec(mesh_store *st, const char *sql, mesh_err *err)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, sql, &s, err);
    if (rc != MESH_OK)
        return rc;
    int src;
    do
        src = sqlite3_step(s);
    while (src == SQLITE_ROW);
    if (src != SQLITE_DONE)
        rc = store_db_error(st, err, src, "running '%s'", sql);
    store_stmt_release(s);
    return rc;
}

void store_bind_text(sqlite3_stmt *s, int idx, const char *v, int *rc)
{
    if (*rc != SQLITE_OK)
        return;
    *rc = v ? sqlite3_bind_text(s, idx, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, idx);
}

void store_bind_int64(sqlite3_stmt *s, int idx, int64_t v, int *rc)
{
    if (*rc != SQLITE_OK)
        return;
    *rc = sqlite3_bind_int64(s, idx, (sqlite3_int64)v);
}

char *store_col_dup(sqlite3_stmt *s, int col, int *rc)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    if (!t && sqlite3_column_type(s, col) != SQLITE_NULL) {
        *rc = MESH_ENOMEM;   /* text conversion failed for lack of memory */
        return NULL;
    }
    char *copy = strdup(t ? (const char *)t : "");
    if (!copy)
        *rc = MESH_ENOMEM;
    return copy;
}

/* ---- transactions ---------------------------------------------------------- */

static const char SQL_BEGIN_IMMEDIATE[] = "BEGIN IMMEDIATE";
static const char SQL_BEGIN_DEFERRED[] = "BEGIN";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT store_op";
static const char SQL_RELEASE[] = "RELEASE store_op";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO store_op";

/* Rolls back whatever transaction is open; used on failure paths only. An
 * error here means SQLite already rolled back (e.g. after SQLITE_FULL). */
static void store_abort_tx(mesh_store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        (void)store_exec(st, SQL_ROLLBACK, NULL);
}

/* BEGIN IMMEDIATE of an outermost write transaction, after passing this
 * process's write gate (store_gate.c). The gate is left again if BEGIN
 * fails; otherwise when the transaction ends. */
static int store_begin_immediate(mesh_store *st, mesh_err *err)
{
    int64_t waited = 0;
    int rc = store_gate_enter(st, &waited, err);
    if (rc != MESH_OK)
        return rc;
    /* Time spent queueing behind our own threads counts against the one
     * busy timeout: SQLite gets what is left for other processes. */
    if (waited > 0)
        sqlite3_busy_timeout(st->db, waited < STORE_BUSY_TIMEOUT_MS
                                         ? (int)(STORE_BUSY_TIMEOUT_MS - waited)
                                         : 1);
    rc = store_exec(st, SQL_BEGIN_IMMEDIATE, err);
    if (waited > 0)
        sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    if (rc != MESH_OK)
        store_gate_leave(st);
    return rc;
}

int store_op_begin(mesh_store *st, int write, mesh_err *err)
{
    int rc;
    if (st->in_tx || st->op_depth > 0)
        rc = store_exec(st, SQL_SAVEPOINT, err);
    else if (write)
        rc = store_begin_immediate(st, err);
    else
        rc = store_exec(st, SQL_BEGIN_DEFERRED, err);
    if (rc != MESH_OK)
        return rc;
    st->op_depth++;
    return MESH_OK;
}

/* store_op_end's work; the caller leaves the write gate afterwards. */
static int store_op_finish(mesh_store *st, int rc, mesh_err *err)
{
    st->op_depth--;
    int savepoint = st->in_tx || st->op_depth > 0;
    if (sqlite3_get_autocommit(st->db)) {
        /* SQLite rolled the whole transaction back by itself (I/O error, disk
         * full, ...): nothing left to commit or release. */
        if (rc == MESH_OK)
            rc = mesh_err_set(err, MESH_EIO, "store %s: transaction was rolled back by SQLite",
                              st->path);
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
        store_gate_leave(st); /* no-op unless this was an outermost write */
    return rc;
}

int store_begin(mesh_store *st, mesh_err *err)
{
    if (st->in_tx || st->op_depth > 0)
        return mesh_err_set(err, MESH_EINVAL,
                            "store %s: a transaction is already open (nested store_begin)",
                            st->path);
    int rc = store_begin_immediate(st, err);
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
    if (sqlite3_get_autocommit(st->db)) {
        rc = mesh_err_set(err, MESH_EIO,
                          "store %s: the transaction was rolled back by an earlier error; "
                          "nothing was committed", st->path);
    } else if ((rc = store_exec(st, SQL_COMMIT, err)) != MESH_OK) {
        store_abort_tx(st);
        mesh_err_prefix(err, "committing");
    }
    store_gate_leave(st);
    return rc;
}

void store_rollback(mesh_store *st)
{
    if (!st->in_tx)
        return;
    st->in_tx = 0;
    st->tx_config_version = 0;
    store_abort_tx(st);
    store_gate_leave(st);
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
