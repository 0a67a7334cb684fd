/* store/store_open.c — opening and closing a store: creating the file 0600,
 * refusing damaged or foreign files without writing to them, connection
 * pragmas (WAL, synchronous=FULL, foreign keys, busy timeout), migrations.
 *
 * Order matters: everything up to the identity checks only reads, so a file
 * we refuse is left byte-for-byte as it was. The first write is switching to
 * WAL, after the file has been proven to be a healthy meshd store. */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

/* fsyncs the directory holding path so a newly created file's name is
 * durable, not only its contents. */
static void store_sync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            log_warn("store", "fsync of the directory of %s failed: %s", path, strerror(errno));
        close(dfd);
    }
    free(copy);
}

/* Creates the database file ourselves with mode 0600 (SQLite would use 0644
 * minus umask); SQLite gives the -wal and -shm files the same mode. An
 * existing file is left alone. */
static int store_prepare_file(const char *path, mesh_err *err)
{
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode))
            return mesh_err_set(err, MESH_EINVAL, "store path %s is not a regular file", path);
        if (sb.st_mode & 077)
            log_warn("store", "store %s has mode %04o; it should be 0600 (chmod 600 %s)", path,
                     (unsigned)(sb.st_mode & 07777), path);
        return MESH_OK;
    }
    if (errno != ENOENT)
        return mesh_err_set(err, MESH_EIO, "cannot access store %s: %s", path, strerror(errno));
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return MESH_OK;   /* another process created it first: fine, SQLite locks */
        return mesh_err_set(err, MESH_EIO, "cannot create store %s: %s", path, strerror(errno));
    }
    close(fd);
    store_sync_parent_dir(path);
    log_info("store", "created new store %s", path);
    return MESH_OK;
}

static int store_corrupt(mesh_store *st, mesh_err *err, const char *why)
{
    return mesh_err_set(err, MESH_ECORRUPT,
                        "store %s is damaged or not an SQLite database (%s); it was left "
                        "untouched. Stop meshd and restore the file from a backup",
                        st->path, why);
}

/* Maps a failure while reading a file we do not trust yet: damage becomes
 * ECORRUPT with restore advice, anything else keeps its own meaning. */
static int store_read_failed(mesh_store *st, mesh_err *err, int src, const char *what)
{
    if (store_map_sqlite_rc(src) == MESH_ECORRUPT)
        return store_corrupt(st, err, sqlite3_errmsg(st->db));
    return store_db_error(st, err, src, "%s", what);
}

/* store_stmt for a file not yet trusted: preparing may be the first read of
 * the header or schema, so damage shows up here already. */
static int store_stmt_untrusted(mesh_store *st, const char *sql, sqlite3_stmt **out,
                                mesh_err *err)
{
    int rc = store_stmt(st, sql, out, err);
    if (rc == MESH_ECORRUPT)
        return store_corrupt(st, err, sqlite3_errmsg(st->db));
    return rc;
}

/* Runs a one-row, one-column query and returns its integer. */
static int store_query_int(mesh_store *st, const char *sql, int64_t *out, mesh_err *err)
{
    sqlite3_stmt *s;
    int rc = store_stmt_untrusted(st, sql, &s, err);
    if (rc != MESH_OK)
        return rc;
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    else
        rc = store_read_failed(st, err, src, sql);
    store_stmt_release(s);
    return rc;
}

/* Pause between attempts to get a fresh store into WAL mode (see store_open). */
#define STORE_OPEN_RETRY_MS 20

static const char SQL_COUNT_SCHEMA[] = "SELECT count(*) FROM sqlite_schema";
static const char SQL_QUICK_CHECK[] = "PRAGMA quick_check";
static const char SQL_APPLICATION_ID[] = "PRAGMA application_id";
static const char SQL_USER_VERSION[] = "PRAGMA user_version";
static const char SQL_JOURNAL_WAL[] = "PRAGMA journal_mode = WAL";
static const char SQL_SYNC_FULL[] = "PRAGMA synchronous = FULL";
static const char SQL_FK_ON[] = "PRAGMA foreign_keys = ON";
static const char SQL_FK_OFF[] = "PRAGMA foreign_keys = OFF";
static const char SQL_DATA_VERSION[] = "PRAGMA data_version";

/* PRAGMA quick_check: one row "ok", or rows describing each problem. */
static int store_check_integrity(mesh_store *st, mesh_err *err)
{
    sqlite3_stmt *s;
    int rc = store_stmt_untrusted(st, SQL_QUICK_CHECK, &s, err);
    if (rc != MESH_OK)
        return rc;
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        const char *res = (const char *)sqlite3_column_text(s, 0);
        if (!res || strcmp(res, "ok") != 0) {
            char why[300];
            snprintf(why, sizeof why, "integrity check: %s", res ? res : "(no detail)");
            /* SQLite separates findings with newlines; keep the error one line. */
            for (char *p = why; *p; p++)
                if (*p == '\n')
                    *p = ' ';
            rc = store_corrupt(st, err, why);
        }
    } else {
        rc = store_read_failed(st, err, src, "running integrity check");
    }
    store_stmt_release(s);
    return rc;
}

