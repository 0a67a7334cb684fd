/* ca/ca_admin.c — creating CAs: ca_init (the first, active) and ca_prepare
 * (the next one during a rotation, published but not yet signing).
 *
 * Order of operations, chosen so that a crash at any point leaves nothing
 * half-trusted: build or import the material in memory, write the key file
 * (O_EXCL, 0600, fsynced), then in one store transaction re-check the
 * preconditions, insert the CA row, record the trust domain and audit. If
 * the transaction fails the key file is removed again; a crash between the
 * two leaves only an unreferenced key file, never a CA row without its key. */
#include "ca/ca_internal.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/csr.h"
#include "ca/spiffe_id.h"
#include "common/log.h"

/* Everything about a new CA before it is stored. */
typedef struct new_ca {
    X509 *cert;
    EVP_PKEY *key;
    STACK_OF(X509) *chain; /* above cert, up to and including the root; NULL/empty for a root */
    char *cert_pem;
    char *chain_pem;
    char serial[48];
    char subject[512];
    char key_type[32];
    char key_path[PATH_MAX];
    int64_t not_before, not_after;
} new_ca;

static void new_ca_free(new_ca *n)
{
    X509_free(n->cert);
    EVP_PKEY_free(n->key);
    sk_X509_pop_free(n->chain, X509_free);
    free(n->cert_pem);
    free(n->chain_pem);
    memset(n, 0, sizeof *n);
}

static int is_live_state(const char *state)
{
    return strcmp(state, CA_STATE_REMOVED) != 0;
}

/* Checks what must hold for creating a CA in `state`, against the store's
 * current CAs and trust_domain setting. Run once early (to fail before key
 * generation) and again inside the write transaction. */
static int check_preconditions(mesh_store *st, const char *state, const char *td,
                               mesh_err *err)
{
    store_ca *list = NULL;
    size_t n = 0;
    int rc = store_ca_list(st, &list, &n, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "listing CAs");
    int64_t active = 0, prepared = 0;
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_live_state(list[i].state))
            continue;
        live++;
        if (strcmp(list[i].state, CA_STATE_ACTIVE) == 0)
            active = list[i].id;
        if (strcmp(list[i].state, CA_STATE_PREPARED) == 0)
            prepared = list[i].id;
    }
    store_ca_free_list(list, n);
    if (strcmp(state, CA_STATE_ACTIVE) == 0 && live > 0)
        return mesh_err_set(err, MESH_EEXISTS,
                            "a CA already exists in this store%s; use 'meshctl ca rotate' to "
                            "replace it",
                            active ? "" : " (not active)");
    if (strcmp(state, CA_STATE_PREPARED) == 0) {
        if (!active)
            return mesh_err_set(err, MESH_ENOTFOUND,
                                "no active CA to rotate from; create one with 'meshctl ca init'");
        if (prepared)
            return mesh_err_set(err, MESH_EEXISTS,
                                "CA #%lld is already prepared; activate it first", (long long)prepared);
    }
    char *cur = NULL;
    rc = store_setting_get(st, CA_SETTING_TRUST_DOMAIN, &cur, err);
    if (rc == MESH_ENOTFOUND) {
        if (strcmp(state, CA_STATE_PREPARED) == 0)
            return mesh_err_set(err, MESH_ECORRUPT,
                                "the store has an active CA but no trust_domain setting");
        return MESH_OK;
    }
    if (rc != MESH_OK)
        return rc;
    if (strcmp(cur, td) != 0) {
        rc = mesh_err_set(err, MESH_EINVAL,
                          "this store belongs to trust domain '%s', not '%s'; a trust domain "
                          "cannot change once identities were issued in it",
                          cur, td);
        free(cur);
        return rc;
    }
    free(cur);
    return MESH_OK;
}

static int x509_name_string(X509_NAME *name, char *buf, size_t len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return -1;
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n < 0)
        n = 0;
    if ((size_t)n >= len)
        n = (long)len - 1;
    memcpy(buf, data, (size_t)n);
    buf[n] = '\0';
    BIO_free(bio);
    return 0;
}

static int build_material(const ca_init_opts *opts, const char *td, new_ca *n, mesh_err *err)
{
    int rc;
    if (opts->import_cert_path && opts->import_cert_path[0]) {
        rc = ca_import(td, opts->import_cert_path, opts->import_key_path, opts->import_chain_path,
                       &n->cert, &n->key, &n->chain, err);
        if (rc != MESH_OK)
            return mesh_err_prefix(err, "plug-in CA");
    } else {
        if (opts->import_key_path && opts->import_key_path[0])
            return mesh_err_set(err, MESH_EINVAL,
                                "a plug-in CA key was given without its certificate");
        rc = ca_make_root(td, opts->key_type, opts->ttl_seconds, &n->cert, &n->key, err);
        if (rc != MESH_OK)
            return rc;
    }
    if ((rc = ca_key_type_name(n->key, n->key_type, sizeof n->key_type, err)) != MESH_OK ||
        (rc = cert_serial_hex(n->cert, n->serial, sizeof n->serial, err)) != MESH_OK ||
        (rc = cert_validity(n->cert, &n->not_before, &n->not_after, err)) != MESH_OK ||
        (rc = pem_write_cert(n->cert, &n->cert_pem, err)) != MESH_OK)
        return rc;
    x509_name_string(X509_get_subject_name(n->cert), n->subject, sizeof n->subject);
    /* chain_pem: the certs above, concatenated ("" for a root). */
    size_t total = 1;
    int nchain = n->chain ? sk_X509_num(n->chain) : 0;
    char **parts = calloc((size_t)(nchain > 0 ? nchain : 1), sizeof *parts);
    if (!parts)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    rc = MESH_OK;
    for (int i = 0; i < nchain && rc == MESH_OK; i++) {
        rc = pem_write_cert(sk_X509_value(n->chain, i), &parts[i], err);
        if (rc == MESH_OK)
            total += strlen(parts[i]);
    }
    if (rc == MESH_OK) {
        n->chain_pem = malloc(total);
        if (!n->chain_pem)
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        else {
            char *p = n->chain_pem;
            for (int i = 0; i < nchain; i++) {
                size_t l = strlen(parts[i]);
                memcpy(p, parts[i], l);
                p += l;
            }
            *p = '\0';
        }
    }
    for (int i = 0; i < nchain; i++)
        free(parts[i]);
    free(parts);
    return rc;
}

