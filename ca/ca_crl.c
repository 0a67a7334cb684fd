/* ca/ca_crl.c — the signed CRL of each CA in the bundle (see ca_revoke.h).
 *
 * Profile (RFC 5280 section 5): v2, issuer = the CA's subject, thisUpdate
 * backdated CA_BACKDATE_SECONDS for clock skew, nextUpdate CA_CRL_VALIDITY
 * later, extensions authorityKeyIdentifier (the CA's SKI, when it has one)
 * and cRLNumber, one entry per revoked certificate of that CA that has not
 * been expired for more than CA_CRL_EXPIRED_MARGIN, with its revocation
 * time and a reasonCode unless the reason is unspecified. Signed with
 * SHA-256 (SHA-384 for a P-384 CA), as the CA signs leaves. */
#include "ca/ca_revoke.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_internal.h"
#include "ca/csr.h"
#include "common/log.h"

static int in_bundle(const store_ca *c)
{
    return strcmp(c->state, CA_STATE_REMOVED) != 0;
}

/* A CA certificate with a keyUsage that lacks cRLSign cannot sign CRLs that
 * verifiers accept (OpenSSL: "key usage does not include CRL signing"). */
static int may_sign_crls(X509 *cert)
{
    uint32_t flags = X509_get_extension_flags(cert);
    return !(flags & EXFLAG_KUSAGE) || (X509_get_key_usage(cert) & KU_CRL_SIGN);
}

/* SHA-256 over "serial revoked_at reason\n" per entry (entries by serial). */
static int entries_digest(const store_cert *e, size_t n, char out_hex[65], mesh_err *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; ok && i < n; i++) {
        char line[160];
        int l = snprintf(line, sizeof line, "%s %lld %d\n", e[i].serial_hex,
                         (long long)e[i].revoked_at, ca_revoke_reason_code(e[i].revoke_reason));
        ok = l > 0 && (size_t)l < sizeof line && EVP_DigestUpdate(md, line, (size_t)l) == 1;
    }
    unsigned char dig[32];
    unsigned int dl = 0;
    ok = ok && EVP_DigestFinal_ex(md, dig, &dl) == 1 && dl == sizeof dig;
    EVP_MD_CTX_free(md);
    if (!ok)
        return mesh_err_openssl(err, MESH_ECRYPTO, "hashing CRL entries");
    ca_hex(dig, sizeof dig, out_hex);
    return MESH_OK;
}

static int add_entry(X509_CRL *crl, const store_cert *e, mesh_err *err)
{
    X509_REVOKED *rev = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)e->revoked_at);
    ASN1_ENUMERATED *reason = NULL;
    int ok = rev && when && BN_hex2bn(&bn, e->serial_hex) > 0 &&
             (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
             X509_REVOKED_set_serialNumber(rev, serial) == 1 &&
             X509_REVOKED_set_revocationDate(rev, when) == 1;
    int code = ca_revoke_reason_code(e->revoke_reason);
    if (ok && code != CA_REASON_UNSPECIFIED)
        ok = (reason = ASN1_ENUMERATED_new()) != NULL && ASN1_ENUMERATED_set(reason, code) == 1 &&
             X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0) == 1;
    if (ok)
        ok = X509_CRL_add0_revoked(crl, rev) == 1;
    if (ok)
        rev = NULL;
    X509_REVOKED_free(rev);
    BN_free(bn);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(when);
    ASN1_ENUMERATED_free(reason);
    if (!ok)
        return mesh_err_openssl(err, MESH_ECRYPTO, "adding serial to the CRL");
    return MESH_OK;
}

static int add_crl_extensions(X509_CRL *crl, X509 *ca_cert, int64_t number, mesh_err *err)
{
    int ok = 1;
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca_cert);
    if (ski) {
        AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
        ok = akid && (akid->keyid = ASN1_OCTET_STRING_dup(ski)) != NULL &&
             X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) == 1;
        AUTHORITY_KEYID_free(akid);
    }
    ASN1_INTEGER *num = ok ? ASN1_INTEGER_new() : NULL;
    ok = ok && num && ASN1_INTEGER_set_int64(num, number) == 1 &&
         X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) == 1;
    ASN1_INTEGER_free(num);
    if (!ok)
        return mesh_err_openssl(err, MESH_ECRYPTO, "adding CRL extensions");
    return MESH_OK;
}

