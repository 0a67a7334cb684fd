/* tests/unit/test_xds_proxyless.c — the proxyless gRPC view (sds/compiler/xds_compile_proxyless.h):
 * compiles the shared fixture (test_xds_compile_fixture.h) for a client identity and
 * decodes every resource with protobuf-c: API listeners per host, one route table per
 * host adapted for gRPC (domains, max_stream_duration, retry on UNAVAILABLE), plaintext
 * ROUND_ROBIN EDS clusters, endpoints at the app address with a weighted locality and
 * only for services the identity may call; then versions, determinism and errors. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sds/compiler/xds_compile_proxyless.h"
#include "test_xds_compile_fixture.h"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"

typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfig;
typedef Envoy__Config__Route__V3__RouteAction RouteAction;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;

#define OTHER_ID "spiffe://mesh.test/ns/default/sa/stranger"

/* ---- helpers -------------------------------------------------------------- */

static void compile_ok(const mesh_config *cfg, const char *id, xds_snapshot *s)
{
    mesh_err err = { 0 };
    int rc = xds_compile_proxyless(cfg, id, s, &err);
    cr_assert_eq(rc, MESH_OK, "proxyless compile %s: %s", id, err.msg);
}

static void compile_fails(const mesh_config *cfg, const char *id, int code, const char *want)
{
    xds_snapshot s;
    mesh_err err = { 0 };
    int rc = xds_compile_proxyless(cfg, id, &s, &err);
    cr_assert_eq(rc, code, "rc %d, want %d (%s)", rc, code, err.msg);
    cr_assert_not_null(strstr(err.msg, want), "error \"%s\" does not mention \"%s\"", err.msg,
                       want);
    for (int t = 0; t < XDS_TYPE_COUNT; t++)
        cr_assert_eq(s.types[t].n, 0, "a failed compile must leave an empty snapshot");
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

static ProtobufCMessage *decode(const xds_snapshot *s, enum xds_type t, const char *name,
                                const ProtobufCMessageDescriptor *d)
{
    const xds_resource *r = must_find(s, t, name);
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, r->len, r->data);
    cr_assert_not_null(m, "%s %s does not decode", d->name, name);
    return m;
}

static void assert_ads(const Envoy__Config__Core__V3__ConfigSource *cs)
{
    cr_assert_not_null(cs);
    cr_assert_eq(cs->config_source_specifier_case,
                 ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS);
    cr_assert_eq(cs->resource_api_version, ENVOY__CONFIG__CORE__V3__API_VERSION__V3);
}

static int64_t duration_ms(const Google__Protobuf__Duration *d)
{
    cr_assert_not_null(d);
    return d->seconds * 1000 + d->nanos / 1000000;
}

/* Endpoints of an EDS resource as "host:port" strings (asserts the gRPC shape). */
static size_t endpoints_of(const xds_snapshot *s, const char *name, char out[][64], size_t cap)
{
    Cla *cla = (Cla *)decode(s, XDS_EDS, name, &envoy__config__endpoint__v3__cluster_load_assignment__descriptor);
    cr_assert_str_eq(cla->cluster_name, name);
    size_t n = 0;
    if (cla->n_endpoints == 0) {
        envoy__config__endpoint__v3__cluster_load_assignment__free_unpacked(cla, NULL);
        return 0;
    }
    cr_assert_eq(cla->n_endpoints, 1, "one locality");
    const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = cla->endpoints[0];
    cr_assert_not_null(loc->locality, "gRPC NACKs a locality-less LocalityLbEndpoints");
    cr_assert_not_null(loc->load_balancing_weight, "gRPC drops a locality without a weight");
    cr_assert_eq(loc->load_balancing_weight->value, 1);
    cr_assert_gt(loc->n_lb_endpoints, 0, "an empty locality should not be sent");
    for (size_t i = 0; i < loc->n_lb_endpoints && n < cap; i++) {
        const Envoy__Config__Endpoint__V3__LbEndpoint *le = loc->lb_endpoints[i];
        cr_assert_eq(le->health_status, ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY);
        const Envoy__Config__Core__V3__SocketAddress *sa = le->endpoint->address->socket_address;
        snprintf(out[n++], 64, "%s:%u", sa->address, sa->port_value);
    }
    envoy__config__endpoint__v3__cluster_load_assignment__free_unpacked(cla, NULL);
    return n;
}

