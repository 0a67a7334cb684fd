/* tests/unit/test_store_concurrency.c — several processes on one store file:
 * racing token redemption (exactly one winner per token), concurrent writers
 * (nothing lost, config version counts every change), concurrent creation. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/unit/test_store_util.h"

static tstore_env env;

static void setup(void) { tstore_setup_any(&env, 1); }
static void setup_empty(void) { tstore_setup(&env, 0); }
static void teardown(void) { tstore_teardown(&env); }

/* Start line for forked workers: each reports ready, then all wait until the
 * parent closes the "go" pipe, so their work really overlaps. */
typedef struct barrier {
    int ready[2];
    int go[2];
} barrier;

static void barrier_init(barrier *b)
{
    cr_assert_eq(pipe(b->ready), 0);
    cr_assert_eq(pipe(b->go), 0);
}

/* In a child. */
static void barrier_wait(barrier *b)
{
    char c = 'r', x;
    close(b->go[1]);
    close(b->ready[0]);
    if (write(b->ready[1], &c, 1) != 1)
        _exit(90);
    if (read(b->go[0], &x, 1) != 0)   /* EOF = go */
        _exit(91);
}

/* In the parent: waits for n children to be ready, then releases them. */
static void barrier_release(barrier *b, int n)
{
    close(b->ready[1]);
    close(b->go[0]);
    for (int i = 0; i < n; i++) {
        char c;
        cr_assert_eq(read(b->ready[0], &c, 1), 1, "worker died before the start line");
    }
    close(b->go[1]);
    close(b->ready[0]);
}

static void wait_ok(pid_t pid)
{
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker failed (status 0x%x)",
              status);
}

#define N_TOKENS 40

Test(store_concurrency, token_redeemed_once_across_processes, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int64_t now = (int64_t)time(NULL);
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_OK);
    cr_assert_eq(store_begin(env.st, &err), MESH_OK);
    for (unsigned i = 0; i < N_TOKENS; i++) {
        char h[65];
        tstore_hex64(1000 + i, h);
        cr_assert_eq(store_token_add(env.st, h, TSTORE_ID_WEB, "", now + 3600, &err), MESH_OK, "%s",
                     err.msg);
    }
    cr_assert_eq(store_commit(env.st, &err), MESH_OK);
    store_close(env.st);
    env.st = NULL;

    barrier b;
    barrier_init(&b);
    int results[2][2];
    pid_t pids[2];
    for (int w = 0; w < 2; w++) {
        cr_assert_eq(pipe(results[w]), 0);
        pids[w] = fork();
        cr_assert_neq(pids[w], -1);
        if (pids[w] == 0) {
            close(results[w][0]);
            mesh_store *st = NULL;
            if (store_open(&st, env.path, NULL) != MESH_OK)
                _exit(80);
            barrier_wait(&b);
            for (unsigned i = 0; i < N_TOKENS; i++) {
                char h[65], *id = NULL, r;
                tstore_hex64(1000 + i, h);
                int rc = store_token_consume(st, h, now, &id, NULL, NULL);
                r = rc == MESH_OK ? 'W' : rc == MESH_EPERM ? 'L' : 'E';
                if (rc == MESH_OK && strcmp(id, TSTORE_ID_WEB) != 0)
                    r = 'X';
                free(id);
                if (write(results[w][1], &r, 1) != 1)
                    _exit(81);
            }
            store_close(st);
            _exit(0);
        }
        close(results[w][1]);
    }
    barrier_release(&b, 2);

    char got[2][N_TOKENS];
    for (int w = 0; w < 2; w++) {
        size_t have = 0;
        while (have < N_TOKENS) {
            ssize_t r = read(results[w][0], got[w] + have, N_TOKENS - have);
            cr_assert_gt(r, 0, "worker %d stopped after %zu tokens", w, have);
            have += (size_t)r;
        }
        close(results[w][0]);
        wait_ok(pids[w]);
    }
    for (int i = 0; i < N_TOKENS; i++) {
        int winners = (got[0][i] == 'W') + (got[1][i] == 'W');
        int losers = (got[0][i] == 'L') + (got[1][i] == 'L');
        cr_assert_eq(winners, 1, "token %d: %c/%c", i, got[0][i], got[1][i]);
        cr_assert_eq(losers, 1, "token %d: %c/%c", i, got[0][i], got[1][i]);
    }
}

