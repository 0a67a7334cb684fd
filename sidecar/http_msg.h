/* sidecar/http_msg.h — http-parser glue: one HTTP/1.x message stream reader.
 *
 * http-parser calls back with fragments (a header name may arrive in three
 * pieces across three reads). The reader reassembles the request line /
 * status, URL and headers into one arena, then hands the caller a complete
 * head, body pieces and "message complete" — the proxy never sees fragments.
 * Limits protect the proxy: 64 KiB of head, 128 headers; beyond that the
 * message fails (the proxy answers 431/502).
 *
 * Strict HTTP/1.1 (RFC 9112): the installed http-parser is the lenient
 * build, so the reader watches the framing lines itself and judges every
 * complete head (http_strict.h). A message that breaks a rule fails with a
 * verdict (the status a request gets: 400, 431, 501, 505) and a reason.
 * Trailer fields are checked and counted but not kept: the proxy drops them.
 *
 * Pipelining: the on_done callback may call dp_http_reader_pause(); feeding
 * then stops right after that message and reports DP_HTTP_PAUSED, leaving the
 * rest of the input for later. */
#ifndef MESH_SIDECAR_HTTP_MSG_H
#define MESH_SIDECAR_HTTP_MSG_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sidecar/dp_route.h"
#include "sidecar/http_strict.h"

typedef struct dp_http_hdr_off {
    uint32_t no, nl, vo, vl;    /* name / value offset and length in the arena */
} dp_http_hdr_off;

typedef struct dp_http_head {
    char *buf;                  /* arena: URL, reason, header names and values */
    size_t len, cap;
    uint32_t url_off, url_len;
    uint32_t reason_off, reason_len;
    dp_http_hdr_off *offs;
    size_t n, cap_offs;
    dp_http_header *view;       /* pointers into buf; valid after the head completes */
    bool last_was_value;
    bool too_big;
    /* From the parser at head completion. */
    int method;                 /* enum http_method (requests) */
    int status;                 /* responses */
    unsigned short major, minor;
    bool chunked;
    bool has_length;
    uint64_t content_length;
    bool keep_alive;
    bool upgrade;
} dp_http_head;

typedef struct dp_http_reader dp_http_reader;

typedef struct dp_http_reader_cbs {
    /* Head complete (r->head is filled). Return 0 to go on, 1 to read no body
     * (response to HEAD), -1 to fail the message. */
    int (*on_head)(void *arg, dp_http_reader *r);
    int (*on_body)(void *arg, const char *at, size_t len);  /* 0 ok, -1 fail */
    int (*on_done)(void *arg, dp_http_reader *r);           /* 0 ok, -1 fail */
} dp_http_reader_cbs;

struct dp_http_reader {
    http_parser parser;
    dp_http_head head;
    const dp_http_reader_cbs *cbs;
    void *arg;
    bool in_message;            /* between message begin and complete */
    bool in_trailers;           /* the head is complete: fields now are trailers */
    bool user_paused;           /* dp_http_reader_pause, not the reader's own pause */
    dp_h1_frame frame;          /* the framing-line watch (http_strict.h) */
    dp_h1_verdict verdict;      /* why the message failed, when a rule said so */
    char why[200];
};

enum { DP_HTTP_OK = 0, DP_HTTP_PAUSED = 1, DP_HTTP_ERROR = -1 };

/* r must be zeroed before its first init; re-initialising keeps the arena. */
void dp_http_reader_init(dp_http_reader *r, enum http_parser_type type,
                         const dp_http_reader_cbs *cbs, void *arg);
void dp_http_reader_free(dp_http_reader *r);
/* Feeds bytes; returns how many were consumed and sets *status. len == 0
 * signals EOF (completes a close-delimited response). On DP_HTTP_ERROR,
 * dp_http_reader_error() describes it. */
size_t dp_http_reader_feed(dp_http_reader *r, const char *data, size_t len, int *status);
void dp_http_reader_pause(dp_http_reader *r, bool paused);
const char *dp_http_reader_error(const dp_http_reader *r);
/* The status a failed request is answered with: 400, 431 (a limit), 501 (a
 * transfer coding) or 505 (the version). */
int dp_http_reader_error_status(const dp_http_reader *r);
/* True if the head was over a limit (-> 431 rather than 400). */
bool dp_http_reader_head_too_big(const dp_http_reader *r);

/* Head accessors (valid after on_head until the next message begins). */
const char *dp_http_head_url(const dp_http_head *h, size_t *len);
const char *dp_http_head_reason(const dp_http_head *h, size_t *len);
/* First header with that name (case-insensitive), NULL if absent. */
const dp_http_header *dp_http_head_find(const dp_http_head *h, const char *name);
/* True if the named header's comma-separated tokens contain tok
 * (case-insensitive), e.g. Connection: keep-alive, Upgrade. */
/* One element of a comma-separated field value (RFC 9110 5.6.1): skips
 * empty elements and optional whitespace; [*s, *e) is the element, trimmed.
 * Advances *p; false when the list is exhausted. */
bool dp_http_list_next(const char **p, const char *end, const char **s, const char **e);
bool dp_http_head_has_token(const dp_http_head *h, const char *name, const char *tok);

#endif