/* ---- what a client may subscribe to ---------------------------------------- */

Test(xds_proxyless_names, hosts_clusters_and_endpoints_of_the_fixture)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    cr_assert_str_eq(s.spiffe_id, FX_WEB_ID);
    /* "reviews" is claimed by reviews-route; "web" has no route; db is tcp. */
    const char *hosts[] = { "reviews", "web" };
    const char *clusters[] = { "outbound|reviews", "outbound|web" };
    assert_names(&s, XDS_LDS, hosts, 2);
    assert_names(&s, XDS_RDS, hosts, 2);
    assert_names(&s, XDS_CDS, clusters, 2);
    assert_names(&s, XDS_EDS, clusters, 2);
    xds_snapshot_free(&s);
}

Test(xds_proxyless_names, wildcard_hosts_are_not_listeners_and_unnamed_routes_use_their_name)
{
    xds_fixture f;
    xds_fixture_init(&f);
    /* reviews-route now claims "*", "*.mesh.test" and "Reviews.Mesh" (no "reviews"):
     * the service "reviews" gets its own listener back; wildcards get none. */
    char *hosts[] = { "*", "*.mesh.test", "Reviews.Mesh" };
    f.routes[0].hosts = hosts;
    f.routes[0].n_hosts = 3;
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    const char *want[] = { "Reviews.Mesh", "reviews", "web" };   /* byte order */
    assert_names(&s, XDS_LDS, want, 3);
    RouteConfig *rc = (RouteConfig *)decode(&s, XDS_RDS, "reviews",
                                            &envoy__config__route__v3__route_configuration__descriptor);
    cr_assert_str_eq(rc->virtual_hosts[0]->name, "service|reviews");
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    rc = (RouteConfig *)decode(&s, XDS_RDS, "Reviews.Mesh",
                               &envoy__config__route__v3__route_configuration__descriptor);
    cr_assert_str_eq(rc->virtual_hosts[0]->name, "route|reviews-route");
    cr_assert_str_eq(rc->virtual_hosts[0]->domains[0], "Reviews.Mesh");
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    xds_snapshot_free(&s);

    /* A route without hosts answers its own name. */
    f.routes[0].hosts = NULL;
    f.routes[0].n_hosts = 0;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    const char *want2[] = { "reviews", "reviews-route", "web" };
    assert_names(&s, XDS_LDS, want2, 3);
    xds_snapshot_free(&s);
}

Test(xds_proxyless_names, empty_config_gives_empty_snapshot)
{
    mesh_config cfg;
    memset(&cfg, 0, sizeof cfg);
    xds_snapshot s;
    compile_ok(&cfg, FX_WEB_ID, &s);
    for (int t = 0; t < XDS_TYPE_COUNT; t++)
        cr_assert_eq(s.types[t].n, 0);
    xds_snapshot_free(&s);
}

/* ---- LDS ------------------------------------------------------------------- */

Test(xds_proxyless_lds, api_listener_with_rds_and_router_only)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    Listener *l = (Listener *)decode(&s, XDS_LDS, "reviews",
                                     &envoy__config__listener__v3__listener__descriptor);
    cr_assert_str_eq(l->name, "reviews");
    cr_assert_null(l->address, "an API listener has no socket");
    cr_assert_eq(l->n_filter_chains, 0);
    cr_assert_not_null(l->api_listener);
    Hcm *hcm = (Hcm *)unpack_any(
        l->api_listener->api_listener,
        &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
    cr_assert_eq(hcm->route_specifier_case,
                 ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS);
    cr_assert_str_eq(hcm->rds->route_config_name, "reviews");
    assert_ads(hcm->rds->config_source);
    cr_assert_str_neq(hcm->stat_prefix, "", "Envoy requires a stat_prefix");
    cr_assert_eq(hcm->n_http_filters, 1, "gRPC wants the router last; it is the only filter");
    cr_assert_str_eq(hcm->http_filters[0]->name, "envoy.filters.http.router");
    ProtobufCMessage *router = unpack_any(hcm->http_filters[0]->typed_config,
                                          &envoy__extensions__filters__http__router__v3__router__descriptor);
    protobuf_c_message_free_unpacked(router, NULL);
    protobuf_c_message_free_unpacked(&hcm->base, NULL);
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);
    xds_snapshot_free(&s);
}

