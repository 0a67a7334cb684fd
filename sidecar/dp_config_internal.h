/* sidecar/dp_config_internal.h — the dp_config struct, shared by dp_config.c
 * (building, indexing) and dp_config_check.c (validation). Not for other
 * modules: they use the accessors in dp_config.h. */
#ifndef MESH_SIDECAR_DP_CONFIG_INTERNAL_H
#define MESH_SIDECAR_DP_CONFIG_INTERNAL_H

#include <stdatomic.h>

#include "sidecar/dp_config.h"

struct dp_config {
    atomic_int refs;
    bool frozen;
    dp_listener *listeners;
    size_t n_listeners, cap_listeners;
    dp_route_table *route_tables;
    size_t n_route_tables, cap_route_tables;
    dp_cluster *clusters;
    size_t n_clusters, cap_clusters;
    dp_load_assignment *assignments;
    size_t n_assignments, cap_assignments;
    /* Built by dp_config_freeze: positions sorted by name, for bsearch. */
    size_t *idx_listeners, *idx_route_tables, *idx_clusters, *idx_assignments;
    /* Per cluster (same position), its resolved EDS assignment or NULL. */
    const dp_load_assignment **cluster_la;
};

#endif
