/* drill/drill.h — the drill's runtime half: what touches processes, sockets, the
 * store, signals and the clock. It builds a throwaway mesh on 127.0.0.1 (CA,
 * workloads, config written in-process, exactly as meshctl would), runs meshd, N
 * client sidecars, K server sidecars and their test apps as child processes,
 * drives paced HTTP traffic through the client sidecars, SIGKILLs meshd, probes
 * every sidecar's outage budget (seconds to SVID expiry) as it runs out, restarts
 * meshd and measures recovery. In target mode (--target) it uses a running meshd
 * and its store instead, killed and started by the operator's commands.
 *
 * Everything it decides comes from the pure half (drill_model.h and the headers
 * it names); docs/drill.md is the user's guide and lists every file.
 *
 * Files:  drill.c          entry point, setup, sequencing, exit status
 *         drill_mesh.c     work dir, binaries, ports, CA/workloads/config in the store
 *         drill_proc.c     child processes: spawn, reap, kill, log tails
 *         drill_http.c     blocking HTTP GET for setup, "is it listening"
 *         drill_client.c   async keep-alive HTTP/1.1 GET (traffic and probes)
 *         drill_traffic.c  the paced keep-alive HTTP/1.1 traffic generator
 *         drill_probe.c    per-second admin probes (/certs, /ready)
 *         drill_run.c      the measured run: clock, signals, ticks, seconds
 *         drill_phase.c    kill, restart, recovery polling, target commands */
#ifndef MESH_DRILL_DRILL_H
#define MESH_DRILL_DRILL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "drill/drill_argv.h"
#include "drill/drill_model.h"
#include "drill/drill_outage.h"
#include "drill/drill_stats.h"

#define DRILL_N_SIGNALS 4             /* SIGINT SIGTERM SIGHUP (stop) and SIGPIPE (ignored) */

/* ---- drill_proc.c: child processes ------------------------------------------------ */
/* fork+exec argv[0] with stdout/stderr appended to <dir>/<log_name>.log, in its
 * own process group, with SIGKILL as parent-death signal. */
int drill_spawn(drill_child *ch, const char *dir, const char *log_name, char *const argv[],
                mesh_err *err);
/* /bin/sh -c cmd, in a session of its own and without the parent-death signal: what
 * it starts (the operator's meshd) must outlive meshctl. */
int drill_spawn_cmd(drill_child *ch, const char *dir, const char *log_name, const char *cmd,
                    mesh_err *err);
/* Reaps without blocking; returns 1 if ch exited (now or before). */
int drill_child_poll(drill_child *ch, double now_t);
/* SIGKILL to the child's process group and reap it (the outage). */
void drill_child_kill(drill_child *ch, double now_t);
/* SIGTERM to every running child, up to grace_ms for them to exit, then SIGKILL. */
void drill_children_stop(drill_child **list, size_t n, int grace_ms);
/* The last lines of <dir>/<name>.log, for error messages. */
void drill_log_tail(const char *dir, const char *name, int lines, char *buf, size_t len);

/* ---- drill_mesh.c: the mesh in the store --------------------------------------------- */
/* Work dir, binaries, ports, CA, workloads, tokens, bundle, YAML, config apply. */
int drill_mesh_prepare(drill_run *r, mesh_err *err);
/* Target mode: removes the drill's config and registrations from the store. */
int drill_mesh_cleanup(drill_run *r, mesh_err *err);
void drill_remove_tree(const char *dir);

/* ---- drill_http.c: blocking helpers ------------------------------------------------- */
/* Blocking GET on 127.0.0.1:port with a deadline. *status 0 = no HTTP answer. */
int drill_http_get(int port, const char *host, const char *path, int timeout_ms, int *status,
                   char *body, size_t body_len);
/* 1 if something accepts TCP connections on 127.0.0.1:port / on "host:port". */
int drill_port_open(int port);
int drill_addr_open(const char *host_port);

/* ---- drill_client.c: async HTTP/1.1 GET on one keep-alive connection ---------------- */
struct event_base;

typedef struct drill_hc_result {
    int status;                       /* HTTP status; 0 = no answer (see fail) */
    const char *fail;                 /* "timeout", "connection refused", ... or NULL */
    const char *body;                 /* the first body_max bytes, NUL-terminated */
    size_t body_len;
    double ms;                        /* from send to answer or failure */
} drill_hc_result;
typedef void (*drill_hc_cb)(void *arg, const drill_hc_result *res);

drill_hc *drill_hc_new(struct event_base *base, int port, const char *host, int timeout_ms,
                       size_t body_max);
int drill_hc_busy(const drill_hc *c);
/* Sends GET path; cb runs exactly once (answer, failure or timeout). -1 if busy or
 * the connection cannot even be attempted (cb will not run). */
int drill_hc_get(drill_hc *c, const char *path, drill_hc_cb cb, void *arg);
uint64_t drill_hc_stale_retries(const drill_hc *c);
void drill_hc_free(drill_hc *c);

/* ---- drill_traffic.c ------------------------------------------------------------------ */
int drill_traffic_init(drill_run *r, mesh_err *err);
void drill_traffic_tick(drill_run *r, double now_t);    /* issue what is due */
void drill_traffic_free(drill_run *r);

/* ---- drill_probe.c -------------------------------------------------------------------- */
int drill_probe_init(drill_run *r, mesh_err *err);
void drill_probe_all(drill_run *r);                      /* one round: /certs + /ready */
void drill_probe_free(drill_run *r);

/* ---- drill_run.c ------------------------------------------------------------------------ */
double drill_mono(void);                                 /* CLOCK_MONOTONIC seconds */
double drill_wall_now(void);                             /* CLOCK_REALTIME seconds */
double drill_now_t(const drill_run *r);                  /* T+ now */
/* The measured run, from T+0 to recovery (or timeout/interrupt). MESH_OK when it
 * ran to its end, even if the mesh did badly; an error when it could not. */
int drill_run_measure(drill_run *r, mesh_err *err);
/* Set from the SIGINT/SIGTERM/SIGHUP handler. */
int drill_interrupted(void);
/* Installs the drill's handlers, keeping the old ones in saved (restored after). */
void drill_install_signals(struct sigaction saved[DRILL_N_SIGNALS]);
void drill_restore_signals(const struct sigaction saved[DRILL_N_SIGNALS]);
/* meshctl's own user + system CPU seconds so far. */
double drill_cpu_seconds(void);

/* ---- drill_phase.c ---------------------------------------------------------------------- */
enum { DRILL_STEP_GO_ON = 0, DRILL_STEP_DONE = 1, DRILL_STEP_ERROR = 2 };
int drill_meshd_running(drill_run *r);
int drill_phase_tick(drill_run *r, double now);           /* every tick; a DRILL_STEP_* */
/* At the end of second sec: kill, restart, recovery checks. A DRILL_STEP_*. */
int drill_phase_second(drill_run *r, const drill_second *sec, double now);

#endif
