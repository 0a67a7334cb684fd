/* store/store_sqlite_witness.c — the witness file beside an SQLite store
 * ("<store>-witness", mode 0600): what the store must at least contain, kept
 * outside the database so that a database which lost committed data (WAL
 * frames dropped after a bad checksum, an old copy put back, a truncated or
 * deleted file) is recognised at open instead of being served.
 *
 * It holds the store's id (random, also kept in the store_integrity row),
 * the high-water mark (the store's change counter store_integrity.seq as
 * last seen committed), whether the last user closed the store cleanly and
 * the file's identity at that moment, and the last `meshctl store backup`.
 *
 * Crash safety. The file holds two 4 KiB slots, each a short text record
 * ending in its SHA-256. A write goes to the slot that does not hold the
 * newest record, with the next generation number, so a torn write (power
 * loss mid-write) can damage only the slot being written and readers fall
 * back to the other one. An older record has a lower high-water mark, which
 * can miss a loss but never invent one. The mark is raised only after the
 * commit it describes is durable (synchronous=FULL fsyncs the WAL before a
 * commit becomes visible to anyone), so it never runs ahead of the
 * database: that path needs no fsync of its own and costs one pread and one
 * pwrite into the page cache per commit. fsync is used where a lost write
 * would lose a decision: creating the file, binding it to a store,
 * recording a backup, an operator's restore or accepted loss. (The "in
 * use" mark needs none either, see store_sqlite_integrity.c.)
 *
 * Locks (Linux open file description locks on bytes far past the end of
 * the file, so they never cover data):
 *  - the session lock: every open handle holds it shared. A handle that
 *    finds nobody else holding it takes it exclusive while it checks the
 *    store, and the last handle to close takes it exclusive to record a
 *    clean close. OFD locks belong to one open(), so two handles of one
 *    process exclude each other like two processes do, and they vanish
 *    with the process: a SIGKILLed meshd leaves "not clean" behind.
 *  - the update lock: held for the microseconds of a read-modify-write, so
 *    writers in several processes never lose each other's marks (a writer
 *    only ever raises the mark: max(old, new)). */
#include "store/store_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define WITNESS_SLOT_SIZE 4096
#define WITNESS_MAGIC "meshd store witness 1\n"
#define WITNESS_SUM_KEY "sha256 "
/* Lock bytes: far beyond any data the file will ever hold. */
#define WITNESS_LOCK_SESSION ((off_t)1 << 40)
#define WITNESS_LOCK_UPDATE (WITNESS_LOCK_SESSION + 1)
/* How long an opener waits for another process that is checking the store
 * (a full integrity check of a large store takes a while) or closing it. */
#define SESSION_WAIT_MS (10 * 60 * 1000)
#define SESSION_POLL_MS 10

int store_witness_path(const char *db_path, char *out, size_t len, mesh_err *err)
{
    int n = snprintf(out, len, "%s-witness", db_path);
    if (n < 0 || (size_t)n >= len)
        return mesh_err_set(err, MESH_EINVAL, "store path %.200s is too long", db_path);
    return MESH_OK;
}

void store_sync_parent_dir(const char *path)
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

/* ---- locks -------------------------------------------------------------------- */

/* 0 on success; -1 with errno EAGAIN/EACCES when someone else holds it. */
static int ofd_lock(int fd, off_t where, short type, int wait)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = where;
    fl.l_len = 1;
    int r;
    do
        r = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
    while (r != 0 && errno == EINTR);
    return r;
}

