/* sidecar/proxy_http.h — the HTTP session, shared by its files:
 *
 *   proxy_http.c           the HTTP/1.1 downstream connection: session ops,
 *                          reading requests (the codec), pipelining,
 *                          keep-alive, local replies, ending an exchange
 *   proxy_http_route.c     one exchange's way to an upstream: route, RBAC,
 *                          cluster, endpoint, connection, retries, replay,
 *                          the route timeout
 *   proxy_http_response.c  the upstream's response: parsing, 5xx retry,
 *                          forwarding it re-framed, backpressure, reuse
 *   proxy_http_state.c     the exchange state machine (pure; unit tested)
 *
 * Two objects, as HAProxy's h1c (connection) and h1s (stream): the
 * connection (dp_http_session: the shared dp_session lifecycle plus the
 * request codec) and the exchange in flight (dp_http_exchange: one request
 * and its response). HTTP/1.1 has one exchange at a time, so it is embedded;
 * routing, attempts and the response side only deal with the exchange and
 * the few dp_http_* calls below, which is where another downstream codec
 * (HTTP/2: many exchanges per connection) would plug in.
 *
 * The exchange's phase is one state; everything else about it is a flag.
 *
 *   IDLE ─request head─▶ ROUTING ─routed─▶ AWAITING_UPSTREAM ─upstream ready─▶
 *   AWAITING_RESPONSE ─response head─▶ STREAMING_RESPONSE
 *   retry: AWAITING_UPSTREAM or AWAITING_RESPONSE ─▶ AWAITING_UPSTREAM
 *   response done (forwarded, in STREAMING_RESPONSE; or a local reply in any
 *   phase before it): request complete ─▶ IDLE (the exchange ends), request
 *   still arriving ─▶ DRAINING_REQUEST ─request done─▶ IDLE
 *
 * Every change of state goes through dp_http_step (proxy_http.c), which
 * asks dp_hx_next and runs the one action a state has on entry. */
#ifndef MESH_SIDECAR_PROXY_HTTP_H
#define MESH_SIDECAR_PROXY_HTTP_H

#include "sidecar/http_msg.h"
#include "sidecar/proxy_internal.h"

typedef enum dp_hx_state {
    DP_HX_IDLE,                 /* no exchange: waiting for (or reading) a request head */
    DP_HX_ROUTING,              /* head read; route, RBAC and cluster not chosen yet */
    DP_HX_AWAITING_UPSTREAM,    /* an attempt is getting a connection (pooled or new) */
    DP_HX_AWAITING_RESPONSE,    /* upstream attached, request going out, no response head */
    DP_HX_STREAMING_RESPONSE,   /* response head sent to the client, body following */
    DP_HX_DRAINING_REQUEST,     /* response complete first: the rest of the request is dropped */
    DP_HX_STATE_COUNT,
    DP_HX_INVALID = DP_HX_STATE_COUNT,
} dp_hx_state;

typedef enum dp_hx_event {
    DP_HX_EV_REQUEST_HEAD,      /* a request head was parsed */
    DP_HX_EV_ROUTED,            /* route and cluster chosen: the first attempt starts */
    DP_HX_EV_RETRY,             /* the attempt failed (or answered a retryable 5xx): another */
    DP_HX_EV_UPSTREAM_READY,    /* the attempt's connection is attached */
    DP_HX_EV_RESPONSE_HEAD,     /* the upstream's response head went to the client */
    DP_HX_EV_RESPONSE_DONE,     /* the response is complete (forwarded or a local reply) */
    DP_HX_EV_REQUEST_DONE,      /* the request's last byte has been read */
    DP_HX_EVENT_COUNT,
} dp_hx_event;

/* The state after ev in state from; request_done: the request's last byte
 * has been read (it decides where a completed response leads).
 * DP_HX_INVALID if ev cannot happen in that state. IDLE from any other
 * state means the exchange is over. */
dp_hx_state dp_hx_next(dp_hx_state from, dp_hx_event ev, bool request_done);
const char *dp_hx_state_name(dp_hx_state st);
const char *dp_hx_event_name(dp_hx_event ev);
/* An exchange is under way and its response is not complete (a session that
 * dies now counts it as reset). */
