/* sidecar/proxy_admin_clusters.c — the admin endpoint's /clusters, in Envoy's shapes:
 *
 *   text (default), one line per value, as Envoy's admin prints it:
 *     outbound|api::default_priority::max_requests::1024
 *     outbound|api::outlier::detection::consecutive_5xx::5
 *     outbound|api::127.0.0.1:9080::rq_total::120
 *     outbound|api::127.0.0.1:9080::health_flags::/failed_outlier_check
 *   ?format=json: {"cluster_statuses": [{"name", "host_statuses": [{"address":
 *     {"socket_address": {"address", "port_value"}}, "stats": [{"name", "value",
 *     "type"}], "health_status": {"eds_health_status", "failed_active_health_check",
 *     "failed_outlier_check"}, "ejected_for_ms", "ejections_total"}]}]}
 *
 * health_flags is "healthy" or the "/flag" list Envoy uses: failed_active_hc,
 * failed_outlier_check, failed_eds_health, degraded_eds_health. Runs on the loop
 * thread (evhttp shares the data plane's event base), so it reads the live state. */
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_out.h"
#include "common/prom_out.h"
#include "sidecar/proxy_internal.h"

typedef struct host_view {
    const dp_ep_rt *ep;
    const dp_endpoint *cfg;
    uint64_t cx_active;
    bool ejected;
    int64_t ejected_for_ms;
    char flags[128];
} host_view;

static void view_of(dp_proxy *px, dp_ep_rt *ep, const dp_endpoint *e, int64_t now,
                    host_view *v)
{
    memset(v, 0, sizeof *v);
    v->ep = ep;
    v->cfg = e;
    for (const dp_upconn *uc = px->upconns; uc; uc = uc->all_next)
        if (uc->ep == ep)
            v->cx_active++;
    v->ejected = dp_outlier_ejected(&ep->od, now);
    v->ejected_for_ms = v->ejected ? ep->od.ejected_until_ms - now : 0;
    if (ep->hc.failed)
        strcat(v->flags, "/failed_active_hc");
    if (v->ejected)
        strcat(v->flags, "/failed_outlier_check");
    if (!dp_health_usable(e->health) && e->health != DP_HEALTH_DEGRADED)
        strcat(v->flags, "/failed_eds_health");
    if (e->health == DP_HEALTH_DEGRADED)
        strcat(v->flags, "/degraded_eds_health");
    if (!v->flags[0])
        strcpy(v->flags, "healthy");
}

static void text_cluster(struct evbuffer *b, const dp_cluster *c, const dp_cluster_load *l)
{
    const dp_breaker_cfg *k = &c->breakers;
    if (l)
        evbuffer_add_printf(b, "%s::upstream_cx_overflow::%llu\n"
                            "%s::upstream_rq_pending_overflow::%llu\n"
                            "%s::upstream_rq_retry_overflow::%llu\n"
                            "%s::upstream_cx_active::%u\n%s::upstream_rq_active::%u\n"
                            "%s::upstream_rq_pending_active::%u\n",
                            c->name, (unsigned long long)l->cx_overflow, c->name,
                            (unsigned long long)l->rq_pending_overflow, c->name,
                            (unsigned long long)l->rq_retry_overflow, c->name, l->cx, c->name,
                            l->rq_active, c->name, l->rq_pending);
    evbuffer_add_printf(b, "%s::default_priority::max_connections::%u\n"
                        "%s::default_priority::max_pending_requests::%u\n"
                        "%s::default_priority::max_requests::%u\n"
                        "%s::default_priority::max_retries::%u\n",
                        c->name, k->max_connections, c->name, k->max_pending_requests, c->name,
                        k->max_requests, c->name, k->max_retries);
    if (c->outlier.enabled)
        evbuffer_add_printf(b, "%s::outlier::detection::consecutive_5xx::%u\n"
                            "%s::outlier::detection::consecutive_gateway_failure::%u\n"
                            "%s::outlier::detection::base_ejection_time_ms::%lld\n"
                            "%s::outlier::detection::max_ejection_percent::%u\n",
                            c->name, c->outlier.consecutive_5xx, c->name,
                            c->outlier.consecutive_gateway_failure, c->name,
                            (long long)c->outlier.base_ejection_ms, c->name,
                            c->outlier.max_ejection_percent);
}

