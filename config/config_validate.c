/* config/config_validate.c — whole-config checks (mesh_config_validate).
 *
 * Every resource is first re-checked on its own (config_resource.c), then:
 * unique names per kind, references that resolve (to a service of the right
 * protocol, and to one of its subsets), route hosts that no two routes share
 * (Envoy rejects a RouteConfiguration with duplicate domains), and bind
 * addresses no two sidecar listeners share. Workloads may share a SPIFFE ID:
 * the identity is the service account, common to every replica. Lookups go
 * through sorted index arrays so a mesh with thousands of workloads validates
 * in O(n log n). mesh_config_warn reports what is valid but likely a mistake:
 * a subset that selects no workload.
 *
 * Locations: the parsed structs carry only the resource's "file:line", so
 * cross-reference errors point at the resource's first line and name the
 * field by path. Resources that came from the store rather than the
 * operator's input (see config_validate_ex) are named "store:<kind>/<name>". */
#include "config/config_internal.h"
#include "common/suggest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ca/spiffe_id.h"

typedef struct vctx {
    const mesh_config *cfg;
    const char *td;
    size_t n_input[CONFIG_KIND_COUNT];
    mesh_err *err;
    mesh_config_warnings *all;  /* collect every error here (meshctl validate), or NULL: stop at the first */
    int oom;                    /* collecting ran out of memory */
} vctx;

static int warn_push(mesh_config_warnings *w, const char *msg, mesh_err *err);

/* After a check failed with rc: go on to the next resource (collecting every
 * error) or stop here. */
static int keep_going(const vctx *v, int rc)
{
    return v->all && rc == MESH_EINVAL && !v->oom;
}

typedef struct idx_entry {
    const char *key;
    size_t idx;      /* resource index */
    size_t sub;      /* for listeners: which address of the workload */
    int input;       /* from the operator's input (vs the store) */
} idx_entry;

static int is_input(const vctx *v, enum config_kind k, size_t i)
{
    return i < v->n_input[k];
}

static int vfail(const vctx *v, enum config_kind k, size_t i, const char *field, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));

/* "mesh.yaml:12: services[2].port: msg" for input resources,
 * "store:service/web: port: msg (stored; last applied from old.yaml:3)" otherwise.
 * at (may be NULL) is a more precise "file:line" for an input resource. */
static void vformat(const vctx *v, enum config_kind k, size_t i, const char *at,
                    const char *field, const char *msg, char *out, size_t n)
{
    const char *src = config_resource_source(k, v->cfg, i);
    const char *name = config_resource_name(k, v->cfg, i);
    if (is_input(v, k, i))
        snprintf(out, n, "%s: %s[%zu]%s%s: %s", at ? at : src ? src : "<config>",
                 config_kind_key(k), i, field[0] ? "." : "", field, msg);
    else
        snprintf(out, n, "store:%s/%s%s%s: %s (stored; last applied from %s)",
                 config_kind_name(k), name ? name : "?", field[0] ? ": " : "", field, msg,
                 src ? src : "unknown");
}

static int vfail_at(const vctx *v, enum config_kind k, size_t i, const char *at,
                    const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int vfail_at(const vctx *v, enum config_kind k, size_t i, const char *at,
                    const char *field, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char full[sizeof v->err->msg];
    vformat(v, k, i, at, field, msg, full, sizeof full);
    if (v->all) {
        /* The first error stays in err; each one goes to the list. */
        mesh_err dummy = {0};
        if (warn_push(v->all, full, &dummy) != MESH_OK) {
            ((vctx *)v)->oom = 1;
            return mesh_err_set(v->err, MESH_ENOMEM, "collecting config errors: out of memory");
        }
        if (v->all->n > 1)
            return MESH_EINVAL;
    }
    return mesh_err_set(v->err, MESH_EINVAL, "%s", full);
}

static int vfail(const vctx *v, enum config_kind k, size_t i, const char *field, const char *fmt,
                 ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vfail_at(v, k, i, NULL, field, "%s", msg);
}

/* A short reference to another resource for "... also at <ref>" messages. */
static void ref(const vctx *v, enum config_kind k, size_t i, const char *field, char *buf, size_t n)
{
    const char *src = config_resource_source(k, v->cfg, i);
    if (is_input(v, k, i))
        snprintf(buf, n, "%s[%zu]%s%s (%s)", config_kind_key(k), i, field[0] ? "." : "", field,
                 src ? src : "<config>");
    else
        snprintf(buf, n, "store:%s/%s%s%s", config_kind_name(k),
                 config_resource_name(k, v->cfg, i), field[0] ? " " : "", field);
}

/* Orders by key, then stored before input, then position: within a group of
 * equal keys the first entry is the one the others clash with, so a clash
 * between a stored resource and the operator's input blames the input. */
static int cmp_entry(const void *a, const void *b)
{
    const idx_entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    if (x->input != y->input)
        return x->input - y->input;
    if (x->idx != y->idx)
        return x->idx < y->idx ? -1 : 1;
    return x->sub < y->sub ? -1 : x->sub > y->sub;
}

static int cmp_key(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const idx_entry *)elem)->key);
}

