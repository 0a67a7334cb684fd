/* tests/unit/test_sds_cert.c — CreateCertificate's authorisation and issuance
 * (sds/certsvc/cert_service.c, sds/certsvc/svid_recover.c) against a real store and CA: join token,
 * mTLS renewal, expired-SVID recovery, and every refusal with its gRPC status. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/csr.h"
#include "ca/join_token.h"
#include "sds/certsvc/cert_service.h"
#include "sds/certsvc/svid_recover.h"
#include "tests/unit/test_sds_util.h"

static tsd_env env;

static void setup(void) { tsd_setup(&env); }
static void teardown(void) { tsd_teardown(&env); }

TestSuite(sds_cert, .init = setup, .fini = teardown);

static char *b64(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    return out;
}

static char *bearer(const char *tok)
{
    char *s = malloc(strlen(tok) + 8);
    sprintf(s, "Bearer %s", tok);
    return s;
}

typedef struct call_result {
    int rc;
    grpc_status_code status;
    mesh_err err;
    cert_service_resp resp;
} call_result;

static void call(const cert_service_req *req, call_result *r)
{
    memset(r, 0, sizeof *r);
    r->rc = cert_service_create(env.ca, env.st, req, &r->resp, &r->status, &r->err);
}

static cert_service_req base_req(const char *csr)
{
    cert_service_req req = {.csr_pem = csr, .default_ttl = 3600, .peer_addr = "test",
                            .now = (int64_t)time(NULL)};
    return req;
}

Test(sds_cert, join_token_first_contact)
{
    char *tok = tsd_token(&env, TSD_WEB);
    char *authz = bearer(tok);
    EVP_PKEY *key;
    char *csr = tsd_csr(TSD_WEB, &key);
    cert_service_req req = base_req(csr);
    req.authorization = authz;
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.rc, MESH_OK, "%s", r.err.msg);
    cr_assert_eq(r.status, GRPC_STATUS_OK);
    cr_assert_str_eq(r.resp.auth, "token");
    cr_assert_str_eq(r.resp.spiffe_id, TSD_WEB);
    cr_assert_eq(r.resp.chain_len, 2, "leaf + root (Istio order)");
    cr_assert_eq(r.resp.n_roots, 1);
    cr_assert_str_eq(r.resp.chain[1], r.resp.roots[0], "the chain ends with the bundle root");
    X509 *leaf = NULL;
    mesh_err err = {0};
    cr_assert_eq(pem_read_cert(r.resp.chain[0], &leaf, &err), MESH_OK);
    cr_assert(cert_key_matches(leaf, key), "the SVID certifies the CSR's key");
    int64_t nb, na;
    cert_validity(leaf, &nb, &na, &err);
    cr_assert(na - nb <= 3600 + CA_BACKDATE_SECONDS + 1, "validity 0 = default TTL (1h here)");
    X509_free(leaf);
    /* Spent: the second use is refused as unauthenticated. */
    cert_service_resp_free(&r.resp);
    call(&req, &r);
    cr_assert_neq(r.rc, MESH_OK);
    cr_assert_eq(r.status, GRPC_STATUS_UNAUTHENTICATED);
    cr_assert_eq(tsd_audit_count(&env, "cert.denied", 0), 1);
    EVP_PKEY_free(key);
    free(csr);
    free(authz);
    free(tok);
}

Test(sds_cert, bad_csr_does_not_spend_the_token)
{
    char *tok = tsd_token(&env, TSD_WEB);
    char *authz = bearer(tok);
    cert_service_req req = base_req("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                                    "-----END CERTIFICATE REQUEST-----\n");
    req.authorization = authz;
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT, "%s", r.err.msg);
    char *csr = tsd_csr(TSD_WEB, NULL);
    req.csr_pem = csr;
    call(&req, &r);
    cr_assert_eq(r.rc, MESH_OK, "the token still works: %s", r.err.msg);
    cert_service_resp_free(&r.resp);
    free(csr);
    free(authz);
    free(tok);
}

