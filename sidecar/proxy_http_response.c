/* sidecar/proxy_http_response.c — an HTTP exchange's response side: the
 * attached upstream connection's bytes through the response reader, 1xx
 * skipped (we answered Expect ourselves), a retryable 5xx thrown away for a
 * new attempt, everything else forwarded to the client as it arrives,
 * re-framed for it (Content-Length kept; chunked or close-delimited bodies
 * chunked for HTTP/1.1 clients, close-delimited for HTTP/1.0), with
 * backpressure when the client reads slower than the upstream sends. A
 * complete response returns its connection to the pool when nothing of the
 * request is left unsent. */
#include <stdio.h>

#include "common/log.h"
#include "sidecar/proxy_http.h"

/* The retry budget is asked last: an overflow is only counted for a 5xx
 * that would otherwise have been retried. */
static bool can_retry_5xx(dp_http_session *s)
{
    const dp_http_exchange *x = &s->x;
    return x->attempts_left > 0 && dp_hx_has(x, DP_HX_F_IDEMPOTENT) &&
           dp_hx_has(x, DP_HX_F_REQ_DONE) && dp_http_replay_possible(s) &&
           dp_http_retry_admit(s);
}

/* ---- the response codec's callbacks --------------------------------------------------- */

static int resp_on_head(void *arg, dp_http_reader *r)
{
    dp_http_session *s = arg;
    dp_http_exchange *x = &s->x;
    const dp_http_head *h = &r->head;
    if (h->status >= 100 && h->status < 200) {
        /* 100 Continue and friends: we answered Expect ourselves; drop them.
         * (101 never happens: Upgrade is refused on the way in.) The state
         * stays AWAITING_RESPONSE, which tells resp_on_done what ended. */
        return 0;
    }
    evtimer_del(x->try_ev);     /* the per-try timeout ends with the response head */
    dp_http_record_result(s, h->status);
    if (h->status >= 500 && can_retry_5xx(s)) {
        dp_hx_set(x, DP_HX_F_RETRY_5XX, true);
        return -1;      /* stop parsing this response; it is thrown away */
    }
    x->status = h->status;
    dp_hx_set(x, DP_HX_F_UP_KEEP_ALIVE, h->keep_alive);
    /* Envoy's route timeout covers the whole response: it stays armed. */
    if (dp_http_send_response_head(s, h) != 0 || !dp_http_step(s, DP_HX_EV_RESPONSE_HEAD))
        return -1;
    return dp_hx_has(x, DP_HX_F_HEAD_METHOD) ? 1 : 0;
}

static int resp_on_body(void *arg, const char *at, size_t len)
{
    dp_http_session *s = arg;
    if (s->x.state != DP_HX_STREAMING_RESPONSE)
        return 0;
    return dp_http_send_response_body(s, at, len) == 0 ? 0 : -1;
}

static int resp_on_done(void *arg, dp_http_reader *r)
{
    dp_http_session *s = arg;
    if (s->x.state == DP_HX_AWAITING_RESPONSE)
        return 0;       /* the end of a 1xx: the real response follows */
    dp_http_send_response_end(s);
    /* Nothing after the response is ours. The reader reports it as paused,
     * which is how feed_response knows the response is complete. */
    dp_http_reader_pause(r, true);
    return 0;
}

static const dp_http_reader_cbs resp_cbs = {
    .on_head = resp_on_head, .on_body = resp_on_body, .on_done = resp_on_done,
};

/* ---- feeding it ------------------------------------------------------------------------ */

/* The response is complete: the connection goes back to the pool if it is
 * clean (nothing of the request left to send, the upstream keeps it). */
static void finish_upstream(dp_http_session *s)
{
    dp_http_exchange *x = &s->x;
    bool sent_all = dp_hx_has(x, DP_HX_F_REQ_DONE) && evbuffer_get_length(x->pending) == 0;
    bool reusable = dp_hx_has(x, DP_HX_F_UP_KEEP_ALIVE) && sent_all &&
                    evbuffer_get_length(bufferevent_get_output(x->up->bev)) == 0;
    dp_http_release_attempt(s, reusable);
}

