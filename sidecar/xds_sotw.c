/* sidecar/xds_sotw.c — client-side SotW bookkeeping (see xds_sotw.h). */
#include "sidecar/xds_sotw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_urls[XDSC_TYPE_COUNT] = {
    [XDSC_SDS] = XDS_TYPE_URL_SECRET,   [XDSC_CDS] = XDS_TYPE_URL_CLUSTER,
    [XDSC_EDS] = XDS_TYPE_URL_ENDPOINT, [XDSC_LDS] = XDS_TYPE_URL_LISTENER,
    [XDSC_RDS] = XDS_TYPE_URL_ROUTE,
};

const char *xdsc_type_url(enum xdsc_type t)
{
    return (unsigned)t < XDSC_TYPE_COUNT ? type_urls[t] : "";
}

const char *xdsc_type_short(enum xdsc_type t)
{
    return (unsigned)t < XDSC_TYPE_COUNT ? xds_wire_short_name(type_urls[t]) : "?";
}

int xdsc_type_from_url(const char *url, enum xdsc_type *out)
{
    for (int i = 0; url && i < XDSC_TYPE_COUNT; i++) {
        if (strcmp(url, type_urls[i]) == 0) {
            *out = (enum xdsc_type)i;
            return 0;
        }
    }
    return -1;
}

/* ---- name sets ---------------------------------------------------------------- */

