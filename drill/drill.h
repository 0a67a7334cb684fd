/* drill/drill.h — what the files of `meshctl drill` share (private to them).
 *
 * The drill builds a throwaway mesh on 127.0.0.1 (CA, workloads, config written
 * in-process, exactly as meshctl would), runs meshd, N client sidecars, K server
 * sidecars and their test apps as child processes, drives paced HTTP traffic
 * through the client sidecars, SIGKILLs meshd, watches every sidecar's outage
 * budget (seconds to SVID expiry) run out, restarts meshd and measures recovery.
 * In target mode (--target) it uses a running meshd and its store instead, killed
 * and started by the operator's commands. docs/drill.md is the user's guide.
 *
 * Files:  drill.c          entry point, sequencing, exit status
 *         drill_opts.c     command line and usage text
 *         drill_mesh.c     work dir, ports, mesh YAML, CA/workloads/config
 *         drill_argv.c     the children's command lines
 *         drill_proc.c     child processes: spawn, reap, kill, clean up
 *         drill_http.c     blocking HTTP GET for setup, /certs parsing
 *         drill_client.c   async keep-alive HTTP/1.1 GET (traffic and probes)
 *         drill_traffic.c  the paced keep-alive HTTP/1.1 traffic generator
 *         drill_probe.c    per-second admin probes (/certs, /ready)
 *         drill_run.c      the measured run: clock, ticks, seconds, counting
 *         drill_phase.c    kill, expiry, restart, recovery
 *         drill_report.c   verdicts, expectations, summary, CSV
 *         drill_json.c     the JSON report
 *         drill_svg.c      the SVG chart
 *
 * Times: the timeline is in seconds since traffic started ("T+"), measured on
 * CLOCK_MONOTONIC; wall_t0 maps it to Unix time, which certificates use. */
#ifndef MESH_DRILL_DRILL_H
#define MESH_DRILL_DRILL_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/error.h"
#include "store/store.h"
#include "meshctl/meshctl.h"

#define DRILL_MAX_CLIENTS 500
#define DRILL_MAX_SERVERS 50
#define DRILL_MAX_CONNS 8             /* keep-alive connections per client sidecar, at most */
#define DRILL_OUTAGE_MARGIN_S 5       /* default outage: last expiry + this */
#define DRILL_HEALTHY_SECONDS 3       /* clean seconds of traffic that count as recovered */
#define DRILL_LAT_BUCKETS 460         /* see lat_bucket() in drill_run.c */
#define DRILL_TRAFFIC_PATH "/drill"
#define DRILL_N_SIGNALS 4             /* SIGINT SIGTERM SIGHUP (stop) and SIGPIPE (ignored) */

/* Exit statuses (documented in docs/drill.md). */
#define DRILL_EXIT_OK 0
#define DRILL_EXIT_ERROR 1           /* the drill itself could not run */
#define DRILL_EXIT_USAGE 2
#define DRILL_EXIT_EXPECTATION 3     /* it ran; an --expect-* was not met */
#define DRILL_EXIT_INTERRUPTED 130

typedef struct drill_opts {
    int n_clients, n_servers;
    int64_t ttl_s;
    double rate;                      /* requests per second over all client sidecars */
    int64_t kill_after_ms;
    int64_t outage_ms;                /* 0: until the last SVID expired + margin */
    int64_t recovery_timeout_ms;
    int64_t request_timeout_ms;
    const char *reconnect_max;        /* passed to each sidecar when set */
    const char *rotate_fraction;      /* passed to meshd when set */
    const char *trust_domain;
    /* Target mode: a running meshd (its address and store) instead of our own;
     * the operator's commands kill and start it. */
    const char *target;               /* HOST:PORT, NULL = start our own meshd */
    const char *db_path;              /* its store (global --db / MESHD_DB) */
    const char *kill_cmd, *start_cmd;
    int ttl_given;
    const char *dir;                  /* NULL: a fresh temp dir */
    int keep;
    const char *bin_dir;              /* NULL: beside /proc/self/exe */
    const char *json_path, *csv_path, *svg_path;
    int quiet;
    int json_stdout;                  /* global --output json: report on stdout */
    int progress_stderr;              /* a report goes to stdout: progress to stderr */
    int expect_zero_before_expiry;
    int expect_fail_closed;
    int64_t expect_recovery_ms;       /* -1: not given */
    int64_t expect_budget_s;          /* -1: not given */
    const char *expect_recovery_arg, *expect_budget_arg;   /* as typed, for the report */
} drill_opts;

