/* sidecar/proxy_hc.c — active health checking of upstream hosts (Cluster.health_checks[0]),
 * as Envoy's HTTP and TCP health checkers do it:
 *
 *   http  a GET of the path on a new connection; a 2xx status line is a success,
 *         anything else (another status, a reset, no answer within timeout) a failure
 *   tcp   the connection (and its mTLS handshake) is a success
 *
 * Probes go to each endpoint's address as requests do: to the peer sidecar's inbound
 * listener over mTLS with this sidecar's SVID, so the peer's authorization must allow
 * the caller (an HTTP probe that gets the peer's 403 fails) and the probe reaches the
 * peer's app through its sidecar. Each probe has its own connection, closed after it and
 * not counted by the circuit breakers (Envoy's health checker has its own connections
 * too).
 *
 * One probe state per endpoint object (dp_ep_rt.probe), created when a config with the
 * cluster's health check is applied, first fired after a random part of the jitter so
 * that many sidecars started together do not probe in step, then every interval (+
 * jitter). Results go through dp_hc_record (dp_health.c): unhealthy_threshold failures
 * in a row set the host's failed_active_hc (the LB skips it, dp_active_pick), and
 * healthy_threshold successes clear it. A probe that finds its cluster gone or without
 * a health check stops, and clears the flag.
 *
 * Lifetime: the endpoint owns its probe (dp_ep_unref frees it). A running probe holds
 * the config snapshot it started with (the cluster it reads) and its connection, which
 * holds a reference on the endpoint; a probe finishing drops both last, and touches
 * nothing after, because that may free the endpoint and the probe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sidecar/proxy_internal.h"

#define HC_STATUS_LINE_MAX 64

struct dp_hc_probe {
    dp_ep_rt *ep;
    struct event *timer;            /* idle: the next probe; running: its timeout */
    dp_upconn *uc;                  /* running: its connection */
    dp_active *act;                 /* running: the snapshot with cl */
    const dp_cluster *cl;           /* running */
    char line[HC_STATUS_LINE_MAX];  /* http: the status line so far */
    size_t n;
};

static const dp_cluster *hc_cluster(dp_active *a, const char *name)
{
    if (!a)
        return NULL;
    const dp_cluster *c = dp_config_find_cluster(a->cfg, name, NULL);
    return c && c->hc.kind != DP_HC_NONE ? c : NULL;
}

/* The probe is over: the result counts, the next one is armed, and the
 * connection and snapshot go, last. */
static void finish(dp_hc_probe *p, bool ok, const char *why)
{
    dp_ep_rt *ep = p->ep;
    dp_proxy *px = ep->px;
    const dp_cluster *cl = p->cl;
    dp_upconn *uc = p->uc;
    dp_active *act = p->act;
    p->uc = NULL;
    p->act = NULL;
    p->cl = NULL;
    p->n = 0;
    dp_stat_inc(ok ? &px->st.hc_ok : &px->st.hc_failed);
    if (dp_hc_record(&ep->hc, &cl->hc, ok)) {
        if (ep->hc.failed)
            log_info(DP_LOG, "active health check: %s of cluster '%s' is now unhealthy after "
                     "%u failed probes in a row (last: %s); no requests go to it until %u "
                     "succeed", ep->addr, cl->name, ep->hc.failures, why ? why : "failed",
                     cl->hc.healthy_threshold);
        else
            log_info(DP_LOG, "active health check: %s of cluster '%s' is healthy again after "
                     "%u good probes", ep->addr, cl->name, ep->hc.successes);
    } else if (!ok) {
        log_debug(DP_LOG, "active health check of %s (cluster '%s') failed: %s", ep->addr,
                  cl->name, why ? why : "?");
    }
    dp_timer_ms(p->timer, dp_hc_next_delay_ms(&cl->hc, dp_rng_next(&px->rng)));
    if (uc)
        dp_up_close(uc);
    dp_active_unref(px, act);   /* may free ep, and p with it */
}

static void probe_free(dp_hc_probe *p)
{
    if (p->timer)
        event_free(p->timer);
    free(p);
}

/* ---- http: the status line -------------------------------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg)
{
    dp_hc_probe *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (p->n < sizeof p->line - 1) {
        int n = evbuffer_remove(in, p->line + p->n, 1);
        if (n <= 0)
            break;
        p->n++;
        if (p->line[p->n - 1] == '\n')
            break;
    }
    p->line[p->n] = '\0';
    char *eol = strchr(p->line, '\n');
    if (!eol && p->n < sizeof p->line - 1)
        return;     /* more to come */
    int major, minor, status = 0;
    char why[160];
    if (sscanf(p->line, "HTTP/%d.%d %3d", &major, &minor, &status) != 3 || major != 1) {
        snprintf(why, sizeof why, "not an HTTP/1.x status line from %s", p->ep->addr);
        finish(p, false, why);
        return;
    }
    snprintf(why, sizeof why, "status %d for GET %s", status, p->cl->hc.path);
    finish(p, status >= 200 && status < 300, why);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    dp_hc_probe *p = arg;
    char why[160];
    snprintf(why, sizeof why, "%s before a status line from %s",
             (what & BEV_EVENT_EOF) ? "connection closed" : "connection error", p->ep->addr);
    finish(p, false, why);
}

