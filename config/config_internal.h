/* config/config_internal.h — pieces shared inside the config module (not a public API).
 *
 * The module is split by job:
 *   config_yaml.c      libyaml loading, node walking, typed getters, "file:line: path:" errors
 *   config_parse.c     YAML nodes -> mesh_config (shape, types, unknown/duplicate keys)
 *   config_check.c     single-field checks (names, host:port, durations, paths, SPIFFE IDs)
 *   config_resource.c  whole-resource checks shared by the parser and the validator
 *   config_validate.c  whole-config checks (uniqueness, references, listener clashes)
 *   config_write.c     canonical YAML writer
 *   config_labels.c    labels, subset selectors (Kubernetes label syntax)
 *   config_model.c     free / find / equality
 *   config_store.c     apply / delete / load against the store
 *
 * Value checks live in one place (config_check.c + config_resource.c) so that
 * the parser (which knows line numbers) and mesh_config_validate (which also
 * sees configs built in code or loaded from the store) can never disagree
 * about what is valid, and so whatever apply writes, load_store can read back. */
#ifndef MESH_CONFIG_CONFIG_INTERNAL_H
#define MESH_CONFIG_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "config/mesh_config.h"

#define CONFIG_MAX_FILE_BYTES         (4u * 1024u * 1024u)
#define CONFIG_MAX_DURATION_MS        (24LL * 3600LL * 1000LL)
#define CONFIG_DEFAULT_CONNECT_MS     1000
#define CONFIG_DEFAULT_ROUTE_TIMEOUT  "15s"
#define CONFIG_MAX_RETRIES            10
/* Outlier detection defaults: Envoy's (consecutive_5xx 5, interval 10 s, base
 * ejection 30 s, max ejection 300 s, max 10 % ejected), which Istio keeps. */
#define CONFIG_DEFAULT_OUTLIER_5XX          5
#define CONFIG_DEFAULT_OUTLIER_INTERVAL_MS  10000
#define CONFIG_DEFAULT_BASE_EJECTION_MS     30000
#define CONFIG_DEFAULT_MAX_EJECTION_MS      300000
#define CONFIG_DEFAULT_MAX_EJECTION_PCT     10
/* Active health check defaults (when a service asks for one). */
#define CONFIG_DEFAULT_HC_PATH              "/healthz"
#define CONFIG_DEFAULT_HC_INTERVAL_MS       5000
#define CONFIG_DEFAULT_HC_TIMEOUT_MS        1000
#define CONFIG_DEFAULT_HC_UNHEALTHY         2
#define CONFIG_DEFAULT_HC_HEALTHY           1
#define CONFIG_MAX_WEIGHT             100
#define CONFIG_NAME_MAX               63
#define CONFIG_HTTP_PATH_MAX          1024
#define CONFIG_HEADER_VALUE_MAX       1024
#define CONFIG_WHY_MAX                256
#define CONFIG_MAX_DEPTH              32    /* YAML nesting; the schema needs 8 */
#define CONFIG_MAX_DESTINATIONS       64    /* per rule */
#define CONFIG_MAX_TCP_OUTBOUND       256   /* per workload */
#define CONFIG_MAX_LABELS             64    /* per workload or subset selector */
#define CONFIG_MAX_SUBSETS            64    /* per service */
#define CONFIG_LABEL_NAME_MAX         63    /* a label's name, and its value */
#define CONFIG_LABEL_PREFIX_MAX       253   /* the DNS prefix of a label key */

enum config_kind {
    CONFIG_KIND_SERVICE = 0,
    CONFIG_KIND_WORKLOAD,
    CONFIG_KIND_ROUTE,
    CONFIG_KIND_AUTHZ,
    CONFIG_KIND_COUNT
};

/* "service", "workload", "route", "authorization": the store's kind column. */
const char *config_kind_name(enum config_kind k);
/* "services", "workloads", "routes", "authorization": the top-level YAML key. */
const char *config_kind_key(enum config_kind k);
int config_kind_parse(const char *s, enum config_kind *out);   /* 0 or -1 */

/* ---- single-field checks (config_check.c) ---------------------------------
 * Each returns 0 if valid, else -1 with a human reason in why (no location). */
int config_check_name(const char *s, char *why, size_t n);
/* host:port where host is IPv4, [IPv6] or a DNS hostname. On success norm (if
 * non-NULL) receives a normalized "host:port" for comparisons and *wildcard
 * (if non-NULL) whether the host is 0.0.0.0 or [::]. */
int config_check_hostport(const char *s, char *norm, size_t norm_n, int *wildcard, char *why,
                          size_t n);
int config_check_route_host(const char *s, char *why, size_t n);
int config_check_http_path(const char *s, char *why, size_t n);
int config_check_header_name(const char *s, char *why, size_t n);
int config_check_header_value(const char *s, int allow_empty, char *why, size_t n);
/* Workload-shaped SPIFFE ID (spiffe://td/ns/x/sa/y); trust_domain may be NULL. */
int config_check_spiffe_id(const char *s, const char *trust_domain, char *why, size_t n);
/* "250ms", "2s", "1m", "1h" -> milliseconds. Rejects signs, fractions, garbage. */
int config_parse_duration(const char *s, int64_t *ms_out, char *why, size_t n);
/* The shortest exact form: 1000 -> "1s", 90000 -> "90s", 60000 -> "1m". */
void config_format_duration(int64_t ms, char *buf, size_t n);
const char *config_protocol_name(enum mesh_protocol p);   /* NULL if out of range */
const char *config_lb_name(enum mesh_lb lb);
const char *config_header_kind_name(enum mesh_header_match m);
/* Finds a repeated string in v[0..n) in O(n log n): returns 1 and sets *dup
 * to the lowest index whose string appeared before (at *first), 0 if all are
 * distinct, -1 if out of memory. icase compares ASCII case-insensitively. */
