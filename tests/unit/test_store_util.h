/* tests/unit/test_store_util.h — shared fixtures for the store's unit tests:
 * a fresh temp directory with an open store, canned CA/cert rows, file helpers. */
#ifndef MESH_TESTS_TEST_STORE_UTIL_H
#define MESH_TESTS_TEST_STORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define TSTORE_ID_WEB "spiffe://example.org/ns/default/sa/web"
#define TSTORE_ID_DB  "spiffe://example.org/ns/default/sa/db"

/* One test's world: a private directory under /tmp and a store inside it:
 * an SQLite file there, or (tstore_setup_any with MESH_TEST_PG_URL set) a
 * fresh PostgreSQL schema of its own. */
typedef struct tstore_env {
    char dir[64];
    char path[128];     /* the --db value: a file path or a postgres:// URL */
    char pg_db[64];     /* the PostgreSQL schema made for this test ("" = SQLite) */
    mesh_store *st;
} tstore_env;

/* Makes the directory; opens env->path (an SQLite file) when open_store is
 * non-zero. For suites about the SQLite file itself (integrity, backup). */
void tstore_setup(tstore_env *env, int open_store);
/* The same for backend-neutral suites: when MESH_TEST_PG_URL names a
 * PostgreSQL server (make unit-pg), env->path is a new, empty schema there. */
void tstore_setup_any(tstore_env *env, int open_store);
/* Is this run against PostgreSQL (MESH_TEST_PG_URL set)? */
int tstore_on_pg(void);
/* Closes the store (if open), drops the test's schema, removes the directory. */
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
