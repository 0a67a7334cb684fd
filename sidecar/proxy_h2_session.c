/* sidecar/proxy_h2_session.c — the downstream side of HTTP/2 (proxy_h2.h).
 *
 * A listener that takes HTTP/2 gets this session. It embeds the HTTP/1.1 session and picks
 * one at open: inbound by the ALPN the handshake chose ("h2", offered by cert_pool only on
 * such listeners), outbound by the first bytes (the 24-byte client preface of h2c with prior
 * knowledge, what gRPC clients send; anything else is HTTP/1.1, so "PRI * HTTP/2.0" with a
 * broken preface is refused there with 400). In HTTP/2 mode an nghttp2 server session reads
 * the connection; every complete request head is routed (RBAC by the caller's SPIFFE ID on
 * inbound, the route table on outbound) and attached to an upstream connection. A protocol
 * error is answered by nghttp2's GOAWAY, after which the connection closes once flushed. */
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "sidecar/dp_route.h"
#include "sidecar/proxy_h2.h"

enum { H2_SNIFF, H2_H1, H2_H2 };

static const char preface[] = NGHTTP2_CLIENT_MAGIC;     /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" */

static dp_h2_session *ds_of(dp_session *base)
{
    return (dp_h2_session *)base;
}

static void h2_fail(dp_h2_session *d, const char *why)
{
    log_debug(DP_LOG, "h2 downstream on listener '%s' closed: %s", d->h1.base.listener, why);
    dp_session_kill(&d->h1.base);
}

/* No read timeout while streams are open (a quiet gRPC stream is not idle); the idle timeout
 * otherwise. */
static void update_timeouts(dp_h2_session *d)
{
    struct bufferevent *bev = d->h1.base.down;
    if (d->n_streams) {
        bufferevent_set_timeouts(bev, NULL, NULL);
    } else {
        struct timeval tv = dp_timeval_ms(d->h1.base.px->opts.idle_timeout_ms);
        bufferevent_set_timeouts(bev, &tv, NULL);
    }
}

