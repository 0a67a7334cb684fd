/* drill/drill_http.c — small blocking network helpers for the drill: a GET with
 * a deadline (used while setting up, before the event loop runs) and a TCP "is
 * anything listening" check, on 127.0.0.1 or a --target address. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drill/drill.h"

static int connect_local(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int drill_port_open(int port)
{
    int fd = connect_local(port, 500);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* Any address: a non-blocking connect bounded by 500 ms (a remote --target). */
int drill_addr_open(const char *host_port)
{
    char host[256];
    const char *colon = strrchr(host_port, ':');
    if (!colon || (size_t)(colon - host_port) >= sizeof host)
        return 0;
    memcpy(host, host_port, (size_t)(colon - host_port));
    host[colon - host_port] = '\0';
    char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {   /* [::1]:15010 */
        h[hl - 1] = '\0';
        h++;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(h, colon + 1, &hints, &res) != 0 || !res)
        return 0;
    int open_ = 0;
    for (struct addrinfo *a = res; a && !open_; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            open_ = 1;
        } else if (errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (poll(&p, 1, 500) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
                soerr == 0)
                open_ = 1;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return open_;
}

static double mono_ms(void)
{
    return drill_mono() * 1000.0;
}

int drill_http_get(int port, const char *host, const char *path, int timeout_ms, int *status,
                   char *body, size_t body_len)
{
    *status = 0;
    if (body_len)
        body[0] = '\0';
    double deadline = mono_ms() + timeout_ms;
    int fd = connect_local(port, timeout_ms);
    if (fd < 0)
        return -1;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, host);
    if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    /* Read until the peer closes (Connection: close) or the deadline. */
    char buf[16384];
    size_t got = 0;
    for (;;) {
        int left = (int)(deadline - mono_ms());
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got >= sizeof buf - 1)
            break;
    }
    close(fd);
    buf[got] = '\0';
    int code = 0;
    if (got < 12 || sscanf(buf, "HTTP/1.%*c %3d", &code) != 1 || code < 100 || code > 599)
        return -1;
    *status = code;
    const char *b = strstr(buf, "\r\n\r\n");
    if (b && body_len)
        snprintf(body, body_len, "%s", b + 4);
    return 0;
}
