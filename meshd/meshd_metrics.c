/* meshd/meshd_metrics.c — meshd's counters and readiness, and the /metrics page built from them.
 *
 * Counters are bumped where the work happens (meshd_call.c, meshd_stream.c,
 * meshd_unary.c, the watcher, the status writer); this file owns their
 * names, HELP texts and buckets, and computes the gauges of live state at
 * scrape time. The names follow Prometheus conventions: a mesh_meshd_ prefix,
 * _total on counters, base units (seconds). */
#include "meshd/meshd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mgrpc.h"

/* 10 ms .. 30 s: a push on an idle loopback mesh converges in tens of
 * milliseconds; a slow sidecar or a busy control plane takes seconds; past
 * 30 s something is wrong and +Inf says so. */
static const double convergence_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                            1,    2.5,   5,    10,  30};
/* 0.5 ms .. 5 s: an SQLite read in the page cache is tens of microseconds,
 * an fsync'd commit milliseconds, a store stuck on a lock seconds. */
static const double store_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1,    0.25,  0.5,    1,     2.5,  5};

int64_t md_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int md_metrics_init(md_metrics *m)
{
    memset(m, 0, sizeof *m);
    if (prom_hist_init(&m->convergence, convergence_bounds,
                       sizeof convergence_bounds / sizeof convergence_bounds[0]) != 0)
        return MESH_EINTERNAL;
    for (int i = 0; i < MD_STORE_OP_COUNT; i++)
        if (prom_hist_init(&m->store_latency[i], store_bounds,
                           sizeof store_bounds / sizeof store_bounds[0]) != 0)
            return MESH_EINTERNAL;
    if (pthread_mutex_init(&m->problem_mu, NULL) != 0)
        return MESH_EINTERNAL;
    return MESH_OK;
}

void md_metrics_destroy(md_metrics *m) { pthread_mutex_destroy(&m->problem_mu); }

void md_metrics_store_op(md_metrics *m, enum md_store_op op, int64_t t0_us, int rc)
{
    prom_hist_observe(&m->store_latency[op], (double)(md_mono_us() - t0_us) / 1e6);
    if (rc != MESH_OK)
        atomic_fetch_add(&m->store_errors[op], 1);
}

void md_metrics_store_health(md_metrics *m, enum md_store_health_source src,
                             const char *problem)
{
    int bit = 1 << src;
    /* The common case (healthy and was healthy) takes no lock. */
    if (!problem && !(atomic_load(&m->store_failing) & bit))
        return;
    pthread_mutex_lock(&m->problem_mu);
    snprintf(m->store_problem[src], sizeof m->store_problem[src], "%s", problem ? problem : "");
    if (problem)
        atomic_fetch_or(&m->store_failing, bit);
    else
        atomic_fetch_and(&m->store_failing, ~bit);
    pthread_mutex_unlock(&m->problem_mu);
}

const char *md_store_op_name(enum md_store_op op)
{
    static const char *names[] = {"poll", "config_load", "ca_list", "svid_lookup", "issue",
                                  "status_write"};
    return op < MD_STORE_OP_COUNT ? names[op] : "?";
}

const char *md_token_result_name(enum md_token_result r)
{
    static const char *names[] = {"ok", "expired", "spent", "unknown"};
    return r < MD_TOKEN_RESULT_COUNT ? names[r] : "?";
}

int md_ready(md_ctx *ctx, char *why, size_t why_len)
{
    md_metrics *m = &ctx->metrics;
    if (atomic_load(&ctx->shutting_down)) {
        snprintf(why, why_len, "shutting down");
        return 0;
    }
    if (!atomic_load(&m->store_opened)) {
        snprintf(why, why_len, "store %s not open yet", ctx->opts.db_path);
        return 0;
    }
    if (!atomic_load(&m->ca_loaded)) {
        snprintf(why, why_len, "CA not loaded yet");
        return 0;
    }
    if (!atomic_load(&m->serving)) {
        snprintf(why, why_len, "gRPC server not serving yet");
        return 0;
    }
    int failing = atomic_load(&m->store_failing);
    if (failing) {
        pthread_mutex_lock(&m->problem_mu);
        snprintf(why, why_len, "store trouble: %s",
                 m->store_problem[(failing & (1 << MD_HEALTH_READ)) ? MD_HEALTH_READ
                                                                     : MD_HEALTH_WRITE]);
        pthread_mutex_unlock(&m->problem_mu);
        return 0;
    }
    snprintf(why, why_len, "ready");
    return 1;
}

/* ---- the page ---------------------------------------------------------------------- */

static const char *const xds_type_names[MD_METRIC_XDS_TYPES] = {"sds", "cds", "eds", "lds",
                                                                "rds"};

enum { ST_ADS = 0, ST_SDS, ST_DELTA_ADS, ST_DELTA_SDS, ST_PROXYLESS, ST_COUNT };
static const char *const stream_type_names[ST_COUNT] = {"ads", "sds", "delta_ads", "delta_sds",
                                                        "proxyless"};

