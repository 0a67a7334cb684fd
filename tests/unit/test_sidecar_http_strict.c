/* tests/unit/test_sidecar_http_strict.c — the reader's RFC 9112 rules
 * (http_strict.c around http-parser): every shape the lenient http-parser
 * build lets through is refused with the status a request gets and a
 * reason, in one piece and split at every byte; what is legal still parses
 * the same however it is split; trailers are checked but not kept. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/http_msg.h"

typedef struct got {
    int heads, dones;
    size_t body;
    size_t fields;          /* header fields of the last head */
} got;

static int g_head(void *arg, dp_http_reader *r)
{
    got *g = arg;
    g->heads++;
    g->fields = r->head.n;
    return 0;
}

static int g_body(void *arg, const char *at, size_t len)
{
    ((got *)arg)->body += len;
    return 0;
}

static int g_done(void *arg, dp_http_reader *r)
{
    ((got *)arg)->dones++;
    return 0;
}

static const dp_http_reader_cbs cbs = {.on_head = g_head, .on_body = g_body,
                                       .on_done = g_done};

/* Feeds text in pieces of `step` bytes (0: all at once); returns the last
 * status. */
static int feed(dp_http_reader *r, enum http_parser_type t, got *g, const char *text,
                size_t step)
{
    memset(g, 0, sizeof *g);
    dp_http_reader_init(r, t, &cbs, g);
    size_t len = strlen(text), at = 0;
    int st = DP_HTTP_OK;
    while (at < len && st == DP_HTTP_OK) {
        size_t n = step && len - at > step ? step : len - at;
        size_t used = dp_http_reader_feed(r, text + at, n, &st);
        cr_assert_leq(used, n);
        at += used;
        if (st == DP_HTTP_OK)
            cr_assert_eq(used, n, "an OK feed takes everything");
    }
    return st;
}

typedef struct bad_case {
    const char *name, *text;
    int status;             /* what a request gets */
    const char *why;        /* part of the reason */
} bad_case;

