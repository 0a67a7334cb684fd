/* store/store_proxy.c — per-sidecar xDS status as meshd sees it, one row per
 * (verified SPIFFE ID, Node.id) (connected,
 * which meshd holds the stream, per type URL: sent / ACKed / NACKed versions),
 * so `meshctl proxy-status` can show it from another process. */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A row is one instance of one identity: (spiffe_id, node_id). The identity
 * is the verified SPIFFE ID of the stream (never the node's claim), so a
 * client with its own SVID that names itself after another sidecar's Node.id
 * gets a row of its own and never touches the other's.
 * NULL text arguments keep the stored value (or "" for a new row).
 * connected_at moves only on a disconnected -> connected transition.
 * A "disconnected" report from a meshd that no longer holds the stream (the
 * sidecar already reconnected to another replica) is ignored: the stream's
 * current holder owns the row. */
static const char SQL_PROXY_UPSERT[] =
    "INSERT INTO proxies (spiffe_id, node_id, peer, connected, connected_at, last_seen, "
    "  svid_not_after, meshd_instance) "
    "VALUES (?2, ?1, COALESCE(?3, ''), ?4, CASE WHEN ?4 <> 0 THEN ?7 ELSE 0 END, ?7, "
    "  ?5, COALESCE(?6, '')) "
    "ON CONFLICT (spiffe_id, node_id) DO UPDATE SET "
    "  peer = COALESCE(?3, proxies.peer), "
    "  connected_at = CASE WHEN ?4 <> 0 AND proxies.connected = 0 THEN ?7 "
    "    ELSE proxies.connected_at END, "
    "  connected = ?4, "
    "  last_seen = ?7, "
    "  svid_not_after = ?5, "
    "  meshd_instance = COALESCE(?6, proxies.meshd_instance), "
    "  problem = CASE WHEN ?4 <> 0 THEN '' ELSE proxies.problem END "
    "WHERE ?4 <> 0 OR proxies.connected = 0 OR ?6 IS NULL OR proxies.meshd_instance = ?6";
/* The problem of one (identity, node) row: a refused identity never touches
 * another identity's row of the same Node.id. */
static const char SQL_PROXY_PROBLEM[] =
    "INSERT INTO proxies (spiffe_id, node_id, last_seen, problem) "
    "VALUES (?2, ?1, ?3, ?4) "
    "ON CONFLICT (spiffe_id, node_id) DO UPDATE SET last_seen = ?3, problem = ?4";
static const char SQL_PROXY_TYPE_UPSERT[] =
    "INSERT INTO proxy_types (spiffe_id, node_id, type_url, sent_version, acked_version, "
    "  nack_version, nack_error, updated_at) "
    "VALUES (?8, ?1, ?2, COALESCE(?3, ''), COALESCE(?4, ''), COALESCE(?5, ''), "
    "  COALESCE(?6, ''), ?7) "
    "ON CONFLICT (spiffe_id, node_id, type_url) DO UPDATE SET "
    "  sent_version = COALESCE(?3, proxy_types.sent_version), "
    "  acked_version = COALESCE(?4, proxy_types.acked_version), "
    "  nack_version = COALESCE(?5, proxy_types.nack_version), "
    "  nack_error = COALESCE(?6, proxy_types.nack_error), "
    "  updated_at = ?7";
static const char SQL_PROXY_DISCONNECT_ALL[] =
    "UPDATE proxies SET connected = 0 WHERE meshd_instance = ?1 AND connected <> 0";
/* A row held by a replica that stopped or went quiet (heartbeat before ?1 =
 * now - STORE_REPLICA_STALE_S) reads as not connected and stale, seen last
 * at that replica's last heartbeat: a crashed replica's sidecars are away
 * (EDS health counts its grace from then), not "connected" forever. A row
 * of an instance without a replicas row (a meshd before schema 7) is read
 * as it is. */
#define PROXY_HELD_BY_QUIET_REPLICA \
    "p.connected <> 0 AND r.id IS NOT NULL AND (r.stopped <> 0 OR r.heartbeat < ?1)"
static const char SQL_PROXY_LIST[] =
    "SELECT p.node_id, p.spiffe_id, p.peer, "
    "  CASE WHEN p.connected <> 0 AND NOT (" PROXY_HELD_BY_QUIET_REPLICA ") THEN 1 ELSE 0 END, "
    "  p.connected_at, "
    "  CASE WHEN " PROXY_HELD_BY_QUIET_REPLICA " AND r.heartbeat > p.last_seen "
    "    THEN r.heartbeat ELSE p.last_seen END, "
    "  p.svid_not_after, p.meshd_instance, p.problem, "
    "  CASE WHEN " PROXY_HELD_BY_QUIET_REPLICA " THEN 1 ELSE 0 END "
    "FROM proxies p LEFT JOIN replicas r ON r.id = p.meshd_instance "
    "ORDER BY p.node_id, p.spiffe_id";
static const char SQL_PROXY_TYPE_LIST[] =
    "SELECT node_id, spiffe_id, type_url, sent_version, acked_version, nack_version, "
    "nack_error, updated_at FROM proxy_types ORDER BY node_id, spiffe_id, type_url";
static const char SQL_PROXY_OTHER_HOLDER[] =
    "SELECT spiffe_id, peer FROM proxies WHERE node_id = ?1 AND spiffe_id <> ?2 AND connected <> 0 "
    "ORDER BY connected_at LIMIT 1";

int store_proxy_upsert(mesh_store *st, const char *node_id, const char *spiffe_id,
                       const char *peer, int connected, int64_t svid_not_after,
                       const char *meshd_instance, int64_t now, mesh_err *err)
{
    int rc = store_require(node_id, "proxy node id", err);
    if (rc == MESH_OK)
        rc = store_require(spiffe_id, "proxy SPIFFE ID", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_PROXY_UPSERT, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, node_id, &brc);
    store_bind_text(s, 2, spiffe_id, &brc);
    store_bind_text(s, 3, peer, &brc);
    store_bind_int64(s, 4, connected ? 1 : 0, &brc);
    store_bind_int64(s, 5, svid_not_after, &brc);
    store_bind_text(s, 6, meshd_instance, &brc);
    store_bind_int64(s, 7, now, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "recording status of proxy %s (%s)", node_id,
                            spiffe_id);
    store_stmt_release(s);
    return rc;
}

int store_proxy_type_update(mesh_store *st, const char *node_id, const char *spiffe_id,
                            const char *type_url, const char *sent_version,
                            const char *acked_version, const char *nack_version,
                            const char *nack_error, int64_t now, mesh_err *err)
{
    int rc = store_require(node_id, "proxy node id", err);
    if (rc == MESH_OK)
        rc = store_require(spiffe_id, "proxy SPIFFE ID", err);
    if (rc == MESH_OK)
        rc = store_require(type_url, "type URL", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_PROXY_TYPE_UPSERT, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, node_id, &brc);
    store_bind_text(s, 2, type_url, &brc);
    store_bind_text(s, 3, sent_version, &brc);
    store_bind_text(s, 4, acked_version, &brc);
    store_bind_text(s, 5, nack_version, &brc);
    store_bind_text(s, 6, nack_error, &brc);
    store_bind_int64(s, 7, now, &brc);
    store_bind_text(s, 8, spiffe_id, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_FOREIGN_KEY)
        rc = mesh_err_set(err, MESH_ENOTFOUND,
                          "proxy %s (%s) is not known; record it with store_proxy_upsert first",
                          node_id, spiffe_id);
    else if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "recording %s status of proxy %s", type_url, node_id);
    store_stmt_release(s);
    return rc;
}

