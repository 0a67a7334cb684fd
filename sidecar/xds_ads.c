/* sidecar/xds_ads.c — the ADS stream's gRPC batches (see xds_ads.h). */
#include "sidecar/xds_ads.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mgrpc.h"

static int arm_recv(xdsc_ads *a, bool with_md)
{
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (with_md) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &a->md_initial;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &a->recv_buf;
    if (grpc_call_start_batch(a->call, ops, n, &a->t_recv, NULL) != GRPC_CALL_OK)
        return MESH_EINTERNAL;
    a->outstanding++;
    return MESH_OK;
}

int xdsc_ads_start(xdsc_ads *a, grpc_completion_queue *cq, grpc_channel *ch, mesh_err *err)
{
    memset(a, 0, sizeof *a);
    a->ch = ch;
    a->t_send = (xdsc_tag){XDSC_TAG_ADS_SEND, a};
    a->t_recv = (xdsc_tag){XDSC_TAG_ADS_RECV, a};
    a->t_status = (xdsc_tag){XDSC_TAG_ADS_STATUS, a};
    a->details = grpc_empty_slice();
    grpc_metadata_array_init(&a->md_initial);
    grpc_metadata_array_init(&a->md_trailing);
    grpc_slice method = grpc_slice_from_static_string(XDS_METHOD_ADS);
    a->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (!a->call) {
        xdsc_ads_destroy(a);
        return mesh_err_set(err, MESH_EINTERNAL, "cannot create the ADS call");
    }
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &a->md_trailing;
    op.data.recv_status_on_client.status = &a->status;
    op.data.recv_status_on_client.status_details = &a->details;
    if (grpc_call_start_batch(a->call, &op, 1, &a->t_status, NULL) != GRPC_CALL_OK) {
        xdsc_ads_destroy(a);
        return mesh_err_set(err, MESH_EINTERNAL, "cannot start the ADS status batch");
    }
    a->outstanding++;
    if (arm_recv(a, true) != MESH_OK) {
        /* The status batch is in flight: cancel and let it drain. */
        grpc_call_cancel(a->call, NULL);
        return mesh_err_set(err, MESH_EINTERNAL, "cannot start the ADS receive batch");
    }
    return MESH_OK;
}

int xdsc_ads_send(xdsc_ads *a, uint8_t *data, size_t len, mesh_err *err)
{
    if (a->send_busy) {
        free(data);
        return mesh_err_set(err, MESH_EBUSY, "an ADS request is already in flight");
    }
    if (a->closed || !a->call) {
        free(data);
        return mesh_err_set(err, MESH_EIO, "the ADS stream is closed");
    }
    a->send_buf = mgrpc_buffer_take(data, len);
    if (!a->send_buf)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!a->md_sent) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n++].data.send_initial_metadata.count = 0;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = a->send_buf;
    if (grpc_call_start_batch(a->call, ops, n, &a->t_send, NULL) != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(a->send_buf);
        a->send_buf = NULL;
        return mesh_err_set(err, MESH_EINTERNAL, "cannot start an ADS send");
    }
    a->md_sent = true;
    a->send_busy = true;
    a->outstanding++;
    return MESH_OK;
}

enum xdsc_ads_event xdsc_ads_on_tag(xdsc_ads *a, const xdsc_tag *tag, bool ok, uint8_t **msg,
                                    size_t *len)
{
    *msg = NULL;
    *len = 0;
    a->outstanding--;
    switch (tag->kind) {
    case XDSC_TAG_ADS_SEND:
        grpc_byte_buffer_destroy(a->send_buf);
        a->send_buf = NULL;
        a->send_busy = false;
        /* A failed send means the call is going away; the status says why. */
        return ok ? XDSC_ADS_EV_SENT : XDSC_ADS_EV_NONE;
    case XDSC_TAG_ADS_RECV: {
        grpc_byte_buffer *bb = a->recv_buf;
        a->recv_buf = NULL;
        if (!ok || !bb)
            return XDSC_ADS_EV_NONE;   /* read side over; the status follows */
        mesh_err err;
        int rc = mgrpc_buffer_to_bytes(bb, msg, len, &err);
        grpc_byte_buffer_destroy(bb);
        if (rc != MESH_OK) {
            log_warn("xds", "dropping the ADS stream: %s", err.msg);
            grpc_call_cancel(a->call, NULL);
            return XDSC_ADS_EV_NONE;
        }
        a->n_received++;
        if (!a->closed && arm_recv(a, false) != MESH_OK)
            grpc_call_cancel(a->call, NULL);
        return XDSC_ADS_EV_MESSAGE;
    }
    case XDSC_TAG_ADS_STATUS:
        a->closed = true;
        return XDSC_ADS_EV_CLOSED;
    default:
        return XDSC_ADS_EV_NONE;
    }
}

void xdsc_ads_cancel(xdsc_ads *a)
{
    if (a->call && !a->closed)
        grpc_call_cancel(a->call, NULL);
}

bool xdsc_ads_done(const xdsc_ads *a)
{
    return a->outstanding == 0;
}

void xdsc_ads_destroy(xdsc_ads *a)
{
    if (a->call)
        grpc_call_unref(a->call);
    if (a->ch)
        grpc_channel_destroy(a->ch);
    if (a->recv_buf)
        grpc_byte_buffer_destroy(a->recv_buf);
    if (a->send_buf)
        grpc_byte_buffer_destroy(a->send_buf);
    grpc_metadata_array_destroy(&a->md_initial);
    grpc_metadata_array_destroy(&a->md_trailing);
    grpc_slice_unref(a->details);
    memset(a, 0, sizeof *a);
}
