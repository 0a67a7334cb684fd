/* tests/unit/test_common_prom_out.c — the Prometheus text exposition writer and histogram
 * (common/prom_out.h): HELP/TYPE lines, label value escaping (backslash, quote, newline,
 * invalid UTF-8), number spelling, cumulative buckets ending in +Inf = _count, _sum. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/prom_out.h"

static char *text_of(prom_out *p)
{
    const char *t = prom_text(p);
    cr_assert_not_null(t);
    char *copy = strdup(t);
    prom_free(p);
    return copy;
}

Test(prom_out, family_lines_escape_help_text)
{
    prom_out p;
    prom_init(&p);
    prom_family(&p, "x_total", "counter", "back\\slash and\nnewline \"quoted\"");
    char *t = text_of(&p);
    /* HELP escapes backslash and newline only; quotes stay as they are. */
    cr_assert_str_eq(t, "# HELP x_total back\\\\slash and\\nnewline \"quoted\"\n"
                        "# TYPE x_total counter\n");
    free(t);
}

Test(prom_out, label_values_are_escaped)
{
    prom_out p;
    prom_init(&p);
    prom_label l[] = {{"a", "q\"b\\s\nn"}, {"b", "plain"}};
    prom_sample_u64(&p, "m", l, 2, 7);
    char *t = text_of(&p);
    cr_assert_str_eq(t, "m{a=\"q\\\"b\\\\s\\nn\",b=\"plain\"} 7\n");
    free(t);
}

Test(prom_out, utf8_passes_and_invalid_bytes_become_replacement_chars)
{
    prom_out p;
    prom_init(&p);
    prom_label l[] = {{"id", "h\xc3\xa9 \xe2\x9c\x93 \xff\xc3"}};
    prom_sample_u64(&p, "m", l, 1, 1);
    char *t = text_of(&p);
    cr_assert_str_eq(t, "m{id=\"h\xc3\xa9 \xe2\x9c\x93 \xef\xbf\xbd\xef\xbf\xbd\"} 1\n");
    free(t);
}

Test(prom_out, no_labels_and_special_values)
{
    prom_out p;
    prom_init(&p);
    prom_sample_u64(&p, "a", NULL, 0, 18446744073709551615ull);
    prom_sample(&p, "b", NULL, 0, -12.5);
    prom_sample(&p, "c", NULL, 0, INFINITY);
    prom_sample(&p, "d", NULL, 0, -INFINITY);
    prom_sample(&p, "e", NULL, 0, NAN);
    char *t = text_of(&p);
    cr_assert_str_eq(t, "a 18446744073709551615\nb -12.5\nc +Inf\nd -Inf\ne NaN\n");
    free(t);
}

Test(prom_out, empty_output_is_an_empty_string)
{
    prom_out p;
    prom_init(&p);
    cr_assert_str_eq(prom_text(&p), "");
    prom_free(&p);
}

static const double bounds[] = {0.1, 1, 10};

Test(prom_hist, buckets_are_cumulative_and_end_in_inf_equal_to_count)
{
    prom_hist h;
    cr_assert_eq(prom_hist_init(&h, bounds, 3), 0);
    prom_hist_observe(&h, 0.05);
    prom_hist_observe(&h, 0.1);   /* on a bound: counts in that bucket (le = less or equal) */
    prom_hist_observe(&h, 0.5);
    prom_hist_observe(&h, 20);
    prom_hist_observe(&h, 20);
    prom_out p;
    prom_init(&p);
    prom_label l[] = {{"op", "poll"}};
    prom_hist_write(&p, "lat_seconds", l, 1, &h);
    char *t = text_of(&p);
    cr_assert_str_eq(t, "lat_seconds_bucket{op=\"poll\",le=\"0.1\"} 2\n"
                        "lat_seconds_bucket{op=\"poll\",le=\"1\"} 3\n"
                        "lat_seconds_bucket{op=\"poll\",le=\"10\"} 3\n"
                        "lat_seconds_bucket{op=\"poll\",le=\"+Inf\"} 5\n"
                        "lat_seconds_sum{op=\"poll\"} 40.65\n"
                        "lat_seconds_count{op=\"poll\"} 5\n");
    free(t);
}

Test(prom_hist, without_labels_and_empty)
{
    prom_hist h;
    cr_assert_eq(prom_hist_init(&h, bounds, 3), 0);
    prom_out p;
    prom_init(&p);
    prom_hist_write(&p, "h", NULL, 0, &h);
    char *t = text_of(&p);
    cr_assert_str_eq(t, "h_bucket{le=\"0.1\"} 0\nh_bucket{le=\"1\"} 0\nh_bucket{le=\"10\"} 0\n"
                        "h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
    free(t);
}

Test(prom_hist, negative_and_nan_count_as_zero)
{
    prom_hist h;
    cr_assert_eq(prom_hist_init(&h, bounds, 3), 0);
    prom_hist_observe(&h, -3);
    prom_hist_observe(&h, NAN);
    cr_assert_eq(atomic_load(&h.counts[0]), 2);
    cr_assert_eq(atomic_load(&h.sum_micro), 0);
}

Test(prom_hist, bad_bounds_are_refused)
{
    prom_hist h;
    static const double down[] = {1, 0.5};
    static const double same[] = {1, 1};
    static double many[PROM_HIST_MAX_BUCKETS + 1];
    for (int i = 0; i <= PROM_HIST_MAX_BUCKETS; i++)
        many[i] = i + 1;
    cr_assert_eq(prom_hist_init(&h, down, 2), -1);
    cr_assert_eq(prom_hist_init(&h, same, 2), -1);
    cr_assert_eq(prom_hist_init(&h, many, PROM_HIST_MAX_BUCKETS + 1), -1);
    cr_assert_eq(prom_hist_init(&h, many, PROM_HIST_MAX_BUCKETS), 0);
}
