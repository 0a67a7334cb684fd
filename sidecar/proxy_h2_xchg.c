/* sidecar/proxy_h2_xchg.c — one HTTP/2 exchange across the sidecar (proxy_h2.h): the header
 * lists it forwards, the two data sources that move body bytes between the sessions (and open
 * the source's flow-control window only for what they took), local replies, and freeing it
 * once both of its streams are closed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "sidecar/proxy_h2.h"

#define H2_MAX_HDR_BYTES (64 * 1024)
#define H2_MAX_HDR_FIELDS 128

int dp_h2_hdrs_add(dp_h2_hdrs *h, const uint8_t *name, size_t nlen, const uint8_t *value,
                   size_t vlen)
{
    if (h->n >= H2_MAX_HDR_FIELDS || h->bytes + nlen + vlen > H2_MAX_HDR_BYTES)
        return MESH_EINVAL;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        nghttp2_nv *nv = realloc(h->nv, cap * sizeof *nv);
        if (!nv)
            return MESH_ENOMEM;
        h->nv = nv;
        h->cap = cap;
    }
    uint8_t *buf = malloc(nlen + vlen + 2);
    if (!buf)
        return MESH_ENOMEM;
    memcpy(buf, name, nlen);
    buf[nlen] = '\0';
    memcpy(buf + nlen + 1, value, vlen);
    buf[nlen + 1 + vlen] = '\0';
    h->nv[h->n++] = (nghttp2_nv){.name = buf, .namelen = nlen, .value = buf + nlen + 1,
                                 .valuelen = vlen, .flags = NGHTTP2_NV_FLAG_NONE};
    h->bytes += nlen + vlen;
    return MESH_OK;
}

void dp_h2_hdrs_free(dp_h2_hdrs *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->nv[i].name);
    free(h->nv);
    memset(h, 0, sizeof *h);
}

const nghttp2_nv *dp_h2_hdrs_find(const dp_h2_hdrs *h, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < h->n; i++)
        if (h->nv[i].namelen == len && memcmp(h->nv[i].name, name, len) == 0)
            return &h->nv[i];
    return NULL;
}

/* RFC 9113 8.2.2: connection-specific fields must not appear in HTTP/2 (nghttp2 refuses them
 * on receipt already; an HTTP/1.1 peer's would be dropped here); the mesh-owned ones are
 * restated by the sidecar that owns them (docs/dataplane.md, mesh-owned headers). */
static bool forwardable(const nghttp2_nv *nv)
{
    static const char *const drop[] = {"connection", "keep-alive", "proxy-connection",
                                       "transfer-encoding", "upgrade",
                                       "x-forwarded-client-cert"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        if (nv->namelen == strlen(drop[i]) && memcmp(nv->name, drop[i], nv->namelen) == 0)
            return false;
    /* TE: only "trailers" may cross (gRPC needs it). */
    if (nv->namelen == 2 && memcmp(nv->name, "te", 2) == 0)
        return nv->valuelen == 8 && strncasecmp((const char *)nv->value, "trailers", 8) == 0;
    return true;
}

int dp_h2_hdrs_forward(const dp_h2_hdrs *src, const nghttp2_nv *extra, size_t n_extra,
                       dp_h2_hdrs *out)
{
    memset(out, 0, sizeof *out);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < src->n; i++) {
            const nghttp2_nv *nv = &src->nv[i];
            bool pseudo = nv->namelen > 0 && nv->name[0] == ':';
            if (pseudo != (pass == 0) || !forwardable(nv))
                continue;
            if (dp_h2_hdrs_add(out, nv->name, nv->namelen, nv->value, nv->valuelen) != MESH_OK)
                return MESH_EINVAL;
        }
    }
    for (size_t i = 0; i < n_extra; i++)
        if (dp_h2_hdrs_add(out, extra[i].name, extra[i].namelen, extra[i].value,
                           extra[i].valuelen) != MESH_OK)
            return MESH_EINVAL;
    return MESH_OK;
}

dp_h2_xchg *dp_h2_xchg_new(dp_h2_session *d, int32_t down_id)
{
    dp_h2_xchg *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->req_body = evbuffer_new();
    x->resp_body = evbuffer_new();
    if (!x->req_body || !x->resp_body) {
        if (x->req_body)
            evbuffer_free(x->req_body);
        if (x->resp_body)
            evbuffer_free(x->resp_body);
        free(x);
        return NULL;
    }
    x->px = d->h1.base.px;
    x->inbound = d->h1.base.inbound;
    x->d = d;
    x->down_id = down_id;
    x->d_next = d->streams;
    if (d->streams)
        d->streams->d_prev = x;
    d->streams = x;
    d->n_streams++;
    return x;
}

