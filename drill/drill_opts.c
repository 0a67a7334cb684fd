/* drill/drill_opts.c — `meshctl drill` command line: parsing, ranges, usage.
 *
 * Every value is checked here, before anything is created or started, so a typo
 * costs nothing: bad options exit 2 with the offending flag named. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "drill/drill.h"

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
          "Exit status: 0 ran and every expectation met, 1 the drill could not run, 2 usage,\n"
          "3 an expectation was not met, 130 interrupted. See docs/drill.md.\n",
          f);
}

enum {
    O_SIDECARS = 1000, O_SERVERS, O_TTL, O_RATE, O_KILL, O_OUTAGE, O_RECOVERY, O_REQ_TIMEOUT,
    O_RECONNECT, O_ROTATE, O_TD, O_DIR, O_KEEP, O_BIN, O_JSON, O_CSV, O_SVG, O_QUIET,
    O_X_ZERO, O_X_CLOSED, O_X_RECOVERY, O_X_BUDGET, O_HELP, O_TARGET, O_KILL_CMD, O_START_CMD
};

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* A duration within [lo_ms, hi_ms]; prints a usage error naming the flag. */
static int parse_dur(ctl_ctx *c, const char *flag, const char *s, int64_t lo_ms, int64_t hi_ms,
                     int64_t *out)
{
    mesh_err err = {0};
    if (duration_parse_ms(s, out, &err) != MESH_OK)
        return ctl_usage_error(c, "%s: %s", flag, err.msg);
    if (*out < lo_ms || *out > hi_ms) {
        char lo[32], hi[32];
        if (lo_ms < 1000)
            snprintf(lo, sizeof lo, "%lldms", (long long)lo_ms);
        else
            duration_format(lo_ms / 1000, lo, sizeof lo);
        duration_format(hi_ms / 1000, hi, sizeof hi);
        return ctl_usage_error(c, "%s '%s': must be between %s and %s", flag, s, lo, hi);
    }
    return 0;
}

