/* tests/unit/test_meshd_work.c — the worker pool (meshd/meshd_work.c) and the unary
 * methods' intake (meshd/meshd_unary.c): CreateCertificate admission control (at most
 * --max-pending-csr queued, the rest refused at once), the queue's accounting, shutdown,
 * and jobs run by real workers against a real store and CA. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>

#include "ca/ca_revoke.h"
#include "istio/v1/auth/ca.pb-c.h"
#include "meshd/meshd_internal.h"
#include "sds/protocol/ads_codec.h"
#include "tests/unit/test_meshd_util.h"
#include "tests/unit/test_sds_util.h"

static md_ctx *ctx;

static void setup(void)
{
    grpc_init();
    ctx = tmd_ctx_new(NULL);
    ctx->opts.max_pending_csr = 2;
}

static void teardown(void)
{
    /* No workers ran: free what the test left queued. */
    pthread_mutex_lock(&ctx->work.mu);
    md_job *j;
    while ((j = md_workq_pop_locked(&ctx->work)) != NULL)
        md_job_free(j);
    pthread_mutex_unlock(&ctx->work.mu);
    tmd_ctx_free(ctx);
    grpc_shutdown();
}

TestSuite(meshd_admission, .init = setup, .fini = teardown);

static md_job *job(enum md_job_kind kind, md_call *c)
{
    md_job *j = calloc(1, sizeof *j);
    cr_assert_not_null(j);
    j->kind = kind;
    if (c) {
        md_call_ref(c);
        j->call = c;
    }
    return j;
}

static md_job *pop(void)
{
    pthread_mutex_lock(&ctx->work.mu);
    md_job *j = md_workq_pop_locked(&ctx->work);
    pthread_mutex_unlock(&ctx->work.mu);
    return j;
}

Test(meshd_admission, csr_queue_is_bounded)
{
    cr_assert_eq(md_work_submit(ctx, job(MD_JOB_CSR, NULL)), MESH_OK);
    cr_assert_eq(md_work_submit(ctx, job(MD_JOB_CSR, NULL)), MESH_OK);
    cr_assert_eq(md_work_submit(ctx, job(MD_JOB_CSR, NULL)), MESH_EBUSY, "third one: full");
    cr_assert_eq(ctx->work.n, 2, "the refused job is not queued (and was freed)");
    cr_assert_eq(ctx->work.n_csr, 2);
}

/* Admission bounds certificate requests only: streams must still get their
 * first view and rotations must still run while a fleet re-enrols. */
Test(meshd_admission, other_jobs_are_not_limited)
{
    md_work_submit(ctx, job(MD_JOB_CSR, NULL));
    md_work_submit(ctx, job(MD_JOB_CSR, NULL));
    cr_assert_eq(md_work_submit(ctx, job(MD_JOB_STREAM_INIT, NULL)), MESH_OK);
    cr_assert_eq(md_work_submit(ctx, job(MD_JOB_FETCH, NULL)), MESH_OK);
    cr_assert_eq(md_work_submit(ctx, job(MD_JOB_ROTATE, NULL)), MESH_OK);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(md_work_submit(ctx, job(MD_JOB_STREAM_INIT, NULL)), MESH_OK);
    cr_assert_eq(ctx->work.n, 15);
    cr_assert_eq(ctx->work.n_csr, 2);
}

Test(meshd_admission, taking_a_csr_admits_the_next)
{
    md_work_submit(ctx, job(MD_JOB_CSR, NULL));
    md_work_submit(ctx, job(MD_JOB_CSR, NULL));
    cr_assert_eq(md_work_submit(ctx, job(MD_JOB_CSR, NULL)), MESH_EBUSY);
    md_job *j = pop();
    cr_assert_eq(j->kind, MD_JOB_CSR);
    cr_assert_eq(ctx->work.n_csr, 1);
    md_job_free(j);
    cr_assert_eq(md_work_submit(ctx, job(MD_JOB_CSR, NULL)), MESH_OK, "a slot is free again");
    cr_assert_eq(md_work_submit(ctx, job(MD_JOB_CSR, NULL)), MESH_EBUSY);
}