static const bad_case bad_requests[] = {
    /* Found by tests/fuzz (fuzz_http_request): an upgrade request let this
     * through, any other got http-parser's bare "invalid transfer-encoding". */
    {"name that begins with Transfer-Encoding, upgrading",
     "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
     "Transfer-EncodingX: chunked\r\n\r\n", 400, "begins with Transfer-Encoding"},
    {"name that begins with Transfer-Encoding",
     "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encodingT: chunked\r\n\r\n", 400,
     "'transfer-encodingT' is refused"},
    {"space before colon (forged XFCC)",
     "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Client-Cert : By=x;URI=spiffe://evil\r\n\r\n",
     400, "whitespace in header field name 'X-Forwarded-Client-Cert '"},
    {"Transfer-Encoding with space before colon",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"
     "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 400, "whitespace in header field"},
    {"Content-Length with space before colon",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello", 400, "whitespace"},
    {"space inside a name", "GET / HTTP/1.1\r\nHost: a\r\nFoo Bar: x\r\n\r\n", 400,
     "whitespace"},
    {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n", 400,
     "obsolete line folding"},
    {"obs-fold with a tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n", 400,
     "obsolete line folding"},
    {"bare LF ending a field", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, "bare LF"},
    {"bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n", 400, "bare LF"},
    {"bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF"},
    {"bare LF before the request", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare LF"},
    {"bare CR", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, "CR without LF"},
    {"HTTP/9.9", "GET / HTTP/9.9\r\nHost: a\r\n\r\n", 505, "HTTP/9.9 is not supported"},
    {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "HTTP/2.0"},
    {"HTTP/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, "HTTP/0.9"},
    {"ICE/1.0", "SOURCE / ICE/1.0\r\nHost: a\r\n\r\n", 400, "malformed HTTP version"},
    {"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
     "more than one Host"},
    {"Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid Host"},
    {"Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "invalid Host"},
    {"two spaces in the request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400,
     "single spaces"},
    {"tab in the target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid byte 0x09"},
    {"8-bit byte in the target", "GET /a\xff HTTP/1.1\r\nHost: a\r\n\r\n", 400,
     "invalid byte 0xff"},
    {"duplicate Content-Length",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400, ""},
    {"Content-Length and Transfer-Encoding",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\n\r\n", 400, ""},
    {"Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx",
     400, ""},
    {"transfer coding gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
     501, "transfer coding 'gzip' is not supported"},
    {"gzip then chunked",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
     "'gzip, chunked'"},
    {"chunked twice",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "chunked applied more than once"},
    {"Transfer-Encoding in HTTP/1.0",
     "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
     "HTTP/1.0"},
    {"junk where the CRLF after chunk data goes",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n",
     400, "chunk data not followed by CRLF"},
    {"bare LF after a chunk size",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
     400, "bare LF ending a chunk-size line"},
    {"obs-fold in a trailer",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n",
     400, "obsolete line folding"},
    {"control byte in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n", 400, ""},
};

Test(sidecar_http_strict, hostile_requests_are_refused_with_a_reason)
{
    for (size_t i = 0; i < sizeof bad_requests / sizeof bad_requests[0]; i++) {
        const bad_case *c = &bad_requests[i];
        /* Whole, byte by byte, and in 7-byte pieces: the verdict is the same. */
        size_t steps[] = {0, 1, 7};
        for (size_t k = 0; k < 3; k++) {
            dp_http_reader r = {0};
            got g;
            int st = feed(&r, HTTP_REQUEST, &g, c->text, steps[k]);
            cr_assert_eq(st, DP_HTTP_ERROR, "%s (step %zu): accepted", c->name, steps[k]);
            cr_assert_eq(dp_http_reader_error_status(&r), c->status, "%s (step %zu): %d, %s",
                         c->name, steps[k], dp_http_reader_error_status(&r),
                         dp_http_reader_error(&r));
            cr_assert(strstr(dp_http_reader_error(&r), c->why), "%s: '%s'", c->name,
                      dp_http_reader_error(&r));
            cr_assert_eq(g.dones, 0, "%s: no message completes", c->name);
            dp_http_reader_free(&r);
        }
    }
}

static const bad_case bad_responses[] = {
    {"name that begins with Transfer-Encoding",
     "HTTP/1.1 200 OK\r\nTransfer-EncodingX: chunked\r\n\r\nhello", 400,
     "begins with Transfer-Encoding"},
    {"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello", 400,
     "whitespace"},
    {"duplicate Content-Length",
     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400, ""},
    {"Content-Length and chunked",
     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
     ""},
    {"gzip transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz", 501,
     "gzip"},
    {"HTTP/9.9", "HTTP/9.9 200 OK\r\nContent-Length: 0\r\n\r\n", 505, "HTTP/9.9"},
    {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", 400, "bare LF"},
    {"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", 400,
     "obsolete line folding"},
    {"status 099", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n", 400, "outside 100-599"},
    {"two-digit status", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", 400, "outside"},
    {"control byte in the reason", "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", 400,
     "status line"},
};

Test(sidecar_http_strict, hostile_responses_are_refused)
{
    for (size_t i = 0; i < sizeof bad_responses / sizeof bad_responses[0]; i++) {
        const bad_case *c = &bad_responses[i];
        dp_http_reader r = {0};
        got g;
        int st = feed(&r, HTTP_RESPONSE, &g, c->text, 0);
        cr_assert_eq(st, DP_HTTP_ERROR, "%s: accepted", c->name);
        cr_assert_eq(dp_http_reader_error_status(&r), c->status, "%s: %s", c->name,
                     dp_http_reader_error(&r));
        cr_assert(strstr(dp_http_reader_error(&r), c->why), "%s: '%s'", c->name,
                  dp_http_reader_error(&r));
        dp_http_reader_free(&r);
    }
}

/* Legal input the rules must not break: leading empty lines, chunk
 * extensions, trailers, HTTP/1.0 and 1.2 (read as 1.1), pipelining after
 * a Content-Length body, tabs and 8-bit bytes in values. */
static const char GOOD[] =
    "\r\n"
    "POST /a HTTP/1.1\r\nHost: svc:80\r\nContent-Length: 3\r\nX-Tab:\tv\xe9\r\n\r\nabc"
    "POST /b HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n"
    "GET /c HTTP/1.0\r\nHost: [::1]:8080\r\n\r\n"
    "\r\nGET /d HTTP/1.2\r\nHost: svc\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n"
    "OPTIONS * HTTP/1.1\r\nHost: svc\r\n\r\n";

Test(sidecar_http_strict, legal_input_parses_the_same_at_every_split)
{
    size_t len = strlen(GOOD);
    for (size_t split = 0; split <= len; split++) {
        dp_http_reader r = {0};
        got g = {0};
        dp_http_reader_init(&r, HTTP_REQUEST, &cbs, &g);
        int st;
        size_t a = dp_http_reader_feed(&r, GOOD, split, &st);
        cr_assert_eq(st, DP_HTTP_OK, "split %zu: %s", split, dp_http_reader_error(&r));
        cr_assert_eq(a, split);
        size_t b = dp_http_reader_feed(&r, GOOD + split, len - split, &st);
        cr_assert_eq(st, DP_HTTP_OK, "split %zu: %s", split, dp_http_reader_error(&r));
        cr_assert_eq(b, len - split);
        cr_assert_eq(g.heads, 5, "split %zu", split);
        cr_assert_eq(g.dones, 5, "split %zu", split);
        cr_assert_eq(g.body, 8, "split %zu", split);
        dp_http_reader_free(&r);
    }
}

Test(sidecar_http_strict, trailers_are_not_kept_in_the_head)
{
    dp_http_reader r = {0};
    got g;
    const char req[] = "POST /t HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "1\r\nx\r\n0\r\nX-Trailer: late\r\n\r\n";
    cr_assert_eq(feed(&r, HTTP_REQUEST, &g, req, 1), DP_HTTP_OK);
    cr_assert_eq(g.dones, 1);
    cr_assert_eq(r.head.n, 2, "Host and Transfer-Encoding; the trailer is dropped");
    cr_assert_null(dp_http_head_find(&r.head, "x-trailer"));
    size_t ul;
    cr_assert(strncmp(dp_http_head_url(&r.head, &ul), "/t", 2) == 0, "the head is intact");
    dp_http_reader_free(&r);
}

Test(sidecar_http_strict, values_lose_trailing_whitespace)
{
    dp_http_reader r = {0};
    got g;
    cr_assert_eq(feed(&r, HTTP_REQUEST, &g, "GET / HTTP/1.1\r\nHost: svc \t\r\n\r\n", 0),
                 DP_HTTP_OK);
    const dp_http_header *h = dp_http_head_find(&r.head, "host");
    cr_assert_not_null(h);
    cr_assert_eq(h->value_len, 3);
    cr_assert(strncmp(h->value, "svc", 3) == 0);
    dp_http_reader_free(&r);
}

Test(sidecar_http_strict, limits_name_themselves)
{
    /* 128 fields pass, 129 do not. */
    char *many = malloc(16384);
    for (int n = DP_HTTP_MAX_HEADERS; n <= DP_HTTP_MAX_HEADERS + 1; n++) {
        strcpy(many, "GET / HTTP/1.1\r\n");
        for (int i = 0; i < n; i++) {
            size_t l = strlen(many);
            snprintf(many + l, 16384 - l, "h%d: v\r\n", i);
        }
        strcat(many, "\r\n");
        dp_http_reader r = {0};
        got g;
        int st = feed(&r, HTTP_REQUEST, &g, many, 0);
        if (n == DP_HTTP_MAX_HEADERS) {
            cr_assert_eq(st, DP_HTTP_OK, "%s", dp_http_reader_error(&r));
        } else {
            cr_assert_eq(st, DP_HTTP_ERROR);
            cr_assert_eq(dp_http_reader_error_status(&r), 431);
            cr_assert_str_eq(dp_http_reader_error(&r),
                             "request head has more than 128 header fields");
        }
        dp_http_reader_free(&r);
    }
    free(many);

    /* A trailer section is held to the head's byte limit too. */
    size_t big = DP_HTTP_MAX_HEAD + 10;
    char *req = malloc(big + 256);
    int l = snprintf(req, 256, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                               "\r\n0\r\nX-Big: ");
    memset(req + l, 'b', big);
    strcpy(req + l + big, "\r\n\r\n");
    dp_http_reader r = {0};
    got g;
    cr_assert_eq(feed(&r, HTTP_REQUEST, &g, req, 4096), DP_HTTP_ERROR);
    cr_assert_eq(dp_http_reader_error_status(&r), 431);
    free(req);
    dp_http_reader_free(&r);
}

Test(sidecar_http_strict, informational_then_final_response)
{
    dp_http_reader r = {0};
    got g;
    const char resp[] = "HTTP/1.1 100 Continue\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    cr_assert_eq(feed(&r, HTTP_RESPONSE, &g, resp, 3), DP_HTTP_OK, "%s",
                 dp_http_reader_error(&r));
    cr_assert_eq(g.heads, 2);
    cr_assert_eq(g.dones, 2);
    cr_assert_eq(g.body, 2);
    dp_http_reader_free(&r);
}

Test(sidecar_http_strict, name_look_alikes)
{
    cr_assert(dp_h1_name_like("X_Forwarded_Client_Cert", 23, "x-forwarded-client-cert"));
    cr_assert(dp_h1_name_like("X-FORWARDED-CLIENT-CERT", 23, "x-forwarded-client-cert"));
    cr_assert_not(dp_h1_name_like("x-forwarded-client-cer", 22, "x-forwarded-client-cert"));
    cr_assert_not(dp_h1_name_like("x-forwarded-client-cert2", 24, "x-forwarded-client-cert"));
}
