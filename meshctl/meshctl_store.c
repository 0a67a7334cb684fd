/* meshctl/meshctl_store.c — `meshctl store ...`: check, back up and restore
 * the store itself.
 *
 *   store check [--repair] [--accept-loss]
 *       Full integrity check and the store against its witness, on a store
 *       in any state (also one that meshd and other commands refuse) and
 *       next to a running meshd. Says what is wrong and what to do.
 *       Exit 0 healthy (also after a successful --repair/--accept-loss),
 *       3 damaged, 4 the store and its witness disagree (rolled back,
 *       replaced, lost, unreadable witness), 1 the check could not run,
 *       2 usage.
 *   store backup PATH [--overwrite]
 *       Online backup through SQLite's backup API, safe while meshd runs;
 *       recorded in the witness as the backup to restore.
 *   store restore BACKUP [--force]
 *       Puts a backup in place (meshd must be stopped) and resets the
 *       witness's high-water mark to it, deliberately. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshctl/meshctl.h"

#define EXIT_STORE_DAMAGED 3
#define EXIT_STORE_DISAGREES 4

static int exit_code_for(const store_check_report *r)
{
    switch (r->health) {
    case STORE_HEALTHY: return 0;
    case STORE_DAMAGED: return EXIT_STORE_DAMAGED;
    default: return r->loss_accepted ? 0 : EXIT_STORE_DISAGREES;
    }
}

/* "restore the last backup: 'meshctl ... store restore B' (change #N, T)". */
static void restore_hint(const ctl_ctx *c, const store_check_report *r, char *out, size_t len)
{
    if (!r->backup_path[0]) {
        snprintf(out, len,
                 "no backup was recorded by 'meshctl store backup'; if you have one, restore "
                 "it with 'meshctl --db %s store restore FILE'",
                 c->db_path);
        return;
    }
    char when[32];
    ctl_format_time(r->backup_at, when, sizeof when);
    snprintf(out, len,
             "restore the last backup: 'meshctl --db %s store restore %s' (change #%lld, %s; "
             "changes after it are lost)",
             c->db_path, r->backup_path, (long long)r->backup_seq, when);
}

/* What the operator should do, in words. */
static void advice_for(const ctl_ctx *c, const store_check_report *r, char *out, size_t len)
{
    char restore[1400];
    restore_hint(c, r, restore, sizeof restore);
    const char *p = c->db_path;
    char keys[512];
    ctl_default_key_dir(p, keys, sizeof keys);
    if (r->loss_accepted && r->health == STORE_LOST) {
        snprintf(out, len,
                 "the loss was accepted: the witness forgot the lost store, so a new one may be "
                 "created: 'meshctl --db %s ca init --trust-domain <your.domain> --key-dir "
                 "<new dir>'. The lost CA's private keys (in %s, unless it had its own "
                 "--key-dir) stay where they are and refuse a new CA in their directory; move "
                 "them away only once you are sure nothing needs them.",
                 p, keys);
        return;
    }
    if (r->loss_accepted) {
        snprintf(out, len,
                 "the loss was accepted: the witness now records change #%lld as the "
                 "high-water mark, and meshd and meshctl open the store as it is.",
                 (long long)r->witness_seq);
        return;
    }
    switch (r->health) {
    case STORE_HEALTHY:
        if (r->repaired)
            snprintf(out, len, "the indexes were rebuilt from the rows and the full check now "
                               "passes; nothing was lost. Start meshd again.");
        else
            snprintf(out, len, "nothing to do.");
        return;
    case STORE_DAMAGED:
        if (r->index_only)
            snprintf(out, len,
                     "only indexes are damaged (%s); every row is intact, but lookups through "
                     "those indexes miss rows. Stop meshd, then rebuild them (nothing is "
                     "lost): 'meshctl --db %s store check --repair'. Or %s.",
                     r->damaged_indexes, p, restore);
        else
            snprintf(out, len,
                     "table rows or page structure are damaged, which no rebuild can fix. Stop "
                     "meshd and %s. Without a backup, 'sqlite3 %s .recover' salvages what it "
                     "can as SQL.",
                     restore, p);
        return;
    case STORE_ROLLED_BACK:
        snprintf(out, len,
                 "the store moved backwards: it holds change #%lld, but #%lld was seen "
                 "committed, so %lld committed changes are gone (WAL frames dropped at "
                 "recovery, or an older copy of the file was put back). Certificates issued "
                 "in them are unknown to the store: their renewal is refused. Stop meshd and "
                 "%s; or, if you decided to keep the store as it is: 'meshctl --db %s store "
                 "check --accept-loss'.",
                 (long long)r->seq, (long long)r->witness_seq,
                 (long long)(r->witness_seq - r->seq), restore, p);
        return;
    case STORE_REPLACED:
        snprintf(out, len,
                 "this file is another store (id %.8s) than the one its witness describes (id "
                 "%.8s, change #%lld): the file was replaced. Put the right file back, or %s; "
                 "or, to keep this store: 'meshctl --db %s store check --accept-loss'.",
                 r->store_id, r->witness_store_id, (long long)r->witness_seq, restore, p);
        return;
    case STORE_LOST:
        snprintf(out, len,
                 "the store file is missing or empty, but its witness saw change #%lld: the "
                 "store was lost, and meshd and meshctl refuse to start a new one over it; "
                 "%s. To start over with an empty store instead (every identity and "
                 "certificate is lost): 'meshctl --db %s store check --accept-loss', then "
                 "'meshctl ca init' with a --key-dir of its own (the lost CA's keys, in %s "
                 "by default, refuse a new CA beside them).",
                 (long long)r->witness_seq, restore, p, keys);
        return;
    case STORE_WITNESS_UNREADABLE:
        snprintf(out, len,
                 "the witness file %s-witness holds no intact record, so nothing vouches for "
                 "the store's history; the store itself passed the full check. If it holds "
                 "what you expect: 'meshctl --db %s store check --accept-loss' writes a new "
                 "witness from it.",
                 p, p);
        return;
    }
    snprintf(out, len, "unknown state");
}

