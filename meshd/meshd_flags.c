/* meshd/meshd_flags.c — meshd's command line. */
#include "meshd/meshd_internal.h"
#include "meshd/meshd_proxyless.h"
#include "meshd/meshd_health.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/cli.h"

static const char usage[] =
    "usage: meshd --db PATH [options]\n"
    "\n"
    "The meshd control plane: SPIFFE CA (IstioCertificateService/CreateCertificate) and\n"
    "Envoy-compatible xDS/SDS server (ADS, StreamSecrets, FetchSecrets) over mTLS.\n"
    "\n"
    "  --db PATH              SQLite store (required; create it with 'meshctl ca init')\n"
    "  --listen HOST:PORT     address to serve on (default 127.0.0.1:15010)\n"
    "  --svid-ttl DURATION    default SVID lifetime, 10s to 90d (default 24h)\n"
    "  --rotate-fraction F    renew SVIDs at this fraction of their lifetime (default 0.5,\n"
    "                         +-10% jitter), between 0.1 and 0.9\n"
    "  --log-level LEVEL      debug|info|warn|error (default info); at run time: SIGUSR1\n"
    "                         one level more verbose, SIGUSR2 one less, or POST\n"
    "                         /logging?level=LEVEL on the metrics listener\n"
    "  --log-format FORMAT    text (default) or json (one JSON object per line)\n"
    "  --metrics-listen HOST:PORT\n"
    "                         serve /metrics (Prometheus), /healthz, /readyz and /logging\n"
    "                         over plain HTTP on this address (off by default; e.g.\n"
    "                         127.0.0.1:15014)\n"
    "  --instance NAME        this process's name in proxy status (default meshd-<host>-<pid>)\n"
    "  --cq-threads N         gRPC completion-queue threads (default 2)\n"
    "  --workers N            store/CA worker threads (default 2)\n"
    "  --poll-interval MS     safety-net poll of the store (default 1s), 10ms to 60s: changes\n"
    "                         are notified (PostgreSQL LISTEN/NOTIFY, inotify on SQLite); while\n"
    "                         notifications do not work meshd polls at least every 200ms\n"
    "  --endpoint-grace DURATION\n"
    "                         serve a workload's endpoint UNHEALTHY in EDS once its sidecar\n"
    "                         has held no xDS stream for this long (default 60s; counted\n"
    "                         from meshd's start for one never seen); HEALTHY again as\n"
    "                         soon as it reconnects; 0 = off (always HEALTHY), up to 24h\n"
    "  --max-pending-csr N    CreateCertificate requests queued before answering\n"
    "                         UNAVAILABLE (default 2048)\n"
    "  --xds-plaintext-listen HOST:PORT | unix:PATH\n"
    "                         also serve LDS/RDS/CDS/EDS (SotW ADS only, never SDS or the CA)\n"
    "                         in plaintext to proxyless gRPC clients that cannot do mTLS;\n"
    "                         identity = Node.id of a registered identity (off by default;\n"
    "                         loopback or a UNIX socket only; see docs/xds-clients.md)\n"
    "  --xds-plaintext-allow-remote\n"
    "                         let --xds-plaintext-listen bind a non-loopback address\n"
    "                         (only on a network you trust)\n"
    "\n"
    "Bounds on what one peer can make meshd hold (a refused stream is told why):\n"
    "  --max-streams-per-connection N\n"
    "                         concurrent gRPC streams on one connection (default 100;\n"
    "                         a client waits for a free one)\n"
    "  --max-streams-per-identity N\n"
    "                         xDS streams one SPIFFE ID may hold at once, over all its\n"
    "                         connections (default 1000; replicas share an identity);\n"
    "                         more are refused with RESOURCE_EXHAUSTED\n"
    "  --max-send-queue BYTES responses queued for one stream that its client has not\n"
    "                         read before meshd cancels the stream (default 16MiB;\n"
    "                         at least twice the 4MiB message limit)\n"
    "  --max-send-queue-total BYTES\n"
    "                         the same over all streams together (default 256MiB): past\n"
    "                         it, a stream with a response waiting behind another is\n"
    "                         cancelled\n"
    "  --keepalive DURATION   ping each connection this often (default 30s) ...\n"
    "  --keepalive-timeout DURATION\n"
    "                         ... and close it when a ping is not answered in time\n"
    "                         (default 10s): dead peers and peers that stopped reading\n"
    "  -h, --help             this text\n"
    "\n"
    "Durations are a whole number and a unit (ms, s, m, h, d), e.g. 250ms, 90s, 15m, 24h.\n"
    "A bare number counts in the flag's unit: milliseconds for --poll-interval, seconds\n"
    "for --svid-ttl.\n";

