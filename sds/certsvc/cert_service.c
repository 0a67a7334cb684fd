/* sds/certsvc/cert_service.c — CreateCertificate authorisation and issuance (see cert_service.h). */
#include "sds/certsvc/cert_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/ca_revoke.h"
#include "ca/csr.h"
#include "ca/join_token.h"
#include "common/escape.h"
#include "common/log.h"
#include "common/mgrpc.h"
#include "sds/certsvc/svid_recover.h"

void cert_service_free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void cert_service_resp_free(cert_service_resp *r)
{
    if (!r)
        return;
    cert_service_free_strings(r->chain, r->chain_len);
    cert_service_free_strings(r->roots, r->n_roots);
    memset(r, 0, sizeof *r);
}

int cert_service_split_pem(const char *pem, char ***out, size_t *n_out, mesh_err *err)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    static const char end[] = "-----END CERTIFICATE-----";
    *out = NULL;
    *n_out = 0;
    size_t cap = 0, n = 0;
    char **v = NULL;
    const char *p = pem ? pem : "";
    while ((p = strstr(p, begin)) != NULL) {
        const char *e = strstr(p, end);
        if (!e) {
            cert_service_free_strings(v, n);
            return mesh_err_set(err, MESH_EINVAL, "PEM bundle has a certificate without END line");
        }
        e += sizeof end - 1;
        size_t len = (size_t)(e - p);
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                cert_service_free_strings(v, n);
                return mesh_err_set(err, MESH_ENOMEM, "out of memory");
            }
            v = nv;
        }
        v[n] = malloc(len + 2);
        if (!v[n]) {
            cert_service_free_strings(v, n);
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
        }
        memcpy(v[n], p, len);
        v[n][len] = '\n';
        v[n][len + 1] = '\0';
        n++;
        p = e;
    }
    *out = v;
    *n_out = n;
    return MESH_OK;
}

int cert_service_root_of_ca(mesh_store *st, int64_t ca_id, char **root_pem, mesh_err *err)
{
    *root_pem = NULL;
    store_ca *cas = NULL;
    size_t n = 0;
    int rc = store_ca_list(st, &cas, &n, err);
    if (rc != MESH_OK)
        return rc;
    rc = mesh_err_set(err, MESH_ENOTFOUND, "CA #%lld is not in the store", (long long)ca_id);
    for (size_t i = 0; i < n; i++) {
        if (cas[i].id != ca_id)
            continue;
        /* chain_pem runs up to and including the root; empty for a root CA. */
        const char *src = cas[i].chain_pem && cas[i].chain_pem[0] ? cas[i].chain_pem
                                                                  : cas[i].cert_pem;
        char **certs = NULL;
        size_t nc = 0;
        rc = cert_service_split_pem(src, &certs, &nc, err);
        if (rc == MESH_OK && nc == 0)
            rc = mesh_err_set(err, MESH_ECORRUPT, "CA #%lld has no certificate PEM",
                              (long long)ca_id);
        if (rc == MESH_OK) {
            *root_pem = certs[nc - 1];
            certs[nc - 1] = NULL;
        }
        cert_service_free_strings(certs, nc);
        break;
    }
    store_ca_free_list(cas, n);
    return rc;
}

/* What the requester offered, for the detail of a refusal. */
static const char *offered(const cert_service_req *req)
{
    if (req->peer_spiffe_id && req->peer_spiffe_id[0])
        return "mTLS SVID";
    if (req->authorization)
        return "join token";
    if (req->expired_svid_b64)
        return "expired SVID";
    return "none";
}

/* actor: verified material only (or STORE_AUDIT_UNAUTHENTICATED); claim: an
 * identity the requester named but did not prove, or NULL. */
