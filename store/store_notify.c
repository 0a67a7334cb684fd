/* store/store_notify.c — store_notifier (store.h): change notifications of
 * either backend behind one descriptor. PostgreSQL: LISTEN/NOTIFY
 * (store_pg_notify.c). SQLite: inotify on the database's directory, for
 * writes to the database file and its -wal (a commit in WAL mode writes the
 * -wal; a checkpoint writes the file). The directory is watched rather than
 * the files because the -wal comes and goes (removed when the last
 * connection closes, created again by the next writer). meshd's own
 * connections trigger it too, as they bump PRAGMA data_version for its
 * watcher: their commits are changes the watcher must see as well. */
#include "store/store_pg.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

struct store_notifier {
    store_pg_listener *pg;  /* PostgreSQL */
    int ino_fd;             /* SQLite: inotify descriptor, -1 for PostgreSQL */
    char *base;             /* SQLite: the database file's name in its directory */
    char *wal;              /* ... and its -wal's */
};

static int sqlite_watch(store_notifier *n, const char *file, mesh_err *err)
{
    const char *slash = strrchr(file, '/');
    char dir[PATH_MAX];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == file)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - file), file);
    const char *base = slash ? slash + 1 : file;
    size_t bl = strlen(base);
    n->base = strdup(base);
    n->wal = malloc(bl + 5);
    if (!n->base || !n->wal)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory watching store %s", file);
    snprintf(n->wal, bl + 5, "%s-wal", base);
    n->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (n->ino_fd < 0)
        return mesh_err_set(err, MESH_EIO,
                            "inotify_init1 for store %s: %s (raise fs.inotify.max_user_instances); "
                            "config changes are noticed by polling",
                            file, strerror(errno));
    if (inotify_add_watch(n->ino_fd, dir, IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO) < 0)
        return mesh_err_set(err, MESH_EIO,
                            "watching directory %s of store %s: %s (raise "
                            "fs.inotify.max_user_watches); config changes are noticed by polling",
                            dir, file, strerror(errno));
    return MESH_OK;
}

int store_notifier_open(const char *db, store_notifier **out, mesh_err *err)
{
    *out = NULL;
    int rc = store_require(db, "store path", err);
    if (rc != MESH_OK)
        return rc;
    store_notifier *n = calloc(1, sizeof *n);
    if (!n)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory opening a change notifier");
    n->ino_fd = -1;
    if (store_is_pg_url(db)) {
        rc = store_pg_listen_open(db, &n->pg, err);
    } else {
        const char *file = NULL;
        rc = store_sqlite_path_of(db, &file, err);
        if (rc == MESH_OK)
            rc = sqlite_watch(n, file, err);
    }
    if (rc != MESH_OK) {
        store_notifier_close(n);
        return rc;
    }
    *out = n;
    return MESH_OK;
}

int store_notifier_fd(const store_notifier *n)
{
    return n->pg ? store_pg_listen_fd(n->pg) : n->ino_fd;
}

static int sqlite_drain(store_notifier *n, mesh_err *err)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int mine = 0;
    for (;;) {
        ssize_t got = read(n->ino_fd, buf, sizeof buf);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return mine;
            return mesh_err_set(err, MESH_EIO, "reading inotify events: %s", strerror(errno));
        }
        if (got == 0)
            return mine;
        for (char *p = buf; p < buf + got;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & IN_Q_OVERFLOW)
                mine = 1;   /* events were lost: assume a change */
            else if (ev->len && (strcmp(ev->name, n->base) == 0 || strcmp(ev->name, n->wal) == 0))
                mine = 1;
            p += sizeof *ev + ev->len;
        }
    }
}

int store_notifier_drain(store_notifier *n, mesh_err *err)
{
    if (n->pg)
        return store_pg_listen_drain(n->pg, err);
    return sqlite_drain(n, err);
}

int store_notifier_reconnect(store_notifier *n, mesh_err *err)
{
    if (n->pg)
        return store_pg_listen_reconnect(n->pg, err);
    return MESH_OK;
}

int store_notifier_after_commit(const store_notifier *n)
{
    return n->pg != NULL;
}

const char *store_notifier_kind(const store_notifier *n)
{
    return n->pg ? "listen" : "inotify";
}

void store_notifier_close(store_notifier *n)
{
    if (!n)
        return;
    store_pg_listen_close(n->pg);
    if (n->ino_fd >= 0)
        close(n->ino_fd);
    free(n->base);
    free(n->wal);
    free(n);
}
