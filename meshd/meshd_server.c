/* meshd/meshd_server.c — the gRPC server: methods, request slots, completion-queue threads.
 *
 * Every method meshd serves is registered, with a few request slots each so
 * a burst of new calls is picked up without waiting for a slot to be
 * re-armed; one generic slot answers every other method (per-type xDS
 * services, reflection, typos) with UNIMPLEMENTED at once — without it such
 * a call would hang until the client's deadline, which for Envoy is never.
 * Server args: the delivery limit both ways, the per-connection stream limit,
 * keepalive that closes dead and non-reading peers, and client pings
 * tolerated (Envoy and gRPC clients send them); md_server_bind says why. */
#include "meshd/meshd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>

#include "ca/csr.h"
#include "common/mgrpc.h"
#include "meshd/meshd_proxyless.h"

static const char *const method_paths[MD_CALL_KIND_COUNT] = {
    [MD_CALL_ADS] = XDS_METHOD_ADS,
    [MD_CALL_SDS] = XDS_METHOD_SDS,
    [MD_CALL_FETCH] = XDS_METHOD_FETCH_SDS,
    [MD_CALL_CSR] = XDS_METHOD_CREATE_CERTIFICATE,
    [MD_CALL_DADS] = XDS_METHOD_DELTA_ADS,
    [MD_CALL_DSDS] = XDS_METHOD_DELTA_SDS,
    [MD_CALL_UNIMPL] = NULL,
};

static void slot_arm(md_slot *s)
{
    md_ctx *ctx = s->ctx;
    grpc_metadata_array_init(&s->md);
    s->call = NULL;
    s->payload = NULL;
    grpc_call_error e;
    if (s->method) {
        e = grpc_server_request_registered_call(ctx->server, s->method, &s->call, &s->deadline,
                                                &s->md, NULL, ctx->cq, ctx->cq, &s->tag);
    } else {
        grpc_call_details_init(&s->details);
        e = grpc_server_request_call(ctx->server, &s->call, &s->details, &s->md, ctx->cq, ctx->cq,
                                     &s->tag);
    }
    if (e != GRPC_CALL_OK)
        log_error("meshd", "cannot request new calls (%d)", (int)e);
}

/* Fills the call's identity from what its peer presented at the TLS
 * handshake, verified here (gRPC does not: meshd_tls.c says why). Returns 0
 * when the peer presented a certificate that does not verify: the call is then
 * refused, audited and finished, and its handler never runs. A peer without
 * a certificate gets an empty identity (first contact and recovery need none). */
static int peer_identity(md_call *c)
{
    mesh_err err = {0};
    char *chain = NULL;
    char claimed[sizeof c->spiffe_id];
    if (mgrpc_peer_identity(c->call, claimed, sizeof claimed, &c->peer_cert_pem, &chain,
                            &err) != MESH_OK) {
        md_audit_refusal_as(c->ctx, STORE_AUDIT_UNAUTHENTICATED, NULL, c->peer_addr,
                            "tls.denied", c->method, err.msg);
        md_call_finish(c, GRPC_STATUS_UNAUTHENTICATED, err.msg);
        return 0;
    }
    c->spiffe_id[0] = '\0';
    if (!c->peer_cert_pem) {
        free(chain);
        return 1;
    }
    int rc = md_tls_verify_client(&c->ctx->tls, c->peer_cert_pem, chain, md_now(), &err);
    free(chain);
    if (rc != MESH_OK) {
        char claim[600], info[400], reason[sizeof err.msg + 450];
        md_tls_describe_client(c->peer_cert_pem, claim, sizeof claim, info, sizeof info);
        snprintf(reason, sizeof reason, "%s (%s)", err.msg, info);
        md_audit_refusal_as(c->ctx, STORE_AUDIT_UNAUTHENTICATED, claim, c->peer_addr,
                            "tls.denied", c->method, reason);
        char msg[sizeof err.msg + 120];
        snprintf(msg, sizeof msg, "%s; meshd accepts client certificates issued by its own CA "
                 "(get one with CreateCertificate), or none", err.msg);
        md_call_finish(c, mgrpc_status_from_mesh(rc, MGRPC_FAULT_CREDENTIAL), msg);
        return 0;
    }
    snprintf(c->spiffe_id, sizeof c->spiffe_id, "%s", claimed);
    X509 *x = NULL;
    if (pem_read_cert(c->peer_cert_pem, &x, &err) == MESH_OK)
        pubkey_sha256_hex(X509_get0_pubkey(x), c->pubkey_sha, &err);
    X509_free(x);
    return 1;
}

