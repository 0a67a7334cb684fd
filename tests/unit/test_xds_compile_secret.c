/* tests/unit/test_xds_compile_secret.c — SDS Secret resources (sds/compiler/xds_compile_secret.h):
 * "default" carries the chain and never a key, "ROOTCA" the bundle; input that
 * is empty, not PEM certificates, or holds a private key is refused. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "sds/compiler/xds_compile_secret.h"

#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"

typedef Envoy__Extensions__TransportSockets__Tls__V3__Secret Secret;

#define CERT1 "-----BEGIN CERTIFICATE-----\nMIIBfake1\n-----END CERTIFICATE-----\n"
#define CERT2 "-----BEGIN CERTIFICATE-----\nMIIBfake2\n-----END CERTIFICATE-----\n"
#define KEY   "-----BEGIN PRIVATE KEY-----\nMIGHfake\n-----END PRIVATE KEY-----\n"
#define ECKEY "-----BEGIN EC PRIVATE KEY-----\nMHcfake\n-----END EC PRIVATE KEY-----\n"

static Secret *decode(uint8_t *buf, size_t len)
{
    Secret *s = envoy__extensions__transport_sockets__tls__v3__secret__unpack(NULL, len, buf);
    cr_assert_not_null(s);
    free(buf);
    return s;
}

Test(xds_compile_secret, default_has_chain_and_no_key)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = { 0 };
    const char *chain = CERT1 CERT2;
    cr_assert_eq(xds_secret_tls_certificate(XDS_SECRET_DEFAULT, chain, strlen(chain), &buf, &len,
                                            &err), MESH_OK, "%s", err.msg);
    Secret *s = decode(buf, len);
    cr_assert_str_eq(s->name, "default");
    cr_assert_eq(s->type_case, ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE);
    const Envoy__Config__Core__V3__DataSource *ds = s->tls_certificate->certificate_chain;
    cr_assert_eq(ds->specifier_case, ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES);
    cr_assert_eq(ds->inline_bytes.len, strlen(chain));
    cr_assert(memcmp(ds->inline_bytes.data, chain, strlen(chain)) == 0);
    cr_assert_null(s->tls_certificate->private_key, "meshd never has the sidecar's key");
    envoy__extensions__transport_sockets__tls__v3__secret__free_unpacked(s, NULL);
}

Test(xds_compile_secret, rootca_has_bundle)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = { 0 };
    const char *bundle = CERT1 CERT2;   /* old + new root during a rotation */
    cr_assert_eq(xds_secret_validation_context(XDS_SECRET_ROOTCA, bundle, strlen(bundle), NULL,
                                               0, &buf, &len, &err), MESH_OK, "%s", err.msg);
    Secret *s = decode(buf, len);
    cr_assert_str_eq(s->name, "ROOTCA");
    cr_assert_eq(s->type_case, ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT);
    const Envoy__Config__Core__V3__DataSource *ca = s->validation_context->trusted_ca;
    cr_assert_eq(ca->inline_bytes.len, strlen(bundle));
    cr_assert(memcmp(ca->inline_bytes.data, bundle, strlen(bundle)) == 0);
    cr_assert_eq(s->validation_context->n_match_typed_subject_alt_names, 0);
    cr_assert_null(s->validation_context->crl, "no CRL given, no crl field");
    envoy__extensions__transport_sockets__tls__v3__secret__free_unpacked(s, NULL);
}

#define CRL1 "-----BEGIN X509 CRL-----\nMIIBfakecrl1\n-----END X509 CRL-----\n"
#define CRL2 "-----BEGIN X509 CRL-----\nMIIBfakecrl2\n-----END X509 CRL-----\n"

