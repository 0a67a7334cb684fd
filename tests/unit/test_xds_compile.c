/* tests/unit/test_xds_compile.c — the xDS compiler: compiles the fixture config
 * (test_xds_compile_fixture.h) and decodes every resource back with protobuf-c,
 * checking names, addresses, SDS references, weights and RBAC principals; then
 * versions (change iff content changes, unrelated nodes untouched) and the
 * errors for broken input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sds/compiler/xds_compile.h"
#include "sds/compiler/xds_compile_workload.h"
#include "test_xds_compile_fixture.h"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"

typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfig;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext CommonTls;

/* ---- helpers -------------------------------------------------------------- */

static void compile_ok(const mesh_config *cfg, const char *id, xds_snapshot *s)
{
    mesh_err err = { 0 };
    int rc = xds_compile_node(cfg, id, s, &err);
    cr_assert_eq(rc, MESH_OK, "compile %s: %s", id, err.msg);
}

static const xds_resource *must_find(const xds_snapshot *s, enum xds_type t, const char *name)
{
    const xds_resource *r = xds_snapshot_find(s, t, name);
    cr_assert_not_null(r, "no %s resource named %s", xds_type_url(t), name);
    return r;
}

static void assert_names(const xds_snapshot *s, enum xds_type t, const char *const *want, size_t n)
{
    cr_assert_eq(s->types[t].n, n, "%s: %zu resources, want %zu", xds_type_url(t),
                 s->types[t].n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(s->types[t].items[i].name, want[i]);
}

/* Unpacks an Any after checking its type URL. */
static ProtobufCMessage *unpack_any(const Google__Protobuf__Any *any,
                                    const ProtobufCMessageDescriptor *d)
{
    cr_assert_not_null(any);
    char url[512];
    snprintf(url, sizeof url, XDS_TYPE_URL_PREFIX "%s", d->name);
    cr_assert_str_eq(any->type_url, url);
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data);
    cr_assert_not_null(m, "Any %s does not decode", url);
    return m;
}

static void assert_socket(const Envoy__Config__Core__V3__Address *a, const char *host,
                          uint32_t port)
{
    cr_assert_not_null(a);
    cr_assert_eq(a->address_case, ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS);
    cr_assert_str_eq(a->socket_address->address, host);
    cr_assert_eq(a->socket_address->port_specifier_case,
                 ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE);
    cr_assert_eq(a->socket_address->port_value, port);
}

static void assert_ads(const Envoy__Config__Core__V3__ConfigSource *cs)
{
    cr_assert_not_null(cs);
    cr_assert_eq(cs->config_source_specifier_case,
                 ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS);
    cr_assert_not_null(cs->ads);
    cr_assert_eq(cs->resource_api_version, ENVOY__CONFIG__CORE__V3__API_VERSION__V3);
}

/* TLS 1.3 only, SDS "default" + "ROOTCA"; sans (if any) exact URI matchers. */
static void assert_common_tls(const CommonTls *t, const char *const *sans, size_t n_sans)
{
    cr_assert_not_null(t);
    cr_assert_eq(t->tls_params->tls_minimum_protocol_version,
                 ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3);
    cr_assert_eq(t->n_tls_certificate_sds_secret_configs, 1);
    cr_assert_str_eq(t->tls_certificate_sds_secret_configs[0]->name, "default");
    assert_ads(t->tls_certificate_sds_secret_configs[0]->sds_config);
    cr_assert_eq(t->n_tls_certificates, 0, "meshd must never send inline keys");
    if (n_sans == 0) {
        cr_assert_eq(t->validation_context_type_case,
                     ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG);
        cr_assert_str_eq(t->validation_context_sds_secret_config->name, "ROOTCA");
        assert_ads(t->validation_context_sds_secret_config->sds_config);
        return;
    }
    cr_assert_eq(t->validation_context_type_case,
                 ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT);
    const Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext
        *cv = t->combined_validation_context;
    cr_assert_str_eq(cv->validation_context_sds_secret_config->name, "ROOTCA");
    const Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *v =
        cv->default_validation_context;
    cr_assert_eq(v->n_match_typed_subject_alt_names, n_sans);
    for (size_t i = 0; i < n_sans; i++) {
        const Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher *m =
            v->match_typed_subject_alt_names[i];
        cr_assert_eq(m->san_type,
                     ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__URI);
        cr_assert_eq(m->matcher->match_pattern_case,
                     ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT);
        cr_assert_str_eq(m->matcher->exact, sans[i]);
    }
}

/* The principals of an RBAC rule set (ALLOW). n_want == 0: no policy at all. */
static void assert_rbac(const Envoy__Config__Rbac__V3__RBAC *r, const char *svc,
                        const char *const *want, size_t n_want)
{
    cr_assert_not_null(r);
    cr_assert_eq(r->action, ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW);
    if (n_want == 0) {
        cr_assert_eq(r->n_policies, 0, "no authorization must mean no policy (deny all)");
        return;
    }
    cr_assert_eq(r->n_policies, 1);
    char key[128];
    snprintf(key, sizeof key, "allow|%s", svc);
    cr_assert_str_eq(r->policies[0]->key, key);
    const Envoy__Config__Rbac__V3__Policy *p = r->policies[0]->value;
    cr_assert_eq(p->n_permissions, 1);
    cr_assert_eq(p->permissions[0]->rule_case, ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_ANY);
    cr_assert(p->permissions[0]->any);
    cr_assert_eq(p->n_principals, n_want);
    for (size_t i = 0; i < n_want; i++) {
        const Envoy__Config__Rbac__V3__Principal *pr = p->principals[i];
        cr_assert_eq(pr->identifier_case, ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AUTHENTICATED);
        cr_assert_eq(pr->authenticated->principal_name->match_pattern_case,
                     ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT);
        cr_assert_str_eq(pr->authenticated->principal_name->exact, want[i]);
    }
}

