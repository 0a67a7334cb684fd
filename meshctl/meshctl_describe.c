/* meshctl/meshctl_describe.c — `meshctl describe workload NAME`: one instance
 * seen from every side, as `istioctl x describe` does for a pod.
 *
 *   - what it is: identity, service, labels, the subsets that select it, its
 *     addresses (mesh config) and its registration;
 *   - its certificate (the newest valid SVID issued for this instance) and its
 *     sidecar's proxy-status row (connected/stale/down, per-type versions);
 *   - who may call it (its service's authorization entry, and which workloads
 *     hold those identities) and what it may call (services whose entry
 *     allows its identity; its tcp_outbound services);
 *   - the routes that send it traffic: every rule with a destination on its
 *     service, for all its workloads or for a subset that selects it, with the
 *     destination's share of the rule's weight.
 * Read from the store only; meshd need not run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/suggest.h"
#include "config/mesh_config.h"
#include "meshctl/meshctl.h"
#include "meshctl/meshctl_proxy_state.h"

typedef struct describe_ctx {
    ctl_ctx *c;
    mesh_store *st;
    const mesh_config *cfg;
    const mesh_workload *w;
    const mesh_service *svc;
    store_registration reg;
    int have_reg;
    store_cert cert;
    int have_cert;
    store_proxy *proxies;
    size_t n_proxies;
    const store_proxy *proxy;   /* this instance's row, or NULL */
} describe_ctx;

static const mesh_service *find_service(const mesh_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_services; i++)
        if (strcmp(cfg->services[i].name, name) == 0)
            return &cfg->services[i];
    return NULL;
}

static const mesh_authorization *find_authz(const mesh_config *cfg, const char *service)
{
    for (size_t i = 0; i < cfg->n_authz; i++)
        if (strcmp(cfg->authz[i].service, service) == 0)
            return &cfg->authz[i];
    return NULL;
}

static int authz_allows(const mesh_authorization *a, const char *id)
{
    for (size_t i = 0; a && i < a->n_allow; i++)
        if (strcmp(a->allow[i], id) == 0)
            return 1;
    return 0;
}

/* Does destination d reach workload w (its service, and its subset if any)? */
static int reaches(const describe_ctx *d, const mesh_destination *dst)
{
    if (strcmp(dst->service, d->w->service) != 0)
        return 0;
    if (!dst->subset)
        return 1;
    const mesh_subset *sub = d->svc ? mesh_config_find_subset(d->svc, dst->subset) : NULL;
    return sub && mesh_subset_selects(sub, d->w);
}

static unsigned share_pct(const mesh_route_rule *rule, const mesh_destination *dst)
{
    uint64_t sum = 0;
    for (size_t k = 0; k < rule->n_destinations; k++)
        sum += rule->destinations[k].weight;
    return sum ? (unsigned)((100 * (uint64_t)dst->weight + sum / 2) / sum) : 0;
}

/* The names of the workloads that run as identity id, comma-separated. */
static void workloads_of(const mesh_config *cfg, const char *id, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->n_workloads; i++) {
        if (strcmp(cfg->workloads[i].spiffe_id, id) != 0)
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
                         cfg->workloads[i].name);
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

