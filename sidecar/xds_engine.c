/* sidecar/xds_engine.c — accept/reject, translate, persist and publish xDS
 * responses (see xds_engine.h). */
#include "sidecar/xds_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sidecar/xds_persist.h"
#include "sidecar/xds_tr_secret.h"
#include "sidecar/xds_translate.h"

int xdsc_engine_init(xdsc_engine *e, cert_pool *pool, const char *state_dir, xdsc_apply_fn apply,
                     void *apply_ctx, mesh_err *err)
{
    memset(e, 0, sizeof *e);
    int rc = xdsc_sotw_init(&e->sotw, err);
    if (rc != MESH_OK)
        return rc;
    e->pool = pool;
    e->apply = apply;
    e->apply_ctx = apply_ctx;
    e->warm_timeout_ms = XDSC_WARM_TIMEOUT_MS;
    e->cur = dp_config_new();
    if (!e->cur || (state_dir && !(e->state_dir = strdup(state_dir)))) {
        xdsc_engine_free(e);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    rc = dp_config_freeze(e->cur, err);
    if (rc != MESH_OK) {
        xdsc_engine_free(e);
        return rc;
    }
    return MESH_OK;
}

void xdsc_engine_free(xdsc_engine *e)
{
    xdsc_sotw_free(&e->sotw);
    dp_config_unref(e->cur);
    dp_config_unref(e->published);
    xdsc_names_free(&e->gave_up);
    free(e->state_dir);
    memset(e, 0, sizeof *e);
}

/* ---- helpers --------------------------------------------------------------------- */

static bool same_resources(const xdsc_type_state *ts, const xdsc_resource *res, size_t n)
{
    if (ts->version == NULL || ts->n_res != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        const xdsc_resource *a = &ts->res[i], *b = &res[i];
        if (strcmp(a->name, b->name) != 0 || a->len != b->len ||
            (a->len && memcmp(a->data, b->data, a->len) != 0))
            return false;
    }
    return true;
}

static int res_cmp(const void *a, const void *b)
{
    return strcmp(((const xdsc_resource *)a)->name, ((const xdsc_resource *)b)->name);
}

/* The snapshot with table t rebuilt from res. On success *out is frozen. */
static int build_with_table(const dp_config *base, enum xdsc_type t, const xdsc_resource *res,
                            size_t n, dp_config **out, mesh_err *err)
{
    *out = NULL;
    dp_config *next = dp_config_copy(base, DP_TABLE_ALL & ~xdsc_type_table(t));
    if (!next)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory copying the config snapshot");
    int rc = xdsc_translate_table(next, t, res, n, err);
    if (rc == MESH_OK)
        rc = dp_config_freeze(next, err);
    if (rc != MESH_OK) {
        dp_config_unref(next);
        return rc;
    }
    *out = next;
    return MESH_OK;
}

/* Recomputes the RDS and EDS names from the accepted snapshot. A name that
 * left a set also leaves its table (rebuilt from what we still hold). */
static int update_subscriptions(xdsc_engine *e, mesh_err *err)
{
    static const enum xdsc_type dep[2] = {XDSC_RDS, XDSC_EDS};
    for (int i = 0; i < 2; i++) {
        enum xdsc_type t = dep[i];
        xdsc_names want = {0};
        int rc = t == XDSC_RDS ? xdsc_config_rds_names(e->cur, &want, err)
                               : xdsc_config_eds_names(e->cur, &want, err);
        size_t before = e->sotw.t[t].n_res;
        bool changed = false;
        if (rc == MESH_OK)
            rc = xdsc_sotw_set_subs(&e->sotw, t, &want, &changed, err);
        xdsc_names_free(&want);
        if (rc != MESH_OK)
            return rc;
        if (changed)
            log_info("xds", "%s subscription now %zu name(s)", xdsc_type_short(t),
                     e->sotw.t[t].subs.n);
        if (e->sotw.t[t].n_res != before) {
            dp_config *next;
            const xdsc_type_state *ts = &e->sotw.t[t];
            rc = build_with_table(e->cur, t, ts->res, ts->n_res, &next, err);
            if (rc != MESH_OK)
                return mesh_err_prefix(err, "dropping unreferenced %s resources",
                                       xdsc_type_short(t));
            dp_config_unref(e->cur);
            e->cur = next;
        }
    }
    return MESH_OK;
}

/* Unwraps, names and filters a response's resources (sorted by name). */
static int collect(xdsc_engine *e, enum xdsc_type t, Google__Protobuf__Any *const *anys, size_t n,
                   xdsc_resource **out, size_t *n_out, mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    xdsc_resource *res = calloc(n ? n : 1, sizeof *res);
    if (!res)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = xdsc_resource_from_any(t, anys[i], &res[k], err);
        if (rc != MESH_OK) {
            mesh_err_prefix(err, "resources[%zu]", i);
            xdsc_resources_free(res, k);
            return rc;
        }
        if (!xdsc_sotw_wants(&e->sotw, t, res[k].name)) {
            /* SotW servers may send more than asked; Envoy ignores extras. */
            log_debug("xds", "ignoring unrequested %s resource '%s'", xdsc_type_short(t),
                      res[k].name);
            free(res[k].name);
            free(res[k].data);
            continue;
        }
        k++;
    }
    if (k > 1)
        qsort(res, k, sizeof *res, res_cmp);
    for (size_t i = 1; i < k; i++) {
        if (strcmp(res[i - 1].name, res[i].name) == 0) {
            mesh_err_set(err, MESH_EINVAL, "resource '%s' appears twice", res[i].name);
            xdsc_resources_free(res, k);
            return MESH_EINVAL;
        }
    }
    *out = res;
    *n_out = k;
    return MESH_OK;
}

