/* store/store_pg_open.c — opening a PostgreSQL store: connecting through
 * libpq to the database a postgres:// URL names, per-connection settings,
 * refusing a database that holds another application's tables or a newer
 * meshd's schema, creating the schema only when asked (meshctl ca init,
 * meshctl --init), and applying pending migrations. The URL's password never
 * reaches a message or a log: the handle keeps the URL without it. */
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* "postgres://user:secret@host/db" -> "postgres://user:***@host/db". */
char *store_pg_redact_url(const char *url)
{
    char *copy = strdup(url);
    if (!copy)
        return NULL;
    char *auth = strstr(copy, "://");
    if (!auth)
        return copy;
    auth += 3;
    char *end = auth + strcspn(auth, "/?");
    char *at = NULL;
    for (char *p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return copy;
    char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (!colon)
        return copy;
    size_t need = (size_t)(colon + 1 - copy) + 3 + strlen(at) + 1;
    char *out = malloc(need);
    if (out)
        snprintf(out, need, "%.*s***%s", (int)(colon + 1 - copy), copy, at);
    free(copy);
    return out;
}

/* Notices (CREATE TABLE IF NOT EXISTS ...) go to our debug log, not stderr. */
static void pg_notice(void *arg, const char *message)
{
    (void)arg;
    log_debug("store", "PostgreSQL: %s", message);
}

int store_pg_session_setup(mesh_store *st, mesh_err *err)
{
    char sql[200];
    /* lock_timeout bounds the wait for another writer's advisory lock (and
     * row locks) as SQLite's busy timeout does; UTC keeps any server-side
     * time formatting stable (the store keeps Unix seconds itself). */
    snprintf(sql, sizeof sql,
             "SET lock_timeout = %d; SET client_min_messages = warning; "
             "SET TIME ZONE 'UTC'",
             STORE_BUSY_TIMEOUT_MS);
    PQsetNoticeProcessor(st->pg, pg_notice, NULL);
    return store_pg_run(st, sql, err);
}

static const char SQL_PEEK[] =
    "SELECT to_regclass('meshd_schema') IS NOT NULL, "
    "(SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
    " ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r')";

/* Is there a meshd store here, another application's tables, or nothing? */
static int pg_inspect(mesh_store *st, int *has_store, int64_t *n_tables, mesh_err *err)
{
    store_q *q;
    int rc = store_stmt(st, SQL_PEEK, &q, err);
    if (rc != MESH_OK)
        return rc;
    int src = store_step(q);
    if (src == STORE_ROW) {
        *has_store = store_col_int(q, 0);
        *n_tables = store_col_int64(q, 1);
    } else {
        rc = store_db_error(st, err, src, "inspecting the database");
    }
    store_stmt_release(q);
    return rc;
}

static int pg_connect(mesh_store *st, const char *url, mesh_err *err)
{
    /* Earlier keywords are defaults the URL's own parameters override. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"5", "meshd", url, NULL};
    st->pg = PQconnectdbParams(keys, vals, 1);
    if (!st->pg)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory connecting to %s", st->path);
    if (PQstatus(st->pg) != CONNECTION_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(st->pg));
        msg[strcspn(msg, "\n")] = '\0';
        return mesh_err_set(err, MESH_EBUSY,
                            "cannot connect to the PostgreSQL store %s: %s; check that the "
                            "server runs and the URL's host, port, user and database",
                            st->path, msg);
    }
    return store_pg_session_setup(st, err);
}

int store_pg_open(mesh_store *st, const char *url, int create, mesh_err *err)
{
    if (!(st->path = store_pg_redact_url(url)))
        return mesh_err_set(err, MESH_ENOMEM, "out of memory opening a PostgreSQL store");
    int rc = pg_connect(st, url, err);
    int has_store = 0;
    int64_t n_tables = 0;
    if (rc == MESH_OK)
        rc = pg_inspect(st, &has_store, &n_tables, err);
    if (rc != MESH_OK)
        return rc;
    if (!has_store && n_tables > 0)
        return mesh_err_set(err, MESH_EINVAL,
                            "PostgreSQL database %s holds %lld tables but no meshd store "
                            "(no meshd_schema table); refusing to add meshd's tables to "
                            "another application's database: give meshd a database of its own",
                            st->path, (long long)n_tables);
    if (!has_store && !create)
        return mesh_err_set(err, MESH_ENOTFOUND,
                            "PostgreSQL database %s holds no meshd store; check the --db URL, "
                            "or create a new store with 'meshctl ca init --db %s "
                            "--key-dir DIR --trust-domain <your.domain>'",
                            st->path, st->path);
    int v = 0;
    if ((rc = store_pg_read_schema_version(st, &v, err)) != MESH_OK)
        return rc;
    if (v > store_latest_schema_version())
        return mesh_err_set(err, MESH_EINVAL,
                            "store %s has schema version %d, newer than this meshd knows (%d); "
                            "run the newer meshd, or restore a dump made before it upgraded",
                            st->path, v, store_latest_schema_version());
    if ((rc = store_pg_migrate(st, err)) != MESH_OK)
        return rc;
    st->last_check = "none";   /* PostgreSQL checks its own pages (data_checksums) */
    return MESH_OK;
}
