/* sidecar/xds_client.h — the sidecar's control-plane client: identity + ADS, on one thread.
 *
 * One thread, one gRPC completion queue, one state machine:
 *   identity  first contact with a join token (server-authenticated TLS), then
 *             self-renewal over mTLS with a NEW key at 55-60% of the SVID's
 *             lifetime unless meshd pushed a fresh "default" first (it does at
 *             50%), and after an expiry during a meshd outage, self-recovery
 *             with the expired SVID + a CSR signed by the same key. Refusals
 *             are logged with what to do; --token-file is re-read on every
 *             attempt so an operator can hand over a new token without a
 *             restart.
 *   ADS       one long-lived StreamAggregatedResources over mTLS; LDS/CDS
 *             wildcard, RDS/EDS by the names they reference, SDS "default" +
 *             "ROOTCA". Responses go through xds_engine (apply, ACK/NACK,
 *             persist). Reconnects use exponential backoff with full jitter
 *             (250 ms .. 30 s), reset after a stream delivered a response, but
 *             with several meshd replicas (--meshd a:1,b:2 or a name with
 *             several addresses) a failed attempt or a broken stream moves to
 *             the next replica at once; only a whole failed round backs off,
 *             and a TCP probe cuts a long backoff short when meshd returns
 *             (xds_targets.h, xds_probe.h). The versions and names held are
 *             offered on the new stream, so a replica need not resend; a
 *             new mTLS channel is made per attempt, and a stream opened with an
 *             SVID that has since been replaced is re-opened (once idle) so
 *             meshd sees the current certificate.
 *   cert pool every change (SDS push, CSR, promotion) is saved to the state
 *             directory (0600) so a restart during an outage keeps serving.
 * Everything the data plane must learn goes through xdsc_hooks (main wires
 * them to dp_proxy_*; tests to fakes). */
#ifndef MESH_SIDECAR_XDS_CLIENT_H
#define MESH_SIDECAR_XDS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "sidecar/cert_pool.h"
#include "sidecar/dp_config.h"
#include "sidecar/xds_sotw.h"
#include "sidecar/xds_targets.h"

#define XDSC_POOL_FILE "cert-pool"
#define XDSC_RENEW_MIN_FRAC 0.55
#define XDSC_RENEW_MAX_FRAC 0.60

typedef struct xdsc_hooks {
    void *ctx;
    /* A frozen snapshot for the data plane (dp_proxy_apply_config); an error
     * becomes a NACK. NULL: accepted configs go nowhere (tests). */
    int (*apply)(void *ctx, dp_config *cfg, mesh_err *err);
    void (*accepted)(void *ctx, enum xdsc_type t, const char *version);
    void (*rejected)(void *ctx, enum xdsc_type t, const char *version, const char *error);
    void (*connected)(void *ctx, bool connected, const char *server);
} xdsc_hooks;

typedef struct xdsc_client_opts {
    const char *meshd;          /* "host:port[,host:port...]": meshd replicas; a name
                                 * that resolves to several addresses is several */
    xdsc_resolve_fn resolve;    /* NULL = getaddrinfo (tests inject one) */
    void *resolve_ctx;
    const char *server_name;    /* TLS name of meshd's certificate; NULL = "meshd" */
    const char *state_dir;      /* required: cert pool + xDS snapshot live here */
    const char *spiffe_id;      /* the identity to enrol as; NULL = the pool's */
    const char *node_id;        /* Node.id (meshd: the workload name); NULL = SPIFFE ID */
    const char *token;          /* join token (first contact); may be NULL */
    const char *token_file;     /* re-read on every enrolment attempt; may be NULL */
    cert_pool *pool;            /* required, borrowed; holds at least the bundle */
    xdsc_hooks hooks;
    int64_t backoff_min_ms;     /* 0 = XDSC_BACKOFF_MIN_MS */
    int64_t backoff_max_ms;     /* 0 = XDSC_BACKOFF_MAX_MS */
    int64_t warm_timeout_ms;    /* 0 = XDSC_WARM_TIMEOUT_MS */
    bool reenrol;               /* enrol with the token now even if the SVID is valid
                                 * (a token this state directory never used) */
} xdsc_client_opts;

typedef struct xdsc_client xdsc_client;

/* Restores the persisted xDS snapshot (served at once through hooks.apply),
 * then starts the thread. */
int xdsc_client_start(const xdsc_client_opts *opts, xdsc_client **out, mesh_err *err);
/* Stops the thread (cancels the stream, drains gRPC) and frees. NULL is fine. */
void xdsc_client_stop(xdsc_client *c);

typedef struct xdsc_client_status {
    bool connected;             /* an ADS stream delivered a response and is open */
    char server[XDSC_TARGET_LEN]; /* the replica of the current (or last) ADS stream */
    uint64_t failovers;         /* ADS streams that came up on another replica than the last */
    uint64_t streams;           /* ADS streams opened */
    uint64_t accepted[XDSC_TYPE_COUNT], rejected[XDSC_TYPE_COUNT];
    char version[XDSC_TYPE_COUNT][128];
    int64_t renew_at;           /* Unix time of the next self-renewal, 0 = none */
    uint64_t csr_ok, csr_failed;
    char last_error[512];
} xdsc_client_status;

/* A consistent copy of the client's state (any thread). */
void xdsc_client_get_status(xdsc_client *c, xdsc_client_status *out);

/* When to renew an SVID valid [not_before, not_after): at frac in
 * [XDSC_RENEW_MIN_FRAC, XDSC_RENEW_MAX_FRAC] of its lifetime (pure; tests). */
int64_t xdsc_renew_time(int64_t not_before, int64_t not_after, double frac);

/* Reads a join token file: first line, surrounding whitespace trimmed.
 * MESH_ENOTFOUND if missing or empty. The caller wipes and frees *out. */
int xdsc_read_token_file(const char *path, char **out, mesh_err *err);

#endif
