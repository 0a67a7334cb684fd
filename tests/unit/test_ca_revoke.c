/* tests/unit/test_ca_revoke.c — revocation in ca/ (ca_revoke.h): reason names,
 * keyCompromise revoking every unexpired certificate of the key and recording
 * it, every CA issuance path refusing that key afterwards, and the CRLs: built
 * per CA, verified and read back with the openssl CLI (a verifier nobody here
 * wrote), numbered, refreshed only when needed, entries dropped once long
 * expired, removed CAs left out. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca_pubkey.h"
#include "ca/ca_revoke.h"
#include "ca/csr.h"
#include "tests/unit/test_ca_util.h"

static tca_env env;
static mesh_ca *ca;

static void setup(void)
{
    tca_setup(&env);
    tca_init(&env, NULL, 0);
    ca = tca_load(&env);
}

static void teardown(void)
{
    ca_free(ca);
    tca_teardown(&env);
}

TestSuite(ca_revoke, .init = setup, .fini = teardown);

static int64_t now_s(void) { return (int64_t)time(NULL); }

/* Issues a cert for id over key; returns its serial (static buffer per slot). */
static void issue_for(EVP_PKEY *key, const char *id, int64_t ttl, char serial[48])
{
    char *csr = NULL;
    mesh_err err = {0};
    cr_assert_eq(csr_create(key, id, &csr, &err), MESH_OK, "%s", err.msg);
    ca_issue_req req = {.csr_pem = csr, .authorised_id = id, .ttl_seconds = ttl,
                        .actor = "test"};
    ca_issued out;
    cr_assert_eq(ca_issue_svid(ca, env.st, &req, &out, &err), MESH_OK, "%s", err.msg);
    snprintf(serial, 48, "%s", out.serial_hex);
    ca_issued_free(&out);
    free(csr);
}

static store_cert get(const char *serial)
{
    store_cert c;
    mesh_err err = {0};
    cr_assert_eq(store_cert_get(env.st, serial, &c, &err), MESH_OK, "%s", err.msg);
    return c;
}

Test(ca_revoke, reason_names)
{
    int code = -1;
    mesh_err err = {0};
    cr_assert_eq(ca_revoke_reason_parse("keyCompromise", &code, &err), MESH_OK);
    cr_assert_eq(code, CA_REASON_KEY_COMPROMISE);
    cr_assert_eq(ca_revoke_reason_parse("KEYCOMPROMISE", &code, &err), MESH_OK, "case-insensitive");
    cr_assert_eq(ca_revoke_reason_parse("superseded", &code, &err), MESH_OK);
    cr_assert_eq(code, CA_REASON_SUPERSEDED);
    cr_assert_eq(ca_revoke_reason_parse("privilegeWithdrawn", &code, &err), MESH_OK);
    cr_assert_eq(code, 9, "RFC 5280 skips 7 (unused) and 8 (removeFromCRL)");
    cr_assert_eq(ca_revoke_reason_parse(NULL, &code, &err), MESH_OK);
    cr_assert_eq(code, CA_REASON_UNSPECIFIED);
    cr_assert_eq(ca_revoke_reason_parse("certificateHold", &code, &err), MESH_EINVAL,
                 "a hold is not final: refused");
    cr_assert_eq(ca_revoke_reason_parse("key leaked\n", &code, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "keyCompromise"), "the message lists the names: %s", err.msg);
    cr_assert_null(strchr(err.msg, '\n'), "input is quoted, not echoed raw: %s", err.msg);
    cr_assert_str_eq(ca_revoke_reason_name(CA_REASON_CESSATION_OF_OPERATION),
                     "cessationOfOperation");
    cr_assert_eq(ca_revoke_reason_code("e2e"), CA_REASON_UNSPECIFIED,
                 "free-form reasons of old stores count as unspecified");
}

