/* tests/unit/test_common_xds_wire.c — common/xds_wire.h: every method path and
 * type URL against the names protobuf-c generated from proto/ (whose packages
 * tests/conformance/check_protos.js checks against Envoy's official protos),
 * so the one definition cannot drift from the wire; and the short-name table. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

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
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "envoy/service/discovery/v3/ads.pb-c.h"
#include "envoy/service/secret/v3/sds.pb-c.h"
#include "istio/v1/auth/ca.pb-c.h"

static void assert_type_url(const char *url, const ProtobufCMessageDescriptor *d)
{
    char want[512];
    snprintf(want, sizeof want, "type.googleapis.com/%s", d->name);
    cr_assert_str_eq(url, want);
}

Test(xds_wire, resource_type_urls_name_the_generated_messages)
{
    assert_type_url(XDS_TYPE_URL_LISTENER, &envoy__config__listener__v3__listener__descriptor);
    assert_type_url(XDS_TYPE_URL_ROUTE, &envoy__config__route__v3__route_configuration__descriptor);
    assert_type_url(XDS_TYPE_URL_CLUSTER, &envoy__config__cluster__v3__cluster__descriptor);
    assert_type_url(XDS_TYPE_URL_ENDPOINT,
                    &envoy__config__endpoint__v3__cluster_load_assignment__descriptor);
    assert_type_url(XDS_TYPE_URL_SECRET,
                    &envoy__extensions__transport_sockets__tls__v3__secret__descriptor);
}

Test(xds_wire, typed_config_urls_name_the_generated_messages)
{
    assert_type_url(
        XDS_TYPE_URL_HCM,
        &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
    assert_type_url(XDS_TYPE_URL_ROUTER,
                    &envoy__extensions__filters__http__router__v3__router__descriptor);
    assert_type_url(XDS_TYPE_URL_HTTP_RBAC,
                    &envoy__extensions__filters__http__rbac__v3__rbac__descriptor);
    assert_type_url(XDS_TYPE_URL_NET_RBAC,
                    &envoy__extensions__filters__network__rbac__v3__rbac__descriptor);
    assert_type_url(XDS_TYPE_URL_TCP_PROXY,
                    &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor);
    assert_type_url(XDS_TYPE_URL_DOWNSTREAM_TLS,
                    &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor);
    assert_type_url(XDS_TYPE_URL_UPSTREAM_TLS,
                    &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor);
}

/* "/<package>.<Service>/<Method>", the method named as the .proto declares it. */
static void assert_method(const char *path, const ProtobufCServiceDescriptor *d,
                          const char *method)
{
    cr_assert_not_null(protobuf_c_service_descriptor_get_method_by_name(d, method),
                       "%s has no method %s", d->name, method);
    char want[512];
    snprintf(want, sizeof want, "/%s/%s", d->name, method);
    cr_assert_str_eq(path, want);
}

Test(xds_wire, method_paths_name_the_generated_services)
{
    const ProtobufCServiceDescriptor *ads =
        &envoy__service__discovery__v3__aggregated_discovery_service__descriptor;
    const ProtobufCServiceDescriptor *sds =
        &envoy__service__secret__v3__secret_discovery_service__descriptor;
    assert_method(XDS_METHOD_ADS, ads, "StreamAggregatedResources");
    assert_method(XDS_METHOD_DELTA_ADS, ads, "DeltaAggregatedResources");
    assert_method(XDS_METHOD_SDS, sds, "StreamSecrets");
    assert_method(XDS_METHOD_DELTA_SDS, sds, "DeltaSecrets");
    assert_method(XDS_METHOD_FETCH_SDS, sds, "FetchSecrets");
    assert_method(XDS_METHOD_CREATE_CERTIFICATE,
                  &istio__v1__auth__istio_certificate_service__descriptor, "CreateCertificate");
}

Test(xds_wire, short_names_round_trip)
{
    static const struct { const char *url, *name; } want[] = {
        {XDS_TYPE_URL_LISTENER, "LDS"}, {XDS_TYPE_URL_ROUTE, "RDS"},
        {XDS_TYPE_URL_CLUSTER, "CDS"},  {XDS_TYPE_URL_ENDPOINT, "EDS"},
        {XDS_TYPE_URL_SECRET, "SDS"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        cr_assert_str_eq(xds_wire_short_name(want[i].url), want[i].name);
        cr_assert_str_eq(xds_wire_type_url(want[i].name), want[i].url);
    }
    cr_assert_str_eq(xds_wire_type_url("lds"), XDS_TYPE_URL_LISTENER, "short names ignore case");
    /* The table lists each type once, in Envoy's no-drop order. */
    const char *order[] = {"SDS", "CDS", "EDS", "LDS", "RDS"};
    for (size_t i = 0; i < XDS_WIRE_RESOURCE_TYPES; i++)
        cr_assert_str_eq(xds_wire_types[i].short_name, order[i]);
}

Test(xds_wire, unknown_names_and_urls_are_null)
{
    cr_assert_null(xds_wire_short_name(NULL));
    cr_assert_null(xds_wire_short_name(""));
    cr_assert_null(xds_wire_short_name("LDS"), "a short name is not a type URL");
    cr_assert_null(xds_wire_short_name("envoy.config.listener.v3.Listener"), "no prefix");
    cr_assert_null(xds_wire_short_name(XDS_TYPE_URL_LISTENER "x"));
    cr_assert_null(xds_wire_short_name(XDS_TYPE_URL_HCM), "a typed config is no resource type");
    cr_assert_null(
        xds_wire_short_name(XDS_TYPE_URL_PREFIX "envoy.config.core.v3.TypedExtensionConfig"));
    cr_assert_null(xds_wire_type_url(NULL));
    cr_assert_null(xds_wire_type_url(""));
    cr_assert_null(xds_wire_type_url("XDS"));
    cr_assert_null(xds_wire_type_url(XDS_TYPE_URL_LISTENER), "a URL is not a short name");
}
