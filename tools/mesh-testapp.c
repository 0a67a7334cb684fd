/* tools/mesh-testapp.c — a small backend for e2e tests, the demo and benchmarks.
 *
 *   mesh-testapp --listen 127.0.0.1:PORT --name NAME [--tcp-echo]
 *                [--health-path PATH --health-fail-file FILE] [--hang-file FILE]
 *
 * HTTP mode answers every request with 200 and a JSON body echoing what the
 * app saw, including the caller identity the sidecar put in
 * x-forwarded-client-cert:
 *   {"app":"NAME","method":"GET","path":"/x","host":"...","xfcc":"By=...;URI=...",
 *    "request_id":"...","body_bytes":0}
 *   /status/NNN  answers with status NNN (same body)
 *   /delay/MS    answers after MS milliseconds (at most 60 s)
 *   /headers     also lists every header field line it got, in order:
 *                "headers":[["Name","value"],...] (hostile-input tests)
 *   /bad-response/KIND  answers with a response that breaks RFC 9112 on
 *                purpose (KIND: dup-length, length-and-chunked,
 *                space-before-colon, obs-fold, bare-lf, http-9.9, gzip):
 *                what a sidecar must refuse from an upstream
 * --health-path PATH answers PATH (exactly) with 503 while FILE exists and
 * 200 otherwise, so that a test fails an app's health check (and only it:
 * every other path still answers normally) by creating a file.
 * --hang-file FILE: while FILE exists, requests are read and never answered
 * (a hung backend, for per-try timeout tests).
 * --tcp-echo echoes bytes back instead. Port 0 picks a free port; the bound
 * address is printed on stdout as "listening 127.0.0.1:PORT" either way.
 * HTTP parsing reuses the sidecar's http-parser glue (keep-alive, pipelining,
 * chunked bodies). SIGINT/SIGTERM stop it cleanly. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json_out.h"
#include "common/log.h"
#include "sidecar/dp_addr.h"
#include "sidecar/http_msg.h"
#include "common/version.h"

typedef struct conn conn;

typedef struct app {
    struct event_base *base;
    const char *name;
    bool tcp_echo;
    const char *health_path, *health_fail_file, *hang_file;
    conn *conns;                /* open connections, freed at exit */
} app;

struct conn {
    app *a;
    conn *prev, *next;
    struct bufferevent *bev;
    dp_http_reader rd;
    struct event *delay_ev;
    bool waiting;               /* a delayed response is pending */
    bool keep_alive;
    int status;
    uint64_t body_bytes;
    json_out body;
};

static void conn_free(conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->delay_ev)
        event_free(c->delay_ev);
    bufferevent_free(c->bev);
    dp_http_reader_free(&c->rd);
    json_free(&c->body);
    free(c);
}

static void header_json(json_out *j, const dp_http_head *h, const char *key, const char *name)
{
    const dp_http_header *x = dp_http_head_find(h, name);
    if (!x) {
        json_key_str(j, key, "");
        return;
    }
    char *v = strndup(x->value, x->value_len);
    json_key_str(j, key, v ? v : "");
    free(v);
}

static void all_headers_json(json_out *j, const dp_http_head *h)
{
    json_key(j, "headers");
    json_arr_begin(j);
    for (size_t i = 0; i < h->n; i++) {
        char *n = strndup(h->view[i].name, h->view[i].name_len);
        char *v = strndup(h->view[i].value, h->view[i].value_len);
        json_arr_begin(j);
        json_str(j, n ? n : "");
        json_str(j, v ? v : "");
        json_arr_end(j);
        free(n);
        free(v);
    }
    json_arr_end(j);
}

