/* meshd/meshd_stream.c — ADS (StreamAggregatedResources) and SDS (StreamSecrets) streams.
 *
 * Glue between gRPC and the pure state machine (sds/protocol/ads_state.c): decode a
 * request, feed it, and encode whatever ads_state_collect says to send.
 * Delta streams share everything here but the request and response
 * handling, which is meshd/meshd_delta.c. A
 * stream's "view" — the peer's compiled snapshot and its secret set — is
 * built off the CQ thread (a worker on open, the watcher on changes) and
 * installed with md_stream_update_locked, which also pushes. Identity is
 * always the verified SPIFFE ID of the peer's certificate, never Node.id; the
 * instance (which workload of that identity) is what the certificate's
 * enrolment recorded, read by the worker before the stream is registered. A
 * Node.id naming another instance ends the stream (md_stream_settle_*).
 * Also the registry of live streams that the watcher walks. */
#include "meshd/meshd_internal.h"

#define MD_NO_RESUME_AGENT "mesh-sidecar"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/csr.h"
#include "sds/protocol/ads_codec.h"
#include "common/mgrpc.h"
#include "meshd/meshd_proxyless.h"

void md_stream_free(md_stream *s)
{
    if (!s)
        return;
    ads_state_free(&s->st);
    free(s->view_key);
    if (s->delta) {
        ads_delta_free(s->delta);
        free(s->delta);
    }
    if (s->snap)
        md_snap_unref(s->snap);
    if (s->secrets) {
        sds_secret_set_free(s->secrets);
        free(s->secrets);
    }
    sds_svid_free(&s->svid);
    free(s->refusal);
    free(s->sds_pending_roots);
    free(s->sds_acked_roots);
    free(s);
}

/* ---- registry ------------------------------------------------------------------ */

/* Streams per identity (reg_mu held): the count of key, adjusted by delta. */
static size_t identity_count_locked(md_ctx *ctx, const char *key, int delta)
{
    if (!ctx->reg_by_id && !(ctx->reg_by_id = md_map_new(4096)))
        return 0;
    size_t n = (size_t)(uintptr_t)md_map_get(ctx->reg_by_id, key);
    if (delta == 0)
        return n;
    n = delta > 0 ? n + 1 : (n ? n - 1 : 0);
    if (n == 0)
        md_map_remove(ctx->reg_by_id, key);
    else if (md_map_put(ctx->reg_by_id, key, (void *)(uintptr_t)n, NULL) != MESH_OK)
        log_error("meshd", "out of memory counting the streams of %s", key);
    return n;
}

static void registry_count_locked(md_ctx *ctx, md_call *c)
{
    if (c->admitted)
        return;
    identity_count_locked(ctx, c->spiffe_id, +1);
    c->admitted = 1;
}

void md_registry_add(md_ctx *ctx, md_call *c)
{
    pthread_mutex_lock(&ctx->reg_mu);
    registry_count_locked(ctx, c);
    if (!c->registered) {   /* linked once, however many paths reach here */
        md_call_ref(c);
        c->reg_prev = NULL;
        c->reg_next = ctx->reg_head;
        if (ctx->reg_head)
            ctx->reg_head->reg_prev = c;
        ctx->reg_head = c;
        ctx->reg_count++;
        c->registered = 1;
    }
    pthread_mutex_unlock(&ctx->reg_mu);
}

int md_registry_admit(md_ctx *ctx, md_call *c, size_t *held)
{
    pthread_mutex_lock(&ctx->reg_mu);
    size_t n = identity_count_locked(ctx, c->spiffe_id, 0);
    *held = n;
    int ok = c->admitted || n < ctx->opts.max_streams_per_identity;
    if (ok)
        registry_count_locked(ctx, c);
    pthread_mutex_unlock(&ctx->reg_mu);
    return ok ? MESH_OK : MESH_EBUSY;
}