static Listener *unpack_listener(const xds_snapshot *s, const char *name)
{
    const xds_resource *r = must_find(s, XDS_LDS, name);
    Listener *l = envoy__config__listener__v3__listener__unpack(NULL, r->len, r->data);
    cr_assert_not_null(l);
    cr_assert_str_eq(l->name, name);
    return l;
}

static void assert_downstream_tls(const Envoy__Config__Listener__V3__FilterChain *fc)
{
    cr_assert_not_null(fc->transport_socket);
    cr_assert_str_eq(fc->transport_socket->name, "envoy.transport_sockets.tls");
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d =
        (void *)unpack_any(fc->transport_socket->typed_config,
                           &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor);
    cr_assert_not_null(d->require_client_certificate);
    cr_assert(d->require_client_certificate->value);
    assert_common_tls(d->common_tls_context, NULL, 0);
    protobuf_c_message_free_unpacked(&d->base, NULL);
}

/* ---- the web node: inbound HTTP, HTTP egress, TCP egress ------------------ */

Test(xds_compile, web_node_resource_names)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    cr_assert_str_eq(s.spiffe_id, FX_WEB_ID);
    const char *lds[] = { "inbound|15001", "outbound|http", "outbound|tcp|db" };
    const char *rds[] = { "outbound|http" };
    const char *cds[] = { "inbound|web|local", "outbound|db", "outbound|reviews", "outbound|web" };
    const char *eds[] = { "outbound|db", "outbound|reviews", "outbound|web" };
    assert_names(&s, XDS_LDS, lds, 3);
    assert_names(&s, XDS_RDS, rds, 1);
    assert_names(&s, XDS_CDS, cds, 4);
    assert_names(&s, XDS_EDS, eds, 3);
    for (int t = 0; t < XDS_TYPE_COUNT; t++) {
        cr_assert_eq(strlen(s.types[t].version), 16);
        for (size_t i = 0; i < s.types[t].n; i++)
            cr_assert_eq(strlen(s.types[t].items[i].version), 16);
    }
    xds_snapshot_free(&s);
}

Test(xds_compile, web_inbound_http_listener)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    Listener *l = unpack_listener(&s, "inbound|15001");
    assert_socket(l->address, "127.0.0.1", 15001);
    cr_assert_eq(l->traffic_direction, ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND);
    cr_assert_eq(l->n_filter_chains, 1);
    const Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[0];
    assert_downstream_tls(fc);
    cr_assert_eq(fc->n_filters, 1);
    cr_assert_str_eq(fc->filters[0]->name, "envoy.filters.network.http_connection_manager");
    Hcm *hcm = (void *)unpack_any(fc->filters[0]->typed_config,
        &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
    cr_assert_str_neq(hcm->stat_prefix, "");
    cr_assert_eq(hcm->route_specifier_case,
                 ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG);
    const RouteConfig *rc = hcm->route_config;
    cr_assert_eq(rc->n_virtual_hosts, 1);
    cr_assert_str_eq(rc->virtual_hosts[0]->domains[0], "*");
    const Envoy__Config__Route__V3__RouteAction *act = rc->virtual_hosts[0]->routes[0]->route;
    cr_assert_str_eq(rc->virtual_hosts[0]->routes[0]->match->prefix, "/");
    cr_assert_str_eq(act->cluster, "inbound|web|local");
    cr_assert_eq(act->timeout->seconds, 0, "inbound must not add its own deadline");
    /* RBAC first, router last. Nobody is authorised to call web. */
    cr_assert_eq(hcm->n_http_filters, 2);
    cr_assert_str_eq(hcm->http_filters[0]->name, "envoy.filters.http.rbac");
    cr_assert_str_eq(hcm->http_filters[1]->name, "envoy.filters.http.router");
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *rbac = (void *)unpack_any(
        hcm->http_filters[0]->typed_config, &envoy__extensions__filters__http__rbac__v3__rbac__descriptor);
    assert_rbac(rbac->rules, "web", NULL, 0);
    ProtobufCMessage *router = unpack_any(hcm->http_filters[1]->typed_config,
                                          &envoy__extensions__filters__http__router__v3__router__descriptor);
    /* The caller's verified identity reaches the app, a forged header does not. */
    cr_assert_eq(hcm->forward_client_cert_details,
                 ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__FORWARD_CLIENT_CERT_DETAILS__SANITIZE_SET);
    cr_assert(hcm->set_current_client_cert_details->uri);
    protobuf_c_message_free_unpacked(router, NULL);
    protobuf_c_message_free_unpacked(&rbac->base, NULL);
    protobuf_c_message_free_unpacked(&hcm->base, NULL);
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);
    xds_snapshot_free(&s);
}

