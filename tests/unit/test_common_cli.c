/* tests/unit/test_common_cli.c — common/cli: flag values in range, and every
 * refusal naming the flag and the value. */
#include <criterion/criterion.h>
#include <getopt.h>
#include <limits.h>
#include <string.h>

#include "common/cli.h"

#define assert_msg_has(err, s) cr_assert(strstr((err).msg, (s)), "'%s' not in: %s", (s), (err).msg)

Test(cli, whole_numbers)
{
    long v = 0;
    mesh_err err = {0};
    cr_assert_eq(cli_long("--workers", "4", 1, 64, &v, &err), MESH_OK);
    cr_assert_eq(v, 4);
    cr_assert_eq(cli_long("--n", "-3", -5, 5, &v, &err), MESH_OK);
    cr_assert_eq(v, -3);
    const char *bad[] = {"", " 4", "+4", "4 ", "4x", "0x10", "1e2", "4.0", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 77;
        cr_assert_eq(cli_long("--workers", bad[i], 1, 64, &v, &err), MESH_EINVAL, "'%s'", bad[i]);
        cr_assert_eq(v, 77);
        assert_msg_has(err, "--workers");
        assert_msg_has(err, "between 1 and 64");
    }
    cr_assert_eq(cli_long("--workers", "65", 1, 64, &v, &err), MESH_EINVAL);
    assert_msg_has(err, "--workers '65': must be between 1 and 64");
    cr_assert_eq(cli_long("--limit", "0", 1, LONG_MAX, &v, &err), MESH_EINVAL);
    assert_msg_has(err, "at least 1");
    cr_assert_eq(cli_long("--x", NULL, 1, 2, &v, &err), MESH_EINVAL);
}

Test(cli, decimal_numbers)
{
    double f = 0;
    mesh_err err = {0};
    cr_assert_eq(cli_double("--rotate-fraction", "0.5", 0.1, 0.9, &f, &err), MESH_OK);
    cr_assert_float_eq(f, 0.5, 1e-12);
    cr_assert_eq(cli_double("--rotate-fraction", ".25", 0.1, 0.9, &f, &err), MESH_OK);
    const char *bad[] = {"", "x", " 0.5", "+0.5", "0.5x", "nan", "inf", "0x1p-1", "0.5 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(cli_double("--rotate-fraction", bad[i], 0.1, 0.9, &f, &err), MESH_EINVAL,
                     "'%s'", bad[i]);
        assert_msg_has(err, "--rotate-fraction");
    }
    cr_assert_eq(cli_double("--rotate-fraction", "2", 0.1, 0.9, &f, &err), MESH_EINVAL);
    assert_msg_has(err, "--rotate-fraction '2': must be between 0.1 and 0.9");
}

