/* meshd/meshd_status_rows.c — the node table behind proxy status and the rows its events
 * write (meshd/meshd_status_rows.h). */
#include "meshd/meshd_status_rows.h"

#include <stdlib.h>
#include <string.h>

#include "meshd/meshd_internal.h"

typedef struct md_node {
    char *spiffe_id;
    char *peer;
    int streams;
    int64_t svid_not_after;
} md_node;

static void node_free(void *p)
{
    md_node *n = p;
    if (!n)
        return;
    free(n->spiffe_id);
    free(n->peer);
    free(n);
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

static int upsert(md_status_rows *r, const char *node, const md_node *n, int connected,
                  int64_t at, mesh_err *err)
{
    return store_proxy_upsert(r->st, node, n->spiffe_id, n->peer, connected, n->svid_not_after,
                              r->instance, at, err);
}

int md_status_rows_open(md_status_rows *r, const char *node, const char *spiffe_id,
                        const char *peer, int64_t svid_not_after, int64_t at, mesh_err *err)
{
    char *id = strdup(spiffe_id ? spiffe_id : "");
    char *pa = strdup(peer ? peer : "");
    md_node *n = md_map_get(r->nodes, node);
    int fresh = n == NULL;
    if (fresh)
        n = calloc(1, sizeof *n);
    if (!id || !pa || !n || (fresh && md_map_put(r->nodes, node, n, NULL) != MESH_OK)) {
        free(id);
        free(pa);
        if (fresh)
            free(n);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    free(n->spiffe_id);
    free(n->peer);
    n->spiffe_id = id;
    n->peer = pa;
    n->streams++;
    if (svid_not_after)
        n->svid_not_after = svid_not_after;
    return upsert(r, node, n, 1, at, err);
}

int md_status_rows_svid(md_status_rows *r, const char *node, int64_t svid_not_after, int64_t at,
                        mesh_err *err)
{
    md_node *n = md_map_get(r->nodes, node);
    if (!n || n->streams <= 0)
        return MESH_OK;
    n->svid_not_after = svid_not_after;
    return upsert(r, node, n, 1, at, err);
}

int md_status_rows_close(md_status_rows *r, const char *node, int64_t at, mesh_err *err)
{
    md_node *n = md_map_get(r->nodes, node);
    if (!n)
        return MESH_OK;
    if (--n->streams > 0)
        return MESH_OK;
    int rc = upsert(r, node, n, 0, at, err);
    node_free(md_map_remove(r->nodes, node));
    return rc;
}

int md_status_rows_type(md_status_rows *r, const char *node, const char *type_url,
                        const char *sent, const char *acked, const char *nack_version,
                        const char *nack_error, int64_t at, mesh_err *err)
{
    if (!md_map_get(r->nodes, node))
        return MESH_OK; /* the node closed before we wrote its row */
    return store_proxy_type_update(r->st, node, type_url, sent, acked, nack_version, nack_error,
                                   at, err);
}
