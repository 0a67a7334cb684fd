/* store/store_ca.c — CA certificates and their lifecycle state
 * (prepared -> active -> retired -> removed). The database itself guarantees
 * at most one active CA (partial unique index); ca/ decides the transitions. */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CA_COLUMNS                                                                          \
    "id, state, cert_pem, chain_pem, key_path, serial_hex, subject, key_type, not_before, " \
    "not_after, created_at"

static const char SQL_CA_INSERT[] =
    "INSERT INTO cas (state, cert_pem, chain_pem, key_path, serial_hex, subject, key_type, "
    "not_before, not_after, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
    "RETURNING id"; /* RETURNING: both backends hand back the new id the same way */
static const char SQL_CA_LIST[] = "SELECT " CA_COLUMNS " FROM cas ORDER BY id";
static const char SQL_CA_ACTIVE[] = "SELECT " CA_COLUMNS " FROM cas WHERE state = 'active'";
static const char SQL_CA_ACTIVE_ID[] = "SELECT id FROM cas WHERE state = 'active'";
static const char SQL_CA_SET_STATE[] = "UPDATE cas SET state = ?2 WHERE id = ?1";

static int store_ca_state_valid(const char *state, mesh_err *err)
{
    static const char *const states[] = {"prepared", "active", "retired", "removed"};
    if (state) {
        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
            if (strcmp(state, states[i]) == 0)
                return MESH_OK;
    }
    return mesh_err_set(err, MESH_EINVAL,
                        "CA state must be prepared, active, retired or removed, got '%s'",
                        state ? state : "(null)");
}

static int store_ca_read_row(store_q *s, store_ca *out)
{
    int rc = MESH_OK;
    memset(out, 0, sizeof *out);
    out->id = store_col_int64(s, 0);
    out->state = store_col_dup(s, 1, &rc);
    out->cert_pem = store_col_dup(s, 2, &rc);
    out->chain_pem = store_col_dup(s, 3, &rc);
    out->key_path = store_col_dup(s, 4, &rc);
    out->serial_hex = store_col_dup(s, 5, &rc);
    out->subject = store_col_dup(s, 6, &rc);
    out->key_type = store_col_dup(s, 7, &rc);
    out->not_before = store_col_int64(s, 8);
    out->not_after = store_col_int64(s, 9);
    out->created_at = store_col_int64(s, 10);
    if (rc != MESH_OK)
        store_ca_free(out);
    return rc;
}

/* Id of the active CA for error messages; 0 if none or unknown. */
static int64_t store_ca_active_id(mesh_store *st)
{
    store_q *s;
    if (store_stmt(st, SQL_CA_ACTIVE_ID, &s, NULL) != MESH_OK)
        return 0;
    int64_t id = store_step(s) == STORE_ROW ? store_col_int64(s, 0) : 0;
    store_stmt_release(s);
    return id;
}

int store_ca_insert(mesh_store *st, const store_ca *ca, int64_t *id_out, mesh_err *err)
{
    if (id_out)
        *id_out = 0;
    if (!ca)
        return mesh_err_set(err, MESH_EINVAL, "store_ca_insert: no CA given");
    int rc = store_ca_state_valid(ca->state, err);
    if (rc == MESH_OK)
        rc = store_require(ca->cert_pem, "CA certificate PEM", err);
    if (rc == MESH_OK)
        rc = store_require(ca->key_path, "CA key path", err);
    if (rc == MESH_OK)
        /* Up to 32 octets: an imported (plug-in) CA may not follow RFC 5280's
         * 20-octet limit, and refusing it here would block the import. */
        rc = store_require_hex(ca->serial_hex, "CA serial", 1, 64, err);
    if (rc == MESH_OK)
        rc = store_require(ca->key_type, "CA key type", err);
    if (rc != MESH_OK)
        return rc;
    if (ca->not_after <= ca->not_before)
        return mesh_err_set(err, MESH_EINVAL,
                            "CA %s: not_after (%lld) must be later than not_before (%lld)",
                            ca->serial_hex, (long long)ca->not_after, (long long)ca->not_before);

    store_q *s;
    rc = store_stmt(st, SQL_CA_INSERT, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, ca->state, &brc);
    store_bind_text(s, 2, ca->cert_pem, &brc);
    store_bind_text(s, 3, ca->chain_pem ? ca->chain_pem : "", &brc);
    store_bind_text(s, 4, ca->key_path, &brc);
    store_bind_text(s, 5, ca->serial_hex, &brc);
    store_bind_text(s, 6, ca->subject ? ca->subject : "", &brc);
    store_bind_text(s, 7, ca->key_type, &brc);
    store_bind_int64(s, 8, ca->not_before, &brc);
    store_bind_int64(s, 9, ca->not_after, &brc);
    store_bind_int64(s, 10, ca->created_at ? ca->created_at : (int64_t)time(NULL), &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_ROW) {
        if (id_out)
            *id_out = store_col_int64(s, 0);
    } else if (src == STORE_UNIQUE) {
        store_stmt_release(s);
        return mesh_err_set(err, MESH_EEXISTS,
                            "cannot add CA %s as active: CA id %lld is already active; add it "
                            "as prepared and activate it",
                            ca->serial_hex, (long long)store_ca_active_id(st));
    } else {
        rc = store_db_error(st, err, src, "adding CA %s", ca->serial_hex);
    }
    store_stmt_release(s);
    return rc;
}

