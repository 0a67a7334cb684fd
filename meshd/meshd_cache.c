/* meshd/meshd_cache.c — state shared by all streams: the loaded config, compiled snapshots,
 * the trust bundle and the CA list.
 *
 * Snapshots are compiled once per (identity, config generation) and shared
 * by reference between every stream of that identity; the watcher compiles
 * only the identities that are connected. Everything handed out is
 * refcounted and immutable, so a stream keeps using what it has while a
 * newer generation is being built. */
#include "meshd/meshd_internal.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "sds/compiler/xds_compile.h"
#include "sds/compiler/xds_compile_workload.h"
#include "sds/compiler/xds_compile_proxyless.h"
#include "meshd/meshd_proxyless.h"

int md_cache_init(md_cache *c)
{
    memset(c, 0, sizeof *c);
    if (pthread_mutex_init(&c->mu, NULL) != 0)
        return MESH_EINTERNAL;
    c->snaps = md_map_new(4096);
    c->enrolled = md_map_new(4096);
    if (!c->snaps || !c->enrolled)
        return MESH_ENOMEM;
    atomic_init(&c->cfg_gen, 0);
    atomic_init(&c->ca_gen, 1);
    atomic_init(&c->cert_gen, 1);
    return MESH_OK;
}

md_snap *md_snap_ref(md_snap *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void md_snap_unref(md_snap *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        md_snap_enc_free(s);
        xds_snapshot_free(&s->snap);
        free(s);
    }
}

static void snap_unref_void(void *p)
{
    md_snap_unref(p);
}

void md_cfg_unref(md_cfg *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
        if (c->base)
            md_cfg_unref(c->base);
        else
            mesh_config_free(&c->cfg);
        xds_health_free(&c->health);
        free(c);
    }
}

const mesh_config *md_cfg_config(const md_cfg *c)
{
    return c->base ? &c->base->cfg : &c->cfg;
}

md_cfg *md_cache_cfg_ref(md_ctx *ctx)
{
    md_cache *c = &ctx->cache;
    pthread_mutex_lock(&c->mu);
    md_cfg *cfg = c->cfg;
    if (cfg)
        atomic_fetch_add(&cfg->refs, 1);
    pthread_mutex_unlock(&c->mu);
    return cfg;
}

/* A copy of h (the set is small: the workloads that are down). */
static int health_copy(xds_health *out, const xds_health *h, mesh_err *err)
{
    return xds_health_build(out, (const char *const *)h->unhealthy, h->n, err);
}

void md_cas_unref(md_cas *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
        store_ca_free_list(c->list, c->n);
        free(c);
    }
}

static void free_void(void *p)
{
    free(p);
}

void md_cache_destroy(md_cache *c)
{
    md_map_free(c->enrolled, free_void);
    c->enrolled = NULL;
    md_map_free(c->snaps, snap_unref_void);
    md_cfg_unref(c->cfg);
    xds_health_free(&c->health);
    sds_bundle_unref(c->bundle);
    free(c->crl_pem);
    md_cas_unref(c->cas);
    pthread_mutex_destroy(&c->mu);
}

/* The view of an enrolled instance ("<SPIFFE ID>#<instance>"): that workload
 * alone. One the config does not name (yet, or any more) gets nothing, not the
 * identity's other workloads. */
static int compile_instance(const mesh_config *cfg, const xds_health *health, const char *key,
                            const char *sep, xds_snapshot *out, mesh_err *err)
{
    char id[600];
    size_t n = (size_t)(sep - key);
    if (n >= sizeof id)
        return mesh_err_set(err, MESH_EINVAL, "snapshot key %s is too long", key);
    memcpy(id, key, n);
    id[n] = '\0';
    int rc = xds_compile_workload_health(cfg, health, id, sep + 1, out, err);
    if (rc == MESH_ENOTFOUND) {
        log_warn("meshd", "instance %s of %s has no workload of that name and identity in the "
                          "mesh config; it is served no listeners or clusters",
                 sep + 1, id);
        memset(out, 0, sizeof *out);
        snprintf(out->spiffe_id, sizeof out->spiffe_id, "%.*s", (int)sizeof out->spiffe_id - 1, id);
        xds_snapshot_finish(out);
        rc = MESH_OK;
    }
    return rc;
}

