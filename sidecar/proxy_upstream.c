/* sidecar/proxy_upstream.c — upstream connections: connect (plain or mTLS),
 * peer identity check, per-endpoint keep-alive pool, and closing a
 * connection the moment its or its peer's certificate expires.
 *
 * Ownership: a connection is either owned (by the session using it, holding
 * a reference on its endpoint) or pooled (on the endpoint's idle list, no
 * reference: when the endpoint leaves every snapshot its pool is drained). */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sidecar/proxy_internal.h"
#include "sidecar/tls_util.h"

static void trust_domain_of(const char *id, char *td, size_t len)
{
    const char *p = strncmp(id, "spiffe://", 9) == 0 ? id + 9 : id;
    size_t n = strcspn(p, "/");
    if (n >= len)
        n = len - 1;
    memcpy(td, p, n);
    td[n] = '\0';
}

bool dp_peer_allowed_by_cluster(const dp_cluster *cl, const char *peer_id, const char *own_td)
{
    if (cl->n_san > 0) {
        for (size_t i = 0; i < cl->n_san; i++)
            if (strcmp(cl->san_ids[i], peer_id) == 0)
                return true;
        return false;
    }
    char td[256];
    trust_domain_of(peer_id, td, sizeof td);
    return strcmp(td, own_td) == 0;
}

void dp_upconn_track(dp_upconn *uc)
{
    dp_proxy *px = uc->px;
    uc->all_prev = NULL;
    uc->all_next = px->upconns;
    if (px->upconns)
        px->upconns->all_prev = uc;
    px->upconns = uc;
}

void dp_upconn_untrack(dp_upconn *uc)
{
    if (uc->all_prev)
        uc->all_prev->all_next = uc->all_next;
    else if (uc->px->upconns == uc)
        uc->px->upconns = uc->all_next;
    if (uc->all_next)
        uc->all_next->all_prev = uc->all_prev;
    uc->all_prev = uc->all_next = NULL;
}

/* The endpoint (and so its cluster's load) outlives every connection to it:
 * owned ones hold a reference, pooled ones are drained before it goes. */
static void up_free(dp_upconn *uc)
{
    if (!uc->probe && uc->ep->load->cx > 0)
        uc->ep->load->cx--;
    dp_upconn_untrack(uc);
    if (uc->bev)
        bufferevent_free(uc->bev);
    if (uc->timer)
        event_free(uc->timer);
    dp_stat_dec(&uc->px->st.active_up);
    free(uc);
}

static void pool_remove(dp_upconn *uc)
{
    dp_ep_rt *ep = uc->ep;
    if (uc->pool_prev)
        uc->pool_prev->pool_next = uc->pool_next;
    else
        ep->idle = uc->pool_next;
    if (uc->pool_next)
        uc->pool_next->pool_prev = uc->pool_prev;
    uc->pool_prev = uc->pool_next = NULL;
    ep->n_idle--;
    uc->pooled = false;
}

void dp_up_close(dp_upconn *uc)
{
    if (!uc)
        return;
    dp_ep_rt *ep = uc->ep;
    bool owned = !uc->pooled;
    if (uc->pooled)
        pool_remove(uc);
    up_free(uc);
    if (owned)
        dp_ep_unref(ep);
}

bool dp_up_needs_new(const dp_ep_rt *ep)
{
    return ep->idle == NULL;
}

void dp_up_drain_pool(dp_ep_rt *ep)
{
    while (ep->idle) {
        dp_upconn *uc = ep->idle;
        pool_remove(uc);
        up_free(uc);
    }
}

static void pool_read_cb(struct bufferevent *bev, void *arg)
{
    /* An idle HTTP/1.1 connection must not receive bytes: the server is
     * confused or closing; either way it is not reusable. */
    dp_up_close(arg);
}

static void pool_event_cb(struct bufferevent *bev, short what, void *arg)
{
    dp_up_close(arg);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    dp_upconn *uc = arg;
    dp_proxy *px = uc->px;
    if (!uc->connected) {
        char why[400];
        snprintf(why, sizeof why, "connect timeout to %s (cluster '%.100s')", uc->ep->addr,
                 uc->ep->cluster);
        if (uc->tls)
            dp_stat_inc(&px->st.up_hs_failed);
        uc->ops->ready(uc->owner, uc, MESH_EIO, why);
        return;
    }
    if (uc->revoked_why[0]) {
        /* proxy_revoke.c found a certificate on it revoked by new CRLs. */
        char why[DP_REVOKED_WHY + DP_SPIFFE_ID_MAX + 200];
        snprintf(why, sizeof why, "upstream connection to %s (%s) closed: %s", uc->ep->addr,
                 uc->peer_id, uc->revoked_why);
        log_info(DP_LOG, "%s", why);
        if (uc->pooled || !uc->ops)
            dp_up_close(uc);
        else
            uc->ops->dead(uc->owner, uc, why);
        return;
    }
    /* Expired at notAfter itself (now >= notAfter), like the cert pool. */
    if (dp_now() < uc->deadline) {
        dp_timer_at(uc->timer, uc->deadline);   /* a capped or early timer: wait on */
        return;
    }
    char when[32], why[DP_SPIFFE_ID_MAX + 200];
    tls_format_time(uc->deadline, when, sizeof when);
    snprintf(why, sizeof why, "upstream connection to %s (%s) closed: a certificate on it "
             "expired at %s", uc->ep->addr, uc->peer_id, when);
    log_info(DP_LOG, "%s", why);
    dp_stat_inc(&px->st.closed_cert_expiry);
    if (uc->pooled || !uc->ops)
        dp_up_close(uc);
    else
        uc->ops->dead(uc->owner, uc, why);
}

