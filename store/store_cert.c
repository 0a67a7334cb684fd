/* store/store_cert.c — the record of every issued X.509-SVID: what was signed
 * for whom, by which CA, and whether it was revoked. meshd hands a cert to a
 * client only after store_cert_insert returned (synchronous=FULL commit). */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CERT_COLUMNS STORE_CERT_COLUMNS

static const char SQL_CERT_INSERT[] =
    "INSERT INTO certs (" CERT_COLUMNS ") "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
static const char SQL_CERT_GET[] = "SELECT " CERT_COLUMNS " FROM certs WHERE serial_hex = ?1";
/* Two list queries rather than "?1 IS NULL OR spiffe_id = ?1", which would
 * keep SQLite from using the spiffe_id index. rowid breaks issued_at ties in
 * insertion order (on PostgreSQL, certs has an identity column named rowid:
 * docs/store.md). */
static const char SQL_CERT_LIST_ALL[] =
    "SELECT " CERT_COLUMNS " FROM certs WHERE (?2 <> 0 OR not_after >= ?3) "
    "ORDER BY issued_at DESC, rowid DESC";
static const char SQL_CERT_LIST_ID[] =
    "SELECT " CERT_COLUMNS " FROM certs WHERE spiffe_id = ?1 AND (?2 <> 0 OR not_after >= ?3) "
    "ORDER BY issued_at DESC, rowid DESC";
static const char SQL_CERT_LATEST[] =
    "SELECT " CERT_COLUMNS " FROM certs WHERE spiffe_id = ?1 AND revoked = 0 "
    "ORDER BY issued_at DESC, rowid DESC LIMIT 1";
static const char SQL_CERT_REVOKE[] =
    "UPDATE certs SET revoked = 1, revoked_at = ?2, revoke_reason = ?3 "
    "WHERE serial_hex = ?1 AND revoked = 0";
static const char SQL_CERT_REVOKED_INFO[] =
    "SELECT revoked_at, revoke_reason FROM certs WHERE serial_hex = ?1";
static const char SQL_CERT_COUNT_LIVE[] =
    "SELECT count(*) FROM certs WHERE ca_id = ?1 AND not_after >= ?2";
static const char SQL_CERT_LIVE_SUMMARY[] =
    "SELECT count(*), COALESCE(max(not_after), 0) FROM certs WHERE ca_id = ?1 AND not_after >= ?2";

int store_cert_read_row(store_q *s, store_cert *out)
{
    int rc = MESH_OK;
    memset(out, 0, sizeof *out);
    out->serial_hex = store_col_dup(s, 0, &rc);
    out->spiffe_id = store_col_dup(s, 1, &rc);
    out->pubkey_sha256 = store_col_dup(s, 2, &rc);
    out->not_before = store_col_int64(s, 3);
    out->not_after = store_col_int64(s, 4);
    out->issued_at = store_col_int64(s, 5);
    out->ca_id = store_col_int64(s, 6);
    out->revoked = store_col_int(s, 7) != 0;
    out->revoked_at = store_col_int64(s, 8);
    out->revoke_reason = store_col_dup(s, 9, &rc);
    out->cert_pem = store_col_dup(s, 10, &rc);
    out->instance = store_col_dup(s, 11, &rc);
    if (rc != MESH_OK)
        store_cert_free(out);
    return rc;
}

