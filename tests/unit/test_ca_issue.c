/* tests/unit/test_ca_issue.c — SVID issuance: the certificate profile checked
 * with the openssl CLI, what lands in the store, TTL rules. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"
#include "ca/ca_pubkey.h"
#include "ca/csr.h"
#include "tests/unit/test_ca_util.h"

/* Writes the bundle and leaf to files and runs openssl verify (strict). */
static void verify_with_cli(tca_env *e, const char *leaf_pem, int expect_ok)
{
    char *bundle = NULL;
    mesh_err err = {0};
    cr_assert_eq(ca_bundle_pem(e->st, &bundle, &err), MESH_OK, "%s", err.msg);
    char bpath[256], lpath[256], out[4096];
    snprintf(bpath, sizeof bpath, "%s/bundle.pem", e->dir);
    snprintf(lpath, sizeof lpath, "%s/leaf.pem", e->dir);
    tca_write(bpath, bundle);
    tca_write(lpath, leaf_pem);
    int rc = tca_sh(out, sizeof out, "openssl verify -x509_strict -purpose sslclient -CAfile %s %s",
                    bpath, lpath);
    if (expect_ok)
        cr_assert_eq(rc, 0, "openssl verify failed: %s", out);
    else
        cr_assert_neq(rc, 0, "openssl verify should fail: %s", out);
    rc = tca_sh(out, sizeof out, "openssl verify -x509_strict -purpose sslserver -CAfile %s %s",
                bpath, lpath);
    cr_assert_eq(rc == 0, expect_ok != 0, "sslserver purpose: %s", out);
    free(bundle);
}

static void x509_text(tca_env *e, const char *pem, char *out, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/x.pem", e->dir);
    tca_write(path, pem);
    cr_assert_eq(tca_sh(out, len, "openssl x509 -in %s -noout -text", path), 0, "%s", out);
}

