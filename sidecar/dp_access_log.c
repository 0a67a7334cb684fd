/* sidecar/dp_access_log.c — the access log (see dp_access_log.h). */
#include "sidecar/dp_access_log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json_out.h"
#include "common/log.h"

#define ACCESS_LOG_FLUSH_BYTES (64 * 1024)
#define ACCESS_LOG_MAX_PENDING (4 * 1024 * 1024)

struct dp_access_log {
    int fd;
    int own_fd;                 /* 0 for stdout */
    struct evbuffer *pending;
    struct event *timer;
    _Atomic uint64_t dropped;
    int write_failed;           /* logged once until a write works again */
};

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dp_access_log_flush(arg);
}

int dp_access_log_open(const char *path, struct event_base *base, dp_access_log **out,
                       mesh_err *err)
{
    dp_access_log *l = calloc(1, sizeof *l);
    if (!l)
        return mesh_err_set(err, MESH_ENOMEM, "access log: out of memory");
    if (strcmp(path, "-") == 0) {
        l->fd = STDOUT_FILENO;
    } else {
        /* O_NONBLOCK: a FIFO whose reader stalls fills the buffer (then drops), not the loop. */
        l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0640);
        if (l->fd < 0) {
            int e = errno;
            free(l);
            return mesh_err_set(err, MESH_EIO, "--access-log %s: cannot open it for appending: %s",
                                path, strerror(e));
        }
        l->own_fd = 1;
    }
    struct timeval second = {1, 0};
    if (!(l->pending = evbuffer_new()) ||
        (base && (!(l->timer = event_new(base, -1, EV_PERSIST, on_timer, l)) ||
                  event_add(l->timer, &second) != 0))) {
        dp_access_log_close(l);
        return mesh_err_set(err, MESH_ENOMEM, "access log: out of memory");
    }
    *out = l;
    return MESH_OK;
}

static void key_opt(json_out *j, const char *key, const char *v)
{
    json_key(j, key);
    if (v)
        json_str(j, v);
    else
        json_null(j);
}

void dp_access_log_format(const dp_access_entry *e, json_out *j)
{
    char start[40];
    time_t secs = (time_t)(e->start_unix_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(start, sizeof start, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(start + n, sizeof start - n, ".%03dZ", (int)((e->start_unix_us / 1000) % 1000));
    json_obj_begin(j);
    json_key_str(j, "start_time", start);
    json_key_str(j, "direction", e->direction);
    key_opt(j, "listener", e->listener);
    key_opt(j, "method", e->method);
    key_opt(j, "path", e->path);
    key_opt(j, "authority", e->authority);
    key_opt(j, "protocol", e->protocol);
    json_key(j, "response_code");
    json_int(j, e->status);
    json_key_str(j, "response_flags", e->response_flags ? e->response_flags : "");
    json_key_int(j, "duration_ms", e->duration_us / 1000);
    json_key_int(j, "bytes_received", (int64_t)e->bytes_received);
    json_key_int(j, "bytes_sent", (int64_t)e->bytes_sent);
    key_opt(j, "upstream_cluster", e->upstream_cluster);
    key_opt(j, "upstream_host", e->upstream_host);
    key_opt(j, "route_name", e->route);
    key_opt(j, "peer_spiffe_id", e->peer_id && e->peer_id[0] ? e->peer_id : NULL);
    key_opt(j, "request_id", e->request_id && e->request_id[0] ? e->request_id : NULL);
    json_key_int(j, "attempts", e->attempts);
    json_obj_end(j);
}

void dp_access_log_write(dp_access_log *l, const dp_access_entry *e)
{
    if (!l)
        return;
    if (evbuffer_get_length(l->pending) >= ACCESS_LOG_MAX_PENDING) {
        atomic_fetch_add(&l->dropped, 1);
        return;
    }
    json_out j;
    json_init(&j);
    dp_access_log_format(e, &j);
    const char *t = json_text(&j);
    if (!t || evbuffer_add_printf(l->pending, "%s\n", t) < 0)
        atomic_fetch_add(&l->dropped, 1);
    json_free(&j);
    if (evbuffer_get_length(l->pending) >= ACCESS_LOG_FLUSH_BYTES)
        dp_access_log_flush(l);
}

void dp_access_log_flush(dp_access_log *l)
{
    while (l && evbuffer_get_length(l->pending) > 0) {
        int w = evbuffer_write(l->pending, l->fd);
        if (w > 0) {
            l->write_failed = 0;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* a FIFO's reader is behind: the timer tries again */
        if (!l->write_failed)
            log_warn("dp", "access log: write failed (%s); lines stay pending (at most 4 MiB, "
                     "then they are dropped and counted)",
                     w < 0 ? strerror(errno) : "no progress");
        l->write_failed = 1;
        return;
    }
}

uint64_t dp_access_log_dropped(const dp_access_log *l)
{
    return l ? atomic_load(&l->dropped) : 0;
}

void dp_access_log_close(dp_access_log *l)
{
    if (!l)
        return;
    if (l->pending)
        dp_access_log_flush(l);
    if (l->timer)
        event_free(l->timer);
    if (l->pending)
        evbuffer_free(l->pending);
    if (l->own_fd)
        close(l->fd);
    free(l);
}
