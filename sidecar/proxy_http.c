/* sidecar/proxy_http.c — HTTP/1.1 sessions, both directions.
 *
 * Outbound: plain HTTP from the local app -> route by Host/path/headers ->
 * weighted cluster -> endpoint (LB) -> pooled mTLS connection to the peer
 * sidecar. Inbound: mTLS from a peer sidecar -> RBAC on its SPIFFE ID -> the
 * local app over plain TCP, with x-forwarded-client-cert naming the caller.
 *
 * One exchange (request + response) at a time per downstream connection;
 * pipelined requests wait in the input buffer (the reader pauses after each
 * message). Request bytes are serialised into `pending` as they are parsed
 * and moved to the upstream once it is connected; for idempotent requests a
 * copy (up to retry_buffer_bytes) is kept so a retry can replay them.
 *
 * Teardown is deferred: sess_kill() marks the session dead, detaches every
 * callback and lets a zero-delay event free it, so no code path touches a
 * freed session after a nested call decided to close it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "sidecar/dp_route.h"
#include "sidecar/http_wire.h"
#include "sidecar/proxy_internal.h"
#include "sidecar/tls_util.h"

typedef struct hsess {
    dp_conn base;
    dp_proxy *px;
    bool inbound;
    char lname[256];
    struct bufferevent *bev;
    bool handshaking;
    bool dead;
    bool closing;                   /* close once the output is flushed */
    char peer_id[DP_SPIFFE_ID_MAX + 1];
    char own_id[DP_SPIFFE_ID_MAX + 1];
    int64_t deadline;
    struct event *expiry_ev;        /* inbound: a certificate on the connection expires */
    struct event *resume_ev;        /* deferred: next pipelined request, or free */
    struct event *timeout_ev;       /* route / listener timeout of the exchange */
    dp_http_reader rd;              /* requests */

    /* the exchange in flight */
    bool in_exchange, dispatched;
    bool req_done, resp_started, resp_done;
    bool discard_body;
    bool keep_alive, http10, is_head, idempotent;
    bool interim;                   /* skipping a 1xx response */
    bool resp_chunked_out;
    bool up_keepalive;
    bool retry_pending;
    bool reused_conn, free_retry_used;
    bool sent_any;                  /* request bytes given to the current upstream */
    bool up_read_paused;
    int status;
    char request_id[64];
    dp_active *act;
    const dp_cluster *cluster;
    size_t ci;
    uint32_t attempts_left;
    struct evbuffer *pending;
    struct evbuffer *replay;        /* NULL: no retry possible after bytes were sent */
    dp_upconn *up;
    bool up_attached;
    dp_ep_rt *ep;                   /* endpoint of this attempt (active_rq counted) */
    const dp_ep_rt *last_failed;    /* compared by address only: "try another" */
} hsess;

