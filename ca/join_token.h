/* ca/join_token.h — one-time, expiring join tokens for a workload's first contact.
 *
 * A token is 32 random bytes, shown once to the operator as 43 base64url
 * characters prefixed "mjt_"; the store keeps only its SHA-256 hex. Redeeming
 * spends it atomically, so a token works exactly once. A token is bound to one
 * instance (one workload of an identity shared by replicas): the certificate
 * it buys records that instance, and meshd serves the sidecar that one. */
#ifndef MESH_CA_JOIN_TOKEN_H
#define MESH_CA_JOIN_TOKEN_H

#include <stdint.h>

#include "common/error.h"
#include "store/store.h"

#define JOIN_TOKEN_DEFAULT_TTL 3600
#define JOIN_TOKEN_MAX_PINS 2

/* A token as handed over: "mjt_" + 43 secret characters, then, for tokens
 * made while the store has a CA, one ".<43 base64url chars>" per pinned root:
 * the SHA-256 of the DER of the active CA's root, and of a prepared CA's root
 * during a rotation (Docker Swarm's join tokens carry the CA digest the same
 * way). Pins are not secret and are not part of what is hashed and stored:
 * they let a sidecar without a current trust bundle recognise meshd's chain
 * (meshd serves its root), so a new token alone recovers a sidecar that
 * missed a CA rotation. */
typedef struct join_token_parts {
    char secret[48];                            /* "mjt_..." (47 chars): hashed and stored */
    size_t n_pins;
    char pins_hex[JOIN_TOKEN_MAX_PINS][65];     /* root fingerprints, lowercase hex */
} join_token_parts;

/* Splits a token (surrounding whitespace ignored). MESH_EINVAL if malformed;
 * the message never echoes the token. */
int join_token_parse(const char *token, join_token_parts *out, mesh_err *err);

/* A token admits one registration (store.h), which must exist (MESH_ENOTFOUND
 * otherwise): instance non-empty is that instance (spiffe_id NULL = whatever
 * its identity, else it must be this one); instance "" or NULL is the
 * identity-wide registration of spiffe_id. */
int join_token_create(mesh_store *st, const char *instance, const char *spiffe_id,
                      int64_t ttl_seconds, char **token_out, mesh_err *err);
/* MESH_EINVAL (malformed), MESH_ENOTFOUND, MESH_EEXPIRED, MESH_EPERM (spent).
 * On success *spiffe_id_out and *instance_out (malloc'd; instance_out may be
 * NULL) are who the token admits: "" instance for an identity-wide token. */
int join_token_redeem(mesh_store *st, const char *token, int64_t now, char **spiffe_id_out,
                      char **instance_out, mesh_err *err);
/* SHA-256 hex (65 bytes with NUL) of a token's secret part ("mjt_" + 43), as stored. */
void join_token_hash(const char *token, char out_hex[65]);

#endif
