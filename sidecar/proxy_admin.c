/* sidecar/proxy_admin.c — the admin endpoint (loopback only), served by
 * libevent's evhttp on the data plane loop:
 *   /ready        200 once a config is applied and the SVID is valid (not expired, not
 *                 revoked, the sidecar not stranded), else 503 + reason
 *   /certs        JSON: current/next SVID (serial, SPIFFE ID, notAfter, seconds left,
 *                 revoked), bundle roots, CRLs in force, whether stranded and why
 *   /config_dump  JSON: xDS versions per type, last rejection, listeners, route
 *                 tables, clusters with endpoints, and "configs": Envoy's ConfigDump
 *                 of the accepted resources as meshd sent them (proxy_admin_dump.c)
 *   /stats        Prometheus text exposition (also at /stats/prometheus, Envoy's path)
 *   /logging      GET: the log level; POST /logging?level=debug|info|warn|error changes
 *                 it, as Envoy's admin does
 *   /clusters     each upstream host's health flags, ejection and request counts, in
 *                 Envoy's text shape or ?format=json (proxy_admin_clusters.c)
 * GET/HEAD, and POST for /logging only. Nothing secret is exposed (no keys). */
#include <arpa/inet.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_out.h"
#include "common/log.h"
#include "common/log_admin.h"
#include "common/prom_out.h"
#include "sidecar/dp_addr.h"
#include "sidecar/proxy_internal.h"
#include "sidecar/tls_util.h"

static void reply(struct evhttp_request *req, int code, const char *ctype, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "content-type", ctype);
    evhttp_send_reply(req, code, code == 200   ? "OK"
                                 : code == 400 ? "Bad Request"
                                 : code == 405 ? "Method Not Allowed"
                                 : code == 503 ? "Service Unavailable"
                                               : "Not Found", b);
    evbuffer_free(b);
}

/* Sends j as the 200 body (500 if it could not be built) and frees it. */
static void reply_json(struct evhttp_request *req, json_out *j)
{
    const char *t = json_text(j);
    if (t)
        reply(req, 200, "application/json", t);
    else
        evhttp_send_error(req, 500, NULL);
    json_free(j);
}

static void json_time(json_out *j, const char *key, int64_t t)
{
    char buf[32];
    tls_format_time(t, buf, sizeof buf);
    json_key_str(j, key, buf);
}

/* "key": [ ... — the caller writes the elements and closes the array. */
static void json_key_arr_begin(json_out *j, const char *key)
{
    json_key(j, key);
    json_arr_begin(j);
}

static void svid_json(json_out *j, const char *key, const cert_pool_svid_info *s)
{
    json_key(j, key);
    if (!s->present) {
        json_null(j);
        return;
    }
    json_obj_begin(j);
    json_key_str(j, "spiffe_id", s->spiffe_id);
    json_key_str(j, "serial", s->serial_hex);
    json_time(j, "not_before", s->not_before);
    json_time(j, "not_after", s->not_after);
    json_key_int(j, "seconds_left", s->seconds_left);
    json_key_bool(j, "expired", s->seconds_left <= 0);
    json_key_bool(j, "revoked", s->revoked);
    if (s->revoked)
        json_key_str(j, "revoked_why", s->revoked_why);
    json_obj_end(j);
}

