/* sidecar/xds_client.c — the control-plane client thread: its loop, the ADS stream
 * and the client's lifecycle (see xds_client.h; identity is xds_identity.c). */
#include "sidecar/xds_client.h"

#include <grpc/grpc.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mgrpc.h"
#include "sidecar/xds_client_internal.h"
#include "sidecar/xds_grpc.h"

/* How often the loop looks at the stop flag and the pool when nothing else
 * is due. */
#define TICK_MS 200
#define DRAIN_MS 5000

/* ---- small helpers ---------------------------------------------------------------------- */

void xdsc_client_set_error(xdsc_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&c->mu);
    vsnprintf(c->status.last_error, sizeof c->status.last_error, fmt, ap);
    pthread_mutex_unlock(&c->mu);
    va_end(ap);
}

void xdsc_wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* ---- engine hooks -------------------------------------------------------------------- */

static int apply_hook(void *ctx, dp_config *cfg, mesh_err *err)
{
    xdsc_client *c = ctx;
    return c->hooks.apply ? c->hooks.apply(c->hooks.ctx, cfg, err) : MESH_OK;
}

static void copy_status_types(xdsc_client *c)
{
    pthread_mutex_lock(&c->mu);
    for (int t = 0; t < XDSC_TYPE_COUNT; t++) {
        const xdsc_type_state *ts = &c->eng.sotw.t[t];
        c->status.accepted[t] = ts->n_accepted;
        c->status.rejected[t] = ts->n_rejected;
        snprintf(c->status.version[t], sizeof c->status.version[t], "%s",
                 ts->version ? ts->version : "");
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---- replicas ---------------------------------------------------------------------------- */

const char *xdsc_client_check_target(const xdsc_client *c)
{
    return c->ads_target[0] ? c->ads_target : xdsc_targets_at(&c->targets, &c->ads_rot);
}

/* A whole round of replicas failed: look the names up again (a DNS name's
 * addresses may have changed) before the backoff's wait. */
static void round_over(xdsc_client *c)
{
    mesh_err err;
    char before[XDSC_TARGET_LEN];
    snprintf(before, sizeof before, "%s", xdsc_targets_at(&c->targets, &c->ads_rot));
    if (xdsc_targets_resolve(&c->targets, &err) != MESH_OK || err.msg[0])
        log_debug("xds", "resolving the meshd addresses: %s", err.msg);
    xdsc_rotor_move_to(&c->ads_rot, &c->targets, before);
}

/* The ADS attempt at ads_target failed (or its stream broke): the next replica at
 * once, or a backoff when every one failed in this round. */
static int64_t ads_next_delay(xdsc_client *c)
{
    if (!xdsc_rotor_failed(&c->ads_rot, c->targets.n))
        return 0;
    round_over(c);
    return xdsc_backoff_next(&c->ads_bo);
}

int64_t xdsc_id_next_delay(xdsc_client *c)
{
    if (!xdsc_rotor_failed(&c->csr_rot, c->targets.n))
        return 0;
    return xdsc_backoff_next(&c->csr_bo);
}

/* While a wait longer than the probe interval is pending, a TCP probe finding a
 * replica back (after finding all down) shortens the wait to a jittered second. */
static void probe_step(xdsc_client *c, int64_t now_ms)
{
    bool ads_waiting = !c->ads_active && c->ads_next_ms - now_ms > XDSC_PROBE_EVERY_MS;
    bool csr_waiting = !c->csr_active && c->csr_failures > 0 &&
                       c->csr_next_ms - now_ms > XDSC_PROBE_EVERY_MS;
    if (!ads_waiting && !csr_waiting)
        return;
    int i = xdsc_probe_step(&c->probe, &c->targets, now_ms);
    if (i < 0)
        return;
    const char *addr = c->targets.addr[i];
    /* Jitter spreads a fleet that saw the same replica come back. */
    int64_t d = xdsc_backoff_uniform(&c->ads_bo, 0, XDSC_PROBE_WAIT_MS);
    if (ads_waiting) {
        log_info("xds", "meshd %s accepts connections again: reconnecting in %lld ms instead "
                 "of %lld ms", addr, (long long)d, (long long)(c->ads_next_ms - now_ms));
        xdsc_rotor_move_to(&c->ads_rot, &c->targets, addr);
        c->ads_next_ms = now_ms + d;
    }
    if (csr_waiting) {
        xdsc_rotor_move_to(&c->csr_rot, &c->targets, addr);
        c->csr_next_ms = now_ms + d;
    }
}

/* ---- ADS -------------------------------------------------------------------------------- */

static void ads_pump(xdsc_client *c)
{
    if (!c->ads_active || c->ads.closed || c->ads.send_busy)
        return;
    enum xdsc_type t;
    if (!xdsc_sotw_next_pending(&c->eng.sotw, &t))
        return;
    Envoy__Service__Discovery__V3__DiscoveryRequest req;
    Google__Rpc__Status st;
    xdsc_sotw_build_request(&c->eng.sotw, t, &c->node, &req, &st);
    size_t len = envoy__service__discovery__v3__discovery_request__get_packed_size(&req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        c->eng.sotw.t[t].pending = true;
        return;
    }
    envoy__service__discovery__v3__discovery_request__pack(&req, buf);
    log_debug("xds", "-> %s version '%s' nonce '%s' names %zu%s", xdsc_type_short(t),
              req.version_info, req.response_nonce, req.n_resource_names,
              req.error_detail ? " NACK" : "");
    mesh_err err;
    if (xdsc_ads_send(&c->ads, buf, len, &err) != MESH_OK) {
        /* The stream is going away; the next one re-sends everything. */
        c->eng.sotw.t[t].pending = true;
    }
}

static void ads_connect(xdsc_client *c, int64_t now_ms, int64_t now)
{
    cert_pool_info info;
    cert_pool_get_info(c->pool, now, &info);
    if (!info.current.present || info.current.not_after <= now || info.current.revoked ||
        strcmp(info.current.serial_hex, c->revoked_serial) == 0)
        return;     /* no mTLS without a valid SVID: identity_step is on it */
    char *roots = NULL, *key = NULL, *chain = NULL;
    mesh_err err;
    int rc = cert_pool_export_bundle(c->pool, &roots, &err);
    if (rc == MESH_OK)
        rc = cert_pool_export_identity(c->pool, &key, &chain, &err);
    grpc_channel *ch = NULL;
    snprintf(c->ads_target, sizeof c->ads_target, "%s",
             xdsc_targets_at(&c->targets, &c->ads_rot));
    if (rc == MESH_OK) {
        ch = xdsc_channel_create(c->ads_target, c->server_name, roots, key, chain, &err);
        rc = ch ? MESH_OK : err.code;
    }
    xdsc_wipe_free(key);
    free(chain);
    free(roots);
    if (rc == MESH_OK)
        rc = xdsc_ads_start(&c->ads, c->cq, ch, &err);
    if (rc != MESH_OK) {
        c->ads_active = c->ads.call != NULL;   /* a half-started call still drains */
        int64_t d = ads_next_delay(c);
        c->ads_next_ms = now_ms + d;
        log_warn("xds", "cannot open the ADS stream to %s: %s; trying %s in %lld ms",
                 c->ads_target, err.msg, xdsc_targets_at(&c->targets, &c->ads_rot),
                 (long long)d);
        xdsc_client_set_error(c, "ADS: %s", err.msg);
        return;
    }
    c->ads_active = true;
    c->ads_connected = false;
    c->ads_planned_close = false;
    snprintf(c->ads_serial, sizeof c->ads_serial, "%s", info.current.serial_hex);
    xdsc_sotw_stream_start(&c->eng.sotw);
    pthread_mutex_lock(&c->mu);
    c->status.streams++;
    pthread_mutex_unlock(&c->mu);
    log_debug("xds", "ADS stream to %s opened with SVID serial %s", c->ads_target,
              c->ads_serial);
    ads_pump(c);
}

static void ads_on_message(xdsc_client *c, uint8_t *msg, size_t len, int64_t now_ms)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, msg);
    free(msg);
    if (!r) {
        log_warn("xds", "meshd sent a DiscoveryResponse that does not decode; reconnecting");
        xdsc_client_set_error(c, "ADS: undecodable response");
        xdsc_ads_cancel(&c->ads);
        return;
    }
    if (!c->ads_connected) {
        c->ads_connected = true;
        c->trust_error[0] = '\0';
        xdsc_backoff_reset(&c->ads_bo);
        xdsc_rotor_ok(&c->ads_rot);
        xdsc_probe_stop(&c->probe);
        /* CA calls follow the stream to the replica known to answer, unless
         * they are in the middle of a round of their own. */
        if (!c->csr_active && c->csr_rot.failed == 0)
            xdsc_rotor_move_to(&c->csr_rot, &c->targets, c->ads_target);
        if (c->ads_failures)
            log_info("xds", "connected to meshd %s (ADS) after %llu failed attempt(s)",
                     c->ads_target, (unsigned long long)c->ads_failures);
        else
            log_info("xds", "connected to meshd %s (ADS)", c->ads_target);
        c->ads_failures = 0;
        pthread_mutex_lock(&c->mu);
        c->status.connected = true;
        if (c->status.server[0] && strcmp(c->status.server, c->ads_target) != 0)
            c->status.failovers++;
        snprintf(c->status.server, sizeof c->status.server, "%s", c->ads_target);
        pthread_mutex_unlock(&c->mu);
        if (c->hooks.connected)
            c->hooks.connected(c->hooks.ctx, true, c->ads_target);
    }
    enum xdsc_type t;
    bool known = xdsc_type_from_url(r->type_url, &t) == 0;
    bool accepted = false;
    mesh_err err;
    int rc = xdsc_engine_on_response(&c->eng, r, xdsc_now_unix(), now_ms, &accepted, &err);
    if (rc != MESH_OK) {
        log_error("xds", "processing a %s response failed: %s; reconnecting",
                  known ? xdsc_type_short(t) : "?", err.msg);
        xdsc_ads_cancel(&c->ads);
    } else if (known) {
        const xdsc_type_state *ts = &c->eng.sotw.t[t];
        if (accepted && c->hooks.accepted)
            c->hooks.accepted(c->hooks.ctx, t, ts->version ? ts->version : "");
        if (!accepted) {
            if (c->hooks.rejected)
                c->hooks.rejected(c->hooks.ctx, t, r->version_info, ts->last_error);
            xdsc_client_set_error(c, "%s NACK: %s", xdsc_type_short(t), ts->last_error);
        }
        copy_status_types(c);
    }
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    ads_pump(c);
}

