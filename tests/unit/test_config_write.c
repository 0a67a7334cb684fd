/* tests/unit/test_config_write.c — canonical YAML: stable output and
 * parse(to_yaml(x)) == x, including strings a YAML reader would mistype. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "config/mesh_config.h"
#include "common/json_out.h"

static void load_example(mesh_config *cfg)
{
    mesh_err err;
    mesh_err_clear(&err);
    cr_assert_eq(mesh_config_parse_file("examples/mesh.yaml", cfg, &err), MESH_OK, "%s", err.msg);
}

/* to_yaml -> parse -> equal, and the second rendering is byte-identical. */
static void roundtrip_resource(enum config_kind k, const mesh_config *cfg, size_t i)
{
    char *y1 = config_resource_to_yaml(k, cfg, i);
    cr_assert_not_null(y1);
    union {
        mesh_service s;
        mesh_workload w;
        mesh_route r;
        mesh_authorization a;
    } back;
    memset(&back, 0, sizeof back);
    mesh_err err;
    mesh_err_clear(&err);
    int rc = config_parse_resource("body", y1, strlen(y1), k, &back, &err);
    cr_assert_eq(rc, MESH_OK, "%s\n---\n%s", err.msg, y1);
    mesh_config one = {0};
    switch (k) {
    case CONFIG_KIND_SERVICE:
        cr_assert(config_service_equal(&back.s, &cfg->services[i]), "%s", y1);
        one.services = &back.s;
        one.n_services = 1;
        break;
    case CONFIG_KIND_WORKLOAD:
        cr_assert(config_workload_equal(&back.w, &cfg->workloads[i]), "%s", y1);
        one.workloads = &back.w;
        one.n_workloads = 1;
        break;
    case CONFIG_KIND_ROUTE:
        cr_assert(config_route_equal(&back.r, &cfg->routes[i]), "%s", y1);
        one.routes = &back.r;
        one.n_routes = 1;
        break;
    default:
        cr_assert(config_authorization_equal(&back.a, &cfg->authz[i]), "%s", y1);
        one.authz = &back.a;
        one.n_authz = 1;
        break;
    }
    char *y2 = config_resource_to_yaml(k, &one, 0);
    cr_assert_str_eq(y1, y2);
    free(y1);
    free(y2);
    switch (k) {
    case CONFIG_KIND_SERVICE: config_service_free(&back.s); break;
    case CONFIG_KIND_WORKLOAD: config_workload_free(&back.w); break;
    case CONFIG_KIND_ROUTE: config_route_free(&back.r); break;
    default: config_authorization_free(&back.a); break;
    }
}

Test(config_write, example_resources_roundtrip)
{
    mesh_config cfg;
    load_example(&cfg);
    for (int k = 0; k < CONFIG_KIND_COUNT; k++)
        for (size_t i = 0; i < config_kind_count((enum config_kind)k, &cfg); i++)
            roundtrip_resource((enum config_kind)k, &cfg, i);
    mesh_config_free(&cfg);
}

Test(config_write, whole_config_roundtrip)
{
    mesh_config cfg, back;
    load_example(&cfg);
    char *y = mesh_config_to_yaml(&cfg);
    cr_assert_not_null(y);
    mesh_err err;
    cr_assert_eq(mesh_config_parse_buffer("dump.yaml", y, strlen(y), &back, &err), MESH_OK,
                 "%s\n%s", err.msg, y);
    cr_assert(config_equal(&cfg, &back));
    cr_assert_eq(mesh_config_validate(&back, "example.org", &err), MESH_OK, "%s", err.msg);
    char *y2 = mesh_config_to_yaml(&back);
    cr_assert_str_eq(y, y2);
    free(y);
    free(y2);
    mesh_config_free(&back);
    mesh_config_free(&cfg);

    mesh_config empty = {0};
    y = mesh_config_to_yaml(&empty);
    cr_assert_not_null(y);
    cr_assert_eq(mesh_config_parse_buffer("dump.yaml", y, strlen(y), &back, &err), MESH_OK);
    cr_assert_eq(back.n_services + back.n_workloads + back.n_routes + back.n_authz, 0);
    free(y);
}