static void sess_kill(hsess *s);
static void process_input(hsess *s);
static void start_attempt(hsess *s);
static void exchange_check(hsess *s);
static void local_reply(hsess *s, int code, bool force_close, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- small helpers ------------------------------------------------------------------ */

static int dir_index(const hsess *s)
{
    return s->inbound ? 1 : 0;
}

static bool method_idempotent(int m)
{
    return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS || m == HTTP_TRACE ||
           m == HTTP_PUT || m == HTTP_DELETE;
}

static void update_down_read(hsess *s)
{
    if (s->dead || s->handshaking)
        return;
    bool want = !s->closing && !s->rd.parser.http_errno;
    /* Paused after a complete request: wait for its response first. */
    if (HTTP_PARSER_ERRNO(&s->rd.parser) == HPE_PAUSED)
        want = false;
    size_t queued = evbuffer_get_length(s->pending);
    if (s->up && s->up_attached)
        queued += evbuffer_get_length(bufferevent_get_output(s->up->bev));
    if (queued > DP_HIGH_WATER)
        want = false;
    if (want)
        bufferevent_enable(s->bev, EV_READ);
    else
        bufferevent_disable(s->bev, EV_READ);
}

/* Ends the current attempt: the upstream goes back to the pool or closes,
 * and the endpoint's in-flight count drops. */
static void release_attempt(hsess *s, bool reusable)
{
    if (s->up) {
        dp_upconn *uc = s->up;
        s->up = NULL;
        s->up_attached = false;
        s->up_read_paused = false;
        if (reusable)
            dp_up_release(uc, true);
        else
            dp_up_close(uc);
    }
    if (s->ep) {
        if (s->ep->active_rq > 0)
            s->ep->active_rq--;
        dp_ep_unref(s->ep);
        s->ep = NULL;
    }
}

static void reset_exchange(hsess *s)
{
    release_attempt(s, false);
    if (s->timeout_ev)
        evtimer_del(s->timeout_ev);
    dp_active_unref(s->px, s->act);
    s->act = NULL;
    s->cluster = NULL;
    if (s->replay) {
        evbuffer_free(s->replay);
        s->replay = NULL;
    }
    evbuffer_drain(s->pending, evbuffer_get_length(s->pending));
    s->in_exchange = s->dispatched = false;
    s->req_done = s->resp_started = s->resp_done = false;
    s->discard_body = s->interim = s->resp_chunked_out = s->up_keepalive = false;
    s->retry_pending = s->reused_conn = s->free_retry_used = s->sent_any = false;
    s->status = 0;
    s->attempts_left = 0;
    s->last_failed = NULL;
}

static void destroy(hsess *s)
{
    dp_conn_unlink(&s->base);
    if (s->in_exchange && !s->resp_done)
        dp_stat_inc(&s->px->st.rq_by_class[dir_index(s)][0]);
    reset_exchange(s);
    if (s->expiry_ev)
        event_free(s->expiry_ev);
    if (s->resume_ev)
        event_free(s->resume_ev);
    if (s->timeout_ev)
        event_free(s->timeout_ev);
    if (s->bev)
        bufferevent_free(s->bev);
    evbuffer_free(s->pending);
    dp_http_reader_free(&s->rd);
    dp_stat_dec(&s->px->st.active_down);
    free(s);
}

static void destroy_conn(dp_conn *c)
{
    destroy((hsess *)c);
}

static void sess_kill(hsess *s)
{
    if (s->dead)
        return;
    s->dead = true;
    release_attempt(s, false);
    if (s->bev) {
        bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
        bufferevent_disable(s->bev, EV_READ | EV_WRITE);
    }
    if (s->timeout_ev)
        evtimer_del(s->timeout_ev);
    if (s->expiry_ev)
        evtimer_del(s->expiry_ev);
    event_active(s->resume_ev, 0, 0);
}

/* Flush, then close. */
static void start_close(hsess *s)
{
    if (s->dead)
        return;
    s->closing = true;
    bufferevent_disable(s->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
        sess_kill(s);
        return;
    }
    struct timeval flush = {10, 0};   /* a client that never reads cannot pin us */
    bufferevent_set_timeouts(s->bev, NULL, &flush);
}

static void set_idle_timeout(hsess *s, bool idle)
{
    if (idle) {
        int64_t ms = s->px->opts.idle_timeout_ms;
        struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
                             .tv_usec = (suseconds_t)(ms % 1000) * 1000};
        bufferevent_set_timeouts(s->bev, &tv, NULL);
    } else {
        bufferevent_set_timeouts(s->bev, NULL, NULL);
    }
}

/* ---- finishing an exchange ---------------------------------------------------------- */

static void end_exchange(hsess *s)
{
    dp_stat_inc(&s->px->st.rq_by_class[dir_index(s)][dp_code_class(s->status)]);
    bool keep = s->keep_alive && !s->closing;
    reset_exchange(s);
    if (!keep) {
        start_close(s);
        return;
    }
    set_idle_timeout(s, true);
    dp_http_reader_pause(&s->rd, false);
    /* Deferred, not recursive: a burst of pipelined requests answered
     * locally must not grow the stack. */
    event_active(s->resume_ev, 0, 0);
}

