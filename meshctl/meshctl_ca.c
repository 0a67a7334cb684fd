/* meshctl/meshctl_ca.c — `meshctl ca ...`: initialise and inspect the CA, parse CA options
 * (rotation itself is meshctl_ca_rotate.c). */
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ca/ca.h"
#include "common/cli.h"
#include "meshctl/meshctl.h"
#include "meshctl/meshctl_ca.h"

void ctl_default_key_dir(const char *db_path, char *out, size_t len)
{
    char *copy = strdup(db_path);
    snprintf(out, len, "%s/ca-keys", copy ? dirname(copy) : ".");
    free(copy);
}

int ctl_ca_parse(ctl_ctx *c, int argc, char **argv, ctl_ca_args *a)
{
    static const struct option opts[] = {
        {"trust-domain", required_argument, 0, 't'}, {"key-type", required_argument, 0, 'k'},
        {"ttl", required_argument, 0, 'l'},          {"key-dir", required_argument, 0, 'd'},
        {"import-cert", required_argument, 0, 'c'},  {"import-key", required_argument, 0, 'K'},
        {"import-chain", required_argument, 0, 'C'}, {"prepare", no_argument, 0, 'p'},
        {"activate", required_argument, 0, 'a'},     {"prune", no_argument, 0, 'P'},
        {"timeout", required_argument, 0, 'T'},      {"force", no_argument, 0, 'f'},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->timeout_s = -1;
    optind = 1;
    opterr = 0;
    int ch, rc;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 't': a->o.trust_domain = optarg; break;
        case 'k': a->o.key_type = optarg; a->material = 1; break;
        case 'l':
            /* 0 or none: the default; ca_init and ca_prepare check the range. */
            if ((rc = ctl_flag_duration_s(c, "--ttl", optarg, 0, CLI_NO_MAX, &a->o.ttl_seconds)))
                return rc;
            a->material = 1;
            break;
        case 'd': snprintf(a->key_dir, sizeof a->key_dir, "%s", optarg); break;
        case 'c': a->o.import_cert_path = optarg; a->material = 1; break;
        case 'K': a->o.import_key_path = optarg; a->material = 1; break;
        case 'C': a->o.import_chain_path = optarg; a->material = 1; break;
        case 'p': a->mode = a->mode ? -1 : 'p'; break;
        case 'P': a->mode = a->mode ? -1 : 'P'; break;
        case 'f': a->force = 1; break;
        case 'T':
            if ((rc = ctl_flag_duration_s(c, "--timeout", optarg, 0, CTL_CA_MAX_TIMEOUT_S,
                                          &a->timeout_s)))
                return rc;
            break;
        case 'a': {
            long id;
            mesh_err err = {0};
            if (cli_long("--activate", optarg, 1, LONG_MAX, &id, &err) != MESH_OK)
                return ctl_usage_error(c, "--activate takes a CA id from 'meshctl ca show', got '%s'",
                                       optarg);
            a->activate_id = id;
            a->mode = a->mode ? -1 : 'a';
            break;
        }
        default: return ctl_bad_option(c, argc, argv, opts);
        }
    }
    if (optind < argc)
        return ctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
    if (a->mode < 0)
        return ctl_usage_error(c, "--prepare, --activate and --prune are separate steps: give one");
    if (!a->key_dir[0] && c->db_path && store_db_is_postgres(c->db_path))
        return ctl_usage_error(c, "a PostgreSQL store keeps no files beside it: give --key-dir "
                                  "DIR, the directory (on this machine) for the CA's private "
                                  "keys");
    if (!a->key_dir[0])
        ctl_default_key_dir(c->db_path ? c->db_path : "./meshd.db", a->key_dir,
                            sizeof a->key_dir);
    a->o.key_dir = a->key_dir;
    if ((a->o.import_cert_path != NULL) != (a->o.import_key_path != NULL))
        return ctl_usage_error(c, "--import-cert and --import-key go together");
    return 0;
}

/* Keys of a lost store's CA refuse a new store in their key directory: say
 * so before the store is created, so that a refused `ca init` leaves no
 * empty store behind. Only for a store that would be created (missing or
 * empty, nothing witnessing it: a witness that saw it hold data makes
 * opening it say what was lost instead). */
static int new_store_refused_by_keys(const char *db_path, const char *key_dir, mesh_err *err)
{
    struct stat sb;
    if (stat(db_path, &sb) == 0 && sb.st_size > 0)
        return 0;
    store_check_report r;
    mesh_err check_err = {0};
    int none = store_check(db_path, NULL, &r, &check_err) == MESH_ENOTFOUND;
    store_check_report_free(&r);
    return none && ca_keydir_check_unclaimed(key_dir, NULL, err) != MESH_OK;
}

