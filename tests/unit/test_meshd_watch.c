/* tests/unit/test_meshd_watch.c — the watcher's decisions (meshd/meshd_changes.c) and its
 * rotation bookkeeping (meshd/meshd_watch.c): what changed in the store, which streams
 * need a new snapshot, bundle or SVID, when an SVID is renewed, when a stream refused
 * for a revoked certificate is ended and when the CRLs are refreshed, and that a
 * rotation runs at most once per key and backs off after a failure. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "meshd/meshd_changes.h"
#include "meshd/meshd_proxyless.h"
#include "sds/certsvc/svid_rotation.h"
#include "tests/unit/test_meshd_util.h"
#include "tests/unit/test_sds_util.h"

/* ---- what a stream needs on a pass ---------------------------------------------------- */

static md_stream_facts ready_facts(void)
{
    md_stream_facts f;
    memset(&f, 0, sizeof f);
    f.ready = 1;
    f.cfg_gen = 3;
    f.bundle_gen = 2;
    f.have_svid = 1;
    snprintf(f.serial, sizeof f.serial, "%s", "0a0b");
    return f;
}

static const md_current now_same = {.cfg_gen = 3, .bundle_gen = 2, .have_bundle = 1,
                                    .have_cas = 1};

Test(meshd_watch_plan, up_to_date_stream_needs_nothing)
{
    md_stream_facts f = ready_facts();
    md_refresh_plan p = md_refresh_plan_for(&f, 0, 0, &now_same);
    cr_assert(!p.defer && !p.snap && !p.bundle && !p.svid_lookup);
}

Test(meshd_watch_plan, new_config_generation_means_new_snapshot)
{
    md_stream_facts f = ready_facts();
    md_current now = now_same;
    now.cfg_gen = 4;
    md_refresh_plan p = md_refresh_plan_for(&f, 0, 0, &now);
    cr_assert(p.snap);
    cr_assert(!p.bundle && !p.svid_lookup && !p.defer);
    /* Proxyless streams get snapshots too. */
    cr_assert(md_refresh_plan_for(&f, 1, 0, &now).snap);
}

/* Before any config loaded (generation 0) there is nothing to give: a stream
 * that has none must not be "updated" to none on every pass. */
Test(meshd_watch_plan, no_config_loaded_means_no_snapshot)
{
    md_stream_facts f = ready_facts();
    f.cfg_gen = 0;
    md_current now = now_same;
    now.cfg_gen = 0;
    cr_assert(!md_refresh_plan_for(&f, 0, 1, &now).snap);
}

Test(meshd_watch_plan, new_bundle_for_tls_streams_only)
{
    md_stream_facts f = ready_facts();
    md_current now = now_same;
    now.bundle_gen = 3;
    cr_assert(md_refresh_plan_for(&f, 0, 0, &now).bundle);
    cr_assert(!md_refresh_plan_for(&f, 1, 0, &now).bundle, "plaintext streams hold no secrets");
    now.have_bundle = 0;
    cr_assert(!md_refresh_plan_for(&f, 0, 0, &now).bundle, "no bundle to give");
}

Test(meshd_watch_plan, dirty_identity_is_looked_up)
{
    md_stream_facts f = ready_facts();
    cr_assert(md_refresh_plan_for(&f, 0, 1, &now_same).svid_lookup);
    cr_assert(!md_refresh_plan_for(&f, 0, 0, &now_same).svid_lookup, "clean identity");
    cr_assert(!md_refresh_plan_for(&f, 1, 1, &now_same).svid_lookup, "plaintext: no SVID");
    md_current now = now_same;
    now.have_cas = 0;
    cr_assert(!md_refresh_plan_for(&f, 0, 1, &now).svid_lookup, "CA list not loaded");
}

/* A stream whose first view is still being built gets nothing now; if its
 * identity changed, the change must wait for the next pass, not be lost. */