static void exchange_check(hsess *s)
{
    if (!s->dead && s->in_exchange && s->req_done && s->resp_done)
        end_exchange(s);
}

static void local_reply(hsess *s, int code, bool force_close, const char *fmt, ...)
{
    if (s->dead)
        return;
    if (s->resp_started) {
        sess_kill(s);    /* a response is half sent: only a reset is left */
        return;
    }
    char body[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    release_attempt(s, false);
    if (s->timeout_ev)
        evtimer_del(s->timeout_ev);
    if (force_close)
        s->keep_alive = false;
    dp_wire_local_reply(bufferevent_get_output(s->bev), code, body, s->is_head, s->keep_alive,
                        s->http10, s->request_id);
    log_debug(DP_LOG, "%s %s local reply %d: %s", s->inbound ? "inbound" : "outbound",
              s->lname, code, body);
    s->status = code;
    s->resp_started = s->resp_done = true;
    if (!s->req_done) {
        /* Keep reading the rest of the request, dropping it. */
        s->discard_body = true;
    }
    evbuffer_drain(s->pending, evbuffer_get_length(s->pending));
    exchange_check(s);
    if (!s->dead && s->in_exchange && !s->keep_alive && !s->req_done)
        start_close(s);
}

/* ---- upstream attempts -------------------------------------------------------------- */

static bool replay_possible(const hsess *s)
{
    return !s->sent_any || s->replay != NULL;
}

static void attempt_failed(hsess *s, const char *why, bool before_send)
{
    if (s->dead)
        return;
    s->last_failed = s->ep;
    bool was_reused = s->reused_conn;
    release_attempt(s, false);
    if (!s->resp_started && replay_possible(s)) {
        bool connect_class = before_send || !s->sent_any;
        if (s->attempts_left > 0 && (connect_class || s->idempotent)) {
            s->attempts_left--;
            dp_stat_inc(&s->px->st.retries);
            log_debug(DP_LOG, "retrying request %s: %s", s->request_id, why);
            start_attempt(s);
            return;
        }
        /* A pooled connection the server closed just as we reused it: one
         * free retry for idempotent requests, as HTTP clients do. */
        if (was_reused && !s->free_retry_used && s->idempotent) {
            s->free_retry_used = true;
            start_attempt(s);
            return;
        }
    }
    local_reply(s, 503, false, "%s", why);
}

static void flush_request(hsess *s)
{
    if (s->dead || !s->up || !s->up_attached || s->discard_body)
        return;
    size_t n = evbuffer_get_length(s->pending);
    if (n == 0)
        return;
    if (s->replay) {
        if (evbuffer_get_length(s->replay) + n > s->px->opts.retry_buffer_bytes) {
            evbuffer_free(s->replay);
            s->replay = NULL;
        } else {
            unsigned char *p = evbuffer_pullup(s->pending, (ssize_t)n);
            if (!p || evbuffer_add(s->replay, p, n) != 0) {
                evbuffer_free(s->replay);
                s->replay = NULL;
            }
        }
    }
    evbuffer_add_buffer(bufferevent_get_output(s->up->bev), s->pending);
    s->sent_any = true;
}

static void up_read_cb(struct bufferevent *bev, void *arg);
static void up_write_cb(struct bufferevent *bev, void *arg);
static void up_event_cb(struct bufferevent *bev, short what, void *arg);
static const dp_http_reader_cbs resp_cbs;

static void up_attached(hsess *s)
{
    dp_upconn *uc = s->up;
    s->up_attached = true;
    uc->requests++;
    dp_http_reader_init(&uc->rd, HTTP_RESPONSE, &resp_cbs, s);
    bufferevent_setcb(uc->bev, up_read_cb, up_write_cb, up_event_cb, s);
    bufferevent_setwatermark(uc->bev, EV_WRITE, 0, 0);
    bufferevent_enable(uc->bev, EV_READ | EV_WRITE);
    if (s->replay && evbuffer_get_length(s->replay) > 0) {
        /* A retry: everything already sent once goes out again first. */
        size_t n = evbuffer_get_length(s->replay);
        unsigned char *p = evbuffer_pullup(s->replay, (ssize_t)n);
        evbuffer_add(bufferevent_get_output(uc->bev), p, n);
        s->sent_any = true;
    } else {
        s->sent_any = false;
    }
    flush_request(s);
    update_down_read(s);
}

static void on_up_ready(void *owner, dp_upconn *uc, int rc, const char *why)
{
    hsess *s = owner;
    if (s->dead)
        return;
    if (rc != MESH_OK) {
        attempt_failed(s, why, true);
        return;
    }
    up_attached(s);
}

static void on_up_dead(void *owner, dp_upconn *uc, const char *why)
{
    hsess *s = owner;
    if (!s->resp_started)
        attempt_failed(s, why, false);
    else
        sess_kill(s);
}

static const dp_up_ops up_ops = {.ready = on_up_ready, .dead = on_up_dead};

static void start_attempt(hsess *s)
{
    if (s->dead)
        return;
    dp_ep_rt *ep = dp_active_pick(s->px, s->act, s->ci, s->last_failed);
    if (!ep) {
        local_reply(s, 503, false, "no healthy upstream for cluster '%s'", s->cluster->name);
        return;
    }
    dp_ep_ref(ep);
    ep->active_rq++;
    s->ep = ep;
    s->sent_any = false;
    bool ready = false;
    char why[DP_SPIFFE_ID_MAX + 300];
    dp_upconn *uc = dp_up_get(s->px, ep, s->cluster, true, &up_ops, s, &ready, why, sizeof why);
    if (!uc) {
        attempt_failed(s, why, true);
        return;
    }
    s->up = uc;
    s->reused_conn = ready;
    if (ready)
        up_attached(s);
}

/* ---- response side ------------------------------------------------------------------- */

static bool can_retry_5xx(const hsess *s)
{
    return s->attempts_left > 0 && s->idempotent && s->req_done && replay_possible(s);
}

static int resp_on_head(void *arg, dp_http_reader *r)
{
    hsess *s = arg;
    const dp_http_head *h = &r->head;
    if (h->status >= 100 && h->status < 200) {
        /* 100 Continue and friends: we answered Expect ourselves; drop them.
         * (101 never happens: Upgrade is refused on the way in.) */
        s->interim = true;
        return 0;
    }
    s->interim = false;
    if (h->status >= 500 && can_retry_5xx(s)) {
        s->retry_pending = true;
        return -1;      /* stop parsing this response; it is thrown away */
    }
    s->status = h->status;
    s->up_keepalive = h->keep_alive;
    if (dp_wire_response_head(bufferevent_get_output(s->bev), h, s->is_head, s->http10,
                              &s->keep_alive, &s->resp_chunked_out) != 0)
        return -1;
    /* Envoy's route timeout covers the whole response: it stays armed. */
    s->resp_started = true;
    return s->is_head ? 1 : 0;
}

static int resp_on_body(void *arg, const char *at, size_t len)
{
    hsess *s = arg;
    if (s->interim || !s->resp_started)
        return 0;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    int rc = s->resp_chunked_out ? dp_wire_chunk(out, at, len) : evbuffer_add(out, at, len);
    return rc == 0 ? 0 : -1;
}

static int resp_on_done(void *arg, dp_http_reader *r)
{
    hsess *s = arg;
    if (s->interim) {
        s->interim = false;
        return 0;
    }
    if (s->resp_chunked_out)
        dp_wire_chunk(bufferevent_get_output(s->bev), NULL, 0);
    s->resp_done = true;
    dp_http_reader_pause(r, true);  /* nothing after the response is ours */
    return 0;
}

static const dp_http_reader_cbs resp_cbs = {
    .on_head = resp_on_head, .on_body = resp_on_body, .on_done = resp_on_done,
};

static void finish_upstream(hsess *s)
{
    bool sent_all = s->req_done && evbuffer_get_length(s->pending) == 0;
    bool reusable = s->up_keepalive && sent_all &&
                    evbuffer_get_length(bufferevent_get_output(s->up->bev)) == 0;
    if (!s->req_done) {
        /* The upstream answered before the request was complete: drop the
         * rest of the request body. */
        s->discard_body = true;
        evbuffer_drain(s->pending, evbuffer_get_length(s->pending));
    }
    release_attempt(s, reusable);
}

static void do_retry(hsess *s)
{
    s->retry_pending = false;
    s->last_failed = s->ep;
    release_attempt(s, false);
    s->attempts_left--;
    dp_stat_inc(&s->px->st.retries);
    log_debug(DP_LOG, "retrying request %s after a 5xx", s->request_id);
    start_attempt(s);
}

/* Feeds upstream input (or EOF when eof) to the response reader. */
static void feed_response(hsess *s, bool eof)
{
    dp_upconn *uc = s->up;
    struct evbuffer *in = bufferevent_get_input(uc->bev);
    int st = DP_HTTP_OK;
    if (eof) {
        if (uc->rd.in_message)
            dp_http_reader_feed(&uc->rd, NULL, 0, &st);
    } else {
        while (!s->dead && s->up == uc && evbuffer_get_length(in) > 0 && st == DP_HTTP_OK) {
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            size_t n = dp_http_reader_feed(&uc->rd, v.iov_base, v.iov_len, &st);
            evbuffer_drain(in, n);
            if (st == DP_HTTP_OK && n < v.iov_len)
                st = DP_HTTP_ERROR;     /* parser stopped early without saying why */
        }
    }
    if (s->dead || s->up != uc)
        return;
    if (s->retry_pending) {
        do_retry(s);
        return;
    }
    if (st == DP_HTTP_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "upstream %s sent a malformed HTTP response: %s",
                 uc->ep->addr, dp_http_reader_error(&uc->rd));
        if (!s->resp_started)
            attempt_failed(s, why, false);
        else {
            log_info(DP_LOG, "%s; resetting the downstream connection", why);
            sess_kill(s);
        }
        return;
    }
    if (s->resp_done) {
        finish_upstream(s);
        exchange_check(s);
        return;
    }
    /* Backpressure: a slow client must not make us buffer the whole body. */
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) > DP_HIGH_WATER) {
        bufferevent_disable(uc->bev, EV_READ);
        s->up_read_paused = true;
    }
}