Test(xds_compile, web_outbound_listeners)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);

    Listener *l = unpack_listener(&s, "outbound|http");
    assert_socket(l->address, "127.0.0.1", 15080);
    cr_assert_eq(l->traffic_direction, ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND);
    cr_assert_null(l->filter_chains[0]->transport_socket, "egress from the app is plain text");
    Hcm *hcm = (void *)unpack_any(l->filter_chains[0]->filters[0]->typed_config,
        &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
    cr_assert_eq(hcm->route_specifier_case,
                 ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS);
    cr_assert_str_eq(hcm->rds->route_config_name, "outbound|http");
    assert_ads(hcm->rds->config_source);
    cr_assert_eq(hcm->n_http_filters, 1);
    cr_assert_str_eq(hcm->http_filters[0]->name, "envoy.filters.http.router");
    protobuf_c_message_free_unpacked(&hcm->base, NULL);
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);

    l = unpack_listener(&s, "outbound|tcp|db");
    assert_socket(l->address, "127.0.0.1", 15432);
    cr_assert_eq(l->filter_chains[0]->n_filters, 1);
    cr_assert_str_eq(l->filter_chains[0]->filters[0]->name, "envoy.filters.network.tcp_proxy");
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = (void *)unpack_any(
        l->filter_chains[0]->filters[0]->typed_config,
        &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor);
    cr_assert_str_eq(tp->cluster, "outbound|db");
    cr_assert_str_neq(tp->stat_prefix, "");
    protobuf_c_message_free_unpacked(&tp->base, NULL);
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);
    xds_snapshot_free(&s);
}

Test(xds_compile, web_route_table)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    const xds_resource *r = must_find(&s, XDS_RDS, "outbound|http");
    RouteConfig *rc = envoy__config__route__v3__route_configuration__unpack(NULL, r->len, r->data);
    cr_assert_not_null(rc);
    cr_assert_str_eq(rc->name, "outbound|http");
    cr_assert(rc->ignore_port_in_host_matching);
    /* reviews is claimed by the route; web gets a default host; db is tcp. */
    cr_assert_eq(rc->n_virtual_hosts, 2);
    const Envoy__Config__Route__V3__VirtualHost *vr = rc->virtual_hosts[0], *vw = rc->virtual_hosts[1];
    cr_assert_str_eq(vr->name, "route|reviews-route");
    cr_assert_eq(vr->n_domains, 1);
    cr_assert_str_eq(vr->domains[0], "reviews");
    cr_assert_eq(vr->n_routes, 2);

    const Envoy__Config__Route__V3__Route *r0 = vr->routes[0];
    cr_assert_str_eq(r0->match->prefix, "/v2");
    cr_assert_eq(r0->match->n_headers, 1);
    cr_assert_str_eq(r0->match->headers[0]->name, "x-canary");
    cr_assert_eq(r0->match->headers[0]->header_match_specifier_case,
                 ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH);
    cr_assert_str_eq(r0->match->headers[0]->string_match->exact, "1");
    const Envoy__Config__Route__V3__RouteAction *a0 = r0->route;
    cr_assert_eq(a0->cluster_specifier_case,
                 ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS);
    cr_assert_eq(a0->weighted_clusters->n_clusters, 2);
    cr_assert_str_eq(a0->weighted_clusters->clusters[0]->name, "outbound|reviews");
    cr_assert_eq(a0->weighted_clusters->clusters[0]->weight->value, 90);
    cr_assert_str_eq(a0->weighted_clusters->clusters[1]->name, "outbound|web");
    cr_assert_eq(a0->weighted_clusters->clusters[1]->weight->value, 10);
    cr_assert_eq(a0->timeout->seconds, 2);
    cr_assert_eq(a0->timeout->nanos, 0);
    cr_assert_not_null(a0->retry_policy);
    cr_assert_eq(a0->retry_policy->num_retries->value, 3);
    cr_assert_str_eq(a0->retry_policy->retry_on, "connect-failure,refused-stream,retriable-status-codes");
    cr_assert_eq(a0->retry_policy->n_retriable_status_codes, 1);
    cr_assert_eq(a0->retry_policy->retriable_status_codes[0], 503);

    const Envoy__Config__Route__V3__RouteAction *a1 = vr->routes[1]->route;
    cr_assert_str_eq(vr->routes[1]->match->prefix, "/");
    cr_assert_eq(a1->cluster_specifier_case, ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER);
    cr_assert_str_eq(a1->cluster, "outbound|reviews");
    cr_assert_eq(a1->timeout->seconds, 15, "default route timeout is 15s");
    cr_assert_null(a1->retry_policy);

    cr_assert_str_eq(vw->name, "service|web");
    cr_assert_str_eq(vw->domains[0], "web");
    cr_assert_str_eq(vw->routes[0]->route->cluster, "outbound|web");
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    xds_snapshot_free(&s);
}