static void h_certs(dp_proxy *px, struct evhttp_request *req)
{
    cert_pool_info info;
    cert_pool_get_info(px->pool, dp_now(), &info);
    json_out j;
    json_init(&j);
    json_obj_begin(&j);
    json_key_str(&j, "trust_domain", info.trust_domain);
    svid_json(&j, "current", &info.current);
    svid_json(&j, "next", &info.next);
    json_key_bool(&j, "csr_pending", info.pending_key);
    json_key_arr_begin(&j, "bundle");
    for (size_t i = 0; i < info.n_roots && i < CERT_POOL_MAX_ROOTS_INFO; i++) {
        json_obj_begin(&j);
        json_key_str(&j, "subject", info.roots[i].subject);
        json_key_str(&j, "serial", info.roots[i].serial_hex);
        json_key_str(&j, "sha256", info.roots[i].sha256);
        json_time(&j, "not_after", info.roots[i].not_after);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_key_int(&j, "bundle_roots", (int64_t)info.n_roots);
    /* The CRLs in force (their age shows how stale they may be during a
     * meshd outage; they are enforced regardless). */
    json_key(&j, "crls");
    json_arr_begin(&j);
    for (size_t i = 0; i < info.n_crls && i < CERT_POOL_MAX_ROOTS_INFO; i++) {
        json_obj_begin(&j);
        json_key_str(&j, "issuer", info.crls[i].issuer);
        json_key_int(&j, "number", info.crls[i].number);
        json_time(&j, "this_update", info.crls[i].this_update);
        json_time(&j, "next_update", info.crls[i].next_update);
        json_key_int(&j, "revoked", (int64_t)info.crls[i].n_revoked);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_key_bool(&j, "stranded", info.problem[0] != '\0');
    if (info.problem[0])
        json_key_str(&j, "problem", info.problem);
    json_obj_end(&j);
    reply_json(req, &j);
}

static void strv_json(json_out *j, const char *key, char *const *v, size_t n)
{
    json_key_arr_begin(j, key);
    for (size_t i = 0; i < n; i++)
        json_str(j, v[i]);
    json_arr_end(j);
}

static void route_json(json_out *j, const dp_route *r)
{
    static const char *hk[] = {"exact", "prefix", "present"};
    json_obj_begin(j);
    if (r->name)
        json_key_str(j, "name", r->name);
    json_key_str(j, r->path_kind == DP_PATH_EXACT ? "path" : "prefix", r->path);
    if (r->n_headers) {
        json_key_arr_begin(j, "headers");
        for (size_t i = 0; i < r->n_headers; i++) {
            json_obj_begin(j);
            json_key_str(j, "name", r->headers[i].name);
            json_key_str(j, "match", hk[r->headers[i].kind]);
            if (r->headers[i].value)
                json_key_str(j, "value", r->headers[i].value);
            if (r->headers[i].invert)
                json_key_bool(j, "invert", 1);
            json_obj_end(j);
        }
        json_arr_end(j);
    }
    json_key_arr_begin(j, "clusters");
    for (size_t i = 0; i < r->n_clusters; i++) {
        json_obj_begin(j);
        json_key_str(j, "name", r->clusters[i].cluster);
        json_key_int(j, "weight", r->clusters[i].weight);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_key_int(j, "timeout_ms", r->timeout_ms);
    json_key_int(j, "retries", r->retries);
    json_key_int(j, "per_try_timeout_ms", r->per_try_timeout_ms);
    json_key_bool(j, "retry_previous_hosts", r->retry_other_hosts);
    json_obj_end(j);
}

static void listener_json(dp_proxy *px, json_out *j, const dp_listener *l)
{
    json_obj_begin(j);
    json_key_str(j, "name", l->name);
    json_key_str(j, "address", l->address);
    json_key_str(j, "kind", dp_listener_kind_name(l->kind));
    for (dp_lrt *r = px->listeners; r; r = r->next)
        if (strcmp(r->name, l->name) == 0)
            json_key_int(j, "bound_port", r->port);
    if (l->kind == DP_LISTENER_INBOUND_HTTP || l->kind == DP_LISTENER_INBOUND_TCP) {
        json_key_str(j, "local_cluster", l->local_cluster);
        strv_json(j, "allowed_ids", l->allowed_ids, l->n_allowed);
    }
    if (l->kind == DP_LISTENER_OUTBOUND_TCP)
        json_key_str(j, "cluster", l->cluster);
    if (l->kind == DP_LISTENER_OUTBOUND_HTTP)
        json_key_str(j, "route_table", l->route_table);
    json_obj_end(j);
}

static void route_table_json(json_out *j, const dp_route_table *rt)
{
    json_obj_begin(j);
    json_key_str(j, "name", rt->name);
    json_key_arr_begin(j, "virtual_hosts");
    for (size_t v = 0; v < rt->n_vhosts; v++) {
        const dp_virtual_host *vh = &rt->vhosts[v];
        json_obj_begin(j);
        json_key_str(j, "name", vh->name ? vh->name : "");
        strv_json(j, "domains", vh->domains, vh->n_domains);
        json_key_arr_begin(j, "routes");
        for (size_t r = 0; r < vh->n_routes; r++)
            route_json(j, &vh->routes[r]);
        json_arr_end(j);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

/* Cluster i of snapshot a, with its endpoints' runtime counters. */
static void cluster_json(json_out *j, const dp_active *a, size_t i)
{
    const dp_cluster *c = dp_config_cluster_at(a->cfg, i);
    json_obj_begin(j);
    json_key_str(j, "name", c->name);
    json_key_str(j, "lb", dp_lb_policy_name(c->lb));
    json_key_bool(j, "mtls", c->tls);
    json_key_str(j, "discovery", c->eds ? "eds" : "static");
    json_key_int(j, "connect_timeout_ms", c->connect_timeout_ms > 0
                                              ? c->connect_timeout_ms
                                              : DP_DEFAULT_CONNECT_TIMEOUT_MS);
    strv_json(j, "san_ids", c->san_ids, c->n_san);
    size_t n;
    const dp_endpoint *eps = dp_config_cluster_endpoints(a->cfg, c, &n);
    json_key_arr_begin(j, "endpoints");
    for (size_t e = 0; e < n; e++) {
        json_obj_begin(j);
        json_key_str(j, "address", eps[e].address);
        json_key_str(j, "health", dp_health_name(eps[e].health));
        if (i < a->n_crt && e < a->crt[i].n_eps) {
            json_key_int(j, "active_requests", a->crt[i].eps[e]->active_rq);
            json_key_int(j, "idle_connections", a->crt[i].eps[e]->n_idle);
        }
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

/* The snapshot in use: three arrays, empty before the first config. */
static void config_json(dp_proxy *px, json_out *j)
{
    dp_active *a = px->active;
    json_key_arr_begin(j, "listeners");
    for (size_t i = 0; a && i < dp_config_n_listeners(a->cfg); i++)
        listener_json(px, j, dp_config_listener_at(a->cfg, i));
    json_arr_end(j);
    json_key_arr_begin(j, "route_tables");
    for (size_t i = 0; a && i < dp_config_n_route_tables(a->cfg); i++)
        route_table_json(j, dp_config_route_table_at(a->cfg, i));
    json_arr_end(j);
    json_key_arr_begin(j, "clusters");
    for (size_t i = 0; a && i < dp_config_n_clusters(a->cfg); i++)
        cluster_json(j, a, i);
    json_arr_end(j);
}

static void xds_status_json(dp_proxy *px, json_out *j)
{
    json_key(j, "xds");
    json_obj_begin(j);
    pthread_mutex_lock(&px->xds_mu);
    json_key_bool(j, "connected", px->xds_connected);
    json_key_str(j, "server", px->xds_server);
    for (int t = 0; t < DP_XDS_TYPE_COUNT; t++) {
        const dp_xds_status *x = &px->xds[t];
        json_key(j, dp_xds_type_name((dp_xds_type)t));
        json_obj_begin(j);
        json_key_str(j, "version", x->version);
        if (x->last_update)
            json_time(j, "last_update", x->last_update);
        json_key_int(j, "updates", (int64_t)atomic_load(&px->st.xds_updates[t]));
        json_key_int(j, "rejections", (int64_t)atomic_load(&px->st.xds_rejections[t]));
        if (x->last_reject) {
            json_key(j, "last_rejection");
            json_obj_begin(j);
            json_key_str(j, "version", x->rejected_version);
            json_key_str(j, "error", x->last_error);
            json_time(j, "at", x->last_reject);
            json_obj_end(j);
        }
        json_obj_end(j);
    }
    pthread_mutex_unlock(&px->xds_mu);
    json_obj_end(j);
}

static void h_config_dump(dp_proxy *px, struct evhttp_request *req)
{
    json_out j;
    json_init(&j);
    json_obj_begin(&j);
    xds_status_json(px, &j);
    config_json(px, &j);
    dp_admin_envoy_configs(&j, px->opts.state_dir);
    json_obj_end(&j);
    reply_json(req, &j);
}

static void h_ready(dp_proxy *px, struct evhttp_request *req)
{
    int64_t now = dp_now();
    if (!atomic_load(&px->config_applied)) {
        reply(req, 503, "text/plain", "not ready: no configuration from meshd yet\n");
        return;
    }
    char why[1536];
    if (!cert_pool_readiness(px->pool, now, why, sizeof why)) {
        char msg[1600];
        snprintf(msg, sizeof msg, "not ready: %s\n", why);
        reply(req, 503, "text/plain", msg);
        return;
    }
    reply(req, 200, "text/plain", "ready\n");
}

/* A counter with one series per xDS type. */
static void xds_counter(struct evbuffer *b, const char *name, const char *help,
                        const uint64_t by_type[DP_XDS_TYPE_COUNT])
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int t = 0; t < DP_XDS_TYPE_COUNT; t++)
        evbuffer_add_printf(b, "%s{type=\"%s\"} %llu\n", name, dp_xds_type_name((dp_xds_type)t),
                            (unsigned long long)by_type[t]);
}

/* A counter with a result="ok" and a result="failed" series. */
static void handshake_counter(struct evbuffer *b, const char *name, const char *help,
                              uint64_t ok, uint64_t failed)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s{result=\"ok\"} %llu\n"
                        "%s{result=\"failed\"} %llu\n", name, help, name, name,
                        (unsigned long long)ok, name, (unsigned long long)failed);
}

static void h_stats(dp_proxy *px, struct evhttp_request *req)
{
    dp_stats_view v;
    dp_proxy_get_stats(px, &v);
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    static const char *dir[] = {"outbound", "inbound"};
    static const char *cls[] = {"reset", "1xx", "2xx", "3xx", "4xx", "5xx"};
    evbuffer_add_printf(b, "# HELP mesh_sidecar_http_requests_total HTTP exchanges finished, by "
                        "direction and response class (reset = no response).\n"
                        "# TYPE mesh_sidecar_http_requests_total counter\n");
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 6; c++)
            evbuffer_add_printf(b, "mesh_sidecar_http_requests_total{direction=\"%s\","
                                "code_class=\"%s\"} %llu\n", dir[d], cls[c],
                                (unsigned long long)v.rq_by_class[d][c]);
    handshake_counter(b, "mesh_sidecar_upstream_handshakes_total",
                      "mTLS handshakes to peer sidecars.", v.up_hs_ok, v.up_hs_failed);
    handshake_counter(b, "mesh_sidecar_downstream_handshakes_total",
                      "mTLS handshakes from peer sidecars.", v.down_hs_ok, v.down_hs_failed);
    evbuffer_add_printf(b, "# HELP mesh_sidecar_rbac_denied_total Callers refused by "
                        "authorization policy.\n# TYPE mesh_sidecar_rbac_denied_total counter\n"
                        "mesh_sidecar_rbac_denied_total %llu\n",
                        (unsigned long long)v.rbac_denied);
    evbuffer_add_printf(b, "# HELP mesh_sidecar_upstream_retries_total Upstream requests "
                        "retried by route retry policy.\n"
                        "# TYPE mesh_sidecar_upstream_retries_total counter\n"
                        "mesh_sidecar_upstream_retries_total %llu\n"
                        "# HELP mesh_sidecar_upstream_timeouts_total Upstream requests that "
                        "hit the route timeout.\n"
                        "# TYPE mesh_sidecar_upstream_timeouts_total counter\n"
                        "mesh_sidecar_upstream_timeouts_total %llu\n",
                        (unsigned long long)v.retries, (unsigned long long)v.timeouts);
    evbuffer_add_printf(b, "# HELP mesh_sidecar_outlier_ejections_total Upstream hosts "
                        "ejected by outlier detection.\n"
                        "# TYPE mesh_sidecar_outlier_ejections_total counter\n"
                        "mesh_sidecar_outlier_ejections_total %llu\n"
                        "# HELP mesh_sidecar_upstream_per_try_timeouts_total Attempts "
                        "abandoned at the route's per-try timeout.\n"
                        "# TYPE mesh_sidecar_upstream_per_try_timeouts_total counter\n"
                        "mesh_sidecar_upstream_per_try_timeouts_total %llu\n",
                        (unsigned long long)v.outlier_ejections,
                        (unsigned long long)v.per_try_timeouts);
    handshake_counter(b, "mesh_sidecar_health_checks_total",
                      "Active health check probes of upstream hosts.", v.hc_ok, v.hc_failed);
    evbuffer_add_printf(b, "# HELP mesh_sidecar_upstream_overflow_total Requests or "
                        "connections refused by a circuit breaker, by limit.\n"
                        "# TYPE mesh_sidecar_upstream_overflow_total counter\n"
                        "mesh_sidecar_upstream_overflow_total{limit=\"max_connections\"} %llu\n"
                        "mesh_sidecar_upstream_overflow_total{limit=\"max_pending_requests\"} %llu\n"
                        "mesh_sidecar_upstream_overflow_total{limit=\"max_requests\"} %llu\n"
                        "mesh_sidecar_upstream_overflow_total{limit=\"max_retries\"} %llu\n",
                        (unsigned long long)v.overflow_cx, (unsigned long long)v.overflow_pending,
                        (unsigned long long)v.overflow_rq, (unsigned long long)v.overflow_retry);
    evbuffer_add_printf(b, "# HELP mesh_sidecar_tls_refused_expired_total Handshakes refused "
                        "because our SVID had expired (fail closed).\n"
                        "# TYPE mesh_sidecar_tls_refused_expired_total counter\n"
                        "mesh_sidecar_tls_refused_expired_total %llu\n"
                        "# HELP mesh_sidecar_connections_closed_cert_expiry_total Live "
                        "connections closed when a certificate on them expired.\n"
                        "# TYPE mesh_sidecar_connections_closed_cert_expiry_total counter\n"
                        "mesh_sidecar_connections_closed_cert_expiry_total %llu\n",
                        (unsigned long long)v.tls_refused_expired,
                        (unsigned long long)v.closed_cert_expiry);
    evbuffer_add_printf(b, "# HELP mesh_sidecar_tls_refused_revoked_total Handshakes refused "
                        "because the peer's certificate is on a CRL.\n"
                        "# TYPE mesh_sidecar_tls_refused_revoked_total counter\n"
                        "mesh_sidecar_tls_refused_revoked_total %llu\n"
                        "# HELP mesh_sidecar_connections_closed_revoked_total Live connections "
                        "closed when new CRLs revoked a certificate on them.\n"
                        "# TYPE mesh_sidecar_connections_closed_revoked_total counter\n"
                        "mesh_sidecar_connections_closed_revoked_total %llu\n",
                        (unsigned long long)v.tls_refused_revoked,
                        (unsigned long long)v.closed_revoked);
    evbuffer_add_printf(b, "# HELP mesh_sidecar_active_connections Open connections.\n"
                        "# TYPE mesh_sidecar_active_connections gauge\n"
                        "mesh_sidecar_active_connections{side=\"downstream\"} %llu\n"
                        "mesh_sidecar_active_connections{side=\"upstream\"} %llu\n",
                        (unsigned long long)v.active_down, (unsigned long long)v.active_up);
    dp_admin_cluster_stats(px, b);
    xds_counter(b, "mesh_sidecar_xds_updates_total", "xDS versions applied (ACK).",
                v.xds_updates);
    xds_counter(b, "mesh_sidecar_xds_rejections_total", "xDS versions rejected (NACK).",
                v.xds_rejections);
    evbuffer_add_printf(b, "# HELP mesh_sidecar_xds_failovers_total ADS streams that came up on "
                        "another meshd replica than the one before.\n"
                        "# TYPE mesh_sidecar_xds_failovers_total counter\n"
                        "mesh_sidecar_xds_failovers_total %llu\n",
                        (unsigned long long)v.xds_failovers);
    int64_t left = cert_pool_seconds_left(px->pool, dp_now());
    evbuffer_add_printf(b, "# HELP mesh_sidecar_cert_seconds_left Seconds until the current "
                        "SVID expires (negative: expired; the outage budget). Absent without "
                        "an SVID.\n# TYPE mesh_sidecar_cert_seconds_left gauge\n");
    if (left != CERT_POOL_NO_SVID)
        evbuffer_add_printf(b, "mesh_sidecar_cert_seconds_left %lld\n", (long long)left);
    evbuffer_add_printf(b, "# HELP mesh_sidecar_access_log_dropped_total Access log lines "
                        "dropped because the log did not keep up (4 MiB pending).\n"
                        "# TYPE mesh_sidecar_access_log_dropped_total counter\n"
                        "mesh_sidecar_access_log_dropped_total %llu\n",
                        (unsigned long long)dp_access_log_dropped(px->alog));
    prom_out p;
    prom_init(&p);
    dp_metrics_write(px->metrics, &p);
    const char *mt = prom_text(&p);
    if (mt)
        evbuffer_add(b, mt, strlen(mt));
    prom_free(&p);
    evhttp_add_header(evhttp_request_get_output_headers(req), "content-type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* Envoy's admin shape (common/log_admin.c). The endpoint is loopback-only
 * (dp_admin_start), so the peer is on this host. */
static void h_logging(struct evhttp_request *req)
{
    char body[200];
    reply(req, log_admin_logging(req, DP_LOG, body, sizeof body), "text/plain", body);
}

static void on_admin(struct evhttp_request *req, void *arg)
{
    dp_proxy *px = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path)
        path = "/";
    if (strcmp(path, "/logging") == 0) {
        h_logging(req);
        return;
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        reply(req, 405, "text/plain", "only /logging takes POST\n");
        return;
    }
    if (strcmp(path, "/ready") == 0)
        h_ready(px, req);
    else if (strcmp(path, "/certs") == 0)
        h_certs(px, req);
    else if (strcmp(path, "/config_dump") == 0)
        h_config_dump(px, req);
    else if (strcmp(path, "/stats") == 0 || strcmp(path, "/stats/prometheus") == 0)
        h_stats(px, req);
    else if (strcmp(path, "/clusters") == 0) {
        const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
        dp_admin_clusters(px, req, q && strstr(q, "format=json"));
    } else
        reply(req, 404, "text/plain", "unknown admin path; try /ready /certs /config_dump "
              "/stats /stats/prometheus /logging /clusters\n");
}

static bool is_loopback(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

int dp_admin_start(dp_proxy *px, const char *address, mesh_err *err)
{
    struct sockaddr_storage sa;
    socklen_t sl;
    mesh_err e;
    if (dp_addr_parse(address, true, &sa, &sl, &e) != MESH_OK)
        return mesh_err_set(err, MESH_EINVAL, "admin endpoint: %s", e.msg);
    /* /config_dump maps the mesh: never expose it beyond the host. */
    if (!is_loopback(&sa))
        return mesh_err_set(err, MESH_EINVAL, "admin endpoint %s: must be a loopback address "
                            "(127.0.0.1 or [::1])", address);
    px->admin = evhttp_new(px->base);
    if (!px->admin)
        return mesh_err_set(err, MESH_ENOMEM, "admin endpoint: out of memory");
    evhttp_set_allowed_methods(px->admin, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_gencb(px->admin, on_admin, px);
    char host[64];
    if (sa.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, host, sizeof host);
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, host, sizeof host);
    struct evhttp_bound_socket *bs =
        evhttp_bind_socket_with_handle(px->admin, host, dp_addr_port((struct sockaddr *)&sa));
    if (!bs) {
        int se = EVUTIL_SOCKET_ERROR();
        evhttp_free(px->admin);
        px->admin = NULL;
        return mesh_err_set(err, MESH_EIO, "admin endpoint: cannot bind %s: %s", address,
                            evutil_socket_error_to_string(se));
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&bound, &bl) == 0)
        px->admin_port = dp_addr_port((struct sockaddr *)&bound);
    log_info(DP_LOG, "admin endpoint on %s port %d", host, px->admin_port);
    return MESH_OK;
}

void dp_admin_stop(dp_proxy *px)
{
    if (px->admin) {
        evhttp_free(px->admin);
        px->admin = NULL;
    }
}
