/* sidecar/cert_pool_crl.c — the cert pool's revocation lists (see cert_pool.h):
 * taking CRLs from ROOTCA (checked against their issuer, never rolled back),
 * telling whether a peer chain or one of our own SVIDs is revoked, and the
 * sidecar's readiness, which revocation and "stranded" take away. */
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "sidecar/cert_pool.h"
#include "sidecar/cert_pool_internal.h"
#include "sidecar/tls_util.h"

/* ---- the verify callback's hook ------------------------------------------------- */

/* A handshake refused because the peer is revoked: count it, and log it
 * without letting a revoked client hammering us flood the log (one line per
 * 10 s, with how many were not logged). */
static void on_refused(void *arg, bool inbound, const char *why)
{
    cert_pool *p = arg;
    atomic_fetch_add(&p->refused_revoked, 1);
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&p->mu);
    bool say = now - p->last_refused_log >= 10;
    uint64_t skipped = p->refused_unlogged;
    if (say) {
        p->last_refused_log = now;
        p->refused_unlogged = 0;
    } else {
        p->refused_unlogged++;
    }
    pthread_mutex_unlock(&p->mu);
    if (say)
        log_warn("certs", "refusing %s mTLS with a revoked peer: %s%s", inbound ? "inbound"
                                                                              : "outbound",
                 why, skipped ? " (and more refusals not logged)" : "");
}

void cp_hooks_init(cert_pool *p)
{
    p->hooks.refused = on_refused;
    p->hooks.arg = p;
}

/* ---- lookups ---------------------------------------------------------------------- */

bool cp_svid_revoked(const cert_pool *p, const cp_svid *s, char *why, size_t len)
{
    if (!s || !p->crls)
        return false;
    X509 *leaf = sk_X509_value(s->chain, 0);
    for (int i = 0; leaf && i < sk_X509_CRL_num(p->crls); i++)
        if (tls_crl_lists(sk_X509_CRL_value(p->crls, i), leaf, why, len))
            return true;
    return false;
}

bool cert_pool_chain_revoked(cert_pool *p, STACK_OF(X509) *chain, char *why, size_t len)
{
    X509 *leaf = chain ? sk_X509_value(chain, 0) : NULL;
    if (!leaf)
        return false;
    /* The issuer as the handshake found it (OpenSSL's verified chain ends
     * with the trust anchor, so chain[1] is there); for a lone certificate
     * (our own leaf) a bundle root or a CA of our own chains by name. */
    X509 *issuer = sk_X509_num(chain) > 1 ? sk_X509_value(chain, 1) : NULL;
    bool revoked = false;
    pthread_mutex_lock(&p->mu);
    const X509_NAME *want = X509_get_issuer_name(leaf);
    for (int i = 0; !issuer && p->bundle && i < sk_X509_num(p->bundle); i++)
        if (X509_NAME_cmp(X509_get_subject_name(sk_X509_value(p->bundle, i)), want) == 0)
            issuer = sk_X509_value(p->bundle, i);
    const cp_svid *own[2] = {p->cur, p->next};
    for (int k = 0; k < 2 && !issuer; k++)
        for (int i = 1; own[k] && i < sk_X509_num(own[k]->chain) && !issuer; i++)
            if (X509_NAME_cmp(X509_get_subject_name(sk_X509_value(own[k]->chain, i)), want) == 0)
                issuer = sk_X509_value(own[k]->chain, i);
    for (int i = 0; p->crls && i < sk_X509_CRL_num(p->crls) && !revoked; i++) {
        X509_CRL *crl = sk_X509_CRL_value(p->crls, i);
        if (!tls_crl_lists(crl, leaf, why, len))
            continue;
        /* Honour the entry only if the issuer of the peer's chain signed it
         * (a CRL of an issuer we could not check on arrival). */
        revoked = issuer && X509_CRL_verify(crl, X509_get0_pubkey(issuer)) == 1;
        ERR_clear_error();
    }
    pthread_mutex_unlock(&p->mu);
    return revoked;
}

/* ---- taking CRLs --------------------------------------------------------------------- */