static void ads_on_closed(xdsc_client *c, int64_t now_ms)
{
    char d[400];
    xdsc_status_text(c->ads.details, d, sizeof d);
    bool was_connected = c->ads_connected;
    c->ads_connected = false;
    pthread_mutex_lock(&c->mu);
    c->status.connected = false;
    pthread_mutex_unlock(&c->mu);
    if (was_connected && c->hooks.connected)
        c->hooks.connected(c->hooks.ctx, false, c->ads_target);
    if (c->ads_planned_close) {
        log_info("xds", "re-opening the ADS stream with the new SVID");
        c->ads_next_ms = now_ms;
        return;
    }
    /* meshd refuses a revoked SVID for good: re-keying (or a token) is the
     * way on, not reconnecting with the same certificate. */
    if (c->ads.status == GRPC_STATUS_PERMISSION_DENIED && strstr(d, "revoked"))
        xdsc_id_on_revoked(c, c->ads_serial, d);
    char failed[XDSC_TARGET_LEN];
    snprintf(failed, sizeof failed, "%s", c->ads_target);
    if (was_connected)
        xdsc_rotor_ok(&c->ads_rot);     /* a new round, starting with the next replica */
    int64_t delay = ads_next_delay(c);
    c->ads_next_ms = now_ms + delay;
    if (atomic_load(&c->stop))
        return;
    int64_t now = xdsc_now_unix();
    const char *next = xdsc_targets_at(&c->targets, &c->ads_rot);
    if (was_connected) {
        c->ads_failures = 0;
        c->ads_last_fail_log = now;
        log_warn("xds", "ADS stream to meshd %s ended: %s %s; serving the last good config, "
                 "reconnecting to %s in %lld ms", failed, mgrpc_status_name(c->ads.status), d,
                 next, (long long)delay);
    } else {
        /* During an outage: the first failure, then one line a minute. When
         * meshd answers but its chain does not verify, say why instead of
         * gRPC's bare "certificate verify failed". */
        c->ads_failures++;
        if (c->ads_failures == 1 || now - c->ads_last_fail_log >= 60) {
            c->ads_last_fail_log = now;
            bool explained = c->ads.status == GRPC_STATUS_UNAVAILABLE && xdsc_id_check_meshd(c, now);
            log_msg(explained ? LOG_DEBUG : LOG_WARN, "xds",
                    "cannot reach meshd %s (%llu attempt(s)): %s %s; serving the last "
                    "good config, trying %s in %lld ms", failed,
                    (unsigned long long)c->ads_failures, mgrpc_status_name(c->ads.status), d,
                    next, (long long)delay);
        } else {
            log_debug("xds", "meshd %s still unreachable: %s; trying %s in %lld ms", failed,
                      mgrpc_status_name(c->ads.status), next, (long long)delay);
        }
    }
    if (c->trust_error[0] && !was_connected)
        xdsc_client_set_error(c, "ADS: %s", c->trust_error);
    else
        xdsc_client_set_error(c, "ADS: %s %s", mgrpc_status_name(c->ads.status), d);
}

