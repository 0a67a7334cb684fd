/* meshd/meshd_watch.c — the watcher: notices store changes and pushes them; rotates SVIDs.
 *
 * The store's change notification wakes it (meshd_notify.c: LISTEN/NOTIFY on
 * PostgreSQL, inotify on SQLite) when another connection committed (meshctl,
 * a worker, another meshd); every --poll-interval (1 s) it also reads the
 * data version (PRAGMA data_version on SQLite) in case a notification was
 * lost. It waits for the burst to settle (debounce 20 ms) and then looks at
 * what changed:
 *   - config_version: reload the mesh config, recompile the snapshots of the
 *     identities that are connected (only those), push the types whose
 *     version changed to the streams that subscribe to them;
 *   - the CA list: new bundle -> ROOTCA to everyone and new roots for TLS;
 *     a new active CA -> workers reload it, meshd's serving cert and every
 *     connected SVID are re-issued from it right away;
 *   - certificates: the audit log is the change feed (cert.issue carries the
 *     identity, cert.revoke the serial), so only identities with a new or
 *     revoked cert are looked up again; if the feed overflowed, all are;
 *   - CRLs (meshd_revoke.c): re-signed when revocations changed (and once a
 *     minute for nextUpdate); a new CRL is a new ROOTCA for every stream,
 *     and a stream whose own certificate got revoked is sent it, then closed.
 * Then the rotation pass: each connected SVID is renewed for the same key at
 * --rotate-fraction of its lifetime (+-10% jitter from its serial, so a
 * fleet issued at once renews spread out), as jobs on the worker pool; an
 * SVID from a CA that is no longer active is renewed at once (a CA rotation
 * re-signs every connected leaf from the new CA).
 * And the endpoint health pass (meshd_health.h): once a second, and on every
 * store change (a proxy-status row written by any meshd), it decides which
 * workloads' sidecars have been away longer than --endpoint-grace; a change
 * is a new snapshot generation, so only the views whose EDS carries one of
 * those endpoints get a push.
 * And the prune pass: a retired CA whose last leaf has expired leaves the
 * bundle (ca_prune), checked when the CA list changes, when the last leaf
 * of a retired CA expires, and at least every minute.
 * Workers that issue certs wake the watcher directly, so a renewal reaches
 * the sidecar without waiting for the next poll. The decisions themselves
 * (the change feed, what each stream needs, when an SVID is due, when a
 * retired CA is pruned) are meshd/meshd_changes.c; this file runs the loop and applies them. */
#include "meshd/meshd_internal.h"

#include <malloc.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "meshd/meshd_changes.h"
#include "meshd/meshd_health.h"
#include "meshd/meshd_proxyless.h"

#define ROTATION_RETRY_S 30
#define DEBOUNCE_MAX_ROUNDS 10

/* Watcher-thread-only state. */
typedef struct watch_local {
    int64_t last_dv;
    int64_t cfg_version;          /* loaded config version, -1 = none */
    int64_t cfg_failed_version;   /* version that failed to load (don't retry it) */
    char *ca_fp;                  /* fingerprint of the CA list */
    int64_t last_audit_id;
    int full_scan;                /* look up every stream's SVID on this pass */
    mesh_ca *ca;                  /* for meshd's own serving cert */
    uint64_t ca_gen;
    int64_t last_rotation_ms;
    int64_t last_crl_ms;          /* last CRL refresh (md_crl_sync) */
    md_map *deferred;             /* dirty identities whose streams were not ready */
    uint64_t closed_seen;         /* ctx->calls_closed at the last pass ... */
    int64_t closed_changed_ms;    /* ... when it last moved ... */
    uint64_t closed_at_trim;      /* ... and at the last malloc_trim */
    int64_t next_prune_at;        /* next look at the retired CAs (Unix s) */
    md_health_tracker health;     /* endpoint health between passes */
    int64_t last_health_s;        /* last health pass (Unix s) */
    int store_down;               /* the last poll could not read the store */
    int64_t next_poll_ms;         /* when the safety-net poll reads the data version */
} watch_local;

