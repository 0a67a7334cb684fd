/* sds/compiler/xds_health.h — which endpoints meshd serves as UNHEALTHY in EDS.
 *
 * The compiler turns config into resources; liveness is not config. meshd
 * decides it (meshd/meshd_health.c: a workload whose sidecar has not held an
 * xDS stream for --endpoint-grace) and hands the compiler this set, so EDS
 * carries LbEndpoint.health_status = UNHEALTHY for those workloads and
 * HEALTHY for every other. The set is immutable once built: a change is a new
 * set (and a new snapshot generation in meshd). */
#ifndef MESH_SDS_COMPILER_XDS_HEALTH_H
#define MESH_SDS_COMPILER_XDS_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

typedef struct xds_health {
    char **unhealthy;             /* workload names, sorted, unique */
    size_t n;
} xds_health;

/* Builds the set from names (any order, duplicates allowed); copies them. */
int xds_health_build(xds_health *out, const char *const *names, size_t n, mesh_err *err);
void xds_health_free(xds_health *h);
/* NULL or an empty set: every endpoint is healthy. */
bool xds_health_is_unhealthy(const xds_health *h, const char *workload_name);
bool xds_health_equal(const xds_health *a, const xds_health *b);

#endif
