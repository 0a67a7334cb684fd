/* tests/unit/test_store_notify.c — store_notifier (store/store_notify.c) on either backend
 * (make unit-pg runs it on PostgreSQL too): a commit by another handle makes the
 * descriptor readable and drain report it; a read or nothing at all does not; on
 * PostgreSQL a rolled-back write and a notification for another schema are not a change
 * of this store, and a listener whose session was killed reconnects; on SQLite a write
 * to another file of the directory is not a change; an unknown --db is refused. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "tests/unit/test_store_util.h"

static tstore_env env;
static store_notifier *nt;

static void setup(void)
{
    tstore_setup_any(&env, 1);
    mesh_err err = {0};
    cr_assert_eq(store_notifier_open(env.path, &nt, &err), MESH_OK, "%s", err.msg);
}

static void teardown(void)
{
    store_notifier_close(nt);
    nt = NULL;
    tstore_teardown(&env);
}

TestSuite(store_notify, .init = setup, .fini = teardown, .timeout = 30);

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 when the notifier reports a change of this store within ms. */
static int changed_within(int ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        int64_t left = end - now_ms();
        if (left < 0)
            left = 0;
        struct pollfd p = {.fd = store_notifier_fd(nt), .events = POLLIN};
        cr_assert_geq(p.fd, 0, "the notifier has a descriptor");
        int r = poll(&p, 1, (int)left);
        if (r > 0) {
            mesh_err err = {0};
            int got = store_notifier_drain(nt, &err);
            cr_assert_geq(got, 0, "%s", err.msg);
            if (got > 0)
                return 1;
        }
        if (left == 0)
            return 0;
    }
}

/* A write committed by a handle of its own, as meshctl or another replica does. */
static void commit_elsewhere(const char *value)
{
    mesh_store *other = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_open(&other, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_setting_set(other, "test.key", value, &err), MESH_OK, "%s", err.msg);
    store_close(other);
}

Test(store_notify, a_commit_by_another_handle_is_notified)
{
    (void)changed_within(300); /* whatever setup wrote */
    commit_elsewhere("1");
    cr_assert(changed_within(2000), "no notification within 2 s of a commit");
    commit_elsewhere("2");
    cr_assert(changed_within(2000), "the second commit is notified too");
}

Test(store_notify, a_read_is_no_change)
{
    (void)changed_within(300);
    char *v = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_setting_get(env.st, "config_version", &v, &err), MESH_OK, "%s", err.msg);
    free(v);
    cr_assert_not(changed_within(300), "a read was reported as a change");
}

Test(store_notify, kind_names_the_mechanism)
{
    cr_assert_str_eq(store_notifier_kind(nt), tstore_on_pg() ? "listen" : "inotify");
    cr_assert_eq(store_notifier_after_commit(nt), tstore_on_pg());
}

static void pg_exec(const char *sql)
{
    PGconn *c = PQconnectdb(env.path);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

Test(store_notify, pg_rolled_back_write_is_no_change)
{
    if (!tstore_on_pg())
        cr_skip_test("PostgreSQL only");
    (void)changed_within(300);
    pg_exec("BEGIN; UPDATE settings SET value = value WHERE key = 'config_version'; ROLLBACK");
    cr_assert_not(changed_within(300), "a rolled-back write was notified");
    pg_exec("UPDATE settings SET value = value WHERE key = 'config_version'");
    cr_assert(changed_within(2000), "the trigger NOTIFYs a committed write");
}

Test(store_notify, pg_another_schema_is_no_change)
{
    if (!tstore_on_pg())
        cr_skip_test("PostgreSQL only");
    (void)changed_within(300);
    pg_exec("NOTIFY meshd_changes, 'some_other_store'");
    cr_assert_not(changed_within(300), "another schema's change was taken for ours");
}

Test(store_notify, pg_listener_reconnects_after_its_session_is_killed)
{
    if (!tstore_on_pg())
        cr_skip_test("PostgreSQL only");
    (void)changed_within(300);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
             "'%s' AND query = 'LISTEN meshd_changes' AND pid <> pg_backend_pid()",
             env.pg_db);
    pg_exec(sql);
    /* The broken session shows as readable (the server's error first, then
     * the end of the connection); draining it reports the loss. */
    mesh_err err = {0};
    int got = 0;
    for (int i = 0; i < 20 && got >= 0; i++) {
        struct pollfd p = {.fd = store_notifier_fd(nt), .events = POLLIN};
        cr_assert_gt(poll(&p, 1, 2000), 0, "the killed session is noticed");
        got = store_notifier_drain(nt, &err);
    }
    cr_assert_lt(got, 0, "the lost session is reported");
    cr_assert_not_null(strstr(err.msg, "lost its connection"), "%s", err.msg);
    cr_assert_eq(store_notifier_fd(nt), -1);
    cr_assert_eq(store_notifier_reconnect(nt, &err), MESH_OK, "%s", err.msg);
    commit_elsewhere("3");
    cr_assert(changed_within(2000), "notifications work again after the reconnect");
}

Test(store_notify, sqlite_other_files_of_the_directory_are_no_change)
{
    if (tstore_on_pg())
        cr_skip_test("SQLite only");
    (void)changed_within(300);
    char path[256];
    snprintf(path, sizeof path, "%s/unrelated.txt", env.dir);
    tstore_write_file(path, "x", 1);
    cr_assert_not(changed_within(300), "a write to another file was taken for a commit");
}

Test(store_notify, unknown_scheme_is_refused)
{
    store_notifier *n = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_notifier_open("mysql://127.0.0.1/mesh", &n, &err), MESH_EINVAL);
    cr_assert_null(n);
    cr_assert_not_null(strstr(err.msg, "unknown scheme"), "%s", err.msg);
    cr_assert_eq(store_notifier_open("", &n, &err), MESH_EINVAL);
}

Test(store_notify, pg_unreachable_server_is_named_without_password)
{
    store_notifier *n = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_notifier_open("postgres://u:hunter2@127.0.0.1:1/x", &n, &err), MESH_EBUSY);
    cr_assert_null(n);
    cr_assert_not_null(strstr(err.msg, "postgres://u:***@127.0.0.1:1/x"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "hunter2"), "%s", err.msg);
}