/* Parses argv (argv[0] == "drill"). Returns 0, or DRILL_EXIT_USAGE after printing
 * the problem (ctl_usage_error), or -1 for --help (usage printed on stdout). */
int drill_parse_opts(ctl_ctx *c, int argc, char **argv, drill_opts *o);
void drill_usage(FILE *f);

/* ---- child processes -------------------------------------------------------- */
typedef struct drill_child {
    pid_t pid;                        /* 0: not running */
    char name[64];                    /* also its log file: <dir>/<name>.log */
    int exited;                       /* reaped */
    int status;                       /* wait status */
    int expected;                     /* we killed it: not a crash */
    double exited_at;                 /* T+ when reaped (or -1 before traffic) */
} drill_child;

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
/* Describes how a reaped child ended: "exited with status 1", "killed by signal 11". */
void drill_child_describe(const drill_child *ch, char *buf, size_t len);
/* SIGTERM to every running child, up to grace_ms for them to exit, then SIGKILL. */
void drill_children_stop(drill_child **list, size_t n, int grace_ms);
/* The last lines of <dir>/<name>.log, for error messages. */
void drill_log_tail(const char *dir, const char *name, int lines, char *buf, size_t len);

/* ---- sidecars and the mesh ------------------------------------------------------ */
enum drill_role { DRILL_CLIENT = 0, DRILL_SERVER = 1 };

/* ---- drill_client.c: async HTTP/1.1 GET on one keep-alive connection ---- */
struct event_base;
typedef struct drill_hc drill_hc;

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

typedef struct drill_svid {
    int present;
    char serial[64];
    int64_t not_before, not_after;    /* Unix seconds */
} drill_svid;

typedef struct drill_sidecar {
    struct drill_run *run;
    int index;
    enum drill_role role;
    char name[64];                    /* workload name = xDS node id = log name */
    char spiffe_id[400];
    int port_in, port_out, port_admin, port_app;
    drill_child proc;
    drill_child app;                  /* servers only: the mesh-testapp */

    /* Latest probe. */
    drill_svid svid;
    int ready;                        /* /ready answered 200 */
    char ready_msg[160];              /* its body when not ready */
    double probed_at;                 /* T+ of the last /certs answer; -1 never */
    drill_hc *probe_certs, *probe_ready;

    /* The outage: what the sidecar holds while meshd is down (updated by probes
     * during the outage, since a rotation may have landed just before the kill). */
    drill_svid outage_svid;
    double expires_at;                /* T+ of outage_svid.not_after; -1 unknown */
    int expired_in_outage;            /* expires_at came before meshd was restarted */

    /* Recovery (T+, -1 = not yet). */
    double fresh_at;                  /* valid SVID, renewed if it had expired */
    double ready_at;                  /* /ready 200 after the restart */
    double converged_at;              /* meshd reports the stream synced */

    /* Traffic (clients). */
    drill_hc *conns[DRILL_MAX_CONNS];
    int n_conns;
    uint64_t ok, failed;
    double first_fail_at;
} drill_sidecar;

enum drill_phase {
    DRILL_PH_STEADY = 0,              /* meshd up, traffic flowing */
    DRILL_PH_OUTAGE,                  /* meshd killed, every SVID still valid */
    DRILL_PH_EXPIRED,                 /* meshd down, at least one SVID expired */
    DRILL_PH_RECOVERY,                /* meshd restarted, not yet recovered */
    DRILL_PH_RECOVERED,
};
const char *drill_phase_name(enum drill_phase p);

/* One finished second of the timeline. */
typedef struct drill_second {
    int t;                            /* the second [t, t+1) */
    enum drill_phase phase;           /* at its end */
    uint32_t ok, failed, skipped;
    double min_budget, max_budget;    /* seconds to expiry over all sidecars */
    int ready, expired;               /* sidecars ready / holding an expired SVID */
    int meshd_up;
    double p50_ms, p99_ms;            /* latency of ok requests (0 if none) */
} drill_second;

/* Latency histogram: 10 us buckets below 1 ms, then 90 buckets per decade. */
typedef struct drill_hist {
    uint32_t b[DRILL_LAT_BUCKETS];
    uint64_t n;
} drill_hist;
void drill_hist_add(drill_hist *h, double ms);
double drill_hist_quantile(const drill_hist *h, double q);

/* Counts of failed requests by cause. */
typedef struct drill_failkinds {
    uint64_t by_status[6];            /* index = status / 100 (1xx..5xx), 0 unused */
    uint64_t s503, s504, s502, s403, s404;
    uint64_t timeout, closed, refused, other;
} drill_failkinds;