Test(sds_cert, token_cannot_buy_another_identity)
{
    char *tok = tsd_token(&env, TSD_WEB);
    char *authz = bearer(tok);
    char *csr = tsd_csr(TSD_API, NULL);
    cert_service_req req = base_req(csr);
    req.authorization = authz;
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.rc, MESH_EPERM);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert(strstr(r.err.msg, TSD_API) && strstr(r.err.msg, TSD_WEB), "%s", r.err.msg);
    free(csr);
    free(authz);
    free(tok);
}

Test(sds_cert, malformed_and_unknown_tokens)
{
    char *csr = tsd_csr(TSD_WEB, NULL);
    cert_service_req req = base_req(csr);
    call_result r;
    const char *cases[] = {"Basic abc", "Bearer ", "Bearer mjt_short",
                           "Bearer mjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        req.authorization = cases[i];
        call(&req, &r);
        cr_assert_neq(r.rc, MESH_OK, "case %zu", i);
        cr_assert_eq(r.status, GRPC_STATUS_UNAUTHENTICATED, "case %zu: %s", i, r.err.msg);
        cr_assert_null(strstr(r.err.msg, "AAAAAAAAAAAA"), "a token never reaches a message");
    }
    free(csr);
}

Test(sds_cert, no_credentials)
{
    char *csr = tsd_csr(TSD_WEB, NULL);
    cert_service_req req = base_req(csr);
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_UNAUTHENTICATED);
    cr_assert(strstr(r.err.msg, "no credentials"), "%s", r.err.msg);
    cr_assert_eq(tsd_audit_count(&env, "cert.denied", 0), 1);
    free(csr);
}

Test(sds_cert, ttl_limits)
{
    char *csr = tsd_csr(TSD_WEB, NULL);
    char *tok = tsd_token(&env, TSD_WEB);
    char *authz = bearer(tok);
    cert_service_req req = base_req(csr);
    req.authorization = authz;
    call_result r;
    req.validity_seconds = CA_MAX_SVID_TTL + 1;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(r.err.msg, "not shortened"), "%s", r.err.msg);
    req.validity_seconds = -5;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT);
    req.validity_seconds = 120;
    call(&req, &r);
    cr_assert_eq(r.rc, MESH_OK, "refusals above did not spend the token: %s", r.err.msg);
    cr_assert(r.resp.not_after <= (int64_t)time(NULL) + 121);
    cert_service_resp_free(&r.resp);
    free(authz);
    free(tok);
    free(csr);
}

Test(sds_cert, mtls_renewal)
{
    EVP_PKEY *key;
    char *csr0 = tsd_csr(TSD_WEB, &key);
    free(csr0);
    char serial[48];
    char *leaf = tsd_issue(&env, key, TSD_WEB, 3600, serial, NULL);
    char *csr = tsd_csr_for(key, TSD_WEB);
    cert_service_req req = base_req(csr);
    req.peer_spiffe_id = TSD_WEB;
    req.peer_cert_pem = leaf;
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.rc, MESH_OK, "%s", r.err.msg);
    cr_assert_str_eq(r.resp.auth, "mtls");
    cr_assert_str_neq(r.resp.serial_hex, serial);
    cert_service_resp_free(&r.resp);
    /* The CSR must ask for the peer's identity. */
    char *other = tsd_csr_for(key, TSD_API);
    req.csr_pem = other;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED, "%s", r.err.msg);
    /* A revoked client cert cannot renew. */
    req.csr_pem = csr;
    mesh_err err = {0};
    cr_assert_eq(store_cert_revoke(env.st, serial, "test", (int64_t)time(NULL), &err), MESH_OK);
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert(strstr(r.err.msg, "revoked"), "%s", r.err.msg);
    free(other);
    free(csr);
    free(leaf);
    EVP_PKEY_free(key);
}

Test(sds_cert, mtls_renewal_needs_a_known_cert_and_registration)
{
    EVP_PKEY *key;
    char *csr = tsd_csr(TSD_API, &key);
    char *leaf = tsd_issue(&env, key, TSD_API, 3600, NULL, NULL);
    cert_service_req req = base_req(csr);
    req.peer_spiffe_id = TSD_API;
    req.peer_cert_pem = leaf;
    mesh_err err = {0};
    cr_assert_eq(store_registration_remove(env.st, "", TSD_API, &err), MESH_OK);
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert(strstr(r.err.msg, "no longer registered"), "%s", r.err.msg);
    /* A cert meshd never issued (here: no cert at all) is refused. */
    req.peer_cert_pem = NULL;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED);
    free(csr);
    free(leaf);
    EVP_PKEY_free(key);
}

