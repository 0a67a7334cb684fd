/* tests/unit/test_sds_secrets.c — the SDS secret set (sds/protocol/sds_secret_set.c): which SVID is
 * "default" for a caller (newest unrevoked for the presented key, so replicas sharing an
 * identity each get their own), the bundle secrets, and the chain for an intermediate CA. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/csr.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "sds/protocol/sds_names.h"
#include "sds/protocol/sds_secret_set.h"
#include "tests/unit/test_sds_util.h"

static tsd_env env;

static void setup(void) { tsd_setup(&env); }
static void teardown(void) { tsd_teardown(&env); }

TestSuite(sds_secrets, .init = setup, .fini = teardown);

static void spki(EVP_PKEY *k, char out[65])
{
    mesh_err err = {0};
    cr_assert_eq(pubkey_sha256_hex(k, out, &err), MESH_OK);
}

static void lookup(EVP_PKEY *key, const char *id, const char *presented, int *revoked,
                   sds_svid *out)
{
    store_ca *cas = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_ca_list(env.st, &cas, &n, &err), MESH_OK);
    char sha[65];
    spki(key, sha);
    cr_assert_eq(sds_svid_lookup(env.st, id, sha, cas, n, (int64_t)time(NULL), presented, revoked,
                                 out, &err),
                 MESH_OK, "%s", err.msg);
    store_ca_free_list(cas, n);
}

Test(sds_secrets, default_is_newest_unrevoked_for_the_presented_key)
{
    EVP_PKEY *k1, *k2;
    free(tsd_csr(TSD_WEB, &k1));
    free(tsd_csr(TSD_WEB, &k2));
    char s1a[48], s1b[48], s2[48];
    free(tsd_issue(&env, k1, TSD_WEB, 3600, s1a, NULL));
    free(tsd_issue(&env, k2, TSD_WEB, 3600, s2, NULL));   /* another replica, same identity */
    free(tsd_issue(&env, k1, TSD_WEB, 3600, s1b, NULL));  /* k1 renewed */
    sds_svid v;
    lookup(k1, TSD_WEB, NULL, NULL, &v);
    cr_assert(v.found);
    cr_assert_str_eq(v.serial_hex, s1b, "newest cert for k1");
    cr_assert(strstr(v.chain_pem, "BEGIN CERTIFICATE"));
    sds_svid_free(&v);
    lookup(k2, TSD_WEB, NULL, NULL, &v);
    cr_assert_str_eq(v.serial_hex, s2, "each replica gets its own cert");
    sds_svid_free(&v);
    /* Revoke k1's newest: the older one is current again; the presented
     * cert's revocation is reported. */
    mesh_err err = {0};
    cr_assert_eq(store_cert_revoke(env.st, s1b, "t", (int64_t)time(NULL), &err), MESH_OK);
    int revoked = 0;
    lookup(k1, TSD_WEB, s1b, &revoked, &v);
    cr_assert_str_eq(v.serial_hex, s1a);
    cr_assert(revoked);
    sds_svid_free(&v);
    lookup(k1, TSD_WEB, s1a, &revoked, &v);
    cr_assert_not(revoked);
    sds_svid_free(&v);
    /* Another identity with k1 has nothing. */
    lookup(k1, TSD_API, NULL, NULL, &v);
    cr_assert_not(v.found);
    sds_svid_free(&v);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

static Envoy__Extensions__TransportSockets__Tls__V3__Secret *decode(const xds_resource *r)
{
    Envoy__Extensions__TransportSockets__Tls__V3__Secret *s =
        envoy__extensions__transport_sockets__tls__v3__secret__unpack(NULL, r->len, r->data);
    cr_assert_not_null(s);
    return s;
}

Test(sds_secrets, set_holds_default_rootca_and_spire_names)
{
    EVP_PKEY *k;
    free(tsd_csr(TSD_WEB, &k));
    free(tsd_issue(&env, k, TSD_WEB, 3600, NULL, NULL));
    sds_svid v;
    lookup(k, TSD_WEB, NULL, NULL, &v);
    char *bundle_pem = NULL;
    mesh_err err = {0};
    cr_assert_eq(ca_bundle_pem(env.st, &bundle_pem, &err), MESH_OK);
    sds_bundle *b = NULL;
    cr_assert_eq(sds_bundle_build(bundle_pem, NULL, TSD_TD, &b, &err), MESH_OK, "%s", err.msg);
    sds_secret_set *set = calloc(1, sizeof *set);
    cr_assert_eq(sds_secret_set_build(TSD_WEB, v.chain_pem, b, set, &err), MESH_OK, "%s",
                 err.msg);
    sds_bundle_unref(b); /* the set holds its own reference */
    cr_assert_eq(set->set.n, 4);
    const char *want[] = {"ROOTCA", "default", "spiffe://example.org", TSD_WEB};
    for (int i = 0; i < 4; i++)
        cr_assert_str_eq(set->set.items[i].name, want[i], "sorted by name");
    for (int i = 0; i < 4; i++) {
        Envoy__Extensions__TransportSockets__Tls__V3__Secret *s = decode(&set->set.items[i]);
        cr_assert_str_eq(s->name, want[i], "the Secret's name is the requested name");
        int is_cert = i == 1 || i == 3;
        if (is_cert) {
            cr_assert_eq(s->type_case,
                         ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE);
            cr_assert_null(s->tls_certificate->private_key, "meshd never has the key");
            cr_assert_eq(s->tls_certificate->certificate_chain->inline_bytes.len,
                         strlen(v.chain_pem));
        } else {
            cr_assert_eq(
                s->type_case,
                ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT);
            cr_assert_eq(s->validation_context->trusted_ca->inline_bytes.len, strlen(bundle_pem));
        }
        envoy__extensions__transport_sockets__tls__v3__secret__free_unpacked(s, NULL);
        cr_assert_eq(strlen(set->set.items[i].version), 16);
    }
    cr_assert_str_neq(set->set.items[1].version, set->set.items[3].version,
                      "different names, different bytes");
    sds_secret_set_free(set);
    free(set);
    /* Without an SVID only the bundle names are served. */
    cr_assert_eq(sds_bundle_build(bundle_pem, NULL, TSD_TD, &b, &err), MESH_OK);
    set = calloc(1, sizeof *set);
    cr_assert_eq(sds_secret_set_build(TSD_WEB, NULL, b, set, &err), MESH_OK);
    sds_bundle_unref(b);
    cr_assert_eq(set->set.n, 2);
    sds_secret_set_free(set);
    free(set);
    sds_svid_free(&v);
    free(bundle_pem);
    EVP_PKEY_free(k);
}

