/* sidecar/proxy_h2_up.c — upstream HTTP/2 connections (proxy_h2.h).
 *
 * One connection per endpoint carries every stream to it (ep->h2_up): h2 over mTLS to a peer
 * sidecar (ALPN "h2", peer checked by proxy_upstream.c exactly as for HTTP/1.1), h2c with
 * prior knowledge to the local app. Streams that arrive while it connects wait on `pending`;
 * nghttp2 itself holds back streams beyond the peer's SETTINGS_MAX_CONCURRENT_STREAMS. The
 * connection closes when it fails (every stream without a response gets a 503, the others
 * are reset downstream), when a certificate on it expires or is revoked (dp_up_ops.dead), or
 * once idle when its endpoint has left the config. */
#include <string.h>

#include "common/log.h"
#include "sidecar/proxy_h2.h"
#include "sidecar/tls_util.h"

static void list_unlink(dp_h2_xchg **head, dp_h2_xchg *x)
{
    if (x->u_prev)
        x->u_prev->u_next = x->u_next;
    else if (*head == x)
        *head = x->u_next;
    if (x->u_next)
        x->u_next->u_prev = x->u_prev;
    x->u_prev = x->u_next = NULL;
}

static void list_push(dp_h2_xchg **head, dp_h2_xchg *x)
{
    x->u_prev = NULL;
    x->u_next = *head;
    if (*head)
        (*head)->u_prev = x;
    *head = x;
}

static void up_free(dp_h2_up *up)
{
    if (up->ep && up->ep->h2_up == up)
        up->ep->h2_up = NULL;
    if (up->ng)
        nghttp2_session_del(up->ng);
    if (up->pump_ev)
        event_free(up->pump_ev);
    if (up->act)
        dp_active_unref(up->px, up->act);
    dp_up_close(up->uc);
    free(up);
}

/* The connection is gone: every exchange on it learns so, then it is freed. */
static void up_fail(dp_h2_up *up, const char *why)
{
    log_debug(DP_LOG, "h2 upstream %s (cluster '%s') closed: %s", up->ep->addr, up->ep->cluster,
              why);
    if (up->ep->h2_up == up)
        up->ep->h2_up = NULL;
    dp_h2_xchg **lists[] = {&up->pending, &up->streams};
    for (int k = 0; k < 2; k++) {
        while (*lists[k]) {
            dp_h2_xchg *x = *lists[k];
            list_unlink(lists[k], x);
            if (up->ng && x->up_id > 0)
                nghttp2_session_set_stream_user_data(up->ng, x->up_id, NULL);
            x->up = NULL;
            x->up_closed = true;
            if (x->d && !x->down_closed) {
                if (!x->resp_started) {
                    /* Counted against the host (outlier detection, /clusters) once. */
                    if (x->act && x->ep)
                        dp_active_record(up->px, x->act, x->ci, x->ep,
                                         DP_RESULT_CONNECT_FAILED);
                    dp_h2_local_reply(x, 503, "upstream connect error or disconnect/reset "
                                      "before headers: %s", why);
                } else if (!x->resp_end) {
                    nghttp2_submit_rst_stream(x->d->ng, NGHTTP2_FLAG_NONE, x->down_id,
                                              NGHTTP2_INTERNAL_ERROR);
                    dp_h2_down_schedule(x->d);
                }
            }
            dp_h2_xchg_maybe_free(x);
        }
    }
    up_free(up);
}

