/* ca/csr.c — client-side keys, CSRs and certificate facts (see csr.h). */
#include "ca/csr.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca_internal.h"
#include "ca/spiffe_id.h"

/* PEM inputs come from files and the network; nothing legitimate is larger. */
#define PEM_INPUT_MAX (1024 * 1024)

int csr_keygen(const char *key_type, EVP_PKEY **out, mesh_err *err)
{
    *out = NULL;
    EVP_PKEY *k = NULL;
    if (!key_type || !key_type[0] || strcmp(key_type, "ec-p256") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else if (strcmp(key_type, "ec-p384") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    else if (strcmp(key_type, "rsa-2048") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    else if (strcmp(key_type, "rsa-3072") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    else {
        char q[64];
        return mesh_err_set(err, MESH_EINVAL,
                            "unknown key type '%s' (use ec-p256, ec-p384, rsa-2048 or rsa-3072)",
                            ca_quote(key_type, q, sizeof q));
    }
    if (!k)
        return mesh_err_openssl(err, MESH_ECRYPTO, "key generation failed");
    *out = k;
    return MESH_OK;
}

int pem_write_private_key(EVP_PKEY *key, char **pem_out, mesh_err *err)
{
    *pem_out = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    /* PEM_write_bio_PrivateKey with no cipher writes unencrypted PKCS#8. */
    int rc = MESH_OK;
    if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot encode private key");
    else
        rc = ca_bio_to_string(bio, pem_out, err);
    /* Scrub the BIO's copy of the key before releasing it. */
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n > 0 && data)
        OPENSSL_cleanse(data, (size_t)n);
    BIO_free(bio);
    return rc;
}

/* Refuses to prompt: an encrypted key yields an error, never a tty read. */
static int no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    *(int *)u = 1;
    return -1;
}

int pem_read_private_key(const char *pem, EVP_PKEY **out, mesh_err *err)
{
    *out = NULL;
    if (!pem || !pem[0])
        return mesh_err_set(err, MESH_EINVAL, "private key PEM is empty");
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    int asked = 0;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase_cb, &asked);
    BIO_free(bio);
    if (!k) {
        ERR_clear_error();
        if (asked)
            return mesh_err_set(err, MESH_EINVAL,
                                "private key is encrypted; supply an unencrypted PKCS#8 key "
                                "(e.g. openssl pkcs8 -topk8 -nocrypt) in a 0600 file");
        /* No OpenSSL detail on purpose: it could quote key material. */
        return mesh_err_set(err, MESH_EINVAL,
                            "not a PEM private key (expected -----BEGIN PRIVATE KEY-----)");
    }
    *out = k;
    return MESH_OK;
}

void key_type_describe(EVP_PKEY *key, char *buf, size_t len)
{
    if (!key) {
        snprintf(buf, len, "unknown");
        return;
    }
    int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_RSA) {
        snprintf(buf, len, "rsa-%d", EVP_PKEY_get_bits(key));
    } else if (id == EVP_PKEY_EC) {
        char group[64] = "";
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &glen) != 1) {
            ERR_clear_error();
            snprintf(buf, len, "ec-unknown");
        } else if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            snprintf(buf, len, "ec-p256");
        } else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            snprintf(buf, len, "ec-p384");
        } else {
            snprintf(buf, len, "ec-%s", group);
        }
    } else if (id == EVP_PKEY_ED25519) {
        snprintf(buf, len, "ed25519");
    } else if (id == EVP_PKEY_RSA_PSS) {
        snprintf(buf, len, "rsa-pss-%d", EVP_PKEY_get_bits(key));
    } else {
        snprintf(buf, len, "unknown");
    }
}

int pubkey_sha256_hex(EVP_PKEY *key, char out_hex[65], mesh_err *err)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    return ca_der_sha256_hex(der, n, "cannot encode public key", out_hex, err);
}

int cert_key_matches(X509 *cert, EVP_PKEY *key)
{
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    if (!pub || !key)
        return 0;
    int r = EVP_PKEY_eq(pub, key);
    ERR_clear_error();
    return r == 1;
}

