/* tests/unit/test_drill_verdict.c — what a drill concludes from its record:
 * drill_derive's facts at their exact boundaries (a failure at the first notAfter
 * is not "before expiry", the last expiry + 1 s, the restart), every verdict and
 * --expect-* rule met and not met, the headline, and the exit status. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "drill/drill_outage.h"
#include "drill/drill_verdict.h"
#include "tests/unit/test_drill_util.h"

/* A killed run with these moments (-1: did not happen). */
static drill_run *run_with(double killed, double first_exp, double last_exp, double restarted,
                           double recovered, double ended)
{
    drill_run *r = tdr_run(2, 1);
    r->killed_at = killed;
    r->first_expiry_at = first_exp;
    r->last_expiry_at = last_exp;
    r->restarted_at = restarted;
    r->recovered_at = recovered;
    r->ended_at = ended;
    r->budget_min_s = 12;
    r->budget_max_s = 13;
    snprintf(r->budget_min_name, sizeof r->budget_min_name, "client-1 and 2 more");
    return r;
}

static const drill_verdict *verdict(const drill_results *res, const char *id)
{
    for (int i = 0; i < res->n_v; i++)
        if (strcmp(res->v[i].id, id) == 0)
            return &res->v[i];
    return NULL;
}

static const drill_expect *expectation(const drill_results *res, const char *flag)
{
    for (int i = 0; i < res->n_e; i++)
        if (strcmp(res->e[i].flag, flag) == 0)
            return &res->e[i];
    return NULL;
}

static void assert_contains(const char *hay, const char *needle)
{
    cr_assert_not_null(strstr(hay, needle), "expected \"%s\" in \"%s\"", needle, hay);
}

/* ---- the facts --------------------------------------------------------------------- */

Test(drill_verdict, full_drill_facts)
{
    drill_run *r = tdr_full_drill();
    drill_facts f;
    drill_derive(r, &f);
    cr_assert(f.killed && f.restarted && f.recovered);
    cr_assert(f.expiry_in_outage);
    cr_assert(f.all_expired_in_outage);
    cr_assert_float_eq(f.horizon, 15.0, 1e-9);
    cr_assert_eq(f.failed_before_expiry, 0);
    cr_assert_eq(f.failed_while_expired, 30 + 5 * 60, "got %llu",
                 (unsigned long long)f.failed_while_expired);
    cr_assert_eq(f.ok_after_all_expired, 0);
    cr_assert_eq(f.ok_before_expiry_in_outage, 12 * 60);
    cr_assert_eq(f.failed_after_recovery, 0);
    cr_assert_float_eq(f.first_fail_after_expiry, 15.5, 1e-6);
    cr_assert_float_eq(f.recovery_s, 2.0, 1e-9);
    tdr_run_free(r);
}

Test(drill_verdict, a_failure_at_the_first_expiry_is_not_before_it)
{
    drill_run *r = run_with(3, 15, 16, 21, -1, 40);
    tdr_requests(r, 15.0, DRILL_PH_EXPIRED, 0, 1, "HTTP 503 via client-1");
    drill_facts f;
    drill_derive(r, &f);
    cr_assert_eq(f.failed_before_expiry, 0);
    cr_assert_eq(f.failed_while_expired, 1);
    tdr_run_free(r);

    r = run_with(3, 15, 16, 21, -1, 40);
    tdr_requests(r, 14.99, DRILL_PH_OUTAGE, 0, 1, "HTTP 503 via client-1");
    drill_derive(r, &f);
    cr_assert_eq(f.failed_before_expiry, 1, "a failure 10 ms before the expiry is not excused");
    cr_assert_eq(f.failed_while_expired, 0);
    tdr_run_free(r);
}

Test(drill_verdict, failures_while_meshd_was_up_count_before_expiry)
{
    drill_run *r = run_with(3, 15, 16, 21, -1, 40);
    tdr_requests(r, 1.0, DRILL_PH_STEADY, 0, 2, "timeout via client-1");
    drill_facts f;
    drill_derive(r, &f);
    cr_assert_eq(f.failed_before_expiry, 2);
    tdr_run_free(r);
}

