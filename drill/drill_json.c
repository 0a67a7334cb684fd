/* drill/drill_json.c — the drill's JSON report (--json, --output json).
 *
 * One object: drill (settings), result, events (T+ seconds, null when it did not
 * happen), outage, recovery, requests, verdicts, expectations, sidecars and the
 * per-second timeline. docs/drill.md lists the fields; report_version changes
 * only if a field changes meaning (new fields may appear at any time). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/json_out.h"
#include "drill/drill_outage.h"
#include "drill/drill_report.h"
#include "drill/drill_stats.h"

/* RFC 3339 UTC, as every other time meshctl prints. */
static void format_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void key_time(json_out *j, const char *key, double t)
{
    json_key(j, key);
    if (t < 0 || !isfinite(t))
        json_null(j);
    else
        json_num(j, round(t * 1000.0) / 1000.0);
}

static void key_num(json_out *j, const char *key, double v)
{
    json_key(j, key);
    json_num(j, round(v * 1000.0) / 1000.0);
}

static void key_after(json_out *j, const char *key, double t, double from)
{
    key_time(j, key, t >= 0 && from >= 0 ? t - from : -1);
}

static void svid_json(json_out *j, const char *key, const drill_svid *v)
{
    json_key(j, key);
    if (!v->present) {
        json_null(j);
        return;
    }
    char nb[32], na[32];
    format_time(v->not_before, nb, sizeof nb);
    format_time(v->not_after, na, sizeof na);
    json_obj_begin(j);
    json_key_str(j, "serial", v->serial);
    json_key_str(j, "not_before", nb);
    json_key_str(j, "not_after", na);
    json_obj_end(j);
}

static void config_json(const drill_run *r, json_out *j)
{
    const drill_opts *o = r->o;
    char started[32];
    format_time((int64_t)r->wall_t0, started, sizeof started);
    json_key(j, "drill");
    json_obj_begin(j);
    json_key_int(j, "report_version", 1);
    json_key_str(j, "started_at", started);
    json_key_str(j, "dir", r->dir);
    json_key_str(j, "trust_domain", r->td);
    json_key_int(j, "client_sidecars", o->n_clients);
    json_key_int(j, "server_sidecars", o->n_servers);
    json_key_int(j, "svid_ttl_s", o->ttl_s);
    key_num(j, "rate_rps", o->rate);
    key_num(j, "kill_after_s", (double)o->kill_after_ms / 1000.0);
    json_key(j, "outage_s");
    if (o->outage_ms)
        json_num(j, (double)o->outage_ms / 1000.0);
    else
        json_null(j);
    json_key_str(j, "outage_rule", o->outage_ms ? "fixed" : "until the last SVID expired + 5s");
    key_num(j, "recovery_timeout_s", (double)o->recovery_timeout_ms / 1000.0);
    json_key_int(j, "request_timeout_ms", o->request_timeout_ms);
    json_key_str(j, "sidecar_reconnect_max", o->reconnect_max ? o->reconnect_max : "default");
    json_key_str(j, "meshd_rotate_fraction", o->rotate_fraction ? o->rotate_fraction : "default");
    json_key_int(j, "healthy_seconds_for_recovery", DRILL_HEALTHY_SECONDS);
    json_key_int(j, "replicas", o->replicas);
    json_key_bool(j, "kill_replica", o->kill_replica);
    if (o->kill_replica) {
        /* 1-based, as the progress lines and verdicts name it; null: none killed. */
        json_key(j, "killed_replica");
        if (r->killed_replica >= 0)
            json_num(j, r->killed_replica + 1);
        else
            json_null(j);
        json_key_str(j, "killed_replica_addr",
                     r->killed_replica >= 0 ? r->replica_addr[r->killed_replica] : "");
    }
    json_obj_end(j);
}

static void phase_latency_json(const drill_run *r, json_out *j)
{
    json_key(j, "by_phase");
    json_obj_begin(j);
    for (int p = 0; p < DRILL_N_PHASES; p++) {
        json_key(j, drill_phase_name((enum drill_phase)p));
        json_obj_begin(j);
        json_key_int(j, "ok", (int64_t)r->phase_ok[p]);
        json_key_int(j, "failed", (int64_t)r->phase_failed[p]);
        key_num(j, "p50_ms", drill_hist_quantile(&r->phase_hist[p], 0.5));
        key_num(j, "p99_ms", drill_hist_quantile(&r->phase_hist[p], 0.99));
        key_time(j, "first_failure_at", r->phase_first_fail_at[p]);
        if (r->phase_first_fail_at[p] >= 0)
            json_key_str(j, "first_failure", r->phase_first_fail[p]);
        json_obj_end(j);
    }
    json_obj_end(j);
}

