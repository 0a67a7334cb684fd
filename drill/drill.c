/* drill/drill.c — `meshctl drill`: the expiry-window outage drill, start to end.
 *
 *   1. options; the throwaway mesh (work dir, CA, workloads, config) in-process
 *   2. test apps, meshd, sidecars as children; wait until every sidecar is ready
 *      and traffic reaches the servers through every client sidecar
 *   3. the measured run (drill_run.c): steady traffic, SIGKILL meshd,
 *      watch budgets run out, restart meshd, measure recovery
 *   4. stop every child, verdicts and expectations, JSON / CSV / SVG, exit status
 *
 * Children are always stopped, on every path, before meshctl returns. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"
#include "drill/drill.h"
#include "drill/drill_opts.h"
#include "drill/drill_report.h"
#include "drill/drill_verdict.h"
#include "meshctl/meshctl.h"

#define APP_WAIT_S 10
#define MESHD_WAIT_S 15
#define WARMUP_S 20

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !drill_interrupted())
        ;
}

/* Enough descriptors for hundreds of sidecars' keep-alive connections and probes. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* A child that exited during setup: an error naming it and the end of its log. */
static int setup_child_died(drill_run *r, drill_child *ch, mesh_err *err)
{
    if (!drill_child_poll(ch, -1))
        return 0;
    char how[128], tail[400];
    drill_child_describe(ch, how, sizeof how);
    drill_log_tail(r->dir, ch->name, 3, tail, sizeof tail);
    mesh_err_set(err, MESH_EIO, "%s %s while starting (%s/%s.log: %s)", ch->name, how, r->dir,
                 ch->name, tail);
    return 1;
}

static int wait_port(drill_run *r, drill_child *ch, int port, int seconds, mesh_err *err)
{
    for (int i = 0; i < seconds * 20; i++) {
        if (drill_port_open(port))
            return MESH_OK;
        if (setup_child_died(r, ch, err))
            return MESH_EIO;
        if (drill_interrupted())
            return mesh_err_set(err, MESH_EINTERNAL, "interrupted by a signal");
        sleep_ms(50);
    }
    return mesh_err_set(err, MESH_EIO, "%s does not listen on 127.0.0.1:%d after %ds (see %s/%s.log)",
                        ch->name, port, seconds, r->dir, ch->name);
}

static int start_children(drill_run *r, mesh_err *err)
{
    int rc;
    for (int i = r->o->n_clients; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        char name[64], **argv = drill_testapp_argv(r, s);
        snprintf(name, sizeof name, "app-%.56s", s->name);
        rc = drill_spawn(&s->app, r->dir, name, argv, err);
        drill_argv_free(argv);
        if (rc != MESH_OK)
            return rc;
    }
    for (int i = r->o->n_clients; i < r->n_sc; i++)
        if ((rc = wait_port(r, &r->sc[i].app, r->sc[i].port_app, APP_WAIT_S, err)) != MESH_OK)
            return rc;
    if (r->o->target) {
        if (!drill_addr_open(r->meshd_addr))
            return mesh_err_set(err, MESH_EIO, "nothing accepts connections at --target %s",
                                r->meshd_addr);
        drill_say(r, "  setup: using the running meshd at %s", r->meshd_addr);
    } else {
        char **argv = drill_meshd_argv(r);
        r->meshd_starts = 1;
        rc = drill_spawn(&r->meshd, r->dir, "meshd-1", argv, err);
        drill_argv_free(argv);
        if (rc != MESH_OK ||
            (rc = wait_port(r, &r->meshd, r->meshd_port, MESHD_WAIT_S, err)) != MESH_OK)
            return rc;
        drill_say(r, "  setup: meshd on %s (pid %d), SVID TTL %llds", r->meshd_addr,
                  (int)r->meshd.pid, (long long)r->o->ttl_s);
        /* Replica mode: the others on the same store, each on its own port. */
        for (int k = 1; k < r->o->replicas; k++) {
            char name[32];
            snprintf(name, sizeof name, "meshd-r%d", k + 1);
            argv = drill_replica_argv(r, k);
            rc = drill_spawn(&r->replica[k - 1], r->dir, name, argv, err);
            drill_argv_free(argv);
            if (rc != MESH_OK || (rc = wait_port(r, &r->replica[k - 1], r->replica_port[k],
                                                 MESHD_WAIT_S, err)) != MESH_OK)
                return rc;
            drill_say(r, "  setup: meshd replica %d on %s (pid %d, log %s.log)", k + 1,
                      r->replica_addr[k], (int)r->replica[k - 1].pid, name);
        }
    }
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        char name[64], **sargv = drill_sidecar_argv(r, s);
        snprintf(name, sizeof name, "sc-%.56s", s->name);
        rc = drill_spawn(&s->proc, r->dir, name, sargv, err);
        drill_argv_free(sargv);
        if (rc != MESH_OK)
            return rc;
    }
    return MESH_OK;
}

