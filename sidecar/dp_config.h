/* sidecar/dp_config.h — the data plane's in-memory model of applied xDS config.
 *
 * One dp_config is a complete, immutable snapshot of what the sidecar serves:
 * listeners (LDS), route tables (RDS), clusters (CDS) and load assignments
 * (EDS). The tables map 1:1 onto the Envoy resource types so the xDS client
 * can replace exactly one table per update:
 *
 *     next = dp_config_copy(current, DP_TABLE_ALL & ~DP_TABLE_CLUSTERS, err);
 *     dp_config_add_cluster(next, &c, err);  ...  (for every CDS resource)
 *     if (dp_config_freeze(next, err) != MESH_OK) -> NACK with err->msg
 *     else dp_proxy_apply_config(proxy, next, err)  -> ACK / NACK
 *     dp_config_unref(next);
 *
 * Lifecycle: dp_config_new() returns a mutable snapshot with one reference.
 * The add_* functions deep-copy their argument (the caller keeps ownership of
 * what it passes, so stack structs with borrowed strings are fine). Once
 * dp_config_freeze() succeeds the snapshot is validated, indexed and
 * immutable; only frozen snapshots can be handed to the proxy. References are
 * atomic, so a snapshot built on the xDS thread can be released on the event
 * loop thread; an in-flight request holds a reference and keeps the config it
 * started with while a newer one is swapped in.
 *
 * Validation follows Envoy's split between "malformed" and "not yet known":
 * a route or listener naming a cluster or route table that does not exist is
 * accepted (requests get 503 / 404 until it arrives), while a malformed
 * address, a duplicate name, a bad SPIFFE matcher or an all-zero weight set is
 * an error whose message names the resource and field. */
#ifndef MESH_SIDECAR_DP_CONFIG_H
#define MESH_SIDECAR_DP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/error.h"

/* Envoy's default route timeout when the RouteAction leaves it unset. An
 * explicit 0 means "no timeout", as in Envoy. */
#define DP_DEFAULT_ROUTE_TIMEOUT_MS   15000
/* Envoy's default cluster connect_timeout is 5 s; meshd's services say 1 s. */
#define DP_DEFAULT_CONNECT_TIMEOUT_MS 5000
/* Envoy's outlier detection defaults for fields left unset. */
#define DP_DEFAULT_BASE_EJECTION_MS   30000
#define DP_DEFAULT_MAX_EJECTION_MS    300000
#define DP_DEFAULT_OUTLIER_INTERVAL_MS 10000
/* Envoy's default circuit breaker thresholds (a cluster without circuit_breakers
 * has them too). */
#define DP_DEFAULT_MAX_CONNECTIONS    1024
#define DP_DEFAULT_MAX_PENDING        1024
#define DP_DEFAULT_MAX_REQUESTS       1024
#define DP_DEFAULT_MAX_RETRIES        3

/* HTTP/2 on one hop (http2 and grpc services; docs/dataplane.md, HTTP/2). On a listener:
 * it takes HTTP/2 (outbound: h2c with prior knowledge; inbound: ALPN "h2"). On a cluster:
 * the upstream speaks it (h2 over mTLS to a peer sidecar, h2c to the local app). The
 * numbers are what this side advertises in SETTINGS; 0 = the DP_H2_DEFAULT_* value. */
#define DP_H2_DEFAULT_MAX_STREAMS     100u
#define DP_H2_DEFAULT_STREAM_WINDOW   65536u
#define DP_H2_DEFAULT_CONN_WINDOW     1048576u
typedef struct dp_h2_cfg {
    bool enabled;
    uint32_t max_concurrent_streams;
    uint32_t stream_window;
    uint32_t connection_window;
} dp_h2_cfg;

typedef enum dp_listener_kind {
    DP_LISTENER_INBOUND_HTTP = 0,   /* mTLS in, RBAC per request, HTTP/1.1 to the local app */
    DP_LISTENER_INBOUND_TCP,        /* mTLS in, RBAC per connection, bytes to the local app */
    DP_LISTENER_OUTBOUND_HTTP,      /* plain HTTP/1.1 from the app, routed by a route table */
    DP_LISTENER_OUTBOUND_TCP,       /* plain bytes from the app to one cluster over mTLS */
} dp_listener_kind;

typedef struct dp_listener {
    char *name;                 /* unique, e.g. "inbound|9080", "outbound|http" */
    char *address;              /* "ip:port" or "[ipv6]:port"; numeric only; port 0 = ephemeral */
    dp_listener_kind kind;
    /* inbound: SPIFFE IDs allowed to call (RBAC). Empty = deny every caller
     * (meshd's "no authorization entry = deny all"). */
    char **allowed_ids;
    size_t n_allowed;
    char *local_cluster;        /* inbound: the cluster that reaches the local app */
    int64_t timeout_ms;         /* inbound http: per-request timeout, 0 = none */
    char *cluster;              /* outbound tcp: target cluster */
    char *route_table;          /* outbound http: RDS route_config_name */
    dp_h2_cfg h2;               /* http listeners: HTTP/2 accepted too */

    /* Filled by dp_config_freeze; ignored by dp_config_add_listener. */
    struct sockaddr_storage sa;
    socklen_t sa_len;
} dp_listener;

