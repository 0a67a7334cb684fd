/* drill/drill_client.c — a minimal asynchronous HTTP/1.1 client for the drill:
 * one keep-alive connection to 127.0.0.1:port, one GET in flight at a time.
 *
 * Written on bufferevents + the sidecar's http-parser glue rather than evhttp so
 * the drill knows exactly what happened to every request: an answer with a
 * status, a timeout, a refused connect or a reset, never a silent library retry.
 * The one retry it does itself is the one every HTTP client does: a GET that hits
 * a keep-alive connection the server closed while idle (no byte of answer) is
 * sent once more on a fresh connection, and counted in stale_retries. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sidecar/http_msg.h"
#include "drill/drill.h"

struct drill_hc {
    struct event_base *base;
    int port;
    char host[64];
    char path[128];
    int timeout_ms;
    size_t body_max;

    struct bufferevent *bev;
    struct event *timer;
    dp_http_reader rd;
    int connected;                    /* the TCP connect completed */
    int reused;                       /* the request went on a connection that served one */
    int served;                       /* answers received on this connection */
    int retried;
    int busy;
    int msg_done;
    int status;
    int keep_alive;
    size_t resp_bytes;
    char *body;
    size_t body_len;
    double sent_at;                   /* CLOCK_MONOTONIC seconds */
    drill_hc_cb cb;
    void *cb_arg;
    uint64_t stale_retries;
};

static void hc_close(drill_hc *c)
{
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    c->connected = 0;
    c->served = 0;
}

static void hc_finish(drill_hc *c, int status, const char *fail)
{
    evtimer_del(c->timer);
    drill_hc_result res = {
        .status = status,
        .fail = fail,
        .body = c->body,
        .body_len = c->body_len,
        .ms = (drill_mono() - c->sent_at) * 1000.0,
    };
    c->body[c->body_len] = '\0';
    c->busy = 0;
    drill_hc_cb cb = c->cb;
    void *arg = c->cb_arg;
    c->cb = NULL;
    if (cb)
        cb(arg, &res);
}

static int hc_send(drill_hc *c);

/* A failure before any byte of the answer on a reused connection: the server may
 * have closed it while idle, so try once on a new connection. */
static void hc_fail(drill_hc *c, const char *why)
{
    hc_close(c);
    if (c->busy && c->reused && c->resp_bytes == 0 && !c->retried) {
        c->retried = 1;
        c->stale_retries++;
        if (hc_send(c) == 0)
            return;
        why = "cannot reconnect";
    }
    if (c->busy)
        hc_finish(c, 0, why);
}

static int on_head(void *arg, dp_http_reader *r)
{
    drill_hc *c = arg;
    c->status = r->head.status;
    c->keep_alive = r->head.keep_alive;
    return 0;
}

static int on_body(void *arg, const char *at, size_t len)
{
    drill_hc *c = arg;
    size_t room = c->body_max - c->body_len;
    size_t n = len < room ? len : room;
    memcpy(c->body + c->body_len, at, n);
    c->body_len += n;
    return 0;
}

static int on_done(void *arg, dp_http_reader *r)
{
    (void)r;
    drill_hc *c = arg;
    c->msg_done = 1;
    dp_http_reader_pause(&c->rd, true);   /* one answer per request: stop right here */
    return 0;
}

static const dp_http_reader_cbs reader_cbs = {on_head, on_body, on_done};

static void hc_complete(drill_hc *c)
{
    int keep = c->keep_alive;
    c->served++;
    dp_http_reader_pause(&c->rd, false);
    if (!keep || evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        hc_close(c);   /* close-delimited, or bytes nobody asked for */
    hc_finish(c, c->status, NULL);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    drill_hc *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (!c->busy) {
        hc_close(c);   /* an answer to no question: do not trust this connection */
        return;
    }
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        int st;
        size_t used = dp_http_reader_feed(&c->rd, v.iov_base, v.iov_len, &st);
        c->resp_bytes += used;
        evbuffer_drain(in, used);
        if (st == DP_HTTP_ERROR) {
            hc_close(c);
            hc_finish(c, 0, "malformed HTTP answer");
            return;
        }
        if (c->msg_done) {
            hc_complete(c);
            return;
        }
        if (used == 0)
            break;
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    drill_hc *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = 1;
        return;
    }
    if (what & BEV_EVENT_EOF) {
        if (c->busy && c->resp_bytes > 0) {
            int st;
            dp_http_reader_feed(&c->rd, NULL, 0, &st);   /* completes a close-delimited body */
            if (c->msg_done) {
                c->keep_alive = 0;
                hc_complete(c);
                return;
            }
        }
        hc_fail(c, c->resp_bytes ? "connection closed mid-answer" : "connection closed");
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        hc_fail(c, c->connected ? "connection reset" : "connection refused");
        return;
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    drill_hc *c = arg;
    hc_close(c);
    if (c->busy)
        hc_finish(c, 0, "timeout");
}

static int hc_send(drill_hc *c)
{
    if (!c->bev) {
        c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev)
            return -1;
        bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        c->connected = 0;
        if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sa, sizeof sa) != 0) {
            hc_close(c);
            return -1;
        }
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        int one = 1;
        if (fd >= 0)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        dp_http_reader_init(&c->rd, HTTP_RESPONSE, &reader_cbs, c);
    }
    c->reused = c->served > 0;
    c->msg_done = 0;
    c->status = 0;
    c->keep_alive = 0;
    c->resp_bytes = 0;
    c->body_len = 0;
    if (evbuffer_add_printf(bufferevent_get_output(c->bev),
                            "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: meshctl-drill\r\n\r\n",
                            c->path, c->host) < 0) {
        hc_close(c);
        return -1;
    }
    return 0;
}

drill_hc *drill_hc_new(struct event_base *base, int port, const char *host, int timeout_ms,
                       size_t body_max)
{
    drill_hc *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base = base;
    c->port = port;
    snprintf(c->host, sizeof c->host, "%s", host);
    c->timeout_ms = timeout_ms;
    c->body_max = body_max;
    c->body = malloc(body_max + 1);
    c->timer = evtimer_new(base, on_timeout, c);
    if (!c->body || !c->timer) {
        drill_hc_free(c);
        return NULL;
    }
    return c;
}

int drill_hc_busy(const drill_hc *c)
{
    return c->busy;
}

int drill_hc_get(drill_hc *c, const char *path, drill_hc_cb cb, void *arg)
{
    if (c->busy)
        return -1;
    snprintf(c->path, sizeof c->path, "%s", path);
    c->retried = 0;
    c->sent_at = drill_mono();
    if (hc_send(c) != 0)
        return -1;
    c->busy = 1;
    c->cb = cb;
    c->cb_arg = arg;
    struct timeval tv = {.tv_sec = c->timeout_ms / 1000, .tv_usec = (c->timeout_ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    return 0;
}

uint64_t drill_hc_stale_retries(const drill_hc *c)
{
    return c->stale_retries;
}

void drill_hc_free(drill_hc *c)
{
    if (!c)
        return;
    hc_close(c);
    if (c->timer)
        event_free(c->timer);
    dp_http_reader_free(&c->rd);
    free(c->body);
    free(c);
}