/* Compiles outside the lock; NULL on failure (logged). spiffe_id is a cache
 * key: a SPIFFE ID (a sidecar enrolled for its identity as a whole), an
 * instance key (MD_INSTANCE_KEY_SEP) or a proxyless key (meshd/meshd_proxyless.h). */
static md_snap *compile(md_cfg *cfg, const char *spiffe_id)
{
    md_snap *s = calloc(1, sizeof *s);
    if (!s) {
        log_error("meshd", "out of memory compiling the snapshot of %s", spiffe_id);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    md_snap_enc_init(s);
    s->gen = cfg->gen;
    s->checked_gen = cfg->gen;
    mesh_err err = {0};
    const char *proxyless_id = md_proxyless_key_id(spiffe_id);
    const char *sep = proxyless_id ? NULL : strchr(spiffe_id, MD_INSTANCE_KEY_SEP);
    const mesh_config *mc = md_cfg_config(cfg);
    int rc = proxyless_id ? xds_compile_proxyless(mc, proxyless_id, &s->snap, &err)
             : sep ? compile_instance(mc, &cfg->health, spiffe_id, sep, &s->snap, &err)
                   : xds_compile_node_health(mc, &cfg->health, spiffe_id, &s->snap, &err);
    if (rc != MESH_OK) {
        log_error("meshd", "compiling xDS for %s at config version %lld failed: %s; the "
                           "sidecar keeps its last good config",
                  spiffe_id, (long long)cfg->version, err.msg);
        md_snap_enc_free(s);
        xds_snapshot_free(&s->snap);
        free(s);
        return NULL;
    }
    return s;
}

md_snap *md_cache_snapshot(md_ctx *ctx, const char *spiffe_id, uint64_t *gen_out)
{
    md_cache *c = &ctx->cache;
    pthread_mutex_lock(&c->mu);
    md_cfg *cfg = c->cfg;
    if (!cfg) {
        pthread_mutex_unlock(&c->mu);
        *gen_out = 0;
        return NULL;
    }
    md_snap *s = md_map_get(c->snaps, spiffe_id);
    *gen_out = cfg->gen;
    if (s && (s->gen == cfg->gen || s->checked_gen == cfg->gen)) {
        md_snap_ref(s);
        pthread_mutex_unlock(&c->mu);
        return s;
    }
    atomic_fetch_add(&cfg->refs, 1);
    pthread_mutex_unlock(&c->mu);

    md_snap *fresh = compile(cfg, spiffe_id);
    pthread_mutex_lock(&c->mu);
    if (fresh) {
        md_snap *cur = md_map_get(c->snaps, spiffe_id);
        if (!cur || cur->gen < fresh->gen) {
            void *old = NULL;
            if (md_map_put(c->snaps, spiffe_id, md_snap_ref(fresh), &old) != MESH_OK)
                md_snap_unref(fresh); /* the map's reference */
            md_snap_unref(old);
        }
        s = fresh;
    } else {
        /* Keep serving the last good snapshot of this identity, if any, and
         * remember this generation was tried so it is not compiled again on
         * every pass (the next config change retries). */
        s = md_map_get(c->snaps, spiffe_id);
        if (s && s->checked_gen < cfg->gen)
            s->checked_gen = cfg->gen;
        md_snap_ref(s);
    }
    pthread_mutex_unlock(&c->mu);
    md_cfg_unref(cfg);
    return s;
}

int md_cache_set_config(md_ctx *ctx, mesh_config *cfg, int64_t version, mesh_err *err)
{
    md_cache *c = &ctx->cache;
    md_cfg *n = calloc(1, sizeof *n);
    if (!n) {
        mesh_config_free(cfg);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    atomic_init(&n->refs, 1);
    n->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    n->version = version;
    /* The watcher is the only writer of c->health: reading it unlocked here
     * (on the watcher) is not racy. */
    if (health_copy(&n->health, &c->health, err) != MESH_OK) {
        md_cfg_unref(n);
        return MESH_ENOMEM;
    }
    pthread_mutex_lock(&c->mu);
    n->gen = atomic_load(&c->cfg_gen) + 1;
    md_cfg *old = c->cfg;
    c->cfg = n;
    atomic_store(&c->cfg_gen, n->gen);
    pthread_mutex_unlock(&c->mu);
    md_cfg_unref(old);
    return MESH_OK;
}

int md_cache_set_health(md_ctx *ctx, xds_health *h, mesh_err *err)
{
    md_cache *c = &ctx->cache;
    if (xds_health_equal(&c->health, h)) {
        xds_health_free(h);
        return 0;
    }
    md_cfg *cur = md_cache_cfg_ref(ctx);
    md_cfg *n = NULL;
    if (cur) {
        if ((n = calloc(1, sizeof *n)) == NULL || health_copy(&n->health, h, err) != MESH_OK) {
            free(n);
            md_cfg_unref(cur);
            xds_health_free(h);
            return mesh_err_set(err, MESH_ENOMEM, "out of memory installing endpoint health");
        }
        atomic_init(&n->refs, 1);
        n->version = cur->version;
        /* Share the loaded config: the owner is the generation without a base. */
        n->base = cur->base ? cur->base : cur;
        atomic_fetch_add(&n->base->refs, 1);
    }
    md_cfg_unref(cur);
    pthread_mutex_lock(&c->mu);
    xds_health old_health = c->health;
    c->health = *h;
    memset(h, 0, sizeof *h);
    md_cfg *old = NULL;
    if (n) {
        n->gen = atomic_load(&c->cfg_gen) + 1;
        old = c->cfg;
        c->cfg = n;
        atomic_store(&c->cfg_gen, n->gen);
    }
    pthread_mutex_unlock(&c->mu);
    md_cfg_unref(old);
    xds_health_free(&old_health);
    return n ? 1 : 0;
}

void md_cache_recompile(md_ctx *ctx, char **ids, size_t n)
{
    md_cache *c = &ctx->cache;
    /* Drop snapshots of identities no longer connected, then compile the
     * connected ones (md_cache_snapshot does the work and caches it). */
    pthread_mutex_lock(&c->mu);
    md_map *fresh = md_map_new(4096);
    if (fresh) {
        for (size_t i = 0; i < n; i++) {
            md_snap *s = md_map_remove(c->snaps, ids[i]);
            if (s && md_map_put(fresh, ids[i], s, NULL) != MESH_OK)
                md_snap_unref(s);
        }
        md_map_free(c->snaps, snap_unref_void);
        c->snaps = fresh;
    }
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        uint64_t gen;
        md_snap_unref(md_cache_snapshot(ctx, ids[i], &gen));
    }
}

sds_bundle *md_cache_bundle(md_ctx *ctx, uint64_t *gen_out)
{
    md_cache *c = &ctx->cache;
    pthread_mutex_lock(&c->mu);
    sds_bundle *b = sds_bundle_ref(c->bundle);
    *gen_out = c->bundle_gen;
    pthread_mutex_unlock(&c->mu);
    return b;
}

md_cas *md_cache_cas(md_ctx *ctx)
{
    md_cache *c = &ctx->cache;
    pthread_mutex_lock(&c->mu);
    md_cas *cas = c->cas;
    if (cas)
        atomic_fetch_add(&cas->refs, 1);
    pthread_mutex_unlock(&c->mu);
    return cas;
}

int md_cache_set_cas(md_ctx *ctx, store_ca *list, size_t n, const char *bundle_pem,
                     mesh_err *err)
{
    md_cache *c = &ctx->cache;
    md_cas *cas = calloc(1, sizeof *cas);
    if (!cas) {
        store_ca_free_list(list, n);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    atomic_init(&cas->refs, 1);
    cas->list = list;
    cas->n = n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].state, "active") == 0)
            cas->active_id = list[i].id;
    sds_bundle *b = NULL;
    /* The watcher is the only writer of the bundle and its CRLs, so reading
     * crl_pem, building outside the lock and installing is not racy. */
    pthread_mutex_lock(&c->mu);
    int bundle_changed = !c->bundle || strcmp(sds_bundle_pem(c->bundle), bundle_pem) != 0;
    char *crl = c->crl_pem ? strdup(c->crl_pem) : NULL;
    pthread_mutex_unlock(&c->mu);
    if (bundle_changed) {
        int rc = sds_bundle_build(bundle_pem, crl, ctx->trust_domain, &b, err);
        if (rc != MESH_OK) {
            free(crl);
            md_cas_unref(cas);
            return rc;
        }
    }
    free(crl);
    pthread_mutex_lock(&c->mu);
    md_cas *old_cas = c->cas;
    int64_t old_active = old_cas ? old_cas->active_id : 0;
    c->cas = cas;
    sds_bundle *old_b = NULL;
    if (b) {
        old_b = c->bundle;
        c->bundle = b;
        c->bundle_gen++;
    }
    pthread_mutex_unlock(&c->mu);
    if (old_cas && old_active != cas->active_id)
        atomic_fetch_add(&c->ca_gen, 1);
    md_cas_unref(old_cas);
    sds_bundle_unref(old_b);
    return MESH_OK;
}

