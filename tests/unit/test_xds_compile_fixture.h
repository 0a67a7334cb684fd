/* tests/unit/test_xds_compile_fixture.h — the mesh config the xDS compiler tests
 * (and tests/conformance/xds_dump.c) compile: two HTTP services and one TCP
 * service, one workload each, a weighted route and authorization.
 *
 *   web      http  web-1      inbound 127.0.0.1:15001 app :8081, HTTP egress :15080,
 *                             tcp_outbound db on :15432; nobody may call web
 *   reviews  http  reviews-1  inbound 127.0.0.1:15002 app :8082, least_request, 250ms;
 *                             web may call it
 *   db       tcp   db-1       inbound 127.0.0.1:15003 app :5432; web may call it
 *   route reviews-route (host "reviews"): /v2 + x-canary: 1 -> reviews 90 / web 10,
 *                             2s, 3 retries; everything else -> reviews
 * Built from literals (no parser), held by value so a test can edit a copy. */
#ifndef MESH_TEST_XDS_COMPILE_FIXTURE_H
#define MESH_TEST_XDS_COMPILE_FIXTURE_H

#include <string.h>

#include "config/mesh_config.h"

#define FX_WEB_ID     "spiffe://mesh.test/ns/default/sa/web"
#define FX_REVIEWS_ID "spiffe://mesh.test/ns/default/sa/reviews"
#define FX_DB_ID      "spiffe://mesh.test/ns/default/sa/db"

typedef struct xds_fixture {
    mesh_service services[3];
    mesh_workload workloads[3];
    mesh_tcp_outbound web_tcp[1];
    mesh_header_matcher hdrs[1];
    mesh_destination dests0[2], dests1[1];
    mesh_route_rule rules[2];
    char *route_hosts[1];
    mesh_route routes[1];
    char *reviews_allow[2];
    char *db_allow[1];
    mesh_authorization authz[2];
    mesh_config cfg;
} xds_fixture;

/* Re-points cfg's arrays at f's own members (call after copying a fixture). */
static inline void xds_fixture_link(xds_fixture *f)
{
    f->workloads[0].tcp_outbound = f->web_tcp;
    f->rules[0].headers = f->hdrs;
    f->rules[0].destinations = f->dests0;
    f->rules[1].destinations = f->dests1;
    f->routes[0].hosts = f->route_hosts;
    f->routes[0].rules = f->rules;
    f->authz[0].allow = f->reviews_allow;
    f->authz[1].allow = f->db_allow;
    f->cfg.services = f->services;
    f->cfg.workloads = f->workloads;
    f->cfg.routes = f->routes;
    f->cfg.authz = f->authz;
}

static inline void xds_fixture_init(xds_fixture *f)
{
    memset(f, 0, sizeof *f);
    f->services[0] = (mesh_service){ .name = "web", .protocol = MESH_PROTO_HTTP, .port = 8081,
                                     .lb = MESH_LB_ROUND_ROBIN, .connect_timeout_ms = 1000,
                                     .source = "mesh.yaml:2" };
    f->services[1] = (mesh_service){ .name = "reviews", .protocol = MESH_PROTO_HTTP, .port = 8082,
                                     .lb = MESH_LB_LEAST_REQUEST, .connect_timeout_ms = 250,
                                     .source = "mesh.yaml:5" };
    f->services[2] = (mesh_service){ .name = "db", .protocol = MESH_PROTO_TCP, .port = 5432,
                                     .lb = MESH_LB_ROUND_ROBIN, .connect_timeout_ms = 0,
                                     .source = "mesh.yaml:9" };
    f->web_tcp[0] = (mesh_tcp_outbound){ .service = "db", .listen = "127.0.0.1:15432" };
    f->workloads[0] = (mesh_workload){ .name = "web-1", .spiffe_id = FX_WEB_ID, .service = "web",
                                       .inbound = "127.0.0.1:15001", .app = "127.0.0.1:8081",
                                       .outbound = "127.0.0.1:15080", .n_tcp_outbound = 1,
                                       .source = "mesh.yaml:13" };
    f->workloads[1] = (mesh_workload){ .name = "reviews-1", .spiffe_id = FX_REVIEWS_ID,
                                       .service = "reviews", .inbound = "127.0.0.1:15002",
                                       .app = "127.0.0.1:8082", .source = "mesh.yaml:20" };
    f->workloads[2] = (mesh_workload){ .name = "db-1", .spiffe_id = FX_DB_ID, .service = "db",
                                       .inbound = "127.0.0.1:15003", .app = "127.0.0.1:5432",
                                       .source = "mesh.yaml:25" };
    f->hdrs[0] = (mesh_header_matcher){ .name = "x-canary", .kind = MESH_HDR_EXACT, .value = "1" };
    f->dests0[0] = (mesh_destination){ .service = "reviews", .weight = 90 };
    f->dests0[1] = (mesh_destination){ .service = "web", .weight = 10 };
    f->dests1[0] = (mesh_destination){ .service = "reviews", .weight = 100 };
    f->rules[0] = (mesh_route_rule){ .prefix = "/v2", .n_headers = 1, .n_destinations = 2,
                                     .timeout_ms = 2000, .retries = 3 };
    f->rules[1] = (mesh_route_rule){ .prefix = "/", .n_destinations = 1 };
    f->route_hosts[0] = "reviews";
    f->routes[0] = (mesh_route){ .name = "reviews-route", .n_hosts = 1, .n_rules = 2,
                                 .source = "mesh.yaml:30" };
    f->reviews_allow[0] = FX_WEB_ID;
    f->db_allow[0] = FX_WEB_ID;
    f->authz[0] = (mesh_authorization){ .service = "reviews", .n_allow = 1, .source = "mesh.yaml:40" };
    f->authz[1] = (mesh_authorization){ .service = "db", .n_allow = 1, .source = "mesh.yaml:43" };
    f->cfg.n_services = 3;
    f->cfg.n_workloads = 3;
    f->cfg.n_routes = 1;
    f->cfg.n_authz = 2;
    xds_fixture_link(f);
}

#endif
