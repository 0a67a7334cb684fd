/* tests/unit/test_meshd_watcher.c — the watcher end to end (meshd/meshd_watch.c): a real
 * store changed the way meshctl and other meshd replicas change it, the watcher thread
 * polling it, and connected sidecars (calls from test_meshd_util.h, their first view
 * built by a worker, every response ACKed). What each sidecar is pushed — and that the
 * others get nothing — is read from its call's queue. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca_revoke.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "meshd/meshd_internal.h"
#include "tests/unit/test_meshd_util.h"
#include "tests/unit/test_sds_util.h"

#define WAIT_MS 10000 /* generous: the box is shared; the watcher polls every 10 ms */

static tsd_env env;
static md_ctx *ctx;

static void apply_yaml(const char *yaml)
{
    mesh_config cfg;
    tmd_config(yaml, &cfg);
    int changed = 0;
    mesh_err err = {0};
    cr_assert_eq(mesh_config_apply(env.st, &cfg, &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert(changed);
    mesh_config_free(&cfg);
}

/* meshd's --svid-ttl for the next setup (0 = the default), which its own
 * serving cert gets too. */
static int64_t setup_svid_ttl;

static void setup(void)
{
    grpc_init();
    tsd_setup(&env);
    apply_yaml(TMD_MESH_YAML);
    ctx = tmd_ctx_new(env.db);
    ctx->opts.poll_ms = 10;
    ctx->opts.debounce_ms = 10;
    if (setup_svid_ttl)
        ctx->opts.svid_ttl = setup_svid_ttl;
    mesh_err err = {0};
    cr_assert_eq(md_watch_start(ctx, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(atomic_load(&ctx->cache.cfg_gen), 1, "the first pass loaded the config");
}

static void teardown(void)
{
    md_watch_stop(ctx);
    pthread_mutex_lock(&ctx->work.mu); /* rotations it may have queued (no workers) */
    md_job *j;
    while ((j = md_workq_pop_locked(&ctx->work)) != NULL)
        md_job_free(j);
    pthread_mutex_unlock(&ctx->work.mu);
    tmd_ctx_free(ctx);
    tsd_teardown(&env);
    grpc_shutdown();
}

TestSuite(meshd_watcher, .init = setup, .fini = teardown, .timeout = 60);

typedef struct sidecar {
    md_call *c;
    EVP_PKEY *key;
    char serial[48];
    size_t acked;
} sidecar;

static void subscribe(md_call *c, enum ads_type t, const char *version, const char *nonce,
                      const char *const *names, size_t n, enum ads_req_kind want)
{
    ads_request r = {.type_url = ads_type_url(t), .version_info = version,
                     .response_nonce = nonce, .names = names, .n_names = n};
    ads_req_result res;
    mesh_err err = {0};
    cr_assert_eq(ads_state_on_request(&c->stream->st, &r, &res, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(res.kind, want, "%s: %s", ads_type_name(t), ads_req_kind_name(res.kind));
}

static const char *const secret_names[] = {"ROOTCA", "default"};

/* ACKs every response queued since the last call, as a sidecar does. */
static void ack_all(sidecar *sc)
{
    md_call *c = sc->c;
    pthread_mutex_lock(&c->mu);
    size_t n = tmd_queued(c);
    for (; sc->acked < n; sc->acked++) {
        Envoy__Service__Discovery__V3__DiscoveryResponse *r = tmd_response_at(c, sc->acked);
        enum ads_type t;
        cr_assert_eq(ads_type_parse(r->type_url, &t), 0);
        int sds = t == ADS_T_SDS;
        subscribe(c, t, r->version_info, r->nonce, sds ? secret_names : NULL, sds ? 2 : 0,
                  ADS_REQ_ACK);
        envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    }
    pthread_mutex_unlock(&c->mu);
}

static void connect(sidecar *sc, const char *id)
{
    memset(sc, 0, sizeof *sc);
    md_call *c = sc->c = tmd_call_new(ctx, MD_CALL_ADS, id);
    tmd_connect_with_svid(&env, c, 3600, sc->serial, &sc->key);
    md_stream *s = tmd_stream_new(c);
    snprintf(s->presented_serial, sizeof s->presented_serial, "%s", sc->serial);
    subscribe(c, ADS_T_LDS, "", "", NULL, 0, ADS_REQ_SUBSCRIBE);
    subscribe(c, ADS_T_SDS, "", "", secret_names, 2, ADS_REQ_SUBSCRIBE);
    md_registry_add(ctx, c);
    md_job *j = calloc(1, sizeof *j);
    j->kind = MD_JOB_STREAM_INIT;
    md_call_ref(c);
    j->call = c;
    tmd_run_job(ctx, &env, md_job_stream_init, j);
    ack_all(sc);
    cr_assert_eq(sc->acked, 2, "first view: SDS and LDS");
}

static void disconnect(sidecar *sc)
{
    md_registry_remove(ctx, sc->c);
    EVP_PKEY_free(sc->key);
}

/* Frees the calls once the watcher (which may hold references) is stopped. */
static void free_sidecars(sidecar *list, size_t n)
{
    md_watch_stop(ctx);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(tmd_refs(list[i].c), 1, "a reference leaked");
        tmd_call_free(list[i].c);
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until cond(sc) holds (checked under the call's mutex). */
static int wait_until(sidecar *sc, int (*cond)(sidecar *))
{
    for (long waited = 0; waited < WAIT_MS; waited += 5) {
        pthread_mutex_lock(&sc->c->mu);
        int ok = cond(sc);
        pthread_mutex_unlock(&sc->c->mu);
        if (ok)
            return 1;
        sleep_ms(5);
    }
    return 0;
}

/* Waits until the cache holds config generation gen. */
static int wait_for_generation(uint64_t gen)
{
    for (long waited = 0; waited < WAIT_MS; waited += 5) {
        if (atomic_load(&ctx->cache.cfg_gen) >= gen)
            return 1;
        sleep_ms(5);
    }
    return 0;
}

static int has_new_item(sidecar *sc)
{
    return tmd_queued(sc->c) > sc->acked;
}

static int is_at_current_config(sidecar *sc)
{
    return sc->c->stream->cfg_gen == atomic_load(&ctx->cache.cfg_gen);
}

static int is_finishing(sidecar *sc)
{
    return sc->c->finishing;
}

static Envoy__Service__Discovery__V3__DiscoveryResponse *newest(sidecar *sc)
{
    pthread_mutex_lock(&sc->c->mu);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        tmd_response_at(sc->c, tmd_queued(sc->c) - 1);
    pthread_mutex_unlock(&sc->c->mu);
    return r;
}

static size_t queued(sidecar *sc)
{
    pthread_mutex_lock(&sc->c->mu);
    size_t n = tmd_queued(sc->c);
    pthread_mutex_unlock(&sc->c->mu);
    return n;
}

/* web's outbound listener moves: web gets a new LDS, api (whose view did not
 * change) is recompiled but gets nothing. */
Test(meshd_watcher, config_change_pushes_only_what_changed)
{
    sidecar sc[2];
    connect(&sc[0], TSD_WEB);
    connect(&sc[1], TSD_API);
    char *yaml = strdup(TMD_MESH_YAML);
    char *p = strstr(yaml, "outbound: 127.0.0.1:15101");
    cr_assert_not_null(p);
    memcpy(p, "outbound: 127.0.0.1:15111", 25);
    apply_yaml(yaml);
    free(yaml);
    cr_assert(wait_until(&sc[0], has_new_item), "web was not pushed its new listener");
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = newest(&sc[0]);
    cr_assert_str_eq(r->type_url, XDS_TYPE_URL_LISTENER);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    cr_assert_eq(queued(&sc[0]), 3, "one push: LDS only");
    cr_assert(wait_until(&sc[1], is_at_current_config), "api was not recompiled");
    cr_assert_eq(queued(&sc[1]), 2, "api's view did not change: nothing pushed");
    disconnect(&sc[0]);
    disconnect(&sc[1]);
    free_sidecars(sc, 2);
}

/* A config that no longer compiles for web (its service is gone behind the config
 * layer's back): web keeps its last good snapshot and is pushed nothing. */
Test(meshd_watcher, config_that_fails_to_compile_keeps_the_last_good_view)
{
    sidecar sc;
    connect(&sc, TSD_WEB);
    md_snap *held = sc.c->stream->snap;
    mesh_err err = {0};
    cr_assert_eq(store_resource_delete(env.st, "service", "web", &err), MESH_OK, "%s", err.msg);
    cr_assert(wait_for_generation(2), "the new config was not loaded");
    cr_assert(wait_until(&sc, is_at_current_config), "the stream was not refreshed");
    pthread_mutex_lock(&sc.c->mu);
    cr_assert_eq(sc.c->stream->snap, held, "web keeps its last good snapshot");
    cr_assert_eq(sc.c->stream->snap->gen, 1);
    pthread_mutex_unlock(&sc.c->mu);
    cr_assert_eq(queued(&sc), 2, "and is pushed nothing");
    disconnect(&sc);
    free_sidecars(&sc, 1);
}

/* A config the store holds but that does not load (a damaged resource) is not
 * installed at all; once repaired it is. */
Test(meshd_watcher, config_that_fails_to_load_is_not_installed)
{
    sidecar sc;
    connect(&sc, TSD_WEB);
    int changed = 0;
    mesh_err err = {0};
    cr_assert_eq(store_resource_put(env.st, "route", "broken", "name: [unterminated",
                                    "mesh.yaml:40", &changed, &err),
                 MESH_OK, "%s", err.msg);
    sleep_ms(300); /* 30 polls: nothing may happen, so wait a while */
    cr_assert_eq(atomic_load(&ctx->cache.cfg_gen), 1, "the last good config stays");
    cr_assert_eq(queued(&sc), 2);
    cr_assert_eq(store_resource_delete(env.st, "route", "broken", &err), MESH_OK, "%s", err.msg);
    cr_assert(wait_for_generation(2), "the repaired config was not loaded");
    cr_assert(wait_until(&sc, is_at_current_config), "the stream was not refreshed");
    cr_assert_eq(queued(&sc), 2, "the same view as before: nothing to push");
    disconnect(&sc);
    free_sidecars(&sc, 1);
}

/* A renewal issued elsewhere (another replica, a worker) for web's key reaches
 * web as a new default secret; api is not even looked up. */
Test(meshd_watcher, renewed_svid_reaches_its_sidecar_only)
{
    sidecar sc[2];
    connect(&sc[0], TSD_WEB);
    connect(&sc[1], TSD_API);
    char renewed[48];
    free(tsd_issue(&env, sc[0].key, TSD_WEB, 7200, renewed, NULL));
    cr_assert(wait_until(&sc[0], has_new_item), "the renewal was not pushed");
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = newest(&sc[0]);
    cr_assert_str_eq(r->type_url, XDS_TYPE_URL_SECRET);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    pthread_mutex_lock(&sc[0].c->mu);
    cr_assert_str_eq(sc[0].c->stream->svid.serial_hex, renewed);
    pthread_mutex_unlock(&sc[0].c->mu);
    cr_assert_eq(queued(&sc[1]), 2);
    disconnect(&sc[0]);
    disconnect(&sc[1]);
    free_sidecars(sc, 2);
}

/* 1 when response r is SDS and its ROOTCA carries a CRL that lists serial. */
static int rootca_crl_lists(const Envoy__Service__Discovery__V3__DiscoveryResponse *r,
                            const char *serial)
{
    int found = 0;
    if (strcmp(r->type_url, XDS_TYPE_URL_SECRET) != 0)
        return 0;
    for (size_t i = 0; i < r->n_resources && !found; i++) {
        Envoy__Extensions__TransportSockets__Tls__V3__Secret *sec =
            envoy__extensions__transport_sockets__tls__v3__secret__unpack(
                NULL, r->resources[i]->value.len, r->resources[i]->value.data);
        cr_assert_not_null(sec, "an SDS resource that is not a Secret");
        if (strcmp(sec->name, "ROOTCA") == 0 && sec->validation_context &&
            sec->validation_context->crl) {
            ProtobufCBinaryData crl = sec->validation_context->crl->inline_bytes;
            char *pem = strndup((const char *)crl.data, crl.len);
            found = tmd_crl_lists(pem, serial);
            free(pem);
        }
        envoy__extensions__transport_sockets__tls__v3__secret__free_unpacked(sec, NULL);
    }
    return found;
}

static void name_node(sidecar *sc, const char *node)
{
    pthread_mutex_lock(&sc->c->mu);
    cr_assert_eq(md_stream_note_node_locked(sc->c, 1, node), 1);
    pthread_mutex_unlock(&sc->c->mu);
}

/* meshctl cert revoke --reason keyCompromise: the revoked sidecar is sent the new
 * ROOTCA (whose CRL tells it) and then PERMISSION_DENIED saying why and what it
 * needs; every other sidecar gets the CRL that makes it refuse the revoked peer. */
Test(meshd_watcher, revoked_certificate_is_on_every_rootca_and_closes_its_stream)
{
    sidecar sc[2];
    connect(&sc[0], TSD_WEB);
    connect(&sc[1], TSD_API);
    name_node(&sc[0], "web-1");
    name_node(&sc[1], "api-1");
    mesh_err err = {0};
    ca_revoke_result r;
    cr_assert_eq(ca_revoke(env.st, sc[0].serial, "keyCompromise", "meshctl", md_now(), &r, &err),
                 MESH_OK, "%s", err.msg);
    ca_revoke_result_free(&r);
    cr_assert(wait_until(&sc[0], is_finishing), "web's stream was not closed");
    pthread_mutex_lock(&sc[0].c->mu);
    size_t n = tmd_queued(sc[0].c);
    const md_out *o = tmd_queued_at(sc[0].c, n - 1);
    cr_assert(o->has_status);
    cr_assert_eq(o->code, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert_not_null(strstr(o->msg, "keyCompromise"), "%s", o->msg);
    cr_assert_not_null(strstr(o->msg, "new key"), "%s", o->msg);
    int told = 0;
    for (size_t i = sc[0].acked; i + 1 < n; i++) {
        Envoy__Service__Discovery__V3__DiscoveryResponse *resp = tmd_response_at(sc[0].c, i);
        told |= rootca_crl_lists(resp, sc[0].serial);
        envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
    }
    cr_assert(told, "the ROOTCA listing its own serial comes before the close");
    pthread_mutex_unlock(&sc[0].c->mu);

    cr_assert(wait_until(&sc[1], has_new_item), "api did not get the new CRL");
    Envoy__Service__Discovery__V3__DiscoveryResponse *resp = newest(&sc[1]);
    cr_assert(rootca_crl_lists(resp, sc[0].serial), "api's ROOTCA lists web's serial");
    envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
    pthread_mutex_lock(&sc[1].c->mu);
    cr_assert_eq(sc[1].c->finishing, 0, "api's stream stays");
    pthread_mutex_unlock(&sc[1].c->mu);
    disconnect(&sc[0]);
    disconnect(&sc[1]);
    free_sidecars(sc, 2);
}

/* ca rotate --prepare: the new root goes to every sidecar (ROOTCA) and into the
 * roots meshd's TLS verifies clients with. */
Test(meshd_watcher, new_root_reaches_every_sidecar)
{
    sidecar sc[2];
    connect(&sc[0], TSD_WEB);
    connect(&sc[1], TSD_API);
    uint64_t tls_gen = ctx->tls.gen;
    ca_init_opts o = {.trust_domain = TSD_TD, .key_dir = env.keydir};
    int64_t next = 0;
    mesh_err err = {0};
    cr_assert_eq(ca_prepare(env.st, &o, &next, &err), MESH_OK, "%s", err.msg);
    for (int i = 0; i < 2; i++) {
        cr_assert(wait_until(&sc[i], has_new_item), "sidecar %d did not get the new root", i);
        Envoy__Service__Discovery__V3__DiscoveryResponse *r = newest(&sc[i]);
        cr_assert_str_eq(r->type_url, XDS_TYPE_URL_SECRET);
        envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    }
    pthread_mutex_lock(&ctx->tls.mu);
    cr_assert_gt(ctx->tls.gen, tls_gen);
    const char *second = strstr(ctx->tls.roots_pem, "END CERTIFICATE");
    cr_assert_not_null(second);
    cr_assert_not_null(strstr(second + 1, "BEGIN CERTIFICATE"), "both roots are trusted");
    pthread_mutex_unlock(&ctx->tls.mu);
    disconnect(&sc[0]);
    disconnect(&sc[1]);
    free_sidecars(sc, 2);
}

/* CAs in the bundle (not yet removed). */
static size_t store_cas(void)
{
    store_ca *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_ca_list(env.st, &list, &n, &err), MESH_OK, "%s", err.msg);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        kept += strcmp(list[i].state, "removed") != 0;
    store_ca_free_list(list, n);
    return kept;
}

static size_t bundle_roots(void)
{
    uint64_t gen = 0;
    sds_bundle *b = md_cache_bundle(ctx, &gen);
    cr_assert_not_null(b);
    size_t n = (strlen(sds_bundle_roots(b)) + 1) / 65;
    sds_bundle_unref(b);
    return n;
}

/* After ca rotate: the retired CA stays in the bundle while a leaf it signed is
 * valid (a sidecar's, meshd's own serving cert), and meshd removes it by itself
 * a second after the last one's notAfter (not at the next once-a-minute look),
 * installing the smaller bundle. Every leaf here lives CA_MIN_SVID_TTL. */
static void short_ttl_setup(void)
{
    setup_svid_ttl = CA_MIN_SVID_TTL;
    setup();
}

TestSuite(meshd_watcher_prune, .init = short_ttl_setup, .fini = teardown, .timeout = 60);

Test(meshd_watcher_prune, retired_ca_leaves_the_bundle_after_its_last_leaf)
{
    EVP_PKEY *key = NULL;
    free(tsd_csr(TSD_WEB, &key));
    free(tsd_issue(&env, key, TSD_WEB, CA_MIN_SVID_TTL, NULL, NULL));
    EVP_PKEY_free(key);
    ca_init_opts o = {.trust_domain = TSD_TD, .key_dir = env.keydir};
    int64_t next = 0;
    mesh_err err = {0};
    cr_assert_eq(ca_prepare(env.st, &o, &next, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca_activate(env.st, next, &err), MESH_OK, "%s", err.msg);
    ca_retired *r = NULL;
    size_t n = 0;
    cr_assert_eq(ca_retired_list(env.st, time(NULL), &r, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_geq(r[0].live, 1, "web's leaf at least (and meshd's if it was issued by then)");
    int64_t last = r[0].last_not_after;
    free(r);
    while (time(NULL) < last - 1) {
        cr_assert_eq(store_cas(), 2, "pruned while a leaf of the retired CA is valid");
        sleep_ms(100);
    }
    int pruned = 0;
    for (long waited = 0; !pruned && waited < WAIT_MS; waited += 20) {
        pruned = store_cas() == 1;
        if (!pruned)
            sleep_ms(20);
    }
    cr_assert(pruned, "the retired CA was not pruned after its last leaf expired");
    cr_assert_leq(time(NULL), last + 5, "pruned at the leaf's expiry, not at the next minute");
    int one_root = 0;
    for (long waited = 0; !one_root && waited < WAIT_MS; waited += 20) {
        one_root = bundle_roots() == 1;
        if (!one_root)
            sleep_ms(20);
    }
    cr_assert(one_root, "the smaller bundle was not installed");
    cr_assert_eq(tsd_audit_count(&env, "ca.remove", 1), 1);
}

/* Change notification (meshd/meshd_notify.c): with the safety-net poll a minute
 * apart, a config committed by another connection (meshctl apply) still reaches
 * the cache within a second, because the store's inotify event wakes the watcher.
 * Before notifications the watcher saw it only at its next poll. */
static void slow_poll_setup(void)
{
    grpc_init();
    tsd_setup(&env);
    apply_yaml(TMD_MESH_YAML);
    ctx = tmd_ctx_new(env.db);
    ctx->opts.poll_ms = 60000;
    ctx->opts.debounce_ms = 10;
    mesh_err err = {0};
    cr_assert_eq(md_watch_start(ctx, &err), MESH_OK, "%s", err.msg);
}

TestSuite(meshd_watcher_notify, .init = slow_poll_setup, .fini = teardown, .timeout = 60);

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(meshd_watcher_notify, a_commit_wakes_the_watcher_without_polling)
{
    cr_assert_eq(atomic_load(&ctx->watch.notify_live), 1, "notifications are on (inotify)");
    for (int round = 0; round < 3; round++) {
        uint64_t gen = atomic_load(&ctx->cache.cfg_gen);
        char *yaml = strdup(TMD_MESH_YAML);
        char *p = strstr(yaml, "outbound: 127.0.0.1:15101");
        cr_assert_not_null(p);
        char port[8];
        snprintf(port, sizeof port, "%d", 15111 + round);
        memcpy(p + strlen("outbound: 127.0.0.1:"), port, 5);
        int64_t t0 = mono_ms();
        apply_yaml(yaml);
        free(yaml);
        int seen = 0;
        while (mono_ms() - t0 < 1000 && !(seen = atomic_load(&ctx->cache.cfg_gen) > gen))
            sleep_ms(2);
        cr_assert(seen, "round %d: the applied config was not loaded within 1 s (poll 60 s)",
                  round);
    }
}

Test(meshd_watcher_notify, without_notifications_the_fallback_poll_still_sees_it)
{
    /* The notifier gone (as when inotify is unavailable): the watcher must
     * fall back to polling every MD_POLL_FALLBACK_MS, not wait a minute. */
    md_notify_stop(ctx);
    md_watch_poke(&ctx->watch); /* let the watcher re-read its wait interval */
    sleep_ms(50);
    uint64_t gen = atomic_load(&ctx->cache.cfg_gen);
    char *yaml = strdup(TMD_MESH_YAML);
    char *p = strstr(yaml, "outbound: 127.0.0.1:15101");
    memcpy(p, "outbound: 127.0.0.1:15121", 25);
    apply_yaml(yaml);
    free(yaml);
    cr_assert(wait_for_generation(gen + 1), "the fallback poll did not see the change");
}