/* ---- RDS ------------------------------------------------------------------- */

Test(xds_proxyless_rds, route_rules_adapted_for_grpc)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    RouteConfig *rc = (RouteConfig *)decode(&s, XDS_RDS, "reviews",
                                            &envoy__config__route__v3__route_configuration__descriptor);
    cr_assert_str_eq(rc->name, "reviews");
    cr_assert_eq(rc->n_virtual_hosts, 1);
    const Envoy__Config__Route__V3__VirtualHost *vh = rc->virtual_hosts[0];
    cr_assert_eq(vh->n_domains, 1);
    cr_assert_str_eq(vh->domains[0], "reviews");
    cr_assert_eq(vh->n_routes, 2, "rules stay in config order");

    /* rules[0]: /v2 + x-canary: 1 -> reviews 90 / web 10, 2 s, 3 retries. */
    const Envoy__Config__Route__V3__Route *r0 = vh->routes[0];
    cr_assert_str_eq(r0->match->prefix, "/v2");
    cr_assert_eq(r0->match->n_headers, 1);
    cr_assert_str_eq(r0->match->headers[0]->name, "x-canary");
    /* gRPC C core 1.51 NACKs string_match: the deprecated exact_match it knows. */
    cr_assert_eq(r0->match->headers[0]->header_match_specifier_case,
                 ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH);
    cr_assert_str_eq(r0->match->headers[0]->exact_match, "1");
    const RouteAction *a0 = r0->route;
    cr_assert_eq(a0->cluster_specifier_case,
                 ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS);
    cr_assert_eq(a0->weighted_clusters->n_clusters, 2);
    cr_assert_str_eq(a0->weighted_clusters->clusters[0]->name, "outbound|reviews");
    cr_assert_eq(a0->weighted_clusters->clusters[0]->weight->value, 90);
    cr_assert_str_eq(a0->weighted_clusters->clusters[1]->name, "outbound|web");
    cr_assert_eq(a0->weighted_clusters->clusters[1]->weight->value, 10);
    cr_assert_not_null(a0->weighted_clusters->total_weight, "C core wants the sum when it is not 100");
    cr_assert_eq(a0->weighted_clusters->total_weight->value, 100);
    cr_assert_null(a0->timeout, "gRPC ignores RouteAction.timeout; do not pretend");
    cr_assert_not_null(a0->max_stream_duration);
    cr_assert_eq(duration_ms(a0->max_stream_duration->max_stream_duration), 2000);
    cr_assert_not_null(a0->retry_policy);
    cr_assert_str_eq(a0->retry_policy->retry_on, "unavailable");
    cr_assert_eq(a0->retry_policy->num_retries->value, 3);
    cr_assert_eq(a0->retry_policy->n_retriable_status_codes, 0);

    /* rules[1]: everything else -> reviews; no timeout written, so none imposed. */
    const RouteAction *a1 = vh->routes[1]->route;
    cr_assert_str_eq(vh->routes[1]->match->prefix, "/");
    cr_assert_eq(a1->cluster_specifier_case,
                 ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER);
    cr_assert_str_eq(a1->cluster, "outbound|reviews");
    cr_assert_null(a1->timeout);
    cr_assert_null(a1->max_stream_duration, "the sidecar's 15 s default must not cap gRPC streams");
    cr_assert_null(a1->retry_policy);
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);

    rc = (RouteConfig *)decode(&s, XDS_RDS, "web",
                               &envoy__config__route__v3__route_configuration__descriptor);
    vh = rc->virtual_hosts[0];
    cr_assert_str_eq(vh->name, "service|web");
    cr_assert_eq(vh->n_domains, 1);
    cr_assert_str_eq(vh->domains[0], "web");
    cr_assert_eq(vh->n_routes, 1);
    cr_assert_str_eq(vh->routes[0]->match->prefix, "/");
    cr_assert_str_eq(vh->routes[0]->route->cluster, "outbound|web");
    cr_assert_null(vh->routes[0]->route->timeout);
    cr_assert_null(vh->routes[0]->route->max_stream_duration);
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    xds_snapshot_free(&s);
}

