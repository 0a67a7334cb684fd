/* drill/drill_failover.h — the drill's replica mode (--replicas N --kill-replica), pure
 * half: which replica to kill (the one most sidecars are on), who was on it, when each
 * of them was on another replica (read from the sidecars' admin /config_dump), and
 * what the run concludes: every affected sidecar moved, how fast, and whether any
 * request failed. The runtime half is in drill_phase.c. */
#ifndef MESH_DRILL_DRILL_FAILOVER_H
#define MESH_DRILL_DRILL_FAILOVER_H

#include <stddef.h>

#include "drill/drill_model.h"
#include "drill/drill_verdict.h"

/* The replica (index into r->replica_addr) most sidecars are on now; ties go to the
 * lower index; -1 when no sidecar is known to be connected. */
int drill_failover_pick(const drill_run *r);
/* At the kill of replica k at T+now: remembers who was on it. Returns how many. */
int drill_failover_mark(drill_run *r, int k, double now);
/* A probe at T+now found sidecar s on server ("" = not connected). */
void drill_failover_note(drill_run *r, drill_sidecar *s, const char *server, double now);
/* Every sidecar that was on the killed replica is on another one. */
int drill_failover_all_moved(const drill_run *r);

/* The ADS server an admin /config_dump body names when it says it is connected, into
 * out ("" when not connected or not found). */
void drill_failover_parse_server(const char *json, char *out, size_t len);

typedef struct drill_failover_facts {
    int affected, moved;              /* sidecars on the killed replica / that moved */
    double max_s, median_s;           /* fail-over times of those that moved, -1 none */
    char slowest[64];                 /* the sidecar with max_s */
} drill_failover_facts;

void drill_failover_derive(const drill_run *r, drill_failover_facts *f);
/* Verdicts, headline and --expect-failover-within / --expect-zero-failures-before-expiry
 * for replica mode (drill_evaluate calls it when --kill-replica). */
void drill_failover_evaluate(const drill_run *r, drill_results *res);

#endif