static void pump(dp_h2_session *d)
{
    dp_session *base = &d->h1.base;
    if (d->mode != H2_H2 || !d->ng || dp_session_dead(base) || base->phase != DP_SESSION_OPEN)
        return;
    struct evbuffer *out = bufferevent_get_output(base->down);
    while (evbuffer_get_length(out) < DP_HIGH_WATER) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(d->ng, &data);
        if (n < 0) {
            h2_fail(d, nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            break;
        evbuffer_add(out, data, (size_t)n);
    }
    update_timeouts(d);
    if (!nghttp2_session_want_read(d->ng) && !nghttp2_session_want_write(d->ng))
        dp_session_close_after_flush(base);     /* after GOAWAY, or both ends done */
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    pump(arg);
}

void dp_h2_down_schedule(dp_h2_session *d)
{
    if (d && d->pump_ev)
        event_active(d->pump_ev, EV_WRITE, 0);
}

/* ---- nghttp2 server callbacks ------------------------------------------------------------ */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    dp_h2_session *d = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    dp_h2_xchg *x = dp_h2_xchg_new(d, f->hd.stream_id);
    if (!x)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, x);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    dp_h2_xchg *x = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!x || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    dp_h2_hdrs *h = f->headers.cat == NGHTTP2_HCAT_REQUEST ? &x->req : &x->req_trailers;
    /* Over 64 KiB or 128 fields (the HTTP/1.1 limits): the stream is reset. */
    if (dp_h2_hdrs_add(h, name, nlen, value, vlen) != MESH_OK)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    dp_h2_xchg *x = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!x)
        return 0;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        x->req_end = end;
        dp_h2_route(x);
    } else if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && end) {
        x->req_end = true;
        if (!x->local)
            dp_h2_wake_up_side(x);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    dp_h2_xchg *x = nghttp2_session_get_stream_user_data(ng, id);
    if (!x || x->local) {
        /* Nobody will read it: open the window at once. */
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    evbuffer_add(x->req_body, data, len);
    dp_h2_wake_up_side(x);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    dp_h2_xchg *x = nghttp2_session_get_stream_user_data(ng, id);
    if (!x)
        return 0;
    x->down_closed = true;
    /* The client reset it (or it ended before the response did): RST_STREAM upstream. */
    if (code != NGHTTP2_NO_ERROR || !x->resp_end)
        dp_h2_up_cancel(x, code != NGHTTP2_NO_ERROR ? code : NGHTTP2_CANCEL);
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    dp_h2_xchg_maybe_free(x);
    return 0;
}

/* ---- routing --------------------------------------------------------------------------- */

static const char *hval(const dp_h2_hdrs *h, const char *name, size_t *len)
{
    const nghttp2_nv *nv = dp_h2_hdrs_find(h, name);
    *len = nv ? nv->valuelen : 0;
    return nv ? (const char *)nv->value : NULL;
}

/* Inbound: RBAC, then the local cluster. Outbound: the route table's choice. NULL after a
 * local reply. */
static const char *pick_cluster(dp_h2_xchg *x, const dp_listener *l, int64_t *timeout_ms)
{
    dp_session *base = &x->d->h1.base;
    dp_proxy *px = base->px;
    if (base->inbound) {
        if (!dp_listener_allows(l, base->peer_id)) {
            dp_stat_inc(&px->st.rbac_denied);
            log_info(DP_LOG, "RBAC: denied %s on listener '%s'", base->peer_id, l->name);
            dp_h2_local_reply(x, 403, "RBAC: access denied: %s is not allowed to call this "
                              "service (listener '%s')", base->peer_id, l->name);
            return NULL;
        }
        *timeout_ms = l->timeout_ms;
        return l->local_cluster;
    }
    const dp_route_table *rt = dp_config_find_route_table(x->act->cfg, l->route_table);
    if (!rt) {
        dp_h2_local_reply(x, 404, "route table '%s' has not been received from meshd",
                          l->route_table);
        return NULL;
    }
    dp_http_header hs[128];
    size_t n = 0;
    for (size_t i = 0; i < x->req.n && n < 128; i++) {
        const nghttp2_nv *nv = &x->req.nv[i];
        if (nv->namelen && nv->name[0] != ':')
            hs[n++] = (dp_http_header){(const char *)nv->name, nv->namelen,
                                       (const char *)nv->value, nv->valuelen};
    }
    dp_route_req rq = {.headers = hs, .n_headers = n};
    rq.host = hval(&x->req, ":authority", &rq.host_len);
    if (!rq.host)
        rq.host = hval(&x->req, "host", &rq.host_len);
    rq.path = hval(&x->req, ":path", &rq.path_len);
    if (!rq.path) {
        rq.path = "/";
        rq.path_len = 1;
    }
    const dp_virtual_host *vh = NULL;
    const dp_route *r = dp_route_match(rt, &rq, &vh);
    if (!r) {
        dp_h2_local_reply(x, 404, "no route for host '%.*s' path '%.*s' in route table '%s'%s",
                          (int)(rq.host_len > 200 ? 200 : rq.host_len), rq.host ? rq.host : "",
                          (int)(rq.path_len > 500 ? 500 : rq.path_len), rq.path, rt->name,
                          vh ? "" : " (no virtual host matches the host)");
        return NULL;
    }
    *timeout_ms = r->timeout_ms;
    return dp_route_pick_cluster(r, &px->rng);
}

void dp_h2_route(dp_h2_xchg *x)
{
    dp_proxy *px = x->px;
    size_t ctlen;
    const char *ct = hval(&x->req, "content-type", &ctlen);
    x->grpc = ct && ctlen >= 16 && strncasecmp(ct, "application/grpc", 16) == 0;
    if (!px->active) {
        dp_h2_local_reply(x, 503, "no configuration from meshd yet");
        return;
    }
    x->act = dp_active_ref(px->active);
    const dp_listener *l = dp_config_find_listener(x->act->cfg, x->d->h1.base.listener);
    if (!l) {
        dp_h2_local_reply(x, 503, "listener '%s' was removed", x->d->h1.base.listener);
        return;
    }
    int64_t timeout_ms = 0;
    const char *cname = pick_cluster(x, l, &timeout_ms);
    if (!cname)
        return;
    /* The client's grpc-timeout is honoured, within the route's timeout when it has one
     * (Envoy's max_stream_duration.grpc_timeout_header_max with the route timeout as max). */
    size_t gtlen;
    const char *gt = x->grpc ? hval(&x->req, "grpc-timeout", &gtlen) : NULL;
    int64_t gms = gt ? dp_h2_grpc_timeout_ms(gt, gtlen) : -1;
    if (gms > 0 && (timeout_ms <= 0 || gms < timeout_ms))
        timeout_ms = gms;
    dp_h2_arm_timeout(x, timeout_ms);
    const dp_cluster *cl = dp_config_find_cluster(x->act->cfg, cname, &x->ci);
    if (!cl) {
        dp_h2_local_reply(x, 503, "cluster '%s' not found (not yet received from meshd?)", cname);
        return;
    }
    if (!cl->h2.enabled) {
        dp_h2_local_reply(x, 502, "cluster '%s' speaks HTTP/1.1; the sidecar does not "
                          "translate HTTP/2 to HTTP/1.1", cl->name);
        return;
    }
    dp_ep_rt *ep = dp_active_pick(px, x->act, x->ci, NULL, 0);
    if (!ep) {
        dp_h2_local_reply(x, 503, "no healthy upstream for cluster '%s'", cl->name);
        return;
    }
    dp_ep_ref(ep);
    ep->active_rq++;
    x->ep = ep;
    dp_h2_up_attach(x, cl);
}

/* ---- session ops ------------------------------------------------------------------------ */

static int start_h2(dp_h2_session *d)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return MESH_ENOMEM;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return MESH_ENOMEM;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    /* Windows open only as the other side drains (proxy_h2.h). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rc = nghttp2_session_server_new2(&d->ng, cbs, d, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc != 0)
        return MESH_ENOMEM;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, d->cfg.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, d->cfg.stream_window},
    };
    if (nghttp2_submit_settings(d->ng, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(d->ng, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)d->cfg.connection_window) != 0)
        return MESH_EINVAL;
    d->mode = H2_H2;
    bufferevent_setwatermark(d->h1.base.down, EV_WRITE, DP_LOW_WATER, 0);
    return MESH_OK;
}

static void h2_read(dp_h2_session *d)
{
    struct evbuffer *in = bufferevent_get_input(d->h1.base.down);
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v[4];
        int nv = evbuffer_peek(in, -1, NULL, v, 4);
        size_t used = 0;
        for (int i = 0; i < nv && i < 4; i++) {
            ssize_t n = nghttp2_session_mem_recv(d->ng, v[i].iov_base, v[i].iov_len);
            if (n < 0) {
                h2_fail(d, nghttp2_strerror((int)n));
                return;
            }
            used += (size_t)n;
            if (dp_session_dead(&d->h1.base))
                return;
        }
        evbuffer_drain(in, used);
    }
    pump(d);
}

/* Outbound: the client preface decides. */
static void sniff(dp_h2_session *d)
{
    dp_session *base = &d->h1.base;
    struct evbuffer *in = bufferevent_get_input(base->down);
    size_t n = evbuffer_get_length(in);
    if (n == 0)
        return;
    size_t k = n < sizeof preface - 1 ? n : sizeof preface - 1;
    const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)k);
    if (!p || memcmp(p, preface, k) != 0) {
        d->mode = H2_H1;
        dp_http_session_ops.open(base);
        return;
    }
    if (k < sizeof preface - 1)
        return;             /* a prefix of the preface so far: wait for the rest */
    if (start_h2(d) != MESH_OK) {
        h2_fail(d, "out of memory starting an HTTP/2 session");
        return;
    }
    h2_read(d);
}

