/* tests/unit/test_meshd_encode.c — responses encoded once per snapshot and shared
 * (meshd/meshd_encode.c): streams sending the same (type, version) of a snapshot get
 * byte buffers over the same body slice, each with its own nonce, and every message
 * decodes as the one-piece encoding would. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "meshd/meshd_internal.h"
#include "common/mgrpc.h"

static md_ctx *ctx;
static md_snap *snap;
static xds_resource res[2];

static void setup(void)
{
    grpc_init();
    ctx = calloc(1, sizeof *ctx);
    snprintf(ctx->control_plane_id, sizeof ctx->control_plane_id, "meshd/test");
    snap = calloc(1, sizeof *snap);
    atomic_init(&snap->refs, 1);
    md_snap_enc_init(snap);
    res[0] = (xds_resource){.name = "outbound|http", .data = (uint8_t *)"\x0a\x02rt", .len = 4};
    res[1] = (xds_resource){.name = "z", .data = (uint8_t *)"\x0a\x01z", .len = 3};
}

static void teardown(void)
{
    md_snap_unref(snap);
    free(ctx);
    grpc_shutdown();
}

TestSuite(meshd_encode, .init = setup, .fini = teardown);

static ads_send send_of(const char *version, const char *nonce, const xds_resource **items,
                        size_t n)
{
    ads_send sd;
    memset(&sd, 0, sizeof sd);
    sd.type = ADS_T_RDS;
    snprintf(sd.version, sizeof sd.version, "%s", version);
    snprintf(sd.nonce, sizeof sd.nonce, "%s", nonce);
    sd.items = items;
    sd.n = n;
    return sd;
}

static const uint8_t *first_slice(grpc_byte_buffer *bb)
{
    return GRPC_SLICE_START_PTR(bb->data.raw.slice_buffer.slices[0]);
}

static Envoy__Service__Discovery__V3__DiscoveryResponse *decode(grpc_byte_buffer *bb)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = {0};
    cr_assert_eq(mgrpc_buffer_to_bytes(bb, &buf, &len, &err), MESH_OK);
    Envoy__Service__Discovery__V3__DiscoveryResponse *m =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, buf);
    free(buf);
    cr_assert_not_null(m);
    return m;
}

Test(meshd_encode, same_version_shares_one_body_with_own_nonces)
{
    const xds_resource *items[] = {&res[0], &res[1]};
    ads_send a = send_of("00000000000000aa", "n1", items, 2);
    ads_send b = send_of("00000000000000aa", "n2", items, 2);
    size_t la, lb;
    mesh_err err = {0};
    grpc_byte_buffer *ba = md_encode_response(ctx, snap, &a, &la, &err);
    grpc_byte_buffer *bbuf = md_encode_response(ctx, snap, &b, &lb, &err);
    cr_assert_not_null(ba);
    cr_assert_not_null(bbuf);
    cr_assert_eq(first_slice(ba), first_slice(bbuf), "one body for both streams");
    cr_assert_eq(la, grpc_byte_buffer_length(ba));
    cr_assert_eq(la, lb);
    Envoy__Service__Discovery__V3__DiscoveryResponse *ma = decode(ba), *mb = decode(bbuf);
    cr_assert_str_eq(ma->nonce, "n1");
    cr_assert_str_eq(mb->nonce, "n2");
    cr_assert_str_eq(ma->version_info, "00000000000000aa");
    cr_assert_eq(ma->n_resources, 2);
    cr_assert_str_eq(ma->control_plane->identifier, "meshd/test");
    envoy__service__discovery__v3__discovery_response__free_unpacked(ma, NULL);
    envoy__service__discovery__v3__discovery_response__free_unpacked(mb, NULL);
    /* The snapshot may go while messages are still queued: they hold the body. */
    md_snap_unref(snap);
    snap = calloc(1, sizeof *snap);
    atomic_init(&snap->refs, 1);
    md_snap_enc_init(snap);
    Envoy__Service__Discovery__V3__DiscoveryResponse *again = decode(ba);
    cr_assert_eq(again->n_resources, 2);
    envoy__service__discovery__v3__discovery_response__free_unpacked(again, NULL);
    grpc_byte_buffer_destroy(ba);
    grpc_byte_buffer_destroy(bbuf);
}

Test(meshd_encode, other_version_or_no_snapshot_is_encoded_anew)
{
    const xds_resource *both[] = {&res[0], &res[1]};
    const xds_resource *one[] = {&res[0]};
    ads_send a = send_of("00000000000000aa", "n1", both, 2);
    ads_send b = send_of("00000000000000bb", "n2", one, 1);
    size_t len;
    mesh_err err = {0};
    grpc_byte_buffer *ba = md_encode_response(ctx, snap, &a, &len, &err);
    grpc_byte_buffer *bbuf = md_encode_response(ctx, snap, &b, &len, &err);
    cr_assert_neq(first_slice(ba), first_slice(bbuf), "another subset: its own body");
    Envoy__Service__Discovery__V3__DiscoveryResponse *mb = decode(bbuf);
    cr_assert_eq(mb->n_resources, 1, "not the cached body of another version");
    envoy__service__discovery__v3__discovery_response__free_unpacked(mb, NULL);
    grpc_byte_buffer *c1 = md_encode_response(ctx, NULL, &a, &len, &err);
    grpc_byte_buffer *c2 = md_encode_response(ctx, NULL, &a, &len, &err);
    cr_assert_neq(first_slice(c1), first_slice(c2), "without a snapshot nothing is shared");
    Envoy__Service__Discovery__V3__DiscoveryResponse *mc = decode(c2);
    cr_assert_eq(mc->n_resources, 2);
    cr_assert_str_eq(mc->nonce, "n1");
    envoy__service__discovery__v3__discovery_response__free_unpacked(mc, NULL);
    grpc_byte_buffer_destroy(ba);
    grpc_byte_buffer_destroy(bbuf);
    grpc_byte_buffer_destroy(c1);
    grpc_byte_buffer_destroy(c2);
}
