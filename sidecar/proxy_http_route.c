/* sidecar/proxy_http_route.c — an HTTP exchange's way to an upstream:
 * listener and route lookup in the request's snapshot, inbound RBAC, the
 * cluster, then attempts (endpoint pick, pooled or new connection, the
 * request bytes, retries with replay) under the route timeout.
 *
 * Retries (`retries` extra attempts): on connect failure for any method
 * (nothing was sent), and for idempotent methods also after bytes were
 * sent, replaying up to retry_buffer_bytes kept in `replay`. One more
 * attempt for idempotent requests that failed on a reused pooled connection
 * (the "server closed the idle connection" race). */
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "sidecar/dp_route.h"
#include "sidecar/proxy_http.h"

static void start_attempt(dp_http_session *s);

void dp_http_release_attempt(dp_http_session *s, bool reusable)
{
    dp_http_exchange *x = &s->x;
    if (x->try_ev)
        evtimer_del(x->try_ev);
    if (dp_hx_has(x, DP_HX_F_PENDING) && x->load && x->load->rq_pending > 0)
        x->load->rq_pending--;
    if (dp_hx_has(x, DP_HX_F_IN_RETRY) && x->load && x->load->rq_retry > 0)
        x->load->rq_retry--;
    dp_hx_set(x, DP_HX_F_PENDING | DP_HX_F_IN_RETRY, false);
    if (x->up) {
        dp_upconn *uc = x->up;
        x->up = NULL;
        if (uc->tls)
            snprintf(x->last_peer, sizeof x->last_peer, "%s", uc->peer_id);
        dp_hx_set(x, DP_HX_F_UP_READ_PAUSED, false);
        if (reusable)
            dp_up_release(uc, true);
        else
            dp_up_close(uc);
    }
    if (x->ep) {
        snprintf(x->last_host, sizeof x->last_host, "%s", x->ep->addr);
        x->attempts++;
        if (x->ep->active_rq > 0)
            x->ep->active_rq--;
        dp_ep_unref(x->ep);
        x->ep = NULL;
    }
}

bool dp_http_replay_possible(const dp_http_session *s)
{
    return !dp_hx_has(&s->x, DP_HX_F_SENT_ANY) || s->x.replay != NULL;
}

/* The one place a new attempt replaces a failed one. counted: a retry of the
 * policy's (admitted by max_retries; in flight until its attempt ends), not
 * the free one for a stale pooled connection. */
static void retry(dp_http_session *s, bool counted)
{
    dp_http_exchange *x = &s->x;
    if (counted && x->load) {
        x->load->rq_retry++;
        dp_hx_set(x, DP_HX_F_IN_RETRY, true);
    }
    if (dp_http_step(s, DP_HX_EV_RETRY))
        start_attempt(s);
}

bool dp_http_retry_admit(dp_http_session *s)
{
    dp_http_exchange *x = &s->x;
    if (!x->load || !x->cluster ||
        dp_breaker_admit(&x->cluster->breakers, x->load, DP_BREAKER_RETRIES))
        return true;
    dp_stat_inc(&s->base.px->st.overflow_retry);
    log_debug(DP_LOG, "request %s: not retried: cluster '%s' has %u retries in flight "
              "(max_retries %u)", x->request_id, x->cluster->name, x->load->rq_retry,
              x->cluster->breakers.max_retries);
    return false;
}

/* A circuit breaker refused the request: Envoy's local 503 with
 * x-envoy-overloaded, and the proxy-wide count (the cluster's is
 * dp_breaker_admit's). */
static void overflow_reply(dp_http_session *s, dp_breaker_limit what, uint32_t cur)
{
    dp_http_exchange *x = &s->x;
    dp_proxy *px = s->base.px;
    dp_stat_inc(what == DP_BREAKER_CONNECTIONS ? &px->st.overflow_cx
                : what == DP_BREAKER_PENDING   ? &px->st.overflow_pending
                                               : &px->st.overflow_rq);
    dp_hx_set(x, DP_HX_F_OVERLOADED, true);
    dp_http_local_reply(s, 503, false, "upstream overflow: circuit breaker of cluster '%s': "
                        "%u in use, %s is %u", x->cluster->name, cur,
                        dp_breaker_limit_name(what),
                        dp_breaker_max(&x->cluster->breakers, what));
}

void dp_http_record_result(dp_http_session *s, int result)
{
    dp_http_exchange *x = &s->x;
    if (x->ep && x->act)
        dp_active_record(s->base.px, x->act, x->ci, x->ep, result);
}

