/* sidecar/xds_identity.c — the sidecar's SVID: first contact with a join token,
 * re-enrolment with a new token, self-renewal with a new key over mTLS, recovery
 * with an expired SVID, and saving the cert pool whenever it changes (see
 * xds_client.h for the policy). When meshd's chain does not verify, it looks at
 * the chain itself to say why, and a token that pins meshd's root lets it trust
 * meshd again (xds_trust.h). Runs on the control-plane thread. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/csr.h"
#include "ca/join_token.h"
#include "common/log.h"
#include "sidecar/tls_util.h"
#include "sidecar/xds_client_internal.h"
#include "sidecar/xds_grpc.h"
#include "sidecar/xds_inputs.h"
#include "sidecar/xds_persist.h"
#include "sidecar/xds_trust.h"

static void token_hash(const char *tok, char out[65])
{
    xdsc_token_hash(tok, out);
}

int64_t xdsc_renew_time(int64_t not_before, int64_t not_after, double frac)
{
    if (frac < XDSC_RENEW_MIN_FRAC)
        frac = XDSC_RENEW_MIN_FRAC;
    if (frac > XDSC_RENEW_MAX_FRAC)
        frac = XDSC_RENEW_MAX_FRAC;
    if (not_after <= not_before)
        return not_before;
    return not_before + (int64_t)((double)(not_after - not_before) * frac);
}

int xdsc_read_token_file(const char *path, char **out, mesh_err *err)
{
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc = xdsc_read_file(path, 4096, &buf, &len, err);
    if (rc != MESH_OK)
        return rc;
    char *s = buf;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strcspn(s, "\r\n");
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0) {
        xdsc_wipe_free(buf);
        return mesh_err_set(err, MESH_ENOTFOUND, "token file %s is empty", path);
    }
    char *tok = strndup(s, n);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (!tok)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    *out = tok;
    return MESH_OK;
}

static void save_pool(xdsc_client *c)
{
    mesh_err err;
    if (cert_pool_save(c->pool, c->pool_path, &err) != MESH_OK)
        log_error("xds", "cannot persist the cert pool to %s: %s (a restart during a meshd "
                  "outage would lose this identity)", c->pool_path, err.msg);
}

void xdsc_id_watch_pool(xdsc_client *c, int64_t now)
{
    cert_pool_info info;
    cert_pool_get_info(c->pool, now, &info);
    if (c->pool_gen_seen && info.generation == c->pool_gen)
        return;
    c->pool_gen = info.generation;
    c->pool_gen_seen = true;
    save_pool(c);
    if (!info.current.present || strcmp(info.current.serial_hex, c->cur_serial) == 0)
        return;
    snprintf(c->cur_serial, sizeof c->cur_serial, "%s", info.current.serial_hex);
    double frac = (double)xdsc_backoff_uniform(&c->csr_bo, 0, 1000) / 1000.0;
    frac = XDSC_RENEW_MIN_FRAC + frac * (XDSC_RENEW_MAX_FRAC - XDSC_RENEW_MIN_FRAC);
    c->renew_at = xdsc_renew_time(info.current.not_before, info.current.not_after, frac);
    char na[32], ra[32];
    tls_format_time(info.current.not_after, na, sizeof na);
    tls_format_time(c->renew_at, ra, sizeof ra);
    log_info("xds", "SVID %s serial %s valid until %s; self-renewal at %s unless meshd pushes a "
             "fresh one first", info.current.spiffe_id, info.current.serial_hex, na, ra);
    pthread_mutex_lock(&c->mu);
    c->status.renew_at = c->renew_at;
    pthread_mutex_unlock(&c->mu);
    /* Renewal succeeded one way or another: start the retry window afresh. */
    xdsc_backoff_reset(&c->csr_bo);
    c->csr_next_ms = 0;
    c->recovery_refused = false;
    c->rekey_refused = false;
    if (strcmp(c->revoked_serial, info.current.serial_hex) != 0)
        c->revoked_serial[0] = '\0';
}

/* Says, in /ready and the log, that this sidecar cannot go on without an
 * operator, and what the operator must do. */
