/* tests/unit/test_sidecar_xds_h2.c — HTTP/2 shapes between meshd's compiler and the sidecar's
 * translator (sds/compiler/xds_compile_h2.c, sidecar/xds_tr_h2.c): a mesh with grpc/http2
 * services compiles to listeners and clusters the translator reads back as HTTP/2 with the
 * SETTINGS numbers meshd sent; a mesh without one is unchanged; hand-built shapes the data
 * plane cannot serve are refused with a message naming the field. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/protocol.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "sds/compiler/xds_compile.h"
#include "sidecar/xds_translate.h"
#include "test_sidecar_xds_util.h"
#include "test_xds_compile_fixture.h"

typedef Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions Hpo;
typedef Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry ExtEntry;

static dp_config *compile_translate(const mesh_config *mc, const char *id)
{
    xds_snapshot s;
    mesh_err err = {0};
    cr_assert_eq(xds_compile_node(mc, id, &s, &err), MESH_OK, "%s", err.msg);
    dp_config *cfg = dp_config_new();
    static const enum xdsc_type types[] = {XDSC_CDS, XDSC_EDS, XDSC_LDS, XDSC_RDS};
    for (size_t k = 0; k < 4; k++) {
        const xds_type_set *set = tx_set(&s, types[k]);
        for (size_t i = 0; i < set->n; i++) {
            const uint8_t *d = set->items[i].data;
            size_t n = set->items[i].len;
            int rc;
            switch (types[k]) {
            case XDSC_CDS: rc = xdsc_translate_cluster(cfg, d, n, &err); break;
            case XDSC_EDS: rc = xdsc_translate_assignment(cfg, d, n, &err); break;
            case XDSC_LDS: rc = xdsc_translate_listener(cfg, d, n, &err); break;
            default: rc = xdsc_translate_route_config(cfg, d, n, &err); break;
            }
            cr_assert_eq(rc, MESH_OK, "%s: %s", set->items[i].name, err.msg);
        }
    }
    cr_assert_eq(dp_config_freeze(cfg, &err), MESH_OK, "%s", err.msg);
    xds_snapshot_free(&s);
    return cfg;
}

static void assert_h2(const dp_h2_cfg *h, const char *what)
{
    cr_assert(h->enabled, "%s: HTTP/2", what);
    cr_assert_eq(h->max_concurrent_streams, 100, "%s", what);
    cr_assert_eq(h->stream_window, 65536, "%s", what);
    cr_assert_eq(h->connection_window, 1048576, "%s", what);
}

Test(sidecar_xds_h2, grpc_services_read_back_as_http2)
{
    xds_fixture f;
    xds_fixture_init(&f);
    f.services[0].protocol = MESH_PROTO_GRPC;   /* web */
    f.services[1].protocol = MESH_PROTO_HTTP2;  /* reviews */
    dp_config *cfg = compile_translate(&f.cfg, FX_WEB_ID);
    assert_h2(&dp_config_find_listener(cfg, "outbound|http")->h2, "outbound listener");
    assert_h2(&dp_config_find_listener(cfg, "inbound|15001")->h2, "web inbound");
    cr_assert(!dp_config_find_listener(cfg, "outbound|tcp|db")->h2.enabled);
    assert_h2(&dp_config_find_cluster(cfg, "outbound|reviews", NULL)->h2, "outbound|reviews");
    assert_h2(&dp_config_find_cluster(cfg, "inbound|web|local", NULL)->h2, "local app");
    cr_assert(!dp_config_find_cluster(cfg, "outbound|db", NULL)->h2.enabled, "tcp stays tcp");
    dp_config_unref(cfg);

    /* db's sidecar: only the TCP service; a mesh with h2 services still gives its
     * outbound-less node nothing HTTP/2. */
    cfg = compile_translate(&f.cfg, FX_DB_ID);
    cr_assert(!dp_config_find_listener(cfg, "inbound|15003")->h2.enabled);
    dp_config_unref(cfg);
}

Test(sidecar_xds_h2, plain_http_mesh_has_no_http2)
{
    xds_fixture f;
    xds_fixture_init(&f);
    dp_config *cfg = compile_translate(&f.cfg, FX_WEB_ID);
    for (size_t i = 0; i < dp_config_n_listeners(cfg); i++)
        cr_assert(!dp_config_listener_at(cfg, i)->h2.enabled, "%s",
                  dp_config_listener_at(cfg, i)->name);
    for (size_t i = 0; i < dp_config_n_clusters(cfg); i++)
        cr_assert(!dp_config_cluster_at(cfg, i)->h2.enabled, "%s",
                  dp_config_cluster_at(cfg, i)->name);
    dp_config_unref(cfg);
}

/* ---- hand-built clusters -------------------------------------------------------------- */

