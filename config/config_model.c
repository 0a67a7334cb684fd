/* config/config_model.c — freeing, finding and comparing mesh_config values. */
#include "config/config_internal.h"

#include <stdlib.h>
#include <string.h>

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void config_service_free(mesh_service *s)
{
    free(s->name);
    for (size_t i = 0; i < s->n_subsets; i++)
        config_subset_free(&s->subsets[i]);
    free(s->subsets);
    free(s->health_check.path);
    free(s->source);
    memset(s, 0, sizeof *s);
}

void config_workload_free(mesh_workload *w)
{
    free(w->name);
    free(w->spiffe_id);
    free(w->service);
    free(w->inbound);
    free(w->app);
    free(w->outbound);
    for (size_t i = 0; i < w->n_tcp_outbound; i++) {
        free(w->tcp_outbound[i].service);
        free(w->tcp_outbound[i].listen);
    }
    free(w->tcp_outbound);
    config_labels_free(w->labels, w->n_labels);
    free(w->source);
    memset(w, 0, sizeof *w);
}

void config_route_free(mesh_route *r)
{
    free(r->name);
    free_strv(r->hosts, r->n_hosts);
    for (size_t i = 0; i < r->n_rules; i++) {
        mesh_route_rule *rule = &r->rules[i];
        free(rule->prefix);
        free(rule->path);
        for (size_t h = 0; h < rule->n_headers; h++) {
            free(rule->headers[h].name);
            free(rule->headers[h].value);
        }
        free(rule->headers);
        for (size_t d = 0; d < rule->n_destinations; d++) {
            free(rule->destinations[d].service);
            free(rule->destinations[d].subset);
            free(rule->destinations[d].source);
        }
        free(rule->destinations);
    }
    free(r->rules);
    free(r->source);
    memset(r, 0, sizeof *r);
}

void config_authorization_free(mesh_authorization *a)
{
    free(a->service);
    free_strv(a->allow, a->n_allow);
    free(a->source);
    memset(a, 0, sizeof *a);
}

void mesh_config_free(mesh_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_services; i++)
        config_service_free(&cfg->services[i]);
    for (size_t i = 0; i < cfg->n_workloads; i++)
        config_workload_free(&cfg->workloads[i]);
    for (size_t i = 0; i < cfg->n_routes; i++)
        config_route_free(&cfg->routes[i]);
    for (size_t i = 0; i < cfg->n_authz; i++)
        config_authorization_free(&cfg->authz[i]);
    free(cfg->services);
    free(cfg->workloads);
    free(cfg->routes);
    free(cfg->authz);
    memset(cfg, 0, sizeof *cfg);
}

const mesh_service *mesh_config_find_service(const mesh_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_services; i++)
        if (cfg->services[i].name && strcmp(cfg->services[i].name, name) == 0)
            return &cfg->services[i];
    return NULL;
}

const mesh_workload *mesh_config_find_workload(const mesh_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_workloads; i++)
        if (cfg->workloads[i].name && strcmp(cfg->workloads[i].name, name) == 0)
            return &cfg->workloads[i];
    return NULL;
}

const mesh_workload *mesh_config_find_workload_by_id(const mesh_config *cfg, const char *spiffe_id)
{
    if (!cfg || !spiffe_id)
        return NULL;
    for (size_t i = 0; i < cfg->n_workloads; i++)
        if (cfg->workloads[i].spiffe_id && strcmp(cfg->workloads[i].spiffe_id, spiffe_id) == 0)
            return &cfg->workloads[i];
    return NULL;
}

/* NULL-aware string equality: NULL equals only NULL. */
static int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int strv_eq(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i], b[i]))
            return 0;
    return 1;
}

static int outlier_eq(const mesh_service *a, const mesh_service *b)
{
    mesh_outlier ba, bb;
    return config_outlier_equal(config_service_outlier(a, &ba), config_service_outlier(b, &bb));
}

int config_service_equal(const mesh_service *a, const mesh_service *b)
{
    if (!(str_eq(a->name, b->name) && a->protocol == b->protocol && a->port == b->port &&
          a->lb == b->lb && a->connect_timeout_ms == b->connect_timeout_ms &&
          a->n_subsets == b->n_subsets &&
          outlier_eq(a, b) &&
          a->health_check.kind == b->health_check.kind &&
          str_eq(a->health_check.path, b->health_check.path) &&
          a->health_check.interval_ms == b->health_check.interval_ms &&
          a->health_check.timeout_ms == b->health_check.timeout_ms &&
          a->health_check.unhealthy_threshold == b->health_check.unhealthy_threshold &&
          a->health_check.healthy_threshold == b->health_check.healthy_threshold &&
          a->circuit_breakers.max_connections == b->circuit_breakers.max_connections &&
          a->circuit_breakers.max_pending_requests == b->circuit_breakers.max_pending_requests &&
          a->circuit_breakers.max_requests == b->circuit_breakers.max_requests &&
          a->circuit_breakers.max_retries == b->circuit_breakers.max_retries))
        return 0;
    for (size_t i = 0; i < a->n_subsets; i++)
        if (!str_eq(a->subsets[i].name, b->subsets[i].name) ||
            !config_labels_equal(a->subsets[i].labels, a->subsets[i].n_labels,
                                 b->subsets[i].labels, b->subsets[i].n_labels))
            return 0;
    return 1;
}

