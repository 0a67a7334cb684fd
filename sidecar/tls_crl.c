/* sidecar/tls_crl.c — X.509 CRL helpers and the handshake's revocation policy
 * (see tls_crl.h). OpenSSL 3 does the CRL matching and signature checks; this
 * decides which of its verdicts a mesh data plane must honour. */
#include "sidecar/tls_crl.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sidecar/tls_util.h"

int tls_parse_crls(const char *pem, STACK_OF(X509_CRL) **out, mesh_err *err)
{
    *out = NULL;
    STACK_OF(X509_CRL) *sk = sk_X509_CRL_new_null();
    if (!sk)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    if (!pem || !pem[0]) {
        *out = sk;
        return MESH_OK;
    }
    if (strstr(pem, "-----BEGIN ") && !strstr(pem, "-----BEGIN X509 CRL-----")) {
        sk_X509_CRL_free(sk);
        return mesh_err_set(err, MESH_EINVAL, "crl: holds PEM blocks but no X509 CRL");
    }
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (!b) {
        sk_X509_CRL_free(sk);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    ERR_clear_error();
    for (;;) {
        X509_CRL *crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
        if (!crl)
            break;
        if (!sk_X509_CRL_push(sk, crl)) {
            X509_CRL_free(crl);
            break;
        }
    }
    BIO_free(b);
    int rc = tls_pem_read_verdict(sk_X509_CRL_num(sk), "crl", "X509 CRL", "CRL", err);
    if (rc != MESH_OK) {
        sk_X509_CRL_pop_free(sk, X509_CRL_free);
        return rc;
    }
    *out = sk;
    return MESH_OK;
}

char *tls_crls_to_pem(STACK_OF(X509_CRL) *crls)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return NULL;
    for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
        if (PEM_write_bio_X509_CRL(b, sk_X509_CRL_value(crls, i)) != 1) {
            BIO_free(b);
            return NULL;
        }
    }
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (s) {
        if (n > 0)
            memcpy(s, data, (size_t)n);
        s[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    return s;
}

int64_t tls_crl_number(const X509_CRL *crl)
{
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    int64_t v = -1;
    if (!num || ASN1_INTEGER_get_int64(&v, num) != 1)
        v = -1;
    ASN1_INTEGER_free(num);
    ERR_clear_error();
    return v;
}

int64_t tls_crl_this_update(const X509_CRL *crl) { return tls_asn1_time_unix(X509_CRL_get0_lastUpdate(crl)); }
int64_t tls_crl_next_update(const X509_CRL *crl) { return tls_asn1_time_unix(X509_CRL_get0_nextUpdate(crl)); }

void tls_crl_issuer(const X509_CRL *crl, char *buf, size_t len)
{
    buf[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    X509_NAME_print_ex(b, X509_CRL_get_issuer(crl), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    int n = BIO_read(b, buf, (int)len - 1);
    buf[n > 0 ? n : 0] = '\0';
    BIO_free(b);
}

const char *tls_crl_reason_name(int code)
{
    switch (code) {
    case 1: return "keyCompromise";
    case 2: return "cACompromise";
    case 3: return "affiliationChanged";
    case 4: return "superseded";
    case 5: return "cessationOfOperation";
    case 6: return "certificateHold";
    case 8: return "removeFromCRL";
    case 9: return "privilegeWithdrawn";
    case 10: return "aACompromise";
    default: return "unspecified";
    }
}

X509_CRL *tls_crl_for(STACK_OF(X509_CRL) *crls, X509 *cert)
{
    for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
        X509_CRL *crl = sk_X509_CRL_value(crls, i);
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(cert)) == 0)
            return crl;
    }
    return NULL;
}

/* "certificate serial S of ID was revoked at T (reason)" for an entry. */
static void describe(X509 *cert, X509_REVOKED *rev, char *why, size_t len)
{
    char serial[80], id[512] = "", when[32];
    tls_cert_serial_hex(cert, serial, sizeof serial);
    if (tls_cert_spiffe_id(cert, id, sizeof id, NULL) != MESH_OK)
        snprintf(id, sizeof id, "a certificate without a SPIFFE ID");
    tls_format_time(tls_asn1_time_unix(X509_REVOKED_get0_revocationDate(rev)), when, sizeof when);
    int code = 0;
    ASN1_ENUMERATED *r = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
    if (r)
        code = (int)ASN1_ENUMERATED_get(r);
    ASN1_ENUMERATED_free(r);
    ERR_clear_error();
    snprintf(why, len, "certificate serial %s of %s was revoked at %s (%s)", serial, id, when,
             tls_crl_reason_name(code));
}

bool tls_crl_lists(X509_CRL *crl, X509 *cert, char *why, size_t len)
{
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(cert)) != 0)
        return false;
    X509_REVOKED *rev = NULL;
    if (X509_CRL_get0_by_cert(crl, &rev, cert) != 1 || !rev)
        return false;
    if (why && len)
        describe(cert, rev, why, len);
    return true;
}

int tls_crl_verify_cb(int ok, X509_STORE_CTX *ctx)
{
    if (ok)
        return ok;
    int e = X509_STORE_CTX_get_error(ctx);
    switch (e) {
    case X509_V_ERR_UNABLE_TO_GET_CRL:
        /* A CA of the bundle without a CRL (a CA meshd cannot sign CRLs
         * for, or a CRL not received yet): nothing of it is known revoked. */
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
        /* Freshness is not a reason to refuse: a stale CRL still lists what
         * it lists, and revocations are final (docs/security.md). */
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        return 1;
    case X509_V_ERR_CERT_REVOKED: {
        SSL *ssl = X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
        const tls_crl_hooks *h = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
        X509_CRL *crl = X509_STORE_CTX_get0_current_crl(ctx);
        X509 *cert = X509_STORE_CTX_get_current_cert(ctx);
        char why[768] = "certificate revoked";
        X509_REVOKED *rev = NULL;
        if (crl && cert && X509_CRL_get0_by_cert(crl, &rev, cert) == 1 && rev)
            describe(cert, rev, why, sizeof why);
        ERR_clear_error();
        if (h && h->refused)
            h->refused(h->arg, ssl && SSL_is_server(ssl), why);
        return 0;
    }
    default:
        return ok;
    }
}
