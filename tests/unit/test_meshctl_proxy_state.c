/* tests/unit/test_meshctl_proxy_state.c — proxy-status state rules (issue 13):
 * connected = live stream with every type ACKed at the latest version; stale = live
 * but some type pending or NACKed; down = no stream; a type is SYNCED only on a live
 * stream (a sidecar that went away never shows SYNCED); which instance a row is. */
#include <criterion/criterion.h>
#include <string.h>

#include "meshctl/meshctl_proxy_state.h"

static store_proxy_type_status ty(const char *sent, const char *acked, const char *nack)
{
    store_proxy_type_status t;
    memset(&t, 0, sizeof t);
    t.type_url = (char *)"type.googleapis.com/envoy.config.cluster.v3.Cluster";
    t.sent_version = (char *)sent;
    t.acked_version = (char *)acked;
    t.nack_version = (char *)nack;
    t.nack_error = (char *)"";
    return t;
}

Test(meshctl_proxy_state, type_states)
{
    store_proxy_type_status t = ty("v2", "v2", "");
    cr_assert_eq(ctl_type_state_of(&t, 1), CTL_TYPE_SYNCED);
    cr_assert_eq(ctl_type_state_of(&t, 0), CTL_TYPE_LAST, "down: never SYNCED");
    t = ty("v3", "v2", "");
    cr_assert_eq(ctl_type_state_of(&t, 1), CTL_TYPE_PENDING);
    t = ty("v3", "v2", "v3");
    cr_assert_eq(ctl_type_state_of(&t, 1), CTL_TYPE_NACKED);
    t = ty("v4", "v4", "v3");
    cr_assert_eq(ctl_type_state_of(&t, 1), CTL_TYPE_SYNCED, "an old NACK, since ACKed past");
    t = ty("", "", "");
    cr_assert_eq(ctl_type_state_of(&t, 1), CTL_TYPE_NONE);
    cr_assert_eq(ctl_type_state_of(NULL, 1), CTL_TYPE_NONE);
    cr_assert_eq(ctl_type_state_of(&t, 0), CTL_TYPE_NONE);
    t = ty("", "v1", "");
    cr_assert_eq(ctl_type_state_of(&t, 0), CTL_TYPE_LAST);
    cr_assert_str_eq(ctl_type_state_name(CTL_TYPE_LAST), "last");
}

Test(meshctl_proxy_state, row_states)
{
    store_proxy_type_status ts[2] = {ty("a", "a", ""), ty("b", "b", "")};
    store_proxy p;
    memset(&p, 0, sizeof p);
    p.types = ts;
    p.n_types = 2;
    p.connected = 1;
    cr_assert_eq(ctl_proxy_state_of(&p), CTL_PROXY_CONNECTED);
    cr_assert_str_eq(ctl_proxy_state_name(ctl_proxy_state_of(&p)), "connected");
    ts[1] = ty("c", "b", "");
    cr_assert_eq(ctl_proxy_state_of(&p), CTL_PROXY_STALE, "one type behind");
    ts[1] = ty("c", "b", "c");
    cr_assert_eq(ctl_proxy_state_of(&p), CTL_PROXY_STALE, "one type NACKed");
    cr_assert_str_eq(ctl_proxy_state_name(CTL_PROXY_STALE), "stale");
    p.connected = 0;
    ts[1] = ty("b", "b", "");
    cr_assert_eq(ctl_proxy_state_of(&p), CTL_PROXY_DOWN, "all ACKed, but no stream");
    cr_assert_str_eq(ctl_proxy_state_name(CTL_PROXY_DOWN), "down");
    p.connected = 1;
    p.n_types = 0;
    cr_assert_eq(ctl_proxy_state_of(&p), CTL_PROXY_CONNECTED, "nothing sent yet");
}

Test(meshctl_proxy_state, row_instance)
{
    const char *id = "spiffe://example.org/ns/a/sa/api";
    cr_assert_str_eq(store_proxy_instance_of(id, "api-1"), "api-1");
    cr_assert_str_eq(store_proxy_instance_of(id, id), "");
    cr_assert_str_eq(store_proxy_instance_of(id, "spiffe://example.org/ns/a/sa/api#api-2"),
                     "api-2");
    cr_assert_null(store_proxy_instance_of("unverified:x", "api-1"));
}

/* A row held by a replica that went quiet (store_proxy.stale, issue 14): "lost",
 * whatever its types say, and its types are not SYNCED (it reads as not connected). */
Test(meshctl_proxy_state, row_of_a_quiet_replica_is_lost)
{
    store_proxy_type_status t = ty("v2", "v2", "");
    store_proxy p;
    memset(&p, 0, sizeof p);
    p.types = &t;
    p.n_types = 1;
    p.connected = 0;
    p.stale = 1;
    cr_assert_eq(ctl_proxy_state_of(&p), CTL_PROXY_LOST);
    cr_assert_str_eq(ctl_proxy_state_name(CTL_PROXY_LOST), "lost");
    cr_assert_eq(ctl_type_state_of(&t, p.connected), CTL_TYPE_LAST);
    p.stale = 0;
    cr_assert_eq(ctl_proxy_state_of(&p), CTL_PROXY_DOWN);
}
