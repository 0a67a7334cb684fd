/* tools/meshctl.c — the operator CLI: entry point, global flags, dispatch.
 *
 * meshctl talks to the SQLite store directly (never to meshd), so every
 * operator action works while the control plane is down; meshd notices the
 * committed change and pushes it. */
#include "meshctl/meshctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/escape.h"
#include "common/log.h"
#include "common/suggest.h"
#include "common/version.h"

static mesh_store *open_store(ctl_ctx *c, int create)
{
    if (c->st)
        return c->st;
    mesh_err err = {0};
    if (!c->db_path) {
        mesh_err_set(&err, MESH_EINVAL, "no store given: pass --db PATH or set MESHD_DB");
        ctl_fail(c, &err);
        return NULL;
    }
    store_open_opts o = {.create = create || c->init};
    if (store_open_with(&c->st, c->db_path, &o, &err) != MESH_OK) {
        ctl_fail(c, &err);
        c->st = NULL;
        return NULL;
    }
    return c->st;
}

mesh_store *ctl_store(ctl_ctx *c)
{
    return open_store(c, 0);
}

mesh_store *ctl_store_create(ctl_ctx *c)
{
    return open_store(c, 1);
}

int ctl_fail(ctl_ctx *c, const mesh_err *err)
{
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "error", err->msg);
        json_key_str(&j, "code", mesh_status_name(err->code));
        json_obj_end(&j);
        const char *t = json_text(&j);
        fprintf(stderr, "%s\n", t ? t : "{\"error\":\"out of memory\"}");
        json_free(&j);
    } else {
        char msg[4 * sizeof err->msg];
        fprintf(stderr, "meshctl: %s\n", mesh_escape_str(err->msg, msg, sizeof msg));
    }
    return 1;
}

int ctl_usage_error(ctl_ctx *c, const char *fmt, ...)
{
    mesh_err err = {.code = MESH_EINVAL};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    ctl_fail(c, &err);
    if (!c->json)
        fputs("run 'meshctl help' for usage\n", stderr);
    return 2;
}

int ctl_print_json(json_out *j)
{
    const char *t = json_text(j);
    if (!t) {
        fputs("meshctl: out of memory\n", stderr);
        json_free(j);
        return 1;
    }
    printf("%s\n", t);
    json_free(j);
    return 0;
}

void ctl_format_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t ctl_now(void) { return (int64_t)time(NULL); }

typedef int (*ctl_cmd_fn)(ctl_ctx *, int, char **);

static const struct {
    const char *name;
    ctl_cmd_fn fn;
} commands[] = {
    {"ca", ctl_cmd_ca},
    {"workload", ctl_cmd_workload},
    {"cert", ctl_cmd_cert},
    {"apply", ctl_cmd_apply},
    {"validate", ctl_cmd_validate},
    {"get", ctl_cmd_get},
    {"delete", ctl_cmd_delete},
    {"proxy-status", ctl_cmd_proxy_status},
    {"describe", ctl_cmd_describe},
    {"audit", ctl_cmd_audit},
    {"replicas", ctl_cmd_replicas},
    {"store", ctl_cmd_store},
    {"drill", ctl_cmd_drill},
    {"version", ctl_cmd_version},
};

/* `meshctl CMD --help` / `-h`: that command's help, exit 0. The drill has a
 * full help text of its own and answers --help itself. */
static int wants_help(int argc, char **argv)
{
    if (strcmp(argv[0], "drill") == 0)
        return 0;
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--") == 0)
            return 0;
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    ctl_ctx c = {.db_path = getenv("MESHD_DB")};
    log_set_level(LOG_WARN);
    if (mesh_version_flag(argc, argv, "meshctl", stdout))
        return 0;
    int i = 1;
    /* Global flags come before the command word. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            c.db_path = argv[++i];
        } else if (strncmp(argv[i], "--db=", 5) == 0) {
            c.db_path = argv[i] + 5;
        } else if ((strcmp(argv[i], "--output") == 0 || strcmp(argv[i], "-o") == 0) && i + 1 < argc) {
            const char *o = argv[++i];
            if (strcmp(o, "json") == 0)
                c.json = 1;
            else if (strcmp(o, "text") != 0)
                return ctl_usage_error(&c, "--output must be text or json, got '%s'", o);
        } else if (strcmp(argv[i], "--json") == 0) {
            c.json = 1;
        } else if (strcmp(argv[i], "--init") == 0) {
            c.init = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            ctl_help_all(stdout);
            return 0;
        } else {
            static const char *const globals[] = {"--db", "--output", "--json", "--init",
                                                  "--help", "--version"};
            const char *close = mesh_suggest(argv[i], globals, sizeof globals / sizeof *globals);
            return close ? ctl_usage_error(&c, "unknown global option '%s'; did you mean '%s'?",
                                           argv[i], close)
                         : ctl_usage_error(&c, "unknown global option '%s'", argv[i]);
        }
    }
    if (i >= argc) {
        ctl_help_all(stderr);
        return 2;
    }
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 >= argc || strcmp(argv[i + 1], "--help") == 0 ||
            strcmp(argv[i + 1], "-h") == 0) {
            ctl_help_all(stdout);
            return 0;
        }
        if (ctl_help_command(stdout, argv[i + 1]) == 0)
            return 0;
        const char *close = ctl_suggest_command(argv[i + 1]);
        return close ? ctl_usage_error(&c, "help: unknown command '%s'; did you mean '%s'?",
                                       argv[i + 1], close)
                     : ctl_usage_error(&c, "help: unknown command '%s'", argv[i + 1]);
    }
    /* Global flags may also follow the command word: pull --db/--output out. */
    char **rest = calloc((size_t)(argc - i) + 1, sizeof *rest);
    if (!rest)
        return 1;
    int n = 0;
    for (int k = i; k < argc; k++) {
        if (strcmp(argv[k], "--db") == 0 && k + 1 < argc) {
            c.db_path = argv[++k];
        } else if (strcmp(argv[k], "--init") == 0) {
            c.init = 1;
        } else if ((strcmp(argv[k], "--output") == 0 || strcmp(argv[k], "-o") == 0) && k + 1 < argc) {
            const char *o = argv[++k];
            if (strcmp(o, "json") == 0) {
                c.json = 1;
            } else if (strcmp(o, "text") != 0) {
                free(rest);
                return ctl_usage_error(&c, "--output must be text or json, got '%s'", o);
            }
        } else {
            rest[n++] = argv[k];
        }
    }
    int rc = -1;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        if (strcmp(rest[0], commands[k].name) == 0) {
            if (wants_help(n, rest))
                rc = ctl_help_command(stdout, rest[0]);
            else
                rc = commands[k].fn(&c, n, rest);
            break;
        }
    }
    if (rc == -1) {
        const char *close = ctl_suggest_command(rest[0]);
        rc = close ? ctl_usage_error(&c, "unknown command '%s'; did you mean '%s'?", rest[0], close)
                   : ctl_usage_error(&c, "unknown command '%s'", rest[0]);
    }
    free(rest);
    if (c.st)
        store_close(c.st);
    ctl_text_free(&c);
    return rc;
}
