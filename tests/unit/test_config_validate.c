/* tests/unit/test_config_validate.c — whole-config validation: references,
 * uniqueness, listener clashes, trust domain, configs built in code. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/mesh_config.h"

/* A small valid mesh; tests append or tweak lines. Line numbers in comments. */
#define BASE                                                                                       \
    "services:\n"                                                        /* 1 */                   \
    "  - {name: web, protocol: http, port: 8080}\n"                      /* 2 */                   \
    "  - {name: api, protocol: http, port: 8081}\n"                      /* 3 */                   \
    "  - {name: db, protocol: tcp, port: 5432}\n"                        /* 4 */                   \
    "workloads:\n"                                                       /* 5 */                   \
    "  - name: web-1\n"                                                  /* 6 */                   \
    "    spiffe_id: spiffe://example.org/ns/default/sa/web\n"            /* 7 */                   \
    "    service: web\n"                                                 /* 8 */                   \
    "    inbound: 127.0.0.1:15001\n"                                     /* 9 */                   \
    "    app: 127.0.0.1:18001\n"                                         /* 10 */                  \
    "    outbound: 127.0.0.1:15101\n"                                    /* 11 */                  \
    "  - name: api-1\n"                                                  /* 12 */                  \
    "    spiffe_id: spiffe://example.org/ns/default/sa/api\n"            /* 13 */                  \
    "    service: api\n"                                                 /* 14 */                  \
    "    inbound: 127.0.0.1:15002\n"                                     /* 15 */                  \
    "    app: 127.0.0.1:18002\n"                                         /* 16 */                  \
    "    tcp_outbound: [{service: db, listen: 127.0.0.1:15202}]\n"       /* 17 */

static void parse_ok(const char *yaml, mesh_config *cfg)
{
    mesh_err err;
    mesh_err_clear(&err);
    int rc = mesh_config_parse_buffer("mesh.yaml", yaml, strlen(yaml), cfg, &err);
    cr_assert_eq(rc, MESH_OK, "parse: %s", err.msg);
}

static void expect_invalid(const char *yaml, const char *td, const char *want)
{
    mesh_config cfg;
    parse_ok(yaml, &cfg);
    mesh_err err;
    mesh_err_clear(&err);
    int rc = mesh_config_validate(&cfg, td, &err);
    cr_assert_eq(rc, MESH_EINVAL, "expected EINVAL, got %d (%s)", rc, err.msg);
    cr_assert_not_null(strstr(err.msg, want), "expected \"%s\" in \"%s\"", want, err.msg);
    mesh_config_free(&cfg);
}

