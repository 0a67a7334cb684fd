/* tests/unit/test_drill_outage.c — the outage's rules: when the kill and the
 * restart are due, the outage budget and the "budget_min_sidecar" text, the
 * planned restart, the expiry moment, what /certs and /ready answers mean, SVID
 * freshness, meshd's proxy status, the recovery streak, and reading /certs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drill/drill_outage.h"
#include "tests/unit/test_drill_util.h"

/* A run killed at T+killed with each sidecar's SVID expiring at exp[i] (-1: none). */
static drill_run *killed_run(double killed, const double *exp, int n_clients, int n_servers)
{
    drill_run *r = tdr_run(n_clients, n_servers);
    for (int i = 0; i < r->n_sc; i++) {
        char serial[16];
        snprintf(serial, sizeof serial, "sn%d", i);
        if (exp[i] >= 0)
            tdr_svid(r, &r->sc[i], serial, exp[i]);
    }
    drill_outage_begin(r, killed);
    return r;
}

/* ---- kill, budget, expiry, restart ------------------------------------------------- */

Test(drill_outage, kill_is_due_at_kill_after)
{
    drill_run *r = tdr_run(1, 1);
    r->o->kill_after_ms = 3000;
    cr_assert_not(drill_kill_due(r, 2.0));
    cr_assert_not(drill_kill_due(r, 2.99));
    cr_assert(drill_kill_due(r, 3.0));
    cr_assert(drill_kill_due(r, 3.0 - 1e-7), "a second boundary a hair early still counts");
    cr_assert(drill_kill_due(r, 3.4));
    tdr_run_free(r);
}

Test(drill_outage, outage_begin_takes_the_held_svids)
{
    const double exp[] = {15, -1, 16};
    drill_run *r = killed_run(3.0, exp, 2, 1);
    cr_assert_float_eq(r->killed_at, 3.0, 1e-9);
    cr_assert_eq(r->phase, DRILL_PH_OUTAGE);
    cr_assert_str_eq(r->sc[0].outage_svid.serial, "sn0");
    cr_assert_float_eq(r->sc[0].expires_at, 15.0, 1e-9);
    cr_assert_not(r->sc[1].outage_svid.present);
    cr_assert_float_eq(r->sc[1].expires_at, -1, 1e-9, "no SVID: expiry unknown");
    cr_assert_float_eq(r->sc[2].expires_at, 16.0, 1e-9);
    tdr_run_free(r);
}

Test(drill_outage, budget_is_the_rounded_time_from_the_kill)
{
    const double exp[] = {15.4, 16.5, 20};
    drill_run *r = killed_run(3.0, exp, 2, 1);
    r->sc[0].expires_at = 15.4;   /* sub-second offsets: wall_t0 is not whole in real runs */
    r->sc[1].expires_at = 16.5;
    drill_update_expiry(r);
    cr_assert_float_eq(r->first_expiry_at, 15.4, 1e-9);
    cr_assert_float_eq(r->last_expiry_at, 20.0, 1e-9);
    cr_assert_eq(r->budget_min_s, 12, "12.4 s rounds to 12");
    cr_assert_eq(r->budget_max_s, 17);
    cr_assert_str_eq(r->budget_min_name, "client-1");
    r->sc[0].expires_at = 15.5;
    drill_update_expiry(r);
    cr_assert_eq(r->budget_min_s, 13, "12.5 s rounds half away from zero");
    tdr_run_free(r);
}

Test(drill_outage, budget_min_sidecar_names_who_expires_first)
{
    const double exp[] = {17, 15, 15, 16, 15};
    drill_run *r = killed_run(3.0, exp, 4, 1);
    drill_update_expiry(r);
    cr_assert_str_eq(r->budget_min_name, "client-2 and 2 more");

    char buf[96];
    r->sc[2].expires_at = 15.5;   /* half a second later is not the same moment */
    r->sc[4].expires_at = 15.0 + 1e-7;
    drill_update_expiry(r);
    drill_first_to_expire(r, buf, sizeof buf);
    cr_assert_str_eq(buf, "client-2 and 1 more");
    cr_assert_str_eq(r->budget_min_name, "client-2 and 1 more");

    /* The same as a list, for the JSON report (budget_min_sidecars). */
    const char *names[8];
    cr_assert_eq(drill_first_to_expire_list(r, names, 8), 2);
    cr_assert_str_eq(names[0], "client-2");
    cr_assert_str_eq(names[1], r->sc[4].name);
    cr_assert_eq(drill_first_to_expire_list(r, names, 1), 1, "bounded by max");

    r->sc[4].expires_at = -1;     /* unknown expiries never count */
    drill_update_expiry(r);
    cr_assert_str_eq(r->budget_min_name, "client-2");
    cr_assert_eq(drill_first_to_expire_list(r, names, 8), 1);
    tdr_run_free(r);
}

