/* tests/unit/test_drill_report.c — the drill's outputs read back by parsers: the
 * JSON report (strict RFC 8259 parse, then its documented fields and values, for
 * a whole drill, a drill that never killed meshd and an interrupted one; Python's
 * json as a second opinion), the CSV, the SVG (well-formed XML, labelled,
 * nothing drawn outside the canvas; xml.etree as a second opinion) and the
 * terminal summary. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drill/drill_report.h"
#include "drill/drill_verdict.h"
#include "tests/unit/test_drill_util.h"

static char *json_of(const drill_run *r, const drill_results *res)
{
    json_out j;
    json_init(&j);
    drill_json_build(r, res, &j);
    const char *t = json_text(&j);
    cr_assert_not_null(t);
    char *copy = strdup(t);
    json_free(&j);
    return copy;
}

static tj *report_of(const drill_run *r)
{
    drill_results res;
    drill_evaluate(r, &res);
    char *text = json_of(r, &res);
    char err[200];
    tj *doc = tj_parse(text, err, sizeof err);
    cr_assert_not_null(doc, "the report is not strict JSON: %s\n%s", err, text);
    free(text);
    return doc;
}

static double num(const tj *doc, const char *path)
{
    const tj *v = tj_at(doc, path);
    cr_assert_not_null(v, "no %s", path);
    cr_assert_eq(v->type, TJ_NUM, "%s is not a number", path);
    return v->num;
}

static const char *str(const tj *doc, const char *path)
{
    const tj *v = tj_at(doc, path);
    cr_assert_not_null(v, "no %s", path);
    cr_assert_eq(v->type, TJ_STR, "%s is not a string", path);
    return v->str;
}

static int boolean(const tj *doc, const char *path)
{
    const tj *v = tj_at(doc, path);
    cr_assert_not_null(v, "no %s", path);
    cr_assert_eq(v->type, TJ_BOOL, "%s is not a boolean", path);
    return v->b;
}

static void is_null(const tj *doc, const char *path)
{
    const tj *v = tj_at(doc, path);
    cr_assert_not_null(v, "no %s", path);
    cr_assert_eq(v->type, TJ_NULL, "%s is not null", path);
}

/* The object at path has exactly these keys (the documented ones; docs/drill.md). */
static void keys_are(const tj *doc, const char *path, const char *const *keys, size_t n)
{
    const tj *o = path[0] ? tj_at(doc, path) : doc;
    cr_assert_not_null(o, "no %s", path);
    cr_assert_eq(o->type, TJ_OBJ, "%s is not an object", path);
    for (size_t i = 0; i < n; i++)
        cr_assert(tj_has(o, keys[i]), "%s has no %s", path, keys[i]);
    cr_assert_eq(o->n, n, "%s has %zu keys, wanted %zu", path, o->n, n);
}
#define KEYS_ARE(doc, path, ...)                                                               \
    do {                                                                                       \
        const char *const k_[] = {__VA_ARGS__};                                                \
        keys_are((doc), (path), k_, sizeof k_ / sizeof k_[0]);                                 \
    } while (0)

/* ---- the JSON report ------------------------------------------------------------------ */

