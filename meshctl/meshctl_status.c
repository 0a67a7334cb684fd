/* meshctl/meshctl_status.c — `meshctl proxy-status` and `meshctl audit`: what meshd reported. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/xds_wire.h"
#include "meshctl/meshctl.h"

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
    int64_t now = ctl_now();
    static const char *types[] = {"CDS", "EDS", "LDS", "RDS", "SDS"};
    json_out j;
    json_init(&j);
    if (c->json) {
        json_arr_begin(&j);
    } else {
        printf("%-52s %-24s %-6s", "SPIFFE ID", "NODE", "STATE");
        for (size_t t = 0; t < 5; t++)
            printf(" %-17s", types[t]);
        printf(" %-11s %s\n", "SVID LEFT", "LAST NACK");
    }
    for (size_t i = 0; i < n; i++) {
        const store_proxy *p = &list[i];
        int64_t left = p->svid_not_after ? p->svid_not_after - now : 0;
        if (c->json) {
            json_obj_begin(&j);
            json_key_str(&j, "node_id", p->node_id);
            json_key_str(&j, "spiffe_id", p->spiffe_id);
            json_key_str(&j, "peer", p->peer);
            json_key_bool(&j, "connected", p->connected);
            json_key_int(&j, "last_seen", p->last_seen);
            json_key_str(&j, "meshd_instance", p->meshd_instance);
            json_key_int(&j, "svid_not_after", p->svid_not_after);
            json_key_int(&j, "svid_seconds_left", left);
            json_key_bool(&j, "stranded", p->problem[0] != '\0');
            json_key_str(&j, "problem", p->problem);
            json_key(&j, "types");
            json_obj_begin(&j);
            for (size_t t = 0; t < p->n_types; t++) {
                const store_proxy_type_status *ts = &p->types[t];
                json_key(&j, short_type(ts->type_url));
                json_obj_begin(&j);
                json_key_str(&j, "type_url", ts->type_url);
                json_key_str(&j, "sent_version", ts->sent_version);
                json_key_str(&j, "acked_version", ts->acked_version);
                json_key_bool(&j, "synced", ts->sent_version[0] &&
                                                strcmp(ts->sent_version, ts->acked_version) == 0);
                json_key_str(&j, "nack_version", ts->nack_version);
                json_key_str(&j, "nack_error", ts->nack_error);
                json_obj_end(&j);
            }
            json_obj_end(&j);
            json_obj_end(&j);
            continue;
        }
        printf("%-52s %-24s %-6s", ctl_esc(c, p->spiffe_id), ctl_esc(c, p->node_id),
               p->problem[0] ? "STRAND" : p->connected ? "up" : "down");
        const char *nack = "-";
        for (size_t t = 0; t < 5; t++) {
            const store_proxy_type_status *ts = find_type(p, types[t]);
            char cell[64] = "-";
            if (ts && ts->sent_version[0]) {
                int synced = strcmp(ts->sent_version, ts->acked_version) == 0;
                snprintf(cell, sizeof cell, "%.10s %s",
                         ts->acked_version[0] ? ctl_esc(c, ts->acked_version) : "none",
                         synced ? "SYNCED" : "STALE");
            }
            if (ts && ts->nack_error[0])
                nack = ts->nack_error;
            printf(" %-17s", cell);
        }
        char lefts[32] = "-";
        if (p->svid_not_after) {
            if (left > 0)
                duration_format(left, lefts, sizeof lefts);
            else
                snprintf(lefts, sizeof lefts, "EXPIRED");
        }
        printf(" %-11s %s\n", lefts, ctl_esc(c, nack));
        /* A sidecar meshd refused for good (its SVID was revoked): say why
         * and what it needs, under its row. */
        if (p->problem[0])
            printf("    stranded: %s\n", ctl_esc(c, p->problem));
    }
    store_proxy_free_list(list, n);
    if (c->json)
        return ctl_print_list(c, &j);
    if (n == 0)
        printf("(no sidecar has connected to meshd yet)\n");
    return 0;
}

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
            return ctl_bad_option(c, argc, argv);
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
