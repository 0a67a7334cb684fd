/* tests/unit/test_ca_csr.c — client-side CSR/PEM helpers (csr.h) and the
 * server-side CSR checks: every bad request is refused with its own message
 * and nothing is stored. */
#include <criterion/criterion.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/csr.h"
#include "tests/unit/test_ca_util.h"

/* ---- csr.h ------------------------------------------------------------------ */

Test(ca_csr, keygen_types)
{
    static const struct {
        const char *type, *describe;
    } ok[] = {{NULL, "ec-p256"},      {"", "ec-p256"},         {"ec-p256", "ec-p256"},
              {"ec-p384", "ec-p384"}, {"rsa-2048", "rsa-2048"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        EVP_PKEY *k = NULL;
        mesh_err err = {0};
        cr_assert_eq(csr_keygen(ok[i].type, &k, &err), MESH_OK, "%s", err.msg);
        char d[32];
        key_type_describe(k, d, sizeof d);
        cr_assert_str_eq(d, ok[i].describe);
        EVP_PKEY_free(k);
    }
    EVP_PKEY *k = NULL;
    mesh_err err = {0};
    cr_assert_eq(csr_keygen("dsa-1024", &k, &err), MESH_EINVAL);
    cr_assert_null(k);
    cr_assert(strstr(err.msg, "unknown key type 'dsa-1024'"), "%s", err.msg);
}

Test(ca_csr, create_makes_a_checkable_csr)
{
    EVP_PKEY *k = NULL;
    char *csr = tca_csr(NULL, TCA_ID_WEB, &k);
    mesh_err err = {0};
    cr_assert_eq(ca_csr_check(csr, TCA_TD, TCA_ID_WEB, &err), MESH_OK, "%s", err.msg);
    /* openssl agrees: self-signature OK, empty subject, one critical URI SAN */
    char dir[] = "/tmp/meshd-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128], out[8192];
    snprintf(path, sizeof path, "%s/csr.pem", dir);
    tca_write(path, csr);
    cr_assert_eq(tca_sh(out, sizeof out, "openssl req -in %s -noout -verify -text", path), 0,
                 "%s", out);
    cr_assert(strstr(out, "verify OK") || strstr(out, "Certificate request self-signature verify OK"),
              "%s", out);
    cr_assert(strstr(out, "X509v3 Subject Alternative Name: critical"), "%s", out);
    cr_assert_eq(tca_count(out, "URI:"), 1, "%s", out);
    cr_assert(strstr(out, "URI:" TCA_ID_WEB "\n"), "%s", out);
    unlink(path);
    rmdir(dir);

    char *bad = NULL;
    cr_assert_eq(csr_create(k, "spiffe://Example.org/x", &bad, &err), MESH_EINVAL);
    cr_assert_null(bad);
    cr_assert_eq(csr_create(k, NULL, &bad, &err), MESH_EINVAL);
    free(csr);
    EVP_PKEY_free(k);
}

Test(ca_csr, private_key_pem_round_trip_and_encrypted_refused)
{
    EVP_PKEY *k = NULL;
    mesh_err err = {0};
    cr_assert_eq(csr_keygen(NULL, &k, &err), MESH_OK);
    char *pem = NULL;
    cr_assert_eq(pem_write_private_key(k, &pem, &err), MESH_OK);
    cr_assert(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0, "PKCS#8: %s", pem);
    EVP_PKEY *k2 = NULL;
    cr_assert_eq(pem_read_private_key(pem, &k2, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(EVP_PKEY_eq(k, k2), 1);

    /* an encrypted key must fail, not prompt */
    BIO *bio = BIO_new(BIO_s_mem());
    cr_assert_eq(PEM_write_bio_PrivateKey(bio, k, EVP_aes_256_cbc(), (unsigned char *)"pw", 2,
                                          NULL, NULL),
                 1);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *enc = strndup(data, (size_t)n);
    BIO_free(bio);
    EVP_PKEY *k3 = NULL;
    cr_assert_eq(pem_read_private_key(enc, &k3, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "encrypted"), "%s", err.msg);
    cr_assert_null(k3);
    cr_assert_eq(pem_read_private_key("nope", &k3, &err), MESH_EINVAL);
    cr_assert_eq(pem_read_private_key("", &k3, &err), MESH_EINVAL);
    free(enc);
    free(pem);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k);
}

Test(ca_csr, cert_chain_parsing)
{
    EVP_PKEY *k = tca_key_ec("P-256");
    char *a = tca_make_cert(k, NULL, NULL, -60, 3600, 1, "a");
    char *b = tca_make_cert(k, NULL, NULL, -60, 7200, 1, "b");
    char two[8192];
    snprintf(two, sizeof two, "junk before\n%sin between\n%s", a, b);
    STACK_OF(X509) *sk = NULL;
    mesh_err err = {0};
    cr_assert_eq(pem_read_cert_chain(two, &sk, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(sk_X509_num(sk), 2);
    sk_X509_pop_free(sk, X509_free);

    /* a damaged second block is an error, not a shorter chain */
    char damaged[8192];
    snprintf(damaged, sizeof damaged, "%s%s", a, b);
    char *second = strstr(damaged + strlen(a), "MII");
    cr_assert_not_null(second);
    second[0] = '!';
    cr_assert_eq(pem_read_cert_chain(damaged, &sk, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "certificate 2"), "%s", err.msg);
    cr_assert_null(sk);
    /* truncated */
    char trunc[8192];
    snprintf(trunc, sizeof trunc, "%s", a);
    trunc[strlen(a) - 30] = '\0';
    cr_assert_eq(pem_read_cert_chain(trunc, &sk, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "truncated"), "%s", err.msg);
    cr_assert_eq(pem_read_cert_chain("hello", &sk, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "no certificate"), "%s", err.msg);

    /* cert_pem_info on a CA cert: no SAN needed when spiffe_id is NULL */
    char serial[48];
    int64_t nb = 0, na = 0;
    cr_assert_eq(cert_pem_info(a, NULL, 0, serial, sizeof serial, &nb, &na, &err), MESH_OK,
                 "%s", err.msg);
    cr_assert_gt(na, nb);
    char id[600];
    cr_assert_eq(cert_pem_info(a, id, sizeof id, NULL, 0, NULL, NULL, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "subject alternative name"), "%s", err.msg);
    free(a);
    free(b);
    EVP_PKEY_free(k);
}

/* ---- server-side checks ------------------------------------------------------ */

/* Issues csr for TCA_ID_WEB and expects refusal with code and message
 * fragment, and no cert row. */
static void expect_refused(tca_env *e, mesh_ca *ca, const char *csr, int code, const char *frag)
{
    int64_t before = tca_cert_count(e->st);
    ca_issue_req req = {.csr_pem = csr, .authorised_id = TCA_ID_WEB, .actor = "test"};
    ca_issued out;
    mesh_err err = {0};
    int rc = ca_issue_svid(ca, e->st, &req, &out, &err);
    cr_assert_eq(rc, code, "expected %d got %d: %s", code, rc, err.msg);
    cr_assert(strstr(err.msg, frag), "message '%s' lacks '%s'", err.msg, frag);
    cr_assert_null(out.cert_pem);
    cr_assert_eq(out.chain_len, 0);
    cr_assert_eq(tca_cert_count(e->st), before, "nothing stored");
    /* ca_csr_check agrees */
    if (csr) {
        mesh_err err2 = {0};
        cr_assert_eq(ca_csr_check(csr, TCA_TD, TCA_ID_WEB, &err2), code);
        cr_assert_str_eq(err2.msg, err.msg);
    }
}

static char *csr_with(EVP_PKEY *key, const char *const *uris, const char *const *dns)
{
    tca_csr_opts o = {.uris = uris, .dns = dns};
    return tca_csr_custom(key, &o);
}

struct bad_fixture {
    tca_env e;
    mesh_ca *ca;
    EVP_PKEY *key;
};

static void bad_setup(struct bad_fixture *f)
{
    tca_setup(&f->e);
    tca_init(&f->e, NULL, 0);
    f->ca = tca_load(&f->e);
    f->key = tca_key_ec("P-256");
}

static void bad_teardown(struct bad_fixture *f)
{
    cr_assert_eq(tca_audit_count(f->e.st, "cert.issue", 1), 0, "nothing issued");
    cr_assert_gt(tca_audit_count(f->e.st, "cert.issue", 0), 0, "refusals audited");
    EVP_PKEY_free(f->key);
    ca_free(f->ca);
    tca_teardown(&f->e);
}

Test(ca_csr, garbage_and_truncated_pem)
{
    struct bad_fixture f;
    bad_setup(&f);
    expect_refused(&f.e, f.ca, "this is not a CSR", MESH_EINVAL, "not a PEM certificate request");
    expect_refused(&f.e, f.ca, "", MESH_EINVAL, "CSR is empty");
    expect_refused(&f.e, f.ca, NULL, MESH_EINVAL, "CSR is empty");
    const char *uris[] = {TCA_ID_WEB, NULL};
    char *good = csr_with(f.key, uris, NULL);
    /* cut in the middle: no END line */
    char *half = strndup(good, strlen(good) / 2);
    expect_refused(&f.e, f.ca, half, MESH_EINVAL, "truncated");
    /* body lines dropped but the END line kept: damaged DER */
    char *nl = strchr(good, '\n');
    char *end = strstr(good, "-----END");
    char shortened[4096];
    snprintf(shortened, sizeof shortened, "%.*s%s", (int)(nl + 1 - good) + 20, good, end);
    expect_refused(&f.e, f.ca, shortened, MESH_EINVAL, "damaged");
    /* non-base64 bytes in the body */
    char *mangled = strdup(good);
    mangled[nl + 5 - good] = '*';
    expect_refused(&f.e, f.ca, mangled, MESH_EINVAL, "damaged");
    free(mangled);
    free(half);
    free(good);
    bad_teardown(&f);
}

Test(ca_csr, forged_signature)
{
    struct bad_fixture f;
    bad_setup(&f);
    const char *uris[] = {TCA_ID_WEB, NULL};
    char *good = csr_with(f.key, uris, NULL);
    /* decode, flip one byte at the end of the DER (inside the signature), re-encode */
    BIO *in = BIO_new_mem_buf(good, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(in, NULL, NULL, NULL);
    BIO_free(in);
    cr_assert_not_null(req);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    cr_assert_gt(n, 10);
    der[n - 2] ^= 0x01;
    const unsigned char *p = der;
    X509_REQ *forged = d2i_X509_REQ(NULL, &p, n);
    cr_assert_not_null(forged, "still parses");
    BIO *out = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(out, forged);
    char *data = NULL;
    long len = BIO_get_mem_data(out, &data);
    char *pem = strndup(data, (size_t)len);
    expect_refused(&f.e, f.ca, pem, MESH_EINVAL, "signature does not verify");
    /* swapping in another key's signature: same message */
    free(pem);
    BIO_free(out);
    X509_REQ_free(forged);
    OPENSSL_free(der);
    X509_REQ_free(req);
    EVP_PKEY *other = tca_key_ec("P-256");
    char *by_other = csr_with(other, uris, NULL);
    BIO *b1 = BIO_new_mem_buf(by_other, -1);
    X509_REQ *r_other = PEM_read_bio_X509_REQ(b1, NULL, NULL, NULL);
    BIO_free(b1);
    cr_assert_eq(X509_REQ_set_pubkey(r_other, f.key), 1); /* claims f.key, signed by other */
    BIO *b2 = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(b2, r_other);
    len = BIO_get_mem_data(b2, &data);
    pem = strndup(data, (size_t)len);
    expect_refused(&f.e, f.ca, pem, MESH_EINVAL, "signature does not verify");
    free(pem);
    BIO_free(b2);
    X509_REQ_free(r_other);
    free(by_other);
    EVP_PKEY_free(other);
    free(good);
    bad_teardown(&f);
}

Test(ca_csr, identity_problems)
{
    struct bad_fixture f;
    bad_setup(&f);
    /* wrong identity: asks for db, authorised as web */
    const char *db[] = {TCA_ID_DB, NULL};
    char *c = csr_with(f.key, db, NULL);
    expect_refused(&f.e, f.ca, c, MESH_EPERM,
                   "asks for '" TCA_ID_DB "' but the caller is authorised only for '" TCA_ID_WEB
                   "'");
    free(c);
    /* two URI SANs */
    const char *two[] = {TCA_ID_WEB, TCA_ID_DB, NULL};
    c = csr_with(f.key, two, NULL);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "2 URI SANs");
    free(c);
    /* zero URI SANs: no SAN at all, and a SAN with only a DNS name */
    tca_csr_opts none = {.no_san = 1};
    c = tca_csr_custom(f.key, &none);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "no URI SAN");
    free(c);
    const char *dns[] = {"web.example.org", NULL};
    c = csr_with(f.key, NULL, dns);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "DNS name SAN");
    free(c);
    const char *empty[] = {NULL};
    tca_csr_opts empty_san = {.uris = empty};
    c = tca_csr_custom(f.key, &empty_san);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "no URI SAN");
    free(c);
    /* a URI plus a DNS name */
    const char *web[] = {TCA_ID_WEB, NULL};
    c = csr_with(f.key, web, dns);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "DNS name SAN");
    free(c);
    /* other trust domain */
    const char *other[] = {"spiffe://evil.org/ns/default/sa/web", NULL};
    c = csr_with(f.key, other, NULL);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "in trust domain 'evil.org'; this CA signs only for");
    free(c);
    /* not a valid SPIFFE ID */
    const char *invalid[] = {"spiffe://example.org/ns/../sa/web", NULL};
    c = csr_with(f.key, invalid, NULL);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "CSR URI SAN: invalid SPIFFE ID");
    free(c);
    const char *https[] = {"https://example.org/web", NULL};
    c = csr_with(f.key, https, NULL);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "must start with 'spiffe://'");
    free(c);
    /* CA:TRUE request */
    tca_csr_opts ca_true = {.uris = web, .ca_true = 1};
    c = tca_csr_custom(f.key, &ca_true);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "CA:TRUE");
    free(c);
    bad_teardown(&f);
}