static const idx_entry *lookup(const idx_entry *arr, size_t n, const char *key)
{
    const idx_entry *e = bsearch(key, arr, n, sizeof *arr, cmp_key);
    /* step back to the first entry with this key */
    while (e && e > arr && strcmp(e[-1].key, key) == 0)
        e--;
    return e;
}

/* In a sorted array, the clash to report: an input entry if there is one
 * (the operator can fix their file), else the lowest resource index; *orig is
 * the first entry of its group. distinct_idx ignores entries of one resource. */
static int first_duplicate(const idx_entry *arr, size_t n, size_t *dup, size_t *orig,
                           int distinct_idx)
{
    int found = 0;
    size_t group = 0;
    for (size_t j = 1; j < n; j++) {
        if (strcmp(arr[j].key, arr[j - 1].key) != 0) {
            group = j;
            continue;
        }
        if (distinct_idx && arr[j].idx == arr[group].idx)
            continue;
        int better = !found || arr[j].input > arr[*dup].input ||
                     (arr[j].input == arr[*dup].input && arr[j].idx < arr[*dup].idx);
        if (better) {
            *dup = j;
            *orig = group;
            found = 1;
        }
    }
    return found;
}

static idx_entry *alloc_entries(const vctx *v, size_t n)
{
    idx_entry *e = calloc(n ? n : 1, sizeof *e);
    if (!e)
        mesh_err_set(v->err, MESH_ENOMEM, "validating the mesh config: out of memory");
    return e;
}

static int check_resources(const vctx *v)
{
    const mesh_config *c = v->cfg;
    config_fault f;
    int rc, failed = 0;
    for (size_t i = 0; i < c->n_services; i++)
        if (config_check_service(&c->services[i], &f) != 0) {
            rc = vfail(v, CONFIG_KIND_SERVICE, i, f.field, "%s", f.why);
            if (!keep_going(v, rc))
                return rc;
            failed = 1;
        }
    for (size_t i = 0; i < c->n_workloads; i++)
        if (config_check_workload(&c->workloads[i], v->td, &f) != 0) {
            rc = vfail(v, CONFIG_KIND_WORKLOAD, i, f.field, "%s", f.why);
            if (!keep_going(v, rc))
                return rc;
            failed = 1;
        }
    for (size_t i = 0; i < c->n_routes; i++)
        if (config_check_route(&c->routes[i], &f) != 0) {
            rc = vfail(v, CONFIG_KIND_ROUTE, i, f.field, "%s", f.why);
            if (!keep_going(v, rc))
                return rc;
            failed = 1;
        }
    for (size_t i = 0; i < c->n_authz; i++)
        if (config_check_authorization(&c->authz[i], v->td, &f) != 0) {
            rc = vfail(v, CONFIG_KIND_AUTHZ, i, f.field, "%s", f.why);
            if (!keep_going(v, rc))
                return rc;
            failed = 1;
        }
    return failed ? MESH_EINVAL : MESH_OK;
}

