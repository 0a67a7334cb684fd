/* ca/ca_rotate.c — CA rotation steps after ca_prepare, and the trust bundle.
 *
 * The bundle is published before a new CA signs anything (prepared CAs are
 * in it), and an old CA stays in it while any leaf it signed is unexpired
 * (retired), so at no step can a peer see a leaf whose root it lacks. */
#include "ca/ca_internal.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/csr.h"
#include "common/log.h"

static const store_ca *find_ca(const store_ca *list, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].id == id)
            return &list[i];
    return NULL;
}

/* Before a CA starts signing: its key file must load and match, and its cert
 * must be within its validity, or activation would stop all issuance. */
static int check_usable(const store_ca *c, mesh_err *err)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc = pem_read_cert(c->cert_pem, &cert, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "CA #%lld certificate", (long long)c->id);
    rc = ca_keyfile_load(c->key_path, &key, err);
    if (rc == MESH_OK && !cert_key_matches(cert, key))
        rc = mesh_err_set(err, MESH_ECORRUPT, "CA key file %s does not match CA #%lld",
                          c->key_path, (long long)c->id);
    int64_t now = (int64_t)time(NULL);
    char t[32];
    if (rc == MESH_OK && c->not_after <= now)
        rc = mesh_err_set(err, MESH_EEXPIRED, "CA #%lld expired at %s; prepare a new one",
                          (long long)c->id, ca_fmt_time(c->not_after, t, sizeof t));
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

/* The switch itself, inside the caller's write transaction: the prepared CA
 * becomes active, the active one retired. note (may be NULL) goes into the
 * audit detail. Returns the id of the CA it retired in *old_out. */
int ca_activate_in_tx(mesh_store *st, int64_t ca_id, const char *note, int64_t *old_out,
                      mesh_err *err)
{
    store_ca *list = NULL;
    size_t n = 0;
    int rc = store_ca_list(st, &list, &n, err);
    if (rc != MESH_OK)
        return rc;
    const store_ca *target = find_ca(list, n, ca_id);
    int64_t old = 0;
    if (!target) {
        rc = mesh_err_set(err, MESH_ENOTFOUND, "no CA #%lld", (long long)ca_id);
        goto out;
    }
    if (strcmp(target->state, CA_STATE_ACTIVE) == 0) {
        rc = mesh_err_set(err, MESH_EEXISTS, "CA #%lld is already active", (long long)ca_id);
        goto out;
    }
    if (strcmp(target->state, CA_STATE_PREPARED) != 0) {
        rc = mesh_err_set(err, MESH_EINVAL,
                          "CA #%lld is %s; only a prepared CA can be activated "
                          "('meshctl ca rotate' prepares one)",
                          (long long)ca_id, target->state);
        goto out;
    }
    if ((rc = check_usable(target, err)) != MESH_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].state, CA_STATE_ACTIVE) != 0)
            continue;
        old = list[i].id;
        if ((rc = store_ca_set_state(st, old, CA_STATE_RETIRED, err)) != MESH_OK)
            goto out;
    }
    char detail[640];
    snprintf(detail, sizeof detail, "ca=%lld serial=%s previous=%lld%s%s", (long long)ca_id,
             target->serial_hex, (long long)old, note && note[0] ? " " : "", note ? note : "");
    if ((rc = store_ca_set_state(st, ca_id, CA_STATE_ACTIVE, err)) != MESH_OK ||
        (rc = store_audit(st, "ca", "ca.activate", target->serial_hex, detail, 1, err)) !=
            MESH_OK)
        goto out;
    if (old_out)
        *old_out = old;
out:
    store_ca_free_list(list, n);
    return rc;
}

int ca_activate(mesh_store *st, int64_t ca_id, mesh_err *err)
{
    if (!st)
        return mesh_err_set(err, MESH_EINVAL, "missing store");
    int rc = store_begin(st, err);
    if (rc != MESH_OK)
        return rc;
    int64_t old = 0;
    if ((rc = ca_activate_in_tx(st, ca_id, NULL, &old, err)) != MESH_OK ||
        (rc = store_commit(st, err)) != MESH_OK) {
        store_rollback(st);
        return rc;
    }
    log_info("ca", "CA #%lld is now active; CA #%lld retired (stays in the bundle until its "
                   "last SVID expires)",
             (long long)ca_id, (long long)old);
    return MESH_OK;
}

