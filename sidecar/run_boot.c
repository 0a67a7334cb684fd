/* sidecar/run_boot.c — mesh-sidecar's identity at start: the persisted cert
 * pool if there is one (a restart during a meshd outage keeps serving), else a
 * fresh pool that trusts --ca-bundle and waits for its first SVID. Explicit
 * trust material on the command line wins over the state directory when it
 * is new (xds_inputs.h): a changed --ca-bundle replaces the persisted roots,
 * an unused join token re-enrols. So a sidecar that missed a CA rotation
 * recovers by a restart with current material, keeping its state directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ca/join_token.h"
#include "sidecar/dp_spiffe.h"
#include "sidecar/tls_util.h"
#include "sidecar/xds_inputs.h"
#include "sidecar/xds_persist.h"
#include "sidecar/xds_trust.h"
#include "sidecar/run.h"

static int ensure_dir(const char *dir, mesh_err *err)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT)
            return mesh_err_set(err, MESH_EIO, "--state-dir %s: %s", dir, strerror(errno));
        if (mkdir(dir, 0700) != 0)
            return mesh_err_set(err, MESH_EIO, "cannot create --state-dir %s: %s", dir,
                                strerror(errno));
        return MESH_OK;
    }
    if (!S_ISDIR(st.st_mode))
        return mesh_err_set(err, MESH_EINVAL, "--state-dir %s is not a directory", dir);
    if (st.st_mode & 0077)
        log_warn("sidecar", "state directory %s is accessible to group/others (mode %03o); it "
                 "holds this sidecar's private key, consider chmod 700", dir,
                 (unsigned)(st.st_mode & 0777));
    return MESH_OK;
}

/* have + the roots of extra that have lacks (by fingerprint), as PEM. */
static char *merge_roots(const char *have, const char *extra)
{
    STACK_OF(X509) *a = NULL, *b = NULL;
    mesh_err e;
    if (tls_parse_certs(have, "persisted bundle", &a, &e) != MESH_OK ||
        tls_parse_certs(extra, "--ca-bundle", &b, &e) != MESH_OK) {
        sk_X509_pop_free(a, X509_free);
        sk_X509_pop_free(b, X509_free);
        return NULL;
    }
    while (sk_X509_num(b) > 0) {
        X509 *x = sk_X509_shift(b);
        char fx[65];
        tls_cert_sha256(x, fx);
        bool dup = false;
        for (int i = 0; i < sk_X509_num(a) && !dup; i++) {
            char fa[65];
            tls_cert_sha256(sk_X509_value(a, i), fa);
            dup = strcmp(fa, fx) == 0;
        }
        if (dup || !sk_X509_push(a, x))
            X509_free(x);
    }
    char *pem = tls_certs_to_pem(a);
    sk_X509_pop_free(a, X509_free);
    sk_X509_free(b);
    return pem;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    out[0] = '\0';
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return;
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* --ca-bundle against the persisted roots (xds_inputs.h has the rules). */
static int apply_bundle_flag(const sc_opts *o, cert_pool *p, bool fresh_pool, xdsc_inputs *in,
                             bool *changed, mesh_err *err)
{
    char *pem = NULL;
    int rc = xdsc_read_file(o->ca_bundle, 1024 * 1024, &pem, NULL, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "--ca-bundle %s", o->ca_bundle);
    char hash[65];
    sha256_hex(pem, strlen(pem), hash);
    cert_pool_info info;
    int64_t now = (int64_t)time(NULL);
    cert_pool_get_info(p, now, &info);
    if (!fresh_pool && info.n_roots > 0 && strcmp(hash, in->bundle) == 0) {
        log_debug("sidecar", "--ca-bundle %s is the file taken in before; the persisted bundle "
                  "(kept current by meshd) stays", o->ca_bundle);
        free(pem);
        return MESH_OK;
    }
    char *have = NULL;
    const char *how = "trusts";
    char *use = pem;
    if (!fresh_pool && info.n_roots > 0) {
        if (in->exists) {
            how = "is new since the last start: it replaces the persisted roots;";
        } else if (cert_pool_export_bundle(p, &have, NULL) == MESH_OK) {
            /* A state directory from before these records: nothing says which
             * is newer, so trust both until meshd pushes its bundle. */
            use = merge_roots(have, pem);
            how = "is merged with the persisted roots (no record of an earlier --ca-bundle "
                  "says which is newer);";
        }
    }
    rc = use ? cert_pool_set_bundle(p, use, now, err)
             : mesh_err_set(err, MESH_ENOMEM, "out of memory");
    if (use != pem)
        free(use);
    free(have);
    free(pem);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "--ca-bundle %s", o->ca_bundle);
    memcpy(in->bundle, hash, sizeof in->bundle);
    *changed = true;
    char roots[160];
    char *now_pem = NULL;
    if (cert_pool_export_bundle(p, &now_pem, NULL) == MESH_OK)
        xdsc_trust_describe_roots(now_pem, roots, sizeof roots);
    else
        snprintf(roots, sizeof roots, "?");
    free(now_pem);
    if (!fresh_pool)
        log_info("sidecar", "--ca-bundle %s %s trusting roots sha256 %s (meshd's ROOTCA "
                 "updates them once connected)", o->ca_bundle, how, roots);
    return MESH_OK;
}

