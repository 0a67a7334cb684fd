/* ca/ca_issue.c — loading the active CA and signing X.509-SVIDs.
 *
 * Leaf profile (SPIFFE X.509-SVID): empty subject with a critical SAN
 * holding exactly one URI (plus, only for meshd's own serving cert, DNS/IP
 * names the caller passes), basicConstraints critical CA:FALSE, keyUsage
 * critical digitalSignature (+keyEncipherment for RSA keys), EKU
 * serverAuth+clientAuth, SKI/AKI, random 128-bit serial, notBefore
 * backdated 10 s, notAfter never past the CA's (or its chain's) notAfter.
 *
 * The subject is left empty rather than copied from the CSR: identity lives
 * only in the URI SAN, and nothing the client wrote except its public key
 * reaches the certificate (Istio issues the same shape).
 *
 * A cert is recorded in the store and audited in one transaction before it
 * is returned, so a cert a client holds is always known to the store. The
 * same transaction refuses a public key reported compromised (ca_revoke.h),
 * whichever path asked.
 * sign_leaf (ca_sign_leaf for the other files) is the only place leaves are
 * built; ca_issue_svid (CSR), ca_issue_with_new_key (meshd's own cert) and
 * ca_issue_for_pubkey (ca_pubkey.c, same-key rotation) differ only in their
 * input checks. ca_issue_svid also hands over the CSR's already-encoded
 * public key, so the hot path avoids OpenSSL 3.0's costly key encoder and
 * decoder set-ups (ca_spki.c); the certificate bytes are the same. */
#include "ca/ca_internal.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca_revoke.h"
#include "ca/csr.h"
#include "ca/spiffe_id.h"
#include "common/log.h"

/* ---- loading ---------------------------------------------------------------- */

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void ca_free(mesh_ca *ca)
{
    if (!ca)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    free_strings(ca->chain_tail, ca->chain_tail_len);
    free(ca);
}

const char *ca_trust_domain(const mesh_ca *ca) { return ca->trust_domain; }
int64_t ca_id(const mesh_ca *ca) { return ca->id; }

/* chain_tail = [this CA cert, intermediates above it] when the CA is not a
 * self-signed root; the root is left out (peers have it from the bundle). */
static int build_chain_tail(mesh_ca *ca, const store_ca *row, mesh_err *err)
{
    STACK_OF(X509) *above = NULL;
    int rc = MESH_OK;
    if (row->chain_pem && row->chain_pem[0]) {
        rc = pem_read_cert_chain(row->chain_pem, &above, err);
        if (rc != MESH_OK)
            return mesh_err_prefix(err, "CA #%lld chain in the store", (long long)row->id);
    }
    int n_above = above ? sk_X509_num(above) : 0;
    /* Every cert above us bounds the lifetime of what we sign. */
    for (int i = 0; i < n_above; i++) {
        int64_t nb, na;
        if ((rc = cert_validity(sk_X509_value(above, i), &nb, &na, err)) != MESH_OK)
            goto out;
        if (na < ca->not_after)
            ca->not_after = na;
        if (nb > ca->not_before)
            ca->not_before = nb;
    }
    if (n_above == 0)
        goto out; /* self-signed root: the leaf alone is the chain */
    ca->chain_tail = calloc((size_t)n_above, sizeof *ca->chain_tail);
    if (!ca->chain_tail) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = pem_write_cert(ca->cert, &ca->chain_tail[0], err)) != MESH_OK)
        goto out;
    ca->chain_tail_len = 1;
    for (int i = 0; i < n_above - 1; i++) { /* the last one is the root */
        if ((rc = pem_write_cert(sk_X509_value(above, i), &ca->chain_tail[i + 1], err)) !=
            MESH_OK)
            goto out;
        ca->chain_tail_len++;
    }
out:
    sk_X509_pop_free(above, X509_free);
    return rc;
}

