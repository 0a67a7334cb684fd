/* store/store_internal.h — what the store's .c files share and nobody else sees:
 * the handle layout, the backend boundary (a small statement layer with an
 * SQLite and a PostgreSQL implementation), error mapping, binding/column
 * helpers and the "one operation = one transaction" helpers. */
#ifndef MESH_STORE_STORE_INTERNAL_H
#define MESH_STORE_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "store/store.h"

/* PRAGMA application_id of a meshd store: "MSHD" in ASCII. Lets store_open
 * refuse another program's SQLite file instead of adding tables to it. */
#define STORE_APPLICATION_ID 0x4D534844

/* How long a writer waits for another process's write lock before giving up
 * with MESH_EBUSY. */
#define STORE_BUSY_TIMEOUT_MS 5000

/* The in-process write gate of one database file (store_gate.c). */
typedef struct store_gate store_gate;

/* One prepared statement of either backend. Each backend's statement struct
 * begins with this, so the per-table files hold a store_q * and never see
 * sqlite3_stmt or PGresult (docs/store.md, "The backend boundary"). */
typedef struct store_q {
    mesh_store *st;
} store_q;

/* What store_step and the binding helpers report, backend-neutral. On
 * STORE_FAILED (and on the two constraint codes) the backend has recorded
 * the MESH_E* status and the server's message in the handle, for
 * store_db_error. */
enum store_step_rc {
    STORE_OK = 0,       /* binding succeeded */
    STORE_ROW,          /* a result row is ready */
    STORE_DONE,         /* the statement ran to completion */
    STORE_UNIQUE,       /* a UNIQUE or PRIMARY KEY constraint refused the row */
    STORE_FOREIGN_KEY,  /* a FOREIGN KEY constraint refused the row */
    STORE_FAILED,       /* anything else: see st->last_code / st->last_msg */
};

/* The operations a backend provides (store_sqlite_stmt.c, store_pg_stmt.c).
 * SQL text is one string for both where the dialects agree: "?N"
 * placeholders, which the PostgreSQL backend rewrites to "$N". */
typedef struct store_backend {
    const char *name;   /* "sqlite" or "postgres" */
    int (*prepare)(mesh_store *st, const char *sql, store_q **out, mesh_err *err);
    void (*bind_text)(store_q *q, int idx, const char *v, int *rc);
    void (*bind_int64)(store_q *q, int idx, int64_t v, int *rc);
    int (*step)(store_q *q);
    int (*col_is_null)(store_q *q, int col);
    int64_t (*col_int64)(store_q *q, int col);
    const char *(*col_text)(store_q *q, int col);   /* NULL for SQL NULL */
    void (*release)(store_q *q);                    /* reset for reuse */
    void (*free_q)(store_q *q);                     /* when the handle closes */
    int64_t (*changes)(mesh_store *st);             /* rows the last statement changed */
    /* A statement without parameters or rows, or a script of several. */
    int (*exec)(mesh_store *st, const char *sql, mesh_err *err);
    int (*in_transaction)(mesh_store *st);          /* a transaction is open (maybe failed) */
    /* Outermost transactions: write = serialised with every other writer
     * of the store (SQLite: BEGIN IMMEDIATE after the write gate;
     * PostgreSQL: BEGIN plus a transaction-level advisory lock), read =
     * one consistent snapshot. */
    int (*begin)(mesh_store *st, int write, mesh_err *err);
    void (*end_tx)(mesh_store *st);                 /* after COMMIT/ROLLBACK of an outermost tx */
    int (*schema_version)(mesh_store *st);
    int64_t (*data_version)(mesh_store *st);
    void (*close)(mesh_store *st);
} store_backend;

extern const store_backend store_sqlite_backend;
extern const store_backend store_pg_backend;

typedef struct store_cached_stmt {
    const char *sql;      /* key: the address of a static SQL string */
    store_q *q;           /* the backend's statement */
} store_cached_stmt;