int store_ca_list(mesh_store *st, store_ca **out, size_t *n_out, mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    store_q *s;
    int rc = store_stmt(st, SQL_CA_LIST, &s, err);
    if (rc != MESH_OK)
        return rc;
    store_ca *list = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = store_step(s)) == STORE_ROW) {
        if (store_grow((void **)&list, &cap, n, sizeof *list) != MESH_OK ||
            store_ca_read_row(s, &list[n]) != MESH_OK) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing CAs");
            break;
        }
        n++;
    }
    if (rc == MESH_OK && src != STORE_DONE)
        rc = store_db_error(st, err, src, "listing CAs");
    store_stmt_release(s);
    if (rc != MESH_OK) {
        store_ca_free_list(list, n);
        return rc;
    }
    *out = list;
    *n_out = n;
    return MESH_OK;
}

int store_ca_get_active(mesh_store *st, store_ca *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    store_q *s;
    int rc = store_stmt(st, SQL_CA_ACTIVE, &s, err);
    if (rc != MESH_OK)
        return rc;
    int src = store_step(s);
    if (src == STORE_ROW) {
        if (store_ca_read_row(s, out) != MESH_OK)
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory reading the active CA");
    } else if (src == STORE_DONE) {
        rc = mesh_err_set(err, MESH_ENOTFOUND,
                          "store %s has no active CA; run 'meshctl ca init' first", st->path);
    } else {
        rc = store_db_error(st, err, src, "reading the active CA");
    }
    store_stmt_release(s);
    return rc;
}

int store_ca_set_state(mesh_store *st, int64_t id, const char *state, mesh_err *err)
{
    int rc = store_ca_state_valid(state, err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_CA_SET_STATE, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_int64(s, 1, id, &brc);
    store_bind_text(s, 2, state, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_DONE) {
        if (store_changes(st) == 0)
            rc = mesh_err_set(err, MESH_ENOTFOUND, "CA id %lld not found", (long long)id);
    } else if (src == STORE_UNIQUE) {
        store_stmt_release(s);
        return mesh_err_set(err, MESH_EEXISTS,
                            "cannot make CA id %lld active: CA id %lld is active; retire it "
                            "first (in the same transaction)",
                            (long long)id, (long long)store_ca_active_id(st));
    } else {
        rc = store_db_error(st, err, src, "setting state of CA id %lld to %s", (long long)id,
                            state);
    }
    store_stmt_release(s);
    return rc;
}

void store_ca_free(store_ca *ca)
{
    if (!ca)
        return;
    free(ca->state);
    free(ca->cert_pem);
    free(ca->chain_pem);
    free(ca->key_path);
    free(ca->serial_hex);
    free(ca->subject);
    free(ca->key_type);
    memset(ca, 0, sizeof *ca);
}

void store_ca_free_list(store_ca *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_ca_free(&list[i]);
    free(list);
}
