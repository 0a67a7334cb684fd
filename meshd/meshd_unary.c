/* meshd/meshd_unary.c — the unary methods: CreateCertificate and FetchSecrets.
 *
 * The CQ thread decodes the request and does the cheap checks; anything
 * touching the store or the CA runs on a worker, which sends the reply
 * (message and status in one batch). CreateCertificate has admission
 * control: past --max-pending-csr queued requests, new ones get UNAVAILABLE
 * at once, so a fleet reconnecting after an outage backs off instead of
 * piling up behind fsyncs. */
#include "meshd/meshd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "istio/v1/auth/ca.pb-c.h"
#include "ca/csr.h"
#include "sds/protocol/ads_codec.h"
#include "sds/certsvc/cert_service.h"
#include "common/mgrpc.h"
#include "common/pb_groups.h"
#include "sds/protocol/sds_names.h"
#include "sds/certsvc/svid_recover.h"

/* Copy of a metadata value, NULL if absent; *too_long set if it exceeds max. */
static char *md_value(const grpc_metadata_array *md, const char *key, size_t max, int *too_long)
{
    char *buf = malloc(max + 1);
    if (!buf)
        return NULL;
    long n = mgrpc_md_get(md, key, buf, max + 1);
    if (n == -2)
        *too_long = 1;
    if (n < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void csr_on_message(md_call *c, const uint8_t *buf, size_t len)
{
    /* pb_unpack: an unknown field of group wire type is skipped, as upstream does. */
    mesh_err err = {0};
    Istio__V1__Auth__IstioCertificateRequest *m =
        (Istio__V1__Auth__IstioCertificateRequest *)pb_unpack(
            &istio__v1__auth__istio_certificate_request__descriptor, buf, len, &err);
    if (!m) {
        md_audit_refusal(c->ctx, c, "cert.denied", "", err.msg);
        md_call_finish(c, err.code == MESH_ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                                  : GRPC_STATUS_INVALID_ARGUMENT,
                       err.msg);
        return;
    }
    int too_long = 0;
    md_job *j = calloc(1, sizeof *j);
    if (!j) {
        istio__v1__auth__istio_certificate_request__free_unpacked(m, NULL);
        md_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "meshd is out of memory");
        return;
    }
    j->kind = MD_JOB_CSR;
    j->msg = m;
    j->authorization = md_value(&c->req_md, "authorization", 4096, &too_long);
    j->expired_svid = md_value(&c->req_md, CERT_RECOVER_HEADER, SVID_RECOVER_MAX_B64, &too_long);
    if (too_long) {
        md_job_free(j);
        md_audit_refusal(c->ctx, c, "cert.denied", "",
                         "authorization or " CERT_RECOVER_HEADER " metadata is too long");
        md_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT,
                       "authorization or " CERT_RECOVER_HEADER " metadata is too long");
        return;
    }
    md_call_ref(c);
    j->call = c;
    if (md_work_submit(c->ctx, j) == MESH_EBUSY) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "meshd is busy: %zu certificate requests are queued; retry with backoff",
                 c->ctx->opts.max_pending_csr);
        log_warn("meshd", "CreateCertificate from %s refused: %s", c->peer_addr, msg);
        md_call_finish(c, GRPC_STATUS_UNAVAILABLE, msg);
    }
}

static void fetch_on_message(md_call *c, const uint8_t *buf, size_t len)
{
    md_ctx *ctx = c->ctx;
    if (!c->spiffe_id[0] || !c->pubkey_sha[0]) {
        md_audit_refusal(ctx, c, "sds.denied", c->method,
                         c->peer_cert_pem ? "client certificate without exactly one URI SAN"
                                          : "no client certificate");
        md_call_finish(c, GRPC_STATUS_UNAUTHENTICATED,
                       "FetchSecrets needs mTLS with a meshd-issued SVID");
        return;
    }
    ads_decoded *d = calloc(1, sizeof *d);
    mesh_err err = {0};
    if (!d) {
        md_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "meshd is out of memory");
        return;
    }
    if (ads_request_decode(buf, len, d, &err) != MESH_OK) {
        free(d);
        md_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, err.msg);
        return;
    }
    for (size_t i = 0; i < d->req.n_names; i++) {
        if (sds_name_classify(d->req.names[i], c->spiffe_id, ctx->trust_domain, &err) ==
            SDS_NAME_DENIED) {
            char detail[700];
            snprintf(detail, sizeof detail, "FetchSecrets: %s", err.msg);
            md_audit_refusal(ctx, c, "sds.denied", d->req.names[i], detail);
            ads_decoded_free(d);
            free(d);
            md_call_finish(c, GRPC_STATUS_PERMISSION_DENIED, err.msg);
            return;
        }
    }
    md_job *j = calloc(1, sizeof *j);
    if (!j) {
        ads_decoded_free(d);
        free(d);
        md_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "meshd is out of memory");
        return;
    }
    j->kind = MD_JOB_FETCH;
    j->msg = d;
    md_call_ref(c);
    j->call = c;
    md_work_submit(ctx, j);
}

