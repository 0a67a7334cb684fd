/* tests/unit/test_drill_util.c — helpers for the drill's unit tests (see the
 * header): records built through the drill's own pure rules, stdout capture, and
 * python3 as a second opinion on the reports. The strict parsers are in
 * test_drill_parse.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drill/drill_opts.h"
#include "drill/drill_outage.h"
#include "drill/drill_stats.h"
#include "tests/unit/test_drill_util.h"

/* ---- a record without processes ------------------------------------------------- */

drill_run *tdr_run(int n_clients, int n_servers)
{
    drill_opts *o = calloc(1, sizeof *o);
    if (!o)
        abort();
    drill_opts_defaults(o);
    o->n_clients = n_clients;
    o->n_servers = n_servers;
    o->quiet = 1;
    drill_run *r = drill_run_new(o);
    if (!r)
        abort();
    r->wall_t0 = TDR_WALL0;
    snprintf(r->dir, sizeof r->dir, "/tmp/meshd-drill-test");
    snprintf(r->td, sizeof r->td, "drill.example");
    snprintf(r->svc_server, sizeof r->svc_server, "drill-server");
    snprintf(r->svc_client, sizeof r->svc_client, "drill-client");
    snprintf(r->meshd_addr, sizeof r->meshd_addr, "127.0.0.1:20000");
    snprintf(r->bin_meshd, sizeof r->bin_meshd, "/opt/mesh/bin/meshd");
    snprintf(r->bin_sidecar, sizeof r->bin_sidecar, "/opt/mesh/bin/mesh-sidecar");
    snprintf(r->bin_testapp, sizeof r->bin_testapp, "/opt/mesh/bin/mesh-testapp");
    r->meshd_port = 20000;
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        int k = s->role == DRILL_CLIENT ? i + 1 : i - n_clients + 1;
        snprintf(s->name, sizeof s->name, "%s-%d", s->role == DRILL_CLIENT ? "client" : "server",
                 k);
        snprintf(s->spiffe_id, sizeof s->spiffe_id, "spiffe://drill.example/ns/drill/sa/%s",
                 s->name);
        s->port_in = 21000 + i;
        s->port_admin = 22000 + i;
        s->port_app = 23000 + i;
        if (s->role == DRILL_CLIENT)
            s->port_out = 24000 + i;
    }
    return r;
}

void tdr_run_free(drill_run *r)
{
    drill_opts *o = r->o;
    drill_run_free(r);
    free(o);
}

void tdr_svid(drill_run *r, drill_sidecar *s, const char *serial, double expires_t)
{
    memset(&s->svid, 0, sizeof s->svid);
    s->svid.present = 1;
    snprintf(s->svid.serial, sizeof s->svid.serial, "%s", serial);
    s->svid.not_after = (int64_t)(r->wall_t0 + expires_t);
    s->svid.not_before = s->svid.not_after - r->o->ttl_s;
}

drill_second *tdr_second(drill_run *r, int t, enum drill_phase phase, unsigned ok,
                         unsigned failed)
{
    enum drill_phase was = r->phase;
    r->phase = phase;
    r->cur_sec = t;
    r->cur_ok = ok;
    r->cur_failed = failed;
    drill_second *s = drill_second_close(r, r->wall_t0 + t + 1, 1);
    r->phase = was;
    return s;
}

void tdr_requests(drill_run *r, double t, enum drill_phase ph, int ok, int n, const char *desc)
{
    enum drill_phase was = r->phase;
    r->phase = ph;
    for (int i = 0; i < n; i++)
        drill_count(r, &r->sc[0], t, ok, 1.0, desc);
    r->phase = was;
}

/* One second of traffic: request k of ok + failed at t + k / n, the first `ok`
 * answered in ms, the rest failed with a 503; round robin over the clients. */
static void traffic_second(drill_run *r, int t, int ok, int failed, double ms, int meshd_up)
{
    int n = ok + failed;
    for (int k = 0; k < n; k++) {
        drill_sidecar *s = &r->sc[k % r->o->n_clients];
        double at = t + (double)k / n;
        if (k < ok) {
            drill_count(r, s, at, 1, ms, NULL);
        } else {
            char desc[320];
            const char *body = "no mTLS to cluster 'outbound|drill-server': SVID expired\n";
            drill_failkinds_add(&r->kinds, 503, NULL);
            drill_failure_text(s, 503, NULL, body, strlen(body), desc, sizeof desc);
            drill_count(r, s, at, 0, ms, desc);
        }
    }
    r->cur_sec = t;
    drill_second_close(r, r->wall_t0 + t + 1, meshd_up);
}

