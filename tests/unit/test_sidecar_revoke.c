/* tests/unit/test_sidecar_revoke.c — revocation on live connections
 * (sidecar/proxy_revoke.c) with real data planes on their loop threads and
 * real sockets on 127.0.0.1:
 *
 *   raw TLS client (a's cert) -> B inbound -> app        (inbound side)
 *   client -> A outbound -> mTLS -> B inbound -> app/echo (upstream side)
 *
 * When a pool takes a CRL that lists a certificate on an established
 * connection, that connection is closed within about a second — inbound
 * sessions and upstream connections alike — new handshakes with it are
 * refused, and everyone else keeps working. Inbound HTTP and TCP sessions are
 * closed by the shared session lifecycle (dp_sessions_close_revoked). */
#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
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

static int64_t now_s(void) { return (int64_t)time(NULL); }

typedef struct side {
    cert_pool *pool;
    dp_proxy *px;
    char *chain, *key;
} side;

static void side_up(side *s, tsc_ca *ca, const char *id)
{
    mesh_err e;
    cr_assert_eq(cert_pool_new(&s->pool, &e), MESH_OK);
    char *bundle = tsc_ca_pem(ca);
    tsc_leaf(ca, id, now_s() - 10, now_s() + 3600, &s->chain, &s->key);
    cr_assert_eq(cert_pool_set_bundle(s->pool, bundle, now_s(), &e), MESH_OK);
    cr_assert_eq(cert_pool_offer_svid(s->pool, s->chain, s->key, now_s(), &e), MESH_OK);
    free(bundle);
    dp_proxy_opts o = {.pool = s->pool, .rng_seed = 7};
    cr_assert_eq(dp_proxy_new(&o, &s->px, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_proxy_start(s->px, &e), MESH_OK);
}

static void side_down(side *s)
{
    dp_proxy_free(s->px);
    cert_pool_free(s->pool);
    free(s->chain);
    free(s->key);
}

static void apply(dp_proxy *px, dp_config *c)
{
    mesh_err e;
    cr_assert_eq(dp_config_freeze(c, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_proxy_apply_config(px, c, &e), MESH_OK, "%s", e.msg);
    dp_config_unref(c);
}

/* B: inbound HTTP -> app and inbound TCP -> echo, callers A and C. */
static void b_config(side *b, tsc_backend *app, tsc_backend *echo)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    char *allow[] = {ID_A, ID_C};
    dp_listener lh = {.name = "inbound|http", .address = "127.0.0.1:0",
                      .kind = DP_LISTENER_INBOUND_HTTP, .allowed_ids = allow, .n_allowed = 2,
                      .local_cluster = "local|app"};
    dp_listener lt = {.name = "inbound|tcp", .address = "127.0.0.1:0",
                      .kind = DP_LISTENER_INBOUND_TCP, .allowed_ids = allow, .n_allowed = 2,
                      .local_cluster = "local|echo"};
    cr_assert_eq(dp_config_add_listener(c, &lh, &e), MESH_OK);
    cr_assert_eq(dp_config_add_listener(c, &lt, &e), MESH_OK);
    char ap[64], ep[64];
    snprintf(ap, sizeof ap, "127.0.0.1:%d", tsc_backend_port(app));
    snprintf(ep, sizeof ep, "127.0.0.1:%d", tsc_backend_port(echo));
    dp_endpoint ea = {.address = ap}, ee = {.address = ep};
    dp_cluster ca = {.name = "local|app", .endpoints = &ea, .n_endpoints = 1};
    dp_cluster ce = {.name = "local|echo", .endpoints = &ee, .n_endpoints = 1};
    cr_assert_eq(dp_config_add_cluster(c, &ca, &e), MESH_OK);
    cr_assert_eq(dp_config_add_cluster(c, &ce, &e), MESH_OK);
    apply(b->px, c);
}

/* A: outbound HTTP (host "b") and outbound TCP to B over mTLS. */
static void a_config(side *a, int b_http, int b_tcp)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    dp_listener lh = {.name = "outbound|http", .address = "127.0.0.1:0",
                      .kind = DP_LISTENER_OUTBOUND_HTTP, .route_table = "outbound|http"};
    dp_listener lt = {.name = "outbound|tcp", .address = "127.0.0.1:0",
                      .kind = DP_LISTENER_OUTBOUND_TCP, .cluster = "outbound|echo"};
    cr_assert_eq(dp_config_add_listener(c, &lh, &e), MESH_OK);
    cr_assert_eq(dp_config_add_listener(c, &lt, &e), MESH_OK);
    char bh[64], bt[64];
    snprintf(bh, sizeof bh, "127.0.0.1:%d", b_http);
    snprintf(bt, sizeof bt, "127.0.0.1:%d", b_tcp);
    char *san[] = {ID_B};
    dp_endpoint eh = {.address = bh}, et = {.address = bt};
    dp_cluster cb = {.name = "outbound|b", .tls = true, .endpoints = &eh, .n_endpoints = 1,
                     .san_ids = san, .n_san = 1, .connect_timeout_ms = 1000};
    dp_cluster ce = {.name = "outbound|echo", .tls = true, .endpoints = &et, .n_endpoints = 1,
                     .san_ids = san, .n_san = 1, .connect_timeout_ms = 1000};
    cr_assert_eq(dp_config_add_cluster(c, &cb, &e), MESH_OK);
    cr_assert_eq(dp_config_add_cluster(c, &ce, &e), MESH_OK);
    dp_weighted_cluster to_b = {.cluster = "outbound|b", .weight = 100};
    dp_route r = {.path_kind = DP_PATH_PREFIX, .path = "/", .clusters = &to_b, .n_clusters = 1,
                  .timeout_ms = 3000};
    char *doms[] = {"b"};
    dp_virtual_host vh = {.name = "b", .domains = doms, .n_domains = 1, .routes = &r,
                          .n_routes = 1};
    dp_route_table rt = {.name = "outbound|http", .vhosts = &vh, .n_vhosts = 1};
    cr_assert_eq(dp_config_add_route_table(c, &rt, &e), MESH_OK);
    apply(a->px, c);
}