Test(xds_proxyless_rds, a_route_with_several_hosts_gets_one_table_each)
{
    xds_fixture f;
    xds_fixture_init(&f);
    char *hosts[] = { "reviews", "reviews.mesh.test" };
    f.routes[0].hosts = hosts;
    f.routes[0].n_hosts = 2;
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    const char *want[] = { "reviews", "reviews.mesh.test", "web" };
    assert_names(&s, XDS_RDS, want, 3);
    for (size_t i = 0; i < 2; i++) {
        RouteConfig *rc = (RouteConfig *)decode(&s, XDS_RDS, hosts[i],
                                                &envoy__config__route__v3__route_configuration__descriptor);
        cr_assert_eq(rc->virtual_hosts[0]->n_domains, 1);
        cr_assert_str_eq(rc->virtual_hosts[0]->domains[0], hosts[i]);
        cr_assert_eq(rc->virtual_hosts[0]->n_routes, 2);
        envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    }
    xds_snapshot_free(&s);
}

Test(xds_proxyless_rds, header_prefix_and_present_in_the_form_grpc_core_reads)
{
    xds_fixture f;
    xds_fixture_init(&f);
    mesh_header_matcher hdrs[3] = {
        { .name = "x-canary", .kind = MESH_HDR_PREFIX, .value = "be" },
        { .name = "x-debug", .kind = MESH_HDR_PRESENT },
        { .name = "x-exact", .kind = MESH_HDR_EXACT, .value = "" },
    };
    f.rules[0].headers = hdrs;
    f.rules[0].n_headers = 3;
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    RouteConfig *rc = (RouteConfig *)decode(&s, XDS_RDS, "reviews",
                                            &envoy__config__route__v3__route_configuration__descriptor);
    const Envoy__Config__Route__V3__RouteMatch *m = rc->virtual_hosts[0]->routes[0]->match;
    cr_assert_eq(m->n_headers, 3);
    cr_assert_eq(m->headers[0]->header_match_specifier_case,
                 ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH);
    cr_assert_str_eq(m->headers[0]->prefix_match, "be");
    cr_assert_eq(m->headers[1]->header_match_specifier_case,
                 ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH);
    cr_assert(m->headers[1]->present_match);
    cr_assert_eq(m->headers[2]->header_match_specifier_case,
                 ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH,
                 "an empty exact value is still an exact match (the oneof case says so)");
    cr_assert_str_eq(m->headers[2]->exact_match, "");
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    xds_snapshot_free(&s);
}

Test(xds_proxyless_rds, weights_not_summing_to_100_carry_their_total)
{
    xds_fixture f;
    xds_fixture_init(&f);
    f.rules[0].destinations[0].weight = 1;
    f.rules[0].destinations[1].weight = 3;
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    RouteConfig *rc = (RouteConfig *)decode(&s, XDS_RDS, "reviews",
                                            &envoy__config__route__v3__route_configuration__descriptor);
    const Envoy__Config__Route__V3__WeightedCluster *wc =
        rc->virtual_hosts[0]->routes[0]->route->weighted_clusters;
    cr_assert_not_null(wc);
    cr_assert_not_null(wc->total_weight);
    cr_assert_eq(wc->total_weight->value, 4);
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    xds_snapshot_free(&s);
}

