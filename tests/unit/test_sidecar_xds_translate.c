/* tests/unit/test_sidecar_xds_translate.c — xDS resources -> dp_config.
 *
 * Positive cases use what meshd's own compiler emits for a hand-built mesh, so
 * the client and the server agree on the wire shape; negative cases hand-build
 * the protobuf that must be refused (NACKed) and check the message names the
 * resource and the field. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "sidecar/xds_tr_secret.h"
#include "sidecar/xds_translate.h"
#include "test_sidecar_xds_util.h"

/* Translates every compiled table of a snapshot into a frozen dp_config. */
static dp_config *translate_all(const xds_snapshot *s)
{
    dp_config *cfg = dp_config_new();
    cr_assert_not_null(cfg);
    static const enum xdsc_type types[] = {XDSC_CDS, XDSC_EDS, XDSC_LDS, XDSC_RDS};
    for (size_t k = 0; k < 4; k++) {
        const xds_type_set *set = tx_set(s, types[k]);
        for (size_t i = 0; i < set->n; i++) {
            mesh_err err = {0};
            int rc;
            switch (types[k]) {
            case XDSC_CDS: rc = xdsc_translate_cluster(cfg, set->items[i].data, set->items[i].len, &err); break;
            case XDSC_EDS: rc = xdsc_translate_assignment(cfg, set->items[i].data, set->items[i].len, &err); break;
            case XDSC_LDS: rc = xdsc_translate_listener(cfg, set->items[i].data, set->items[i].len, &err); break;
            default: rc = xdsc_translate_route_config(cfg, set->items[i].data, set->items[i].len, &err); break;
            }
            cr_assert_eq(rc, MESH_OK, "%s '%s': %s", xdsc_type_short(types[k]),
                         set->items[i].name, err.msg);
        }
    }
    mesh_err err = {0};
    cr_assert_eq(dp_config_freeze(cfg, &err), MESH_OK, "freeze: %s", err.msg);
    return cfg;
}

Test(sidecar_xds_translate, web_listeners_from_compiled_lds)
{
    xds_snapshot s;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    dp_config *cfg = translate_all(&s);

    cr_assert_eq(dp_config_n_listeners(cfg), 3);
    const dp_listener *in = dp_config_find_listener(cfg, "inbound|15001");
    cr_assert_not_null(in);
    cr_assert_eq(in->kind, DP_LISTENER_INBOUND_HTTP);
    cr_assert_str_eq(in->address, "127.0.0.1:15001");
    cr_assert_str_eq(in->local_cluster, "inbound|web|local");
    /* Nobody may call web: the authorization list has no entry for it. */
    cr_assert_eq(in->n_allowed, 0);

    const dp_listener *out = dp_config_find_listener(cfg, "outbound|http");
    cr_assert_not_null(out);
    cr_assert_eq(out->kind, DP_LISTENER_OUTBOUND_HTTP);
    cr_assert_str_eq(out->address, "127.0.0.1:15101");
    cr_assert_str_eq(out->route_table, "outbound|http");

    const dp_listener *tcp = dp_config_find_listener(cfg, "outbound|tcp|db");
    cr_assert_not_null(tcp);
    cr_assert_eq(tcp->kind, DP_LISTENER_OUTBOUND_TCP);
    cr_assert_str_eq(tcp->address, "127.0.0.1:15201");
    cr_assert_str_eq(tcp->cluster, "outbound|db");
    dp_config_unref(cfg);
    xds_snapshot_free(&s);
}

Test(sidecar_xds_translate, inbound_rbac_allows_exactly_the_authorized_ids)
{
    xds_snapshot s;
    tx_compile(TX_DB_ID, 1, 90, &s);
    dp_config *cfg = translate_all(&s);
    const dp_listener *in = dp_config_find_listener(cfg, "inbound|15004");
    cr_assert_not_null(in);
    cr_assert_eq(in->kind, DP_LISTENER_INBOUND_TCP);
    cr_assert_str_eq(in->local_cluster, "inbound|db|local");
    cr_assert_eq(in->n_allowed, 2);
    int web = 0, api = 0;
    for (size_t i = 0; i < in->n_allowed; i++) {
        web += strcmp(in->allowed_ids[i], TX_WEB_ID) == 0;
        api += strcmp(in->allowed_ids[i], TX_API_ID) == 0;
    }
    cr_assert(web == 1 && api == 1);
    dp_config_unref(cfg);
    xds_snapshot_free(&s);

    tx_compile(TX_API_ID, 1, 90, &s);
    cfg = translate_all(&s);
    /* Two workloads share the api identity: two inbound HTTP listeners. */
    const dp_listener *v1 = dp_config_find_listener(cfg, "inbound|15002");
    cr_assert_not_null(v1);
    cr_assert_eq(v1->kind, DP_LISTENER_INBOUND_HTTP);
    cr_assert_eq(v1->n_allowed, 1);
    cr_assert_str_eq(v1->allowed_ids[0], TX_WEB_ID);
    dp_config_unref(cfg);
    xds_snapshot_free(&s);
}