/* Builds the sorted name index of kind k; *out is malloc'd. */
static int name_index(const vctx *v, enum config_kind k, idx_entry **out, size_t *n_out)
{
    size_t n = config_kind_count(k, v->cfg);
    idx_entry *e = alloc_entries(v, n);
    if (!e)
        return MESH_ENOMEM;
    for (size_t i = 0; i < n; i++)
        e[i] = (idx_entry){config_resource_name(k, v->cfg, i), i, 0, is_input(v, k, i)};
    qsort(e, n, sizeof *e, cmp_entry);
    size_t dup, orig;
    if (first_duplicate(e, n, &dup, &orig, 0)) {
        char r[300];
        ref(v, k, e[orig].idx, "", r, sizeof r);
        int rc;
        if (k == CONFIG_KIND_AUTHZ)
            rc = vfail(v, k, e[dup].idx, "service",
                       "service \"%s\" already has an authorization entry at %s; merge the allow "
                       "lists",
                       e[dup].key, r);
        else
            rc = vfail(v, k, e[dup].idx, "name", "duplicate %s \"%s\" (also defined at %s)",
                       config_kind_name(k), e[dup].key, r);
        if (!keep_going(v, rc)) {
            free(e);
            return rc;
        }
        /* collecting: go on with the index (a lookup finds one of the two) */
    }
    *out = e;
    *n_out = n;
    return MESH_OK;
}

static const mesh_service *find_svc(const vctx *v, const idx_entry *svc_idx, const char *name)
{
    const idx_entry *e = lookup(svc_idx, v->cfg->n_services, name);
    return e ? &v->cfg->services[e->idx] : NULL;
}

/* "did you mean" and the subsets there are, for an unknown subset. */
static int unknown_subset(const vctx *v, size_t route, const mesh_destination *d,
                          const char *field, const mesh_service *s)
{
    if (s->n_subsets == 0)
        return vfail_at(v, CONFIG_KIND_ROUTE, route, d->source, field,
                        "service \"%s\" has no subsets; define subset \"%s\" under its "
                        "subsets (name + labels), or leave subset out to use every workload",
                        s->name, d->subset);
    const char *names[CONFIG_MAX_SUBSETS];
    char list[300] = "";
    size_t used = 0, n = s->n_subsets < CONFIG_MAX_SUBSETS ? s->n_subsets : CONFIG_MAX_SUBSETS;
    for (size_t i = 0; i < n; i++) {
        names[i] = s->subsets[i].name;
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
        if (w > 0 && (size_t)w < sizeof list - used)
            used += (size_t)w;
    }
    const char *hint = mesh_suggest(d->subset, names, n);
    char mean[100] = "";
    if (hint)
        snprintf(mean, sizeof mean, "; did you mean \"%s\"?", hint);
    return vfail_at(v, CONFIG_KIND_ROUTE, route, d->source, field,
                    "service \"%s\" has no subset \"%s\"%s (its subsets: %s)", s->name,
                    d->subset, mean, list);
}

/* One failed reference: *failed is set; 1 when validation stops here (the
 * first error, or out of memory), 0 to go on with the next (collecting). */
static int stop_at(const vctx *v, int rc, int *failed)
{
    *failed = 1;
    return !keep_going(v, rc);
}

