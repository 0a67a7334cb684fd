/* meshctl/meshctl_proxy_state.c — proxy-status state rules (see meshctl_proxy_state.h). */
#include "meshctl/meshctl_proxy_state.h"

#include <string.h>

ctl_type_state ctl_type_state_of(const store_proxy_type_status *t, int connected)
{
    if (!t || !t->sent_version || !t->sent_version[0])
        return connected ? CTL_TYPE_NONE : (t && t->acked_version && t->acked_version[0]
                                                ? CTL_TYPE_LAST
                                                : CTL_TYPE_NONE);
    if (!connected)
        return CTL_TYPE_LAST;
    if (t->acked_version && strcmp(t->sent_version, t->acked_version) == 0)
        return CTL_TYPE_SYNCED;
    if (t->nack_version && strcmp(t->nack_version, t->sent_version) == 0)
        return CTL_TYPE_NACKED;
    return CTL_TYPE_PENDING;
}

ctl_proxy_state ctl_proxy_state_of(const store_proxy *p)
{
    if (p->stale)
        return CTL_PROXY_LOST;
    if (!p->connected)
        return CTL_PROXY_DOWN;
    for (size_t i = 0; i < p->n_types; i++) {
        ctl_type_state s = ctl_type_state_of(&p->types[i], 1);
        if (s == CTL_TYPE_PENDING || s == CTL_TYPE_NACKED)
            return CTL_PROXY_STALE;
    }
    return CTL_PROXY_CONNECTED;
}

const char *ctl_proxy_state_name(ctl_proxy_state s)
{
    switch (s) {
    case CTL_PROXY_CONNECTED: return "connected";
    case CTL_PROXY_STALE: return "stale";
    case CTL_PROXY_DOWN: return "down";
    case CTL_PROXY_LOST: return "lost";
    }
    return "down";
}

const char *ctl_type_state_name(ctl_type_state s)
{
    switch (s) {
    case CTL_TYPE_NONE: return "none";
    case CTL_TYPE_SYNCED: return "synced";
    case CTL_TYPE_PENDING: return "pending";
    case CTL_TYPE_NACKED: return "nacked";
    case CTL_TYPE_LAST: return "last";
    }
    return "none";
}
