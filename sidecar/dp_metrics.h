/* sidecar/dp_metrics.h — per-cluster, per-route and per-peer request metrics
 * with latency histograms, for /stats/prometheus.
 *
 * One series set per (direction, cluster, route, peer SPIFFE ID): requests by
 * response class, a duration histogram, request and response body bytes, as
 * Istio's istio_requests_total / istio_request_duration_milliseconds give
 * them per source and destination. Recorded once per finished exchange on the
 * proxy's event-loop thread and read by the admin handler on the same thread,
 * so no locks. Cardinality is bounded: clusters and routes come from the
 * config and peers from the mesh, but a hostile or churning mesh must not grow
 * memory without end, so past DP_METRICS_MAX_SERIES keys new ones are counted
 * under cluster/route/peer "overflow". */
#ifndef MESH_SIDECAR_DP_METRICS_H
#define MESH_SIDECAR_DP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define DP_METRICS_MAX_SERIES 1024

typedef struct dp_metrics dp_metrics;
struct prom_out;

typedef struct dp_metrics_sample {
    int inbound;                /* 1 inbound, 0 outbound */
    const char *cluster;        /* NULL or "": "none" (no cluster chosen) */
    const char *route;          /* NULL or "": "none" */
    const char *peer;           /* NULL or "": "unknown" */
    int status;                 /* 0: reset, no response */
    int64_t duration_us;
    uint64_t bytes_in, bytes_out;
} dp_metrics_sample;

dp_metrics *dp_metrics_new(void);
void dp_metrics_free(dp_metrics *m);
void dp_metrics_record(dp_metrics *m, const dp_metrics_sample *s);
size_t dp_metrics_series(const dp_metrics *m);
/* The families with HELP and TYPE, every series, into p. */
void dp_metrics_write(const dp_metrics *m, struct prom_out *p);

#endif
