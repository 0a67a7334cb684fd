/* meshd/meshd_flags.c — meshd's command line. */
#include "meshd/meshd_internal.h"
#include "meshd/meshd_proxyless.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: meshd --db PATH [options]\n"
    "\n"
    "The meshd control plane: SPIFFE CA (IstioCertificateService/CreateCertificate) and\n"
    "Envoy-compatible xDS/SDS server (ADS, StreamSecrets, FetchSecrets) over mTLS.\n"
    "\n"
    "  --db PATH              SQLite store (required; create it with 'meshctl ca init')\n"
    "  --listen HOST:PORT     address to serve on (default 127.0.0.1:15010)\n"
    "  --svid-ttl DURATION    default SVID lifetime, e.g. 60s, 15m, 24h (default 24h, max 90d)\n"
    "  --rotate-fraction F    renew SVIDs at this fraction of their lifetime (default 0.5,\n"
    "                         +-10%% jitter), between 0.1 and 0.9\n"
    "  --log-level LEVEL      debug|info|warn|error (default info)\n"
    "  --instance NAME        this process's name in proxy status (default meshd-<host>-<pid>)\n"
    "  --cq-threads N         gRPC completion-queue threads (default 2)\n"
    "  --workers N            store/CA worker threads (default 2)\n"
    "  --poll-interval DUR    store change polling (default 200ms)\n"
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
    "  -h, --help             this text\n";

int md_parse_duration(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    int64_t mult = 1;
    if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60;
    else if (strcmp(end, "h") == 0)
        mult = 3600;
    else if (strcmp(end, "d") == 0)
        mult = 86400;
    else
        return -1;
    if (v > INT64_MAX / mult)
        return -1;
    *out = (int64_t)v * mult;
    return 0;
}

/* Milliseconds: "200ms", "1s", or plain milliseconds. */
static int parse_ms(const char *s, int64_t *out)
{
    size_t l = strlen(s);
    if (l > 2 && strcmp(s + l - 2, "ms") == 0) {
        char buf[32];
        if (l - 2 >= sizeof buf)
            return -1;
        memcpy(buf, s, l - 2);
        buf[l - 2] = '\0';
        char *end;
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (errno || *end || v < 0)
            return -1;
        *out = v;
        return 0;
    }
    int64_t sec;
    if (md_parse_duration(s, &sec) != 0 || sec > INT64_MAX / 1000)
        return -1;
    *out = sec * 1000;
    return 0;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int md_opts_parse(int argc, char **argv, md_opts *o, mesh_err *err)
{
    memset(o, 0, sizeof *o);
    o->listen = "127.0.0.1:15010";
    o->svid_ttl = CA_DEFAULT_SVID_TTL;
    o->rotate_fraction = 0.5;
    o->log_level = LOG_INFO;
    o->cq_threads = 2;
    o->workers = 2;
    o->poll_ms = 200;
    o->debounce_ms = 100;
    o->max_pending_csr = 2048;

    enum { O_DB = 1000, O_LISTEN, O_TTL, O_FRAC, O_LOG, O_INST, O_CQ, O_WORK, O_POLL, O_MAXCSR,
           O_PLAIN, O_PLAIN_REMOTE };
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
        case O_LISTEN: o->listen = optarg; break;
        case O_TTL:
            if (md_parse_duration(optarg, &o->svid_ttl) != 0 || o->svid_ttl < CA_MIN_SVID_TTL ||
                o->svid_ttl > CA_MAX_SVID_TTL)
                return mesh_err_set(err, MESH_EINVAL,
                                    "--svid-ttl '%s': give a duration like 60s, 15m or 24h "
                                    "between %ds and 90d",
                                    optarg, CA_MIN_SVID_TTL);
            break;
        case O_FRAC: {
            char *end;
            errno = 0;
            double f = strtod(optarg, &end);
            /* Written so that NaN, which compares false with both bounds, fails. */
            if (errno || end == optarg || *end || !(f >= 0.1 && f <= 0.9))
                return mesh_err_set(err, MESH_EINVAL,
                                    "--rotate-fraction '%s': give a number between 0.1 and 0.9",
                                    optarg);
            o->rotate_fraction = f;
            break;
        }
        case O_LOG:
            if (log_level_parse(optarg, &o->log_level) != 0)
                return mesh_err_set(err, MESH_EINVAL,
                                    "--log-level '%s': use debug, info, warn or error", optarg);
            break;
        case O_INST:
            if (!optarg[0] || strlen(optarg) > 100)
                return mesh_err_set(err, MESH_EINVAL, "--instance: 1 to 100 characters");
            o->instance = optarg;
            break;
        case O_CQ:
            if (parse_int(optarg, 1, MD_MAX_CQ_THREADS, &v) != 0)
                return mesh_err_set(err, MESH_EINVAL, "--cq-threads '%s': 1..%d", optarg,
                                    MD_MAX_CQ_THREADS);
            o->cq_threads = (int)v;
            break;
        case O_WORK:
            if (parse_int(optarg, 1, 64, &v) != 0)
                return mesh_err_set(err, MESH_EINVAL, "--workers '%s': 1..64", optarg);
            o->workers = (int)v;
            break;
        case O_POLL:
            if (parse_ms(optarg, &o->poll_ms) != 0 || o->poll_ms < 10 || o->poll_ms > 60000)
                return mesh_err_set(err, MESH_EINVAL,
                                    "--poll-interval '%s': between 10ms and 60s", optarg);
            break;
        case O_MAXCSR:
            if (parse_int(optarg, 1, 1000000, &v) != 0)
                return mesh_err_set(err, MESH_EINVAL, "--max-pending-csr '%s': 1..1000000",
                                    optarg);
            o->max_pending_csr = (size_t)v;
            break;
        case O_PLAIN: o->plain_listen = optarg; break;
        case O_PLAIN_REMOTE: o->plain_remote = 1; break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        default:
            return mesh_err_set(err, MESH_EINVAL, "unknown or incomplete option '%s'; see --help",
                                argv[optind - 1]);
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