Test(drill_report, json_of_a_whole_drill)
{
    drill_run *r = tdr_full_drill();
    r->meshctl_cpu_s = 0.4567;
    tj *d = report_of(r);
    KEYS_ARE(d, "", "drill", "result", "events", "outage", "recovery", "requests", "verdicts",
             "expectations", "sidecars", "timeline");

    KEYS_ARE(d, "drill", "report_version", "started_at", "dir", "trust_domain", "client_sidecars",
             "server_sidecars", "svid_ttl_s", "rate_rps", "kill_after_s", "outage_s",
             "outage_rule", "recovery_timeout_s", "request_timeout_ms", "sidecar_reconnect_max",
             "meshd_rotate_fraction", "healthy_seconds_for_recovery", "replicas",
             "kill_replica");
    cr_assert_eq(num(d, "drill.replicas"), 1);
    cr_assert_not(boolean(d, "drill.kill_replica"));
    cr_assert_eq(num(d, "drill.report_version"), 1);
    cr_assert_str_eq(str(d, "drill.started_at"), "2026-01-01T00:00:00Z");
    cr_assert_str_eq(str(d, "drill.dir"), "/tmp/meshd-drill-test");
    cr_assert_str_eq(str(d, "drill.trust_domain"), "drill.example");
    cr_assert_eq(num(d, "drill.client_sidecars"), 3);
    cr_assert_eq(num(d, "drill.server_sidecars"), 2);
    cr_assert_eq(num(d, "drill.svid_ttl_s"), 15);
    cr_assert_eq(num(d, "drill.rate_rps"), 60);
    cr_assert_eq(num(d, "drill.kill_after_s"), 3);
    is_null(d, "drill.outage_s");
    cr_assert_str_eq(str(d, "drill.outage_rule"), "until the last SVID expired + 5s");
    cr_assert_eq(num(d, "drill.recovery_timeout_s"), 60);
    cr_assert_eq(num(d, "drill.request_timeout_ms"), 3000);
    cr_assert_str_eq(str(d, "drill.sidecar_reconnect_max"), "1s");
    cr_assert_str_eq(str(d, "drill.meshd_rotate_fraction"), "default");
    cr_assert_eq(num(d, "drill.healthy_seconds_for_recovery"), 3);

    KEYS_ARE(d, "result", "outage_observed", "recovered", "all_expectations_met", "interrupted",
             "error", "crashed_processes", "meshctl_cpu_s");
    cr_assert(boolean(d, "result.outage_observed"));
    cr_assert(boolean(d, "result.recovered"));
    cr_assert(boolean(d, "result.all_expectations_met"));
    cr_assert_not(boolean(d, "result.interrupted"));
    cr_assert_str_eq(str(d, "result.error"), "");
    cr_assert_eq(num(d, "result.crashed_processes"), 0);
    cr_assert_float_eq(num(d, "result.meshctl_cpu_s"), 0.457, 1e-12, "rounded to ms");

    cr_assert_eq(num(d, "events.meshd_killed_at"), 3);
    cr_assert_eq(num(d, "events.first_expiry_at"), 15);
    cr_assert_eq(num(d, "events.last_expiry_at"), 16);
    cr_assert_eq(num(d, "events.first_failure_at"), 15.5);
    cr_assert_str_eq(str(d, "events.first_failure"), "HTTP 503 via client-1: no mTLS to cluster "
                     "'outbound|drill-server': SVID expired");
    cr_assert_eq(num(d, "events.first_failure_after_expiry_at"), 15.5);
    cr_assert_eq(num(d, "events.meshd_restarted_at"), 21);
    cr_assert_float_eq(num(d, "events.meshd_listening_at"), 21.1, 1e-9);
    cr_assert_float_eq(num(d, "events.all_svids_renewed_at"), 22.3, 1e-9);
    cr_assert_float_eq(num(d, "events.all_ready_at"), 22.5, 1e-9);
    cr_assert_float_eq(num(d, "events.config_converged_at"), 22.5, 1e-9);
    cr_assert_eq(num(d, "events.traffic_healthy_from"), 23);
    cr_assert_eq(num(d, "events.recovered_at"), 23);
    cr_assert_eq(num(d, "events.ended_at"), 26);

    KEYS_ARE(d, "outage", "budget_at_kill_min_s", "budget_at_kill_max_s", "budget_min_sidecar",
             "budget_min_sidecars", "duration_s", "first_expiry_after_kill_s",
             "every_svid_expired");
    cr_assert_eq(num(d, "outage.budget_at_kill_min_s"), 12);
    cr_assert_eq(num(d, "outage.budget_at_kill_max_s"), 13);
    cr_assert_str_eq(str(d, "outage.budget_min_sidecar"), "client-1 and 2 more");
    cr_assert_eq(num(d, "outage.duration_s"), 18);
    cr_assert_eq(num(d, "outage.first_expiry_after_kill_s"), 12);
    cr_assert(boolean(d, "outage.every_svid_expired"));

    cr_assert_eq(num(d, "recovery.recovery_s"), 2);
    cr_assert_float_eq(num(d, "recovery.listening_after_s"), 0.1, 1e-9);
    cr_assert_float_eq(num(d, "recovery.all_svids_renewed_after_s"), 1.3, 1e-9);
    cr_assert_float_eq(num(d, "recovery.all_ready_after_s"), 1.5, 1e-9);
    cr_assert_float_eq(num(d, "recovery.config_converged_after_s"), 1.5, 1e-9);
    cr_assert_eq(num(d, "recovery.traffic_healthy_after_s"), 2);

    cr_assert_eq(num(d, "requests.ok"), 1140);
    cr_assert_eq(num(d, "requests.failed"), 420);
    cr_assert_eq(num(d, "requests.skipped"), 0);
    cr_assert_eq(num(d, "requests.failed_before_expiry"), 0);
    cr_assert_eq(num(d, "requests.ok_in_outage_before_expiry"), 720);
    cr_assert_eq(num(d, "requests.failed_while_expired"), 330);
    cr_assert_eq(num(d, "requests.ok_after_every_svid_expired"), 0);
    cr_assert_eq(num(d, "requests.failed_after_recovery"), 0);
    cr_assert_not(boolean(d, "requests.failure_times_approximate"));
    KEYS_ARE(d, "requests.failures", "http_503", "http_502", "http_504", "http_403", "http_404",
             "http_4xx", "http_5xx", "timeout", "connection_refused", "connection_closed", "other");
    cr_assert_eq(num(d, "requests.failures.http_503"), 420);
    cr_assert_eq(num(d, "requests.failures.http_5xx"), 420);
    cr_assert_eq(num(d, "requests.failures.timeout"), 0);
    KEYS_ARE(d, "requests.by_phase", "steady", "outage", "expired", "recovery", "recovered");
    cr_assert_eq(num(d, "requests.by_phase.steady.ok"), 180);
    cr_assert_float_eq(num(d, "requests.by_phase.steady.p50_ms"), 1.05, 1e-9);
    cr_assert_float_eq(num(d, "requests.by_phase.outage.p99_ms"), 2.05, 1e-9);
    cr_assert_eq(num(d, "requests.by_phase.expired.failed"), 330);
    cr_assert_eq(num(d, "requests.by_phase.expired.first_failure_at"), 15.5);
    cr_assert_not_null(str(d, "requests.by_phase.expired.first_failure"));
    is_null(d, "requests.by_phase.steady.first_failure_at");
    cr_assert_not(tj_has(tj_at(d, "requests.by_phase.steady"), "first_failure"),
                  "no first_failure text when there was none");

    const tj *v = tj_at(d, "verdicts");
    cr_assert_eq(v->type, TJ_ARR);
    cr_assert_eq(v->n, 4);
    cr_assert_str_eq(str(d, "verdicts.0.id"), "zero_failures_before_expiry");
    cr_assert(boolean(d, "verdicts.0.pass"));
    is_null(d, "verdicts.1.pass");   /* first_expiry is information */
    cr_assert_str_eq(str(d, "verdicts.3.id"), "recovered");
    KEYS_ARE(d, "verdicts.2", "id", "pass", "text");

    cr_assert_eq(tj_at(d, "expectations")->n, 3);
    KEYS_ARE(d, "expectations.2", "flag", "met", "detail");
    cr_assert_str_eq(str(d, "expectations.2.flag"), "--expect-recovery-within 20s");
    cr_assert(boolean(d, "expectations.2.met"));

    const tj *sc = tj_at(d, "sidecars");
    cr_assert_eq(sc->n, 5);
    KEYS_ARE(d, "sidecars.0", "name", "role", "spiffe_id", "admin_port", "outbound_port", "ok",
             "failed", "first_failure_at", "outage_svid", "budget_at_kill_s", "expired_at",
             "expired_in_outage", "svid_at_end", "renewed_at", "ready_at", "converged_at",
             "ready_at_end", "process");
    cr_assert_str_eq(str(d, "sidecars.0.name"), "client-1");
    cr_assert_str_eq(str(d, "sidecars.0.role"), "client");
    cr_assert_str_eq(str(d, "sidecars.0.spiffe_id"), "spiffe://drill.example/ns/drill/sa/client-1");
    cr_assert_eq(num(d, "sidecars.0.admin_port"), 22000);
    cr_assert_eq(num(d, "sidecars.0.outbound_port"), 24000);
    cr_assert_str_eq(str(d, "sidecars.0.outage_svid.serial"), "c1");
    cr_assert_str_eq(str(d, "sidecars.0.outage_svid.not_after"), "2026-01-01T00:00:15Z");
    cr_assert_str_eq(str(d, "sidecars.0.outage_svid.not_before"), "2026-01-01T00:00:00Z");
    cr_assert_str_eq(str(d, "sidecars.0.svid_at_end.serial"), "c1b");
    cr_assert_eq(num(d, "sidecars.0.budget_at_kill_s"), 12);
    cr_assert_eq(num(d, "sidecars.0.expired_at"), 15);
    cr_assert(boolean(d, "sidecars.0.expired_in_outage"));
    cr_assert_float_eq(num(d, "sidecars.0.renewed_at"), 22.3, 1e-9);
    cr_assert(boolean(d, "sidecars.0.ready_at_end"));
    cr_assert_str_eq(str(d, "sidecars.0.process"), "ok");
    KEYS_ARE(d, "sidecars.4", "name", "role", "spiffe_id", "admin_port", "outage_svid",
             "budget_at_kill_s", "expired_at", "expired_in_outage", "svid_at_end", "renewed_at",
             "ready_at", "converged_at", "ready_at_end", "process");
    cr_assert_str_eq(str(d, "sidecars.4.role"), "server");
    cr_assert_eq(num(d, "sidecars.4.budget_at_kill_s"), 13);
    double sum_ok = 0;
    for (int i = 0; i < 3; i++) {
        char path[32];
        snprintf(path, sizeof path, "sidecars.%d.ok", i);
        sum_ok += num(d, path);
    }
    cr_assert_eq(sum_ok, 1140, "the clients' requests add up to the total");

    const tj *tl = tj_at(d, "timeline");
    cr_assert_eq(tl->n, 26);
    KEYS_ARE(d, "timeline.0", "t", "phase", "ok", "failed", "skipped", "min_budget_s",
             "max_budget_s", "ready", "expired", "meshd_up", "p50_ms", "p99_ms");
    double ok = 0, failed = 0;
    for (size_t i = 0; i < tl->n; i++) {
        cr_assert_eq(tj_at(&tl->items[i], "t")->num, (double)i);
        ok += tj_at(&tl->items[i], "ok")->num;
        failed += tj_at(&tl->items[i], "failed")->num;
    }
    cr_assert_eq(ok, 1140);
    cr_assert_eq(failed, 420);
    cr_assert_str_eq(str(d, "timeline.0.phase"), "steady");
    cr_assert_str_eq(str(d, "timeline.3.phase"), "outage");
    cr_assert_str_eq(str(d, "timeline.15.phase"), "expired");
    cr_assert_str_eq(str(d, "timeline.21.phase"), "recovery");
    cr_assert_str_eq(str(d, "timeline.23.phase"), "recovered");
    cr_assert_eq(num(d, "timeline.2.min_budget_s"), 12, "at the end of second 2: 12 s left");
    cr_assert_eq(num(d, "timeline.16.min_budget_s"), -2);
    cr_assert_eq(num(d, "timeline.16.expired"), 5);
    cr_assert_not(boolean(d, "timeline.10.meshd_up"));
    cr_assert(boolean(d, "timeline.25.meshd_up"));
    tj_free(d);
    tdr_run_free(r);
}

