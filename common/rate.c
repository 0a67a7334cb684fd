/* common/rate.c — token bucket (see rate.h). */
#include "common/rate.h"

#include <string.h>

void mesh_rate_init(mesh_rate *r, double per_sec, double burst)
{
    memset(r, 0, sizeof *r);
    r->per_sec = per_sec;
    r->burst = burst;
    r->tokens = burst;
}

int mesh_rate_allow(mesh_rate *r, int64_t now_ms)
{
    if (r->last_ms == 0) {
        r->last_ms = now_ms;
    } else if (now_ms > r->last_ms) {
        r->tokens += (double)(now_ms - r->last_ms) * r->per_sec / 1000.0;
        if (r->tokens > r->burst)
            r->tokens = r->burst;
        r->last_ms = now_ms;
    }
    if (r->tokens >= 1.0) {
        r->tokens -= 1.0;
        return 1;
    }
    if (r->dropped++ == 0)
        r->first_drop_ms = now_ms;
    return 0;
}

uint64_t mesh_rate_take_dropped(mesh_rate *r, int64_t *since_ms)
{
    uint64_t n = r->dropped;
    if (since_ms)
        *since_ms = r->first_drop_ms;
    r->dropped = 0;
    r->first_drop_ms = 0;
    return n;
}