static void on_new_call(md_slot *s)
{
    md_ctx *ctx = s->ctx;
    char method[160];
    if (s->method) {
        snprintf(method, sizeof method, "%s", method_paths[s->kind]);
    } else {
        size_t l = GRPC_SLICE_LENGTH(s->details.method);
        if (l >= sizeof method)
            l = sizeof method - 1;
        memcpy(method, GRPC_SLICE_START_PTR(s->details.method), l);
        method[l] = '\0';
        grpc_call_details_destroy(&s->details);
    }
    md_call *c = md_call_new(ctx, s->kind, s->call, &s->md, method);
    grpc_metadata_array_destroy(&s->md);
    if (!c) {
        grpc_call_cancel_with_status(s->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory",
                                     NULL);
        grpc_call_unref(s->call);
        return;
    }
    /* The creation reference belongs to the RECV_CLOSE batch. Once that batch
     * is started, another CQ thread may complete it at once (a client that
     * already cancelled or died: RECV_CLOSE completes without waiting) and
     * drop that reference, freeing the call under our feet. So take the one
     * we set the call up with *before* starting it. */
    md_call_ref(c);
    if (md_call_start_close(c) != MESH_OK) {
        log_error("meshd", "cannot watch call %s for close", method);
        grpc_call_cancel(c->call, NULL);
        md_call_unref(c);   /* ours */
        md_call_unref(c);   /* the creation one: no close batch will drop it */
        return;
    }
    if (atomic_load(&ctx->shutting_down)) {
        md_call_finish(c, GRPC_STATUS_UNAVAILABLE, "meshd is shutting down");
        md_call_unref(c);
        return;
    }
    switch (c->kind) {
    case MD_CALL_UNIMPL: {
        if (!peer_identity(c))
            break;   /* a bad certificate is refused whatever the method */
        char printable[200], msg[260];
        snprintf(msg, sizeof msg, "method %s is not served by meshd",
                 mgrpc_printable(method, printable, sizeof printable));
        log_info("meshd", "%s (from %s)", msg, c->peer_addr);
        md_call_finish(c, GRPC_STATUS_UNIMPLEMENTED, msg);
        break;
    }
    case MD_CALL_ADS:
    case MD_CALL_SDS:
    case MD_CALL_DADS:
    case MD_CALL_DSDS:
        if (md_proxyless_call(c))
            break;   /* plaintext port: opened as a proxyless stream, or refused */
        if (peer_identity(c))
            md_stream_open(c);
        break;
    case MD_CALL_FETCH:
    case MD_CALL_CSR:
        if (md_proxyless_call(c))
            break;   /* refused: never in plaintext */
        if (!peer_identity(c))
            break;
        if (md_call_start_recv(c) != MESH_OK)
            md_call_finish(c, GRPC_STATUS_INTERNAL, "cannot receive the request");
        break;
    default:
        break;
    }
    md_call_unref(c);
}

static void dispatch(md_ctx *ctx, md_tag *tag, int ok)
{
    switch (tag->op) {
    case MD_OP_REQUEST: {
        md_slot *s = tag->p;
        if (!ok) {
            /* The server is shutting down: the slot is not re-armed. */
            grpc_metadata_array_destroy(&s->md);
            if (!s->method)
                grpc_call_details_destroy(&s->details);
            return;
        }
        md_slot copy = *s;
        /* Re-arm first so the next call is picked up while we handle this one. */
        if (!atomic_load(&ctx->shutting_down))
            slot_arm(s);
        on_new_call(&copy);
        return;
    }
    case MD_OP_RECV: md_call_on_recv(tag->p, ok); return;
    case MD_OP_SEND: md_call_on_send(tag->p, ok); return;
    case MD_OP_CLOSE: md_call_on_close(tag->p, ok); return;
    case MD_OP_SHUTDOWN:
        pthread_mutex_lock(&ctx->life_mu);
        ctx->server_shutdown_done = 1;
        pthread_cond_broadcast(&ctx->life_cv);
        pthread_mutex_unlock(&ctx->life_mu);
        return;
    }
}

static void *cq_main(void *arg)
{
    md_ctx *ctx = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(ctx->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                                   NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE)
            dispatch(ctx, ev.tag, ev.success);
    }
    return NULL;
}

static void int_arg(grpc_arg *args, size_t *n, const char *key, int value)
{
    args[*n].type = GRPC_ARG_INTEGER;
    args[*n].key = (char *)key;
    args[*n].value.integer = value;
    (*n)++;
}

