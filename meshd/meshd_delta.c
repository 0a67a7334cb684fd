/* meshd/meshd_delta.c — Incremental xDS streams: DeltaAggregatedResources and DeltaSecrets.
 *
 * Glue between gRPC and the pure Delta state machine (sds/protocol/ads_delta_state.c).
 * Everything else is shared with the SotW streams (meshd/meshd_stream.c):
 * authentication from the verified peer certificate, the view (snapshot and
 * secrets) built by a worker on open and by the watcher on changes, the
 * registry, proxy status. md_stream_update_locked ends in
 * md_delta_push_locked for these streams, so a config change reaches a Delta
 * client as the resources whose own version moved, and nothing else. */
#include "meshd/meshd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sds/protocol/ads_delta_codec.h"
#include "common/mgrpc.h"

void md_delta_push_locked(md_call *c, const ads_view *v)
{
    md_stream *s = c->stream;
    ads_delta_send sends[ADS_T_COUNT];
    size_t n = 0;
    mesh_err err = {0};
    if (ads_delta_collect(s->delta, v, md_nonce, c->ctx, sends, &n, &err) != MESH_OK)
        /* The types decided before the failure are in sends; the rest retry
         * on the next request or change. */
        log_error("meshd", "node %s: %s", s->node_id, err.msg);
    for (size_t i = 0; i < n; i++) {
        const ads_delta_send *o = &sends[i];
        const char *url = ads_type_url(o->type);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (ads_delta_response_encode(url, o->version, o->nonce, o->items, o->n,
                                      (const char *const *)o->removed, o->n_removed,
                                      c->ctx->control_plane_id, &buf, &len, &err) != MESH_OK) {
            log_error("meshd", "node %s: %s", s->node_id, err.msg);
            continue;
        }
        if (md_stream_over_limit_locked(c, url, o->version, len)) {
            free(buf);
            continue;
        }
        md_call_send_locked(c, mgrpc_buffer_take(buf, len));
        s->responses++;
        md_stream_count_push_locked(c, o->type);
        log_debug("meshd", "delta push %s v=%s nonce=%s resources=%zu removed=%zu to %s (%s)",
                  ads_type_name(o->type), o->version, o->nonce, o->n, o->n_removed, s->node_id,
                  c->spiffe_id);
        md_status_type(c->ctx, s->node_id, md_stream_row_id(c), url, o->version, NULL, NULL, NULL);
        if (o->type == ADS_T_SDS)
            md_trust_on_sds_sent_locked(c, o->items, o->n);
    }
    ads_delta_send_free(sends, n);
}

static void log_request(md_call *c, const ads_delta_request *req, const ads_req_result *res)
{
    md_stream *s = c->stream;
    char tbuf[160], nbuf[80];
    mgrpc_printable(req->type_url, tbuf, sizeof tbuf);
    mgrpc_printable(req->response_nonce, nbuf, sizeof nbuf);
    switch (res->kind) {
    case ADS_REQ_UNKNOWN_TYPE:
        log_info("meshd", "node %s asked (delta) for type '%s' which meshd does not serve; "
                          "ignored",
                 s->node_id, tbuf);
        break;
    case ADS_REQ_NACK: {
        char ebuf[400];
        mgrpc_printable(req->error_message, ebuf, sizeof ebuf);
        log_warn("meshd", "node %s (%s) NACKed delta %s version %s: %s", s->node_id,
                 c->spiffe_id, ads_type_name(res->type),
                 s->delta->types[res->type].nack_version, ebuf);
        break;
    }
    default:
        log_debug("meshd", "node %s delta %s %s nonce=%s subscribe=%zu unsubscribe=%zu "
                           "initial=%zu",
                  s->node_id, ads_req_kind_name(res->kind), ads_type_name(res->type), nbuf,
                  req->n_subscribe, req->n_unsubscribe, req->n_initial);
        break;
    }
}

/* c->mu held. Returns 0 when the call was finished (refused or failed). */
static int handle_locked(md_call *c, const ads_delta_decoded *d)
{
    md_stream *s = c->stream;
    mesh_err err = {0};
    s->requests++;
    if (!md_stream_note_node_locked(c, d->has_node, d->node_id))
        return 0;
    ads_delta_request req = d->req;
    if (c->kind == MD_CALL_DSDS && !req.type_url[0])
        req.type_url = XDS_TYPE_URL_SECRET; /* SDS requests may leave the type implied */
    ads_req_result res;
    int rc = MESH_OK;
    if (c->kind == MD_CALL_DSDS && strcmp(req.type_url, XDS_TYPE_URL_SECRET) != 0) {
        memset(&res, 0, sizeof res);
        res.kind = ADS_REQ_UNKNOWN_TYPE;
    } else {
        rc = ads_delta_on_request(s->delta, &req, &res, &err);
    }
    if (rc != MESH_OK) {
        log_warn("meshd", "delta request from %s (%s): %s", s->node_id, c->spiffe_id, err.msg);
        md_call_finish_locked(c, mgrpc_status_from_mesh(rc, MGRPC_FAULT_REQUEST), err.msg);
        return 0;
    }
    log_request(c, &req, &res);
    md_stream_status_sync_locked(c);
    const char *url = ads_type_url(res.type);
    const ads_delta_type *ts = &s->delta->types[res.type];
    return md_stream_note_reply_locked(c, res.kind, url, ts->acked_version, ts->nack_version,
                                       ts->nack_error, res.denied_name, err.msg);
}

void md_delta_on_message(md_call *c, const uint8_t *buf, size_t len)
{
    ads_delta_decoded d;
    mesh_err err = {0};
    if (ads_delta_request_decode(buf, len, &d, &err) != MESH_OK) {
        log_warn("meshd", "bad DeltaDiscoveryRequest from %s (%s): %s", c->spiffe_id,
                 c->peer_addr, err.msg);
        md_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, err.msg);
        return;
    }
    pthread_mutex_lock(&c->mu);
    int more = 0;
    if (!c->finishing && !c->closed && handle_locked(c, &d)) {
        /* Answers whatever the request changed, with the view installed so
         * far (none yet: the worker's first view pushes when it lands). */
        md_view_update none;
        memset(&none, 0, sizeof none);
        md_stream_update_locked(c, &none);
        more = !c->finishing && !c->closed;
    }
    pthread_mutex_unlock(&c->mu);
    ads_delta_decoded_free(&d);
    if (more && md_call_start_recv(c) != MESH_OK)
        md_call_finish(c, GRPC_STATUS_INTERNAL, "cannot receive on the stream");
}
