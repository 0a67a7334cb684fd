/* tests/unit/test_store_integrity.c — the breaks of issue 12 on real files:
 * an index bit flip that only integrity_check sees, a zero-length or missing
 * store, a flipped byte in the -wal that silently drops committed
 * certificates, an old copy put back; and what the store does about each
 * (refuse at open, say what to restore, repair indexes, accept a loss). */
#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/unit/test_store_util.h"

static tstore_env env;
static const store_open_opts create = {.create = 1};

static void setup_empty(void) { tstore_setup(&env, 0); }
static void teardown(void) { tstore_teardown(&env); }

static char *sibling(const char *suffix)
{
    static char buf[4][200];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 200, "%s%s", env.path, suffix);
    return p;
}

/* n certificates, each in its own transaction (as meshd issues them). */
static void add_certs(mesh_store *st, int64_t ca, unsigned first, int n)
{
    mesh_err err = {0};
    for (int i = 0; i < n; i++) {
        store_cert c;
        char serial[41];
        tstore_cert_init(&c, serial, first + (unsigned)i, TSTORE_ID_WEB, ca, 1000 + i,
                         5000000000);
        cr_assert_eq(store_cert_insert(st, &c, &err), MESH_OK, "%s", err.msg);
    }
}

/* A store with a CA and n certs, closed cleanly. */
static int64_t make_store(int n)
{
    mesh_store *st = NULL;
    mesh_err err = {0};
    cr_assert_eq(store_open_with(&st, env.path, &create, &err), MESH_OK, "%s", err.msg);
    int64_t ca = tstore_add_ca(st, "active", "01");
    add_certs(st, ca, 1, n);
    store_close(st);
    return ca;
}

static int64_t raw_count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void flip_byte(const char *path, long offset)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fseek(f, offset, SEEK_SET), 0);
    int c = fgetc(f);
    cr_assert_neq(c, EOF);
    cr_assert_eq(fseek(f, offset, SEEK_SET), 0);
    fputc(c ^ 0x01, f);
    cr_assert_eq(fclose(f), 0);
}

/* One bit of a key in the page of the index that looks certificates up by
 * serial: the row is still there, the lookup misses it. */
static void flip_serial_index(void)
{
    int64_t page = raw_count(env.path, "SELECT pageno FROM dbstat WHERE name = "
                                       "'sqlite_autoindex_certs_1' AND pagetype = 'leaf' LIMIT 1");
    cr_assert_gt(page, 1);
    flip_byte(env.path, (long)((page - 1) * 4096 + 4000));
}

static int open_rc(mesh_err *err)
{
    mesh_store *st = NULL;
    int rc = store_open(&st, env.path, err);
    store_close(st);
    return rc;
}

static void assert_msg(const mesh_err *err, const char *needle)
{
    cr_assert_not_null(strstr(err->msg, needle), "message lacks '%s': %s", needle, err->msg);
}

/* ---- index damage --------------------------------------------------------------- */

Test(store_integrity, index_bit_flip_is_refused_at_open, .init = setup_empty, .fini = teardown)
{
    make_store(40);
    flip_serial_index();
    /* What quick_check alone (the old start-up check) would say. */
    cr_assert_eq(raw_count(env.path, "SELECT count(*) FROM pragma_quick_check WHERE "
                                     "quick_check = 'ok'"),
                 1, "the flip should pass quick_check");
    mesh_err err = {0};
    cr_assert_eq(open_rc(&err), MESH_ECORRUPT, "a damaged index was served: %s", err.msg);
    assert_msg(&err, "integrity_check");
    assert_msg(&err, "sqlite_autoindex_certs_1");
    assert_msg(&err, env.path);
}

