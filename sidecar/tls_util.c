/* sidecar/tls_util.c — X.509/TLS helpers (see tls_util.h). */
#include "sidecar/tls_util.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sidecar/dp_spiffe.h"

int tls_cert_spiffe_id(X509 *x, char *buf, size_t len, mesh_err *err)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (!sans)
        return mesh_err_set(err, MESH_EINVAL, "certificate has no subjectAltName (not an "
                            "X.509-SVID)");
    int n_uri = 0;
    const ASN1_IA5STRING *uri = NULL;
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type == GEN_URI) {
            n_uri++;
            uri = gn->d.uniformResourceIdentifier;
        }
    }
    int rc = MESH_OK;
    if (n_uri != 1) {
        rc = mesh_err_set(err, MESH_EINVAL, "certificate has %d URI SANs; an X.509-SVID has "
                          "exactly one", n_uri);
    } else {
        int ul = ASN1_STRING_length(uri);
        const unsigned char *ud = ASN1_STRING_get0_data(uri);
        if (ul <= 0 || (size_t)ul >= len || memchr(ud, '\0', (size_t)ul)) {
            rc = mesh_err_set(err, MESH_EINVAL, "certificate URI SAN is empty or too long");
        } else {
            memcpy(buf, ud, (size_t)ul);
            buf[ul] = '\0';
            mesh_err e;
            if (dp_spiffe_check(buf, NULL, 0, &e) != MESH_OK) {
                rc = mesh_err_set(err, MESH_EINVAL, "certificate URI SAN: %s", e.msg);
                buf[0] = '\0';
            }
        }
    }
    GENERAL_NAMES_free(sans);
    return rc;
}

int64_t tls_asn1_time_unix(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

int64_t tls_cert_not_before(const X509 *x) { return tls_asn1_time_unix(X509_get0_notBefore(x)); }
int64_t tls_cert_not_after(const X509 *x) { return tls_asn1_time_unix(X509_get0_notAfter(x)); }

void tls_cert_serial_hex(const X509 *x, char *buf, size_t len)
{
    buf[0] = '\0';
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    if (!bn)
        return;
    char *hex = BN_bn2hex(bn);
    if (hex) {
        size_t i = 0;
        for (; hex[i] && i + 1 < len; i++)
            buf[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
        buf[i] = '\0';
        OPENSSL_free(hex);
    }
    BN_free(bn);
}

void tls_cert_subject(const X509 *x, char *buf, size_t len)
{
    buf[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    int n = BIO_read(b, buf, (int)len - 1);
    buf[n > 0 ? n : 0] = '\0';
    BIO_free(b);
}

static void hex_sha256(const unsigned char md[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[64] = '\0';
}

void tls_cert_sha256(X509 *x, char out[65])
{
    unsigned char md[32];
    unsigned int ml = 0;
    out[0] = '\0';
    if (X509_digest(x, EVP_sha256(), md, &ml) == 1 && ml == 32)
        hex_sha256(md, out);
}

int tls_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int ml = 0;
    out[0] = '\0';
    if (EVP_Digest(data, len, md, &ml, EVP_sha256(), NULL) != 1 || ml != 32)
        return MESH_ECRYPTO;
    hex_sha256(md, out);
    return MESH_OK;
}

int tls_parse_certs(const char *pem, const char *what, STACK_OF(X509) **out, mesh_err *err)
{
    if (!pem || !*pem)
        return mesh_err_set(err, MESH_EINVAL, "%s: empty (expected PEM certificates)", what);
    BIO *b = BIO_new_mem_buf(pem, -1);
    STACK_OF(X509) *sk = sk_X509_new_null();
    if (!b || !sk) {
        BIO_free(b);
        sk_X509_free(sk);
        return mesh_err_set(err, MESH_ENOMEM, "%s: out of memory", what);
    }
    ERR_clear_error();
    for (;;) {
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
            break;
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            break;
        }
    }
    BIO_free(b);
    int rc = tls_pem_read_verdict(sk_X509_num(sk), what, "certificate", "certificate", err);
    if (rc != MESH_OK) {
        sk_X509_pop_free(sk, X509_free);
        return rc;
    }
    *out = sk;
    return MESH_OK;
}

int tls_pem_read_verdict(int n_read, const char *what, const char *none_noun, const char *noun,
                         mesh_err *err)
{
    /* PEM_read ends with "no start line" at a clean end; anything else means
     * a block that did not parse. */
    unsigned long e = ERR_peek_last_error();
    bool clean_end = ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    if (n_read > 0 && (!e || clean_end)) {
        ERR_clear_error();
        return MESH_OK;
    }
    if (n_read == 0 && (clean_end || !e)) {
        ERR_clear_error();
        return mesh_err_set(err, MESH_EINVAL, "%s: no PEM %s found", what, none_noun);
    }
    char msg[200];
    snprintf(msg, sizeof msg, "%s: %s %d does not parse", what, noun, n_read + 1);
    return mesh_err_openssl(err, MESH_EINVAL, msg);
}

int tls_parse_key(const char *pem, const char *what, EVP_PKEY **out, mesh_err *err)
{
    if (!pem || !*pem)
        return mesh_err_set(err, MESH_EINVAL, "%s: empty (expected a PEM private key)", what);
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (!b)
        return mesh_err_set(err, MESH_ENOMEM, "%s: out of memory", what);
    /* No passphrase callback: a prompt would hang a daemon. */
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
    BIO_free(b);
    if (!k) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s: private key does not parse", what);
        return mesh_err_openssl(err, MESH_EINVAL, msg);
    }
    *out = k;
    return MESH_OK;
}

static char *bio_to_string(BIO *b)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (s) {
        if (n > 0)
            memcpy(s, data, (size_t)n);
        s[n > 0 ? n : 0] = '\0';
    }
    return s;
}

char *tls_certs_to_pem(STACK_OF(X509) *certs)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return NULL;
    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (PEM_write_bio_X509(b, sk_X509_value(certs, i)) != 1) {
            BIO_free(b);
            return NULL;
        }
    }
    char *s = bio_to_string(b);
    BIO_free(b);
    return s;
}

char *tls_key_to_pem(EVP_PKEY *key)
{
    /* A secure-heap-free mem BIO: wipe it ourselves before freeing. */
    BIO *b = BIO_new(BIO_s_secmem());
    if (!b)
        return NULL;
    char *s = NULL;
    if (PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1)
        s = bio_to_string(b);
    BIO_free(b);
    return s;
}

void tls_format_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(buf, len, "?");
        return;
    }
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t tls_conn_deadline(SSL *ssl)
{
    int64_t d = INT64_MAX;
    X509 *local = SSL_get_certificate(ssl);
    if (local) {
        int64_t na = tls_cert_not_after(local);
        if (na > 0 && na < d)
            d = na;
    }
    STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
    for (int i = 0; chain && i < sk_X509_num(chain); i++) {
        int64_t na = tls_cert_not_after(sk_X509_value(chain, i));
        if (na > 0 && na < d)
            d = na;
    }
    return d;
}

int tls_peer_spiffe_id(SSL *ssl, char *buf, size_t len, mesh_err *err)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (!peer)
        return mesh_err_set(err, MESH_EPERM, "peer presented no certificate");
    return tls_cert_spiffe_id(peer, buf, len, err);
}