Test(xds_compile, web_clusters_and_endpoints)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);

    const xds_resource *r = must_find(&s, XDS_CDS, "outbound|reviews");
    Cluster *c = envoy__config__cluster__v3__cluster__unpack(NULL, r->len, r->data);
    cr_assert_not_null(c);
    cr_assert_eq(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
    cr_assert_eq(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST);
    cr_assert_eq(c->connect_timeout->seconds, 0);
    cr_assert_eq(c->connect_timeout->nanos, 250000000);
    assert_ads(c->eds_cluster_config->eds_config);
    cr_assert_str_eq(c->eds_cluster_config->service_name, "outbound|reviews");
    cr_assert_str_eq(c->transport_socket->name, "envoy.transport_sockets.tls");
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *u = (void *)unpack_any(
        c->transport_socket->typed_config,
        &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor);
    const char *sans[] = { FX_REVIEWS_ID };
    assert_common_tls(u->common_tls_context, sans, 1);
    protobuf_c_message_free_unpacked(&u->base, NULL);
    envoy__config__cluster__v3__cluster__free_unpacked(c, NULL);

    r = must_find(&s, XDS_CDS, "outbound|db");
    c = envoy__config__cluster__v3__cluster__unpack(NULL, r->len, r->data);
    cr_assert_eq(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN);
    cr_assert_eq(c->connect_timeout->seconds, 1, "unset connect timeout defaults to 1s");
    envoy__config__cluster__v3__cluster__free_unpacked(c, NULL);

    r = must_find(&s, XDS_CDS, "inbound|web|local");
    c = envoy__config__cluster__v3__cluster__unpack(NULL, r->len, r->data);
    cr_assert_eq(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
    cr_assert_null(c->transport_socket, "the hop to the local app is plain");
    cr_assert_str_eq(c->load_assignment->cluster_name, "inbound|web|local");
    assert_socket(c->load_assignment->endpoints[0]->lb_endpoints[0]->endpoint->address,
                  "127.0.0.1", 8081);
    envoy__config__cluster__v3__cluster__free_unpacked(c, NULL);

    r = must_find(&s, XDS_EDS, "outbound|reviews");
    Cla *cla = envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, r->len, r->data);
    cr_assert_not_null(cla);
    cr_assert_str_eq(cla->cluster_name, "outbound|reviews");
    cr_assert_eq(cla->n_endpoints, 1);
    cr_assert_eq(cla->endpoints[0]->n_lb_endpoints, 1);
    const Envoy__Config__Endpoint__V3__LbEndpoint *le = cla->endpoints[0]->lb_endpoints[0];
    assert_socket(le->endpoint->address, "127.0.0.1", 15002);
    cr_assert_eq(le->health_status, ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY);
    envoy__config__endpoint__v3__cluster_load_assignment__free_unpacked(cla, NULL);
    xds_snapshot_free(&s);
}

/* ---- the reviews and db nodes: RBAC on inbound ---------------------------- */

Test(xds_compile, reviews_node_allows_web)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    compile_ok(&f.cfg, FX_REVIEWS_ID, &s);
    const char *lds[] = { "inbound|15002" };
    const char *cds[] = { "inbound|reviews|local" };
    assert_names(&s, XDS_LDS, lds, 1);
    assert_names(&s, XDS_CDS, cds, 1);
    assert_names(&s, XDS_RDS, NULL, 0);   /* no egress: no route table, no outbound clusters */
    assert_names(&s, XDS_EDS, NULL, 0);
    Listener *l = unpack_listener(&s, "inbound|15002");
    Hcm *hcm = (void *)unpack_any(l->filter_chains[0]->filters[0]->typed_config,
        &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *rbac = (void *)unpack_any(
        hcm->http_filters[0]->typed_config, &envoy__extensions__filters__http__rbac__v3__rbac__descriptor);
    const char *allow[] = { FX_WEB_ID };
    assert_rbac(rbac->rules, "reviews", allow, 1);
    protobuf_c_message_free_unpacked(&rbac->base, NULL);
    protobuf_c_message_free_unpacked(&hcm->base, NULL);
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);
    xds_snapshot_free(&s);
}

Test(xds_compile, db_node_tcp_inbound)
{
    xds_fixture f;
    xds_fixture_init(&f);
    /* Several entries, duplicates and order must not matter: sorted, unique. */
    f.db_allow[0] = FX_WEB_ID;
    f.authz[1].n_allow = 1;
    f.reviews_allow[1] = FX_DB_ID;
    xds_snapshot s;
    compile_ok(&f.cfg, FX_DB_ID, &s);
    Listener *l = unpack_listener(&s, "inbound|15003");
    assert_socket(l->address, "127.0.0.1", 15003);
    const Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[0];
    assert_downstream_tls(fc);
    cr_assert_eq(fc->n_filters, 2);
    cr_assert_str_eq(fc->filters[0]->name, "envoy.filters.network.rbac");
    cr_assert_str_eq(fc->filters[1]->name, "envoy.filters.network.tcp_proxy");
    Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *rbac = (void *)unpack_any(
        fc->filters[0]->typed_config, &envoy__extensions__filters__network__rbac__v3__rbac__descriptor);
    const char *allow[] = { FX_WEB_ID };
    assert_rbac(rbac->rules, "db", allow, 1);
    cr_assert_str_neq(rbac->stat_prefix, "");
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = (void *)unpack_any(
        fc->filters[1]->typed_config, &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor);
    cr_assert_str_eq(tp->cluster, "inbound|db|local");
    protobuf_c_message_free_unpacked(&tp->base, NULL);
    protobuf_c_message_free_unpacked(&rbac->base, NULL);
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);
    xds_snapshot_free(&s);
}

