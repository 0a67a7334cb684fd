/* tests/unit/test_ca_token.c — join tokens: format, hashed storage, one use,
 * expiry, malformed input, no token text in messages. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/join_token.h"
#include "tests/unit/test_ca_util.h"

static void add_reg(tca_env *e, const char *id)
{
    mesh_err err = {0};
    cr_assert_eq(store_registration_add(e->st, "", id, "", "", &err), MESH_OK, "%s", err.msg);
}

static int is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

Test(ca_token, hash_is_sha256_hex)
{
    char hex[65];
    join_token_hash("abc", hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(ca_token, create_needs_registration_and_valid_input)
{
    tca_env e;
    tca_setup(&e);
    char *tok = NULL;
    mesh_err err = {0};
    cr_assert_eq(join_token_create(e.st, "", TCA_ID_WEB, 0, &tok, &err), MESH_ENOTFOUND);
    cr_assert(strstr(err.msg, "no registration for " TCA_ID_WEB), "%s", err.msg);
    cr_assert(strstr(err.msg, "meshctl workload add"), "%s", err.msg);
    cr_assert_null(tok);
    cr_assert_eq(join_token_create(e.st, "", "spiffe://example.org/x/", 0, &tok, &err), MESH_EINVAL);
    add_reg(&e, TCA_ID_WEB);
    cr_assert_eq(join_token_create(e.st, "", TCA_ID_WEB, -1, &tok, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "out of range"), "%s", err.msg);
    cr_assert_null(tok);
    tca_teardown(&e);
}

Test(ca_token, create_format_storage_and_redeem_once)
{
    tca_env e;
    tca_setup(&e);
    add_reg(&e, TCA_ID_WEB);
    char *tok = NULL, *tok2 = NULL;
    mesh_err err = {0};
    cr_assert_eq(join_token_create(e.st, "", TCA_ID_WEB, 0, &tok, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(join_token_create(e.st, "", TCA_ID_WEB, 0, &tok2, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_neq(tok, tok2);
    cr_assert_eq(strlen(tok), 4 + 43);
    cr_assert(strncmp(tok, "mjt_", 4) == 0);
    for (size_t i = 4; tok[i]; i++)
        cr_assert(is_b64url(tok[i]), "char %zu '%c'", i, tok[i]);

    /* only the hash is in the database files */
    store_close(e.st);
    e.st = NULL;
    char o[256];
    char hash[65];
    join_token_hash(tok, hash);
    cr_assert_neq(tca_sh(o, sizeof o, "cat %s/mesh.db* | grep -c -a '%s'", e.dir, tok + 4), 0,
                  "token text found in the store: %s", o);
    cr_assert_eq(tca_sh(o, sizeof o, "cat %s/mesh.db* | grep -c -a '%s'", e.dir, hash), 0,
                 "hash stored: %s", o);
    cr_assert_eq(store_open(&e.st, e.db, &err), MESH_OK, "%s", err.msg);

    char *id = NULL;
    int64_t now = time(NULL);
    cr_assert_eq(join_token_redeem(e.st, tok, now, &id, NULL, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(id, TCA_ID_WEB);
    free(id);
    id = NULL;
    /* a second use is refused */
    cr_assert_eq(join_token_redeem(e.st, tok, now, &id, NULL, &err), MESH_EPERM);
    cr_assert(strstr(err.msg, "already used"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, tok + 4), "no token text in messages");
    cr_assert_null(id);
    /* trailing newline (token read from a file) is tolerated */
    char withnl[64];
    snprintf(withnl, sizeof withnl, "%s\n", tok2);
    cr_assert_eq(join_token_redeem(e.st, withnl, now, &id, NULL, &err), MESH_OK, "%s", err.msg);
    free(id);
    free(tok);
    free(tok2);
    tca_teardown(&e);
}

Test(ca_token, expired)
{
    tca_env e;
    tca_setup(&e);
    add_reg(&e, TCA_ID_WEB);
    char *tok = NULL, *id = NULL;
    mesh_err err = {0};
    int64_t t0 = time(NULL);
    cr_assert_eq(join_token_create(e.st, "", TCA_ID_WEB, 60, &tok, &err), MESH_OK, "%s", err.msg);
    int64_t t1 = time(NULL);
    cr_assert_eq(join_token_redeem(e.st, tok, t1 + 60 + 1, &id, NULL, &err), MESH_EEXPIRED);
    cr_assert(strstr(err.msg, "expired"), "%s", err.msg);
    cr_assert_null(id);
    /* still valid just before its expiry (not spent by the failed attempt) */
    cr_assert_eq(join_token_redeem(e.st, tok, t0 + 59, &id, NULL, &err), MESH_OK, "%s", err.msg);
    free(id);
    free(tok);
    tca_teardown(&e);
}

Test(ca_token, malformed_and_unknown)
{
    tca_env e;
    tca_setup(&e);
    char *id = NULL;
    mesh_err err = {0};
    int64_t now = time(NULL);
    char good_shape[48];
    snprintf(good_shape, sizeof good_shape, "mjt_%s", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    cr_assert_eq(strlen(good_shape), 47);
    const char *bad[] = {
        "",
        "mjt_",
        "hello",
        "mjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 42 chars */
        "mjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 44 chars */
        "xyz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "mjt_AAAAAAAAAAAAAAAAAAAA+AAAAAAAAAAAAAAAAAAAAAA",  /* '+' is not base64url */
        "mjt_AAAAAAAAAAAAAAAAAAAA=AAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(join_token_redeem(e.st, bad[i], now, &id, NULL, &err), MESH_EINVAL, "'%s'",
                     bad[i]);
        cr_expect(strstr(err.msg, "malformed") || strstr(err.msg, "empty"), "%s", err.msg);
        cr_expect_null(strstr(err.msg, "AAAAAAAA"), "token text echoed: %s", err.msg);
    }
    cr_assert_eq(join_token_redeem(e.st, NULL, now, &id, NULL, &err), MESH_EINVAL);
    /* well-formed but never issued */
    cr_assert_eq(join_token_redeem(e.st, good_shape, now, &id, NULL, &err), MESH_ENOTFOUND);
    cr_assert(strstr(err.msg, "not known"), "%s", err.msg);
    cr_assert_null(id);
    tca_teardown(&e);
}

Test(ca_token, removed_registration_kills_token)
{
    tca_env e;
    tca_setup(&e);
    add_reg(&e, TCA_ID_DB);
    char *tok = NULL, *id = NULL;
    mesh_err err = {0};
    cr_assert_eq(join_token_create(e.st, "", TCA_ID_DB, 0, &tok, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_registration_remove(e.st, "", TCA_ID_DB, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(join_token_redeem(e.st, tok, time(NULL), &id, NULL, &err), MESH_ENOTFOUND);
    free(tok);
    tca_teardown(&e);
}

/* meshctl creates the registration and its first token in one transaction:
 * join_token_create must not open one of its own. */
Test(ca_token, create_inside_caller_transaction)
{
    tca_env e;
    tca_setup(&e);
    mesh_err err = {0};
    char *tok = NULL, *id = NULL;
    cr_assert_eq(store_begin(e.st, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_registration_add(e.st, "", TCA_ID_WEB, "", "", &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(join_token_create(e.st, "", TCA_ID_WEB, 0, &tok, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_commit(e.st, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(join_token_redeem(e.st, tok, time(NULL), &id, NULL, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(id, TCA_ID_WEB);
    free(id);
    free(tok);
    tca_teardown(&e);
}
