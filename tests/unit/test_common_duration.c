/* tests/unit/test_common_duration.c — common/duration: the one duration
 * grammar of every command-line flag, both meanings of a bare number, and
 * the strings that must be refused (" +5m" was accepted by meshd's own
 * parser, which this one replaced). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "common/duration.h"

static int64_t ms_of(const char *s, enum duration_bare bare)
{
    int64_t ms = -1;
    mesh_err err = {0};
    cr_assert_eq(duration_parse_ms(s, bare, &ms, &err), MESH_OK, "'%s': %s", s, err.msg);
    return ms;
}

Test(duration, units)
{
    cr_assert_eq(ms_of("250ms", DURATION_BARE_SECONDS), 250);
    cr_assert_eq(ms_of("90s", DURATION_BARE_SECONDS), 90000);
    cr_assert_eq(ms_of("15m", DURATION_BARE_SECONDS), 15 * 60000);
    cr_assert_eq(ms_of("24h", DURATION_BARE_SECONDS), 24 * 3600000LL);
    cr_assert_eq(ms_of("7d", DURATION_BARE_SECONDS), 7 * 86400000LL);
    cr_assert_eq(ms_of("1y", DURATION_BARE_SECONDS), 365 * 86400000LL);
    cr_assert_eq(ms_of("0s", DURATION_BARE_SECONDS), 0);
    cr_assert_eq(ms_of("007s", DURATION_BARE_SECONDS), 7000);
}

Test(duration, a_bare_number_counts_in_the_flags_unit)
{
    cr_assert_eq(ms_of("200", DURATION_BARE_MILLIS), 200, "--poll-interval 200 is 200 ms");
    cr_assert_eq(ms_of("200", DURATION_BARE_SECONDS), 200000);
    cr_assert_eq(ms_of("0", DURATION_BARE_MILLIS), 0);
    /* A unit always wins over the bare rule. */
    cr_assert_eq(ms_of("2s", DURATION_BARE_MILLIS), 2000);
    cr_assert_eq(ms_of("200ms", DURATION_BARE_SECONDS), 200);
}

Test(duration, anything_but_digits_and_one_unit_is_refused)
{
    const char *bad[] = {" +5m", "+5m", "-5m", " 5m", "5m ", "5 m", "1.5s", "5x", "5mm",
                         "5sm", "m", "ms", "", "5M", "5S", "0x10s", "1e3", "\t5s", "5s\n",
                         "five", "5min", "5hours"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int b = DURATION_BARE_SECONDS; b <= DURATION_BARE_MILLIS; b++) {
            int64_t ms = 12345;
            mesh_err err = {0};
            cr_assert_eq(duration_parse_ms(bad[i], (enum duration_bare)b, &ms, &err),
                         MESH_EINVAL, "'%s' accepted", bad[i]);
            cr_assert_eq(ms, 12345, "'%s' wrote a value", bad[i]);
            cr_assert(err.msg[0], "'%s' refused without a message", bad[i]);
        }
    }
    mesh_err err = {0};
    int64_t ms;
    cr_assert_eq(duration_parse_ms(NULL, DURATION_BARE_SECONDS, &ms, &err), MESH_EINVAL);
}

Test(duration, the_message_quotes_the_value_and_the_grammar)
{
    mesh_err err = {0};
    int64_t ms;
    duration_parse_ms(" +5m", DURATION_BARE_SECONDS, &ms, &err);
    cr_assert(strstr(err.msg, "' +5m'"), "%s", err.msg);
    cr_assert(strstr(err.msg, "15m"), "an example in: %s", err.msg);
    duration_parse_ms("5x", DURATION_BARE_SECONDS, &ms, &err);
    cr_assert(strstr(err.msg, "unit"), "%s", err.msg);
}

Test(duration, overflow_is_refused_not_wrapped)
{
    mesh_err err = {0};
    int64_t ms = 0;
    cr_assert_eq(duration_parse_ms("9223372036854775807", DURATION_BARE_MILLIS, &ms, &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(ms, INT64_MAX);
    cr_assert_eq(duration_parse_ms("9223372036854775808", DURATION_BARE_MILLIS, &ms, &err),
                 MESH_EINVAL);
    cr_assert_eq(duration_parse_ms("9223372036854775807", DURATION_BARE_SECONDS, &ms, &err),
                 MESH_EINVAL);
    cr_assert_eq(duration_parse_ms("300000000y", DURATION_BARE_SECONDS, &ms, &err),
                 MESH_EINVAL);
    cr_assert(strstr(err.msg, "too large"), "%s", err.msg);
}

Test(duration, formatting)
{
    char b[48];
    duration_format(0, b, sizeof b);
    cr_assert_str_eq(b, "0s");
    duration_format(90061, b, sizeof b);
    cr_assert_str_eq(b, "1d1h1m1s");
    duration_format(90 * 86400, b, sizeof b);
    cr_assert_str_eq(b, "90d");
    duration_format_ms(250, b, sizeof b);
    cr_assert_str_eq(b, "250ms");
    duration_format_ms(1500, b, sizeof b);
    cr_assert_str_eq(b, "1s500ms");
    duration_format_ms(60000, b, sizeof b);
    cr_assert_str_eq(b, "1m");
    duration_format_ms(0, b, sizeof b);
    cr_assert_str_eq(b, "0s");
}
