/* ca/ca_internal.h — pieces shared by the files of the CA module only.
 *
 * Not for use outside ca/: the public surface is ca.h, spiffe_id.h,
 * join_token.h and csr.h. */
#ifndef MESH_CA_CA_INTERNAL_H
#define MESH_CA_CA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "common/error.h"

/* CA states as stored (store.h documents their meaning). */
#define CA_STATE_PREPARED "prepared"
#define CA_STATE_ACTIVE   "active"
#define CA_STATE_RETIRED  "retired"
#define CA_STATE_REMOVED  "removed"

/* Settings key holding the store's trust domain. */
#define CA_SETTING_TRUST_DOMAIN "trust_domain"

/* The loaded signing CA. Immutable after ca_load, so one mesh_ca may be
 * shared by threads that each use their own store handle. */
struct mesh_ca {
    int64_t id;
    char trust_domain[256];
    X509 *cert;
    EVP_PKEY *key;
    /* PEM of the certs that follow the leaf in an issued chain: this CA's
     * cert and its intermediates when the CA is not a self-signed root;
     * empty when it is (peers already hold the root via the bundle). */
    char **chain_tail;
    size_t chain_tail_len;
    /* Earliest notAfter of this CA and every cert above it: no SVID may
     * outlive it, or it would fail validation before its own notAfter. */
    int64_t not_after;
    int64_t not_before;
};

/* ---- ca_util.c ------------------------------------------------------------ */

/* Copies s into buf for use inside an error message: non-printable bytes
 * become '?', and long input is cut with "..." so that attacker-supplied
 * strings (CSR SANs, tokens) cannot flood or corrupt logs. */
const char *ca_quote(const char *s, char *buf, size_t len);

/* Formats a Unix time as "2026-11-25T10:00:00Z". */
const char *ca_fmt_time(int64_t t, char *buf, size_t len);

/* Lowercase hex of bytes into out (2*n+1 bytes). */
void ca_hex(const unsigned char *in, size_t n, char *out);
/* SHA-256 of DER bytes (an SPKI) as 64 lowercase hex chars + NUL; takes
 * ownership of der (OPENSSL_free). n <= 0 means encoding failed: `what` names it. */
int ca_der_sha256_hex(unsigned char *der, int n, const char *what, char out_hex[65],
                      mesh_err *err);

/* Reads a whole file (at most max_bytes) into a NUL-terminated heap buffer. */
int ca_read_file(const char *path, size_t max_bytes, char **out, mesh_err *err);

/* Builds a new heap string from a memory BIO's contents. */
int ca_bio_to_string(BIO *bio, char **out, mesh_err *err);

/* ---- ca_keyfile.c --------------------------------------------------------- */

/* Creates dir (and missing parents) mode 0700; refuses an existing dir that
 * group or others may write to, since they could swap the key file. */
int ca_keydir_prepare(const char *dir, mesh_err *err);

/* Writes key as unencrypted PKCS#8 PEM to a new file (O_EXCL, mode 0600),
 * fsyncs file and directory. Fails if the file exists. */
int ca_keyfile_write(const char *path, EVP_PKEY *key, mesh_err *err);

/* Loads a private key from a file that must be a regular file with no group
 * or other permission bits (refuses 0640, 0644, ...). Encrypted keys are
 * refused rather than prompting on a terminal. */
int ca_keyfile_load(const char *path, EVP_PKEY **out, mesh_err *err);

/* ---- ca_material.c -------------------------------------------------------- */

/* Key type name as recorded in the store: "ec-p256", "ec-p384", "rsa-3072".
 * MESH_EINVAL for key types a CA may not use. */
int ca_key_type_name(EVP_PKEY *key, char *buf, size_t len, mesh_err *err);

/* Self-signed root for trust_domain with a fresh key of key_type. */
int ca_make_root(const char *trust_domain, const char *key_type, int64_t ttl_seconds,
                 X509 **cert_out, EVP_PKEY **key_out, mesh_err *err);

/* Plug-in CA: loads and checks operator material (see ca.h). chain_out
 * receives the certs above the CA cert up to and including the root, in
 * order (empty when the cert is itself a root). */
int ca_import(const char *trust_domain, const char *cert_path, const char *key_path,
              const char *chain_path, X509 **cert_out, EVP_PKEY **key_out,
              STACK_OF(X509) **chain_out, mesh_err *err);

/* ---- ca_x509.c ------------------------------------------------------------ */

/* 128 random bits with the top bit cleared, so the DER INTEGER is positive
 * and at most 16 bytes (RFC 5280 allows 20). */
