/* tests/unit/test_drill_failover.c — the drill's replica mode, pure half: the replica
 * to kill is the one most sidecars are on, only the sidecars on it are waited for, a
 * move counts once a sidecar is on another replica (not while disconnected), the
 * admin /config_dump parse, and the verdicts and --expect-failover-within with their
 * edges (nobody affected, somebody stuck, a slow move, a failed request); plus the
 * options' rules. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "drill/drill_failover.h"
#include "drill/drill_opts.h"
#include "test_drill_util.h"

static drill_run *replica_run(int replicas)
{
    drill_run *r = tdr_run(3, 1);
    r->o->replicas = replicas;
    r->o->kill_replica = 1;
    r->o->outage_ms = 10000;
    for (int k = 0; k < replicas; k++)
        snprintf(r->replica_addr[k], sizeof r->replica_addr[k], "127.0.0.1:%d", 30000 + k);
    return r;
}

Test(drill_failover, picks_the_replica_most_sidecars_are_on)
{
    drill_run *r = replica_run(3);
    cr_assert_eq(drill_failover_pick(r), -1, "nobody connected: nothing to pick");
    drill_failover_note(r, &r->sc[0], "127.0.0.1:30001", 1);
    drill_failover_note(r, &r->sc[1], "127.0.0.1:30002", 1);
    drill_failover_note(r, &r->sc[2], "127.0.0.1:30001", 1);
    drill_failover_note(r, &r->sc[3], "", 1);
    cr_assert_eq(drill_failover_pick(r), 1);
    drill_failover_note(r, &r->sc[2], "", 1);
    cr_assert_eq(drill_failover_pick(r), 1, "a tie goes to the lower index");
    drill_failover_note(r, &r->sc[0], "127.0.0.1:30002", 1);
    cr_assert_eq(drill_failover_pick(r), 2);
    tdr_run_free(r);
}

Test(drill_failover, a_move_is_to_another_replica_not_a_disconnect)
{
    drill_run *r = replica_run(3);
    drill_failover_note(r, &r->sc[0], "127.0.0.1:30000", 1);
    drill_failover_note(r, &r->sc[1], "127.0.0.1:30000", 1);
    drill_failover_note(r, &r->sc[2], "127.0.0.1:30001", 1);
    cr_assert_eq(drill_failover_mark(r, 0, 10.0), 2);
    cr_assert_eq(r->killed_at, 10.0);
    cr_assert_not(drill_failover_all_moved(r));
    drill_failover_note(r, &r->sc[0], "", 10.1);
    cr_assert_lt(r->sc[0].moved_at, 0, "disconnected is not moved");
    drill_failover_note(r, &r->sc[0], "127.0.0.1:30000", 10.2);
    cr_assert_lt(r->sc[0].moved_at, 0, "still (or again) on the killed one");
    drill_failover_note(r, &r->sc[0], "127.0.0.1:30002", 10.3);
    cr_assert_float_eq(r->sc[0].moved_at, 10.3, 1e-9);
    cr_assert_str_eq(r->sc[0].moved_to, "127.0.0.1:30002");
    drill_failover_note(r, &r->sc[0], "127.0.0.1:30001", 10.9);
    cr_assert_float_eq(r->sc[0].moved_at, 10.3, 1e-9, "the first move counts");
    drill_failover_note(r, &r->sc[2], "127.0.0.1:30002", 10.4);
    cr_assert_lt(r->sc[2].moved_at, 0, "a sidecar not on the killed replica is not timed");
    cr_assert_not(drill_failover_all_moved(r));
    drill_failover_note(r, &r->sc[1], "127.0.0.1:30001", 11.5);
    cr_assert(drill_failover_all_moved(r));

    drill_failover_facts f;
    drill_failover_derive(r, &f);
    cr_assert_eq(f.affected, 2);
    cr_assert_eq(f.moved, 2);
    cr_assert_float_eq(f.max_s, 1.5, 1e-9);
    cr_assert_str_eq(f.slowest, r->sc[1].name);
    cr_assert_float_eq(f.median_s, 0.9, 1e-9);
    tdr_run_free(r);
}

Test(drill_failover, parses_the_server_from_config_dump)
{
    char out[64];
    drill_failover_parse_server("{\"xds\":{\"connected\":true,\"server\":\"127.0.0.1:5\","
                                "\"lds\":{}}}", out, sizeof out);
    cr_assert_str_eq(out, "127.0.0.1:5");
    drill_failover_parse_server("{\"xds\":{\"connected\":false,\"server\":\"127.0.0.1:5\"}}",
                                out, sizeof out);
    cr_assert_str_eq(out, "", "not connected: no server");
    drill_failover_parse_server("{\"xds\":{\"connected\":true,\"server\":\"127.0.0.1:5", out,
                                sizeof out);
    cr_assert_str_eq(out, "", "cut off");
    drill_failover_parse_server("not json", out, sizeof out);
    cr_assert_str_eq(out, "");
    drill_failover_parse_server(NULL, out, sizeof out);
    cr_assert_str_eq(out, "");
    char tiny[4];
    drill_failover_parse_server("{\"xds\":{\"connected\":true,\"server\":\"127.0.0.1:5\"}}",
                                tiny, sizeof tiny);
    cr_assert_str_eq(tiny, "", "too long for the buffer: nothing rather than a prefix");
}

static const drill_verdict *find_v(const drill_results *res, const char *id)
{
    for (int i = 0; i < res->n_v; i++)
        if (strcmp(res->v[i].id, id) == 0)
            return &res->v[i];
    return NULL;
}

Test(drill_failover, verdicts_and_expectation)
{
    drill_run *r = replica_run(3);
    r->o->expect_failover_ms = 2000;
    r->o->expect_failover_arg = "2s";
    drill_failover_note(r, &r->sc[0], "127.0.0.1:30000", 1);
    drill_failover_note(r, &r->sc[1], "127.0.0.1:30001", 1);
    drill_failover_mark(r, 0, 5.0);
    drill_failover_note(r, &r->sc[0], "127.0.0.1:30001", 5.4);
    r->total_ok = 500;
    drill_results res;
    drill_evaluate(r, &res);   /* replica mode goes through drill_failover_evaluate */
    const drill_verdict *v = find_v(&res, "sidecars_moved");
    cr_assert_not_null(v);
    cr_assert_eq(v->pass, 1, "%s", v->text);
    cr_assert_not_null(strstr(v->text, "0.40s"), "%s", v->text);
    cr_assert_eq(find_v(&res, "zero_failures")->pass, 1);
    cr_assert_eq(res.n_e, 1);
    cr_assert(res.e[0].met, "%s", res.e[0].detail);
    cr_assert(res.all_met);
    cr_assert_not_null(strstr(res.headline, "1 of 1 sidecars moved"), "%s", res.headline);

    /* A request failed: the verdict fails, the fail-over expectation still holds. */
    r->total_failed = 1;
    r->phase_failed[DRILL_PH_OUTAGE] = 1;
    drill_evaluate(r, &res);
    cr_assert_eq(find_v(&res, "zero_failures")->pass, 0);
    cr_assert(res.all_met);
    r->o->expect_zero_before_expiry = 1;
    drill_evaluate(r, &res);
    cr_assert_not(res.all_met, "--expect-zero-failures-before-expiry counts the whole run");
    r->o->expect_zero_before_expiry = 0;
    r->total_failed = 0;

    /* Slower than expected. */
    r->o->expect_failover_ms = 300;
    drill_evaluate(r, &res);
    cr_assert_not(res.e[0].met, "%s", res.e[0].detail);
    cr_assert_not(res.all_met);

    /* Somebody never moved. */
    r->o->expect_failover_ms = 2000;
    r->sc[0].moved_at = -1;
    drill_evaluate(r, &res);
    cr_assert_eq(find_v(&res, "sidecars_moved")->pass, 0);
    cr_assert_not(res.e[0].met);
    cr_assert_not_null(strstr(res.e[0].detail, "did not move"), "%s", res.e[0].detail);
    tdr_run_free(r);
}

