/* meshd/meshd_ctx.c — the process context's setup, meshd's clocks and its xDS nonces.
 *
 * These are library code rather than part of tools/meshd.c because every piece
 * of the runtime uses them (the watcher, workers and status writer read the
 * clocks, both stream kinds draw nonces), and a piece must be usable — and
 * unit-testable — without meshd's main. */
#include "meshd/meshd_internal.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int64_t md_now(void)
{
    return (int64_t)time(NULL);
}

int64_t md_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void md_nonce(void *arg, char *buf, size_t len)
{
    md_ctx *ctx = arg;
    uint64_t n = atomic_fetch_add(&ctx->nonce_counter, 1) + 1;
    /* The random per-process prefix keeps nonces unique across restarts. */
    snprintf(buf, len, "%08x-%llx", ctx->nonce_prefix, (unsigned long long)n);
}

int md_ctx_init(md_ctx *ctx, mesh_err *err)
{
    atomic_init(&ctx->nonce_counter, 0);
    atomic_init(&ctx->shutting_down, 0);
    atomic_init(&ctx->send_queued_total, 0);
    atomic_init(&ctx->calls_closed, 0);
    if (RAND_bytes((unsigned char *)&ctx->nonce_prefix, sizeof ctx->nonce_prefix) != 1)
        ctx->nonce_prefix = (uint32_t)getpid() ^ (uint32_t)time(NULL);
    if (pthread_mutex_init(&ctx->life_mu, NULL) != 0 ||
        pthread_cond_init(&ctx->life_cv, NULL) != 0 ||
        pthread_mutex_init(&ctx->reg_mu, NULL) != 0 ||
        pthread_mutex_init(&ctx->work.mu, NULL) != 0 ||
        pthread_cond_init(&ctx->work.cv, NULL) != 0 ||
        pthread_mutex_init(&ctx->status.mu, NULL) != 0 ||
        pthread_cond_init(&ctx->status.cv, NULL) != 0 || md_tls_init(&ctx->tls) != MESH_OK ||
        md_cache_init(&ctx->cache) != MESH_OK || md_audit_gate_init(&ctx->audit_gate) != MESH_OK ||
        md_metrics_init(&ctx->metrics) != MESH_OK)
        return mesh_err_set(err, MESH_EINTERNAL, "cannot initialise meshd's locks");
    if (ctx->opts.instance) {
        snprintf(ctx->instance, sizeof ctx->instance, "%s", ctx->opts.instance);
    } else {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(ctx->instance, sizeof ctx->instance, "meshd-%s-%d", host, (int)getpid());
    }
    snprintf(ctx->control_plane_id, sizeof ctx->control_plane_id, "meshd/%s", ctx->instance);
    return MESH_OK;
}