static void print_check_json(const ctl_ctx *c, const store_check_report *r, const char *advice)
{
    json_out j;
    json_init(&j);
    json_obj_begin(&j);
    json_key_str(&j, "path", c->db_path);
    json_key_str(&j, "health", store_health_name(r->health));
    json_key_int(&j, "exit_code", exit_code_for(r));
    json_key(&j, "problems");
    json_arr_begin(&j);
    for (size_t i = 0; i < r->n_problems; i++)
        json_str(&j, r->problems[i]);
    json_arr_end(&j);
    json_key_bool(&j, "index_only", r->index_only);
    json_key_str(&j, "damaged_indexes", r->damaged_indexes ? r->damaged_indexes : "");
    json_key_int(&j, "pages", r->pages);
    json_key_int(&j, "page_size", r->page_size);
    json_key_int(&j, "check_ms", r->elapsed_ms);
    json_key_int(&j, "schema_version", r->schema_version);
    json_key_bool(&j, "counter_read", r->counter_read);
    json_key_int(&j, "seq", r->seq);
    json_key_str(&j, "store_id", r->store_id);
    json_key(&j, "witness");
    json_obj_begin(&j);
    json_key_bool(&j, "present", r->witness_present);
    json_key_int(&j, "seq", r->witness_seq);
    json_key_str(&j, "store_id", r->witness_store_id);
    json_key_bool(&j, "clean_close", r->witness_clean);
    json_obj_end(&j);
    json_key(&j, "last_backup");
    if (r->backup_path[0]) {
        char when[32];
        ctl_format_time(r->backup_at, when, sizeof when);
        json_obj_begin(&j);
        json_key_str(&j, "path", r->backup_path);
        json_key_str(&j, "at", when);
        json_key_int(&j, "seq", r->backup_seq);
        json_obj_end(&j);
    } else {
        json_null(&j);
    }
    json_key_bool(&j, "in_use", r->in_use);
    json_key_bool(&j, "repaired", r->repaired);
    json_key_bool(&j, "loss_accepted", r->loss_accepted);
    json_key_str(&j, "advice", advice);
    json_obj_end(&j);
    ctl_print_json(&j);
}

