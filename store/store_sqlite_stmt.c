/* store/store_sqlite_stmt.c — the SQLite side of the store's backend
 * boundary: statements (prepared once per handle and cached), binding,
 * stepping, columns, error mapping (including a full disk reported as an
 * I/O error), transactions (BEGIN IMMEDIATE behind the in-process write
 * gate of store_gate.c) and the PRAGMA data_version change detector. */
#include "store/store_internal.h"

#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* SQLite's statement behind a store_q. */
typedef struct lite_q {
    store_q base;
    sqlite3_stmt *stmt;
} lite_q;

static sqlite3_stmt *lite_stmt(store_q *q)
{
    return ((lite_q *)q)->stmt;
}

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

/* The MESH_E* status of an SQLite failure on st. */
static int lite_code(mesh_store *st, int sqlite_rc)
{
    int code = store_map_sqlite_rc(sqlite_rc);
    if (code == MESH_OK)
        code = MESH_EINTERNAL;   /* called on a path that failed for a non-SQLite reason */
    if (code == MESH_EIO && st && store_write_hit_space_limit(st, sqlite_rc))
        code = MESH_ENOSPC;
    return code;
}

int store_sqlite_error(mesh_store *st, mesh_err *err, int sqlite_rc, const char *fmt, ...)
{
    int code = lite_code(st, sqlite_rc);
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
                        st && st->path ? st->path : "?", store_error_hint(st, code));
}

/* ---- statements ----------------------------------------------------------- */

static int lite_prepare(mesh_store *st, const char *sql, store_q **out, mesh_err *err)
{
    *out = NULL;
    lite_q *q = calloc(1, sizeof *q);
    if (!q)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory preparing a store statement");
    q->base.st = st;
    int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q->stmt, NULL);
    if (rc != SQLITE_OK) {
        int code = store_sqlite_error(st, err, rc, "preparing store statement");
        sqlite3_finalize(q->stmt);
        free(q);
        return code;
    }
    *out = &q->base;
    return MESH_OK;
}

int store_sqlite_stmt(mesh_store *st, const char *sql, sqlite3_stmt **out, mesh_err *err)
{
    store_q *q;
    *out = NULL;
    int rc = store_stmt(st, sql, &q, err);
    if (rc == MESH_OK)
        *out = lite_stmt(q);
    return rc;
}

void store_sqlite_stmt_release(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

static void lite_release(store_q *q)
{
    if (q)
        store_sqlite_stmt_release(lite_stmt(q));
}

static void lite_bind_text(store_q *q, int idx, const char *v, int *rc)
{
    if (*rc != STORE_OK)
        return;
    sqlite3_stmt *s = lite_stmt(q);
    int src = v ? sqlite3_bind_text(s, idx, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, idx);
    if (src != SQLITE_OK) {
        store_record_failure(q->st, lite_code(q->st, src), sqlite3_errmsg(q->st->db));
        *rc = STORE_FAILED;
    }
}

static void lite_bind_int64(store_q *q, int idx, int64_t v, int *rc)
{
    if (*rc != STORE_OK)
        return;
    int src = sqlite3_bind_int64(lite_stmt(q), idx, (sqlite3_int64)v);
    if (src != SQLITE_OK) {
        store_record_failure(q->st, lite_code(q->st, src), sqlite3_errmsg(q->st->db));
        *rc = STORE_FAILED;
    }
}

static int lite_step(store_q *q)
{
    int src = sqlite3_step(lite_stmt(q));
    if (src == SQLITE_ROW)
        return STORE_ROW;
    if (src == SQLITE_DONE)
        return STORE_DONE;
    /* The message must be taken now: a reset would replace it. */
    store_record_failure(q->st, lite_code(q->st, src), sqlite3_errmsg(q->st->db));
    if (src == SQLITE_CONSTRAINT_UNIQUE || src == SQLITE_CONSTRAINT_PRIMARYKEY)
        return STORE_UNIQUE;
    if (src == SQLITE_CONSTRAINT_FOREIGNKEY)
        return STORE_FOREIGN_KEY;
    return STORE_FAILED;
}

static int lite_col_is_null(store_q *q, int col)
{
    return sqlite3_column_type(lite_stmt(q), col) == SQLITE_NULL;
}

static int64_t lite_col_int64(store_q *q, int col)
{
    return sqlite3_column_int64(lite_stmt(q), col);
}

static const char *lite_col_text(store_q *q, int col)
{
    return (const char *)sqlite3_column_text(lite_stmt(q), col);
}

static int64_t lite_changes(mesh_store *st)
{
    return sqlite3_changes64(st->db);
}

static void lite_free(store_q *q)
{
    if (q) {
        sqlite3_finalize(lite_stmt(q));
        free(q);
    }
}

/* Runs a cached statement to its end (BEGIN, COMMIT, PRAGMA ...). */
static int lite_exec(mesh_store *st, const char *sql, mesh_err *err)
{
    sqlite3_stmt *s;
    int rc = store_sqlite_stmt(st, sql, &s, err);
    if (rc != MESH_OK)
        return rc;
    int src;
    do
        src = sqlite3_step(s);
    while (src == SQLITE_ROW);
    if (src != SQLITE_DONE)
        rc = store_sqlite_error(st, err, src, "running '%s'", sql);
    store_sqlite_stmt_release(s);
    return rc;
}

static int lite_in_transaction(mesh_store *st)
{
    return !sqlite3_get_autocommit(st->db);
}

static const char SQL_BEGIN_IMMEDIATE[] = "BEGIN IMMEDIATE";
static const char SQL_BEGIN_DEFERRED[] = "BEGIN";

/* BEGIN IMMEDIATE of an outermost write transaction, after passing this
 * process's write gate (store_gate.c). The gate is left again if BEGIN
 * fails; otherwise when the transaction ends (lite_end_tx). Reads take
 * BEGIN DEFERRED: they only need one consistent snapshot. */
static int lite_begin(mesh_store *st, int write, mesh_err *err)
{
    if (!write)
        return lite_exec(st, SQL_BEGIN_DEFERRED, err);
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
    rc = lite_exec(st, SQL_BEGIN_IMMEDIATE, err);
    if (waited > 0)
        sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    if (rc != MESH_OK)
        store_gate_leave(st);
    return rc;
}

static void lite_end_tx(mesh_store *st)
{
    store_gate_leave(st); /* no-op unless this was an outermost write */
}

static const char SQL_DATA_VERSION[] = "PRAGMA data_version";

/* PRAGMA data_version: changes when another connection commits. */
static int64_t lite_data_version(mesh_store *st)
{
    sqlite3_stmt *s;
    if (store_sqlite_stmt(st, SQL_DATA_VERSION, &s, NULL) != MESH_OK)
        return -1;
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    store_sqlite_stmt_release(s);
    return v;
}

const store_backend store_sqlite_backend = {
    .name = "sqlite",
    .prepare = lite_prepare,
    .bind_text = lite_bind_text,
    .bind_int64 = lite_bind_int64,
    .step = lite_step,
    .col_is_null = lite_col_is_null,
    .col_int64 = lite_col_int64,
    .col_text = lite_col_text,
    .release = lite_release,
    .free_q = lite_free,
    .changes = lite_changes,
    .exec = lite_exec,
    .in_transaction = lite_in_transaction,
    .begin = lite_begin,
    .end_tx = lite_end_tx,
    .schema_version = store_sqlite_schema_version,
    .data_version = lite_data_version,
    .close = store_sqlite_close,
};
