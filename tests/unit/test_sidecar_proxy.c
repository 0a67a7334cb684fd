/* tests/unit/test_sidecar_proxy.c — two data planes in one process, each on
 * its own loop thread, with certificates made here:
 *
 *   client -> A outbound (plain HTTP/TCP) -> mTLS -> B inbound -> backend app
 *
 * Covers the request path end to end (XFCC, keep-alive pooling, pipelining,
 * chunked bodies), local replies (404 no route, 403 RBAC, 503 no upstream /
 * unknown cluster / SAN mismatch, 504 timeout, 400), retries, config swaps
 * with requests in flight, bind failures, the admin endpoint, and expiry:
 * fail closed on expired certificates and live connections closed at
 * notAfter. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sidecar/proxy.h"
#include "test_sidecar_util.h"

#define ID_A "spiffe://example.org/ns/default/sa/a"
#define ID_B "spiffe://example.org/ns/default/sa/b"
#define ID_C "spiffe://example.org/ns/default/sa/c"

typedef struct mesh2 {
    tsc_ca *ca;
    cert_pool *pa, *pb;
    dp_proxy *a, *b;
    tsc_backend *app, *echo;
    int b_http, b_tcp;          /* B's inbound ports */
    int a_http, a_tcp;          /* A's outbound ports */
} mesh2;

typedef struct a_opts {
    const char *san;            /* expected peer ID; NULL = any in trust domain */
    uint32_t retries;
    int64_t timeout_ms;
    int dead_port;              /* an extra endpoint nobody listens on (0 = none) */
    bool unhealthy;             /* B's endpoint marked unhealthy */
    const char *route_cluster;  /* where "/" goes (default outbound|b) */
} a_opts;

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static cert_pool *make_pool(tsc_ca *ca, const char *id, int64_t nb, int64_t na)
{
    cert_pool *p;
    mesh_err e;
    cr_assert_eq(cert_pool_new(&p, &e), MESH_OK);
    char *chain, *key, *bundle = tsc_ca_pem(ca);
    tsc_leaf(ca, id, nb, na, &chain, &key);
    cr_assert_eq(cert_pool_set_bundle(p, bundle, now_s(), &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(cert_pool_offer_svid(p, chain, key, now_s(), &e), MESH_OK, "%s", e.msg);
    free(chain);
    free(key);
    free(bundle);
    return p;
}

static dp_config *b_config(const mesh2 *m, const char *allowed)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    char *allow[] = {(char *)allowed};
    dp_listener lh = {.name = "inbound|http", .address = "127.0.0.1:0",
                      .kind = DP_LISTENER_INBOUND_HTTP, .allowed_ids = allow, .n_allowed = 1,
                      .local_cluster = "local|app"};
    dp_listener lt = {.name = "inbound|tcp", .address = "127.0.0.1:0",
                      .kind = DP_LISTENER_INBOUND_TCP, .allowed_ids = allow, .n_allowed = 1,
                      .local_cluster = "local|echo"};
    cr_assert_eq(dp_config_add_listener(c, &lh, &e), MESH_OK);
    cr_assert_eq(dp_config_add_listener(c, &lt, &e), MESH_OK);
    char app[64], echo[64];
    snprintf(app, sizeof app, "127.0.0.1:%d", tsc_backend_port(m->app));
    snprintf(echo, sizeof echo, "127.0.0.1:%d", tsc_backend_port(m->echo));
    dp_endpoint ea = {.address = app}, ee = {.address = echo};
    dp_cluster ca = {.name = "local|app", .endpoints = &ea, .n_endpoints = 1};
    dp_cluster ce = {.name = "local|echo", .endpoints = &ee, .n_endpoints = 1};
    cr_assert_eq(dp_config_add_cluster(c, &ca, &e), MESH_OK);
    cr_assert_eq(dp_config_add_cluster(c, &ce, &e), MESH_OK);
    cr_assert_eq(dp_config_freeze(c, &e), MESH_OK, "%s", e.msg);
    return c;
}

static dp_config *a_config(const mesh2 *m, const a_opts *o)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    dp_listener lh = {.name = "outbound|http", .address = "127.0.0.1:0",
                      .kind = DP_LISTENER_OUTBOUND_HTTP, .route_table = "outbound|http"};
    dp_listener lt = {.name = "outbound|tcp|echo", .address = "127.0.0.1:0",
                      .kind = DP_LISTENER_OUTBOUND_TCP, .cluster = "outbound|echo"};
    cr_assert_eq(dp_config_add_listener(c, &lh, &e), MESH_OK);
    cr_assert_eq(dp_config_add_listener(c, &lt, &e), MESH_OK);
    char *san[] = {(char *)o->san};
    char bh[64], bt[64], dead[64];
    snprintf(bh, sizeof bh, "127.0.0.1:%d", m->b_http);
    snprintf(bt, sizeof bt, "127.0.0.1:%d", m->b_tcp);
    snprintf(dead, sizeof dead, "127.0.0.1:%d", o->dead_port);
    dp_endpoint eps[2];
    size_t n = 0;
    if (o->dead_port)
        eps[n++] = (dp_endpoint){.address = dead};
    eps[n++] = (dp_endpoint){.address = bh,
                             .health = o->unhealthy ? DP_HEALTH_UNHEALTHY : DP_HEALTH_HEALTHY};
    dp_cluster cb = {.name = "outbound|b", .tls = true, .eds = true, .san_ids = san,
                     .n_san = o->san ? 1 : 0, .connect_timeout_ms = 1000};
    cr_assert_eq(dp_config_add_cluster(c, &cb, &e), MESH_OK);
    dp_load_assignment la = {.cluster_name = "outbound|b", .endpoints = eps, .n_endpoints = n};
    cr_assert_eq(dp_config_add_assignment(c, &la, &e), MESH_OK);
    dp_endpoint et = {.address = bt};
    dp_cluster ce = {.name = "outbound|echo", .tls = true, .endpoints = &et, .n_endpoints = 1,
                     .san_ids = san, .n_san = o->san ? 1 : 0};
    cr_assert_eq(dp_config_add_cluster(c, &ce, &e), MESH_OK);
    dp_weighted_cluster to_b = {.cluster = (char *)(o->route_cluster ? o->route_cluster
                                                                     : "outbound|b"),
                                .weight = 100};
    dp_weighted_cluster to_delay = {.cluster = "outbound|b", .weight = 1};
    dp_route routes[] = {
        {.path_kind = DP_PATH_PREFIX, .path = "/delay/", .clusters = &to_delay, .n_clusters = 1,
         .timeout_ms = o->timeout_ms ? o->timeout_ms : 3000, .retries = o->retries},
        {.path_kind = DP_PATH_PREFIX, .path = "/", .clusters = &to_b, .n_clusters = 1,
         .timeout_ms = 3000, .retries = o->retries},
    };
    char *doms[] = {"b", "b.mesh"};
    dp_virtual_host vh = {.name = "b", .domains = doms, .n_domains = 2, .routes = routes,
                          .n_routes = 2};
    dp_route_table rt = {.name = "outbound|http", .vhosts = &vh, .n_vhosts = 1};
    cr_assert_eq(dp_config_add_route_table(c, &rt, &e), MESH_OK);
    cr_assert_eq(dp_config_freeze(c, &e), MESH_OK, "%s", e.msg);
    return c;
}

