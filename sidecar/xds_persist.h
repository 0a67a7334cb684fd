/* sidecar/xds_persist.h — the last accepted xDS resources, on disk, per type.
 *
 * So that a sidecar restarted while meshd is down serves its last good config
 * (together with the persisted cert pool) until its SVID expires. One file per
 * type in the state directory, "xds-<type>.pb" (e.g. xds-lds.pb), mode 0600,
 * written atomically (temp file, fsync, rename, fsync dir):
 *
 *     "MXDS1 <64 hex sha256 of payload> <payload length>\n" payload
 *
 * where payload is a serialized DiscoveryResponse (version_info, type_url,
 * resources as google.protobuf.Any) — the same bytes meshd sends, so loading
 * goes through the same validation as a live response. The checksum catches
 * truncation and bit rot; a damaged file is reported and ignored (the type
 * starts empty), never half-applied. */
#ifndef MESH_SIDECAR_XDS_PERSIST_H
#define MESH_SIDECAR_XDS_PERSIST_H

#include <stddef.h>

#include "common/error.h"
#include "sidecar/xds_sotw.h"

/* Writes version + resources of type t. */
int xdsc_persist_save(const char *dir, enum xdsc_type t, const char *version,
                      const xdsc_resource *res, size_t n, mesh_err *err);

/* Reads type t's file back into a decoded DiscoveryResponse (free with
 * envoy__service__discovery__v3__discovery_response__free_unpacked).
 * MESH_ENOTFOUND: no file. MESH_ECORRUPT: bad header, checksum or decoding,
 * or a type_url that is not t's. */
int xdsc_persist_load(const char *dir, enum xdsc_type t,
                      Envoy__Service__Discovery__V3__DiscoveryResponse **out, mesh_err *err);

/* The file name of type t's response in the state directory ("xds-lds.pb"). */
const char *xdsc_persist_file(enum xdsc_type t);

/* Removes every persisted type (tests, and a sidecar whose identity changed). */
void xdsc_persist_clear(const char *dir);

/* Atomically writes data to path with mode 0600 (shared with the client's
 * other state files). */
int xdsc_write_file_atomic(const char *path, const void *data, size_t len, mesh_err *err);

/* Reads a whole regular file of at most max bytes; NUL-terminated. */
int xdsc_read_file(const char *path, size_t max, char **out, size_t *len_out, mesh_err *err);

#endif