int csr_create(EVP_PKEY *key, const char *id_str, char **csr_pem_out, mesh_err *err)
{
    *csr_pem_out = NULL;
    int rc = spiffe_id_parse(id_str, NULL, err);
    if (rc != MESH_OK)
        return rc;
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    X509_EXTENSION *ext = NULL;
    BIO *bio = NULL;
    rc = MESH_ECRYPTO;
    if (!req || !exts || !gens || !gen || !ia5) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto out;
    }
    if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
        ASN1_STRING_set(ia5, id_str, (int)strlen(id_str)) != 1) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot build CSR");
        goto out;
    }
    GENERAL_NAME_set0_value(gen, GEN_URI, ia5);
    ia5 = NULL;
    if (!sk_GENERAL_NAME_push(gens, gen)) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto out;
    }
    gen = NULL;
    /* Empty subject, so the SAN is critical (RFC 5280 4.2.1.6). */
    ext = X509V3_EXT_i2d(NID_subject_alt_name, 1, gens);
    if (!ext || !sk_X509_EXTENSION_push(exts, ext)) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot build CSR SAN extension");
        goto out;
    }
    ext = NULL;
    if (X509_REQ_add_extensions(req, exts) != 1) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot add CSR extensions");
        goto out;
    }
    if (X509_REQ_sign(req, key, ca_sign_digest(key)) <= 0) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot sign CSR");
        goto out;
    }
    bio = BIO_new(BIO_s_mem());
    if (!bio || PEM_write_bio_X509_REQ(bio, req) != 1) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot encode CSR");
        goto out;
    }
    rc = ca_bio_to_string(bio, csr_pem_out, err);
out:
    BIO_free(bio);
    X509_EXTENSION_free(ext);
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(gen);
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    return rc;
}

int pem_read_cert_chain(const char *pem, STACK_OF(X509) **out, mesh_err *err)
{
    *out = NULL;
    if (!pem || !pem[0])
        return mesh_err_set(err, MESH_EINVAL, "certificate PEM is empty");
    if (strnlen(pem, PEM_INPUT_MAX + 1) > PEM_INPUT_MAX)
        return mesh_err_set(err, MESH_EINVAL, "certificate PEM is larger than %d bytes",
                            PEM_INPUT_MAX);
    STACK_OF(X509) *sk = sk_X509_new_null();
    if (!sk)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    /* Walk the text block by block so a damaged block is an error rather
     * than the silent end of the chain that PEM_read_bio_X509 would give. */
    const char *begin_tag = "-----BEGIN CERTIFICATE-----";
    const char *end_tag = "-----END CERTIFICATE-----";
    const char *p = pem;
    int rc = MESH_OK;
    while ((p = strstr(p, begin_tag)) != NULL) {
        const char *e = strstr(p, end_tag);
        if (!e) {
            rc = mesh_err_set(err, MESH_EINVAL,
                              "certificate %d in PEM is truncated (no END CERTIFICATE line)",
                              sk_X509_num(sk) + 1);
            break;
        }
        e += strlen(end_tag);
        BIO *bio = BIO_new_mem_buf(p, (int)(e - p));
        X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (!x) {
            ERR_clear_error();
            rc = mesh_err_set(err, MESH_EINVAL, "certificate %d in PEM is not valid DER/base64",
                              sk_X509_num(sk) + 1);
            break;
        }
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
            break;
        }
        p = e;
    }
    if (rc == MESH_OK && sk_X509_num(sk) == 0)
        rc = mesh_err_set(err, MESH_EINVAL,
                          "no certificate found in PEM (expected -----BEGIN CERTIFICATE-----)");
    if (rc != MESH_OK) {
        sk_X509_pop_free(sk, X509_free);
        return rc;
    }
    *out = sk;
    return MESH_OK;
}