typedef struct hcl {
    Envoy__Config__Cluster__V3__Cluster c;
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment la;
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints lle, *lles[1];
    Envoy__Config__Endpoint__V3__LbEndpoint le, *les[1];
    Envoy__Config__Endpoint__V3__Endpoint ep;
    Envoy__Config__Core__V3__Address addr;
    Envoy__Config__Core__V3__SocketAddress sa;
    ExtEntry e, *es[1];
    Google__Protobuf__Any any;
    Hpo hpo;
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__ExplicitHttpConfig ex;
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__AutoHttpConfig au;
    Envoy__Config__Core__V3__Http2ProtocolOptions h2;
    Google__Protobuf__UInt32Value win;
} hcl;

static void hcl_init(hcl *p)
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

    envoy__config__core__v3__http2_protocol_options__init(&p->h2);
    envoy__extensions__upstreams__http__v3__http_protocol_options__explicit_http_config__init(&p->ex);
    p->ex.protocol_config_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS;
    p->ex.http2_protocol_options = &p->h2;
    envoy__extensions__upstreams__http__v3__http_protocol_options__auto_http_config__init(&p->au);
    envoy__extensions__upstreams__http__v3__http_protocol_options__init(&p->hpo);
    p->hpo.upstream_protocol_options_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG;
    p->hpo.explicit_http_config = &p->ex;
    google__protobuf__uint32_value__init(&p->win);
    envoy__config__cluster__v3__cluster__typed_extension_protocol_options_entry__init(&p->e);
    p->e.key = XDS_EXT_HTTP_PROTOCOL_OPTIONS;
    google__protobuf__any__init(&p->any);
    p->any.type_url = XDS_TYPE_URL_HTTP_PROTOCOL_OPTIONS;
    p->e.value = &p->any;
    p->es[0] = &p->e;
    p->c.typed_extension_protocol_options = p->es;
    p->c.n_typed_extension_protocol_options = 1;
}

/* Translates the cluster; on success *h2 is what the data plane took. */
static int hcl_try(hcl *p, dp_h2_cfg *h2, mesh_err *err)
{
    size_t hl, len;
    uint8_t *hb = tx_pack(&p->hpo.base, &hl);
    p->any.value.data = hb;
    p->any.value.len = hl;
    uint8_t *buf = tx_pack(&p->c.base, &len);
    dp_config *cfg = dp_config_new();
    int rc = xdsc_translate_cluster(cfg, buf, len, err);
    if (rc == MESH_OK)
        rc = dp_config_freeze(cfg, err);
    if (rc == MESH_OK && h2)
        *h2 = dp_config_cluster_at(cfg, 0)->h2;
    dp_config_unref(cfg);
    free(buf);
    free(hb);
    return rc;
}

static void hcl_refused(hcl *p, const char *want)
{
    mesh_err err = {0};
    cr_assert_eq(hcl_try(p, NULL, &err), MESH_EINVAL, "expected a refusal naming \"%s\"", want);
    cr_assert_not_null(strstr(err.msg, want), "\"%s\" not in \"%s\"", want, err.msg);
    cr_assert_not_null(strstr(err.msg, "cluster 'inbound|x|local'"), "%s", err.msg);
}