void md_unary_on_message(md_call *c, const uint8_t *buf, size_t len)
{
    if (c->kind == MD_CALL_CSR)
        csr_on_message(c, buf, len);
    else
        fetch_on_message(c, buf, len);
}

/* cert_service's refusal rows go through meshd's rate-limited audit queue,
 * and are logged there (meshd_audit.c). */
static void csr_audit(void *arg, const char *actor, const char *action, const char *subject,
                      const char *detail, int ok)
{
    md_ctx *ctx = arg;
    if (!md_audit_admit(ctx, actor, md_now_ms()))
        return;
    md_status_audit_ungated(ctx, actor, action, subject, detail, ok);
    log_warn("meshd", "%s refused for %s: %s", action, actor, detail);
}

static void reply(md_call *c, uint8_t *buf, size_t len, grpc_status_code code, const char *msg)
{
    pthread_mutex_lock(&c->mu);
    md_call_reply_locked(c, buf ? mgrpc_buffer_take(buf, len) : NULL, code, msg);
    pthread_mutex_unlock(&c->mu);
}

static void count_token(md_metrics *m, enum cert_token_result r)
{
    static const int map[] = {[CERT_TOKEN_REDEEMED] = MD_TOKEN_OK,
                              [CERT_TOKEN_EXPIRED] = MD_TOKEN_EXPIRED,
                              [CERT_TOKEN_SPENT] = MD_TOKEN_SPENT,
                              [CERT_TOKEN_UNKNOWN] = MD_TOKEN_UNKNOWN};
    /* CERT_TOKEN_ERROR: the store failed mid-redeem, the token is unspent
     * (counted under store errors, not here). */
    if (r == CERT_TOKEN_NONE || r == CERT_TOKEN_ERROR)
        return;
    atomic_fetch_add(&m->tokens[map[r]], 1);
}

