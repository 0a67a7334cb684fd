/* bench/bench_issue.c — SVID issuance throughput (CSR verify + sign + durable store).
 *
 * Pre-generates N EC P-256 keys and CSRs (not timed), then times
 * ca_issue_svid over them: parse + verify the CSR, build + sign the leaf,
 * commit cert + audit row to SQLite (WAL, synchronous=FULL). Phases:
 *
 *   csr-check  ca_csr_check alone: the CSR-side (parse + verify) share
 *   disk/1   one thread, store on a real disk (the production case)
 *   disk/2   two threads, one store handle and one loaded CA per thread
 *            (how meshd's workers issue); SQLite serialises the commits
 *   tmpfs/1  the same on /dev/shm, where fsync costs ~nothing: disk minus
 *   tmpfs/2  tmpfs is the durability cost, tmpfs is crypto + SQLite CPU
 *   fsync    raw 4 KiB write+fdatasync loops in the disk directory (in
 *            place and appending): the device's durable-write rate
 *
 * Reference figures measured in the same run by bench/bench_issue.sh
 * (`openssl speed ecdsap256`, one core) come in as --ref-sign/--ref-verify;
 * the CSR-verify + sign ceiling is 1/(1/sign + 1/verify) per core and every
 * phase prints its ratio against it (x2 cores for the two-thread phases).
 *
 * Output: a human-readable table on stdout and, with --json FILE, one JSON
 * object the summary in bench/run.sh reads. --profile runs only disk/1, for
 * bench_issue.sh to count instructions inside ca_issue_svid with callgrind. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ca/ca.h"
#include "ca/csr.h"
#include "common/error.h"
#include "common/log.h"
#include "store/store.h"

#define TRUST_DOMAIN "bench.mesh.test"
#define WARMUP_ISSUES 20
#define FSYNC_REF_SECONDS 1.0
#define MAX_THREADS 8

typedef struct bench_opts {
    long n;                 /* CSRs per phase */
    int threads;            /* for the multi-threaded phases */
    const char *disk_dir;   /* a directory on the real disk (required) */
    const char *tmpfs_dir;  /* a directory on tmpfs; NULL skips those phases */
    double ref_sign;        /* openssl speed ecdsap256 sign/s on one core; 0 = unknown */
    double ref_verify;
    const char *json_path;
    int profile;            /* only the disk/1 phase (run under callgrind by bench_issue.sh) */
} bench_opts;

/* One timed phase's figures. */
typedef struct phase_result {
    const char *name;
    int threads;
    long n;
    double wall_s;
    double cpu_s;           /* user+sys of the whole process during the phase */
    double p50_ms, p99_ms;  /* per-call latency */
    double per_s;
} phase_result;

/* Everything the worker threads share for one phase. */
typedef struct phase_ctx {
    char **csrs;
    char **ids;
    long n;
    atomic_long next;       /* next CSR index to issue */
    double *lat_ms;         /* per-call latency, indexed like csrs */
    atomic_int failed;
    mesh_err first_err;     /* written once, by the thread that flips failed 0 -> 1 */
} phase_ctx;

typedef struct worker_arg {
    phase_ctx *ctx;
    mesh_store *st;
    mesh_ca *ca;
} worker_arg;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *sorted, long n, double p)
{
    if (n <= 0)
        return 0;
    long k = (long)(p / 100.0 * (double)n + 0.999999) - 1;
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return sorted[k];
}

static void die(const char *what, const mesh_err *err)
{
    fprintf(stderr, "bench_issue: %s: %s\n", what, err && err->msg[0] ? err->msg : "failed");
    exit(1);
}

/* ---- setup ------------------------------------------------------------------- */

static void path_join(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "bench_issue: path %s/%s is too long\n", dir, name);
        exit(2);
    }
}