static void audit_denied(mesh_store *st, const cert_service_req *req, const char *actor,
                         const char *subject, const char *claim, const mesh_err *why)
{
    char detail[1400], quoted[600] = "";
    if (claim && claim[0]) {
        char esc[520];
        mesh_escape(claim, strlen(claim), MESH_ESC_QUOTES, esc, sizeof esc);
        snprintf(quoted, sizeof quoted, " claimed=\"%s\" (unverified)", esc);
    }
    snprintf(detail, sizeof detail, "peer=%s credential=%s%s: %s",
             req->peer_addr ? req->peer_addr : "?", offered(req), quoted, why->msg);
    if (req->audit_fn) {
        req->audit_fn(req->audit_ctx, actor, "cert.denied", subject ? subject : "", detail, 0);
        return;
    }
    mesh_err ignored;
    if (store_audit(st, actor, "cert.denied", subject ? subject : "", detail, 0, &ignored) !=
        MESH_OK)
        log_warn("sds", "could not audit a refused certificate request: %s", ignored.msg);
}

/* 1 when the CSR's public key is the one in cert x. */
static int csr_has_key_of(const char *csr_pem, X509 *x)
{
    BIO *bio = BIO_new_mem_buf(csr_pem, -1);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    EVP_PKEY *pk = req ? X509_REQ_get0_pubkey(req) : NULL;
    int same = pk && EVP_PKEY_eq(pk, X509_get0_pubkey(x)) == 1;
    X509_REQ_free(req);
    ERR_clear_error();
    return same;
}

/* A revoked client certificate proves nothing, with one exception: revoked
 * as "superseded" (the operator replaced it; the key is not in question)
 * it may still authenticate one renewal with a NEW key, so the sidecar
 * re-keys by itself. Everything else needs a new join token. */
static int check_revoked_peer(mesh_store *st, const store_cert *rec, X509 *x,
                              const cert_service_req *req, int *rekey, mesh_err *err)
{
    int code = ca_revoke_reason_code(rec->revoke_reason);
    store_compromised_key k;
    int compromised = store_key_compromised_get(st, rec->pubkey_sha256, &k, NULL) == MESH_OK;
    store_compromised_key_free(&k);
    if (compromised || code == CA_REASON_KEY_COMPROMISE)
        return mesh_err_set(err, MESH_EPERM,
                            "client certificate serial %s of %s was revoked because its key was "
                            "compromised; meshd never certifies that key again and a revoked "
                            "certificate cannot renew: the workload needs a new key and a new "
                            "join token ('meshctl workload token %s')",
                            rec->serial_hex, rec->spiffe_id, rec->spiffe_id);
    if (code == CA_REASON_SUPERSEDED && !csr_has_key_of(req->csr_pem, x)) {
        *rekey = 1;
        return MESH_OK;
    }
    if (code == CA_REASON_SUPERSEDED)
        return mesh_err_set(err, MESH_EPERM,
                            "client certificate serial %s of %s was revoked (superseded): renew "
                            "with a new key, not the revoked certificate's",
                            rec->serial_hex, rec->spiffe_id);
    return mesh_err_set(err, MESH_EPERM,
                        "client certificate serial %s of %s is revoked (%s); a revoked "
                        "certificate cannot renew: the workload needs a new join token "
                        "('meshctl workload token %s') unless it holds another valid SVID",
                        rec->serial_hex, rec->spiffe_id,
                        rec->revoke_reason && rec->revoke_reason[0] ? rec->revoke_reason
                                                                    : "no reason given",
                        rec->spiffe_id);
}

/* The presented client cert of a renewal must be one we issued and have not
 * revoked: TLS checked the chain, but only the store knows revocations. Its
 * record names the instance it was enrolled for, which the renewal keeps
 * (instance, sizeof 128), and whose registration must still exist. */