Test(meshd_watch_plan, stream_not_ready_defers_a_dirty_identity)
{
    md_stream_facts f = ready_facts();
    f.ready = 0;
    md_current now = now_same;
    now.cfg_gen = 9;
    now.bundle_gen = 9;
    md_refresh_plan p = md_refresh_plan_for(&f, 0, 1, &now);
    cr_assert(p.defer);
    cr_assert(!p.snap && !p.bundle && !p.svid_lookup);
    cr_assert(!md_refresh_plan_for(&f, 0, 0, &now).defer, "nothing to remember");
    cr_assert(!md_refresh_plan_for(&f, 1, 1, &now).defer, "plaintext: no certificate");
}

Test(meshd_watch_plan, svid_change_detection)
{
    md_stream_facts f = ready_facts();
    sds_svid s;
    memset(&s, 0, sizeof s);
    s.found = 1;
    snprintf(s.serial_hex, sizeof s.serial_hex, "%s", "0a0b");
    cr_assert(!md_svid_changed(&f, &s), "same serial");
    snprintf(s.serial_hex, sizeof s.serial_hex, "%s", "0c0d");
    cr_assert(md_svid_changed(&f, &s), "renewed");
    memset(&s, 0, sizeof s);
    cr_assert(md_svid_changed(&f, &s), "gone (revoked or expired)");
    f.have_svid = 0;
    f.serial[0] = '\0';
    cr_assert(!md_svid_changed(&f, &s), "still none");
}

/* ---- rotation ------------------------------------------------------------------------- */

/* A 24 h SVID as the CA issues it: notBefore backdated. */
static md_stream_facts svid_facts(int64_t issued, int64_t ca)
{
    md_stream_facts f = ready_facts();
    f.nb = issued - CA_BACKDATE_SECONDS;
    f.na = issued + 86400;
    f.ca_id = ca;
    return f;
}

Test(meshd_watch_rotation, due_at_the_rotation_time)
{
    md_stream_facts f = svid_facts(1000000, 1);
    int64_t due = svid_rotation_due(f.nb, f.na, 0.5, f.serial);
    cr_assert_eq(md_rotation_decide(&f, 1, due - 1, 0.5, 1), MD_ROTATE_NO);
    cr_assert_eq(md_rotation_decide(&f, 1, due, 0.5, 1), MD_ROTATE_DUE);
    cr_assert_eq(md_rotation_decide(&f, 1, f.na - 1, 0.5, 1), MD_ROTATE_DUE);
}

Test(meshd_watch_rotation, old_ca_rotates_at_once)
{
    md_stream_facts f = svid_facts(1000000, 1);
    cr_assert_eq(md_rotation_decide(&f, 1, 1000001, 0.5, 2), MD_ROTATE_OLD_CA);
    cr_assert_eq(md_rotation_decide(&f, 1, 1000001, 0.5, 0), MD_ROTATE_NO,
                 "active CA unknown: only the time counts");
}

Test(meshd_watch_rotation, never_for_expired_or_absent_svids)
{
    md_stream_facts f = svid_facts(1000000, 1);
    cr_assert_eq(md_rotation_decide(&f, 1, f.na, 0.5, 2), MD_ROTATE_NO,
                 "expired: the sidecar must recover, even from an old CA");
    cr_assert_eq(md_rotation_decide(&f, 1, f.na + 3600, 0.5, 1), MD_ROTATE_NO);
    cr_assert_eq(md_rotation_decide(&f, 0, f.na - 1, 0.5, 1), MD_ROTATE_NO,
                 "no peer certificate: no key to re-certify");
    md_stream_facts g = f;
    g.have_svid = 0;
    cr_assert_eq(md_rotation_decide(&g, 1, f.na - 1, 0.5, 2), MD_ROTATE_NO);
    g = f;
    g.ready = 0;
    cr_assert_eq(md_rotation_decide(&g, 1, f.na - 1, 0.5, 2), MD_ROTATE_NO);
}