int config_workload_equal(const mesh_workload *a, const mesh_workload *b)
{
    if (!(str_eq(a->name, b->name) && str_eq(a->spiffe_id, b->spiffe_id) &&
          str_eq(a->service, b->service) && str_eq(a->inbound, b->inbound) &&
          str_eq(a->app, b->app) && str_eq(a->outbound, b->outbound) &&
          a->n_tcp_outbound == b->n_tcp_outbound &&
          config_labels_equal(a->labels, a->n_labels, b->labels, b->n_labels)))
        return 0;
    for (size_t i = 0; i < a->n_tcp_outbound; i++)
        if (!str_eq(a->tcp_outbound[i].service, b->tcp_outbound[i].service) ||
            !str_eq(a->tcp_outbound[i].listen, b->tcp_outbound[i].listen))
            return 0;
    return 1;
}

static int rule_eq(const mesh_route_rule *a, const mesh_route_rule *b)
{
    if (!(str_eq(a->prefix, b->prefix) && str_eq(a->path, b->path) &&
          a->n_headers == b->n_headers && a->n_destinations == b->n_destinations &&
          a->timeout_ms == b->timeout_ms && a->retries == b->retries &&
          a->per_try_timeout_ms == b->per_try_timeout_ms))
        return 0;
    for (size_t i = 0; i < a->n_headers; i++)
        if (!str_eq(a->headers[i].name, b->headers[i].name) ||
            a->headers[i].kind != b->headers[i].kind ||
            !str_eq(a->headers[i].value, b->headers[i].value))
            return 0;
    for (size_t i = 0; i < a->n_destinations; i++)
        if (!str_eq(a->destinations[i].service, b->destinations[i].service) ||
            !str_eq(a->destinations[i].subset, b->destinations[i].subset) ||
            a->destinations[i].weight != b->destinations[i].weight)
            return 0;
    return 1;
}

int config_route_equal(const mesh_route *a, const mesh_route *b)
{
    if (!(str_eq(a->name, b->name) && strv_eq(a->hosts, a->n_hosts, b->hosts, b->n_hosts) &&
          a->n_rules == b->n_rules))
        return 0;
    for (size_t i = 0; i < a->n_rules; i++)
        if (!rule_eq(&a->rules[i], &b->rules[i]))
            return 0;
    return 1;
}

int config_authorization_equal(const mesh_authorization *a, const mesh_authorization *b)
{
    return str_eq(a->service, b->service) && strv_eq(a->allow, a->n_allow, b->allow, b->n_allow);
}

int config_equal(const mesh_config *a, const mesh_config *b)
{
    if (a->n_services != b->n_services || a->n_workloads != b->n_workloads ||
        a->n_routes != b->n_routes || a->n_authz != b->n_authz)
        return 0;
    for (size_t i = 0; i < a->n_services; i++)
        if (!config_service_equal(&a->services[i], &b->services[i]))
            return 0;
    for (size_t i = 0; i < a->n_workloads; i++)
        if (!config_workload_equal(&a->workloads[i], &b->workloads[i]))
            return 0;
    for (size_t i = 0; i < a->n_routes; i++)
        if (!config_route_equal(&a->routes[i], &b->routes[i]))
            return 0;
    for (size_t i = 0; i < a->n_authz; i++)
        if (!config_authorization_equal(&a->authz[i], &b->authz[i]))
            return 0;
    return 1;
}

size_t config_kind_count(enum config_kind k, const mesh_config *cfg)
{
    switch (k) {
    case CONFIG_KIND_SERVICE: return cfg->n_services;
    case CONFIG_KIND_WORKLOAD: return cfg->n_workloads;
    case CONFIG_KIND_ROUTE: return cfg->n_routes;
    case CONFIG_KIND_AUTHZ: return cfg->n_authz;
    default: return 0;
    }
}

const char *config_resource_name(enum config_kind k, const mesh_config *cfg, size_t i)
{
    switch (k) {
    case CONFIG_KIND_SERVICE: return cfg->services[i].name;
    case CONFIG_KIND_WORKLOAD: return cfg->workloads[i].name;
    case CONFIG_KIND_ROUTE: return cfg->routes[i].name;
    case CONFIG_KIND_AUTHZ: return cfg->authz[i].service;
    default: return NULL;
    }
}

const char *config_resource_source(enum config_kind k, const mesh_config *cfg, size_t i)
{
    const char *s = NULL;
    switch (k) {
    case CONFIG_KIND_SERVICE: s = cfg->services[i].source; break;
    case CONFIG_KIND_WORKLOAD: s = cfg->workloads[i].source; break;
    case CONFIG_KIND_ROUTE: s = cfg->routes[i].source; break;
    case CONFIG_KIND_AUTHZ: s = cfg->authz[i].source; break;
    default: break;
    }
    return s;
}

char *config_resource_to_yaml(enum config_kind k, const mesh_config *cfg, size_t i)
{
    switch (k) {
    case CONFIG_KIND_SERVICE: return mesh_service_to_yaml(&cfg->services[i]);
    case CONFIG_KIND_WORKLOAD: return mesh_workload_to_yaml(&cfg->workloads[i]);
    case CONFIG_KIND_ROUTE: return mesh_route_to_yaml(&cfg->routes[i]);
    case CONFIG_KIND_AUTHZ: return mesh_authorization_to_yaml(&cfg->authz[i]);
    default: return NULL;
    }
}
