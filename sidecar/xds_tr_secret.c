/* sidecar/xds_tr_secret.c — SDS Secret decoding and hand-over to the cert pool
 * (see xds_tr_secret.h). */
#include "sidecar/xds_tr_secret.h"

#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "sidecar/tls_crl.h"
#include "sidecar/tls_util.h"
#include "sidecar/xds_translate_internal.h"

#define MAX_PEM (512u * 1024)

static int inline_pem(const Envoy__Config__Core__V3__DataSource *ds, const char *what,
                      char **out, mesh_err *err)
{
    *out = NULL;
    const char *p = NULL;
    size_t len = 0;
    if (!ds)
        return mesh_err_set(err, MESH_EINVAL, "%s: missing", what);
    switch (ds->specifier_case) {
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES:
        p = (const char *)ds->inline_bytes.data;
        len = ds->inline_bytes.len;
        break;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING:
        p = ds->inline_string;
        len = strlen(ds->inline_string);
        break;
    default:
        /* A filename or environment variable would read something meshd
         * cannot see; only inline data makes sense over the wire. */
        return mesh_err_set(err, MESH_EINVAL, "%s: only inline data is supported", what);
    }
    if (len == 0)
        return mesh_err_set(err, MESH_EINVAL, "%s: empty", what);
    if (len > MAX_PEM)
        return mesh_err_set(err, MESH_EINVAL, "%s: larger than %u bytes", what, MAX_PEM);
    if (memchr(p, '\0', len))
        return mesh_err_set(err, MESH_EINVAL, "%s: contains a NUL byte (not PEM)", what);
    char *s = malloc(len + 1);
    if (!s)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    memcpy(s, p, len);
    s[len] = '\0';
    *out = s;
    return MESH_OK;
}

void xdsc_secret_free(xdsc_secret *s)
{
    free(s->name);
    free(s->chain_pem);
    free(s->bundle_pem);
    free(s->crl_pem);
    memset(s, 0, sizeof *s);
}

static bool ds_set(const Envoy__Config__Core__V3__DataSource *ds)
{
    return ds && ds->specifier_case != ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER__NOT_SET;
}

int xdsc_secret_parse(const uint8_t *data, size_t len, xdsc_secret *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    Envoy__Extensions__TransportSockets__Tls__V3__Secret *s =
        envoy__extensions__transport_sockets__tls__v3__secret__unpack(NULL, len, data);
    if (!s)
        return mesh_err_set(err, MESH_EINVAL, "Secret does not decode");
    char what[320], q[160];
    xdsc_tr_what(what, sizeof what, "secret '%s'", xdsc_tr_quote(s->name, q, sizeof q));
    int rc = MESH_OK;
    if (!s->name[0]) {
        rc = mesh_err_set(err, MESH_EINVAL, "Secret without a name");
    } else if (strcmp(s->name, XDSC_SECRET_DEFAULT) == 0) {
        const Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *tc =
            s->type_case == ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE
                ? s->tls_certificate
                : NULL;
        char w[360];
        xdsc_tr_what(w, sizeof w, "%s: tls_certificate.certificate_chain", what);
        if (!tc)
            rc = mesh_err_set(err, MESH_EINVAL, "%s: expected a tls_certificate", what);
        else if (ds_set(tc->private_key))
            rc = mesh_err_set(err, MESH_EINVAL,
                              "%s: carries a private key; the sidecar only uses the key it "
                              "generated itself", what);
        else
            rc = inline_pem(tc->certificate_chain, w, &out->chain_pem, err);
    } else if (strcmp(s->name, XDSC_SECRET_ROOTCA) == 0) {
        const Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *vc =
            s->type_case == ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT
                ? s->validation_context
                : NULL;
        char w[360];
        xdsc_tr_what(w, sizeof w, "%s: validation_context.trusted_ca", what);
        if (!vc)
            rc = mesh_err_set(err, MESH_EINVAL, "%s: expected a validation_context", what);
        else if (vc->allow_expired_certificate ||
                 vc->trust_chain_verification !=
                     ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__TRUST_CHAIN_VERIFICATION__VERIFY_TRUST_CHAIN)
            rc = mesh_err_set(err, MESH_EINVAL,
                              "%s: relaxed verification (expired or untrusted peers) is not "
                              "supported", what);
        else
            rc = inline_pem(vc->trusted_ca, w, &out->bundle_pem, err);
        if (rc == MESH_OK && ds_set(vc->crl)) {
            xdsc_tr_what(w, sizeof w, "%s: validation_context.crl", what);
            rc = inline_pem(vc->crl, w, &out->crl_pem, err);
        }
    } else {
        rc = mesh_err_set(err, MESH_EINVAL, "%s: not a secret the sidecar uses ('%s' or '%s')",
                          what, XDSC_SECRET_DEFAULT, XDSC_SECRET_ROOTCA);
    }
    if (rc == MESH_OK && !(out->name = strdup(s->name)))
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
    envoy__extensions__transport_sockets__tls__v3__secret__free_unpacked(s, NULL);
    if (rc != MESH_OK)
        xdsc_secret_free(out);
    return rc;
}

