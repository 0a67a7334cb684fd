/* tests/unit/test_sidecar_xds_secrets.c — SDS "default"/"ROOTCA" from meshd into a real
 * cert pool: a fresh SVID is installed, a stale one never rotates us backwards, a chain
 * for a key we do not hold and a broken bundle are NACKed with the pool untouched. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "sidecar/xds_engine.h"
#include "sidecar/xds_tr_secret.h"
#include "test_sidecar_xds_util.h"

static uint8_t *secret_bytes(const char *name, const char *pem, int tls, size_t *len)
{
    Envoy__Extensions__TransportSockets__Tls__V3__Secret s =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT;
    Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate tc =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_CERTIFICATE__INIT;
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext vc =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__INIT;
    Envoy__Config__Core__V3__DataSource ds = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT;
    ds.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
    ds.inline_bytes.data = (uint8_t *)pem;
    ds.inline_bytes.len = strlen(pem);
    s.name = (char *)name;
    if (tls) {
        tc.certificate_chain = &ds;
        s.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE;
        s.tls_certificate = &tc;
    } else {
        vc.trusted_ca = &ds;
        s.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT;
        s.validation_context = &vc;
    }
    return tx_pack(&s.base, len);
}

/* An SDS response with "default" = chain (if any) and "ROOTCA" = bundle (if any). */
static Envoy__Service__Discovery__V3__DiscoveryResponse *sds(const char *version, const char *nonce,
                                                             const char *chain, const char *bundle)
{
    const uint8_t *data[2];
    size_t len[2];
    uint8_t *bufs[2] = {NULL, NULL};
    size_t n = 0;
    if (bundle) {
        bufs[n] = secret_bytes("ROOTCA", bundle, 0, &len[n]);
        data[n] = bufs[n];
        n++;
    }
    if (chain) {
        bufs[n] = secret_bytes("default", chain, 1, &len[n]);
        data[n] = bufs[n];
        n++;
    }
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = tx_response(XDSC_SDS, version, nonce, data, len, n);
    free(bufs[0]);
    free(bufs[1]);
    return r;
}

typedef struct fixture {
    tx_ca ca;
    cert_pool *pool;
    xdsc_engine eng;
    int64_t now;
} fixture;