static void stranded(xdsc_client *c, const char *what, const char *msg)
{
    char id[DP_SPIFFE_ID_MAX + 1] = "";
    if (cert_pool_spiffe_id(c->pool, id, sizeof id) != MESH_OK && c->spiffe_id)
        snprintf(id, sizeof id, "%s", c->spiffe_id);
    char problem[512];
    snprintf(problem, sizeof problem, "%s: %.200s; needs a new join token ('meshctl workload "
             "token %.100s') written to %.100s", what, msg, id,
             c->token_file ? c->token_file : "a --token-file");
    cert_pool_set_problem(c->pool, problem);
}

void xdsc_id_on_revoked(xdsc_client *c, const char *serial, const char *details)
{
    if (!serial[0] || strcmp(c->revoked_serial, serial) == 0)
        return;
    snprintf(c->revoked_serial, sizeof c->revoked_serial, "%s", serial);
    log_error("xds", "meshd refused this sidecar's SVID serial %s: %s; trying a renewal with a "
              "new key (meshd allows it only for a superseded certificate), else a new join "
              "token is needed", serial, details);
    char problem[512];
    snprintf(problem, sizeof problem, "meshd refused SVID serial %s as revoked: %.400s", serial,
             details);
    cert_pool_set_problem(c->pool, problem);
    c->csr_next_ms = 0;     /* act now, not after the renewal backoff */
}

/* The token to enrol with, or NULL: --token first, else the file (re-read
 * every time), skipping one meshd already refused or we already spent. */
static char *current_token(xdsc_client *c, int64_t now)
{
    char *tok = NULL;
    if (c->token && c->token[0])
        tok = strdup(c->token);
    if (!tok && c->token_file) {
        mesh_err err;
        if (xdsc_read_token_file(c->token_file, &tok, &err) != MESH_OK)
            tok = NULL;
    }
    if (tok && c->refused_token[0]) {
        char h[65];
        token_hash(tok, h);
        if (strcmp(h, c->refused_token) == 0) {
            xdsc_wipe_free(tok);
            tok = NULL;
        }
    }
    if (!tok && now - c->last_no_token_log >= 60) {
        c->last_no_token_log = now;
        if (c->token_file)
            log_warn("xds", "no usable join token: write a new one ('meshctl workload token') "
                     "to %s; it is re-read on every attempt", c->token_file);
        else
            log_warn("xds", "no usable join token: the one given with --token was spent or "
                     "refused; restart with a new one, or use --token-file to hand one over "
                     "without a restart");
    }
    return tok;
}

/* CSR signed by the key of the current (expired) SVID, for recovery. */
static int recovery_csr(xdsc_client *c, const char *id, char **csr_pem, char **leaf_b64,
                        mesh_err *err)
{
    char *key_pem = NULL, *chain_pem = NULL;
    int rc = cert_pool_export_identity(c->pool, &key_pem, &chain_pem, err);
    if (rc != MESH_OK)
        return rc;
    EVP_PKEY *key = NULL;
    rc = pem_read_private_key(key_pem, &key, err);
    xdsc_wipe_free(key_pem);
    if (rc == MESH_OK)
        rc = csr_create(key, id, csr_pem, err);
    EVP_PKEY_free(key);
    if (rc == MESH_OK) {
        /* The leaf alone: meshd reads the first certificate. */
        const char *end = strstr(chain_pem, "-----END CERTIFICATE-----");
        size_t n = end ? (size_t)(end - chain_pem) + strlen("-----END CERTIFICATE-----\n")
                       : strlen(chain_pem);
        if (n > strlen(chain_pem))
            n = strlen(chain_pem);
        *leaf_b64 = xdsc_base64(chain_pem, n);
        if (!*leaf_b64) {
            free(*csr_pem);
            *csr_pem = NULL;
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        }
    }
    free(chain_pem);
    return rc;
}

/* Before enrolling with a token that pins meshd's root: unless the bundle
 * already holds a pinned root, find it in the chain meshd serves, check the
 * chain against it, and add it to the bundle (explicit trust material: the
 * operator made this token). Without a match the bundle stays as it is. */