/* The attempt's endpoint is one the next attempt should avoid. */
static void remember_tried(dp_http_exchange *x)
{
    if (x->ep && x->n_tried < DP_HX_MAX_TRIED)
        x->tried[x->n_tried++] = x->ep;
}

void dp_http_attempt_failed(dp_http_session *s, int status, const char *why, bool before_send)
{
    dp_http_exchange *x = &s->x;
    remember_tried(x);
    bool was_reused = dp_hx_has(x, DP_HX_F_REUSED_CONN);
    dp_http_release_attempt(s, false);
    if (!dp_hx_response_started(x->state) && dp_http_replay_possible(s)) {
        bool connect_class = before_send || !dp_hx_has(x, DP_HX_F_SENT_ANY);
        bool idempotent = dp_hx_has(x, DP_HX_F_IDEMPOTENT);
        if (x->attempts_left > 0 && (connect_class || idempotent) && dp_http_retry_admit(s)) {
            x->attempts_left--;
            dp_stat_inc(&s->base.px->st.retries);
            log_debug(DP_LOG, "retrying request %s: %s", x->request_id, why);
            retry(s, true);
            return;
        }
        /* A pooled connection the server closed just as we reused it: one
         * free retry for idempotent requests, as HTTP clients do. */
        if (was_reused && !dp_hx_has(x, DP_HX_F_FREE_RETRY_USED) && idempotent) {
            dp_hx_set(x, DP_HX_F_FREE_RETRY_USED, true);
            retry(s, false);
            return;
        }
    }
    dp_http_local_reply(s, status, false, "%s", why);
}

void dp_http_retry_5xx(dp_http_session *s)
{
    dp_http_exchange *x = &s->x;
    dp_hx_set(x, DP_HX_F_RETRY_5XX, false);
    remember_tried(x);
    dp_http_release_attempt(s, false);
    x->attempts_left--;
    dp_stat_inc(&s->base.px->st.retries);
    log_debug(DP_LOG, "retrying request %s after a 5xx", x->request_id);
    retry(s, true);
}

void dp_http_flush_request(dp_http_session *s)
{
    dp_http_exchange *x = &s->x;
    if (!dp_http_upstream_attached(x))
        return;
    size_t n = evbuffer_get_length(x->pending);
    if (n == 0)
        return;
    if (x->replay) {
        if (evbuffer_get_length(x->replay) + n > s->base.px->opts.retry_buffer_bytes) {
            evbuffer_free(x->replay);
            x->replay = NULL;
        } else {
            unsigned char *p = evbuffer_pullup(x->pending, (ssize_t)n);
            if (!p || evbuffer_add(x->replay, p, n) != 0) {
                evbuffer_free(x->replay);
                x->replay = NULL;
            }
        }
    }
    evbuffer_add_buffer(bufferevent_get_output(x->up->bev), x->pending);
    dp_hx_set(x, DP_HX_F_SENT_ANY, true);
}

/* The attempt's connection is there: it gets the response side's callbacks
 * and whatever of the request exists so far. */
static void attach(dp_http_session *s)
{
    dp_http_exchange *x = &s->x;
    if (!dp_http_step(s, DP_HX_EV_UPSTREAM_READY))
        return;
    dp_upconn *uc = x->up;
    if (dp_hx_has(x, DP_HX_F_PENDING) && x->load && x->load->rq_pending > 0)
        x->load->rq_pending--;  /* it has its connection: no longer pending */
    dp_hx_set(x, DP_HX_F_PENDING, false);
    uc->requests++;
    dp_http_response_attach(s, uc);
    if (x->replay && evbuffer_get_length(x->replay) > 0) {
        /* A retry: everything already sent once goes out again first. */
        size_t n = evbuffer_get_length(x->replay);
        unsigned char *p = evbuffer_pullup(x->replay, (ssize_t)n);
        evbuffer_add(bufferevent_get_output(uc->bev), p, n);
        dp_hx_set(x, DP_HX_F_SENT_ANY, true);
    } else {
        dp_hx_set(x, DP_HX_F_SENT_ANY, false);
    }
    dp_http_flush_request(s);
    dp_http_update_down_read(s);
}

/* Upstream connection callbacks: they stop with the connection, which
 * ops->stop closes, so they never see a dead session. */
