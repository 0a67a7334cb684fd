/* sidecar/xds_grpc.c — channels, deadlines and clocks for the control-plane client
 * (see xds_grpc.h). */
#include "sidecar/xds_grpc.h"

#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

grpc_channel *xdsc_channel_create(const char *target, const char *server_name,
                                  const char *root_pem, const char *key_pem,
                                  const char *chain_pem, mesh_err *err)
{
    if (!root_pem || !root_pem[0]) {
        mesh_err_set(err, MESH_EINVAL, "no trust bundle to verify meshd with");
        return NULL;
    }
    grpc_ssl_pem_key_cert_pair pair = {.private_key = key_pem, .cert_chain = chain_pem};
    bool mtls = key_pem && chain_pem;
    grpc_channel_credentials *creds =
        grpc_ssl_credentials_create_ex(root_pem, mtls ? &pair : NULL, NULL, NULL);
    if (!creds) {
        mesh_err_set(err, MESH_ECRYPTO, "cannot build TLS credentials for meshd");
        return NULL;
    }
    grpc_arg args[7];
    int n = 0;
    args[n].type = GRPC_ARG_STRING;
    args[n].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[n++].value.string = (char *)(server_name && server_name[0] ? server_name
                                                                    : XDSC_DEFAULT_SERVER_NAME);
    /* Our own backoff decides when to retry; never share a subchannel (and its
     * backoff state) with another channel. */
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[n++].value.integer = 1;
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[n++].value.integer = XDS_WIRE_MAX_MESSAGE; /* what meshd never exceeds */
    /* Keepalive finds a meshd that vanished without a FIN (host crash,
     * partition). Six minutes stays above gRPC servers' default minimum ping
     * interval (5 min) so meshd never answers with "too_many_pings". */
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_KEEPALIVE_TIME_MS;
    args[n++].value.integer = 6 * 60 * 1000;
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
    args[n++].value.integer = 20 * 1000;
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
    args[n++].value.integer = 250;
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[n++].value.integer = 30 * 1000;
    grpc_channel_args ca = {.num_args = (size_t)n, .args = args};
    grpc_channel *ch = grpc_channel_create(target, creds, &ca);
    grpc_channel_credentials_release(creds);
    if (!ch)
        mesh_err_set(err, MESH_EINTERNAL, "cannot create a gRPC channel to %s", target);
    return ch;
}

gpr_timespec xdsc_deadline_ms(int64_t ms)
{
    if (ms == INT64_MAX)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    if (ms < 0)
        ms = 0;
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

int64_t xdsc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t xdsc_now_unix(void)
{
    return (int64_t)time(NULL);
}

void xdsc_status_text(grpc_slice details, char *buf, size_t len)
{
    size_t n = GRPC_SLICE_LENGTH(details);
    const unsigned char *p = GRPC_SLICE_START_PTR(details);
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < len; i++)
        buf[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    buf[o] = '\0';
}
