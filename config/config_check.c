/* config/config_check.c — single-field checks for the mesh config.
 *
 * Pure functions: a value in, 0 or -1 plus a reason out. The parser adds the
 * file, line and field path; the validator adds the resource's source. */
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ca/spiffe_id.h"

const char *config_kind_name(enum config_kind k)
{
    switch (k) {
    case CONFIG_KIND_SERVICE: return "service";
    case CONFIG_KIND_WORKLOAD: return "workload";
    case CONFIG_KIND_ROUTE: return "route";
    case CONFIG_KIND_AUTHZ: return "authorization";
    default: return "?";
    }
}

const char *config_kind_key(enum config_kind k)
{
    switch (k) {
    case CONFIG_KIND_SERVICE: return "services";
    case CONFIG_KIND_WORKLOAD: return "workloads";
    case CONFIG_KIND_ROUTE: return "routes";
    case CONFIG_KIND_AUTHZ: return "authorization";
    default: return "?";
    }
}

int config_kind_parse(const char *s, enum config_kind *out)
{
    for (int k = 0; k < CONFIG_KIND_COUNT; k++) {
        if (s && strcmp(s, config_kind_name((enum config_kind)k)) == 0) {
            *out = (enum config_kind)k;
            return 0;
        }
    }
    return -1;
}

const char *config_protocol_name(enum mesh_protocol p)
{
    switch (p) {
    case MESH_PROTO_HTTP: return "http";
    case MESH_PROTO_TCP: return "tcp";
    case MESH_PROTO_HTTP2: return "http2";
    case MESH_PROTO_GRPC: return "grpc";
    default: return NULL;
    }
}

const char *config_lb_name(enum mesh_lb lb)
{
    switch (lb) {
    case MESH_LB_ROUND_ROBIN: return "round_robin";
    case MESH_LB_LEAST_REQUEST: return "least_request";
    default: return NULL;
    }
}

const char *config_header_kind_name(enum mesh_header_match m)
{
    switch (m) {
    case MESH_HDR_EXACT: return "exact";
    case MESH_HDR_PREFIX: return "prefix";
    case MESH_HDR_PRESENT: return "present";
    default: return NULL;
    }
}

void config_quote(const char *s, char *buf, size_t n)
{
    /* Values in messages are capped and escaped so a hostile or binary value
     * cannot flood a terminal or forge extra log lines. */
    const size_t cap = 80;
    size_t o = 0;
    if (n < 8) {
        if (n)
            buf[0] = '\0';
        return;
    }
    buf[o++] = '"';
    size_t i = 0;
    for (; s && s[i] && i < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        char tmp[8];
        size_t tl;
        if (ch == '"' || ch == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)ch;
            tl = 2;
        } else if (ch < 0x20 || ch == 0x7f) {
            tl = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", ch);
        } else {
            tmp[0] = (char)ch;
            tl = 1;
        }
        if (o + tl + 5 >= n)
            break;
        memcpy(buf + o, tmp, tl);
        o += tl;
    }
    int truncated = s && s[i];
    buf[o++] = '"';
    if (truncated && o + 4 < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

int config_check_name(const char *s, char *why, size_t n)
{
    char q[128];
    if (!s || !*s) {
        snprintf(why, n, "must not be empty");
        return -1;
    }
    size_t len = strlen(s);
    config_quote(s, q, sizeof q);
    if (len > CONFIG_NAME_MAX) {
        snprintf(why, n, "must be at most %d characters, got %zu", CONFIG_NAME_MAX, len);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok) {
            if (c >= 'A' && c <= 'Z')
                snprintf(why, n, "must be lowercase (a-z, 0-9 and '-'), got %s", q);
            else
                snprintf(why, n, "must be a DNS label (a-z, 0-9 and '-'), got %s", q);
            return -1;
        }
    }
    if (s[0] == '-' || s[len - 1] == '-') {
        snprintf(why, n, "must start and end with a letter or digit, got %s", q);
        return -1;
    }
    return 0;
}

/* A DNS hostname: labels of letters, digits and '-', 1..63 each, 253 total,
 * and a last label that is not all digits (so "10.0.0.256" is not taken for
 * a hostname and gets the IPv4 error instead). */
