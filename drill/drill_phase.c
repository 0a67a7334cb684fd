/* drill/drill_phase.c — the drill's phases and what moves them on:
 *
 *   steady ──kill-after──▶ outage ──first SVID expires──▶ expired ──restart──▶
 *   recovery ──every sidecar ready, renewed, synced + 3 clean seconds──▶ recovered
 *
 * Kill and restart happen on whole seconds of the timeline; expiry is watched on
 * every tick (it is a moment, and requests must be counted on the right side of
 * it); during recovery the sidecars and meshd's proxy status are polled four
 * times a second so the recovery time is not rounded up to whole seconds.
 *
 * "Recovered" means, for every sidecar at once: /ready answers 200, its SVID is
 * valid and (if it expired during the outage) a new one, and meshd reports its
 * xDS stream reconnected since the restart with every type ACKed at the version
 * sent; and traffic has been clean (answers, no failures) for 3 whole seconds. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "drill/drill.h"

#define RECOVERY_POLL_S 0.25
#define LISTEN_POLL_S 0.05

double drill_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int drill_meshd_running(drill_run *r)
{
    if (r->o->target)   /* not our process: whether it answers is all we can know */
        return drill_addr_open(r->meshd_addr);
    return r->meshd.pid > 0 && !drill_child_poll(&r->meshd, drill_now_t(r));
}

int drill_sidecar_fresh(const drill_sidecar *s, double wall_now)
{
    if (!s->svid.present || (double)s->svid.not_after <= wall_now)
        return 0;
    return !s->expired_in_outage || strcmp(s->svid.serial, s->outage_svid.serial) != 0;
}

/* ---- kill --------------------------------------------------------------------------- */

static int kill_meshd(drill_run *r, double now, mesh_err *err)
{
    if (r->o->target) {
        int rc = drill_spawn_cmd(&r->cmd, r->dir, "kill-cmd", r->o->kill_cmd, err);
        if (rc != MESH_OK)
            return mesh_err_prefix(err, "--kill-cmd");
        r->cmd_pending = 'k';
        r->cmd_started = now;
    } else {
        drill_child_kill(&r->meshd, now);
    }
    r->killed_at = now;
    r->phase = DRILL_PH_OUTAGE;
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        s->outage_svid = s->svid;
        s->expires_at = s->svid.present ? drill_wall_to_t(r, s->svid.not_after) : -1;
    }
    if (r->o->target)
        drill_say(r, "  >> T+%.1fs  --kill-cmd started (log kill-cmd.log); the sidecars run "
                  "on their cached config and certificates", now);
    else
        drill_say(r, "  >> T+%.1fs  meshd killed (SIGKILL); the sidecars run on their cached "
                  "config and certificates", now);
    return MESH_OK;
}

/* ---- outage ------------------------------------------------------------------------- */

static void first_to_expire(const drill_run *r, char *buf, size_t len);

/* Expiry times come from the SVIDs held during the outage (probes refresh them:
 * a rotation may have landed in the last second before the kill). */
static void update_expiry(drill_run *r)
{
    r->first_expiry_at = r->last_expiry_at = -1;
    for (int i = 0; i < r->n_sc; i++) {
        double e = r->sc[i].expires_at;
        if (e < 0)
            continue;
        if (r->first_expiry_at < 0 || e < r->first_expiry_at)
            r->first_expiry_at = e;
        if (e > r->last_expiry_at)
            r->last_expiry_at = e;
    }
    if (r->first_expiry_at >= 0)
        first_to_expire(r, r->budget_min_name, sizeof r->budget_min_name);
    /* The outage budget: seconds from the kill to each sidecar's expiry. */
    if (r->first_expiry_at >= 0) {
        r->budget_min_s = (int64_t)llround(r->first_expiry_at - r->killed_at);
        r->budget_max_s = (int64_t)llround(r->last_expiry_at - r->killed_at);
    }
    if (r->o->outage_ms)
        r->planned_restart_at = r->killed_at + (double)r->o->outage_ms / 1000.0;
    else if (r->last_expiry_at >= 0)
        r->planned_restart_at = ceil(r->last_expiry_at) + DRILL_OUTAGE_MARGIN_S;
    else
        r->planned_restart_at = r->killed_at + (double)r->o->ttl_s + DRILL_OUTAGE_MARGIN_S;
}

