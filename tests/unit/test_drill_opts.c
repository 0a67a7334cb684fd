/* tests/unit/test_drill_opts.c — `meshctl drill`'s command line: the defaults,
 * every usage error tests/e2e/test_drill.sh checks and more, the ranges at their
 * exact ends, target mode's rules, where progress goes, and a usage text that
 * names every option. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drill/drill_opts.h"

#define MAX_ARGS 64

/* Parses "drill" + the NULL-terminated arguments. */
static int parse_env(int json_stdout, const char *db, drill_opts *o, mesh_err *err, ...)
{
    static char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = (char *)"drill";
    va_list ap;
    va_start(ap, err);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < MAX_ARGS;)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return drill_parse_opts(argc, argv, json_stdout, db, o, err);
}

#define PARSE(o, err, ...) parse_env(0, NULL, (o), (err), __VA_ARGS__, (const char *)NULL)
#define PARSE0(o, err) parse_env(0, NULL, (o), (err), (const char *)NULL)

/* A usage error (MESH_EINVAL: meshctl exits 2) whose message contains want; db is meshctl's
 * --db / $MESHD_DB (tests/e2e sets MESHD_DB). */
#define REFUSED_DB(db, want, ...)                                                              \
    do {                                                                                       \
        drill_opts o_;                                                                         \
        mesh_err e_ = {0};                                                                     \
        int rc_ = parse_env(0, (db), &o_, &e_, __VA_ARGS__, (const char *)NULL);               \
        cr_assert_eq(rc_, MESH_EINVAL, "%s: accepted (rc %d)", #__VA_ARGS__, rc_);        \
        cr_assert_eq(e_.code, MESH_EINVAL);                                                    \
        cr_assert_not_null(strstr(e_.msg, want), "%s: wanted \"%s\" in \"%s\"", #__VA_ARGS__,  \
                           want, e_.msg);                                                      \
    } while (0)
#define REFUSED(want, ...) REFUSED_DB(NULL, want, __VA_ARGS__)

#define ACCEPTED(o, ...)                                                                       \
    do {                                                                                       \
        mesh_err e_ = {0};                                                                     \
        int rc_ = PARSE((o), &e_, __VA_ARGS__);                                                \
        cr_assert_eq(rc_, 0, "%s: refused: %s", #__VA_ARGS__, e_.msg);                         \
    } while (0)

Test(drill_opts, defaults_are_the_documented_ones)
{
    drill_opts o;
    mesh_err err = {0};
    cr_assert_eq(PARSE0(&o, &err), 0);
    cr_assert_eq(o.n_clients, 4);
    cr_assert_eq(o.n_servers, 1);
    cr_assert_eq(o.ttl_s, 60);
    cr_assert_float_eq(o.rate, 50, 1e-12);
    cr_assert_eq(o.kill_after_ms, 10000);
    cr_assert_eq(o.outage_ms, 0, "until every SVID expired + 5 s");
    cr_assert_eq(o.recovery_timeout_ms, 60000);
    cr_assert_eq(o.request_timeout_ms, 3000);
    cr_assert_str_eq(o.trust_domain, "drill.example");
    cr_assert_null(o.reconnect_max);
    cr_assert_null(o.rotate_fraction);
    cr_assert_null(o.target);
    cr_assert_null(o.dir);
    cr_assert_null(o.json_path);
    cr_assert_eq(o.expect_recovery_ms, -1);
    cr_assert_eq(o.expect_budget_s, -1);
    cr_assert_not(o.expect_zero_before_expiry || o.expect_fail_closed || o.quiet || o.keep);
    cr_assert_not(o.progress_stderr);
    cr_assert_not(o.ttl_given);

    drill_opts d;
    drill_opts_defaults(&d);
    cr_assert_eq(d.n_clients, o.n_clients);
    cr_assert_eq(d.ttl_s, o.ttl_s);
    cr_assert_eq(d.expect_budget_s, -1);
}

Test(drill_opts, every_value_is_taken)
{
    drill_opts o;
    ACCEPTED(&o, "--sidecars", "3", "--servers", "2", "--ttl", "15s", "--rate", "60.5",
             "--kill-after", "3s", "--outage", "2m", "--recovery-timeout", "90s",
             "--request-timeout", "250ms", "--reconnect-max", "1s", "--rotate-fraction", "0.3",
             "--trust-domain", "td.example", "--dir", "/tmp/d", "--keep", "--bin-dir", "/opt/b",
             "--json", "r.json", "--csv", "r.csv", "--svg", "r.svg", "--quiet",
             "--expect-zero-failures-before-expiry", "--expect-fail-closed");
    cr_assert_eq(o.n_clients, 3);
    cr_assert_eq(o.n_servers, 2);
    cr_assert_eq(o.ttl_s, 15);
    cr_assert(o.ttl_given);
    cr_assert_float_eq(o.rate, 60.5, 1e-12);
    cr_assert_eq(o.kill_after_ms, 3000);
    cr_assert_eq(o.outage_ms, 120000);
    cr_assert_eq(o.recovery_timeout_ms, 90000);
    cr_assert_eq(o.request_timeout_ms, 250);
    cr_assert_str_eq(o.reconnect_max, "1s", "passed on as typed");
    cr_assert_str_eq(o.rotate_fraction, "0.3");
    cr_assert_str_eq(o.trust_domain, "td.example");
    cr_assert_str_eq(o.dir, "/tmp/d");
    cr_assert(o.keep);
    cr_assert_str_eq(o.bin_dir, "/opt/b");
    cr_assert_str_eq(o.json_path, "r.json");
    cr_assert_str_eq(o.csv_path, "r.csv");
    cr_assert_str_eq(o.svg_path, "r.svg");
    cr_assert(o.quiet);
    cr_assert(o.expect_zero_before_expiry);
    cr_assert(o.expect_fail_closed);
    cr_assert_not(o.progress_stderr);
}

Test(drill_opts, expectations_keep_their_text)
{
    drill_opts o;
    ACCEPTED(&o, "--expect-recovery-within", "30s", "--expect-budget-at-least", "1h");
    cr_assert_eq(o.expect_recovery_ms, 30000);
    cr_assert_str_eq(o.expect_recovery_arg, "30s");
    cr_assert_eq(o.expect_budget_s, 3600);
    cr_assert_str_eq(o.expect_budget_arg, "1h");
    ACCEPTED(&o, "--expect-recovery-within", "1ms", "--expect-budget-at-least", "1500ms");
    cr_assert_eq(o.expect_recovery_ms, 1);
    cr_assert_eq(o.expect_budget_s, 1, "whole seconds: the budget is");
}

/* The usage errors tests/e2e/test_drill.sh checks, with the same expected words and,
 * like there, a store named by MESHD_DB. */
#define E2E_DB "/tmp/e2e/meshd.db"
Test(drill_opts, the_e2e_usage_errors)
{
    REFUSED_DB(E2E_DB, "--sidecars", "--sidecars", "0");
    REFUSED_DB(E2E_DB, "--sidecars", "--sidecars", "501");
    REFUSED_DB(E2E_DB, "--servers", "--servers", "0");
    REFUSED_DB(E2E_DB, "--ttl", "--ttl", "5s");
    REFUSED_DB(E2E_DB, "whole seconds", "--ttl", "15500ms");
    REFUSED_DB(E2E_DB, "--ttl", "--ttl", "soon");
    REFUSED_DB(E2E_DB, "--rate", "--rate", "0");
    REFUSED_DB(E2E_DB, "--rate", "--rate", "10x");
    REFUSED_DB(E2E_DB, "--kill-after", "--kill-after", "0s");
    REFUSED_DB(E2E_DB, "--outage", "--outage", "forever");
    REFUSED_DB(E2E_DB, "--reconnect-max", "--reconnect-max", "10ms");
    REFUSED_DB(E2E_DB, "--rotate-fraction", "--rotate-fraction", "2");
    REFUSED_DB(E2E_DB, "--expect-recovery-within", "--expect-recovery-within", "fast");
    REFUSED_DB(E2E_DB, "--rotate-fraction cannot be used with --target", "--target",
               "127.0.0.1:1", "--kill-cmd", "x", "--start-cmd", "y", "--rotate-fraction", "0.5");
    REFUSED_DB(E2E_DB, "--expect-fail-closed", "--expect-fail-closed", "--ttl", "20s", "--outage",
               "5s");
    REFUSED_DB(E2E_DB, "stdout", "--json", "-", "--csv", "-");
    REFUSED_DB(E2E_DB, "unknown", "--bogus");
    REFUSED_DB(E2E_DB, "unexpected argument", "now");
    REFUSED_DB(E2E_DB, "needs a value", "--ttl");
    REFUSED_DB(E2E_DB, "--kill-cmd", "--target", "127.0.0.1:1");
    REFUSED_DB(E2E_DB, "--target", "--target", "nowhere", "--kill-cmd", "x", "--start-cmd",
               "y");
    REFUSED_DB(E2E_DB, "--ttl", "--target", "127.0.0.1:1", "--kill-cmd", "x", "--start-cmd", "y",
               "--ttl", "30s");
    REFUSED_DB(E2E_DB, "--target", "--kill-cmd", "x");
    drill_opts o;
    mesh_err err = {0};
    cr_assert_eq(parse_env(0, NULL, &o, &err, "--target", "127.0.0.1:1", "--kill-cmd", "x",
                           "--start-cmd", "y", (const char *)NULL),
                 MESH_EINVAL, "--target without a store");
    cr_assert_not_null(strstr(err.msg, "--db"), "asks for --db: %s", err.msg);
}

Test(drill_opts, messages_name_the_value_and_the_range)
{
    drill_opts o;
    mesh_err err = {0};
    cr_assert_eq(PARSE(&o, &err, "--sidecars", "0"), MESH_EINVAL);
    cr_assert_str_eq(err.msg, "--sidecars '0': must be between 1 and 500");
    cr_assert_eq(PARSE(&o, &err, "--ttl", "5s"), MESH_EINVAL);
    cr_assert_str_eq(err.msg, "--ttl '5s': must be between 10s and 6h");
    cr_assert_eq(PARSE(&o, &err, "--reconnect-max", "10ms"), MESH_EINVAL);
    cr_assert_str_eq(err.msg, "--reconnect-max '10ms': must be between 250ms and 1h");
    cr_assert_eq(PARSE(&o, &err, "--bogus"), MESH_EINVAL);
    cr_assert_str_eq(err.msg, "unknown option '--bogus'");
    cr_assert_eq(PARSE(&o, &err, "--sidcars", "2"), MESH_EINVAL);
    cr_assert_str_eq(err.msg, "unknown option '--sidcars'; did you mean '--sidecars'?");
    cr_assert_eq(PARSE(&o, &err, "--sidecars", "2", "now"), MESH_EINVAL);
    cr_assert_str_eq(err.msg, "drill: unexpected argument 'now'");
    cr_assert_eq(PARSE(&o, &err, "--ttl", "soon"), MESH_EINVAL);
    cr_assert_eq(strncmp(err.msg, "--ttl 'soon' is not a duration: ", 32), 0,
                 "the duration parser's reason: %s", err.msg);
    cr_assert_not_null(strstr(err.msg, "; between 10s and 6h"), "and the range: %s", err.msg);
}

/* The drill takes its values by the rules every binary shares (common/cli.h,
 * common/duration.h), so a value means the same to meshctl drill as to meshd and
 * mesh-sidecar, which it passes --reconnect-max and --rotate-fraction on to. */
Test(drill_opts, the_shared_flag_rules)
{
    drill_opts o;
    ACCEPTED(&o, "--kill-after", "5", "--ttl", "200", "--request-timeout", "250ms");
    cr_assert_eq(o.kill_after_ms, 5000, "a bare number is seconds");
    cr_assert_eq(o.ttl_s, 200);
    cr_assert_eq(o.request_timeout_ms, 250);
    REFUSED("--sidecars", "--sidecars", "+4");
    REFUSED("--sidecars", "--sidecars", " 4");
    REFUSED("--servers", "--servers", "0x2");
    REFUSED("--rate", "--rate", "+50");
    REFUSED("--rate", "--rate", " 50");
    REFUSED("--rate", "--rate", "0x10");
    REFUSED("--rotate-fraction", "--rotate-fraction", "+0.5");
    REFUSED("--kill-after", "--kill-after", " +5m");
    REFUSED("--kill-after", "--kill-after", "1.5s");
    REFUSED("--outage", "--outage", "5 s");
    REFUSED("--ttl '15500ms': must be whole seconds", "--ttl", "15500ms");
    REFUSED("--rate '10x': give a number between 1 and 20000", "--rate", "10x");
    REFUSED("--sidecars '4.5': give a whole number between 1 and 500", "--sidecars", "4.5");
}

Test(drill_opts, counts_at_their_ends)
{
    drill_opts o;
    ACCEPTED(&o, "--sidecars", "1", "--servers", "1");
    ACCEPTED(&o, "--sidecars", "500", "--servers", "50");
    cr_assert_eq(o.n_clients, 500);
    cr_assert_eq(o.n_servers, 50);
    REFUSED("--servers", "--servers", "51");
    REFUSED("--sidecars", "--sidecars", "-1");
    REFUSED("--sidecars", "--sidecars", "");
    REFUSED("--sidecars", "--sidecars", "4.5");
    REFUSED("--sidecars", "--sidecars", "4x");
    REFUSED("--sidecars", "--sidecars", "99999999999999999999");
}

Test(drill_opts, durations_at_their_ends)
{
    drill_opts o;
    ACCEPTED(&o, "--ttl", "10s", "--kill-after", "1s", "--recovery-timeout", "5s",
             "--request-timeout", "100ms", "--reconnect-max", "250ms", "--outage", "1s");
    cr_assert_eq(o.ttl_s, 10);
    ACCEPTED(&o, "--ttl", "6h", "--kill-after", "1h", "--recovery-timeout", "1h",
             "--request-timeout", "60s", "--reconnect-max", "1h", "--outage", "24h");
    cr_assert_eq(o.ttl_s, 6 * 3600);
    cr_assert_eq(o.outage_ms, 24 * 3600000LL);
    REFUSED("--ttl", "--ttl", "9s");
    REFUSED("--ttl", "--ttl", "21601s");
    REFUSED("whole seconds", "--ttl", "10500ms");
    REFUSED("--kill-after", "--kill-after", "999ms");
    REFUSED("--kill-after", "--kill-after", "3601s");
    REFUSED("--outage", "--outage", "999ms");
    REFUSED("--outage", "--outage", "25h");
    REFUSED("--recovery-timeout", "--recovery-timeout", "4999ms");
    REFUSED("--request-timeout", "--request-timeout", "99ms");
    REFUSED("--request-timeout", "--request-timeout", "61s");
    REFUSED("--reconnect-max", "--reconnect-max", "249ms");
    REFUSED("--expect-recovery-within", "--expect-recovery-within", "0s");
    REFUSED("--expect-budget-at-least", "--expect-budget-at-least", "999ms");
    REFUSED("--expect-budget-at-least", "--expect-budget-at-least", "7h");
    REFUSED("--kill-after", "--kill-after", "-5s");
}

Test(drill_opts, rate_and_rotate_fraction)
{
    drill_opts o;
    ACCEPTED(&o, "--rate", "1");
    ACCEPTED(&o, "--rate", "20000");
    cr_assert_float_eq(o.rate, 20000, 1e-9);
    REFUSED("--rate", "--rate", "0.99");
    REFUSED("--rate", "--rate", "20000.5");
    REFUSED("--rate", "--rate", "nan");
    REFUSED("--rate", "--rate", "inf");
    REFUSED("--rate", "--rate", "");
    ACCEPTED(&o, "--rotate-fraction", "0.1");
    ACCEPTED(&o, "--rotate-fraction", "0.9");
    REFUSED("--rotate-fraction", "--rotate-fraction", "0.09");
    REFUSED("--rotate-fraction", "--rotate-fraction", "0.91");
    REFUSED("--rotate-fraction", "--rotate-fraction", "nan");
    REFUSED("--rotate-fraction", "--rotate-fraction", "0.5x");
}

Test(drill_opts, fail_closed_needs_an_outage_past_the_ttl)
{
    drill_opts o;
    ACCEPTED(&o, "--expect-fail-closed", "--ttl", "20s", "--outage", "20s");
    REFUSED("longer than 20s", "--expect-fail-closed", "--ttl", "20s", "--outage", "19999ms");
    ACCEPTED(&o, "--expect-fail-closed", "--ttl", "20s");
    ACCEPTED(&o, "--ttl", "20s", "--outage", "5s");
}

Test(drill_opts, strings_and_paths)
{
    char long_td[202], long_dir[3002];
    memset(long_td, 'a', sizeof long_td - 1);
    long_td[sizeof long_td - 1] = '\0';
    memset(long_dir, 'd', sizeof long_dir - 1);
    long_dir[sizeof long_dir - 1] = '\0';
    drill_opts o;
    REFUSED("--trust-domain", "--trust-domain", "");
    REFUSED("--trust-domain", "--trust-domain", long_td);
    long_td[200] = '\0';
    ACCEPTED(&o, "--trust-domain", long_td);
    REFUSED("--dir", "--dir", "");
    REFUSED("--dir", "--dir", long_dir);
    REFUSED("--bin-dir", "--bin-dir", "");
    REFUSED("--svg needs a file name", "--svg", "-");
    REFUSED("an empty command", "--target", "127.0.0.1:1", "--kill-cmd", "", "--start-cmd", "y");
    REFUSED("an empty command", "--target", "127.0.0.1:1", "--kill-cmd", "x", "--start-cmd", "");
}

Test(drill_opts, reports_on_stdout)
{
    drill_opts o;
    ACCEPTED(&o, "--json", "-");
    cr_assert(o.progress_stderr, "a report on stdout sends progress to stderr");
    ACCEPTED(&o, "--csv", "-", "--json", "r.json");
    cr_assert(o.progress_stderr);
    ACCEPTED(&o, "--json", "r.json", "--csv", "r.csv");
    cr_assert_not(o.progress_stderr);

    mesh_err err = {0};
    cr_assert_eq(parse_env(1, NULL, &o, &err, (const char *)NULL), 0);
    cr_assert(o.json_stdout);
    cr_assert(o.progress_stderr);
    cr_assert_eq(parse_env(1, NULL, &o, &err, "--json", "-", (const char *)NULL),
                 MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "--output json already prints the report on stdout"));
    cr_assert_eq(parse_env(1, NULL, &o, &err, "--csv", "-", (const char *)NULL),
                 MESH_EINVAL);
    cr_assert_eq(parse_env(1, NULL, &o, &err, "--json", "r.json", (const char *)NULL), 0);
}

Test(drill_opts, target_mode)
{
    drill_opts o;
    mesh_err err = {0};
    cr_assert_eq(parse_env(0, "/var/lib/meshd/meshd.db", &o, &err, "--target", "10.0.0.5:15010",
                           "--kill-cmd", "ssh cp1 systemctl kill meshd", "--start-cmd",
                           "ssh cp1 systemctl start meshd", "--outage", "2m", (const char *)NULL),
                 0, "%s", err.msg);
    cr_assert_str_eq(o.target, "10.0.0.5:15010");
    cr_assert_str_eq(o.db_path, "/var/lib/meshd/meshd.db");
    cr_assert_str_eq(o.kill_cmd, "ssh cp1 systemctl kill meshd");
    cr_assert_str_eq(o.start_cmd, "ssh cp1 systemctl start meshd");
    cr_assert_eq(parse_env(0, "db", &o, &err, "--target", "[::1]:15010", "--kill-cmd", "x",
                           "--start-cmd", "y", (const char *)NULL), 0, "%s", err.msg);
    /* An outage shorter than the TTL is fine with fail-closed there: the TTL is meshd's. */
    cr_assert_eq(parse_env(0, "db", &o, &err, "--target", "h:1", "--kill-cmd", "x",
                           "--start-cmd", "y", "--outage", "5s", "--expect-fail-closed",
                           (const char *)NULL), 0, "%s", err.msg);

    const char *bad_targets[] = {"nowhere", ":15010", "h:", "h:0", "h:65536", "h:1x", "h:-1"};
    for (size_t i = 0; i < sizeof bad_targets / sizeof bad_targets[0]; i++) {
        cr_assert_eq(parse_env(0, "db", &o, &err, "--target", bad_targets[i], "--kill-cmd", "x",
                               "--start-cmd", "y", (const char *)NULL), MESH_EINVAL,
                     "accepted --target %s", bad_targets[i]);
        cr_assert_not_null(strstr(err.msg, "give meshd's HOST:PORT"), "%s", err.msg);
    }
    cr_assert_eq(parse_env(0, "db", &o, &err, "--target", "h:1", "--start-cmd", "y",
                           (const char *)NULL), MESH_EINVAL, "no --kill-cmd");
    cr_assert_eq(parse_env(0, "db", &o, &err, "--target", "h:1", "--kill-cmd", "x", "--start-cmd",
                           "y", "--rotate-fraction", "0.5", (const char *)NULL), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "--rotate-fraction cannot be used with --target"));
    REFUSED("go with --target", "--start-cmd", "y");
}

