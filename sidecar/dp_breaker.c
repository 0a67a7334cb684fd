/* sidecar/dp_breaker.c — per-cluster load counters and circuit breaker checks
 * (dp_breaker.h). Loop thread only. */
#include <stdlib.h>
#include <string.h>

#include "sidecar/dp_breaker.h"

dp_cluster_load *dp_load_get(dp_cluster_load **head, const char *name)
{
    for (dp_cluster_load *l = *head; l; l = l->next) {
        if (strcmp(l->name, name) == 0) {
            l->refs++;
            return l;
        }
    }
    dp_cluster_load *l = calloc(1, sizeof *l);
    if (!l || !(l->name = strdup(name))) {
        free(l);
        return NULL;
    }
    l->refs = 1;
    l->next = *head;
    *head = l;
    return l;
}

void dp_load_unref(dp_cluster_load **head, dp_cluster_load *l)
{
    if (!l || --l->refs > 0)
        return;
    for (dp_cluster_load **pp = head; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    free(l->name);
    free(l);
}

uint32_t dp_breaker_max(const dp_breaker_cfg *b, dp_breaker_limit what)
{
    switch (what) {
    case DP_BREAKER_CONNECTIONS: return b->max_connections;
    case DP_BREAKER_PENDING: return b->max_pending_requests;
    case DP_BREAKER_REQUESTS: return b->max_requests;
    case DP_BREAKER_RETRIES: return b->max_retries;
    }
    return 0;
}

const char *dp_breaker_limit_name(dp_breaker_limit what)
{
    switch (what) {
    case DP_BREAKER_CONNECTIONS: return "max_connections";
    case DP_BREAKER_PENDING: return "max_pending_requests";
    case DP_BREAKER_REQUESTS: return "max_requests";
    case DP_BREAKER_RETRIES: return "max_retries";
    }
    return "?";
}

bool dp_breaker_admit(const dp_breaker_cfg *b, dp_cluster_load *l, dp_breaker_limit what)
{
    uint32_t cur = 0;
    switch (what) {
    case DP_BREAKER_CONNECTIONS: cur = l->cx; break;
    case DP_BREAKER_PENDING: cur = l->rq_pending; break;
    case DP_BREAKER_REQUESTS: cur = l->rq_active; break;
    case DP_BREAKER_RETRIES: cur = l->rq_retry; break;
    }
    if (cur < dp_breaker_max(b, what))
        return true;
    switch (what) {
    case DP_BREAKER_CONNECTIONS: l->cx_overflow++; break;
    case DP_BREAKER_PENDING: l->rq_pending_overflow++; break;
    case DP_BREAKER_REQUESTS:
        l->rq_overflow++;
        l->rq_pending_overflow++;   /* Envoy counts it there too */
        break;
    case DP_BREAKER_RETRIES: l->rq_retry_overflow++; break;
    }
    return false;
}