static void unlink_down(dp_h2_xchg *x)
{
    dp_h2_session *d = x->d;
    if (!d)
        return;
    if (x->d_prev)
        x->d_prev->d_next = x->d_next;
    else
        d->streams = x->d_next;
    if (x->d_next)
        x->d_next->d_prev = x->d_prev;
    x->d_prev = x->d_next = NULL;
    d->n_streams--;
    if (d->ng && x->down_id > 0)
        nghttp2_session_set_stream_user_data(d->ng, x->down_id, NULL);
    x->d = NULL;
}

int64_t dp_h2_grpc_timeout_ms(const char *v, size_t len)
{
    if (len < 2 || len > 9)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H': return n * 3600000;
    case 'M': return n * 60000;
    case 'S': return n * 1000;
    case 'm': return n;
    case 'u': return (n + 999) / 1000;
    case 'n': return (n + 999999) / 1000000;
    default: return -1;
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    dp_h2_xchg *x = arg;
    if (!x->d || x->down_closed || x->resp_end)
        return;
    dp_stat_inc(&x->px->st.timeouts);
    dp_h2_up_cancel(x, NGHTTP2_CANCEL);
    if (!x->resp_started) {
        dp_h2_local_reply(x, 504, "upstream request timeout");
    } else {
        nghttp2_submit_rst_stream(x->d->ng, NGHTTP2_FLAG_NONE, x->down_id, NGHTTP2_CANCEL);
        dp_h2_down_schedule(x->d);
    }
}

void dp_h2_arm_timeout(dp_h2_xchg *x, int64_t ms)
{
    if (ms <= 0)
        return;
    if (!x->timer)
        x->timer = evtimer_new(x->px->base, on_timeout, x);
    if (x->timer)
        dp_timer_ms(x->timer, ms);
}

void dp_h2_xchg_maybe_free(dp_h2_xchg *x)
{
    if (!x->down_closed || (x->up && !x->up_closed))
        return;
    if (x->timer)
        event_free(x->timer);
    dp_h2_up_detach(x);
    unlink_down(x);
    if (x->ep) {
        if (x->ep->active_rq > 0)
            x->ep->active_rq--;
        /* A reset by the client says nothing about the host: only answers count. */
        if (x->act && x->status && !x->local)
            dp_active_record(x->px, x->act, x->ci, x->ep, x->status);
        dp_ep_unref(x->ep);
    }
    if (x->status)
        dp_stat_inc(&x->px->st.rq_by_class[x->inbound ? 1 : 0][dp_code_class(x->status)]);
    else
        dp_stat_inc(&x->px->st.rq_by_class[x->inbound ? 1 : 0][0]);
    if (x->act)
        dp_active_unref(x->px, x->act);
    dp_h2_hdrs_free(&x->req);
    dp_h2_hdrs_free(&x->req_trailers);
    dp_h2_hdrs_free(&x->resp);
    dp_h2_hdrs_free(&x->resp_trailers);
    evbuffer_free(x->req_body);
    evbuffer_free(x->resp_body);
    free(x);
}

/* ---- data sources ------------------------------------------------------------------------
 * Each runs inside the sending session's mem_send; it may submit trailers on that session
 * (nghttp2 allows it there) and consume on the other one, whose pump it schedules. */

static ssize_t take(struct evbuffer *from, uint8_t *buf, size_t length)
{
    int n = evbuffer_remove(from, buf, length);
    return n < 0 ? 0 : n;
}

