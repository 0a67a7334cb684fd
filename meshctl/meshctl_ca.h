/* meshctl/meshctl_ca.h — what `meshctl ca init` and `meshctl ca rotate` share: their options. */
#ifndef MESH_MESHCTL_MESHCTL_CA_H
#define MESH_MESHCTL_MESHCTL_CA_H

#include <stdint.h>

#include "ca/ca.h"
#include "meshctl/meshctl.h"

/* Upper bound of `ca rotate --timeout`: a day (the wait polls the store). */
#define CTL_CA_MAX_TIMEOUT_S (24 * 3600)

typedef struct ctl_ca_args {
    ca_init_opts o;            /* material of a new CA */
    int material;              /* an option about the new CA's material was given */
    char key_dir[4096];
    int mode;                  /* 0 = whole rotation, 'p' prepare, 'a' activate, 'P' prune */
    int64_t activate_id;
    int64_t timeout_s;         /* --timeout; -1 = not given */
    int force;
} ctl_ca_args;

/* Parses the options of `ca init` / `ca rotate` (argv[0] is the subcommand).
 * Returns 0, or the exit status of a usage error it already printed. */
int ctl_ca_parse(ctl_ctx *c, int argc, char **argv, ctl_ca_args *a);

/* `meshctl ca rotate ...` (meshctl_ca_rotate.c). */
int ctl_ca_rotate(ctl_ctx *c, int argc, char **argv);

#endif
