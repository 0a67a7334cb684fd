/* sidecar/run.h — pieces of the mesh-sidecar binary shared by its files:
 * command-line options (run_flags.c), the xDS client -> data plane
 * hooks (run_hooks.c) and the identity bootstrap (run_boot.c). */
#ifndef MESH_SIDECAR_RUN_H
#define MESH_SIDECAR_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"
#include "common/log.h"
#include "sidecar/cert_pool.h"
#include "sidecar/proxy.h"
#include "sidecar/xds_client.h"

typedef struct sc_opts {
    const char *meshd;          /* --meshd host:port[,host:port...] (repeats joined) */
    char meshd_list[2048];      /* storage when --meshd is given more than once */
    const char *ca_bundle;      /* --ca-bundle file: roots meshd's certificate chains to */
    const char *state_dir;      /* --state-dir */
    const char *token;          /* --token mjt_... */
    const char *token_file;     /* --token-file F (re-read on every enrolment attempt) */
    const char *spiffe_id;      /* --id spiffe://... (required on first contact) */
    const char *workload;       /* --workload NAME (Node.id; meshd picks that workload) */
    const char *admin;          /* --admin ip:port */
    const char *server_name;    /* --server-name (default "meshd") */
    int64_t drain_ms;           /* --drain-time (default 2s) */
    int64_t reconnect_max_ms;   /* --reconnect-max (default 30s) */
    int64_t request_headers_timeout_ms; /* --request-headers-timeout (default 10s) */
    int64_t idle_timeout_ms;    /* --idle-timeout (default 5m) */
    const char *access_log;     /* --access-log FILE|- (NULL: none) */
    enum log_level log_level;
    enum log_format log_format; /* --log-format text|json */
} sc_opts;

/* Parses argv. Returns MESH_OK, or an error to print with the usage hint;
 * *help is set for -h/--help. */
int sc_parse_flags(int argc, char **argv, sc_opts *o, int *help, mesh_err *err);
void sc_usage(FILE *f);

typedef struct sc_boot_info {
    bool first_contact;         /* no SVID yet: a join token is needed */
    bool reenrol;               /* a join token this state dir never used: enrol with it now */
} sc_boot_info;

/* The state directory exists (0700) and holds a cert pool: loaded when
 * present (its identity must match --id), else a fresh one. --ca-bundle and
 * the join token are applied by the precedence of xds_inputs.h. Persisted xDS
 * state is cleared on first contact (it belongs to no identity). */
int sc_boot_identity(const sc_opts *o, cert_pool **pool, sc_boot_info *info, mesh_err *err);

/* Hooks that hand the xDS client's results to the proxy. */
xdsc_hooks sc_proxy_hooks(dp_proxy *px);

#endif
