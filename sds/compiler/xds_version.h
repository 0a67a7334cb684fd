/* sds/compiler/xds_version.h — content versions for xDS resources and secrets.
 *
 * A version is the first 64 bits of SHA-256 over the content, as 16 lower-case
 * hex chars. Content hashes (not counters) make versions stable across meshd
 * restarts and replicas: two meshd processes compiling the same config give a
 * sidecar the same versions, so a reconnect to another replica pushes nothing
 * new, and an apply that changes nothing a sidecar sees pushes nothing to it. */
#ifndef MESH_SDS_COMPILER_XDS_VERSION_H
#define MESH_SDS_COMPILER_XDS_VERSION_H

#include <stddef.h>
#include <stdint.h>

#define XDS_VERSION_LEN 16   /* hex chars, without the NUL */

/* First 64 bits of SHA-256(data), big-endian. Returns 0 and sets *out, or -1 if
 * OpenSSL could not hash (allocation failure). */
int xds_hash64(const void *data, size_t len, uint64_t *out);
/* SHA-256 over name, a NUL, then data: a resource's identity plus content. */
int xds_hash64_named(const char *name, const void *data, size_t len, uint64_t *out);

void xds_version_format(uint64_t v, char out[XDS_VERSION_LEN + 1]);
/* Parses 16 hex chars back; -1 if s is not exactly that. */
int xds_version_parse(const char *s, uint64_t *out);

/* Version string of data. If hashing fails (out of memory inside OpenSSL) the
 * version is "unhashed-<len>", which never equals a real version, so the
 * content is pushed again rather than silently considered unchanged. */
void xds_version_of(const void *data, size_t len, char out[XDS_VERSION_LEN + 1]);

#endif
