/* tests/unit/test_meshd_stream.c — stream bookkeeping (meshd/meshd_stream.c,
 * meshd/meshd_delta.c): the registry the watcher walks, a stream's node name and
 * status, installing a view and what that pushes, the requests that end a stream, and
 * which trust bundle a node ACKed (meshd/meshd_trust.c).
 * Calls are built as on_new_call builds them (test_meshd_util.h); what meshd queues
 * for the client is read back and decoded. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "meshd/meshd_internal.h"
#include "sds/protocol/ads_codec.h"
#include "sds/protocol/ads_delta_codec.h"
#include "tests/unit/test_meshd_util.h"
#include "tests/unit/test_sds_util.h"

static md_ctx *ctx;

static void plain_setup(void)
{
    grpc_init();
    ctx = tmd_ctx_new(NULL);
}

static void plain_teardown(void)
{
    tmd_ctx_free(ctx);
    grpc_shutdown();
}

/* ---- the registry ------------------------------------------------------------------- */

TestSuite(meshd_registry, .init = plain_setup, .fini = plain_teardown);

Test(meshd_registry, add_list_remove_with_references)
{
    md_call *a = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_call *b = tmd_call_new(ctx, MD_CALL_SDS, TSD_API);
    md_registry_add(ctx, a);
    md_registry_add(ctx, b);
    cr_assert_eq(tmd_refs(a), 2, "the registry holds a reference");
    size_t n = 0;
    md_call **list = md_registry_list(ctx, &n);
    cr_assert_eq(n, 2);
    cr_assert(list[0] != list[1]);
    cr_assert(list[0] == a || list[0] == b);
    cr_assert_eq(tmd_refs(a), 3, "and so does the list");
    md_registry_release(list, n);
    cr_assert_eq(tmd_refs(a), 2);
    md_registry_remove(ctx, a);
    md_registry_remove(ctx, b);
    cr_assert_eq(tmd_refs(a), 1);
    cr_assert_eq(ctx->reg_count, 0);
    cr_assert_null(ctx->reg_head);
    tmd_call_free(a);
    tmd_call_free(b);
}

/* The watcher walks a list while streams close: a call removed meanwhile stays
 * valid until the list is released, and is gone from the next list. */
Test(meshd_registry, removal_during_iteration)
{
    md_call *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
        md_registry_add(ctx, c[i]);
    }
    size_t n = 0;
    md_call **list = md_registry_list(ctx, &n);
    cr_assert_eq(n, 3);
    md_registry_remove(ctx, c[1]); /* the middle one closes */
    cr_assert_eq(tmd_refs(c[1]), 2, "still referenced by the walk's list");
    cr_assert_eq(c[1]->registered, 0);
    size_t n2 = 0;
    md_call **list2 = md_registry_list(ctx, &n2);
    cr_assert_eq(n2, 2);
    for (size_t i = 0; i < n2; i++)
        cr_assert_neq(list2[i], c[1]);
    md_registry_release(list2, n2);
    md_registry_release(list, n);
    cr_assert_eq(tmd_refs(c[1]), 1);
    /* head and tail removals keep the links right */
    md_registry_remove(ctx, c[2]); /* head (added last) */
    md_registry_remove(ctx, c[0]); /* tail */
    cr_assert_eq(ctx->reg_count, 0);
    cr_assert_null(ctx->reg_head);
    for (int i = 0; i < 3; i++)
        tmd_call_free(c[i]);
}

Test(meshd_registry, remove_is_idempotent)
{
    md_call *a = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_registry_remove(ctx, a); /* never added */
    cr_assert_eq(tmd_refs(a), 1, "no reference dropped for a call it never held");
    md_registry_add(ctx, a);
    md_registry_remove(ctx, a);
    md_registry_remove(ctx, a); /* close paths may both try */
    cr_assert_eq(tmd_refs(a), 1);
    cr_assert_eq(ctx->reg_count, 0);
    size_t n = 9;
    md_call **list = md_registry_list(ctx, &n);
    cr_assert_not_null(list, "an empty registry is an empty list, not an error");
    cr_assert_eq(n, 0);
    md_registry_release(list, n);
    tmd_call_free(a);
}

/* ---- opening ------------------------------------------------------------------------ */

