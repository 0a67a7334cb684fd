/* tests/unit/test_xds_compile_subsets.c — subsets (issue 13): workloads carry labels,
 * a service declares subsets by label selector, a route destination names a service
 * and a subset. Parsed from YAML, validated (unknown subset: file:line:field and "did
 * you mean"; a subset selecting nothing: a warning), compiled and decoded: one
 * outbound|<svc>|<subset> cluster per subset a route names, its EDS holding only the
 * workloads the selector matches, the weighted route naming those clusters. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/mesh_config.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "sds/compiler/xds_compile.h"

#define TD "spiffe://example.org/ns/demo/sa/"
#define MESH_HEAD                                                                          \
    "services:\n"                                                       /* 1 */            \
    "  - {name: web, protocol: http, port: 8080}\n"                     /* 2 */            \
    "  - name: backend\n"                                               /* 3 */            \
    "    protocol: http\n"                                              /* 4 */            \
    "    port: 9000\n"                                                  /* 5 */            \
    "    subsets:\n"                                                    /* 6 */            \
    "      - {name: v1, labels: {version: v1}}\n"                       /* 7 */            \
    "      - {name: v2, labels: {version: v2}}\n"                       /* 8 */            \
    "workloads:\n"                                                      /* 9 */            \
    "  - {name: web-1, spiffe_id: \"" TD "web\", service: web, inbound: \"127.0.0.1:15001\", " \
    "app: \"127.0.0.1:18001\", outbound: \"127.0.0.1:15101\"}\n"        /* 10 */           \
    "  - {name: backend-v1-1, spiffe_id: \"" TD "backend\", service: backend, "              \
    "labels: {version: v1}, inbound: \"127.0.0.1:15011\", app: \"127.0.0.1:18011\"}\n"       \
    "  - {name: backend-v1-2, spiffe_id: \"" TD "backend\", service: backend, "              \
    "labels: {version: v1}, inbound: \"127.0.0.1:15012\", app: \"127.0.0.1:18012\"}\n"       \
    "  - {name: backend-v2-1, spiffe_id: \"" TD "backend\", service: backend, "              \
    "labels: {version: v2}, inbound: \"127.0.0.1:15021\", app: \"127.0.0.1:18021\"}\n"       \
    "authorization:\n"                                                  /* 14 */           \
    "  - {service: backend, allow: [\"" TD "web\"]}\n"                  /* 15 */           \
    "routes:\n"                                                         /* 16 */           \
    "  - name: backend\n"                                               /* 17 */           \
    "    rules:\n"                                                      /* 18 */           \
    "      - match: {prefix: /}\n"                                      /* 19 */

static void parse(const char *yaml, mesh_config *cfg)
{
    mesh_err err = {0};
    cr_assert_eq(mesh_config_parse_buffer("mesh.yaml", yaml, strlen(yaml), cfg, &err), MESH_OK,
                 "parse: %s", err.msg);
}

static uint32_t n_endpoints(const xds_snapshot *s, const char *name, int port_of_first)
{
    const xds_resource *r = xds_snapshot_find(s, XDS_EDS, name);
    cr_assert_not_null(r, "no EDS %s", name);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla =
        envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, r->len, r->data);
    cr_assert_not_null(cla);
    cr_assert_str_eq(cla->cluster_name, name);
    uint32_t n = cla->n_endpoints ? (uint32_t)cla->endpoints[0]->n_lb_endpoints : 0;
    if (port_of_first && n)
        cr_assert_eq(cla->endpoints[0]->lb_endpoints[0]->endpoint->address->socket_address
                         ->port_value,
                     (uint32_t)port_of_first, "%s: the selected workload's inbound", name);
    envoy__config__endpoint__v3__cluster_load_assignment__free_unpacked(cla, NULL);
    return n;
}

