/* sidecar/run_flags.c — mesh-sidecar's command line. */
#include <getopt.h>
#include <string.h>

#include "common/duration.h"
#include "sidecar/run.h"

void sc_usage(FILE *f)
{
    fputs("usage: mesh-sidecar --meshd HOST:PORT --state-dir DIR [options]\n"
          "\n"
          "  --meshd HOST:PORT      meshd's gRPC address (xDS + CA), e.g. 127.0.0.1:15010\n"
          "  --state-dir DIR        where the cert pool (0600, holds the private key) and the last\n"
          "                         good xDS config live; created 0700 if missing\n"
          "  --ca-bundle FILE       trust bundle ('meshctl ca bundle'); required on first contact\n"
          "  --id SPIFFE_ID         this sidecar's identity; required on first contact\n"
          "  --token mjt_...        one-time join token for first contact (prefer --token-file)\n"
          "  --token-file FILE      file holding the join token; re-read on every enrolment\n"
          "                         attempt, so a new token can be handed over without a restart\n"
          "  --workload NAME        the workload this sidecar runs (sent as Node.id; needed when\n"
          "                         several workloads share one SPIFFE ID)\n"
          "  --admin IP:PORT        admin endpoint (loopback only): /ready /stats /config_dump /certs\n"
          "  --server-name NAME     name in meshd's certificate (default meshd)\n"
          "  --drain-time DURATION  on SIGTERM: stop accepting, let requests finish (default 2s)\n"
          "  --reconnect-max DURATION  longest wait between attempts to reach meshd; waits grow\n"
          "                         from 250ms with full jitter (default 30s)\n"
          "  --log-level LEVEL      debug|info|warn|error (default info)\n"
          "  -h, --help             this text\n"
          "\n"
          "A sidecar restarted with an existing state directory serves its persisted config and\n"
          "certificates at once, even while meshd is unreachable, until the SVID expires.\n",
          f);
}

enum {
    O_MESHD = 1000, O_BUNDLE, O_STATE, O_TOKEN, O_TOKEN_FILE, O_ID, O_WORKLOAD, O_ADMIN,
    O_SERVER_NAME, O_DRAIN, O_RECONNECT_MAX, O_LOG
};

int sc_parse_flags(int argc, char **argv, sc_opts *o, int *help, mesh_err *err)
{
    memset(o, 0, sizeof *o);
    *help = 0;
    o->drain_ms = 2000;
    o->reconnect_max_ms = 30000;
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
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_MESHD: o->meshd = optarg; break;
        case O_BUNDLE: o->ca_bundle = optarg; break;
        case O_STATE: o->state_dir = optarg; break;
        case O_TOKEN: o->token = optarg; break;
        case O_TOKEN_FILE: o->token_file = optarg; break;
        case O_ID: o->spiffe_id = optarg; break;
        case O_WORKLOAD: o->workload = optarg; break;
        case O_ADMIN: o->admin = optarg; break;
        case O_SERVER_NAME: o->server_name = optarg; break;
        case O_DRAIN:
            if (duration_parse_ms(optarg, &o->drain_ms, err) != MESH_OK)
                return mesh_err_prefix(err, "--drain-time");
            if (o->drain_ms > 300000)
                return mesh_err_set(err, MESH_EINVAL, "--drain-time: at most 5m");
            break;
        case O_RECONNECT_MAX:
            if (duration_parse_ms(optarg, &o->reconnect_max_ms, err) != MESH_OK)
                return mesh_err_prefix(err, "--reconnect-max");
            if (o->reconnect_max_ms < 250 || o->reconnect_max_ms > 3600000)
                return mesh_err_set(err, MESH_EINVAL, "--reconnect-max: between 250ms and 1h");
            break;
        case O_LOG:
            if (log_level_parse(optarg, &o->log_level) != 0)
                return mesh_err_set(err, MESH_EINVAL,
                                    "--log-level '%s': use debug, info, warn or error", optarg);
            break;
        case 'h': *help = 1; return MESH_OK;
        default:
            return mesh_err_set(err, MESH_EINVAL, "unknown or incomplete option '%s'",
                                optind > 0 && optind <= argc ? argv[optind - 1] : "?");
        }
    }
    if (optind < argc)
        return mesh_err_set(err, MESH_EINVAL, "unexpected argument '%s'", argv[optind]);
    if (!o->meshd)
        return mesh_err_set(err, MESH_EINVAL, "--meshd HOST:PORT is required");
    if (!o->state_dir)
        return mesh_err_set(err, MESH_EINVAL, "--state-dir DIR is required");
    if (o->token && o->token_file)
        return mesh_err_set(err, MESH_EINVAL, "give --token or --token-file, not both");
    return MESH_OK;
}
