/* sds/compiler/xds_compile_internal.h — pieces shared by the xDS compiler's files (not a public API).
 *
 *   xds_compile.c          entry point: picks the node's workloads, drives the others
 *   xds_compile_pb.c       arena, protobuf-c building blocks (Any, addresses, TLS, ...)
 *   xds_compile_listener.c LDS: inbound mTLS listeners (+RBAC), outbound HTTP/TCP listeners
 *   xds_compile_route.c    RDS: the outbound route table
 *   xds_compile_cluster.c  CDS + EDS
 *
 * Messages are built as protobuf-c structs whose every piece lives in one arena
 * for the whole compile, then packed into a malloc'd buffer the snapshot owns.
 * Builders return NULL (or a negative status) on failure with ctx->err set. */
#ifndef MESH_SDS_COMPILER_XDS_COMPILE_INTERNAL_H
#define MESH_SDS_COMPILER_XDS_COMPILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/error.h"
#include "common/xds_wire.h"
#include "config/mesh_config.h"
#include "sds/compiler/xds_health.h"
#include "sds/compiler/xds_snapshot.h"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/address.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/core/v3/config_source.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

/* Type URLs of the typed_configs meshd emits: XDS_TYPE_URL_* in common/xds_wire.h. */

/* Filter and transport socket names, as Envoy registers them. */
#define XC_FILTER_HCM        "envoy.filters.network.http_connection_manager"
#define XC_FILTER_ROUTER     "envoy.filters.http.router"
#define XC_FILTER_HTTP_RBAC  "envoy.filters.http.rbac"
#define XC_FILTER_TCP_PROXY  "envoy.filters.network.tcp_proxy"
#define XC_FILTER_NET_RBAC   "envoy.filters.network.rbac"
#define XC_SOCKET_TLS        "envoy.transport_sockets.tls"

/* SDS secret names (Istio's): the node's own SVID chain and the trust bundle. */
#define XC_SECRET_DEFAULT "default"
#define XC_SECRET_ROOTCA  "ROOTCA"

#define XC_RDS_OUTBOUND_HTTP  "outbound|http"
#define XC_DEFAULT_CONNECT_MS 1000
#define XC_DEFAULT_ROUTE_MS   15000
/* Retry only what is safe for any request: the upstream never saw it, or
 * said so (503). 5xx in general would replay non-idempotent requests. */
#define XC_RETRY_ON           "connect-failure,refused-stream,retriable-status-codes"
#define XC_RETRY_STATUS       503
/* Retries avoid the hosts earlier attempts used; the load balancer gets this
 * many tries to find one (Istio's value). */
#define XC_PREVIOUS_HOSTS          "envoy.retry_host_predicates.previous_hosts"
#define XC_PREVIOUS_HOSTS_TYPE     "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
#define XC_HOST_SELECTION_ATTEMPTS 5

/* ---- arena ---------------------------------------------------------------- */
typedef struct xc_block xc_block;
typedef struct xc_arena {
    xc_block *head;
} xc_arena;

