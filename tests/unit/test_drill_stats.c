/* tests/unit/test_drill_stats.c — counting: the latency bucket function at every
 * range boundary, quantiles, counting a request into its second / phase / totals
 * (and the first-failure lines), failure causes and texts, and closing a second
 * with the sidecars' budgets and the status line. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "drill/drill_stats.h"
#include "tests/unit/test_drill_util.h"

/* ---- latency ------------------------------------------------------------------------- */

Test(drill_stats, lat_bucket_boundaries)
{
    const struct { double ms; int bucket; } cases[] = {
        {0, 0},          {0.0099, 0},     {0.01, 1},       {0.5, 50},      {0.999, 99},
        {1.0, 100},      {1.0999, 100},   {1.1, 101},      {9.999, 189},   {10.0, 190},
        {99.999, 279},   {100.0, 280},    {999.99, 369},   {1000.0, 370},  {9999.0, 459},
        {10000.0, 459},  {1e9, 459},      {-5, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(drill_lat_bucket(cases[i].ms), cases[i].bucket, "%g ms: bucket %d, wanted %d",
                     cases[i].ms, drill_lat_bucket(cases[i].ms), cases[i].bucket);
    cr_assert_eq(drill_lat_bucket(NAN), DRILL_LAT_BUCKETS - 1);
    cr_assert_eq(drill_lat_bucket(INFINITY), DRILL_LAT_BUCKETS - 1);
}

Test(drill_stats, lat_buckets_are_ordered_and_stand_for_themselves)
{
    int last = 0;
    for (double ms = 0; ms < 20000; ms = ms < 1 ? ms + 0.001 : ms * 1.001) {
        int b = drill_lat_bucket(ms);
        cr_assert(b >= last && b < DRILL_LAT_BUCKETS, "%g ms -> %d after %d", ms, b, last);
        last = b;
    }
    for (int b = 0; b < DRILL_LAT_BUCKETS; b++)
        cr_assert_eq(drill_lat_bucket(drill_lat_bucket_ms(b)), b, "bucket %d's value %g ms", b,
                     drill_lat_bucket_ms(b));
    cr_assert_float_eq(drill_lat_bucket_ms(0), 0.005, 1e-12);
    cr_assert_float_eq(drill_lat_bucket_ms(100), 1.05, 1e-12);
    cr_assert_float_eq(drill_lat_bucket_ms(DRILL_LAT_BUCKETS - 1), 9950.0, 1e-9);
}

Test(drill_stats, hist_quantiles)
{
    drill_hist h;
    memset(&h, 0, sizeof h);
    cr_assert_float_eq(drill_hist_quantile(&h, 0.5), 0, 1e-12, "empty");
    drill_hist_add(&h, 1.234);
    cr_assert_float_eq(drill_hist_quantile(&h, 0.5), 1.25, 1e-9);
    cr_assert_float_eq(drill_hist_quantile(&h, 0.0), 1.25, 1e-9, "q = 0 is the smallest");

    memset(&h, 0, sizeof h);
    for (int i = 0; i < 98; i++)
        drill_hist_add(&h, 0.5);
    drill_hist_add(&h, 500);
    drill_hist_add(&h, 500);
    cr_assert_eq(h.n, 100);
    cr_assert_float_eq(drill_hist_quantile(&h, 0.5), 0.505, 1e-9);
    cr_assert_float_eq(drill_hist_quantile(&h, 0.98), 0.505, 1e-9, "the 98th of 100");
    cr_assert_float_eq(drill_hist_quantile(&h, 0.99), 505.0, 1e-9, "the 99th of 100 is slow");
    cr_assert_float_eq(drill_hist_quantile(&h, 1.0), 505.0, 1e-9);
    drill_hist_add(&h, 1e7);
    cr_assert_float_eq(drill_hist_quantile(&h, 1.0), 9950.0, 1e-9, "past 10 s: the last bucket");

    /* Few samples: the rank rounds up, so p99 of three is the slowest one. */
    memset(&h, 0, sizeof h);
    drill_hist_add(&h, 0.5);
    drill_hist_add(&h, 0.5);
    drill_hist_add(&h, 500);
    cr_assert_float_eq(drill_hist_quantile(&h, 0.99), 505.0, 1e-9);
    cr_assert_float_eq(drill_hist_quantile(&h, 0.5), 0.505, 1e-9, "rank 2 of 3");
}

/* ---- counting ---------------------------------------------------------------------------- */

Test(drill_stats, count_ok_and_failed)
{
    drill_run *r = tdr_run(2, 1);
    r->phase = DRILL_PH_OUTAGE;
    drill_count(r, &r->sc[1], 4.5, 1, 2.0, NULL);
    drill_count(r, &r->sc[1], 4.6, 1, 2.0, NULL);
    cr_assert_eq(r->cur_ok, 2);
    cr_assert_eq(r->total_ok, 2);
    cr_assert_eq(r->phase_ok[DRILL_PH_OUTAGE], 2);
    cr_assert_eq(r->sc[1].ok, 2);
    cr_assert_eq(r->cur_hist.n, 2);
    cr_assert_eq(r->phase_hist[DRILL_PH_OUTAGE].n, 2);
    cr_assert_eq(r->n_fail_t, 0);

    drill_count(r, &r->sc[0], 5.25, 0, 1000, NULL);
    drill_count(r, &r->sc[0], 5.5, 0, 1000, "HTTP 503 via client-1");
    cr_assert_eq(r->cur_failed, 2);
    cr_assert_eq(r->total_failed, 2);
    cr_assert_eq(r->phase_failed[DRILL_PH_OUTAGE], 2);
    cr_assert_eq(r->sc[0].failed, 2);
    cr_assert_float_eq(r->sc[0].first_fail_at, 5.25, 1e-9);
    cr_assert_float_eq(r->first_fail_at, 5.25, 1e-9);
    cr_assert_str_eq(r->first_fail_desc, "failed", "no description: \"failed\"");
    cr_assert_float_eq(r->phase_first_fail_at[DRILL_PH_OUTAGE], 5.25, 1e-9);
    cr_assert_eq(r->cur_hist.n, 2, "failures have no latency");
    cr_assert_eq(r->n_fail_t, 2);
    cr_assert_float_eq(r->fail_t[1], 5.5, 1e-6);

    r->phase = DRILL_PH_EXPIRED;
    drill_count(r, &r->sc[0], 15.5, 0, 1, "HTTP 503 via client-1: expired");
    cr_assert_str_eq(r->phase_first_fail[DRILL_PH_EXPIRED], "HTTP 503 via client-1: expired");
    cr_assert_str_eq(r->first_fail_desc, "failed", "the run's first failure stays");
    tdr_run_free(r);
}

Test(drill_stats, failure_times_grow_past_their_first_block)
{
    drill_run *r = tdr_run(1, 1);
    for (int i = 0; i < 5000; i++)
        drill_count(r, &r->sc[0], i / 1000.0, 0, 1, NULL);
    cr_assert_eq(r->n_fail_t, 5000);
    cr_assert_not(r->fail_t_capped);
    cr_assert_float_eq(r->fail_t[4999], 4.999, 1e-5);
    tdr_run_free(r);
}

Test(drill_stats, first_failure_of_each_phase_is_announced_once)
{
    drill_run *r = tdr_run(1, 1);
    r->o->quiet = 0;
    tdr_capture_start();
    r->phase = DRILL_PH_STEADY;
    drill_count(r, &r->sc[0], 1.0, 0, 1, "timeout via client-1");
    drill_count(r, &r->sc[0], 1.5, 0, 1, "timeout via client-1");
    r->phase = DRILL_PH_OUTAGE;
    drill_count(r, &r->sc[0], 4.0, 0, 1, "HTTP 503 via client-1");
    r->phase = DRILL_PH_EXPIRED;
    drill_count(r, &r->sc[0], 15.5, 0, 1, "HTTP 503 via client-1: expired");
    r->phase = DRILL_PH_RECOVERY;
    drill_count(r, &r->sc[0], 21.5, 0, 1, "HTTP 503 via client-1: still expired");
    char *out = tdr_capture_end();
    cr_assert_str_eq(out,
                     "  >> T+1.0s  first failed request (meshd up!): timeout via client-1\n"
                     "  >> T+4.0s  first failed request (no SVID expired yet!): HTTP 503 via client-1\n"
                     "  >> T+15.5s  first failed request since the expiry: HTTP 503 via client-1: expired\n");
    free(out);
    tdr_run_free(r);
}

Test(drill_stats, a_failure_in_recovery_is_news_without_an_expiry)
{
    drill_run *r = tdr_run(1, 1);
    r->o->quiet = 0;
    r->phase = DRILL_PH_RECOVERY;
    tdr_capture_start();
    drill_count(r, &r->sc[0], 22.0, 0, 1, "timeout via client-1");
    char *out = tdr_capture_end();
    cr_assert_str_eq(out, "  >> T+22.0s  first failed request: timeout via client-1\n");
    free(out);
    tdr_run_free(r);
}

Test(drill_stats, quiet_says_nothing)
{
    drill_run *r = tdr_run(1, 1);
    tdr_capture_start();
    drill_count(r, &r->sc[0], 1.0, 0, 1, "timeout");
    char *out = tdr_capture_end();
    cr_assert_str_eq(out, "");
    free(out);
    tdr_run_free(r);
}

Test(drill_stats, failure_kinds)
{
    drill_failkinds k;
    memset(&k, 0, sizeof k);
    drill_failkinds_add(&k, 503, NULL);
    drill_failkinds_add(&k, 503, "ignored");
    drill_failkinds_add(&k, 502, NULL);
    drill_failkinds_add(&k, 504, NULL);
    drill_failkinds_add(&k, 500, NULL);
    drill_failkinds_add(&k, 403, NULL);
    drill_failkinds_add(&k, 404, NULL);
    drill_failkinds_add(&k, 418, NULL);
    drill_failkinds_add(&k, 100, NULL);
    drill_failkinds_add(&k, 599, NULL);
    drill_failkinds_add(&k, 0, "timeout");
    drill_failkinds_add(&k, 0, "connection refused");
    drill_failkinds_add(&k, 0, "connection reset by peer");
    drill_failkinds_add(&k, 0, "connection closed before an answer");
    drill_failkinds_add(&k, 0, NULL);
    drill_failkinds_add(&k, 0, "DNS");
    drill_failkinds_add(&k, 99, "timeout");   /* not an HTTP status: the reason counts */
    drill_failkinds_add(&k, 600, NULL);
    cr_assert_eq(k.s503, 2);
    cr_assert_eq(k.s502, 1);
    cr_assert_eq(k.s504, 1);
    cr_assert_eq(k.s403, 1);
    cr_assert_eq(k.s404, 1);
    cr_assert_eq(k.by_status[5], 6);
    cr_assert_eq(k.by_status[4], 3);
    cr_assert_eq(k.by_status[1], 1);
    cr_assert_eq(k.timeout, 2);
    cr_assert_eq(k.refused, 1);
    cr_assert_eq(k.closed, 2);
    cr_assert_eq(k.other, 3);
}

Test(drill_stats, body_line)
{
    char out[8];
    drill_body_line("abcd", 4, out, sizeof out);
    cr_assert_str_eq(out, "abcd");
    drill_body_line("abcde", 5, out, sizeof out);
    cr_assert_str_eq(out, "abcd...", "cut short: says so, and fits");
    drill_body_line("abcd\nxyz", 8, out, sizeof out);
    cr_assert_str_eq(out, "abcd", "ends at the line");
    drill_body_line("ab\r\nc", 5, out, sizeof out);
    cr_assert_str_eq(out, "ab");
    char wide[16];
    drill_body_line("a\tb\x01\xff", 5, wide, sizeof wide);
    cr_assert_str_eq(wide, "a?b??", "printable ASCII only");
    drill_body_line("", 0, out, sizeof out);
    cr_assert_str_eq(out, "");
}

Test(drill_stats, failure_text)
{
    drill_run *r = tdr_run(1, 1);
    char out[320];
    const char *body = "no mTLS to cluster 'outbound|drill-server': SVID expired\nmore";
    drill_failure_text(&r->sc[0], 503, NULL, body, strlen(body), out, sizeof out);
    cr_assert_str_eq(out, "HTTP 503 via client-1: no mTLS to cluster 'outbound|drill-server': SVID expired");
    drill_failure_text(&r->sc[0], 504, NULL, "", 0, out, sizeof out);
    cr_assert_str_eq(out, "HTTP 504 via client-1");
    drill_failure_text(&r->sc[0], 0, "timeout", NULL, 0, out, sizeof out);
    cr_assert_str_eq(out, "timeout via client-1 (its outbound listener 127.0.0.1:24000)");
    drill_failure_text(&r->sc[0], 0, NULL, NULL, 0, out, sizeof out);
    cr_assert_str_eq(out, "no answer via client-1 (its outbound listener 127.0.0.1:24000)");
    tdr_run_free(r);
}

/* ---- seconds ----------------------------------------------------------------------------- */

Test(drill_stats, second_close_records_and_resets)
{
    drill_run *r = tdr_run(2, 2);
    tdr_svid(r, &r->sc[0], "a", 15);
    tdr_svid(r, &r->sc[1], "b", 14);
    tdr_svid(r, &r->sc[2], "c", 20);
    /* sc[3] has no SVID: it counts for neither budget */
    r->sc[0].ready = r->sc[2].ready = 1;
    r->phase = DRILL_PH_OUTAGE;
    r->cur_sec = 13;
    for (int i = 0; i < 10; i++)
        drill_count(r, &r->sc[0], 13.1, 1, 2.0, NULL);
    drill_count(r, &r->sc[0], 13.2, 0, 0, "x");
    r->cur_skipped = 3;
    drill_second *s = drill_second_close(r, TDR_WALL0 + 14.0, 0);
    cr_assert_not_null(s);
    cr_assert_eq(r->n_secs, 1);
    cr_assert_eq(s->t, 13);
    cr_assert_eq(s->phase, DRILL_PH_OUTAGE);
    cr_assert_eq(s->ok, 10);
    cr_assert_eq(s->failed, 1);
    cr_assert_eq(s->skipped, 3);
    cr_assert_float_eq(s->p50_ms, 2.05, 1e-9);
    cr_assert_float_eq(s->p99_ms, 2.05, 1e-9);
    cr_assert_float_eq(s->min_budget, 0.0, 1e-9);
    cr_assert_float_eq(s->max_budget, 6.0, 1e-9);
    cr_assert_eq(s->expired, 1, "a budget of exactly 0 is expired");
    cr_assert_eq(s->ready, 2);
    cr_assert_eq(s->meshd_up, 0);
    cr_assert_eq(r->cur_sec, 14);
    cr_assert_eq(r->cur_ok + r->cur_failed + r->cur_skipped, 0);
    cr_assert_eq(r->cur_hist.n, 0);

    s = drill_second_close(r, TDR_WALL0 + 15.5, 1);
    cr_assert_eq(s->t, 14);
    cr_assert_eq(s->ok, 0);
    cr_assert_float_eq(s->p99_ms, 0, 1e-12, "no answers: no latency");
    cr_assert_float_eq(s->min_budget, -1.5, 1e-9);
    cr_assert_eq(s->expired, 2);
    cr_assert_eq(s->meshd_up, 1);
    tdr_run_free(r);
}

Test(drill_stats, second_close_without_svids)
{
    drill_run *r = tdr_run(1, 1);
    drill_second *s = drill_second_close(r, TDR_WALL0 + 1, 1);
    cr_assert_float_eq(s->min_budget, 0, 1e-12);
    cr_assert_float_eq(s->max_budget, 0, 1e-12);
    cr_assert_eq(s->expired, 0);
    tdr_run_free(r);
}

Test(drill_stats, timeline_grows)
{
    drill_run *r = tdr_run(1, 1);
    for (int t = 0; t < 1000; t++) {
        r->cur_ok = (uint32_t)t;
        cr_assert_not_null(drill_second_close(r, TDR_WALL0 + t + 1, 1));
    }
    cr_assert_eq(r->n_secs, 1000);
    for (int t = 0; t < 1000; t++)
        cr_assert(r->secs[t].t == t && r->secs[t].ok == (uint32_t)t, "row %d", t);
    tdr_run_free(r);
}

Test(drill_stats, status_lines)
{
    drill_run *r = tdr_run(4, 1);
    r->o->quiet = 0;
    drill_second a = {.t = 20, .phase = DRILL_PH_OUTAGE, .ok = 50, .failed = 0, .min_budget = 48.7,
                      .ready = 5, .expired = 0, .meshd_up = 0, .p99_ms = 4.51};
    drill_second b = {.t = 61, .phase = DRILL_PH_EXPIRED, .ok = 0, .failed = 50,
                      .min_budget = -2.5, .ready = 0, .expired = 5, .meshd_up = 0};
    tdr_capture_start();
    drill_print_second(r, &a);
    drill_print_second(r, &b);
    char *out = tdr_capture_end();
    cr_assert_str_eq(out,
                     "      T  PHASE       OK/S FAIL/S  BUDGET  READY EXPIRED MESHD     P99\n"
                     "     20  outage        50      0     48s    5/5     0/5 down    4.5ms\n"
                     "     61  expired        0     50     -3s    0/5     5/5 down        -\n");
    free(out);
    tdr_run_free(r);
}