Test(xds_proxyless_rds, rules_no_grpc_path_can_match_are_dropped)
{
    /* A gRPC path is /<service>/<method>: C core drops the others and NACKs a table
     * left without routes, so meshd drops them first and sends no table then. */
    static const struct { const char *prefix, *path; bool kept; } cases[] = {
        { "/", NULL, true },           { "", NULL, true },
        { "/pkg.Svc/", NULL, true },   { "/pkg.Svc/Get", NULL, true },
        { "/a/b/c", NULL, false },     { "//", NULL, false },
        { NULL, "/pkg.Svc/Get", true }, { NULL, "/pkg.Svc", false },
        { NULL, "/pkg.Svc/", false },  { NULL, "//Get", false },
        { NULL, "/a/b/c", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        xds_fixture f;
        xds_fixture_init(&f);
        f.rules[0].prefix = (char *)cases[i].prefix;
        f.rules[0].path = (char *)cases[i].path;
        f.routes[0].n_rules = 1;
        xds_snapshot s;
        compile_ok(&f.cfg, FX_WEB_ID, &s);
        const char *what = cases[i].prefix ? cases[i].prefix : cases[i].path;
        const xds_resource *rds = xds_snapshot_find(&s, XDS_RDS, "reviews");
        const xds_resource *lds = xds_snapshot_find(&s, XDS_LDS, "reviews");
        if (cases[i].kept) {
            cr_assert_not_null(rds, "%s: a gRPC path can match, the table must be sent", what);
            cr_assert_not_null(lds, "%s: and its listener", what);
        } else {
            cr_assert_null(rds, "%s: no gRPC path matches: no table C core would NACK", what);
            cr_assert_null(lds, "%s: and no listener pointing at it", what);
        }
        cr_assert_not_null(xds_snapshot_find(&s, XDS_RDS, "web"), "%s: other hosts stay", what);
        xds_snapshot_free(&s);
    }
    /* The dropped rule goes, the rest of the table stays. */
    xds_fixture f;
    xds_fixture_init(&f);
    f.rules[0].prefix = "/a/b/c";
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    RouteConfig *rc = (RouteConfig *)decode(&s, XDS_RDS, "reviews",
                                            &envoy__config__route__v3__route_configuration__descriptor);
    cr_assert_eq(rc->virtual_hosts[0]->n_routes, 1);
    cr_assert_str_eq(rc->virtual_hosts[0]->routes[0]->match->prefix, "/");
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    xds_snapshot_free(&s);
}

/* ---- CDS / EDS ------------------------------------------------------------- */

Test(xds_proxyless_cds, plaintext_eds_round_robin)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    Cluster *cl = (Cluster *)decode(&s, XDS_CDS, "outbound|reviews",
                                    &envoy__config__cluster__v3__cluster__descriptor);
    cr_assert_eq(cl->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
    assert_ads(cl->eds_cluster_config->eds_config);
    cr_assert_str_eq(cl->eds_cluster_config->service_name, "outbound|reviews");
    cr_assert_eq(cl->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN,
                 "least_request would be NACKed by gRPC clients");
    cr_assert_null(cl->transport_socket, "the client dials the app in plaintext");
    cr_assert_eq(duration_ms(cl->connect_timeout), 250);
    envoy__config__cluster__v3__cluster__free_unpacked(cl, NULL);
    xds_snapshot_free(&s);
}

Test(xds_proxyless_eds, endpoints_only_for_services_the_identity_may_call)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot s;
    char eps[4][64];
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    cr_assert_eq(endpoints_of(&s, "outbound|reviews", eps, 4), 1, "web may call reviews");
    cr_assert_str_eq(eps[0], "127.0.0.1:8082", "the app address, not the sidecar's inbound");
    cr_assert_eq(endpoints_of(&s, "outbound|web", eps, 4), 0, "nobody may call web");
    xds_snapshot_free(&s);

    /* Allow the stranger on web: it sees web's app, and still not reviews. */
    char *web_allow[] = { OTHER_ID };
    mesh_authorization authz[3] = { f.authz[0], f.authz[1],
                                    { .service = "web", .allow = web_allow, .n_allow = 1 } };
    f.cfg.authz = authz;
    f.cfg.n_authz = 3;
    compile_ok(&f.cfg, OTHER_ID, &s);
    cr_assert_eq(endpoints_of(&s, "outbound|web", eps, 4), 1);
    cr_assert_str_eq(eps[0], "127.0.0.1:8081");
    cr_assert_eq(endpoints_of(&s, "outbound|reviews", eps, 4), 0);
    xds_snapshot_free(&s);
}

