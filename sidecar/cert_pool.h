/* sidecar/cert_pool.h — the sidecar's identity material and its TLS contexts.
 *
 * Holds the current X.509-SVID (chain + the sidecar's own private key), the
 * next SVID while a rotation is in progress, a key generated for a CSR in
 * flight, and the trust bundle (every root meshd publishes, old and new
 * during a CA rotation). From these it builds one server and one client
 * SSL_CTX: TLS 1.3 only, peer certificate required and verified against the
 * bundle, no session resumption (a root removed from the bundle must stop
 * being accepted at once). New material produces new contexts for NEW
 * handshakes; live connections keep the SSL they handshook with.
 *
 * Rotation: cert_pool_offer_svid() stages an SVID as "next". It is promoted
 * to current once its notBefore has passed and its chain verifies against the
 * bundle, so an SVID from a new CA waits for the bundle that trusts it (no
 * handshake fails during a CA rotation). If there is no usable current SVID,
 * a next one is promoted at once. cert_pool_tick() retries held SVIDs.
 *
 * Revocation: the CRLs from ROOTCA go into both contexts' X509_STORE with
 * X509_V_FLAG_CRL_CHECK (tls_crl.h has the policy). A current SVID that a CRL
 * lists is treated like an expired one: a usable next SVID replaces it at
 * once, and without one cert_pool_*_ctx refuse (MESH_EPERM).
 *
 * Fail closed: past the current SVID's notAfter, cert_pool_*_ctx refuse with
 * MESH_EEXPIRED and one log line "SVID spiffe://... expired at ...; refusing
 * mTLS until meshd issues a new one". The key and the expired chain stay
 * available (cert_pool_export_identity) for self-recovery.
 *
 * Persistence: cert_pool_save() writes key, chains and bundle atomically to
 * one 0600 file; cert_pool_load() refuses a file readable by others and
 * detects truncation/corruption by a SHA-256 over the content.
 *
 * Thread safety: every function may be called from any thread (one mutex,
 * held only for in-memory work; the event loop takes it once per handshake
 * to fetch a context reference). */
#ifndef MESH_SIDECAR_CERT_POOL_H
#define MESH_SIDECAR_CERT_POOL_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "sidecar/dp_spiffe.h"

#define CERT_POOL_MAX_ROOTS_INFO 16
#define CERT_POOL_NO_SVID INT64_MIN   /* cert_pool_seconds_left when there is no SVID */

typedef struct cert_pool cert_pool;

typedef struct cert_pool_svid_info {
    bool present;
    char spiffe_id[DP_SPIFFE_ID_MAX + 1];
    char serial_hex[80];
    int64_t not_before, not_after;
    int64_t seconds_left;       /* not_after - now; <= 0 once expired */
    bool revoked;               /* listed by a CRL the pool holds */
    char revoked_why[256];
} cert_pool_svid_info;

typedef struct cert_pool_crl_info {
    char issuer[256];
    int64_t number;             /* cRLNumber, -1 if absent */
    int64_t this_update, next_update;
    size_t n_revoked;
} cert_pool_crl_info;

typedef struct cert_pool_root_info {
    char subject[256];
    char serial_hex[80];
    char sha256[65];
    int64_t not_after;
} cert_pool_root_info;

typedef struct cert_pool_info {
    char trust_domain[256];     /* of the current (else next) SVID; "" if none */
    cert_pool_svid_info current, next;
    bool pending_key;           /* a key made for a CSR whose SVID has not arrived */
    size_t n_roots;             /* roots in the bundle; the first 16 are described */
    cert_pool_root_info roots[CERT_POOL_MAX_ROOTS_INFO];
    size_t n_crls;              /* CRLs held; the first 16 are described */
    cert_pool_crl_info crls[CERT_POOL_MAX_ROOTS_INFO];
    uint64_t crl_generation;
    uint64_t refused_revoked;   /* handshakes refused: the peer is revoked */
    char problem[512];          /* why the sidecar is stranded, "" if it is not */
    uint64_t generation;        /* bumps on every change */
} cert_pool_info;

int cert_pool_new(cert_pool **out, mesh_err *err);
void cert_pool_free(cert_pool *p);     /* NULL is fine */

/* Key custody: the private key never leaves the pool except through
 * cert_pool_export_identity / cert_pool_save. cert_pool_make_csr signs a CSR
 * (one URI SAN = spiffe_id, empty subject) with a freshly generated ECDSA
 * P-256 key when new_key is true or the pool has no key; otherwise with the
 * newest key the pool holds. The new key stays "pending" until an SVID for it
 * is offered. */
int cert_pool_make_csr(cert_pool *p, const char *spiffe_id, bool new_key, char **csr_pem_out,
                       mesh_err *err);

/* A new SVID: chain_pem = leaf first, then intermediates. key_pem = its
 * private key, or NULL when the key is one the pool made (pending or
 * current). Checks: parses, leaf is not a CA, exactly one URI SAN with a valid
 * SPIFFE ID, same ID as the current SVID, not expired at now, public key
 * matches. Offering the current SVID again is a no-op. */
