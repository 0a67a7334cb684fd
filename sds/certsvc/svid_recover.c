/* sds/certsvc/svid_recover.c — expired-SVID recovery checks (see svid_recover.h). */
#include "sds/certsvc/svid_recover.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"
#include "ca/ca_revoke.h"
#include "ca/csr.h"
#include "common/mgrpc.h"

#define CSR_PEM_MAX (64 * 1024)

int svid_b64_decode(const char *in, char **out, size_t *len_out, mesh_err *err)
{
    *out = NULL;
    *len_out = 0;
    size_t inlen = strlen(in);
    if (inlen == 0)
        return mesh_err_set(err, MESH_EINVAL, "%s is empty", "x-meshd-expired-svid");
    if (inlen > SVID_RECOVER_MAX_B64)
        return mesh_err_set(err, MESH_EINVAL, "x-meshd-expired-svid is larger than %d bytes",
                            SVID_RECOVER_MAX_B64);
    /* Accept only the standard alphabet plus whitespace: EVP_Decode would
     * also skip some other bytes, and we want a crisp error instead. */
    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=' || c == ' ' || c == '\n' || c == '\r' ||
              c == '\t'))
            return mesh_err_set(err, MESH_EINVAL,
                                "x-meshd-expired-svid is not base64 (byte %zu); send the base64 "
                                "of the SVID's PEM",
                                i);
    }
    unsigned char *buf = malloc(inlen / 4 * 3 + 8);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    if (!buf || !ctx) {
        free(buf);
        EVP_ENCODE_CTX_free(ctx);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory decoding base64");
    }
    int n1 = 0, n2 = 0;
    EVP_DecodeInit(ctx);
    int ok = EVP_DecodeUpdate(ctx, buf, &n1, (const unsigned char *)in, (int)inlen) >= 0 &&
             EVP_DecodeFinal(ctx, buf + n1, &n2) == 1;
    EVP_ENCODE_CTX_free(ctx);
    if (!ok) {
        free(buf);
        ERR_clear_error();
        return mesh_err_set(err, MESH_EINVAL, "x-meshd-expired-svid is not valid base64");
    }
    size_t len = (size_t)n1 + (size_t)n2;
    buf[len] = '\0';
    *out = (char *)buf;
    *len_out = len;
    return MESH_OK;
}

/* Bundle roots as trust anchors, every non-removed CA cert and its chain as
 * untrusted intermediates: the SVID may come from any CA we run or ran. */
static int build_verify_store(mesh_store *st, X509_STORE **store_out,
                              STACK_OF(X509) **untrusted_out, mesh_err *err)
{
    *store_out = NULL;
    *untrusted_out = NULL;
    char *bundle = NULL;
    STACK_OF(X509) *roots = NULL;
    store_ca *cas = NULL;
    size_t n_cas = 0;
    X509_STORE *xs = X509_STORE_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int rc = MESH_OK;
    if (!xs || !untrusted) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = ca_bundle_pem(st, &bundle, err)) != MESH_OK ||
        (rc = pem_read_cert_chain(bundle, &roots, err)) != MESH_OK)
        goto out;
    for (int i = 0; i < sk_X509_num(roots); i++) {
        if (X509_STORE_add_cert(xs, sk_X509_value(roots, i)) != 1) {
            rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot load the trust bundle");
            goto out;
        }
    }
    if ((rc = store_ca_list(st, &cas, &n_cas, err)) != MESH_OK)
        goto out;
    for (size_t i = 0; i < n_cas; i++) {
        if (strcmp(cas[i].state, "removed") == 0)
            continue;
        const char *pems[2] = {cas[i].cert_pem, cas[i].chain_pem};
        for (int k = 0; k < 2; k++) {
            if (!pems[k] || !pems[k][0])
                continue;
            STACK_OF(X509) *sk = NULL;
            if ((rc = pem_read_cert_chain(pems[k], &sk, err)) != MESH_OK)
                goto out;
            while (sk_X509_num(sk) > 0) {
                X509 *x = sk_X509_shift(sk);
                if (!sk_X509_push(untrusted, x)) {
                    X509_free(x);
                    sk_X509_pop_free(sk, X509_free);
                    rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
                    goto out;
                }
            }
            sk_X509_free(sk);
        }
    }
    *store_out = xs;
    *untrusted_out = untrusted;
    xs = NULL;
    untrusted = NULL;