Test(xds_compile, principals_sorted_unique_across_entries)
{
    xds_fixture f;
    xds_fixture_init(&f);
    char *more[3] = { FX_REVIEWS_ID, FX_DB_ID, FX_REVIEWS_ID };
    mesh_authorization authz[3] = { f.authz[0], f.authz[1],
                                    { .service = "reviews", .allow = more, .n_allow = 3 } };
    f.cfg.authz = authz;
    f.cfg.n_authz = 3;
    xds_snapshot s;
    compile_ok(&f.cfg, FX_REVIEWS_ID, &s);
    Listener *l = unpack_listener(&s, "inbound|15002");
    Hcm *hcm = (void *)unpack_any(l->filter_chains[0]->filters[0]->typed_config,
        &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *rbac = (void *)unpack_any(
        hcm->http_filters[0]->typed_config, &envoy__extensions__filters__http__rbac__v3__rbac__descriptor);
    const char *allow[] = { FX_DB_ID, FX_REVIEWS_ID, FX_WEB_ID };
    assert_rbac(rbac->rules, "reviews", allow, 3);
    protobuf_c_message_free_unpacked(&rbac->base, NULL);
    protobuf_c_message_free_unpacked(&hcm->base, NULL);
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);
    xds_snapshot_free(&s);
}

/* ---- empty and special cases ---------------------------------------------- */

Test(xds_compile, identity_without_workload_gets_empty_snapshot)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s, empty_cfg;
    compile_ok(&f.cfg, "spiffe://mesh.test/ns/default/sa/nobody", &s);
    mesh_config none = { 0 };
    compile_ok(&none, FX_WEB_ID, &empty_cfg);
    for (int t = 0; t < XDS_TYPE_COUNT; t++) {
        cr_assert_eq(s.types[t].n, 0);
        cr_assert_eq(strlen(s.types[t].version), 16, "an empty set still has a version");
        cr_assert_str_eq(s.types[t].version, empty_cfg.types[t].version);
    }
    xds_snapshot_free(&s);
    xds_snapshot_free(&empty_cfg);
}

Test(xds_compile, service_without_workloads_fails_closed)
{
    xds_fixture f;
    xds_fixture_init(&f);
    f.cfg.n_workloads = 1;   /* only web-1: reviews and db have no workloads */
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    const xds_resource *r = must_find(&s, XDS_EDS, "outbound|reviews");
    Cla *cla = envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, r->len, r->data);
    cr_assert_eq(cla->n_endpoints, 0);
    envoy__config__endpoint__v3__cluster_load_assignment__free_unpacked(cla, NULL);
    r = must_find(&s, XDS_CDS, "outbound|reviews");
    Cluster *c = envoy__config__cluster__v3__cluster__unpack(NULL, r->len, r->data);
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *u = (void *)unpack_any(
        c->transport_socket->typed_config,
        &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor);
    /* Never an empty SAN list (which would accept any identity of the domain). */
    const char *nobody[] = { "spiffe://mesh.test/meshd/no-workload/reviews" };
    assert_common_tls(u->common_tls_context, nobody, 1);
    protobuf_c_message_free_unpacked(&u->base, NULL);
    envoy__config__cluster__v3__cluster__free_unpacked(c, NULL);
    xds_snapshot_free(&s);
}

Test(xds_compile, ipv6_and_path_match)
{
    xds_fixture f;
    xds_fixture_init(&f);
    f.workloads[1].inbound = "[::1]:15002";
    f.rules[1].prefix = NULL;
    f.rules[1].path = "/exact";
    f.hdrs[0] = (mesh_header_matcher){ .name = "x-debug", .kind = MESH_HDR_PRESENT };
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    const xds_resource *r = must_find(&s, XDS_EDS, "outbound|reviews");
    Cla *cla = envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, r->len, r->data);
    assert_socket(cla->endpoints[0]->lb_endpoints[0]->endpoint->address, "::1", 15002);
    envoy__config__endpoint__v3__cluster_load_assignment__free_unpacked(cla, NULL);
    r = must_find(&s, XDS_RDS, "outbound|http");
    RouteConfig *rc = envoy__config__route__v3__route_configuration__unpack(NULL, r->len, r->data);
    const Envoy__Config__Route__V3__RouteMatch *m0 = rc->virtual_hosts[0]->routes[0]->match;
    cr_assert_eq(m0->headers[0]->header_match_specifier_case,
                 ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH);
    cr_assert(m0->headers[0]->present_match);
    const Envoy__Config__Route__V3__RouteMatch *m1 = rc->virtual_hosts[0]->routes[1]->match;
    cr_assert_eq(m1->path_specifier_case, ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH);
    cr_assert_str_eq(m1->path, "/exact");
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    xds_snapshot_free(&s);
}

/* ---- versions ------------------------------------------------------------- */