Test(xds_proxyless_eds, ip_literals_only_sorted_and_unique)
{
    xds_fixture f;
    xds_fixture_init(&f);
    /* Four reviews replicas: a DNS name (left out: gRPC NACKs it), IPv6, an IPv4
     * app sharing reviews-1's address (merged), and one more IPv4. */
    mesh_workload wl[6] = { f.workloads[0], f.workloads[1], f.workloads[2] };
    wl[3] = (mesh_workload){ .name = "reviews-2", .spiffe_id = FX_REVIEWS_ID, .service = "reviews",
                             .inbound = "127.0.0.1:15012", .app = "reviews-2.mesh.test:8082" };
    wl[4] = (mesh_workload){ .name = "reviews-3", .spiffe_id = FX_REVIEWS_ID, .service = "reviews",
                             .inbound = "127.0.0.1:15013", .app = "[::1]:8083" };
    wl[5] = (mesh_workload){ .name = "reviews-0", .spiffe_id = FX_REVIEWS_ID, .service = "reviews",
                             .inbound = "127.0.0.1:15014", .app = "127.0.0.1:8082" };
    f.cfg.workloads = wl;
    f.cfg.n_workloads = 6;
    xds_snapshot s;
    char eps[8][64];
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    size_t n = endpoints_of(&s, "outbound|reviews", eps, 8);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(eps[0], "127.0.0.1:8082");
    cr_assert_str_eq(eps[1], "::1:8083");

    /* Only DNS names: the cluster stays, with no endpoints. */
    wl[1].app = "reviews-1.mesh.test:8082";
    wl[4].app = "reviews-3.mesh.test:8083";
    wl[5].app = "localhost:8082";
    xds_snapshot_free(&s);
    compile_ok(&f.cfg, FX_WEB_ID, &s);
    cr_assert_eq(endpoints_of(&s, "outbound|reviews", eps, 8), 0);
    must_find(&s, XDS_CDS, "outbound|reviews");
    xds_snapshot_free(&s);
}

/* ---- versions and determinism --------------------------------------------- */

static const char *type_version(const xds_snapshot *s, enum xds_type t)
{
    return s->types[t].version;
}

Test(xds_proxyless_versions, a_route_edit_moves_only_that_hosts_table)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot a, b;
    compile_ok(&f.cfg, FX_WEB_ID, &a);
    f.dests0[0].weight = 0;
    f.dests0[1].weight = 100;
    compile_ok(&f.cfg, FX_WEB_ID, &b);
    cr_assert_str_neq(must_find(&a, XDS_RDS, "reviews")->version,
                      must_find(&b, XDS_RDS, "reviews")->version);
    cr_assert_str_eq(must_find(&a, XDS_RDS, "web")->version, must_find(&b, XDS_RDS, "web")->version,
                     "clients of web must not be pushed for a reviews route edit");
    cr_assert_str_eq(type_version(&a, XDS_LDS), type_version(&b, XDS_LDS));
    cr_assert_str_eq(type_version(&a, XDS_CDS), type_version(&b, XDS_CDS));
    cr_assert_str_eq(type_version(&a, XDS_EDS), type_version(&b, XDS_EDS));
    xds_snapshot_free(&a);
    xds_snapshot_free(&b);
}

Test(xds_proxyless_versions, identities_share_everything_but_their_endpoints)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot a, b;
    compile_ok(&f.cfg, FX_WEB_ID, &a);
    compile_ok(&f.cfg, OTHER_ID, &b);
    cr_assert_str_eq(type_version(&a, XDS_LDS), type_version(&b, XDS_LDS));
    cr_assert_str_eq(type_version(&a, XDS_RDS), type_version(&b, XDS_RDS));
    cr_assert_str_eq(type_version(&a, XDS_CDS), type_version(&b, XDS_CDS));
    cr_assert_str_neq(must_find(&a, XDS_EDS, "outbound|reviews")->version,
                      must_find(&b, XDS_EDS, "outbound|reviews")->version);
    cr_assert_str_eq(must_find(&a, XDS_EDS, "outbound|web")->version,
                     must_find(&b, XDS_EDS, "outbound|web")->version);
    xds_snapshot_free(&a);
    xds_snapshot_free(&b);
}