static void setup(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->now = (int64_t)time(NULL);
    tx_ca_new(&f->ca, "test root");
    mesh_err err = {0};
    cr_assert_eq(cert_pool_new(&f->pool, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(cert_pool_set_bundle(f->pool, f->ca.pem, f->now, &err), MESH_OK, "%s", err.msg);
    /* First SVID as a CSR would bring it. */
    char *csr = NULL;
    cr_assert_eq(cert_pool_make_csr(f->pool, TX_WEB_ID, false, &csr, &err), MESH_OK, "%s", err.msg);
    char *leaf = tx_ca_sign(&f->ca, csr, f->now - 10, f->now + 3600);
    cr_assert_eq(cert_pool_offer_svid(f->pool, leaf, NULL, f->now, &err), MESH_OK, "%s", err.msg);
    free(leaf);
    free(csr);
    cr_assert_eq(xdsc_engine_init(&f->eng, f->pool, NULL, NULL, NULL, &err), MESH_OK);
    xdsc_sotw_stream_start(&f->eng.sotw);
}

static void teardown(fixture *f)
{
    xdsc_engine_free(&f->eng);
    cert_pool_free(f->pool);
    tx_ca_free(&f->ca);
}

static bool respond(fixture *f, Envoy__Service__Discovery__V3__DiscoveryResponse *r)
{
    bool accepted = false;
    mesh_err err = {0};
    cr_assert_eq(xdsc_engine_on_response(&f->eng, r, f->now, 0, &accepted, &err), MESH_OK, "%s",
                 err.msg);
    tx_response_free(r);
    return accepted;
}

static void current(fixture *f, cert_pool_info *info)
{
    cert_pool_get_info(f->pool, f->now, info);
    cr_assert(info->current.present);
}

Test(sidecar_xds_secrets, fresh_default_for_our_key_is_installed)
{
    fixture f;
    setup(&f);
    cert_pool_info before, after;
    current(&f, &before);
    /* meshd re-issues for the same key with a later notAfter (its 50% push). */
    char *csr = NULL;
    cr_assert_eq(cert_pool_make_csr(f.pool, TX_WEB_ID, false, &csr, NULL), MESH_OK);
    char *leaf = tx_ca_sign(&f.ca, csr, f.now - 10, f.now + 7200);
    cr_assert(respond(&f, sds("s1", "n1", leaf, f.ca.pem)));
    current(&f, &after);
    cr_assert_str_neq(after.current.serial_hex, before.current.serial_hex);
    cr_assert_eq(after.current.not_after, f.now + 7200);
    cr_assert_eq(f.eng.sotw.t[XDSC_SDS].n_accepted, 1);
    free(leaf);
    free(csr);
    teardown(&f);
}

Test(sidecar_xds_secrets, stale_default_never_rotates_backwards)
{
    fixture f;
    setup(&f);
    cert_pool_info before, after;
    current(&f, &before);
    char *csr = NULL;
    cr_assert_eq(cert_pool_make_csr(f.pool, TX_WEB_ID, false, &csr, NULL), MESH_OK);
    char *older = tx_ca_sign(&f.ca, csr, f.now - 100, f.now + 1800);
    cr_assert(respond(&f, sds("s1", "n1", older, f.ca.pem)), "accepted (ACK), just not used");
    current(&f, &after);
    cr_assert_str_eq(after.current.serial_hex, before.current.serial_hex);
    free(older);
    free(csr);
    teardown(&f);
}

Test(sidecar_xds_secrets, default_for_a_foreign_key_is_nacked)
{
    fixture f;
    setup(&f);
    cert_pool_info before, after;
    current(&f, &before);
    /* A chain for a key this sidecar never had. */
    cert_pool *other = NULL;
    cr_assert_eq(cert_pool_new(&other, NULL), MESH_OK);
    char *csr = NULL;
    cr_assert_eq(cert_pool_make_csr(other, TX_WEB_ID, true, &csr, NULL), MESH_OK);
    char *leaf = tx_ca_sign(&f.ca, csr, f.now - 10, f.now + 7200);
    cr_assert(!respond(&f, sds("s1", "n1", leaf, NULL)));
    cr_assert(strstr(f.eng.sotw.t[XDSC_SDS].nack_detail, "secret 'default'") != NULL, "%s",
              f.eng.sotw.t[XDSC_SDS].nack_detail);
    cr_assert(strstr(f.eng.sotw.t[XDSC_SDS].nack_detail, "matches no key") != NULL, "%s",
              f.eng.sotw.t[XDSC_SDS].nack_detail);
    current(&f, &after);
    cr_assert_str_eq(after.current.serial_hex, before.current.serial_hex);
    free(leaf);
    free(csr);
    cert_pool_free(other);
    teardown(&f);
}

Test(sidecar_xds_secrets, broken_bundle_is_nacked_and_the_old_one_kept)
{
    fixture f;
    setup(&f);
    cert_pool_info before, after;
    cert_pool_get_info(f.pool, f.now, &before);
    cr_assert(!respond(&f, sds("s1", "n1", NULL, "-----BEGIN CERTIFICATE-----\nnope\n")));
    cr_assert(strstr(f.eng.sotw.t[XDSC_SDS].nack_detail, "ROOTCA") != NULL, "%s",
              f.eng.sotw.t[XDSC_SDS].nack_detail);
    cert_pool_get_info(f.pool, f.now, &after);
    cr_assert_eq(after.n_roots, 1);
    cr_assert_str_eq(after.roots[0].sha256, before.roots[0].sha256);

    /* A CA rotation: the new bundle holds old + new roots. */
    tx_ca ca2;
    tx_ca_new(&ca2, "second root");
    size_t n = strlen(f.ca.pem) + strlen(ca2.pem) + 1;
    char *both = malloc(n);
    snprintf(both, n, "%s%s", f.ca.pem, ca2.pem);
    cr_assert(respond(&f, sds("s2", "n2", NULL, both)));
    cert_pool_get_info(f.pool, f.now, &after);
    cr_assert_eq(after.n_roots, 2);
    free(both);
    tx_ca_free(&ca2);
    teardown(&f);
}