size_t md_registry_count_of(md_ctx *ctx, const char *spiffe_id)
{
    pthread_mutex_lock(&ctx->reg_mu);
    size_t n = identity_count_locked(ctx, spiffe_id, 0);
    pthread_mutex_unlock(&ctx->reg_mu);
    return n;
}

void md_registry_remove(md_ctx *ctx, md_call *c)
{
    pthread_mutex_lock(&ctx->reg_mu);
    int was = c->registered;
    if (was) {
        if (c->reg_prev)
            c->reg_prev->reg_next = c->reg_next;
        else
            ctx->reg_head = c->reg_next;
        if (c->reg_next)
            c->reg_next->reg_prev = c->reg_prev;
        c->reg_prev = c->reg_next = NULL;
        c->registered = 0;
        ctx->reg_count--;
    }
    if (c->admitted) {
        identity_count_locked(ctx, c->spiffe_id, -1);
        c->admitted = 0;
    }
    pthread_mutex_unlock(&ctx->reg_mu);
    if (was)
        md_call_unref(c);
}

void md_registry_destroy(md_ctx *ctx)
{
    pthread_mutex_lock(&ctx->reg_mu);
    md_map_free(ctx->reg_by_id, NULL);
    ctx->reg_by_id = NULL;
    pthread_mutex_unlock(&ctx->reg_mu);
}

md_call **md_registry_list(md_ctx *ctx, size_t *n_out)
{
    pthread_mutex_lock(&ctx->reg_mu);
    size_t n = ctx->reg_count;
    md_call **v = calloc(n ? n : 1, sizeof *v);
    size_t i = 0;
    if (v) {
        for (md_call *c = ctx->reg_head; c && i < n; c = c->reg_next) {
            md_call_ref(c);
            v[i++] = c;
        }
    }
    pthread_mutex_unlock(&ctx->reg_mu);
    *n_out = i;
    return v;
}

void md_registry_release(md_call **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        md_call_unref(list[i]);
    free(list);
}

/* ---- proxy status ----------------------------------------------------------------- */

const char *md_stream_row_id(const md_call *c)
{
    return c->stream && c->stream->row_id[0] ? c->stream->row_id : c->spiffe_id;
}

void md_stream_status_sync_locked(md_call *c)
{
    md_stream *s = c->stream;
    /* An mTLS stream's row waits for its instance too: it names the row when
     * Node.id does not (replicas of one identity are separate rows). */
    if (!s->node_known || (!c->plaintext && !s->instance_known))
        return;
    if (!s->status_opened) {
        md_status_open(c->ctx, s->node_id, md_stream_row_id(c), c->peer_addr, s->svid.not_after);
        s->status_opened = 1;
        s->reported_not_after = s->svid.not_after;
    } else if (s->reported_not_after != s->svid.not_after) {
        md_status_svid(c->ctx, s->node_id, md_stream_row_id(c), s->svid.not_after);
        s->reported_not_after = s->svid.not_after;
    }
}

/* ---- pushing --------------------------------------------------------------------- */

/* A response over the delivery limit (XDS_WIRE_MAX_MESSAGE) is never sent: the
 * client would refuse it, drop the stream, reconnect and be sent it again, in a
 * loop. It is recorded for the node and type instead (proxy-status shows it as
 * the type's last error, audit as xds.oversize) and the client keeps the config
 * it has; a later version that fits goes out as usual. c->mu held. */
int md_stream_over_limit_locked(md_call *c, const char *type_url, const char *version,
                                size_t len)
{
    if (len <= XDS_WIRE_MAX_MESSAGE)
        return 0;
    md_stream *s = c->stream;
    char msg[400];
    snprintf(msg, sizeof msg,
             "not sent by meshd: the %s response (version %s) is %zu bytes, over the %d-byte "
             "delivery limit; the proxy keeps its last config (make the mesh config smaller "
             "for this workload)",
             xds_wire_short_name(type_url) ? xds_wire_short_name(type_url) : type_url, version, len, XDS_WIRE_MAX_MESSAGE);
    md_status_type(c->ctx, s->node_id, md_stream_row_id(c), type_url, NULL, NULL, version, msg);
    md_audit_bound(c->ctx, c, LOG_ERROR, "xds.oversize", s->node_id, msg);
    return 1;
}

