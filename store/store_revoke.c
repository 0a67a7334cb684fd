/* store/store_revoke.c — what revocation keeps beyond the revoked flag of a
 * certificate: the public keys reported compromised (never certified again),
 * the signed CRL of each CA, and the queries that feed both (every live
 * certificate of a key; the revoked, unexpired certificates of a CA). */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

static const char SQL_CERT_BY_PUBKEY[] =
    "SELECT " STORE_CERT_COLUMNS " FROM certs WHERE pubkey_sha256 = ?1 AND not_after >= ?2 "
    "ORDER BY issued_at DESC, rowid DESC";
/* Matches the partial index certs_revoked (ca_id, not_after) WHERE revoked = 1. */
static const char SQL_CERT_REVOKED_FOR_CA[] =
    "SELECT serial_hex, spiffe_id, pubkey_sha256, not_before, not_after, issued_at, ca_id, "
    "revoked, revoked_at, revoke_reason, '' FROM certs "
    "WHERE ca_id = ?1 AND revoked = 1 AND not_after >= ?2 ORDER BY serial_hex";
static const char SQL_CERT_SET_REASON[] =
    "UPDATE certs SET revoke_reason = ?2 WHERE serial_hex = ?1 AND revoked = 1";
static const char SQL_KEY_ADD[] =
    "INSERT INTO compromised_keys (pubkey_sha256, serial_hex, spiffe_id, reported_at) "
    "VALUES (?1, ?2, ?3, ?4)";
static const char SQL_KEY_GET[] =
    "SELECT pubkey_sha256, serial_hex, spiffe_id, reported_at FROM compromised_keys "
    "WHERE pubkey_sha256 = ?1";
#define CRL_COLUMNS "ca_id, crl_number, this_update, next_update, n_entries, entries_sha256, crl_pem"
static const char SQL_CRL_GET[] = "SELECT " CRL_COLUMNS " FROM crls WHERE ca_id = ?1";
static const char SQL_CRL_LIST[] = "SELECT " CRL_COLUMNS " FROM crls ORDER BY ca_id";
static const char SQL_CRL_PUT[] =
    "INSERT INTO crls (" CRL_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT (ca_id) DO UPDATE SET crl_number = ?2, this_update = ?3, next_update = ?4, "
    "  n_entries = ?5, entries_sha256 = ?6, crl_pem = ?7";

/* ---- certificates ------------------------------------------------------------ */

