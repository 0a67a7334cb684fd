/* sidecar/xds_tr_secret.h — SDS secrets from meshd -> the cert pool.
 *
 * meshd serves two secrets over ADS:
 *   "default"  TlsCertificate whose certificate_chain is our SVID chain (leaf
 *              first). meshd never has our key, so a private_key in it is
 *              refused; the chain is paired with a key the pool holds.
 *   "ROOTCA"   CertificateValidationContext whose trusted_ca is the bundle and
 *              whose crl holds the CRL of each CA in it (cert_pool_set_trust:
 *              a CRL that does not verify, or an older one, is NACKed).
 * The bundle is applied before the certificate, so an SVID from a new CA
 * finds the bundle that trusts it. A "default" that is not newer than the SVID
 * in use (SDS re-sends, or a re-issue we already got by CSR) is accepted and
 * ignored: the pool is never rotated backwards. */
#ifndef MESH_SIDECAR_XDS_TR_SECRET_H
#define MESH_SIDECAR_XDS_TR_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "sidecar/cert_pool.h"
#include "sidecar/xds_sotw.h"

typedef struct xdsc_secret {
    char *name;
    char *chain_pem;      /* "default": the SVID chain; else NULL */
    char *bundle_pem;     /* "ROOTCA": the trusted CAs; else NULL */
    char *crl_pem;        /* "ROOTCA": its CRLs (validation_context.crl); NULL if none */
} xdsc_secret;

/* Decodes and checks one Secret (shape only; no pool). */
int xdsc_secret_parse(const uint8_t *data, size_t len, xdsc_secret *out, mesh_err *err);
void xdsc_secret_free(xdsc_secret *s);

/* Applies an SDS response's secrets to the pool. *changed says whether the
 * pool took anything new. An error leaves the message for the NACK; a
 * bundle applied before a failing certificate stays (it is valid alone). */
int xdsc_secrets_apply(cert_pool *pool, const xdsc_resource *res, size_t n, int64_t now,
                       bool *changed, mesh_err *err);

#endif