struct mesh_store {
    const store_backend *be;
    sqlite3 *db;                /* SQLite backend */
    struct pg_conn *pg;         /* PostgreSQL backend: libpq's PGconn */
    char *path;                 /* as given to store_open (a PostgreSQL URL keeps no password) */
    int in_tx;                  /* inside store_begin .. store_commit/rollback */
    int op_depth;               /* nesting of store_op_begin (savepoints inside a user tx) */
    int64_t tx_config_version;  /* config version already bumped in this user tx, 0 = none */
    store_cached_stmt *stmts;   /* prepared once per handle, reused (issuance is a hot path) */
    size_t n_stmts, cap_stmts;
    int64_t last_changes;       /* rows changed by the last statement (PostgreSQL) */
    int last_code;              /* MESH_E* of the last failed statement */
    char last_msg[512];         /* its message from the database */
    store_gate *gate;           /* shared with this process's other handles on the file; may be NULL */
    int gate_held;              /* this handle is inside the gate (an explicit write transaction) */
    /* Integrity (store_sqlite_*.c): the witness file beside the database. */
    int witness_fd;             /* open on "<path>-witness"; -1 if none */
    int session_held;           /* holds the witness's session lock (shared) */
    pid_t opener_pid;           /* a fork()ed child leaves the locks and the witness alone */
    int open_ok;                /* store_open succeeded: a close may be recorded as clean */
    char store_id[33];          /* store_integrity.store_id; "" until bound */
    int64_t witnessed_seq;      /* the highest mark this handle knows the witness holds */
    int witness_warned;         /* a failed witness update was logged once */
    int marked_in_use;          /* the witness was marked "in use" before our first commit */
    const char *last_check;     /* what store_open ran: "integrity_check", "quick_check", "none" */
};

/* ---- errors ----------------------------------------------------------------- */
/* After a failed store_step (src is its result): writes "<context>: <database
 * message> (store <path>)<advice>" into err and returns the MESH_E* status
 * the backend recorded (MESH_EINVAL for constraint failures). */