/* Validates and applies; on success *next (non-SDS) is the new snapshot. */
static int apply_type(xdsc_engine *e, enum xdsc_type t, const xdsc_resource *res, size_t n,
                      bool live, int64_t now_unix, dp_config **next, mesh_err *err)
{
    *next = NULL;
    if (t != XDSC_SDS)
        return build_with_table(e->cur, t, res, n, next, err);
    /* Secrets: always validate the shape; touch the pool only for live
     * responses (at restore the pool's own file is the newer truth). */
    for (size_t i = 0; i < n; i++) {
        xdsc_secret s;
        int rc = xdsc_secret_parse(res[i].data, res[i].len, &s, err);
        if (rc != MESH_OK)
            return rc;
        xdsc_secret_free(&s);
    }
    if (!live || !e->pool)
        return MESH_OK;
    bool changed;
    return xdsc_secrets_apply(e->pool, res, n, now_unix, &changed, err);
}

static int publish(xdsc_engine *e, dp_config *cand, int64_t now_ms, mesh_err *err);

static void record_error(xdsc_engine *e, const char *msg)
{
    snprintf(e->last_error, sizeof e->last_error, "%s", msg);
}

int xdsc_engine_on_response(xdsc_engine *e, const Envoy__Service__Discovery__V3__DiscoveryResponse *resp,
                            int64_t now_unix, int64_t now_ms, bool *accepted, mesh_err *err)
{
    *accepted = false;
    enum xdsc_type t;
    if (xdsc_type_from_url(resp->type_url, &t) != 0) {
        log_warn("xds", "ignoring a response of unknown type '%.200s'", resp->type_url);
        return MESH_OK;
    }
    const char *version = resp->version_info ? resp->version_info : "";
    const char *nonce = resp->nonce ? resp->nonce : "";
    xdsc_resource *res = NULL;
    size_t n = 0;
    mesh_err why;
    mesh_err_clear(&why);
    int rc = collect(e, t, resp->resources, resp->n_resources, &res, &n, &why);
    if (rc == MESH_ENOMEM)
        return mesh_err_set(err, rc, "%s", why.msg);
    dp_config *next = NULL;
    bool unchanged = false;
    if (rc == MESH_OK) {
        /* Secrets are always offered to the pool: it ignores what it already
         * has, and this heals a pool file older than the persisted SDS bytes
         * (a crash between the two writes). */
        unchanged = t != XDSC_SDS && same_resources(&e->sotw.t[t], res, n);
        if (!unchanged)
            rc = apply_type(e, t, res, n, true, now_unix, &next, &why);
        /* The data plane takes it before we ACK: a listener that cannot bind
         * is a NACK, and the previous config keeps serving. */
        if (rc == MESH_OK && next)
            rc = publish(e, next, now_ms, &why);
        if (rc != MESH_OK && next) {
            dp_config_unref(next);
            next = NULL;
        }
        if (rc == MESH_ENOMEM) {
            xdsc_resources_free(res, n);
            return mesh_err_set(err, rc, "%s", why.msg);
        }
    }
    if (rc != MESH_OK) {
        xdsc_resources_free(res, n);
        log_warn("xds", "rejecting %s version '%.64s': %s (keeping version '%.64s')",
                 xdsc_type_short(t), version, why.msg,
                 e->sotw.t[t].version ? e->sotw.t[t].version : "");
        record_error(e, why.msg);
        return xdsc_sotw_reject(&e->sotw, t, version, nonce, why.msg, err);
    }
    rc = xdsc_sotw_accept(&e->sotw, t, version, nonce, res, n, err);
    if (rc != MESH_OK) {
        xdsc_resources_free(res, n);
        dp_config_unref(next);
        return rc;
    }
    *accepted = true;
    if (unchanged) {
        log_debug("xds", "%s version '%.64s' holds what we already have", xdsc_type_short(t),
                  version);
        return MESH_OK;
    }
    log_info("xds", "accepted %s version '%.64s' (%zu resource(s))", xdsc_type_short(t), version,
             n);
    if (next) {
        dp_config_unref(e->cur);
        e->cur = next;
    }
    if (e->state_dir) {
        mesh_err perr;
        const xdsc_type_state *ts = &e->sotw.t[t];
        if (xdsc_persist_save(e->state_dir, t, ts->version, ts->res, ts->n_res, &perr) != MESH_OK)
            log_warn("xds", "cannot persist %s (a restart during a meshd outage would miss it): "
                     "%s", xdsc_type_short(t), perr.msg);
    }
    if (t == XDSC_LDS || t == XDSC_CDS) {
        dp_config *before = e->cur;
        rc = update_subscriptions(e, err);
        if (rc != MESH_OK)
            return rc;
        /* Route tables or assignments nothing references any more left the
         * snapshot: the data plane drops them too (no listener changes, so
         * this cannot fail to bind; a failure is retried by poll). */
        if (e->cur != before && publish(e, e->cur, now_ms, &why) != MESH_OK) {
            e->publish_failed = true;
            record_error(e, why.msg);
        }
    }
    return MESH_OK;
}

