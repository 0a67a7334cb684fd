/* config/config_labels.c — workload labels and the subset selectors that match them.
 *
 * Labels follow the Kubernetes syntax, so labels copied from a Deployment or an
 * Istio DestinationRule mean the same here:
 *   key    [prefix/]name: name 1..63 characters of [A-Za-z0-9-_.], beginning and
 *          ending with a letter or digit; prefix (optional) a DNS subdomain of
 *          lowercase labels, at most 253 characters ("app.kubernetes.io/version");
 *   value  0..63 characters, empty or of the same alphabet as a name.
 * A workload is in a subset when it carries every label of the subset's
 * selector with the same value (labels are compared exactly, case included).
 * Lists are kept sorted by key, so the canonical YAML and equality do not
 * depend on the order the file lists them in. */
#include "config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A label name or a non-empty value: [A-Za-z0-9] at both ends, [-_.A-Za-z0-9] inside. */
static int check_label_word(const char *s, size_t len, const char *what, char *why, size_t n)
{
    char q[128];
    config_quote(s, q, sizeof q);
    if (len > CONFIG_LABEL_NAME_MAX) {
        snprintf(why, n, "%s must be at most %d characters, got %zu", what,
                 CONFIG_LABEL_NAME_MAX, len);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.') {
            snprintf(why, n, "%s may hold only letters, digits, '-', '_' and '.', got %s", what,
                     q);
            return -1;
        }
    }
    if (!is_alnum(s[0]) || !is_alnum(s[len - 1])) {
        snprintf(why, n, "%s must begin and end with a letter or digit, got %s", what, q);
        return -1;
    }
    return 0;
}

/* The prefix of a key: lowercase DNS labels joined by dots. */
static int check_label_prefix(const char *s, size_t len, char *why, size_t n)
{
    if (len > CONFIG_LABEL_PREFIX_MAX) {
        snprintf(why, n, "the key's prefix must be at most %d characters, got %zu",
                 CONFIG_LABEL_PREFIX_MAX, len);
        return -1;
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        char part[CONFIG_LABEL_PREFIX_MAX + 1];
        size_t plen = i - start;
        memcpy(part, s + start, plen);
        part[plen] = '\0';
        char sub[CONFIG_WHY_MAX];
        if (config_check_name(part, sub, sizeof sub) != 0) {
            char q[300];
            config_quote(s, q, sizeof q);
            snprintf(why, n, "the key's prefix %s must be a DNS subdomain: each part %s", q, sub);
            return -1;
        }
        start = i + 1;
    }
    return 0;
}

int config_check_label_key(const char *k, char *why, size_t n)
{
    if (!k || !*k) {
        snprintf(why, n, "a label key must not be empty");
        return -1;
    }
    const char *slash = strchr(k, '/');
    if (slash) {
        if (strchr(slash + 1, '/')) {
            char q[128];
            config_quote(k, q, sizeof q);
            snprintf(why, n, "a label key has at most one '/' (prefix/name), got %s", q);
            return -1;
        }
        if (check_label_prefix(k, (size_t)(slash - k), why, n) != 0)
            return -1;
        k = slash + 1;
        if (!*k) {
            snprintf(why, n, "a label key needs a name after its prefix's '/'");
            return -1;
        }
    }
    return check_label_word(k, strlen(k), "a label name", why, n);
}

int config_check_label_value(const char *v, char *why, size_t n)
{
    if (!v) {
        snprintf(why, n, "a label value must be a string (\"\" for an empty one)");
        return -1;
    }
    if (!*v)
        return 0;
    return check_label_word(v, strlen(v), "a label value", why, n);
}

int config_check_labels(const mesh_label *l, size_t n, const char *field, config_fault *f)
{
    if (n > CONFIG_MAX_LABELS) {
        snprintf(f->why, sizeof f->why, "at most %d labels, got %zu", CONFIG_MAX_LABELS, n);
        snprintf(f->field, sizeof f->field, "%s", field);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (config_check_label_key(l[i].key, f->why, sizeof f->why) != 0 ||
            config_check_label_value(l[i].value, f->why, sizeof f->why) != 0) {
            snprintf(f->field, sizeof f->field, "%s.%s", field, l[i].key ? l[i].key : "");
            return -1;
        }
        if (i > 0 && strcmp(l[i - 1].key, l[i].key) >= 0) {
            /* The parser sorts and refuses duplicates; a config built in code must too. */
            snprintf(f->why, sizeof f->why, "%s", strcmp(l[i - 1].key, l[i].key) == 0
                                                      ? "label is listed twice"
                                                      : "labels must be sorted by key");
            snprintf(f->field, sizeof f->field, "%s.%s", field, l[i].key);
            return -1;
        }
    }
    return 0;
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const mesh_label *)a)->key, ((const mesh_label *)b)->key);
}

void config_labels_sort(mesh_label *l, size_t n)
{
    if (n > 1)
        qsort(l, n, sizeof *l, cmp_label);
}

void config_labels_free(mesh_label *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].key);
        free(l[i].value);
    }
    free(l);
}

static int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

int config_labels_equal(const mesh_label *a, size_t na, const mesh_label *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i].key, b[i].key) || !str_eq(a[i].value, b[i].value))
            return 0;
    return 1;
}

void config_labels_format(const mesh_label *l, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s=%s", i ? "," : "", l[i].key, l[i].value);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

const mesh_subset *mesh_config_find_subset(const mesh_service *svc, const char *name)
{
    if (!svc || !name)
        return NULL;
    for (size_t i = 0; i < svc->n_subsets; i++)
        if (svc->subsets[i].name && strcmp(svc->subsets[i].name, name) == 0)
            return &svc->subsets[i];
    return NULL;
}

int mesh_subset_selects(const mesh_subset *sub, const mesh_workload *w)
{
    /* Both lists are sorted by key: one merge pass. */
    size_t j = 0;
    for (size_t i = 0; i < sub->n_labels; i++) {
        while (j < w->n_labels && strcmp(w->labels[j].key, sub->labels[i].key) < 0)
            j++;
        if (j == w->n_labels || strcmp(w->labels[j].key, sub->labels[i].key) != 0 ||
            strcmp(w->labels[j].value, sub->labels[i].value) != 0)
            return 0;
    }
    return 1;
}

void config_subset_free(mesh_subset *s)
{
    free(s->name);
    config_labels_free(s->labels, s->n_labels);
    memset(s, 0, sizeof *s);
}

int mesh_config_check_name(const char *name, mesh_err *err)
{
    char why[CONFIG_WHY_MAX];
    if (config_check_name(name, why, sizeof why) != 0)
        return mesh_err_set(err, MESH_EINVAL, "%s", why);
    return MESH_OK;
}
