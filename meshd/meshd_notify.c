/* meshd/meshd_notify.c — the notify thread: wakes the watcher as soon as the store
 * reports a commit by another connection (store_notifier: LISTEN/NOTIFY on
 * PostgreSQL, inotify on SQLite), instead of the watcher finding it on its
 * next poll. A config applied at any replica's store is then pushed by every
 * replica within milliseconds plus the debounce.
 *
 * When the notifier breaks (the PostgreSQL listener lost its connection)
 * the watcher is poked once (changes may be missed from now on), polls every
 * MD_POLL_FALLBACK_MS meanwhile, and this thread reconnects once a second;
 * once it is back it pokes again, because notifications sent while it was
 * away are lost. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "meshd/meshd_internal.h"

#define NOTIFY_RETRY_MS 1000

void md_watch_poke(md_watch *w)
{
    pthread_mutex_lock(&w->mu);
    w->poked = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void *notify_main(void *arg)
{
    md_ctx *ctx = arg;
    md_watch *w = &ctx->watch;
    for (;;) {
        int fd = store_notifier_fd(w->notifier);
        struct pollfd p[2] = {{.fd = w->notify_stop_fd, .events = POLLIN},
                              {.fd = fd, .events = POLLIN}};
        int r = poll(p, fd >= 0 ? 2 : 1, fd >= 0 ? -1 : NOTIFY_RETRY_MS);
        if (r < 0 && errno != EINTR) {
            log_error("meshd", "waiting for store change notifications: %s; polling the store "
                               "every %d ms instead", strerror(errno), MD_POLL_FALLBACK_MS);
            atomic_store(&w->notify_live, 0);
            md_watch_poke(w);
            return NULL;
        }
        if (p[0].revents)
            return NULL;
        mesh_err err = {0};
        if (fd < 0) {
            if (store_notifier_reconnect(w->notifier, &err) == MESH_OK) {
                atomic_store(&w->notify_live, 1);
                md_watch_poke(w);   /* what was sent while away is lost: look now */
            }
            continue;
        }
        if (r <= 0 || !p[1].revents)
            continue;
        int got = store_notifier_drain(w->notifier, &err);
        if (got > 0) {
            md_watch_poke(w);
        } else if (got < 0) {
            log_warn("meshd", "%s; reconnecting every %d ms", err.msg, NOTIFY_RETRY_MS);
            atomic_store(&w->notify_live, 0);
            md_watch_poke(w);
        }
    }
}

int md_notify_start(md_ctx *ctx, mesh_err *err)
{
    (void)err;
    md_watch *w = &ctx->watch;
    w->notify_stop_fd = -1;
    mesh_err nerr = {0};
    if (store_notifier_open(ctx->opts.db_path, &w->notifier, &nerr) != MESH_OK) {
        log_warn("meshd", "no store change notifications (%s); polling the store every %lld ms",
                 nerr.msg, (long long)(ctx->opts.poll_ms < MD_POLL_FALLBACK_MS
                                           ? ctx->opts.poll_ms : MD_POLL_FALLBACK_MS));
        return MESH_OK;
    }
    w->notify_after_commit = store_notifier_after_commit(w->notifier);
    w->notify_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->notify_stop_fd < 0 || pthread_create(&w->notify_th, NULL, notify_main, ctx) != 0) {
        log_warn("meshd", "cannot start the store notify thread; polling the store instead");
        if (w->notify_stop_fd >= 0)
            close(w->notify_stop_fd);
        w->notify_stop_fd = -1;
        store_notifier_close(w->notifier);
        w->notifier = NULL;
        return MESH_OK;
    }
    atomic_store(&w->notify_live, 1);
    w->notify_started = 1;
    log_info("meshd", "store changes are notified (%s); the store is also polled every %lld ms "
                      "as a safety net",
             store_notifier_kind(w->notifier), (long long)ctx->opts.poll_ms);
    return MESH_OK;
}

void md_notify_stop(md_ctx *ctx)
{
    md_watch *w = &ctx->watch;
    if (!w->notify_started && !w->notifier)
        return;   /* never started (its descriptor fields are not set up) */
    if (w->notify_started) {
        uint64_t one = 1;
        ssize_t wr = write(w->notify_stop_fd, &one, sizeof one);
        (void)wr;
        pthread_join(w->notify_th, NULL);
        w->notify_started = 0;
    }
    if (w->notify_stop_fd >= 0)
        close(w->notify_stop_fd);
    w->notify_stop_fd = -1;
    store_notifier_close(w->notifier);
    w->notifier = NULL;
    atomic_store(&w->notify_live, 0);
}