/* ---- restore -------------------------------------------------------------------------- */

static int restore_type(xdsc_engine *e, enum xdsc_type t, bool *ok, mesh_err *err)
{
    *ok = false;
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
    mesh_err why;
    int rc = xdsc_persist_load(e->state_dir, t, &r, &why);
    if (rc == MESH_ENOTFOUND)
        return MESH_OK;
    if (rc != MESH_OK) {
        log_warn("xds", "not restoring %s: %s", xdsc_type_short(t), why.msg);
        return MESH_OK;
    }
    xdsc_resource *res = NULL;
    size_t n = 0;
    dp_config *next = NULL;
    rc = collect(e, t, r->resources, r->n_resources, &res, &n, &why);
    if (rc == MESH_OK)
        rc = apply_type(e, t, res, n, false, 0, &next, &why);
    if (rc == MESH_OK)
        rc = xdsc_sotw_restore(&e->sotw, t, r->version_info, res, n, &why);
    if (rc != MESH_OK) {
        xdsc_resources_free(res, n);
        dp_config_unref(next);
        log_warn("xds", "not restoring %s version '%.64s': %s", xdsc_type_short(t),
                 r->version_info, why.msg);
        envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
        return rc == MESH_ENOMEM ? mesh_err_set(err, rc, "%s", why.msg) : MESH_OK;
    }
    log_info("xds", "restored %s version '%.64s' (%zu resource(s)) from %s", xdsc_type_short(t),
             r->version_info, n, e->state_dir);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    if (next) {
        dp_config_unref(e->cur);
        e->cur = next;
    }
    *ok = true;
    if (t == XDSC_LDS || t == XDSC_CDS)
        return update_subscriptions(e, err);
    return MESH_OK;
}

