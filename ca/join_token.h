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
/* SHA-256 hex (65 bytes with NUL) of a token, as stored. */
void join_token_hash(const char *token, char out_hex[65]);

#endif