bool dp_hx_in_flight(dp_hx_state st);
/* The client has (part of) a response: no local reply, no retry any more. */
bool dp_hx_response_started(dp_hx_state st);

/* Flags of the exchange (dp_http_exchange.flags). */
enum {
    /* the request */
    DP_HX_F_REQ_DONE = 1u << 0,         /* its last byte has been read */
    DP_HX_F_KEEP_ALIVE = 1u << 1,       /* the connection stays open after this exchange */
    DP_HX_F_HTTP10 = 1u << 2,           /* the client speaks HTTP/1.0 */
    DP_HX_F_HEAD_METHOD = 1u << 3,      /* HEAD: the response has no body */
    DP_HX_F_IDEMPOTENT = 1u << 4,       /* may be retried after bytes were sent */
    /* the response */
    DP_HX_F_RESP_CHUNKED = 1u << 5,     /* its body is re-chunked for the client */
    DP_HX_F_UP_KEEP_ALIVE = 1u << 6,    /* the upstream lets us reuse its connection */
    DP_HX_F_RETRY_5XX = 1u << 7,        /* its head was a retryable 5xx: drop it, retry */
    DP_HX_F_UP_READ_PAUSED = 1u << 8,   /* backpressure: the client is slow */
    /* the attempts */
    DP_HX_F_SENT_ANY = 1u << 9,         /* request bytes went to this attempt's upstream */
    DP_HX_F_REUSED_CONN = 1u << 10,     /* this attempt took a pooled connection */
    DP_HX_F_FREE_RETRY_USED = 1u << 11, /* the one retry for a stale pooled connection */
    /* circuit breakers (dp_breaker.h): what this exchange holds of x->load */
    DP_HX_F_RQ_COUNTED = 1u << 12,      /* one of rq_active, until the exchange ends */
    DP_HX_F_PENDING = 1u << 13,         /* one of rq_pending, until the new connection is up */
    DP_HX_F_IN_RETRY = 1u << 14,        /* one of rq_retry, until this retry attempt ends */
    DP_HX_F_OVERLOADED = 1u << 15,      /* the local reply says x-envoy-overloaded: true */
};

/* Attempts of one exchange: 1 + at most 10 retries + the free one. */
#define DP_HX_MAX_TRIED 12

typedef struct dp_http_exchange {
    dp_hx_state state;
    unsigned flags;
    int status;                     /* sent to the client; 0: none yet */
    char request_id[64];
    dp_active *act;                 /* the snapshot the request started with */
    const dp_cluster *cluster;
    size_t ci;
    dp_cluster_load *load;          /* the cluster's (held by act's cluster runtime) */
    uint32_t attempts_left;
    struct evbuffer *pending;       /* request bytes not yet given to the upstream */
    struct evbuffer *replay;        /* sent bytes kept for a retry; NULL: retry impossible */
    dp_upconn *up;                  /* connecting, or attached from AWAITING_RESPONSE on */
    dp_http_reader resp;            /* the response codec: here, not on the pooled
                                     * connection, so that a kill inside its callbacks
                                     * frees nothing it is using */
    dp_ep_rt *ep;                   /* endpoint of this attempt (active_rq counted) */
    /* Endpoints earlier attempts used, compared by address only: a retry
     * tries another (all of them with previous_hosts, else the last). */
    const dp_ep_rt *tried[DP_HX_MAX_TRIED];
    size_t n_tried;
    bool other_hosts;               /* the route's previous_hosts predicate */
    int64_t per_try_ms;             /* the route's per-try timeout; 0 = none */
    struct event *timeout_ev;       /* route / listener timeout of the exchange */
    struct event *try_ev;           /* per-try timeout of the attempt (until its response head) */
    /* For the access log and the per-cluster metrics (proxy_http_observe.c). */
    int64_t start_us;               /* wall clock at the request head; 0: no head yet */
    int64_t start_mono_us;
    uint64_t bytes_in, bytes_out;   /* request / response body bytes */
    const char *route_name;         /* in act's config, or NULL */
    uint32_t attempts;
    char last_host[64];             /* the last attempt's endpoint ("" none) */
    char last_peer[DP_SPIFFE_ID_MAX + 1]; /* outbound: the upstream's verified SPIFFE ID */
} dp_http_exchange;

