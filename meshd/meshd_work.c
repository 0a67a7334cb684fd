/* meshd/meshd_work.c — the worker pool: jobs that need the store or the CA.
 *
 * One FIFO, M threads, each with its own mesh_store handle (SQLite handles
 * are single-threaded) and its own loaded CA, reloaded when the watcher
 * bumps the CA generation after a CA rotation. Keeping SQLite and signing
 * off the completion-queue threads keeps every stream responsive while
 * certificates are being issued. */
#include "meshd/meshd_internal.h"

#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_pubkey.h"
#include "ca/csr.h"
#include "istio/v1/auth/ca.pb-c.h"
#include "sds/protocol/ads_codec.h"
#include "meshd/meshd_proxyless.h"

void md_job_free(md_job *j)
{
    if (!j)
        return;
    if (j->msg) {
        if (j->kind == MD_JOB_CSR) {
            istio__v1__auth__istio_certificate_request__free_unpacked(j->msg, NULL);
        } else if (j->kind == MD_JOB_FETCH) {
            ads_decoded_free(j->msg);
            free(j->msg);
        }
    }
    if (j->authorization)
        OPENSSL_cleanse(j->authorization, strlen(j->authorization)); /* a join token */
    free(j->authorization);
    free(j->expired_svid);
    free(j->spiffe_id);
    free(j->cert_pem);
    if (j->call)
        md_call_unref(j->call);
    free(j);
}

int md_worker_ca(md_worker *w, mesh_ca **out, mesh_err *err)
{
    uint64_t gen = atomic_load(&w->ctx->cache.ca_gen);
    if (!w->ca || w->ca_gen != gen) {
        mesh_ca *ca = NULL;
        int rc = ca_load(w->st, &ca, err);
        if (rc != MESH_OK) {
            if (!w->ca)
                return rc;
            log_warn("meshd", "worker %d: cannot reload the CA (%s); signing with CA #%lld",
                     w->idx, err->msg, (long long)ca_id(w->ca));
        } else {
            ca_free(w->ca);
            w->ca = ca;
            w->ca_gen = gen;
        }
    }
    *out = w->ca;
    return MESH_OK;
}

/* The instance the certificate with serial `presented` was enrolled for, as
 * its issuance record says ("" = identity-wide, also for a certificate meshd
 * has no record of, which then gets the identity's view as before instances
 * existed). MESH_OK or a store error. */
static int enrolled_instance(mesh_store *st, const char *presented, char *out, size_t n,
                             mesh_err *err)
{
    out[0] = '\0';
    if (!presented[0])
        return MESH_OK;
    store_cert rec;
    int rc = store_cert_get(st, presented, &rec, err);
    if (rc == MESH_ENOTFOUND)
        return MESH_OK;
    if (rc == MESH_OK)
        snprintf(out, n, "%s", rec.instance ? rec.instance : "");
    store_cert_free(&rec);
    return rc;
}

/* "<SPIFFE ID>#<instance>" (malloc'd), the snapshot key of an enrolled instance. */
static char *instance_key(const char *spiffe_id, const char *instance)
{
    size_t len = strlen(spiffe_id) + 1 + strlen(instance) + 1;
    char *key = malloc(len);
    if (key)
        snprintf(key, len, "%s%c%s", spiffe_id, MD_INSTANCE_KEY_SEP, instance);
    return key;
}

/* Reads the stream's enrolled instance, gives the stream its view key and
 * registers it (so the watcher sees it with its final key). 0 when the call
 * is over or was refused. */
