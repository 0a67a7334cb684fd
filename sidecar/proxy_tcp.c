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
 * closed when a certificate on either TLS hop expires. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sidecar/proxy_internal.h"
#include "sidecar/tls_util.h"

#define TCP_MAX_ATTEMPTS 3
#define TCP_IDLE_MS (3600LL * 1000)   /* Envoy tcp_proxy's default idle timeout */

typedef struct tsess {
    dp_conn base;
    dp_proxy *px;
    bool inbound;
    char lname[256];
    struct bufferevent *down;
    bool handshaking, dead;
    bool down_eof, up_eof;          /* that side closed: flush to the other, then close */
    char peer_id[DP_SPIFFE_ID_MAX + 1];
    char own_id[DP_SPIFFE_ID_MAX + 1];
    int64_t deadline;
    int64_t last_activity;
    struct event *expiry_ev, *free_ev;
    dp_active *act;
    const dp_cluster *cl;
    size_t ci;
    dp_ep_rt *ep;
    const dp_ep_rt *last_failed;
    dp_upconn *up;
    bool up_ready;
    int attempts;
} tsess;

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

static void destroy(tsess *s)
{
    dp_conn_unlink(&s->base);
    release_up(s);
    dp_active_unref(s->px, s->act);
    if (s->expiry_ev)
        event_free(s->expiry_ev);
    if (s->free_ev)
        event_free(s->free_ev);
    if (s->down)
        bufferevent_free(s->down);
    dp_stat_dec(&s->px->st.active_down);
    free(s);
}

static void destroy_conn(dp_conn *c)
{
    destroy((tsess *)c);
}

static void sess_kill(tsess *s)
{
    if (s->dead)
        return;
    s->dead = true;
    release_up(s);
    if (s->down) {
        bufferevent_setcb(s->down, NULL, NULL, NULL, NULL);
        bufferevent_disable(s->down, EV_READ | EV_WRITE);
    }
    if (s->expiry_ev)
        evtimer_del(s->expiry_ev);
    event_active(s->free_ev, 0, 0);
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
    if (s->dead)
        return;
    /* A closed side's data has been handed over; close once it is written.
     * Bytes a client sent before closing wait for the upstream to connect. */
    if (s->down_eof && s->up_ready &&
        evbuffer_get_length(bufferevent_get_output(s->up->bev)) == 0) {
        sess_kill(s);
        return;
    }
    if (s->up_eof && evbuffer_get_length(bufferevent_get_output(s->down)) == 0)
        sess_kill(s);
}

static void up_read_cb(struct bufferevent *bev, void *arg)
{
    tsess *s = arg;
    if (!s->dead)
        pump(s, bev, s->down);
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
    tsess *s = arg;
    if (s->dead)
        return;
    if (!s->down_eof && evbuffer_get_length(bufferevent_get_output(bev)) <= DP_LOW_WATER) {
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_enable(s->down, EV_READ);
    }
    maybe_finish(s);
}

static void side_event(tsess *s, bool up_side, short what)
{
    if (s->dead)
        return;
    struct bufferevent *bev = up_side ? s->up->bev : s->down;
    if (what & BEV_EVENT_TIMEOUT) {
        /* Idle only if neither direction moved. */
        if (dp_now() - s->last_activity < TCP_IDLE_MS / 1000) {
            bufferevent_enable(bev, EV_READ);
            return;
        }
        log_debug(DP_LOG, "tcp '%s': idle timeout", s->lname);
        sess_kill(s);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        if (up_side) {
            pump(s, s->up->bev, s->down);
            s->up_eof = true;
            bufferevent_disable(s->up->bev, EV_READ);
        } else {
            if (s->up_ready)
                pump(s, s->down, s->up->bev);
            s->down_eof = true;
            bufferevent_disable(s->down, EV_READ);
        }
        maybe_finish(s);
        return;
    }
    sess_kill(s);    /* error */
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    side_event(arg, true, what);
}

