/* config/config_yaml.c — libyaml loading and typed node access for the config parser.
 *
 * Loading is two passes over the (at most 4 MiB) input: an event pass that
 * reports syntax errors with libyaml's own wording, rejects aliases at the
 * line where they are used, and rejects a second document; then the document
 * API builds the node tree we walk. Aliases are refused because a few of
 * them nested in lists expand exponentially (a "billion laughs" config), and
 * written-out configs are easier to review anyway. */
#include "config/config_yaml_internal.h"
#include "common/suggest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_null_text(const char *v, size_t len)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (strlen(nulls[i]) == len && memcmp(nulls[i], v, len) == 0)
            return 1;
    return 0;
}

size_t cfg_line(const yaml_node_t *n)
{
    return n ? n->start_mark.line + 1 : 0;
}

static size_t line_of_offset(const char *buf, size_t len, size_t off)
{
    size_t line = 1;
    for (size_t i = 0; i < off && i < len; i++)
        if (buf[i] == '\n')
            line++;
    return line;
}

static int syntax_error(const yaml_parser_t *p, const char *file, const char *buf, size_t len,
                        mesh_err *err)
{
    const char *problem = p->problem ? p->problem : "unknown error";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return mesh_err_set(err, MESH_ENOMEM, "%s: out of memory while reading YAML", file);
    case YAML_READER_ERROR:
        /* encoding problems carry a byte offset rather than a mark */
        return mesh_err_set(err, MESH_EINVAL, "%s:%zu: YAML syntax error: %s (byte offset %zu)",
                            file, line_of_offset(buf, len, p->problem_offset), problem,
                            p->problem_offset);
    default:
        if (p->context)
            return mesh_err_set(err, MESH_EINVAL, "%s:%zu: YAML syntax error: %s (%s at line %zu)",
                                file, p->problem_mark.line + 1, problem, p->context,
                                p->context_mark.line + 1);
        return mesh_err_set(err, MESH_EINVAL, "%s:%zu: YAML syntax error: %s", file,
                            p->problem_mark.line + 1, problem);
    }
}

/* The event pass. *doc_index_out = index of the one non-empty document, or -1. */
static int scan_events(const char *file, const char *buf, size_t len, int *doc_index_out,
                       mesh_err *err)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return mesh_err_set(err, MESH_ENOMEM, "%s: out of memory initialising the YAML parser",
                            file);
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    int rc = MESH_OK;
    int doc_index = -1, found = -1;
    int expect_root = 0;
    int depth = 0;
    size_t first_line = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = syntax_error(&p, file, buf, len, err);
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            /* Stop before libyaml's scanner goes quadratic on deep flow
             * nesting ("[[[[..." takes minutes at 100k levels); the schema
             * itself is 8 levels deep. */
            if (++depth > CONFIG_MAX_DEPTH)
                rc = mesh_err_set(err, MESH_EINVAL,
                                  "%s:%zu: nested more than %d levels deep; no mesh config field "
                                  "is that deep",
                                  file, ev.start_mark.line + 1, CONFIG_MAX_DEPTH);
        } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        if (rc != MESH_OK) {
            /* reported above */
        } else if (t == YAML_DOCUMENT_START_EVENT) {
            doc_index++;
            expect_root = 1;
        } else if (t == YAML_ALIAS_EVENT) {
            rc = mesh_err_set(err, MESH_EINVAL,
                              "%s:%zu: YAML aliases (*%s) are not supported; write the value out",
                              file, ev.start_mark.line + 1, (const char *)ev.data.alias.anchor);
        } else if (expect_root && (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT ||
                                   t == YAML_MAPPING_START_EVENT)) {
            expect_root = 0;
            int empty = t == YAML_SCALAR_EVENT &&
                        ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                        is_null_text((const char *)ev.data.scalar.value, ev.data.scalar.length);
            if (!empty) {
                if (found >= 0) {
                    rc = mesh_err_set(err, MESH_EINVAL,
                                      "%s:%zu: a second YAML document starts here (the first is "
                                      "at line %zu); put every resource in one document, or "
                                      "apply the files one by one",
                                      file, ev.start_mark.line + 1, first_line);
                } else {
                    found = doc_index;
                    first_line = ev.start_mark.line + 1;
                }
            }
        }
        yaml_event_delete(&ev);
        if (rc != MESH_OK || t == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&p);
    *doc_index_out = found;
    return rc;
}

