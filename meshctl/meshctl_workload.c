/* meshctl/meshctl_workload.c — `meshctl workload ...`: registrations and join tokens.
 *
 * The identity (SPIFFE ID) is the service account, shared by every replica; what
 * is registered and gets a join token is one instance of it, named as its
 * workload in the mesh config: `workload add backend-v1-2 --id spiffe://...`.
 * The form of stores from before instances, `workload add spiffe://...`, still
 * registers the identity as a whole (one workload per identity). Commands that
 * name a registration take the instance name, or a SPIFFE ID for the
 * identity-wide kind: a name is a DNS label, so the two never look alike. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/join_token.h"
#include "ca/spiffe_id.h"
#include "common/cli.h"
#include "config/mesh_config.h"
#include "meshctl/meshctl.h"

typedef struct wl_opts {
    const char *address;
    const char *selectors;
    const char *spiffe_id;   /* --id */
    int64_t token_ttl;
    const char *arg;         /* NAME or SPIFFE_ID */
} wl_opts;

/* A registration key from the command line: an instance name, or (a SPIFFE
 * ID) the identity-wide registration. */
typedef struct wl_key {
    const char *name;        /* "" for identity-wide */
    const char *spiffe_id;   /* NULL for an instance */
} wl_key;

static wl_key key_of(const char *arg)
{
    if (strncmp(arg, "spiffe://", 9) == 0)
        return (wl_key){"", arg};
    return (wl_key){arg, NULL};
}

static int parse_wl_opts(ctl_ctx *c, int argc, char **argv, int allow_reg_flags, wl_opts *o)
{
    static const struct option opts[] = {{"address", required_argument, 0, 'a'},
                                         {"selectors", required_argument, 0, 's'},
                                         {"id", required_argument, 0, 'i'},
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
        case 'i': o->spiffe_id = optarg; break;
        case 't':
            /* join_token_create checks the upper bound (30d). */
            if ((rc = ctl_flag_duration_s(c, "--token-ttl", optarg, 1, CLI_NO_MAX, &o->token_ttl)))
                return rc;
            break;
        default: return ctl_bad_option(c, argc, argv, opts);
        }
    }
    if (!allow_reg_flags && (o->address || o->selectors || o->spiffe_id))
        return ctl_usage_error(c, "--address, --selectors and --id belong to 'workload add'");
    if (optind + 1 != argc)
        return ctl_usage_error(c, allow_reg_flags
                                      ? "expected one instance name (with --id SPIFFE_ID), or "
                                        "one SPIFFE ID"
                                      : "expected one instance name or SPIFFE ID");
    o->arg = argv[optind];
    return 0;
}

/* Prints a freshly minted token: the only time it is ever visible. */
static int print_token(ctl_ctx *c, const char *name, const char *id, const char *token,
                       int64_t ttl, int created, const char *note)
{
    char until[32];
    ctl_format_time(ctl_now() + ttl, until, sizeof until);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "name", name);
        json_key_str(&j, "spiffe_id", id);
        json_key_bool(&j, "registered", created);
        json_key_str(&j, "token", token);
        json_key_str(&j, "token_expires_at", until);
        json_obj_end(&j);
        return ctl_print_json(&j);
    }
    if (created && name[0])
        printf("registered instance %s of %s%s\n", ctl_esc(c, name), ctl_esc(c, id), note);
    else if (created)
        printf("registered %s for the identity as a whole (any one workload of it; replicas "
               "that share it need one registration each: 'meshctl workload add NAME --id %s')\n",
               ctl_esc(c, id), ctl_esc(c, id));
    printf("join token for %s (single use, expires %s; shown only once):\n%s\n",
           name[0] ? ctl_esc(c, name) : ctl_esc(c, id), until, token);
    return 0;
}

/* The workload of that name in the stored mesh config must carry the same
 * identity, if there is one: a token would otherwise buy a certificate meshd
 * serves nothing to. *note describes what the config holds. */
static int check_against_config(mesh_store *st, const char *name, const char *id, char *note,
                                size_t n, mesh_err *err)
{
    mesh_config cfg;
    int rc = mesh_config_load_store(st, &cfg, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "reading the mesh config to check the instance");
    const mesh_workload *w = mesh_config_find_workload(&cfg, name);
    if (w && strcmp(w->spiffe_id, id) != 0)
        rc = mesh_err_set(err, MESH_EINVAL,
                          "workload %s in the mesh config has identity %s (applied from %s), "
                          "not %s; register it with --id %s",
                          name, w->spiffe_id, w->source ? w->source : "?", id, w->spiffe_id);
    else if (w)
        snprintf(note, n, " (workload %s of service %s in the mesh config)", name,
                 w->service);
    else
        snprintf(note, n, " (no workload of that name in the mesh config yet: meshd serves this "
                          "instance once 'meshctl apply' adds it)");
    mesh_config_free(&cfg);
    return rc;
}

