/* sidecar/proxy_tcp.c — TCP sessions: bytes between the two sides.
 *
 * Outbound: plain bytes from the local app -> the listener's cluster over
 * mTLS (connect retried on another endpoint, up to 3 attempts, since nothing
 * was sent yet). Inbound: mTLS from a peer sidecar; RBAC decides once, at
 * connection time (no 403 exists in a byte stream: a denied caller is
 * closed), then bytes go to the local app.
 *
 * When one side closes, what it sent is flushed to the other side, then both
 * close (TLS via bufferevent_openssl has no half-close). A connection is
 * closed when a certificate on either TLS hop expires. Accepting, the mTLS
 * handshake, expiry and the deferred free are the shared session lifecycle
 * (proxy_session.c); this file is the byte pump on top of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sidecar/proxy_internal.h"

#define TCP_MAX_ATTEMPTS 3
#define TCP_IDLE_MS (3600LL * 1000)   /* Envoy tcp_proxy's default idle timeout */

typedef struct tsess {
    dp_session base;                /* downstream, identity, lifecycle */
    bool down_eof, up_eof;          /* that side closed: flush to the other, then close */
    int64_t last_activity;
    dp_active *act;
    const dp_cluster *cl;
    size_t ci;
    dp_ep_rt *ep;
    const dp_ep_rt *last_failed;
    dp_upconn *up;
    bool up_ready;
    int attempts;
} tsess;

static tsess *tsess_of(dp_session *base)
{
    return (tsess *)base;
}

static void release_up(tsess *s)
{
    if (s->up) {
        dp_up_close(s->up);
        s->up = NULL;
        s->up_ready = false;
    }
    if (s->ep) {
        if (s->ep->active_rq > 0)
            s->ep->active_rq--;
        dp_ep_unref(s->ep);
        s->ep = NULL;
    }
}

static void tcp_kill(tsess *s)
{
    dp_session_kill(&s->base);
}

static void set_idle(struct bufferevent *bev)
{
    struct timeval tv = {.tv_sec = (time_t)(TCP_IDLE_MS / 1000), .tv_usec = 0};
    bufferevent_set_timeouts(bev, &tv, NULL);
}

/* Moves src's input to dst's output; pauses src if dst is backed up. */
static void pump(tsess *s, struct bufferevent *src, struct bufferevent *dst)
{
    struct evbuffer *in = bufferevent_get_input(src), *out = bufferevent_get_output(dst);
    if (evbuffer_get_length(in) > 0) {
        evbuffer_add_buffer(out, in);
        s->last_activity = dp_now();
    }
    if (evbuffer_get_length(out) > DP_HIGH_WATER) {
        bufferevent_disable(src, EV_READ);
        /* dst's write callback fires when it drains to the low mark. */
        bufferevent_setwatermark(dst, EV_WRITE, DP_LOW_WATER, 0);
    }
}

static void maybe_finish(tsess *s)
{
    /* A closed side's data has been handed over; close once it is written.
     * Bytes a client sent before closing wait for the upstream to connect. */
    if (s->down_eof && s->up_ready &&
        evbuffer_get_length(bufferevent_get_output(s->up->bev)) == 0) {
        tcp_kill(s);
        return;
    }
    if (s->up_eof && evbuffer_get_length(bufferevent_get_output(s->base.down)) == 0)
        tcp_kill(s);
}

/* Upstream callbacks never see a dead session: ops->stop closes the upstream. */
static void up_read_cb(struct bufferevent *bev, void *arg)
{
    tsess *s = arg;
    pump(s, bev, s->base.down);
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
    tsess *s = arg;
    if (!s->down_eof && evbuffer_get_length(bufferevent_get_output(bev)) <= DP_LOW_WATER) {
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_enable(s->base.down, EV_READ);
    }
    maybe_finish(s);
}

static void side_event(tsess *s, bool up_side, short what)
{
    struct bufferevent *down = s->base.down;
    struct bufferevent *bev = up_side ? s->up->bev : down;
    if (what & BEV_EVENT_TIMEOUT) {
        /* Idle only if neither direction moved. */
        if (dp_now() - s->last_activity < TCP_IDLE_MS / 1000) {
            bufferevent_enable(bev, EV_READ);
            return;
        }
        log_debug(DP_LOG, "tcp '%s': idle timeout", s->base.listener);
        tcp_kill(s);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        if (up_side) {
            pump(s, s->up->bev, down);
            s->up_eof = true;
            bufferevent_disable(s->up->bev, EV_READ);
        } else {
            if (s->up_ready)
                pump(s, down, s->up->bev);
            s->down_eof = true;
            bufferevent_disable(down, EV_READ);
        }
        maybe_finish(s);
        return;
    }
    tcp_kill(s);    /* error */
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    side_event(arg, true, what);
}

static void connect_next(tsess *s);

static void on_up_ready(void *owner, dp_upconn *uc, int rc, const char *why)
{
    tsess *s = owner;
    const char *lname = s->base.listener;
    dp_active_record(s->base.px, s->act, s->ci, s->ep,
                     rc == MESH_OK ? DP_RESULT_CONNECTED : DP_RESULT_CONNECT_FAILED);
    if (rc != MESH_OK) {
        s->last_failed = s->ep;
        release_up(s);
        if (s->attempts < TCP_MAX_ATTEMPTS) {
            log_debug(DP_LOG, "tcp '%s': %s; trying another endpoint", lname, why);
            connect_next(s);
            return;
        }
        log_info(DP_LOG, "tcp '%s': giving up: %s", lname, why);
        tcp_kill(s);
        return;
    }
    s->up_ready = true;
    s->last_activity = dp_now();
    bufferevent_setcb(uc->bev, up_read_cb, up_write_cb, up_event_cb, s);
    set_idle(uc->bev);
    bufferevent_enable(uc->bev, EV_READ | EV_WRITE);
    pump(s, s->base.down, uc->bev);
    if (!s->down_eof)
        bufferevent_enable(s->base.down, EV_READ);
    maybe_finish(s);
}