int cfg_load(cfg_ctx *c, const char *file, const char *buf, size_t len, mesh_err *err)
{
    memset(c, 0, sizeof *c);
    c->file = file;
    c->err = err;
    int want = -1;
    int rc = scan_events(file, buf, len, &want, err);
    if (rc != MESH_OK || want < 0)
        return rc;

    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return mesh_err_set(err, MESH_ENOMEM, "%s: out of memory initialising the YAML parser",
                            file);
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    for (int i = 0; i <= want; i++) {
        if (!yaml_parser_load(&p, &c->doc)) {
            rc = syntax_error(&p, file, buf, len, err);
            break;
        }
        if (i < want) {
            yaml_document_delete(&c->doc);
            continue;
        }
        c->have_doc = 1;
        c->root = yaml_document_get_root_node(&c->doc);
    }
    yaml_parser_delete(&p);
    if (rc != MESH_OK)
        return rc;
    if (!c->root) {
        cfg_unload(c);
        return mesh_err_set(err, MESH_EINTERNAL, "%s: YAML document vanished on the second pass",
                            file);
    }
    return MESH_OK;
}

void cfg_unload(cfg_ctx *c)
{
    if (c->have_doc)
        yaml_document_delete(&c->doc);
    c->have_doc = 0;
    c->root = NULL;
}

int cfg_fail(cfg_ctx *c, const yaml_node_t *at, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->path_len)
        return mesh_err_set(c->err, MESH_EINVAL, "%s:%zu: %s: %s", c->file, cfg_line(at), c->path,
                            msg);
    return mesh_err_set(c->err, MESH_EINVAL, "%s:%zu: %s", c->file, cfg_line(at), msg);
}

static void path_append(cfg_ctx *c, const char *s)
{
    size_t room = sizeof c->path - c->path_len;
    int w = snprintf(c->path + c->path_len, room, "%s", s);
    if (w < 0 || (size_t)w >= room)
        c->path_len = sizeof c->path - 1;
    else
        c->path_len += (size_t)w;
}

size_t cfg_push_key(cfg_ctx *c, const char *key)
{
    size_t mark = c->path_len;
    if (c->path_len)
        path_append(c, ".");
    path_append(c, key);
    return mark;
}

size_t cfg_push_index(cfg_ctx *c, size_t i)
{
    size_t mark = c->path_len;
    char b[32];
    snprintf(b, sizeof b, "[%zu]", i);
    path_append(c, b);
    return mark;
}

void cfg_pop(cfg_ctx *c, size_t mark)
{
    c->path_len = mark;
    c->path[mark] = '\0';
}

yaml_node_t *cfg_node(cfg_ctx *c, int index)
{
    return yaml_document_get_node(&c->doc, index);
}

int cfg_is_null(const yaml_node_t *n)
{
    return !n || (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                  is_null_text((const char *)n->data.scalar.value, n->data.scalar.length));
}