/* An SVID, its key and expiry, for the recovery tests. */
typedef struct svid {
    EVP_PKEY *key;
    char *pem;
    char serial[48];
    int64_t not_after;
} svid;

static void make_svid(svid *s, const char *id)
{
    char *csr = tsd_csr(id, &s->key);
    free(csr);
    s->pem = tsd_issue(&env, s->key, id, 60, s->serial, &s->not_after);
}

static void free_svid(svid *s)
{
    EVP_PKEY_free(s->key);
    free(s->pem);
}

Test(sds_cert, recovery_of_an_expired_svid)
{
    svid s;
    make_svid(&s, TSD_WEB);
    char *hdr = b64(s.pem);
    char *csr = tsd_csr_for(s.key, TSD_WEB);
    cert_service_req req = base_req(csr);
    req.expired_svid_b64 = hdr;
    req.now = s.not_after + 3600; /* expired an hour ago */
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.rc, MESH_OK, "%s", r.err.msg);
    cr_assert_str_eq(r.resp.auth, "recover");
    cr_assert_str_eq(r.resp.spiffe_id, TSD_WEB);
    cr_assert_eq(tsd_audit_count(&env, "cert.recover", 1), 1);
    cert_service_resp_free(&r.resp);
    free(csr);
    free(hdr);
    free_svid(&s);
}

Test(sds_cert, recovery_refusals)
{
    svid s, other;
    make_svid(&s, TSD_WEB);
    make_svid(&other, TSD_API);
    char *hdr = b64(s.pem);
    char *csr = tsd_csr_for(s.key, TSD_WEB);
    cert_service_req req = base_req(csr);
    req.expired_svid_b64 = hdr;
    call_result r;

    /* Beyond the 7-day grace. */
    req.now = s.not_after + CERT_RECOVER_GRACE + 1;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_UNAUTHENTICATED, "%s", r.err.msg);
    cr_assert(strstr(r.err.msg, "recovery window"), "%s", r.err.msg);
    req.now = s.not_after + 60;

    /* CSR signed by another key. */
    char *wrong = tsd_csr_for(other.key, TSD_WEB);
    req.csr_pem = wrong;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert(strstr(r.err.msg, "same private key"), "%s", r.err.msg);
    req.csr_pem = csr;

    /* Not base64, not a cert. */
    req.expired_svid_b64 = "!!!not base64!!!";
    call(&req, &r);
    cr_assert_neq(r.rc, MESH_OK);
    cr_assert_neq(r.status, GRPC_STATUS_OK);
    char *junk = b64("hello, not a PEM");
    req.expired_svid_b64 = junk;
    call(&req, &r);
    cr_assert_neq(r.rc, MESH_OK);

    /* A cert from some other CA. */
    EVP_PKEY *k2;
    char *c2 = tsd_csr(TSD_WEB, &k2);
    free(c2);
    tsd_env foreign;
    tsd_setup(&foreign);
    char *fpem = tsd_issue(&foreign, k2, TSD_WEB, 60, NULL, NULL);
    char *fhdr = b64(fpem);
    char *fcsr = tsd_csr_for(k2, TSD_WEB);
    req.expired_svid_b64 = fhdr;
    req.csr_pem = fcsr;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_UNAUTHENTICATED, "%s", r.err.msg);
    cr_assert(strstr(r.err.msg, "not issued by this mesh"), "%s", r.err.msg);
    tsd_teardown(&foreign);
    req.expired_svid_b64 = hdr;
    req.csr_pem = csr;

    /* Revoked. */
    mesh_err err = {0};
    cr_assert_eq(store_cert_revoke(env.st, s.serial, "key leaked", req.now, &err), MESH_OK);
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert(strstr(r.err.msg, "revoked"), "%s", r.err.msg);
    cr_assert_eq(tsd_audit_count(&env, "cert.recover", 1), 0, "nothing recovered");

    free(fcsr);
    free(fhdr);
    free(fpem);
    EVP_PKEY_free(k2);
    free(junk);
    free(wrong);
    free(csr);
    free(hdr);
    free_svid(&other);
    free_svid(&s);
}