/* Candidate signers we hold for crl: bundle roots and the CAs in our chains. */
static int check_signed(const cert_pool *p, STACK_OF(X509) *bundle, X509_CRL *crl,
                        mesh_err *err)
{
    const X509_NAME *issuer = X509_CRL_get_issuer(crl);
    int known = 0, good = 0;
    for (int i = 0; i < sk_X509_num(bundle) && !good; i++) {
        X509 *ca = sk_X509_value(bundle, i);
        if (X509_NAME_cmp(X509_get_subject_name(ca), issuer) != 0)
            continue;
        known = 1;
        good = X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1;
    }
    const cp_svid *own[2] = {p->cur, p->next};
    for (int k = 0; k < 2 && !good; k++) {
        for (int i = 1; own[k] && i < sk_X509_num(own[k]->chain) && !good; i++) {
            X509 *ca = sk_X509_value(own[k]->chain, i);
            if (X509_NAME_cmp(X509_get_subject_name(ca), issuer) != 0)
                continue;
            known = 1;
            good = X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1;
        }
    }
    ERR_clear_error();
    if (known && !good) {
        char name[256];
        tls_crl_issuer(crl, name, sizeof name);
        return mesh_err_set(err, MESH_EINVAL, "crl: the CRL of '%s' does not verify against the "
                            "trust bundle (bad signature); keeping the CRLs we have", name);
    }
    return MESH_OK;
}

/* A CRL must not be older than the one we hold for the same issuer. */
static int check_not_older(const cert_pool *p, X509_CRL *crl, mesh_err *err)
{
    int64_t n = tls_crl_number(crl);
    for (int i = 0; p->crls && i < sk_X509_CRL_num(p->crls); i++) {
        X509_CRL *have = sk_X509_CRL_value(p->crls, i);
        if (X509_NAME_cmp(X509_CRL_get_issuer(have), X509_CRL_get_issuer(crl)) != 0)
            continue;
        int64_t m = tls_crl_number(have);
        if (m > n) {
            char name[256];
            tls_crl_issuer(crl, name, sizeof name);
            return mesh_err_set(err, MESH_EINVAL, "crl: CRL #%lld of '%s' is older than CRL "
                                "#%lld this sidecar holds (a replayed ROOTCA?); keeping ours",
                                (long long)n, name, (long long)m);
        }
    }
    return MESH_OK;
}

static bool same_crls(STACK_OF(X509_CRL) *a, STACK_OF(X509_CRL) *b)
{
    int na = a ? sk_X509_CRL_num(a) : 0, nb = b ? sk_X509_CRL_num(b) : 0;
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (X509_CRL_cmp(sk_X509_CRL_value(a, i), sk_X509_CRL_value(b, i)) != 0 ||
            X509_CRL_match(sk_X509_CRL_value(a, i), sk_X509_CRL_value(b, i)) != 0)
            return false;
    return true;
}

