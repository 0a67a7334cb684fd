/* sidecar/proxy_session.c — the lifecycle every downstream session shares,
 * HTTP or TCP (see "sessions" in proxy_internal.h): accepting, the inbound
 * mTLS handshake and caller identity, closing when a certificate on the
 * connection expires or is revoked, close-after-flush, and kill with the free deferred to
 * the loop's next safe point (Envoy's deferred delete list, HAProxy's
 * tasklet release: nothing is freed under a callback that may still run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "sidecar/proxy_internal.h"
#include "sidecar/tls_util.h"

/* How long a closing session waits for a client to read what it was sent. */
#define DP_FLUSH_TIMEOUT_MS 10000
/* How long, and how much, a closing session drops of what a client still
 * sends after its reply (see dp_session_close_after_flush). */
#define DP_LINGER_MS 2000
#define DP_LINGER_MAX_BYTES (1024 * 1024)

static void live_link(dp_session_set *set, dp_session *s)
{
    s->prev = NULL;
    s->next = set->live;
    if (set->live)
        set->live->prev = s;
    set->live = s;
}

static void live_unlink(dp_session_set *set, dp_session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        set->live = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

/* Unlinked already (live list or graveyard). */
static void session_free(dp_session *s)
{
    if (s->ops->release)
        s->ops->release(s);
    if (s->expiry_ev)
        event_free(s->expiry_ev);
    if (s->down)
        bufferevent_free(s->down);
    dp_stat_dec(&s->px->st.active_down);
    free(s);
}

static void free_list(dp_session *s)
{
    while (s) {
        dp_session *next = s->next;
        session_free(s);
        s = next;
    }
}

/* The safe point: called by the loop itself, so no callback of a session in
 * the graveyard is on the stack. Sessions killed while this runs (none
 * today: freeing runs no session code) would wait for the next pass. */
static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    dp_session_set *set = arg;
    dp_session *dead = set->graveyard;
    set->graveyard = NULL;
    free_list(dead);
}

int dp_sessions_init(dp_proxy *px, mesh_err *err)
{
    px->sessions.live = px->sessions.graveyard = NULL;
    px->sessions.reap_ev = event_new(px->base, -1, 0, on_reap, &px->sessions);
    if (!px->sessions.reap_ev)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory creating events");
    return MESH_OK;
}

void dp_sessions_free_all(dp_proxy *px)
{
    dp_session_set *set = &px->sessions;
    while (set->live) {
        dp_session *s = set->live;
        live_unlink(set, s);
        session_free(s);
    }
    free_list(set->graveyard);
    set->graveyard = NULL;
    if (set->reap_ev) {
        event_free(set->reap_ev);
        set->reap_ev = NULL;
    }
}

void dp_session_kill(dp_session *s)
{
    if (s->phase == DP_SESSION_DEAD)
        return;
    s->phase = DP_SESSION_DEAD;
    if (s->ops->stop)
        s->ops->stop(s);
    bufferevent_setcb(s->down, NULL, NULL, NULL, NULL);
    bufferevent_disable(s->down, EV_READ | EV_WRITE);
    evtimer_del(s->expiry_ev);
    dp_session_set *set = &s->px->sessions;
    live_unlink(set, s);
    s->next = set->graveyard;
    set->graveyard = s;
    event_active(set->reap_ev, 0, 0);
}

/* The output is written: kill, or half-close and linger (plain only: TLS
 * through bufferevent_openssl has no half-close). */
static void output_flushed(dp_session *s)
{
    evutil_socket_t fd = bufferevent_getfd(s->down);
    if (s->lingering)
        return;
    if (!s->ops->linger_on_close || s->inbound || fd < 0 || shutdown(fd, SHUT_WR) != 0) {
        dp_session_kill(s);
        return;
    }
    s->lingering = true;
    struct evbuffer *in = bufferevent_get_input(s->down);
    evbuffer_drain(in, evbuffer_get_length(in));
    struct timeval linger = dp_timeval_ms(DP_LINGER_MS);
    bufferevent_set_timeouts(s->down, &linger, NULL);
    bufferevent_enable(s->down, EV_READ);
}

void dp_session_close_after_flush(dp_session *s)
{
    if (s->phase == DP_SESSION_DEAD || s->lingering)
        return;
    /* Also when CLOSING already: the output may have emptied since. */
    s->phase = DP_SESSION_CLOSING;
    bufferevent_disable(s->down, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(s->down)) == 0) {
        output_flushed(s);
        return;
    }
    struct timeval flush = dp_timeval_ms(DP_FLUSH_TIMEOUT_MS);
    bufferevent_set_timeouts(s->down, NULL, &flush);
}

/* ---- inbound mTLS ------------------------------------------------------------------- */

static void on_cert_expiry(evutil_socket_t fd, short what, void *arg)
{
    dp_session *s = arg;
    if (dp_now() < s->deadline) {   /* expired at notAfter itself, like the cert pool */
        dp_timer_at(s->expiry_ev, s->deadline);
        return;
    }
    char when[32];
    tls_format_time(s->deadline, when, sizeof when);
    log_info(DP_LOG, "closing %s connection from %s on '%s': a certificate on it expired at "
             "%s", s->ops->log_name, s->peer_id, s->listener, when);
    dp_stat_inc(&s->px->st.closed_cert_expiry);
    dp_session_kill(s);
}