static void apply(dp_proxy *px, dp_config *c)
{
    mesh_err e;
    cr_assert_eq(dp_proxy_apply_config(px, c, &e), MESH_OK, "%s", e.msg);
    dp_config_unref(c);
}

static void mesh_up(mesh2 *m, const a_opts *o, int64_t b_not_after, const char *b_allowed)
{
    memset(m, 0, sizeof *m);
    int64_t now = now_s();
    m->ca = tsc_ca_new("mesh test root");
    m->pa = make_pool(m->ca, ID_A, now - 10, now + 3600);
    m->pb = make_pool(m->ca, ID_B, now - 10, b_not_after ? b_not_after : now + 3600);
    m->app = tsc_backend_start("b", false);
    m->echo = tsc_backend_start("echo", true);
    cr_assert(m->app && m->echo);
    mesh_err e;
    dp_proxy_opts ob = {.pool = m->pb, .rng_seed = 1};
    dp_proxy_opts oa = {.pool = m->pa, .rng_seed = 2, .admin_address = "127.0.0.1:0"};
    cr_assert_eq(dp_proxy_new(&ob, &m->b, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_proxy_new(&oa, &m->a, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_proxy_start(m->b, &e), MESH_OK);
    cr_assert_eq(dp_proxy_start(m->a, &e), MESH_OK);
    apply(m->b, b_config(m, b_allowed ? b_allowed : ID_A));
    m->b_http = dp_proxy_listener_port(m->b, "inbound|http");
    m->b_tcp = dp_proxy_listener_port(m->b, "inbound|tcp");
    cr_assert(m->b_http > 0 && m->b_tcp > 0);
    apply(m->a, a_config(m, o));
    m->a_http = dp_proxy_listener_port(m->a, "outbound|http");
    m->a_tcp = dp_proxy_listener_port(m->a, "outbound|tcp|echo");
    cr_assert(m->a_http > 0 && m->a_tcp > 0);
}

static void mesh_down(mesh2 *m)
{
    dp_proxy_free(m->a);
    dp_proxy_free(m->b);
    tsc_backend_stop(m->app);
    tsc_backend_stop(m->echo);
    cert_pool_free(m->pa);
    cert_pool_free(m->pb);
    tsc_ca_free(m->ca);
}

/* A port nothing listens on: bound once by us, then released. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

static dp_stats_view stats(dp_proxy *px)
{
    dp_stats_view v;
    dp_proxy_get_stats(px, &v);
    return v;
}

/* Stats are updated on the loop thread; give it a moment. */
#define EVENTUALLY(cond)                                                                       \
    do {                                                                                       \
        for (int i_ = 0; i_ < 200 && !(cond); i_++)                                            \
            usleep(10000);                                                                     \
    } while (0)

Test(sidecar_proxy, request_through_the_mesh)
{
    mesh2 m;
    a_opts o = {.san = ID_B};
    mesh_up(&m, &o, 0, NULL);
    char body[4096];
    int st = tsc_http_get(m.a_http, "b:8080", "/hello?x=1", NULL, body, sizeof body);
    cr_assert_eq(st, 200, "body: %s", body);
    cr_assert(strstr(body, "\"app\":\"b\""), "%s", body);
    cr_assert(strstr(body, "\"path\":\"/hello?x=1\""), "%s", body);
    cr_assert(strstr(body, "\"xfcc\":\"By=" ID_B ";URI=" ID_A "\""),
              "the app sees who called: %s", body);
    /* A forged XFCC from the calling app does not survive. */
    st = tsc_http_get(m.a_http, "b", "/x", "X-Forwarded-Client-Cert: By=evil;URI=evil\r\n", body,
                      sizeof body);
    cr_assert_eq(st, 200);
    cr_assert_null(strstr(body, "evil"), "%s", body);
    EVENTUALLY(stats(m.a).rq_by_class[0][2] == 2);
    dp_stats_view a = stats(m.a), b = stats(m.b);
    cr_assert_eq(a.rq_by_class[0][2], 2);
    cr_assert_eq(b.rq_by_class[1][2], 2);
    cr_assert_eq(a.up_hs_ok, 1, "the second request reused the pooled mTLS connection");
    cr_assert_eq(b.down_hs_ok, 1);
    mesh_down(&m);
}

Test(sidecar_proxy, forged_identity_in_any_spelling_never_reaches_the_app)
{
    mesh2 m;
    a_opts o = {.san = ID_B};
    mesh_up(&m, &o, 0, NULL);
    char body[4096];
    int st = tsc_http_get(m.a_http, "b", "/headers",
                          "x_forwarded_client_cert: By=evil;URI=spiffe://example.org/ns/x/sa/root\r\n"
                          "X-FORWARDED-CLIENT-CERT: By=evil;URI=evil2\r\n", body, sizeof body);
    cr_assert_eq(st, 200, "%s", body);
    cr_assert_null(strstr(body, "evil"), "%s", body);
    cr_assert(strstr(body, "x-forwarded-client-cert=By=" ID_B ";URI=" ID_A ";"), "%s", body);
    /* Whitespace before the colon is refused at the first sidecar. */
    st = tsc_http_get(m.a_http, "b", "/headers",
                      "X-Forwarded-Client-Cert : By=evil;URI=evil\r\n", body, sizeof body);
    cr_assert_eq(st, 400, "%s", body);
    cr_assert(strstr(body, "whitespace in header field name"), "%s", body);
    cr_assert_eq(tsc_backend_requests(m.app), 1, "the refused request never reached the app");
    mesh_down(&m);
}

Test(sidecar_proxy, keepalive_pipelining_and_bodies)
{
    mesh2 m;
    a_opts o = {0};
    mesh_up(&m, &o, 0, NULL);
    int fd = tsc_connect(m.a_http);
    cr_assert(fd >= 0);
    /* Three pipelined requests in one write, one with a chunked body, one
     * with Content-Length. */
    cr_assert_eq(tsc_send(fd, "GET /one HTTP/1.1\r\nHost: b\r\n\r\n"
                              "POST /two HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
                              "PUT /three HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\n12345"),
                 0);
    char body[4096];
    cr_assert_eq(tsc_read_response(fd, body, sizeof body), 200);
    cr_assert(strstr(body, "\"path\":\"/one\""), "%s", body);
    cr_assert_eq(tsc_read_response(fd, body, sizeof body), 200);
    cr_assert(strstr(body, "\"path\":\"/two\""), "%s", body);
    cr_assert(strstr(body, "\"bytes\":7"), "chunked body forwarded: %s", body);
    cr_assert_eq(tsc_read_response(fd, body, sizeof body), 200);
    cr_assert(strstr(body, "\"path\":\"/three\""), "%s", body);
    cr_assert(strstr(body, "\"bytes\":5"), "%s", body);
    /* Still usable afterwards; a local reply keeps the connection too. */
    cr_assert_eq(tsc_send(fd, "GET /four HTTP/1.1\r\nHost: nowhere\r\n\r\n"), 0);
    cr_assert_eq(tsc_read_response(fd, body, sizeof body), 404);
    cr_assert_eq(tsc_send(fd, "GET /five HTTP/1.1\r\nHost: b.mesh\r\n\r\n"), 0);
    cr_assert_eq(tsc_read_response(fd, body, sizeof body), 200);
    close(fd);
    /* HTTP/1.0 without keep-alive: answered, then closed. */
    fd = tsc_connect(m.a_http);
    cr_assert_eq(tsc_send(fd, "GET /old HTTP/1.0\r\nHost: b\r\n\r\n"), 0);
    cr_assert_eq(tsc_read_response(fd, body, sizeof body), 200);
    cr_assert(tsc_wait_closed(fd, 2000));
    close(fd);
    /* No Host: 400 and close. */
    fd = tsc_connect(m.a_http);
    cr_assert_eq(tsc_send(fd, "GET / HTTP/1.1\r\n\r\n"), 0);
    cr_assert_eq(tsc_read_response(fd, body, sizeof body), 400);
    cr_assert(strstr(body, "no Host"), "%s", body);
    close(fd);
    /* Garbage: 400. */
    fd = tsc_connect(m.a_http);
    cr_assert_eq(tsc_send(fd, "NOT HTTP AT ALL\r\n\r\n"), 0);
    cr_assert_eq(tsc_read_response(fd, body, sizeof body), 400);
    close(fd);
    mesh_down(&m);
}

Test(sidecar_proxy, no_route_is_404)
{
    mesh2 m;
    a_opts o = {0};
    mesh_up(&m, &o, 0, NULL);
    char body[4096];
    int st = tsc_http_get(m.a_http, "ratings", "/x", NULL, body, sizeof body);
    cr_assert_eq(st, 404);
    cr_assert(strstr(body, "no route for host 'ratings' path '/x'"), "%s", body);
    EVENTUALLY(stats(m.a).rq_by_class[0][4] == 1);
    cr_assert_eq(stats(m.a).rq_by_class[0][4], 1);
    cr_assert_eq(tsc_backend_requests(m.app), 0);
    mesh_down(&m);
}

Test(sidecar_proxy, caller_not_allowed_gets_403)
{
    mesh2 m;
    a_opts o = {0};
    mesh_up(&m, &o, 0, ID_C);   /* B only admits C */
    char body[4096];
    int st = tsc_http_get(m.a_http, "b", "/secret", NULL, body, sizeof body);
    cr_assert_eq(st, 403);
    cr_assert(strstr(body, "RBAC: access denied"), "%s", body);
    cr_assert(strstr(body, ID_A), "the body names the caller: %s", body);
    EVENTUALLY(stats(m.b).rbac_denied == 1);
    cr_assert_eq(stats(m.b).rbac_denied, 1);
    cr_assert_eq(tsc_backend_requests(m.app), 0, "the app never saw it");
    /* TCP: a denied caller is closed. */
    int fd = tsc_connect(m.a_tcp);
    cr_assert(fd >= 0);
    tsc_send(fd, "ping");
    cr_assert(tsc_wait_closed(fd, 3000));
    close(fd);
    EVENTUALLY(stats(m.b).rbac_denied == 2);
    cr_assert_eq(stats(m.b).rbac_denied, 2);
    mesh_down(&m);
}

Test(sidecar_proxy, upstream_failures_are_503)
{
    mesh2 m;
    a_opts o = {.unhealthy = true};
    mesh_up(&m, &o, 0, NULL);
    char body[4096];
    /* Panic mode (dp_lb.h): the only endpoint is UNHEALTHY, so it is tried
     * anyway rather than failing every request. */
    cr_assert_eq(tsc_http_get(m.a_http, "b", "/", NULL, body, sizeof body), 200);
    cr_assert_eq(tsc_backend_requests(m.app), 1);

    a_opts o2 = {.route_cluster = "outbound|missing"};
    apply(m.a, a_config(&m, &o2));
    cr_assert_eq(tsc_http_get(m.a_http, "b", "/", NULL, body, sizeof body), 503);
    cr_assert(strstr(body, "cluster 'outbound|missing' not found"), "%s", body);

    /* B presents ID_B; A expects ID_C: refused after the handshake. */
    a_opts o3 = {.san = ID_C};
    apply(m.a, a_config(&m, &o3));
    cr_assert_eq(tsc_http_get(m.a_http, "b", "/", NULL, body, sizeof body), 503);
    cr_assert(strstr(body, "SAN matchers"), "%s", body);
    cr_assert(stats(m.a).up_hs_failed >= 1);
    cr_assert_eq(tsc_backend_requests(m.app), 1, "nothing more reached B's app");
    mesh_down(&m);
}

Test(sidecar_proxy, route_timeout_is_504)
{
    mesh2 m;
    a_opts o = {.timeout_ms = 200};
    mesh_up(&m, &o, 0, NULL);
    char body[4096];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(tsc_http_get(m.a_http, "b", "/delay/3000", NULL, body, sizeof body), 504);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert(el < 1.5, "took %.2fs", el);
    cr_assert(strstr(body, "upstream request timeout"), "%s", body);
    EVENTUALLY(stats(m.a).timeouts == 1);
    cr_assert_eq(stats(m.a).timeouts, 1);
    /* A request within the timeout is fine. */
    cr_assert_eq(tsc_http_get(m.a_http, "b", "/delay/20", NULL, body, sizeof body), 200);
    mesh_down(&m);
}

Test(sidecar_proxy, retries_on_5xx_and_connect_failure)
{
    mesh2 m;
    a_opts o = {.retries = 2};
    mesh_up(&m, &o, 0, NULL);
    char body[4096];
    /* Idempotent GET answered 503 every time: 1 + 2 attempts, then the
     * upstream's own 503 is passed through. */
    cr_assert_eq(tsc_http_get(m.a_http, "b", "/status/503", NULL, body, sizeof body), 503);
    cr_assert(strstr(body, "\"app\":\"b\""), "the app's response: %s", body);
    EVENTUALLY(tsc_backend_requests(m.app) == 3);
    cr_assert_eq(tsc_backend_requests(m.app), 3);
    cr_assert_eq(stats(m.a).retries, 2);
    /* POST is not retried on 5xx. */
    int fd = tsc_connect(m.a_http);
    tsc_send(fd, "POST /status/503 HTTP/1.1\r\nHost: b\r\nContent-Length: 1\r\n"
                 "Connection: close\r\n\r\nx");
    cr_assert_eq(tsc_read_response(fd, body, sizeof body), 503);
    close(fd);
    EVENTUALLY(tsc_backend_requests(m.app) == 4);
    usleep(100000);
    cr_assert_eq(tsc_backend_requests(m.app), 4);
    cr_assert_eq(stats(m.a).retries, 2);

    /* A dead endpoint first in round robin: connect refused, retried on B. */
    int dead = free_port();
    a_opts o2 = {.retries = 1, .dead_port = dead};
    apply(m.a, a_config(&m, &o2));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(tsc_http_get(m.a_http, "b", "/ok", NULL, body, sizeof body), 200,
                     "request %d: %s", i, body);
    /* Without retries the dead endpoint shows as 503 half the time. */
    a_opts o3 = {.dead_port = dead};
    apply(m.a, a_config(&m, &o3));
    int fails = 0;
    for (int i = 0; i < 4; i++)
        if (tsc_http_get(m.a_http, "b", "/ok", NULL, body, sizeof body) == 503) {
            fails++;
            cr_assert(strstr(body, "upstream connect error"), "%s", body);
        }
    cr_assert_eq(fails, 2, "round robin alternates between the two endpoints");
    mesh_down(&m);
}

Test(sidecar_proxy, config_swap_keeps_inflight_requests)
{
    mesh2 m;
    a_opts o = {0};
    mesh_up(&m, &o, 0, NULL);
    int fd = tsc_connect(m.a_http);
    tsc_send(fd, "GET /delay/700 HTTP/1.1\r\nHost: b\r\n\r\n");
    usleep(250000);     /* the request is at the app now */
    a_opts o2 = {.route_cluster = "outbound|gone"};
    apply(m.a, a_config(&m, &o2));
    char body[4096];
    cr_assert_eq(tsc_read_response(fd, body, sizeof body), 200,
                 "the in-flight request finishes on the config it started with");
    /* The next request on the same connection uses the new config. */
    tsc_send(fd, "GET /x HTTP/1.1\r\nHost: b\r\n\r\n");
    cr_assert_eq(tsc_read_response(fd, body, sizeof body), 503);
    cr_assert(strstr(body, "outbound|gone"), "%s", body);
    close(fd);
    dp_config *cur = dp_proxy_current_config(m.a);
    cr_assert_not_null(cur);
    cr_assert_not_null(dp_config_find_cluster(cur, "outbound|b", NULL));
    dp_config_unref(cur);
    mesh_down(&m);
}

Test(sidecar_proxy, bind_failure_keeps_the_old_config)
{
    mesh2 m;
    a_opts o = {0};
    mesh_up(&m, &o, 0, NULL);
    mesh_err e;
    dp_config *c = dp_config_new();
    char busy[64];
    snprintf(busy, sizeof busy, "127.0.0.1:%d", m.b_http);   /* B holds this port */
    dp_listener l = {.name = "outbound|http2", .address = busy,
                     .kind = DP_LISTENER_OUTBOUND_HTTP, .route_table = "x"};
    dp_config_add_listener(c, &l, &e);
    dp_config_freeze(c, &e);
    cr_assert_eq(dp_proxy_apply_config(m.a, c, &e), MESH_EIO);
    cr_assert(strstr(e.msg, "listener 'outbound|http2': cannot bind"), "%s", e.msg);
    dp_config_unref(c);
    char body[4096];
    cr_assert_eq(tsc_http_get(m.a_http, "b", "/", NULL, body, sizeof body), 200,
                 "the old listeners and config still serve");
    /* An unfrozen snapshot is refused outright. */
    dp_config *u = dp_config_new();
    cr_assert_eq(dp_proxy_apply_config(m.a, u, &e), MESH_EINVAL);
    cr_assert(strstr(e.msg, "freeze"), "%s", e.msg);
    dp_config_unref(u);
    mesh_down(&m);
}

Test(sidecar_proxy, tcp_through_the_mesh)
{
    mesh2 m;
    a_opts o = {.san = ID_B};
    mesh_up(&m, &o, 0, NULL);
    int fd = tsc_connect(m.a_tcp);
    cr_assert(fd >= 0);
    char buf[64];
    for (int i = 0; i < 3; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "ping-%d", i);
        cr_assert_eq(tsc_send(fd, msg), 0);
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        cr_assert_eq(n, (ssize_t)strlen(msg));
        buf[n] = '\0';
        cr_assert_str_eq(buf, msg);
    }
    close(fd);
    EVENTUALLY(stats(m.b).active_down == 0);
    cr_assert_eq(stats(m.b).active_down, 0, "closing the client closes the chain");
    mesh_down(&m);
}

/* A client that presents its own (possibly expired) certificate straight to
 * B's inbound listener. Returns the HTTP status, 0 if refused. */
static int raw_tls_request(int port, const char *chain, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    BIO *bc = BIO_new_mem_buf(chain, -1), *bk = BIO_new_mem_buf(key, -1);
    X509 *x = PEM_read_bio_X509(bc, NULL, NULL, NULL);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bk, NULL, NULL, NULL);
    SSL_CTX_use_certificate(ctx, x);
    SSL_CTX_use_PrivateKey(ctx, k);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    int fd = tsc_connect(port);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    int status = 0;
    if (SSL_connect(ssl) == 1) {
        const char req[] = "GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
        SSL_write(ssl, req, (int)strlen(req));
        char buf[2048];
        int n = SSL_read(ssl, buf, sizeof buf - 1);
        if (n > 12) {
            buf[n] = '\0';
            status = atoi(buf + 9);
        }
    }
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    BIO_free(bc);
    BIO_free(bk);
    X509_free(x);
    EVP_PKEY_free(k);
    SSL_CTX_free(ctx);
    return status;
}