Test(meshd_admission, queue_is_fifo_across_kinds)
{
    cr_assert_null(pop(), "empty queue");
    enum md_job_kind kinds[] = {MD_JOB_STREAM_INIT, MD_JOB_CSR, MD_JOB_ROTATE, MD_JOB_FETCH};
    for (int i = 0; i < 4; i++)
        md_work_submit(ctx, job(kinds[i], NULL));
    for (int i = 0; i < 4; i++) {
        md_job *j = pop();
        cr_assert_not_null(j);
        cr_assert_eq(j->kind, kinds[i], "job %d out of order", i);
        cr_assert_null(j->next, "a taken job is unlinked");
        md_job_free(j);
    }
    cr_assert_null(pop());
    cr_assert_eq(ctx->work.n, 0);
    cr_assert_eq(ctx->work.n_csr, 0);
    cr_assert_null(ctx->work.tail, "emptied: a new job becomes the head");
    md_work_submit(ctx, job(MD_JOB_FETCH, NULL));
    cr_assert_eq(ctx->work.head, ctx->work.tail);
}

/* A refused job's reference on its call is dropped; the refusal itself is the
 * caller's to send (CreateCertificate answers UNAVAILABLE with a hint). */
Test(meshd_admission, refused_csr_releases_its_call)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_CSR, "");
    md_work_submit(ctx, job(MD_JOB_CSR, NULL));
    md_work_submit(ctx, job(MD_JOB_CSR, NULL));
    cr_assert_eq(md_work_submit(ctx, job(MD_JOB_CSR, c)), MESH_EBUSY);
    cr_assert_eq(tmd_refs(c), 1);
    cr_assert_eq(tmd_queued(c), 0, "submit does not answer a full queue itself");
    tmd_call_free(c);
}

Test(meshd_admission, stopping_pool_finishes_the_call)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_FETCH, TSD_WEB);
    md_work_stop(ctx); /* no workers: only sets stop */
    cr_assert_eq(md_work_submit(ctx, job(MD_JOB_FETCH, c)), MESH_EBUSY);
    cr_assert_eq(tmd_refs(c), 1);
    cr_assert_eq(tmd_queued(c), 1);
    cr_assert_eq(tmd_queued_at(c, 0)->code, GRPC_STATUS_UNAVAILABLE);
    cr_assert_not_null(strstr(tmd_queued_at(c, 0)->msg, "shutting down"));
    /* A caller holding the call's mutex finishes it itself. */
    md_call *d = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    pthread_mutex_lock(&d->mu);
    cr_assert_eq(md_work_submit_locked(ctx, job(MD_JOB_STREAM_INIT, d)), MESH_EBUSY);
    pthread_mutex_unlock(&d->mu);
    cr_assert_eq(tmd_queued(d), 0);
    cr_assert_eq(tmd_refs(d), 1);
    cr_assert_eq(md_work_submit(ctx, job(MD_JOB_CSR, NULL)), MESH_EBUSY, "nothing is queued");
    cr_assert_eq(ctx->work.n, 0);
    tmd_call_free(c);
    tmd_call_free(d);
}

/* ---- CreateCertificate intake (meshd_unary.c) --------------------------------------- */

static void add_md(md_call *c, const char *key, const char *val, size_t vlen)
{
    grpc_metadata_array *a = &c->req_md;
    if (a->count == a->capacity) {
        a->capacity = a->capacity ? 2 * a->capacity : 4;
        a->metadata = gpr_realloc(a->metadata, a->capacity * sizeof *a->metadata);
    }
    memset(&a->metadata[a->count], 0, sizeof a->metadata[0]);
    a->metadata[a->count].key = grpc_slice_from_static_string(key);
    a->metadata[a->count].value = grpc_slice_from_static_buffer(val, vlen);
    a->count++;
}

static void send_csr(md_call *c)
{
    Istio__V1__Auth__IstioCertificateRequest m = ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
    m.csr = "-----BEGIN CERTIFICATE REQUEST-----\n...\n";
    m.validity_duration = 3600;
    uint8_t buf[256];
    size_t len = istio__v1__auth__istio_certificate_request__pack(&m, buf);
    md_unary_on_message(c, buf, len);
}

Test(meshd_admission, create_certificate_is_queued_with_its_metadata)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_CSR, "");
    static const char authz[] = "Bearer mjt_0123";
    add_md(c, "authorization", authz, strlen(authz));
    send_csr(c);
    cr_assert_eq(tmd_queued(c), 0, "answered later, by a worker");
    cr_assert_eq(ctx->work.n_csr, 1);
    md_job *j = pop();
    cr_assert_eq(j->kind, MD_JOB_CSR);
    cr_assert_eq(j->call, c);
    cr_assert_eq(tmd_refs(c), 2, "the job holds the call");
    cr_assert_str_eq(j->authorization, authz);
    cr_assert_null(j->expired_svid);
    Istio__V1__Auth__IstioCertificateRequest *m = j->msg;
    cr_assert_eq(m->validity_duration, 3600);
    md_job_free(j);
    cr_assert_eq(tmd_refs(c), 1);
    tmd_call_free(c);
}