/* "client-3", or "client-3 and 4 more" when several expire in the same second. */
static void first_to_expire(const drill_run *r, char *buf, size_t len)
{
    int n = 0;
    const char *who = "?";
    for (int i = 0; i < r->n_sc; i++)
        if (r->sc[i].expires_at >= 0 && r->sc[i].expires_at - r->first_expiry_at < 1e-6) {
            if (!n)
                who = r->sc[i].name;
            n++;
        }
    if (n > 1)
        snprintf(buf, len, "%s and %d more", who, n - 1);
    else
        snprintf(buf, len, "%s", who);
}

static void watch_expiry(drill_run *r, double now)
{
    if (r->phase != DRILL_PH_OUTAGE || r->first_expiry_at < 0 || now < r->first_expiry_at)
        return;
    r->phase = DRILL_PH_EXPIRED;
    char who[96];
    first_to_expire(r, who, sizeof who);
    drill_say(r, "  >> T+%.1fs  first SVID expired (%s), %.1fs into the outage: mTLS that "
              "needs it now fails closed", r->first_expiry_at, who,
              r->first_expiry_at - r->killed_at);
}

static int restart_meshd(drill_run *r, double now, mesh_err *err)
{
    char name[32];
    int rc;
    if (r->o->target) {
        snprintf(name, sizeof name, "start-cmd");
        if ((rc = drill_spawn_cmd(&r->cmd, r->dir, name, r->o->start_cmd, err)) != MESH_OK)
            return mesh_err_prefix(err, "--start-cmd");
        r->cmd_pending = 's';
        r->cmd_started = now;
    } else {
        char **argv = drill_meshd_argv(r);
        r->meshd_starts++;
        snprintf(name, sizeof name, "meshd-%d", r->meshd_starts);
        rc = drill_spawn(&r->meshd, r->dir, name, argv, err);
        drill_argv_free(argv);
        if (rc != MESH_OK)
            return rc;
    }
    r->restarted_at = now;
    r->phase = DRILL_PH_RECOVERY;
    int expired = 0;
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        s->expired_in_outage = s->expires_at >= 0 && s->expires_at <= now;
        expired += s->expired_in_outage;
    }
    drill_say(r, "  >> T+%.1fs  meshd %s after %.1fs down (log %s.log); %d of %d sidecars hold "
              "an expired SVID", now, r->o->target ? "start command run" : "restarted",
              now - r->killed_at, name, expired, r->n_sc);
    return MESH_OK;
}

/* ---- recovery ---------------------------------------------------------------------- */

/* meshd's view: the stream is back since the restart and every type it was sent is
 * ACKed at the version sent, with no NACK of that version. */
static int stream_synced(const store_proxy *p, int64_t since)
{
    if (!p->connected || p->connected_at < since || p->n_types == 0)
        return 0;
    for (size_t t = 0; t < p->n_types; t++) {
        const store_proxy_type_status *ts = &p->types[t];
        if (!ts->sent_version[0])
            continue;
        if (strcmp(ts->sent_version, ts->acked_version) != 0)
            return 0;
        if (ts->nack_version[0] && strcmp(ts->nack_version, ts->sent_version) == 0)
            return 0;
    }
    return 1;
}

static void check_converged(drill_run *r, double now)
{
    store_proxy *list = NULL;
    size_t n = 0;
    mesh_err e = {0};
    if (store_proxy_list(r->st, &list, &n, &e) != MESH_OK)
        return;   /* busy store: next poll */
    int64_t since = (int64_t)floor(r->wall_t0 + r->restarted_at);
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        if (s->converged_at >= 0)
            continue;
        for (size_t k = 0; k < n; k++)
            if (strcmp(list[k].node_id, s->name) == 0 && stream_synced(&list[k], since))
                s->converged_at = now;
    }
    store_proxy_free_list(list, n);
}