static void pump(dp_h2_up *up)
{
    if (!up->ng)
        return;
    struct evbuffer *out = bufferevent_get_output(up->uc->bev);
    while (evbuffer_get_length(out) < DP_HIGH_WATER) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(up->ng, &data);
        if (n < 0) {
            up_fail(up, nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            break;
        evbuffer_add(out, data, (size_t)n);
    }
    if (!nghttp2_session_want_read(up->ng) && !nghttp2_session_want_write(up->ng)) {
        up_fail(up, "the HTTP/2 session ended (GOAWAY)");
        return;
    }
    /* Idle, and no snapshot routes to the endpoint any more (refs: only ours). */
    if (!up->streams && !up->pending && (up->draining || up->ep->refs <= 1) &&
        evbuffer_get_length(out) == 0) {
        up_fail(up, "idle and no longer used");
        return;
    }
    struct bufferevent *bev = up->uc->bev;
    if (up->n_streams) {
        bufferevent_set_timeouts(bev, NULL, NULL);
    } else {
        struct timeval tv = dp_timeval_ms(up->px->opts.idle_timeout_ms);
        bufferevent_set_timeouts(bev, &tv, NULL);
    }
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    pump(arg);
}

void dp_h2_up_schedule(dp_h2_up *up)
{
    if (up && up->pump_ev)
        event_active(up->pump_ev, EV_WRITE, 0);
}

/* ---- nghttp2 client callbacks ------------------------------------------------------------ */

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    dp_h2_xchg *x = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!x || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    /* Until the head is forwarded (1xx heads are dropped), fields are the head's. */
    dp_h2_hdrs *h = x->resp_started ? &x->resp_trailers : &x->resp;
    if (dp_h2_hdrs_add(h, name, nlen, value, vlen) != MESH_OK)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int status_of(const dp_h2_hdrs *h)
{
    const nghttp2_nv *nv = dp_h2_hdrs_find(h, ":status");
    if (!nv || nv->valuelen != 3)
        return 0;
    return (nv->value[0] - '0') * 100 + (nv->value[1] - '0') * 10 + (nv->value[2] - '0');
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    dp_h2_xchg *x = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!x)
        return 0;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (f->hd.type == NGHTTP2_HEADERS && !x->resp_started && x->resp.n &&
        (f->headers.cat == NGHTTP2_HCAT_RESPONSE || f->headers.cat == NGHTTP2_HCAT_HEADERS)) {
        int st = status_of(&x->resp);
        if (st >= 100 && st < 200) {
            dp_h2_hdrs_free(&x->resp);      /* interim: not forwarded */
            return 0;
        }
        x->status = st;
        x->resp_end = end;
        dp_h2_forward_response(x, end);
    } else if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && end) {
        x->resp_end = true;
        dp_h2_wake_down_side(x);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    dp_h2_xchg *x = nghttp2_session_get_stream_user_data(ng, id);
    if (!x || !x->d || x->local) {
        nghttp2_session_consume(ng, id, len);   /* nobody will read it */
        return 0;
    }
    evbuffer_add(x->resp_body, data, len);
    dp_h2_wake_down_side(x);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    dp_h2_up *up = ud;
    dp_h2_xchg *x = nghttp2_session_get_stream_user_data(ng, id);
    if (!x)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    x->up_closed = true;
    list_unlink(&up->streams, x);
    up->n_streams--;
    if (x->d && !x->down_closed && !x->resp_end && !x->local) {
        /* The app (or the peer sidecar) reset the stream: so does the client's. */
        if (!x->resp_started && code == NGHTTP2_REFUSED_STREAM) {
            dp_h2_local_reply(x, 503, "upstream refused the stream");
        } else {
            nghttp2_submit_rst_stream(x->d->ng, NGHTTP2_FLAG_NONE, x->down_id,
                                      code != NGHTTP2_NO_ERROR ? code : NGHTTP2_INTERNAL_ERROR);
            dp_h2_down_schedule(x->d);
        }
    }
    x->up = NULL;
    dp_h2_xchg_maybe_free(x);
    dp_h2_up_schedule(up);
    return 0;
}

static int on_frame_recv_conn(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type == NGHTTP2_GOAWAY) {
        dp_h2_up *up = ud;
        up->draining = true;        /* streams above last_stream_id are closed by nghttp2 */
        if (up->ep->h2_up == up)
            up->ep->h2_up = NULL;
        return 0;
    }
    return on_frame_recv(ng, f, ud);
}

/* ---- streams ------------------------------------------------------------------------------ */

