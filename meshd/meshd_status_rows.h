/* meshd/meshd_status_rows.h — what proxy status says about each node: the node table
 * behind meshd's status writer, and the store rows each stream event becomes.
 *
 * A row is one instance of one identity, keyed by (SPIFFE ID, node): the
 * verified SPIFFE ID of the stream's client certificate and the Node.id it
 * names itself (the identity when it names none). Node.id alone is a claim,
 * so a client that names itself after another identity's node gets a row of
 * its own and never touches the other's; the overlap is reported (conflict_fn)
 * for the audit. Many replicas of one identity, each with its own Node.id,
 * each have theirs.
 * A key may hold several streams at once (ADS and SDS, or a reconnect that
 * overlaps the old stream): it is connected from its first open until its
 * last close, so an overlapping reconnect never flaps the row. Events about a
 * key that is not open (a late ACK after the close, an SVID change before
 * the first request) write nothing, except a problem: a stream refused before
 * its first request named the node never opens it, and its row must still
 * say why. Only the status writer thread uses a table (meshd_status.c), so
 * there is no lock. */
#ifndef MESH_MESHD_MESHD_STATUS_ROWS_H
#define MESH_MESHD_MESHD_STATUS_ROWS_H

#include <stdint.h>

#include "common/error.h"
#include "store/store.h"

typedef struct md_map md_map;

/* A stream of spiffe_id opened as node while other_id (from other_peer) holds
 * a connected row with the same node. */
typedef void (*md_status_conflict_fn)(void *arg, const char *node, const char *spiffe_id,
                                      const char *peer, const char *other_id,
                                      const char *other_peer);

typedef struct md_status_rows {
    md_map *nodes;                /* "<spiffe id>\x1f<node>" -> open streams, peer, expiry */
    mesh_store *st;               /* borrowed */
    const char *instance;         /* borrowed: this meshd's --instance, stored with each row */
    md_status_conflict_fn conflict_fn;  /* NULL = not reported */
    void *conflict_arg;
} md_status_rows;

int md_status_rows_init(md_status_rows *r, mesh_store *st, const char *instance, mesh_err *err);
void md_status_rows_free(md_status_rows *r);
/* A stream of (spiffe_id, node) opened: it is (still) connected.
 * svid_not_after 0 keeps the expiry already known. */
int md_status_rows_open(md_status_rows *r, const char *node, const char *spiffe_id,
                        const char *peer, int64_t svid_not_after, int64_t at, mesh_err *err);
int md_status_rows_svid(md_status_rows *r, const char *node, const char *spiffe_id,
                        int64_t svid_not_after, int64_t at, mesh_err *err);
/* A stream of (spiffe_id, node) closed: disconnected (and forgotten) with its last one. */
int md_status_rows_close(md_status_rows *r, const char *node, const char *spiffe_id, int64_t at,
                         mesh_err *err);
/* Sent / ACKed / NACKed versions of a type; NULL fields keep what is stored. */
int md_status_rows_type(md_status_rows *r, const char *node, const char *spiffe_id,
                        const char *type_url, const char *sent, const char *acked,
                        const char *nack_version, const char *nack_error, int64_t at,
                        mesh_err *err);
/* The sidecar of (spiffe_id, node) is stranded (why: what it needs, e.g. its
 * SVID was revoked): written whether or not the key is open, shown by
 * proxy-status until a stream of the key opens again (store_proxy_upsert
 * clears it). */
int md_status_rows_problem(md_status_rows *r, const char *node, const char *spiffe_id,
                           const char *problem, int64_t at, mesh_err *err);
/* (spiffe_id, node) ACKed a trust bundle holding exactly `roots` (sorted SHA-256
 * fingerprints, store_proxy_trust). Written whether or not it is still open:
 * the sidecar keeps the bundle it ACKed in its persisted cert pool, and a CA
 * rotation judges it by that. */
int md_status_rows_trust(md_status_rows *r, const char *node, const char *spiffe_id,
                         const char *roots, int64_t at, mesh_err *err);

#endif
