/* sds/compiler/xds_compile_h2.c — the HTTP/2 shapes of http2 and grpc services, as Envoy spells
 * them (docs/xds.md, HTTP/2):
 *   - a Cluster whose upstream speaks HTTP/2 carries typed_extension_protocol_options
 *     ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] with explicit_http_config
 *     {http2_protocol_options}: the local-app cluster (h2c to the app) and the outbound
 *     cluster (h2 to the peer sidecar, whose UpstreamTlsContext offers ALPN "h2");
 *   - a listener that takes HTTP/2 has HCM http2_protocol_options: the outbound listener
 *     (h2c with prior knowledge, what gRPC clients send) when the mesh has such a service,
 *     and the inbound listener of such a service, whose DownstreamTlsContext offers ALPN
 *     "h2" then "http/1.1" (codec AUTO keeps HTTP/1.1 callers working).
 * The same Http2ProtocolOptions everywhere: Envoy's settings for untrusted peers (64 KiB
 * stream window, 1 MiB connection window, 100 concurrent streams), which bound what a slow
 * reader can make a sidecar hold per stream and per connection. */
#include "sds/compiler/xds_compile_internal.h"

#include "envoy/config/core/v3/protocol.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"

#define XC_H2_STREAM_WINDOW     65536u
#define XC_H2_CONNECTION_WINDOW 1048576u
#define XC_H2_MAX_STREAMS       100u

typedef Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions HttpProtocolOptions;
typedef Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__ExplicitHttpConfig ExplicitHttpConfig;
typedef Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry ExtEntry;

Envoy__Config__Core__V3__Http2ProtocolOptions *xc_h2_options(xc_ctx *c)
{
    Envoy__Config__Core__V3__Http2ProtocolOptions *o = xc_alloc(&c->arena, sizeof *o);
    if (o == NULL)
        return xc_oom(c);
    envoy__config__core__v3__http2_protocol_options__init(o);
    if ((o->max_concurrent_streams = xc_u32(c, XC_H2_MAX_STREAMS)) == NULL ||
        (o->initial_stream_window_size = xc_u32(c, XC_H2_STREAM_WINDOW)) == NULL ||
        (o->initial_connection_window_size = xc_u32(c, XC_H2_CONNECTION_WINDOW)) == NULL)
        return NULL;
    return o;
}

int xc_cluster_h2(xc_ctx *c, Envoy__Config__Cluster__V3__Cluster *cl)
{
    HttpProtocolOptions *hpo = xc_alloc(&c->arena, sizeof *hpo);
    ExplicitHttpConfig *ex = xc_alloc(&c->arena, sizeof *ex);
    ExtEntry *e = xc_alloc(&c->arena, sizeof *e);
    ExtEntry **es = xc_array(&c->arena, 1, sizeof *es);
    if (!hpo || !ex || !e || !es)
        return xc_oom_status(c);
    envoy__extensions__upstreams__http__v3__http_protocol_options__explicit_http_config__init(ex);
    ex->protocol_config_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS;
    if ((ex->http2_protocol_options = xc_h2_options(c)) == NULL)
        return xc_status(c);
    envoy__extensions__upstreams__http__v3__http_protocol_options__init(hpo);
    hpo->upstream_protocol_options_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG;
    hpo->explicit_http_config = ex;
    envoy__config__cluster__v3__cluster__typed_extension_protocol_options_entry__init(e);
    e->key = XDS_EXT_HTTP_PROTOCOL_OPTIONS;
    if ((e->value = xc_any(c, XDS_TYPE_URL_HTTP_PROTOCOL_OPTIONS, &hpo->base)) == NULL)
        return xc_status(c);
    es[0] = e;
    cl->n_typed_extension_protocol_options = 1;
    cl->typed_extension_protocol_options = es;
    return MESH_OK;
}

int xc_tls_alpn(xc_ctx *c, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *t,
                int with_http11)
{
    char **alpn = xc_array(&c->arena, 2, sizeof *alpn);
    if (alpn == NULL)
        return xc_oom_status(c);
    alpn[0] = "h2";
    alpn[1] = "http/1.1";
    t->n_alpn_protocols = with_http11 ? 2 : 1;
    t->alpn_protocols = alpn;
    return MESH_OK;
}

int xc_mesh_has_h2(const xc_ctx *c)
{
    for (size_t i = 0; i < c->cfg->n_services; i++) {
        if (mesh_protocol_is_h2(c->cfg->services[i].protocol))
            return 1;
    }
    return 0;
}
