/* drill/drill_run.c — the measured part of the drill: one libevent loop with a
 * 5 ms tick that paces the traffic and, at every whole second of the timeline,
 * closes that second (counts, budgets, latency), prints its status line, lets the
 * phases move on (drill_phase.c) and probes every sidecar again.
 *
 * Children are reaped once a second from here too: a sidecar or test app that dies
 * on its own is a finding, reported with the end of its log. */
#include <event2/event.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "drill/drill.h"

#define TICK_US 5000
#define MAX_FAIL_TIMES 4000000

/* ---- clock ------------------------------------------------------------------------ */

double drill_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double drill_now_t(const drill_run *r)
{
    return drill_mono() - r->mono_t0;
}

double drill_wall_to_t(const drill_run *r, int64_t wall)
{
    return (double)wall - r->wall_t0;
}

/* ---- signals ------------------------------------------------------------------------ */

/* The one piece of process-wide state: a signal handler can only talk through a
 * flag. Everything else lives in drill_run. */
static volatile sig_atomic_t drill_signal_seen;

static const int handled_signals[DRILL_N_SIGNALS] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};

static void on_signal(int sig)
{
    drill_signal_seen = sig;
}

int drill_interrupted(void)
{
    return drill_signal_seen != 0;
}

void drill_install_signals(drill_run *r)
{
    for (int i = 0; i < DRILL_N_SIGNALS; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        /* A sidecar closing a connection we write to must not kill meshctl. */
        sa.sa_handler = handled_signals[i] == SIGPIPE ? SIG_IGN : on_signal;
        sigaction(handled_signals[i], &sa, &r->saved_signals[i]);
    }
}

void drill_restore_signals(drill_run *r)
{
    for (int i = 0; i < DRILL_N_SIGNALS; i++)
        sigaction(handled_signals[i], &r->saved_signals[i], NULL);
}

/* ---- output ------------------------------------------------------------------------- */

void drill_say(const drill_run *r, const char *fmt, ...)
{
    if (r->o->quiet)
        return;
    FILE *f = r->o->progress_stderr ? stderr : stdout;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
}

const char *drill_phase_name(enum drill_phase p)
{
    static const char *names[] = {"steady", "outage", "expired", "recovery", "recovered"};
    return (unsigned)p < 5 ? names[p] : "?";
}

/* ---- latency histogram --------------------------------------------------------------- */

static int lat_bucket(double ms)
{
    double us = ms * 1000.0;
    if (us < 0)
        us = 0;
    if (us < 1000)
        return (int)(us / 10);
    if (us < 10000)
        return 100 + (int)((us - 1000) / 100);
    if (us < 100000)
        return 190 + (int)((us - 10000) / 1000);
    if (us < 1000000)
        return 280 + (int)((us - 100000) / 10000);
    if (us < 10000000)
        return 370 + (int)((us - 1000000) / 100000);
    return DRILL_LAT_BUCKETS - 1;
}

static double lat_value_ms(int b)
{
    double us;
    if (b < 100)
        us = b * 10 + 5;
    else if (b < 190)
        us = 1000 + (b - 100) * 100 + 50;
    else if (b < 280)
        us = 10000 + (b - 190) * 1000 + 500;
    else if (b < 370)
        us = 100000 + (b - 280) * 10000 + 5000;
    else
        us = 1000000 + (b - 370) * 100000.0 + 50000;
    return us / 1000.0;
}

void drill_hist_add(drill_hist *h, double ms)
{
    int b = lat_bucket(ms);
    if (b >= DRILL_LAT_BUCKETS)
        b = DRILL_LAT_BUCKETS - 1;
    h->b[b]++;
    h->n++;
}

double drill_hist_quantile(const drill_hist *h, double q)
{
    if (!h->n)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0;
    if (want == 0)
        want = 1;
    for (int b = 0; b < DRILL_LAT_BUCKETS; b++) {
        seen += h->b[b];
        if (seen >= want)
            return lat_value_ms(b);
    }
    return lat_value_ms(DRILL_LAT_BUCKETS - 1);
}

/* ---- counting ----------------------------------------------------------------------- */

