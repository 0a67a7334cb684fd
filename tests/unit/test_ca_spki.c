/* tests/unit/test_ca_spki.c — the subject public key in issued SVIDs
 * (ca/ca_spki.c). The issuance path copies EC named-curve keys into the
 * leaf without OpenSSL's encoder; these tests pin that the leaf's
 * SubjectPublicKeyInfo is byte-for-byte what i2d_PUBKEY of the key gives
 * (what X509_set_pubkey would have written) and that the store's
 * pubkey_sha256 is pubkey_sha256_hex of the key, for every issuing path and
 * for the key encodings that must take the general path (RSA, compressed
 * points, explicit curve parameters). */
#include <criterion/criterion.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/ca_internal.h"
#include "ca/ca_pubkey.h"
#include "ca/csr.h"
#include "tests/unit/test_ca_util.h"

/* P-256 key whose public point is written compressed (33 bytes). */
static EVP_PKEY *key_ec_compressed(void)
{
    EVP_PKEY *k = tca_key_ec("P-256");
    cr_assert_eq(EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                                OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED),
                 1);
    return k;
}

/* P-256 key whose SPKI carries the explicit curve parameters, not the OID. */
static EVP_PKEY *key_ec_explicit(void)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    cr_assert_not_null(c);
    cr_assert_eq(EVP_PKEY_keygen_init(c), 1);
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-256", 0),
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING,
                                         (char *)OSSL_PKEY_EC_ENCODING_EXPLICIT, 0),
        OSSL_PARAM_construct_end(),
    };
    cr_assert_eq(EVP_PKEY_CTX_set_params(c, p), 1);
    EVP_PKEY *k = NULL;
    cr_assert_eq(EVP_PKEY_generate(c, &k), 1);
    EVP_PKEY_CTX_free(c);
    return k;
}

/* DER SPKI of key as OpenSSL's encoder writes it (the pre-ca_spki.c leaf). */
static int key_der(EVP_PKEY *key, unsigned char **der)
{
    *der = NULL;
    int n = i2d_PUBKEY(key, der);
    cr_assert_gt(n, 0);
    return n;
}

/* The leaf in cert_pem carries exactly key's SPKI, and the store row for it
 * records pubkey_sha256_hex(key). */
