/* config/mesh_config.h — the operator's mesh config: model, YAML parsing, validation.
 *
 * `meshctl apply -f mesh.yaml` parses a YAML document (libyaml) into a
 * mesh_config, validates it as a whole (against what is already in the store),
 * and writes each resource into the store as canonical YAML (one store row per
 * resource). meshd loads the rows back with mesh_config_load_store and
 * compiles them into xDS resources (sds/compiler/xds_compile.h). Errors name the file,
 * line and field: "mesh.yaml:14: routes[0].rules[1].destinations[0].weight:
 * must be 0..100, got 140".
 *
 * YAML shape (see examples/mesh.yaml and docs/config.md):
 *   services:       [{name, protocol: http|tcp, port, lb: round_robin|least_request,
 *                     connect_timeout: 1s}]
 *   workloads:      [{name, spiffe_id, service, inbound: host:port, app: host:port,
 *                     outbound: host:port (HTTP egress listener, optional),
 *                     tcp_outbound: [{service, listen: host:port}] (optional)}]
 *   routes:         [{name, hosts: [..] (default [name]), rules: [{match: {prefix|path,
 *                     headers: [{name, exact|prefix|present}]}, destinations: [{service,
 *                     weight}], timeout: 2s, retries: N}]}]
 *   authorization:  [{service, allow: [spiffe ids]}]   (no entry = deny all callers)
 */
#ifndef MESH_CONFIG_MESH_CONFIG_H
#define MESH_CONFIG_MESH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "store/store.h"

enum mesh_protocol { MESH_PROTO_HTTP = 0, MESH_PROTO_TCP = 1 };
enum mesh_lb { MESH_LB_ROUND_ROBIN = 0, MESH_LB_LEAST_REQUEST = 1 };
enum mesh_header_match { MESH_HDR_EXACT = 0, MESH_HDR_PREFIX = 1, MESH_HDR_PRESENT = 2 };

typedef struct mesh_service {
    char *name;
    enum mesh_protocol protocol;
    int port;                   /* the application's port (informational; app addr is per workload) */
    enum mesh_lb lb;
    int64_t connect_timeout_ms; /* default 1000 */
    char *source;               /* "file:line" */
} mesh_service;

typedef struct mesh_tcp_outbound {
    char *service;
    char *listen;               /* host:port */
} mesh_tcp_outbound;

typedef struct mesh_workload {
    char *name;
    char *spiffe_id;
    char *service;
    char *inbound;              /* host:port the sidecar's mTLS listener binds; peers dial it */
    char *app;                  /* host:port of the local application */
    char *outbound;             /* host:port of the HTTP egress listener; NULL if none */
    mesh_tcp_outbound *tcp_outbound;
    size_t n_tcp_outbound;
    char *source;
} mesh_workload;

typedef struct mesh_header_matcher {
    char *name;
    enum mesh_header_match kind;
    char *value;                /* NULL for PRESENT */
} mesh_header_matcher;

typedef struct mesh_destination {
    char *service;
    uint32_t weight;            /* 0..100; weights of a rule sum to > 0 */
} mesh_destination;

typedef struct mesh_route_rule {
    char *prefix;               /* exactly one of prefix / path */
    char *path;
    mesh_header_matcher *headers;
    size_t n_headers;
    mesh_destination *destinations;
    size_t n_destinations;
    int64_t timeout_ms;         /* 0 = default 15 s */
    uint32_t retries;
} mesh_route_rule;

typedef struct mesh_route {
    char *name;
    char **hosts;
    size_t n_hosts;
    mesh_route_rule *rules;
    size_t n_rules;
    char *source;
} mesh_route;

typedef struct mesh_authorization {
    char *service;
    char **allow;               /* SPIFFE IDs allowed to call the service */
    size_t n_allow;
    char *source;
} mesh_authorization;

typedef struct mesh_config {
    mesh_service *services;        size_t n_services;
    mesh_workload *workloads;      size_t n_workloads;
    mesh_route *routes;            size_t n_routes;
    mesh_authorization *authz;     size_t n_authz;
} mesh_config;

/* Parses YAML from a file / buffer. filename is used in error messages. Only
 * syntax and per-field checks; cross-references are mesh_config_validate's. */
int mesh_config_parse_file(const char *path, mesh_config *out, mesh_err *err);
int mesh_config_parse_buffer(const char *filename, const char *buf, size_t len, mesh_config *out,
                             mesh_err *err);

/* Whole-config checks: unique names, references resolve (a route's service,
 * a workload's service), SPIFFE IDs in trust_domain (if non-NULL), addresses
 * well-formed and not reused by two listeners, weights sum > 0. */
int mesh_config_validate(const mesh_config *cfg, const char *trust_domain, mesh_err *err);

/* Merges `in` over the resources already in the store (apply = upsert by
 * kind+name), validates the merged result, then writes the changed resources
 * as canonical YAML in one transaction. Nothing is written if anything fails.
 * *changed_out = number of resources whose stored body changed. */
int mesh_config_apply(mesh_store *st, const mesh_config *in, int *changed_out, mesh_err *err);

/* Loads every resource from the store into a mesh_config. */
int mesh_config_load_store(mesh_store *st, mesh_config *out, mesh_err *err);

/* Added by config/: */
/* Everything mesh_config_apply does (merge, validate, compare) but rolls back
 * instead of committing: *changed_out = how many resources would change. */
int mesh_config_apply_dry_run(mesh_store *st, const mesh_config *in, int *changed_out,
                              mesh_err *err);
/* mesh_config_apply (dry_run 0) or its dry run (1), with one more check of the
 * merged, validated config before anything is written: check returns MESH_OK
 * or an error (in err) that refuses the apply. meshctl uses it to refuse a
 * config whose compiled xDS responses would not fit the delivery limit. */
typedef int (*mesh_config_check_fn)(const mesh_config *merged, void *ctx, mesh_err *err);
int mesh_config_apply_checked(mesh_store *st, const mesh_config *in, mesh_config_check_fn check,
                              void *check_ctx, int dry_run, int *changed_out, mesh_err *err);
/* Deletes one resource (kind "service", "workload", "route", "authorization";
 * an authorization is named by its service). Refuses (MESH_EINVAL) to delete
 * a service still referenced by a workload, route or authorization, naming
 * them; MESH_ENOTFOUND if there is no such resource. */
int mesh_config_delete(mesh_store *st, const char *kind, const char *name, mesh_err *err);

/* Canonical YAML of one resource (stable key order), malloc'd. */
char *mesh_service_to_yaml(const mesh_service *s);
char *mesh_workload_to_yaml(const mesh_workload *w);
char *mesh_route_to_yaml(const mesh_route *r);
char *mesh_authorization_to_yaml(const mesh_authorization *a);
/* A whole config as one YAML document in the input shape (re-appliable). */
char *mesh_config_to_yaml(const mesh_config *cfg);

const mesh_service *mesh_config_find_service(const mesh_config *cfg, const char *name);
const mesh_workload *mesh_config_find_workload_by_id(const mesh_config *cfg, const char *spiffe_id);

void mesh_config_free(mesh_config *cfg);   /* frees members */

#endif
