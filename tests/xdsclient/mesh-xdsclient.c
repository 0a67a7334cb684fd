/* tests/xdsclient/mesh-xdsclient.c — main and command line of the test/diagnostic xDS client.
 *
 * Exit codes: 0 done (--exit-after reached, --expect-status matched, or the
 * certificate step alone succeeded), 1 failure (an RPC status other than the
 * expected one, a refused certificate), 2 usage, 3 --timeout expired. */
#include "tests/xdsclient/xdsclient.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/mgrpc.h"
#include "common/version.h"

static const char usage[] =
    "usage: mesh-xdsclient [options]\n"
    "\n"
    "Identity (pick one):\n"
    "  --token mjt_... --id SPIFFE_ID   first contact: new key + CSR, SVID via join token\n"
    "  --cert FILE --key FILE           use an existing SVID for mTLS\n"
    "     --renew                       ... and renew it over mTLS first (same key)\n"
    "     --recover                     ... expired: recover it (CSR signed by the same key)\n"
    "  --anonymous [--id SPIFFE_ID]     no client certificate; with --id, ask for an SVID\n"
    "                                   without credentials (refused: for negative tests)\n"
    "  --state-dir DIR                  reuse key.pem/cert.pem/bundle.pem from DIR when no\n"
    "                                   other identity option is given; always save there\n"
    "  --bundle FILE | --bundle-db DB   roots that verify meshd (default DIR/bundle.pem)\n"
    "  --ttl DURATION                   requested SVID lifetime (default: meshd's)\n"
    "  --key-type T                     ec-p256 (default), ec-p384, rsa-2048, rsa-3072\n"
    "  --csr-id SPIFFE_ID               put another ID in the CSR (negative tests)\n"
    "\n"
    "Streams:\n"
    "  --server HOST:PORT               meshd (default 127.0.0.1:15010)\n"
    "  --ads | --sds | --fetch | --no-stream   what to open after the certificate (ads)\n"
    "  --delta                          Incremental xDS: DeltaAggregatedResources (or\n"
    "                                   DeltaSecrets with --sds); LDS/CDS legacy wildcard\n"
    "  --delta-state FILE               with --delta: resource versions held, read at start\n"
    "                                   (initial_resource_versions), rewritten on each ACK\n"
    "  --sotw-state FILE                State of the World: the version_info held per type,\n"
    "                                   read at start and sent in the first requests (a\n"
    "                                   reconnect), rewritten on each ACK\n"
    "  --sub TYPE=NAMES                 subscribe (TYPE lds|cds|eds|rds|sds, NAMES comma-\n"
    "                                   separated, '*' or empty = wildcard); repeatable;\n"
    "                                   default cds=* lds=* sds=default,ROOTCA\n"
    "  --node-id ID                     Node.id of the first request\n"
    "  --nack-type TYPE [--nack-count N] NACK responses of TYPE (the first N only)\n"
    "  --no-ack                         never answer responses\n"
    "  --dump-dir DIR                   write every raw DiscoveryResponse to DIR\n"
    "  --exit-after N                   exit 0 after N responses in total\n"
    "  --timeout DURATION               give up (exit 3) after this long (default 30s)\n"
    "  --streams N                      N ADS streams, each on its own connection\n"
    "  --connections N                  ... or all of them on N connections (streams beyond\n"
    "                                   meshd's per-connection limit wait in the client)\n"
    "  --no-read                        never receive: a peer that stops reading (load and\n"
    "                                   hostile-client tests)\n"
    "  --resubscribe N                  after the first requests, N unsubscribe/subscribe\n"
    "                                   pairs of the first by-name --sub type (rds, eds or\n"
    "                                   sds), each answered by meshd (with --no-read: a\n"
    "                                   send-queue flood)\n"
    "  --retry                          a stream waits for its connection (no 20 s connect\n"
    "                                   deadline) and re-opens after an error status, after\n"
    "                                   1 s doubling to 10 s, each x0.5-1.5 at random\n"
    "  --summary | --quiet              one summary line / nothing per response\n"
    "  --raw-send FILE | --raw-size N   send these bytes (or N garbage bytes) as a message\n"
    "                                   (with --delta: on a Delta stream, answers read as\n"
    "                                   Delta responses)\n"
    "  --method PATH                    call PATH instead (with --raw-*)\n"
    "  --expect-status CODE             exit 0 when a stream ends with this gRPC status\n"
    "\n"
    "Durations are a whole number and a unit (ms, s, m, h, d), e.g. 500ms, 30s; a bare\n"
    "number is seconds.\n";

