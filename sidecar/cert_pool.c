/* sidecar/cert_pool.c — SVID state, rotation and TLS contexts (see cert_pool.h).
 * Persistence is in cert_pool_file.c. */
#include "sidecar/cert_pool.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sidecar/cert_pool_internal.h"
#include "sidecar/tls_crl.h"
#include "sidecar/tls_util.h"

/* ---- SVID objects ------------------------------------------------------------- */

void cp_svid_free(cp_svid *s)
{
    if (!s)
        return;
    EVP_PKEY_free(s->key);
    sk_X509_pop_free(s->chain, X509_free);
    free(s);
}

int cp_svid_make(EVP_PKEY *key, STACK_OF(X509) *chain, cp_svid **out, mesh_err *err)
{
    int rc = MESH_OK;
    cp_svid *s = calloc(1, sizeof *s);
    if (!s) {
        EVP_PKEY_free(key);
        sk_X509_pop_free(chain, X509_free);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    s->key = key;
    s->chain = chain;
    X509 *leaf = sk_X509_value(chain, 0);
    if (!leaf) {
        rc = mesh_err_set(err, MESH_EINVAL, "SVID chain is empty");
        goto out;
    }
    if (X509_check_ca(leaf) != 0) {
        rc = mesh_err_set(err, MESH_EINVAL, "SVID leaf is a CA certificate (basicConstraints "
                          "CA:TRUE or keyCertSign); an X.509-SVID must be CA:FALSE");
        goto out;
    }
    rc = tls_cert_spiffe_id(leaf, s->id, sizeof s->id, err);
    if (rc != MESH_OK) {
        mesh_err_prefix(err, "SVID leaf");
        goto out;
    }
    EVP_PKEY *pub = X509_get0_pubkey(leaf);
    if (!key || !pub || EVP_PKEY_eq(key, pub) != 1) {
        ERR_clear_error();
        rc = mesh_err_set(err, MESH_EINVAL, "SVID %s: the certificate's public key does not "
                          "match the private key", s->id);
        goto out;
    }
    tls_cert_serial_hex(leaf, s->serial, sizeof s->serial);
    s->not_before = tls_cert_not_before(leaf);
    s->not_after = tls_cert_not_after(leaf);
out:
    if (rc != MESH_OK) {
        cp_svid_free(s);
        return rc;
    }
    *out = s;
    return MESH_OK;
}

/* ---- contexts ------------------------------------------------------------------ */

/* The address marks an accepted connection whose listener takes HTTP/2 (its value is
 * never read or written). */
static const char h2_marker = 'h';

void cert_pool_ssl_offer_h2(SSL *ssl)
{
    SSL_set_app_data(ssl, (void *)&h2_marker);
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    static const unsigned char h2[] = {2, 'h', '2'};
    unsigned char *sel = NULL;
    /* "h2" only where the listener serves HTTP/2 (an http2/grpc service's inbound). */
    if (SSL_get_app_data(ssl) == &h2_marker &&
        SSL_select_next_proto(&sel, outlen, h2, sizeof h2, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    if (SSL_select_next_proto(&sel, outlen, h1, sizeof h1, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    /* A client without http/1.1 (a TCP service) proceeds without ALPN. */
    return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *build_ctx(bool server, const cp_svid *s, STACK_OF(X509) *bundle,
                          STACK_OF(X509_CRL) *crls, tls_crl_hooks *hooks, mesh_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    X509_STORE *store = NULL;
    if (!ctx)
        goto fail;
    /* TLS 1.3 only: the mesh controls both ends, and 1.3 encrypts the
     * certificates (identities) exchanged in the handshake. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
        goto fail;
    if (SSL_CTX_use_certificate(ctx, sk_X509_value(s->chain, 0)) != 1)
        goto fail;
    for (int i = 1; i < sk_X509_num(s->chain); i++)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(s->chain, i)) != 1)
            goto fail;
    if (SSL_CTX_use_PrivateKey(ctx, s->key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    store = X509_STORE_new();
    if (!store)
        goto fail;
    for (int i = 0; i < sk_X509_num(bundle); i++)
        if (X509_STORE_add_cert(store, sk_X509_value(bundle, i)) != 1)
            goto fail;
    /* Every bundle entry is a trust anchor, including an operator's
     * intermediate (plug-in CA) that is not self-signed. */
    unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
    /* The CRLs from ROOTCA: the peer's leaf is refused when its issuer's CRL
     * lists it (tls_crl_verify_cb holds the policy: a stale CRL is still
     * enforced, a CA without one has nothing revoked we know of). */
    for (int i = 0; crls && i < sk_X509_CRL_num(crls); i++)
        if (X509_STORE_add_crl(store, sk_X509_CRL_value(crls, i)) != 1)
            goto fail;
    if (crls && sk_X509_CRL_num(crls) > 0)
        flags |= X509_V_FLAG_CRL_CHECK;
    X509_STORE_set_flags(store, flags);
    SSL_CTX_set_cert_store(ctx, store);
    store = NULL;
    SSL_CTX_set_app_data(ctx, hooks);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, tls_crl_verify_cb);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    /* No resumption: a resumed session would skip the chain check against
     * the current bundle and carry a peer identity from an older handshake. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (server) {
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    }
    return ctx;
fail:
    X509_STORE_free(store);
    SSL_CTX_free(ctx);
    mesh_err_openssl(err, MESH_ECRYPTO, server ? "building the server TLS context"
                                               : "building the client TLS context");
    return NULL;
}

int cp_rebuild_ctx(cert_pool *p, mesh_err *err)
{
    SSL_CTX *s = NULL, *c = NULL;
    if (p->cur && p->bundle && sk_X509_num(p->bundle) > 0) {
        s = build_ctx(true, p->cur, p->bundle, p->crls, &p->hooks, err);
        if (!s)
            return MESH_ECRYPTO;
        c = build_ctx(false, p->cur, p->bundle, p->crls, &p->hooks, err);
        if (!c) {
            SSL_CTX_free(s);
            return MESH_ECRYPTO;
        }
    }
    /* Old contexts live on in the SSLs made from them (reference counted). */
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    p->sctx = s;
    p->cctx = c;
    return MESH_OK;
}

/* ---- pool ---------------------------------------------------------------------- */

int cert_pool_new(cert_pool **out, mesh_err *err)
{
    cert_pool *p = calloc(1, sizeof *p);
    if (!p)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return mesh_err_set(err, MESH_EINTERNAL, "cannot initialise the cert pool mutex");
    }
    atomic_init(&p->refused_revoked, 0);
    cp_hooks_init(p);
    *out = p;
    return MESH_OK;
}

void cert_pool_free(cert_pool *p)
{
    if (!p)
        return;
    cp_svid_free(p->cur);
    cp_svid_free(p->next);
    EVP_PKEY_free(p->pending_key);
    sk_X509_pop_free(p->bundle, X509_free);
    sk_X509_CRL_pop_free(p->crls, X509_CRL_free);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static EVP_PKEY *gen_p256(mesh_err *err)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!k)
        mesh_err_openssl(err, MESH_ECRYPTO, "generating an ECDSA P-256 key");
    return k;
}

static char *make_csr(EVP_PKEY *key, const char *spiffe_id, mesh_err *err)
{
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *uri = ASN1_IA5STRING_new();
    X509_EXTENSION *ext = NULL;
    BIO *b = NULL;
    char *pem = NULL;
    if (!req || !exts || !gens || !gn || !uri)
        goto done;
    if (X509_REQ_set_version(req, 0) != 1 || X509_REQ_set_pubkey(req, key) != 1)
        goto done;
    if (ASN1_STRING_set(uri, spiffe_id, (int)strlen(spiffe_id)) != 1)
        goto done;
    GENERAL_NAME_set0_value(gn, GEN_URI, uri);
    uri = NULL;
    if (!sk_GENERAL_NAME_push(gens, gn))
        goto done;
    gn = NULL;
    /* Empty subject: SPIFFE says the SAN extension is then critical. */
    ext = X509V3_EXT_i2d(NID_subject_alt_name, 1, gens);
    if (!ext || !sk_X509_EXTENSION_push(exts, ext))
        goto done;
    ext = NULL;
    if (X509_REQ_add_extensions(req, exts) != 1)
        goto done;
    if (X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        goto done;
    b = BIO_new(BIO_s_mem());
    if (!b || PEM_write_bio_X509_REQ(b, req) != 1)
        goto done;
    char *data;
    long n = BIO_get_mem_data(b, &data);
    pem = malloc((size_t)n + 1);
    if (pem) {
        memcpy(pem, data, (size_t)n);
        pem[n] = '\0';
    }
done:
    if (!pem)
        mesh_err_openssl(err, MESH_ECRYPTO, "building the CSR");
    BIO_free(b);
    X509_EXTENSION_free(ext);
    ASN1_IA5STRING_free(uri);
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    return pem;
}

int cert_pool_make_csr(cert_pool *p, const char *spiffe_id, bool new_key, char **csr_pem_out,
                       mesh_err *err)
{
    mesh_err e;
    if (dp_spiffe_check(spiffe_id, NULL, 0, &e) != MESH_OK)
        return mesh_err_set(err, MESH_EINVAL, "CSR: %s", e.msg);
    pthread_mutex_lock(&p->mu);
    EVP_PKEY *key = p->pending_key ? p->pending_key
                    : p->next      ? p->next->key
                    : p->cur       ? p->cur->key
                                   : NULL;
    if (new_key || !key) {
        EVP_PKEY *k = gen_p256(err);
        if (!k) {
            pthread_mutex_unlock(&p->mu);
            return MESH_ECRYPTO;
        }
        EVP_PKEY_free(p->pending_key);
        p->pending_key = k;
        p->generation++;
        key = k;
    }
    char *pem = make_csr(key, spiffe_id, err);
    pthread_mutex_unlock(&p->mu);
    if (!pem)
        return MESH_ECRYPTO;
    *csr_pem_out = pem;
    return MESH_OK;
}

bool cp_chain_verifies(const cp_svid *s, STACK_OF(X509) *bundle, int64_t now, char *why,
                       size_t whylen)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    bool ok = false;
    snprintf(why, whylen, "out of memory");
    if (!st || !ctx || !untrusted)
        goto done;
    for (int i = 0; i < sk_X509_num(bundle); i++)
        X509_STORE_add_cert(st, sk_X509_value(bundle, i));
    X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
    for (int i = 1; i < sk_X509_num(s->chain); i++)
        sk_X509_push(untrusted, sk_X509_value(s->chain, i));
    if (X509_STORE_CTX_init(ctx, st, sk_X509_value(s->chain, 0), untrusted) != 1)
        goto done;
    X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
    if (X509_verify_cert(ctx) == 1) {
        ok = true;
    } else {
        snprintf(why, whylen, "%s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
done:
    ERR_clear_error();
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    return ok;
}

bool cp_try_promote(cert_pool *p, int64_t now)
{
    cp_svid *n = p->next;
    if (!n)
        return false;
    char rwhy[768];
    if (cp_svid_revoked(p, n, rwhy, sizeof rwhy)) {
        if (!p->hold_logged)
            log_warn("certs", "not using next SVID serial %s: %s", n->serial, rwhy);
        p->hold_logged = true;
        return false;
    }
    /* A revoked current SVID is no better than an expired one: swap at once. */
    bool cur_usable = p->cur && p->cur->not_after > now && !cp_svid_revoked(p, p->cur, NULL, 0);
    if (n->not_before > now && cur_usable) {
        if (!p->hold_logged)
            log_info("certs", "holding next SVID serial %s until its notBefore (%lld s from now)",
                     n->serial, (long long)(n->not_before - now));
        p->hold_logged = true;
        return false;
    }
    char why[256] = "";
    bool have_bundle = p->bundle && sk_X509_num(p->bundle) > 0;
    if (have_bundle && cur_usable && !cp_chain_verifies(n, p->bundle, now, why, sizeof why)) {
        if (!p->hold_logged)
            log_warn("certs", "holding next SVID serial %s for %s: it does not verify against "
                     "the trust bundle (%s); it is used once a bundle that trusts it arrives",
                     n->serial, n->id, why);
        p->hold_logged = true;
        return false;
    }
    cp_svid *old = p->cur;
    p->cur = n;
    p->next = NULL;
    p->hold_logged = false;
    p->expired_logged = false;
    p->revoked_logged = false;
    mesh_err e;
    if (cp_rebuild_ctx(p, &e) != MESH_OK) {
        /* Cannot happen for a key/cert pair we checked; keep the old one. */
        log_error("certs", "rotation to SVID serial %s failed: %s; keeping serial %s", n->serial,
                  e.msg, old ? old->serial : "(none)");
        p->next = n;
        p->cur = old;
        return false;
    }
    char na[32];
    tls_format_time(n->not_after, na, sizeof na);
    log_info("certs", "SVID %s serial %s now in use for new handshakes (expires %s)%s%s", n->id,
             n->serial, na, old ? "; replaced serial " : "", old ? old->serial : "");
    cp_svid_free(old);
    p->problem[0] = '\0';      /* a new SVID: whatever stranded us is over */
    p->generation++;
    return true;
}

int cert_pool_offer_svid(cert_pool *p, const char *chain_pem, const char *key_pem, int64_t now,
                         mesh_err *err)
{
    STACK_OF(X509) *chain = NULL;
    int rc = tls_parse_certs(chain_pem, "SVID chain", &chain, err);
    if (rc != MESH_OK)
        return rc;
    EVP_PKEY *given = NULL;
    if (key_pem) {
        rc = tls_parse_key(key_pem, "SVID private key", &given, err);
        if (rc != MESH_OK) {
            sk_X509_pop_free(chain, X509_free);
            return rc;
        }
    }
    X509 *leaf = sk_X509_value(chain, 0);
    int64_t na = tls_cert_not_after(leaf);
    char serial[80];
    tls_cert_serial_hex(leaf, serial, sizeof serial);

    pthread_mutex_lock(&p->mu);
    if ((p->cur && strcmp(p->cur->serial, serial) == 0) ||
        (p->next && strcmp(p->next->serial, serial) == 0)) {
        pthread_mutex_unlock(&p->mu);
        EVP_PKEY_free(given);
        sk_X509_pop_free(chain, X509_free);
        return MESH_OK;     /* SDS re-sent what we have */
    }
    /* Pair the leaf with the key it was issued for. */
    EVP_PKEY *pub = X509_get0_pubkey(leaf);
    EVP_PKEY *key = given;
    bool from_pending = false;
    if (!key && pub) {
        EVP_PKEY *cands[3] = {p->pending_key, p->next ? p->next->key : NULL,
                              p->cur ? p->cur->key : NULL};
        for (int i = 0; i < 3 && !key; i++) {
            if (cands[i] && EVP_PKEY_eq(cands[i], pub) == 1) {
                key = cands[i];
                EVP_PKEY_up_ref(key);
                from_pending = i == 0;
            }
        }
        ERR_clear_error();
        if (!key) {
            pthread_mutex_unlock(&p->mu);
            sk_X509_pop_free(chain, X509_free);
            return mesh_err_set(err, MESH_EINVAL,
                                "SVID serial %s: its public key matches no key this sidecar "
                                "holds (was the CSR made by another process or before a "
                                "restart without a persisted pool?)", serial);
        }
    }
    cp_svid *s;
    rc = cp_svid_make(key, chain, &s, err);
    if (rc != MESH_OK) {
        pthread_mutex_unlock(&p->mu);
        return rc;
    }
    char rwhy[768];
    if (na <= now) {
        char when[32];
        tls_format_time(na, when, sizeof when);
        rc = mesh_err_set(err, MESH_EEXPIRED, "SVID %s serial %s expired at %s; not installing "
                          "it", s->id, serial, when);
    } else if (cp_svid_revoked(p, s, rwhy, sizeof rwhy)) {
        rc = mesh_err_set(err, MESH_EINVAL, "SVID offered: %s; not installing it", rwhy);
    } else if (p->cur && strcmp(p->cur->id, s->id) != 0) {
        rc = mesh_err_set(err, MESH_EINVAL, "SVID for %s offered to a sidecar whose identity is "
                          "%s; a sidecar's identity does not change", s->id, p->cur->id);
    }
    if (rc != MESH_OK) {
        pthread_mutex_unlock(&p->mu);
        cp_svid_free(s);
        return rc;
    }
    if (from_pending) {
        EVP_PKEY_free(p->pending_key);
        p->pending_key = NULL;
    }
    cp_svid_free(p->next);
    p->next = s;
    p->hold_logged = false;
    p->generation++;
    cp_try_promote(p, now);
    pthread_mutex_unlock(&p->mu);
    return MESH_OK;
}

int cert_pool_set_bundle(cert_pool *p, const char *bundle_pem, int64_t now, mesh_err *err)
{
    STACK_OF(X509) *roots = NULL;
    int rc = tls_parse_certs(bundle_pem, "trust bundle", &roots, err);
    if (rc != MESH_OK)
        return rc;
    for (int i = 0; i < sk_X509_num(roots); i++) {
        if (X509_check_ca(sk_X509_value(roots, i)) == 0) {
            sk_X509_pop_free(roots, X509_free);
            return mesh_err_set(err, MESH_EINVAL, "trust bundle: certificate %d is not a CA "
                                "certificate", i + 1);
        }
    }
    pthread_mutex_lock(&p->mu);
    STACK_OF(X509) *old = p->bundle;
    p->bundle = roots;
    rc = cp_rebuild_ctx(p, err);
    if (rc != MESH_OK) {
        p->bundle = old;
        pthread_mutex_unlock(&p->mu);
        sk_X509_pop_free(roots, X509_free);
        return rc;
    }
    sk_X509_pop_free(old, X509_free);
    p->generation++;
    char why[256];
    if (p->cur && !cp_chain_verifies(p->cur, p->bundle, now, why, sizeof why))
        log_warn("certs", "the new trust bundle does not verify our own SVID serial %s (%s); "
                 "peers with this bundle will reject us until we rotate", p->cur->serial, why);
    p->hold_logged = false;
    cp_try_promote(p, now);
    pthread_mutex_unlock(&p->mu);
    return MESH_OK;
}

bool cert_pool_tick(cert_pool *p, int64_t now)
{
    pthread_mutex_lock(&p->mu);
    bool changed = cp_try_promote(p, now);
    if (p->cur && p->cur->not_after <= now && !p->expired_logged) {
        char when[32];
        tls_format_time(p->cur->not_after, when, sizeof when);
        log_error("certs", "SVID %s expired at %s; refusing mTLS until meshd issues a new one",
                  p->cur->id, when);
        p->expired_logged = true;
    }
    pthread_mutex_unlock(&p->mu);
    return changed;
}

static int get_ctx(cert_pool *p, bool server, int64_t now, SSL_CTX **out, mesh_err *err)
{
    pthread_mutex_lock(&p->mu);
    if (p->next)
        cp_try_promote(p, now);
    int rc = MESH_OK;
    if (!p->cur) {
        rc = mesh_err_set(err, MESH_ENOTFOUND, "no SVID yet; waiting for meshd to issue one");
    } else if (p->cur->not_after <= now) {
        char when[32];
        tls_format_time(p->cur->not_after, when, sizeof when);
        rc = mesh_err_set(err, MESH_EEXPIRED,
                          "SVID %s expired at %s; refusing mTLS until meshd issues a new one",
                          p->cur->id, when);
        if (!p->expired_logged)
            log_error("certs", "%s", err ? err->msg : "SVID expired; refusing mTLS");
        p->expired_logged = true;
    } else if (!p->sctx || !p->cctx) {
        rc = mesh_err_set(err, MESH_ENOTFOUND, "no trust bundle yet; waiting for the ROOTCA "
                          "bundle from meshd");
    } else if (cp_svid_revoked(p, p->cur, NULL, 0)) {
        /* Peers holding the same CRL refuse us anyway: say why here. */
        char why[768];
        cp_svid_revoked(p, p->cur, why, sizeof why);
        rc = mesh_err_set(err, MESH_EPERM, "our SVID is revoked (%s); refusing mTLS until this "
                          "sidecar has a new SVID", why);
        if (!p->revoked_logged)
            log_error("certs", "%s", err ? err->msg : "our SVID is revoked; refusing mTLS");
        p->revoked_logged = true;
    } else {
        SSL_CTX *c = server ? p->sctx : p->cctx;
        SSL_CTX_up_ref(c);
        *out = c;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int cert_pool_server_ctx(cert_pool *p, int64_t now, SSL_CTX **out, mesh_err *err)
{
    return get_ctx(p, true, now, out, err);
}

int cert_pool_client_ctx(cert_pool *p, int64_t now, SSL_CTX **out, mesh_err *err)
{
    return get_ctx(p, false, now, out, err);
}

bool cert_pool_ready(cert_pool *p, int64_t now)
{
    pthread_mutex_lock(&p->mu);
    bool ok = p->cur && p->cur->not_after > now && p->sctx && p->cctx && !p->problem[0] &&
              !cp_svid_revoked(p, p->cur, NULL, 0);
    pthread_mutex_unlock(&p->mu);
    return ok;
}

int64_t cert_pool_seconds_left(cert_pool *p, int64_t now)
{
    pthread_mutex_lock(&p->mu);
    int64_t s = p->cur ? p->cur->not_after - now : CERT_POOL_NO_SVID;
    pthread_mutex_unlock(&p->mu);
    return s;
}

int cert_pool_spiffe_id(cert_pool *p, char *buf, size_t len)
{
    pthread_mutex_lock(&p->mu);
    int rc = MESH_ENOTFOUND;
    if (p->cur && strlen(p->cur->id) < len) {
        memcpy(buf, p->cur->id, strlen(p->cur->id) + 1);
        rc = MESH_OK;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

static void fill_svid_info(const cp_svid *s, int64_t now, cert_pool_svid_info *o)
{
    memset(o, 0, sizeof *o);
    if (!s)
        return;
    o->present = true;
    memcpy(o->spiffe_id, s->id, sizeof o->spiffe_id);
    memcpy(o->serial_hex, s->serial, sizeof o->serial_hex);
    o->not_before = s->not_before;
    o->not_after = s->not_after;
    o->seconds_left = s->not_after - now;
}

void cert_pool_get_info(cert_pool *p, int64_t now, cert_pool_info *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&p->mu);
    fill_svid_info(p->cur, now, &out->current);
    fill_svid_info(p->next, now, &out->next);
    if (p->cur)
        out->current.revoked = cp_svid_revoked(p, p->cur, out->current.revoked_why,
                                               sizeof out->current.revoked_why);
    if (p->next)
        out->next.revoked = cp_svid_revoked(p, p->next, out->next.revoked_why,
                                            sizeof out->next.revoked_why);
    snprintf(out->problem, sizeof out->problem, "%s", p->problem);
    out->n_crls = p->crls ? (size_t)sk_X509_CRL_num(p->crls) : 0;
    for (size_t i = 0; i < out->n_crls && i < CERT_POOL_MAX_ROOTS_INFO; i++) {
        X509_CRL *crl = sk_X509_CRL_value(p->crls, (int)i);
        cert_pool_crl_info *ci = &out->crls[i];
        tls_crl_issuer(crl, ci->issuer, sizeof ci->issuer);
        ci->number = tls_crl_number(crl);
        ci->this_update = tls_crl_this_update(crl);
        ci->next_update = tls_crl_next_update(crl);
        STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
        ci->n_revoked = rev ? (size_t)sk_X509_REVOKED_num(rev) : 0;
    }
    out->crl_generation = p->crl_generation;
    out->refused_revoked = atomic_load(&p->refused_revoked);
    const cp_svid *any = p->cur ? p->cur : p->next;
    if (any) {
        const char *td = any->id + strlen("spiffe://");
        size_t tl = strcspn(td, "/");
        if (tl < sizeof out->trust_domain) {
            memcpy(out->trust_domain, td, tl);
            out->trust_domain[tl] = '\0';
        }
    }
    out->pending_key = p->pending_key != NULL;
    out->n_roots = p->bundle ? (size_t)sk_X509_num(p->bundle) : 0;
    for (size_t i = 0; i < out->n_roots && i < CERT_POOL_MAX_ROOTS_INFO; i++) {
        X509 *x = sk_X509_value(p->bundle, (int)i);
        cert_pool_root_info *r = &out->roots[i];
        tls_cert_subject(x, r->subject, sizeof r->subject);
        tls_cert_serial_hex(x, r->serial_hex, sizeof r->serial_hex);
        tls_cert_sha256(x, r->sha256);
        r->not_after = tls_cert_not_after(x);
    }
    out->generation = p->generation;
    pthread_mutex_unlock(&p->mu);
}

int cert_pool_export_identity(cert_pool *p, char **key_pem_out, char **chain_pem_out,
                              mesh_err *err)
{
    pthread_mutex_lock(&p->mu);
    if (!p->cur) {
        pthread_mutex_unlock(&p->mu);
        return mesh_err_set(err, MESH_ENOTFOUND, "no SVID in the cert pool");
    }
    char *k = tls_key_to_pem(p->cur->key);
    char *c = tls_certs_to_pem(p->cur->chain);
    pthread_mutex_unlock(&p->mu);
    if (!k || !c) {
        if (k)
            OPENSSL_cleanse(k, strlen(k));
        free(k);
        free(c);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory exporting the SVID");
    }
    *key_pem_out = k;
    *chain_pem_out = c;
    return MESH_OK;
}

int cert_pool_export_bundle(cert_pool *p, char **bundle_pem_out, mesh_err *err)
{
    pthread_mutex_lock(&p->mu);
    char *b = p->bundle ? tls_certs_to_pem(p->bundle) : NULL;
    bool have = p->bundle != NULL;
    pthread_mutex_unlock(&p->mu);
    if (!have)
        return mesh_err_set(err, MESH_ENOTFOUND, "no trust bundle in the cert pool");
    if (!b)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory exporting the bundle");
    *bundle_pem_out = b;
    return MESH_OK;
}