static void ads_step(xdsc_client *c, int64_t now_ms, int64_t now)
{
    if (c->ads_active) {
        if (c->ads.closed)
            return;
        /* Re-open with the current SVID once nothing is in flight. */
        enum xdsc_type t;
        if (c->cur_serial[0] && strcmp(c->cur_serial, c->ads_serial) != 0 &&
            !c->ads_planned_close && !c->ads.send_busy &&
            !xdsc_sotw_next_pending(&c->eng.sotw, &t)) {
            c->ads_planned_close = true;
            xdsc_ads_cancel(&c->ads);
            return;
        }
        ads_pump(c);
        return;
    }
    if (now_ms >= c->ads_next_ms)
        ads_connect(c, now_ms, now);
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void dispatch(xdsc_client *c, const xdsc_tag *tag, bool ok, int64_t now_ms)
{
    if (tag->kind == XDSC_TAG_CSR) {
        xdsc_id_on_csr_done(c, ok, now_ms);
        return;
    }
    uint8_t *msg;
    size_t len;
    enum xdsc_ads_event ev = xdsc_ads_on_tag(&c->ads, tag, ok, &msg, &len);
    switch (ev) {
    case XDSC_ADS_EV_MESSAGE: ads_on_message(c, msg, len, now_ms); break;
    case XDSC_ADS_EV_SENT: ads_pump(c); break;
    case XDSC_ADS_EV_CLOSED: ads_on_closed(c, now_ms); break;
    default: break;
    }
    if (c->ads.closed && xdsc_ads_done(&c->ads)) {
        xdsc_ads_destroy(&c->ads);
        c->ads_active = false;
    }
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static void *client_main(void *arg)
{
    xdsc_client *c = arg;
    while (!atomic_load(&c->stop)) {
        int64_t now_ms = xdsc_now_ms(), now = xdsc_now_unix();
        xdsc_id_watch_pool(c, now);
        xdsc_id_step(c, now_ms, now);
        ads_step(c, now_ms, now);
        probe_step(c, now_ms);
        int64_t wait = TICK_MS;
        int64_t w = xdsc_engine_poll(&c->eng, now_ms);
        if (w >= 0)
            wait = min64(wait, w);
        if (c->eng.publish_failed)
            xdsc_client_set_error(c, "data plane: %s", c->eng.last_error);
        /* Only future retry times matter: a past one was acted on (or found
         * nothing to do) by the steps above, and waking for it would spin. */
        if (!c->ads_active && c->ads_next_ms > now_ms)
            wait = min64(wait, c->ads_next_ms - now_ms);
        if (!c->csr_active && c->csr_next_ms > now_ms)
            wait = min64(wait, c->csr_next_ms - now_ms);
        if (wait < 0)
            wait = 0;
        grpc_event ev = grpc_completion_queue_next(c->cq, xdsc_deadline_ms(wait), NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            dispatch(c, ev.tag, ev.success != 0, xdsc_now_ms());
    }
    /* Graceful end: cancel what is in flight and drain its completions. */
    if (c->ads_active)
        xdsc_ads_cancel(&c->ads);
    if (c->csr_active)
        xdsc_csr_cancel(&c->csr);
    int64_t until = xdsc_now_ms() + DRAIN_MS;
    while ((c->ads_active || c->csr_active) && xdsc_now_ms() < until) {
        grpc_event ev = grpc_completion_queue_next(c->cq, xdsc_deadline_ms(100), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        const xdsc_tag *tag = ev.tag;
        if (tag->kind == XDSC_TAG_CSR) {
            xdsc_csr_destroy(&c->csr);
            c->csr_active = false;
            continue;
        }
        uint8_t *msg;
        size_t len;
        if (xdsc_ads_on_tag(&c->ads, tag, ev.success != 0, &msg, &len) == XDSC_ADS_EV_MESSAGE)
            free(msg);
        if (c->ads.closed && xdsc_ads_done(&c->ads)) {
            xdsc_ads_destroy(&c->ads);
            c->ads_active = false;
        }
    }
    if (c->ads_active || c->csr_active)
        log_warn("xds", "gRPC calls did not drain within %d ms", DRAIN_MS);
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void client_free(xdsc_client *c)
{
    if (!c)
        return;
    if (c->cq) {
        if (c->ads_active && xdsc_ads_done(&c->ads))
            xdsc_ads_destroy(&c->ads);
        grpc_completion_queue_shutdown(c->cq);
        while (grpc_completion_queue_next(c->cq, xdsc_deadline_ms(1000), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(c->cq);
    }
    xdsc_engine_free(&c->eng);
    xdsc_probe_stop(&c->probe);
    free(c->meshd);
    free(c->server_name);
    free(c->state_dir);
    free(c->spiffe_id);
    free(c->node_id);
    free(c->token_file);
    xdsc_wipe_free(c->token);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static char *dup_opt(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

int xdsc_client_start(const xdsc_client_opts *o, xdsc_client **out, mesh_err *err)
{
    *out = NULL;
    if (!o->meshd || !o->state_dir || !o->pool)
        return mesh_err_set(err, MESH_EINVAL, "xDS client: meshd address, state directory and "
                            "cert pool are required");
    xdsc_client *c = calloc(1, sizeof *c);
    if (!c)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    bool ok = true;
    c->meshd = dup_opt(o->meshd, &ok);
    c->server_name = dup_opt(o->server_name ? o->server_name : XDSC_DEFAULT_SERVER_NAME, &ok);
    c->state_dir = dup_opt(o->state_dir, &ok);
    c->spiffe_id = dup_opt(o->spiffe_id, &ok);
    c->node_id = dup_opt(o->node_id ? o->node_id : o->spiffe_id, &ok);
    c->token_file = dup_opt(o->token_file, &ok);
    c->token = dup_opt(o->token, &ok);
    c->pool = o->pool;
    c->hooks = o->hooks;
    c->reenrol = o->reenrol && (o->token || o->token_file);
    atomic_init(&c->stop, false);
    if (!ok) {
        client_free(c);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    int n = snprintf(c->pool_path, sizeof c->pool_path, "%s/%s", o->state_dir, XDSC_POOL_FILE);
    if (n < 0 || (size_t)n >= sizeof c->pool_path) {
        client_free(c);
        return mesh_err_set(err, MESH_EINVAL, "state directory path is too long");
    }
    c->targets.resolve = o->resolve;
    c->targets.resolve_ctx = o->resolve_ctx;
    xdsc_probe_init(&c->probe);
    if (xdsc_targets_parse(&c->targets, o->meshd, err) != MESH_OK) {
        client_free(c);
        return err->code;
    }
    mesh_err rerr;
    if (xdsc_targets_resolve(&c->targets, &rerr) != MESH_OK || rerr.msg[0])
        log_warn("xds", "%s; trying it as written", rerr.msg);
    xdsc_backoff_init(&c->ads_bo, o->backoff_min_ms ? o->backoff_min_ms : XDSC_BACKOFF_MIN_MS,
                      o->backoff_max_ms ? o->backoff_max_ms : XDSC_BACKOFF_MAX_MS, 0);
    xdsc_backoff_init(&c->csr_bo, o->backoff_min_ms ? o->backoff_min_ms : XDSC_BACKOFF_MIN_MS,
                      o->backoff_max_ms ? o->backoff_max_ms : XDSC_BACKOFF_MAX_MS, 0);
    int rc = xdsc_engine_init(&c->eng, c->pool, c->state_dir, apply_hook, c, err);
    if (rc != MESH_OK) {
        client_free(c);
        return rc;
    }
    if (o->warm_timeout_ms > 0)
        c->eng.warm_timeout_ms = o->warm_timeout_ms;
    envoy__config__core__v3__node__init(&c->node);
    c->node.id = c->node_id ? c->node_id : "";
    c->node.user_agent_name = "mesh-sidecar";
    c->node.user_agent_version_type_case =
        ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE_USER_AGENT_VERSION;
    c->node.user_agent_version = "1";

    /* Serve the persisted snapshot before meshd answers (or if it never does). */
    int restored = 0;
    rc = xdsc_engine_restore(&c->eng, xdsc_now_ms(), &restored, err);
    if (rc != MESH_OK) {
        client_free(c);
        return rc;
    }
    for (int t = 0; t < XDSC_TYPE_COUNT; t++) {
        const xdsc_type_state *ts = &c->eng.sotw.t[t];
        if (ts->version && c->hooks.accepted)
            c->hooks.accepted(c->hooks.ctx, (enum xdsc_type)t, ts->version);
    }
    copy_status_types(c);
    c->cq = grpc_completion_queue_create_for_next(NULL);
    if (!c->cq) {
        client_free(c);
        return mesh_err_set(err, MESH_EINTERNAL, "cannot create a gRPC completion queue");
    }
    if (pthread_create(&c->th, NULL, client_main, c) != 0) {
        client_free(c);
        return mesh_err_set(err, MESH_EINTERNAL, "cannot start the xDS client thread");
    }
    c->th_started = true;
    *out = c;
    return MESH_OK;
}

void xdsc_client_stop(xdsc_client *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, true);
    if (c->th_started)
        pthread_join(c->th, NULL);
    client_free(c);
}

void xdsc_client_get_status(xdsc_client *c, xdsc_client_status *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->status;
    pthread_mutex_unlock(&c->mu);
}