static void connect_event_cb(struct bufferevent *bev, short what, void *arg)
{
    dp_upconn *uc = arg;
    dp_proxy *px = uc->px;
    char why[DP_SPIFFE_ID_MAX + 600];
    if (what & BEV_EVENT_CONNECTED) {
        evtimer_del(uc->timer);
        if (uc->tls) {
            SSL *ssl = bufferevent_openssl_get_ssl(bev);
            mesh_err e;
            char own[DP_SPIFFE_ID_MAX + 1] = "", td[256];
            X509 *local = SSL_get_certificate(ssl);
            if (tls_peer_spiffe_id(ssl, uc->peer_id, sizeof uc->peer_id, &e) != MESH_OK) {
                snprintf(why, sizeof why, "upstream %s (cluster '%.200s'): peer certificate is "
                         "not an X.509-SVID: %.512s", uc->ep->addr, uc->ep->cluster, e.msg);
                goto failed;
            }
            if (!local || tls_cert_spiffe_id(local, own, sizeof own, NULL) != MESH_OK)
                own[0] = '\0';
            trust_domain_of(own, td, sizeof td);
            if (!dp_peer_allowed_by_cluster(uc->cl, uc->peer_id, td)) {
                snprintf(why, sizeof why, "upstream %s (cluster '%.200s') presented %.2048s, "
                         "which the cluster's SAN matchers do not allow", uc->ep->addr,
                         uc->ep->cluster, uc->peer_id);
                goto failed;
            }
            /* A handshake that began before the pool took new CRLs. */
            char rwhy[DP_REVOKED_WHY];
            if (dp_revoke_check(px, ssl, rwhy, sizeof rwhy)) {
                snprintf(why, sizeof why, "upstream %s (cluster '%.200s'): %s", uc->ep->addr,
                         uc->ep->cluster, rwhy);
                goto failed;
            }
            uc->deadline = tls_conn_deadline(ssl);
            if (uc->deadline != INT64_MAX)
                dp_timer_at(uc->timer, uc->deadline);
            dp_stat_inc(&px->st.up_hs_ok);
        }
        uc->connected = true;
        uc->cl = NULL;
        uc->ops->ready(uc->owner, uc, MESH_OK, NULL);
        return;
    }
    if (uc->tls) {
        char detail[512];
        dp_tls_error_string(bev, detail, sizeof detail);
        snprintf(why, sizeof why, "upstream connect error to %s (cluster '%.200s'): %s",
                 uc->ep->addr, uc->ep->cluster, detail);
    } else {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(why, sizeof why, "upstream connect error to %s (cluster '%s'): %s",
                 uc->ep->addr, uc->ep->cluster,
                 e ? evutil_socket_error_to_string(e) : "connection closed");
    }
failed:
    if (uc->tls)
        dp_stat_inc(&px->st.up_hs_failed);
    log_debug(DP_LOG, "%s", why);
    uc->ops->ready(uc->owner, uc, MESH_EIO, why);
}

static dp_upconn *take_pooled(dp_ep_rt *ep, const dp_cluster *cl, bool http)
{
    while (ep->idle) {
        dp_upconn *uc = ep->idle;
        pool_remove(uc);
        bool ok = uc->tls == cl->tls && uc->http == http &&
                  evbuffer_get_length(bufferevent_get_input(uc->bev)) == 0;
        if (ok && uc->tls) {
            /* The cluster's SAN matchers may have changed since the
             * connection was verified. */
            char own[DP_SPIFFE_ID_MAX + 1] = "", td[256];
            X509 *local = SSL_get_certificate(bufferevent_openssl_get_ssl(uc->bev));
            if (local)
                tls_cert_spiffe_id(local, own, sizeof own, NULL);
            trust_domain_of(own, td, sizeof td);
            ok = dp_peer_allowed_by_cluster(cl, uc->peer_id, td);
        }
        if (ok) {
            dp_ep_ref(ep);
            return uc;
        }
        up_free(uc);
    }
    return NULL;
}