/* A fresh store with an EC P-256 root CA in dir/store.db (keys in dir/keys). */
static void make_store(const char *dir, char *db_path, size_t len)
{
    char key_dir[4096];
    path_join(db_path, len, dir, "store.db");
    path_join(key_dir, sizeof key_dir, dir, "keys");
    if (access(db_path, F_OK) == 0) {
        fprintf(stderr, "bench_issue: %s already exists; give an empty directory\n", db_path);
        exit(2);
    }
    mesh_err err = {0};
    mesh_store *st = NULL;
    store_open_opts create = {.create = 1};
    if (store_open_with(&st, db_path, &create, &err) != MESH_OK)
        die("opening the store", &err);
    ca_init_opts o = {.trust_domain = TRUST_DOMAIN, .key_dir = key_dir, .key_type = "ec-p256"};
    int64_t id;
    if (ca_init(st, &o, &id, &err) != MESH_OK)
        die("creating the CA", &err);
    store_close(st);
}

/* N keys and CSRs, one SPIFFE ID each (keys are dropped: only the CSR matters). */
static void make_csrs(long n, char ***csrs_out, char ***ids_out)
{
    char **csrs = calloc((size_t)n, sizeof *csrs);
    char **ids = calloc((size_t)n, sizeof *ids);
    if (!csrs || !ids) {
        fprintf(stderr, "bench_issue: out of memory\n");
        exit(1);
    }
    mesh_err err = {0};
    for (long i = 0; i < n; i++) {
        char id[128];
        snprintf(id, sizeof id, "spiffe://%s/ns/bench/sa/w%ld", TRUST_DOMAIN, i);
        EVP_PKEY *key = NULL;
        if (csr_keygen("ec-p256", &key, &err) != MESH_OK)
            die("generating a key", &err);
        if (csr_create(key, id, &csrs[i], &err) != MESH_OK)
            die("creating a CSR", &err);
        EVP_PKEY_free(key);
        ids[i] = strdup(id);
        if (!ids[i]) {
            fprintf(stderr, "bench_issue: out of memory\n");
            exit(1);
        }
    }
    *csrs_out = csrs;
    *ids_out = ids;
}

static void free_csrs(char **csrs, char **ids, long n)
{
    for (long i = 0; i < n; i++) {
        free(csrs[i]);
        free(ids[i]);
    }
    free(csrs);
    free(ids);
}

/* ---- phases -------------------------------------------------------------------- */

static void *issue_worker(void *p)
{
    worker_arg *a = p;
    phase_ctx *c = a->ctx;
    for (;;) {
        long i = atomic_fetch_add(&c->next, 1);
        if (i >= c->n || atomic_load(&c->failed))
            break;
        ca_issue_req req = {.csr_pem = c->csrs[i], .authorised_id = c->ids[i], .actor = "bench"};
        ca_issued out;
        mesh_err err = {0};
        double t0 = now_s();
        int rc = ca_issue_svid(a->ca, a->st, &req, &out, &err);
        c->lat_ms[i] = (now_s() - t0) * 1e3;
        if (rc != MESH_OK) {
            int expected = 0;
            if (atomic_compare_exchange_strong(&c->failed, &expected, 1))
                c->first_err = err;
            break;
        }
        ca_issued_free(&out);
    }
    return NULL;
}

static void finish(phase_result *r, double *lat, long n, double wall, double cpu)
{
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    r->n = n;
    r->wall_s = wall;
    r->cpu_s = cpu;
    r->p50_ms = pct(lat, n, 50);
    r->p99_ms = pct(lat, n, 99);
    r->per_s = wall > 0 ? (double)n / wall : 0;
}

/* Issues every CSR once with `threads` threads, each with its own store
 * handle and CA, on the store at db_path. */