Test(meshd_registry, stream_without_verified_identity_is_refused)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, ""); /* no client certificate */
    md_stream_open(c);
    cr_assert_null(c->stream);
    cr_assert_eq(ctx->reg_count, 0);
    cr_assert_eq(tmd_queued(c), 1);
    const md_out *o = tmd_queued_at(c, 0);
    cr_assert(o->has_status);
    cr_assert_eq(o->code, GRPC_STATUS_UNAUTHENTICATED);
    cr_assert_not_null(strstr(o->msg, "CreateCertificate"), "tells the operator what to do");
    cr_assert(c->finishing);
    tmd_call_free(c);
}

/* The client went away while meshd set the stream up: the close completion
 * already ran, so registering now would leak the call into the registry
 * forever (and block shutdown). */
Test(meshd_registry, stream_closed_before_open_is_not_registered)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_DADS, TSD_WEB);
    snprintf(c->pubkey_sha, sizeof c->pubkey_sha, "%064d", 0);
    c->closed = 1;
    md_stream_open(c);
    cr_assert_null(c->stream);
    cr_assert_eq(ctx->reg_count, 0);
    cr_assert_eq(c->registered, 0);
    cr_assert_eq(tmd_refs(c), 1, "no job was queued holding it");
    cr_assert_eq(ctx->work.n, 0);
    tmd_call_free(c);
}

/* ---- node name and status ------------------------------------------------------------- */

Test(meshd_registry, node_is_named_by_the_first_request_only)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_stream *s = tmd_stream_new(c);
    md_stream_note_node_locked(c, 1, "web-1");
    cr_assert_str_eq(s->node_id, "web-1");
    md_stream_note_node_locked(c, 1, "impostor");
    cr_assert_str_eq(s->node_id, "web-1", "later requests do not rename the node");
    tmd_call_free(c);

    c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    s = tmd_stream_new(c);
    md_stream_note_node_locked(c, 0, NULL);
    cr_assert_str_eq(s->node_id, TSD_WEB, "without Node the identity names it");
    tmd_call_free(c);

    c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    s = tmd_stream_new(c);
    md_stream_note_node_locked(c, 1, "");
    cr_assert_str_eq(s->node_id, TSD_WEB, "an empty Node.id too");
    tmd_call_free(c);

    c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    s = tmd_stream_new(c);
    md_stream_note_node_locked(c, 1, "web\n1\x1b[2J");
    cr_assert_null(strchr(s->node_id, '\n'), "log and status safe: %s", s->node_id);
    cr_assert_null(strchr(s->node_id, '\x1b'));
    tmd_call_free(c);
}

Test(meshd_registry, status_opens_once_the_node_is_known)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_stream *s = tmd_stream_new(c);
    s->svid.not_after = 5000;
    md_stream_status_sync_locked(c);
    cr_assert_eq(s->status_opened, 0, "no row without a node name");
    md_stream_note_node_locked(c, 1, "web-1");
    md_stream_status_sync_locked(c);
    cr_assert_eq(s->status_opened, 0, "an mTLS stream's row waits for its enrolled instance");
    cr_assert_eq(md_stream_settle_instance_locked(c, ""), 1);
    md_stream_status_sync_locked(c);
    cr_assert_eq(s->status_opened, 1);
    cr_assert_eq(s->reported_not_after, 5000);
    s->svid.not_after = 9000; /* rotated */
    md_stream_status_sync_locked(c);
    cr_assert_eq(s->reported_not_after, 9000);
    md_registry_add(ctx, c);
    md_stream_on_close(c);
    cr_assert_eq(s->status_opened, 0, "closed in proxy status");
    cr_assert_eq(c->registered, 0, "and gone from the registry");
    tmd_call_free(c);
}

/* ---- requests that end a stream ----------------------------------------------------- */

static void send_sotw(md_call *c, const char *type_url, const char *const *names, size_t n)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = {0};
    cr_assert_eq(ads_request_encode(type_url, "", "", names, n, "web-1", NULL, &buf, &len, &err),
                 MESH_OK, "%s", err.msg);
    md_stream_on_message(c, buf, len);
    free(buf);
}

Test(meshd_registry, garbage_request_is_invalid_argument)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    tmd_stream_new(c);
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x07, 0x01};
    md_stream_on_message(c, junk, sizeof junk);
    cr_assert_eq(tmd_queued(c), 1);
    cr_assert_eq(tmd_queued_at(c, 0)->code, GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(c->stream->requests, 0, "not counted as a request");
    tmd_call_free(c);
}

