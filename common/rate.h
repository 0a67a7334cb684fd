/* common/rate.h — a token bucket: at most `burst` events at once, refilled at
 * `per_sec`; what it refuses is counted so the caller can say how much it dropped.
 *
 * Used to bound what a flood of bad peers can make meshd write: audit rows of
 * refusals (meshd/meshd_audit.c) and gRPC core's per-connection log lines
 * (common/mgrpc.c). Not thread-safe: the owner holds its own lock. Time is
 * passed in (milliseconds, monotonic) so tests need no clock. */
#ifndef MESH_COMMON_RATE_H
#define MESH_COMMON_RATE_H

#include <stdint.h>

typedef struct mesh_rate {
    double per_sec;         /* refill rate */
    double burst;           /* bucket size */
    double tokens;
    int64_t last_ms;        /* time of the last refill; 0 = never */
    uint64_t dropped;       /* refused since the last mesh_rate_take_dropped */
    int64_t first_drop_ms;  /* when the first of those was refused */
} mesh_rate;

/* A full bucket. */
void mesh_rate_init(mesh_rate *r, double per_sec, double burst);
/* 1 = go ahead (a token was taken), 0 = refused (counted in dropped). */
int mesh_rate_allow(mesh_rate *r, int64_t now_ms);
/* How many were refused since the last call (and since when, *since_ms);
 * resets the count. */
uint64_t mesh_rate_take_dropped(mesh_rate *r, int64_t *since_ms);

#endif
