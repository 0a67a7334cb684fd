/* store/store_sqlite_open.c — opening and closing an SQLite store: refusing
 * missing, empty, damaged, foreign and rolled-back files without writing to
 * them, creating a new store only when asked and when nothing witnesses an
 * earlier one, connection pragmas (WAL, synchronous=FULL, foreign keys,
 * busy timeout), migrations, and recording a clean close.
 *
 * Which check runs (the witness file, store_sqlite_witness.c, remembers how
 * the last session ended):
 *  - the first handle to open the store (nobody else has it open) runs the
 *    full PRAGMA integrity_check if the last session did not end with a
 *    clean close, or the file changed since (size, mtime, ctime, inode), or
 *    the store had no witness yet; otherwise PRAGMA quick_check;
 *  - handles joining a running session (meshd's threads, meshctl next to
 *    meshd) run quick_check, as before;
 *  - every handle compares the store's change counter and id with the
 *    witness and refuses a store that moved backwards.
 * Before the first commit of a handle the witness is marked "in use"
 * (durably: an OS crash from then on must lead to a full check), and the
 * last handle to close records a clean close once SQLite has checkpointed
 * and removed the WAL. A session that only reads writes nothing.
 *
 * Order matters: everything up to the witness comparison only reads, so a
 * file we refuse is left byte-for-byte as it was (SQLite may rebuild its
 * -shm index; the -wal file is kept). The first write is switching to WAL,
 * after the file has been proven to be a healthy meshd store. */
#include "store/store_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

typedef enum store_file_state { STORE_FILE_MISSING, STORE_FILE_EMPTY, STORE_FILE_PRESENT } store_file_state;

typedef enum store_check_level { CHECK_NONE, CHECK_QUICK, CHECK_FULL } store_check_level;

/* Pause between attempts to get a fresh store into WAL mode (see store_verify). */
#define STORE_OPEN_RETRY_MS 20

static const char SQL_COUNT_SCHEMA[] = "SELECT count(*) FROM sqlite_schema";
static const char SQL_APPLICATION_ID[] = "PRAGMA application_id";
static const char SQL_USER_VERSION[] = "PRAGMA user_version";
static const char SQL_JOURNAL_WAL[] = "PRAGMA journal_mode = WAL";
static const char SQL_SYNC_FULL[] = "PRAGMA synchronous = FULL";
static const char SQL_FK_ON[] = "PRAGMA foreign_keys = ON";
static const char SQL_FK_OFF[] = "PRAGMA foreign_keys = OFF";

/* ---- the file itself ------------------------------------------------------------ */

static off_t wal_size(const char *path)
{
    char wal[STORE_WITNESS_PATH_MAX + 16];
    struct stat sb;
    if (snprintf(wal, sizeof wal, "%s-wal", path) >= (int)sizeof wal || stat(wal, &sb) != 0)
        return 0;
    return sb.st_size;
}

/* Missing, empty, or holding data? A zero-length main file next to a
 * non-empty WAL holds data (SQLite reads the WAL). */
static int store_probe_file(const char *path, store_file_state *out, mesh_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno != ENOENT)
            return mesh_err_set(err, MESH_EIO, "cannot access store %s: %s", path,
                                strerror(errno));
        char *copy = strdup(path);
        int dir_ok = copy && stat(dirname(copy), &sb) == 0 && S_ISDIR(sb.st_mode);
        free(copy);
        if (!dir_ok)
            return mesh_err_set(err, MESH_ENOTFOUND,
                                "store %s: its directory does not exist; check the --db path",
                                path);
        *out = STORE_FILE_MISSING;
        return MESH_OK;
    }
    if (!S_ISREG(sb.st_mode))
        return mesh_err_set(err, MESH_EINVAL, "store path %s is not a regular file", path);
    if (sb.st_mode & 077)
        log_warn("store", "store %s has mode %04o; it should be 0600 (chmod 600 %s)", path,
                 (unsigned)(sb.st_mode & 07777), path);
    *out = sb.st_size > 0 || wal_size(path) > 0 ? STORE_FILE_PRESENT : STORE_FILE_EMPTY;
    return MESH_OK;
}