int store_proxy_other_holder(mesh_store *st, const char *node_id, const char *spiffe_id,
                             char *holder, size_t holder_len, char *peer, size_t peer_len,
                             mesh_err *err)
{
    holder[0] = '\0';
    peer[0] = '\0';
    int rc = store_require(node_id, "proxy node id", err);
    if (rc == MESH_OK)
        rc = store_require(spiffe_id, "proxy SPIFFE ID", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_PROXY_OTHER_HOLDER, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, node_id, &brc);
    store_bind_text(s, 2, spiffe_id, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_ROW) {
        const char *h = store_col_text(s, 0);
        const char *p = store_col_text(s, 1);
        snprintf(holder, holder_len, "%s", h ? h : "");
        snprintf(peer, peer_len, "%s", p ? p : "");
    } else if (src != STORE_DONE) {
        rc = store_db_error(st, err, src, "looking up who holds proxy node %s", node_id);
    }
    store_stmt_release(s);
    return rc;
}

int store_proxy_set_problem(mesh_store *st, const char *node_id, const char *spiffe_id,
                            const char *problem, int64_t now, mesh_err *err)
{
    int rc = store_require(node_id, "proxy node id", err);
    if (rc == MESH_OK)
        rc = store_require(spiffe_id, "proxy SPIFFE ID", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_PROXY_PROBLEM, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, node_id, &brc);
    store_bind_text(s, 2, spiffe_id, &brc);
    store_bind_int64(s, 3, now, &brc);
    store_bind_text(s, 4, problem ? problem : "", &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "recording the problem of proxy %s", node_id);
    store_stmt_release(s);
    return rc;
}