Test(ca_revoke, key_compromise_revokes_every_live_cert_of_the_key)
{
    EVP_PKEY *key = tca_key_ec("P-256"), *other = tca_key_ec("P-256");
    char a[48], b[48], c[48], d[48], e[48];
    issue_for(key, TCA_ID_WEB, 3600, a);
    issue_for(key, TCA_ID_WEB, 3600, b);      /* a sibling, as same-key rotation makes */
    issue_for(key, TCA_ID_DB, 3600, c);       /* the same key under another identity */
    issue_for(other, TCA_ID_WEB, 3600, d);    /* the identity's other key stays */
    issue_for(key, TCA_ID_WEB, 10, e);
    mesh_err err = {0};
    /* e has expired: only unexpired certs are revoked. */
    ca_revoke_result r;
    cr_assert_eq(ca_revoke(env.st, a, "keyCompromise", "test", now_s() + 20, &r, &err), MESH_OK,
                 "%s", err.msg);
    cr_assert_eq(r.reason, CA_REASON_KEY_COMPROMISE);
    cr_assert_eq(r.n_serials, 3, "a, b and c");
    cr_assert_str_eq(r.serials[0], a, "the named serial first");
    cr_assert(r.key_recorded);
    cr_assert_str_eq(r.spiffe_id, TCA_ID_WEB);
    cr_assert_eq(r.other_key_valid, 1, "d is still valid");
    cr_assert_eq(r.same_key_valid, 0);
    ca_revoke_result_free(&r);
    const char *revoked[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        store_cert s = get(revoked[i]);
        cr_assert(s.revoked, "%s revoked", revoked[i]);
        cr_assert_str_eq(s.revoke_reason, "keyCompromise");
        store_cert_free(&s);
    }
    store_cert sd = get(d), se = get(e);
    cr_assert_not(sd.revoked, "another key's cert is untouched");
    cr_assert_not(se.revoked, "an expired cert is not revoked (its key is on the list)");
    store_compromised_key k;
    cr_assert_eq(store_key_compromised_get(env.st, sd.pubkey_sha256, &k, &err), MESH_ENOTFOUND);
    store_cert sa = get(a);
    cr_assert_eq(store_key_compromised_get(env.st, sa.pubkey_sha256, &k, &err), MESH_OK);
    cr_assert_str_eq(k.serial_hex, a);
    store_compromised_key_free(&k);
    cr_assert_eq(tca_audit_count(env.st, "cert.revoke", 1), 3, "one audit row per serial");
    cr_assert_eq(tca_audit_count(env.st, "key.compromised", 1), 1);
    /* Revoking again is refused, by any of its certificates. */
    cr_assert_eq(ca_revoke(env.st, b, "keyCompromise", "test", now_s(), &r, &err), MESH_EEXISTS);
    cr_assert(strstr(err.msg, "already revoked"), "%s", err.msg);
    store_cert_free(&sa);
    store_cert_free(&sd);
    store_cert_free(&se);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

Test(ca_revoke, compromised_key_is_never_certified_again)
{
    EVP_PKEY *key = tca_key_ec("P-256");
    char a[48];
    issue_for(key, TCA_ID_WEB, 3600, a);
    ca_revoke_result r;
    mesh_err err = {0};
    cr_assert_eq(ca_revoke(env.st, a, "keyCompromise", "meshctl", now_s(), &r, &err), MESH_OK);
    ca_revoke_result_free(&r);
    int64_t before = tca_cert_count(env.st);
    /* A CSR (meshctl cert issue, token, renewal, recovery all end here). */
    char *csr = NULL;
    cr_assert_eq(csr_create(key, TCA_ID_WEB, &csr, &err), MESH_OK);
    ca_issue_req req = {.csr_pem = csr, .authorised_id = TCA_ID_WEB, .actor = "meshctl"};
    ca_issued out;
    cr_assert_eq(ca_issue_svid(ca, env.st, &req, &out, &err), MESH_EPERM);
    cr_assert(strstr(err.msg, "compromised"), "%s", err.msg);
    cr_assert(strstr(err.msg, a), "the message names the revocation: %s", err.msg);
    cr_assert(strstr(err.msg, "new key"), "and what to do: %s", err.msg);
    /* meshd's same-key rotation. */
    cr_assert_eq(ca_issue_for_pubkey(ca, env.st, key, TCA_ID_WEB, "", 3600, "meshd", &out, &err),
                 MESH_EPERM);
    cr_assert(strstr(err.msg, "compromised"), "%s", err.msg);
    /* Under another identity too. */
    char *csr_db = NULL;
    cr_assert_eq(csr_create(key, TCA_ID_DB, &csr_db, &err), MESH_OK);
    req.csr_pem = csr_db;
    req.authorised_id = TCA_ID_DB;
    cr_assert_eq(ca_issue_svid(ca, env.st, &req, &out, &err), MESH_EPERM);
    cr_assert_eq(tca_cert_count(env.st), before, "nothing was stored");
    cr_assert_eq(ca_csr_key_check_usable(env.st, csr, &err), MESH_EPERM);
    cr_assert_eq(ca_csr_key_check_usable(env.st, "not a csr", &err), MESH_EINVAL);
    /* A fresh key is fine. */
    EVP_PKEY *fresh = tca_key_ec("P-256");
    char b[48];
    issue_for(fresh, TCA_ID_WEB, 3600, b);
    free(csr);
    free(csr_db);
    EVP_PKEY_free(fresh);
    EVP_PKEY_free(key);
}

Test(ca_revoke, other_reasons_revoke_one_serial)
{
    EVP_PKEY *key = tca_key_ec("P-256");
    char a[48], b[48];
    issue_for(key, TCA_ID_WEB, 3600, a);
    issue_for(key, TCA_ID_WEB, 3600, b);
    ca_revoke_result r;
    mesh_err err = {0};
    cr_assert_eq(ca_revoke(env.st, a, "Superseded", "test", now_s(), &r, &err), MESH_OK);
    cr_assert_eq(r.n_serials, 1);
    cr_assert_not(r.key_recorded);
    cr_assert_eq(r.same_key_valid, 1, "b shares the key and stays valid");
    ca_revoke_result_free(&r);
    store_cert sa = get(a), sb = get(b);
    cr_assert_str_eq(sa.revoke_reason, "superseded", "stored under its canonical name");
    cr_assert_not(sb.revoked);
    char c[48];
    issue_for(key, TCA_ID_WEB, 3600, c);   /* the key is not banned */
    cr_assert_eq(ca_revoke(env.st, a, "superseded", "test", now_s(), &r, &err), MESH_EEXISTS);
    cr_assert_eq(ca_revoke(env.st, a, "bogus", "test", now_s(), &r, &err), MESH_EINVAL);
    cr_assert_eq(ca_revoke(env.st, "abcdef", NULL, "test", now_s(), &r, &err), MESH_ENOTFOUND);
    /* A compromise found later escalates: the key goes, b and c with it. */
    cr_assert_eq(ca_revoke(env.st, a, "keyCompromise", "test", now_s(), &r, &err), MESH_OK,
                 "%s", err.msg);
    cr_assert(r.key_recorded);
    cr_assert_eq(r.n_serials, 3);
    ca_revoke_result_free(&r);
    store_cert sa2 = get(a);
    cr_assert_str_eq(sa2.revoke_reason, "keyCompromise");
    cr_assert_eq(sa2.revoked_at, sa.revoked_at, "the revocation time stays");
    store_cert_free(&sa);
    store_cert_free(&sa2);
    store_cert_free(&sb);
    EVP_PKEY_free(key);
}

/* ---- CRLs ----------------------------------------------------------------------- */

static char *crl_bundle(void)
{
    char *pem = NULL;
    mesh_err err = {0};
    cr_assert_eq(ca_crl_bundle_pem(env.st, &pem, &err), MESH_OK, "%s", err.msg);
    return pem;
}

/* openssl crl -text of the bundle CRL, verified against the CA's bundle. */
static int openssl_crl(char *out, size_t len)
{
    char *pem = crl_bundle(), *bundle = NULL;
    mesh_err err = {0};
    cr_assert_eq(ca_bundle_pem(env.st, &bundle, &err), MESH_OK);
    char crlp[200], bp[200];
    snprintf(crlp, sizeof crlp, "%s/crl.pem", env.dir);
    snprintf(bp, sizeof bp, "%s/bundle.pem", env.dir);
    tca_write(crlp, pem);
    tca_write(bp, bundle);
    free(pem);
    free(bundle);
    return tca_sh(out, len, "openssl crl -in '%s' -CAfile '%s' -noout -text", crlp, bp);
}

Test(ca_revoke, crl_is_signed_by_the_ca_and_lists_reasons)
{
    int changed = -1;
    mesh_err err = {0};
    cr_assert_eq(ca_crl_refresh(env.st, now_s(), &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(changed, 1, "the CA gets a CRL even with nothing revoked");
    char out[16384];
    cr_assert_eq(openssl_crl(out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "verify OK"), "%s", out);
    cr_assert(strstr(out, "No Revoked Certificates"), "%s", out);
    cr_assert(strstr(out, "X509v3 CRL Number"), "%s", out);

    EVP_PKEY *k1 = tca_key_ec("P-256"), *k2 = tca_key_ec("P-256");
    char a[48], b[48];
    issue_for(k1, TCA_ID_WEB, 3600, a);
    issue_for(k2, TCA_ID_DB, 3600, b);
    ca_revoke_result r;
    cr_assert_eq(ca_revoke(env.st, a, "keyCompromise", "t", now_s(), &r, &err), MESH_OK);
    ca_revoke_result_free(&r);
    cr_assert_eq(ca_revoke(env.st, b, NULL, "t", now_s(), &r, &err), MESH_OK);
    ca_revoke_result_free(&r);
    cr_assert_eq(ca_crl_refresh(env.st, now_s(), &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(changed, 1);
    cr_assert_eq(openssl_crl(out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "verify OK"), "%s", out);
    char upper[48];
    for (size_t i = 0; i <= strlen(a); i++)
        upper[i] = (char)(a[i] >= 'a' && a[i] <= 'f' ? a[i] - 32 : a[i]);
    cr_assert(strstr(out, upper), "serial %s listed: %s", upper, out);
    cr_assert(strstr(out, "Key Compromise"), "%s", out);
    cr_assert_eq(tca_count(out, "CRL Reason Code"), 1, "unspecified carries no reason code");
    cr_assert(strstr(out, "Next Update"), "%s", out);
    cr_assert(strstr(out, "Authority Key Identifier"), "%s", out);

    store_crl c;
    cr_assert_eq(store_crl_get(env.st, ca_id(ca), &c, &err), MESH_OK);
    cr_assert_eq(c.crl_number, 2, "numbered per CA, one up per re-signing");
    cr_assert_eq(c.n_entries, 2);
    int64_t n = now_s();
    cr_assert(c.this_update <= n && c.this_update >= n - CA_BACKDATE_SECONDS - 5);
    cr_assert(c.next_update >= n + CA_CRL_VALIDITY - 5);
    store_crl_free(&c);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

Test(ca_revoke, crl_is_re_signed_only_when_needed)
{
    int changed = -1;
    mesh_err err = {0};
    int64_t t0 = now_s();
    cr_assert_eq(ca_crl_refresh(env.st, t0, &changed, &err), MESH_OK);
    cr_assert_eq(changed, 1);
    char *first = crl_bundle();
    cr_assert_eq(ca_crl_refresh(env.st, t0 + 60, &changed, &err), MESH_OK);
    cr_assert_eq(changed, 0, "nothing revoked, nextUpdate far: the same bytes");
    char *same = crl_bundle();
    cr_assert_str_eq(first, same, "identical bytes, so an identical SDS version");
    /* Past half of its validity: re-signed with a later nextUpdate. */
    cr_assert_eq(ca_crl_refresh(env.st, t0 + CA_CRL_VALIDITY - CA_CRL_RESIGN_BEFORE + 10,
                                &changed, &err),
                 MESH_OK);
    cr_assert_eq(changed, 1);
    store_crl c;
    cr_assert_eq(store_crl_get(env.st, ca_id(ca), &c, &err), MESH_OK);
    cr_assert_eq(c.crl_number, 2);
    cr_assert(c.next_update > t0 + CA_CRL_VALIDITY);
    store_crl_free(&c);
    free(first);
    free(same);
}

Test(ca_revoke, long_expired_entries_leave_the_crl)
{
    EVP_PKEY *k = tca_key_ec("P-256");
    char a[48];
    issue_for(k, TCA_ID_WEB, 60, a);
    ca_revoke_result r;
    mesh_err err = {0};
    cr_assert_eq(ca_revoke(env.st, a, "cessationOfOperation", "t", now_s(), &r, &err), MESH_OK);
    ca_revoke_result_free(&r);
    int changed = 0;
    cr_assert_eq(ca_crl_refresh(env.st, now_s(), &changed, &err), MESH_OK);
    store_crl c;
    cr_assert_eq(store_crl_get(env.st, ca_id(ca), &c, &err), MESH_OK);
    cr_assert_eq(c.n_entries, 1);
    store_crl_free(&c);
    /* Still listed just after notAfter (clock skew margin), gone after it. */
    cr_assert_eq(ca_crl_refresh(env.st, now_s() + 120, &changed, &err), MESH_OK);
    cr_assert_eq(changed, 0);
    cr_assert_eq(ca_crl_refresh(env.st, now_s() + 60 + CA_CRL_EXPIRED_MARGIN + 60, &changed,
                                &err),
                 MESH_OK);
    cr_assert_eq(changed, 1);
    cr_assert_eq(store_crl_get(env.st, ca_id(ca), &c, &err), MESH_OK);
    cr_assert_eq(c.n_entries, 0);
    store_crl_free(&c);
    EVP_PKEY_free(k);
}

Test(ca_revoke, one_crl_per_ca_in_the_bundle)
{
    mesh_err err = {0};
    ca_init_opts o = {.trust_domain = TCA_TD, .key_dir = env.keydir};
    int64_t id2 = 0;
    cr_assert_eq(ca_prepare(env.st, &o, &id2, &err), MESH_OK, "%s", err.msg);
    int changed = 0;
    cr_assert_eq(ca_crl_refresh(env.st, now_s(), &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(changed, 2, "the prepared CA too: a sidecar checks whichever signed a peer");
    char *pem = crl_bundle();
    cr_assert_eq(tca_count(pem, "BEGIN X509 CRL"), 2);
    free(pem);
    char out[16384];
    cr_assert_eq(openssl_crl(out, sizeof out), 0, "%s", out);
    /* Retire the first, then remove it: its CRL leaves the bundle with it. */
    cr_assert_eq(ca_activate(env.st, id2, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_ca_set_state(env.st, ca_id(ca), "removed", &err), MESH_OK);
    pem = crl_bundle();
    cr_assert_eq(tca_count(pem, "BEGIN X509 CRL"), 1);
    free(pem);
}