static void versions_of(const mesh_config *cfg, const char *id, char out[XDS_TYPE_COUNT][17])
{
    xds_snapshot s;
    compile_ok(cfg, id, &s);
    for (int t = 0; t < XDS_TYPE_COUNT; t++)
        memcpy(out[t], s.types[t].version, 17);
    xds_snapshot_free(&s);
}

static void assert_same_versions(char a[XDS_TYPE_COUNT][17], char b[XDS_TYPE_COUNT][17],
                                 const char *what)
{
    for (int t = 0; t < XDS_TYPE_COUNT; t++)
        cr_assert_str_eq(a[t], b[t], "%s: %s version changed", what, xds_type_url(t));
}

Test(xds_compile, versions_stable_and_order_independent)
{
    xds_fixture f;
    xds_fixture_init(&f);
    char v1[XDS_TYPE_COUNT][17], v2[XDS_TYPE_COUNT][17];
    versions_of(&f.cfg, FX_WEB_ID, v1);
    versions_of(&f.cfg, FX_WEB_ID, v2);
    assert_same_versions(v1, v2, "recompile");

    /* A bigger mesh (a second default virtual host, two reviews replicas), then
     * the same mesh with every list reversed, as a store might return it. */
    mesh_service svcs[4] = { f.services[0], f.services[1], f.services[2],
                             { .name = "api", .protocol = MESH_PROTO_HTTP, .source = "x:1" } };
    mesh_workload wls[4] = { f.workloads[0], f.workloads[1], f.workloads[2], f.workloads[1] };
    wls[3].name = "reviews-0";
    wls[3].inbound = "127.0.0.1:15012";
    mesh_authorization az[2] = { f.authz[0], f.authz[1] };
    mesh_config fwd = f.cfg, rev = f.cfg;
    fwd.services = svcs;
    fwd.n_services = 4;
    fwd.workloads = wls;
    fwd.n_workloads = 4;
    versions_of(&fwd, FX_WEB_ID, v1);
    mesh_service rsvcs[4];
    mesh_workload rwls[4];
    mesh_authorization raz[2];
    for (size_t i = 0; i < 4; i++) {
        rsvcs[i] = svcs[3 - i];
        rwls[i] = wls[3 - i];
    }
    raz[0] = az[1];
    raz[1] = az[0];
    rev.services = rsvcs;
    rev.n_services = 4;
    rev.workloads = rwls;
    rev.n_workloads = 4;
    rev.authz = raz;
    versions_of(&rev, FX_WEB_ID, v2);
    assert_same_versions(v1, v2, "reordered config");
    versions_of(&f.cfg, FX_WEB_ID, v2);
    cr_assert_str_neq(v1[XDS_RDS], v2[XDS_RDS], "a new service must show in the route table");
    cr_assert_str_neq(v1[XDS_EDS], v2[XDS_EDS], "a new replica must show in the endpoints");
}

Test(xds_compile, version_changes_iff_content_changes)
{
    xds_fixture f;
    xds_fixture_init(&f);
    char before[XDS_TYPE_COUNT][17], after[XDS_TYPE_COUNT][17];
    char rev_before[XDS_TYPE_COUNT][17], rev_after[XDS_TYPE_COUNT][17];
    versions_of(&f.cfg, FX_WEB_ID, before);
    versions_of(&f.cfg, FX_REVIEWS_ID, rev_before);

    f.rules[0].timeout_ms = 3000;     /* a route edit: only web's RDS */
    versions_of(&f.cfg, FX_WEB_ID, after);
    cr_assert_str_neq(after[XDS_RDS], before[XDS_RDS]);
    cr_assert_str_eq(after[XDS_LDS], before[XDS_LDS]);
    cr_assert_str_eq(after[XDS_CDS], before[XDS_CDS]);
    cr_assert_str_eq(after[XDS_EDS], before[XDS_EDS]);
    versions_of(&f.cfg, FX_REVIEWS_ID, rev_after);
    assert_same_versions(rev_before, rev_after, "reviews after a route edit it never sees");

    f.rules[0].timeout_ms = 2000;     /* edit reverted: back to the same versions */
    versions_of(&f.cfg, FX_WEB_ID, after);
    assert_same_versions(before, after, "reverted edit");

    f.workloads[1].inbound = "127.0.0.1:16002";   /* reviews moved: web's EDS only */
    versions_of(&f.cfg, FX_WEB_ID, after);
    cr_assert_str_neq(after[XDS_EDS], before[XDS_EDS]);
    cr_assert_str_eq(after[XDS_CDS], before[XDS_CDS]);
    cr_assert_str_eq(after[XDS_RDS], before[XDS_RDS]);
    cr_assert_str_eq(after[XDS_LDS], before[XDS_LDS]);
}

