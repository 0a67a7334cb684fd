/* ca/ca_revoke.h — revocation: the RFC 5280 reasons, revoking a certificate
 * (keyCompromise revokes the key, not just one serial), the rule that no
 * issuance path certifies a compromised key again, and the CRLs meshd
 * distributes with the trust bundle so that every sidecar refuses revoked
 * peers itself.
 *
 * Key compromise: every unexpired certificate with that public key (any
 * identity) is revoked in the same transaction, and the key's SPKI hash goes
 * on the compromised list. ca_sign_leaf checks that list inside the
 * transaction that records a new certificate, so a renewal racing the
 * revocation either commits first (and is revoked with the others) or is
 * refused — no path (renewal over mTLS, same-key rotation, expired-SVID
 * recovery, join token, `meshctl cert issue`) escapes it.
 *
 * CRLs: one per CA in the bundle (prepared, active, retired), signed by that
 * CA with OpenSSL, X.509 v2 with thisUpdate/nextUpdate, a CRL number that
 * grows by one per CA and the reason code of each entry (absent for
 * unspecified, as RFC 5280 recommends). Stored in the store (crls), so every
 * meshd replica and every restart serves the same bytes and hence the same
 * SDS version. A CA whose certificate may not sign CRLs (an imported CA
 * without keyUsage cRLSign) gets none: a data plane would reject every CRL
 * it signed, so its revocations are enforced by meshd only. */
#ifndef MESH_CA_CA_REVOKE_H
#define MESH_CA_CA_REVOKE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "store/store.h"

/* RFC 5280 CRLReason codes we accept (certificateHold is not: a revocation
 * here is final, and removeFromCRL only exists in delta CRLs). */
enum {
    CA_REASON_UNSPECIFIED = 0,
    CA_REASON_KEY_COMPROMISE = 1,
    CA_REASON_CA_COMPROMISE = 2,
    CA_REASON_AFFILIATION_CHANGED = 3,
    CA_REASON_SUPERSEDED = 4,
    CA_REASON_CESSATION_OF_OPERATION = 5,
    CA_REASON_PRIVILEGE_WITHDRAWN = 9,
    CA_REASON_AA_COMPROMISE = 10,
};

/* CRL timing. nextUpdate is a week out and the CRL is re-signed once less
 * than half of that is left, so a third-party verifier that enforces
 * nextUpdate (Envoy) survives a meshd outage of 3.5 days at least; meshd's
 * own sidecars never fail closed on it (docs/security.md). Entries stay on
 * the CRL for an hour past the certificate's notAfter (clock skew). */
#define CA_CRL_VALIDITY       (7 * 24 * 3600)
#define CA_CRL_RESIGN_BEFORE  (CA_CRL_VALIDITY / 2)
#define CA_CRL_EXPIRED_MARGIN 3600

/* "keyCompromise" etc. (case-insensitive) -> code; MESH_EINVAL listing the
 * accepted names otherwise. */
int ca_revoke_reason_parse(const char *name, int *code_out, mesh_err *err);
/* Canonical name of a code ("unspecified" for unknown codes). */
const char *ca_revoke_reason_name(int code);
/* The code of a reason as stored with a certificate; free-form reasons from
 * before reasons were checked count as unspecified. */
int ca_revoke_reason_code(const char *stored);

typedef struct ca_revoke_result {
    char spiffe_id[512];
    char pubkey_sha256[65];
    int reason;                 /* CA_REASON_* */
    char **serials;             /* revoked by this call, the named one first */
    size_t n_serials;
    int key_recorded;           /* keyCompromise: the key is now on the compromised list */
    size_t other_key_valid;     /* unrevoked, unexpired certs of the identity with another key */
    size_t same_key_valid;      /* (not keyCompromise) unrevoked, unexpired certs sharing the key */
} ca_revoke_result;

/* Revokes serial for reason (a name ca_revoke_reason_parse accepts; NULL =
 * unspecified), audited "cert.revoke" per serial by actor, in one
 * transaction. keyCompromise revokes every unexpired cert of the key and
 * records the key; it is also accepted for a cert already revoked for
 * another reason (the reason becomes keyCompromise). MESH_ENOTFOUND: no such
 * serial; MESH_EEXISTS: already revoked (with that reason). */
int ca_revoke(mesh_store *st, const char *serial_hex, const char *reason, const char *actor,
              int64_t now, ca_revoke_result *out, mesh_err *err);
void ca_revoke_result_free(ca_revoke_result *r);

/* MESH_OK when the key (hex SHA-256 of its DER SPKI) may be certified;
 * MESH_EPERM naming the revocation that reported it compromised. */
int ca_key_check_usable(mesh_store *st, const char *spki_sha256_hex, mesh_err *err);
/* The same for the key of a PEM CSR (MESH_EINVAL when it does not parse). */
int ca_csr_key_check_usable(mesh_store *st, const char *csr_pem, mesh_err *err);

/* Re-signs, in the store, the CRL of each CA in the bundle whose revoked
 * entries changed, that has none yet, or whose nextUpdate is less than
 * CA_CRL_RESIGN_BEFORE away. Cheap when nothing changed (reads only); each
 * re-signing is its own write transaction that checks again, so replicas
 * sharing a store sign once. *changed_out (may be NULL) = CRLs written. */
int ca_crl_refresh(mesh_store *st, int64_t now, int *changed_out, mesh_err *err);
/* The stored CRLs of the CAs in the bundle, PEM-concatenated by CA id
 * ("" when there is none): CertificateValidationContext.crl of ROOTCA. */
int ca_crl_bundle_pem(mesh_store *st, char **pem_out, mesh_err *err);

#endif
