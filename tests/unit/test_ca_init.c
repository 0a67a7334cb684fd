/* tests/unit/test_ca_init.c — creating and loading the CA: root profile, key
 * custody (0600 file, path in the store, never in messages or logs). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/csr.h"
#include "tests/unit/test_ca_util.h"

static store_ca active_row(tca_env *e)
{
    store_ca row;
    memset(&row, 0, sizeof row);
    mesh_err err = {0};
    cr_assert_eq(store_ca_get_active(e->st, &row, &err), MESH_OK, "%s", err.msg);
    return row;
}

static void check_root_text(tca_env *e, const store_ca *row, const char *key_alg)
{
    char path[256], out[16384];
    snprintf(path, sizeof path, "%s/root.pem", e->dir);
    tca_write(path, row->cert_pem);
    int rc = tca_sh(out, sizeof out, "openssl x509 -in %s -noout -text", path);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "Subject: O = example.org, CN = meshd root CA "), "%s", out);
    cr_assert(strstr(out, "X509v3 Basic Constraints: critical\n                CA:TRUE"), "%s",
              out);
    cr_assert(strstr(out, "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"),
              "%s", out);
    cr_assert(strstr(out, "X509v3 Subject Key Identifier"), "%s", out);
    cr_assert(strstr(out, "X509v3 Authority Key Identifier"), "%s", out);
    cr_assert(strstr(out, "URI:spiffe://example.org\n"), "%s", out);
    cr_assert(strstr(out, key_alg), "expected %s in %s", key_alg, out);
    /* self-signed and valid as a trust anchor */
    rc = tca_sh(out, sizeof out, "openssl verify -x509_strict -CAfile %s %s", path, path);
    cr_assert_eq(rc, 0, "%s", out);
}

Test(ca_init, ec_root_profile_and_key_file)
{
    tca_env e;
    tca_setup(&e);
    int64_t id = tca_init(&e, NULL, 0);
    store_ca row = active_row(&e);
    cr_assert_eq(row.id, id);
    cr_assert_str_eq(row.key_type, "ec-p256");
    cr_assert_str_eq(row.chain_pem, "");
    check_root_text(&e, &row, "ASN1 OID: prime256v1");
    /* about 10 years */
    cr_assert_geq(row.not_after - row.not_before, CA_DEFAULT_ROOT_TTL);

    /* key file: under key_dir, named after the serial, 0600, dir 0700, PKCS#8 */
    char expect[256];
    snprintf(expect, sizeof expect, "%s/ca-%s.key", e.keydir, row.serial_hex);
    cr_assert_str_eq(row.key_path, expect);
    struct stat sb;
    cr_assert_eq(stat(row.key_path, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, 0600, "key mode %o", sb.st_mode & 07777);
    cr_assert_eq(stat(e.keydir, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, 0700, "dir mode %o", sb.st_mode & 07777);
    char *key = tca_read(row.key_path);
    cr_assert(strncmp(key, "-----BEGIN PRIVATE KEY-----", 27) == 0);
    /* the store holds the path, never the key */
    cr_assert_null(strstr(row.cert_pem, "PRIVATE KEY"));
    free(key);

    char *td = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_setting_get(e.st, "trust_domain", &td, &err), MESH_OK);
    cr_assert_str_eq(td, TCA_TD);
    free(td);
    cr_assert_eq(tca_audit_count(e.st, "ca.init", 1), 1);

    mesh_ca *ca = tca_load(&e);
    cr_assert_str_eq(ca_trust_domain(ca), TCA_TD);
    cr_assert_eq(ca_id(ca), id);
    ca_free(ca);
    store_ca_free(&row);
    tca_teardown(&e);
}

Test(ca_init, rsa3072_root, .timeout = 30)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, "rsa-3072", 3600);
    store_ca row = active_row(&e);
    cr_assert_str_eq(row.key_type, "rsa-3072");
    check_root_text(&e, &row, "Public-Key: (3072 bit)");
    cr_assert_leq(row.not_after - row.not_before, 3600 + CA_BACKDATE_SECONDS);
    store_ca_free(&row);
    tca_teardown(&e);
}