Test(sidecar_proxy, expired_peer_leaf_fails_closed)
{
    mesh2 m;
    a_opts o = {0};
    mesh_up(&m, &o, 0, NULL);
    int64_t now = now_s();
    char *chain, *key;
    tsc_leaf(m.ca, ID_A, now - 200, now - 100, &chain, &key);
    cr_assert_eq(raw_tls_request(m.b_http, chain, key), 0, "an expired caller is refused");
    free(chain);
    free(key);
    EVENTUALLY(stats(m.b).down_hs_failed >= 1);
    cr_assert(stats(m.b).down_hs_failed >= 1);
    /* The same client with a valid leaf gets through (control). */
    tsc_leaf(m.ca, ID_A, now - 10, now + 100, &chain, &key);
    cr_assert_eq(raw_tls_request(m.b_http, chain, key), 200);
    free(chain);
    free(key);
    /* A leaf for another trust domain, same CA: refused after verification. */
    tsc_leaf(m.ca, "spiffe://other.org/ns/x/sa/y", now - 10, now + 100, &chain, &key);
    cr_assert_eq(raw_tls_request(m.b_http, chain, key), 0);
    free(chain);
    free(key);
    cr_assert_eq(tsc_backend_requests(m.app), 1);
    mesh_down(&m);
}

