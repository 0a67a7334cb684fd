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
#include "common/xds_wire.h"


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

/* What a failed step was checking. The same MESH_E* code means something
 * else to a client depending on it: EINVAL in a request is the client's to
 * fix, EINVAL in a join token is a refused credential, EINVAL in meshd's own
 * store is meshd's problem. */
typedef enum mgrpc_fault {
    MGRPC_FAULT_REQUEST,    /* the request: its content, the caller's rights, and whether
                             * meshd (its CA) can serve it */
    MGRPC_FAULT_CREDENTIAL, /* a credential the caller presented to authenticate */
    MGRPC_FAULT_SERVER,     /* meshd's own work: reading its store, building the reply */
} mgrpc_fault;

/* The one mapping from a MESH_E* code to the gRPC status a client sees.
 *
 *   code        REQUEST              CREDENTIAL        SERVER
 *   OK          OK                   OK                OK
 *   EINVAL      INVALID_ARGUMENT     UNAUTHENTICATED   INTERNAL
 *   ENOTFOUND   NOT_FOUND            UNAUTHENTICATED   INTERNAL
 *   EEXISTS     ALREADY_EXISTS       UNAUTHENTICATED   INTERNAL
 *   EPERM       PERMISSION_DENIED    UNAUTHENTICATED   INTERNAL
 *   EEXPIRED    FAILED_PRECONDITION  UNAUTHENTICATED   INTERNAL
 *   EBUSY       UNAVAILABLE in every column: transient, retry with backoff
 *   ENOSPC      UNAVAILABLE in every column: the store's disk is full; the same
 *               request succeeds once the operator frees space, so retry
 *   ENOMEM      RESOURCE_EXHAUSTED in every column: meshd is short of memory, retry
 *   EIO, ECORRUPT, ECRYPTO, EINTERNAL and any other code: INTERNAL
 *
 * EEXPIRED in a request means something it needs has run out (the CA would
 * expire before the SVID asked for): the system is not in the state the
 * request needs. An expired credential of the caller's is a CREDENTIAL fault.
 * A refused credential is always UNAUTHENTICATED, so a client cannot tell a
 * spent token from an unknown one; meshd's own failures while checking it
 * keep their retryable status, so a client does not give up on a good token. */
grpc_status_code mgrpc_status_from_mesh(int code, mgrpc_fault fault);
const char *mgrpc_status_name(grpc_status_code code);

/* Routes gpr_log output through log_msg (component "grpc") and sets gRPC's
 * own verbosity to match the mesh log level. Call once before grpc_init. */
void mgrpc_log_setup(enum log_level lvl);
/* The same, but a failed server-certificate check is logged at debug: for a
 * client that explains such failures itself. */
void mgrpc_log_setup_client(enum log_level lvl);

/* Copies s escaped (common/escape.h) and cut to fit len, ending in "..." when
 * cut. Peer-supplied strings that are kept or sent back (Node.id, error
 * details, method names) go through this; log lines are escaped at the sink
 * anyway, and escaping twice changes nothing. */
const char *mgrpc_printable(const char *s, char *buf, size_t len);

/* gpr_timespec for now + ms (GPR_CLOCK_MONOTONIC). */
gpr_timespec mgrpc_deadline_ms(int64_t ms);

#endif
