/* drill/drill_phase.c — the drill's phases as actions: killing meshd (SIGKILL, or
 * the operator's --kill-cmd), starting it again, polling meshd and its proxy
 * status during recovery, and following the target mode's commands. When each
 * of these is due, and what the answers mean, is decided by drill_outage.c.
 *
 * Kill and restart happen on whole seconds of the timeline; expiry is watched on
 * every tick (it is a moment, and requests must be counted on the right side of
 * it); during recovery the sidecars and meshd's proxy status are polled four
 * times a second so the recovery time is not rounded up to whole seconds. */
#include <stdio.h>
#include <sys/wait.h>

#include "drill/drill.h"
#include "drill/drill_failover.h"

#define RECOVERY_POLL_S 0.25
#define LISTEN_POLL_S 0.05
#define SERVER_POLL_S 0.05      /* replica mode: how often a moving sidecar is asked */
#define SERVER_POLL_MAX 8       /* ... and how many per tick: the GETs block the loop */

int drill_meshd_running(drill_run *r)
{
    if (r->o->target)   /* not our process: whether it answers is all we can know */
        return drill_addr_open(r->meshd_addr);
    int up = r->meshd.pid > 0 && !drill_child_poll(&r->meshd, drill_now_t(r));
    /* Replica mode: the control plane is up while any replica is. */
    for (int k = 1; k < r->o->replicas; k++)
        up |= r->replica[k - 1].pid > 0 && !drill_child_poll(&r->replica[k - 1], drill_now_t(r));
    return up;
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
    drill_outage_begin(r, now);
    if (r->o->target)
        drill_say(r, "  >> T+%.1fs  --kill-cmd started (log kill-cmd.log); the sidecars run "
                  "on their cached config and certificates", now);
    else
        drill_say(r, "  >> T+%.1fs  meshd killed (SIGKILL); the sidecars run on their cached "
                  "config and certificates", now);
    return MESH_OK;
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
    int expired = drill_outage_end(r, now);
    drill_say(r, "  >> T+%.1fs  meshd %s after %.1fs down (log %s.log); %d of %d sidecars hold "
              "an expired SVID", now, r->o->target ? "start command run" : "restarted",
              now - r->killed_at, name, expired, r->n_sc);
    return MESH_OK;
}

/* ---- recovery ---------------------------------------------------------------------- */

static void check_converged(drill_run *r, double now)
{
    store_proxy *list = NULL;
    size_t n = 0;
    mesh_err e = {0};
    if (store_proxy_list(r->st, &list, &n, &e) != MESH_OK)
        return;   /* busy store: next poll */
    drill_note_proxy_status(r, list, n, now);
    store_proxy_free_list(list, n);
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
        drill_recovery_state(r, now, drill_wall_now());
        drill_probe_all(r);
    }
}

/* At the end of second `sec`: 1 recovered, 0 not yet. */
static int check_recovered(drill_run *r, const drill_second *sec, double now)
{
    check_converged(r, now);
    int all = drill_recovery_state(r, now, drill_wall_now());
    return drill_recovery_second(r, sec, all);
}

