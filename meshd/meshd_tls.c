/* meshd/meshd_tls.c — meshd's serving certificate and the gRPC TLS credentials built on it.
 *
 * meshd signs its own serving SVID (spiffe://<td>/ns/mesh-system/sa/meshd,
 * DNS SANs "meshd" and "localhost") with a key that exists only in memory,
 * and verifies client SVIDs against the trust bundle. Both can change while
 * running (renewal, CA rotation), so the credentials use gRPC's config
 * fetcher: gRPC asks before every handshake and we hand over a new config
 * only when our generation counter moved, which keeps the callback a mutex
 * and an integer compare. Live connections keep what they negotiated.
 *
 * The served chain is leaf, intermediates and the root: clients verify with
 * their own bundle, but a sidecar joining with a token that pins the root
 * needs to see it (sidecar/xds_trust.c).
 *
 * Client certs are requested but optional at the TLS layer: CreateCertificate's
 * first contact (join token) and recovery come without one; the ADS/SDS
 * handlers refuse callers without a verified SPIFFE ID.
 *
 * gRPC is told NOT to verify client certs (..._BUT_DONT_VERIFY): meshd verifies
 * the presented chain itself, before any handler sees the call
 * (md_tls_verify_client, called from meshd_server.c), against the same bundle
 * and the way libssl would (the "ssl_client" purpose, validity times). A
 * handshake refusal is invisible to the application — no peer address, no
 * claimed identity, nothing to audit — while a refusal here is audited with
 * all three (docs/security.md, "Audit and logs"). gRPC's experimental TLS
 * credentials have an external verifier hook, but in 1.51 it gets no peer
 * address and its server side loads certs only from static data or watched
 * files, which would put the in-memory serving key on disk to keep the hot
 * reload; the SSL config fetcher keeps both. A peer with a bad certificate thus
 * completes the handshake and gets UNAUTHENTICATED on its first call: no more
 * than an anonymous peer (first contact) may do already. */
#include "meshd/meshd_internal.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/csr.h"
#include "sds/certsvc/svid_rotation.h"

static void free_secret(char *s)
{
    if (s)
        OPENSSL_clear_free(s, strlen(s));
}

int md_tls_init(md_tls *t)
{
    memset(t, 0, sizeof *t);
    return pthread_mutex_init(&t->mu, NULL) == 0 ? MESH_OK : MESH_EINTERNAL;
}

void md_tls_destroy(md_tls *t)
{
    X509_STORE_free(t->roots_store);
    free(t->roots_pem);
    free_secret(t->key_pem);
    free(t->chain_pem);
    pthread_mutex_destroy(&t->mu);
}

