/* sidecar/dp_lb.c — round robin and least-request (P2C) picks (see dp_lb.h). */
#include "sidecar/dp_lb.h"

#include <stdlib.h>

static bool flag(const bool *v, size_t i)
{
    return v != NULL && v[i];
}

/* Marks in ok[] the endpoints a pick may take, in Envoy's order of
 * preference: usable by EDS and not down here (ejected, failed health
 * check), unless fewer than DP_LB_PANIC_PERCENT of the EDS-usable ones are
 * (panic: the local view is not trusted, every EDS-usable one is taken);
 * DEGRADED ones only when nothing else is; every endpoint when none is
 * healthy or degraded either. Then the tried ones are dropped
 * if that leaves any. Returns how many are marked. */
static size_t candidates(const dp_lb_input *in, bool *ok)
{
    size_t n_eds = 0, n_up = 0;
    for (size_t i = 0; i < in->n; i++) {
        bool eds = dp_health_usable(in->eps[i].health);
        n_eds += eds;
        n_up += eds && !flag(in->down, i);
    }
    bool panic = n_up * 100 < (size_t)DP_LB_PANIC_PERCENT * n_eds;
    size_t k = 0;
    for (size_t i = 0; i < in->n; i++) {
        bool eds = dp_health_usable(in->eps[i].health);
        ok[i] = n_eds > 0 ? eds && (panic || !flag(in->down, i))
                          : in->eps[i].health == DP_HEALTH_DEGRADED;
        k += ok[i];
    }
    if (k == 0) {   /* EDS panic: nothing healthy or degraded, so everything (dp_lb.h) */
        for (size_t i = 0; i < in->n; i++)
            ok[i] = true;
        k = in->n;
    }
    size_t untried = 0;
    for (size_t i = 0; i < in->n; i++)
        untried += ok[i] && !flag(in->tried, i);
    if (untried > 0 && untried < k) {
        for (size_t i = 0; i < in->n; i++)
            if (flag(in->tried, i))
                ok[i] = false;
        k = untried;
    }
    return k;
}

static long pick_rr(const dp_lb_input *in, const bool *ok, uint64_t *cursor)
{
    /* Walk from the cursor so the order is the endpoints' order, which is
     * what operators expect to see in access logs. */
    for (size_t step = 0; step < in->n; step++) {
        size_t i = (size_t)((*cursor + step) % in->n);
        if (ok[i]) {
            *cursor = *cursor + step + 1;
            return (long)i;
        }
    }
    return -1;
}

static long pick_lr(const dp_lb_input *in, const bool *ok, size_t k, dp_rng *rng)
{
    if (k == 0)
        return -1;
    size_t a = 0, b = 0;
    if (k > 1) {
        a = (size_t)dp_rng_below(rng, k);
        b = (size_t)dp_rng_below(rng, k - 1);
        if (b >= a)
            b++;                /* two distinct samples */
    }
    long ia = -1, ib = -1;
    for (size_t i = 0, j = 0; i < in->n; i++) {
        if (!ok[i])
            continue;
        if (j == a)
            ia = (long)i;
        if (j == b)
            ib = (long)i;
        j++;
    }
    uint32_t la = in->active ? in->active[ia] : 0, lb = in->active ? in->active[ib] : 0;
    return lb < la ? ib : ia;
}

long dp_lb_pick_from(dp_lb_policy policy, const dp_lb_input *in, uint64_t *rr_cursor,
                     dp_rng *rng)
{
    if (in->n == 0)
        return -1;
    bool stack[64];
    bool *ok = in->n <= 64 ? stack : malloc(in->n * sizeof *ok);
    if (!ok)
        return -1;
    size_t k = candidates(in, ok);
    long res = policy == DP_LB_LEAST_REQUEST ? pick_lr(in, ok, k, rng) : pick_rr(in, ok, rr_cursor);
    if (ok != stack)
        free(ok);
    return res;
}

long dp_lb_pick(dp_lb_policy policy, const dp_endpoint *eps, size_t n, const uint32_t *active,
                uint64_t *rr_cursor, dp_rng *rng, long avoid)
{
    bool stack[64];
    bool *tried = NULL;
    if (avoid >= 0 && (size_t)avoid < n) {
        tried = n <= 64 ? stack : calloc(n, sizeof *tried);
        if (!tried)
            return -1;
        for (size_t i = 0; i < n; i++)
            tried[i] = (long)i == avoid;
    }
    dp_lb_input in = {.eps = eps, .n = n, .active = active, .tried = tried};
    long res = dp_lb_pick_from(policy, &in, rr_cursor, rng);
    if (tried && tried != stack)
        free(tried);
    return res;
}
