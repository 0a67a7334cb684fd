/* store/store_settings.c — the key/value settings table (trust domain, ...). */
#include "store/store_internal.h"

#include <string.h>

static const char SQL_SETTING_GET[] = "SELECT value FROM settings WHERE key = ?1";
static const char SQL_SETTING_SET[] =
    "INSERT INTO settings (key, value) VALUES (?1, ?2) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value";

int store_setting_get(mesh_store *st, const char *key, char **value_out, mesh_err *err)
{
    *value_out = NULL;
    int rc = store_require(key, "setting key", err);
    if (rc != MESH_OK)
        return rc;
    store_q *s;
    rc = store_stmt(st, SQL_SETTING_GET, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, key, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src == STORE_ROW) {
        *value_out = store_col_dup(s, 0, &rc);
        if (rc != MESH_OK)
            mesh_err_set(err, rc, "out of memory reading setting %s", key);
    } else if (src == STORE_DONE) {
        rc = mesh_err_set(err, MESH_ENOTFOUND, "setting %s is not set", key);
    } else {
        rc = store_db_error(st, err, src, "reading setting %s", key);
    }
    store_stmt_release(s);
    return rc;
}

int store_setting_set(mesh_store *st, const char *key, const char *value, mesh_err *err)
{
    int rc = store_require(key, "setting key", err);
    if (rc != MESH_OK)
        return rc;
    if (!value)
        return mesh_err_set(err, MESH_EINVAL, "setting %s: value is required", key);
    /* config_version only moves forward with resource changes; a manual write
     * could make meshd skip or repeat a push. */
    if (strcmp(key, "config_version") == 0)
        return mesh_err_set(err, MESH_EINVAL,
                            "setting config_version is maintained by the store itself "
                            "and cannot be set");
    store_q *s;
    rc = store_stmt(st, SQL_SETTING_SET, &s, err);
    if (rc != MESH_OK)
        return rc;
    int brc = STORE_OK;
    store_bind_text(s, 1, key, &brc);
    store_bind_text(s, 2, value, &brc);
    int src = brc == STORE_OK ? store_step(s) : brc;
    if (src != STORE_DONE)
        rc = store_db_error(st, err, src, "writing setting %s", key);
    store_stmt_release(s);
    return rc;
}