Test(meshd_watch_rotation, renewal_keeps_the_lifetime_within_limits)
{
    cr_assert_eq(md_rotation_ttl(1000 - CA_BACKDATE_SECONDS, 1000 + 86400), 86400);
    cr_assert_eq(md_rotation_ttl(1000 - CA_BACKDATE_SECONDS, 1000 + 60), 60);
    cr_assert_eq(md_rotation_ttl(1000, 1005), CA_MIN_SVID_TTL, "never below the CA minimum");
    cr_assert_eq(md_rotation_ttl(1000, 1000), CA_MIN_SVID_TTL);
    cr_assert_eq(md_rotation_ttl(0, (int64_t)CA_MAX_SVID_TTL * 2), CA_MAX_SVID_TTL,
                 "never above the CA maximum");
}

/* ---- rotation bookkeeping: one job per key, back-off after a failure --------------- */

static md_ctx *wctx;

static void watch_setup(void)
{
    wctx = tmd_ctx_new(NULL);
    tmd_watch_tables(wctx);
}

static void watch_teardown(void)
{
    md_watch_stop(wctx); /* never started: frees the tables */
    cr_assert_null(wctx->watch.rotating);
    tmd_ctx_free(wctx);
}

#define KEY "spiffe://example.org/ns/demo/sa/web|ab12"

TestSuite(meshd_watch_claims, .init = watch_setup, .fini = watch_teardown);

Test(meshd_watch_claims, one_rotation_per_key)
{
    md_watch *w = &wctx->watch;
    int64_t now = md_now();
    cr_assert_eq(md_watch_rotation_claim(w, KEY, now), 1);
    cr_assert_eq(md_watch_rotation_claim(w, KEY, now), 0, "a job is already running");
    cr_assert_eq(md_watch_rotation_claim(w, KEY "-other-key", now), 1, "keys are independent");
    md_watch_cert_changed(wctx, TSD_WEB, KEY, 1); /* the worker succeeded */
    cr_assert_eq(md_watch_rotation_claim(w, KEY, now), 1, "released after the job");
}

Test(meshd_watch_claims, failure_backs_off_then_retries)
{
    md_watch *w = &wctx->watch;
    int64_t now = md_now();
    cr_assert_eq(md_watch_rotation_claim(w, KEY, now), 1);
    md_watch_cert_changed(wctx, NULL, KEY, 0); /* the worker failed */
    cr_assert_eq(md_watch_rotation_claim(w, KEY, now), 0, "backing off");
    cr_assert_eq(md_watch_rotation_claim(w, KEY, now + 20), 0, "still backing off");
    cr_assert_eq(md_watch_rotation_claim(w, KEY, now + 60), 1, "retried after the back-off");
    cr_assert_null(md_map_get(w->rot_backoff, KEY), "back-off forgotten once retried");
    cr_assert_eq(md_watch_rotation_claim(w, KEY, now + 60), 0, "the retry now runs");
}

Test(meshd_watch_claims, success_clears_an_earlier_failure)
{
    md_watch *w = &wctx->watch;
    int64_t now = md_now();
    md_watch_rotation_claim(w, KEY, now);
    md_watch_cert_changed(wctx, NULL, KEY, 0);
    md_watch_cert_changed(wctx, TSD_WEB, KEY, 1); /* e.g. a second failure report raced */
    cr_assert_null(md_map_get(w->rot_backoff, KEY));
    cr_assert_eq(md_watch_rotation_claim(w, KEY, now), 1);
}

Test(meshd_watch_claims, repeated_failures_keep_one_backoff_entry)
{
    md_watch *w = &wctx->watch;
    md_watch_cert_changed(wctx, NULL, KEY, 0);
    md_watch_cert_changed(wctx, NULL, KEY, 0); /* the old entry is freed, not leaked */
    cr_assert_eq(md_map_count(w->rot_backoff), 1);
}

