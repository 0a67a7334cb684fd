/* tests/unit/test_common_pb_groups.c — the unknown-group walker (common/pb_groups.c) and the
 * decoders that use it: no group (no copy), one, nested, deep, inside Node and inside a
 * Struct in Node.metadata (the descriptor-driven descent), inside an opaque field (left
 * alone), and every broken shape (mismatched or missing end, truncation, overlong varints,
 * lengths past the end, known fields sent as groups, bad wire types and field numbers)
 * refused with the field number and offset. Messages are written byte by byte here, as a
 * newer client's encoder would put them on the wire. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pb_groups.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "istio/v1/auth/ca.pb-c.h"
#include "sds/protocol/ads_codec.h"
#include "sds/protocol/ads_delta_codec.h"

#define REQ_DESC (&envoy__service__discovery__v3__discovery_request__descriptor)

typedef struct wbuf {
    uint8_t b[8192];
    size_t n;
} wbuf;

static void put_byte(wbuf *w, uint8_t v)
{
    cr_assert_lt(w->n, sizeof w->b);
    w->b[w->n++] = v;
}

static void put_varint(wbuf *w, uint64_t v)
{
    while (v >= 0x80) {
        put_byte(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_byte(w, (uint8_t)v);
}

static void put_tag(wbuf *w, uint32_t num, unsigned wt)
{
    put_varint(w, ((uint64_t)num << 3) | wt);
}

static void put_bytes(wbuf *w, uint32_t num, const void *data, size_t len)
{
    put_tag(w, num, 2);
    put_varint(w, len);
    cr_assert_leq(w->n + len, sizeof w->b);
    memcpy(w->b + w->n, data, len);
    w->n += len;
}

static void put_str(wbuf *w, uint32_t num, const char *s)
{
    put_bytes(w, num, s, strlen(s));
}

static void put_buf(wbuf *w, uint32_t num, const wbuf *inner)
{
    put_bytes(w, num, inner->b, inner->n);
}

/* An unknown group `num` holding one field of every other wire type. */
static void put_group(wbuf *w, uint32_t num)
{
    put_tag(w, num, 3);
    put_tag(w, 1, 0);
    put_varint(w, 300);
    put_tag(w, 2, 1);
    for (int i = 0; i < 8; i++)
        put_byte(w, 0xaa);
    put_tag(w, 3, 5);
    for (int i = 0; i < 4; i++)
        put_byte(w, 0xbb);
    put_str(w, 4, "inside a group");
    put_tag(w, num, 4);
}

/* The fields of a request as our own encoder would write them. */
static void put_request_fields(wbuf *w, const wbuf *node)
{
    put_str(w, 1, "v1");
    if (node)
        put_buf(w, 2, node);
    put_str(w, 3, "default");
    put_str(w, 4, XDS_TYPE_URL_SECRET);
    put_str(w, 5, "n1");
}

static int strip(const wbuf *w, uint8_t **out, size_t *n, mesh_err *err)
{
    return pb_strip_groups(REQ_DESC, w->b, w->n, out, n, err);
}

static void assert_refused(const wbuf *w, const char *want1, const char *want2)
{
    uint8_t *out = (uint8_t *)"untouched";
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(strip(w, &out, &n, &err), MESH_EINVAL);
    cr_assert_null(out);
    cr_assert(strstr(err.msg, want1) && strstr(err.msg, want2), "%s", err.msg);
    /* The decoder gives the same reason, after what was refused. */
    ads_decoded d;
    mesh_err derr = {0};
    cr_assert_eq(ads_request_decode(w->b, w->n, &d, &derr), MESH_EINVAL);
    cr_assert(strstr(derr.msg, "DiscoveryRequest of ") && strstr(derr.msg, want1), "%s",
              derr.msg);
}