int cert_pool_set_trust(cert_pool *p, const char *bundle_pem, const char *crl_pem, int64_t now,
                        mesh_err *err)
{
    STACK_OF(X509) *roots = NULL;
    STACK_OF(X509_CRL) *crls = NULL;
    int rc = tls_parse_certs(bundle_pem, "trust bundle", &roots, err);
    if (rc == MESH_OK)
        rc = tls_parse_crls(crl_pem, &crls, err);
    for (int i = 0; rc == MESH_OK && i < sk_X509_num(roots); i++)
        if (X509_check_ca(sk_X509_value(roots, i)) == 0)
            rc = mesh_err_set(err, MESH_EINVAL, "trust bundle: certificate %d is not a CA "
                              "certificate", i + 1);
    if (rc != MESH_OK) {
        sk_X509_pop_free(roots, X509_free);
        sk_X509_CRL_pop_free(crls, X509_CRL_free);
        return rc;
    }
    pthread_mutex_lock(&p->mu);
    for (int i = 0; rc == MESH_OK && i < sk_X509_CRL_num(crls); i++) {
        X509_CRL *crl = sk_X509_CRL_value(crls, i);
        rc = check_signed(p, roots, crl, err);
        if (rc == MESH_OK)
            rc = check_not_older(p, crl, err);
    }
    if (rc != MESH_OK) {
        pthread_mutex_unlock(&p->mu);
        sk_X509_pop_free(roots, X509_free);
        sk_X509_CRL_pop_free(crls, X509_CRL_free);
        return rc;
    }
    bool crl_changed = !same_crls(p->crls, crls);
    bool was_revoked = cp_svid_revoked(p, p->cur, NULL, 0);
    STACK_OF(X509) *old_roots = p->bundle;
    STACK_OF(X509_CRL) *old_crls = p->crls;
    p->bundle = roots;
    p->crls = crls;
    rc = cp_rebuild_ctx(p, err);
    if (rc != MESH_OK) {
        p->bundle = old_roots;
        p->crls = old_crls;
        pthread_mutex_unlock(&p->mu);
        sk_X509_pop_free(roots, X509_free);
        sk_X509_CRL_pop_free(crls, X509_CRL_free);
        return rc;
    }
    sk_X509_pop_free(old_roots, X509_free);
    sk_X509_CRL_pop_free(old_crls, X509_CRL_free);
    p->generation++;
    if (crl_changed) {
        p->crl_generation++;
        log_info("certs", "revocation lists updated: %d CRL(s)", sk_X509_CRL_num(crls));
    }
    char why[768];
    if (!was_revoked && cp_svid_revoked(p, p->cur, why, sizeof why))
        log_error("certs", "our own SVID is revoked: %s; refusing mTLS until this sidecar has "
                  "a new SVID", why);
    else if (p->cur && !cp_chain_verifies(p->cur, p->bundle, now, why, sizeof why))
        log_warn("certs", "the new trust bundle does not verify our own SVID serial %s (%s); "
                 "peers with this bundle will reject us until we rotate", p->cur->serial, why);
    p->hold_logged = false;
    cp_try_promote(p, now);
    if (crl_changed && p->crl_listener)
        p->crl_listener(p->crl_listener_arg);
    pthread_mutex_unlock(&p->mu);
    return MESH_OK;
}

int cert_pool_export_crls(cert_pool *p, char **crl_pem_out, mesh_err *err)
{
    pthread_mutex_lock(&p->mu);
    char *s = p->crls ? tls_crls_to_pem(p->crls) : strdup("");
    pthread_mutex_unlock(&p->mu);
    if (!s)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory exporting the CRLs");
    *crl_pem_out = s;
    return MESH_OK;
}

uint64_t cert_pool_crl_generation(cert_pool *p)
{
    pthread_mutex_lock(&p->mu);
    uint64_t g = p->crl_generation;
    pthread_mutex_unlock(&p->mu);
    return g;
}

void cert_pool_set_crl_listener(cert_pool *p, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&p->mu);
    if (fn) {
        p->crl_listener = fn;
        p->crl_listener_arg = arg;
    } else if (p->crl_listener_arg == arg) {
        p->crl_listener = NULL;
        p->crl_listener_arg = NULL;
    }
    pthread_mutex_unlock(&p->mu);
}

void cert_pool_set_problem(cert_pool *p, const char *problem)
{
    pthread_mutex_lock(&p->mu);
    snprintf(p->problem, sizeof p->problem, "%s", problem ? problem : "");
    p->generation++;
    pthread_mutex_unlock(&p->mu);
}

bool cert_pool_readiness(cert_pool *p, int64_t now, char *why, size_t len)
{
    pthread_mutex_lock(&p->mu);
    char rwhy[768];
    bool ok = false;
    if (!p->cur)
        snprintf(why, len, "no SVID yet%s%s", p->problem[0] ? ": " : "", p->problem);
    else if (!p->bundle || sk_X509_num(p->bundle) == 0 || !p->sctx)
        snprintf(why, len, "no trust bundle yet");
    else if (cp_svid_revoked(p, p->cur, rwhy, sizeof rwhy))
        snprintf(why, len, "our SVID is revoked: %s%s%s", rwhy, p->problem[0] ? "; " : "",
                 p->problem[0] ? p->problem : "; waiting for a new SVID");
    else if (p->cur->not_after <= now)
        snprintf(why, len, "SVID expired %lld s ago; %s", (long long)(now - p->cur->not_after),
                 p->problem[0] ? p->problem : "waiting for meshd to issue a new one");
    else if (p->problem[0])
        snprintf(why, len, "stranded: %s", p->problem);
    else
        ok = true;
    pthread_mutex_unlock(&p->mu);
    return ok;
}