/* Creates the database file ourselves with mode 0600 (SQLite would use 0644
 * minus umask); SQLite gives the -wal and -shm files the same mode. */
static int store_create_file(const char *path, mesh_err *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return MESH_OK;
        if (errno == ENOENT)
            return mesh_err_set(err, MESH_ENOTFOUND,
                                "cannot create store %s: its directory does not exist", path);
        return mesh_err_set(err, MESH_EIO, "cannot create store %s: %s", path, strerror(errno));
    }
    close(fd);
    store_sync_parent_dir(path);
    log_info("store", "created new store %s", path);
    return MESH_OK;
}

static int store_refuse_missing(const char *path, store_file_state fs, mesh_err *err)
{
    return mesh_err_set(err, MESH_ENOTFOUND,
                        "store %s %s; check the --db path, or create a new store with "
                        "'meshctl ca init --db %s --trust-domain <your.domain>'",
                        path, fs == STORE_FILE_EMPTY ? "is an empty file" : "does not exist",
                        path);
}

static int store_refuse_lost(const char *path, store_file_state fs, const store_witness_rec *w,
                             mesh_err *err)
{
    char advice[400];
    store_witness_backup_advice(w, path, advice, sizeof advice);
    return mesh_err_set(err, MESH_ECORRUPT,
                        "store %s %s, but its witness %s-witness saw it hold change #%lld: the "
                        "store was lost, not new, and is not re-created; %s",
                        path, fs == STORE_FILE_EMPTY ? "is an empty file" : "is missing", path,
                        (long long)w->seq, advice);
}

/* ---- reading a file not trusted yet ----------------------------------------------- */

static int store_corrupt(mesh_store *st, mesh_err *err, const char *why)
{
    return mesh_err_set(err, MESH_ECORRUPT,
                        "store %s is damaged or not an SQLite database (%s); it was left "
                        "untouched. Stop meshd and restore the file from a backup ('meshctl "
                        "store check' says more)",
                        st->path, why);
}

/* Maps a failure while reading a file we do not trust yet: damage becomes
 * ECORRUPT with restore advice, anything else keeps its own meaning. */
static int store_read_failed(mesh_store *st, mesh_err *err, int src, const char *what)
{
    if (store_map_sqlite_rc(src) == MESH_ECORRUPT)
        return store_corrupt(st, err, sqlite3_errmsg(st->db));
    return store_sqlite_error(st, err, src, "%s", what);
}

/* store_stmt for a file not yet trusted: preparing may be the first read of
 * the header or schema, so damage shows up here already. */
static int store_stmt_untrusted(mesh_store *st, const char *sql, sqlite3_stmt **out,
                                mesh_err *err)
{
    int rc = store_sqlite_stmt(st, sql, out, err);
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
    store_sqlite_stmt_release(s);
    return rc;
}

/* PRAGMA quick_check or integrity_check: refuses the store on any finding. */
static int store_check_integrity(mesh_store *st, store_check_level level, mesh_err *err)
{
    if (level == CHECK_NONE)
        return MESH_OK;
    store_problems found;
    int src = store_sqlite_run_check(st->db, level == CHECK_FULL, 8, &found);
    int rc = MESH_OK;
    if (src != SQLITE_OK) {
        rc = store_read_failed(st, err, src, "running the integrity check");
    } else if (found.n > 0) {
        char why[300];
        int n = snprintf(why, sizeof why, "%s: ",
                         level == CHECK_FULL ? "integrity_check" : "quick_check");
        store_problems_join(&found, why + n, sizeof why - (size_t)n);
        rc = store_corrupt(st, err, why);
    }
    store_problems_free(&found);
    return rc;
}

/* Is this our file, and not from a newer meshd? Read-only. Keeps the schema
 * version for the witness comparison. */
static int store_check_identity(mesh_store *st, int *schema_out, mesh_err *err)
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
    *schema_out = (int)version;
    return MESH_OK;
}

/* The store's counter against its witness: refuse a store that holds fewer
 * committed changes than were once seen committed, or another store. */
