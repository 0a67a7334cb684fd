/* sidecar/http_msg.c — http-parser callbacks reassembling heads, with the
 * RFC 9112 checks the installed http-parser lacks around them (see
 * http_msg.h and http_strict.h). */
#include "sidecar/http_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static dp_http_reader *reader_of(http_parser *p) { return p->data; }

static int arena_add(dp_http_head *h, const char *at, size_t len)
{
    /* http-parser may report an empty piece before anything was stored:
     * h->buf is still NULL then, and NULL + 0 is undefined in C. */
    if (len == 0)
        return 0;
    if (h->len + len > DP_HTTP_MAX_HEAD) {
        h->too_big = true;
        return -1;
    }
    if (h->len + len > h->cap) {
        size_t ncap = h->cap ? h->cap : 1024;
        while (ncap < h->len + len)
            ncap *= 2;
        char *nb = realloc(h->buf, ncap);
        if (!nb)
            return -1;
        h->buf = nb;
        h->cap = ncap;
    }
    memcpy(h->buf + h->len, at, len);
    h->len += len;
    return 0;
}

static int cb_begin(http_parser *p)
{
    dp_http_reader *r = reader_of(p);
    dp_http_head *h = &r->head;
    h->len = 0;
    h->n = 0;
    h->url_off = h->url_len = h->reason_off = h->reason_len = 0;
    h->last_was_value = false;
    h->too_big = false;
    h->method = 0;
    h->status = 0;
    h->chunked = h->has_length = h->keep_alive = h->upgrade = false;
    h->content_length = 0;
    r->in_message = true;
    r->in_trailers = false;
    return 0;
}

static int cb_url(http_parser *p, const char *at, size_t len)
{
    dp_http_head *h = &reader_of(p)->head;
    if (h->url_len == 0)
        h->url_off = (uint32_t)h->len;
    h->url_len += (uint32_t)len;
    return arena_add(h, at, len);
}

static int cb_status(http_parser *p, const char *at, size_t len)
{
    dp_http_head *h = &reader_of(p)->head;
    if (h->reason_len == 0)
        h->reason_off = (uint32_t)h->len;
    h->reason_len += (uint32_t)len;
    return arena_add(h, at, len);
}

static int cb_field(http_parser *p, const char *at, size_t len)
{
    dp_http_reader *r = reader_of(p);
    dp_http_head *h = &r->head;
    if (r->in_trailers)
        return 0;   /* counted and checked by the frame; the proxy drops trailers */
    if (h->n == 0 || h->last_was_value) {
        if (h->n == DP_HTTP_MAX_HEADERS) {
            h->too_big = true;
            r->verdict = DP_H1_TOO_LARGE;
            snprintf(r->why, sizeof r->why, "%s has more than %d header fields",
                     p->type == HTTP_REQUEST ? "request head" : "response head",
                     DP_HTTP_MAX_HEADERS);
            return -1;
        }
        if (h->n == h->cap_offs) {
            size_t nc = h->cap_offs ? h->cap_offs * 2 : 16;
            dp_http_hdr_off *no = realloc(h->offs, nc * sizeof *no);
            if (!no)
                return -1;
            h->offs = no;
            h->cap_offs = nc;
        }
        h->offs[h->n].no = (uint32_t)h->len;
        h->offs[h->n].nl = 0;
        h->offs[h->n].vo = 0;
        h->offs[h->n].vl = 0;
        h->n++;
        h->last_was_value = false;
    }
    /* Fragments of one name are contiguous: nothing else is appended between. */
    h->offs[h->n - 1].nl += (uint32_t)len;
    return arena_add(h, at, len);
}

static int cb_value(http_parser *p, const char *at, size_t len)
{
    dp_http_reader *r = reader_of(p);
    dp_http_head *h = &r->head;
    if (r->in_trailers)
        return 0;
    if (h->n == 0)
        return -1;
    if (!h->last_was_value) {
        h->offs[h->n - 1].vo = (uint32_t)h->len;
        h->last_was_value = true;
    }
    h->offs[h->n - 1].vl += (uint32_t)len;
    return arena_add(h, at, len);
}