int drill_parse_opts(ctl_ctx *c, int argc, char **argv, drill_opts *o)
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
    o->json_stdout = c->json;

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
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int ch, rc;
    int64_t ms;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_SIDECARS:
            if (parse_int(optarg, 1, DRILL_MAX_CLIENTS, &o->n_clients) != 0)
                return ctl_usage_error(c, "--sidecars '%s': a number from 1 to %d", optarg,
                                       DRILL_MAX_CLIENTS);
            break;
        case O_SERVERS:
            if (parse_int(optarg, 1, DRILL_MAX_SERVERS, &o->n_servers) != 0)
                return ctl_usage_error(c, "--servers '%s': a number from 1 to %d", optarg,
                                       DRILL_MAX_SERVERS);
            break;
        case O_TTL:
            if ((rc = parse_dur(c, "--ttl", optarg, 10000, 6 * 3600000LL, &ms)) != 0)
                return rc;
            if (ms % 1000)
                return ctl_usage_error(c, "--ttl '%s': whole seconds (certificates have "
                                       "one-second resolution)", optarg);
            o->ttl_s = ms / 1000;
            o->ttl_given = 1;
            break;
        case O_RATE: {
            char *end;
            errno = 0;
            double v = strtod(optarg, &end);
            if (errno || end == optarg || *end || !isfinite(v) || v < 1 || v > 20000)
                return ctl_usage_error(c, "--rate '%s': requests per second, 1 to 20000",
                                       optarg);
            o->rate = v;
            break;
        }
        case O_KILL:
            if ((rc = parse_dur(c, "--kill-after", optarg, 1000, 3600000, &o->kill_after_ms)))
                return rc;
            break;
        case O_OUTAGE:
            if ((rc = parse_dur(c, "--outage", optarg, 1000, 24 * 3600000LL, &o->outage_ms)))
                return rc;
            break;
        case O_RECOVERY:
            if ((rc = parse_dur(c, "--recovery-timeout", optarg, 5000, 3600000,
                                &o->recovery_timeout_ms)))
                return rc;
            break;
        case O_REQ_TIMEOUT:
            if ((rc = parse_dur(c, "--request-timeout", optarg, 100, 60000,
                                &o->request_timeout_ms)))
                return rc;
            break;
        case O_RECONNECT:
            /* Same range the sidecar accepts, so it cannot refuse to start later. */
            if ((rc = parse_dur(c, "--reconnect-max", optarg, 250, 3600000, &ms)))
                return rc;
            o->reconnect_max = optarg;
            break;
        case O_ROTATE: {
            char *end;
            errno = 0;
            double f = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(f >= 0.1 && f <= 0.9))
                return ctl_usage_error(c, "--rotate-fraction '%s': a number from 0.1 to 0.9",
                                       optarg);
            o->rotate_fraction = optarg;
            break;
        }
        case O_TD:
            if (!optarg[0] || strlen(optarg) > 200)
                return ctl_usage_error(c, "--trust-domain: 1 to 200 characters");
            o->trust_domain = optarg;
            break;
        case O_DIR:
            if (!optarg[0] || strlen(optarg) > 3000)
                return ctl_usage_error(c, "--dir: a directory path (at most 3000 characters)");
            o->dir = optarg;
            break;
        case O_KEEP: o->keep = 1; break;
        case O_BIN:
            if (!optarg[0] || strlen(optarg) > 3000)
                return ctl_usage_error(c, "--bin-dir: a directory path");
            o->bin_dir = optarg;
            break;
        case O_JSON: o->json_path = optarg; break;
        case O_CSV: o->csv_path = optarg; break;
        case O_SVG:
            if (strcmp(optarg, "-") == 0)
                return ctl_usage_error(c, "--svg needs a file name");
            o->svg_path = optarg;
            break;
        case O_QUIET: o->quiet = 1; break;
        case O_X_ZERO: o->expect_zero_before_expiry = 1; break;
        case O_X_CLOSED: o->expect_fail_closed = 1; break;
        case O_X_RECOVERY:
            if ((rc = parse_dur(c, "--expect-recovery-within", optarg, 1, 3600000,
                                &o->expect_recovery_ms)))
                return rc;
            o->expect_recovery_arg = optarg;
            break;
        case O_X_BUDGET:
            if ((rc = parse_dur(c, "--expect-budget-at-least", optarg, 1000, 6 * 3600000LL,
                                &ms)))
                return rc;
            o->expect_budget_s = ms / 1000;
            o->expect_budget_arg = optarg;
            break;
        case O_TARGET: {
            const char *colon = strrchr(optarg, ':');
            int port;
            if (!colon || colon == optarg || strlen(optarg) > 200 ||
                parse_int(colon + 1, 1, 65535, &port) != 0)
                return ctl_usage_error(c, "--target '%s': give meshd's HOST:PORT", optarg);
            o->target = optarg;
            break;
        }
        case O_KILL_CMD:
            if (!optarg[0])
                return ctl_usage_error(c, "--kill-cmd: an empty command");
            o->kill_cmd = optarg;
            break;
        case O_START_CMD:
            if (!optarg[0])
                return ctl_usage_error(c, "--start-cmd: an empty command");
            o->start_cmd = optarg;
            break;
        case O_HELP:
        case 'h':
            drill_usage(stdout);
            return -1;
        default:
            return ctl_usage_error(c, "drill: unknown or incomplete option '%s'",
                                   optind > 0 && optind <= argc ? argv[optind - 1] : "?");
        }
    }
    if (optind < argc)
        return ctl_usage_error(c, "drill: unexpected argument '%s'", argv[optind]);
    if (o->json_path && o->csv_path && strcmp(o->json_path, "-") == 0 &&
        strcmp(o->csv_path, "-") == 0)
        return ctl_usage_error(c, "--json - and --csv - cannot both go to stdout");
    if ((o->json_path && strcmp(o->json_path, "-") == 0 && o->json_stdout) ||
        (o->csv_path && strcmp(o->csv_path, "-") == 0 && o->json_stdout))
        return ctl_usage_error(c, "--output json already prints the report on stdout; "
                               "give --json/--csv a file name");
    if (!o->target && o->outage_ms && o->expect_fail_closed && o->outage_ms < o->ttl_s * 1000)
        return ctl_usage_error(c, "--expect-fail-closed needs an outage longer than --ttl "
                               "(every SVID must expire while meshd is down); drop --outage "
                               "or make it longer than %llds", (long long)o->ttl_s);
    if (o->target) {
        o->db_path = c->db_path;
        if (!o->kill_cmd || !o->start_cmd)
            return ctl_usage_error(c, "--target needs --kill-cmd and --start-cmd (how to kill "
                                   "and start that meshd)");
        if (!o->db_path)
            return ctl_usage_error(c, "--target needs meshd's store: pass --db PATH or set "
                                   "MESHD_DB");
        if (o->ttl_given)
            return ctl_usage_error(c, "--ttl cannot be used with --target: the running meshd's "
                                   "--svid-ttl decides the SVID lifetime");
        if (o->rotate_fraction)
            return ctl_usage_error(c, "--rotate-fraction cannot be used with --target: it is "
                                   "the running meshd's setting");
    } else if (o->kill_cmd || o->start_cmd) {
        return ctl_usage_error(c, "--kill-cmd and --start-cmd go with --target");
    }
    /* A report on stdout keeps stdout machine-readable: progress goes to stderr. */
    o->progress_stderr = o->json_stdout || (o->json_path && strcmp(o->json_path, "-") == 0) ||
                         (o->csv_path && strcmp(o->csv_path, "-") == 0);
    return 0;
}