typedef enum dp_header_match_kind {
    DP_HDR_EXACT = 0,
    DP_HDR_PREFIX,
    DP_HDR_PRESENT,
} dp_header_match_kind;

typedef struct dp_header_matcher {
    char *name;                 /* case-insensitive */
    dp_header_match_kind kind;
    char *value;                /* case-sensitive; NULL for PRESENT */
    bool invert;                /* Envoy's invert_match */
} dp_header_matcher;

typedef enum dp_path_match_kind {
    DP_PATH_PREFIX = 0,         /* against the whole :path, query included (Envoy) */
    DP_PATH_EXACT,              /* against the path without the query string (Envoy) */
} dp_path_match_kind;

typedef struct dp_weighted_cluster {
    char *cluster;
    uint32_t weight;
} dp_weighted_cluster;

typedef struct dp_route {
    char *name;                 /* optional, for logs */
    dp_path_match_kind path_kind;
    char *path;                 /* must start with '/'; prefix "/" matches everything */
    dp_header_matcher *headers; /* all must match */
    size_t n_headers;
    /* Action: a single cluster is one entry with any non-zero weight. */
    dp_weighted_cluster *clusters;
    size_t n_clusters;
    int64_t timeout_ms;         /* 0 = no timeout */
    uint32_t retries;           /* extra attempts on connect failure / 5xx (idempotent methods) */
    int64_t per_try_timeout_ms; /* 0 = none: each attempt has the rest of timeout_ms */
    /* previous_hosts retry host predicate: a retry avoids every host earlier
     * attempts used (false: only the one that just failed). */
    bool retry_other_hosts;

    uint64_t total_weight;      /* filled by dp_config_freeze */
} dp_route;

typedef struct dp_virtual_host {
    char *name;
    /* "host", "host:port", "*.suffix", "prefix.*" or "*". Matched
     * case-insensitively; a request Host with a port also tries the bare host. */
    char **domains;
    size_t n_domains;
    dp_route *routes;           /* first match wins */
    size_t n_routes;
} dp_virtual_host;

typedef struct dp_route_table {
    char *name;                 /* RDS route_config_name */
    dp_virtual_host *vhosts;
    size_t n_vhosts;
} dp_route_table;

typedef enum dp_lb_policy {
    DP_LB_ROUND_ROBIN = 0,
    DP_LB_LEAST_REQUEST,        /* power of two choices on active requests */
} dp_lb_policy;

typedef enum dp_health {
    DP_HEALTH_UNKNOWN = 0,      /* Envoy treats UNKNOWN as healthy */
    DP_HEALTH_HEALTHY,
    DP_HEALTH_UNHEALTHY,
    DP_HEALTH_DRAINING,
    DP_HEALTH_TIMEOUT,
    DP_HEALTH_DEGRADED,         /* used only when no endpoint is healthy */
} dp_health;

typedef struct dp_endpoint {
    char *address;              /* "ip:port" / "[ipv6]:port", numeric, port 1..65535 */
    dp_health health;

    struct sockaddr_storage sa; /* filled by dp_config_freeze */
    socklen_t sa_len;
} dp_endpoint;

/* Cluster.outlier_detection (dp_health.h). */
typedef struct dp_outlier_cfg {
    bool enabled;                   /* the message was present */
    uint32_t consecutive_5xx;       /* 0: not enforced */
    uint32_t consecutive_gateway_failure;   /* 0: not enforced */
    int64_t interval_ms;
    int64_t base_ejection_ms;
    int64_t max_ejection_ms;
    uint32_t max_ejection_percent;
} dp_outlier_cfg;

typedef enum dp_hc_kind {
    DP_HC_NONE = 0,
    DP_HC_HTTP,                     /* GET path, 2xx = healthy */
    DP_HC_TCP,                      /* connect (and mTLS handshake) = healthy */
} dp_hc_kind;

/* Cluster.health_checks[0] (dp_health.h; probes in proxy_hc.c). */
typedef struct dp_health_check_cfg {
    dp_hc_kind kind;
    char *path;                     /* http */
    char *host;                     /* http: Host header; NULL = the cluster name */
    int64_t timeout_ms;
    int64_t interval_ms;
    int64_t interval_jitter_ms;
    uint32_t interval_jitter_percent;
    uint32_t unhealthy_threshold;
    uint32_t healthy_threshold;
} dp_health_check_cfg;

/* Cluster.circuit_breakers, DEFAULT priority. With set false the limits are
 * Envoy's defaults (filled by dp_config_add_cluster); with set true they are
 * taken as given (the xDS translator fills defaults for unset fields). */