int ca_load(mesh_store *st, mesh_ca **out, mesh_err *err)
{
    *out = NULL;
    store_ca row;
    memset(&row, 0, sizeof row);
    int rc = store_ca_get_active(st, &row, err);
    if (rc == MESH_ENOTFOUND)
        return mesh_err_set(err, MESH_ENOTFOUND,
                            "no active CA in the store; create one with 'meshctl ca init'");
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "loading the active CA");
    char *td = NULL;
    mesh_ca *ca = calloc(1, sizeof *ca);
    if (!ca) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto fail;
    }
    ca->id = row.id;
    rc = store_setting_get(st, CA_SETTING_TRUST_DOMAIN, &td, err);
    if (rc == MESH_ENOTFOUND) {
        rc = mesh_err_set(err, MESH_ECORRUPT,
                          "the store has an active CA but no trust_domain setting");
        goto fail;
    }
    if (rc != MESH_OK)
        goto fail;
    if ((rc = spiffe_id_valid_trust_domain(td, err)) != MESH_OK) {
        mesh_err_prefix(err, "store setting trust_domain");
        rc = MESH_ECORRUPT;
        if (err)
            err->code = rc;
        goto fail;
    }
    snprintf(ca->trust_domain, sizeof ca->trust_domain, "%s", td);
    if ((rc = pem_read_cert(row.cert_pem, &ca->cert, err)) != MESH_OK) {
        mesh_err_prefix(err, "CA #%lld certificate in the store", (long long)row.id);
        goto fail;
    }
    if ((rc = cert_validity(ca->cert, &ca->not_before, &ca->not_after, err)) != MESH_OK)
        goto fail;
    if ((rc = ca_keyfile_load(row.key_path, &ca->key, err)) != MESH_OK) {
        mesh_err_prefix(err, "loading CA #%lld", (long long)row.id);
        goto fail;
    }
    if (!cert_key_matches(ca->cert, ca->key)) {
        rc = mesh_err_set(err, MESH_ECORRUPT,
                          "CA key file %s does not belong to CA #%lld's certificate (serial %s); "
                          "was it replaced?",
                          row.key_path, (long long)row.id, row.serial_hex ? row.serial_hex : "?");
        goto fail;
    }
    if ((rc = build_chain_tail(ca, &row, err)) != MESH_OK)
        goto fail;
    int64_t now = (int64_t)time(NULL);
    char t[32];
    if (ca->not_after <= now)
        log_warn("ca", "active CA #%lld expired at %s; no SVID can be issued until the CA is "
                       "rotated",
                 (long long)ca->id, ca_fmt_time(ca->not_after, t, sizeof t));
    free(td);
    store_ca_free(&row);
    *out = ca;
    return MESH_OK;
fail:
    free(td);
    store_ca_free(&row);
    ca_free(ca);
    return rc;
}

/* ---- issuing ---------------------------------------------------------------- */

void ca_issued_free(ca_issued *c)
{
    if (!c)
        return;
    free(c->cert_pem);
    free_strings(c->chain, c->chain_len);
    free(c->chain_pem);
    memset(c, 0, sizeof *c);
}

int ca_check_ttl(int64_t *ttl, mesh_err *err)
{
    if (*ttl == 0)
        *ttl = CA_DEFAULT_SVID_TTL;
    if (*ttl < CA_MIN_SVID_TTL || *ttl > CA_MAX_SVID_TTL)
        return mesh_err_set(err, MESH_EINVAL,
                            "SVID TTL of %lld s is out of range (%d s to %d s = 90 days)",
                            (long long)*ttl, CA_MIN_SVID_TTL, CA_MAX_SVID_TTL);
    return MESH_OK;
}

/* spki: the CSR's parsed SubjectPublicKeyInfo for pubkey, or NULL (see
 * ca_leaf_set_pubkey: it lets the common EC case skip OpenSSL's key
 * encoder/decoder set-up, the largest CPU cost of an issuance). */
