/* tests/fuzz/fuzz_http.h — what the two HTTP/1.1 fuzz targets share: feed
 * the sidecar's reader an input in pieces (the first byte picks the piece
 * size, so the fuzzer explores fragmentation too), then write the head the
 * way the proxy forwards it and read that back: whatever the strict reader
 * accepted, the head writer must turn into a head the strict reader
 * accepts again. */
#ifndef MESH_TESTS_FUZZ_HTTP_H
#define MESH_TESTS_FUZZ_HTTP_H

#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/http_msg.h"

typedef struct fuzz_http_seen {
    int heads, dones;
    size_t body;
    struct evbuffer *rewritten;     /* the first head, written back (on_head) */
    int (*write_head)(struct evbuffer *out, const dp_http_head *h);
} fuzz_http_seen;

static int fuzz_http_on_head(void *arg, dp_http_reader *r)
{
    fuzz_http_seen *s = arg;
    if (s->heads++ == 0 && s->write_head) {
        if (s->write_head(s->rewritten, &r->head) < 0)
            abort();
    }
    return 0;
}

static int fuzz_http_on_body(void *arg, const char *at, size_t len)
{
    ((fuzz_http_seen *)arg)->body += len;
    return 0;
}

static int fuzz_http_on_done(void *arg, dp_http_reader *r)
{
    ((fuzz_http_seen *)arg)->dones++;
    return 0;
}

static const dp_http_reader_cbs fuzz_http_cbs = {
    .on_head = fuzz_http_on_head, .on_body = fuzz_http_on_body, .on_done = fuzz_http_on_done};

/* Feeds data in pieces of step bytes (0: at once), then EOF; returns the
 * last status. The reader must never claim more than it was given, and an
 * OK feed takes everything. */
static int fuzz_http_feed(dp_http_reader *r, const uint8_t *data, size_t len, size_t step)
{
    size_t at = 0;
    int st = DP_HTTP_OK;
    while (at < len && st == DP_HTTP_OK) {
        size_t n = step && len - at > step ? step : len - at;
        size_t used = dp_http_reader_feed(r, (const char *)data + at, n, &st);
        if (used > n || (st == DP_HTTP_OK && used != n))
            abort();
        at += used;
    }
    if (st == DP_HTTP_OK)
        dp_http_reader_feed(r, NULL, 0, &st);
    if (st == DP_HTTP_ERROR) {
        const char *why = dp_http_reader_error(r);
        int code = dp_http_reader_error_status(r);
        if (!why || !*why || (code != 400 && code != 431 && code != 501 && code != 505))
            abort();
    }
    return st;
}

/* The whole target: read, rewrite the first head, read the rewrite back. */
static int fuzz_http_run(enum http_parser_type type, const uint8_t *data, size_t size,
                         int (*write_head)(struct evbuffer *out, const dp_http_head *h))
{
    if (size == 0)
        return 0;
    size_t step = data[0];
    data++;
    size--;
    fuzz_http_seen seen = {.write_head = write_head, .rewritten = evbuffer_new()};
    if (!seen.rewritten)
        abort();
    dp_http_reader r;
    memset(&r, 0, sizeof r);
    dp_http_reader_init(&r, type, &fuzz_http_cbs, &seen);
    fuzz_http_feed(&r, data, size, step);
    if (seen.dones > seen.heads)
        abort();
    /* Only a message that completed passed every rule: http-parser 2.9.4
     * may still fail one after on_headers_complete (the proxy then never
     * sends the head it wrote; test_sidecar_http_hostile checks that). */
    if (seen.dones > 0) {
        size_t n = evbuffer_get_length(seen.rewritten);
        const uint8_t *text = evbuffer_pullup(seen.rewritten, -1);
        fuzz_http_seen again = {0};
        dp_http_reader back;
        memset(&back, 0, sizeof back);
        dp_http_reader_init(&back, type, &fuzz_http_cbs, &again);
        size_t used = 0;
        int st = DP_HTTP_OK;
        used = dp_http_reader_feed(&back, (const char *)text, n, &st);
        /* A head over the limits is the proxy's to refuse (431/502) after
         * writing; anything else the writer produced must read back. */
        if ((st == DP_HTTP_ERROR && !dp_http_reader_head_too_big(&back)) ||
            (st == DP_HTTP_OK && (used != n || again.heads != 1))) {
            fprintf(stderr, "the written head does not read back (%s):\n%.*s\n",
                    st == DP_HTTP_ERROR ? dp_http_reader_error(&back) : "incomplete", (int)n,
                    (const char *)text);
            abort();
        }
        dp_http_reader_free(&back);
    }
    dp_http_reader_free(&r);
    evbuffer_free(seen.rewritten);
    return 0;
}

#endif
