/* meshd/meshd_metrics.h — meshd's counters, histograms and readiness, and the listener serving them.
 *
 * Every counter is an atomic in md_metrics (one per process, inside md_ctx):
 * the threads that do the work bump them without a lock, and the metrics
 * thread (meshd_admin.c) reads them when Prometheus scrapes. Gauges that
 * describe live state (streams by type and state, SVIDs in their renewal
 * window, CA expiry) are computed at scrape time from the stream registry
 * and the CA cache, so they can never drift from what meshd really holds.
 * docs/control-plane.md "Metrics" lists every series with its meaning. */
#ifndef MESH_MESHD_MESHD_METRICS_H
#define MESH_MESHD_MESHD_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/error.h"
#include "common/prom_out.h"

/* gRPC status codes 0..16 (grpc_status_code). */
#define MD_GRPC_CODES 17
/* xDS slots (enum ads_type) and call kinds (enum md_call_kind), as counted. */
#define MD_METRIC_XDS_TYPES 5
#define MD_METRIC_CALL_KINDS 7

/* What happened to a join token presented to CreateCertificate. */
enum md_token_result { MD_TOKEN_OK = 0, MD_TOKEN_EXPIRED, MD_TOKEN_SPENT, MD_TOKEN_UNKNOWN,
                       MD_TOKEN_RESULT_COUNT };

/* Classes of store work meshd times (the store API itself stays untouched:
 * meshd times its own calls into it). */
enum md_store_op {
    MD_STORE_POLL = 0,      /* watcher: has anything changed (data_version)? */
    MD_STORE_CONFIG_LOAD,   /* watcher: read and parse the mesh config */
    MD_STORE_CA_LIST,       /* watcher: the CA list and trust bundle */
    MD_STORE_SVID_LOOKUP,   /* watcher, workers: a connected identity's current SVID */
    MD_STORE_ISSUE,         /* workers: CreateCertificate's authorisation + insert */
    MD_STORE_STATUS_WRITE,  /* status writer: one batch of proxy-status/audit rows */
    MD_STORE_OP_COUNT
};

typedef struct md_metrics {
    atomic_uint_fast64_t issuances[MD_GRPC_CODES];   /* CreateCertificate replies by status */
    atomic_uint_fast64_t tokens[MD_TOKEN_RESULT_COUNT];
    atomic_uint_fast64_t calls[MD_METRIC_CALL_KINDS][MD_GRPC_CODES];
    atomic_uint_fast64_t pushes[MD_METRIC_XDS_TYPES];
    atomic_uint_fast64_t acks[MD_METRIC_XDS_TYPES];
    atomic_uint_fast64_t nacks[MD_METRIC_XDS_TYPES];
    atomic_uint_fast64_t resumed[MD_METRIC_XDS_TYPES]; /* SotW reconnect: client had it */
    prom_hist convergence;        /* store change seen -> every pushed type ACKed, s */
    prom_hist store_latency[MD_STORE_OP_COUNT];
    atomic_uint_fast64_t store_errors[MD_STORE_OP_COUNT];
    /* Readiness: each piece says when it is up (meshd_admin.c /readyz). */
    atomic_int store_opened;
    atomic_int ca_loaded;
    atomic_int serving;
    atomic_int store_failing;     /* bit per md_store_health_source: its last try failed */
    pthread_mutex_t problem_mu;
    char store_problem[2][700];   /* why, per source, for /readyz */
} md_metrics;

int md_metrics_init(md_metrics *m);
void md_metrics_destroy(md_metrics *m);
/* Monotonic microseconds, for timing store work. */
int64_t md_mono_us(void);
/* Time since t0_us (md_mono_us) for op; rc != MESH_OK counts an error. */
void md_metrics_store_op(md_metrics *m, enum md_store_op op, int64_t t0_us, int rc);
/* Who judges the store's health: the watcher reads it every poll, the
 * status writer commits to it every batch. */
enum md_store_health_source { MD_HEALTH_READ = 0, MD_HEALTH_WRITE = 1 };
/* The verdict of source's latest try: NULL = healthy, else what went wrong. */
void md_metrics_store_health(md_metrics *m, enum md_store_health_source src,
                             const char *problem);
const char *md_store_op_name(enum md_store_op op);
const char *md_token_result_name(enum md_token_result r);

typedef struct md_ctx md_ctx;

/* The whole /metrics page (Prometheus text 0.0.4); NULL when out of memory.
 * now: wall-clock seconds (CA expiry, renewal windows). Caller frees. */
char *md_metrics_render(md_ctx *ctx, int64_t now);
/* 1 when meshd is ready; else 0 and why in buf ("store not open yet"). */
int md_ready(md_ctx *ctx, char *why, size_t why_len);

/* ---- the metrics and health listener (meshd_admin.c) --------------------------- */

typedef struct md_admin md_admin;
/* Validates --metrics-listen: "HOST:PORT" with an IP literal host (IPv6 in
 * brackets) and a port 0..65535 (0 = any free port). */
int md_admin_check_listen(const char *addr, mesh_err *err);
/* Binds addr and serves /metrics, /healthz, /readyz and /logging on a thread
 * of its own. Called first at startup so /readyz answers 503 while the rest
 * comes up. */
int md_admin_start(md_ctx *ctx, const char *addr, md_admin **out, mesh_err *err);
int md_admin_port(const md_admin *a);
void md_admin_stop(md_admin *a);

#endif