typedef struct dp_breaker_cfg {
    bool set;
    uint32_t max_connections;
    uint32_t max_pending_requests;
    uint32_t max_requests;
    uint32_t max_retries;
} dp_breaker_cfg;

typedef struct dp_cluster {
    char *name;
    dp_lb_policy lb;
    int64_t connect_timeout_ms; /* 0 = DP_DEFAULT_CONNECT_TIMEOUT_MS */
    /* true: upstream is a peer sidecar reached over mTLS (outbound clusters);
     * false: plain TCP (the inbound "local app" cluster). */
    bool tls;
    /* Expected peer SPIFFE IDs (exact SAN matchers). Empty = any ID in our
     * trust domain. Only meaningful when tls. */
    char **san_ids;
    size_t n_san;
    /* false: endpoints below are the cluster's (STATIC). true: endpoints come
     * from the load assignment named eds_service_name (or the cluster name). */
    bool eds;
    char *eds_service_name;
    dp_endpoint *endpoints;
    size_t n_endpoints;
    dp_outlier_cfg outlier;
    dp_health_check_cfg hc;
    dp_breaker_cfg breakers;
    dp_h2_cfg h2;               /* the upstream speaks HTTP/2 */
} dp_cluster;

typedef struct dp_load_assignment {
    char *cluster_name;         /* EDS resource name */
    dp_endpoint *endpoints;
    size_t n_endpoints;
} dp_load_assignment;

/* Table masks for dp_config_copy. */
enum {
    DP_TABLE_LISTENERS   = 1u << 0,
    DP_TABLE_ROUTES      = 1u << 1,
    DP_TABLE_CLUSTERS    = 1u << 2,
    DP_TABLE_ASSIGNMENTS = 1u << 3,
    DP_TABLE_ALL         = 0xfu,
};

typedef struct dp_config dp_config;

/* An empty, mutable snapshot with one reference. NULL only on out-of-memory. */
dp_config *dp_config_new(void);
/* A mutable deep copy of the tables selected by keep_mask (others empty). */
dp_config *dp_config_copy(const dp_config *src, unsigned keep_mask);
dp_config *dp_config_ref(dp_config *cfg);
void dp_config_unref(dp_config *cfg);   /* NULL is fine */

/* Builders: deep copy; MESH_EINVAL on a frozen snapshot or a missing name.
 * Cross-checks (duplicates, addresses, weights) are dp_config_freeze's. */
int dp_config_add_listener(dp_config *cfg, const dp_listener *l, mesh_err *err);
int dp_config_add_route_table(dp_config *cfg, const dp_route_table *rt, mesh_err *err);
int dp_config_add_cluster(dp_config *cfg, const dp_cluster *c, mesh_err *err);
int dp_config_add_assignment(dp_config *cfg, const dp_load_assignment *la, mesh_err *err);

/* Checks the whole snapshot without changing it. The message names the
 * resource and field, e.g. "listener 'outbound|http': address
 * '127.0.0.1:99999': port must be 0..65535" — suitable as a NACK detail. */
int dp_config_validate(const dp_config *cfg, mesh_err *err);
/* Validates, resolves addresses and indexes, and makes the snapshot
 * immutable. On failure the snapshot stays mutable and unchanged. */
int dp_config_freeze(dp_config *cfg, mesh_err *err);
bool dp_config_is_frozen(const dp_config *cfg);

/* Read access (any snapshot; lookups are O(log n) once frozen). */
size_t dp_config_n_listeners(const dp_config *cfg);
const dp_listener *dp_config_listener_at(const dp_config *cfg, size_t i);
size_t dp_config_n_route_tables(const dp_config *cfg);
const dp_route_table *dp_config_route_table_at(const dp_config *cfg, size_t i);
size_t dp_config_n_clusters(const dp_config *cfg);
const dp_cluster *dp_config_cluster_at(const dp_config *cfg, size_t i);
size_t dp_config_n_assignments(const dp_config *cfg);
const dp_load_assignment *dp_config_assignment_at(const dp_config *cfg, size_t i);

const dp_listener *dp_config_find_listener(const dp_config *cfg, const char *name);
const dp_route_table *dp_config_find_route_table(const dp_config *cfg, const char *name);
/* *index_out (optional) is the cluster's position for dp_config_cluster_at. */
const dp_cluster *dp_config_find_cluster(const dp_config *cfg, const char *name, size_t *index_out);
const dp_load_assignment *dp_config_find_assignment(const dp_config *cfg, const char *name);
/* The endpoints a cluster uses: its own (STATIC) or its load assignment's
 * (EDS; none until the assignment arrives). */
const dp_endpoint *dp_config_cluster_endpoints(const dp_config *cfg, const dp_cluster *c,
                                               size_t *n_out);

const char *dp_listener_kind_name(dp_listener_kind k);
const char *dp_lb_policy_name(dp_lb_policy p);
const char *dp_health_name(dp_health h);
bool dp_health_usable(dp_health h);     /* UNKNOWN or HEALTHY */

#endif
