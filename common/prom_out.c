/* common/prom_out.c — Prometheus text exposition writer and histogram (see prom_out.h). */
#include "common/prom_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/escape.h"

void prom_init(prom_out *p) { memset(p, 0, sizeof *p); }

void prom_free(prom_out *p)
{
    free(p->buf);
    memset(p, 0, sizeof *p);
}

static void put(prom_out *p, const char *s, size_t n)
{
    if (p->oom)
        return;
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < p->len + n + 1)
            cap *= 2;
        char *nb = realloc(p->buf, cap);
        if (!nb) {
            p->oom = 1;
            return;
        }
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

static void puts_(prom_out *p, const char *s) { put(p, s, strlen(s)); }

const char *prom_text(prom_out *p)
{
    if (p->oom)
        return NULL;
    if (!p->buf)
        put(p, "", 0);
    return p->oom ? NULL : p->buf;
}

/* The format's escapes: \\ and \n everywhere, \" in label values only.
 * Invalid UTF-8 becomes U+FFFD (the Prometheus parser refuses it). */
static void escaped(prom_out *p, const char *s, int quote)
{
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)u);
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (c == '\\') {
            puts_(p, "\\\\");
            i++;
        } else if (c == '\n') {
            puts_(p, "\\n");
            i++;
        } else if (c == '"' && quote) {
            puts_(p, "\\\"");
            i++;
        } else if (c < 0x80) {
            put(p, (const char *)u + i, 1);
            i++;
        } else {
            uint32_t cp;
            size_t len = mesh_utf8_decode(u + i, n - i, &cp);
            if (len == 0) {
                puts_(p, "\xef\xbf\xbd");
                i++;
            } else {
                put(p, (const char *)u + i, len);
                i += len;
            }
        }
    }
}

void prom_family(prom_out *p, const char *name, const char *type, const char *help)
{
    puts_(p, "# HELP ");
    puts_(p, name);
    puts_(p, " ");
    escaped(p, help, 0);
    puts_(p, "\n# TYPE ");
    puts_(p, name);
    puts_(p, " ");
    puts_(p, type);
    puts_(p, "\n");
}

static void series(prom_out *p, const char *name, const prom_label *labels, size_t n_labels,
                   const char *le)
{
    puts_(p, name);
    if (n_labels == 0 && !le)
        return;
    puts_(p, "{");
    for (size_t i = 0; i < n_labels; i++) {
        if (i)
            puts_(p, ",");
        puts_(p, labels[i].name);
        puts_(p, "=\"");
        escaped(p, labels[i].value, 1);
        puts_(p, "\"");
    }
    if (le) {
        if (n_labels)
            puts_(p, ",");
        puts_(p, "le=\"");
        puts_(p, le);
        puts_(p, "\"");
    }
    puts_(p, "}");
}

void prom_sample_u64(prom_out *p, const char *name, const prom_label *labels, size_t n_labels,
                     uint64_t v)
{
    char b[32];
    series(p, name, labels, n_labels, NULL);
    snprintf(b, sizeof b, " %llu\n", (unsigned long long)v);
    puts_(p, b);
}

static void format_double(char *b, size_t len, double v)
{
    if (isnan(v))
        snprintf(b, len, "NaN");
    else if (isinf(v))
        snprintf(b, len, v > 0 ? "+Inf" : "-Inf");
    else
        snprintf(b, len, "%.12g", v);
}

void prom_sample(prom_out *p, const char *name, const prom_label *labels, size_t n_labels,
                 double v)
{
    char b[64];
    series(p, name, labels, n_labels, NULL);
    format_double(b, sizeof b, v);
    puts_(p, " ");
    puts_(p, b);
    puts_(p, "\n");
}

int prom_hist_init(prom_hist *h, const double *bounds, size_t n_bounds)
{
    if (n_bounds > PROM_HIST_MAX_BUCKETS)
        return -1;
    for (size_t i = 1; i < n_bounds; i++)
        if (!(bounds[i] > bounds[i - 1]))
            return -1;
    h->bounds = bounds;
    h->n_bounds = n_bounds;
    for (size_t i = 0; i <= PROM_HIST_MAX_BUCKETS; i++)
        atomic_init(&h->counts[i], 0);
    atomic_init(&h->sum_micro, 0);
    return 0;
}

void prom_hist_observe(prom_hist *h, double v)
{
    if (!(v > 0))
        v = 0;   /* also NaN */
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    double micro = v * 1e6;
    if (micro > 1e18)
        micro = 1e18;
    atomic_fetch_add_explicit(&h->sum_micro, (uint_fast64_t)(micro + 0.5),
                              memory_order_relaxed);
}

void prom_hist_write(prom_out *p, const char *name, const prom_label *labels, size_t n_labels,
                     const prom_hist *h)
{
    char bucket[160], sum[160], count[160], le[64], b[40];
    snprintf(bucket, sizeof bucket, "%s_bucket", name);
    snprintf(sum, sizeof sum, "%s_sum", name);
    snprintf(count, sizeof count, "%s_count", name);
    /* One read of each bucket, so the cumulative counts, +Inf and _count
     * agree with each other even while other threads observe. */
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->n_bounds)
            snprintf(le, sizeof le, "%g", h->bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        series(p, bucket, labels, n_labels, le);
        snprintf(b, sizeof b, " %llu\n", (unsigned long long)cum);
        puts_(p, b);
    }
    double s = (double)atomic_load_explicit(&h->sum_micro, memory_order_relaxed) / 1e6;
    prom_sample(p, sum, labels, n_labels, s);
    prom_sample_u64(p, count, labels, n_labels, cum);
}