int config_first_dup(char *const *v, size_t n, int icase, size_t *dup, size_t *first);
/* Writes s as a double-quoted, escaped, length-capped string for error messages. */
void config_quote(const char *s, char *buf, size_t n);

/* ---- labels (config_labels.c) ------------------------------------------------ */
int config_check_label_key(const char *k, char *why, size_t n);
int config_check_label_value(const char *v, char *why, size_t n);
void config_labels_sort(mesh_label *l, size_t n);
void config_labels_free(mesh_label *l, size_t n);
int config_labels_equal(const mesh_label *a, size_t na, const mesh_label *b, size_t nb);
/* "k=v,k2=v2" for messages. */
void config_labels_format(const mesh_label *l, size_t n, char *buf, size_t len);
void config_subset_free(mesh_subset *s);

/* ---- whole-resource checks (config_resource.c) ----------------------------
 * 0 if valid; else -1 with field = the failing field relative to the resource
 * ("rules[1].destinations[0].weight", "" for the resource itself) and why. */
typedef struct config_fault {
    char field[256];
    char why[CONFIG_WHY_MAX];
} config_fault;

int config_check_service(const mesh_service *s, config_fault *f);
/* Outlier detection on with its defaults, no health check, no explicit limits. */
void config_service_health_defaults(mesh_service *s);
/* At most CONFIG_MAX_LABELS, each key and value well-formed, sorted by key
 * without repeats; field names the list ("labels", "subsets[1].labels"). */
int config_check_labels(const mesh_label *l, size_t n, const char *field, config_fault *f);
int config_check_workload(const mesh_workload *w, const char *trust_domain, config_fault *f);
int config_check_route(const mesh_route *r, config_fault *f);
int config_check_authorization(const mesh_authorization *a, const char *trust_domain,
                               config_fault *f);

/* ---- parsing (config_parse.c) --------------------------------------------- */
/* Parses the canonical YAML of one resource (a store row body) into *slot,
 * which must point to a zeroed mesh_service / mesh_workload / mesh_route /
 * mesh_authorization matching kind. On failure the slot is freed and zeroed. */
int config_parse_resource(const char *filename, const char *body, size_t len,
                          enum config_kind kind, void *slot, mesh_err *err);

/* ---- validation (config_validate.c) ---------------------------------------
 * n_input[k]: how many leading resources of kind k came from the operator's
 * input (errors name them "services[3]"); the rest came from the store
 * (errors name them "store:service/<name>"). NULL means all from input. */
int config_validate_ex(const mesh_config *cfg, const char *trust_domain,
                       const size_t n_input[CONFIG_KIND_COUNT], mesh_err *err);
/* mesh_config_warn with the same input/store naming. */
int config_warn_ex(const mesh_config *cfg, const size_t n_input[CONFIG_KIND_COUNT],
                   mesh_config_warnings *w, mesh_err *err);

/* ---- the config in the store (config_store.c) ------------------------------ */
/* Stored rows as a mesh_config, plus the rows themselves (ordered by kind and
 * name; bodies for the "did it change" comparison, apply sets for prune). The
 * resources of each kind are in row order. */
typedef struct config_stored {
    mesh_config cfg;
    store_resource *rows;
    size_t n_rows;
} config_stored;

int config_load_stored(mesh_store *st, config_stored *out, mesh_err *err);
void config_stored_free(config_stored *s);
const store_resource *config_stored_row(const config_stored *s, const char *kind,
                                        const char *name);
/* The canonical body of resource i must read back as the same resource, or
 * meshd could not load what is about to be stored (MESH_EINTERNAL). */
int config_check_roundtrip(enum config_kind k, const mesh_config *in, size_t i, const char *body,
                           mesh_err *err);
/* Room for n[k] resources of each kind (counts left 0). */
int config_alloc_kinds(mesh_config *cfg, const size_t n[CONFIG_KIND_COUNT], mesh_err *err);
size_t *config_kind_count_ptr(mesh_config *cfg, enum config_kind k);

/* ---- model helpers (config_model.c) --------------------------------------- */
void config_service_free(mesh_service *s);
void config_workload_free(mesh_workload *w);
void config_route_free(mesh_route *r);
void config_authorization_free(mesh_authorization *a);
/* Field-by-field equality ignoring `source` (parse(to_yaml(x)) == x). */
int config_service_equal(const mesh_service *a, const mesh_service *b);
int config_workload_equal(const mesh_workload *a, const mesh_workload *b);
int config_route_equal(const mesh_route *a, const mesh_route *b);
int config_authorization_equal(const mesh_authorization *a, const mesh_authorization *b);
int config_equal(const mesh_config *a, const mesh_config *b);
/* The name a resource is stored under (authorization: its service). */
const char *config_resource_name(enum config_kind k, const mesh_config *cfg, size_t i);
const char *config_resource_source(enum config_kind k, const mesh_config *cfg, size_t i);
size_t config_kind_count(enum config_kind k, const mesh_config *cfg);
/* Canonical YAML of resource i of kind k (malloc'd, NULL on allocation failure). */
char *config_resource_to_yaml(enum config_kind k, const mesh_config *cfg, size_t i);

#endif
