/* drill/drill_outage.h — the rules of the outage (drill_outage.c, drill_certs.c):
 * what a sidecar's /certs and /ready answers mean, when meshd is killed and
 * restarted, the outage budget and who expires first, when the first SVID
 * expired, whether a sidecar's SVID is fresh, when meshd's proxy status shows a
 * stream synced, and when the mesh counts as recovered.
 *
 * Pure: the runtime (drill_phase.c, drill_probe.c) does the killing, starting and
 * probing, and passes the times in (T+ "now", Unix "wall_now"). */
#ifndef MESH_DRILL_DRILL_OUTAGE_H
#define MESH_DRILL_DRILL_OUTAGE_H

#include <stddef.h>
#include <stdint.h>

#include "drill/drill_model.h"
#include "store/store.h"

/* ---- probe answers (drill_certs.c) ---------------------------------------------- */
/* Parses the "current" SVID out of an admin /certs JSON body: 0 ok (present = 0
 * when "current" is null), -1 malformed. */
int drill_parse_certs(const char *body, drill_svid *out);
int drill_parse_time(const char *s, int64_t *out);   /* "2026-01-02T03:04:05Z" only */

/* A /certs answer with SVID v at T+now: the sidecar's current SVID; during the
 * outage also the SVID it holds until meshd is back (its expiry); during recovery
 * the moment it became fresh. */
void drill_note_certs(drill_run *r, drill_sidecar *s, const drill_svid *v, double now,
                      double wall_now);
/* A /ready answer at T+now: status 200 is ready (stamped during recovery);
 * otherwise ready_msg is the first line of the body, or "admin endpoint: <fail>". */
void drill_note_ready(drill_run *r, drill_sidecar *s, int status, const char *fail,
                      const char *body, size_t body_len, double now);

/* ---- kill, expiry, restart -------------------------------------------------------- */
/* The kill is due at the end of the second that reaches --kill-after. */
int drill_kill_due(const drill_run *r, double now);
/* meshd was killed at T+now: the outage phase; each sidecar's SVID now fixes its
 * expiry. */
void drill_outage_begin(drill_run *r, double now);
/* From the SVIDs held in the outage: first and last expiry, the outage budget at
 * the kill (seconds to them, rounded), who expires first, and the planned
 * restart (--outage after the kill, or the last expiry's second + 5 s, or TTL +
 * 5 s while no expiry is known). */
void drill_update_expiry(drill_run *r);
/* The sidecar(s) whose SVID expires first: "client-3", or "client-3 and 4 more"
 * when several share that notAfter; "?" when no expiry is known. */
void drill_first_to_expire(const drill_run *r, char *buf, size_t len);
/* The same sidecars as a list: their names (pointers into r) in names[0..max),
 * how many there are (for the JSON report's budget_min_sidecars). */
size_t drill_first_to_expire_list(const drill_run *r, const char **names, size_t max);
/* At T+now in the outage: the expired phase begins once the first expiry is
 * reached (announced). Returns 1 if it began now. */
int drill_watch_expiry(drill_run *r, double now);
int drill_restart_due(const drill_run *r, double now);
/* meshd was restarted at T+now: the recovery phase; marks the sidecars whose SVID
 * expired during the outage and returns how many did. */
int drill_outage_end(drill_run *r, double now);

/* ---- recovery ---------------------------------------------------------------------- */
/* A valid SVID at wall_now, and a new one (another serial) if the sidecar's SVID
 * expired during the outage. */
int drill_sidecar_fresh(const drill_sidecar *s, double wall_now);
/* meshd's proxy status shows the stream back since `since` (Unix seconds) and
 * every type it was sent ACKed at the version sent, with no NACK of that version. */
int drill_stream_synced(const store_proxy *p, int64_t since);
/* meshd's proxy status rows, read at T+now: stamps the sidecars whose stream is
 * synced since the restart's second. */
void drill_note_proxy_status(drill_run *r, const store_proxy *list, size_t n, double now);
/* Stamps each sidecar fresh / ready and the "every sidecar" moments (the last
 * sidecar's); returns 1 if every sidecar is fresh, ready and converged now. */
int drill_recovery_state(drill_run *r, double now, double wall_now);
/* At the end of second sec in recovery, with all = drill_recovery_state(): counts
 * clean seconds (answers and no failure, from the restart's second on). Returns 1
 * and sets recovered_at once all holds after DRILL_HEALTHY_SECONDS clean seconds. */
int drill_recovery_second(drill_run *r, const drill_second *sec, int all);
/* The recovered phase: the seconds mostly after recovered_at are relabelled. */
void drill_mark_recovered(drill_run *r);
int drill_recovery_timed_out(const drill_run *r, double now);
/* Why a sidecar is not back, or NULL if it is: its /ready reason, "SVID not
 * renewed" or "meshd does not report its config in sync". */
const char *drill_not_recovered_reason(const drill_sidecar *s, double wall_now);

#endif