/* Builds and signs the CRL; *pem_out is malloc'd. */
static int sign_crl(X509 *ca_cert, EVP_PKEY *key, const store_cert *e, size_t n, int64_t number,
                    int64_t this_update, int64_t next_update, char **pem_out, mesh_err *err)
{
    *pem_out = NULL;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *tu = ASN1_TIME_set(NULL, (time_t)this_update);
    ASN1_TIME *nu = ASN1_TIME_set(NULL, (time_t)next_update);
    BIO *bio = NULL;
    int rc = MESH_OK;
    if (!crl || !tu || !nu || X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) != 1 ||
        X509_CRL_set1_lastUpdate(crl, tu) != 1 || X509_CRL_set1_nextUpdate(crl, nu) != 1) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "building the CRL");
        goto out;
    }
    for (size_t i = 0; i < n && rc == MESH_OK; i++)
        rc = add_entry(crl, &e[i], err);
    if (rc == MESH_OK)
        rc = add_crl_extensions(crl, ca_cert, number, err);
    if (rc != MESH_OK)
        goto out;
    X509_CRL_sort(crl);
    if (X509_CRL_sign(crl, key, ca_sign_digest(key)) <= 0) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "signing the CRL");
        goto out;
    }
    bio = BIO_new(BIO_s_mem());
    if (!bio || PEM_write_bio_X509_CRL(bio, crl) != 1) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "encoding the CRL");
        goto out;
    }
    rc = ca_bio_to_string(bio, pem_out, err);
out:
    BIO_free(bio);
    ASN1_TIME_free(tu);
    ASN1_TIME_free(nu);
    X509_CRL_free(crl);
    return rc;
}

/* Whether CA c's stored CRL is current; fills the entries it must list. */
static int crl_state(mesh_store *st, const store_ca *c, int64_t now, store_cert **entries,
                     size_t *n, char hex[65], store_crl *have, int *stale, mesh_err *err)
{
    *stale = 0;
    int rc = store_cert_list_revoked_for_ca(st, c->id, now - CA_CRL_EXPIRED_MARGIN, entries, n,
                                            err);
    if (rc == MESH_OK)
        rc = entries_digest(*entries, *n, hex, err);
    if (rc != MESH_OK)
        return rc;
    rc = store_crl_get(st, c->id, have, err);
    if (rc == MESH_ENOTFOUND) {
        *stale = 1;
        return MESH_OK;
    }
    if (rc != MESH_OK)
        return rc;
    *stale = strcmp(have->entries_sha256, hex) != 0 ||
             have->next_update - now < CA_CRL_RESIGN_BEFORE || have->this_update > now + 60;
    return MESH_OK;
}

/* Re-checks CA c under the write lock and signs its CRL when still needed. */
static int refresh_one(mesh_store *st, const store_ca *c, int64_t now, int *changed,
                       mesh_err *err)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    store_cert *entries = NULL;
    size_t n = 0;
    store_crl have;
    memset(&have, 0, sizeof have);
    char *pem = NULL;
    char hex[65];
    int stale = 0;
    int rc = store_begin(st, err);
    if (rc != MESH_OK)
        return rc;
    if ((rc = crl_state(st, c, now, &entries, &n, hex, &have, &stale, err)) != MESH_OK ||
        !stale)
        goto out;
    if ((rc = pem_read_cert(c->cert_pem, &cert, err)) != MESH_OK ||
        (rc = ca_keyfile_load(c->key_path, &key, err)) != MESH_OK) {
        mesh_err_prefix(err, "signing the CRL of CA #%lld", (long long)c->id);
        goto out;
    }
    store_crl row = {
        .ca_id = c->id,
        .crl_number = have.crl_number + 1,
        .this_update = now - CA_BACKDATE_SECONDS,
        .next_update = now + CA_CRL_VALIDITY,
        .n_entries = (int64_t)n,
        .entries_sha256 = hex,
    };
    if ((rc = sign_crl(cert, key, entries, n, row.crl_number, row.this_update, row.next_update,
                       &pem, err)) != MESH_OK)
        goto out;
    row.crl_pem = pem;
    char detail[160];
    snprintf(detail, sizeof detail, "ca=%lld crl_number=%lld entries=%zu", (long long)c->id,
             (long long)row.crl_number, n);
    if ((rc = store_crl_put(st, &row, err)) != MESH_OK ||
        (rc = store_audit(st, "meshd", "crl.sign", c->serial_hex, detail, 1, err)) != MESH_OK)
        goto out;
    rc = store_commit(st, err);
    if (rc == MESH_OK) {
        (*changed)++;
        log_info("ca", "signed CRL #%lld of CA #%lld with %zu revoked certificate(s)",
                 (long long)row.crl_number, (long long)c->id, n);
    }
