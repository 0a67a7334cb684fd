/* tests/unit/test_sidecar_http.c — http-parser glue (fragmented input,
 * pipelining, limits, responses) and the wire writers (forwarded heads,
 * framing, local replies). */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/http_msg.h"
#include "sidecar/http_wire.h"

typedef struct seen {
    int heads, dones;
    char url[256];
    char hdrs[1024];        /* "name=value;" ... */
    char body[1024];
    size_t body_len;
    bool pause_after;
    int head_rc;
} seen;

static int s_head(void *arg, dp_http_reader *r)
{
    seen *s = arg;
    s->heads++;
    size_t ul;
    const char *u = dp_http_head_url(&r->head, &ul);
    snprintf(s->url, sizeof s->url, "%.*s", (int)ul, u);
    s->hdrs[0] = '\0';
    for (size_t i = 0; i < r->head.n; i++) {
        const dp_http_header *h = &r->head.view[i];
        size_t l = strlen(s->hdrs);
        snprintf(s->hdrs + l, sizeof s->hdrs - l, "%.*s=%.*s;", (int)h->name_len, h->name,
                 (int)h->value_len, h->value);
    }
    return s->head_rc;
}

static int s_body(void *arg, const char *at, size_t len)
{
    seen *s = arg;
    memcpy(s->body + s->body_len, at, len);
    s->body_len += len;
    s->body[s->body_len] = '\0';
    return 0;
}

static int s_done(void *arg, dp_http_reader *r)
{
    seen *s = arg;
    s->dones++;
    if (s->pause_after)
        dp_http_reader_pause(r, true);
    return 0;
}

static const dp_http_reader_cbs cbs = {.on_head = s_head, .on_body = s_body, .on_done = s_done};

static const char REQ[] =
    "POST /upload/a?b=1 HTTP/1.1\r\n"
    "Host: reviews:9080\r\n"
    "X-Empty:\r\n"
    "X-Long-Header-Name: some value with spaces\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "5\r\nhello\r\n"
    "7\r\n, world\r\n"
    "0\r\n\r\n";

Test(sidecar_http, fragmented_input_byte_by_byte)
{
    dp_http_reader r = {0};
    seen s = {0};
    dp_http_reader_init(&r, HTTP_REQUEST, &cbs, &s);
    size_t n = strlen(REQ);
    for (size_t i = 0; i < n; i++) {
        int st;
        size_t used = dp_http_reader_feed(&r, REQ + i, 1, &st);
        cr_assert_eq(st, DP_HTTP_OK, "byte %zu: %s", i, dp_http_reader_error(&r));
        cr_assert_eq(used, 1);
    }
    cr_assert_eq(s.heads, 1);
    cr_assert_eq(s.dones, 1);
    cr_assert_str_eq(s.url, "/upload/a?b=1");
    cr_assert_str_eq(s.hdrs, "Host=reviews:9080;X-Empty=;X-Long-Header-Name=some value with "
                             "spaces;Transfer-Encoding=chunked;",
                     "got %s", s.hdrs);
    cr_assert_str_eq(s.body, "hello, world");
    cr_assert(r.head.chunked);
    cr_assert_eq(r.head.method, HTTP_POST);
    cr_assert(r.head.keep_alive);
    const dp_http_header *h = dp_http_head_find(&r.head, "x-long-header-name");
    cr_assert_not_null(h);
    cr_assert_eq(h->value_len, strlen("some value with spaces"));
    dp_http_reader_free(&r);
}

Test(sidecar_http, fragments_at_every_split_point)
{
    size_t n = strlen(REQ);
    for (size_t cut = 1; cut < n; cut++) {
        dp_http_reader r = {0};
        seen s = {0};
        dp_http_reader_init(&r, HTTP_REQUEST, &cbs, &s);
        int st1, st2;
        dp_http_reader_feed(&r, REQ, cut, &st1);
        dp_http_reader_feed(&r, REQ + cut, n - cut, &st2);
        cr_assert(st1 == DP_HTTP_OK && st2 == DP_HTTP_OK, "cut %zu", cut);
        cr_assert_eq(s.dones, 1, "cut %zu", cut);
        cr_assert_str_eq(s.body, "hello, world", "cut %zu", cut);
        cr_assert(strstr(s.hdrs, "X-Long-Header-Name=some value with spaces;"), "cut %zu: %s",
                  cut, s.hdrs);
        dp_http_reader_free(&r);
    }
}