int ca_prune(mesh_store *st, int64_t now, int *removed_out, mesh_err *err)
{
    if (removed_out)
        *removed_out = 0;
    if (!st)
        return mesh_err_set(err, MESH_EINVAL, "missing store");
    int rc = store_begin(st, err);
    if (rc != MESH_OK)
        return rc;
    store_ca *list = NULL;
    size_t n = 0;
    int removed = 0;
    int64_t *gone = NULL;
    if ((rc = store_ca_list(st, &list, &n, err)) != MESH_OK)
        goto fail;
    gone = calloc(n ? n : 1, sizeof *gone);
    if (!gone) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].state, CA_STATE_RETIRED) != 0)
            continue;
        int64_t live = 0;
        if ((rc = store_cert_count_live_for_ca(st, list[i].id, now, &live, err)) != MESH_OK)
            goto fail;
        if (live > 0) {
            /* Debug only: meshd calls this periodically (automatic pruning). */
            log_debug("ca", "retired CA #%lld still has %lld unexpired SVID(s); keeping it in "
                            "the bundle",
                      (long long)list[i].id, (long long)live);
            continue;
        }
        char detail[96];
        snprintf(detail, sizeof detail, "ca=%lld serial=%s", (long long)list[i].id,
                 list[i].serial_hex);
        if ((rc = store_ca_set_state(st, list[i].id, CA_STATE_REMOVED, err)) != MESH_OK ||
            (rc = store_audit(st, "ca", "ca.remove", list[i].serial_hex, detail, 1, err)) !=
                MESH_OK)
            goto fail;
        gone[removed++] = list[i].id;
    }
    if ((rc = store_commit(st, err)) != MESH_OK)
        goto fail;
    for (int i = 0; i < removed; i++)
        log_info("ca", "retired CA #%lld has no unexpired SVID left; removed from the bundle",
                 (long long)gone[i]);
    free(gone);
    store_ca_free_list(list, n);
    if (removed_out)
        *removed_out = removed;
    return MESH_OK;
fail:
    store_rollback(st);
    free(gone);
    store_ca_free_list(list, n);
    return rc;
}

int ca_bundle_pem(mesh_store *st, char **pem_out, mesh_err *err)
{
    *pem_out = NULL;
    store_ca *list = NULL;
    size_t n = 0;
    int rc = store_ca_list(st, &list, &n, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "reading CAs for the trust bundle");
    STACK_OF(X509) *roots = sk_X509_new_null();
    BIO *bio = BIO_new(BIO_s_mem());
    if (!roots || !bio) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].state, CA_STATE_REMOVED) == 0)
            continue;
        X509 *root = NULL;
        if ((rc = ca_root_cert(&list[i], &root, err)) != MESH_OK) {
            mesh_err_prefix(err, "CA #%lld in the store", (long long)list[i].id);
            goto out;
        }
        int dup = 0;
        for (int j = 0; j < sk_X509_num(roots) && !dup; j++)
            dup = X509_cmp(sk_X509_value(roots, j), root) == 0;
        if (dup) {
            X509_free(root);
            continue;
        }
        if (!sk_X509_push(roots, root)) {
            X509_free(root);
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
            goto out;
        }
        if (PEM_write_bio_X509(bio, root) != 1) {
            rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot encode the trust bundle");
            goto out;
        }
    }
    if (sk_X509_num(roots) == 0) {
        rc = mesh_err_set(err, MESH_ENOTFOUND,
                          "no CA in the store, so no trust bundle; run 'meshctl ca init'");
        goto out;
    }
    rc = ca_bio_to_string(bio, pem_out, err);
out:
    BIO_free(bio);
    sk_X509_pop_free(roots, X509_free);
    store_ca_free_list(list, n);
    return rc;
}
