/* drill/drill_opts.c — `meshctl drill` command line: parsing, ranges, usage.
 *
 * Every value is checked here, before anything is created or started, so a typo
 * costs nothing: bad options exit 2 with the offending flag named. Nothing is
 * printed here: the problem comes back in a mesh_err for meshctl to report. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/cli.h"
#include "drill/drill_opts.h"
#include "sidecar/xds_backoff.h"

void drill_usage(FILE *f)
{
    fputs("usage: meshctl drill [options]\n"
          "\n"
          "Control-plane outage drill: builds a throwaway mesh on 127.0.0.1 (meshd, N client\n"
          "sidecars, K server sidecars and test apps) with a short SVID lifetime, drives steady\n"
          "HTTP traffic through the client sidecars, kills meshd with SIGKILL, reports each\n"
          "second how much traffic succeeds and how long the sidecars' certificates have left\n"
          "(the outage budget), observes mTLS failing closed at expiry, restarts meshd and\n"
          "measures the time to full recovery. It never touches the store named by --db.\n"
          "\n"
          "Mesh and timing:\n"
          "  --sidecars N             client sidecars sending traffic (default 4, 1..500)\n"
          "  --servers K              server sidecars behind the one service (default 1, 1..50)\n"
          "  --ttl DURATION           SVID lifetime meshd issues (default 60s, 10s..6h)\n"
          "  --rate N                 requests per second over all client sidecars (default 50,\n"
          "                           1..20000)\n"
          "  --kill-after DURATION    steady traffic before meshd is killed (default 10s)\n"
          "  --outage DURATION        how long meshd stays down (default: until every SVID has\n"
          "                           expired, plus 5s)\n"
          "  --recovery-timeout DUR   stop waiting for recovery after this (default 60s)\n"
          "  --request-timeout DUR    a request without an answer by then failed (default 3s)\n"
          "  --reconnect-max DUR      passed to every sidecar (its default is 30s; recovery time\n"
          "                           includes this reconnect backoff)\n"
          "  --rotate-fraction F      passed to meshd (renew at this fraction of the lifetime)\n"
          "  --trust-domain TD        trust domain of the drill's CA (default drill.example)\n"
          "\n"
          "Replica mode: several meshd processes on the drill's store, every sidecar given all.\n"
          "  --replicas N             meshd replicas (default 1, 1..5); sidecar i starts on\n"
          "                           replica i mod N\n"
          "  --kill-replica           SIGKILL only the replica most sidecars are on, at\n"
          "                           --kill-after, and measure each sidecar's move to another;\n"
          "                           traffic runs --outage longer (default 10s), no restart\n"
          "  --expect-failover-within DURATION    every sidecar moved within this (e.g. 2s)\n"
          "\n"
          "Target mode (game days on a staging mesh): use a running meshd instead of starting one.\n"
          "  --target HOST:PORT       meshd's address; its store is --db / $MESHD_DB (required)\n"
          "  --kill-cmd CMD           shell command that kills it, e.g. 'systemctl kill -s KILL meshd'\n"
          "  --start-cmd CMD          shell command that starts it again and returns\n"
          "                           The drill registers its workloads (drill<pid>-*) and config\n"
          "                           in that store and removes them afterwards. The SVID lifetime\n"
          "                           is meshd's own (--ttl is refused); a long one needs --outage.\n"
          "  --dir DIR                work directory (created; must be empty; kept). Default: a\n"
          "                           fresh /tmp/meshd-drill-XXXXXX, removed after a clean run\n"
          "  --keep                   keep the temporary work directory (logs, store, YAML)\n"
          "  --bin-dir DIR            where meshd, mesh-sidecar, mesh-testapp are (default: the\n"
          "                           directory of this meshctl)\n"
          "  --ports LO-HI            127.0.0.1 ports to use (default 20000-32767, below the\n"
          "                           kernel's ephemeral range); at least 64\n"
          "\n"
          "Output:\n"
          "  --json FILE              the full report as JSON ('-' for stdout)\n"
          "  --csv FILE               one row per second: t,phase,ok,failed,min_budget_s,\n"
          "                           meshd_up,... ('-' for stdout)\n"
          "  --svg FILE               a chart: ok/failed requests per second, remaining budget,\n"
          "                           phases\n"
          "  --quiet                  no per-second lines, only the summary\n"
          "  (global --output json prints the JSON report on stdout, progress on stderr)\n"
          "\n"
          "Expectations (any not met: exit status 3):\n"
          "  --expect-zero-failures-before-expiry   no request fails while every SVID is valid\n"
          "  --expect-fail-closed     once every SVID expired, no request succeeds until meshd\n"
          "                           is back (expiry is enforced)\n"
          "  --expect-recovery-within DURATION      recovered at most this long after restart\n"
          "  --expect-budget-at-least DURATION      the smallest outage budget at the kill\n"
          "\n"
          "Durations are a whole number and a unit (ms, s, m, h, d), e.g. 250ms, 15s, 10m, 1h;\n"
          "a bare number is seconds.\n"
          "\n"
          "Exit status: 0 ran and every expectation met, 1 the drill could not run, 2 usage,\n"
          "3 an expectation was not met, 130 interrupted. See docs/drill.md.\n",
          f);
}

enum {
    O_SIDECARS = 1000, O_SERVERS, O_TTL, O_RATE, O_KILL, O_OUTAGE, O_RECOVERY, O_REQ_TIMEOUT,
    O_RECONNECT, O_ROTATE, O_TD, O_DIR, O_KEEP, O_BIN, O_JSON, O_CSV, O_SVG, O_QUIET,
    O_X_ZERO, O_X_CLOSED, O_X_RECOVERY, O_X_BUDGET, O_HELP, O_TARGET, O_KILL_CMD, O_START_CMD,
    O_REPLICAS, O_KILL_REPLICA, O_X_FAILOVER, O_PORTS
};

/* The flag checks every binary shares (common/cli.h): MESH_EINVAL with err naming
 * the flag, the value and what it takes. */
