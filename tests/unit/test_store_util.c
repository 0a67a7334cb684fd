/* tests/unit/test_store_util.c — helpers shared by the test_store_*.c suites. */
#include "tests/unit/test_store_util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void tstore_setup(tstore_env *env, int open_store)
{
    memset(env, 0, sizeof *env);
    snprintf(env->dir, sizeof env->dir, "/tmp/meshd-test-XXXXXX");
    cr_assert_not_null(mkdtemp(env->dir), "mkdtemp failed");
    snprintf(env->path, sizeof env->path, "%s/mesh.db", env->dir);
    if (open_store) {
        mesh_err err = {0};
        store_open_opts create = {.create = 1};
        int rc = store_open_with(&env->st, env->path, &create, &err);
        cr_assert_eq(rc, MESH_OK, "store_open: %s", err.msg);
    }
}

int tstore_on_pg(void)
{
    const char *url = getenv("MESH_TEST_PG_URL");
    return url && url[0];
}

static void pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Runs one statement on the server's maintenance database (asserts). */
static void pg_admin(const char *sql)
{
    PGconn *c = PQconnectdb(getenv("MESH_TEST_PG_URL"));
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "MESH_TEST_PG_URL: %s", PQerrorMessage(c));
    PQsetNoticeProcessor(c, pg_quiet, NULL); /* "drop cascades to ..." */
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

void tstore_setup_any(tstore_env *env, int open_store)
{
    if (!tstore_on_pg()) {
        tstore_setup(env, open_store);
        return;
    }
    tstore_setup(env, 0);
    /* A schema per test (quicker than a database): nothing leaks from one
     * test into the next, and the store sees only its own tables. */
    static unsigned counter;
    snprintf(env->pg_db, sizeof env->pg_db, "mt_%d_%u", (int)getpid(), ++counter);
    char sql[160];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", env->pg_db);
    pg_admin(sql); /* left over by a run that crashed with the same pid */
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", env->pg_db);
    pg_admin(sql);
    const char *url = getenv("MESH_TEST_PG_URL");
    cr_assert(!strchr(url, '?'), "MESH_TEST_PG_URL %s: give it without parameters", url);
    /* application_name: a test can find its own sessions in pg_stat_activity. */
    int n = snprintf(env->path, sizeof env->path,
                     "%s?options=-csearch_path%%3D%s&application_name=%s", url, env->pg_db,
                     env->pg_db);
    cr_assert(n > 0 && (size_t)n < sizeof env->path, "MESH_TEST_PG_URL %s is too long", url);
    if (open_store) {
        mesh_err err = {0};
        store_open_opts create = {.create = 1};
        int rc = store_open_with(&env->st, env->path, &create, &err);
        cr_assert_eq(rc, MESH_OK, "store_open %s: %s", env->path, err.msg);
    }
}

void tstore_teardown(tstore_env *env)
{
    store_close(env->st);
    env->st = NULL;
    if (env->pg_db[0]) {
        char sql[160];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", env->pg_db);
        pg_admin(sql);
        env->pg_db[0] = '\0';
    }
    if (!env->dir[0])
        return;
    DIR *d = opendir(env->dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", env->dir, de->d_name);
            struct stat sb;
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
                rmdir(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(env->dir);
}

int64_t tstore_add_ca(mesh_store *st, const char *state, const char *serial_hex)
{
    store_ca ca = {
        .state = (char *)state,
        .cert_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        .chain_pem = "",
        .key_path = "/var/lib/meshd/ca/key.pem",
        .serial_hex = (char *)serial_hex,
        .subject = "O=meshd, CN=example.org",
        .key_type = "ec-p256",
        .not_before = 1000,
        .not_after = 2000000000,
        .created_at = 1000,
    };
    mesh_err err = {0};
    int64_t id = 0;
    int rc = store_ca_insert(st, &ca, &id, &err);
    cr_assert_eq(rc, MESH_OK, "store_ca_insert: %s", err.msg);
    cr_assert_gt(id, 0);
    return id;
}

void tstore_hex64(unsigned n, char out[65])
{
    snprintf(out, 65, "%064x", n);
}

void tstore_cert_init(store_cert *c, char serial_buf[41], unsigned serial, const char *spiffe_id,
                      int64_t ca_id, int64_t issued_at, int64_t not_after)
{
    static const char pubkey[] =
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    memset(c, 0, sizeof *c);
    snprintf(serial_buf, 41, "%032x", serial);
    c->serial_hex = serial_buf;
    c->spiffe_id = (char *)spiffe_id;
    c->pubkey_sha256 = (char *)pubkey;
    c->not_before = issued_at - 10;
    c->not_after = not_after;
    c->issued_at = issued_at;
    c->ca_id = ca_id;
    c->cert_pem = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n";
}

unsigned char *tstore_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    cr_assert_geq(len, 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)len + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *len_out = (size_t)len;
    return buf;
}

void tstore_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

int tstore_file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}