int md_cache_set_crl(md_ctx *ctx, const char *crl_pem, mesh_err *err)
{
    md_cache *c = &ctx->cache;
    char *copy = strdup(crl_pem ? crl_pem : "");
    if (!copy)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    pthread_mutex_lock(&c->mu);
    int same = c->crl_pem && strcmp(c->crl_pem, copy) == 0;
    char *roots = !same && c->bundle ? strdup(sds_bundle_pem(c->bundle)) : NULL;
    int have_bundle = c->bundle != NULL;
    pthread_mutex_unlock(&c->mu);
    if (same) {
        free(copy);
        return 0;
    }
    sds_bundle *b = NULL;
    if (have_bundle) {
        int rc = roots ? sds_bundle_build(roots, copy, ctx->trust_domain, &b, err)
                       : mesh_err_set(err, MESH_ENOMEM, "out of memory");
        free(roots);
        if (rc != MESH_OK) {
            free(copy);
            return rc;
        }
    }
    pthread_mutex_lock(&c->mu);
    char *old_crl = c->crl_pem;
    c->crl_pem = copy;
    sds_bundle *old_b = NULL;
    if (b) {
        old_b = c->bundle;
        c->bundle = b;
        c->bundle_gen++;
    }
    pthread_mutex_unlock(&c->mu);
    free(old_crl);
    sds_bundle_unref(old_b);
    return 1;
}