static void sidecars_json(const drill_run *r, json_out *j)
{
    json_key(j, "sidecars");
    json_arr_begin(j);
    for (int i = 0; i < r->n_sc; i++) {
        const drill_sidecar *s = &r->sc[i];
        json_obj_begin(j);
        json_key_str(j, "name", s->name);
        json_key_str(j, "role", s->role == DRILL_CLIENT ? "client" : "server");
        json_key_str(j, "spiffe_id", s->spiffe_id);
        json_key_int(j, "admin_port", s->port_admin);
        if (s->role == DRILL_CLIENT) {
            json_key_int(j, "outbound_port", s->port_out);
            json_key_int(j, "ok", (int64_t)s->ok);
            json_key_int(j, "failed", (int64_t)s->failed);
            key_time(j, "first_failure_at", s->first_fail_at);
        }
        if (r->o->kill_replica) {
            /* Replica mode: where its stream was and when it moved (T+, null: did not). */
            json_key_bool(j, "on_killed_replica", s->on_killed);
            key_time(j, "moved_at", s->moved_at);
            json_key(j, "failover_s");
            if (s->on_killed && s->moved_at >= 0)
                json_num(j, s->moved_at - r->killed_at);
            else
                json_null(j);
            json_key_str(j, "server_at_end", s->server);
        }
        svid_json(j, "outage_svid", &s->outage_svid);
        json_key(j, "budget_at_kill_s");
        if (r->killed_at >= 0 && s->outage_svid.present)
            json_num(j, round(s->expires_at - r->killed_at));
        else
            json_null(j);
        key_time(j, "expired_at", s->expires_at);
        json_key_bool(j, "expired_in_outage", s->expired_in_outage);
        svid_json(j, "svid_at_end", &s->svid);
        key_time(j, "renewed_at", s->fresh_at);
        key_time(j, "ready_at", s->ready_at);
        key_time(j, "converged_at", s->converged_at);
        json_key_bool(j, "ready_at_end", s->ready);
        if (!s->ready && s->ready_msg[0])
            json_key_str(j, "not_ready_reason", s->ready_msg);
        char how[128];
        drill_child_describe(&s->proc, how, sizeof how);
        json_key_str(j, "process", s->proc.exited && !s->proc.expected ? how : "ok");
        json_obj_end(j);
    }
    json_arr_end(j);
}

static void timeline_json(const drill_run *r, json_out *j)
{
    json_key(j, "timeline");
    json_arr_begin(j);
    for (size_t i = 0; i < r->n_secs; i++) {
        const drill_second *s = &r->secs[i];
        json_obj_begin(j);
        json_key_int(j, "t", s->t);
        json_key_str(j, "phase", drill_phase_name(s->phase));
        json_key_int(j, "ok", s->ok);
        json_key_int(j, "failed", s->failed);
        json_key_int(j, "skipped", s->skipped);
        json_key_int(j, "min_budget_s", (int64_t)floor(s->min_budget));
        json_key_int(j, "max_budget_s", (int64_t)floor(s->max_budget));
        json_key_int(j, "ready", s->ready);
        json_key_int(j, "expired", s->expired);
        json_key_bool(j, "meshd_up", s->meshd_up);
        key_num(j, "p50_ms", s->p50_ms);
        key_num(j, "p99_ms", s->p99_ms);
        json_obj_end(j);
    }
    json_arr_end(j);
}

