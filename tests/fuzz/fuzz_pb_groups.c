/* tests/fuzz/fuzz_pb_groups.c — libFuzzer target: the unknown-group walker
 * (common/pb_groups.c) in front of every decoder of a peer's message. The
 * first byte picks the schema (DiscoveryRequest, DeltaDiscoveryRequest,
 * IstioCertificateRequest), the rest is the message. Beyond "no crash":
 * a refusal names an offset; a copy is shorter than its input, has no group
 * left (stripping it again changes nothing) and keeps protobuf-c's verdict
 * where the input had no group to drop; a message protobuf-c decodes as it is
 * is never refused by the walk, unless for its nesting depth or field number 0. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/pb_groups.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "istio/v1/auth/ca.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const schemas[] = {
    &envoy__service__discovery__v3__discovery_request__descriptor,
    &envoy__service__discovery__v3__delta_discovery_request__descriptor,
    &istio__v1__auth__istio_certificate_request__descriptor,
};

/* 1 when protobuf-c decodes buf as desc. */
static int decodes(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, buf);
    if (!m)
        return 0;
    protobuf_c_message_free_unpacked(m, NULL);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const ProtobufCMessageDescriptor *desc = schemas[data[0] % 3];
    const uint8_t *buf = data + 1;
    size_t len = size - 1;
    uint8_t *out = NULL;
    size_t n = 0;
    mesh_err err = {0};
    int rc = pb_strip_groups(desc, buf, len, &out, &n, &err);
    if (rc != MESH_OK) {
        if (rc != MESH_EINVAL || !strstr(err.msg, "offset") || out)
            abort();
        /* What protobuf-c takes as it is, the walk takes too, but for two rules
         * of the official runtimes that protobuf-c lacks: the depth bound, and
         * field number 0 in a tag of more than one byte (protobuf-c refuses
         * only the one-byte form). */
        if (decodes(desc, buf, len) && !strstr(err.msg, "levels") &&
            !strstr(err.msg, "field number 0 "))
            abort();
        return 0;
    }
    if (!out) {
        if (n != len)
            abort();
        return 0;
    }
    if (n >= len)
        abort();
    uint8_t *again = NULL;
    size_t n2 = 0;
    if (pb_strip_groups(desc, out, n, &again, &n2, &err) != MESH_OK || again || n2 != n)
        abort();
    (void)decodes(desc, out, n); /* may refuse (a bad UTF-8 string, say): must not crash */
    free(out);
    return 0;
}