Test(sidecar_proxy, own_svid_expiry_closes_live_connections_and_fails_closed)
{
    mesh2 m;
    a_opts o = {0};
    int64_t now = now_s();
    mesh_up(&m, &o, now + 2, NULL);   /* B's SVID expires in ~2 s */
    char body[4096];
    cr_assert_eq(tsc_http_get(m.a_http, "b", "/", NULL, body, sizeof body), 200);
    int fd = tsc_connect(m.a_tcp);
    cr_assert_eq(tsc_send(fd, "hi"), 0);
    char buf[8];
    cr_assert_eq(recv(fd, buf, sizeof buf, 0), 2);
    /* At notAfter the live TCP chain is cut: not before, and not a second
     * later either, since from notAfter on the cert pool, /certs and /ready
     * already call the SVID expired (now >= notAfter). */
    cr_assert(tsc_wait_closed(fd, 5000), "a live connection outlived the certificate");
    struct timespec closed_at;
    clock_gettime(CLOCK_REALTIME, &closed_at);
    close(fd);
    int64_t late_ms = ((int64_t)closed_at.tv_sec - (now + 2)) * 1000 + closed_at.tv_nsec / 1000000;
    cr_assert(late_ms >= 0, "closed %lld ms before notAfter", (long long)-late_ms);
    cr_assert(late_ms < 800, "closed %lld ms after notAfter, when it was already expired",
              (long long)late_ms);
    EVENTUALLY(stats(m.b).closed_cert_expiry >= 1);
    cr_assert(stats(m.b).closed_cert_expiry >= 1);
    /* New handshakes to B are refused: A answers 503. */
    cr_assert_eq(tsc_http_get(m.a_http, "b", "/", NULL, body, sizeof body), 503);
    cr_assert(strstr(body, "upstream connect error"), "%s", body);
    cr_assert(stats(m.b).tls_refused_expired >= 1);
    mesh_down(&m);
}