Test(meshd_admission, create_certificate_beyond_the_limit_is_unavailable)
{
    md_work_submit(ctx, job(MD_JOB_CSR, NULL));
    md_work_submit(ctx, job(MD_JOB_CSR, NULL));
    md_call *c = tmd_call_new(ctx, MD_CALL_CSR, "");
    send_csr(c);
    cr_assert_eq(tmd_queued(c), 1);
    const md_out *o = tmd_queued_at(c, 0);
    cr_assert_eq(o->code, GRPC_STATUS_UNAVAILABLE, "clients retry UNAVAILABLE with backoff");
    cr_assert_not_null(strstr(o->msg, "2 certificate requests are queued"), "%s", o->msg);
    cr_assert_not_null(strstr(o->msg, "retry with backoff"));
    cr_assert_eq(tmd_refs(c), 1, "no job keeps it");
    cr_assert_eq(ctx->work.n_csr, 2);
    tmd_call_free(c);
}

Test(meshd_admission, create_certificate_bad_input)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_CSR, "");
    static const uint8_t junk[] = {0x0a, 0x80};
    md_unary_on_message(c, junk, sizeof junk);
    cr_assert_eq(tmd_queued_at(c, 0)->code, GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(ctx->work.n, 0);
    tmd_call_free(c);

    static char big[4200];
    memset(big, 'a', sizeof big);
    c = tmd_call_new(ctx, MD_CALL_CSR, "");
    add_md(c, "authorization", big, sizeof big);
    send_csr(c);
    cr_assert_eq(tmd_queued(c), 1);
    cr_assert_eq(tmd_queued_at(c, 0)->code, GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(tmd_queued_at(c, 0)->msg, "too long"));
    cr_assert_eq(ctx->work.n, 0, "refused before it takes a slot");
    tmd_call_free(c);
}

/* ---- FetchSecrets intake -------------------------------------------------------------- */

static void send_fetch(md_call *c, const char *const *names, size_t n)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = {0};
    cr_assert_eq(ads_request_encode(XDS_TYPE_URL_SECRET, "", "", names, n, "web-1", NULL, &buf, &len,
                                    &err),
                 MESH_OK, "%s", err.msg);
    md_unary_on_message(c, buf, len);
    free(buf);
}

Test(meshd_admission, fetch_secrets_checks_before_queueing)
{
    const char *mine[] = {"default", "ROOTCA"};
    md_call *anon = tmd_call_new(ctx, MD_CALL_FETCH, "");
    send_fetch(anon, mine, 2);
    cr_assert_eq(tmd_queued_at(anon, 0)->code, GRPC_STATUS_UNAUTHENTICATED);
    tmd_call_free(anon);

    md_call *c = tmd_call_new(ctx, MD_CALL_FETCH, TSD_WEB);
    snprintf(c->pubkey_sha, sizeof c->pubkey_sha, "%064d", 0);
    const char *foreign[] = {"default", TSD_API};
    send_fetch(c, foreign, 2);
    cr_assert_eq(tmd_queued_at(c, 0)->code, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert_eq(ctx->work.n, 0);
    tmd_call_free(c);

    c = tmd_call_new(ctx, MD_CALL_FETCH, TSD_WEB);
    snprintf(c->pubkey_sha, sizeof c->pubkey_sha, "%064d", 0);
    send_fetch(c, mine, 2);
    cr_assert_eq(tmd_queued(c), 0);
    md_job *j = pop();
    cr_assert_not_null(j);
    cr_assert_eq(j->kind, MD_JOB_FETCH);
    cr_assert_eq(((ads_decoded *)j->msg)->req.n_names, 2);
    md_job_free(j);
    tmd_call_free(c);
}

/* ---- jobs on real workers ------------------------------------------------------------- */

static tsd_env env;

static void pool_setup(void)
{
    grpc_init();
    tsd_setup(&env);
    ctx = tmd_ctx_new(env.db);
    ctx->opts.workers = 1;
    tmd_cache_config(ctx, TMD_MESH_YAML, 1);
    tmd_cache_cas(ctx, env.st);
    tmd_watch_tables(ctx);
}

static void pool_teardown(void)
{
    md_watch_stop(ctx);
    tmd_ctx_free(ctx);
    tsd_teardown(&env);
    grpc_shutdown();
}

TestSuite(meshd_jobs, .init = pool_setup, .fini = pool_teardown);

static void run_on_worker(void (*fn)(md_worker *, md_job *), md_job *j)
{
    tmd_run_job(ctx, &env, fn, j);
}

static md_job *stream_init_job(md_call *c)
{
    md_job *j = job(MD_JOB_STREAM_INIT, c);
    return j;
}

Test(meshd_jobs, stream_init_installs_the_first_view)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    char serial[48];
    tmd_connect_with_svid(&env, c, 3600, serial, NULL);
    md_stream *s = tmd_stream_new(c);
    run_on_worker(md_job_stream_init, stream_init_job(c));
    cr_assert(s->view_ready);
    cr_assert_not_null(s->snap);
    cr_assert_eq(s->cfg_gen, 1);
    cr_assert(s->svid.found);
    cr_assert_str_eq(s->svid.serial_hex, serial, "the SVID of the key it connected with");
    cr_assert_eq(s->secrets->set.n, 4);
    cr_assert(c->registered, "the worker registers the stream once its view key is known");
    md_registry_remove(ctx, c);
    cr_assert_eq(tmd_refs(c), 1, "the job's reference is gone");
    tmd_call_free(c);
}

