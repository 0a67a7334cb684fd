/* config/config_resource.c — checks of one resource on its own.
 *
 * Used by the parser right after it builds a resource (it maps the failing
 * field back to a line) and by mesh_config_validate for every resource, so a
 * config built in code or loaded from the store meets the same rules as one
 * read from a file. Whole-config rules (references, uniqueness across
 * resources) are in config_validate.c. */
#include "config/config_internal.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fault(config_fault *f, const char *fmt_field, ...) __attribute__((format(printf, 2, 3)));

/* Sets the field (printf-style); the caller has already put the reason in f->why. */
static int fault(config_fault *f, const char *fmt_field, ...)
{
    va_list ap;
    va_start(ap, fmt_field);
    vsnprintf(f->field, sizeof f->field, fmt_field, ap);
    va_end(ap);
    return -1;
}

static void whyf(config_fault *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets the reason; long addresses may be cut, which is fine for a message. */
static void whyf(config_fault *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->why, sizeof f->why, fmt, ap);
    va_end(ap);
}

static int check_duration_range(int64_t ms, int allow_zero, char *why, size_t n)
{
    if (ms == 0 && allow_zero)
        return 0;
    if (ms <= 0) {
        snprintf(why, n, "must be greater than 0%s",
                 allow_zero ? " (omit it for the default)" : "");
        return -1;
    }
    if (ms > CONFIG_MAX_DURATION_MS) {
        snprintf(why, n, "must be at most 24h");
        return -1;
    }
    return 0;
}

static int check_service_health(const mesh_service *s, config_fault *f)
{
    const mesh_outlier *o = &s->outlier;
    bool outlier_on = o->consecutive_5xx > 0 || o->consecutive_gateway_failure > 0;
    if (outlier_on) {
        if (check_duration_range(o->interval_ms, 0, f->why, sizeof f->why) != 0)
            return fault(f, "outlier_detection.interval");
        if (check_duration_range(o->base_ejection_ms, 0, f->why, sizeof f->why) != 0)
            return fault(f, "outlier_detection.base_ejection_time");
        if (check_duration_range(o->max_ejection_ms, 0, f->why, sizeof f->why) != 0)
            return fault(f, "outlier_detection.max_ejection_time");
        if (o->max_ejection_ms && o->base_ejection_ms > o->max_ejection_ms) {
            whyf(f, "must be at least base_ejection_time (the ejection time grows up to it)");
            return fault(f, "outlier_detection.max_ejection_time");
        }
    }
    if (o->max_ejection_percent > 100) {
        whyf(f, "must be 0..100, got %u", o->max_ejection_percent);
        return fault(f, "outlier_detection.max_ejection_percent");
    }
    const mesh_health_check *h = &s->health_check;
    if (h->kind == MESH_HC_NONE)
        return 0;
    if (h->kind != MESH_HC_HTTP && h->kind != MESH_HC_TCP) {
        whyf(f, "must be http or tcp");
        return fault(f, "health_check.type");
    }
    if (h->kind == MESH_HC_HTTP &&
        (!h->path || config_check_http_path(h->path, f->why, sizeof f->why) != 0)) {
        if (!h->path)
            whyf(f, "required for an http health check");
        return fault(f, "health_check.path");
    }
    if (h->kind == MESH_HC_TCP && h->path) {
        whyf(f, "only an http health check has a path");
        return fault(f, "health_check.path");
    }
    if (check_duration_range(h->interval_ms, 0, f->why, sizeof f->why) != 0 || !h->interval_ms)
        return fault(f, "health_check.interval");
    if (check_duration_range(h->timeout_ms, 0, f->why, sizeof f->why) != 0 || !h->timeout_ms)
        return fault(f, "health_check.timeout");
    if (h->timeout_ms > h->interval_ms) {
        whyf(f, "must not exceed the interval (%lld ms): one probe at a time",
             (long long)h->interval_ms);
        return fault(f, "health_check.timeout");
    }
    if (h->unhealthy_threshold < 1 || h->healthy_threshold < 1) {
        whyf(f, "must be at least 1");
        return fault(f, h->unhealthy_threshold < 1 ? "health_check.unhealthy_threshold"
                                                  : "health_check.healthy_threshold");
    }
    if (s->protocol == MESH_PROTO_TCP && h->kind == MESH_HC_HTTP) {
        whyf(f, "a tcp service takes a tcp health check (type: tcp)");
        return fault(f, "health_check.type");
    }
    /* The prober speaks HTTP/1.1 and the inbound side of an HTTP/2 service does not
     * translate to the app's h2c; a tcp probe (connect + mTLS) is what works today. */
    if (mesh_protocol_is_h2(s->protocol) && h->kind == MESH_HC_HTTP) {
        whyf(f, "%s services take a tcp health check (type: tcp) for now: the http "
             "probe speaks HTTP/1.1", config_protocol_name(s->protocol));
        return fault(f, "health_check.type");
    }
    return 0;
}