int md_tls_issue_serving(md_ctx *ctx, mesh_ca *ca, mesh_store *st, mesh_err *err)
{
    char id[600];
    snprintf(id, sizeof id, "spiffe://%s/ns/%s/sa/%s", ca_trust_domain(ca), MD_SERVING_NS,
             MD_SERVING_SA);
    static const char *const dns[] = {"meshd", "localhost", NULL};
    char *key = NULL;
    ca_issued iss;
    memset(&iss, 0, sizeof iss);
    int rc = ca_issue_with_new_key(ca, st, id, dns, ctx->opts.svid_ttl, &key, &iss, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "issuing meshd's serving certificate");
    /* The served chain ends with the root, although clients verify against
     * their bundle: a sidecar holding a join token that pins the root (and
     * no current bundle) finds it here and checks it against the pin. */
    char *root = NULL;
    store_ca active;
    memset(&active, 0, sizeof active);
    if (store_ca_get_active(st, &active, err) == MESH_OK && active.id == ca_id(ca))
        ca_root_info(&active, &root, NULL, err);
    store_ca_free(&active);
    size_t clen = strlen(iss.chain_pem), rlen = root ? strlen(root) : 0;
    char *chain = malloc(clen + rlen + 2);
    if (!chain) {
        free(root);
        free_secret(key);
        ca_issued_free(&iss);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    memcpy(chain, iss.chain_pem, clen);
    if (clen && chain[clen - 1] != '\n')
        chain[clen++] = '\n';
    if (root)
        memcpy(chain + clen, root, rlen);
    chain[clen + rlen] = '\0';
    free(root);
    md_tls *t = &ctx->tls;
    pthread_mutex_lock(&t->mu);
    free_secret(t->key_pem);
    free(t->chain_pem);
    t->key_pem = key;
    t->chain_pem = chain;
    t->not_before = iss.not_before;
    t->not_after = iss.not_after;
    t->ca_id = ca_id(ca);
    snprintf(t->serial, sizeof t->serial, "%s", iss.serial_hex);
    t->gen++;
    pthread_mutex_unlock(&t->mu);
    log_info("meshd", "serving certificate %s serial=%s valid until %lld", id, iss.serial_hex,
             (long long)iss.not_after);
    ca_issued_free(&iss);
    return MESH_OK;
}

/* The bundle as an OpenSSL trust store, or NULL (err set) if it holds no
 * usable certificate. */
static X509_STORE *roots_store_new(const char *roots_pem, mesh_err *err)
{
    STACK_OF(X509) *roots = NULL;
    if (pem_read_cert_chain(roots_pem, &roots, err) != MESH_OK)
        return NULL;
    X509_STORE *xs = X509_STORE_new();
    int ok = xs != NULL && sk_X509_num(roots) > 0;
    for (int i = 0; ok && i < sk_X509_num(roots); i++)
        ok = X509_STORE_add_cert(xs, sk_X509_value(roots, i)) == 1;
    sk_X509_pop_free(roots, X509_free);
    if (!ok) {
        mesh_err_openssl(err, MESH_ECRYPTO, "cannot load the trust bundle for client certificates");
        X509_STORE_free(xs);
        return NULL;
    }
    return xs;
}

void md_tls_set_roots(md_tls *t, const char *roots_pem)
{
    char *copy = strdup(roots_pem);
    if (!copy) {
        log_error("meshd", "out of memory updating the TLS trust bundle; keeping the old one");
        return;
    }
    pthread_mutex_lock(&t->mu);
    int same = t->roots_pem && strcmp(t->roots_pem, copy) == 0;
    pthread_mutex_unlock(&t->mu);
    if (same) {
        free(copy);
        return;
    }
    mesh_err err = {0};
    X509_STORE *xs = roots_store_new(copy, &err);
    if (!xs) {
        log_error("meshd", "TLS trust bundle not updated: %s", err.msg);
        free(copy);
        return;
    }
    pthread_mutex_lock(&t->mu);
    free(t->roots_pem);
    t->roots_pem = copy;
    X509_STORE_free(t->roots_store);
    t->roots_store = xs;
    t->gen++;
    pthread_mutex_unlock(&t->mu);
    log_info("meshd", "TLS trust bundle updated; new handshakes verify against it");
}

int md_tls_verify_client(md_tls *t, const char *leaf_pem, const char *chain_pem, int64_t now,
                         mesh_err *err)
{
    X509 *leaf = NULL;
    STACK_OF(X509) *untrusted = NULL;
    X509_STORE_CTX *vctx = NULL;
    pthread_mutex_lock(&t->mu);
    X509_STORE *xs = t->roots_store;
    if (xs)
        X509_STORE_up_ref(xs);
    pthread_mutex_unlock(&t->mu);
    int rc;
    if (!xs) {
        rc = mesh_err_set(err, MESH_EBUSY, "meshd has no trust bundle loaded yet");
        goto out;
    }
    if (!leaf_pem || pem_read_cert(leaf_pem, &leaf, err) != MESH_OK) {
        rc = mesh_err_set(err, MESH_EPERM, "the client certificate cannot be parsed");
        goto out;
    }
    if (chain_pem && chain_pem[0] && pem_read_cert_chain(chain_pem, &untrusted, err) != MESH_OK) {
        rc = mesh_err_set(err, MESH_EPERM, "the client certificate chain cannot be parsed");
        goto out;
    }
    vctx = X509_STORE_CTX_new();
    if (!vctx || X509_STORE_CTX_init(vctx, xs, leaf, untrusted) != 1) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot set up client certificate verification");
        goto out;
    }
    /* What libssl checks on a server: the ssl_client purpose (EKU clientAuth
     * when present) and the validity times, at now. */
    X509_STORE_CTX_set_default(vctx, "ssl_client");
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(vctx), (time_t)now);
    if (X509_verify_cert(vctx) == 1) {
        rc = MESH_OK;
    } else {
        int e = X509_STORE_CTX_get_error(vctx);
        rc = mesh_err_set(err, MESH_EPERM, "client certificate refused: %s",
                          X509_verify_cert_error_string(e));
    }
