/* sds/compiler/xds_compile_listener.c — LDS resources of one node (docs/xds.md):
 *   "inbound|<port>"      mTLS listener on workload.inbound; HTTP: HCM with an inline
 *                         route to the local app, RBAC filter, router; TCP: network
 *                         RBAC then tcp_proxy to the local app.
 *   "outbound|http"       plain listener on workload.outbound; HCM with RDS "outbound|http".
 *   "outbound|tcp|<svc>"  plain listener per tcp_outbound entry; tcp_proxy to outbound|<svc>.
 * Authorization lives on the callee's inbound listener, where the peer's SVID has
 * just been verified: the caller's SPIFFE ID is the certificate's URI SAN, which
 * RBAC's `authenticated` principal matches. */
#include <string.h>

#include "sds/compiler/xds_compile_internal.h"

#include "envoy/config/core/v3/protocol.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/rbac/v3/rbac.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter HttpFilter;

/* ---- RBAC ----------------------------------------------------------------- */

static Envoy__Config__Rbac__V3__Principal *principal_id(xc_ctx *c, const char *id)
{
    Envoy__Config__Rbac__V3__Principal *p = xc_alloc(&c->arena, sizeof *p);
    Envoy__Config__Rbac__V3__Principal__Authenticated *a = xc_alloc(&c->arena, sizeof *a);
    Envoy__Type__Matcher__V3__StringMatcher *m = xc_alloc(&c->arena, sizeof *m);
    if (p == NULL || a == NULL || m == NULL)
        return xc_oom(c);
    envoy__type__matcher__v3__string_matcher__init(m);
    m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
    m->exact = (char *)id;
    envoy__config__rbac__v3__principal__authenticated__init(a);
    a->principal_name = m;
    envoy__config__rbac__v3__principal__init(p);
    p->identifier_case = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AUTHENTICATED;
    p->authenticated = a;
    return p;
}

/* Every SPIFFE ID allowed to call svc, from all its authorization entries. */
static const char **allowed_ids(xc_ctx *c, const mesh_service *svc, size_t *n_out)
{
    size_t total = 0;
    for (size_t i = 0; i < c->cfg->n_authz; i++) {
        const mesh_authorization *a = &c->cfg->authz[i];
        if (a->service != NULL && strcmp(a->service, svc->name) == 0)
            total += a->n_allow;
    }
    const char **all = xc_array(&c->arena, total, sizeof *all);
    if (all == NULL)
        return xc_oom(c);
    size_t k = 0;
    for (size_t i = 0; i < c->cfg->n_authz; i++) {
        const mesh_authorization *a = &c->cfg->authz[i];
        if (a->service == NULL || strcmp(a->service, svc->name) != 0)
            continue;
        for (size_t j = 0; j < a->n_allow; j++)
            all[k++] = a->allow[j];
    }
    return xc_sorted_unique(c, all, k, n_out);
}