static void print_check_text(const ctl_ctx *c, const store_check_report *r, const char *advice)
{
    printf("store %s: %s%s\n", c->db_path, store_health_name(r->health),
           r->loss_accepted ? " (loss accepted)" : "");
    if (r->health != STORE_LOST) {
        printf("  integrity_check  %zu problem%s (%lld pages of %lld bytes, %lld ms)%s\n",
               r->n_problems, r->n_problems == 1 ? "" : "s", (long long)r->pages,
               (long long)r->page_size, (long long)r->elapsed_ms,
               r->repaired ? ", after --repair" : "");
        for (size_t i = 0; i < r->n_problems && i < 20; i++)
            printf("    %s\n", r->problems[i]);
        if (r->n_problems > 20)
            printf("    ... %zu more (--output json lists up to 100)\n", r->n_problems - 20);
        if (!r->counter_read)
            printf("  change counter   unreadable (the store is damaged)\n");
        else
            printf("  change counter   #%lld (store id %s)\n", (long long)r->seq,
                   r->store_id[0] ? r->store_id : "none: a store from before schema v3");
    }
    if (r->witness_present)
        printf("  witness          %s-witness: #%lld, store id %s, last close %s\n", c->db_path,
               (long long)r->witness_seq, r->witness_store_id[0] ? r->witness_store_id : "none",
               r->witness_clean ? "clean" : "not clean (or the store is open)");
    else
        printf("  witness          none\n");
    if (r->backup_path[0]) {
        char when[32];
        ctl_format_time(r->backup_at, when, sizeof when);
        printf("  last backup      %s (change #%lld, %s)\n", r->backup_path,
               (long long)r->backup_seq, when);
    }
    if (r->in_use)
        printf("  in use           yes (meshd or another meshctl has it open)\n");
    printf("what to do: %s\n", advice);
}

static int store_check_cmd(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {{"repair", no_argument, 0, 'r'},
                                         {"accept-loss", no_argument, 0, 'a'},
                                         {0, 0, 0, 0}};
    store_check_opts o = {0};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'r': o.repair = 1; break;
        case 'a': o.accept_loss = 1; break;
        default: return ctl_bad_option(c, argc, argv, opts);
        }
    }
    if (optind < argc)
        return ctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
    if (!c->db_path)
        return ctl_usage_error(c, "no store given: pass --db PATH or set MESHD_DB");
    store_check_report r;
    mesh_err err = {0};
    if (store_check(c->db_path, &o, &r, &err) != MESH_OK) {
        store_check_report_free(&r);
        return ctl_fail(c, &err);
    }
    if (r.loss_accepted) {
        /* The decision goes into the audit log of the store it concerns
         * (a lost store has none left to write to). */
        char detail[300];
        snprintf(detail, sizeof detail, "store %s with change #%lld accepted as it is (%s)",
                 store_health_name(r.health), (long long)r.seq,
                 r.health == STORE_LOST ? "store lost" : "witness reset");
        if (r.health != STORE_LOST) {
            mesh_store *st = ctl_store(c);
            if (!st || store_audit(st, "meshctl", "store.loss_accepted", c->db_path, detail, 1,
                                   &err) != MESH_OK) {
                store_check_report_free(&r);
                return st ? ctl_fail(c, &err) : 1;
            }
        }
    }
    char advice[4096];
    advice_for(c, &r, advice, sizeof advice);
    if (c->json)
        print_check_json(c, &r, advice);
    else
        print_check_text(c, &r, advice);
    int code = exit_code_for(&r);
    store_check_report_free(&r);
    return code;
}

