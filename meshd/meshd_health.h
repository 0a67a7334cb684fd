/* meshd/meshd_health.h — endpoint health from meshd's view (docs/control-plane.md
 * "Endpoint health").
 *
 * A workload's endpoint is served HEALTHY in EDS while its sidecar holds an
 * xDS stream, and for --endpoint-grace after it last did; past that it is
 * UNHEALTHY, until a stream of it opens again (HEALTHY at once). A workload
 * no sidecar ever connected for counts from when this meshd first saw it
 * (its start, or the config version that added the workload), so a restarted
 * meshd gives every sidecar the grace to reconnect before judging it.
 * "Connected" is read from the store's proxy-status rows, not from this
 * process's streams, so a stream held by another meshd replica counts too.
 * The decisions here are pure (time is passed in) so they are unit tested;
 * the watcher (meshd_watch.c) reads the rows and installs the result. */
#ifndef MESH_MESHD_MESHD_HEALTH_H
#define MESH_MESHD_MESHD_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "config/mesh_config.h"
#include "sds/compiler/xds_health.h"
#include "store/store.h"

#define MD_DEFAULT_ENDPOINT_GRACE_S 60

/* One workload's verdict. grace_s 0 = health is off (always healthy).
 * last_seen: when a stream of it was last open (0 = never); since: when
 * this meshd first saw the workload. */
bool md_health_endpoint_up(bool connected, int64_t last_seen, int64_t since, int64_t now,
                           int64_t grace_s);

/* The workload instance a proxy-status row of `row_spiffe_id` stands for,
 * given its node: "" for a sidecar enrolled for the identity as a whole (its
 * node is the SPIFFE ID), the part after '#' of "<SPIFFE ID>#<instance>",
 * else the node itself. NULL for rows that prove nothing (the plaintext
 * port's "unverified:" identities). Points into node_id. */
const char *md_health_row_instance(const char *row_spiffe_id, const char *node_id);

typedef struct md_map md_map;

/* What the watcher keeps between passes. */
typedef struct md_health_tracker {
    md_map *first_seen;           /* workload name -> int64_t* (Unix s) */
    xds_health last;              /* the set installed last */
} md_health_tracker;

void md_health_tracker_free(md_health_tracker *t);

/* The unhealthy set at `now` for the workloads of cfg, given every proxy
 * row (store_proxy_list_rows). Workloads first met now are remembered as
 * seen now. */
int md_health_compute(md_health_tracker *t, const mesh_config *cfg, const store_proxy *rows,
                      size_t n_rows, int64_t now, int64_t grace_s, xds_health *out,
                      mesh_err *err);

#endif