const char *store_proxy_instance_of(const char *spiffe_id, const char *node_id)
{
    static const char unverified[] = "unverified:";
    if (!spiffe_id || !node_id || strncmp(spiffe_id, unverified, sizeof unverified - 1) == 0)
        return NULL;
    size_t n = strlen(spiffe_id);
    if (strcmp(node_id, spiffe_id) == 0)
        return "";
    /* '#': meshd's instance key separator (a SPIFFE ID cannot contain it). */
    if (strncmp(node_id, spiffe_id, n) == 0 && node_id[n] == '#')
        return node_id + n + 1;
    return node_id;
}

int store_proxy_disconnect_all(mesh_store *st, const char *meshd_instance, mesh_err *err)
{
    int rc = store_require(meshd_instance, "meshd instance", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_PROXY_DISCONNECT_ALL, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, meshd_instance, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "marking proxies of meshd %s disconnected",
                            meshd_instance);
    store_stmt_release(s);
    return rc;
}

static void store_proxy_type_free(store_proxy_type_status *t)
{
    free(t->type_url);
    free(t->sent_version);
    free(t->acked_version);
    free(t->nack_version);
    free(t->nack_error);
    memset(t, 0, sizeof *t);
}

static void store_proxy_free_members(store_proxy *p)
{
    free(p->node_id);
    free(p->spiffe_id);
    free(p->peer);
    free(p->meshd_instance);
    free(p->problem);
    for (size_t j = 0; j < p->n_types; j++)
        store_proxy_type_free(&p->types[j]);
    free(p->types);
    memset(p, 0, sizeof *p);
}

static int store_proxy_read_row(store_q *s, store_proxy *out)
{
    int rc = MESH_OK;
    memset(out, 0, sizeof *out);
    out->node_id = store_col_dup(s, 0, &rc);
    out->spiffe_id = store_col_dup(s, 1, &rc);
    out->peer = store_col_dup(s, 2, &rc);
    out->connected = store_col_int(s, 3) != 0;
    out->connected_at = store_col_int64(s, 4);
    out->last_seen = store_col_int64(s, 5);
    out->svid_not_after = store_col_int64(s, 6);
    out->meshd_instance = store_col_dup(s, 7, &rc);
    out->problem = store_col_dup(s, 8, &rc);
    out->stale = store_col_int(s, 9) != 0;
    if (rc != MESH_OK)
        store_proxy_free_members(out);
    return rc;
}

static int store_proxy_type_read_row(store_q *s, store_proxy_type_status *t)
{
    int rc = MESH_OK;
    memset(t, 0, sizeof *t);
    t->type_url = store_col_dup(s, 2, &rc);
    t->sent_version = store_col_dup(s, 3, &rc);
    t->acked_version = store_col_dup(s, 4, &rc);
    t->nack_version = store_col_dup(s, 5, &rc);
    t->nack_error = store_col_dup(s, 6, &rc);
    t->updated_at = store_col_int64(s, 7);
    if (rc != MESH_OK)
        store_proxy_type_free(t);
    return rc;
}