Test(sidecar_http, pipelined_requests_pause_between_messages)
{
    const char two[] = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    dp_http_reader r = {0};
    seen s = {.pause_after = true};
    dp_http_reader_init(&r, HTTP_REQUEST, &cbs, &s);
    int st;
    size_t used = dp_http_reader_feed(&r, two, strlen(two), &st);
    cr_assert_eq(st, DP_HTTP_PAUSED);
    cr_assert_eq(used, strlen("GET /one HTTP/1.1\r\nHost: a\r\n\r\n"), "stops after message 1");
    cr_assert_str_eq(s.url, "/one");
    cr_assert_eq(s.dones, 1);
    dp_http_reader_pause(&r, false);
    size_t used2 = dp_http_reader_feed(&r, two + used, strlen(two) - used, &st);
    cr_assert_eq(st, DP_HTTP_PAUSED);
    cr_assert_eq(used + used2, strlen(two));
    cr_assert_str_eq(s.url, "/two");
    cr_assert_str_eq(s.body, "abc");
    cr_assert_eq(s.dones, 2);
    dp_http_reader_free(&r);
}

Test(sidecar_http, malformed_and_oversized_heads_fail)
{
    dp_http_reader r = {0};
    seen s = {0};
    int st;
    dp_http_reader_init(&r, HTTP_REQUEST, &cbs, &s);
    dp_http_reader_feed(&r, "GET / HTTP/1.1\r\nBad Header\r\n\r\n", 30, &st);
    cr_assert_eq(st, DP_HTTP_ERROR);
    cr_assert(!dp_http_reader_head_too_big(&r));
    cr_assert_not_null(dp_http_reader_error(&r));

    /* Content-Length with chunked is a smuggling vector: refused. */
    dp_http_reader_init(&r, HTTP_REQUEST, &cbs, &s);
    const char smug[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    dp_http_reader_feed(&r, smug, strlen(smug), &st);
    cr_assert_eq(st, DP_HTTP_ERROR);

    dp_http_reader_init(&r, HTTP_REQUEST, &cbs, &s);
    size_t big = DP_HTTP_MAX_HEAD + 100;
    char *req = malloc(big + 64);
    strcpy(req, "GET / HTTP/1.1\r\nX-Big: ");
    size_t l = strlen(req);
    memset(req + l, 'a', big);
    strcpy(req + l + big, "\r\n\r\n");
    dp_http_reader_feed(&r, req, strlen(req), &st);
    cr_assert_eq(st, DP_HTTP_ERROR);
    cr_assert(dp_http_reader_head_too_big(&r));
    cr_assert_str_eq(dp_http_reader_error(&r), "request head over 65536 bytes");
    cr_assert_eq(dp_http_reader_error_status(&r), 431);
    free(req);

    /* Too many headers. */
    dp_http_reader_init(&r, HTTP_REQUEST, &cbs, &s);
    char many[8192] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < DP_HTTP_MAX_HEADERS + 1; i++) {
        size_t ml = strlen(many);
        snprintf(many + ml, sizeof many - ml, "h%d: v\r\n", i);
    }
    strcat(many, "\r\n");
    dp_http_reader_feed(&r, many, strlen(many), &st);
    cr_assert_eq(st, DP_HTTP_ERROR);
    cr_assert(dp_http_reader_head_too_big(&r));
    dp_http_reader_free(&r);
}