Test(sidecar_xds_h2, cluster_http2_options)
{
    hcl p;
    dp_h2_cfg h2;
    mesh_err err = {0};
    hcl_init(&p);
    cr_assert_eq(hcl_try(&p, &h2, &err), MESH_OK, "%s", err.msg);
    cr_assert(h2.enabled);
    cr_assert_eq(h2.max_concurrent_streams, DP_H2_DEFAULT_MAX_STREAMS, "unset = default");
    cr_assert_eq(h2.stream_window, DP_H2_DEFAULT_STREAM_WINDOW);

    hcl_init(&p);
    p.win.value = 1 << 20;
    p.h2.initial_stream_window_size = &p.win;
    cr_assert_eq(hcl_try(&p, &h2, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(h2.stream_window, 1 << 20);

    /* Explicit HTTP/1.1 is HTTP/1.1. */
    hcl_init(&p);
    Envoy__Config__Core__V3__Http1ProtocolOptions h1;
    envoy__config__core__v3__http1_protocol_options__init(&h1);
    p.ex.protocol_config_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP_PROTOCOL_OPTIONS;
    p.ex.http_protocol_options = &h1;
    cr_assert_eq(hcl_try(&p, &h2, &err), MESH_OK, "%s", err.msg);
    cr_assert(!h2.enabled);
}

Test(sidecar_xds_h2, cluster_shapes_we_cannot_serve_are_refused)
{
    hcl p;
    hcl_init(&p);
    p.hpo.upstream_protocol_options_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_AUTO_CONFIG;
    p.hpo.auto_config = &p.au;
    hcl_refused(&p, "only explicit_http_config is supported");

    hcl_init(&p);
    p.hpo.upstream_protocol_options_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS__NOT_SET;
    hcl_refused(&p, "no upstream_protocol_options");

    hcl_init(&p);
    p.ex.protocol_config_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG__NOT_SET;
    hcl_refused(&p, "explicit_http_config names no protocol");

    hcl_init(&p);
    p.e.key = "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions";
    hcl_refused(&p, "unsupported extension");

    hcl_init(&p);
    p.any.type_url = XDS_TYPE_URL_ROUTER;
    hcl_refused(&p, "typed_extension_protocol_options['" XDS_EXT_HTTP_PROTOCOL_OPTIONS "']");

    hcl_init(&p);
    p.win.value = 1000;
    p.h2.initial_connection_window_size = &p.win;
    hcl_refused(&p, "initial_connection_window_size must be 65535..2147483647, got 1000");

    hcl_init(&p);
    p.win.value = 0;
    p.h2.max_concurrent_streams = &p.win;
    hcl_refused(&p, "max_concurrent_streams must be at least 1");
}

/* ---- hand-built listeners ------------------------------------------------------------- */

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;

typedef struct hls {
    Envoy__Config__Listener__V3__Listener l;
    Envoy__Config__Core__V3__Address addr;
    Envoy__Config__Core__V3__SocketAddress sa;
    Envoy__Config__Listener__V3__FilterChain fc, *fcs[1];
    Envoy__Config__Listener__V3__Filter f, *fs[1];
    Google__Protobuf__Any hcm_any, router_any;
    Hcm hcm;
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds rds;
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter router, *hfs[1];
    Envoy__Extensions__Filters__Http__Router__V3__Router r;
    Envoy__Config__Core__V3__Http2ProtocolOptions h2;
    uint8_t *rbuf;
} hls;

static void hls_init(hls *p)
{
    memset(p, 0, sizeof *p);
    envoy__config__listener__v3__listener__init(&p->l);
    p->l.name = "outbound|http";
    envoy__config__core__v3__address__init(&p->addr);
    envoy__config__core__v3__socket_address__init(&p->sa);
    p->sa.address = "127.0.0.1";
    p->sa.port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    p->sa.port_value = 15101;
    p->addr.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    p->addr.socket_address = &p->sa;
    p->l.address = &p->addr;
    envoy__extensions__filters__http__router__v3__router__init(&p->r);
    size_t len;
    p->rbuf = tx_pack(&p->r.base, &len);
    google__protobuf__any__init(&p->router_any);
    p->router_any.type_url = XDS_TYPE_URL_ROUTER;
    p->router_any.value.data = p->rbuf;
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
    envoy__config__core__v3__http2_protocol_options__init(&p->h2);
    envoy__config__listener__v3__filter__init(&p->f);
    p->f.name = "envoy.filters.network.http_connection_manager";
    p->f.config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    google__protobuf__any__init(&p->hcm_any);
    p->hcm_any.type_url = XDS_TYPE_URL_HCM;
    p->f.typed_config = &p->hcm_any;
    p->fs[0] = &p->f;
    envoy__config__listener__v3__filter_chain__init(&p->fc);
    p->fc.filters = p->fs;
    p->fc.n_filters = 1;
    p->fcs[0] = &p->fc;
    p->l.filter_chains = p->fcs;
    p->l.n_filter_chains = 1;
}

static int hls_try(hls *p, dp_h2_cfg *h2, mesh_err *err)
{
    size_t hl, len;
    uint8_t *hb = tx_pack(&p->hcm.base, &hl);
    p->hcm_any.value.data = hb;
    p->hcm_any.value.len = hl;
    uint8_t *buf = tx_pack(&p->l.base, &len);
    dp_config *cfg = dp_config_new();
    int rc = xdsc_translate_listener(cfg, buf, len, err);
    if (rc == MESH_OK)
        rc = dp_config_freeze(cfg, err);
    if (rc == MESH_OK)
        *h2 = dp_config_listener_at(cfg, 0)->h2;
    dp_config_unref(cfg);
    free(buf);
    free(hb);
    free(p->rbuf);
    return rc;
}

Test(sidecar_xds_h2, listener_codec)
{
    hls p;
    dp_h2_cfg h2;
    mesh_err err = {0};
    hls_init(&p);       /* AUTO without http2_protocol_options: HTTP/1.1 as before */
    cr_assert_eq(hls_try(&p, &h2, &err), MESH_OK, "%s", err.msg);
    cr_assert(!h2.enabled);

    hls_init(&p);
    p.hcm.http2_protocol_options = &p.h2;
    cr_assert_eq(hls_try(&p, &h2, &err), MESH_OK, "%s", err.msg);
    cr_assert(h2.enabled, "AUTO + http2_protocol_options takes h2c");

    hls_init(&p);
    p.hcm.codec_type =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP2;
    cr_assert_eq(hls_try(&p, &h2, &err), MESH_OK, "%s", err.msg);
    cr_assert(h2.enabled, "HTTP2 takes h2c");
    cr_assert_eq(h2.connection_window, DP_H2_DEFAULT_CONN_WINDOW);

    hls_init(&p);
    p.hcm.codec_type =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP1;
    p.hcm.http2_protocol_options = &p.h2;
    cr_assert_eq(hls_try(&p, &h2, &err), MESH_OK, "%s", err.msg);
    cr_assert(!h2.enabled, "HTTP1 never takes h2");

    hls_init(&p);
    p.hcm.codec_type =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP3;
    cr_assert_eq(hls_try(&p, &h2, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "codec_type 3 is not supported"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "listener 'outbound|http'"), "%s", err.msg);
}