/* Whether the CRLs the pool holds (as PEM) are those of the SDS resource:
 * compared after parsing, since the PEM line layout may differ. */
static bool crls_equal(const char *have_pem, const char *sds_pem)
{
    STACK_OF(X509_CRL) *a = NULL, *b = NULL;
    bool same = tls_parse_crls(have_pem, &a, NULL) == MESH_OK &&
                tls_parse_crls(sds_pem, &b, NULL) == MESH_OK &&
                sk_X509_CRL_num(a) == sk_X509_CRL_num(b);
    for (int i = 0; same && i < sk_X509_CRL_num(a); i++)
        same = X509_CRL_match(sk_X509_CRL_value(a, i), sk_X509_CRL_value(b, i)) == 0;
    sk_X509_CRL_pop_free(a, X509_CRL_free);
    sk_X509_CRL_pop_free(b, X509_CRL_free);
    return same;
}

/* notAfter of the first certificate in pem; 0 if it does not parse. */
static int64_t leaf_not_after(const char *pem)
{
    STACK_OF(X509) *certs = NULL;
    if (tls_parse_certs(pem, "SVID chain", &certs, NULL) != MESH_OK)
        return 0;
    int64_t na = tls_cert_not_after(sk_X509_value(certs, 0));
    sk_X509_pop_free(certs, X509_free);
    return na;
}

int xdsc_secrets_apply(cert_pool *pool, const xdsc_resource *res, size_t n, int64_t now,
                       bool *changed, mesh_err *err)
{
    *changed = false;
    xdsc_secret def = {0}, root = {0};
    int rc = MESH_OK;
    for (size_t i = 0; i < n && rc == MESH_OK; i++) {
        xdsc_secret s;
        rc = xdsc_secret_parse(res[i].data, res[i].len, &s, err);
        if (rc != MESH_OK)
            break;
        xdsc_secret *slot = s.chain_pem ? &def : &root;
        if (slot->name) {
            rc = mesh_err_set(err, MESH_EINVAL, "secret '%s' appears twice", s.name);
            xdsc_secret_free(&s);
            break;
        }
        *slot = s;
    }
    if (rc == MESH_OK && root.bundle_pem) {
        /* Bundle and CRLs are one resource: both are replaced together, and
         * a CRL that does not verify NACKs the whole ROOTCA (old one kept). */
        char *have = NULL, *have_crl = NULL;
        bool same = cert_pool_export_bundle(pool, &have, NULL) == MESH_OK && have &&
                    strcmp(have, root.bundle_pem) == 0 &&
                    cert_pool_export_crls(pool, &have_crl, NULL) == MESH_OK && have_crl &&
                    crls_equal(have_crl, root.crl_pem);
        free(have);
        free(have_crl);
        if (!same) {
            rc = cert_pool_set_trust(pool, root.bundle_pem, root.crl_pem, now, err);
            if (rc == MESH_OK) {
                *changed = true;
                log_info("xds", "trust bundle%s updated from SDS '%s'",
                         root.crl_pem ? " and CRLs" : "", XDSC_SECRET_ROOTCA);
            } else {
                mesh_err_prefix(err, "secret '%s'", XDSC_SECRET_ROOTCA);
            }
        }
    }
    if (rc == MESH_OK && def.chain_pem) {
        cert_pool_info info;
        cert_pool_get_info(pool, now, &info);
        int64_t na = leaf_not_after(def.chain_pem);
        int64_t newest = info.current.not_after;
        if (info.next.present && info.next.not_after > newest)
            newest = info.next.not_after;
        if (na != 0 && (info.current.present || info.next.present) && na <= newest) {
            /* Not newer than what we use: a re-send, or a cert we already got
             * through our own CSR. Never rotate backwards. */
            log_debug("xds", "SDS '%s' is not newer than the SVID in use; keeping ours",
                      XDSC_SECRET_DEFAULT);
        } else {
            rc = cert_pool_offer_svid(pool, def.chain_pem, NULL, now, err);
            if (rc == MESH_OK) {
                *changed = true;
                log_info("xds", "new SVID from SDS '%s' offered to the cert pool",
                         XDSC_SECRET_DEFAULT);
            } else {
                mesh_err_prefix(err, "secret '%s'", XDSC_SECRET_DEFAULT);
            }
        }
    }
    xdsc_secret_free(&def);
    xdsc_secret_free(&root);
    return rc;
}
