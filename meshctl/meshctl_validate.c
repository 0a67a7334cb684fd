/* meshctl/meshctl_validate.c — `meshctl validate -f FILE [--trust-domain TD]`:
 * check a mesh config file without a store and without writing anything.
 *
 * Reports every error the whole-config checks find (not only the first, as
 * apply does: apply refuses at the first), and the warnings apply would
 * print: weights that do not sum to 100, a routed-to service that lets no
 * caller in, a subset that selects no workload. The file is checked on its
 * own: resources already in a store are not merged in (apply does that). The
 * trust domain comes from --trust-domain, else from the store when --db or
 * $MESHD_DB names one; with neither, SPIFFE IDs are checked for syntax only.
 * A YAML or field error stops the parse, so it is the one error reported.
 * Exit 0 when valid (warnings or not), 1 when not, 2 on usage. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/mesh_config.h"
#include "meshctl/meshctl.h"

typedef struct validate_report {
    const char *file;
    const char *trust_domain;   /* NULL: not checked */
    mesh_config_warnings errors;
    mesh_config_warnings warnings;
} validate_report;

static int print_report(ctl_ctx *c, const validate_report *r)
{
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "file", r->file);
        json_key_bool(&j, "valid", r->errors.n == 0);
        json_key_str(&j, "trust_domain", r->trust_domain);
        ctl_json_key_strings(&j, "errors", r->errors.msgs, r->errors.n);
        ctl_json_key_strings(&j, "warnings", r->warnings.msgs, r->warnings.n);
        json_obj_end(&j);
        if (ctl_print_json(&j) != 0)
            return 1;
        return r->errors.n ? 1 : 0;
    }
    for (size_t i = 0; i < r->errors.n; i++)
        fprintf(stderr, "error: %s\n", ctl_esc(c, r->errors.msgs[i]));
    for (size_t i = 0; i < r->warnings.n; i++)
        fprintf(stderr, "warning: %s\n", ctl_esc(c, r->warnings.msgs[i]));
    printf("%s: %s, %zu error%s, %zu warning%s%s\n", ctl_esc(c, r->file),
           r->errors.n ? "invalid" : "valid", r->errors.n, r->errors.n == 1 ? "" : "s",
           r->warnings.n, r->warnings.n == 1 ? "" : "s",
           r->trust_domain ? "" : " (trust domain not checked: give --trust-domain)");
    return r->errors.n ? 1 : 0;
}

int ctl_cmd_validate(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {{"file", required_argument, 0, 'f'},
                                         {"trust-domain", required_argument, 0, 't'},
                                         {0, 0, 0, 0}};
    const char *file = NULL, *td_flag = NULL;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
        switch (ch) {
        case 'f': file = optarg; break;
        case 't': td_flag = optarg; break;
        default: return ctl_bad_option(c, argc, argv, opts);
        }
    }
    if (!file)
        return ctl_usage_error(c, "validate needs -f FILE");
    if (optind < argc)
        return ctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
    char *td_store = NULL;
    if (!td_flag && c->db_path && !(td_store = ctl_trust_domain(c)))
        return 1;
    validate_report r = {.file = file, .trust_domain = td_flag ? td_flag : td_store};
    mesh_config cfg;
    memset(&cfg, 0, sizeof cfg);
    mesh_err err = {0};
    int rc = mesh_config_parse_file(file, &cfg, &err);
    if (rc == MESH_OK) {
        rc = mesh_config_validate_all(&cfg, r.trust_domain, &r.errors, &err);
        mesh_err werr = {0};
        if (rc != MESH_ENOMEM && mesh_config_warn(&cfg, &r.warnings, &werr) != MESH_OK)
            rc = MESH_ENOMEM;
    } else if (rc != MESH_ENOMEM) {
        /* parse errors stop the parse: the one error there is */
        char *m = strdup(err.msg);
        if (m && (r.errors.msgs = malloc(sizeof *r.errors.msgs))) {
            r.errors.msgs[0] = m;
            r.errors.n = 1;
        } else {
            free(m);
            rc = MESH_ENOMEM;
        }
    }
    int out;
    if (rc == MESH_ENOMEM) {
        mesh_err oom = {.code = MESH_ENOMEM};
        snprintf(oom.msg, sizeof oom.msg, "validate %s: out of memory", file);
        out = ctl_fail(c, &oom);
    } else {
        out = print_report(c, &r);
    }
    mesh_config_warnings_free(&r.errors);
    mesh_config_warnings_free(&r.warnings);
    mesh_config_free(&cfg);
    free(td_store);
    return out;
}