static int load(describe_ctx *d, const char *name, mesh_config *cfg)
{
    mesh_err err = {0};
    if (mesh_config_load_store(d->st, cfg, &err) != MESH_OK)
        return ctl_fail(d->c, &err);
    d->cfg = cfg;
    for (size_t i = 0; i < cfg->n_workloads && !d->w; i++)
        if (strcmp(cfg->workloads[i].name, name) == 0)
            d->w = &cfg->workloads[i];
    if (!d->w) {
        const char **names = calloc(cfg->n_workloads + 1, sizeof *names);
        for (size_t i = 0; names && i < cfg->n_workloads; i++)
            names[i] = cfg->workloads[i].name;
        const char *close = names ? mesh_suggest(name, names, cfg->n_workloads) : NULL;
        mesh_err_set(&err, MESH_ENOTFOUND,
                     "no workload \"%s\" in the mesh config%s%s%s (meshctl get workloads lists "
                     "them)",
                     name, close ? "; did you mean \"" : "", close ? close : "",
                     close ? "\"?" : "");
        free(names);
        return ctl_fail(d->c, &err);
    }
    d->svc = find_service(cfg, d->w->service);
    d->have_reg = store_registration_get(d->st, d->w->name, d->w->spiffe_id, &d->reg, &err) ==
                  MESH_OK;
    store_cert *certs = NULL;
    size_t n = 0;
    if (store_cert_list(d->st, d->w->spiffe_id, 0, ctl_now(), &certs, &n, &err) == MESH_OK) {
        for (size_t i = 0; i < n && !d->have_cert; i++) { /* newest first */
            if (certs[i].revoked || strcmp(certs[i].instance ? certs[i].instance : "",
                                           d->w->name) != 0)
                continue;
            d->cert = certs[i];
            memset(&certs[i], 0, sizeof certs[i]);
            d->have_cert = 1;
        }
        store_cert_free_list(certs, n);
    }
    if (store_proxy_list(d->st, &d->proxies, &d->n_proxies, &err) == MESH_OK) {
        for (size_t i = 0; i < d->n_proxies && !d->proxy; i++) {
            const store_proxy *p = &d->proxies[i];
            const char *inst = store_proxy_instance_of(p->spiffe_id, p->node_id);
            if (strcmp(p->spiffe_id, d->w->spiffe_id) == 0 && inst &&
                strcmp(inst, d->w->name) == 0)
                d->proxy = p;
        }
    }
    return 0;
}

