/* tests/unit/test_config_parse.c — YAML parsing of the mesh config: the shipped
 * example, and every class of per-field error with its exact file:line:field. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "config/mesh_config.h"

static int parse(const char *yaml, mesh_config *cfg, mesh_err *err)
{
    mesh_err_clear(err);
    return mesh_config_parse_buffer("mesh.yaml", yaml, strlen(yaml), cfg, err);
}

/* Asserts the parse fails with EINVAL, the message contains `want`, and the
 * output config is left empty. */
static void expect_error(const char *yaml, const char *want)
{
    mesh_config cfg;
    mesh_err err;
    int rc = parse(yaml, &cfg, &err);
    cr_assert_eq(rc, MESH_EINVAL, "expected EINVAL for <<%s>>, got %d (%s)", yaml, rc, err.msg);
    cr_assert_not_null(strstr(err.msg, want), "expected \"%s\" in \"%s\"", want, err.msg);
    cr_assert_eq(cfg.n_services + cfg.n_workloads + cfg.n_routes + cfg.n_authz, 0);
    cr_assert_null(cfg.services);
    cr_assert_null(cfg.routes);
}

static void expect_ok(const char *yaml, mesh_config *cfg)
{
    mesh_err err;
    int rc = parse(yaml, cfg, &err);
    cr_assert_eq(rc, MESH_OK, "unexpected error: %s", err.msg);
}

/* A valid service/workload/route prefix used by many cases. */
#define SVC_WEB                                                                                    \
    "services:\n"                     /* 1 */                                                      \
    "  - name: web\n"                 /* 2 */                                                      \
    "    protocol: http\n"            /* 3 */                                                      \
    "    port: 8080\n"                /* 4 */

#define WL_HEAD                                                                                    \
    "workloads:\n"                                                /* 5 */                          \
    "  - name: web-1\n"                                           /* 6 */                          \
    "    spiffe_id: spiffe://example.org/ns/default/sa/web\n"     /* 7 */                          \
    "    service: web\n"                                          /* 8 */

Test(config_parse, example_parses_and_validates)
{
    mesh_config cfg;
    mesh_err err;
    mesh_err_clear(&err);
    int rc = mesh_config_parse_file("examples/mesh.yaml", &cfg, &err);
    cr_assert_eq(rc, MESH_OK, "%s", err.msg);
    cr_assert_eq(cfg.n_services, 3);
    cr_assert_eq(cfg.n_workloads, 5);
    cr_assert_eq(cfg.n_routes, 1);
    cr_assert_eq(cfg.n_authz, 2);
    rc = mesh_config_validate(&cfg, "example.org", &err);
    cr_assert_eq(rc, MESH_OK, "%s", err.msg);

    const mesh_service *db = mesh_config_find_service(&cfg, "db");
    cr_assert_not_null(db);
    cr_assert_eq(db->protocol, MESH_PROTO_TCP);
    cr_assert_eq(db->connect_timeout_ms, 500);
    const mesh_service *fe = mesh_config_find_service(&cfg, "frontend");
    cr_assert_eq(fe->lb, MESH_LB_ROUND_ROBIN, "lb defaults to round_robin");
    cr_assert_eq(fe->connect_timeout_ms, 1000, "connect_timeout defaults to 1s");
    cr_assert_null(mesh_config_find_service(&cfg, "nope"));

    const mesh_workload *w =
        mesh_config_find_workload_by_id(&cfg, "spiffe://example.org/ns/default/sa/backend");
    cr_assert_not_null(w);
    cr_assert_str_eq(w->name, "backend-v1-1", "the first of the identity's three replicas");
    cr_assert_eq(w->n_labels, 1);
    cr_assert_str_eq(w->labels[0].key, "version");
    cr_assert_str_eq(w->labels[0].value, "v1");
    const mesh_service *be = mesh_config_find_service(&cfg, "backend");
    cr_assert_eq(be->n_subsets, 2);
    const mesh_subset *v1 = mesh_config_find_subset(be, "v1");
    cr_assert_not_null(v1);
    cr_assert(mesh_subset_selects(v1, mesh_config_find_workload(&cfg, "backend-v1-2")));
    cr_assert_not(mesh_subset_selects(v1, mesh_config_find_workload(&cfg, "backend-v2-1")));
    cr_assert_null(w->outbound);
    cr_assert_eq(w->n_tcp_outbound, 1);
    cr_assert_str_eq(w->tcp_outbound[0].service, "db");

    const mesh_route *r = &cfg.routes[0];
    cr_assert_str_eq(r->name, "backend");
    cr_assert_eq(r->n_rules, 2);
    cr_assert_eq(r->rules[0].n_headers, 1);
    cr_assert_str_eq(r->rules[0].headers[0].name, "x-canary");
    cr_assert_eq(r->rules[0].headers[0].kind, MESH_HDR_EXACT);
    cr_assert_str_eq(r->rules[0].headers[0].value, "1");
    cr_assert_eq(r->rules[1].n_destinations, 2);
    cr_assert_eq(r->rules[1].destinations[0].weight, 90);
    cr_assert_str_eq(r->rules[1].destinations[0].service, "backend");
    cr_assert_str_eq(r->rules[1].destinations[0].subset, "v1");
    cr_assert_str_eq(r->rules[1].destinations[1].subset, "v2");
    cr_assert_eq(r->rules[1].destinations[1].weight, 10);
    cr_assert_eq(r->rules[1].timeout_ms, 2000);
    cr_assert_eq(r->rules[1].retries, 2);
    cr_assert_not_null(strstr(r->source, "examples/mesh.yaml:"), "source %s", r->source);

    /* the example's ports follow its port plan */
    for (size_t i = 0; i < cfg.n_workloads; i++) {
        int p1 = atoi(strrchr(cfg.workloads[i].inbound, ':') + 1);
        int p2 = atoi(strrchr(cfg.workloads[i].app, ':') + 1);
        cr_assert(p1 >= 15000 && p1 <= 15999);
        cr_assert(p2 >= 18000 && p2 <= 18999);
    }
    mesh_config_free(&cfg);
}