/* Target mode: the lifetime meshd gives SVIDs, read off the first sidecar's (for the
 * report and chart). Waiting for a day-long SVID to expire is not a drill. */
static int target_ttl(drill_run *r, mesh_err *err)
{
    const drill_svid *v = &r->sc[0].svid;
    int64_t life = v->not_after - v->not_before - CA_BACKDATE_SECONDS;
    r->o->ttl_s = life > 0 ? life : v->not_after - v->not_before;
    drill_say(r, "  setup: meshd at %s issues SVIDs valid for %llds", r->meshd_addr,
              (long long)r->o->ttl_s);
    if (!r->o->outage_ms && r->o->ttl_s > 3600)
        return mesh_err_set(err, MESH_EINVAL, "meshd at %s issues SVIDs valid for %llds: the "
                            "drill would wait that long for them to expire. Give --outage "
                            "(shorter than that, it tests survival), or run that meshd with a "
                            "short --svid-ttl for the drill", r->meshd_addr, (long long)r->o->ttl_s);
    return MESH_OK;
}

/* Every sidecar ready (config applied, SVID valid), then its current SVID read. */
static int wait_ready(drill_run *r, mesh_err *err)
{
    double t0 = drill_mono();
    double limit = 30.0 + 0.1 * r->n_sc;
    int ready = 0;
    char body[16384];
    while (ready < r->n_sc) {
        ready = 0;
        for (int i = 0; i < r->n_sc; i++) {
            drill_sidecar *s = &r->sc[i];
            if (!s->ready) {
                int st;
                drill_http_get(s->port_admin, "127.0.0.1", "/ready", 1000, &st, s->ready_msg,
                               sizeof s->ready_msg);
                s->ready = st == 200;
                if (setup_child_died(r, &s->proc, err))
                    return MESH_EIO;
            }
            ready += s->ready;
        }
        if (ready == r->n_sc)
            break;
        if (setup_child_died(r, &r->meshd, err))
            return MESH_EIO;
        if (drill_interrupted())
            return mesh_err_set(err, MESH_EINTERNAL, "interrupted by a signal");
        if (drill_mono() - t0 > limit) {
            for (int i = 0; i < r->n_sc; i++)
                if (!r->sc[i].ready) {
                    char *nl = strchr(r->sc[i].ready_msg, '\n');
                    if (nl)
                        *nl = '\0';
                    return mesh_err_set(err, MESH_EIO, "%d of %d sidecars not ready after %.0fs; "
                                        "%s says '%s' (see %s/sc-%s.log)", r->n_sc - ready,
                                        r->n_sc, limit, r->sc[i].name,
                                        r->sc[i].ready_msg[0] ? r->sc[i].ready_msg : "nothing",
                                        r->dir, r->sc[i].name);
                }
        }
        sleep_ms(200);
    }
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        int st;
        if (drill_http_get(s->port_admin, "127.0.0.1", "/certs", 2000, &st, body, sizeof body) != 0 ||
            st != 200 || drill_parse_certs(body, &s->svid) != 0 || !s->svid.present)
            return mesh_err_set(err, MESH_EIO, "sidecar %s is ready but its /certs shows no SVID",
                                s->name);
    }
    drill_say(r, "  setup: %d sidecars ready in %.1fs", r->n_sc, drill_mono() - t0);
    return r->o->target ? target_ttl(r, err) : MESH_OK;
}