/* ---- admin ------------------------------------------------------------------------- */

Test(sidecar_proxy, admin_endpoints)
{
    int64_t now = now_s();
    tsc_ca *ca = tsc_ca_new("admin root");
    cert_pool *p;
    mesh_err e;
    cert_pool_new(&p, &e);
    dp_proxy *px;
    dp_proxy_opts o = {.pool = p, .admin_address = "127.0.0.1:0"};
    cr_assert_eq(dp_proxy_new(&o, &px, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_proxy_start(px, &e), MESH_OK);
    int port = dp_proxy_admin_port(px);
    cr_assert(port > 0);
    char body[16384];
    cr_assert_eq(tsc_http_get(port, "localhost", "/ready", NULL, body, sizeof body), 503);
    cr_assert(strstr(body, "no configuration"), "%s", body);
    dp_config *c = dp_config_new();
    dp_config_freeze(c, &e);
    apply(px, c);
    cr_assert_eq(tsc_http_get(port, "localhost", "/ready", NULL, body, sizeof body), 503);
    cr_assert(strstr(body, "no SVID"), "%s", body);
    /* Certificates arrive straight into the pool (the SDS path). */
    char *chain, *key, *bundle = tsc_ca_pem(ca);
    tsc_leaf(ca, ID_A, now - 10, now + 600, &chain, &key);
    cert_pool_set_bundle(p, bundle, now, &e);
    cert_pool_offer_svid(p, chain, key, now, &e);
    cr_assert_eq(tsc_http_get(port, "localhost", "/ready", NULL, body, sizeof body), 200);

    cr_assert_eq(tsc_http_get(port, "localhost", "/certs", NULL, body, sizeof body), 200);
    cr_assert(strstr(body, "\"spiffe_id\":\"" ID_A "\""), "%s", body);
    cr_assert(strstr(body, "\"seconds_left\":"), "%s", body);
    cr_assert(strstr(body, "\"next\":null"), "%s", body);
    cr_assert(strstr(body, "admin root"), "%s", body);

    dp_proxy_xds_connected(px, true, "meshd:15010");
    dp_proxy_xds_accepted(px, DP_XDS_CDS, "v7");
    dp_proxy_xds_rejected(px, DP_XDS_LDS, "v8", "listener 'x': bad \"address\"");
    cr_assert_eq(tsc_http_get(port, "localhost", "/config_dump", NULL, body, sizeof body), 200);
    cr_assert(strstr(body, "\"connected\":true"), "%s", body);
    cr_assert(strstr(body, "\"cds\":{\"version\":\"v7\""), "%s", body);
    cr_assert(strstr(body, "bad \\\"address\\\""), "JSON-escaped error: %s", body);
    cr_assert(strstr(body, "\"listeners\":[]"), "%s", body);

    cr_assert_eq(tsc_http_get(port, "localhost", "/stats", NULL, body, sizeof body), 200);
    cr_assert(strstr(body, "mesh_sidecar_xds_updates_total{type=\"cds\"} 1"), "%s", body);
    cr_assert(strstr(body, "mesh_sidecar_xds_rejections_total{type=\"lds\"} 1"), "%s", body);
    const char *sl = strstr(body, "\nmesh_sidecar_cert_seconds_left ");
    cr_assert_not_null(sl, "%s", body);
    long left = atol(sl + strlen("\nmesh_sidecar_cert_seconds_left "));
    cr_assert(left > 590 && left <= 600, "seconds left %ld", left);
    cr_assert(strstr(body, "mesh_sidecar_http_requests_total{direction=\"outbound\","
                           "code_class=\"2xx\"} 0"), "%s", body);
    cr_assert_eq(tsc_http_get(port, "localhost", "/nope", NULL, body, sizeof body), 404);
    dp_proxy_free(px);
    /* The admin endpoint refuses a non-loopback bind. */
    dp_proxy_opts bad = {.pool = p, .admin_address = "0.0.0.0:0"};
    cr_assert_eq(dp_proxy_new(&bad, &px, &e), MESH_EINVAL);
    cr_assert(strstr(e.msg, "loopback"), "%s", e.msg);
    free(chain);
    free(key);
    free(bundle);
    cert_pool_free(p);
    tsc_ca_free(ca);
}

Test(sidecar_proxy, config_dump_shows_the_applied_config)
{
    mesh2 m;
    a_opts o = {.san = ID_B};
    mesh_up(&m, &o, 0, NULL);
    char body[16384];
    int aport = dp_proxy_admin_port(m.a);
    /* Some traffic first so endpoint counters exist. */
    cr_assert_eq(tsc_http_get(m.a_http, "b", "/", NULL, body, sizeof body), 200);
    cr_assert_eq(tsc_http_get(aport, "localhost", "/config_dump", NULL, body, sizeof body), 200);
    cr_assert(strstr(body, "\"name\":\"outbound|http\""), "%s", body);
    cr_assert(strstr(body, "\"domains\":[\"b\",\"b.mesh\"]"), "%s", body);
    cr_assert(strstr(body, "\"san_ids\":[\"" ID_B "\"]"), "%s", body);
    cr_assert(strstr(body, "\"discovery\":\"eds\""), "%s", body);
    cr_assert(strstr(body, "\"idle_connections\":1"), "pooled connection shown: %s", body);
    cr_assert_eq(tsc_http_get(aport, "localhost", "/stats", NULL, body, sizeof body), 200);
    cr_assert(strstr(body, "mesh_sidecar_upstream_handshakes_total{result=\"ok\"} 1"), "%s",
              body);
    mesh_down(&m);
}

/* ---- volume: backpressure paths and concurrency --------------------------------------- */

Test(sidecar_proxy, large_bodies_both_ways)
{
    mesh2 m;
    a_opts o = {0};
    mesh_up(&m, &o, 0, NULL);
    int fd = tsc_connect(m.a_http);
    /* 8 MiB download: far above the high-water marks on every hop. */
    tsc_send(fd, "GET /bytes/8388608 HTTP/1.1\r\nHost: b\r\n\r\n");
    size_t total = 0;
    char body[64];
    cr_assert_eq(tsc_read_response_total(fd, body, sizeof body, &total), 200);
    cr_assert_eq(total, 8388608);
    /* 4 MiB chunked upload on the same connection. */
    tsc_send(fd, "POST /up HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n");
    char *chunk = malloc(65536 + 16);
    int hl = snprintf(chunk, 16, "10000\r\n");
    memset(chunk + hl, 'y', 65536);
    memcpy(chunk + hl + 65536, "\r\n", 3);
    for (int i = 0; i < 64; i++)
        cr_assert_eq(tsc_send(fd, chunk), 0, "chunk %d", i);
    tsc_send(fd, "0\r\n\r\n");
    char resp[512];
    cr_assert_eq(tsc_read_response(fd, resp, sizeof resp), 200);
    cr_assert(strstr(resp, "\"bytes\":4194304"), "%s", resp);
    free(chunk);
    close(fd);
    mesh_down(&m);
}

typedef struct worker {
    int port, ok, n;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    int fd = tsc_connect(w->port);
    char body[1024];
    for (int i = 0; i < w->n; i++) {
        if (fd < 0)
            break;
        if (tsc_send(fd, "GET /c HTTP/1.1\r\nHost: b\r\n\r\n") != 0)
            break;
        if (tsc_read_response(fd, body, sizeof body) == 200 && strstr(body, "\"app\":\"b\""))
            w->ok++;
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

Test(sidecar_proxy, concurrent_clients)
{
    mesh2 m;
    a_opts o = {.san = ID_B};
    mesh_up(&m, &o, 0, NULL);
    enum { N = 16, PER = 40 };
    pthread_t t[N];
    worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker){.port = m.a_http, .n = PER};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok;
    }
    cr_assert_eq(ok, N * PER);
    EVENTUALLY(stats(m.a).rq_by_class[0][2] == N * PER);
    dp_stats_view a = stats(m.a);
    cr_assert_eq(a.rq_by_class[0][2], N * PER);
    cr_assert(a.up_hs_ok <= N, "upstream connections are pooled (%llu handshakes)",
              (unsigned long long)a.up_hs_ok);
    EVENTUALLY(stats(m.a).active_down == 0);
    cr_assert_eq(stats(m.a).active_down, 0);
    mesh_down(&m);
}

Test(sidecar_proxy, post_config_is_asynchronous)
{
    tsc_ca *ca = tsc_ca_new("r");
    int64_t now = now_s();
    cert_pool *p = make_pool(ca, ID_A, now - 10, now + 600);
    dp_proxy *px;
    mesh_err e;
    dp_proxy_opts o = {.pool = p};
    cr_assert_eq(dp_proxy_new(&o, &px, &e), MESH_OK);
    cr_assert_eq(dp_proxy_start(px, &e), MESH_OK);
    cr_assert_null(dp_proxy_current_config(px));
    cr_assert_eq(dp_proxy_listener_port(px, "l"), -1);
    dp_config *c = dp_config_new();
    dp_listener l = {.name = "l", .address = "127.0.0.1:0", .kind = DP_LISTENER_OUTBOUND_HTTP,
                     .route_table = "rt"};
    dp_config_add_listener(c, &l, &e);
    dp_config *unfrozen = dp_config_copy(c, DP_TABLE_ALL);
    cr_assert_eq(dp_proxy_post_config(px, unfrozen, &e), MESH_EINVAL);
    dp_config_unref(unfrozen);
    dp_config_freeze(c, &e);
    cr_assert_eq(dp_proxy_post_config(px, c, &e), MESH_OK);
    dp_config_unref(c);     /* the mailbox holds its own reference */
    EVENTUALLY(dp_proxy_listener_port(px, "l") > 0);
    int port = dp_proxy_listener_port(px, "l");
    cr_assert(port > 0);
    char body[1024];
    cr_assert_eq(tsc_http_get(port, "anything", "/", NULL, body, sizeof body), 404);
    cr_assert(strstr(body, "route table 'rt' has not been received"), "%s", body);
    dp_proxy_stop(px);
    dp_proxy_free(px);
    cert_pool_free(p);
    tsc_ca_free(ca);
}
