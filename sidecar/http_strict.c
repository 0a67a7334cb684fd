/* sidecar/http_strict.c — RFC 9112 framing-line watch and head rules that
 * the installed http-parser lacks (see http_strict.h). */
#include "sidecar/http_strict.h"
#include "sidecar/http_msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum {
    F_START,            /* before a message: empty lines (CRLF) are skipped */
    F_START_CR,         /* an empty line's CR */
    F_START_LINE,       /* in the request or status line */
    F_START_LINE_CR,
    F_LINE_BEGIN,       /* a field line or the empty line ending the section */
    F_FIELD,
    F_FIELD_CR,
    F_END_CR,           /* the CR of the empty line */
    F_OPAQUE,           /* body bytes, or waiting for http-parser's next boundary */
    F_CHUNK_LINE,       /* chunk-size [ext] CRLF */
    F_CHUNK_LINE_CR,
    F_CHUNK_DATA,
    F_CHUNK_CR,         /* the CRLF that must follow chunk data */
    F_CHUNK_LF,
    F_FAILED,
};

void dp_h1_frame_init(dp_h1_frame *f, bool request)
{
    memset(f, 0, sizeof *f);
    f->request = request;
    f->state = F_START;
}

bool dp_h1_frame_opaque(const dp_h1_frame *f)
{
    return f->state == F_OPAQUE;
}

void dp_h1_frame_chunk_header(dp_h1_frame *f, uint64_t size)
{
    if (f->state == F_FAILED)
        return;
    if (size > 0) {
        f->state = F_CHUNK_DATA;
        f->chunk_left = size;
    } else {
        f->state = F_LINE_BEGIN;    /* the trailer section, then its empty line */
        f->line_bytes = 0;
    }
}

void dp_h1_frame_chunked_body(dp_h1_frame *f)
{
    if (f->state == F_OPAQUE)
        f->state = F_CHUNK_LINE;
}

void dp_h1_frame_message_done(dp_h1_frame *f)
{
    if (f->state == F_FAILED)
        return;
    bool request = f->request;
    dp_h1_frame_init(f, request);
}