Test(sidecar_xds_translate, clusters_and_endpoints)
{
    xds_snapshot s;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    dp_config *cfg = translate_all(&s);

    const dp_cluster *local = dp_config_find_cluster(cfg, "inbound|web|local", NULL);
    cr_assert_not_null(local);
    cr_assert(!local->tls);
    cr_assert(!local->eds);
    cr_assert_eq(local->n_endpoints, 1);
    cr_assert_str_eq(local->endpoints[0].address, "127.0.0.1:18080");

    const dp_cluster *v1 = dp_config_find_cluster(cfg, "outbound|api-v1", NULL);
    cr_assert_not_null(v1);
    cr_assert(v1->tls);
    cr_assert(v1->eds);
    cr_assert_eq(v1->lb, DP_LB_LEAST_REQUEST);
    cr_assert_eq(v1->connect_timeout_ms, 500);
    cr_assert_eq(v1->n_san, 1);
    cr_assert_str_eq(v1->san_ids[0], TX_API_ID);
    size_t n = 0;
    const dp_endpoint *ep = dp_config_cluster_endpoints(cfg, v1, &n);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ep[0].address, "127.0.0.1:15002");

    const dp_cluster *db = dp_config_find_cluster(cfg, "outbound|db", NULL);
    cr_assert_not_null(db);
    cr_assert_eq(db->lb, DP_LB_ROUND_ROBIN);
    ep = dp_config_cluster_endpoints(cfg, db, &n);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ep[0].address, "127.0.0.1:15004");

    xdsc_names rds = {0}, eds = {0};
    cr_assert_eq(xdsc_config_rds_names(cfg, &rds, NULL), MESH_OK);
    cr_assert_eq(xdsc_config_eds_names(cfg, &eds, NULL), MESH_OK);
    cr_assert_eq(rds.n, 1);
    cr_assert_str_eq(rds.v[0], "outbound|http");
    cr_assert(xdsc_names_contains(&eds, "outbound|api-v1"));
    cr_assert(xdsc_names_contains(&eds, "outbound|api-v2"));
    cr_assert(xdsc_names_contains(&eds, "outbound|db"));
    cr_assert(!xdsc_names_contains(&eds, "inbound|web|local"));
    xdsc_names_free(&rds);
    xdsc_names_free(&eds);
    dp_config_unref(cfg);
    xds_snapshot_free(&s);
}

Test(sidecar_xds_translate, routes_weights_headers_timeouts_retries)
{
    xds_snapshot s;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    dp_config *cfg = translate_all(&s);
    const dp_route_table *rt = dp_config_find_route_table(cfg, "outbound|http");
    cr_assert_not_null(rt);
    const dp_virtual_host *api = NULL;
    for (size_t i = 0; i < rt->n_vhosts; i++)
        for (size_t d = 0; d < rt->vhosts[i].n_domains; d++)
            if (strcmp(rt->vhosts[i].domains[d], "api") == 0)
                api = &rt->vhosts[i];
    cr_assert_not_null(api, "no virtual host for 'api'");
    cr_assert_eq(api->n_routes, 2);
    const dp_route *canary = &api->routes[0];
    cr_assert_eq(canary->path_kind, DP_PATH_PREFIX);
    cr_assert_str_eq(canary->path, "/");
    cr_assert_eq(canary->n_headers, 1);
    cr_assert_str_eq(canary->headers[0].name, "x-canary");
    cr_assert_eq(canary->headers[0].kind, DP_HDR_EXACT);
    cr_assert_str_eq(canary->headers[0].value, "1");
    cr_assert_eq(canary->timeout_ms, 2000);
    cr_assert_eq(canary->retries, 2);
    cr_assert_eq(canary->n_clusters, 1);
    cr_assert_str_eq(canary->clusters[0].cluster, "outbound|api-v2");

    const dp_route *split = &api->routes[1];
    cr_assert_eq(split->n_headers, 0);
    cr_assert_eq(split->n_clusters, 2);
    uint32_t w1 = 0, w2 = 0;
    for (size_t i = 0; i < 2; i++) {
        if (strcmp(split->clusters[i].cluster, "outbound|api-v1") == 0)
            w1 = split->clusters[i].weight;
        if (strcmp(split->clusters[i].cluster, "outbound|api-v2") == 0)
            w2 = split->clusters[i].weight;
    }
    cr_assert_eq(w1, 90);
    cr_assert_eq(w2, 10);
    cr_assert_eq(split->timeout_ms, DP_DEFAULT_ROUTE_TIMEOUT_MS);
    dp_config_unref(cfg);
    xds_snapshot_free(&s);
}

