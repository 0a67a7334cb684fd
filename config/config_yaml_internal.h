/* config/config_yaml_internal.h — the libyaml walking layer of the config parser.
 *
 * cfg_ctx holds one loaded YAML document plus the field path of the node being
 * read ("routes[0].rules[1]"), so every error can say
 * "mesh.yaml:14: routes[0].rules[1].destinations[0].weight: must be 0..100, got 140". */
#ifndef MESH_CONFIG_CONFIG_YAML_INTERNAL_H
#define MESH_CONFIG_CONFIG_YAML_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "common/error.h"
#include "config/config_internal.h"

typedef struct cfg_ctx {
    const char *file;       /* name used in messages */
    yaml_document_t doc;
    int have_doc;           /* doc must be deleted */
    yaml_node_t *root;      /* NULL when the input holds no (non-empty) document */
    char path[512];
    size_t path_len;
    mesh_err *err;
} cfg_ctx;

/* One expected key of a mapping; cfg_map fills value/keynode when present. */
typedef struct cfg_field {
    const char *key;
    yaml_node_t *value;
    yaml_node_t *keynode;
} cfg_field;

/* Loads buf: syntax errors (libyaml's problem + line), anchors/aliases, and a
 * second non-empty document are rejected. An empty input gives root == NULL. */
int cfg_load(cfg_ctx *c, const char *file, const char *buf, size_t len, mesh_err *err);
void cfg_unload(cfg_ctx *c);

size_t cfg_line(const yaml_node_t *n);
/* "file:line: path: message" (path omitted when empty). Returns MESH_EINVAL. */
int cfg_fail(cfg_ctx *c, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports a config_fault of the resource at `res` (whose path is current):
 * finds the line of the failing field by walking the YAML from res. */
int cfg_fail_fault(cfg_ctx *c, yaml_node_t *res, const config_fault *f);

size_t cfg_push_key(cfg_ctx *c, const char *key);
size_t cfg_push_index(cfg_ctx *c, size_t i);
void cfg_pop(cfg_ctx *c, size_t mark);

yaml_node_t *cfg_node(cfg_ctx *c, int index);
int cfg_is_null(const yaml_node_t *n);
const char *cfg_type_name(const yaml_node_t *n);

/* Reads a mapping against the expected keys: rejects a non-mapping, non-scalar
 * keys, duplicate keys and unknown keys (suggesting the nearest one). */
int cfg_map(cfg_ctx *c, yaml_node_t *map, cfg_field *fields, size_t n);
/* Requires a mapping node (null is not accepted). */
int cfg_expect_mapping(cfg_ctx *c, yaml_node_t *n);

/* Typed getters for a field of `map`. A missing or null optional field leaves
 * the default; a missing required field is an error at the mapping's line. */
int cfg_get_string(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required, char **out);
int cfg_get_int(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required, int64_t min,
                int64_t max, int64_t *out);
int cfg_get_bool(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required, int *out);
/* Durations are 1ms..24h; *out is left alone when absent. */
int cfg_get_duration(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required,
                     int64_t *out);
int cfg_get_enum(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required,
                 const char *const *names, size_t n_names, int *out);
/* A sequence (or null/absent: *n_out = 0). */
int cfg_get_seq(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required,
                yaml_node_t **seq_out, size_t *n_out);
yaml_node_t *cfg_seq_item(cfg_ctx *c, yaml_node_t *seq, size_t i);
/* The scalar at n as a string (the path must already name it). */
int cfg_scalar_string(cfg_ctx *c, yaml_node_t *n, char **out);
/* A list of strings (items may not be null). */
int cfg_get_string_list(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required,
                        char ***out, size_t *n_out);

char *cfg_strdup(cfg_ctx *c, const yaml_node_t *at, const char *s);

/* A service's outlier_detection, health_check and circuit_breakers mappings
 * (config_parse_health.c); defaults first, absent fields keep them. */
int cfg_parse_service_health(cfg_ctx *c, const cfg_field *outlier, const cfg_field *hc,
                             const cfg_field *breakers, mesh_service *s);

#endif
