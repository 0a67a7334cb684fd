/* ca/ca_revoke.c — revocation reasons, revoking (keyCompromise revokes the
 * key) and the compromised-key check of every issuance (see ca_revoke.h).
 * The CRLs are ca_crl.c. */
#include "ca/ca_revoke.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ca/ca_internal.h"
#include "ca/csr.h"

static const struct {
    int code;
    const char *name;
} reasons[] = {
    {CA_REASON_UNSPECIFIED, "unspecified"},
    {CA_REASON_KEY_COMPROMISE, "keyCompromise"},
    {CA_REASON_CA_COMPROMISE, "cACompromise"},
    {CA_REASON_AFFILIATION_CHANGED, "affiliationChanged"},
    {CA_REASON_SUPERSEDED, "superseded"},
    {CA_REASON_CESSATION_OF_OPERATION, "cessationOfOperation"},
    {CA_REASON_PRIVILEGE_WITHDRAWN, "privilegeWithdrawn"},
    {CA_REASON_AA_COMPROMISE, "aACompromise"},
};
#define N_REASONS (sizeof reasons / sizeof reasons[0])

int ca_revoke_reason_parse(const char *name, int *code_out, mesh_err *err)
{
    if (!name || !name[0]) {
        *code_out = CA_REASON_UNSPECIFIED;
        return MESH_OK;
    }
    for (size_t i = 0; i < N_REASONS; i++) {
        if (strcasecmp(name, reasons[i].name) == 0) {
            *code_out = reasons[i].code;
            return MESH_OK;
        }
    }
    char q[80];
    return mesh_err_set(err, MESH_EINVAL,
                        "revocation reason '%s' is not one of RFC 5280's: unspecified, "
                        "keyCompromise, cACompromise, affiliationChanged, superseded, "
                        "cessationOfOperation, privilegeWithdrawn, aACompromise",
                        ca_quote(name, q, sizeof q));
}

const char *ca_revoke_reason_name(int code)
{
    for (size_t i = 0; i < N_REASONS; i++)
        if (reasons[i].code == code)
            return reasons[i].name;
    return "unspecified";
}

int ca_revoke_reason_code(const char *stored)
{
    int code = CA_REASON_UNSPECIFIED;
    if (ca_revoke_reason_parse(stored, &code, NULL) != MESH_OK)
        return CA_REASON_UNSPECIFIED;
    return code;
}

void ca_revoke_result_free(ca_revoke_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_serials; i++)
        free(r->serials[i]);
    free(r->serials);
    memset(r, 0, sizeof *r);
}

static int add_serial(ca_revoke_result *r, const char *serial, mesh_err *err)
{
    char **v = realloc(r->serials, (r->n_serials + 1) * sizeof *v);
    if (!v)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    r->serials = v;
    if (!(v[r->n_serials] = strdup(serial)))
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    r->n_serials++;
    return MESH_OK;
}

/* One audit row per revoked serial: meshd's watcher reads them as its change
 * feed (the subject names the certificate). */
static int audit_revoke(mesh_store *st, const char *actor, const store_cert *c, int code,
                        const char *via, mesh_err *err)
{
    char detail[768];
    snprintf(detail, sizeof detail, "reason=%s id=%s key=sha256:%.16s%s%s",
             ca_revoke_reason_name(code), c->spiffe_id, c->pubkey_sha256, via ? " via=" : "",
             via ? via : "");
    return store_audit(st, actor, "cert.revoke", c->serial_hex, detail, 1, err);
}

/* Every other unexpired cert of the key, then the key itself. */
static int revoke_key(mesh_store *st, const store_cert *named, const char *actor, int64_t now,
                      ca_revoke_result *out, mesh_err *err)
{
    store_cert *list = NULL;
    size_t n = 0;
    int rc = store_cert_list_by_pubkey(st, named->pubkey_sha256, now, &list, &n, err);
    for (size_t i = 0; rc == MESH_OK && i < n; i++) {
        if (list[i].revoked || strcmp(list[i].serial_hex, named->serial_hex) == 0)
            continue;
        if ((rc = store_cert_revoke(st, list[i].serial_hex, "keyCompromise", now, err)) ==
                MESH_OK &&
            (rc = audit_revoke(st, actor, &list[i], CA_REASON_KEY_COMPROMISE,
                               named->serial_hex, err)) == MESH_OK)
            rc = add_serial(out, list[i].serial_hex, err);
    }
    store_cert_free_list(list, n);
    if (rc != MESH_OK)
        return rc;
    rc = store_key_compromised_add(st, named->pubkey_sha256, named->serial_hex,
                                   named->spiffe_id, now, err);
    if (rc == MESH_EEXISTS)
        return MESH_OK;     /* reported before through another of its certificates */
    if (rc != MESH_OK)
        return rc;
    out->key_recorded = 1;
    char detail[256];
    snprintf(detail, sizeof detail, "serial=%s id=%s", named->serial_hex, named->spiffe_id);
    return store_audit(st, actor, "key.compromised", named->pubkey_sha256, detail, 1, err);
}