int config_check_service(const mesh_service *s, config_fault *f)
{
    memset(f, 0, sizeof *f);
    if (config_check_name(s->name, f->why, sizeof f->why) != 0)
        return fault(f, "name");
    if (!config_protocol_name(s->protocol)) {
        snprintf(f->why, sizeof f->why, "must be http, http2, grpc or tcp");
        return fault(f, "protocol");
    }
    if (s->port < 1 || s->port > 65535) {
        snprintf(f->why, sizeof f->why, "must be 1..65535, got %d", s->port);
        return fault(f, "port");
    }
    if (!config_lb_name(s->lb)) {
        snprintf(f->why, sizeof f->why, "must be round_robin or least_request");
        return fault(f, "lb");
    }
    if (check_duration_range(s->connect_timeout_ms, 0, f->why, sizeof f->why) != 0)
        return fault(f, "connect_timeout");
    if (check_service_health(s, f) != 0)
        return -1;
    if (s->n_subsets > CONFIG_MAX_SUBSETS) {
        snprintf(f->why, sizeof f->why, "at most %d subsets per service, got %zu",
                 CONFIG_MAX_SUBSETS, s->n_subsets);
        return fault(f, "subsets");
    }
    for (size_t i = 0; i < s->n_subsets; i++) {
        const mesh_subset *sub = &s->subsets[i];
        if (config_check_name(sub->name, f->why, sizeof f->why) != 0)
            return fault(f, "subsets[%zu].name", i);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->subsets[j].name, sub->name) == 0) {
                whyf(f, "subset \"%s\" is already defined at subsets[%zu]", sub->name, j);
                return fault(f, "subsets[%zu].name", i);
            }
        }
        if (sub->n_labels == 0) {
            snprintf(f->why, sizeof f->why,
                     "at least one label is required (a subset of every workload is the "
                     "service itself)");
            return fault(f, "subsets[%zu].labels", i);
        }
        char field[48];
        snprintf(field, sizeof field, "subsets[%zu].labels", i);
        if (config_check_labels(sub->labels, sub->n_labels, field, f) != 0)
            return -1;
    }
    return 0;
}

typedef struct listener_addr {
    const char *field;   /* "inbound", "outbound", "tcp_outbound[2].listen" */
    char fieldbuf[48];
    char norm[300];
    int wildcard;
} listener_addr;

static const char *port_of(const char *norm)
{
    const char *c = strrchr(norm, ':');
    return c ? c + 1 : "";
}

/* Two bind addresses clash if they are the same, or share a port and one of
 * them is the wildcard (binding 0.0.0.0:P fails while 127.0.0.1:P is bound). */
static int addrs_clash(const char *na, int wa, const char *nb, int wb)
{
    if (strcmp(na, nb) == 0)
        return 1;
    return (wa || wb) && strcmp(port_of(na), port_of(nb)) == 0;
}