drill_run *tdr_full_drill(void)
{
    drill_run *r = tdr_run(3, 2);
    drill_opts *o = r->o;
    o->ttl_s = 15;
    o->rate = 60;
    o->kill_after_ms = 3000;
    o->reconnect_max = "1s";
    o->expect_zero_before_expiry = 1;
    o->expect_fail_closed = 1;
    o->expect_recovery_ms = 20000;
    o->expect_recovery_arg = "20s";
    static const char *serials[] = {"c1", "c2", "c3", "s1", "s2"};
    for (int i = 0; i < r->n_sc; i++) {
        tdr_svid(r, &r->sc[i], serials[i], i < 3 ? 15 : 16);
        r->sc[i].ready = 1;
    }
    r->phase = DRILL_PH_STEADY;
    for (int t = 0; t < 3; t++)
        traffic_second(r, t, 60, 0, 1.0, 1);
    drill_outage_begin(r, 3.0);
    for (int t = 3; t < 15; t++) {
        drill_update_expiry(r);
        traffic_second(r, t, 60, 0, 2.0, 0);
    }
    drill_watch_expiry(r, 15.0);
    traffic_second(r, 15, 30, 30, 2.0, 0);
    for (int t = 16; t < 21; t++)
        traffic_second(r, t, 0, 60, 2.0, 0);
    drill_outage_end(r, 21.0);
    r->listening_at = 21.1;
    traffic_second(r, 21, 0, 60, 2.0, 1);
    /* Renewed at T+22.3, meshd reports every stream synced at T+22.5. */
    static const char *renewed[] = {"c1b", "c2b", "c3b", "s1b", "s2b"};
    for (int i = 0; i < r->n_sc; i++) {
        drill_svid v = {.present = 1};
        snprintf(v.serial, sizeof v.serial, "%s", renewed[i]);
        v.not_after = (int64_t)r->wall_t0 + 37;
        v.not_before = v.not_after - 15;
        drill_note_certs(r, &r->sc[i], &v, 22.3, r->wall_t0 + 22.3);
        r->sc[i].converged_at = 22.5;
    }
    int all = drill_recovery_state(r, 22.5, r->wall_t0 + 22.5);
    traffic_second(r, 22, 30, 30, 2.0, 1);
    drill_recovery_second(r, &r->secs[r->n_secs - 1], all);
    for (int t = 23; t < 26; t++) {
        traffic_second(r, t, 60, 0, 1.0, 1);
        if (drill_recovery_second(r, &r->secs[r->n_secs - 1], all))
            drill_mark_recovered(r);
    }
    r->ended_at = 26.0;
    return r;
}

/* ---- capturing stdout ------------------------------------------------------------ */

/* The test's own plumbing (one capture at a time per test process). */
static struct {
    FILE *tmp;
    int saved_fd;
} capture = {NULL, -1};

void tdr_capture_start(void)
{
    fflush(stdout);
    capture.tmp = tmpfile();
    capture.saved_fd = dup(1);
    if (!capture.tmp || capture.saved_fd < 0 || dup2(fileno(capture.tmp), 1) < 0)
        abort();
}

char *tdr_capture_end(void)
{
    fflush(stdout);
    dup2(capture.saved_fd, 1);
    close(capture.saved_fd);
    capture.saved_fd = -1;
    long n = ftell(capture.tmp);
    char *buf = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    rewind(capture.tmp);
    if (n > 0 && fread(buf, 1, (size_t)n, capture.tmp) != (size_t)n)
        abort();
    fclose(capture.tmp);
    capture.tmp = NULL;
    return buf;
}

/* ---- parsers nobody here wrote ------------------------------------------------------ */

static int python_accepts(const char *script, const char *text)
{
    if (system("command -v python3 >/dev/null 2>&1") != 0)
        return -1;
    char data[] = "/tmp/meshd-drill-test-XXXXXX";
    char code[] = "/tmp/meshd-drill-test-py-XXXXXX";
    int fd = mkstemp(data), cfd = mkstemp(code);
    if (fd < 0 || cfd < 0)
        abort();
    size_t n = strlen(text), sn = strlen(script);
    if (write(fd, text, n) != (ssize_t)n || write(cfd, script, sn) != (ssize_t)sn)
        abort();
    close(fd);
    close(cfd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "python3 %s %s 2>/dev/null", code, data);
    int rc = system(cmd);
    unlink(data);
    unlink(code);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) == 127)
        return -1;
    return WEXITSTATUS(rc) == 0;
}

int tdr_python_accepts_json(const char *text)
{
    return python_accepts(
        "import json, sys\n"
        "def pairs(kv):\n"
        "    d = {}\n"
        "    for k, v in kv:\n"
        "        if k in d: raise ValueError('duplicate key ' + k)\n"
        "        d[k] = v\n"
        "    return d\n"
        "def constant(c): raise ValueError('not JSON: ' + c)\n"
        "json.load(open(sys.argv[1], encoding='utf-8'), object_pairs_hook=pairs,\n"
        "          parse_constant=constant)\n",
        text);
}

int tdr_python_accepts_xml(const char *text)
{
    return python_accepts("import sys, xml.etree.ElementTree as E\nE.parse(sys.argv[1])\n", text);
}