static phase_result run_issue(const char *name, const char *db_path, char **csrs, char **ids,
                              long n, int threads)
{
    phase_result r = {.name = name, .threads = threads};
    phase_ctx c = {.csrs = csrs, .ids = ids, .n = n};
    atomic_init(&c.next, 0);
    atomic_init(&c.failed, 0);
    c.lat_ms = calloc((size_t)n, sizeof *c.lat_ms);
    worker_arg args[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    if (!c.lat_ms) {
        fprintf(stderr, "bench_issue: out of memory\n");
        exit(1);
    }
    mesh_err err = {0};
    for (int t = 0; t < threads; t++) {
        args[t].ctx = &c;
        if (store_open(&args[t].st, db_path, &err) != MESH_OK)
            die("opening the store", &err);
        if (ca_load(args[t].st, &args[t].ca, &err) != MESH_OK)
            die("loading the CA", &err);
        /* Warm-up outside the clock: page cache, WAL file, lazily loaded
         * OpenSSL providers. Same CSRs: serials are random, so re-issuing
         * is valid. */
        for (int w = 0; w < WARMUP_ISSUES && w < n; w++) {
            ca_issue_req req = {.csr_pem = csrs[w], .authorised_id = ids[w], .actor = "bench"};
            ca_issued out;
            if (ca_issue_svid(args[t].ca, args[t].st, &req, &out, &err) != MESH_OK)
                die("warm-up issuance", &err);
            ca_issued_free(&out);
        }
    }
    double c0 = cpu_s(), t0 = now_s();
    for (int t = 0; t < threads; t++) {
        if (pthread_create(&tids[t], NULL, issue_worker, &args[t]) != 0) {
            fprintf(stderr, "bench_issue: cannot start a thread\n");
            exit(1);
        }
    }
    for (int t = 0; t < threads; t++)
        pthread_join(tids[t], NULL);
    double wall = now_s() - t0, cpu = cpu_s() - c0;
    if (atomic_load(&c.failed))
        die(name, &c.first_err);
    for (int t = 0; t < threads; t++) {
        ca_free(args[t].ca);
        store_close(args[t].st);
    }
    finish(&r, c.lat_ms, n, wall, cpu);
    free(c.lat_ms);
    return r;
}

/* ca_csr_check alone: parse + self-signature verify + SAN checks. */
static phase_result run_verify(char **csrs, char **ids, long n)
{
    phase_result r = {.name = "csr-check", .threads = 1};
    double *lat = calloc((size_t)n, sizeof *lat);
    if (!lat) {
        fprintf(stderr, "bench_issue: out of memory\n");
        exit(1);
    }
    mesh_err err = {0};
    double c0 = cpu_s(), t0 = now_s();
    for (long i = 0; i < n; i++) {
        double s = now_s();
        if (ca_csr_check(csrs[i], TRUST_DOMAIN, ids[i], &err) != MESH_OK)
            die("checking a CSR", &err);
        lat[i] = (now_s() - s) * 1e3;
    }
    finish(&r, lat, n, now_s() - t0, cpu_s() - c0);
    free(lat);
    return r;
}

/* The device's durable-write rate, independent of our code: 4 KiB written +
 * fdatasync, for FSYNC_REF_SECONDS (at least 20 rounds), two ways.
 * "overwrite": in place in a preallocated file, which is what a steady-state
 * WAL commit mostly does (the WAL is reused from its start after each
 * checkpoint). "append": the file grows, so each fdatasync also commits the
 * new size to the file system journal, as when the WAL or database grows.
 * A SQLite commit (WAL frames + fsync, a checkpoint now and then) sits
 * between the two. */
#define FSYNC_PROBE_BLOCKS 256

static void probe_die(const char *what, const char *path)
{
    fprintf(stderr, "bench_issue: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static phase_result run_fsync(const char *dir, long max_rounds, int append)
{
    phase_result r = {.name = append ? "fsync-app" : "fsync-ow", .threads = 1};
    char path[4096];
    path_join(path, sizeof path, dir, "fsync-probe");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        probe_die("cannot create", path);
    static char block[4096];
    memset(block, 'x', sizeof block);
    double *lat = calloc((size_t)max_rounds, sizeof *lat);
    if (!lat) {
        fprintf(stderr, "bench_issue: out of memory\n");
        exit(1);
    }
    if (!append) {
        for (int b = 0; b < FSYNC_PROBE_BLOCKS; b++)
            if (write(fd, block, sizeof block) != (ssize_t)sizeof block)
                probe_die("writing", path);
        if (fsync(fd) != 0)
            probe_die("fsync", path);
    }
    long i = 0;
    double c0 = cpu_s(), t0 = now_s();
    while (i < max_rounds && (i < 20 || now_s() - t0 < FSYNC_REF_SECONDS)) {
        double s = now_s();
        off_t off = (off_t)(append ? i : i % FSYNC_PROBE_BLOCKS) * (off_t)sizeof block;
        if (pwrite(fd, block, sizeof block, off) != (ssize_t)sizeof block || fdatasync(fd) != 0)
            probe_die("pwrite/fdatasync on", path);
        lat[i++] = (now_s() - s) * 1e3;
    }
    finish(&r, lat, i, now_s() - t0, cpu_s() - c0);
    close(fd);
    unlink(path);
    free(lat);
    return r;
}

/* ---- reporting ------------------------------------------------------------------- */

#define MAX_ROWS 8

typedef struct report_row {
    phase_result r;
    const char *where;  /* "disk", "tmpfs", "-" */
    int issue;          /* an issuance phase: has a ratio to the crypto ceiling */
    const char *key;    /* JSON key */
} report_row;

typedef struct report {
    report_row rows[MAX_ROWS];
    int n;
} report;

static void add_row(report *rep, phase_result r, const char *where, int issue, const char *key)
{
    if (rep->n >= MAX_ROWS)
        return;
    rep->rows[rep->n++] = (report_row){.r = r, .where = where, .issue = issue, .key = key};
}

static const char *fs_type(const char *dir)
{
    struct statfs s;
    if (statfs(dir, &s) != 0)
        return "unknown";
    switch ((unsigned long)s.f_type) {
    case 0x01021994UL: return "tmpfs";
    case 0xEF53UL: return "ext4";
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    case 0x794c7630UL: return "overlayfs";
    default: return "other";
    }
}

/* Ceiling for `threads` cores: each core does one CSR verify + one sign per SVID. */
static double ceiling(const bench_opts *o, int threads)
{
    if (o->ref_sign <= 0 || o->ref_verify <= 0)
        return 0;
    return (double)threads / (1.0 / o->ref_sign + 1.0 / o->ref_verify);
}

static void print_row(const bench_opts *o, const report_row *row)
{
    const phase_result *r = &row->r;
    double ceil_ = row->issue ? ceiling(o, r->threads) : 0;
    printf("  %-10s %-6s %2d  %7ld  %10.1f  %8.3f  %8.3f  %9.3f", r->name, row->where, r->threads,
           r->n, r->per_s, r->p50_ms, r->p99_ms, r->n ? r->cpu_s * 1e3 / (double)r->n : 0);
    if (ceil_ > 0)
        printf("  %6.3f", r->per_s / ceil_);
    printf("\n");
}

static void json_phase(FILE *f, const bench_opts *o, const report_row *row, int last)
{
    const phase_result *r = &row->r;
    double ceil_ = row->issue ? ceiling(o, r->threads) : 0;
    fprintf(f,
            "    \"%s\": {\"threads\": %d, \"n\": %ld, \"per_s\": %.1f, \"p50_ms\": %.3f, "
            "\"p99_ms\": %.3f, \"cpu_ms_per_op\": %.4f, \"ratio_to_ceiling\": %.4f}%s\n",
            row->key, r->threads, r->n, r->per_s, r->p50_ms, r->p99_ms,
            r->n ? r->cpu_s * 1e3 / (double)r->n : 0, ceil_ > 0 ? r->per_s / ceil_ : 0,
            last ? "" : ",");
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_issue --disk-dir DIR [--tmpfs-dir DIR] [--n N] [--threads T]\n"
            "                   [--ref-sign S --ref-verify V] [--json FILE] [--profile]\n"
            "  DIRs must exist and be empty; a store, CA key dir and probe file are made there.\n"
            "  --ref-sign/--ref-verify: `openssl speed ecdsap256` sign/s and verify/s.\n"
            "  --profile: only the single-threaded issuance phase (for callgrind).\n");
    exit(2);
}

static double parse_pos(const char *s, const char *flag)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0) {
        fprintf(stderr, "bench_issue: %s wants a non-negative number, got '%s'\n", flag, s);
        exit(2);
    }
    return v;
}

