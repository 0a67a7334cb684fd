/* meshctl/meshctl_proxy_state.h — what `meshctl proxy-status` calls each row and each
 * xDS type (docs/control-plane.md "Proxy status"):
 *   connected  a live stream, and every type it was sent is ACKed at the latest version;
 *   stale      a live stream, but some type is not ACKed at the version meshd sent
 *              last (pending), or that version was NACKed;
 *   down       no stream: the row shows when it was last seen (never, for an
 *              instance of the config no sidecar ever connected for);
 *   lost       its row says connected, but the meshd replica that held the stream
 *              stopped heartbeating (crashed, or cut off from the store): read as
 *              not connected, last seen at that replica's last heartbeat.
 * A type is SYNCED only on a live stream: a sidecar that went away shows the
 * version it last ACKed as LAST, never as SYNCED. Pure rules, unit tested. */
#ifndef MESH_MESHCTL_MESHCTL_PROXY_STATE_H
#define MESH_MESHCTL_MESHCTL_PROXY_STATE_H

#include "store/store.h"

typedef enum ctl_proxy_state {
    CTL_PROXY_CONNECTED, CTL_PROXY_STALE, CTL_PROXY_DOWN, CTL_PROXY_LOST
} ctl_proxy_state;

typedef enum ctl_type_state {
    CTL_TYPE_NONE,      /* nothing sent yet */
    CTL_TYPE_SYNCED,    /* live, ACKed at the version sent last */
    CTL_TYPE_PENDING,   /* live, the version sent last not ACKed yet */
    CTL_TYPE_NACKED,    /* live, the version sent last was NACKed */
    CTL_TYPE_LAST,      /* down: the version it last ACKed, no claim it still holds it */
} ctl_type_state;

ctl_type_state ctl_type_state_of(const store_proxy_type_status *t, int connected);
ctl_proxy_state ctl_proxy_state_of(const store_proxy *p);
const char *ctl_proxy_state_name(ctl_proxy_state s);   /* "connected", "stale", "down", "lost" */
const char *ctl_type_state_name(ctl_type_state s);     /* "none", "synced", ... */

#endif