static void fail(dp_h1_frame *f, dp_h1_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(dp_h1_frame *f, dp_h1_verdict v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->why, sizeof f->why, fmt, ap);
    va_end(ap);
    f->verdict = v;
    f->state = F_FAILED;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* One byte of the start line (CR and LF excluded). */
static void start_line_byte(dp_h1_frame *f, unsigned char c)
{
    if (f->request) {
        /* method SP request-target SP HTTP-version: visible ASCII and
         * exactly two spaces (a target has no whitespace or raw 8-bit). */
        if (c == ' ')
            f->start_spaces++;
        else if (c < 0x21 || c > 0x7e)
            return fail(f, DP_H1_BAD, "invalid byte 0x%02x in the request line", c);
        if (f->start_len < sizeof f->start_edge) {
            f->start_edge[f->start_len] = (char)c;
        } else {
            memmove(f->start_edge, f->start_edge + 1, sizeof f->start_edge - 1);
            f->start_edge[sizeof f->start_edge - 1] = (char)c;
        }
    } else {
        /* reason-phrase = *( HTAB / SP / VCHAR / obs-text ) */
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(f, DP_H1_BAD, "invalid byte 0x%02x in the status line", c);
        if (f->start_len < sizeof f->start_edge)
            f->start_edge[f->start_len] = (char)c;
    }
    f->start_len++;
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT, at the end of a request line
 * (after one SP) or at the start of a status line (before one SP). */
static void start_line_done(dp_h1_frame *f)
{
    const char *e = f->start_edge;
    const char *v = f->request ? e + 1 : e;
    bool sp_ok = f->request ? e[0] == ' ' : e[8] == ' ';
    bool shape = f->start_len >= sizeof f->start_edge && sp_ok && memcmp(v, "HTTP/", 5) == 0 &&
                 is_digit(v[5]) && v[6] == '.' && is_digit(v[7]);
    if (f->request && f->start_spaces != 2)
        return fail(f, DP_H1_BAD, "malformed request line: expected 'METHOD /path HTTP/1.1' "
                    "with single spaces (RFC 9112 3)");
    if (!shape)
        return fail(f, DP_H1_BAD, "malformed HTTP version in the %s line (RFC 9112 2.3: "
                    "HTTP/DIGIT.DIGIT)", f->request ? "request" : "status");
    if (v[5] != '1')
        return fail(f, DP_H1_VERSION, "HTTP/%c.%c is not supported: the mesh sidecar speaks "
                    "HTTP/1.0 and HTTP/1.1", v[5], v[7]);
}

static void count_line_byte(dp_h1_frame *f)
{
    if (++f->line_bytes > DP_HTTP_MAX_HEAD)
        fail(f, DP_H1_TOO_LARGE, "%s over %d bytes", f->request ? "request head"
                                                                : "response head",
             DP_HTTP_MAX_HEAD);
}

/* One framing byte; returns false when the frame stops (failed, or opaque). */
static bool step(dp_h1_frame *f, unsigned char c)
{
    switch (f->state) {
    case F_START:
        if (c == '\r') {
            f->state = F_START_CR;
            return true;
        }
        if (c == '\n') {
            fail(f, DP_H1_BAD, "bare LF before the start line (RFC 9112 2.2: lines end "
                 "with CRLF)");
            return false;
        }
        f->state = F_START_LINE;
        f->line_bytes = 0;
        count_line_byte(f);
        start_line_byte(f, c);
        break;
    case F_START_CR:
        if (c != '\n') {
            fail(f, DP_H1_BAD, "CR without LF before the start line");
            return false;
        }
        f->state = F_START;
        return true;
    case F_START_LINE:
        count_line_byte(f);
        if (c == '\r')
            f->state = F_START_LINE_CR;
        else if (c == '\n')
            fail(f, DP_H1_BAD, "bare LF ending the %s line (RFC 9112 2.2: lines end with "
                 "CRLF)", f->request ? "request" : "status");
        else
            start_line_byte(f, c);
        break;
    case F_START_LINE_CR:
        count_line_byte(f);
        if (c != '\n') {
            fail(f, DP_H1_BAD, "CR without LF in the %s line", f->request ? "request" : "status");
            break;
        }
        f->state = F_LINE_BEGIN;
        start_line_done(f);
        break;
    case F_LINE_BEGIN:
        count_line_byte(f);
        if (c == '\r')
            f->state = F_END_CR;
        else if (c == '\n')
            fail(f, DP_H1_BAD, "bare LF in the header section (RFC 9112 2.2: lines end with "
                 "CRLF)");
        else if (c == ' ' || c == '\t')
            fail(f, DP_H1_BAD, "obsolete line folding in a header field (RFC 9112 5.2)");
        else
            f->state = F_FIELD;
        break;
    case F_FIELD:
        count_line_byte(f);
        if (c == '\r')
            f->state = F_FIELD_CR;
        else if (c == '\n')
            fail(f, DP_H1_BAD, "bare LF ending a header field line (RFC 9112 2.2: lines end "
                 "with CRLF)");
        break;
    case F_FIELD_CR:
        count_line_byte(f);
        if (c != '\n')
            fail(f, DP_H1_BAD, "CR without LF in a header field line (RFC 9112 2.2)");
        else
            f->state = F_LINE_BEGIN;
        break;
    case F_END_CR:
        count_line_byte(f);
        if (c != '\n') {
            fail(f, DP_H1_BAD, "CR without LF ending the header section");
            break;
        }
        f->state = F_OPAQUE;    /* http-parser knows what follows */
        return false;
    case F_CHUNK_LINE:
        if (c == '\r')
            f->state = F_CHUNK_LINE_CR;
        else if (c == '\n')
            fail(f, DP_H1_BAD, "bare LF ending a chunk-size line (RFC 9112 7.1)");
        break;
    case F_CHUNK_LINE_CR:
        if (c != '\n') {
            fail(f, DP_H1_BAD, "CR without LF ending a chunk-size line (RFC 9112 7.1)");
            break;
        }
        f->state = F_OPAQUE;    /* http-parser reports the size */
        return false;
    case F_CHUNK_CR:
        if (c != '\r')
            fail(f, DP_H1_BAD, "chunk data not followed by CRLF (RFC 9112 7.1)");
        else
            f->state = F_CHUNK_LF;
        break;
    case F_CHUNK_LF:
        if (c != '\n')
            fail(f, DP_H1_BAD, "chunk data not followed by CRLF (RFC 9112 7.1)");
        else
            f->state = F_CHUNK_LINE;
        break;
    default:
        return false;
    }
    return f->state != F_FAILED;
}

size_t dp_h1_frame_scan(dp_h1_frame *f, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (f->state == F_OPAQUE)
            return len;
        if (f->state == F_FAILED)
            return i;
        if (f->state == F_CHUNK_DATA) {
            size_t take = len - i;
            if (take > f->chunk_left)
                take = (size_t)f->chunk_left;
            f->chunk_left -= take;
            i += take;
            if (f->chunk_left == 0)
                f->state = F_CHUNK_CR;
            continue;
        }
        bool go_on = step(f, (unsigned char)data[i]);
        if (f->state == F_FAILED)
            return i;
        i++;
        if (!go_on)
            return i;   /* just became opaque: http-parser's turn */
    }
    return i;
}

/* ---- the head as a whole ---------------------------------------------------------- */

bool dp_h1_name_like(const char *name, size_t len, const char *lower_dashed)
{
    size_t l = strlen(lower_dashed);
    if (len != l)
        return false;
    for (size_t i = 0; i < l; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == '_')
            c = '-';
        if (c != lower_dashed[i])
            return false;
    }
    return true;
}