Test(config_parse, source_records_file_and_line)
{
    mesh_config cfg;
    expect_ok(SVC_WEB "  - name: api\n"
                      "    protocol: tcp\n"
                      "    port: 9000\n",
              &cfg);
    cr_assert_str_eq(cfg.services[0].source, "mesh.yaml:2");
    cr_assert_str_eq(cfg.services[1].source, "mesh.yaml:5");
    mesh_config_free(&cfg);
}

Test(config_parse, weight_out_of_range_names_file_line_field)
{
    expect_error(SVC_WEB
                 "routes:\n"                          /* 5 */
                 "  - name: web\n"                    /* 6 */
                 "    rules:\n"                       /* 7 */
                 "      - match: {prefix: /a}\n"      /* 8 */
                 "        destinations:\n"            /* 9 */
                 "          - service: web\n"         /* 10 */
                 "      - match: {prefix: /}\n"       /* 11 */
                 "        destinations:\n"            /* 12 */
                 "          - service: web\n"         /* 13 */
                 "            weight: 140\n",         /* 14 */
                 "mesh.yaml:14: routes[0].rules[1].destinations[0].weight: must be 0..100, got "
                 "140");
    expect_error(SVC_WEB "routes:\n"
                         "  - name: web\n"
                         "    rules:\n"
                         "      - match: {prefix: /}\n"
                         "        destinations: [{service: web, weight: -1}]\n",
                 "mesh.yaml:9: routes[0].rules[0].destinations[0].weight: must be 0..100, got -1");
}

Test(config_parse, unknown_keys_suggest_nearest)
{
    expect_error("services:\n"
                 "  - name: web\n"
                 "    protcol: http\n",
                 "mesh.yaml:3: services[0].protcol: unknown field; did you mean \"protocol\"?");
    expect_error("service:\n  - name: web\n",
                 "mesh.yaml:1: service: unknown field; did you mean \"services\"?");
    expect_error("services:\n"
                 "  - name: web\n"
                 "    colour: blue\n",
                 "mesh.yaml:3: services[0].colour: unknown field (expected one of: name, protocol, "
                 "port, lb, connect_timeout, subsets, outlier_detection, health_check, "
                 "circuit_breakers)");
    expect_error(SVC_WEB "routes:\n"
                         "  - name: web\n"
                         "    rules:\n"
                         "      - match: {prefix: /}\n"
                         "        destinations:\n"
                         "          - service: web\n"
                         "            weigth: 5\n",
                 "mesh.yaml:11: routes[0].rules[0].destinations[0].weigth: unknown field; did you "
                 "mean \"weight\"?");
}

