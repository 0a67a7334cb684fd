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
 *            ── conns (every downstream session, for teardown)
 *   session (HTTP or TCP) ── dp_active ref for the request in flight
 *                         ── dp_upconn (connecting or attached upstream)
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

#include "sidecar/http_msg.h"
#include "sidecar/proxy.h"

#define DP_LOG "dp"
#define DP_EP_BUCKETS 1024
/* Stop reading a side when the other side has this much unsent. */
#define DP_HIGH_WATER (1024 * 1024)
#define DP_LOW_WATER  (256 * 1024)

typedef struct dp_conn dp_conn;
struct dp_conn {
    dp_conn *prev, *next;
    void (*destroy)(dp_conn *c);   /* frees the session (teardown) */
};

typedef struct dp_upconn dp_upconn;

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
} dp_ep_rt;

typedef struct dp_cluster_rt {
    uint64_t rr_cursor;
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
    _Atomic uint64_t active_down, active_up;
    _Atomic uint64_t xds_updates[DP_XDS_TYPE_COUNT], xds_rejections[DP_XDS_TYPE_COUNT];
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
    dp_conn conns;                  /* sentinel */
    struct event *tick_ev;
    dp_rng rng;
    struct evhttp *admin;
    int admin_port;
    atomic_bool config_applied;
    int64_t last_refuse_log;

    /* published for other threads */
    pthread_mutex_t pub_mu;
    dp_config *pub_cfg;
    dp_port_entry *pub_ports;
    size_t n_pub_ports;

    dp_stats st;

    pthread_mutex_t xds_mu;
    dp_xds_status xds[DP_XDS_TYPE_COUNT];
    bool xds_connected;
    char xds_server[256];
};

/* ---- helpers (proxy.c) ---------------------------------------------------------- */
int64_t dp_now(void);                       /* unix seconds */
void dp_stat_inc(_Atomic uint64_t *c);
void dp_stat_dec(_Atomic uint64_t *c);
void dp_conn_link(dp_proxy *px, dp_conn *c);
void dp_conn_unlink(dp_conn *c);
/* Class index for rq_by_class: 1..5, 0 for "no response" (reset). */
int dp_code_class(int status);
/* A timer (re)armed to fire at unix time `deadline` (seconds). */
void dp_timer_at(struct event *ev, int64_t deadline);
void dp_timer_ms(struct event *ev, int64_t ms);

/* ---- active config (proxy_active.c) ----------------------------------------------- */
int dp_active_build(dp_proxy *px, dp_config *cfg, dp_active **out, mesh_err *err);
dp_active *dp_active_ref(dp_active *a);
void dp_active_unref(dp_proxy *px, dp_active *a);
void dp_ep_ref(dp_ep_rt *ep);
void dp_ep_unref(dp_ep_rt *ep);
/* Picks an endpoint of cluster index ci; NULL when none is usable. */
dp_ep_rt *dp_active_pick(dp_proxy *px, dp_active *a, size_t ci, const dp_ep_rt *avoid);

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
    dp_http_reader rd;              /* response reader for HTTP owners */
    uint32_t requests;              /* served so far (logs) */
};

/* An idle pooled connection to ep (re-checked against the cluster's SAN
 * matchers) or a new one; NULL with *why filled on immediate failure (no
 * SVID, expired SVID, socket error). *ready_now: usable at once (pooled). */
dp_upconn *dp_up_get(dp_proxy *px, dp_ep_rt *ep, const dp_cluster *cl, bool http,
                     const dp_up_ops *ops, void *owner, bool *ready_now, char *why,
                     size_t whylen);
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

/* ---- sessions ----------------------------------------------------------------------- */
void dp_http_accept(dp_proxy *px, const dp_listener *l, evutil_socket_t fd);
void dp_tcp_accept(dp_proxy *px, const dp_listener *l, evutil_socket_t fd);

/* ---- admin (proxy_admin.c) --------------------------------------------------------- */
int dp_admin_start(dp_proxy *px, const char *address, mesh_err *err);
void dp_admin_stop(dp_proxy *px);

#endif