static void on_up_dead(void *owner, dp_upconn *uc, const char *why)
{
    tcp_kill(owner);
}

static const dp_up_ops up_ops = {.ready = on_up_ready, .dead = on_up_dead};

static void connect_next(tsess *s)
{
    s->attempts++;
    dp_ep_rt *ep = dp_active_pick(s->base.px, s->act, s->ci, &s->last_failed,
                                  s->last_failed ? 1 : 0);
    if (!ep) {
        log_info(DP_LOG, "tcp '%s': no healthy upstream for cluster '%s'", s->base.listener,
                 s->cl->name);
        tcp_kill(s);
        return;
    }
    if (dp_up_needs_new(ep) &&
        !dp_breaker_admit(&s->cl->breakers, ep->load, DP_BREAKER_CONNECTIONS)) {
        /* Envoy's TCP proxy closes the downstream on upstream_cx_overflow. */
        dp_stat_inc(&s->base.px->st.overflow_cx);
        log_info(DP_LOG, "tcp '%s': circuit breaker: cluster '%s' has %u connections "
                 "(max_connections %u); closing", s->base.listener, s->cl->name, ep->load->cx,
                 s->cl->breakers.max_connections);
        tcp_kill(s);
        return;
    }
    dp_ep_ref(ep);
    ep->active_rq++;
    s->ep = ep;
    bool ready;
    char why[DP_SPIFFE_ID_MAX + 300];
    dp_upconn *uc = dp_up_get(s->base.px, ep, s->cl, false, &up_ops, s, &ready, why,
                              sizeof why);
    if (!uc) {
        log_info(DP_LOG, "tcp '%s': %s", s->base.listener, why);
        s->last_failed = ep;
        release_up(s);
        if (s->attempts < TCP_MAX_ATTEMPTS)
            connect_next(s);
        else
            tcp_kill(s);
        return;
    }
    s->up = uc;
    if (ready)
        on_up_ready(s, uc, MESH_OK, NULL);
}

static void start_upstream(tsess *s)
{
    dp_proxy *px = s->base.px;
    if (!px->active) {
        tcp_kill(s);
        return;
    }
    s->act = dp_active_ref(px->active);
    const dp_listener *l = dp_config_find_listener(s->act->cfg, s->base.listener);
    if (!l) {
        tcp_kill(s);
        return;
    }
    if (s->base.inbound && !dp_listener_allows(l, s->base.peer_id)) {
        dp_stat_inc(&px->st.rbac_denied);
        log_info(DP_LOG, "RBAC: denied %s on tcp listener '%s'; closing", s->base.peer_id,
                 l->name);
        tcp_kill(s);
        return;
    }
    const char *cname = s->base.inbound ? l->local_cluster : l->cluster;
    s->cl = dp_config_find_cluster(s->act->cfg, cname, &s->ci);
    if (!s->cl) {
        log_info(DP_LOG, "tcp '%s': cluster '%s' not found (not yet received from meshd?)",
                 l->name, cname);
        tcp_kill(s);
        return;
    }
    /* Hold client bytes until the upstream is there. */
    bufferevent_disable(s->base.down, EV_READ);
    connect_next(s);
}

/* ---- session ops ----------------------------------------------------------------------- */

static int tcp_init(dp_session *base)
{
    tsess_of(base)->last_activity = dp_now();
    return MESH_OK;
}

static void tcp_open(dp_session *base)
{
    set_idle(base->down);
    bufferevent_enable(base->down, EV_WRITE);
    start_upstream(tsess_of(base));
}

static void tcp_on_read(dp_session *base)
{
    tsess *s = tsess_of(base);
    if (s->up_ready)
        pump(s, base->down, s->up->bev);
    else if (evbuffer_get_length(bufferevent_get_input(base->down)) > DP_HIGH_WATER)
        bufferevent_disable(base->down, EV_READ);
}

static void tcp_on_write(dp_session *base)
{
    tsess *s = tsess_of(base);
    if (s->up_ready && !s->up_eof &&
        evbuffer_get_length(bufferevent_get_output(base->down)) <= DP_LOW_WATER) {
        bufferevent_setwatermark(base->down, EV_WRITE, 0, 0);
        bufferevent_enable(s->up->bev, EV_READ);
    }
    maybe_finish(s);
}

static void tcp_on_event(dp_session *base, short what)
{
    side_event(tsess_of(base), false, what);
}

static void tcp_stop(dp_session *base)
{
    release_up(tsess_of(base));
}

static void tcp_release(dp_session *base)
{
    tsess *s = tsess_of(base);
    release_up(s);
    dp_active_unref(base->px, s->act);
}

const dp_session_ops dp_tcp_session_ops = {
    .log_name = "inbound tcp",
    .size = sizeof(tsess),
    .init = tcp_init,
    .open = tcp_open,
    .on_read = tcp_on_read,
    .on_write = tcp_on_write,
    .on_event = tcp_on_event,
    .stop = tcp_stop,
    .release = tcp_release,
};
