/* tests/unit/test_sidecar_health.c — the sidecar's own view of upstream hosts
 * (dp_health.c, dp_lb.c): outlier ejection after consecutive failures, growing
 * ejection time and its decay, max_ejection_percent, health-check thresholds and
 * jitter, the LB skipping ejected hosts (with the panic threshold) and retries
 * avoiding every earlier host (previous_hosts). Time is injected. */
#include <criterion/criterion.h>

#include "sidecar/dp_health.h"
#include "sidecar/dp_lb.h"

static const dp_outlier_cfg OD = {
    .enabled = true, .consecutive_5xx = 3, .consecutive_gateway_failure = 0,
    .interval_ms = 1000, .base_ejection_ms = 4000, .max_ejection_ms = 10000,
    .max_ejection_percent = 50,
};

Test(sidecar_outlier, consecutive_failures_eject_and_success_resets)
{
    dp_outlier_host h = {0};
    cr_assert_not(dp_outlier_record(&h, &OD, 503, 0, 0, 3));
    cr_assert_not(dp_outlier_record(&h, &OD, DP_RESULT_CONNECT_FAILED, 1, 0, 3));
    cr_assert_not(dp_outlier_record(&h, &OD, 200, 2, 0, 3), "a success in between");
    cr_assert_not(dp_outlier_record(&h, &OD, 500, 3, 0, 3));
    cr_assert_not(dp_outlier_record(&h, &OD, DP_RESULT_TIMEOUT, 4, 0, 3));
    cr_assert_not(dp_outlier_ejected(&h, 5));
    cr_assert(dp_outlier_record(&h, &OD, 502, 5, 0, 3), "third failure in a row ejects");
    cr_assert(dp_outlier_ejected(&h, 6));
    cr_assert(dp_outlier_ejected(&h, 4004));
    cr_assert_not(dp_outlier_ejected(&h, 4005), "back after base_ejection_time");
    cr_assert_eq(h.ejections_total, 1);
    cr_assert_not(dp_outlier_record(&h, &OD, 404, 4006, 0, 3), "4xx is not a failure");
}

Test(sidecar_outlier, ejection_time_grows_caps_and_decays)
{
    dp_outlier_host h = {0};
    int64_t t = 0;
    int64_t want[] = {4000, 8000, 10000, 10000};
    for (size_t k = 0; k < 4; k++) {
        for (int i = 0; i < 3; i++)
            dp_outlier_record(&h, &OD, 503, t, 0, 3);
        cr_assert(h.ejected, "round %zu", k);
        cr_assert_eq(h.ejected_until_ms - t, want[k], "round %zu: %lld", k,
                     (long long)(h.ejected_until_ms - t));
        t = h.ejected_until_ms;
        cr_assert_not(dp_outlier_ejected(&h, t));
    }
    /* Five quiet intervals bring the level from 4 down to 0: base time again. */
    t += 5 * OD.interval_ms;
    cr_assert_eq(dp_outlier_next_ejection_ms(&h, &OD, t), 4000);
    /* Two quiet intervals only: level 4 - 2 = 2, the next is the third step. */
    cr_assert_eq(dp_outlier_next_ejection_ms(&h, &OD, h.level_since_ms + 2000), 10000);
}

Test(sidecar_outlier, max_ejection_percent_and_disabled)
{
    dp_outlier_host h = {0};
    for (int i = 0; i < 3; i++)
        dp_outlier_record(&h, &OD, 503, i, 2, 4);   /* 2 of 4 out: 50 % */
    cr_assert_not(h.ejected, "50 %% already ejected: refused");
    for (int i = 0; i < 3; i++)
        dp_outlier_record(&h, &OD, 503, 10 + i, 1, 4);
    cr_assert(h.ejected, "25 %% < 50 %%: allowed");
    dp_outlier_cfg ten = OD;
    ten.max_ejection_percent = 10;
    dp_outlier_host small = {0};
    for (int i = 0; i < 3; i++)
        dp_outlier_record(&small, &ten, 503, i, 0, 3);
    cr_assert(small.ejected, "one host of a small cluster can always go (Envoy)");
    dp_outlier_cfg off = OD;
    off.enabled = false;
    dp_outlier_host o = {0};
    for (int i = 0; i < 10; i++)
        cr_assert_not(dp_outlier_record(&o, &off, 503, i, 0, 3));
    dp_outlier_cfg gw = OD;
    gw.consecutive_5xx = 0;
    gw.consecutive_gateway_failure = 2;
    dp_outlier_host g = {0};
    dp_outlier_record(&g, &gw, 500, 0, 0, 3);
    dp_outlier_record(&g, &gw, 503, 1, 0, 3);
    cr_assert_not(g.ejected, "a 500 breaks a gateway-failure run");
    dp_outlier_record(&g, &gw, 504, 2, 0, 3);
    cr_assert(g.ejected);
}

