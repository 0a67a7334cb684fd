/* meshctl/meshctl_status.c — `meshctl audit`: what meshd and meshctl did (proxy-status
 * is meshctl_proxy.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/xds_wire.h"
#include "meshctl/meshctl.h"

int ctl_cmd_audit(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {{"limit", required_argument, 0, 'l'}, {0, 0, 0, 0}};
    long limit = 50;
    optind = 1;
    opterr = 0;
    int ch;
    int rc;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch != 'l')
            return ctl_bad_option(c, argc, argv, opts);
        if ((rc = ctl_flag_long(c, "--limit", optarg, 1, 100000, &limit)))
            return rc;
    }
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    mesh_err err = {0};
    store_audit_entry *list = NULL;
    size_t n = 0;
    if (store_audit_list(st, (size_t)limit, &list, &n, &err) != MESH_OK)
        return ctl_fail(c, &err);
    json_out j;
    json_init(&j);
    if (c->json)
        json_arr_begin(&j);
    for (size_t i = 0; i < n; i++) {
        char at[32];
        ctl_format_time(list[i].at, at, sizeof at);
        if (c->json) {
            json_obj_begin(&j);
            json_key_str(&j, "at", at);
            json_key_str(&j, "actor", list[i].actor);
            json_key_str(&j, "action", list[i].action);
            json_key_str(&j, "subject", list[i].subject);
            json_key_str(&j, "detail", list[i].detail);
            json_key_bool(&j, "ok", list[i].ok);
            json_obj_end(&j);
        } else {
            printf("%s %-4s %-16s %-40s %s %s\n", at, list[i].ok ? "ok" : "FAIL",
                   ctl_esc(c, list[i].action), ctl_esc(c, list[i].actor),
                   ctl_esc(c, list[i].subject), ctl_esc(c, list[i].detail));
        }
    }
    store_audit_free_list(list, n);
    return ctl_print_list(c, &j);
}