Test(meshd_watch_claims, issued_cert_marks_its_identity_dirty)
{
    md_watch *w = &wctx->watch;
    md_watch_cert_changed(wctx, TSD_API, NULL, 1); /* CreateCertificate for api */
    cr_assert_not_null(md_map_get(w->dirty, TSD_API));
    cr_assert_null(md_map_get(w->dirty, TSD_WEB));
    cr_assert_eq(md_map_count(w->rotating), 0, "no rotation key: nothing released");
}

/* ---- revocation: refused streams and CRL refreshes --------------------------------- */

Test(meshd_watch_revocation, refused_stream_is_ended_after_the_wait)
{
    md_stream_facts f;
    memset(&f, 0, sizeof f);
    f.connected_at = 1000;
    cr_assert_eq(md_refusal_overdue(&f, 1000 + 60), 0, "not refused: never ended here");
    f.refused = 1;
    cr_assert_eq(md_refusal_overdue(&f, 1000), 0, "its first request may name the node yet");
    cr_assert_eq(md_refusal_overdue(&f, 1000 + MD_REFUSAL_WAIT_S - 1), 0);
    cr_assert_eq(md_refusal_overdue(&f, 1000 + MD_REFUSAL_WAIT_S), 1);
    cr_assert_eq(md_refusal_overdue(&f, 1000 + 3600), 1);
}

Test(meshd_watch_revocation, crls_refreshed_on_change_and_every_minute)
{
    cr_assert_eq(md_crl_sync_due(1, 5000, 5000), 1, "every store change (a revocation)");
    cr_assert_eq(md_crl_sync_due(0, 5000, 5000), 0);
    cr_assert_eq(md_crl_sync_due(0, 5000 + MD_CRL_CHECK_MS - 1, 5000), 0);
    cr_assert_eq(md_crl_sync_due(0, 5000 + MD_CRL_CHECK_MS, 5000), 1,
                 "nextUpdate: looked at without any change");
    cr_assert_eq(md_crl_sync_due(0, MD_CRL_CHECK_MS, 0), 1, "the first pass after start");
}

/* ---- streams as the watcher reads them ----------------------------------------------- */

Test(meshd_watch_facts, copies_a_live_stream_and_ignores_a_finished_one)
{
    md_ctx *ctx = tmd_ctx_new(NULL);
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_stream *s = tmd_stream_new(c);
    s->view_ready = 1;
    s->cfg_gen = 5;
    s->bundle_gen = 6;
    s->svid.found = 1;
    snprintf(s->svid.serial_hex, sizeof s->svid.serial_hex, "%s", "beef");
    snprintf(s->presented_serial, sizeof s->presented_serial, "%s", "cafe");
    s->svid.not_before = 10;
    s->svid.not_after = 20;
    s->svid.ca_id = 7;
    md_stream_facts f;
    md_stream_facts_of(c, &f);
    cr_assert(f.ready && f.have_svid);
    cr_assert_eq(f.refused, 0);
    cr_assert_eq(f.connected_at, s->connected_at);
    s->refusal = strdup("revoked");
    md_stream_facts_of(c, &f);
    cr_assert_eq(f.refused, 1, "a refusal waiting for the node's name");
    cr_assert_eq(f.cfg_gen, 5);
    cr_assert_eq(f.bundle_gen, 6);
    cr_assert_str_eq(f.serial, "beef");
    cr_assert_str_eq(f.presented, "cafe");
    cr_assert_eq(f.nb, 10);
    cr_assert_eq(f.na, 20);
    cr_assert_eq(f.ca_id, 7);
    c->finishing = 1; /* its final status is queued: leave it alone */
    md_stream_facts_of(c, &f);
    cr_assert(!f.ready && !f.have_svid);
    c->finishing = 0;
    c->closed = 1;
    md_stream_facts_of(c, &f);
    cr_assert(!f.ready);
    tmd_call_free(c);
    md_call *bare = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB); /* no stream yet */
    md_stream_facts_of(bare, &f);
    cr_assert(!f.ready);
    tmd_call_free(bare);
    tmd_ctx_free(ctx);
}

