/* tests/unit/test_store_gate.c — the in-process write gate (store/store_gate.c):
 * threads with their own handles on one file queue for write transactions
 * instead of sleeping in SQLite's busy handler, lose nothing, never wait for
 * themselves, do not block readers, release the gate on every way out of a
 * transaction, and a forked child gets gates of its own. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/unit/test_store_util.h"

static tstore_env env;

static void setup(void) { tstore_setup(&env, 1); }
static void teardown(void) { tstore_teardown(&env); }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static mesh_store *open_handle(void)
{
    mesh_store *st = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_open(&st, env.path, &err), MESH_OK, "%s", err.msg);
    return st;
}

static size_t audit_rows(mesh_store *st)
{
    store_audit_entry *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_audit_list(st, 100000, &list, &n, &err), MESH_OK, "%s", err.msg);
    store_audit_free_list(list, n);
    return n;
}

/* ---- many threads, nothing lost --------------------------------------------- */

#define N_THREADS 4
#define N_TX 40

typedef struct writer_arg {
    int id;
    int failures;
    char first_error[640];
} writer_arg;

/* Alternates the two gated shapes: an explicit store_begin .. store_commit
 * with an audit row and a resource (a savepoint inside), and a lone
 * store_resource_put (its own outermost write transaction). */
static void *writer(void *p)
{
    writer_arg *a = p;
    mesh_store *st = NULL;
    mesh_err err = {0};
    if (store_open(&st, env.path, &err) != MESH_OK) {
        a->failures++;
        snprintf(a->first_error, sizeof a->first_error, "%s", err.msg);
        return NULL;
    }
    for (int i = 0; i < N_TX; i++) {
        char name[32];
        int changed = 0, rc;
        snprintf(name, sizeof name, "svc-%d-%d", a->id, i);
        if (i % 2 == 0) {
            rc = store_begin(st, &err);
            if (rc == MESH_OK)
                rc = store_audit(st, "test", "gate", name, "", 1, &err);
            if (rc == MESH_OK)
                rc = store_resource_put(st, "service", name, name, "", &changed, &err);
            if (rc == MESH_OK)
                rc = store_commit(st, &err);
            else
                store_rollback(st);
        } else {
            rc = store_resource_put(st, "service", name, name, "", &changed, &err);
            if (rc == MESH_OK)
                rc = store_audit(st, "test", "gate", name, "", 1, &err);
        }
        if (rc != MESH_OK && a->failures++ == 0)
            snprintf(a->first_error, sizeof a->first_error, "%s: %s", name, err.msg);
    }
    store_close(st);
    return NULL;
}

Test(store_gate, threads_with_own_handles_lose_nothing, .init = setup, .fini = teardown,
     .timeout = 60)
{
    pthread_t t[N_THREADS];
    writer_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        args[i] = (writer_arg){.id = i};
        cr_assert_eq(pthread_create(&t[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(args[i].failures, 0, "thread %d: %d failures, first: %s", i,
                     args[i].failures, args[i].first_error);
    }
    cr_assert_eq(audit_rows(env.st), N_THREADS * N_TX);
    store_resource *res = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_resource_list(env.st, "service", &res, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, N_THREADS * N_TX);
    store_resource_free_list(res, n);
    cr_assert_eq(store_config_version(env.st), N_THREADS * N_TX,
                 "every change got its own config version");
}

/* ---- a waiter gets in right after the holder commits ------------------------ */

typedef struct begin_arg {
    mesh_store *st;
    int rc;
    int64_t waited_ms;
    char msg[600];
} begin_arg;

/* One explicit write transaction on the arg's handle, timed. */
static void *timed_begin(void *p)
{
    begin_arg *a = p;
    mesh_err err = {0};
    int64_t t0 = now_ms();
    a->rc = store_begin(a->st, &err);
    a->waited_ms = now_ms() - t0;
    if (a->rc == MESH_OK) {
        a->rc = store_audit(a->st, "test", "second", "", "", 1, &err);
        if (a->rc == MESH_OK)
            a->rc = store_commit(a->st, &err);
        else
            store_rollback(a->st);
    }
    snprintf(a->msg, sizeof a->msg, "%s", err.msg);
    return NULL;
}

Test(store_gate, waiter_enters_when_the_holder_commits, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_begin(env.st, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_audit(env.st, "test", "first", "", "", 1, &err), MESH_OK, "%s", err.msg);
    begin_arg a = {.st = open_handle()};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, timed_begin, &a), 0);
    sleep_ms(300);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
    pthread_join(t, NULL);
    cr_assert_eq(a.rc, MESH_OK, "%s", a.msg);
    cr_assert_geq(a.waited_ms, 200, "the second writer did not wait for the first (%lld ms)",
                  (long long)a.waited_ms);
    cr_assert_lt(a.waited_ms, 4000, "the second writer waited %lld ms",
                 (long long)a.waited_ms);
    cr_assert_eq(audit_rows(env.st), 2);
    store_close(a.st);
}