Test(store_integrity, check_reports_index_damage_and_repairs_it, .init = setup_empty,
     .fini = teardown)
{
    make_store(40);
    flip_serial_index();
    store_check_report r;
    mesh_err err = {0};
    cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(r.health, STORE_DAMAGED);
    cr_assert_gt(r.n_problems, 0);
    cr_assert(r.index_only, "index-only damage not recognised: %s", r.problems[0]);
    cr_assert_not_null(strstr(r.damaged_indexes, "sqlite_autoindex_certs_1 (certs)"), "%s",
                       r.damaged_indexes);
    store_check_report_free(&r);

    store_check_opts fix = {.repair = 1};
    cr_assert_eq(store_check(env.path, &fix, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert(r.repaired);
    cr_assert_eq(r.health, STORE_HEALTHY);
    cr_assert_eq(r.n_problems, 0);
    store_check_report_free(&r);

    /* Every serial is found again, through the index. */
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_open_check(env.st), "integrity_check");
    for (unsigned i = 1; i <= 40; i++) {
        char serial[41];
        snprintf(serial, sizeof serial, "%032x", i);
        store_cert c;
        cr_assert_eq(store_cert_get(env.st, serial, &c, &err), MESH_OK, "%s: %s", serial,
                     err.msg);
        store_cert_free(&c);
    }
}

Test(store_integrity, table_damage_is_not_index_only, .init = setup_empty, .fini = teardown)
{
    make_store(40);
    int64_t page = raw_count(env.path, "SELECT pageno FROM dbstat WHERE name = 'certs' AND "
                                       "pagetype = 'leaf' LIMIT 1");
    /* The cell pointer array of a table leaf: its cells stop making sense. */
    flip_byte(env.path, (long)((page - 1) * 4096 + 9));
    store_check_report r;
    mesh_err err = {0};
    cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(r.health, STORE_DAMAGED);
    cr_assert_not(r.index_only, "table damage called index-only");
    store_check_report_free(&r);
    store_check_opts fix = {.repair = 1};
    cr_assert_eq(store_check(env.path, &fix, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_not(r.repaired, "REINDEX cannot repair table damage");
    cr_assert_eq(r.health, STORE_DAMAGED);
    store_check_report_free(&r);
}

/* ---- when the full check runs ------------------------------------------------------ */

Test(store_integrity, full_check_only_after_unclean_end_or_change, .init = setup_empty,
     .fini = teardown)
{
    make_store(5);
    mesh_err err = {0};
    /* Clean close, untouched file: quick_check. */
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_open_check(env.st), "quick_check");
    /* A second handle joins the session: quick_check. */
    mesh_store *other = NULL;
    cr_assert_eq(store_open(&other, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_open_check(other), "quick_check");
    store_close(other);
    store_close(env.st);
    env.st = NULL;

    /* A writer killed before it could close: integrity_check. */
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        mesh_store *st = NULL;
        if (store_open(&st, env.path, NULL) != MESH_OK ||
            store_audit(st, "meshd", "test.crash", "", "", 1, NULL) != MESH_OK)
            _exit(1);
        kill(getpid(), SIGKILL);
        _exit(2);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "child failed before the kill (status %d)", status);
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_open_check(env.st), "integrity_check");
    store_close(env.st);
    env.st = NULL;

    /* Closed cleanly again, then the file is touched while closed. */
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_open_check(env.st), "quick_check");
    store_close(env.st);
    env.st = NULL;
    cr_assert_eq(chmod(env.path, 0600), 0); /* changes ctime */
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_open_check(env.st), "integrity_check");
}

Test(store_integrity, reader_session_writes_nothing, .init = setup_empty, .fini = teardown)
{
    make_store(3);
    size_t before_len, after_len;
    unsigned char *before = tstore_read_file(sibling("-witness"), &before_len);
    mesh_err err = {0};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
        store_cert *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_cert_list(env.st, NULL, 1, 0, &list, &n, &err), MESH_OK);
        store_cert_free_list(list, n);
        store_close(env.st);
        env.st = NULL;
    }
    unsigned char *after = tstore_read_file(sibling("-witness"), &after_len);
    cr_assert_eq(before_len, after_len);
    cr_assert_eq(memcmp(before, after, before_len), 0, "a read-only session rewrote the witness");
    free(before);
    free(after);
}

/* ---- missing and empty stores ------------------------------------------------------- */