#define N_WRITES 40

Test(store_concurrency, two_writers_lose_nothing, .init = setup, .fini = teardown)
{
    int64_t ca = tstore_add_ca(env.st, "active", "01");
    barrier b;
    barrier_init(&b);
    pid_t pids[2];
    for (int w = 0; w < 2; w++) {
        pids[w] = fork();
        cr_assert_neq(pids[w], -1);
        if (pids[w] == 0) {
            mesh_store *st = NULL;
            mesh_err err = {0};
            if (store_open(&st, env.path, &err) != MESH_OK)
                _exit(80);
            barrier_wait(&b);
            for (unsigned i = 0; i < N_WRITES; i++) {
                char name[32], serial[41];
                snprintf(name, sizeof name, "svc-%d-%u", w, i);
                store_cert c;
                tstore_cert_init(&c, serial, (unsigned)w * 1000 + i, TSTORE_ID_WEB, ca, 1000,
                                 90000);
                int changed = 0;
                if (store_audit(st, "meshd", "cert.issue", name, "", 1, &err) != MESH_OK ||
                    store_resource_put(st, "service", name, name, "", &changed, &err) != MESH_OK ||
                    !changed || store_cert_insert(st, &c, &err) != MESH_OK) {
                    fprintf(stderr, "worker %d op %u: %s\n", w, i, err.msg);
                    _exit(1);
                }
            }
            store_close(st);
            _exit(0);
        }
    }
    barrier_release(&b, 2);
    wait_ok(pids[0]);
    wait_ok(pids[1]);

    mesh_err err = {0};
    store_audit_entry *audit = NULL;
    size_t n = 0;
    cr_assert_eq(store_audit_list(env.st, 10000, &audit, &n, &err), MESH_OK);
    cr_assert_eq(n, 2 * N_WRITES);
    store_audit_free_list(audit, n);
    store_resource *res = NULL;
    cr_assert_eq(store_resource_list(env.st, "service", &res, &n, &err), MESH_OK);
    cr_assert_eq(n, 2 * N_WRITES);
    /* Every change got its own version: no two writers read the same counter. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            cr_assert_neq(res[i].version, res[j].version, "%s and %s share version %lld",
                          res[i].name, res[j].name, (long long)res[i].version);
    store_resource_free_list(res, n);
    cr_assert_eq(store_config_version(env.st), 2 * N_WRITES);
    store_cert *certs = NULL;
    cr_assert_eq(store_cert_list(env.st, NULL, 1, 0, &certs, &n, &err), MESH_OK);
    cr_assert_eq(n, 2 * N_WRITES);
    store_cert_free_list(certs, n);
}

Test(store_concurrency, simultaneous_first_open, .init = setup_empty, .fini = teardown)
{
    for (int round = 0; round < 3; round++) {
        char path[160];
        snprintf(path, sizeof path, "%s/race-%d.db", env.dir, round);
        barrier b;
        barrier_init(&b);
        pid_t pids[2];
        for (int w = 0; w < 2; w++) {
            pids[w] = fork();
            cr_assert_neq(pids[w], -1);
            if (pids[w] == 0) {
                mesh_store *st = NULL;
                mesh_err err = {0};
                barrier_wait(&b);
                store_open_opts create = {.create = 1};
                if (store_open_with(&st, path, &create, &err) != MESH_OK) {
                    fprintf(stderr, "worker %d: %s\n", w, err.msg);
                    _exit(1);
                }
                int ok = store_audit(st, "meshd", "start", "", "", 1, &err) == MESH_OK;
                store_close(st);
                _exit(ok ? 0 : 2);
            }
        }
        barrier_release(&b, 2);
        wait_ok(pids[0]);
        wait_ok(pids[1]);
        mesh_store *st = NULL;
        mesh_err err = {0};
        cr_assert_eq(store_open(&st, path, &err), MESH_OK, "%s", err.msg);
        cr_assert_eq(store_schema_version(st), store_latest_schema_version());
        store_audit_entry *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(st, 10, &list, &n, &err), MESH_OK);
        cr_assert_eq(n, 2);
        store_audit_free_list(list, n);
        store_close(st);
    }
}
