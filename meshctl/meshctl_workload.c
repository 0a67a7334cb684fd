/* meshctl/meshctl_workload.c — `meshctl workload ...`: registrations and join tokens. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/join_token.h"
#include "ca/spiffe_id.h"
#include "common/cli.h"
#include "meshctl/meshctl.h"

typedef struct wl_opts {
    const char *address;
    const char *selectors;
    int64_t token_ttl;
    const char *id;
} wl_opts;

static int parse_wl_opts(ctl_ctx *c, int argc, char **argv, wl_opts *o)
{
    static const struct option opts[] = {{"address", required_argument, 0, 'a'},
                                         {"selectors", required_argument, 0, 's'},
                                         {"token-ttl", required_argument, 0, 't'},
                                         {0, 0, 0, 0}};
    o->token_ttl = JOIN_TOKEN_DEFAULT_TTL;
    optind = 1;
    opterr = 0;
    int ch, rc;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'a': o->address = optarg; break;
        case 's': o->selectors = optarg; break;
        case 't':
            /* join_token_create checks the upper bound (30d). */
            if ((rc = ctl_flag_duration_s(c, "--token-ttl", optarg, 1, CLI_NO_MAX, &o->token_ttl)))
                return rc;
            break;
        default: return ctl_bad_option(c, argc, argv);
        }
    }
    if (optind + 1 != argc)
        return ctl_usage_error(c, "expected exactly one SPIFFE ID argument");
    o->id = argv[optind];
    return 0;
}

/* Prints a freshly minted token: the only time it is ever visible. */
static int print_token(ctl_ctx *c, const char *id, const char *token, int64_t ttl, int created)
{
    char until[32];
    ctl_format_time(ctl_now() + ttl, until, sizeof until);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "spiffe_id", id);
        json_key_bool(&j, "registered", created);
        json_key_str(&j, "token", token);
        json_key_str(&j, "token_expires_at", until);
        json_obj_end(&j);
        return ctl_print_json(&j);
    }
    if (created)
        printf("registered %s\n", ctl_esc(c, id));
    printf("join token (single use, expires %s; shown only once):\n%s\n", until, token);
    return 0;
}

static int workload_add(ctl_ctx *c, int argc, char **argv)
{
    wl_opts o = {0};
    int rc = parse_wl_opts(c, argc, argv, &o);
    if (rc)
        return rc;
    mesh_err err = {0};
    spiffe_id_parts sid;
    if (spiffe_id_parse_workload(o.id, &sid, &err) != MESH_OK)
        return ctl_fail(c, &err);
    char *td = ctl_trust_domain(c);
    if (!td)
        return 1;
    mesh_store *st = ctl_store(c);
    int wrong_td = strcmp(td, sid.trust_domain) != 0;
    if (wrong_td) {
        mesh_err_set(&err, MESH_EINVAL, "%s is not in this mesh's trust domain %s", o.id, td);
        free(td);
        return ctl_fail(c, &err);
    }
    free(td);
    /* Registration and first token in one transaction: no registration
     * without a way to join, no token for a registration that failed. */
    char *token = NULL;
    if (store_begin(st, &err) != MESH_OK)
        return ctl_fail(c, &err);
    if (store_registration_add(st, o.id, o.selectors ? o.selectors : "",
                               o.address ? o.address : "", &err) != MESH_OK ||
        join_token_create(st, o.id, o.token_ttl, &token, &err) != MESH_OK ||
        store_audit(st, "meshctl", "workload.add", o.id, "", 1, &err) != MESH_OK ||
        store_commit(st, &err) != MESH_OK) {
        store_rollback(st);
        free(token);
        return ctl_fail(c, &err);
    }
    rc = print_token(c, o.id, token, o.token_ttl, 1);
    free(token);
    return rc;
}

static int workload_token(ctl_ctx *c, int argc, char **argv)
{
    wl_opts o = {0};
    int rc = parse_wl_opts(c, argc, argv, &o);
    if (rc)
        return rc;
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    mesh_err err = {0};
    char *token = NULL;
    if (join_token_create(st, o.id, o.token_ttl, &token, &err) != MESH_OK)
        return ctl_fail(c, &err);
    store_audit(st, "meshctl", "token.create", o.id, "", 1, NULL);
    rc = print_token(c, o.id, token, o.token_ttl, 0);
    free(token);
    return rc;
}

static int workload_list(ctl_ctx *c)
{
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    mesh_err err = {0};
    store_registration *list = NULL;
    size_t n = 0;
    if (store_registration_list(st, &list, &n, &err) != MESH_OK)
        return ctl_fail(c, &err);
    json_out j;
    json_init(&j);
    if (c->json)
        json_arr_begin(&j);
    else
        printf("%-56s %-22s %-20s %s\n", "SPIFFE ID", "ADDRESS", "CREATED", "SELECTORS");
    for (size_t i = 0; i < n; i++) {
        char created[32];
        ctl_format_time(list[i].created_at, created, sizeof created);
        if (c->json) {
            json_obj_begin(&j);
            json_key_str(&j, "spiffe_id", list[i].spiffe_id);
            json_key_str(&j, "address", list[i].address);
            json_key_str(&j, "selectors", list[i].selectors);
            json_key_str(&j, "created_at", created);
            json_obj_end(&j);
        } else {
            printf("%-56s %-22s %-20s %s\n", ctl_esc(c, list[i].spiffe_id),
                   list[i].address[0] ? ctl_esc(c, list[i].address) : "-", created,
                   list[i].selectors[0] ? ctl_esc(c, list[i].selectors) : "-");
        }
    }
    store_registration_free_list(list, n);
    return ctl_print_list(c, &j);
}

static int workload_remove(ctl_ctx *c, int argc, char **argv)
{
    if (argc != 2)
        return ctl_usage_error(c, "workload remove needs one SPIFFE ID");
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    mesh_err err = {0};
    if (store_registration_remove(st, argv[1], &err) != MESH_OK)
        return ctl_fail(c, &err);
    store_audit(st, "meshctl", "workload.remove", argv[1], "", 1, NULL);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "removed", argv[1]);
        json_obj_end(&j);
        return ctl_print_json(&j);
    }
    printf("removed %s (its certificates stay valid until they expire; revoke them with "
           "'meshctl cert revoke')\n", ctl_esc(c, argv[1]));
    return 0;
}

int ctl_cmd_workload(ctl_ctx *c, int argc, char **argv)
{
    if (argc < 2)
        return ctl_usage_error(c, "workload needs a subcommand: add, token, list, remove");
    if (strcmp(argv[1], "add") == 0)
        return workload_add(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "token") == 0)
        return workload_token(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return workload_list(c);
    if (strcmp(argv[1], "remove") == 0)
        return workload_remove(c, argc - 1, argv + 1);
    return ctl_usage_error(c, "unknown workload subcommand '%s' (add, token, list, remove)",
                           argv[1]);
}
