/* sidecar/xds_tr_h2.c — which hops speak HTTP/2, read back from Envoy's shapes (meshd's
 * side: sds/compiler/xds_compile_h2.c; docs/dataplane.md, HTTP/2):
 *   - Cluster.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.
 *     HttpProtocolOptions"]: explicit_http_config with http2_protocol_options = HTTP/2
 *     upstream, with http_protocol_options (or no entry) = HTTP/1.1. use_downstream and
 *     auto_config are refused: the data plane does not translate between versions yet, and
 *     a silent HTTP/1.1 would break gRPC. Any other key is refused too (Envoy refuses an
 *     extension it does not know).
 *   - HCM codec_type + http2_protocol_options: HTTP2 takes HTTP/2; AUTO takes it when
 *     http2_protocol_options is present (meshd's sign that some service speaks it) and, on
 *     an inbound listener, when its TLS context offers ALPN "h2"; HTTP1 never; HTTP3 is
 *     refused. */
#include <string.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/protocol.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "sidecar/xds_translate_internal.h"

typedef Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions HttpProtocolOptions;

static uint32_t u32_or(const Google__Protobuf__UInt32Value *v, uint32_t dflt)
{
    return v ? v->value : dflt;
}

/* RFC 9113 6.5.2: windows up to 2^31-1; a window below the 65,535 the spec starts with
 * cannot be advertised on the connection, and 0 streams would refuse every request. */
static int h2_settings(const Envoy__Config__Core__V3__Http2ProtocolOptions *o, const char *what,
                       dp_h2_cfg *out, mesh_err *err)
{
    out->enabled = true;
    out->max_concurrent_streams = u32_or(o ? o->max_concurrent_streams : NULL,
                                         DP_H2_DEFAULT_MAX_STREAMS);
    out->stream_window = u32_or(o ? o->initial_stream_window_size : NULL,
                                DP_H2_DEFAULT_STREAM_WINDOW);
    out->connection_window = u32_or(o ? o->initial_connection_window_size : NULL,
                                    DP_H2_DEFAULT_CONN_WINDOW);
    if (out->max_concurrent_streams == 0)
        return mesh_err_set(err, MESH_EINVAL, "%s: max_concurrent_streams must be at least 1",
                            what);
    if (out->stream_window < 65535 || out->stream_window > 0x7fffffffu)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: initial_stream_window_size must be 65535..2147483647, got %u",
                            what, out->stream_window);
    if (out->connection_window < 65535 || out->connection_window > 0x7fffffffu)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: initial_connection_window_size must be 65535..2147483647, got %u",
                            what, out->connection_window);
    return MESH_OK;
}

int xdsc_tr_cluster_h2(const Envoy__Config__Cluster__V3__Cluster *c, const char *what,
                       dp_h2_cfg *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    char w[448], q[160];
    for (size_t i = 0; i < c->n_typed_extension_protocol_options; i++) {
        const Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *e =
            c->typed_extension_protocol_options[i];
        const char *key = e->key ? e->key : "";
        xdsc_tr_what(w, sizeof w, "%s: typed_extension_protocol_options['%s']", what,
                     xdsc_tr_quote(key, q, sizeof q));
        if (strcmp(key, XDS_EXT_HTTP_PROTOCOL_OPTIONS) != 0)
            return mesh_err_set(err, MESH_EINVAL, "%s: unsupported extension (only %s)", w,
                                XDS_EXT_HTTP_PROTOCOL_OPTIONS);
        if (!e->value)
            return mesh_err_set(err, MESH_EINVAL, "%s: missing value", w);
        int rc = xdsc_tr_any_is(e->value, XDS_TYPE_URL_HTTP_PROTOCOL_OPTIONS, w, err);
        if (rc != MESH_OK)
            return rc;
        if (e->value->value.len > XDSC_MAX_RESOURCE_BYTES)
            return mesh_err_set(err, MESH_EINVAL, "%s: value is too large", w);
        HttpProtocolOptions *h = envoy__extensions__upstreams__http__v3__http_protocol_options__unpack(
            NULL, e->value->value.len, e->value->value.data);
        if (!h)
            return mesh_err_set(err, MESH_EINVAL, "%s: HttpProtocolOptions does not decode", w);
        switch (h->upstream_protocol_options_case) {
        case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG:
            if (h->explicit_http_config->protocol_config_case ==
                ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS) {
                char hw[480];
                xdsc_tr_what(hw, sizeof hw, "%s: explicit_http_config.http2_protocol_options", w);
                rc = h2_settings(h->explicit_http_config->http2_protocol_options, hw, out, err);
            } else if (h->explicit_http_config->protocol_config_case !=
                       ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP_PROTOCOL_OPTIONS) {
                rc = mesh_err_set(err, MESH_EINVAL,
                                  "%s: explicit_http_config names no protocol (http or http2)", w);
            }
            break;
        case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_USE_DOWNSTREAM_PROTOCOL_CONFIG:
        case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_AUTO_CONFIG:
            rc = mesh_err_set(err, MESH_EINVAL,
                              "%s: only explicit_http_config is supported (the sidecar does not "
                              "translate between HTTP/1.1 and HTTP/2)", w);
            break;
        default:
            rc = mesh_err_set(err, MESH_EINVAL, "%s: no upstream_protocol_options", w);
            break;
        }
        envoy__extensions__upstreams__http__v3__http_protocol_options__free_unpacked(h, NULL);
        if (rc != MESH_OK)
            return rc;
    }
    return MESH_OK;
}

int xdsc_tr_listener_h2(const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h,
                        bool tls, bool alpn_h2, const char *what, dp_h2_cfg *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    char w[480];
    xdsc_tr_what(w, sizeof w, "%s: http2_protocol_options", what);
    switch (h->codec_type) {
    case ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP1:
        return MESH_OK;
    case ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__AUTO:
        if (!h->http2_protocol_options)
            return MESH_OK;
        break;
    case ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP2:
        break;
    default:
        return mesh_err_set(err, MESH_EINVAL, "%s: codec_type %d is not supported (AUTO, HTTP1 "
                            "or HTTP2)", what, (int)h->codec_type);
    }
    if (tls && !alpn_h2)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: an mTLS listener that takes HTTP/2 must offer ALPN \"h2\" in its "
                            "DownstreamTlsContext", what);
    return h2_settings(h->http2_protocol_options, w, out, err);
}