static dp_stats_view stats(dp_proxy *px)
{
    dp_stats_view v;
    dp_proxy_get_stats(px, &v);
    return v;
}

#define EVENTUALLY(cond)                                                                       \
    do {                                                                                       \
        for (int i_ = 0; i_ < 300 && !(cond); i_++)                                            \
            usleep(10000);                                                                     \
    } while (0)

/* A TLS client with its own certificate, as openssl s_client -cert -key. */
typedef struct tls_client {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
} tls_client;

static bool tls_open(tls_client *t, int port, const char *chain, const char *key)
{
    memset(t, 0, sizeof *t);
    t->ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION);
    BIO *bc = BIO_new_mem_buf(chain, -1), *bk = BIO_new_mem_buf(key, -1);
    X509 *x = PEM_read_bio_X509(bc, NULL, NULL, NULL);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bk, NULL, NULL, NULL);
    SSL_CTX_use_certificate(t->ctx, x);
    SSL_CTX_use_PrivateKey(t->ctx, k);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(bc);
    BIO_free(bk);
    t->fd = tsc_connect(port);
    t->ssl = SSL_new(t->ctx);
    SSL_set_fd(t->ssl, t->fd);
    bool ok = SSL_connect(t->ssl) == 1;
    ERR_clear_error();
    return ok;
}

/* One keep-alive GET on the connection; the status, 0 on failure. */
static int tls_get(tls_client *t)
{
    const char req[] = "GET / HTTP/1.1\r\nHost: b\r\n\r\n";
    if (SSL_write(t->ssl, req, (int)strlen(req)) <= 0)
        return 0;
    char buf[4096];
    int n = SSL_read(t->ssl, buf, sizeof buf - 1);
    ERR_clear_error();
    if (n <= 12)
        return 0;
    buf[n] = '\0';
    return atoi(buf + 9);
}