Test(pb_groups, a_message_without_groups_is_not_copied)
{
    wbuf node = {0}, w = {0};
    put_str(&node, 1, "node-1");
    put_request_fields(&w, &node);
    put_bytes(&w, 77, "\x1b\x1c", 2); /* unknown, length-delimited: other fields are opaque */
    uint8_t *out = (uint8_t *)"untouched";
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(strip(&w, &out, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_null(out);
    cr_assert_eq(n, w.n);
    cr_assert_eq(pb_strip_groups(REQ_DESC, (const uint8_t *)"", 0, &out, &n, &err), MESH_OK);
    cr_assert_null(out);
}

Test(pb_groups, one_top_level_group_is_dropped_and_the_rest_kept_byte_for_byte)
{
    wbuf node = {0}, plain = {0}, w = {0};
    put_str(&node, 1, "node-1");
    put_request_fields(&plain, &node);
    /* The same fields with a group first, between, and last. */
    put_group(&w, 99);
    put_str(&w, 1, "v1");
    put_buf(&w, 2, &node);
    put_group(&w, 1000);
    put_str(&w, 3, "default");
    put_str(&w, 4, XDS_TYPE_URL_SECRET);
    put_str(&w, 5, "n1");
    put_group(&w, 536870911); /* the largest field number */
    uint8_t *out = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(strip(&w, &out, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_not_null(out);
    cr_assert_eq(n, plain.n);
    cr_assert_eq(memcmp(out, plain.b, n), 0);
    free(out);
    ads_decoded d;
    cr_assert_eq(ads_request_decode(w.b, w.n, &d, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(d.req.type_url, XDS_TYPE_URL_SECRET);
    cr_assert_str_eq(d.node_id, "node-1");
    cr_assert_eq(d.req.n_names, 1);
    cr_assert_str_eq(d.req.names[0], "default");
    cr_assert_str_eq(d.req.response_nonce, "n1");
    ads_decoded_free(&d);
}

Test(pb_groups, groups_nested_in_a_group_are_dropped_with_it)
{
    wbuf w = {0}, plain = {0};
    put_request_fields(&plain, NULL);
    put_tag(&w, 50, 3);
    put_group(&w, 51);
    put_tag(&w, 52, 3);
    put_group(&w, 50); /* the same number inside: matched by nesting, not by number */
    put_tag(&w, 52, 4);
    put_tag(&w, 50, 4);
    put_request_fields(&w, NULL);
    uint8_t *out = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(strip(&w, &out, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, plain.n);
    cr_assert_eq(memcmp(out, plain.b, n), 0);
    free(out);
}

/* Node is a message field: its unknown groups go, its length prefix shrinks in place
 * (a padded varint of the original width), and Node's fields survive. */
Test(pb_groups, a_group_inside_node_is_dropped)
{
    wbuf node = {0}, w = {0};
    put_str(&node, 1, "grp-node");
    put_group(&node, 50);
    for (int i = 0; i < 4; i++)
        put_group(&node, 60 + i); /* Node over 127 bytes: a 2-byte length prefix */
    put_str(&node, 6, "envoy");
    cr_assert_gt(node.n, 127);
    put_request_fields(&w, &node);
    put_group(&w, 99);
    uint8_t *out = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(strip(&w, &out, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_lt(n, w.n);
    Envoy__Service__Discovery__V3__DiscoveryRequest *m =
        envoy__service__discovery__v3__discovery_request__unpack(NULL, n, out);
    cr_assert_not_null(m, "the stripped copy decodes");
    cr_assert_str_eq(m->node->id, "grp-node");
    cr_assert_str_eq(m->node->user_agent_name, "envoy");
    cr_assert_str_eq(m->resource_names[0], "default");
    envoy__service__discovery__v3__discovery_request__free_unpacked(m, NULL);
    free(out);
    ads_decoded d;
    cr_assert_eq(ads_request_decode(w.b, w.n, &d, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(d.node_id, "grp-node");
    cr_assert_str_eq(d.user_agent, "envoy");
    ads_decoded_free(&d);
}

/* Node.metadata is a Struct; a Struct's fields map holds Values, a Value may hold a
 * Struct: the walk follows the descriptors down as far as the message goes. */
static void put_struct_chain(wbuf *out, int levels, int with_group)
{
    wbuf cur = {0};
    if (with_group)
        put_group(&cur, 40);
    for (int i = 0; i < levels; i++) {
        wbuf value = {0}, entry = {0}, st = {0};
        put_buf(&value, 5, &cur); /* Value.struct_value */
        put_str(&entry, 1, "k");
        put_buf(&entry, 2, &value); /* fields entry: key, value */
        put_buf(&st, 1, &entry);    /* Struct.fields */
        cur = st;
    }
    *out = cur;
}

Test(pb_groups, a_group_deep_in_node_metadata_is_dropped)
{
    wbuf meta, node = {0}, w = {0};
    put_struct_chain(&meta, 20, 1);
    put_str(&node, 1, "meta-node");
    put_buf(&node, 3, &meta);
    put_request_fields(&w, &node);
    ads_decoded d;
    mesh_err err = {0};
    cr_assert_eq(ads_request_decode(w.b, w.n, &d, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(d.node_id, "meta-node");
    Envoy__Service__Discovery__V3__DiscoveryRequest *m = d.msg;
    Google__Protobuf__Struct *st = m->node->metadata;
    int depth = 0;
    while (st && st->n_fields == 1) {
        depth++;
        st = st->fields[0]->value->struct_value;
    }
    cr_assert_eq(depth, 20, "every level survived");
    ads_decoded_free(&d);
}

Test(pb_groups, nesting_past_the_limit_is_refused)
{
    /* Groups in groups: PB_GROUPS_MAX_DEPTH levels pass, one more does not. */
    for (int levels = PB_GROUPS_MAX_DEPTH; levels <= PB_GROUPS_MAX_DEPTH + 1; levels++) {
        wbuf w = {0};
        for (int i = 0; i < levels; i++)
            put_tag(&w, 100 + i, 3);
        for (int i = levels - 1; i >= 0; i--)
            put_tag(&w, 100 + i, 4);
        uint8_t *out = NULL;
        size_t n = 0;
        mesh_err err = {0};
        int rc = strip(&w, &out, &n, &err);
        if (levels <= PB_GROUPS_MAX_DEPTH) {
            cr_assert_eq(rc, MESH_OK, "%d levels: %s", levels, err.msg);
            cr_assert_eq(n, 0);
            free(out);
        } else {
            cr_assert_eq(rc, MESH_EINVAL, "%d levels", levels);
            cr_assert(strstr(err.msg, "deeper than 100 levels"), "%s", err.msg);
        }
    }
    /* Messages in messages count too (a Struct chain in Node.metadata). */
    wbuf meta, node = {0}, w = {0};
    put_struct_chain(&meta, 40, 0); /* 3 messages a level */
    put_buf(&node, 3, &meta);
    put_request_fields(&w, &node);
    assert_refused(&w, "deeper than 100 levels", "offset");
}

Test(pb_groups, a_mismatched_end_group_is_refused_naming_both)
{
    wbuf w = {0};
    put_request_fields(&w, NULL);
    size_t at = w.n;
    put_tag(&w, 99, 3);
    put_tag(&w, 1, 0);
    put_varint(&w, 7);
    size_t end_at = w.n;
    put_tag(&w, 98, 4);
    char want[80];
    snprintf(want, sizeof want, "end of group 98 at offset %zu", end_at);
    char open[80];
    snprintf(open, sizeof open, "open group 99 (offset %zu)", at);
    assert_refused(&w, want, open);
}

Test(pb_groups, an_end_group_without_start_is_refused)
{
    wbuf w = {0};
    put_str(&w, 4, XDS_TYPE_URL_SECRET);
    put_tag(&w, 99, 4);
    assert_refused(&w, "end of group 99 at offset", "has no start");
    /* ... inside Node as well: offsets count from the start of the request. */
    wbuf node = {0}, w2 = {0};
    put_str(&node, 1, "n");
    put_tag(&node, 7, 4);
    put_buf(&w2, 2, &node);
    assert_refused(&w2, "end of group 7 at offset 5 (in envoy.config.core.v3.Node)", "no start");
}

Test(pb_groups, truncation_is_refused)
{
    wbuf w = {0};
    put_request_fields(&w, NULL);
    put_tag(&w, 99, 3);
    put_str(&w, 1, "never closed");
    assert_refused(&w, "group 99 at offset", "is not closed");
    /* Cut inside a group's field. */
    wbuf w2 = {0};
    put_tag(&w2, 99, 3);
    put_tag(&w2, 2, 1);
    put_byte(&w2, 1);
    assert_refused(&w2, "field 2 at offset 2", "cut off");
    /* A varint cut off. */
    wbuf w3 = {0};
    put_tag(&w3, 99, 3);
    put_tag(&w3, 1, 0);
    put_byte(&w3, 0x80);
    assert_refused(&w3, "a varint field at offset 3", "cut off");
    /* A tag cut off. */
    wbuf w4 = {0};
    put_byte(&w4, 0x80);
    assert_refused(&w4, "a field tag at offset 0", "cut off");
}

Test(pb_groups, overlong_varints_are_refused)
{
    wbuf w = {0};
    put_tag(&w, 99, 3);
    put_tag(&w, 1, 0);
    for (int i = 0; i < 11; i++)
        put_byte(&w, 0xff);
    put_byte(&w, 0);
    assert_refused(&w, "a varint field at offset 3", "longer than 10 bytes");
    /* Ten bytes is a valid varint. */
    wbuf ok = {0};
    put_tag(&ok, 99, 3);
    put_tag(&ok, 1, 0);
    for (int i = 0; i < 9; i++)
        put_byte(&ok, 0xff);
    put_byte(&ok, 0x01);
    put_tag(&ok, 99, 4);
    uint8_t *out = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(strip(&ok, &out, &n, &err), MESH_OK, "%s", err.msg);
    free(out);
}

Test(pb_groups, lengths_past_the_end_are_refused)
{
    wbuf w = {0};
    put_tag(&w, 99, 3);
    put_tag(&w, 4, 2);
    put_varint(&w, UINT64_MAX); /* would wrap a pointer */
    put_tag(&w, 99, 4);
    assert_refused(&w, "field 4 at offset 2", "past the end of the message");
    /* A known message field (node) whose length runs past the end. */
    wbuf w2 = {0};
    put_tag(&w2, 2, 2);
    put_varint(&w2, 40);
    put_str(&w2, 1, "short");
    assert_refused(&w2, "field 2 (node) at offset 0", "40 bytes long, past the end");
    /* The length of a field inside Node runs past Node's end (not the request's). */
    wbuf node = {0}, w3 = {0};
    put_tag(&node, 9, 2);
    put_varint(&node, 5);
    put_request_fields(&w3, &node);
    put_str(&w3, 6, "padding after the node");
    assert_refused(&w3, "field 9 (extensions) at offset", "past the end");
}

Test(pb_groups, known_fields_sent_as_groups_are_refused)
{
    wbuf w = {0};
    put_tag(&w, 2, 3); /* node */
    put_tag(&w, 2, 4);
    assert_refused(&w, "field 2 (node) at offset 0", "sent as a group; the schema has it as a message");
    wbuf w2 = {0};
    put_tag(&w2, 4, 3); /* type_url */
    put_tag(&w2, 4, 4);
    assert_refused(&w2, "field 4 (type_url)", "as a scalar field");
}

Test(pb_groups, bad_wire_types_and_field_numbers_are_refused)
{
    wbuf w = {0};
    put_tag(&w, 99, 3);
    put_tag(&w, 5, 6);
    put_tag(&w, 99, 4);
    assert_refused(&w, "field 5 at offset 2", "wire type 6");
    wbuf w2 = {0};
    put_tag(&w2, 12, 7);
    assert_refused(&w2, "field 12 at offset 0", "wire type 7");
    wbuf w3 = {0};
    put_tag(&w3, 0, 3);
    assert_refused(&w3, "field number 0 at offset 0", "out of range");
    /* Field 0 in a two-byte tag: protobuf-c would take it (the fuzzer's find), the
     * official runtimes do not. */
    wbuf w0 = {0};
    put_str(&w0, 4, XDS_TYPE_URL_SECRET);
    put_byte(&w0, 0x80);
    put_byte(&w0, 0x00);
    put_varint(&w0, 96);
    assert_refused(&w0, "field number 0 at offset", "out of range");
    wbuf w4 = {0};
    put_tag(&w4, 99, 3);
    /* A tag keeps its low 32 bits (protobuf-c and C++ alike): 2^29 << 3 is field 0. */
    put_varint(&w4, ((uint64_t)536870912 << 3) | 0);
    assert_refused(&w4, "field number 0 at offset 2", "out of range");
    /* ... and what a 5-byte tag carries above 32 bits is dropped, not refused (the
     * fuzzer's find: protobuf-c decodes it). */
    wbuf w5 = {0};
    const uint8_t tag5[] = {0x90, 0x8f, 0x8f, 0x96, 0x70, 0x01}; /* field 0x5878f2, varint 1 */
    for (size_t i = 0; i < sizeof tag5; i++)
        put_byte(&w5, tag5[i]);
    uint8_t *out = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(strip(&w5, &out, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_null(out);
}

/* The same walk in front of the Delta decoder and CreateCertificate's request. */
Test(pb_groups, delta_requests_and_certificate_requests_skip_groups)
{
    wbuf node = {0}, w = {0}, entry = {0};
    put_str(&node, 1, "delta-node");
    put_group(&node, 50);
    put_buf(&w, 1, &node);
    put_str(&w, 2, XDS_TYPE_URL_CLUSTER);
    put_group(&w, 99);
    put_str(&w, 3, "*");
    put_str(&entry, 1, "c1");
    put_group(&entry, 9); /* inside a map entry (a message to protobuf-c) */
    put_str(&entry, 2, "v1");
    put_buf(&w, 5, &entry);
    ads_delta_decoded d;
    mesh_err err = {0};
    cr_assert_eq(ads_delta_request_decode(w.b, w.n, &d, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(d.req.type_url, XDS_TYPE_URL_CLUSTER);
    cr_assert_str_eq(d.node_id, "delta-node");
    cr_assert_eq(d.req.n_subscribe, 1);
    cr_assert_eq(d.req.n_initial, 1);
    cr_assert_str_eq(d.init_names[0], "c1");
    cr_assert_str_eq(d.init_versions[0], "v1");
    ads_delta_decoded_free(&d);
    wbuf bad = {0};
    put_tag(&bad, 99, 3);
    cr_assert_eq(ads_delta_request_decode(bad.b, bad.n, &d, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "DeltaDiscoveryRequest of 2 bytes is not valid protobuf: group 99 "
                              "at offset 0"), "%s", err.msg);

    wbuf csr = {0};
    put_str(&csr, 1, "-----BEGIN CERTIFICATE REQUEST-----");
    put_group(&csr, 20);
    put_tag(&csr, 3, 0); /* validity_duration */
    put_varint(&csr, 3600);
    ProtobufCMessage *pm = pb_unpack(&istio__v1__auth__istio_certificate_request__descriptor,
                                     csr.b, csr.n, &err);
    cr_assert_not_null(pm, "%s", err.msg);
    Istio__V1__Auth__IstioCertificateRequest *cm = (Istio__V1__Auth__IstioCertificateRequest *)pm;
    cr_assert_str_eq(cm->csr, "-----BEGIN CERTIFICATE REQUEST-----");
    cr_assert_eq(cm->validity_duration, 3600);
    protobuf_c_message_free_unpacked(pm, NULL);
    cr_assert_null(pb_unpack(&istio__v1__auth__istio_certificate_request__descriptor, bad.b, bad.n,
                             &err));
    cr_assert(strstr(err.msg, "IstioCertificateRequest of 2 bytes is not valid protobuf: group "
                              "99"), "%s", err.msg);
}

/* ---- a hostile depth ------------------------------------------------------------------ */

/* Writes backwards from the end of a buffer: a nested message is built inside out. */
typedef struct rbuf {
    uint8_t *b;
    size_t start, cap;
} rbuf;

static void back_bytes(rbuf *r, const void *p, size_t n)
{
    cr_assert_geq(r->start, n);
    r->start -= n;
    memcpy(r->b + r->start, p, n);
}

static void back_len_tag(rbuf *r, uint32_t num, size_t end_of_field)
{
    uint8_t v[10];
    size_t len = end_of_field - r->start, k = 0;
    while (len >= 0x80) {
        v[k++] = (uint8_t)(len | 0x80);
        len >>= 7;
    }
    v[k++] = (uint8_t)len;
    back_bytes(r, v, k);
    uint8_t t = (uint8_t)(num << 3 | 2);
    back_bytes(r, &t, 1);
}

/* 30,000 Structs in Node.metadata (~450 KB, under the 4 MiB receive limit): protobuf-c
 * decodes nested messages recursively and ran out of stack on it (meshd crashed). Each
 * nested message is the last field of its parent, so all of them end at one byte. */
Test(pb_groups, a_hostile_depth_is_refused_before_protobuf_c_recurses)
{
    rbuf r = {.cap = 1 << 20};
    r.b = malloc(r.cap);
    cr_assert_not_null(r.b);
    r.start = r.cap;
    back_bytes(&r, "\x22\x03" "abc", 5); /* type_url, after the Node */
    size_t end = r.start;                  /* where Node and everything in it ends */
    for (int i = 0; i < 30000; i++) {
        back_len_tag(&r, 5, end);          /* Value{struct_value: the Struct inside} */
        back_len_tag(&r, 2, end);          /* map entry{value} */
        back_bytes(&r, "\x0a\x01k", 3);    /* map entry{key}, before its value */
        back_len_tag(&r, 1, end);          /* Struct{fields: the entry} */
    }
    back_len_tag(&r, 3, end);              /* Node.metadata */
    back_bytes(&r, "\x0a\x04" "deep", 6); /* Node.id */
    back_len_tag(&r, 2, end);              /* DiscoveryRequest.node */
    ads_decoded d;
    mesh_err err = {0};
    cr_assert_eq(ads_request_decode(r.b + r.start, r.cap - r.start, &d, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "deeper than 100 levels") && strstr(err.msg, "google.protobuf"),
              "%s", err.msg);
    free(r.b);
}
