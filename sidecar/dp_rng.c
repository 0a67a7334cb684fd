/* sidecar/dp_rng.c — splitmix64 and friends (see dp_rng.h). */
#include "sidecar/dp_rng.h"

#include <openssl/rand.h>
#include <string.h>
#include <time.h>

void dp_rng_seed(dp_rng *r, uint64_t seed)
{
    r->fn = NULL;
    r->arg = NULL;
    if (seed == 0) {
        if (RAND_bytes((unsigned char *)&seed, sizeof seed) != 1 || seed == 0) {
            /* The OpenSSL RNG failing is near impossible; the clock still
             * gives distinct sidecars distinct sequences. */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ 0x9e3779b97f4a7c15ULL;
        }
    }
    r->state = seed;
}

void dp_rng_custom(dp_rng *r, dp_rng_fn fn, void *arg)
{
    r->fn = fn;
    r->arg = arg;
    r->state = 0;
}

uint64_t dp_rng_next(dp_rng *r)
{
    if (r->fn)
        return r->fn(r->arg);
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t dp_rng_below(dp_rng *r, uint64_t n)
{
    if (n == 0)
        return 0;
    /* Reject the top partial range so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    for (int i = 0; i < 64; i++) {
        uint64_t v = dp_rng_next(r);
        if (v < limit)
            return v % n;
    }
    return dp_rng_next(r) % n;   /* a test generator stuck above limit */
}
