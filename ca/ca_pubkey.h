/* ca/ca_pubkey.h — re-certifying a public key the CA has already certified (SVID rotation).
 *
 * meshd rotates a connected sidecar's SVID before it expires without a CSR:
 * the sidecar proved possession of the key when it got its current SVID, and
 * is proving it again on every TLS handshake of its live stream. The new
 * cert has the same profile as ca_issue_svid's (ca_issue.c) and is recorded
 * and audited the same way before it is returned. Kept in its own file (and
 * header) because it was added by the control-plane work, not the CA module. */
#ifndef MESH_CA_CA_PUBKEY_H
#define MESH_CA_CA_PUBKEY_H

#include <stdint.h>

#include <openssl/evp.h>

#include "ca/ca.h"
#include "common/error.h"
#include "store/store.h"

/* Signs an SVID for spiffe_id over pubkey (EC P-256/P-384 or RSA >= 2048),
 * TTL as ca_issue_svid (0 = default, outside [MIN, MAX] is MESH_EINVAL),
 * stores it durably with instance (the one the replaced cert records; "" =
 * identity-wide) and audits "cert.issue" with actor. */
int ca_issue_for_pubkey(mesh_ca *ca, mesh_store *st, EVP_PKEY *pubkey, const char *spiffe_id,
                        const char *instance, int64_t ttl_seconds, const char *actor,
                        ca_issued *out, mesh_err *err);

#endif
