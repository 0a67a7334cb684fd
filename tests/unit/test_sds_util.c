/* tests/unit/test_sds_util.c — fixtures for the sds unit tests (see test_sds_util.h). */
#include "tests/unit/test_sds_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/csr.h"
#include "ca/join_token.h"

void tsd_setup(tsd_env *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/meshd-test-XXXXXX");
    cr_assert_not_null(mkdtemp(e->dir));
    snprintf(e->db, sizeof e->db, "%s/mesh.db", e->dir);
    snprintf(e->keydir, sizeof e->keydir, "%s/keys", e->dir);
    mesh_err err = {0};
    store_open_opts create = {.create = 1};
    cr_assert_eq(store_open_with(&e->st, e->db, &create, &err), MESH_OK, "%s", err.msg);
    ca_init_opts o = {.trust_domain = TSD_TD, .key_dir = e->keydir};
    int64_t id;
    cr_assert_eq(ca_init(e->st, &o, &id, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca_load(e->st, &e->ca, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_registration_add(e->st, "", TSD_WEB, "", "", &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_registration_add(e->st, "", TSD_API, "", "", &err), MESH_OK, "%s", err.msg);
}

void tsd_teardown(tsd_env *e)
{
    ca_free(e->ca);
    store_close(e->st);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
}

char *tsd_token(tsd_env *e, const char *id)
{
    char *tok = NULL;
    mesh_err err = {0};
    cr_assert_eq(join_token_create(e->st, "", id, 3600, &tok, &err), MESH_OK, "%s", err.msg);
    return tok;
}

char *tsd_csr_for(EVP_PKEY *key, const char *id)
{
    char *csr = NULL;
    mesh_err err = {0};
    cr_assert_eq(csr_create(key, id, &csr, &err), MESH_OK, "%s", err.msg);
    return csr;
}

char *tsd_csr(const char *id, EVP_PKEY **key_out)
{
    EVP_PKEY *key = NULL;
    mesh_err err = {0};
    cr_assert_eq(csr_keygen("ec-p256", &key, &err), MESH_OK, "%s", err.msg);
    char *csr = tsd_csr_for(key, id);
    if (key_out)
        *key_out = key;
    else
        EVP_PKEY_free(key);
    return csr;
}

char *tsd_issue(tsd_env *e, EVP_PKEY *key, const char *id, int64_t ttl, char serial[48],
                int64_t *not_after)
{
    char *csr = tsd_csr_for(key, id);
    ca_issue_req req = {.csr_pem = csr, .authorised_id = id, .ttl_seconds = ttl, .actor = "test"};
    ca_issued out;
    mesh_err err = {0};
    cr_assert_eq(ca_issue_svid(e->ca, e->st, &req, &out, &err), MESH_OK, "%s", err.msg);
    free(csr);
    char *pem = strdup(out.cert_pem);
    if (serial)
        snprintf(serial, 48, "%s", out.serial_hex);
    if (not_after)
        *not_after = out.not_after;
    ca_issued_free(&out);
    return pem;
}

int tsd_audit_count(tsd_env *e, const char *action, int ok)
{
    store_audit_entry *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_audit_list(e->st, 1000, &list, &n, &err), MESH_OK, "%s", err.msg);
    int c = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].action, action) == 0 && list[i].ok == ok)
            c++;
    store_audit_free_list(list, n);
    return c;
}