static int lock_refused(void)
{
    return errno == EAGAIN || errno == EACCES;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_session_begin(int fd, const char *db_path, int *alone_out, mesh_err *err)
{
    *alone_out = 0;
    int64_t start = mono_ms();
    int said = 0;
    for (;;) {
        if (ofd_lock(fd, WITNESS_LOCK_SESSION, F_WRLCK, 0) == 0) {
            *alone_out = 1;
            return MESH_OK;
        }
        if (!lock_refused())
            break;
        /* Others hold it. Shared is granted unless one of them is checking
         * or closing the store (exclusive); then wait for it. */
        if (ofd_lock(fd, WITNESS_LOCK_SESSION, F_RDLCK, 0) == 0) {
            /* The others may have left between our two attempts: being
             * alone must not be mistaken for joining a running session. */
            if (ofd_lock(fd, WITNESS_LOCK_SESSION, F_WRLCK, 0) == 0)
                *alone_out = 1;
            return MESH_OK;
        }
        if (!lock_refused())
            break;
        int64_t waited = mono_ms() - start;
        if (waited >= SESSION_WAIT_MS)
            return mesh_err_set(err, MESH_EBUSY,
                                "store %s: another process has been checking or closing the "
                                "store for %d minutes; retry when it is done",
                                db_path, SESSION_WAIT_MS / 60000);
        if (!said && waited >= 2000) {
            log_info("store", "waiting for another process to finish checking store %s",
                     db_path);
            said = 1;
        }
        struct timespec pause = {0, SESSION_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    return mesh_err_set(err, MESH_EIO, "store %s: cannot lock its witness file: %s", db_path,
                        strerror(errno));
}

void store_session_downgrade(int fd)
{
    /* Converting an OFD lock is atomic: nobody can slip in between. */
    (void)ofd_lock(fd, WITNESS_LOCK_SESSION, F_RDLCK, 0);
}

int store_session_try_last(int fd)
{
    /* A refused conversion leaves the shared lock in place. */
    return ofd_lock(fd, WITNESS_LOCK_SESSION, F_WRLCK, 0) == 0;
}

void store_session_end(int fd)
{
    (void)ofd_lock(fd, WITNESS_LOCK_SESSION, F_UNLCK, 0);
}

/* ---- record format ------------------------------------------------------------ */

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int md_len = 0;
    static const char hex[] = "0123456789abcdef";
    if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32) {
        memset(out, '0', 64); /* never matches a real record: read as damaged */
        out[64] = '\0';
        return;
    }
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

/* Writes w as one slot (text, then zero padding). MESH_EINVAL if too long. */
static int witness_format(const store_witness_rec *w, char slot[WITNESS_SLOT_SIZE])
{
    memset(slot, 0, WITNESS_SLOT_SIZE);
    const store_file_stamp *c = &w->clean_stamp;
    int n = snprintf(slot, WITNESS_SLOT_SIZE,
                     WITNESS_MAGIC "generation %" PRIu64 "\nstore_id %s\nseq %" PRId64
                                   "\nclean %d\nclean_stamp %" PRId64 " %" PRId64 " %" PRId64
                                   " %" PRId64 " %" PRId64 "\nbackup_at %" PRId64
                                   "\nbackup_seq %" PRId64 "\nbackup_path %s\n",
                     w->generation, w->store_id, w->seq, w->clean ? 1 : 0, c->dev, c->ino,
                     c->size, c->mtime_ns, c->ctime_ns, w->backup_at, w->backup_seq,
                     w->backup_path);
    if (n < 0 || (size_t)n + sizeof WITNESS_SUM_KEY + 66 > WITNESS_SLOT_SIZE)
        return MESH_EINVAL;
    char sum[65];
    sha256_hex(slot, (size_t)n, sum);
    snprintf(slot + n, WITNESS_SLOT_SIZE - (size_t)n, WITNESS_SUM_KEY "%s\n", sum);
    return MESH_OK;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || (*end != '\0' && *end != ' '))
        return -1;
    *out = v;
    return 0;
}

/* One "key value" line of a record body; unknown keys are ignored, so a
 * later meshd may add some. */
static int witness_parse_line(const char *key, const char *val, store_witness_rec *w)
{
    int64_t v = 0;
    if (strcmp(key, "generation") == 0) {
        if (parse_i64(val, &v) != 0 || v <= 0)
            return -1;
        w->generation = (uint64_t)v;
    } else if (strcmp(key, "store_id") == 0) {
        size_t len = strlen(val);
        if (len != 0 && len != STORE_ID_HEX_LEN)
            return -1;
        memcpy(w->store_id, val, len + 1);
    } else if (strcmp(key, "seq") == 0) {
        if (parse_i64(val, &w->seq) != 0 || w->seq < 0)
            return -1;
    } else if (strcmp(key, "clean") == 0) {
        if (parse_i64(val, &v) != 0)
            return -1;
        w->clean = v != 0;
    } else if (strcmp(key, "clean_stamp") == 0) {
        store_file_stamp *c = &w->clean_stamp;
        if (sscanf(val, "%" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64, &c->dev,
                   &c->ino, &c->size, &c->mtime_ns, &c->ctime_ns) != 5)
            return -1;
    } else if (strcmp(key, "backup_at") == 0) {
        if (parse_i64(val, &w->backup_at) != 0)
            return -1;
    } else if (strcmp(key, "backup_seq") == 0) {
        if (parse_i64(val, &w->backup_seq) != 0)
            return -1;
    } else if (strcmp(key, "backup_path") == 0) {
        if (strlen(val) >= sizeof w->backup_path)
            return -1;
        strcpy(w->backup_path, val);
    }
    return 0;
}

/* 0 and *w filled if slot holds an intact record, -1 otherwise. */
static int witness_parse(const char *slot, size_t slot_len, store_witness_rec *w)
{
    memset(w, 0, sizeof *w);
    char buf[WITNESS_SLOT_SIZE + 1];
    if (slot_len > WITNESS_SLOT_SIZE)
        slot_len = WITNESS_SLOT_SIZE;
    memcpy(buf, slot, slot_len);
    buf[slot_len] = '\0';
    size_t magic_len = strlen(WITNESS_MAGIC);
    if (strncmp(buf, WITNESS_MAGIC, magic_len) != 0)
        return -1;
    char *sum_line = strstr(buf, "\n" WITNESS_SUM_KEY);
    if (!sum_line)
        return -1;
    size_t body_len = (size_t)(sum_line + 1 - buf);
    char want[65];
    sha256_hex(buf, body_len, want);
    const char *got = sum_line + 1 + strlen(WITNESS_SUM_KEY);
    if (strncmp(got, want, 64) != 0 || got[64] != '\n')
        return -1;
    buf[body_len] = '\0';
    char *line = buf + magic_len;
    while (*line) {
        char *nl = strchr(line, '\n');
        if (!nl)
            return -1;
        *nl = '\0';
        char *sp = strchr(line, ' ');
        if (sp) {
            *sp = '\0';
            if (witness_parse_line(line, sp + 1, w) != 0)
                return -1;
        }
        line = nl + 1;
    }
    return w->generation > 0 ? 0 : -1;
}

/* ---- reading and writing -------------------------------------------------------- */

static int witness_io_error(mesh_err *err, const char *db_path, const char *what)
{
    char wpath[STORE_WITNESS_PATH_MAX + 16];
    if (store_witness_path(db_path, wpath, sizeof wpath, NULL) != MESH_OK)
        snprintf(wpath, sizeof wpath, "the witness of %.200s", db_path);
    int code = (errno == ENOSPC || errno == EDQUOT) ? MESH_ENOSPC : MESH_EIO;
    return mesh_err_set(err, code, "%s %s: %s", what, wpath, strerror(errno));
}

/* Newest intact record; the caller holds the update lock. */
static int witness_read_locked(int fd, const char *db_path, store_witness_rec *out,
                               mesh_err *err)
{
    memset(out, 0, sizeof *out);
    char buf[2 * WITNESS_SLOT_SIZE];
    ssize_t n;
    do
        n = pread(fd, buf, sizeof buf, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return witness_io_error(err, db_path, "cannot read");
    if (n == 0)
        return MESH_OK; /* created, no record yet */
    store_witness_rec a, b;
    int a_ok = witness_parse(buf, (size_t)n, &a) == 0;
    int b_ok = n > WITNESS_SLOT_SIZE &&
               witness_parse(buf + WITNESS_SLOT_SIZE, (size_t)n - WITNESS_SLOT_SIZE, &b) == 0;
    if (!a_ok && !b_ok) {
        char wpath[STORE_WITNESS_PATH_MAX + 16];
        store_witness_path(db_path, wpath, sizeof wpath, NULL);
        return mesh_err_set(err, MESH_ECORRUPT,
                            "the witness file %s holds no intact record, so it cannot vouch "
                            "for store %s; run 'meshctl --db %s store check' and, if the "
                            "store is healthy, 'store check --accept-loss' to write a new one",
                            wpath, db_path, db_path);
    }
    if (a_ok && (!b_ok || a.generation > b.generation))
        *out = a;
    else
        *out = b;
    return MESH_OK;
}

static int witness_write_locked(int fd, const char *db_path, const store_witness_rec *w,
                                int durable, mesh_err *err)
{
    char slot[WITNESS_SLOT_SIZE];
    if (witness_format(w, slot) != MESH_OK)
        return mesh_err_set(err, MESH_EINVAL, "witness record of %s does not fit a slot",
                            db_path);
    off_t where = (off_t)(w->generation % 2) * WITNESS_SLOT_SIZE;
    ssize_t n;
    do
        n = pwrite(fd, slot, sizeof slot, where);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof slot) {
        if (n >= 0)
            errno = ENOSPC;
        return witness_io_error(err, db_path, "cannot write");
    }
    if (durable && fdatasync(fd) != 0)
        return witness_io_error(err, db_path, "cannot sync");
    return MESH_OK;
}

int store_witness_read(int fd, const char *db_path, store_witness_rec *out, mesh_err *err)
{
    if (ofd_lock(fd, WITNESS_LOCK_UPDATE, F_WRLCK, 1) != 0)
        return witness_io_error(err, db_path, "cannot lock");
    int rc = witness_read_locked(fd, db_path, out, err);
    (void)ofd_lock(fd, WITNESS_LOCK_UPDATE, F_UNLCK, 0);
    return rc;
}

int store_witness_update(int fd, const char *db_path, store_witness_edit_fn edit, void *arg,
                         int durable, mesh_err *err)
{
    if (ofd_lock(fd, WITNESS_LOCK_UPDATE, F_WRLCK, 1) != 0)
        return witness_io_error(err, db_path, "cannot lock");
    store_witness_rec cur;
    int rc = witness_read_locked(fd, db_path, &cur, err);
    if (rc == MESH_OK) {
        store_witness_rec next = cur;
        if (edit(&next, arg)) {
            next.generation = cur.generation + 1;
            rc = witness_write_locked(fd, db_path, &next, durable, err);
        }
    }
    (void)ofd_lock(fd, WITNESS_LOCK_UPDATE, F_UNLCK, 0);
    return rc;
}

int store_witness_update_or_reset(int fd, const char *db_path, store_witness_edit_fn edit,
                                  void *arg, mesh_err *err)
{
    int rc = store_witness_update(fd, db_path, edit, arg, 1, err);
    if (rc != MESH_ECORRUPT)
        return rc;
    /* No intact record to start from: the operator's decision starts a new
     * history (edit sees an empty record). */
    mesh_err_clear(err);
    if (ftruncate(fd, 0) != 0)
        return witness_io_error(err, db_path, "cannot rewrite");
    return store_witness_update(fd, db_path, edit, arg, 1, err);
}

/* ---- opening and creating ------------------------------------------------------- */

int store_witness_open(const char *db_path, int *fd_out, mesh_err *err)
{
    *fd_out = -1;
    char wpath[STORE_WITNESS_PATH_MAX + 16];
    int rc = store_witness_path(db_path, wpath, sizeof wpath, err);
    if (rc != MESH_OK)
        return rc;
    int fd = open(wpath, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return mesh_err_set(err, MESH_ENOTFOUND, "store %s has no witness file %s", db_path,
                                wpath);
        return witness_io_error(err, db_path, "cannot open");
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return mesh_err_set(err, MESH_EINVAL, "witness %s of store %s is not a regular file",
                            wpath, db_path);
    }
    if (sb.st_mode & 077)
        log_warn("store", "witness %s has mode %04o; it should be 0600 (chmod 600 %s)", wpath,
                 (unsigned)(sb.st_mode & 07777), wpath);
    *fd_out = fd;
    return MESH_OK;
}

int store_witness_create(const char *db_path, int *fd_out, mesh_err *err)
{
    *fd_out = -1;
    char wpath[STORE_WITNESS_PATH_MAX + 16], tmp[STORE_WITNESS_PATH_MAX + 64];
    int rc = store_witness_path(db_path, wpath, sizeof wpath, err);
    if (rc != MESH_OK)
        return rc;
    snprintf(tmp, sizeof tmp, "%s.new-%ld", wpath, (long)getpid());
    (void)unlink(tmp); /* a leftover of a crashed attempt by a process with our pid */
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return witness_io_error(err, db_path, "cannot create a witness next to");
    /* A first record (unbound, not clean) makes the file readable from the
     * moment it has its name. */
    store_witness_rec w;
    memset(&w, 0, sizeof w);
    w.generation = 1;
    rc = witness_write_locked(fd, db_path, &w, 1, err);
    /* link() publishes the name atomically and never replaces a witness
     * another process created meanwhile (rename would). */
    if (rc == MESH_OK && link(tmp, wpath) != 0) {
        if (errno == EEXIST) {
            close(fd);
            unlink(tmp);
            return store_witness_open(db_path, fd_out, err);
        }
        rc = witness_io_error(err, db_path, "cannot create");
    }
    unlink(tmp);
    if (rc != MESH_OK) {
        close(fd);
        return rc;
    }
    store_sync_parent_dir(wpath);
    log_info("store", "created witness %s for store %s", wpath, db_path);
    *fd_out = fd;
    return MESH_OK;
}

/* ---- small helpers -------------------------------------------------------------- */

int store_witness_vouches(const store_witness_rec *w)
{
    return w->store_id[0] != '\0' && w->seq > 0;
}

void store_witness_backup_advice(const store_witness_rec *w, const char *db_path, char *out,
                                 size_t len)
{
    if (!w->backup_path[0]) {
        snprintf(out, len,
                 "no backup was recorded by 'meshctl store backup'; restore one you have "
                 "with 'meshctl --db %s store restore FILE'",
                 db_path);
        return;
    }
    char when[32];
    store_fmt_time(w->backup_at, when);
    snprintf(out, len, "restore the last backup: 'meshctl --db %s store restore %s' (change #%lld, %s)",
             db_path, w->backup_path, (long long)w->backup_seq, when);
}

int store_file_stamp_of(const char *path, store_file_stamp *out)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    out->dev = (int64_t)sb.st_dev;
    out->ino = (int64_t)sb.st_ino;
    out->size = (int64_t)sb.st_size;
    out->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    out->ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000 + sb.st_ctim.tv_nsec;
    return 0;
}

int store_file_stamp_equal(const store_file_stamp *a, const store_file_stamp *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}