/* ---- the connection ---------------------------------------------------------------------- */

/* Envoy's default Host is the cluster name; meshd's are "outbound|<service>",
 * and '|' is not allowed in a Host (the peer's sidecar answers 400): the part
 * after the last '|' is the service name, which is what a caller would send. */
static const char *default_host(const char *cluster)
{
    const char *bar = strrchr(cluster, '|');
    return bar && bar[1] ? bar + 1 : cluster;
}

static void on_ready(void *owner, dp_upconn *uc, int rc, const char *why)
{
    dp_hc_probe *p = owner;
    if (rc != MESH_OK) {
        finish(p, false, why);
        return;
    }
    if (p->cl->hc.kind == DP_HC_TCP) {
        finish(p, true, NULL);
        return;
    }
    const char *host = p->cl->hc.host ? p->cl->hc.host : default_host(p->cl->name);
    struct evbuffer *out = bufferevent_get_output(uc->bev);
    evbuffer_add_printf(out, "GET %s HTTP/1.1\r\nhost: %s\r\nuser-agent: mesh-sidecar/HC\r\n"
                        "connection: close\r\n\r\n", p->cl->hc.path, host);
    bufferevent_setcb(uc->bev, on_read, NULL, on_event, p);
    bufferevent_enable(uc->bev, EV_READ | EV_WRITE);
}

static void on_dead(void *owner, dp_upconn *uc, const char *why)
{
    finish(owner, false, why);
}

static const dp_up_ops probe_ops = {.ready = on_ready, .dead = on_dead};

static void start(dp_hc_probe *p, const dp_cluster *cl)
{
    dp_ep_rt *ep = p->ep;
    dp_proxy *px = ep->px;
    p->act = dp_active_ref(px->active);
    p->cl = cl;
    p->n = 0;
    char why[DP_SPIFFE_ID_MAX + 300];
    dp_upconn *uc = dp_up_connect(px, ep, cl, cl->hc.kind == DP_HC_HTTP, true, &probe_ops, p,
                                  why, sizeof why);
    if (!uc) {
        finish(p, false, why);
        return;
    }
    p->uc = uc;
    dp_timer_ms(p->timer, cl->hc.timeout_ms);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    dp_hc_probe *p = arg;
    dp_ep_rt *ep = p->ep;
    if (p->uc) {
        char why[160];
        snprintf(why, sizeof why, "no answer within the timeout of %lld ms",
                 (long long)p->cl->hc.timeout_ms);
        finish(p, false, why);
        return;
    }
    const dp_cluster *cl = hc_cluster(ep->px->active, ep->cluster);
    if (!cl) {
        /* The cluster or its health check is gone: our view goes with it. */
        ep->probe = NULL;
        memset(&ep->hc, 0, sizeof ep->hc);
        probe_free(p);
        return;
    }
    start(p, cl);
}

/* ---- the proxy's side ------------------------------------------------------------------- */

void dp_hc_sync(dp_proxy *px)
{
    dp_active *a = px->active;
    for (size_t ci = 0; a && ci < a->n_crt; ci++) {
        const dp_cluster *c = dp_config_cluster_at(a->cfg, ci);
        if (c->hc.kind == DP_HC_NONE)
            continue;
        for (size_t i = 0; i < a->crt[ci].n_eps; i++) {
            dp_ep_rt *ep = a->crt[ci].eps[i];
            if (ep->probe)
                continue;
            dp_hc_probe *p = calloc(1, sizeof *p);
            if (p)
                p->timer = evtimer_new(px->base, on_timer, p);
            if (!p || !p->timer) {
                log_error(DP_LOG, "active health check of %s (cluster '%s'): out of memory; "
                          "the host is not checked", ep->addr, c->name);
                if (p)
                    probe_free(p);
                continue;
            }
            p->ep = ep;
            ep->probe = p;
            dp_timer_ms(p->timer, dp_hc_first_delay_ms(&c->hc, dp_rng_next(&px->rng)));
        }
    }
}

void dp_hc_probe_free(dp_hc_probe *p)
{
    /* Only from dp_ep_unref: a running probe holds a reference on its
     * endpoint, so p is idle here. */
    if (p)
        probe_free(p);
}

void dp_hc_stop_all(dp_proxy *px)
{
    /* Aborting one may free endpoints of the map: scan again after each. */
    for (bool again = true; again;) {
        again = false;
        for (size_t b = 0; b < DP_EP_BUCKETS && !again; b++) {
            for (dp_ep_rt *ep = px->ep_map[b]; ep; ep = ep->hnext) {
                dp_hc_probe *p = ep->probe;
                if (!p || !p->uc)
                    continue;
                dp_upconn *uc = p->uc;
                dp_active *act = p->act;
                p->uc = NULL;
                p->act = NULL;
                evtimer_del(p->timer);
                dp_up_close(uc);
                dp_active_unref(px, act);
                again = true;
                break;
            }
        }
    }
}