const char *cfg_type_name(const yaml_node_t *n)
{
    if (cfg_is_null(n))
        return "null";
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

static const char *scalar_text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A scalar whose text has an embedded NUL cannot be represented in C strings. */
static int scalar_has_nul(const yaml_node_t *n)
{
    return strlen(scalar_text(n)) != n->data.scalar.length;
}

int cfg_expect_mapping(cfg_ctx *c, yaml_node_t *n)
{
    if (!n || n->type != YAML_MAPPING_NODE)
        return cfg_fail(c, n, "must be a mapping, got %s", cfg_type_name(n));
    return MESH_OK;
}

static int key_is_plain_word(const char *k)
{
    if (!*k || strlen(k) > 64)
        return 0;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return 0;
    return 1;
}

int cfg_map(cfg_ctx *c, yaml_node_t *map, cfg_field *fields, size_t n)
{
    int rc = cfg_expect_mapping(c, map);
    if (rc != MESH_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        fields[i].value = fields[i].keynode = NULL;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = cfg_node(c, pr->key);
        yaml_node_t *v = cfg_node(c, pr->value);
        if (!k || k->type != YAML_SCALAR_NODE || cfg_is_null(k) || scalar_has_nul(k))
            return cfg_fail(c, k, "keys must be non-empty strings, got %s", cfg_type_name(k));
        const char *ks = scalar_text(k);
        cfg_field *f = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(fields[i].key, ks) == 0)
                f = &fields[i];
        char shown[128];
        if (key_is_plain_word(ks))
            snprintf(shown, sizeof shown, "%s", ks);
        else
            config_quote(ks, shown, sizeof shown);
        if (!f) {
            const char *names[16];
            size_t nn = n < 16 ? n : 16;
            char list[256] = "";
            size_t used = 0;
            for (size_t i = 0; i < nn; i++) {
                names[i] = fields[i].key;
                int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                 fields[i].key);
                if (w > 0 && (size_t)w < sizeof list - used)
                    used += (size_t)w;
            }
            const char *hint = mesh_suggest(ks, names, nn);
            size_t mark = cfg_push_key(c, shown);
            if (hint)
                rc = cfg_fail(c, k, "unknown field; did you mean \"%s\"?", hint);
            else
                rc = cfg_fail(c, k, "unknown field (expected one of: %s)", list);
            cfg_pop(c, mark);
            return rc;
        }
        if (f->keynode) {
            size_t mark = cfg_push_key(c, shown);
            rc = cfg_fail(c, k, "duplicate key (first set at line %zu)", cfg_line(f->keynode));
            cfg_pop(c, mark);
            return rc;
        }
        f->keynode = k;
        f->value = v;
    }
    return MESH_OK;
}

static int missing(cfg_ctx *c, yaml_node_t *map, const cfg_field *f)
{
    size_t mark = cfg_push_key(c, f->key);
    int rc = f->keynode ? cfg_fail(c, f->value, "is required and must not be null")
                        : cfg_fail(c, map, "required field is missing");
    cfg_pop(c, mark);
    return rc;
}

char *cfg_strdup(cfg_ctx *c, const yaml_node_t *at, const char *s)
{
    char *d = strdup(s);
    if (!d)
        mesh_err_set(c->err, MESH_ENOMEM, "%s:%zu: out of memory", c->file, cfg_line(at));
    return d;
}

int cfg_scalar_string(cfg_ctx *c, yaml_node_t *n, char **out)
{
    if (!n || n->type != YAML_SCALAR_NODE || cfg_is_null(n))
        return cfg_fail(c, n, "must be a string, got %s", cfg_type_name(n));
    if (scalar_has_nul(n))
        return cfg_fail(c, n, "must not contain NUL characters");
    char *d = cfg_strdup(c, n, scalar_text(n));
    if (!d)
        return MESH_ENOMEM;
    *out = d;
    return MESH_OK;
}

int cfg_get_string(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required, char **out)
{
    if (cfg_is_null(f->value))
        return required ? missing(c, map, f) : MESH_OK;
    size_t mark = cfg_push_key(c, f->key);
    int rc = cfg_scalar_string(c, f->value, out);
    cfg_pop(c, mark);
    return rc;
}

/* Plain-scalar integer text: optional '-', 1..18 digits. */
static int parse_int_text(const yaml_node_t *n, int64_t *v, int *too_long)
{
    const char *s = scalar_text(n);
    size_t len = n->data.scalar.length;
    size_t i = 0;
    int neg = 0;
    *too_long = 0;
    if (len > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == len)
        return -1;
    int64_t acc = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (acc > 100000000000000000LL) {
            *too_long = 1;
            continue;
        }
        acc = acc * 10 + (s[i] - '0');
    }
    *v = neg ? -acc : acc;
    return 0;
}

