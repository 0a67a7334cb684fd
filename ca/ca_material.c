/* ca/ca_material.c — producing CA material: a fresh self-signed root, or an
 * operator's plug-in CA (cert + key + chain) checked before we trust it.
 *
 * Nothing here touches the store or the key directory; ca_admin.c decides
 * where the result goes. */
#include "ca/ca_internal.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ca/csr.h"
#include "ca/spiffe_id.h"
#include "common/log.h"

#define CA_MIN_TTL 60LL
#define CA_MAX_TTL (30LL * 365 * 24 * 3600)
#define CA_INPUT_MAX (1024 * 1024)

int ca_key_type_name(EVP_PKEY *key, char *buf, size_t len, mesh_err *err)
{
    key_type_describe(key, buf, len);
    int id = EVP_PKEY_get_base_id(key);
    if (strcmp(buf, "ec-p256") == 0 || strcmp(buf, "ec-p384") == 0)
        return MESH_OK;
    if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(key) >= 2048)
        return MESH_OK;
    return mesh_err_set(err, MESH_EINVAL,
                        "CA key type %s is not supported (use EC P-256, EC P-384 or RSA >= 2048)",
                        buf);
}

int ca_make_root(const char *trust_domain, const char *key_type, int64_t ttl_seconds,
                 X509 **cert_out, EVP_PKEY **key_out, mesh_err *err)
{
    *cert_out = NULL;
    *key_out = NULL;
    if (!key_type || !key_type[0])
        key_type = "ec-p256";
    if (strcmp(key_type, "ec-p256") != 0 && strcmp(key_type, "ec-p384") != 0 &&
        strcmp(key_type, "rsa-3072") != 0) {
        char q[64];
        return mesh_err_set(err, MESH_EINVAL,
                            "CA key type '%s' is not supported (use ec-p256, ec-p384 or rsa-3072)",
                            ca_quote(key_type, q, sizeof q));
    }
    if (ttl_seconds == 0)
        ttl_seconds = CA_DEFAULT_ROOT_TTL;
    if (ttl_seconds < CA_MIN_TTL || ttl_seconds > CA_MAX_TTL)
        return mesh_err_set(err, MESH_EINVAL,
                            "CA validity of %lld s is out of range (%lld s to %lld s)",
                            (long long)ttl_seconds, CA_MIN_TTL, CA_MAX_TTL);

    EVP_PKEY *key = NULL;
    int rc = csr_keygen(key_type, &key, err);
    if (rc != MESH_OK)
        return rc;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (!x || !name) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = ca_random_serial(x, err)) != MESH_OK)
        goto fail;
    char serial[48];
    if ((rc = cert_serial_hex(x, serial, sizeof serial, err)) != MESH_OK)
        goto fail;
    /* The serial prefix in the CN tells rotated roots apart at a glance
     * (and for verifiers that look roots up by subject first). */
    char cn[64];
    snprintf(cn, sizeof cn, "meshd root CA %.8s", serial);
    time_t now = time(NULL);
    if (X509_set_version(x, X509_VERSION_3) != 1 ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)trust_domain,
                                   -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
        !ASN1_TIME_set(X509_getm_notBefore(x), now - CA_BACKDATE_SECONDS) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), now + (time_t)ttl_seconds) ||
        X509_set_pubkey(x, key) != 1) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot build CA certificate");
        goto fail;
    }
    char uri[300];
    snprintf(uri, sizeof uri, "spiffe://%s", trust_domain);
    if ((rc = ca_add_basic_constraints(x, 1, err)) != MESH_OK ||
        (rc = ca_add_key_usage(x, 0, 0, 1, err)) != MESH_OK ||
        (rc = ca_add_san(x, uri, NULL, 0, err)) != MESH_OK ||
        (rc = ca_add_key_ids(x, x, err)) != MESH_OK)
        goto fail;
    if (X509_sign(x, key, ca_sign_digest(key)) <= 0) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot self-sign CA certificate");
        goto fail;
    }
    X509_NAME_free(name);
    *cert_out = x;
    *key_out = key;
    return MESH_OK;
fail:
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* 1 if x is self-issued and its signature verifies with its own key. */
static int is_self_signed(X509 *x)
{
    int r = X509_self_signed(x, 1);
    ERR_clear_error();
    return r == 1;
}

static int read_certs(const char *path, const char *what, STACK_OF(X509) **out, mesh_err *err)
{
    char *pem = NULL;
    int rc = ca_read_file(path, CA_INPUT_MAX, &pem, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "reading %s", what);
    rc = pem_read_cert_chain(pem, out, err);
    free(pem);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "%s %s", what, path);
    return MESH_OK;
}

