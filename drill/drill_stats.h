/* drill/drill_stats.h — counting what the traffic did (drill_stats.c): the latency
 * histogram, one finished request into the current second, its phase and the
 * totals, failures by cause and in words, and the closing of a second into the
 * timeline with every sidecar's remaining budget. Pure: times are arguments. */
#ifndef MESH_DRILL_DRILL_STATS_H
#define MESH_DRILL_DRILL_STATS_H

#include <stddef.h>

#include "drill/drill_model.h"

/* ---- latency -------------------------------------------------------------------- */
/* The histogram bucket of a latency: 10 us wide below 1 ms (0..99), then 90
 * buckets per decade up to 10 s (100..459); negative counts as 0, 10 s and more
 * (and NaN) go to the last bucket. */
int drill_lat_bucket(double ms);
/* The value a bucket stands for (its middle), in ms. */
double drill_lat_bucket_ms(int bucket);
void drill_hist_add(drill_hist *h, double ms);
/* The q-quantile (0 < q <= 1) as a bucket's middle; 0 for an empty histogram. */
double drill_hist_quantile(const drill_hist *h, double q);

/* ---- requests -------------------------------------------------------------------- */
/* Counts one finished request of sidecar s at T+now_t, in the run's current phase.
 * A failure is also timed (for "before expiry") and described by fail_desc (NULL:
 * "failed"); the first failure of a phase is announced with drill_say. */
void drill_count(drill_run *r, drill_sidecar *s, double now_t, int ok, double ms,
                 const char *fail_desc);
/* Counts a failed request by its cause: an HTTP status (100..599), else the
 * client's reason ("timeout", "connection refused", "connection ...", other). */
void drill_failkinds_add(drill_failkinds *k, int status, const char *fail);
/* The first line of an answer's body, printable ASCII ('?' for the rest), with
 * "..." when it was cut short to fit len. */
void drill_body_line(const char *body, size_t body_len, char *out, size_t len);
/* A failed request in words: "HTTP 503 via client-1: <first body line>", or
 * "timeout via client-1 (its outbound listener 127.0.0.1:PORT)". */
void drill_failure_text(const drill_sidecar *s, int status, const char *fail, const char *body,
                        size_t body_len, char *out, size_t len);

/* ---- the timeline -------------------------------------------------------------------- */
/* Closes second r->cur_sec into the timeline: its counts and latency, the phase,
 * meshd_up as the runtime saw it, and the sidecars' ready / expired counts and
 * smallest / largest budget at wall time wall_now; then starts the next second.
 * Returns the new row, or NULL (the second is not closed) when out of memory. */
drill_second *drill_second_close(drill_run *r, double wall_now, int meshd_up);
/* The second's status line (and the column header every 20 seconds). */
void drill_print_second(const drill_run *r, const drill_second *s);

#endif