Test(config_parse, wrong_types)
{
    expect_error("services:\n"
                 "  - name: web\n"
                 "    protocol: http\n"
                 "    port: \"8080\"\n",
                 "mesh.yaml:4: services[0].port: must be an integer, got the string \"8080\"");
    expect_error("services:\n"
                 "  - name: web\n"
                 "    protocol: http\n"
                 "    port: [1]\n",
                 "mesh.yaml:4: services[0].port: must be an integer, got a list");
    expect_error("services:\n"
                 "  - name: web\n"
                 "    protocol: http\n"
                 "    port: 80.5\n",
                 "mesh.yaml:4: services[0].port: must be an integer, got \"80.5\"");
    expect_error("services:\n  name: web\n",
                 "mesh.yaml:2: services: must be a list, got a mapping");
    expect_error("services:\n  - just-a-string\n",
                 "mesh.yaml:2: services[0]: must be a mapping, got a scalar");
    expect_error("services:\n  - name: {a: b}\n",
                 "mesh.yaml:2: services[0].name: must be a string, got a mapping");
    expect_error(SVC_WEB "routes:\n"
                         "  - name: web\n"
                         "    hosts: web\n",
                 "mesh.yaml:7: routes[0].hosts: must be a list, got a scalar");
    expect_error("- services\n", "mesh.yaml:1: the top level must be a mapping");
    expect_error("just text\n", "mesh.yaml:1: the top level must be a mapping");
    expect_error("? [a, b]\n: c\n", "mesh.yaml:1: keys must be non-empty strings");
}

Test(config_parse, http2_protocols)
{
    expect_error("services:\n"
                 "  - name: web\n"
                 "    protocol: http3\n"
                 "    port: 8080\n",
                 "mesh.yaml:3: services[0].protocol: must be one of");
    expect_error("services:\n"
                 "  - name: api\n"
                 "    protocol: grpc\n"
                 "    port: 8080\n"
                 "    health_check: {type: http, path: /healthz, interval: 5s, timeout: 1s}\n",
                 "grpc services take a tcp health check (type: tcp) for now");
}

Test(config_parse, missing_and_null_required_fields)
{
    expect_error("services:\n"
                 "  - name: web\n"
                 "    port: 80\n",
                 "mesh.yaml:2: services[0].protocol: required field is missing");
    expect_error("services:\n"
                 "  - name:\n"
                 "    protocol: http\n"
                 "    port: 80\n",
                 "services[0].name: is required and must not be null");
    expect_error(SVC_WEB "authorization:\n"
                         "  - service: web\n",
                 "mesh.yaml:6: authorization[0].allow: required field is missing (use allow: [] "
                 "to deny every caller)");
    expect_error(SVC_WEB "routes:\n"
                         "  - name: web\n"
                         "    rules:\n"
                         "      - destinations: [{service: web}]\n",
                 "mesh.yaml:8: routes[0].rules[0].match: required field is missing");
}

Test(config_parse, duplicate_keys)
{
    expect_error("services:\n"
                 "  - name: web\n"
                 "    protocol: http\n"
                 "    name: api\n",
                 "mesh.yaml:4: services[0].name: duplicate key (first set at line 2)");
    expect_error("services: []\nservices: []\n",
                 "mesh.yaml:2: services: duplicate key (first set at line 1)");
}

Test(config_parse, names)
{
    expect_error("services:\n"
                 "  - name: \"\"\n"
                 "    protocol: http\n"
                 "    port: 80\n",
                 "mesh.yaml:2: services[0].name: must not be empty");
    expect_error("services:\n"
                 "  - name: Web\n"
                 "    protocol: http\n"
                 "    port: 80\n",
                 "mesh.yaml:2: services[0].name: must be lowercase");
    expect_error("services:\n"
                 "  - name: web_1\n"
                 "    protocol: http\n"
                 "    port: 80\n",
                 "mesh.yaml:2: services[0].name: must be a DNS label");
    expect_error("services:\n"
                 "  - name: -web\n"
                 "    protocol: http\n"
                 "    port: 80\n",
                 "mesh.yaml:2: services[0].name: must start and end with a letter or digit");
    char buf[512];
    snprintf(buf, sizeof buf,
             "services:\n  - name: %s\n    protocol: http\n    port: 80\n",
             "a123456789012345678901234567890123456789012345678901234567890123");
    expect_error(buf, "mesh.yaml:2: services[0].name: must be at most 63 characters, got 64");
    /* 63 is fine */
    snprintf(buf, sizeof buf, "services:\n  - name: %s\n    protocol: http\n    port: 80\n",
             "a12345678901234567890123456789012345678901234567890123456789012");
    mesh_config cfg;
    expect_ok(buf, &cfg);
    mesh_config_free(&cfg);
    expect_error(SVC_WEB WL_HEAD "    inbound: 127.0.0.1:15001\n"
                                 "    app: 127.0.0.1:8080\n"
                                 "    tcp_outbound:\n"
                                 "      - service: DB\n"
                                 "        listen: 127.0.0.1:15002\n",
                 "mesh.yaml:12: workloads[0].tcp_outbound[0].service: must be lowercase");
}