/* Updates the "every sidecar" moments; returns 1 if all three hold now. */
static int recovery_state(drill_run *r, double now)
{
    double wn = drill_wall_now();
    int n_fresh = 0, n_ready = 0, n_conv = 0;
    double last_fresh = 0, last_ready = 0, last_conv = 0;
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        if (drill_sidecar_fresh(s, wn)) {
            if (s->fresh_at < 0)
                s->fresh_at = now;
            n_fresh++;
            last_fresh = fmax(last_fresh, s->fresh_at);
        }
        if (s->ready) {
            if (s->ready_at < 0)
                s->ready_at = now;
            n_ready++;
            last_ready = fmax(last_ready, s->ready_at);
        }
        if (s->converged_at >= 0) {
            n_conv++;
            last_conv = fmax(last_conv, s->converged_at);
        }
    }
    if (n_fresh == r->n_sc && r->all_fresh_at < 0) {
        r->all_fresh_at = last_fresh;
        drill_say(r, "  >> T+%.1fs  every sidecar holds a valid SVID (renewed where it had "
                  "expired)", r->all_fresh_at);
    }
    if (n_ready == r->n_sc && r->all_ready_at < 0)
        r->all_ready_at = last_ready;
    if (n_conv == r->n_sc && r->converged_at < 0) {
        r->converged_at = last_conv;
        drill_say(r, "  >> T+%.1fs  config converged: meshd reports every sidecar reconnected "
                  "and ACKed", r->converged_at);
    }
    return n_fresh == r->n_sc && n_ready == r->n_sc && n_conv == r->n_sc;
}

static void recovery_poll(drill_run *r, double now)
{
    if (r->listening_at < 0 && now - r->last_listen_poll >= LISTEN_POLL_S) {
        r->last_listen_poll = now;
        if (r->o->target ? drill_addr_open(r->meshd_addr)
                         : drill_meshd_running(r) && drill_port_open(r->meshd_port)) {
            r->listening_at = now;
            drill_say(r, "  >> T+%.1fs  meshd accepts connections again", now);
        }
    }
    if (now - r->last_recovery_poll >= RECOVERY_POLL_S) {
        r->last_recovery_poll = now;
        check_converged(r, now);
        recovery_state(r, now);
        drill_probe_all(r);
    }
}

/* At the end of second `sec`: 1 recovered, 0 not yet. */
static int check_recovered(drill_run *r, const drill_second *sec, double now)
{
    check_converged(r, now);
    int all = recovery_state(r, now);
    if ((double)sec->t >= r->restarted_at - 1e-6 && sec->ok > 0 && sec->failed == 0) {
        if (r->healthy_streak++ == 0)
            r->healthy_from = sec->t;
    } else {
        r->healthy_streak = 0;
        r->healthy_from = -1;
    }
    if (!all || r->healthy_streak < DRILL_HEALTHY_SECONDS)
        return 0;
    r->recovered_at = fmax(fmax(r->healthy_from, r->all_fresh_at),
                           fmax(r->all_ready_at, r->converged_at));
    return 1;
}

static void timeout_report(drill_run *r, double now)
{
    double wn = drill_wall_now();
    int shown = 0;
    drill_say(r, "  >> T+%.1fs  not recovered %.0fs after the restart; giving up", now,
              now - r->restarted_at);
    for (int i = 0; i < r->n_sc && shown < 5; i++) {
        drill_sidecar *s = &r->sc[i];
        const char *why = !s->ready ? (s->ready_msg[0] ? s->ready_msg : "not ready")
                          : !drill_sidecar_fresh(s, wn) ? "SVID not renewed"
                          : s->converged_at < 0 ? "meshd does not report its config in sync"
                                                : NULL;
        if (!why)
            continue;
        drill_say(r, "       %s: %s (log %s/sc-%s.log)", s->name, why, r->dir, s->name);
        shown++;
    }
}

static int meshd_exited_error(drill_run *r, const char *when)
{
    if (r->o->target || !r->meshd.exited)
        return 0;
    char how[128], tail[400];
    drill_child_describe(&r->meshd, how, sizeof how);
    drill_log_tail(r->dir, r->meshd.name, 3, tail, sizeof tail);
    snprintf(r->error, sizeof r->error, "meshd %.100s %.60s (%.60s.log: %.300s)", how, when,
             r->meshd.name, tail);
    return 1;
}

/* ---- entry points ------------------------------------------------------------------ */

/* Target mode: follows the operator's kill/start command. The kill counts once the
 * command succeeded and meshd stopped answering; a failing command ends the drill. */