/* ---- first come, first served; a waiter that gives up leaves the queue ---- */

typedef struct queued_arg {
    mesh_store *st;
    const char *name;
    int rc;
    char msg[600];
} queued_arg;

/* Writes one audit row named after the thread in its own transaction. */
static void *queued_writer(void *p)
{
    queued_arg *a = p;
    mesh_err err = {0};
    a->rc = store_begin(a->st, &err);
    if (a->rc == MESH_OK) {
        a->rc = store_audit(a->st, a->name, "queued", "", "", 1, &err);
        if (a->rc == MESH_OK)
            a->rc = store_commit(a->st, &err);
        else
            store_rollback(a->st);
    }
    snprintf(a->msg, sizeof a->msg, "%s", err.msg);
    return NULL;
}

Test(store_gate, waiters_enter_in_arrival_order, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_begin(env.st, &err), MESH_OK, "%s", err.msg);
    const char *names[] = {"first", "second", "third"};
    queued_arg args[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (queued_arg){.st = open_handle(), .name = names[i]};
        cr_assert_eq(pthread_create(&t[i], NULL, queued_writer, &args[i]), 0);
        sleep_ms(100); /* each is queued before the next one starts */
    }
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(args[i].rc, MESH_OK, "%s: %s", names[i], args[i].msg);
        store_close(args[i].st);
    }
    store_audit_entry *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_audit_list(env.st, 10, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 3);
    /* newest first */
    cr_assert_str_eq(list[0].actor, "third");
    cr_assert_str_eq(list[1].actor, "second");
    cr_assert_str_eq(list[2].actor, "first");
    store_audit_free_list(list, n);
}

Test(store_gate, waiter_times_out_with_busy_and_leaves_the_queue, .init = setup,
     .fini = teardown, .timeout = 30)
{
    mesh_err err = {0};
    cr_assert_eq(store_begin(env.st, &err), MESH_OK, "%s", err.msg);
    queued_arg a = {.st = open_handle(), .name = "patient"};
    pthread_t t;
    int64_t t0 = now_ms();
    cr_assert_eq(pthread_create(&t, NULL, queued_writer, &a), 0);
    pthread_join(t, NULL); /* the holder never commits while it waits */
    int64_t took = now_ms() - t0;
    cr_assert_eq(a.rc, MESH_EBUSY, "%s", a.msg);
    cr_assert(strstr(a.msg, "another thread of this process held the store's write lock"), "%s",
              a.msg);
    cr_assert_geq(took, 4500, "gave up after %lld ms", (long long)took);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
    /* The timed-out waiter is gone from the queue: the next writer walks in. */
    t0 = now_ms();
    cr_assert_eq(pthread_create(&t, NULL, queued_writer, &a), 0);
    pthread_join(t, NULL);
    cr_assert_eq(a.rc, MESH_OK, "%s", a.msg);
    cr_assert_lt(now_ms() - t0, 1000, "the gate stayed blocked by the waiter that gave up");
    cr_assert_eq(audit_rows(env.st), 1);
    store_close(a.st);
}

/* ---- every way out of a transaction releases the gate ----------------------- */

