/* sidecar/xds_grpc.h — gRPC C core pieces of the sidecar's control-plane client.
 *
 * One completion queue per client thread carries every call (the ADS stream
 * and CreateCertificate); each batch completes with an xdsc_tag naming what
 * finished. Channels are made per connection attempt: the SSL channel
 * credentials of gRPC 1.51 cannot reload a client certificate, and a fresh
 * channel with a local subchannel pool also bypasses gRPC's own reconnect
 * backoff (up to 120 s), so our backoff alone decides when meshd is tried. */
#ifndef MESH_SIDECAR_XDS_GRPC_H
#define MESH_SIDECAR_XDS_GRPC_H

#include <grpc/grpc.h>
#include <stdint.h>

#include "common/error.h"
#include "common/xds_wire.h"

#define XDSC_DEFAULT_SERVER_NAME "meshd"

enum xdsc_tag_kind {
    XDSC_TAG_ADS_SEND = 1,
    XDSC_TAG_ADS_RECV,
    XDSC_TAG_ADS_STATUS,
    XDSC_TAG_CSR,
};

typedef struct xdsc_tag {
    enum xdsc_tag_kind kind;
    void *owner;
} xdsc_tag;

/* A channel to target. root_pem verifies meshd's serving certificate (whose
 * name must be server_name); key_pem + chain_pem, when both set, are our
 * client certificate (mTLS), otherwise the channel is server-authenticated
 * only. NULL with err set on failure. */
grpc_channel *xdsc_channel_create(const char *target, const char *server_name,
                                  const char *root_pem, const char *key_pem,
                                  const char *chain_pem, mesh_err *err);

/* A deadline `ms` from now on the monotonic clock (INT64_MAX: infinite). */
gpr_timespec xdsc_deadline_ms(int64_t ms);

/* Milliseconds on the monotonic clock, and Unix seconds. */
int64_t xdsc_now_ms(void);
int64_t xdsc_now_unix(void);

/* A copy of a status details slice, printable and bounded, for logs. */
void xdsc_status_text(grpc_slice details, char *buf, size_t len);

#endif
