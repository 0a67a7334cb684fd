/* tests/unit/test_drill_model.c — the drill's record itself: a new run has every
 * event "not yet" and its sidecars in order (clients first), phase names, how a
 * child ended in words, Unix time to T+, and where progress lines go. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drill/drill_model.h"
#include "drill/drill_opts.h"
#include "tests/unit/test_drill_util.h"

Test(drill_model, a_new_run_has_happened_nothing)
{
    drill_opts o;
    drill_opts_defaults(&o);
    o.n_clients = 3;
    o.n_servers = 2;
    drill_run *r = drill_run_new(&o);
    cr_assert_not_null(r);
    cr_assert_eq(r->o, &o);
    cr_assert_eq(r->n_sc, 5);
    const double events[] = {r->killed_at, r->planned_restart_at, r->restarted_at,
                             r->listening_at, r->first_expiry_at, r->last_expiry_at,
                             r->first_fail_at, r->all_fresh_at, r->all_ready_at,
                             r->converged_at, r->healthy_from, r->recovered_at, r->ended_at};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        cr_assert_eq(events[i], -1, "event %zu is %g", i, events[i]);
    for (int p = 0; p < DRILL_N_PHASES; p++)
        cr_assert_eq(r->phase_first_fail_at[p], -1);
    cr_assert_eq(r->phase, DRILL_PH_STEADY);
    cr_assert_eq(r->n_secs, 0);
    for (int i = 0; i < r->n_sc; i++) {
        const drill_sidecar *s = &r->sc[i];
        cr_assert_eq(s->run, r);
        cr_assert_eq(s->index, i);
        cr_assert_eq(s->role, i < 3 ? DRILL_CLIENT : DRILL_SERVER);
        cr_assert(s->probed_at == -1 && s->expires_at == -1 && s->fresh_at == -1 &&
                  s->ready_at == -1 && s->converged_at == -1 && s->first_fail_at == -1);
        cr_assert_not(s->svid.present || s->outage_svid.present || s->ready);
    }
    drill_run_free(r);
    drill_run_free(NULL);
}

Test(drill_model, phase_names)
{
    const char *want[] = {"steady", "outage", "expired", "recovery", "recovered"};
    for (int p = 0; p < DRILL_N_PHASES; p++)
        cr_assert_str_eq(drill_phase_name((enum drill_phase)p), want[p]);
    cr_assert_str_eq(drill_phase_name((enum drill_phase)DRILL_N_PHASES), "?");
    cr_assert_str_eq(drill_phase_name((enum drill_phase)-1), "?");
}

Test(drill_model, how_a_child_ended)
{
    drill_child ch = {.pid = 4242};
    char buf[128];
    drill_child_describe(&ch, buf, sizeof buf);
    cr_assert_str_eq(buf, "running (pid 4242)");
    ch.exited = 1;
    ch.status = 3 << 8;   /* exit(3) */
    drill_child_describe(&ch, buf, sizeof buf);
    cr_assert_str_eq(buf, "exited with status 3");
    ch.status = 9;        /* SIGKILL */
    drill_child_describe(&ch, buf, sizeof buf);
    cr_assert_str_eq(buf, "killed by signal 9 (Killed)");
    ch.status = 0x137f;   /* stopped by SIGSTOP: neither exited nor signalled */
    drill_child_describe(&ch, buf, sizeof buf);
    cr_assert_str_eq(buf, "ended (wait status 4991)");
}

Test(drill_model, wall_to_t)
{
    drill_run *r = tdr_run(1, 1);
    r->wall_t0 = 1000.25;
    cr_assert_float_eq(drill_wall_to_t(r, 1015), 14.75, 1e-12);
    cr_assert_float_eq(drill_wall_to_t(r, 1000), -0.25, 1e-12);
    tdr_run_free(r);
}

Test(drill_model, progress_goes_to_stdout_or_stderr, .init = cr_redirect_stderr)
{
    drill_run *r = tdr_run(1, 1);
    r->o->quiet = 0;
    tdr_capture_start();
    drill_say(r, "  >> T+%.1fs  %s", 3.0, "meshd killed");
    r->o->progress_stderr = 1;
    drill_say(r, "to stderr");
    r->o->progress_stderr = 0;
    r->o->quiet = 1;
    drill_say(r, "quiet");
    char *out = tdr_capture_end();
    cr_assert_str_eq(out, "  >> T+3.0s  meshd killed\n", "only the first line goes to stdout");
    free(out);
    fflush(stderr);
    cr_assert_stderr_eq_str("to stderr\n");
    tdr_run_free(r);
}
