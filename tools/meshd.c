/* tools/meshd.c — the meshd control plane: main, startup checks and graceful shutdown.
 *
 * Startup: open the store (never creating one; clear error if it is missing,
 * damaged or moved backwards, see store.h), load the active CA
 * (clear error if none: "run meshctl ca init"), issue meshd's own serving
 * cert, register this replica and mark proxies of this instance disconnected
 * (a previous run may have been killed), load config and bundle, start the status writer, workers,
 * gRPC server and watcher. SIGTERM/SIGINT: stop the watcher, stop accepting
 * and cancel every call, let the workers finish, mark proxies disconnected,
 * close the store. SIGUSR1/SIGUSR2 make the log one level more/less verbose.
 * A SIGKILL at any point loses no issued certificate: the
 * store commits each one before the reply leaves. */
#include "meshd/meshd_internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mgrpc.h"
#include "common/version.h"

static int open_store(md_ctx *ctx, mesh_err *err)
{
    /* Never creates a store: a mistyped --db must fail without leaving an
     * empty store behind (only 'meshctl ca init' creates one). */
    int rc = store_open(&ctx->main_st, ctx->opts.db_path, err);
    if (rc != MESH_OK)
        return rc;
    atomic_store(&ctx->metrics.store_opened, 1);
    /* store_path: a PostgreSQL URL without its password. */
    const char *db = store_path(ctx->main_st);
    log_info("meshd", "store %s opened (%s, %s)", db, store_backend_name(ctx->main_st),
             store_open_check(ctx->main_st));
    rc = ca_load(ctx->main_st, &ctx->main_ca, err);
    if (rc == MESH_ENOTFOUND)
        return mesh_err_set(err, rc,
                            "no CA initialised in %s; run 'meshctl ca init --db %s "
                            "--trust-domain <your.domain>' first",
                            db, db);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "loading the CA from %s", db);
    snprintf(ctx->trust_domain, sizeof ctx->trust_domain, "%s", ca_trust_domain(ctx->main_ca));
    atomic_store(&ctx->metrics.ca_loaded, 1);
    return MESH_OK;
}

static int start(md_ctx *ctx, mesh_err *err)
{
    int rc;
    /* The metrics listener first, so /readyz says 503 (and why) while the
     * rest comes up, and /healthz answers from the start. */
    if (ctx->opts.metrics_listen &&
        (rc = md_admin_start(ctx, ctx->opts.metrics_listen, &ctx->admin, err)) != MESH_OK)
        return rc;
    if ((rc = open_store(ctx, err)) != MESH_OK)
        return rc;
    /* TLS material first: gRPC fetches it when the port is added. */
    char *bundle = NULL;
    if ((rc = ca_bundle_pem(ctx->main_st, &bundle, err)) != MESH_OK)
        return mesh_err_prefix(err, "reading the trust bundle");
    md_tls_set_roots(&ctx->tls, bundle);
    free(bundle);
    if ((rc = md_tls_issue_serving(ctx, ctx->main_ca, ctx->main_st, err)) != MESH_OK)
        return rc;
    /* Bind before touching shared state, so a second meshd started by
     * mistake on a taken port changes nothing. */
    if ((rc = md_server_bind(ctx, err)) != MESH_OK)
        return rc;
    /* Registers this replica (heartbeats follow from the status writer) and
     * marks the proxies an earlier run of this instance held disconnected. */
    if ((rc = store_replica_register(ctx->main_st, ctx->instance, ctx->opts.listen,
                                     (int64_t)getpid(), 1, md_now(), err)) != MESH_OK)
        return mesh_err_prefix(err, "registering this meshd replica");
    if ((rc = md_status_start(ctx, err)) != MESH_OK)
        return rc;
    if ((rc = md_watch_start(ctx, err)) != MESH_OK) /* first pass: config, bundle */
        return rc;
    if ((rc = md_work_start(ctx, err)) != MESH_OK)
        return rc;
    if ((rc = md_server_run(ctx, err)) != MESH_OK)
        return rc;
    atomic_store(&ctx->metrics.serving, 1);
    return MESH_OK;
}

static void stop(md_ctx *ctx)
{
    atomic_store(&ctx->shutting_down, 1);
    md_admin_stop(ctx->admin); /* it reads the registry and the cache */
    ctx->admin = NULL;
    md_watch_stop(ctx);       /* no more pushes or rotations */
    md_server_stop(ctx);      /* cancel calls, wait for them, stop CQ threads */
    md_work_stop(ctx);        /* jobs left fail fast on cancelled calls */
    md_status_stop(ctx);      /* flush, mark proxies disconnected */
    md_cache_destroy(&ctx->cache);
    md_tls_destroy(&ctx->tls);
    md_audit_gate_destroy(&ctx->audit_gate);
    ca_free(ctx->main_ca);
    store_close(ctx->main_st);
    md_metrics_destroy(&ctx->metrics);
}

/* SIGUSR1: one level more verbose (towards debug), SIGUSR2: one less. */
static void step_log_level(int step)
{
    int was = (int)log_get_level();
    int lvl = was + step;
    if (lvl < LOG_DEBUG)
        lvl = LOG_DEBUG;
    if (lvl > LOG_ERROR)
        lvl = LOG_ERROR;
    log_set_level((enum log_level)lvl);
    /* At warn so the line shows at any threshold but error. */
    log_warn("meshd", "log level changed from %s to %s (%s)", log_level_name((enum log_level)was),
             log_level_name((enum log_level)lvl), step < 0 ? "SIGUSR1" : "SIGUSR2");
}

int main(int argc, char **argv)
{
    static md_ctx ctx; /* large; lives for the whole process */
    mesh_err err = {0};
    if (mesh_version_flag(argc, argv, "meshd", stdout))
        return 0;
    int prc = md_opts_parse(argc, argv, &ctx.opts, &err);
    if (prc == 1)
        return 0;
    if (prc < 0) {
        fprintf(stderr, "meshd: %s\n", err.msg);
        return 2;
    }
    log_set_level(ctx.opts.log_level);
    log_set_format(ctx.opts.log_format);

    /* Signals are taken synchronously by main; every thread (ours and
     * gRPC's) inherits the blocked mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file size limit (ulimit -f) must make writes fail like a full disk
     * (the store answers UNAVAILABLE), not kill meshd. */
    signal(SIGXFSZ, SIG_IGN);

    if (md_ctx_init(&ctx, &err) != MESH_OK) {
        log_error("meshd", "%s", err.msg);
        return 1;
    }
    mgrpc_log_setup(ctx.opts.log_level);
    grpc_init();
    if (start(&ctx, &err) != MESH_OK) {
        log_error("meshd", "%s", err.msg);
        fprintf(stderr, "meshd: %s\n", err.msg);
        stop(&ctx);
        grpc_shutdown();
        return 1;
    }
    log_info("meshd", "meshd %s ready: trust domain %s, SVID TTL %llds, rotation at %.2f of "
                      "lifetime",
             ctx.instance, ctx.trust_domain, (long long)ctx.opts.svid_ttl,
             ctx.opts.rotate_fraction);
    int sig = 0;
    while (sigwait(&set, &sig) == 0 && (sig == SIGUSR1 || sig == SIGUSR2))
        step_log_level(sig == SIGUSR1 ? -1 : +1);
    log_info("meshd", "%s received: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    stop(&ctx);
    grpc_shutdown();
    log_info("meshd", "stopped");
    return 0;
}
