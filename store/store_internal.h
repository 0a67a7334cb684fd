/* store/store_internal.h — what the store's .c files share and nobody else sees:
 * the handle layout, the prepared-statement cache, SQLite error mapping,
 * binding/column helpers and the "one operation = one transaction" helpers. */
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

typedef struct store_cached_stmt {
    const char *sql;      /* key: the address of a static SQL string */
    sqlite3_stmt *stmt;
} store_cached_stmt;

struct mesh_store {
    sqlite3 *db;
    char *path;
    int in_tx;                  /* inside store_begin .. store_commit/rollback */
    int op_depth;               /* nesting of store_op_begin (savepoints inside a user tx) */
    int64_t tx_config_version;  /* config version already bumped in this user tx, 0 = none */
    store_cached_stmt *stmts;   /* prepared once per handle, reused (issuance is a hot path) */
    size_t n_stmts, cap_stmts;
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
/* Maps an SQLite result code to a MESH_E* status and writes "<context>: <sqlite
 * message> (store <path>)" into err. Returns the status. */
int store_db_error(mesh_store *st, mesh_err *err, int sqlite_rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int store_map_sqlite_rc(int sqlite_rc);
/* Did a failed write (extended SQLite code) fail for lack of space: a full
 * file system or the file size limit? Then it is MESH_ENOSPC, not EIO. */
int store_write_hit_space_limit(const mesh_store *st, int sqlite_rc);

/* ---- statements ------------------------------------------------------------- */
/* Returns a ready-to-bind statement for sql (a static string: the cache is keyed
 * by its address). Release it with store_stmt_release once done so it does not
 * keep a read snapshot open. */
int store_stmt(mesh_store *st, const char *sql, sqlite3_stmt **out, mesh_err *err);
void store_stmt_release(sqlite3_stmt *s);
void store_stmt_cache_free(mesh_store *st);

/* Runs a statement without parameters or result rows (BEGIN, SAVEPOINT, ...). */
int store_exec(mesh_store *st, const char *sql, mesh_err *err);

/* Binding helpers keep the first failure in *rc (an SQLite code), so a run of
 * binds is checked once. A NULL string binds SQL NULL. */
void store_bind_text(sqlite3_stmt *s, int idx, const char *v, int *rc);
void store_bind_int64(sqlite3_stmt *s, int idx, int64_t v, int *rc);

/* Copies a text column (NULL column -> ""). On allocation failure returns NULL
 * and sets *rc to MESH_ENOMEM; *rc is left alone otherwise. */
char *store_col_dup(sqlite3_stmt *s, int col, int *rc);

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
/* Applies pending migrations, each in its own BEGIN IMMEDIATE transaction that
 * re-reads user_version so concurrent openers apply each migration once. */
int store_migrate(mesh_store *st, mesh_err *err);

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
int store_cert_read_row(sqlite3_stmt *s, store_cert *out);
/* Steps s (bound; brc = the binding result) to the end, collecting rows of
 * STORE_CERT_COLUMNS, and releases it. */
int store_cert_collect(mesh_store *st, sqlite3_stmt *s, int brc, store_cert **out,
                       size_t *n_out, mesh_err *err);

/* Dynamic array growth for list results: ensures room for one more element. */
int store_grow(void **arr, size_t *cap, size_t n, size_t elem_size);

#endif
