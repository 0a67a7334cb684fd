/* store/store_trust.c — which trust bundle each proxy has ACKed.
 *
 * meshd writes a row when a sidecar ACKs an SDS response that carried (or
 * kept) a trust bundle; `meshctl ca rotate` reads them to decide whether every
 * sidecar already trusts a prepared CA's root before that CA may sign. Rows
 * are keyed like proxy rows, by (verified identity, Node.id). A row
 * outlives the proxy's stream on purpose: a disconnected sidecar keeps the
 * bundle it ACKed in its persisted cert pool. */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

static const char SQL_TRUST_UPSERT[] =
    "INSERT INTO proxy_trust (spiffe_id, node_id, roots, acked_at, meshd_instance) "
    "  VALUES (?1, ?2, ?3, ?4, COALESCE(?5, '')) "
    "ON CONFLICT (spiffe_id, node_id) DO UPDATE SET roots = ?3, acked_at = ?4, "
    "  meshd_instance = COALESCE(?5, proxy_trust.meshd_instance)";
/* BINARY collation (PostgreSQL: COLLATE "C"): byte order, which is strcmp's
 * (ca_rollout.c searches it). */
static const char SQL_TRUST_LIST[] =
    "SELECT spiffe_id, node_id, roots, acked_at, meshd_instance FROM proxy_trust "
    "ORDER BY spiffe_id, node_id";

int store_proxy_trust_set(mesh_store *st, const char *node_id, const char *spiffe_id,
                          const char *roots, const char *meshd_instance, int64_t now,
                          mesh_err *err)
{
    int rc = store_require(node_id, "proxy node id", err);
    if (rc == MESH_OK)
        rc = store_require(spiffe_id, "proxy SPIFFE ID", err);
    if (rc != MESH_OK)
        return rc;
    if (!roots)
        return mesh_err_set(err, MESH_EINVAL, "missing trust roots for proxy %s", node_id);
    store_q *s;
    rc = store_stmt(st, SQL_TRUST_UPSERT, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, spiffe_id, &brc);
    store_bind_text(s, 2, node_id, &brc);
    store_bind_text(s, 3, roots, &brc);
    store_bind_int64(s, 4, now, &brc);
    store_bind_text(s, 5, meshd_instance, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "recording the trust bundle proxy %s ACKed", node_id);
    store_stmt_release(s);
    return rc;
}

static void trust_free_members(store_proxy_trust *t)
{
    free(t->node_id);
    free(t->spiffe_id);
    free(t->roots);
    free(t->meshd_instance);
    memset(t, 0, sizeof *t);
}

int store_proxy_trust_list(mesh_store *st, store_proxy_trust **out, size_t *n_out,
                           mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    store_q *s;
    int rc = store_stmt(st, SQL_TRUST_LIST, &s, err);
    if (rc != MESH_OK)
        return rc;
    store_proxy_trust *list = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = store_step(s)) == STORE_ROW) {
        if (store_grow((void **)&list, &cap, n, sizeof *list) != MESH_OK) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing proxy trust");
            break;
        }
        store_proxy_trust *t = &list[n];
        int crc = MESH_OK;
        memset(t, 0, sizeof *t);
        t->spiffe_id = store_col_dup(s, 0, &crc);
        t->node_id = store_col_dup(s, 1, &crc);
        t->roots = store_col_dup(s, 2, &crc);
        t->acked_at = store_col_int64(s, 3);
        t->meshd_instance = store_col_dup(s, 4, &crc);
        if (crc != MESH_OK) {
            trust_free_members(t);
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing proxy trust");
            break;
        }
        n++;
    }
    if (rc == MESH_OK && src != STORE_DONE)
        rc = store_db_error(st, err, src, "listing proxy trust");
    store_stmt_release(s);
    if (rc != MESH_OK) {
        store_proxy_trust_free_list(list, n);
        return rc;
    }
    *out = list;
    *n_out = n;
    return MESH_OK;
}

void store_proxy_trust_free_list(store_proxy_trust *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        trust_free_members(&list[i]);
    free(list);
}