static void up_read_cb(struct bufferevent *bev, void *arg)
{
    hsess *s = arg;
    if (!s->dead && s->up)
        feed_response(s, false);
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
    hsess *s = arg;
    update_down_read(s);    /* the upstream drained: read more request body */
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    hsess *s = arg;
    if (s->dead || !s->up)
        return;
    dp_upconn *uc = s->up;
    if (what & BEV_EVENT_EOF) {
        feed_response(s, true);
        if (s->dead || s->up != uc)
            return;
        if (s->resp_done) {
            s->up_keepalive = false;
            finish_upstream(s);
            exchange_check(s);
            return;
        }
    }
    char why[1024], detail[400];
    if (uc->tls && (what & BEV_EVENT_ERROR))
        dp_tls_error_string(bev, detail, sizeof detail);
    else
        snprintf(detail, sizeof detail, "%s", (what & BEV_EVENT_EOF) ? "connection closed"
                                                                     : "connection reset");
    snprintf(why, sizeof why, "upstream connect error or disconnect/reset before headers: %s "
             "(%s, cluster '%s')", detail, uc->ep->addr, uc->ep->cluster);
    if (!s->resp_started) {
        attempt_failed(s, why, false);
    } else {
        log_info(DP_LOG, "upstream %s closed mid-response (%s); resetting the downstream "
                 "connection", uc->ep->addr, detail);
        sess_kill(s);
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    hsess *s = arg;
    if (s->dead)
        return;
    dp_stat_inc(&s->px->st.timeouts);
    if (!s->resp_started)
        local_reply(s, 504, false, "upstream request timeout");
    else
        sess_kill(s);
}

/* ---- request side ------------------------------------------------------------------- */

static void dispatch(hsess *s)
{
    s->dispatched = true;
    dp_proxy *px = s->px;
    if (!px->active) {
        local_reply(s, 503, false, "no configuration from meshd yet");
        return;
    }
    s->act = dp_active_ref(px->active);
    dp_config *cfg = s->act->cfg;
    const dp_listener *l = dp_config_find_listener(cfg, s->lname);
    if (!l) {
        local_reply(s, 503, true, "listener '%s' was removed", s->lname);
        return;
    }
    const char *cname;
    int64_t timeout_ms;
    uint32_t retries;
    if (s->inbound) {
        if (!dp_listener_allows(l, s->peer_id)) {
            dp_stat_inc(&px->st.rbac_denied);
            log_info(DP_LOG, "RBAC: denied %s on listener '%s'", s->peer_id, l->name);
            local_reply(s, 403, false, "RBAC: access denied: %s is not allowed to call this "
                        "service (listener '%s')", s->peer_id, l->name);
            return;
        }
        cname = l->local_cluster;
        timeout_ms = l->timeout_ms;
        retries = 0;
    } else {
        const dp_route_table *rt = dp_config_find_route_table(cfg, l->route_table);
        if (!rt) {
            local_reply(s, 404, false, "route table '%s' has not been received from meshd",
                        l->route_table);
            return;
        }
        const dp_http_head *h = &s->rd.head;
        const dp_http_header *host = dp_http_head_find(h, "host");
        dp_route_req rq = {
            .host = host ? host->value : NULL,
            .host_len = host ? host->value_len : 0,
            .headers = h->view,
            .n_headers = h->n,
        };
        rq.path = dp_http_head_url(h, &rq.path_len);
        const dp_virtual_host *vh = NULL;
        const dp_route *r = dp_route_match(rt, &rq, &vh);
        if (!r) {
            local_reply(s, 404, false, "no route for host '%.*s' path '%.*s' in route table "
                        "'%s'%s", (int)(rq.host_len > 200 ? 200 : rq.host_len),
                        rq.host ? rq.host : "", (int)(rq.path_len > 500 ? 500 : rq.path_len),
                        rq.path, rt->name, vh ? "" : " (no virtual host matches the host)");
            return;
        }
        cname = dp_route_pick_cluster(r, &px->rng);
        timeout_ms = r->timeout_ms;
        retries = r->retries;
    }
    const dp_cluster *cl = dp_config_find_cluster(cfg, cname, &s->ci);
    if (!cl) {
        local_reply(s, 503, false, "cluster '%s' not found (not yet received from meshd?)",
                    cname);
        return;
    }
    s->cluster = cl;
    s->attempts_left = retries;
    if (s->idempotent)
        s->replay = evbuffer_new();
    if (timeout_ms > 0)
        dp_timer_ms(s->timeout_ev, timeout_ms);
    start_attempt(s);
}

static int req_on_head(void *arg, dp_http_reader *r)
{
    hsess *s = arg;
    const dp_http_head *h = &r->head;
    s->in_exchange = true;
    s->keep_alive = h->keep_alive;
    s->http10 = h->major == 1 && h->minor == 0;
    s->is_head = h->method == HTTP_HEAD;
    s->idempotent = method_idempotent(h->method);
    set_idle_timeout(s, false);
    const dp_http_header *rid = dp_http_head_find(h, "x-request-id");
    if (rid && rid->value_len > 0 && rid->value_len < sizeof s->request_id) {
        memcpy(s->request_id, rid->value, rid->value_len);
        s->request_id[rid->value_len] = '\0';
    } else {
        dp_wire_request_id(&s->px->rng, s->request_id);
    }
    if (h->upgrade || h->method == HTTP_CONNECT) {
        s->req_done = true;     /* what follows is not HTTP: never parse it */
        local_reply(s, 501, true, "protocol upgrades and CONNECT are not supported by the "
                    "mesh sidecar");
        return -1;
    }
    if (!dp_http_head_find(h, "host")) {
        s->req_done = true;     /* the connection closes: the body is never read */
        local_reply(s, 400, true, "request has no Host header");
        return -1;
    }
    if (dp_http_head_has_token(h, "expect", "100-continue") && !s->http10)
        evbuffer_add(bufferevent_get_output(s->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    dp_wire_req_opts o = {
        .inbound = s->inbound,
        .request_id = s->request_id,
        .own_id = s->own_id,
        .peer_id = s->peer_id,
    };
    if (dp_wire_request_head(s->pending, h, &o) != 0)
        return -1;
    return 0;
}

static int req_on_body(void *arg, const char *at, size_t len)
{
    hsess *s = arg;
    if (s->discard_body)
        return 0;
    int rc = s->rd.head.chunked ? dp_wire_chunk(s->pending, at, len)
                                : evbuffer_add(s->pending, at, len);
    return rc == 0 ? 0 : -1;
}

static int req_on_done(void *arg, dp_http_reader *r)
{
    hsess *s = arg;
    if (!s->discard_body && r->head.chunked)
        dp_wire_chunk(s->pending, NULL, 0);
    s->req_done = true;
    dp_http_reader_pause(r, true);      /* one exchange at a time */
    return 0;
}

static const dp_http_reader_cbs req_cbs = {
    .on_head = req_on_head, .on_body = req_on_body, .on_done = req_on_done,
};

static void process_input(hsess *s)
{
    if (s->dead || s->handshaking || s->closing)
        return;
    struct evbuffer *in = bufferevent_get_input(s->bev);
    while (!s->dead && evbuffer_get_length(in) > 0 &&
           HTTP_PARSER_ERRNO(&s->rd.parser) != HPE_PAUSED) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        int st;
        size_t n = dp_http_reader_feed(&s->rd, v.iov_base, v.iov_len, &st);
        evbuffer_drain(in, n);
        if (s->dead || s->closing)
            return;
        if (st == DP_HTTP_ERROR) {
            if (s->resp_started) {      /* e.g. upgrade refused, Host missing */
                start_close(s);
                return;
            }
            bool big = dp_http_reader_head_too_big(&s->rd);
            s->req_done = true;
            if (!s->in_exchange) {
                s->in_exchange = true;
                dp_wire_request_id(&s->px->rng, s->request_id);
            }
            local_reply(s, big ? 431 : 400, true, "bad request: %s",
                        dp_http_reader_error(&s->rd));
            return;
        }
        if (s->in_exchange && !s->dispatched) {
            dispatch(s);
            if (s->dead)
                return;
        }
    }
    flush_request(s);
    exchange_check(s);
    update_down_read(s);
}

/* ---- downstream callbacks ------------------------------------------------------------ */

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    hsess *s = arg;
    if (s->dead) {
        destroy(s);
        return;
    }
    process_input(s);
}

static void on_expiry(evutil_socket_t fd, short what, void *arg)
{
    hsess *s = arg;
    if (s->dead)
        return;
    if (dp_now() < s->deadline) {   /* expired at notAfter itself, like the cert pool */
        dp_timer_at(s->expiry_ev, s->deadline);
        return;
    }
    char when[32];
    tls_format_time(s->deadline, when, sizeof when);
    log_info(DP_LOG, "closing inbound connection from %s on '%s': a certificate on it expired "
             "at %s", s->peer_id, s->lname, when);
    dp_stat_inc(&s->px->st.closed_cert_expiry);
    sess_kill(s);
}

static void down_read_cb(struct bufferevent *bev, void *arg)
{
    process_input(arg);
}

static void down_write_cb(struct bufferevent *bev, void *arg)
{
    hsess *s = arg;
    if (s->dead)
        return;
    /* Deferred callbacks can run after more output was queued: look at the
     * buffer, not at the fact that we were called. */
    if (evbuffer_get_length(bufferevent_get_output(bev)) > DP_LOW_WATER)
        return;
    if (s->closing) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            sess_kill(s);
        return;
    }
    if (s->up_read_paused && s->up) {
        s->up_read_paused = false;
        bufferevent_enable(s->up->bev, EV_READ);
    }
}

