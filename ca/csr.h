/* ca/csr.h — client-side key, CSR and certificate helpers.
 *
 * Used by the sidecar (make a key, ask for an SVID, read what came back),
 * by meshd (its own serving cert, peer certificate facts) and by tests.
 * Everything is OpenSSL 3 EVP; no function here touches the store.
 *
 * Conventions: functions return MESH_OK or a negative MESH_E* code and fill
 * err; strings returned through `char **` are malloc'd and freed by the
 * caller with free(). Serial numbers are lowercase hex without leading
 * zeros, as the store records them. Times are Unix seconds. */
#ifndef MESH_CA_CSR_H
#define MESH_CA_CSR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/error.h"

/* ---- keys ------------------------------------------------------------------ */

/* Generates a key. key_type: "ec-p256" (NULL or "" mean this default),
 * "ec-p384", "rsa-2048", "rsa-3072". MESH_EINVAL for anything else. */
int csr_keygen(const char *key_type, EVP_PKEY **out, mesh_err *err);

/* Unencrypted PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"). The caller is
 * responsible for where it goes (0600 files only); clear it with
 * OPENSSL_clear_free(pem, strlen(pem)) when done. */
int pem_write_private_key(EVP_PKEY *key, char **pem_out, mesh_err *err);

/* Parses a PEM private key (PKCS#8 or traditional). Encrypted keys are
 * refused (MESH_EINVAL) instead of prompting for a passphrase. */
int pem_read_private_key(const char *pem, EVP_PKEY **out, mesh_err *err);

/* "ec-p256", "ec-p384", "rsa-<bits>", "ed25519" or "unknown" into buf. */
void key_type_describe(EVP_PKEY *key, char *buf, size_t len);

/* Hex SHA-256 of the DER SubjectPublicKeyInfo (the store's pubkey_sha256). */
int pubkey_sha256_hex(EVP_PKEY *key, char out_hex[65], mesh_err *err);

/* 1 if the private key belongs to the certificate's public key, else 0. */
int cert_key_matches(X509 *cert, EVP_PKEY *key);

/* ---- CSRs ------------------------------------------------------------------ */

/* A PKCS#10 request for spiffe_id: empty subject, one critical URI SAN,
 * signed by key (SHA-256; SHA-384 for P-384). spiffe_id must parse as a
 * SPIFFE ID. */
int csr_create(EVP_PKEY *key, const char *spiffe_id, char **csr_pem_out, mesh_err *err);

/* ---- certificates ---------------------------------------------------------- */

/* Parses every CERTIFICATE block in pem, in order (leaf first for a chain).
 * MESH_EINVAL if there is none or one is damaged. Free with
 * OSSL_STACK_OF_X509_free / sk_X509_pop_free(sk, X509_free). */
int pem_read_cert_chain(const char *pem, STACK_OF(X509) **out, mesh_err *err);

/* The first certificate in pem. */
int pem_read_cert(const char *pem, X509 **out, mesh_err *err);

int pem_write_cert(X509 *cert, char **pem_out, mesh_err *err);

/* The certificate's single URI SAN. MESH_EINVAL if it has none or several
 * (not an SVID), MESH_EINVAL if it does not fit in len. */
int cert_spiffe_id(X509 *cert, char *buf, size_t len, mesh_err *err);

/* Serial as lowercase hex into buf (48 bytes is always enough for RFC 5280
 * serials). */
int cert_serial_hex(X509 *cert, char *buf, size_t len, mesh_err *err);

int cert_validity(X509 *cert, int64_t *not_before, int64_t *not_after, mesh_err *err);

/* Facts about the first certificate in pem; any output pointer may be NULL
 * (spiffe_id NULL skips the SAN check, so this also works for CA certs). */
int cert_pem_info(const char *pem, char *spiffe_id, size_t spiffe_id_len, char *serial_hex,
                  size_t serial_len, int64_t *not_before, int64_t *not_after, mesh_err *err);

/* ASN1_TIME to Unix seconds; -1 on a malformed time. */
int asn1_time_to_unix(const ASN1_TIME *t, int64_t *out);

#endif