int cert_pool_offer_svid(cert_pool *p, const char *chain_pem, const char *key_pem, int64_t now,
                         mesh_err *err);
/* Replaces the trust bundle (one or more PEM roots); the CRLs stay. */
int cert_pool_set_bundle(cert_pool *p, const char *bundle_pem, int64_t now, mesh_err *err);

/* ---- revocation (cert_pool_crl.c) ---------------------------------------------- */
/* Replaces bundle and CRLs together, as one SDS ROOTCA does (crl_pem NULL or
 * "" = no CRLs). Each CRL must parse and, when its issuer is a root of the
 * bundle or a CA in one of our own chains, verify against it; a CRL older
 * (lower cRLNumber) than the one held for the same issuer is a replay. Any
 * of those is MESH_EINVAL with nothing changed (NACK, old CRL kept). A CRL
 * of an issuer we do not hold (an operator's intermediate) is kept and
 * checked against the peer's chain at each use. New handshakes use the new
 * CRLs at once; the CRL listener is told so live connections can be
 * checked. A newly revoked SVID of our own is logged. */
int cert_pool_set_trust(cert_pool *p, const char *bundle_pem, const char *crl_pem, int64_t now,
                        mesh_err *err);
/* PEM of the CRLs held ("" when none). */
int cert_pool_export_crls(cert_pool *p, char **crl_pem_out, mesh_err *err);
/* Bumps whenever the CRLs change (loaded, replaced). */
uint64_t cert_pool_crl_generation(cert_pool *p);
/* Whether a verified chain (leaf first, as SSL_get0_verified_chain gives it)
 * has its leaf on a CRL the pool holds whose signature verifies with the
 * chain's issuer; why (may be NULL) gets the description. */
bool cert_pool_chain_revoked(cert_pool *p, STACK_OF(X509) *chain, char *why, size_t len);
/* One listener, called under the pool's lock right after the CRLs changed
 * (it must only signal: the proxy wakes its loop). fn NULL unregisters the
 * listener registered with this arg (and no other). */
void cert_pool_set_crl_listener(cert_pool *p, void (*fn)(void *arg), void *arg);
/* The control-plane client's verdict that the sidecar cannot get a valid
 * SVID without an operator (meshd refused it); NULL or "" clears. Cleared
 * by itself when a new SVID is installed. */
void cert_pool_set_problem(cert_pool *p, const char *problem);
/* cert_pool_ready with the reason when not ready (no SVID, no bundle,
 * expired, revoked, stranded). */
bool cert_pool_readiness(cert_pool *p, int64_t now, char *why, size_t len);
/* Periodic (the proxy calls it every second): promotes a held next SVID when
 * it becomes usable, logs the transition to expired once. Returns true if the
 * pool changed. */
bool cert_pool_tick(cert_pool *p, int64_t now);

/* A reference to the context for new handshakes (SSL_CTX_free it after
 * SSL_new). MESH_ENOTFOUND: no SVID or no bundle yet; MESH_EEXPIRED: the
 * current SVID is past notAfter (fail closed). */
int cert_pool_server_ctx(cert_pool *p, int64_t now, SSL_CTX **out, mesh_err *err);
/* Lets the server's ALPN choose "h2" on this accepted connection when the client offers it
 * (its listener takes HTTP/2); otherwise "http/1.1" or none. Call before the handshake. */
void cert_pool_ssl_offer_h2(SSL *ssl);
int cert_pool_client_ctx(cert_pool *p, int64_t now, SSL_CTX **out, mesh_err *err);

/* An SVID and a bundle are present, the SVID has not expired, is not
 * revoked, and the sidecar is not stranded. */
bool cert_pool_ready(cert_pool *p, int64_t now);
/* Current SVID's notAfter - now (the outage budget); CERT_POOL_NO_SVID if none. */
int64_t cert_pool_seconds_left(cert_pool *p, int64_t now);
/* The current SVID's SPIFFE ID; MESH_ENOTFOUND if none. */
int cert_pool_spiffe_id(cert_pool *p, char *buf, size_t len);
void cert_pool_get_info(cert_pool *p, int64_t now, cert_pool_info *out);

/* PEMs of the current SVID (even expired: self-recovery signs with this key
 * and presents this chain) — for the control-plane client's credentials.
 * The caller must OPENSSL_cleanse and free *key_pem_out. */
int cert_pool_export_identity(cert_pool *p, char **key_pem_out, char **chain_pem_out,
                              mesh_err *err);
int cert_pool_export_bundle(cert_pool *p, char **bundle_pem_out, mesh_err *err);

/* Atomic write (temp file, fsync, rename, fsync dir) with mode 0600. */
int cert_pool_save(cert_pool *p, const char *path, mesh_err *err);
/* MESH_ENOTFOUND: no file; MESH_EPERM: group/other may read it;
 * MESH_ECORRUPT: truncated, edited or unparsable (the message says which
 * part and how to recover). An expired SVID loads fine (it is reported). */
int cert_pool_load(const char *path, cert_pool **out, mesh_err *err);

#endif