out:
    ERR_clear_error();
    X509_STORE_CTX_free(vctx);
    sk_X509_pop_free(untrusted, X509_free);
    X509_free(leaf);
    X509_STORE_free(xs);
    return rc;
}

void md_tls_describe_client(const char *leaf_pem, char *claim, size_t claim_len, char *info,
                            size_t info_len)
{
    claim[0] = '\0';
    info[0] = '\0';
    X509 *x = NULL;
    mesh_err err = {0};
    if (!leaf_pem || pem_read_cert(leaf_pem, &x, &err) != MESH_OK)
        return;
    /* Every URI SAN: a certificate with two is refused later anyway, and the
     * operator should see what it claimed. */
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    size_t used = 0;
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_URI)
            continue;
        const ASN1_IA5STRING *u = g->d.uniformResourceIdentifier;
        int n = snprintf(claim + used, claim_len - used, "%s%.*s", used ? "," : "",
                         ASN1_STRING_length(u), (const char *)ASN1_STRING_get0_data(u));
        if (n < 0 || (size_t)n >= claim_len - used)
            break;
        used += (size_t)n;
    }
    GENERAL_NAMES_free(sans);
    char serial[48] = "?", issuer[256] = "?";
    cert_serial_hex(x, serial, sizeof serial, &err);
    X509_NAME_oneline(X509_get_issuer_name(x), issuer, sizeof issuer);
    int64_t nb = 0, na = 0;
    cert_validity(x, &nb, &na, &err);
    snprintf(info, info_len, "serial=%s issuer=%s not_after=%lld", serial, issuer,
             (long long)na);
    X509_free(x);
    ERR_clear_error();
}

int md_tls_renew_due(md_tls *t, int64_t now, double fraction, int64_t active_ca_id)
{
    pthread_mutex_lock(&t->mu);
    int due = t->ca_id != active_ca_id ||
              now >= svid_rotation_due(t->not_before, t->not_after, fraction, t->serial);
    pthread_mutex_unlock(&t->mu);
    return due;
}

static grpc_ssl_certificate_config_reload_status fetch_config(
    void *user_data, grpc_ssl_server_certificate_config **config)
{
    md_ctx *ctx = user_data;
    md_tls *t = &ctx->tls;
    grpc_ssl_certificate_config_reload_status st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    pthread_mutex_lock(&t->mu);
    if (t->gen != t->delivered) {
        if (!t->key_pem || !t->chain_pem || !t->roots_pem) {
            st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
        } else {
            grpc_ssl_pem_key_cert_pair pair = {.private_key = t->key_pem,
                                               .cert_chain = t->chain_pem};
            /* gRPC copies the strings and owns the config from here on. */
            *config = grpc_ssl_server_certificate_config_create(t->roots_pem, &pair, 1);
            if (*config) {
                t->delivered = t->gen;
                st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
            } else {
                st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
            }
        }
    }
    pthread_mutex_unlock(&t->mu);
    if (st == GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL)
        log_error("meshd", "cannot build the TLS serving config; keeping the previous one");
    return st;
}

grpc_server_credentials *md_tls_server_creds(md_ctx *ctx)
{
    grpc_ssl_server_credentials_options *o =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(
            GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY, fetch_config, ctx);
    if (!o)
        return NULL;
    return grpc_ssl_server_credentials_create_with_options(o);
}