Test(drill_report, json_of_a_drill_that_never_killed_meshd)
{
    drill_run *r = tdr_run(1, 1);
    tdr_second(r, 0, DRILL_PH_STEADY, 10, 0);
    r->ended_at = 1.0;
    r->o->outage_ms = 30000;
    r->o->rotate_fraction = "0.4";
    r->o->expect_budget_s = 5;
    r->o->expect_budget_arg = "5s";
    tj *d = report_of(r);
    cr_assert_not(boolean(d, "result.outage_observed"));
    cr_assert_not(boolean(d, "result.recovered"));
    cr_assert_not(boolean(d, "result.all_expectations_met"));
    cr_assert_eq(num(d, "drill.outage_s"), 30);
    cr_assert_str_eq(str(d, "drill.outage_rule"), "fixed");
    cr_assert_str_eq(str(d, "drill.sidecar_reconnect_max"), "default");
    cr_assert_str_eq(str(d, "drill.meshd_rotate_fraction"), "0.4");
    const char *events[] = {"meshd_killed_at", "first_expiry_at", "last_expiry_at",
                            "first_failure_at", "first_failure_after_expiry_at",
                            "meshd_restarted_at", "meshd_listening_at", "all_svids_renewed_at",
                            "all_ready_at", "config_converged_at", "traffic_healthy_from",
                            "recovered_at"};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "events.%s", events[i]);
        is_null(d, path);
    }
    cr_assert_str_eq(str(d, "events.first_failure"), "");
    is_null(d, "outage.budget_at_kill_min_s");
    is_null(d, "outage.budget_at_kill_max_s");
    is_null(d, "outage.duration_s");
    is_null(d, "recovery.recovery_s");
    is_null(d, "recovery.listening_after_s");
    is_null(d, "sidecars.0.outage_svid");
    is_null(d, "sidecars.0.svid_at_end");
    is_null(d, "sidecars.0.budget_at_kill_s");
    is_null(d, "verdicts.0.pass");
    cr_assert_not(boolean(d, "expectations.0.met"));
    cr_assert_eq(tj_at(d, "timeline")->n, 1);
    tj_free(d);
    tdr_run_free(r);
}

