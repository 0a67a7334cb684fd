/* config/config_parse.c — YAML nodes -> mesh_config.
 *
 * Reads the shape documented in config/mesh_config.h and docs/config.md:
 * types, required fields, unknown and duplicate keys, defaults. Each finished
 * resource then goes through the shared resource checks (config_resource.c);
 * a failure is mapped back to the failing field's line. Cross-resource rules
 * are mesh_config_validate's. */
#include "config/config_yaml_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#define N_FIELDS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const protocol_names[] = {"http", "tcp", "http2", "grpc"}; /* enum mesh_protocol order */
static const char *const lb_names[] = {"round_robin", "least_request"}; /* enum mesh_lb order */

static int set_source(cfg_ctx *c, yaml_node_t *n, char **out)
{
    if (asprintf(out, "%s:%zu", c->file, cfg_line(n)) < 0) {
        *out = NULL;
        return mesh_err_set(c->err, MESH_ENOMEM, "%s: out of memory", c->file);
    }
    return MESH_OK;
}

static void *alloc_array(cfg_ctx *c, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        mesh_err_set(c->err, MESH_ENOMEM, "%s: out of memory", c->file);
    return p;
}

/* labels: {key: value, ...}, a free-form mapping: each key and value checked
 * where it stands, duplicates refused, the list sorted by key. Absent or null
 * when not required leaves *n_out 0. */
static int parse_labels(cfg_ctx *c, yaml_node_t *map, const cfg_field *f, int required,
                        mesh_label **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!f->keynode || cfg_is_null(f->value)) {
        if (!required)
            return MESH_OK;
        size_t mark = cfg_push_key(c, f->key);
        int rc = cfg_fail(c, f->keynode ? f->value : map,
                          "required: the labels a workload must carry to be in the subset, "
                          "e.g. {version: v2}");
        cfg_pop(c, mark);
        return rc;
    }
    yaml_node_t *m = f->value;
    size_t mark = cfg_push_key(c, f->key);
    int rc = MESH_OK;
    size_t cnt = m->type == YAML_MAPPING_NODE
                     ? (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start)
                     : 0;
    if (m->type != YAML_MAPPING_NODE)
        rc = cfg_fail(c, m, "must be a mapping of label keys to values, e.g. {version: v2}; "
                            "got %s", cfg_type_name(m));
    else if (cnt > CONFIG_MAX_LABELS)
        rc = cfg_fail(c, m, "at most %d labels, got %zu", CONFIG_MAX_LABELS, cnt);
    else if (cnt == 0 && required)
        rc = cfg_fail(c, m, "at least one label is required (a subset of every workload is "
                            "the service itself)");
    mesh_label *l = rc == MESH_OK ? alloc_array(c, cnt, sizeof *l) : NULL;
    if (rc == MESH_OK && !l)
        rc = MESH_ENOMEM;
    size_t done = 0;
    for (size_t i = 0; rc == MESH_OK && i < cnt; i++) {
        yaml_node_pair_t *pr = &m->data.mapping.pairs.start[i];
        yaml_node_t *k = cfg_node(c, pr->key), *v = cfg_node(c, pr->value);
        char why[CONFIG_WHY_MAX];
        if ((rc = cfg_scalar_string(c, k, &l[i].key)) != MESH_OK)
            break;
        done = i + 1;
        size_t m2 = cfg_push_key(c, l[i].key);
        if (config_check_label_key(l[i].key, why, sizeof why) != 0)
            rc = cfg_fail(c, k, "%s", why);
        for (size_t j = 0; rc == MESH_OK && j < i; j++)
            if (strcmp(l[j].key, l[i].key) == 0)
                rc = cfg_fail(c, k, "duplicate label (first set at line %zu)",
                              cfg_line(cfg_node(c, m->data.mapping.pairs.start[j].key)));
        if (rc == MESH_OK && cfg_is_null(v))
            rc = cfg_fail(c, v ? v : k, "a label value must be a string (\"\" for an empty "
                                        "one), got null");
        if (rc == MESH_OK)
            rc = cfg_scalar_string(c, v, &l[i].value);
        if (rc == MESH_OK && config_check_label_value(l[i].value, why, sizeof why) != 0)
            rc = cfg_fail(c, v, "%s", why);
        cfg_pop(c, m2);
    }
    cfg_pop(c, mark);
    if (rc != MESH_OK) {
        if (l)
            config_labels_free(l, done);
        return rc;
    }
    config_labels_sort(l, cnt);
    *out = l;
    *n_out = cnt;
    return MESH_OK;
}