static int build_leaf(mesh_ca *ca, EVP_PKEY *pubkey, const X509_PUBKEY *spki, const char *id_str,
                      const char *const *dns_names, int64_t nb, int64_t na, X509 **out,
                      mesh_err *err)
{
    *out = NULL;
    X509 *x = X509_new();
    if (!x)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    int rc;
    int rsa = EVP_PKEY_get_base_id(pubkey) == EVP_PKEY_RSA;
    if (X509_set_version(x, X509_VERSION_3) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
        !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na)) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot build SVID");
        goto fail;
    }
    if ((rc = ca_leaf_set_pubkey(x, pubkey, spki, err)) != MESH_OK ||
        (rc = ca_random_serial(x, err)) != MESH_OK ||
        (rc = ca_add_basic_constraints(x, 0, err)) != MESH_OK ||
        (rc = ca_add_key_usage(x, 1, rsa, 0, err)) != MESH_OK ||
        (rc = ca_add_eku_server_client(x, err)) != MESH_OK ||
        (rc = ca_add_key_ids(x, ca->cert, err)) != MESH_OK ||
        (rc = ca_add_san(x, id_str, dns_names, 1, err)) != MESH_OK)
        goto fail;
    if (X509_sign(x, ca->key, ca_sign_digest(ca->key)) <= 0) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot sign SVID");
        goto fail;
    }
    *out = x;
    return MESH_OK;
fail:
    X509_free(x);
    return rc;
}

/* Copies the leaf PEM and the CA's chain tail into out. */
static int fill_chain(mesh_ca *ca, ca_issued *out, mesh_err *err)
{
    size_t n = 1 + ca->chain_tail_len;
    out->chain = calloc(n, sizeof *out->chain);
    if (!out->chain)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        const char *src = i == 0 ? out->cert_pem : ca->chain_tail[i - 1];
        out->chain[i] = strdup(src);
        if (!out->chain[i])
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
        out->chain_len++;
        total += strlen(src);
    }
    out->chain_pem = malloc(total);
    if (!out->chain_pem)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    char *p = out->chain_pem;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(out->chain[i]);
        memcpy(p, out->chain[i], l);
        p += l;
    }
    *p = '\0';
    return MESH_OK;
}

/* Records the cert and its audit row in one transaction (one fsync). spki is
 * the hex SHA-256 of the leaf's SubjectPublicKeyInfo. */
static int record(mesh_ca *ca, mesh_store *st, const ca_issued *out, const char *spki,
                  int64_t now, const char *actor, const char *note, mesh_err *err)
{
    int rc;
    store_cert row;
    memset(&row, 0, sizeof row);
    row.serial_hex = (char *)out->serial_hex;
    row.spiffe_id = (char *)out->spiffe_id;
    row.instance = (char *)out->instance;
    row.pubkey_sha256 = (char *)spki;
    row.not_before = out->not_before;
    row.not_after = out->not_after;
    row.issued_at = now;
    row.ca_id = ca->id;
    row.revoke_reason = (char *)"";
    row.cert_pem = out->cert_pem;
    char detail[400], t[32];
    snprintf(detail, sizeof detail, "serial=%s ca=%lld not_after=%s%s%s%s%s", out->serial_hex,
             (long long)ca->id, ca_fmt_time(out->not_after, t, sizeof t),
             out->instance[0] ? " instance=" : "", out->instance, note ? " " : "",
             note ? note : "");
    if ((rc = store_begin(st, err)) != MESH_OK)
        return mesh_err_prefix(err, "recording the issued SVID");
    /* Inside the transaction that records the cert: a keyCompromise
     * revocation committing at the same moment either sees this cert (and
     * revokes it) or is seen here. */
    if ((rc = ca_key_check_usable(st, spki, err)) != MESH_OK) {
        store_rollback(st);
        return rc;
    }
    if ((rc = store_cert_insert(st, &row, err)) != MESH_OK ||
        (rc = store_audit(st, actor, "cert.issue", out->spiffe_id, detail, 1, err)) != MESH_OK ||
        (rc = store_commit(st, err)) != MESH_OK) {
        store_rollback(st);
        return mesh_err_prefix(err, "recording the issued SVID");
    }
    return MESH_OK;
}

