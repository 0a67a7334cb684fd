/* sds/protocol/ads_delta_codec.h — DeltaDiscoveryRequest / DeltaDiscoveryResponse bytes <-> meshd structs.
 *
 * The Delta twin of sds/protocol/ads_codec.h. Decoding fills an ads_delta_request
 * (sds/protocol/ads_delta_state.h) whose strings point into the unpacked message and
 * rejects valid-but-abusive input (too many names, names or versions that are
 * too long) with MESH_EINVAL so the caller can answer INVALID_ARGUMENT.
 * Encoding wraps every resource in envoy.service.discovery.v3.Resource
 * {name, version, resource: Any of the type's URL}. Unknown fields from real
 * clients (resource locators, dynamic parameters) are skipped by protobuf-c. */
#ifndef MESH_SDS_PROTOCOL_ADS_DELTA_CODEC_H
#define MESH_SDS_PROTOCOL_ADS_DELTA_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "sds/protocol/ads_codec.h"
#include "sds/protocol/ads_delta_state.h"

typedef struct ads_delta_decoded {
    void *msg;               /* the unpacked DeltaDiscoveryRequest (owned) */
    ads_delta_request req;   /* strings point into msg */
    const char **init_names; /* owned arrays of borrowed strings */
    const char **init_versions;
    int has_node;
    const char *node_id;     /* "" when the request carries no Node */
    const char *node_cluster;
    const char *user_agent;
} ads_delta_decoded;

/* Limits: ADS_MAX_NAMES names in subscribe + unsubscribe together and
 * ADS_MAX_NAMES initial_resource_versions entries; every name and version
 * at most ADS_MAX_NAME_LEN bytes. */
int ads_delta_request_decode(const uint8_t *buf, size_t len, ads_delta_decoded *out,
                             mesh_err *err);
void ads_delta_decoded_free(ads_delta_decoded *d);

/* Encodes a DeltaDiscoveryResponse. control_plane_id (optional) fills
 * control_plane.identifier. */
int ads_delta_response_encode(const char *type_url, const char *system_version,
                              const char *nonce, const xds_resource *const *items, size_t n,
                              const char *const *removed, size_t n_removed,
                              const char *control_plane_id, uint8_t **out, size_t *len_out,
                              mesh_err *err);

/* Client side (mesh-xdsclient, tests): a DeltaDiscoveryRequest. node_id NULL
 * leaves Node out; error_message non-NULL makes it a NACK; init_names and
 * init_versions are n_init parallel entries of initial_resource_versions. */
typedef struct ads_delta_request_args {
    const char *type_url;
    const char *const *subscribe;
    size_t n_subscribe;
    const char *const *unsubscribe;
    size_t n_unsubscribe;
    const char *const *init_names;
    const char *const *init_versions;
    size_t n_init;
    const char *nonce;
    const char *node_id;
    const char *error_message;
} ads_delta_request_args;

int ads_delta_request_encode(const ads_delta_request_args *a, uint8_t **out, size_t *len_out,
                             mesh_err *err);

#endif