static int on_head(void *arg, dp_http_reader *r)
{
    conn *c = arg;
    const dp_http_head *h = &r->head;
    size_t ul;
    const char *url = dp_http_head_url(h, &ul);
    char *path = strndup(url, ul);
    if (!path)
        return -1;
    c->status = 200;
    if (strncmp(path, "/status/", 8) == 0) {
        int st = atoi(path + 8);
        if (st >= 200 && st <= 599)
            c->status = st;
    }
    if (c->a->health_path && strcmp(path, c->a->health_path) == 0 && c->a->health_fail_file &&
        access(c->a->health_fail_file, F_OK) == 0)
        c->status = 503;
    c->keep_alive = h->keep_alive;
    c->body_bytes = 0;
    json_free(&c->body);
    json_init(&c->body);
    json_obj_begin(&c->body);
    json_key_str(&c->body, "app", c->a->name);
    json_key_str(&c->body, "method", http_method_str((enum http_method)h->method));
    json_key_str(&c->body, "path", path);
    header_json(&c->body, h, "host", "host");
    header_json(&c->body, h, "xfcc", "x-forwarded-client-cert");
    header_json(&c->body, h, "request_id", "x-request-id");
    if (strncmp(path, "/headers", 8) == 0)
        all_headers_json(&c->body, h);
    free(path);
    return 0;
}

static int on_body(void *arg, const char *at, size_t len)
{
    ((conn *)arg)->body_bytes += len;
    return 0;
}

static void respond(conn *c)
{
    json_key_int(&c->body, "body_bytes", (int64_t)c->body_bytes);
    json_obj_end(&c->body);
    const char *t = json_text(&c->body);
    if (!t)
        t = "{}";
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                        "content-length: %zu\r\n%s\r\n%s\n", c->status,
                        http_status_str((enum http_status)c->status), strlen(t) + 1,
                        c->keep_alive ? "" : "connection: close\r\n", t);
}