static void text_host(struct evbuffer *b, const dp_cluster *c, const host_view *v)
{
    const dp_ep_rt *ep = v->ep;
    const char *n = c->name, *a = ep->addr;
    evbuffer_add_printf(b, "%s::%s::cx_active::%llu\n", n, a, (unsigned long long)v->cx_active);
    evbuffer_add_printf(b, "%s::%s::cx_connect_fail::%llu\n", n, a,
                        (unsigned long long)ep->cx_connect_fail);
    evbuffer_add_printf(b, "%s::%s::rq_active::%u\n", n, a, ep->active_rq);
    evbuffer_add_printf(b, "%s::%s::rq_error::%llu\n", n, a, (unsigned long long)ep->rq_error);
    evbuffer_add_printf(b, "%s::%s::rq_success::%llu\n", n, a,
                        (unsigned long long)ep->rq_success);
    evbuffer_add_printf(b, "%s::%s::rq_total::%llu\n", n, a, (unsigned long long)ep->rq_total);
    evbuffer_add_printf(b, "%s::%s::ejections_total::%llu\n", n, a,
                        (unsigned long long)ep->od.ejections_total);
    evbuffer_add_printf(b, "%s::%s::hc_probes_ok::%llu\n", n, a,
                        (unsigned long long)ep->hc.probes_ok);
    evbuffer_add_printf(b, "%s::%s::hc_probes_failed::%llu\n", n, a,
                        (unsigned long long)ep->hc.probes_failed);
    evbuffer_add_printf(b, "%s::%s::health_flags::%s\n", n, a, v->flags);
    evbuffer_add_printf(b, "%s::%s::weight::1\n", n, a);
}

static void json_stat(json_out *j, const char *name, uint64_t v, bool gauge)
{
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    json_obj_begin(j);
    json_key_str(j, "name", name);
    json_key_str(j, "value", num);     /* uint64 as a string, as in Envoy's proto JSON */
    json_key_str(j, "type", gauge ? "GAUGE" : "COUNTER");
    json_obj_end(j);
}

static void json_host(json_out *j, const host_view *v)
{
    const dp_ep_rt *ep = v->ep;
    char host[64];
    snprintf(host, sizeof host, "%s", ep->addr);
    char *colon = strrchr(host, ':');
    int port = colon ? atoi(colon + 1) : 0;
    if (colon)
        *colon = '\0';
    const char *h = host;
    if (h[0] == '[') {
        h++;
        char *rb = strchr(host, ']');
        if (rb)
            *rb = '\0';
    }
    json_obj_begin(j);
    json_key(j, "address");
    json_obj_begin(j);
    json_key(j, "socket_address");
    json_obj_begin(j);
    json_key_str(j, "address", h);
    json_key_int(j, "port_value", port);
    json_obj_end(j);
    json_obj_end(j);
    json_key(j, "stats");
    json_arr_begin(j);
    json_stat(j, "cx_active", v->cx_active, true);
    json_stat(j, "cx_connect_fail", ep->cx_connect_fail, false);
    json_stat(j, "rq_active", ep->active_rq, true);
    json_stat(j, "rq_error", ep->rq_error, false);
    json_stat(j, "rq_success", ep->rq_success, false);
    json_stat(j, "rq_total", ep->rq_total, false);
    json_arr_end(j);
    json_key(j, "health_status");
    json_obj_begin(j);
    json_key_str(j, "eds_health_status", dp_health_name(v->cfg->health));
    json_key_bool(j, "failed_active_health_check", ep->hc.failed);
    json_key_bool(j, "failed_outlier_check", v->ejected);
    json_obj_end(j);
    json_key_str(j, "health_flags", v->flags);
    json_key_int(j, "ejected_for_ms", v->ejected_for_ms);
    json_key_int(j, "ejections_total", (int64_t)ep->od.ejections_total);
    json_key_int(j, "hc_probes_ok", (int64_t)ep->hc.probes_ok);
    json_key_int(j, "hc_probes_failed", (int64_t)ep->hc.probes_failed);
    json_obj_end(j);
}

/* Envoy's circuit_breakers.thresholds shape, plus the cluster's overflow counters
 * under their Envoy stat names. */