static void down_read_cb(struct bufferevent *bev, void *arg)
{
    tsess *s = arg;
    if (s->dead || s->handshaking)
        return;
    if (s->up_ready)
        pump(s, bev, s->up->bev);
    else if (evbuffer_get_length(bufferevent_get_input(bev)) > DP_HIGH_WATER)
        bufferevent_disable(bev, EV_READ);
}

static void down_write_cb(struct bufferevent *bev, void *arg)
{
    tsess *s = arg;
    if (s->dead)
        return;
    if (s->up_ready && !s->up_eof &&
        evbuffer_get_length(bufferevent_get_output(bev)) <= DP_LOW_WATER) {
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_enable(s->up->bev, EV_READ);
    }
    maybe_finish(s);
}

static void connect_next(tsess *s);

static void on_up_ready(void *owner, dp_upconn *uc, int rc, const char *why)
{
    tsess *s = owner;
    if (s->dead)
        return;
    if (rc != MESH_OK) {
        s->last_failed = s->ep;
        release_up(s);
        if (s->attempts < TCP_MAX_ATTEMPTS) {
            log_debug(DP_LOG, "tcp '%s': %s; trying another endpoint", s->lname, why);
            connect_next(s);
            return;
        }
        log_info(DP_LOG, "tcp '%s': giving up: %s", s->lname, why);
        sess_kill(s);
        return;
    }
    s->up_ready = true;
    s->last_activity = dp_now();
    bufferevent_setcb(uc->bev, up_read_cb, up_write_cb, up_event_cb, s);
    set_idle(uc->bev);
    bufferevent_enable(uc->bev, EV_READ | EV_WRITE);
    pump(s, s->down, uc->bev);
    if (!s->down_eof)
        bufferevent_enable(s->down, EV_READ);
    maybe_finish(s);
}

static void on_up_dead(void *owner, dp_upconn *uc, const char *why)
{
    sess_kill(owner);
}

static const dp_up_ops up_ops = {.ready = on_up_ready, .dead = on_up_dead};

static void connect_next(tsess *s)
{
    s->attempts++;
    dp_ep_rt *ep = dp_active_pick(s->px, s->act, s->ci, s->last_failed);
    if (!ep) {
        log_info(DP_LOG, "tcp '%s': no healthy upstream for cluster '%s'", s->lname,
                 s->cl->name);
        sess_kill(s);
        return;
    }
    dp_ep_ref(ep);
    ep->active_rq++;
    s->ep = ep;
    bool ready;
    char why[DP_SPIFFE_ID_MAX + 300];
    dp_upconn *uc = dp_up_get(s->px, ep, s->cl, false, &up_ops, s, &ready, why, sizeof why);
    if (!uc) {
        log_info(DP_LOG, "tcp '%s': %s", s->lname, why);
        s->last_failed = ep;
        release_up(s);
        if (s->attempts < TCP_MAX_ATTEMPTS)
            connect_next(s);
        else
            sess_kill(s);
        return;
    }
    s->up = uc;
    if (ready)
        on_up_ready(s, uc, MESH_OK, NULL);
}

static void start_upstream(tsess *s)
{
    dp_proxy *px = s->px;
    if (!px->active) {
        sess_kill(s);
        return;
    }
    s->act = dp_active_ref(px->active);
    const dp_listener *l = dp_config_find_listener(s->act->cfg, s->lname);
    if (!l) {
        sess_kill(s);
        return;
    }
    if (s->inbound && !dp_listener_allows(l, s->peer_id)) {
        dp_stat_inc(&px->st.rbac_denied);
        log_info(DP_LOG, "RBAC: denied %s on tcp listener '%s'; closing", s->peer_id, l->name);
        sess_kill(s);
        return;
    }
    const char *cname = s->inbound ? l->local_cluster : l->cluster;
    s->cl = dp_config_find_cluster(s->act->cfg, cname, &s->ci);
    if (!s->cl) {
        log_info(DP_LOG, "tcp '%s': cluster '%s' not found (not yet received from meshd?)",
                 l->name, cname);
        sess_kill(s);
        return;
    }
    /* Hold client bytes until the upstream is there. */
    bufferevent_disable(s->down, EV_READ);
    connect_next(s);
}

