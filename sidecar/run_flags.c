/* sidecar/run_flags.c — mesh-sidecar's command line. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "sidecar/run.h"
#include "sidecar/xds_backoff.h"
#include "sidecar/xds_targets.h"

void sc_usage(FILE *f)
{
    fputs("usage: mesh-sidecar --meshd HOST:PORT[,HOST:PORT...] --state-dir DIR [options]\n"
          "\n"
          "  --meshd HOST:PORT      meshd's gRPC address (xDS + CA), e.g. 127.0.0.1:15010. For\n"
          "                         replicas give several (a,b,c or the flag again, at most 16)\n"
          "                         or a name that resolves to several: a failed replica is left\n"
          "                         for the next at once, with a backoff only after all failed\n"
          "  --state-dir DIR        where the cert pool (0600, holds the private key) and the last\n"
          "                         good xDS config live; created 0700 if missing\n"
          "  --ca-bundle FILE       trust bundle ('meshctl ca bundle'); needed on first contact\n"
          "                         unless the join token pins the CA (as new tokens do)\n"
          "  --id SPIFFE_ID         this sidecar's identity (the service account, shared by its\n"
          "                         replicas); required on first contact\n"
          "  --token mjt_...        one-time join token for first contact (prefer --token-file)\n"
          "  --token-file FILE      file holding the join token; re-read on every enrolment\n"
          "                         attempt, so a new token can be handed over without a restart\n"
          "  --workload NAME        the instance this sidecar runs, sent as Node.id. Optional: meshd\n"
          "                         serves the instance the join token enrolled ('meshctl workload\n"
          "                         add NAME --id ...') and refuses a NAME that is another one\n"
          "  --admin IP:PORT        admin endpoint (loopback only): /ready /stats\n"
          "                         /stats/prometheus /config_dump /certs, POST /logging?level=\n"
          "  --server-name NAME     name in meshd's certificate (default meshd)\n"
          "  --drain-time DURATION  on SIGTERM: stop accepting, let requests finish, at most 5m\n"
          "                         (default 2s)\n"
          "  --reconnect-max DURATION  longest wait between attempts to reach meshd (250ms to\n"
          "                         1h); waits grow from 250ms with full jitter (default 30s)\n"
           "  --request-headers-timeout DURATION  a request head must be complete this long\n"
           "                         after its first byte, or it is answered 408 and the\n"
           "                         connection closed (100ms to 5m, default 10s)\n"
           "  --idle-timeout DURATION  keep-alive connections with no request are closed after\n"
           "                         this long, both sides (1s to 24h, default 5m)\n"
          "  --access-log FILE      one JSON object per HTTP exchange (start_time, method, path,\n"
          "                         response_code, duration_ms, bytes, upstream_host,\n"
          "                         peer_spiffe_id, request_id, ...), appended to FILE, or - for\n"
          "                         stdout; off by default\n"
          "  --log-level LEVEL      debug|info|warn|error (default info); change it at run time\n"
          "                         with POST /logging?level=LEVEL on the admin endpoint\n"
          "  --log-format FORMAT    text (default) or json (one JSON object per line)\n"
          "  -h, --help             this text\n"
          "\n"
          "Durations are a whole number and a unit (ms, s, m, h, d), e.g. 500ms, 2s, 1m; a\n"
          "bare number is seconds.\n"
          "\n"
          "A sidecar restarted with an existing state directory serves its persisted config and\n"
          "certificates at once, even while meshd is unreachable, until the SVID expires.\n"
          "Explicit trust material wins over the state directory when it is new: a --ca-bundle\n"
          "whose content changed since it was last given replaces the persisted roots (the same\n"
          "file again changes nothing), and a join token this state directory never used\n"
          "re-enrols the sidecar. So one that missed a CA rotation recovers by a restart with a\n"
          "current bundle or a new token, keeping its state directory.\n",
          f);
}

enum {
    O_MESHD = 1000, O_BUNDLE, O_STATE, O_TOKEN, O_TOKEN_FILE, O_ID, O_WORKLOAD, O_ADMIN,
    O_SERVER_NAME, O_DRAIN, O_RECONNECT_MAX, O_LOG, O_HEADERS_TIMEOUT, O_IDLE_TIMEOUT,
    O_LOG_FORMAT, O_ACCESS_LOG
};

int sc_parse_flags(int argc, char **argv, sc_opts *o, int *help, mesh_err *err)
{
    memset(o, 0, sizeof *o);
    *help = 0;
    o->drain_ms = 2000;
    o->reconnect_max_ms = 30000;
    o->request_headers_timeout_ms = DP_REQUEST_HEADERS_TIMEOUT_MS;
    o->idle_timeout_ms = 300000;
    o->log_level = LOG_INFO;
    static const struct option longopts[] = {
        {"meshd", required_argument, NULL, O_MESHD},
        {"ca-bundle", required_argument, NULL, O_BUNDLE},
        {"state-dir", required_argument, NULL, O_STATE},
        {"token", required_argument, NULL, O_TOKEN},
        {"token-file", required_argument, NULL, O_TOKEN_FILE},
        {"id", required_argument, NULL, O_ID},
        {"workload", required_argument, NULL, O_WORKLOAD},
        {"admin", required_argument, NULL, O_ADMIN},
        {"server-name", required_argument, NULL, O_SERVER_NAME},
        {"drain-time", required_argument, NULL, O_DRAIN},
        {"reconnect-max", required_argument, NULL, O_RECONNECT_MAX},
        {"log-level", required_argument, NULL, O_LOG},
        {"log-format", required_argument, NULL, O_LOG_FORMAT},
        {"request-headers-timeout", required_argument, NULL, O_HEADERS_TIMEOUT},
        {"idle-timeout", required_argument, NULL, O_IDLE_TIMEOUT},
        {"access-log", required_argument, NULL, O_ACCESS_LOG},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_MESHD:
            if (!o->meshd) {
                o->meshd = optarg;
            } else {
                /* Repeated: one list. Built in o's own buffer from the parts. */
                char prev[sizeof o->meshd_list];
                snprintf(prev, sizeof prev, "%s", o->meshd);
                int n = snprintf(o->meshd_list, sizeof o->meshd_list, "%s,%s", prev, optarg);
                if (n < 0 || (size_t)n >= sizeof o->meshd_list)
                    return mesh_err_set(err, MESH_EINVAL, "--meshd: the addresses are too long "
                                        "together (at most %zu characters)",
                                        sizeof o->meshd_list - 1);
                o->meshd = o->meshd_list;
            }
            break;
        case O_BUNDLE: o->ca_bundle = optarg; break;
        case O_STATE: o->state_dir = optarg; break;
        case O_TOKEN: o->token = optarg; break;
        case O_TOKEN_FILE: o->token_file = optarg; break;
        case O_ID: o->spiffe_id = optarg; break;
        case O_WORKLOAD: o->workload = optarg; break;
        case O_ADMIN: o->admin = optarg; break;
        case O_SERVER_NAME: o->server_name = optarg; break;
        case O_DRAIN:
            if (cli_duration_ms("--drain-time", optarg, DURATION_BARE_SECONDS, 0, 300000,
                                &o->drain_ms, err) != MESH_OK)
                return MESH_EINVAL;
            break;
        case O_RECONNECT_MAX:
            if (cli_duration_ms("--reconnect-max", optarg, DURATION_BARE_SECONDS,
                                XDSC_BACKOFF_CAP_LO_MS, XDSC_BACKOFF_CAP_HI_MS,
                                &o->reconnect_max_ms, err) != MESH_OK)
                return MESH_EINVAL;
            break;
        case O_LOG:
            if (cli_log_level("--log-level", optarg, &o->log_level, err) != MESH_OK)
                return MESH_EINVAL;
            break;
        case O_LOG_FORMAT:
            if (log_format_parse(optarg, &o->log_format) != 0)
                return mesh_err_set(err, MESH_EINVAL, "--log-format '%s': use text or json",
                                    optarg);
            break;
        case O_HEADERS_TIMEOUT:
            if (cli_duration_ms("--request-headers-timeout", optarg, DURATION_BARE_SECONDS, 100,
                                300000, &o->request_headers_timeout_ms, err) != MESH_OK)
                return MESH_EINVAL;
            break;
        case O_IDLE_TIMEOUT:
            if (cli_duration_ms("--idle-timeout", optarg, DURATION_BARE_SECONDS, 1000, 86400000,
                                &o->idle_timeout_ms, err) != MESH_OK)
                return MESH_EINVAL;
            break;
        case O_ACCESS_LOG:
            if (!optarg[0])
                return mesh_err_set(err, MESH_EINVAL, "--access-log needs a file, or - for "
                                    "stdout");
            o->access_log = optarg;
            break;
        case 'h': *help = 1; return MESH_OK;
        default: return cli_bad_option(argc, argv, longopts, NULL, err);
        }
    }
    if (optind < argc)
        return mesh_err_set(err, MESH_EINVAL, "unexpected argument '%s'", argv[optind]);
    if (!o->meshd)
        return mesh_err_set(err, MESH_EINVAL, "--meshd HOST:PORT is required");
    xdsc_targets *t = malloc(sizeof *t);    /* ~9 KB: not on the stack */
    if (!t)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    int rc = xdsc_targets_parse(t, o->meshd, err);
    free(t);
    if (rc != MESH_OK)
        return rc;
    if (!o->state_dir)
        return mesh_err_set(err, MESH_EINVAL, "--state-dir DIR is required");
    if (o->token && o->token_file)
        return mesh_err_set(err, MESH_EINVAL, "give --token or --token-file, not both");
    return MESH_OK;
}