int cfg_get_int(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required, int64_t min,
                int64_t max, int64_t *out)
{
    if (cfg_is_null(f->value))
        return required ? missing(c, map, f) : MESH_OK;
    size_t mark = cfg_push_key(c, f->key);
    yaml_node_t *n = f->value;
    int rc = MESH_OK;
    char q[128];
    if (n->type != YAML_SCALAR_NODE) {
        rc = cfg_fail(c, n, "must be an integer, got %s", cfg_type_name(n));
        goto out;
    }
    config_quote(scalar_text(n), q, sizeof q);
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        rc = cfg_fail(c, n, "must be an integer, got the string %s (remove the quotes)", q);
        goto out;
    }
    int64_t v = 0;
    int too_long;
    if (parse_int_text(n, &v, &too_long) != 0) {
        rc = cfg_fail(c, n, "must be an integer, got %s", q);
        goto out;
    }
    if (too_long || v < min || v > max) {
        rc = cfg_fail(c, n, "must be %lld..%lld, got %s", (long long)min, (long long)max,
                      scalar_text(n));
        goto out;
    }
    *out = v;
out:
    cfg_pop(c, mark);
    return rc;
}

int cfg_get_bool(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required, int *out)
{
    static const char *const t[] = {"true", "True", "TRUE"};
    static const char *const fa[] = {"false", "False", "FALSE"};
    if (cfg_is_null(f->value))
        return required ? missing(c, map, f) : MESH_OK;
    size_t mark = cfg_push_key(c, f->key);
    yaml_node_t *n = f->value;
    int rc = MESH_OK, found = 0;
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        !scalar_has_nul(n)) {
        for (size_t i = 0; i < 3; i++) {
            if (strcmp(scalar_text(n), t[i]) == 0) {
                *out = 1;
                found = 1;
            } else if (strcmp(scalar_text(n), fa[i]) == 0) {
                *out = 0;
                found = 1;
            }
        }
    }
    if (!found) {
        char q[128];
        config_quote(n->type == YAML_SCALAR_NODE ? scalar_text(n) : cfg_type_name(n), q, sizeof q);
        rc = cfg_fail(c, n, "must be true or false, got %s", q);
    }
    cfg_pop(c, mark);
    return rc;
}

int cfg_get_duration(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required, int64_t *out)
{
    if (cfg_is_null(f->value))
        return required ? missing(c, map, f) : MESH_OK;
    size_t mark = cfg_push_key(c, f->key);
    yaml_node_t *n = f->value;
    int rc = MESH_OK;
    char why[CONFIG_WHY_MAX];
    int64_t ms = 0;
    if (n->type != YAML_SCALAR_NODE || scalar_has_nul(n)) {
        rc = cfg_fail(c, n, "must be a duration like \"250ms\", \"2s\" or \"1m\", got %s",
                      cfg_type_name(n));
    } else if (config_parse_duration(scalar_text(n), &ms, why, sizeof why) != 0) {
        rc = cfg_fail(c, n, "%s", why);
    } else if (ms == 0) {
        rc = cfg_fail(c, n, "must be greater than 0, got \"%s\"", scalar_text(n));
    } else {
        *out = ms;
    }
    cfg_pop(c, mark);
    return rc;
}

int cfg_get_enum(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required,
                 const char *const *names, size_t n_names, int *out)
{
    if (cfg_is_null(f->value))
        return required ? missing(c, map, f) : MESH_OK;
    size_t mark = cfg_push_key(c, f->key);
    yaml_node_t *n = f->value;
    int rc = MESH_OK;
    char list[160] = "";
    size_t used = 0;
    for (size_t i = 0; i < n_names; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
        if (w > 0 && (size_t)w < sizeof list - used)
            used += (size_t)w;
    }
    if (n->type != YAML_SCALAR_NODE || scalar_has_nul(n)) {
        rc = cfg_fail(c, n, "must be one of %s, got %s", list, cfg_type_name(n));
        goto out;
    }
    for (size_t i = 0; i < n_names; i++) {
        if (strcmp(scalar_text(n), names[i]) == 0) {
            *out = (int)i;
            goto out;
        }
    }
    char q[128];
    config_quote(scalar_text(n), q, sizeof q);
    const char *hint = mesh_suggest(scalar_text(n), names, n_names);
    if (hint)
        rc = cfg_fail(c, n, "must be one of %s, got %s; did you mean \"%s\"?", list, q, hint);
    else
        rc = cfg_fail(c, n, "must be one of %s, got %s", list, q);
out:
    cfg_pop(c, mark);
    return rc;
}