Test(config_parse, durations)
{
    static const struct {
        const char *value;
        const char *want;
    } bad[] = {
        {"-1s", "must not be negative, got \"-1s\""},
        {"abc", "must be a whole number with a unit ms, s, m or h"},
        {"1.5s", "must be a whole number with a unit"},
        {"5", "must be a whole number with a unit"},
        {"2 s", "must be a whole number with a unit"},
        {"0s", "must be greater than 0"},
        {"25h", "must be at most 24h"},
        {"99999999999999999999ms", "must be at most 24h"},
        {"[1s]", "must be a duration like"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[256], want[256];
        snprintf(buf, sizeof buf,
                 "services:\n  - name: web\n    protocol: http\n    port: 80\n"
                 "    connect_timeout: %s\n",
                 bad[i].value);
        snprintf(want, sizeof want, "mesh.yaml:5: services[0].connect_timeout: %s", bad[i].want);
        expect_error(buf, want);
    }
    static const struct {
        const char *value;
        int64_t ms;
    } good[] = {{"250ms", 250}, {"2s", 2000}, {"1m", 60000}, {"1h", 3600000}, {"24h", 86400000}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char buf[256];
        snprintf(buf, sizeof buf,
                 "services:\n  - name: web\n    protocol: http\n    port: 80\n"
                 "    connect_timeout: %s\n",
                 good[i].value);
        mesh_config cfg;
        expect_ok(buf, &cfg);
        cr_assert_eq(cfg.services[0].connect_timeout_ms, good[i].ms, "%s", good[i].value);
        mesh_config_free(&cfg);
    }
    expect_error(SVC_WEB "routes:\n"
                         "  - name: web\n"
                         "    rules:\n"
                         "      - match: {prefix: /}\n"
                         "        destinations: [{service: web}]\n"
                         "        timeout: 0ms\n",
                 "mesh.yaml:10: routes[0].rules[0].timeout: must be greater than 0");
}

static void expect_addr_error(const char *addr, const char *want)
{
    char buf[512], full[256];
    snprintf(buf, sizeof buf, SVC_WEB WL_HEAD "    inbound: %s\n    app: 127.0.0.1:8080\n", addr);
    snprintf(full, sizeof full, "mesh.yaml:9: workloads[0].inbound: %s", want);
    expect_error(buf, full);
}

static void expect_addr_ok(const char *addr)
{
    char buf[512];
    snprintf(buf, sizeof buf, SVC_WEB WL_HEAD "    inbound: \"%s\"\n    app: 127.0.0.1:8080\n",
             addr);
    mesh_config cfg;
    expect_ok(buf, &cfg);
    cr_assert_str_eq(cfg.workloads[0].inbound, addr);
    mesh_config_free(&cfg);
}

Test(config_parse, host_port)
{
    expect_addr_error("127.0.0.1", "missing :port");
    expect_addr_error("127.0.0.1:0", "port must be 1..65535");
    expect_addr_error("127.0.0.1:65536", "port must be 1..65535");
    expect_addr_error("127.0.0.1:08080", "port must be 1..65535 (no leading zeros)");
    expect_addr_error("127.0.0.1:http", "port must be 1..65535");
    expect_addr_error("\"::1:15001\"", "IPv6 addresses must be in brackets");
    expect_addr_error("\"[::1]\"", "missing :port");
    expect_addr_error("\"[::g]:80\"", "not a valid IPv6 address");
    expect_addr_error("256.1.1.1:80", "not a valid IPv4 address");
    expect_addr_error("10.0.0:80", "not a valid IPv4 address");
    expect_addr_error("my_host:80", "hostname may only contain letters");
    expect_addr_error(":80", "missing host");
    expect_addr_error("0.0.0.0:15001", "must be a concrete address, not a wildcard");
    expect_addr_ok("127.0.0.1:15001");
    expect_addr_ok("[::1]:15001");
    expect_addr_ok("localhost:15001");
    expect_addr_ok("web-1.mesh.internal:65535");
    expect_addr_ok("10.1.2.3:1");
}

Test(config_parse, listener_clash_within_workload)
{
    expect_error(SVC_WEB WL_HEAD "    inbound: 127.0.0.1:15001\n"  /* 9 */
                                 "    app: 127.0.0.1:8080\n"       /* 10 */
                                 "    outbound: 127.0.0.1:15001\n", /* 11 */
                 "mesh.yaml:11: workloads[0].outbound: 127.0.0.1:15001 clashes with this "
                 "workload's inbound");
    expect_error(SVC_WEB WL_HEAD "    inbound: 127.0.0.1:15001\n"
                                 "    app: 127.0.0.1:8080\n"
                                 "    outbound: 0.0.0.0:15001\n",
                 "mesh.yaml:11: workloads[0].outbound: 0.0.0.0:15001 clashes");
    expect_error(SVC_WEB WL_HEAD "    inbound: 127.0.0.1:15001\n"
                                 "    app: 127.0.0.1:15001\n",
                 "mesh.yaml:10: workloads[0].app: 127.0.0.1:15001 is also this workload's "
                 "inbound listener");
}

Test(config_parse, spiffe_ids)
{
    char buf[512];
    snprintf(buf, sizeof buf,
             SVC_WEB "workloads:\n  - name: web-1\n    spiffe_id: %s\n    service: web\n"
                     "    inbound: 127.0.0.1:15001\n    app: 127.0.0.1:8080\n",
             "http://example.org/ns/default/sa/web");
    expect_error(buf, "mesh.yaml:7: workloads[0].spiffe_id: ");
    snprintf(buf, sizeof buf,
             SVC_WEB "workloads:\n  - name: web-1\n    spiffe_id: %s\n    service: web\n"
                     "    inbound: 127.0.0.1:15001\n    app: 127.0.0.1:8080\n",
             "spiffe://example.org/web");
    expect_error(buf, "mesh.yaml:7: workloads[0].spiffe_id: SPIFFE ID 'spiffe://example.org/web' "
                      "is not a workload identity");
    expect_error(SVC_WEB "authorization:\n"
                         "  - service: web\n"
                         "    allow:\n"
                         "      - spiffe://example.org/ns/default/sa/a\n"
                         "      - spiffe://Example.org/ns/default/sa/b\n",
                 "mesh.yaml:9: authorization[0].allow[1]: ");
    expect_error(SVC_WEB "authorization:\n"
                         "  - service: web\n"
                         "    allow:\n"
                         "      - spiffe://example.org/ns/default/sa/a\n"
                         "      - spiffe://example.org/ns/default/sa/a\n",
                 "mesh.yaml:9: authorization[0].allow[1]: \"spiffe://example.org/ns/default/sa/a\" "
                 "is already listed at allow[0]");
    mesh_config cfg;
    expect_ok(SVC_WEB "authorization:\n  - service: web\n    allow: []\n", &cfg);
    cr_assert_eq(cfg.authz[0].n_allow, 0);
    mesh_config_free(&cfg);
}

Test(config_parse, enums)
{
    expect_error("services:\n"
                 "  - name: web\n"
                 "    protocol: udp\n",
                 "mesh.yaml:3: services[0].protocol: must be one of http, tcp, http2, grpc, got \"udp\"");
    expect_error("services:\n"
                 "  - name: web\n"
                 "    protocol: htpp\n",
                 "mesh.yaml:3: services[0].protocol: must be one of http, tcp, http2, grpc, got \"htpp\"; did "
                 "you mean \"http\"?");
    expect_error("services:\n"
                 "  - name: web\n"
                 "    protocol: HTTP\n",
                 "did you mean \"http\"?");
    expect_error("services:\n"
                 "  - name: web\n"
                 "    protocol: http\n"
                 "    port: 80\n"
                 "    lb: random\n",
                 "mesh.yaml:5: services[0].lb: must be one of round_robin, least_request, got "
                 "\"random\"");
}

#define ROUTE_HEAD                                                                                 \
    SVC_WEB "routes:\n"          /* 5 */                                                           \
            "  - name: web\n"    /* 6 */                                                           \
            "    rules:\n"       /* 7 */

Test(config_parse, prefix_and_path)
{
    expect_error(ROUTE_HEAD "      - match:\n"               /* 8 */
                            "          prefix: /\n"         /* 9 */
                            "          path: /x\n"          /* 10 */
                            "        destinations: [{service: web}]\n",
                 "mesh.yaml:8: routes[0].rules[0].match: set either prefix or path, not both");
    expect_error(ROUTE_HEAD "      - match: {}\n"
                            "        destinations: [{service: web}]\n",
                 "mesh.yaml:8: routes[0].rules[0].match: one of prefix or path is required");
    expect_error(ROUTE_HEAD "      - match: {prefix: api}\n"
                            "        destinations: [{service: web}]\n",
                 "mesh.yaml:8: routes[0].rules[0].match.prefix: must start with '/', got \"api\"");
    expect_error(ROUTE_HEAD "      - match: {path: \"/a b\"}\n"
                            "        destinations: [{service: web}]\n",
                 "routes[0].rules[0].match.path: must be printable ASCII");
    expect_error(ROUTE_HEAD "      - match: {path: \"/a?b=1\"}\n"
                            "        destinations: [{service: web}]\n",
                 "routes[0].rules[0].match.path: must not contain '?'");
    mesh_config cfg;
    expect_ok(ROUTE_HEAD "      - match: {path: /exact}\n"
                         "        destinations: [{service: web}]\n",
              &cfg);
    cr_assert_str_eq(cfg.routes[0].rules[0].path, "/exact");
    cr_assert_null(cfg.routes[0].rules[0].prefix);
    cr_assert_eq(cfg.routes[0].n_hosts, 1, "hosts defaults to [name]");
    cr_assert_str_eq(cfg.routes[0].hosts[0], "web");
    cr_assert_eq(cfg.routes[0].rules[0].destinations[0].weight, 100, "weight defaults to 100");
    cr_assert_eq(cfg.routes[0].rules[0].timeout_ms, 0);
    cr_assert_eq(cfg.routes[0].rules[0].retries, 0);
    mesh_config_free(&cfg);
}

Test(config_parse, header_matchers)
{
    expect_error(ROUTE_HEAD "      - match:\n"                 /* 8 */
                            "          prefix: /\n"           /* 9 */
                            "          headers:\n"            /* 10 */
                            "            - name: x-a\n"       /* 11 */
                            "        destinations: [{service: web}]\n",
                 "mesh.yaml:11: routes[0].rules[0].match.headers[0]: exactly one of exact, prefix "
                 "or present is required");
    expect_error(ROUTE_HEAD "      - match:\n"
                            "          prefix: /\n"
                            "          headers:\n"
                            "            - {name: x-a, exact: a, prefix: b}\n"
                            "        destinations: [{service: web}]\n",
                 "mesh.yaml:11: routes[0].rules[0].match.headers[0]: set only one of exact, "
                 "prefix or present");
    expect_error(ROUTE_HEAD "      - match:\n"
                            "          prefix: /\n"
                            "          headers:\n"
                            "            - {name: x-a, present: false}\n"
                            "        destinations: [{service: web}]\n",
                 "mesh.yaml:11: routes[0].rules[0].match.headers[0].present: must be true");
    expect_error(ROUTE_HEAD "      - match:\n"
                            "          prefix: /\n"
                            "          headers:\n"
                            "            - {name: x-a, present: maybe}\n"
                            "        destinations: [{service: web}]\n",
                 "headers[0].present: must be true or false, got \"maybe\"");
    expect_error(ROUTE_HEAD "      - match:\n"
                            "          prefix: /\n"
                            "          headers:\n"
                            "            - {name: X-A, exact: a}\n"
                            "        destinations: [{service: web}]\n",
                 "mesh.yaml:11: routes[0].rules[0].match.headers[0].name: header names must be "
                 "lowercase");
    expect_error(ROUTE_HEAD "      - match:\n"
                            "          prefix: /\n"
                            "          headers:\n"
                            "            - {name: x-a, prefix: \"\"}\n"
                            "        destinations: [{service: web}]\n",
                 "routes[0].rules[0].match.headers[0].prefix: must not be empty");
    expect_error(ROUTE_HEAD "      - match:\n"
                            "          prefix: /\n"
                            "          headers:\n"
                            "            - {name: x-a, exact: \"a\\nb\"}\n"
                            "        destinations: [{service: web}]\n",
                 "routes[0].rules[0].match.headers[0].exact: must not contain control characters");
    mesh_config cfg;
    expect_ok(ROUTE_HEAD "      - match:\n"
                         "          prefix: /\n"
                         "          headers:\n"
                         "            - {name: x-a, present: true}\n"
                         "            - {name: x-b, exact: \"\"}\n"
                         "            - {name: x-c, prefix: v}\n"
                         "        destinations: [{service: web}]\n",
              &cfg);
    const mesh_route_rule *r = &cfg.routes[0].rules[0];
    cr_assert_eq(r->n_headers, 3);
    cr_assert_eq(r->headers[0].kind, MESH_HDR_PRESENT);
    cr_assert_null(r->headers[0].value);
    cr_assert_eq(r->headers[1].kind, MESH_HDR_EXACT);
    cr_assert_str_eq(r->headers[1].value, "");
    cr_assert_eq(r->headers[2].kind, MESH_HDR_PREFIX);
    mesh_config_free(&cfg);
}

Test(config_parse, weights_and_retries)
{
    expect_error(ROUTE_HEAD "      - match: {prefix: /}\n"   /* 8 */
                            "        destinations:\n"       /* 9 */
                            "          - {service: web, weight: 0}\n",
                 "mesh.yaml:9: routes[0].rules[0].destinations: the weights sum to 0");
    expect_error(ROUTE_HEAD "      - match: {prefix: /}\n"
                            "        destinations: []\n",
                 "mesh.yaml:9: routes[0].rules[0].destinations: at least one destination is "
                 "required");
    expect_error(ROUTE_HEAD "      - match: {prefix: /}\n"
                            "        destinations:\n"
                            "          - {service: web, weight: 50}\n"
                            "          - {service: web, weight: 50}\n",
                 "mesh.yaml:11: routes[0].rules[0].destinations[1].service: service \"web\" is "
                 "already a destination");
    expect_error(ROUTE_HEAD "      - match: {prefix: /}\n"
                            "        destinations: [{service: web}]\n"
                            "        retries: 11\n",
                 "mesh.yaml:10: routes[0].rules[0].retries: must be 0..10, got 11");
    expect_error(ROUTE_HEAD "      - match: {prefix: /}\n"
                            "        destinations: [{service: web}]\n"
                            "        retries: -1\n",
                 "mesh.yaml:10: routes[0].rules[0].retries: must be 0..10, got -1");
    expect_error(SVC_WEB "routes:\n  - name: web\n    rules: []\n",
                 "mesh.yaml:7: routes[0].rules: at least one rule is required");
    expect_error(SVC_WEB "routes:\n  - name: web\n    hosts: []\n    rules: []\n",
                 "mesh.yaml:7: routes[0].hosts: at least one host is required");
    expect_error(SVC_WEB "routes:\n  - name: web\n    hosts: [web, \"web:8080\"]\n    rules: []\n",
                 "mesh.yaml:7: routes[0].hosts[1]: must be a host without a port");
    expect_error(SVC_WEB "routes:\n  - name: web\n    hosts: [\"a*b\"]\n    rules: []\n",
                 "mesh.yaml:7: routes[0].hosts[0]: '*' is only allowed alone or as a leading");
}

Test(config_parse, multiple_documents_rejected)
{
    expect_error(SVC_WEB "---\n"                 /* 5 */
                         "workloads: []\n",      /* 6 */
                 "mesh.yaml:6: a second YAML document starts here (the first is at line 1)");
    /* a leading '---' and trailing empty documents are fine */
    mesh_config cfg;
    expect_ok("---\n" SVC_WEB "---\n", &cfg);
    cr_assert_eq(cfg.n_services, 1);
    mesh_config_free(&cfg);
    expect_ok("---\n---\n" SVC_WEB, &cfg);
    cr_assert_eq(cfg.n_services, 1);
    cr_assert_str_eq(cfg.services[0].source, "mesh.yaml:4");
    mesh_config_free(&cfg);
}

Test(config_parse, empty_inputs_are_empty_configs)
{
    static const char *const empties[] = {"", "\n\n", "# only a comment\n", "---\n", "~\n",
                                          "services:\nworkloads: []\n", "{}\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        mesh_config cfg;
        expect_ok(empties[i], &cfg);
        cr_assert_eq(cfg.n_services + cfg.n_workloads + cfg.n_routes + cfg.n_authz, 0);
        mesh_err err;
        cr_assert_eq(mesh_config_validate(&cfg, "example.org", &err), MESH_OK);
        mesh_config_free(&cfg);
    }
    mesh_config cfg;
    mesh_err err;
    cr_assert_eq(mesh_config_parse_buffer("mesh.yaml", NULL, 0, &cfg, &err), MESH_OK);
}

Test(config_parse, yaml_syntax_errors)
{
    expect_error("services:\n"
                 "  - name: web\n"
                 "    protocol: [http\n"
                 "    port: 80\n",
                 "YAML syntax error: ");
    expect_error("services:\n"
                 "  - name: web\n"
                 "   protocol: http\n",
                 "mesh.yaml:3: YAML syntax error: ");
    expect_error("services:\n\t- name: web\n", "mesh.yaml:2: YAML syntax error: ");
    expect_error("a: \"\xff\"\n", "mesh.yaml:1: YAML syntax error: invalid");
}

Test(config_parse, aliases_rejected)
{
    expect_error("services:\n"
                 "  - &w\n"
                 "    name: web\n"
                 "    protocol: http\n"
                 "    port: 80\n"
                 "  - *w\n",
                 "mesh.yaml:6: YAML aliases (*w) are not supported");
    /* the billion-laughs shape fails fast on the first alias */
    expect_error("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "mesh.yaml:2: YAML aliases");
}

Test(config_parse, size_limit)
{
    size_t len = CONFIG_MAX_FILE_BYTES + 1;
    char *big = malloc(len + 1);
    cr_assert_not_null(big);
    memset(big, '#', len);
    big[len] = '\0';
    mesh_config cfg;
    mesh_err err;
    int rc = mesh_config_parse_buffer("mesh.yaml", big, len, &cfg, &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "limit is 4194304 bytes (4 MiB)"), "%s", err.msg);

    char dir[] = "/tmp/meshd-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(big, 1, len, f), len);
    fclose(f);
    rc = mesh_config_parse_file(path, &cfg, &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "big.yaml: file is 4194305 bytes"), "%s", err.msg);

    /* exactly at the limit is accepted (a file of comments is an empty config) */
    f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(big, 1, len - 1, f), len - 1);
    fclose(f);
    rc = mesh_config_parse_file(path, &cfg, &err);
    cr_assert_eq(rc, MESH_OK, "%s", err.msg);
    unlink(path);
    rmdir(dir);
    free(big);
}

