/* store/store_sqlite_check.c — `meshctl store check`: examine an SQLite store
 * on demand, whatever state it is in, and (when the operator asks) repair
 * damaged indexes or accept a loss.
 *
 * The store is opened with a bare SQLite connection, not through
 * store_open, so a store that store_open refuses can still be examined, and
 * it is read-only (PRAGMA query_only) unless a repair was asked for. Nothing
 * is checkpointed on close. While nothing is being changed it takes no lock
 * beyond SQLite's read snapshot, so it can run next to meshd.
 *
 * Index-only damage is told apart because it is the one kind an operator
 * can fix without losing anything: integrity_check names the index ("row 3
 * missing from index ...", "wrong # of entries in index ...") or the b-tree
 * by its root page, which sqlite_schema maps to an index or a table. */
#include "store/store_sqlite.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHECK_MAX_PROBLEMS 100

const char *store_health_name(store_health h)
{
    switch (h) {
    case STORE_HEALTHY: return "healthy";
    case STORE_DAMAGED: return "damaged";
    case STORE_ROLLED_BACK: return "rolled-back";
    case STORE_REPLACED: return "replaced";
    case STORE_LOST: return "lost";
    case STORE_WITNESS_UNREADABLE: return "witness-unreadable";
    }
    return "unknown";
}

void store_check_report_free(store_check_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_problems; i++)
        free(r->problems[i]);
    free(r->problems);
    free(r->damaged_indexes);
    memset(r, 0, sizeof *r);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t query_i64(sqlite3 *db, const char *sql, int *src_out)
{
    sqlite3_stmt *s = NULL;
    int64_t v = 0;
    int src = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (src == SQLITE_OK) {
        src = sqlite3_step(s);
        if (src == SQLITE_ROW) {
            v = sqlite3_column_int64(s, 0);
            src = SQLITE_OK;
        }
    }
    sqlite3_finalize(s);
    if (src_out)
        *src_out = src;
    return v;
}

static int add_problem(store_check_report *r, const char *line)
{
    if (r->n_problems >= CHECK_MAX_PROBLEMS)
        return MESH_OK;
    char **grown = realloc(r->problems, (r->n_problems + 1) * sizeof *grown);
    if (!grown)
        return MESH_ENOMEM;
    r->problems = grown;
    if (!(r->problems[r->n_problems] = strdup(line)))
        return MESH_ENOMEM;
    r->n_problems++;
    return MESH_OK;
}

/* The index a finding is about, or NULL (table or page structure). */
static const char *finding_index(const char *line, char *name, size_t len)
{
    static const char *const prefixes[] = {" missing from index ", "wrong # of entries in index ",
                                           "non-unique entry in index "};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        const char *p = strstr(line, prefixes[i]);
        if (p) {
            snprintf(name, len, "%s", p + strlen(prefixes[i]));
            name[strcspn(name, " ")] = '\0';
            return name;
        }
    }
    return NULL;
}

/* The sqlite_schema row of the b-tree rooted at page root. */
static int root_is_index(sqlite3 *db, long root, char *name, size_t len)
{
    sqlite3_stmt *s = NULL;
    int is_index = 0;
    if (sqlite3_prepare_v2(db, "SELECT type, name FROM sqlite_schema WHERE rootpage = ?1", -1, &s,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, root);
        if (sqlite3_step(s) == SQLITE_ROW) {
            const char *type = (const char *)sqlite3_column_text(s, 0);
            const char *n = (const char *)sqlite3_column_text(s, 1);
            if (type && n && strcmp(type, "index") == 0) {
                snprintf(name, len, "%s", n);
                is_index = 1;
            }
        }
    }
    sqlite3_finalize(s);
    return is_index;
}