Test(config_write, canonical_service_text)
{
    mesh_service s = {.name = "db", .protocol = MESH_PROTO_TCP, .port = 5432,
                      .lb = MESH_LB_LEAST_REQUEST, .connect_timeout_ms = 90000};
    char *y = mesh_service_to_yaml(&s);
    cr_assert_str_eq(y, "name: db\n"
                        "protocol: tcp\n"
                        "port: 5432\n"
                        "lb: least_request\n"
                        "connect_timeout: 90s\n");
    free(y);
    s.connect_timeout_ms = 120000;
    y = mesh_service_to_yaml(&s);
    cr_assert_not_null(strstr(y, "connect_timeout: 2m\n"));
    free(y);
    s.connect_timeout_ms = 1500;
    y = mesh_service_to_yaml(&s);
    cr_assert_not_null(strstr(y, "connect_timeout: 1500ms\n"));
    free(y);
}

/* http2 and grpc survive the store's canonical YAML (rows are re-parsed by meshd). */
Test(config_write, http2_and_grpc_roundtrip)
{
    const enum mesh_protocol ps[] = {MESH_PROTO_HTTP2, MESH_PROTO_GRPC};
    const char *names[] = {"http2", "grpc"};
    for (size_t i = 0; i < 2; i++) {
        mesh_service s = {.name = "api", .protocol = ps[i], .port = 9000,
                          .connect_timeout_ms = 1000};
        char *y = mesh_service_to_yaml(&s);
        char want[64];
        snprintf(want, sizeof want, "protocol: %s\n", names[i]);
        cr_assert_not_null(strstr(y, want), "%s", y);
        mesh_service back;
        memset(&back, 0, sizeof back);
        mesh_err err;
        mesh_err_clear(&err);
        cr_assert_eq(config_parse_resource("body", y, strlen(y), CONFIG_KIND_SERVICE, &back, &err),
                     MESH_OK, "%s", err.msg);
        cr_assert_eq(back.protocol, ps[i]);
        cr_assert(config_service_equal(&back, &s), "%s", y);
        config_service_free(&back);
        free(y);
    }
}

/* The struct's padding is not part of its value: defaults written over a
 * dirty buffer still count as the defaults (the fuzzer found the canonical
 * YAML growing an outlier_detection block when padding held stack bytes). */
Test(config_write, outlier_defaults_ignore_padding)
{
    mesh_service s;
    memset(&s, 0, sizeof s);
    s.name = "web";
    s.protocol = MESH_PROTO_HTTP;
    s.port = 8080;
    s.lb = MESH_LB_ROUND_ROBIN;
    s.connect_timeout_ms = 1000;
    config_service_health_defaults(&s);
    memset(&s.outlier, 0x5A, sizeof s.outlier);
    s.outlier.consecutive_5xx = CONFIG_DEFAULT_OUTLIER_5XX;
    s.outlier.consecutive_gateway_failure = 0;
    s.outlier.interval_ms = CONFIG_DEFAULT_OUTLIER_INTERVAL_MS;
    s.outlier.base_ejection_ms = CONFIG_DEFAULT_BASE_EJECTION_MS;
    s.outlier.max_ejection_ms = CONFIG_DEFAULT_MAX_EJECTION_MS;
    s.outlier.max_ejection_percent = CONFIG_DEFAULT_MAX_EJECTION_PCT;
    char *y = mesh_service_to_yaml(&s);
    cr_assert_not_null(y);
    cr_assert_null(strstr(y, "outlier_detection"), "%s", y);
    mesh_service clean = s;
    config_service_health_defaults(&clean);
cr_assert(config_outlier_equal(&s.outlier, &clean.outlier));
    clean.outlier.max_ejection_percent = 20;
cr_assert_not(config_outlier_equal(&s.outlier, &clean.outlier));
    free(y);
}

