/* sidecar/dp_rng.h — the data plane's small, injectable random source.
 *
 * Weighted cluster picks, least-request sampling and x-request-id need cheap
 * randomness, not cryptographic strength. Tests need it reproducible, so the
 * generator is a value the proxy owns (no hidden global): splitmix64 by
 * default, or any function the test supplies. */
#ifndef MESH_SIDECAR_DP_RNG_H
#define MESH_SIDECAR_DP_RNG_H

#include <stdint.h>

typedef uint64_t (*dp_rng_fn)(void *arg);

typedef struct dp_rng {
    dp_rng_fn fn;       /* NULL = built-in splitmix64 over state */
    void *arg;
    uint64_t state;
} dp_rng;

/* Built-in generator; seed 0 draws a seed from the OpenSSL RNG. */
void dp_rng_seed(dp_rng *r, uint64_t seed);
/* A caller-supplied generator (tests). */
void dp_rng_custom(dp_rng *r, dp_rng_fn fn, void *arg);
uint64_t dp_rng_next(dp_rng *r);
/* Uniform in [0, n); n == 0 returns 0. Unbiased (rejection sampling). */
uint64_t dp_rng_below(dp_rng *r, uint64_t n);

#endif
