/* tests/unit/test_meshd_flags.c — meshd's command line (meshd/meshd_flags.c): defaults,
 * every option, and a clear refusal for every kind of bad value. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <string.h>

#include "meshd/meshd_internal.h"

#define MAX_ARGS 32

/* Parses "meshd" + args (NULL-terminated). */
static int parse_v(md_opts *o, mesh_err *err, const char *const *args)
{
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "meshd";
    for (; args[argc - 1]; argc++) {
        cr_assert_leq(argc, MAX_ARGS, "raise MAX_ARGS");
        argv[argc] = (char *)args[argc - 1];
    }
    argv[argc] = NULL;
    mesh_err_clear(err);
    return md_opts_parse(argc, argv, o, err);
}

#define PARSE(o, err, ...) parse_v((o), (err), (const char *const[]){__VA_ARGS__, NULL})

/* Asserts that the arguments are refused with EINVAL and a message naming want. */
#define REFUSED(want, ...)                                                                       \
    do {                                                                                         \
        md_opts o_;                                                                              \
        mesh_err e_;                                                                             \
        int rc_ = PARSE(&o_, &e_, __VA_ARGS__);                                                  \
        cr_assert_eq(rc_, MESH_EINVAL, "expected a refusal for %s, got %d", #__VA_ARGS__, rc_);  \
        cr_assert_not_null(strstr(e_.msg, want), "\"%s\" not in \"%s\"", want, e_.msg);          \
    } while (0)

Test(meshd_flags, defaults)
{
    md_opts o;
    mesh_err err;
    cr_assert_eq(PARSE(&o, &err, "--db", "/var/lib/meshd/mesh.db"), 0, "%s", err.msg);
    cr_assert_str_eq(o.db_path, "/var/lib/meshd/mesh.db");
    cr_assert_str_eq(o.listen, "127.0.0.1:15010");
    cr_assert_eq(o.svid_ttl, CA_DEFAULT_SVID_TTL);
    cr_assert_float_eq(o.rotate_fraction, 0.5, 1e-9);
    cr_assert_eq(o.log_level, LOG_INFO);
    cr_assert_null(o.instance);
    cr_assert_eq(o.cq_threads, 2);
    cr_assert_eq(o.workers, 2);
    cr_assert_eq(o.poll_ms, 1000, "the poll is the safety net: changes are notified");
    cr_assert_eq(o.debounce_ms, 20);
    cr_assert_eq(o.max_pending_csr, 2048);
    cr_assert_null(o.plain_listen);
    cr_assert_eq(o.plain_remote, 0);
}

Test(meshd_flags, every_option)
{
    md_opts o;
    mesh_err err;
    int rc = PARSE(&o, &err, "--db", "m.db", "--listen", "127.0.0.1:25010", "--svid-ttl", "15m",
                   "--rotate-fraction", "0.25", "--log-level", "debug", "--instance", "east-1",
                   "--cq-threads", "8", "--workers", "64", "--poll-interval", "500ms",
                   "--max-pending-csr", "1", "--xds-plaintext-listen", "127.0.0.1:25012");
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_str_eq(o.listen, "127.0.0.1:25010");
    cr_assert_eq(o.svid_ttl, 900);
    cr_assert_float_eq(o.rotate_fraction, 0.25, 1e-9);
    cr_assert_eq(o.log_level, LOG_DEBUG);
    cr_assert_str_eq(o.instance, "east-1");
    cr_assert_eq(o.cq_threads, MD_MAX_CQ_THREADS);
    cr_assert_eq(o.workers, 64);
    cr_assert_eq(o.poll_ms, 500);
    cr_assert_eq(o.max_pending_csr, 1);
    cr_assert_str_eq(o.plain_listen, "127.0.0.1:25012");
}

Test(meshd_flags, durations_with_units)
{
    md_opts o;
    mesh_err err;
    cr_assert_eq(PARSE(&o, &err, "--db", "m.db", "--svid-ttl", "2h", "--poll-interval", "2s"), 0,
                 "%s", err.msg);
    cr_assert_eq(o.svid_ttl, 7200);
    cr_assert_eq(o.poll_ms, 2000);
    cr_assert_eq(PARSE(&o, &err, "--db", "m.db", "--svid-ttl", "90d", "--poll-interval", "10ms"),
                 0, "%s", err.msg);
    cr_assert_eq(o.svid_ttl, CA_MAX_SVID_TTL, "90d is the longest SVID");
    cr_assert_eq(o.poll_ms, 10);
    cr_assert_eq(PARSE(&o, &err, "--db", "m.db", "--poll-interval", "60s"), 0, "%s", err.msg);
    cr_assert_eq(o.poll_ms, 60000);
}

Test(meshd_flags, help_is_not_an_error, .init = cr_redirect_stdout)
{
    md_opts o;
    mesh_err err;
    cr_assert_eq(PARSE(&o, &err, "--help"), 1);
    cr_assert_eq(PARSE(&o, &err, "-h", "--db", "m.db"), 1);
    fflush(stdout);
    cr_assert_stdout_neq_str(""); /* the usage text went out */
}

Test(meshd_flags, db_is_required)
{
    REFUSED("--db PATH is required", "--listen", "127.0.0.1:1");
}

Test(meshd_flags, unknown_option_and_stray_argument)
{
    REFUSED("'--no-such-flag'", "--db", "m.db", "--no-such-flag");
    REFUSED("unexpected argument 'extra'", "--db", "m.db", "extra");
    REFUSED("option '--workers' needs a value", "--db", "m.db", "--workers");
    REFUSED("did you mean '--svid-ttl'?", "--db", "m.db", "--svid-tll", "1h");
}

Test(meshd_flags, listen_address_checked)
{
    REFUSED("--listen '127.0.0.1:99999': the port must be a number from 1 to 65535", "--db",
            "m.db", "--listen", "127.0.0.1:99999");
    REFUSED("--listen 'localhost:15010': the host must be an IP address", "--db", "m.db",
            "--listen", "localhost:15010");
    REFUSED("--listen '15010': give HOST:PORT", "--db", "m.db", "--listen", "15010");
}

Test(meshd_flags, svid_ttl_out_of_range_or_garbage)
{
    REFUSED("--svid-ttl '5s'", "--db", "m.db", "--svid-ttl", "5s");   /* below CA_MIN_SVID_TTL */
    REFUSED("--svid-ttl '91d'", "--db", "m.db", "--svid-ttl", "91d");
    REFUSED("--svid-ttl 'soon'", "--db", "m.db", "--svid-ttl", "soon");
    REFUSED("--svid-ttl ''", "--db", "m.db", "--svid-ttl", "");
    REFUSED("--svid-ttl '-1h'", "--db", "m.db", "--svid-ttl", "-1h");
    REFUSED("--svid-ttl '99999999999999999999d'", "--db", "m.db", "--svid-ttl",
            "99999999999999999999d");
}

Test(meshd_flags, rotate_fraction_bounds)
{
    md_opts o;
    mesh_err err;
    cr_assert_eq(PARSE(&o, &err, "--db", "m.db", "--rotate-fraction", "0.1"), 0, "%s", err.msg);
    cr_assert_eq(PARSE(&o, &err, "--db", "m.db", "--rotate-fraction", "0.9"), 0, "%s", err.msg);
    REFUSED("between 0.1 and 0.9", "--db", "m.db", "--rotate-fraction", "0.05");
    REFUSED("between 0.1 and 0.9", "--db", "m.db", "--rotate-fraction", "0.95");
    REFUSED("between 0.1 and 0.9", "--db", "m.db", "--rotate-fraction", "half");
    REFUSED("between 0.1 and 0.9", "--db", "m.db", "--rotate-fraction", "0.5x");
    REFUSED("between 0.1 and 0.9", "--db", "m.db", "--rotate-fraction", "");
    REFUSED("between 0.1 and 0.9", "--db", "m.db", "--rotate-fraction", "inf");
}

/* NaN compares false with both bounds: it slipped through "f < 0.1 || f > 0.9"
 * and made every rotation time undefined. */
Test(meshd_flags, rotate_fraction_nan_is_refused)
{
    REFUSED("between 0.1 and 0.9", "--db", "m.db", "--rotate-fraction", "nan");
    REFUSED("between 0.1 and 0.9", "--db", "m.db", "--rotate-fraction", "-NaN");
}

Test(meshd_flags, thread_counts)
{
    REFUSED("--cq-threads '0'", "--db", "m.db", "--cq-threads", "0");
    REFUSED("--cq-threads '9'", "--db", "m.db", "--cq-threads", "9");
    REFUSED("--cq-threads '2x'", "--db", "m.db", "--cq-threads", "2x");
    REFUSED("--workers '0'", "--db", "m.db", "--workers", "0");
    REFUSED("--workers '65'", "--db", "m.db", "--workers", "65");
    REFUSED("--workers ''", "--db", "m.db", "--workers", "");
}

Test(meshd_flags, poll_interval_bounds)
{
    REFUSED("between 10ms and 1m", "--db", "m.db", "--poll-interval", "9ms");
    REFUSED("between 10ms and 1m", "--db", "m.db", "--poll-interval", "61s");
    REFUSED("between 10ms and 1m", "--db", "m.db", "--poll-interval", "ms");
    REFUSED("between 10ms and 1m", "--db", "m.db", "--poll-interval", "-20ms");
    REFUSED("between 10ms and 1m", "--db", "m.db", "--poll-interval", "fast");
}

Test(meshd_flags, max_pending_csr_bounds)
{
    md_opts o;
    mesh_err err;
    cr_assert_eq(PARSE(&o, &err, "--db", "m.db", "--max-pending-csr", "1000000"), 0, "%s",
                 err.msg);
    cr_assert_eq(o.max_pending_csr, 1000000);
    REFUSED("--max-pending-csr '0'", "--db", "m.db", "--max-pending-csr", "0");
    REFUSED("--max-pending-csr '1000001'", "--db", "m.db", "--max-pending-csr", "1000001");
    REFUSED("--max-pending-csr '-5'", "--db", "m.db", "--max-pending-csr", "-5");
}

Test(meshd_flags, log_level_and_instance)
{
    REFUSED("--log-level 'loud'", "--db", "m.db", "--log-level", "loud");
    REFUSED("--instance: 1 to 100 characters", "--db", "m.db", "--instance", "");
    char name[102];
    memset(name, 'a', 101);
    name[101] = '\0';
    REFUSED("--instance: 1 to 100 characters", "--db", "m.db", "--instance", name);
    name[100] = '\0'; /* 100 characters fit (the context holds 127) */
    md_opts o;
    mesh_err err;
    cr_assert_eq(PARSE(&o, &err, "--db", "m.db", "--instance", name), 0, "%s", err.msg);
    cr_assert_eq(strlen(o.instance), 100);
}

Test(meshd_flags, plaintext_port_checks)
{
    md_opts o;
    mesh_err err;
    REFUSED("needs --xds-plaintext-listen", "--db", "m.db", "--xds-plaintext-allow-remote");
    REFUSED("that is the mTLS --listen address", "--db", "m.db", "--listen", "127.0.0.1:7000",
            "--xds-plaintext-listen", "127.0.0.1:7000");
    REFUSED("not a loopback address", "--db", "m.db", "--xds-plaintext-listen", "10.1.2.3:7001");
    REFUSED("give HOST:PORT", "--db", "m.db", "--xds-plaintext-listen", "127.0.0.1");
    REFUSED("give unix:/path/to/socket", "--db", "m.db", "--xds-plaintext-listen", "unix:");
    cr_assert_eq(PARSE(&o, &err, "--db", "m.db", "--xds-plaintext-listen", "10.1.2.3:7001",
                       "--xds-plaintext-allow-remote"),
                 0, "%s", err.msg);
    cr_assert_eq(o.plain_remote, 1);
    cr_assert_eq(PARSE(&o, &err, "--db", "m.db", "--xds-plaintext-listen", "[::1]:7001"), 0, "%s",
                 err.msg);
    cr_assert_eq(PARSE(&o, &err, "--db", "m.db", "--xds-plaintext-listen", "unix:/run/x.sock"), 0,
                 "%s", err.msg);
}

/* getopt keeps state between calls: a second parse in one process must start
 * afresh, and a refused parse must not leak into the next. */
Test(meshd_flags, parses_again_after_a_refusal)
{
    md_opts o;
    mesh_err err;
    cr_assert_eq(PARSE(&o, &err, "--db", "a.db", "--workers", "99"), MESH_EINVAL);
    cr_assert_eq(PARSE(&o, &err, "--db", "b.db", "--workers", "3"), 0, "%s", err.msg);
    cr_assert_str_eq(o.db_path, "b.db");
    cr_assert_eq(o.workers, 3);
    cr_assert_eq(o.cq_threads, 2, "options from the refused parse must not survive");
}

Test(meshd_flags, metrics_listen_and_log_format)
{
    md_opts o;
    mesh_err err;
    cr_assert_eq(PARSE(&o, &err, "--db", "x.db"), 0);
    cr_assert_null(o.metrics_listen, "off by default");
    cr_assert_eq(o.log_format, LOG_FORMAT_TEXT);
    cr_assert_eq(PARSE(&o, &err, "--db", "x.db", "--metrics-listen", "127.0.0.1:15014",
                       "--log-format", "json"),
                 0, "%s", err.msg);
    cr_assert_str_eq(o.metrics_listen, "127.0.0.1:15014");
    cr_assert_eq(o.log_format, LOG_FORMAT_JSON);
    cr_assert_eq(PARSE(&o, &err, "--db", "x.db", "--metrics-listen", "[::1]:0"), 0, "%s", err.msg);
    REFUSED("the port must be a number from 0 to 65535", "--db", "x", "--metrics-listen",
            "127.0.0.1:99999");
    REFUSED("the port must be a number from 0 to 65535", "--db", "x", "--metrics-listen",
            "127.0.0.1:-1");
    REFUSED("the port must be a number from 0 to 65535", "--db", "x", "--metrics-listen",
            "127.0.0.1:");
    REFUSED("the port must be a number from 0 to 65535", "--db", "x", "--metrics-listen",
            "127.0.0.1:80x");
    REFUSED("give HOST:PORT", "--db", "x", "--metrics-listen", "15014");
    REFUSED("give HOST:PORT", "--db", "x", "--metrics-listen", ":15014");
    REFUSED("the host must be an IP address", "--db", "x", "--metrics-listen", "localhost:15014");
    REFUSED("the host must be an IP address", "--db", "x", "--metrics-listen", "::1:15014");
    REFUSED("--log-format 'xml': use text or json", "--db", "x", "--log-format", "xml");
    REFUSED("--log-format 'JSON': use text or json", "--db", "x", "--log-format", "JSON");
}
