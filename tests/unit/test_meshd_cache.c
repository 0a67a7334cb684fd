/* tests/unit/test_meshd_cache.c — the state shared by every stream (meshd/meshd_cache.c):
 * snapshots compiled once per identity and config generation, shared by reference and
 * kept when a newer config fails to compile; the CA list, trust bundle (with the CRLs
 * ROOTCA carries) and the generation counters the watcher and workers compare against. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_revoke.h"
#include "meshd/meshd_internal.h"
#include "meshd/meshd_proxyless.h"
#include "tests/unit/test_meshd_util.h"
#include "tests/unit/test_sds_util.h"

static md_ctx *ctx;

static void setup(void)
{
    ctx = tmd_ctx_new(NULL);
}

static void teardown(void)
{
    tmd_ctx_free(ctx);
}

TestSuite(meshd_cache, .init = setup, .fini = teardown);

static int refs(md_snap *s)
{
    return atomic_load(&s->refs);
}

/* The config with api-1's inbound port moved: web's endpoints for api change. */
static const char *changed_yaml(void)
{
    static char buf[2048];
    snprintf(buf, sizeof buf, "%s", TMD_MESH_YAML);
    char *p = strstr(buf, "inbound: 127.0.0.1:15002");
    cr_assert_not_null(p);
    memcpy(p, "inbound: 127.0.0.1:15012", 24);
    return buf;
}

/* Two workloads with web's SPIFFE ID that define its local cluster differently
 * (other app addresses): the compiler refuses web's snapshot; api's compiles. */
static const char bad_for_web_yaml[] =
    "services:\n"
    "  - name: web\n    protocol: http\n    port: 8080\n"
    "  - name: api\n    protocol: http\n    port: 8081\n"
    "workloads:\n"
    "  - name: web-1\n    spiffe_id: " TSD_WEB "\n    service: web\n"
    "    inbound: 127.0.0.1:15001\n    app: 127.0.0.1:18080\n    outbound: 127.0.0.1:15101\n"
    "  - name: web-2\n    spiffe_id: " TSD_WEB "\n    service: web\n"
    "    inbound: 127.0.0.1:15011\n    app: 127.0.0.1:18090\n    outbound: 127.0.0.1:15111\n"
    "  - name: api-1\n    spiffe_id: " TSD_API "\n    service: api\n"
    "    inbound: 127.0.0.1:15002\n    app: 127.0.0.1:18081\n";

Test(meshd_cache, no_config_no_snapshot)
{
    uint64_t gen = 99;
    cr_assert_null(md_cache_snapshot(ctx, TSD_WEB, &gen));
    cr_assert_eq(gen, 0, "generation 0 = no config");
    cr_assert_eq(atomic_load(&ctx->cache.cfg_gen), 0);
}

Test(meshd_cache, compiled_once_and_shared)
{
    tmd_cache_config(ctx, TMD_MESH_YAML, 1);
    uint64_t g1 = 0, g2 = 0;
    md_snap *a = md_cache_snapshot(ctx, TSD_WEB, &g1);
    md_snap *b = md_cache_snapshot(ctx, TSD_WEB, &g2);
    cr_assert_not_null(a);
    cr_assert_eq(a, b, "every stream of an identity shares one snapshot");
    cr_assert_eq(g1, 1);
    cr_assert_eq(g2, 1);
    cr_assert_eq(a->gen, 1);
    cr_assert_eq(refs(a), 3, "two holders + the cache");
    cr_assert_gt(a->snap.types[XDS_LDS].n, 0, "web has listeners");
    md_snap *api = md_cache_snapshot(ctx, TSD_API, &g1);
    cr_assert_neq(api, a, "identities have their own snapshots");
    md_snap_unref(a);
    md_snap_unref(b);
    md_snap_unref(api);
}

Test(meshd_cache, identity_without_workload_gets_an_empty_snapshot)
{
    tmd_cache_config(ctx, TMD_MESH_YAML, 1);
    uint64_t gen = 0;
    md_snap *s = md_cache_snapshot(ctx, "spiffe://example.org/ns/demo/sa/unknown", &gen);
    cr_assert_not_null(s, "registered but not in the config: empty, not an error");
    for (int t = 0; t < XDS_TYPE_COUNT; t++)
        cr_assert_eq(s->snap.types[t].n, 0);
    md_snap_unref(s);
}

