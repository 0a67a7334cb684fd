/* tests/unit/test_sidecar_http_hostile.c — one data plane on its loop
 * thread between a blocking test client and a raw upstream socket that the
 * test scripts byte by byte:
 *
 *   client -> outbound listener -> plain cluster -> raw upstream (this test)
 *
 * So the test sees exactly the head the sidecar forwards (mesh-owned
 * headers in any spelling removed and re-stated), can send responses that
 * break RFC 9112 (502, never forwarded), and can interleave a malformed
 * request body with a response that is still streaming. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sidecar/proxy.h"
#include "test_sidecar_util.h"

typedef struct rig {
    cert_pool *pool;
    dp_proxy *px;
    int upstream_lfd;           /* the raw upstream's listening socket */
    int port;                   /* the outbound listener */
} rig;

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 16), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

static dp_config *config(int upstream_port)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    dp_listener out = {.name = "out", .address = "127.0.0.1:0",
                       .kind = DP_LISTENER_OUTBOUND_HTTP, .route_table = "rt"};
    cr_assert_eq(dp_config_add_listener(c, &out, &e), MESH_OK, "%s", e.msg);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", upstream_port);
    dp_endpoint ep = {.address = addr};
    dp_cluster raw = {.name = "raw", .endpoints = &ep, .n_endpoints = 1,
                      .connect_timeout_ms = 1000};
    cr_assert_eq(dp_config_add_cluster(c, &raw, &e), MESH_OK, "%s", e.msg);
    dp_weighted_cluster to_raw = {.cluster = "raw", .weight = 1};
    dp_route route = {.path_kind = DP_PATH_PREFIX, .path = "/", .clusters = &to_raw,
                      .n_clusters = 1, .timeout_ms = 5000};
    char *any[] = {"*"};
    dp_virtual_host vh = {.name = "all", .domains = any, .n_domains = 1, .routes = &route,
                          .n_routes = 1};
    dp_route_table rt = {.name = "rt", .vhosts = &vh, .n_vhosts = 1};
    cr_assert_eq(dp_config_add_route_table(c, &rt, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_config_freeze(c, &e), MESH_OK, "%s", e.msg);
    return c;
}

