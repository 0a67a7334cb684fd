/* sds/compiler/xds_snapshot.h — the per-sidecar set of xDS resources meshd serves.
 *
 * The compiler (sds/compiler/xds_compile.c) turns the mesh config held in the store
 * into, for one sidecar identity, the Envoy v3 Listener, RouteConfiguration,
 * Cluster and ClusterLoadAssignment resources it needs, each already
 * serialized (the bytes that go into google.protobuf.Any.value). The ADS
 * stream code (sds/ads_*.c) compares a fresh snapshot with what it last sent
 * to decide whom to push: a type whose version changed is pushed, others are
 * not. Versions are content hashes, so an apply that does not change what a
 * sidecar sees pushes nothing to it. */
#ifndef MESH_SDS_COMPILER_XDS_SNAPSHOT_H
#define MESH_SDS_COMPILER_XDS_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/xds_wire.h"

enum xds_type { XDS_CDS = 0, XDS_EDS, XDS_LDS, XDS_RDS, XDS_TYPE_COUNT };  /* push order */

const char *xds_type_url(enum xds_type t);
int xds_type_from_url(const char *type_url, enum xds_type *out);  /* -1 if not LDS/RDS/CDS/EDS */

typedef struct xds_resource {
    char *name;
    uint8_t *data;       /* serialized message of the type's type_url */
    size_t len;
    char version[17];    /* 16 hex chars: hash of data */
} xds_resource;

typedef struct xds_type_set {
    xds_resource *items; /* sorted by name */
    size_t n;
    char version[17];    /* hash over (name, data) of all items */
} xds_type_set;

typedef struct xds_snapshot {
    char spiffe_id[512];
    xds_type_set types[XDS_TYPE_COUNT];
} xds_snapshot;

/* Finds a resource by name in one type; NULL if absent. */
const xds_resource *xds_snapshot_find(const xds_snapshot *s, enum xds_type t, const char *name);
/* Takes ownership of data; keeps items sorted; recomputes the type version. */
int xds_snapshot_add(xds_snapshot *s, enum xds_type t, const char *name, uint8_t *data,
                     size_t len, mesh_err *err);
void xds_snapshot_finish(xds_snapshot *s);  /* recompute all type versions */
void xds_snapshot_free(xds_snapshot *s);    /* frees members */

#endif