/* Feeds upstream input (or EOF when eof) to the response reader. */
static void feed_response(dp_http_session *s, bool eof)
{
    dp_http_exchange *x = &s->x;
    dp_upconn *uc = x->up;
    struct evbuffer *in = bufferevent_get_input(uc->bev);
    int st = DP_HTTP_OK;
    if (eof) {
        if (x->resp.in_message)
            dp_http_reader_feed(&x->resp, NULL, 0, &st);
    } else {
        while (evbuffer_get_length(in) > 0 && st == DP_HTTP_OK) {
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            size_t n = dp_http_reader_feed(&x->resp, v.iov_base, v.iov_len, &st);
            evbuffer_drain(in, n);
            if (st == DP_HTTP_OK && n < v.iov_len)
                st = DP_HTTP_ERROR;     /* parser stopped early without saying why */
        }
    }
    if (dp_session_dead(&s->base) || x->up != uc)
        return;
    if (dp_hx_has(x, DP_HX_F_RETRY_5XX)) {
        dp_http_retry_5xx(s);
        return;
    }
    if (st == DP_HTTP_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "upstream %s sent a malformed HTTP response: %s",
                 uc->ep->addr, dp_http_reader_error(&x->resp));
        if (!dp_hx_response_started(x->state)) {
            dp_http_record_result(s, 502);
            dp_http_attempt_failed(s, 502, why, false);
        } else {
            log_info(DP_LOG, "%s; resetting the downstream connection", why);
            dp_http_kill(s);
        }
        return;
    }
    if (st == DP_HTTP_PAUSED) {     /* complete (resp_on_done) */
        finish_upstream(s);
        dp_http_step(s, DP_HX_EV_RESPONSE_DONE);
        return;
    }
    /* Backpressure: a slow client must not make us buffer the whole body. */
    if (dp_http_client_backlog(s) > DP_HIGH_WATER) {
        bufferevent_disable(uc->bev, EV_READ);
        dp_hx_set(x, DP_HX_F_UP_READ_PAUSED, true);
    }
}

/* Installed only while the connection is the exchange's (attached): pooling
 * or closing it replaces them, and ops->stop closes it. */
static void up_read_cb(struct bufferevent *bev, void *arg)
{
    feed_response(arg, false);
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
    dp_http_update_down_read(arg);  /* the upstream drained: read more request body */
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    dp_http_session *s = arg;
    dp_upconn *uc = s->x.up;
    if (what & BEV_EVENT_EOF) {
        feed_response(s, true);     /* may complete a close-delimited response */
        if (dp_session_dead(&s->base) || s->x.up != uc)
            return;
    }
    char why[1024], detail[400];
    if (uc->tls && (what & BEV_EVENT_ERROR))
        dp_tls_error_string(bev, detail, sizeof detail);
    else
        snprintf(detail, sizeof detail, "%s", (what & BEV_EVENT_EOF) ? "connection closed"
                                                                     : "connection reset");
    snprintf(why, sizeof why, "upstream connect error or disconnect/reset before headers: %s "
             "(%s, cluster '%s')", detail, uc->ep->addr, uc->ep->cluster);
    if (!dp_hx_response_started(s->x.state)) {
        /* A pooled connection the server had closed is the pool's race, not
         * the host failing (the free retry covers it). */
        if (!dp_hx_has(&s->x, DP_HX_F_REUSED_CONN))
            dp_http_record_result(s, DP_RESULT_CONNECT_FAILED);
        dp_http_attempt_failed(s, 503, why, false);
    } else {
        log_info(DP_LOG, "upstream %s closed mid-response (%s); resetting the downstream "
                 "connection", uc->ep->addr, detail);
        dp_http_kill(s);
    }
}

void dp_http_response_attach(dp_http_session *s, dp_upconn *uc)
{
    dp_http_reader_init(&s->x.resp, HTTP_RESPONSE, &resp_cbs, s);
    bufferevent_setcb(uc->bev, up_read_cb, up_write_cb, up_event_cb, s);
    bufferevent_setwatermark(uc->bev, EV_WRITE, 0, 0);
    bufferevent_enable(uc->bev, EV_READ | EV_WRITE);
}