typedef struct drill_run {
    drill_opts *o;
    char dir[4096];
    int dir_is_temp;
    char bin_meshd[4096], bin_sidecar[4096], bin_testapp[4096];
    char meshd_addr[256];             /* ours (127.0.0.1:port) or --target */
    int meshd_port;
    char td[256];
    mesh_store *st;
    /* Names in the mesh config. Our own mesh: "drill-server", workloads "client-1".
     * Target mode prefixes everything with "drill<pid>-" so it cannot collide with
     * the operator's resources and can be removed afterwards. */
    char prefix[32];
    char svc_server[64], svc_client[64];   /* svc_server is also the traffic's Host */
    int mesh_written;                 /* registrations/config are in the store */

    drill_sidecar *sc;                /* clients first, then servers */
    int n_sc;
    drill_child meshd;                /* ours; in target mode unused */
    int meshd_starts;
    drill_child cmd;                  /* target mode: the running --kill-cmd / --start-cmd */
    int cmd_pending;                  /* 'k' kill or 's' start command not yet finished */
    double cmd_started;

    /* Clock. */
    double mono_t0;                   /* CLOCK_MONOTONIC seconds at T+0 */
    double wall_t0;                   /* CLOCK_REALTIME seconds at T+0 */

    /* The run. */
    struct event_base *base;
    enum drill_phase phase;
    int stopping;
    int64_t issued;                   /* requests issued (pacing) */
    uint64_t rr;                      /* round robin over clients */
    int cur_sec;                      /* the second being counted */
    uint32_t cur_ok, cur_failed, cur_skipped;
    drill_hist cur_hist;
    drill_hist phase_hist[5];
    uint64_t phase_ok[5], phase_failed[5];
    drill_second *secs;
    size_t n_secs, cap_secs;
    drill_failkinds kinds;
    uint64_t total_ok, total_failed, total_skipped;
    uint64_t stale_retries;           /* GETs resent after an idle keep-alive close */
    /* When each failure happened (T+), so "before expiry" is decided exactly once
     * the expiry times are final. Capped; past the cap whole seconds are used. */
    float *fail_t;
    size_t n_fail_t, cap_fail_t;
    int fail_t_capped;
    double phase_first_fail_at[5];
    char phase_first_fail[5][320];

    /* Events (T+, -1 = did not happen). */
    double killed_at;
    double planned_restart_at;
    double restarted_at;
    double listening_at;              /* meshd accepted a connection after the restart */
    double first_expiry_at;           /* earliest SVID expiry during the outage */
    double last_expiry_at;
    double first_fail_at;             /* first failed request of the run */
    char first_fail_desc[320];
    double all_fresh_at, all_ready_at, converged_at, healthy_from, recovered_at;
    double last_listen_poll, last_recovery_poll;
    double ended_at;
    int healthy_streak;
    int64_t budget_min_s, budget_max_s;   /* at the kill: seconds to first / last expiry */
    int budget_said;
    char budget_min_name[96];       /* who expires first ("client-2 and 3 more") */

    /* Children that died on their own. */
    char crash_desc[512];
    int crashes;
    int interrupted;
    char error[600];                  /* why the run stopped early ("" if it did not) */
    struct sigaction saved_signals[DRILL_N_SIGNALS];
} drill_run;

/* ---- drill_mesh.c ----------------------------------------------------- */
/* Work dir, binaries, ports, CA, workloads, tokens, bundle, YAML, config apply. */
int drill_mesh_prepare(drill_run *r, mesh_err *err);
/* Target mode: removes the drill's config and registrations from the store. */
int drill_mesh_cleanup(drill_run *r, mesh_err *err);
void drill_remove_tree(const char *dir);
/* drill_argv.c: argv for meshd / a sidecar / a test app (drill_argv_free). */
char **drill_meshd_argv(drill_run *r);
char **drill_sidecar_argv(drill_run *r, const drill_sidecar *s);
char **drill_testapp_argv(drill_run *r, const drill_sidecar *s);
void drill_argv_free(char **argv);

/* ---- drill_http.c ----------------------------------------------------- */
/* Blocking GET on 127.0.0.1:port with a deadline. *status 0 = no HTTP answer. */
int drill_http_get(int port, const char *host, const char *path, int timeout_ms, int *status,
                   char *body, size_t body_len);
