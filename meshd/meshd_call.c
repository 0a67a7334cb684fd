/* meshd/meshd_call.c — one server call: batches, the send queue, lifetime.
 *
 * gRPC allows one batch of each kind in flight per call, and gives no
 * backpressure on sends, so every call has a small FIFO of outgoing items
 * (messages, a final status) with at most one send batch in flight; the
 * ADS state machine keeps that FIFO short by waiting for ACKs per type.
 * Any thread may queue (CQ threads, workers, the watcher) with c->mu held.
 *
 * The FIFO is bounded in bytes (--max-send-queue): a send batch completes
 * only once the transport has taken the message, and a client that does not
 * read stops it taking more (HTTP/2 flow control), so bytes pile up here.
 * Past the limit the call is cancelled with RESOURCE_EXHAUSTED and a message
 * that says why: a client that does not read costs meshd at most the limit
 * (plus what the transport holds), never a growing queue.
 *
 * Lifetime: the reference taken at creation belongs to the RECV_CLOSE
 * batch, which completes exactly once when the call is over; every other
 * batch and every queued job holds its own reference. That batch may
 * complete on another CQ thread as soon as it is started (the client had
 * already gone), so whoever starts it must already hold a reference of its
 * own (on_new_call does). The last unref releases the grpc_call. */
#include "meshd/meshd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>

#include "common/mgrpc.h"

int md_call_kind_is_stream(enum md_call_kind k)
{
    return k == MD_CALL_ADS || k == MD_CALL_SDS || k == MD_CALL_DADS || k == MD_CALL_DSDS;
}

int md_call_kind_is_delta(enum md_call_kind k)
{
    return k == MD_CALL_DADS || k == MD_CALL_DSDS;
}

md_call *md_call_new(md_ctx *ctx, enum md_call_kind kind, grpc_call *call,
                     grpc_metadata_array *md_moved, const char *method)
{
    md_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->ctx = ctx;
    c->kind = kind;
    c->call = call;
    atomic_init(&c->refs, 1);
    c->recv_tag = (md_tag){MD_OP_RECV, c};
    c->send_tag = (md_tag){MD_OP_SEND, c};
    c->close_tag = (md_tag){MD_OP_CLOSE, c};
    if (md_moved) {
        c->req_md = *md_moved;
        grpc_metadata_array_init(md_moved);
    } else {
        grpc_metadata_array_init(&c->req_md);
    }
    snprintf(c->method, sizeof c->method, "%s", method ? method : "");
    char *peer = grpc_call_get_peer(call);
    snprintf(c->peer_addr, sizeof c->peer_addr, "%s", peer ? peer : "?");
    gpr_free(peer);
    pthread_mutex_lock(&ctx->life_mu);
    ctx->live_calls++;
    pthread_mutex_unlock(&ctx->life_mu);
    return c;
}

void md_call_ref(md_call *c)
{
    atomic_fetch_add(&c->refs, 1);
}

static void out_free(md_out *o)
{
    if (!o)
        return;
    if (o->bb)
        grpc_byte_buffer_destroy(o->bb);
    free(o->msg);
    free(o);
}

static void call_destroy(md_call *c)
{
    md_ctx *ctx = c->ctx;
    while (c->q_head) {
        md_out *o = c->q_head;
        c->q_head = o->next;
        out_free(o);
    }
    out_free(c->inflight);
    if (c->recv_buf)
        grpc_byte_buffer_destroy(c->recv_buf);
    if (c->status_details_set)
        grpc_slice_unref(c->status_details);
    grpc_metadata_array_destroy(&c->req_md);
    if (c->stream)
        md_stream_free(c->stream);
    free(c->peer_cert_pem);
    grpc_call_unref(c->call);
    pthread_mutex_destroy(&c->mu);
    free(c);
    atomic_fetch_add(&ctx->calls_closed, 1);
    pthread_mutex_lock(&ctx->life_mu);
    ctx->live_calls--;
    pthread_cond_broadcast(&ctx->life_cv);
    pthread_mutex_unlock(&ctx->life_mu);
}

void md_call_unref(md_call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        call_destroy(c);
}

static int start_batch(md_call *c, const grpc_op *ops, size_t n, md_tag *tag)
{
    md_call_ref(c);
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        log_warn("meshd", "call %s from %s: start_batch failed (%d)", c->method, c->peer_addr,
                 (int)e);
        md_call_unref(c);
        return MESH_EINTERNAL;
    }
    return MESH_OK;
}

int md_call_start_close(md_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    /* The creation reference is this batch's: no extra ref. */
    grpc_call_error e = grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL);
    return e == GRPC_CALL_OK ? MESH_OK : MESH_EINTERNAL;
}

int md_call_start_recv(md_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_buf;
    return start_batch(c, &op, 1, &c->recv_tag);
}