static int store_compare_witness(mesh_store *st, int schema, const store_witness_rec *w,
                                 mesh_err *err)
{
    int64_t seq = 0;
    char id[STORE_ID_HEX_LEN + 1];
    int src = store_sqlite_read_counter(st->db, schema, &seq, id);
    if (src != SQLITE_OK)
        return store_read_failed(st, err, src, "reading the store's change counter");
    if (!store_witness_vouches(w))
        return MESH_OK; /* a new or unbound witness has nothing to hold the store to */
    char advice[400];
    store_witness_backup_advice(w, st->path, advice, sizeof advice);
    if (id[0] && strcmp(id, w->store_id) != 0)
        return mesh_err_set(err, MESH_ECORRUPT,
                            "store %s is not the store its witness describes (store id %.8s, "
                            "witness for %.8s at change #%lld): the file was replaced; left "
                            "untouched; %s; or, to keep this store, 'meshctl --db %s store "
                            "check --accept-loss'",
                            st->path, id, w->store_id, (long long)w->seq, advice, st->path);
    if (!id[0] || seq < w->seq)
        return mesh_err_set(err, MESH_ECORRUPT,
                            "store %s moved backwards: it holds change #%lld, its witness saw "
                            "#%lld committed (WAL frames lost, or an older copy put back); "
                            "left untouched; %s; or accept the loss: 'meshctl --db %s store "
                            "check --accept-loss'",
                            st->path, (long long)seq, (long long)w->seq, advice, st->path);
    return MESH_OK;
}

static int store_set_wal(mesh_store *st, mesh_err *err)
{
    sqlite3_stmt *s;
    int rc = store_sqlite_stmt(st, SQL_JOURNAL_WAL, &s, err);
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
        rc = store_sqlite_error(st, err, src, "enabling WAL journal mode");
    }
    store_sqlite_stmt_release(s);
    return rc;
}

static int store_connect(mesh_store *st, mesh_err *err)
{
    /* No SQLITE_OPEN_CREATE: the file exists (we created it with the right
     * mode, or it was there). NOMUTEX: a handle belongs to one thread at a
     * time (see store.h). */
    int src = sqlite3_open_v2(st->path, &st->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                              NULL);
    if (src != SQLITE_OK)
        return store_sqlite_error(st, err, src, "opening store");
    sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    /* Defensive mode: no writable_schema tricks that could corrupt the file. */
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    return MESH_OK;
}

/* Read-only checks, then WAL, which is persistent in the file. When two
 * processes create a fresh store at the same moment, the switch to WAL
 * needs an exclusive lock for which SQLite does not always call the busy
 * handler, and a reader can catch the other side mid-switch (SQLITE_IOERR);
 * both are transient, so retry within the busy timeout instead of failing. */