static void adopt_pinned_root(xdsc_client *c, const char *tok, int64_t now)
{
    join_token_parts tp;
    mesh_err err;
    if (join_token_parse(tok, &tp, &err) != MESH_OK || tp.n_pins == 0)
        goto out;
    char *roots = NULL, *fps = NULL;
    if (cert_pool_export_bundle(c->pool, &roots, NULL) == MESH_OK &&
        ca_bundle_fingerprints(roots, &fps, &err) == MESH_OK) {
        for (size_t i = 0; i < tp.n_pins; i++)
            if (ca_fingerprints_contain(fps, tp.pins_hex[i])) {
                free(fps);
                free(roots);
                goto out;
            }
    }
    free(fps);
    STACK_OF(X509) *chain = NULL;
    char *root = NULL;
    int rc = xdsc_trust_fetch_chain(xdsc_targets_at(&c->targets, &c->csr_rot), c->server_name,
                                    XDSC_PROBE_TIMEOUT_MS, &chain, &err);
    if (rc == MESH_OK)
        rc = xdsc_trust_pinned_root(chain, (const char (*)[65])tp.pins_hex, tp.n_pins,
                                    c->server_name, now, &root, &err);
    sk_X509_pop_free(chain, X509_free);
    if (rc != MESH_OK) {
        log_warn("xds", "the join token pins meshd's CA root, but: %s", err.msg);
        free(roots);
        goto out;
    }
    size_t a = roots ? strlen(roots) : 0, b = strlen(root);
    char *merged = malloc(a + b + 2);
    if (merged) {
        memcpy(merged, roots ? roots : "", a);
        if (a && merged[a - 1] != '\n')
            merged[a++] = '\n';
        memcpy(merged + a, root, b + 1);
        if (cert_pool_set_bundle(c->pool, merged, now, &err) == MESH_OK)
            log_info("xds", "meshd serves the CA root the join token pins (sha256 %.16s...): "
                     "trusting it from now on", tp.pins_hex[0]);
        else
            log_warn("xds", "cannot add the root the join token pins: %s", err.msg);
    }
    free(merged);
    free(root);
    free(roots);
out:
    OPENSSL_cleanse(&tp, sizeof tp);
}

bool xdsc_id_check_meshd(xdsc_client *c, int64_t now)
{
    if (c->trust_checked_at && now - c->trust_checked_at < 30)
        return c->trust_error[0] != '\0';
    c->trust_checked_at = now;
    STACK_OF(X509) *chain = NULL;
    mesh_err err;
    if (xdsc_trust_fetch_chain(xdsc_client_check_target(c), c->server_name, XDSC_PROBE_TIMEOUT_MS,
                               &chain, &err) != MESH_OK) {
        log_debug("xds", "looking at meshd's certificate chain: %s", err.msg);
        c->trust_error[0] = '\0';
        return false;
    }
    char *roots = NULL;
    char id[DP_SPIFFE_ID_MAX + 1] = "";
    if (cert_pool_spiffe_id(c->pool, id, sizeof id) != MESH_OK && c->spiffe_id)
        snprintf(id, sizeof id, "%s", c->spiffe_id);
    cert_pool_export_bundle(c->pool, &roots, NULL);
    int rc = xdsc_trust_explain(chain, roots, c->server_name, id, now, &err);
    sk_X509_pop_free(chain, X509_free);
    free(roots);
    if (rc == MESH_OK) {
        c->trust_error[0] = '\0';
        return false;
    }
    snprintf(c->trust_error, sizeof c->trust_error, "%s", err.msg);
    log_error("xds", "%s", err.msg);
    xdsc_client_set_error(c, "%s", err.msg);
    return true;
}