static void timeout_report(drill_run *r, double now)
{
    double wn = drill_wall_now();
    int shown = 0;
    drill_say(r, "  >> T+%.1fs  not recovered %.0fs after the restart; giving up", now,
              now - r->restarted_at);
    for (int i = 0; i < r->n_sc && shown < 5; i++) {
        drill_sidecar *s = &r->sc[i];
        const char *why = drill_not_recovered_reason(s, wn);
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

/* ---- replica mode ------------------------------------------------------------------ */

/* Asks sidecar s (admin /config_dump) which replica its ADS stream is on. */
static void poll_server(drill_run *r, drill_sidecar *s, double now)
{
    char body[4096];
    int status = 0;
    char server[64] = "";
    if (drill_http_get(s->port_admin, "127.0.0.1", "/config_dump", 500, &status, body,
                       sizeof body) == 0 && status == 200)
        drill_failover_parse_server(body, server, sizeof server);
    int was_moved = s->moved_at >= 0;
    drill_failover_note(r, s, server, now);
    if (!was_moved && s->moved_at >= 0)
        drill_say(r, "  >> T+%.2fs  %s moved to %s, %.2fs after the kill", now, s->name,
                  s->moved_to, s->moved_at - r->killed_at);
}

static int kill_replica(drill_run *r, double now)
{
    for (int i = 0; i < r->n_sc; i++)
        poll_server(r, &r->sc[i], now);
    int k = drill_failover_pick(r);
    if (k < 0) {
        snprintf(r->error, sizeof r->error, "no sidecar reports an ADS stream to a meshd replica "
                 "at --kill-after (admin /config_dump)");
        return DRILL_STEP_ERROR;
    }
    drill_child *ch = k == 0 ? &r->meshd : &r->replica[k - 1];
    drill_child_kill(ch, now);
    int n = drill_failover_mark(r, k, now);
    r->phase = DRILL_PH_OUTAGE;
    drill_say(r, "  >> T+%.1fs  meshd replica %d (%s) killed (SIGKILL); %d of %d sidecars were "
              "on it", now, k + 1, r->replica_addr[k], n, r->n_sc);
    return DRILL_STEP_GO_ON;
}

static int replica_tick(drill_run *r, double now)
{
    if (r->phase != DRILL_PH_OUTAGE || now - r->last_server_poll < SERVER_POLL_S)
        return DRILL_STEP_GO_ON;
    r->last_server_poll = now;
    /* Round robin over those still on the way, a few per tick, so hundreds of
     * sidecars do not stall the traffic (their times get coarser instead). */
    int asked = 0, start = r->server_poll_next;
    for (int k = 0; k < r->n_sc && asked < SERVER_POLL_MAX; k++) {
        drill_sidecar *s = &r->sc[(start + k) % r->n_sc];
        if (!s->on_killed || s->moved_at >= 0)
            continue;
        poll_server(r, s, now);
        asked++;
        r->server_poll_next = (s->index + 1) % r->n_sc;
    }
    return DRILL_STEP_GO_ON;
}

static int replica_second(drill_run *r, double now)
{
    switch (r->phase) {
    case DRILL_PH_STEADY:
        if (meshd_exited_error(r, "before the drill killed a replica"))
            return DRILL_STEP_ERROR;
        return drill_kill_due(r, now) ? kill_replica(r, now) : DRILL_STEP_GO_ON;
    case DRILL_PH_OUTAGE:
        if (now - r->killed_at + 1e-6 < (double)r->o->outage_ms / 1000.0)
            return DRILL_STEP_GO_ON;
        if (!drill_failover_all_moved(r))
            drill_say(r, "  >> T+%.1fs  %.0fs after the kill some sidecars are still not on "
                      "another replica", now, now - r->killed_at);
        r->phase = DRILL_PH_RECOVERED;
        return DRILL_STEP_DONE;
    default:
        return DRILL_STEP_DONE;
    }
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
    if (r->o->kill_replica)
        return replica_tick(r, now);
    if (watch_command(r, now) == DRILL_STEP_ERROR)
        return DRILL_STEP_ERROR;
    drill_watch_expiry(r, now);
    if (r->phase == DRILL_PH_RECOVERY)
        recovery_poll(r, now);
    return DRILL_STEP_GO_ON;
}

int drill_phase_second(drill_run *r, const drill_second *sec, double now)
{
    if (r->o->kill_replica)
        return replica_second(r, now);
    mesh_err err = {0};
    switch (r->phase) {
    case DRILL_PH_STEADY:
        if (meshd_exited_error(r, "before the drill killed it"))
            return DRILL_STEP_ERROR;
        if (drill_kill_due(r, now) && kill_meshd(r, now, &err) != MESH_OK) {
            snprintf(r->error, sizeof r->error, "%s", err.msg);
            return DRILL_STEP_ERROR;
        }
        return DRILL_STEP_GO_ON;
    case DRILL_PH_OUTAGE:
    case DRILL_PH_EXPIRED:
        drill_update_expiry(r);
        if (!r->budget_said && r->first_expiry_at >= 0) {
            /* After the first round of probes since the kill: the SVIDs are final. */
            r->budget_said = 1;
            drill_say(r, "  >> outage budget at the kill: %llds (%s) to %llds; first expiry "
                      "due at T+%.1fs, meshd restarts at T+%.1fs", (long long)r->budget_min_s,
                      r->budget_min_name, (long long)r->budget_max_s, r->first_expiry_at,
                      r->planned_restart_at);
        }
        drill_watch_expiry(r, now);
        if (drill_restart_due(r, now) && restart_meshd(r, now, &err) != MESH_OK) {
            snprintf(r->error, sizeof r->error, "cannot restart meshd: %s", err.msg);
            return DRILL_STEP_ERROR;
        }
        return DRILL_STEP_GO_ON;
    case DRILL_PH_RECOVERY:
        if (meshd_exited_error(r, "after the restart"))
            return DRILL_STEP_ERROR;
        if (check_recovered(r, sec, now)) {
            drill_mark_recovered(r);
            drill_say(r, "  >> T+%.1fs  recovered %.1fs after the restart (confirmed by %d clean "
                      "seconds of traffic)", r->recovered_at, r->recovered_at - r->restarted_at,
                      DRILL_HEALTHY_SECONDS);
            return DRILL_STEP_DONE;
        }
        if (drill_recovery_timed_out(r, now)) {
            timeout_report(r, now);
            return DRILL_STEP_DONE;
        }
        return DRILL_STEP_GO_ON;
    case DRILL_PH_RECOVERED:
        return DRILL_STEP_DONE;
    }
    return DRILL_STEP_GO_ON;
}