Test(drill_verdict, a_failure_at_the_restart_is_not_while_expired)
{
    drill_run *r = run_with(3, 15, 16, 21, -1, 40);
    tdr_requests(r, 21.0, DRILL_PH_RECOVERY, 0, 1, "HTTP 503");
    tdr_requests(r, 20.99, DRILL_PH_EXPIRED, 0, 1, "HTTP 503");
    drill_facts f;
    drill_derive(r, &f);
    cr_assert_eq(f.failed_while_expired, 1);
    cr_assert_float_eq(f.first_fail_after_expiry, 20.99, 1e-5);
    tdr_run_free(r);
}

Test(drill_verdict, every_svid_expired_needs_a_second_after_the_last_expiry)
{
    drill_facts f;
    drill_run *r = run_with(3, 15, 20, 21, -1, 40);   /* last expiry + 1 s == restart */
    drill_derive(r, &f);
    cr_assert(f.all_expired_in_outage);
    tdr_run_free(r);

    r = run_with(3, 15, 20.01, 21, -1, 40);
    drill_derive(r, &f);
    cr_assert(f.expiry_in_outage);
    cr_assert_not(f.all_expired_in_outage);
    tdr_run_free(r);
}

Test(drill_verdict, an_expiry_at_the_restart_is_not_in_the_outage)
{
    drill_facts f;
    drill_run *r = run_with(3, 21, 22, 21, -1, 40);
    drill_derive(r, &f);
    cr_assert_not(f.expiry_in_outage);
    cr_assert(isinf(f.horizon));
    tdr_run_free(r);

    r = run_with(3, 20.999, 22, 21, -1, 40);
    drill_derive(r, &f);
    cr_assert(f.expiry_in_outage);
    tdr_run_free(r);
}

Test(drill_verdict, without_a_restart_the_outage_ends_with_the_drill)
{
    drill_facts f;
    drill_run *r = run_with(3, 15, 16, -1, -1, 18);
    drill_derive(r, &f);
    cr_assert(f.expiry_in_outage);
    cr_assert(f.all_expired_in_outage);   /* 16 + 1 <= 18 */
    cr_assert_not(f.restarted);
    tdr_run_free(r);
}

Test(drill_verdict, ok_after_every_expiry_counts_whole_seconds_inside_the_outage)
{
    drill_run *r = run_with(3, 15, 16, 21, -1, 40);
    tdr_second(r, 16, DRILL_PH_EXPIRED, 7, 0);    /* starts before 16 + 1: not counted */
    tdr_second(r, 17, DRILL_PH_EXPIRED, 5, 0);    /* [17, 18): counted */
    tdr_second(r, 20, DRILL_PH_EXPIRED, 3, 0);    /* [20, 21): ends at the restart: counted */
    tdr_second(r, 21, DRILL_PH_RECOVERY, 11, 0);  /* after the restart: not counted */
    drill_facts f;
    drill_derive(r, &f);
    cr_assert_eq(f.ok_after_all_expired, 8, "got %llu", (unsigned long long)f.ok_after_all_expired);
    tdr_run_free(r);
}

Test(drill_verdict, failures_after_recovery_are_counted_from_the_moment)
{
    drill_run *r = run_with(3, 15, 16, 21, 23, 26);
    tdr_requests(r, 22.99, DRILL_PH_RECOVERY, 0, 1, "HTTP 503");
    tdr_requests(r, 23.0, DRILL_PH_RECOVERED, 0, 2, "HTTP 503");
    drill_facts f;
    drill_derive(r, &f);
    cr_assert_eq(f.failed_after_recovery, 2);
    tdr_run_free(r);
}

Test(drill_verdict, past_the_failure_time_cap_whole_seconds_are_used)
{
    drill_run *r = run_with(3, 15, 16, 21, -1, 40);
    tdr_requests(r, 4.5, DRILL_PH_OUTAGE, 0, 2, "HTTP 503");   /* listed: before expiry */
    r->fail_t_capped = 1;
    tdr_second(r, 4, DRILL_PH_OUTAGE, 0, 2);      /* the listed two */
    tdr_second(r, 13, DRILL_PH_OUTAGE, 0, 4);     /* [13, 14) ends before 15: before expiry */
    tdr_second(r, 14, DRILL_PH_OUTAGE, 0, 1);     /* [14, 15) ends at 15: before expiry */
    tdr_second(r, 15, DRILL_PH_EXPIRED, 0, 9);    /* after */
    drill_facts f;
    drill_derive(r, &f);
    cr_assert_eq(f.failed_before_expiry, 2 + 4 + 1, "got %llu",
                 (unsigned long long)f.failed_before_expiry);
    tdr_run_free(r);
}