static void start_csr(xdsc_client *c, enum xdsc_csr_mode mode, int64_t now_ms, int64_t now)
{
    mesh_err err;
    char id[DP_SPIFFE_ID_MAX + 1] = "";
    if (cert_pool_spiffe_id(c->pool, id, sizeof id) != MESH_OK && c->spiffe_id)
        snprintf(id, sizeof id, "%s", c->spiffe_id);
    char *roots = NULL, *key_pem = NULL, *chain_pem = NULL, *csr = NULL, *md = NULL;
    char *tok = NULL;
    int rc = MESH_OK;
    if (!id[0]) {
        rc = mesh_err_set(&err, MESH_EINVAL, "no SPIFFE ID to enrol as (give --id)");
        goto fail;
    }
    if (mode == XDSC_CSR_TOKEN) {
        tok = current_token(c, now);
        if (!tok) {
            rc = mesh_err_set(&err, MESH_ENOTFOUND, "no join token available");
            goto fail;
        }
        adopt_pinned_root(c, tok, now);
    }
    if ((rc = cert_pool_export_bundle(c->pool, &roots, &err)) != MESH_OK) {
        if (mode == XDSC_CSR_TOKEN)
            mesh_err_set(&err, rc, "no trust bundle to verify meshd with: give --ca-bundle, or "
                         "a join token that pins meshd's CA root (new tokens do)");
        goto fail;
    }
    switch (mode) {
    case XDSC_CSR_TOKEN: {
        cert_pool_info info;
        cert_pool_get_info(c->pool, now, &info);
        /* First contact reuses the pending key across retries; re-enrolling
         * after an expiry starts from a fresh key. */
        if ((rc = cert_pool_make_csr(c->pool, id, info.current.present, &csr, &err)) != MESH_OK)
            goto fail;
        size_t n = strlen(tok) + 8;
        if (!(md = malloc(n))) {
            rc = mesh_err_set(&err, MESH_ENOMEM, "out of memory");
            goto fail;
        }
        snprintf(md, n, "Bearer %s", tok);
        break;
    }
    case XDSC_CSR_RENEW:
        if ((rc = cert_pool_make_csr(c->pool, id, true, &csr, &err)) != MESH_OK ||
            (rc = cert_pool_export_identity(c->pool, &key_pem, &chain_pem, &err)) != MESH_OK)
            goto fail;
        break;
    case XDSC_CSR_RECOVER:
        if ((rc = recovery_csr(c, id, &csr, &md, &err)) != MESH_OK)
            goto fail;
        break;
    }
    snprintf(c->csr_target, sizeof c->csr_target, "%s",
             xdsc_targets_at(&c->targets, &c->csr_rot));
    grpc_channel *ch = xdsc_channel_create(c->csr_target, c->server_name, roots, key_pem,
                                           chain_pem, &err);
    if (!ch) {
        rc = err.code;
        goto fail;
    }
    rc = xdsc_csr_start(&c->csr, c->cq, ch, mode, csr, md, XDSC_CSR_TIMEOUT_MS, &err);
    if (rc != MESH_OK)
        goto fail;
    c->csr_active = true;
    if (c->csr_failures == 0)
        log_info("xds", "asking meshd %s for an SVID for %s (%s)", c->csr_target, id,
                 xdsc_csr_mode_name(mode));
    else
        log_debug("xds", "asking meshd %s for an SVID for %s (%s), attempt %llu", c->csr_target, id,
                  xdsc_csr_mode_name(mode), (unsigned long long)c->csr_failures + 1);
    goto out;
fail:
    {
        int64_t d = xdsc_backoff_next(&c->csr_bo);
        c->csr_next_ms = now_ms + d;
        if (rc != MESH_ENOTFOUND || mode != XDSC_CSR_TOKEN)
            log_warn("xds", "cannot start %s: %s; retrying in %lld ms", xdsc_csr_mode_name(mode),
                     err.msg, (long long)d);
        xdsc_client_set_error(c, "%s: %s", xdsc_csr_mode_name(mode), err.msg);
    }
out:
    xdsc_wipe_free(key_pem);
    xdsc_wipe_free(md);
    xdsc_wipe_free(tok);
    free(chain_pem);
    free(csr);
    free(roots);
}

/* While meshd cannot be reached or refuses us, a new token written to
 * --token-file counts as explicit trust material too (no restart needed). */
static void look_for_new_token(xdsc_client *c, int64_t now)
{
    if (c->reenrol || !c->token_file || now < c->token_check_at ||
        (c->ads_failures == 0 && c->csr_failures == 0))
        return;
    c->token_check_at = now + 5;
    char *tok = NULL;
    if (xdsc_read_token_file(c->token_file, &tok, NULL) != MESH_OK)
        return;
    char h[65];
    token_hash(tok, h);
    xdsc_wipe_free(tok);
    xdsc_inputs in;
    mesh_err err;
    if (xdsc_inputs_load(c->state_dir, &in, &err) != MESH_OK)
        return;
    if (xdsc_inputs_has_token(&in, h) || strcmp(h, c->refused_token) == 0)
        return;
    log_info("xds", "a new join token is in %s: re-enrolling with it", c->token_file);
    c->reenrol = true;
    c->csr_next_ms = 0;
}

