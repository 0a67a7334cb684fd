/* store/store_replica.c — the meshd replicas of one store (table replicas, migration
 * 6 -> 7): registration at start (which also clears the proxy rows a previous run
 * of the same instance left "connected"), heartbeats, a clean stop, and the list
 * `meshctl replicas` shows. store_proxy.c reads a row held by a replica that went
 * quiet as not connected. */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

static const char SQL_REPLICA_UPSERT[] =
    "INSERT INTO replicas (id, address, pid, started, heartbeat, stopped) "
    "VALUES (?1, ?2, ?3, ?4, ?4, 0) "
    "ON CONFLICT (id) DO UPDATE SET address = ?2, pid = ?3, started = ?4, heartbeat = ?4, "
    "  stopped = 0";
static const char SQL_REPLICA_CLEAR_PROXIES[] =
    "UPDATE proxies SET connected = 0 WHERE meshd_instance = ?1 AND connected <> 0";
static const char SQL_REPLICA_HEARTBEAT[] =
    "UPDATE replicas SET heartbeat = ?2 WHERE id = ?1 AND stopped = 0";
static const char SQL_REPLICA_STOP[] =
    "UPDATE replicas SET heartbeat = ?2, stopped = ?2 WHERE id = ?1";
static const char SQL_REPLICA_LIST[] =
    "SELECT id, address, pid, started, heartbeat, stopped FROM replicas ORDER BY id";

static int run_id_now(mesh_store *st, const char *sql, const char *id, int64_t now,
                      const char *what, mesh_err *err)
{
    store_q *s;
    int rc = store_stmt(st, sql, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, id, &brc);
    if (now >= 0)
        store_bind_int64(s, 2, now, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "%s of meshd replica %s", what, id);
    store_stmt_release(s);
    return rc;
}

int store_replica_register(mesh_store *st, const char *id, const char *address, int64_t pid,
                           int starting, int64_t now, mesh_err *err)
{
    int rc = store_require(id, "replica id", err);
    if (rc != MESH_OK)
        return rc;
    if ((rc = store_op_begin(st, 1, err)) != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_REPLICA_UPSERT, &s, err);
    if (rc == MESH_OK) {
        int brc = STORE_OK;
        store_bind_text(s, 1, id, &brc);
        store_bind_text(s, 2, address ? address : "", &brc);
        store_bind_int64(s, 3, pid, &brc);
        store_bind_int64(s, 4, now, &brc);
        int src = brc == STORE_OK ? store_step(s) : brc;
        if (src != STORE_DONE)
            rc = store_db_error(st, err, src, "registering meshd replica %s", id);
        store_stmt_release(s);
    }
    if (rc == MESH_OK && starting)
        rc = run_id_now(st, SQL_REPLICA_CLEAR_PROXIES, id, -1,
                        "clearing the proxy rows of an earlier run", err);
    return store_op_end(st, rc, err);
}

int store_replica_heartbeat(mesh_store *st, const char *id, int64_t now, mesh_err *err)
{
    int rc = store_require(id, "replica id", err);
    if (rc == MESH_OK)
        rc = run_id_now(st, SQL_REPLICA_HEARTBEAT, id, now, "recording the heartbeat", err);
    if (rc == MESH_OK && store_changes(st) == 0)
        rc = mesh_err_set(err, MESH_ENOTFOUND,
                          "meshd replica %s is not registered in store %s (its row was "
                          "removed or marked stopped); registering it again",
                          id, store_path(st));
    return rc;
}

int store_replica_stop(mesh_store *st, const char *id, int64_t now, mesh_err *err)
{
    int rc = store_require(id, "replica id", err);
    if (rc == MESH_OK)
        rc = run_id_now(st, SQL_REPLICA_STOP, id, now, "recording the stop", err);
    return rc;
}

int store_replica_list(mesh_store *st, store_replica **out, size_t *n_out, mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    store_q *s;
    int rc = store_op_begin(st, 0, err);
    if (rc != MESH_OK)
        return rc;
    rc = store_stmt(st, SQL_REPLICA_LIST, &s, err);
    if (rc != MESH_OK)
        return store_op_end(st, rc, err);
    size_t cap = 0;
    int src;
    while ((src = store_step(s)) == STORE_ROW) {
        if (store_grow((void **)out, &cap, *n_out, sizeof **out) != MESH_OK) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing replicas");
            break;
        }
        store_replica *r = &(*out)[*n_out];
        memset(r, 0, sizeof *r);
        int crc = MESH_OK;
        r->id = store_col_dup(s, 0, &crc);
        r->address = store_col_dup(s, 1, &crc);
        r->pid = store_col_int64(s, 2);
        r->started = store_col_int64(s, 3);
        r->heartbeat = store_col_int64(s, 4);
        r->stopped = store_col_int64(s, 5);
        (*n_out)++;
        if (crc != MESH_OK) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing replicas");
            break;
        }
    }
    if (rc == MESH_OK && src != STORE_DONE)
        rc = store_db_error(st, err, src, "listing meshd replicas");
    store_stmt_release(s);
    rc = store_op_end(st, rc, err);
    if (rc != MESH_OK) {
        store_replica_free_list(*out, *n_out);
        *out = NULL;
        *n_out = 0;
    }
    return rc;
}

void store_replica_free_list(store_replica *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].id);
        free(list[i].address);
    }
    free(list);
}

const char *store_replica_state(const store_replica *r, int64_t now)
{
    if (r->stopped)
        return "stopped";
    return now - r->heartbeat > STORE_REPLICA_STALE_S ? "stale" : "up";
}