Test(xds_proxyless_versions, store_order_does_not_matter)
{
    xds_fixture f;
    xds_fixture_init(&f);
    xds_snapshot a, b;
    compile_ok(&f.cfg, FX_WEB_ID, &a);
    mesh_service svc[3] = { f.services[2], f.services[1], f.services[0] };
    mesh_workload wl[3] = { f.workloads[2], f.workloads[0], f.workloads[1] };
    mesh_authorization az[2] = { f.authz[1], f.authz[0] };
    f.cfg.services = svc;
    f.cfg.workloads = wl;
    f.cfg.authz = az;
    compile_ok(&f.cfg, FX_WEB_ID, &b);
    for (int t = 0; t < XDS_TYPE_COUNT; t++) {
        cr_assert_str_eq(a.types[t].version, b.types[t].version);
        cr_assert_eq(a.types[t].n, b.types[t].n);
        for (size_t i = 0; i < a.types[t].n; i++) {
            cr_assert_eq(a.types[t].items[i].len, b.types[t].items[i].len);
            cr_assert_eq(memcmp(a.types[t].items[i].data, b.types[t].items[i].data,
                                a.types[t].items[i].len), 0);
        }
    }
    xds_snapshot_free(&a);
    xds_snapshot_free(&b);
}

/* ---- errors ------------------------------------------------------------------ */

Test(xds_proxyless_errors, bad_arguments)
{
    xds_fixture f;
    xds_fixture_init(&f);
    mesh_err err = { 0 };
    cr_assert_eq(xds_compile_proxyless(&f.cfg, FX_WEB_ID, NULL, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "no output snapshot"));
    compile_fails(NULL, FX_WEB_ID, MESH_EINVAL, "missing config or SPIFFE ID");
    compile_fails(&f.cfg, NULL, MESH_EINVAL, "missing config or SPIFFE ID");
    compile_fails(&f.cfg, "", MESH_EINVAL, "missing config or SPIFFE ID");
    char long_id[600];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    compile_fails(&f.cfg, long_id, MESH_EINVAL, "longer than");
    /* A NULL mesh_err is allowed. */
    xds_snapshot s;
    cr_assert_eq(xds_compile_proxyless(NULL, FX_WEB_ID, &s, NULL), MESH_EINVAL);
}

Test(xds_proxyless_errors, route_to_undefined_service)
{
    xds_fixture f;
    xds_fixture_init(&f);
    f.dests0[1].service = "ratings";
    compile_fails(&f.cfg, FX_WEB_ID, MESH_EINVAL, "route reviews-route (mesh.yaml:30) rules[0]");
    compile_fails(&f.cfg, FX_WEB_ID, MESH_EINVAL, "\"ratings\"");
}

Test(xds_proxyless_errors, host_claimed_by_two_routes)
{
    xds_fixture f;
    xds_fixture_init(&f);
    char *hosts2[] = { "REVIEWS" };
    mesh_route routes[2] = { f.routes[0], { .name = "shadow", .hosts = hosts2, .n_hosts = 1,
                                            .rules = &f.rules[1], .n_rules = 1,
                                            .source = "mesh.yaml:60" } };
    f.cfg.routes = routes;
    f.cfg.n_routes = 2;
    compile_fails(&f.cfg, FX_WEB_ID, MESH_EINVAL, "is claimed by both");
    compile_fails(&f.cfg, FX_WEB_ID, MESH_EINVAL, "route shadow (mesh.yaml:60)");
    compile_fails(&f.cfg, FX_WEB_ID, MESH_EINVAL, "route reviews-route (mesh.yaml:30)");
}

Test(xds_proxyless_errors, bad_app_address_of_a_callable_service)
{
    xds_fixture f;
    xds_fixture_init(&f);
    f.workloads[1].app = "127.0.0.1:70000";
    compile_fails(&f.cfg, FX_WEB_ID, MESH_EINVAL, "workload reviews-1 (mesh.yaml:20) app");
    /* An identity that may not call reviews never looks at its addresses. */
    xds_snapshot s;
    compile_ok(&f.cfg, OTHER_ID, &s);
    xds_snapshot_free(&s);
}
