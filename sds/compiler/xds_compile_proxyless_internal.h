/* sds/compiler/xds_compile_proxyless_internal.h — pieces shared by the proxyless compile's files
 * (not a public API; the entry point is sds/compiler/xds_compile_proxyless.h).
 *
 *   xds_compile_proxyless.c          entry point: which hosts and services, LDS API listeners
 *   xds_compile_proxyless_route.c    RDS: one RouteConfiguration per host, adapted for gRPC
 *   xds_compile_proxyless_cluster.c  CDS (plaintext EDS clusters) and EDS (app addresses)
 *
 * Everything is built with the sidecar compiler's arena and helpers
 * (xds_compile_internal.h), so both compiles share one set of conventions. */
#ifndef MESH_SDS_COMPILER_XDS_COMPILE_PROXYLESS_INTERNAL_H
#define MESH_SDS_COMPILER_XDS_COMPILE_PROXYLESS_INTERNAL_H

#include "sds/compiler/xds_compile_internal.h"

/* A host a proxyless client can target as xds:///<host>, and what answers it. */
typedef struct xp_host {
    const char *host;            /* the LDS and RDS resource name */
    const mesh_route *route;     /* the route claiming it, or NULL: everything to svc */
    const mesh_service *svc;     /* when route is NULL */
} xp_host;

/* RDS "<host>": one virtual host, domains [host], the rules a gRPC call can
 * match. *emitted = 0 when no rule can: then the host gets no RDS and no LDS. */
int xp_route_config(xc_ctx *c, const xp_host *h, int *emitted);
/* CDS "outbound|<svc>" (sub NULL) or "outbound|<svc>|<subset>": EDS over ADS,
 * ROUND_ROBIN, plaintext. */
int xp_cluster(xc_ctx *c, const mesh_service *svc, const mesh_subset *sub);
/* EDS of the same name: the app addresses of the service's workloads (those of
 * the subset) when `allowed`, else none. */
int xp_endpoints(xc_ctx *c, const mesh_service *svc, const mesh_subset *sub, int allowed);

#endif
