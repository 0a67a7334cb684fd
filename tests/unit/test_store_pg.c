/* tests/unit/test_store_pg.c — what only the PostgreSQL backend does (run by
 * make unit-pg; skipped without MESH_TEST_PG_URL): refusing an empty database
 * unless asked to create, another application's tables and a newer schema;
 * concurrent creators migrating once; the password kept out of store_path and
 * messages; a lost connection failing with EBUSY and coming back by itself;
 * a failed statement inside a transaction leaving it usable; a commit by
 * another handle noticed by store_data_version; the SQLite-only operations
 * refused with advice. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/unit/test_store_util.h"

static tstore_env env;

static void setup_empty(void)
{
    if (!tstore_on_pg())
        cr_skip_test("needs MESH_TEST_PG_URL (make unit-pg)");
    tstore_setup_any(&env, 0);
}
static void setup_open(void)
{
    if (!tstore_on_pg())
        cr_skip_test("needs MESH_TEST_PG_URL (make unit-pg)");
    tstore_setup_any(&env, 1);
}
static void teardown(void) { tstore_teardown(&env); }

static const store_open_opts create = {.create = 1};

/* Runs sql in the test's schema (env.path) on a connection of its own. */
static void pg_exec_in_store(const char *sql)
{
    PGconn *c = PQconnectdb(env.path);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

TestSuite(store_pg, .init = setup_empty, .fini = teardown);

Test(store_pg, empty_database_is_created_only_when_asked)
{
    mesh_store *st = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_open(&st, env.path, &err), MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "holds no meshd store"), "%s", err.msg);
    cr_assert_null(st);
    cr_assert_eq(store_open_with(&st, env.path, &create, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_backend_name(st), "postgres");
    cr_assert_eq(store_schema_version(st), store_latest_schema_version());
    store_close(st);
    st = NULL;
    cr_assert_eq(store_open(&st, env.path, &err), MESH_OK, "the created store reopens: %s",
                 err.msg);
    store_close(st);
}

Test(store_pg, another_applications_tables_are_refused)
{
    pg_exec_in_store("CREATE TABLE customers (id int)");
    mesh_store *st = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_open_with(&st, env.path, &create, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "another application"), "%s", err.msg);
    cr_assert_null(st);
}

Test(store_pg, newer_schema_is_refused)
{
    mesh_store *st = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_open_with(&st, env.path, &create, &err), MESH_OK, "%s", err.msg);
    store_close(st);
    st = NULL;
    pg_exec_in_store("UPDATE meshd_schema SET version = 999");
    cr_assert_eq(store_open(&st, env.path, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "newer than this meshd"), "%s", err.msg);
}

Test(store_pg, simultaneous_creators_migrate_once)
{
    enum { WORKERS = 4 };
    pid_t pids[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        cr_assert_geq(pids[w], 0);
        if (pids[w] == 0) {
            mesh_store *st = NULL;
            int rc = store_open_with(&st, env.path, &create, NULL);
            int ok = rc == MESH_OK && store_schema_version(st) == store_latest_schema_version();
            store_close(st);
            _exit(ok ? 0 : 1);
        }
    }
    for (int w = 0; w < WORKERS; w++) {
        int status = 0;
        cr_assert_eq(waitpid(pids[w], &status, 0), pids[w]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "creator %d failed", w);
    }
    mesh_store *st = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_open(&st, env.path, &err), MESH_OK, "%s", err.msg);
    char *v = NULL;
    cr_assert_eq(store_setting_get(st, "config_version", &v, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(v, "0", "migration 0 -> 1 ran once");
    free(v);
    store_close(st);
}

Test(store_pg, password_stays_out_of_path_and_messages)
{
    /* 127.0.0.1:1: nothing listens there. */
    mesh_store *st = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_open(&st, "postgres://meshd:hunter2@127.0.0.1:1/mesh", &err), MESH_EBUSY);
    cr_assert_null(strstr(err.msg, "hunter2"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "postgres://meshd:***@127.0.0.1:1/mesh"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "cannot connect"), "%s", err.msg);
}

Test(store_pg, lost_connection_is_ebusy_then_recovers, .init = setup_open)
{
    mesh_err err = {0};
    cr_assert_eq(store_setting_set(env.st, "trust_domain", "example.org", &err), MESH_OK, "%s",
                 err.msg);
    /* The server ends our session, as a restart or a failover would. */
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE application_name = '%s' AND pid <> pg_backend_pid()",
             env.pg_db);
    pg_exec_in_store(sql);
    char *v = NULL;
    int rc = store_setting_get(env.st, "trust_domain", &v, &err);
    if (rc != MESH_OK) {
        cr_assert_eq(rc, MESH_EBUSY, "a lost connection is temporary: %s", err.msg);
        cr_assert_not_null(strstr(err.msg, "UNAVAILABLE"), "%s", err.msg);
        rc = store_setting_get(env.st, "trust_domain", &v, &err);
    }
    cr_assert_eq(rc, MESH_OK, "the next call reconnects: %s", err.msg);
    cr_assert_str_eq(v, "example.org");
    free(v);
}

Test(store_pg, failed_statement_leaves_the_transaction_usable, .init = setup_open)
{
    mesh_err err = {0};
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_eq(store_begin(env.st, &err), MESH_OK, "%s", err.msg);
    /* A duplicate inside the transaction fails alone, as in SQLite ... */
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_EEXISTS);
    /* ... and the transaction goes on and commits. */
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_DB, "", "", &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
    int64_t n = 0;
    cr_assert_eq(store_registration_count(env.st, TSTORE_ID_DB, &n, &err), MESH_OK);
    cr_assert_eq(n, 1);
}

Test(store_pg, data_version_sees_other_handles_commits, .init = setup_open)
{
    mesh_store *other = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_open(&other, env.path, &err), MESH_OK, "%s", err.msg);
    int64_t v1 = store_data_version(env.st);
    cr_assert_geq(v1, 0);
    int changed = 0;
    cr_assert_eq(store_resource_put(other, "service", "web", "name: web\n", "m.yaml:1", &changed,
                                     &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_neq(store_data_version(env.st), v1, "commit by another handle not noticed");
    cr_assert_eq(store_config_version(env.st), 1);
    store_close(other);
}

Test(store_pg, sqlite_only_operations_are_refused_with_advice, .init = setup_open)
{
    mesh_err err = {0};
    store_backup_info info;
    cr_assert_eq(store_backup(env.st, "/tmp/never-written.db", 0, &info, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "pg_dump"), "%s", err.msg);
    store_check_report r;
    cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_EINVAL);
    store_check_report_free(&r);
    store_restore_info ri;
    cr_assert_eq(store_restore(env.path, "/tmp/x.db", 0, &ri, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "pg_restore"), "%s", err.msg);
}
