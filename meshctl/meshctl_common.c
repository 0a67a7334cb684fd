/* meshctl/meshctl_common.c — what meshctl's subcommands (and its drill) share:
 * flag values checked by common/cli.h and reported as usage errors (exit 2,
 * text or JSON per --output) naming the flag; the store's trust domain, or
 * how to create a CA; the end of a listing. */
#include "meshctl/meshctl.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"

int ctl_bad_option(ctl_ctx *c, int argc, char **argv, const struct option *opts)
{
    mesh_err err = {0};
    cli_bad_option(argc, argv, opts, NULL, &err);
    /* Not close to a flag of this subcommand: maybe one of meshctl's own
     * (--output, --db, --init), which may follow the command word too. */
    static const struct option globals[] = {{"db", required_argument, 0, 0},
                                            {"output", required_argument, 0, 0},
                                            {"init", no_argument, 0, 0},
                                            {"json", no_argument, 0, 0},
                                            {0, 0, 0, 0}};
    if (!strstr(err.msg, "did you mean") && !strstr(err.msg, "needs a value")) {
        mesh_err g = {0};
        cli_bad_option(argc, argv, globals, NULL, &g);
        if (strstr(g.msg, "did you mean"))
            err = g;
    }
    return ctl_usage_error(c, "%s", err.msg);
}

int ctl_flag_long(ctl_ctx *c, const char *flag, const char *value, long lo, long hi, long *out)
{
    mesh_err err = {0};
    if (cli_long(flag, value, lo, hi, out, &err) != MESH_OK)
        return ctl_usage_error(c, "%s", err.msg);
    return 0;
}

int ctl_flag_double(ctl_ctx *c, const char *flag, const char *value, double lo, double hi,
                    double *out)
{
    mesh_err err = {0};
    if (cli_double(flag, value, lo, hi, out, &err) != MESH_OK)
        return ctl_usage_error(c, "%s", err.msg);
    return 0;
}

int ctl_flag_duration_ms(ctl_ctx *c, const char *flag, const char *value, int64_t lo_ms,
                         int64_t hi_ms, int64_t *out)
{
    mesh_err err = {0};
    if (cli_duration_ms(flag, value, DURATION_BARE_SECONDS, lo_ms, hi_ms, out, &err) != MESH_OK)
        return ctl_usage_error(c, "%s", err.msg);
    return 0;
}

int ctl_flag_duration_s(ctl_ctx *c, const char *flag, const char *value, int64_t lo_s,
                        int64_t hi_s, int64_t *out)
{
    mesh_err err = {0};
    if (cli_duration_s(flag, value, lo_s, hi_s, out, &err) != MESH_OK)
        return ctl_usage_error(c, "%s", err.msg);
    return 0;
}

char *ctl_trust_domain(ctl_ctx *c)
{
    mesh_store *st = ctl_store(c);
    if (!st)
        return NULL;
    mesh_err err = {0};
    char *td = NULL;
    int rc = store_setting_get(st, "trust_domain", &td, &err);
    if (rc == MESH_ENOTFOUND)
        mesh_err_set(&err, MESH_ENOTFOUND,
                     "no CA in %s yet: run 'meshctl ca init --trust-domain <td>' first",
                     store_path(st));
    if (rc != MESH_OK) {
        ctl_fail(c, &err);
        return NULL;
    }
    return td;
}

int ctl_print_list(ctl_ctx *c, json_out *j)
{
    if (!c->json) {
        json_free(j);
        return 0;
    }
    json_arr_end(j);
    return ctl_print_json(j);
}

void ctl_json_key_strings(json_out *j, const char *key, char *const *msgs, size_t n)
{
    json_key(j, key);
    json_arr_begin(j);
    for (size_t i = 0; i < n; i++)
        json_str(j, msgs[i]);
    json_arr_end(j);
}
