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
 *   services:       [{name, protocol: http|http2|grpc|tcp, port, lb: round_robin|least_request,
 *                     connect_timeout: 1s, subsets: [{name, labels: {k: v}}] (optional),
 *                     outlier_detection: {consecutive_5xx, consecutive_gateway_failure,
 *                       interval, base_ejection_time, max_ejection_time,
 *                       max_ejection_percent} (optional; on by default),
 *                     health_check: {type: http|tcp, path, interval, timeout,
 *                       unhealthy_threshold, healthy_threshold} (optional; off by default),
 *                     circuit_breakers: {max_connections, max_pending_requests,
 *                       max_requests, max_retries} (optional)}]
 *   workloads:      [{name, spiffe_id, service, inbound: host:port, app: host:port,
 *                     labels: {k: v} (optional),
 *                     outbound: host:port (HTTP egress listener, optional),
 *                     tcp_outbound: [{service, listen: host:port}] (optional)}]
 *   routes:         [{name, hosts: [..] (default [name]), rules: [{match: {prefix|path,
 *                     headers: [{name, exact|prefix|present}]}, destinations: [{service,
 *                     subset (optional), weight}], timeout: 2s, retries: N,
 *                     per_try_timeout: 1s (optional)}]}]
 *   authorization:  [{service, allow: [spiffe ids]}]   (no entry = deny all callers)
 * A workload is one instance: many may share a SPIFFE ID (the service account),
 * each with its own name and addresses. A service's subsets select its
 * workloads by label, as Istio's DestinationRule does; a route destination
 * names a service and optionally one of its subsets.
 */
#ifndef MESH_CONFIG_MESH_CONFIG_H
#define MESH_CONFIG_MESH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "store/store.h"

/* http2 and grpc are HTTP services whose sidecars speak HTTP/2 end to end (h2c from and to
 * the app, h2 over mTLS between sidecars); grpc is http2 that gRPC clients call. Everything
 * that routes HTTP (routes, virtual hosts, health checks) treats the three alike. */
enum mesh_protocol { MESH_PROTO_HTTP = 0, MESH_PROTO_TCP = 1, MESH_PROTO_HTTP2 = 2, MESH_PROTO_GRPC = 3 };

static inline int mesh_protocol_is_http(enum mesh_protocol p)
{
    return p == MESH_PROTO_HTTP || p == MESH_PROTO_HTTP2 || p == MESH_PROTO_GRPC;
}

/* The sidecars carry the service as HTTP/2 (compiled to HttpProtocolOptions + ALPN h2). */
static inline int mesh_protocol_is_h2(enum mesh_protocol p)
{
    return p == MESH_PROTO_HTTP2 || p == MESH_PROTO_GRPC;
}
enum mesh_lb { MESH_LB_ROUND_ROBIN = 0, MESH_LB_LEAST_REQUEST = 1 };
enum mesh_header_match { MESH_HDR_EXACT = 0, MESH_HDR_PREFIX = 1, MESH_HDR_PRESENT = 2 };

/* One label (Kubernetes syntax: [prefix/]name, value up to 63 characters). */
typedef struct mesh_label {
    char *key;
    char *value;
} mesh_label;

/* Passive health checking of a service's endpoints by every caller's sidecar
 * (Envoy's Cluster.outlier_detection). On by default, with Envoy's and
 * Istio's defaults; consecutive_5xx = 0 and consecutive_gateway_failure = 0
 * turn it off. Connect failures and resets count as 503. */
typedef struct mesh_outlier {
    uint32_t consecutive_5xx;           /* default 5 */
    uint32_t consecutive_gateway_failure; /* 502/503/504 only; default 0 (off) */
    int64_t interval_ms;                /* default 10 s: how often ejections are re-examined */
    int64_t base_ejection_ms;           /* default 30 s; times the host's ejection count */
    int64_t max_ejection_ms;            /* default 300 s: cap of the growing ejection time */
    uint32_t max_ejection_percent;      /* default 10 (at least one host may always go) */
} mesh_outlier;
/* All zero (a service built in code) means the defaults: this gives the
 * values in force (buf holds them when they are the defaults). */
