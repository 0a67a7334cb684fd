/* sidecar/dp_addr.c — numeric address parsing and formatting (see dp_addr.h). */
#include "sidecar/dp_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *p, bool allow_port0, uint16_t *out, const char *whole,
                      mesh_err *err)
{
    if (*p == '\0')
        return mesh_err_set(err, MESH_EINVAL, "address '%s': missing port after ':'", whole);
    unsigned long v = 0;
    for (const char *c = p; *c; c++) {
        if (*c < '0' || *c > '9')
            return mesh_err_set(err, MESH_EINVAL, "address '%s': port '%s' is not a number",
                                whole, p);
        v = v * 10 + (unsigned long)(*c - '0');
        if (v > 65535)
            return mesh_err_set(err, MESH_EINVAL, "address '%s': port must be %s..65535", whole,
                                allow_port0 ? "0" : "1");
    }
    if (v == 0 && !allow_port0)
        return mesh_err_set(err, MESH_EINVAL, "address '%s': port must be 1..65535", whole);
    *out = (uint16_t)v;
    return MESH_OK;
}

int dp_addr_parse(const char *s, bool allow_port0, struct sockaddr_storage *sa, socklen_t *len,
                  mesh_err *err)
{
    if (!s || !*s)
        return mesh_err_set(err, MESH_EINVAL, "address is empty; expected ip:port");
    memset(sa, 0, sizeof *sa);
    char host[64];
    const char *port_str;
    bool v6 = false;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return mesh_err_set(err, MESH_EINVAL,
                                "address '%s': IPv6 must be written [addr]:port", s);
        size_t hl = (size_t)(close - s - 1);
        if (hl == 0 || hl >= sizeof host)
            return mesh_err_set(err, MESH_EINVAL, "address '%s': bad IPv6 address", s);
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        port_str = close + 2;
        v6 = true;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return mesh_err_set(err, MESH_EINVAL, "address '%s': expected ip:port", s);
        if (memchr(s, ':', (size_t)(colon - s)))
            return mesh_err_set(err, MESH_EINVAL,
                                "address '%s': IPv6 must be written [addr]:port", s);
        size_t hl = (size_t)(colon - s);
        if (hl == 0 || hl >= sizeof host)
            return mesh_err_set(err, MESH_EINVAL, "address '%s': missing or too long host", s);
        memcpy(host, s, hl);
        host[hl] = '\0';
        port_str = colon + 1;
    }
    uint16_t port;
    int rc = parse_port(port_str, allow_port0, &port, s, err);
    if (rc != MESH_OK)
        return rc;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)sa;
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return mesh_err_set(err, MESH_EINVAL, "address '%s': '%s' is not an IPv6 address",
                                s, host);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        *len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)sa;
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            return mesh_err_set(err, MESH_EINVAL,
                                "address '%s': '%s' is not a numeric IPv4 address (the data "
                                "plane does not resolve names)", s, host);
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        *len = sizeof *a;
    }
    return MESH_OK;
}

int dp_addr_join(char *buf, size_t len, const char *ip, uint32_t port, mesh_err *err)
{
    if (!ip || !*ip)
        return mesh_err_set(err, MESH_EINVAL, "address: empty IP");
    if (port > 65535)
        return mesh_err_set(err, MESH_EINVAL, "address %s: port %u out of range", ip, port);
    int n;
    if (strchr(ip, ':')) {
        struct in6_addr tmp;
        if (inet_pton(AF_INET6, ip, &tmp) != 1)
            return mesh_err_set(err, MESH_EINVAL, "address '%s' is not an IPv6 address", ip);
        n = snprintf(buf, len, "[%s]:%u", ip, port);
    } else {
        n = snprintf(buf, len, "%s:%u", ip, port);
    }
    if (n < 0 || (size_t)n >= len)
        return mesh_err_set(err, MESH_EINVAL, "address '%s': too long", ip);
    return MESH_OK;
}

void dp_addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(buf, len, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
}

uint16_t dp_addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}