static int check_mtls_peer(mesh_store *st, const cert_service_req *req, char *instance,
                           size_t instance_len, grpc_status_code *status, int *rekey,
                           mesh_err *err)
{
    char serial[48];
    X509 *x = NULL;
    *status = GRPC_STATUS_PERMISSION_DENIED;
    if (!req->peer_cert_pem)
        return mesh_err_set(err, MESH_EPERM, "peer certificate unavailable for the renewal check");
    int rc = pem_read_cert(req->peer_cert_pem, &x, err);
    if (rc == MESH_OK)
        rc = cert_serial_hex(x, serial, sizeof serial, err);
    if (rc != MESH_OK) {
        X509_free(x);
        *status = GRPC_STATUS_INTERNAL;
        return rc;
    }
    store_cert rec;
    memset(&rec, 0, sizeof rec);
    rc = store_cert_get(st, serial, &rec, err);
    if (rc == MESH_ENOTFOUND) {
        X509_free(x);
        return mesh_err_set(err, MESH_EPERM,
                            "client certificate serial %s was not issued by meshd; renew with a "
                            "meshd-issued SVID or a join token",
                            serial);
    }
    if (rc != MESH_OK) {
        X509_free(x);
        *status = mgrpc_status_from_mesh(rc, MGRPC_FAULT_SERVER);
        return rc;
    }
    if (rec.revoked)
        rc = check_revoked_peer(st, &rec, x, req, rekey, err);
    snprintf(instance, instance_len, "%s", rec.instance ? rec.instance : "");
    store_cert_free(&rec);
    X509_free(x);
    if (rc != MESH_OK)
        return rc;
    store_registration reg;
    rc = store_registration_get(st, instance, req->peer_spiffe_id, &reg, err);
    store_registration_free(&reg);
    if (rc == MESH_ENOTFOUND && instance[0])
        return mesh_err_set(err, MESH_EPERM,
                            "instance %s of %s is no longer registered; renewal refused",
                            instance, req->peer_spiffe_id);
    if (rc == MESH_ENOTFOUND)
        return mesh_err_set(err, MESH_EPERM, "%s is no longer registered; renewal refused",
                            req->peer_spiffe_id);
    if (rc != MESH_OK)
        *status = mgrpc_status_from_mesh(rc, MGRPC_FAULT_SERVER);
    return rc;
}

/* "Bearer <token>" (scheme case-insensitive, RFC 6750). */
static const char *bearer_token(const char *authz)
{
    if (!authz || strncasecmp(authz, "Bearer ", 7) != 0)
        return NULL;
    const char *t = authz + 7;
    while (*t == ' ')
        t++;
    return *t ? t : NULL;
}