/* Reads all proxies, ordered by node_id. */
static int store_proxy_read_all(mesh_store *st, store_proxy **out, size_t *n_out, mesh_err *err)
{
    store_q *s;
    int rc = store_stmt(st, SQL_PROXY_LIST, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_int64(s, 1, (int64_t)time(NULL) - STORE_REPLICA_STALE_S, &brc);
    if (brc != STORE_OK) {
        rc = store_db_error(st, err, brc, "listing proxies");
        store_stmt_release(s);
        return rc;
    }
    size_t cap = 0;
    int src;
    while ((src = store_step(s)) == STORE_ROW) {
        if (store_grow((void **)out, &cap, *n_out, sizeof **out) != MESH_OK ||
            store_proxy_read_row(s, &(*out)[*n_out]) != MESH_OK) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing proxies");
            break;
        }
        (*n_out)++;
    }
    if (rc == MESH_OK && src != STORE_DONE)
        rc = store_db_error(st, err, src, "listing proxies");
    store_stmt_release(s);
    return rc;
}

/* (node_id, spiffe_id) order, as both queries sort. */
static int key_cmp(const store_proxy *p, const char *node, const char *id)
{
    int c = strcmp(p->node_id, node);
    return c ? c : strcmp(p->spiffe_id, id);
}

/* Attaches each proxy_types row to its proxy; both queries are ordered by
 * (node_id, spiffe_id), so one merge pass suffices. */
static int store_proxy_read_types(mesh_store *st, store_proxy *list, size_t n, mesh_err *err)
{
    store_q *s;
    int rc = store_stmt(st, SQL_PROXY_TYPE_LIST, &s, err);
    if (rc != MESH_OK)
        return rc;
    size_t i = 0, cap = 0;
    int src;
    while ((src = store_step(s)) == STORE_ROW) {
        const char *node = store_col_text(s, 0);
        const char *id = store_col_text(s, 1);
        if (!node || !id) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing proxy status");
            break;
        }
        while (i < n && key_cmp(&list[i], node, id) < 0) {
            i++;
            cap = 0;
        }
        if (i == n || key_cmp(&list[i], node, id) != 0)
            continue;   /* cannot happen with the foreign key; skip rather than misattach */
        store_proxy *p = &list[i];
        if (store_grow((void **)&p->types, &cap, p->n_types, sizeof *p->types) != MESH_OK ||
            store_proxy_type_read_row(s, &p->types[p->n_types]) != MESH_OK) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing proxy status");
            break;
        }
        p->n_types++;
    }
    if (rc == MESH_OK && src != STORE_DONE)
        rc = store_db_error(st, err, src, "listing proxy status");
    store_stmt_release(s);
    return rc;
}

int store_proxy_list(mesh_store *st, store_proxy **out, size_t *n_out, mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    store_proxy *list = NULL;
    size_t n = 0;
    /* One read transaction: both queries see the same snapshot. */
    int rc = store_op_begin(st, 0, err);
    if (rc != MESH_OK)
        return rc;
    rc = store_proxy_read_all(st, &list, &n, err);
    if (rc == MESH_OK)
        rc = store_proxy_read_types(st, list, n, err);
    rc = store_op_end(st, rc, err);
    if (rc != MESH_OK) {
        store_proxy_free_list(list, n);
        return rc;
    }
    *out = list;
    *n_out = n;
    return MESH_OK;
}

int store_proxy_list_rows(mesh_store *st, store_proxy **out, size_t *n_out, mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    int rc = store_op_begin(st, 0, err);
    if (rc != MESH_OK)
        return rc;
    rc = store_proxy_read_all(st, out, n_out, err);
    rc = store_op_end(st, rc, err);
    if (rc != MESH_OK) {
        store_proxy_free_list(*out, *n_out);
        *out = NULL;
        *n_out = 0;
    }
    return rc;
}

void store_proxy_free_list(store_proxy *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_proxy_free_members(&list[i]);
    free(list);
}
