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

/* The fingerprint of a stored CA's root. */
static void root_fp(tca_env *e, const char *state, char out[65])
{
    store_ca *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_ca_list(e->st, &list, &n, &err), MESH_OK);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].state, state) == 0)
            cr_assert_eq(ca_root_info(&list[i], NULL, out, &err), MESH_OK, "%s", err.msg);
    store_ca_free_list(list, n);
    cr_assert_eq(strlen(out), 64, "no %s CA", state);
}

Test(ca_token, tokens_pin_the_active_and_prepared_roots)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    add_reg(&e, TCA_ID_WEB);
    char active[65], prepared[65];
    root_fp(&e, "active", active);
    char *tok = NULL;
    mesh_err err = {0};
    cr_assert_eq(join_token_create(e.st, "", TCA_ID_WEB, 0, &tok, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(strlen(tok), 47 + 44, "%s", tok);
    cr_assert_eq(tok[47], '.');
    join_token_parts p;
    cr_assert_eq(join_token_parse(tok, &p, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(p.n_pins, 1);
    cr_assert_str_eq(p.pins_hex[0], active);
    cr_assert_eq(strncmp(p.secret, tok, 47), 0);
    cr_assert_eq(strlen(p.secret), 47);

    /* during a rotation: active first, then the prepared root */
    ca_init_opts o = {.key_dir = e.keydir};
    int64_t id = 0;
    cr_assert_eq(ca_prepare(e.st, &o, &id, &err), MESH_OK, "%s", err.msg);
    root_fp(&e, "prepared", prepared);
    char *tok2 = NULL;
    cr_assert_eq(join_token_create(e.st, "", TCA_ID_WEB, 0, &tok2, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(join_token_parse(tok2, &p, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(p.n_pins, 2);
    cr_assert_str_eq(p.pins_hex[0], active);
    cr_assert_str_eq(p.pins_hex[1], prepared);

    /* what is stored and redeemed is the secret part; pins do not matter */
    char *who = NULL;
    char trailing[200];
    snprintf(trailing, sizeof trailing, "  %s\n", tok);
    cr_assert_eq(join_token_redeem(e.st, trailing, time(NULL), &who, NULL, &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_str_eq(who, TCA_ID_WEB);
    free(who);
    who = NULL;
    char bare[48];
    memcpy(bare, tok2, 47);
    bare[47] = '\0';
    cr_assert_eq(join_token_redeem(e.st, bare, time(NULL), &who, NULL, &err), MESH_OK,
                 "a token works without its pins: %s", err.msg);
    free(who);
    who = NULL;
    cr_assert_eq(join_token_redeem(e.st, tok2, time(NULL), &who, NULL, &err), MESH_EPERM,
                 "and is then spent, pins or not");
    free(tok);
    free(tok2);
    tca_teardown(&e);
}

Test(ca_token, malformed_pins_are_refused_without_echo)
{
    const char *secret = "mjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const char *pin = "BfPCXsW7WYFplyABOQRGPY8WK2ihOTA4Dj6LNKETKDs";
    char buf[256];
    join_token_parts p;
    mesh_err err = {0};
    snprintf(buf, sizeof buf, "%s.%s", secret, pin);
    cr_assert_eq(join_token_parse(buf, &p, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(p.n_pins, 1);
    cr_assert_eq(strlen(p.pins_hex[0]), 64);
    const char *bad[] = {
        "%s.",                          /* empty pin */
        "%s.BfPCXsW7WYFplyABOQRGPY8WK2ihOTA4Dj6LNKETKD",    /* 42 chars */
        "%s:BfPCXsW7WYFplyABOQRGPY8WK2ihOTA4Dj6LNKETKDs",   /* wrong separator */
        "%s.BfPCXsW7WYFplyABOQRGPY8WK2ihOTA4Dj6LNKETKD+",   /* not base64url */
        "%s.BfPCXsW7WYFplyABOQRGPY8WK2ihOTA4Dj6LNKETKDt",   /* stray low bits */
        "%s.BfPCXsW7WYFplyABOQRGPY8WK2ihOTA4Dj6LNKETKDs.BfPCXsW7WYFplyABOQRGPY8WK2ihOTA4Dj6LNKETKDs"
        ".BfPCXsW7WYFplyABOQRGPY8WK2ihOTA4Dj6LNKETKDs",     /* more pins than allowed */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(buf, sizeof buf, bad[i], secret);
#pragma GCC diagnostic pop
        cr_expect_eq(join_token_parse(buf, &p, &err), MESH_EINVAL, "case %zu: %s", i, buf);
        cr_expect(strstr(err.msg, "malformed"), "%s", err.msg);
        cr_expect_null(strstr(err.msg, "AAAAAAAA"), "token text echoed: %s", err.msg);
    }
}
