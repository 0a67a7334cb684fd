/* store/store_sqlite_backup.c — `meshctl store backup` and `store restore`
 * for the SQLite store.
 *
 * Backups use SQLite's online backup API (sqlite3_backup_*): one step over
 * all pages inside one read transaction of the source, which in WAL mode is
 * a consistent snapshot that meshd's writers never wait for. Copying the
 * file with cp while meshd runs can catch the main file and the WAL at
 * different moments; the API cannot. The copy is switched to rollback
 * journal mode so that it is one self-contained file, verified with
 * integrity_check, fsynced, and only then renamed to its final name; the
 * witness records it as the backup to restore.
 *
 * A restore needs the store to itself (the witness's session lock,
 * exclusive), keeps whatever it replaces, and resets the witness's
 * high-water mark to the backup's change counter: the one place where the
 * mark is lowered, on purpose. */
#include "store/store_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int file_error(mesh_err *err, const char *what, const char *path)
{
    int code = (errno == ENOSPC || errno == EDQUOT) ? MESH_ENOSPC
               : errno == ENOENT                   ? MESH_ENOTFOUND
                                                   : MESH_EIO;
    return mesh_err_set(err, code, "%s %s: %s", what, path, strerror(errno));
}

static int fsync_path(const char *path, mesh_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return file_error(err, "cannot open", path);
    int r = fsync(fd);
    close(fd);
    if (r != 0)
        return file_error(err, "cannot sync", path);
    return MESH_OK;
}

/* An empty 0600 file at path (SQLite would create it 0644 minus umask). */
static int create_private(const char *path, mesh_err *err)
{
    (void)unlink(path); /* a leftover of a crashed attempt by a process with our pid */
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return file_error(err, "cannot create", path);
    close(fd);
    return MESH_OK;
}

static int sqlite_fail(mesh_err *err, sqlite3 *db, int src, const char *what, const char *path)
{
    int code = store_map_sqlite_rc(src);
    if (code == MESH_OK)
        code = MESH_EINTERNAL;
    if (code == MESH_EIO && db) {
        int e = sqlite3_system_errno(db);
        if (e == ENOSPC || e == EDQUOT)
            code = MESH_ENOSPC;
    }
    return mesh_err_set(err, code, "%s %s: %s", what, path,
                        db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
}

/* Copies every page of src into dst in one step, retrying while a lock is
 * briefly held elsewhere. */
static int copy_pages(sqlite3 *dst, sqlite3 *src, const char *dst_path, mesh_err *err)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b)
        return sqlite_fail(err, dst, sqlite3_errcode(dst), "cannot start copying into", dst_path);
    int64_t deadline = now_ms() + STORE_BUSY_TIMEOUT_MS;
    int src_rc;
    while ((src_rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || src_rc == SQLITE_LOCKED) {
        if (now_ms() >= deadline)
            break;
        struct timespec pause = {0, 10 * 1000000L};
        nanosleep(&pause, NULL);
    }
    sqlite3_backup_finish(b);
    if (src_rc != SQLITE_DONE)
        return sqlite_fail(err, dst, src_rc, "copying the store into", dst_path);
    return MESH_OK;
}

/* Full check of a copy; findings make it unusable. */
static int verify_copy(sqlite3 *db, const char *path, const char *what, mesh_err *err)
{
    store_problems found;
    int src = store_sqlite_run_check(db, 1, 4, &found);
    int rc = MESH_OK;
    if (src != SQLITE_OK) {
        rc = sqlite_fail(err, db, src, "checking", path);
    } else if (found.n > 0) {
        char why[300];
        store_problems_join(&found, why, sizeof why);
        rc = mesh_err_set(err, MESH_ECORRUPT, "%s %s fails integrity_check (%s)", what, path, why);
    }
    store_problems_free(&found);
    return rc;
}

static int same_file(const char *a, const struct stat *b)
{
    struct stat sa;
    return stat(a, &sa) == 0 && sa.st_dev == b->st_dev && sa.st_ino == b->st_ino;
}

/* dest must not be one of the store's own files. */
static int check_dest(mesh_store *st, const char *dest, int overwrite, mesh_err *err)
{
    if (strchr(dest, '\n'))
        return mesh_err_set(err, MESH_EINVAL, "backup path must not contain a newline");
    struct stat sb;
    if (stat(dest, &sb) != 0) {
        if (errno != ENOENT)
            return file_error(err, "cannot access", dest);
        return MESH_OK;
    }
    static const char *const suffixes[] = {"", "-wal", "-shm", "-witness"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char own[PATH_MAX];
        snprintf(own, sizeof own, "%s%s", st->path, suffixes[i]);
        if (same_file(own, &sb))
            return mesh_err_set(err, MESH_EINVAL, "%s is the store's own file %s, not a place "
                                "for a backup", dest, own);
    }
    if (!S_ISREG(sb.st_mode))
        return mesh_err_set(err, MESH_EINVAL, "%s exists and is not a regular file", dest);
    if (!overwrite)
        return mesh_err_set(err, MESH_EEXISTS,
                            "%s already exists; pass --overwrite to replace it with a new backup",
                            dest);
    return MESH_OK;
}