static void on_free(evutil_socket_t fd, short what, void *arg)
{
    destroy(arg);
}

static void on_expiry(evutil_socket_t fd, short what, void *arg)
{
    tsess *s = arg;
    if (dp_now() < s->deadline) {   /* expired at notAfter itself, like the cert pool */
        dp_timer_at(s->expiry_ev, s->deadline);
        return;
    }
    char when[32];
    tls_format_time(s->deadline, when, sizeof when);
    log_info(DP_LOG, "closing inbound tcp connection from %s on '%s': a certificate on it "
             "expired at %s", s->peer_id, s->lname, when);
    dp_stat_inc(&s->px->st.closed_cert_expiry);
    sess_kill(s);
}

static void down_event_cb(struct bufferevent *bev, short what, void *arg)
{
    tsess *s = arg;
    if (s->dead)
        return;
    if (!s->handshaking) {
        side_event(s, false, what);
        return;
    }
    char why[DP_SPIFFE_ID_MAX + 200];
    if (what & BEV_EVENT_CONNECTED) {
        if (dp_down_tls_established(s->px, bev, s->peer_id, sizeof s->peer_id, s->own_id,
                                    sizeof s->own_id, &s->deadline, why, sizeof why) != MESH_OK) {
            dp_stat_inc(&s->px->st.down_hs_failed);
            log_info(DP_LOG, "inbound tcp '%s': rejecting connection: %s", s->lname, why);
            sess_kill(s);
            return;
        }
        dp_stat_inc(&s->px->st.down_hs_ok);
        s->handshaking = false;
        if (s->deadline != INT64_MAX)
            dp_timer_at(s->expiry_ev, s->deadline);
        set_idle(bev);
        start_upstream(s);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(why, sizeof why, "handshake timeout");
    else
        dp_tls_error_string(bev, why, sizeof why);
    dp_stat_inc(&s->px->st.down_hs_failed);
    log_info(DP_LOG, "inbound tcp '%s': TLS handshake failed: %s", s->lname, why);
    sess_kill(s);
}

void dp_tcp_accept(dp_proxy *px, const dp_listener *l, evutil_socket_t fd)
{
    bool inbound = l->kind == DP_LISTENER_INBOUND_TCP;
    struct bufferevent *bev = dp_down_accept(px, fd, inbound);
    if (!bev)
        return;
    tsess *s = calloc(1, sizeof *s);
    if (!s) {
        bufferevent_free(bev);
        return;
    }
    s->px = px;
    s->down = bev;
    s->inbound = inbound;
    s->handshaking = inbound;
    s->last_activity = dp_now();
    snprintf(s->lname, sizeof s->lname, "%s", l->name);
    s->expiry_ev = evtimer_new(px->base, on_expiry, s);
    s->free_ev = event_new(px->base, -1, 0, on_free, s);
    s->base.destroy = destroy_conn;
    dp_conn_link(px, &s->base);
    dp_stat_inc(&px->st.active_down);
    if (!s->expiry_ev || !s->free_ev) {
        destroy(s);
        return;
    }
    bufferevent_setcb(bev, down_read_cb, down_write_cb, down_event_cb, s);
    if (inbound) {
        int64_t ms = px->opts.handshake_timeout_ms;
        struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
                             .tv_usec = (suseconds_t)(ms % 1000) * 1000};
        bufferevent_set_timeouts(bev, &tv, &tv);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
    } else {
        set_idle(bev);
        bufferevent_enable(bev, EV_WRITE);
        start_upstream(s);
    }
}