Test(sds_cert, recovery_needs_the_registration)
{
    svid s;
    make_svid(&s, TSD_API);
    char *hdr = b64(s.pem);
    char *csr = tsd_csr_for(s.key, TSD_API);
    mesh_err err = {0};
    cr_assert_eq(store_registration_remove(env.st, "", TSD_API, &err), MESH_OK);
    cert_service_req req = base_req(csr);
    req.expired_svid_b64 = hdr;
    req.now = s.not_after + 10;
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert(strstr(r.err.msg, "no longer registered"), "%s", r.err.msg);
    free(csr);
    free(hdr);
    free_svid(&s);
}

Test(sds_cert, base64_decoder)
{
    char *out;
    size_t len;
    mesh_err err = {0};
    cr_assert_eq(svid_b64_decode("aGVsbG8=", &out, &len, &err), MESH_OK);
    cr_assert_eq(len, 5);
    cr_assert_str_eq(out, "hello");
    free(out);
    cr_assert_eq(svid_b64_decode("aGVs\nbG8=", &out, &len, &err), MESH_OK, "newlines ignored");
    free(out);
    cr_assert_eq(svid_b64_decode("", &out, &len, &err), MESH_EINVAL);
    cr_assert_eq(svid_b64_decode("a$b=", &out, &len, &err), MESH_EINVAL);
    cr_assert_eq(svid_b64_decode("aGVsbG8=aGVs", &out, &len, &err), MESH_EINVAL,
                 "data after padding");
    char *big = malloc(SVID_RECOVER_MAX_B64 + 2);
    memset(big, 'A', SVID_RECOVER_MAX_B64 + 1);
    big[SVID_RECOVER_MAX_B64 + 1] = '\0';
    cr_assert_eq(svid_b64_decode(big, &out, &len, &err), MESH_EINVAL);
    free(big);
}

Test(sds_cert, split_pem_and_root_of_ca)
{
    char **v;
    size_t n;
    mesh_err err = {0};
    char *bundle = NULL;
    cr_assert_eq(ca_bundle_pem(env.st, &bundle, &err), MESH_OK);
    cr_assert_eq(cert_service_split_pem(bundle, &v, &n, &err), MESH_OK);
    cr_assert_eq(n, 1);
    char *root = NULL;
    cr_assert_eq(cert_service_root_of_ca(env.st, ca_id(env.ca), &root, &err), MESH_OK);
    cr_assert_str_eq(root, v[0]);
    free(root);
    cr_assert_eq(cert_service_root_of_ca(env.st, 999, &root, &err), MESH_ENOTFOUND);
    cr_assert_null(root);
    cert_service_free_strings(v, n);
    cr_assert_eq(cert_service_split_pem("junk", &v, &n, &err), MESH_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(cert_service_split_pem("-----BEGIN CERTIFICATE-----\nAAAA\n", &v, &n, &err),
                 MESH_EINVAL);
    free(root);
    free(bundle);
}

/* ---- who an audit row names (issue 11: the actor comes only from verified material) ---- */

/* The newest audit row with action, or fails. Copies actor and detail. */
static void newest(const char *action, char actor[600], char detail[1500])
{
    store_audit_entry *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_audit_list(env.st, 100, &list, &n, &err), MESH_OK, "%s", err.msg);
    size_t i = 0;
    while (i < n && strcmp(list[i].action, action) != 0)
        i++;
    cr_assert(i < n, "no %s row", action);
    snprintf(actor, 600, "%s", list[i].actor);
    snprintf(detail, 1500, "%s", list[i].detail);
    store_audit_free_list(list, n);
}

static int rows_by_actor(const char *actor)
{
    store_audit_entry *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_audit_list(env.st, 1000, &list, &n, &err), MESH_OK, "%s", err.msg);
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += strcmp(list[i].actor, actor) == 0;
    store_audit_free_list(list, n);
    return c;
}