Test(xds_compile_subsets, per_subset_clusters_and_endpoints)
{
    mesh_config cfg;
    parse(MESH_HEAD "        destinations: [{service: backend, subset: v1, weight: 90}, "
                    "{service: backend, subset: v2, weight: 10}]\n", &cfg);
    mesh_err err = {0};
    cr_assert_eq(mesh_config_validate(&cfg, "example.org", &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(cfg.workloads[1].n_labels, 1);
    cr_assert_str_eq(cfg.workloads[1].labels[0].key, "version");
    xds_snapshot s;
    cr_assert_eq(xds_compile_node(&cfg, TD "web", &s, &err), MESH_OK, "%s", err.msg);

    cr_assert_not_null(xds_snapshot_find(&s, XDS_CDS, "outbound|backend|v1"));
    cr_assert_not_null(xds_snapshot_find(&s, XDS_CDS, "outbound|backend|v2"));
    const xds_resource *r = xds_snapshot_find(&s, XDS_CDS, "outbound|backend|v1");
    Envoy__Config__Cluster__V3__Cluster *c =
        envoy__config__cluster__v3__cluster__unpack(NULL, r->len, r->data);
    cr_assert_not_null(c);
    cr_assert_eq(c->cluster_discovery_type_case,
                 ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE);
    cr_assert_eq(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
    cr_assert_str_eq(c->eds_cluster_config->service_name, "outbound|backend|v1");
    envoy__config__cluster__v3__cluster__free_unpacked(c, NULL);
    cr_assert_eq(n_endpoints(&s, "outbound|backend|v1", 15011), 2, "the two v1 replicas");
    cr_assert_eq(n_endpoints(&s, "outbound|backend|v2", 15021), 1, "v2 only");
    cr_assert_eq(n_endpoints(&s, "outbound|backend", 0), 3, "the whole service: all three");

    r = xds_snapshot_find(&s, XDS_RDS, "outbound|http");
    cr_assert_not_null(r);
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        envoy__config__route__v3__route_configuration__unpack(NULL, r->len, r->data);
    const Envoy__Config__Route__V3__RouteAction *a = NULL;
    for (size_t v = 0; v < rc->n_virtual_hosts; v++)
        if (strcmp(rc->virtual_hosts[v]->name, "route|backend") == 0)
            a = rc->virtual_hosts[v]->routes[0]->route;
    cr_assert_not_null(a, "the backend route");
    cr_assert_eq(a->weighted_clusters->n_clusters, 2);
    cr_assert_str_eq(a->weighted_clusters->clusters[0]->name, "outbound|backend|v1");
    cr_assert_eq(a->weighted_clusters->clusters[0]->weight->value, 90);
    cr_assert_str_eq(a->weighted_clusters->clusters[1]->name, "outbound|backend|v2");
    cr_assert_eq(a->weighted_clusters->clusters[1]->weight->value, 10);
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    xds_snapshot_free(&s);
    mesh_config_free(&cfg);
}

Test(xds_compile_subsets, unknown_subset_names_the_line_and_suggests)
{
    mesh_config cfg;
    parse(MESH_HEAD "        destinations: [{service: backend, subset: v3, weight: 90},\n"
                    "                       {service: backend, subset: v2, weight: 10}]\n", &cfg);
    mesh_err err = {0};
    cr_assert_eq(mesh_config_validate(&cfg, "example.org", &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "mesh.yaml:20: routes[0].rules[0].destinations[0].subset"), "%s",
              err.msg);
    cr_assert(strstr(err.msg, "has no subset \"v3\""), "%s", err.msg);
    cr_assert(strstr(err.msg, "did you mean \"v1\"") || strstr(err.msg, "did you mean \"v2\""),
              "%s", err.msg);
    cr_assert(strstr(err.msg, "v1, v2"), "lists the subsets there are: %s", err.msg);
    mesh_config_free(&cfg);
}

Test(xds_compile_subsets, bad_labels_and_empty_subsets)
{
    mesh_config cfg;
    mesh_err err = {0};
    const char *bad = "services:\n  - {name: b, protocol: http, port: 1, subsets: "
                      "[{name: v1, labels: {\"-bad\": v1}}]}\n";
    cr_assert_eq(mesh_config_parse_buffer("mesh.yaml", bad, strlen(bad), &cfg, &err),
                 MESH_EINVAL);
    cr_assert(strstr(err.msg, "mesh.yaml:2"), "%s", err.msg);
    cr_assert(strstr(err.msg, "labels"), "%s", err.msg);
    const char *none = "services:\n  - {name: b, protocol: http, port: 1, subsets: "
                       "[{name: v1}]}\n";
    cr_assert_eq(mesh_config_parse_buffer("mesh.yaml", none, strlen(none), &cfg, &err),
                 MESH_EINVAL, "a subset needs a selector");
    cr_assert(strstr(err.msg, "labels"), "%s", err.msg);

    /* valid, but selects nothing: a warning, not an error */
    parse(MESH_HEAD "        destinations: [{service: backend}]\n"
                    , &cfg);
    cfg.services[1].subsets[1].labels[0].value[1] = '9'; /* version: v9 */
    cr_assert_eq(mesh_config_validate(&cfg, "example.org", &err), MESH_OK, "%s", err.msg);
    mesh_config_warnings w = {0};
    cr_assert_eq(mesh_config_warn(&cfg, &w, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(w.n, 1);
    cr_assert(strstr(w.msgs[0], "selects no workload"), "%s", w.msgs[0]);
    mesh_config_warnings_free(&w);
    mesh_config_free(&cfg);
}

/* health_check and circuit_breakers are enforced by mesh-sidecar: apply no
 * longer warns that they are not (it did while only Envoy applied them). */
Test(xds_subsets, enforced_health_knobs_are_not_warned_about)
{
    const char *y = "services:\n"
                    "  - {name: a, protocol: http, port: 1,\n"
                    "     health_check: {type: tcp}, circuit_breakers: {max_requests: 5}}\n"
                    "  - {name: b, protocol: http, port: 2}\n";
    mesh_config cfg = {0};
    mesh_err err = {0};
    cr_assert_eq(mesh_config_parse_buffer("mesh.yaml", y, strlen(y), &cfg, &err), MESH_OK, "%s",
                 err.msg);
    mesh_config_warnings w = {0};
    cr_assert_eq(mesh_config_warn(&cfg, &w, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(w.n, 0, "%s", w.n ? w.msgs[0] : "");
    mesh_config_warnings_free(&w);
    mesh_config_free(&cfg);
}
