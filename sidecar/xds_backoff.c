/* sidecar/xds_backoff.c — exponential backoff with full jitter (see xds_backoff.h). */
#include "sidecar/xds_backoff.h"

#include <time.h>
#include <unistd.h>

static uint64_t xorshift64star(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void xdsc_backoff_init(xdsc_backoff *b, int64_t min_ms, int64_t max_ms, uint64_t seed)
{
    if (min_ms < 1)
        min_ms = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->attempt = 0;
    if (seed == 0) {
        /* Jitter only needs to differ between sidecars, not be secret. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    }
    b->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
}

int64_t xdsc_backoff_ceiling(const xdsc_backoff *b)
{
    int64_t c = b->min_ms;
    /* Doubling stops once the cap is reached, so this never overflows. */
    for (unsigned i = 0; i < b->attempt && c < b->max_ms; i++)
        c *= 2;
    return c > b->max_ms ? b->max_ms : c;
}

int64_t xdsc_backoff_uniform(xdsc_backoff *b, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(xorshift64star(&b->rng) % span);
}

int64_t xdsc_backoff_next(xdsc_backoff *b)
{
    int64_t d = xdsc_backoff_uniform(b, b->min_ms, xdsc_backoff_ceiling(b));
    if (b->attempt < 64)
        b->attempt++;
    return d;
}

void xdsc_backoff_reset(xdsc_backoff *b) { b->attempt = 0; }