Test(ca_issue, ec_svid_profile_store_and_audit)
{
    tca_env e;
    tca_setup(&e);
    int64_t caid = tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    EVP_PKEY *key = NULL;
    char *csr = tca_csr(NULL, TCA_ID_WEB, &key);
    ca_issue_req req = {.csr_pem = csr, .authorised_id = TCA_ID_WEB, .ttl_seconds = 3600,
                        .actor = "token:" TCA_ID_WEB};
    ca_issued out;
    mesh_err err = {0};
    int64_t before = time(NULL);
    cr_assert_eq(ca_issue_svid(ca, e.st, &req, &out, &err), MESH_OK, "%s", err.msg);
    int64_t after = time(NULL);

    verify_with_cli(&e, out.cert_pem, 1);
    char txt[16384];
    x509_text(&e, out.cert_pem, txt, sizeof txt);
    cr_assert_eq(tca_count(txt, "URI:"), 1, "exactly one URI SAN: %s", txt);
    cr_assert(strstr(txt, "X509v3 Subject Alternative Name: critical\n                URI:" TCA_ID_WEB
                          "\n"),
              "%s", txt);
    cr_assert_null(strstr(txt, "DNS:"), "no DNS SAN from a CSR");
    cr_assert(strstr(txt, "X509v3 Basic Constraints: critical\n                CA:FALSE"), "%s",
              txt);
    cr_assert(strstr(txt, "X509v3 Key Usage: critical\n                Digital Signature\n"),
              "EC leaf: digitalSignature only: %s", txt);
    cr_assert(strstr(txt, "TLS Web Server Authentication, TLS Web Client Authentication"), "%s",
              txt);
    cr_assert(strstr(txt, "X509v3 Subject Key Identifier"), "%s", txt);
    cr_assert(strstr(txt, "X509v3 Authority Key Identifier"), "%s", txt);
    cr_assert(strstr(txt, "Subject: \n") || strstr(txt, "Subject:\n"), "empty subject: %s", txt);
    cr_assert(strstr(txt, "Signature Algorithm: ecdsa-with-SHA256"), "%s", txt);
    cr_assert_null(strstr(txt, "Certificate Sign"));

    /* returned facts */
    cr_assert_str_eq(out.spiffe_id, TCA_ID_WEB);
    cr_assert_eq(out.chain_len, 1, "self-signed root: the chain is the leaf alone");
    cr_assert_str_eq(out.chain[0], out.cert_pem);
    cr_assert_str_eq(out.chain_pem, out.cert_pem);
    cr_assert_geq(out.not_before, before - CA_BACKDATE_SECONDS - 1);
    cr_assert_leq(out.not_before, after - CA_BACKDATE_SECONDS);
    cr_assert_geq(out.not_after, before + 3600);
    cr_assert_leq(out.not_after, after + 3600);
    /* 128-bit serial with the top bit clear: at most 32 hex digits, < 8 first */
    size_t sl = strlen(out.serial_hex);
    cr_assert(sl > 16 && sl <= 32, "serial %s", out.serial_hex);
    if (sl == 32)
        cr_assert(out.serial_hex[0] < '8', "serial %s", out.serial_hex);
    char id[600], serial[48];
    int64_t nb, na;
    cr_assert_eq(cert_pem_info(out.cert_pem, id, sizeof id, serial, sizeof serial, &nb, &na, &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_str_eq(id, TCA_ID_WEB);
    cr_assert_str_eq(serial, out.serial_hex);
    cr_assert_eq(nb, out.not_before);
    cr_assert_eq(na, out.not_after);

    /* stored before return */
    store_cert row;
    cr_assert_eq(store_cert_get(e.st, out.serial_hex, &row, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(row.spiffe_id, TCA_ID_WEB);
    cr_assert_eq(row.ca_id, caid);
    cr_assert_eq(row.not_after, out.not_after);
    cr_assert_str_eq(row.cert_pem, out.cert_pem);
    char spki[65];
    cr_assert_eq(pubkey_sha256_hex(key, spki, &err), MESH_OK);
    cr_assert_str_eq(row.pubkey_sha256, spki);
    store_cert_free(&row);
    cr_assert_eq(tca_audit_count(e.st, "cert.issue", 1), 1);

    /* the SPKI hash agrees with openssl's view of the key */
    char kpath[256], sh[512];
    snprintf(kpath, sizeof kpath, "%s/x.pem", e.dir);
    tca_write(kpath, out.cert_pem);
    cr_assert_eq(tca_sh(sh, sizeof sh,
                        "openssl x509 -in %s -noout -pubkey | openssl pkey -pubin -outform DER | "
                        "sha256sum",
                        kpath),
                 0);
    cr_assert(strncmp(sh, spki, 64) == 0, "%s vs %s", sh, spki);

    /* two issues never share a serial */
    ca_issued out2;
    tca_issue(ca, e.st, TCA_ID_WEB, 0, &out2);
    cr_assert_str_neq(out.serial_hex, out2.serial_hex);
    cr_assert_eq(tca_cert_count(e.st), 2);

    ca_issued_free(&out2);
    ca_issued_free(&out);
    cr_assert_null(out.cert_pem, "freed struct is zeroed");
    EVP_PKEY_free(key);
    free(csr);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_issue, rsa_csr_gets_key_encipherment, .timeout = 30)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, "rsa-3072", 0);
    mesh_ca *ca = tca_load(&e);
    char *csr = tca_csr("rsa-2048", TCA_ID_DB, NULL);
    ca_issue_req req = {.csr_pem = csr, .authorised_id = TCA_ID_DB, .actor = "test"};
    ca_issued out;
    mesh_err err = {0};
    cr_assert_eq(ca_issue_svid(ca, e.st, &req, &out, &err), MESH_OK, "%s", err.msg);
    verify_with_cli(&e, out.cert_pem, 1);
    char txt[16384];
    x509_text(&e, out.cert_pem, txt, sizeof txt);
    cr_assert(strstr(txt, "X509v3 Key Usage: critical\n                Digital Signature, Key "
                          "Encipherment"),
              "%s", txt);
    cr_assert(strstr(txt, "Signature Algorithm: sha256WithRSAEncryption"), "%s", txt);
    ca_issued_free(&out);
    free(csr);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_issue, p384_csr_accepted)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    char *csr = tca_csr("ec-p384", TCA_ID_WEB, NULL);
    ca_issue_req req = {.csr_pem = csr, .authorised_id = TCA_ID_WEB};
    ca_issued out;
    mesh_err err = {0};
    cr_assert_eq(ca_issue_svid(ca, e.st, &req, &out, &err), MESH_OK, "%s", err.msg);
    verify_with_cli(&e, out.cert_pem, 1);
    ca_issued_free(&out);
    free(csr);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_issue, ttl_rules)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    char *csr = tca_csr(NULL, TCA_ID_WEB, NULL);
    ca_issue_req req = {.csr_pem = csr, .authorised_id = TCA_ID_WEB};
    ca_issued out;
    mesh_err err = {0};

    /* 0 = the 24 h default */
    cr_assert_eq(ca_issue_svid(ca, e.st, &req, &out, &err), MESH_OK, "%s", err.msg);
    int64_t now = time(NULL);
    cr_assert(out.not_after >= now + CA_DEFAULT_SVID_TTL - 2 &&
                  out.not_after <= now + CA_DEFAULT_SVID_TTL,
              "default ttl: %lld", (long long)(out.not_after - now));
    ca_issued_free(&out);
    /* the exact maximum is fine */
    req.ttl_seconds = CA_MAX_SVID_TTL;
    cr_assert_eq(ca_issue_svid(ca, e.st, &req, &out, &err), MESH_OK, "%s", err.msg);
    ca_issued_free(&out);
    int64_t stored = tca_cert_count(e.st);

    const int64_t bad[] = {CA_MAX_SVID_TTL + 1, 365LL * 24 * 3600, CA_MIN_SVID_TTL - 1, -1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req.ttl_seconds = bad[i];
        cr_assert_eq(ca_issue_svid(ca, e.st, &req, &out, &err), MESH_EINVAL, "ttl %lld",
                     (long long)bad[i]);
        cr_assert(strstr(err.msg, "out of range"), "%s", err.msg);
        cr_assert_null(out.cert_pem);
    }
    cr_assert_eq(tca_cert_count(e.st), stored, "nothing stored for rejected TTLs");
    free(csr);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_issue, ttl_past_ca_expiry_is_refused)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 3600);
    mesh_ca *ca = tca_load(&e);
    char *csr = tca_csr(NULL, TCA_ID_WEB, NULL);
    ca_issue_req req = {.csr_pem = csr, .authorised_id = TCA_ID_WEB, .ttl_seconds = 7200};
    ca_issued out;
    mesh_err err = {0};
    cr_assert_eq(ca_issue_svid(ca, e.st, &req, &out, &err), MESH_EEXPIRED);
    cr_assert(strstr(err.msg, "expires at"), "%s", err.msg);
    cr_assert(strstr(err.msg, "rotate the CA"), "%s", err.msg);
    cr_assert_eq(tca_cert_count(e.st), 0);
    cr_assert_eq(tca_audit_count(e.st, "cert.issue", 0), 1, "refusal audited");
    /* within the CA's life it works */
    req.ttl_seconds = 600;
    cr_assert_eq(ca_issue_svid(ca, e.st, &req, &out, &err), MESH_OK, "%s", err.msg);
    ca_issued_free(&out);
    free(csr);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_issue, authorised_id_null_takes_csr_identity)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    char *csr = tca_csr(NULL, TCA_ID_DB, NULL);
    ca_issue_req req = {.csr_pem = csr, .actor = "meshctl"};
    ca_issued out;
    mesh_err err = {0};
    cr_assert_eq(ca_issue_svid(ca, e.st, &req, &out, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(out.spiffe_id, TCA_ID_DB);
    ca_issued_free(&out);
    free(csr);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_issue, dns_names_only_from_caller)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    char *csr = tca_csr(NULL, TCA_ID_WEB, NULL);
    const char *dns[] = {"web.default.svc", "10.0.0.7", NULL};
    ca_issue_req req = {.csr_pem = csr, .authorised_id = TCA_ID_WEB, .dns_names = dns};
    ca_issued out;
    mesh_err err = {0};
    cr_assert_eq(ca_issue_svid(ca, e.st, &req, &out, &err), MESH_OK, "%s", err.msg);
    char txt[16384];
    x509_text(&e, out.cert_pem, txt, sizeof txt);
    cr_assert_eq(tca_count(txt, "URI:"), 1);
    cr_assert(strstr(txt, "DNS:web.default.svc"), "%s", txt);
    cr_assert(strstr(txt, "IP Address:10.0.0.7"), "%s", txt);
    ca_issued_free(&out);

    const char *bad[] = {"bad name", NULL};
    req.dns_names = bad;
    int64_t n = tca_cert_count(e.st);
    cr_assert_eq(ca_issue_svid(ca, e.st, &req, &out, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "neither a DNS name nor an IP"), "%s", err.msg);
    cr_assert_eq(tca_cert_count(e.st), n);
    free(csr);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_issue, with_new_key_for_meshd)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    const char *dns[] = {"localhost", "127.0.0.1", NULL};
    char *key_pem = NULL;
    ca_issued out;
    mesh_err err = {0};
    cr_assert_eq(ca_issue_with_new_key(ca, e.st, "spiffe://example.org/meshd", dns, 3600, &key_pem,
                                       &out, &err),
                 MESH_OK, "%s", err.msg);
    verify_with_cli(&e, out.cert_pem, 1);
    char txt[16384];
    x509_text(&e, out.cert_pem, txt, sizeof txt);
    cr_assert(strstr(txt, "URI:spiffe://example.org/meshd, DNS:localhost, IP Address:127.0.0.1"),
              "%s", txt);
    cr_assert(strstr(txt, "ASN1 OID: prime256v1"), "%s", txt);
    /* key and cert belong together */
    EVP_PKEY *k = NULL;
    X509 *x = NULL;
    cr_assert_eq(pem_read_private_key(key_pem, &k, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(pem_read_cert(out.cert_pem, &x, &err), MESH_OK);
    cr_assert(cert_key_matches(x, k));
    cr_assert(strncmp(key_pem, "-----BEGIN PRIVATE KEY-----", 27) == 0);
    cr_assert_eq(tca_cert_count(e.st), 1);
    cr_assert_eq(tca_audit_count(e.st, "cert.issue", 1), 1);
    X509_free(x);
    EVP_PKEY_free(k);
    free(key_pem);
    ca_issued_free(&out);

    /* foreign trust domain, bad ID, bad TTL: refused, nothing stored */
    key_pem = NULL;
    cr_assert_eq(ca_issue_with_new_key(ca, e.st, "spiffe://other.org/meshd", NULL, 3600, &key_pem,
                                       &out, &err),
                 MESH_EINVAL);
    cr_assert(strstr(err.msg, "trust domain"), "%s", err.msg);
    cr_assert_eq(ca_issue_with_new_key(ca, e.st, "spiffe://example.org/x/", NULL, 3600, &key_pem,
                                       &out, &err),
                 MESH_EINVAL);
    cr_assert_eq(ca_issue_with_new_key(ca, e.st, "spiffe://example.org/meshd", NULL,
                                       CA_MAX_SVID_TTL + 1, &key_pem, &out, &err),
                 MESH_EINVAL);
    cr_assert_null(key_pem);
    cr_assert_eq(tca_cert_count(e.st), 1);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_issue, for_pubkey_same_key_rotation)
{
    tca_env e;
    tca_setup(&e);
    tca_init(&e, NULL, 0);
    mesh_ca *ca = tca_load(&e);
    ca_issued first, second;
    tca_issue(ca, e.st, TCA_ID_WEB, 600, &first);
    X509 *x = NULL;
    mesh_err err = {0};
    cr_assert_eq(pem_read_cert(first.cert_pem, &x, &err), MESH_OK);
    cr_assert_eq(ca_issue_for_pubkey(ca, e.st, X509_get0_pubkey(x), TCA_ID_WEB, "", 1200, NULL,
                                     &second, &err),
                 MESH_OK, "%s", err.msg);
    verify_with_cli(&e, second.cert_pem, 1);
    char txt[16384];
    x509_text(&e, second.cert_pem, txt, sizeof txt);
    cr_assert_eq(tca_count(txt, "URI:"), 1);
    cr_assert(strstr(txt, "CA:FALSE"), "%s", txt);
    cr_assert_str_neq(first.serial_hex, second.serial_hex);
    store_cert a, b;
    cr_assert_eq(store_cert_get(e.st, first.serial_hex, &a, &err), MESH_OK);
    cr_assert_eq(store_cert_get(e.st, second.serial_hex, &b, &err), MESH_OK);
    cr_assert_str_eq(a.pubkey_sha256, b.pubkey_sha256, "same key");
    store_cert_free(&a);
    store_cert_free(&b);
    cr_assert_eq(tca_audit_count(e.st, "cert.issue", 1), 2);
    ca_issued_free(&second);

    /* refused: foreign trust domain, weak key, bad TTL; nothing stored */
    int64_t n = tca_cert_count(e.st);
    cr_assert_eq(ca_issue_for_pubkey(ca, e.st, X509_get0_pubkey(x), "spiffe://evil.org/ns/a/sa/b",
                                     "", 0, "meshd", &second, &err),
                 MESH_EINVAL);
    EVP_PKEY *weak = tca_key_rsa(1024);
    cr_assert_eq(ca_issue_for_pubkey(ca, e.st, weak, TCA_ID_WEB, "", 0, "meshd", &second, &err),
                 MESH_EINVAL);
    cr_assert(strstr(err.msg, "public key is RSA-1024"), "%s", err.msg);
    cr_assert_eq(ca_issue_for_pubkey(ca, e.st, X509_get0_pubkey(x), TCA_ID_WEB, "", -3, "meshd",
                                     &second, &err),
                 MESH_EINVAL);
    cr_assert_eq(tca_cert_count(e.st), n);
    EVP_PKEY_free(weak);
    X509_free(x);
    ca_issued_free(&first);
    ca_free(ca);
    tca_teardown(&e);
}