Test(drill_outage, budget_min_sidecar_is_a_question_mark_without_expiries)
{
    const double exp[] = {-1, -1};
    drill_run *r = killed_run(3.0, exp, 1, 1);
    drill_update_expiry(r);
    cr_assert_float_eq(r->first_expiry_at, -1, 1e-9);
    cr_assert_str_eq(r->budget_min_name, "", "not set while no expiry is known");
    char buf[16];
    drill_first_to_expire(r, buf, sizeof buf);
    cr_assert_str_eq(buf, "?");
    tdr_run_free(r);
}

Test(drill_outage, budget_min_sidecar_is_cut_to_its_buffer)
{
    const double exp[] = {15, 15};
    drill_run *r = killed_run(3.0, exp, 2, 0);
    snprintf(r->sc[0].name, sizeof r->sc[0].name, "%s", "a-very-long-workload-name-for-client-one");
    drill_update_expiry(r);
    char small[16];
    drill_first_to_expire(r, small, sizeof small);
    cr_assert_eq(strlen(small), sizeof small - 1);
    cr_assert_eq(strncmp(small, r->sc[0].name, sizeof small - 1), 0);
    tdr_run_free(r);
}

Test(drill_outage, planned_restart)
{
    const double exp[] = {15, 16.2};
    drill_run *r = killed_run(3.0, exp, 1, 1);
    r->sc[1].expires_at = 16.2;
    drill_update_expiry(r);
    cr_assert_float_eq(r->planned_restart_at, 17.0 + DRILL_OUTAGE_MARGIN_S, 1e-9,
                       "the last expiry's second, rounded up, + 5 s");
    r->sc[1].expires_at = 16.0;
    drill_update_expiry(r);
    cr_assert_float_eq(r->planned_restart_at, 21.0, 1e-9);

    r->o->outage_ms = 2500;
    drill_update_expiry(r);
    cr_assert_float_eq(r->planned_restart_at, 5.5, 1e-9, "--outage counts from the kill");

    r->o->outage_ms = 0;
    r->o->ttl_s = 15;
    r->sc[0].expires_at = r->sc[1].expires_at = -1;
    drill_update_expiry(r);
    cr_assert_float_eq(r->planned_restart_at, 3.0 + 15 + 5, 1e-9, "no expiry known: TTL + 5 s");
    tdr_run_free(r);
}

Test(drill_outage, restart_is_due_at_the_planned_moment)
{
    drill_run *r = tdr_run(1, 1);
    r->planned_restart_at = 21.0;
    cr_assert_not(drill_restart_due(r, 20.0));
    cr_assert_not(drill_restart_due(r, 20.999));
    cr_assert(drill_restart_due(r, 21.0));
    cr_assert(drill_restart_due(r, 21.0 - 1e-7));
    tdr_run_free(r);
}

Test(drill_outage, expiry_begins_at_the_first_notafter)
{
    const double exp[] = {15, 16};
    drill_run *r = killed_run(3.0, exp, 1, 1);
    drill_update_expiry(r);
    cr_assert_not(drill_watch_expiry(r, 14.999));
    cr_assert_eq(r->phase, DRILL_PH_OUTAGE);
    cr_assert(drill_watch_expiry(r, 15.0), "OpenSSL rejects a certificate at notAfter itself");
    cr_assert_eq(r->phase, DRILL_PH_EXPIRED);
    cr_assert_not(drill_watch_expiry(r, 16.0), "only once");
    tdr_run_free(r);

    const double none[] = {-1, -1};
    r = killed_run(3.0, none, 1, 1);
    drill_update_expiry(r);
    cr_assert_not(drill_watch_expiry(r, 1000.0));
    r->phase = DRILL_PH_STEADY;
    r->first_expiry_at = 2;
    cr_assert_not(drill_watch_expiry(r, 1000.0), "not before the kill");
    tdr_run_free(r);
}