/* A plug-in CA cert may carry the trust-domain URI SAN (SPIRE does); if it
 * names a SPIFFE trust domain, it must be ours. */
static int check_ca_san(X509 *cert, const char *trust_domain, const char *path, mesh_err *err)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    ERR_clear_error();
    int rc = MESH_OK;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && rc == MESH_OK; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI)
            continue;
        const ASN1_IA5STRING *s = g->d.uniformResourceIdentifier;
        char uri[SPIFFE_ID_MAX + 1];
        int n = ASN1_STRING_length(s);
        if (n <= 0 || n > SPIFFE_ID_MAX)
            continue;
        memcpy(uri, ASN1_STRING_get0_data(s), (size_t)n);
        uri[n] = '\0';
        if (strncmp(uri, "spiffe://", 9) != 0)
            continue;
        spiffe_id_parts id;
        mesh_err ignored;
        if (spiffe_id_parse(uri, &id, &ignored) == MESH_OK &&
            strcmp(id.trust_domain, trust_domain) != 0) {
            char q[128];
            rc = mesh_err_set(err, MESH_EINVAL,
                              "CA certificate %s is for SPIFFE trust domain '%s', not '%s'", path,
                              ca_quote(id.trust_domain, q, sizeof q), trust_domain);
        }
    }
    GENERAL_NAMES_free(gens);
    return rc;
}

/* basicConstraints CA:TRUE and a keyUsage with keyCertSign, present and
 * explicit: a cert without keyUsage is technically allowed to sign, but an
 * operator handing us one probably picked the wrong file. */
static int check_is_ca(X509 *cert, const char *path, mesh_err *err)
{
    uint32_t flags = X509_get_extension_flags(cert);
    if (flags & EXFLAG_INVALID)
        return mesh_err_set(err, MESH_EINVAL, "certificate %s has malformed extensions", path);
    if (!(flags & EXFLAG_BCONS) || !(flags & EXFLAG_CA))
        return mesh_err_set(err, MESH_EINVAL,
                            "certificate %s is not a CA certificate (basicConstraints CA:TRUE is "
                            "missing); a plug-in CA must be an intermediate or root CA",
                            path);
    if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN))
        return mesh_err_set(err, MESH_EINVAL,
                            "certificate %s may not sign certificates (keyUsage keyCertSign is "
                            "missing)",
                            path);
    return MESH_OK;
}

static int check_validity(X509 *cert, const char *path, mesh_err *err)
{
    int64_t nb, na;
    int rc = cert_validity(cert, &nb, &na, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "%s", path);
    int64_t now = (int64_t)time(NULL);
    char t[32];
    if (na <= now)
        return mesh_err_set(err, MESH_EEXPIRED, "CA certificate %s expired at %s", path,
                            ca_fmt_time(na, t, sizeof t));
    if (nb > now + CA_BACKDATE_SECONDS)
        return mesh_err_set(err, MESH_EINVAL, "CA certificate %s is not valid until %s", path,
                            ca_fmt_time(nb, t, sizeof t));
    return MESH_OK;
}

/* Verifies cert up to a self-signed root found in chain; on success
 * *verified is [cert, intermediates..., root]. */
static int verify_chain(X509 *cert, STACK_OF(X509) *chain, const char *chain_desc,
                        STACK_OF(X509) **verified, mesh_err *err)
{
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = MESH_OK;
    int roots = 0;
    if (!store || !untrusted || !ctx) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        int ok = is_self_signed(c) ? (roots++, X509_STORE_add_cert(store, c))
                                   : sk_X509_push(untrusted, c) > 0;
        if (!ok) {
            rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot assemble the CA chain");
            goto out;
        }
    }
    if (roots == 0) {
        rc = mesh_err_set(err, MESH_EINVAL,
                          "%s holds no self-signed root certificate; include the root so the "
                          "trust bundle can be published",
                          chain_desc);
        goto out;
    }
    if (X509_STORE_CTX_init(ctx, store, cert, untrusted) != 1) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot set up chain verification");
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        ERR_clear_error();
        rc = mesh_err_set(err, MESH_EINVAL,
                          "the CA certificate does not chain to a root in %s: %s (at depth %d)",
                          chain_desc, X509_verify_cert_error_string(e), depth);
        goto out;
    }
    *verified = X509_STORE_CTX_get1_chain(ctx);
    if (!*verified)
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
out:
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted); /* the certs belong to chain */
    X509_STORE_free(store);
    return rc;
}