Test(config_write, canonical_workload_text)
{
    mesh_tcp_outbound t = {.service = "db", .listen = "127.0.0.1:15202"};
    mesh_workload w = {.name = "api-1", .spiffe_id = "spiffe://example.org/ns/default/sa/api",
                       .service = "api", .inbound = "127.0.0.1:15002", .app = "localhost:18002",
                       .tcp_outbound = &t, .n_tcp_outbound = 1};
    char *y = mesh_workload_to_yaml(&w);
    cr_assert_str_eq(y, "name: api-1\n"
                        "spiffe_id: spiffe://example.org/ns/default/sa/api\n"
                        "service: api\n"
                        "inbound: 127.0.0.1:15002\n"
                        "app: localhost:18002\n"
                        "tcp_outbound:\n"
                        "- service: db\n"
                        "  listen: 127.0.0.1:15202\n");
    free(y);
}

/* Strings that YAML would read as null, bool or number, or that need escaping. */
Test(config_write, tricky_strings_roundtrip)
{
    static const char *const values[] = {
        "1",     "0x1f",   "1.5",    ".5",    "1:30",   "1.2.3",  "1e3",  "yes",  "No",
        "on",    "null",   "~",      "",      "true",   ".inf",   "-1",   "+1",   "1_000",
        "12:30", "a: b",   "#x",     "- x",   " lead",  "trail ", "'q'",  "\"dq\"", "\\back",
        "ü-ß",   "*star",  "&amp",   "!tag",  "%pct",   "@at",    "`bt`", "{flow}", "[seq]",
        "a,b",   "?",      "|",      ">",     "tab\there", "10.0.0.1:80"};
    size_t n = sizeof values / sizeof values[0];
    mesh_header_matcher *h = calloc(n, sizeof *h);
    cr_assert_not_null(h);
    for (size_t i = 0; i < n; i++) {
        h[i].name = "x-test";
        h[i].kind = MESH_HDR_EXACT;
        h[i].value = (char *)values[i];
    }
    mesh_destination d = {.service = "web", .weight = 7};
    mesh_route_rule rule = {.prefix = "/", .headers = h, .n_headers = n, .destinations = &d,
                            .n_destinations = 1, .timeout_ms = 250, .retries = 3};
    char *hosts[] = {"*", "*.example.org", "web.default.svc", "10.0.0.1"};
    mesh_route r = {.name = "web", .hosts = hosts, .n_hosts = 4, .rules = &rule, .n_rules = 1};
    mesh_config cfg = {.routes = &r, .n_routes = 1};
    mesh_service svc = {.name = "web", .protocol = MESH_PROTO_HTTP, .port = 80,
                        .connect_timeout_ms = 1000};
    cfg.services = &svc;
    cfg.n_services = 1;
    mesh_err err;
    cr_assert_eq(mesh_config_validate(&cfg, NULL, &err), MESH_OK, "%s", err.msg);
    roundtrip_resource(CONFIG_KIND_ROUTE, &cfg, 0);

    /* other YAML readers (PyYAML, yq) must see strings too: typed-looking
     * values are quoted, plain-safe ones are not */
    char *y = mesh_route_to_yaml(&r);
    static const char *const quoted[] = {"1", "0x1f", "1.5", ".5", "1:30", "yes", "No", "null",
                                         "~", "", "true", ".inf", "-1", "1_000", "1e3"};
    for (size_t i = 0; i < sizeof quoted / sizeof quoted[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "exact: \"%s\"\n", quoted[i]);
        cr_assert_not_null(strstr(y, want), "%s not quoted in:\n%s", quoted[i], y);
    }
    cr_assert_not_null(strstr(y, "exact: 1.2.3\n"), "%s", y);
    cr_assert_not_null(strstr(y, "exact: 10.0.0.1:80\n"), "%s", y);
    free(y);
    free(h);
}

