/* sidecar/proxy_http.c — HTTP/1.1 sessions, both directions: the downstream
 * connection and the request side.
 *
 * Outbound: plain HTTP from the local app -> route by Host/path/headers ->
 * weighted cluster -> endpoint (LB) -> pooled mTLS connection to the peer
 * sidecar. Inbound: mTLS from a peer sidecar -> RBAC on its SPIFFE ID -> the
 * local app over plain TCP, with x-forwarded-client-cert naming the caller.
 *
 * One exchange (request + response) at a time per downstream connection;
 * pipelined requests wait in the input buffer (the reader pauses after each
 * message). Request bytes are serialised into `pending` as they are parsed
 * and moved to the upstream once it is connected (proxy_http_route.c). This
 * file owns the session's dp_session ops, the request codec, the exchange's
 * state changes (dp_http_step), local replies and keep-alive; accepting,
 * mTLS, expiry and the deferred free are the shared lifecycle
 * (proxy_session.c). Structure and states: proxy_http.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sidecar/http_wire.h"
#include "sidecar/proxy_http.h"

static dp_http_session *hs_of(dp_session *base)
{
    return (dp_http_session *)base;
}

static int dir_index(const dp_http_session *s)
{
    return s->base.inbound ? 1 : 0;
}

static bool method_idempotent(int m)
{
    return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS || m == HTTP_TRACE ||
           m == HTTP_PUT || m == HTTP_DELETE;
}

void dp_http_kill(dp_http_session *s)
{
    dp_session_kill(&s->base);
}

void dp_http_update_down_read(dp_http_session *s)
{
    if (s->base.phase != DP_SESSION_OPEN)
        return;
    dp_http_exchange *x = &s->x;
    /* Not after a failed request, nor while paused after a complete one
     * (its response comes first). */
    bool want = HTTP_PARSER_ERRNO(&s->rd.parser) == HPE_OK;
    size_t queued = evbuffer_get_length(x->pending);
    if (dp_http_upstream_attached(x))
        queued += evbuffer_get_length(bufferevent_get_output(x->up->bev));
    if (queued > DP_HIGH_WATER)
        want = false;
    if (want)
        bufferevent_enable(s->base.down, EV_READ);
    else
        bufferevent_disable(s->base.down, EV_READ);
}

static void set_idle_timeout(dp_http_session *s, bool idle)
{
    if (idle) {
        struct timeval tv = dp_timeval_ms(s->base.px->opts.idle_timeout_ms);
        bufferevent_set_timeouts(s->base.down, &tv, NULL);
    } else {
        bufferevent_set_timeouts(s->base.down, NULL, NULL);
    }
}

/* Back to IDLE: what the exchange held goes, flags included (a reply to a
 * next head that does not parse is framed for no request in particular:
 * HTTP/1.1, a body, connection: close). */
static void reset_exchange(dp_http_session *s)
{
    dp_http_exchange *x = &s->x;
    dp_http_release_attempt(s, false);
    if (x->timeout_ev)
        evtimer_del(x->timeout_ev);
    if (dp_hx_has(x, DP_HX_F_RQ_COUNTED) && x->load && x->load->rq_active > 0)
        x->load->rq_active--;   /* before act, which holds the load */
    x->load = NULL;
    dp_active_unref(s->base.px, x->act);
    x->act = NULL;
    x->cluster = NULL;
    if (x->replay) {
        evbuffer_free(x->replay);
        x->replay = NULL;
    }
    if (x->pending)
        evbuffer_drain(x->pending, evbuffer_get_length(x->pending));
    x->state = DP_HX_IDLE;
    x->flags = 0;
    x->status = 0;
    x->attempts_left = 0;
    x->n_tried = 0;
    x->other_hosts = false;
    x->per_try_ms = 0;
    x->start_us = x->start_mono_us = 0;
    x->bytes_in = x->bytes_out = 0;
    x->route_name = NULL;
    x->attempts = 0;
    x->last_host[0] = x->last_peer[0] = '\0';
}