Test(drill_opts, help)
{
    drill_opts o;
    mesh_err err = {0};
    cr_assert_eq(PARSE(&o, &err, "--help"), DRILL_OPTS_HELP);
    cr_assert_eq(PARSE(&o, &err, "-h"), DRILL_OPTS_HELP);
    cr_assert_eq(PARSE(&o, &err, "--sidecars", "3", "--help"), DRILL_OPTS_HELP);
}

Test(drill_opts, usage_names_every_option)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    drill_usage(f);
    fclose(f);
    const char *opts[] = {
        "--sidecars", "--servers", "--ttl", "--rate", "--kill-after", "--outage",
        "--recovery-timeout", "--request-timeout", "--reconnect-max", "--rotate-fraction",
        "--trust-domain", "--dir", "--keep", "--bin-dir", "--json", "--csv", "--svg", "--quiet",
        "--expect-zero-failures-before-expiry", "--expect-fail-closed",
        "--expect-recovery-within", "--expect-budget-at-least", "--target", "--kill-cmd",
        "--start-cmd"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        cr_assert_not_null(strstr(text, opts[i]), "usage does not mention %s", opts[i]);
    cr_assert_not_null(strstr(text, "Exit status: 0"));
    free(text);
}

/* --ports LO-HI: the drill's ports can be chosen (a firewall, another drill). */
Test(drill_opts, port_range)
{
    drill_opts o;
    mesh_err err = {0};
    cr_assert_eq(PARSE0(&o, &err), MESH_OK);
    cr_assert_eq(o.port_lo, 20000);
    cr_assert_eq(o.port_hi, 32767);
    cr_assert_eq(PARSE(&o, &err, "--ports", "40000-40999"), MESH_OK, "%s", err.msg);
    cr_assert_eq(o.port_lo, 40000);
    cr_assert_eq(o.port_hi, 40999);
    cr_assert_eq(PARSE(&o, &err, "--ports", "40000"), MESH_EINVAL);
    cr_assert_str_eq(err.msg, "--ports '40000': give LO-HI, e.g. 40000-40999");
    cr_assert_eq(PARSE(&o, &err, "--ports", "80-200"), MESH_EINVAL);
    cr_assert(strstr(err.msg, "from 1024 to 65535"), "%s", err.msg);
    cr_assert_eq(PARSE(&o, &err, "--ports", "40000-40010"), MESH_EINVAL);
    cr_assert(strstr(err.msg, "at least 64 ports"), "%s", err.msg);
    cr_assert_eq(PARSE(&o, &err, "--ports", "41000-40000"), MESH_EINVAL);
    cr_assert_eq(PARSE(&o, &err, "--ports", "-40000"), MESH_EINVAL);
    cr_assert_eq(PARSE(&o, &err, "--ports", "4x-5x"), MESH_EINVAL);
}