/* ---- verdicts ------------------------------------------------------------------------ */

Test(drill_verdict, full_drill_passes_everything)
{
    drill_run *r = tdr_full_drill();
    drill_results res;
    drill_evaluate(r, &res);
    cr_assert_eq(res.n_v, 4);
    const char *ids[] = {"zero_failures_before_expiry", "first_expiry", "fail_closed", "recovered"};
    const int pass[] = {1, -1, 1, 1};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(res.v[i].id, ids[i]);
        cr_assert_eq(res.v[i].pass, pass[i], "%s: %d", ids[i], res.v[i].pass);
    }
    cr_assert_str_eq(res.v[0].text, "traffic survived the outage with zero failed requests until "
                     "expiry (720 requests answered in the 12.0s between the kill and the first "
                     "expiry)");
    cr_assert_str_eq(res.v[1].text, "first expiry at T+15.0s, 12.0s into the outage (outage "
                     "budget at the kill: 12s on client-1 and 2 more, up to 13s)");
    cr_assert_str_eq(res.v[2].text, "expired SVIDs failed closed: mTLS failing from T+15.5s (0.5s "
                     "after the first expiry); 330 requests refused, none succeeded once every "
                     "SVID had expired");
    cr_assert_str_eq(res.v[3].text, "recovered in 2.0s (meshd accepting after 0.1s, every SVID "
                     "renewed after 1.3s, config converged after 1.5s, clean traffic from 2.0s)");
    cr_assert_str_eq(res.headline, "zero failed requests until expiry | first expiry T+15.0s "
                     "(12.0s into the outage) | failed closed | recovered in 2.0s");
    cr_assert_eq(res.n_e, 3);
    cr_assert(res.all_met);
    cr_assert_str_eq(res.e[0].flag, "--expect-zero-failures-before-expiry");
    cr_assert_str_eq(res.e[0].detail, "0 failed before the first expiry at T+15.0s");
    cr_assert_str_eq(res.e[1].flag, "--expect-fail-closed");
    cr_assert_str_eq(res.e[1].detail, "0 succeeded and 330 failed after every SVID had expired");
    cr_assert_str_eq(res.e[2].flag, "--expect-recovery-within 20s");
    cr_assert_str_eq(res.e[2].detail, "recovered in 2.0s");
    tdr_run_free(r);
}

Test(drill_verdict, no_kill_means_no_outage_observed)
{
    drill_run *r = tdr_run(2, 1);
    r->o->expect_zero_before_expiry = 1;
    r->o->expect_fail_closed = 1;
    r->o->expect_recovery_ms = 1000;
    r->o->expect_recovery_arg = "1s";
    r->o->expect_budget_s = 5;
    r->o->expect_budget_arg = "5s";
    r->ended_at = 2;
    drill_results res;
    drill_evaluate(r, &res);
    cr_assert_eq(res.n_v, 1, "only the zero-failures line, as information");
    cr_assert_str_eq(res.v[0].id, "zero_failures_before_expiry");
    cr_assert_eq(res.v[0].pass, -1);
    cr_assert_str_eq(res.v[0].text, "the drill ended before meshd was killed: no outage was observed");
    cr_assert_str_eq(res.headline, "no outage observed");
    cr_assert_eq(res.n_e, 4);
    cr_assert_not(res.all_met);
    for (int i = 0; i < 4; i++)
        cr_assert_not(res.e[i].met, "%s", res.e[i].flag);
    cr_assert_str_eq(res.e[0].detail, "the outage did not complete");
    cr_assert_str_eq(res.e[1].detail, "not every SVID expired while meshd was down");
    cr_assert_str_eq(res.e[2].detail, "did not recover");
    cr_assert_str_eq(res.e[3].flag, "--expect-budget-at-least 5s");
    cr_assert_str_eq(res.e[3].detail, "meshd was never killed");
    tdr_run_free(r);
}

