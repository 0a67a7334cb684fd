/* store/store_pg.h — what the PostgreSQL backend's files share
 * (store_pg_stmt.c, store_pg_open.c, store_pg_schema.c), invisible outside
 * store/. */
#ifndef MESH_STORE_STORE_PG_H
#define MESH_STORE_STORE_PG_H

#include <libpq-fe.h>

#include "store/store_internal.h"

/* The transaction-level advisory lock every writer takes: ("MSHD" in ASCII,
 * as SQLite's application_id; the store's schema). Advisory locks are per
 * database; the second key keeps stores in different schemas of one
 * database (staging, production, tests) from waiting for each other. */
#define STORE_PG_WRITE_LOCK "pg_advisory_xact_lock(1297303620, hashtext(current_schema()))"

/* Runs a parameterless statement or script (PQexec). */
int store_pg_run(mesh_store *st, const char *sql, mesh_err *err);
/* Sets err from a failed result (NULL: the connection's error); returns the code. */
int store_pg_error(mesh_store *st, mesh_err *err, const PGresult *res, const char *what);
/* Per-connection settings (lock_timeout, client_min_messages); again after a reconnect. */
int store_pg_session_setup(mesh_store *st, mesh_err *err);
/* The version in meshd_schema; 0 when the table does not exist; -1 on error. */
int store_pg_schema_version(mesh_store *st);
int store_pg_read_schema_version(mesh_store *st, int *version, mesh_err *err);

/* "postgres://user:secret@host/db" -> "postgres://user:***@host/db" (malloc'd). */
char *store_pg_redact_url(const char *url);

/* The channel every store's change triggers NOTIFY (migration 6 -> 7); the
 * payload is the schema of the table that changed, so stores in other
 * schemas of the database are told apart. */
#define STORE_PG_CHANNEL "meshd_changes"

/* The PostgreSQL side of store_notifier (store_pg_notify.c). */
typedef struct store_pg_listener store_pg_listener;
int store_pg_listen_open(const char *url, store_pg_listener **out, mesh_err *err);
int store_pg_listen_fd(const store_pg_listener *l);
int store_pg_listen_drain(store_pg_listener *l, mesh_err *err);
int store_pg_listen_reconnect(store_pg_listener *l, mesh_err *err);
void store_pg_listen_close(store_pg_listener *l);

#endif