/* ca_sign_leaf with the CSR's parsed SPKI when there is one (see build_leaf). */
static int sign_leaf(mesh_ca *ca, mesh_store *st, EVP_PKEY *pubkey, const X509_PUBKEY *spki,
                     const char *id_str, const char *instance, const char *const *dns_names,
                     int64_t ttl, const char *actor, const char *note, ca_issued *out,
                     mesh_err *err)
{
    memset(out, 0, sizeof *out);
    if (strlen(id_str) >= sizeof out->spiffe_id)
        return mesh_err_set(err, MESH_EINVAL, "SPIFFE ID is longer than %zu bytes",
                            sizeof out->spiffe_id - 1);
    if (!instance)
        instance = "";
    if (strlen(instance) >= sizeof out->instance)
        return mesh_err_set(err, MESH_EINVAL, "instance name is longer than %zu bytes",
                            sizeof out->instance - 1);
    int64_t now = (int64_t)time(NULL);
    int64_t nb = now - CA_BACKDATE_SECONDS;
    int64_t na = now + ttl;
    char t1[32], t2[32];
    if (now < ca->not_before)
        return mesh_err_set(err, MESH_EINVAL,
                            "CA #%lld is not valid until %s; check the system clock",
                            (long long)ca->id, ca_fmt_time(ca->not_before, t1, sizeof t1));
    if (na > ca->not_after)
        return mesh_err_set(err, MESH_EEXPIRED,
                            "CA #%lld expires at %s, before the requested SVID would (%s); "
                            "rotate the CA ('meshctl ca rotate') or request a shorter TTL",
                            (long long)ca->id, ca_fmt_time(ca->not_after, t1, sizeof t1),
                            ca_fmt_time(na, t2, sizeof t2));
    if (nb < ca->not_before)
        nb = ca->not_before;

    X509 *x = NULL;
    char spki_hex[65];
    int rc = build_leaf(ca, pubkey, spki, id_str, dns_names, nb, na, &x, err);
    if (rc != MESH_OK)
        return rc;
    rc = pem_write_cert(x, &out->cert_pem, err);
    if (rc == MESH_OK)
        rc = cert_serial_hex(x, out->serial_hex, sizeof out->serial_hex, err);
    if (rc == MESH_OK)
        rc = ca_leaf_spki_sha256_hex(x, spki_hex, err);
    X509_free(x);
    if (rc != MESH_OK)
        goto fail;
    snprintf(out->spiffe_id, sizeof out->spiffe_id, "%s", id_str);
    snprintf(out->instance, sizeof out->instance, "%s", instance);
    out->not_before = nb;
    out->not_after = na;
    if ((rc = fill_chain(ca, out, err)) != MESH_OK ||
        (rc = record(ca, st, out, spki_hex, now, actor, note, err)) != MESH_OK)
        goto fail;
    const char *na_s = ca_fmt_time(na, t1, sizeof t1);
    log_field lf[] = {{"spiffe_id", out->spiffe_id},
                      {"instance", out->instance[0] ? out->instance : NULL},
                      {"serial", out->serial_hex},
                      {"not_after", na_s},
                      {"actor", actor}};
    log_msg_fields(LOG_INFO, "ca", lf, sizeof lf / sizeof lf[0],
                   "issued SVID %s%s%s serial=%s not_after=%s actor=%s", out->spiffe_id,
                   out->instance[0] ? " instance=" : "", out->instance, out->serial_hex, na_s,
                   actor);
    return MESH_OK;
fail:
    ca_issued_free(out);
    return rc;
}