static int cb_headers_complete(http_parser *p)
{
    dp_http_reader *r = reader_of(p);
    dp_http_head *h = &r->head;
    dp_http_header *v = realloc(h->view, (h->n ? h->n : 1) * sizeof *v);
    if (!v)
        return -1;
    h->view = v;
    for (size_t i = 0; i < h->n; i++) {
        v[i].name = h->buf + h->offs[i].no;
        v[i].name_len = h->offs[i].nl;
        v[i].value = h->offs[i].vl ? h->buf + h->offs[i].vo : "";
        v[i].value_len = h->offs[i].vl;
        /* http-parser drops leading whitespace only (RFC 9110 5.5: both go). */
        while (v[i].value_len > 0 && (v[i].value[v[i].value_len - 1] == ' ' ||
                                      v[i].value[v[i].value_len - 1] == '\t'))
            v[i].value_len--;
    }
    r->in_trailers = true;
    h->method = p->method;
    h->status = (int)p->status_code;
    h->major = p->http_major;
    h->minor = p->http_minor;
    h->chunked = (p->flags & F_CHUNKED) != 0;
    h->has_length = (p->flags & F_CONTENTLENGTH) != 0;
    h->content_length = h->has_length ? p->content_length : 0;
    h->keep_alive = http_should_keep_alive(p) != 0;
    h->upgrade = p->upgrade != 0;
    dp_h1_head_facts facts = {
        .request = p->type == HTTP_REQUEST,
        .major = h->major,
        .minor = h->minor,
        .status = h->status,
        .fields = h->view,
        .n_fields = h->n,
    };
    dp_h1_verdict vd = dp_h1_check_head(&facts, r->why, sizeof r->why);
    if (vd != DP_H1_OK) {
        r->verdict = vd;
        return -1;
    }
    if (h->chunked)
        dp_h1_frame_chunked_body(&r->frame);
    if (!r->cbs->on_head)
        return 0;
    int rc = r->cbs->on_head(r->arg, r);
    return rc < 0 ? -1 : rc;
}

static int cb_body(http_parser *p, const char *at, size_t len)
{
    dp_http_reader *r = reader_of(p);
    return r->cbs->on_body ? (r->cbs->on_body(r->arg, at, len) < 0 ? -1 : 0) : 0;
}

static int cb_chunk_header(http_parser *p)
{
    dp_h1_frame_chunk_header(&reader_of(p)->frame, p->content_length);
    return 0;
}

static int cb_complete(http_parser *p)
{
    dp_http_reader *r = reader_of(p);
    r->in_message = false;
    dp_h1_frame_message_done(&r->frame);
    if (r->cbs->on_done && r->cbs->on_done(r->arg, r) < 0)
        return -1;
    /* Stop here even if the caller did not ask to: the frame must see the
     * next message's head from its first byte (dp_http_reader_feed goes on). */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings reader_settings = {
    .on_message_begin = cb_begin,
    .on_url = cb_url,
    .on_status = cb_status,
    .on_header_field = cb_field,
    .on_header_value = cb_value,
    .on_headers_complete = cb_headers_complete,
    .on_body = cb_body,
    .on_message_complete = cb_complete,
    .on_chunk_header = cb_chunk_header,
};

void dp_http_reader_init(dp_http_reader *r, enum http_parser_type type,
                         const dp_http_reader_cbs *cbs, void *arg)
{
    dp_http_head keep = r->head;    /* reuse the arena across re-inits */
    memset(r, 0, sizeof *r);
    r->head.buf = keep.buf;
    r->head.cap = keep.cap;
    r->head.offs = keep.offs;
    r->head.cap_offs = keep.cap_offs;
    r->head.view = keep.view;
    http_parser_init(&r->parser, type);
    r->parser.data = r;
    dp_h1_frame_init(&r->frame, type == HTTP_REQUEST);
    r->cbs = cbs;
    r->arg = arg;
}

void dp_http_reader_free(dp_http_reader *r)
{
    free(r->head.buf);
    free(r->head.offs);
    free(r->head.view);
    memset(&r->head, 0, sizeof r->head);
}

static int feed_status(const dp_http_reader *r)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    if (e == HPE_PAUSED)
        return DP_HTTP_PAUSED;
    return e == HPE_OK && r->verdict == DP_H1_OK ? DP_HTTP_OK : DP_HTTP_ERROR;
}

