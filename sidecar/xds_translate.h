/* sidecar/xds_translate.h — decoded xDS resources -> the data plane's dp_config.
 *
 * Each xDS type maps onto one dp_config table (LDS -> listeners, RDS -> route
 * tables, CDS -> clusters, EDS -> load assignments), so a SotW response of one
 * type rebuilds exactly one table on a copy of the running snapshot. The
 * translation is strict about meaning: anything that would change routing or
 * authorisation if silently ignored (a filter we do not implement, a DENY RBAC
 * policy, a path rewrite, a DNS cluster, inline private keys) is rejected with
 * a message naming the resource and field, which becomes the NACK detail.
 * Best-effort tuning we do not implement (locality weights, stat prefixes,
 * codec options) is accepted and ignored. docs/dataplane.md lists both. */
#ifndef MESH_SIDECAR_XDS_TRANSLATE_H
#define MESH_SIDECAR_XDS_TRANSLATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "google/protobuf/any.pb-c.h"
#include "sidecar/dp_config.h"
#include "sidecar/xds_sotw.h"

/* Checks that an Any from a response of type t carries that type, decodes it
 * enough to learn its name, and copies name + bytes into *out. */
int xdsc_resource_from_any(enum xdsc_type t, const Google__Protobuf__Any *any, xdsc_resource *out,
                           mesh_err *err);

/* One serialized resource into the mutable cfg (deep-copied by dp_config). */
int xdsc_translate_listener(dp_config *cfg, const uint8_t *data, size_t len, mesh_err *err);
int xdsc_translate_route_config(dp_config *cfg, const uint8_t *data, size_t len, mesh_err *err);
int xdsc_translate_cluster(dp_config *cfg, const uint8_t *data, size_t len, mesh_err *err);
int xdsc_translate_assignment(dp_config *cfg, const uint8_t *data, size_t len, mesh_err *err);

/* Every resource of type t (LDS, RDS, CDS, EDS) into cfg, whose table for t
 * must be empty. SDS: MESH_EINVAL (secrets go to the cert pool). */
int xdsc_translate_table(dp_config *cfg, enum xdsc_type t, const xdsc_resource *res, size_t n,
                         mesh_err *err);

/* The dp_config table mask for t (0 for SDS). */
unsigned xdsc_type_table(enum xdsc_type t);

/* Names the snapshot depends on: RDS route tables its HTTP listeners use, and
 * EDS load assignments its EDS clusters use. Added to *out. */
int xdsc_config_rds_names(const dp_config *cfg, xdsc_names *out, mesh_err *err);
int xdsc_config_eds_names(const dp_config *cfg, xdsc_names *out, mesh_err *err);

#endif