static int check_hostname(const char *h, size_t len, char *why, size_t n)
{
    if (len == 0) {
        snprintf(why, n, "host is empty");
        return -1;
    }
    if (len > 253) {
        snprintf(why, n, "hostname is longer than 253 characters");
        return -1;
    }
    size_t start = 0;
    int last_all_digits = 1;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || h[i] == '.') {
            size_t ll = i - start;
            if (ll == 0) {
                snprintf(why, n, "hostname has an empty label");
                return -1;
            }
            if (ll > 63) {
                snprintf(why, n, "hostname label longer than 63 characters");
                return -1;
            }
            if (h[start] == '-' || h[i - 1] == '-') {
                snprintf(why, n, "hostname labels must not start or end with '-'");
                return -1;
            }
            last_all_digits = 1;
            for (size_t j = start; j < i; j++)
                if (!isdigit((unsigned char)h[j]))
                    last_all_digits = 0;
            start = i + 1;
            continue;
        }
        unsigned char c = (unsigned char)h[i];
        if (!isalnum(c) && c != '-') {
            snprintf(why, n, "hostname may only contain letters, digits, '-' and '.'");
            return -1;
        }
    }
    if (last_all_digits) {
        snprintf(why, n, "not a valid IPv4 address or hostname");
        return -1;
    }
    return 0;
}

static int parse_port(const char *p, int *port)
{
    size_t len = strlen(p);
    if (len == 0 || len > 5 || p[0] == '0')
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

int config_check_hostport(const char *s, char *norm, size_t norm_n, int *wildcard, char *why,
                          size_t n)
{
    char q[128];
    char host[256];
    const char *port_str;
    int is_v6 = 0, is_v4 = 0;
    if (!s || !*s) {
        snprintf(why, n, "must not be empty (expected host:port)");
        return -1;
    }
    config_quote(s, q, sizeof q);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close) {
            snprintf(why, n, "missing ']' after IPv6 address in %s", q);
            return -1;
        }
        size_t hl = (size_t)(close - s - 1);
        if (hl == 0 || hl >= sizeof host) {
            snprintf(why, n, "bad IPv6 address in %s", q);
            return -1;
        }
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        if (close[1] != ':') {
            snprintf(why, n, "missing :port in %s (expected [IPv6]:port)", q);
            return -1;
        }
        port_str = close + 2;
        is_v6 = 1;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            snprintf(why, n, "missing :port in %s (expected host:port)", q);
            return -1;
        }
        if (memchr(s, ':', (size_t)(colon - s))) {
            snprintf(why, n, "IPv6 addresses must be in brackets, e.g. [::1]:15001; got %s", q);
            return -1;
        }
        size_t hl = (size_t)(colon - s);
        if (hl == 0) {
            snprintf(why, n, "missing host in %s (expected host:port)", q);
            return -1;
        }
        if (hl >= sizeof host) {
            snprintf(why, n, "host part too long in %s", q);
            return -1;
        }
        memcpy(host, s, hl);
        host[hl] = '\0';
        port_str = colon + 1;
        is_v4 = strspn(host, "0123456789.") == hl;
    }
    int port;
    if (parse_port(port_str, &port) != 0) {
        char pq[64];
        config_quote(port_str, pq, sizeof pq);
        snprintf(why, n, "port must be 1..65535 (no leading zeros), got %s in %s", pq, q);
        return -1;
    }
    unsigned char bin[16];
    char canon[INET6_ADDRSTRLEN];
    int wild = 0;
    if (is_v6) {
        if (inet_pton(AF_INET6, host, bin) != 1) {
            snprintf(why, n, "not a valid IPv6 address in %s", q);
            return -1;
        }
        inet_ntop(AF_INET6, bin, canon, sizeof canon);
        static const unsigned char zero16[16];
        wild = memcmp(bin, zero16, 16) == 0;
        if (norm)
            snprintf(norm, norm_n, "[%s]:%d", canon, port);
    } else if (is_v4) {
        if (inet_pton(AF_INET, host, bin) != 1) {
            snprintf(why, n, "not a valid IPv4 address in %s", q);
            return -1;
        }
        inet_ntop(AF_INET, bin, canon, sizeof canon);
        wild = bin[0] == 0 && bin[1] == 0 && bin[2] == 0 && bin[3] == 0;
        if (norm)
            snprintf(norm, norm_n, "%s:%d", canon, port);
    } else {
        char hw[CONFIG_WHY_MAX];
        if (check_hostname(host, strlen(host), hw, sizeof hw) != 0) {
            snprintf(why, n, "%s in %s", hw, q);
            return -1;
        }
        for (char *p = host; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (norm)
            snprintf(norm, norm_n, "%s:%d", host, port);
    }
    if (wildcard)
        *wildcard = wild;
    return 0;
}

