/* tests/unit/test_meshd_util.h — fixtures for the meshd runtime tests (test_meshd_*.c): a
 * context set up the way meshd's main sets it up (md_opts_parse defaults, md_ctx_init)
 * but with no thread or server started, server calls the way on_new_call hands them
 * over, and mesh config to compile. Prefixed tmd_ so the single unit binary has no
 * clashes; the store and CA come from test_sds_util.h (tsd_env). */
#ifndef MESH_TESTS_TEST_MESHD_UTIL_H
#define MESH_TESTS_TEST_MESHD_UTIL_H

#include <stddef.h>

#include <openssl/evp.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "meshd/meshd_internal.h"

/* Identities of the tsd_env store (test_sds_util.h), in a config TMD_MESH_YAML. */
#define TMD_INSTANCE "meshd-test"

/* Two HTTP services, web calls api; workload ids TSD_WEB and TSD_API. */
extern const char TMD_MESH_YAML[];

/* A context with meshd's default options and db_path (borrowed; NULL for
 * pieces that open no store), trust domain TSD_TD. */
md_ctx *tmd_ctx_new(const char *db_path);
void tmd_ctx_free(md_ctx *ctx);

/* Parses yaml (which must be valid) into a heap config for md_cache_set_config. */
void tmd_config(const char *yaml, mesh_config *out);
/* Installs yaml as config version `version` in ctx's cache. */
void tmd_cache_config(md_ctx *ctx, const char *yaml, int64_t version);
/* Installs the CA list and bundle of st in ctx's cache (as the watcher does). */
void tmd_cache_cas(md_ctx *ctx, mesh_store *st);

/* A call as on_new_call makes one, without a grpc_call: it is created with a
 * send batch "in flight", so nothing meshd queues for the client is started —
 * it stays in the call's queue, where tmd_queued* read it. The call holds one
 * reference (the close batch's); tmd_call_free tears it down directly. */
md_call *tmd_call_new(md_ctx *ctx, enum md_call_kind kind, const char *spiffe_id);
/* The stream md_stream_open would attach (not registered). */
md_stream *tmd_stream_new(md_call *c);
void tmd_call_free(md_call *c);
size_t tmd_queued(md_call *c);
const md_out *tmd_queued_at(md_call *c, size_t i);
/* Queued item i as a DiscoveryResponse (free with ..._free_unpacked). */
Envoy__Service__Discovery__V3__DiscoveryResponse *tmd_response_at(md_call *c, size_t i);
/* Queued item i's bytes (malloc'd). */
uint8_t *tmd_bytes_at(md_call *c, size_t i, size_t *len);

/* Issues an SVID for c's identity with a new key (ttl seconds) and makes it
 * the certificate c connected with (peer_cert_pem, pubkey_sha), as the TLS
 * handshake would; serial (if non-NULL) gets its serial, *key_out (if
 * non-NULL) the key. */
struct tsd_env;
void tmd_connect_with_svid(struct tsd_env *e, md_call *c, int64_t ttl, char serial[48],
                           EVP_PKEY **key_out);
/* Runs job j as a worker of the pool would, with its own store handle and CA
 * from e's store; frees j. */
void tmd_run_job(md_ctx *ctx, struct tsd_env *e, void (*fn)(md_worker *, md_job *), md_job *j);

/* The watcher's tables, as md_watch_start makes them (no thread, no store);
 * md_watch_stop frees them. */
void tmd_watch_tables(md_ctx *ctx);

/* 1 when one of the PEM CRLs in pem lists the certificate serial_hex. */
int tmd_crl_lists(const char *pem, const char *serial_hex);

/* Current refcount of a call (atomics read). */
int tmd_refs(md_call *c);

#endif
