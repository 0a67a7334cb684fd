/* sidecar/dp_metrics.c — per-cluster/route/peer request metrics (see dp_metrics.h). */
#include "sidecar/dp_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/prom_out.h"

/* Envoy's default histogram buckets, in seconds (0.5 ms to 1 h). */
static const double duration_bounds[] = {0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25,   0.5,   1,     2.5,  5,     10,   30,
                                          60,     300,   600,   1800, 3600};

typedef struct series {
    char *key;                  /* "dir\x1fcluster\x1froute\x1fpeer" */
    const char *dir, *cluster, *route, *peer;  /* point into label_buf */
    char *label_buf;
    uint64_t by_class[6];       /* 0 reset, 1xx..5xx */
    uint64_t bytes_in, bytes_out;
    prom_hist duration;
} series;

struct dp_metrics {
    series **slots;             /* open addressing, power of two */
    size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

dp_metrics *dp_metrics_new(void)
{
    dp_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 64;
    if (!(m->slots = calloc(m->cap, sizeof *m->slots))) {
        free(m);
        return NULL;
    }
    return m;
}

static void series_free(series *s)
{
    if (!s)
        return;
    free(s->key);
    free(s->label_buf);
    free(s);
}

void dp_metrics_free(dp_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        series_free(m->slots[i]);
    free(m->slots);
    free(m);
}

size_t dp_metrics_series(const dp_metrics *m) { return m ? m->n : 0; }

static series **find_slot(series **slots, size_t cap, const char *key)
{
    size_t i = (size_t)hash_str(key) & (cap - 1);
    while (slots[i] && strcmp(slots[i]->key, key) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static int grow(dp_metrics *m)
{
    size_t cap = m->cap * 2;
    series **slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i])
            *find_slot(slots, cap, m->slots[i]->key) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

static series *series_new(const char *key, const char *dir, const char *cluster,
                          const char *route, const char *peer)
{
    series *s = calloc(1, sizeof *s);
    size_t ld = strlen(dir) + 1, lc = strlen(cluster) + 1, lr = strlen(route) + 1,
           lp = strlen(peer) + 1;
    if (!s || !(s->key = strdup(key)) || !(s->label_buf = malloc(ld + lc + lr + lp))) {
        series_free(s);
        return NULL;
    }
    char *b = s->label_buf;
    s->dir = memcpy(b, dir, ld);
    s->cluster = memcpy(b + ld, cluster, lc);
    s->route = memcpy(b + ld + lc, route, lr);
    s->peer = memcpy(b + ld + lc + lr, peer, lp);
    prom_hist_init(&s->duration, duration_bounds, sizeof duration_bounds / sizeof *duration_bounds);
    return s;
}

/* The series of a key; created when create is set and memory allows. */
static series *lookup(dp_metrics *m, const char *dir, const char *cluster, const char *route,
                      const char *peer, int create)
{
    size_t n = strlen(dir) + strlen(cluster) + strlen(route) + strlen(peer) + 4;
    char stack[512];
    char *key = n <= sizeof stack ? stack : malloc(n);
    if (!key)
        return NULL;
    snprintf(key, n, "%s\x1f%s\x1f%s\x1f%s", dir, cluster, route, peer);
    series **slot = find_slot(m->slots, m->cap, key);
    series *s = *slot;
    if (!s && create) {
        if ((m->n + 1) * 2 > m->cap && grow(m) == 0)
            slot = find_slot(m->slots, m->cap, key);
        if ((m->n + 1) * 2 <= m->cap && (s = series_new(key, dir, cluster, route, peer))) {
            *slot = s;
            m->n++;
        }
    }
    if (key != stack)
        free(key);
    return s;
}

static const char *or_default(const char *v, const char *def) { return v && *v ? v : def; }

void dp_metrics_record(dp_metrics *m, const dp_metrics_sample *smp)
{
    if (!m)
        return;
    const char *dir = smp->inbound ? "inbound" : "outbound";
    const char *cluster = or_default(smp->cluster, "none");
    const char *route = or_default(smp->route, "none");
    const char *peer = or_default(smp->peer, "unknown");
    /* Past the bound only keys seen before count as themselves; the rest go
     * to one overflow series per direction. */
    series *s = lookup(m, dir, cluster, route, peer, m->n < DP_METRICS_MAX_SERIES);
    if (!s)
        s = lookup(m, dir, "overflow", "overflow", "overflow", 1);
    if (!s)
        return;
    int cls = smp->status >= 100 && smp->status < 600 ? smp->status / 100 : 0;
    s->by_class[cls]++;
    s->bytes_in += smp->bytes_in;
    s->bytes_out += smp->bytes_out;
    prom_hist_observe(&s->duration, (double)smp->duration_us / 1e6);
}

/* The four labels every family of a series carries (code_class is the fifth of one). */
static void series_labels(const series *s, prom_label l[4])
{
    l[0] = (prom_label){"direction", s->dir};
    l[1] = (prom_label){"cluster", s->cluster};
    l[2] = (prom_label){"route", s->route};
    l[3] = (prom_label){"peer", s->peer};
}

static int cmp_series(const void *a, const void *b)
{
    return strcmp((*(series *const *)a)->key, (*(series *const *)b)->key);
}

void dp_metrics_write(const dp_metrics *m, prom_out *p)
{
    static const char *cls[] = {"reset", "1xx", "2xx", "3xx", "4xx", "5xx"};
    size_t n = 0;
    series **list = m && m->n ? malloc(m->n * sizeof *list) : NULL;
    for (size_t i = 0; list && i < m->cap; i++)
        if (m->slots[i])
            list[n++] = m->slots[i];
    qsort(list, n, sizeof *list, cmp_series); /* stable output for scrapes and diffs */
    prom_family(p, "mesh_sidecar_cluster_requests_total", "counter",
                "HTTP exchanges finished, by direction, upstream cluster, route, peer SPIFFE "
                "ID (inbound: the caller; outbound: the upstream) and response class "
                "(reset = no response).");
    for (size_t i = 0; i < n; i++) {
        const series *s = list[i];
        prom_label l[5];
        series_labels(s, l);
        for (int c = 0; c < 6; c++) {
            l[4] = (prom_label){"code_class", cls[c]};
            prom_sample_u64(p, "mesh_sidecar_cluster_requests_total", l, 5, s->by_class[c]);
        }
    }
    prom_family(p, "mesh_sidecar_cluster_request_duration_seconds", "histogram",
                "Time from the request head to the end of the response, by direction, "
                "cluster, route and peer.");
    for (size_t i = 0; i < n; i++) {
        prom_label l[4];
        series_labels(list[i], l);
        prom_hist_write(p, "mesh_sidecar_cluster_request_duration_seconds", l, 4,
                        &list[i]->duration);
    }
    prom_family(p, "mesh_sidecar_cluster_request_bytes_total", "counter",
                "Request body bytes received from the client, by direction, cluster, route "
                "and peer.");
    for (size_t i = 0; i < n; i++) {
        prom_label l[4];
        series_labels(list[i], l);
        prom_sample_u64(p, "mesh_sidecar_cluster_request_bytes_total", l, 4, list[i]->bytes_in);
    }
    prom_family(p, "mesh_sidecar_cluster_response_bytes_total", "counter",
                "Response body bytes sent to the client, by direction, cluster, route and "
                "peer.");
    for (size_t i = 0; i < n; i++) {
        prom_label l[4];
        series_labels(list[i], l);
        prom_sample_u64(p, "mesh_sidecar_cluster_response_bytes_total", l, 4, list[i]->bytes_out);
    }
    free(list);
}