int md_opts_parse(int argc, char **argv, md_opts *o, mesh_err *err)
{
    memset(o, 0, sizeof *o);
    o->listen = "127.0.0.1:15010";
    o->svid_ttl = CA_DEFAULT_SVID_TTL;
    o->rotate_fraction = 0.5;
    o->log_level = LOG_INFO;
    o->cq_threads = 2;
    o->workers = 2;
    o->poll_ms = 1000;
    o->debounce_ms = 20;
    o->max_pending_csr = 2048;
    o->max_streams_per_conn = MD_DEFAULT_STREAMS_PER_CONN;
    o->max_streams_per_identity = MD_DEFAULT_STREAMS_PER_IDENTITY;
    o->max_send_queue = MD_DEFAULT_SEND_QUEUE;
    o->max_send_queue_total = MD_DEFAULT_SEND_QUEUE_TOTAL;
    o->keepalive_ms = 30000;
    o->keepalive_timeout_ms = 10000;
    o->endpoint_grace_s = MD_DEFAULT_ENDPOINT_GRACE_S;

    enum { O_DB = 1000, O_LISTEN, O_TTL, O_FRAC, O_LOG, O_INST, O_CQ, O_WORK, O_POLL, O_MAXCSR,
           O_PLAIN, O_PLAIN_REMOTE, O_STREAMS_CONN, O_STREAMS_ID, O_SENDQ, O_SENDQ_TOTAL, O_KEEPALIVE,
           O_KEEPALIVE_TIMEOUT, O_METRICS, O_LOG_FORMAT, O_GRACE };
    static const struct option longopts[] = {
        {"db", required_argument, NULL, O_DB},
        {"listen", required_argument, NULL, O_LISTEN},
        {"svid-ttl", required_argument, NULL, O_TTL},
        {"rotate-fraction", required_argument, NULL, O_FRAC},
        {"log-level", required_argument, NULL, O_LOG},
        {"instance", required_argument, NULL, O_INST},
        {"cq-threads", required_argument, NULL, O_CQ},
        {"workers", required_argument, NULL, O_WORK},
        {"poll-interval", required_argument, NULL, O_POLL},
        {"max-pending-csr", required_argument, NULL, O_MAXCSR},
        {"xds-plaintext-listen", required_argument, NULL, O_PLAIN},
        {"xds-plaintext-allow-remote", no_argument, NULL, O_PLAIN_REMOTE},
        {"max-streams-per-connection", required_argument, NULL, O_STREAMS_CONN},
        {"max-streams-per-identity", required_argument, NULL, O_STREAMS_ID},
        {"max-send-queue", required_argument, NULL, O_SENDQ},
        {"max-send-queue-total", required_argument, NULL, O_SENDQ_TOTAL},
        {"keepalive", required_argument, NULL, O_KEEPALIVE},
        {"keepalive-timeout", required_argument, NULL, O_KEEPALIVE_TIMEOUT},
        {"metrics-listen", required_argument, NULL, O_METRICS},
        {"log-format", required_argument, NULL, O_LOG_FORMAT},
        {"endpoint-grace", required_argument, NULL, O_GRACE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int ch;
    long v;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_DB: o->db_path = optarg; break;
        case O_LISTEN:
            if (cli_listen_addr("--listen", optarg, 1, "127.0.0.1:15010", err) != MESH_OK)
                return MESH_EINVAL;
            o->listen = optarg;
            break;
        case O_TTL:
            if (cli_duration_s("--svid-ttl", optarg, CA_MIN_SVID_TTL, CA_MAX_SVID_TTL,
                               &o->svid_ttl, err) != MESH_OK)
                return MESH_EINVAL;
            break;
        case O_FRAC:
            if (cli_double("--rotate-fraction", optarg, 0.1, 0.9, &o->rotate_fraction, err) !=
                MESH_OK)
                return MESH_EINVAL;
            break;
        case O_LOG:
            if (cli_log_level("--log-level", optarg, &o->log_level, err) != MESH_OK)
                return MESH_EINVAL;
            break;
        case O_INST:
            if (!optarg[0] || strlen(optarg) > 100)
                return mesh_err_set(err, MESH_EINVAL, "--instance: 1 to 100 characters");
            o->instance = optarg;
            break;
        case O_CQ:
            if (cli_long("--cq-threads", optarg, 1, MD_MAX_CQ_THREADS, &v, err) != MESH_OK)
                return MESH_EINVAL;
            o->cq_threads = (int)v;
            break;
        case O_WORK:
            if (cli_long("--workers", optarg, 1, 64, &v, err) != MESH_OK)
                return MESH_EINVAL;
            o->workers = (int)v;
            break;
        case O_POLL:
            if (cli_duration_ms("--poll-interval", optarg, DURATION_BARE_MILLIS, 10, 60000,
                                &o->poll_ms, err) != MESH_OK)
                return MESH_EINVAL;
            break;
        case O_MAXCSR:
            if (cli_long("--max-pending-csr", optarg, 1, 1000000, &v, err) != MESH_OK)
                return MESH_EINVAL;
            o->max_pending_csr = (size_t)v;
            break;
        case O_PLAIN: o->plain_listen = optarg; break;
        case O_PLAIN_REMOTE: o->plain_remote = 1; break;
        case O_STREAMS_CONN:
            if (cli_long("--max-streams-per-connection", optarg, 1, 10000, &v, err) != MESH_OK)
                return MESH_EINVAL;
            o->max_streams_per_conn = (int)v;
            break;
        case O_STREAMS_ID:
            if (cli_long("--max-streams-per-identity", optarg, 1, 1000000, &v, err) != MESH_OK)
                return MESH_EINVAL;
            o->max_streams_per_identity = (size_t)v;
            break;
        case O_SENDQ: {
            /* Below two messages a healthy stream could be cancelled for one
             * full-size response queued behind another. */
            int64_t b;
            if (cli_bytes("--max-send-queue", optarg, 2 * (int64_t)XDS_WIRE_MAX_MESSAGE,
                          (int64_t)1 << 30, &b, err) != MESH_OK)
                return MESH_EINVAL;
            o->max_send_queue = (size_t)b;
            break;
        }
        case O_SENDQ_TOTAL: {
            int64_t b;
            if (cli_bytes("--max-send-queue-total", optarg, 2 * (int64_t)XDS_WIRE_MAX_MESSAGE,
                          (int64_t)64 << 30, &b, err) != MESH_OK)
                return MESH_EINVAL;
            o->max_send_queue_total = (size_t)b;
            break;
        }
        case O_KEEPALIVE:
            if (cli_duration_ms("--keepalive", optarg, DURATION_BARE_SECONDS, 1000, 3600000,
                                &o->keepalive_ms, err) != MESH_OK)
                return MESH_EINVAL;
            break;
        case O_KEEPALIVE_TIMEOUT:
            if (cli_duration_ms("--keepalive-timeout", optarg, DURATION_BARE_SECONDS, 1000,
                                600000, &o->keepalive_timeout_ms, err) != MESH_OK)
                return MESH_EINVAL;
            break;
        case O_METRICS:
            if (md_admin_check_listen(optarg, err) != MESH_OK)
                return MESH_EINVAL;
            o->metrics_listen = optarg;
            break;
        case O_LOG_FORMAT:
            if (log_format_parse(optarg, &o->log_format) != 0)
                return mesh_err_set(err, MESH_EINVAL, "--log-format '%s': use text or json",
                                    optarg);
            break;
        case O_GRACE:
            if (cli_duration_s("--endpoint-grace", optarg, 0, 86400, &o->endpoint_grace_s,
                               err) != MESH_OK)
                return MESH_EINVAL;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        default:
            return cli_bad_option(argc, argv, longopts, "; see --help", err);
        }
    }
    if (optind < argc)
        return mesh_err_set(err, MESH_EINVAL, "unexpected argument '%s'; see --help",
                            argv[optind]);
    if (!o->db_path)
        return mesh_err_set(err, MESH_EINVAL, "--db PATH is required; see --help");
    int prc = md_proxyless_check_opts(o, err);
    if (prc != MESH_OK)
        return prc;
    return 0;
}
