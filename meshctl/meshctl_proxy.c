/* meshctl/meshctl_proxy.c — `meshctl proxy-status`: one row per instance (workload) with
 * its identity, state (connected / stale / down, meshctl_proxy_state.h), when it was
 * last seen, and per xDS type the version it ACKed; as text or --output json.
 * Rows come from what meshd wrote to the store (any meshd replica's streams), plus a
 * down row, never seen, for each workload of the mesh config no sidecar connected for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/xds_wire.h"
#include "config/mesh_config.h"
#include "meshctl/meshctl.h"
#include "meshctl/meshctl_proxy_state.h"

static const char *const TYPES[] = {"CDS", "EDS", "LDS", "RDS", "SDS"};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

/* "type.googleapis.com/envoy.config.listener.v3.Listener" -> "LDS"; any other URL as is. */
static const char *short_type(const char *url)
{
    const char *name = xds_wire_short_name(url);
    return name ? name : url;
}

static const store_proxy_type_status *find_type(const store_proxy *p, const char *name)
{
    for (size_t i = 0; i < p->n_types; i++)
        if (strcmp(short_type(p->types[i].type_url), name) == 0)
            return &p->types[i];
    return NULL;
}

typedef struct ps_row {
    const store_proxy *p;
    const char *workload;         /* the instance; "" = a sidecar for the whole identity */
} ps_row;

static const char *row_workload(const store_proxy *p)
{
    const char *w = store_proxy_instance_of(p->spiffe_id, p->node_id);
    return w ? w : p->node_id;
}

static int cmp_row(const void *a, const void *b)
{
    const ps_row *x = a, *y = b;
    int c = strcmp(x->workload, y->workload);
    if (c == 0)
        c = strcmp(x->p->spiffe_id, y->p->spiffe_id);
    return c ? c : strcmp(x->p->node_id, y->p->node_id);
}

/* Does some row stand for workload w (its own, or its identity's as a whole)? */
static int covered(const store_proxy *list, size_t n, const mesh_workload *w)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].spiffe_id, w->spiffe_id) != 0)
            continue;
        const char *inst = store_proxy_instance_of(list[i].spiffe_id, list[i].node_id);
        if (inst && (inst[0] == '\0' || strcmp(inst, w->name) == 0))
            return 1;
    }
    return 0;
}

static void time_or_null(json_out *j, const char *key, int64_t t)
{
    json_key(j, key);
    if (t <= 0) {
        json_null(j);
        return;
    }
    char buf[32];
    ctl_format_time(t, buf, sizeof buf);
    json_str(j, buf);
}

static void row_json(json_out *j, const ps_row *r, int64_t now)
{
    const store_proxy *p = r->p;
    ctl_proxy_state state = ctl_proxy_state_of(p);
    json_obj_begin(j);
    json_key_str(j, "workload", r->workload);
    json_key_str(j, "node_id", p->node_id);
    json_key_str(j, "spiffe_id", p->spiffe_id);
    json_key_str(j, "state", ctl_proxy_state_name(state));
    json_key_str(j, "peer", p->peer);
    json_key_bool(j, "connected", p->connected);
    time_or_null(j, "connected_at", p->connected ? p->connected_at : 0);
    json_key_int(j, "last_seen", p->last_seen);
    time_or_null(j, "last_seen_at", p->connected ? now : p->last_seen);
    json_key_str(j, "meshd_instance", p->meshd_instance);
    json_key_bool(j, "replica_lost", p->stale);
    json_key_int(j, "svid_not_after", p->svid_not_after);
    time_or_null(j, "svid_expires_at", p->svid_not_after);
    json_key_int(j, "svid_seconds_left", p->svid_not_after ? p->svid_not_after - now : 0);
    json_key_bool(j, "stranded", p->problem[0] != '\0');
    json_key_str(j, "problem", p->problem);
    json_key(j, "types");
    json_obj_begin(j);
    for (size_t t = 0; t < p->n_types; t++) {
        const store_proxy_type_status *ts = &p->types[t];
        ctl_type_state tstate = ctl_type_state_of(ts, p->connected);
        json_key(j, short_type(ts->type_url));
        json_obj_begin(j);
        json_key_str(j, "type_url", ts->type_url);
        json_key_str(j, "state", ctl_type_state_name(tstate));
        json_key_str(j, "sent_version", ts->sent_version);
        json_key_str(j, "acked_version", ts->acked_version);
        json_key_bool(j, "synced", tstate == CTL_TYPE_SYNCED);
        json_key_str(j, "nack_version", ts->nack_version);
        json_key_str(j, "nack_error", ts->nack_error);
        time_or_null(j, "updated_at", ts->updated_at);
        json_obj_end(j);
    }
    json_obj_end(j);
    json_obj_end(j);
}

