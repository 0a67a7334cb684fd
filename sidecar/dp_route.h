/* sidecar/dp_route.h — matching an HTTP request against an RDS route table.
 *
 * Envoy semantics, kept deliberately: virtual hosts by Host header (exact
 * domain first, then the longest "*suffix" wildcard, then the longest
 * "prefix*", then "*"); a Host with a port first tries the whole value, then
 * the bare host. Within the virtual host, routes in order, first match wins:
 * path prefix (against the full path, query included) or exact path (without
 * the query), and every header matcher (exact / prefix / present, optionally
 * inverted; repeated headers are matched as one comma-joined value). A
 * weighted route picks its cluster with the caller's RNG. */
#ifndef MESH_SIDECAR_DP_ROUTE_H
#define MESH_SIDECAR_DP_ROUTE_H

#include <stddef.h>

#include "sidecar/dp_config.h"
#include "sidecar/dp_rng.h"

typedef struct dp_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} dp_http_header;

typedef struct dp_route_req {
    const char *host;           /* Host header value, may carry ":port"; NULL if absent */
    size_t host_len;
    const char *path;           /* request target as received ("/a/b?x=1") */
    size_t path_len;
    const dp_http_header *headers;
    size_t n_headers;
} dp_route_req;

const dp_virtual_host *dp_route_find_vhost(const dp_route_table *rt, const char *host,
                                           size_t host_len);
/* The matching route or NULL; *vh_out (optional) is the virtual host chosen
 * (NULL when no virtual host matched the Host). */
const dp_route *dp_route_match(const dp_route_table *rt, const dp_route_req *req,
                               const dp_virtual_host **vh_out);
/* Picks a destination cluster by weight (frozen snapshot: total_weight set). */
const char *dp_route_pick_cluster(const dp_route *r, dp_rng *rng);

#endif