static void handshake_done(hsess *s)
{
    char why[DP_SPIFFE_ID_MAX + 200];
    if (dp_down_tls_established(s->px, s->bev, s->peer_id, sizeof s->peer_id, s->own_id,
                                sizeof s->own_id, &s->deadline, why, sizeof why) != MESH_OK) {
        dp_stat_inc(&s->px->st.down_hs_failed);
        log_info(DP_LOG, "inbound '%s': rejecting connection: %s", s->lname, why);
        sess_kill(s);
        return;
    }
    dp_stat_inc(&s->px->st.down_hs_ok);
    s->handshaking = false;
    if (s->deadline != INT64_MAX)
        dp_timer_at(s->expiry_ev, s->deadline);
    set_idle_timeout(s, true);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    process_input(s);
}

static void down_event_cb(struct bufferevent *bev, short what, void *arg)
{
    hsess *s = arg;
    if (s->dead)
        return;
    if (s->handshaking) {
        if (what & BEV_EVENT_CONNECTED) {
            handshake_done(s);
            return;
        }
        char why[400];
        if (what & BEV_EVENT_TIMEOUT)
            snprintf(why, sizeof why, "handshake timeout");
        else
            dp_tls_error_string(bev, why, sizeof why);
        dp_stat_inc(&s->px->st.down_hs_failed);
        log_info(DP_LOG, "inbound '%s': TLS handshake failed: %s", s->lname, why);
        sess_kill(s);
        return;
    }
    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && s->in_exchange && s->req_done &&
        !s->resp_done) {
        /* Half-close after a complete request: answer, then close. */
        s->keep_alive = false;
        bufferevent_disable(s->bev, EV_READ);
        return;
    }
    sess_kill(s);
}

