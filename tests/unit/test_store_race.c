/* tests/unit/test_store_race.c — two meshd replicas racing on one store (issue 14), on
 * either backend (make unit-pg runs it against PostgreSQL): two threads, each with a store
 * handle (a connection) of its own as two replicas have, start every round at the same
 * instant (a barrier). One join token redeemed by both wins exactly once, every round;
 * one certificate serial inserted by both is stored once, the other gets EEXISTS. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "tests/unit/test_store_util.h"

#define ROUNDS 200

static tstore_env env;
static int64_t ca_id = 1;
static void setup(void) { tstore_setup_any(&env, 1); }
static void teardown(void) { tstore_teardown(&env); }
TestSuite(store_race, .init = setup, .fini = teardown, .timeout = 120);

typedef struct racer {
    mesh_store *st;
    pthread_barrier_t *go;
    int wins[ROUNDS];
    int other[ROUNDS];          /* a result that is neither a win nor the expected loss */
    int is_cert;
} racer;

static void token_of(int round, char hash[65])
{
    snprintf(hash, 65, "%064d", round + 1);
}

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_barrier_wait(r->go);
        mesh_err err = {0};
        int rc;
        if (r->is_cert) {
            char serial[41];
            store_cert c;
            tstore_cert_init(&c, serial, (unsigned)i + 1, TSTORE_ID_WEB, ca_id, 1000, 4000000000);
            rc = store_cert_insert(r->st, &c, &err);
            r->wins[i] = rc == MESH_OK;
            r->other[i] = rc != MESH_OK && rc != MESH_EEXISTS ? rc : 0;
        } else {
            char hash[65];
            token_of(i, hash);
            char *id = NULL;
            rc = store_token_consume(r->st, hash, (int64_t)time(NULL), &id, NULL, &err);
            free(id);
            r->wins[i] = rc == MESH_OK;
            r->other[i] = rc != MESH_OK && rc != MESH_EPERM ? rc : 0;
        }
    }
    return NULL;
}

static void run(int is_cert)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    racer *r = calloc(2, sizeof *r);
    cr_assert_not_null(r);
    mesh_err err = {0};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(store_open(&r[k].st, env.path, &err), MESH_OK, "%s", err.msg);
        r[k].go = &go;
        r[k].is_cert = is_cert;
    }
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        cr_assert_eq(pthread_create(&th[k], NULL, race, &r[k]), 0);
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    for (int i = 0; i < ROUNDS; i++) {
        cr_assert_eq(r[0].other[i], 0, "round %d: replica A failed with %d", i, r[0].other[i]);
        cr_assert_eq(r[1].other[i], 0, "round %d: replica B failed with %d", i, r[1].other[i]);
        cr_assert_eq(r[0].wins[i] + r[1].wins[i], 1, "round %d: %d winners", i,
                     r[0].wins[i] + r[1].wins[i]);
    }
    for (int k = 0; k < 2; k++)
        store_close(r[k].st);
    free(r);
    pthread_barrier_destroy(&go);
}

Test(store_race, one_token_at_two_replicas_wins_exactly_once)
{
    mesh_err err = {0};
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_OK, "%s",
                 err.msg);
    for (int i = 0; i < ROUNDS; i++) {
        char hash[65];
        token_of(i, hash);
        cr_assert_eq(store_token_add(env.st, hash, TSTORE_ID_WEB, "", (int64_t)time(NULL) + 3600,
                                     &err),
                     MESH_OK, "%s", err.msg);
    }
    run(0);
}

Test(store_race, one_serial_at_two_replicas_is_stored_once)
{
    ca_id = tstore_add_ca(env.st, "active", "01");
    run(1);
    store_cert *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_cert_list(env.st, NULL, 1, (int64_t)time(NULL), &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, ROUNDS, "one row per serial");
    store_cert_free_list(list, n);
}
