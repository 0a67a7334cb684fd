/* sidecar/cert_pool_internal.h — cert_pool's struct, shared by cert_pool.c
 * (state, contexts) and cert_pool_file.c (persistence). Private to them. */
#ifndef MESH_SIDECAR_CERT_POOL_INTERNAL_H
#define MESH_SIDECAR_CERT_POOL_INTERNAL_H

#include <pthread.h>

#include "sidecar/cert_pool.h"

typedef struct cp_svid {
    EVP_PKEY *key;
    STACK_OF(X509) *chain;          /* leaf first */
    char id[DP_SPIFFE_ID_MAX + 1];
    char serial[80];
    int64_t not_before, not_after;
} cp_svid;

struct cert_pool {
    pthread_mutex_t mu;
    cp_svid *cur, *next;
    EVP_PKEY *pending_key;
    STACK_OF(X509) *bundle;
    SSL_CTX *sctx, *cctx;           /* built from cur + bundle */
    uint64_t generation;
    bool expired_logged;            /* "refusing mTLS" logged for cur */
    bool hold_logged;               /* "holding next SVID" logged for next */
};

void cp_svid_free(cp_svid *s);
/* Builds an SVID from parsed parts (takes ownership of key and chain on
 * success and on failure). Checks the leaf and that key matches it. */
int cp_svid_make(EVP_PKEY *key, STACK_OF(X509) *chain, cp_svid **out, mesh_err *err);
/* Rebuilds sctx/cctx from cur and bundle (caller holds mu). */
int cp_rebuild_ctx(cert_pool *p, mesh_err *err);

#endif