void drill_count(drill_run *r, drill_sidecar *s, double now_t, int ok, double ms,
                 const char *fail_desc)
{
    int ph = (int)r->phase;
    if (ok) {
        r->cur_ok++;
        r->total_ok++;
        r->phase_ok[ph]++;
        s->ok++;
        drill_hist_add(&r->cur_hist, ms);
        drill_hist_add(&r->phase_hist[ph], ms);
        return;
    }
    r->cur_failed++;
    r->total_failed++;
    r->phase_failed[ph]++;
    s->failed++;
    if (s->first_fail_at < 0)
        s->first_fail_at = now_t;
    if (r->first_fail_at < 0) {
        r->first_fail_at = now_t;
        snprintf(r->first_fail_desc, sizeof r->first_fail_desc, "%s",
                 fail_desc ? fail_desc : "failed");
    }
    if (r->phase_first_fail_at[ph] < 0) {
        r->phase_first_fail_at[ph] = now_t;
        snprintf(r->phase_first_fail[ph], sizeof r->phase_first_fail[ph], "%s",
                 fail_desc ? fail_desc : "failed");
        /* Failures going on from the expired phase into recovery are no news. */
        if (r->phase != DRILL_PH_RECOVERY || r->phase_first_fail_at[DRILL_PH_EXPIRED] < 0)
            drill_say(r, "  >> T+%.1fs  first failed request%s: %s", now_t,
                      r->phase == DRILL_PH_EXPIRED ? " since the expiry"
                      : r->phase == DRILL_PH_STEADY ? " (meshd up!)"
                      : r->phase == DRILL_PH_OUTAGE ? " (no SVID expired yet!)" : "",
                      r->phase_first_fail[ph]);
    }
    if (r->n_fail_t == r->cap_fail_t && !r->fail_t_capped) {
        size_t nc = r->cap_fail_t ? r->cap_fail_t * 2 : 4096;
        float *nf = nc <= MAX_FAIL_TIMES ? realloc(r->fail_t, nc * sizeof *nf) : NULL;
        if (nf) {
            r->fail_t = nf;
            r->cap_fail_t = nc;
        } else {
            r->fail_t_capped = 1;
        }
    }
    if (r->n_fail_t < r->cap_fail_t)
        r->fail_t[r->n_fail_t++] = (float)now_t;
}

/* ---- one second of the timeline ----------------------------------------------------- */

static void sample_budgets(drill_run *r, drill_second *sec)
{
    double wn = drill_wall_now();
    int have = 0;
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        if (s->ready)
            sec->ready++;
        if (!s->svid.present)
            continue;
        double b = (double)s->svid.not_after - wn;
        if (b <= 0)
            sec->expired++;
        if (!have || b < sec->min_budget)
            sec->min_budget = b;
        if (!have || b > sec->max_budget)
            sec->max_budget = b;
        have = 1;
    }
}

/* One line per second; T is the start of the second the line counts. */
static void print_status(const drill_run *r, const drill_second *s)
{
    if (s->t % 20 == 0)
        drill_say(r, "  %5s  %-9s %6s %6s %7s %6s %7s %-5s %7s", "T", "PHASE", "OK/S", "FAIL/S",
                  "BUDGET", "READY", "EXPIRED", "MESHD", "P99");
    char budget[16], ready[16], expired[16], p99[16];
    snprintf(budget, sizeof budget, "%.0fs", floor(s->min_budget));
    snprintf(ready, sizeof ready, "%d/%d", s->ready, r->n_sc);
    snprintf(expired, sizeof expired, "%d/%d", s->expired, r->n_sc);
    if (s->ok)
        snprintf(p99, sizeof p99, "%.1fms", s->p99_ms);
    else
        snprintf(p99, sizeof p99, "-");
    drill_say(r, "  %5d  %-9s %6u %6u %7s %6s %7s %-5s %7s", s->t, drill_phase_name(s->phase),
              s->ok, s->failed, budget, ready, expired, s->meshd_up ? "up" : "down", p99);
}

static void check_children(drill_run *r, double now)
{
    for (int i = 0; i < r->n_sc; i++) {
        drill_child *chs[2] = {&r->sc[i].proc, &r->sc[i].app};
        for (int k = 0; k < 2; k++) {
            drill_child *ch = chs[k];
            if (ch->pid <= 0 || ch->exited || !drill_child_poll(ch, now) || ch->expected)
                continue;
            char how[128], tail[400];
            drill_child_describe(ch, how, sizeof how);
            drill_log_tail(r->dir, ch->name, 2, tail, sizeof tail);
            r->crashes++;
            if (!r->crash_desc[0])
                snprintf(r->crash_desc, sizeof r->crash_desc,
                         "%.60s %.100s at T+%.0fs (%.60s.log: %.250s)", ch->name, how, now,
                         ch->name, tail);
            drill_say(r, "  !! T+%.1fs  %s %s; its log ends: %s", now, ch->name, how, tail);
        }
    }
}