/* An expired cert from a foreign CA that names web, with a CSR made with its
 * key: refused, and the row must not say web did it. */
Test(sds_cert, recovery_with_a_foreign_cert_names_no_actor)
{
    EVP_PKEY *k;
    free(tsd_csr(TSD_WEB, &k));
    tsd_env foreign;
    tsd_setup(&foreign);
    int64_t na = 0;
    char *fpem = tsd_issue(&foreign, k, TSD_WEB, 60, NULL, &na);
    tsd_teardown(&foreign);
    char *hdr = b64(fpem);
    char *csr = tsd_csr_for(k, TSD_WEB);
    cert_service_req req = base_req(csr);
    req.expired_svid_b64 = hdr;
    req.now = na + 60;
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_UNAUTHENTICATED, "%s", r.err.msg);
    char actor[600], detail[1500];
    newest("cert.denied", actor, detail);
    cr_assert_str_eq(actor, STORE_AUDIT_UNAUTHENTICATED);
    cr_assert_not_null(strstr(detail, "claimed=\"" TSD_WEB "\" (unverified)"), "%s", detail);
    cr_assert_not_null(strstr(detail, "credential=expired SVID"), "%s", detail);
    cr_assert_eq(rows_by_actor(TSD_WEB), 0, "no row names the claimed identity as its actor");
    free(csr);
    free(hdr);
    free(fpem);
    EVP_PKEY_free(k);
}

/* Our own cert but no proof of its key (anyone may have seen the cert): a claim. */
Test(sds_cert, recovery_without_the_key_names_no_actor)
{
    svid s, other;
    make_svid(&s, TSD_WEB);
    make_svid(&other, TSD_API);
    char *hdr = b64(s.pem);
    char *wrong = tsd_csr_for(other.key, TSD_WEB);
    cert_service_req req = base_req(wrong);
    req.expired_svid_b64 = hdr;
    req.now = s.not_after + 60;
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED, "%s", r.err.msg);
    char actor[600], detail[1500];
    newest("cert.denied", actor, detail);
    cr_assert_str_eq(actor, STORE_AUDIT_UNAUTHENTICATED);
    cr_assert_not_null(strstr(detail, "(unverified)"), "%s", detail);
    /* With the key proven, a later refusal (revoked) does name web. */
    char *csr = tsd_csr_for(s.key, TSD_WEB);
    req.csr_pem = csr;
    mesh_err err = {0};
    cr_assert_eq(store_cert_revoke(env.st, s.serial, "unspecified", req.now, &err), MESH_OK);
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED, "%s", r.err.msg);
    newest("cert.denied", actor, detail);
    cr_assert_str_eq(actor, TSD_WEB, "chain and key verified: the actor is known");
    cr_assert_null(strstr(detail, "(unverified)"), "%s", detail);
    free(csr);
    free(wrong);
    free(hdr);
    free_svid(&other);
    free_svid(&s);
}

/* A claimed identity with a newline in it cannot forge a line in the row. */
Test(sds_cert, a_claim_is_escaped_and_quoted)
{
    char *csr = tsd_csr(TSD_WEB, NULL);
    char *hdr = b64("not a cert");
    cert_service_req req = base_req(csr);
    req.expired_svid_b64 = hdr;
    req.peer_addr = "ipv4:127.0.0.1:1\nforged";
    call_result r;
    call(&req, &r);
    cr_assert_neq(r.rc, MESH_OK);
    char actor[600], detail[1500];
    newest("cert.denied", actor, detail);
    cr_assert_null(strchr(detail, '\n'), "%s", detail);
    cr_assert_not_null(strstr(detail, "peer=ipv4:127.0.0.1:1\\nforged"), "%s", detail);
    free(hdr);
    free(csr);
}

