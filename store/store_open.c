/* store/store_open.c — store_open picks the backend from the --db value:
 * "postgres://..." or "postgresql://..." is a PostgreSQL database reached
 * through libpq (store_pg_open.c); "sqlite:///path" or a plain path is an
 * SQLite file (store_sqlite_open.c). Also the backend-neutral close and the
 * accessors of the handle. */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static const char SQLITE_SCHEME[] = "sqlite://";

int store_is_pg_url(const char *db)
{
    return db && (strncmp(db, "postgres://", 11) == 0 || strncmp(db, "postgresql://", 13) == 0);
}

int store_db_is_postgres(const char *db)
{
    return store_is_pg_url(db);
}

/* "sqlite:///var/lib/meshd/mesh.db" -> "/var/lib/meshd/mesh.db"; a plain
 * path is itself. Only the empty authority is accepted (no host). */
int store_sqlite_path_of(const char *db, const char **path_out, mesh_err *err)
{
    *path_out = db;
    if (strncmp(db, SQLITE_SCHEME, sizeof SQLITE_SCHEME - 1) != 0) {
        if (strstr(db, "://"))
            return mesh_err_set(err, MESH_EINVAL,
                                "--db %.200s: unknown scheme; use a file path, sqlite:///path "
                                "or postgres://user@host:port/dbname",
                                db);
        return MESH_OK;
    }
    const char *p = db + sizeof SQLITE_SCHEME - 1;
    if (p[0] != '/')
        return mesh_err_set(err, MESH_EINVAL,
                            "--db %.200s: an SQLite URL names an absolute path, "
                            "sqlite:///var/lib/meshd/mesh.db", db);
    *path_out = p;
    return MESH_OK;
}

int store_open_with(mesh_store **out, const char *path, const store_open_opts *opts,
                    mesh_err *err)
{
    if (!out)
        return mesh_err_set(err, MESH_EINVAL, "store_open: no output handle");
    *out = NULL;
    int rc = store_require(path, "store path", err);
    if (rc != MESH_OK)
        return rc;
    int pg = store_is_pg_url(path);
    const char *file = path;
    if (!pg && (rc = store_sqlite_path_of(path, &file, err)) != MESH_OK)
        return rc;
    mesh_store *st = calloc(1, sizeof *st);
    if (!st)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory opening store %s", path);
    st->be = pg ? &store_pg_backend : &store_sqlite_backend;
    st->witness_fd = -1;
    st->last_check = "none";
    int create = opts && opts->create;
    if (pg) {
        rc = store_pg_open(st, path, create, err);
    } else if (!(st->path = strdup(file))) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory opening store %s", path);
    } else {
        rc = store_sqlite_open(st, create, err);
    }
    if (rc != MESH_OK) {
        store_close(st);
        return rc;
    }
    log_debug("store", "opened %s (%s, schema v%d, %s)", st->path, st->be->name,
              store_latest_schema_version(), st->last_check);
    *out = st;
    return MESH_OK;
}

int store_open(mesh_store **out, const char *path, mesh_err *err)
{
    return store_open_with(out, path, NULL, err);
}

const char *store_open_check(const mesh_store *st)
{
    return st ? st->last_check : "none";
}

void store_close(mesh_store *st)
{
    if (!st)
        return;
    if (st->in_tx) {
        log_warn("store", "closing store %s with an open transaction; rolling it back",
                 st->path ? st->path : "?");
        store_rollback(st);
    }
    st->be->close(st);
    free(st->path);
    free(st);
}

const char *store_path(const mesh_store *st)
{
    return st->path;
}

const char *store_backend_name(const mesh_store *st)
{
    return st->be->name;
}