int xdsc_engine_restore(xdsc_engine *e, int64_t now_ms, int *restored, mesh_err *err)
{
    *restored = 0;
    if (!e->state_dir)
        return MESH_OK;
    /* Enum order: SDS, CDS, EDS, LDS, RDS. EDS and RDS are filtered by the
     * names CDS and LDS reference, so they come after them. */
    for (int t = 0; t < XDSC_TYPE_COUNT; t++) {
        bool ok;
        int rc = restore_type(e, (enum xdsc_type)t, &ok, err);
        if (rc != MESH_OK)
            return rc;
        *restored += ok;
    }
    if (*restored) {
        /* What we restored is all we will have until meshd answers: serve it
         * now rather than wait for route tables that may never come. */
        xdsc_names rds = {0}, eds = {0};
        if (xdsc_engine_missing(e, &rds, &eds, NULL) == MESH_OK) {
            for (size_t i = 0; i < rds.n; i++)
                xdsc_names_add(&e->gave_up, rds.v[i]);
        }
        xdsc_names_free(&rds);
        xdsc_names_free(&eds);
        mesh_err aerr;
        if (publish(e, e->cur, now_ms, &aerr) != MESH_OK) {
            log_error("xds", "the data plane refused the restored config: %s (retrying)",
                      aerr.msg);
            e->publish_failed = true;
            record_error(e, aerr.msg);
        }
    }
    return MESH_OK;
}

/* ---- publishing ------------------------------------------------------------------------ */