static int h2s_init(dp_session *base)
{
    dp_h2_session *d = ds_of(base);
    int rc = dp_http_session_ops.init(base);
    if (rc != MESH_OK)
        return rc;
    d->pump_ev = event_new(base->px->base, -1, 0, on_pump, d);
    if (!d->pump_ev)
        return MESH_ENOMEM;
    const dp_listener *l = base->px->active
                               ? dp_config_find_listener(base->px->active->cfg, base->listener)
                               : NULL;
    if (l)
        d->cfg = l->h2;
    if (!d->cfg.max_concurrent_streams)
        d->cfg.max_concurrent_streams = DP_H2_DEFAULT_MAX_STREAMS;
    if (!d->cfg.stream_window)
        d->cfg.stream_window = DP_H2_DEFAULT_STREAM_WINDOW;
    if (!d->cfg.connection_window)
        d->cfg.connection_window = DP_H2_DEFAULT_CONN_WINDOW;
    if (base->inbound) {
        SSL *ssl = bufferevent_openssl_get_ssl(base->down);
        if (ssl)
            cert_pool_ssl_offer_h2(ssl);
    }
    return MESH_OK;
}

static void h2s_open(dp_session *base)
{
    dp_h2_session *d = ds_of(base);
    if (base->inbound) {
        const unsigned char *alpn = NULL;
        unsigned int alen = 0;
        SSL *ssl = bufferevent_openssl_get_ssl(base->down);
        if (ssl)
            SSL_get0_alpn_selected(ssl, &alpn, &alen);
        if (alen == 2 && memcmp(alpn, "h2", 2) == 0) {
            if (start_h2(d) != MESH_OK) {
                h2_fail(d, "out of memory starting an HTTP/2 session");
                return;
            }
            bufferevent_enable(base->down, EV_READ | EV_WRITE);
            pump(d);            /* our SETTINGS first */
            h2_read(d);
            return;
        }
        d->mode = H2_H1;
        dp_http_session_ops.open(base);
        return;
    }
    d->mode = H2_SNIFF;
    struct timeval tv = dp_timeval_ms(base->px->opts.request_headers_timeout_ms);
    bufferevent_set_timeouts(base->down, &tv, NULL);
    bufferevent_enable(base->down, EV_READ | EV_WRITE);
    sniff(d);
}