Test(store_integrity, missing_store_is_not_created, .init = setup_empty, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(open_rc(&err), MESH_ENOTFOUND, "%s", err.msg);
    assert_msg(&err, "does not exist");
    assert_msg(&err, "meshctl ca init");
    cr_assert_not(tstore_file_exists(env.path), "a store was created by a plain open");
    cr_assert_not(tstore_file_exists(sibling("-witness")), "a witness was left behind");
}

Test(store_integrity, zero_length_store_is_refused, .init = setup_empty, .fini = teardown)
{
    make_store(10);
    tstore_write_file(env.path, "", 0);
    unlink(sibling("-wal"));
    mesh_err err = {0};
    cr_assert_eq(open_rc(&err), MESH_ECORRUPT, "an emptied store was taken as new: %s",
                 err.msg);
    assert_msg(&err, "empty file");
    assert_msg(&err, "witness");
    /* Not even `ca init` (create) writes a new store over it. */
    mesh_store *st = NULL;
    cr_assert_eq(store_open_with(&st, env.path, &create, &err), MESH_ECORRUPT, "%s", err.msg);
    assert_msg(&err, "not re-created");
    struct stat sb;
    cr_assert_eq(stat(env.path, &sb), 0);
    cr_assert_eq(sb.st_size, 0, "the empty file was rewritten");
    /* Deleted instead of emptied: the same. */
    unlink(env.path);
    cr_assert_eq(open_rc(&err), MESH_ECORRUPT, "%s", err.msg);
    assert_msg(&err, "missing");
}