static int watch_command(drill_run *r, double now)
{
    if (!r->cmd_pending)
        return DRILL_STEP_GO_ON;
    const char *which = r->cmd_pending == 'k' ? "--kill-cmd" : "--start-cmd";
    if (drill_child_poll(&r->cmd, now)) {
        int ok = WIFEXITED(r->cmd.status) && WEXITSTATUS(r->cmd.status) == 0;
        if (!ok) {
            char how[128], tail[300];
            drill_child_describe(&r->cmd, how, sizeof how);
            drill_log_tail(r->dir, r->cmd.name, 2, tail, sizeof tail);
            snprintf(r->error, sizeof r->error, "%s %s (%s.log: %s)", which, how, r->cmd.name,
                     tail);
            return DRILL_STEP_ERROR;
        }
        if (r->cmd_pending == 's') {
            r->cmd_pending = 0;
            return DRILL_STEP_GO_ON;
        }
    }
    if (r->cmd_pending == 'k' && r->cmd.exited) {
        if (now - r->last_listen_poll < LISTEN_POLL_S * 2)
            return DRILL_STEP_GO_ON;
        r->last_listen_poll = now;
        if (!drill_addr_open(r->meshd_addr)) {
            r->cmd_pending = 0;
            drill_say(r, "  >> T+%.1fs  meshd at %s no longer accepts connections", now,
                      r->meshd_addr);
            return DRILL_STEP_GO_ON;
        }
    }
    double limit = r->cmd_pending == 'k' ? 15 : 60;
    if (now - r->cmd_started > limit) {
        if (r->cmd_pending == 'k') {
            snprintf(r->error, sizeof r->error, "meshd at %s still accepts connections %.0fs "
                     "after --kill-cmd was started", r->meshd_addr, limit);
            return DRILL_STEP_ERROR;
        }
        drill_say(r, "  >> T+%.1fs  --start-cmd is still running after %.0fs; the drill leaves "
                  "it alone", now, limit);
        r->cmd_pending = 0;
    }
    return DRILL_STEP_GO_ON;
}

int drill_phase_tick(drill_run *r, double now)
{
    if (watch_command(r, now) == DRILL_STEP_ERROR)
        return DRILL_STEP_ERROR;
    watch_expiry(r, now);
    if (r->phase == DRILL_PH_RECOVERY)
        recovery_poll(r, now);
    return DRILL_STEP_GO_ON;
}

int drill_phase_second(drill_run *r, const drill_second *sec, double now)
{
    mesh_err err = {0};
    switch (r->phase) {
    case DRILL_PH_STEADY:
        if (meshd_exited_error(r, "before the drill killed it"))
            return DRILL_STEP_ERROR;
        if (now + 1e-6 >= (double)r->o->kill_after_ms / 1000.0 &&
            kill_meshd(r, now, &err) != MESH_OK) {
            snprintf(r->error, sizeof r->error, "%s", err.msg);
            return DRILL_STEP_ERROR;
        }
        return DRILL_STEP_GO_ON;
    case DRILL_PH_OUTAGE:
    case DRILL_PH_EXPIRED:
        update_expiry(r);
        if (!r->budget_said && r->first_expiry_at >= 0) {
            /* After the first round of probes since the kill: the SVIDs are final. */
            r->budget_said = 1;
            drill_say(r, "  >> outage budget at the kill: %llds (%s) to %llds; first expiry "
                      "due at T+%.1fs, meshd restarts at T+%.1fs", (long long)r->budget_min_s,
                      r->budget_min_name, (long long)r->budget_max_s, r->first_expiry_at,
                      r->planned_restart_at);
        }
        watch_expiry(r, now);
        if (now + 1e-6 >= r->planned_restart_at && restart_meshd(r, now, &err) != MESH_OK) {
            snprintf(r->error, sizeof r->error, "cannot restart meshd: %s", err.msg);
            return DRILL_STEP_ERROR;
        }
        return DRILL_STEP_GO_ON;
    case DRILL_PH_RECOVERY:
        if (meshd_exited_error(r, "after the restart"))
            return DRILL_STEP_ERROR;
        if (check_recovered(r, sec, now)) {
            r->phase = DRILL_PH_RECOVERED;
            /* The seconds mostly after the moment of recovery count as recovered. */
            for (size_t i = 0; i < r->n_secs; i++)
                if ((double)r->secs[i].t + 0.5 >= r->recovered_at)
                    r->secs[i].phase = DRILL_PH_RECOVERED;
            drill_say(r, "  >> T+%.1fs  recovered %.1fs after the restart (confirmed by %d clean "
                      "seconds of traffic)", r->recovered_at, r->recovered_at - r->restarted_at,
                      DRILL_HEALTHY_SECONDS);
            return DRILL_STEP_DONE;
        }
        if (now - r->restarted_at >= (double)r->o->recovery_timeout_ms / 1000.0 - 1e-6) {
            timeout_report(r, now);
            return DRILL_STEP_DONE;
        }
        return DRILL_STEP_GO_ON;
    case DRILL_PH_RECOVERED:
        return DRILL_STEP_DONE;
    }
    return DRILL_STEP_GO_ON;
}
