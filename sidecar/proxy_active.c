/* sidecar/proxy_active.c — the runtime view of one config snapshot.
 *
 * A dp_active pairs a frozen dp_config with per-cluster runtime state (round
 * robin cursor, endpoint objects). Endpoint objects (dp_ep_rt) live in a map
 * keyed by cluster and address and are shared by consecutive snapshots, so an
 * EDS push that keeps an endpoint keeps its pooled connections and its
 * in-flight request count. A request holds the dp_active it started with.
 * The circuit breakers' counters (dp_cluster_load, by cluster name) are
 * shared the same way, by the cluster runtimes and the endpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sidecar/dp_lb.h"
#include "sidecar/proxy_internal.h"

static size_t ep_hash(const char *key)
{
    size_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h % DP_EP_BUCKETS;
}

static dp_ep_rt *ep_get(dp_proxy *px, const char *cluster, const dp_endpoint *e)
{
    size_t kl = strlen(cluster) + strlen(e->address) + 2;
    char *key = malloc(kl);
    if (!key)
        return NULL;
    snprintf(key, kl, "%s\n%s", cluster, e->address);
    size_t b = ep_hash(key);
    for (dp_ep_rt *ep = px->ep_map[b]; ep; ep = ep->hnext) {
        if (strcmp(ep->key, key) == 0) {
            free(key);
            ep->refs++;
            return ep;
        }
    }
    dp_ep_rt *ep = calloc(1, sizeof *ep);
    if (!ep) {
        free(key);
        return NULL;
    }
    ep->load = dp_load_get(&px->loads, cluster);
    if (!ep->load) {
        free(key);
        free(ep);
        return NULL;
    }
    ep->refs = 1;
    ep->key = key;
    ep->px = px;
    snprintf(ep->cluster, sizeof ep->cluster, "%s", cluster);
    snprintf(ep->addr, sizeof ep->addr, "%s", e->address);
    ep->sa = e->sa;
    ep->sa_len = e->sa_len;
    ep->hnext = px->ep_map[b];
    px->ep_map[b] = ep;
    return ep;
}

void dp_ep_ref(dp_ep_rt *ep)
{
    ep->refs++;
}

void dp_ep_unref(dp_ep_rt *ep)
{
    if (!ep || --ep->refs > 0)
        return;
    dp_proxy *px = ep->px;
    dp_ep_rt **pp = &px->ep_map[ep_hash(ep->key)];
    while (*pp && *pp != ep)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = ep->hnext;
    /* No snapshot and no request uses it: its idle connections go too. */
    dp_up_drain_pool(ep);
    dp_hc_probe_free(ep->probe);
    dp_load_unref(&px->loads, ep->load);
    free(ep->key);
    free(ep);
}

dp_active *dp_active_ref(dp_active *a)
{
    if (a)
        a->refs++;
    return a;
}

void dp_active_unref(dp_proxy *px, dp_active *a)
{
    if (!a || --a->refs > 0)
        return;
    for (size_t i = 0; i < a->n_crt; i++) {
        for (size_t j = 0; j < a->crt[i].n_eps; j++)
            dp_ep_unref(a->crt[i].eps[j]);
        free(a->crt[i].eps);
        dp_load_unref(&px->loads, a->crt[i].load);
    }
    free(a->crt);
    dp_config_unref(a->cfg);
    free(a);
}