Test(sidecar_hc, thresholds_and_jitter)
{
    dp_health_check_cfg c = {.kind = DP_HC_HTTP, .interval_ms = 1000, .timeout_ms = 100,
                             .unhealthy_threshold = 2, .healthy_threshold = 3,
                             .interval_jitter_percent = 10};
    dp_hc_host h = {0};
    cr_assert_not(dp_hc_record(&h, &c, false));
    cr_assert_not(h.failed, "one failure of two");
    cr_assert(dp_hc_record(&h, &c, false));
    cr_assert(h.failed);
    cr_assert_not(dp_hc_record(&h, &c, true));
    cr_assert_not(dp_hc_record(&h, &c, false), "a failure restarts the success run");
    cr_assert_not(dp_hc_record(&h, &c, true));
    cr_assert_not(dp_hc_record(&h, &c, true));
    cr_assert(dp_hc_record(&h, &c, true), "three successes in a row");
    cr_assert_not(h.failed);
    cr_assert_eq(dp_hc_next_delay_ms(&c, 0), 1000);
    cr_assert_eq(dp_hc_next_delay_ms(&c, 100), 1100);
    cr_assert_eq(dp_hc_next_delay_ms(&c, 101), 1000, "jitter is at most 10 %%");
}

/* The first probe of a new host comes within the jitter (a tenth of the interval
 * without one), never at a fixed offset: sidecars started together spread out. */
Test(sidecar_hc, first_probe_is_jittered)
{
    dp_health_check_cfg c = {.kind = DP_HC_HTTP, .interval_ms = 1000, .interval_jitter_percent = 10};
    cr_assert_eq(dp_hc_first_delay_ms(&c, 0), 0);
    cr_assert_eq(dp_hc_first_delay_ms(&c, 57), 57);
    cr_assert_eq(dp_hc_first_delay_ms(&c, 100), 100);
    cr_assert_eq(dp_hc_first_delay_ms(&c, 101), 0, "within the 100 ms jitter");
    dp_health_check_cfg none = {.kind = DP_HC_TCP, .interval_ms = 2000};
    cr_assert_eq(dp_hc_first_delay_ms(&none, 150), 150);
    cr_assert_eq(dp_hc_first_delay_ms(&none, 201), 0, "a tenth of the interval");
    dp_health_check_cfg big = {.kind = DP_HC_TCP, .interval_ms = 500, .interval_jitter_ms = 5000};
    for (uint64_t r = 0; r < 6000; r += 37)
        cr_assert_leq(dp_hc_first_delay_ms(&big, r), 500, "never later than one interval");
    /* Different draws give different delays. */
    cr_assert_neq(dp_hc_first_delay_ms(&c, 3), dp_hc_first_delay_ms(&c, 4));
}

Test(sidecar_lb, skips_down_hosts_with_panic_threshold)
{
    dp_endpoint eps[3] = {{.address = "a"}, {.address = "b"}, {.address = "c"}};
    bool down[3] = {false, false, true};
    dp_rng rng;
    dp_rng_seed(&rng, 7);
    uint64_t cur = 0;
    dp_lb_input in = {.eps = eps, .n = 3, .down = down};
    for (int i = 0; i < 30; i++)
        cr_assert_neq(dp_lb_pick_from(DP_LB_ROUND_ROBIN, &in, &cur, &rng), 2);
    for (int i = 0; i < 30; i++)
        cr_assert_neq(dp_lb_pick_from(DP_LB_LEAST_REQUEST, &in, &cur, &rng), 2);
    /* 2 of 3 down: 33 % up < 50 %: panic, every host is used again. */
    bool two[3] = {true, true, false};
    in.down = two;
    int seen[3] = {0};
    for (int i = 0; i < 30; i++)
        seen[dp_lb_pick_from(DP_LB_ROUND_ROBIN, &in, &cur, &rng)]++;
    cr_assert(seen[0] > 0 && seen[1] > 0 && seen[2] > 0, "panic spreads over all");
}

Test(sidecar_lb, previous_hosts_avoids_every_tried_host)
{
    dp_endpoint eps[3] = {{.address = "a"}, {.address = "b"}, {.address = "c"}};
    bool tried[3] = {true, true, false};
    dp_rng rng;
    dp_rng_seed(&rng, 3);
    uint64_t cur = 0;
    dp_lb_input in = {.eps = eps, .n = 3, .tried = tried};
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(dp_lb_pick_from(DP_LB_ROUND_ROBIN, &in, &cur, &rng), 2);
        cr_assert_eq(dp_lb_pick_from(DP_LB_LEAST_REQUEST, &in, &cur, &rng), 2);
    }
    bool all[3] = {true, true, true};
    in.tried = all;
    cr_assert_geq(dp_lb_pick_from(DP_LB_ROUND_ROBIN, &in, &cur, &rng), 0,
                  "every host tried: one is still picked");
    /* A down host is not a way out of previous_hosts. */
    bool down[3] = {false, false, true};
    in.tried = tried;
    in.down = down;
    long k = dp_lb_pick_from(DP_LB_ROUND_ROBIN, &in, &cur, &rng);
    cr_assert(k == 0 || k == 1, "got %ld", k);
}
