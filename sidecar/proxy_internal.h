/* sidecar/proxy_internal.h — structures shared by the proxy_*.c files.
 *
 * Everything here is owned by the event loop thread, except the fields of
 * dp_proxy marked "any thread" (protected by their mutex or atomic).
 *
 * Object graph:
 *   dp_proxy ── active (dp_active: config snapshot + per-cluster runtime)
 *            ── listeners (dp_lrt: one evconnlistener per bound listener)
 *            ── endpoint map (dp_ep_rt by "cluster\naddress": active request
 *               count and idle pooled upstream connections; shared by
 *               successive snapshots so pools and least-request counts
 *               survive EDS pushes)
 *            ── sessions (dp_session_set: every downstream session, open or
 *               killed and waiting to be freed)
 *   session (dp_session base + HTTP or TCP state)
 *            ── dp_active ref for the request in flight
 *            ── dp_upconn (connecting or attached upstream)
 */
#ifndef MESH_SIDECAR_PROXY_INTERNAL_H
#define MESH_SIDECAR_PROXY_INTERNAL_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <pthread.h>
#include <stdatomic.h>

#include "sidecar/dp_access_log.h"
#include "sidecar/dp_breaker.h"
#include "sidecar/dp_metrics.h"
#include "sidecar/dp_health.h"
#include "sidecar/proxy.h"

#define DP_LOG "dp"
#define DP_EP_BUCKETS 1024
/* Stop reading a side when the other side has this much unsent. */
#define DP_HIGH_WATER (1024 * 1024)
#define DP_LOW_WATER  (256 * 1024)
/* Room for "the peer's certificate serial S of <SPIFFE ID> was revoked at T (reason)". */
#define DP_REVOKED_WHY 400

typedef struct dp_upconn dp_upconn;
typedef struct dp_hc_probe dp_hc_probe;

typedef struct dp_ep_rt {
    int refs;                       /* cluster runtimes + upconns owned by sessions */
    char *key;                      /* "cluster\naddress" */
    char cluster[256];
    char addr[64];
    struct sockaddr_storage sa;
    socklen_t sa_len;
    uint32_t active_rq;             /* least request */
    dp_upconn *idle;                /* pooled keep-alive connections */
    uint32_t n_idle;
    struct dp_ep_rt *hnext;
    dp_proxy *px;
    dp_cluster_load *load;          /* its cluster's (circuit breakers; holds a ref) */
    /* This sidecar's view of the host (dp_health.h), kept across EDS pushes. */
    dp_outlier_host od;
    dp_hc_host hc;
    struct dp_hc_probe *probe;      /* active health checking (proxy_hc.c); NULL: none */
    struct dp_h2_up *h2_up;         /* the shared HTTP/2 connection new streams use (proxy_h2_up.c) */
    /* For /clusters: requests finished with a response below 500 / with a
     * 5xx, a connect failure, a reset or a timeout. */
    uint64_t rq_total, rq_success, rq_error, cx_connect_fail;
} dp_ep_rt;

typedef struct dp_cluster_rt {
    uint64_t rr_cursor;
    dp_cluster_load *load;          /* shared by snapshots, by cluster name (circuit breakers) */
    dp_ep_rt **eps;                 /* aligned with dp_config_cluster_endpoints() */
    size_t n_eps;
} dp_cluster_rt;

typedef struct dp_active {
    int refs;
    dp_config *cfg;
    dp_cluster_rt *crt;             /* per cluster index of cfg */
    size_t n_crt;
} dp_active;

typedef struct dp_lrt {
    struct dp_lrt *next;
    dp_proxy *px;
    char *name, *address;
    struct evconnlistener *lev;
    int port;
} dp_lrt;

typedef struct dp_stats {
    _Atomic uint64_t rq_by_class[2][6];
    _Atomic uint64_t up_hs_ok, up_hs_failed, down_hs_ok, down_hs_failed;
    _Atomic uint64_t rbac_denied, retries, timeouts, tls_refused_expired, closed_cert_expiry;
    _Atomic uint64_t closed_revoked, tls_refused_revoked;
    _Atomic uint64_t outlier_ejections, per_try_timeouts, hc_ok, hc_failed;
    _Atomic uint64_t overflow_cx, overflow_pending, overflow_rq, overflow_retry;
    _Atomic uint64_t active_down, active_up;
    _Atomic uint64_t xds_updates[DP_XDS_TYPE_COUNT], xds_rejections[DP_XDS_TYPE_COUNT];
    _Atomic uint64_t xds_failovers;     /* ADS came up on another meshd replica than before */
} dp_stats;

