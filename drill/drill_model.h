/* drill/drill_model.h — what a drill is and what it records: its options, the
 * sidecars with what their probes said, the per-second timeline, the latency
 * histograms, the failure counts and the moments the phases changed.
 *
 * The drill is two halves with one boundary (docs/drill.md, "Files"):
 *   - the pure half decides and reports from this record without a process, a
 *     socket or a clock: options (drill_opts.h), counting (drill_stats.h), the
 *     outage's rules (drill_outage.h), verdicts (drill_verdict.h), reports
 *     (drill_report.h), the children's command lines and mesh YAML (drill_argv.h);
 *   - the runtime half (drill.h) runs the mesh, the traffic and the probes and
 *     fills the record in. Pure files never include drill.h, so the compiler
 *     refuses a pure file that calls into processes or the network.
 * Fields marked "runtime" below are only touched by the runtime half.
 *
 * Times: the timeline is in seconds since traffic started ("T+"), measured on
 * CLOCK_MONOTONIC; wall_t0 maps it to Unix time, which certificates use. */
#ifndef MESH_DRILL_DRILL_MODEL_H
#define MESH_DRILL_DRILL_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

#define DRILL_MAX_CLIENTS 500
#define DRILL_MAX_SERVERS 50
#define DRILL_MAX_REPLICAS 5          /* --replicas: meshd processes on the drill's store */
#define DRILL_FAILOVER_OUTAGE_MS 10000 /* --kill-replica: traffic after the kill, default */
#define DRILL_MAX_CONNS 8             /* keep-alive connections per client sidecar, at most */
#define DRILL_OUTAGE_MARGIN_S 5       /* default outage: last expiry + this */
#define DRILL_HEALTHY_SECONDS 3       /* clean seconds of traffic that count as recovered */
#define DRILL_LAT_BUCKETS 460         /* see drill_lat_bucket() in drill_stats.c */
#define DRILL_N_PHASES 5
#define DRILL_TRAFFIC_PATH "/drill"

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
    int port_lo, port_hi;             /* --ports LO-HI; default 20000-32767 */
    int expect_zero_before_expiry;
    int expect_fail_closed;
    int64_t expect_recovery_ms;       /* -1: not given */
    int64_t expect_budget_s;          /* -1: not given */
    const char *expect_recovery_arg, *expect_budget_arg;   /* as typed, for the report */
    /* Replica mode (drill_failover.h): --replicas N meshd processes share the drill's
     * store, every sidecar is given all of them, and --kill-replica SIGKILLs the one
     * most sidecars are on instead of the whole control plane. */
    int replicas;                     /* 1 = the classic drill */
    int kill_replica;
    int64_t expect_failover_ms;       /* -1: not given */
    const char *expect_failover_arg;
} drill_opts;

/* A child process as the record sees it (drill_proc.c runs it). */
typedef struct drill_child {
    pid_t pid;                        /* 0: not running */
    char name[64];                    /* also its log file: <dir>/<name>.log */
    int exited;                       /* reaped */
    int status;                       /* wait status */
    int expected;                     /* we killed it: not a crash */
    double exited_at;                 /* T+ when reaped (or -1 before traffic) */
} drill_child;

/* Describes how a reaped child ended: "exited with status 1", "killed by signal 11". */
void drill_child_describe(const drill_child *ch, char *buf, size_t len);

enum drill_role { DRILL_CLIENT = 0, DRILL_SERVER = 1 };