/* Bytes leave the call's queue (sent, dropped or failed to start). */
static void unqueue_bytes(md_call *c, size_t len)
{
    c->queued_bytes -= len;
    atomic_fetch_sub(&c->ctx->send_queued_total, len);
}

/* Starts the next queued item if nothing is in flight. c->mu held. */
static void kick_locked(md_call *c)
{
    if (c->inflight || !c->q_head || c->closed)
        return;
    md_out *o = c->q_head;
    c->q_head = o->next;
    if (!c->q_head)
        c->q_tail = NULL;
    o->next = NULL;
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (!c->initial_md_sent) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n].data.send_initial_metadata.count = 0;
        n++;
    }
    if (o->bb) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = o->bb;
        n++;
    }
    if (o->has_status) {
        if (c->status_details_set)
            grpc_slice_unref(c->status_details);
        c->status_details = grpc_slice_from_copied_string(o->msg ? o->msg : "");
        c->status_details_set = 1;
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = o->code;
        ops[n].data.send_status_from_server.status_details = &c->status_details;
        ops[n].data.send_status_from_server.trailing_metadata_count = 0;
        n++;
    }
    c->inflight = o;
    if (start_batch(c, ops, n, &c->send_tag) != MESH_OK) {
        c->inflight = NULL;
        unqueue_bytes(c, o->len);
        out_free(o);
        return;
    }
    c->initial_md_sent = 1;
}

/* Drops what waits behind the send in flight. c->mu held. */
static void drop_queue_locked(md_call *c)
{
    while (c->q_head) {
        md_out *n = c->q_head->next;
        unqueue_bytes(c, c->q_head->len);
        out_free(c->q_head);
        c->q_head = n;
    }
    c->q_tail = NULL;
}

/* The client is not reading what it is sent: end the call now. A status
 * cannot be queued (it would wait behind the stalled send), so the call is
 * cancelled, which also fails the send in flight. c->mu held. */
/* A call's final status, once per call (mesh_meshd_grpc_calls_total, and
 * mesh_meshd_issuances_total for CreateCertificate). */
static void count_status(md_call *c, grpc_status_code code)
{
    md_metrics *m = &c->ctx->metrics;
    int k = (int)c->kind, sc = (int)code;
    if (sc < 0 || sc >= MD_GRPC_CODES)
        sc = GRPC_STATUS_UNKNOWN;
    if (k >= 0 && k < MD_METRIC_CALL_KINDS)
        atomic_fetch_add(&m->calls[k][sc], 1);
    if (c->kind == MD_CALL_CSR)
        atomic_fetch_add(&m->issuances[sc], 1);
}

static void overflow_locked(md_call *c, size_t adding, int total)
{
    md_ctx *ctx = c->ctx;
    char msg[400];
    if (total)
        snprintf(msg, sizeof msg,
                 "meshd closed the stream: its responses wait for the client to read them "
                 "while meshd holds %zu bytes unread by its clients, over its limit of %zu "
                 "(--max-send-queue-total); a client must read its stream to stay connected",
                 atomic_load(&ctx->send_queued_total) + adding, ctx->opts.max_send_queue_total);
    else
        snprintf(msg, sizeof msg,
                 "meshd closed the stream: %zu bytes of responses are waiting for the client "
                 "to read them, over meshd's limit of %zu (--max-send-queue); a client must "
                 "read its stream to stay connected",
                 c->queued_bytes + adding, ctx->opts.max_send_queue);
    char reason[900];
    snprintf(reason, sizeof reason,
             "%s: %s; %zu bytes queued behind a stalled send (limit %zu), %llu taken by the "
             "transport before it stalled",
             c->method, msg, c->queued_bytes + adding, ctx->opts.max_send_queue,
             (unsigned long long)c->sent_bytes);
    /* Row and log line rate-limited together: many streams may overflow at once. */
    md_audit_bound(ctx, c, LOG_WARN, "xds.overflow",
                   c->stream && c->stream->node_known ? c->stream->node_id : "", reason);
    drop_queue_locked(c);
    if (!c->finishing)
        count_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED);
    c->finishing = 1;
    c->send_overflow = 1;
    if (c->call)
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_RESOURCE_EXHAUSTED, msg, NULL);
}

static void enqueue_locked(md_call *c, md_out *o)
{
    if (c->closed) {
        out_free(o);
        return;
    }
    md_ctx *ctx = c->ctx;
    size_t limit = ctx->opts.max_send_queue;
    /* Over the process-wide budget, a call that already has a message
     * waiting behind the one in flight is one whose client is behind:
     * it goes, rather than memory. A call whose queue is empty is sending
     * as fast as its client reads and may always queue one more. */
    int over_total = ctx->opts.max_send_queue_total && c->q_head &&
                     atomic_load(&ctx->send_queued_total) + o->len >
                         ctx->opts.max_send_queue_total;
    if (o->len && ((limit && c->queued_bytes + o->len > limit) || over_total)) {
        overflow_locked(c, o->len, !(limit && c->queued_bytes + o->len > limit));
        out_free(o);
        return;
    }
    c->queued_bytes += o->len;
    atomic_fetch_add(&ctx->send_queued_total, o->len);
    if (c->q_tail)
        c->q_tail->next = o;
    else
        c->q_head = o;
    c->q_tail = o;
    kick_locked(c);
}

