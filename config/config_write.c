/* config/config_write.c — canonical YAML for mesh config resources.
 *
 * The store keeps one row per resource whose body is this YAML, and compares
 * bodies to decide whether an apply changed anything, so the output must be a
 * pure function of the resource: fixed key order, every defaulted field
 * written out, block style, no line wrapping. libyaml's emitter does the
 * quoting and escaping; we only force double quotes on strings that a YAML
 * reader would otherwise take for a null, boolean or number ("1", "yes",
 * "127.0.0.1:80"), so parse(to_yaml(x)) == x for every valid x. */
#include "config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

typedef struct yw {
    yaml_emitter_t em;
    char *data;
    size_t len, cap;
    int failed;
} yw;

static int write_handler(void *ctx, unsigned char *buf, size_t size)
{
    yw *w = ctx;
    if (w->len + size + 1 > w->cap) {
        size_t ncap = w->cap ? w->cap : 256;
        while (ncap < w->len + size + 1)
            ncap *= 2;
        char *nd = realloc(w->data, ncap);
        if (!nd)
            return 0;
        w->data = nd;
        w->cap = ncap;
    }
    memcpy(w->data + w->len, buf, size);
    w->len += size;
    w->data[w->len] = '\0';
    return 1;
}

static void emit(yw *w, yaml_event_t *ev, int init_ok)
{
    if (!init_ok) {
        w->failed = 1;
        return;
    }
    /* the emitter frees the event even when it fails */
    if (w->failed) {
        yaml_event_delete(ev);
        return;
    }
    if (!yaml_emitter_emit(&w->em, ev))
        w->failed = 1;
}