static int stream_type_of(const md_call *c)
{
    if (c->plaintext)
        return ST_PROXYLESS;
    switch (c->kind) {
    case MD_CALL_SDS: return ST_SDS;
    case MD_CALL_DADS: return ST_DELTA_ADS;
    case MD_CALL_DSDS: return ST_DELTA_SDS;
    default: return ST_ADS;
    }
}

static const char *method_name(int kind)
{
    static const char *names[MD_METRIC_CALL_KINDS] = {
        "StreamAggregatedResources", "StreamSecrets", "FetchSecrets", "CreateCertificate",
        "DeltaAggregatedResources",  "DeltaSecrets",  "unimplemented"};
    return kind >= 0 && kind < MD_METRIC_CALL_KINDS ? names[kind] : "?";
}

/* Lower-case status name as a reason label ("permission_denied"). */
static void reason_of(int code, char *out, size_t len)
{
    snprintf(out, len, "%s", mgrpc_status_name((grpc_status_code)code));
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
}

typedef struct live_counts {
    uint64_t streams[ST_COUNT][2];    /* [type][0 = starting, 1 = serving] */
    uint64_t svids, svids_renewal;
} live_counts;

/* Walks the registry: each stream's state and the SVID meshd serves it. */
static void count_live(md_ctx *ctx, int64_t now, live_counts *lc)
{
    memset(lc, 0, sizeof *lc);
    size_t n = 0;
    md_call **calls = md_registry_list(ctx, &n);
    double fraction = ctx->opts.rotate_fraction;
    for (size_t i = 0; calls && i < n; i++) {
        md_call *c = calls[i];
        pthread_mutex_lock(&c->mu);
        md_stream *s = c->stream;
        if (s && !c->closed) {
            lc->streams[stream_type_of(c)][s->view_ready ? 1 : 0]++;
            if (s->svid.found && s->svid.not_after > s->svid.not_before) {
                lc->svids++;
                /* The window opens at --rotate-fraction of the lifetime (the
                 * watcher adds +-10% jitter per serial around that point). */
                double opens = (double)s->svid.not_before +
                               fraction * (double)(s->svid.not_after - s->svid.not_before);
                if ((double)now >= opens)
                    lc->svids_renewal++;
            }
        }
        pthread_mutex_unlock(&c->mu);
    }
    if (calls)
        md_registry_release(calls, n);
}

static void render_counters(md_metrics *m, prom_out *p)
{
    prom_family(p, "mesh_meshd_issuances_total", "counter",
                "CreateCertificate answers: result=\"ok\" for an SVID signed, "
                "result=\"refused\" with the gRPC status as reason otherwise.");
    prom_label ok[] = {{"result", "ok"}};
    prom_sample_u64(p, "mesh_meshd_issuances_total", ok, 1, atomic_load(&m->issuances[0]));
    /* The refusals an operator expects are always present (at 0), others
     * once they happened. */
    static const int usual[] = {GRPC_STATUS_INVALID_ARGUMENT, GRPC_STATUS_UNAUTHENTICATED,
                                GRPC_STATUS_PERMISSION_DENIED, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                GRPC_STATUS_UNAVAILABLE, GRPC_STATUS_INTERNAL};
    for (int code = 1; code < MD_GRPC_CODES; code++) {
        uint64_t v = atomic_load(&m->issuances[code]);
        int is_usual = 0;
        for (size_t k = 0; k < sizeof usual / sizeof usual[0]; k++)
            is_usual |= usual[k] == code;
        if (!v && !is_usual)
            continue;
        char reason[40];
        reason_of(code, reason, sizeof reason);
        prom_label l[] = {{"result", "refused"}, {"reason", reason}};
        prom_sample_u64(p, "mesh_meshd_issuances_total", l, 2, v);
    }

    prom_family(p, "mesh_meshd_join_tokens_total", "counter",
                "Join tokens presented to CreateCertificate, by result: ok (redeemed), "
                "expired, spent (already used) or unknown (never issued, removed, malformed).");
    for (int r = 0; r < MD_TOKEN_RESULT_COUNT; r++) {
        prom_label l[] = {{"result", md_token_result_name((enum md_token_result)r)}};
        prom_sample_u64(p, "mesh_meshd_join_tokens_total", l, 1, atomic_load(&m->tokens[r]));
    }

    static const struct {
        const char *name, *help;
        size_t off;
    } by_type[] = {
        {"mesh_meshd_xds_pushes_total", "xDS responses sent, by resource type.",
         offsetof(md_metrics, pushes)},
        {"mesh_meshd_xds_acks_total", "xDS responses the client accepted (ACK), by type.",
         offsetof(md_metrics, acks)},
        {"mesh_meshd_xds_nacks_total", "xDS responses the client rejected (NACK), by type.",
         offsetof(md_metrics, nacks)},
        {"mesh_meshd_xds_resumed_total",
         "SotW types not resent on a new stream because the client's version_info already "
         "matched, by type.",
         offsetof(md_metrics, resumed)},
    };
    for (size_t f = 0; f < sizeof by_type / sizeof by_type[0]; f++) {
        const atomic_uint_fast64_t *arr =
            (const atomic_uint_fast64_t *)((const char *)m + by_type[f].off);
        prom_family(p, by_type[f].name, "counter", by_type[f].help);
        for (int t = 0; t < MD_METRIC_XDS_TYPES; t++) {
            prom_label l[] = {{"type", xds_type_names[t]}};
            prom_sample_u64(p, by_type[f].name, l, 1, atomic_load(&arr[t]));
        }
    }

    prom_family(p, "mesh_meshd_push_convergence_seconds", "histogram",
                "From meshd noticing a store change (at most one --poll-interval after the "
                "commit) to the ACK of every type it pushed to a sidecar, per sidecar.");
    prom_hist_write(p, "mesh_meshd_push_convergence_seconds", NULL, 0, &m->convergence);

    prom_family(p, "mesh_meshd_store_latency_seconds", "histogram",
                "Time meshd spent in the store, by operation class.");
    for (int op = 0; op < MD_STORE_OP_COUNT; op++) {
        prom_label l[] = {{"op", md_store_op_name((enum md_store_op)op)}};
        prom_hist_write(p, "mesh_meshd_store_latency_seconds", l, 1, &m->store_latency[op]);
    }
    prom_family(p, "mesh_meshd_store_errors_total", "counter",
                "Store operations that failed, by operation class.");
    for (int op = 0; op < MD_STORE_OP_COUNT; op++) {
        prom_label l[] = {{"op", md_store_op_name((enum md_store_op)op)}};
        prom_sample_u64(p, "mesh_meshd_store_errors_total", l, 1,
                        atomic_load(&m->store_errors[op]));
    }

    prom_family(p, "mesh_meshd_grpc_calls_total", "counter",
                "gRPC calls finished, by method and status code (CANCELLED also when the "
                "client went away).");
    for (int k = 0; k < MD_METRIC_CALL_KINDS; k++)
        for (int code = 0; code < MD_GRPC_CODES; code++) {
            uint64_t v = atomic_load(&m->calls[k][code]);
            if (!v)
                continue;
            prom_label l[] = {{"method", method_name(k)},
                              {"code", mgrpc_status_name((grpc_status_code)code)}};
            prom_sample_u64(p, "mesh_meshd_grpc_calls_total", l, 2, v);
        }
}