/* ---- push convergence --------------------------------------------------------------- */

void md_stream_count_push_locked(md_call *c, enum ads_type t)
{
    md_stream *s = c->stream;
    atomic_fetch_add(&c->ctx->metrics.pushes[t], 1);
    /* A push carrying a store change opens a measurement (the earliest
     * change not yet converged); while one is open, every type sent joins
     * it: what the client asks for next (RDS after LDS) is part of getting
     * the change applied. */
    if (s->push_change_ms > 0 && !s->conv_since_ms)
        s->conv_since_ms = s->push_change_ms;
    if (s->conv_since_ms)
        s->conv_types |= 1u << t;
}

/* The client answered a response of type t. A NACK ends the measurement
 * unobserved: that sidecar did not converge (mesh_meshd_xds_nacks_total). */
static void conv_reply_locked(md_call *c, enum ads_type t, int ack)
{
    md_stream *s = c->stream;
    if (!(s->conv_types & (1u << t)))
        return;
    if (ack) {
        s->conv_types &= ~(1u << t);
    } else {
        s->conv_types = 0;
        s->conv_since_ms = 0;
    }
}

/* After a push pass: every type sent for the change is ACKed -> observed. */
static void conv_settle_locked(md_call *c)
{
    md_stream *s = c->stream;
    if (s->conv_since_ms && !s->conv_types) {
        prom_hist_observe(&c->ctx->metrics.convergence,
                          (double)(md_now_ms() - s->conv_since_ms) / 1000.0);
        s->conv_since_ms = 0;
    }
}

/* A reconnecting client holds this type's current version already (its
 * version_info said so): nothing goes on the wire, but proxy-status and the
 * trust-bundle tracking must see it as sent and ACKed on this stream, or a
 * `meshctl ca rotate` would wait for a node that already trusts the new root. */
static void md_stream_resumed_locked(md_call *c, const ads_send *sd)
{
    md_stream *s = c->stream;
    const char *url = ads_type_url(sd->type);
    atomic_fetch_add(&c->ctx->metrics.resumed[sd->type], 1);
    md_status_type(c->ctx, s->node_id, md_stream_row_id(c), url, sd->version, sd->version, NULL,
                   NULL);
    if (sd->type == ADS_T_SDS) {
        md_trust_on_sds_sent_locked(c, sd->items, sd->n);
        md_trust_on_sds_reply_locked(c, ADS_REQ_ACK);
    }
    log_debug("meshd", "resume %s v=%s for %s (%s): the client holds it, not resent",
              ads_type_name(sd->type), sd->version, s->node_id, c->spiffe_id);
}

