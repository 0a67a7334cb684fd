/* tests/unit/test_store_open.c — opening stores: creation, file mode, schema
 * migration and reopen, and refusal (without touching the file) of garbage,
 * truncated, foreign and newer-schema files. */
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

static const store_open_opts create = {.create = 1};

static void setup_empty(void) { tstore_setup(&env, 0); }
static void setup_open(void) { tstore_setup(&env, 1); }
static void teardown(void) { tstore_teardown(&env); }

/* Runs one SQL statement on a raw SQLite connection (test set-up only). */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_close(db);
}

/* Opening path must fail with `code`, mention `needle`, and leave the file's
 * bytes exactly as they were. */
static void expect_refused(const char *path, int code, const char *needle)
{
    size_t before_len, after_len;
    unsigned char *before = tstore_read_file(path, &before_len);
    mesh_store *st = NULL;
    mesh_err err = {0};
    int rc = store_open(&st, path, &err);
    cr_assert_eq(rc, code, "expected %s, got %s: %s", mesh_status_name(code),
                 mesh_status_name(rc), err.msg);
    cr_assert_null(st);
    cr_assert_eq(err.code, code);
    cr_assert_not_null(strstr(err.msg, needle), "message lacks '%s': %s", needle, err.msg);
    cr_assert_not_null(strstr(err.msg, path), "message does not name the file: %s", err.msg);
    unsigned char *after = tstore_read_file(path, &after_len);
    cr_assert_eq(after_len, before_len, "file size changed");
    cr_assert_eq(memcmp(before, after, before_len), 0, "file content changed");
    free(before);
    free(after);
}

/* A store with enough rows to span many pages; closed afterwards. */
static void fill_store(const char *path, int n_certs)
{
    mesh_store *st = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_open_with(&st, path, &create, &err), MESH_OK, "%s", err.msg);
    int64_t ca = tstore_add_ca(st, "active", "01");
    char pem[2048];
    memset(pem, 'A', sizeof pem - 1);
    pem[sizeof pem - 1] = '\0';
    cr_assert_eq(store_begin(st, &err), MESH_OK, "%s", err.msg);
    for (int i = 0; i < n_certs; i++) {
        store_cert c;
        char serial[41];
        tstore_cert_init(&c, serial, (unsigned)i + 1, TSTORE_ID_WEB, ca, 1000 + i, 5000000000);
        c.cert_pem = pem;
        cr_assert_eq(store_cert_insert(st, &c, &err), MESH_OK, "%s", err.msg);
    }
    cr_assert_eq(store_commit(st, &err), MESH_OK, "%s", err.msg);
    store_close(st);
}

