/* store/store_sqlite_integrity.c — SQLite's own checks and the change
 * counter the witness file follows.
 *
 * PRAGMA quick_check verifies page structure and rows but not that indexes
 * agree with their tables; PRAGMA integrity_check does both (an index bit
 * flip shows up only there: `cert list` finds a serial that a lookup by
 * serial, which goes through the index, misses). Both return one "ok" row
 * or one row per finding.
 *
 * The change counter is store_integrity.seq, bumped by triggers on every
 * table whose loss would matter (certificates, CAs, registrations, join
 * tokens, config, settings, audit; not proxy status, which meshd rewrites
 * all the time anyway). After each commit the connection's WAL hook raises
 * the witness's high-water mark to the committed value. */
#include "store/store_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* SQLite's default auto-checkpoint threshold: installing a WAL hook
 * replaces the built-in one, so the hook checkpoints at the same point. */
#define STORE_WAL_CHECKPOINT_FRAMES 1000

int store_sqlite_run_check(sqlite3 *db, int full, size_t max, store_problems *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(db, full ? "PRAGMA integrity_check" : "PRAGMA quick_check", -1,
                                 &s, NULL);
    if (src != SQLITE_OK) {
        sqlite3_finalize(s);
        return src;
    }
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(s, 0);
        if (!line || strcmp(line, "ok") == 0)
            continue;
        if (out->n >= max)
            continue;
        char **grown = realloc(out->lines, (out->n + 1) * sizeof *grown);
        char *copy = strdup(line);
        if (!grown || !copy) {
            free(copy);
            if (grown)
                out->lines = grown;
            src = SQLITE_NOMEM;
            break;
        }
        /* SQLite may pack several findings into one row separated by
         * newlines; keep each as one line of text. */
        for (char *p = copy; *p; p++)
            if (*p == '\n')
                *p = ' ';
        out->lines = grown;
        out->lines[out->n++] = copy;
    }
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? SQLITE_OK : src;
}

void store_problems_free(store_problems *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->lines[i]);
    free(p->lines);
    memset(p, 0, sizeof *p);
}

void store_problems_join(const store_problems *p, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < p->n && used + 1 < len; i++) {
        int n = snprintf(out + used, len - used, "%s%s", i ? "; " : "", p->lines[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int store_sqlite_read_counter(sqlite3 *db, int schema_version, int64_t *seq_out,
                              char id_out[STORE_ID_HEX_LEN + 1])
{
    *seq_out = 0;
    id_out[0] = '\0';
    if (schema_version < STORE_SCHEMA_WITH_COUNTER)
        return SQLITE_OK;
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(db, "SELECT store_id, seq FROM store_integrity WHERE id = 1", -1,
                                 &s, NULL);
    if (src == SQLITE_OK) {
        src = sqlite3_step(s);
        if (src == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(s, 0);
            if (id && strlen(id) == STORE_ID_HEX_LEN)
                memcpy(id_out, id, STORE_ID_HEX_LEN + 1);
            *seq_out = sqlite3_column_int64(s, 1);
            src = SQLITE_OK;
        } else if (src == SQLITE_DONE) {
            src = SQLITE_CORRUPT; /* the row is created with the table and never deleted */
        }
    }
    sqlite3_finalize(s);
    return src;
}

/* ---- after each commit ------------------------------------------------------------ */

typedef struct raise_arg {
    const char *store_id;
    int64_t seq;
    int64_t now_held;   /* out: the witness's mark after the update */
    int foreign;        /* out: the witness belongs to another store */
} raise_arg;

static int raise_mark(store_witness_rec *w, void *arg)
{
    raise_arg *a = arg;
    if (strcmp(w->store_id, a->store_id) != 0) {
        a->foreign = 1;
        return 0;
    }
    if (w->seq >= a->seq) {
        a->now_held = w->seq;
        return 0;
    }
    w->seq = a->seq;
    a->now_held = a->seq;
    return 1;
}

static const char SQL_READ_SEQ[] = "SELECT seq FROM store_integrity WHERE id = 1";

/* Runs after the commit is durable and its write lock released, so the
 * counter read here (ours, or a later commit of another connection, which
 * is just as durable) never runs ahead of the file. */
static void store_note_commit(mesh_store *st)
{
    if (st->witness_fd < 0 || !st->store_id[0])
        return;
    sqlite3_stmt *s;
    if (store_sqlite_stmt(st, SQL_READ_SEQ, &s, NULL) != MESH_OK)
        return;
    int64_t seq = -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        seq = sqlite3_column_int64(s, 0);
    store_sqlite_stmt_release(s);
    if (seq <= st->witnessed_seq)
        return; /* nothing that matters changed (proxy status, ...) */
    raise_arg a = {.store_id = st->store_id, .seq = seq};
    mesh_err err = {0};
    if (store_witness_update(st->witness_fd, st->path, raise_mark, &a, 0, &err) != MESH_OK) {
        /* The store is fine; only the witness lags, which can hide a later
         * loss but never fake one. Say so once per handle. */
        if (!st->witness_warned)
            log_warn("store", "could not raise the high-water mark of %s: %s", st->path,
                     err.msg);
        st->witness_warned = 1;
        return;
    }
    if (a.foreign) {
        if (!st->witness_warned)
            log_warn("store", "the witness of %s now belongs to another store; its high-water "
                              "mark is no longer raised by this process",
                     st->path);
        st->witness_warned = 1;
        return;
    }
    st->witnessed_seq = a.now_held;
}

static int mark_in_use(store_witness_rec *w, void *arg)
{
    (void)arg;
    if (!w->clean)
        return 0;
    w->clean = 0;
    return 1;
}

/* Runs inside COMMIT before SQLite writes the WAL, once per handle.
 *
 * Not fsynced, and it need not be: after an OS crash the mark may be lost,
 * but the session's writes leave durable evidence that also leads to the
 * full check. The commit fsyncs the WAL, whose name SQLite syncs into the
 * directory when it creates it, and the WAL is only removed by a clean
 * last close, so a crash leaves a non-empty WAL behind; a checkpoint fsyncs
 * the database file, so its new size/mtime no longer match the stamp of
 * the last clean close. That saves one fdatasync per meshctl command. */
static int store_commit_hook(void *arg)
{
    mesh_store *st = arg;
    if (st->marked_in_use || st->witness_fd < 0)
        return 0;
    st->marked_in_use = 1;
    mesh_err err = {0};
    if (store_witness_update(st->witness_fd, st->path, mark_in_use, NULL, 0, &err) != MESH_OK)
        /* Failing the commit for it would turn a missed check into an
         * outage; an OS crash now costs the full check at the next open. */
        log_warn("store", "could not mark store %s in use: %s", st->path, err.msg);
    return 0;
}

void store_sqlite_hook_first_write(mesh_store *st)
{
    sqlite3_commit_hook(st->db, store_commit_hook, st);
}

static int store_wal_hook(void *arg, sqlite3 *db, const char *name, int n_frames)
{
    store_note_commit(arg);
    if (n_frames >= STORE_WAL_CHECKPOINT_FRAMES)
        (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

int store_sqlite_install_commit_hook(mesh_store *st, mesh_err *err)
{
    /* Prepared now so the hook never grows the statement cache from inside
     * a commit. */
    sqlite3_stmt *s;
    int rc = store_sqlite_stmt(st, SQL_READ_SEQ, &s, err);
    if (rc != MESH_OK)
        return rc;
    store_sqlite_stmt_release(s);
    sqlite3_wal_hook(st->db, store_wal_hook, st);
    return MESH_OK;
}