static void push_view_locked(md_call *c)
{
    md_stream *s = c->stream;
    if (!s->view_ready || c->finishing || c->closed)
        return;
    ads_view v;
    memset(&v, 0, sizeof v);
    if ((c->kind == MD_CALL_ADS || c->kind == MD_CALL_DADS) && s->snap) {
        v.sets[ADS_T_CDS] = &s->snap->snap.types[XDS_CDS];
        v.sets[ADS_T_EDS] = &s->snap->snap.types[XDS_EDS];
        v.sets[ADS_T_LDS] = &s->snap->snap.types[XDS_LDS];
        v.sets[ADS_T_RDS] = &s->snap->snap.types[XDS_RDS];
    }
    if (s->secrets)
        v.sets[ADS_T_SDS] = &s->secrets->set;
    if (s->delta) {
        md_delta_push_locked(c, &v);
        return;
    }
    ads_send sends[ADS_T_COUNT];
    size_t n = 0;
    mesh_err err = {0};
    if (ads_state_collect(&s->st, &v, md_nonce, c->ctx, sends, &n, &err) != MESH_OK) {
        log_error("meshd", "node %s: %s", s->node_id, err.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *url = ads_type_url(sends[i].type);
        if (sends[i].resumed) {
            md_stream_resumed_locked(c, &sends[i]);
            continue;
        }
        /* Config types come from the identity's shared snapshot: one
         * encoding per (type, version) for all its streams. Secrets are the
         * stream's own. */
        md_snap *shared = sends[i].type == ADS_T_SDS ? NULL : s->snap;
        grpc_byte_buffer *bb = md_encode_response(c->ctx, shared, &sends[i], &len, &err);
        if (!bb) {
            log_error("meshd", "node %s: %s", s->node_id, err.msg);
            continue;
        }
        if (md_stream_over_limit_locked(c, url, sends[i].version, len)) {
            /* Not awaiting an ACK for what was not sent; the version stays
             * recorded as sent so it is not rebuilt on every pass. */
            s->st.types[sends[i].type].awaiting = 0;
            grpc_byte_buffer_destroy(bb);
            continue;
        }
        md_call_send_locked(c, bb);
        s->responses++;
        md_stream_count_push_locked(c, sends[i].type);
        log_debug("meshd", "push %s v=%s nonce=%s resources=%zu to %s (%s)",
                  ads_type_name(sends[i].type), sends[i].version, sends[i].nonce, sends[i].n,
                  s->node_id, c->spiffe_id);
        md_status_type(c->ctx, s->node_id, md_stream_row_id(c), url, sends[i].version, NULL, NULL,
                       NULL);
        if (sends[i].type == ADS_T_SDS)
            md_trust_on_sds_sent_locked(c, sends[i].items, sends[i].n);
    }
    ads_send_free(sends, n);
}

static void push_locked(md_call *c)
{
    push_view_locked(c);
    conv_settle_locked(c);
}

void md_stream_update_locked(md_call *c, md_view_update *u)
{
    md_stream *s = c->stream;
    if (u->set_snap) {
        /* NULL: nothing compiled for this identity; keep what it has. */
        if (u->snap) {
            if (s->snap)
                md_snap_unref(s->snap);
            s->snap = u->snap;
            u->snap = NULL;
        }
        s->cfg_gen = u->cfg_gen;
    }
    if (u->svid || u->bundle) {
        if (u->svid) {
            sds_svid_free(&s->svid);
            s->svid = *u->svid;
            memset(u->svid, 0, sizeof *u->svid);
            s->cert_gen = u->cert_gen;
        }
        sds_bundle *bundle = u->bundle ? u->bundle : (s->secrets ? s->secrets->bundle : NULL);
        if (u->bundle)
            s->bundle_gen = u->bundle_gen;
        if (bundle) {
            sds_secret_set *ns = calloc(1, sizeof *ns);
            mesh_err err = {0};
            if (!ns ||
                sds_secret_set_build(c->spiffe_id, s->svid.found ? s->svid.chain_pem : NULL,
                                     bundle, ns, &err) != MESH_OK) {
                log_error("meshd", "node %s: cannot build secrets: %s", s->node_id,
                          ns ? err.msg : "out of memory");
                free(ns);
            } else {
                if (s->secrets) {
                    sds_secret_set_free(s->secrets);
                    free(s->secrets);
                }
                s->secrets = ns;
            }
        }
    }
    if (s->secrets)
        s->view_ready = 1;
    md_stream_status_sync_locked(c);
    s->push_change_ms = u->change_ms;
    push_locked(c);
    s->push_change_ms = 0;
}

/* ---- requests -------------------------------------------------------------------- */

/* One identity holds as many streams as --max-streams-per-identity allows:
 * the next is refused, told why, and audited (a client opening streams in a
 * loop is worth an operator's look; rate-limited, as it may be thousands). */
static void refuse_over_limit(md_call *c, size_t held)
{
    md_ctx *ctx = c->ctx;
    char msg[700];
    snprintf(msg, sizeof msg,
             "%s already holds %zu xDS streams on meshd, its limit "
             "(--max-streams-per-identity %zu); close streams it no longer uses",
             c->spiffe_id, held, ctx->opts.max_streams_per_identity);
    md_audit_bound(ctx, c, LOG_WARN, "xds.limit", c->method, msg);
    md_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
}

void md_stream_open(md_call *c)
{
    md_ctx *ctx = c->ctx;
    if (!c->spiffe_id[0] || !c->pubkey_sha[0]) {
        char claim[600] = "", info[400] = "";
        if (c->peer_cert_pem)
            md_tls_describe_client(c->peer_cert_pem, claim, sizeof claim, info, sizeof info);
        char reason[500];
        snprintf(reason, sizeof reason, "%s%s%s%s",
                 c->peer_cert_pem ? "client certificate without exactly one URI SAN"
                                  : "no client certificate",
                 info[0] ? " (" : "", info, info[0] ? ")" : "");
        md_audit_refusal_as(ctx, STORE_AUDIT_UNAUTHENTICATED, claim, c->peer_addr, "xds.denied",
                            c->method, reason);
        md_call_finish(c, GRPC_STATUS_UNAUTHENTICATED,
                       "xDS and SDS need mTLS with a meshd-issued SVID (exactly one URI SAN); "
                       "get one with CreateCertificate first");
        return;
    }
    md_stream *s = calloc(1, sizeof *s);
    if (!s) {
        md_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "meshd is out of memory");
        return;
    }
    ads_state_init(&s->st, c->spiffe_id, ctx->trust_domain);
    if (md_call_kind_is_delta(c->kind)) {
        s->delta = calloc(1, sizeof *s->delta);
        if (!s->delta) {
            free(s);
            md_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "meshd is out of memory");
            return;
        }
        ads_delta_init(s->delta, c->spiffe_id, ctx->trust_domain);
    }
    s->connected_at = md_now();
    mesh_err err = {0};
    if (c->peer_cert_pem &&
        cert_pem_info(c->peer_cert_pem, NULL, 0, s->presented_serial, sizeof s->presented_serial,
                      NULL, NULL, &err) != MESH_OK)
        s->presented_serial[0] = '\0';
    /* The client may have cancelled (or died) while we parsed its cert: then
     * the close completion has already run md_stream_on_close, and there is
     * nothing to set up. The stream joins the registry only in the worker,
     * once its instance (and so its view key) is known: see md_job_stream_init. */
    pthread_mutex_lock(&c->mu);
    if (c->closed) {
        pthread_mutex_unlock(&c->mu);
        log_debug("meshd", "%s from %s (%s) ended before its stream opened%s", c->method,
                  c->spiffe_id, c->peer_addr, c->cancelled ? " (cancelled)" : "");
        md_stream_free(s);
        return;
    }
    size_t held = 0;
    if (md_registry_admit(ctx, c, &held) != MESH_OK) {   /* reg_mu: a leaf lock under c->mu */
        pthread_mutex_unlock(&c->mu);
        md_stream_free(s);
        refuse_over_limit(c, held);
        return;
    }
    c->stream = s;
    pthread_mutex_unlock(&c->mu);
    if (md_call_start_recv(c) != MESH_OK) {
        md_call_finish(c, GRPC_STATUS_INTERNAL, "cannot receive on the stream");
        return;
    }
    md_job *j = calloc(1, sizeof *j);
    if (!j) {
        md_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "meshd is out of memory");
        return;
    }
    j->kind = MD_JOB_STREAM_INIT;
    md_call_ref(c);
    j->call = c;
    md_work_submit(ctx, j);
    static const char *const labels[MD_CALL_KIND_COUNT] = {
        [MD_CALL_ADS] = "ADS", [MD_CALL_SDS] = "SDS", [MD_CALL_DADS] = "Delta ADS",
        [MD_CALL_DSDS] = "Delta SDS"};
    const char *label = labels[c->kind] ? labels[c->kind] : "?";
    log_field lf[] = {{"stream", label}, {"spiffe_id", c->spiffe_id}, {"peer", c->peer_addr}};
    log_msg_fields(LOG_INFO, "meshd", lf, sizeof lf / sizeof lf[0], "%s stream from %s (%s)",
                   label, c->spiffe_id, c->peer_addr);
}