Test(config_parse, file_errors)
{
    mesh_config cfg;
    mesh_err err;
    int rc = mesh_config_parse_file("/nonexistent/mesh.yaml", &cfg, &err);
    cr_assert_eq(rc, MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "/nonexistent/mesh.yaml: cannot open"), "%s", err.msg);
    rc = mesh_config_parse_file("/tmp", &cfg, &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "not a regular file"), "%s", err.msg);
}

Test(config_parse, embedded_nul_and_deep_nesting)
{
    expect_error("services:\n  - name: \"we\\0b\"\n    protocol: http\n    port: 80\n",
                 "mesh.yaml:2: services[0].name: must not contain NUL characters");
    /* deeply nested flow collections under an unknown key: an error, not a crash */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 16);
    cr_assert_not_null(deep);
    strcpy(deep, "x: ");
    memset(deep + 3, '[', depth);
    memset(deep + 3 + depth, ']', depth);
    deep[3 + 2 * depth] = '\0';
    mesh_config cfg;
    mesh_err err;
    int rc = parse(deep, &cfg, &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "mesh.yaml:1: nested more than 32 levels deep"), "%s",
                       err.msg);
    free(deep);
    /* the same in block style */
    char block[4096] = "";
    size_t o = 0;
    for (int d = 0; d < 40; d++)
        o += (size_t)snprintf(block + o, sizeof block - o, "%*sk%d:\n", d * 2, "", d);
    rc = parse(block, &cfg, &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "mesh.yaml:33: nested more than 32 levels deep"), "%s",
                       err.msg);
}

