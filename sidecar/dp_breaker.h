/* sidecar/dp_breaker.h — circuit breakers per upstream cluster (Envoy's
 * Cluster.circuit_breakers, DEFAULT priority), as plain counters and pure
 * checks so that they are unit tested without a loop.
 *
 * One dp_cluster_load per cluster name, shared by every config snapshot that
 * has the cluster (a CDS or EDS push must not reset what is in flight), held
 * by the snapshots' cluster runtimes and by the cluster's endpoints. It
 * counts what the limits bound:
 *   cx          upstream connections open or connecting (pooled ones too)   max_connections
 *   rq_pending  requests waiting for a new connection to be established     max_pending_requests
 *   rq_active   requests routed to the cluster and not finished             max_requests
 *   rq_retry    retry attempts in flight                                     max_retries
 * and, per cluster, how often each limit refused something, under Envoy's
 * stat names (upstream_cx_overflow, upstream_rq_pending_overflow — which in
 * Envoy also counts max_requests overflows — and upstream_rq_retry_overflow). */
#ifndef MESH_SIDECAR_DP_BREAKER_H
#define MESH_SIDECAR_DP_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "sidecar/dp_config.h"

typedef enum dp_breaker_limit {
    DP_BREAKER_CONNECTIONS = 0,     /* a new upstream connection */
    DP_BREAKER_PENDING,             /* a request that must wait for a new connection */
    DP_BREAKER_REQUESTS,            /* a request routed to the cluster */
    DP_BREAKER_RETRIES,             /* a retry attempt */
} dp_breaker_limit;

typedef struct dp_cluster_load {
    struct dp_cluster_load *next;
    int refs;
    char *name;
    uint32_t cx, rq_pending, rq_active, rq_retry;
    /* Envoy's per-cluster counters. rq_overflow is ours (max_requests alone),
     * also included in rq_pending_overflow as in Envoy. */
    uint64_t cx_overflow, rq_pending_overflow, rq_overflow, rq_retry_overflow;
} dp_cluster_load;

/* The load of cluster `name` in the list at *head, created (one reference)
 * or referenced; NULL only on out-of-memory. */
dp_cluster_load *dp_load_get(dp_cluster_load **head, const char *name);
/* Drops a reference; the last one unlinks and frees it. NULL is fine. */
void dp_load_unref(dp_cluster_load **head, dp_cluster_load *l);

/* The limit of b that bounds `what`. */
uint32_t dp_breaker_max(const dp_breaker_cfg *b, dp_breaker_limit what);
/* Whether one more of `what` fits under b's limit. When it does not, the
 * overflow is counted on l (the caller counts its proxy-wide stat). The
 * caller increments the gauge itself once the thing really starts. */
bool dp_breaker_admit(const dp_breaker_cfg *b, dp_cluster_load *l, dp_breaker_limit what);
/* Envoy's name for the limit ("max_connections", ...), for messages. */
const char *dp_breaker_limit_name(dp_breaker_limit what);

#endif
