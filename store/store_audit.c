/* store/store_audit.c — the append-only audit log (who issued, revoked,
 * was denied what, when). Entries are never updated or deleted here.
 * Every text field is escaped on the way in (common/escape.h): a requested
 * name or a claimed identity with a newline, a terminal escape or invalid
 * UTF-8 in it is stored as visible escapes, so no reader of the table (meshctl,
 * sqlite3, a SIEM export) meets the raw bytes. */
#include "store/store_internal.h"

#include "common/escape.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_AUDIT_DEFAULT_LIMIT 100

static const char SQL_AUDIT_INSERT[] =
    "INSERT INTO audit (at, actor, action, subject, detail, ok) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_AUDIT_LIST[] =
    "SELECT id, at, actor, action, subject, detail, ok FROM audit ORDER BY id DESC LIMIT ?1";

int store_audit(mesh_store *st, const char *actor, const char *action, const char *subject,
                const char *detail, int ok, mesh_err *err)
{
    int rc = store_require(actor, "audit actor", err);
    if (rc == MESH_OK)
        rc = store_require(action, "audit action", err);
    if (rc != MESH_OK)
        return rc;
    const char *in[4] = {actor, action, subject ? subject : "", detail ? detail : ""};
    char *esc[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++) {
        if (!(esc[i] = mesh_escape_dup(in[i], 0))) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory writing audit entry %s", action);
            goto out;
        }
    }
    store_q *s;
    rc = store_stmt(st, SQL_AUDIT_INSERT, &s, err);
    if (rc != MESH_OK)
        goto out;
    int brc = STORE_OK;
    store_bind_int64(s, 1, (int64_t)time(NULL), &brc);
    store_bind_text(s, 2, esc[0], &brc);
    store_bind_text(s, 3, esc[1], &brc);
    store_bind_text(s, 4, esc[2], &brc);
    store_bind_text(s, 5, esc[3], &brc);
    store_bind_int64(s, 6, ok ? 1 : 0, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "writing audit entry %s", esc[1]);
    store_stmt_release(s);
out:
    for (int i = 0; i < 4; i++)
        free(esc[i]);
    return rc;
}

static void store_audit_free_members(store_audit_entry *e)
{
    free(e->actor);
    free(e->action);
    free(e->subject);
    free(e->detail);
    memset(e, 0, sizeof *e);
}

static int store_audit_read_row(store_q *s, store_audit_entry *out)
{
    int rc = MESH_OK;
    memset(out, 0, sizeof *out);
    out->id = store_col_int64(s, 0);
    out->at = store_col_int64(s, 1);
    out->actor = store_col_dup(s, 2, &rc);
    out->action = store_col_dup(s, 3, &rc);
    out->subject = store_col_dup(s, 4, &rc);
    out->detail = store_col_dup(s, 5, &rc);
    out->ok = store_col_int(s, 6) != 0;
    if (rc != MESH_OK)
        store_audit_free_members(out);
    return rc;
}

int store_audit_list(mesh_store *st, size_t limit, store_audit_entry **out, size_t *n_out,
                     mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    if (limit == 0)
        limit = STORE_AUDIT_DEFAULT_LIMIT;
    if (limit > (size_t)INT64_MAX)
        limit = (size_t)INT64_MAX;
    store_q *s;
    int rc = store_stmt(st, SQL_AUDIT_LIST, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_int64(s, 1, (int64_t)limit, &brc);
    store_audit_entry *list = NULL;
    size_t n = 0, cap = 0;
    int src = brc;
    while (brc == STORE_OK && (src = store_step(s)) == STORE_ROW) {
        if (store_grow((void **)&list, &cap, n, sizeof *list) != MESH_OK ||
            store_audit_read_row(s, &list[n]) != MESH_OK) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory listing the audit log");
            break;
        }
        n++;
    }
    if (rc == MESH_OK && src != STORE_DONE)
        rc = store_db_error(st, err, src, "listing the audit log");
    store_stmt_release(s);
    if (rc != MESH_OK) {
        store_audit_free_list(list, n);
        return rc;
    }
    *out = list;
    *n_out = n;
    return MESH_OK;
}

void store_audit_free_list(store_audit_entry *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_audit_free_members(&list[i]);
    free(list);
}