typedef struct dp_xds_status {
    char version[128];
    int64_t last_update;            /* unix seconds of the last ACK */
    char last_error[512];
    char rejected_version[128];
    int64_t last_reject;
} dp_xds_status;

typedef struct dp_msg dp_msg;

typedef struct dp_port_entry {
    char name[256];
    int port;
} dp_port_entry;

typedef struct dp_session dp_session;

/* Every downstream session of the proxy (proxy_session.c). */
typedef struct dp_session_set {
    dp_session *live;               /* not killed yet (doubly linked) */
    dp_session *graveyard;          /* killed, waiting for reap_ev to free them */
    struct event *reap_ev;          /* zero-delay: the loop's next safe point */
} dp_session_set;

struct dp_proxy {
    dp_proxy_opts opts;
    cert_pool *pool;
    struct event_base *base;
    pthread_t thread;
    bool thread_started;
    atomic_bool loop_running;       /* any thread: mailbox vs direct apply */
    pthread_t loop_tid;

    /* mailbox (any thread) */
    pthread_mutex_t mb_mu;
    dp_msg *mb_head, *mb_tail;
    bool mb_closed;
    atomic_bool stop_requested;
    int mb_fd;                      /* eventfd */
    struct event *mb_ev;

    /* loop state */
    dp_active *active;
    dp_lrt *listeners;
    dp_ep_rt *ep_map[DP_EP_BUCKETS];
    dp_cluster_load *loads;         /* per cluster name (dp_breaker.h) */
    dp_session_set sessions;
    struct event *tick_ev;
    dp_rng rng;
    struct evhttp *admin;
    int admin_port;
    atomic_bool config_applied;
    int64_t last_refuse_log;
    dp_upconn *upconns;             /* every upstream connection (proxy_revoke.c walks them) */
    atomic_bool crl_changed;        /* any thread: the pool took new CRLs (wakes the loop) */
    uint64_t crl_gen_seen;          /* pool CRL generation the last sweep looked at */

    /* published for other threads */
    pthread_mutex_t pub_mu;
    dp_config *pub_cfg;
    dp_port_entry *pub_ports;
    size_t n_pub_ports;

    dp_stats st;
    dp_metrics *metrics;            /* per cluster/route/peer (loop thread only) */
    dp_access_log *alog;            /* NULL: no access log */

    pthread_mutex_t xds_mu;
    dp_xds_status xds[DP_XDS_TYPE_COUNT];
    bool xds_connected;
    char xds_server[256];
    char xds_last_server[256];  /* the replica of the last connected stream (failovers) */
};

/* ---- helpers (proxy.c) ---------------------------------------------------------- */
int64_t dp_now(void);                       /* unix seconds */
int64_t dp_mono_ms(void);                   /* CLOCK_MONOTONIC milliseconds */
void dp_stat_inc(_Atomic uint64_t *c);
void dp_stat_dec(_Atomic uint64_t *c);
/* Class index for rq_by_class: 1..5, 0 for "no response" (reset). */
int dp_code_class(int status);
/* A timer (re)armed to fire at unix time `deadline` (seconds). */
void dp_timer_at(struct event *ev, int64_t deadline);
void dp_timer_ms(struct event *ev, int64_t ms);
struct timeval dp_timeval_ms(int64_t ms);

/* ---- active config (proxy_active.c) ----------------------------------------------- */
int dp_active_build(dp_proxy *px, dp_config *cfg, dp_active **out, mesh_err *err);
dp_active *dp_active_ref(dp_active *a);
void dp_active_unref(dp_proxy *px, dp_active *a);
void dp_ep_ref(dp_ep_rt *ep);
void dp_ep_unref(dp_ep_rt *ep);
/* Picks an endpoint of cluster index ci that is up in EDS and in our own view
 * (not ejected, not failing health checks; dp_lb.h), other than the tried
 * ones if possible; NULL when none is usable. */
dp_ep_rt *dp_active_pick(dp_proxy *px, dp_active *a, size_t ci, const dp_ep_rt *const *tried,
                         size_t n_tried);