/* One request answered 200 through every client sidecar: routes and endpoints are in. */
static int warm_up(drill_run *r, mesh_err *err)
{
    double t0 = drill_mono();
    for (int i = 0; i < r->o->n_clients; i++) {
        drill_sidecar *s = &r->sc[i];
        int st = 0;
        char body[512];
        for (;;) {
            drill_http_get(s->port_out, r->svc_server, DRILL_TRAFFIC_PATH, 2000, &st, body,
                           sizeof body);
            if (st == 200)
                break;
            if (drill_interrupted())
                return mesh_err_set(err, MESH_EINTERNAL, "interrupted by a signal");
            if (drill_mono() - t0 > WARMUP_S) {
                char *nl = strchr(body, '\n');
                if (nl)
                    *nl = '\0';
                return mesh_err_set(err, MESH_EIO, "no request through %s reached %s in %ds "
                                    "(last answer: %d %s; see %s/sc-%s.log)", s->name,
                                    r->svc_server, WARMUP_S, st, body, r->dir, s->name);
            }
            sleep_ms(100);
        }
    }
    drill_say(r, "  setup: requests reach %s through every client sidecar; starting traffic",
              r->svc_server);
    return MESH_OK;
}

static void stop_all(drill_run *r)
{
    size_t n = 0;
    drill_child **list = calloc((size_t)r->n_sc * 2 + DRILL_MAX_REPLICAS, sizeof *list);
    if (!list) {
        drill_child_kill(&r->meshd, -1);
        for (int k = 1; k < r->o->replicas; k++)
            drill_child_kill(&r->replica[k - 1], -1);
        for (int i = 0; i < r->n_sc; i++) {
            drill_child_kill(&r->sc[i].proc, -1);
            drill_child_kill(&r->sc[i].app, -1);
        }
        return;
    }
    for (int i = 0; i < r->n_sc; i++) {
        list[n++] = &r->sc[i].proc;
        list[n++] = &r->sc[i].app;
    }
    list[n++] = &r->meshd;
    for (int k = 1; k < r->o->replicas; k++)
        list[n++] = &r->replica[k - 1];
    drill_children_stop(list, n, 4000);
    free(list);
}

static int write_reports(drill_run *r, const drill_results *res)
{
    mesh_err err = {0};
    int failed = 0;
    const drill_opts *o = r->o;
    r->meshctl_cpu_s = drill_cpu_seconds();
    if (o->json_path && drill_write_json(r, res, o->json_path, &err) != MESH_OK) {
        fprintf(stderr, "meshctl: %s\n", err.msg);
        failed = 1;
    }
    r->meshctl_cpu_s = drill_cpu_seconds();
    if (o->json_stdout && drill_write_json(r, res, "-", &err) != MESH_OK) {
        fprintf(stderr, "meshctl: %s\n", err.msg);
        failed = 1;
    }
    if (o->csv_path && drill_write_csv(r, o->csv_path, &err) != MESH_OK) {
        fprintf(stderr, "meshctl: %s\n", err.msg);
        failed = 1;
    }
    if (o->svg_path && drill_write_svg(r, res, o->svg_path, &err) != MESH_OK) {
        fprintf(stderr, "meshctl: %s\n", err.msg);
        failed = 1;
    }
    return failed;
}