Test(meshd_registry, foreign_secret_name_ends_the_stream)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_SDS, TSD_WEB);
    md_stream *s = tmd_stream_new(c);
    const char *names[] = {TSD_API}; /* api's SVID, asked for by web */
    send_sotw(c, XDS_TYPE_URL_SECRET, names, 1);
    cr_assert_eq(tmd_queued(c), 1);
    const md_out *o = tmd_queued_at(c, 0);
    cr_assert_eq(o->code, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert_not_null(strstr(o->msg, TSD_API), "names the refused secret: %s", o->msg);
    cr_assert(c->finishing);
    cr_assert_str_eq(s->node_id, "web-1");
    /* Anything after that is ignored. */
    send_sotw(c, XDS_TYPE_URL_SECRET, names, 1);
    cr_assert_eq(tmd_queued(c), 1);
    cr_assert_eq(s->requests, 1);
    tmd_call_free(c);
}

Test(meshd_registry, delta_garbage_and_foreign_names)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_DSDS, TSD_WEB);
    tmd_stream_new(c);
    static const uint8_t junk[] = {0x0a, 0xff};
    md_delta_on_message(c, junk, sizeof junk);
    cr_assert_eq(tmd_queued_at(c, 0)->code, GRPC_STATUS_INVALID_ARGUMENT);
    tmd_call_free(c);

    c = tmd_call_new(ctx, MD_CALL_DSDS, TSD_WEB);
    tmd_stream_new(c);
    const char *subs[] = {"default", TSD_API};
    ads_delta_request_args a = {.type_url = XDS_TYPE_URL_SECRET, .subscribe = subs, .n_subscribe = 2,
                                .node_id = "web-1"};
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = {0};
    cr_assert_eq(ads_delta_request_encode(&a, &buf, &len, &err), MESH_OK, "%s", err.msg);
    md_delta_on_message(c, buf, len);
    free(buf);
    cr_assert_eq(tmd_queued(c), 1);
    cr_assert_eq(tmd_queued_at(c, 0)->code, GRPC_STATUS_PERMISSION_DENIED);
    tmd_call_free(c);
}

/* ---- views and pushes (real snapshot, bundle and SVID) --------------------------------- */

static tsd_env env;

static void view_setup(void)
{
    grpc_init();
    tsd_setup(&env);
    ctx = tmd_ctx_new(env.db);
    tmd_cache_config(ctx, TMD_MESH_YAML, 1);
    tmd_cache_cas(ctx, env.st);
}

static void view_teardown(void)
{
    tmd_ctx_free(ctx);
    tsd_teardown(&env);
    grpc_shutdown();
}

TestSuite(meshd_view, .init = view_setup, .fini = view_teardown);

/* The update a worker builds for a new stream: snapshot, bundle, SVID. */
typedef struct view {
    md_view_update u;
    sds_svid svid;
    sds_bundle *bundle;
    md_cas *cas;
} view;

static void view_build(view *v, md_call *c)
{
    memset(v, 0, sizeof *v);
    v->u.set_snap = 1;
    v->u.snap = md_cache_snapshot(ctx, c->spiffe_id, &v->u.cfg_gen);
    cr_assert_not_null(v->u.snap);
    v->bundle = md_cache_bundle(ctx, &v->u.bundle_gen);
    v->u.bundle = v->bundle;
    v->cas = md_cache_cas(ctx);
    mesh_err err = {0};
    cr_assert_eq(sds_svid_lookup(env.st, c->spiffe_id, c->pubkey_sha, v->cas->list, v->cas->n,
                                 md_now(), NULL, NULL, &v->svid, &err),
                 MESH_OK, "%s", err.msg);
    v->u.svid = &v->svid;
}

static void view_free(view *v)
{
    if (v->u.snap)
        md_snap_unref(v->u.snap);
    sds_svid_free(&v->svid);
    sds_bundle_unref(v->bundle);
    md_cas_unref(v->cas);
}