static int check_refs(const vctx *v, const idx_entry *svc_idx)
{
    const mesh_config *c = v->cfg;
    int rc, failed = 0;
    for (size_t i = 0; i < c->n_workloads; i++) {
        const mesh_workload *w = &c->workloads[i];
        if (!find_svc(v, svc_idx, w->service)) {
            rc = vfail(v, CONFIG_KIND_WORKLOAD, i, "service",
                       "unknown service \"%s\" (define it under services)", w->service);
            if (stop_at(v, rc, &failed))
                return rc;
        }
        for (size_t t = 0; t < w->n_tcp_outbound; t++) {
            char field[64];
            snprintf(field, sizeof field, "tcp_outbound[%zu].service", t);
            const mesh_service *s = find_svc(v, svc_idx, w->tcp_outbound[t].service);
            rc = MESH_OK;
            if (!s)
                rc = vfail(v, CONFIG_KIND_WORKLOAD, i, field, "unknown service \"%s\"",
                           w->tcp_outbound[t].service);
            else if (s->protocol != MESH_PROTO_TCP)
                rc = vfail(v, CONFIG_KIND_WORKLOAD, i, field,
                           "service \"%s\" is %s; tcp_outbound only proxies tcp services "
                           "(reach http services through outbound)",
                           s->name, config_protocol_name(s->protocol));
            if (rc != MESH_OK && stop_at(v, rc, &failed))
                return rc;
        }
    }
    for (size_t i = 0; i < c->n_routes; i++) {
        const mesh_route *r = &c->routes[i];
        const mesh_service *first = NULL;   /* the route's first destination: its HTTP version */
        for (size_t ri = 0; ri < r->n_rules; ri++) {
            for (size_t d = 0; d < r->rules[ri].n_destinations; d++) {
                const mesh_destination *dst = &r->rules[ri].destinations[d];
                const char *name = dst->service;
                char field[96];
                snprintf(field, sizeof field, "rules[%zu].destinations[%zu].service", ri, d);
                const mesh_service *s = find_svc(v, svc_idx, name);
                rc = MESH_OK;
                if (!s) {
                    rc = vfail_at(v, CONFIG_KIND_ROUTE, i, dst->source, field,
                                  "unknown service \"%s\"", name);
                } else if (!mesh_protocol_is_http(s->protocol)) {
                    rc = vfail_at(v, CONFIG_KIND_ROUTE, i, dst->source, field,
                                  "service \"%s\" is tcp; routes only send to http services "
                                  "(http, http2 or grpc)",
                                  name);
                } else if (first && mesh_protocol_is_h2(first->protocol) !=
                                        mesh_protocol_is_h2(s->protocol)) {
                    /* The sidecar does not translate between HTTP/1.1 and HTTP/2 yet, so
                     * the hosts of one route must lead to one HTTP version. */
                    rc = vfail_at(v, CONFIG_KIND_ROUTE, i, dst->source, field,
                                  "service \"%s\" is %s but \"%s\" is %s; one route's "
                                  "destinations must all be http or all http2/grpc (the "
                                  "sidecar does not translate between HTTP/1.1 and HTTP/2)",
                                  name, config_protocol_name(s->protocol), first->name,
                                  config_protocol_name(first->protocol));
                } else if (dst->subset && !mesh_config_find_subset(s, dst->subset)) {
                    snprintf(field, sizeof field, "rules[%zu].destinations[%zu].subset", ri, d);
                    rc = unknown_subset(v, i, dst, field, s);
                }
                if (s && !first && mesh_protocol_is_http(s->protocol))
                    first = s;
                if (rc != MESH_OK && stop_at(v, rc, &failed))
                    return rc;
            }
        }
    }
    for (size_t i = 0; i < c->n_authz; i++) {
        if (!find_svc(v, svc_idx, c->authz[i].service)) {
            rc = vfail(v, CONFIG_KIND_AUTHZ, i, "service", "unknown service \"%s\"",
                       c->authz[i].service);
            if (stop_at(v, rc, &failed))
                return rc;
        }
    }
    return failed ? MESH_EINVAL : MESH_OK;
}