typedef struct dp_http_session {
    dp_session base;                /* downstream, identity, lifecycle */
    dp_http_reader rd;              /* the request codec (HTTP/1.1) */
    struct event *resume_ev;        /* deferred: the next pipelined request */
    struct event *head_ev;          /* the request head's deadline (from its first byte) */
    dp_http_exchange x;
} dp_http_session;

/* The attempt's connection carries the request (and the response). */
static inline bool dp_http_upstream_attached(const dp_http_exchange *x)
{
    return x->up && (x->state == DP_HX_AWAITING_RESPONSE ||
                     x->state == DP_HX_STREAMING_RESPONSE);
}

static inline bool dp_hx_has(const dp_http_exchange *x, unsigned f)
{
    return (x->flags & f) != 0;
}

static inline void dp_hx_set(dp_http_exchange *x, unsigned f, bool on)
{
    x->flags = on ? x->flags | f : x->flags & ~f;
}

/* ---- observation (proxy_http_observe.c) ----------------------------------------------- */
/* The exchange finished (response done, or reset with none): one access log
 * line and one metrics sample. */
void dp_http_observe(dp_http_session *s);
/* The request head arrived: the exchange's clocks start. */
void dp_http_observe_start(dp_http_exchange *x);

/* ---- the connection (proxy_http.c) ---------------------------------------------------- */
/* Moves the exchange on (see above); false if the session died doing so. */
bool dp_http_step(dp_http_session *s, dp_hx_event ev);
/* A response generated by the sidecar (the body says why); resets the
 * connection if a response was already started. */
void dp_http_local_reply(dp_http_session *s, int code, bool force_close, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Reads the client only while the exchange can take more request bytes. */
void dp_http_update_down_read(dp_http_session *s);
void dp_http_kill(dp_http_session *s);
/* The downstream codec, as the exchange sees it: the request head (valid
 * from ROUTING until the exchange ends), the response going to the client,
 * and how much of it the client has not read yet. */
const dp_http_head *dp_http_request_head(const dp_http_session *s);
int dp_http_send_response_head(dp_http_session *s, const dp_http_head *h);
int dp_http_send_response_body(dp_http_session *s, const char *at, size_t len);
void dp_http_send_response_end(dp_http_session *s);
size_t dp_http_client_backlog(const dp_http_session *s);

/* ---- routing and attempts (proxy_http_route.c) ------------------------------------------ */
/* ROUTING: picks route, checks RBAC, finds the cluster, starts the first attempt. */
void dp_http_route(dp_http_session *s);
/* Ends the attempt: the upstream is pooled (reusable) or closed, the
 * endpoint's in-flight count drops. */
void dp_http_release_attempt(dp_http_session *s, bool reusable);
/* The attempt failed: retry if the policy allows, else a local reply with
 * status (503 for connect errors and resets, 502 for a malformed response). */
void dp_http_attempt_failed(dp_http_session *s, int status, const char *why, bool before_send);
/* A retry would start now: whether the cluster's max_retries allows one more
 * in flight (a refusal is counted as upstream_rq_retry_overflow; the failure
 * then goes to the client as it is, as in Envoy). */
bool dp_http_retry_admit(dp_http_session *s);
/* A new attempt after a retryable 5xx (attempts were left). */
void dp_http_retry_5xx(dp_http_session *s);
/* Whether the request could be sent again: nothing sent yet, or all kept. */
bool dp_http_replay_possible(const dp_http_session *s);
/* Gives queued request bytes to the attached upstream. */
void dp_http_flush_request(dp_http_session *s);
/* The route timeout fired (arg: the session). */
void dp_http_on_timeout(evutil_socket_t fd, short what, void *arg);
/* The attempt's per-try timeout fired (arg: the session). */
void dp_http_on_try_timeout(evutil_socket_t fd, short what, void *arg);
/* The attempt's result for its endpoint's outlier detection and counters. */
void dp_http_record_result(dp_http_session *s, int result);

/* ---- the response (proxy_http_response.c) ----------------------------------------------- */
/* The attempt's connection becomes the response source: reader and callbacks. */
void dp_http_response_attach(dp_http_session *s, dp_upconn *uc);

#endif
