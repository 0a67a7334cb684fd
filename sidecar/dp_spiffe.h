/* sidecar/dp_spiffe.h — the SPIFFE ID checks the data plane needs.
 *
 * Only what a sidecar checks on the request path and in config: is this a
 * well-formed spiffe:// URI (SPIFFE-ID spec: lowercase trust domain of
 * [a-z0-9.-_], path segments of [A-Za-z0-9.-_], no empty/"."/".." segment, no
 * query/fragment/port/userinfo, at most 2048 bytes), and what trust domain
 * does it name. Kept local to the sidecar so the data plane does not link the
 * CA. */
#ifndef MESH_SIDECAR_DP_SPIFFE_H
#define MESH_SIDECAR_DP_SPIFFE_H

#include <stddef.h>

#include "common/error.h"

#define DP_SPIFFE_ID_MAX 2048

/* MESH_OK if id is a valid SPIFFE ID; td (optional, tdlen >= 256) receives
 * the trust domain. */
int dp_spiffe_check(const char *id, char *td, size_t tdlen, mesh_err *err);

#endif