/* Inputs near the 4 MiB limit that are hard on a naive parser stay fast:
 * long lists are checked for duplicates by sorting, not pairwise. */
Test(config_parse, big_lists_stay_linear, .timeout = 10)
{
    size_t n = 60000;
    size_t cap = n * 64 + 256;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    size_t o = (size_t)snprintf(buf, cap,
                                "services:\n  - {name: web, protocol: http, port: 80}\n"
                                "authorization:\n  - service: web\n    allow:\n");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(buf + o, cap - o, "      - spiffe://example.org/ns/a/sa/c%zu\n", i);
    mesh_config cfg;
    mesh_err err;
    int rc = parse(buf, &cfg, &err);
    cr_assert_eq(rc, MESH_OK, "%s", err.msg);
    cr_assert_eq(cfg.authz[0].n_allow, n);
    mesh_config_free(&cfg);
    /* the same list with its last entry repeating entry 7 */
    o -= strlen("      - spiffe://example.org/ns/a/sa/c59999\n");
    o += (size_t)snprintf(buf + o, cap - o, "      - spiffe://example.org/ns/a/sa/c7\n");
    rc = parse(buf, &cfg, &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "authorization[0].allow[59999]: "
                                       "\"spiffe://example.org/ns/a/sa/c7\" is already listed at "
                                       "allow[7]"),
                       "%s", err.msg);
    free(buf);
}

Test(config_parse, list_caps)
{
    char buf[16384];
    size_t o = (size_t)snprintf(buf, sizeof buf,
                                "services:\n  - {name: web, protocol: http, port: 80}\n"
                                "routes:\n  - name: web\n    rules:\n"
                                "      - match: {prefix: /}\n        destinations:\n");
    for (int i = 0; i < 65; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "          - {service: s%d}\n", i);
    expect_error(buf, "mesh.yaml:7: routes[0].rules[0].destinations: at most 64 destinations per "
                      "rule, got 65");
}