static int parse_subset(cfg_ctx *c, yaml_node_t *n, mesh_subset *sub)
{
    cfg_field f[] = {{"name", 0, 0}, {"labels", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    if ((rc = cfg_get_string(c, n, &f[0], 1, &sub->name)) != MESH_OK)
        return rc;
    return parse_labels(c, n, &f[1], 1, &sub->labels, &sub->n_labels);
}

static int parse_subsets(cfg_ctx *c, yaml_node_t *n, const cfg_field *f, mesh_service *s)
{
    yaml_node_t *seq;
    size_t cnt;
    int rc = cfg_get_seq(c, n, f, 0, &seq, &cnt);
    if (rc != MESH_OK || cnt == 0)
        return rc;
    if (!(s->subsets = alloc_array(c, cnt, sizeof *s->subsets)))
        return MESH_ENOMEM;
    s->n_subsets = cnt;
    size_t mark = cfg_push_key(c, "subsets");
    for (size_t i = 0; i < cnt && rc == MESH_OK; i++) {
        size_t m2 = cfg_push_index(c, i);
        rc = parse_subset(c, cfg_seq_item(c, seq, i), &s->subsets[i]);
        cfg_pop(c, m2);
    }
    cfg_pop(c, mark);
    return rc;
}

static int parse_service(cfg_ctx *c, yaml_node_t *n, mesh_service *s)
{
    enum { F_NAME, F_PROTOCOL, F_PORT, F_LB, F_CONNECT_TIMEOUT, F_SUBSETS, F_OUTLIER, F_HC,
           F_BREAKERS };
    cfg_field f[] = {{"name", 0, 0}, {"protocol", 0, 0}, {"port", 0, 0}, {"lb", 0, 0},
                     {"connect_timeout", 0, 0}, {"subsets", 0, 0},
                     {"outlier_detection", 0, 0}, {"health_check", 0, 0},
                     {"circuit_breakers", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    int proto = MESH_PROTO_HTTP, lb = MESH_LB_ROUND_ROBIN;
    int64_t port = 0;
    s->connect_timeout_ms = CONFIG_DEFAULT_CONNECT_MS;
    if ((rc = cfg_get_string(c, n, &f[F_NAME], 1, &s->name)) != MESH_OK ||
        (rc = cfg_get_enum(c, n, &f[F_PROTOCOL], 1, protocol_names, 4, &proto)) != MESH_OK ||
        (rc = cfg_get_int(c, n, &f[F_PORT], 1, 1, 65535, &port)) != MESH_OK ||
        (rc = cfg_get_enum(c, n, &f[F_LB], 0, lb_names, 2, &lb)) != MESH_OK ||
        (rc = cfg_get_duration(c, n, &f[F_CONNECT_TIMEOUT], 0, &s->connect_timeout_ms)) != MESH_OK ||
        (rc = parse_subsets(c, n, &f[F_SUBSETS], s)) != MESH_OK ||
        (rc = cfg_parse_service_health(c, &f[F_OUTLIER], &f[F_HC], &f[F_BREAKERS], s)) != MESH_OK)
        return rc;
    s->protocol = (enum mesh_protocol)proto;
    s->lb = (enum mesh_lb)lb;
    s->port = (int)port;
    config_fault ft;
    if (config_check_service(s, &ft) != 0)
        return cfg_fail_fault(c, n, &ft);
    return set_source(c, n, &s->source);
}

static int parse_tcp_outbound(cfg_ctx *c, yaml_node_t *n, mesh_tcp_outbound *t)
{
    cfg_field f[] = {{"service", 0, 0}, {"listen", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    if ((rc = cfg_get_string(c, n, &f[0], 1, &t->service)) != MESH_OK)
        return rc;
    return cfg_get_string(c, n, &f[1], 1, &t->listen);
}

static int parse_workload(cfg_ctx *c, yaml_node_t *n, mesh_workload *w)
{
    enum { F_NAME, F_ID, F_SERVICE, F_INBOUND, F_APP, F_OUTBOUND, F_TCP_OUT, F_LABELS };
    cfg_field f[] = {{"name", 0, 0},    {"spiffe_id", 0, 0}, {"service", 0, 0},
                     {"inbound", 0, 0}, {"app", 0, 0},       {"outbound", 0, 0},
                     {"tcp_outbound", 0, 0}, {"labels", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    if ((rc = cfg_get_string(c, n, &f[F_NAME], 1, &w->name)) != MESH_OK ||
        (rc = cfg_get_string(c, n, &f[F_ID], 1, &w->spiffe_id)) != MESH_OK ||
        (rc = cfg_get_string(c, n, &f[F_SERVICE], 1, &w->service)) != MESH_OK ||
        (rc = cfg_get_string(c, n, &f[F_INBOUND], 1, &w->inbound)) != MESH_OK ||
        (rc = cfg_get_string(c, n, &f[F_APP], 1, &w->app)) != MESH_OK ||
        (rc = cfg_get_string(c, n, &f[F_OUTBOUND], 0, &w->outbound)) != MESH_OK ||
        (rc = parse_labels(c, n, &f[F_LABELS], 0, &w->labels, &w->n_labels)) != MESH_OK)
        return rc;
    yaml_node_t *seq;
    size_t cnt;
    if ((rc = cfg_get_seq(c, n, &f[F_TCP_OUT], 0, &seq, &cnt)) != MESH_OK)
        return rc;
    if (cnt) {
        if (!(w->tcp_outbound = alloc_array(c, cnt, sizeof *w->tcp_outbound)))
            return MESH_ENOMEM;
        w->n_tcp_outbound = cnt;
        size_t mark = cfg_push_key(c, "tcp_outbound");
        for (size_t i = 0; i < cnt && rc == MESH_OK; i++) {
            size_t m2 = cfg_push_index(c, i);
            rc = parse_tcp_outbound(c, cfg_seq_item(c, seq, i), &w->tcp_outbound[i]);
            cfg_pop(c, m2);
        }
        cfg_pop(c, mark);
        if (rc != MESH_OK)
            return rc;
    }
    config_fault ft;
    if (config_check_workload(w, NULL, &ft) != 0)
        return cfg_fail_fault(c, n, &ft);
    return set_source(c, n, &w->source);
}

static int parse_header(cfg_ctx *c, yaml_node_t *n, mesh_header_matcher *h)
{
    enum { F_NAME, F_EXACT, F_PREFIX, F_PRESENT };
    cfg_field f[] = {{"name", 0, 0}, {"exact", 0, 0}, {"prefix", 0, 0}, {"present", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    if ((rc = cfg_get_string(c, n, &f[F_NAME], 1, &h->name)) != MESH_OK)
        return rc;
    int count = !!f[F_EXACT].keynode + !!f[F_PREFIX].keynode + !!f[F_PRESENT].keynode;
    if (count != 1)
        return cfg_fail(c, n, count ? "set only one of exact, prefix or present"
                                    : "exactly one of exact, prefix or present is required");
    if (f[F_PRESENT].keynode) {
        int present = 0;
        if ((rc = cfg_get_bool(c, n, &f[F_PRESENT], 1, &present)) != MESH_OK)
            return rc;
        if (!present) {
            size_t mark = cfg_push_key(c, "present");
            rc = cfg_fail(c, f[F_PRESENT].value,
                          "must be true (matching on a missing header is not supported)");
            cfg_pop(c, mark);
            return rc;
        }
        h->kind = MESH_HDR_PRESENT;
        return MESH_OK;
    }
    /* An exact match on "" is meaningful (header sent empty); the resource
     * check rejects an empty prefix, which would match everything. */
    h->kind = f[F_EXACT].keynode ? MESH_HDR_EXACT : MESH_HDR_PREFIX;
    cfg_field *vf = f[F_EXACT].keynode ? &f[F_EXACT] : &f[F_PREFIX];
    return cfg_get_string(c, n, vf, 1, &h->value);
}

static int parse_match(cfg_ctx *c, yaml_node_t *n, mesh_route_rule *r)
{
    cfg_field f[] = {{"prefix", 0, 0}, {"path", 0, 0}, {"headers", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    if ((rc = cfg_get_string(c, n, &f[0], 0, &r->prefix)) != MESH_OK ||
        (rc = cfg_get_string(c, n, &f[1], 0, &r->path)) != MESH_OK)
        return rc;
    yaml_node_t *seq;
    size_t cnt;
    if ((rc = cfg_get_seq(c, n, &f[2], 0, &seq, &cnt)) != MESH_OK || cnt == 0)
        return rc;
    if (!(r->headers = alloc_array(c, cnt, sizeof *r->headers)))
        return MESH_ENOMEM;
    r->n_headers = cnt;
    size_t mark = cfg_push_key(c, "headers");
    for (size_t i = 0; i < cnt && rc == MESH_OK; i++) {
        size_t m2 = cfg_push_index(c, i);
        rc = parse_header(c, cfg_seq_item(c, seq, i), &r->headers[i]);
        cfg_pop(c, m2);
    }
    cfg_pop(c, mark);
    return rc;
}

static int parse_destination(cfg_ctx *c, yaml_node_t *n, mesh_destination *d)
{
    cfg_field f[] = {{"service", 0, 0}, {"subset", 0, 0}, {"weight", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    int64_t weight = CONFIG_MAX_WEIGHT;   /* a lone destination needs no weight */
    if ((rc = cfg_get_string(c, n, &f[0], 1, &d->service)) != MESH_OK ||
        (rc = cfg_get_string(c, n, &f[1], 0, &d->subset)) != MESH_OK ||
        (rc = cfg_get_int(c, n, &f[2], 0, 0, CONFIG_MAX_WEIGHT, &weight)) != MESH_OK)
        return rc;
    d->weight = (uint32_t)weight;
    /* A missing subset is found only against the whole config: remember the
     * line so that error can point at this destination, not its route. */
    return set_source(c, f[1].keynode ? f[1].value : n, &d->source);
}

static int parse_rule(cfg_ctx *c, yaml_node_t *n, mesh_route_rule *r)
{
    enum { F_MATCH, F_DEST, F_TIMEOUT, F_RETRIES, F_PER_TRY };
    cfg_field f[] = {{"match", 0, 0}, {"destinations", 0, 0}, {"timeout", 0, 0},
                     {"retries", 0, 0}, {"per_try_timeout", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    if (cfg_is_null(f[F_MATCH].value)) {
        size_t mark = cfg_push_key(c, "match");
        rc = cfg_fail(c, f[F_MATCH].keynode ? f[F_MATCH].value : n,
                      "required field is missing (use {prefix: /} to match every request)");
        cfg_pop(c, mark);
        return rc;
    }
    size_t mark = cfg_push_key(c, "match");
    rc = parse_match(c, f[F_MATCH].value, r);
    cfg_pop(c, mark);
    if (rc != MESH_OK)
        return rc;
    yaml_node_t *seq;
    size_t cnt;
    if ((rc = cfg_get_seq(c, n, &f[F_DEST], 1, &seq, &cnt)) != MESH_OK)
        return rc;
    if (cnt) {
        if (!(r->destinations = alloc_array(c, cnt, sizeof *r->destinations)))
            return MESH_ENOMEM;
        r->n_destinations = cnt;
        mark = cfg_push_key(c, "destinations");
        for (size_t i = 0; i < cnt && rc == MESH_OK; i++) {
            size_t m2 = cfg_push_index(c, i);
            rc = parse_destination(c, cfg_seq_item(c, seq, i), &r->destinations[i]);
            cfg_pop(c, m2);
        }
        cfg_pop(c, mark);
        if (rc != MESH_OK)
            return rc;
    }
    int64_t retries = 0;
    if ((rc = cfg_get_duration(c, n, &f[F_TIMEOUT], 0, &r->timeout_ms)) != MESH_OK ||
        (rc = cfg_get_int(c, n, &f[F_RETRIES], 0, 0, CONFIG_MAX_RETRIES, &retries)) != MESH_OK ||
        (rc = cfg_get_duration(c, n, &f[F_PER_TRY], 0, &r->per_try_timeout_ms)) != MESH_OK)
        return rc;
    r->retries = (uint32_t)retries;
    return MESH_OK;
}

static int parse_route(cfg_ctx *c, yaml_node_t *n, mesh_route *r)
{
    enum { F_NAME, F_HOSTS, F_RULES };
    cfg_field f[] = {{"name", 0, 0}, {"hosts", 0, 0}, {"rules", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    if ((rc = cfg_get_string(c, n, &f[F_NAME], 1, &r->name)) != MESH_OK ||
        (rc = cfg_get_string_list(c, n, &f[F_HOSTS], 0, &r->hosts, &r->n_hosts)) != MESH_OK)
        return rc;
    if (cfg_is_null(f[F_HOSTS].value)) {
        /* hosts defaults to the route's name, the usual "call the service by name" */
        if (!(r->hosts = alloc_array(c, 1, sizeof *r->hosts)) ||
            !(r->hosts[0] = cfg_strdup(c, n, r->name)))
            return MESH_ENOMEM;
        r->n_hosts = 1;
    }
    yaml_node_t *seq;
    size_t cnt;
    if ((rc = cfg_get_seq(c, n, &f[F_RULES], 1, &seq, &cnt)) != MESH_OK)
        return rc;
    if (cnt) {
        if (!(r->rules = alloc_array(c, cnt, sizeof *r->rules)))
            return MESH_ENOMEM;
        r->n_rules = cnt;
        size_t mark = cfg_push_key(c, "rules");
        for (size_t i = 0; i < cnt && rc == MESH_OK; i++) {
            size_t m2 = cfg_push_index(c, i);
            rc = parse_rule(c, cfg_seq_item(c, seq, i), &r->rules[i]);
            cfg_pop(c, m2);
        }
        cfg_pop(c, mark);
        if (rc != MESH_OK)
            return rc;
    }
    config_fault ft;
    if (config_check_route(r, &ft) != 0)
        return cfg_fail_fault(c, n, &ft);
    return set_source(c, n, &r->source);
}

static int parse_authorization(cfg_ctx *c, yaml_node_t *n, mesh_authorization *a)
{
    cfg_field f[] = {{"service", 0, 0}, {"allow", 0, 0}};
    int rc = cfg_map(c, n, f, N_FIELDS(f));
    if (rc != MESH_OK)
        return rc;
    /* allow is required (an empty list is fine) so a forgotten key is not
     * silently read as "deny everyone" */
    if (!f[1].keynode) {
        size_t mark = cfg_push_key(c, "allow");
        rc = cfg_fail(c, n, "required field is missing (use allow: [] to deny every caller)");
        cfg_pop(c, mark);
        return rc;
    }
    if ((rc = cfg_get_string(c, n, &f[0], 1, &a->service)) != MESH_OK ||
        (rc = cfg_get_string_list(c, n, &f[1], 1, &a->allow, &a->n_allow)) != MESH_OK)
        return rc;
    config_fault ft;
    if (config_check_authorization(a, NULL, &ft) != 0)
        return cfg_fail_fault(c, n, &ft);
    return set_source(c, n, &a->source);
}

typedef int (*parse_fn)(cfg_ctx *, yaml_node_t *, void *);

static int parse_service_v(cfg_ctx *c, yaml_node_t *n, void *p) { return parse_service(c, n, p); }
static int parse_workload_v(cfg_ctx *c, yaml_node_t *n, void *p) { return parse_workload(c, n, p); }
static int parse_route_v(cfg_ctx *c, yaml_node_t *n, void *p) { return parse_route(c, n, p); }
static int parse_authz_v(cfg_ctx *c, yaml_node_t *n, void *p)
{
    return parse_authorization(c, n, p);
}

static const struct kind_parser {
    parse_fn fn;
    size_t size;
} kind_parsers[CONFIG_KIND_COUNT] = {
    [CONFIG_KIND_SERVICE] = {parse_service_v, sizeof(mesh_service)},
    [CONFIG_KIND_WORKLOAD] = {parse_workload_v, sizeof(mesh_workload)},
    [CONFIG_KIND_ROUTE] = {parse_route_v, sizeof(mesh_route)},
    [CONFIG_KIND_AUTHZ] = {parse_authz_v, sizeof(mesh_authorization)},
};

static void free_slot(enum config_kind k, void *slot)
{
    switch (k) {
    case CONFIG_KIND_SERVICE: config_service_free(slot); break;
    case CONFIG_KIND_WORKLOAD: config_workload_free(slot); break;
    case CONFIG_KIND_ROUTE: config_route_free(slot); break;
    case CONFIG_KIND_AUTHZ: config_authorization_free(slot); break;
    default: break;
    }
}

static int parse_list(cfg_ctx *c, yaml_node_t *root, const cfg_field *f, enum config_kind k,
                      mesh_config *out)
{
    yaml_node_t *seq;
    size_t cnt;
    int rc = cfg_get_seq(c, root, f, 0, &seq, &cnt);
    if (rc != MESH_OK || cnt == 0)
        return rc;
    char *arr = alloc_array(c, cnt, kind_parsers[k].size);
    if (!arr)
        return MESH_ENOMEM;
    /* hand the array to out first, so mesh_config_free cleans up after a failure */
    switch (k) {
    case CONFIG_KIND_SERVICE: out->services = (void *)arr; out->n_services = cnt; break;
    case CONFIG_KIND_WORKLOAD: out->workloads = (void *)arr; out->n_workloads = cnt; break;
    case CONFIG_KIND_ROUTE: out->routes = (void *)arr; out->n_routes = cnt; break;
    case CONFIG_KIND_AUTHZ: out->authz = (void *)arr; out->n_authz = cnt; break;
    default: break;
    }
    size_t mark = cfg_push_key(c, f->key);
    for (size_t i = 0; i < cnt && rc == MESH_OK; i++) {
        size_t m2 = cfg_push_index(c, i);
        rc = kind_parsers[k].fn(c, cfg_seq_item(c, seq, i), arr + i * kind_parsers[k].size);
        cfg_pop(c, m2);
    }
    cfg_pop(c, mark);
    return rc;
}

int mesh_config_parse_buffer(const char *filename, const char *buf, size_t len, mesh_config *out,
                             mesh_err *err)
{
    memset(out, 0, sizeof *out);
    if (!filename)
        filename = "<input>";
    if (len > CONFIG_MAX_FILE_BYTES)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: config is %zu bytes; the limit is %u bytes (4 MiB): split it "
                            "into several files and apply them one by one",
                            filename, len, CONFIG_MAX_FILE_BYTES);
    if (len && !buf)
        return mesh_err_set(err, MESH_EINVAL, "%s: no buffer", filename);
    cfg_ctx c;
    int rc = cfg_load(&c, filename, buf ? buf : "", len, err);
    if (rc != MESH_OK)
        return rc;
    if (cfg_is_null(c.root)) {
        cfg_unload(&c);   /* empty file: a valid config with nothing in it */
        return MESH_OK;
    }
    if (c.root->type != YAML_MAPPING_NODE) {
        rc = cfg_fail(&c, c.root,
                      "the top level must be a mapping with keys services, workloads, routes, "
                      "authorization; got %s",
                      cfg_type_name(c.root));
        cfg_unload(&c);
        return rc;
    }
    cfg_field f[CONFIG_KIND_COUNT];
    for (int k = 0; k < CONFIG_KIND_COUNT; k++)
        f[k] = (cfg_field){config_kind_key((enum config_kind)k), 0, 0};
    rc = cfg_map(&c, c.root, f, CONFIG_KIND_COUNT);
    for (int k = 0; k < CONFIG_KIND_COUNT && rc == MESH_OK; k++)
        rc = parse_list(&c, c.root, &f[k], (enum config_kind)k, out);
    cfg_unload(&c);
    if (rc != MESH_OK)
        mesh_config_free(out);
    return rc;
}

int mesh_config_parse_file(const char *path, mesh_config *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mesh_err_set(err, errno == ENOENT ? MESH_ENOTFOUND : MESH_EIO, "%s: cannot open: %s",
                            path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mesh_err_set(err, MESH_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mesh_err_set(err, MESH_EINVAL, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > CONFIG_MAX_FILE_BYTES) {
        close(fd);
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: file is %lld bytes; the limit is %u bytes (4 MiB): split it "
                            "into several files and apply them one by one",
                            path, (long long)st.st_size, CONFIG_MAX_FILE_BYTES);
    }
    /* Read up to limit+1 whatever stat said: the file may grow meanwhile. */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return mesh_err_set(err, MESH_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (len == cap) {
            if (cap > CONFIG_MAX_FILE_BYTES)
                break;
            size_t ncap = cap * 2 > CONFIG_MAX_FILE_BYTES + 1 ? CONFIG_MAX_FILE_BYTES + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return mesh_err_set(err, MESH_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            return mesh_err_set(err, MESH_EIO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    /* the path as the operator typed it names the file in every error */
    int rc = mesh_config_parse_buffer(path, buf, len, out, err);
    free(buf);
    return rc;
}

int config_parse_resource(const char *filename, const char *body, size_t len,
                          enum config_kind kind, void *slot, mesh_err *err)
{
    if (kind >= CONFIG_KIND_COUNT)
        return mesh_err_set(err, MESH_EINVAL, "%s: unknown resource kind", filename);
    if (len > CONFIG_MAX_FILE_BYTES)
        return mesh_err_set(err, MESH_EINVAL, "%s: resource body is %zu bytes, over 4 MiB",
                            filename, len);
    cfg_ctx c;
    int rc = cfg_load(&c, filename, body ? body : "", body ? len : 0, err);
    if (rc != MESH_OK)
        return rc;
    if (cfg_is_null(c.root)) {
        cfg_unload(&c);
        return mesh_err_set(err, MESH_EINVAL, "%s: empty resource body", filename);
    }
    rc = kind_parsers[kind].fn(&c, c.root, slot);
    cfg_unload(&c);
    if (rc != MESH_OK) {
        free_slot(kind, slot);
        memset(slot, 0, kind_parsers[kind].size);
    }
    return rc;
}