static int workload_add(ctl_ctx *c, int argc, char **argv)
{
    wl_opts o = {0};
    int rc = parse_wl_opts(c, argc, argv, 1, &o);
    if (rc)
        return rc;
    wl_key k = key_of(o.arg);
    mesh_err err = {0};
    if (k.name[0] && !o.spiffe_id)
        return ctl_usage_error(c, "instance %s needs its identity: meshctl workload add %s --id "
                                  "spiffe://<trust-domain>/ns/<ns>/sa/<service-account>",
                               k.name, k.name);
    if (!k.name[0] && o.spiffe_id)
        return ctl_usage_error(c, "give the instance name first, then --id: meshctl workload add "
                                  "NAME --id %s", o.spiffe_id);
    const char *id = k.name[0] ? o.spiffe_id : k.spiffe_id;
    if (k.name[0] && mesh_config_check_name(k.name, &err) != MESH_OK) {
        mesh_err_prefix(&err, "instance name '%s' (the workload's name in the mesh config)",
                        k.name);
        return ctl_fail(c, &err);
    }
    spiffe_id_parts sid;
    if (spiffe_id_parse_workload(id, &sid, &err) != MESH_OK)
        return ctl_fail(c, &err);
    char *td = ctl_trust_domain(c);
    if (!td)
        return 1;
    mesh_store *st = ctl_store(c);
    int wrong_td = strcmp(td, sid.trust_domain) != 0;
    if (wrong_td) {
        mesh_err_set(&err, MESH_EINVAL, "%s is not in this mesh's trust domain %s", id, td);
        free(td);
        return ctl_fail(c, &err);
    }
    free(td);
    char note[300] = "";
    if (k.name[0] && check_against_config(st, k.name, id, note, sizeof note, &err) != MESH_OK)
        return ctl_fail(c, &err);
    /* Registration and first token in one transaction: no registration
     * without a way to join, no token for a registration that failed. */
    char *token = NULL;
    char subject[700];
    snprintf(subject, sizeof subject, "%s%s%s", k.name, k.name[0] ? " " : "", id);
    if (store_begin(st, &err) != MESH_OK)
        return ctl_fail(c, &err);
    if (store_registration_add(st, k.name, id, o.selectors ? o.selectors : "",
                               o.address ? o.address : "", &err) != MESH_OK ||
        join_token_create(st, k.name, id, o.token_ttl, &token, &err) != MESH_OK ||
        store_audit(st, "meshctl", "workload.add", subject, "", 1, &err) != MESH_OK ||
        store_commit(st, &err) != MESH_OK) {
        store_rollback(st);
        free(token);
        return ctl_fail(c, &err);
    }
    rc = print_token(c, k.name, id, token, o.token_ttl, 1, note);
    free(token);
    return rc;
}

static int workload_token(ctl_ctx *c, int argc, char **argv)
{
    wl_opts o = {0};
    int rc = parse_wl_opts(c, argc, argv, 0, &o);
    if (rc)
        return rc;
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    wl_key k = key_of(o.arg);
    mesh_err err = {0};
    store_registration reg;
    if (store_registration_get(st, k.name, k.spiffe_id, &reg, &err) != MESH_OK)
        return ctl_fail(c, &err);
    char *token = NULL;
    rc = join_token_create(st, reg.name, reg.spiffe_id, o.token_ttl, &token, &err);
    if (rc == MESH_OK) {
        store_audit(st, "meshctl", "token.create", o.arg, "", 1, NULL);
        rc = print_token(c, reg.name, reg.spiffe_id, token, o.token_ttl, 0, "");
    } else {
        rc = ctl_fail(c, &err);
    }
    free(token);
    store_registration_free(&reg);
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
        printf("%-24s %-56s %-22s %-20s %s\n", "NAME", "SPIFFE ID", "ADDRESS", "CREATED",
               "SELECTORS");
    for (size_t i = 0; i < n; i++) {
        char created[32];
        ctl_format_time(list[i].created_at, created, sizeof created);
        if (c->json) {
            json_obj_begin(&j);
            json_key_str(&j, "name", list[i].name);
            json_key_str(&j, "spiffe_id", list[i].spiffe_id);
            json_key_bool(&j, "identity_wide", list[i].name[0] == '\0');
            json_key_str(&j, "address", list[i].address);
            json_key_str(&j, "selectors", list[i].selectors);
            json_key_str(&j, "created_at", created);
            json_obj_end(&j);
        } else {
            printf("%-24s %-56s %-22s %-20s %s\n",
                   list[i].name[0] ? ctl_esc(c, list[i].name) : "(identity-wide)",
                   ctl_esc(c, list[i].spiffe_id),
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
        return ctl_usage_error(c, "workload remove needs one instance name or SPIFFE ID");
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    wl_key k = key_of(argv[1]);
    mesh_err err = {0};
    if (store_registration_remove(st, k.name, k.spiffe_id, &err) != MESH_OK)
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
