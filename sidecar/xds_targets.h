/* sidecar/xds_targets.h — the meshd replicas a sidecar may talk to, and which one to try next.
 *
 * --meshd takes a list ("a:1,b:2", and the flag may repeat). Each entry is resolved
 * with getaddrinfo (or an injected resolver, for tests): a name that resolves to
 * several addresses counts as several replicas. Attempts go round the list: after a
 * failure the next address is tried at once, and only when a whole round has failed
 * does the caller back off (with jitter, xds_backoff.h) and re-resolve, so a dead
 * replica costs one refused connect, not a backoff. The ADS stream and the CA calls
 * each keep their own place in the round (xdsc_rotor). Pure logic apart from the
 * default resolver. */
#ifndef MESH_SIDECAR_XDS_TARGETS_H
#define MESH_SIDECAR_XDS_TARGETS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define XDSC_TARGETS_MAX 16         /* entries and resolved addresses, each */
#define XDSC_TARGET_LEN 280         /* "[v6addr]:port" or "host:port" */

/* Resolves host/port to numeric "ip:port" / "[ip6]:port" strings, at most max.
 * Returns MESH_OK with *n >= 1, or an error. */
typedef int (*xdsc_resolve_fn)(void *ctx, const char *host, const char *port,
                               char (*out)[XDSC_TARGET_LEN], size_t max, size_t *n,
                               mesh_err *err);

typedef struct xdsc_targets {
    char entry[XDSC_TARGETS_MAX][XDSC_TARGET_LEN];  /* as configured */
    size_t n_entry;
    char addr[XDSC_TARGETS_MAX][XDSC_TARGET_LEN];   /* as resolved, de-duplicated */
    size_t n;
    xdsc_resolve_fn resolve;                        /* NULL = getaddrinfo */
    void *resolve_ctx;
} xdsc_targets;

typedef struct xdsc_rotor {
    size_t idx;         /* the address to use next */
    size_t failed;      /* distinct addresses that failed in this round */
} xdsc_rotor;

/* Parses a comma-separated list of HOST:PORT ([v6]:PORT for IPv6 literals) into
 * t->entry (t->resolve is kept). Empty items, a missing or bad port, and more than
 * XDSC_TARGETS_MAX entries are refused with the item named. */
int xdsc_targets_parse(xdsc_targets *t, const char *list, mesh_err *err);

/* (Re-)resolves every entry into t->addr. An entry that does not resolve is kept
 * as written (its attempt then fails and the round moves on); the error of the
 * last such entry is in *err and the return is still MESH_OK while any address is
 * known. */
int xdsc_targets_resolve(xdsc_targets *t, mesh_err *err);

/* The address the rotor points at ("" when there is none). */
const char *xdsc_targets_at(const xdsc_targets *t, const xdsc_rotor *r);

/* The address at r failed: moves to the next. Returns true when every address
 * failed in this round (back off now; the round starts over), false when the next
 * one should be tried at once. */
bool xdsc_rotor_failed(xdsc_rotor *r, size_t n);
/* The address at r worked: the round starts over from it. */
void xdsc_rotor_ok(xdsc_rotor *r);
/* Points r at addr when it is in t (keeps r otherwise); the round starts over. */
void xdsc_rotor_move_to(xdsc_rotor *r, const xdsc_targets *t, const char *addr);

/* getaddrinfo, numeric output; exposed for tests. */
int xdsc_resolve_getaddrinfo(void *ctx, const char *host, const char *port,
                             char (*out)[XDSC_TARGET_LEN], size_t max, size_t *n,
                             mesh_err *err);

#endif
