/* drill/drill_run.c — the measured part of the drill: one libevent loop with a
 * 5 ms tick that paces the traffic and, at every whole second of the timeline,
 * closes that second (drill_stats.c: counts, budgets, latency), prints its status
 * line, lets the phases move on (drill_phase.c) and probes every sidecar again;
 * and the drill's clocks and signal handlers.
 *
 * Children are reaped once a second from here too: a sidecar or test app that dies
 * on its own is a finding, reported with the end of its log. */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "drill/drill.h"

#define TICK_US 5000

/* ---- clock ------------------------------------------------------------------------ */

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double drill_mono(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

double drill_wall_now(void)
{
    return clock_s(CLOCK_REALTIME);
}

double drill_now_t(const drill_run *r)
{
    return drill_mono() - r->mono_t0;
}

double drill_cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- signals ------------------------------------------------------------------------ */

/* The one piece of process-wide state: a signal handler can only talk through a
 * flag. Everything else lives in drill_run (the saved handlers in the caller). */
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

void drill_install_signals(struct sigaction saved[DRILL_N_SIGNALS])
{
    for (int i = 0; i < DRILL_N_SIGNALS; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        /* A sidecar closing a connection we write to must not kill meshctl. */
        sa.sa_handler = handled_signals[i] == SIGPIPE ? SIG_IGN : on_signal;
        sigaction(handled_signals[i], &sa, &saved[i]);
    }
}

void drill_restore_signals(const struct sigaction saved[DRILL_N_SIGNALS])
{
    for (int i = 0; i < DRILL_N_SIGNALS; i++)
        sigaction(handled_signals[i], &saved[i], NULL);
}

/* ---- one second of the timeline ----------------------------------------------------- */

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
    double wall_now = drill_wall_now();
    /* Restarted but not accepting connections yet counts as down. */
    int meshd_up = drill_meshd_running(r) &&
                   (r->phase != DRILL_PH_RECOVERY || r->listening_at >= 0);
    drill_second *sec = drill_second_close(r, wall_now, meshd_up);
    if (!sec) {
        snprintf(r->error, sizeof r->error, "out of memory for the timeline");
        end_run(r, now);
        return;
    }
    drill_print_second(r, sec);

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
