/* tests/unit/test_sds_revoke.c — CreateCertificate after a revocation
 * (sds/certsvc/cert_service.c, svid_recover.c) with a real store and CA: a key
 * revoked for keyCompromise gets nothing on any path (renewal with a sibling
 * certificate of the key, expired-SVID recovery, join token — without
 * spending the token), and the one re-key a revoked certificate allows: a
 * "superseded" one renewing with a NEW key. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca_revoke.h"
#include "sds/certsvc/cert_service.h"
#include "tests/unit/test_sds_util.h"

static tsd_env env;

static void setup(void) { tsd_setup(&env); }
static void teardown(void) { tsd_teardown(&env); }

TestSuite(sds_revoke, .init = setup, .fini = teardown);

typedef struct result {
    int rc;
    grpc_status_code status;
    mesh_err err;
    cert_service_resp resp;
} result;

static void call(const cert_service_req *req, result *r)
{
    memset(r, 0, sizeof *r);
    r->rc = cert_service_create(env.ca, env.st, req, &r->resp, &r->status, &r->err);
    cert_service_resp_free(&r->resp);
}

static cert_service_req base(const char *csr)
{
    cert_service_req req = {.csr_pem = csr, .default_ttl = 3600, .peer_addr = "test",
                            .now = (int64_t)time(NULL)};
    return req;
}

static void revoke(const char *serial, const char *reason)
{
    ca_revoke_result r;
    mesh_err err = {0};
    cr_assert_eq(ca_revoke(env.st, serial, reason, "test", (int64_t)time(NULL), &r, &err),
                 MESH_OK, "%s", err.msg);
    ca_revoke_result_free(&r);
}

static char *b64(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    return out;
}

Test(sds_revoke, renewal_with_a_sibling_of_a_compromised_key_is_refused)
{
    EVP_PKEY *key;
    free(tsd_csr(TSD_WEB, &key));
    char a[48], b[48];
    char *leaf_a = tsd_issue(&env, key, TSD_WEB, 3600, a, NULL);
    char *leaf_b = tsd_issue(&env, key, TSD_WEB, 3600, b, NULL);   /* same-key sibling */
    revoke(a, "keyCompromise");
    /* The sibling presents itself over mTLS, with its own key or a new one. */
    EVP_PKEY *fresh;
    char *csr_new = tsd_csr(TSD_WEB, &fresh);
    char *csr_same = tsd_csr_for(key, TSD_WEB);
    const char *csrs[] = {csr_same, csr_new};
    for (int i = 0; i < 2; i++) {
        cert_service_req req = base(csrs[i]);
        req.peer_spiffe_id = TSD_WEB;
        req.peer_cert_pem = leaf_b;
        result r;
        call(&req, &r);
        cr_assert_eq(r.rc, MESH_EPERM, "CSR %d: %s", i, r.err.msg);
        cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED);
        cr_assert(strstr(r.err.msg, "compromised"), "%s", r.err.msg);
        cr_assert(strstr(r.err.msg, "join token"), "says what to do: %s", r.err.msg);
    }
    cr_assert_eq(tsd_audit_count(&env, "cert.denied", 0), 2);
    free(csr_new);
    free(csr_same);
    free(leaf_a);
    free(leaf_b);
    EVP_PKEY_free(fresh);
    EVP_PKEY_free(key);
}

Test(sds_revoke, recovery_with_an_expired_sibling_is_refused)
{
    EVP_PKEY *key;
    free(tsd_csr(TSD_WEB, &key));
    char old[48], live[48];
    int64_t old_na = 0;
    char *leaf_old = tsd_issue(&env, key, TSD_WEB, 10, old, &old_na);
    char *leaf_live = tsd_issue(&env, key, TSD_WEB, 3600, live, NULL);
    /* Revoked after the short one expired: that one is not revoked (only
     * unexpired certs are), but its key is on the list. */
    ca_revoke_result rr;
    mesh_err err = {0};
    cr_assert_eq(ca_revoke(env.st, live, "keyCompromise", "t", old_na + 5, &rr, &err), MESH_OK);
    ca_revoke_result_free(&rr);
    store_cert c;
    cr_assert_eq(store_cert_get(env.st, old, &c, &err), MESH_OK);
    cr_assert_not(c.revoked);
    store_cert_free(&c);
    char *hdr = b64(leaf_old);
    char *csr = tsd_csr_for(key, TSD_WEB);
    cert_service_req req = base(csr);
    req.expired_svid_b64 = hdr;
    req.now = old_na + 60;
    result r;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED, "%s", r.err.msg);
    cr_assert(strstr(r.err.msg, "compromised"), "%s", r.err.msg);
    cr_assert_eq(tsd_audit_count(&env, "cert.recover", 1), 0);
    free(hdr);
    free(csr);
    free(leaf_old);
    free(leaf_live);
    EVP_PKEY_free(key);
}

