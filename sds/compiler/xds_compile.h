/* sds/compiler/xds_compile.h — mesh config -> Envoy v3 resources for one sidecar.
 *
 * For the workload(s) with a given SPIFFE ID, builds (see docs/xds.md):
 *   LDS  "inbound|<port>"        mTLS listener on workload.inbound: DownstreamTlsContext with
 *                                SDS "default" + "ROOTCA", require_client_certificate; http:
 *                                HttpConnectionManager with inline route to "inbound|<svc>|local",
 *                                RBAC http filter (allowed principals) + router; tcp: network RBAC +
 *                                tcp_proxy.
 *        "outbound|http"         plain listener on workload.outbound: HCM with RDS "outbound|http".
 *        "outbound|tcp|<svc>"    plain listener per tcp_outbound entry: tcp_proxy to outbound|<svc>.
 *   RDS  "outbound|http"         one virtual host per route (domains = hosts) plus one per service
 *                                without a route; rules in order; weighted clusters, timeout, retries.
 *   CDS  "inbound|<svc>|local"   STATIC, endpoint = workload.app.
 *        "outbound|<svc>"        EDS, UpstreamTlsContext (SDS default/ROOTCA, SAN matchers = the
 *                                service's workload SPIFFE IDs), lb policy, connect timeout.
 *   EDS  "outbound|<svc>"        one lb endpoint per workload of the service at workload.inbound.
 */
#ifndef MESH_SDS_COMPILER_XDS_COMPILE_H
#define MESH_SDS_COMPILER_XDS_COMPILE_H

#include "common/error.h"
#include "config/mesh_config.h"
#include "sds/compiler/xds_snapshot.h"

/* A SPIFFE ID with no workload in the config gets an empty snapshot (not an error). */
int xds_compile_node(const mesh_config *cfg, const char *spiffe_id, xds_snapshot *out,
                     mesh_err *err);

#endif
