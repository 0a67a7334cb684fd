/* tests/unit/test_config_parse_health.c — a service's outlier_detection, health_check and
 * circuit_breakers and a route rule's per_try_timeout in mesh.yaml: defaults, values,
 * and every class of bad input (wrong type, out of range, unknown key) with the
 * file:line:field an operator gets. */
#include <criterion/criterion.h>
#include <string.h>

#include "config/mesh_config.h"

static int parse(const char *yaml, mesh_config *cfg, mesh_err *err)
{
    mesh_err_clear(err);
    return mesh_config_parse_buffer("mesh.yaml", yaml, strlen(yaml), cfg, err);
}

static void expect_error(const char *yaml, const char *want)
{
    mesh_config cfg;
    mesh_err err;
    int rc = parse(yaml, &cfg, &err);
    cr_assert_eq(rc, MESH_EINVAL, "expected EINVAL for <<%s>>, got %d (%s)", yaml, rc, err.msg);
    cr_assert_not_null(strstr(err.msg, want), "expected \"%s\" in \"%s\"", want, err.msg);
}

#define SVC "services:\n  - name: api\n    protocol: http\n    port: 8080\n"   /* lines 1-4 */

Test(config_health, defaults_and_values)
{
    mesh_config cfg;
    mesh_err err;
    cr_assert_eq(parse(SVC, &cfg, &err), MESH_OK, "%s", err.msg);
    const mesh_service *s = &cfg.services[0];
    cr_assert_eq(s->health_check.kind, MESH_HC_NONE, "active checks are opt-in");
    cr_assert_eq(s->circuit_breakers.max_requests, 0, "0: Envoy's defaults");
    mesh_config_free(&cfg);

    const char *y = SVC
        "    outlier_detection: {consecutive_5xx: 7, interval: 2s, base_ejection_time: 3s,\n"
        "                        max_ejection_time: 1m, max_ejection_percent: 40}\n"
        "    health_check: {type: http, path: /ready, interval: 2s, timeout: 500ms,\n"
        "                   unhealthy_threshold: 3, healthy_threshold: 2}\n"
        "    circuit_breakers: {max_connections: 10, max_pending_requests: 5,\n"
        "                       max_requests: 20, max_retries: 2}\n";
    cr_assert_eq(parse(y, &cfg, &err), MESH_OK, "%s", err.msg);
    s = &cfg.services[0];
    cr_assert_eq(s->outlier.consecutive_5xx, 7);
    cr_assert_eq(s->outlier.interval_ms, 2000);
    cr_assert_eq(s->outlier.base_ejection_ms, 3000);
    cr_assert_eq(s->outlier.max_ejection_ms, 60000);
    cr_assert_eq(s->outlier.max_ejection_percent, 40);
    cr_assert_eq(s->health_check.kind, MESH_HC_HTTP);
    cr_assert_str_eq(s->health_check.path, "/ready");
    cr_assert_eq(s->health_check.interval_ms, 2000);
    cr_assert_eq(s->health_check.timeout_ms, 500);
    cr_assert_eq(s->health_check.unhealthy_threshold, 3);
    cr_assert_eq(s->health_check.healthy_threshold, 2);
    cr_assert_eq(s->circuit_breakers.max_connections, 10);
    cr_assert_eq(s->circuit_breakers.max_pending_requests, 5);
    cr_assert_eq(s->circuit_breakers.max_requests, 20);
    cr_assert_eq(s->circuit_breakers.max_retries, 2);
    mesh_config_free(&cfg);

    cr_assert_eq(parse(SVC "    health_check: {type: tcp}\n", &cfg, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(cfg.services[0].health_check.kind, MESH_HC_TCP);
    cr_assert_gt(cfg.services[0].health_check.interval_ms, 0, "a default interval");
    mesh_config_free(&cfg);
}

Test(config_health, wrong_types)
{
    expect_error(SVC "    outlier_detection: {consecutive_5xx: five}\n",
                 "mesh.yaml:5: services[0].outlier_detection.consecutive_5xx");
    expect_error(SVC "    outlier_detection: 5\n", "services[0].outlier_detection");
    expect_error(SVC "    health_check: {type: http, interval: soon}\n",
                 "services[0].health_check.interval");
    expect_error(SVC "    health_check: [http]\n", "services[0].health_check");
    expect_error(SVC "    circuit_breakers: {max_requests: lots}\n",
                 "services[0].circuit_breakers.max_requests");
    expect_error(SVC "    circuit_breakers: {max_retries: [1]}\n",
                 "services[0].circuit_breakers.max_retries");
}

Test(config_health, out_of_range)
{
    expect_error(SVC "    outlier_detection: {max_ejection_percent: 101}\n",
                 "services[0].outlier_detection.max_ejection_percent");
    expect_error(SVC "    outlier_detection: {consecutive_5xx: -1}\n",
                 "services[0].outlier_detection.consecutive_5xx");
    expect_error(SVC "    health_check: {type: http, unhealthy_threshold: 0}\n",
                 "services[0].health_check.unhealthy_threshold");
    expect_error(SVC "    health_check: {type: http, healthy_threshold: 101}\n",
                 "services[0].health_check.healthy_threshold");
    expect_error(SVC "    circuit_breakers: {max_requests: 0}\n",
                 "services[0].circuit_breakers.max_requests");
    expect_error(SVC "    circuit_breakers: {max_connections: 4294967296}\n",
                 "services[0].circuit_breakers.max_connections");
    expect_error(SVC "    circuit_breakers: {max_retries: -2}\n",
                 "services[0].circuit_breakers.max_retries");
}

Test(config_health, unknown_keys_and_values)
{
    expect_error(SVC "    outlier_detection: {consecutive_500: 3}\n",
                 "services[0].outlier_detection.consecutive_500: unknown field");
    expect_error(SVC "    health_check: {type: grpc}\n", "services[0].health_check.type");
    expect_error(SVC "    health_check: {type: http, paht: /x}\n",
                 "services[0].health_check.paht: unknown field");
    expect_error(SVC "    circuit_breakers: {max_request: 3}\n",
                 "services[0].circuit_breakers.max_request: unknown field");
}

#define ROUTE(extra)                                                                              \
    SVC "routes:\n  - name: api\n    rules:\n      - match: {prefix: /}\n"                        \
        "        destinations: [{service: api, weight: 100}]\n"                                  \
        "        timeout: 5s\n        retries: 2\n" extra

Test(config_health, per_try_timeout)
{
    mesh_config cfg;
    mesh_err err;
    cr_assert_eq(parse(ROUTE("        per_try_timeout: 250ms\n"), &cfg, &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_eq(cfg.routes[0].rules[0].per_try_timeout_ms, 250);
    mesh_config_free(&cfg);
    cr_assert_eq(parse(ROUTE(""), &cfg, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(cfg.routes[0].rules[0].per_try_timeout_ms, 0, "unset: none");
    mesh_config_free(&cfg);
    expect_error(ROUTE("        per_try_timeout: fast\n"),
                 "mesh.yaml:12: routes[0].rules[0].per_try_timeout");
    expect_error(ROUTE("        per_try_timeout: [1s]\n"), "routes[0].rules[0].per_try_timeout");
    expect_error(ROUTE("        per_try_timout: 1s\n"),
                 "routes[0].rules[0].per_try_timout: unknown field");
}
