/* drill/drill_verdict.c — what the drill concludes: the facts derived from the
 * record, verdicts (what happened, in an operator's words), the --expect-*
 * checks, the outcome in one line (the chart's subtitle) and the exit status.
 *
 * "Before expiry" is decided from each failed request's own time against the
 * earliest notAfter among the SVIDs the sidecars held while meshd was down, so a
 * request that failed a moment before any certificate expired is never excused. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "drill/drill_failover.h"
#include "drill/drill_verdict.h"

/* Facts derived once from the run (see drill_facts in the header). */
void drill_derive(const drill_run *r, drill_facts *f)
{
    memset(f, 0, sizeof *f);
    f->first_fail_after_expiry = -1;
    f->recovery_s = -1;
    f->killed = r->killed_at >= 0;
    f->restarted = r->restarted_at >= 0;
    f->recovered = r->recovered_at >= 0;
    double outage_end = f->restarted ? r->restarted_at : r->ended_at;
    f->expiry_in_outage = f->killed && r->first_expiry_at >= 0 && r->first_expiry_at < outage_end;
    f->all_expired_in_outage = f->expiry_in_outage && r->last_expiry_at >= 0 &&
                               r->last_expiry_at + 1.0 <= outage_end;
    f->horizon = f->expiry_in_outage ? r->first_expiry_at : INFINITY;
    for (size_t i = 0; i < r->n_fail_t; i++) {
        double t = r->fail_t[i];
        if (t < f->horizon)
            f->failed_before_expiry++;
        if (f->expiry_in_outage && t >= r->first_expiry_at && t < outage_end) {
            f->failed_while_expired++;
            if (f->first_fail_after_expiry < 0 || t < f->first_fail_after_expiry)
                f->first_fail_after_expiry = t;
        }
        if (f->recovered && t >= r->recovered_at)
            f->failed_after_recovery++;
    }
    if (r->fail_t_capped) {
        /* Past the cap: attribute the rest by whole seconds (noted in the JSON). */
        uint64_t listed = r->n_fail_t, total = 0;
        for (size_t i = 0; i < r->n_secs; i++) {
            total += r->secs[i].failed;
            if (total > listed && (double)r->secs[i].t + 1 <= f->horizon)
                f->failed_before_expiry += r->secs[i].failed;
        }
    }
    for (size_t i = 0; i < r->n_secs; i++) {
        const drill_second *s = &r->secs[i];
        double a = s->t, b = s->t + 1;
        if (f->all_expired_in_outage && a >= r->last_expiry_at + 1.0 && b <= outage_end + 1e-6)
            f->ok_after_all_expired += s->ok;
    }
    /* The outage phase runs from the kill to the first expiry (or the restart). */
    f->ok_before_expiry_in_outage = r->phase_ok[DRILL_PH_OUTAGE];
    if (f->recovered)
        f->recovery_s = r->recovered_at - r->restarted_at;
}

static void add_v(drill_results *res, const char *id, int pass, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_v(drill_results *res, const char *id, int pass, const char *fmt, ...)
{
    if (res->n_v >= (int)(sizeof res->v / sizeof res->v[0]))
        return;
    drill_verdict *v = &res->v[res->n_v++];
    v->id = id;
    v->pass = pass;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->text, sizeof v->text, fmt, ap);
    va_end(ap);
}