Test(drill_outage, expiry_is_announced)
{
    const double exp[] = {15, 15, 16};
    drill_run *r = killed_run(3.0, exp, 2, 1);
    drill_update_expiry(r);
    r->o->quiet = 0;
    tdr_capture_start();
    drill_watch_expiry(r, 15.2);
    char *out = tdr_capture_end();
    cr_assert_str_eq(out, "  >> T+15.0s  first SVID expired (client-1 and 1 more), 12.0s into "
                     "the outage: mTLS that needs it now fails closed\n");
    free(out);
    tdr_run_free(r);
}

Test(drill_outage, outage_end_marks_who_expired)
{
    const double exp[] = {15, 21, 21.5, -1};
    drill_run *r = killed_run(3.0, exp, 2, 2);
    r->sc[2].expires_at = 21.5;
    cr_assert_eq(drill_outage_end(r, 21.0), 2);
    cr_assert_eq(r->phase, DRILL_PH_RECOVERY);
    cr_assert_float_eq(r->restarted_at, 21.0, 1e-9);
    cr_assert(r->sc[0].expired_in_outage);
    cr_assert(r->sc[1].expired_in_outage, "expiring at the restart itself counts");
    cr_assert_not(r->sc[2].expired_in_outage);
    cr_assert_not(r->sc[3].expired_in_outage, "an unknown expiry is not an expiry");
    tdr_run_free(r);
}

/* ---- probe answers --------------------------------------------------------------------- */

Test(drill_outage, certs_answer_by_phase)
{
    drill_run *r = tdr_run(1, 0);
    drill_sidecar *s = &r->sc[0];
    drill_svid v = {.present = 1, .not_before = (int64_t)TDR_WALL0, .not_after = (int64_t)TDR_WALL0 + 15};
    snprintf(v.serial, sizeof v.serial, "aa");
    r->phase = DRILL_PH_STEADY;
    drill_note_certs(r, s, &v, 1.0, TDR_WALL0 + 1);
    cr_assert_str_eq(s->svid.serial, "aa");
    cr_assert_float_eq(s->probed_at, 1.0, 1e-9);
    cr_assert_not(s->outage_svid.present, "before the kill the outage SVID is not fixed");
    cr_assert_float_eq(s->expires_at, -1, 1e-9);

    /* A rotation that landed just before the kill shows in the first outage probe. */
    drill_outage_begin(r, 3.0);
    snprintf(v.serial, sizeof v.serial, "bb");
    v.not_after = (int64_t)TDR_WALL0 + 18;
    drill_note_certs(r, s, &v, 3.2, TDR_WALL0 + 3.2);
    cr_assert_str_eq(s->outage_svid.serial, "bb");
    cr_assert_float_eq(s->expires_at, 18.0, 1e-9);
    r->phase = DRILL_PH_EXPIRED;
    v.not_after = (int64_t)TDR_WALL0 + 19;
    drill_note_certs(r, s, &v, 18.5, TDR_WALL0 + 18.5);
    cr_assert_float_eq(s->expires_at, 19.0, 1e-9, "still tracked once another SVID expired");

    /* Recovery: the same expired SVID is not fresh; a new one is, stamped on arrival. */
    drill_outage_end(r, 21.0);
    cr_assert(s->expired_in_outage);
    drill_note_certs(r, s, &v, 21.3, TDR_WALL0 + 21.3);
    cr_assert_float_eq(s->fresh_at, -1, 1e-9);
    snprintf(v.serial, sizeof v.serial, "cc");
    v.not_after = (int64_t)TDR_WALL0 + 36;
    drill_note_certs(r, s, &v, 21.8, TDR_WALL0 + 21.8);
    cr_assert_float_eq(s->fresh_at, 21.8, 1e-9);
    cr_assert_str_eq(s->outage_svid.serial, "bb", "the outage SVID stays what it was");
    drill_note_certs(r, s, &v, 22.8, TDR_WALL0 + 22.8);
    cr_assert_float_eq(s->fresh_at, 21.8, 1e-9, "the first moment stays");
    tdr_run_free(r);
}