static void tls_close(tls_client *t)
{
    SSL_free(t->ssl);
    if (t->fd >= 0)
        close(t->fd);
    SSL_CTX_free(t->ctx);
}

static void revoke_on(side *s, tsc_ca *ca, const char *leaf_pem)
{
    const char *revoked[] = {leaf_pem};
    char *crl = tsc_crl(ca, revoked, 1, 1, 2, now_s() - 5, now_s() + 3600);
    char *bundle = tsc_ca_pem(ca);
    mesh_err e;
    cr_assert_eq(cert_pool_set_trust(s->pool, bundle, crl, now_s(), &e), MESH_OK, "%s", e.msg);
    free(crl);
    free(bundle);
}

Test(sidecar_revoke, inbound_connection_of_a_revoked_caller_is_closed)
{
    tsc_ca *ca = tsc_ca_new("mesh root");
    tsc_backend *app = tsc_backend_start("b", false), *echo = tsc_backend_start("e", true);
    side b;
    side_up(&b, ca, ID_B);
    b_config(&b, app, echo);
    int port = dp_proxy_listener_port(b.px, "inbound|http");
    char *ca_chain, *ca_key, *cc_chain, *cc_key;
    tsc_leaf(ca, ID_A, now_s() - 10, now_s() + 3600, &ca_chain, &ca_key);
    tsc_leaf(ca, ID_C, now_s() - 10, now_s() + 3600, &cc_chain, &cc_key);
    tls_client t;
    cr_assert(tls_open(&t, port, ca_chain, ca_key));
    cr_assert_eq(tls_get(&t), 200);
    cr_assert_eq(tls_get(&t), 200, "keep-alive");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    revoke_on(&b, ca, ca_chain);
    cr_assert(tsc_wait_closed(t.fd, 3000), "the revoked caller's live connection stays open");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_assert_lt(ms, 1500, "closed %lld ms after the CRL arrived", (long long)ms);
    EVENTUALLY(stats(b.px).closed_revoked >= 1);
    cr_assert_eq(stats(b.px).closed_revoked, 1);
    tls_close(&t);
    /* A new handshake with the revoked certificate is refused... */
    tls_client t2;
    bool opened = tls_open(&t2, port, ca_chain, ca_key);
    cr_assert(!opened || tls_get(&t2) == 0, "a new connection with the revoked cert works");
    tls_close(&t2);
    EVENTUALLY(stats(b.px).tls_refused_revoked >= 1);
    cr_assert_geq(stats(b.px).tls_refused_revoked, 1);
    /* ... and everyone else is fine, on the same listener. */
    tls_client t3;
    cr_assert(tls_open(&t3, port, cc_chain, cc_key));
    cr_assert_eq(tls_get(&t3), 200);
    tls_close(&t3);
    free(ca_chain);
    free(ca_key);
    free(cc_chain);
    free(cc_key);
    side_down(&b);
    tsc_backend_stop(app);
    tsc_backend_stop(echo);
    tsc_ca_free(ca);
}

/* One echo round trip on an inbound TCP session; true when it came back. */
static bool tls_echo(tls_client *t)
{
    if (SSL_write(t->ssl, "ping", 4) != 4)
        return false;
    char buf[8];
    int n = SSL_read(t->ssl, buf, sizeof buf);
    ERR_clear_error();
    return n == 4 && memcmp(buf, "ping", 4) == 0;
}

/* HTTP and TCP sessions share one lifecycle: one CRL closes the revoked caller's
 * sessions of both kinds, and only those. */
