/* sidecar/run_hooks.c — the xDS client's results -> the proxy (config,
 * per-type ACK/NACK bookkeeping, connection state for /config_dump). */
#include "sidecar/run.h"

static dp_xds_type dp_type(enum xdsc_type t)
{
    switch (t) {
    case XDSC_LDS: return DP_XDS_LDS;
    case XDSC_RDS: return DP_XDS_RDS;
    case XDSC_CDS: return DP_XDS_CDS;
    case XDSC_EDS: return DP_XDS_EDS;
    default: return DP_XDS_SDS;
    }
}

static int hook_apply(void *ctx, dp_config *cfg, mesh_err *err)
{
    return dp_proxy_apply_config(ctx, cfg, err);
}

static void hook_accepted(void *ctx, enum xdsc_type t, const char *version)
{
    dp_proxy_xds_accepted(ctx, dp_type(t), version);
}

static void hook_rejected(void *ctx, enum xdsc_type t, const char *version, const char *error)
{
    dp_proxy_xds_rejected(ctx, dp_type(t), version, error);
}

static void hook_connected(void *ctx, bool connected, const char *server)
{
    dp_proxy_xds_connected(ctx, connected, server);
}

xdsc_hooks sc_proxy_hooks(dp_proxy *px)
{
    return (xdsc_hooks){
        .ctx = px,
        .apply = hook_apply,
        .accepted = hook_accepted,
        .rejected = hook_rejected,
        .connected = hook_connected,
    };
}