static int check_route_hosts(const vctx *v)
{
    const mesh_config *c = v->cfg;
    size_t n = 0;
    for (size_t i = 0; i < c->n_routes; i++)
        n += c->routes[i].n_hosts;
    idx_entry *e = alloc_entries(v, n);
    char **lower = calloc(n ? n : 1, sizeof *lower);
    int rc = MESH_OK;
    if (!e || !lower) {
        rc = mesh_err_set(v->err, MESH_ENOMEM, "validating the mesh config: out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < c->n_routes; i++) {
        for (size_t h = 0; h < c->routes[i].n_hosts; h++, k++) {
            /* hosts match case-insensitively, so compare them lowercased */
            lower[k] = strdup(c->routes[i].hosts[h]);
            if (!lower[k]) {
                rc = mesh_err_set(v->err, MESH_ENOMEM, "validating the mesh config: out of memory");
                goto out;
            }
            for (char *p = lower[k]; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            e[k] = (idx_entry){lower[k], i, h, is_input(v, CONFIG_KIND_ROUTE, i)};
        }
    }
    qsort(e, n, sizeof *e, cmp_entry);
    size_t dup, orig;
    if (first_duplicate(e, n, &dup, &orig, 1)) {
        char field[48], r[300];
        snprintf(field, sizeof field, "hosts[%zu]", e[dup].sub);
        ref(v, CONFIG_KIND_ROUTE, e[orig].idx, "", r, sizeof r);
        rc = vfail(v, CONFIG_KIND_ROUTE, e[dup].idx, field,
                   "host \"%s\" is already served by %s; a host belongs to one route",
                   c->routes[e[dup].idx].hosts[e[dup].sub], r);
    }
out:
    if (lower)
        for (size_t j = 0; j < n; j++)
            free(lower[j]);
    free(lower);
    free(e);
    return rc;
}

/* Listener addresses across workloads: sub 0 = inbound, 1 = outbound,
 * 2+t = tcp_outbound[t].listen. */
static void listener_field(size_t sub, char *buf, size_t n)
{
    if (sub == 0)
        snprintf(buf, n, "inbound");
    else if (sub == 1)
        snprintf(buf, n, "outbound");
    else
        snprintf(buf, n, "tcp_outbound[%zu].listen", sub - 2);
}

static int check_listeners(const vctx *v)
{
    const mesh_config *c = v->cfg;
    size_t n = 0;
    for (size_t i = 0; i < c->n_workloads; i++)
        n += 2 + c->workloads[i].n_tcp_outbound;
    idx_entry *e = alloc_entries(v, n);
    char (*norm)[300] = calloc(n ? n : 1, sizeof *norm);
    int rc = MESH_OK;
    if (!e || !norm) {
        rc = mesh_err_set(v->err, MESH_ENOMEM, "validating the mesh config: out of memory");
        goto out;
    }
    size_t k = 0;
    char why[CONFIG_WHY_MAX];
    for (size_t i = 0; i < c->n_workloads; i++) {
        const mesh_workload *w = &c->workloads[i];
        size_t subs = 2 + w->n_tcp_outbound;
        for (size_t s = 0; s < subs; s++) {
            const char *addr = s == 0 ? w->inbound : s == 1 ? w->outbound
                                                           : w->tcp_outbound[s - 2].listen;
            if (!addr)
                continue;
            /* already checked per resource, so this only normalizes */
            if (config_check_hostport(addr, norm[k], sizeof norm[k], NULL, why, sizeof why) != 0)
                continue;
            e[k] = (idx_entry){norm[k], i, s, is_input(v, CONFIG_KIND_WORKLOAD, i)};
            k++;
        }
    }
    qsort(e, k, sizeof *e, cmp_entry);
    size_t dup, orig;
    if (first_duplicate(e, k, &dup, &orig, 1)) {
        char field[48], ofield[48], r[300];
        listener_field(e[dup].sub, field, sizeof field);
        listener_field(e[orig].sub, ofield, sizeof ofield);
        ref(v, CONFIG_KIND_WORKLOAD, e[orig].idx, ofield, r, sizeof r);
        rc = vfail(v, CONFIG_KIND_WORKLOAD, e[dup].idx, field,
                   "address %s is already a listener of %s; two sidecar listeners cannot bind "
                   "the same address",
                   e[dup].key, r);
        goto out;
    }
    /* An app address that is some other sidecar's listener would loop traffic
     * through that sidecar (or fail to bind). */
    for (size_t i = 0; i < c->n_workloads; i++) {
        char app[300];
        if (!c->workloads[i].app ||
            config_check_hostport(c->workloads[i].app, app, sizeof app, NULL, why, sizeof why) != 0)
            continue;
        const idx_entry *hit = lookup(e, k, app);
        for (; hit && hit < e + k && strcmp(hit->key, app) == 0; hit++) {
            if (hit->idx == i)
                continue;
            char ofield[48], r[300];
            listener_field(hit->sub, ofield, sizeof ofield);
            if (hit->input && !is_input(v, CONFIG_KIND_WORKLOAD, i)) {
                /* the operator's new listener takes a stored app's address */
                ref(v, CONFIG_KIND_WORKLOAD, i, "app", r, sizeof r);
                rc = vfail(v, CONFIG_KIND_WORKLOAD, hit->idx, ofield,
                           "address %s is the app address of %s; a listener needs its own "
                           "address",
                           app, r);
            } else {
                ref(v, CONFIG_KIND_WORKLOAD, hit->idx, ofield, r, sizeof r);
                rc = vfail(v, CONFIG_KIND_WORKLOAD, i, "app",
                           "address %s is a sidecar listener of %s; the app needs its own address",
                           app, r);
            }
            goto out;
        }
    }
out:
    free(norm);
    free(e);
    return rc;
}

static int validate(vctx *v)
{
    if (v->td && *v->td) {
        mesh_err e;
        mesh_err_clear(&e);
        /* the trust domain comes from the store; a bad one is not the file's fault */
        if (spiffe_id_valid_trust_domain(v->td, &e) != MESH_OK)
            return mesh_err_set(v->err, MESH_EINVAL, "trust domain \"%s\" is not valid: %s",
                                v->td, e.msg);
    }
    int rc = check_resources(v), failed = 0;
    if (rc != MESH_OK && !keep_going(v, rc))
        return rc;
    failed |= rc != MESH_OK;
    idx_entry *svc = NULL, *tmp = NULL;
    size_t n_svc = 0, n_tmp = 0;
    if ((rc = name_index(v, CONFIG_KIND_SERVICE, &svc, &n_svc)) != MESH_OK)
        return rc;
    for (int k = CONFIG_KIND_WORKLOAD; k < CONFIG_KIND_COUNT; k++) {
        rc = name_index(v, (enum config_kind)k, &tmp, &n_tmp);
        if (rc == MESH_OK)
            free(tmp);
        else if (!keep_going(v, rc))
            break;
        failed |= rc != MESH_OK;
    }
    /* Each later phase runs when the earlier ones passed, or when collecting. */
    if (rc == MESH_OK || keep_going(v, rc)) {
        rc = check_refs(v, svc);
        failed |= rc != MESH_OK;
    }
    if (rc == MESH_OK || keep_going(v, rc)) {
        rc = check_route_hosts(v);
        failed |= rc != MESH_OK;
    }
    if (rc == MESH_OK || keep_going(v, rc)) {
        rc = check_listeners(v);
        failed |= rc != MESH_OK;
    }
    free(svc);
    if (v->oom)
        return MESH_ENOMEM;
    return rc != MESH_OK ? rc : failed ? MESH_EINVAL : MESH_OK;
}

int config_validate_ex(const mesh_config *cfg, const char *trust_domain,
                       const size_t n_input[CONFIG_KIND_COUNT], mesh_err *err)
{
    vctx v = {.cfg = cfg, .td = trust_domain, .err = err};
    for (int k = 0; k < CONFIG_KIND_COUNT; k++)
        v.n_input[k] = n_input ? n_input[k] : config_kind_count((enum config_kind)k, cfg);
    return validate(&v);
}

int mesh_config_validate_all(const mesh_config *cfg, const char *trust_domain,
                             mesh_config_warnings *errors, mesh_err *err)
{
    if (!cfg || !errors)
        return mesh_err_set(err, MESH_EINVAL, "no config to validate");
    vctx v = {.cfg = cfg, .td = trust_domain, .err = err, .all = errors};
    for (int k = 0; k < CONFIG_KIND_COUNT; k++)
        v.n_input[k] = config_kind_count((enum config_kind)k, cfg);
    int rc = validate(&v);
    /* An error outside the per-resource checks (the trust domain) is in err only. */
    if (rc == MESH_EINVAL && errors->n == 0) {
        mesh_err dummy = {0};
        if (warn_push(errors, err->msg, &dummy) != MESH_OK)
            return mesh_err_set(err, MESH_ENOMEM, "collecting config errors: out of memory");
    }
    return rc;
}

int mesh_config_validate(const mesh_config *cfg, const char *trust_domain, mesh_err *err)
{
    if (!cfg)
        return mesh_err_set(err, MESH_EINVAL, "no config to validate");
    return config_validate_ex(cfg, trust_domain, NULL, err);
}

/* ---- warnings ------------------------------------------------------------------ */

static int warn_push(mesh_config_warnings *w, const char *msg, mesh_err *err)
{
    char *dup = strdup(msg);
    char **nv = dup ? realloc(w->msgs, (w->n + 1) * sizeof *nv) : NULL;
    if (!nv) {
        free(dup);
        return mesh_err_set(err, MESH_ENOMEM, "collecting config warnings: out of memory");
    }
    w->msgs = nv;
    w->msgs[w->n++] = dup;
    return MESH_OK;
}

static int cmp_wl_service(const void *a, const void *b)
{
    const mesh_workload *x = *(const mesh_workload *const *)a;
    const mesh_workload *y = *(const mesh_workload *const *)b;
    return strcmp(x->service, y->service);
}

/* A subset nothing selects is valid (the replicas may not be declared yet, or
 * were just scaled away) but a route sending it traffic gets 503s. */
/* Weights that do not sum to 100 are valid (each destination gets its share
 * of the sum, as Envoy's weighted_clusters) but "95 + 15" is usually a typo. */
static int warn_weights(const vctx *v, mesh_config_warnings *w, mesh_err *err)
{
    const mesh_config *c = v->cfg;
    for (size_t i = 0; i < c->n_routes; i++) {
        const mesh_route *r = &c->routes[i];
        for (size_t ri = 0; ri < r->n_rules; ri++) {
            const mesh_route_rule *rule = &r->rules[ri];
            if (rule->n_destinations < 2)
                continue;
            uint64_t sum = 0;
            for (size_t d = 0; d < rule->n_destinations; d++)
                sum += rule->destinations[d].weight;
            if (sum == 100 || sum == 0)
                continue;
            char shares[300] = "";
            size_t used = 0;
            for (size_t d = 0; d < rule->n_destinations; d++) {
                const mesh_destination *dst = &rule->destinations[d];
                int n = snprintf(shares + used, sizeof shares - used, "%s%s%s%s %.0f%%",
                                 d ? ", " : "", dst->service, dst->subset ? "/" : "",
                                 dst->subset ? dst->subset : "",
                                 100.0 * (double)dst->weight / (double)sum);
                if (n < 0 || (size_t)n >= sizeof shares - used)
                    break;
                used += (size_t)n;
            }
            char field[48], msg[500], full[900];
            snprintf(field, sizeof field, "rules[%zu].destinations", ri);
            snprintf(msg, sizeof msg,
                     "the weights sum to %llu, not 100: each destination gets its share of the "
                     "sum (%s)",
                     (unsigned long long)sum, shares);
            vformat(v, CONFIG_KIND_ROUTE, i, NULL, field, msg, full, sizeof full);
            int rc = warn_push(w, full, err);
            if (rc != MESH_OK)
                return rc;
        }
    }
    return MESH_OK;
}

/* A route sends traffic to a service whose sidecar lets nobody in
 * (authorization is deny by default): every such request gets 403. */
static int warn_unreachable(const vctx *v, mesh_config_warnings *w, mesh_err *err)
{
    const mesh_config *c = v->cfg;
    for (size_t i = 0; i < c->n_routes; i++) {
        const mesh_route *r = &c->routes[i];
        for (size_t ri = 0; ri < r->n_rules; ri++) {
            for (size_t d = 0; d < r->rules[ri].n_destinations; d++) {
                const char *svc = r->rules[ri].destinations[d].service;
                int seen = 0; /* warn once per route and service */
                for (size_t e = 0; e < ri && !seen; e++)
                    for (size_t x = 0; x < r->rules[e].n_destinations && !seen; x++)
                        seen = strcmp(r->rules[e].destinations[x].service, svc) == 0;
                for (size_t x = 0; x < d && !seen; x++)
                    seen = strcmp(r->rules[ri].destinations[x].service, svc) == 0;
                int defined = 0; /* an unknown service is an error of its own */
                for (size_t k = 0; k < c->n_services && !defined; k++)
                    defined = strcmp(c->services[k].name, svc) == 0;
                if (seen || !defined)
                    continue;
                const mesh_authorization *a = NULL;
                for (size_t k = 0; k < c->n_authz && !a; k++)
                    if (strcmp(c->authz[k].service, svc) == 0)
                        a = &c->authz[k];
                if (a && a->n_allow > 0)
                    continue;
                char field[96], msg[400], full[800];
                snprintf(field, sizeof field, "rules[%zu].destinations[%zu].service", ri, d);
                snprintf(msg, sizeof msg,
                         a ? "service \"%s\" allows no caller (its authorization entry has an "
                             "empty allow list): every request routed to it gets 403"
                           : "service \"%s\" has no authorization entry, so its sidecar refuses "
                             "every caller (deny by default): add one that allows the callers",
                         svc);
                vformat(v, CONFIG_KIND_ROUTE, i, NULL, field, msg, full, sizeof full);
                int rc = warn_push(w, full, err);
                if (rc != MESH_OK)
                    return rc;
            }
        }
    }
    return MESH_OK;
}

int config_warn_ex(const mesh_config *cfg, const size_t n_input[CONFIG_KIND_COUNT],
                   mesh_config_warnings *w, mesh_err *err)
{
    vctx v = {.cfg = cfg, .err = NULL};
    for (int k = 0; k < CONFIG_KIND_COUNT; k++)
        v.n_input[k] = n_input ? n_input[k] : config_kind_count((enum config_kind)k, cfg);
    const mesh_workload **by_svc = calloc(cfg->n_workloads ? cfg->n_workloads : 1,
                                          sizeof *by_svc);
    if (!by_svc)
        return mesh_err_set(err, MESH_ENOMEM, "collecting config warnings: out of memory");
    for (size_t i = 0; i < cfg->n_workloads; i++)
        by_svc[i] = &cfg->workloads[i];
    qsort(by_svc, cfg->n_workloads, sizeof *by_svc, cmp_wl_service);
    int rc = MESH_OK;
    for (size_t i = 0; i < cfg->n_services && rc == MESH_OK; i++) {
        const mesh_service *s = &cfg->services[i];
        if (s->n_subsets == 0)
            continue;
        /* the service's workloads: a run in by_svc */
        size_t lo = 0, hi = cfg->n_workloads;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(by_svc[mid]->service, s->name) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t k = 0; k < s->n_subsets && rc == MESH_OK; k++) {
            const mesh_subset *sub = &s->subsets[k];
            int any = 0;
            for (size_t j = lo; j < cfg->n_workloads && !any &&
                                strcmp(by_svc[j]->service, s->name) == 0;
                 j++)
                any = mesh_subset_selects(sub, by_svc[j]);
            if (any)
                continue;
            char sel[256], field[48], msg[400], full[700];
            config_labels_format(sub->labels, sub->n_labels, sel, sizeof sel);
            snprintf(field, sizeof field, "subsets[%zu]", k);
            snprintf(msg, sizeof msg,
                     "subset \"%s\" (%s) selects no workload of service \"%s\": its cluster has "
                     "no endpoints, so requests routed to it fail with 503",
                     sub->name, sel, s->name);
            vformat(&v, CONFIG_KIND_SERVICE, i, NULL, field, msg, full, sizeof full);
            rc = warn_push(w, full, err);
        }
    }
    free(by_svc);
    if (rc == MESH_OK)
        rc = warn_weights(&v, w, err);
    if (rc == MESH_OK)
        rc = warn_unreachable(&v, w, err);
    return rc;
}

int mesh_config_warn(const mesh_config *cfg, mesh_config_warnings *w, mesh_err *err)
{
    if (!cfg || !w)
        return mesh_err_set(err, MESH_EINVAL, "mesh_config_warn: no config");
    return config_warn_ex(cfg, NULL, w, err);
}

void mesh_config_warnings_free(mesh_config_warnings *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->msgs[i]);
    free(w->msgs);
    memset(w, 0, sizeof *w);
}