out:
    X509_STORE_free(xs);
    sk_X509_pop_free(untrusted, X509_free);
    sk_X509_pop_free(roots, X509_free);
    store_ca_free_list(cas, n_cas);
    free(bundle);
    return rc;
}

static int verify_chain_ignoring_time(mesh_store *st, X509 *leaf, mesh_err *err)
{
    X509_STORE *xs = NULL;
    STACK_OF(X509) *untrusted = NULL;
    int rc = build_verify_store(st, &xs, &untrusted, err);
    if (rc != MESH_OK)
        return rc;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!ctx || X509_STORE_CTX_init(ctx, xs, leaf, untrusted) != 1) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot set up certificate verification");
    } else {
        X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
        if (X509_verify_cert(ctx) != 1) {
            int e = X509_STORE_CTX_get_error(ctx);
            rc = mesh_err_set(err, MESH_EPERM,
                              "the expired SVID was not issued by this mesh's CAs (%s)",
                              X509_verify_cert_error_string(e));
        }
    }
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(xs);
    sk_X509_pop_free(untrusted, X509_free);
    return rc;
}

static int csr_pubkey(const char *csr_pem, EVP_PKEY **out, mesh_err *err)
{
    *out = NULL;
    if (!csr_pem || !csr_pem[0])
        return mesh_err_set(err, MESH_EINVAL, "CSR is empty");
    if (strnlen(csr_pem, CSR_PEM_MAX + 1) > CSR_PEM_MAX)
        return mesh_err_set(err, MESH_EINVAL, "CSR is larger than %d bytes", CSR_PEM_MAX);
    BIO *bio = BIO_new_mem_buf(csr_pem, -1);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!req) {
        ERR_clear_error();
        return mesh_err_set(err, MESH_EINVAL, "CSR is not a valid PEM PKCS#10 request");
    }
    EVP_PKEY *pk = X509_REQ_get_pubkey(req);
    int sig_ok = pk && X509_REQ_verify(req, pk) == 1;
    X509_REQ_free(req);
    ERR_clear_error();
    if (!sig_ok) {
        EVP_PKEY_free(pk);
        return mesh_err_set(err, MESH_EINVAL, "CSR signature does not verify");
    }
    *out = pk;
    return MESH_OK;
}

static const char *fmt_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

