/* sidecar/proxy_h2.h — HTTP/2 through the sidecar on nghttp2 (docs/dataplane.md, HTTP/2).
 *
 *   proxy_h2_session.c  the downstream: a session on an HTTP listener that takes HTTP/2
 *                       (h2c by prior knowledge on the outbound one, ALPN "h2" inbound; any
 *                       other connection is handed to the HTTP/1.1 session it embeds), the
 *                       nghttp2 server session, routing and RBAC per stream
 *   proxy_h2_up.c       the upstream: one shared HTTP/2 connection per endpoint (h2 over mTLS
 *                       to a peer sidecar, h2c to the local app), many streams on it
 *   proxy_h2_xchg.c     one exchange (a stream on each side): headers forwarded, the two data
 *                       sources, local replies (trailers-only for gRPC), the end of it
 *
 * Flow control is end to end: neither nghttp2 session sends WINDOW_UPDATE by itself
 * (no_auto_window_update); bytes received on one side are "consumed" (nghttp2_session_consume,
 * which opens the window) only when the other side's data source has taken them into a frame.
 * A slow reader therefore stops its peer after one stream window (64 KiB) per stream and one
 * connection window (1 MiB) per connection, plus at most DP_HIGH_WATER unsent bytes per
 * connection (frames are only produced while the socket's output is below it).
 *
 * nghttp2 is not re-entrant: a session's mem_send/mem_recv never runs inside its own
 * callbacks. Work for the other side is submitted there and sent by a zero-delay "pump"
 * event of that side. */
#ifndef MESH_SIDECAR_PROXY_H2_H
#define MESH_SIDECAR_PROXY_H2_H

#include <nghttp2/nghttp2.h>

#include "sidecar/proxy_http.h"

typedef struct dp_h2_up dp_h2_up;
typedef struct dp_h2_session dp_h2_session;

typedef struct dp_h2_hdrs {
    nghttp2_nv *nv;             /* name/value own their bytes (one malloc per pair) */
    size_t n, cap;
    size_t bytes;               /* names + values, for the 64 KiB limit */
} dp_h2_hdrs;

/* One request/response: a stream on the downstream session and, once routed, one on an
 * upstream connection. Freed when both sides are done with it. */
typedef struct dp_h2_xchg {
    dp_proxy *px;
    dp_h2_session *d;           /* NULL once the downstream stream is gone */
    int32_t down_id;
    dp_h2_up *up;               /* NULL until attached, and after the upstream is gone */
    int32_t up_id;              /* 0 until submitted */
    struct dp_h2_xchg *d_prev, *d_next;     /* in d->streams */
    struct dp_h2_xchg *u_prev, *u_next;     /* in up->streams or up->pending */
    dp_h2_hdrs req, req_trailers, resp, resp_trailers;
    struct evbuffer *req_body, *resp_body;  /* received, not yet taken by the other side */
    bool req_end, resp_end;     /* END_STREAM received from the source side */
    bool req_deferred, resp_deferred;       /* the data source said DEFERRED */
    bool resp_started;          /* the response head went to the downstream */
    bool down_closed, up_closed;
    bool local;                 /* a local reply: the request's bytes are dropped */
    bool grpc;                  /* content-type application/grpc: local replies in gRPC */
    bool inbound;               /* for the per-direction counters */
    int status;
    dp_active *act;
    size_t ci;
    dp_ep_rt *ep;               /* holds a ref, active_rq counted */
    struct event *timer;        /* the route timeout or the client's grpc-timeout */
} dp_h2_xchg;

struct dp_h2_session {
    dp_http_session h1;         /* first: connections that are not HTTP/2 are served by it */
    int mode;                   /* H2_SNIFF, H2_H1, H2_H2 (proxy_h2_session.c) */
    nghttp2_session *ng;
    struct event *pump_ev;
    dp_h2_xchg *streams;
    size_t n_streams;
    dp_h2_cfg cfg;
};

struct dp_h2_up {
    dp_proxy *px;
    dp_ep_rt *ep;               /* borrowed: uc holds the reference */
    dp_upconn *uc;
    dp_active *act;             /* while connecting: keeps the cluster dp_up_get reads */
    nghttp2_session *ng;        /* NULL until connected */
    struct event *pump_ev;
    dp_h2_xchg *pending;        /* waiting for the connection */
    dp_h2_xchg *streams;
    size_t n_streams;
    bool draining;              /* no new streams (SAN matchers changed, GOAWAY) */
    dp_h2_cfg cfg;
};

/* ---- proxy_h2_xchg.c ------------------------------------------------------------------ */
int dp_h2_hdrs_add(dp_h2_hdrs *h, const uint8_t *name, size_t nlen, const uint8_t *value,
                   size_t vlen);
void dp_h2_hdrs_free(dp_h2_hdrs *h);
const nghttp2_nv *dp_h2_hdrs_find(const dp_h2_hdrs *h, const char *name);
/* Copies the forwardable fields of src (hop-by-hop and mesh-owned ones dropped) into out,
 * pseudo-headers first; extra (optional) is appended. */
int dp_h2_hdrs_forward(const dp_h2_hdrs *src, const nghttp2_nv *extra, size_t n_extra,
                       dp_h2_hdrs *out);
dp_h2_xchg *dp_h2_xchg_new(dp_h2_session *d, int32_t down_id);
/* gRPC's grpc-timeout ("1-8 digits" + H M S m u n) in milliseconds, rounded up; -1 if
 * malformed. */
int64_t dp_h2_grpc_timeout_ms(const char *v, size_t len);
/* Arms the exchange's deadline (ms > 0): at expiry a 504 / DEADLINE_EXCEEDED before the
 * response, a reset after it, and the upstream stream cancelled. */
void dp_h2_arm_timeout(dp_h2_xchg *x, int64_t ms);
/* Both sides are done: unlinked and freed. */
void dp_h2_xchg_maybe_free(dp_h2_xchg *x);
/* A reply from the sidecar itself on the downstream stream. */
void dp_h2_local_reply(dp_h2_xchg *x, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Forwards the upstream's response head (trailers-only when it ended the stream). */
void dp_h2_forward_response(dp_h2_xchg *x, bool end_stream);
/* Data arrived for the other side (or the source ended): wake its data source. */
void dp_h2_wake_up_side(dp_h2_xchg *x);
void dp_h2_wake_down_side(dp_h2_xchg *x);
extern const nghttp2_data_source_read_callback dp_h2_req_source;

/* ---- proxy_h2_session.c --------------------------------------------------------------- */
void dp_h2_down_schedule(dp_h2_session *d);
/* Routes a complete request head (RBAC, route, cluster, endpoint) and attaches it upstream. */
void dp_h2_route(dp_h2_xchg *x);

/* ---- proxy_h2_up.c -------------------------------------------------------------------- */
/* The stream goes to ep of cluster cl over HTTP/2: on the endpoint's shared connection, or
 * a new one. false after a local reply (no connection possible). */
bool dp_h2_up_attach(dp_h2_xchg *x, const dp_cluster *cl);
void dp_h2_up_schedule(dp_h2_up *up);
/* The downstream stream went away before the exchange ended: cancel upstream. */
void dp_h2_up_cancel(dp_h2_xchg *x, uint32_t code);
/* The exchange leaves the upstream's lists (freed or both sides done). */
void dp_h2_up_detach(dp_h2_xchg *x);

#endif