int config_check_route_host(const char *s, char *why, size_t n)
{
    char q[128];
    if (!s || !*s) {
        snprintf(why, n, "must not be empty");
        return -1;
    }
    config_quote(s, q, sizeof q);
    if (strcmp(s, "*") == 0)
        return 0;
    const char *h = s;
    if (strncmp(h, "*.", 2) == 0)
        h += 2;
    size_t hl = strlen(h);
    if (strchr(h, ':')) {
        /* the egress route table ignores the Host header's port
         * (ignore_port_in_host_matching), so a host with a port never matches */
        snprintf(why, n, "must be a host without a port (the port of the Host header is ignored), "
                         "got %s", q);
        return -1;
    }
    if (memchr(h, '*', hl)) {
        snprintf(why, n, "'*' is only allowed alone or as a leading \"*.\", got %s", q);
        return -1;
    }
    char hw[CONFIG_WHY_MAX];
    if (strspn(h, "0123456789.") == hl) {
        /* a bare IPv4 literal is a legitimate Host header */
        char tmp[64];
        unsigned char bin[4];
        if (hl < sizeof tmp) {
            memcpy(tmp, h, hl);
            tmp[hl] = '\0';
            if (inet_pton(AF_INET, tmp, bin) == 1)
                return 0;
        }
    }
    if (check_hostname(h, hl, hw, sizeof hw) != 0) {
        snprintf(why, n, "must be a hostname, \"*.\"+hostname, an IPv4 address or \"*\": %s in %s",
                 hw, q);
        return -1;
    }
    return 0;
}

int config_check_http_path(const char *s, char *why, size_t n)
{
    char q[128];
    config_quote(s, q, sizeof q);
    if (!s || s[0] != '/') {
        snprintf(why, n, "must start with '/', got %s", q);
        return -1;
    }
    size_t len = strlen(s);
    if (len > CONFIG_HTTP_PATH_MAX) {
        snprintf(why, n, "must be at most %d characters, got %zu", CONFIG_HTTP_PATH_MAX, len);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f) {
            snprintf(why, n,
                     "must be printable ASCII without spaces (percent-encode other bytes), got %s",
                     q);
            return -1;
        }
        if (c == '?' || c == '#') {
            snprintf(why, n, "must not contain '%c' (matching is on the path only), got %s", c, q);
            return -1;
        }
    }
    return 0;
}

int config_check_header_name(const char *s, char *why, size_t n)
{
    /* RFC 9110 token characters, lowercase only: HTTP/2 and Envoy compare
     * header names lowercased, so an uppercase matcher would silently never
     * match in some paths. */
    static const char tchar_extra[] = "!#$%&'*+-.^_`|~";
    char q[128];
    if (!s || !*s) {
        snprintf(why, n, "must not be empty");
        return -1;
    }
    config_quote(s, q, sizeof q);
    size_t len = strlen(s);
    if (len > 256) {
        snprintf(why, n, "must be at most 256 characters, got %zu", len);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') {
            snprintf(why, n, "header names must be lowercase, got %s", q);
            return -1;
        }
        if (!(isdigit(c) || (c >= 'a' && c <= 'z') || (c && strchr(tchar_extra, c)))) {
            snprintf(why, n, "not a valid HTTP header name: %s", q);
            return -1;
        }
    }
    return 0;
}

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF):
 * the YAML writer can only emit valid UTF-8. */
static int valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t extra;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (size_t k = 1; k <= extra; k++) {
            if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += extra + 1;
    }
    return 1;
}

int config_check_header_value(const char *s, int allow_empty, char *why, size_t n)
{
    if (!s) {
        snprintf(why, n, "is required");
        return -1;
    }
    size_t len = strlen(s);
    if (len == 0 && !allow_empty) {
        snprintf(why, n, "must not be empty");
        return -1;
    }
    if (len > CONFIG_HEADER_VALUE_MAX) {
        snprintf(why, n, "must be at most %d characters, got %zu", CONFIG_HEADER_VALUE_MAX, len);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            char q[128];
            config_quote(s, q, sizeof q);
            snprintf(why, n, "must not contain control characters, got %s", q);
            return -1;
        }
    }
    if (!valid_utf8((const unsigned char *)s, len)) {
        snprintf(why, n, "must be valid UTF-8");
        return -1;
    }
    return 0;
}