int ca_sign_leaf(mesh_ca *ca, mesh_store *st, EVP_PKEY *pubkey, const char *id_str,
                 const char *instance, const char *const *dns_names, int64_t ttl,
                 const char *actor, const char *note, ca_issued *out, mesh_err *err)
{
    return sign_leaf(ca, st, pubkey, NULL, id_str, instance, dns_names, ttl, actor, note, out,
                     err);
}

/* Best-effort audit of a refused request: the audit log is where operators
 * look for "who asked for what"; failing to write it must not mask the
 * original error. */
static void audit_refusal(mesh_store *st, const char *actor, const char *subject,
                          const mesh_err *why)
{
    mesh_err ignored;
    char q[160];
    store_audit(st, actor, "cert.issue", ca_quote(subject, q, sizeof q),
                why ? why->msg : "refused", 0, &ignored);
}

int ca_issue_svid(mesh_ca *ca, mesh_store *st, const ca_issue_req *req, ca_issued *out,
                  mesh_err *err)
{
    if (!ca || !st || !req || !out)
        return mesh_err_set(err, MESH_EINVAL, "ca_issue_svid: missing argument");
    memset(out, 0, sizeof *out);
    const char *actor = req->actor && req->actor[0] ? req->actor : "unknown";
    mesh_err local;
    mesh_err *e = err ? err : &local;
    int64_t ttl = req->ttl_seconds;
    int rc = ca_check_ttl(&ttl, e);
    X509_REQ *csr = NULL;
    char id[SPIFFE_ID_MAX + 1] = "";
    if (rc == MESH_OK)
        rc = ca_csr_parse_checked(req->csr_pem, ca->trust_domain, req->authorised_id, &csr, id,
                                  sizeof id, e);
    if (rc == MESH_OK)
        rc = sign_leaf(ca, st, X509_REQ_get0_pubkey(csr), X509_REQ_get_X509_PUBKEY(csr), id,
                       req->instance, req->dns_names, ttl, actor, NULL, out, e);
    X509_REQ_free(csr);
    if (rc != MESH_OK) {
        audit_refusal(st, actor, req->authorised_id ? req->authorised_id : id, e);
        log_warn("ca", "refused SVID for %s (actor %s): %s",
                 req->authorised_id ? req->authorised_id : "?", actor, e->msg);
    }
    return rc;
}

int ca_issue_with_new_key(mesh_ca *ca, mesh_store *st, const char *id_str,
                          const char *const *dns_names, int64_t ttl_seconds,
                          char **key_pem_out, ca_issued *out, mesh_err *err)
{
    if (!ca || !st || !key_pem_out || !out)
        return mesh_err_set(err, MESH_EINVAL, "ca_issue_with_new_key: missing argument");
    *key_pem_out = NULL;
    memset(out, 0, sizeof *out);
    spiffe_id_parts parsed;
    int rc = spiffe_id_parse(id_str, &parsed, err);
    if (rc != MESH_OK)
        return rc;
    if (strcmp(parsed.trust_domain, ca->trust_domain) != 0) {
        char q[160];
        return mesh_err_set(err, MESH_EINVAL, "'%s' is not in this CA's trust domain '%s'",
                            ca_quote(id_str, q, sizeof q), ca->trust_domain);
    }
    if ((rc = ca_check_ttl(&ttl_seconds, err)) != MESH_OK)
        return rc;
    EVP_PKEY *key = NULL;
    if ((rc = csr_keygen("ec-p256", &key, err)) != MESH_OK)
        return rc;
    char *key_pem = NULL;
    /* Encode the key first, so a cert is never stored for a key we then
     * fail to hand back. */
    rc = pem_write_private_key(key, &key_pem, err);
    if (rc == MESH_OK)
        rc = ca_sign_leaf(ca, st, key, id_str, "", dns_names, ttl_seconds, "meshd", "new-key",
                          out, err);
    EVP_PKEY_free(key);
    if (rc != MESH_OK) {
        if (key_pem)
            OPENSSL_clear_free(key_pem, strlen(key_pem));
        return rc;
    }
    *key_pem_out = key_pem;
    return MESH_OK;
}