Test(store_open, creates_migrates_and_reopens, .init = setup_empty, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_not(tstore_file_exists(env.path));
    cr_assert_eq(store_open_with(&env.st, env.path, &create, &err), MESH_OK, "%s", err.msg);
    cr_assert(tstore_file_exists(env.path));
    cr_assert_str_eq(store_open_check(env.st), "none");
    cr_assert_str_eq(store_path(env.st), env.path);
    cr_assert_geq(store_latest_schema_version(), 1);
    cr_assert_eq(store_schema_version(env.st), store_latest_schema_version());
    cr_assert_eq(store_config_version(env.st), 0);
    cr_assert_eq(store_setting_set(env.st, "trust_domain", "example.org", &err), MESH_OK);
    store_close(env.st);
    env.st = NULL;

    /* Reopen: nothing to migrate, data still there. */
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_schema_version(env.st), store_latest_schema_version());
    char *td = NULL;
    cr_assert_eq(store_setting_get(env.st, "trust_domain", &td, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(td, "example.org");
    free(td);

    /* The file is marked as ours, in WAL mode. */
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_open(env.path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int64(s, 0), 0x4D534844);
    sqlite3_finalize(s);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

Test(store_open, file_mode_is_0600, .init = setup_empty, .fini = teardown)
{
    mode_t old = umask(0);   /* a permissive umask must not loosen the store's mode */
    mesh_err err = {0};
    int rc = store_open_with(&env.st, env.path, &create, &err);
    umask(old);
    cr_assert_eq(rc, MESH_OK, "%s", err.msg);
    cr_assert_eq(store_setting_set(env.st, "k", "v", &err), MESH_OK, "%s", err.msg);
    struct stat sb;
    cr_assert_eq(stat(env.path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "store mode %o", (unsigned)(sb.st_mode & 0777));
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", env.path);
    cr_assert_eq(stat(wal, &sb), 0, "no WAL file while the store is open");
    cr_assert_eq(sb.st_mode & 0777, 0600, "WAL mode %o", (unsigned)(sb.st_mode & 0777));
    char witness[160];
    snprintf(witness, sizeof witness, "%s-witness", env.path);
    cr_assert_eq(stat(witness, &sb), 0, "no witness file");
    cr_assert_eq(sb.st_mode & 0777, 0600, "witness mode %o", (unsigned)(sb.st_mode & 0777));
}

Test(store_open, garbage_file_is_corrupt_and_untouched, .init = setup_empty, .fini = teardown)
{
    unsigned char junk[8192];
    unsigned seed = 12345;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(rand_r(&seed) >> 7);
    tstore_write_file(env.path, junk, sizeof junk);
    expect_refused(env.path, MESH_ECORRUPT, "restore");
}

Test(store_open, text_file_is_corrupt_and_untouched, .init = setup_empty, .fini = teardown)
{
    const char *text = "trust_domain: example.org\nthis is not a database\n";
    tstore_write_file(env.path, text, strlen(text));
    expect_refused(env.path, MESH_ECORRUPT, "backup");
}

Test(store_open, truncated_db_is_corrupt_and_untouched, .init = setup_empty, .fini = teardown)
{
    fill_store(env.path, 300);
    size_t len;
    unsigned char *bytes = tstore_read_file(env.path, &len);
    cr_assert_gt(len, 64 * 1024, "test store too small (%zu bytes)", len);
    /* Cut at a page boundary (4096-byte pages) and in the middle of a page. */
    size_t cuts[] = {(len / 2) & ~(size_t)4095, len / 3 + 123};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        tstore_write_file(env.path, bytes, cuts[i]);
        expect_refused(env.path, MESH_ECORRUPT, "restore");
    }
    free(bytes);
}

Test(store_open, damaged_page_is_corrupt_and_untouched, .init = setup_empty, .fini = teardown)
{
    fill_store(env.path, 300);
    size_t len;
    unsigned char *bytes = tstore_read_file(env.path, &len);
    /* Scribble over the middle of the file: b-tree pages stop making sense. */
    memset(bytes + len / 2, 0x5a, 8192);
    tstore_write_file(env.path, bytes, len);
    free(bytes);
    expect_refused(env.path, MESH_ECORRUPT, "restore");
}

/* A crashed meshd leaves committed pages in the -wal file; a refused store
 * must not have them checkpointed into it on close. */
Test(store_open, refused_store_keeps_its_wal, .init = setup_empty, .fini = teardown)
{
    fill_store(env.path, 50);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        mesh_store *st = NULL;
        if (store_open(&st, env.path, NULL) != MESH_OK ||
            store_audit(st, "meshd", "test.crash", "", "", 1, NULL) != MESH_OK)
            _exit(1);
        kill(getpid(), SIGKILL);
        _exit(2);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "child did not die by signal (status %d)", status);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", env.path);
    size_t wal_len, db_len;
    unsigned char *wal_before = tstore_read_file(wal, &wal_len);
    cr_assert_gt(wal_len, 0);
    unsigned char *db = tstore_read_file(env.path, &db_len);
    /* Ruin the main file past page 1 so quick_check fails. */
    memset(db + 4096, 0x5a, db_len - 4096);
    tstore_write_file(env.path, db, db_len);
    free(db);
    expect_refused(env.path, MESH_ECORRUPT, "restore");
    size_t wal_len2;
    unsigned char *wal_after = tstore_read_file(wal, &wal_len2);
    cr_assert_eq(wal_len2, wal_len);
    cr_assert_eq(memcmp(wal_before, wal_after, wal_len), 0, "WAL changed");
    free(wal_before);
    free(wal_after);
}

Test(store_open, newer_schema_is_refused, .init = setup_empty, .fini = teardown)
{
    fill_store(env.path, 1);
    char sql[64], needle[64];
    int newer = store_latest_schema_version() + 1;
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", newer);
    raw_exec(env.path, sql);
    snprintf(needle, sizeof needle, "schema %d > %d", newer, store_latest_schema_version());
    expect_refused(env.path, MESH_EINVAL, needle);
    mesh_store *st = NULL;
    mesh_err err = {0};
    store_open(&st, env.path, &err);
    cr_assert_not_null(strstr(err.msg, "newer meshd"), "%s", err.msg);
}

Test(store_open, foreign_sqlite_db_is_refused, .init = setup_empty, .fini = teardown)
{
    raw_exec(env.path, "CREATE TABLE settings (k TEXT, v TEXT); INSERT INTO settings VALUES ('a','b')");
    expect_refused(env.path, MESH_EINVAL, "not a meshd store");

    tstore_env other;
    tstore_setup(&other, 0);
    raw_exec(other.path, "PRAGMA application_id = 42; CREATE TABLE t (x)");
    expect_refused(other.path, MESH_EINVAL, "another application");
    tstore_teardown(&other);
}

Test(store_open, bad_paths, .init = setup_empty, .fini = teardown)
{
    mesh_store *st = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_open(&st, "", &err), MESH_EINVAL);
    cr_assert_eq(store_open(&st, NULL, &err), MESH_EINVAL);
    /* A directory. */
    cr_assert_eq(store_open(&st, env.dir, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "not a regular file"), "%s", err.msg);
    /* A missing parent directory, with or without leave to create. */
    char missing[200];
    snprintf(missing, sizeof missing, "%s/no/such/dir/mesh.db", env.dir);
    cr_assert_eq(store_open(&st, missing, &err), MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, missing), "%s", err.msg);
    cr_assert_eq(store_open_with(&st, missing, &create, &err), MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "directory"), "%s", err.msg);
    cr_assert_null(st);
}