struct mesh_service;
const mesh_outlier *config_service_outlier(const struct mesh_service *s, mesh_outlier *buf);
/* 1 when every field is equal (not memcmp: the struct has padding). */
int config_outlier_equal(const mesh_outlier *a, const mesh_outlier *b);

enum mesh_health_check_kind { MESH_HC_NONE = 0, MESH_HC_HTTP = 1, MESH_HC_TCP = 2 };

/* Active health checking (Envoy's Cluster.health_checks), opt-in: every
 * caller's sidecar probes each endpoint through its sidecar's mTLS inbound
 * listener (HTTP GET path expecting 2xx from the app, or a TCP+mTLS connect). */
typedef struct mesh_health_check {
    enum mesh_health_check_kind kind;   /* NONE: no active checks */
    char *path;                         /* http: default "/healthz" */
    int64_t interval_ms;                /* default 5 s (+ up to 10 % jitter) */
    int64_t timeout_ms;                 /* default 1 s */
    uint32_t unhealthy_threshold;       /* default 2 failures in a row */
    uint32_t healthy_threshold;         /* default 1 success */
} mesh_health_check;

/* Per-cluster limits in every caller's sidecar (Envoy's circuit breakers;
 * 0 = Envoy's default: 1024 / 1024 / 1024 / 3). */
typedef struct mesh_circuit_breakers {
    uint32_t max_connections;
    uint32_t max_pending_requests;
    uint32_t max_requests;
    uint32_t max_retries;
} mesh_circuit_breakers;

/* A named part of a service: the workloads that carry every label of the selector. */
typedef struct mesh_subset {
    char *name;
    mesh_label *labels;         /* sorted by key; at least one */
    size_t n_labels;
} mesh_subset;

typedef struct mesh_service {
    char *name;
    enum mesh_protocol protocol;
    int port;                   /* the application's port (informational; app addr is per workload) */
    enum mesh_lb lb;
    int64_t connect_timeout_ms; /* default 1000 */
    mesh_subset *subsets;       /* in config order */
    size_t n_subsets;
    mesh_outlier outlier;
    mesh_health_check health_check;
    mesh_circuit_breakers circuit_breakers;
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
    mesh_label *labels;         /* sorted by key */
    size_t n_labels;
    char *source;
} mesh_workload;

typedef struct mesh_header_matcher {
    char *name;
    enum mesh_header_match kind;
    char *value;                /* NULL for PRESENT */
} mesh_header_matcher;

typedef struct mesh_destination {
    char *service;
    char *subset;               /* one of the service's subsets; NULL = all its workloads */
    uint32_t weight;            /* 0..100; weights of a rule sum to > 0 */
    char *source;               /* "file:line" of the destination when parsed from a file, else
                                 * NULL; for messages only (not compared, not stored) */
} mesh_destination;