int pem_read_cert(const char *pem, X509 **out, mesh_err *err)
{
    *out = NULL;
    STACK_OF(X509) *sk = NULL;
    int rc = pem_read_cert_chain(pem, &sk, err);
    if (rc != MESH_OK)
        return rc;
    *out = sk_X509_shift(sk);
    sk_X509_pop_free(sk, X509_free);
    return MESH_OK;
}

int pem_write_cert(X509 *cert, char **pem_out, mesh_err *err)
{
    *pem_out = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    int rc;
    if (PEM_write_bio_X509(bio, cert) != 1)
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot encode certificate");
    else
        rc = ca_bio_to_string(bio, pem_out, err);
    BIO_free(bio);
    return rc;
}

int cert_spiffe_id(X509 *cert, char *buf, size_t len, mesh_err *err)
{
    int crit = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    if (!gens) {
        ERR_clear_error();
        return mesh_err_set(err, MESH_EINVAL,
                            crit == -2 ? "certificate has more than one SAN extension"
                                       : "certificate has no subject alternative name");
    }
    int uris = 0;
    int rc = MESH_OK;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI)
            continue;
        uris++;
        if (uris > 1)
            continue;
        const ASN1_IA5STRING *s = g->d.uniformResourceIdentifier;
        int n = ASN1_STRING_length(s);
        const unsigned char *d = ASN1_STRING_get0_data(s);
        if (n < 0 || (size_t)n >= len || memchr(d, '\0', (size_t)n)) {
            rc = mesh_err_set(err, MESH_EINVAL, "certificate URI SAN is %d bytes; expected at most %zu",
                              n, len - 1);
            continue;
        }
        memcpy(buf, d, (size_t)n);
        buf[n] = '\0';
    }
    GENERAL_NAMES_free(gens);
    if (uris == 0)
        return mesh_err_set(err, MESH_EINVAL, "certificate has no URI SAN (not an X.509-SVID)");
    if (uris > 1)
        return mesh_err_set(err, MESH_EINVAL,
                            "certificate has %d URI SANs; an X.509-SVID has exactly one", uris);
    return rc;
}

int cert_serial_hex(X509 *cert, char *buf, size_t len, mesh_err *err)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    if (!bn)
        return mesh_err_openssl(err, MESH_ECRYPTO, "cannot read certificate serial");
    char *hex = BN_bn2hex(bn);
    BN_free(bn);
    if (!hex)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    size_t n = strlen(hex);
    int rc = MESH_OK;
    if (n >= len) {
        rc = mesh_err_set(err, MESH_EINVAL, "certificate serial is too long (%zu hex digits)", n);
    } else {
        for (size_t i = 0; i <= n; i++)
            buf[i] = (hex[i] >= 'A' && hex[i] <= 'F') ? (char)(hex[i] - 'A' + 'a') : hex[i];
    }
    OPENSSL_free(hex);
    return rc;
}

int asn1_time_to_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

int cert_validity(X509 *cert, int64_t *not_before, int64_t *not_after, mesh_err *err)
{
    int64_t nb = 0, na = 0;
    if (asn1_time_to_unix(X509_get0_notBefore(cert), &nb) != 0 ||
        asn1_time_to_unix(X509_get0_notAfter(cert), &na) != 0)
        return mesh_err_set(err, MESH_EINVAL, "certificate has a malformed validity time");
    if (not_before)
        *not_before = nb;
    if (not_after)
        *not_after = na;
    return MESH_OK;
}

int cert_pem_info(const char *pem, char *id_out, size_t id_out_len, char *serial_hex,
                  size_t serial_len, int64_t *not_before, int64_t *not_after, mesh_err *err)
{
    X509 *x = NULL;
    int rc = pem_read_cert(pem, &x, err);
    if (rc != MESH_OK)
        return rc;
    if (id_out)
        rc = cert_spiffe_id(x, id_out, id_out_len, err);
    if (rc == MESH_OK && serial_hex)
        rc = cert_serial_hex(x, serial_hex, serial_len, err);
    if (rc == MESH_OK && (not_before || not_after))
        rc = cert_validity(x, not_before, not_after, err);
    X509_free(x);
    return rc;
}
