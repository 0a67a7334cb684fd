/* sidecar/proxy.h — the sidecar's data plane: listeners, HTTP/TCP proxying
 * over mTLS, the admin endpoint. This is the boundary the xDS client and
 * mesh-sidecar's main use.
 *
 * Threading: the data plane runs on ONE event loop thread (libevent). The
 * control plane (xDS/SDS client) runs on its own thread and never touches
 * loop state; it hands over:
 *   - config: a frozen dp_config through dp_proxy_apply_config (waits for the
 *     loop to bind listeners and swap the snapshot; the result is the
 *     ACK/NACK) or dp_proxy_post_config (fire and forget). Both go through a
 *     mutex-protected mailbox that wakes the loop via an eventfd, so the
 *     request path never waits on the control plane.
 *   - certificates: straight into the cert_pool (cert_pool_offer_svid,
 *     cert_pool_set_bundle), which is thread-safe; the loop picks the new
 *     SSL_CTX up on its next handshake. Live connections keep theirs and are
 *     closed when their own or their peer's certificate expires, or is
 *     revoked by CRLs the pool takes later (proxy_revoke.c).
 *   - bookkeeping for /config_dump and /stats: dp_proxy_xds_* (thread-safe).
 *
 * Typical main:
 *     dp_proxy_new(&opts, &px, &err);   opts.pool = the loaded cert_pool
 *     dp_proxy_start(px, &err);         loop thread
 *     ... xDS thread: dp_proxy_apply_config(px, cfg, &err) per update ...
 *     dp_proxy_stop(px); dp_proxy_free(px);
 */
#ifndef MESH_SIDECAR_PROXY_H
#define MESH_SIDECAR_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "sidecar/cert_pool.h"
#include "sidecar/dp_config.h"
#include "sidecar/dp_rng.h"

typedef struct dp_proxy dp_proxy;

#define DP_REQUEST_HEADERS_TIMEOUT_MS 10000

typedef struct dp_proxy_opts {
    cert_pool *pool;                /* required; borrowed, must outlive the proxy */
    const char *admin_address;      /* loopback "ip:port" (port 0 = ephemeral); NULL = none */
    uint64_t rng_seed;              /* 0 = random */
    dp_rng_fn rng_fn;               /* tests: replaces the RNG (weighted picks, P2C) */
    void *rng_arg;
    int64_t handshake_timeout_ms;   /* downstream TLS handshake; 0 = 10 s */
    int64_t idle_timeout_ms;        /* idle keep-alive connections, both sides; 0 = 300 s */
    int64_t request_headers_timeout_ms; /* a request head, from its first byte to its
                                         * end (Envoy's request_headers_timeout): 408
                                         * after it; 0 = DP_REQUEST_HEADERS_TIMEOUT_MS */
    uint32_t max_idle_per_endpoint; /* pooled upstream connections per endpoint; 0 = 64 */
    size_t retry_buffer_bytes;      /* request bytes kept for a retry; 0 = 64 KiB */
    const char *access_log;         /* JSON-lines access log: a file (appended) or "-"
                                     * for stdout; NULL = none (dp_access_log.h) */
    const char *state_dir;          /* the xDS client's (persisted responses), for
                                     * /config_dump's Envoy-shaped "configs"; NULL = none.
                                     * Borrowed: must outlive the proxy */
} dp_proxy_opts;

/* Also sets SIGPIPE to ignored, process-wide (as Envoy does): writes to a
 * closed peer must fail, not kill the sidecar. */
int dp_proxy_new(const dp_proxy_opts *opts, dp_proxy **out, mesh_err *err);
/* Runs the event loop on a new thread. */
int dp_proxy_start(dp_proxy *px, mesh_err *err);
/* Runs the event loop on the calling thread until dp_proxy_stop. */
int dp_proxy_run(dp_proxy *px, mesh_err *err);
/* Any thread; asynchronous: the loop exits soon after. */
void dp_proxy_stop(dp_proxy *px);
/* Stops and joins the loop thread (if started), closes every connection and
 * listener. Not from the loop thread itself. */
void dp_proxy_free(dp_proxy *px);

/* Applies a frozen snapshot: binds new listeners, keeps unchanged ones (same
 * address: no connection drops), closes removed ones, swaps the config for
 * new requests (requests in flight keep theirs). All-or-nothing: if a
 * listener cannot bind, nothing changes and the error names it (NACK it).
 * Blocks until the loop has done it; before the loop runs it applies
 * directly. Takes its own reference. MESH_EINVAL for an unfrozen snapshot. */
int dp_proxy_apply_config(dp_proxy *px, dp_config *cfg, mesh_err *err);
/* Same, without waiting; failures are logged. */
int dp_proxy_post_config(dp_proxy *px, dp_config *cfg, mesh_err *err);
/* A reference to the snapshot in use (NULL before the first one). */
dp_config *dp_proxy_current_config(dp_proxy *px);

/* Port a listener is bound to (useful with port 0), -1 if not bound. */
int dp_proxy_listener_port(dp_proxy *px, const char *name);
int dp_proxy_admin_port(dp_proxy *px);

/* ---- xDS bookkeeping (any thread) ---------------------------------------------- */

typedef enum dp_xds_type {
    DP_XDS_LDS = 0, DP_XDS_RDS, DP_XDS_CDS, DP_XDS_EDS, DP_XDS_SDS, DP_XDS_TYPE_COUNT
} dp_xds_type;

/* A version was applied (ACK): records it and counts an update. */
void dp_proxy_xds_accepted(dp_proxy *px, dp_xds_type t, const char *version);
/* A version was rejected (NACK): counts it and keeps the error for /config_dump. */
void dp_proxy_xds_rejected(dp_proxy *px, dp_xds_type t, const char *version, const char *error);
/* Control-plane connection state, shown by /config_dump. */
void dp_proxy_xds_connected(dp_proxy *px, bool connected, const char *server);

/* ---- counters (any thread; for tests and main) ----------------------------------- */

typedef struct dp_stats_view {
    uint64_t rq_by_class[2][6];     /* [0 outbound, 1 inbound][1xx..5xx at 1..5; 0 = reset] */
    uint64_t up_hs_ok, up_hs_failed;
    uint64_t down_hs_ok, down_hs_failed;
    uint64_t rbac_denied;
    uint64_t retries, timeouts;
    uint64_t tls_refused_expired;   /* handshakes refused: our SVID expired */
    uint64_t closed_cert_expiry;    /* live connections closed at a cert's notAfter */
    uint64_t closed_revoked;        /* live connections closed: a cert on them got revoked */
    uint64_t tls_refused_revoked;   /* handshakes refused: the peer's cert is revoked */
    uint64_t active_down, active_up;
    uint64_t outlier_ejections;     /* hosts ejected by outlier detection */
    uint64_t per_try_timeouts;      /* attempts abandoned at the per-try timeout */
    uint64_t hc_ok, hc_failed;      /* active health check probes */
    /* circuit breakers: refused for max_connections, max_pending_requests,
     * max_requests, max_retries */
    uint64_t overflow_cx, overflow_pending, overflow_rq, overflow_retry;
    uint64_t xds_updates[DP_XDS_TYPE_COUNT], xds_rejections[DP_XDS_TYPE_COUNT];
    uint64_t xds_failovers;         /* ADS streams that came up on another meshd replica */
} dp_stats_view;

void dp_proxy_get_stats(dp_proxy *px, dp_stats_view *out);
const char *dp_xds_type_name(dp_xds_type t);    /* "lds", "rds", ... */

#endif
