/* tests/unit/test_store_revoke.c — the store's revocation records
 * (store/store_revoke.c): certificates by key and the revoked entries of a
 * CA, compromised keys, stored CRLs with their checks, and the "problem" of
 * a proxy row (set, shown, cleared when the sidecar connects again). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "tests/unit/test_store_util.h"

static tstore_env env;

static void setup(void) { tstore_setup_any(&env, 1); }
static void teardown(void) { tstore_teardown(&env); }

TestSuite(store_revoke, .init = setup, .fini = teardown);

static void insert(unsigned serial, const char *id, int64_t ca, int64_t not_after,
                   const char *pubkey)
{
    store_cert c;
    char buf[41];
    mesh_err err = {0};
    tstore_cert_init(&c, buf, serial, id, ca, 1000, not_after);
    if (pubkey)
        c.pubkey_sha256 = (char *)pubkey;
    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_OK, "%s", err.msg);
}

static const char *ser(unsigned n, char buf[41])
{
    snprintf(buf, 41, "%032x", n);
    return buf;
}

Test(store_revoke, certs_by_key_and_revoked_entries_of_a_ca)
{
    int64_t ca1 = tstore_add_ca(env.st, "active", "01");
    int64_t ca2 = tstore_add_ca(env.st, "prepared", "02");
    char other[65], b[41];
    tstore_hex64(7, other);
    insert(1, TSTORE_ID_WEB, ca1, 5000, NULL);
    insert(2, TSTORE_ID_DB, ca1, 5000, NULL);
    insert(3, TSTORE_ID_WEB, ca1, 1500, NULL);   /* expired at 2000 */
    insert(4, TSTORE_ID_WEB, ca2, 5000, other);
    store_cert c;
    tstore_cert_init(&c, b, 1, TSTORE_ID_WEB, ca1, 0, 0);
    const char *key = c.pubkey_sha256;
    store_cert *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_cert_list_by_pubkey(env.st, key, 2000, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 2, "both identities, not the expired one, not the other key");
    store_cert_free_list(list, n);
    cr_assert_eq(store_cert_list_by_pubkey(env.st, "nothex", 2000, &list, &n, &err), MESH_EINVAL);

    cr_assert_eq(store_cert_revoke(env.st, ser(2, b), "keyCompromise", 1100, &err), MESH_OK);
    cr_assert_eq(store_cert_revoke(env.st, ser(3, b), "superseded", 1100, &err), MESH_OK);
    cr_assert_eq(store_cert_revoke(env.st, ser(4, b), "", 1100, &err), MESH_OK);
    cr_assert_eq(store_cert_list_revoked_for_ca(env.st, ca1, 1000, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(list[0].serial_hex, ser(2, b), "ordered by serial");
    cr_assert_str_eq(list[0].revoke_reason, "keyCompromise");
    cr_assert_eq(list[0].revoked_at, 1100);
    store_cert_free_list(list, n);
    cr_assert_eq(store_cert_list_revoked_for_ca(env.st, ca1, 2000, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 1, "the long-expired entry is left out");
    store_cert_free_list(list, n);

    cr_assert_eq(store_cert_set_revoke_reason(env.st, ser(3, b), "keyCompromise", &err), MESH_OK);
    cr_assert_eq(store_cert_set_revoke_reason(env.st, ser(1, b), "keyCompromise", &err),
                 MESH_ENOTFOUND, "only a revoked cert has a reason to change");
}

Test(store_revoke, compromised_keys)
{
    char k[65], b[41];
    tstore_hex64(42, k);
    mesh_err err = {0};
    store_compromised_key got;
    cr_assert_eq(store_key_compromised_get(env.st, k, &got, &err), MESH_ENOTFOUND);
    cr_assert_eq(store_key_compromised_add(env.st, k, ser(9, b), TSTORE_ID_WEB, 1234, &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(store_key_compromised_add(env.st, k, ser(10, b), TSTORE_ID_WEB, 1300, &err),
                 MESH_EEXISTS);
    cr_assert_eq(store_key_compromised_get(env.st, k, &got, &err), MESH_OK);
    cr_assert_str_eq(got.serial_hex, ser(9, b), "the first report stays");
    cr_assert_str_eq(got.spiffe_id, TSTORE_ID_WEB);
    cr_assert_eq(got.reported_at, 1234);
    store_compromised_key_free(&got);
    cr_assert_eq(store_key_compromised_add(env.st, "zz", ser(9, b), TSTORE_ID_WEB, 1, &err),
                 MESH_EINVAL);
    cr_assert_eq(store_key_compromised_add(env.st, k, NULL, TSTORE_ID_WEB, 1, &err), MESH_EINVAL);
}

Test(store_revoke, crls)
{
    int64_t ca1 = tstore_add_ca(env.st, "active", "01");
    int64_t ca2 = tstore_add_ca(env.st, "retired", "02");
    char h[65];
    tstore_hex64(5, h);
    mesh_err err = {0};
    store_crl got;
    cr_assert_eq(store_crl_get(env.st, ca1, &got, &err), MESH_ENOTFOUND);
    store_crl c = {.ca_id = ca2, .crl_number = 1, .this_update = 100, .next_update = 200,
                   .n_entries = 0, .entries_sha256 = h, .crl_pem = "-----BEGIN X509 CRL-----\n"};
    cr_assert_eq(store_crl_put(env.st, &c, &err), MESH_OK, "%s", err.msg);
    c.ca_id = ca1;
    cr_assert_eq(store_crl_put(env.st, &c, &err), MESH_OK);
    c.crl_number = 2;
    c.n_entries = 3;
    cr_assert_eq(store_crl_put(env.st, &c, &err), MESH_OK, "replaces");
    cr_assert_eq(store_crl_get(env.st, ca1, &got, &err), MESH_OK);
    cr_assert_eq(got.crl_number, 2);
    cr_assert_eq(got.n_entries, 3);
    cr_assert_str_eq(got.entries_sha256, h);
    store_crl_free(&got);
    store_crl *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_crl_list(env.st, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(list[0].ca_id, ca1, "by CA id");
    store_crl_free_list(list, n);
    /* Bad input: nothing written. */
    c.crl_number = 0;
    cr_assert_eq(store_crl_put(env.st, &c, &err), MESH_EINVAL);
    c.crl_number = 3;
    c.next_update = c.this_update;
    cr_assert_eq(store_crl_put(env.st, &c, &err), MESH_EINVAL);
    c.next_update = 300;
    c.ca_id = 999;
    cr_assert_eq(store_crl_put(env.st, &c, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "does not exist"), "%s", err.msg);
    c.ca_id = ca1;
    c.crl_pem = "";
    cr_assert_eq(store_crl_put(env.st, &c, &err), MESH_EINVAL);
    cr_assert_eq(store_crl_get(env.st, ca1, &got, &err), MESH_OK);
    cr_assert_eq(got.crl_number, 2);
    store_crl_free(&got);
}

static const store_proxy *find(const store_proxy *list, size_t n, const char *node)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].node_id, node) == 0)
            return &list[i];
    return NULL;
}

Test(store_revoke, proxy_problem)
{
    mesh_err err = {0};
    cr_assert_eq(store_proxy_upsert(env.st, "web-1", TSTORE_ID_WEB, "p", 1, 9000, "m1", 100, &err),
                 MESH_OK);
    cr_assert_eq(store_proxy_set_problem(env.st, "web-1", TSTORE_ID_WEB, "SVID revoked", 110, &err),
                 MESH_OK);
    cr_assert_eq(store_proxy_upsert(env.st, "web-1", TSTORE_ID_WEB, NULL, 0, 9000, "m1", 111, &err),
                 MESH_OK);
    /* An unknown node gets a row of its own. */
    cr_assert_eq(store_proxy_set_problem(env.st, "api-1", TSTORE_ID_DB, "stranded", 120, &err),
                 MESH_OK);
    store_proxy *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_proxy_list(env.st, &list, &n, &err), MESH_OK);
    const store_proxy *w = find(list, n, "web-1"), *a = find(list, n, "api-1");
    cr_assert(w && a);
    cr_assert_str_eq(w->problem, "SVID revoked", "a disconnect keeps the problem");
    cr_assert_not(w->connected);
    cr_assert_str_eq(a->problem, "stranded");
    cr_assert_str_eq(a->spiffe_id, TSTORE_ID_DB);
    cr_assert_not(a->connected);
    store_proxy_free_list(list, n);
    /* Back with a valid SVID: cleared. */
    cr_assert_eq(store_proxy_upsert(env.st, "web-1", TSTORE_ID_WEB, NULL, 1, 9500, "m1", 130, &err),
                 MESH_OK);
    cr_assert_eq(store_proxy_list(env.st, &list, &n, &err), MESH_OK);
    cr_assert_str_eq(find(list, n, "web-1")->problem, "");
    store_proxy_free_list(list, n);
    cr_assert_eq(store_proxy_set_problem(env.st, NULL, NULL, "x", 1, &err), MESH_EINVAL);
}