/* Whether the first request's Node.id may name a stream enrolled as
 * s->instance: no claim, the identity itself, the instance, or
 * "<identity>#<instance>" (the proxyless form). Any claim goes for an
 * identity-wide enrolment, which is served the identity's view whatever it says. */
static int claim_fits(const md_call *c, const md_stream *s)
{
    const char *claim = s->node_claim;
    if (!claim[0] || !s->instance[0] || strcmp(claim, c->spiffe_id) == 0 ||
        strcmp(claim, s->instance) == 0)
        return 1;
    size_t n = strlen(c->spiffe_id);
    return strncmp(claim, c->spiffe_id, n) == 0 && claim[n] == MD_INSTANCE_KEY_SEP &&
           strcmp(claim + n + 1, s->instance) == 0;
}

/* Both the claim and the enrolled instance are known: refuse a mismatch, and
 * name the node (the instance, when Node.id only repeats the identity). */
static int settle_locked(md_call *c)
{
    md_stream *s = c->stream;
    if (!s->node_known || !s->instance_known)
        return 1;
    if (!claim_fits(c, s)) {
        char msg[1200], detail[1700];
        snprintf(msg, sizeof msg,
                 "Node.id \"%.255s\" is not the instance this certificate was enrolled for "
                 "(\"%.127s\" of %.300s); start the sidecar with --workload %.127s, or enrol "
                 "it with a join token for that instance",
                 s->node_id, s->instance, c->spiffe_id, s->instance);
        snprintf(detail, sizeof detail, "node=%.255s: %s", s->node_id, msg);
        md_audit_refusal(c->ctx, c, "xds.denied", s->instance, detail);
        md_status_problem(c->ctx, s->node_id, md_stream_row_id(c), msg);
        md_call_finish_locked(c, GRPC_STATUS_PERMISSION_DENIED, msg);
        return 0;
    }
    if (s->instance[0] && (!s->node_claim[0] || strcmp(s->node_claim, c->spiffe_id) == 0))
        snprintf(s->node_id, sizeof s->node_id, "%s", s->instance);
    return 1;
}

