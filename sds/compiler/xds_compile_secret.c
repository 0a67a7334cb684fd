/* sds/compiler/xds_compile_secret.c — builds the serialized SDS Secret resources (xds_compile_secret.h).
 *
 * The PEM goes in as inline_bytes, unchanged. It is checked only for shape here
 * (certificates, nothing private); that the chain is ours and valid is the CA's
 * business before it is ever stored. */
#include "sds/compiler/xds_compile_secret.h"

#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"

#define PEM_CERT_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_CRL_BEGIN  "-----BEGIN X509 CRL-----"

/* memmem, bounded and without relying on the PEM being NUL-terminated. */
static int contains(const char *buf, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    return n <= len && memmem(buf, len, needle, n) != NULL;
}

static int check_pem(const char *what, const char *name, const char *pem, size_t len,
                     mesh_err *err)
{
    if (name == NULL || name[0] == '\0')
        return mesh_err_set(err, MESH_EINVAL, "SDS secret: empty secret name");
    if (pem == NULL || len == 0)
        return mesh_err_set(err, MESH_EINVAL, "SDS secret %s: %s is empty", name, what);
    if (contains(pem, len, "PRIVATE KEY"))
        return mesh_err_set(err, MESH_EINVAL,
                            "SDS secret %s: %s contains a PRIVATE KEY block; meshd never serves "
                            "private keys (sidecars keep their own)", name, what);
    if (!contains(pem, len, PEM_CERT_BEGIN))
        return mesh_err_set(err, MESH_EINVAL,
                            "SDS secret %s: %s holds no PEM certificate (\"" PEM_CERT_BEGIN "\")",
                            name, what);
    return MESH_OK;
}

static int pack_secret(const Envoy__Extensions__TransportSockets__Tls__V3__Secret *s,
                       uint8_t **out, size_t *out_len, mesh_err *err)
{
    size_t len = envoy__extensions__transport_sockets__tls__v3__secret__get_packed_size(s);
    uint8_t *buf = malloc(len);
    if (buf == NULL)
        return mesh_err_set(err, MESH_ENOMEM, "SDS secret %s: out of memory", s->name);
    envoy__extensions__transport_sockets__tls__v3__secret__pack(s, buf);
    *out = buf;
    *out_len = len;
    return MESH_OK;
}

static void inline_bytes(Envoy__Config__Core__V3__DataSource *ds, const char *pem, size_t len)
{
    envoy__config__core__v3__data_source__init(ds);
    ds->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
    ds->inline_bytes.data = (uint8_t *)pem;
    ds->inline_bytes.len = len;
}

int xds_secret_tls_certificate(const char *name, const char *chain_pem, size_t len,
                               uint8_t **out, size_t *out_len, mesh_err *err)
{
    int rc = check_pem("certificate chain", name, chain_pem, len, err);
    if (rc != MESH_OK)
        return rc;
    Envoy__Config__Core__V3__DataSource chain;
    inline_bytes(&chain, chain_pem, len);
    Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate cert;
    envoy__extensions__transport_sockets__tls__v3__tls_certificate__init(&cert);
    cert.certificate_chain = &chain;
    Envoy__Extensions__TransportSockets__Tls__V3__Secret s;
    envoy__extensions__transport_sockets__tls__v3__secret__init(&s);
    s.name = (char *)name;
    s.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE;
    s.tls_certificate = &cert;
    return pack_secret(&s, out, out_len, err);
}

/* Only CRL blocks, and at least one. */
static int check_crl_pem(const char *name, const char *pem, size_t len, mesh_err *err)
{
    if (contains(pem, len, "PRIVATE KEY"))
        return mesh_err_set(err, MESH_EINVAL, "SDS secret %s: the CRL contains a PRIVATE KEY "
                            "block", name);
    if (!contains(pem, len, PEM_CRL_BEGIN))
        return mesh_err_set(err, MESH_EINVAL,
                            "SDS secret %s: crl holds no PEM CRL (\"" PEM_CRL_BEGIN "\")", name);
    if (contains(pem, len, PEM_CERT_BEGIN))
        return mesh_err_set(err, MESH_EINVAL, "SDS secret %s: crl holds a certificate; "
                            "certificates belong in trusted_ca", name);
    return MESH_OK;
}

int xds_secret_validation_context(const char *name, const char *bundle_pem, size_t len,
                                  const char *crl_pem, size_t crl_len, uint8_t **out,
                                  size_t *out_len, mesh_err *err)
{
    int rc = check_pem("trust bundle", name, bundle_pem, len, err);
    if (rc == MESH_OK && crl_len > 0)
        rc = check_crl_pem(name, crl_pem, crl_len, err);
    if (rc != MESH_OK)
        return rc;
    Envoy__Config__Core__V3__DataSource ca, crl;
    inline_bytes(&ca, bundle_pem, len);
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext vc;
    envoy__extensions__transport_sockets__tls__v3__certificate_validation_context__init(&vc);
    vc.trusted_ca = &ca;
    if (crl_len > 0) {
        inline_bytes(&crl, crl_pem, crl_len);
        vc.crl = &crl;
        vc.only_verify_leaf_cert_crl = 1;
    }
    Envoy__Extensions__TransportSockets__Tls__V3__Secret s;
    envoy__extensions__transport_sockets__tls__v3__secret__init(&s);
    s.name = (char *)name;
    s.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT;
    s.validation_context = &vc;
    return pack_secret(&s, out, out_len, err);
}