Test(sidecar_revoke, inbound_http_and_tcp_sessions_of_a_revoked_caller_close_together)
{
    tsc_ca *ca = tsc_ca_new("mesh root");
    tsc_backend *app = tsc_backend_start("b", false), *echo = tsc_backend_start("e", true);
    side b;
    side_up(&b, ca, ID_B);
    b_config(&b, app, echo);
    int http = dp_proxy_listener_port(b.px, "inbound|http");
    int tcp = dp_proxy_listener_port(b.px, "inbound|tcp");
    char *ca_chain, *ca_key, *cc_chain, *cc_key;
    tsc_leaf(ca, ID_A, now_s() - 10, now_s() + 3600, &ca_chain, &ca_key);
    tsc_leaf(ca, ID_C, now_s() - 10, now_s() + 3600, &cc_chain, &cc_key);
    tls_client a_http, a_tcp, c_tcp;
    cr_assert(tls_open(&a_http, http, ca_chain, ca_key));
    cr_assert_eq(tls_get(&a_http), 200);
    cr_assert(tls_open(&a_tcp, tcp, ca_chain, ca_key));
    cr_assert(tls_echo(&a_tcp));
    cr_assert(tls_open(&c_tcp, tcp, cc_chain, cc_key));
    cr_assert(tls_echo(&c_tcp));
    revoke_on(&b, ca, ca_chain);
    cr_assert(tsc_wait_closed(a_tcp.fd, 3000), "the revoked caller's TCP session stays open");
    cr_assert(tsc_wait_closed(a_http.fd, 3000), "the revoked caller's HTTP session stays open");
    EVENTUALLY(stats(b.px).closed_revoked >= 2);
    cr_assert_eq(stats(b.px).closed_revoked, 2, "one HTTP and one TCP session");
    cr_assert(tls_echo(&c_tcp), "another caller's TCP session is untouched");
    tls_close(&a_http);
    tls_close(&a_tcp);
    tls_close(&c_tcp);
    free(ca_chain);
    free(ca_key);
    free(cc_chain);
    free(cc_key);
    side_down(&b);
    tsc_backend_stop(app);
    tsc_backend_stop(echo);
    tsc_ca_free(ca);
}

Test(sidecar_revoke, upstream_connections_to_a_revoked_peer_are_closed)
{
    tsc_ca *ca = tsc_ca_new("mesh root");
    tsc_backend *app = tsc_backend_start("b", false), *echo = tsc_backend_start("e", true);
    side a, b;
    side_up(&b, ca, ID_B);
    side_up(&a, ca, ID_A);
    b_config(&b, app, echo);
    a_config(&a, dp_proxy_listener_port(b.px, "inbound|http"),
             dp_proxy_listener_port(b.px, "inbound|tcp"));
    int a_http = dp_proxy_listener_port(a.px, "outbound|http");
    int a_tcp = dp_proxy_listener_port(a.px, "outbound|tcp");
    char body[4096];
    cr_assert_eq(tsc_http_get(a_http, "b", "/", NULL, body, sizeof body), 200);
    EVENTUALLY(stats(a.px).active_up >= 1);   /* pooled, idle */
    int fd = tsc_connect(a_tcp);
    cr_assert_eq(tsc_send(fd, "hi"), 0);
    char buf[8];
    cr_assert_eq(recv(fd, buf, sizeof buf, 0), 2);
    /* A learns that B's certificate is revoked. */
    revoke_on(&a, ca, b.chain);
    cr_assert(tsc_wait_closed(fd, 3000), "the TCP chain to the revoked peer stays open");
    close(fd);
    EVENTUALLY(stats(a.px).closed_revoked >= 2);
    cr_assert_geq(stats(a.px).closed_revoked, 2, "the pooled HTTP connection and the TCP one");
    EVENTUALLY(stats(a.px).active_up == 0);
    cr_assert_eq(stats(a.px).active_up, 0);
    /* No new connection to B: A answers 503. */
    cr_assert_eq(tsc_http_get(a_http, "b", "/", NULL, body, sizeof body), 503);
    cr_assert(strstr(body, "revoked"), "the reply says why: %s", body);
    side_down(&a);
    side_down(&b);
    tsc_backend_stop(app);
    tsc_backend_stop(echo);
    tsc_ca_free(ca);
}