Test(drill_report, json_of_an_interrupted_drill_with_a_crash)
{
    drill_run *r = tdr_full_drill();
    r->interrupted = 1;
    snprintf(r->error, sizeof r->error, "interrupted by a signal");
    r->crashes = 1;
    r->sc[1].proc.exited = 1;
    r->sc[1].proc.status = 11;   /* killed by SIGSEGV */
    r->sc[2].ready = 0;
    snprintf(r->sc[2].ready_msg, sizeof r->sc[2].ready_msg, "no SVID yet");
    tj *d = report_of(r);
    cr_assert(boolean(d, "result.interrupted"));
    cr_assert_str_eq(str(d, "result.error"), "", "an interruption is not an error");
    cr_assert_eq(num(d, "result.crashed_processes"), 1);
    cr_assert_str_eq(str(d, "sidecars.1.process"), "killed by signal 11 (Segmentation fault)");
    cr_assert_not(boolean(d, "sidecars.2.ready_at_end"));
    cr_assert_str_eq(str(d, "sidecars.2.not_ready_reason"), "no SVID yet");
    cr_assert_not(tj_has(tj_at(d, "sidecars.1"), "not_ready_reason"));
    cr_assert_not(tj_has(tj_at(d, "sidecars.3"), "not_ready_reason"));
    r->sc[3].ready = 0;   /* not ready, but nothing said why: no empty reason */
    tj_free(d);
    d = report_of(r);
    cr_assert_not(boolean(d, "sidecars.3.ready_at_end"));
    cr_assert_not(tj_has(tj_at(d, "sidecars.3"), "not_ready_reason"));
    r->sc[1].proc.expected = 1;   /* we killed it: not a crash */
    tj_free(d);
    d = report_of(r);
    cr_assert_str_eq(str(d, "sidecars.1.process"), "ok");
    r->interrupted = 0;
    tj_free(d);
    d = report_of(r);
    cr_assert_str_eq(str(d, "result.error"), "interrupted by a signal");
    tj_free(d);
    tdr_run_free(r);
}