int config_check_workload(const mesh_workload *w, const char *trust_domain, config_fault *f)
{
    memset(f, 0, sizeof *f);
    if (config_check_name(w->name, f->why, sizeof f->why) != 0)
        return fault(f, "name");
    if (config_check_spiffe_id(w->spiffe_id, trust_domain, f->why, sizeof f->why) != 0)
        return fault(f, "spiffe_id");
    if (config_check_name(w->service, f->why, sizeof f->why) != 0)
        return fault(f, "service");
    if (config_check_labels(w->labels, w->n_labels, "labels", f) != 0)
        return -1;

    if (w->n_tcp_outbound > CONFIG_MAX_TCP_OUTBOUND) {
        snprintf(f->why, sizeof f->why, "at most %d entries per workload, got %zu",
                 CONFIG_MAX_TCP_OUTBOUND, w->n_tcp_outbound);
        return fault(f, "tcp_outbound");
    }

    /* listeners this workload's sidecar binds, plus the app it dials */
    size_t nl = 0;
    listener_addr *ls = calloc(2 + w->n_tcp_outbound, sizeof *ls);
    if (!ls) {
        snprintf(f->why, sizeof f->why, "out of memory");
        return fault(f, "%s", "");
    }
    int rc = -1;
    char app_norm[300];
    int app_wild = 0;

    if (config_check_hostport(w->inbound, ls[nl].norm, sizeof ls[nl].norm, &ls[nl].wildcard,
                              f->why, sizeof f->why) != 0) {
        fault(f, "inbound");
        goto out;
    }
    if (ls[nl].wildcard) {
        snprintf(f->why, sizeof f->why,
                 "must be a concrete address, not a wildcard: other sidecars dial it");
        fault(f, "inbound");
        goto out;
    }
    ls[nl++].field = "inbound";
    if (config_check_hostport(w->app, app_norm, sizeof app_norm, &app_wild, f->why,
                              sizeof f->why) != 0) {
        fault(f, "app");
        goto out;
    }
    if (app_wild) {
        snprintf(f->why, sizeof f->why,
                 "must be a concrete address, not a wildcard: the sidecar dials the app there");
        fault(f, "app");
        goto out;
    }
    if (w->outbound) {
        if (config_check_hostport(w->outbound, ls[nl].norm, sizeof ls[nl].norm, &ls[nl].wildcard,
                                  f->why, sizeof f->why) != 0) {
            fault(f, "outbound");
            goto out;
        }
        ls[nl++].field = "outbound";
    }
    for (size_t i = 0; i < w->n_tcp_outbound; i++) {
        const mesh_tcp_outbound *t = &w->tcp_outbound[i];
        if (config_check_name(t->service, f->why, sizeof f->why) != 0) {
            fault(f, "tcp_outbound[%zu].service", i);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(w->tcp_outbound[j].service, t->service) == 0) {
                snprintf(f->why, sizeof f->why,
                         "service \"%s\" is already listed at tcp_outbound[%zu]", t->service, j);
                fault(f, "tcp_outbound[%zu].service", i);
                goto out;
            }
        }
        if (config_check_hostport(t->listen, ls[nl].norm, sizeof ls[nl].norm, &ls[nl].wildcard,
                                  f->why, sizeof f->why) != 0) {
            fault(f, "tcp_outbound[%zu].listen", i);
            goto out;
        }
        snprintf(ls[nl].fieldbuf, sizeof ls[nl].fieldbuf, "tcp_outbound[%zu].listen", i);
        ls[nl].field = ls[nl].fieldbuf;
        nl++;
    }
    for (size_t i = 0; i < nl; i++) {
        for (size_t j = 0; j < i; j++) {
            if (addrs_clash(ls[i].norm, ls[i].wildcard, ls[j].norm, ls[j].wildcard)) {
                whyf(f, "%s clashes with this workload's %s (%s)", ls[i].norm, ls[j].field,
                     ls[j].norm);
                fault(f, "%s", ls[i].field);
                goto out;
            }
        }
        if (addrs_clash(app_norm, 0, ls[i].norm, ls[i].wildcard)) {
            whyf(f, "%s is also this workload's %s listener; the sidecar would proxy to itself",
                 app_norm, ls[i].field);
            fault(f, "app");
            goto out;
        }
    }
    rc = 0;
out:
    free(ls);
    return rc;
}

