/* sidecar/cert_pool_internal.h — cert_pool's struct, shared by cert_pool.c
 * (state, contexts) and cert_pool_file.c (persistence). Private to them. */
#ifndef MESH_SIDECAR_CERT_POOL_INTERNAL_H
#define MESH_SIDECAR_CERT_POOL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "sidecar/cert_pool.h"
#include "sidecar/tls_crl.h"

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
    STACK_OF(X509_CRL) *crls;       /* from ROOTCA; checked against their issuer on arrival */
    SSL_CTX *sctx, *cctx;           /* built from cur + bundle + crls */
    uint64_t generation;
    uint64_t crl_generation;        /* bumps when the CRLs change */
    bool expired_logged;            /* "refusing mTLS" logged for cur */
    bool hold_logged;               /* "holding next SVID" logged for next */
    bool revoked_logged;            /* "our SVID was revoked" logged for cur */
    char problem[512];              /* the xDS client's "stranded" verdict, "" if none */
    tls_crl_hooks hooks;            /* app data of sctx/cctx: handshakes refused as revoked */
    void (*crl_listener)(void *arg);
    void *crl_listener_arg;
    _Atomic uint64_t refused_revoked;
    int64_t last_refused_log;       /* rate limit of the "refusing revoked peer" line */
    uint64_t refused_unlogged;
};

void cp_svid_free(cp_svid *s);
/* Builds an SVID from parsed parts (takes ownership of key and chain on
 * success and on failure). Checks the leaf and that key matches it. */
int cp_svid_make(EVP_PKEY *key, STACK_OF(X509) *chain, cp_svid **out, mesh_err *err);
/* Rebuilds sctx/cctx from cur, bundle and crls (caller holds mu). */
int cp_rebuild_ctx(cert_pool *p, mesh_err *err);
/* Promotes next to current when it is usable (caller holds mu); true if it did. */
bool cp_try_promote(cert_pool *p, int64_t now);
/* s's chain verifies against bundle at now (why: OpenSSL's reason if not). */
bool cp_chain_verifies(const cp_svid *s, STACK_OF(X509) *bundle, int64_t now, char *why,
                       size_t whylen);

/* ---- cert_pool_crl.c ---- */
/* Whether s's leaf is listed by the pool's CRLs (caller holds mu); why gets
 * the description when it is. */
bool cp_svid_revoked(const cert_pool *p, const cp_svid *s, char *why, size_t len);
/* Sets up p->hooks (called once by cert_pool_new and cert_pool_load). */
void cp_hooks_init(cert_pool *p);

#endif