Test(meshd_watch_facts, distinct_view_keys)
{
    md_ctx *ctx = tmd_ctx_new(NULL);
    md_call *calls[4];
    calls[0] = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    calls[1] = tmd_call_new(ctx, MD_CALL_SDS, TSD_WEB); /* same identity, second stream */
    calls[2] = tmd_call_new(ctx, MD_CALL_ADS, TSD_API);
    calls[3] = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB); /* proxyless, same SPIFFE ID */
    calls[3]->plaintext = 1;
    md_stream *s = tmd_stream_new(calls[3]);
    s->view_key = strdup(MD_PROXYLESS_KEY_PREFIX TSD_WEB);
    size_t n = 0;
    char **keys = md_distinct_view_keys(calls, 4, &n);
    cr_assert_not_null(keys);
    cr_assert_eq(n, 3, "one snapshot per identity and view");
    cr_assert_str_eq(keys[0], TSD_WEB);
    cr_assert_str_eq(keys[1], TSD_API);
    cr_assert_str_eq(keys[2], MD_PROXYLESS_KEY_PREFIX TSD_WEB);
    free(keys);
    keys = md_distinct_view_keys(calls, 0, &n);
    cr_assert_not_null(keys, "no streams is not an error");
    cr_assert_eq(n, 0);
    free(keys);
    for (int i = 0; i < 4; i++)
        tmd_call_free(calls[i]);
    tmd_ctx_free(ctx);
}

/* ---- the CA list fingerprint --------------------------------------------------------- */

Test(meshd_watch_cas, fingerprint_moves_with_every_ca_change)
{
    store_ca list[2];
    memset(list, 0, sizeof list);
    list[0] = (store_ca){.id = 1, .state = "active", .serial_hex = "01aa"};
    list[1] = (store_ca){.id = 2, .state = "prepared", .serial_hex = "02bb"};
    char *a = md_ca_fingerprint(list, 2);
    char *same = md_ca_fingerprint(list, 2);
    cr_assert_str_eq(a, same);
    list[0].state = "retired"; /* ca rotate --activate */
    list[1].state = "active";
    char *rotated = md_ca_fingerprint(list, 2);
    cr_assert_str_neq(a, rotated);
    char *pruned = md_ca_fingerprint(list + 1, 1); /* the old CA left the bundle */
    cr_assert_str_neq(rotated, pruned);
    list[1].serial_hex = "03cc"; /* same id, other certificate */
    char *replaced = md_ca_fingerprint(list + 1, 1);
    cr_assert_str_neq(pruned, replaced);
    char *none = md_ca_fingerprint(NULL, 0);
    cr_assert_str_eq(none, "");
    free(a);
    free(same);
    free(rotated);
    free(pruned);
    free(replaced);
    free(none);
}

/* ---- pruning retired CAs ---------------------------------------------------------- */

Test(meshd_watch_prune, nothing_retired_looks_again_in_a_minute)
{
    md_prune_plan p = md_prune_plan_for(NULL, 0, 5000);
    cr_assert_eq(p.prune, 0);
    cr_assert_eq(p.next_check_at, 5000 + MD_PRUNE_CHECK_S);
}

Test(meshd_watch_prune, a_retired_ca_without_live_leaves_is_pruned)
{
    ca_retired r[2] = {{.ca_id = 1, .live = 3, .last_not_after = 9000},
                       {.ca_id = 2, .live = 0, .last_not_after = 0}};
    md_prune_plan p = md_prune_plan_for(r, 2, 5000);
    cr_assert_eq(p.prune, 1);
    cr_assert_eq(p.next_check_at, 5000 + MD_PRUNE_CHECK_S, "CA 1 expires long after that");
}