Test(drill_report, json_strings_survive_any_failure_text)
{
    drill_run *r = tdr_full_drill();
    const char *nasty = "HTTP 503 via \"client-1\": C:\\path\ttab\x01\x1f </script> caf\xc3\xa9";
    snprintf(r->first_fail_desc, sizeof r->first_fail_desc, "%s", nasty);
    snprintf(r->sc[0].name, sizeof r->sc[0].name, "client\"1\\");
    tj *d = report_of(r);
    cr_assert_str_eq(str(d, "events.first_failure"), nasty);
    cr_assert_str_eq(str(d, "sidecars.0.name"), "client\"1\\");
    tj_free(d);
    tdr_run_free(r);
}

Test(drill_report, json_times_are_rounded_to_milliseconds)
{
    drill_run *r = tdr_full_drill();
    r->killed_at = 3.0004;
    r->restarted_at = 21.0006;
    tj *d = report_of(r);
    cr_assert_eq(num(d, "events.meshd_killed_at"), 3.0);
    cr_assert_float_eq(num(d, "events.meshd_restarted_at"), 21.001, 1e-12);
    tj_free(d);
    tdr_run_free(r);
}

Test(drill_report, json_accepted_by_python)
{
    drill_run *r = tdr_full_drill();
    snprintf(r->first_fail_desc, sizeof r->first_fail_desc, "quote \" backslash \\ ctl \x02");
    drill_results res;
    drill_evaluate(r, &res);
    char *text = json_of(r, &res);
    int ok = tdr_python_accepts_json(text);
    if (ok < 0) {
        free(text);
        tdr_run_free(r);
        cr_skip_test("python3 is not available");
    }
    cr_assert_eq(ok, 1, "python3's json refuses the report");
    cr_assert_eq(tdr_python_accepts_json("{\"a\":1,\"a\":2}"), 0, "the check can fail");
    free(text);
    tdr_run_free(r);
}

Test(drill_report, strict_json_parser_refuses_what_it_must)
{
    const char *bad[] = {"", "{", "{\"a\":1,}", "[1,]", "{\"a\":1,\"a\":2}", "{a:1}", "01",
                         "1.", ".5", "-", "1e", "NaN", "Infinity", "\"\\x\"", "\"a\nb\"",
                         "\"\\ud800\"", "\"\\udc00x\"", "\"\xc3\"", "[1] [2]", "tru", "{\"a\" 1}",
                         "\"\\u0000\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[128];
        tj *v = tj_parse(bad[i], err, sizeof err);
        cr_assert_null(v, "accepted #%zu: %s", i, bad[i]);
    }
    char err[128];
    tj *v = tj_parse(" {\"a\":[1,-2.5e3,true,false,null,\"\\u00e9\\ud83d\\ude00\"]} ", err, sizeof err);
    cr_assert_not_null(v, "%s", err);
    cr_assert_eq(tj_at(v, "a.1")->num, -2500);
    cr_assert_str_eq(tj_at(v, "a.5")->str, "\xc3\xa9\xf0\x9f\x98\x80");
    tj_free(v);
}

Test(drill_report, write_json_to_files)
{
    drill_run *r = tdr_full_drill();
    drill_results res;
    drill_evaluate(r, &res);
    char path[] = "/tmp/meshd-drill-json-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    mesh_err err = {0};
    cr_assert_eq(drill_write_json(r, &res, path, &err), MESH_OK, "%s", err.msg);
    FILE *f = fopen(path, "r");
    char *text = calloc(1, 1 << 20);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    unlink(path);
    cr_assert(n > 0 && text[n - 1] == '\n', "one document and a newline");
    char perr[128];
    tj *d = tj_parse(text, perr, sizeof perr);
    cr_assert_not_null(d, "%s", perr);
    tj_free(d);
    free(text);
    cr_assert_eq(drill_write_json(r, &res, "/nonexistent-dir/r.json", &err), MESH_EIO);
    cr_assert_not_null(strstr(err.msg, "cannot write /nonexistent-dir/r.json"), "%s", err.msg);
    tdr_run_free(r);
}

/* ---- the CSV -------------------------------------------------------------------------------- */

