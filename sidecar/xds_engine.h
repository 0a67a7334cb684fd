/* sidecar/xds_engine.h — what the sidecar does with each xDS response, minus the network.
 *
 * For a DiscoveryResponse of one type: unwrap and name its resources, keep
 * those we subscribed to, and if the set differs from what we hold, build the
 * matching dp_config table on a copy of the accepted snapshot (or hand SDS
 * secrets to the cert pool). Success = accept (ACK, persist to the state dir,
 * recompute the RDS/EDS names LDS/CDS now reference); any error = reject
 * (NACK with the message, keep the last good snapshot). A later good version
 * is judged on its own, so one bad push never wedges the next (envoy#42438).
 *
 * Every accepted change is handed to the data plane before it is ACKed, and
 * a data plane that refuses it (a listener address that cannot be bound) turns
 * the ACK into a NACK with its message. Like Envoy's listener warming, an
 * outbound HTTP listener whose route table has not arrived yet is held back
 * (its previous version, if any, keeps serving) for up to warm_timeout_ms, so
 * it does not answer 404 in the milliseconds between LDS and RDS; after that
 * it is published anyway with a warning, and a route table we already waited
 * for does not hold back later snapshots.
 *
 * Restore: at start, the persisted responses are replayed through the same
 * validation (no ACKs) and the result is published at once.
 * Not thread-safe: owned by the control-plane thread. */
#ifndef MESH_SIDECAR_XDS_ENGINE_H
#define MESH_SIDECAR_XDS_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "sidecar/cert_pool.h"
#include "sidecar/dp_config.h"
#include "sidecar/xds_sotw.h"

#define XDSC_WARM_TIMEOUT_MS 5000

/* Hands a frozen snapshot to the data plane (dp_proxy_apply_config); takes its
 * own reference if it keeps it. An error NACKs the response being processed;
 * for a publish outside a response (warm-up timeout, restore) it is logged
 * and retried at the next poll. */
typedef int (*xdsc_apply_fn)(void *ctx, dp_config *cfg, mesh_err *err);

typedef struct xdsc_engine {
    xdsc_sotw sotw;
    dp_config *cur;             /* the accepted snapshot (frozen) */
    dp_config *published;       /* the last one the data plane took (ref), NULL before */
    size_t withheld;            /* listeners of cur held back while warming */
    cert_pool *pool;            /* borrowed */
    char *state_dir;            /* NULL: no persistence */
    xdsc_apply_fn apply;
    void *apply_ctx;
    int64_t warm_timeout_ms;
    int64_t warm_deadline_ms;   /* 0 = not waiting */
    xdsc_names gave_up;         /* missing names we already waited for */
    uint64_t n_published;
    bool publish_failed;
    char last_error[512];       /* newest NACK or apply error, for the admin endpoint */
} xdsc_engine;

/* pool may be NULL in tests that send no SDS. */
int xdsc_engine_init(xdsc_engine *e, cert_pool *pool, const char *state_dir, xdsc_apply_fn apply,
                     void *apply_ctx, mesh_err *err);
void xdsc_engine_free(xdsc_engine *e);

/* Replays the persisted responses; a damaged or invalid file is logged and
 * that type starts empty. *restored = how many types came back. Then
 * publishes whatever was restored. */
int xdsc_engine_restore(xdsc_engine *e, int64_t now_ms, int *restored, mesh_err *err);

/* Handles one response. *accepted tells ACK from NACK (both leave a request
 * pending in e->sotw). Only an internal failure (out of memory) returns an
 * error; a response of an unknown type is ignored (*accepted false, nothing
 * pending). */
int xdsc_engine_on_response(xdsc_engine *e, const Envoy__Service__Discovery__V3__DiscoveryResponse *resp,
                            int64_t now_unix, int64_t now_ms, bool *accepted, mesh_err *err);

/* Publishes what warming held back once its time is up, and retries a publish
 * the data plane refused outside a response. Returns ms until the next call is
 * useful, -1 if none. */
int64_t xdsc_engine_poll(xdsc_engine *e, int64_t now_ms);

/* Names referenced by the accepted snapshot that have not arrived. */
int xdsc_engine_missing(const xdsc_engine *e, xdsc_names *rds, xdsc_names *eds, mesh_err *err);

#endif
