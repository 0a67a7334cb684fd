/* tests/unit/test_store_backup.c — `meshctl store backup` and `store restore`:
 * a consistent online copy while another process keeps writing, a
 * self-contained 0600 file recorded in the witness, and the refusals that keep
 * a restore from doing harm (store in use, another store's backup, a damaged
 * backup, the store's own files as a destination). */
#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/unit/test_store_util.h"

static tstore_env env;

static void setup(void) { tstore_setup(&env, 1); }
static void teardown(void) { tstore_teardown(&env); }

static void in_dir(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", env.dir, name);
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static const char *raw_text(const char *path, const char *sql, char *out, size_t len)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    snprintf(out, len, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

static void add_certs(mesh_store *st, int64_t ca, unsigned first, int n)
{
    mesh_err err = {0};
    for (int i = 0; i < n; i++) {
        store_cert c;
        char serial[41];
        tstore_cert_init(&c, serial, first + (unsigned)i, TSTORE_ID_WEB, ca, 1000 + i,
                         5000000000);
        cr_assert_eq(store_cert_insert(st, &c, &err), MESH_OK, "%s", err.msg);
    }
}

Test(store_backup, online_copy_is_consistent_and_recorded, .init = setup, .fini = teardown)
{
    int64_t ca = tstore_add_ca(env.st, "active", "01");
    add_certs(env.st, ca, 1, 50);
    /* Another process keeps issuing while the backup runs. */
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        mesh_store *st = NULL;
        if (store_open(&st, env.path, NULL) != MESH_OK)
            _exit(1);
        for (unsigned i = 0; i < 400; i++) {
            store_cert c;
            char serial[41];
            tstore_cert_init(&c, serial, 10000 + i, TSTORE_ID_DB, ca, 1000, 5000000000);
            if (store_cert_insert(st, &c, NULL) != MESH_OK)
                _exit(2);
        }
        store_close(st);
        _exit(0);
    }
    char dest[200];
    mesh_err err = {0};
    store_backup_info info;
    for (int round = 0; round < 5; round++) {
        snprintf(dest, sizeof dest, "%s/b%d.db", env.dir, round);
        cr_assert_eq(store_backup(env.st, dest, 0, &info, &err), MESH_OK, "%s", err.msg);
        /* One snapshot: its counter matches the rows it holds (each cert
         * insert bumps the counter once; nothing else writes meanwhile). */
        static const char offset[] =
            "SELECT seq - (SELECT count(*) FROM certs) FROM store_integrity";
        cr_assert_geq(raw_int(dest, "SELECT count(*) FROM certs"), 50);
        cr_assert_eq(raw_int(dest, "SELECT seq FROM store_integrity"), info.seq);
        cr_assert_eq(raw_int(dest, offset), raw_int(env.path, offset),
                     "backup counter and rows disagree");
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer failed (%d)", status);

    /* Self-contained (no -wal needed), private, checked, recorded. */
    char mode[32];
    cr_assert_str_eq(raw_text(dest, "PRAGMA journal_mode", mode, sizeof mode), "delete");
    cr_assert_str_eq(raw_text(dest, "PRAGMA integrity_check", mode, sizeof mode), "ok");
    struct stat sb;
    cr_assert_eq(stat(dest, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "backup mode %o", (unsigned)(sb.st_mode & 0777));
    cr_assert_eq(info.bytes, (int64_t)sb.st_size);
    cr_assert_eq(info.path[0], '/');
    store_check_report r;
    cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(r.backup_path, info.path);
    cr_assert_eq(r.backup_seq, info.seq);
    store_check_report_free(&r);
    char partial[220];
    snprintf(partial, sizeof partial, "%s.partial-%d", dest, (int)getpid());
    cr_assert_not(tstore_file_exists(partial), "temporary file left behind");
}

Test(store_backup, refuses_to_clobber, .init = setup, .fini = teardown)
{
    char dest[200];
    in_dir(dest, sizeof dest, "b.db");
    mesh_err err = {0};
    store_backup_info info;
    cr_assert_eq(store_backup(env.st, dest, 0, &info, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_backup(env.st, dest, 0, &info, &err), MESH_EEXISTS);
    cr_assert(strstr(err.msg, "--overwrite"), "%s", err.msg);
    cr_assert_eq(store_backup(env.st, dest, 1, &info, &err), MESH_OK, "%s", err.msg);
    /* Never onto the store's own files. */
    cr_assert_eq(store_backup(env.st, env.path, 1, &info, &err), MESH_EINVAL);
    char own[200];
    snprintf(own, sizeof own, "%s-witness", env.path);
    cr_assert_eq(store_backup(env.st, own, 1, &info, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "own file"), "%s", err.msg);
    char nodir[200];
    in_dir(nodir, sizeof nodir, "no/such/dir/b.db");
    cr_assert_eq(store_backup(env.st, nodir, 0, &info, &err), MESH_ENOTFOUND, "%s", err.msg);
    cr_assert_eq(store_backup(env.st, "", 0, &info, &err), MESH_EINVAL);
}

Test(store_backup, restore_needs_the_store_to_itself, .init = setup, .fini = teardown)
{
    char dest[200];
    in_dir(dest, sizeof dest, "b.db");
    mesh_err err = {0};
    store_backup_info info;
    cr_assert_eq(store_backup(env.st, dest, 0, &info, &err), MESH_OK, "%s", err.msg);
    store_restore_info ri;
    cr_assert_eq(store_restore(env.path, dest, 0, &ri, &err), MESH_EBUSY, "%s", err.msg);
    cr_assert(strstr(err.msg, "stop meshd"), "%s", err.msg);
    store_close(env.st);
    env.st = NULL;
    cr_assert_eq(store_restore(env.path, dest, 0, &ri, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_restore(env.path, env.path, 0, &ri, &err), MESH_EINVAL);
}

Test(store_backup, restore_refuses_foreign_or_damaged_backups, .init = setup, .fini = teardown)
{
    int64_t ca = tstore_add_ca(env.st, "active", "01");
    add_certs(env.st, ca, 1, 30);
    store_close(env.st);
    env.st = NULL;
    mesh_err err = {0};
    store_restore_info ri;

    /* Another store's backup. */
    tstore_env other;
    tstore_setup(&other, 1);
    char foreign[200];
    in_dir(foreign, sizeof foreign, "foreign.db");
    store_backup_info info;
    cr_assert_eq(store_backup(other.st, foreign, 0, &info, &err), MESH_OK, "%s", err.msg);
    tstore_teardown(&other);
    cr_assert_eq(store_restore(env.path, foreign, 0, &ri, &err), MESH_EINVAL, "%s", err.msg);
    cr_assert(strstr(err.msg, "another store"), "%s", err.msg);
    cr_assert(strstr(err.msg, "--force"), "%s", err.msg);

    /* Not a store, and a damaged copy of ours. */
    char junk[200];
    in_dir(junk, sizeof junk, "junk.db");
    tstore_write_file(junk, "hello", 5);
    cr_assert_neq(store_restore(env.path, junk, 0, &ri, &err), MESH_OK);
    char bad[200];
    in_dir(bad, sizeof bad, "bad.db");
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_backup(env.st, bad, 0, &info, &err), MESH_OK, "%s", err.msg);
    store_close(env.st);
    env.st = NULL;
    int64_t page = raw_int(bad, "SELECT pageno FROM dbstat WHERE name = 'certs_spiffe_id' "
                                "AND pagetype = 'leaf' LIMIT 1");
    size_t len;
    unsigned char *bytes = tstore_read_file(bad, &len);
    bytes[(page - 1) * 4096 + 4000] ^= 1;
    tstore_write_file(bad, bytes, len);
    free(bytes);
    cr_assert_eq(store_restore(env.path, bad, 0, &ri, &err), MESH_ECORRUPT, "%s", err.msg);
    cr_assert(strstr(err.msg, "integrity_check"), "%s", err.msg);
    /* None of this touched the store. */
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(raw_int(env.path, "SELECT count(*) FROM certs"), 30);

    /* --force takes another store's backup, deliberately. */
    store_close(env.st);
    env.st = NULL;
    cr_assert_eq(store_restore(env.path, foreign, 1, &ri, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(raw_int(env.path, "SELECT count(*) FROM certs"), 0);
}

/* A restore lowers the high-water mark on purpose: the changes after the
 * backup are gone, the store opens again (not "moved backwards"), and what
 * it replaced is kept beside it. */
Test(store_backup, restore_resets_the_mark_deliberately, .init = setup, .fini = teardown)
{
    int64_t ca = tstore_add_ca(env.st, "active", "01");
    add_certs(env.st, ca, 1, 20);
    char dest[200];
    in_dir(dest, sizeof dest, "b.db");
    mesh_err err = {0};
    store_backup_info info;
    cr_assert_eq(store_backup(env.st, dest, 0, &info, &err), MESH_OK, "%s", err.msg);
    add_certs(env.st, ca, 100, 15);
    store_close(env.st);
    env.st = NULL;

    store_restore_info ri;
    cr_assert_eq(store_restore(env.path, dest, 0, &ri, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ri.seq, info.seq);
    cr_assert_eq(ri.witness_seq, info.seq + 15, "the witness had seen the 15 later certs");
    cr_assert_str_eq(ri.store_id, info.store_id);
    cr_assert(ri.kept_path[0], "the replaced store is kept");
    cr_assert_eq(raw_int(ri.kept_path, "SELECT count(*) FROM certs"), 35);
    cr_assert_eq(raw_int(env.path, "SELECT count(*) FROM certs"), 20);
    /* The restored file is private like the store it replaces. */
    struct stat sb;
    cr_assert_eq(stat(env.path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", (unsigned)(sb.st_mode & 0777));

    store_check_report r;
    cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(r.health, STORE_HEALTHY, "%s", store_health_name(r.health));
    cr_assert_eq(r.witness_seq, info.seq);
    cr_assert_not(r.witness_clean, "the first open after a restore runs the full check");
    store_check_report_free(&r);
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_open_check(env.st), "integrity_check");
    /* And it goes on from there: new changes raise the mark again. */
    add_certs(env.st, ca, 200, 3);
    store_close(env.st);
    env.st = NULL;
    cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(r.health, STORE_HEALTHY);
    cr_assert_eq(r.witness_seq, info.seq + 3);
    cr_assert(r.witness_clean);
    store_check_report_free(&r);
}

/* A lost store (deleted, or truncated to nothing) comes back from its backup;
 * before that it is refused, and nothing creates a store in its place. */
Test(store_backup, restore_brings_back_a_lost_store, .init = setup, .fini = teardown)
{
    int64_t ca = tstore_add_ca(env.st, "active", "01");
    add_certs(env.st, ca, 1, 10);
    char dest[200];
    in_dir(dest, sizeof dest, "b.db");
    mesh_err err = {0};
    store_backup_info info;
    cr_assert_eq(store_backup(env.st, dest, 0, &info, &err), MESH_OK, "%s", err.msg);
    store_close(env.st);
    env.st = NULL;
    for (int truncate = 0; truncate < 2; truncate++) {
        if (truncate)
            tstore_write_file(env.path, "", 0);
        else
            cr_assert_eq(unlink(env.path), 0);
        store_open_opts create = {.create = 1};
        cr_assert_eq(store_open_with(&env.st, env.path, &create, &err), MESH_ECORRUPT, "%s",
                     err.msg);
        cr_assert(strstr(err.msg, dest), "names the backup: %s", err.msg);
        store_check_report r;
        cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_OK, "%s", err.msg);
        cr_assert_eq(r.health, STORE_LOST);
        cr_assert_str_eq(r.backup_path, info.path);
        store_check_report_free(&r);

        store_restore_info ri;
        cr_assert_eq(store_restore(env.path, dest, 0, &ri, &err), MESH_OK, "%s", err.msg);
        cr_assert_eq(truncate ? ri.kept_path[0] != '\0' : ri.kept_path[0] == '\0', 1,
                     "kept '%s'", ri.kept_path);
        cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
        cr_assert_eq(raw_int(env.path, "SELECT count(*) FROM certs"), 10);
        store_close(env.st);
        env.st = NULL;
    }
}
