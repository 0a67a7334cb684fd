/* common/prom_out.h — Prometheus text exposition (format 0.0.4) writer and a lock-free histogram.
 *
 * meshd's /metrics and the sidecar's /stats/prometheus are written with it, so
 * every family gets its HELP and TYPE lines and every label value is escaped
 * the one way the format allows (backslash, double quote and newline; bytes
 * that are not valid UTF-8 become U+FFFD, which Prometheus requires). Output
 * goes into a growable buffer; an allocation failure is sticky (p->oom) and
 * checked once at the end, like json_out.
 *
 * prom_hist counts observations in fixed buckets with atomics only, so any
 * thread may observe while another scrapes; buckets are written cumulative
 * with the +Inf bucket equal to _count, as the format demands. */
#ifndef MESH_COMMON_PROM_OUT_H
#define MESH_COMMON_PROM_OUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prom_out {
    char *buf;
    size_t len, cap;
    int oom;
} prom_out;

typedef struct prom_label {
    const char *name;   /* [a-zA-Z_][a-zA-Z0-9_]*, chosen by the caller (not escaped) */
    const char *value;  /* any bytes: escaped here */
} prom_label;

void prom_init(prom_out *p);
void prom_free(prom_out *p);
/* The NUL-terminated text (owned by p) or NULL after an allocation failure. */
const char *prom_text(prom_out *p);

/* "# HELP name help" (help escaped) and "# TYPE name type"; type is "counter",
 * "gauge" or "histogram". */
void prom_family(prom_out *p, const char *name, const char *type, const char *help);
/* name{labels} value, value as an integer. */
void prom_sample_u64(prom_out *p, const char *name, const prom_label *labels, size_t n_labels,
                     uint64_t v);
/* name{labels} value, any double (NaN and +-Inf spelled as the format wants). */
void prom_sample(prom_out *p, const char *name, const prom_label *labels, size_t n_labels,
                 double v);

#define PROM_HIST_MAX_BUCKETS 24

typedef struct prom_hist {
    const double *bounds;         /* upper bounds, ascending, static storage */
    size_t n_bounds;              /* <= PROM_HIST_MAX_BUCKETS */
    /* counts[i]: observations in (bounds[i-1], bounds[i]]; counts[n_bounds]: above all */
    atomic_uint_fast64_t counts[PROM_HIST_MAX_BUCKETS + 1];
    atomic_uint_fast64_t sum_micro;  /* sum of observations in millionths */
} prom_hist;

/* Bounds must be ascending and at most PROM_HIST_MAX_BUCKETS; 0 or -1. */
int prom_hist_init(prom_hist *h, const double *bounds, size_t n_bounds);
/* Negative values count as 0 (durations measured across a clock step). */
void prom_hist_observe(prom_hist *h, double v);
/* The _bucket series (cumulative, le="+Inf" last), _sum and _count of one
 * histogram with the given labels; the caller wrote the family lines. */
void prom_hist_write(prom_out *p, const char *name, const prom_label *labels, size_t n_labels,
                     const prom_hist *h);

#endif
