/* sidecar/dp_access_log.h — the sidecar's access log: one JSON object per
 * finished HTTP exchange (Envoy's access log with a JSON format, in the
 * shape its users grep: start, method, path, status, duration, bytes,
 * upstream host, peer SPIFFE ID, request id).
 *
 * Written from the proxy's event-loop thread into a buffer that goes to the
 * file in the background of the loop (when 64 KiB are pending, and at least
 * every second), so a slow disk costs a write per batch, not per request.
 * The file is opened O_APPEND (copytruncate rotation works); "-" is stdout.
 * If the log cannot keep up (4 MiB pending), lines are dropped and counted,
 * never buffered without bound: the data plane must not stall on its log. */
#ifndef MESH_SIDECAR_DP_ACCESS_LOG_H
#define MESH_SIDECAR_DP_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct event_base;
typedef struct dp_access_log dp_access_log;

typedef struct dp_access_entry {
    int64_t start_unix_us;          /* wall clock when the request head arrived */
    int64_t duration_us;            /* to the end of the response (or the reset) */
    const char *direction;          /* "inbound" or "outbound" */
    const char *listener;
    const char *method, *path, *authority;  /* NULL: unknown (a request that did not parse) */
    const char *protocol;           /* "HTTP/1.1" */
    int status;                     /* 0: no response (reset) */
    uint64_t bytes_received;        /* request body bytes from the client */
    uint64_t bytes_sent;            /* response body bytes to the client */
    const char *upstream_cluster;   /* NULL: none chosen */
    const char *upstream_host;      /* the last attempt's endpoint, NULL: none */
    const char *route;              /* the route's name, NULL: none */
    const char *peer_id;            /* inbound: the caller's SPIFFE ID; outbound: the upstream's */
    const char *request_id;         /* x-request-id */
    uint32_t attempts;              /* upstream attempts (1 + retries) */
    const char *response_flags;     /* Envoy-style flags ("UF", "UT", "UO", "URX", ...), "" if none */
} dp_access_entry;

/* path "-" is stdout. */
int dp_access_log_open(const char *path, struct event_base *base, dp_access_log **out,
                       mesh_err *err);
void dp_access_log_write(dp_access_log *l, const dp_access_entry *e);
/* Writes what is pending now (also done by the timer and at close). */
void dp_access_log_flush(dp_access_log *l);
uint64_t dp_access_log_dropped(const dp_access_log *l);
void dp_access_log_close(dp_access_log *l);

/* The JSON line for e, without its newline, into out (json_out.h); for tests. */
struct json_out;
void dp_access_log_format(const dp_access_entry *e, struct json_out *out);

#endif
