/* sidecar/tls_util.h — X.509 and TLS helpers shared by the cert pool and the
 * proxy: SPIFFE ID extraction, certificate times, PEM (de)serialisation and
 * the expiry deadline of a live TLS connection. OpenSSL 3 EVP/X509 APIs only. */
#ifndef MESH_SIDECAR_TLS_UTIL_H
#define MESH_SIDECAR_TLS_UTIL_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* The X.509-SVID identity: exactly one URI SAN, a valid spiffe:// ID. */
int tls_cert_spiffe_id(X509 *x, char *buf, size_t len, mesh_err *err);
/* An ASN1_TIME as Unix seconds (0 when absent or unreadable). */
int64_t tls_asn1_time_unix(const ASN1_TIME *t);
int64_t tls_cert_not_before(const X509 *x);
int64_t tls_cert_not_after(const X509 *x);
void tls_cert_serial_hex(const X509 *x, char *buf, size_t len);
/* "CN=..., O=..." one-line subject. */
void tls_cert_subject(const X509 *x, char *buf, size_t len);
/* Lowercase hex SHA-256 of the DER (65 bytes with NUL; "" on failure). */
void tls_cert_sha256(X509 *x, char out[65]);
/* The same of any bytes: MESH_OK, or MESH_ECRYPTO with out "". */
int tls_sha256_hex(const void *data, size_t len, char out[65]);

/* One or more PEM certificates, in order. MESH_EINVAL when there is none or
 * a block does not parse; `what` names the input in the message. */
int tls_parse_certs(const char *pem, const char *what, STACK_OF(X509) **out, mesh_err *err);
/* The verdict after a loop of PEM_read_bio_* calls that read n_read objects:
 * MESH_OK when it stopped at a clean end ("no start line") with at least one
 * object, else MESH_EINVAL naming `what` and the object: "<what>: no PEM
 * <none_noun> found" or "<what>: <noun> N does not parse". Clears the OpenSSL
 * error queue; the caller frees what it read on an error. */
int tls_pem_read_verdict(int n_read, const char *what, const char *none_noun, const char *noun,
                         mesh_err *err);
/* A PEM private key (PKCS#8 or traditional). */
int tls_parse_key(const char *pem, const char *what, EVP_PKEY **out, mesh_err *err);
/* PEM encodings, malloc'd (NUL-terminated); NULL on OOM. The key is PKCS#8,
 * unencrypted: callers store it only in 0600 files and wipe it after use. */
char *tls_certs_to_pem(STACK_OF(X509) *certs);
char *tls_key_to_pem(EVP_PKEY *key);

/* RFC 3339 UTC ("2026-11-25T14:40:01Z"); buf >= 32 bytes. */
void tls_format_time(int64_t t, char *buf, size_t len);

/* When a live connection must be closed: the earliest notAfter of the local
 * certificate and the peer's verified chain. INT64_MAX if none is known. */
int64_t tls_conn_deadline(SSL *ssl);
/* The peer's SPIFFE ID after a completed handshake (leaf, exactly one URI SAN). */
int tls_peer_spiffe_id(SSL *ssl, char *buf, size_t len, mesh_err *err);

#endif
