/* config/config_parse_health.c — a service's endpoint-health knobs in YAML:
 * outlier_detection (passive; on by default with Envoy's and Istio's
 * defaults), health_check (active; opt-in) and circuit_breakers. The checks
 * of the values are config_check_service's (config_resource.c). */
#include "config/config_yaml_internal.h"

#include <stdlib.h>
#include <string.h>

#define N_FIELDS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const hc_names[] = {"none", "http", "tcp"};  /* enum mesh_health_check_kind */

static int get_u32(cfg_ctx *c, yaml_node_t *n, const cfg_field *f, int64_t min, int64_t max,
                   uint32_t *out)
{
    int64_t v = *out;
    int rc = cfg_get_int(c, n, f, 0, min, max, &v);
    if (rc == MESH_OK)
        *out = (uint32_t)v;
    return rc;
}

static int parse_outlier(cfg_ctx *c, yaml_node_t *n, mesh_outlier *o)
{
    enum { F_5XX, F_GW, F_INTERVAL, F_BASE, F_MAX, F_PCT };
    cfg_field f[] = {{"consecutive_5xx", 0, 0}, {"consecutive_gateway_failure", 0, 0},
                     {"interval", 0, 0}, {"base_ejection_time", 0, 0},
                     {"max_ejection_time", 0, 0}, {"max_ejection_percent", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    if ((rc = get_u32(c, n, &f[F_5XX], 0, 1000, &o->consecutive_5xx)) != MESH_OK ||
        (rc = get_u32(c, n, &f[F_GW], 0, 1000, &o->consecutive_gateway_failure)) != MESH_OK ||
        (rc = cfg_get_duration(c, n, &f[F_INTERVAL], 0, &o->interval_ms)) != MESH_OK ||
        (rc = cfg_get_duration(c, n, &f[F_BASE], 0, &o->base_ejection_ms)) != MESH_OK ||
        (rc = cfg_get_duration(c, n, &f[F_MAX], 0, &o->max_ejection_ms)) != MESH_OK)
        return rc;
    return get_u32(c, n, &f[F_PCT], 0, 100, &o->max_ejection_percent);
}

static int parse_health_check(cfg_ctx *c, yaml_node_t *n, mesh_health_check *h)
{
    enum { F_TYPE, F_PATH, F_INTERVAL, F_TIMEOUT, F_UNHEALTHY, F_HEALTHY };
    cfg_field f[] = {{"type", 0, 0}, {"path", 0, 0}, {"interval", 0, 0}, {"timeout", 0, 0},
                     {"unhealthy_threshold", 0, 0}, {"healthy_threshold", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    int kind = MESH_HC_HTTP;
    h->interval_ms = CONFIG_DEFAULT_HC_INTERVAL_MS;
    h->timeout_ms = CONFIG_DEFAULT_HC_TIMEOUT_MS;
    h->unhealthy_threshold = CONFIG_DEFAULT_HC_UNHEALTHY;
    h->healthy_threshold = CONFIG_DEFAULT_HC_HEALTHY;
    if ((rc = cfg_get_enum(c, n, &f[F_TYPE], 1, hc_names, 3, &kind)) != MESH_OK ||
        (rc = cfg_get_string(c, n, &f[F_PATH], 0, &h->path)) != MESH_OK ||
        (rc = cfg_get_duration(c, n, &f[F_INTERVAL], 0, &h->interval_ms)) != MESH_OK ||
        (rc = cfg_get_duration(c, n, &f[F_TIMEOUT], 0, &h->timeout_ms)) != MESH_OK ||
        (rc = get_u32(c, n, &f[F_UNHEALTHY], 1, 100, &h->unhealthy_threshold)) != MESH_OK ||
        (rc = get_u32(c, n, &f[F_HEALTHY], 1, 100, &h->healthy_threshold)) != MESH_OK)
        return rc;
    h->kind = (enum mesh_health_check_kind)kind;
    if (h->kind == MESH_HC_HTTP && !h->path &&
        !(h->path = cfg_strdup(c, n, CONFIG_DEFAULT_HC_PATH)))
        return MESH_ENOMEM;
    return MESH_OK;
}

static int parse_breakers(cfg_ctx *c, yaml_node_t *n, mesh_circuit_breakers *b)
{
    enum { F_CONN, F_PENDING, F_REQ, F_RETRIES };
    cfg_field f[] = {{"max_connections", 0, 0}, {"max_pending_requests", 0, 0},
                     {"max_requests", 0, 0}, {"max_retries", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    if ((rc = get_u32(c, n, &f[F_CONN], 1, UINT32_MAX, &b->max_connections)) != MESH_OK ||
        (rc = get_u32(c, n, &f[F_PENDING], 1, UINT32_MAX, &b->max_pending_requests)) != MESH_OK ||
        (rc = get_u32(c, n, &f[F_REQ], 1, UINT32_MAX, &b->max_requests)) != MESH_OK)
        return rc;
    return get_u32(c, n, &f[F_RETRIES], 0, UINT32_MAX, &b->max_retries);
}

/* One optional sub-mapping: absent or null keeps the defaults. */
static int sub_map(cfg_ctx *c, const cfg_field *f, int (*parse)(cfg_ctx *, yaml_node_t *, void *),
                   void *out)
{
    if (!f->keynode || cfg_is_null(f->value))
        return MESH_OK;
    size_t mark = cfg_push_key(c, f->key);
    int rc = cfg_expect_mapping(c, f->value);
    if (rc == MESH_OK)
        rc = parse(c, f->value, out);
    cfg_pop(c, mark);
    return rc;
}

static int outlier_cb(cfg_ctx *c, yaml_node_t *n, void *o) { return parse_outlier(c, n, o); }
static int hc_cb(cfg_ctx *c, yaml_node_t *n, void *h) { return parse_health_check(c, n, h); }
static int cb_cb(cfg_ctx *c, yaml_node_t *n, void *b) { return parse_breakers(c, n, b); }

int cfg_parse_service_health(cfg_ctx *c, const cfg_field *outlier, const cfg_field *hc,
                             const cfg_field *breakers, mesh_service *s)
{
    config_service_health_defaults(s);
    int rc = sub_map(c, outlier, outlier_cb, &s->outlier);
    if (rc == MESH_OK)
        rc = sub_map(c, hc, hc_cb, &s->health_check);
    if (rc == MESH_OK)
        rc = sub_map(c, breakers, cb_cb, &s->circuit_breakers);
    return rc;
}
