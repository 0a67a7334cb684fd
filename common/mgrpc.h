/* common/mgrpc.h — small helpers over the gRPC C core API shared by meshd and mesh-xdsclient.
 *
 * Byte buffers to and from flat bytes, metadata lookup, the verified peer
 * identity of a call, mesh status -> gRPC status mapping, and routing of
 * gRPC core's own log lines into common/log.h. */
#ifndef MESH_COMMON_MGRPC_H
#define MESH_COMMON_MGRPC_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <grpc/status.h>

#include "common/error.h"
#include "common/log.h"

#define MGRPC_MAX_MESSAGE (4 * 1024 * 1024)   /* receive limit on both sides */

/* Copies a (possibly multi-slice) received buffer into one malloc'd block. */
int mgrpc_buffer_to_bytes(grpc_byte_buffer *bb, uint8_t **out, size_t *len_out, mesh_err *err);

/* A byte buffer that takes ownership of data (freed with free() when gRPC
 * drops the last reference). On failure data is freed and NULL returned. */
grpc_byte_buffer *mgrpc_buffer_take(uint8_t *data, size_t len);

/* Value of the first metadata entry with key (case-sensitive: gRPC lowercases
 * keys on the wire). Returns the length, or -1 if absent; the value is copied
 * NUL-terminated into buf and -2 is returned if it does not fit. */
long mgrpc_md_get(const grpc_metadata_array *md, const char *key, char *buf, size_t len);

/* What the peer of a server call presented at the TLS handshake: the SPIFFE
 * ID its certificate names ("" when it presented no certificate or one
 * without exactly one URI SAN), the certificate's PEM (*cert_pem NULL if
 * none) and the rest of the chain it sent (*chain_pem NULL if none; pass NULL
 * not to ask); both malloc'd. This is verified only as far as the server's TLS
 * credentials verified it: meshd asks gRPC not to verify client certs and
 * verifies them itself (meshd/meshd_tls.c), so to meshd it is a claim until then. */
int mgrpc_peer_identity(grpc_call *call, char *spiffe_id, size_t spiffe_len, char **cert_pem,
                        char **chain_pem, mesh_err *err);

/* Maps a MESH_E* code to the gRPC status a client should see. */
grpc_status_code mgrpc_status_from_mesh(int code);
const char *mgrpc_status_name(grpc_status_code code);

/* Routes gpr_log output through log_msg (component "grpc") and sets gRPC's
 * own verbosity to match the mesh log level. Call once before grpc_init. */
void mgrpc_log_setup(enum log_level lvl);

/* Copies s escaped (common/escape.h) and cut to fit len, ending in "..." when
 * cut. Peer-supplied strings that are kept or sent back (Node.id, error
 * details, method names) go through this; log lines are escaped at the sink
 * anyway, and escaping twice changes nothing. */
const char *mgrpc_printable(const char *s, char *buf, size_t len);

/* gpr_timespec for now + ms (GPR_CLOCK_MONOTONIC). */
gpr_timespec mgrpc_deadline_ms(int64_t ms);

#endif
