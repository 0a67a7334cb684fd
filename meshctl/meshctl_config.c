/* meshctl/meshctl_config.c — `meshctl get|delete`: the operator's mesh config (apply:
 * meshctl_apply.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/mesh_config.h"
#include "meshctl/meshctl.h"


static const char *kind_from_word(const char *w)
{
    static const struct { const char *word, *kind; } kinds[] = {
        {"service", "service"},   {"services", "service"},   {"svc", "service"},
        {"workload", "workload"}, {"workloads", "workload"}, {"route", "route"},
        {"routes", "route"},      {"authorization", "authorization"},
        {"authz", "authorization"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(w, kinds[i].word) == 0)
            return kinds[i].kind;
    return NULL;
}

int ctl_cmd_get(ctl_ctx *c, int argc, char **argv)
{
    const char *kind = NULL;
    if (argc > 2)
        return ctl_usage_error(c, "get takes at most one kind");
    if (argc == 2 && !(kind = kind_from_word(argv[1])))
        return ctl_usage_error(c, "unknown kind '%s' (services, workloads, routes, authorization)",
                               argv[1]);
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    mesh_err err = {0};
    store_resource *list = NULL;
    size_t n = 0;
    if (store_resource_list(st, kind, &list, &n, &err) != MESH_OK)
        return ctl_fail(c, &err);
    json_out j;
    json_init(&j);
    if (c->json) {
        json_obj_begin(&j);
        json_key_int(&j, "config_version", store_config_version(st));
        json_key(&j, "resources");
        json_arr_begin(&j);
    } else {
        printf("# config version %lld\n", (long long)store_config_version(st));
    }
    for (size_t i = 0; i < n; i++) {
        if (c->json) {
            json_obj_begin(&j);
            json_key_str(&j, "kind", list[i].kind);
            json_key_str(&j, "name", list[i].name);
            json_key_int(&j, "version", list[i].version);
            json_key_str(&j, "source", list[i].source);
            json_key_str(&j, "yaml", list[i].body);
            /* The same as a JSON object, for jq; null if it cannot be one. */
            mesh_err jerr = {0};
            json_key(&j, "spec");
            if (!list[i].body ||
                config_yaml_to_json(list[i].body, strlen(list[i].body), &j, &jerr) != MESH_OK)
                json_null(&j);
            json_obj_end(&j);
        } else {
            printf("# %s/%s (version %lld, from %s)\n%s\n", ctl_esc(c, list[i].kind),
                   ctl_esc(c, list[i].name), (long long)list[i].version,
                   ctl_esc(c, list[i].source), ctl_esc_lines(c, list[i].body));
        }
    }
    store_resource_free_list(list, n);
    if (c->json) {
        json_arr_end(&j);
        json_obj_end(&j);
        return ctl_print_json(&j);
    }
    return 0;
}

int ctl_cmd_delete(ctl_ctx *c, int argc, char **argv)
{
    if (argc != 3)
        return ctl_usage_error(c, "delete needs KIND NAME");
    const char *kind = kind_from_word(argv[1]);
    if (!kind)
        return ctl_usage_error(c, "unknown kind '%s' (service, workload, route, authorization)",
                               argv[1]);
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    mesh_err err = {0};
    if (mesh_config_delete(st, kind, argv[2], &err) != MESH_OK)
        return ctl_fail(c, &err);
    store_audit(st, "meshctl", "config.delete", argv[2], kind, 1, NULL);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "deleted", argv[2]);
        json_key_str(&j, "kind", kind);
        json_key_int(&j, "config_version", store_config_version(st));
        json_obj_end(&j);
        return ctl_print_json(&j);
    }
    printf("deleted %s/%s, config version %lld\n", kind, ctl_esc(c, argv[2]),
           (long long)store_config_version(st));
    return 0;
}