void xdsc_id_step(xdsc_client *c, int64_t now_ms, int64_t now)
{
    look_for_new_token(c, now);
    if (c->csr_active || now_ms < c->csr_next_ms)
        return;
    if (c->reenrol) {
        char *tok = current_token(c, now);
        bool have_token = tok != NULL;
        xdsc_wipe_free(tok);
        if (have_token) {
            start_csr(c, XDSC_CSR_TOKEN, now_ms, now);
            return;
        }
        c->reenrol = false;   /* spent or refused meanwhile */
    }
    cert_pool_info info;
    cert_pool_get_info(c->pool, now, &info);
    bool have = info.current.present;
    /* Revoked: by a CRL we hold, or meshd said so when it ended our stream. */
    bool revoked = have && (info.current.revoked ||
                            strcmp(info.current.serial_hex, c->revoked_serial) == 0);
    bool usable = have && info.current.not_after > now && !revoked;
    bool next_ok = info.next.present && info.next.not_after > now && !info.next.revoked;
    if (!usable && !next_ok) {
        /* Re-key by ourselves where meshd allows it: a certificate revoked
         * as superseded may authenticate one renewal with a new key; for
         * any other reason meshd refuses and only a new token helps. */
        if (revoked && info.current.not_after > now && !c->rekey_refused) {
            start_csr(c, XDSC_CSR_RENEW, now_ms, now);
            return;
        }
        if (have && !revoked && !c->recovery_refused) {
            start_csr(c, XDSC_CSR_RECOVER, now_ms, now);
            return;
        }
        char *tok = current_token(c, now);
        bool have_token = tok != NULL;
        xdsc_wipe_free(tok);
        if (have_token)
            start_csr(c, XDSC_CSR_TOKEN, now_ms, now);
        else if (have && !revoked)
            start_csr(c, XDSC_CSR_RECOVER, now_ms, now);   /* meshd's view may change */
        else
            c->csr_next_ms = now_ms + xdsc_backoff_next(&c->csr_bo);
        return;
    }
    if (usable && c->renew_at && now >= c->renew_at && !next_ok)
        start_csr(c, XDSC_CSR_RENEW, now_ms, now);
}