/* ---- hand-built resources: what must be refused ------------------------------------ */

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter HttpFilter;

/* An outbound HTTP listener: HCM(rds "outbound|http", [router]) on addr:port. */
typedef struct listener_parts {
    Envoy__Config__Listener__V3__Listener l;
    Envoy__Config__Core__V3__Address addr;
    Envoy__Config__Core__V3__SocketAddress sa;
    Envoy__Config__Listener__V3__FilterChain fc, *fcs[1];
    Envoy__Config__Listener__V3__Filter f, *fs[2];
    Envoy__Config__Listener__V3__Filter extra;
    Google__Protobuf__Any hcm_any, extra_any;
    Hcm hcm;
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds rds;
    HttpFilter router, *hfs[2];
    HttpFilter hf_extra;
    Google__Protobuf__Any router_any, hf_extra_any;
    Envoy__Extensions__Filters__Http__Router__V3__Router r;
    uint8_t *bufs[4];
} listener_parts;

static void lp_init(listener_parts *p, const char *ip, uint32_t port)
{
    memset(p, 0, sizeof *p);
    envoy__config__listener__v3__listener__init(&p->l);
    p->l.name = "outbound|http";
    envoy__config__core__v3__address__init(&p->addr);
    envoy__config__core__v3__socket_address__init(&p->sa);
    p->sa.address = (char *)ip;
    p->sa.port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    p->sa.port_value = port;
    p->addr.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    p->addr.socket_address = &p->sa;
    p->l.address = &p->addr;

    envoy__extensions__filters__http__router__v3__router__init(&p->r);
    size_t len;
    p->bufs[0] = tx_pack(&p->r.base, &len);
    google__protobuf__any__init(&p->router_any);
    p->router_any.type_url = XDS_TYPE_URL_ROUTER;
    p->router_any.value.data = p->bufs[0];
    p->router_any.value.len = len;
    envoy__extensions__filters__network__http_connection_manager__v3__http_filter__init(&p->router);
    p->router.name = "envoy.filters.http.router";
    p->router.config_type_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    p->router.typed_config = &p->router_any;
    p->hfs[0] = &p->router;

    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__init(&p->hcm);
    envoy__extensions__filters__network__http_connection_manager__v3__rds__init(&p->rds);
    p->rds.route_config_name = "outbound|http";
    p->hcm.route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
    p->hcm.rds = &p->rds;
    p->hcm.http_filters = p->hfs;
    p->hcm.n_http_filters = 1;

    envoy__config__listener__v3__filter__init(&p->f);
    p->f.name = "envoy.filters.network.http_connection_manager";
    p->f.config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    google__protobuf__any__init(&p->hcm_any);
    p->hcm_any.type_url =
        XDS_TYPE_URL_HCM;
    p->f.typed_config = &p->hcm_any;
    p->fs[0] = &p->f;
    envoy__config__listener__v3__filter_chain__init(&p->fc);
    p->fc.filters = p->fs;
    p->fc.n_filters = 1;
    p->fcs[0] = &p->fc;
    p->l.filter_chains = p->fcs;
    p->l.n_filter_chains = 1;
}

/* Packs the HCM into its Any, then the listener. */
static uint8_t *lp_pack(listener_parts *p, size_t *len)
{
    size_t hl;
    free(p->bufs[1]);
    p->bufs[1] = tx_pack(&p->hcm.base, &hl);
    p->hcm_any.value.data = p->bufs[1];
    p->hcm_any.value.len = hl;
    return tx_pack(&p->l.base, len);
}

static void lp_free(listener_parts *p)
{
    for (int i = 0; i < 4; i++)
        free(p->bufs[i]);
}

/* Translation + freeze of one listener; returns the status, message in err. */
static int try_listener(listener_parts *p, mesh_err *err)
{
    size_t len;
    uint8_t *buf = lp_pack(p, &len);
    dp_config *cfg = dp_config_new();
    int rc = xdsc_translate_listener(cfg, buf, len, err);
    if (rc == MESH_OK)
        rc = dp_config_freeze(cfg, err);
    dp_config_unref(cfg);
    free(buf);
    return rc;
}

