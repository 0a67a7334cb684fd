/* tests/conformance/xds_sidecar_check.c — what meshd compiles, mesh-sidecar accepts.
 *
 * Feeds every snapshot of the unit-test fixture (tests/unit/test_xds_compile_fixture.h),
 * and variants of it (services without workloads, IPv6 endpoints, header presence and
 * exact-path rules), through the sidecar's own xDS translator and dp_config_freeze,
 * exactly as its ADS client does on a response. A refusal there would be a NACK in
 * production. Built and run by xds_e2e.sh when the library includes sidecar/. */
#include <stdio.h>
#include <string.h>

#include "sds/compiler/xds_compile.h"
#include "sds/compiler/xds_compile_workload.h"
#include "sidecar/dp_config.h"
#include "sidecar/xds_translate.h"
#include "tests/unit/test_xds_compile_fixture.h"

static const enum xdsc_type to_sidecar[XDS_TYPE_COUNT] = {
    [XDS_CDS] = XDSC_CDS, [XDS_EDS] = XDSC_EDS, [XDS_LDS] = XDSC_LDS, [XDS_RDS] = XDSC_RDS,
};

/* 0 if the sidecar takes every type of the node's snapshot and the result freezes. */
static int check_node_health(const char *variant, const mesh_config *cfg, const char *id,
                             const xds_health *health, dp_health want_reviews)
{
    xds_snapshot s;
    mesh_err err = { 0 };
    if (xds_compile_node_health(cfg, health, id, &s, &err) != MESH_OK) {
        printf("FAIL %s %s: compile: %s\n", variant, id, err.msg);
        return 1;
    }
    dp_config *dp = dp_config_new();
    int bad = dp == NULL;
    for (int t = 0; !bad && t < XDS_TYPE_COUNT; t++) {
        const xds_type_set *set = &s.types[t];
        xdsc_resource res[64];
        if (set->n > sizeof res / sizeof res[0]) {
            printf("FAIL %s: fixture too large\n", variant);
            bad = 1;
            break;
        }
        for (size_t i = 0; i < set->n; i++)
            res[i] = (xdsc_resource){ set->items[i].name, set->items[i].data, set->items[i].len };
        if (xdsc_translate_table(dp, to_sidecar[t], res, set->n, &err) != MESH_OK) {
            printf("FAIL %s %s: sidecar refuses %s: %s\n", variant, id, xds_type_url(t), err.msg);
            bad = 1;
        }
    }
    if (!bad && dp_config_freeze(dp, &err) != MESH_OK) {
        printf("FAIL %s %s: sidecar config does not freeze: %s\n", variant, id, err.msg);
        bad = 1;
    }
    const dp_cluster *rc = bad ? NULL : dp_config_find_cluster(dp, "outbound|reviews", NULL);
    if (rc) {
        size_t n = 0;
        const dp_endpoint *eps = dp_config_cluster_endpoints(dp, rc, &n);
        for (size_t i = 0; i < n; i++)
            if (eps[i].health != want_reviews) {
                printf("FAIL %s %s: reviews endpoint %s is %s in the sidecar, want %s\n", variant,
                       id, eps[i].address, dp_health_name(eps[i].health),
                       dp_health_name(want_reviews));
                bad = 1;
            }
    }
    dp_config_unref(dp);
    xds_snapshot_free(&s);
    return bad;
}

static int check_node(const char *variant, const mesh_config *cfg, const char *id)
{
    return check_node_health(variant, cfg, id, NULL, DP_HEALTH_HEALTHY);
}

static int check_all(const char *variant, const mesh_config *cfg)
{
    const char *ids[] = { FX_WEB_ID, FX_REVIEWS_ID, FX_DB_ID };
    int bad = 0;
    for (size_t i = 0; i < 3; i++)
        bad |= check_node(variant, cfg, ids[i]);
    if (!bad)
        printf("ok   %s\n", variant);
    return bad;
}

/* The fixture with reviews' endpoint-health knobs set (issue 13): an HTTP
 * health_check, circuit_breakers and a per_try_timeout on the canary rule. */
static void fixture_knobs(xds_fixture *f)
{
    xds_fixture_init(f);
    f->services[1].health_check = (mesh_health_check){
        .kind = MESH_HC_HTTP, .path = "/healthz", .interval_ms = 5000, .timeout_ms = 1000,
        .unhealthy_threshold = 3, .healthy_threshold = 2 };
    f->services[1].circuit_breakers = (mesh_circuit_breakers){
        .max_connections = 10, .max_pending_requests = 20, .max_requests = 50, .max_retries = 2 };
    f->rules[0].per_try_timeout_ms = 500;
}

int main(void)
{
    int bad = 0;
    xds_fixture f;
    xds_fixture_init(&f);
    bad |= check_all("fixture", &f.cfg);

    xds_fixture_init(&f);
    f.cfg.n_workloads = 1;   /* reviews and db have no workloads: fail-closed SANs */
    bad |= check_all("services without workloads", &f.cfg);

    xds_fixture_init(&f);
    f.workloads[1].inbound = "[::1]:15002";
    f.hdrs[0] = (mesh_header_matcher){ .name = "x-debug", .kind = MESH_HDR_PRESENT };
    f.rules[1].prefix = NULL;
    f.rules[1].path = "/exact";
    bad |= check_all("ipv6, present header, exact path", &f.cfg);

    fixture_knobs(&f);
    bad |= check_all("health_check, circuit_breakers, per_try_timeout", &f.cfg);

    xds_fixture_init(&f);
    f.authz[0].n_allow = 0;
    f.cfg.n_authz = 1;        /* nobody may call reviews or db */
    bad |= check_all("deny-all services", &f.cfg);

    xds_fixture_init(&f);
    f.services[0].protocol = MESH_PROTO_GRPC;
    f.services[1].protocol = MESH_PROTO_HTTP2;
    bad |= check_all("grpc and http2 services (HTTP/2 shapes)", &f.cfg);

    /* meshd's endpoint health reaches the sidecar's host records. */
    xds_fixture_init(&f);
    const char *down[] = { "reviews-1" };
    xds_health h;
    mesh_err err = { 0 };
    if (xds_health_build(&h, down, 1, &err) != MESH_OK) {
        bad = 1;
    } else {
        int b = check_node_health("endpoint health", &f.cfg, FX_WEB_ID, &h, DP_HEALTH_UNHEALTHY);
        if (!b)
            printf("ok   endpoint health: UNHEALTHY reaches the sidecar\n");
        bad |= b;
        xds_health_free(&h);
    }

    printf(bad ? "xds_sidecar_check: FAILED\n" : "xds_sidecar_check: the sidecar accepts all\n");
    return bad;
}