Test(cli, durations_in_milliseconds)
{
    int64_t ms = 0;
    mesh_err err = {0};
    cr_assert_eq(cli_duration_ms("--poll-interval", "200", DURATION_BARE_MILLIS, 10, 60000, &ms,
                                 &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ms, 200);
    cr_assert_eq(cli_duration_ms("--drain-time", "2", DURATION_BARE_SECONDS, 0, 300000, &ms,
                                 &err), MESH_OK);
    cr_assert_eq(ms, 2000);
    cr_assert_eq(cli_duration_ms("--poll-interval", " +5m", DURATION_BARE_MILLIS, 10, 60000, &ms,
                                 &err), MESH_EINVAL);
    assert_msg_has(err, "--poll-interval ' +5m' is not a duration");
    assert_msg_has(err, "bare number of milliseconds");
    cr_assert_eq(cli_duration_ms("--drain-time", "soon", DURATION_BARE_SECONDS, 0, 300000, &ms,
                                 &err), MESH_EINVAL);
    assert_msg_has(err, "--drain-time 'soon' is not a duration");
    cr_assert(!strstr(err.msg, "milliseconds"), "%s", err.msg);
    cr_assert_eq(cli_duration_ms("--poll-interval", "5", DURATION_BARE_MILLIS, 10, 60000, &ms,
                                 &err), MESH_EINVAL);
    assert_msg_has(err, "--poll-interval '5': must be between 10ms and 1m");
    cr_assert_eq(cli_duration_ms("--reconnect-max", "1500ms", DURATION_BARE_SECONDS, 250,
                                 CLI_NO_MAX, &ms, &err), MESH_OK);
    cr_assert_eq(cli_duration_ms("--reconnect-max", "0", DURATION_BARE_SECONDS, 250, CLI_NO_MAX,
                                 &ms, &err), MESH_EINVAL);
    assert_msg_has(err, "must be at least 250ms");
}

Test(cli, durations_in_whole_seconds)
{
    int64_t s = 0;
    mesh_err err = {0};
    cr_assert_eq(cli_duration_s("--svid-ttl", "15m", 10, 90 * 86400, &s, &err), MESH_OK);
    cr_assert_eq(s, 900);
    cr_assert_eq(cli_duration_s("--svid-ttl", "3600", 10, 90 * 86400, &s, &err), MESH_OK);
    cr_assert_eq(s, 3600);
    cr_assert_eq(cli_duration_s("--svid-ttl", " +5m", 10, 90 * 86400, &s, &err), MESH_EINVAL);
    assert_msg_has(err, "--svid-ttl ' +5m' is not a duration");
    cr_assert_eq(cli_duration_s("--svid-ttl", "91d", 10, 90 * 86400, &s, &err), MESH_EINVAL);
    assert_msg_has(err, "--svid-ttl '91d': must be between 10s and 90d");
    cr_assert_eq(cli_duration_s("--ttl", "15500ms", 10, 6 * 3600, &s, &err), MESH_EINVAL);
    assert_msg_has(err, "--ttl");
    assert_msg_has(err, "whole seconds");
    cr_assert_eq(cli_duration_s("--token-ttl", "0", 1, CLI_NO_MAX, &s, &err), MESH_EINVAL);
    assert_msg_has(err, "--token-ttl '0': must be at least 1s");
}

Test(cli, bad_option_names_it)
{
    char *argv[] = {"prog", "--bogus", NULL};
    mesh_err err = {0};
    optind = 2; /* as getopt_long leaves it after refusing argv[1] */
    cli_bad_option(2, argv, NULL, "; see --help", &err);
    cr_assert_str_eq(err.msg, "unknown option '--bogus'; see --help");
    optind = 7; /* out of range: no read past argv */
    cli_bad_option(2, argv, NULL, NULL, &err);
    cr_assert_str_eq(err.msg, "unknown option '?'");
}

/* The operator's typo gets the flag they meant; a known flag without its
 * value is told so instead of being called unknown. */
Test(cli, bad_option_suggests_and_names_missing_value)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"force", no_argument, 0, 'f'},
                                         {"token-ttl", required_argument, 0, 't'},
                                         {0, 0, 0, 0}};
    mesh_err err = {0};
    char *typo[] = {"prog", "--ouput", "json", NULL};
    optind = 2;
    cli_bad_option(3, typo, opts, NULL, &err);
    cr_assert_str_eq(err.msg, "unknown option '--ouput'; did you mean '--output'?");
    char *eq[] = {"prog", "--token-tll=1h", NULL};
    optind = 2;
    cli_bad_option(2, eq, opts, "; see --help", &err);
    cr_assert_str_eq(err.msg,
                     "unknown option '--token-tll=1h'; did you mean '--token-ttl'?; see --help");
    char *far[] = {"prog", "--zzzzzz", NULL};
    optind = 2;
    cli_bad_option(2, far, opts, NULL, &err);
    cr_assert_str_eq(err.msg, "unknown option '--zzzzzz'");
    char *novalue[] = {"prog", "--output", NULL};
    optind = 2;
    cli_bad_option(2, novalue, opts, NULL, &err);
    cr_assert_str_eq(err.msg, "option '--output' needs a value");
}

Test(cli, whole_seconds_only_where_asked)
{
    int64_t s = 0;
    mesh_err err = {0};
    cr_assert_eq(cli_duration_s("--ttl", "2000ms", 1, CLI_NO_MAX, &s, &err), MESH_OK);
    cr_assert_eq(s, 2);
    cr_assert_eq(cli_duration_s("--ttl", "1500ms", 1, CLI_NO_MAX, &s, &err), MESH_EINVAL);
    assert_msg_has(err, "--ttl '1500ms': must be whole seconds");
    cr_assert_eq(cli_duration_s("--ttl", "0", 0, CLI_NO_MAX, &s, &err), MESH_OK);
    cr_assert_eq(s, 0);
    cr_assert_eq(cli_duration_s("--ttl", "106751991167d", 0, CLI_NO_MAX, &s, &err), MESH_OK,
                 "%s", err.msg);
}