Test(meshd_watch_prune, looks_again_one_second_after_the_last_leaf_expires)
{
    ca_retired r[2] = {{.ca_id = 1, .live = 1, .last_not_after = 5020},
                       {.ca_id = 2, .live = 4, .last_not_after = 5010}};
    md_prune_plan p = md_prune_plan_for(r, 2, 5000);
    cr_assert_eq(p.prune, 0, "every retired CA still has a valid leaf");
    cr_assert_eq(p.next_check_at, 5011, "at notAfter the leaf is valid; a second later not");
    /* a leaf that expires right now: look again next second, not in a minute */
    ca_retired last = {.ca_id = 1, .live = 1, .last_not_after = 5000};
    p = md_prune_plan_for(&last, 1, 5000);
    cr_assert_eq(p.prune, 0);
    cr_assert_eq(p.next_check_at, 5001);
}

/* ---- the audit log as the change feed (a real store) ---------------------------------- */

static tsd_env env;

static void feed_setup(void)
{
    tsd_setup(&env);
}

static void feed_teardown(void)
{
    tsd_teardown(&env);
}

TestSuite(meshd_watch_feed, .init = feed_setup, .fini = feed_teardown);

/* Where the watcher starts: the newest row at startup. */
static int64_t feed_end(void)
{
    store_audit_entry *a = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_audit_list(env.st, 1, &a, &n, &err), MESH_OK, "%s", err.msg);
    int64_t id = n ? a[0].id : 0;
    store_audit_free_list(a, n);
    return id;
}

static void audit(const char *action, const char *subject, int ok)
{
    mesh_err err = {0};
    cr_assert_eq(store_audit(env.st, "test", action, subject, "", ok, &err), MESH_OK, "%s",
                 err.msg);
}

/* n rows that say nothing about certificates (proxy denials, config applies). */
static void noise(int n)
{
    mesh_err err = {0};
    cr_assert_eq(store_begin(env.st, &err), MESH_OK, "%s", err.msg);
    for (int i = 0; i < n; i++)
        audit("config.apply", "mesh.yaml", 1);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
}

Test(meshd_watch_feed, nothing_new)
{
    int64_t last = feed_end();
    int64_t start = last;
    md_map *dirty = md_map_new(16);
    cr_assert_eq(md_audit_feed_read(env.st, &last, dirty), 0);
    cr_assert_eq(md_map_count(dirty), 0);
    cr_assert_eq(last, start);
    md_map_free(dirty, NULL);
}

Test(meshd_watch_feed, issued_cert_marks_only_its_identity)
{
    int64_t last = feed_end();
    int64_t start = last;
    EVP_PKEY *key = NULL;
    free(tsd_csr(TSD_WEB, &key));
    free(tsd_issue(&env, key, TSD_WEB, 3600, NULL, NULL));
    EVP_PKEY_free(key);
    md_map *dirty = md_map_new(16);
    cr_assert_eq(md_audit_feed_read(env.st, &last, dirty), 0);
    cr_assert_not_null(md_map_get(dirty, TSD_WEB));
    cr_assert_null(md_map_get(dirty, TSD_API));
    cr_assert_gt(last, start);
    /* Read again: the same rows are not news. */
    md_map_free(dirty, NULL);
    dirty = md_map_new(16);
    cr_assert_eq(md_audit_feed_read(env.st, &last, dirty), 0);
    cr_assert_eq(md_map_count(dirty), 0);
    md_map_free(dirty, NULL);
}

Test(meshd_watch_feed, recover_and_failed_rows)
{
    int64_t last = feed_end();
    audit("cert.recover", TSD_API, 1);
    audit("cert.issue", TSD_WEB, 0); /* refused: no new cert */
    md_map *dirty = md_map_new(16);
    cr_assert_eq(md_audit_feed_read(env.st, &last, dirty), 0);
    cr_assert_not_null(md_map_get(dirty, TSD_API));
    cr_assert_null(md_map_get(dirty, TSD_WEB), "a failed row changes nothing");
    cr_assert_eq(last, feed_end(), "but it is read past");
    md_map_free(dirty, NULL);
}