Test(xds_compile, authz_change_touches_only_the_callee)
{
    xds_fixture f;
    xds_fixture_init(&f);
    char web0[XDS_TYPE_COUNT][17], db0[XDS_TYPE_COUNT][17], rev0[XDS_TYPE_COUNT][17];
    char web1[XDS_TYPE_COUNT][17], db1[XDS_TYPE_COUNT][17], rev1[XDS_TYPE_COUNT][17];
    versions_of(&f.cfg, FX_WEB_ID, web0);
    versions_of(&f.cfg, FX_DB_ID, db0);
    versions_of(&f.cfg, FX_REVIEWS_ID, rev0);

    f.reviews_allow[1] = FX_DB_ID;    /* db may now call reviews */
    f.authz[0].n_allow = 2;
    versions_of(&f.cfg, FX_WEB_ID, web1);
    versions_of(&f.cfg, FX_DB_ID, db1);
    versions_of(&f.cfg, FX_REVIEWS_ID, rev1);
    assert_same_versions(web0, web1, "web (unrelated to reviews' authorization)");
    assert_same_versions(db0, db1, "db (the new caller: nothing to configure on its side)");
    cr_assert_str_neq(rev1[XDS_LDS], rev0[XDS_LDS], "reviews' inbound RBAC must change");
    cr_assert_str_eq(rev1[XDS_CDS], rev0[XDS_CDS]);
}

/* ---- identities shared by replicas ---------------------------------------- */

Test(xds_compile, replicas_sharing_an_identity)
{
    xds_fixture f;
    xds_fixture_init(&f);
    mesh_workload w[4] = { f.workloads[0], f.workloads[1], f.workloads[2], f.workloads[1] };
    w[3].name = "reviews-2";
    w[3].inbound = "127.0.0.1:15012";
    w[3].app = "127.0.0.1:8092";
    w[3].source = "mesh.yaml:50";
    f.cfg.workloads = w;
    f.cfg.n_workloads = 4;

    /* The union clashes (two local clusters "inbound|reviews|local"): refused. */
    xds_snapshot s;
    mesh_err err = { 0 };
    cr_assert_eq(xds_compile_node(&f.cfg, FX_REVIEWS_ID, &s, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "inbound|reviews|local") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "meshctl workload add NAME --id") != NULL, "%s", err.msg);
    for (int t = 0; t < XDS_TYPE_COUNT; t++)
        cr_assert_eq(s.types[t].n, 0, "a failed compile leaves nothing behind");

    /* Each replica by its workload name gets exactly its own resources. */
    cr_assert_eq(xds_compile_workload(&f.cfg, FX_REVIEWS_ID, "reviews-2", &s, &err), MESH_OK, "%s",
                 err.msg);
    const char *lds[] = { "inbound|15012" };
    assert_names(&s, XDS_LDS, lds, 1);
    const xds_resource *r = must_find(&s, XDS_CDS, "inbound|reviews|local");
    Cluster *c = envoy__config__cluster__v3__cluster__unpack(NULL, r->len, r->data);
    assert_socket(c->load_assignment->endpoints[0]->lb_endpoints[0]->endpoint->address,
                  "127.0.0.1", 8092);
    envoy__config__cluster__v3__cluster__free_unpacked(c, NULL);
    xds_snapshot_free(&s);

    /* The web node sees both replicas as endpoints, and one SAN (shared ID). */
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    r = must_find(&s, XDS_EDS, "outbound|reviews");
    Cla *cla = envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, r->len, r->data);
    cr_assert_eq(cla->endpoints[0]->n_lb_endpoints, 2);
    assert_socket(cla->endpoints[0]->lb_endpoints[0]->endpoint->address, "127.0.0.1", 15002);
    assert_socket(cla->endpoints[0]->lb_endpoints[1]->endpoint->address, "127.0.0.1", 15012);
    envoy__config__endpoint__v3__cluster_load_assignment__free_unpacked(cla, NULL);
    r = must_find(&s, XDS_CDS, "outbound|reviews");
    c = envoy__config__cluster__v3__cluster__unpack(NULL, r->len, r->data);
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *u = (void *)unpack_any(
        c->transport_socket->typed_config,
        &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor);
    const char *sans[] = { FX_REVIEWS_ID };
    assert_common_tls(u->common_tls_context, sans, 1);
    protobuf_c_message_free_unpacked(&u->base, NULL);
    envoy__config__cluster__v3__cluster__free_unpacked(c, NULL);
    xds_snapshot_free(&s);
}

Test(xds_compile, workload_selection_errors)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    mesh_err err = { 0 };
    /* A name that exists but under another identity selects nothing. */
    cr_assert_eq(xds_compile_workload(&f.cfg, FX_WEB_ID, "reviews-1", &s, &err), MESH_ENOTFOUND);
    cr_assert(strstr(err.msg, "reviews-1") != NULL, "%s", err.msg);
    cr_assert_eq(s.types[XDS_LDS].n, 0);
    cr_assert_eq(xds_compile_workload(&f.cfg, FX_WEB_ID, "", &s, &err), MESH_EINVAL);
    cr_assert_eq(xds_compile_workload(&f.cfg, FX_WEB_ID, NULL, &s, &err), MESH_EINVAL);
}

/* ---- bad input ------------------------------------------------------------ */

/* Compiles for web and expects `code` with every needle in the message and an
 * empty snapshot. */