static void type_cell(ctl_ctx *c, const store_proxy *p, const store_proxy_type_status *ts,
                      char *cell, size_t len)
{
    snprintf(cell, len, "-");
    ctl_type_state s = ctl_type_state_of(ts, p->connected);
    if (s == CTL_TYPE_NONE)
        return;
    const char *ver = ts->acked_version[0] ? ctl_esc(c, ts->acked_version) : "none";
    const char *word = s == CTL_TYPE_SYNCED ? "SYNCED" : s == CTL_TYPE_PENDING ? "STALE"
                       : s == CTL_TYPE_NACKED ? "NACKED" : "LAST";
    snprintf(cell, len, "%.10s %s", ver, word);
}

static void row_text(ctl_ctx *c, const ps_row *r, int64_t now)
{
    const store_proxy *p = r->p;
    char seen[32] = "now";
    if (!p->connected) {
        if (p->last_seen > 0)
            ctl_format_time(p->last_seen, seen, sizeof seen);
        else
            snprintf(seen, sizeof seen, "never");
    }
    printf("%-20s %-48s %-9s %-20s", ctl_esc(c, r->workload[0] ? r->workload : p->node_id),
           ctl_esc(c, p->spiffe_id),
           p->problem[0] ? "stranded" : ctl_proxy_state_name(ctl_proxy_state_of(p)), seen);
    const char *nack = "-";
    for (size_t t = 0; t < N_TYPES; t++) {
        const store_proxy_type_status *ts = find_type(p, TYPES[t]);
        char cell[64];
        type_cell(c, p, ts, cell, sizeof cell);
        if (ts && ts->nack_error[0])
            nack = ts->nack_error;
        printf(" %-17s", cell);
    }
    char lefts[32] = "-";
    int64_t left = p->svid_not_after ? p->svid_not_after - now : 0;
    if (p->svid_not_after) {
        if (left > 0)
            duration_format(left, lefts, sizeof lefts);
        else
            snprintf(lefts, sizeof lefts, "EXPIRED");
    }
    printf(" %-11s %s\n", lefts, ctl_esc(c, nack));
    /* A sidecar meshd refused for good (its SVID was revoked): say why and
     * what it needs, under its row. */
    if (p->problem[0])
        printf("    stranded: %s\n", ctl_esc(c, p->problem));
}

/* The workloads of the stored config no row stands for: down, never seen.
 * A config that does not load (none yet) adds nothing. */
static store_proxy *never_seen(mesh_store *st, const store_proxy *list, size_t n,
                               mesh_config *cfg, size_t *n_out)
{
    *n_out = 0;
    mesh_err err = {0};
    memset(cfg, 0, sizeof *cfg);
    if (mesh_config_load_store(st, cfg, &err) != MESH_OK || cfg->n_workloads == 0)
        return NULL;
    store_proxy *extra = calloc(cfg->n_workloads, sizeof *extra);
    if (!extra)
        return NULL;
    for (size_t i = 0; i < cfg->n_workloads; i++) {
        const mesh_workload *w = &cfg->workloads[i];
        if (!w->name || !w->spiffe_id || covered(list, n, w))
            continue;
        store_proxy *p = &extra[(*n_out)++];
        p->node_id = w->name;
        p->spiffe_id = w->spiffe_id;
        p->peer = p->meshd_instance = p->problem = (char *)"";
    }
    return extra;
}

int ctl_cmd_proxy_status(ctl_ctx *c, int argc, char **argv)
{
    if (argc > 1)
        return ctl_usage_error(c, "proxy-status takes no arguments");
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    mesh_err err = {0};
    store_proxy *list = NULL;
    size_t n = 0;
    if (store_proxy_list(st, &list, &n, &err) != MESH_OK)
        return ctl_fail(c, &err);
    mesh_config cfg;
    size_t n_extra = 0;
    store_proxy *extra = never_seen(st, list, n, &cfg, &n_extra);
    ps_row *rows = calloc(n + n_extra + 1, sizeof *rows);
    if (!rows) {
        free(extra);
        mesh_config_free(&cfg);
        store_proxy_free_list(list, n);
        mesh_err_set(&err, MESH_ENOMEM, "out of memory listing proxies");
        return ctl_fail(c, &err);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        rows[k++] = (ps_row){.p = &list[i], .workload = row_workload(&list[i])};
    for (size_t i = 0; i < n_extra; i++)
        rows[k++] = (ps_row){.p = &extra[i], .workload = extra[i].node_id};
    qsort(rows, k, sizeof *rows, cmp_row);

    int64_t now = ctl_now();
    json_out j;
    json_init(&j);
    if (c->json) {
        json_arr_begin(&j);
    } else {
        printf("%-20s %-48s %-9s %-20s", "WORKLOAD", "SPIFFE ID", "STATE", "LAST SEEN");
        for (size_t t = 0; t < N_TYPES; t++)
            printf(" %-17s", TYPES[t]);
        printf(" %-11s %s\n", "SVID LEFT", "LAST NACK");
    }
    for (size_t i = 0; i < k; i++) {
        if (c->json)
            row_json(&j, &rows[i], now);
        else
            row_text(c, &rows[i], now);
    }
    free(rows);
    free(extra);
    mesh_config_free(&cfg);
    store_proxy_free_list(list, n);
    if (c->json)
        return ctl_print_list(c, &j);
    if (k == 0)
        printf("(no sidecar has connected to meshd yet)\n");
    return 0;
}
