/* tests/unit/test_sds_codec.c — xDS envelope encoding/decoding (sds/protocol/ads_codec.c), the
 * gRPC helpers that need no server (common/mgrpc.c) and the rotation schedule
 * (sds/certsvc/svid_rotation.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/slice.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "sds/protocol/ads_codec.h"
#include "common/mgrpc.h"
#include "sds/certsvc/svid_rotation.h"

Test(sds_codec, request_roundtrip_with_node_and_nack)
{
    const char *names[] = {"outbound|http", "inbound|8080"};
    uint8_t *buf;
    size_t len;
    mesh_err err = {0};
    cr_assert_eq(ads_request_encode(XDS_TYPE_URL_ROUTE, "v1", "n7", names, 2, "node-1", "bad route",
                                    &buf, &len, &err),
                 MESH_OK);
    ads_decoded d;
    cr_assert_eq(ads_request_decode(buf, len, &d, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(d.req.type_url, XDS_TYPE_URL_ROUTE);
    cr_assert_str_eq(d.req.version_info, "v1");
    cr_assert_str_eq(d.req.response_nonce, "n7");
    cr_assert_eq(d.req.n_names, 2);
    cr_assert_str_eq(d.req.names[1], "inbound|8080");
    cr_assert(d.req.has_error);
    cr_assert_str_eq(d.req.error_message, "bad route");
    cr_assert(d.has_node);
    cr_assert_str_eq(d.node_id, "node-1");
    ads_decoded_free(&d);
    free(buf);
    /* Without node and error. */
    cr_assert_eq(ads_request_encode(XDS_TYPE_URL_LISTENER, NULL, NULL, NULL, 0, NULL, NULL, &buf,
                                    &len, &err),
                 MESH_OK);
    cr_assert_eq(ads_request_decode(buf, len, &d, &err), MESH_OK);
    cr_assert_not(d.has_node);
    cr_assert_str_eq(d.node_id, "");
    cr_assert_not(d.req.has_error);
    cr_assert_str_eq(d.req.version_info, "");
    ads_decoded_free(&d);
    free(buf);
}

Test(sds_codec, empty_request_decodes)
{
    ads_decoded d;
    mesh_err err = {0};
    cr_assert_eq(ads_request_decode((const uint8_t *)"", 0, &d, &err), MESH_OK);
    cr_assert_str_eq(d.req.type_url, "");
    ads_decoded_free(&d);
}

Test(sds_codec, garbage_is_refused)
{
    uint8_t junk[64];
    memset(junk, 0xff, sizeof junk);
    ads_decoded d;
    mesh_err err = {0};
    cr_assert_eq(ads_request_decode(junk, sizeof junk, &d, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "not valid protobuf"), "%s", err.msg);
    cr_assert_null(d.msg);
    ads_decoded_free(&d); /* harmless on a failed decode */
    /* Truncated valid message. */
    uint8_t *buf;
    size_t len;
    const char *names[] = {"a-long-resource-name"};
    ads_request_encode(XDS_TYPE_URL_CLUSTER, "v", "n", names, 1, "node", NULL, &buf, &len, &err);
    cr_assert_eq(ads_request_decode(buf, len - 2, &d, &err), MESH_EINVAL, "cut inside a field");
    free(buf);
}

