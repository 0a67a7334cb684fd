/* tools/mesh-sidecar.c — the sidecar proxy: data plane + control-plane client.
 *
 *   mesh-sidecar --meshd 127.0.0.1:15010 --state-dir DIR [--ca-bundle F --id ID
 *                --token-file F] [--admin 127.0.0.1:PORT]
 *
 * Start-up: identity from the state directory (or first contact), the data
 * plane's event loop thread, then the xDS client thread, which first serves
 * the persisted config. The main thread only waits for SIGTERM/SIGINT, then
 * shuts down gracefully: the control-plane client stops (so nothing re-opens
 * listeners), the listeners close (stop accepting), live requests get
 * --drain-time to finish, and the process exits 0. */
#include <grpc/grpc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mgrpc.h"
#include "sidecar/run.h"
#include "common/version.h"

/* Stops accepting and waits up to drain_ms for active connections to end. */
static void drain(dp_proxy *px, int64_t drain_ms)
{
    dp_config *empty = dp_config_new();
    mesh_err err;
    if (!empty || dp_config_freeze(empty, &err) != MESH_OK ||
        dp_proxy_apply_config(px, empty, &err) != MESH_OK)
        log_warn("sidecar", "could not close the listeners before draining");
    dp_config_unref(empty);
    struct timespec step = {0, 50 * 1000000L};
    for (int64_t waited = 0; waited < drain_ms; waited += 50) {
        dp_stats_view v;
        dp_proxy_get_stats(px, &v);
        if (v.active_down == 0 && v.active_up == 0)
            return;
        nanosleep(&step, NULL);
    }
    dp_stats_view v;
    dp_proxy_get_stats(px, &v);
    log_info("sidecar", "drain time over with %llu downstream connection(s) open; closing them",
             (unsigned long long)v.active_down);
}

int main(int argc, char **argv)
{
    sc_opts o;
    int help = 0;
    mesh_err err = {0};
    if (mesh_version_flag(argc, argv, "mesh-sidecar", stdout))
        return 0;
    if (sc_parse_flags(argc, argv, &o, &help, &err) != MESH_OK) {
        fprintf(stderr, "mesh-sidecar: %s\n(see mesh-sidecar --help)\n", err.msg);
        return 2;
    }
    if (help) {
        sc_usage(stdout);
        return 0;
    }
    log_set_level(o.log_level);
    log_set_format(o.log_format);
    mgrpc_log_setup_client(o.log_level);

    /* Signals are taken by sigwait in this thread only; every thread created
     * below inherits the blocked mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    cert_pool *pool = NULL;
    sc_boot_info boot;
    if (sc_boot_identity(&o, &pool, &boot, &err) != MESH_OK) {
        fprintf(stderr, "mesh-sidecar: %s\n", err.msg);
        return 1;
    }
    grpc_init();
    int rc = 1;
    dp_proxy *px = NULL;
    xdsc_client *xc = NULL;
    dp_proxy_opts po = {.pool = pool, .admin_address = o.admin, .state_dir = o.state_dir,
                        .access_log = o.access_log,
                        .request_headers_timeout_ms = o.request_headers_timeout_ms,
                        .idle_timeout_ms = o.idle_timeout_ms};
    if (dp_proxy_new(&po, &px, &err) != MESH_OK || dp_proxy_start(px, &err) != MESH_OK) {
        fprintf(stderr, "mesh-sidecar: %s\n", err.msg);
        goto out;
    }
    char id[DP_SPIFFE_ID_MAX + 1] = "";
    if (cert_pool_spiffe_id(pool, id, sizeof id) != MESH_OK && o.spiffe_id)
        snprintf(id, sizeof id, "%s", o.spiffe_id);
    xdsc_client_opts xo = {
        .meshd = o.meshd,
        .server_name = o.server_name,
        .state_dir = o.state_dir,
        .spiffe_id = id[0] ? id : NULL,
        .node_id = o.workload,
        .token = o.token,
        .token_file = o.token_file,
        .pool = pool,
        .hooks = sc_proxy_hooks(px),
        .backoff_max_ms = o.reconnect_max_ms,
        .reenrol = boot.reenrol,
    };
    if (xdsc_client_start(&xo, &xc, &err) != MESH_OK) {
        fprintf(stderr, "mesh-sidecar: %s\n", err.msg);
        goto out;
    }
    log_info("sidecar", "running as %s; meshd %s; state %s", id, o.meshd, o.state_dir);
    int admin_port = dp_proxy_admin_port(px);
    if (admin_port > 0)
        log_info("sidecar", "admin endpoint on 127.0.0.1:%d", admin_port);
    if (boot.first_contact)
        log_info("sidecar", "first contact: enrolling with a join token");

    int sig = 0;
    sigwait(&sigs, &sig);
    log_info("sidecar", "%s: shutting down (draining for up to %lld ms)",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", (long long)o.drain_ms);
    xdsc_client_stop(xc);
    xc = NULL;
    drain(px, o.drain_ms);
    rc = 0;
out:
    xdsc_client_stop(xc);
    if (px) {
        dp_proxy_stop(px);
        dp_proxy_free(px);
    }
    if (pool) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", o.state_dir, XDSC_POOL_FILE);
        if (cert_pool_save(pool, path, &err) != MESH_OK)
            log_error("sidecar", "cannot save the cert pool: %s", err.msg);
        cert_pool_free(pool);
    }
    grpc_shutdown();
    if (rc == 0)
        log_info("sidecar", "stopped");
    return rc;
}