Test(sidecar_xds_translate, handbuilt_outbound_listener_is_accepted)
{
    listener_parts p;
    lp_init(&p, "127.0.0.1", 15101);
    mesh_err err = {0};
    cr_assert_eq(try_listener(&p, &err), MESH_OK, "%s", err.msg);
    lp_free(&p);
}

Test(sidecar_xds_translate, unknown_network_filter_is_refused)
{
    listener_parts p;
    lp_init(&p, "127.0.0.1", 15101);
    /* A filter in front of the HCM whose type we do not implement. */
    envoy__config__listener__v3__filter__init(&p.extra);
    p.extra.name = "envoy.filters.network.ext_authz";
    p.extra.config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    google__protobuf__any__init(&p.extra_any);
    p.extra_any.type_url = XDS_TYPE_URL_PREFIX "envoy.extensions.filters.network.ext_authz.v3.ExtAuthz";
    p.extra.typed_config = &p.extra_any;
    p.fs[0] = &p.extra;
    p.fs[1] = &p.f;
    p.fc.n_filters = 2;
    mesh_err err = {0};
    cr_assert_eq(try_listener(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "listener 'outbound|http'") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "ext_authz") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "unsupported network filter type") != NULL, "%s", err.msg);
    lp_free(&p);
}

Test(sidecar_xds_translate, unknown_required_http_filter_is_refused_optional_is_skipped)
{
    listener_parts p;
    lp_init(&p, "127.0.0.1", 15101);
    envoy__extensions__filters__network__http_connection_manager__v3__http_filter__init(&p.hf_extra);
    p.hf_extra.name = "envoy.filters.http.lua";
    p.hf_extra.config_type_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    google__protobuf__any__init(&p.hf_extra_any);
    p.hf_extra_any.type_url = XDS_TYPE_URL_PREFIX "envoy.extensions.filters.http.lua.v3.Lua";
    p.hf_extra.typed_config = &p.hf_extra_any;
    p.hfs[0] = &p.hf_extra;
    p.hfs[1] = &p.router;
    p.hcm.n_http_filters = 2;
    mesh_err err = {0};
    cr_assert_eq(try_listener(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "unsupported http filter type") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "envoy.filters.http.lua") != NULL, "%s", err.msg);

    p.hf_extra.is_optional = 1;
    cr_assert_eq(try_listener(&p, &err), MESH_OK, "%s", err.msg);
    lp_free(&p);
}

Test(sidecar_xds_translate, router_must_be_last)
{
    listener_parts p;
    lp_init(&p, "127.0.0.1", 15101);
    p.hcm.n_http_filters = 0;
    mesh_err err = {0};
    cr_assert_eq(try_listener(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "must end with the router") != NULL, "%s", err.msg);
    lp_free(&p);
}

Test(sidecar_xds_translate, bad_addresses_are_refused)
{
    listener_parts p;
    mesh_err err = {0};
    lp_init(&p, "127.0.0.1", 99999);
    cr_assert_eq(try_listener(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "outbound|http") != NULL, "%s", err.msg);
    lp_free(&p);

    /* RFC 6761: .invalid never resolves. */
    lp_init(&p, "no-such-host.invalid", 15101);
    cr_assert_eq(try_listener(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "cannot resolve 'no-such-host.invalid'") != NULL, "%s", err.msg);
    lp_free(&p);

    lp_init(&p, "", 15101);
    cr_assert_eq(try_listener(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "empty address") != NULL, "%s", err.msg);
    lp_free(&p);

    lp_init(&p, "127.0.0.1", 15101);
    p.sa.port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_NAMED_PORT;
    p.sa.named_port = "http";
    cr_assert_eq(try_listener(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "named ports") != NULL, "%s", err.msg);
    lp_free(&p);

    lp_init(&p, "127.0.0.1", 15101);
    p.l.address = NULL;
    cr_assert_eq(try_listener(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "missing socket_address") != NULL, "%s", err.msg);
    lp_free(&p);
}

Test(sidecar_xds_translate, outbound_http_needs_rds_and_one_chain)
{
    listener_parts p;
    mesh_err err = {0};
    lp_init(&p, "127.0.0.1", 15101);
    p.hcm.route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER__NOT_SET;
    cr_assert_eq(try_listener(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "rds.route_config_name") != NULL, "%s", err.msg);
    lp_free(&p);

    lp_init(&p, "127.0.0.1", 15101);
    p.l.n_filter_chains = 0;
    cr_assert_eq(try_listener(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "exactly one filter chain") != NULL, "%s", err.msg);
    lp_free(&p);

    lp_init(&p, "127.0.0.1", 15101);
    p.fc.n_filters = 0;
    cr_assert_eq(try_listener(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "no terminal filter") != NULL, "%s", err.msg);
    lp_free(&p);
}