static void submit(dp_h2_up *up, dp_h2_xchg *x)
{
    dp_h2_hdrs fwd;
    int rc;
    if (x->d && x->d->h1.base.inbound) {
        /* The app learns who called it, as on HTTP/1.1 (sanitize and set). */
        char xfcc[2 * DP_SPIFFE_ID_MAX + 32];
        int n = snprintf(xfcc, sizeof xfcc, "By=%s;URI=%s", x->d->h1.base.own_id,
                         x->d->h1.base.peer_id);
        nghttp2_nv extra = {(uint8_t *)"x-forwarded-client-cert", (uint8_t *)xfcc, 23,
                            (size_t)n, NGHTTP2_NV_FLAG_NONE};
        rc = dp_h2_hdrs_forward(&x->req, &extra, 1, &fwd);
    } else {
        rc = dp_h2_hdrs_forward(&x->req, NULL, 0, &fwd);
    }
    if (rc != MESH_OK) {
        dp_h2_hdrs_free(&fwd);
        x->up = NULL;
        dp_h2_local_reply(x, 431, "request head over 64 KiB or 128 fields with the mesh's own");
        return;
    }
    nghttp2_data_provider prd = {.source.ptr = x, .read_callback = dp_h2_req_source};
    bool body = !x->req_end || evbuffer_get_length(x->req_body) > 0;
    int32_t id = nghttp2_submit_request(up->ng, NULL, fwd.nv, fwd.n, body ? &prd : NULL, x);
    dp_h2_hdrs_free(&fwd);
    if (id < 0) {
        x->up = NULL;
        dp_h2_local_reply(x, 503, "upstream %s refused a new stream: %s", up->ep->addr,
                          nghttp2_strerror(id));
        return;
    }
    x->up_id = id;
    list_push(&up->streams, x);
    up->n_streams++;
    dp_h2_up_schedule(up);
}

static void up_read_cb(struct bufferevent *bev, void *arg)
{
    dp_h2_up *up = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v[4];
        int nv = evbuffer_peek(in, -1, NULL, v, 4);
        size_t used = 0;
        for (int i = 0; i < nv && i < 4; i++) {
            ssize_t n = nghttp2_session_mem_recv(up->ng, v[i].iov_base, v[i].iov_len);
            if (n < 0) {
                up_fail(up, nghttp2_strerror((int)n));
                return;
            }
            used += (size_t)n;
        }
        evbuffer_drain(in, used);
    }
    pump(up);
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
    dp_h2_up *up = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) <= DP_LOW_WATER)
        pump(up);
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    up_fail(arg, (what & BEV_EVENT_TIMEOUT) ? "idle timeout"
                 : (what & BEV_EVENT_EOF) ? "the upstream closed the connection"
                                           : "connection error");
}

static int start_session(dp_h2_up *up)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return MESH_ENOMEM;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return MESH_ENOMEM;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv_conn);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rc = nghttp2_session_client_new2(&up->ng, cbs, up, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc != 0)
        return MESH_ENOMEM;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, up->cfg.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, up->cfg.stream_window},
    };
    if (nghttp2_submit_settings(up->ng, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
        nghttp2_session_set_local_window_size(up->ng, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)up->cfg.connection_window) != 0)
        return MESH_EINVAL;
    return MESH_OK;
}

static void on_ready(void *owner, dp_upconn *uc, int rc, const char *why)
{
    dp_h2_up *up = owner;
    if (rc != MESH_OK) {
        up_fail(up, why);
        return;
    }
    if (uc->tls) {
        const unsigned char *alpn = NULL;
        unsigned int alen = 0;
        SSL_get0_alpn_selected(bufferevent_openssl_get_ssl(uc->bev), &alpn, &alen);
        if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
            up_fail(up, "the peer sidecar did not negotiate HTTP/2 (ALPN h2); its listener "
                        "does not take HTTP/2");
            return;
        }
    }
    dp_active_unref(up->px, up->act);
    up->act = NULL;
    if (start_session(up) != MESH_OK) {
        up_fail(up, "out of memory starting an HTTP/2 session");
        return;
    }
    bufferevent_setcb(uc->bev, up_read_cb, up_write_cb, up_event_cb, up);
    bufferevent_setwatermark(uc->bev, EV_WRITE, DP_LOW_WATER, 0);
    bufferevent_enable(uc->bev, EV_READ | EV_WRITE);
    while (up->pending) {
        dp_h2_xchg *x = up->pending;
        list_unlink(&up->pending, x);
        submit(up, x);
    }
    pump(up);
}

static void on_dead(void *owner, dp_upconn *uc, const char *why)
{
    up_fail(owner, why);
}

