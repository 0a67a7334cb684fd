/* sidecar/xds_ads.h — one ADS stream (StreamAggregatedResources) on the gRPC C core.
 *
 * Owns its channel and call. Three kinds of batches: a receive (re-armed
 * after every message), at most one send in flight (the caller sends the next
 * request when XDSC_ADS_EV_SENT arrives), and the final status. Completions
 * come back through the client's completion queue as xdsc_tags; the object
 * may only be destroyed once every batch it started has completed
 * (xdsc_ads_done), which the C core guarantees after the status arrives. */
#ifndef MESH_SIDECAR_XDS_ADS_H
#define MESH_SIDECAR_XDS_ADS_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "sidecar/xds_grpc.h"

enum xdsc_ads_event {
    XDSC_ADS_EV_NONE = 0,
    XDSC_ADS_EV_MESSAGE,    /* a DiscoveryResponse arrived (bytes handed out) */
    XDSC_ADS_EV_SENT,       /* the in-flight request left; the next may go */
    XDSC_ADS_EV_CLOSED,     /* the stream ended: status and details are set */
};

typedef struct xdsc_ads {
    grpc_channel *ch;
    grpc_call *call;
    xdsc_tag t_send, t_recv, t_status;
    int outstanding;            /* batches started and not completed */
    bool send_busy;
    bool md_sent;               /* initial metadata went with the first send */
    bool closed;                /* status received */
    grpc_metadata_array md_initial, md_trailing;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    grpc_status_code status;
    grpc_slice details;
    uint64_t n_received;
} xdsc_ads;

/* Starts the stream on ch (taken over: destroyed with the stream). */
int xdsc_ads_start(xdsc_ads *a, grpc_completion_queue *cq, grpc_channel *ch, mesh_err *err);

/* Queues one serialized DiscoveryRequest (takes data). MESH_EBUSY while a send
 * is in flight, MESH_EIO once the stream is closing. */
int xdsc_ads_send(xdsc_ads *a, uint8_t *data, size_t len, mesh_err *err);

/* Handles one completion of a's tags. On XDSC_ADS_EV_MESSAGE *msg (malloc'd,
 * caller frees) and *len hold the response. */
enum xdsc_ads_event xdsc_ads_on_tag(xdsc_ads *a, const xdsc_tag *tag, bool ok, uint8_t **msg,
                                    size_t *len);

/* Ends the stream from our side (status CANCELLED follows). */
void xdsc_ads_cancel(xdsc_ads *a);
/* Every started batch has completed: safe to destroy. */
bool xdsc_ads_done(const xdsc_ads *a);
void xdsc_ads_destroy(xdsc_ads *a);

#endif