Test(sds_codec, unknown_fields_are_tolerated)
{
    /* type_url (field 4) plus an unknown field 99 (varint), as a newer Envoy
     * would send. */
    const char *url = XDS_TYPE_URL_LISTENER;
    size_t ul = strlen(url);
    uint8_t buf[256];
    size_t n = 0;
    buf[n++] = (4 << 3) | 2;
    buf[n++] = (uint8_t)ul;
    memcpy(buf + n, url, ul);
    n += ul;
    buf[n++] = (uint8_t)(((99 << 3) | 0) & 0x7f) | 0x80;
    buf[n++] = (uint8_t)((99 << 3) >> 7);
    buf[n++] = 1;
    ads_decoded d;
    mesh_err err = {0};
    cr_assert_eq(ads_request_decode(buf, n, &d, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(d.req.type_url, XDS_TYPE_URL_LISTENER);
    ads_decoded_free(&d);
}

Test(sds_codec, abusive_name_lists_are_refused)
{
    size_t n = ADS_MAX_NAMES + 1;
    const char **names = calloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++)
        names[i] = "x";
    uint8_t *buf;
    size_t len;
    mesh_err err = {0};
    cr_assert_eq(ads_request_encode(XDS_TYPE_URL_ENDPOINT, "", "", names, n, NULL, NULL, &buf, &len,
                                    &err),
                 MESH_OK);
    ads_decoded d;
    cr_assert_eq(ads_request_decode(buf, len, &d, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "resource names"), "%s", err.msg);
    free(buf);
    free(names);
    char *longname = malloc(ADS_MAX_NAME_LEN + 2);
    memset(longname, 'a', ADS_MAX_NAME_LEN + 1);
    longname[ADS_MAX_NAME_LEN + 1] = '\0';
    const char *one[] = {longname};
    ads_request_encode(XDS_TYPE_URL_ENDPOINT, "", "", one, 1, NULL, NULL, &buf, &len, &err);
    cr_assert_eq(ads_request_decode(buf, len, &d, &err), MESH_EINVAL);
    free(buf);
    free(longname);
}

Test(sds_codec, response_wraps_resources_in_any)
{
    xds_resource r[2];
    memset(r, 0, sizeof r);
    r[0].name = "a";
    r[0].data = (uint8_t *)"\x0a\x01" "a";
    r[0].len = 3;
    r[1].name = "b";
    r[1].data = (uint8_t *)"";
    r[1].len = 0;
    const xds_resource *items[] = {&r[0], &r[1]};
    uint8_t *buf;
    size_t len;
    mesh_err err = {0};
    cr_assert_eq(ads_response_encode(XDS_TYPE_URL_CLUSTER, "ver", "nonce-1", items, 2, "meshd/x",
                                     &buf, &len, &err),
                 MESH_OK);
    Envoy__Service__Discovery__V3__DiscoveryResponse *m =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, buf);
    cr_assert_not_null(m);
    cr_assert_str_eq(m->version_info, "ver");
    cr_assert_str_eq(m->nonce, "nonce-1");
    cr_assert_str_eq(m->type_url, XDS_TYPE_URL_CLUSTER);
    cr_assert_eq(m->n_resources, 2);
    cr_assert_str_eq(m->resources[0]->type_url, XDS_TYPE_URL_CLUSTER);
    cr_assert_eq(m->resources[0]->value.len, 3);
    cr_assert_eq(memcmp(m->resources[0]->value.data, "\x0a\x01" "a", 3), 0);
    cr_assert_eq(m->resources[1]->value.len, 0);
    cr_assert_str_eq(m->control_plane->identifier, "meshd/x");
    envoy__service__discovery__v3__discovery_response__free_unpacked(m, NULL);
    free(buf);
    /* An empty response (a wildcard type with nothing in it) is valid. */
    cr_assert_eq(ads_response_encode(XDS_TYPE_URL_LISTENER, "v0", "n", NULL, 0, NULL, &buf, &len,
                                     &err),
                 MESH_OK);
    m = envoy__service__discovery__v3__discovery_response__unpack(NULL, len, buf);
    cr_assert_not_null(m);
    cr_assert_eq(m->n_resources, 0);
    cr_assert_null(m->control_plane);
    envoy__service__discovery__v3__discovery_response__free_unpacked(m, NULL);
    free(buf);
}

Test(sds_codec, shared_body_plus_nonce_field_is_the_same_response)
{
    xds_resource r[2];
    memset(r, 0, sizeof r);
    r[0].name = "a";
    r[0].data = (uint8_t *)"\x0a\x01" "a";
    r[0].len = 3;
    r[1].name = "b";
    r[1].data = (uint8_t *)"\x0a\x01" "b";
    r[1].len = 3;
    const xds_resource *items[] = {&r[0], &r[1]};
    uint8_t *full, *body;
    size_t full_len, body_len;
    mesh_err err = {0};
    cr_assert_eq(ads_response_encode(XDS_TYPE_URL_ROUTE, "v1", "n-42", items, 2, "meshd/x", &full,
                                     &full_len, &err),
                 MESH_OK);
    cr_assert_eq(ads_response_encode_body(XDS_TYPE_URL_ROUTE, "v1", items, 2, "meshd/x", &body,
                                          &body_len, &err),
                 MESH_OK);
    Envoy__Service__Discovery__V3__DiscoveryResponse *m =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, body_len, body);
    cr_assert_not_null(m);
    cr_assert_str_eq(m->nonce, "", "the body carries no nonce");
    envoy__service__discovery__v3__discovery_response__free_unpacked(m, NULL);
    uint8_t nf[ADS_NONCE_FIELD_MAX];
    size_t nlen = ads_response_nonce_field("n-42", nf, sizeof nf);
    cr_assert_eq(nlen, 6);
    cr_assert_eq(body_len + nlen, full_len, "same size as the one-piece encoding");
    uint8_t *joined = malloc(body_len + nlen);
    memcpy(joined, body, body_len);
    memcpy(joined + body_len, nf, nlen);
    m = envoy__service__discovery__v3__discovery_response__unpack(NULL, body_len + nlen, joined);
    cr_assert_not_null(m);
    cr_assert_str_eq(m->nonce, "n-42");
    cr_assert_str_eq(m->version_info, "v1");
    cr_assert_str_eq(m->type_url, XDS_TYPE_URL_ROUTE);
    cr_assert_eq(m->n_resources, 2);
    cr_assert_eq(memcmp(m->resources[1]->value.data, "\x0a\x01" "b", 3), 0);
    cr_assert_str_eq(m->control_plane->identifier, "meshd/x");
    /* Re-encoding the decoded message gives the one-piece bytes exactly. */
    size_t re_len = envoy__service__discovery__v3__discovery_response__get_packed_size(m);
    cr_assert_eq(re_len, full_len);
    uint8_t *re = malloc(re_len);
    envoy__service__discovery__v3__discovery_response__pack(m, re);
    cr_assert_eq(memcmp(re, full, full_len), 0);
    envoy__service__discovery__v3__discovery_response__free_unpacked(m, NULL);
    free(re);
    free(joined);
    free(body);
    free(full);
    /* Nonces that do not fit are refused, not truncated. */
    char longn[200];
    memset(longn, 'x', sizeof longn - 1);
    longn[sizeof longn - 1] = '\0';
    cr_assert_eq(ads_response_nonce_field(longn, nf, sizeof nf), 0);
    cr_assert_eq(ads_response_nonce_field("abc", nf, 4), 0, "no room for tag + length + 3");
    cr_assert_eq(ads_response_nonce_field("", nf, sizeof nf), 0);
}