static int store_backup_cmd(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {{"overwrite", no_argument, 0, 'o'}, {0, 0, 0, 0}};
    int overwrite = 0;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch != 'o')
            return ctl_bad_option(c, argc, argv, opts);
        overwrite = 1;
    }
    if (optind + 1 != argc)
        return ctl_usage_error(c, "store backup needs exactly one PATH to write the backup to");
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    store_backup_info info;
    mesh_err err = {0};
    if (store_backup(st, argv[optind], overwrite, &info, &err) != MESH_OK)
        return ctl_fail(c, &err);
    char detail[300];
    snprintf(detail, sizeof detail, "change #%lld, %lld pages", (long long)info.seq,
             (long long)info.pages);
    (void)store_audit(st, "meshctl", "store.backup", info.path, detail, 1, NULL);
    /* CA keys are files beside the store, not rows in it. */
    store_ca *cas = NULL;
    size_t n = 0;
    (void)store_ca_list(st, &cas, &n, NULL);
    char when[32];
    ctl_format_time(info.at, when, sizeof when);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "path", info.path);
        json_key_str(&j, "store_id", info.store_id);
        json_key_int(&j, "seq", info.seq);
        json_key_int(&j, "pages", info.pages);
        json_key_int(&j, "bytes", info.bytes);
        json_key_str(&j, "at", when);
        json_key_int(&j, "elapsed_ms", info.elapsed_ms);
        json_key(&j, "ca_key_files");
        json_arr_begin(&j);
        for (size_t i = 0; i < n; i++)
            if (strcmp(cas[i].state, "removed") != 0)
                json_str(&j, cas[i].key_path);
        json_arr_end(&j);
        json_obj_end(&j);
        store_ca_free_list(cas, n);
        return ctl_print_json(&j);
    }
    printf("backup of %s written to %s\n", c->db_path, info.path);
    printf("  change #%lld, %lld pages (%lld bytes), integrity_check ok, %lld ms, %s\n",
           (long long)info.seq, (long long)info.pages, (long long)info.bytes,
           (long long)info.elapsed_ms, when);
    printf("  recorded in %s-witness as the backup to restore\n", c->db_path);
    if (n > 0) {
        printf("  CA private keys are not in the store; back these up too:\n");
        for (size_t i = 0; i < n; i++)
            if (strcmp(cas[i].state, "removed") != 0)
                printf("    %s\n", cas[i].key_path);
    }
    store_ca_free_list(cas, n);
    return 0;
}

static int store_restore_cmd(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {{"force", no_argument, 0, 'f'}, {0, 0, 0, 0}};
    int force = 0;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch != 'f')
            return ctl_bad_option(c, argc, argv, opts);
        force = 1;
    }
    if (optind + 1 != argc)
        return ctl_usage_error(c, "store restore needs exactly one BACKUP file");
    if (!c->db_path)
        return ctl_usage_error(c, "no store given: pass --db PATH or set MESHD_DB");
    const char *backup = argv[optind];
    store_restore_info info;
    mesh_err err = {0};
    if (store_restore(c->db_path, backup, force, &info, &err) != MESH_OK)
        return ctl_fail(c, &err);
    /* Opening it now runs the full check once and records the restore. */
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    char detail[9000];
    snprintf(detail, sizeof detail, "from %s: change #%lld (the witness had seen #%lld)%s%s",
             backup, (long long)info.seq, (long long)info.witness_seq,
             info.kept_path[0] ? "; replaced store kept as " : "", info.kept_path);
    if (store_audit(st, "meshctl", "store.restore", c->db_path, detail, 1, &err) != MESH_OK)
        return ctl_fail(c, &err);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "path", c->db_path);
        json_key_str(&j, "backup", backup);
        json_key_int(&j, "seq", info.seq);
        json_key_int(&j, "witness_seq_before", info.witness_seq);
        json_key_int(&j, "lost_changes",
                     info.witness_seq > info.seq ? info.witness_seq - info.seq : 0);
        json_key_str(&j, "kept", info.kept_path);
        json_obj_end(&j);
        return ctl_print_json(&j);
    }
    printf("restored %s from %s (change #%lld)\n", c->db_path, backup, (long long)info.seq);
    if (info.witness_seq > info.seq)
        printf("  %lld changes recorded after the backup are gone (the witness had seen "
               "#%lld); certificates issued in them must be re-issued\n",
               (long long)(info.witness_seq - info.seq), (long long)info.witness_seq);
    if (info.kept_path[0])
        printf("  the replaced store was kept as %s\n", info.kept_path);
    printf("  full integrity check passed; start meshd again\n");
    return 0;
}

int ctl_cmd_store(ctl_ctx *c, int argc, char **argv)
{
    if (argc < 2)
        return ctl_usage_error(c, "store needs a subcommand: check, backup, restore");
    if (strcmp(argv[1], "check") == 0)
        return store_check_cmd(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "backup") == 0)
        return store_backup_cmd(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "restore") == 0)
        return store_restore_cmd(c, argc - 1, argv + 1);
    return ctl_usage_error(c, "unknown store subcommand '%s' (check, backup, restore)", argv[1]);
}