int dp_active_build(dp_proxy *px, dp_config *cfg, dp_active **out, mesh_err *err)
{
    dp_active *a = calloc(1, sizeof *a);
    size_t nc = dp_config_n_clusters(cfg);
    if (!a || !(a->crt = calloc(nc ? nc : 1, sizeof *a->crt))) {
        free(a);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory building the runtime config");
    }
    a->refs = 1;
    a->cfg = dp_config_ref(cfg);
    a->n_crt = nc;
    dp_active *old = px->active;
    for (size_t i = 0; i < nc; i++) {
        const dp_cluster *c = dp_config_cluster_at(cfg, i);
        size_t n;
        const dp_endpoint *eps = dp_config_cluster_endpoints(cfg, c, &n);
        dp_cluster_rt *rt = &a->crt[i];
        if (!(rt->load = dp_load_get(&px->loads, c->name)))
            goto oom;
        if (n) {
            rt->eps = calloc(n, sizeof *rt->eps);
            if (!rt->eps)
                goto oom;
        }
        for (size_t j = 0; j < n; j++) {
            rt->eps[j] = ep_get(px, c->name, &eps[j]);
            if (!rt->eps[j])
                goto oom;
            rt->n_eps = j + 1;
        }
        /* Keep the round robin position across pushes. */
        if (old) {
            size_t oi;
            if (dp_config_find_cluster(old->cfg, c->name, &oi) && oi < old->n_crt)
                rt->rr_cursor = old->crt[oi].rr_cursor;
        }
    }
    *out = a;
    return MESH_OK;
oom:
    dp_active_unref(px, a);
    return mesh_err_set(err, MESH_ENOMEM, "out of memory building the runtime config");
}

dp_ep_rt *dp_active_pick(dp_proxy *px, dp_active *a, size_t ci, const dp_ep_rt *const *tried,
                         size_t n_tried)
{
    if (ci >= a->n_crt)
        return NULL;
    const dp_cluster *c = dp_config_cluster_at(a->cfg, ci);
    size_t n;
    const dp_endpoint *eps = dp_config_cluster_endpoints(a->cfg, c, &n);
    dp_cluster_rt *rt = &a->crt[ci];
    if (n == 0 || rt->n_eps != n)
        return NULL;
    uint32_t active_stack[64];
    bool down_stack[64], tried_stack[64];
    uint32_t *active = n <= 64 ? active_stack : calloc(n, sizeof *active);
    bool *down = n <= 64 ? down_stack : calloc(n, sizeof *down);
    bool *tr = n <= 64 ? tried_stack : calloc(n, sizeof *tr);
    dp_ep_rt *res = NULL;
    if (!active || !down || !tr)
        goto out;
    int64_t now = dp_mono_ms();
    for (size_t i = 0; i < n; i++) {
        dp_ep_rt *ep = rt->eps[i];
        active[i] = ep->active_rq;
        down[i] = dp_outlier_ejected(&ep->od, now) || ep->hc.failed;
        tr[i] = false;
        for (size_t k = 0; k < n_tried; k++)
            if (tried[k] == ep)
                tr[i] = true;
    }
    dp_lb_input in = {.eps = eps, .n = n, .active = active, .down = down, .tried = tr};
    long k = dp_lb_pick_from(c->lb, &in, &rt->rr_cursor, &px->rng);
    res = k < 0 ? NULL : rt->eps[k];
out:
    if (n > 64) {
        free(active);
        free(down);
        free(tr);
    }
    return res;
}

void dp_active_record(dp_proxy *px, dp_active *a, size_t ci, dp_ep_rt *ep, int result)
{
    if (!ep)
        return;
    bool failed = result < 0 || result >= 500;
    ep->rq_total++;
    if (failed)
        ep->rq_error++;
    else
        ep->rq_success++;
    if (result == DP_RESULT_CONNECT_FAILED)
        ep->cx_connect_fail++;
    if (ci >= a->n_crt)
        return;
    const dp_cluster *c = dp_config_cluster_at(a->cfg, ci);
    if (!c->outlier.enabled)
        return;
    dp_cluster_rt *rt = &a->crt[ci];
    int64_t now = dp_mono_ms();
    size_t ejected = 0;
    for (size_t i = 0; i < rt->n_eps; i++)
        if (rt->eps[i] != ep && dp_outlier_ejected(&rt->eps[i]->od, now))
            ejected++;
    int64_t ms = dp_outlier_next_ejection_ms(&ep->od, &c->outlier, now);
    if (dp_outlier_record(&ep->od, &c->outlier, result, now, ejected, rt->n_eps)) {
        dp_stat_inc(&px->st.outlier_ejections);
        log_info(DP_LOG, "outlier detection: ejected %s of cluster '%s' for %lld ms (ejection "
                 "%llu of this host; %zu of %zu hosts of the cluster now ejected)", ep->addr,
                 c->name, (long long)ms, (unsigned long long)ep->od.ejections_total,
                 ejected + 1, rt->n_eps);
    }
}