Test(drill_failover, nothing_killed_or_nobody_on_it_is_not_a_pass)
{
    drill_run *r = replica_run(2);
    r->o->expect_failover_ms = 2000;
    r->o->expect_failover_arg = "2s";
    drill_results res;
    drill_evaluate(r, &res);
    cr_assert_eq(find_v(&res, "replica_killed")->pass, 0);
    cr_assert_not(res.all_met);
    drill_failover_mark(r, 1, 3.0);     /* nobody was on replica 2 */
    drill_evaluate(r, &res);
    cr_assert_eq(find_v(&res, "sidecars_moved")->pass, 0);
    cr_assert_not(res.e[0].met);
    tdr_run_free(r);
}

/* ---- options ---------------------------------------------------------------------- */

static int parse(drill_opts *o, mesh_err *err, int argc, char **argv)
{
    return drill_parse_opts(argc, argv, 0, NULL, o, err);
}

Test(drill_failover, options)
{
    drill_opts o;
    mesh_err err = {0};
    char *ok[] = {"drill", "--replicas", "3", "--kill-replica", "--expect-failover-within",
                  "2s", NULL};
    cr_assert_eq(parse(&o, &err, 6, ok), 0, "%s", err.msg);
    cr_assert_eq(o.replicas, 3);
    cr_assert(o.kill_replica);
    cr_assert_eq(o.expect_failover_ms, 2000);
    cr_assert_eq(o.outage_ms, DRILL_FAILOVER_OUTAGE_MS, "traffic after the kill defaults to 10 s");

    static const struct { const char *a[6]; const char *want; } bad[] = {
        {{"--kill-replica"}, "--replicas 2"},
        {{"--replicas", "1", "--kill-replica"}, "--replicas 2"},
        {{"--replicas", "3"}, "needs --kill-replica"},
        {{"--replicas", "6", "--kill-replica"}, "--replicas"},
        {{"--replicas", "0", "--kill-replica"}, "--replicas"},
        {{"--expect-failover-within", "2s"}, "goes with --kill-replica"},
        {{"--replicas", "2", "--kill-replica", "--expect-fail-closed"}, "do not apply"},
        {{"--replicas", "2", "--kill-replica", "--expect-recovery-within", "5s"}, "do not apply"},
        {{"--replicas", "2", "--kill-replica", "--expect-failover-within", "fast"},
         "--expect-failover-within"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[8] = {"drill"};
        int argc = 1;
        for (int k = 0; k < 6 && bad[i].a[k]; k++)
            argv[argc++] = (char *)bad[i].a[k];
        argv[argc] = NULL;
        mesh_err e = {0};
        cr_assert_eq(parse(&o, &e, argc, argv), MESH_EINVAL, "case %zu accepted", i);
        cr_assert_not_null(strstr(e.msg, bad[i].want), "case %zu: wanted '%s' in '%s'", i,
                           bad[i].want, e.msg);
    }
    char *target[] = {"drill", "--replicas", "2", "--kill-replica", "--target", "127.0.0.1:1",
                      "--kill-cmd", "x", "--start-cmd", "y", NULL};
    mesh_err e = {0};
    cr_assert_eq(drill_parse_opts(10, target, 0, "/tmp/x.db", &o, &e), MESH_EINVAL);
    cr_assert_not_null(strstr(e.msg, "--target"), "%s", e.msg);
}
