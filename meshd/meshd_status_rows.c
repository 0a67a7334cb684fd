/* meshd/meshd_status_rows.c — the node table behind proxy status and the rows its events
 * write (meshd/meshd_status_rows.h). */
#include "meshd/meshd_status_rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshd/meshd_internal.h"

typedef struct md_node {
    char *peer;
    int streams;
    int64_t svid_not_after;
} md_node;

static void node_free(void *p)
{
    md_node *n = p;
    if (!n)
        return;
    free(n->peer);
    free(n);
}

/* The table key of (spiffe_id, node). 0x1f cannot occur in either: the
 * identity is a verified SPIFFE ID and node ids are stored escaped. */
static char *key_of(const char *spiffe_id, const char *node)
{
    size_t a = strlen(spiffe_id), b = strlen(node);
    char *k = malloc(a + b + 2);
    if (k) {
        memcpy(k, spiffe_id, a);
        k[a] = '\x1f';
        memcpy(k + a + 1, node, b + 1);
    }
    return k;
}

static md_node *lookup(md_status_rows *r, const char *node, const char *spiffe_id)
{
    char *k = key_of(spiffe_id ? spiffe_id : "", node);
    md_node *n = k ? md_map_get(r->nodes, k) : NULL;
    free(k);
    return n;
}

int md_status_rows_init(md_status_rows *r, mesh_store *st, const char *instance, mesh_err *err)
{
    memset(r, 0, sizeof *r);
    r->nodes = md_map_new(4096);
    if (!r->nodes)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    r->st = st;
    r->instance = instance;
    return MESH_OK;
}

void md_status_rows_free(md_status_rows *r)
{
    md_map_free(r->nodes, node_free);
    r->nodes = NULL;
}

static int upsert(md_status_rows *r, const char *node, const char *spiffe_id, const md_node *n,
                  int connected, int64_t at, mesh_err *err)
{
    return store_proxy_upsert(r->st, node, spiffe_id, n->peer, connected, n->svid_not_after,
                              r->instance, at, err);
}

/* Another identity holding the same node, connected (here or at another
 * meshd replica): not an error, each keeps its row, but worth an audit row. */
static int report_conflict(md_status_rows *r, const char *node, const char *spiffe_id,
                           const char *peer, mesh_err *err)
{
    if (!r->conflict_fn)
        return MESH_OK;
    char other[600], other_peer[200];
    int rc = store_proxy_other_holder(r->st, node, spiffe_id, other, sizeof other, other_peer,
                                      sizeof other_peer, err);
    if (rc == MESH_OK && other[0])
        r->conflict_fn(r->conflict_arg, node, spiffe_id, peer, other, other_peer);
    return rc;
}

int md_status_rows_open(md_status_rows *r, const char *node, const char *spiffe_id,
                        const char *peer, int64_t svid_not_after, int64_t at, mesh_err *err)
{
    if (!spiffe_id || !spiffe_id[0])
        return mesh_err_set(err, MESH_EINVAL, "proxy status of node %s without an identity",
                            node);
    char *key = key_of(spiffe_id, node);
    char *pa = strdup(peer ? peer : "");
    md_node *n = key ? md_map_get(r->nodes, key) : NULL;
    int fresh = n == NULL;
    if (fresh)
        n = calloc(1, sizeof *n);
    if (!key || !pa || !n || (fresh && md_map_put(r->nodes, key, n, NULL) != MESH_OK)) {
        free(key);
        free(pa);
        if (fresh)
            free(n);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    free(key);
    free(n->peer);
    n->peer = pa;
    n->streams++;
    if (svid_not_after)
        n->svid_not_after = svid_not_after;
    int rc = upsert(r, node, spiffe_id, n, 1, at, err);
    if (rc == MESH_OK && n->streams == 1) {
        mesh_err cerr = {0};
        if (report_conflict(r, node, spiffe_id, peer, &cerr) != MESH_OK)
            log_warn("meshd", "proxy status: %s", cerr.msg);
    }
    return rc;
}

int md_status_rows_svid(md_status_rows *r, const char *node, const char *spiffe_id,
                        int64_t svid_not_after, int64_t at, mesh_err *err)
{
    md_node *n = lookup(r, node, spiffe_id);
    if (!n || n->streams <= 0)
        return MESH_OK;
    n->svid_not_after = svid_not_after;
    return upsert(r, node, spiffe_id, n, 1, at, err);
}

int md_status_rows_close(md_status_rows *r, const char *node, const char *spiffe_id, int64_t at,
                         mesh_err *err)
{
    char *key = key_of(spiffe_id ? spiffe_id : "", node);
    if (!key)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    md_node *n = md_map_get(r->nodes, key);
    int rc = MESH_OK;
    if (n && --n->streams <= 0) {
        rc = upsert(r, node, spiffe_id, n, 0, at, err);
        node_free(md_map_remove(r->nodes, key));
    }
    free(key);
    return rc;
}

int md_status_rows_type(md_status_rows *r, const char *node, const char *spiffe_id,
                        const char *type_url, const char *sent, const char *acked,
                        const char *nack_version, const char *nack_error, int64_t at,
                        mesh_err *err)
{
    if (!lookup(r, node, spiffe_id))
        return MESH_OK; /* the stream closed before we wrote its row */
    return store_proxy_type_update(r->st, node, spiffe_id, type_url, sent, acked, nack_version,
                                   nack_error, at, err);
}

int md_status_rows_problem(md_status_rows *r, const char *node, const char *spiffe_id,
                           const char *problem, int64_t at, mesh_err *err)
{
    return store_proxy_set_problem(r->st, node, spiffe_id, problem, at, err);
}

int md_status_rows_trust(md_status_rows *r, const char *node, const char *spiffe_id,
                         const char *roots, int64_t at, mesh_err *err)
{
    if (!roots)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory recording a trust bundle ACK");
    return store_proxy_trust_set(r->st, node, spiffe_id, roots, r->instance, at, err);
}
