/* meshd/meshd_health.c — endpoint health decisions (see meshd_health.h). */
#include "meshd/meshd_health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshd/meshd_internal.h"

bool md_health_endpoint_up(bool connected, int64_t last_seen, int64_t since, int64_t now,
                           int64_t grace_s)
{
    if (grace_s <= 0 || connected)
        return true;
    int64_t down_from = last_seen > since ? last_seen : since;
    return now - down_from < grace_s;
}

const char *md_health_row_instance(const char *row_spiffe_id, const char *node_id)
{
    return store_proxy_instance_of(row_spiffe_id, node_id);
}

void md_health_tracker_free(md_health_tracker *t)
{
    md_map_free(t->first_seen, free);
    t->first_seen = NULL;
    xds_health_free(&t->last);
}

/* What the rows say about one (identity, instance). */
typedef struct presence {
    bool connected;
    int64_t last_seen;
} presence;

static int note_row(md_map *m, const char *key, const store_proxy *p)
{
    presence *pr = md_map_get(m, key);
    if (!pr) {
        if ((pr = calloc(1, sizeof *pr)) == NULL)
            return MESH_ENOMEM;
        if (md_map_put(m, key, pr, NULL) != MESH_OK) {
            free(pr);
            return MESH_ENOMEM;
        }
    }
    /* A connected row's last_seen is when it connected: it is live now. */
    pr->connected = pr->connected || p->connected;
    if (p->last_seen > pr->last_seen)
        pr->last_seen = p->last_seen;
    return MESH_OK;
}

static char *key_of(const char *spiffe_id, const char *instance)
{
    size_t n = strlen(spiffe_id) + strlen(instance) + 2;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s\x1f%s", spiffe_id, instance);
    return k;
}

static int index_rows(md_map *m, const store_proxy *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *inst = md_health_row_instance(rows[i].spiffe_id, rows[i].node_id);
        if (!inst)
            continue;
        char *k = key_of(rows[i].spiffe_id, inst);
        int rc = k ? note_row(m, k, &rows[i]) : MESH_ENOMEM;
        free(k);
        if (rc != MESH_OK)
            return rc;
    }
    return MESH_OK;
}

/* The workload's own row, or its identity-wide sidecar's (which serves
 * every workload of the identity), whichever says more. */
static presence presence_of(md_map *m, const mesh_workload *w, int *rc)
{
    presence out = {0};
    const char *insts[2] = {w->name, ""};
    for (int i = 0; i < 2; i++) {
        char *k = key_of(w->spiffe_id, insts[i]);
        if (!k) {
            *rc = MESH_ENOMEM;
            return out;
        }
        const presence *p = md_map_get(m, k);
        free(k);
        if (p) {
            out.connected = out.connected || p->connected;
            if (p->last_seen > out.last_seen)
                out.last_seen = p->last_seen;
        }
    }
    return out;
}

static int64_t seen_since(md_map *old, md_map *fresh, const char *name, int64_t now, int *rc)
{
    int64_t *prev = old ? md_map_get(old, name) : NULL;
    int64_t since = prev ? *prev : now;
    int64_t *v = malloc(sizeof *v);
    if (!v || md_map_put(fresh, name, v, NULL) != MESH_OK) {
        free(v);
        *rc = MESH_ENOMEM;
        return since;
    }
    *v = since;
    return since;
}

int md_health_compute(md_health_tracker *t, const mesh_config *cfg, const store_proxy *rows,
                      size_t n_rows, int64_t now, int64_t grace_s, xds_health *out,
                      mesh_err *err)
{
    memset(out, 0, sizeof *out);
    md_map *by_key = md_map_new(n_rows > 64 ? n_rows : 64);
    md_map *seen = md_map_new(cfg->n_workloads > 64 ? cfg->n_workloads : 64);
    const char **down = calloc(cfg->n_workloads ? cfg->n_workloads : 1, sizeof *down);
    int rc = by_key && seen && down ? index_rows(by_key, rows, n_rows) : MESH_ENOMEM;
    size_t n_down = 0;
    for (size_t i = 0; rc == MESH_OK && i < cfg->n_workloads; i++) {
        const mesh_workload *w = &cfg->workloads[i];
        if (!w->name || !w->spiffe_id || !w->service)
            continue;
        int64_t since = seen_since(t->first_seen, seen, w->name, now, &rc);
        presence p = presence_of(by_key, w, &rc);
        if (!md_health_endpoint_up(p.connected, p.last_seen, since, now, grace_s))
            down[n_down++] = w->name;
    }
    if (rc == MESH_OK)
        rc = xds_health_build(out, down, n_down, err);
    else
        mesh_err_set(err, MESH_ENOMEM, "out of memory deciding endpoint health");
    free(down);
    md_map_free(by_key, free);
    if (rc == MESH_OK) {
        md_map_free(t->first_seen, free);
        t->first_seen = seen;
    } else {
        md_map_free(seen, free);
    }
    return rc;
}
