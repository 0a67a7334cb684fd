/* sidecar/proxy_admin_dump.c — the "configs" array of /config_dump in Envoy's
 * ConfigDump shape (envoy.admin.v3.*ConfigDump), so that tools written for
 * Envoy's admin (istioctl proxy-config, jq recipes) find what they expect.
 *
 * The resources are the ones this sidecar last accepted, exactly as meshd
 * sent them: the state directory's persisted responses (xds_persist.h; written
 * only after a response was validated and applied), decoded and printed as
 * proto3 JSON (common/pb_json.h) with every typed_config unpacked. Private
 * keys are redacted, as Envoy does. Read on demand on the admin (proxy loop)
 * thread: a few small files per scrape of a debugging endpoint. */
#include "sidecar/proxy_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/pb_json.h"
#include "common/xds_wire.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "sidecar/xds_persist.h"

/* Every type meshd puts in an Any. */
static const ProtobufCMessageDescriptor *const known_types[] = {
    &envoy__config__listener__v3__listener__descriptor,
    &envoy__config__route__v3__route_configuration__descriptor,
    &envoy__config__cluster__v3__cluster__descriptor,
    &envoy__config__endpoint__v3__cluster_load_assignment__descriptor,
    &envoy__extensions__transport_sockets__tls__v3__secret__descriptor,
    &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor,
    &envoy__extensions__filters__http__router__v3__router__descriptor,
    &envoy__extensions__filters__http__rbac__v3__rbac__descriptor,
    &envoy__extensions__filters__network__rbac__v3__rbac__descriptor,
    &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor,
    &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor,
    &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor,
    &envoy__extensions__retry__host__previous_hosts__v3__previous_hosts_predicate__descriptor,
    &google__protobuf__duration__descriptor,
    &google__protobuf__struct__descriptor,
    &google__protobuf__uint32_value__descriptor,
    &google__protobuf__bool_value__descriptor,
};

static const ProtobufCMessageDescriptor *resolve(const char *url)
{
    const char *slash = strrchr(url, '/');
    const char *name = slash ? slash + 1 : url;
    for (size_t i = 0; i < sizeof known_types / sizeof *known_types; i++)
        if (strcmp(known_types[i]->name, name) == 0)
            return known_types[i];
    return NULL;
}

static const char *const redact[] = {"private_key", NULL};
static const pb_json_opts dump_opts = {.resolve = resolve, .redact = redact};

/* Per xDS type: Envoy's ConfigDump message, its list, and the resource key. */
typedef struct dump_kind {
    enum xdsc_type type;
    const char *dump_type;      /* envoy.admin.v3.<X>ConfigDump */
    const char *list;           /* dynamic_active_clusters, ... */
    const char *resource_key;   /* cluster, ... */
    int nested_listener;        /* listeners: {name, active_state: {..., listener}} */
} dump_kind;

/* Envoy's order: clusters, endpoints, listeners, routes, secrets. */
static const dump_kind kinds[] = {
    {XDSC_CDS, "ClustersConfigDump", "dynamic_active_clusters", "cluster", 0},
    {XDSC_EDS, "EndpointsConfigDump", "dynamic_endpoint_configs", "endpoint_config", 0},
    {XDSC_LDS, "ListenersConfigDump", "dynamic_listeners", "listener", 1},
    {XDSC_RDS, "RoutesConfigDump", "dynamic_route_configs", "route_config", 0},
    {XDSC_SDS, "SecretsConfigDump", "dynamic_active_secrets", "secret", 0},
};

/* The name field of a decoded resource (Listener.name, Secret.name, ...). */
static const char *resource_name(const Google__Protobuf__Any *any)
{
    const ProtobufCMessageDescriptor *d = resolve(any->type_url);
    if (!d)
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data);
    if (!m)
        return NULL;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, "name");
    static __thread char buf[256];
    buf[0] = '\0';
    if (f && f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED) {
        const char *v = *(char *const *)((const char *)m + f->offset);
        snprintf(buf, sizeof buf, "%s", v ? v : "");
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return buf;
}

static void one_kind(json_out *j, const char *state_dir, const dump_kind *k)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
    mesh_err err = {0};
    if (xdsc_persist_load(state_dir, k->type, &r, &err) != MESH_OK)
        return;
    char path[1024], updated[40] = "";
    snprintf(path, sizeof path, "%s/%s", state_dir, xdsc_persist_file(k->type));
    struct stat sb;
    if (stat(path, &sb) == 0) {
        struct tm tm;
        gmtime_r(&sb.st_mtime, &tm);
        strftime(updated, sizeof updated, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    char type[128];
    snprintf(type, sizeof type, "type.googleapis.com/envoy.admin.v3.%s", k->dump_type);
    json_obj_begin(j);
    json_key_str(j, "@type", type);
    if (k->type == XDSC_CDS || k->type == XDSC_LDS)
        json_key_str(j, "version_info", r->version_info);
    json_key(j, k->list);
    json_arr_begin(j);
    for (size_t i = 0; i < r->n_resources; i++) {
        const Google__Protobuf__Any *any = r->resources[i];
        json_obj_begin(j);
        if (k->nested_listener || k->type == XDSC_SDS) {
            const char *name = resource_name(any);
            json_key_str(j, "name", name ? name : "");
        }
        if (k->nested_listener) {
            json_key(j, "active_state");
            json_obj_begin(j);
        }
        json_key_str(j, "version_info", r->version_info);
        json_key(j, k->resource_key);
        pb_json_write_any(j, any->type_url, any->value.data, any->value.len, &dump_opts);
        if (updated[0])
            json_key_str(j, "last_updated", updated);
        if (k->nested_listener)
            json_obj_end(j);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
}

void dp_admin_envoy_configs(json_out *j, const char *state_dir)
{
    json_key(j, "configs");
    json_arr_begin(j);
    for (size_t i = 0; state_dir && i < sizeof kinds / sizeof *kinds; i++)
        one_kind(j, state_dir, &kinds[i]);
    json_arr_end(j);
}
