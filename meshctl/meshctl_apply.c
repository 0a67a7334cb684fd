/* meshctl/meshctl_apply.c — `meshctl apply -f FILE [--prune] [--dry-run] [--apply-set NAME]`.
 *
 * Every apply records its apply set (by default the file's absolute path) on each
 * resource it writes or finds unchanged; --prune then removes, in the same
 * transaction, the resources of that set the file no longer holds (never those of
 * another set, or of none: see config/config_apply.c). --dry-run validates and
 * reports the same changes, then rolls back. The report lists each change per
 * resource (add / update / remove); in text, an update shows the lines of its
 * canonical YAML that differ. Before anything is written, the merged config
 * must compile, for every workload, to xDS responses meshd can send
 * (--skip-size-check stores it anyway; meshd then refuses to send those). */
#include <getopt.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xds_wire.h"
#include "config/mesh_config.h"
#include "meshctl/meshctl.h"
#include "sds/protocol/ads_delivery.h"

typedef struct apply_args {
    const char *file;
    const char *apply_set;
    int prune;
    int dry_run;
    int skip_size_check;
} apply_args;

/* The mesh_apply_opts check: every workload's compiled responses fit the
 * delivery limit. */
static int check_delivery(const mesh_config *merged, void *ctx, mesh_err *err)
{
    (void)ctx;
    mesh_err e = {0};
    if (ads_delivery_check(merged, XDS_WIRE_MAX_MESSAGE, &e) != MESH_OK)
        return mesh_err_set(err, e.code, "config not applied: %s", e.msg);
    return MESH_OK;
}

