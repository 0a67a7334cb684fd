/* common/pb_json.h — a protobuf-c message as proto3 JSON, from its descriptor.
 *
 * For the sidecar's /config_dump in Envoy's ConfigDump shape: Envoy prints
 * its resources with the proto field names (snake_case), and so does this.
 * The proto3 mapping: default scalars and empty strings, lists and absent
 * messages are left out; 64-bit integers are strings; enums are their value
 * names; bytes are base64; maps are objects. Well-known types get their JSON
 * forms: Duration "1.5s", Timestamp RFC 3339, the wrappers their value,
 * Struct/Value/ListValue plain JSON, Any {"@type": url, ...fields} with the
 * payload unpacked through the caller's type resolver (an unknown type keeps
 * its bytes as "value" in base64, as the mapping does for unresolvable Any).
 * Fields named in redact (e.g. "private_key") print as "[redacted]", as Envoy
 * does for secrets. Depth is bounded (a hostile Any nesting stops). */
#ifndef MESH_COMMON_PB_JSON_H
#define MESH_COMMON_PB_JSON_H

#include <protobuf-c/protobuf-c.h>

#include "common/json_out.h"

/* The descriptor of the message a type URL names, or NULL if unknown. */
typedef const ProtobufCMessageDescriptor *(*pb_json_resolve_fn)(const char *type_url);

typedef struct pb_json_opts {
    pb_json_resolve_fn resolve;     /* NULL: every Any stays opaque */
    const char *const *redact;      /* field names, NULL-terminated; NULL: none */
} pb_json_opts;

/* Writes m as one JSON value into j. */
void pb_json_write(json_out *j, const ProtobufCMessage *m, const pb_json_opts *o);
/* Unpacks an Any (type_url + value) and writes it as above; "@type" first. */
void pb_json_write_any(json_out *j, const char *type_url, const uint8_t *data, size_t len,
                       const pb_json_opts *o);

#endif
