/* sidecar/tls_crl.h — X.509 CRLs in the data plane: parsing the CRLs meshd
 * sends in ROOTCA (CertificateValidationContext.crl), checking one against
 * its issuer, looking a certificate up, and the TLS verify callback that
 * refuses revoked peers at the handshake.
 *
 * Policy of the callback (docs/security.md): a CRL whose nextUpdate has
 * passed is still enforced — it lists what was revoked when it was signed,
 * and revocations are never undone — so a long meshd outage never makes the
 * data plane fail closed (or open) because of CRL freshness. A CA without a
 * CRL has nothing of it revoked that the sidecar knows of. A revoked peer,
 * or a CRL that does not verify against the chain, fails the handshake. */
#ifndef MESH_SIDECAR_TLS_CRL_H
#define MESH_SIDECAR_TLS_CRL_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Every "X509 CRL" PEM block of pem, in order; NULL or "" gives an empty
 * stack. MESH_EINVAL naming the block that does not parse, or when pem holds
 * something that is not a CRL. */
int tls_parse_crls(const char *pem, STACK_OF(X509_CRL) **out, mesh_err *err);
/* PEM of every CRL (malloc'd, "" for none); NULL on OOM. */
char *tls_crls_to_pem(STACK_OF(X509_CRL) *crls);

/* The cRLNumber extension, -1 when absent or unreadable. */
int64_t tls_crl_number(const X509_CRL *crl);
int64_t tls_crl_this_update(const X509_CRL *crl);
int64_t tls_crl_next_update(const X509_CRL *crl);   /* 0 when absent */
/* One-line issuer name ("O=example.org, CN=meshd root CA ..."). */
void tls_crl_issuer(const X509_CRL *crl, char *buf, size_t len);
/* RFC 5280 name of a CRLReason code ("keyCompromise", ...). */
const char *tls_crl_reason_name(int code);

/* When crl lists cert (same issuer name, serial on it): true, with why =
 * "certificate serial S of <SPIFFE ID> was revoked at T (reason)". */
bool tls_crl_lists(X509_CRL *crl, X509 *cert, char *why, size_t len);
/* The first CRL of crls whose issuer is cert's issuer, NULL if none. */
X509_CRL *tls_crl_for(STACK_OF(X509_CRL) *crls, X509 *cert);

/* Hooks the verify callback of a context uses; the callback reaches them
 * through SSL_CTX_get_app_data. `refused` is called (on the thread running
 * the handshake) for each handshake refused because the peer is revoked. */
typedef struct tls_crl_hooks {
    void (*refused)(void *arg, bool inbound, const char *why);
    void *arg;
} tls_crl_hooks;

/* For SSL_CTX_set_verify on contexts whose X509_STORE holds CRLs with
 * X509_V_FLAG_CRL_CHECK: applies the policy above. */
int tls_crl_verify_cb(int ok, X509_STORE_CTX *ctx);

#endif