Test(drill_outage, ready_answers)
{
    drill_run *r = tdr_run(1, 0);
    drill_sidecar *s = &r->sc[0];
    const char *body = "not ready: no SVID yet\nsecond line";
    drill_note_ready(r, s, 503, NULL, body, strlen(body), 1.0);
    cr_assert_not(s->ready);
    cr_assert_str_eq(s->ready_msg, "not ready: no SVID yet");
    drill_note_ready(r, s, 200, NULL, "ok", 2, 2.0);
    cr_assert(s->ready);
    cr_assert_str_eq(s->ready_msg, "");
    cr_assert_float_eq(s->ready_at, -1, 1e-9, "ready_at is a recovery moment");

    drill_note_ready(r, s, 0, "connection refused", "", 0, 3.0);
    cr_assert_not(s->ready);
    cr_assert_str_eq(s->ready_msg, "admin endpoint: connection refused");
    drill_note_ready(r, s, 0, NULL, "", 0, 3.0);
    cr_assert_str_eq(s->ready_msg, "admin endpoint: no answer");

    r->phase = DRILL_PH_RECOVERY;
    drill_note_ready(r, s, 200, NULL, "", 0, 22.25);
    drill_note_ready(r, s, 200, NULL, "", 0, 23.0);
    cr_assert_float_eq(s->ready_at, 22.25, 1e-9);

    char longbody[400];
    memset(longbody, 'x', sizeof longbody);
    drill_note_ready(r, s, 503, NULL, longbody, sizeof longbody, 24.0);
    cr_assert_eq(strlen(s->ready_msg), sizeof s->ready_msg - 1);
    tdr_run_free(r);
}

/* ---- recovery -------------------------------------------------------------------------- */

Test(drill_outage, fresh_svid)
{
    drill_sidecar s;
    memset(&s, 0, sizeof s);
    cr_assert_not(drill_sidecar_fresh(&s, 1000), "no SVID");
    s.svid.present = 1;
    s.svid.not_after = 1000;
    snprintf(s.svid.serial, sizeof s.svid.serial, "aa");
    cr_assert(drill_sidecar_fresh(&s, 999.9));
    cr_assert_not(drill_sidecar_fresh(&s, 1000), "expired at notAfter itself");
    s.expired_in_outage = 1;
    s.outage_svid = s.svid;
    cr_assert_not(drill_sidecar_fresh(&s, 999), "the SVID that expired in the outage is not new");
    snprintf(s.svid.serial, sizeof s.svid.serial, "ab");
    cr_assert(drill_sidecar_fresh(&s, 999));
}

static store_proxy_type_status type_status(const char *sent, const char *acked, const char *nack)
{
    store_proxy_type_status t = {
        .type_url = (char *)"type.googleapis.com/envoy.config.listener.v3.Listener",
        .sent_version = (char *)sent, .acked_version = (char *)acked,
        .nack_version = (char *)nack, .nack_error = (char *)""};
    return t;
}

Test(drill_outage, stream_synced)
{
    store_proxy_type_status types[2] = {type_status("v2", "v2", ""), type_status("", "", "")};
    store_proxy p = {.node_id = (char *)"client-1", .connected = 1, .connected_at = 1000,
                     .types = types, .n_types = 2};
    cr_assert(drill_stream_synced(&p, 1000), "connected at the restart's second counts");
    cr_assert_not(drill_stream_synced(&p, 1001), "a stream from before the restart does not");
    p.connected = 0;
    cr_assert_not(drill_stream_synced(&p, 1000));
    p.connected = 1;
    p.n_types = 0;
    cr_assert_not(drill_stream_synced(&p, 1000), "nothing sent yet");
    p.n_types = 2;
    types[1] = type_status("v3", "v2", "");
    cr_assert_not(drill_stream_synced(&p, 1000), "sent but not ACKed");
    types[1] = type_status("v3", "v3", "v3");
    cr_assert_not(drill_stream_synced(&p, 1000), "NACKed at the version sent");
    types[1] = type_status("v3", "v3", "v1");
    cr_assert(drill_stream_synced(&p, 1000), "an older NACK is history");
}