static void on_up_ready(void *owner, dp_upconn *uc, int rc, const char *why)
{
    dp_http_session *s = owner;
    if (rc != MESH_OK) {
        dp_http_record_result(s, DP_RESULT_CONNECT_FAILED);
        dp_http_attempt_failed(s, 503, why, true);
    }
    else
        attach(s);
}

static void on_up_dead(void *owner, dp_upconn *uc, const char *why)
{
    dp_http_session *s = owner;
    if (!dp_hx_response_started(s->x.state))
        dp_http_attempt_failed(s, 503, why, false);
    else
        dp_http_kill(s);
}

static const dp_up_ops up_ops = {.ready = on_up_ready, .dead = on_up_dead};

static void start_attempt(dp_http_session *s)
{
    dp_http_exchange *x = &s->x;
    /* previous_hosts: every host tried so far; otherwise the last one. */
    const dp_ep_rt *const *avoid = x->other_hosts ? x->tried : x->tried + (x->n_tried - 1);
    dp_ep_rt *ep = dp_active_pick(s->base.px, x->act, x->ci, x->n_tried ? avoid : NULL,
                                  x->other_hosts ? x->n_tried : x->n_tried > 0);
    if (!ep) {
        dp_http_local_reply(s, 503, false, "no healthy upstream for cluster '%s'",
                            x->cluster->name);
        return;
    }
    /* No idle connection: the request waits for a new one (pending), which
     * both limits bound. Envoy would queue a request beyond max_connections
     * until a connection frees up; this sidecar has no such queue and
     * answers 503 at once (docs/dataplane.md). */
    bool fresh = dp_up_needs_new(ep);
    if (fresh && !dp_breaker_admit(&x->cluster->breakers, ep->load, DP_BREAKER_PENDING)) {
        overflow_reply(s, DP_BREAKER_PENDING, ep->load->rq_pending);
        return;
    }
    if (fresh && !dp_breaker_admit(&x->cluster->breakers, ep->load, DP_BREAKER_CONNECTIONS)) {
        overflow_reply(s, DP_BREAKER_CONNECTIONS, ep->load->cx);
        return;
    }
    dp_ep_ref(ep);
    ep->active_rq++;
    x->ep = ep;
    dp_hx_set(x, DP_HX_F_SENT_ANY, false);
    bool ready = false;
    char why[DP_SPIFFE_ID_MAX + 300];
    dp_upconn *uc = dp_up_get(s->base.px, ep, x->cluster, true, &up_ops, s, &ready, why,
                              sizeof why);
    if (!uc) {
        dp_http_attempt_failed(s, 503, why, true);
        return;
    }
    x->up = uc;
    dp_hx_set(x, DP_HX_F_REUSED_CONN, ready);
    if (!ready && x->load) {
        x->load->rq_pending++;
        dp_hx_set(x, DP_HX_F_PENDING, true);
    }
    if (x->per_try_ms > 0)
        dp_timer_ms(x->try_ev, x->per_try_ms);
    if (ready)
        attach(s);
}

void dp_http_on_try_timeout(evutil_socket_t fd, short what, void *arg)
{
    dp_http_session *s = arg;
    dp_http_exchange *x = &s->x;
    if (dp_hx_response_started(x->state) || !x->up)
        return;     /* disarmed at the response head; a late callback */
    dp_stat_inc(&s->base.px->st.per_try_timeouts);
    dp_http_record_result(s, DP_RESULT_TIMEOUT);
    char why[400];
    snprintf(why, sizeof why, "upstream per-try timeout after %lld ms (%s, cluster '%s')",
             (long long)x->per_try_ms, x->ep ? x->ep->addr : "?", x->cluster->name);
    /* What was sent may have been processed: only idempotent requests go
     * again (dp_http_attempt_failed's rule for bytes sent). */
    dp_http_attempt_failed(s, 504, why, false);
}

void dp_http_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    dp_http_session *s = arg;
    dp_stat_inc(&s->base.px->st.timeouts);
    if (!dp_hx_response_started(s->x.state))
        dp_http_record_result(s, DP_RESULT_TIMEOUT);
    if (!dp_hx_response_started(s->x.state))
        dp_http_local_reply(s, 504, false, "upstream request timeout");
    else
        dp_http_kill(s);
}

/* Inbound: the listener's local cluster, after RBAC. Outbound: the route
 * table's choice. false after a local reply. */
