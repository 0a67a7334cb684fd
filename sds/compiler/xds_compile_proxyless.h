/* sds/compiler/xds_compile_proxyless.h — mesh config -> the xDS resources of a proxyless gRPC client.
 *
 * A proxyless gRPC client (grpc-go, grpc-java, C-core, @grpc/grpc-js-xds; gRFC A27/A28)
 * has no sidecar: its channel for target "xds:///<host>" subscribes, by name, to
 *   LDS  "<host>"             an API listener: Listener.api_listener = HttpConnectionManager
 *                             with rds "<host>" (ADS) and the router as its only HTTP filter;
 *   RDS  "<host>"             one virtual host (domains ["<host>"]) with the rules of the route
 *                             claiming <host> (or everything to service <host>); a rule's
 *                             timeout becomes max_stream_duration (gRFC A31), retries retry on
 *                             UNAVAILABLE (gRFC A44);
 *   CDS  "outbound|<svc>"     type EDS over ADS, ROUND_ROBIN, no transport socket: the client
 *                             dials the application directly in plaintext;
 *   EDS  "outbound|<svc>"     one locality (weight 1) with every workload of <svc> whose `app`
 *                             address is an IP literal — but only when the client's identity
 *                             is allowed to call <svc> (authorization); otherwise no endpoints,
 *                             so its calls fail with UNAVAILABLE and no address is disclosed.
 * Hosts: every route host that is a concrete name (wildcards cannot be subscribed by name)
 * and the name of every HTTP service no route claims — the same hosts a sidecar's egress
 * route table answers. Layout and rationale: docs/xds-clients.md. */
#ifndef MESH_SDS_COMPILER_XDS_COMPILE_PROXYLESS_H
#define MESH_SDS_COMPILER_XDS_COMPILE_PROXYLESS_H

#include "common/error.h"
#include "config/mesh_config.h"
#include "sds/compiler/xds_snapshot.h"

/* The resources every proxyless client with SPIFFE ID spiffe_id may subscribe to.
 * MESH_EINVAL (and an empty *out) when the config cannot be compiled: a route to an
 * undefined service, a host claimed twice, an unparsable address. */
int xds_compile_proxyless(const mesh_config *cfg, const char *spiffe_id, xds_snapshot *out,
                          mesh_err *err);

#endif
