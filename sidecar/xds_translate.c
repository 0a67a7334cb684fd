/* sidecar/xds_translate.c — per-type dispatch of xDS -> dp_config translation,
 * resource naming, and the RDS/EDS names a snapshot depends on. */
#include "sidecar/xds_translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "sidecar/xds_translate_internal.h"

/* Every resource message has its name in field 1; decoding the whole message
 * also proves it is well-formed before we ACK anything. */
static int resource_name(enum xdsc_type t, const uint8_t *d, size_t len, char **name_out)
{
    *name_out = NULL;
    const char *name = NULL;
    ProtobufCMessage *m = NULL;
    switch (t) {
    case XDSC_LDS: {
        Envoy__Config__Listener__V3__Listener *x = envoy__config__listener__v3__listener__unpack(NULL, len, d);
        m = (ProtobufCMessage *)x;
        name = x ? x->name : NULL;
        break;
    }
    case XDSC_RDS: {
        Envoy__Config__Route__V3__RouteConfiguration *x =
            envoy__config__route__v3__route_configuration__unpack(NULL, len, d);
        m = (ProtobufCMessage *)x;
        name = x ? x->name : NULL;
        break;
    }
    case XDSC_CDS: {
        Envoy__Config__Cluster__V3__Cluster *x = envoy__config__cluster__v3__cluster__unpack(NULL, len, d);
        m = (ProtobufCMessage *)x;
        name = x ? x->name : NULL;
        break;
    }
    case XDSC_EDS: {
        Envoy__Config__Endpoint__V3__ClusterLoadAssignment *x =
            envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, len, d);
        m = (ProtobufCMessage *)x;
        name = x ? x->cluster_name : NULL;
        break;
    }
    case XDSC_SDS: {
        Envoy__Extensions__TransportSockets__Tls__V3__Secret *x =
            envoy__extensions__transport_sockets__tls__v3__secret__unpack(NULL, len, d);
        m = (ProtobufCMessage *)x;
        name = x ? x->name : NULL;
        break;
    }
    default:
        return MESH_EINVAL;
    }
    if (!m)
        return MESH_EINVAL;
    int rc = MESH_OK;
    if (!name || !name[0])
        rc = MESH_ENOTFOUND;
    else if (!(*name_out = strdup(name)))
        rc = MESH_ENOMEM;
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

int xdsc_resource_from_any(enum xdsc_type t, const Google__Protobuf__Any *any, xdsc_resource *out,
                           mesh_err *err)
{
    memset(out, 0, sizeof *out);
    char q[160];
    if (!any || !any->type_url || strcmp(any->type_url, xdsc_type_url(t)) != 0)
        return mesh_err_set(err, MESH_EINVAL, "resource of type '%s' in a %s response",
                            xdsc_tr_quote(any ? any->type_url : "", q, sizeof q),
                            xdsc_type_short(t));
    if (any->value.len > XDSC_MAX_RESOURCE_BYTES)
        return mesh_err_set(err, MESH_EINVAL, "%s resource of %zu bytes exceeds the %u byte limit",
                            xdsc_type_short(t), any->value.len, XDSC_MAX_RESOURCE_BYTES);
    int rc = resource_name(t, any->value.data, any->value.len, &out->name);
    if (rc == MESH_EINVAL)
        return mesh_err_set(err, MESH_EINVAL, "%s resource does not decode", xdsc_type_short(t));
    if (rc == MESH_ENOTFOUND)
        return mesh_err_set(err, MESH_EINVAL, "%s resource without a name", xdsc_type_short(t));
    if (rc != MESH_OK)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    out->len = any->value.len;
    out->data = malloc(out->len ? out->len : 1);
    if (!out->data) {
        free(out->name);
        out->name = NULL;
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    if (out->len)
        memcpy(out->data, any->value.data, out->len);
    return MESH_OK;
}

unsigned xdsc_type_table(enum xdsc_type t)
{
    switch (t) {
    case XDSC_LDS: return DP_TABLE_LISTENERS;
    case XDSC_RDS: return DP_TABLE_ROUTES;
    case XDSC_CDS: return DP_TABLE_CLUSTERS;
    case XDSC_EDS: return DP_TABLE_ASSIGNMENTS;
    default: return 0;
    }
}

int xdsc_translate_table(dp_config *cfg, enum xdsc_type t, const xdsc_resource *res, size_t n,
                         mesh_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc;
        switch (t) {
        case XDSC_LDS: rc = xdsc_translate_listener(cfg, res[i].data, res[i].len, err); break;
        case XDSC_RDS: rc = xdsc_translate_route_config(cfg, res[i].data, res[i].len, err); break;
        case XDSC_CDS: rc = xdsc_translate_cluster(cfg, res[i].data, res[i].len, err); break;
        case XDSC_EDS: rc = xdsc_translate_assignment(cfg, res[i].data, res[i].len, err); break;
        default:
            return mesh_err_set(err, MESH_EINVAL, "%s is not a data plane table",
                                xdsc_type_short(t));
        }
        if (rc != MESH_OK)
            return rc;
    }
    return MESH_OK;
}

int xdsc_config_rds_names(const dp_config *cfg, xdsc_names *out, mesh_err *err)
{
    size_t n = dp_config_n_listeners(cfg);
    for (size_t i = 0; i < n; i++) {
        const dp_listener *l = dp_config_listener_at(cfg, i);
        if (l->kind == DP_LISTENER_OUTBOUND_HTTP && l->route_table && l->route_table[0] &&
            xdsc_names_add(out, l->route_table) != MESH_OK)
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    return MESH_OK;
}

int xdsc_config_eds_names(const dp_config *cfg, xdsc_names *out, mesh_err *err)
{
    size_t n = dp_config_n_clusters(cfg);
    for (size_t i = 0; i < n; i++) {
        const dp_cluster *c = dp_config_cluster_at(cfg, i);
        if (!c->eds)
            continue;
        const char *name = c->eds_service_name && c->eds_service_name[0] ? c->eds_service_name
                                                                         : c->name;
        if (xdsc_names_add(out, name) != MESH_OK)
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    return MESH_OK;
}
