/* common/xds_wire.h — the wire vocabulary of meshd's gRPC port, defined once.
 *
 * The method paths of the services meshd serves (Envoy's ADS and SDS, Istio's
 * CA) and the type URLs of the resources and typed configs it sends, exactly
 * as Envoy's v3 API and Istio spell them. meshd, the sidecar's xDS client,
 * the xDS compiler, meshctl and mesh-xdsclient all take them from here, so a
 * typo cannot make two of them disagree; tests/unit/test_common_xds_wire.c
 * checks every one against the names protobuf-c generated from proto/.
 *
 * Plain #defines (usable in static initialisers and string concatenation),
 * plus a table between the five resource type URLs and their short names
 * ("LDS", ...), which humans type and read, and the one size limit of a
 * message on that port. No dependency beyond libc. */
#ifndef MESH_COMMON_XDS_WIRE_H
#define MESH_COMMON_XDS_WIRE_H

/* ---- gRPC method paths ---------------------------------------------------- */
#define XDS_SERVICE_ADS "envoy.service.discovery.v3.AggregatedDiscoveryService"
#define XDS_SERVICE_SDS "envoy.service.secret.v3.SecretDiscoveryService"
#define XDS_SERVICE_CA  "istio.v1.auth.IstioCertificateService"

#define XDS_METHOD_ADS        "/" XDS_SERVICE_ADS "/StreamAggregatedResources"
#define XDS_METHOD_DELTA_ADS  "/" XDS_SERVICE_ADS "/DeltaAggregatedResources"
#define XDS_METHOD_SDS        "/" XDS_SERVICE_SDS "/StreamSecrets"
#define XDS_METHOD_DELTA_SDS  "/" XDS_SERVICE_SDS "/DeltaSecrets"
#define XDS_METHOD_FETCH_SDS  "/" XDS_SERVICE_SDS "/FetchSecrets"
/* Istio's CA, served on the same port: how a sidecar gets and renews its SVID. */
#define XDS_METHOD_CREATE_CERTIFICATE "/" XDS_SERVICE_CA "/CreateCertificate"

/* ---- type URLs of the resources (google.protobuf.Any in a DiscoveryResponse) */
#define XDS_TYPE_URL_PREFIX   "type.googleapis.com/"
#define XDS_TYPE_URL_LISTENER XDS_TYPE_URL_PREFIX "envoy.config.listener.v3.Listener"
#define XDS_TYPE_URL_ROUTE    XDS_TYPE_URL_PREFIX "envoy.config.route.v3.RouteConfiguration"
#define XDS_TYPE_URL_CLUSTER  XDS_TYPE_URL_PREFIX "envoy.config.cluster.v3.Cluster"
#define XDS_TYPE_URL_ENDPOINT XDS_TYPE_URL_PREFIX "envoy.config.endpoint.v3.ClusterLoadAssignment"
#define XDS_TYPE_URL_SECRET   XDS_TYPE_URL_PREFIX "envoy.extensions.transport_sockets.tls.v3.Secret"

/* ---- type URLs of the typed configs inside them (filters, transport sockets) */
#define XDS_TYPE_URL_HCM \
    XDS_TYPE_URL_PREFIX \
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
#define XDS_TYPE_URL_ROUTER    XDS_TYPE_URL_PREFIX "envoy.extensions.filters.http.router.v3.Router"
#define XDS_TYPE_URL_HTTP_RBAC XDS_TYPE_URL_PREFIX "envoy.extensions.filters.http.rbac.v3.RBAC"
#define XDS_TYPE_URL_NET_RBAC  XDS_TYPE_URL_PREFIX "envoy.extensions.filters.network.rbac.v3.RBAC"
#define XDS_TYPE_URL_TCP_PROXY \
    XDS_TYPE_URL_PREFIX "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
#define XDS_TYPE_URL_DOWNSTREAM_TLS \
    XDS_TYPE_URL_PREFIX "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
/* A Cluster's typed_extension_protocol_options key and the Any inside: the upstream's
 * HTTP version (explicit HTTP/2 for http2 and grpc services). */
#define XDS_EXT_HTTP_PROTOCOL_OPTIONS "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
#define XDS_TYPE_URL_HTTP_PROTOCOL_OPTIONS XDS_TYPE_URL_PREFIX XDS_EXT_HTTP_PROTOCOL_OPTIONS
#define XDS_TYPE_URL_UPSTREAM_TLS \
    XDS_TYPE_URL_PREFIX "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"

/* ---- the delivery limit ---------------------------------------------------------
 * The largest gRPC message on meshd's port, in either direction: meshd's
 * receive and send limit, the sidecar's and mesh-xdsclient's receive limit,
 * and the size every compiled xDS response must fit in (`meshctl apply`
 * refuses a config that would compile to a bigger one, meshd never sends
 * one). 4 MiB is gRPC's default receive limit in every implementation (C
 * core, Go, Java, JS), so a proxyless gRPC client with a stock bootstrap can
 * take any response meshd sends it; Envoy has no limit of its own. */
#define XDS_WIRE_MAX_MESSAGE (4 * 1024 * 1024)

/* ---- resource type URL <-> short name --------------------------------------- */
#define XDS_WIRE_RESOURCE_TYPES 5

/* The five resource types meshd serves, in the order Envoy applies them
 * without dropping traffic: SDS, CDS, EDS, LDS, RDS. */
typedef struct xds_wire_type {
    const char *type_url;   /* XDS_TYPE_URL_SECRET, ... */
    const char *short_name; /* "SDS", "CDS", "EDS", "LDS", "RDS" */
} xds_wire_type;

extern const xds_wire_type xds_wire_types[XDS_WIRE_RESOURCE_TYPES];

/* "type.googleapis.com/envoy.config.listener.v3.Listener" -> "LDS"; NULL for
 * any other string (exact match: on the wire only the full URL counts). */
const char *xds_wire_short_name(const char *type_url);
/* "LDS" or "lds" -> its type URL; NULL if it is not one of the five. */
const char *xds_wire_type_url(const char *short_name);

#endif
