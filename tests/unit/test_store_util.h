/* tests/unit/test_store_util.h — shared fixtures for the store's unit tests:
 * a fresh temp directory with an open store, canned CA/cert rows, file helpers. */
#ifndef MESH_TESTS_TEST_STORE_UTIL_H
#define MESH_TESTS_TEST_STORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define TSTORE_ID_WEB "spiffe://example.org/ns/default/sa/web"
#define TSTORE_ID_DB  "spiffe://example.org/ns/default/sa/db"

/* One test's world: a private directory under /tmp and a store inside it. */
typedef struct tstore_env {
    char dir[64];
    char path[128];
    mesh_store *st;
} tstore_env;

/* Makes the directory; opens env->path when open_store is non-zero. */
void tstore_setup(tstore_env *env, int open_store);
/* Closes the store (if open) and removes the directory with its files. */
void tstore_teardown(tstore_env *env);

/* Inserts a CA row in the given state and returns its id (asserts on failure). */
int64_t tstore_add_ca(mesh_store *st, const char *state, const char *serial_hex);

/* Fills c with a valid cert row (pointers into static strings or buf). */
void tstore_cert_init(store_cert *c, char serial_buf[41], unsigned serial, const char *spiffe_id,
                      int64_t ca_id, int64_t issued_at, int64_t not_after);

/* 64 hex digits derived from n (a stand-in SHA-256). */
void tstore_hex64(unsigned n, char out[65]);

/* Whole file into a malloc'd buffer (asserts on failure). */
unsigned char *tstore_read_file(const char *path, size_t *len_out);
void tstore_write_file(const char *path, const void *data, size_t len);
int tstore_file_exists(const char *path);

#endif