static void subscribe(md_call *c, enum ads_type t, const char *const *names, size_t n)
{
    ads_request r = {.type_url = ads_type_url(t), .version_info = "", .response_nonce = "",
                     .names = names, .n_names = n};
    ads_req_result res;
    mesh_err err = {0};
    cr_assert_eq(ads_state_on_request(&c->stream->st, &r, &res, &err), MESH_OK, "%s", err.msg);
}

Test(meshd_view, first_view_makes_the_stream_ready)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    char serial[48];
    tmd_connect_with_svid(&env, c, 3600, serial, NULL);
    md_stream *s = tmd_stream_new(c);
    view v;
    view_build(&v, c);
    md_snap *snap = v.u.snap;
    pthread_mutex_lock(&c->mu);
    md_stream_update_locked(c, &v.u);
    pthread_mutex_unlock(&c->mu);
    cr_assert(s->view_ready);
    cr_assert_eq(s->snap, snap);
    cr_assert_null(v.u.snap, "the snapshot reference moved into the stream");
    cr_assert_eq(s->cfg_gen, 1);
    cr_assert_eq(s->bundle_gen, v.u.bundle_gen);
    cr_assert(s->svid.found);
    cr_assert_str_eq(s->svid.serial_hex, serial);
    cr_assert_eq(v.svid.chain_pem, NULL, "the SVID moved in too");
    cr_assert_not_null(s->secrets);
    cr_assert_eq(s->secrets->set.n, 4, "ROOTCA, default, and their SPIRE names");
    cr_assert_eq(tmd_queued(c), 0, "nothing subscribed: nothing sent");
    view_free(&v);
    tmd_call_free(c);
}

Test(meshd_view, without_an_svid_only_the_bundle_is_served)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_SDS, TSD_API);
    snprintf(c->pubkey_sha, sizeof c->pubkey_sha, "%064d", 0); /* no cert for this key */
    md_stream *s = tmd_stream_new(c);
    view v;
    view_build(&v, c);
    cr_assert_eq(v.svid.found, 0);
    pthread_mutex_lock(&c->mu);
    md_stream_update_locked(c, &v.u);
    pthread_mutex_unlock(&c->mu);
    cr_assert(s->view_ready, "ready: ROOTCA can be served");
    cr_assert_eq(s->secrets->set.n, 2);
    view_free(&v);
    tmd_call_free(c);
}

Test(meshd_view, no_bundle_no_view)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_stream *s = tmd_stream_new(c);
    md_view_update u;
    memset(&u, 0, sizeof u);
    u.set_snap = 1;
    u.snap = md_cache_snapshot(ctx, TSD_WEB, &u.cfg_gen);
    pthread_mutex_lock(&c->mu);
    md_stream_update_locked(c, &u);
    pthread_mutex_unlock(&c->mu);
    cr_assert_not_null(s->snap);
    cr_assert_eq(s->view_ready, 0, "not ready without secrets");
    tmd_call_free(c);
}

Test(meshd_view, null_snapshot_keeps_the_one_held)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_stream *s = tmd_stream_new(c);
    md_view_update u;
    memset(&u, 0, sizeof u);
    u.set_snap = 1;
    u.snap = md_cache_snapshot(ctx, TSD_WEB, &u.cfg_gen);
    md_snap *held = u.snap;
    pthread_mutex_lock(&c->mu);
    md_stream_update_locked(c, &u);
    md_view_update none = {.set_snap = 1, .snap = NULL, .cfg_gen = 2};
    md_stream_update_locked(c, &none); /* generation 2 failed to compile for web */
    pthread_mutex_unlock(&c->mu);
    cr_assert_eq(s->snap, held, "keeps serving the last good snapshot");
    cr_assert_eq(s->cfg_gen, 2, "but is not refreshed again for generation 2");
    tmd_call_free(c);
}

Test(meshd_view, replacing_a_snapshot_releases_the_old_one)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    tmd_stream_new(c);
    md_view_update u;
    memset(&u, 0, sizeof u);
    u.set_snap = 1;
    u.snap = md_cache_snapshot(ctx, TSD_WEB, &u.cfg_gen);
    md_snap *first = md_snap_ref(u.snap); /* watch it */
    pthread_mutex_lock(&c->mu);
    md_stream_update_locked(c, &u);
    pthread_mutex_unlock(&c->mu);
    cr_assert_eq(atomic_load(&first->refs), 3, "test + stream + cache");
    tmd_cache_config(ctx, TMD_MESH_YAML, 2);
    md_view_update u2;
    memset(&u2, 0, sizeof u2);
    u2.set_snap = 1;
    u2.snap = md_cache_snapshot(ctx, TSD_WEB, &u2.cfg_gen);
    pthread_mutex_lock(&c->mu);
    md_stream_update_locked(c, &u2);
    pthread_mutex_unlock(&c->mu);
    cr_assert_eq(atomic_load(&first->refs), 1, "only the test holds the old one now");
    md_snap_unref(first);
    tmd_call_free(c);
}