Test(ca_init, second_init_is_eexists_and_leaves_no_key)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    ca_init_opts o = {.trust_domain = TCA_TD, .key_dir = e.keydir};
    mesh_err err = {0};
    cr_assert_eq(ca_init(e.st, &o, NULL, &err), MESH_EEXISTS);
    cr_assert(strstr(err.msg, "already exists"), "%s", err.msg);
    char out[4096];
    tca_sh(out, sizeof out, "ls %s | wc -l", e.keydir);
    cr_assert_eq(atoi(out), 1, "only the first CA's key file: %s", out);
    store_ca *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_ca_list(e.st, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 1);
    store_ca_free_list(list, n);
    tca_teardown(&e);
}

/* The key of a CA whose store went missing witnesses that store: a new CA
 * in a fresh store must not quietly take over its key directory. */
Test(ca_init, keys_of_a_lost_store_refuse_a_new_ca)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    store_close(e.st);
    e.st = NULL;
    char wipe[640];
    snprintf(wipe, sizeof wipe, "rm -f %s %s-wal %s-shm %s-witness", e.db, e.db, e.db, e.db);
    char out[256];
    tca_sh(out, sizeof out, "%s", wipe);
    store_open_opts create = {.create = 1};
    mesh_err err = {0};
    cr_assert_eq(store_open_with(&e.st, e.db, &create, &err), MESH_OK, "%s", err.msg);
    ca_init_opts o = {.trust_domain = TCA_TD, .key_dir = e.keydir};
    cr_assert_eq(ca_init(e.st, &o, NULL, &err), MESH_EEXISTS, "%s", err.msg);
    cr_assert(strstr(err.msg, "already holds a CA key"), "%s", err.msg);
    cr_assert(strstr(err.msg, "store restore"), "%s", err.msg);
    cr_assert_eq(ca_keydir_check_unclaimed(e.keydir, NULL, &err), MESH_EEXISTS);
    /* Its own keys do not count against a store, and another directory is free. */
    char other[160];
    snprintf(other, sizeof other, "%s/other-keys", e.dir);
    o.key_dir = other;
    cr_assert_eq(ca_init(e.st, &o, NULL, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca_keydir_check_unclaimed(other, e.st, &err), MESH_OK, "%s", err.msg);
    tca_teardown(&e);
}

/* Only CA key files count as a witness: a key directory with other files in
 * it, or none at all, does not block a new CA, and the refusal names the key. */