/* Binary search: index of name, or where it would go (and *found = false). */
static size_t names_find(const xdsc_names *s, const char *name, bool *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->v[mid], name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

int xdsc_names_add(xdsc_names *s, const char *name)
{
    bool found;
    size_t at = names_find(s, name, &found);
    if (found)
        return MESH_OK;
    char *copy = strdup(name);
    char **nv = realloc(s->v, (s->n + 1) * sizeof *nv);
    if (!copy || !nv) {
        free(copy);
        if (nv)
            s->v = nv;
        return MESH_ENOMEM;
    }
    s->v = nv;
    memmove(s->v + at + 1, s->v + at, (s->n - at) * sizeof *s->v);
    s->v[at] = copy;
    s->n++;
    return MESH_OK;
}

bool xdsc_names_contains(const xdsc_names *s, const char *name)
{
    bool found;
    names_find(s, name, &found);
    return found;
}

bool xdsc_names_equal(const xdsc_names *a, const xdsc_names *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return false;
    return true;
}

void xdsc_names_free(xdsc_names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static int names_copy(xdsc_names *dst, const xdsc_names *src)
{
    xdsc_names tmp = {0};
    for (size_t i = 0; i < src->n; i++) {
        if (xdsc_names_add(&tmp, src->v[i]) != MESH_OK) {
            xdsc_names_free(&tmp);
            return MESH_ENOMEM;
        }
    }
    xdsc_names_free(dst);
    *dst = tmp;
    return MESH_OK;
}

/* ---- resources ---------------------------------------------------------------- */

void xdsc_resources_free(xdsc_resource *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        free(r[i].name);
        free(r[i].data);
    }
    free(r);
}

static int res_cmp(const void *a, const void *b)
{
    return strcmp(((const xdsc_resource *)a)->name, ((const xdsc_resource *)b)->name);
}

/* ---- per type state ------------------------------------------------------------- */

static int set_str(char **dst, const char *src)
{
    char *c = NULL;
    if (src) {
        c = strdup(src);
        if (!c)
            return MESH_ENOMEM;
    }
    free(*dst);
    *dst = c;
    return MESH_OK;
}

int xdsc_sotw_init(xdsc_sotw *s, mesh_err *err)
{
    memset(s, 0, sizeof *s);
    s->t[XDSC_LDS].wildcard = true;
    s->t[XDSC_CDS].wildcard = true;
    if (xdsc_names_add(&s->t[XDSC_SDS].subs, XDSC_SECRET_DEFAULT) != MESH_OK ||
        xdsc_names_add(&s->t[XDSC_SDS].subs, XDSC_SECRET_ROOTCA) != MESH_OK) {
        xdsc_sotw_free(s);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    return MESH_OK;
}

void xdsc_sotw_free(xdsc_sotw *s)
{
    for (int i = 0; i < XDSC_TYPE_COUNT; i++) {
        xdsc_type_state *ts = &s->t[i];
        xdsc_names_free(&ts->subs);
        free(ts->version);
        free(ts->nonce);
        free(ts->nack_detail);
        xdsc_resources_free(ts->res, ts->n_res);
    }
    memset(s, 0, sizeof *s);
}

void xdsc_sotw_stream_start(xdsc_sotw *s)
{
    s->node_sent = false;
    for (int i = 0; i < XDSC_TYPE_COUNT; i++) {
        xdsc_type_state *ts = &s->t[i];
        free(ts->nonce);
        ts->nonce = NULL;
        /* A NACK belongs to a response of the old stream; the new stream
         * starts from what we hold. */
        free(ts->nack_detail);
        ts->nack_detail = NULL;
        ts->requested = false;
        ts->pending = ts->wildcard || ts->subs.n > 0;
    }
}

int xdsc_sotw_set_subs(xdsc_sotw *s, enum xdsc_type t, const xdsc_names *names, bool *changed,
                       mesh_err *err)
{
    if (changed)
        *changed = false;
    xdsc_type_state *ts = &s->t[t];
    if (ts->wildcard)
        return mesh_err_set(err, MESH_EINVAL, "%s is a wildcard subscription",
                            xdsc_type_short(t));
    if (xdsc_names_equal(&ts->subs, names))
        return MESH_OK;
    if (names_copy(&ts->subs, names) != MESH_OK)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    /* Drop what we no longer want, keeping the array sorted. */
    size_t w = 0;
    for (size_t r = 0; r < ts->n_res; r++) {
        if (xdsc_names_contains(&ts->subs, ts->res[r].name)) {
            ts->res[w++] = ts->res[r];
        } else {
            free(ts->res[r].name);
            free(ts->res[r].data);
        }
    }
    ts->n_res = w;
    /* Never asked and still nothing to ask: no request needed. */
    ts->pending = ts->requested || ts->subs.n > 0;
    if (changed)
        *changed = true;
    return MESH_OK;
}

bool xdsc_sotw_wants(const xdsc_sotw *s, enum xdsc_type t, const char *name)
{
    const xdsc_type_state *ts = &s->t[t];
    return ts->wildcard || xdsc_names_contains(&ts->subs, name);
}

static int replace_resources(xdsc_type_state *ts, xdsc_resource *res, size_t n, mesh_err *err)
{
    if (n > 1)
        qsort(res, n, sizeof *res, res_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(res[i - 1].name, res[i].name) == 0)
            return mesh_err_set(err, MESH_EINVAL, "resource '%s' appears twice", res[i].name);
    xdsc_resources_free(ts->res, ts->n_res);
    ts->res = res;
    ts->n_res = n;
    return MESH_OK;
}

int xdsc_sotw_accept(xdsc_sotw *s, enum xdsc_type t, const char *version, const char *nonce,
                     xdsc_resource *res, size_t n, mesh_err *err)
{
    xdsc_type_state *ts = &s->t[t];
    char *v = strdup(version ? version : "");
    char *nn = strdup(nonce ? nonce : "");
    if (!v || !nn) {
        free(v);
        free(nn);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    int rc = replace_resources(ts, res, n, err);
    if (rc != MESH_OK) {
        free(v);
        free(nn);
        return rc;
    }
    free(ts->version);
    ts->version = v;
    free(ts->nonce);
    ts->nonce = nn;
    free(ts->nack_detail);
    ts->nack_detail = NULL;
    ts->n_accepted++;
    ts->pending = true;
    return MESH_OK;
}

int xdsc_sotw_reject(xdsc_sotw *s, enum xdsc_type t, const char *version, const char *nonce,
                     const char *reason, mesh_err *err)
{
    xdsc_type_state *ts = &s->t[t];
    if (set_str(&ts->nonce, nonce ? nonce : "") != MESH_OK ||
        set_str(&ts->nack_detail, reason ? reason : "rejected") != MESH_OK)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    ts->n_rejected++;
    snprintf(ts->last_nack_version, sizeof ts->last_nack_version, "%s", version ? version : "");
    snprintf(ts->last_error, sizeof ts->last_error, "%s", ts->nack_detail);
    ts->pending = true;
    return MESH_OK;
}

int xdsc_sotw_restore(xdsc_sotw *s, enum xdsc_type t, const char *version, xdsc_resource *res,
                      size_t n, mesh_err *err)
{
    xdsc_type_state *ts = &s->t[t];
    char *v = strdup(version ? version : "");
    if (!v)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    int rc = replace_resources(ts, res, n, err);
    if (rc != MESH_OK) {
        free(v);
        return rc;
    }
    free(ts->version);
    ts->version = v;
    return MESH_OK;
}

const xdsc_resource *xdsc_sotw_find(const xdsc_sotw *s, enum xdsc_type t, const char *name)
{
    const xdsc_type_state *ts = &s->t[t];
    xdsc_resource key = {.name = (char *)name};
    if (ts->n_res == 0)
        return NULL;
    return bsearch(&key, ts->res, ts->n_res, sizeof *ts->res, res_cmp);
}

bool xdsc_sotw_next_pending(const xdsc_sotw *s, enum xdsc_type *out)
{
    for (int i = 0; i < XDSC_TYPE_COUNT; i++) {
        if (s->t[i].pending) {
            *out = (enum xdsc_type)i;
            return true;
        }
    }
    return false;
}

void xdsc_sotw_build_request(xdsc_sotw *s, enum xdsc_type t, Envoy__Config__Core__V3__Node *node,
                             Envoy__Service__Discovery__V3__DiscoveryRequest *req,
                             Google__Rpc__Status *status)
{
    xdsc_type_state *ts = &s->t[t];
    envoy__service__discovery__v3__discovery_request__init(req);
    req->type_url = (char *)xdsc_type_url(t);
    req->version_info = ts->version ? ts->version : "";
    req->response_nonce = ts->nonce ? ts->nonce : "";
    if (!ts->wildcard) {
        req->resource_names = ts->subs.v;
        req->n_resource_names = ts->subs.n;
    }
    if (!s->node_sent) {
        req->node = node;
        s->node_sent = true;
    }
    if (ts->nack_detail) {
        google__rpc__status__init(status);
        status->code = XDSC_NACK_CODE;
        status->message = ts->nack_detail;
        req->error_detail = status;
    }
    ts->pending = false;
    ts->requested = true;
}