Test(meshd_view, subscribed_types_are_pushed)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    tmd_connect_with_svid(&env, c, 3600, NULL, NULL);
    md_stream *s = tmd_stream_new(c);
    subscribe(c, ADS_T_CDS, NULL, 0); /* wildcard */
    const char *secrets[] = {"default", "ROOTCA"};
    subscribe(c, ADS_T_SDS, secrets, 2);
    view v;
    view_build(&v, c);
    size_t n_clusters = v.u.snap->snap.types[XDS_CDS].n;
    cr_assert_gt(n_clusters, 0);
    pthread_mutex_lock(&c->mu);
    md_stream_update_locked(c, &v.u);
    pthread_mutex_unlock(&c->mu);
    cr_assert_eq(tmd_queued(c), 2, "CDS and SDS");
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = tmd_response_at(c, 0);
    cr_assert_str_eq(r->type_url, XDS_TYPE_URL_SECRET, "secrets first: clusters refer to them");
    cr_assert_eq(r->n_resources, 2);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    r = tmd_response_at(c, 1);
    cr_assert_str_eq(r->type_url, XDS_TYPE_URL_CLUSTER);
    cr_assert_eq(r->n_resources, n_clusters);
    cr_assert_neq(r->nonce[0], '\0');
    cr_assert_neq(r->version_info[0], '\0');
    cr_assert_not_null(r->control_plane);
    cr_assert_str_eq(r->control_plane->identifier, "meshd/" TMD_INSTANCE);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    cr_assert_eq(s->responses, 2);
    /* The same view again while both await their ACK: nothing more. */
    md_view_update again;
    memset(&again, 0, sizeof again);
    again.set_snap = 1;
    again.snap = md_cache_snapshot(ctx, TSD_WEB, &again.cfg_gen);
    pthread_mutex_lock(&c->mu);
    md_stream_update_locked(c, &again);
    pthread_mutex_unlock(&c->mu);
    cr_assert_eq(tmd_queued(c), 2);
    if (again.snap)
        md_snap_unref(again.snap);
    view_free(&v);
    tmd_call_free(c);
}

/* An SDS stream (StreamSecrets) serves secrets only, whatever it asks for. */
Test(meshd_view, sds_stream_gets_no_listeners_or_clusters)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_SDS, TSD_WEB);
    tmd_connect_with_svid(&env, c, 3600, NULL, NULL);
    tmd_stream_new(c);
    subscribe(c, ADS_T_CDS, NULL, 0);
    const char *secrets[] = {"ROOTCA"};
    subscribe(c, ADS_T_SDS, secrets, 1);
    view v;
    view_build(&v, c);
    pthread_mutex_lock(&c->mu);
    md_stream_update_locked(c, &v.u);
    pthread_mutex_unlock(&c->mu);
    cr_assert_eq(tmd_queued(c), 1);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = tmd_response_at(c, 0);
    cr_assert_str_eq(r->type_url, XDS_TYPE_URL_SECRET);
    cr_assert_eq(r->n_resources, 1);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    view_free(&v);
    tmd_call_free(c);
}

/* A stream that closed (or is finishing) while its update was on its way
 * gets nothing queued. */
Test(meshd_view, closed_or_finishing_stream_gets_nothing)
{
    for (int closed = 0; closed <= 1; closed++) {
        md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
        tmd_connect_with_svid(&env, c, 3600, NULL, NULL);
        tmd_stream_new(c);
        subscribe(c, ADS_T_CDS, NULL, 0);
        if (closed)
            c->closed = 1;
        else
            c->finishing = 1;
        view v;
        view_build(&v, c);
        pthread_mutex_lock(&c->mu);
        md_stream_update_locked(c, &v.u);
        pthread_mutex_unlock(&c->mu);
        cr_assert_eq(tmd_queued(c), 0, "%s", closed ? "closed" : "finishing");
        cr_assert_eq(c->stream->responses, 0);
        view_free(&v);
        tmd_call_free(c);
    }
}