int md_stream_note_node_locked(md_call *c, int has_node, const char *node_id)
{
    md_stream *s = c->stream;
    if (s->node_known)
        return 1;
    /* Only the first request is sure to carry Node; without one the
     * identity names the node in proxy status. */
    char nb[256];
    int claimed = has_node && node_id && node_id[0];
    const char *node = claimed ? mgrpc_printable(node_id, nb, sizeof nb) : c->spiffe_id;
    snprintf(s->node_id, sizeof s->node_id, "%.255s", node);
    snprintf(s->row_id, sizeof s->row_id, "%s%s", c->plaintext ? "unverified:" : "",
             c->spiffe_id);
    snprintf(s->node_claim, sizeof s->node_claim, "%s", claimed ? s->node_id : "");
    s->node_known = 1;
    if (s->refusal) {
        /* Refused before the node was known: now its row can say why. */
        md_status_problem(c->ctx, s->node_id, md_stream_row_id(c), s->refusal);
        md_call_finish_locked(c, GRPC_STATUS_PERMISSION_DENIED, s->refusal);
        return 0;
    }
    return settle_locked(c);
}

int md_stream_settle_instance_locked(md_call *c, const char *instance)
{
    md_stream *s = c->stream;
    snprintf(s->instance, sizeof s->instance, "%s", instance ? instance : "");
    s->instance_known = 1;
    return settle_locked(c);
}