int cfg_get_seq(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required,
                yaml_node_t **seq_out, size_t *n_out)
{
    *seq_out = NULL;
    *n_out = 0;
    if (cfg_is_null(f->value))
        return required ? missing(c, map, f) : MESH_OK;
    if (f->value->type != YAML_SEQUENCE_NODE) {
        size_t mark = cfg_push_key(c, f->key);
        int rc = cfg_fail(c, f->value, "must be a list, got %s", cfg_type_name(f->value));
        cfg_pop(c, mark);
        return rc;
    }
    *seq_out = f->value;
    *n_out = (size_t)(f->value->data.sequence.items.top - f->value->data.sequence.items.start);
    return MESH_OK;
}

yaml_node_t *cfg_seq_item(cfg_ctx *c, yaml_node_t *seq, size_t i)
{
    return cfg_node(c, seq->data.sequence.items.start[i]);
}

int cfg_get_string_list(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required,
                        char ***out, size_t *n_out)
{
    yaml_node_t *seq;
    size_t n;
    int rc = cfg_get_seq(c, map, f, required, &seq, &n);
    if (rc != MESH_OK || n == 0)
        return rc;
    char **list = calloc(n, sizeof *list);
    if (!list)
        return mesh_err_set(c->err, MESH_ENOMEM, "%s: out of memory", c->file);
    size_t mark = cfg_push_key(c, f->key);
    size_t i;
    for (i = 0; i < n; i++) {
        size_t m2 = cfg_push_index(c, i);
        rc = cfg_scalar_string(c, cfg_seq_item(c, seq, i), &list[i]);
        cfg_pop(c, m2);
        if (rc != MESH_OK)
            break;
    }
    cfg_pop(c, mark);
    if (rc != MESH_OK) {
        for (size_t j = 0; j < i; j++)
            free(list[j]);
        free(list);
        return rc;
    }
    *out = list;
    *n_out = n;
    return MESH_OK;
}

/* Follows "a.b[2].c" from node n as far as the YAML goes. When the path ends
 * on a key whose value is a list or mapping, the key's line is the one to
 * show: a block collection starts on the line after its key. */
static yaml_node_t *walk_path(cfg_ctx *c, yaml_node_t *n, const char *path)
{
    const char *p = path;
    yaml_node_t *last_key = NULL;
    while (n && *p) {
        if (*p == '.') {
            p++;
            continue;
        }
        if (*p == '[') {
            char *end;
            unsigned long idx = strtoul(p + 1, &end, 10);
            if (*end != ']' || n->type != YAML_SEQUENCE_NODE)
                return n;
            size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
            if (idx >= len)
                return n;
            n = cfg_seq_item(c, n, idx);
            last_key = NULL;
            p = end + 1;
            continue;
        }
        size_t kl = strcspn(p, ".[");
        if (n->type != YAML_MAPPING_NODE)
            return n;
        yaml_node_t *next = NULL;
        for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
             pr++) {
            yaml_node_t *k = cfg_node(c, pr->key);
            if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == kl &&
                memcmp(k->data.scalar.value, p, kl) == 0) {
                next = cfg_node(c, pr->value);
                last_key = k;
                break;
            }
        }
        if (!next)
            return n;
        n = next;
        p += kl;
    }
    if (last_key && n && (n->type == YAML_MAPPING_NODE || n->type == YAML_SEQUENCE_NODE))
        return last_key;
    return n;
}

int cfg_fail_fault(cfg_ctx *c, yaml_node_t *res, const config_fault *f)
{
    yaml_node_t *at = walk_path(c, res, f->field);
    size_t mark = c->path_len;
    if (f->field[0])
        cfg_push_key(c, f->field);
    int rc = cfg_fail(c, at, "%s", f->why);
    cfg_pop(c, mark);
    return rc;
}
