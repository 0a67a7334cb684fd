/* tests/unit/test_store_util.c — helpers shared by the test_store_*.c suites. */
#include "tests/unit/test_store_util.h"

#include <criterion/criterion.h>
#include <dirent.h>
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

void tstore_teardown(tstore_env *env)
{
    store_close(env->st);
    env->st = NULL;
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
