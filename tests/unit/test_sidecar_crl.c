/* tests/unit/test_sidecar_crl.c — revocation in the sidecar's cert pool
 * (sidecar/cert_pool_crl.c, tls_crl.c) and its SDS intake (xds_tr_secret.c):
 * real TLS 1.3 handshakes between two pools over an in-memory BIO pair show
 * that a CRL from ROOTCA refuses a revoked peer in both directions, that a
 * CRL past its nextUpdate is still enforced and a CA without a CRL is not
 * refused; a CRL that does not verify, an older one and garbage are NACKed
 * with the old CRLs kept; our own revoked SVID stops mTLS and readiness, and
 * a fresh one replaces it at once; CRLs survive a save/load of the pool. */
#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "sidecar/cert_pool.h"
#include "sidecar/tls_util.h"
#include "sidecar/xds_tr_secret.h"
#include "test_sidecar_util.h"

#define ID_A "spiffe://example.org/ns/default/sa/a"
#define ID_B "spiffe://example.org/ns/default/sa/b"

static int64_t now_s(void) { return (int64_t)time(NULL); }

typedef struct peer {
    cert_pool *pool;
    char *chain, *key;
} peer;

static void make_peer(peer *p, tsc_ca *ca, const char *id)
{
    mesh_err e;
    cr_assert_eq(cert_pool_new(&p->pool, &e), MESH_OK);
    char *bundle = tsc_ca_pem(ca);
    tsc_leaf(ca, id, now_s() - 10, now_s() + 3600, &p->chain, &p->key);
    cr_assert_eq(cert_pool_set_bundle(p->pool, bundle, now_s(), &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(cert_pool_offer_svid(p->pool, p->chain, p->key, now_s(), &e), MESH_OK, "%s",
                 e.msg);
    free(bundle);
}

static void free_peer(peer *p)
{
    cert_pool_free(p->pool);
    free(p->chain);
    free(p->key);
}

/* A full TLS 1.3 handshake, client pool -> server pool, in memory. */
static bool handshake(cert_pool *client, cert_pool *server)
{
    SSL_CTX *cc = NULL, *sc = NULL;
    mesh_err e;
    cr_assert_eq(cert_pool_client_ctx(client, now_s(), &cc, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(cert_pool_server_ctx(server, now_s(), &sc, &e), MESH_OK, "%s", e.msg);
    SSL *c = SSL_new(cc), *s = SSL_new(sc);
    BIO *bc, *bs;
    cr_assert_eq(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    int rc = 0, rs = 0;
    for (int i = 0; i < 50 && (rc != 1 || rs != 1); i++) {
        if (rc != 1)
            rc = SSL_do_handshake(c);
        if (rs != 1)
            rs = SSL_do_handshake(s);
        if ((rc <= 0 && SSL_get_error(c, rc) != SSL_ERROR_WANT_READ) ||
            (rs <= 0 && SSL_get_error(s, rs) != SSL_ERROR_WANT_READ))
            break;
    }
    /* TLS 1.3: the client finishes before the server has seen its
     * certificate; one exchange of application data settles it. */
    bool ok = rc == 1 && rs == 1;
    if (ok) {
        char buf[4];
        ok = SSL_write(c, "ping", 4) == 4 && SSL_read(s, buf, 4) == 4;
    }
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cc);
    SSL_CTX_free(sc);
    return ok;
}

static int set_trust(cert_pool *p, tsc_ca *ca, const char *crl, mesh_err *e)
{
    char *bundle = tsc_ca_pem(ca);
    int rc = cert_pool_set_trust(p, bundle, crl, now_s(), e);
    free(bundle);
    return rc;
}

Test(sidecar_crl, revoked_peer_refused_both_ways)
{
    tsc_ca *ca = tsc_ca_new("mesh root");
    peer a, b;
    make_peer(&a, ca, ID_A);
    make_peer(&b, ca, ID_B);
    cr_assert(handshake(a.pool, b.pool), "control: a -> b works");
    const char *revoked[] = {a.chain};
    char *crl = tsc_crl(ca, revoked, 1, 1, 2, now_s() - 5, now_s() + 3600);
    mesh_err e;
    cr_assert_eq(set_trust(b.pool, ca, crl, &e), MESH_OK, "%s", e.msg);
    cr_assert_not(handshake(a.pool, b.pool), "b (server) refuses revoked a");
    /* b as the client refuses a as the server, too. */
    cr_assert_not(handshake(b.pool, a.pool), "b (client) refuses revoked a");
    cert_pool_info info;
    cert_pool_get_info(b.pool, now_s(), &info);
    cr_assert_geq(info.refused_revoked, 2, "both refusals counted");
    cr_assert_eq(info.n_crls, 1);
    cr_assert_eq(info.crls[0].number, 2);
    cr_assert_eq(info.crls[0].n_revoked, 1);
    cr_assert(handshake(b.pool, b.pool), "an unrevoked peer still gets through");
    /* chain lookup as the live-connection sweep does it */
    STACK_OF(X509) *chain = NULL;
    cr_assert_eq(tls_parse_certs(a.chain, "t", &chain, &e), MESH_OK);
    sk_X509_push(chain, X509_dup(ca->cert));
    char why[400];
    cr_assert(cert_pool_chain_revoked(b.pool, chain, why, sizeof why));
    cr_assert(strstr(why, ID_A) && strstr(why, "keyCompromise"), "%s", why);
    sk_X509_pop_free(chain, X509_free);
    free(crl);
    free_peer(&a);
    free_peer(&b);
    tsc_ca_free(ca);
}

Test(sidecar_crl, stale_crl_is_enforced_and_missing_crl_is_not_fatal)
{
    tsc_ca *ca = tsc_ca_new("mesh root"), *other = tsc_ca_new("other root");
    peer a, b;
    make_peer(&a, ca, ID_A);
    make_peer(&b, ca, ID_B);
    /* nextUpdate long gone (meshd down for days): still refuses a. */
    const char *revoked[] = {a.chain};
    char *stale = tsc_crl(ca, revoked, 1, 1, 3, now_s() - 7200, now_s() - 3600);
    mesh_err e;
    cr_assert_eq(set_trust(b.pool, ca, stale, &e), MESH_OK, "%s", e.msg);
    cr_assert_not(handshake(a.pool, b.pool), "a CRL past nextUpdate still revokes");
    /* A CRL only for another CA: our CA has none, nothing of it is refused. */
    char *foreign = tsc_crl(other, revoked, 1, 1, 1, now_s() - 5, now_s() + 3600);
    char *bundle = tsc_ca_pem(ca), *obundle = tsc_ca_pem(other);
    char both[8192];
    snprintf(both, sizeof both, "%s%s", bundle, obundle);
    peer c;
    make_peer(&c, ca, ID_B);
    cr_assert_eq(cert_pool_set_trust(c.pool, both, foreign, now_s(), &e), MESH_OK, "%s", e.msg);
    cr_assert(handshake(a.pool, c.pool), "no CRL for our CA: not a reason to refuse");
    free(bundle);
    free(obundle);
    free(foreign);
    free(stale);
    free_peer(&a);
    free_peer(&b);
    free_peer(&c);
    tsc_ca_free(ca);
    tsc_ca_free(other);
}

Test(sidecar_crl, bad_crls_are_refused_and_the_old_ones_kept)
{
    tsc_ca *ca = tsc_ca_new("mesh root");
    tsc_ca *impostor = tsc_ca_new("mesh root");   /* same name, another key */
    peer a, b;
    make_peer(&a, ca, ID_A);
    make_peer(&b, ca, ID_B);
    const char *revoked[] = {a.chain};
    char *good = tsc_crl(ca, revoked, 1, 1, 5, now_s() - 5, now_s() + 3600);
    mesh_err e;
    cr_assert_eq(set_trust(b.pool, ca, good, &e), MESH_OK);
    uint64_t gen = cert_pool_crl_generation(b.pool);
    char *forged = tsc_crl(impostor, NULL, 0, 0, 9, now_s() - 5, now_s() + 3600);
    char *older = tsc_crl(ca, NULL, 0, 0, 4, now_s() - 5, now_s() + 3600);
    struct { const char *crl, *why; } bad[] = {
        {forged, "does not verify"},
        {older, "older than CRL #5"},
        {"-----BEGIN X509 CRL-----\nnot base64 at all\n-----END X509 CRL-----\n", "does not parse"},
        {"-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n", "no X509 CRL"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(set_trust(b.pool, ca, bad[i].crl, &e), MESH_EINVAL, "case %zu", i);
        cr_assert(strstr(e.msg, bad[i].why), "case %zu: %s", i, e.msg);
    }
    cr_assert_eq(cert_pool_crl_generation(b.pool), gen, "nothing changed");
    cr_assert_not(handshake(a.pool, b.pool), "the good CRL is still in force");
    /* The same CRL again is not a change; a newer one is. */
    cr_assert_eq(set_trust(b.pool, ca, good, &e), MESH_OK);
    cr_assert_eq(cert_pool_crl_generation(b.pool), gen);
    char *newer = tsc_crl(ca, NULL, 0, 0, 6, now_s() - 5, now_s() + 3600);
    cr_assert_eq(set_trust(b.pool, ca, newer, &e), MESH_OK, "%s", e.msg);
    cr_assert_neq(cert_pool_crl_generation(b.pool), gen);
    cr_assert(handshake(a.pool, b.pool), "an empty newer CRL lifts nothing it did not list");
    free(newer);
    free(older);
    free(forged);
    free(good);
    free_peer(&a);
    free_peer(&b);
    tsc_ca_free(ca);
    tsc_ca_free(impostor);
}

static int listener_calls;
static void on_change(void *arg)
{
    (void)arg;
    listener_calls++;
}

Test(sidecar_crl, own_revoked_svid_stops_mtls_until_a_new_one)
{
    tsc_ca *ca = tsc_ca_new("mesh root");
    peer a, b;
    make_peer(&a, ca, ID_A);
    make_peer(&b, ca, ID_B);
    listener_calls = 0;
    cert_pool_set_crl_listener(a.pool, on_change, &a);
    const char *revoked[] = {a.chain};
    char *crl = tsc_crl(ca, revoked, 1, 1, 2, now_s() - 5, now_s() + 3600);
    mesh_err e;
    char why[1536];
    cr_assert(cert_pool_readiness(a.pool, now_s(), why, sizeof why));
    cr_assert_eq(set_trust(a.pool, ca, crl, &e), MESH_OK);
    cr_assert_eq(listener_calls, 1, "told once");
    cr_assert_eq(set_trust(a.pool, ca, crl, &e), MESH_OK);
    cr_assert_eq(listener_calls, 1, "not for the same CRL again");
    cr_assert_not(cert_pool_ready(a.pool, now_s()));
    cr_assert_not(cert_pool_readiness(a.pool, now_s(), why, sizeof why));
    cr_assert(strstr(why, "revoked") && strstr(why, "keyCompromise"), "%s", why);
    SSL_CTX *ctx = NULL;
    cr_assert_eq(cert_pool_server_ctx(a.pool, now_s(), &ctx, &e), MESH_EPERM);
    cr_assert(strstr(e.msg, "revoked"), "%s", e.msg);
    cr_assert_eq(cert_pool_client_ctx(a.pool, now_s(), &ctx, &e), MESH_EPERM);
    cert_pool_info info;
    cert_pool_get_info(a.pool, now_s(), &info);
    cr_assert(info.current.revoked);
    /* The xDS client's verdict shows too. */
    cert_pool_set_problem(a.pool, "meshd refused a renewal; needs a new join token");
    cr_assert_not(cert_pool_readiness(a.pool, now_s(), why, sizeof why));
    cr_assert(strstr(why, "needs a new join token"), "%s", why);
    /* Re-keyed: a fresh SVID (new key) replaces the revoked one at once. */
    char *chain2, *key2;
    tsc_leaf(ca, ID_A, now_s() - 10, now_s() + 3600, &chain2, &key2);
    cr_assert_eq(cert_pool_offer_svid(a.pool, chain2, key2, now_s(), &e), MESH_OK, "%s", e.msg);
    cr_assert(cert_pool_readiness(a.pool, now_s(), why, sizeof why), "%s", why);
    cr_assert(handshake(a.pool, b.pool));
    /* A revoked SVID is never installed. */
    cr_assert_eq(cert_pool_offer_svid(a.pool, a.chain, a.key, now_s(), &e), MESH_EINVAL);
    cr_assert(strstr(e.msg, "revoked"), "%s", e.msg);
    cert_pool_set_crl_listener(a.pool, NULL, &b);   /* another arg: stays */
    cert_pool_set_crl_listener(a.pool, NULL, &a);
    free(chain2);
    free(key2);
    free(crl);
    free_peer(&a);
    free_peer(&b);
    tsc_ca_free(ca);
}

Test(sidecar_crl, crls_are_persisted_with_the_pool)
{
    tsc_ca *ca = tsc_ca_new("mesh root");
    peer a, b;
    make_peer(&a, ca, ID_A);
    make_peer(&b, ca, ID_B);
    const char *revoked[] = {a.chain};
    char *crl = tsc_crl(ca, revoked, 1, 1, 7, now_s() - 5, now_s() + 3600);
    mesh_err e;
    cr_assert_eq(set_trust(b.pool, ca, crl, &e), MESH_OK);
    char *dir = tsc_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/cert-pool", dir);
    cr_assert_eq(cert_pool_save(b.pool, path, &e), MESH_OK, "%s", e.msg);
    cert_pool *loaded = NULL;
    cr_assert_eq(cert_pool_load(path, &loaded, &e), MESH_OK, "%s", e.msg);
    cr_assert_not(handshake(a.pool, loaded), "enforced right after a restart, without meshd");
    cr_assert_gt(cert_pool_crl_generation(loaded), 0);
    char *pem = NULL;
    cr_assert_eq(cert_pool_export_crls(loaded, &pem, &e), MESH_OK);
    cr_assert(strstr(pem, "BEGIN X509 CRL"));
    /* Older than what the restarted sidecar holds: still refused. */
    char *older = tsc_crl(ca, NULL, 0, 0, 6, now_s() - 5, now_s() + 3600);
    cr_assert_eq(set_trust(loaded, ca, older, &e), MESH_EINVAL);
    /* A damaged [crl] section is corruption, like any other part. */
    char *body = NULL;
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    body = malloc((size_t)n + 1);
    cr_assert_eq(fread(body, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    body[n] = '\0';
    char *sect = strstr(body, "[crl]\n");
    cr_assert_not_null(sect);
    sect[8] ^= 1;
    f = fopen(path, "wb");
    fwrite(body, 1, (size_t)n, f);
    fclose(f);
    cert_pool *bad = NULL;
    cr_assert_eq(cert_pool_load(path, &bad, &e), MESH_ECORRUPT, "%s", e.msg);
    free(body);
    free(older);
    free(pem);
    cert_pool_free(loaded);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    free(dir);
    free(crl);
    free_peer(&a);
    free_peer(&b);
    tsc_ca_free(ca);
}

/* An SDS ROOTCA Secret as meshd sends it. */
static uint8_t *rootca(const char *bundle, const char *crl, size_t *len)
{
    Envoy__Config__Core__V3__DataSource ca = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT,
                                        cds = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT;
    ca.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
    ca.inline_bytes.data = (uint8_t *)bundle;
    ca.inline_bytes.len = strlen(bundle);
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext vc =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__INIT;
    vc.trusted_ca = &ca;
    if (crl) {
        cds.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
        cds.inline_bytes.data = (uint8_t *)crl;
        cds.inline_bytes.len = strlen(crl);
        vc.crl = &cds;
        vc.only_verify_leaf_cert_crl = 1;
    }
    Envoy__Extensions__TransportSockets__Tls__V3__Secret s =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT;
    s.name = "ROOTCA";
    s.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT;
    s.validation_context = &vc;
    *len = envoy__extensions__transport_sockets__tls__v3__secret__get_packed_size(&s);
    uint8_t *buf = malloc(*len);
    envoy__extensions__transport_sockets__tls__v3__secret__pack(&s, buf);
    return buf;
}

Test(sidecar_crl, rootca_over_sds_applies_and_nacks)
{
    tsc_ca *ca = tsc_ca_new("mesh root"), *impostor = tsc_ca_new("mesh root");
    peer a, b;
    make_peer(&a, ca, ID_A);
    make_peer(&b, ca, ID_B);
    char *bundle = tsc_ca_pem(ca);
    const char *revoked[] = {a.chain};
    char *crl = tsc_crl(ca, revoked, 1, 1, 2, now_s() - 5, now_s() + 3600);
    size_t len;
    uint8_t *res = rootca(bundle, crl, &len);
    xdsc_resource r = {.name = "ROOTCA", .data = res, .len = len};
    bool changed = false;
    mesh_err e;
    cr_assert_eq(xdsc_secrets_apply(b.pool, &r, 1, now_s(), &changed, &e), MESH_OK, "%s", e.msg);
    cr_assert(changed);
    cr_assert_not(handshake(a.pool, b.pool));
    cr_assert_eq(xdsc_secrets_apply(b.pool, &r, 1, now_s(), &changed, &e), MESH_OK);
    cr_assert_not(changed, "a re-send changes nothing");
    free(res);
    /* A forged CRL: NACK naming it, the old one stays. */
    char *forged = tsc_crl(impostor, NULL, 0, 0, 3, now_s() - 5, now_s() + 3600);
    res = rootca(bundle, forged, &len);
    r.data = res;
    r.len = len;
    cr_assert_eq(xdsc_secrets_apply(b.pool, &r, 1, now_s(), &changed, &e), MESH_EINVAL);
    cr_assert(strstr(e.msg, "ROOTCA") && strstr(e.msg, "does not verify"), "%s", e.msg);
    cr_assert_not(handshake(a.pool, b.pool), "the old CRL is kept");
    free(res);
    free(forged);
    free(crl);
    free(bundle);
    free_peer(&a);
    free_peer(&b);
    tsc_ca_free(ca);
    tsc_ca_free(impostor);
}