static int store_verify(mesh_store *st, store_check_level level, const store_witness_rec *w,
                        mesh_err *err)
{
    int rc;
    for (int attempt = 0;; attempt++) {
        int schema = 0;
        rc = store_check_integrity(st, level, err);
        if (rc == MESH_OK)
            rc = store_check_identity(st, &schema, err);
        if (rc == MESH_OK && w)
            rc = store_compare_witness(st, schema, w, err);
        if (rc == MESH_OK)
            rc = store_set_wal(st, err);
        if ((rc != MESH_EBUSY && rc != MESH_EIO) ||
            attempt >= STORE_BUSY_TIMEOUT_MS / STORE_OPEN_RETRY_MS)
            return rc;
        mesh_err_clear(err);
        struct timespec pause = {0, STORE_OPEN_RETRY_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
}

/* Why the first opener must run the full check, or NULL if quick_check is
 * enough because the last session closed cleanly and nothing touched the
 * file since. */
static const char *store_full_check_reason(const mesh_store *st, const store_witness_rec *w)
{
    if (!w->store_id[0])
        return "it has no witness record yet";
    if (!w->clean)
        return "it was not closed cleanly (a process using it was killed or the machine "
               "stopped)";
    store_file_stamp now;
    if (store_file_stamp_of(st->path, &now) != 0 || !store_file_stamp_equal(&now, &w->clean_stamp))
        return "the file was changed while no meshd or meshctl had it open";
    if (wal_size(st->path) > 0)
        return "a WAL file was left behind";
    return NULL;
}

/* ---- binding the witness and recording the session ---------------------------------- */

typedef struct bind_arg {
    const char *store_id;
    int64_t seq;
    int refused;        /* out: the witness vouches for another store */
    int64_t held;       /* out: the witness's mark afterwards */
} bind_arg;

static int bind_edit(store_witness_rec *w, void *arg)
{
    bind_arg *a = arg;
    int changed = 0;
    if (strcmp(w->store_id, a->store_id) != 0) {
        if (store_witness_vouches(w)) {
            a->refused = 1;
            return 0;
        }
        snprintf(w->store_id, sizeof w->store_id, "%s", a->store_id);
        w->seq = a->seq;
        changed = 1;
    } else if (w->seq < a->seq) {
        w->seq = a->seq;
        changed = 1;
    }
    a->held = w->seq;
    return changed;
}

/* After migrations: ties the witness to this store's id and counter (a new
 * store, one from before witnesses, or a mark that lagged behind a crash). */
static int store_bind_witness(mesh_store *st, mesh_err *err)
{
    int64_t seq = 0;
    int src = store_sqlite_read_counter(st->db, store_schema_version(st), &seq, st->store_id);
    if (src != SQLITE_OK)
        return store_sqlite_error(st, err, src, "reading the store's change counter");
    if (!st->store_id[0])
        return mesh_err_set(err, MESH_EINTERNAL, "store %s has no store id after migration",
                            st->path);
    bind_arg a = {.store_id = st->store_id, .seq = seq};
    int rc = store_witness_update(st->witness_fd, st->path, bind_edit, &a, 1, err);
    if (rc != MESH_OK)
        return rc;
    if (a.refused)
        return mesh_err_set(err, MESH_ECORRUPT,
                            "store %s: its witness was bound to another store while opening; "
                            "run 'meshctl --db %s store check'",
                            st->path, st->path);
    st->witnessed_seq = a.held;
    return MESH_OK;
}

typedef struct clean_arg {
    const char *store_id;
    store_file_stamp stamp;
} clean_arg;

static int clean_edit(store_witness_rec *w, void *arg)
{
    clean_arg *a = arg;
    if (strcmp(w->store_id, a->store_id) != 0)
        return 0;
    if (w->clean && store_file_stamp_equal(&w->clean_stamp, &a->stamp))
        return 0; /* a session that wrote nothing: already recorded */
    w->clean = 1;
    w->clean_stamp = a->stamp;
    return 1;
}

/* The last handle closed and SQLite checkpointed and removed the WAL: the
 * next first opener may trust the file as it is now. Not fsynced: losing
 * this record only costs a full check. */
static void store_record_clean_close(mesh_store *st)
{
    if (!st->store_id[0] || wal_size(st->path) > 0)
        return;
    clean_arg a = {.store_id = st->store_id};
    if (store_file_stamp_of(st->path, &a.stamp) != 0)
        return;
    mesh_err err = {0};
    if (store_witness_update(st->witness_fd, st->path, clean_edit, &a, 0, &err) != MESH_OK)
        log_warn("store", "could not record the clean close of %s: %s", st->path, err.msg);
}

/* ---- open ------------------------------------------------------------------------- */

/* A store file without a witness: made by a meshd from before witnesses, or
 * a file we will refuse. Prove it is a healthy meshd store (read-only)
 * before creating anything beside it. */
static int store_precheck_unwitnessed(mesh_store *st, mesh_err *err)
{
    int rc = store_connect(st, err);
    int schema = 0;
    if (rc == MESH_OK)
        rc = store_check_integrity(st, CHECK_QUICK, err);
    if (rc == MESH_OK)
        rc = store_check_identity(st, &schema, err);
    return rc;
}

static int store_open_steps(mesh_store *st, int create, mesh_err *err)
{
    store_file_state fs;
    int rc = store_probe_file(st->path, &fs, err);
    if (rc != MESH_OK)
        return rc;
    rc = store_witness_open(st->path, &st->witness_fd, err);
    if (rc == MESH_ENOTFOUND) {
        mesh_err_clear(err);
        if (fs == STORE_FILE_PRESENT)
            rc = store_precheck_unwitnessed(st, err);
        else if (!create)
            return store_refuse_missing(st->path, fs, err);
        else
            rc = MESH_OK;
        if (rc == MESH_OK) {
            if (fs == STORE_FILE_PRESENT)
                log_warn("store", "store %s has no witness file (an older meshd made it, or it "
                                  "was deleted): creating one; losses before now cannot be "
                                  "detected",
                         st->path);
            rc = store_witness_create(st->path, &st->witness_fd, err);
        }
    }
    if (rc != MESH_OK)
        return rc;

    int alone = 0;
    if ((rc = store_session_begin(st->witness_fd, st->path, &alone, err)) != MESH_OK)
        return rc;
    st->session_held = 1;
    /* The witness is read before the database: a mark raised after a commit
     * that we then read can only be lower than what we read, never higher. */
    store_witness_rec w;
    if ((rc = store_witness_read(st->witness_fd, st->path, &w, err)) != MESH_OK)
        return rc;
    /* Again, under the lock: another opener may have created it meanwhile. */
    if ((rc = store_probe_file(st->path, &fs, err)) != MESH_OK)
        return rc;
    store_check_level level = CHECK_QUICK;
    if (fs != STORE_FILE_PRESENT) {
        if (store_witness_vouches(&w))
            return store_refuse_lost(st->path, fs, &w, err);
        if (!create)
            return store_refuse_missing(st->path, fs, err);
        if (fs == STORE_FILE_MISSING && (rc = store_create_file(st->path, err)) != MESH_OK)
            return rc;
        level = CHECK_NONE;
    } else if (alone) {
        const char *why = store_full_check_reason(st, &w);
        if (why) {
            level = CHECK_FULL;
            log_info("store", "store %s: running a full integrity check because %s", st->path,
                     why);
        }
    }
    if (!st->db && (rc = store_connect(st, err)) != MESH_OK)
        return rc;
    if ((rc = store_verify(st, level, &w, err)) != MESH_OK)
        return rc;
    st->last_check = level == CHECK_FULL    ? "integrity_check"
                     : level == CHECK_QUICK ? "quick_check"
                                            : "none";
    /* From the first commit on (a migration may be one), the witness says
     * "in use" until a clean close. */
    store_sqlite_hook_first_write(st);
    /* synchronous and foreign_keys are per connection. Migrations run with
     * foreign keys off (table rebuilds) and check them before each commit. */
    rc = store_exec(st, SQL_SYNC_FULL, err);
    if (rc == MESH_OK)
        rc = store_exec(st, SQL_FK_OFF, err);
    if (rc == MESH_OK)
        rc = store_sqlite_migrate(st, err);
    if (rc == MESH_OK)
        rc = store_exec(st, SQL_FK_ON, err);
    if (rc == MESH_OK)
        rc = store_bind_witness(st, err);
    if (rc != MESH_OK)
        return rc;
    if ((rc = store_sqlite_install_commit_hook(st, err)) != MESH_OK)
        return rc;
    if (alone)
        store_session_downgrade(st->witness_fd);
    return MESH_OK;
}

/* The SQLite half of store_open_with (store_open.c made st). */
int store_sqlite_open(mesh_store *st, int create, mesh_err *err)
{
    st->witness_fd = -1;
    st->opener_pid = getpid();
    st->last_check = "none";
    int rc = store_open_steps(st, create, err);
    if (rc != MESH_OK) {
        /* Closing the last connection would checkpoint a leftover WAL into
         * the main file: not into a file we just refused. */
        if (st->db)
            sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        return rc;
    }
    st->open_ok = 1;
    store_gate_attach(st);
    return MESH_OK;
}

void store_sqlite_close(mesh_store *st)
{
    /* A fork()ed child shares the parent's lock on the witness: it must not
     * release it or speak for the session. */
    int ours = st->opener_pid == getpid();
    if (st->db) {
        store_gate_detach(st);
        store_stmt_cache_free(st);
        int last = ours && st->open_ok && st->session_held &&
                   store_session_try_last(st->witness_fd);
        /* The last connection to close checkpoints the WAL into the file
         * and removes it. */
        int src = sqlite3_close_v2(st->db);
        if (last && src == SQLITE_OK)
            store_record_clean_close(st);
    }
    if (st->witness_fd >= 0) {
        if (ours && st->session_held)
            store_session_end(st->witness_fd);
        close(st->witness_fd);
    }
}