void xdsc_id_on_csr_done(xdsc_client *c, bool ok, int64_t now_ms)
{
    int64_t now = xdsc_now_unix();
    enum xdsc_csr_mode mode = c->csr.mode;
    xdsc_csr_result res;
    mesh_err err;
    int rc = xdsc_csr_finish(&c->csr, ok, &res, &err);
    xdsc_csr_destroy(&c->csr);
    c->csr_active = false;
    if (rc == MESH_OK) {
        mesh_err berr;
        if (res.roots_pem && cert_pool_set_bundle(c->pool, res.roots_pem, now, &berr) != MESH_OK)
            log_warn("xds", "ignoring the roots meshd sent with the SVID: %s", berr.msg);
        rc = cert_pool_offer_svid(c->pool, res.chain_pem, NULL, now, &err);
        xdsc_csr_result_free(&res);
    }
    if (rc == MESH_OK) {
        if (c->csr_failures)
            log_info("xds", "meshd issued a new SVID (%s) after %llu failed attempt(s)",
                     xdsc_csr_mode_name(mode), (unsigned long long)c->csr_failures);
        else
            log_info("xds", "meshd issued a new SVID (%s)", xdsc_csr_mode_name(mode));
        pthread_mutex_lock(&c->mu);
        c->status.csr_ok++;
        pthread_mutex_unlock(&c->mu);
        if (mode == XDSC_CSR_TOKEN) {
            /* Spent: never present it again, not even after a restart. */
            if (c->token) {
                token_hash(c->token, c->refused_token);
                xdsc_wipe_free(c->token);
                c->token = NULL;
            } else if (c->token_file) {
                char *tok = NULL;
                if (xdsc_read_token_file(c->token_file, &tok, NULL) == MESH_OK)
                    token_hash(tok, c->refused_token);
                xdsc_wipe_free(tok);
            }
            xdsc_inputs_note_token(c->state_dir, c->refused_token);
            c->reenrol = false;
        }
        c->csr_failures = 0;
        c->csr_last_rc = MESH_OK;
        xdsc_backoff_reset(&c->csr_bo);
        xdsc_rotor_ok(&c->csr_rot);
        c->csr_next_ms = 0;
        c->recovery_refused = false;
        xdsc_id_watch_pool(c, now);
        return;
    }
    c->csr_failures++;
    /* Refusals are always worth a line; "meshd unreachable" once, then a
     * line a minute while the outage lasts. */
    bool loud = rc != c->csr_last_rc || c->csr_failures == 1 || now - c->csr_last_fail_log >= 60;
    c->csr_last_rc = rc;
    if (loud)
        c->csr_last_fail_log = now;
    pthread_mutex_lock(&c->mu);
    c->status.csr_failed++;
    pthread_mutex_unlock(&c->mu);
    /* Unreachable or broken replica: the next one at once (a whole failed
     * round backs off). A refusal comes from the shared store, so another
     * replica would say the same: back off as before. */
    int64_t d = rc == MESH_EPERM ? xdsc_backoff_next(&c->csr_bo) : xdsc_id_next_delay(c);
    c->csr_next_ms = now_ms + d;
    xdsc_client_set_error(c, "%s: %s", xdsc_csr_mode_name(mode), err.msg);
    cert_pool_info info;
    cert_pool_get_info(c->pool, now, &info);
    bool revoked = info.current.present &&
                   (info.current.revoked ||
                    strcmp(info.current.serial_hex, c->revoked_serial) == 0);
    if (rc == MESH_EPERM && mode == XDSC_CSR_RENEW && revoked) {
        c->rekey_refused = true;
        stranded(c, "meshd refused a renewal with the revoked SVID", err.msg);
        if (loud)
            log_error("xds", "meshd refused a renewal with our revoked SVID: %s. mTLS stays off "
                      "until this sidecar has a new SVID: issue a new join token ('meshctl "
                      "workload token ...') and write it to %s (re-read on every attempt); the "
                      "sidecar then enrols with a fresh key by itself", err.msg,
                      c->token_file ? c->token_file : "the --token-file");
        c->csr_next_ms = now_ms;    /* straight to the token path */
    } else if (rc == MESH_EPERM && mode == XDSC_CSR_RECOVER) {
        c->recovery_refused = true;
        stranded(c, "meshd refused self-recovery with the expired SVID", err.msg);
        if (loud)
            log_error("xds", "meshd refused self-recovery with the expired SVID: %s. mTLS stays "
                      "off until this sidecar has a valid SVID: issue a new join token "
                      "('meshctl workload token ...') and write it to %s (re-read on every "
                      "attempt). Retrying in %lld ms", err.msg,
                      c->token_file ? c->token_file : "the --token-file", (long long)d);
    } else if (rc == MESH_EPERM && mode == XDSC_CSR_TOKEN) {
        char *tok = current_token(c, now);
        if (tok) {
            token_hash(tok, c->refused_token);
            xdsc_inputs_note_token(c->state_dir, c->refused_token);
        }
        xdsc_wipe_free(tok);
        if (c->reenrol) {
            /* The SVID in use stays valid: not stranded, only the new token failed. */
            c->reenrol = false;
            log_warn("xds", "re-enrolment with the new join token was refused; the current "
                     "SVID stays in use");
        } else {
            stranded(c, "meshd refused the join token", err.msg);
        }
        if (loud)
            log_error("xds", "meshd refused the join token: %s. Issue a new one and write it to "
                      "%s (re-read on every attempt). Retrying in %lld ms", err.msg,
                      c->token_file ? c->token_file : "a --token-file", (long long)d);
    } else if (loud) {
        /* Not a refusal: meshd unreachable, or its chain does not verify. */
        bool explained = rc == MESH_EIO && xdsc_id_check_meshd(c, now);
        log_msg(explained ? LOG_DEBUG : LOG_WARN, "xds",
                "%s at meshd %s failed (%llu attempt(s)): %s; trying %s in %lld ms",
                xdsc_csr_mode_name(mode), c->csr_target, (unsigned long long)c->csr_failures,
                err.msg, xdsc_targets_at(&c->targets, &c->csr_rot), (long long)d);
        if (explained)
            xdsc_client_set_error(c, "%s: %s", xdsc_csr_mode_name(mode), c->trust_error);
    } else {
        log_debug("xds", "%s failed: %s; retrying in %lld ms", xdsc_csr_mode_name(mode),
                  err.msg, (long long)d);
    }
}