static int settle_stream(md_worker *w, md_call *c, const char *presented)
{
    char instance[128];
    mesh_err err = {0};
    if (enrolled_instance(w->st, presented, instance, sizeof instance, &err) == MESH_OK) {
        md_cache_remember_enrolment(w->ctx, presented, instance);
    } else if (md_cache_enrolment(w->ctx, presented, instance, sizeof instance)) {
        /* The store is unreachable, but this replica has read the enrolment
         * before: a sidecar that reconnects keeps being served what we hold. */
        log_warn("meshd", "stream of %s (%s): reading the enrolment of certificate %s: %s; "
                          "serving it the instance it was enrolled for as last read",
                 c->spiffe_id, c->peer_addr, presented, err.msg);
    } else {
        /* Without the instance the right view is unknown: the union of the
         * identity's workloads could be another replica's. */
        log_warn("meshd", "stream of %s (%s): reading the enrolment of certificate %s: %s",
                 c->spiffe_id, c->peer_addr, presented, err.msg);
        md_call_finish(c, GRPC_STATUS_UNAVAILABLE,
                       "meshd cannot read its store right now; retry with backoff");
        return 0;
    }
    char *key = instance[0] ? instance_key(c->spiffe_id, instance) : NULL;
    if (instance[0] && !key) {
        md_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "meshd is out of memory");
        return 0;
    }
    pthread_mutex_lock(&c->mu);
    int ok = !c->closed && !c->finishing && md_stream_settle_instance_locked(c, instance);
    if (ok) {
        c->stream->view_key = key;
        key = NULL;
        /* Under c->mu, which md_call_on_close takes to set closed before it
         * unregisters: a call that closed meanwhile is never registered (it
         * would leak, refreshed by the watcher forever, and block shutdown). */
        md_registry_add(w->ctx, c);   /* takes reg_mu: a leaf lock under c->mu */
    }
    pthread_mutex_unlock(&c->mu);
    free(key);
    return ok;
}

void md_job_stream_init(md_worker *w, md_job *j)
{
    md_call *c = j->call;
    md_ctx *ctx = w->ctx;
    if (c->plaintext) {
        md_job_proxyless_init(w, j);   /* no certificate, no secrets: meshd/meshd_proxyless.c */
        return;
    }
    pthread_mutex_lock(&c->mu);
    int gone = c->closed || c->finishing;
    char presented[48];
    snprintf(presented, sizeof presented, "%s", c->stream->presented_serial);
    pthread_mutex_unlock(&c->mu);
    if (gone || !settle_stream(w, c, presented))
        return;
    /* Generations first: anything that changes after we read them makes the
     * watcher refresh this stream on its next pass. */
    uint64_t cert_gen = atomic_load(&ctx->cache.cert_gen);
    uint64_t cfg_gen = 0, bundle_gen = 0;
    md_snap *snap = md_cache_snapshot(ctx, md_call_view_key(c), &cfg_gen);
    sds_bundle *bundle = md_cache_bundle(ctx, &bundle_gen);
    md_cas *cas = md_cache_cas(ctx);
    sds_svid svid;
    memset(&svid, 0, sizeof svid);
    mesh_err err = {0};
    int revoked = 0;
    if (!cas || sds_svid_lookup(w->st, c->spiffe_id, c->pubkey_sha, cas->list, cas->n, md_now(),
                                presented, &revoked, &svid, &err) != MESH_OK) {
        log_warn("meshd", "looking up the SVID of %s: %s; retrying on the next pass",
                 c->spiffe_id, cas ? err.msg : "CA list not loaded");
        cert_gen = 0;
    }
    if (revoked) {
        md_stream_refuse_revoked(c, w->st);
    } else if (bundle) {
        pthread_mutex_lock(&c->mu);
        if (!c->closed && !c->finishing) {
            md_view_update u = {.set_snap = 1, .snap = snap, .cfg_gen = cfg_gen,
                                .svid = &svid, .cert_gen = cert_gen,
                                .bundle = bundle, .bundle_gen = bundle_gen};
            md_stream_update_locked(c, &u);
            snap = u.snap; /* NULL: taken over */
        }
        pthread_mutex_unlock(&c->mu);
    }
    if (snap)
        md_snap_unref(snap);
    sds_svid_free(&svid);
    sds_bundle_unref(bundle);
    if (cas)
        md_cas_unref(cas);
}

void md_job_rotate(md_worker *w, md_job *j)
{
    md_ctx *ctx = w->ctx;
    mesh_err err = {0};
    mesh_ca *ca = NULL;
    X509 *x = NULL;
    ca_issued iss;
    memset(&iss, 0, sizeof iss);
    int rc = md_worker_ca(w, &ca, &err);
    if (rc == MESH_OK)
        rc = pem_read_cert(j->cert_pem, &x, &err);
    if (rc == MESH_OK)
        rc = ca_issue_for_pubkey(ca, w->st, X509_get0_pubkey(x), j->spiffe_id, j->instance,
                                 j->ttl, "meshd", &iss, &err);
    if (rc != MESH_OK)
        log_error("meshd", "rotating the SVID of %s failed: %s", j->spiffe_id, err.msg);
    else
        log_info("meshd", "rotated %s: serial %s valid until %lld", j->spiffe_id,
                 iss.serial_hex, (long long)iss.not_after);
    X509_free(x);
    ca_issued_free(&iss);
    md_watch_cert_changed(ctx, j->spiffe_id, j->rot_key, rc == MESH_OK);
}