void drill_json_build(const drill_run *r, const drill_results *res, json_out *j)
{
    drill_facts f;
    drill_derive(r, &f);
    json_obj_begin(j);
    config_json(r, j);

    json_key(j, "result");
    json_obj_begin(j);
    json_key_bool(j, "outage_observed", f.killed && f.restarted);
    json_key_bool(j, "recovered", f.recovered);
    json_key_bool(j, "all_expectations_met", res->all_met);
    json_key_bool(j, "interrupted", r->interrupted);
    json_key_str(j, "error", r->interrupted ? "" : r->error);
    json_key_int(j, "crashed_processes", r->crashes);
    /* meshctl's own CPU: shows whether the generator could have been the bottleneck. */
    key_num(j, "meshctl_cpu_s", r->meshctl_cpu_s);
    json_obj_end(j);

    json_key(j, "events");
    json_obj_begin(j);
    key_time(j, "meshd_killed_at", r->killed_at);
    key_time(j, "first_expiry_at", f.expiry_in_outage ? r->first_expiry_at : -1);
    key_time(j, "last_expiry_at", f.expiry_in_outage ? r->last_expiry_at : -1);
    key_time(j, "first_failure_at", r->first_fail_at);
    json_key_str(j, "first_failure", r->first_fail_desc);
    key_time(j, "first_failure_after_expiry_at", f.first_fail_after_expiry);
    key_time(j, "meshd_restarted_at", r->restarted_at);
    key_time(j, "meshd_listening_at", r->listening_at);
    key_time(j, "all_svids_renewed_at", r->all_fresh_at);
    key_time(j, "all_ready_at", r->all_ready_at);
    key_time(j, "config_converged_at", r->converged_at);
    key_time(j, "traffic_healthy_from", r->healthy_from);
    key_time(j, "recovered_at", r->recovered_at);
    key_time(j, "ended_at", r->ended_at);
    json_obj_end(j);

    json_key(j, "outage");
    json_obj_begin(j);
    json_key(j, "budget_at_kill_min_s");
    if (f.killed) json_int(j, r->budget_min_s); else json_null(j);
    json_key(j, "budget_at_kill_max_s");
    if (f.killed) json_int(j, r->budget_max_s); else json_null(j);
    json_key_str(j, "budget_min_sidecar", r->budget_min_name);
    /* The same as data: every sidecar that expires first (the string above is prose). */
    json_key(j, "budget_min_sidecars");
    json_arr_begin(j);
    if (r->first_expiry_at >= 0) {
        const char *names[DRILL_MAX_CLIENTS + DRILL_MAX_SERVERS];
        size_t n = drill_first_to_expire_list(r, names, sizeof names / sizeof *names);
        for (size_t i = 0; i < n; i++)
            json_str(j, names[i]);
    }
    json_arr_end(j);
    key_after(j, "duration_s", f.restarted ? r->restarted_at : -1, r->killed_at);
    key_after(j, "first_expiry_after_kill_s", f.expiry_in_outage ? r->first_expiry_at : -1,
              r->killed_at);
    json_key_bool(j, "every_svid_expired", f.all_expired_in_outage);
    json_obj_end(j);

    json_key(j, "recovery");
    json_obj_begin(j);
    key_time(j, "recovery_s", f.recovery_s);
    key_after(j, "listening_after_s", r->listening_at, r->restarted_at);
    key_after(j, "all_svids_renewed_after_s", r->all_fresh_at, r->restarted_at);
    key_after(j, "all_ready_after_s", r->all_ready_at, r->restarted_at);
    key_after(j, "config_converged_after_s", r->converged_at, r->restarted_at);
    key_after(j, "traffic_healthy_after_s", r->healthy_from, r->restarted_at);
    json_obj_end(j);

    json_key(j, "requests");
    json_obj_begin(j);
    json_key_int(j, "ok", (int64_t)r->total_ok);
    json_key_int(j, "failed", (int64_t)r->total_failed);
    json_key_int(j, "skipped", (int64_t)r->total_skipped);
    json_key_int(j, "stale_keepalive_retries", (int64_t)r->stale_retries);
    json_key_int(j, "failed_before_expiry", (int64_t)f.failed_before_expiry);
    json_key_int(j, "ok_in_outage_before_expiry", (int64_t)f.ok_before_expiry_in_outage);
    json_key_int(j, "failed_while_expired", (int64_t)f.failed_while_expired);
    json_key_int(j, "ok_after_every_svid_expired", (int64_t)f.ok_after_all_expired);
    json_key_int(j, "failed_after_recovery", (int64_t)f.failed_after_recovery);
    json_key_bool(j, "failure_times_approximate", r->fail_t_capped);
    json_key(j, "failures");
    json_obj_begin(j);
    const drill_failkinds *k = &r->kinds;
    json_key_int(j, "http_503", (int64_t)k->s503);
    json_key_int(j, "http_502", (int64_t)k->s502);
    json_key_int(j, "http_504", (int64_t)k->s504);
    json_key_int(j, "http_403", (int64_t)k->s403);
    json_key_int(j, "http_404", (int64_t)k->s404);
    json_key_int(j, "http_4xx", (int64_t)k->by_status[4]);
    json_key_int(j, "http_5xx", (int64_t)k->by_status[5]);
    json_key_int(j, "timeout", (int64_t)k->timeout);
    json_key_int(j, "connection_refused", (int64_t)k->refused);
    json_key_int(j, "connection_closed", (int64_t)k->closed);
    json_key_int(j, "other", (int64_t)k->other);
    json_obj_end(j);
    phase_latency_json(r, j);
    json_obj_end(j);

    json_key(j, "verdicts");
    json_arr_begin(j);
    for (int i = 0; i < res->n_v; i++) {
        json_obj_begin(j);
        json_key_str(j, "id", res->v[i].id);
        json_key(j, "pass");
        if (res->v[i].pass < 0) json_null(j); else json_bool(j, res->v[i].pass);
        json_key_str(j, "text", res->v[i].text);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_key(j, "expectations");
    json_arr_begin(j);
    for (int i = 0; i < res->n_e; i++) {
        json_obj_begin(j);
        json_key_str(j, "flag", res->e[i].flag);
        json_key_bool(j, "met", res->e[i].met);
        json_key_str(j, "detail", res->e[i].detail);
        json_obj_end(j);
    }
    json_arr_end(j);
    sidecars_json(r, j);
    timeline_json(r, j);
    json_obj_end(j);
}

int drill_write_json(const drill_run *r, const drill_results *res, const char *path,
                     mesh_err *err)
{
    json_out j;
    json_init(&j);
    drill_json_build(r, res, &j);
    const char *t = json_text(&j);
    if (!t) {
        json_free(&j);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory writing the JSON report");
    }
    FILE *f = drill_open_out(path, err);
    if (!f) {
        json_free(&j);
        return MESH_EIO;
    }
    fputs(t, f);
    fputc('\n', f);
    json_free(&j);
    return drill_close_out(f, path, err);
}