/* A stream keeps what it holds while a newer generation replaces it. */
Test(meshd_cache, new_config_new_generation_old_snapshot_lives_on)
{
    tmd_cache_config(ctx, TMD_MESH_YAML, 1);
    uint64_t gen = 0;
    md_snap *old = md_cache_snapshot(ctx, TSD_WEB, &gen);
    char old_version[17];
    memcpy(old_version, old->snap.types[XDS_EDS].version, sizeof old_version);
    tmd_cache_config(ctx, changed_yaml(), 2);
    cr_assert_eq(atomic_load(&ctx->cache.cfg_gen), 2);
    md_snap *fresh = md_cache_snapshot(ctx, TSD_WEB, &gen);
    cr_assert_eq(gen, 2);
    cr_assert_neq(fresh, old);
    cr_assert_eq(fresh->gen, 2);
    cr_assert_str_neq(fresh->snap.types[XDS_EDS].version, old_version,
                      "api-1 moved: web's endpoints changed");
    cr_assert_eq(refs(old), 1, "the cache let go of it; the holder did not");
    cr_assert_str_eq(old->snap.types[XDS_EDS].version, old_version, "and it is intact");
    md_snap_unref(old);
    md_snap_unref(fresh);
}

Test(meshd_cache, failed_compile_keeps_the_last_good_snapshot)
{
    tmd_cache_config(ctx, TMD_MESH_YAML, 1);
    uint64_t gen = 0;
    md_snap *good = md_cache_snapshot(ctx, TSD_WEB, &gen);
    tmd_cache_config(ctx, bad_for_web_yaml, 2);
    md_snap *s = md_cache_snapshot(ctx, TSD_WEB, &gen);
    cr_assert_eq(s, good, "web keeps its last good config");
    cr_assert_eq(gen, 2, "the answer stands for generation 2");
    cr_assert_eq(s->gen, 1);
    cr_assert_eq(s->checked_gen, 2, "tried: not compiled again on every pass");
    md_snap_unref(s);
    md_snap *api = md_cache_snapshot(ctx, TSD_API, &gen);
    cr_assert_not_null(api, "the failure is web's alone");
    cr_assert_eq(api->gen, 2);
    md_snap_unref(api);
    /* The next config retries, and succeeds. */
    tmd_cache_config(ctx, changed_yaml(), 3);
    s = md_cache_snapshot(ctx, TSD_WEB, &gen);
    cr_assert_neq(s, good);
    cr_assert_eq(s->gen, 3);
    md_snap_unref(s);
    md_snap_unref(good);
}

Test(meshd_cache, failed_compile_without_a_good_one_is_null)
{
    tmd_cache_config(ctx, bad_for_web_yaml, 1);
    uint64_t gen = 0;
    cr_assert_null(md_cache_snapshot(ctx, TSD_WEB, &gen));
    cr_assert_eq(gen, 1);
}

/* The watcher recompiles the connected identities only; the others' snapshots
 * are dropped (a disconnected sidecar must not pin memory). */
Test(meshd_cache, recompile_keeps_only_connected_identities)
{
    tmd_cache_config(ctx, TMD_MESH_YAML, 1);
    uint64_t gen = 0;
    md_snap_unref(md_cache_snapshot(ctx, TSD_WEB, &gen));
    md_snap *api_held = md_cache_snapshot(ctx, TSD_API, &gen);
    tmd_cache_config(ctx, changed_yaml(), 2);
    char *ids[] = {TSD_WEB};
    md_cache_recompile(ctx, ids, 1);
    md_snap *web = md_map_get(ctx->cache.snaps, TSD_WEB);
    cr_assert_not_null(web);
    cr_assert_eq(web->gen, 2, "compiled ahead of the streams asking");
    cr_assert_null(md_map_get(ctx->cache.snaps, TSD_API), "api is not connected");
    cr_assert_eq(md_map_count(ctx->cache.snaps), 1);
    cr_assert_eq(refs(api_held), 1, "a holder keeps its own reference");
    md_snap_unref(api_held);
    md_cache_recompile(ctx, NULL, 0); /* nobody connected */
    cr_assert_eq(md_map_count(ctx->cache.snaps), 0);
}

Test(meshd_cache, proxyless_view_is_a_separate_snapshot)
{
    tmd_cache_config(ctx, TMD_MESH_YAML, 1);
    uint64_t gen = 0;
    md_snap *sidecar = md_cache_snapshot(ctx, TSD_WEB, &gen);
    md_snap *proxyless = md_cache_snapshot(ctx, MD_PROXYLESS_KEY_PREFIX TSD_WEB, &gen);
    cr_assert_not_null(proxyless);
    cr_assert_neq(proxyless, sidecar);
    cr_assert_str_neq(proxyless->snap.types[XDS_LDS].version, sidecar->snap.types[XDS_LDS].version,
                      "API listeners, not sidecar listeners");
    md_snap_unref(sidecar);
    md_snap_unref(proxyless);
}

