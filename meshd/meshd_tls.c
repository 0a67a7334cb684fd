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
 * Client certs are requested and verified but optional at the TLS layer:
 * CreateCertificate's first contact (join token) and recovery come without
 * one; the ADS/SDS handlers refuse callers without a verified SPIFFE ID. */
#include "meshd/meshd_internal.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    char *chain = strdup(iss.chain_pem);
    if (!chain) {
        free_secret(key);
        ca_issued_free(&iss);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
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

void md_tls_set_roots(md_tls *t, const char *roots_pem)
{
    char *copy = strdup(roots_pem);
    if (!copy) {
        log_error("meshd", "out of memory updating the TLS trust bundle; keeping the old one");
        return;
    }
    pthread_mutex_lock(&t->mu);
    if (t->roots_pem && strcmp(t->roots_pem, copy) == 0) {
        pthread_mutex_unlock(&t->mu);
        free(copy);
        return;
    }
    free(t->roots_pem);
    t->roots_pem = copy;
    t->gen++;
    pthread_mutex_unlock(&t->mu);
    log_info("meshd", "TLS trust bundle updated; new handshakes verify against it");
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
            GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY, fetch_config, ctx);
    if (!o)
        return NULL;
    return grpc_ssl_server_credentials_create_with_options(o);
}