/* The stream closed while its first view was queued: the worker must not touch it. */
Test(meshd_jobs, stream_closed_while_queued_is_left_alone)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    tmd_connect_with_svid(&env, c, 3600, NULL, NULL);
    md_stream *s = tmd_stream_new(c);
    c->closed = 1;
    run_on_worker(md_job_stream_init, stream_init_job(c));
    cr_assert_eq(s->view_ready, 0);
    cr_assert_null(s->snap);
    cr_assert_null(s->secrets);
    cr_assert_eq(tmd_queued(c), 0);
    tmd_call_free(c);

    c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB); /* finishing: status already queued */
    tmd_connect_with_svid(&env, c, 3600, NULL, NULL);
    s = tmd_stream_new(c);
    c->finishing = 1;
    run_on_worker(md_job_stream_init, stream_init_job(c));
    cr_assert_eq(s->view_ready, 0);
    cr_assert_null(s->snap);
    tmd_call_free(c);
}

/* The job usually runs before the stream's first request is read: the refusal waits
 * for the node's name (so proxy status can show the node as stranded), then ends the
 * stream telling the sidecar why and what it needs. */
Test(meshd_jobs, stream_with_a_revoked_certificate_is_refused_once_its_node_is_named)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_SDS, TSD_WEB);
    char serial[48];
    tmd_connect_with_svid(&env, c, 3600, serial, NULL);
    md_stream *s = tmd_stream_new(c);
    snprintf(s->presented_serial, sizeof s->presented_serial, "%s", serial);
    mesh_err err = {0};
    ca_revoke_result r;
    cr_assert_eq(ca_revoke(env.st, serial, "keyCompromise", "test", md_now(), &r, &err),
                 MESH_OK, "%s", err.msg);
    ca_revoke_result_free(&r);
    run_on_worker(md_job_stream_init, stream_init_job(c));
    cr_assert_eq(s->view_ready, 0, "a revoked certificate gets no secrets");
    cr_assert_eq(tmd_queued(c), 0, "waiting for the node's name");
    cr_assert_not_null(s->refusal);
    pthread_mutex_lock(&c->mu);
    cr_assert_eq(md_stream_note_node_locked(c, 1, "web-1"), 0, "the first request is refused");
    pthread_mutex_unlock(&c->mu);
    cr_assert_eq(tmd_queued(c), 1);
    const md_out *o = tmd_queued_at(c, 0);
    cr_assert(o->has_status);
    cr_assert_eq(o->code, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert_not_null(strstr(o->msg, serial), "%s", o->msg);
    cr_assert_not_null(strstr(o->msg, "keyCompromise"), "%s", o->msg);
    cr_assert_not_null(strstr(o->msg, "new key"), "what the workload needs: %s", o->msg);
    cr_assert_not_null(strstr(o->msg, "meshctl workload token " TSD_WEB), "%s", o->msg);
    md_registry_remove(ctx, c); /* what the close completion does */
    tmd_call_free(c);
}