static void print_text(describe_ctx *d)
{
    ctl_ctx *c = d->c;
    const mesh_workload *w = d->w;
    printf("Workload:   %s  (%s)\n", ctl_esc(c, w->name), ctl_esc(c, w->source ? w->source : "-"));
    printf("Identity:   %s\n", ctl_esc(c, w->spiffe_id));
    printf("Service:    %s%s\n", ctl_esc(c, w->service), d->svc ? "" : "  (not defined!)");
    printf("Labels:    ");
    for (size_t i = 0; i < w->n_labels; i++)
        printf(" %s=%s", ctl_esc(c, w->labels[i].key), ctl_esc(c, w->labels[i].value));
    printf("%s\n", w->n_labels ? "" : " -");
    printf("Subsets:   ");
    int any = 0;
    for (size_t i = 0; d->svc && i < d->svc->n_subsets; i++)
        if (mesh_subset_selects(&d->svc->subsets[i], w)) {
            printf(" %s", ctl_esc(c, d->svc->subsets[i].name));
            any = 1;
        }
    printf("%s\n", any ? "" : " -");
    printf("Addresses:  inbound %s, app %s, outbound %s\n", ctl_esc(c, w->inbound),
           ctl_esc(c, w->app), w->outbound ? ctl_esc(c, w->outbound) : "-");
    char t[32];
    if (d->have_reg) {
        ctl_format_time(d->reg.created_at, t, sizeof t);
        printf("Registered: %s\n", t);
    } else {
        printf("Registered: no  (meshctl workload add %s --id %s)\n", ctl_esc(c, w->name),
               ctl_esc(c, w->spiffe_id));
    }
    if (d->have_cert) {
        ctl_format_time(d->cert.not_after, t, sizeof t);
        printf("SVID:       %s, expires %s (in %llds)\n", d->cert.serial_hex, t,
               (long long)(d->cert.not_after - ctl_now()));
    } else {
        printf("SVID:       none valid issued for this instance\n");
    }
    if (d->proxy) {
        const store_proxy *p = d->proxy;
        printf("Sidecar:    %s via %s", ctl_proxy_state_name(ctl_proxy_state_of(p)),
               ctl_esc(c, p->meshd_instance));
        for (size_t i = 0; i < p->n_types; i++) {
            const char *tu = strrchr(p->types[i].type_url, '.');
            printf("%s%s %s", i ? "," : ";", tu ? tu + 1 : p->types[i].type_url,
                   p->types[i].acked_version[0] ? ctl_esc(c, p->types[i].acked_version) : "-");
        }
        printf("\n");
        if (p->problem[0])
            printf("            problem: %s\n", ctl_esc(c, p->problem));
    } else {
        printf("Sidecar:    never connected\n");
    }

    const mesh_authorization *a = find_authz(d->cfg, w->service);
    printf("\nMay be called by (authorization of service %s):\n", ctl_esc(c, w->service));
    if (!a)
        printf("  nobody: no authorization entry (deny by default)\n");
    else if (a->n_allow == 0)
        printf("  nobody: the entry's allow list is empty\n");
    for (size_t i = 0; a && i < a->n_allow; i++) {
        char who[512];
        workloads_of(d->cfg, a->allow[i], who, sizeof who);
        printf("  %s%s%s%s\n", ctl_esc(c, a->allow[i]), who[0] ? "  (" : "", ctl_esc(c, who),
               who[0] ? ")" : "");
    }
    printf("\nMay call:\n");
    any = 0;
    for (size_t i = 0; i < d->cfg->n_authz; i++) {
        if (!authz_allows(&d->cfg->authz[i], w->spiffe_id))
            continue;
        const mesh_service *s = find_service(d->cfg, d->cfg->authz[i].service);
        const char *how = !s                              ? ""
                          : s->protocol == MESH_PROTO_TCP   ? "tcp"
                          : s->protocol == MESH_PROTO_HTTP2 ? "http2"
                          : s->protocol == MESH_PROTO_GRPC  ? "grpc"
                                                            : "http";
        int has_tcp = 0;
        for (size_t k = 0; k < w->n_tcp_outbound; k++)
            if (strcmp(w->tcp_outbound[k].service, d->cfg->authz[i].service) == 0) {
                printf("  %s (tcp, local port %s)\n", ctl_esc(c, d->cfg->authz[i].service),
                       ctl_esc(c, w->tcp_outbound[k].listen));
                has_tcp = 1;
            }
        if (!has_tcp)
            printf("  %s (%s%s)\n", ctl_esc(c, d->cfg->authz[i].service), how,
                   s && mesh_protocol_is_http(s->protocol)
                       ? (w->outbound ? ", through its outbound listener" : ", but it has no outbound listener")
                       : s ? ", but it has no tcp_outbound for it" : "");
        any = 1;
    }
    if (!any)
        printf("  nothing: no authorization entry allows %s\n", ctl_esc(c, w->spiffe_id));

    printf("\nRoutes that send it traffic:\n");
    any = 0;
    for (size_t i = 0; i < d->cfg->n_routes; i++) {
        const mesh_route *r = &d->cfg->routes[i];
        for (size_t ri = 0; ri < r->n_rules; ri++) {
            const mesh_route_rule *rule = &r->rules[ri];
            for (size_t k = 0; k < rule->n_destinations; k++) {
                const mesh_destination *dst = &rule->destinations[k];
                if (!reaches(d, dst))
                    continue;
                printf("  route %s rule %zu (%s %s%s%s): %u%% to %s%s%s\n", ctl_esc(c, r->name),
                       ri, rule->path ? "path" : "prefix",
                       ctl_esc(c, rule->path ? rule->path : rule->prefix),
                       rule->n_headers ? ", header " : "",
                       rule->n_headers ? ctl_esc(c, rule->headers[0].name) : "",
                       share_pct(rule, dst),
                       ctl_esc(c, dst->service), dst->subset ? "/" : "",
                       dst->subset ? ctl_esc(c, dst->subset) : "");
                any = 1;
            }
        }
    }
    if (!any)
        printf("  none\n");
}