Test(sidecar_http, responses_close_delimited_and_head)
{
    dp_http_reader r = {0};
    seen s = {0};
    int st;
    dp_http_reader_init(&r, HTTP_RESPONSE, &cbs, &s);
    const char resp[] = "HTTP/1.1 200 Fine\r\nServer: x\r\n\r\nbody until close";
    dp_http_reader_feed(&r, resp, strlen(resp), &st);
    cr_assert_eq(st, DP_HTTP_OK);
    cr_assert_eq(s.dones, 0, "no length: not complete until EOF");
    cr_assert(r.in_message);
    cr_assert(!r.head.keep_alive);
    size_t rl;
    const char *reason = dp_http_head_reason(&r.head, &rl);
    cr_assert_eq(rl, 4);
    cr_assert(strncmp(reason, "Fine", 4) == 0);
    dp_http_reader_feed(&r, NULL, 0, &st);
    cr_assert_eq(s.dones, 1);
    cr_assert_str_eq(s.body, "body until close");

    /* Response to HEAD: Content-Length but no body follows. */
    seen h = {.head_rc = 1};
    dp_http_reader_init(&r, HTTP_RESPONSE, &cbs, &h);
    const char hr[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                      "HTTP/1.1 204 No Content\r\n\r\n";
    dp_http_reader_feed(&r, hr, strlen(hr), &st);
    cr_assert_eq(st, DP_HTTP_OK);
    cr_assert_eq(h.dones, 2, "both messages complete without bodies");
    dp_http_reader_free(&r);
}

static char *drain(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

/* Parses a request head through the reader so wire tests use real heads. */
static void parse_head(dp_http_reader *r, seen *s, enum http_parser_type t, const char *txt)
{
    memset(r, 0, sizeof *r);
    dp_http_reader_init(r, t, &cbs, s);
    int st;
    dp_http_reader_feed(r, txt, strlen(txt), &st);
    cr_assert_neq(st, DP_HTTP_ERROR, "%s", dp_http_reader_error(r));
}

Test(sidecar_http, forwarded_request_head)
{
    dp_http_reader r;
    seen s = {0};
    parse_head(&r, &s, HTTP_REQUEST,
               "PUT /x HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, X-Secret\r\n"
               "X-Secret: drop me\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
               "X-Forwarded-Client-Cert: By=forged\r\nx_forwarded_client_cert: By=forged\r\n"
               "X-FORWARDED-Client-Cert: By=forged\r\nContent-Length: 2\r\n"
               "Upgrade: nothing\r\nAccept: */*\r\n\r\nhi");
    struct evbuffer *out = evbuffer_new();
    dp_wire_req_opts in = {.inbound = true, .request_id = "rid-1",
                           .own_id = "spiffe://td/ns/a/sa/server",
                           .peer_id = "spiffe://td/ns/a/sa/client"};
    cr_assert_gt(dp_wire_request_head(out, &r.head, &in), 0);
    char *t = drain(out);
    cr_assert(strncmp(t, "PUT /x HTTP/1.1\r\n", 17) == 0, "%s", t);
    cr_assert(strstr(t, "Host: svc\r\n"));
    cr_assert(strstr(t, "Accept: */*\r\n"));
    cr_assert_null(strstr(t, "X-Secret"), "named in Connection: hop-by-hop");
    cr_assert_null(strstr(t, "Keep-Alive"));
    cr_assert_null(strstr(t, "TE:"));
    cr_assert_null(strstr(t, "Upgrade"));
    cr_assert_null(strstr(t, "forged"), "a caller cannot forge XFCC");
    cr_assert(strstr(t, "content-length: 2\r\n"));
    cr_assert(strstr(t, "x-request-id: rid-1\r\n"));
    cr_assert(strstr(t, "x-forwarded-proto: https\r\n"));
    cr_assert(strstr(t, "x-forwarded-client-cert: By=spiffe://td/ns/a/sa/server;"
                        "URI=spiffe://td/ns/a/sa/client\r\n"), "%s", t);
    cr_assert(strstr(t, "\r\n\r\n") == t + strlen(t) - 4, "head ends the buffer");
    free(t);
    dp_http_reader_free(&r);

    /* Outbound: the client's x-request-id is the one stated; chunked
     * re-stated; no XFCC. */
    seen s2 = {0};
    parse_head(&r, &s2, HTTP_REQUEST,
               "POST /y HTTP/1.1\r\nHost: svc\r\nX-Request-Id: mine\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
    char rid[64];
    cr_assert(dp_wire_client_request_id(&r.head, rid, sizeof rid));
    cr_assert_str_eq(rid, "mine");
    dp_wire_req_opts o = {.inbound = false, .request_id = rid};
    dp_wire_request_head(out, &r.head, &o);
    t = drain(out);
    cr_assert(strncmp(t, "POST /y HTTP/1.1\r\n", 18) == 0, "upstream is always 1.1: %s", t);
    cr_assert(strstr(t, "x-request-id: mine\r\n"), "%s", t);
    cr_assert_null(strstr(strstr(t, "mine") + 4, "mine"), "stated once: %s", t);
    cr_assert(strstr(t, "transfer-encoding: chunked\r\n"));
    cr_assert(strstr(t, "x-forwarded-proto: http\r\n"));
    cr_assert_null(strstr(t, "x-forwarded-client-cert"));
    free(t);
    dp_http_reader_free(&r);
    evbuffer_free(out);
}

Test(sidecar_http, response_framing_for_the_client)
{
    struct evbuffer *out = evbuffer_new();
    dp_http_reader r;
    seen s = {0};
    bool ka, chunked;
    char *t;

    parse_head(&r, &s, HTTP_RESPONSE,
               "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n");
    ka = true;
    dp_wire_response_head(out, &r.head, false, false, &ka, &chunked);
    t = drain(out);
    cr_assert(strstr(t, "content-length: 5\r\n"));
    cr_assert(!chunked && ka);
    cr_assert_null(strstr(t, "onnection"));
    free(t);
    dp_http_reader_free(&r);

    /* Close-delimited upstream body -> chunked to an HTTP/1.1 client. */
    parse_head(&r, &s, HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    ka = true;
    dp_wire_response_head(out, &r.head, false, false, &ka, &chunked);
    t = drain(out);
    cr_assert(chunked && ka, "the client keeps its connection");
    cr_assert(strstr(t, "transfer-encoding: chunked\r\n"));
    free(t);
    dp_wire_chunk(out, "abc", 3);
    dp_wire_chunk(out, NULL, 0);
    t = drain(out);
    cr_assert_str_eq(t, "3\r\nabc\r\n0\r\n\r\n");
    free(t);

    /* ... and close-delimited to an HTTP/1.0 client. */
    ka = true;
    dp_wire_response_head(out, &r.head, false, true, &ka, &chunked);
    t = drain(out);
    cr_assert(!chunked && !ka);
    cr_assert(strstr(t, "connection: close\r\n"));
    free(t);
    dp_http_reader_free(&r);

    /* HEAD keeps the length, 1.0 keep-alive is announced. */
    parse_head(&r, &s, HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n");
    ka = true;
    dp_wire_response_head(out, &r.head, true, true, &ka, &chunked);
    t = drain(out);
    cr_assert(strstr(t, "content-length: 99\r\n"));
    cr_assert(strstr(t, "connection: keep-alive\r\n"));
    cr_assert(ka);
    free(t);
    dp_http_reader_free(&r);

    dp_wire_local_reply(out, 404, "no route for host 'x'", false, true, false, "rid");
    t = drain(out);
    cr_assert(strncmp(t, "HTTP/1.1 404 Not Found\r\n", 24) == 0, "%s", t);
    cr_assert(strstr(t, "content-length: 22\r\n"));
    cr_assert(strstr(t, "x-request-id: rid\r\n"));
    cr_assert(strstr(t, "\r\n\r\nno route for host 'x'\n"));
    free(t);
    dp_wire_local_reply(out, 503, "x", true, false, false, NULL);
    t = drain(out);
    cr_assert(strstr(t, "connection: close\r\n"));
    cr_assert(strstr(t, "\r\n\r\n") == t + strlen(t) - 4, "HEAD: no body");
    cr_assert_null(strstr(t, "x-envoy-overloaded"));
    free(t);
    /* A circuit breaker's 503 carries Envoy's x-envoy-overloaded in its head. */
    dp_wire_local_reply_ex(out, 503, "upstream overflow", false, true, false, "rid",
                           "x-envoy-overloaded: true");
    t = drain(out);
    char *hdr_end = strstr(t, "\r\n\r\n");
    char *field = strstr(t, "\r\nx-envoy-overloaded: true\r\n");
    cr_assert(hdr_end && field && field < hdr_end, "%s", t);
    cr_assert(strstr(t, "\r\n\r\nupstream overflow\n"), "%s", t);
    free(t);
    evbuffer_free(out);
}

Test(sidecar_http, request_ids_are_uuid4)
{
    dp_rng rng;
    dp_rng_seed(&rng, 5);
    char a[37], b[37];
    dp_wire_request_id(&rng, a);
    dp_wire_request_id(&rng, b);
    cr_assert_eq(strlen(a), 36);
    cr_assert_eq(a[14], '4');
    cr_assert(strchr("89ab", a[19]));
    cr_assert_str_neq(a, b);
    cr_assert(dp_wire_hop_by_hop("Transfer-Encoding", 17));
    cr_assert(!dp_wire_hop_by_hop("x-request-id", 12));
}