dp_upconn *dp_up_get(dp_proxy *px, dp_ep_rt *ep, const dp_cluster *cl, bool http,
                     const dp_up_ops *ops, void *owner, bool *ready_now, char *why,
                     size_t whylen)
{
    /* HTTP/2 connections are shared by streams (proxy_h2_up.c), never pooled here. */
    dp_upconn *uc = cl->h2.enabled ? NULL : take_pooled(ep, cl, http);
    if (uc) {
        uc->ops = ops;
        uc->owner = owner;
        bufferevent_set_timeouts(uc->bev, NULL, NULL);
        *ready_now = true;
        return uc;
    }
    *ready_now = false;
    return dp_up_connect(px, ep, cl, http, false, ops, owner, why, whylen);
}

dp_upconn *dp_up_connect(dp_proxy *px, dp_ep_rt *ep, const dp_cluster *cl, bool http,
                         bool probe, const dp_up_ops *ops, void *owner, char *why,
                         size_t whylen)
{
    dp_upconn *uc;
    SSL *ssl = NULL;
    if (cl->tls) {
        SSL_CTX *ctx = NULL;
        mesh_err e;
        int rc = cert_pool_client_ctx(px->pool, dp_now(), &ctx, &e);
        if (rc != MESH_OK) {
            if (rc == MESH_EEXPIRED)
                dp_stat_inc(&px->st.tls_refused_expired);
            dp_stat_inc(&px->st.up_hs_failed);
            snprintf(why, whylen, "no mTLS to cluster '%s': %s", cl->name, e.msg);
            return NULL;
        }
        ssl = SSL_new(ctx);
        SSL_CTX_free(ctx);
        if (!ssl) {
            ERR_clear_error();
            snprintf(why, whylen, "out of memory creating a TLS session");
            return NULL;
        }
        if (http && cl->h2.enabled) {
            static const unsigned char alpn[] = {2, 'h', '2'};
            SSL_set_alpn_protos(ssl, alpn, sizeof alpn);
        } else if (http) {
            static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
            SSL_set_alpn_protos(ssl, alpn, sizeof alpn);
        }
    }
    uc = calloc(1, sizeof *uc);
    if (!uc) {
        SSL_free(ssl);
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    uc->px = px;
    uc->ep = ep;
    uc->probe = probe;
    uc->tls = cl->tls;
    uc->http = http;
    uc->ops = ops;
    uc->owner = owner;
    uc->cl = cl;
    dp_upconn_track(uc);
    dp_ep_ref(ep);
    if (!probe)
        ep->load->cx++;
    dp_stat_inc(&px->st.active_up);
    int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    if (ssl) {
        uc->bev = bufferevent_openssl_socket_new(px->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                 opts);
        if (uc->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(uc->bev, 1);
        else
            SSL_free(ssl);
    } else {
        uc->bev = bufferevent_socket_new(px->base, -1, opts);
    }
    uc->timer = evtimer_new(px->base, timer_cb, uc);
    if (!uc->bev || !uc->timer) {
        snprintf(why, whylen, "out of memory creating an upstream connection");
        dp_up_close(uc);
        return NULL;
    }
    bufferevent_setcb(uc->bev, NULL, NULL, connect_event_cb, uc);
    if (bufferevent_socket_connect(uc->bev, (struct sockaddr *)&ep->sa, (int)ep->sa_len) < 0) {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(why, whylen, "upstream connect error to %s (cluster '%s'): %s", ep->addr,
                 cl->name, evutil_socket_error_to_string(e));
        dp_up_close(uc);
        return NULL;
    }
    int one = 1;
    evutil_socket_t fd = bufferevent_getfd(uc->bev);
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int64_t ct = cl->connect_timeout_ms > 0 ? cl->connect_timeout_ms
                                            : DP_DEFAULT_CONNECT_TIMEOUT_MS;
    dp_timer_ms(uc->timer, ct);
    return uc;
}

void dp_up_release(dp_upconn *uc, bool reusable)
{
    dp_ep_rt *ep = uc->ep;
    dp_proxy *px = uc->px;
    /* Pool only if a snapshot still routes to this endpoint (refs > 1: ours
     * plus at least one), the pool has room, and nothing is half-sent. */
    if (!reusable || !uc->connected || ep->refs <= 1 ||
        ep->n_idle >= px->opts.max_idle_per_endpoint ||
        evbuffer_get_length(bufferevent_get_output(uc->bev)) > 0 ||
        evbuffer_get_length(bufferevent_get_input(uc->bev)) > 0) {
        dp_up_close(uc);
        return;
    }
    uc->owner = NULL;
    uc->ops = NULL;
    uc->pooled = true;
    uc->pool_prev = NULL;
    uc->pool_next = ep->idle;
    if (ep->idle)
        ep->idle->pool_prev = uc;
    ep->idle = uc;
    ep->n_idle++;
    bufferevent_setcb(uc->bev, pool_read_cb, NULL, pool_event_cb, uc);
    bufferevent_setwatermark(uc->bev, EV_WRITE, 0, 0);
    bufferevent_enable(uc->bev, EV_READ);
    struct timeval idle = dp_timeval_ms(px->opts.idle_timeout_ms);
    bufferevent_set_timeouts(uc->bev, &idle, NULL);
    dp_ep_unref(ep);    /* refs > 1 checked above: ep stays */
}