Test(drill_outage, proxy_status_stamps_synced_sidecars)
{
    drill_run *r = tdr_run(2, 1);
    r->wall_t0 = 1000.6;
    r->restarted_at = 20.5;   /* restart at Unix 1021.1: streams from second 1021 on */
    store_proxy_type_status ok[1] = {type_status("v1", "v1", "")};
    store_proxy list[3] = {
        {.node_id = (char *)"client-1", .connected = 1, .connected_at = 1021, .types = ok, .n_types = 1},
        {.node_id = (char *)"client-2", .connected = 1, .connected_at = 1020, .types = ok, .n_types = 1},
        {.node_id = (char *)"someone-else", .connected = 1, .connected_at = 1030, .types = ok, .n_types = 1},
    };
    r->sc[2].converged_at = 21.0;
    drill_note_proxy_status(r, list, 3, 22.0);
    cr_assert_float_eq(r->sc[0].converged_at, 22.0, 1e-9);
    cr_assert_float_eq(r->sc[1].converged_at, -1, 1e-9, "its stream predates the restart");
    cr_assert_float_eq(r->sc[2].converged_at, 21.0, 1e-9, "the first moment stays");
    tdr_run_free(r);
}

Test(drill_outage, recovery_state_needs_every_sidecar)
{
    drill_run *r = tdr_run(1, 1);
    r->phase = DRILL_PH_RECOVERY;
    r->restarted_at = 21;
    for (int i = 0; i < 2; i++) {
        tdr_svid(r, &r->sc[i], i ? "b" : "a", 40);
        r->sc[i].ready = 1;
    }
    r->sc[0].converged_at = 22.0;
    cr_assert_not(drill_recovery_state(r, 22.0, TDR_WALL0 + 22.0));
    cr_assert_float_eq(r->all_fresh_at, 22.0, 1e-9);
    cr_assert_float_eq(r->all_ready_at, 22.0, 1e-9);
    cr_assert_float_eq(r->converged_at, -1, 1e-9);
    r->sc[1].converged_at = 22.75;
    cr_assert(drill_recovery_state(r, 23.0, TDR_WALL0 + 23.0));
    cr_assert_float_eq(r->converged_at, 22.75, 1e-9, "the last sidecar's moment");
    cr_assert_float_eq(r->all_fresh_at, 22.0, 1e-9, "not moved by a later check");
    r->sc[1].ready = 0;
    cr_assert_not(drill_recovery_state(r, 24.0, TDR_WALL0 + 24.0));
    cr_assert_not(drill_recovery_state(r, 50.0, TDR_WALL0 + 50.0), "SVIDs expired again");
    tdr_run_free(r);
}

Test(drill_outage, recovered_after_three_clean_seconds)
{
    drill_run *r = tdr_run(1, 1);
    r->restarted_at = 21.4;
    r->all_fresh_at = 22.2;
    r->all_ready_at = 22.0;
    r->converged_at = 22.9;
    drill_second s = {.t = 21, .ok = 10, .failed = 0};
    cr_assert_not(drill_recovery_second(r, &s, 1));
    cr_assert_eq(r->healthy_streak, 0, "a second that began before the restart is not clean");
    s.t = 22;
    s.failed = 1;
    cr_assert_not(drill_recovery_second(r, &s, 1));
    cr_assert_eq(r->healthy_streak, 0);
    s.failed = 0;
    s.ok = 0;
    s.t = 22;
    cr_assert_not(drill_recovery_second(r, &s, 1), "no answer is not clean traffic");
    s.ok = 10;
    for (int t = 23; t < 25; t++) {
        s.t = t;
        cr_assert_not(drill_recovery_second(r, &s, 1), "t=%d", t);
    }
    cr_assert_float_eq(r->healthy_from, 23, 1e-9);
    s.t = 25;
    cr_assert(drill_recovery_second(r, &s, 1));
    cr_assert_float_eq(r->recovered_at, 23.0, 1e-9, "the latest of clean-from, fresh, ready, synced");
    tdr_run_free(r);
}