static int flag_int(mesh_err *err, const char *flag, const char *s, long lo, long hi, int *out)
{
    long v;
    int rc = cli_long(flag, s, lo, hi, &v, err);
    if (rc == MESH_OK)
        *out = (int)v;
    return rc;
}

/* A duration in [lo_ms, hi_ms]; a bare number is seconds. */
static int flag_duration_ms(mesh_err *err, const char *flag, const char *s, int64_t lo_ms,
                            int64_t hi_ms, int64_t *out)
{
    return cli_duration_ms(flag, s, DURATION_BARE_SECONDS, lo_ms, hi_ms, out, err);
}

void drill_opts_defaults(drill_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_clients = 4;
    o->n_servers = 1;
    o->ttl_s = 60;
    o->rate = 50;
    o->kill_after_ms = 10000;
    o->recovery_timeout_ms = 60000;
    o->request_timeout_ms = 3000;
    o->trust_domain = "drill.example";
    o->expect_recovery_ms = -1;
    o->expect_budget_s = -1;
    o->replicas = 1;
    o->expect_failover_ms = -1;
    o->port_lo = 20000;
    o->port_hi = 32767;
}

/* --ports LO-HI: the range the drill takes its 127.0.0.1 ports from. */
static int parse_ports(const char *v, drill_opts *o, mesh_err *err)
{
    const char *dash = strchr(v, '-');
    char lo_s[8], hi_s[8];
    long lo = 0, hi = 0;
    mesh_err e = {0};
    if (!dash || dash == v || (size_t)(dash - v) >= sizeof lo_s || strlen(dash + 1) >= sizeof hi_s)
        return mesh_err_set(err, MESH_EINVAL, "--ports '%s': give LO-HI, e.g. 40000-40999", v);
    memcpy(lo_s, v, (size_t)(dash - v));
    lo_s[dash - v] = '\0';
    snprintf(hi_s, sizeof hi_s, "%s", dash + 1);
    if (cli_long("--ports", lo_s, 1024, 65535, &lo, &e) != MESH_OK ||
        cli_long("--ports", hi_s, 1024, 65535, &hi, &e) != MESH_OK)
        return mesh_err_set(err, MESH_EINVAL, "--ports '%s': both ends must be ports from 1024 "
                            "to 65535, e.g. 40000-40999", v);
    if (hi - lo < 63)
        return mesh_err_set(err, MESH_EINVAL, "--ports '%s': give a range of at least 64 ports "
                            "(each sidecar takes 3 or 4)", v);
    o->port_lo = (int)lo;
    o->port_hi = (int)hi;
    return MESH_OK;
}

