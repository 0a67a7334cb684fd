/* sds/certsvc/svid_recover.h — checks for the expired-SVID self-recovery path of CreateCertificate.
 *
 * A sidecar whose SVID expired while meshd was unreachable proves who it is
 * with that SVID (sent base64-encoded in metadata, since it can no longer be
 * used in a TLS handshake) and a CSR signed by the same private key. We
 * accept it when, and only when:
 *   - the SVID chains to a CA in our bundle (validity times ignored),
 *   - its serial is recorded in the store for the same SPIFFE ID and public
 *     key, and is not revoked, and that key was never reported compromised,
 *   - it expired less than `grace` seconds ago,
 *   - the CSR's self-signature verifies and its public key is the SVID's,
 *   - its registration (the instance the record names, or the identity) is
 *     still there.
 * This is strictly weaker than nothing: possession of the key is proven by
 * the CSR signature, exactly as mTLS would prove it. The chain and the key
 * are checked first, so every later refusal has a verified requester
 * (svid_recover_result.verified). */
#ifndef MESH_SDS_CERTSVC_SVID_RECOVER_H
#define MESH_SDS_CERTSVC_SVID_RECOVER_H

#include <stdint.h>

#include <grpc/status.h>

#include "common/error.h"
#include "store/store.h"

#define SVID_RECOVER_MAX_B64 (32 * 1024)

typedef struct svid_recover_result {
    char spiffe_id[512];          /* read from the presented SVID: a claim until verified */
    char instance[128];           /* the instance the expired SVID's record names ("" = none) */
    char serial_hex[48];
    int64_t not_after;
    /* 1 once the SVID chains to one of our CAs AND the CSR proves possession
     * of its key: from then on spiffe_id names who is asking (an audit row
     * may call it the actor). A cert alone proves nothing: certificates are
     * public, so anyone may paste one. */
    int verified;
} svid_recover_result;

int svid_recover_check(mesh_store *st, const char *svid_b64, const char *csr_pem, int64_t now,
                       int64_t grace, svid_recover_result *out, grpc_status_code *status,
                       mesh_err *err);

/* Decodes standard base64 (whitespace ignored) into a NUL-terminated buffer. */
int svid_b64_decode(const char *in, char **out, size_t *len_out, mesh_err *err);

#endif
