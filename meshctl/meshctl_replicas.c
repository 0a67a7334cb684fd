/* meshctl/meshctl_replicas.c — `meshctl replicas`: the meshd replicas of the store
 * (store_replica.h): name, listen address, pid, state (up, stale: no heartbeat for
 * STORE_REPLICA_STALE_S, stopped), when it started, its last heartbeat and how many
 * sidecars it holds a live stream for. A stale replica's sidecars read as "lost" in
 * proxy-status. */
#include "meshctl/meshctl.h"

#include <stdio.h>
#include <string.h>

static size_t held_by(const store_proxy *list, size_t n, const char *id)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += list[i].connected && strcmp(list[i].meshd_instance, id) == 0;
    return k;
}

int ctl_cmd_replicas(ctl_ctx *c, int argc, char **argv)
{
    if (argc > 1)
        return ctl_usage_error(c, "replicas takes no arguments");
    (void)argv;
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    mesh_err err = {0};
    store_replica *list = NULL;
    size_t n = 0;
    if (store_replica_list(st, &list, &n, &err) != MESH_OK)
        return ctl_fail(c, &err);
    store_proxy *px = NULL;
    size_t npx = 0;
    if (store_proxy_list_rows(st, &px, &npx, &err) != MESH_OK) {
        store_replica_free_list(list, n);
        return ctl_fail(c, &err);
    }
    int64_t now = ctl_now();
    json_out j;
    json_init(&j);
    if (c->json)
        json_arr_begin(&j);
    else
        printf("%-24s %-22s %-8s %-8s %-20s %-20s %s\n", "REPLICA", "ADDRESS", "PID", "STATE",
               "STARTED", "LAST HEARTBEAT", "SIDECARS");
    for (size_t i = 0; i < n; i++) {
        const store_replica *r = &list[i];
        char started[32], beat[32];
        ctl_format_time(r->started, started, sizeof started);
        ctl_format_time(r->heartbeat, beat, sizeof beat);
        const char *state = store_replica_state(r, now);
        size_t held = held_by(px, npx, r->id);
        if (c->json) {
            json_obj_begin(&j);
            json_key_str(&j, "id", r->id);
            json_key_str(&j, "address", r->address);
            json_key_int(&j, "pid", r->pid);
            json_key_str(&j, "state", state);
            json_key_str(&j, "started_at", started);
            json_key_str(&j, "heartbeat_at", beat);
            json_key_int(&j, "heartbeat_age_s", now - r->heartbeat);
            json_key_int(&j, "sidecars", (int64_t)held);
            json_obj_end(&j);
        } else {
            printf("%-24s %-22s %-8lld %-8s %-20s %-20s %zu\n", ctl_esc(c, r->id),
                   ctl_esc(c, r->address), (long long)r->pid, state, started, beat, held);
        }
    }
    store_proxy_free_list(px, npx);
    store_replica_free_list(list, n);
    return ctl_print_list(c, &j);
}
