/* sds/protocol/ads_codec.c — xDS envelope encoding and decoding (see ads_codec.h). */
#include "sds/protocol/ads_codec.h"

#include <stdlib.h>
#include <string.h>

#include "common/pb_groups.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"

typedef Envoy__Service__Discovery__V3__DiscoveryRequest disc_req;
typedef Envoy__Service__Discovery__V3__DiscoveryResponse disc_resp;

static const char *nz(const char *s)
{
    return s ? s : "";
}

int ads_request_decode(const uint8_t *buf, size_t len, ads_decoded *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    /* pb_unpack: an unknown field of group wire type is skipped, as upstream does. */
    mesh_err why = {0};
    disc_req *m = (disc_req *)pb_unpack(&envoy__service__discovery__v3__discovery_request__descriptor,
                                        buf, len, &why);
    if (!m)
        return mesh_err_set(err, why.code, "%s", why.msg);
    if (m->n_resource_names > ADS_MAX_NAMES) {
        size_t n = m->n_resource_names;
        envoy__service__discovery__v3__discovery_request__free_unpacked(m, NULL);
        return mesh_err_set(err, MESH_EINVAL,
                            "DiscoveryRequest lists %zu resource names; the limit is %d", n,
                            ADS_MAX_NAMES);
    }
    for (size_t i = 0; i < m->n_resource_names; i++) {
        if (strlen(nz(m->resource_names[i])) > ADS_MAX_NAME_LEN) {
            envoy__service__discovery__v3__discovery_request__free_unpacked(m, NULL);
            return mesh_err_set(err, MESH_EINVAL,
                                "DiscoveryRequest resource name %zu is longer than %d bytes", i,
                                ADS_MAX_NAME_LEN);
        }
    }
    out->msg = m;
    out->req.type_url = nz(m->type_url);
    out->req.version_info = nz(m->version_info);
    out->req.response_nonce = nz(m->response_nonce);
    out->req.names = (const char *const *)m->resource_names;
    out->req.n_names = m->n_resource_names;
    out->req.has_error = m->error_detail != NULL;
    out->req.error_message = m->error_detail ? nz(m->error_detail->message) : NULL;
    out->has_node = m->node != NULL;
    out->node_id = m->node ? nz(m->node->id) : "";
    out->node_cluster = m->node ? nz(m->node->cluster) : "";
    out->user_agent = m->node ? nz(m->node->user_agent_name) : "";
    return MESH_OK;
}

void ads_decoded_free(ads_decoded *d)
{
    if (d && d->msg)
        envoy__service__discovery__v3__discovery_request__free_unpacked(d->msg, NULL);
    if (d)
        memset(d, 0, sizeof *d);
}

int ads_response_encode_body(const char *type_url, const char *version,
                             const xds_resource *const *items, size_t n,
                             const char *control_plane_id, uint8_t **out, size_t *len_out,
                             mesh_err *err)
{
    /* protobuf-c leaves an empty proto3 string out of the encoding. */
    return ads_response_encode(type_url, version, "", items, n, control_plane_id, out, len_out,
                               err);
}

size_t ads_response_nonce_field(const char *nonce, uint8_t *buf, size_t cap)
{
    size_t n = strlen(nonce);
    if (n == 0)
        return 0;
    if (n > 127 || n + 2 > cap)
        return 0;
    buf[0] = (5 << 3) | 2; /* DiscoveryResponse.nonce = 5, length-delimited */
    buf[1] = (uint8_t)n;   /* one varint byte: nonces are short */
    memcpy(buf + 2, nonce, n);
    return n + 2;
}

int ads_response_encode(const char *type_url, const char *version, const char *nonce,
                        const xds_resource *const *items, size_t n, const char *control_plane_id,
                        uint8_t **out, size_t *len_out, mesh_err *err)
{
    *out = NULL;
    *len_out = 0;
    disc_resp r = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
    Envoy__Config__Core__V3__ControlPlane cp = ENVOY__CONFIG__CORE__V3__CONTROL_PLANE__INIT;
    Google__Protobuf__Any *anys = NULL;
    Google__Protobuf__Any **ptrs = NULL;
    if (n > 0) {
        anys = calloc(n, sizeof *anys);
        ptrs = calloc(n, sizeof *ptrs);
        if (!anys || !ptrs) {
            free(anys);
            free(ptrs);
            return mesh_err_set(err, MESH_ENOMEM, "out of memory encoding a DiscoveryResponse");
        }
    }
    for (size_t i = 0; i < n; i++) {
        Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
        a.type_url = (char *)type_url;
        a.value.data = items[i]->data;
        a.value.len = items[i]->len;
        anys[i] = a;
        ptrs[i] = &anys[i];
    }
    r.version_info = (char *)version;
    r.type_url = (char *)type_url;
    r.nonce = (char *)nonce;
    r.n_resources = n;
    r.resources = ptrs;
    if (control_plane_id && control_plane_id[0]) {
        cp.identifier = (char *)control_plane_id;
        r.control_plane = &cp;
    }
    size_t len = envoy__service__discovery__v3__discovery_response__get_packed_size(&r);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        free(anys);
        free(ptrs);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory encoding a DiscoveryResponse");
    }
    envoy__service__discovery__v3__discovery_response__pack(&r, buf);
    free(anys);
    free(ptrs);
    *out = buf;
    *len_out = len;
    return MESH_OK;
}

int ads_request_encode(const char *type_url, const char *version, const char *nonce,
                       const char *const *names, size_t n, const char *node_id,
                       const char *error_message, uint8_t **out, size_t *len_out,
                       mesh_err *err)
{
    *out = NULL;
    *len_out = 0;
    disc_req r = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    r.type_url = (char *)nz(type_url);
    r.version_info = (char *)nz(version);
    r.response_nonce = (char *)nz(nonce);
    r.resource_names = (char **)names;
    r.n_resource_names = n;
    if (node_id) {
        node.id = (char *)node_id;
        node.user_agent_name = "mesh-xdsclient";
        r.node = &node;
    }
    if (error_message) {
        st.code = 3; /* INVALID_ARGUMENT, as Envoy reports a rejected config */
        st.message = (char *)error_message;
        r.error_detail = &st;
    }
    size_t len = envoy__service__discovery__v3__discovery_request__get_packed_size(&r);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory encoding a DiscoveryRequest");
    envoy__service__discovery__v3__discovery_request__pack(&r, buf);
    *out = buf;
    *len_out = len;
    return MESH_OK;
}