/* The join token given at start (--token, else the file), parsed. */
static bool read_start_token(const sc_opts *o, join_token_parts *parts, char hash[65])
{
    char *tok = NULL;
    mesh_err e;
    if (o->token)
        tok = strdup(o->token);
    else if (o->token_file && xdsc_read_token_file(o->token_file, &tok, &e) != MESH_OK)
        tok = NULL;
    if (!tok)
        return false;
    bool ok = join_token_parse(tok, parts, &e) == MESH_OK;
    xdsc_token_hash(tok, hash);
    OPENSSL_cleanse(tok, strlen(tok));
    free(tok);
    return ok;
}

int sc_boot_identity(const sc_opts *o, cert_pool **pool, sc_boot_info *bi, mesh_err *err)
{
    *pool = NULL;
    memset(bi, 0, sizeof *bi);
    int rc = ensure_dir(o->state_dir, err);
    if (rc != MESH_OK)
        return rc;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", o->state_dir, XDSC_POOL_FILE);
    cert_pool *p = NULL;
    rc = cert_pool_load(path, &p, err);
    int64_t now = (int64_t)time(NULL);
    bool fresh = rc == MESH_ENOTFOUND;
    if (fresh) {
        if ((rc = cert_pool_new(&p, err)) != MESH_OK)
            return rc;
    } else if (rc != MESH_OK) {
        return mesh_err_prefix(err, "loading the cert pool");
    }
    xdsc_inputs in;
    mesh_err ierr = {0};
    if (xdsc_inputs_load(o->state_dir, &in, &ierr) != MESH_OK) {
        log_warn("sidecar", "%s; treating every explicit input as new", ierr.msg);
        memset(&in, 0, sizeof in);
        in.exists = true;
    }
    join_token_parts tp;
    char tok_hash[65] = "";
    bool have_token = read_start_token(o, &tp, tok_hash);
    bool pinned = have_token && tp.n_pins > 0;
    OPENSSL_cleanse(&tp, sizeof tp);
    bool inputs_changed = false;
    if (o->ca_bundle && (rc = apply_bundle_flag(o, p, fresh, &in, &inputs_changed, err)) != MESH_OK)
        goto fail;
    cert_pool_info info;
    cert_pool_get_info(p, now, &info);
    if (info.n_roots == 0 && !pinned) {
        rc = mesh_err_set(err, MESH_EINVAL,
                          fresh ? "first contact (no cert pool in %s): give --ca-bundle "
                                  "('meshctl ca bundle > bundle.pem') or a join token that pins "
                                  "the CA (as 'meshctl workload add/token' print them)"
                                : "the cert pool in %s has no trust bundle; give --ca-bundle",
                          o->state_dir);
        goto fail;
    }
    if (info.current.present) {
        if (o->spiffe_id && strcmp(o->spiffe_id, info.current.spiffe_id) != 0) {
            rc = mesh_err_set(err, MESH_EINVAL,
                              "--state-dir %s belongs to %s, not %s; use another state "
                              "directory (or remove this one to re-enrol)", o->state_dir,
                              info.current.spiffe_id, o->spiffe_id);
            goto fail;
        }
        char na[32];
        tls_format_time(info.current.not_after, na, sizeof na);
        if (info.current.not_after > now)
            log_info("sidecar", "loaded SVID %s serial %s from %s: valid until %s (%lld s "
                     "left even if meshd stays away)", info.current.spiffe_id,
                     info.current.serial_hex, path, na,
                     (long long)(info.current.not_after - now));
        else
            log_warn("sidecar", "loaded SVID %s serial %s from %s: EXPIRED at %s; mTLS stays "
                     "off until meshd renews it (self-recovery with this SVID)",
                     info.current.spiffe_id, info.current.serial_hex, path, na);
        /* A join token this state directory never used is explicit: re-enrol
         * with it (new key and SVID) while the loaded SVID keeps serving. */
        if (have_token && !xdsc_inputs_has_token(&in, tok_hash)) {
            bi->reenrol = true;
            log_info("sidecar", "a join token this state directory has not used was given: "
                     "re-enrolling with it (the loaded SVID serves until the new one arrives)");
        }
    } else {
        /* No SVID yet: first contact. */
        bi->first_contact = true;
        if (!o->spiffe_id) {
            rc = mesh_err_set(err, MESH_EINVAL, "first contact: --id spiffe://... is required");
            goto fail;
        }
        if ((rc = dp_spiffe_check(o->spiffe_id, NULL, 0, err)) != MESH_OK) {
            mesh_err_prefix(err, "--id");
            goto fail;
        }
        if (!o->token && !o->token_file) {
            rc = mesh_err_set(err, MESH_EINVAL,
                              "first contact: a join token is required: --token-file FILE (or "
                              "--token mjt_...), from 'meshctl workload add %s'", o->spiffe_id);
            goto fail;
        }
        /* Persisted xDS state without an identity is not ours to trust. */
        xdsc_persist_clear(o->state_dir);
    }
    if (inputs_changed) {
        if (!fresh && cert_pool_save(p, path, err) != MESH_OK)
            log_warn("sidecar", "cannot save the cert pool with the new bundle: %s", err->msg);
        mesh_err serr;
        if (xdsc_inputs_save(o->state_dir, &in, &serr) != MESH_OK)
            log_warn("sidecar", "cannot record the --ca-bundle taken in: %s", serr.msg);
    }
    *pool = p;
    return MESH_OK;
fail:
    cert_pool_free(p);
    return rc;
}
