/* drill/drill_certs.c — reading a sidecar's admin /certs answer: the serial,
 * notBefore and notAfter of its "current" SVID.
 *
 * /certs is our own admin output (sidecar/proxy_admin.c) with a fixed shape, so a
 * scanner for a few keys inside the "current" object is enough; it still checks
 * every value's type and fails on anything it does not expect. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "drill/drill_outage.h"

int drill_parse_time(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (int64_t)t;
    return 0;
}

/* Finds "key": inside [p, end) at the top level of that object; returns a pointer
 * to the value's first character or NULL. Strings are skipped as whole tokens so
 * a key-like text inside a value cannot match. */
static const char *find_key(const char *p, const char *end, const char *key)
{
    size_t kl = strlen(key);
    int depth = 0;
    while (p < end) {
        if (*p == '"') {
            const char *s = ++p;
            while (p < end && *p != '"') {
                if (*p == '\\' && p + 1 < end)
                    p++;
                p++;
            }
            if (p >= end)
                return NULL;
            size_t len = (size_t)(p - s);
            p++;
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
            if (depth == 0 && p < end && *p == ':' && len == kl && memcmp(s, key, kl) == 0) {
                p++;
                while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                    p++;
                return p;
            }
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if (*p == '}' || *p == ']')
            depth--;
        p++;
    }
    return NULL;
}

static int get_str(const char *p, const char *end, const char *key, char *out, size_t len)
{
    const char *v = find_key(p, end, key);
    if (!v || *v != '"')
        return -1;
    v++;
    size_t o = 0;
    while (v < end && *v != '"') {
        if (*v == '\\' || o + 1 >= len)
            return -1;   /* our values (hex, dates, SPIFFE IDs) never need escapes */
        out[o++] = *v++;
    }
    if (v >= end)
        return -1;
    out[o] = '\0';
    return 0;
}

int drill_parse_certs(const char *body, drill_svid *out)
{
    memset(out, 0, sizeof *out);
    size_t bl = strlen(body);
    const char *b = body, *end = body + bl;
    while (b < end && *b != '{')
        b++;
    if (b >= end)
        return -1;
    const char *cur = find_key(b + 1, end, "current");
    if (!cur)
        return -1;
    if (strncmp(cur, "null", 4) == 0)
        return 0;   /* no SVID yet */
    if (*cur != '{')
        return -1;
    /* The object's end: the first '}' (its values hold no braces). */
    const char *cend = memchr(cur, '}', (size_t)(end - cur));
    if (!cend)
        return -1;
    char nb[40], na[40];
    if (get_str(cur + 1, cend, "serial", out->serial, sizeof out->serial) != 0 ||
        get_str(cur + 1, cend, "not_before", nb, sizeof nb) != 0 ||
        get_str(cur + 1, cend, "not_after", na, sizeof na) != 0 ||
        drill_parse_time(nb, &out->not_before) != 0 || drill_parse_time(na, &out->not_after) != 0 ||
        !out->serial[0])
        return -1;
    out->present = 1;
    return 0;
}
