/* tests/unit/test_store_identity.c — settings, CA rows, registrations and join
 * tokens in the store: happy paths, duplicates, unknowns, invalid input. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "tests/unit/test_store_util.h"

static tstore_env env;

static void setup(void) { tstore_setup_any(&env, 1); }
static void teardown(void) { tstore_teardown(&env); }

/* ---- settings --------------------------------------------------------------- */

Test(store_settings, set_get_overwrite, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    char *v = NULL;
    cr_assert_eq(store_setting_get(env.st, "trust_domain", &v, &err), MESH_ENOTFOUND);
    cr_assert_null(v);
    cr_assert_not_null(strstr(err.msg, "trust_domain"), "%s", err.msg);
    cr_assert_eq(store_setting_set(env.st, "trust_domain", "example.org", &err), MESH_OK);
    cr_assert_eq(store_setting_get(env.st, "trust_domain", &v, &err), MESH_OK);
    cr_assert_str_eq(v, "example.org");
    free(v);
    cr_assert_eq(store_setting_set(env.st, "trust_domain", "other.org", &err), MESH_OK);
    cr_assert_eq(store_setting_get(env.st, "trust_domain", &v, &err), MESH_OK);
    cr_assert_str_eq(v, "other.org");
    free(v);
    /* Empty values are values. */
    cr_assert_eq(store_setting_set(env.st, "empty", "", &err), MESH_OK);
    cr_assert_eq(store_setting_get(env.st, "empty", &v, &err), MESH_OK);
    cr_assert_str_eq(v, "");
    free(v);
    /* Values are bound, not spliced into SQL. */
    const char *nasty = "x'); DROP TABLE settings; --";
    cr_assert_eq(store_setting_set(env.st, nasty, nasty, &err), MESH_OK);
    cr_assert_eq(store_setting_get(env.st, nasty, &v, &err), MESH_OK);
    cr_assert_str_eq(v, nasty);
    free(v);
}

Test(store_settings, invalid_input, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    char *v = NULL;
    cr_assert_eq(store_setting_set(env.st, "", "v", &err), MESH_EINVAL);
    cr_assert_eq(store_setting_set(env.st, NULL, "v", &err), MESH_EINVAL);
    cr_assert_eq(store_setting_set(env.st, "k", NULL, &err), MESH_EINVAL);
    cr_assert_eq(store_setting_get(env.st, "", &v, &err), MESH_EINVAL);
    /* The config version is the store's own counter. */
    cr_assert_eq(store_setting_set(env.st, "config_version", "42", &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "config_version"), "%s", err.msg);
    cr_assert_eq(store_config_version(env.st), 0);
    cr_assert_eq(store_setting_get(env.st, "config_version", &v, &err), MESH_OK);
    cr_assert_str_eq(v, "0");
    free(v);
}

/* ---- CA ------------------------------------------------------------------------ */

