/* tests/unit/test_ca_util.h — shared fixtures for the CA unit tests
 * (test_ca_*.c): a private temp dir with a store and key dir, CSR builders
 * for good and deliberately bad requests, and shell/file helpers for
 * checking results with the openssl CLI. */
#ifndef MESH_TESTS_TEST_CA_UTIL_H
#define MESH_TESTS_TEST_CA_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "store/store.h"

#define TCA_TD      "example.org"
#define TCA_ID_WEB  "spiffe://example.org/ns/default/sa/web"
#define TCA_ID_DB   "spiffe://example.org/ns/default/sa/db"

typedef struct tca_env {
    char dir[64];       /* mkdtemp("/tmp/meshd-test-XXXXXX") */
    char db[128];       /* <dir>/mesh.db */
    char keydir[128];   /* <dir>/keys (created by ca_init) */
    mesh_store *st;
} tca_env;

void tca_setup(tca_env *e);
/* Closes the store and removes the directory tree. */
void tca_teardown(tca_env *e);

/* ca_init with a generated root (key_type NULL = default); asserts success. */
int64_t tca_init(tca_env *e, const char *key_type, int64_t ttl);
/* ca_load; asserts success. */
mesh_ca *tca_load(tca_env *e);

/* A key: alg "EC" with a curve name, "RSA" with bits, or "ED25519". */
EVP_PKEY *tca_key_ec(const char *curve);
EVP_PKEY *tca_key_rsa(unsigned bits);
EVP_PKEY *tca_key_ed25519(void);

/* CSR with full control for negative tests. uris/dns: NULL-terminated
 * lists (NULL = none); no_san leaves the SAN extension out entirely;
 * ca_true adds basicConstraints CA:TRUE; md NULL = SHA-256 (ignored for
 * Ed25519). Returns a malloc'd PEM. */
typedef struct tca_csr_opts {
    const char *const *uris;
    const char *const *dns;
    int no_san;
    int ca_true;
    const EVP_MD *md;
} tca_csr_opts;
char *tca_csr_custom(EVP_PKEY *key, const tca_csr_opts *o);
/* A well-formed CSR for one SPIFFE ID using csr.h; *key_out gets the key
 * when non-NULL (else freed). */
char *tca_csr(const char *key_type, const char *id, EVP_PKEY **key_out);

/* Issues a leaf for id with a fresh EC key; asserts success. */
void tca_issue(mesh_ca *ca, mesh_store *st, const char *id, int64_t ttl, ca_issued *out);

/* Number of cert rows, expired included. */
int64_t tca_cert_count(mesh_store *st);
/* Number of audit rows with this action and ok flag. */
int tca_audit_count(mesh_store *st, const char *action, int ok);

/* Runs a shell command, capturing stdout+stderr into out (may be NULL).
 * Returns the exit status (or -1). */
int tca_sh(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void tca_write(const char *path, const char *data);
char *tca_read(const char *path);   /* malloc'd, asserts */
/* Occurrences of needle in hay. */
int tca_count(const char *hay, const char *needle);

/* A certificate signed by issuer (or self-signed when issuer is NULL) with
 * the given validity offsets from now, as PEM; is_ca selects CA:TRUE +
 * keyCertSign vs a leaf profile. */
char *tca_make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int64_t nb_off,
                    int64_t na_off, int is_ca, const char *cn);

#endif