Test(ca_csr, key_types_and_digests, .timeout = 30)
{
    struct bad_fixture f;
    bad_setup(&f);
    const char *web[] = {TCA_ID_WEB, NULL};
    EVP_PKEY *rsa1024 = tca_key_rsa(1024);
    char *c = csr_with(rsa1024, web, NULL);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "RSA-1024");
    free(c);
    EVP_PKEY *p192 = tca_key_ec("P-192");
    c = csr_with(p192, web, NULL);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "only P-256 and P-384");
    free(c);
    EVP_PKEY *k1 = tca_key_ec("secp256k1");
    c = csr_with(k1, web, NULL);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "curve secp256k1");
    free(c);
    EVP_PKEY *ed = tca_key_ed25519();
    c = csr_with(ed, web, NULL);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "Ed25519");
    free(c);
    tca_csr_opts sha1 = {.uris = web, .md = EVP_sha1()};
    c = tca_csr_custom(f.key, &sha1);
    expect_refused(&f.e, f.ca, c, MESH_EINVAL, "signed with SHA1");
    free(c);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(p192);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(ed);
    bad_teardown(&f);
}

Test(ca_csr, check_arguments)
{
    char *c = tca_csr(NULL, TCA_ID_WEB, NULL);
    mesh_err err = {0};
    cr_assert_eq(ca_csr_check(c, NULL, TCA_ID_WEB, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "trust domain"), "%s", err.msg);
    cr_assert_eq(ca_csr_check(c, TCA_TD, "not-an-id", &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "authorised identity"), "%s", err.msg);
    cr_assert_eq(ca_csr_check(c, TCA_TD, NULL, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca_csr_check(c, "other.org", NULL, &err), MESH_EINVAL);
    /* an attacker-chosen URI is quoted safely in the message */
    EVP_PKEY *k = tca_key_ec("P-256");
    const char *nasty[] = {"spiffe://example.org/\x1b[31mred", NULL};
    char *n = csr_with(k, nasty, NULL);
    cr_assert_eq(ca_csr_check(n, TCA_TD, TCA_ID_WEB, &err), MESH_EINVAL);
    cr_assert_null(strchr(err.msg, '\x1b'), "control bytes escaped: %s", err.msg);
    free(n);
    EVP_PKEY_free(k);
    free(c);
}
