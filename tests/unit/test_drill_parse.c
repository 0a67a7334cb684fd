/* tests/unit/test_drill_parse.c — the strict parsers the drill's report tests
 * read their output with: RFC 8259 JSON into a small tree (no trailing commas,
 * duplicate keys, NaN, bad escapes, lone surrogates or invalid UTF-8) and XML
 * well-formedness into an element tree (one root, balanced tags, quoted unique
 * attributes, only the predefined and numeric entities). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/test_drill_util.h"

/* ---- a strict JSON parser ---------------------------------------------------------- */

typedef struct jp {
    const char *start, *p;
    char *err;
    size_t errlen;
    int depth;
} jp;

static int jfail(jp *j, const char *why)
{
    if (!j->err[0])
        snprintf(j->err, j->errlen, "%s at offset %ld", why, (long)(j->p - j->start));
    return -1;
}

static void jws(jp *j)
{
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
        j->p++;
}

static int put_utf8(char **buf, size_t *len, size_t *cap, unsigned cp)
{
    char tmp[4];
    size_t n;
    if (cp < 0x80) {
        tmp[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xc0 | (cp >> 6));
        tmp[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (char)(0xe0 | (cp >> 12));
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        tmp[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        tmp[0] = (char)(0xf0 | (cp >> 18));
        tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        tmp[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (*len + n + 1 > *cap) {
        *cap = (*cap + n + 1) * 2;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            abort();
    }
    memcpy(*buf + *len, tmp, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* One UTF-8 sequence at p (well-formed, shortest form, no surrogates). */
static int utf8_seq(const unsigned char *p, unsigned *cp)
{
    int n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (!n || (n == 2 && p[0] > 0xdf) || (n == 3 && p[0] > 0xef))
        return -1;
    unsigned v = p[0] & (0xff >> (n + 1));
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return -1;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
        (v >= 0xd800 && v <= 0xdfff))
        return -1;
    *cp = v;
    return n;
}

static int jstring(jp *j, char **out)
{
    if (*j->p != '"')
        return jfail(j, "expected a string");
    j->p++;
    size_t len = 0, cap = 16;
    char *buf = calloc(1, cap);
    for (;;) {
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c == '\0' || c < 0x20) {
            free(buf);
            return jfail(j, c ? "unescaped control character in a string" : "unterminated string");
        }
        unsigned cp;
        if (c == '\\') {
            char e = j->p[1];
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e && simple) {
                static const char map[] = "\"\\/\b\f\n\r\t";
                cp = (unsigned char)map[simple - "\"\\/bfnrt"];
                j->p += 2;
            } else if (e == 'u') {
                if (hex4(j->p + 2, &cp) != 0) {
                    free(buf);
                    return jfail(j, "bad \\u escape");
                }
                j->p += 6;
                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    free(buf);
                    return jfail(j, "lone low surrogate");
                }
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned lo;
                    if (j->p[0] != '\\' || j->p[1] != 'u' || hex4(j->p + 2, &lo) != 0 ||
                        lo < 0xdc00 || lo > 0xdfff) {
                        free(buf);
                        return jfail(j, "lone high surrogate");
                    }
                    j->p += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                if (cp == 0) {
                    free(buf);
                    return jfail(j, "\\u0000 in a string");
                }
            } else {
                free(buf);
                return jfail(j, "bad escape");
            }
        } else if (c < 0x80) {
            cp = c;
            j->p++;
        } else {
            int n = utf8_seq((const unsigned char *)j->p, &cp);
            if (n < 0) {
                free(buf);
                return jfail(j, "invalid UTF-8 in a string");
            }
            j->p += n;
        }
        put_utf8(&buf, &len, &cap, cp);
    }
    *out = buf;
    return 0;
}

static int jnumber(jp *j, double *out)
{
    const char *s = j->p, *p = s;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (isdigit((unsigned char)*p))
            p++;
    else
        return jfail(j, "bad number");
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return jfail(j, "bad fraction");
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return jfail(j, "bad exponent");
        while (isdigit((unsigned char)*p))
            p++;
    }
    char tmp[64];
    if ((size_t)(p - s) >= sizeof tmp)
        return jfail(j, "number too long");
    memcpy(tmp, s, (size_t)(p - s));
    tmp[p - s] = '\0';
    *out = strtod(tmp, NULL);
    j->p = p;
    return 0;
}

static int jvalue(jp *j, tj *v);

static int jlist(jp *j, tj *v, int is_obj)
{
    char close = is_obj ? '}' : ']';
    j->p++;
    if (++j->depth > 64)
        return jfail(j, "nested too deep");
    jws(j);
    if (*j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        if (is_obj) {
            jws(j);
            if (jstring(j, &key) != 0)
                return -1;
            for (size_t i = 0; i < v->n; i++)
                if (strcmp(v->keys[i], key) == 0) {
                    free(key);
                    return jfail(j, "duplicate key");
                }
            jws(j);
            if (*j->p != ':') {
                free(key);
                return jfail(j, "expected ':'");
            }
            j->p++;
        }
        v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
        v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys);
        if (!v->items || !v->keys)
            abort();
        memset(&v->items[v->n], 0, sizeof v->items[0]);
        v->keys[v->n] = key;
        v->n++;
        jws(j);
        if (jvalue(j, &v->items[v->n - 1]) != 0)
            return -1;
        jws(j);
        if (*j->p == ',') {
            j->p++;
            jws(j);
            if (*j->p == close)
                return jfail(j, "trailing comma");
            continue;
        }
        if (*j->p == close) {
            j->p++;
            j->depth--;
            return 0;
        }
        return jfail(j, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int jvalue(jp *j, tj *v)
{
    memset(v, 0, sizeof *v);
    switch (*j->p) {
    case '{': v->type = TJ_OBJ; return jlist(j, v, 1);
    case '[': v->type = TJ_ARR; return jlist(j, v, 0);
    case '"': v->type = TJ_STR; return jstring(j, &v->str);
    case 't':
        if (strncmp(j->p, "true", 4) != 0)
            return jfail(j, "bad literal");
        v->type = TJ_BOOL;
        v->b = 1;
        j->p += 4;
        return 0;
    case 'f':
        if (strncmp(j->p, "false", 5) != 0)
            return jfail(j, "bad literal");
        v->type = TJ_BOOL;
        j->p += 5;
        return 0;
    case 'n':
        if (strncmp(j->p, "null", 4) != 0)
            return jfail(j, "bad literal");
        v->type = TJ_NULL;
        j->p += 4;
        return 0;
    default:
        if (*j->p == '-' || isdigit((unsigned char)*j->p)) {
            v->type = TJ_NUM;
            return jnumber(j, &v->num);
        }
        return jfail(j, "expected a value");
    }
}

static void tj_free_members(tj *v)
{
    for (size_t i = 0; i < v->n; i++) {
        tj_free_members(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

void tj_free(tj *v)
{
    if (!v)
        return;
    tj_free_members(v);
    free(v);
}

tj *tj_parse(const char *text, char *err, size_t errlen)
{
    jp j = {.start = text, .p = text, .err = err, .errlen = errlen};
    err[0] = '\0';
    tj *v = calloc(1, sizeof *v);
    jws(&j);
    int rc = jvalue(&j, v);
    if (rc == 0) {
        jws(&j);
        if (*j.p)
            rc = jfail(&j, "text after the value");
    }
    if (rc != 0) {
        tj_free(v);
        return NULL;
    }
    return v;
}

const tj *tj_at(const tj *v, const char *path)
{
    char seg[128];
    const char *p = path;
    while (v && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof seg)
            return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        p += n;
        if (*p == '.')
            p++;
        const tj *next = NULL;
        if (v->type == TJ_OBJ) {
            for (size_t i = 0; i < v->n && !next; i++)
                if (strcmp(v->keys[i], seg) == 0)
                    next = &v->items[i];
        } else if (v->type == TJ_ARR && seg[0] && strspn(seg, "0123456789") == n) {
            size_t idx = (size_t)strtoul(seg, NULL, 10);
            if (idx < v->n)
                next = &v->items[idx];
        }
        v = next;
    }
    return v;
}

int tj_has(const tj *obj, const char *key)
{
    if (!obj || obj->type != TJ_OBJ)
        return 0;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return 1;
    return 0;
}

/* ---- a strict XML checker ---------------------------------------------------------- */

typedef struct xp {
    const char *start, *p;
    char *err;
    size_t errlen;
    int depth;
} xp;

static int xfail(xp *x, const char *why)
{
    if (!x->err[0])
        snprintf(x->err, x->errlen, "%s at offset %ld", why, (long)(x->p - x->start));
    return -1;
}

static int xname_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static int xname_char(char c)
{
    return xname_start(c) || isdigit((unsigned char)c) || c == '-' || c == '.';
}

static char *xname(xp *x)
{
    if (!xname_start(*x->p)) {
        xfail(x, "expected a name");
        return NULL;
    }
    const char *s = x->p;
    while (xname_char(*x->p))
        x->p++;
    return strndup(s, (size_t)(x->p - s));
}

static void xws(xp *x)
{
    while (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r')
        x->p++;
}

static void sb_add(char **buf, size_t *len, const char *s, size_t n)
{
    *buf = realloc(*buf, *len + n + 1);
    if (!*buf)
        abort();
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* Decodes one reference at x->p ('&'), appending it. */
static int xref(xp *x, char **buf, size_t *len)
{
    static const struct { const char *name; char ch; } ents[] = {
        {"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    x->p++;
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++)
        if (strncmp(x->p, ents[i].name, strlen(ents[i].name)) == 0) {
            x->p += strlen(ents[i].name);
            sb_add(buf, len, &ents[i].ch, 1);
            return 0;
        }
    if (*x->p == '#') {
        x->p++;
        int hex = *x->p == 'x';
        if (hex)
            x->p++;
        char *end;
        unsigned long cp = strtoul(x->p, &end, hex ? 16 : 10);
        if (end == x->p || *end != ';' || !(cp == 0x9 || cp == 0xa || cp == 0xd ||
                                            (cp >= 0x20 && cp <= 0xd7ff) ||
                                            (cp >= 0xe000 && cp <= 0x10ffff)))
            return xfail(x, "bad character reference");
        x->p = end + 1;
        char *u = NULL;
        size_t ul = 0, ucap = 0;
        put_utf8(&u, &ul, &ucap, (unsigned)cp);
        sb_add(buf, len, u, ul);
        free(u);
        return 0;
    }
    return xfail(x, "unknown entity (only &amp; &lt; &gt; &quot; &apos; and &#N;)");
}

/* Character data up to the next '<' (or a quote when quote != 0). */
static int xchars(xp *x, char quote, char **buf, size_t *len)
{
    while (*x->p && *x->p != '<' && *x->p != quote) {
        unsigned char c = (unsigned char)*x->p;
        if (c == '&') {
            if (xref(x, buf, len) != 0)
                return -1;
            continue;
        }
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return xfail(x, "control character");
        if (!quote && strncmp(x->p, "]]>", 3) == 0)
            return xfail(x, "']]>' in text");
        if (c >= 0x80) {
            unsigned cp;
            int n = utf8_seq((const unsigned char *)x->p, &cp);
            if (n < 0)
                return xfail(x, "invalid UTF-8");
            sb_add(buf, len, x->p, (size_t)n);
            x->p += n;
            continue;
        }
        sb_add(buf, len, x->p, 1);
        x->p++;
    }
    return 0;
}

static int xcomment(xp *x)
{
    x->p += 4;   /* "<!--" */
    const char *end = strstr(x->p, "--");
    if (!end || end[2] != '>')
        return xfail(x, "bad comment");
    x->p = end + 3;
    return 0;
}

static void xmisc(xp *x)
{
    for (;;) {
        xws(x);
        if (strncmp(x->p, "<!--", 4) != 0 || xcomment(x) != 0)
            return;
    }
}

static int xelement(xp *x, tx_el **out);

static int xcontent(xp *x, tx_el *e)
{
    size_t tlen = 0;
    e->text = calloc(1, 1);
    for (;;) {
        if (xchars(x, 0, &e->text, &tlen) != 0)
            return -1;
        if (!*x->p)
            return xfail(x, "unclosed element");
        if (strncmp(x->p, "</", 2) == 0)
            return 0;
        if (strncmp(x->p, "<!--", 4) == 0) {
            if (xcomment(x) != 0)
                return -1;
            continue;
        }
        if (x->p[1] == '!' || x->p[1] == '?')
            return xfail(x, "CDATA, doctype or processing instruction in content");
        tx_el *kid = NULL;
        if (xelement(x, &kid) != 0) {
            tx_free(kid);
            return -1;
        }
        e->kids = realloc(e->kids, (e->n_kids + 1) * sizeof *e->kids);
        if (!e->kids)
            abort();
        e->kids[e->n_kids++] = kid;
    }
}

static int xelement(xp *x, tx_el **out)
{
    if (*x->p != '<')
        return xfail(x, "expected an element");
    if (++x->depth > 64)
        return xfail(x, "nested too deep");
    x->p++;
    tx_el *e = calloc(1, sizeof *e);
    *out = e;
    if (!(e->name = xname(x)))
        return -1;
    for (;;) {
        const char *before = x->p;
        xws(x);
        if (*x->p == '/' || *x->p == '>')
            break;
        if (x->p == before)
            return xfail(x, "expected whitespace before an attribute");
        char *an = xname(x);
        if (!an)
            return -1;
        for (size_t i = 0; i < e->n_attrs; i++)
            if (strcmp(e->attrs[i].name, an) == 0) {
                free(an);
                return xfail(x, "duplicate attribute");
            }
        e->attrs = realloc(e->attrs, (e->n_attrs + 1) * sizeof *e->attrs);
        if (!e->attrs)
            abort();
        e->attrs[e->n_attrs].name = an;
        e->attrs[e->n_attrs].value = calloc(1, 1);
        e->n_attrs++;
        xws(x);
        if (*x->p != '=')
            return xfail(x, "expected '=' after an attribute name");
        x->p++;
        xws(x);
        char q = *x->p;
        if (q != '"' && q != '\'')
            return xfail(x, "unquoted attribute value");
        x->p++;
        size_t vlen = 0;
        if (xchars(x, q, &e->attrs[e->n_attrs - 1].value, &vlen) != 0)
            return -1;
        if (*x->p != q)
            return xfail(x, "'<' in an attribute value");
        x->p++;
    }
    if (x->p[0] == '/') {
        if (x->p[1] != '>')
            return xfail(x, "expected '/>'");
        x->p += 2;
        e->text = calloc(1, 1);
        x->depth--;
        return 0;
    }
    x->p++;
    if (xcontent(x, e) != 0)
        return -1;
    x->p += 2;
    size_t nl = strlen(e->name);
    if (strncmp(x->p, e->name, nl) != 0 || xname_char(x->p[nl]))
        return xfail(x, "mismatched end tag");
    x->p += nl;
    xws(x);
    if (*x->p != '>')
        return xfail(x, "expected '>' in an end tag");
    x->p++;
    x->depth--;
    return 0;
}

void tx_free(tx_el *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_attrs; i++) {
        free(e->attrs[i].name);
        free(e->attrs[i].value);
    }
    for (size_t i = 0; i < e->n_kids; i++)
        tx_free(e->kids[i]);
    free(e->attrs);
    free(e->kids);
    free(e->name);
    free(e->text);
    free(e);
}

tx_el *tx_parse(const char *doc, char *err, size_t errlen)
{
    xp x = {.start = doc, .p = doc, .err = err, .errlen = errlen};
    err[0] = '\0';
    if (strncmp(x.p, "<?xml", 5) == 0) {
        const char *end = strstr(x.p, "?>");
        if (!end || (x.p[5] != ' ' && x.p[5] != '?')) {
            xfail(&x, "bad XML declaration");
            return NULL;
        }
        x.p = end + 2;
    }
    xmisc(&x);
    tx_el *root = NULL;
    if (strncmp(x.p, "<!", 2) == 0 || strncmp(x.p, "<?", 2) == 0 || xelement(&x, &root) != 0) {
        xfail(&x, "no root element");
        tx_free(root);
        return NULL;
    }
    xmisc(&x);
    if (*x.p) {
        xfail(&x, "content after the root element");
        tx_free(root);
        return NULL;
    }
    return root;
}

const char *tx_attr_get(const tx_el *e, const char *name)
{
    for (size_t i = 0; i < e->n_attrs; i++)
        if (strcmp(e->attrs[i].name, name) == 0)
            return e->attrs[i].value;
    return NULL;
}

void tx_walk(const tx_el *e, void (*fn)(const tx_el *el, void *arg), void *arg)
{
    fn(e, arg);
    for (size_t i = 0; i < e->n_kids; i++)
        tx_walk(e->kids[i], fn, arg);
}