static void end_run(drill_run *r, double now)
{
    r->ended_at = now;
    r->stopping = 1;
    event_base_loopbreak(r->base);
}

/* Closes second r->cur_sec: records and prints it, then lets the phases move on
 * (the kill and the restart happen here, on the boundary) and probes again. */
static void close_second(drill_run *r, double now)
{
    if (r->n_secs == r->cap_secs) {
        size_t nc = r->cap_secs ? r->cap_secs * 2 : 256;
        drill_second *ns = realloc(r->secs, nc * sizeof *ns);
        if (!ns) {
            snprintf(r->error, sizeof r->error, "out of memory for the timeline");
            end_run(r, now);
            return;
        }
        r->secs = ns;
        r->cap_secs = nc;
    }
    drill_second *sec = &r->secs[r->n_secs++];
    memset(sec, 0, sizeof *sec);
    sec->t = r->cur_sec;
    sec->phase = r->phase;
    sec->ok = r->cur_ok;
    sec->failed = r->cur_failed;
    sec->skipped = r->cur_skipped;
    sec->p50_ms = drill_hist_quantile(&r->cur_hist, 0.50);
    sec->p99_ms = drill_hist_quantile(&r->cur_hist, 0.99);
    sample_budgets(r, sec);
    sec->meshd_up = drill_meshd_running(r) &&
                    (r->phase != DRILL_PH_RECOVERY || r->listening_at >= 0);
    r->cur_sec++;
    r->cur_ok = r->cur_failed = r->cur_skipped = 0;
    memset(&r->cur_hist, 0, sizeof r->cur_hist);
    print_status(r, sec);

    check_children(r, now);
    int step = drill_phase_second(r, sec, now);
    if (step == DRILL_STEP_ERROR) {
        drill_say(r, "  !! %s", r->error);
        end_run(r, now);
    } else if (step == DRILL_STEP_DONE) {
        end_run(r, now);
    } else {
        drill_probe_all(r);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    drill_run *r = arg;
    if (r->stopping)
        return;
    double now = drill_now_t(r);
    if (drill_interrupted()) {
        r->interrupted = 1;
        snprintf(r->error, sizeof r->error, "interrupted by a signal");
        drill_say(r, "  !! T+%.1fs  interrupted; stopping the drill's processes", now);
        end_run(r, now);
        return;
    }
    if (drill_phase_tick(r, now) == DRILL_STEP_ERROR) {
        drill_say(r, "  !! %s", r->error);
        end_run(r, now);
        return;
    }
    drill_traffic_tick(r, now);
    while (!r->stopping && now >= (double)r->cur_sec + 1.0)
        close_second(r, now);
}

int drill_run_measure(drill_run *r, mesh_err *err)
{
    r->base = event_base_new();
    if (!r->base)
        return mesh_err_set(err, MESH_ENOMEM, "cannot create an event loop");
    int rc = drill_traffic_init(r, err);
    if (rc == MESH_OK)
        rc = drill_probe_init(r, err);
    struct event *tick = rc == MESH_OK ? event_new(r->base, -1, EV_PERSIST, on_tick, r) : NULL;
    if (rc == MESH_OK && !tick)
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
    if (rc == MESH_OK) {
        r->phase = DRILL_PH_STEADY;
        r->mono_t0 = drill_mono();
        r->wall_t0 = drill_wall_now();
        struct timeval tv = {0, TICK_US};
        event_add(tick, &tv);
        drill_probe_all(r);
        drill_traffic_tick(r, 0);
        event_base_dispatch(r->base);
    }
    if (tick)
        event_free(tick);
    drill_traffic_free(r);
    drill_probe_free(r);
    event_base_free(r->base);
    r->base = NULL;
    if (rc != MESH_OK)
        return rc;
    if (r->error[0] && !r->interrupted)
        return mesh_err_set(err, MESH_EINTERNAL, "%s", r->error);
    return MESH_OK;
}