static const char *index_table(sqlite3 *db, const char *index, char *out, size_t len)
{
    sqlite3_stmt *s = NULL;
    snprintf(out, len, "?");
    if (sqlite3_prepare_v2(db, "SELECT tbl_name FROM sqlite_schema WHERE type = 'index' AND "
                               "name = ?1",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, index, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
            snprintf(out, len, "%s", (const char *)sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return out;
}

/* Sets r->index_only and r->damaged_indexes from r->problems. */
static int classify(sqlite3 *db, store_check_report *r)
{
    char list[1024] = "";
    size_t used = 0;
    int index_only = r->n_problems > 0;
    for (size_t i = 0; i < r->n_problems; i++) {
        char name[256];
        const char *idx = finding_index(r->problems[i], name, sizeof name);
        /* "Tree 5 page 7 cell 2: ..." (SQLite 3.38+): 5 is the b-tree's root. */
        long root = 0;
        if (!idx && sscanf(r->problems[i], "Tree %ld page", &root) == 1 &&
            root_is_index(db, root, name, sizeof name))
            idx = name;
        if (!idx) {
            index_only = 0;
            continue;
        }
        /* Each damaged index once. */
        char needle[300];
        snprintf(needle, sizeof needle, "%s (", idx);
        if (strstr(list, needle))
            continue;
        char table[256];
        int n = snprintf(list + used, sizeof list - used, "%s%s (%s)", used ? ", " : "", idx,
                         index_table(db, idx, table, sizeof table));
        if (n > 0 && (size_t)n < sizeof list - used)
            used += (size_t)n;
    }
    r->index_only = index_only;
    r->damaged_indexes = strdup(index_only ? list : "");
    return r->damaged_indexes ? MESH_OK : MESH_ENOMEM;
}

/* integrity_check into r->problems; a store too damaged to run it gets the
 * reason as its one finding. */
static int run_full_check(sqlite3 *db, store_check_report *r)
{
    store_problems found;
    int src = store_sqlite_run_check(db, 1, CHECK_MAX_PROBLEMS, &found);
    int rc = MESH_OK;
    for (size_t i = 0; i < found.n && rc == MESH_OK; i++)
        rc = add_problem(r, found.lines[i]);
    store_problems_free(&found);
    if (rc == MESH_OK && src != SQLITE_OK) {
        char why[300];
        snprintf(why, sizeof why, "the check could not finish: %s", sqlite3_errmsg(db));
        rc = add_problem(r, why);
    }
    return rc;
}

/* The store against its witness, for a store without damage. */
static store_health compare(const store_check_report *r, const store_witness_rec *w)
{
    if (!store_witness_vouches(w))
        return STORE_HEALTHY;
    if (r->store_id[0] && strcmp(r->store_id, w->store_id) != 0)
        return STORE_REPLACED;
    if (!r->store_id[0] || r->seq < w->seq)
        return STORE_ROLLED_BACK;
    return STORE_HEALTHY;
}

/* ---- the operator's decisions ----------------------------------------------------- */

typedef struct accept_arg {
    const char *store_id;   /* "" forgets the store (a lost one) */
    int64_t seq;
} accept_arg;

static int accept_edit(store_witness_rec *w, void *arg)
{
    accept_arg *a = arg;
    snprintf(w->store_id, sizeof w->store_id, "%s", a->store_id);
    w->seq = a->seq;
    w->clean = 0; /* the next first opener runs the full check */
    return 1;
}

static int repair_indexes(sqlite3 *db, store_check_report *r, mesh_err *err)
{
    char *msg = NULL;
    int src = sqlite3_exec(db, "PRAGMA query_only = 0; REINDEX;", NULL, NULL, &msg);
    if (src != SQLITE_OK) {
        int rc = mesh_err_set(err, MESH_ECORRUPT,
                              "rebuilding the indexes failed (%s): the damage goes beyond what "
                              "REINDEX can fix; restore a backup",
                              msg ? msg : sqlite3_errstr(src));
        sqlite3_free(msg);
        return rc;
    }
    for (size_t i = 0; i < r->n_problems; i++)
        free(r->problems[i]);
    free(r->problems);
    r->problems = NULL;
    r->n_problems = 0;
    free(r->damaged_indexes);
    r->damaged_indexes = NULL;
    int rc = run_full_check(db, r);
    if (rc == MESH_OK)
        rc = classify(db, r);
    if (rc != MESH_OK)
        return mesh_err_set(err, rc, "out of memory re-checking the store");
    r->repaired = r->n_problems == 0;
    return MESH_OK;
}

/* ---- the check ---------------------------------------------------------------------- */

static void fill_witness(store_check_report *r, const store_witness_rec *w)
{
    r->witness_seq = w->seq;
    snprintf(r->witness_store_id, sizeof r->witness_store_id, "%s", w->store_id);
    r->witness_clean = w->clean;
    snprintf(r->backup_path, sizeof r->backup_path, "%s", w->backup_path);
    r->backup_at = w->backup_at;
    r->backup_seq = w->backup_seq;
}

/* Examines the database file with its own connection. */
static int examine(const char *path, const store_check_opts *o, const store_witness_rec *w,
                   int witness_ok, store_check_report *r, mesh_err *err)
{
    sqlite3 *db = NULL;
    int src = sqlite3_open_v2(path, &db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                              NULL);
    if (src != SQLITE_OK) {
        int rc = mesh_err_set(err, store_map_sqlite_rc(src), "cannot open store %s: %s", path,
                              db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
        sqlite3_close_v2(db);
        return rc;
    }
    /* Whatever we find, closing must not checkpoint a WAL into the file. */
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
    (void)sqlite3_exec(db, "PRAGMA query_only = 1", NULL, NULL, NULL);

    int rc = MESH_OK;
    int64_t start = now_ms();
    int64_t app_id = query_i64(db, "PRAGMA application_id", &src);
    if (src == SQLITE_OK)
        r->schema_version = (int)query_i64(db, "PRAGMA user_version", &src);
    if (src != SQLITE_OK) {
        char why[300];
        snprintf(why, sizeof why, "not a readable SQLite database: %s", sqlite3_errmsg(db));
        rc = add_problem(r, why);
        r->health = STORE_DAMAGED;
        goto done;
    }
    if (app_id != STORE_APPLICATION_ID) {
        rc = mesh_err_set(err, MESH_EINVAL, "%s is not a meshd store (application_id 0x%08llx)",
                          path, (unsigned long long)app_id);
        goto done;
    }
    r->pages = query_i64(db, "PRAGMA page_count", NULL);
    r->page_size = query_i64(db, "PRAGMA page_size", NULL);
    if ((rc = run_full_check(db, r)) != MESH_OK || (rc = classify(db, r)) != MESH_OK)
        goto done;
    r->elapsed_ms = now_ms() - start;
    /* Read even from a damaged store if it can be: the operator wants to
     * know how far it got. */
    src = store_sqlite_read_counter(db, r->schema_version, &r->seq, r->store_id);
    r->counter_read = src == SQLITE_OK;
    if (!r->counter_read && r->n_problems == 0) {
        char why[300];
        snprintf(why, sizeof why, "cannot read the change counter: %s", sqlite3_errmsg(db));
        rc = add_problem(r, why);
    }
    if (r->n_problems > 0)
        r->health = STORE_DAMAGED;
    else if (!witness_ok)
        r->health = STORE_WITNESS_UNREADABLE;
    else
        r->health = compare(r, w);

    if (rc == MESH_OK && o && o->repair && r->health == STORE_DAMAGED && r->index_only) {
        rc = repair_indexes(db, r, err);
        if (rc == MESH_OK && r->repaired) {
            r->counter_read = store_sqlite_read_counter(db, r->schema_version, &r->seq,
                                                        r->store_id) == SQLITE_OK;
            if (!r->counter_read)
                rc = mesh_err_set(err, MESH_ECORRUPT,
                                  "cannot read the change counter of %s after the repair", path);
        }
        if (rc == MESH_OK && r->repaired)
            r->health = witness_ok ? compare(r, w) : STORE_WITNESS_UNREADABLE;
    }
done:
    sqlite3_close_v2(db);
    return rc;
}

int store_check(const char *path, const store_check_opts *opts, store_check_report *r,
                mesh_err *err)
{
    memset(r, 0, sizeof *r);
    int rc = store_require(path, "store path", err);
    if (rc != MESH_OK)
        return rc;
    if (store_is_pg_url(path))
        return mesh_err_set(err, MESH_EINVAL,
                            "'store check' examines an SQLite file; a PostgreSQL store is "
                            "checked by the server itself (data checksums, amcheck)");
    int modify = opts && (opts->repair || opts->accept_loss);
    int fd = -1;
    store_witness_rec w;
    memset(&w, 0, sizeof w);
    int witness_ok = 1;
    rc = store_witness_open(path, &fd, err);
    if (rc == MESH_OK) {
        r->witness_present = 1;
        /* Changing anything needs the store to ourselves; a plain check
         * only notes whether someone else has it open. */
        int alone = store_session_try_last(fd);
        r->in_use = !alone;
        if (alone && !modify)
            store_session_end(fd);
        if (modify && !alone) {
            close(fd);
            return mesh_err_set(err, MESH_EBUSY,
                                "store %s is in use (meshd or meshctl has it open): stop meshd "
                                "before --repair or --accept-loss",
                                path);
        }
        /* Witness first, database second (see store_sqlite_open.c). */
        mesh_err werr = {0};
        if (store_witness_read(fd, path, &w, &werr) != MESH_OK)
            witness_ok = 0;
        else
            fill_witness(r, &w);
    } else if (rc == MESH_ENOTFOUND) {
        mesh_err_clear(err);
        rc = MESH_OK;
    } else {
        return rc;
    }

    struct stat sb;
    int present = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0;
    if (!present) {
        if (witness_ok && store_witness_vouches(&w)) {
            r->health = STORE_LOST;
        } else if (!witness_ok) {
            r->health = STORE_WITNESS_UNREADABLE;
        } else {
            rc = mesh_err_set(err, MESH_ENOTFOUND, "no store at %s (%s) and no witness of one",
                              path, stat(path, &sb) == 0 ? "empty file" : "no such file");
            goto out;
        }
    } else if ((rc = examine(path, opts, &w, witness_ok, r, err)) != MESH_OK) {
        goto out;
    }

    if (opts && opts->accept_loss && r->health != STORE_HEALTHY) {
        if (r->health == STORE_DAMAGED) {
            rc = mesh_err_set(err, MESH_ECORRUPT,
                              "store %s is damaged: accepting a loss would keep a damaged "
                              "store; restore a backup (or --repair, if only indexes are hit)",
                              path);
            goto out;
        }
        if (fd < 0 && (rc = store_witness_create(path, &fd, err)) != MESH_OK)
            goto out;
        accept_arg a = {.store_id = present ? r->store_id : "", .seq = present ? r->seq : 0};
        rc = store_witness_update_or_reset(fd, path, accept_edit, &a, err);
        if (rc == MESH_OK) {
            r->loss_accepted = 1;
            r->witness_seq = present ? r->seq : 0;
            snprintf(r->witness_store_id, sizeof r->witness_store_id, "%s",
                     present ? r->store_id : "");
        }
    }
out:
    if (fd >= 0) {
        if (modify)
            store_session_end(fd);
        close(fd);
    }
    return rc;
}