Test(drill_verdict, failures_before_expiry_fail_the_first_verdict)
{
    drill_run *r = run_with(3, 15, 16, 21, 23, 26);
    tdr_requests(r, 7.25, DRILL_PH_OUTAGE, 0, 3, "timeout via client-1 (its outbound listener)");
    r->o->expect_zero_before_expiry = 1;
    drill_results res;
    drill_evaluate(r, &res);
    const drill_verdict *v = verdict(&res, "zero_failures_before_expiry");
    cr_assert_not_null(v);
    cr_assert_eq(v->pass, 0);
    cr_assert_str_eq(v->text, "3 requests failed before the first SVID expired; the first at "
                     "T+7.2s: timeout via client-1 (its outbound listener)");
    assert_contains(res.headline, "3 failed before expiry");
    const drill_expect *e = expectation(&res, "--expect-zero-failures-before-expiry");
    cr_assert_not(e->met);
    cr_assert_str_eq(e->detail, "3 failed before the first expiry at T+15.0s");
    cr_assert_not(res.all_met);
    tdr_run_free(r);
}

Test(drill_verdict, an_outage_shorter_than_the_budget)
{
    drill_run *r = run_with(2, -1, -1, 4, 7, 8);
    r->o->expect_zero_before_expiry = 1;
    r->o->expect_fail_closed = 1;
    drill_results res;
    drill_evaluate(r, &res);
    const drill_verdict *v = verdict(&res, "zero_failures_before_expiry");
    cr_assert_eq(v->pass, 1);
    cr_assert_str_eq(v->text, "traffic survived the whole 2.0s outage with zero failed requests "
                     "(no SVID expired while meshd was down)");
    v = verdict(&res, "first_expiry");
    cr_assert_eq(v->pass, -1);
    cr_assert_str_eq(v->text, "no SVID expired during the 2.0s outage (outage budget at the "
                     "kill: 12s on client-1 and 2 more, up to 13s)");
    cr_assert_null(verdict(&res, "fail_closed"), "no fail-closed verdict without an expiry");
    cr_assert_str_eq(res.headline, "zero failed requests in a 2s outage | recovered in 3.0s");
    cr_assert(expectation(&res, "--expect-zero-failures-before-expiry")->met);
    cr_assert_str_eq(expectation(&res, "--expect-zero-failures-before-expiry")->detail,
                     "0 failed; no SVID expired");
    cr_assert_not(expectation(&res, "--expect-fail-closed")->met);
    cr_assert_not(res.all_met);
    tdr_run_free(r);
}

Test(drill_verdict, failures_without_any_expiry)
{
    drill_run *r = run_with(2, -1, -1, 4, -1, 30);
    tdr_requests(r, 3.0, DRILL_PH_OUTAGE, 0, 1, "HTTP 502 via client-2");
    drill_results res;
    drill_evaluate(r, &res);
    const drill_verdict *v = verdict(&res, "zero_failures_before_expiry");
    cr_assert_eq(v->pass, 0);
    cr_assert_str_eq(v->text, "1 requests failed although no SVID had expired; the first at "
                     "T+3.0s: HTTP 502 via client-2");
    tdr_run_free(r);
}

Test(drill_verdict, fail_closed_not_enforced)
{
    drill_run *r = run_with(3, 15, 16, 21, -1, 40);
    tdr_requests(r, 15.5, DRILL_PH_EXPIRED, 0, 4, "HTTP 503");
    tdr_second(r, 18, DRILL_PH_EXPIRED, 6, 4);
    r->o->expect_fail_closed = 1;
    drill_results res;
    drill_evaluate(r, &res);
    const drill_verdict *v = verdict(&res, "fail_closed");
    cr_assert_eq(v->pass, 0);
    cr_assert_str_eq(v->text, "expiry was NOT enforced: 6 requests succeeded after every SVID "
                     "had expired (4 failed)");
    assert_contains(res.headline, "| expiry NOT enforced");
    const drill_expect *e = expectation(&res, "--expect-fail-closed");
    cr_assert_not(e->met);
    cr_assert_str_eq(e->detail, "6 succeeded and 4 failed after every SVID had expired");
    tdr_run_free(r);
}