/* What the operator needs to know next: which valid certs the identity keeps. */
static int count_remaining(mesh_store *st, const store_cert *named, int64_t now,
                           ca_revoke_result *out, mesh_err *err)
{
    store_cert *list = NULL;
    size_t n = 0;
    int rc = store_cert_list(st, named->spiffe_id, 0, now, &list, &n, err);
    for (size_t i = 0; rc == MESH_OK && i < n; i++) {
        if (list[i].revoked || list[i].not_after <= now)
            continue;
        if (strcmp(list[i].pubkey_sha256, named->pubkey_sha256) == 0)
            out->same_key_valid++;
        else
            out->other_key_valid++;
    }
    store_cert_free_list(list, n);
    return rc;
}

int ca_revoke(mesh_store *st, const char *serial_hex, const char *reason, const char *actor,
              int64_t now, ca_revoke_result *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    int code;
    int rc = ca_revoke_reason_parse(reason, &code, err);
    if (rc != MESH_OK)
        return rc;
    out->reason = code;
    actor = actor && actor[0] ? actor : "meshctl";
    if ((rc = store_begin(st, err)) != MESH_OK)
        return mesh_err_prefix(err, "revoking certificate %s", serial_hex ? serial_hex : "?");
    store_cert c;
    memset(&c, 0, sizeof c);
    if ((rc = store_cert_get(st, serial_hex, &c, err)) != MESH_OK)
        goto fail;
    snprintf(out->spiffe_id, sizeof out->spiffe_id, "%s", c.spiffe_id);
    snprintf(out->pubkey_sha256, sizeof out->pubkey_sha256, "%s", c.pubkey_sha256);
    if (c.revoked) {
        /* A compromise found after a revocation for another reason still has
         * to revoke the key; anything else is a repeat. */
        store_compromised_key known;
        int have = store_key_compromised_get(st, c.pubkey_sha256, &known, NULL) == MESH_OK;
        store_compromised_key_free(&known);
        if (code != CA_REASON_KEY_COMPROMISE || have) {
            char when[32];
            rc = mesh_err_set(err, MESH_EEXISTS, "certificate %s was already revoked at %s (%s)",
                              c.serial_hex, ca_fmt_time(c.revoked_at, when, sizeof when),
                              c.revoke_reason[0] ? c.revoke_reason : "no reason given");
            goto fail;
        }
        rc = store_cert_set_revoke_reason(st, c.serial_hex, "keyCompromise", err);
    } else {
        rc = store_cert_revoke(st, c.serial_hex, ca_revoke_reason_name(code), now, err);
    }
    if (rc == MESH_OK)
        rc = audit_revoke(st, actor, &c, code, NULL, err);
    if (rc == MESH_OK)
        rc = add_serial(out, c.serial_hex, err);
    if (rc == MESH_OK && code == CA_REASON_KEY_COMPROMISE)
        rc = revoke_key(st, &c, actor, now, out, err);
    if (rc == MESH_OK)
        rc = count_remaining(st, &c, now, out, err);
    if (rc != MESH_OK || (rc = store_commit(st, err)) != MESH_OK)
        goto fail;
    store_cert_free(&c);
    return MESH_OK;
fail:
    store_rollback(st);
    store_cert_free(&c);
    ca_revoke_result_free(out);
    return rc;
}

int ca_key_check_usable(mesh_store *st, const char *spki_sha256_hex, mesh_err *err)
{
    store_compromised_key k;
    int rc = store_key_compromised_get(st, spki_sha256_hex, &k, err);
    if (rc == MESH_ENOTFOUND)
        return MESH_OK;
    if (rc != MESH_OK)
        return rc;
    char when[32];
    rc = mesh_err_set(err, MESH_EPERM,
                      "public key sha256:%.16s... was reported compromised at %s (certificate "
                      "%s of %s revoked with reason keyCompromise); meshd never certifies it "
                      "again: the workload needs a new key, and without another valid SVID a "
                      "new join token ('meshctl workload token %s')",
                      spki_sha256_hex, ca_fmt_time(k.reported_at, when, sizeof when),
                      k.serial_hex, k.spiffe_id, k.spiffe_id);
    store_compromised_key_free(&k);
    return rc;
}

int ca_csr_key_check_usable(mesh_store *st, const char *csr_pem, mesh_err *err)
{
    BIO *bio = csr_pem ? BIO_new_mem_buf(csr_pem, -1) : NULL;
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!req) {
        ERR_clear_error();
        return mesh_err_set(err, MESH_EINVAL, "CSR is not a valid PEM PKCS#10 request");
    }
    /* Hashed the way the store records keys (the canonical SPKI encoding),
     * whatever encoding the CSR used. */
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    char hex[65];
    int rc = pk ? pubkey_sha256_hex(pk, hex, err)
                : mesh_err_set(err, MESH_EINVAL, "the CSR's public key does not parse");
    X509_REQ_free(req);
    ERR_clear_error();
    if (rc == MESH_OK)
        rc = ca_key_check_usable(st, hex, err);
    return rc;
}
