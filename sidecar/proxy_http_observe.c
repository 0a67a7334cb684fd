/* sidecar/proxy_http_observe.c — what a finished HTTP exchange leaves behind:
 * one access log line (dp_access_log.h) and one sample of the per-cluster,
 * per-route and per-peer metrics (dp_metrics.h). Called once per exchange,
 * on the proxy loop, when its response is done or it is reset without one;
 * the exchange still holds its snapshot, so names point into live config. */
#include "sidecar/proxy_http.h"

#include <http_parser.h>
#include <time.h>

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void dp_http_observe_start(dp_http_exchange *x)
{
    x->start_us = wall_us();
    x->start_mono_us = mono_us();
}

/* Envoy's response flags, as far as the exchange knows them. */
static const char *response_flags(const dp_http_session *s)
{
    const dp_http_exchange *x = &s->x;
    if (x->status == 0)
        return x->attempts ? "UR" : "DC";       /* upstream reset / downstream closed */
    if (dp_hx_has(x, DP_HX_F_OVERLOADED))
        return "UO";                            /* upstream overflow (circuit breaker) */
    if (x->status == 503 && !x->last_host[0] && x->cluster)
        return "UH";                            /* no healthy upstream */
    if (x->status == 504)
        return "UT";                            /* upstream request timeout */
    return "";
}

void dp_http_observe(dp_http_session *s)
{
    dp_http_exchange *x = &s->x;
    dp_proxy *px = s->base.px;
    bool head = x->start_us != 0;
    const dp_http_head *h = head ? dp_http_request_head(s) : NULL;
    int64_t dur = head ? mono_us() - x->start_mono_us : 0;
    const char *peer = s->base.inbound ? s->base.peer_id : x->last_peer;
    const char *cluster = x->cluster ? x->cluster->name : NULL;
    dp_metrics_sample m = {
        .inbound = s->base.inbound,
        .cluster = cluster,
        .route = x->route_name,
        .peer = peer,
        .status = x->status,
        .duration_us = dur,
        .bytes_in = x->bytes_in,
        .bytes_out = x->bytes_out,
    };
    dp_metrics_record(px->metrics, &m);
    if (!px->alog)
        return;
    char path[2048] = "", authority[256] = "";
    const char *method = NULL;
    if (h) {
        size_t ul = 0;
        const char *url = dp_http_head_url(h, &ul);
        snprintf(path, sizeof path, "%.*s", (int)(ul < sizeof path ? ul : sizeof path - 1), url);
        const dp_http_header *host = dp_http_head_find(h, "host");
        if (host)
            snprintf(authority, sizeof authority, "%.*s",
                     (int)(host->value_len < sizeof authority ? host->value_len
                                                              : sizeof authority - 1),
                     host->value);
        method = http_method_str((enum http_method)h->method);
    }
    dp_access_entry e = {
        .start_unix_us = head ? x->start_us : wall_us(),
        .duration_us = dur,
        .direction = s->base.inbound ? "inbound" : "outbound",
        .listener = s->base.listener,
        .method = method,
        .path = h ? path : NULL,
        .authority = h && authority[0] ? authority : NULL,
        .protocol = h ? (h->minor == 0 ? "HTTP/1.0" : "HTTP/1.1") : NULL,
        .status = x->status,
        .bytes_received = x->bytes_in,
        .bytes_sent = x->bytes_out,
        .upstream_cluster = cluster,
        .upstream_host = x->last_host[0] ? x->last_host : NULL,
        .route = x->route_name,
        .peer_id = peer,
        .request_id = x->request_id,
        .attempts = x->attempts,
        .response_flags = response_flags(s),
    };
    dp_access_log_write(px->alog, &e);
}
