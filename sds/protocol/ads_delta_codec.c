/* sds/protocol/ads_delta_codec.c — Delta xDS envelope encoding and decoding (see ads_delta_codec.h). */
#include "sds/protocol/ads_delta_codec.h"

#include <stdlib.h>
#include <string.h>

#include "common/pb_groups.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"

typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest delta_req;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryResponse delta_resp;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry
    init_entry;

static const char *nz(const char *s)
{
    return s ? s : "";
}

static int check_names(char **names, size_t n, const char *field, mesh_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(nz(names[i])) > ADS_MAX_NAME_LEN)
            return mesh_err_set(err, MESH_EINVAL,
                                "DeltaDiscoveryRequest %s[%zu] is longer than %d bytes", field, i,
                                ADS_MAX_NAME_LEN);
    return MESH_OK;
}

static int check_limits(const delta_req *m, mesh_err *err)
{
    size_t names = m->n_resource_names_subscribe + m->n_resource_names_unsubscribe;
    if (names > ADS_MAX_NAMES)
        return mesh_err_set(err, MESH_EINVAL,
                            "DeltaDiscoveryRequest lists %zu resource names to (un)subscribe; "
                            "the limit is %d",
                            names, ADS_MAX_NAMES);
    if (m->n_initial_resource_versions > ADS_MAX_NAMES)
        return mesh_err_set(err, MESH_EINVAL,
                            "DeltaDiscoveryRequest has %zu initial_resource_versions; the limit "
                            "is %d",
                            m->n_initial_resource_versions, ADS_MAX_NAMES);
    int rc = check_names(m->resource_names_subscribe, m->n_resource_names_subscribe,
                         "resource_names_subscribe", err);
    if (rc == MESH_OK)
        rc = check_names(m->resource_names_unsubscribe, m->n_resource_names_unsubscribe,
                         "resource_names_unsubscribe", err);
    for (size_t i = 0; rc == MESH_OK && i < m->n_initial_resource_versions; i++) {
        const init_entry *e = m->initial_resource_versions[i];
        if (strlen(nz(e->key)) > ADS_MAX_NAME_LEN || strlen(nz(e->value)) > ADS_MAX_NAME_LEN)
            rc = mesh_err_set(err, MESH_EINVAL,
                              "DeltaDiscoveryRequest initial_resource_versions[%zu] is longer "
                              "than %d bytes",
                              i, ADS_MAX_NAME_LEN);
    }
    return rc;
}

int ads_delta_request_decode(const uint8_t *buf, size_t len, ads_delta_decoded *out,
                             mesh_err *err)
{
    memset(out, 0, sizeof *out);
    /* pb_unpack: an unknown field of group wire type is skipped, as upstream does. */
    mesh_err why = {0};
    delta_req *m = (delta_req *)pb_unpack(
        &envoy__service__discovery__v3__delta_discovery_request__descriptor, buf, len, &why);
    if (!m)
        return mesh_err_set(err, why.code, "%s", why.msg);
    int rc = check_limits(m, err);
    size_t n = m->n_initial_resource_versions;
    if (rc == MESH_OK && n > 0) {
        out->init_names = calloc(n, sizeof *out->init_names);
        out->init_versions = calloc(n, sizeof *out->init_versions);
        if (!out->init_names || !out->init_versions)
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory decoding a DeltaDiscoveryRequest");
    }
    if (rc != MESH_OK) {
        free(out->init_names);
        free(out->init_versions);
        envoy__service__discovery__v3__delta_discovery_request__free_unpacked(m, NULL);
        memset(out, 0, sizeof *out);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        out->init_names[i] = nz(m->initial_resource_versions[i]->key);
        out->init_versions[i] = nz(m->initial_resource_versions[i]->value);
    }
    out->msg = m;
    out->req.type_url = nz(m->type_url);
    out->req.subscribe = (const char *const *)m->resource_names_subscribe;
    out->req.n_subscribe = m->n_resource_names_subscribe;
    out->req.unsubscribe = (const char *const *)m->resource_names_unsubscribe;
    out->req.n_unsubscribe = m->n_resource_names_unsubscribe;
    out->req.initial_names = out->init_names;
    out->req.initial_versions = out->init_versions;
    out->req.n_initial = n;
    out->req.response_nonce = nz(m->response_nonce);
    out->req.has_error = m->error_detail != NULL;
    out->req.error_message = m->error_detail ? nz(m->error_detail->message) : NULL;
    out->has_node = m->node != NULL;
    out->node_id = m->node ? nz(m->node->id) : "";
    out->node_cluster = m->node ? nz(m->node->cluster) : "";
    out->user_agent = m->node ? nz(m->node->user_agent_name) : "";
    return MESH_OK;
}

void ads_delta_decoded_free(ads_delta_decoded *d)
{
    if (!d)
        return;
    if (d->msg)
        envoy__service__discovery__v3__delta_discovery_request__free_unpacked(d->msg, NULL);
    free(d->init_names);
    free(d->init_versions);
    memset(d, 0, sizeof *d);
}