/* A request on ep (of cluster index ci) finished with result (an HTTP status,
 * DP_RESULT_CONNECT_FAILED or DP_RESULT_TIMEOUT): counted for /clusters and
 * fed to the cluster's outlier detection, which may eject ep. */
void dp_active_record(dp_proxy *px, dp_active *a, size_t ci, dp_ep_rt *ep, int result);

/* ---- active health checks (proxy_hc.c) ----------------------------------------------- */
/* After a config is applied: a probe for every endpoint of a cluster with a
 * health check that has none yet (first fired within the jitter). */
void dp_hc_sync(dp_proxy *px);
/* The endpoint is being freed (dp_ep_unref). */
void dp_hc_probe_free(dp_hc_probe *p);
/* Teardown: aborts every running probe (its connection and snapshot go). */
void dp_hc_stop_all(dp_proxy *px);

/* ---- upstream connections (proxy_upstream.c) ---------------------------------------- */
typedef struct dp_up_ops {
    /* Connect + handshake finished: rc MESH_OK, or an error with why. */
    void (*ready)(void *owner, dp_upconn *uc, int rc, const char *why);
    /* The connection must die now (its or its peer's certificate expired). */
    void (*dead)(void *owner, dp_upconn *uc, const char *why);
} dp_up_ops;

struct dp_upconn {
    dp_proxy *px;
    dp_ep_rt *ep;                   /* holds a ref */
    struct bufferevent *bev;
    bool tls, connected, http;
    char peer_id[DP_SPIFFE_ID_MAX + 1];
    struct event *timer;            /* connect timeout, then the cert deadline */
    int64_t deadline;
    const dp_up_ops *ops;
    void *owner;                    /* NULL while pooled */
    dp_upconn *pool_prev, *pool_next;
    bool pooled;
    const dp_cluster *cl;           /* while connecting (owner keeps its snapshot) */
    uint32_t requests;              /* served so far (logs) */
    dp_upconn *all_prev, *all_next; /* px->upconns */
    char revoked_why[DP_REVOKED_WHY]; /* set by the revocation sweep: close at the next timer */
    bool probe;                     /* a health check's: never pooled, not in the breakers' cx */
};

/* An idle pooled connection to ep (re-checked against the cluster's SAN
 * matchers) or a new one; NULL with *why filled on immediate failure (no
 * SVID, expired SVID, socket error). *ready_now: usable at once (pooled). */
dp_upconn *dp_up_get(dp_proxy *px, dp_ep_rt *ep, const dp_cluster *cl, bool http,
                     const dp_up_ops *ops, void *owner, bool *ready_now, char *why,
                     size_t whylen);
/* Always a new connection (dp_up_get's second half); probe: a health
 * check's own, which the circuit breakers do not count (as in Envoy). */
dp_upconn *dp_up_connect(dp_proxy *px, dp_ep_rt *ep, const dp_cluster *cl, bool http,
                         bool probe, const dp_up_ops *ops, void *owner, char *why,
                         size_t whylen);
/* Whether dp_up_get would open a new connection to ep (none is idle): the
 * circuit breakers' max_connections / max_pending_requests apply. */
bool dp_up_needs_new(const dp_ep_rt *ep);
/* Back to ep's pool if reusable, else closed. */
void dp_up_release(dp_upconn *uc, bool reusable);
void dp_up_close(dp_upconn *uc);
/* Closes every idle connection of ep (ep leaving the config). */
void dp_up_drain_pool(dp_ep_rt *ep);
/* Checks a peer SPIFFE ID against a cluster's SAN matchers / trust domain. */
bool dp_peer_allowed_by_cluster(const dp_cluster *cl, const char *peer_id, const char *own_td);

/* ---- downstream TLS (proxy_down.c) -------------------------------------------------- */
/* SSL for an accepted inbound connection; NULL (fd closed, counted, logged) if
 * the pool refuses (no or expired SVID). */
struct bufferevent *dp_down_tls_accept(dp_proxy *px, evutil_socket_t fd);
/* The bufferevent for any accepted connection: mTLS for inbound listeners
 * (dp_down_tls_accept), plain for the local app's outbound ones. NULL with
 * the fd closed on failure. */
struct bufferevent *dp_down_accept(dp_proxy *px, evutil_socket_t fd, bool inbound);
/* After BEV_EVENT_CONNECTED on a downstream TLS bev: extracts and checks the
 * peer SPIFFE ID (same trust domain as ours), our own ID, and the deadline. */
