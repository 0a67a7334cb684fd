/* sidecar/dp_lb.c — round robin and least-request (P2C) picks (see dp_lb.h). */
#include "sidecar/dp_lb.h"

#include <stdlib.h>

/* Writes the usable endpoint indices into out; returns how many. */
static size_t usable_set(const dp_endpoint *eps, size_t n, long avoid, size_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (dp_health_usable(eps[i].health))
            out[k++] = i;
    if (k == 0)
        for (size_t i = 0; i < n; i++)
            if (eps[i].health == DP_HEALTH_DEGRADED)
                out[k++] = i;
    if (k == 0)   /* panic: nothing healthy, so everything (see dp_lb.h) */
        for (size_t i = 0; i < n; i++)
            out[k++] = i;
    if (avoid >= 0 && k > 1) {
        for (size_t i = 0; i < k; i++) {
            if ((long)out[i] == avoid) {
                out[i] = out[k - 1];
                k--;
                break;
            }
        }
    }
    return k;
}

static long pick_rr(const dp_endpoint *eps, size_t n, uint64_t *cursor, long avoid)
{
    /* Walk from the cursor so the order is the endpoints' order, which is
     * what operators expect to see in access logs. */
    bool any_usable = false, any_degraded = false;
    for (size_t i = 0; i < n; i++) {
        if (dp_health_usable(eps[i].health))
            any_usable = true;
        if (eps[i].health == DP_HEALTH_DEGRADED)
            any_degraded = true;
    }
    long fallback = -1;
    for (size_t step = 0; step < n; step++) {
        size_t i = (size_t)((*cursor + step) % n);
        bool ok = any_usable     ? dp_health_usable(eps[i].health)
                  : any_degraded ? eps[i].health == DP_HEALTH_DEGRADED
                                 : true;   /* panic (dp_lb.h) */
        if (!ok)
            continue;
        if ((long)i == avoid) {
            if (fallback < 0)
                fallback = (long)i;
            continue;
        }
        *cursor = *cursor + step + 1;
        return (long)i;
    }
    if (fallback >= 0)
        *cursor = (uint64_t)fallback + 1;
    return fallback;
}

static long pick_lr(const dp_endpoint *eps, size_t n, const uint32_t *active, dp_rng *rng,
                    long avoid)
{
    size_t stack[64];
    size_t *set = n <= 64 ? stack : malloc(n * sizeof *set);
    if (!set)
        return -1;
    size_t k = usable_set(eps, n, avoid, set);
    long res = -1;
    if (k == 1) {
        res = (long)set[0];
    } else if (k > 1) {
        size_t a = (size_t)dp_rng_below(rng, k);
        size_t b = (size_t)dp_rng_below(rng, k - 1);
        if (b >= a)
            b++;                /* two distinct samples */
        size_t ia = set[a], ib = set[b];
        uint32_t la = active ? active[ia] : 0, lb = active ? active[ib] : 0;
        res = (long)(lb < la ? ib : ia);
    }
    if (set != stack)
        free(set);
    return res;
}

long dp_lb_pick(dp_lb_policy policy, const dp_endpoint *eps, size_t n, const uint32_t *active,
                uint64_t *rr_cursor, dp_rng *rng, long avoid)
{
    if (n == 0)
        return -1;
    if (policy == DP_LB_LEAST_REQUEST)
        return pick_lr(eps, n, active, rng, avoid);
    return pick_rr(eps, n, rr_cursor, avoid);
}
