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

static const char usage_text[] =
    "usage: meshctl [--db PATH] [--output text|json] [--init] COMMAND ...\n"
    "\n"
    "  ca init --trust-domain TD [--key-type ec-p256|rsa-3072] [--ttl 10y] [--key-dir DIR]\n"
    "          [--import-cert F --import-key F [--import-chain F]]\n"
    "  ca show | ca bundle\n"
    "  ca rotate [--timeout 5m] [--force] [--key-type T] [--ttl D] [--import-cert F ...]\n"
    "          new CA: publish its root, wait until every sidecar ACKed it, then activate\n"
    "  ca rotate --prepare | --activate ID [--timeout D] [--force] | --prune   (single steps)\n"
    "  workload add NAME --id SPIFFE_ID [--address HOST:PORT] [--selectors K:V,..] [--token-ttl 1h]\n"
    "                                   one instance (the workload NAME of the mesh config) of an\n"
    "                                   identity replicas share; 'workload add SPIFFE_ID' registers\n"
    "                                   the identity as a whole (one workload per identity)\n"
    "  workload token NAME|SPIFFE_ID [--token-ttl 1h]    (a new join token)\n"
    "  workload list | workload remove NAME|SPIFFE_ID\n"
    "  cert issue --csr FILE --id SPIFFE_ID [--ttl 24h] [--out FILE]\n"
    "  cert list [--id SPIFFE_ID] [--all] | cert show SERIAL\n"
    "  cert revoke SERIAL [--reason unspecified|keyCompromise|superseded|cessationOfOperation|\n"
    "                             affiliationChanged|privilegeWithdrawn|cACompromise|aACompromise]\n"
    "                                   keyCompromise revokes every certificate of the key\n"
    "  apply -f FILE [--prune] [--dry-run] [--apply-set NAME] [--skip-size-check]\n"
    "                                   write mesh config (services, workloads, routes, authorization);\n"
    "                                   --prune removes what this file (its apply set, default its\n"
    "                                   absolute path) applied before and no longer holds;\n"
    "                                   --dry-run shows each add/update/remove, writes nothing;\n"
    "                                   refused if a workload's compiled xDS response would exceed\n"
    "                                   the 4 MiB delivery limit (--skip-size-check: store it anyway,\n"
    "                                   meshd will not send that response)\n"
    "  get [services|workloads|routes|authorization]\n"
    "  delete KIND NAME\n"
    "  proxy-status                     sidecars, ACKed versions, last NACK, seconds to SVID expiry\n"
    "  audit [--limit N]\n"
    "  store check [--repair] [--accept-loss]   full integrity check, store vs its witness\n"
    "  store backup PATH [--overwrite]          online backup (safe while meshd runs)\n"
    "  store restore BACKUP [--force]           put a backup in place (meshd stopped)\n"
    "  drill [--sidecars N] [--ttl 60s] [--rate 50] [--outage D] [--json F] [--csv F] [--svg F]\n"
    "        [--expect-...]   control-plane outage drill on 127.0.0.1 ('meshctl drill --help')\n"
    "\n"
    "The store path comes from --db or $MESHD_DB. Only 'ca init' creates a new store\n"
    "(or any command given --init); a missing or empty store is refused otherwise.\n"
    "Durations are a whole number and a unit (ms, s, m, h, d, y), e.g. 90s, 24h, 10y; a\n"
    "bare number is seconds.\n";

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
    {"get", ctl_cmd_get},
    {"delete", ctl_cmd_delete},
    {"proxy-status", ctl_cmd_proxy_status},
    {"audit", ctl_cmd_audit},
    {"store", ctl_cmd_store},
    {"drill", ctl_cmd_drill},
};

int main(int argc, char **argv)
{
    ctl_ctx c = {.db_path = getenv("MESHD_DB")};
    log_set_level(LOG_WARN);
    int i = 1;
    /* Global flags come before the command word. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            c.db_path = argv[++i];
        } else if (strncmp(argv[i], "--db=", 5) == 0) {
            c.db_path = argv[i] + 5;
        } else if (strcmp(argv[i], "--output") == 0 && i + 1 < argc) {
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
            fputs(usage_text, stdout);
            return 0;
        } else {
            return ctl_usage_error(&c, "unknown global option '%s'", argv[i]);
        }
    }
    if (i >= argc || strcmp(argv[i], "help") == 0) {
        fputs(usage_text, i >= argc ? stderr : stdout);
        return i >= argc ? 2 : 0;
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
        } else if (strcmp(argv[k], "--output") == 0 && k + 1 < argc) {
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
            rc = commands[k].fn(&c, n, rest);
            break;
        }
    }
    if (rc == -1)
        rc = ctl_usage_error(&c, "unknown command '%s'", rest[0]);
    free(rest);
    if (c.st)
        store_close(c.st);
    ctl_text_free(&c);
    return rc;
}