static const dp_up_ops h2_up_ops = {.ready = on_ready, .dead = on_dead};

/* The endpoint's connection is usable for this cluster: its SAN matchers (which a new
 * snapshot may have changed) still allow the peer it verified. */
static bool still_allowed(dp_h2_up *up, const dp_cluster *cl)
{
    if (!up->uc->tls || !up->uc->connected)
        return true;
    char own[DP_SPIFFE_ID_MAX + 1] = "", td[256] = "";
    X509 *local = SSL_get_certificate(bufferevent_openssl_get_ssl(up->uc->bev));
    if (local)
        tls_cert_spiffe_id(local, own, sizeof own, NULL);
    const char *p = strncmp(own, "spiffe://", 9) == 0 ? own + 9 : own;
    size_t n = strcspn(p, "/");
    if (n >= sizeof td)
        n = sizeof td - 1;
    memcpy(td, p, n);
    td[n] = '\0';
    return dp_peer_allowed_by_cluster(cl, up->uc->peer_id, td);
}

static dp_h2_up *up_new(dp_proxy *px, dp_active *act, dp_ep_rt *ep, const dp_cluster *cl,
                        char *why, size_t whylen)
{
    dp_h2_up *up = calloc(1, sizeof *up);
    if (!up) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    up->px = px;
    up->ep = ep;
    up->cfg = cl->h2;
    up->act = dp_active_ref(act);
    up->pump_ev = event_new(px->base, -1, 0, on_pump, up);
    bool ready = false;
    if (up->pump_ev)
        up->uc = dp_up_get(px, ep, cl, true, &h2_up_ops, up, &ready, why, whylen);
    if (!up->uc) {
        if (!up->pump_ev)
            snprintf(why, whylen, "out of memory");
        up->ep = NULL;
        up_free(up);
        return NULL;
    }
    ep->h2_up = up;
    return up;
}

bool dp_h2_up_attach(dp_h2_xchg *x, const dp_cluster *cl)
{
    dp_ep_rt *ep = x->ep;
    dp_h2_up *up = ep->h2_up;
    if (up && (up->draining || !still_allowed(up, cl))) {
        up->draining = true;
        ep->h2_up = NULL;
        dp_h2_up_schedule(up);
        up = NULL;
    }
    if (!up) {
        char why[DP_SPIFFE_ID_MAX + 300];
        up = up_new(x->px, x->act, ep, cl, why, sizeof why);
        if (!up) {
            dp_active_record(x->px, x->act, x->ci, ep, DP_RESULT_CONNECT_FAILED);
            dp_h2_local_reply(x, 503, "%s", why);
            return false;
        }
    }
    x->up = up;
    if (up->ng) {
        submit(up, x);
    } else {
        list_push(&up->pending, x);
    }
    return x->up != NULL;
}

void dp_h2_up_cancel(dp_h2_xchg *x, uint32_t code)
{
    dp_h2_up *up = x->up;
    if (!up || x->up_closed)
        return;
    if (x->up_id > 0 && up->ng) {
        nghttp2_submit_rst_stream(up->ng, NGHTTP2_FLAG_NONE, x->up_id, code);
        dp_h2_up_schedule(up);
        return;     /* on_stream_close finishes it */
    }
    /* Still waiting for the connection: it never leaves. */
    list_unlink(&up->pending, x);
    x->up = NULL;
    x->up_closed = true;
}

void dp_h2_up_detach(dp_h2_xchg *x)
{
    dp_h2_up *up = x->up;
    if (!up)
        return;
    if (x->up_id > 0) {
        list_unlink(&up->streams, x);
        up->n_streams--;
        if (up->ng)
            nghttp2_session_set_stream_user_data(up->ng, x->up_id, NULL);
    } else {
        list_unlink(&up->pending, x);
    }
    x->up = NULL;
    dp_h2_up_schedule(up);
}

void dp_h2_up_free_all(dp_proxy *px)
{
    dp_upconn *uc = px->upconns;
    while (uc) {
        dp_upconn *next = uc->all_next;
        if (uc->ops == &h2_up_ops && uc->owner)
            up_fail(uc->owner, "data plane freed");
        uc = next;
    }
}
