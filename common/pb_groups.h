/* common/pb_groups.h — unknown protobuf groups dropped before protobuf-c decodes a peer's message.
 *
 * protobuf-c refuses the deprecated group wire types (3 = start group, 4 = end
 * group) anywhere in a message, where the official runtimes (C++ as in Envoy,
 * Java, Go, Python) skip an unknown field of any wire type. A client built
 * against a newer schema than our Envoy subset must not be cut off for a field
 * we do not know, so everything meshd decodes from a peer goes through
 * pb_unpack: it decodes at once when the message holds no group (the common
 * case costs one scan and no copy, bench/bench_pb_groups.c), and otherwise
 * decodes a copy without the unknown groups.
 *
 * The walk is driven by the message's protobuf-c descriptor: it descends into
 * the length-delimited fields the schema knows to be messages, at every level,
 * and nowhere else (a bytes or string field, or an unknown length-delimited
 * field, is opaque as it is to protobuf-c). Everything but the dropped groups
 * keeps its bytes; a nested message that lost a group keeps the byte count of
 * its length prefix (a padded varint, which every parser accepts) so the copy
 * is written in one pass. A known field sent with the group wire type, an end
 * group without its start or naming another field, a group or field cut off by
 * the end of the message, a varint over 10 bytes, a length past the end, a
 * field number 0 (a tag keeps its low 32 bits, as in protobuf-c and the C++
 * runtime), wire types 6 and 7, and nesting (messages
 * and groups together) deeper than PB_GROUPS_MAX_DEPTH are refused with a
 * message naming the field number and the byte offset. */
#ifndef MESH_COMMON_PB_GROUPS_H
#define MESH_COMMON_PB_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/error.h"

/* Protobuf's own default recursion limit (CodedInputStream): a message the
 * official runtimes parse is never refused for its depth here. */
#define PB_GROUPS_MAX_DEPTH 100

/* Checks buf (a desc message) and drops its unknown groups. MESH_OK: *out is
 * NULL when there was none (decode buf itself), else a malloc'd copy of
 * *out_len bytes without them. MESH_EINVAL (err says what and where) when the
 * wire format is broken as described above; MESH_ENOMEM. */
int pb_strip_groups(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                    uint8_t **out, size_t *out_len, mesh_err *err);

/* protobuf_c_message_unpack of buf after pb_strip_groups. NULL on failure
 * with err set: MESH_EINVAL "<Message> of N bytes is not valid protobuf", with
 * the walk's reason after a colon when it found one; MESH_ENOMEM. */
ProtobufCMessage *pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                            size_t len, mesh_err *err);

#endif