int store_db_error(mesh_store *st, mesh_err *err, int src, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* What an operator should do about a class of failure ("" if nothing). */
const char *store_error_hint(const mesh_store *st, int code);
/* Records a failure for store_db_error (backends call it). */
void store_record_failure(mesh_store *st, int code, const char *msg);

/* ---- SQLite only (store_sqlite_stmt.c) ---------------------------------------- */
/* Maps an SQLite result code to a MESH_E* status. */
int store_map_sqlite_rc(int sqlite_rc);
/* store_db_error for an SQLite result code (the sqlite-only files). */
int store_sqlite_error(mesh_store *st, mesh_err *err, int sqlite_rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Did a failed write (extended SQLite code) fail for lack of space: a full
 * file system or the file size limit? Then it is MESH_ENOSPC, not EIO. */
int store_write_hit_space_limit(const mesh_store *st, int sqlite_rc);
/* The raw SQLite statement behind the cache, for the sqlite-only files. */
int store_sqlite_stmt(mesh_store *st, const char *sql, sqlite3_stmt **out, mesh_err *err);
void store_sqlite_stmt_release(sqlite3_stmt *s);

/* ---- statements (either backend) ---------------------------------------------- */
/* Returns a ready-to-bind statement for sql (a static string: the cache is keyed
 * by its address). Release it with store_stmt_release once done so it does not
 * keep a read snapshot open. */
int store_stmt(mesh_store *st, const char *sql, store_q **out, mesh_err *err);
void store_stmt_release(store_q *q);
void store_stmt_cache_free(mesh_store *st);
/* The cache itself, for backends: the entry for sql, or NULL. */
store_q *store_stmt_cached(mesh_store *st, const char *sql);
int store_stmt_cache_add(mesh_store *st, const char *sql, store_q *q);

/* Runs a statement without parameters or result rows (BEGIN, SAVEPOINT, ...). */
int store_exec(mesh_store *st, const char *sql, mesh_err *err);

/* Binding helpers keep the first failure in *rc (STORE_OK until then), so a
 * run of binds is checked once. A NULL string binds SQL NULL. */
void store_bind_text(store_q *q, int idx, const char *v, int *rc);
void store_bind_int64(store_q *q, int idx, int64_t v, int *rc);
int store_step(store_q *q);
int store_col_is_null(store_q *q, int col);
int64_t store_col_int64(store_q *q, int col);
int store_col_int(store_q *q, int col);
const char *store_col_text(store_q *q, int col);
int64_t store_changes(mesh_store *st);

/* Copies a text column (NULL column -> ""). On allocation failure returns NULL
 * and sets *rc to MESH_ENOMEM; *rc is left alone otherwise. */
char *store_col_dup(store_q *q, int col, int *rc);

/* ---- transactions ----------------------------------------------------------- */
/* Brackets one store call that runs several statements. Outside store_begin it
 * is its own transaction (BEGIN IMMEDIATE for writes so the write lock is taken
 * up front and the busy timeout applies; BEGIN DEFERRED for reads, which only
 * need one consistent snapshot). Inside store_begin it is a savepoint, so a
 * failed call undoes only itself. store_op_end commits on rc == MESH_OK, rolls
 * back otherwise, and returns the final status. */
int store_op_begin(mesh_store *st, int write, mesh_err *err);
int store_op_end(mesh_store *st, int rc, mesh_err *err);

/* ---- in-process write gate (store_gate.c) ------------------------------------ */
/* Threads of one process that write the same file queue here instead of
 * polling SQLite's lock with sleeps; other processes still meet SQLite's
 * busy timeout. attach (after the file is open) and detach (on close) never
 * fail: without a gate a handle simply relies on SQLite alone. enter is
 * called before BEGIN IMMEDIATE of an outermost write transaction and
 * reports how long it waited (so SQLite's own wait can be shortened to keep
 * the total within STORE_BUSY_TIMEOUT_MS); MESH_EBUSY after that timeout.
 * leave is called once the transaction is committed or rolled back; it is a
 * no-op when the handle is not inside. */
void store_gate_attach(mesh_store *st);
void store_gate_detach(mesh_store *st);
int store_gate_enter(mesh_store *st, int64_t *waited_ms, mesh_err *err);
void store_gate_leave(mesh_store *st);

/* ---- schema ----------------------------------------------------------------- */
/* Applies pending migrations, each in its own write transaction that re-reads
 * the schema version so concurrent openers apply each migration once
 * (store_schema.c: SQLite; store_pg_schema.c: PostgreSQL). */
int store_sqlite_migrate(mesh_store *st, mesh_err *err);
void store_sqlite_close(mesh_store *st);
int store_sqlite_schema_version(mesh_store *st);
int store_pg_migrate(mesh_store *st, mesh_err *err);

/* ---- opening (store_sqlite_open.c, store_pg_open.c) ----------------------------- */
int store_sqlite_open(mesh_store *st, int create, mesh_err *err);
int store_pg_open(mesh_store *st, const char *url, int create, mesh_err *err);
/* Does this --db value name a PostgreSQL database (postgres:// or postgresql://)? */
int store_is_pg_url(const char *db);
/* The file an SQLite --db value names ("sqlite:///p" -> "/p", a path is
 * itself; *path_out points into db); MESH_EINVAL for another scheme. */
int store_sqlite_path_of(const char *db, const char **path_out, mesh_err *err);

/* ---- input checks ----------------------------------------------------------- */
/* Non-empty string; otherwise MESH_EINVAL naming the field. */
int store_require(const char *value, const char *field, mesh_err *err);
/* Lowercase hex of length min_len..max_len; otherwise MESH_EINVAL. */
int store_require_hex(const char *value, const char *field, size_t min_len, size_t max_len,
                      mesh_err *err);

/* Non-empty, "spiffe://" prefix, at most 2048 bytes. Full SPIFFE ID parsing is
 * ca/spiffe_id.h's job; this only keeps obvious garbage out of the tables. */
int store_require_spiffe_id(const char *value, const char *field, mesh_err *err);

/* Formats Unix seconds as "2026-11-25T10:00:00Z" for messages. */
void store_fmt_time(int64_t t, char out[32]);

/* ---- certificate rows (store_cert.c) ------------------------------------------ */
/* The columns store_cert_read_row expects, in order. */
#define STORE_CERT_COLUMNS                                                                 \
    "serial_hex, spiffe_id, pubkey_sha256, not_before, not_after, issued_at, ca_id, "    \
    "revoked, revoked_at, revoke_reason, cert_pem, instance"
int store_cert_read_row(store_q *s, store_cert *out);
/* Steps s (bound; brc = the binding result) to the end, collecting rows of
 * STORE_CERT_COLUMNS, and releases it. */
int store_cert_collect(mesh_store *st, store_q *s, int brc, store_cert **out,
                       size_t *n_out, mesh_err *err);

/* Dynamic array growth for list results: ensures room for one more element. */
int store_grow(void **arr, size_t *cap, size_t n, size_t elem_size);

#endif