/* ---- the exchange's state changes ---------------------------------------------------- */

/* Entry into IDLE from an exchange: keep-alive or close. (It was counted
 * when its response was done: a connection that closes while the rest of
 * a request is drained never comes back here.) */
static void end_exchange(dp_http_session *s)
{
    dp_http_exchange *x = &s->x;
    bool keep = dp_hx_has(x, DP_HX_F_KEEP_ALIVE) && s->base.phase == DP_SESSION_OPEN;
    reset_exchange(s);
    if (!keep) {
        dp_session_close_after_flush(&s->base);
        return;
    }
    set_idle_timeout(s, true);
    dp_http_reader_pause(&s->rd, false);
    /* Deferred, not recursive: a burst of pipelined requests answered
     * locally must not grow the stack. */
    event_active(s->resume_ev, 0, 0);
}

bool dp_http_step(dp_http_session *s, dp_hx_event ev)
{
    dp_http_exchange *x = &s->x;
    dp_hx_state from = x->state;
    dp_hx_state to = dp_hx_next(from, ev, dp_hx_has(x, DP_HX_F_REQ_DONE));
    if (to == DP_HX_INVALID) {
        log_error(DP_LOG, "%s '%s': internal error: HTTP exchange %s got %s; resetting the "
                  "connection", s->base.inbound ? "inbound" : "outbound", s->base.listener,
                  dp_hx_state_name(from), dp_hx_event_name(ev));
        dp_http_kill(s);
        return false;
    }
    x->state = to;
    if (ev == DP_HX_EV_RESPONSE_DONE) {
        dp_stat_inc(&s->base.px->st.rq_by_class[dir_index(s)][dp_code_class(x->status)]);
        dp_http_observe(s);
    }
    switch (to) {
    case DP_HX_IDLE:            /* only ever entered by the end of an exchange */
        end_exchange(s);
        break;
    case DP_HX_DRAINING_REQUEST:
        /* The upstream is gone or never came: nothing queued is sent. */
        evbuffer_drain(x->pending, evbuffer_get_length(x->pending));
        break;
    default:
        break;
    }
    return !dp_session_dead(&s->base);
}