static int print_json(describe_ctx *d)
{
    const mesh_workload *w = d->w;
    json_out j;
    json_init(&j);
    json_obj_begin(&j);
    json_key_str(&j, "workload", w->name);
    json_key_str(&j, "spiffe_id", w->spiffe_id);
    json_key_str(&j, "service", w->service);
    json_key(&j, "labels");
    json_obj_begin(&j);
    for (size_t i = 0; i < w->n_labels; i++)
        json_key_str(&j, w->labels[i].key, w->labels[i].value);
    json_obj_end(&j);
    json_key(&j, "subsets");
    json_arr_begin(&j);
    for (size_t i = 0; d->svc && i < d->svc->n_subsets; i++)
        if (mesh_subset_selects(&d->svc->subsets[i], w))
            json_str(&j, d->svc->subsets[i].name);
    json_arr_end(&j);
    json_key_str(&j, "inbound", w->inbound);
    json_key_str(&j, "app", w->app);
    json_key_str(&j, "outbound", w->outbound);
    json_key_bool(&j, "registered", d->have_reg);
    char t[32];
    json_key(&j, "svid");
    if (d->have_cert) {
        json_obj_begin(&j);
        json_key_str(&j, "serial", d->cert.serial_hex);
        ctl_format_time(d->cert.not_after, t, sizeof t);
        json_key_str(&j, "expires_at", t);
        json_key_int(&j, "seconds_left", d->cert.not_after - ctl_now());
        json_obj_end(&j);
    } else {
        json_null(&j);
    }
    json_key(&j, "sidecar");
    if (d->proxy) {
        json_obj_begin(&j);
        json_key_str(&j, "state", ctl_proxy_state_name(ctl_proxy_state_of(d->proxy)));
        json_key_str(&j, "meshd_instance", d->proxy->meshd_instance);
        json_key_str(&j, "problem", d->proxy->problem);
        json_obj_end(&j);
    } else {
        json_null(&j);
    }
    const mesh_authorization *a = find_authz(d->cfg, w->service);
    json_key(&j, "callers");
    json_arr_begin(&j);
    for (size_t i = 0; a && i < a->n_allow; i++)
        json_str(&j, a->allow[i]);
    json_arr_end(&j);
    json_key(&j, "may_call");
    json_arr_begin(&j);
    for (size_t i = 0; i < d->cfg->n_authz; i++)
        if (authz_allows(&d->cfg->authz[i], w->spiffe_id))
            json_str(&j, d->cfg->authz[i].service);
    json_arr_end(&j);
    json_key(&j, "routes");
    json_arr_begin(&j);
    for (size_t i = 0; i < d->cfg->n_routes; i++) {
        const mesh_route *r = &d->cfg->routes[i];
        for (size_t ri = 0; ri < r->n_rules; ri++)
            for (size_t k = 0; k < r->rules[ri].n_destinations; k++) {
                const mesh_destination *dst = &r->rules[ri].destinations[k];
                if (!reaches(d, dst))
                    continue;
                json_obj_begin(&j);
                json_key_str(&j, "route", r->name);
                json_key_int(&j, "rule", (int64_t)ri);
                json_key_str(&j, "subset", dst->subset);
                json_key_int(&j, "share_percent", share_pct(&r->rules[ri], dst));
                json_obj_end(&j);
            }
    }
    json_arr_end(&j);
    json_obj_end(&j);
    return ctl_print_json(&j);
}

int ctl_cmd_describe(ctl_ctx *c, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "workload") != 0)
        return ctl_usage_error(c, "describe needs a kind: describe workload NAME");
    if (argc != 3)
        return ctl_usage_error(c, argc < 3 ? "describe workload needs a NAME"
                                           : "describe workload takes one NAME");
    describe_ctx d = {.c = c};
    if (!(d.st = ctl_store(c)))
        return 1;
    mesh_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = load(&d, argv[2], &cfg);
    if (rc == 0) {
        if (c->json)
            rc = print_json(&d);
        else
            print_text(&d);
    }
    if (d.have_reg)
        store_registration_free(&d.reg);
    if (d.have_cert)
        store_cert_free(&d.cert);
    store_proxy_free_list(d.proxies, d.n_proxies);
    mesh_config_free(&cfg);
    return rc;
}
