/* sds/compiler/xds_compile_workload.h — compiling for one workload of an identity.
 *
 * Replicas of a service usually share a SPIFFE ID, yet each runs its own sidecar
 * with its own inbound and app addresses. xds_compile_node (xds_compile.h) gives
 * an identity the union of its workloads, which is right for one workload per
 * identity and fails with MESH_EINVAL when the replicas' resources clash (same
 * listener or local cluster name, different addresses). A sidecar that names its
 * workload in Node.id gets exactly that workload's resources from this call.
 * Node.id is the peer's claim, but it can only pick among the workloads of the
 * SPIFFE ID its certificate proved, so it grants nothing extra. */
#ifndef MESH_SDS_COMPILER_XDS_COMPILE_WORKLOAD_H
#define MESH_SDS_COMPILER_XDS_COMPILE_WORKLOAD_H

#include "common/error.h"
#include "config/mesh_config.h"
#include "sds/compiler/xds_health.h"
#include "sds/compiler/xds_snapshot.h"

/* Like xds_compile_node, restricted to the workload named workload_name, which
 * must carry spiffe_id: MESH_ENOTFOUND (and an empty *out) if there is none, so
 * the caller can fall back to xds_compile_node. */
int xds_compile_workload(const mesh_config *cfg, const char *spiffe_id,
                         const char *workload_name, xds_snapshot *out, mesh_err *err);

/* xds_compile_node and xds_compile_workload with meshd's endpoint health: the
 * EDS endpoints of the workloads `health` names are UNHEALTHY (NULL = none). */
int xds_compile_node_health(const mesh_config *cfg, const xds_health *health,
                            const char *spiffe_id, xds_snapshot *out, mesh_err *err);
int xds_compile_workload_health(const mesh_config *cfg, const xds_health *health,
                                const char *spiffe_id, const char *workload_name,
                                xds_snapshot *out, mesh_err *err);

#endif
