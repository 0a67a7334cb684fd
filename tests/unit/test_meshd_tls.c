/* tests/unit/test_meshd_tls.c — meshd's serving certificate (meshd/meshd_tls.c): what it
 * issues itself, when it renews (md_tls_renew_due), and the generation counter that
 * tells gRPC's config fetcher something changed. Real CA and store (tsd_env). */
#include <criterion/criterion.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "ca/csr.h"
#include "meshd/meshd_internal.h"
#include "sds/certsvc/svid_rotation.h"
#include "tests/unit/test_meshd_util.h"
#include "tests/unit/test_sds_util.h"

static tsd_env env;
static md_ctx *ctx;

static void setup(void)
{
    tsd_setup(&env);
    ctx = tmd_ctx_new(env.db);
}

static void teardown(void)
{
    tmd_ctx_free(ctx);
    tsd_teardown(&env);
}

static void issue(void)
{
    mesh_err err = {0};
    cr_assert_eq(md_tls_issue_serving(ctx, env.ca, env.st, &err), MESH_OK, "%s", err.msg);
}

TestSuite(meshd_tls, .init = setup, .fini = teardown);

Test(meshd_tls, serving_cert_names_meshd)
{
    issue();
    md_tls *t = &ctx->tls;
    cr_assert_not_null(t->key_pem);
    cr_assert_not_null(t->chain_pem);
    X509 *x = NULL;
    mesh_err err = {0};
    cr_assert_eq(pem_read_cert(t->chain_pem, &x, &err), MESH_OK, "%s", err.msg);
    char id[600];
    cr_assert_eq(cert_spiffe_id(x, id, sizeof id, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(id, "spiffe://" TSD_TD "/ns/" MD_SERVING_NS "/sa/" MD_SERVING_SA);
    /* Clients verify the name "meshd" (or localhost) */
    cr_assert_eq(X509_check_host(x, "meshd", 0, 0, NULL), 1);
    cr_assert_eq(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    cr_assert_neq(X509_check_host(x, "example.com", 0, 0, NULL), 1);
    /* The key in memory is the certificate's. */
    EVP_PKEY *key = NULL;
    cr_assert_eq(pem_read_private_key(t->key_pem, &key, &err), MESH_OK, "%s", err.msg);
    cr_assert(cert_key_matches(x, key));
    EVP_PKEY_free(key);
    X509_free(x);
    cr_assert_eq(t->ca_id, ca_id(env.ca));
    cr_assert_eq(t->not_after - t->not_before, ctx->opts.svid_ttl + CA_BACKDATE_SECONDS);
    cr_assert_neq(t->serial[0], '\0');
}

Test(meshd_tls, reissue_changes_key_and_generation)
{
    issue();
    uint64_t gen = ctx->tls.gen;
    char serial[48], *key = strdup(ctx->tls.key_pem);
    snprintf(serial, sizeof serial, "%s", ctx->tls.serial);
    issue();
    cr_assert_eq(ctx->tls.gen, gen + 1, "gRPC must be told about the new cert");
    cr_assert_str_neq(ctx->tls.serial, serial);
    cr_assert_str_neq(ctx->tls.key_pem, key, "a renewal brings a new key");
    free(key);
}

/* A refused issuance keeps the cert in use: meshd goes on serving. */
Test(meshd_tls, failed_issue_keeps_the_current_cert)
{
    issue();
    uint64_t gen = ctx->tls.gen;
    char serial[48];
    snprintf(serial, sizeof serial, "%s", ctx->tls.serial);
    ctx->opts.svid_ttl = CA_MAX_SVID_TTL + 1; /* the CA refuses this lifetime */
    mesh_err err = {0};
    cr_assert_neq(md_tls_issue_serving(ctx, env.ca, env.st, &err), MESH_OK);
    cr_assert_not_null(strstr(err.msg, "serving certificate"), "%s", err.msg);
    cr_assert_eq(ctx->tls.gen, gen);
    cr_assert_str_eq(ctx->tls.serial, serial);
    cr_assert_not_null(ctx->tls.key_pem);
}

Test(meshd_tls, renewal_follows_the_rotation_fraction)
{
    issue();
    md_tls *t = &ctx->tls;
    int64_t active = ca_id(env.ca);
    int64_t due = svid_rotation_due(t->not_before, t->not_after, 0.5, t->serial);
    cr_assert_gt(due, t->not_before);
    cr_assert_lt(due, t->not_after);
    cr_assert_eq(md_tls_renew_due(t, t->not_before + 20, 0.5, active), 0, "fresh cert");
    cr_assert_eq(md_tls_renew_due(t, due - 1, 0.5, active), 0);
    cr_assert_eq(md_tls_renew_due(t, due, 0.5, active), 1);
    cr_assert_eq(md_tls_renew_due(t, t->not_after + 1, 0.5, active), 1, "expired");
    /* A later fraction moves the time out. */
    int64_t due9 = svid_rotation_due(t->not_before, t->not_after, 0.9, t->serial);
    cr_assert_gt(due9, due);
    cr_assert_eq(md_tls_renew_due(t, due, 0.9, active), 0);
}

Test(meshd_tls, a_new_active_ca_means_renew_now)
{
    issue();
    md_tls *t = &ctx->tls;
    cr_assert_eq(md_tls_renew_due(t, t->not_before + 20, 0.5, ca_id(env.ca) + 1), 1,
                 "the serving cert must come from the active CA");
}

Test(meshd_tls, nothing_issued_yet_is_due)
{
    cr_assert_eq(md_tls_renew_due(&ctx->tls, md_now(), 0.5, ca_id(env.ca)), 1);
}

Test(meshd_tls, roots_bump_the_generation_only_when_they_change)
{
    md_tls *t = &ctx->tls;
    char *bundle = NULL;
    mesh_err err = {0};
    cr_assert_eq(ca_bundle_pem(env.st, &bundle, &err), MESH_OK, "%s", err.msg);
    uint64_t gen = t->gen;
    md_tls_set_roots(t, bundle);
    cr_assert_eq(t->gen, gen + 1);
    cr_assert_str_eq(t->roots_pem, bundle);
    md_tls_set_roots(t, bundle); /* the watcher calls this on every CA list change */
    cr_assert_eq(t->gen, gen + 1, "same roots: no new TLS config for gRPC");
    size_t len = strlen(bundle);
    char *two = malloc(2 * len + 1);
    memcpy(two, bundle, len);
    memcpy(two + len, bundle, len + 1);
    md_tls_set_roots(t, two);
    cr_assert_eq(t->gen, gen + 2);
    cr_assert_str_eq(t->roots_pem, two);
    free(two);
    free(bundle);
}

/* ---- client certificates: verified by meshd, not by gRPC (issue 11) ----------------- */

static void load_roots(void)
{
    char *bundle = NULL;
    mesh_err err = {0};
    cr_assert_eq(ca_bundle_pem(env.st, &bundle, &err), MESH_OK, "%s", err.msg);
    md_tls_set_roots(&ctx->tls, bundle);
    free(bundle);
}

Test(meshd_tls, a_meshd_issued_svid_verifies)
{
    load_roots();
    EVP_PKEY *k;
    free(tsd_csr(TSD_WEB, &k));
    char *pem = tsd_issue(&env, k, TSD_WEB, 600, NULL, NULL);
    mesh_err err = {0};
    cr_assert_eq(md_tls_verify_client(&ctx->tls, pem, NULL, md_now(), &err), MESH_OK, "%s",
                 err.msg);
    free(pem);
    EVP_PKEY_free(k);
}

Test(meshd_tls, a_foreign_ca_cert_is_refused_with_its_claim)
{
    load_roots();
    EVP_PKEY *k;
    free(tsd_csr(TSD_WEB, &k));
    tsd_env foreign;
    tsd_setup(&foreign);
    char *pem = tsd_issue(&foreign, k, TSD_WEB, 600, NULL, NULL);
    tsd_teardown(&foreign);
    mesh_err err = {0};
    cr_assert_eq(md_tls_verify_client(&ctx->tls, pem, NULL, md_now(), &err), MESH_EPERM);
    cr_assert_not_null(strstr(err.msg, "client certificate refused: unable to get local issuer"),
                       "%s", err.msg);
    char claim[600], info[400];
    md_tls_describe_client(pem, claim, sizeof claim, info, sizeof info);
    cr_assert_str_eq(claim, TSD_WEB);
    cr_assert_not_null(strstr(info, "serial="), "%s", info);
    cr_assert_not_null(strstr(info, "issuer="), "%s", info);
    free(pem);
    EVP_PKEY_free(k);
}

Test(meshd_tls, an_expired_cert_is_refused)
{
    load_roots();
    EVP_PKEY *k;
    free(tsd_csr(TSD_WEB, &k));
    int64_t na = 0;
    char *pem = tsd_issue(&env, k, TSD_WEB, 60, NULL, &na);
    mesh_err err = {0};
    cr_assert_eq(md_tls_verify_client(&ctx->tls, pem, NULL, na - 1, &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_eq(md_tls_verify_client(&ctx->tls, pem, NULL, na + 10, &err), MESH_EPERM);
    cr_assert_not_null(strstr(err.msg, "certificate has expired"), "%s", err.msg);
    free(pem);
    EVP_PKEY_free(k);
}

Test(meshd_tls, no_bundle_or_garbage)
{
    mesh_err err = {0};
    cr_assert_eq(md_tls_verify_client(&ctx->tls, "x", NULL, md_now(), &err), MESH_EBUSY,
                 "before any bundle");
    load_roots();
    cr_assert_eq(md_tls_verify_client(&ctx->tls, "not a pem", NULL, md_now(), &err), MESH_EPERM);
    cr_assert_eq(md_tls_verify_client(&ctx->tls, NULL, NULL, md_now(), &err), MESH_EPERM);
    uint64_t gen = ctx->tls.gen;
    md_tls_set_roots(&ctx->tls, "no certificate here");
    cr_assert_eq(ctx->tls.gen, gen, "an unusable bundle is not installed");
    char claim[16], info[16];
    md_tls_describe_client("garbage", claim, sizeof claim, info, sizeof info);
    cr_assert_str_eq(claim, "");
}