out:
    if (rc != MESH_OK || !stale)
        store_rollback(st);
    free(pem);
    EVP_PKEY_free(key);
    X509_free(cert);
    store_crl_free(&have);
    store_cert_free_list(entries, n);
    return rc;
}

int ca_crl_refresh(mesh_store *st, int64_t now, int *changed_out, mesh_err *err)
{
    if (changed_out)
        *changed_out = 0;
    store_ca *cas = NULL;
    size_t n_cas = 0;
    int rc = store_ca_list(st, &cas, &n_cas, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "reading CAs for their CRLs");
    int changed = 0;
    for (size_t i = 0; i < n_cas && rc == MESH_OK; i++) {
        const store_ca *c = &cas[i];
        if (!in_bundle(c))
            continue;
        X509 *cert = NULL;
        if (pem_read_cert(c->cert_pem, &cert, NULL) != MESH_OK)
            continue;   /* ca_load reports a damaged CA; no CRL for it */
        int can = may_sign_crls(cert);
        X509_free(cert);
        if (!can) {
            log_debug("ca", "CA #%lld may not sign CRLs (keyUsage without cRLSign): its "
                      "revocations are enforced by meshd only", (long long)c->id);
            continue;
        }
        /* Read-only look first: the common case writes nothing. */
        store_cert *entries = NULL;
        size_t n = 0;
        store_crl have;
        memset(&have, 0, sizeof have);
        char hex[65];
        int stale = 0;
        rc = crl_state(st, c, now, &entries, &n, hex, &have, &stale, err);
        store_cert_free_list(entries, n);
        store_crl_free(&have);
        if (rc == MESH_OK && stale)
            rc = refresh_one(st, c, now, &changed, err);
    }
    store_ca_free_list(cas, n_cas);
    if (changed_out)
        *changed_out = changed;
    return rc;
}

int ca_crl_bundle_pem(mesh_store *st, char **pem_out, mesh_err *err)
{
    *pem_out = NULL;
    store_ca *cas = NULL;
    size_t n_cas = 0;
    store_crl *crls = NULL;
    size_t n_crls = 0;
    int rc = store_ca_list(st, &cas, &n_cas, err);
    if (rc == MESH_OK)
        rc = store_crl_list(st, &crls, &n_crls, err);
    size_t total = 1;
    for (size_t i = 0; rc == MESH_OK && i < n_crls; i++)
        total += strlen(crls[i].crl_pem) + 1;
    char *out = rc == MESH_OK ? malloc(total) : NULL;
    if (rc == MESH_OK && !out)
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
    if (rc == MESH_OK) {
        size_t off = 0;
        out[0] = '\0';
        for (size_t i = 0; i < n_crls; i++) {
            /* Only CAs still in the bundle: a removed CA's leaves are not
             * trusted at all, so its CRL has nothing left to say. */
            int keep = 0;
            for (size_t j = 0; j < n_cas; j++)
                keep |= cas[j].id == crls[i].ca_id && in_bundle(&cas[j]);
            if (!keep)
                continue;
            size_t l = strlen(crls[i].crl_pem);
            memcpy(out + off, crls[i].crl_pem, l);
            off += l;
            if (l && out[off - 1] != '\n')
                out[off++] = '\n';
            out[off] = '\0';
        }
        *pem_out = out;
    }
    store_ca_free_list(cas, n_cas);
    store_crl_free_list(crls, n_crls);
    return rc;
}