Test(xds_compile_secret, rootca_carries_the_crls)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = { 0 };
    const char *bundle = CERT1 CERT2, *crls = CRL1 CRL2;   /* one CRL per CA */
    cr_assert_eq(xds_secret_validation_context(XDS_SECRET_ROOTCA, bundle, strlen(bundle), crls,
                                               strlen(crls), &buf, &len, &err), MESH_OK, "%s",
                 err.msg);
    Secret *s = decode(buf, len);
    const Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *vc =
        s->validation_context;
    cr_assert_not_null(vc->crl);
    cr_assert_eq(vc->crl->specifier_case, ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES);
    cr_assert_eq(vc->crl->inline_bytes.len, strlen(crls));
    cr_assert(memcmp(vc->crl->inline_bytes.data, crls, strlen(crls)) == 0);
    cr_assert(vc->only_verify_leaf_cert_crl, "CRLs come from the leaves' issuers only");
    cr_assert_eq(vc->trusted_ca->inline_bytes.len, strlen(bundle));
    envoy__extensions__transport_sockets__tls__v3__secret__free_unpacked(s, NULL);

    static const struct { const char *crl, *why; } bad[] = {
        { "hello", "no PEM CRL" },
        { CRL1 KEY, "PRIVATE KEY" },
        { CRL1 CERT1, "belong in trusted_ca" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        len = 7;
        cr_assert_eq(xds_secret_validation_context(XDS_SECRET_ROOTCA, bundle, strlen(bundle),
                                                   bad[i].crl, strlen(bad[i].crl), &buf, &len,
                                                   &err), MESH_EINVAL, "case %zu", i);
        cr_assert(strstr(err.msg, bad[i].why), "case %zu: %s", i, err.msg);
        cr_assert_eq(len, 7);
    }
}

Test(xds_compile_secret, spire_style_names)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = { 0 };
    cr_assert_eq(xds_secret_validation_context("spiffe://mesh.test", CERT1, strlen(CERT1), NULL,
                                               0, &buf, &len, &err), MESH_OK);
    Secret *s = decode(buf, len);
    cr_assert_str_eq(s->name, "spiffe://mesh.test");
    envoy__extensions__transport_sockets__tls__v3__secret__free_unpacked(s, NULL);
}

Test(xds_compile_secret, refuses_keys_and_garbage)
{
    static const struct { const char *name, *pem, *why; } cases[] = {
        { "default", CERT1 KEY, "PRIVATE KEY" },
        { "default", KEY CERT1, "PRIVATE KEY" },
        { "default", CERT1 ECKEY, "PRIVATE KEY" },
        { "default", "", "empty" },
        { "default", "hello", "no PEM certificate" },
        { "default", "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n", "no PEM certificate" },
        { "", CERT1, "empty secret name" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int kind = 0; kind < 2; kind++) {
            uint8_t *buf = (uint8_t *)"untouched";
            size_t len = 7;
            mesh_err err = { 0 };
            int rc = kind == 0
                ? xds_secret_tls_certificate(cases[i].name, cases[i].pem, strlen(cases[i].pem), &buf, &len, &err)
                : xds_secret_validation_context(cases[i].name, cases[i].pem, strlen(cases[i].pem), NULL, 0, &buf, &len, &err);
            cr_assert_eq(rc, MESH_EINVAL, "case %zu kind %d", i, kind);
            cr_assert(strstr(err.msg, cases[i].why) != NULL, "case %zu: %s", i, err.msg);
            cr_assert_eq(len, 7, "outputs untouched on error");
        }
    }
    uint8_t *buf;
    size_t len;
    mesh_err err = { 0 };
    cr_assert_eq(xds_secret_tls_certificate(NULL, CERT1, strlen(CERT1), &buf, &len, &err), MESH_EINVAL);
    cr_assert_eq(xds_secret_tls_certificate("default", NULL, 5, &buf, &len, &err), MESH_EINVAL);
    /* The key check looks at the whole buffer, not just up to a NUL. */
    const char tricky[] = CERT1 "\0" KEY;
    cr_assert_eq(xds_secret_tls_certificate("default", tricky, sizeof tricky - 1, &buf, &len, &err),
                 MESH_EINVAL);
}