static drill_expect *add_e(drill_results *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static drill_expect *add_e(drill_results *res, const char *fmt, ...)
{
    drill_expect *e = &res->e[res->n_e++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->flag_buf, sizeof e->flag_buf, fmt, ap);
    va_end(ap);
    e->flag = e->flag_buf;
    return e;
}

static void headline_add(drill_results *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void headline_add(drill_results *res, const char *fmt, ...)
{
    size_t o = strlen(res->headline);
    if (o + 1 >= sizeof res->headline)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->headline + o, sizeof res->headline - o, fmt, ap);
    va_end(ap);
}

void drill_evaluate(const drill_run *r, drill_results *res)
{
    if (r->o->kill_replica) {
        drill_failover_evaluate(r, res);
        return;
    }
    memset(res, 0, sizeof *res);
    drill_facts f;
    drill_derive(r, &f);
    double outage_end = f.restarted ? r->restarted_at : r->ended_at;

    /* 1. Did traffic survive until expiry? */
    if (!f.killed) {
        add_v(res, "zero_failures_before_expiry", -1,
              "the drill ended before meshd was killed: no outage was observed");
    } else if (f.expiry_in_outage) {
        if (f.failed_before_expiry == 0)
            add_v(res, "zero_failures_before_expiry", 1,
                  "traffic survived the outage with zero failed requests until expiry "
                  "(%llu requests answered in the %.1fs between the kill and the first expiry)",
                  (unsigned long long)f.ok_before_expiry_in_outage,
                  r->first_expiry_at - r->killed_at);
        else
            add_v(res, "zero_failures_before_expiry", 0,
                  "%llu requests failed before the first SVID expired; the first at T+%.1fs: %s",
                  (unsigned long long)f.failed_before_expiry, r->first_fail_at,
                  r->first_fail_desc[0] ? r->first_fail_desc : "?");
    } else {
        if (f.failed_before_expiry == 0)
            add_v(res, "zero_failures_before_expiry", 1,
                  "traffic survived the whole %.1fs outage with zero failed requests (no SVID "
                  "expired while meshd was down)", outage_end - r->killed_at);
        else
            add_v(res, "zero_failures_before_expiry", 0,
                  "%llu requests failed although no SVID had expired; the first at T+%.1fs: %s",
                  (unsigned long long)f.failed_before_expiry, r->first_fail_at,
                  r->first_fail_desc[0] ? r->first_fail_desc : "?");
    }

    /* 2. When the budget ran out. */
    if (f.killed) {
        if (f.expiry_in_outage)
            add_v(res, "first_expiry", -1,
                  "first expiry at T+%.1fs, %.1fs into the outage (outage budget at the kill: "
                  "%llds on %s, up to %llds)", r->first_expiry_at,
                  r->first_expiry_at - r->killed_at, (long long)r->budget_min_s,
                  r->budget_min_name, (long long)r->budget_max_s);
        else
            add_v(res, "first_expiry", -1,
                  "no SVID expired during the %.1fs outage (outage budget at the kill: %llds on "
                  "%s, up to %llds)", outage_end - r->killed_at, (long long)r->budget_min_s,
                  r->budget_min_name, (long long)r->budget_max_s);
    }

    /* 3. Fail closed once expired. */
    if (f.expiry_in_outage) {
        char when[96] = "";
        if (f.first_fail_after_expiry >= 0)
            snprintf(when, sizeof when, "mTLS failing from T+%.1fs (%.1fs after the first "
                     "expiry)", f.first_fail_after_expiry,
                     f.first_fail_after_expiry - r->first_expiry_at);
        if (!f.all_expired_in_outage)
            add_v(res, "fail_closed", -1,
                  "%llu requests failed after the first expiry%s%s (meshd came back before "
                  "every SVID had expired)", (unsigned long long)f.failed_while_expired,
                  when[0] ? "; " : "", when);
        else if (f.ok_after_all_expired == 0 && f.failed_while_expired > 0)
            add_v(res, "fail_closed", 1,
                  "expired SVIDs failed closed: %s; %llu requests refused, none succeeded once "
                  "every SVID had expired", when, (unsigned long long)f.failed_while_expired);
        else
            add_v(res, "fail_closed", 0,
                  "expiry was NOT enforced: %llu requests succeeded after every SVID had "
                  "expired (%llu failed)", (unsigned long long)f.ok_after_all_expired,
                  (unsigned long long)f.failed_while_expired);
    }

    /* 4. Recovery. */
    if (f.recovered) {
        add_v(res, "recovered", 1,
              "recovered in %.1fs (meshd accepting after %.1fs, every SVID renewed after "
              "%.1fs, config converged after %.1fs, clean traffic from %.1fs)",
              f.recovery_s, r->listening_at >= 0 ? r->listening_at - r->restarted_at : -1,
              r->all_fresh_at - r->restarted_at, r->converged_at - r->restarted_at,
              r->healthy_from - r->restarted_at);
    } else if (f.restarted) {
        int missing = 0;
        for (int i = 0; i < r->n_sc; i++)
            missing += r->sc[i].fresh_at < 0 || r->sc[i].converged_at < 0 || !r->sc[i].ready;
        add_v(res, "recovered", 0,
              "not recovered %.0fs after meshd was restarted (%d of %d sidecars not ready, "
              "renewed and in sync%s)", r->ended_at - r->restarted_at, missing, r->n_sc,
              r->healthy_streak < DRILL_HEALTHY_SECONDS ? "; traffic not clean" : "");
    }

    /* 5. Processes that died on their own. */
    if (r->crashes)
        add_v(res, "no_crashes", 0, "%d mesh process(es) died on their own; first: %s",
              r->crashes, r->crash_desc);
    if (r->error[0])
        add_v(res, "completed", 0, "the drill stopped early: %s", r->error);

    /* The outcome in one line. */
    if (!f.killed)
        headline_add(res, "no outage observed");
    else if (f.failed_before_expiry)
        headline_add(res, "%llu failed before expiry",
                     (unsigned long long)f.failed_before_expiry);
    else if (f.expiry_in_outage)
        headline_add(res, "zero failed requests until expiry");
    else
        headline_add(res, "zero failed requests in a %.0fs outage", outage_end - r->killed_at);
    if (f.expiry_in_outage)
        headline_add(res, " | first expiry T+%.1fs (%.1fs into the outage)",
                     r->first_expiry_at, r->first_expiry_at - r->killed_at);
    if (f.all_expired_in_outage)
        headline_add(res, " | %s", f.ok_after_all_expired == 0 && f.failed_while_expired
                                       ? "failed closed"
                                       : "expiry NOT enforced");
    if (f.recovered)
        headline_add(res, " | recovered in %.1fs", f.recovery_s);
    else if (f.restarted)
        headline_add(res, " | not recovered");

    /* Expectations. */
    res->all_met = 1;
    drill_expect *e;
    if (r->o->expect_zero_before_expiry) {
        e = add_e(res, "--expect-zero-failures-before-expiry");
        e->met = f.killed && f.restarted && f.failed_before_expiry == 0;
        if (!f.killed || !f.restarted)
            snprintf(e->detail, sizeof e->detail, "the outage did not complete");
        else if (f.expiry_in_outage)
            snprintf(e->detail, sizeof e->detail, "%llu failed before the first expiry at T+%.1fs",
                     (unsigned long long)f.failed_before_expiry, r->first_expiry_at);
        else
            snprintf(e->detail, sizeof e->detail, "%llu failed; no SVID expired",
                     (unsigned long long)f.failed_before_expiry);
    }
    if (r->o->expect_fail_closed) {
        e = add_e(res, "--expect-fail-closed");
        e->met = f.all_expired_in_outage && f.ok_after_all_expired == 0 &&
                 f.failed_while_expired > 0;
        if (!f.all_expired_in_outage)
            snprintf(e->detail, sizeof e->detail, "not every SVID expired while meshd was down");
        else
            snprintf(e->detail, sizeof e->detail, "%llu succeeded and %llu failed after every "
                     "SVID had expired", (unsigned long long)f.ok_after_all_expired,
                     (unsigned long long)f.failed_while_expired);
    }
    if (r->o->expect_recovery_ms >= 0) {
        e = add_e(res, "--expect-recovery-within %s", r->o->expect_recovery_arg);
        e->met = f.recovered && f.recovery_s * 1000.0 <= (double)r->o->expect_recovery_ms;
        if (f.recovered)
            snprintf(e->detail, sizeof e->detail, "recovered in %.1fs", f.recovery_s);
        else
            snprintf(e->detail, sizeof e->detail, "did not recover");
    }
    if (r->o->expect_budget_s >= 0) {
        e = add_e(res, "--expect-budget-at-least %s", r->o->expect_budget_arg);
        e->met = f.killed && r->budget_min_s >= r->o->expect_budget_s;
        if (f.killed)
            snprintf(e->detail, sizeof e->detail, "smallest budget at the kill: %llds (%s)",
                     (long long)r->budget_min_s, r->budget_min_name);
        else
            snprintf(e->detail, sizeof e->detail, "meshd was never killed");
    }
    for (int i = 0; i < res->n_e; i++)
        res->all_met &= res->e[i].met;
}

int drill_exit_status(int interrupted, int could_not_run, int crashes, int all_met)
{
    if (interrupted)
        return DRILL_EXIT_INTERRUPTED;
    if (could_not_run)
        return DRILL_EXIT_ERROR;
    /* A mesh process that died on its own is a finding, like an unmet expectation. */
    if (crashes || !all_met)
        return DRILL_EXIT_EXPECTATION;
    return DRILL_EXIT_OK;
}
