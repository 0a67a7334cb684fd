/* tests/unit/test_sidecar_http_session.c — the HTTP session's phases and
 * lifecycle without sockets: a real dp_http_session over a bufferevent pair,
 * with a config snapshot that routes nowhere, so every request ends in a
 * local reply. Covers keep-alive, pipelining in order, a request body that
 * keeps arriving after the reply (DRAINING_REQUEST), close-after-flush,
 * malformed input, and that every session is freed. The proxied paths
 * (upstream attempts, streaming, retries) need sockets and live in
 * test_sidecar_proxy.c. */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sidecar/proxy_http.h"

typedef struct rig {
    cert_pool *pool;
    dp_proxy *px;
    struct bufferevent *client;
    dp_http_session *s;         /* valid while the session lives */
} rig;

/* listener "out" -> route table "rt": "/" goes to a cluster that does not
 * exist (503); listener "bare" names a route table never received (404). */
static dp_config *config(void)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    dp_listener out = {.name = "out", .address = "127.0.0.1:0",
                       .kind = DP_LISTENER_OUTBOUND_HTTP, .route_table = "rt"};
    dp_listener bare = {.name = "bare", .address = "127.0.0.1:1",
                        .kind = DP_LISTENER_OUTBOUND_HTTP, .route_table = "absent"};
    cr_assert_eq(dp_config_add_listener(c, &out, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_config_add_listener(c, &bare, &e), MESH_OK, "%s", e.msg);
    dp_weighted_cluster nowhere = {.cluster = "nowhere", .weight = 1};
    dp_route route = {.path_kind = DP_PATH_PREFIX, .path = "/", .clusters = &nowhere,
                      .n_clusters = 1};
    char *any[] = {"*"};
    dp_virtual_host vh = {.name = "all", .domains = any, .n_domains = 1, .routes = &route,
                          .n_routes = 1};
    dp_route_table rt = {.name = "rt", .vhosts = &vh, .n_vhosts = 1};
    cr_assert_eq(dp_config_add_route_table(c, &rt, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_config_freeze(c, &e), MESH_OK, "%s", e.msg);
    return c;
}

/* The client closes: a pair's partner sees EOF only after a BEV_FINISHED
 * flush (freeing one side alone just unlinks it). */
static void hang_up(struct bufferevent *client)
{
    bufferevent_flush(client, EV_WRITE, BEV_FINISHED);
    bufferevent_free(client);
}

static void spin(rig *r)
{
    for (int i = 0; i < 10; i++)
        event_base_loop(r->px->base, EVLOOP_NONBLOCK);
}

/* Runs the loop for about ms of wall time (timers fire). */
static void run_for(rig *r, int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        event_base_loop(r->px->base, EVLOOP_NONBLOCK);
        usleep(2000);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

/* A data plane whose loop the test runs, with the snapshot in use but no
 * listener bound (nothing here opens a socket). Timeouts in ms, 0: default. */
static void rig_up_timeouts(rig *r, const char *listener, bool with_config, int64_t head_ms,
                            int64_t idle_ms)
{
    memset(r, 0, sizeof *r);
    mesh_err e;
    cr_assert_eq(cert_pool_new(&r->pool, &e), MESH_OK);
    dp_proxy_opts o = {.pool = r->pool, .rng_seed = 7, .request_headers_timeout_ms = head_ms,
                       .idle_timeout_ms = idle_ms};
    cr_assert_eq(dp_proxy_new(&o, &r->px, &e), MESH_OK, "%s", e.msg);
    if (with_config) {
        dp_config *c = config();
        cr_assert_eq(dp_active_build(r->px, c, &r->px->active, &e), MESH_OK, "%s", e.msg);
        dp_config_unref(c);
    }
    struct bufferevent *pair[2];
    cr_assert_eq(bufferevent_pair_new(r->px->base, BEV_OPT_CLOSE_ON_FREE |
                                                       BEV_OPT_DEFER_CALLBACKS, pair), 0);
    r->client = pair[1];
    bufferevent_enable(r->client, EV_READ | EV_WRITE);
    r->s = (dp_http_session *)dp_session_start(r->px, listener, false, pair[0],
                                               &dp_http_session_ops);
    cr_assert_not_null(r->s);
}

static void rig_up(rig *r, const char *listener, bool with_config)
{
    rig_up_timeouts(r, listener, with_config, 0, 0);
}

static void rig_down(rig *r)
{
    if (r->client)
        bufferevent_free(r->client);
    spin(r);
    dp_proxy_free(r->px);
    cert_pool_free(r->pool);
}

static void send_str(rig *r, const char *data)
{
    bufferevent_write(r->client, data, strlen(data));
    spin(r);
}

/* Everything the client received so far (malloc'd, NUL-terminated). */
static char *received(rig *r)
{
    struct evbuffer *in = bufferevent_get_input(r->client);
    size_t n = evbuffer_get_length(in);
    char *s = malloc(n + 1);
    evbuffer_remove(in, s, n);
    s[n] = '\0';
    return s;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static dp_stats_view stats(rig *r)
{
    dp_stats_view v;
    dp_proxy_get_stats(r->px, &v);
    return v;
}

/* The session is gone: freed, not only killed. */
static bool freed(rig *r)
{
    return !r->px->sessions.live && !r->px->sessions.graveyard && stats(r).active_down == 0;
}

Test(sidecar_http_session, a_local_reply_keeps_the_connection_alive)
{
    rig r;
    rig_up(&r, "out", true);
    send_str(&r, "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
    char *got = received(&r);
    cr_assert(strstr(got, "HTTP/1.1 503 "), "%s", got);
    cr_assert(strstr(got, "cluster 'nowhere' not found"), "%s", got);
    free(got);
    cr_assert_eq(r.s->base.phase, DP_SESSION_OPEN);
    cr_assert_eq(r.s->x.state, DP_HX_IDLE);
    cr_assert_null(r.s->x.act, "the exchange let go of its snapshot");
    cr_assert_eq(stats(&r).rq_by_class[0][5], 1);

    send_str(&r, "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");
    got = received(&r);
    cr_assert_eq(count(got, "HTTP/1.1 503 "), 1, "%s", got);
    free(got);
    cr_assert_eq(stats(&r).rq_by_class[0][5], 2);
    rig_down(&r);
}

Test(sidecar_http_session, pipelined_requests_are_answered_in_order)
{
    rig r;
    rig_up(&r, "out", true);
    send_str(&r, "GET /1 HTTP/1.1\r\nHost: svc\r\nx-request-id: first\r\n\r\n"
                 "GET /2 HTTP/1.1\r\nHost: svc\r\nx-request-id: second\r\n\r\n"
                 "GET /3 HTTP/1.1\r\nHost: svc\r\nx-request-id: third\r\n\r\n");
    char *got = received(&r);
    char *a = strstr(got, "x-request-id: first"), *b = strstr(got, "x-request-id: second"),
         *c = strstr(got, "x-request-id: third");
    cr_assert(a && b && c && a < b && b < c, "%s", got);
    cr_assert_eq(count(got, "HTTP/1.1 503 "), 3);
    free(got);
    cr_assert_eq(r.s->x.state, DP_HX_IDLE);
    cr_assert_eq(stats(&r).rq_by_class[0][5], 3);
    rig_down(&r);
}

Test(sidecar_http_session, a_body_after_the_reply_is_read_and_dropped)
{
    rig r;
    rig_up(&r, "bare", true);
    send_str(&r, "POST /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 10\r\n\r\n12345");
    char *got = received(&r);
    cr_assert(strstr(got, "HTTP/1.1 404 "), "%s", got);
    cr_assert(strstr(got, "route table 'absent' has not been received"), "%s", got);
    free(got);
    cr_assert_eq(r.s->x.state, DP_HX_DRAINING_REQUEST);
    cr_assert_eq(evbuffer_get_length(r.s->x.pending), 0, "nothing is queued for an upstream");
    cr_assert_eq(stats(&r).rq_by_class[0][4], 1, "counted when its response is done");

    send_str(&r, "67890");
    cr_assert_eq(r.s->x.state, DP_HX_IDLE);
    cr_assert_eq(stats(&r).rq_by_class[0][4], 1, "and only then");
    /* The rest of the body was not taken for a request. */
    cr_assert_eq(evbuffer_get_length(bufferevent_get_input(r.client)), 0);

    send_str(&r, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
    got = received(&r);
    cr_assert_eq(count(got, "HTTP/1.1 404 "), 1, "%s", got);
    free(got);
    rig_down(&r);
}

Test(sidecar_http_session, no_keep_alive_with_a_body_left_closes_after_the_reply)
{
    rig r;
    rig_up(&r, "bare", true);
    bufferevent_disable(r.client, EV_READ);     /* the reply waits in our output */
    send_str(&r, "POST / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n"
                 "Content-Length: 100\r\n\r\nabc");
    cr_assert_eq(r.s->x.state, DP_HX_DRAINING_REQUEST);
    cr_assert_eq(r.s->base.phase, DP_SESSION_CLOSING);
    bufferevent_enable(r.client, EV_READ);
    spin(&r);
    char *got = received(&r);
    cr_assert(strstr(got, "HTTP/1.1 404 "), "%s", got);
    cr_assert(strstr(got, "connection: close"), "%s", got);
    free(got);
    cr_assert(freed(&r), "closed once the reply was written");
    cr_assert_eq(stats(&r).rq_by_class[0][4], 1, "the reply is counted although the "
                 "connection closed before the request ended");
    rig_down(&r);
}

Test(sidecar_http_session, no_config_yet_is_503)
{
    rig r;
    rig_up(&r, "out", false);
    send_str(&r, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
    char *got = received(&r);
    cr_assert(strstr(got, "HTTP/1.1 503 "), "%s", got);
    cr_assert(strstr(got, "no configuration from meshd yet"), "%s", got);
    free(got);
    cr_assert_eq(r.s->x.state, DP_HX_IDLE);
    rig_down(&r);
}

Test(sidecar_http_session, a_removed_listener_answers_and_closes)
{
    rig r;
    rig_up(&r, "gone", true);
    send_str(&r, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
    char *got = received(&r);
    cr_assert(strstr(got, "listener 'gone' was removed"), "%s", got);
    cr_assert(strstr(got, "connection: close"), "%s", got);
    free(got);
    cr_assert(freed(&r));
    rig_down(&r);
}

Test(sidecar_http_session, malformed_requests_get_4xx_and_a_close)
{
    static const struct {
        const char *request, *status, *why;
        int cls;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ", "request has no Host header", 4},
        {"NOT A REQUEST\r\n\r\n", "HTTP/1.1 400 ", "bad request: ", 4},
        {"GET / HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
         "HTTP/1.1 501 ", "protocol upgrades and CONNECT are not supported", 5},
        {"POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         "HTTP/1.1 400 ", "bad request: ", 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rig r;
        rig_up(&r, "bare", true);
        send_str(&r, cases[i].request);
        char *got = received(&r);
        cr_assert(strstr(got, cases[i].status), "case %zu: %s", i, got);
        cr_assert(strstr(got, cases[i].why), "case %zu: %s", i, got);
        free(got);
        cr_assert(freed(&r), "case %zu: the session is freed", i);
        cr_assert_eq(stats(&r).rq_by_class[0][cases[i].cls] >= 1, true, "case %zu", i);
        rig_down(&r);
    }
}

Test(sidecar_http_session, a_head_over_the_limit_is_431)
{
    rig r;
    rig_up(&r, "out", true);
    size_t big = DP_HTTP_MAX_HEAD + 1024;
    char *req = malloc(big + 64);
    int n = snprintf(req, big + 64, "GET / HTTP/1.1\r\nHost: svc\r\nx-big: ");
    memset(req + n, 'a', big);
    strcpy(req + n + big, "\r\n\r\n");
    send_str(&r, req);
    free(req);
    char *got = received(&r);
    cr_assert(strstr(got, "HTTP/1.1 431 "), "%.200s", got);
    free(got);
    cr_assert(freed(&r));
    rig_down(&r);
}

Test(sidecar_http_session, a_client_leaving_frees_the_session)
{
    rig r;
    rig_up(&r, "out", true);
    send_str(&r, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
    free(received(&r));
    hang_up(r.client);
    r.client = NULL;
    spin(&r);
    cr_assert(freed(&r));
    cr_assert_eq(stats(&r).rq_by_class[0][0], 0, "an idle connection closing is no reset");
    rig_down(&r);
}

Test(sidecar_http_session, a_client_leaving_mid_request_is_no_response)
{
    rig r;
    rig_up(&r, "out", true);
    send_str(&r, "GET / HTTP/1.1\r\nHost: sv");    /* a head that never completes */
    cr_assert_eq(r.s->x.state, DP_HX_IDLE);
    hang_up(r.client);
    r.client = NULL;
    spin(&r);
    cr_assert(freed(&r));
    rig_down(&r);
}

Test(sidecar_http_session, an_impossible_step_resets_the_connection)
{
    rig r;
    rig_up(&r, "out", true);
    /* No response can start on an idle connection: a bug, not a crash. */
    cr_assert_not(dp_http_step(r.s, DP_HX_EV_RESPONSE_HEAD));
    cr_assert(dp_session_dead(&r.s->base));
    cr_assert_eq(r.s->x.state, DP_HX_IDLE, "the state did not move");
    spin(&r);
    cr_assert(freed(&r));
    rig_down(&r);
}

/* ---- hostile clients ------------------------------------------------------------------ */

Test(sidecar_http_session, hostile_heads_get_the_reason_and_a_close)
{
    static const struct {
        const char *request, *status, *why;
    } cases[] = {
        /* A forged caller identity that the old sanitizer let through. */
        {"GET / HTTP/1.1\r\nHost: svc\r\nX-Forwarded-Client-Cert : By=x;URI=spiffe://evil\r\n\r\n",
         "HTTP/1.1 400 ", "whitespace in header field name 'X-Forwarded-Client-Cert '"},
        /* A smuggled second request behind an unrecognised framing header. */
        {"POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"
         "GET /smuggled HTTP/1.1\r\nHost: svc\r\n\r\n", "HTTP/1.1 400 ", "whitespace"},
        {"GET / HTTP/1.1\r\nHost: svc\r\nX-A: one\r\n two\r\n\r\n", "HTTP/1.1 400 ",
         "obsolete line folding"},
        {"GET / HTTP/1.1\nHost: svc\n\n", "HTTP/1.1 400 ", "bare LF"},
        {"GET / HTTP/9.9\r\nHost: svc\r\n\r\n", "HTTP/1.1 505 ", "HTTP/9.9 is not supported"},
        {"GET / HTTP/1.1\r\nHost: svc\r\nHost: other\r\n\r\n", "HTTP/1.1 400 ",
         "more than one Host"},
        {"POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
         "HTTP/1.1 501 ", "transfer coding 'gzip, chunked' is not supported"},
        {"GET http://elsewhere/x HTTP/1.1\r\nHost: svc\r\n\r\n", "HTTP/1.1 400 ",
         "is not a path: the mesh sidecar is not a forward proxy"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rig r;
        rig_up(&r, "out", true);
        send_str(&r, cases[i].request);
        char *got = received(&r);
        cr_assert(strncmp(got, cases[i].status, strlen(cases[i].status)) == 0, "case %zu: %s",
                  i, got);
        cr_assert(strstr(got, cases[i].why), "case %zu: %s", i, got);
        cr_assert(strstr(got, "connection: close"), "case %zu: %s", i, got);
        cr_assert_eq(count(got, "HTTP/1.1 "), 1, "case %zu: one reply, nothing smuggled: %s",
                     i, got);
        free(got);
        cr_assert(freed(&r), "case %zu: closed", i);
        rig_down(&r);
    }
}

Test(sidecar_http_session, a_head_that_never_completes_gets_408)
{
    rig r;
    rig_up_timeouts(&r, "out", true, 100, 0);
    send_str(&r, "GET / HTTP/1.1\r\nHost: sv");
    run_for(&r, 400);
    char *got = received(&r);
    cr_assert(strncmp(got, "HTTP/1.1 408 ", 13) == 0, "%s", got);
    cr_assert(strstr(got, "the request head was not complete within 100 ms"), "%s", got);
    cr_assert(strstr(got, "connection: close"), "%s", got);
    free(got);
    cr_assert(freed(&r));
    cr_assert_eq(stats(&r).rq_by_class[0][4], 1);
    rig_down(&r);
}

Test(sidecar_http_session, a_trickled_head_is_timed_from_its_first_byte)
{
    /* Slowloris: a byte every 20 ms keeps any read timeout from firing; the
     * head's own deadline still does. */
    rig r;
    rig_up_timeouts(&r, "out", true, 200, 0);
    const char *head = "GET / HTTP/1.1\r\nHost: svc\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    for (const char *p = head; *p && !freed(&r); p++) {
        bufferevent_write(r.client, p, 1);
        run_for(&r, 20);
    }
    char *got = received(&r);
    cr_assert(strncmp(got, "HTTP/1.1 408 ", 13) == 0, "%s", got);
    free(got);
    cr_assert(freed(&r));
    rig_down(&r);
}

Test(sidecar_http_session, empty_lines_alone_do_not_start_a_head)
{
    rig r;
    rig_up_timeouts(&r, "out", true, 100, 0);
    send_str(&r, "\r\n");
    run_for(&r, 300);
    cr_assert_eq(evbuffer_get_length(bufferevent_get_input(r.client)), 0, "no 408");
    cr_assert_eq(r.s->base.phase, DP_SESSION_OPEN);
    send_str(&r, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
    char *got = received(&r);
    cr_assert(strstr(got, "HTTP/1.1 503 "), "%s", got);
    free(got);
    rig_down(&r);
}

Test(sidecar_http_session, an_idle_keep_alive_connection_is_closed)
{
    rig r;
    rig_up_timeouts(&r, "out", true, 0, 150);
    send_str(&r, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
    free(received(&r));
    cr_assert_eq(r.s->base.phase, DP_SESSION_OPEN, "kept alive");
    run_for(&r, 500);
    cr_assert(freed(&r), "closed after the idle timeout");
    cr_assert_eq(stats(&r).rq_by_class[0][0], 0, "no reset counted");
    rig_down(&r);
}

/* A head with `fields` field lines in all (Host included). */
static char *head_with_fields(int fields)
{
    char *h = malloc(64 + (size_t)fields * 16);
    strcpy(h, "GET / HTTP/1.1\r\nHost: svc\r\n");
    for (int i = 1; i < fields; i++)
        sprintf(h + strlen(h), "x-f%d: v\r\n", i);
    strcat(h, "\r\n");
    return h;
}

Test(sidecar_http_session, a_head_the_next_hop_would_refuse_is_431_here)
{
    /* The outbound side adds x-request-id and x-forwarded-proto, the inbound
     * side x-forwarded-client-cert: 125 fields from the app are the most
     * that reach the next hop's app within its 128. */
    rig r;
    rig_up(&r, "out", true);
    char *h = head_with_fields(125);
    send_str(&r, h);
    free(h);
    char *got = received(&r);
    cr_assert(strstr(got, "HTTP/1.1 503 "), "125 fields are forwarded: %.300s", got);
    free(got);

    h = head_with_fields(127);
    send_str(&r, h);
    free(h);
    got = received(&r);
    cr_assert(strncmp(got, "HTTP/1.1 431 ", 13) == 0, "%.300s", got);
    cr_assert(strstr(got, "130 header fields once the mesh adds its own"), "%s", got);
    cr_assert(strstr(got, "the limit is 128 per hop"), "%s", got);
    free(got);
    cr_assert(freed(&r));
    rig_down(&r);
}

Test(sidecar_http_session, a_reply_to_an_unparsable_head_has_a_body)
{
    /* The reply is framed for no request in particular, not for the HEAD
     * request before it (no body) or an HTTP/1.0 one. */
    rig r;
    rig_up(&r, "out", true);
    send_str(&r, "HEAD / HTTP/1.1\r\nHost: svc\r\n\r\n");
    char *got = received(&r);
    cr_assert(strstr(got, "HTTP/1.1 503 "), "%s", got);
    free(got);
    send_str(&r, "NOT A REQUEST\r\n\r\n");
    got = received(&r);
    cr_assert(strncmp(got, "HTTP/1.1 400 ", 13) == 0, "%s", got);
    cr_assert(strstr(got, "\r\n\r\nbad request: "), "the body is there: %s", got);
    free(got);
    cr_assert(freed(&r));
    rig_down(&r);
}