/* ---- enrolments seen (for a store outage) ------------------------------------ */

void md_cache_remember_enrolment(md_ctx *ctx, const char *serial, const char *instance)
{
    md_cache *c = &ctx->cache;
    if (!serial || !serial[0])
        return;
    pthread_mutex_lock(&c->mu);
    const char *had = c->enrolled ? md_map_get(c->enrolled, serial) : NULL;
    if (c->enrolled && (!had || strcmp(had, instance) != 0) &&
        (had || md_map_count(c->enrolled) < MD_ENROLLED_MAX)) {
        char *v = strdup(instance);
        void *old = NULL;
        if (v && md_map_put(c->enrolled, serial, v, &old) != MESH_OK)
            free(v);
        free(old);
    }
    pthread_mutex_unlock(&c->mu);
}

int md_cache_enrolment(md_ctx *ctx, const char *serial, char *out, size_t n)
{
    md_cache *c = &ctx->cache;
    pthread_mutex_lock(&c->mu);
    const char *v = c->enrolled && serial ? md_map_get(c->enrolled, serial) : NULL;
    if (v)
        snprintf(out, n, "%s", v);
    pthread_mutex_unlock(&c->mu);
    return v != NULL;
}

void md_cache_forget_enrolment(md_ctx *ctx, const char *serial)
{
    md_cache *c = &ctx->cache;
    if (!serial || !serial[0])
        return;
    pthread_mutex_lock(&c->mu);
    if (c->enrolled)
        free(md_map_remove(c->enrolled, serial));
    pthread_mutex_unlock(&c->mu);
}