static int create_ca(mesh_store *st, const ca_init_opts *opts, const char *state,
                     int64_t *ca_id_out, mesh_err *err)
{
    if (!st || !opts)
        return mesh_err_set(err, MESH_EINVAL, "missing store or options");
    const char *op = strcmp(state, CA_STATE_ACTIVE) == 0 ? "ca.init" : "ca.prepare";
    char *stored_td = NULL;
    const char *td = opts->trust_domain;
    int rc;
    if ((!td || !td[0]) && strcmp(state, CA_STATE_PREPARED) == 0) {
        /* A rotation keeps the trust domain; not repeating it is fine. */
        rc = store_setting_get(st, CA_SETTING_TRUST_DOMAIN, &stored_td, err);
        if (rc != MESH_OK && rc != MESH_ENOTFOUND)
            return rc;
        td = stored_td;
    }
    if ((rc = spiffe_id_valid_trust_domain(td, err)) != MESH_OK) {
        free(stored_td);
        return rc;
    }
    new_ca n;
    memset(&n, 0, sizeof n);
    int key_written = 0;
    int in_tx = 0;
    if ((rc = check_preconditions(st, state, td, err)) != MESH_OK ||
        (rc = ca_keydir_prepare(opts->key_dir, err)) != MESH_OK ||
        (strcmp(state, CA_STATE_ACTIVE) == 0 &&
         (rc = ca_keydir_check_unclaimed(opts->key_dir, st, err)) != MESH_OK) ||
        (rc = build_material(opts, td, &n, err)) != MESH_OK)
        goto fail;
    /* Record an absolute path: meshd and meshctl may run from other
     * working directories than the one `ca init` ran in. */
    char keydir_abs[PATH_MAX];
    if (!realpath(opts->key_dir, keydir_abs)) {
        rc = mesh_err_set(err, MESH_EIO, "cannot resolve key directory %s", opts->key_dir);
        goto fail;
    }
    int pl = snprintf(n.key_path, sizeof n.key_path, "%s/ca-%s.key", keydir_abs, n.serial);
    if (pl < 0 || (size_t)pl >= sizeof n.key_path) {
        rc = mesh_err_set(err, MESH_EINVAL, "CA key directory path is too long");
        goto fail;
    }
    if ((rc = ca_keyfile_write(n.key_path, n.key, err)) != MESH_OK)
        goto fail;
    key_written = 1;

    store_ca row;
    memset(&row, 0, sizeof row);
    row.state = (char *)state;
    row.cert_pem = n.cert_pem;
    row.chain_pem = n.chain_pem;
    row.key_path = n.key_path;
    row.serial_hex = n.serial;
    row.subject = n.subject;
    row.key_type = n.key_type;
    row.not_before = n.not_before;
    row.not_after = n.not_after;
    row.created_at = (int64_t)time(NULL);
    int64_t id = 0;
    char detail[768];
    snprintf(detail, sizeof detail, "serial=%s subject=%s key=%s%s", n.serial, n.subject,
             n.key_type, opts->import_cert_path && opts->import_cert_path[0] ? " plug-in" : "");
    if ((rc = store_begin(st, err)) != MESH_OK)
        goto fail;
    in_tx = 1;
    if ((rc = check_preconditions(st, state, td, err)) != MESH_OK ||
        (rc = store_ca_insert(st, &row, &id, err)) != MESH_OK ||
        (rc = store_setting_set(st, CA_SETTING_TRUST_DOMAIN, td, err)) != MESH_OK ||
        (rc = store_audit(st, "ca", op, td, detail, 1, err)) != MESH_OK ||
        (rc = store_commit(st, err)) != MESH_OK)
        goto fail;
    char t[32];
    log_info("ca", "%s: CA #%lld %s (%s, serial %s) for trust domain %s, valid until %s", op,
             (long long)id, state, n.key_type, n.serial, td,
             ca_fmt_time(n.not_after, t, sizeof t));
    if (ca_id_out)
        *ca_id_out = id;
    new_ca_free(&n);
    free(stored_td);
    return MESH_OK;
fail:
    if (in_tx)
        store_rollback(st);
    if (key_written)
        unlink(n.key_path);
    new_ca_free(&n);
    free(stored_td);
    return rc;
}

int ca_init(mesh_store *st, const ca_init_opts *opts, int64_t *ca_id_out, mesh_err *err)
{
    return create_ca(st, opts, CA_STATE_ACTIVE, ca_id_out, err);
}

int ca_prepare(mesh_store *st, const ca_init_opts *opts, int64_t *ca_id_out, mesh_err *err)
{
    return create_ca(st, opts, CA_STATE_PREPARED, ca_id_out, err);
}