static void yw_begin(yw *w)
{
    memset(w, 0, sizeof *w);
    if (!yaml_emitter_initialize(&w->em)) {
        w->failed = 1;
        return;
    }
    yaml_emitter_set_output(&w->em, write_handler, w);
    yaml_emitter_set_width(&w->em, -1);   /* never fold long strings */
    yaml_emitter_set_unicode(&w->em, 1);
    yaml_emitter_set_indent(&w->em, 2);
    yaml_event_t ev;
    emit(w, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    emit(w, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
}

static char *yw_end(yw *w)
{
    yaml_event_t ev;
    emit(w, &ev, yaml_document_end_event_initialize(&ev, 1));
    emit(w, &ev, yaml_stream_end_event_initialize(&ev));
    if (!w->failed && !yaml_emitter_flush(&w->em))
        w->failed = 1;
    yaml_emitter_delete(&w->em);
    if (w->failed || !w->data) {
        free(w->data);
        return NULL;
    }
    return w->data;
}

static void map_start(yw *w)
{
    yaml_event_t ev;
    emit(w, &ev,
         yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

static void map_end(yw *w)
{
    yaml_event_t ev;
    emit(w, &ev, yaml_mapping_end_event_initialize(&ev));
}

static void seq_start(yw *w)
{
    yaml_event_t ev;
    emit(w, &ev,
         yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
}

static void seq_end(yw *w)
{
    yaml_event_t ev;
    emit(w, &ev, yaml_sequence_end_event_initialize(&ev));
}

static void scalar(yw *w, const char *s, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    emit(w, &ev,
         yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
                                      style));
}

/* Would a YAML 1.1 or 1.2 reader resolve this plain scalar to something other
 * than a string? Errs on the side of quoting. */
static int needs_quotes(const char *s)
{
    static const char *const words[] = {"",   "~",   "null", "true", "false", "yes", "no",
                                        "on", "off", "y",    "n",    ".inf",  "-.inf",
                                        "+.inf", ".nan"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return 1;
    /* numbers in any YAML 1.1/1.2 spelling (1_000, 0x1f, 1e3, 1:30, .5) use
     * only these characters and at most one '.'; "127.0.0.1:80" is not one */
    if (!strchr("0123456789+-.", s[0]) ||
        strspn(s, "0123456789+-._:eExXoObBaAcCdDfF") != strlen(s))
        return 0;
    const char *dot = strchr(s, '.');
    return !dot || !strchr(dot + 1, '.');
}

static void str(yw *w, const char *s)
{
    scalar(w, s, needs_quotes(s) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
}

static void key(yw *w, const char *k)
{
    scalar(w, k, YAML_PLAIN_SCALAR_STYLE);
}

static void kv_str(yw *w, const char *k, const char *v)
{
    if (!v)
        return;   /* only reachable for invalid resources; validate rejects them first */
    key(w, k);
    str(w, v);
}

static void kv_int(yw *w, const char *k, long long v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    key(w, k);
    scalar(w, b, YAML_PLAIN_SCALAR_STYLE);
}

static void kv_duration(yw *w, const char *k, int64_t ms)
{
    char b[32];
    config_format_duration(ms, b, sizeof b);
    key(w, k);
    scalar(w, b, YAML_PLAIN_SCALAR_STYLE);
}

static void kv_strv(yw *w, const char *k, char **v, size_t n)
{
    key(w, k);
    seq_start(w);
    for (size_t i = 0; i < n; i++)
        if (v[i])
            str(w, v[i]);
    seq_end(w);
}

/* labels: a block mapping in key order (the model keeps them sorted). */
static void kv_labels(yw *w, const char *k, const mesh_label *l, size_t n)
{
    key(w, k);
    map_start(w);
    for (size_t i = 0; i < n; i++) {
        str(w, l[i].key);
        str(w, l[i].value ? l[i].value : "");
    }
    map_end(w);
}

/* Written only where they differ from the defaults, so services from before
 * these knobs keep their stored bytes (and an upgrade changes no version). */
static void emit_service_health(yw *w, const mesh_service *s)
{
    mesh_service def;
    config_service_health_defaults(&def);
    mesh_outlier obuf;
    const mesh_outlier *o = config_service_outlier(s, &obuf);
    if (!config_outlier_equal(o, &def.outlier)) {
        key(w, "outlier_detection");
        map_start(w);
        kv_int(w, "consecutive_5xx", o->consecutive_5xx);
        kv_int(w, "consecutive_gateway_failure", o->consecutive_gateway_failure);
        kv_duration(w, "interval", o->interval_ms);
        kv_duration(w, "base_ejection_time", o->base_ejection_ms);
        kv_duration(w, "max_ejection_time", o->max_ejection_ms);
        kv_int(w, "max_ejection_percent", o->max_ejection_percent);
        map_end(w);
    }
    const mesh_health_check *h = &s->health_check;
    if (h->kind != MESH_HC_NONE) {
        key(w, "health_check");
        map_start(w);
        kv_str(w, "type", h->kind == MESH_HC_HTTP ? "http" : "tcp");
        if (h->kind == MESH_HC_HTTP)
            kv_str(w, "path", h->path);
        kv_duration(w, "interval", h->interval_ms);
        kv_duration(w, "timeout", h->timeout_ms);
        kv_int(w, "unhealthy_threshold", h->unhealthy_threshold);
        kv_int(w, "healthy_threshold", h->healthy_threshold);
        map_end(w);
    }
    const mesh_circuit_breakers *b = &s->circuit_breakers;
    if (b->max_connections || b->max_pending_requests || b->max_requests || b->max_retries) {
        key(w, "circuit_breakers");
        map_start(w);
        if (b->max_connections)
            kv_int(w, "max_connections", b->max_connections);
        if (b->max_pending_requests)
            kv_int(w, "max_pending_requests", b->max_pending_requests);
        if (b->max_requests)
            kv_int(w, "max_requests", b->max_requests);
        if (b->max_retries)
            kv_int(w, "max_retries", b->max_retries);
        map_end(w);
    }
}

static void emit_service(yw *w, const mesh_service *s)
{
    const char *proto = config_protocol_name(s->protocol);
    const char *lb = config_lb_name(s->lb);
    map_start(w);
    kv_str(w, "name", s->name);
    kv_str(w, "protocol", proto ? proto : "invalid");
    kv_int(w, "port", s->port);
    kv_str(w, "lb", lb ? lb : "invalid");
    kv_duration(w, "connect_timeout", s->connect_timeout_ms);
    /* written only when there are some, so services from before subsets keep
     * their stored bytes (and an upgrade changes no config version) */
    if (s->n_subsets) {
        key(w, "subsets");
        seq_start(w);
        for (size_t i = 0; i < s->n_subsets; i++) {
            map_start(w);
            kv_str(w, "name", s->subsets[i].name);
            kv_labels(w, "labels", s->subsets[i].labels, s->subsets[i].n_labels);
            map_end(w);
        }
        seq_end(w);
    }
    emit_service_health(w, s);
    map_end(w);
}

static void emit_workload(yw *w, const mesh_workload *wl)
{
    map_start(w);
    kv_str(w, "name", wl->name);
    kv_str(w, "spiffe_id", wl->spiffe_id);
    kv_str(w, "service", wl->service);
    kv_str(w, "inbound", wl->inbound);
    kv_str(w, "app", wl->app);
    kv_str(w, "outbound", wl->outbound);
    if (wl->n_labels)
        kv_labels(w, "labels", wl->labels, wl->n_labels);
    if (wl->n_tcp_outbound) {
        key(w, "tcp_outbound");
        seq_start(w);
        for (size_t i = 0; i < wl->n_tcp_outbound; i++) {
            map_start(w);
            kv_str(w, "service", wl->tcp_outbound[i].service);
            kv_str(w, "listen", wl->tcp_outbound[i].listen);
            map_end(w);
        }
        seq_end(w);
    }
    map_end(w);
}

static void emit_rule(yw *w, const mesh_route_rule *r)
{
    map_start(w);
    key(w, "match");
    map_start(w);
    kv_str(w, "prefix", r->prefix);
    kv_str(w, "path", r->path);
    if (r->n_headers) {
        key(w, "headers");
        seq_start(w);
        for (size_t h = 0; h < r->n_headers; h++) {
            const mesh_header_matcher *m = &r->headers[h];
            map_start(w);
            kv_str(w, "name", m->name);
            if (m->kind == MESH_HDR_PRESENT) {
                key(w, "present");
                scalar(w, "true", YAML_PLAIN_SCALAR_STYLE);
            } else {
                kv_str(w, m->kind == MESH_HDR_PREFIX ? "prefix" : "exact",
                       m->value ? m->value : "");
            }
            map_end(w);
        }
        seq_end(w);
    }
    map_end(w);
    key(w, "destinations");
    seq_start(w);
    for (size_t d = 0; d < r->n_destinations; d++) {
        map_start(w);
        kv_str(w, "service", r->destinations[d].service);
        kv_str(w, "subset", r->destinations[d].subset);   /* NULL: not written */
        kv_int(w, "weight", r->destinations[d].weight);
        map_end(w);
    }
    seq_end(w);
    if (r->timeout_ms)
        kv_duration(w, "timeout", r->timeout_ms);
    kv_int(w, "retries", r->retries);
    if (r->per_try_timeout_ms)
        kv_duration(w, "per_try_timeout", r->per_try_timeout_ms);
    map_end(w);
}

static void emit_route(yw *w, const mesh_route *r)
{
    map_start(w);
    kv_str(w, "name", r->name);
    kv_strv(w, "hosts", r->hosts, r->n_hosts);
    key(w, "rules");
    seq_start(w);
    for (size_t i = 0; i < r->n_rules; i++)
        emit_rule(w, &r->rules[i]);
    seq_end(w);
    map_end(w);
}

static void emit_authorization(yw *w, const mesh_authorization *a)
{
    map_start(w);
    kv_str(w, "service", a->service);
    kv_strv(w, "allow", a->allow, a->n_allow);
    map_end(w);
}

char *mesh_service_to_yaml(const mesh_service *s)
{
    yw w;
    yw_begin(&w);
    emit_service(&w, s);
    return yw_end(&w);
}

char *mesh_workload_to_yaml(const mesh_workload *wl)
{
    yw w;
    yw_begin(&w);
    emit_workload(&w, wl);
    return yw_end(&w);
}

char *mesh_route_to_yaml(const mesh_route *r)
{
    yw w;
    yw_begin(&w);
    emit_route(&w, r);
    return yw_end(&w);
}

char *mesh_authorization_to_yaml(const mesh_authorization *a)
{
    yw w;
    yw_begin(&w);
    emit_authorization(&w, a);
    return yw_end(&w);
}

char *mesh_config_to_yaml(const mesh_config *cfg)
{
    yw w;
    yw_begin(&w);
    map_start(&w);
    if (cfg->n_services) {
        key(&w, "services");
        seq_start(&w);
        for (size_t i = 0; i < cfg->n_services; i++)
            emit_service(&w, &cfg->services[i]);
        seq_end(&w);
    }
    if (cfg->n_workloads) {
        key(&w, "workloads");
        seq_start(&w);
        for (size_t i = 0; i < cfg->n_workloads; i++)
            emit_workload(&w, &cfg->workloads[i]);
        seq_end(&w);
    }
    if (cfg->n_routes) {
        key(&w, "routes");
        seq_start(&w);
        for (size_t i = 0; i < cfg->n_routes; i++)
            emit_route(&w, &cfg->routes[i]);
        seq_end(&w);
    }
    if (cfg->n_authz) {
        key(&w, "authorization");
        seq_start(&w);
        for (size_t i = 0; i < cfg->n_authz; i++)
            emit_authorization(&w, &cfg->authz[i]);
        seq_end(&w);
    }
    map_end(&w);
    return yw_end(&w);
}