static void assert_leaf_key(mesh_store *st, const ca_issued *out, EVP_PKEY *key)
{
    mesh_err err = {0};
    X509 *x = NULL;
    cr_assert_eq(pem_read_cert(out->cert_pem, &x, &err), MESH_OK, "%s", err.msg);
    unsigned char *want = NULL, *got = NULL;
    int wn = key_der(key, &want);
    int gn = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &got);
    cr_assert_eq(gn, wn, "leaf SPKI is %d bytes, the key's is %d", gn, wn);
    cr_assert(memcmp(got, want, (size_t)wn) == 0, "leaf SPKI differs from i2d_PUBKEY");
    cr_assert_eq(EVP_PKEY_eq(X509_get0_pubkey(x), key), 1, "leaf key is not the subject key");

    char spki[65];
    cr_assert_eq(pubkey_sha256_hex(key, spki, &err), MESH_OK, "%s", err.msg);
    store_cert row;
    cr_assert_eq(store_cert_get(st, out->serial_hex, &row, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(row.pubkey_sha256, spki);
    store_cert_free(&row);
    OPENSSL_free(want);
    OPENSSL_free(got);
    X509_free(x);
}

/* Issues an SVID from a CSR made with key and checks the leaf's key. */
static void issue_from_csr(tca_env *e, mesh_ca *ca, EVP_PKEY *key)
{
    char *csr = NULL;
    mesh_err err = {0};
    cr_assert_eq(csr_create(key, TCA_ID_WEB, &csr, &err), MESH_OK, "%s", err.msg);
    ca_issue_req req = {.csr_pem = csr, .authorised_id = TCA_ID_WEB, .actor = "test"};
    ca_issued out;
    cr_assert_eq(ca_issue_svid(ca, e->st, &req, &out, &err), MESH_OK, "%s", err.msg);
    assert_leaf_key(e->st, &out, key);
    ca_issued_free(&out);
    free(csr);
}

/* Re-certifies key without a CSR (same-key rotation) and checks the leaf's key. */
static void issue_for_pubkey(tca_env *e, mesh_ca *ca, EVP_PKEY *key)
{
    ca_issued out;
    mesh_err err = {0};
    cr_assert_eq(ca_issue_for_pubkey(ca, e->st, key, TCA_ID_WEB, "", 600, "test", &out, &err),
                 MESH_OK, "%s", err.msg);
    assert_leaf_key(e->st, &out, key);
    ca_issued_free(&out);
}

Test(ca_spki, ec_named_curves_csr_and_rotation)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    const char *curves[] = {"P-256", "P-384"};
    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY *k = tca_key_ec(curves[i]);
        issue_from_csr(&e, ca, k);
        issue_for_pubkey(&e, ca, k);
        EVP_PKEY_free(k);
    }
    cr_assert_eq(tca_cert_count(e.st), 4);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_spki, rsa_takes_the_general_path, .timeout = 30)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    EVP_PKEY *k = tca_key_rsa(2048);
    issue_from_csr(&e, ca, k);
    issue_for_pubkey(&e, ca, k);
    EVP_PKEY_free(k);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_spki, compressed_point_is_kept_compressed)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    EVP_PKEY *k = key_ec_compressed();
    unsigned char *der = NULL;
    int n = key_der(k, &der);
    cr_assert_eq(n, 59, "a compressed P-256 SPKI is 59 bytes, got %d", n);
    OPENSSL_free(der);
    issue_from_csr(&e, ca, k);
    issue_for_pubkey(&e, ca, k);
    EVP_PKEY_free(k);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_spki, explicit_curve_parameters_are_kept)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    EVP_PKEY *k = key_ec_explicit();
    unsigned char *der = NULL;
    int n = key_der(k, &der);
    cr_assert_gt(n, 200, "explicit parameters make a long SPKI, got %d bytes", n);
    OPENSSL_free(der);
    issue_from_csr(&e, ca, k);
    issue_for_pubkey(&e, ca, k);
    EVP_PKEY_free(k);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_spki, new_key_for_meshd)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    char *key_pem = NULL;
    ca_issued out;
    mesh_err err = {0};
    cr_assert_eq(ca_issue_with_new_key(ca, e.st, "spiffe://example.org/meshd", NULL, 3600,
                                       &key_pem, &out, &err),
                 MESH_OK, "%s", err.msg);
    EVP_PKEY *k = NULL;
    cr_assert_eq(pem_read_private_key(key_pem, &k, &err), MESH_OK, "%s", err.msg);
    assert_leaf_key(e.st, &out, k);
    EVP_PKEY_free(k);
    OPENSSL_clear_free(key_pem, strlen(key_pem));
    ca_issued_free(&out);
    ca_free(ca);
    tca_teardown(&e);
}

/* The helpers directly: the fast path and its fallback give the same leaf
 * SPKI, and a missing key is a clear error rather than an empty SPKI. */
Test(ca_spki, set_pubkey_helper)
{
    EVP_PKEY *k = tca_key_ec("P-256");
    char *csr_pem = NULL;
    mesh_err err = {0};
    cr_assert_eq(csr_create(k, TCA_ID_WEB, &csr_pem, &err), MESH_OK, "%s", err.msg);
    X509_REQ *req = NULL;
    char id[600];
    cr_assert_eq(ca_csr_parse_checked(csr_pem, TCA_TD, TCA_ID_WEB, &req, id, sizeof id, &err),
                 MESH_OK, "%s", err.msg);

    X509 *fast = X509_new(), *general = X509_new(), *none = X509_new();
    cr_assert(fast && general && none);
    cr_assert_eq(ca_leaf_set_pubkey(fast, X509_REQ_get0_pubkey(req),
                                    X509_REQ_get_X509_PUBKEY(req), &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(X509_set_pubkey(general, k), 1);
    char h1[65], h2[65], want[65];
    cr_assert_eq(ca_leaf_spki_sha256_hex(fast, h1, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca_leaf_spki_sha256_hex(general, h2, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(pubkey_sha256_hex(k, want, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(h1, want);
    cr_assert_str_eq(h2, want);

    err = (mesh_err){0};
    cr_assert_eq(ca_leaf_set_pubkey(none, NULL, NULL, &err), MESH_ECRYPTO);
    cr_assert(strstr(err.msg, "cannot set the SVID public key"), "%s", err.msg);
    ERR_clear_error();

    X509_free(fast);
    X509_free(general);
    X509_free(none);
    X509_REQ_free(req);
    free(csr_pem);
    EVP_PKEY_free(k);
}