Test(sds_revoke, token_with_a_compromised_key_is_refused_without_spending_it)
{
    EVP_PKEY *key;
    free(tsd_csr(TSD_WEB, &key));
    char a[48];
    char *leaf = tsd_issue(&env, key, TSD_WEB, 3600, a, NULL);
    revoke(a, "keyCompromise");
    char *tok = tsd_token(&env, TSD_WEB);
    char authz[200];
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    char *csr = tsd_csr_for(key, TSD_WEB);
    cert_service_req req = base(csr);
    req.authorization = authz;
    result r;
    call(&req, &r);
    cr_assert_eq(r.rc, MESH_EPERM, "%s", r.err.msg);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert(strstr(r.err.msg, "compromised"), "%s", r.err.msg);
    /* The same token with a new key: the token was not spent. */
    char *fresh = tsd_csr(TSD_WEB, NULL);
    req.csr_pem = fresh;
    call(&req, &r);
    cr_assert_eq(r.rc, MESH_OK, "%s", r.err.msg);
    free(fresh);
    free(csr);
    free(tok);
    free(leaf);
    EVP_PKEY_free(key);
}

Test(sds_revoke, superseded_certificate_renews_once_with_a_new_key)
{
    EVP_PKEY *key;
    free(tsd_csr(TSD_WEB, &key));
    char a[48];
    char *leaf = tsd_issue(&env, key, TSD_WEB, 3600, a, NULL);
    revoke(a, "superseded");
    cert_service_req req;
    result r;
    /* Its own key: refused (the point is to get off the revoked certificate). */
    char *same = tsd_csr_for(key, TSD_WEB);
    req = base(same);
    req.peer_spiffe_id = TSD_WEB;
    req.peer_cert_pem = leaf;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED, "%s", r.err.msg);
    cr_assert(strstr(r.err.msg, "new key"), "%s", r.err.msg);
    /* A new key: issued, audited as a re-key. */
    char *fresh = tsd_csr(TSD_WEB, NULL);
    req.csr_pem = fresh;
    memset(&r, 0, sizeof r);
    r.rc = cert_service_create(env.ca, env.st, &req, &r.resp, &r.status, &r.err);
    cr_assert_eq(r.rc, MESH_OK, "%s", r.err.msg);
    cr_assert_str_eq(r.resp.auth, "rekey");
    cert_service_resp_free(&r.resp);
    cr_assert_eq(tsd_audit_count(&env, "cert.rekey", 1), 1);
    free(same);
    free(fresh);
    free(leaf);
    EVP_PKEY_free(key);
}

Test(sds_revoke, other_reasons_need_a_new_token)
{
    const char *reasons[] = {NULL, "cessationOfOperation", "privilegeWithdrawn"};
    for (int i = 0; i < 3; i++) {
        EVP_PKEY *key;
        free(tsd_csr(TSD_WEB, &key));
        char a[48];
        char *leaf = tsd_issue(&env, key, TSD_WEB, 3600, a, NULL);
        revoke(a, reasons[i]);
        char *fresh = tsd_csr(TSD_WEB, NULL);
        cert_service_req req = base(fresh);
        req.peer_spiffe_id = TSD_WEB;
        req.peer_cert_pem = leaf;
        result r;
        call(&req, &r);
        cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED, "%s", r.err.msg);
        cr_assert(strstr(r.err.msg, "revoked"), "%s", r.err.msg);
        cr_assert(strstr(r.err.msg, "join token"), "%s", r.err.msg);
        free(fresh);
        free(leaf);
        EVP_PKEY_free(key);
    }
}