int config_check_spiffe_id(const char *s, const char *trust_domain, char *why, size_t n)
{
    if (!s || !*s) {
        snprintf(why, n, "must not be empty (expected spiffe://<trust-domain>/ns/<ns>/sa/<sa>)");
        return -1;
    }
    spiffe_id_parts id;
    mesh_err e;
    mesh_err_clear(&e);
    if (spiffe_id_parse_workload(s, &id, &e) != MESH_OK) {
        /* the ca module's message already quotes the ID */
        snprintf(why, n, "%s", e.msg[0] ? e.msg : "not a valid workload SPIFFE ID");
        return -1;
    }
    if (trust_domain && *trust_domain && strcmp(id.trust_domain, trust_domain) != 0) {
        char q[128];
        config_quote(s, q, sizeof q);
        snprintf(why, n, "%s is not in the mesh's trust domain \"%s\"", q, trust_domain);
        return -1;
    }
    return 0;
}

int config_parse_duration(const char *s, int64_t *ms_out, char *why, size_t n)
{
    char q[128];
    config_quote(s, q, sizeof q);
    if (!s || !*s) {
        snprintf(why, n, "must be a duration like \"250ms\", \"2s\" or \"1m\", got \"\"");
        return -1;
    }
    if (s[0] == '-') {
        snprintf(why, n, "must not be negative, got %s", q);
        return -1;
    }
    size_t digits = strspn(s, "0123456789");
    const char *unit = s + digits;
    int64_t mult = 0;
    if (strcmp(unit, "ms") == 0)
        mult = 1;
    else if (strcmp(unit, "s") == 0)
        mult = 1000;
    else if (strcmp(unit, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(unit, "h") == 0)
        mult = 3600 * 1000;
    if (digits == 0 || mult == 0) {
        snprintf(why, n,
                 "must be a whole number with a unit ms, s, m or h (like \"250ms\", \"2s\", "
                 "\"1m\"), got %s",
                 q);
        return -1;
    }
    int64_t v = 0;
    for (size_t i = 0; i < digits; i++) {
        v = v * 10 + (s[i] - '0');
        if (v > CONFIG_MAX_DURATION_MS) {
            snprintf(why, n, "must be at most 24h, got %s", q);
            return -1;
        }
    }
    if (v > CONFIG_MAX_DURATION_MS / mult) {
        snprintf(why, n, "must be at most 24h, got %s", q);
        return -1;
    }
    *ms_out = v * mult;
    return 0;
}

void config_format_duration(int64_t ms, char *buf, size_t n)
{
    if (ms != 0 && ms % (3600 * 1000) == 0)
        snprintf(buf, n, "%lldh", (long long)(ms / (3600 * 1000)));
    else if (ms != 0 && ms % (60 * 1000) == 0)
        snprintf(buf, n, "%lldm", (long long)(ms / (60 * 1000)));
    else if (ms % 1000 == 0)
        snprintf(buf, n, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, n, "%lldms", (long long)ms);
}

typedef struct dup_entry {
    const char *s;
    size_t idx;
} dup_entry;

static int cmp_dup(const void *a, const void *b)
{
    const dup_entry *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static int cmp_dup_icase(const void *a, const void *b)
{
    const dup_entry *x = a, *y = b;
    int c = strcasecmp(x->s, y->s);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

int config_first_dup(char *const *v, size_t n, int icase, size_t *dup, size_t *first)
{
    if (n < 2)
        return 0;
    dup_entry *e = malloc(n * sizeof *e);
    if (!e)
        return -1;
    for (size_t i = 0; i < n; i++)
        e[i] = (dup_entry){v[i] ? v[i] : "", i};
    int (*cmp)(const void *, const void *) = icase ? cmp_dup_icase : cmp_dup;
    qsort(e, n, sizeof *e, cmp);
    int found = 0;
    size_t group = 0;
    for (size_t j = 1; j < n; j++) {
        int same = icase ? strcasecmp(e[j].s, e[j - 1].s) == 0 : strcmp(e[j].s, e[j - 1].s) == 0;
        if (!same) {
            group = j;
            continue;
        }
        if (!found || e[j].idx < *dup) {
            *dup = e[j].idx;
            *first = e[group].idx;
            found = 1;
        }
    }
    free(e);
    return found;
}