Test(config_write, long_strings_not_folded)
{
    char longv[1001];
    memset(longv, 'a', 1000);
    for (size_t i = 50; i < 1000; i += 50)
        longv[i] = ' ';
    longv[1000] = '\0';
    mesh_header_matcher h = {.name = "x-long", .kind = MESH_HDR_PREFIX, .value = longv};
    mesh_destination d = {.service = "web", .weight = 1};
    mesh_route_rule rule = {.path = "/p", .headers = &h, .n_headers = 1, .destinations = &d,
                            .n_destinations = 1};
    char *hosts[] = {"web"};
    mesh_route r = {.name = "web", .hosts = hosts, .n_hosts = 1, .rules = &rule, .n_rules = 1};
    mesh_config cfg = {.routes = &r, .n_routes = 1};
    char *y = mesh_route_to_yaml(&r);
    cr_assert_not_null(strstr(y, longv), "value was folded:\n%s", y);
    free(y);
    roundtrip_resource(CONFIG_KIND_ROUTE, &cfg, 0);
}

Test(config_write, authorization_empty_allow)
{
    mesh_authorization a = {.service = "db"};
    char *y = mesh_authorization_to_yaml(&a);
    cr_assert_str_eq(y, "service: db\nallow: []\n");
    free(y);
    mesh_config cfg = {.authz = &a, .n_authz = 1};
    roundtrip_resource(CONFIG_KIND_AUTHZ, &cfg, 0);
}

/* `meshctl get -o json` gives each resource as a JSON object: types follow
 * the canonical YAML's quoting, and a bad body leaves the output untouched. */
static char *to_json(const char *yaml, int *rc)
{
    json_out j;
    json_init(&j);
    json_arr_begin(&j);
    json_int(&j, 1);
    mesh_err err = {0};
    *rc = config_yaml_to_json(yaml, strlen(yaml), &j, &err);
    json_arr_end(&j);
    char *s = strdup(json_text(&j));
    json_free(&j);
    return s;
}

Test(config_write, yaml_to_json_types)
{
    int rc;
    char *s = to_json("name: web\nport: 8080\nquoted: \"8080\"\nneg: -3\nzero_lead: 0700\n"
                      "on: true\noff: false\nnothing: null\ndur: 1s\n"
                      "list:\n- a\n- 2\nmap:\n  k: v\n", &rc);
    cr_assert_eq(rc, MESH_OK);
    cr_assert_str_eq(s, "[1,{\"name\":\"web\",\"port\":8080,\"quoted\":\"8080\",\"neg\":-3,"
                        "\"zero_lead\":\"0700\",\"on\":true,\"off\":false,\"nothing\":null,"
                        "\"dur\":\"1s\",\"list\":[\"a\",2],\"map\":{\"k\":\"v\"}}]");
    free(s);
    /* The canonical writer's own output round-trips to JSON. */
    mesh_config cfg;
    memset(&cfg, 0, sizeof cfg);
    load_example(&cfg);
    char *y = config_resource_to_yaml(CONFIG_KIND_SERVICE, &cfg, 0);
    s = to_json(y, &rc);
    cr_assert_eq(rc, MESH_OK, "%s", y);
    cr_assert_not_null(strstr(s, "\"name\":"));
    free(s);
    free(y);
    mesh_config_free(&cfg);
}

Test(config_write, yaml_to_json_bad_input_changes_nothing)
{
    int rc;
    char *s = to_json("a: [unclosed\n", &rc);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_str_eq(s, "[1]");
    free(s);
    s = to_json("a: &x 1\nb: *x\n", &rc); /* an alias is its anchor's value */
    cr_assert_eq(rc, MESH_OK);
    cr_assert_str_eq(s, "[1,{\"a\":1,\"b\":1}]");
    free(s);
    /* ... but aliases that multiply (10^6 nodes from a few lines) are refused. */
    s = to_json("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n", &rc);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_str_eq(s, "[1]");
    free(s);
    s = to_json("? [a, b]\n: c\n", &rc); /* a non-scalar key */
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_str_eq(s, "[1]");
    free(s);
    /* Nesting past the bound is refused, not recursed into. */
    char deep[512] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]");
    s = to_json(deep, &rc);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_str_eq(s, "[1]");
    free(s);
}