void dp_http_accept(dp_proxy *px, const dp_listener *l, evutil_socket_t fd)
{
    bool inbound = l->kind == DP_LISTENER_INBOUND_HTTP;
    struct bufferevent *bev = dp_down_accept(px, fd, inbound);
    if (!bev)
        return;
    hsess *s = calloc(1, sizeof *s);
    if (!s || !(s->pending = evbuffer_new())) {
        free(s);
        bufferevent_free(bev);
        return;
    }
    s->px = px;
    s->bev = bev;
    s->inbound = inbound;
    s->handshaking = inbound;
    snprintf(s->lname, sizeof s->lname, "%s", l->name);
    s->resume_ev = event_new(px->base, -1, 0, on_resume, s);
    s->timeout_ev = evtimer_new(px->base, on_timeout, s);
    s->expiry_ev = evtimer_new(px->base, on_expiry, s);
    dp_http_reader_init(&s->rd, HTTP_REQUEST, &req_cbs, s);
    s->base.destroy = destroy_conn;
    dp_conn_link(px, &s->base);
    dp_stat_inc(&px->st.active_down);
    if (!s->resume_ev || !s->timeout_ev || !s->expiry_ev) {
        destroy(s);
        return;
    }
    bufferevent_setcb(bev, down_read_cb, down_write_cb, down_event_cb, s);
    if (inbound) {
        int64_t ms = px->opts.handshake_timeout_ms;
        struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
                             .tv_usec = (suseconds_t)(ms % 1000) * 1000};
        bufferevent_set_timeouts(bev, &tv, &tv);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
    } else {
        set_idle_timeout(s, true);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
    }
}