int dp_down_tls_established(dp_proxy *px, struct bufferevent *bev, char *peer_id, size_t plen,
                            char *own_id, size_t olen, int64_t *deadline, char *why,
                            size_t whylen);
/* "what" for logs when a handshake fails. */
void dp_tls_error_string(struct bufferevent *bev, char *buf, size_t len);
bool dp_listener_allows(const dp_listener *l, const char *peer_id);

/* ---- sessions (proxy_session.c) ------------------------------------------------------
 * The part of a downstream connection that does not depend on its protocol,
 * shared by HTTP and TCP (as Envoy's Network::Connection under its filters, or
 * HAProxy's connection under the h1 mux): the accepted bufferevent, the
 * inbound mTLS handshake and the caller's identity, the certificate expiry
 * timer, "close once the output is flushed", and the one way a session ends:
 *
 *   HANDSHAKING ──mTLS ok──▶ OPEN ──dp_session_close_after_flush──▶ CLOSING
 *        └──────────────┬─────────┴────────────────────────────────────┘
 *                dp_session_kill
 *                       ▼
 *                     DEAD ──reap_ev, next pass of the loop──▶ freed
 *
 * Ends that are not the protocol's own (a certificate on the connection
 * expiring, or being revoked by new CRLs) are the lifecycle's too: the
 * expiry timer and dp_sessions_close_revoked kill the session the same way
 * for HTTP and TCP.
 *
 * dp_session_kill stops all I/O at once (the protocol closes its upstreams,
 * the downstream's callbacks are detached) but frees nothing: the session
 * moves to the graveyard and is freed by a zero-delay event, after the
 * callback that killed it has returned. A function that called something
 * which may have killed the session checks dp_session_dead() and returns; it
 * never touches freed memory. Callbacks from the loop never reach a protocol
 * once its session is dead (the downstream's go through the phase check
 * below; upstream connections and timers are closed by ops->stop).
 *
 * The protocol's struct starts with the dp_session; ops->size says how big it
 * is, and the ops see the session in these orders:
 *   init → [handshake] → open → on_read/on_write/on_event (OPEN only) …
 *        → stop (once, at kill) → release (at free; also at proxy teardown
 *          for a session never killed, so it must not rely on stop). */
typedef enum dp_session_phase {
    DP_SESSION_HANDSHAKING,         /* inbound: mTLS handshake; the protocol has not started */
    DP_SESSION_OPEN,                /* the protocol runs */
    DP_SESSION_CLOSING,             /* flushing the downstream output, then kill */
    DP_SESSION_DEAD,                /* no I/O; freed at the loop's next safe point */
} dp_session_phase;

typedef struct dp_session_ops {
    const char *log_name;           /* how logs name an inbound one: "inbound", "inbound tcp" */
    size_t size;                    /* the protocol's struct, which starts with a dp_session */
    int (*init)(dp_session *s);     /* protocol state: MESH_OK or MESH_ENOMEM */
    void (*open)(dp_session *s);    /* downstream usable: after mTLS, or at accept */
    void (*on_read)(dp_session *s);
    void (*on_write)(dp_session *s);
    void (*on_event)(dp_session *s, short what);
    void (*stop)(dp_session *s);    /* being killed: close upstreams, stop timers */
    void (*release)(dp_session *s); /* free what the protocol owns (not s itself) */
    bool linger_on_close;           /* plain downstream: FIN, then drop input a moment */
} dp_session_ops;

struct dp_session {
    dp_session *prev, *next;        /* in px->sessions.live; next also links the graveyard */
    const dp_session_ops *ops;
    dp_proxy *px;
    dp_session_phase phase;
    bool inbound;
    char listener[256];             /* name of the listener that accepted it */
    struct bufferevent *down;       /* the downstream connection */
    char peer_id[DP_SPIFFE_ID_MAX + 1];     /* inbound: the caller's SPIFFE ID */
    char own_id[DP_SPIFFE_ID_MAX + 1];      /* inbound: ours, as presented */
    int64_t deadline;               /* inbound: first notAfter of a cert on the connection */
    struct event *expiry_ev;
    bool lingering;                 /* CLOSING: output sent and FIN'd; input is dropped */
    size_t lingered;                /* bytes dropped so far */
};

