/* meshctl/meshctl.h — what meshctl's subcommand files share: the invocation
 * context (store path, output mode) and the command table signature. */
#ifndef MESH_MESHCTL_MESHCTL_H
#define MESH_MESHCTL_MESHCTL_H

#include <stdio.h>
#include <stdint.h>

#include "common/error.h"
#include "common/json_out.h"
#include "store/store.h"

#define CTL_ESC_RING 16    /* escaped strings alive at once (one printf's worth) */

typedef struct ctl_ctx {
    const char *db_path;   /* --db or $MESHD_DB */
    int json;              /* --output json */
    int init;              /* --init: the command may create a new store */
    mesh_store *st;        /* opened lazily by ctl_store() */
    char *esc_ring[CTL_ESC_RING];  /* ctl_esc results, reused round-robin */
    size_t esc_next;
} ctl_ctx;

/* Opens the store (once). Prints the error and returns NULL on failure.
 * Never creates a store unless --init was given (see ctl_store_create). */
mesh_store *ctl_store(ctl_ctx *c);
/* The same, creating a new store at --db if there is none and nothing
 * witnesses an earlier one (`ca init`). */
mesh_store *ctl_store_create(ctl_ctx *c);

/* Prints an error as text or {"error":..,"code":..} and returns exit status 1 (2 for usage). */
int ctl_fail(ctl_ctx *c, const mesh_err *err);
int ctl_usage_error(ctl_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The store's trust domain (malloc'd), or NULL after printing why: no store,
 * or no CA yet (with the 'meshctl ca init' to run). Opens the store. */
char *ctl_trust_domain(ctl_ctx *c);
/* Ends a listing: with --output json closes the array begun with
 * json_arr_begin and prints it, else only frees j. Returns the exit status. */
int ctl_print_list(ctl_ctx *c, json_out *j);

/* Flag values (meshctl_common.c), checked by common/cli.h: 0, or the usage
 * error's exit status (2) after printing it. Durations: a bare number is
 * seconds, for every meshctl flag. ctl_bad_option follows getopt's '?'. */
struct option;
int ctl_bad_option(ctl_ctx *c, int argc, char **argv, const struct option *opts);
int ctl_flag_long(ctl_ctx *c, const char *flag, const char *value, long lo, long hi, long *out);
int ctl_flag_double(ctl_ctx *c, const char *flag, const char *value, double lo, double hi,
                    double *out);
int ctl_flag_duration_ms(ctl_ctx *c, const char *flag, const char *value, int64_t lo_ms,
                         int64_t hi_ms, int64_t *out);
int ctl_flag_duration_s(ctl_ctx *c, const char *flag, const char *value, int64_t lo_s,
                        int64_t hi_s, int64_t *out);
/* Prints a finished JSON document followed by a newline. */
int ctl_print_json(json_out *j);
void ctl_format_time(int64_t t, char *buf, size_t len);   /* RFC 3339 UTC */
int64_t ctl_now(void);
/* The CA key directory used when `ca init` gets no --key-dir: "<db dir>/ca-keys". */
void ctl_default_key_dir(const char *db_path, char *out, size_t len);

/* Text output of anything read from the store or the command line goes
 * through these (meshctl_text.c): control characters and invalid UTF-8 as
 * visible escapes (common/escape.h). ctl_esc_lines keeps newlines and tabs,
 * for multi-line bodies (PEM, YAML). The result stays valid until
 * CTL_ESC_RING more calls; ctl_text_free releases them all. */
const char *ctl_esc(ctl_ctx *c, const char *s);
const char *ctl_esc_lines(ctl_ctx *c, const char *s);
void ctl_text_free(ctl_ctx *c);

/* Subcommands: argv[0] is the subcommand word ("ca", "workload", ...). */
int ctl_cmd_ca(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_workload(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_cert(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_apply(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_delete(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_get(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_proxy_status(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_audit(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_replicas(ctl_ctx *c, int argc, char **argv); /* meshctl_replicas.c */
int ctl_cmd_store(ctl_ctx *c, int argc, char **argv);   /* meshctl_store.c */
int ctl_cmd_drill(ctl_ctx *c, int argc, char **argv);   /* drill/drill.c */
int ctl_cmd_version(ctl_ctx *c, int argc, char **argv); /* meshctl_version.c */
int ctl_cmd_validate(ctl_ctx *c, int argc, char **argv); /* meshctl_validate.c */
int ctl_cmd_describe(ctl_ctx *c, int argc, char **argv); /* meshctl_describe.c */

/* "key": [msgs...] (errors, warnings). */
void ctl_json_key_strings(json_out *j, const char *key, char *const *msgs, size_t n);

/* Help (meshctl_help.c): the whole text; one command's part (-1 if cmd is
 * not a command); the command closest to a mistyped word, or NULL. */
void ctl_help_all(FILE *out);
int ctl_help_command(FILE *out, const char *cmd);
const char *ctl_suggest_command(const char *word);

#endif