Test(ca_init, key_dir_witness_counts_only_ca_keys)
{
    tca_env e;
    tca_setup(&e);
    mesh_err err = {0};
    char dir[160], path[256];
    snprintf(dir, sizeof dir, "%s/not-yet", e.dir);
    cr_assert_eq(ca_keydir_check_unclaimed(dir, NULL, &err), MESH_OK, "a missing dir: %s",
                 err.msg);
    cr_assert_eq(mkdir(dir, 0700), 0);
    static const char *const others[] = {"notes.txt", "ca-1.pem", "xca-1.key", "ca-.key",
                                         "ca-1.key.bak"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, others[i]);
        tca_write(path, "x");
    }
    snprintf(path, sizeof path, "%s/ca-sub.key.d", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_assert_eq(ca_keydir_check_unclaimed(dir, NULL, &err), MESH_OK, "%s", err.msg);
    ca_init_opts o = {.trust_domain = TCA_TD, .key_dir = dir};
    cr_assert_eq(ca_init(e.st, &o, NULL, &err), MESH_OK, "%s", err.msg);
    /* The new CA's own key is claimed by its store, and a rotation may put
     * the next key beside it; to any other store they are a lost CA's. */
    cr_assert_eq(ca_keydir_check_unclaimed(dir, e.st, &err), MESH_OK, "%s", err.msg);
    int64_t id = 0;
    cr_assert_eq(ca_prepare(e.st, &o, &id, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca_keydir_check_unclaimed(dir, e.st, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca_keydir_check_unclaimed(dir, NULL, &err), MESH_EEXISTS);
    cr_assert(strstr(err.msg, "ca-"), "names the key: %s", err.msg);
    cr_assert(strstr(err.msg, "--key-dir"), "%s", err.msg);
    tca_teardown(&e);
}

Test(ca_init, bad_options_rejected)
{
    tca_env e;
    tca_setup(&e);
    mesh_err err = {0};
    ca_init_opts o = {.trust_domain = "Example.org", .key_dir = e.keydir};
    cr_assert_eq(ca_init(e.st, &o, NULL, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "lowercase"), "%s", err.msg);
    o.trust_domain = NULL;
    cr_assert_eq(ca_init(e.st, &o, NULL, &err), MESH_EINVAL);
    o.trust_domain = TCA_TD;
    o.key_type = "rsa-1024";
    cr_assert_eq(ca_init(e.st, &o, NULL, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "not supported"), "%s", err.msg);
    o.key_type = NULL;
    o.ttl_seconds = -5;
    cr_assert_eq(ca_init(e.st, &o, NULL, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "out of range"), "%s", err.msg);
    o.ttl_seconds = 0;
    o.key_dir = NULL;
    cr_assert_eq(ca_init(e.st, &o, NULL, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "key directory"), "%s", err.msg);
    /* a key directory others can write to is refused */
    char shared[256];
    snprintf(shared, sizeof shared, "%s/shared", e.dir);
    cr_assert_eq(mkdir(shared, 0700), 0);
    cr_assert_eq(chmod(shared, 0777), 0);
    o.key_dir = shared;
    cr_assert_eq(ca_init(e.st, &o, NULL, &err), MESH_EPERM);
    cr_assert(strstr(err.msg, "writable by group or others"), "%s", err.msg);
    /* a plug-in key without its cert */
    o.key_dir = e.keydir;
    o.import_key_path = "/nonexistent.key";
    cr_assert_eq(ca_init(e.st, &o, NULL, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "without its certificate"), "%s", err.msg);
    /* nothing was created by any of these */
    store_ca *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_ca_list(e.st, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 0);
    char *td = NULL;
    cr_assert_eq(store_setting_get(e.st, "trust_domain", &td, &err), MESH_ENOTFOUND);
    tca_teardown(&e);
}

Test(ca_init, load_refuses_loose_or_missing_key)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    store_ca row = active_row(&e);
    mesh_ca *ca = NULL;
    mesh_err err = {0};

    cr_assert_eq(chmod(row.key_path, 0644), 0);
    cr_assert_eq(ca_load(e.st, &ca, &err), MESH_EPERM);
    cr_assert_null(ca);
    cr_assert(strstr(err.msg, "mode 0644"), "%s", err.msg);
    cr_assert(strstr(err.msg, row.key_path), "%s", err.msg);
    cr_assert(strstr(err.msg, "chmod 600"), "%s", err.msg);
    cr_assert_eq(chmod(row.key_path, 0640), 0);
    cr_assert_eq(ca_load(e.st, &ca, &err), MESH_EPERM);
    /* stricter than 0600 is fine */
    cr_assert_eq(chmod(row.key_path, 0400), 0);
    cr_assert_eq(ca_load(e.st, &ca, &err), MESH_OK, "%s", err.msg);
    ca_free(ca);
    ca = NULL;

    char moved[256];
    snprintf(moved, sizeof moved, "%s.bak", row.key_path);
    cr_assert_eq(rename(row.key_path, moved), 0);
    cr_assert_eq(ca_load(e.st, &ca, &err), MESH_ENOTFOUND);
    cr_assert(strstr(err.msg, "missing"), "%s", err.msg);

    /* a symlink in its place is not followed */
    cr_assert_eq(symlink(moved, row.key_path), 0);
    cr_assert_eq(ca_load(e.st, &ca, &err), MESH_EPERM);
    cr_assert(strstr(err.msg, "symbolic link"), "%s", err.msg);
    unlink(row.key_path);

    /* a different key in the file: refused as not matching */
    EVP_PKEY *other = tca_key_ec("P-256");
    char *pem = NULL;
    cr_assert_eq(pem_write_private_key(other, &pem, &err), MESH_OK);
    int fd = open(row.key_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
    close(fd);
    cr_assert_eq(ca_load(e.st, &ca, &err), MESH_ECORRUPT);
    cr_assert(strstr(err.msg, "does not belong"), "%s", err.msg);

    /* garbage in the file */
    unlink(row.key_path);
    fd = open(row.key_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_eq(write(fd, "garbage\n", 8), 8);
    close(fd);
    cr_assert_eq(ca_load(e.st, &ca, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "not a PEM private key"), "%s", err.msg);

    free(pem);
    EVP_PKEY_free(other);
    store_ca_free(&row);
    tca_teardown(&e);
}

Test(ca_init, relative_key_dir_is_recorded_absolute)
{
    tca_env e;
    tca_setup(&e);
    cr_assert_eq(chdir(e.dir), 0);
    ca_init_opts o = {.trust_domain = TCA_TD, .key_dir = "rel/keys"};
    mesh_err err = {0};
    cr_assert_eq(ca_init(e.st, &o, NULL, &err), MESH_OK, "%s", err.msg);
    store_ca row = active_row(&e);
    cr_assert_eq(row.key_path[0], '/', "%s", row.key_path);
    cr_assert(strstr(row.key_path, "/rel/keys/ca-"), "%s", row.key_path);
    cr_assert_eq(chdir("/"), 0);
    mesh_ca *ca = tca_load(&e); /* loads from another working directory */
    ca_free(ca);
    store_ca_free(&row);
    tca_teardown(&e);
}

Test(ca_init, load_without_ca_is_enotfound)
{
    tca_env e;
    tca_setup(&e);
    mesh_ca *ca = NULL;
    mesh_err err = {0};
    cr_assert_eq(ca_load(e.st, &ca, &err), MESH_ENOTFOUND);
    cr_assert(strstr(err.msg, "meshctl ca init"), "%s", err.msg);
    char *bundle = NULL;
    cr_assert_eq(ca_bundle_pem(e.st, &bundle, &err), MESH_ENOTFOUND);
    tca_teardown(&e);
}

/* The key's bytes never show up in an error message or on stderr, across
 * init, issue and a series of failures that name the key file. */
Test(ca_init, key_never_in_messages_or_logs)
{
    tca_env e;
    tca_setup(&e);
    char logpath[256];
    snprintf(logpath, sizeof logpath, "%s/stderr.log", e.dir);
    fflush(stderr);
    int saved = dup(2);
    int lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(lfd, 0);
    dup2(lfd, 2);
    close(lfd);

    char msgs[8][512];
    int nm = 0;
    tca_init(&e, NULL, 0);
    store_ca row = active_row(&e);
    mesh_err err = {0};
    ca_init_opts o = {.trust_domain = TCA_TD, .key_dir = e.keydir};
    ca_init(e.st, &o, NULL, &err);
    snprintf(msgs[nm++], 512, "%s", err.msg);
    mesh_ca *ca = tca_load(&e);
    ca_issued out;
    tca_issue(ca, e.st, TCA_ID_WEB, 0, &out);
    ca_issued_free(&out);
    ca_issue_req bad = {.csr_pem = "nope", .authorised_id = TCA_ID_WEB};
    ca_issue_svid(ca, e.st, &bad, &out, &err);
    snprintf(msgs[nm++], 512, "%s", err.msg);
    ca_free(ca);
    chmod(row.key_path, 0644);
    ca_load(e.st, &ca, &err);
    snprintf(msgs[nm++], 512, "%s", err.msg);
    chmod(row.key_path, 0600);
    /* a plug-in import whose cert does not match this key */
    char certpath[256];
    snprintf(certpath, sizeof certpath, "%s/other.pem", e.dir);
    EVP_PKEY *k2 = tca_key_ec("P-256");
    char *other = tca_make_cert(k2, NULL, NULL, -60, 3600, 1, "other");
    tca_write(certpath, other);
    tca_env e2;
    tca_setup(&e2);
    ca_init_opts imp = {.trust_domain = TCA_TD, .key_dir = e2.keydir,
                        .import_cert_path = certpath, .import_key_path = row.key_path};
    cr_assert_eq(ca_init(e2.st, &imp, NULL, &err), MESH_EINVAL);
    snprintf(msgs[nm++], 512, "%s", err.msg);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    char *key = tca_read(row.key_path);
    /* the first base64 line of the key body */
    char *body = strchr(key, '\n') + 1;
    char line[32];
    memcpy(line, body, 24);
    line[24] = '\0';
    char *log = tca_read(logpath);
    cr_assert(strstr(log, "issued SVID"), "the log capture works: %s", log);
    cr_assert_null(strstr(log, "PRIVATE KEY"));
    cr_assert_null(strstr(log, line), "key material in the log");
    for (int i = 0; i < nm; i++) {
        cr_assert(msgs[i][0], "message %d is set", i);
        cr_assert_null(strstr(msgs[i], "PRIVATE KEY"), "%s", msgs[i]);
        cr_assert_null(strstr(msgs[i], line), "%s", msgs[i]);
    }
    free(log);
    free(key);
    free(other);
    EVP_PKEY_free(k2);
    store_ca_free(&row);
    tca_teardown(&e2);
    tca_teardown(&e);
}