Test(drill_outage, recovered_waits_for_the_sidecars)
{
    drill_run *r = tdr_run(1, 1);
    r->restarted_at = 21;
    r->all_fresh_at = 26.5;
    r->all_ready_at = 22;
    r->converged_at = 22;
    drill_second s = {.ok = 10};
    for (int t = 21; t < 26; t++) {
        s.t = t;
        cr_assert_not(drill_recovery_second(r, &s, 0), "not every sidecar back at t=%d", t);
    }
    s.t = 26;
    cr_assert(drill_recovery_second(r, &s, 1));
    cr_assert_float_eq(r->recovered_at, 26.5, 1e-9);
    s.failed = 1;
    cr_assert_not(drill_recovery_second(r, &s, 1));
    cr_assert_float_eq(r->healthy_from, -1, 1e-9, "a failure restarts the streak");
    tdr_run_free(r);
}

Test(drill_outage, restart_second_itself_can_be_clean)
{
    drill_run *r = tdr_run(1, 1);
    r->restarted_at = 21.0;
    r->all_fresh_at = r->all_ready_at = r->converged_at = 21.0;
    drill_second s = {.t = 21, .ok = 10};
    for (int t = 21; t < 23; t++) {
        s.t = t;
        cr_assert_not(drill_recovery_second(r, &s, 1));
    }
    s.t = 23;
    cr_assert(drill_recovery_second(r, &s, 1));
    cr_assert_float_eq(r->recovered_at, 21.0, 1e-9);
    tdr_run_free(r);
}

Test(drill_outage, mark_recovered_relabels_the_seconds_mostly_after)
{
    drill_run *r = tdr_run(1, 1);
    for (int t = 20; t < 26; t++)
        tdr_second(r, t, DRILL_PH_RECOVERY, 1, 0);
    r->recovered_at = 22.5;
    drill_mark_recovered(r);
    cr_assert_eq(r->phase, DRILL_PH_RECOVERED);
    for (size_t i = 0; i < r->n_secs; i++)
        cr_assert_eq(r->secs[i].phase, r->secs[i].t >= 22 ? DRILL_PH_RECOVERED : DRILL_PH_RECOVERY,
                     "t=%d", r->secs[i].t);
    tdr_run_free(r);
}

Test(drill_outage, recovery_timeout)
{
    drill_run *r = tdr_run(1, 1);
    r->restarted_at = 21;
    r->o->recovery_timeout_ms = 60000;
    cr_assert_not(drill_recovery_timed_out(r, 80.99));
    cr_assert(drill_recovery_timed_out(r, 81.0));
    cr_assert(drill_recovery_timed_out(r, 81.0 - 1e-7));
    tdr_run_free(r);
}

Test(drill_outage, why_a_sidecar_is_not_back)
{
    drill_sidecar s;
    memset(&s, 0, sizeof s);
    s.converged_at = -1;
    cr_assert_str_eq(drill_not_recovered_reason(&s, 100), "not ready");
    snprintf(s.ready_msg, sizeof s.ready_msg, "xDS stream down");
    cr_assert_str_eq(drill_not_recovered_reason(&s, 100), "xDS stream down");
    s.ready = 1;
    cr_assert_str_eq(drill_not_recovered_reason(&s, 100), "SVID not renewed");
    s.svid.present = 1;
    s.svid.not_after = 200;
    cr_assert_str_eq(drill_not_recovered_reason(&s, 100), "meshd does not report its config in sync");
    s.converged_at = 50;
    cr_assert_null(drill_not_recovered_reason(&s, 100));
}

/* ---- reading /certs -------------------------------------------------------------------- */

/* The shape sidecar/proxy_admin.c serves. */
static const char *certs_body =
    "{\"trust_domain\":\"drill.example\",\"current\":{\"spiffe_id\":\"spiffe://drill.example/"
    "ns/drill/sa/client-1\",\"serial\":\"5f3a01\",\"not_before\":\"2026-01-01T00:00:00Z\","
    "\"not_after\":\"2026-01-01T00:00:15Z\",\"seconds_left\":12,\"expired\":false},"
    "\"next\":{\"spiffe_id\":\"x\",\"serial\":\"77\",\"not_before\":\"2026-01-01T00:00:08Z\","
    "\"not_after\":\"2026-01-01T00:00:23Z\",\"seconds_left\":20,\"expired\":false},"
    "\"csr_pending\":false,\"bundle\":[{\"subject\":\"CN=drill\",\"serial\":\"01\",\"sha256\":"
    "\"ab\",\"not_after\":\"2027-01-01T00:00:00Z\"}],\"bundle_roots\":1}";

