/* tests/unit/test_sds_util.h — fixtures for the sds unit tests (test_sds_*.c): a temp
 * dir with a real store and CA, registrations and join tokens, keys and CSRs, and
 * certificates issued the way meshd issues them. Prefixed tsd_ so the single unit
 * binary has no clashes with other modules' helpers. */
#ifndef MESH_TESTS_TEST_SDS_UTIL_H
#define MESH_TESTS_TEST_SDS_UTIL_H

#include <stdint.h>

#include <openssl/evp.h>

#include "ca/ca.h"
#include "store/store.h"

#define TSD_TD  "example.org"
#define TSD_WEB "spiffe://example.org/ns/demo/sa/web"
#define TSD_API "spiffe://example.org/ns/demo/sa/api"

typedef struct tsd_env {
    char dir[64];
    char db[128];
    char keydir[128];
    mesh_store *st;
    mesh_ca *ca;
} tsd_env;

/* Temp dir, store, an initialised and loaded CA, registrations for WEB and API. */
void tsd_setup(tsd_env *e);
void tsd_teardown(tsd_env *e);

/* A fresh join token for id (malloc'd). */
char *tsd_token(tsd_env *e, const char *id);
/* New EC P-256 key and a CSR for id made with it (malloc'd PEM). */
char *tsd_csr(const char *id, EVP_PKEY **key_out);
/* A CSR for id signed by an existing key. */
char *tsd_csr_for(EVP_PKEY *key, const char *id);
/* Issues an SVID for key with ttl; returns the leaf PEM (malloc'd). */
char *tsd_issue(tsd_env *e, EVP_PKEY *key, const char *id, int64_t ttl, char serial[48],
                int64_t *not_after);
/* Audit rows with this action and ok flag. */
int tsd_audit_count(tsd_env *e, const char *action, int ok);

#endif
