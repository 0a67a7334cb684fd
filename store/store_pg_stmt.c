/* store/store_pg_stmt.c — the PostgreSQL side of the store's backend
 * boundary, through libpq: statements ("?N" placeholders rewritten to "$N"
 * once per handle and cached; run with PQexecParams and typed parameters),
 * columns, SQLSTATE to MESH_E* mapping, transactions (a write transaction
 * takes a transaction-level advisory lock, so writers are serialised as
 * SQLite's BEGIN IMMEDIATE serialises them) and statement-level atomicity
 * inside a transaction (each write statement runs in its own savepoint, so a
 * failed one undoes itself and leaves the transaction usable, as in SQLite).
 * A lost connection is re-established before the next statement outside a
 * transaction. docs/store.md says why each choice. */
#include "store/store_pg.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

/* Parameter type OIDs (pg_type.h is a server header; these are fixed). */
#define PG_OID_BOOL 16
#define PG_OID_INT8 20
#define PG_OID_TEXT 25

#define PG_MAX_PARAMS 16

typedef struct pg_q {
    store_q base;
    char *text;                     /* the SQL with $N placeholders */
    int write;                      /* INSERT/UPDATE/DELETE (runs in a savepoint inside a tx) */
    int n_params;                   /* the highest N of ?N */
    const char *vals[PG_MAX_PARAMS];
    unsigned int types[PG_MAX_PARAMS];
    char ints[PG_MAX_PARAMS][24];   /* text form of bound integers */
    PGresult *res;                  /* rows of the current run, NULL before the first step */
    int row, n_rows;
} pg_q;

static pg_q *pq(store_q *q)
{
    return (pg_q *)q;
}

/* ---- errors --------------------------------------------------------------- */

static int pg_code_of_sqlstate(const char *state)
{
    if (!state || strlen(state) != 5)
        return MESH_EBUSY; /* no SQLSTATE: the connection failed */
    if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
        strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
        strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
        strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 ||
        strcmp(state, "53300") == 0)
        return MESH_EBUSY;  /* unreachable, shutting down, serialisation, lock or time out */
    if (strcmp(state, "53100") == 0)
        return MESH_ENOSPC;
    if (strcmp(state, "53200") == 0)
        return MESH_ENOMEM;
    if (strncmp(state, "XX00", 4) == 0)
        return MESH_ECORRUPT;
    if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)
        return MESH_EINVAL;
    if (strncmp(state, "58", 2) == 0)
        return MESH_EIO;
    return MESH_EINTERNAL;
}

/* Records the failure of res (NULL: the connection's) and returns the step code. */
static int pg_fail(mesh_store *st, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !msg[0])
        msg = PQerrorMessage(st->pg);
    char clean[512];
    snprintf(clean, sizeof clean, "%s", msg && msg[0] ? msg : "PostgreSQL gave no message");
    size_t n = strlen(clean);
    while (n > 0 && isspace((unsigned char)clean[n - 1]))
        clean[--n] = '\0';
    int code = PQstatus(st->pg) == CONNECTION_BAD ? MESH_EBUSY : pg_code_of_sqlstate(state);
    store_record_failure(st, code, clean);
    if (state && strcmp(state, "23505") == 0)
        return STORE_UNIQUE;
    if (state && strcmp(state, "23503") == 0)
        return STORE_FOREIGN_KEY;
    return STORE_FAILED;
}

int store_pg_error(mesh_store *st, mesh_err *err, const PGresult *res, const char *what)
{
    pg_fail(st, res);
    return mesh_err_set(err, st->last_code, "%s: %s (store %s)%s", what, st->last_msg, st->path,
                        store_error_hint(st, st->last_code));
}

/* ---- connection ----------------------------------------------------------- */

/* Outside a transaction, a connection that broke (server restart, network)
 * is re-established before the next statement: meshd recovers by itself.
 * Inside one, the transaction is lost anyway and the statement fails. */
static void pg_revive(mesh_store *st)
{
    if (PQstatus(st->pg) != CONNECTION_BAD || PQtransactionStatus(st->pg) != PQTRANS_UNKNOWN)
        return;
    PQreset(st->pg);
    if (PQstatus(st->pg) == CONNECTION_OK) {
        log_info("store", "reconnected to PostgreSQL store %s", st->path);
        (void)store_pg_session_setup(st, NULL);
    }
}

int store_pg_run(mesh_store *st, const char *sql, mesh_err *err)
{
    pg_revive(st);
    PGresult *res = PQexec(st->pg, sql);
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = MESH_OK;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        char what[160];
        snprintf(what, sizeof what, "running '%.100s'", sql);
        rc = store_pg_error(st, err, res, what);
    }
    PQclear(res);
    return rc;
}

/* ---- statements ----------------------------------------------------------- */