int xdsc_engine_missing(const xdsc_engine *e, xdsc_names *rds, xdsc_names *eds, mesh_err *err)
{
    size_t n = dp_config_n_listeners(e->cur);
    for (size_t i = 0; i < n; i++) {
        const dp_listener *l = dp_config_listener_at(e->cur, i);
        if (l->kind == DP_LISTENER_OUTBOUND_HTTP && l->route_table &&
            !dp_config_find_route_table(e->cur, l->route_table) &&
            xdsc_names_add(rds, l->route_table) != MESH_OK)
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    n = dp_config_n_clusters(e->cur);
    for (size_t i = 0; i < n; i++) {
        const dp_cluster *c = dp_config_cluster_at(e->cur, i);
        if (!c->eds)
            continue;
        const char *name = c->eds_service_name && c->eds_service_name[0] ? c->eds_service_name
                                                                         : c->name;
        if (!dp_config_find_assignment(e->cur, name) && xdsc_names_add(eds, name) != MESH_OK)
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    return MESH_OK;
}

static bool warming(const xdsc_engine *e, const dp_config *cfg, const dp_listener *l)
{
    return l->kind == DP_LISTENER_OUTBOUND_HTTP && l->route_table &&
           !dp_config_find_route_table(cfg, l->route_table) &&
           !xdsc_names_contains(&e->gave_up, l->route_table);
}

/* What the data plane should run for cand: cand itself, unless an outbound
 * HTTP listener still waits for its route table; then that listener's
 * previously published version (if any) stands in for it. */
static int publishable(xdsc_engine *e, dp_config *cand, dp_config **out, size_t *withheld,
                       mesh_err *err)
{
    *out = NULL;
    *withheld = 0;
    size_t n = dp_config_n_listeners(cand);
    for (size_t i = 0; i < n; i++)
        *withheld += warming(e, cand, dp_config_listener_at(cand, i));
    if (*withheld == 0) {
        *out = dp_config_ref(cand);
        return MESH_OK;
    }
    dp_config *p = dp_config_copy(cand, DP_TABLE_ALL & ~DP_TABLE_LISTENERS);
    if (!p)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory copying the config snapshot");
    int rc = MESH_OK;
    for (size_t i = 0; rc == MESH_OK && i < n; i++) {
        const dp_listener *l = dp_config_listener_at(cand, i);
        if (warming(e, cand, l)) {
            const dp_listener *old =
                e->published ? dp_config_find_listener(e->published, l->name) : NULL;
            if (old)
                rc = dp_config_add_listener(p, old, err);
            continue;
        }
        rc = dp_config_add_listener(p, l, err);
    }
    if (rc == MESH_OK)
        rc = dp_config_freeze(p, err);
    if (rc != MESH_OK) {
        dp_config_unref(p);
        return rc;
    }
    *out = p;
    return MESH_OK;
}

/* Hands cand (or its warm subset) to the data plane. On success the data
 * plane runs it; on failure nothing changed and err says why. */
static int publish(xdsc_engine *e, dp_config *cand, int64_t now_ms, mesh_err *err)
{
    /* A table we gave up waiting for that has arrived since is waited for
     * again should it ever go missing. */
    for (size_t i = 0; i < e->gave_up.n;) {
        if (dp_config_find_route_table(cand, e->gave_up.v[i])) {
            free(e->gave_up.v[i]);
            memmove(e->gave_up.v + i, e->gave_up.v + i + 1,
                    (e->gave_up.n - i - 1) * sizeof *e->gave_up.v);
            e->gave_up.n--;
        } else {
            i++;
        }
    }
    dp_config *pub;
    size_t withheld;
    int rc = publishable(e, cand, &pub, &withheld, err);
    if (rc != MESH_OK)
        return rc;
    if (e->apply) {
        rc = e->apply(e->apply_ctx, pub, err);
        if (rc != MESH_OK) {
            dp_config_unref(pub);
            return rc;
        }
    }
    dp_config_unref(e->published);
    e->published = pub;
    e->n_published++;
    e->withheld = withheld;
    if (withheld == 0)
        e->warm_deadline_ms = 0;
    else if (e->warm_deadline_ms == 0)
        e->warm_deadline_ms = now_ms + e->warm_timeout_ms;
    log_info("xds", "config applied to the data plane: %zu listener(s)%s, %zu route table(s), "
             "%zu cluster(s), %zu load assignment(s)", dp_config_n_listeners(pub),
             withheld ? " (some warming)" : "", dp_config_n_route_tables(pub),
             dp_config_n_clusters(pub), dp_config_n_assignments(pub));
    return MESH_OK;
}

int64_t xdsc_engine_poll(xdsc_engine *e, int64_t now_ms)
{
    bool due = e->withheld && e->warm_deadline_ms && now_ms >= e->warm_deadline_ms;
    if (!due && !e->publish_failed)
        return e->withheld && e->warm_deadline_ms ? e->warm_deadline_ms - now_ms : -1;
    if (due) {
        size_t n = dp_config_n_listeners(e->cur);
        for (size_t i = 0; i < n; i++) {
            const dp_listener *l = dp_config_listener_at(e->cur, i);
            if (!warming(e, e->cur, l))
                continue;
            log_warn("xds", "route table '%s' not received within %lld ms; starting listener "
                     "'%s' without it (it answers 404 until the table arrives)", l->route_table,
                     (long long)e->warm_timeout_ms, l->name);
            xdsc_names_add(&e->gave_up, l->route_table);
        }
        e->warm_deadline_ms = 0;
    }
    mesh_err aerr;
    mesh_err_clear(&aerr);
    if (publish(e, e->cur, now_ms, &aerr) != MESH_OK) {
        if (!e->publish_failed)
            log_error("xds", "the data plane refused the config: %s (retrying every second; "
                      "the previous config keeps serving)", aerr.msg);
        e->publish_failed = true;
        record_error(e, aerr.msg);
        return 1000;
    }
    if (e->publish_failed)
        log_info("xds", "the data plane took the config after an earlier refusal");
    e->publish_failed = false;
    return e->withheld && e->warm_deadline_ms ? e->warm_deadline_ms - now_ms : -1;
}