int drill_parse_opts(int argc, char **argv, int json_stdout, const char *db_path, drill_opts *o,
                     mesh_err *err)
{
    drill_opts_defaults(o);
    o->json_stdout = json_stdout;
    mesh_err_clear(err);

    static const struct option opts[] = {
        {"sidecars", required_argument, 0, O_SIDECARS},
        {"servers", required_argument, 0, O_SERVERS},
        {"ttl", required_argument, 0, O_TTL},
        {"rate", required_argument, 0, O_RATE},
        {"kill-after", required_argument, 0, O_KILL},
        {"outage", required_argument, 0, O_OUTAGE},
        {"recovery-timeout", required_argument, 0, O_RECOVERY},
        {"request-timeout", required_argument, 0, O_REQ_TIMEOUT},
        {"reconnect-max", required_argument, 0, O_RECONNECT},
        {"rotate-fraction", required_argument, 0, O_ROTATE},
        {"trust-domain", required_argument, 0, O_TD},
        {"dir", required_argument, 0, O_DIR},
        {"keep", no_argument, 0, O_KEEP},
        {"bin-dir", required_argument, 0, O_BIN},
        {"json", required_argument, 0, O_JSON},
        {"csv", required_argument, 0, O_CSV},
        {"svg", required_argument, 0, O_SVG},
        {"quiet", no_argument, 0, O_QUIET},
        {"expect-zero-failures-before-expiry", no_argument, 0, O_X_ZERO},
        {"expect-fail-closed", no_argument, 0, O_X_CLOSED},
        {"expect-recovery-within", required_argument, 0, O_X_RECOVERY},
        {"expect-budget-at-least", required_argument, 0, O_X_BUDGET},
        {"target", required_argument, 0, O_TARGET},
        {"kill-cmd", required_argument, 0, O_KILL_CMD},
        {"start-cmd", required_argument, 0, O_START_CMD},
        {"replicas", required_argument, 0, O_REPLICAS},
        {"kill-replica", no_argument, 0, O_KILL_REPLICA},
        {"expect-failover-within", required_argument, 0, O_X_FAILOVER},
        {"ports", required_argument, 0, O_PORTS},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int ch, rc;
    int64_t ms;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_SIDECARS:
            if ((rc = flag_int(err, "--sidecars", optarg, 1, DRILL_MAX_CLIENTS, &o->n_clients)))
                return rc;
            break;
        case O_SERVERS:
            if ((rc = flag_int(err, "--servers", optarg, 1, DRILL_MAX_SERVERS, &o->n_servers)))
                return rc;
            break;
        case O_TTL: /* whole seconds: certificates have one-second resolution */
            if ((rc = cli_duration_s("--ttl", optarg, 10, 6 * 3600, &o->ttl_s, err)))
                return rc;
            o->ttl_given = 1;
            break;
        case O_RATE:
            if ((rc = cli_double("--rate", optarg, 1, 20000, &o->rate, err)))
                return rc;
            break;
        case O_KILL:
            rc = flag_duration_ms(err, "--kill-after", optarg, 1000, 3600000, &o->kill_after_ms);
            if (rc)
                return rc;
            break;
        case O_OUTAGE:
            rc = flag_duration_ms(err, "--outage", optarg, 1000, 24 * 3600000LL, &o->outage_ms);
            if (rc)
                return rc;
            break;
        case O_RECOVERY:
            rc = flag_duration_ms(err, "--recovery-timeout", optarg, 5000, 3600000,
                                  &o->recovery_timeout_ms);
            if (rc)
                return rc;
            break;
        case O_REQ_TIMEOUT:
            rc = flag_duration_ms(err, "--request-timeout", optarg, 100, 60000,
                                  &o->request_timeout_ms);
            if (rc)
                return rc;
            break;
        case O_RECONNECT:
            /* Same range the sidecar accepts, so it cannot refuse to start later. */
            rc = flag_duration_ms(err, "--reconnect-max", optarg, XDSC_BACKOFF_CAP_LO_MS,
                                  XDSC_BACKOFF_CAP_HI_MS, &ms);
            if (rc)
                return rc;
            o->reconnect_max = optarg;
            break;
        case O_ROTATE: {
            double f; /* meshd's range: it must not refuse to start later */
            if ((rc = cli_double("--rotate-fraction", optarg, 0.1, 0.9, &f, err)))
                return rc;
            o->rotate_fraction = optarg;
            break;
        }
        case O_TD:
            if (!optarg[0] || strlen(optarg) > 200)
                return mesh_err_set(err, MESH_EINVAL, "--trust-domain: 1 to 200 characters");
            o->trust_domain = optarg;
            break;
        case O_DIR:
            if (!optarg[0] || strlen(optarg) > 3000)
                return mesh_err_set(err, MESH_EINVAL, "--dir: a directory path (at most 3000 "
                                    "characters)");
            o->dir = optarg;
            break;
        case O_KEEP: o->keep = 1; break;
        case O_BIN:
            if (!optarg[0] || strlen(optarg) > 3000)
                return mesh_err_set(err, MESH_EINVAL, "--bin-dir: a directory path");
            o->bin_dir = optarg;
            break;
        case O_JSON: o->json_path = optarg; break;
        case O_CSV: o->csv_path = optarg; break;
        case O_SVG:
            if (strcmp(optarg, "-") == 0)
                return mesh_err_set(err, MESH_EINVAL, "--svg needs a file name");
            o->svg_path = optarg;
            break;
        case O_QUIET: o->quiet = 1; break;
        case O_X_ZERO: o->expect_zero_before_expiry = 1; break;
        case O_X_CLOSED: o->expect_fail_closed = 1; break;
        case O_X_RECOVERY:
            rc = flag_duration_ms(err, "--expect-recovery-within", optarg, 1, 3600000,
                                  &o->expect_recovery_ms);
            if (rc)
                return rc;
            o->expect_recovery_arg = optarg;
            break;
        case O_X_BUDGET:
            rc = flag_duration_ms(err, "--expect-budget-at-least", optarg, 1000, 6 * 3600000LL,
                                  &ms);
            if (rc)
                return rc;
            o->expect_budget_s = ms / 1000;
            o->expect_budget_arg = optarg;
            break;
        case O_TARGET: {
            const char *colon = strrchr(optarg, ':');
            long port;
            mesh_err perr = {0};
            if (!colon || colon == optarg || strlen(optarg) > 200 ||
                cli_long("--target", colon + 1, 1, 65535, &port, &perr) != MESH_OK)
                return mesh_err_set(err, MESH_EINVAL, "--target '%s': give meshd's HOST:PORT",
                                    optarg);
            o->target = optarg;
            break;
        }
        case O_KILL_CMD:
            if (!optarg[0])
                return mesh_err_set(err, MESH_EINVAL, "--kill-cmd: an empty command");
            o->kill_cmd = optarg;
            break;
        case O_START_CMD:
            if (!optarg[0])
                return mesh_err_set(err, MESH_EINVAL, "--start-cmd: an empty command");
            o->start_cmd = optarg;
            break;
        case O_REPLICAS:
            if ((rc = flag_int(err, "--replicas", optarg, 1, DRILL_MAX_REPLICAS, &o->replicas)))
                return rc;
            break;
        case O_KILL_REPLICA: o->kill_replica = 1; break;
        case O_X_FAILOVER:
            rc = flag_duration_ms(err, "--expect-failover-within", optarg, 1, 3600000,
                                  &o->expect_failover_ms);
            if (rc)
                return rc;
            o->expect_failover_arg = optarg;
            break;
        case O_PORTS:
            if ((rc = parse_ports(optarg, o, err)))
                return rc;
            break;
        case O_HELP:
        case 'h':
            return DRILL_OPTS_HELP;
        default: return cli_bad_option(argc, argv, opts, NULL, err);
        }
    }
    if (optind < argc)
        return mesh_err_set(err, MESH_EINVAL, "drill: unexpected argument '%s'", argv[optind]);
    if (o->json_path && o->csv_path && strcmp(o->json_path, "-") == 0 &&
        strcmp(o->csv_path, "-") == 0)
        return mesh_err_set(err, MESH_EINVAL, "--json - and --csv - cannot both go to stdout");
    if ((o->json_path && strcmp(o->json_path, "-") == 0 && o->json_stdout) ||
        (o->csv_path && strcmp(o->csv_path, "-") == 0 && o->json_stdout))
        return mesh_err_set(err, MESH_EINVAL, "--output json already prints the report on stdout; "
                            "give --json/--csv a file name");
    if (!o->target && o->outage_ms && o->expect_fail_closed && o->outage_ms < o->ttl_s * 1000)
        return mesh_err_set(err, MESH_EINVAL, "--expect-fail-closed needs an outage longer than "
                            "--ttl (every SVID must expire while meshd is down); drop --outage or "
                            "make it longer than %llds", (long long)o->ttl_s);
    if (o->target) {
        o->db_path = db_path;
        if (!o->kill_cmd || !o->start_cmd)
            return mesh_err_set(err, MESH_EINVAL, "--target needs --kill-cmd and --start-cmd (how "
                                "to kill and start that meshd)");
        if (!o->db_path)
            return mesh_err_set(err, MESH_EINVAL, "--target needs meshd's store: pass --db PATH or "
                                "set MESHD_DB");
        if (o->ttl_given)
            return mesh_err_set(err, MESH_EINVAL, "--ttl cannot be used with --target: the running "
                                "meshd's --svid-ttl decides the SVID lifetime");
        if (o->rotate_fraction)
            return mesh_err_set(err, MESH_EINVAL, "--rotate-fraction cannot be used with --target: "
                                "it is the running meshd's setting");
    } else if (o->kill_cmd || o->start_cmd) {
        return mesh_err_set(err, MESH_EINVAL, "--kill-cmd and --start-cmd go with --target");
    }
    if (o->kill_replica && o->replicas < 2)
        return mesh_err_set(err, MESH_EINVAL, "--kill-replica needs --replicas 2 or more (a "
                            "replica must survive for the sidecars to move to)");
    if (o->replicas > 1 && o->target)
        return mesh_err_set(err, MESH_EINVAL, "--replicas cannot be used with --target: the "
                            "drill starts its own replicas");
    if (o->replicas > 1 && !o->kill_replica)
        return mesh_err_set(err, MESH_EINVAL, "--replicas needs --kill-replica (the classic "
                            "drill kills the whole control plane)");
    if (o->expect_failover_ms >= 0 && !o->kill_replica)
        return mesh_err_set(err, MESH_EINVAL, "--expect-failover-within goes with --kill-replica");
    if (o->kill_replica && (o->expect_fail_closed || o->expect_recovery_ms >= 0 ||
                            o->expect_budget_s >= 0))
        return mesh_err_set(err, MESH_EINVAL, "--kill-replica keeps the control plane up: "
                            "--expect-fail-closed, --expect-recovery-within and "
                            "--expect-budget-at-least do not apply");
    if (o->kill_replica && !o->outage_ms)
        o->outage_ms = DRILL_FAILOVER_OUTAGE_MS;
    /* A report on stdout keeps stdout machine-readable: progress goes to stderr. */
    o->progress_stderr = o->json_stdout || (o->json_path && strcmp(o->json_path, "-") == 0) ||
                         (o->csv_path && strcmp(o->csv_path, "-") == 0);
    return 0;
}