int svid_recover_check(mesh_store *st, const char *svid_b64, const char *csr_pem, int64_t now,
                       int64_t grace, svid_recover_result *out, grpc_status_code *status,
                       mesh_err *err)
{
    memset(out, 0, sizeof *out);
    *status = GRPC_STATUS_UNAUTHENTICATED;
    char *pem = NULL;
    size_t pem_len;
    X509 *cert = NULL;
    EVP_PKEY *csr_key = NULL;
    store_cert rec;
    memset(&rec, 0, sizeof rec);
    store_registration reg;
    memset(&reg, 0, sizeof reg);
    int64_t nb = 0, na = 0;
    char t1[32];
    int rc = svid_b64_decode(svid_b64, &pem, &pem_len, err);
    if (rc != MESH_OK)
        goto out;
    if ((rc = pem_read_cert(pem, &cert, err)) != MESH_OK) {
        mesh_err_prefix(err, "x-meshd-expired-svid");
        goto out;
    }
    if ((rc = cert_spiffe_id(cert, out->spiffe_id, sizeof out->spiffe_id, err)) != MESH_OK ||
        (rc = cert_serial_hex(cert, out->serial_hex, sizeof out->serial_hex, err)) != MESH_OK ||
        (rc = cert_validity(cert, &nb, &na, err)) != MESH_OK) {
        mesh_err_prefix(err, "x-meshd-expired-svid");
        goto out;
    }
    out->not_after = na;
    /* Who is asking, first: the chain, then possession of its key. Until
     * both hold, the identity in the cert is only a claim. */
    if ((rc = verify_chain_ignoring_time(st, cert, err)) != MESH_OK) {
        if (rc != MESH_EPERM)
            *status = GRPC_STATUS_INTERNAL;
        goto out;
    }
    if ((rc = csr_pubkey(csr_pem, &csr_key, err)) != MESH_OK) {
        *status = GRPC_STATUS_INVALID_ARGUMENT;
        goto out;
    }
    if (EVP_PKEY_eq(csr_key, X509_get0_pubkey(cert)) != 1) {
        ERR_clear_error();
        *status = GRPC_STATUS_PERMISSION_DENIED;
        rc = mesh_err_set(err, MESH_EPERM,
                          "the CSR is not signed by the expired SVID's key; recovery needs a "
                          "CSR made with the same private key");
        goto out;
    }
    out->verified = 1;
    if (na + grace < now) {
        rc = mesh_err_set(err, MESH_EEXPIRED,
                          "SVID %s of %s expired at %s, more than %lld days ago: the recovery "
                          "window is closed; issue a new join token with 'meshctl workload token'",
                          out->serial_hex, out->spiffe_id, fmt_time(na, t1, sizeof t1),
                          (long long)(grace / 86400));
        goto out;
    }
    rc = store_cert_get(st, out->serial_hex, &rec, err);
    if (rc == MESH_ENOTFOUND) {
        rc = mesh_err_set(err, MESH_EPERM, "SVID serial %s is not in meshd's issuance record",
                          out->serial_hex);
        goto out;
    }
    if (rc != MESH_OK) {
        *status = mgrpc_status_from_mesh(rc, MGRPC_FAULT_SERVER);
        goto out;
    }
    char spki[65];
    if ((rc = pubkey_sha256_hex(X509_get0_pubkey(cert), spki, err)) != MESH_OK) {
        *status = GRPC_STATUS_INTERNAL;
        goto out;
    }
    if (strcmp(rec.spiffe_id, out->spiffe_id) != 0 || strcmp(rec.pubkey_sha256, spki) != 0) {
        rc = mesh_err_set(err, MESH_EPERM,
                          "SVID serial %s does not match meshd's record of it (identity or key "
                          "differs)",
                          out->serial_hex);
        goto out;
    }
    if (rec.revoked) {
        *status = GRPC_STATUS_PERMISSION_DENIED;
        rc = mesh_err_set(err, MESH_EPERM, "SVID serial %s of %s was revoked (%s); recovery refused",
                          out->serial_hex, out->spiffe_id,
                          rec.revoke_reason && rec.revoke_reason[0] ? rec.revoke_reason
                                                                    : "no reason given");
        goto out;
    }
    /* An expired sibling of a compromised key was not revoked (only
     * unexpired certs are), but its key is on the list. */
    if ((rc = ca_key_check_usable(st, spki, err)) != MESH_OK) {
        *status = rc == MESH_EPERM ? GRPC_STATUS_PERMISSION_DENIED
                                   : mgrpc_status_from_mesh(rc, MGRPC_FAULT_SERVER);
        goto out;
    }
    snprintf(out->instance, sizeof out->instance, "%s", rec.instance ? rec.instance : "");
    rc = store_registration_get(st, out->instance, out->spiffe_id, &reg, err);
    if (rc == MESH_ENOTFOUND) {
        *status = GRPC_STATUS_PERMISSION_DENIED;
        if (out->instance[0])
            rc = mesh_err_set(err, MESH_EPERM,
                              "instance %s of %s is no longer registered; recovery refused",
                              out->instance, out->spiffe_id);
        else
            rc = mesh_err_set(err, MESH_EPERM, "%s is no longer registered; recovery refused",
                              out->spiffe_id);
        goto out;
    }
    if (rc != MESH_OK) {
        *status = mgrpc_status_from_mesh(rc, MGRPC_FAULT_SERVER);
        goto out;
    }
    *status = GRPC_STATUS_OK;
out:
    store_registration_free(&reg);
    store_cert_free(&rec);
    EVP_PKEY_free(csr_key);
    X509_free(cert);
    free(pem);
    return rc;
}