static bool name_is(const dp_http_header *x, const char *n)
{
    size_t l = strlen(n);
    return x->name_len == l && strncasecmp(x->name, n, l) == 0;
}

static int verdict(char *why, size_t why_len, dp_h1_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int verdict(char *why, size_t why_len, dp_h1_verdict v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return v;
}

/* Host = uri-host [ ":" port ]: reg-name / IPv4 / IP-literal characters. */
static bool host_value_ok(const char *v, size_t n)
{
    static const char extra[] = "-._~!$&'()*+,;=%:[]";
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c);
        if (!alnum && (c == '\0' || !strchr(extra, c)))
            return false;
    }
    return true;
}

/* The transfer codings of every Transfer-Encoding line, in order. Only a
 * single "chunked" is carried: the proxy re-frames bodies and would drop
 * any other coding with the header (RFC 9112 6.1: 501 for a request). */
static dp_h1_verdict check_transfer_coding(const dp_h1_head_facts *h, char *why, size_t why_len)
{
    size_t codings = 0, lines = 0;
    bool only_chunked = true;
    char listed[96] = "";
    for (size_t i = 0; i < h->n_fields; i++) {
        const dp_http_header *x = &h->fields[i];
        if (!name_is(x, "transfer-encoding"))
            continue;
        lines++;
        const char *p = x->value, *end = x->value + x->value_len, *s, *e;
        while (dp_http_list_next(&p, end, &s, &e)) {
            codings++;
            if ((size_t)(e - s) != 7 || strncasecmp(s, "chunked", 7) != 0)
                only_chunked = false;
            size_t ll = strlen(listed);
            snprintf(listed + ll, sizeof listed - ll, "%s%.*s", ll ? ", " : "",
                     (int)(e - s > 40 ? 40 : e - s), s);
        }
    }
    if (lines == 0)
        return DP_H1_OK;
    if (h->minor == 0)
        return verdict(why, why_len, DP_H1_BAD, "Transfer-Encoding in an HTTP/1.0 message "
                       "(RFC 9112 6.1: its framing cannot be trusted)");
    if (codings == 1 && only_chunked)
        return DP_H1_OK;
    if (only_chunked && codings > 1)
        return verdict(why, why_len, DP_H1_BAD, "chunked applied more than once "
                       "(Transfer-Encoding: %s; RFC 9112 6.1)", listed);
    return verdict(why, why_len, DP_H1_NOT_IMPLEMENTED, "transfer coding '%s' is not "
                   "supported: the mesh sidecar carries only 'chunked'", listed);
}

dp_h1_verdict dp_h1_check_head(const dp_h1_head_facts *h, char *why, size_t why_len)
{
    size_t hosts = 0;
    const dp_http_header *host = NULL;
    for (size_t i = 0; i < h->n_fields; i++) {
        const dp_http_header *x = &h->fields[i];
        for (size_t k = 0; k < x->name_len; k++)
            if (x->name[k] == ' ' || x->name[k] == '\t')
                return verdict(why, why_len, DP_H1_BAD, "whitespace in header field name "
                               "'%.*s' (RFC 9112 5.1: none is allowed between the name "
                               "and the colon)", (int)(x->name_len > 60 ? 60 : x->name_len),
                               x->name);
        /* http-parser 2.9.4 flags a message as Transfer-Encoding once a name
         * begins with it (then fails a request as "invalid transfer-encoding",
         * a response with Content-Length as "unexpected content length",
         * except when the request upgrades). One clear rule instead. */
        if (x->name_len > 17 && strncasecmp(x->name, "transfer-encoding", 17) == 0)
            return verdict(why, why_len, DP_H1_BAD, "header field name '%.*s' is refused: "
                           "it begins with Transfer-Encoding and would make the framing "
                           "ambiguous", (int)(x->name_len > 60 ? 60 : x->name_len), x->name);
        if (name_is(x, "host")) {
            hosts++;
            host = x;
        }
    }
    if (h->major != 1)      /* the start line check saw it first; kept for direct callers */
        return verdict(why, why_len, DP_H1_VERSION, "HTTP/%u.%u is not supported",
                       h->major, h->minor);
    if (!h->request && (h->status < 100 || h->status > 599))
        return verdict(why, why_len, DP_H1_BAD, "status code %d is outside 100-599 "
                       "(RFC 9110 15)", h->status);
    if (h->request && hosts > 1)
        return verdict(why, why_len, DP_H1_BAD, "more than one Host header (RFC 9112 3.2)");
    if (host && !host_value_ok(host->value, host->value_len))
        return verdict(why, why_len, DP_H1_BAD, "invalid Host header value '%.*s' "
                       "(RFC 9112 3.2)", (int)(host->value_len > 60 ? 60 : host->value_len),
                       host->value);
    return check_transfer_coding(h, why, why_len);
}