Test(store_gate, rollback_close_and_failed_commit_release, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    mesh_store *other = open_handle();

    /* rollback */
    cr_assert_eq(store_begin(env.st, &err), MESH_OK, "%s", err.msg);
    store_rollback(env.st);
    int64_t t0 = now_ms();
    cr_assert_eq(store_begin(other, &err), MESH_OK, "%s", err.msg);
    cr_assert_lt(now_ms() - t0, 1000, "gate still held after rollback");
    cr_assert_eq(store_commit(other, &err), MESH_OK, "%s", err.msg);

    /* close with an open transaction (rolled back by store_close) */
    mesh_store *doomed = open_handle();
    cr_assert_eq(store_begin(doomed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_audit(doomed, "test", "lost", "", "", 1, &err), MESH_OK, "%s", err.msg);
    store_close(doomed);
    t0 = now_ms();
    cr_assert_eq(store_begin(other, &err), MESH_OK, "%s", err.msg);
    cr_assert_lt(now_ms() - t0, 1000, "gate still held after closing a handle mid-transaction");
    cr_assert_eq(store_commit(other, &err), MESH_OK, "%s", err.msg);

    /* a write op that fails inside its own transaction (nothing to delete) */
    cr_assert_eq(store_resource_delete(env.st, "service", "absent", &err), MESH_ENOTFOUND);
    t0 = now_ms();
    cr_assert_eq(store_begin(other, &err), MESH_OK, "%s", err.msg);
    cr_assert_lt(now_ms() - t0, 1000, "gate still held after a failed write");
    cr_assert_eq(store_commit(other, &err), MESH_OK, "%s", err.msg);

    /* commit without a transaction is still an error, and does not unbalance the gate */
    cr_assert_eq(store_commit(env.st, &err), MESH_EINVAL);
    cr_assert_eq(store_begin(env.st, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_begin(env.st, &err), MESH_EINVAL, "nested begin is still refused");
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(audit_rows(env.st), 0, "the closed handle's row was rolled back");
    store_close(other);
}

/* ---- readers are not gated -------------------------------------------------- */

typedef struct read_arg {
    mesh_store *st;
    size_t rows;
    int64_t took_ms;
} read_arg;

static void *timed_read(void *p)
{
    read_arg *a = p;
    int64_t t0 = now_ms();
    store_audit_entry *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    if (store_audit_list(a->st, 100, &list, &n, &err) == MESH_OK)
        store_audit_free_list(list, n);
    a->rows = n;
    a->took_ms = now_ms() - t0;
    return NULL;
}

Test(store_gate, readers_do_not_wait_for_a_writer, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_begin(env.st, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_audit(env.st, "test", "uncommitted", "", "", 1, &err), MESH_OK);
    read_arg a = {.st = open_handle()};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, timed_read, &a), 0);
    pthread_join(t, NULL);
    cr_assert_lt(a.took_ms, 1000, "a read waited %lld ms for the writer", (long long)a.took_ms);
    cr_assert_eq(a.rows, 0, "a reader saw an uncommitted row");
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
    store_close(a.st);
}

/* ---- one thread, two handles: no self-deadlock ------------------------------ */

/* The thread already inside the gate through handle 1 must not queue behind
 * itself on handle 2: it meets SQLite's lock and gets MESH_EBUSY after the
 * busy timeout, as before the gate existed, instead of hanging. */
Test(store_gate, same_thread_second_handle_gets_busy_not_stuck, .init = setup,
     .fini = teardown, .timeout = 30)
{
    mesh_err err = {0};
    mesh_store *second = open_handle();
    cr_assert_eq(store_begin(env.st, &err), MESH_OK, "%s", err.msg);
    int64_t t0 = now_ms();
    cr_assert_eq(store_begin(second, &err), MESH_EBUSY);
    int64_t took = now_ms() - t0;
    cr_assert(strstr(err.msg, "write lock"), "%s", err.msg);
    cr_assert_lt(took, 15000, "took %lld ms", (long long)took);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
    /* and the gate was not left held by the failed begin */
    cr_assert_eq(store_begin(second, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_commit(second, &err), MESH_OK, "%s", err.msg);
    store_close(second);
}

/* ---- fork: a child's handles get a gate of their own ---------------------- */

/* The parent has used the gate (and keeps its handle open, outside any
 * transaction: SQLite itself does not support forking with a transaction
 * open). A forked child opens its own handle and writes while the parent
 * writes too: the child's registry is usable (not left locked) and its gate
 * is its own, so both sides only meet at SQLite's lock. */
Test(store_gate, forked_child_writes_alongside_parent, .init = setup, .fini = teardown,
     .timeout = 30)
{
    mesh_err err = {0};
    cr_assert_eq(store_begin(env.st, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_audit(env.st, "parent", "before-fork", "", "", 1, &err), MESH_OK);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        mesh_store *st = NULL;
        mesh_err e = {0};
        if (store_open(&st, env.path, &e) != MESH_OK)
            _exit(1);
        for (int i = 0; i < 20; i++) {
            if (store_begin(st, &e) != MESH_OK ||
                store_audit(st, "child", "write", "", "", 1, &e) != MESH_OK ||
                store_commit(st, &e) != MESH_OK) {
                fprintf(stderr, "child: %s\n", e.msg);
                _exit(2);
            }
        }
        store_close(st);
        _exit(0);
    }
    mesh_store *second = open_handle();
    for (int i = 0; i < 20; i++) {
        mesh_store *h = i % 2 ? second : env.st;
        cr_assert_eq(store_begin(h, &err), MESH_OK, "%s", err.msg);
        cr_assert_eq(store_audit(h, "parent", "write", "", "", 1, &err), MESH_OK, "%s", err.msg);
        cr_assert_eq(store_commit(h, &err), MESH_OK, "%s", err.msg);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status 0x%x)",
              status);
    cr_assert_eq(audit_rows(env.st), 41);
    store_close(second);
}