static void run_job(md_worker *w, md_job *j)
{
    switch (j->kind) {
    case MD_JOB_STREAM_INIT: md_job_stream_init(w, j); break;
    case MD_JOB_CSR: md_job_csr(w, j); break;
    case MD_JOB_FETCH: md_job_fetch(w, j); break;
    case MD_JOB_ROTATE: md_job_rotate(w, j); break;
    }
}

md_job *md_workq_pop_locked(md_workq *q)
{
    md_job *j = q->head;
    if (!j)
        return NULL;
    q->head = j->next;
    if (!q->head)
        q->tail = NULL;
    j->next = NULL;
    q->n--;
    if (j->kind == MD_JOB_CSR)
        q->n_csr--; /* admits the next CreateCertificate */
    return j;
}

static void *worker_main(void *arg)
{
    md_worker *w = arg;
    md_workq *q = &w->ctx->work;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (!q->head && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        md_job *j = md_workq_pop_locked(q);
        if (!j) { /* stop requested and nothing left */
            pthread_mutex_unlock(&q->mu);
            break;
        }
        pthread_mutex_unlock(&q->mu);
        int64_t waited = md_now_ms() - j->enqueued_ms;
        if (waited > 1000)
            log_warn("meshd", "worker %d: job waited %lld ms in the queue", w->idx,
                     (long long)waited);
        run_job(w, j);
        md_job_free(j);
    }
    return NULL;
}

/* finish_on_stop: when the pool is stopping, finish the job's call (which
 * takes its mutex, so the caller must not hold it). */
static int submit(md_ctx *ctx, md_job *j, int finish_on_stop)
{
    md_workq *q = &ctx->work;
    j->next = NULL;
    j->enqueued_ms = md_now_ms();
    pthread_mutex_lock(&q->mu);
    if (q->stop || (j->kind == MD_JOB_CSR && q->n_csr >= ctx->opts.max_pending_csr)) {
        int stopping = q->stop;
        pthread_mutex_unlock(&q->mu);
        if (stopping && j->call && finish_on_stop)
            md_call_finish(j->call, GRPC_STATUS_UNAVAILABLE, "meshd is shutting down");
        md_job_free(j);
        return MESH_EBUSY;
    }
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
    if (j->kind == MD_JOB_CSR)
        q->n_csr++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return MESH_OK;
}

int md_work_submit(md_ctx *ctx, md_job *j)
{
    return submit(ctx, j, 1);
}

int md_work_submit_locked(md_ctx *ctx, md_job *j)
{
    return submit(ctx, j, 0);
}

int md_work_start(md_ctx *ctx, mesh_err *err)
{
    md_workq *q = &ctx->work;
    q->n_workers = ctx->opts.workers;
    q->workers = calloc((size_t)q->n_workers, sizeof *q->workers);
    if (!q->workers)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    for (int i = 0; i < q->n_workers; i++) {
        md_worker *w = &q->workers[i];
        w->ctx = ctx;
        w->idx = i;
        int rc = store_open(&w->st, ctx->opts.db_path, err);
        if (rc == MESH_OK)
            rc = ca_load(w->st, &w->ca, err);
        if (rc == MESH_OK) {
            w->ca_gen = atomic_load(&ctx->cache.ca_gen);
            if (pthread_create(&w->th, NULL, worker_main, w) != 0)
                rc = mesh_err_set(err, MESH_EINTERNAL, "cannot start worker thread %d", i);
        }
        if (rc != MESH_OK) {
            ca_free(w->ca);
            w->ca = NULL;
            store_close(w->st);
            w->st = NULL;
            q->n_workers = i;
            md_work_stop(ctx);
            return mesh_err_prefix(err, "starting worker %d", i);
        }
    }
    return MESH_OK;
}

void md_work_stop(md_ctx *ctx)
{
    md_workq *q = &ctx->work;
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->n_workers; i++) {
        pthread_join(q->workers[i].th, NULL);
        ca_free(q->workers[i].ca);
        store_close(q->workers[i].st);
    }
    free(q->workers);
    q->workers = NULL;
    q->n_workers = 0;
}
