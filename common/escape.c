/* common/escape.c — visible escapes for control characters and invalid UTF-8 (see escape.h). */
#include "common/escape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t mesh_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    unsigned char b = p[0];
    size_t len;
    uint32_t v, min;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if (b >= 0xc2 && b <= 0xdf) {
        len = 2, v = b & 0x1f, min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3, v = b & 0x0f, min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4, v = b & 0x07, min = 0x10000;
    } else {
        return 0; /* continuation byte, 0xc0/0xc1 (always overlong) or 0xf5.. */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

int mesh_escape_is_format_char(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || cp == 0x200e ||
           cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The escaped form of the unit at s (one byte or one UTF-8 sequence): *used
 * gets how many input bytes it covers; returns the bytes written to unit
 * (at most 7), or 0 when the unit is copied as it is. */
static size_t escape_unit(const unsigned char *s, size_t n, unsigned flags, char unit[8],
                          size_t *used)
{
    unsigned char b = s[0];
    *used = 1;
    if (b == '"' && (flags & MESH_ESC_QUOTES))
        return (size_t)snprintf(unit, 8, "\\x%02x", b);
    if (b >= 0x20 && b < 0x7f)
        return 0;
    if (b == '\n' || b == '\t') {
        if (flags & MESH_ESC_KEEP_LINES)
            return 0;
        unit[0] = '\\';
        unit[1] = b == '\n' ? 'n' : 't';
        return 2;
    }
    if (b == '\r') {
        memcpy(unit, "\\r", 2);
        return 2;
    }
    if (b < 0x80) /* other C0 controls and DEL */
        return (size_t)snprintf(unit, 8, "\\x%02x", b);
    uint32_t cp;
    size_t len = mesh_utf8_decode(s, n, &cp);
    if (len == 0) /* one invalid byte; decoding resumes at the next */
        return (size_t)snprintf(unit, 8, "\\x%02x", b);
    *used = len;
    if (mesh_escape_is_format_char(cp))
        return (size_t)snprintf(unit, 8, "\\u%04x", (unsigned)cp);
    return 0;
}

size_t mesh_escape(const char *s, size_t len, unsigned flags, char *out, size_t out_len)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    if (!s)
        len = 0;
    size_t need = 0, w = 0;
    int full = out_len == 0;
    for (size_t i = 0; i < len;) {
        char unit[8];
        size_t used;
        size_t ulen = escape_unit(p + i, len - i, flags, unit, &used);
        const char *src = ulen ? unit : (const char *)p + i;
        size_t sl = ulen ? ulen : used;
        if (!full && w + sl < out_len) {
            memcpy(out + w, src, sl);
            w += sl;
        } else {
            full = 1; /* once something does not fit, nothing after it is written */
        }
        need += sl;
        i += used;
    }
    if (out_len)
        out[w] = '\0';
    return need;
}

const char *mesh_escape_str(const char *s, char *out, size_t out_len)
{
    s = s ? s : "";
    mesh_escape(s, strlen(s), 0, out, out_len);
    return out;
}

char *mesh_escape_dup(const char *s, unsigned flags)
{
    s = s ? s : "";
    size_t len = strlen(s);
    size_t need = mesh_escape(s, len, flags, NULL, 0);
    char *out = malloc(need + 1);
    if (out)
        mesh_escape(s, len, flags, out, need + 1);
    return out;
}

int mesh_escape_is_clean(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        char unit[8];
        size_t used;
        if (escape_unit(p + i, len - i, 0, unit, &used) != 0)
            return 0;
        i += used;
    }
    return 1;
}