Test(store_ca, insert_list_active_rotate, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    store_ca ca;
    cr_assert_eq(store_ca_get_active(env.st, &ca, &err), MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "ca init"), "%s", err.msg);

    int64_t a = tstore_add_ca(env.st, "active", "0a");
    int64_t b = tstore_add_ca(env.st, "prepared", "0b");
    cr_assert_lt(a, b);

    store_ca *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_ca_list(env.st, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(list[0].id, a);
    cr_assert_str_eq(list[0].state, "active");
    cr_assert_str_eq(list[0].serial_hex, "0a");
    cr_assert_str_eq(list[0].key_type, "ec-p256");
    cr_assert_str_eq(list[0].chain_pem, "");
    cr_assert_str_eq(list[0].subject, "O=meshd, CN=example.org");
    cr_assert_eq(list[0].not_after, 2000000000);
    cr_assert_eq(list[0].created_at, 1000);
    cr_assert_str_eq(list[1].state, "prepared");
    store_ca_free_list(list, n);

    cr_assert_eq(store_ca_get_active(env.st, &ca, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca.id, a);
    cr_assert_str_eq(ca.key_path, "/var/lib/meshd/ca/key.pem");
    store_ca_free(&ca);

    /* Activating b while a is active: refused by the database. */
    cr_assert_eq(store_ca_set_state(env.st, b, "active", &err), MESH_EEXISTS);
    cr_assert_not_null(strstr(err.msg, "is active"), "%s", err.msg);

    /* The rotation as ca_activate does it: one transaction, retire first. */
    cr_assert_eq(store_begin(env.st, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_ca_set_state(env.st, a, "retired", &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_ca_set_state(env.st, b, "active", &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_ca_get_active(env.st, &ca, &err), MESH_OK);
    cr_assert_eq(ca.id, b);
    store_ca_free(&ca);

    /* A second active CA cannot be inserted either. */
    store_ca dup = {.state = "active", .cert_pem = "PEM", .key_path = "/k", .serial_hex = "0c",
                    .key_type = "ec-p256", .not_before = 1, .not_after = 2};
    cr_assert_eq(store_ca_insert(env.st, &dup, NULL, &err), MESH_EEXISTS);
}

Test(store_ca, invalid_input, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int64_t id = tstore_add_ca(env.st, "prepared", "01");
    cr_assert_eq(store_ca_set_state(env.st, id, "enabled", &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "enabled"), "%s", err.msg);
    cr_assert_eq(store_ca_set_state(env.st, id, NULL, &err), MESH_EINVAL);
    cr_assert_eq(store_ca_set_state(env.st, id + 100, "retired", &err), MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "not found"), "%s", err.msg);

    store_ca ca = {.state = "prepared", .cert_pem = "PEM", .key_path = "/k", .serial_hex = "02",
                   .key_type = "ec-p256", .not_before = 10, .not_after = 20};
    int64_t out = -1;
    store_ca bad = ca;
    bad.state = "bogus";
    cr_assert_eq(store_ca_insert(env.st, &bad, &out, &err), MESH_EINVAL);
    cr_assert_eq(out, 0);
    bad = ca;
    bad.serial_hex = "0X02";
    cr_assert_eq(store_ca_insert(env.st, &bad, NULL, &err), MESH_EINVAL);
    bad = ca;
    bad.cert_pem = "";
    cr_assert_eq(store_ca_insert(env.st, &bad, NULL, &err), MESH_EINVAL);
    bad = ca;
    bad.key_path = NULL;
    cr_assert_eq(store_ca_insert(env.st, &bad, NULL, &err), MESH_EINVAL);
    bad = ca;
    bad.not_after = bad.not_before;
    cr_assert_eq(store_ca_insert(env.st, &bad, NULL, &err), MESH_EINVAL);
    cr_assert_eq(store_ca_insert(env.st, NULL, NULL, &err), MESH_EINVAL);

    /* None of the rejected rows landed; a valid one does, with created_at defaulted. */
    cr_assert_eq(store_ca_insert(env.st, &ca, &out, &err), MESH_OK, "%s", err.msg);
    store_ca *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_ca_list(env.st, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(list[1].id, out);
    cr_assert_geq(list[1].created_at, (int64_t)time(NULL) - 5);
    store_ca_free_list(list, n);
}

/* ---- registrations -------------------------------------------------------------- */

Test(store_registration, add_get_list_dup, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "unix:uid:1000", "127.0.0.1:15001",
                                        &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_DB, NULL, NULL, &err), MESH_OK);

    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_EEXISTS);
    cr_assert_str_eq(err.msg, "registration " TSTORE_ID_WEB " already exists");

    store_registration r;
    cr_assert_eq(store_registration_get(env.st, "", TSTORE_ID_WEB, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(r.spiffe_id, TSTORE_ID_WEB);
    cr_assert_str_eq(r.selectors, "unix:uid:1000");
    cr_assert_str_eq(r.address, "127.0.0.1:15001");
    cr_assert_gt(r.id, 0);
    cr_assert_geq(r.created_at, (int64_t)time(NULL) - 5);
    store_registration_free(&r);

    cr_assert_eq(store_registration_get(env.st, "", "spiffe://example.org/ns/x/sa/y", &r, &err),
                 MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "spiffe://example.org/ns/x/sa/y"), "%s", err.msg);

    store_registration *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_registration_list(env.st, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(list[0].spiffe_id, TSTORE_ID_DB);   /* sorted by SPIFFE ID */
    cr_assert_str_eq(list[0].selectors, "");
    cr_assert_str_eq(list[0].address, "");
    cr_assert_str_eq(list[1].spiffe_id, TSTORE_ID_WEB);
    store_registration_free_list(list, n);
}

Test(store_registration, invalid_input, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_registration_add(env.st, "", NULL, "", "", &err), MESH_EINVAL);
    cr_assert_eq(store_registration_add(env.st, "", "", "", "", &err), MESH_EINVAL);
    cr_assert_eq(store_registration_add(env.st, "", "https://example.org/web", "", "", &err),
                 MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "spiffe://"), "%s", err.msg);
    cr_assert_eq(store_registration_add(env.st, "", "spiffe://", "", "", &err), MESH_EINVAL);
    cr_assert_eq(store_registration_remove(env.st, "", TSTORE_ID_WEB, &err), MESH_ENOTFOUND);
    store_registration *list = NULL;
    size_t n = 1;
    cr_assert_eq(store_registration_list(env.st, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 0);
    free(list);
}

Test(store_registration, remove_drops_unused_tokens_only, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int64_t exp = (int64_t)time(NULL) + 3600;
    char used[65], unused[65], other[65];
    tstore_hex64(1, used);
    tstore_hex64(2, unused);
    tstore_hex64(3, other);
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_OK);
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_DB, "", "", &err), MESH_OK);
    cr_assert_eq(store_token_add(env.st, used, TSTORE_ID_WEB, "", exp, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_token_add(env.st, unused, TSTORE_ID_WEB, "", exp, &err), MESH_OK);
    cr_assert_eq(store_token_add(env.st, other, TSTORE_ID_DB, "", exp, &err), MESH_OK);
    char *id = NULL;
    cr_assert_eq(store_token_consume(env.st, used, exp - 100, &id, NULL, &err), MESH_OK, "%s", err.msg);
    free(id);

    cr_assert_eq(store_registration_remove(env.st, "", TSTORE_ID_WEB, &err), MESH_OK, "%s", err.msg);
    store_registration r;
    cr_assert_eq(store_registration_get(env.st, "", TSTORE_ID_WEB, &r, &err), MESH_ENOTFOUND);

    /* The unused token is gone, the spent one still reads as spent (kept as a
     * record), the other identity's token still works. */
    cr_assert_eq(store_token_consume(env.st, unused, exp - 100, &id, NULL, &err), MESH_ENOTFOUND);
    cr_assert_eq(store_token_consume(env.st, used, exp - 100, &id, NULL, &err), MESH_EPERM);
    cr_assert_eq(store_token_consume(env.st, other, exp - 100, &id, NULL, &err), MESH_OK);
    cr_assert_str_eq(id, TSTORE_ID_DB);
    free(id);

    /* Re-adding the identity works and does not resurrect tokens. */
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_OK);
    cr_assert_eq(store_token_consume(env.st, unused, exp - 100, &id, NULL, &err), MESH_ENOTFOUND);
}