static void h2s_on_read(dp_session *base)
{
    dp_h2_session *d = ds_of(base);
    switch (d->mode) {
    case H2_H1: dp_http_session_ops.on_read(base); break;
    case H2_SNIFF: sniff(d); break;
    default: h2_read(d); break;
    }
}

static void h2s_on_write(dp_session *base)
{
    dp_h2_session *d = ds_of(base);
    if (d->mode == H2_H1)
        dp_http_session_ops.on_write(base);
    else if (d->mode == H2_H2 &&
             evbuffer_get_length(bufferevent_get_output(base->down)) <= DP_LOW_WATER)
        pump(d);
}

static void h2s_on_event(dp_session *base, short what)
{
    dp_h2_session *d = ds_of(base);
    if (d->mode == H2_H1) {
        dp_http_session_ops.on_event(base, what);
        return;
    }
    h2_fail(d, (what & BEV_EVENT_TIMEOUT) ? "idle timeout"
               : (what & BEV_EVENT_EOF) ? "the client closed the connection"
                                         : "connection error");
}

/* Every stream still open: the upstream side is cancelled, the downstream side is gone. */
static void h2s_stop(dp_session *base)
{
    dp_h2_session *d = ds_of(base);
    while (d->streams) {
        dp_h2_xchg *x = d->streams;
        x->down_closed = true;
        if (!x->resp_end)
            dp_h2_up_cancel(x, NGHTTP2_CANCEL);
        if (d->ng)
            nghttp2_session_set_stream_user_data(d->ng, x->down_id, NULL);
        /* Unlinked from d here whether or not the upstream still holds it. */
        if (x->d_next)
            x->d_next->d_prev = NULL;
        d->streams = x->d_next;
        x->d_prev = x->d_next = NULL;
        x->d = NULL;
        d->n_streams--;
        dp_h2_xchg_maybe_free(x);
    }
    if (d->pump_ev)
        event_del(d->pump_ev);
    dp_http_session_ops.stop(base);
}

static void h2s_release(dp_session *base)
{
    dp_h2_session *d = ds_of(base);
    if (d->streams)
        h2s_stop(base);     /* never killed (proxy teardown) */
    if (d->ng)
        nghttp2_session_del(d->ng);
    d->ng = NULL;
    if (d->pump_ev)
        event_free(d->pump_ev);
    d->pump_ev = NULL;
    dp_http_session_ops.release(base);
}

const dp_session_ops dp_h2_session_ops = {
    .log_name = "inbound",
    .size = sizeof(dp_h2_session),
    .init = h2s_init,
    .open = h2s_open,
    .on_read = h2s_on_read,
    .on_write = h2s_on_write,
    .on_event = h2s_on_event,
    .stop = h2s_stop,
    .release = h2s_release,
    .linger_on_close = true,
};