/* "?N" -> "$N" outside string literals and quoted names. */
static char *pg_translate(const char *sql, int *n_params, int *bad)
{
    size_t len = strlen(sql);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    char quote = 0;
    size_t o = 0;
    *n_params = 0;
    *bad = 0;
    for (size_t i = 0; i < len; i++) {
        char c = sql[i];
        if (quote) {
            if (c == quote)
                quote = 0;
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '?') {
            if (!isdigit((unsigned char)sql[i + 1])) {
                *bad = 1;   /* an unnumbered "?": the shared SQL always numbers them */
            } else {
                int n = atoi(sql + i + 1);
                if (n > *n_params)
                    *n_params = n;
            }
            c = '$';
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

static int pg_prepare(mesh_store *st, const char *sql, store_q **out, mesh_err *err)
{
    *out = NULL;
    pg_q *q = calloc(1, sizeof *q);
    int bad = 0;
    if (!q || !(q->text = pg_translate(sql, &q->n_params, &bad))) {
        free(q);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory preparing a store statement");
    }
    if (bad || q->n_params > PG_MAX_PARAMS) {
        free(q->text);
        free(q);
        return mesh_err_set(err, MESH_EINTERNAL,
                            "store statement '%.80s' has unnumbered or more than %d parameters",
                            sql, PG_MAX_PARAMS);
    }
    q->base.st = st;
    const char *p = sql;
    while (isspace((unsigned char)*p))
        p++;
    q->write = strncasecmp(p, "INSERT", 6) == 0 || strncasecmp(p, "UPDATE", 6) == 0 ||
               strncasecmp(p, "DELETE", 6) == 0;
    *out = &q->base;
    return MESH_OK;
}

static void pg_release(store_q *base)
{
    pg_q *q = pq(base);
    PQclear(q->res);
    q->res = NULL;
    q->row = q->n_rows = 0;
    for (int i = 0; i < PG_MAX_PARAMS; i++) {
        q->vals[i] = NULL;
        q->types[i] = 0;
    }
}

static void pg_free(store_q *base)
{
    if (!base)
        return;
    pg_release(base);
    free(pq(base)->text);
    free(base);
}

static int pg_bind_slot(pg_q *q, int idx, int *rc)
{
    if (*rc != STORE_OK)
        return 0;
    if (idx < 1 || idx > q->n_params) {
        store_record_failure(q->base.st, MESH_EINTERNAL, "parameter index out of range");
        *rc = STORE_FAILED;
        return 0;
    }
    return 1;
}

static void pg_bind_text(store_q *base, int idx, const char *v, int *rc)
{
    pg_q *q = pq(base);
    if (!pg_bind_slot(q, idx, rc))
        return;
    q->vals[idx - 1] = v;   /* the caller keeps v alive until the step, as with SQLite */
    q->types[idx - 1] = PG_OID_TEXT;
}

static void pg_bind_int64(store_q *base, int idx, int64_t v, int *rc)
{
    pg_q *q = pq(base);
    if (!pg_bind_slot(q, idx, rc))
        return;
    snprintf(q->ints[idx - 1], sizeof q->ints[idx - 1], "%lld", (long long)v);
    q->vals[idx - 1] = q->ints[idx - 1];
    q->types[idx - 1] = PG_OID_INT8;
}

static const char SQL_STMT_SAVEPOINT[] = "SAVEPOINT store_stmt";
static const char SQL_STMT_RELEASE[] = "RELEASE SAVEPOINT store_stmt";
static const char SQL_STMT_UNDO[] = "ROLLBACK TO SAVEPOINT store_stmt; RELEASE SAVEPOINT store_stmt";

/* Runs q once: the first store_step after binding. */
static int pg_execute(pg_q *q)
{
    mesh_store *st = q->base.st;
    pg_revive(st);
    int guarded = q->write && PQtransactionStatus(st->pg) == PQTRANS_INTRANS;
    if (guarded && store_pg_run(st, SQL_STMT_SAVEPOINT, NULL) != MESH_OK)
        return STORE_FAILED;
    /* An unbound parameter is NULL, as in SQLite; typed text so that one a
     * query does not use (?1 of SQL_CERT_LIST_ALL) still has a type. */
    for (int i = 0; i < q->n_params; i++)
        if (!q->types[i])
            q->types[i] = PG_OID_TEXT;
    q->res = PQexecParams(st->pg, q->text, q->n_params, q->types, q->vals, NULL, NULL, 0);
    ExecStatusType s = q->res ? PQresultStatus(q->res) : PGRES_FATAL_ERROR;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        int src = pg_fail(st, q->res);
        PQclear(q->res);
        q->res = NULL;
        if (guarded) {
            /* Keep the message of the statement, not of the undo. */
            int code = st->last_code;
            char msg[sizeof st->last_msg];
            memcpy(msg, st->last_msg, sizeof msg);
            (void)store_pg_run(st, SQL_STMT_UNDO, NULL);
            store_record_failure(st, code, msg);
        }
        return src;
    }
    if (guarded && store_pg_run(st, SQL_STMT_RELEASE, NULL) != MESH_OK)
        return STORE_FAILED;
    const char *tuples = PQcmdTuples(q->res);
    st->last_changes = tuples && tuples[0] ? strtoll(tuples, NULL, 10) : 0;
    q->n_rows = s == PGRES_TUPLES_OK ? PQntuples(q->res) : 0;
    q->row = -1;
    return STORE_OK;
}

static int pg_step(store_q *base)
{
    pg_q *q = pq(base);
    if (!q->res) {
        int src = pg_execute(q);
        if (src != STORE_OK)
            return src;
    }
    if (q->row + 1 < q->n_rows) {
        q->row++;
        return STORE_ROW;
    }
    q->row = q->n_rows;
    return STORE_DONE;
}

static int pg_has_row(pg_q *q, int col)
{
    return q->res && q->row >= 0 && q->row < q->n_rows && col >= 0 && col < PQnfields(q->res);
}

static int pg_col_is_null(store_q *base, int col)
{
    pg_q *q = pq(base);
    return !pg_has_row(q, col) || PQgetisnull(q->res, q->row, col);
}

static int64_t pg_col_int64(store_q *base, int col)
{
    pg_q *q = pq(base);
    if (pg_col_is_null(base, col))
        return 0;
    const char *v = PQgetvalue(q->res, q->row, col);
    if (PQftype(q->res, col) == PG_OID_BOOL)
        return v[0] == 't';   /* a comparison in the select list: SQLite gives 0/1 */
    return strtoll(v, NULL, 10);
}

static const char *pg_col_text(store_q *base, int col)
{
    pg_q *q = pq(base);
    if (pg_col_is_null(base, col))
        return NULL;
    return PQgetvalue(q->res, q->row, col);
}

static int64_t pg_changes(mesh_store *st)
{
    return st->last_changes;
}

static int pg_in_transaction(mesh_store *st)
{
    PGTransactionStatusType t = PQtransactionStatus(st->pg);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* Every writer of the store, in any process or replica, takes this lock
 * first: writes are serialised exactly as SQLite's single writer lock
 * serialises them, so the per-table read-then-write logic stays correct.
 * Waiting is bounded by lock_timeout (STORE_BUSY_TIMEOUT_MS): MESH_EBUSY. */
static const char SQL_BEGIN_WRITE[] =
    "BEGIN; SELECT " STORE_PG_WRITE_LOCK;
/* A read sees one snapshot for the whole call, like SQLite's deferred read. */
static const char SQL_BEGIN_READ[] = "BEGIN ISOLATION LEVEL REPEATABLE READ";

static int pg_begin(mesh_store *st, int write, mesh_err *err)
{
    int rc = store_pg_run(st, write ? SQL_BEGIN_WRITE : SQL_BEGIN_READ, err);
    if (rc != MESH_OK && pg_in_transaction(st))
        (void)store_pg_run(st, "ROLLBACK", NULL);
    return rc;
}

static void pg_end_tx(mesh_store *st)
{
    (void)st;
}

static int pg_exec(mesh_store *st, const char *sql, mesh_err *err)
{
    return store_pg_run(st, sql, err);
}

/* Until LISTEN/NOTIFY (the next step): the server's snapshot changes
 * whenever any transaction of the cluster got an id or finished, so a commit
 * by anyone is never missed; it may also change for commits elsewhere in the
 * cluster, which only costs the watcher a pass that finds nothing new. */
static const char SQL_SNAPSHOT[] = "SELECT pg_current_snapshot()::text";

static int64_t pg_data_version(mesh_store *st)
{
    store_q *q;
    if (store_stmt(st, SQL_SNAPSHOT, &q, NULL) != MESH_OK)
        return -1;
    int64_t v = -1;
    if (store_step(q) == STORE_ROW) {
        const char *snap = store_col_text(q, 0);
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */
        for (const char *p = snap ? snap : ""; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        v = (int64_t)(h >> 1);
    }
    store_stmt_release(q);
    return v;
}

static void pg_close(mesh_store *st)
{
    store_stmt_cache_free(st);
    if (st->pg)
        PQfinish(st->pg);
    st->pg = NULL;
}

const store_backend store_pg_backend = {
    .name = "postgres",
    .prepare = pg_prepare,
    .bind_text = pg_bind_text,
    .bind_int64 = pg_bind_int64,
    .step = pg_step,
    .col_is_null = pg_col_is_null,
    .col_int64 = pg_col_int64,
    .col_text = pg_col_text,
    .release = pg_release,
    .free_q = pg_free,
    .changes = pg_changes,
    .exec = pg_exec,
    .in_transaction = pg_in_transaction,
    .begin = pg_begin,
    .end_tx = pg_end_tx,
    .schema_version = store_pg_schema_version,
    .data_version = pg_data_version,
    .close = pg_close,
};