Test(cli, log_levels)
{
    enum log_level l = LOG_ERROR;
    mesh_err err = {0};
    cr_assert_eq(cli_log_level("--log-level", "debug", &l, &err), MESH_OK);
    cr_assert_eq(l, LOG_DEBUG);
    cr_assert_eq(cli_log_level("--log-level", "loud", &l, &err), MESH_EINVAL);
    assert_msg_has(err, "--log-level 'loud': use debug, info, warn or error");
}

Test(cli, sizes_in_bytes)
{
    int64_t v = 0;
    mesh_err err = {0};
    cr_assert_eq(cli_bytes("--max-send-queue", "8MiB", 0, 1LL << 30, &v, &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_eq(v, 8LL << 20);
    cr_assert_eq(cli_bytes("--max-send-queue", "512KiB", 0, 1LL << 30, &v, &err), MESH_OK);
    cr_assert_eq(v, 512LL << 10);
    cr_assert_eq(cli_bytes("--max-send-queue", "1GiB", 0, 1LL << 30, &v, &err), MESH_OK);
    cr_assert_eq(v, 1LL << 30);
    cr_assert_eq(cli_bytes("--max-send-queue", "0", 0, 1LL << 30, &v, &err), MESH_OK);
    cr_assert_eq(v, 0);
    cr_assert_eq(cli_bytes("--max-send-queue", "65536", 0, 1LL << 30, &v, &err), MESH_OK);
    cr_assert_eq(v, 65536);
    const char *bad[] = {"", "MiB", "8 MiB", "8mib", "8M", "8MB", "-1", "+8", "8.5MiB",
                         "99999999999999999999", "9999999999999GiB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 77;
        cr_assert_eq(cli_bytes("--max-send-queue", bad[i], 0, 1LL << 30, &v, &err), MESH_EINVAL,
                     "'%s'", bad[i]);
        cr_assert_eq(v, 77);
        assert_msg_has(err, "--max-send-queue");
        assert_msg_has(err, "between 0 and 1GiB");
    }
    cr_assert_eq(cli_bytes("--max-send-queue", "2GiB", 0, 1LL << 30, &v, &err), MESH_EINVAL);
    assert_msg_has(err, "'2GiB': must be between 0 and 1GiB");
    cr_assert_eq(cli_bytes("--max-send-queue", "1000", 4096, 1LL << 30, &v, &err), MESH_EINVAL);
    assert_msg_has(err, "between 4KiB and 1GiB");
}

/* meshd --listen 127.0.0.1:99999 used to be handed to gRPC, which bound
 * another port than the log said; every listen flag now checks its value. */
Test(cli, listen_addr_checked)
{
    mesh_err err = {0};
    cr_assert_eq(cli_listen_addr("--listen", "127.0.0.1:15010", 1, "127.0.0.1:15010", &err),
                 MESH_OK);
    cr_assert_eq(cli_listen_addr("--listen", "[::1]:65535", 1, "x", &err), MESH_OK);
    cr_assert_eq(cli_listen_addr("--listen", "127.0.0.1:99999", 1, "127.0.0.1:15010", &err),
                 MESH_EINVAL);
    cr_assert_str_eq(err.msg, "--listen '127.0.0.1:99999': the port must be a number from 1 to "
                              "65535");
    cr_assert_eq(cli_listen_addr("--listen", "127.0.0.1:0", 1, "x", &err), MESH_EINVAL);
    cr_assert_eq(cli_listen_addr("--metrics-listen", "127.0.0.1:0", 0, "x", &err), MESH_OK);
    cr_assert_eq(cli_listen_addr("--listen", "127.0.0.1:+80", 1, "x", &err), MESH_EINVAL);
    cr_assert_eq(cli_listen_addr("--listen", "127.0.0.1: 80", 1, "x", &err), MESH_EINVAL);
    cr_assert_eq(cli_listen_addr("--listen", "127.0.0.1:", 1, "x", &err), MESH_EINVAL);
    cr_assert_eq(cli_listen_addr("--listen", "15010", 1, "127.0.0.1:15010", &err), MESH_EINVAL);
    cr_assert_str_eq(err.msg, "--listen '15010': give HOST:PORT, e.g. 127.0.0.1:15010");
    cr_assert_eq(cli_listen_addr("--listen", "localhost:15010", 1, "127.0.0.1:15010", &err),
                 MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "must be an IP address"));
    cr_assert_eq(cli_listen_addr("--listen", "::1:15010", 1, "x", &err), MESH_EINVAL);
    cr_assert_eq(cli_listen_addr("--listen", NULL, 1, "x", &err), MESH_EINVAL);
}