/* The --db forms: a path, sqlite:///absolute/path, and nothing else. */
Test(store_open, db_url_forms, .init = setup_empty, .fini = teardown)
{
    mesh_store *st = NULL;
    mesh_err err = {0};
    char url[200];
    snprintf(url, sizeof url, "sqlite://%s", env.path);
    cr_assert_eq(store_open_with(&st, url, &create, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_path(st), env.path, "the URL names the same file");
    cr_assert_str_eq(store_backend_name(st), "sqlite");
    store_close(st);
    st = NULL;
    cr_assert(tstore_file_exists(env.path));
    cr_assert_eq(store_open(&st, env.path, &err), MESH_OK, "a path opens the same store");
    store_close(st);
    st = NULL;
    /* A relative path or a host in an SQLite URL, an unknown scheme: refused. */
    cr_assert_eq(store_open_with(&st, "sqlite://mesh.db", &create, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "absolute path"), "%s", err.msg);
    cr_assert_eq(store_open_with(&st, "mysql://127.0.0.1/mesh", &create, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "unknown scheme"), "%s", err.msg);
    cr_assert_null(st);
    cr_assert(store_db_is_postgres("postgres://u@127.0.0.1/db"));
    cr_assert(store_db_is_postgres("postgresql://u@127.0.0.1/db"));
    cr_assert(!store_db_is_postgres("/var/lib/meshd/postgres://x"));
    cr_assert(!store_db_is_postgres(env.path));
}

Test(store_open, data_version_sees_other_handles_commits, .init = setup_open, .fini = teardown)
{
    mesh_store *other = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_open(&other, env.path, &err), MESH_OK, "%s", err.msg);
    int64_t v1 = store_data_version(env.st);
    cr_assert_geq(v1, 0);
    cr_assert_eq(store_data_version(env.st), v1, "no change, same version");
    int changed = 0;
    cr_assert_eq(store_resource_put(other, "service", "web", "name: web\n", "m.yaml:1", &changed,
                                     &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_neq(store_data_version(env.st), v1, "commit by another handle not noticed");
    cr_assert_eq(store_config_version(env.st), 1);
    store_close(other);
}

Test(store_open, close_null_is_noop)
{
    store_close(NULL);
}
