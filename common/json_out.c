/* common/json_out.c — streaming JSON writer (see json_out.h). */
#include "common/json_out.h"

#include "common/escape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_init(json_out *j) { memset(j, 0, sizeof *j); }

void json_free(json_out *j)
{
    free(j->buf);
    memset(j, 0, sizeof *j);
}

static void put(json_out *j, const char *s, size_t n)
{
    if (j->oom)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *nb = realloc(j->buf, cap);
        if (!nb) {
            j->oom = 1;
            return;
        }
        j->buf = nb;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void puts_(json_out *j, const char *s) { put(j, s, strlen(s)); }

const char *json_text(json_out *j)
{
    if (j->oom)
        return NULL;
    if (!j->buf)
        put(j, "", 0);
    return j->oom ? NULL : j->buf;
}

/* Called before every value or key: writes the separating comma. */
static void sep(json_out *j)
{
    if (j->need_comma)
        put(j, ",", 1);
    j->need_comma = 1;
}

void json_obj_begin(json_out *j) { sep(j); put(j, "{", 1); j->need_comma = 0; }
void json_obj_end(json_out *j) { put(j, "}", 1); j->need_comma = 1; }
void json_arr_begin(json_out *j) { sep(j); put(j, "[", 1); j->need_comma = 0; }
void json_arr_end(json_out *j) { put(j, "]", 1); j->need_comma = 1; }

/* RFC 8259 string: quotes, backslashes and every control character escaped
 * (DEL and C1 controls too, and U+2028/U+2029, which some JavaScript and
 * log viewers take as line breaks). The output is always valid UTF-8: each
 * byte that is not part of a valid UTF-8 sequence becomes U+FFFD, as Go's
 * encoding/json does (JSON has no way to carry raw bytes). */
static void escaped(json_out *j, const char *s)
{
    put(j, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        char esc[8];
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x7f) {
            if (c == '"')
                puts_(j, "\\\"");
            else if (c == '\\')
                puts_(j, "\\\\");
            else
                put(j, (const char *)p + i, 1);
            i++;
            continue;
        }
        if (c < 0x80) {
            switch (c) {
            case '\n': puts_(j, "\\n"); break;
            case '\r': puts_(j, "\\r"); break;
            case '\t': puts_(j, "\\t"); break;
            default:
                snprintf(esc, sizeof esc, "\\u%04x", c);
                puts_(j, esc);
            }
            i++;
            continue;
        }
        uint32_t cp;
        size_t len = mesh_utf8_decode(p + i, n - i, &cp);
        if (len == 0) {
            puts_(j, "\\ufffd");
            i++;
        } else if (mesh_escape_is_format_char(cp)) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
            puts_(j, esc);
            i += len;
        } else {
            put(j, (const char *)p + i, len);
            i += len;
        }
    }
    put(j, "\"", 1);
}

void json_key(json_out *j, const char *key)
{
    sep(j);
    escaped(j, key);
    put(j, ":", 1);
    j->need_comma = 0;
}

void json_str(json_out *j, const char *s)
{
    sep(j);
    if (s)
        escaped(j, s);
    else
        puts_(j, "null");
}

void json_raw(json_out *j, const char *value)
{
    sep(j);
    puts_(j, value);
}

void json_raw_members(json_out *j, const char *members)
{
    if (!members || !*members)
        return;
    sep(j);
    puts_(j, members);
}

void json_int(json_out *j, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    sep(j);
    puts_(j, b);
}

void json_num(json_out *j, double v)
{
    char b[64];
    snprintf(b, sizeof b, "%.6g", v);
    sep(j);
    puts_(j, b);
}

void json_bool(json_out *j, int v) { sep(j); puts_(j, v ? "true" : "false"); }
void json_null(json_out *j) { sep(j); puts_(j, "null"); }

void json_key_str(json_out *j, const char *key, const char *s) { json_key(j, key); json_str(j, s); }
void json_key_int(json_out *j, const char *key, int64_t v) { json_key(j, key); json_int(j, v); }
void json_key_bool(json_out *j, const char *key, int v) { json_key(j, key); json_bool(j, v); }