/* Is this our file, and not from a newer meshd? Read-only. */
static int store_check_identity(mesh_store *st, mesh_err *err)
{
    int64_t n_objects = 0, app_id = 0, version = 0;
    int rc = store_query_int(st, SQL_COUNT_SCHEMA, &n_objects, err);
    if (rc == MESH_OK)
        rc = store_query_int(st, SQL_APPLICATION_ID, &app_id, err);
    if (rc == MESH_OK)
        rc = store_query_int(st, SQL_USER_VERSION, &version, err);
    if (rc != MESH_OK)
        return rc;

    int latest = store_latest_schema_version();
    if (app_id != 0 && app_id != STORE_APPLICATION_ID)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s is an SQLite database of another application (application_id "
                            "0x%08llx), not a meshd store; refusing to modify it",
                            st->path, (unsigned long long)app_id);
    if (version == 0 && n_objects > 0)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s is an SQLite database with %lld schema objects but no meshd "
                            "schema version; it is not a meshd store, refusing to modify it",
                            st->path, (long long)n_objects);
    if (version > 0 && app_id != STORE_APPLICATION_ID)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s has schema version %lld but is not marked as a meshd store; "
                            "refusing to modify it",
                            st->path, (long long)version);
    if (version > latest)
        return mesh_err_set(err, MESH_EINVAL,
                            "store %s was written by a newer meshd, schema %lld > %d; upgrade "
                            "meshd/meshctl or restore a backup made by this version",
                            st->path, (long long)version, latest);
    return MESH_OK;
}

static int store_set_wal(mesh_store *st, mesh_err *err)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, SQL_JOURNAL_WAL, &s, err);
    if (rc != MESH_OK)
        return rc;
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(s, 0);
        /* SQLite reports the mode it ended up in; on file systems without
         * shared-memory support it stays in the old mode. */
        if (!mode || strcasecmp(mode, "wal") != 0)
            rc = mesh_err_set(err, MESH_EIO,
                              "store %s: cannot enable WAL journal mode (got '%s'); put the "
                              "store on a local file system",
                              st->path, mode ? mode : "?");
    } else {
        rc = store_db_error(st, err, src, "enabling WAL journal mode");
    }
    store_stmt_release(s);
    return rc;
}

int store_open(mesh_store **out, const char *path, mesh_err *err)
{
    if (!out)
        return mesh_err_set(err, MESH_EINVAL, "store_open: no output handle");
    *out = NULL;
    int rc = store_require(path, "store path", err);
    if (rc != MESH_OK)
        return rc;
    rc = store_prepare_file(path, err);
    if (rc != MESH_OK)
        return rc;

    mesh_store *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory opening store %s", path);
    }
    /* No SQLITE_OPEN_CREATE: we created the file above with the right mode.
     * NOMUTEX: a handle belongs to one thread at a time (see store.h). */
    int src = sqlite3_open_v2(path, &st->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                              NULL);
    if (src != SQLITE_OK) {
        rc = store_db_error(st, err, src, "opening store");
        store_close(st);
        return rc;
    }
    sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    /* Defensive mode: no writable_schema tricks that could corrupt the file. */
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);

    /* Read-only checks first (the file may be garbage we must not touch),
     * then WAL, which is persistent in the file. When two processes create a
     * fresh store at the same moment (meshd and meshctl started together),
     * the switch to WAL needs an exclusive lock for which SQLite does not
     * always call the busy handler, and a reader can catch the other side
     * mid-switch (SQLITE_IOERR); both are transient, so retry within the busy
     * timeout instead of failing the open. */
    for (int attempt = 0;; attempt++) {
        rc = store_check_integrity(st, err);
        if (rc == MESH_OK)
            rc = store_check_identity(st, err);
        if (rc == MESH_OK)
            rc = store_set_wal(st, err);
        if ((rc != MESH_EBUSY && rc != MESH_EIO) ||
            attempt >= STORE_BUSY_TIMEOUT_MS / STORE_OPEN_RETRY_MS)
            break;
        mesh_err_clear(err);
        struct timespec pause = {0, STORE_OPEN_RETRY_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    /* synchronous and foreign_keys are per connection. Migrations run with
     * foreign keys off (table rebuilds) and check them before each commit. */
    if (rc == MESH_OK)
        rc = store_exec(st, SQL_SYNC_FULL, err);
    if (rc == MESH_OK)
        rc = store_exec(st, SQL_FK_OFF, err);
    if (rc == MESH_OK)
        rc = store_migrate(st, err);
    if (rc == MESH_OK)
        rc = store_exec(st, SQL_FK_ON, err);
    if (rc != MESH_OK) {
        /* Closing the last connection would checkpoint a leftover WAL into
         * the main file: not into a file we just refused. */
        sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        store_close(st);
        return rc;
    }
    store_gate_attach(st);
    log_debug("store", "opened %s (schema v%d)", path, store_latest_schema_version());
    *out = st;
    return MESH_OK;
}

void store_close(mesh_store *st)
{
    if (!st)
        return;
    if (st->db) {
        if (st->in_tx) {
            log_warn("store", "closing store %s with an open transaction; rolling it back",
                     st->path);
            store_rollback(st);
        }
        store_gate_detach(st);
        store_stmt_cache_free(st);
        /* The last connection to close checkpoints the WAL into the file. */
        sqlite3_close_v2(st->db);
    }
    free(st->path);
    free(st);
}

const char *store_path(const mesh_store *st)
{
    return st->path;
}

int64_t store_data_version(mesh_store *st)
{
    int64_t v = -1;
    if (store_query_int(st, SQL_DATA_VERSION, &v, NULL) != MESH_OK)
        return -1;
    return v;
}