Test(sds_codec, printable_and_status_names)
{
    char buf[16];
    cr_assert_str_eq(mgrpc_printable("abc", buf, sizeof buf), "abc");
    cr_assert_str_eq(mgrpc_printable("a\nb\x01", buf, sizeof buf), "a\\nb\\x01");
    cr_assert_str_eq(mgrpc_printable("0123456789abcdefghij", buf, sizeof buf), "0123456789ab...");
    cr_assert_str_eq(mgrpc_printable(NULL, buf, sizeof buf), "");
    cr_assert_str_eq(mgrpc_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
    cr_assert_str_eq(mgrpc_status_name(GRPC_STATUS_PERMISSION_DENIED), "PERMISSION_DENIED");
    cr_assert_str_eq(mgrpc_status_name((grpc_status_code)99), "UNKNOWN");
}

Test(sds_codec, metadata_lookup_and_buffers)
{
    grpc_init();
    grpc_metadata md[2];
    memset(md, 0, sizeof md);
    md[0].key = grpc_slice_from_static_string("x-other");
    md[0].value = grpc_slice_from_static_string("1");
    md[1].key = grpc_slice_from_static_string("authorization");
    md[1].value = grpc_slice_from_static_string("Bearer mjt_x");
    grpc_metadata_array a = {.count = 2, .capacity = 2, .metadata = md};
    char buf[32];
    cr_assert_eq(mgrpc_md_get(&a, "authorization", buf, sizeof buf), 12);
    cr_assert_str_eq(buf, "Bearer mjt_x");
    cr_assert_eq(mgrpc_md_get(&a, "missing", buf, sizeof buf), -1);
    cr_assert_eq(mgrpc_md_get(&a, "authorization", buf, 5), -2, "too long for the buffer");
    uint8_t *data = malloc(5);
    memcpy(data, "hello", 5);
    grpc_byte_buffer *bb = mgrpc_buffer_take(data, 5);
    uint8_t *out;
    size_t len;
    mesh_err err = {0};
    cr_assert_eq(mgrpc_buffer_to_bytes(bb, &out, &len, &err), MESH_OK);
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(out, "hello", 5), 0);
    free(out);
    grpc_byte_buffer_destroy(bb);
    bb = mgrpc_buffer_take(malloc(1), 0);
    cr_assert_eq(mgrpc_buffer_to_bytes(bb, &out, &len, &err), MESH_OK);
    cr_assert_eq(len, 0);
    free(out);
    grpc_byte_buffer_destroy(bb);
    grpc_shutdown();
}

Test(sds_codec, rotation_due_at_fraction_with_bounded_jitter)
{
    int64_t nb = 1000000, na = nb + 10 + 86400; /* 24h SVID, 10 s backdate */
    int64_t lo = INT64_MAX, hi = 0;
    char serial[32];
    for (int i = 0; i < 500; i++) {
        snprintf(serial, sizeof serial, "%x", i * 7919);
        int64_t due = svid_rotation_due(nb, na, 0.5, serial);
        lo = due < lo ? due : lo;
        hi = due > hi ? due : hi;
        cr_assert_eq(due, svid_rotation_due(nb, na, 0.5, serial), "stable per serial");
    }
    int64_t start = nb + 10;
    cr_assert_geq(lo, start + (int64_t)(86400 * 0.45) - 1);
    cr_assert_leq(hi, start + (int64_t)(86400 * 0.55) + 1);
    cr_assert_gt(hi - lo, 86400 / 20, "jitter actually spreads renewals (%lld s)",
                 (long long)(hi - lo));
    /* Short drill TTLs are counted from issuance: a 10 s SVID is due after ~5 s, not at once. */
    int64_t due = svid_rotation_due(2000, 2000 + 10 + 10, 0.5, "ab");
    cr_assert_geq(due, 2010 + 4);
    cr_assert_leq(due, 2010 + 6);
    /* Fractions near 1 never reach notAfter. */
    cr_assert_lt(svid_rotation_due(0, 1000, 0.9, "ff"), 1000);
}