void md_job_csr(md_worker *w, md_job *j)
{
    md_call *c = j->call;
    md_ctx *ctx = w->ctx;
    Istio__V1__Auth__IstioCertificateRequest *m = j->msg;
    mesh_err err = {0};
    mesh_ca *ca = NULL;
    if (md_worker_ca(w, &ca, &err) != MESH_OK) {
        reply(c, NULL, 0, GRPC_STATUS_UNAVAILABLE, err.msg);
        return;
    }
    cert_service_req req = {
        .csr_pem = m->csr,
        .validity_seconds = m->validity_duration,
        .default_ttl = ctx->opts.svid_ttl,
        .peer_spiffe_id = c->spiffe_id,
        .peer_cert_pem = c->peer_cert_pem,
        .authorization = j->authorization,
        .expired_svid_b64 = j->expired_svid,
        .peer_addr = c->peer_addr,
        .now = md_now(),
        .audit_fn = csr_audit,
        .audit_ctx = ctx,
    };
    cert_service_resp resp;
    grpc_status_code status;
    int64_t t0 = md_mono_us();
    int rc = cert_service_create(ca, w->st, &req, &resp, &status, &err);
    /* A refusal is the caller's doing, not the store's: only meshd's own
     * trouble (INTERNAL, UNAVAILABLE) counts as a store error. */
    md_metrics_store_op(&ctx->metrics, MD_STORE_ISSUE, t0,
                        status == GRPC_STATUS_INTERNAL || status == GRPC_STATUS_UNAVAILABLE
                            ? MESH_EIO
                            : MESH_OK);
    count_token(&ctx->metrics, resp.token_result);
    if (rc != MESH_OK) {
        /* Refusals were audited and logged (rate-limited) by csr_audit;
         * meshd's own trouble is worth a line each time. */
        if (status == GRPC_STATUS_INTERNAL || status == GRPC_STATUS_UNAVAILABLE)
            log_warn("meshd", "CreateCertificate from %s failed (%s): %s", c->peer_addr,
                     mgrpc_status_name(status), err.msg);
        else
            log_debug("meshd", "CreateCertificate from %s refused (%s): %s", c->peer_addr,
                      mgrpc_status_name(status), err.msg);
        reply(c, NULL, 0, status, err.msg);
        return;
    }
    Istio__V1__Auth__IstioCertificateResponse r = ISTIO__V1__AUTH__ISTIO_CERTIFICATE_RESPONSE__INIT;
    Istio__V1__Auth__Roots roots = ISTIO__V1__AUTH__ROOTS__INIT;
    r.cert_chain = resp.chain;
    r.n_cert_chain = resp.chain_len;
    roots.ca_cert = resp.roots;
    roots.n_ca_cert = resp.n_roots;
    r.root_cert = &roots;
    size_t len = istio__v1__auth__istio_certificate_response__get_packed_size(&r);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        cert_service_resp_free(&resp);
        reply(c, NULL, 0, GRPC_STATUS_RESOURCE_EXHAUSTED, "meshd is out of memory");
        return;
    }
    istio__v1__auth__istio_certificate_response__pack(&r, buf);
    log_field lf[] = {{"spiffe_id", resp.spiffe_id},
                      {"serial", resp.serial_hex},
                      {"auth", resp.auth},
                      {"peer", c->peer_addr}};
    log_msg_fields(LOG_INFO, "meshd", lf, sizeof lf / sizeof lf[0],
                   "CreateCertificate: %s serial=%s via %s for %s", resp.spiffe_id,
                   resp.serial_hex, resp.auth, c->peer_addr);
    /* Streams of this identity may hold this key: let the watcher look. */
    md_watch_cert_changed(ctx, resp.spiffe_id, NULL, 1);
    cert_service_resp_free(&resp);
    reply(c, buf, len, GRPC_STATUS_OK, "");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void md_job_fetch(md_worker *w, md_job *j)
{
    md_call *c = j->call;
    md_ctx *ctx = w->ctx;
    ads_decoded *d = j->msg;
    mesh_err err = {0};
    md_cas *cas = md_cache_cas(ctx);
    uint64_t bgen;
    sds_bundle *bundle = md_cache_bundle(ctx, &bgen);
    sds_svid svid;
    memset(&svid, 0, sizeof svid);
    sds_secret_set set;
    memset(&set, 0, sizeof set);
    /* The certificate the peer connected with: a revoked one is refused, as
     * on a stream (without it the lookup found no SVID and the reply was an
     * OK with no resources, which a client cannot tell from "nothing yet"). */
    char presented[48] = "";
    mesh_err perr = {0};
    if (c->peer_cert_pem && cert_pem_info(c->peer_cert_pem, NULL, 0, presented,
                                          sizeof presented, NULL, NULL, &perr) != MESH_OK)
        presented[0] = '\0';
    int revoked = 0;
    int rc = (!cas || !bundle) ? mesh_err_set(&err, MESH_EINTERNAL, "trust bundle not loaded")
                               : sds_svid_lookup(w->st, c->spiffe_id, c->pubkey_sha, cas->list,
                                                 cas->n, md_now(), presented[0] ? presented : NULL,
                                                 &revoked, &svid, &err);
    if (rc == MESH_OK && revoked) {
        char detail[300];
        snprintf(detail, sizeof detail, "FetchSecrets with revoked certificate %s", presented);
        /* Row and log line rate-limited together: a client may retry in a loop. */
        md_audit_bound(ctx, c, LOG_WARN, "sds.denied", presented, detail);
        reply(c, NULL, 0, GRPC_STATUS_PERMISSION_DENIED,
              "the client certificate was revoked; get a new SVID");
        goto out;
    }
    if (rc == MESH_OK)
        rc = sds_secret_set_build(c->spiffe_id, svid.found ? svid.chain_pem : NULL, bundle, &set,
                                  &err);
    if (rc != MESH_OK) {
        reply(c, NULL, 0, mgrpc_status_from_mesh(rc, MGRPC_FAULT_SERVER), err.msg);
        goto out;
    }
    /* Requested names (all when none), in name order like a stream subset. */
    const xds_resource *items[4];
    size_t n = 0;
    char **names = (char **)d->req.names;
    size_t nn = d->req.n_names;
    for (size_t i = 0; i < set.set.n; i++) {
        const char *name = set.set.items[i].name;
        int want = nn == 0;
        for (size_t k = 0; !want && k < nn; k++)
            want = cmp_str(&name, &names[k]) == 0;
        if (want)
            items[n++] = &set.set.items[i];
    }
    char version[ADS_VERSION_MAX], nonce[ADS_NONCE_MAX];
    ads_subset_version(items, n, version);
    md_nonce(ctx, nonce, sizeof nonce);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (ads_response_encode(XDS_TYPE_URL_SECRET, version, nonce, items, n, ctx->control_plane_id,
                            &buf, &len, &err) != MESH_OK) {
        reply(c, NULL, 0, GRPC_STATUS_INTERNAL, err.msg);
        goto out;
    }
    reply(c, buf, len, GRPC_STATUS_OK, "");
out:
    sds_secret_set_free(&set);
    sds_svid_free(&svid);
    sds_bundle_unref(bundle);
    if (cas)
        md_cas_unref(cas);
}