int ca_import(const char *trust_domain, const char *cert_path, const char *key_path,
              const char *chain_path, X509 **cert_out, EVP_PKEY **key_out,
              STACK_OF(X509) **chain_out, mesh_err *err)
{
    *cert_out = NULL;
    *key_out = NULL;
    *chain_out = NULL;
    if (!key_path || !key_path[0])
        return mesh_err_set(err, MESH_EINVAL, "plug-in CA: the CA private key file is required");
    STACK_OF(X509) *certs = NULL, *extra = NULL, *verified = NULL;
    EVP_PKEY *key = NULL;
    char *key_pem = NULL;
    size_t key_len = 0;
    int rc = read_certs(cert_path, "CA certificate", &certs, err);
    if (rc != MESH_OK)
        return rc;
    X509 *cert = sk_X509_value(certs, 0);

    rc = ca_read_file(key_path, 64 * 1024, &key_pem, err);
    if (rc != MESH_OK) {
        mesh_err_prefix(err, "reading CA key");
        goto out;
    }
    key_len = strlen(key_pem);
    rc = pem_read_private_key(key_pem, &key, err);
    if (rc != MESH_OK) {
        mesh_err_prefix(err, "CA key file %s", key_path);
        goto out;
    }
    struct stat sb;
    if (stat(key_path, &sb) == 0 && (sb.st_mode & 077))
        log_warn("ca", "plug-in CA key %s has mode %04o; meshd keeps its own 0600 copy, but "
                       "consider the source file exposed",
                 key_path, (unsigned)(sb.st_mode & 07777));
    if (!cert_key_matches(cert, key)) {
        rc = mesh_err_set(err, MESH_EINVAL,
                          "the private key in %s does not match the certificate in %s", key_path,
                          cert_path);
        goto out;
    }
    char kt[32];
    if ((rc = ca_key_type_name(key, kt, sizeof kt, err)) != MESH_OK ||
        (rc = check_is_ca(cert, cert_path, err)) != MESH_OK ||
        (rc = check_validity(cert, cert_path, err)) != MESH_OK ||
        (rc = check_ca_san(cert, trust_domain, cert_path, err)) != MESH_OK)
        goto out;

    if (is_self_signed(cert)) {
        /* A root needs no chain; anything passed alongside is not ours to publish. */
        if (sk_X509_num(certs) > 1 || (chain_path && chain_path[0]))
            log_warn("ca", "plug-in CA %s is a self-signed root; ignoring the extra chain "
                           "certificates",
                     cert_path);
        *chain_out = sk_X509_new_null();
        if (!*chain_out) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
            goto out;
        }
    } else {
        /* Certs after the first in the cert file (Istio's cert-chain.pem
         * layout) come before those of the chain file. */
        extra = sk_X509_new_null();
        if (!extra) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
            goto out;
        }
        for (int i = 1; i < sk_X509_num(certs); i++)
            if (!sk_X509_push(extra, X509_dup(sk_X509_value(certs, i)))) {
                rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
                goto out;
            }
        if (chain_path && chain_path[0]) {
            STACK_OF(X509) *chain = NULL;
            if ((rc = read_certs(chain_path, "CA chain", &chain, err)) != MESH_OK)
                goto out;
            while (sk_X509_num(chain) > 0)
                if (!sk_X509_push(extra, sk_X509_shift(chain))) {
                    sk_X509_pop_free(chain, X509_free);
                    rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
                    goto out;
                }
            sk_X509_free(chain);
        }
        if (sk_X509_num(extra) == 0) {
            rc = mesh_err_set(err, MESH_EINVAL,
                              "CA certificate %s is not self-signed; give the chain up to and "
                              "including the root (chain file)",
                              cert_path);
            goto out;
        }
        const char *desc = chain_path && chain_path[0] ? chain_path : cert_path;
        if ((rc = verify_chain(cert, extra, desc, &verified, err)) != MESH_OK)
            goto out;
        X509_free(sk_X509_shift(verified)); /* the CA cert itself */
        *chain_out = verified;
        verified = NULL;
    }
    *cert_out = X509_dup(cert);
    if (!*cert_out) {
        sk_X509_pop_free(*chain_out, X509_free);
        *chain_out = NULL;
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto out;
    }
    *key_out = key;
    key = NULL;
    rc = MESH_OK;
out:
    if (key_pem)
        OPENSSL_clear_free(key_pem, key_len);
    EVP_PKEY_free(key);
    sk_X509_pop_free(verified, X509_free);
    sk_X509_pop_free(extra, X509_free);
    sk_X509_pop_free(certs, X509_free);
    return rc;
}