static int parse_args(ctl_ctx *c, int argc, char **argv, apply_args *a)
{
    static const struct option opts[] = {{"file", required_argument, 0, 'f'},
                                         {"dry-run", no_argument, 0, 'n'},
                                         {"prune", no_argument, 0, 'p'},
                                         {"apply-set", required_argument, 0, 's'},
                                         {"skip-size-check", no_argument, 0, 'S'},
                                         {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
        switch (ch) {
        case 'f': a->file = optarg; break;
        case 'n': a->dry_run = 1; break;
        case 'p': a->prune = 1; break;
        case 's': a->apply_set = optarg; break;
        case 'S': a->skip_size_check = 1; break;
        default: return ctl_bad_option(c, argc, argv, opts);
        }
    }
    if (!a->file)
        return ctl_usage_error(c, "apply needs -f FILE");
    if (optind < argc)
        return ctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
    if (a->apply_set && !a->apply_set[0])
        return ctl_usage_error(c, "--apply-set needs a name (default: the file's absolute path)");
    return 0;
}

/* Splits s into lines (pointers into a copy); *n_out lines. */
static char **split_lines(const char *s, size_t *n_out, char **copy_out)
{
    *n_out = 0;
    *copy_out = strdup(s ? s : "");
    if (!*copy_out)
        return NULL;
    size_t cap = 1;
    for (const char *p = *copy_out; *p; p++)
        cap += *p == '\n';
    char **v = calloc(cap, sizeof *v);
    if (!v)
        return NULL;
    char *save = NULL;
    for (char *line = strtok_r(*copy_out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        v[(*n_out)++] = line;
    return v;
}

/* The lines of an update that differ, as "-" (before) and "+" (after) in order:
 * a longest-common-subsequence walk, enough for one resource's canonical YAML. */
static void print_line_diff(ctl_ctx *c, const char *before, const char *after)
{
    size_t na, nb;
    char *ca = NULL, *cb = NULL;
    char **a = split_lines(before, &na, &ca), **b = split_lines(after, &nb, &cb);
    size_t *lcs = a && b ? calloc((na + 1) * (nb + 1), sizeof *lcs) : NULL;
    if (!lcs) {
        printf("      (diff unavailable: out of memory)\n");
        goto out;
    }
#define L(i, j) lcs[(i) * (nb + 1) + (j)]
    for (size_t i = na; i-- > 0;)
        for (size_t j = nb; j-- > 0;)
            L(i, j) = strcmp(a[i], b[j]) == 0 ? L(i + 1, j + 1) + 1
                      : L(i + 1, j) >= L(i, j + 1) ? L(i + 1, j)
                                                   : L(i, j + 1);
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        if (i < na && j < nb && strcmp(a[i], b[j]) == 0) {
            i++, j++;
        } else if (j < nb && (i == na || L(i, j + 1) >= L(i + 1, j))) {
            printf("      + %s\n", ctl_esc(c, b[j++]));
        } else {
            printf("      - %s\n", ctl_esc(c, a[i++]));
        }
    }
#undef L
out:
    free(lcs);
    free(a);
    free(b);
    free(ca);
    free(cb);
}

static void print_text(ctl_ctx *c, const apply_args *a, const char *set, size_t total,
                       const mesh_apply_result *r)
{
    size_t adds = 0, updates = 0, removes = 0;
    for (size_t i = 0; i < r->n_changes; i++) {
        const mesh_change *ch = &r->changes[i];
        const char mark = ch->what == MESH_CHANGE_ADD ? '+' : ch->what == MESH_CHANGE_UPDATE ? '~'
                                                                                            : '-';
        adds += ch->what == MESH_CHANGE_ADD;
        updates += ch->what == MESH_CHANGE_UPDATE;
        removes += ch->what == MESH_CHANGE_REMOVE;
        printf("  %c %s %s/%s (%s%s)\n", mark, mesh_change_kind_name(ch->what), ch->kind,
               ctl_esc(c, ch->name), ch->what == MESH_CHANGE_REMOVE ? "last applied from " : "",
               ch->source && ch->source[0] ? ctl_esc(c, ch->source) : "?");
        if (ch->what == MESH_CHANGE_UPDATE)
            print_line_diff(c, ch->before, ch->after);
    }
    for (size_t i = 0; i < r->warnings.n; i++)
        fprintf(stderr, "warning: %s\n", ctl_esc(c, r->warnings.msgs[i]));
    if (a->dry_run)
        printf("%s: %zu resources valid, %zu would change (%zu added, %zu updated, %zu removed), "
               "%zu unchanged; apply set %s (dry run, nothing written)\n",
               ctl_esc(c, a->file), total, r->n_changes, adds, updates, removes, r->unchanged,
               ctl_esc(c, set));
    else
        printf("%s: %zu resources, %zu changed (%zu added, %zu updated, %zu removed), "
               "config version %lld; apply set %s%s\n",
               ctl_esc(c, a->file), total, r->n_changes, adds, updates, removes,
               (long long)r->config_version, ctl_esc(c, set),
               r->n_changes ? " (meshd pushes the change to the affected sidecars)" : "");
}

static int print_json(const apply_args *a, const char *set, size_t total,
                      const mesh_apply_result *r)
{
    json_out j;
    json_init(&j);
    json_obj_begin(&j);
    json_key_str(&j, "file", a->file);
    json_key_str(&j, "apply_set", set);
    json_key_bool(&j, "dry_run", a->dry_run);
    json_key_bool(&j, "prune", a->prune);
    json_key_int(&j, "resources", (int64_t)total);
    json_key_int(&j, "changed", (int64_t)r->n_changes);
    json_key_int(&j, "unchanged", (int64_t)r->unchanged);
    json_key_int(&j, "config_version", r->config_version);
    json_key(&j, "changes");
    json_arr_begin(&j);
    for (size_t i = 0; i < r->n_changes; i++) {
        const mesh_change *ch = &r->changes[i];
        json_obj_begin(&j);
        json_key_str(&j, "action", mesh_change_kind_name(ch->what));
        json_key_str(&j, "kind", ch->kind);
        json_key_str(&j, "name", ch->name);
        json_key_str(&j, "source", ch->source);
        json_key_str(&j, "before", ch->before);
        json_key_str(&j, "after", ch->after);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    ctl_json_key_strings(&j, "warnings", r->warnings.msgs, r->warnings.n);
    json_obj_end(&j);
    return ctl_print_json(&j);
}

int ctl_cmd_apply(ctl_ctx *c, int argc, char **argv)
{
    apply_args a = {0};
    int rc = parse_args(c, argc, argv, &a);
    if (rc)
        return rc;
    mesh_err err = {0};
    /* The default apply set is the file itself, wherever it is applied from. */
    char abs[PATH_MAX];
    const char *set = a.apply_set;
    if (!set) {
        if (!realpath(a.file, abs)) {
            mesh_err_set(&err, MESH_EIO, "cannot read %s: %s", a.file, strerror(errno));
            return ctl_fail(c, &err);
        }
        set = abs;
    }
    mesh_config cfg = {0};
    if (mesh_config_parse_file(a.file, &cfg, &err) != MESH_OK)
        return ctl_fail(c, &err);
    mesh_store *st = ctl_store(c);
    if (!st) {
        mesh_config_free(&cfg);
        return 1;
    }
    mesh_apply_opts o = {.apply_set = set,
                         .prune = a.prune,
                         .dry_run = a.dry_run,
                         .check = a.skip_size_check ? NULL : check_delivery};
    mesh_apply_result res;
    rc = mesh_config_apply_ex(st, &cfg, &o, &res, &err);
    size_t total = cfg.n_services + cfg.n_workloads + cfg.n_routes + cfg.n_authz;
    mesh_config_free(&cfg);
    if (rc != MESH_OK)
        return ctl_fail(c, &err);
    if (!a.dry_run) {
        char detail[200];
        size_t removed = 0;
        for (size_t i = 0; i < res.n_changes; i++)
            removed += res.changes[i].what == MESH_CHANGE_REMOVE;
        snprintf(detail, sizeof detail, "changed=%zu pruned=%zu config_version=%lld",
                 res.n_changes - removed, removed, (long long)res.config_version);
        store_audit(st, "meshctl", a.prune ? "config.apply.prune" : "config.apply", a.file,
                    detail, 1, NULL);
    }
    rc = c->json ? print_json(&a, set, total, &res) : (print_text(c, &a, set, total, &res), 0);
    mesh_apply_result_free(&res);
    return rc;
}