Test(meshd_watch_feed, revoked_serial_marks_its_owner)
{
    EVP_PKEY *key = NULL;
    free(tsd_csr(TSD_API, &key));
    char serial[48];
    free(tsd_issue(&env, key, TSD_API, 3600, serial, NULL));
    EVP_PKEY_free(key);
    int64_t last = feed_end();
    mesh_err err = {0};
    cr_assert_eq(store_cert_revoke(env.st, serial, "keyCompromise", md_now(), &err), MESH_OK,
                 "%s", err.msg);
    audit("cert.revoke", serial, 1); /* as meshctl cert revoke writes it */
    md_map *dirty = md_map_new(16);
    cr_assert_eq(md_audit_feed_read(env.st, &last, dirty), 0);
    cr_assert_not_null(md_map_get(dirty, TSD_API));
    cr_assert_null(md_map_get(dirty, serial), "the serial is not an identity");
    md_map_free(dirty, NULL);
}

Test(meshd_watch_feed, unknown_revoked_serial_means_look_at_everyone)
{
    int64_t last = feed_end();
    audit("cert.revoke", "00ffffffffffffffffffffffffffff00", 1);
    md_map *dirty = md_map_new(16);
    cr_assert_eq(md_audit_feed_read(env.st, &last, dirty), 1);
    md_map_free(dirty, NULL);
}

/* More new rows than the first page: the feed must read far enough back to
 * see the oldest of them. */
Test(meshd_watch_feed, reads_past_the_first_page)
{
    int64_t last = feed_end();
    audit("cert.issue", TSD_API, 1);
    noise(MD_AUDIT_FEED_PAGE + 8);
    md_map *dirty = md_map_new(16);
    cr_assert_eq(md_audit_feed_read(env.st, &last, dirty), 0);
    cr_assert_not_null(md_map_get(dirty, TSD_API), "row behind the first page was missed");
    cr_assert_eq(last, feed_end());
    md_map_free(dirty, NULL);
}

Test(meshd_watch_feed, more_than_the_limit_overflows)
{
    int64_t last = feed_end();
    audit("cert.issue", TSD_API, 1);
    noise(MD_AUDIT_FEED_LIMIT);
    md_map *dirty = md_map_new(16);
    cr_assert_eq(md_audit_feed_read(env.st, &last, dirty), 1, "rows were missed: scan all");
    cr_assert_eq(last, feed_end(), "and go on from the newest");
    md_map_free(dirty, NULL);
    dirty = md_map_new(16);
    cr_assert_eq(md_audit_feed_read(env.st, &last, dirty), 0, "caught up");
    md_map_free(dirty, NULL);
}

/* The watcher starts its feed at 0 when the audit log was empty at startup;
 * missing rows must still be noticed then (they were not: overflow required
 * a last id above 0). */
Test(meshd_watch_feed, overflow_from_an_empty_start)
{
    int64_t last = 0;
    noise(MD_AUDIT_FEED_LIMIT + 5);
    md_map *dirty = md_map_new(16);
    cr_assert_eq(md_audit_feed_read(env.st, &last, dirty), 1);
    md_map_free(dirty, NULL);
}

Test(meshd_watch_feed, exactly_the_limit_is_no_overflow)
{
    int64_t last = feed_end();
    noise(MD_AUDIT_FEED_LIMIT - 1);
    audit("cert.issue", TSD_WEB, 1); /* the newest */
    md_map *dirty = md_map_new(16);
    cr_assert_eq(md_audit_feed_read(env.st, &last, dirty), 0, "every new row was seen");
    cr_assert_not_null(md_map_get(dirty, TSD_WEB));
    md_map_free(dirty, NULL);
}