/* RBAC rules for svc: ALLOW the SPIFFE IDs of its authorization entries. */
static Envoy__Config__Rbac__V3__RBAC *rbac_rules(xc_ctx *c, const mesh_service *svc)
{
    Envoy__Config__Rbac__V3__RBAC *rbac = xc_alloc(&c->arena, sizeof *rbac);
    if (rbac == NULL)
        return xc_oom(c);
    envoy__config__rbac__v3__rbac__init(rbac);
    /* ALLOW with no matching policy denies: a service nobody is authorised to
     * call gets an empty policy map, which refuses every caller. */
    rbac->action = ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW;
    size_t n_ids;
    const char **ids = allowed_ids(c, svc, &n_ids);
    if (ids == NULL)
        return NULL;
    if (n_ids == 0)
        return rbac;

    Envoy__Config__Rbac__V3__Policy *pol = xc_alloc(&c->arena, sizeof *pol);
    Envoy__Config__Rbac__V3__Permission *any = xc_alloc(&c->arena, sizeof *any);
    Envoy__Config__Rbac__V3__Permission **perms = xc_array(&c->arena, 1, sizeof *perms);
    Envoy__Config__Rbac__V3__Principal **prins = xc_array(&c->arena, n_ids, sizeof *prins);
    Envoy__Config__Rbac__V3__RBAC__PoliciesEntry *entry = xc_alloc(&c->arena, sizeof *entry);
    Envoy__Config__Rbac__V3__RBAC__PoliciesEntry **entries = xc_array(&c->arena, 1, sizeof *entries);
    char *key = xc_printf(&c->arena, "allow|%s", svc->name);
    if (!pol || !any || !perms || !prins || !entry || !entries || !key)
        return xc_oom(c);
    envoy__config__rbac__v3__permission__init(any);
    any->rule_case = ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_ANY;
    any->any = 1;
    perms[0] = any;
    for (size_t i = 0; i < n_ids; i++) {
        if ((prins[i] = principal_id(c, ids[i])) == NULL)
            return NULL;
    }
    envoy__config__rbac__v3__policy__init(pol);
    pol->n_permissions = 1;
    pol->permissions = perms;
    pol->n_principals = n_ids;
    pol->principals = prins;
    envoy__config__rbac__v3__rbac__policies_entry__init(entry);
    entry->key = key;
    entry->value = pol;
    entries[0] = entry;
    rbac->n_policies = 1;
    rbac->policies = entries;
    return rbac;
}

/* ---- small pieces --------------------------------------------------------- */

static Envoy__Config__Listener__V3__Filter *net_filter(xc_ctx *c, const char *name,
                                                       const char *type_url,
                                                       const ProtobufCMessage *cfg)
{
    Envoy__Config__Listener__V3__Filter *f = xc_alloc(&c->arena, sizeof *f);
    if (f == NULL)
        return xc_oom(c);
    envoy__config__listener__v3__filter__init(f);
    f->name = (char *)name;
    f->config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = xc_any(c, type_url, cfg);
    return f->typed_config ? f : NULL;
}

static HttpFilter *http_filter(xc_ctx *c, const char *name, const char *type_url,
                               const ProtobufCMessage *cfg)
{
    HttpFilter *f = xc_alloc(&c->arena, sizeof *f);
    if (f == NULL)
        return xc_oom(c);
    envoy__extensions__filters__network__http_connection_manager__v3__http_filter__init(f);
    f->name = (char *)name;
    f->config_type_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = xc_any(c, type_url, cfg);
    return f->typed_config ? f : NULL;
}

static HttpFilter *router_filter(xc_ctx *c)
{
    Envoy__Extensions__Filters__Http__Router__V3__Router *r = xc_alloc(&c->arena, sizeof *r);
    if (r == NULL)
        return xc_oom(c);
    envoy__extensions__filters__http__router__v3__router__init(r);
    return http_filter(c, XC_FILTER_ROUTER, XDS_TYPE_URL_ROUTER, &r->base);
}

static Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *
tcp_proxy(xc_ctx *c, const char *stat_prefix, const char *cluster)
{
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = xc_alloc(&c->arena, sizeof *tp);
    if (tp == NULL)
        return xc_oom(c);
    envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__init(tp);
    tp->stat_prefix = (char *)stat_prefix;
    tp->cluster_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER;
    tp->cluster = (char *)cluster;
    return tp;
}