static void expect_fail(const mesh_config *cfg, const char *id, int code, const char *n1,
                        const char *n2)
{
    xds_snapshot s;
    mesh_err err = { 0 };
    int rc = xds_compile_node(cfg, id, &s, &err);
    cr_assert_eq(rc, code, "rc %d (%s), want %d", rc, err.msg, code);
    cr_assert_eq(err.code, code);
    if (n1)
        cr_assert(strstr(err.msg, n1) != NULL, "\"%s\" not in: %s", n1, err.msg);
    if (n2)
        cr_assert(strstr(err.msg, n2) != NULL, "\"%s\" not in: %s", n2, err.msg);
    for (int t = 0; t < XDS_TYPE_COUNT; t++)
        cr_assert_eq(s.types[t].n, 0);
}

Test(xds_compile, bad_addresses)
{
    static const struct { const char *addr, *why; } cases[] = {
        { "127.0.0.1", "expected host:port" },
        { "127.0.0.1:", "empty port" },
        { ":15001", "empty host" },
        { "127.0.0.1:70000", "above 65535" },
        { "127.0.0.1:0", "port 0" },
        { "127.0.0.1:15x", "not a number" },
        { "::1:15001", "[addr]:port" },
        { "[::1:15001", "[addr]:port" },
        { "", "missing" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        xds_fixture f;
        xds_fixture_init(&f);
        f.workloads[0].inbound = (char *)cases[i].addr;
        expect_fail(&f.cfg, FX_WEB_ID, MESH_EINVAL, cases[i].why, "workload web-1 (mesh.yaml:13) inbound");
    }
    xds_fixture f;
    xds_fixture_init(&f);
    f.workloads[0].app = NULL;
    expect_fail(&f.cfg, FX_WEB_ID, MESH_EINVAL, "web-1 (mesh.yaml:13) app", "missing");
    xds_fixture_init(&f);
    f.web_tcp[0].listen = "nowhere";
    expect_fail(&f.cfg, FX_WEB_ID, MESH_EINVAL, "tcp_outbound to db", "host:port");
    /* A peer's bad address breaks every node that reaches it, and says whose it is. */
    xds_fixture_init(&f);
    f.workloads[1].inbound = "127.0.0.1";
    expect_fail(&f.cfg, FX_WEB_ID, MESH_EINVAL, "workload reviews-1 (mesh.yaml:20) inbound", NULL);
}

Test(xds_compile, unknown_services)
{
    xds_fixture f;
    xds_fixture_init(&f);
    f.workloads[0].service = "wbe";
    expect_fail(&f.cfg, FX_WEB_ID, MESH_EINVAL, "\"wbe\"", "workload web-1");
    xds_fixture_init(&f);
    f.web_tcp[0].service = "dbx";
    expect_fail(&f.cfg, FX_WEB_ID, MESH_EINVAL, "\"dbx\"", "tcp_outbound[0]");
    xds_fixture_init(&f);
    f.dests0[1].service = "ghost";
    expect_fail(&f.cfg, FX_WEB_ID, MESH_EINVAL, "\"ghost\"", "route reviews-route (mesh.yaml:30) rules[0]");
}

Test(xds_compile, bad_routes)
{
    xds_fixture f;
    xds_fixture_init(&f);
    f.dests0[0].weight = 0;
    f.dests0[1].weight = 0;
    expect_fail(&f.cfg, FX_WEB_ID, MESH_EINVAL, "sum to 0", "reviews-route");
    xds_fixture_init(&f);
    f.rules[1].n_destinations = 0;
    expect_fail(&f.cfg, FX_WEB_ID, MESH_EINVAL, "no destinations", "rules[1]");
    xds_fixture_init(&f);
    f.hdrs[0].value = NULL;
    expect_fail(&f.cfg, FX_WEB_ID, MESH_EINVAL, "x-canary", NULL);
    /* Two routes claiming one host would be NACKed by Envoy: refused here. */
    xds_fixture_init(&f);
    mesh_route routes[2] = { f.routes[0], f.routes[0] };
    char *hosts[2] = { "other", "REVIEWS" };
    routes[1].name = "dup";
    routes[1].hosts = hosts;
    routes[1].n_hosts = 2;
    f.cfg.routes = routes;
    f.cfg.n_routes = 2;
    expect_fail(&f.cfg, FX_WEB_ID, MESH_EINVAL, "claimed by both", "route|dup");
    /* ... but nodes without HTTP egress do not care about the route table. */
    xds_snapshot s;
    compile_ok(&f.cfg, FX_REVIEWS_ID, &s);
    xds_snapshot_free(&s);
}

Test(xds_compile, bad_arguments)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    mesh_err err = { 0 };
    cr_assert_eq(xds_compile_node(NULL, FX_WEB_ID, &s, &err), MESH_EINVAL);
    cr_assert_eq(xds_compile_node(&f.cfg, NULL, &s, &err), MESH_EINVAL);
    cr_assert_eq(xds_compile_node(&f.cfg, "", &s, &err), MESH_EINVAL);
    cr_assert_eq(xds_compile_node(&f.cfg, FX_WEB_ID, NULL, &err), MESH_EINVAL);
    char longid[600];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    cr_assert_eq(xds_compile_node(&f.cfg, longid, &s, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "longer than") != NULL);
    /* NULL err is allowed. */
    f.workloads[0].inbound = "bad";
    cr_assert_eq(xds_compile_node(&f.cfg, FX_WEB_ID, &s, NULL), MESH_EINVAL);
}
