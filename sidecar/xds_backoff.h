/* sidecar/xds_backoff.h — reconnect / retry delays for the sidecar's control-plane client.
 *
 * Exponential growth with "full jitter" (AWS architecture blog, Istio's
 * agent): the n-th delay is drawn uniformly from [min, min(max, min * 2^n)].
 * The floor at `min` (instead of 0) keeps a flapping meshd from being hit in
 * a tight loop, while the jitter spreads 10,000 sidecars that lost meshd at
 * the same moment over the whole window instead of reconnecting in waves.
 * Pure logic with its own PRNG state, so tests can check the bounds. */
#ifndef MESH_SIDECAR_XDS_BACKOFF_H
#define MESH_SIDECAR_XDS_BACKOFF_H

#include <stdint.h>

#define XDSC_BACKOFF_MIN_MS 250
#define XDSC_BACKOFF_MAX_MS 30000
/* --reconnect-max is a cap between these (mesh-sidecar and meshctl drill check it). */
#define XDSC_BACKOFF_CAP_LO_MS XDSC_BACKOFF_MIN_MS
#define XDSC_BACKOFF_CAP_HI_MS (3600 * 1000)

typedef struct xdsc_backoff {
    int64_t min_ms;
    int64_t max_ms;
    unsigned attempt;   /* delays handed out since the last reset */
    uint64_t rng;       /* xorshift64* state, never 0 */
} xdsc_backoff;

/* min_ms >= 1, max_ms >= min_ms (clamped otherwise). seed 0 picks one from
 * the clock and pid. */
void xdsc_backoff_init(xdsc_backoff *b, int64_t min_ms, int64_t max_ms, uint64_t seed);
/* The next delay in ms, then grows the window. */
int64_t xdsc_backoff_next(xdsc_backoff *b);
/* The upper bound the next call can return (for logs and tests). */
int64_t xdsc_backoff_ceiling(const xdsc_backoff *b);
/* After a success: the next delay starts from the smallest window again. */
void xdsc_backoff_reset(xdsc_backoff *b);
/* A uniform draw in [lo, hi] from the backoff's PRNG (renewal jitter). */
int64_t xdsc_backoff_uniform(xdsc_backoff *b, int64_t lo, int64_t hi);

#endif
