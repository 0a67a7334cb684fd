/* sidecar/xds_sotw.h — state-of-the-world xDS bookkeeping on the client side.
 *
 * Per resource type: what we subscribe to (LDS and CDS wildcard; RDS, EDS and
 * SDS by name), the last accepted ("last good") version_info and resources,
 * the nonce of the newest response on the current stream, the pending NACK
 * detail, and counters for the admin endpoint. It decides nothing about what a
 * resource means (that is xds_translate / xds_secrets) and does no I/O, so the
 * ACK/NACK and subscription rules are unit-tested without a network:
 *
 *   - an accepted response is ACKed by echoing its version_info and nonce;
 *   - a rejected one is NACKed: the nonce is echoed, version_info stays the
 *     last accepted one, error_detail carries google.rpc.Status code 3
 *     (INVALID_ARGUMENT) and the reason, and the held resources do not change;
 *   - after a NACK the next good version is accepted normally (envoy#42438);
 *   - a change of the RDS/EDS name set sends a new request for that type; a
 *     name that leaves the set also leaves the held resources;
 *   - the first request of every stream carries the Node and the versions we
 *     hold, so a control plane that already sent them need not resend.
 *
 * Not thread-safe: owned by the control-plane thread. */
#ifndef MESH_SIDECAR_XDS_SOTW_H
#define MESH_SIDECAR_XDS_SOTW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/xds_wire.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"

/* The order requests are sent in on a new stream and persisted state is
 * replayed in: secrets first (listeners and clusters need them), then
 * clusters before the listeners that route to them, as Envoy does. */
enum xdsc_type { XDSC_SDS = 0, XDSC_CDS, XDSC_EDS, XDSC_LDS, XDSC_RDS, XDSC_TYPE_COUNT };

#define XDSC_SECRET_DEFAULT "default"
#define XDSC_SECRET_ROOTCA  "ROOTCA"

/* google.rpc.Code INVALID_ARGUMENT, what Envoy puts in a NACK. */
#define XDSC_NACK_CODE 3

const char *xdsc_type_url(enum xdsc_type t);
const char *xdsc_type_short(enum xdsc_type t);       /* "LDS", ... */
int xdsc_type_from_url(const char *url, enum xdsc_type *out);   /* -1 if unknown */

/* A sorted set of unique strings. */
typedef struct xdsc_names {
    char **v;
    size_t n;
} xdsc_names;

int xdsc_names_add(xdsc_names *s, const char *name);  /* MESH_OK also if present */
bool xdsc_names_contains(const xdsc_names *s, const char *name);
bool xdsc_names_equal(const xdsc_names *a, const xdsc_names *b);
void xdsc_names_free(xdsc_names *s);

/* One resource as received: its name and the serialized message (the bytes
 * of google.protobuf.Any.value). */
typedef struct xdsc_resource {
    char *name;
    uint8_t *data;
    size_t len;
} xdsc_resource;

void xdsc_resources_free(xdsc_resource *r, size_t n);

typedef struct xdsc_type_state {
    bool wildcard;              /* LDS, CDS */
    bool requested;             /* a request was sent on the current stream */
    bool pending;               /* a request (ACK, NACK, new names) must be sent */
    xdsc_names subs;            /* by-name types: the names we want */
    char *version;              /* last accepted version_info; NULL = none */
    char *nonce;                /* newest response nonce on this stream; NULL = none */
    char *nack_detail;          /* set while the newest response was rejected */
    xdsc_resource *res;         /* last good resources, sorted by name */
    size_t n_res;
    /* For the admin endpoint. */
    uint64_t n_accepted, n_rejected;
    char last_nack_version[128];
    char last_error[512];
} xdsc_type_state;

typedef struct xdsc_sotw {
    xdsc_type_state t[XDSC_TYPE_COUNT];
    bool node_sent;             /* the current stream has seen the Node */
} xdsc_sotw;

/* LDS/CDS wildcard, SDS "default" + "ROOTCA", RDS/EDS empty. */
int xdsc_sotw_init(xdsc_sotw *s, mesh_err *err);
void xdsc_sotw_free(xdsc_sotw *s);

/* A new stream: forget nonces, re-send the Node, and mark every type that has
 * something to ask for as pending. */
void xdsc_sotw_stream_start(xdsc_sotw *s);

/* Replaces the name set of a by-name type (RDS, EDS). Held resources whose
 * name left the set are dropped. *changed (optional) says whether the set
 * differs; a change marks the type pending (also when it becomes empty: an
 * empty SotW request unsubscribes). Wildcard types: MESH_EINVAL. */
int xdsc_sotw_set_subs(xdsc_sotw *s, enum xdsc_type t, const xdsc_names *names, bool *changed,
                       mesh_err *err);

/* Whether a resource of this name is one we asked for (always for wildcard). */
bool xdsc_sotw_wants(const xdsc_sotw *s, enum xdsc_type t, const char *name);

/* Accepts a response: takes ownership of res[0..n) (sorted here), records
 * version and nonce, clears the NACK, marks an ACK pending. */
int xdsc_sotw_accept(xdsc_sotw *s, enum xdsc_type t, const char *version, const char *nonce,
                     xdsc_resource *res, size_t n, mesh_err *err);

/* Rejects a response: records its nonce and the reason, keeps the held
 * version and resources, marks a NACK pending. */
int xdsc_sotw_reject(xdsc_sotw *s, enum xdsc_type t, const char *version, const char *nonce,
                     const char *reason, mesh_err *err);

/* Restores held state from persisted storage (no nonce, nothing pending). */
int xdsc_sotw_restore(xdsc_sotw *s, enum xdsc_type t, const char *version, xdsc_resource *res,
                      size_t n, mesh_err *err);

const xdsc_resource *xdsc_sotw_find(const xdsc_sotw *s, enum xdsc_type t, const char *name);

/* The first pending type in send order; false when nothing is pending. */
bool xdsc_sotw_next_pending(const xdsc_sotw *s, enum xdsc_type *out);

/* Fills *req for type t (pointers borrow from s and node; valid until s
 * changes) and clears t's pending flag. The node goes into the first request
 * of a stream only. status is storage for error_detail. */
void xdsc_sotw_build_request(xdsc_sotw *s, enum xdsc_type t, Envoy__Config__Core__V3__Node *node,
                             Envoy__Service__Discovery__V3__DiscoveryRequest *req,
                             Google__Rpc__Status *status);

#endif