Test(sidecar_xds_translate, damaged_bytes_do_not_decode)
{
    static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    dp_config *cfg = dp_config_new();
    mesh_err err = {0};
    cr_assert_eq(xdsc_translate_listener(cfg, junk, sizeof junk, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "does not decode") != NULL, "%s", err.msg);
    cr_assert_eq(xdsc_translate_cluster(cfg, junk, sizeof junk, &err), MESH_EINVAL);
    cr_assert_eq(xdsc_translate_route_config(cfg, junk, sizeof junk, &err), MESH_EINVAL);
    cr_assert_eq(xdsc_translate_assignment(cfg, junk, sizeof junk, &err), MESH_EINVAL);
    cr_assert_eq(dp_config_n_listeners(cfg), 0);
    dp_config_unref(cfg);
}

/* A cluster with one STATIC endpoint. */
typedef struct cluster_parts {
    Envoy__Config__Cluster__V3__Cluster c;
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment la;
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints lle, *lles[1];
    Envoy__Config__Endpoint__V3__LbEndpoint le, *les[1];
    Envoy__Config__Endpoint__V3__Endpoint ep;
    Envoy__Config__Core__V3__Address addr;
    Envoy__Config__Core__V3__SocketAddress sa;
} cluster_parts;

static void cp_init(cluster_parts *p)
{
    memset(p, 0, sizeof *p);
    envoy__config__cluster__v3__cluster__init(&p->c);
    p->c.name = "inbound|x|local";
    envoy__config__endpoint__v3__cluster_load_assignment__init(&p->la);
    p->la.cluster_name = "inbound|x|local";
    envoy__config__endpoint__v3__locality_lb_endpoints__init(&p->lle);
    envoy__config__endpoint__v3__lb_endpoint__init(&p->le);
    envoy__config__endpoint__v3__endpoint__init(&p->ep);
    envoy__config__core__v3__address__init(&p->addr);
    envoy__config__core__v3__socket_address__init(&p->sa);
    p->sa.address = "127.0.0.1";
    p->sa.port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    p->sa.port_value = 8080;
    p->addr.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    p->addr.socket_address = &p->sa;
    p->ep.address = &p->addr;
    p->le.host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
    p->le.endpoint = &p->ep;
    p->les[0] = &p->le;
    p->lle.lb_endpoints = p->les;
    p->lle.n_lb_endpoints = 1;
    p->lles[0] = &p->lle;
    p->la.endpoints = p->lles;
    p->la.n_endpoints = 1;
    p->c.load_assignment = &p->la;
}

static int try_cluster(cluster_parts *p, mesh_err *err)
{
    size_t len;
    uint8_t *buf = tx_pack(&p->c.base, &len);
    dp_config *cfg = dp_config_new();
    int rc = xdsc_translate_cluster(cfg, buf, len, err);
    if (rc == MESH_OK)
        rc = dp_config_freeze(cfg, err);
    dp_config_unref(cfg);
    free(buf);
    return rc;
}