int store_cert_insert(mesh_store *st, const store_cert *c, mesh_err *err)
{
    if (!c)
        return mesh_err_set(err, MESH_EINVAL, "store_cert_insert: no certificate given");
    int rc = store_require_hex(c->serial_hex, "certificate serial", 1, 40, err);
    if (rc == MESH_OK)
        rc = store_require_spiffe_id(c->spiffe_id, "certificate SPIFFE ID", err);
    if (rc == MESH_OK)
        rc = store_require_hex(c->pubkey_sha256, "certificate public key SHA-256", 64, 64, err);
    if (rc == MESH_OK)
        rc = store_require(c->cert_pem, "certificate PEM", err);
    if (rc != MESH_OK)
        return rc;
    if (c->not_after <= c->not_before)
        return mesh_err_set(err, MESH_EINVAL,
                            "certificate %s: not_after (%lld) must be later than not_before "
                            "(%lld)",
                            c->serial_hex, (long long)c->not_after, (long long)c->not_before);

    store_q *s;
    rc = store_stmt(st, SQL_CERT_INSERT, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, c->serial_hex, &brc);
    store_bind_text(s, 2, c->spiffe_id, &brc);
    store_bind_text(s, 3, c->pubkey_sha256, &brc);
    store_bind_int64(s, 4, c->not_before, &brc);
    store_bind_int64(s, 5, c->not_after, &brc);
    store_bind_int64(s, 6, c->issued_at ? c->issued_at : (int64_t)time(NULL), &brc);
    store_bind_int64(s, 7, c->ca_id, &brc);
    store_bind_int64(s, 8, c->revoked ? 1 : 0, &brc);
    store_bind_int64(s, 9, c->revoked ? c->revoked_at : 0, &brc);
    store_bind_text(s, 10, c->revoked && c->revoke_reason ? c->revoke_reason : "", &brc);
    store_bind_text(s, 11, c->cert_pem, &brc);
    store_bind_text(s, 12, c->instance ? c->instance : "", &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_UNIQUE)
        rc = mesh_err_set(err, MESH_EEXISTS, "certificate serial %s is already recorded",
                          c->serial_hex);
    else if (src == STORE_FOREIGN_KEY)
        rc = mesh_err_set(err, MESH_EINVAL, "certificate %s names CA id %lld, which does not exist",
                          c->serial_hex, (long long)c->ca_id);
    else if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "recording certificate %s for %s", c->serial_hex,
                            c->spiffe_id);
    store_stmt_release(s);
    return rc;
}

/* Runs a query expected to return at most one cert row. */
static int store_cert_query_one(mesh_store *st, store_q *s, store_cert *out, int *found,
                                mesh_err *err)
{
    *found = 0;
    int rc = MESH_OK;
    int src = store_step(s);
    if (src == STORE_ROW) {
        *found = 1;
        if (store_cert_read_row(s, out) != MESH_OK)
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory reading a certificate");
    } else if (src != STORE_DONE) {
        rc = store_db_error(st, err, src, "reading a certificate");
    }
    store_stmt_release(s);
    return rc;
}

