/* sidecar/dp_lb.h — choosing an endpoint of a cluster.
 *
 * Round robin walks the usable endpoints in order with a cursor the caller
 * keeps per cluster (it survives config swaps so traffic does not restart at
 * endpoint 0 after every EDS push). Least request is Envoy's default for
 * equal weights: sample two distinct usable endpoints at random and take the
 * one with fewer active requests (power of two choices), which avoids the
 * herd behaviour of a global "least" pick. Usable = health UNKNOWN or
 * HEALTHY in EDS and not down in this sidecar's own view (ejected by outlier
 * detection or failing active health checks); when fewer than half of the
 * EDS-usable endpoints are up, the own view is ignored (Envoy's panic
 * threshold: better spread load over all than crush the few); when none is
 * EDS-usable, DEGRADED endpoints are used; when there are none of those
 * either, every endpoint is (Envoy's panic mode for EDS health, with the
 * threshold at its floor: UNHEALTHY, DRAINING and TIMEOUT endpoints take no
 * traffic while one healthy endpoint remains; when all are down, trying one
 * beats failing every request at once, because meshd's verdict, no xDS stream
 * for a while, may be wrong about the app). A retry
 * skips the endpoints earlier attempts tried (Envoy's previous_hosts
 * predicate) as long as another candidate is left. */
#ifndef MESH_SIDECAR_DP_LB_H
#define MESH_SIDECAR_DP_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sidecar/dp_config.h"
#include "sidecar/dp_rng.h"

/* Below this share of EDS-usable endpoints up, health and ejections are ignored. */
#define DP_LB_PANIC_PERCENT 50

typedef struct dp_lb_input {
    const dp_endpoint *eps;
    size_t n;
    const uint32_t *active;     /* in-flight requests per endpoint (least request); may be NULL */
    const bool *down;           /* per endpoint: ejected or failing health checks; may be NULL */
    const bool *tried;          /* per endpoint: an earlier attempt used it; may be NULL */
} dp_lb_input;

/* Returns an index into in->eps, or -1 when no endpoint can take traffic. */
long dp_lb_pick_from(dp_lb_policy policy, const dp_lb_input *in, uint64_t *rr_cursor,
                     dp_rng *rng);

/* Returns an index into eps, or -1 when no endpoint can take traffic.
 * active[i] = in-flight requests on endpoint i (least request; may be NULL
 * for round robin). avoid (-1 for none) is skipped when another usable
 * endpoint exists: a retry should go elsewhere. */
long dp_lb_pick(dp_lb_policy policy, const dp_endpoint *eps, size_t n, const uint32_t *active,
                uint64_t *rr_cursor, dp_rng *rng, long avoid);

#endif