/* A listener with one filter chain holding `filters`. */
static int emit_listener(xc_ctx *c, const char *name, const char *stat_prefix,
                         Envoy__Config__Core__V3__Address *addr,
                         Envoy__Config__Core__V3__TrafficDirection dir,
                         Envoy__Config__Listener__V3__Filter **filters, size_t n_filters,
                         Envoy__Config__Core__V3__TransportSocket *ts, const char *what)
{
    Envoy__Config__Listener__V3__Listener *l = xc_alloc(&c->arena, sizeof *l);
    Envoy__Config__Listener__V3__FilterChain *fc = xc_alloc(&c->arena, sizeof *fc);
    Envoy__Config__Listener__V3__FilterChain **fcs = xc_array(&c->arena, 1, sizeof *fcs);
    if (l == NULL || fc == NULL || fcs == NULL)
        return xc_oom_status(c);
    envoy__config__listener__v3__filter_chain__init(fc);
    fc->name = (char *)name;
    fc->n_filters = n_filters;
    fc->filters = filters;
    fc->transport_socket = ts;
    fcs[0] = fc;
    envoy__config__listener__v3__listener__init(l);
    l->name = (char *)name;
    l->address = addr;
    l->stat_prefix = (char *)stat_prefix;
    l->traffic_direction = dir;
    l->n_filter_chains = 1;
    l->filter_chains = fcs;
    return xc_emit(c, XDS_LDS, name, &l->base, what);
}

/* ---- inbound -------------------------------------------------------------- */

/* HCM of an inbound HTTP listener: everything that passed mTLS and RBAC goes to
 * the local app. The route timeout is 0 (none): the caller's outbound route owns
 * the request deadline, and a second, different one here would only confuse it. */
static Hcm *inbound_hcm(xc_ctx *c, const char *stat_prefix, const char *route_name,
                        const mesh_service *svc, const char *local_cluster)
{
    Hcm *hcm = xc_alloc(&c->arena, sizeof *hcm);
    Envoy__Config__Route__V3__RouteConfiguration *rc = xc_alloc(&c->arena, sizeof *rc);
    Envoy__Config__Route__V3__VirtualHost *vh = xc_alloc(&c->arena, sizeof *vh);
    Envoy__Config__Route__V3__VirtualHost **vhs = xc_array(&c->arena, 1, sizeof *vhs);
    Envoy__Config__Route__V3__Route *rt = xc_alloc(&c->arena, sizeof *rt);
    Envoy__Config__Route__V3__Route **rts = xc_array(&c->arena, 1, sizeof *rts);
    Envoy__Config__Route__V3__RouteMatch *match = xc_alloc(&c->arena, sizeof *match);
    Envoy__Config__Route__V3__RouteAction *act = xc_alloc(&c->arena, sizeof *act);
    char **domains = xc_array(&c->arena, 1, sizeof *domains);
    HttpFilter **filters = xc_array(&c->arena, 2, sizeof *filters);
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *rbac = xc_alloc(&c->arena, sizeof *rbac);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__SetCurrentClientCertDetails
        *xfcc = xc_alloc(&c->arena, sizeof *xfcc);
    char *vh_name = xc_printf(&c->arena, "inbound|%s", svc->name);
    if (!hcm || !rc || !vh || !vhs || !rt || !rts || !match || !act || !domains || !filters ||
        !rbac || !xfcc || !vh_name)
        return xc_oom(c);

    envoy__config__route__v3__route_match__init(match);
    match->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
    match->prefix = "/";
    envoy__config__route__v3__route_action__init(act);
    act->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
    act->cluster = (char *)local_cluster;
    if ((act->timeout = xc_duration_ms(c, 0)) == NULL)
        return NULL;
    envoy__config__route__v3__route__init(rt);
    rt->name = "local";
    rt->match = match;
    rt->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    rt->route = act;
    rts[0] = rt;
    domains[0] = "*";
    envoy__config__route__v3__virtual_host__init(vh);
    vh->name = vh_name;
    vh->n_domains = 1;
    vh->domains = domains;
    vh->n_routes = 1;
    vh->routes = rts;
    vhs[0] = vh;
    envoy__config__route__v3__route_configuration__init(rc);
    rc->name = (char *)route_name;
    rc->n_virtual_hosts = 1;
    rc->virtual_hosts = vhs;

    envoy__extensions__filters__http__rbac__v3__rbac__init(rbac);
    if ((rbac->rules = rbac_rules(c, svc)) == NULL)
        return NULL;
    if ((filters[0] = http_filter(c, XC_FILTER_HTTP_RBAC, XDS_TYPE_URL_HTTP_RBAC, &rbac->base)) == NULL ||
        (filters[1] = router_filter(c)) == NULL)
        return NULL;

    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__init(hcm);
    hcm->codec_type =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__AUTO;
    hcm->stat_prefix = (char *)stat_prefix;
    hcm->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG;
    hcm->route_config = rc;
    hcm->n_http_filters = 2;
    hcm->http_filters = filters;
    /* The app learns who called it from x-forwarded-client-cert (URI=<caller's
     * SPIFFE ID>), set by the sidecar from the verified certificate; whatever the
     * caller sent in that header is dropped (SANITIZE_SET). */
    hcm->forward_client_cert_details =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__FORWARD_CLIENT_CERT_DETAILS__SANITIZE_SET;
    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__set_current_client_cert_details__init(xfcc);
    xfcc->uri = 1;
    hcm->set_current_client_cert_details = xfcc;
    return hcm;
}