void *xc_alloc(xc_arena *a, size_t n);                 /* zeroed; NULL when out of memory */
void *xc_array(xc_arena *a, size_t n, size_t size);    /* zeroed n*size, overflow-checked */
char *xc_printf(xc_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void xc_arena_free(xc_arena *a);

/* ---- compile context ------------------------------------------------------ */
typedef struct xc_ctx {
    const mesh_config *cfg;
    const char *spiffe_id;
    xds_snapshot *snap;
    xc_arena arena;
    mesh_err *err;        /* never NULL: xds_compile_node substitutes its own */
    const xds_health *health;   /* endpoints served UNHEALTHY in EDS; NULL = none */
    /* Indexes built once per compile, so that a node of a mesh with thousands of
     * services costs O(n log n), not O(services x workloads). */
    const mesh_service **svc_by_name;   /* sorted by name */
    const mesh_workload **wl_by_svc;    /* with a service, sorted by (service, name, inbound) */
    size_t n_wl_by_svc;
} xc_ctx;

/* Sets ctx->err to "xds compile for <id>: out of memory" and returns NULL / MESH_ENOMEM. */
void *xc_oom(xc_ctx *c);
int xc_oom_status(xc_ctx *c);
/* The status of the failure just recorded in ctx->err (never MESH_OK). */
int xc_status(const xc_ctx *c);

int xc_index(xc_ctx *c);   /* builds the indexes above */
const mesh_service *xc_find_service(const xc_ctx *c, const char *name);
/* The workloads of a service, in (name, inbound) order: *first, *n into wl_by_svc. */
void xc_service_workloads(const xc_ctx *c, const char *svc, const mesh_workload *const **first,
                          size_t *n);
/* The same, only those of subset sub (NULL: all of them), in an arena array
 * (NULL with ctx->err set when out of memory). */
const mesh_workload **xc_subset_workloads(xc_ctx *c, const mesh_service *svc,
                                          const mesh_subset *sub, size_t *n_out);
/* The CDS and EDS name of a service's workloads, "outbound|<svc>", or of one of
 * its subsets, "outbound|<svc>|<subset>" (subset NULL: the whole service).
 * Arena-owned; NULL with ctx->err set when out of memory. */
char *xc_outbound_name(xc_ctx *c, const char *svc, const char *subset);
/* Marks, in needed_sub[i] (bit k = subset k of service i), every subset a
 * route destination names. MESH_EINVAL for a destination naming an unknown
 * service or subset (the validator refuses those first). */
int xc_mark_route_subsets(xc_ctx *c, uint64_t *needed_sub);
/* "workload web-1 (mesh.yaml:12)": how errors name a config resource. */
const char *xc_where_workload(xc_ctx *c, const mesh_workload *w);

/* Packs m, adds it to the snapshot under name. The same name with identical
 * bytes is accepted once (two workloads of one identity may describe the same
 * thing); with different bytes it is an error naming `what`. */
int xc_emit(xc_ctx *c, enum xds_type t, const char *name, const ProtobufCMessage *m,
            const char *what);

/* ---- protobuf building blocks (xds_compile_pb.c) -------------------------- */
Google__Protobuf__Any *xc_any(xc_ctx *c, const char *type_url, const ProtobufCMessage *m);
Google__Protobuf__Duration *xc_duration_ms(xc_ctx *c, int64_t ms);
Google__Protobuf__UInt32Value *xc_u32(xc_ctx *c, uint32_t v);
Google__Protobuf__BoolValue *xc_bool(xc_ctx *c, int v);
/* "host:port" (host: IPv4, DNS name, or [IPv6]) -> SocketAddress. `what` names the
 * config field in the error ("workload web-1 (mesh.yaml:12) inbound"). */
Envoy__Config__Core__V3__Address *xc_address(xc_ctx *c, const char *hostport, const char *what);
/* ConfigSource{ads{}, resource_api_version: V3}: "the ADS stream you are on". */
Envoy__Config__Core__V3__ConfigSource *xc_ads_source(xc_ctx *c);
/* CommonTlsContext: TLS 1.3 only, SDS "default" as the certificate, SDS "ROOTCA" as
 * the trust bundle; with n_sans > 0 also peer URI SANs that must match exactly. */
Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *
xc_common_tls(xc_ctx *c, const char *const *sans, size_t n_sans);
Envoy__Config__Core__V3__TransportSocket *xc_tls_socket(xc_ctx *c, const char *type_url,
                                                        const ProtobufCMessage *tls_ctx);
/* An EDS cluster named `name` whose endpoints come as ClusterLoadAssignment `name`
 * over ADS, with lb policy and connect timeout (the service's, or the 1 s
 * default): what sidecar and proxyless views share. NULL on allocation failure. */
Envoy__Config__Cluster__V3__Cluster *xc_eds_cluster(xc_ctx *c, char *name, int lb_policy,
                                                    const mesh_service *svc);
/* Sorted, de-duplicated copy (arena) of a string list. */
const char **xc_sorted_unique(xc_ctx *c, const char *const *v, size_t n, size_t *n_out);

/* ---- resources ------------------------------------------------------------ */
int xc_inbound_listener(xc_ctx *c, const mesh_workload *w, const mesh_service *svc);
int xc_outbound_http_listener(xc_ctx *c, const mesh_workload *w);
int xc_outbound_tcp_listener(xc_ctx *c, const mesh_workload *w, const mesh_tcp_outbound *o);
int xc_outbound_routes(xc_ctx *c);
/* One virtual host of the route table (shared with the proxyless compile,
 * xds_compile_proxyless_route.c): a route's rules, or everything for host
 * <svc> to service svc. Arena-owned; NULL with ctx->err set on failure. */
struct Envoy__Config__Route__V3__VirtualHost *xc_route_vhost(xc_ctx *c, const mesh_route *r);
struct Envoy__Config__Route__V3__VirtualHost *xc_service_vhost(xc_ctx *c, const mesh_service *svc);
int xc_local_cluster(xc_ctx *c, const mesh_workload *w, const mesh_service *svc);
/* sub NULL: the whole service's cluster / endpoints. */
int xc_outbound_cluster(xc_ctx *c, const mesh_service *svc, const mesh_subset *sub);
int xc_endpoints(xc_ctx *c, const mesh_service *svc, const mesh_subset *sub);
/* Outlier detection, health checks and circuit breakers of svc on cl
 * (xds_compile_health.c); the previous_hosts predicate on a retry policy. */
int xc_cluster_health(xc_ctx *c, Envoy__Config__Cluster__V3__Cluster *cl,
                      const mesh_service *svc);
/* HTTP/2 pieces for http2 and grpc services (xds_compile_h2.c): the cluster's upstream
 * speaks HTTP/2 (typed_extension_protocol_options); the ALPN list of a TLS context
 * ("h2", then "http/1.1" when with_http11); the HCM's Http2ProtocolOptions. */
int xc_cluster_h2(xc_ctx *c, Envoy__Config__Cluster__V3__Cluster *cl);
int xc_tls_alpn(xc_ctx *c, Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *t,
                int with_http11);
struct Envoy__Config__Core__V3__Http2ProtocolOptions *xc_h2_options(xc_ctx *c);
/* Does the mesh hold any http2 or grpc service (the outbound listener then takes h2c)? */
int xc_mesh_has_h2(const xc_ctx *c);
struct Envoy__Config__Route__V3__RetryPolicy;
int xc_retry_previous_hosts(xc_ctx *c, struct Envoy__Config__Route__V3__RetryPolicy *p);

#endif
