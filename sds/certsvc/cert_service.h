/* sds/certsvc/cert_service.h — meshd's IstioCertificateService/CreateCertificate, minus the transport.
 *
 * Decides who the caller is and whether it may have a certificate, then has
 * the CA sign the CSR. Three ways in, tried in this order:
 *   (a) mTLS: the SPIFFE ID of the verified client certificate (renewal).
 *       The presented cert must be one we issued and not revoked, and its
 *       registration (the instance its record names, or the identity) must
 *       still exist. The CSR must ask for that ID.
 *       One exception: a cert revoked as "superseded" may renew once with a
 *       NEW key (auth "rekey"), so a sidecar re-keys without a token.
 *   (b) join token: metadata "authorization: Bearer mjt_..." (first contact).
 *       The identity and instance are the token's registration; the token is
 *       spent.
 *   (c) expired-SVID recovery: metadata "x-meshd-expired-svid" carrying the
 *       base64 of an SVID's PEM, plus a CSR signed by the same key. The SVID
 *       must chain to one of our CAs (validity times ignored), be recorded and
 *       unrevoked in the store, and have expired less than the grace (7 days)
 *       ago. Audited as "cert.recover".
 * The new cert records the instance the caller was enrolled as (the token's,
 * or the one the presented or expired cert records): never from the request,
 * so a sidecar cannot move itself to another instance of its identity.
 * A public key reported compromised (ca_revoke.h) is refused on every path,
 * on the token path before the token is spent.
 * Every refusal is audited ("cert.denied"), a validity_duration out of range
 * included, and mapped to the gRPC status the client should see, with the CA
 * module's message. The actor of a refusal is taken only from verified
 * material: the mTLS identity, a redeemed token's registration, or a recovery
 * whose chain and key verified; otherwise it is STORE_AUDIT_UNAUTHENTICATED,
 * and what the peer claimed goes in the detail, quoted and marked unverified. Depends on store and CA,
 * not on gRPC I/O, so it is unit-tested with a real store and CA. */
#ifndef MESH_SDS_CERTSVC_CERT_SERVICE_H
#define MESH_SDS_CERTSVC_CERT_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>

#include "ca/ca.h"
#include "common/error.h"
#include "store/store.h"

#define CERT_RECOVER_GRACE (7 * 24 * 3600)
/* `meshctl ca rotate` stops waiting for a sidecar that is past this grace:
 * the two must agree (ca/ca.h). */
_Static_assert(CERT_RECOVER_GRACE == CA_ROLLOUT_GONE_AFTER,
               "CA rotation's gone-after must equal the self-recovery grace");
#define CERT_RECOVER_HEADER "x-meshd-expired-svid"

/* Where refusal rows go: meshd passes its rate-limited audit queue; NULL
 * writes them to st directly. */
typedef void (*cert_service_audit_fn)(void *audit_ctx, const char *actor, const char *action,
                                      const char *subject, const char *detail, int ok);

typedef struct cert_service_req {
    const char *csr_pem;
    int64_t validity_seconds;     /* IstioCertificateRequest.validity_duration; 0 = default */
    int64_t default_ttl;          /* meshd --svid-ttl */
    const char *peer_spiffe_id;   /* verified mTLS identity, "" or NULL if none */
    const char *peer_cert_pem;    /* the certificate the peer presented, NULL if none */
    const char *authorization;    /* raw "authorization" metadata value, NULL if absent */
    const char *expired_svid_b64; /* raw x-meshd-expired-svid value, NULL if absent */
    const char *peer_addr;        /* for logs and audit detail */
    int64_t now;
    int64_t recover_grace;        /* 0 = CERT_RECOVER_GRACE */
    cert_service_audit_fn audit_fn; /* NULL = store_audit on st */
    void *audit_ctx;
} cert_service_req;

typedef struct cert_service_resp {
    char **chain;                 /* leaf, intermediates, issuing root (Istio order) */
    size_t chain_len;
    char **roots;                 /* every root of the trust bundle */
    size_t n_roots;
    char spiffe_id[512];
    char instance[128];           /* the instance the cert records ("" = identity-wide) */
    char serial_hex[48];
    int64_t not_after;
    const char *auth;             /* "mtls", "rekey", "token" or "recover" */
    /* Set on success and failure alike: what became of a join token the
     * request presented (CERT_TOKEN_NONE when it carried none). */
    enum cert_token_result {
        CERT_TOKEN_NONE = 0, CERT_TOKEN_REDEEMED, CERT_TOKEN_EXPIRED, CERT_TOKEN_SPENT,
        CERT_TOKEN_UNKNOWN, CERT_TOKEN_ERROR
    } token_result;
} cert_service_resp;

/* On success returns MESH_OK and fills out. On failure returns the MESH_E*
 * code (out->token_result still says what became of a token),
 * code, sets *status to the gRPC status to send and err to its message. */
int cert_service_create(mesh_ca *ca, mesh_store *st, const cert_service_req *req,
                        cert_service_resp *out, grpc_status_code *status, mesh_err *err);
void cert_service_resp_free(cert_service_resp *r);

/* The root certificate (PEM) at the top of CA ca_id's chain. */
int cert_service_root_of_ca(mesh_store *st, int64_t ca_id, char **root_pem, mesh_err *err);

/* Splits a PEM bundle into one malloc'd PEM string per certificate. */
int cert_service_split_pem(const char *pem, char ***out, size_t *n_out, mesh_err *err);
void cert_service_free_strings(char **v, size_t n);

#endif
