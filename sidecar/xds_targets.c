/* sidecar/xds_targets.c — meshd replica list, resolution and round-robin fail-over
 * (see xds_targets.h). */
#include "sidecar/xds_targets.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* "host:port" or "[v6]:port" -> host, port. 0 on success. */
static int split(const char *s, size_t len, char *host, size_t hl, char *port, size_t pl)
{
    const char *colon;
    const char *h = s;
    size_t hn;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close || (size_t)(close - s) + 1 >= len || close[1] != ':')
            return -1;
        h = s + 1;
        hn = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = NULL;
        for (size_t i = 0; i < len; i++)
            if (s[i] == ':')
                colon = s + i;
        if (!colon)
            return -1;
        hn = (size_t)(colon - s);
        if (memchr(s, ':', hn))
            return -1;      /* a bare IPv6 literal: brackets needed */
    }
    size_t pn = len - (size_t)(colon + 1 - s);
    if (hn == 0 || hn >= hl || pn == 0 || pn >= pl)
        return -1;
    memcpy(host, h, hn);
    host[hn] = '\0';
    memcpy(port, colon + 1, pn);
    port[pn] = '\0';
    char *end;
    long p = strtol(port, &end, 10);
    if (*end || p < 1 || p > 65535 || port[0] == '+' || port[0] == '-')
        return -1;
    return 0;
}

int xdsc_targets_parse(xdsc_targets *t, const char *list, mesh_err *err)
{
    t->n_entry = 0;
    t->n = 0;
    if (!list || !list[0])
        return mesh_err_set(err, MESH_EINVAL, "--meshd: no address given (HOST:PORT[,HOST:PORT...])");
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        char host[XDSC_TARGET_LEN], port[16];
        if (len == 0)
            return mesh_err_set(err, MESH_EINVAL, "--meshd '%s': an empty item in the list", list);
        if (split(p, len, host, sizeof host, port, sizeof port) != 0)
            return mesh_err_set(err, MESH_EINVAL, "--meshd: '%.*s' is not HOST:PORT (port 1-65535, "
                                "IPv6 as [addr]:port)", (int)(len > 200 ? 200 : len), p);
        if (t->n_entry == XDSC_TARGETS_MAX)
            return mesh_err_set(err, MESH_EINVAL, "--meshd: more than %d addresses",
                                XDSC_TARGETS_MAX);
        memcpy(t->entry[t->n_entry], p, len);
        t->entry[t->n_entry][len] = '\0';
        t->n_entry++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return MESH_OK;
}

static bool have_addr(const xdsc_targets *t, const char *a)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->addr[i], a) == 0)
            return true;
    return false;
}

static void add_addr(xdsc_targets *t, const char *a)
{
    if (t->n < XDSC_TARGETS_MAX && !have_addr(t, a))
        snprintf(t->addr[t->n++], XDSC_TARGET_LEN, "%s", a);
}

int xdsc_targets_resolve(xdsc_targets *t, mesh_err *err)
{
    xdsc_resolve_fn fn = t->resolve ? t->resolve : xdsc_resolve_getaddrinfo;
    t->n = 0;
    err->code = MESH_OK;
    err->msg[0] = '\0';
    for (size_t i = 0; i < t->n_entry; i++) {
        char host[XDSC_TARGET_LEN], port[16];
        if (split(t->entry[i], strlen(t->entry[i]), host, sizeof host, port, sizeof port) != 0)
            continue;   /* parse refused it already */
        char out[XDSC_TARGETS_MAX][XDSC_TARGET_LEN];
        size_t n = 0;
        mesh_err e;
        if (fn(t->resolve_ctx, host, port, out, XDSC_TARGETS_MAX, &n, &e) != MESH_OK || n == 0) {
            /* Kept as written: gRPC's own resolver tries it, and a failed
             * attempt moves the round on. */
            add_addr(t, t->entry[i]);
            *err = e;
            continue;
        }
        for (size_t k = 0; k < n; k++)
            add_addr(t, out[k]);
    }
    if (t->n == 0)
        return mesh_err_set(err, MESH_EINVAL, "no meshd address to try");
    return MESH_OK;
}

const char *xdsc_targets_at(const xdsc_targets *t, const xdsc_rotor *r)
{
    return t->n ? t->addr[r->idx % t->n] : "";
}

bool xdsc_rotor_failed(xdsc_rotor *r, size_t n)
{
    if (n == 0)
        return true;
    r->idx = (r->idx + 1) % n;
    r->failed++;
    if (r->failed >= n) {
        r->failed = 0;
        return true;
    }
    return false;
}

void xdsc_rotor_ok(xdsc_rotor *r) { r->failed = 0; }

void xdsc_rotor_move_to(xdsc_rotor *r, const xdsc_targets *t, const char *addr)
{
    for (size_t i = 0; addr && i < t->n; i++) {
        if (strcmp(t->addr[i], addr) == 0) {
            r->idx = i;
            r->failed = 0;
            return;
        }
    }
}

int xdsc_resolve_getaddrinfo(void *ctx, const char *host, const char *port,
                             char (*out)[XDSC_TARGET_LEN], size_t max, size_t *n, mesh_err *err)
{
    (void)ctx;
    *n = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0)
        return mesh_err_set(err, MESH_EIO, "cannot resolve meshd address %s: %s", host,
                            gai_strerror(g));
    for (struct addrinfo *ai = res; ai && *n < max; ai = ai->ai_next) {
        char ip[INET6_ADDRSTRLEN];
        const void *a = ai->ai_family == AF_INET6
                            ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                            : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (!inet_ntop(ai->ai_family, a, ip, sizeof ip))
            continue;
        char one[XDSC_TARGET_LEN];
        snprintf(one, sizeof one, ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", ip, port);
        bool dup = false;
        for (size_t i = 0; i < *n; i++)
            dup = dup || strcmp(out[i], one) == 0;
        if (!dup)
            snprintf(out[(*n)++], XDSC_TARGET_LEN, "%s", one);
    }
    freeaddrinfo(res);
    if (*n == 0)
        return mesh_err_set(err, MESH_EIO, "meshd address %s resolves to no IP address", host);
    return MESH_OK;
}