typedef struct mesh_route_rule {
    char *prefix;               /* exactly one of prefix / path */
    char *path;
    mesh_header_matcher *headers;
    size_t n_headers;
    mesh_destination *destinations;
    size_t n_destinations;
    int64_t timeout_ms;         /* 0 = default 15 s */
    uint32_t retries;           /* each retry goes to a host no earlier attempt used */
    int64_t per_try_timeout_ms; /* 0 = none (only the route timeout) */
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

/* Whole-config checks: unique names, references resolve (a route's service and
 * subset, a workload's service), SPIFFE IDs in trust_domain (if non-NULL),
 * addresses well-formed and not reused by two listeners, weights sum > 0.
 * Replicas may share a SPIFFE ID. */
int mesh_config_validate(const mesh_config *cfg, const char *trust_domain, mesh_err *err);

/* What is valid but probably not meant: a subset that selects no workload. */
typedef struct mesh_config_warnings {
    char **msgs;                /* "mesh.yaml:12: services[1].subsets[0]: ..." */
    size_t n;
} mesh_config_warnings;
/* As mesh_config_validate, but goes on past the first error: every error of
 * the per-resource checks and references, the first of each later phase
 * (duplicate hosts, shared listeners), each appended to errors
 * (meshctl validate). err holds the first; MESH_EINVAL if any. */
int mesh_config_validate_all(const mesh_config *cfg, const char *trust_domain,
                             mesh_config_warnings *errors, mesh_err *err);
/* Appends the warnings of cfg (a validated config) to w; MESH_ENOMEM only. */
int mesh_config_warn(const mesh_config *cfg, mesh_config_warnings *w, mesh_err *err);
void mesh_config_warnings_free(mesh_config_warnings *w);

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

/* ---- declarative apply (config_apply.c) ------------------------------------
 * apply_set names the set of resources one file manages (default: the file's
 * absolute path): every resource an apply writes, or finds unchanged, is
 * recorded as last applied by that set. With prune, the set's stored resources
 * that the file no longer holds are deleted in the same transaction, and the
 * result is validated as a whole. Resources of other sets, or of none, are never
 * pruned. */
/* One more check of the merged, validated config before anything is written:
 * MESH_OK, or an error (in err) that refuses the apply. meshctl uses it to
 * refuse a config whose compiled xDS responses would not fit the delivery
 * limit. */
typedef int (*mesh_config_check_fn)(const mesh_config *merged, void *ctx, mesh_err *err);

typedef struct mesh_apply_opts {
    const char *apply_set;      /* required with prune; NULL = record none */
    int prune;
    int dry_run;                /* validate and report, then roll back */
    mesh_config_check_fn check; /* NULL = none */
    void *check_ctx;
} mesh_apply_opts;

enum mesh_change_kind { MESH_CHANGE_ADD = 0, MESH_CHANGE_UPDATE, MESH_CHANGE_REMOVE };

typedef struct mesh_change {
    enum mesh_change_kind what;
    char *kind;                 /* "service", "workload", "route", "authorization" */
    char *name;
    char *source;               /* add/update: where in the file; remove: where it was last
                                 * applied from */
    char *before;               /* canonical YAML stored before (update, remove), else NULL */
    char *after;                /* canonical YAML written (add, update), else NULL */
} mesh_change;

typedef struct mesh_apply_result {
    mesh_change *changes;       /* by kind (services first), then file order; removals last */
    size_t n_changes;
    size_t unchanged;           /* resources of the file that were already stored as they are */
    int64_t config_version;     /* after the apply (a dry run: the version it would reach) */
    mesh_config_warnings warnings;
} mesh_apply_result;

int mesh_config_apply_ex(mesh_store *st, const mesh_config *in, const mesh_apply_opts *o,
                         mesh_apply_result *res, mesh_err *err);
void mesh_apply_result_free(mesh_apply_result *r);
const char *mesh_change_kind_name(enum mesh_change_kind k);   /* "add", "update", "remove" */
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

/* A resource's canonical YAML (as stored) as one JSON value appended to out
 * (config_json.c); on error out is unchanged. */
struct json_out;
int config_yaml_to_json(const char *yaml, size_t len, struct json_out *out, mesh_err *err);

const mesh_service *mesh_config_find_service(const mesh_config *cfg, const char *name);
const mesh_workload *mesh_config_find_workload(const mesh_config *cfg, const char *name);
/* The first workload with that SPIFFE ID (replicas may share it). */
const mesh_workload *mesh_config_find_workload_by_id(const mesh_config *cfg, const char *spiffe_id);
const mesh_subset *mesh_config_find_subset(const mesh_service *svc, const char *name);
/* 1 when the workload carries every label of the subset's selector. */
int mesh_subset_selects(const mesh_subset *sub, const mesh_workload *w);
/* The rule for every name in the config (a DNS label); MESH_EINVAL with why. */
int mesh_config_check_name(const char *name, mesh_err *err);

void mesh_config_free(mesh_config *cfg);   /* frees members */

#endif