static void parse_opts(int argc, char **argv, bench_opts *o)
{
    enum { O_N = 1, O_THREADS, O_DISK, O_TMPFS, O_SIGN, O_VERIFY, O_JSON, O_PROFILE };
    static const struct option longs[] = {
        {"n", 1, NULL, O_N},           {"threads", 1, NULL, O_THREADS},
        {"disk-dir", 1, NULL, O_DISK}, {"tmpfs-dir", 1, NULL, O_TMPFS},
        {"ref-sign", 1, NULL, O_SIGN}, {"ref-verify", 1, NULL, O_VERIFY},
        {"json", 1, NULL, O_JSON},     {"profile", 0, NULL, O_PROFILE},
        {NULL, 0, NULL, 0},
    };
    *o = (bench_opts){.n = 2000, .threads = 2};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case O_N: o->n = (long)parse_pos(optarg, "--n"); break;
        case O_THREADS: o->threads = (int)parse_pos(optarg, "--threads"); break;
        case O_DISK: o->disk_dir = optarg; break;
        case O_TMPFS: o->tmpfs_dir = optarg; break;
        case O_SIGN: o->ref_sign = parse_pos(optarg, "--ref-sign"); break;
        case O_VERIFY: o->ref_verify = parse_pos(optarg, "--ref-verify"); break;
        case O_JSON: o->json_path = optarg; break;
        case O_PROFILE: o->profile = 1; break;
        default: usage();
        }
    }
    if (optind != argc || !o->disk_dir)
        usage();
    if (o->n < WARMUP_ISSUES || o->threads < 1 || o->threads > MAX_THREADS) {
        fprintf(stderr, "bench_issue: need --n >= %d and 1 <= --threads <= %d\n", WARMUP_ISSUES,
                MAX_THREADS);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    bench_opts o;
    parse_opts(argc, argv, &o);
    /* ca_issue_svid logs one info line per cert; at thousands per second the
     * terminal would be the benchmark. Warnings still show. */
    log_set_level(LOG_WARN);

    char disk_db[4096], tmpfs_db[4096];
    make_store(o.disk_dir, disk_db, sizeof disk_db);
    if (o.tmpfs_dir)
        make_store(o.tmpfs_dir, tmpfs_db, sizeof tmpfs_db);

    char **csrs, **ids;
    double g0 = now_s();
    make_csrs(o.n, &csrs, &ids);
    double gen_s = now_s() - g0;

    report rep = {0};
    if (o.profile) {
        add_row(&rep, run_issue("issue", disk_db, csrs, ids, o.n, 1), "disk", 1, "disk_1t");
        print_row(&o, &rep.rows[0]);
        free_csrs(csrs, ids, o.n);
        return 0;
    }
    add_row(&rep, run_verify(csrs, ids, o.n), "-", 0, "csr_check");
    add_row(&rep, run_issue("issue", disk_db, csrs, ids, o.n, 1), "disk", 1, "disk_1t");
    if (o.threads > 1)
        add_row(&rep, run_issue("issue", disk_db, csrs, ids, o.n, o.threads), "disk", 1,
                "disk_mt");
    if (o.tmpfs_dir) {
        add_row(&rep, run_issue("issue", tmpfs_db, csrs, ids, o.n, 1), "tmpfs", 1, "tmpfs_1t");
        if (o.threads > 1)
            add_row(&rep, run_issue("issue", tmpfs_db, csrs, ids, o.n, o.threads), "tmpfs", 1,
                    "tmpfs_mt");
    }
    add_row(&rep, run_fsync(o.disk_dir, o.n * 10, 0), "disk", 0, "fsync_overwrite");
    add_row(&rep, run_fsync(o.disk_dir, o.n * 10, 1), "disk", 0, "fsync_append");

    printf("issuance: %ld EC P-256 CSRs (generated in %.2f s, not timed); disk dir on %s%s%s\n",
           o.n, gen_s, fs_type(o.disk_dir), o.tmpfs_dir ? ", tmpfs dir on " : "",
           o.tmpfs_dir ? fs_type(o.tmpfs_dir) : "");
    if (o.ref_sign > 0 && o.ref_verify > 0)
        printf("reference: openssl speed ecdsap256 (1 core): %.0f sign/s, %.0f verify/s -> "
               "verify+sign ceiling %.0f/s per core\n",
               o.ref_sign, o.ref_verify, ceiling(&o, 1));
    printf("  %-10s %-6s %2s  %7s  %10s  %8s  %8s  %9s  %6s\n", "phase", "store", "th", "n",
           "ops/s", "p50 ms", "p99 ms", "cpu ms/op", "/ceil");
    for (int i = 0; i < rep.n; i++)
        print_row(&o, &rep.rows[i]);

    /* Cost split of one single-threaded issuance on disk. */
    const phase_result *chk = &rep.rows[0].r, *d1 = &rep.rows[1].r, *t1 = NULL;
    const phase_result *fs_ow = &rep.rows[rep.n - 2].r, *fs_app = &rep.rows[rep.n - 1].r;
    for (int i = 0; i < rep.n; i++)
        if (strcmp(rep.rows[i].key, "tmpfs_1t") == 0)
            t1 = &rep.rows[i].r;
    double per_disk = 1e3 / d1->per_s, per_chk = 1e3 / chk->per_s;
    double per_tmpfs = t1 ? 1e3 / t1->per_s : 0;
    if (t1) {
        printf("split of one issuance on disk (%.3f ms): CSR parse+verify %.3f ms, sign+encode+"
               "SQLite CPU %.3f ms, durability (disk - tmpfs) %.3f ms = %.0f%%\n",
               per_disk, per_chk, per_tmpfs - per_chk, per_disk - per_tmpfs,
               100.0 * (per_disk - per_tmpfs) / per_disk);
        printf("device: 4 KiB + fdatasync %.0f/s in place, %.0f/s appending; one issuance "
               "on disk = %.1f / %.1f of those\n",
               fs_ow->per_s, fs_app->per_s, fs_ow->per_s / d1->per_s, fs_app->per_s / d1->per_s);
    }

    if (o.json_path) {
        FILE *f = fopen(o.json_path, "w");
        if (!f) {
            fprintf(stderr, "bench_issue: cannot write %s: %s\n", o.json_path, strerror(errno));
            return 1;
        }
        fprintf(f, "{\n  \"n\": %ld,\n  \"disk_fs\": \"%s\",\n", o.n, fs_type(o.disk_dir));
        fprintf(f, "  \"ref\": {\"openssl_sign_per_s\": %.1f, \"openssl_verify_per_s\": %.1f, "
                   "\"ceiling_per_s_per_core\": %.1f},\n",
                o.ref_sign, o.ref_verify, ceiling(&o, 1));
        fprintf(f, "  \"split_ms\": {\"total_disk\": %.4f, \"csr_check\": %.4f, "
                   "\"sign_store_cpu\": %.4f, \"durability\": %.4f},\n",
                per_disk, per_chk, t1 ? per_tmpfs - per_chk : 0, t1 ? per_disk - per_tmpfs : 0);
        fprintf(f, "  \"phases\": {\n");
        for (int i = 0; i < rep.n; i++)
            json_phase(f, &o, &rep.rows[i], i == rep.n - 1);
        fprintf(f, "  }\n}\n");
        if (fclose(f) != 0) {
            fprintf(stderr, "bench_issue: writing %s failed\n", o.json_path);
            return 1;
        }
    }
    free_csrs(csrs, ids, o.n);
    return 0;
}