void dp_http_local_reply(dp_http_session *s, int code, bool force_close, const char *fmt, ...)
{
    dp_http_exchange *x = &s->x;
    if (dp_session_dead(&s->base))
        return;
    if (dp_hx_response_started(x->state)) {
        dp_http_kill(s);    /* a response is half sent: only a reset is left */
        return;
    }
    char body[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    dp_http_release_attempt(s, false);
    evtimer_del(x->timeout_ev);
    if (force_close)
        dp_hx_set(x, DP_HX_F_KEEP_ALIVE, false);
    dp_wire_local_reply_ex(bufferevent_get_output(s->base.down), code, body,
                           dp_hx_has(x, DP_HX_F_HEAD_METHOD), dp_hx_has(x, DP_HX_F_KEEP_ALIVE),
                           dp_hx_has(x, DP_HX_F_HTTP10), x->request_id,
                           dp_hx_has(x, DP_HX_F_OVERLOADED) ? "x-envoy-overloaded: true" : NULL);
    log_debug(DP_LOG, "%s %s local reply %d: %s", s->base.inbound ? "inbound" : "outbound",
              s->base.listener, code, body);
    x->status = code;
    if (!dp_http_step(s, DP_HX_EV_RESPONSE_DONE))
        return;
    /* Answered before the request ended and no keep-alive: the rest of the
     * request is not worth reading. */
    if (x->state == DP_HX_DRAINING_REQUEST && !dp_hx_has(x, DP_HX_F_KEEP_ALIVE))
        dp_session_close_after_flush(&s->base);
}

/* ---- the response, written for the client ------------------------------------------------ */

const dp_http_head *dp_http_request_head(const dp_http_session *s)
{
    return &s->rd.head;
}

/* Framing is chosen for the client: Content-Length kept, otherwise chunked
 * for HTTP/1.1 and close-delimited for HTTP/1.0 (which ends keep-alive). */
int dp_http_send_response_head(dp_http_session *s, const dp_http_head *h)
{
    dp_http_exchange *x = &s->x;
    bool keep_alive = dp_hx_has(x, DP_HX_F_KEEP_ALIVE), chunked = false;
    int rc = dp_wire_response_head(bufferevent_get_output(s->base.down), h,
                                   dp_hx_has(x, DP_HX_F_HEAD_METHOD),
                                   dp_hx_has(x, DP_HX_F_HTTP10), &keep_alive, &chunked);
    dp_hx_set(x, DP_HX_F_KEEP_ALIVE, keep_alive);
    dp_hx_set(x, DP_HX_F_RESP_CHUNKED, chunked);
    return rc;
}

int dp_http_send_response_body(dp_http_session *s, const char *at, size_t len)
{
    s->x.bytes_out += len;
    struct evbuffer *out = bufferevent_get_output(s->base.down);
    return dp_hx_has(&s->x, DP_HX_F_RESP_CHUNKED) ? dp_wire_chunk(out, at, len)
                                                   : evbuffer_add(out, at, len);
}

void dp_http_send_response_end(dp_http_session *s)
{
    if (dp_hx_has(&s->x, DP_HX_F_RESP_CHUNKED))
        dp_wire_chunk(bufferevent_get_output(s->base.down), NULL, 0);
}

size_t dp_http_client_backlog(const dp_http_session *s)
{
    return evbuffer_get_length(bufferevent_get_output(s->base.down));
}

/* ---- the request codec (HTTP/1.1 via http-parser) ---------------------------------------- */

/* The head as the next hop gets it fits the limits there: the outbound
 * side keeps room for what the inbound side adds (XFCC), so that a head one
 * sidecar forwards is never refused by the next. false after a 431. */
static bool forwarded_head_fits(dp_http_session *s, int lines)
{
    bool outbound = !s->base.inbound;
    size_t bytes = evbuffer_get_length(s->x.pending);
    size_t room_lines = outbound ? DP_WIRE_INBOUND_ADDED_FIELDS : 0;
    size_t room_bytes = outbound ? DP_WIRE_XFCC_LINE_MAX : 0;
    const char *added = outbound ? "x-request-id and x-forwarded-proto here, "
                                   "x-forwarded-client-cert at the next hop"
                                 : "x-request-id, x-forwarded-proto and x-forwarded-client-cert";
    if ((size_t)lines + room_lines > DP_HTTP_MAX_HEADERS) {
        dp_hx_set(&s->x, DP_HX_F_REQ_DONE, true);  /* the connection closes: no body is read */
        dp_http_local_reply(s, 431, true, "request header fields too large: %d header fields "
                            "once the mesh adds its own (%s); the limit is %d per hop",
                            lines + (int)room_lines, added, DP_HTTP_MAX_HEADERS);
        return false;
    }
    if (bytes + room_bytes > DP_HTTP_MAX_HEAD) {
        dp_hx_set(&s->x, DP_HX_F_REQ_DONE, true);
        dp_http_local_reply(s, 431, true, "request header fields too large: a %zu-byte head "
                            "once the mesh adds its own (%s); the limit is %d bytes per hop",
                            bytes + room_bytes, added, DP_HTTP_MAX_HEAD);
        return false;
    }
    return true;
}

static int req_on_head(void *arg, dp_http_reader *r)
{
    dp_http_session *s = arg;
    dp_http_exchange *x = &s->x;
    const dp_http_head *h = &r->head;
    evtimer_del(s->head_ev);
    if (!dp_http_step(s, DP_HX_EV_REQUEST_HEAD))
        return -1;
    dp_http_observe_start(x);
    dp_hx_set(x, DP_HX_F_KEEP_ALIVE, h->keep_alive);
    dp_hx_set(x, DP_HX_F_HTTP10, h->major == 1 && h->minor == 0);
    dp_hx_set(x, DP_HX_F_HEAD_METHOD, h->method == HTTP_HEAD);
    dp_hx_set(x, DP_HX_F_IDEMPOTENT, method_idempotent(h->method));
    set_idle_timeout(s, false);
    if (!dp_wire_client_request_id(h, x->request_id, sizeof x->request_id))
        dp_wire_request_id(&s->base.px->rng, x->request_id);
    if (h->upgrade || h->method == HTTP_CONNECT) {
        dp_hx_set(x, DP_HX_F_REQ_DONE, true);   /* what follows is not HTTP: never parse it */
        dp_http_local_reply(s, 501, true, "protocol upgrades and CONNECT are not supported by "
                            "the mesh sidecar");
        return -1;
    }
    if (!dp_http_head_find(h, "host")) {
        dp_hx_set(x, DP_HX_F_REQ_DONE, true);   /* the connection closes: the body is never read */
        dp_http_local_reply(s, 400, true, "request has no Host header");
        return -1;
    }
    size_t ul;
    const char *url = dp_http_head_url(h, &ul);
    bool origin_form = ul > 0 && url[0] == '/';
    bool asterisk = h->method == HTTP_OPTIONS && ul == 1 && url[0] == '*';
    if (!origin_form && !asterisk) {
        /* Routing is by Host; an absolute URI names an authority of its own
         * that the application would take instead (RFC 9112 3.2.2). */
        dp_hx_set(x, DP_HX_F_REQ_DONE, true);
        dp_http_local_reply(s, 400, true, "request target '%.*s' is not a path: the mesh "
                            "sidecar is not a forward proxy (send 'GET /path' with a Host "
                            "header)", (int)(ul > 100 ? 100 : ul), url);
        return -1;
    }
    dp_wire_req_opts o = {
        .inbound = s->base.inbound,
        .request_id = x->request_id,
        .own_id = s->base.own_id,
        .peer_id = s->base.peer_id,
    };
    int lines = dp_wire_request_head(x->pending, h, &o);
    if (lines < 0)
        return -1;
    if (!forwarded_head_fits(s, lines))
        return -1;
    if (dp_http_head_has_token(h, "expect", "100-continue") && !dp_hx_has(x, DP_HX_F_HTTP10))
        evbuffer_add(bufferevent_get_output(s->base.down), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

static int req_on_body(void *arg, const char *at, size_t len)
{
    dp_http_session *s = arg;
    s->x.bytes_in += len;
    if (s->x.state == DP_HX_DRAINING_REQUEST)
        return 0;
    int rc = s->rd.head.chunked ? dp_wire_chunk(s->x.pending, at, len)
                                : evbuffer_add(s->x.pending, at, len);
    return rc == 0 ? 0 : -1;
}

static int req_on_done(void *arg, dp_http_reader *r)
{
    dp_http_session *s = arg;
    if (s->x.state != DP_HX_DRAINING_REQUEST && r->head.chunked)
        dp_wire_chunk(s->x.pending, NULL, 0);
    /* A flag, stepped on after the feed (process_input): the exchange may end
     * then, which must not happen inside the parser. */
    dp_hx_set(&s->x, DP_HX_F_REQ_DONE, true);
    dp_http_reader_pause(r, true);      /* one exchange at a time */
    return 0;
}

static const dp_http_reader_cbs req_cbs = {
    .on_head = req_on_head, .on_body = req_on_body, .on_done = req_on_done,
};

/* The request did not parse or broke a rule (the reader says which status). */
static void request_error(dp_http_session *s)
{
    dp_http_exchange *x = &s->x;
    const char *why = dp_http_reader_error(&s->rd);
    dp_hx_set(x, DP_HX_F_REQ_DONE, true);   /* nothing more of it is read */
    if (x->state == DP_HX_DRAINING_REQUEST) {
        /* Its response is complete: close once the client has it. */
        dp_session_close_after_flush(&s->base);
        return;
    }
    if (dp_hx_response_started(x->state)) {
        /* A response is streaming: let it finish, then close. The upstream
         * got part of a request, so its connection is never pooled. */
        log_info(DP_LOG, "%s '%s': request %s: malformed body (%s); closing after the "
                 "response", s->base.inbound ? "inbound" : "outbound", s->base.listener,
                 x->request_id, why);
        dp_hx_set(x, DP_HX_F_KEEP_ALIVE, false);
        dp_hx_set(x, DP_HX_F_UP_KEEP_ALIVE, false);
        evbuffer_drain(x->pending, evbuffer_get_length(x->pending));
        return;
    }
    if (x->state == DP_HX_IDLE)     /* no head: the reply is its own exchange */
        dp_wire_request_id(&s->base.px->rng, x->request_id);
    int code = dp_http_reader_error_status(&s->rd);
    log_debug(DP_LOG, "%s '%s': refusing a request: %s", s->base.inbound ? "inbound" : "outbound",
              s->base.listener, why);
    dp_http_local_reply(s, code, true, "%s: %s", code == 400 ? "bad request" : http_status_str(
                        (enum http_status)code), why);
}

/* The head did not complete in time (slowloris): 408, then close. */
static void on_head_timeout(evutil_socket_t fd, short what, void *arg)
{
    dp_http_session *s = arg;
    dp_http_exchange *x = &s->x;
    if (s->base.phase != DP_SESSION_OPEN || x->state != DP_HX_IDLE)
        return;
    int64_t ms = s->base.px->opts.request_headers_timeout_ms;
    log_info(DP_LOG, "%s '%s': request head not complete after %lld ms; answering 408",
             s->base.inbound ? "inbound" : "outbound", s->base.listener, (long long)ms);
    dp_hx_set(x, DP_HX_F_REQ_DONE, true);
    dp_wire_request_id(&s->base.px->rng, x->request_id);
    dp_http_local_reply(s, 408, true, "request timeout: the request head was not complete "
                        "within %lld ms", (long long)ms);
}

/* A request head has begun (its first byte after any empty lines) and is
 * not complete: its deadline runs from then, however slowly the rest
 * trickles in. Empty lines alone are only an idle connection. */
static void arm_head_deadline(dp_http_session *s)
{
    if (s->x.state != DP_HX_IDLE || !s->rd.in_message || evtimer_pending(s->head_ev, NULL))
        return;
    dp_timer_ms(s->head_ev, s->base.px->opts.request_headers_timeout_ms);
}

static void process_input(dp_http_session *s)
{
    if (s->base.phase != DP_SESSION_OPEN)
        return;
    dp_http_exchange *x = &s->x;
    struct evbuffer *in = bufferevent_get_input(s->base.down);
    while (evbuffer_get_length(in) > 0 && HTTP_PARSER_ERRNO(&s->rd.parser) != HPE_PAUSED) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        int st;
        size_t n = dp_http_reader_feed(&s->rd, v.iov_base, v.iov_len, &st);
        evbuffer_drain(in, n);
        if (s->base.phase != DP_SESSION_OPEN)     /* killed, or closing after a reply */
            return;
        if (st == DP_HTTP_ERROR) {
            request_error(s);
            return;
        }
        arm_head_deadline(s);
        if (x->state == DP_HX_ROUTING) {
            dp_http_route(s);
            if (dp_session_dead(&s->base))
                return;
        }
    }
    dp_http_flush_request(s);
    if (x->state == DP_HX_DRAINING_REQUEST && dp_hx_has(x, DP_HX_F_REQ_DONE) &&
        !dp_http_step(s, DP_HX_EV_REQUEST_DONE))
        return;
    dp_http_update_down_read(s);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    process_input(arg);
}

/* ---- session ops ----------------------------------------------------------------------- */

static int http_init(dp_session *base)
{
    dp_http_session *s = hs_of(base);
    struct event_base *evb = base->px->base;
    s->x.pending = evbuffer_new();
    s->resume_ev = event_new(evb, -1, 0, on_resume, s);
    s->x.timeout_ev = evtimer_new(evb, dp_http_on_timeout, s);
    s->x.try_ev = evtimer_new(evb, dp_http_on_try_timeout, s);
    s->head_ev = evtimer_new(evb, on_head_timeout, s);
    dp_http_reader_init(&s->rd, HTTP_REQUEST, &req_cbs, s);
    if (!s->x.pending || !s->resume_ev || !s->x.timeout_ev || !s->x.try_ev || !s->head_ev)
        return MESH_ENOMEM;
    return MESH_OK;
}

static void http_open(dp_session *base)
{
    dp_http_session *s = hs_of(base);
    set_idle_timeout(s, true);
    bufferevent_enable(base->down, EV_READ | EV_WRITE);
    process_input(s);
}

static void http_on_read(dp_session *base)
{
    process_input(hs_of(base));
}

static void http_on_write(dp_session *base)
{
    dp_http_session *s = hs_of(base);
    dp_http_exchange *x = &s->x;
    /* Deferred callbacks can run after more output was queued: look at the
     * buffer, not at the fact that we were called. */
    if (evbuffer_get_length(bufferevent_get_output(base->down)) > DP_LOW_WATER)
        return;
    if (dp_hx_has(x, DP_HX_F_UP_READ_PAUSED) && x->up) {
        dp_hx_set(x, DP_HX_F_UP_READ_PAUSED, false);
        bufferevent_enable(x->up->bev, EV_READ);
    }
}

static void http_on_event(dp_session *base, short what)
{
    dp_http_session *s = hs_of(base);
    dp_http_exchange *x = &s->x;
    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && dp_hx_in_flight(x->state) &&
        dp_hx_has(x, DP_HX_F_REQ_DONE)) {
        /* Half-close after a complete request: answer, then close. */
        dp_hx_set(x, DP_HX_F_KEEP_ALIVE, false);
        bufferevent_disable(base->down, EV_READ);
        return;
    }
    dp_http_kill(s);
}

static void http_stop(dp_session *base)
{
    dp_http_session *s = hs_of(base);
    dp_http_release_attempt(s, false);
    evtimer_del(s->x.timeout_ev);
    evtimer_del(s->head_ev);
    event_del(s->resume_ev);
}

static void http_release(dp_session *base)
{
    dp_http_session *s = hs_of(base);
    if (dp_hx_in_flight(s->x.state)) {  /* no response: counted as a reset */
        dp_stat_inc(&base->px->st.rq_by_class[dir_index(s)][0]);
        s->x.status = 0;
        dp_http_observe(s);
    }
    reset_exchange(s);
    if (s->resume_ev)
        event_free(s->resume_ev);
    if (s->x.timeout_ev)
        event_free(s->x.timeout_ev);
    if (s->x.try_ev)
        event_free(s->x.try_ev);
    if (s->head_ev)
        event_free(s->head_ev);
    if (s->x.pending)
        evbuffer_free(s->x.pending);
    dp_http_reader_free(&s->rd);
    dp_http_reader_free(&s->x.resp);
}

const dp_session_ops dp_http_session_ops = {
    .log_name = "inbound",
    .size = sizeof(dp_http_session),
    .init = http_init,
    .open = http_open,
    .on_read = http_on_read,
    .on_write = http_on_write,
    .on_event = http_on_event,
    .stop = http_stop,
    .release = http_release,
    .linger_on_close = true,
};