/* ---- join tokens ---------------------------------------------------------------- */

Test(store_token, consume_once, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int64_t now = (int64_t)time(NULL);
    char h[65];
    tstore_hex64(0xabc, h);
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_OK);
    cr_assert_eq(store_token_add(env.st, h, TSTORE_ID_WEB, "", now + 3600, &err), MESH_OK, "%s",
                 err.msg);
    char *id = NULL;
    cr_assert_eq(store_token_consume(env.st, h, now, &id, NULL, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(id, TSTORE_ID_WEB);
    free(id);
    id = NULL;
    mesh_err_clear(&err);
    cr_assert_eq(store_token_consume(env.st, h, now + 1, &id, NULL, &err), MESH_EPERM);
    cr_assert_null(id);
    cr_assert_eq(err.code, MESH_EPERM);
    cr_assert_not_null(strstr(err.msg, "already used"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, TSTORE_ID_WEB), "%s", err.msg);
    /* Spent and since expired: still reported as spent. */
    cr_assert_eq(store_token_consume(env.st, h, now + 7200, &id, NULL, &err), MESH_EPERM);
}

Test(store_token, expired_unknown_invalid, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int64_t now = (int64_t)time(NULL);
    char h[65], unknown[65];
    tstore_hex64(7, h);
    tstore_hex64(8, unknown);
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_OK);
    cr_assert_eq(store_token_add(env.st, h, TSTORE_ID_WEB, "", now + 60, &err), MESH_OK);
    char *id = NULL;
    cr_assert_eq(store_token_consume(env.st, h, now + 60, &id, NULL, &err), MESH_EEXPIRED);
    cr_assert_null(id);
    cr_assert_not_null(strstr(err.msg, "expired at"), "%s", err.msg);
    cr_assert_eq(store_token_consume(env.st, h, now + 61, &id, NULL, &err), MESH_EEXPIRED);
    /* An expired attempt does not spend it: still valid at an earlier time. */
    cr_assert_eq(store_token_consume(env.st, h, now + 59, &id, NULL, &err), MESH_OK, "%s", err.msg);
    free(id);
    id = NULL;

    cr_assert_eq(store_token_consume(env.st, unknown, now, &id, NULL, &err), MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "not recognised"), "%s", err.msg);
    cr_assert_eq(store_token_consume(env.st, "abc", now, &id, NULL, &err), MESH_EINVAL);
    cr_assert_eq(store_token_consume(env.st, NULL, now, &id, NULL, &err), MESH_EINVAL);
    char upper[65];
    tstore_hex64(0xABCDEF, upper);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    cr_assert_eq(store_token_consume(env.st, upper, now, &id, NULL, &err), MESH_EINVAL);
    cr_assert_null(id);
}

Test(store_token, add_requires_registration_and_future_expiry, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int64_t now = (int64_t)time(NULL);
    char h[65];
    tstore_hex64(9, h);
    cr_assert_eq(store_token_add(env.st, h, TSTORE_ID_WEB, "", now + 60, &err), MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "no such registration"), "%s", err.msg);
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_OK);
    cr_assert_eq(store_token_add(env.st, h, TSTORE_ID_WEB, "", now - 1, &err), MESH_EINVAL);
    cr_assert_eq(store_token_add(env.st, "nothex", TSTORE_ID_WEB, "", now + 60, &err), MESH_EINVAL);
    cr_assert_eq(store_token_add(env.st, h, "web", "", now + 60, &err), MESH_EINVAL);
    cr_assert_eq(store_token_add(env.st, h, TSTORE_ID_WEB, "", now + 60, &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_eq(store_token_add(env.st, h, TSTORE_ID_WEB, "", now + 60, &err), MESH_EEXISTS);
}