typedef struct backup_arg {
    const char *path;
    int64_t at, seq;
} backup_arg;

static int record_backup(store_witness_rec *w, void *arg)
{
    backup_arg *a = arg;
    snprintf(w->backup_path, sizeof w->backup_path, "%s", a->path);
    w->backup_at = a->at;
    w->backup_seq = a->seq;
    return 1;
}

/* Makes the copy at tmp: pages, self-contained, verified; fills info. */
static int write_copy(mesh_store *st, const char *tmp, store_backup_info *info, mesh_err *err)
{
    sqlite3 *dst = NULL;
    int src = sqlite3_open_v2(tmp, &dst,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                              NULL);
    int rc = src == SQLITE_OK ? MESH_OK : sqlite_fail(err, dst, src, "cannot open", tmp);
    if (rc == MESH_OK)
        rc = copy_pages(dst, st->db, tmp, err);
    /* The copy inherits the WAL flag of the live store's header; a backup
     * should be one file that opens without a -wal beside it. */
    if (rc == MESH_OK &&
        (src = sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL)) != SQLITE_OK)
        rc = sqlite_fail(err, dst, src, "cannot finish", tmp);
    if (rc == MESH_OK)
        rc = verify_copy(dst, tmp, "the copy", err);
    if (rc == MESH_ECORRUPT)
        mesh_err_prefix(err, "the live store %s is damaged (run 'meshctl store check')", st->path);
    if (rc == MESH_OK) {
        sqlite3_stmt *s = NULL;
        int version = 0;
        if (sqlite3_prepare_v2(dst, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
            version = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        if ((src = store_sqlite_read_counter(dst, version, &info->seq, info->store_id)) !=
            SQLITE_OK)
            rc = sqlite_fail(err, dst, src, "cannot read the change counter of", tmp);
    }
    if (rc == MESH_OK) {
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(dst, "PRAGMA page_count", -1, &s, NULL) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
            info->pages = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    src = sqlite3_close(dst);
    if (rc == MESH_OK && src != SQLITE_OK)
        rc = sqlite_fail(err, NULL, src, "cannot close", tmp);
    return rc;
}

int store_backup(mesh_store *st, const char *dest, int overwrite, store_backup_info *info,
                 mesh_err *err)
{
    memset(info, 0, sizeof *info);
    int rc = store_require(dest, "backup path", err);
    if (rc != MESH_OK)
        return rc;
    if (st->in_tx)
        return mesh_err_set(err, MESH_EINVAL, "store_backup inside a transaction");
    if (st->be != &store_sqlite_backend)
        return mesh_err_set(err, MESH_EINVAL,
                            "'store backup' copies an SQLite file; back a PostgreSQL store up "
                            "with the server's tools (pg_dump, or base backups with WAL "
                            "archiving)");
    if ((rc = check_dest(st, dest, overwrite, err)) != MESH_OK)
        return rc;
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.partial-%ld", dest, (long)getpid()) >= (int)sizeof tmp)
        return mesh_err_set(err, MESH_EINVAL, "backup path %.200s is too long", dest);
    int64_t start = now_ms();
    if ((rc = create_private(tmp, err)) != MESH_OK)
        return rc;
    rc = write_copy(st, tmp, info, err);
    if (rc == MESH_OK)
        rc = fsync_path(tmp, err);
    struct stat sb;
    if (rc == MESH_OK && stat(tmp, &sb) == 0)
        info->bytes = (int64_t)sb.st_size;
    if (rc == MESH_OK && rename(tmp, dest) != 0)
        rc = file_error(err, "cannot put the backup in place at", dest);
    if (rc != MESH_OK) {
        unlink(tmp);
        return rc;
    }
    store_sync_parent_dir(dest);
    if (!realpath(dest, info->path))
        snprintf(info->path, sizeof info->path, "%s", dest);
    info->at = (int64_t)time(NULL);
    info->elapsed_ms = now_ms() - start;
    if (st->witness_fd >= 0) {
        if (strlen(info->path) >= STORE_WITNESS_PATH_MAX) {
            log_warn("store", "backup path %s is too long to be recorded in the witness",
                     info->path);
            return MESH_OK;
        }
        backup_arg a = {.path = info->path, .at = info->at, .seq = info->seq};
        rc = store_witness_update(st->witness_fd, st->path, record_backup, &a, 1, err);
        if (rc != MESH_OK)
            return mesh_err_prefix(err, "backup %s was written, but recording it failed",
                                   info->path);
    }
    log_info("store", "backup of %s written to %s (change #%lld, %lld pages, %lld ms)", st->path,
             info->path, (long long)info->seq, (long long)info->pages,
             (long long)info->elapsed_ms);
    return MESH_OK;
}

/* ---- restore ------------------------------------------------------------------------ */

typedef struct backup_facts {
    int schema;
    int64_t seq;
    char store_id[STORE_ID_HEX_LEN + 1];
} backup_facts;

/* Opens the backup read-only and proves it is a healthy meshd store this
 * meshd can use. */
static int open_backup(const char *backup, sqlite3 **out, backup_facts *f, mesh_err *err)
{
    memset(f, 0, sizeof *f);
    sqlite3 *db = NULL;
    int src = sqlite3_open_v2(backup, &db,
                              SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                              NULL);
    if (src != SQLITE_OK) {
        int rc = sqlite_fail(err, db, src, "cannot open backup", backup);
        sqlite3_close_v2(db);
        return rc;
    }
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    int rc = MESH_OK;
    sqlite3_stmt *s = NULL;
    int64_t app_id = 0;
    src = sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &s, NULL);
    if (src == SQLITE_OK && (src = sqlite3_step(s)) == SQLITE_ROW)
        app_id = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    s = NULL;
    if (src == SQLITE_ROW) {
        src = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
        if (src == SQLITE_OK && (src = sqlite3_step(s)) == SQLITE_ROW)
            f->schema = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    if (src != SQLITE_ROW)
        rc = sqlite_fail(err, db, src, "cannot read backup", backup);
    else if (app_id != STORE_APPLICATION_ID || f->schema <= 0)
        rc = mesh_err_set(err, MESH_EINVAL, "%s is not a meshd store backup", backup);
    else if (f->schema > store_latest_schema_version())
        rc = mesh_err_set(err, MESH_EINVAL,
                          "backup %s was made by a newer meshd (schema %d > %d); restore it with "
                          "that version",
                          backup, f->schema, store_latest_schema_version());
    if (rc == MESH_OK)
        rc = verify_copy(db, backup, "backup", err);
    if (rc == MESH_OK && (src = store_sqlite_read_counter(db, f->schema, &f->seq, f->store_id)) !=
                             SQLITE_OK)
        rc = sqlite_fail(err, db, src, "cannot read the change counter of backup", backup);
    if (rc != MESH_OK) {
        sqlite3_close_v2(db);
        return rc;
    }
    *out = db;
    return MESH_OK;
}

/* Moves the store's current files aside: "<path>.replaced-<time>" and its
 * -wal (a WAL left next to the restored file would be replayed into it);
 * the -shm index is rebuilt by SQLite and simply removed. */
static int keep_current(const char *path, char *kept, size_t kept_len, mesh_err *err)
{
    kept[0] = '\0';
    char wal[PATH_MAX], shm[PATH_MAX], kept_wal[PATH_MAX + 256];
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    struct stat sb;
    int have_db = stat(path, &sb) == 0, have_wal = stat(wal, &sb) == 0;
    if (have_db || have_wal) {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        snprintf(kept, kept_len, "%s.replaced-%s", path, stamp);
        snprintf(kept_wal, sizeof kept_wal, "%s-wal", kept);
        if (have_db && rename(path, kept) != 0)
            return file_error(err, "cannot move the current store aside:", path);
        if (have_wal && rename(wal, kept_wal) != 0) {
            int rc = file_error(err, "cannot move the current WAL aside:", wal);
            if (have_db)
                (void)rename(kept, path);
            return rc;
        }
        size_t l = strlen(kept);
        if (!have_db && l + sizeof "-wal" <= kept_len)
            memcpy(kept + l, "-wal", sizeof "-wal");
    }
    if (unlink(shm) != 0 && errno != ENOENT)
        return file_error(err, "cannot remove", shm);
    return MESH_OK;
}

/* The backup's pages into a new file at path (via a temporary name). */
static int put_in_place(sqlite3 *backup_db, const char *path, mesh_err *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.restore-%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return mesh_err_set(err, MESH_EINVAL, "store path %.200s is too long", path);
    int rc = create_private(tmp, err);
    if (rc != MESH_OK)
        return rc;
    sqlite3 *dst = NULL;
    int src = sqlite3_open_v2(tmp, &dst,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                              NULL);
    rc = src == SQLITE_OK ? MESH_OK : sqlite_fail(err, dst, src, "cannot open", tmp);
    if (rc == MESH_OK)
        rc = copy_pages(dst, backup_db, tmp, err);
    src = sqlite3_close(dst);
    if (rc == MESH_OK && src != SQLITE_OK)
        rc = sqlite_fail(err, NULL, src, "cannot close", tmp);
    if (rc == MESH_OK)
        rc = fsync_path(tmp, err);
    if (rc == MESH_OK && rename(tmp, path) != 0)
        rc = file_error(err, "cannot put the restored store in place at", path);
    if (rc != MESH_OK) {
        unlink(tmp);
        return rc;
    }
    store_sync_parent_dir(path);
    return MESH_OK;
}

typedef struct restore_arg {
    const backup_facts *f;
} restore_arg;

static int reset_to_backup(store_witness_rec *w, void *arg)
{
    const backup_facts *f = ((restore_arg *)arg)->f;
    snprintf(w->store_id, sizeof w->store_id, "%s", f->store_id);
    w->seq = f->seq;
    w->clean = 0; /* the first open of the restored store runs the full check */
    return 1;
}

int store_restore(const char *path, const char *backup, int force, store_restore_info *info,
                  mesh_err *err)
{
    memset(info, 0, sizeof *info);
    int rc = store_require(path, "store path", err);
    if (rc == MESH_OK)
        rc = store_require(backup, "backup path", err);
    if (rc != MESH_OK)
        return rc;
    if (store_is_pg_url(path))
        return mesh_err_set(err, MESH_EINVAL,
                            "'store restore' replaces an SQLite file; restore a PostgreSQL "
                            "store with the server's tools (pg_restore, point-in-time recovery)");
    struct stat bsb;
    if (stat(backup, &bsb) != 0)
        return file_error(err, "cannot read backup", backup);
    if (!S_ISREG(bsb.st_mode))
        return mesh_err_set(err, MESH_EINVAL, "backup %s is not a regular file", backup);
    if (same_file(path, &bsb))
        return mesh_err_set(err, MESH_EINVAL, "%s is the store itself, not a backup of it",
                            backup);
    sqlite3 *bdb = NULL;
    backup_facts f;
    if ((rc = open_backup(backup, &bdb, &f, err)) != MESH_OK)
        return rc;

    int fd = -1;
    rc = store_witness_open(path, &fd, err);
    if (rc == MESH_ENOTFOUND) {
        mesh_err_clear(err);
        rc = store_witness_create(path, &fd, err);
    }
    if (rc != MESH_OK) {
        sqlite3_close_v2(bdb);
        return rc;
    }
    if (!store_session_try_last(fd)) {
        rc = mesh_err_set(err, MESH_EBUSY,
                          "store %s is in use (meshd or meshctl has it open): stop meshd, then "
                          "restore",
                          path);
        goto out;
    }
    store_witness_rec w;
    mesh_err werr = {0};
    if (store_witness_read(fd, path, &w, &werr) != MESH_OK)
        memset(&w, 0, sizeof w); /* unreadable: the restore starts it anew */
    info->witness_seq = w.seq;
    if (store_witness_vouches(&w) && f.store_id[0] && strcmp(f.store_id, w.store_id) != 0 &&
        !force) {
        rc = mesh_err_set(err, MESH_EINVAL,
                          "%s is a backup of another store (store id %.8s), not of %s (store id "
                          "%.8s); pass --force to replace this store with it anyway",
                          backup, f.store_id, path, w.store_id);
        goto out;
    }
    if ((rc = keep_current(path, info->kept_path, sizeof info->kept_path, err)) != MESH_OK ||
        (rc = put_in_place(bdb, path, err)) != MESH_OK)
        goto out;
    restore_arg a = {.f = &f};
    if ((rc = store_witness_update_or_reset(fd, path, reset_to_backup, &a, err)) != MESH_OK) {
        mesh_err_prefix(err, "the store was restored, but resetting its witness failed");
        goto out;
    }
    info->seq = f.seq;
    snprintf(info->store_id, sizeof info->store_id, "%s", f.store_id);
    log_info("store", "restored %s from %s (change #%lld; the witness had seen #%lld)", path,
             backup, (long long)f.seq, (long long)info->witness_seq);
out:
    store_session_end(fd);
    close(fd);
    sqlite3_close_v2(bdb);
    return rc;
}