Test(meshd_jobs, stream_with_a_revoked_certificate_and_a_named_node_is_refused_at_once)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    char serial[48];
    tmd_connect_with_svid(&env, c, 3600, serial, NULL);
    md_stream *s = tmd_stream_new(c);
    snprintf(s->presented_serial, sizeof s->presented_serial, "%s", serial);
    pthread_mutex_lock(&c->mu);
    cr_assert_eq(md_stream_note_node_locked(c, 1, "web-1"), 1);
    pthread_mutex_unlock(&c->mu);
    mesh_err err = {0};
    ca_revoke_result r;
    cr_assert_eq(ca_revoke(env.st, serial, "superseded", "test", md_now(), &r, &err), MESH_OK,
                 "%s", err.msg);
    ca_revoke_result_free(&r);
    run_on_worker(md_job_stream_init, stream_init_job(c));
    cr_assert_eq(tmd_queued(c), 1);
    const md_out *o = tmd_queued_at(c, 0);
    cr_assert_eq(o->code, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert_not_null(strstr(o->msg, "superseded"), "%s", o->msg);
    cr_assert_not_null(strstr(o->msg, "renew over mTLS with a new key"),
                       "superseded may re-key by itself: %s", o->msg);
    md_registry_remove(ctx, c);
    tmd_call_free(c);
}

static md_job *rotate_job(md_call *c, const char *key)
{
    md_job *j = job(MD_JOB_ROTATE, NULL);
    j->spiffe_id = strdup(c->spiffe_id);
    j->cert_pem = strdup(c->peer_cert_pem ? c->peer_cert_pem : "not a certificate");
    snprintf(j->rot_key, sizeof j->rot_key, "%s", key);
    j->ttl = 3600;
    return j;
}

static size_t certs_for(const char *id, const char *pubkey_sha)
{
    store_cert *list = NULL;
    size_t n = 0, match = 0;
    mesh_err err = {0};
    cr_assert_eq(store_cert_list(env.st, id, 0, md_now(), &list, &n, &err), MESH_OK, "%s",
                 err.msg);
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].pubkey_sha256, pubkey_sha) == 0)
            match++;
    store_cert_free_list(list, n);
    return match;
}

/* Through the pool: start, queue, stop (which drains the queue first). */
Test(meshd_jobs, rotation_renews_for_the_same_key_and_wakes_the_watcher)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    tmd_connect_with_svid(&env, c, 3600, NULL, NULL);
    char key[600];
    snprintf(key, sizeof key, "%s|%s", c->spiffe_id, c->pubkey_sha);
    cr_assert_eq(md_watch_rotation_claim(&ctx->watch, key, md_now()), 1);
    mesh_err err = {0};
    cr_assert_eq(md_work_start(ctx, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(md_work_submit(ctx, rotate_job(c, key)), MESH_OK);
    md_work_stop(ctx);
    cr_assert_eq(certs_for(TSD_WEB, c->pubkey_sha), 2, "a second SVID for the same key");
    cr_assert_null(md_map_get(ctx->watch.rotating, key), "the claim is released");
    cr_assert_null(md_map_get(ctx->watch.rot_backoff, key));
    cr_assert_not_null(md_map_get(ctx->watch.dirty, TSD_WEB), "the watcher will push it");
    tmd_call_free(c);
}

Test(meshd_jobs, failed_rotation_backs_off)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB); /* no certificate to re-certify */
    char key[600];
    snprintf(key, sizeof key, "%s|%s", c->spiffe_id, "00");
    md_watch_rotation_claim(&ctx->watch, key, md_now());
    run_on_worker(md_job_rotate, rotate_job(c, key));
    cr_assert_null(md_map_get(ctx->watch.rotating, key));
    cr_assert_not_null(md_map_get(ctx->watch.rot_backoff, key), "retried later, not at once");
    cr_assert_eq(md_watch_rotation_claim(&ctx->watch, key, md_now()), 0);
    tmd_call_free(c);
}

Test(meshd_jobs, pool_that_cannot_open_its_store_fails_to_start)
{
    ctx->opts.db_path = "/nonexistent-dir/mesh.db";
    mesh_err err = {0};
    cr_assert_neq(md_work_start(ctx, &err), MESH_OK);
    cr_assert_not_null(strstr(err.msg, "worker 0"), "%s", err.msg);
    cr_assert_eq(ctx->work.n_workers, 0);
    cr_assert_null(ctx->work.workers);
}

/* ---- unary jobs answered by a worker -------------------------------------------------- */

