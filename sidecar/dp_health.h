/* sidecar/dp_health.h — the sidecar's own view of an upstream host's health, as pure
 * state machines over an injected CLOCK_MONOTONIC time in milliseconds (unit tested
 * without a loop or a clock):
 *
 * Outlier detection (passive, Envoy's consecutive_5xx / consecutive_gateway_failure):
 * every request result on a host is recorded; N failures in a row eject it for
 * base_ejection_time x (its ejection count), capped at max_ejection_time. The count
 * grows by one per ejection and drops by one per `interval` the host then stays in,
 * so a flapping host stays out longer and longer while a host that recovered for good
 * is soon back to the base time. An ejection is refused when ejected_percent of the
 * cluster is already at max_ejection_percent (checked before ejecting, as Envoy does:
 * one host of a small cluster can always go). A connect failure or a reset before the
 * response counts as a 503, a timeout as a 504 (Envoy without
 * split_external_local_origin_errors).
 *
 * Active health checking: consecutive probe results flip a host to failed after
 * unhealthy_threshold failures and back after healthy_threshold successes. A new host
 * starts healthy and is first probed within the jitter (no traffic is held back waiting
 * for a first probe, unlike Envoy, which marks a new host failed_active_hc until its
 * first probe passes). */
#ifndef MESH_SIDECAR_DP_HEALTH_H
#define MESH_SIDECAR_DP_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sidecar/dp_config.h"

/* A request result for outlier detection: the upstream's HTTP status, or one
 * of these for failures without a response. */
#define DP_RESULT_CONNECT_FAILED (-1)   /* counted as 503 */
#define DP_RESULT_TIMEOUT        (-2)   /* counted as 504 */
#define DP_RESULT_CONNECTED      0      /* tcp: the connection is up (a success) */

typedef struct dp_outlier_host {
    uint32_t consecutive_5xx;
    uint32_t consecutive_gateway;
    uint32_t ejection_level;        /* the multiplier of base_ejection_time */
    bool ejected;
    int64_t ejected_until_ms;
    int64_t level_since_ms;         /* when the level last changed or the host came back */
    uint64_t ejections_total;       /* for /clusters and stats */
} dp_outlier_host;

/* Brings h up to date at now (an ejection that ran out ends); true while ejected. */
bool dp_outlier_ejected(dp_outlier_host *h, int64_t now_ms);

/* Records one result on h; n_ejected / n_hosts are the cluster's other hosts' state
 * (for max_ejection_percent). Returns true if this result ejected h. */
bool dp_outlier_record(dp_outlier_host *h, const dp_outlier_cfg *cfg, int result,
                       int64_t now_ms, size_t n_ejected, size_t n_hosts);

/* The ejection time the next ejection of h at now would get. */
int64_t dp_outlier_next_ejection_ms(const dp_outlier_host *h, const dp_outlier_cfg *cfg,
                                    int64_t now_ms);

typedef struct dp_hc_host {
    bool failed;                    /* failed active health check: not picked */
    uint32_t successes, failures;   /* in a row */
    uint64_t probes_ok, probes_failed;
} dp_hc_host;

/* Records one probe result; returns true if the host's state changed. */
bool dp_hc_record(dp_hc_host *h, const dp_health_check_cfg *cfg, bool success);

/* The delay until a new host's first probe: a random part (from r) of the
 * jitter, or of a tenth of the interval when there is no jitter, so that
 * sidecars started together do not probe in step. */
int64_t dp_hc_first_delay_ms(const dp_health_check_cfg *cfg, uint64_t r);

/* The delay until the next probe: interval plus a jitter drawn from r (a random
 * value the caller supplies, so tests choose it), of interval_jitter_ms plus
 * interval_jitter_percent of the interval at most. */
int64_t dp_hc_next_delay_ms(const dp_health_check_cfg *cfg, uint64_t r);

#endif