Test(drill_verdict, fail_closed_needs_failures)
{
    /* Every SVID expired, no request succeeded, but none failed either (no traffic):
     * nothing shows that expiry was enforced. */
    drill_run *r = run_with(3, 15, 16, 21, -1, 40);
    r->o->expect_fail_closed = 1;
    drill_results res;
    drill_evaluate(r, &res);
    cr_assert_eq(verdict(&res, "fail_closed")->pass, 0);
    cr_assert_not(expectation(&res, "--expect-fail-closed")->met);
    cr_assert_str_eq(verdict(&res, "fail_closed")->text,
                     "expiry was NOT enforced: 0 requests succeeded after every SVID had expired "
                     "(0 failed)");
    tdr_run_free(r);
}

Test(drill_verdict, meshd_back_before_every_expiry_is_information)
{
    drill_run *r = run_with(3, 15, 30, 21, -1, 40);
    tdr_requests(r, 15.25, DRILL_PH_EXPIRED, 0, 5, "HTTP 503");
    r->o->expect_fail_closed = 1;
    drill_results res;
    drill_evaluate(r, &res);
    const drill_verdict *v = verdict(&res, "fail_closed");
    cr_assert_eq(v->pass, -1);
    cr_assert_str_eq(v->text, "5 requests failed after the first expiry; mTLS failing from "
                     "T+15.2s (0.2s after the first expiry) (meshd came back before every SVID "
                     "had expired)");
    cr_assert_null(strstr(res.headline, "failed closed"));
    cr_assert_null(strstr(res.headline, "NOT enforced"));
    cr_assert_not(expectation(&res, "--expect-fail-closed")->met);
    tdr_run_free(r);
}

Test(drill_verdict, no_failure_after_the_first_expiry_leaves_out_when)
{
    drill_run *r = run_with(3, 15, 30, 21, -1, 40);
    drill_results res;
    drill_evaluate(r, &res);
    cr_assert_str_eq(verdict(&res, "fail_closed")->text, "0 requests failed after the first "
                     "expiry (meshd came back before every SVID had expired)");
    tdr_run_free(r);
}

Test(drill_verdict, not_recovered_names_what_is_missing)
{
    drill_run *r = run_with(3, 15, 16, 21, -1, 81);
    for (int i = 0; i < r->n_sc; i++) {
        r->sc[i].ready = 1;
        r->sc[i].fresh_at = 22;
        r->sc[i].converged_at = 22;
    }
    r->sc[1].converged_at = -1;
    r->sc[2].ready = 0;
    r->healthy_streak = 1;
    r->o->expect_recovery_ms = 30000;
    r->o->expect_recovery_arg = "30s";
    drill_results res;
    drill_evaluate(r, &res);
    const drill_verdict *v = verdict(&res, "recovered");
    cr_assert_eq(v->pass, 0);
    cr_assert_str_eq(v->text, "not recovered 60s after meshd was restarted (2 of 3 sidecars not "
                     "ready, renewed and in sync; traffic not clean)");
    assert_contains(res.headline, "| not recovered");
    cr_assert_not(expectation(&res, "--expect-recovery-within 30s")->met);
    cr_assert_str_eq(expectation(&res, "--expect-recovery-within 30s")->detail, "did not recover");

    r->healthy_streak = DRILL_HEALTHY_SECONDS;
    drill_evaluate(r, &res);
    cr_assert_str_eq(verdict(&res, "recovered")->text, "not recovered 60s after meshd was "
                     "restarted (2 of 3 sidecars not ready, renewed and in sync)");
    tdr_run_free(r);
}

Test(drill_verdict, never_restarted_means_no_recovery_verdict)
{
    drill_run *r = run_with(3, 15, 16, -1, -1, 19);
    r->o->expect_zero_before_expiry = 1;
    drill_results res;
    drill_evaluate(r, &res);
    cr_assert_null(verdict(&res, "recovered"));
    cr_assert_null(strstr(res.headline, "recovered"));
    const drill_expect *e = expectation(&res, "--expect-zero-failures-before-expiry");
    cr_assert_not(e->met, "no restart: the outage did not complete");
    cr_assert_str_eq(e->detail, "the outage did not complete");
    tdr_run_free(r);
}