/* Request body: downstream -> upstream. */
static ssize_t req_source(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length,
                          uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    dp_h2_xchg *x = src->ptr;
    ssize_t n = take(x->req_body, buf, length);
    if (n > 0 && x->d && x->d->ng) {
        nghttp2_session_consume(x->d->ng, x->down_id, (size_t)n);
        dp_h2_down_schedule(x->d);
    }
    if (evbuffer_get_length(x->req_body) == 0) {
        if (x->req_end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            if (x->req_trailers.n &&
                nghttp2_submit_trailer(ng, stream_id, x->req_trailers.nv, x->req_trailers.n) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        } else if (n == 0) {
            x->req_deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return n;
}

/* Response body: upstream -> downstream. */
static ssize_t resp_source(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    dp_h2_xchg *x = src->ptr;
    ssize_t n = take(x->resp_body, buf, length);
    if (n > 0 && x->up && x->up->ng && x->up_id > 0 && !x->up_closed) {
        nghttp2_session_consume(x->up->ng, x->up_id, (size_t)n);
        dp_h2_up_schedule(x->up);
    } else if (n > 0 && x->up && x->up->ng) {
        /* The upstream stream is closed: its bytes still count on the connection. */
        nghttp2_session_consume_connection(x->up->ng, (size_t)n);
        dp_h2_up_schedule(x->up);
    }
    if (evbuffer_get_length(x->resp_body) == 0) {
        if (x->resp_end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            if (x->resp_trailers.n) {
                dp_h2_hdrs fwd;
                if (dp_h2_hdrs_forward(&x->resp_trailers, NULL, 0, &fwd) == MESH_OK &&
                    nghttp2_submit_trailer(ng, stream_id, fwd.nv, fwd.n) == 0)
                    *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                dp_h2_hdrs_free(&fwd);
            }
        } else if (n == 0) {
            x->resp_deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return n;
}

const nghttp2_data_source_read_callback dp_h2_req_source = req_source;

void dp_h2_wake_up_side(dp_h2_xchg *x)
{
    if (x->req_deferred && x->up && x->up->ng && x->up_id > 0) {
        x->req_deferred = false;
        nghttp2_session_resume_data(x->up->ng, x->up_id);
    }
    if (x->up)
        dp_h2_up_schedule(x->up);
}

void dp_h2_wake_down_side(dp_h2_xchg *x)
{
    if (!x->d)
        return;
    if (x->resp_deferred) {
        x->resp_deferred = false;
        nghttp2_session_resume_data(x->d->ng, x->down_id);
    }
    dp_h2_down_schedule(x->d);
}

void dp_h2_forward_response(dp_h2_xchg *x, bool end_stream)
{
    if (!x->d || x->resp_started)
        return;
    dp_h2_hdrs fwd;
    if (dp_h2_hdrs_forward(&x->resp, NULL, 0, &fwd) != MESH_OK) {
        dp_h2_hdrs_free(&fwd);
        dp_h2_local_reply(x, 502, "the upstream's response head is over the limits");
        return;
    }
    x->resp_started = true;
    nghttp2_data_provider prd = {.source.ptr = x, .read_callback = resp_source};
    /* END_STREAM on the HEADERS themselves: gRPC's trailers-only response. */
    nghttp2_submit_response(x->d->ng, x->down_id, fwd.nv, fwd.n, end_stream ? NULL : &prd);
    dp_h2_hdrs_free(&fwd);
    dp_h2_down_schedule(x->d);
}

/* Envoy's mapping of its local-reply HTTP statuses to gRPC codes (grpc_status for
 * Http::Code), so a gRPC client sees UNAVAILABLE, PERMISSION_DENIED, ... */
static int grpc_code_for(int status)
{
    switch (status) {
    case 400: return 13;    /* INTERNAL */
    case 401: return 16;    /* UNAUTHENTICATED */
    case 403: return 7;     /* PERMISSION_DENIED */
    case 404: return 12;    /* UNIMPLEMENTED */
    case 429: case 502: case 503: case 504: return status == 504 ? 4 : 14;
    default: return 2;      /* UNKNOWN */
    }
}

/* grpc-message is percent-encoded (gRPC over HTTP/2 spec): everything outside 0x20-0x7e and
 * '%' itself. */
static void pct_encode(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (; *in && o + 4 < len; in++) {
        unsigned char c = (unsigned char)*in;
        if (c < 0x20 || c > 0x7e || c == '%')
            o += (size_t)snprintf(out + o, len - o, "%%%02X", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}

void dp_h2_local_reply(dp_h2_xchg *x, int status, const char *fmt, ...)
{
    if (!x->d || x->resp_started)
        return;
    char msg[1024], code[16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    x->local = true;
    x->resp_started = true;
    x->status = status;
    /* What the client still sends is dropped: open its window for it at once. */
    size_t pending = evbuffer_get_length(x->req_body);
    if (pending) {
        evbuffer_drain(x->req_body, pending);
        nghttp2_session_consume(x->d->ng, x->down_id, pending);
    }
    log_debug(DP_LOG, "h2 local reply %d on stream %d: %s", status, x->down_id, msg);
    if (x->grpc) {
        char enc[3 * sizeof msg];
        pct_encode(msg, enc, sizeof enc);
        snprintf(code, sizeof code, "%d", grpc_code_for(status));
        const nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                                 NV("grpc-status", code), NV("grpc-message", enc)};
        x->resp_end = true;
        nghttp2_submit_response(x->d->ng, x->down_id, nv, 4, NULL);
    } else {
        snprintf(code, sizeof code, "%d", status);
        evbuffer_add_printf(x->resp_body, "%s\n", msg);
        x->resp_end = true;
        const nghttp2_nv nv[] = {NV(":status", code), NV("content-type", "text/plain")};
        nghttp2_data_provider prd = {.source.ptr = x, .read_callback = resp_source};
        nghttp2_submit_response(x->d->ng, x->down_id, nv, 2, &prd);
    }
    dp_h2_down_schedule(x->d);
}