static void render_live(md_ctx *ctx, prom_out *p, int64_t now)
{
    live_counts lc;
    count_live(ctx, now, &lc);
    prom_family(p, "mesh_meshd_xds_streams", "gauge",
                "Open xDS streams by type and state: starting (waiting for its first view: "
                "config, SVID, bundle) or serving.");
    for (int t = 0; t < ST_COUNT; t++)
        for (int s = 0; s < 2; s++) {
            prom_label l[] = {{"type", stream_type_names[t]},
                              {"state", s ? "serving" : "starting"}};
            prom_sample_u64(p, "mesh_meshd_xds_streams", l, 2, lc.streams[t][s]);
        }
    prom_family(p, "mesh_meshd_connected_svids", "gauge",
                "SVIDs meshd currently serves to connected streams.");
    prom_sample_u64(p, "mesh_meshd_connected_svids", NULL, 0, lc.svids);
    prom_family(p, "mesh_meshd_svids_in_renewal_window", "gauge",
                "Connected SVIDs past --rotate-fraction of their lifetime (due for renewal; "
                "a number that stays high means renewals are failing).");
    prom_sample_u64(p, "mesh_meshd_svids_in_renewal_window", NULL, 0, lc.svids_renewal);

    md_cas *cas = md_cache_cas(ctx);
    prom_family(p, "mesh_meshd_ca_expiry_seconds", "gauge",
                "Seconds until the active signing CA's certificate expires (absent before "
                "the CA is loaded).");
    for (size_t i = 0; cas && i < cas->n; i++)
        if (cas->list[i].id == cas->active_id)
            prom_sample(p, "mesh_meshd_ca_expiry_seconds", NULL, 0,
                        (double)(cas->list[i].not_after - now));
    if (cas)
        md_cas_unref(cas);

    char why[800];
    prom_family(p, "mesh_meshd_ready", "gauge",
                "1 when /readyz answers 200 (store open and healthy, CA loaded, gRPC serving).");
    prom_sample_u64(p, "mesh_meshd_ready", NULL, 0, (uint64_t)md_ready(ctx, why, sizeof why));
}

char *md_metrics_render(md_ctx *ctx, int64_t now)
{
    prom_out p;
    prom_init(&p);
    render_counters(&ctx->metrics, &p);
    render_live(ctx, &p, now);
    if (!prom_text(&p)) {
        prom_free(&p);
        return NULL;
    }
    return p.buf;   /* ownership passes to the caller */
}