/* Refused validity requests leave a row too, named after what verified. */
Test(sds_cert, ttl_refusals_are_audited)
{
    char *csr = tsd_csr(TSD_WEB, NULL);
    cert_service_req req = base_req(csr);
    req.authorization = "Bearer mjt_whatever";
    req.validity_seconds = CA_MAX_SVID_TTL + 1;
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT);
    char actor[600], detail[1500];
    newest("cert.denied", actor, detail);
    cr_assert_str_eq(actor, STORE_AUDIT_UNAUTHENTICATED, "an unredeemed token proves nothing");
    cr_assert_not_null(strstr(detail, "exceeds the 90-day maximum"), "%s", detail);
    cr_assert_not_null(strstr(detail, "credential=join token"), "%s", detail);
    req.authorization = NULL;
    req.peer_spiffe_id = TSD_WEB;
    req.validity_seconds = -1;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT);
    newest("cert.denied", actor, detail);
    cr_assert_str_eq(actor, TSD_WEB, "the verified mTLS identity");
    cr_assert_not_null(strstr(detail, "negative"), "%s", detail);
    cr_assert_eq(tsd_audit_count(&env, "cert.denied", 0), 2);
    free(csr);
}

/* meshd routes refusal rows through its own (rate-limited) queue. */
typedef struct sink_rows {
    int n;
    char actor[600];
} sink_rows;

static void sink(void *arg, const char *actor, const char *action, const char *subject,
                 const char *detail, int ok)
{
    sink_rows *s = arg;
    s->n++;
    snprintf(s->actor, sizeof s->actor, "%s", actor);
}

Test(sds_cert, refusals_go_to_the_audit_sink)
{
    char *csr = tsd_csr(TSD_WEB, NULL);
    cert_service_req req = base_req(csr);
    sink_rows rows = {0};
    req.audit_fn = sink;
    req.audit_ctx = &rows;
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.status, GRPC_STATUS_UNAUTHENTICATED);
    cr_assert_eq(rows.n, 1);
    cr_assert_str_eq(rows.actor, STORE_AUDIT_UNAUTHENTICATED);
    cr_assert_eq(tsd_audit_count(&env, "cert.denied", 0), 0, "not written directly");
    free(csr);
}

/* Identity per service account (issue 13): the token names an instance, the cert
 * records it, and a renewal over mTLS keeps it whatever the request says. */
Test(sds_cert, the_token_binds_the_instance_and_renewal_keeps_it)
{
    mesh_err err = {0};
    cr_assert_eq(store_registration_add(env.st, "web-2", TSD_WEB, "", "", &err), MESH_OK, "%s",
                 err.msg);
    char *tok = NULL;
    cr_assert_eq(join_token_create(env.st, "web-2", NULL, 3600, &tok, &err), MESH_OK, "%s",
                 err.msg);
    char *authz = bearer(tok);
    EVP_PKEY *key;
    char *csr = tsd_csr(TSD_WEB, &key);
    cert_service_req req = base_req(csr);
    req.authorization = authz;
    call_result r;
    call(&req, &r);
    cr_assert_eq(r.rc, MESH_OK, "%s", r.err.msg);
    cr_assert_str_eq(r.resp.spiffe_id, TSD_WEB);
    cr_assert_str_eq(r.resp.instance, "web-2");
    store_cert rec;
    cr_assert_eq(store_cert_get(env.st, r.resp.serial_hex, &rec, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(rec.instance, "web-2", "recorded with the cert");
    store_cert_free(&rec);

    char *leaf = strdup(r.resp.chain[0]);
    cert_service_resp_free(&r.resp);
    cert_service_req renew = base_req(csr);
    renew.peer_spiffe_id = TSD_WEB;
    renew.peer_cert_pem = leaf;
    call(&renew, &r);
    cr_assert_eq(r.rc, MESH_OK, "%s", r.err.msg);
    cr_assert_str_eq(r.resp.auth, "mtls");
    cr_assert_str_eq(r.resp.instance, "web-2", "a renewal keeps the enrolled instance");
    cert_service_resp_free(&r.resp);

    /* The instance's registration removed: its cert cannot renew, although the
     * identity is still registered as a whole. */
    cr_assert_eq(store_registration_remove(env.st, "web-2", NULL, &err), MESH_OK, "%s", err.msg);
    call(&renew, &r);
    cr_assert_eq(r.status, GRPC_STATUS_PERMISSION_DENIED, "%s", r.err.msg);
    cr_assert(strstr(r.err.msg, "web-2"), "%s", r.err.msg);
    free(leaf);
    EVP_PKEY_free(key);
    free(csr);
    free(authz);
    free(tok);
}