static int fill_response(mesh_ca *ca, mesh_store *st, ca_issued *iss, cert_service_resp *out,
                         mesh_err *err)
{
    char *root = NULL;
    char *bundle = NULL;
    int rc = cert_service_root_of_ca(st, ca_id(ca), &root, err);
    if (rc == MESH_OK)
        rc = ca_bundle_pem(st, &bundle, err);
    if (rc == MESH_OK)
        rc = cert_service_split_pem(bundle, &out->roots, &out->n_roots, err);
    if (rc == MESH_OK) {
        out->chain = calloc(iss->chain_len + 1, sizeof *out->chain);
        if (!out->chain)
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    if (rc == MESH_OK) {
        for (size_t i = 0; i < iss->chain_len; i++) {
            out->chain[i] = iss->chain[i];
            iss->chain[i] = NULL;
            out->chain_len++;
        }
        out->chain[out->chain_len++] = root;
        root = NULL;
        snprintf(out->spiffe_id, sizeof out->spiffe_id, "%s", iss->spiffe_id);
        snprintf(out->instance, sizeof out->instance, "%s", iss->instance);
        snprintf(out->serial_hex, sizeof out->serial_hex, "%s", iss->serial_hex);
        out->not_after = iss->not_after;
    }
    free(root);
    free(bundle);
    return rc;
}

int cert_service_create(mesh_ca *ca, mesh_store *st, const cert_service_req *req,
                        cert_service_resp *out, grpc_status_code *status, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    mesh_err local;
    mesh_err *e = err ? err : &local;
    mesh_err_clear(e);
    *status = GRPC_STATUS_INVALID_ARGUMENT;

    /* Refusals before anyone is authenticated: the actor is the verified mTLS
     * identity when there is one, never a token's or a cert's claim. */
    const char *pre_actor = req->peer_spiffe_id && req->peer_spiffe_id[0]
                                ? req->peer_spiffe_id
                                : STORE_AUDIT_UNAUTHENTICATED;
    int64_t ttl = req->validity_seconds;
    /* A TTL under the CA's minimum is refused here too, before any credential
     * is looked at: past this point a join token is spent, and a TTL the CA
     * refuses must not cost it. */
    if (ttl > 0 && ttl < CA_MIN_SVID_TTL) {
        int rc0 = mesh_err_set(e, MESH_EINVAL,
                               "validity_duration %lld s is below the %d s minimum; the request "
                               "is rejected (a join token it carries is not spent)",
                               (long long)ttl, CA_MIN_SVID_TTL);
        audit_denied(st, req, pre_actor, "", NULL, e);
        return rc0;
    }
    if (ttl < 0 || ttl > CA_MAX_SVID_TTL) {
        int rc0 = ttl < 0 ? mesh_err_set(e, MESH_EINVAL, "validity_duration %lld is negative",
                                         (long long)ttl)
                          : mesh_err_set(e, MESH_EINVAL,
                                         "validity_duration %lld s exceeds the 90-day maximum "
                                         "(%d s); the request is rejected, not shortened",
                                         (long long)ttl, CA_MAX_SVID_TTL);
        audit_denied(st, req, pre_actor, "", NULL, e);
        return rc0;
    }
    if (ttl == 0)
        ttl = req->default_ttl > 0 ? req->default_ttl : CA_DEFAULT_SVID_TTL;
    if (!req->csr_pem || !req->csr_pem[0]) {
        int rc0 = mesh_err_set(e, MESH_EINVAL, "the request carries no CSR");
        audit_denied(st, req, pre_actor, "", NULL, e);
        return rc0;
    }

    const char *authorised = NULL;
    char actor[600];
    char instance[128] = "";
    char *token_id = NULL, *token_instance = NULL;
    svid_recover_result rec;
    memset(&rec, 0, sizeof rec);
    int rc;
    const char *token = bearer_token(req->authorization);

    if (req->peer_spiffe_id && req->peer_spiffe_id[0]) {
        out->auth = "mtls";
        snprintf(actor, sizeof actor, "%s", req->peer_spiffe_id);
        int rekey = 0;
        if ((rc = check_mtls_peer(st, req, instance, sizeof instance, status, &rekey, e)) !=
            MESH_OK) {
            audit_denied(st, req, actor, req->peer_spiffe_id, NULL, e);
            return rc;
        }
        if (rekey) {
            out->auth = "rekey";
            log_info("sds", "%s renews with a new key after its certificate was revoked as "
                     "superseded", req->peer_spiffe_id);
        }
        authorised = req->peer_spiffe_id;
    } else if (req->authorization) {
        out->auth = "token";
        *status = GRPC_STATUS_UNAUTHENTICATED;
        if (!token) {
            out->token_result = CERT_TOKEN_UNKNOWN;
            rc = mesh_err_set(e, MESH_EINVAL,
                              "authorization metadata must be 'Bearer mjt_...' (a join token "
                              "from 'meshctl workload add')");
            audit_denied(st, req, STORE_AUDIT_UNAUTHENTICATED, "", NULL, e);
            return rc;
        }
        /* Check the CSR (and that its key may be certified) before spending
         * the token, so a request meshd must refuse does not burn the
         * operator's one-time token. */
        if ((rc = ca_csr_check(req->csr_pem, ca_trust_domain(ca), NULL, e)) != MESH_OK ||
            (rc = ca_csr_key_check_usable(st, req->csr_pem, e)) != MESH_OK) {
            *status = mgrpc_status_from_mesh(rc, MGRPC_FAULT_REQUEST);
            audit_denied(st, req, STORE_AUDIT_UNAUTHENTICATED, "", NULL, e);
            return rc;
        }
        rc = join_token_redeem(st, token, req->now, &token_id, &token_instance, e);
        out->token_result = rc == MESH_OK          ? CERT_TOKEN_REDEEMED
                            : rc == MESH_EEXPIRED  ? CERT_TOKEN_EXPIRED
                            : rc == MESH_EPERM     ? CERT_TOKEN_SPENT
                            : rc == MESH_ENOTFOUND || rc == MESH_EINVAL ? CERT_TOKEN_UNKNOWN
                                                   : CERT_TOKEN_ERROR;
        if (rc != MESH_OK) {
            *status = mgrpc_status_from_mesh(rc, MGRPC_FAULT_CREDENTIAL);
            audit_denied(st, req, STORE_AUDIT_UNAUTHENTICATED, "", NULL, e);
            return rc;
        }
        /* The token binds the instance: the cert records it, and meshd
         * serves that instance's config to whoever holds the cert. */
        snprintf(instance, sizeof instance, "%s", token_instance);
        free(token_instance);
        snprintf(actor, sizeof actor, "token:%s", token_id);
        authorised = token_id;
    } else if (req->expired_svid_b64) {
        out->auth = "recover";
        rc = svid_recover_check(st, req->expired_svid_b64, req->csr_pem, req->now,
                                req->recover_grace > 0 ? req->recover_grace : CERT_RECOVER_GRACE,
                                &rec, status, e);
        if (rc != MESH_OK) {
            /* Only a recovery whose chain and key verified names its actor;
             * anything read from an unverified cert is a claim. */
            if (rec.verified)
                audit_denied(st, req, rec.spiffe_id, rec.spiffe_id, NULL, e);
            else
                audit_denied(st, req, STORE_AUDIT_UNAUTHENTICATED, "", rec.spiffe_id, e);
            return rc;
        }
        snprintf(actor, sizeof actor, "%s", rec.spiffe_id);
        snprintf(instance, sizeof instance, "%s", rec.instance);
        authorised = rec.spiffe_id;
    } else {
        *status = GRPC_STATUS_UNAUTHENTICATED;
        rc = mesh_err_set(e, MESH_EPERM,
                          "no credentials: present a meshd-issued SVID over mTLS, a join token "
                          "('authorization: Bearer mjt_...') or an expired SVID in "
                          "'" CERT_RECOVER_HEADER "' for recovery");
        audit_denied(st, req, STORE_AUDIT_UNAUTHENTICATED, "", NULL, e);
        return rc;
    }

    ca_issue_req ireq = {
        .csr_pem = req->csr_pem,
        .authorised_id = authorised,
        .instance = instance,
        .ttl_seconds = ttl,
        .actor = actor,
        .dns_names = NULL,
    };
    ca_issued iss;
    memset(&iss, 0, sizeof iss);
    rc = ca_issue_svid(ca, st, &ireq, &iss, e); /* audits success and refusal itself */
    if (rc != MESH_OK) {
        *status = mgrpc_status_from_mesh(rc, MGRPC_FAULT_REQUEST);
        free(token_id);
        return rc;
    }
    if (strcmp(out->auth, "recover") == 0) {
        char detail[256];
        snprintf(detail, sizeof detail, "old_serial=%s old_not_after=%lld new_serial=%s peer=%s",
                 rec.serial_hex, (long long)rec.not_after, iss.serial_hex,
                 req->peer_addr ? req->peer_addr : "?");
        mesh_err aerr;
        if (store_audit(st, actor, "cert.recover", iss.spiffe_id, detail, 1, &aerr) != MESH_OK)
            log_warn("sds", "could not audit a recovery: %s", aerr.msg);
        log_info("sds", "recovered %s from expired SVID %s (new serial %s)", iss.spiffe_id,
                 rec.serial_hex, iss.serial_hex);
    }
    if (strcmp(out->auth, "rekey") == 0) {
        char detail[256];
        snprintf(detail, sizeof detail, "new_serial=%s after a superseded revocation peer=%s",
                 iss.serial_hex, req->peer_addr ? req->peer_addr : "?");
        mesh_err aerr;
        if (store_audit(st, actor, "cert.rekey", iss.spiffe_id, detail, 1, &aerr) != MESH_OK)
            log_warn("sds", "could not audit a re-key: %s", aerr.msg);
    }
    rc = fill_response(ca, st, &iss, out, e);
    ca_issued_free(&iss);
    free(token_id);
    if (rc != MESH_OK) {
        /* The cert is stored and audited; only building the reply failed.
         * The client retries and gets a fresh one. */
        *status = mgrpc_status_from_mesh(rc, MGRPC_FAULT_SERVER);
        enum cert_token_result spent = out->token_result;
        cert_service_resp_free(out);
        out->token_result = spent;
        return rc;
    }
    *status = GRPC_STATUS_OK;
    return MESH_OK;
}