Test(drill_verdict, recovery_within_is_inclusive)
{
    drill_run *r = run_with(3, 15, 16, 21, 23.5, 27);
    r->o->expect_recovery_arg = "2500ms";
    r->o->expect_recovery_ms = 2500;
    drill_results res;
    drill_evaluate(r, &res);
    cr_assert(res.e[0].met, "recovered in exactly 2.5 s meets --expect-recovery-within 2500ms");
    cr_assert_str_eq(res.e[0].detail, "recovered in 2.5s");
    r->o->expect_recovery_ms = 2499;
    drill_evaluate(r, &res);
    cr_assert_not(res.e[0].met);
    cr_assert_not(res.all_met);
    tdr_run_free(r);
}

Test(drill_verdict, budget_at_least_is_inclusive)
{
    drill_run *r = run_with(3, 15, 16, 21, 23, 27);
    r->o->expect_budget_arg = "12s";
    r->o->expect_budget_s = 12;
    drill_results res;
    drill_evaluate(r, &res);
    cr_assert_str_eq(res.e[0].flag, "--expect-budget-at-least 12s");
    cr_assert(res.e[0].met);
    cr_assert_str_eq(res.e[0].detail, "smallest budget at the kill: 12s (client-1 and 2 more)");
    r->o->expect_budget_s = 13;
    drill_evaluate(r, &res);
    cr_assert_not(res.e[0].met);
    tdr_run_free(r);
}

Test(drill_verdict, crashes_and_early_stops_are_verdicts)
{
    drill_run *r = tdr_full_drill();
    r->crashes = 2;
    snprintf(r->crash_desc, sizeof r->crash_desc, "sc-client-2 killed by signal 11 at T+9s");
    snprintf(r->error, sizeof r->error, "meshd exited with status 1 after the restart");
    drill_results res;
    drill_evaluate(r, &res);
    const drill_verdict *v = verdict(&res, "no_crashes");
    cr_assert_not_null(v);
    cr_assert_eq(v->pass, 0);
    cr_assert_str_eq(v->text, "2 mesh process(es) died on their own; first: sc-client-2 killed "
                     "by signal 11 at T+9s");
    v = verdict(&res, "completed");
    cr_assert_not_null(v);
    cr_assert_eq(v->pass, 0);
    cr_assert_str_eq(v->text, "the drill stopped early: meshd exited with status 1 after the "
                     "restart");
    cr_assert(res.all_met, "expectations are about the mesh; the crash decides the exit status");
    cr_assert_eq(drill_exit_status(0, 0, r->crashes, res.all_met), DRILL_EXIT_EXPECTATION);
    tdr_run_free(r);
}

Test(drill_verdict, no_expectations_are_all_met)
{
    drill_run *r = run_with(3, 15, 16, 21, -1, 81);
    drill_results res;
    drill_evaluate(r, &res);
    cr_assert_eq(res.n_e, 0);
    cr_assert(res.all_met);
    tdr_run_free(r);
}

Test(drill_verdict, exit_status)
{
    cr_assert_eq(drill_exit_status(0, 0, 0, 1), DRILL_EXIT_OK);
    cr_assert_eq(drill_exit_status(0, 0, 0, 0), DRILL_EXIT_EXPECTATION);
    cr_assert_eq(drill_exit_status(0, 0, 1, 1), DRILL_EXIT_EXPECTATION);
    cr_assert_eq(drill_exit_status(0, 1, 1, 0), DRILL_EXIT_ERROR);
    cr_assert_eq(drill_exit_status(1, 1, 1, 0), DRILL_EXIT_INTERRUPTED);
    cr_assert_eq(drill_exit_status(1, 0, 0, 1), DRILL_EXIT_INTERRUPTED);
    cr_assert_eq(DRILL_EXIT_ERROR, 1);
    cr_assert_eq(DRILL_EXIT_USAGE, 2);
    cr_assert_eq(DRILL_EXIT_EXPECTATION, 3);
    cr_assert_eq(DRILL_EXIT_INTERRUPTED, 130);
}