static int ca_init_cmd(ctl_ctx *c, int argc, char **argv)
{
    ctl_ca_args a;
    int rc = ctl_ca_parse(c, argc, argv, &a);
    if (rc)
        return rc;
    const ca_init_opts o = a.o;
    if (a.mode || a.force || a.timeout_s >= 0)
        return ctl_usage_error(c, "--prepare/--activate/--prune/--timeout/--force belong to "
                                  "'ca rotate'");
    if (!o.trust_domain)
        return ctl_usage_error(c, "ca init needs --trust-domain (e.g. example.org)");
    mesh_err err = {0};
    if (c->db_path && new_store_refused_by_keys(c->db_path, o.key_dir, &err))
        return ctl_fail(c, &err);
    mesh_store *st = ctl_store_create(c);
    if (!st)
        return 1;
    int64_t id = 0;
    if (ca_init(st, &o, &id, &err) != MESH_OK)
        return ctl_fail(c, &err);
    store_ca ca = {0};
    if (store_ca_get_active(st, &ca, &err) != MESH_OK)
        return ctl_fail(c, &err);
    char until[32];
    ctl_format_time(ca.not_after, until, sizeof until);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_int(&j, "ca_id", id);
        json_key_str(&j, "trust_domain", o.trust_domain);
        json_key_str(&j, "key_type", ca.key_type);
        json_key_str(&j, "serial", ca.serial_hex);
        json_key_str(&j, "not_after", until);
        json_key_str(&j, "key_path", ca.key_path);
        json_obj_end(&j);
        store_ca_free(&ca);
        return ctl_print_json(&j);
    }
    printf("CA %lld initialised for trust domain %s\n", (long long)id, ctl_esc(c, o.trust_domain));
    printf("  key type   %s\n  serial     %s\n  not after  %s\n  key file   %s (0600)\n",
           ctl_esc(c, ca.key_type), ctl_esc(c, ca.serial_hex), until, ctl_esc(c, ca.key_path));
    store_ca_free(&ca);
    return 0;
}

static int ca_show_cmd(ctl_ctx *c)
{
    char *td = ctl_trust_domain(c);
    if (!td)
        return 1;
    mesh_store *st = ctl_store(c);
    mesh_err err = {0};
    store_ca *list = NULL;
    size_t n = 0;
    if (store_ca_list(st, &list, &n, &err) != MESH_OK) {
        free(td);
        return ctl_fail(c, &err);
    }
    json_out j;
    json_init(&j);
    if (c->json) {
        json_obj_begin(&j);
        json_key_str(&j, "trust_domain", td);
        json_key(&j, "cas");
        json_arr_begin(&j);
    } else {
        printf("trust domain  %s\n", ctl_esc(c, td));
        printf("%-4s %-9s %-9s %-34s %-21s %-17s %s\n", "ID", "STATE", "KEY", "SERIAL",
               "NOT AFTER", "ROOT SHA256", "SUBJECT");
    }
    for (size_t i = 0; i < n; i++) {
        char until[32], root[65] = "";
        ctl_format_time(list[i].not_after, until, sizeof until);
        /* The fingerprint sidecars print for the roots they trust. */
        mesh_err ferr = {0};
        if (ca_root_info(&list[i], NULL, root, &ferr) != MESH_OK)
            snprintf(root, sizeof root, "?");
        if (c->json) {
            json_obj_begin(&j);
            json_key_int(&j, "id", list[i].id);
            json_key_str(&j, "state", list[i].state);
            json_key_str(&j, "key_type", list[i].key_type);
            json_key_str(&j, "serial", list[i].serial_hex);
            json_key_str(&j, "subject", list[i].subject);
            json_key_str(&j, "not_after", until);
            json_key_bool(&j, "intermediate", list[i].chain_pem && list[i].chain_pem[0]);
            json_key_str(&j, "root_sha256", root);
            json_obj_end(&j);
        } else {
            printf("%-4lld %-9s %-9s %-34s %-21s %-17.16s %s\n", (long long)list[i].id,
                   ctl_esc(c, list[i].state), ctl_esc(c, list[i].key_type),
                   ctl_esc(c, list[i].serial_hex), until, root, ctl_esc(c, list[i].subject));
        }
    }
    store_ca_free_list(list, n);
    free(td);
    if (c->json) {
        json_arr_end(&j);
        json_obj_end(&j);
        return ctl_print_json(&j);
    }
    return 0;
}

static int ca_bundle_cmd(ctl_ctx *c)
{
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    mesh_err err = {0};
    char *pem = NULL;
    if (ca_bundle_pem(st, &pem, &err) != MESH_OK)
        return ctl_fail(c, &err);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "bundle_pem", pem);
        json_obj_end(&j);
        free(pem);
        return ctl_print_json(&j);
    }
    fputs(pem, stdout);
    free(pem);
    return 0;
}

int ctl_cmd_ca(ctl_ctx *c, int argc, char **argv)
{
    if (argc < 2)
        return ctl_usage_error(c, "ca needs a subcommand: init, show, bundle, rotate");
    if (strcmp(argv[1], "init") == 0)
        return ca_init_cmd(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0)
        return ca_show_cmd(c);
    if (strcmp(argv[1], "bundle") == 0)
        return ca_bundle_cmd(c);
    if (strcmp(argv[1], "rotate") == 0)
        return ctl_ca_rotate(c, argc - 1, argv + 1);
    return ctl_usage_error(c, "unknown ca subcommand '%s' (init, show, bundle, rotate)", argv[1]);
}