static void log_request(md_call *c, const ads_request *req, const ads_req_result *res)
{
    md_stream *s = c->stream;
    char tbuf[160], vbuf[80], nbuf[80];
    mgrpc_printable(req->type_url, tbuf, sizeof tbuf);
    mgrpc_printable(req->version_info, vbuf, sizeof vbuf);
    mgrpc_printable(req->response_nonce, nbuf, sizeof nbuf);
    switch (res->kind) {
    case ADS_REQ_UNKNOWN_TYPE:
        log_info("meshd", "node %s asked for type '%s' which meshd does not serve; ignored",
                 s->node_id, tbuf);
        break;
    case ADS_REQ_NACK: {
        char ebuf[400];
        mgrpc_printable(req->error_message, ebuf, sizeof ebuf);
        log_field lf[] = {{"node", s->node_id},
                          {"spiffe_id", c->spiffe_id},
                          {"type", ads_type_name(res->type)},
                          {"version", s->st.types[res->type].nack_version},
                          {"error", ebuf}};
        log_msg_fields(LOG_WARN, "meshd", lf, sizeof lf / sizeof lf[0],
                       "node %s (%s) NACKed %s version %s: %s", s->node_id, c->spiffe_id,
                       ads_type_name(res->type), s->st.types[res->type].nack_version, ebuf);
        break;
    }
    default:
        log_debug("meshd", "node %s %s %s version=%s nonce=%s names=%zu", s->node_id,
                  ads_req_kind_name(res->kind), ads_type_name(res->type), vbuf, nbuf,
                  req->n_names);
        break;
    }
}

void md_stream_on_message(md_call *c, const uint8_t *buf, size_t len)
{
    ads_decoded d;
    mesh_err err = {0};
    if (ads_request_decode(buf, len, &d, &err) != MESH_OK) {
        log_warn("meshd", "bad DiscoveryRequest from %s (%s): %s", c->spiffe_id, c->peer_addr,
                 err.msg);
        md_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, err.msg);
        return;
    }
    pthread_mutex_lock(&c->mu);
    md_stream *s = c->stream;
    if (c->finishing || c->closed) {
        pthread_mutex_unlock(&c->mu);
        ads_decoded_free(&d);
        return;
    }
    s->requests++;
    /* Plaintext port: the first request names the identity; SDS is refused. */
    if (c->plaintext && md_proxyless_on_request_locked(c, &d) != MESH_OK) {
        pthread_mutex_unlock(&c->mu);
        ads_decoded_free(&d);
        return;
    }
    if (!md_stream_note_node_locked(c, d.has_node, d.node_id)) {
        pthread_mutex_unlock(&c->mu);
        ads_decoded_free(&d);
        return;
    }
    /* mesh-sidecar (sidecar/xds_client.c) counts itself connected, and resets
     * its reconnect backoff, on the first response of a stream: it gets
     * every type answered on reconnect until it marks the stream up when it
     * opens, as Envoy does. Other clients (Envoy, gRPC xDS) get nothing
     * resent that they already hold. */
    if (d.has_node && d.user_agent && strcmp(d.user_agent, MD_NO_RESUME_AGENT) == 0)
        s->st.no_resume = 1;
    ads_request req = d.req;
    if (c->kind == MD_CALL_SDS && !req.type_url[0])
        req.type_url = XDS_TYPE_URL_SECRET; /* SDS requests may leave the type implied */
    ads_req_result res;
    int rc;
    if (c->kind == MD_CALL_SDS && strcmp(req.type_url, XDS_TYPE_URL_SECRET) != 0) {
        memset(&res, 0, sizeof res);
        res.kind = ADS_REQ_UNKNOWN_TYPE;
        rc = MESH_OK;
    } else {
        rc = ads_state_on_request(&s->st, &req, &res, &err);
    }
    if (rc != MESH_OK) {
        md_call_finish_locked(c, mgrpc_status_from_mesh(rc, MGRPC_FAULT_REQUEST), err.msg);
        pthread_mutex_unlock(&c->mu);
        ads_decoded_free(&d);
        return;
    }
    log_request(c, &req, &res);
    md_stream_status_sync_locked(c);
    const char *url = ads_type_url(res.type);
    ads_type_state *ts = &s->st.types[res.type];
    if (!md_stream_note_reply_locked(c, res.kind, url, ts->acked_version, ts->nack_version,
                                     ts->nack_error, res.denied_name, err.msg)) {
        pthread_mutex_unlock(&c->mu);
        ads_decoded_free(&d);
        return;
    }
    push_locked(c);
    int more = !c->finishing && !c->closed;
    pthread_mutex_unlock(&c->mu);
    ads_decoded_free(&d);
    if (more && md_call_start_recv(c) != MESH_OK)
        md_call_finish(c, GRPC_STATUS_INTERNAL, "cannot receive on the stream");
}