Test(sds_secrets, chain_for_an_intermediate_ca)
{
    /* A fake CA row whose chain_pem is [intermediate-above, root]: the chain
     * served is leaf + this CA's cert + the intermediate, never the root. */
    store_ca row;
    memset(&row, 0, sizeof row);
    row.id = 7;
    row.cert_pem = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
    row.chain_pem = "-----BEGIN CERTIFICATE-----\nMID\n-----END CERTIFICATE-----\n"
                    "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n";
    char *chain = NULL;
    mesh_err err = {0};
    cr_assert_eq(sds_chain_for_cert("-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----",
                                    7, &row, 1, &chain, &err),
                 MESH_OK);
    cr_assert(strstr(chain, "LEAF") < strstr(chain, "\nCA\n"));
    cr_assert(strstr(chain, "\nCA\n") < strstr(chain, "MID"));
    cr_assert_null(strstr(chain, "ROOT"));
    free(chain);
    /* A self-signed root CA: the leaf alone. */
    row.chain_pem = "";
    cr_assert_eq(sds_chain_for_cert("LEAFPEM\n", 7, &row, 1, &chain, &err), MESH_OK);
    cr_assert_str_eq(chain, "LEAFPEM\n");
    free(chain);
}

Test(sds_secrets, bundle_refcount_and_version)
{
    sds_bundle *a = NULL, *b = NULL;
    mesh_err err = {0};
    cr_assert_eq(sds_bundle_build("-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n",
                                  NULL, TSD_TD, &a, &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(sds_bundle_build("-----BEGIN CERTIFICATE-----\nY\n-----END CERTIFICATE-----\n",
                                  NULL, TSD_TD, &b, &err),
                 MESH_OK);
    cr_assert_str_neq(sds_bundle_version(a), sds_bundle_version(b));
    sds_bundle *a2 = sds_bundle_ref(a);
    sds_bundle_unref(a);
    cr_assert(strstr(sds_bundle_pem(a2), "X"), "still alive after one unref");
    sds_bundle_unref(a2);
    sds_bundle_unref(b);
    sds_bundle_unref(NULL);
    /* A key in the input is refused: nothing private goes into SDS. */
    cr_assert_neq(sds_bundle_build("-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n",
                                   NULL, TSD_TD, &a, &err),
                  MESH_OK);
}

Test(sds_secrets, a_new_crl_is_a_new_rootca_version)
{
    static const char cert[] = "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n";
    static const char crl1[] = "-----BEGIN X509 CRL-----\nC1\n-----END X509 CRL-----\n";
    static const char crl2[] = "-----BEGIN X509 CRL-----\nC2\n-----END X509 CRL-----\n";
    sds_bundle *none = NULL, *a = NULL, *b = NULL, *a2 = NULL;
    mesh_err err = {0};
    cr_assert_eq(sds_bundle_build(cert, NULL, TSD_TD, &none, &err), MESH_OK);
    cr_assert_eq(sds_bundle_build(cert, crl1, TSD_TD, &a, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(sds_bundle_build(cert, crl2, TSD_TD, &b, &err), MESH_OK);
    cr_assert_eq(sds_bundle_build(cert, crl1, TSD_TD, &a2, &err), MESH_OK);
    cr_assert_str_neq(sds_bundle_version(none), sds_bundle_version(a));
    cr_assert_str_neq(sds_bundle_version(a), sds_bundle_version(b),
                      "same roots, new CRL: every sidecar gets ROOTCA again");
    cr_assert_str_eq(sds_bundle_version(a), sds_bundle_version(a2), "content-addressed");
    cr_assert_str_eq(sds_bundle_crl_pem(a), crl1);
    sds_secret_set *set = calloc(1, sizeof *set);
    cr_assert_eq(sds_secret_set_build(TSD_WEB, NULL, a, set, &err), MESH_OK);
    for (size_t i = 0; i < set->set.n; i++) {
        Envoy__Extensions__TransportSockets__Tls__V3__Secret *s = decode(&set->set.items[i]);
        cr_assert_not_null(s->validation_context->crl, "%s carries the CRL", s->name);
        cr_assert_eq(s->validation_context->crl->inline_bytes.len, strlen(crl1));
        envoy__extensions__transport_sockets__tls__v3__secret__free_unpacked(s, NULL);
    }
    sds_secret_set_free(set);
    free(set);
    sds_bundle_unref(b);
    cr_assert_eq(sds_bundle_build(cert, "not a crl", TSD_TD, &b, &err), MESH_EINVAL);
    cr_assert_null(b);
    sds_bundle_unref(none);
    sds_bundle_unref(a);
    sds_bundle_unref(a2);
}