int64_t xcl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int xcl_read_file(const char *path, char **out, size_t *len, mesh_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return mesh_err_set(err, MESH_EIO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory reading %s", path);
    if (bad) {
        free(buf);
        return mesh_err_set(err, MESH_EIO, "cannot read %s", path);
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return MESH_OK;
}

int xcl_write_file(const char *path, const void *data, size_t len, int mode, mesh_err *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return mesh_err_set(err, MESH_EIO, "cannot create %s: %s", tmp, strerror(errno));
    fchmod(fd, (mode_t)mode);
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            unlink(tmp);
            return mesh_err_set(err, MESH_EIO, "cannot write %s: %s", tmp, strerror(errno));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return mesh_err_set(err, MESH_EIO, "cannot write %s: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return mesh_err_set(err, MESH_EIO, "cannot rename %s: %s", tmp, strerror(errno));
    }
    return MESH_OK;
}

void xcl_json_str(char *buf, size_t len, size_t *off, const char *s)
{
    if (*off + 2 >= len)
        return;
    buf[(*off)++] = '"';
    for (; s && *s && *off + 8 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[(*off)++] = '\\';
            buf[(*off)++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            *off += (size_t)snprintf(buf + *off, len - *off, "\\u%04x", c);
        } else {
            buf[(*off)++] = (char)c;
        }
    }
    buf[(*off)++] = '"';
    buf[*off] = '\0';
}

void xcl_print_status(int stream, grpc_status_code code, const char *details)
{
    char buf[2048];
    size_t off = (size_t)snprintf(buf, sizeof buf,
                                  "{\"event\":\"status\",\"stream\":%d,\"code\":%d,\"status\":\"%s\","
                                  "\"message\":",
                                  stream, (int)code, mgrpc_status_name(code));
    xcl_json_str(buf, sizeof buf, &off, details ? details : "");
    printf("%s}\n", buf);
    fflush(stdout);
}

int xcl_status_parse(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end != s && !*end && v >= 0 && v <= 16)
        return (int)v;
    for (int c = 0; c <= 16; c++)
        if (strcasecmp(s, mgrpc_status_name((grpc_status_code)c)) == 0)
            return c;
    return -1;
}

static int add_sub(xcl_opts *o, const char *arg, mesh_err *err)
{
    const char *eq = strchr(arg, '=');
    char tname[16];
    size_t tl = eq ? (size_t)(eq - arg) : strlen(arg);
    if (tl == 0 || tl >= sizeof tname)
        return mesh_err_set(err, MESH_EINVAL, "--sub '%s': expected TYPE=NAMES", arg);
    memcpy(tname, arg, tl);
    tname[tl] = '\0';
    enum ads_type t;
    if (ads_type_parse(tname, &t) != 0)
        return mesh_err_set(err, MESH_EINVAL, "--sub '%s': type must be lds, cds, eds, rds or sds",
                            arg);
    xcl_sub *s = NULL;
    for (int i = 0; i < o->n_subs; i++)
        if (o->subs[i].type == t)
            s = &o->subs[i];
    if (!s) {
        s = &o->subs[o->n_subs++];
        s->type = t;
    }
    const char *names = eq ? eq + 1 : "";
    char *copy = strdup(names);
    if (!copy)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "*") == 0)
            continue; /* wildcard: an empty list for LDS/CDS */
        char **nv = realloc(s->names, (s->n + 1) * sizeof *nv);
        if (!nv || !(nv[s->n] = strdup(tok))) {
            free(nv ? nv : s->names);
            s->names = NULL;
            s->n = 0;
            free(copy);
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
        }
        s->names = nv;
        s->n++;
    }
    free(copy);
    return MESH_OK;
}