static void rig_up(rig *r)
{
    memset(r, 0, sizeof *r);
    mesh_err e;
    int up_port;
    r->upstream_lfd = listen_loopback(&up_port);
    cr_assert_eq(cert_pool_new(&r->pool, &e), MESH_OK);
    dp_proxy_opts o = {.pool = r->pool, .rng_seed = 3};
    cr_assert_eq(dp_proxy_new(&o, &r->px, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_proxy_start(r->px, &e), MESH_OK, "%s", e.msg);
    dp_config *c = config(up_port);
    cr_assert_eq(dp_proxy_apply_config(r->px, c, &e), MESH_OK, "%s", e.msg);
    dp_config_unref(c);
    r->port = dp_proxy_listener_port(r->px, "out");
    cr_assert_gt(r->port, 0);
}

static void rig_down(rig *r)
{
    dp_proxy_free(r->px);
    cert_pool_free(r->pool);
    close(r->upstream_lfd);
}

/* The connection the sidecar opened to the raw upstream. */
static int upstream_accept(rig *r)
{
    struct pollfd p = {.fd = r->upstream_lfd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 5000), 1, "the sidecar connects upstream");
    int fd = accept(r->upstream_lfd, NULL, NULL);
    cr_assert_geq(fd, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Reads until `end` has been seen (or EOF / 5 s); NUL-terminated. */
static size_t read_until(int fd, char *buf, size_t cap, const char *end)
{
    size_t n = 0;
    buf[0] = '\0';
    while (n + 1 < cap && !strstr(buf, end)) {
        ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
        buf[n] = '\0';
    }
    return n;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

Test(sidecar_http_hostile, mesh_owned_headers_in_any_spelling_are_restated)
{
    rig r;
    rig_up(&r);
    int c = tsc_connect(r.port);
    cr_assert_geq(c, 0);
    tsc_send(c, "GET /who HTTP/1.1\r\nHost: svc\r\n"
                "X-Forwarded-Client-Cert: By=forged;URI=spiffe://evil/a\r\n"
                "x_forwarded_client_cert: By=forged;URI=spiffe://evil/b\r\n"
                "X-FORWARDED-CLIENT-CERT: By=forged;URI=spiffe://evil/c\r\n"
                "X-Request-Id: one\r\nx-request-id: two\r\n"
                "X_Forwarded_Proto: https\r\n"
                "Accept: */*\r\n\r\n");
    int u = upstream_accept(&r);
    char head[8192];
    read_until(u, head, sizeof head, "\r\n\r\n");
    cr_assert(strncmp(head, "GET /who HTTP/1.1\r\n", 19) == 0, "%s", head);
    cr_assert_null(strstr(head, "forged"), "no forged identity goes on: %s", head);
    cr_assert_null(strstr(head, "_forwarded_"), "%s", head);
    cr_assert_null(strstr(head, ": one\r\n"), "two request ids: neither is trusted: %s", head);
    cr_assert_null(strstr(head, ": two\r\n"), "%s", head);
    cr_assert_eq(count(head, "x-request-id: "), 1, "%s", head);
    cr_assert_eq(count(head, "x-forwarded-proto: http\r\n"), 1, "a look-alike spelling is not "
                 "the client's x-forwarded-proto: %s", head);
    cr_assert(strstr(head, "Accept: */*\r\n"), "%s", head);
    send(u, "HTTP/1.1 204 No Content\r\n\r\n", 27, MSG_NOSIGNAL);
    char body[256];
    cr_assert_eq(tsc_read_response(c, body, sizeof body), 204);

    /* One well-formed value of each is kept. */
    tsc_send(c, "GET /again HTTP/1.1\r\nHost: svc\r\nx-request-id: trace-42\r\n"
                "x-forwarded-proto: https\r\n\r\n");
    read_until(u, head, sizeof head, "\r\n\r\n");
    cr_assert(strstr(head, "x-request-id: trace-42\r\n"), "%s", head);
    cr_assert(strstr(head, "x-forwarded-proto: https\r\n"), "%s", head);
    send(u, "HTTP/1.1 204 No Content\r\n\r\n", 27, MSG_NOSIGNAL);
    cr_assert_eq(tsc_read_response(c, body, sizeof body), 204);
    close(u);
    close(c);
    rig_down(&r);
}

static const struct {
    const char *name, *response, *why;
} bad_responses[] = {
    {"duplicate Content-Length",
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", "content-length"},
    {"Content-Length and chunked",
     "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "content-length"},
    {"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc", "whitespace"},
    {"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
     "obsolete line folding"},
    {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "bare LF"},
    {"HTTP/9.9", "HTTP/9.9 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/9.9"},
    {"gzip transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz", "gzip"},
    {"status 099", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n", "outside 100-599"},
};

Test(sidecar_http_hostile, a_malformed_response_is_502_and_never_forwarded)
{
    for (size_t i = 0; i < sizeof bad_responses / sizeof bad_responses[0]; i++) {
        rig r;
        rig_up(&r);
        int c = tsc_connect(r.port);
        tsc_send(c, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
        int u = upstream_accept(&r);
        char head[4096];
        read_until(u, head, sizeof head, "\r\n\r\n");
        send(u, bad_responses[i].response, strlen(bad_responses[i].response), MSG_NOSIGNAL);
        char body[1024];
        int st = tsc_read_response(c, body, sizeof body);
        cr_assert_eq(st, 502, "%s: %d %s", bad_responses[i].name, st, body);
        cr_assert(strstr(body, "sent a malformed HTTP response"), "%s: %s",
                  bad_responses[i].name, body);
        cr_assert(strstr(body, bad_responses[i].why), "%s: %s", bad_responses[i].name, body);
        cr_assert(tsc_wait_closed(u, 2000), "%s: the upstream connection is not reused",
                  bad_responses[i].name);
        close(u);
        close(c);
        rig_down(&r);
    }
}

Test(sidecar_http_hostile, a_bad_request_body_lets_the_streaming_response_finish)
{
    rig r;
    rig_up(&r);
    int c = tsc_connect(r.port);
    tsc_send(c, "POST /up HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3\r\nabc\r\n");
    int u = upstream_accept(&r);
    char buf[8192];
    read_until(u, buf, sizeof buf, "abc\r\n");
    /* The response starts before the request ends... */
    const char first[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345";
    send(u, first, strlen(first), MSG_NOSIGNAL);
    usleep(100000);
    /* ...then the request body turns malformed while it streams. */
    tsc_send(c, "zz\r\n");
    usleep(200000);
    send(u, "67890", 5, MSG_NOSIGNAL);
    read_until(c, buf, sizeof buf, "1234567890");
    cr_assert(strstr(buf, "\r\n\r\n1234567890"), "the whole response arrives: %s", buf);
    cr_assert(tsc_wait_closed(c, 2000), "then the connection closes");
    cr_assert(tsc_wait_closed(u, 2000), "the half-sent request's upstream is not pooled");
    close(u);
    close(c);
    rig_down(&r);
}

Test(sidecar_http_hostile, a_refusal_reaches_a_client_that_is_still_sending)
{
    /* Closing with unread input makes the kernel reset the connection: a
     * client still sending its body gets EPIPE/ECONNRESET instead of reading
     * the 400. The sidecar half-closes and drops the rest instead. */
    rig r;
    rig_up(&r);
    int c = tsc_connect(r.port);
    size_t junk = 64 * 1024;
    char head[128];
    snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: %zux\r\n\r\n",
             junk);
    cr_assert_eq(tsc_send(c, head), 0);
    usleep(100000);     /* refused by now; the body is still on its way */
    char *rest = malloc(junk + 1);
    memset(rest, 'j', junk);
    rest[junk] = '\0';
    for (int i = 0; i < 4; i++) {
        /* On a reset connection the second of these fails (EPIPE). */
        cr_assert_eq(send(c, rest, junk / 4, MSG_NOSIGNAL), (ssize_t)(junk / 4),
                     "piece %d: %s", i, strerror(errno));
        usleep(50000);
    }
    free(rest);
    char body[1024];
    cr_assert_eq(tsc_read_response(c, body, sizeof body), 400, "%s", body);
    cr_assert(strstr(body, "content-length"), "%s", body);
    cr_assert(tsc_wait_closed(c, 3000), "then it closes");
    close(c);
    rig_down(&r);
}

Test(sidecar_http_hostile, a_head_http_parser_fails_after_its_headers_is_never_forwarded)
{
    /* Found by tests/fuzz/fuzz_http_request: http-parser 2.9.4 fails a
     * message after on_headers_complete (where the proxy routes and writes
     * the forwarded head) when a field name begins with Transfer-Encoding.
     * The reader now refuses such a name itself, with a reason; either way
     * the head stays unsent: 400, and the upstream sees nothing. */
    rig r;
    rig_up(&r);
    int c = tsc_connect(r.port);
    tsc_send(c, "POST / HTTP/1.1\r\nHost: svc\r\nTransfer-EncodingT: chunked\r\n\r\n");
    char body[1024];
    cr_assert_eq(tsc_read_response(c, body, sizeof body), 400, "%s", body);
    cr_assert(strstr(body, "begins with Transfer-Encoding"), "%s", body);
    struct pollfd p = {.fd = r.upstream_lfd, .events = POLLIN};
    if (poll(&p, 1, 300) == 1) {
        int u = accept(r.upstream_lfd, NULL, NULL);
        char got[4096];
        struct timeval tv = {.tv_usec = 300000};
        setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t k = recv(u, got, sizeof got - 1, 0);
        cr_assert_leq(k, 0, "the upstream got %zd bytes: %.*s", k, (int)(k > 0 ? k : 0), got);
        close(u);
    }
    close(c);
    rig_down(&r);
}