Test(sidecar_xds_translate, host_names_are_resolved_off_the_request_path)
{
    cluster_parts p;
    cp_init(&p);
    p.sa.address = "localhost";
    size_t len;
    uint8_t *buf = tx_pack(&p.c.base, &len);
    dp_config *cfg = dp_config_new();
    mesh_err err = {0};
    cr_assert_eq(xdsc_translate_cluster(cfg, buf, len, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(dp_config_freeze(cfg, &err), MESH_OK, "%s", err.msg);
    const dp_cluster *c = dp_config_find_cluster(cfg, "inbound|x|local", NULL);
    cr_assert_not_null(c);
    cr_assert_str_eq(c->endpoints[0].address, "127.0.0.1:8080", "IPv4 preferred for localhost");
    dp_config_unref(cfg);
    free(buf);

    cp_init(&p);
    p.sa.address = "::1";
    buf = tx_pack(&p.c.base, &len);
    cfg = dp_config_new();
    cr_assert_eq(xdsc_translate_cluster(cfg, buf, len, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(dp_config_cluster_at(cfg, 0)->endpoints[0].address, "[::1]:8080");
    dp_config_unref(cfg);
    free(buf);
}

Test(sidecar_xds_translate, clusters_we_cannot_serve_are_refused)
{
    cluster_parts p;
    mesh_err err = {0};
    cp_init(&p);
    cr_assert_eq(try_cluster(&p, &err), MESH_OK, "%s", err.msg);

    p.c.cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    p.c.type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS;
    cr_assert_eq(try_cluster(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "cluster 'inbound|x|local'") && strstr(err.msg, "discovery type"),
              "%s", err.msg);

    cp_init(&p);
    p.c.lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV;
    cr_assert_eq(try_cluster(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "lb_policy") != NULL, "%s", err.msg);

    cp_init(&p);
    p.sa.port_value = 70000;
    cr_assert_eq(try_cluster(&p, &err), MESH_EINVAL);

    cp_init(&p);
    p.lle.priority = 1;
    cr_assert_eq(try_cluster(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "priority") != NULL, "%s", err.msg);

    cp_init(&p);
    p.c.load_assignment = NULL;
    cr_assert_eq(try_cluster(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "without endpoints") != NULL, "%s", err.msg);
}

Test(sidecar_xds_translate, upstream_tls_must_use_our_sds_secrets)
{
    cluster_parts p;
    cp_init(&p);
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig cert =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SDS_SECRET_CONFIG__INIT;
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *certs[] = {&cert};
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig root =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SDS_SECRET_CONFIG__INIT;
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext common =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__INIT;
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext up =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__UPSTREAM_TLS_CONTEXT__INIT;
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    Envoy__Config__Core__V3__TransportSocket ts = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__INIT;
    cert.name = "default";
    root.name = "ROOTCA";
    common.tls_certificate_sds_secret_configs = certs;
    common.n_tls_certificate_sds_secret_configs = 1;
    common.validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
    common.validation_context_sds_secret_config = &root;
    up.common_tls_context = &common;
    any.type_url = XDS_TYPE_URL_UPSTREAM_TLS;
    ts.name = "envoy.transport_sockets.tls";
    ts.config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts.typed_config = &any;
    p.c.transport_socket = &ts;

    mesh_err err = {0};
    size_t len;
    any.value.data = tx_pack(&up.base, &len);
    any.value.len = len;
    cr_assert_eq(try_cluster(&p, &err), MESH_OK, "%s", err.msg);
    free(any.value.data);

    cert.name = "some-other-secret";
    any.value.data = tx_pack(&up.base, &len);
    any.value.len = len;
    cr_assert_eq(try_cluster(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "some-other-secret") != NULL, "%s", err.msg);
    free(any.value.data);

    cert.name = "default";
    common.validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE__NOT_SET;
    any.value.data = tx_pack(&up.base, &len);
    any.value.len = len;
    cr_assert_eq(try_cluster(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "no peer validation") != NULL, "%s", err.msg);
    free(any.value.data);

    /* TLS 1.2 as the maximum: the data plane would silently do 1.3. */
    Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters tp =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__INIT;
    tp.tls_maximum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_2;
    common.tls_params = &tp;
    common.validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
    any.value.data = tx_pack(&up.base, &len);
    any.value.len = len;
    cr_assert_eq(try_cluster(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "TLS 1.3") != NULL, "%s", err.msg);
    free(any.value.data);
    tp.tls_maximum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3;
    tp.tls_minimum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3;
    any.value.data = tx_pack(&up.base, &len);
    any.value.len = len;
    cr_assert_eq(try_cluster(&p, &err), MESH_OK, "TLS 1.3 only is what meshd sends: %s", err.msg);
    free(any.value.data);

    /* The wrong typed_config type on the transport socket. */
    common.validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
    any.type_url = XDS_TYPE_URL_DOWNSTREAM_TLS;
    any.value.data = tx_pack(&up.base, &len);
    any.value.len = len;
    cr_assert_eq(try_cluster(&p, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "expected type") != NULL, "%s", err.msg);
    free(any.value.data);
}

Test(sidecar_xds_translate, route_features_we_do_not_implement_are_refused)
{
    Envoy__Config__Route__V3__RouteAction act = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__INIT;
    Envoy__Config__Route__V3__RouteMatch m = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__INIT;
    Envoy__Config__Route__V3__Route r = ENVOY__CONFIG__ROUTE__V3__ROUTE__INIT, *rs[] = {&r};
    Envoy__Config__Route__V3__VirtualHost vh = ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__INIT, *vhs[] = {&vh};
    Envoy__Config__Route__V3__RouteConfiguration rc = ENVOY__CONFIG__ROUTE__V3__ROUTE_CONFIGURATION__INIT;
    static char *domains[] = {"*"};
    m.path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
    m.prefix = "/";
    act.cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
    act.cluster = "outbound|x";
    r.match = &m;
    r.action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    r.route = &act;
    vh.name = "all";
    vh.domains = domains;
    vh.n_domains = 1;
    vh.routes = rs;
    vh.n_routes = 1;
    rc.name = "outbound|http";
    rc.virtual_hosts = vhs;
    rc.n_virtual_hosts = 1;

    mesh_err err = {0};
    size_t len;
    uint8_t *buf;
    dp_config *cfg;
#define TRY(expect)                                                                         \
    do {                                                                                    \
        buf = tx_pack(&rc.base, &len);                                                      \
        cfg = dp_config_new();                                                              \
        int rc_ = xdsc_translate_route_config(cfg, buf, len, &err);                         \
        if (rc_ == MESH_OK)                                                                 \
            rc_ = dp_config_freeze(cfg, &err);                                              \
        cr_assert_eq(rc_, expect, "%s", err.msg);                                           \
        dp_config_unref(cfg);                                                               \
        free(buf);                                                                          \
    } while (0)
    TRY(MESH_OK);
    act.prefix_rewrite = "/v2";
    TRY(MESH_EINVAL);
    cr_assert(strstr(err.msg, "prefix_rewrite") && strstr(err.msg, "route_config 'outbound|http'"),
              "%s", err.msg);
    act.prefix_rewrite = "";
    m.path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH_SEPARATED_PREFIX;
    m.path_separated_prefix = "/a";
    TRY(MESH_EINVAL);
    m.path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
    act.cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER_HEADER;
    act.cluster_header = "x-cluster";
    TRY(MESH_EINVAL);
    cr_assert(strstr(err.msg, "cluster_header") != NULL, "%s", err.msg);
    act.cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
    vh.n_domains = 0;
    TRY(MESH_EINVAL);
    cr_assert(strstr(err.msg, "no domains") != NULL, "%s", err.msg);
    vh.n_domains = 1;
    r.action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION__NOT_SET;
    TRY(MESH_EINVAL);
    r.action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    TRY(MESH_OK);
#undef TRY
}

/* ---- RBAC shapes -------------------------------------------------------------------------- */

#include "sidecar/xds_translate_internal.h"

Test(sidecar_xds_translate, rbac_only_allow_lists_of_spiffe_ids)
{
    Envoy__Type__Matcher__V3__StringMatcher sm = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__INIT;
    Envoy__Config__Rbac__V3__Principal__Authenticated au =
        ENVOY__CONFIG__RBAC__V3__PRINCIPAL__AUTHENTICATED__INIT;
    Envoy__Config__Rbac__V3__Principal pr = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__INIT, *prs[] = {&pr};
    Envoy__Config__Rbac__V3__Permission pe = ENVOY__CONFIG__RBAC__V3__PERMISSION__INIT, *pes[] = {&pe};
    Envoy__Config__Rbac__V3__Policy pol = ENVOY__CONFIG__RBAC__V3__POLICY__INIT;
    Envoy__Config__Rbac__V3__RBAC__PoliciesEntry ent =
        ENVOY__CONFIG__RBAC__V3__RBAC__POLICIES_ENTRY__INIT, *ents[] = {&ent};
    Envoy__Config__Rbac__V3__RBAC rules = ENVOY__CONFIG__RBAC__V3__RBAC__INIT;
    sm.match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
    sm.exact = TX_WEB_ID;
    au.principal_name = &sm;
    pr.identifier_case = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AUTHENTICATED;
    pr.authenticated = &au;
    pe.rule_case = ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_ANY;
    pe.any = 1;
    pol.permissions = pes;
    pol.n_permissions = 1;
    pol.principals = prs;
    pol.n_principals = 1;
    ent.key = "allow";
    ent.value = &pol;
    rules.policies = ents;
    rules.n_policies = 1;

    xdsc_names ids = {0};
    mesh_err err = {0};
    cr_assert_eq(xdsc_tr_rbac(&rules, "t", &ids, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ids.n, 1);
    cr_assert_str_eq(ids.v[0], TX_WEB_ID);
    xdsc_names_free(&ids);

    cr_assert_eq(xdsc_tr_rbac(NULL, "t", &ids, &err), MESH_EINVAL);
    rules.action = ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY;
    cr_assert_eq(xdsc_tr_rbac(&rules, "t", &ids, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "ALLOW") != NULL, "%s", err.msg);
    rules.action = ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW;

    sm.match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX;
    sm.prefix = "spiffe://example.org/";
    cr_assert_eq(xdsc_tr_rbac(&rules, "t", &ids, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "policy 'allow'") != NULL, "%s", err.msg);
    sm.match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;

    pr.identifier_case = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_ANY;
    pr.any = 1;
    cr_assert_eq(xdsc_tr_rbac(&rules, "t", &ids, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "'any'") != NULL, "%s", err.msg);
    pr.identifier_case = ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AUTHENTICATED;

    pe.rule_case = ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_DESTINATION_PORT;
    pe.destination_port = 80;
    cr_assert_eq(xdsc_tr_rbac(&rules, "t", &ids, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "permissions") != NULL, "%s", err.msg);
    xdsc_names_free(&ids);

    /* No policies at all: allow nobody (deny all), not an error. */
    pe.rule_case = ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_ANY;
    rules.n_policies = 0;
    cr_assert_eq(xdsc_tr_rbac(&rules, "t", &ids, &err), MESH_OK);
    cr_assert_eq(ids.n, 0);
}

/* ---- SDS secrets ------------------------------------------------------------------------ */

static uint8_t *pack_secret(const char *name, int tls, const char *pem, int with_key, size_t *len)
{
    Envoy__Extensions__TransportSockets__Tls__V3__Secret s =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT;
    Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate tc =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_CERTIFICATE__INIT;
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext vc =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__INIT;
    Envoy__Config__Core__V3__DataSource ds = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT;
    Envoy__Config__Core__V3__DataSource key = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT;
    ds.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
    ds.inline_bytes.data = (uint8_t *)pem;
    ds.inline_bytes.len = strlen(pem);
    key.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
    key.inline_string = "-----BEGIN PRIVATE KEY-----";
    s.name = (char *)name;
    if (tls) {
        tc.certificate_chain = &ds;
        if (with_key)
            tc.private_key = &key;
        s.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE;
        s.tls_certificate = &tc;
    } else {
        vc.trusted_ca = &ds;
        s.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT;
        s.validation_context = &vc;
    }
    return tx_pack(&s.base, len);
}

Test(sidecar_xds_translate, secrets_shapes)
{
    size_t len;
    xdsc_secret s;
    mesh_err err = {0};
    uint8_t *b = pack_secret("default", 1, "-----BEGIN CERTIFICATE-----\n", 0, &len);
    cr_assert_eq(xdsc_secret_parse(b, len, &s, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(s.name, "default");
    cr_assert_not_null(s.chain_pem);
    cr_assert_null(s.bundle_pem);
    xdsc_secret_free(&s);
    free(b);

    b = pack_secret("ROOTCA", 0, "-----BEGIN CERTIFICATE-----\n", 0, &len);
    cr_assert_eq(xdsc_secret_parse(b, len, &s, &err), MESH_OK, "%s", err.msg);
    cr_assert_not_null(s.bundle_pem);
    xdsc_secret_free(&s);
    free(b);

    /* meshd never has our key: a secret carrying one is refused. */
    b = pack_secret("default", 1, "-----BEGIN CERTIFICATE-----\n", 1, &len);
    cr_assert_eq(xdsc_secret_parse(b, len, &s, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "private key") != NULL, "%s", err.msg);
    free(b);

    b = pack_secret("default", 0, "x", 0, &len);
    cr_assert_eq(xdsc_secret_parse(b, len, &s, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "tls_certificate") != NULL, "%s", err.msg);
    free(b);

    b = pack_secret("spiffe://example.org/ns/default/sa/other", 1, "x", 0, &len);
    cr_assert_eq(xdsc_secret_parse(b, len, &s, &err), MESH_EINVAL);
    free(b);

    b = pack_secret("ROOTCA", 0, "", 0, &len);
    cr_assert_eq(xdsc_secret_parse(b, len, &s, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "empty") != NULL, "%s", err.msg);
    free(b);
}

Test(sidecar_xds_translate, resource_from_any_checks_type_and_name)
{
    xds_snapshot s;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    const xds_resource *l = &s.types[XDS_LDS].items[0];
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = XDS_TYPE_URL_LISTENER;
    any.value.data = l->data;
    any.value.len = l->len;
    xdsc_resource r;
    mesh_err err = {0};
    cr_assert_eq(xdsc_resource_from_any(XDSC_LDS, &any, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(r.name, l->name);
    cr_assert_eq(r.len, l->len);
    free(r.name);
    free(r.data);
    cr_assert_eq(xdsc_resource_from_any(XDSC_CDS, &any, &r, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "CDS response") != NULL, "%s", err.msg);
    any.type_url = XDS_TYPE_URL_CLUSTER;
    static const uint8_t noname[] = {0x10, 0x03}; /* Cluster{type: EDS}, no name */
    any.value.data = (uint8_t *)noname;
    any.value.len = sizeof noname;
    cr_assert_eq(xdsc_resource_from_any(XDSC_CDS, &any, &r, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "without a name") != NULL, "%s", err.msg);
    xds_snapshot_free(&s);
}
