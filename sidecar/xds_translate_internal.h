/* sidecar/xds_translate_internal.h — helpers shared by the xds_tr_*.c translators.
 * Not for use outside sidecar/xds_tr_*.c and xds_translate.c. */
#ifndef MESH_SIDECAR_XDS_TRANSLATE_INTERNAL_H
#define MESH_SIDECAR_XDS_TRANSLATE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/xds_wire.h"
#include "envoy/config/core/v3/address.pb-c.h"
#include "envoy/config/rbac/v3/rbac.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "sidecar/dp_config.h"
#include "sidecar/xds_sotw.h"

/* Resources and embedded configs are bounded so a hostile or broken control
 * plane cannot make the sidecar allocate without limit. */
#define XDSC_MAX_RESOURCE_BYTES (4u * 1024 * 1024)

/* "ip:port" or "[v6]:port" from a SocketAddress; what names the field. */
int xdsc_tr_address(const Envoy__Config__Core__V3__Address *a, const char *what, char *buf,
                    size_t len, mesh_err *err);

/* Duration -> ms; negative or absurd values are MESH_EINVAL. */
int xdsc_tr_duration_ms(const Google__Protobuf__Duration *d, const char *what, int64_t *ms,
                        mesh_err *err);

/* The Any's type_url must equal want; what names the field. */
int xdsc_tr_any_is(const Google__Protobuf__Any *any, const char *want, const char *what,
                   mesh_err *err);

/* RBAC rules -> the allowed SPIFFE IDs (exact principal names, ALLOW, "any"
 * permissions). Anything broader or different is refused. */
int xdsc_tr_rbac(const Envoy__Config__Rbac__V3__RBAC *rules, const char *what, xdsc_names *ids,
                 mesh_err *err);

/* The SDS references of a TLS context must be ours ("default" certificate,
 * "ROOTCA" validation); inline key material is refused. san_ids (optional)
 * receives exact URI SAN matchers. */
int xdsc_tr_tls_context(const Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *c,
                        const char *what, xdsc_names *san_ids, mesh_err *err);

/* A RouteConfiguration as a dp_route_table whose strings borrow from rc (so
 * rc must outlive it) and whose arrays are released with
 * xdsc_tr_route_table_release. */
int xdsc_tr_route_table_build(const Envoy__Config__Route__V3__RouteConfiguration *rc,
                              const char *what, dp_route_table *out, mesh_err *err);
void xdsc_tr_route_table_release(dp_route_table *rt);

/* HTTP/2 of a cluster (typed_extension_protocol_options) and of an HTTP listener (HCM
 * codec; alpn_h2: its DownstreamTlsContext offers "h2"); xds_tr_h2.c. */
struct Envoy__Config__Cluster__V3__Cluster;
struct Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager;
int xdsc_tr_cluster_h2(const struct Envoy__Config__Cluster__V3__Cluster *c, const char *what,
                       dp_h2_cfg *out, mesh_err *err);
int xdsc_tr_listener_h2(
    const struct Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h,
    bool tls, bool alpn_h2, const char *what, dp_h2_cfg *out, mesh_err *err);

/* snprintf for error-context strings ("listener 'x': filter_chains[0]"):
 * truncation is acceptable there, so it is not diagnosed. */
void xdsc_tr_what(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Printable, bounded copy of an untrusted string for an error message. */
const char *xdsc_tr_quote(const char *s, char *buf, size_t len);

#endif
