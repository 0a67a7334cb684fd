/* sds/protocol/ads_codec.h — DiscoveryRequest / DiscoveryResponse bytes <-> meshd structs.
 *
 * The stream code never touches protobuf-c directly for the xDS envelope: it
 * decodes a request into an ads_request (sds/protocol/ads_state.h) plus the Node id,
 * and encodes an ads_send into DiscoveryResponse bytes with every resource
 * wrapped in a google.protobuf.Any of the type's URL. Decoding rejects inputs
 * that are valid protobuf but abusive (huge name lists, very long names) with
 * MESH_EINVAL so the caller can answer INVALID_ARGUMENT. Unknown fields from
 * real Envoy clients are skipped by protobuf-c, as the xDS API requires. */
#ifndef MESH_SDS_PROTOCOL_ADS_CODEC_H
#define MESH_SDS_PROTOCOL_ADS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "sds/protocol/ads_state.h"

#define ADS_MAX_NAMES     10000   /* resource names in one request */
#define ADS_MAX_NAME_LEN  2048    /* bytes in one resource name (a SPIFFE ID fits) */

typedef struct ads_decoded {
    void *msg;               /* the unpacked DiscoveryRequest (owned) */
    ads_request req;         /* strings point into msg */
    int has_node;
    const char *node_id;     /* "" when the request carries no Node */
    const char *node_cluster;
    const char *user_agent;  /* Node.user_agent_name, "" if none */
} ads_decoded;

int ads_request_decode(const uint8_t *buf, size_t len, ads_decoded *out, mesh_err *err);
void ads_decoded_free(ads_decoded *d);

/* Encodes a DiscoveryResponse. control_plane_id (optional) fills
 * control_plane.identifier so operators can tell which meshd answered. */
int ads_response_encode(const char *type_url, const char *version, const char *nonce,
                        const xds_resource *const *items, size_t n, const char *control_plane_id,
                        uint8_t **out, size_t *len_out, mesh_err *err);

/* The same response in two parts, so that one encoding serves every stream
 * that sends the same (type, version, items): the body is everything but
 * the nonce (encode it once, share it), the nonce field is per stream.
 * body + nonce field, concatenated, decode as the response ads_response_encode
 * gives (protobuf fields may come in any order). ads_response_nonce_field
 * writes field 5 into buf (ADS_NONCE_FIELD_MAX bytes hold any nonce up to
 * ADS_NONCE_MAX) and returns its length, 0 if it does not fit. */
#define ADS_NONCE_FIELD_MAX (ADS_NONCE_MAX + 3)
int ads_response_encode_body(const char *type_url, const char *version,
                             const xds_resource *const *items, size_t n,
                             const char *control_plane_id, uint8_t **out, size_t *len_out,
                             mesh_err *err);
size_t ads_response_nonce_field(const char *nonce, uint8_t *buf, size_t cap);

/* Client side (mesh-xdsclient, tests): a DiscoveryRequest. node_id NULL
 * leaves Node out (only the first request of a stream must carry it);
 * error_message non-NULL makes it a NACK. */
int ads_request_encode(const char *type_url, const char *version, const char *nonce,
                       const char *const *names, size_t n, const char *node_id,
                       const char *error_message, uint8_t **out, size_t *len_out,
                       mesh_err *err);

#endif