Test(drill_report, csv)
{
    drill_run *r = tdr_full_drill();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    drill_print_csv(r, f);
    fclose(f);
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    cr_assert_str_eq(line, "t,phase,ok,failed,min_budget_s,meshd_up,skipped,max_budget_s,ready,"
                     "expired,p50_ms,p99_ms");
    int rows = 0;
    char *row16 = NULL, *row2 = NULL;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        int commas = 0;
        for (const char *p = line; *p; p++)
            commas += *p == ',';
        cr_assert_eq(commas, 11, "row %d: %s", rows, line);
        if (rows == 16)
            row16 = line;
        if (rows == 2)
            row2 = line;
        rows++;
    }
    cr_assert_eq(rows, 26, "one row per second");
    cr_assert_str_eq(row2, "2,steady,60,0,12,1,0,13,5,0,1.050,1.050");
    cr_assert_str_eq(row16, "16,expired,0,60,-2,0,0,-1,5,5,0.000,0.000");
    free(text);

    mesh_err err = {0};
    cr_assert_eq(drill_write_csv(r, "/nonexistent-dir/r.csv", &err), MESH_EIO);
    cr_assert_not_null(strstr(err.msg, "/nonexistent-dir/r.csv"));
    tdr_run_free(r);
}

/* ---- the SVG -------------------------------------------------------------------------------- */

static char *svg_of(const drill_run *r, const drill_results *res)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    drill_svg_render(r, res, f);
    fclose(f);
    return text;
}

typedef struct svg_scan {
    char texts[8192];
    int n_text, n_rect, n_path, n_polyline, n_line, n_script, n_foreign;
    int outside;                      /* coordinates outside the 960 x 450 canvas */
    char first_outside[128];
} svg_scan;

static void check_coord(svg_scan *s, const char *what, double v, double max)
{
    if (!(v >= -0.05 && v <= max + 0.05)) {
        if (!s->outside++)
            snprintf(s->first_outside, sizeof s->first_outside, "%s=%g", what, v);
    }
}

static void scan_el(const tx_el *e, void *arg)
{
    svg_scan *s = arg;
    s->n_text += strcmp(e->name, "text") == 0;
    s->n_rect += strcmp(e->name, "rect") == 0;
    s->n_path += strcmp(e->name, "path") == 0;
    s->n_polyline += strcmp(e->name, "polyline") == 0;
    s->n_line += strcmp(e->name, "line") == 0;
    s->n_script += strcmp(e->name, "script") == 0;
    s->n_foreign += strcmp(e->name, "foreignObject") == 0 || strcmp(e->name, "image") == 0;
    if (strcmp(e->name, "text") == 0) {
        size_t o = strlen(s->texts);
        snprintf(s->texts + o, sizeof s->texts - o, "%s\n", e->text);
    }
    static const char *xs[] = {"x", "x1", "x2"}, *ys[] = {"y", "y1", "y2"};
    for (int i = 0; i < 3; i++) {
        const char *v = tx_attr_get(e, xs[i]);
        if (v && !strchr(v, '%'))
            check_coord(s, xs[i], atof(v), 960);
        v = tx_attr_get(e, ys[i]);
        if (v && !strchr(v, '%'))
            check_coord(s, ys[i], atof(v), 450);
    }
    const char *pts = tx_attr_get(e, "points");
    if (pts) {
        for (const char *p = pts; *p;) {
            char *end;
            double x = strtod(p, &end);
            if (end == p)
                break;
            double y = strtod(end + 1, &end);
            check_coord(s, "points x", x, 960);
            check_coord(s, "points y", y, 450);
            p = end;
            while (*p == ' ')
                p++;
        }
    }
    const char *d = tx_attr_get(e, "d");
    if (d) {
        int k = 0;
        for (const char *p = d; *p;) {
            if (*p == 'M' || *p == 'L' || *p == 'Z' || *p == ' ') {
                p++;
                continue;
            }
            char *end;
            double v = strtod(p, &end);
            if (end == p)
                break;
            check_coord(s, k % 2 ? "path y" : "path x", v, k % 2 ? 450 : 960);
            k++;
            p = end;
        }
    }
}

static tx_el *parse_svg(const char *text, svg_scan *s)
{
    char err[160];
    tx_el *root = tx_parse(text, err, sizeof err);
    cr_assert_not_null(root, "the SVG is not well-formed XML: %s", err);
    memset(s, 0, sizeof *s);
    tx_walk(root, scan_el, s);
    return root;
}

