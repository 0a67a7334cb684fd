/* sds/compiler/xds_compile_secret.h — the SDS Secret resources meshd serves
 * (type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret).
 *
 *   "default"  TlsCertificate.certificate_chain = the caller's current SVID chain
 *              (PEM, leaf first). NO private_key: the sidecar generated its key and
 *              sent only a CSR, so meshd never has it. The sidecar pairs this chain
 *              with its own key (matching the public key) — see docs/xds.md.
 *   "ROOTCA"   CertificateValidationContext.trusted_ca = the trust bundle (PEM),
 *              old and new roots during a CA rotation; crl = the CRL of each CA in
 *              the bundle (PEM), so every sidecar refuses revoked peers itself.
 * SPIRE-style names (the caller's SPIFFE ID for "default", "spiffe://<td>" for the
 * bundle) are the same messages under another name; sds_names.h decides who may
 * ask for what. The outputs are serialized Secret messages (the bytes of
 * google.protobuf.Any.value), malloc'd, owned by the caller. */
#ifndef MESH_SDS_COMPILER_XDS_COMPILE_SECRET_H
#define MESH_SDS_COMPILER_XDS_COMPILE_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define XDS_SECRET_DEFAULT "default"
#define XDS_SECRET_ROOTCA  "ROOTCA"

/* A Secret named `name` with tls_certificate.certificate_chain = chain_pem. The PEM
 * must hold one or more CERTIFICATE blocks and nothing private: input containing a
 * PRIVATE KEY block is refused (MESH_EINVAL) so a key can never leak into SDS. */
int xds_secret_tls_certificate(const char *name, const char *chain_pem, size_t len,
                               uint8_t **out, size_t *out_len, mesh_err *err);

/* A Secret named `name` with validation_context.trusted_ca = bundle_pem (one or
 * more CERTIFICATE blocks, same checks as above) and, when crl_len > 0,
 * validation_context.crl = crl_pem (one or more X509 CRL blocks, one per CA of
 * the bundle, nothing private) with only_verify_leaf_cert_crl = true: meshd's
 * CRLs are signed by the CAs that issue SVIDs, so only the leaf is checked
 * (an Envoy consuming this would otherwise need a CRL for every CA in the
 * chain, including an operator's root whose key meshd does not have). */
int xds_secret_validation_context(const char *name, const char *bundle_pem, size_t len,
                                  const char *crl_pem, size_t crl_len, uint8_t **out,
                                  size_t *out_len, mesh_err *err);

#endif