static md_job *csr_job(md_call *c, const char *csr_pem, const char *authorization)
{
    Istio__V1__Auth__IstioCertificateRequest m = ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
    m.csr = (char *)csr_pem;
    m.validity_duration = 3600;
    size_t len = istio__v1__auth__istio_certificate_request__get_packed_size(&m);
    uint8_t *buf = malloc(len);
    istio__v1__auth__istio_certificate_request__pack(&m, buf);
    md_job *j = job(MD_JOB_CSR, c);
    j->msg = istio__v1__auth__istio_certificate_request__unpack(NULL, len, buf);
    free(buf);
    j->authorization = authorization ? strdup(authorization) : NULL;
    return j;
}

Test(meshd_jobs, create_certificate_with_a_join_token)
{
    char *token = tsd_token(&env, TSD_WEB);
    char authz[256];
    snprintf(authz, sizeof authz, "Bearer %s", token);
    char *csr = tsd_csr(TSD_WEB, NULL);
    md_call *c = tmd_call_new(ctx, MD_CALL_CSR, ""); /* first contact: no client cert */
    run_on_worker(md_job_csr, csr_job(c, csr, authz));
    cr_assert_eq(tmd_queued(c), 1);
    const md_out *o = tmd_queued_at(c, 0);
    cr_assert_eq(o->code, GRPC_STATUS_OK, "%s", o->msg);
    size_t len = 0;
    uint8_t *buf = tmd_bytes_at(c, 0, &len);
    Istio__V1__Auth__IstioCertificateResponse *r =
        istio__v1__auth__istio_certificate_response__unpack(NULL, len, buf);
    free(buf);
    cr_assert_not_null(r);
    cr_assert_geq(r->n_cert_chain, 1);
    cr_assert_not_null(strstr(r->cert_chain[0], "BEGIN CERTIFICATE"));
    cr_assert_not_null(r->root_cert);
    cr_assert_geq(r->root_cert->n_ca_cert, 1);
    istio__v1__auth__istio_certificate_response__free_unpacked(r, NULL);
    cr_assert_not_null(md_map_get(ctx->watch.dirty, TSD_WEB),
                       "streams of web may hold this key: the watcher looks");
    tmd_call_free(c);
    free(csr);
    free(token);
}

Test(meshd_jobs, create_certificate_refused_without_credentials)
{
    char *csr = tsd_csr(TSD_WEB, NULL);
    md_call *c = tmd_call_new(ctx, MD_CALL_CSR, "");
    run_on_worker(md_job_csr, csr_job(c, csr, "Bearer mjt_not-a-real-token"));
    cr_assert_eq(tmd_queued(c), 1);
    const md_out *o = tmd_queued_at(c, 0);
    cr_assert_eq(o->code, GRPC_STATUS_UNAUTHENTICATED);
    cr_assert_null(o->bb, "no certificate");
    cr_assert_not_null(strstr(o->msg, "join token"), "the refusal says why: %s", o->msg);
    cr_assert_null(md_map_get(ctx->watch.dirty, TSD_WEB));
    tmd_call_free(c);
    free(csr);
}

Test(meshd_jobs, fetch_secrets_returns_the_names_asked_for)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_FETCH, TSD_WEB);
    tmd_connect_with_svid(&env, c, 3600, NULL, NULL);
    const char *names[] = {"ROOTCA"};
    uint8_t *req = NULL;
    size_t req_len = 0;
    mesh_err err = {0};
    cr_assert_eq(ads_request_encode(XDS_TYPE_URL_SECRET, "", "", names, 1, "web-1", NULL, &req,
                                    &req_len, &err),
                 MESH_OK, "%s", err.msg);
    ads_decoded *d = calloc(1, sizeof *d);
    cr_assert_eq(ads_request_decode(req, req_len, d, &err), MESH_OK, "%s", err.msg);
    free(req);
    md_job *j = job(MD_JOB_FETCH, c);
    j->msg = d;
    run_on_worker(md_job_fetch, j);
    cr_assert_eq(tmd_queued(c), 1);
    cr_assert_eq(tmd_queued_at(c, 0)->code, GRPC_STATUS_OK, "%s", tmd_queued_at(c, 0)->msg);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = tmd_response_at(c, 0);
    cr_assert_str_eq(r->type_url, XDS_TYPE_URL_SECRET);
    cr_assert_eq(r->n_resources, 1, "only what was asked for");
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    tmd_call_free(c);
}