Test(meshd_view, delta_stream_gets_a_delta_response)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_DADS, TSD_WEB);
    tmd_connect_with_svid(&env, c, 3600, NULL, NULL);
    md_stream *s = tmd_stream_new(c);
    ads_delta_request r = {.type_url = XDS_TYPE_URL_CLUSTER, .response_nonce = ""};
    ads_req_result res;
    mesh_err err = {0};
    cr_assert_eq(ads_delta_on_request(s->delta, &r, &res, &err), MESH_OK, "%s", err.msg);
    view v;
    view_build(&v, c);
    size_t n_clusters = v.u.snap->snap.types[XDS_CDS].n;
    pthread_mutex_lock(&c->mu);
    md_stream_update_locked(c, &v.u);
    pthread_mutex_unlock(&c->mu);
    cr_assert_eq(tmd_queued(c), 1);
    size_t len = 0;
    uint8_t *buf = tmd_bytes_at(c, 0, &len);
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *d =
        envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, buf);
    free(buf);
    cr_assert_not_null(d, "a DeltaDiscoveryResponse, not a SotW one");
    cr_assert_str_eq(d->type_url, XDS_TYPE_URL_CLUSTER);
    cr_assert_eq(d->n_resources, n_clusters);
    cr_assert_eq(d->n_removed_resources, 0);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(d, NULL);
    view_free(&v);
    tmd_call_free(c);
}

/* ---- which bundle a node ACKed (meshd_trust.c) ----------------------------------------- */

static void name_node(md_call *c, const char *node)
{
    snprintf(c->stream->node_id, sizeof c->stream->node_id, "%s", node);
    c->stream->node_known = 1;
}

static void reply(md_call *c, enum ads_req_kind kind)
{
    pthread_mutex_lock(&c->mu);
    md_stream_note_reply_locked(c, kind, XDS_TYPE_URL_SECRET, "v", "v", "bad", NULL, NULL);
    pthread_mutex_unlock(&c->mu);
}

static void push_view(md_call *c, view *v)
{
    view_build(v, c);
    pthread_mutex_lock(&c->mu);
    md_stream_update_locked(c, &v->u);
    pthread_mutex_unlock(&c->mu);
}

/* An SDS response holding one secret of that name went out on c. */
static void sent_bundle_named(md_call *c, const char *name)
{
    char *copy = strdup(name);
    xds_resource r = {.name = copy};
    const xds_resource *items[] = {&r};
    pthread_mutex_lock(&c->mu);
    md_trust_on_sds_sent_locked(c, items, 1);
    pthread_mutex_unlock(&c->mu);
    free(copy);
}

/* The roots stored for (node, TSD_WEB), or NULL. */
static char *stored_roots(const char *node)
{
    store_proxy_trust *t = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_proxy_trust_list(env.st, &t, &n, &err), MESH_OK, "%s", err.msg);
    char *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].node_id, node) == 0 && strcmp(t[i].spiffe_id, TSD_WEB) == 0)
            out = strdup(t[i].roots);
    store_proxy_trust_free_list(t, n);
    return out;
}

Test(meshd_view, ack_of_the_bundle_records_its_roots)
{
    mesh_err err = {0};
    cr_assert_eq(md_status_start(ctx, &err), MESH_OK, "%s", err.msg);
    md_call *c = tmd_call_new(ctx, MD_CALL_SDS, TSD_WEB);
    tmd_connect_with_svid(&env, c, 3600, NULL, NULL);
    md_stream *s = tmd_stream_new(c);
    name_node(c, "web-1");
    const char *secrets[] = {"ROOTCA"};
    subscribe(c, ADS_T_SDS, secrets, 1);
    view v;
    push_view(c, &v);
    cr_assert_eq(tmd_queued(c), 1);
    char *want = NULL;
    cr_assert_eq(ca_bundle_fingerprints(sds_bundle_pem(v.bundle), &want, &err), MESH_OK);
    cr_assert_eq(strlen(want), 64);
    cr_assert_str_eq(s->sds_pending_roots, want, "sent, awaiting the answer");
    cr_assert_null(s->sds_acked_roots);
    reply(c, ADS_REQ_NACK);
    cr_assert_null(s->sds_pending_roots, "a NACK leaves it with what it had: nothing");
    cr_assert_null(s->sds_acked_roots);
    /* sent again (as after a new bundle) and ACKed this time */
    sent_bundle_named(c, "ROOTCA");
    reply(c, ADS_REQ_ACK);
    cr_assert_str_eq(s->sds_acked_roots, want);
    md_status_stop(ctx);
    char *stored = stored_roots("web-1");
    cr_assert_not_null(stored, "the ACK reached the store");
    cr_assert_str_eq(stored, want);
    free(stored);
    free(want);
    view_free(&v);
    tmd_call_free(c);
}