static void json_breakers(json_out *j, const dp_cluster *c, const dp_cluster_load *l)
{
    const dp_breaker_cfg *k = &c->breakers;
    json_key(j, "circuit_breakers");
    json_obj_begin(j);
    json_key(j, "thresholds");
    json_arr_begin(j);
    json_obj_begin(j);
    json_key_str(j, "priority", "DEFAULT");
    json_key_int(j, "max_connections", k->max_connections);
    json_key_int(j, "max_pending_requests", k->max_pending_requests);
    json_key_int(j, "max_requests", k->max_requests);
    json_key_int(j, "max_retries", k->max_retries);
    json_obj_end(j);
    json_arr_end(j);
    json_obj_end(j);
    if (!l)
        return;
    json_key(j, "stats");
    json_arr_begin(j);
    json_stat(j, "upstream_cx_overflow", l->cx_overflow, false);
    json_stat(j, "upstream_rq_pending_overflow", l->rq_pending_overflow, false);
    json_stat(j, "upstream_rq_retry_overflow", l->rq_retry_overflow, false);
    json_stat(j, "upstream_cx_active", l->cx, true);
    json_stat(j, "upstream_rq_active", l->rq_active, true);
    json_stat(j, "upstream_rq_pending_active", l->rq_pending, true);
    json_arr_end(j);
}

void dp_admin_cluster_stats(dp_proxy *px, struct evbuffer *b)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"envoy_cluster_upstream_cx_overflow_total", "counter",
         "Connections refused by the cluster's max_connections circuit breaker."},
        {"envoy_cluster_upstream_rq_pending_overflow_total", "counter",
         "Requests refused by max_pending_requests or max_requests (Envoy counts both here)."},
        {"envoy_cluster_upstream_rq_retry_overflow_total", "counter",
         "Retries not made because of the cluster's max_retries circuit breaker."},
        {"envoy_cluster_upstream_rq_active", "gauge", "Requests in flight to the cluster."},
        {"envoy_cluster_upstream_cx_active", "gauge",
         "Upstream connections of the cluster (connecting, in use or pooled)."},
    };
    prom_out p;
    prom_init(&p);
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        prom_family(&p, fam[f].name, fam[f].type, fam[f].help);
        for (const dp_cluster_load *l = px->loads; l; l = l->next) {
            prom_label lb = {"envoy_cluster_name", l->name};
            uint64_t v = f == 0 ? l->cx_overflow : f == 1 ? l->rq_pending_overflow
                       : f == 2 ? l->rq_retry_overflow : f == 3 ? l->rq_active : l->cx;
            prom_sample_u64(&p, fam[f].name, &lb, 1, v);
        }
    }
    const char *t = prom_text(&p);
    if (t)
        evbuffer_add(b, t, strlen(t));
    prom_free(&p);
}

void dp_admin_clusters(dp_proxy *px, struct evhttp_request *req, bool as_json)
{
    struct evbuffer *b = evbuffer_new();
    json_out j;
    json_init(&j);
    if (!b) {
        json_free(&j);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    json_obj_begin(&j);
    json_key(&j, "cluster_statuses");
    json_arr_begin(&j);
    dp_active *a = px->active;
    int64_t now = dp_mono_ms();
    for (size_t ci = 0; a && ci < a->n_crt; ci++) {
        const dp_cluster *c = dp_config_cluster_at(a->cfg, ci);
        size_t n;
        const dp_endpoint *eps = dp_config_cluster_endpoints(a->cfg, c, &n);
        const dp_cluster_rt *rt = &a->crt[ci];
        if (as_json) {
            json_obj_begin(&j);
            json_key_str(&j, "name", c->name);
            json_breakers(&j, c, rt->load);
            json_key(&j, "host_statuses");
            json_arr_begin(&j);
        } else {
            text_cluster(b, c, rt->load);
        }
        for (size_t i = 0; i < n && i < rt->n_eps; i++) {
            host_view v;
            view_of(px, rt->eps[i], &eps[i], now, &v);
            if (as_json)
                json_host(&j, &v);
            else
                text_host(b, c, &v);
        }
        if (as_json) {
            json_arr_end(&j);
            json_obj_end(&j);
        }
    }
    json_arr_end(&j);
    json_obj_end(&j);
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
    if (as_json) {
        const char *t = json_text(&j);
        if (!t) {
            json_free(&j);
            evbuffer_free(b);
            evhttp_send_error(req, 500, NULL);
            return;
        }
        evbuffer_add(b, t, strlen(t));
        evhttp_add_header(hdr, "content-type", "application/json");
    } else {
        evhttp_add_header(hdr, "content-type", "text/plain");
    }
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
    json_free(&j);
}