Test(store_integrity, empty_file_without_witness, .init = setup_empty, .fini = teardown)
{
    tstore_write_file(env.path, "", 0);
    mesh_err err = {0};
    cr_assert_eq(open_rc(&err), MESH_ENOTFOUND, "%s", err.msg);
    assert_msg(&err, "empty file");
    /* An explicit create may use a pre-made empty file. */
    cr_assert_eq(store_open_with(&env.st, env.path, &create, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_schema_version(env.st), store_latest_schema_version());
}

Test(store_integrity, lost_store_accepted_allows_a_new_one, .init = setup_empty,
     .fini = teardown)
{
    make_store(10);
    unlink(env.path);
    store_check_report r;
    mesh_err err = {0};
    cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(r.health, STORE_LOST);
    cr_assert_gt(r.witness_seq, 0);
    store_check_report_free(&r);
    store_check_opts accept = {.accept_loss = 1};
    cr_assert_eq(store_check(env.path, &accept, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert(r.loss_accepted);
    store_check_report_free(&r);
    cr_assert_eq(open_rc(&err), MESH_ENOTFOUND, "%s", err.msg);
    cr_assert_eq(store_open_with(&env.st, env.path, &create, &err), MESH_OK, "%s", err.msg);
}

/* ---- moved backwards ------------------------------------------------------------------ */

static unsigned be32(const unsigned char *p)
{
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

/* Flips a byte in the page of the middle frame of the WAL's current
 * generation (frames whose salts match the header). Returns that count. */
static int flip_middle_wal_frame(const char *wal)
{
    size_t len;
    unsigned char *w = tstore_read_file(wal, &len);
    cr_assert_gt(len, 32);
    unsigned page = be32(w + 8);
    size_t frame = 24 + page;
    int valid = 0;
    for (size_t off = 32; off + frame <= len; off += frame, valid++)
        if (memcmp(w + off + 8, w + 16, 8) != 0)
            break;
    free(w);
    cr_assert_gt(valid, 4, "too few WAL frames (%d)", valid);
    flip_byte(wal, (long)(32 + (size_t)(valid / 2) * frame + 24 + page / 2));
    return valid;
}

Test(store_integrity, flipped_wal_byte_is_detected_as_moved_backwards, .init = setup_empty,
     .fini = teardown)
{
    int64_t ca = make_store(0);
    char backup[200];
    snprintf(backup, sizeof backup, "%s/backup.db", env.dir);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* meshd issuing 420 certs, with a backup after the first 100,
         * then killed: the last commits live only in the WAL. */
        mesh_store *st = NULL;
        store_backup_info info;
        if (store_open(&st, env.path, NULL) != MESH_OK)
            _exit(1);
        add_certs(st, ca, 1, 100);
        if (store_backup(st, backup, 0, &info, NULL) != MESH_OK)
            _exit(2);
        add_certs(st, ca, 101, 320);
        kill(getpid(), SIGKILL);
        _exit(3);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "child failed (status %d)", status);
    flip_middle_wal_frame(sibling("-wal"));

    mesh_err err = {0};
    cr_assert_eq(open_rc(&err), MESH_ECORRUPT, "lost commits went unnoticed: %s", err.msg);
    assert_msg(&err, "moved backwards");
    assert_msg(&err, "backup.db");
    assert_msg(&err, "--accept-loss");
    /* SQLite itself sees a consistent store with fewer certificates. */
    int64_t have = raw_count(env.path, "SELECT count(*) FROM certs");
    cr_assert_lt(have, 420);
    cr_assert_geq(have, 100);

    store_check_report r;
    cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(r.health, STORE_ROLLED_BACK);
    cr_assert_eq(r.n_problems, 0, "the rolled-back store is consistent");
    cr_assert_lt(r.seq, r.witness_seq);
    cr_assert_str_eq(r.store_id, r.witness_store_id);
    cr_assert_not_null(strstr(r.backup_path, "backup.db"));
    store_check_report_free(&r);

    /* Restoring the backup resets the mark to it, deliberately. */
    store_restore_info ri;
    cr_assert_eq(store_restore(env.path, backup, 0, &ri, &err), MESH_OK, "%s", err.msg);
    cr_assert_lt(ri.seq, ri.witness_seq);
    cr_assert(tstore_file_exists(ri.kept_path), "replaced store not kept: %s", ri.kept_path);
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    store_cert *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_cert_list(env.st, NULL, 1, 0, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 100);
    store_cert_free_list(list, n);
}

Test(store_integrity, accept_loss_keeps_the_store_as_it_is, .init = setup_empty,
     .fini = teardown)
{
    int64_t ca = make_store(20);
    char old_copy[200];
    snprintf(old_copy, sizeof old_copy, "%s/old.db", env.dir);
    size_t len;
    unsigned char *bytes = tstore_read_file(env.path, &len);
    tstore_write_file(old_copy, bytes, len);
    free(bytes);
    mesh_err err = {0};
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    add_certs(env.st, ca, 100, 5);
    store_close(env.st);
    env.st = NULL;
    /* An old copy of the file put back by hand. */
    bytes = tstore_read_file(old_copy, &len);
    tstore_write_file(env.path, bytes, len);
    free(bytes);
    cr_assert_eq(open_rc(&err), MESH_ECORRUPT, "an old copy was served: %s", err.msg);
    assert_msg(&err, "moved backwards");
    assert_msg(&err, "no backup was recorded");

    store_check_opts accept = {.accept_loss = 1};
    store_check_report r;
    cr_assert_eq(store_check(env.path, &accept, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert(r.loss_accepted);
    cr_assert_eq(r.witness_seq, r.seq);
    store_check_report_free(&r);
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_open_check(env.st), "integrity_check");
}

Test(store_integrity, another_store_in_place_is_refused, .init = setup_empty, .fini = teardown)
{
    make_store(3);
    tstore_env other;
    tstore_setup(&other, 1);
    tstore_add_ca(other.st, "active", "02");
    store_close(other.st);
    other.st = NULL;
    size_t len;
    unsigned char *bytes = tstore_read_file(other.path, &len);
    tstore_write_file(env.path, bytes, len);
    free(bytes);
    tstore_teardown(&other);
    mesh_err err = {0};
    cr_assert_eq(open_rc(&err), MESH_ECORRUPT, "%s", err.msg);
    assert_msg(&err, "not the store its witness describes");
    store_check_report r;
    cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(r.health, STORE_REPLACED);
    store_check_report_free(&r);
}

/* ---- the witness file itself ---------------------------------------------------------- */

Test(store_integrity, torn_witness_slot_falls_back, .init = setup_empty, .fini = teardown)
{
    make_store(3);
    size_t len;
    unsigned char *w = tstore_read_file(sibling("-witness"), &len);
    cr_assert_eq(len, 8192);
    /* Damage the newest record: the older one still vouches (lower mark). */
    store_check_report r;
    mesh_err err = {0};
    cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_OK, "%s", err.msg);
    int64_t seq = r.witness_seq;
    store_check_report_free(&r);
    unsigned char *slot0 = w, *slot1 = w + 4096;
    const char *gen0 = strstr((char *)slot0, "generation "), *gen1 = strstr((char *)slot1, "generation ");
    cr_assert(gen0 && gen1);
    unsigned char *newest = atol(gen0 + 11) > atol(gen1 + 11) ? slot0 : slot1;
    newest[100] ^= 0x20;
    tstore_write_file(sibling("-witness"), w, len);
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    store_close(env.st);
    env.st = NULL;
    cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_leq(r.witness_seq, seq);
    store_check_report_free(&r);

    /* Both records damaged: nothing vouches for the store. */
    memset(w, 'x', len);
    tstore_write_file(sibling("-witness"), w, len);
    free(w);
    cr_assert_eq(open_rc(&err), MESH_ECORRUPT, "%s", err.msg);
    assert_msg(&err, "no intact record");
    cr_assert_eq(store_check(env.path, NULL, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(r.health, STORE_WITNESS_UNREADABLE);
    store_check_report_free(&r);
    store_check_opts accept = {.accept_loss = 1};
    cr_assert_eq(store_check(env.path, &accept, &r, &err), MESH_OK, "%s", err.msg);
    store_check_report_free(&r);
    cr_assert_eq(open_rc(&err), MESH_OK, "%s", err.msg);
}

Test(store_integrity, witness_of_older_store_is_created, .init = setup_empty, .fini = teardown)
{
    /* A store from before witnesses: opened and given one. */
    make_store(3);
    unlink(sibling("-witness"));
    mesh_err err = {0};
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_open_check(env.st), "integrity_check");
    cr_assert(tstore_file_exists(sibling("-witness")));
    struct stat sb;
    cr_assert_eq(stat(sibling("-witness"), &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
}

Test(store_integrity, refusing_garbage_creates_no_witness, .init = setup_empty,
     .fini = teardown)
{
    tstore_write_file(env.path, "not a database, just text\n", 26);
    mesh_err err = {0};
    cr_assert_eq(open_rc(&err), MESH_ECORRUPT, "%s", err.msg);
    cr_assert_not(tstore_file_exists(sibling("-witness")));
}

/* ---- disk full ------------------------------------------------------------------------ */

Test(store_integrity, full_disk_is_enospc, .init = setup_empty, .fini = teardown)
{
    int64_t ca = make_store(1);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* A file size limit stands in for a full file system: the WAL
         * cannot grow past it. */
        signal(SIGXFSZ, SIG_IGN);
        mesh_store *st = NULL;
        mesh_err err = {0};
        if (store_open(&st, env.path, &err) != MESH_OK)
            _exit(10);
        struct stat sb;
        stat(env.path, &sb);
        struct rlimit lim = {.rlim_cur = (rlim_t)sb.st_size + 64 * 1024,
                             .rlim_max = RLIM_INFINITY};
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
            _exit(11);
        char pem[8192];
        memset(pem, 'A', sizeof pem - 1);
        pem[sizeof pem - 1] = '\0';
        for (unsigned i = 0; i < 200; i++) {
            store_cert c;
            char serial[41];
            tstore_cert_init(&c, serial, 5000 + i, TSTORE_ID_WEB, ca, 1000, 5000000000);
            c.cert_pem = pem;
            int rc = store_cert_insert(st, &c, &err);
            if (rc == MESH_ENOSPC)
                _exit(strstr(err.msg, "full") ? 0 : 12);
            if (rc != MESH_OK) {
                fprintf(stderr, "%s: %s\n", mesh_status_name(rc), err.msg);
                _exit(13);
            }
        }
        _exit(14);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "child died (status %d)", status);
    cr_assert_eq(WEXITSTATUS(status), 0, "a full disk was not MESH_ENOSPC (exit %d)",
                 WEXITSTATUS(status));
}
