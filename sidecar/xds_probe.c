/* sidecar/xds_probe.c — non-blocking TCP reachability probe of meshd replicas
 * (see xds_probe.h). */
#include "sidecar/xds_probe.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void xdsc_probe_init(xdsc_probe *p)
{
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < XDSC_TARGETS_MAX; i++)
        p->fd[i] = -1;
}

static void close_all(xdsc_probe *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->fd[i] >= 0)
            close(p->fd[i]);
        p->fd[i] = -1;
    }
    p->active = false;
}

/* A non-blocking connect to a numeric "ip:port" / "[ip6]:port"; -1 if it cannot
 * even start (not numeric, refused at once). */
static int connect_numeric(const char *addr)
{
    char host[XDSC_TARGET_LEN], port[16];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host || strlen(colon + 1) >= sizeof port)
        return -1;
    const char *h = addr;
    size_t hn = (size_t)(colon - addr);
    if (hn >= 2 && addr[0] == '[' && addr[hn - 1] == ']') {
        h++;
        hn -= 2;
    }
    memcpy(host, h, hn);
    host[hn] = '\0';
    strcpy(port, colon + 1);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

void xdsc_probe_start(xdsc_probe *p, const xdsc_targets *t, int64_t now_ms)
{
    close_all(p);
    p->n = t->n;
    for (size_t i = 0; i < t->n; i++)
        p->fd[i] = connect_numeric(t->addr[i]);
    p->active = true;
    p->started_ms = now_ms;
    p->next_ms = now_ms + XDSC_PROBE_EVERY_MS;
}

int xdsc_probe_poll(xdsc_probe *p, int64_t now_ms)
{
    if (!p->active)
        return XDSC_PROBE_IDLE;
    struct pollfd pf[XDSC_TARGETS_MAX];
    size_t map[XDSC_TARGETS_MAX], k = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->fd[i] < 0)
            continue;
        pf[k] = (struct pollfd){.fd = p->fd[i], .events = POLLOUT};
        map[k++] = i;
    }
    if (k > 0 && poll(pf, (nfds_t)k, 0) > 0) {
        for (size_t j = 0; j < k; j++) {
            if (!pf[j].revents)
                continue;
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (getsockopt(pf[j].fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0 &&
                !(pf[j].revents & (POLLERR | POLLHUP))) {
                close_all(p);
                return (int)map[j];
            }
            close(p->fd[map[j]]);   /* refused: this one is down */
            p->fd[map[j]] = -1;
        }
    }
    bool open_left = false;
    for (size_t i = 0; i < p->n; i++)
        open_left = open_left || p->fd[i] >= 0;
    if (!open_left || now_ms - p->started_ms >= XDSC_PROBE_WAIT_MS) {
        close_all(p);
        return XDSC_PROBE_ALL_DOWN;
    }
    return XDSC_PROBE_PENDING;
}

int xdsc_probe_step(xdsc_probe *p, const xdsc_targets *t, int64_t now_ms)
{
    if (!p->active) {
        if (now_ms < p->next_ms)
            return XDSC_PROBE_IDLE;
        xdsc_probe_start(p, t, now_ms);
    }
    int r = xdsc_probe_poll(p, now_ms);
    if (r == XDSC_PROBE_ALL_DOWN) {
        p->saw_all_down = true;
    } else if (r >= 0) {
        bool edge = p->saw_all_down;
        p->saw_all_down = false;
        if (!edge)
            return XDSC_PROBE_IDLE;     /* up all along: the backoff decides */
    }
    return r;
}

void xdsc_probe_stop(xdsc_probe *p)
{
    close_all(p);
    p->saw_all_down = false;
}