/* One keep-alive HTTP connection of the runtime (drill_client.c); opaque here. */
typedef struct drill_hc drill_hc;

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
    drill_hc *probe_certs, *probe_ready;   /* runtime */

    /* The outage: what the sidecar holds while meshd is down (updated by probes
     * during the outage, since a rotation may have landed just before the kill). */
    drill_svid outage_svid;
    double expires_at;                /* T+ of outage_svid.not_after; -1 unknown */
    int expired_in_outage;            /* expires_at came before meshd was restarted */

    /* Recovery (T+, -1 = not yet). */
    double fresh_at;                  /* valid SVID, renewed if it had expired */
    double ready_at;                  /* /ready 200 after the restart */
    double converged_at;              /* meshd reports the stream synced */

    /* Replica mode: the meshd replica its ADS stream is on (admin /config_dump),
     * whether that was the killed one, and when it was on another (T+, -1). */
    char server[64];
    int on_killed;
    double moved_at;
    char moved_to[64];

    /* Traffic (clients). */
    drill_hc *conns[DRILL_MAX_CONNS];      /* runtime */
    int n_conns;                           /* runtime */
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
    mesh_store *st;                   /* runtime */
    /* Names in the mesh config. Our own mesh: "drill-server", workloads "client-1".
     * Target mode prefixes everything with "drill<pid>-" so it cannot collide with
     * the operator's resources and can be removed afterwards. */
    char prefix[32];
    char svc_server[64], svc_client[64];   /* svc_server is also the traffic's Host */
    int mesh_written;                 /* registrations/config are in the store */

    drill_sidecar *sc;                /* clients first, then servers */
    int n_sc;
    drill_child meshd;                /* ours; in target mode unused */
    /* Replica mode: replicas 2..N (replica 1 is meshd above), and every replica's
     * address; killed_replica is the index (0-based) of the one killed, -1 none. */
    drill_child replica[DRILL_MAX_REPLICAS - 1];
    int replica_port[DRILL_MAX_REPLICAS];
    char replica_addr[DRILL_MAX_REPLICAS][32];
    int killed_replica;
    double last_server_poll;          /* runtime */
    int server_poll_next;             /* runtime: round robin of the move polls */
    int meshd_starts;
    drill_child cmd;                  /* target mode: the running --kill-cmd / --start-cmd */
    int cmd_pending;                  /* 'k' kill or 's' start command not yet finished */
    double cmd_started;

    /* Clock. */
    double mono_t0;                   /* CLOCK_MONOTONIC seconds at T+0 (runtime) */
    double wall_t0;                   /* CLOCK_REALTIME seconds at T+0 */

    /* The run. */
    struct event_base *base;          /* runtime */
    enum drill_phase phase;
    int stopping;                     /* runtime */
    int64_t issued;                   /* requests issued (pacing; runtime) */
    uint64_t rr;                      /* round robin over clients (runtime) */
    int cur_sec;                      /* the second being counted */
    uint32_t cur_ok, cur_failed, cur_skipped;
    drill_hist cur_hist;
    drill_hist phase_hist[DRILL_N_PHASES];
    uint64_t phase_ok[DRILL_N_PHASES], phase_failed[DRILL_N_PHASES];
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
    double phase_first_fail_at[DRILL_N_PHASES];
    char phase_first_fail[DRILL_N_PHASES][320];

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
    double last_listen_poll, last_recovery_poll;   /* runtime */
    double ended_at;
    int healthy_streak;
    int64_t budget_min_s, budget_max_s;   /* at the kill: seconds to first / last expiry */
    int budget_said;
    char budget_min_name[96];         /* who expires first ("client-2 and 3 more") */

    /* Children that died on their own. */
    char crash_desc[512];
    int crashes;
    int interrupted;
    char error[600];                  /* why the run stopped early ("" if it did not) */
    double meshctl_cpu_s;             /* meshctl's own CPU time, for the report */
} drill_run;

/* A run for these options with every event "not yet" (-1) and the sidecars named
 * by role and index only (drill_mesh.c names them); NULL when out of memory. */
drill_run *drill_run_new(drill_opts *o);
void drill_run_free(drill_run *r);   /* also closes r->st */

/* T+ of a Unix time (certificates' notAfter). */
double drill_wall_to_t(const drill_run *r, int64_t wall);

/* Prints a progress/event line (stdout, or stderr with --output json) unless quiet. */
void drill_say(const drill_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