int ctl_cmd_drill(ctl_ctx *c, int argc, char **argv)
{
    drill_opts o;
    mesh_err perr = {0};
    int rc = drill_parse_opts(argc, argv, c->json, c->db_path, &o, &perr);
    if (rc == DRILL_OPTS_HELP) {
        drill_usage(stdout);
        return 0;
    }
    if (rc != MESH_OK)
        return ctl_usage_error(c, "%s", perr.msg);   /* exit status 2 */
    drill_run *r = drill_run_new(&o);
    if (!r) {
        mesh_err e;
        mesh_err_set(&e, MESH_ENOMEM, "out of memory");
        return ctl_fail(c, &e);
    }
    raise_fd_limit();
    struct sigaction saved_signals[DRILL_N_SIGNALS];
    drill_install_signals(saved_signals);
    char outage[64];
    if (o.outage_ms)
        snprintf(outage, sizeof outage, "%.1fs", (double)o.outage_ms / 1000.0);
    else
        snprintf(outage, sizeof outage, "until every SVID expired + %ds", DRILL_OUTAGE_MARGIN_S);
    char ttl[48];
    if (o.target)
        snprintf(ttl, sizeof ttl, "SVID TTL as meshd issues them");
    else
        snprintf(ttl, sizeof ttl, "SVID TTL %llds", (long long)o.ttl_s);
    if (o.kill_replica)
        drill_say(r, "meshctl drill: %d client + %d server sidecars, %s, %.0f req/s; %d meshd "
                  "replicas, the one most sidecars are on killed at T+%.0fs, traffic for %.1fs "
                  "after", o.n_clients, o.n_servers, ttl, o.rate, o.replicas,
                  (double)o.kill_after_ms / 1000.0, (double)o.outage_ms / 1000.0);
    else
        drill_say(r, "meshctl drill: %d client + %d server sidecars, %s, %.0f req/s; meshd %s "
                  "at T+%.0fs, outage %s", o.n_clients, o.n_servers, ttl, o.rate,
                  o.target ? "killed (--kill-cmd)" : "killed", (double)o.kill_after_ms / 1000.0,
                  outage);

    mesh_err err = {0};
    rc = drill_mesh_prepare(r, &err);
    if (r->dir[0])
        drill_say(r, "  work dir %s (logs, store, drill-mesh.yaml)", r->dir);
    if (rc == MESH_OK) {
        if (o.target)
            drill_say(r, "  setup: in %s (trust domain %s): %d workloads %s* registered with "
                      "join tokens, their config applied; removed again at the end",
                      o.db_path, r->td, r->n_sc, r->prefix);
        else
            drill_say(r, "  setup: CA for %s, %d workloads registered with join tokens, config "
                      "applied", r->td, r->n_sc);
        rc = start_children(r, &err);
    }
    if (rc == MESH_OK)
        rc = wait_ready(r, &err);
    if (rc == MESH_OK)
        rc = warm_up(r, &err);
    if (rc == MESH_OK)
        rc = drill_run_measure(r, &err);
    if (drill_interrupted())
        r->interrupted = 1;
    if (rc != MESH_OK && !r->error[0])
        snprintf(r->error, sizeof r->error, "%s", err.msg);
    stop_all(r);
    int cleanup_failed = 0;
    if (r->o->target) {
        mesh_err cerr = {0};
        if (drill_mesh_cleanup(r, &cerr) != MESH_OK) {
            fprintf(stderr, "meshctl: removing the drill's workloads (%s*) from %s: %s\n",
                    r->prefix, r->o->db_path, cerr.msg);
            cleanup_failed = 1;
        }
        if (r->cmd.pid > 0 && !drill_child_poll(&r->cmd, -1))
            fprintf(stderr, "meshctl: the %s command (pid %d) is still running; left alone\n",
                    r->cmd_pending == 'k' ? "--kill-cmd" : "--start-cmd", (int)r->cmd.pid);
        if (r->killed_at >= 0 && !drill_addr_open(r->meshd_addr))
            fprintf(stderr, "meshctl: meshd at %s does not accept connections now: start it "
                    "again (%s)\n", r->meshd_addr, r->o->start_cmd);
    }
    if (r->st) {
        store_close(r->st);
        r->st = NULL;
    }

    drill_results res;
    drill_evaluate(r, &res);
    FILE *out = o.progress_stderr ? stderr : stdout;
    if (rc != MESH_OK && !r->interrupted)
        ctl_fail(c, &err);
    if (r->n_secs || r->killed_at >= 0)
        drill_print_summary(r, &res, out);
    int report_failed = write_reports(r, &res);

    int status = drill_exit_status(r->interrupted,
                                   rc != MESH_OK || report_failed || cleanup_failed, r->crashes,
                                   res.all_met);
    if (r->dir_is_temp && !o.keep && status == DRILL_EXIT_OK) {
        drill_remove_tree(r->dir);
    } else if (r->dir[0]) {
        fprintf(out, "  work dir kept: %s\n", r->dir);
    }
    drill_restore_signals(saved_signals);
    drill_run_free(r);
    return status;
}