Test(drill_outage, parse_certs_reads_current_only)
{
    drill_svid v;
    cr_assert_eq(drill_parse_certs(certs_body, &v), 0);
    cr_assert(v.present);
    cr_assert_str_eq(v.serial, "5f3a01");
    cr_assert_eq(v.not_before, (int64_t)TDR_WALL0);
    cr_assert_eq(v.not_after, (int64_t)TDR_WALL0 + 15);
}

Test(drill_outage, parse_certs_current_null_is_no_svid)
{
    drill_svid v;
    memset(&v, 0x5a, sizeof v);
    cr_assert_eq(drill_parse_certs("{\"trust_domain\":\"d\",\"current\":null,\"next\":null}", &v), 0);
    cr_assert_not(v.present);
}

Test(drill_outage, parse_certs_refuses_what_it_does_not_expect)
{
    const char *bad[] = {
        "",
        "not json",
        "{\"trust_domain\":\"d\"}",
        "{\"current\":\"5f\"}",
        "{\"current\":{\"serial\":\"5f\",\"not_before\":\"2026-01-01T00:00:00Z\"}}",
        "{\"current\":{\"serial\":\"\",\"not_before\":\"2026-01-01T00:00:00Z\",\"not_after\":\"2026-01-01T00:00:15Z\"}}",
        "{\"current\":{\"serial\":\"5\\\"f\",\"not_before\":\"2026-01-01T00:00:00Z\",\"not_after\":\"2026-01-01T00:00:15Z\"}}",
        "{\"current\":{\"serial\":5,\"not_before\":\"2026-01-01T00:00:00Z\",\"not_after\":\"2026-01-01T00:00:15Z\"}}",
        "{\"current\":{\"serial\":\"5f\",\"not_before\":\"2026-01-01 00:00:00\",\"not_after\":\"2026-01-01T00:00:15Z\"}}",
        "{\"current\":{\"serial\":\"5f\",\"not_before\":\"2026-01-01T00:00:00Z\",\"not_after\":\"2026-01-01T00:00:15Zjunk\"}}",
        "{\"current\":{\"serial\":\"5f\",\"not_before\":\"2026-01-01T00:00:00Z\",\"not_after\":\"2026-01-01T00:00:15Z\"",
        "{\"current\":{\"serial\":\"5f",
        /* "current" inside a string value is not the key. */
        "{\"trust_domain\":\"\\\"current\\\":{\\\"serial\\\":\\\"aa\\\"}\"}",
        /* A nested "current" is not the top-level one. */
        "{\"x\":{\"current\":{\"serial\":\"5f\",\"not_before\":\"2026-01-01T00:00:00Z\",\"not_after\":\"2026-01-01T00:00:15Z\"}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        drill_svid v;
        cr_assert_eq(drill_parse_certs(bad[i], &v), -1, "accepted #%zu: %s", i, bad[i]);
        cr_assert_not(v.present, "#%zu", i);
    }
}

Test(drill_outage, parse_certs_serial_too_long_is_refused)
{
    char body[512], serial[100];
    memset(serial, 'a', sizeof serial - 1);
    serial[sizeof serial - 1] = '\0';
    snprintf(body, sizeof body, "{\"current\":{\"serial\":\"%s\",\"not_before\":"
             "\"2026-01-01T00:00:00Z\",\"not_after\":\"2026-01-01T00:00:15Z\"}}", serial);
    drill_svid v;
    cr_assert_eq(drill_parse_certs(body, &v), -1);
}

Test(drill_outage, parse_time)
{
    int64_t t = 0;
    cr_assert_eq(drill_parse_time("2026-01-01T00:00:00Z", &t), 0);
    cr_assert_eq(t, (int64_t)TDR_WALL0);
    cr_assert_eq(drill_parse_time("1970-01-01T00:00:01Z", &t), 0);
    cr_assert_eq(t, 1);
    cr_assert_eq(drill_parse_time("2026-01-01T00:00:00", &t), -1, "no zone");
    cr_assert_eq(drill_parse_time("2026-01-01T00:00:00+01:00", &t), -1, "UTC only");
    cr_assert_eq(drill_parse_time("2026-13-01T00:00:00Z", &t), -1);
    cr_assert_eq(drill_parse_time("2026-01-01T00:00:00Z ", &t), -1);
    cr_assert_eq(drill_parse_time("", &t), -1);
}
