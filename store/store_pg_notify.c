/* store/store_pg_notify.c — PostgreSQL change notifications for store_notifier:
 * a libpq connection of its own that LISTENs on STORE_PG_CHANNEL. The store's
 * triggers (migration 6 -> 7) NOTIFY with the changed table's schema as the
 * payload; the server delivers a notification only after its transaction
 * committed, so what woke the reader is already visible to it. Notifications
 * for other schemas (another store in the same database) are ignored. The
 * connection is separate from any store handle because a LISTENing session
 * must stay idle between notifications, and a store handle runs statements. */
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct store_pg_listener {
    char *url;          /* as given (libpq needs its password); never printed */
    char *shown;        /* the URL without its password, for messages */
    char schema[128];   /* current_schema() of the listening session */
    PGconn *conn;
};

static void listener_notice(void *arg, const char *message)
{
    (void)arg;
    log_debug("store", "PostgreSQL (listener): %s", message);
}

static int listener_fail(store_pg_listener *l, mesh_err *err, const char *what, PGresult *res)
{
    char msg[400];
    const char *m = res ? PQresultErrorMessage(res) : NULL;
    if (!m || !m[0])
        m = l->conn ? PQerrorMessage(l->conn) : "no connection";
    snprintf(msg, sizeof msg, "%s", m);
    msg[strcspn(msg, "\n")] = '\0';
    PQclear(res);
    if (l->conn)
        PQfinish(l->conn);
    l->conn = NULL;
    return mesh_err_set(err, MESH_EBUSY,
                        "%s on the PostgreSQL store %s: %s; config changes are noticed by "
                        "polling until it works again",
                        what, l->shown, msg);
}

static int listener_connect(store_pg_listener *l, mesh_err *err)
{
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"5", "meshd-listen", l->url, NULL};
    l->conn = PQconnectdbParams(keys, vals, 1);
    if (!l->conn)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory connecting to %s", l->shown);
    if (PQstatus(l->conn) != CONNECTION_OK)
        return listener_fail(l, err, "cannot connect the change listener", NULL);
    PQsetNoticeProcessor(l->conn, listener_notice, NULL);
    PGresult *res = PQexec(l->conn, "SELECT current_schema()");
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        PQgetisnull(res, 0, 0))
        return listener_fail(l, err, "cannot read the schema of the change listener", res);
    snprintf(l->schema, sizeof l->schema, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = PQexec(l->conn, "LISTEN " STORE_PG_CHANNEL);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
        return listener_fail(l, err, "LISTEN " STORE_PG_CHANNEL " failed", res);
    PQclear(res);
    return MESH_OK;
}

int store_pg_listen_open(const char *url, store_pg_listener **out, mesh_err *err)
{
    *out = NULL;
    store_pg_listener *l = calloc(1, sizeof *l);
    if (!l || !(l->url = strdup(url)) || !(l->shown = store_pg_redact_url(url))) {
        store_pg_listen_close(l);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory opening a change listener");
    }
    int rc = listener_connect(l, err);
    if (rc != MESH_OK) {
        store_pg_listen_close(l);
        return rc;
    }
    *out = l;
    return MESH_OK;
}

int store_pg_listen_fd(const store_pg_listener *l)
{
    return l->conn ? PQsocket(l->conn) : -1;
}

int store_pg_listen_drain(store_pg_listener *l, mesh_err *err)
{
    if (!l->conn)
        return mesh_err_set(err, MESH_EBUSY, "the change listener of %s is not connected",
                            l->shown);
    if (!PQconsumeInput(l->conn) || PQstatus(l->conn) != CONNECTION_OK)
        return listener_fail(l, err, "the change listener lost its connection", NULL);
    int mine = 0;
    PGnotify *n;
    while ((n = PQnotifies(l->conn)) != NULL) {
        if (n->extra && strcmp(n->extra, l->schema) == 0)
            mine = 1;
        PQfreemem(n);
    }
    return mine;
}

int store_pg_listen_reconnect(store_pg_listener *l, mesh_err *err)
{
    if (l->conn)
        PQfinish(l->conn);
    l->conn = NULL;
    int rc = listener_connect(l, err);
    if (rc == MESH_OK)
        log_info("store", "change listener reconnected to %s", l->shown);
    return rc;
}

void store_pg_listen_close(store_pg_listener *l)
{
    if (!l)
        return;
    if (l->conn)
        PQfinish(l->conn);
    free(l->url);
    free(l->shown);
    free(l);
}