static void mark_dirty(const char *key, void *val, void *map)
{
    (void)val;
    md_map_put(map, key, (void *)1, NULL);
}

void md_watch_cert_changed(md_ctx *ctx, const char *spiffe_id, const char *rot_key, int ok)
{
    md_watch *w = &ctx->watch;
    pthread_mutex_lock(&w->mu);
    if (w->dirty && spiffe_id)
        md_map_put(w->dirty, spiffe_id, (void *)1, NULL);
    if (rot_key && w->rotating) {
        md_map_remove(w->rotating, rot_key);
        if (!ok) {
            int64_t *retry = malloc(sizeof *retry);
            if (retry) {
                *retry = md_now() + ROTATION_RETRY_S;
                void *old = NULL;
                if (md_map_put(w->rot_backoff, rot_key, retry, &old) != MESH_OK)
                    free(retry);
                free(old);
            }
        } else {
            free(md_map_remove(w->rot_backoff, rot_key));
        }
    }
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int md_watch_rotation_claim(md_watch *w, const char *key, int64_t now)
{
    pthread_mutex_lock(&w->mu);
    int busy = md_map_get(w->rotating, key) != NULL;
    int64_t *retry = md_map_get(w->rot_backoff, key);
    if (retry && *retry <= now) {
        free(md_map_remove(w->rot_backoff, key));
        retry = NULL;
    }
    if (!busy && !retry)
        busy = md_map_put(w->rotating, key, (void *)1, NULL) != MESH_OK;
    pthread_mutex_unlock(&w->mu);
    return !busy && !retry;
}

/* ---- what changed ------------------------------------------------------------------ */

static void load_config(md_ctx *ctx, watch_local *l, int64_t version)
{
    mesh_config cfg;
    memset(&cfg, 0, sizeof cfg);
    mesh_err err = {0};
    int64_t t0 = md_mono_us();
    int lrc = mesh_config_load_store(ctx->watch.st, &cfg, &err);
    md_metrics_store_op(&ctx->metrics, MD_STORE_CONFIG_LOAD, t0, lrc);
    if (lrc != MESH_OK) {
        mesh_config_free(&cfg);
        if (l->cfg_failed_version != version)
            log_error("meshd", "loading mesh config version %lld failed: %s; %s", (long long)version,
                      err.msg,
                      l->cfg_version >= 0 ? "serving the last good config"
                                          : "serving certificates and secrets only");
        l->cfg_failed_version = version;
        return;
    }
    if (md_cache_set_config(ctx, &cfg, version, &err) != MESH_OK) {
        log_error("meshd", "installing mesh config: %s", err.msg);
        return;
    }
    l->cfg_version = version;
    log_info("meshd", "mesh config version %lld loaded", (long long)version);
}

/* Returns 1 if the CA list changed (and installs it). */
static int check_cas(md_ctx *ctx, watch_local *l)
{
    mesh_err err = {0};
    store_ca *list = NULL;
    size_t n = 0;
    int64_t t0 = md_mono_us();
    int lrc = store_ca_list(ctx->watch.st, &list, &n, &err);
    md_metrics_store_op(&ctx->metrics, MD_STORE_CA_LIST, t0, lrc);
    if (lrc != MESH_OK) {
        log_warn("meshd", "reading the CA list: %s", err.msg);
        return 0;
    }
    char *fp = md_ca_fingerprint(list, n);
    if (!fp || (l->ca_fp && strcmp(fp, l->ca_fp) == 0)) {
        free(fp);
        store_ca_free_list(list, n);
        return 0;
    }
    char *bundle = NULL;
    if (ca_bundle_pem(ctx->watch.st, &bundle, &err) != MESH_OK) {
        log_warn("meshd", "reading the trust bundle: %s", err.msg);
        free(fp);
        store_ca_free_list(list, n);
        return 0;
    }
    uint64_t ca_gen_before = atomic_load(&ctx->cache.ca_gen);
    if (md_cache_set_cas(ctx, list, n, bundle, &err) != MESH_OK) { /* takes list */
        log_error("meshd", "installing the CA list: %s", err.msg);
        free(fp);
        free(bundle);
        return 0;
    }
    md_tls_set_roots(&ctx->tls, bundle);
    free(bundle);
    free(l->ca_fp);
    l->ca_fp = fp;
    if (atomic_load(&ctx->cache.ca_gen) != ca_gen_before)
        log_info("meshd", "active CA changed: re-issuing meshd's serving cert and every "
                          "connected SVID from it");
    return 1;
}

/* ---- applying changes to streams --------------------------------------------------- */

static void refresh_streams(md_ctx *ctx, md_call **calls, size_t n, md_map *dirty, int full_scan,
                            md_map *still_dirty, int64_t change_ms)
{
    md_current cur;
    memset(&cur, 0, sizeof cur);
    cur.cfg_gen = atomic_load(&ctx->cache.cfg_gen);
    sds_bundle *bundle = md_cache_bundle(ctx, &cur.bundle_gen);
    md_cas *cas = md_cache_cas(ctx);
    cur.have_bundle = bundle != NULL;
    cur.have_cas = cas != NULL;
    int64_t now = md_now();
    for (size_t i = 0; i < n; i++) {
        md_call *c = calls[i];
        md_stream_facts f;
        md_stream_facts_of(c, &f);
        if (md_refusal_overdue(&f, now)) {
            md_call_finish(c, GRPC_STATUS_PERMISSION_DENIED,
                           "the client certificate is revoked; see the proxy status");
            continue;
        }
        int cert_dirty = full_scan || md_map_get(dirty, c->spiffe_id);
        md_refresh_plan plan = md_refresh_plan_for(&f, c->plaintext, cert_dirty, &cur);
        if (plan.defer)
            md_map_put(still_dirty, c->spiffe_id, (void *)1, NULL);
        if (!f.ready)
            continue;
        md_view_update u;
        memset(&u, 0, sizeof u);
        u.change_ms = change_ms;
        sds_svid svid;
        memset(&svid, 0, sizeof svid);
        if (plan.snap) {
            u.snap = md_cache_snapshot(ctx, md_call_view_key(c), &u.cfg_gen);
            u.set_snap = 1;
        }
        if (plan.bundle) {
            u.bundle = bundle;
            u.bundle_gen = cur.bundle_gen;
        }
        if (plan.svid_lookup) {
            mesh_err err = {0};
            int revoked = 0;
            int64_t t0 = md_mono_us();
            int lrc = sds_svid_lookup(ctx->watch.st, c->spiffe_id, c->pubkey_sha, cas->list,
                                      cas->n, now, f.presented, &revoked, &svid, &err);
            md_metrics_store_op(&ctx->metrics, MD_STORE_SVID_LOOKUP, t0, lrc);
            if (lrc != MESH_OK) {
                log_warn("meshd", "looking up the SVID of %s: %s", c->spiffe_id, err.msg);
                md_map_put(still_dirty, c->spiffe_id, (void *)1, NULL);
            } else if (revoked) {
                /* Send the new ROOTCA first: its CRL tells the sidecar itself
                 * (and it still reaches every peer through theirs). */
                if (u.bundle) {
                    md_view_update bu = {.bundle = u.bundle, .bundle_gen = u.bundle_gen,
                                         .change_ms = change_ms};
                    pthread_mutex_lock(&c->mu);
                    if (!c->closed && !c->finishing)
                        md_stream_update_locked(c, &bu);
                    pthread_mutex_unlock(&c->mu);
                }
                md_stream_refuse_revoked(c, ctx->watch.st);
                sds_svid_free(&svid);
                if (u.snap)
                    md_snap_unref(u.snap);
                continue;
            } else if (md_svid_changed(&f, &svid)) {
                u.svid = &svid;
            }
        }
        if (u.set_snap || u.bundle || u.svid) {
            pthread_mutex_lock(&c->mu);
            if (!c->closed && !c->finishing)
                md_stream_update_locked(c, &u);
            pthread_mutex_unlock(&c->mu);
        }
        if (u.snap)
            md_snap_unref(u.snap);
        sds_svid_free(&svid);
    }
    sds_bundle_unref(bundle);
    md_cas_unref(cas);
}

/* ---- rotation ---------------------------------------------------------------------- */

static void rotation_pass(md_ctx *ctx, md_call **calls, size_t n)
{
    md_watch *w = &ctx->watch;
    md_cas *cas = md_cache_cas(ctx);
    int64_t active = cas ? cas->active_id : 0;
    md_cas_unref(cas);
    int64_t now = md_now();
    for (size_t i = 0; i < n; i++) {
        md_call *c = calls[i];
        md_stream_facts f;
        md_stream_facts_of(c, &f);
        enum md_rotation why = md_rotation_decide(&f, c->peer_cert_pem != NULL, now,
                                                  ctx->opts.rotate_fraction, active);
        if (why == MD_ROTATE_NO)
            continue;
        char key[600];
        snprintf(key, sizeof key, "%s|%s", c->spiffe_id, c->pubkey_sha);
        if (!md_watch_rotation_claim(w, key, now))
            continue;
        md_job *j = calloc(1, sizeof *j);
        if (!j) {
            md_watch_cert_changed(ctx, NULL, key, 0);
            continue;
        }
        j->kind = MD_JOB_ROTATE;
        j->spiffe_id = strdup(c->spiffe_id);
        j->cert_pem = strdup(c->peer_cert_pem);
        snprintf(j->instance, sizeof j->instance, "%s", f.instance);
        snprintf(j->rot_key, sizeof j->rot_key, "%s", key);
        j->ttl = md_rotation_ttl(f.nb, f.na);
        if (!j->spiffe_id || !j->cert_pem) {
            md_job_free(j);
            md_watch_cert_changed(ctx, NULL, key, 0);
            continue;
        }
        log_info("meshd", "rotating the SVID of %s (serial %s, %s)", c->spiffe_id, f.serial,
                 why == MD_ROTATE_OLD_CA ? "issued by a CA that is no longer active" : "due");
        if (md_work_submit(ctx, j) != MESH_OK)
            md_watch_cert_changed(ctx, NULL, key, 0);
    }
}

static void serving_cert_pass(md_ctx *ctx, watch_local *l)
{
    md_cas *cas = md_cache_cas(ctx);
    int64_t active = cas ? cas->active_id : 0;
    md_cas_unref(cas);
    if (!active || !md_tls_renew_due(&ctx->tls, md_now(), ctx->opts.rotate_fraction, active))
        return;
    mesh_err err = {0};
    uint64_t gen = atomic_load(&ctx->cache.ca_gen);
    if (!l->ca || l->ca_gen != gen) {
        mesh_ca *ca = NULL;
        if (ca_load(ctx->watch.st, &ca, &err) != MESH_OK) {
            log_error("meshd", "cannot load the active CA to renew meshd's serving cert: %s",
                      err.msg);
            return;
        }
        ca_free(l->ca);
        l->ca = ca;
        l->ca_gen = gen;
    }
    if (md_tls_issue_serving(ctx, l->ca, ctx->watch.st, &err) != MESH_OK)
        log_error("meshd", "%s; the current serving cert stays in use", err.msg);
}

/* ---- memory ---------------------------------------------------------------------------- */

/* Closed calls leave free memory scattered over malloc's arenas (gRPC and
 * meshd allocate from every CQ thread), which glibc keeps: after thousands of
 * streams went away RSS would stay at its peak. Once a burst of closes is
 * over (none for a second, at least MD_TRIM_AFTER_CLOSES since the last trim)
 * malloc_trim hands the free pages back. It costs a few milliseconds on the
 * watcher thread, which only pushes and rotates. */
#define MD_TRIM_AFTER_CLOSES 256
#define MD_TRIM_QUIET_MS 1000

static void memory_pass(md_ctx *ctx, watch_local *l)
{
    uint64_t closed = atomic_load(&ctx->calls_closed);
    int64_t now = md_now_ms();
    if (closed != l->closed_seen) {
        l->closed_seen = closed;
        l->closed_changed_ms = now;
        return;
    }
    if (closed - l->closed_at_trim < MD_TRIM_AFTER_CLOSES ||
        now - l->closed_changed_ms < MD_TRIM_QUIET_MS)
        return;
    int64_t t0 = md_now_ms();
    int released = malloc_trim(0);
    log_info("meshd", "%llu calls closed since the last trim: free memory %s to the system "
                      "(%lld ms)",
             (unsigned long long)(closed - l->closed_at_trim),
             released ? "returned" : "had none to return", (long long)(md_now_ms() - t0));
    l->closed_at_trim = closed;
}

/* ---- endpoint health ---------------------------------------------------------------- */

static void log_health_changes(const xds_health *before, const xds_health *after, int64_t grace)
{
    for (size_t i = 0; i < after->n; i++)
        if (!xds_health_is_unhealthy(before, after->unhealthy[i]))
            log_warn("meshd", "workload %s: its sidecar has held no xDS stream for %llds "
                              "(--endpoint-grace); its endpoint is UNHEALTHY in EDS until it "
                              "reconnects",
                     after->unhealthy[i], (long long)grace);
    for (size_t i = 0; i < before->n; i++)
        if (!xds_health_is_unhealthy(after, before->unhealthy[i]))
            log_info("meshd", "workload %s: its endpoint is HEALTHY in EDS again",
                     before->unhealthy[i]);
}

/* Returns 1 when the health set changed (a new generation to push). */
static int health_pass(md_ctx *ctx, watch_local *l, int changed)
{
    int64_t grace = ctx->opts.endpoint_grace_s;
    int64_t now = md_now();
    if (grace <= 0 || (!changed && now == l->last_health_s))
        return 0;
    md_cfg *cfg = md_cache_cfg_ref(ctx);
    if (!cfg)
        return 0;
    l->last_health_s = now;
    mesh_err err = {0};
    store_proxy *rows = NULL;
    size_t n = 0;
    xds_health h;
    int rc = store_proxy_list_rows(ctx->watch.st, &rows, &n, &err);
    if (rc == MESH_OK)
        rc = md_health_compute(&l->health, md_cfg_config(cfg), rows, n, now, grace, &h, &err);
    store_proxy_free_list(rows, n);
    md_cfg_unref(cfg);
    if (rc != MESH_OK) {
        log_warn("meshd", "endpoint health: %s; endpoints keep their last health", err.msg);
        return 0;
    }
    if (xds_health_equal(&h, &l->health.last)) {
        xds_health_free(&h);
        return 0;
    }
    xds_health copy;
    if (xds_health_build(&copy, (const char *const *)h.unhealthy, h.n, &err) != MESH_OK) {
        xds_health_free(&h);
        return 0;
    }
    rc = md_cache_set_health(ctx, &h, &err);   /* takes h */
    if (rc < 0) {
        log_warn("meshd", "endpoint health: %s", err.msg);
        xds_health_free(&copy);
        return 0;
    }
    log_health_changes(&l->health.last, &copy, grace);
    xds_health_free(&l->health.last);
    l->health.last = copy;
    return rc;
}

/* ---- pruning retired CAs ----------------------------------------------------------- */

/* Returns 1 if a retired CA left the bundle (this connection's own commit,
 * which PRAGMA data_version does not report: the caller reloads the CAs). */
static int prune_pass(md_ctx *ctx, watch_local *l, int cas_changed)
{
    int64_t now = md_now();
    if (!cas_changed && now < l->next_prune_at)
        return 0;
    mesh_err err = {0};
    ca_retired *r = NULL;
    size_t n = 0;
    if (ca_retired_list(ctx->watch.st, now, &r, &n, &err) != MESH_OK) {
        log_warn("meshd", "checking retired CAs for pruning: %s; retrying in %d s", err.msg,
                 MD_PRUNE_CHECK_S);
        l->next_prune_at = now + MD_PRUNE_CHECK_S;
        return 0;
    }
    md_prune_plan plan = md_prune_plan_for(r, n, now);
    free(r);
    l->next_prune_at = plan.next_check_at;
    if (!plan.prune)
        return 0;
    int removed = 0;
    if (ca_prune(ctx->watch.st, now, &removed, &err) != MESH_OK) {
        log_warn("meshd", "pruning retired CAs: %s; retrying in %d s", err.msg, MD_PRUNE_CHECK_S);
        return 0;
    }
    return removed > 0;
}

/* ---- the loop ------------------------------------------------------------------------ */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Takes the notify thread's poke (1 when there was one). */
static int take_poke(md_watch *w)
{
    pthread_mutex_lock(&w->mu);
    int p = w->poked;
    w->poked = 0;
    pthread_mutex_unlock(&w->mu);
    return p;
}

/* SQLite's inotify event comes with the write of the WAL, a moment before
 * the commit is visible (the WAL index is updated after the fsync): when a
 * poke finds no new data_version, look again a few times shortly after
 * (10 + 20 + 40 + 80 ms at most) rather than leave it to the next poll. */
#define POKE_RECHECKS 4
#define POKE_RECHECK_MS 10

/* The passes that run on time (endpoint health, rotation, the serving cert,
 * memory) need the loop at least this often, whatever --poll-interval is. */
#define WATCH_TICK_MS 1000

/* The poll interval in force: --poll-interval, or MD_POLL_FALLBACK_MS at
 * most while notifications do not work. */
static int64_t poll_interval_ms(md_ctx *ctx)
{
    int64_t ms = ctx->opts.poll_ms;
    if (!atomic_load(&ctx->watch.notify_live) && ms > MD_POLL_FALLBACK_MS)
        ms = MD_POLL_FALLBACK_MS;
    return ms;
}

/* One pass. first = startup (synchronous, before the server starts);
 * poked = the store notifier reported a commit; look = read the data
 * version (poked, the poll is due, or in-process changes), else a timer
 * tick that only runs the timed passes. */
static void watch_pass(md_ctx *ctx, watch_local *l, int first, int poked, int look)
{
    md_watch *w = &ctx->watch;
    mesh_store *st = w->st;
    /* When this pass saw the change: push convergence counts from here. */
    int64_t seen_ms = md_now_ms();
    if (!first && !look && l->store_down)
        return;
    if (first || look)
        l->next_poll_ms = seen_ms + poll_interval_ms(ctx);
    int64_t t0 = md_mono_us();
    int64_t dv = first || look ? store_data_version(st) : l->last_dv;
    int after_commit = w->notify_after_commit && atomic_load(&w->notify_live);
    for (int i = 0; poked && !first && !after_commit && dv >= 0 && dv == l->last_dv &&
                    i < POKE_RECHECKS; i++) {
        sleep_ms((int64_t)POKE_RECHECK_MS << i);
        dv = store_data_version(st);
    }
    if (first || look)
        md_metrics_store_op(&ctx->metrics, MD_STORE_POLL, t0, dv < 0 ? MESH_EIO : MESH_OK);
    if (dv < 0) {
        char why[600];
        snprintf(why, sizeof why,
                 "meshd cannot read its store %s; serving the config and secrets it has, "
                 "new certificates are refused (UNAVAILABLE) until the store is back",
                 store_path(st));
        md_metrics_store_health(&ctx->metrics, MD_HEALTH_READ, why);
        if (!l->store_down)
            log_error("meshd", "%s", why);
        l->store_down = 1;
        if (!first) {
            /* Nothing can be loaded now, and every pass would log the same
             * failures: keep what is served, look again on the next poll
             * (a new data_version then reloads everything). */
            return;
        }
    } else {
        md_metrics_store_health(&ctx->metrics, MD_HEALTH_READ, NULL);
        if (l->store_down)
            log_info("meshd", "store %s is readable again", store_path(st));
        l->store_down = 0;
    }
    int changed = first || dv != l->last_dv || (poked && after_commit);
    if (changed && !first) {
        /* Debounce: let a burst of commits (an apply of many resources,
         * a CA rotation's several steps) settle into one push: another
         * notification, or (without notifications that come after the
         * commit) another data_version, starts another round. On
         * PostgreSQL data_version also moves for commits elsewhere in the
         * cluster, so with LISTEN working only notifications count. */
        for (int i = 0; i < DEBOUNCE_MAX_ROUNDS; i++) {
            sleep_ms(ctx->opts.debounce_ms);
            int64_t again = store_data_version(st);
            int more = take_poke(w);
            if (!more && (after_commit || again == dv)) {
                dv = again;
                break;
            }
            dv = again;
        }
    }
    l->last_dv = dv;
    md_map *dirty = md_map_new(1024);
    md_map *still_dirty = md_map_new(1024);
    if (!dirty || !still_dirty) {
        md_map_free(dirty, NULL);
        md_map_free(still_dirty, NULL);
        log_error("meshd", "watcher: out of memory");
        return;
    }
    /* In-process notifications (they wake us early) plus what was deferred. */
    pthread_mutex_lock(&w->mu);
    md_map *mine = w->dirty;
    w->dirty = dirty;
    pthread_mutex_unlock(&w->mu);
    dirty = mine;
    if (l->deferred) {
        md_map_each(l->deferred, mark_dirty, dirty);
        md_map_free(l->deferred, NULL);
        l->deferred = NULL;
    }

    int cfg_changed = 0, cas_changed = 0;
    /* CRLs before the CA list, so a bundle built for a new CA carries them;
     * on every change (a revocation, another replica's CRL, a new CA) and
     * once a minute for nextUpdate. */
    int64_t now_ms = md_now_ms();
    if (md_crl_sync_due(changed, now_ms, l->last_crl_ms)) {
        md_crl_sync(ctx, st);
        l->last_crl_ms = now_ms;
    }
    if (changed) {
        int64_t cv = store_config_version(st);
        if (cv != l->cfg_version && cv != l->cfg_failed_version) {
            int64_t before = l->cfg_version;
            load_config(ctx, l, cv);
            cfg_changed = l->cfg_version != before;
        }
        if (check_cas(ctx, l)) {
            l->full_scan = 1;
            cas_changed = 1;
        }
        if (!first && md_audit_feed_read(st, &l->last_audit_id, dirty))
            l->full_scan = 1;
    }
    if (!first && prune_pass(ctx, l, cas_changed) && check_cas(ctx, l))
        l->full_scan = 1;
    if (first) {
        /* Start the audit feed at its current end. */
        store_audit_entry *a = NULL;
        size_t n = 0;
        mesh_err err = {0};
        if (store_audit_list(st, 1, &a, &n, &err) == MESH_OK && n > 0)
            l->last_audit_id = a[0].id;
        store_audit_free_list(a, n);
        md_map_free(dirty, NULL);
        md_map_free(still_dirty, NULL);
        return;
    }

    if (health_pass(ctx, l, changed))
        cfg_changed = 1;
    size_t n = 0;
    md_call **calls = md_registry_list(ctx, &n);
    if (cfg_changed && calls) {
        size_t nid = 0;
        char **ids = md_distinct_view_keys(calls, n, &nid);
        if (ids) {
            md_cache_recompile(ctx, ids, nid);
            log_info("meshd", "config version %lld compiled for %zu connected identities",
                     (long long)l->cfg_version, nid);
        }
        free(ids);
    }
    if (calls) {
        refresh_streams(ctx, calls, n, dirty, l->full_scan, still_dirty, seen_ms);
        l->full_scan = 0;
        now_ms = md_now_ms();
        if (now_ms - l->last_rotation_ms >= 1000 || md_map_count(dirty) > 0) {
            rotation_pass(ctx, calls, n);
            l->last_rotation_ms = now_ms;
        }
        md_registry_release(calls, n);
    }
    serving_cert_pass(ctx, l);
    memory_pass(ctx, l);
    md_map_free(dirty, NULL);
    /* Identities whose streams were not ready yet are looked at next pass. */
    md_map_free(l->deferred, NULL);
    l->deferred = still_dirty;
}

static void *watch_main(void *arg)
{
    md_ctx *ctx = arg;
    md_watch *w = &ctx->watch;
    watch_local *l = w->local;
    for (;;) {
        /* With notifications the poll is only the safety net; without
         * them (none on this system, or the listener is reconnecting) the
         * watcher polls at least every MD_POLL_FALLBACK_MS. It wakes at
         * least every WATCH_TICK_MS for the timed passes. */
        int64_t now_ms = md_now_ms();
        if (l->next_poll_ms > now_ms + poll_interval_ms(ctx))
            l->next_poll_ms = now_ms + poll_interval_ms(ctx); /* notifications just broke */
        int64_t wait_ms = l->next_poll_ms - now_ms;
        if (wait_ms > WATCH_TICK_MS)
            wait_ms = WATCH_TICK_MS;
        if (wait_ms < 1)
            wait_ms = 1;
        pthread_mutex_lock(&w->mu);
        /* While the store is unreadable, in-process notifications wait for
         * the next poll too (a pass could do nothing with them). */
        if (!w->stop && !w->poked && (l->store_down || md_map_count(w->dirty) == 0)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = ts.tv_nsec + wait_ms * 1000000LL;
            ts.tv_sec += (time_t)(ns / 1000000000LL);
            ts.tv_nsec = (long)(ns % 1000000000LL);
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        }
        int stop = w->stop;
        int poked = w->poked;
        int in_process = md_map_count(w->dirty) > 0;
        w->poked = 0;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        int look = poked || in_process || md_now_ms() >= l->next_poll_ms;
        watch_pass(ctx, l, 0, poked, look);
    }
    return NULL;
}

int md_watch_start(md_ctx *ctx, mesh_err *err)
{
    md_watch *w = &ctx->watch;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int ok = pthread_mutex_init(&w->mu, NULL) == 0 && pthread_cond_init(&w->cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok)
        return mesh_err_set(err, MESH_EINTERNAL, "cannot initialise the watcher");
    w->dirty = md_map_new(1024);
    w->rotating = md_map_new(4096);
    w->rot_backoff = md_map_new(1024);
    watch_local *l = calloc(1, sizeof *l);
    if (!w->dirty || !w->rotating || !w->rot_backoff || !l) {
        free(l);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    l->cfg_version = -1;
    l->cfg_failed_version = -1;
    w->local = l;
    int rc = store_open(&w->st, ctx->opts.db_path, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "opening the store for the watcher");
    /* Synchronous first pass: config, CA list and bundle are in place
     * before the first client can connect. */
    watch_pass(ctx, l, 1, 0, 1);
    if (!ctx->cache.bundle)
        return mesh_err_set(err, MESH_EINTERNAL, "could not load the trust bundle at startup");
    if (pthread_create(&w->th, NULL, watch_main, ctx) != 0)
        return mesh_err_set(err, MESH_EINTERNAL, "cannot start the watcher thread");
    w->started = 1;
    /* After the first pass: what was committed before it is in its view. */
    rc = md_notify_start(ctx, err);
    if (rc != MESH_OK)
        return rc;
    return MESH_OK;
}

static void free_ptr(void *p)
{
    free(p);
}

void md_watch_stop(md_ctx *ctx)
{
    md_watch *w = &ctx->watch;
    md_notify_stop(ctx);
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
        w->started = 0;
    }
    watch_local *l = w->local;
    if (l) {
        free(l->ca_fp);
        ca_free(l->ca);
        md_health_tracker_free(&l->health);
        md_map_free(l->deferred, NULL);
        free(l);
        w->local = NULL;
    }
    pthread_mutex_lock(&w->mu);
    md_map_free(w->dirty, NULL);
    md_map_free(w->rotating, NULL);
    md_map_free(w->rot_backoff, free_ptr);
    w->dirty = w->rotating = w->rot_backoff = NULL;
    pthread_mutex_unlock(&w->mu);
    store_close(w->st);
    w->st = NULL;
}