void md_call_send_locked(md_call *c, grpc_byte_buffer *bb)
{
    if (!bb)
        return;
    if (c->finishing || c->closed) {
        grpc_byte_buffer_destroy(bb);
        return;
    }
    md_out *o = calloc(1, sizeof *o);
    if (!o) {
        grpc_byte_buffer_destroy(bb);
        log_error("meshd", "out of memory queueing a message to %s", c->peer_addr);
        return;
    }
    o->bb = bb;
    o->len = grpc_byte_buffer_length(bb);
    enqueue_locked(c, o);
}

void md_call_reply_locked(md_call *c, grpc_byte_buffer *bb, grpc_status_code code,
                          const char *msg)
{
    if (c->finishing || c->closed) {
        if (bb)
            grpc_byte_buffer_destroy(bb);
        return;
    }
    md_out *o = calloc(1, sizeof *o);
    char *m = strdup(msg ? msg : "");
    if (!o || !m) {
        free(o);
        free(m);
        if (bb)
            grpc_byte_buffer_destroy(bb);
        /* Without memory for the status the call can only be cancelled. */
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory",
                                     NULL);
        return;
    }
    o->bb = bb;
    o->len = bb ? grpc_byte_buffer_length(bb) : 0;
    o->has_status = 1;
    o->code = code;
    o->msg = m;
    c->finishing = 1;
    count_status(c, code);
    enqueue_locked(c, o);
}

void md_call_finish_locked(md_call *c, grpc_status_code code, const char *msg)
{
    md_call_reply_locked(c, NULL, code, msg);
}

void md_call_finish(md_call *c, grpc_status_code code, const char *msg)
{
    pthread_mutex_lock(&c->mu);
    md_call_finish_locked(c, code, msg);
    pthread_mutex_unlock(&c->mu);
}

void md_call_on_send(md_call *c, int ok)
{
    pthread_mutex_lock(&c->mu);
    md_out *o = c->inflight;
    c->inflight = NULL;
    if (o) {
        unqueue_bytes(c, o->len);
        if (ok)
            c->sent_bytes += o->len;
    }
    if (!ok) {
        /* The transport is gone; the close completion follows. */
        drop_queue_locked(c);
    } else {
        kick_locked(c);
    }
    pthread_mutex_unlock(&c->mu);
    out_free(o);
    md_call_unref(c);
}

void md_call_on_recv(md_call *c, int ok)
{
    grpc_byte_buffer *bb = c->recv_buf;
    c->recv_buf = NULL;
    if (!ok || !bb) {
        /* !ok: the call failed (cancelled, deadline, oversized message);
         * ok && !bb: the client half-closed. Either way no more requests. */
        if (ok && !bb) {
            if (md_call_kind_is_stream(c->kind))
                md_call_finish(c, GRPC_STATUS_OK, "client closed the stream");
            else
                md_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
        }
        md_call_unref(c);
        return;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = {0};
    int rc = mgrpc_buffer_to_bytes(bb, &buf, &len, &err);
    grpc_byte_buffer_destroy(bb);
    if (rc != MESH_OK) {
        md_call_finish(c, mgrpc_status_from_mesh(rc, MGRPC_FAULT_REQUEST), err.msg);
        md_call_unref(c);
        return;
    }
    switch (c->kind) {
    case MD_CALL_ADS:
    case MD_CALL_SDS:
        md_stream_on_message(c, buf, len);
        break;
    case MD_CALL_DADS:
    case MD_CALL_DSDS:
        md_delta_on_message(c, buf, len);
        break;
    case MD_CALL_CSR:
    case MD_CALL_FETCH:
        md_unary_on_message(c, buf, len);
        break;
    default:
        break;
    }
    free(buf);
    md_call_unref(c);
}

void md_call_on_close(md_call *c, int ok)
{
    pthread_mutex_lock(&c->mu);
    /* Over without a status of ours: the client cancelled or went away. */
    if (!c->finishing && !c->closed)
        count_status(c, GRPC_STATUS_CANCELLED);
    c->closed = 1;
    drop_queue_locked(c);
    pthread_mutex_unlock(&c->mu);
    if (md_call_kind_is_stream(c->kind))
        md_stream_on_close(c);
    log_debug("meshd", "call %s from %s closed%s", c->method, c->peer_addr,
              c->cancelled ? " (cancelled)" : "");
    md_call_unref(c);
}