Test(config_validate, base_is_valid)
{
    mesh_config cfg;
    parse_ok(BASE, &cfg);
    mesh_err err;
    cr_assert_eq(mesh_config_validate(&cfg, "example.org", &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(mesh_config_validate(&cfg, NULL, &err), MESH_OK, "%s", err.msg);
    mesh_config_free(&cfg);
}

Test(config_validate, references_must_resolve)
{
    expect_invalid(BASE "  - name: x-1\n"                                         /* 18 */
                        "    spiffe_id: spiffe://example.org/ns/default/sa/x\n"
                        "    service: nope\n"
                        "    inbound: 127.0.0.1:15003\n"
                        "    app: 127.0.0.1:18003\n",
                   NULL, "mesh.yaml:18: workloads[2].service: unknown service \"nope\"");
    expect_invalid(BASE "routes:\n"                                               /* 18 */
                        "  - name: web\n"                                         /* 19 */
                        "    rules:\n"
                        "      - match: {prefix: /}\n"
                        "        destinations: [{service: web, weight: 50}, {service: ghost}]\n",
                   NULL,
                   "mesh.yaml:22: routes[0].rules[0].destinations[1].service: unknown service "
                   "\"ghost\"");
    expect_invalid(BASE "authorization:\n"                                        /* 18 */
                        "  - service: ghost\n"                                    /* 19 */
                        "    allow: []\n",
                   NULL, "mesh.yaml:19: authorization[0].service: unknown service \"ghost\"");
    expect_invalid(BASE "  - name: x-1\n"
                        "    spiffe_id: spiffe://example.org/ns/default/sa/x\n"
                        "    service: web\n"
                        "    inbound: 127.0.0.1:15003\n"
                        "    app: 127.0.0.1:18003\n"
                        "    tcp_outbound: [{service: nope, listen: 127.0.0.1:15203}]\n",
                   NULL, "mesh.yaml:18: workloads[2].tcp_outbound[0].service: unknown service");
}

Test(config_validate, protocols_must_fit)
{
    expect_invalid(BASE "  - name: x-1\n"
                        "    spiffe_id: spiffe://example.org/ns/default/sa/x\n"
                        "    service: web\n"
                        "    inbound: 127.0.0.1:15003\n"
                        "    app: 127.0.0.1:18003\n"
                        "    tcp_outbound: [{service: api, listen: 127.0.0.1:15203}]\n",
                   NULL,
                   "mesh.yaml:18: workloads[2].tcp_outbound[0].service: service \"api\" is http; "
                   "tcp_outbound only proxies tcp services");
    expect_invalid(BASE "routes:\n"
                        "  - name: db\n"
                        "    rules:\n"
                        "      - match: {prefix: /}\n"
                        "        destinations: [{service: db}]\n",
                   NULL,
                   "mesh.yaml:22: routes[0].rules[0].destinations[0].service: service \"db\" is "
                   "tcp; routes only send to http services");
}

/* http2 and grpc are HTTP services to routes, but one route must not mix HTTP versions
 * (the sidecar does not translate between HTTP/1.1 and HTTP/2), and the HTTP/1.1 health
 * probe cannot check them. */
Test(config_validate, http2_and_grpc_services)
{
    const char *h2 = "services:\n"
                     "  - {name: web, protocol: http, port: 8080}\n"
                     "  - {name: api, protocol: grpc, port: 8081}\n"
                     "  - {name: api2, protocol: http2, port: 8082}\n"
                     "  - {name: db, protocol: tcp, port: 5432}\n";
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%sroutes:\n"
             "  - name: api\n"
             "    rules:\n"
             "      - match: {prefix: /pkg.Svc/}\n"
             "        destinations: [{service: api, weight: 50}, {service: api2, weight: 50}]\n",
             h2);
    mesh_config cfg;
    parse_ok(yaml, &cfg);
    mesh_err err;
    cr_assert_eq(mesh_config_validate(&cfg, NULL, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(cfg.services[1].protocol, MESH_PROTO_GRPC);
    cr_assert_eq(cfg.services[2].protocol, MESH_PROTO_HTTP2);
    mesh_config_free(&cfg);

    snprintf(yaml, sizeof yaml, "%sroutes:\n"
             "  - name: api\n"
             "    rules:\n"
             "      - match: {prefix: /v1}\n"
             "        destinations: [{service: api}]\n"
             "      - match: {prefix: /}\n"
             "        destinations: [{service: web}]\n",
             h2);
    expect_invalid(yaml, NULL,
                   "routes[0].rules[1].destinations[0].service: service \"web\" is http but "
                   "\"api\" is grpc; one route's destinations must all be http or all http2/grpc");
    snprintf(yaml, sizeof yaml, "%sworkloads:\n"
             "  - name: w-1\n"
             "    spiffe_id: spiffe://example.org/ns/default/sa/w\n"
             "    service: web\n"
             "    inbound: 127.0.0.1:15001\n"
             "    app: 127.0.0.1:18001\n"
             "    tcp_outbound: [{service: api, listen: 127.0.0.1:15203}]\n",
             h2);
    expect_invalid(yaml, NULL, "service \"api\" is grpc; tcp_outbound only proxies tcp services");
}

Test(config_validate, unique_names_per_kind)
{
    expect_invalid("services:\n"
                   "  - {name: web, protocol: http, port: 80}\n"
                   "  - {name: api, protocol: http, port: 81}\n"
                   "  - {name: web, protocol: tcp, port: 82}\n",
                   NULL,
                   "mesh.yaml:4: services[2].name: duplicate service \"web\" (also defined at "
                   "services[0] (mesh.yaml:2))");
    expect_invalid(BASE "  - name: web-1\n"                                       /* 18 */
                        "    spiffe_id: spiffe://example.org/ns/default/sa/web2\n"
                        "    service: web\n"
                        "    inbound: 127.0.0.1:15003\n"
                        "    app: 127.0.0.1:18003\n",
                   NULL, "mesh.yaml:18: workloads[2].name: duplicate workload \"web-1\"");
    expect_invalid(BASE "routes:\n"
                        "  - {name: r, hosts: [a], rules: [{match: {prefix: /}, destinations: "
                        "[{service: web}]}]}\n"
                        "  - {name: r, hosts: [b], rules: [{match: {prefix: /}, destinations: "
                        "[{service: web}]}]}\n",
                   NULL, "mesh.yaml:20: routes[1].name: duplicate route \"r\"");
    expect_invalid(BASE "authorization:\n"
                        "  - {service: web, allow: []}\n"
                        "  - {service: web, allow: [spiffe://example.org/ns/default/sa/api]}\n",
                   NULL,
                   "mesh.yaml:20: authorization[1].service: service \"web\" already has an "
                   "authorization entry at authorization[0] (mesh.yaml:19)");
}

/* The identity is the service account: replicas share it (issue 13). */
Test(config_validate, replicas_share_an_identity)
{
    mesh_config cfg;
    mesh_err err = {0};
    const char *yaml = BASE "  - name: web-2\n"
                            "    spiffe_id: spiffe://example.org/ns/default/sa/web\n"
                            "    service: web\n"
                            "    inbound: 127.0.0.1:15003\n"
                            "    app: 127.0.0.1:18003\n";
    cr_assert_eq(mesh_config_parse_buffer("mesh.yaml", yaml, strlen(yaml), &cfg, &err), MESH_OK,
                 "%s", err.msg);
    cr_assert_eq(mesh_config_validate(&cfg, "example.org", &err), MESH_OK, "%s", err.msg);
    mesh_config_free(&cfg);
    /* ... but each instance has its own name */
    expect_invalid(BASE "  - name: web-1\n"
                        "    spiffe_id: spiffe://example.org/ns/default/sa/web\n"
                        "    service: web\n"
                        "    inbound: 127.0.0.1:15003\n"
                        "    app: 127.0.0.1:18003\n",
                   NULL, "workloads[2].name: duplicate workload \"web-1\"");
}

Test(config_validate, route_hosts_unique_across_routes)
{
    expect_invalid(BASE "routes:\n"
                        "  - {name: a, hosts: [web, www], rules: [{match: {prefix: /}, "
                        "destinations: [{service: web}]}]}\n"
                        "  - {name: b, hosts: [api, WWW], rules: [{match: {prefix: /}, "
                        "destinations: [{service: api}]}]}\n",
                   NULL,
                   "mesh.yaml:20: routes[1].hosts[1]: host \"WWW\" is already served by routes[0] "
                   "(mesh.yaml:19)");
}

Test(config_validate, listener_addresses_not_shared)
{
    /* another workload's inbound reused as an outbound */
    expect_invalid(BASE "  - name: x-1\n"                                         /* 18 */
                        "    spiffe_id: spiffe://example.org/ns/default/sa/x\n"
                        "    service: web\n"
                        "    inbound: 127.0.0.1:15003\n"
                        "    app: 127.0.0.1:18003\n"
                        "    outbound: 127.0.0.1:15002\n",
                   NULL,
                   "mesh.yaml:18: workloads[2].outbound: address 127.0.0.1:15002 is already a "
                   "listener of workloads[1].inbound (mesh.yaml:12)");
    /* tcp_outbound clash, written differently but the same socket ([::1] normalizes) */
    expect_invalid(BASE "  - name: x-1\n"
                        "    spiffe_id: spiffe://example.org/ns/default/sa/x\n"
                        "    service: web\n"
                        "    inbound: \"[::1]:15003\"\n"
                        "    app: 127.0.0.1:18003\n"
                        "  - name: y-1\n"                                         /* 23 */
                        "    spiffe_id: spiffe://example.org/ns/default/sa/y\n"
                        "    service: web\n"
                        "    inbound: 127.0.0.1:15004\n"
                        "    app: 127.0.0.1:18004\n"
                        "    tcp_outbound: [{service: db, listen: \"[0:0::1]:15003\"}]\n",
                   NULL,
                   "mesh.yaml:23: workloads[3].tcp_outbound[0].listen: address [::1]:15003 is "
                   "already a listener of workloads[2].inbound");
    /* an app address that is someone else's listener */
    expect_invalid(BASE "  - name: x-1\n"
                        "    spiffe_id: spiffe://example.org/ns/default/sa/x\n"
                        "    service: web\n"
                        "    inbound: 127.0.0.1:15003\n"
                        "    app: 127.0.0.1:15101\n",
                   NULL,
                   "mesh.yaml:18: workloads[2].app: address 127.0.0.1:15101 is a sidecar listener "
                   "of workloads[0].outbound (mesh.yaml:6)");
}

Test(config_validate, trust_domain)
{
    expect_invalid(BASE, "other.org",
                   "mesh.yaml:6: workloads[0].spiffe_id: "
                   "\"spiffe://example.org/ns/default/sa/web\" "
                   "is not in the mesh's trust domain \"other.org\"");
    expect_invalid("services:\n"
                   "  - {name: web, protocol: http, port: 80}\n"
                   "authorization:\n"
                   "  - service: web\n"
                   "    allow: [spiffe://evil.org/ns/default/sa/x]\n",
                   "example.org",
                   "mesh.yaml:4: authorization[0].allow[0]: \"spiffe://evil.org/ns/default/sa/x\" "
                   "is not in the mesh's trust domain \"example.org\"");
    expect_invalid(BASE, "Not A Domain", "trust domain \"Not A Domain\" is not valid");
}

/* Configs built in code get the same checks as parsed ones. */
Test(config_validate, built_in_code)
{
    mesh_service svc = {.name = "web", .protocol = MESH_PROTO_HTTP, .port = 80,
                        .lb = MESH_LB_ROUND_ROBIN, .connect_timeout_ms = 1000};
    mesh_destination dst = {.service = "web", .weight = 140};
    mesh_route_rule rule = {.prefix = "/", .destinations = &dst, .n_destinations = 1};
    char *hosts[] = {"web"};
    mesh_route route = {.name = "web", .hosts = hosts, .n_hosts = 1, .rules = &rule, .n_rules = 1,
                        .source = "gen.yaml:7"};
    mesh_config cfg = {.services = &svc, .n_services = 1, .routes = &route, .n_routes = 1};
    mesh_err err;
    int rc = mesh_config_validate(&cfg, NULL, &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_str_eq(err.msg,
                     "gen.yaml:7: routes[0].rules[0].destinations[0].weight: must be 0..100, "
                     "got 140");
    dst.weight = 100;
    cr_assert_eq(mesh_config_validate(&cfg, NULL, &err), MESH_OK, "%s", err.msg);
    svc.protocol = (enum mesh_protocol)7;
    rc = mesh_config_validate(&cfg, NULL, &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_str_eq(err.msg, "<config>: services[0].protocol: must be http, http2, grpc or tcp");
    svc.protocol = MESH_PROTO_HTTP;
    svc.connect_timeout_ms = 0;
    rc = mesh_config_validate(&cfg, NULL, &err);
    cr_assert_not_null(strstr(err.msg, "services[0].connect_timeout: must be greater than 0"),
                       "%s", err.msg);
    svc.connect_timeout_ms = 1000;
    rule.path = "/x";
    rc = mesh_config_validate(&cfg, NULL, &err);
    cr_assert_str_eq(err.msg,
                     "gen.yaml:7: routes[0].rules[0].match: set either prefix or path, not both");
    rule.path = NULL;
    rule.retries = 11;
    rc = mesh_config_validate(&cfg, NULL, &err);
    cr_assert_str_eq(err.msg, "gen.yaml:7: routes[0].rules[0].retries: must be 0..10, got 11");
    cr_assert_eq(mesh_config_validate(NULL, NULL, &err), MESH_EINVAL);
}

/* Thousands of workloads validate quickly (sorted indexes, not pairwise scans). */
Test(config_validate, many_workloads_fast)
{
    size_t n = 5000;
    mesh_config cfg = {0};
    mesh_service svc = {.name = "web", .protocol = MESH_PROTO_HTTP, .port = 80,
                        .connect_timeout_ms = 1000};
    cfg.services = &svc;
    cfg.n_services = 1;
    cfg.workloads = calloc(n, sizeof *cfg.workloads);
    cr_assert_not_null(cfg.workloads);
    cfg.n_workloads = n;
    for (size_t i = 0; i < n; i++) {
        mesh_workload *w = &cfg.workloads[i];
        cr_assert(asprintf(&w->name, "web-%zu", i) > 0);
        cr_assert(asprintf(&w->spiffe_id, "spiffe://example.org/ns/default/sa/web-%zu", i) > 0);
        w->service = strdup("web");
        cr_assert(asprintf(&w->inbound, "10.%zu.%zu.1:15001", i / 250, i % 250) > 0);
        cr_assert(asprintf(&w->app, "10.%zu.%zu.1:18001", i / 250, i % 250) > 0);
    }
    mesh_err err;
    cr_assert_eq(mesh_config_validate(&cfg, "example.org", &err), MESH_OK, "%s", err.msg);
    /* the last one clashes with the first */
    free(cfg.workloads[n - 1].inbound);
    cfg.workloads[n - 1].inbound = strdup("10.0.0.1:15001");
    cr_assert_eq(mesh_config_validate(&cfg, "example.org", &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "workloads[4999].inbound: address 10.0.0.1:15001 is "
                                       "already a listener of workloads[0].inbound"),
                       "%s", err.msg);
    cfg.services = NULL;
    cfg.n_services = 0;
    mesh_config_free(&cfg);
}

/* meshctl validate: every error, not only the first, in file order per
 * phase; the first one is also in err (what apply reports). */
Test(config_validate, all_errors_collected)
{
    mesh_config cfg;
    memset(&cfg, 0, sizeof cfg);
    parse_ok(BASE "  - name: api-2\n"                                   /* 18 */
                  "    spiffe_id: spiffe://other.org/ns/default/sa/api\n" /* 19 */
                  "    service: apii\n"                                 /* 20 */
                  "    inbound: 127.0.0.1:15003\n"
                  "    app: 127.0.0.1:18003\n"
                  "routes:\n"
                  "  - name: r\n"
                  "    hosts: [api]\n"
                  "    rules:\n"
                  "      - match: {prefix: /}\n"
                  "        destinations: [{service: nosuch}]\n"
                  "      - match: {prefix: /x}\n"
                  "        destinations: [{service: db}]\n"
                  "authorization:\n"
                  "  - {service: ghost, allow: []}\n",
             &cfg);
    mesh_config_warnings all = {0};
    mesh_err err = {0};
    cr_assert_eq(mesh_config_validate_all(&cfg, "example.org", &all, &err), MESH_EINVAL);
    cr_assert_eq(all.n, 5, "got %zu", all.n);
    cr_assert(strstr(all.msgs[0], "mesh.yaml:18: workloads[2].spiffe_id") &&
                  strstr(all.msgs[0], "trust domain"), "%s", all.msgs[0]);
    cr_assert(strstr(all.msgs[1], "unknown service \"apii\""), "%s", all.msgs[1]);
    cr_assert(strstr(all.msgs[2], "unknown service \"nosuch\""), "%s", all.msgs[2]);
    cr_assert(strstr(all.msgs[3], "service \"db\" is tcp"), "%s", all.msgs[3]);
    cr_assert(strstr(all.msgs[4], "authorization[0].service: unknown service \"ghost\""), "%s",
              all.msgs[4]);
    cr_assert_str_eq(err.msg, all.msgs[0]);
    /* mesh_config_validate still stops at the first, with the same text */
    mesh_err first = {0};
    cr_assert_eq(mesh_config_validate(&cfg, "example.org", &first), MESH_EINVAL);
    cr_assert_str_eq(first.msg, all.msgs[0]);
    mesh_config_warnings_free(&all);
    /* a valid config collects nothing */
    mesh_config ok;
    memset(&ok, 0, sizeof ok);
    parse_ok(BASE, &ok);
    cr_assert_eq(mesh_config_validate_all(&ok, "example.org", &all, &err), MESH_OK);
    cr_assert_eq(all.n, 0);
    /* a bad trust domain (not the file's fault) is the one error */
    cr_assert_eq(mesh_config_validate_all(&ok, "Bad_TD!", &all, &err), MESH_EINVAL);
    cr_assert_eq(all.n, 1);
    cr_assert(strstr(all.msgs[0], "trust domain"), "%s", all.msgs[0]);
    mesh_config_warnings_free(&all);
    mesh_config_free(&ok);
    mesh_config_free(&cfg);
}

/* Valid but likely mistakes: weights off 100, a route to a service that
 * lets nobody in. One warning per (route, service); none for a service that
 * does not exist (that is an error already). */
Test(config_validate, weight_and_unreachable_warnings)
{
    mesh_config cfg;
    memset(&cfg, 0, sizeof cfg);
    parse_ok(BASE "routes:\n"
                  "  - name: r\n"
                  "    hosts: [api]\n"
                  "    rules:\n"
                  "      - match: {prefix: /}\n"
                  "        destinations: [{service: api, weight: 95}, {service: web, weight: 15}]\n"
                  "      - match: {prefix: /y}\n"
                  "        destinations: [{service: api}]\n"
                  "authorization:\n"
                  "  - {service: web, allow: []}\n",
             &cfg);
    cr_assert_eq(mesh_config_validate(&cfg, "example.org", &(mesh_err){0}), MESH_OK);
    mesh_config_warnings w = {0};
    mesh_err err = {0};
    cr_assert_eq(mesh_config_warn(&cfg, &w, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(w.n, 3, "got %zu", w.n);
    cr_assert(strstr(w.msgs[0], "weights sum to 110, not 100") &&
                  strstr(w.msgs[0], "api 86%, web 14%"), "%s", w.msgs[0]);
    cr_assert(strstr(w.msgs[1], "service \"api\" has no authorization entry"), "%s", w.msgs[1]);
    cr_assert(strstr(w.msgs[2], "service \"web\" allows no caller"), "%s", w.msgs[2]);
    mesh_config_warnings_free(&w);
    mesh_config_free(&cfg);
    /* weights of 100 and an allowed caller: quiet */
    memset(&cfg, 0, sizeof cfg);
    parse_ok(BASE "routes:\n"
                  "  - name: r\n"
                  "    hosts: [api]\n"
                  "    rules:\n"
                  "      - match: {prefix: /}\n"
                  "        destinations: [{service: api, weight: 90}, {service: web, weight: 10}]\n"
                  "authorization:\n"
                  "  - {service: web, allow: [spiffe://example.org/ns/default/sa/api]}\n"
                  "  - {service: api, allow: [spiffe://example.org/ns/default/sa/web]}\n",
             &cfg);
    cr_assert_eq(mesh_config_warn(&cfg, &w, &err), MESH_OK);
    cr_assert_eq(w.n, 0, "%s", w.n ? w.msgs[0] : "");
    mesh_config_free(&cfg);
}