int md_server_bind(md_ctx *ctx, mesh_err *err)
{
    const md_opts *o = &ctx->opts;
    grpc_arg args[16];
    size_t n = 0;
    memset(args, 0, sizeof args);
    /* The delivery limit, both ways: a bigger request fails its call with
     * RESOURCE_EXHAUSTED before we see it; meshd checks its responses
     * itself (it never sends a bigger one), this is the backstop. */
    int_arg(args, &n, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, XDS_WIRE_MAX_MESSAGE);
    int_arg(args, &n, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, XDS_WIRE_MAX_MESSAGE);
    /* Streams beyond this on one connection wait in the client (HTTP/2
     * SETTINGS_MAX_CONCURRENT_STREAMS); meshd counts per identity itself. */
    int_arg(args, &n, GRPC_ARG_MAX_CONCURRENT_STREAMS, o->max_streams_per_conn);
    /* Keepalive: every connection is pinged and closed when a ping goes
     * unanswered: a dead peer, or one that stopped reading its socket (the
     * ping cannot even be written). gRPC stops pinging a connection that
     * carries no data after two pings unless MAX_PINGS_WITHOUT_DATA is 0, and
     * an idle ADS connection carries none for hours: without it a peer that
     * died after the second ping would hold its streams forever. */
    int_arg(args, &n, GRPC_ARG_KEEPALIVE_TIME_MS, (int)o->keepalive_ms);
    int_arg(args, &n, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, (int)o->keepalive_timeout_ms);
    int_arg(args, &n, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    int_arg(args, &n, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    /* Clients' own pings (Envoy and gRPC clients send them) are tolerated. */
    int_arg(args, &n, GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
    int_arg(args, &n, GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    /* Without this a second meshd on the same port would silently share it
     * (gRPC sets SO_REUSEPORT by default). */
    int_arg(args, &n, GRPC_ARG_ALLOW_REUSEPORT, 0);
    grpc_channel_args cargs = {.num_args = n, .args = args};

    ctx->cq = grpc_completion_queue_create_for_next(NULL);
    ctx->server = grpc_server_create(&cargs, NULL);
    if (!ctx->cq || !ctx->server)
        return mesh_err_set(err, MESH_EINTERNAL, "cannot create the gRPC server");
    grpc_server_register_completion_queue(ctx->server, ctx->cq, NULL);

    ctx->n_slots = (size_t)MD_CALL_UNIMPL * MD_SLOTS_PER_METHOD + 1;
    ctx->slots = calloc(ctx->n_slots, sizeof *ctx->slots);
    if (!ctx->slots)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    size_t k = 0;
    for (int kind = MD_CALL_ADS; kind < MD_CALL_UNIMPL; kind++) {
        void *m = grpc_server_register_method(ctx->server, method_paths[kind], NULL,
                                              GRPC_SRM_PAYLOAD_NONE, 0);
        if (!m)
            return mesh_err_set(err, MESH_EINTERNAL, "cannot register %s", method_paths[kind]);
        for (int i = 0; i < MD_SLOTS_PER_METHOD; i++, k++) {
            ctx->slots[k].ctx = ctx;
            ctx->slots[k].kind = (enum md_call_kind)kind;
            ctx->slots[k].method = m;
        }
    }
    ctx->slots[k].ctx = ctx;
    ctx->slots[k].kind = MD_CALL_UNIMPL;
    ctx->slots[k].method = NULL;
    for (size_t i = 0; i < ctx->n_slots; i++)
        ctx->slots[i].tag = (md_tag){MD_OP_REQUEST, &ctx->slots[i]};

    grpc_server_credentials *creds = md_tls_server_creds(ctx);
    if (!creds)
        return mesh_err_set(err, MESH_EINTERNAL, "cannot create TLS server credentials");
    int port = grpc_server_add_http2_port(ctx->server, ctx->opts.listen, creds);
    grpc_server_credentials_release(creds);
    if (port == 0)
        return mesh_err_set(err, MESH_EIO,
                            "cannot listen on %s: the address is in use or invalid (give "
                            "--listen HOST:PORT)",
                            ctx->opts.listen);
    return md_proxyless_bind(ctx, err);
}

int md_server_run(md_ctx *ctx, mesh_err *err)
{
    grpc_server_start(ctx->server);
    for (size_t i = 0; i < ctx->n_slots; i++)
        slot_arm(&ctx->slots[i]);
    for (int i = 0; i < ctx->opts.cq_threads; i++) {
        if (pthread_create(&ctx->cq_threads[i], NULL, cq_main, ctx) != 0)
            return mesh_err_set(err, MESH_EINTERNAL, "cannot start completion-queue thread");
        ctx->n_cq_threads++;
    }
    log_info("meshd", "serving xDS/SDS and the CA on %s (TLS, client certs verified against "
                      "the trust bundle)",
             ctx->opts.listen);
    return MESH_OK;
}

void md_server_stop(md_ctx *ctx)
{
    if (!ctx->server)
        return;
    ctx->shutdown_tag = (md_tag){MD_OP_SHUTDOWN, NULL};
    grpc_server_shutdown_and_notify(ctx->server, ctx->cq, &ctx->shutdown_tag);
    grpc_server_cancel_all_calls(ctx->server);
    if (ctx->n_cq_threads > 0) {
        pthread_mutex_lock(&ctx->life_mu);
        while (!ctx->server_shutdown_done || ctx->live_calls > 0)
            pthread_cond_wait(&ctx->life_cv, &ctx->life_mu);
        pthread_mutex_unlock(&ctx->life_mu);
    }
    grpc_completion_queue_shutdown(ctx->cq);
    if (ctx->n_cq_threads == 0) {
        /* Never started: drain here. */
        for (;;) {
            grpc_event ev = grpc_completion_queue_next(
                ctx->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
            if (ev.type == GRPC_QUEUE_SHUTDOWN)
                break;
        }
    }
    for (int i = 0; i < ctx->n_cq_threads; i++)
        pthread_join(ctx->cq_threads[i], NULL);
    ctx->n_cq_threads = 0;
    grpc_server_destroy(ctx->server);
    ctx->server = NULL;
    grpc_completion_queue_destroy(ctx->cq);
    ctx->cq = NULL;
    free(ctx->slots);
    ctx->slots = NULL;
    md_registry_destroy(ctx);
}