int md_stream_note_reply_locked(md_call *c, enum ads_req_kind kind, const char *type_url,
                                const char *acked_version, const char *nack_version,
                                const char *nack_error, const char *denied_name,
                                const char *denied_why)
{
    md_stream *s = c->stream;
    if ((kind == ADS_REQ_ACK || kind == ADS_REQ_NACK) &&
        strcmp(type_url, XDS_TYPE_URL_SECRET) == 0)
        md_trust_on_sds_reply_locked(c, kind);
    enum ads_type t;
    if ((kind == ADS_REQ_ACK || kind == ADS_REQ_NACK) && ads_type_parse(type_url, &t) == 0 &&
        (int)t >= 0 && t < ADS_T_COUNT) {
        md_metrics *m = &c->ctx->metrics;
        atomic_fetch_add(kind == ADS_REQ_ACK ? &m->acks[t] : &m->nacks[t], 1);
        conv_reply_locked(c, t, kind == ADS_REQ_ACK);
    }
    switch (kind) {
    case ADS_REQ_DENIED: {
        char detail[1024];
        snprintf(detail, sizeof detail, "node=%s: %s", s->node_id, denied_why);
        md_audit_refusal(c->ctx, c, "sds.denied", denied_name, detail);
        md_call_finish_locked(c, GRPC_STATUS_PERMISSION_DENIED, denied_why);
        return 0;
    }
    case ADS_REQ_ACK:
        md_status_type(c->ctx, s->node_id, md_stream_row_id(c), type_url, NULL, acked_version, NULL,
                       NULL);
        break;
    case ADS_REQ_NACK:
        md_status_type(c->ctx, s->node_id, md_stream_row_id(c), type_url, NULL, NULL, nack_version,
                       nack_error ? nack_error : "");
        break;
    default:
        break;
    }
    return 1;
}

void md_stream_on_close(md_call *c)
{
    md_registry_remove(c->ctx, c);
    pthread_mutex_lock(&c->mu);
    md_stream *s = c->stream;
    if (s && s->status_opened) {
        md_status_close(c->ctx, s->node_id, md_stream_row_id(c));
        s->status_opened = 0;
    }
    if (s) {
        log_field lf[] = {{"spiffe_id", c->spiffe_id}, {"node", s->node_known ? s->node_id : NULL}};
        log_msg_fields(LOG_INFO, "meshd", lf, sizeof lf / sizeof lf[0],
                       "stream of %s (node %s) closed after %u requests, %u responses",
                       c->spiffe_id, s->node_known ? s->node_id : "?", s->requests,
                       s->responses);
    }
    pthread_mutex_unlock(&c->mu);
}