/* The frame vets bytes first; http-parser gets only vetted ones. It stops
 * at every message end (cb_complete), where the frame starts over. */
size_t dp_http_reader_feed(dp_http_reader *r, const char *data, size_t len, int *status)
{
    if (r->verdict != DP_H1_OK) {
        *status = DP_HTTP_ERROR;
        return 0;
    }
    if (len == 0) {     /* EOF */
        http_parser_execute(&r->parser, &reader_settings, data, 0);
        *status = feed_status(r);
        return 0;
    }
    size_t pos = 0;
    while (pos < len) {
        size_t vet = dp_h1_frame_scan(&r->frame, data + pos, len - pos);
        if (vet > 0) {
            size_t n = http_parser_execute(&r->parser, &reader_settings, data + pos, vet);
            pos += n;
            enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
            if (e == HPE_PAUSED && !r->user_paused) {
                http_parser_pause(&r->parser, 0);   /* our own stop at a message end */
                continue;
            }
            if (e != HPE_OK || n < vet) {   /* paused by the caller, failed, or an upgrade */
                *status = feed_status(r);
                return pos;
            }
        }
        if (r->frame.verdict != DP_H1_OK) {
            r->verdict = r->frame.verdict;
            snprintf(r->why, sizeof r->why, "%s", r->frame.why);
            if (r->verdict == DP_H1_TOO_LARGE)
                r->head.too_big = true;
            *status = DP_HTTP_ERROR;
            return pos;
        }
    }
    *status = feed_status(r);
    return pos;
}

void dp_http_reader_pause(dp_http_reader *r, bool paused)
{
    r->user_paused = paused;
    http_parser_pause(&r->parser, paused ? 1 : 0);
}

const char *dp_http_reader_error(const dp_http_reader *r)
{
    if (r->verdict != DP_H1_OK)
        return r->why;
    if (r->head.too_big)
        return r->parser.type == HTTP_REQUEST ? "request head too large" : "response head too large";
    return http_errno_description(HTTP_PARSER_ERRNO(&r->parser));
}

int dp_http_reader_error_status(const dp_http_reader *r)
{
    if (r->verdict != DP_H1_OK)
        return (int)r->verdict;
    return r->head.too_big ? 431 : 400;
}

bool dp_http_reader_head_too_big(const dp_http_reader *r)
{
    return r->head.too_big;
}

const char *dp_http_head_url(const dp_http_head *h, size_t *len)
{
    *len = h->url_len;
    return h->url_len ? h->buf + h->url_off : "";
}

const char *dp_http_head_reason(const dp_http_head *h, size_t *len)
{
    *len = h->reason_len;
    return h->reason_len ? h->buf + h->reason_off : "";
}

const dp_http_header *dp_http_head_find(const dp_http_head *h, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < h->n; i++)
        if (h->view[i].name_len == nl && strncasecmp(h->view[i].name, name, nl) == 0)
            return &h->view[i];
    return NULL;
}

bool dp_http_list_next(const char **p, const char *end, const char **s, const char **e)
{
    const char *q = *p;
    while (q < end && (*q == ' ' || *q == '\t' || *q == ','))
        q++;
    if (q >= end) {
        *p = q;
        return false;
    }
    *s = q;
    while (q < end && *q != ',')
        q++;
    const char *t = q;
    while (t > *s && (t[-1] == ' ' || t[-1] == '\t'))
        t--;
    *e = t;
    *p = q;
    return true;
}

bool dp_http_head_has_token(const dp_http_head *h, const char *name, const char *tok)
{
    size_t nl = strlen(name), tl = strlen(tok);
    for (size_t i = 0; i < h->n; i++) {
        const dp_http_header *x = &h->view[i];
        if (x->name_len != nl || strncasecmp(x->name, name, nl) != 0)
            continue;
        const char *p = x->value, *end = x->value + x->value_len, *s, *e;
        while (dp_http_list_next(&p, end, &s, &e))
            if ((size_t)(e - s) == tl && strncasecmp(s, tok, tl) == 0)
                return true;
    }
    return false;
}
