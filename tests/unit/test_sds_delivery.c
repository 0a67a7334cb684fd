/* tests/unit/test_sds_delivery.c — ads_delivery_check: a config whose compiled
 * response for some workload is over the delivery limit is refused, naming the
 * workload, its SPIFFE ID, the type and the size; one that fits passes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xds_wire.h"
#include "config/mesh_config.h"
#include "sds/protocol/ads_delivery.h"

static const char base[] =
    "services:\n"
    "%s"
    "  - {name: web, protocol: http, port: 18080}\n"
    "workloads:\n"
    "  - {name: web-1, spiffe_id: spiffe://example.org/ns/demo/sa/web, service: web,\n"
    "     inbound: 127.0.0.1:15001, app: 127.0.0.1:18080, outbound: 127.0.0.1:15101}\n";

/* A config with n extra HTTP services, all reachable from web's outbound. */
static void parse_with_services(size_t n, mesh_config *cfg)
{
    size_t cap = n * 64 + 1;
    char *extra = calloc(1, cap);
    cr_assert_not_null(extra);
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(extra + off, cap - off,
                                "  - {name: s%05zu, protocol: http, port: 18080}\n", i);
    size_t len = strlen(base) + off + 1;
    char *yaml = malloc(len);
    cr_assert_not_null(yaml);
    snprintf(yaml, len, base, extra);
    mesh_err err = {0};
    cr_assert_eq(mesh_config_parse_buffer("mesh.yaml", yaml, strlen(yaml), cfg, &err), MESH_OK,
                 "%s", err.msg);
    free(extra);
    free(yaml);
}

Test(delivery, a_config_that_fits_passes)
{
    mesh_config cfg = {0};
    parse_with_services(10, &cfg);
    mesh_err err = {0};
    cr_assert_eq(ads_delivery_check(&cfg, XDS_WIRE_MAX_MESSAGE, &err), MESH_OK, "%s", err.msg);
    mesh_config_free(&cfg);
}

Test(delivery, an_over_limit_response_is_named)
{
    mesh_config cfg = {0};
    parse_with_services(200, &cfg);   /* ~65 KB of CDS: over a 32 KiB limit */
    mesh_err err = {0};
    cr_assert_eq(ads_delivery_check(&cfg, 32 * 1024, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "workload web-1 (spiffe://example.org/ns/demo/sa/web): its CDS "
                              "response would be "),
              "%s", err.msg);
    cr_assert(strstr(err.msg, "over the 32768-byte delivery limit"), "%s", err.msg);
    /* The same config fits the real limit. */
    cr_assert_eq(ads_delivery_check(&cfg, XDS_WIRE_MAX_MESSAGE, &err), MESH_OK, "%s", err.msg);
    mesh_config_free(&cfg);
}

Test(delivery, the_headroom_counts)
{
    mesh_config cfg = {0};
    parse_with_services(0, &cfg);
    mesh_err err = {0};
    /* A limit of only the headroom leaves no room for any response. */
    cr_assert_eq(ads_delivery_check(&cfg, ADS_DELIVERY_HEADROOM, &err), MESH_EINVAL);
    mesh_config_free(&cfg);
}

/* Replicas sharing an identity are served per instance (their union is no
 * sidecar's view, and does not compile: same listener names, other addresses),
 * so the check compiles each replica alone and accepts them. */
Test(delivery, replicas_sharing_an_identity_are_checked_one_by_one)
{
    static const char yaml[] =
        "services:\n"
        "  - {name: web, protocol: http, port: 18080}\n"
        "workloads:\n"
        "  - {name: web-1, spiffe_id: spiffe://example.org/ns/demo/sa/web, service: web,\n"
        "     inbound: 127.0.0.1:15001, app: 127.0.0.1:18080, outbound: 127.0.0.1:15101}\n"
        "  - {name: web-2, spiffe_id: spiffe://example.org/ns/demo/sa/web, service: web,\n"
        "     inbound: 127.0.0.1:15002, app: 127.0.0.1:18081, outbound: 127.0.0.1:15102}\n";
    mesh_config cfg = {0};
    mesh_err err = {0};
    cr_assert_eq(mesh_config_parse_buffer("mesh.yaml", yaml, strlen(yaml), &cfg, &err), MESH_OK,
                 "%s", err.msg);
    cr_assert_eq(ads_delivery_check(&cfg, XDS_WIRE_MAX_MESSAGE, &err), MESH_OK, "%s", err.msg);
    /* and an over-limit replica is named by its own name */
    cr_assert_eq(ads_delivery_check(&cfg, 2048, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "workload web-1 (spiffe://example.org/ns/demo/sa/web)"), "%s",
              err.msg);
    mesh_config_free(&cfg);
}