int store_cert_list_by_pubkey(mesh_store *st, const char *pubkey_sha256, int64_t now,
                              store_cert **out, size_t *n_out, mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    int rc = store_require_hex(pubkey_sha256, "public key SHA-256", 64, 64, err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    if ((rc = store_stmt(st, SQL_CERT_BY_PUBKEY, &s, err)) != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, pubkey_sha256, &brc);
    store_bind_int64(s, 2, now, &brc);
    return store_cert_collect(st, s, brc, out, n_out, err);
}

int store_cert_list_revoked_for_ca(mesh_store *st, int64_t ca_id, int64_t min_not_after,
                                   store_cert **out, size_t *n_out, mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    store_q *s;
    int rc = store_stmt(st, SQL_CERT_REVOKED_FOR_CA, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_int64(s, 1, ca_id, &brc);
    store_bind_int64(s, 2, min_not_after, &brc);
    return store_cert_collect(st, s, brc, out, n_out, err);
}

int store_cert_set_revoke_reason(mesh_store *st, const char *serial_hex, const char *reason,
                                 mesh_err *err)
{
    int rc = store_require(serial_hex, "certificate serial", err);
    if (rc == MESH_OK)
        rc = store_require(reason, "revocation reason", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    if ((rc = store_stmt(st, SQL_CERT_SET_REASON, &s, err)) != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, serial_hex, &brc);
    store_bind_text(s, 2, reason, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    int64_t changed = src == STORE_DONE ? store_changes(st) : 0;
    if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "changing the revocation reason of %s", serial_hex);
    else if (changed == 0)
        rc = mesh_err_set(err, MESH_ENOTFOUND, "no revoked certificate with serial %s",
                          serial_hex);
    store_stmt_release(s);
    return rc;
}

/* ---- compromised keys ---------------------------------------------------------- */

int store_key_compromised_add(mesh_store *st, const char *pubkey_sha256, const char *serial_hex,
                              const char *spiffe_id, int64_t now, mesh_err *err)
{
    int rc = store_require_hex(pubkey_sha256, "public key SHA-256", 64, 64, err);
    if (rc == MESH_OK)
        rc = store_require(serial_hex, "certificate serial", err);
    if (rc == MESH_OK)
        rc = store_require(spiffe_id, "SPIFFE ID", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    if ((rc = store_stmt(st, SQL_KEY_ADD, &s, err)) != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, pubkey_sha256, &brc);
    store_bind_text(s, 2, serial_hex, &brc);
    store_bind_text(s, 3, spiffe_id, &brc);
    store_bind_int64(s, 4, now, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_UNIQUE)
        rc = mesh_err_set(err, MESH_EEXISTS, "public key sha256:%s is already recorded as "
                          "compromised", pubkey_sha256);
    else if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "recording compromised key sha256:%s", pubkey_sha256);
    store_stmt_release(s);
    return rc;
}

int store_key_compromised_get(mesh_store *st, const char *pubkey_sha256,
                              store_compromised_key *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = store_require(pubkey_sha256, "public key SHA-256", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    if ((rc = store_stmt(st, SQL_KEY_GET, &s, err)) != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, pubkey_sha256, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_ROW) {
        out->pubkey_sha256 = store_col_dup(s, 0, &rc);
        out->serial_hex = store_col_dup(s, 1, &rc);
        out->spiffe_id = store_col_dup(s, 2, &rc);
        out->reported_at = store_col_int64(s, 3);
        if (rc != MESH_OK) {
            store_compromised_key_free(out);
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        }
    } else if (src == STORE_DONE) {
        rc = mesh_err_set(err, MESH_ENOTFOUND, "public key sha256:%s is not reported "
                          "compromised", pubkey_sha256);
    } else {
        rc = store_db_error(st, err, src, "looking up compromised key sha256:%s",
                            pubkey_sha256);
    }
    store_stmt_release(s);
    return rc;
}

void store_compromised_key_free(store_compromised_key *k)
{
    if (!k)
        return;
    free(k->pubkey_sha256);
    free(k->serial_hex);
    free(k->spiffe_id);
    memset(k, 0, sizeof *k);
}

/* ---- CRLs ------------------------------------------------------------------------ */

static int crl_read_row(store_q *s, store_crl *out)
{
    int rc = MESH_OK;
    memset(out, 0, sizeof *out);
    out->ca_id = store_col_int64(s, 0);
    out->crl_number = store_col_int64(s, 1);
    out->this_update = store_col_int64(s, 2);
    out->next_update = store_col_int64(s, 3);
    out->n_entries = store_col_int64(s, 4);
    out->entries_sha256 = store_col_dup(s, 5, &rc);
    out->crl_pem = store_col_dup(s, 6, &rc);
    if (rc != MESH_OK)
        store_crl_free(out);
    return rc;
}

int store_crl_get(mesh_store *st, int64_t ca_id, store_crl *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    store_q *s;
    int rc = store_stmt(st, SQL_CRL_GET, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_int64(s, 1, ca_id, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_ROW)
        rc = crl_read_row(s, out) == MESH_OK ? MESH_OK
                                             : mesh_err_set(err, MESH_ENOMEM, "out of memory");
    else if (src == STORE_DONE)
        rc = mesh_err_set(err, MESH_ENOTFOUND, "CA #%lld has no CRL yet", (long long)ca_id);
    else
        rc = store_db_error(st, err, src, "reading the CRL of CA #%lld", (long long)ca_id);
    store_stmt_release(s);
    return rc;
}

int store_crl_put(mesh_store *st, const store_crl *c, mesh_err *err)
{
    if (!c)
        return mesh_err_set(err, MESH_EINVAL, "store_crl_put: no CRL given");
    int rc = store_require(c->crl_pem, "CRL PEM", err);
    if (rc == MESH_OK)
        rc = store_require_hex(c->entries_sha256, "CRL entries SHA-256", 64, 64, err);
    if (rc != MESH_OK)
        return rc;
    if (c->crl_number < 1 || c->next_update <= c->this_update)
        return mesh_err_set(err, MESH_EINVAL, "CRL of CA #%lld: number %lld must be positive "
                            "and nextUpdate later than thisUpdate", (long long)c->ca_id,
                            (long long)c->crl_number);
    store_q *s;
    if ((rc = store_stmt(st, SQL_CRL_PUT, &s, err)) != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_int64(s, 1, c->ca_id, &brc);
    store_bind_int64(s, 2, c->crl_number, &brc);
    store_bind_int64(s, 3, c->this_update, &brc);
    store_bind_int64(s, 4, c->next_update, &brc);
    store_bind_int64(s, 5, c->n_entries, &brc);
    store_bind_text(s, 6, c->entries_sha256, &brc);
    store_bind_text(s, 7, c->crl_pem, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_FOREIGN_KEY)
        rc = mesh_err_set(err, MESH_EINVAL, "CRL names CA #%lld, which does not exist",
                          (long long)c->ca_id);
    else if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "storing the CRL of CA #%lld", (long long)c->ca_id);
    store_stmt_release(s);
    return rc;
}

int store_crl_list(mesh_store *st, store_crl **out, size_t *n_out, mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    store_q *s;
    int rc = store_stmt(st, SQL_CRL_LIST, &s, err);
    if (rc != MESH_OK)
        return rc;
    store_crl *list = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = store_step(s)) == STORE_ROW) {
        if (store_grow((void **)&list, &cap, n, sizeof *list) != MESH_OK ||
            crl_read_row(s, &list[n]) != MESH_OK) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing CRLs");
            break;
        }
        n++;
    }
    if (rc == MESH_OK && src != STORE_DONE)
        rc = store_db_error(st, err, src, "listing CRLs");
    store_stmt_release(s);
    if (rc != MESH_OK) {
        store_crl_free_list(list, n);
        return rc;
    }
    *out = list;
    *n_out = n;
    return MESH_OK;
}

void store_crl_free(store_crl *c)
{
    if (!c)
        return;
    free(c->entries_sha256);
    free(c->crl_pem);
    memset(c, 0, sizeof *c);
}

void store_crl_free_list(store_crl *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_crl_free(&list[i]);
    free(list);
}