/* 1 if something accepts TCP connections on 127.0.0.1:port / on "host:port". */
int drill_port_open(int port);
int drill_addr_open(const char *host_port);
/* Parses the "current" SVID out of an admin /certs JSON body. 0 ok, -1 malformed. */
int drill_parse_certs(const char *body, drill_svid *out);
int drill_parse_time(const char *s, int64_t *out);   /* "2026-01-02T03:04:05Z" */

/* ---- drill_traffic.c -------------------------------------------------- */
int drill_traffic_init(drill_run *r, mesh_err *err);
void drill_traffic_tick(drill_run *r, double now_t);    /* issue what is due */
void drill_traffic_free(drill_run *r);
/* Counts one finished request into the current second, its phase and the totals. */
void drill_count(drill_run *r, drill_sidecar *s, double now_t, int ok, double ms,
                 const char *fail_desc);

/* ---- drill_probe.c ---------------------------------------------------- */
int drill_probe_init(drill_run *r, mesh_err *err);
void drill_probe_all(drill_run *r);                      /* one round: /certs + /ready */
void drill_probe_free(drill_run *r);

/* ---- drill_run.c ------------------------------------------------------ */
double drill_mono(void);
double drill_now_t(const drill_run *r);                  /* T+ now */
double drill_wall_to_t(const drill_run *r, int64_t wall);
/* The measured run, from T+0 to recovery (or timeout/interrupt). MESH_OK when it
 * ran to its end, even if the mesh did badly; an error when it could not. */
int drill_run_measure(drill_run *r, mesh_err *err);
/* Set from the SIGINT/SIGTERM/SIGHUP handler. */
int drill_interrupted(void);
void drill_install_signals(drill_run *r);
void drill_restore_signals(drill_run *r);
/* Prints a progress/event line (stdout, or stderr with --output json) unless quiet. */
void drill_say(const drill_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- drill_phase.c ---------------------------------------------------- */
enum { DRILL_STEP_GO_ON = 0, DRILL_STEP_DONE = 1, DRILL_STEP_ERROR = 2 };
double drill_wall_now(void);
int drill_meshd_running(drill_run *r);
/* Valid SVID, and a new one if the sidecar's SVID expired during the outage. */
int drill_sidecar_fresh(const drill_sidecar *s, double wall_now);
int drill_phase_tick(drill_run *r, double now);           /* every tick; a DRILL_STEP_* */
/* At the end of second sec: kill, restart, recovery checks. A DRILL_STEP_*. */
int drill_phase_second(drill_run *r, const drill_second *sec, double now);

/* ---- drill_report.c --------------------------------------------------- */
typedef struct drill_verdict {
    const char *id;
    int pass;                         /* 1 pass, 0 fail, -1 informational */
    char text[400];
} drill_verdict;

typedef struct drill_expect {
    const char *flag;                 /* "--expect-recovery-within 30s" */
    char flag_buf[80];
    int met;
    char detail[300];
} drill_expect;

typedef struct drill_results {
    drill_verdict v[8];
    int n_v;
    drill_expect e[4];
    int n_e;
    int all_met;
    char headline[300];               /* the outcome in one short line (chart subtitle) */
} drill_results;

/* What the verdicts, the JSON and the SVG rest on. */
typedef struct drill_facts {
    int killed, restarted, recovered;
    int expiry_in_outage;             /* some SVID expired before the restart */
    int all_expired_in_outage;        /* every SVID did, at least a second before it */
    double horizon;                   /* failures before this count as "before expiry" */
    uint64_t failed_before_expiry;
    uint64_t failed_while_expired;    /* from first expiry to the restart */
    uint64_t ok_after_all_expired;    /* whole seconds after last expiry + 1 s, before restart */
    uint64_t ok_before_expiry_in_outage;
    uint64_t failed_after_recovery;
    double first_fail_after_expiry;   /* T+, -1 */
    double recovery_s;
} drill_facts;
void drill_derive(const drill_run *r, drill_facts *f);
void drill_evaluate(const drill_run *r, drill_results *res);
void drill_print_summary(const drill_run *r, const drill_results *res, FILE *f);
/* drill_json.c: path "-" = stdout. */
int drill_write_json(const drill_run *r, const drill_results *res, const char *path,
                     mesh_err *err);
int drill_write_csv(const drill_run *r, const char *path, mesh_err *err);
/* An output file, or stdout for "-"; drill_close_out reports write errors. */
FILE *drill_open_out(const char *path, mesh_err *err);
int drill_close_out(FILE *f, const char *path, mesh_err *err);

/* ---- drill_svg.c ------------------------------------------------------ */
int drill_write_svg(const drill_run *r, const drill_results *res, const char *path,
                    mesh_err *err);

#endif