static int check_rule(const mesh_route_rule *r, size_t ri, config_fault *f)
{
    if (r->prefix && r->path) {
        snprintf(f->why, sizeof f->why, "set either prefix or path, not both");
        return fault(f, "rules[%zu].match", ri);
    }
    if (!r->prefix && !r->path) {
        snprintf(f->why, sizeof f->why, "one of prefix or path is required");
        return fault(f, "rules[%zu].match", ri);
    }
    if (config_check_http_path(r->prefix ? r->prefix : r->path, f->why, sizeof f->why) != 0)
        return fault(f, "rules[%zu].match.%s", ri, r->prefix ? "prefix" : "path");
    for (size_t h = 0; h < r->n_headers; h++) {
        const mesh_header_matcher *m = &r->headers[h];
        if (config_check_header_name(m->name, f->why, sizeof f->why) != 0)
            return fault(f, "rules[%zu].match.headers[%zu].name", ri, h);
        const char *kname = config_header_kind_name(m->kind);
        if (!kname) {
            snprintf(f->why, sizeof f->why, "exactly one of exact, prefix or present is required");
            return fault(f, "rules[%zu].match.headers[%zu]", ri, h);
        }
        if (m->kind == MESH_HDR_PRESENT) {
            if (m->value) {
                snprintf(f->why, sizeof f->why, "a present matcher takes no value");
                return fault(f, "rules[%zu].match.headers[%zu].present", ri, h);
            }
        } else if (config_check_header_value(m->value, m->kind == MESH_HDR_EXACT, f->why,
                                             sizeof f->why) != 0) {
            return fault(f, "rules[%zu].match.headers[%zu].%s", ri, h, kname);
        }
    }
    if (r->n_destinations == 0 || r->n_destinations > CONFIG_MAX_DESTINATIONS) {
        if (r->n_destinations)
            snprintf(f->why, sizeof f->why, "at most %d destinations per rule, got %zu",
                     CONFIG_MAX_DESTINATIONS, r->n_destinations);
        else
            snprintf(f->why, sizeof f->why, "at least one destination is required");
        return fault(f, "rules[%zu].destinations", ri);
    }
    uint64_t sum = 0;
    for (size_t d = 0; d < r->n_destinations; d++) {
        const mesh_destination *dst = &r->destinations[d];
        if (config_check_name(dst->service, f->why, sizeof f->why) != 0)
            return fault(f, "rules[%zu].destinations[%zu].service", ri, d);
        if (dst->subset && config_check_name(dst->subset, f->why, sizeof f->why) != 0)
            return fault(f, "rules[%zu].destinations[%zu].subset", ri, d);
        for (size_t e = 0; e < d; e++) {
            const mesh_destination *o = &r->destinations[e];
            int same_subset = (!o->subset && !dst->subset) ||
                              (o->subset && dst->subset && strcmp(o->subset, dst->subset) == 0);
            if (strcmp(o->service, dst->service) == 0 && same_subset) {
                if (dst->subset)
                    whyf(f, "subset \"%s\" of service \"%s\" is already a destination at "
                            "destinations[%zu]", dst->subset, dst->service, e);
                else
                    whyf(f, "service \"%s\" is already a destination at destinations[%zu]",
                         dst->service, e);
                return fault(f, "rules[%zu].destinations[%zu].%s", ri, d,
                             dst->subset ? "subset" : "service");
            }
        }
        if (dst->weight > CONFIG_MAX_WEIGHT) {
            snprintf(f->why, sizeof f->why, "must be 0..%d, got %u", CONFIG_MAX_WEIGHT,
                     dst->weight);
            return fault(f, "rules[%zu].destinations[%zu].weight", ri, d);
        }
        sum += dst->weight;
    }
    if (sum == 0) {
        snprintf(f->why, sizeof f->why, "the weights sum to 0; at least one must be above 0");
        return fault(f, "rules[%zu].destinations", ri);
    }
    if (check_duration_range(r->timeout_ms, 1, f->why, sizeof f->why) != 0)
        return fault(f, "rules[%zu].timeout", ri);
    if (r->retries > CONFIG_MAX_RETRIES) {
        snprintf(f->why, sizeof f->why, "must be 0..%d, got %u", CONFIG_MAX_RETRIES, r->retries);
        return fault(f, "rules[%zu].retries", ri);
    }
    if (check_duration_range(r->per_try_timeout_ms, 1, f->why, sizeof f->why) != 0)
        return fault(f, "rules[%zu].per_try_timeout", ri);
    return 0;
}

int config_check_route(const mesh_route *r, config_fault *f)
{
    memset(f, 0, sizeof *f);
    if (config_check_name(r->name, f->why, sizeof f->why) != 0)
        return fault(f, "name");
    if (r->n_hosts == 0) {
        snprintf(f->why, sizeof f->why, "at least one host is required");
        return fault(f, "hosts");
    }
    for (size_t i = 0; i < r->n_hosts; i++)
        if (config_check_route_host(r->hosts[i], f->why, sizeof f->why) != 0)
            return fault(f, "hosts[%zu]", i);
    size_t dup, first;
    int d = config_first_dup(r->hosts, r->n_hosts, 1, &dup, &first);
    if (d < 0) {
        snprintf(f->why, sizeof f->why, "out of memory");
        return fault(f, "hosts");
    }
    if (d > 0) {
        whyf(f, "\"%s\" is already listed at hosts[%zu]", r->hosts[dup], first);
        return fault(f, "hosts[%zu]", dup);
    }
    if (r->n_rules == 0) {
        snprintf(f->why, sizeof f->why, "at least one rule is required");
        return fault(f, "rules");
    }
    for (size_t i = 0; i < r->n_rules; i++)
        if (check_rule(&r->rules[i], i, f) != 0)
            return -1;
    return 0;
}

int config_check_authorization(const mesh_authorization *a, const char *trust_domain,
                               config_fault *f)
{
    memset(f, 0, sizeof *f);
    if (config_check_name(a->service, f->why, sizeof f->why) != 0)
        return fault(f, "service");
    for (size_t i = 0; i < a->n_allow; i++)
        if (config_check_spiffe_id(a->allow[i], trust_domain, f->why, sizeof f->why) != 0)
            return fault(f, "allow[%zu]", i);
    /* sorted, not pairwise: an allow list may name thousands of callers */
    size_t dup, first;
    int d = config_first_dup(a->allow, a->n_allow, 0, &dup, &first);
    if (d < 0) {
        snprintf(f->why, sizeof f->why, "out of memory");
        return fault(f, "allow");
    }
    if (d > 0) {
        whyf(f, "\"%s\" is already listed at allow[%zu]", a->allow[dup], first);
        return fault(f, "allow[%zu]", dup);
    }
    return 0;
}