/* A response without the bundle (only the SVID), or a client that never
 * named its node, records nothing. */
Test(meshd_view, ack_without_a_bundle_or_a_node_records_nothing)
{
    mesh_err err = {0};
    cr_assert_eq(md_status_start(ctx, &err), MESH_OK, "%s", err.msg);
    md_call *c = tmd_call_new(ctx, MD_CALL_SDS, TSD_WEB);
    tmd_connect_with_svid(&env, c, 3600, NULL, NULL);
    md_stream *s = tmd_stream_new(c);
    name_node(c, "web-1");
    const char *secrets[] = {"default"};
    subscribe(c, ADS_T_SDS, secrets, 1);
    view v;
    push_view(c, &v);
    cr_assert_eq(tmd_queued(c), 1);
    cr_assert_null(s->sds_pending_roots, "no bundle-named secret in the response");
    reply(c, ADS_REQ_ACK);
    cr_assert_null(s->sds_acked_roots);
    /* the bundle sent, but the node never said who it is */
    s->node_known = 0;
    sent_bundle_named(c, "spiffe://" TSD_TD);
    cr_assert_not_null(s->sds_pending_roots, "spiffe://<td> is the bundle too");
    reply(c, ADS_REQ_ACK);
    cr_assert_null(s->sds_acked_roots);
    md_status_stop(ctx);
    cr_assert_null(stored_roots("web-1"));
    view_free(&v);
    tmd_call_free(c);
}

/* The instance is the enrolment's, never Node.id's (issue 13): a claim of another
 * instance of the identity is refused once the enrolment is known, in either order. */
Test(meshd_registry, node_id_cannot_claim_another_instance)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_stream *s = tmd_stream_new(c);
    cr_assert_eq(md_stream_note_node_locked(c, 1, "web-1"), 1, "not refused before it is known");
    cr_assert_eq(md_stream_settle_instance_locked(c, "web-2"), 0, "web-2's cert claiming web-1");
    cr_assert_eq(tmd_queued(c), 1);
    cr_assert_eq(tmd_queued_at(c, 0)->code, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert(strstr(tmd_queued_at(c, 0)->msg, "web-2"), "%s", tmd_queued_at(c, 0)->msg);
    tmd_call_free(c);

    c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB); /* enrolment first, then the claim */
    s = tmd_stream_new(c);
    cr_assert_eq(md_stream_settle_instance_locked(c, "web-2"), 1);
    cr_assert_eq(md_stream_note_node_locked(c, 1, "web-1"), 0);
    tmd_call_free(c);

    c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB); /* Node.id = the identity: named by the instance */
    s = tmd_stream_new(c);
    cr_assert_eq(md_stream_settle_instance_locked(c, "web-2"), 1);
    cr_assert_eq(md_stream_note_node_locked(c, 1, TSD_WEB), 1);
    cr_assert_str_eq(s->node_id, "web-2");
    tmd_call_free(c);

    c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB); /* its own name, or <identity>#<name> */
    s = tmd_stream_new(c);
    cr_assert_eq(md_stream_note_node_locked(c, 1, TSD_WEB "#web-2"), 1);
    cr_assert_eq(md_stream_settle_instance_locked(c, "web-2"), 1);
    tmd_call_free(c);

    c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB); /* identity-wide enrolment: any name */
    s = tmd_stream_new(c);
    cr_assert_eq(md_stream_note_node_locked(c, 1, "web-7"), 1);
    cr_assert_eq(md_stream_settle_instance_locked(c, ""), 1);
    cr_assert_str_eq(s->node_id, "web-7");
    tmd_call_free(c);
}