int xc_inbound_listener(xc_ctx *c, const mesh_workload *w, const mesh_service *svc)
{
    const char *where = xc_where_workload(c, w);
    const char *what = xc_printf(&c->arena, "%s inbound", where);
    if (what == NULL)
        return xc_oom_status(c);
    Envoy__Config__Core__V3__Address *addr = xc_address(c, w->inbound, what);
    if (addr == NULL)
        return xc_status(c);
    uint32_t port = addr->socket_address->port_value;
    char *name = xc_printf(&c->arena, "inbound|%u", port);
    char *stat = xc_printf(&c->arena, "inbound_%u", port);
    char *net_stat = xc_printf(&c->arena, "inbound_%u.", port);
    char *local = xc_printf(&c->arena, "inbound|%s|local", svc->name);
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *dtls =
        xc_alloc(&c->arena, sizeof *dtls);
    Envoy__Config__Listener__V3__Filter **filters = xc_array(&c->arena, 2, sizeof *filters);
    if (!name || !stat || !net_stat || !local || !dtls || !filters)
        return xc_oom_status(c);

    envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__init(dtls);
    /* Any SVID of our trust domain may connect; who may call is RBAC's decision,
     * which answers HTTP callers with a 403 instead of a failed handshake. */
    if ((dtls->common_tls_context = xc_common_tls(c, NULL, 0)) == NULL ||
        (dtls->require_client_certificate = xc_bool(c, 1)) == NULL)
        return xc_status(c);
    /* An http2/grpc service's callers negotiate HTTP/2 by ALPN; HTTP/1.1 stays offered
     * (health probes, peers that cannot speak h2). */
    if (mesh_protocol_is_h2(svc->protocol) &&
        xc_tls_alpn(c, dtls->common_tls_context, 1) != MESH_OK)
        return xc_status(c);
    Envoy__Config__Core__V3__TransportSocket *ts = xc_tls_socket(c, XDS_TYPE_URL_DOWNSTREAM_TLS, &dtls->base);
    if (ts == NULL)
        return xc_status(c);

    size_t n_filters;
    if (mesh_protocol_is_http(svc->protocol)) {
        Hcm *hcm = inbound_hcm(c, stat, name, svc, local);
        if (hcm != NULL && mesh_protocol_is_h2(svc->protocol) &&
            (hcm->http2_protocol_options = xc_h2_options(c)) == NULL)
            hcm = NULL;
        if (hcm == NULL || (filters[0] = net_filter(c, XC_FILTER_HCM, XDS_TYPE_URL_HCM, &hcm->base)) == NULL)
            return xc_status(c);
        n_filters = 1;
    } else {
        Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *rbac = xc_alloc(&c->arena, sizeof *rbac);
        if (rbac == NULL)
            return xc_oom_status(c);
        envoy__extensions__filters__network__rbac__v3__rbac__init(rbac);
        rbac->stat_prefix = net_stat;
        if ((rbac->rules = rbac_rules(c, svc)) == NULL)
            return xc_status(c);
        Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = tcp_proxy(c, stat, local);
        if (tp == NULL ||
            (filters[0] = net_filter(c, XC_FILTER_NET_RBAC, XDS_TYPE_URL_NET_RBAC, &rbac->base)) == NULL ||
            (filters[1] = net_filter(c, XC_FILTER_TCP_PROXY, XDS_TYPE_URL_TCP_PROXY, &tp->base)) == NULL)
            return xc_status(c);
        n_filters = 2;
    }
    return emit_listener(c, name, stat, addr, ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND,
                         filters, n_filters, ts, what);
}

