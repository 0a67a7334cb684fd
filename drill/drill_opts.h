/* drill/drill_opts.h — `meshctl drill`'s command line (drill_opts.c): defaults,
 * parsing with every range checked, and the usage text. Pure: nothing is printed
 * or started; a problem comes back as a message naming the option. */
#ifndef MESH_DRILL_DRILL_OPTS_H
#define MESH_DRILL_DRILL_OPTS_H

#include <stdio.h>

#include "common/error.h"
#include "drill/drill_model.h"

#define DRILL_OPTS_HELP 1             /* --help: print drill_usage() on stdout, exit 0 */

/* The documented defaults (docs/drill.md, "Options"). */
void drill_opts_defaults(drill_opts *o);

/* Parses argv (argv[0] == "drill"; getopt_long, so argv may be permuted).
 * json_stdout is meshctl's global --output json, db_path its --db / $MESHD_DB
 * (used only by --target). Returns MESH_OK; DRILL_OPTS_HELP for --help; or
 * MESH_EINVAL with err->msg naming the option and what it takes (a usage error:
 * meshctl exits 2). Strings in *o point into argv. */
int drill_parse_opts(int argc, char **argv, int json_stdout, const char *db_path, drill_opts *o,
                     mesh_err *err);
void drill_usage(FILE *f);

#endif