/* ---- CA list and bundle ------------------------------------------------------------- */

static tsd_env env;

static void ca_setup(void)
{
    tsd_setup(&env);
    ctx = tmd_ctx_new(env.db);
}

static void ca_teardown(void)
{
    tmd_ctx_free(ctx);
    tsd_teardown(&env);
}

TestSuite(meshd_cache_cas, .init = ca_setup, .fini = ca_teardown);

Test(meshd_cache_cas, install_sets_active_bundle_and_generations)
{
    cr_assert_null(md_cache_cas(ctx));
    uint64_t bgen = 7;
    cr_assert_null(md_cache_bundle(ctx, &bgen));
    cr_assert_eq(bgen, 0);
    uint64_t ca_gen = atomic_load(&ctx->cache.ca_gen);
    tmd_cache_cas(ctx, env.st);
    md_cas *cas = md_cache_cas(ctx);
    cr_assert_not_null(cas);
    cr_assert_eq(cas->n, 1);
    cr_assert_eq(cas->active_id, ca_id(env.ca));
    sds_bundle *b = md_cache_bundle(ctx, &bgen);
    cr_assert_not_null(b);
    cr_assert_eq(bgen, 1);
    cr_assert_eq(atomic_load(&ctx->cache.ca_gen), ca_gen,
                 "the first CA list is not a change of active CA");
    sds_bundle_unref(b);
    md_cas_unref(cas);
}

Test(meshd_cache_cas, same_bundle_same_generation)
{
    tmd_cache_cas(ctx, env.st);
    uint64_t g1 = 0, g2 = 0;
    sds_bundle *b1 = md_cache_bundle(ctx, &g1);
    tmd_cache_cas(ctx, env.st); /* e.g. a CA's state changed, the roots did not */
    sds_bundle *b2 = md_cache_bundle(ctx, &g2);
    cr_assert_eq(g1, g2, "no ROOTCA push when the roots did not change");
    cr_assert_eq(b1, b2);
    sds_bundle_unref(b1);
    sds_bundle_unref(b2);
}

/* CA rotation: prepare publishes a new root (bundle changes, active does not),
 * activate changes the active CA (workers reload, SVIDs are re-issued). */
Test(meshd_cache_cas, rotation_moves_bundle_then_active_generation)
{
    tmd_cache_cas(ctx, env.st);
    uint64_t g0 = 0;
    sds_bundle_unref(md_cache_bundle(ctx, &g0));
    uint64_t ca_gen = atomic_load(&ctx->cache.ca_gen);
    mesh_err err = {0};
    ca_init_opts o = {.trust_domain = TSD_TD, .key_dir = env.keydir};
    int64_t next = 0;
    cr_assert_eq(ca_prepare(env.st, &o, &next, &err), MESH_OK, "%s", err.msg);
    tmd_cache_cas(ctx, env.st);
    uint64_t g1 = 0;
    sds_bundle *b = md_cache_bundle(ctx, &g1);
    cr_assert_eq(g1, g0 + 1, "the new root is published");
    cr_assert_not_null(strstr(sds_bundle_pem(b), "BEGIN CERTIFICATE"));
    sds_bundle_unref(b);
    cr_assert_eq(atomic_load(&ctx->cache.ca_gen), ca_gen, "prepared is not active");
    md_cas *cas = md_cache_cas(ctx);
    cr_assert_eq(cas->n, 2);
    cr_assert_eq(cas->active_id, ca_id(env.ca));
    md_cas_unref(cas);
    cr_assert_eq(ca_activate(env.st, next, &err), MESH_OK, "%s", err.msg);
    tmd_cache_cas(ctx, env.st);
    cas = md_cache_cas(ctx);
    cr_assert_eq(cas->active_id, next);
    md_cas_unref(cas);
    cr_assert_eq(atomic_load(&ctx->cache.ca_gen), ca_gen + 1, "workers must reload the CA");
}