/* ---- outbound ------------------------------------------------------------- */

int xc_outbound_http_listener(xc_ctx *c, const mesh_workload *w)
{
    const char *what = xc_printf(&c->arena, "%s outbound", xc_where_workload(c, w));
    if (what == NULL)
        return xc_oom_status(c);
    Envoy__Config__Core__V3__Address *addr = xc_address(c, w->outbound, what);
    if (addr == NULL)
        return xc_status(c);
    Hcm *hcm = xc_alloc(&c->arena, sizeof *hcm);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds *rds =
        xc_alloc(&c->arena, sizeof *rds);
    HttpFilter **hf = xc_array(&c->arena, 1, sizeof *hf);
    Envoy__Config__Listener__V3__Filter **filters = xc_array(&c->arena, 1, sizeof *filters);
    if (!hcm || !rds || !hf || !filters)
        return xc_oom_status(c);
    envoy__extensions__filters__network__http_connection_manager__v3__rds__init(rds);
    rds->route_config_name = XC_RDS_OUTBOUND_HTTP;
    if ((rds->config_source = xc_ads_source(c)) == NULL || (hf[0] = router_filter(c)) == NULL)
        return xc_status(c);
    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__init(hcm);
    hcm->codec_type =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__AUTO;
    hcm->stat_prefix = "outbound_http";
    hcm->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
    hcm->rds = rds;
    hcm->n_http_filters = 1;
    hcm->http_filters = hf;
    /* h2c with prior knowledge is taken only when some service speaks HTTP/2, so a mesh
     * without one keeps today's listener byte for byte. */
    if (xc_mesh_has_h2(c) && (hcm->http2_protocol_options = xc_h2_options(c)) == NULL)
        return xc_status(c);
    if ((filters[0] = net_filter(c, XC_FILTER_HCM, XDS_TYPE_URL_HCM, &hcm->base)) == NULL)
        return xc_status(c);
    return emit_listener(c, "outbound|http", "outbound_http", addr,
                         ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND, filters, 1, NULL, what);
}

int xc_outbound_tcp_listener(xc_ctx *c, const mesh_workload *w, const mesh_tcp_outbound *o)
{
    const char *what = xc_printf(&c->arena, "%s tcp_outbound to %s", xc_where_workload(c, w),
                                 o->service);
    if (what == NULL)
        return xc_oom_status(c);
    Envoy__Config__Core__V3__Address *addr = xc_address(c, o->listen, what);
    if (addr == NULL)
        return xc_status(c);
    char *name = xc_printf(&c->arena, "outbound|tcp|%s", o->service);
    char *stat = xc_printf(&c->arena, "outbound_tcp_%s", o->service);
    char *cluster = xc_printf(&c->arena, "outbound|%s", o->service);
    Envoy__Config__Listener__V3__Filter **filters = xc_array(&c->arena, 1, sizeof *filters);
    if (!name || !stat || !cluster || !filters)
        return xc_oom_status(c);
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = tcp_proxy(c, stat, cluster);
    if (tp == NULL || (filters[0] = net_filter(c, XC_FILTER_TCP_PROXY, XDS_TYPE_URL_TCP_PROXY, &tp->base)) == NULL)
        return xc_status(c);
    return emit_listener(c, name, stat, addr, ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND,
                         filters, 1, NULL, what);
}