size_t dp_sessions_close_revoked(dp_proxy *px)
{
    size_t closed = 0;
    dp_session *next;
    for (dp_session *s = px->sessions.live; s; s = next) {
        /* dp_session_kill moves s to the graveyard (its next changes). */
        next = s->next;
        if (!s->inbound || s->phase == DP_SESSION_HANDSHAKING || s->phase == DP_SESSION_DEAD)
            continue;
        SSL *ssl = bufferevent_openssl_get_ssl(s->down);
        char why[DP_REVOKED_WHY];
        if (!ssl || !dp_revoke_check(px, ssl, why, sizeof why))
            continue;
        log_info(DP_LOG, "closing %s connection from %s on '%s': %s", s->ops->log_name,
                 s->peer_id, s->listener, why);
        dp_stat_inc(&px->st.closed_revoked);
        dp_session_kill(s);
        closed++;
    }
    return closed;
}

static void handshake_done(dp_session *s)
{
    char why[DP_SPIFFE_ID_MAX + 200];
    if (dp_down_tls_established(s->px, s->down, s->peer_id, sizeof s->peer_id, s->own_id,
                                sizeof s->own_id, &s->deadline, why, sizeof why) != MESH_OK) {
        dp_stat_inc(&s->px->st.down_hs_failed);
        log_info(DP_LOG, "%s '%s': rejecting connection: %s", s->ops->log_name, s->listener,
                 why);
        dp_session_kill(s);
        return;
    }
    dp_stat_inc(&s->px->st.down_hs_ok);
    s->phase = DP_SESSION_OPEN;
    if (s->deadline != INT64_MAX)
        dp_timer_at(s->expiry_ev, s->deadline);
    s->ops->open(s);
}

static void handshake_event(dp_session *s, short what)
{
    if (what & BEV_EVENT_CONNECTED) {
        handshake_done(s);
        return;
    }
    char why[DP_SPIFFE_ID_MAX + 200];
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(why, sizeof why, "handshake timeout");
    else
        dp_tls_error_string(s->down, why, sizeof why);
    dp_stat_inc(&s->px->st.down_hs_failed);
    log_info(DP_LOG, "%s '%s': TLS handshake failed: %s", s->ops->log_name, s->listener, why);
    dp_session_kill(s);
}

/* ---- downstream callbacks: the phase decides who sees them ---------------------------- */

static void down_read_cb(struct bufferevent *bev, void *arg)
{
    dp_session *s = arg;
    if (s->phase == DP_SESSION_OPEN) {
        s->ops->on_read(s);
    } else if (s->lingering) {
        struct evbuffer *in = bufferevent_get_input(bev);
        s->lingered += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
        if (s->lingered > DP_LINGER_MAX_BYTES)
            dp_session_kill(s);
    }
}

static void down_write_cb(struct bufferevent *bev, void *arg)
{
    dp_session *s = arg;
    if (s->phase == DP_SESSION_OPEN)
        s->ops->on_write(s);
    else if (s->phase == DP_SESSION_CLOSING &&
             evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        output_flushed(s);
}

static void down_event_cb(struct bufferevent *bev, short what, void *arg)
{
    dp_session *s = arg;
    switch (s->phase) {
    case DP_SESSION_HANDSHAKING:
        handshake_event(s, what);
        break;
    case DP_SESSION_OPEN:
        s->ops->on_event(s, what);
        break;
    case DP_SESSION_CLOSING:        /* EOF, error, the flush or linger timeout: done */
        dp_session_kill(s);
        break;
    case DP_SESSION_DEAD:
        break;
    }
}

/* ---- starting ----------------------------------------------------------------------- */

dp_session *dp_session_start(dp_proxy *px, const char *listener, bool inbound,
                             struct bufferevent *down, const dp_session_ops *ops)
{
    dp_session *s = calloc(1, ops->size);
    if (!s) {
        bufferevent_free(down);
        return NULL;
    }
    s->ops = ops;
    s->px = px;
    s->down = down;
    s->inbound = inbound;
    s->phase = inbound ? DP_SESSION_HANDSHAKING : DP_SESSION_OPEN;
    snprintf(s->listener, sizeof s->listener, "%s", listener);
    live_link(&px->sessions, s);
    dp_stat_inc(&px->st.active_down);
    s->expiry_ev = evtimer_new(px->base, on_cert_expiry, s);
    if (!s->expiry_ev || (ops->init && ops->init(s) != MESH_OK)) {
        live_unlink(&px->sessions, s);
        session_free(s);
        return NULL;
    }
    bufferevent_setcb(down, down_read_cb, down_write_cb, down_event_cb, s);
    if (inbound) {
        struct timeval tv = dp_timeval_ms(px->opts.handshake_timeout_ms);
        bufferevent_set_timeouts(down, &tv, &tv);
        bufferevent_enable(down, EV_READ | EV_WRITE);
    } else {
        ops->open(s);
    }
    return s;
}

void dp_session_accept(dp_proxy *px, const dp_listener *l, evutil_socket_t fd,
                       const dp_session_ops *ops)
{
    bool inbound = l->kind == DP_LISTENER_INBOUND_HTTP || l->kind == DP_LISTENER_INBOUND_TCP;
    struct bufferevent *bev = dp_down_accept(px, fd, inbound);
    if (bev)
        dp_session_start(px, l->name, inbound, bev, ops);
}