void xcl_free_opts(xcl_opts *o)
{
    for (int i = 0; i < o->n_subs; i++) {
        for (size_t k = 0; k < o->subs[i].n; k++)
            free(o->subs[i].names[k]);
        free(o->subs[i].names);
    }
    o->n_subs = 0;
}

int xcl_parse_opts(int argc, char **argv, xcl_opts *o, mesh_err *err)
{
    memset(o, 0, sizeof *o);
    o->server = "127.0.0.1:15010";
    o->nack_type = -1;
    o->nack_count = -1;
    o->timeout_ms = 30000;
    o->streams = 1;
    o->expect_status = -1;
    o->mode = XCL_ADS;
    enum {
        O_SERVER = 1000, O_BUNDLE, O_BUNDLE_DB, O_ID, O_CSR_ID, O_TOKEN, O_CERT, O_KEY, O_RENEW,
        O_RECOVER, O_TTL, O_STATE, O_KEYTYPE, O_ADS, O_SDS, O_FETCH, O_NOSTREAM, O_SUB, O_NODE,
        O_NACK, O_NACKN, O_NOACK, O_DUMP, O_EXIT, O_TIMEOUT, O_STREAMS, O_RAW, O_RAWN, O_METHOD,
        O_EXPECT, O_SUMMARY, O_QUIET, O_ANON, O_DELTA, O_DELTA_STATE, O_CONNS, O_NOREAD,
        O_RESUB, O_SOTW_STATE, O_RETRY
    };
    static const struct option lo[] = {
        {"server", 1, NULL, O_SERVER}, {"bundle", 1, NULL, O_BUNDLE},
        {"bundle-db", 1, NULL, O_BUNDLE_DB}, {"id", 1, NULL, O_ID},
        {"csr-id", 1, NULL, O_CSR_ID}, {"token", 1, NULL, O_TOKEN},
        {"cert", 1, NULL, O_CERT}, {"key", 1, NULL, O_KEY}, {"renew", 0, NULL, O_RENEW},
        {"recover", 0, NULL, O_RECOVER}, {"ttl", 1, NULL, O_TTL},
        {"state-dir", 1, NULL, O_STATE}, {"key-type", 1, NULL, O_KEYTYPE},
        {"ads", 0, NULL, O_ADS}, {"sds", 0, NULL, O_SDS}, {"fetch", 0, NULL, O_FETCH},
        {"no-stream", 0, NULL, O_NOSTREAM}, {"sub", 1, NULL, O_SUB},
        {"node-id", 1, NULL, O_NODE}, {"nack-type", 1, NULL, O_NACK},
        {"nack-count", 1, NULL, O_NACKN}, {"no-ack", 0, NULL, O_NOACK},
        {"dump-dir", 1, NULL, O_DUMP}, {"exit-after", 1, NULL, O_EXIT},
        {"timeout", 1, NULL, O_TIMEOUT}, {"streams", 1, NULL, O_STREAMS},
        {"raw-send", 1, NULL, O_RAW}, {"raw-size", 1, NULL, O_RAWN},
        {"method", 1, NULL, O_METHOD}, {"expect-status", 1, NULL, O_EXPECT},
        {"summary", 0, NULL, O_SUMMARY}, {"quiet", 0, NULL, O_QUIET},
        {"anonymous", 0, NULL, O_ANON}, {"delta", 0, NULL, O_DELTA},
        {"delta-state", 1, NULL, O_DELTA_STATE},
        {"sotw-state", 1, NULL, O_SOTW_STATE}, {"retry", 0, NULL, O_RETRY}, {"connections", 1, NULL, O_CONNS},
        {"no-read", 0, NULL, O_NOREAD}, {"resubscribe", 1, NULL, O_RESUB},
        {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int ch;
    enum ads_type t;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case O_SERVER: o->server = optarg; break;
        case O_BUNDLE: o->bundle_file = optarg; break;
        case O_BUNDLE_DB: o->bundle_db = optarg; break;
        case O_ID: o->id = optarg; break;
        case O_CSR_ID: o->csr_id = optarg; break;
        case O_TOKEN: o->token = optarg; break;
        case O_CERT: o->cert_file = optarg; break;
        case O_KEY: o->key_file = optarg; break;
        case O_RENEW: o->renew = 1; break;
        case O_RECOVER: o->recover = 1; break;
        case O_TTL: /* no range: negative tests ask meshd for what it must refuse */
            if (cli_duration_s("--ttl", optarg, 0, CLI_NO_MAX, &o->ttl, err) != MESH_OK)
                return -1;
            break;
        case O_STATE: o->state_dir = optarg; break;
        case O_KEYTYPE: o->key_type = optarg; break;
        case O_ADS: o->mode = XCL_ADS; break;
        case O_SDS: o->mode = XCL_SDS; break;
        case O_FETCH: o->mode = XCL_FETCH; break;
        case O_NOSTREAM: o->mode = XCL_NONE; break;
        case O_SUB:
            if (add_sub(o, optarg, err) != MESH_OK)
                return -1;
            break;
        case O_NODE: o->node_id = optarg; break;
        case O_NACK:
            if (ads_type_parse(optarg, &t) != 0)
                return mesh_err_set(err, MESH_EINVAL, "--nack-type '%s': lds|cds|eds|rds|sds",
                                    optarg);
            o->nack_type = (int)t;
            break;
        case O_NACKN:
            if (cli_long("--nack-count", optarg, 0, LONG_MAX, &o->nack_count, err) != MESH_OK)
                return -1;
            break;
        case O_NOACK: o->no_ack = 1; break;
        case O_DUMP: o->dump_dir = optarg; break;
        case O_EXIT:
            if (cli_long("--exit-after", optarg, 0, LONG_MAX, &o->exit_after, err) != MESH_OK)
                return -1;
            break;
        case O_TIMEOUT:
            if (cli_duration_ms("--timeout", optarg, DURATION_BARE_SECONDS, 0, CLI_NO_MAX,
                                &o->timeout_ms, err) != MESH_OK)
                return -1;
            break;
        case O_STREAMS: {
            long v;
            if (cli_long("--streams", optarg, 1, 100000, &v, err) != MESH_OK)
                return -1;
            o->streams = (int)v;
            break;
        }
        case O_CONNS: {
            long v;
            if (cli_long("--connections", optarg, 1, 10000, &v, err) != MESH_OK)
                return -1;
            o->connections = (int)v;
            break;
        }
        case O_NOREAD: o->no_read = 1; break;
        case O_RESUB:
            if (cli_long("--resubscribe", optarg, 1, 10000000, &o->resubscribe, err) != MESH_OK)
                return -1;
            break;
        case O_RAW: o->raw_file = optarg; break;
        case O_RAWN:
            if (cli_long("--raw-size", optarg, 0, 64L * 1024 * 1024, &o->raw_size, err) != MESH_OK)
                return -1;
            break;
        case O_METHOD: o->method = optarg; break;
        case O_EXPECT:
            o->expect_status = xcl_status_parse(optarg);
            if (o->expect_status < 0)
                return mesh_err_set(err, MESH_EINVAL, "--expect-status '%s': a gRPC status",
                                    optarg);
            break;
        case O_SUMMARY: o->summary = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_ANON: o->anonymous = 1; break;
        case O_DELTA: o->delta = 1; break;
        case O_DELTA_STATE: o->delta_state = optarg; break;
        case O_SOTW_STATE: o->sotw_state = optarg; break;
        case O_RETRY: o->retry = 1; break;
        case 'h': fputs(usage, stdout); return 1;
        default: return cli_bad_option(argc, argv, lo, "; see --help", err);
        }
    }
    if (optind < argc)
        return mesh_err_set(err, MESH_EINVAL, "unexpected argument '%s'", argv[optind]);
    if (o->token && (o->cert_file || o->key_file))
        return mesh_err_set(err, MESH_EINVAL, "--token and --cert/--key exclude each other");
    if ((o->cert_file != NULL) != (o->key_file != NULL))
        return mesh_err_set(err, MESH_EINVAL, "--cert and --key go together");
    if ((o->renew || o->recover) && !o->cert_file && !o->state_dir)
        return mesh_err_set(err, MESH_EINVAL, "--renew/--recover need --cert/--key or --state-dir");
    if (o->token && !o->id)
        return mesh_err_set(err, MESH_EINVAL, "--token needs --id SPIFFE_ID (the CSR asks for it)");
    if (o->anonymous && (o->token || o->cert_file || o->renew || o->recover))
        return mesh_err_set(err, MESH_EINVAL, "--anonymous excludes the other identity options");
    if (o->delta_state && !o->delta)
        return mesh_err_set(err, MESH_EINVAL, "--delta-state needs --delta");
    if (o->delta_state && o->streams > 1)
        return mesh_err_set(err, MESH_EINVAL, "--delta-state keeps one stream's state: not with "
                                              "--streams");
    if (o->sotw_state && (o->delta || o->streams > 1))
        return mesh_err_set(err, MESH_EINVAL, "--sotw-state keeps one SotW stream's versions: not "
                                              "with --delta or --streams");
    if (o->retry && (o->expect_status >= 0 || o->raw_file || o->raw_size || o->exit_after))
        return mesh_err_set(err, MESH_EINVAL, "--retry re-opens failed streams: not with "
                                              "--expect-status, --raw-* or --exit-after");
    if (o->connections > o->streams)
        return mesh_err_set(err, MESH_EINVAL, "--connections %d is more than --streams %d",
                            o->connections, o->streams);
    if (o->resubscribe && (o->delta || o->raw_file || o->raw_size))
        return mesh_err_set(err, MESH_EINVAL,
                            "--resubscribe is for SotW streams (not with --delta or --raw-*)");
    if (o->delta && o->mode == XCL_FETCH)
        return mesh_err_set(err, MESH_EINVAL, "--delta and --fetch exclude each other "
                                              "(FetchSecrets has no delta variant)");
    if (!o->token && !o->cert_file && !o->state_dir && !o->anonymous)
        return mesh_err_set(err, MESH_EINVAL,
                            "no identity: give --token and --id, --cert and --key, or --state-dir");
    if (o->n_subs == 0) {
        if (add_sub(o, "cds=*", err) || add_sub(o, "lds=*", err) ||
            add_sub(o, "sds=default,ROOTCA", err))
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    xcl_opts o;
    mesh_err err = {0};
    if (mesh_version_flag(argc, argv, "mesh-xdsclient", stdout))
        return 0;
    int prc = xcl_parse_opts(argc, argv, &o, &err);
    if (prc == 1)
        return 0;
    if (prc != 0) {
        fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
        xcl_free_opts(&o);
        return 2;
    }
    mgrpc_log_setup(LOG_WARN);
    grpc_init();
    xcl_identity id;
    int rc = xcl_identity_setup(&o, &id, &err);
    int code;
    if (rc != MESH_OK) {
        fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
        code = (o.expect_status >= 0 && id.csr_status == o.expect_status) ? 0 : 1;
    } else if (o.mode == XCL_NONE) {
        code = 0;
    } else {
        code = xcl_run_streams(&o, &id);
    }
    xcl_identity_free(&id);
    xcl_free_opts(&o);
    grpc_shutdown();
    return code;
}