Test(drill_report, svg_of_a_whole_drill)
{
    drill_run *r = tdr_full_drill();
    drill_results res;
    drill_evaluate(r, &res);
    char *text = svg_of(r, &res);
    cr_assert_eq(strncmp(text, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", 39), 0);
    svg_scan s;
    tx_el *root = parse_svg(text, &s);
    cr_assert_str_eq(root->name, "svg");
    cr_assert_str_eq(tx_attr_get(root, "xmlns"), "http://www.w3.org/2000/svg");
    cr_assert_str_eq(tx_attr_get(root, "viewBox"), "0 0 960 450");
    cr_assert_eq(s.n_script + s.n_foreign, 0, "no scripts, nothing external");
    cr_assert_null(strstr(text, "href"), "nothing to fetch");
    cr_assert_eq(s.outside, 0, "%d coordinates outside the canvas, first %s", s.outside,
                 s.first_outside);
    cr_assert_eq(s.n_path, 4, "two bands, each a fill and its top edge");
    cr_assert_eq(s.n_polyline, 1, "the budget line");

    const char *labels[] = {
        "meshd outage drill: 3 client + 2 server sidecars, SVID TTL 15s, 60 req/s\n",
        "zero failed requests until expiry | first expiry T+15.0s (12.0s into the outage) | "
        "failed closed | recovered in 2.0s\n",
        "meshd killed T+3.0s\n", "first expiry T+15.0s\n", "meshd restarted T+21.0s\n",
        "recovered T+23.0s\n", "ok requests/s\n", "failed requests/s (on top)\n",
        "smallest budget (s)\n", "requests per second\n",
        "outage budget: seconds to the first SVID expiry\n",
        "seconds since traffic started (T+)\n"};
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        cr_assert_not_null(strstr(s.texts, labels[i]), "no text \"%s\" in:\n%s", labels[i], s.texts);

    /* Each phase after steady is shaded, in its colour. */
    const char *fills[] = {"#fff1c9", "#fbd5d8", "#d6eaf8", "#d8f0dc"};
    for (size_t i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof want, "height=\"320\" fill=\"%s\"", fills[i]);
        cr_assert_not_null(strstr(text, want), "phase %zu is not shaded", i + 1);
    }
    cr_assert_eq(tdr_python_accepts_xml(text) != 0, 1, "xml.etree refuses the SVG");
    tx_free(root);
    free(text);
    tdr_run_free(r);
}

Test(drill_report, svg_escapes_its_text)
{
    drill_run *r = tdr_full_drill();
    drill_results res;
    drill_evaluate(r, &res);
    snprintf(res.headline, sizeof res.headline, "a < b & \"c\" > d");
    char *text = svg_of(r, &res);
    svg_scan s;
    tx_el *root = parse_svg(text, &s);
    cr_assert_not_null(strstr(s.texts, "a < b & \"c\" > d\n"), "%s", s.texts);
    tx_free(root);
    free(text);
    tdr_run_free(r);
}

Test(drill_report, svg_marks_only_what_happened)
{
    drill_run *r = tdr_run(2, 1);
    for (int t = 0; t < 5; t++)
        tdr_second(r, t, t < 2 ? DRILL_PH_STEADY : DRILL_PH_OUTAGE, 50, 0);
    r->killed_at = 2;
    r->first_expiry_at = 30;   /* after the end of the drill: no marker */
    r->ended_at = 5;
    drill_results res;
    drill_evaluate(r, &res);
    char *text = svg_of(r, &res);
    svg_scan s;
    tx_el *root = parse_svg(text, &s);
    cr_assert_not_null(strstr(s.texts, "meshd killed T+2.0s"));
    cr_assert_null(strstr(s.texts, "first expiry T+"));
    cr_assert_null(strstr(s.texts, "meshd restarted"));
    cr_assert_null(strstr(s.texts, "recovered T+"));
    cr_assert_eq(s.outside, 0, "first outside: %s", s.first_outside);
    tx_free(root);
    free(text);
    tdr_run_free(r);
}

Test(drill_report, svg_has_no_expiry_marker_when_meshd_came_back_first)
{
    drill_run *r = tdr_run(2, 1);
    for (int t = 0; t < 8; t++)
        tdr_second(r, t, t < 2 ? DRILL_PH_STEADY : t < 4 ? DRILL_PH_OUTAGE : DRILL_PH_RECOVERY,
                   50, 0);
    r->killed_at = 2;
    r->restarted_at = 4;
    r->first_expiry_at = 6;   /* would have expired at T+6, but meshd was back at T+4 */
    r->recovered_at = 5;
    r->ended_at = 8;
    drill_results res;
    drill_evaluate(r, &res);
    char *text = svg_of(r, &res);
    svg_scan s;
    tx_el *root = parse_svg(text, &s);
    cr_assert_not_null(strstr(s.texts, "meshd restarted T+4.0s"));
    cr_assert_not_null(strstr(s.texts, "recovered T+5.0s"));
    cr_assert_null(strstr(s.texts, "first expiry T+"), "%s", s.texts);
    tx_free(root);
    free(text);
    tdr_run_free(r);
}

Test(drill_report, svg_of_an_empty_timeline)
{
    drill_run *r = tdr_run(1, 1);
    drill_results res;
    drill_evaluate(r, &res);
    char *text = svg_of(r, &res);
    svg_scan s;
    tx_el *root = parse_svg(text, &s);
    cr_assert_eq(s.outside, 0, "first outside: %s", s.first_outside);
    cr_assert_eq(s.n_path, 0, "no bands without seconds");
    tx_free(root);
    free(text);
    tdr_run_free(r);
}

Test(drill_report, svg_keeps_spikes_and_negative_budgets_on_the_canvas)
{
    drill_run *r = tdr_run(2, 1);
    r->o->rate = 10;
    r->o->ttl_s = 10;
    tdr_svid(r, &r->sc[0], "a", 2);
    for (int t = 0; t < 8; t++)
        tdr_second(r, t, DRILL_PH_OUTAGE, t == 3 ? 500 : 10, t == 4 ? 700 : 0);
    r->secs[1].min_budget = 300;   /* a budget larger than the TTL */
    drill_results res;
    drill_evaluate(r, &res);
    char *text = svg_of(r, &res);
    svg_scan s;
    tx_el *root = parse_svg(text, &s);
    cr_assert_eq(s.outside, 0, "first outside: %s", s.first_outside);
    tx_free(root);
    free(text);
    tdr_run_free(r);
}

Test(drill_report, strict_xml_checker_refuses_what_it_must)
{
    const char *bad[] = {"", "<a>", "<a></b>", "<a><b></a></b>", "<a x=1/>", "<a x=\"1\" x=\"2\"/>",
                         "<a>&nbsp;</a>", "<a>a & b</a>", "<a>a < b</a>", "<a/><b/>", "<a x=\"<\"/>",
                         "<a>]]></a>", "text<a/>", "<a>&#0;</a>", "<a x=\"1\"y=\"2\"/>"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[128];
        tx_el *e = tx_parse(bad[i], err, sizeof err);
        cr_assert_null(e, "accepted #%zu: %s", i, bad[i]);
    }
    char err[128];
    tx_el *e = tx_parse("<?xml version=\"1.0\"?>\n<a k='v &amp; w'><!-- c --><b>x &lt; y &#233;</b></a>\n",
                        err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    cr_assert_str_eq(tx_attr_get(e, "k"), "v & w");
    cr_assert_str_eq(e->kids[0]->text, "x < y \xc3\xa9");
    tx_free(e);
}

Test(drill_report, write_svg_to_files)
{
    drill_run *r = tdr_full_drill();
    drill_results res;
    drill_evaluate(r, &res);
    mesh_err err = {0};
    cr_assert_eq(drill_write_svg(r, &res, "/nonexistent-dir/c.svg", &err), MESH_EIO);
    cr_assert_not_null(strstr(err.msg, "cannot write /nonexistent-dir/c.svg"), "%s", err.msg);
    char path[] = "/tmp/meshd-drill-svg-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cr_assert_eq(drill_write_svg(r, &res, path, &err), MESH_OK, "%s", err.msg);
    FILE *f = fopen(path, "r");
    char *text = calloc(1, 1 << 20);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    unlink(path);
    cr_assert(n > 0);
    cr_assert_eq(strcmp(text + n - 7, "</svg>\n"), 0, "ends with </svg>");
    free(text);
    tdr_run_free(r);
}

/* ---- the summary ----------------------------------------------------------------------------- */

Test(drill_report, summary)
{
    drill_run *r = tdr_full_drill();
    r->o->expect_budget_s = 13;
    r->o->expect_budget_arg = "13s";
    drill_results res;
    drill_evaluate(r, &res);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    drill_print_summary(r, &res, f);
    fclose(f);
    cr_assert_str_eq(text,
        "\n"
        "Drill: 3 client + 2 server sidecars, SVID TTL 15s, 60 req/s\n"
        "  PASS  traffic survived the outage with zero failed requests until expiry (720 requests "
        "answered in the 12.0s between the kill and the first expiry)\n"
        "  INFO  first expiry at T+15.0s, 12.0s into the outage (outage budget at the kill: 12s on "
        "client-1 and 2 more, up to 13s)\n"
        "  PASS  expired SVIDs failed closed: mTLS failing from T+15.5s (0.5s after the first "
        "expiry); 330 requests refused, none succeeded once every SVID had expired\n"
        "  PASS  recovered in 2.0s (meshd accepting after 0.1s, every SVID renewed after 1.3s, "
        "config converged after 1.5s, clean traffic from 2.0s)\n"
        "  requests: 1140 ok, 420 failed, 0 skipped; latency p50/p99 steady 1.05/1.05 ms, during "
        "the outage 2.05/2.05 ms\n"
        "Expectations:\n"
        "  met      --expect-zero-failures-before-expiry: 0 failed before the first expiry at T+15.0s\n"
        "  met      --expect-fail-closed: 0 succeeded and 330 failed after every SVID had expired\n"
        "  met      --expect-recovery-within 20s: recovered in 2.0s\n"
        "  NOT MET  --expect-budget-at-least 13s: smallest budget at the kill: 12s (client-1 and 2 "
        "more)\n");
    free(text);
    tdr_run_free(r);
}

Test(drill_report, summary_without_traffic_or_expectations)
{
    drill_run *r = tdr_run(1, 1);
    drill_results res;
    drill_evaluate(r, &res);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    drill_print_summary(r, &res, f);
    fclose(f);
    cr_assert_null(strstr(text, "latency"), "no latency without answers");
    cr_assert_null(strstr(text, "Expectations:"));
    cr_assert_not_null(strstr(text, "  INFO  the drill ended before meshd was killed"));
    cr_assert_not_null(strstr(text, "  requests: 0 ok, 0 failed, 0 skipped\n"));
    free(text);
    tdr_run_free(r);
}
