/* sidecar/http_strict.h — the RFC 9112 rules that Debian's http-parser
 * build does not enforce, checked around it by the reader (http_msg.c).
 *
 * Debian compiles libhttp_parser with HTTP_PARSER_STRICT=0 (the library's
 * "fast" build), and even strict mode lets through obs-folded lines, bare LF
 * line ends, any HTTP/D.D version, repeated Host and Transfer-Encoding
 * lines. Measured on 2.9.4 (docs/dataplane.md, "HTTP/1.1 rules"): the
 * installed parser accepts `Name : v` (the space becomes part of the name),
 * `Transfer-Encoding : chunked` (then not framing at all), obs-fold, bare
 * LF, HTTP/9.9, a second Host, request targets with tabs or bytes >= 0x80,
 * and any bytes where the CRLF after chunk data belongs. It already refuses
 * duplicate or malformed Content-Length, Content-Length with
 * Transfer-Encoding, a request coding list not ending in chunked, bare CR,
 * control characters in values, unknown methods and bad chunk sizes.
 *
 * Two layers, neither a parser of its own:
 *  - dp_h1_frame watches the raw bytes of a message's *framing lines* (the
 *    start line, field lines, chunk-size lines and the CRLF after chunk
 *    data) for CRLF discipline, obs-fold, the start line's shape and the
 *    head size, while http-parser does the parsing. Body data is opaque to
 *    it; the reader tells it where http-parser found chunk and message
 *    boundaries.
 *  - dp_h1_check_head judges a complete head: field names, Host, the
 *    transfer coding, the version and the status code. */
#ifndef MESH_SIDECAR_HTTP_STRICT_H
#define MESH_SIDECAR_HTTP_STRICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sidecar/dp_route.h"

/* Raw bytes of a message head (start line to the empty line) and of a
 * trailer section: the limit on both sides of every hop. */
#define DP_HTTP_MAX_HEAD    (64 * 1024)
/* Field lines in a head. */
#define DP_HTTP_MAX_HEADERS 128

/* What a failed check means for the reply to a request (a response from an
 * upstream that fails any of them is a 502). */
typedef enum dp_h1_verdict {
    DP_H1_OK = 0,
    DP_H1_BAD = 400,            /* malformed: 400 Bad Request */
    DP_H1_TOO_LARGE = 431,      /* over a limit: 431 Request Header Fields Too Large */
    DP_H1_NOT_IMPLEMENTED = 501, /* a transfer coding other than chunked */
    DP_H1_VERSION = 505,        /* HTTP major version other than 1 */
} dp_h1_verdict;

typedef struct dp_h1_frame {
    uint8_t state;
    bool request;
    uint32_t line_bytes;        /* raw bytes of the head or trailer section so far */
    uint32_t start_len;         /* start line bytes so far */
    uint32_t start_spaces;      /* SP in the request line */
    char start_edge[9];         /* request: last 9 bytes of the start line; response: first 9 */
    uint64_t chunk_left;        /* chunk data bytes before the CRLF that must follow */
    dp_h1_verdict verdict;
    char why[160];
} dp_h1_frame;

void dp_h1_frame_init(dp_h1_frame *f, bool request);
/* Bytes of data http-parser may be given now: all of them, or fewer when a
 * framing line is broken (f->verdict and f->why say how; the bytes before
 * it are still good), or when the frame needs http-parser's view of the
 * body before it can go on (then it stops where that view starts). */
size_t dp_h1_frame_scan(dp_h1_frame *f, const char *data, size_t len);
/* Whether the next byte is opaque body data (scan passes it all). */
bool dp_h1_frame_opaque(const dp_h1_frame *f);
/* http-parser's boundaries, reported by the reader where they happen. */
void dp_h1_frame_chunk_header(dp_h1_frame *f, uint64_t size);  /* 0: trailers follow */
void dp_h1_frame_message_done(dp_h1_frame *f);
/* The head just ended and its body is chunked: chunk-size lines follow. */
void dp_h1_frame_chunked_body(dp_h1_frame *f);

typedef struct dp_h1_head_facts {
    bool request;
    unsigned short major, minor;
    int status;                 /* responses */
    const dp_http_header *fields;
    size_t n_fields;
} dp_h1_head_facts;

/* The rules for a complete head; DP_H1_OK or a verdict with why filled. */
dp_h1_verdict dp_h1_check_head(const dp_h1_head_facts *h, char *why, size_t why_len);

/* A field name equal to name ignoring case, '_' standing for '-' (the
 * spelling CGI-style servers fold together). */
bool dp_h1_name_like(const char *name, size_t len, const char *lower_dashed);

#endif
