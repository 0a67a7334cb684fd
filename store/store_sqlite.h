/* store/store_sqlite.h — the SQLite backend's integrity machinery, shared by
 * store_sqlite_open.c, store_sqlite_check.c and store_sqlite_backup.c and
 * invisible outside store/: the witness file beside the database
 * (store_sqlite_witness.c), integrity checks and the change counter
 * (store_sqlite_integrity.c).
 *
 * Everything here is specific to the single-file SQLite backend; a
 * PostgreSQL backend keeps store.h's API and needs none of it. */
#ifndef MESH_STORE_STORE_SQLITE_H
#define MESH_STORE_STORE_SQLITE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "store/store_internal.h"

/* Identity of the database file as a clean close left it: if any of this
 * differs at the next open, something wrote the file while no store user
 * had it open (a copy put back, dd, an editor), so a full check runs. */
typedef struct store_file_stamp {
    int64_t dev, ino, size, mtime_ns, ctime_ns;
} store_file_stamp;

#define STORE_ID_HEX_LEN 32
#define STORE_WITNESS_PATH_MAX 1024

/* One record of the witness file. */
typedef struct store_witness_rec {
    uint64_t generation;          /* 0 = the file holds no record yet */
    char store_id[STORE_ID_HEX_LEN + 1]; /* "" = not yet bound to a store */
    int64_t seq;                  /* high-water mark of store_integrity.seq */
    int clean;                    /* the last user closed the store cleanly */
    store_file_stamp clean_stamp; /* the database file as that close left it */
    char backup_path[STORE_WITNESS_PATH_MAX]; /* last `meshctl store backup`, "" = none */
    int64_t backup_at, backup_seq;
} store_witness_rec;

/* ---- the witness file (store_sqlite_witness.c) ------------------------------ */
/* "<db_path>-witness"; MESH_EINVAL if it does not fit. */
int store_witness_path(const char *db_path, char *out, size_t len, mesh_err *err);
/* Opens an existing witness read-write; MESH_ENOTFOUND if there is none. */
int store_witness_open(const char *db_path, int *fd_out, mesh_err *err);
/* Creates an empty (unbound) witness atomically, never replacing one: if
 * another process created it first, that one is opened. */
int store_witness_create(const char *db_path, int *fd_out, mesh_err *err);
/* The newest intact record (generation 0 if the file is still empty);
 * MESH_ECORRUPT if the file holds data but no intact record. */
int store_witness_read(int fd, const char *db_path, store_witness_rec *out, mesh_err *err);
/* Read-modify-write under the update lock. edit gets the newest record and
 * returns non-zero to have its changes written as the next generation
 * (fdatasync'd when durable). */
typedef int (*store_witness_edit_fn)(store_witness_rec *rec, void *arg);
int store_witness_update(int fd, const char *db_path, store_witness_edit_fn edit, void *arg,
                         int durable, mesh_err *err);
/* store_witness_update (durable) for an operator's decision (accepting a
 * loss, a restore): a witness without an intact record is started anew. */
int store_witness_update_or_reset(int fd, const char *db_path, store_witness_edit_fn edit,
                                  void *arg, mesh_err *err);
/* Does the record vouch for a store, i.e. did that store ever hold a change? */
int store_witness_vouches(const store_witness_rec *w);
/* "; restore the last backup: 'meshctl --db DB store restore B' (change #N,
 * TIME)" or a sentence saying none was recorded; for refusal messages. */
void store_witness_backup_advice(const store_witness_rec *w, const char *db_path, char *out,
                                 size_t len);

/* The session lock (see store_sqlite_witness.c). begin takes it shared, or
 * exclusive when nobody else has the store open (*alone_out = 1: the caller
 * checks the store, then calls downgrade). try_last upgrades to exclusive
 * if this is the last handle open and returns 1; end releases it. */
int store_session_begin(int fd, const char *db_path, int *alone_out, mesh_err *err);
void store_session_downgrade(int fd);
int store_session_try_last(int fd);
void store_session_end(int fd);

/* 0 on success, -1 (errno set) if path cannot be stat'ed. */
int store_file_stamp_of(const char *path, store_file_stamp *out);
int store_file_stamp_equal(const store_file_stamp *a, const store_file_stamp *b);

/* fsyncs the directory holding path, so a created or renamed name is durable. */
void store_sync_parent_dir(const char *path);

/* ---- checks and the change counter (store_sqlite_integrity.c) --------------- */
/* Findings of PRAGMA integrity_check / quick_check: at most max lines kept. */
typedef struct store_problems {
    char **lines;
    size_t n;
} store_problems;

/* Runs the check on db; returns the SQLite result code (SQLITE_OK when the
 * check ran, whatever it found). Each finding is one line in out. */
int store_sqlite_run_check(sqlite3 *db, int full, size_t max, store_problems *out);
void store_problems_free(store_problems *p);
/* "first finding; second finding; ..." in at most len bytes. */
void store_problems_join(const store_problems *p, char *out, size_t len);

/* store_integrity's row: the random store id and the change counter that a
 * trigger on every table that matters bumps. A store from before the
 * counter existed (schema < 3) gives seq 0 and id "". SQLite result code. */
int store_sqlite_read_counter(sqlite3 *db, int schema_version, int64_t *seq_out,
                              char id_out[STORE_ID_HEX_LEN + 1]);
/* The schema version from which store_integrity exists. */
#define STORE_SCHEMA_WITH_COUNTER 3

/* Before the first commit on st's connection: durably record the store as
 * in use in the witness (so that a crash leads to a full check). */
void store_sqlite_hook_first_write(mesh_store *st);
/* After every commit on st's connection: raise the witness's high-water
 * mark to the committed counter, and checkpoint the WAL as SQLite's own
 * auto-checkpoint would (the hook replaces it). */
int store_sqlite_install_commit_hook(mesh_store *st, mesh_err *err);

#endif