int ca_random_serial(X509 *x, mesh_err *err);

/* Extension helpers. basicConstraints and keyUsage are always critical (RFC
 * 5280 and the SPIFFE X.509-SVID spec); cert_sign also sets cRLSign. */
int ca_add_basic_constraints(X509 *x, int is_ca, mesh_err *err);
int ca_add_key_usage(X509 *x, int digital_signature, int key_encipherment, int cert_sign,
                     mesh_err *err);
int ca_add_eku_server_client(X509 *x, mesh_err *err);
/* SKI of x's own public key (RFC 5280 method 1, SHA-1 of the key bits), and
 * the AKI pointing at issuer's key (its SKI if present, else the same hash). */
int ca_add_key_ids(X509 *x, X509 *issuer, mesh_err *err);
/* SAN with one URI and optional DNS names / IP literals; critical when the
 * subject is empty, as the SPIFFE X.509-SVID spec and RFC 5280 require. */
int ca_add_san(X509 *x, const char *uri, const char *const *dns_names, int critical,
               mesh_err *err);

/* Digest matching the CA key: SHA-384 for P-384, SHA-256 otherwise. */
const EVP_MD *ca_sign_digest(EVP_PKEY *key);

/* ---- ca_spki.c ------------------------------------------------------------ */

/* Puts the subject's public key into the leaf x. spki, when the caller has
 * one (the CSR's parsed SubjectPublicKeyInfo), must hold the same key as
 * pubkey; for EC P-256/P-384 named-curve keys it is copied without an
 * OpenSSL encoder/decoder round trip, giving the same bytes. Otherwise
 * (spki NULL, RSA, other encodings) this is X509_set_pubkey(x, pubkey). */
int ca_leaf_set_pubkey(X509 *x, EVP_PKEY *pubkey, const X509_PUBKEY *spki, mesh_err *err);

/* Hex SHA-256 of x's DER SubjectPublicKeyInfo: equal to pubkey_sha256_hex
 * of the key in it, without encoding the EVP_PKEY again. */
int ca_leaf_spki_sha256_hex(X509 *x, char out_hex[65], mesh_err *err);

/* ---- ca_trust.c ----------------------------------------------------------- */

/* The root of a stored CA: the last cert of its chain, or the CA cert itself. */
int ca_root_cert(const store_ca *c, X509 **out, mesh_err *err);
/* SHA-256 of the certificate's DER, lowercase hex. */
int ca_cert_sha256_hex(X509 *x, char out[65], mesh_err *err);

/* ---- ca_rotate.c ---------------------------------------------------------- */

/* ca_activate's work inside the caller's write transaction; note (may be
 * NULL) is appended to the audit detail; *old_out = the CA it retired. */
int ca_activate_in_tx(mesh_store *st, int64_t ca_id, const char *note, int64_t *old_out,
                      mesh_err *err);

/* ---- ca_csr.c ------------------------------------------------------------- */

/* The key policy for leaves (EC P-256/P-384, RSA 2048..8192 with a sane
 * exponent); `what` starts the messages ("CSR key", "public key"). */
int ca_check_leaf_key(EVP_PKEY *pk, const char *what, mesh_err *err);

/* ca_csr_check's work, also handing back the parsed request and the SPIFFE ID
 * it asks for (so ca_issue_svid parses once). *req_out may be NULL on entry
 * and is set only on success. */
int ca_csr_parse_checked(const char *csr_pem, const char *trust_domain,
                         const char *authorised_id, X509_REQ **req_out, char *id_out,
                         size_t id_len, mesh_err *err);

/* ---- ca_issue.c ----------------------------------------------------------- */

/* 0 becomes CA_DEFAULT_SVID_TTL; outside [CA_MIN_SVID_TTL, CA_MAX_SVID_TTL]
 * is MESH_EINVAL. */
int ca_check_ttl(int64_t *ttl, mesh_err *err);

/* The one place SVIDs are built, signed, stored and audited (profile in
 * ca_issue.c). id must already be checked; instance ("" or NULL = identity-wide)
 * is recorded with the cert; note (may be NULL) is appended to the audit
 * detail. On failure *out is zeroed and nothing is stored. */
int ca_sign_leaf(mesh_ca *ca, mesh_store *st, EVP_PKEY *pubkey, const char *id,
                 const char *instance, const char *const *dns_names, int64_t ttl,
                 const char *actor, const char *note, ca_issued *out, mesh_err *err);

#endif