/* The hostile upstream of /bad-response/KIND; false for an unknown kind. */
static bool bad_response(conn *c, const char *kind, size_t len)
{
    static const struct {
        const char *kind, *text;
    } bad[] = {
        {"dup-length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"},
        {"length-and-chunked", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"space-before-colon", "HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc"},
        {"obs-fold", "HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n"},
        {"bare-lf", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
        {"http-9.9", "HTTP/9.9 200 OK\r\nContent-Length: 0\r\n\r\n"},
        {"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\nxyz"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (strlen(bad[i].kind) == len && strncmp(bad[i].kind, kind, len) == 0) {
            evbuffer_add(bufferevent_get_output(c->bev), bad[i].text, strlen(bad[i].text));
            c->keep_alive = false;      /* what follows is anyone's guess */
            return true;
        }
    }
    return false;
}

static int on_done(void *arg, dp_http_reader *r)
{
    conn *c = arg;
    size_t ul;
    const char *url = dp_http_head_url(&r->head, &ul);
    dp_http_reader_pause(r, true);
    if (c->a->hang_file && access(c->a->hang_file, F_OK) == 0) {
        c->waiting = true;      /* never answered: the connection hangs until closed */
        return 0;
    }
    if (ul > 7 && strncmp(url, "/delay/", 7) == 0) {
        long ms = strtol(url + 7, NULL, 10);
        if (ms < 0)
            ms = 0;
        if (ms > 60000)
            ms = 60000;
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        c->waiting = true;
        evtimer_add(c->delay_ev, &tv);
        return 0;
    }
    if (ul > 14 && strncmp(url, "/bad-response/", 14) == 0 &&
        bad_response(c, url + 14, ul - 14))
        return 0;
    respond(c);
    return 0;
}

static const dp_http_reader_cbs cbs = {.on_head = on_head, .on_body = on_body, .on_done = on_done};

static void process(conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (!c->waiting && evbuffer_get_length(in) > 0) {
        if (HTTP_PARSER_ERRNO(&c->rd.parser) == HPE_PAUSED) {
            if (!c->keep_alive)
                break;
            dp_http_reader_pause(&c->rd, false);
        }
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        int st;
        size_t n = dp_http_reader_feed(&c->rd, v.iov_base, v.iov_len, &st);
        evbuffer_drain(in, n);
        if (st == DP_HTTP_ERROR) {
            evbuffer_add_printf(bufferevent_get_output(c->bev),
                                "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n"
                                "connection: close\r\n\r\n");
            c->keep_alive = false;
            break;
        }
    }
    if (!c->waiting && !c->keep_alive && HTTP_PARSER_ERRNO(&c->rd.parser) != HPE_OK) {
        bufferevent_disable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            conn_free(c);
    }
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    c->waiting = false;
    respond(c);
    process(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    if (c->a->tcp_echo) {
        evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
        return;
    }
    process(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    if (!c->a->tcp_echo && !c->waiting && !c->keep_alive &&
        HTTP_PARSER_ERRNO(&c->rd.parser) != HPE_OK &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);   /* the last response has been written: close */
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    conn_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    app *a = arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->a = a;
    c->bev = bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->delay_ev = evtimer_new(a->base, on_delay, c);
    json_init(&c->body);
    if (!c->bev || !c->delay_ev) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        if (c->delay_ev)
            event_free(c->delay_ev);
        free(c);
        return;
    }
    dp_http_reader_init(&c->rd, HTTP_REQUEST, &cbs, c);
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopexit(arg, NULL);
}

static void usage(void)
{
    fprintf(stderr, "usage: mesh-testapp --listen IP:PORT --name NAME [--tcp-echo] "
            "[--health-path PATH --health-fail-file FILE] [--hang-file FILE]\n");
}

int main(int argc, char **argv)
{
    const char *listen = NULL;
    app a = {.name = "testapp"};
    if (mesh_version_flag(argc, argv, "mesh-testapp", stdout))
        return 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
            a.name = argv[++i];
        } else if (strcmp(argv[i], "--health-path") == 0 && i + 1 < argc) {
            a.health_path = argv[++i];
        } else if (strcmp(argv[i], "--health-fail-file") == 0 && i + 1 < argc) {
            a.health_fail_file = argv[++i];
        } else if (strcmp(argv[i], "--hang-file") == 0 && i + 1 < argc) {
            a.hang_file = argv[++i];
        } else if (strcmp(argv[i], "--tcp-echo") == 0) {
            a.tcp_echo = true;
        } else {
            usage();
            return 2;
        }
    }
    if (!listen) {
        usage();
        return 2;
    }
    struct sockaddr_storage sa;
    socklen_t sl;
    mesh_err err;
    if (dp_addr_parse(listen, true, &sa, &sl, &err) != MESH_OK) {
        fprintf(stderr, "mesh-testapp: --listen: %s\n", err.msg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    a.base = event_base_new();
    if (!a.base) {
        fprintf(stderr, "mesh-testapp: cannot create the event loop\n");
        return 1;
    }
    struct evconnlistener *l = evconnlistener_new_bind(
        a.base, on_accept, &a, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        512, (struct sockaddr *)&sa, (int)sl);
    if (!l) {
        fprintf(stderr, "mesh-testapp: cannot listen on %s: %s\n", listen,
                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        event_base_free(a.base);
        return 1;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    char addr[80] = "?";
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &bl) == 0)
        dp_addr_format((struct sockaddr *)&bound, addr, sizeof addr);
    printf("listening %s\n", addr);
    fflush(stdout);
    log_info("testapp", "%s serving %s on %s", a.name, a.tcp_echo ? "tcp echo" : "http", addr);
    struct event *sigint = evsignal_new(a.base, SIGINT, on_signal, a.base);
    struct event *sigterm = evsignal_new(a.base, SIGTERM, on_signal, a.base);
    if (sigint)
        event_add(sigint, NULL);
    if (sigterm)
        event_add(sigterm, NULL);
    event_base_dispatch(a.base);
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    evconnlistener_free(l);
    while (a.conns)
        conn_free(a.conns);
    event_base_free(a.base);
    return 0;
}