int ads_delta_response_encode(const char *type_url, const char *system_version,
                              const char *nonce, const xds_resource *const *items, size_t n,
                              const char *const *removed, size_t n_removed,
                              const char *control_plane_id, uint8_t **out, size_t *len_out,
                              mesh_err *err)
{
    *out = NULL;
    *len_out = 0;
    delta_resp r = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
    Envoy__Config__Core__V3__ControlPlane cp = ENVOY__CONFIG__CORE__V3__CONTROL_PLANE__INIT;
    Envoy__Service__Discovery__V3__Resource *res = NULL;
    Envoy__Service__Discovery__V3__Resource **res_ptrs = NULL;
    Google__Protobuf__Any *anys = NULL;
    if (n > 0) {
        res = calloc(n, sizeof *res);
        res_ptrs = calloc(n, sizeof *res_ptrs);
        anys = calloc(n, sizeof *anys);
        if (!res || !res_ptrs || !anys) {
            free(res);
            free(res_ptrs);
            free(anys);
            return mesh_err_set(err, MESH_ENOMEM,
                                "out of memory encoding a DeltaDiscoveryResponse");
        }
    }
    for (size_t i = 0; i < n; i++) {
        Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
        a.type_url = (char *)type_url;
        a.value.data = items[i]->data;
        a.value.len = items[i]->len;
        anys[i] = a;
        Envoy__Service__Discovery__V3__Resource one = ENVOY__SERVICE__DISCOVERY__V3__RESOURCE__INIT;
        one.name = items[i]->name;
        one.version = (char *)items[i]->version;
        one.resource = &anys[i];
        res[i] = one;
        res_ptrs[i] = &res[i];
    }
    r.system_version_info = (char *)nz(system_version);
    r.type_url = (char *)type_url;
    r.nonce = (char *)nonce;
    r.n_resources = n;
    r.resources = res_ptrs;
    r.n_removed_resources = n_removed;
    r.removed_resources = (char **)removed;
    if (control_plane_id && control_plane_id[0]) {
        cp.identifier = (char *)control_plane_id;
        r.control_plane = &cp;
    }
    size_t len = envoy__service__discovery__v3__delta_discovery_response__get_packed_size(&r);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf)
        envoy__service__discovery__v3__delta_discovery_response__pack(&r, buf);
    free(res);
    free(res_ptrs);
    free(anys);
    if (!buf)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory encoding a DeltaDiscoveryResponse");
    *out = buf;
    *len_out = len;
    return MESH_OK;
}

int ads_delta_request_encode(const ads_delta_request_args *a, uint8_t **out, size_t *len_out,
                             mesh_err *err)
{
    *out = NULL;
    *len_out = 0;
    delta_req r = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    init_entry *entries = NULL;
    init_entry **entry_ptrs = NULL;
    if (a->n_init > 0) {
        entries = calloc(a->n_init, sizeof *entries);
        entry_ptrs = calloc(a->n_init, sizeof *entry_ptrs);
        if (!entries || !entry_ptrs) {
            free(entries);
            free(entry_ptrs);
            return mesh_err_set(err, MESH_ENOMEM, "out of memory encoding a DeltaDiscoveryRequest");
        }
    }
    for (size_t i = 0; i < a->n_init; i++) {
        init_entry e =
            ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INITIAL_RESOURCE_VERSIONS_ENTRY__INIT;
        entries[i] = e;
        entries[i].key = (char *)nz(a->init_names[i]);
        entries[i].value = (char *)nz(a->init_versions[i]);
        entry_ptrs[i] = &entries[i];
    }
    r.type_url = (char *)nz(a->type_url);
    r.resource_names_subscribe = (char **)a->subscribe;
    r.n_resource_names_subscribe = a->n_subscribe;
    r.resource_names_unsubscribe = (char **)a->unsubscribe;
    r.n_resource_names_unsubscribe = a->n_unsubscribe;
    r.initial_resource_versions = entry_ptrs;
    r.n_initial_resource_versions = a->n_init;
    r.response_nonce = (char *)nz(a->nonce);
    if (a->node_id) {
        node.id = (char *)a->node_id;
        node.user_agent_name = "mesh-xdsclient";
        r.node = &node;
    }
    if (a->error_message) {
        st.code = 3; /* INVALID_ARGUMENT, as Envoy reports a rejected config */
        st.message = (char *)a->error_message;
        r.error_detail = &st;
    }
    size_t len = envoy__service__discovery__v3__delta_discovery_request__get_packed_size(&r);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf)
        envoy__service__discovery__v3__delta_discovery_request__pack(&r, buf);
    free(entries);
    free(entry_ptrs);
    if (!buf)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory encoding a DeltaDiscoveryRequest");
    *out = buf;
    *len_out = len;
    return MESH_OK;
}