/* At dp_proxy_new / dp_proxy_free. free_all frees every session, killed or
 * not, without running the loop. */
int dp_sessions_init(dp_proxy *px, mesh_err *err);
void dp_sessions_free_all(dp_proxy *px);
/* A session for an accepted connection on listener l (mTLS first for
 * inbound listeners); on any failure the fd is closed and counted. */
void dp_session_accept(dp_proxy *px, const dp_listener *l, evutil_socket_t fd,
                       const dp_session_ops *ops);
/* The same over a ready bufferevent (owned from here on, freed on failure);
 * inbound means it is an accepting TLS bufferevent. NULL: out of memory. */
dp_session *dp_session_start(dp_proxy *px, const char *listener, bool inbound,
                             struct bufferevent *down, const dp_session_ops *ops);
/* Idempotent; never frees s (see above). */
void dp_session_kill(dp_session *s);
/* Stops reading and kills once the downstream output is written (at once if
 * it is empty); a client that never reads gets 10 s. With ops->linger_on_close
 * a plain connection is half-closed instead and what the client still sends
 * is read and dropped until it closes (at most 2 s or 1 MiB): closing with
 * unread input makes the kernel send a reset that can destroy the reply
 * before the client reads it (nginx's lingering close). */
void dp_session_close_after_flush(dp_session *s);
/* After the cert pool took new CRLs (proxy_revoke.c): kills every inbound
 * session past its handshake whose peer's certificate, or ours on it, is now
 * revoked (logged with why, counted as closed_revoked); the one place HTTP and
 * TCP sessions are closed for a revocation. Sessions still handshaking are
 * checked when the handshake completes (dp_down_tls_established). Returns how
 * many it closed. */
size_t dp_sessions_close_revoked(dp_proxy *px);

static inline bool dp_session_dead(const dp_session *s)
{
    return s->phase == DP_SESSION_DEAD;
}

/* The two protocols' ops (proxy_http.c, proxy_tcp.c). */
extern const dp_session_ops dp_http_session_ops;
extern const dp_session_ops dp_tcp_session_ops;
/* HTTP listeners that take HTTP/2 (proxy_h2_session.c): h2 by prior knowledge or ALPN,
 * otherwise the HTTP/1.1 session above. */
extern const dp_session_ops dp_h2_session_ops;
/* Proxy teardown, after the sessions: the shared HTTP/2 upstream connections nobody owns. */
void dp_h2_up_free_all(dp_proxy *px);

/* ---- revocation on live connections (proxy_revoke.c) --------------------------------- */
/* The cert pool's CRL listener (any thread): flags the change and wakes the loop. */
void dp_revoke_on_crl_change(void *arg);
/* Loop thread: when the pool's CRLs changed since the last call, closes every
 * established mTLS connection whose peer's or own certificate they now list. */
void dp_revoke_sweep(dp_proxy *px);
/* A handshake just completed: true (why filled) if the peer's or our own
 * certificate on ssl is revoked by the CRLs the pool holds now. */
bool dp_revoke_check(dp_proxy *px, SSL *ssl, char *why, size_t len);
/* Links / unlinks an upstream connection in px->upconns (proxy_upstream.c). */
void dp_upconn_track(dp_upconn *uc);
void dp_upconn_untrack(dp_upconn *uc);

/* ---- admin (proxy_admin.c) --------------------------------------------------------- */
int dp_admin_start(dp_proxy *px, const char *address, mesh_err *err);
struct evhttp_request;
/* /clusters (proxy_admin_clusters.c): Envoy's text lines, or its JSON shape. */
void dp_admin_clusters(dp_proxy *px, struct evhttp_request *req, bool as_json);
/* Per-cluster circuit breaker counters in Prometheus text under Envoy's names
 * plus the _total suffix Prometheus wants on a counter
 * (envoy_cluster_upstream_cx_overflow_total{envoy_cluster_name="..."}), for /stats. */
void dp_admin_cluster_stats(dp_proxy *px, struct evbuffer *b);
void dp_admin_stop(dp_proxy *px);

/* /config_dump's "configs": Envoy's ConfigDump of the responses persisted in
 * state_dir (NULL: an empty list); proxy_admin_dump.c. */
struct json_out;
void dp_admin_envoy_configs(struct json_out *j, const char *state_dir);

#endif