int store_cert_get(mesh_store *st, const char *serial_hex, store_cert *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = store_require(serial_hex, "certificate serial", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_CERT_GET, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK, found;
    store_bind_text(s, 1, serial_hex, &brc);
    if (brc != STORE_OK) {
        store_stmt_release(s);
        return store_db_error(st, err, brc, "reading certificate %s", serial_hex);
    }
    rc = store_cert_query_one(st, s, out, &found, err);
    if (rc == MESH_OK && !found)
        rc = mesh_err_set(err, MESH_ENOTFOUND, "no certificate with serial %s", serial_hex);
    return rc;
}

int store_cert_list(mesh_store *st, const char *spiffe_id, int include_expired, int64_t now,
                    store_cert **out, size_t *n_out, mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    store_q *s;
    int rc = store_stmt(st, spiffe_id ? SQL_CERT_LIST_ID : SQL_CERT_LIST_ALL, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    if (spiffe_id)
        store_bind_text(s, 1, spiffe_id, &brc);
    store_bind_int64(s, 2, include_expired ? 1 : 0, &brc);
    store_bind_int64(s, 3, now, &brc);
    return store_cert_collect(st, s, brc, out, n_out, err);
}

int store_cert_collect(mesh_store *st, store_q *s, int brc, store_cert **out,
                       size_t *n_out, mesh_err *err)
{
    store_cert *list = NULL;
    size_t n = 0, cap = 0;
    int rc = MESH_OK;
    int src = brc;
    while (brc == STORE_OK && (src = store_step(s)) == STORE_ROW) {
        if (store_grow((void **)&list, &cap, n, sizeof *list) != MESH_OK ||
            store_cert_read_row(s, &list[n]) != MESH_OK) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing certificates");
            break;
        }
        n++;
    }
    if (rc == MESH_OK && src != STORE_DONE)
        rc = store_db_error(st, err, src, "listing certificates");
    store_stmt_release(s);
    if (rc != MESH_OK) {
        store_cert_free_list(list, n);
        return rc;
    }
    *out = list;
    *n_out = n;
    return MESH_OK;
}

int store_cert_latest(mesh_store *st, const char *spiffe_id, store_cert *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = store_require(spiffe_id, "SPIFFE ID", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_CERT_LATEST, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK, found;
    store_bind_text(s, 1, spiffe_id, &brc);
    if (brc != STORE_OK) {
        store_stmt_release(s);
        return store_db_error(st, err, brc, "reading the latest certificate of %s", spiffe_id);
    }
    rc = store_cert_query_one(st, s, out, &found, err);
    if (rc == MESH_OK && !found)
        rc = mesh_err_set(err, MESH_ENOTFOUND, "no unrevoked certificate was issued to %s",
                          spiffe_id);
    return rc;
}

/* After an UPDATE that changed nothing: unknown serial, or revoked before? */
static int store_cert_revoke_explain(mesh_store *st, const char *serial_hex, mesh_err *err)
{
    store_q *s;
    int rc = store_stmt(st, SQL_CERT_REVOKED_INFO, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, serial_hex, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_ROW) {
        char when[32];
        store_fmt_time(store_col_int64(s, 0), when);
        const char *why = store_col_text(s, 1);
        rc = mesh_err_set(err, MESH_EEXISTS, "certificate %s was already revoked at %s (%s)",
                          serial_hex, when, why && why[0] ? why : "no reason given");
    } else if (src == STORE_DONE) {
        rc = mesh_err_set(err, MESH_ENOTFOUND, "no certificate with serial %s", serial_hex);
    } else {
        rc = store_db_error(st, err, src, "looking up certificate %s", serial_hex);
    }
    store_stmt_release(s);
    return rc;
}

int store_cert_revoke(mesh_store *st, const char *serial_hex, const char *reason, int64_t now,
                      mesh_err *err)
{
    int rc = store_require(serial_hex, "certificate serial", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_CERT_REVOKE, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, serial_hex, &brc);
    store_bind_int64(s, 2, now, &brc);
    store_bind_text(s, 3, reason ? reason : "", &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    int64_t changed = src == STORE_DONE ? store_changes(st) : 0;
    if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "revoking certificate %s", serial_hex);
    store_stmt_release(s);
    if (rc == MESH_OK && changed == 0)
        rc = store_cert_revoke_explain(st, serial_hex, err);
    return rc;
}

int store_cert_count_live_for_ca(mesh_store *st, int64_t ca_id, int64_t now, int64_t *count_out,
                                 mesh_err *err)
{
    *count_out = 0;
    store_q *s;
    int rc = store_stmt(st, SQL_CERT_COUNT_LIVE, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_int64(s, 1, ca_id, &brc);
    store_bind_int64(s, 2, now, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_ROW)
        *count_out = store_col_int64(s, 0);
    else
        rc = store_db_error(st, err, src, "counting live certificates of CA id %lld",
                            (long long)ca_id);
    store_stmt_release(s);
    return rc;
}

int store_cert_live_summary_for_ca(mesh_store *st, int64_t ca_id, int64_t now,
                                   int64_t *count_out, int64_t *last_not_after_out,
                                   mesh_err *err)
{
    *count_out = 0;
    *last_not_after_out = 0;
    store_q *s;
    int rc = store_stmt(st, SQL_CERT_LIVE_SUMMARY, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_int64(s, 1, ca_id, &brc);
    store_bind_int64(s, 2, now, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_ROW) {
        *count_out = store_col_int64(s, 0);
        *last_not_after_out = store_col_int64(s, 1);
    } else {
        rc = store_db_error(st, err, src, "summarising live certificates of CA id %lld",
                            (long long)ca_id);
    }
    store_stmt_release(s);
    return rc;
}

void store_cert_free(store_cert *c)
{
    if (!c)
        return;
    free(c->serial_hex);
    free(c->spiffe_id);
    free(c->instance);
    free(c->pubkey_sha256);
    free(c->revoke_reason);
    free(c->cert_pem);
    memset(c, 0, sizeof *c);
}

void store_cert_free_list(store_cert *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_cert_free(&list[i]);
    free(list);
}