static bool pick_cluster(dp_http_session *s, const dp_listener *l, const char **cname,
                         int64_t *timeout_ms, uint32_t *retries)
{
    s->x.other_hosts = false;
    s->x.per_try_ms = 0;
    dp_proxy *px = s->base.px;
    if (s->base.inbound) {
        const char *peer = s->base.peer_id;
        if (!dp_listener_allows(l, peer)) {
            dp_stat_inc(&px->st.rbac_denied);
            log_info(DP_LOG, "RBAC: denied %s on listener '%s'", peer, l->name);
            dp_http_local_reply(s, 403, false, "RBAC: access denied: %s is not allowed to call "
                                "this service (listener '%s')", peer, l->name);
            return false;
        }
        *cname = l->local_cluster;
        *timeout_ms = l->timeout_ms;
        *retries = 0;
        return true;
    }
    const dp_route_table *rt = dp_config_find_route_table(s->x.act->cfg, l->route_table);
    if (!rt) {
        dp_http_local_reply(s, 404, false, "route table '%s' has not been received from meshd",
                            l->route_table);
        return false;
    }
    const dp_http_head *h = dp_http_request_head(s);
    const dp_http_header *host = dp_http_head_find(h, "host");
    dp_route_req rq = {
        .host = host ? host->value : NULL,
        .host_len = host ? host->value_len : 0,
        .headers = h->view,
        .n_headers = h->n,
    };
    rq.path = dp_http_head_url(h, &rq.path_len);
    const dp_virtual_host *vh = NULL;
    const dp_route *r = dp_route_match(rt, &rq, &vh);
    if (!r) {
        dp_http_local_reply(s, 404, false, "no route for host '%.*s' path '%.*s' in route "
                            "table '%s'%s", (int)(rq.host_len > 200 ? 200 : rq.host_len),
                            rq.host ? rq.host : "", (int)(rq.path_len > 500 ? 500 : rq.path_len),
                            rq.path, rt->name, vh ? "" : " (no virtual host matches the host)");
        return false;
    }
    *cname = dp_route_pick_cluster(r, &px->rng);
    s->x.route_name = r->name && r->name[0] ? r->name : rt->name;
    *timeout_ms = r->timeout_ms;
    *retries = r->retries;
    s->x.other_hosts = r->retry_other_hosts;
    s->x.per_try_ms = r->per_try_timeout_ms;
    return true;
}

void dp_http_route(dp_http_session *s)
{
    dp_http_exchange *x = &s->x;
    dp_proxy *px = s->base.px;
    if (!px->active) {
        dp_http_local_reply(s, 503, false, "no configuration from meshd yet");
        return;
    }
    x->act = dp_active_ref(px->active);
    const dp_listener *l = dp_config_find_listener(x->act->cfg, s->base.listener);
    if (!l) {
        dp_http_local_reply(s, 503, true, "listener '%s' was removed", s->base.listener);
        return;
    }
    const char *cname;
    int64_t timeout_ms;
    uint32_t retries;
    if (!pick_cluster(s, l, &cname, &timeout_ms, &retries))
        return;
    const dp_cluster *cl = dp_config_find_cluster(x->act->cfg, cname, &x->ci);
    if (!cl) {
        dp_http_local_reply(s, 503, false, "cluster '%s' not found (not yet received from "
                            "meshd?)", cname);
        return;
    }
    if (cl->h2.enabled) {
        /* Its connections speak HTTP/2 (proxy_h2_up.c); no HTTP/1.1 -> HTTP/2 translation. */
        dp_http_local_reply(s, 502, false, "cluster '%s' speaks HTTP/2; the sidecar does not "
                            "translate HTTP/1.1 to HTTP/2 (use an HTTP/2 client)", cname);
        return;
    }
    x->cluster = cl;
    x->load = x->ci < x->act->n_crt ? x->act->crt[x->ci].load : NULL;
    if (x->load && !dp_breaker_admit(&cl->breakers, x->load, DP_BREAKER_REQUESTS)) {
        overflow_reply(s, DP_BREAKER_REQUESTS, x->load->rq_active);
        return;
    }
    if (x->load) {
        x->load->rq_active++;
        dp_hx_set(x, DP_HX_F_RQ_COUNTED, true);
    }
    x->attempts_left = retries;
    if (dp_hx_has(x, DP_HX_F_IDEMPOTENT))
        x->replay = evbuffer_new();
    if (timeout_ms > 0)
        dp_timer_ms(x->timeout_ev, timeout_ms);
    if (dp_http_step(s, DP_HX_EV_ROUTED))
        start_attempt(s);
}