Test(meshd_cache_cas, bad_bundle_is_refused_and_the_old_one_kept)
{
    tmd_cache_cas(ctx, env.st);
    uint64_t g0 = 0;
    sds_bundle *before = md_cache_bundle(ctx, &g0);
    md_cas *cas_before = md_cache_cas(ctx);
    store_ca *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_ca_list(env.st, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_neq(md_cache_set_cas(ctx, list, n, "not a PEM bundle", &err), MESH_OK);
    cr_assert_neq(err.msg[0], '\0', "the refusal says why");
    uint64_t g1 = 0;
    sds_bundle *after = md_cache_bundle(ctx, &g1);
    cr_assert_eq(after, before);
    cr_assert_eq(g1, g0);
    md_cas *cas_after = md_cache_cas(ctx);
    cr_assert_eq(cas_after, cas_before, "the CA list is not half-installed");
    md_cas_unref(cas_before);
    md_cas_unref(cas_after);
    sds_bundle_unref(before);
    sds_bundle_unref(after);
}

/* ---- CRLs in ROOTCA (meshd_revoke.c md_crl_sync, md_cache_set_crl) ------------------- */

static const char *bundle_crl(uint64_t *gen, sds_bundle **hold)
{
    *hold = md_cache_bundle(ctx, gen);
    cr_assert_not_null(*hold);
    return sds_bundle_crl_pem(*hold);
}

Test(meshd_cache_cas, crls_ride_in_rootca_and_move_its_generation)
{
    tmd_cache_cas(ctx, env.st);
    uint64_t g0 = 0, g1 = 0, g2 = 0, g3 = 0;
    sds_bundle_unref(md_cache_bundle(ctx, &g0));
    cr_assert_eq(md_crl_sync(ctx, env.st), 1, "the CA's first CRL is signed and installed");
    sds_bundle *b = NULL;
    const char *crl = bundle_crl(&g1, &b);
    cr_assert_eq(g1, g0 + 1, "a new CRL is a new ROOTCA for every stream");
    cr_assert_not_null(strstr(crl, "-----BEGIN X509 CRL-----"), "%s", crl);
    sds_bundle_unref(b);
    cr_assert_eq(md_crl_sync(ctx, env.st), 0, "nothing revoked since: nothing to push");
    sds_bundle_unref(md_cache_bundle(ctx, &g2));
    cr_assert_eq(g2, g1);

    EVP_PKEY *key = NULL;
    char serial[48];
    free(tsd_csr(TSD_WEB, &key));
    free(tsd_issue(&env, key, TSD_WEB, 3600, serial, NULL));
    ca_revoke_result r;
    mesh_err err = {0};
    cr_assert_eq(ca_revoke(env.st, serial, "keyCompromise", "test", md_now(), &r, &err), MESH_OK,
                 "%s", err.msg);
    ca_revoke_result_free(&r);
    cr_assert_eq(md_crl_sync(ctx, env.st), 1);
    crl = bundle_crl(&g3, &b);
    cr_assert_eq(g3, g2 + 1);
    cr_assert(tmd_crl_lists(crl, serial), "the revoked serial is on ROOTCA's CRL");
    sds_bundle_unref(b);
    EVP_PKEY_free(key);
}

Test(meshd_cache_cas, a_new_ca_list_keeps_the_crls)
{
    tmd_cache_cas(ctx, env.st);
    cr_assert_eq(md_crl_sync(ctx, env.st), 1);
    mesh_err err = {0};
    ca_init_opts o = {.trust_domain = TSD_TD, .key_dir = env.keydir};
    int64_t next = 0;
    cr_assert_eq(ca_prepare(env.st, &o, &next, &err), MESH_OK, "%s", err.msg);
    tmd_cache_cas(ctx, env.st);
    uint64_t g = 0;
    sds_bundle *b = NULL;
    const char *crl = bundle_crl(&g, &b);
    cr_assert_not_null(strstr(crl, "-----BEGIN X509 CRL-----"),
                       "a bundle rebuilt for a new root still carries the CRLs");
    sds_bundle_unref(b);
    /* The prepared CA gets its own CRL on the next sync. */
    cr_assert_eq(md_crl_sync(ctx, env.st), 1);
    crl = bundle_crl(&g, &b);
    const char *second = strstr(strstr(crl, "END X509 CRL") + 1, "BEGIN X509 CRL");
    cr_assert_not_null(second, "one CRL per CA in the bundle: %s", crl);
    sds_bundle_unref(b);
}

Test(meshd_cache_cas, bad_crls_are_refused_and_the_old_ones_kept)
{
    tmd_cache_cas(ctx, env.st);
    cr_assert_eq(md_crl_sync(ctx, env.st), 1);
    uint64_t g0 = 0, g1 = 0;
    sds_bundle *before = md_cache_bundle(ctx, &g0);
    mesh_err err = {0};
    cr_assert_lt(md_cache_set_crl(ctx, "not a CRL", &err), 0);
    cr_assert_neq(err.msg[0], '\0', "the refusal says why");
    sds_bundle *after = md_cache_bundle(ctx, &g1);
    cr_assert_eq(after, before);
    cr_assert_eq(g1, g0);
    sds_bundle_unref(before);
    sds_bundle_unref(after);
}
