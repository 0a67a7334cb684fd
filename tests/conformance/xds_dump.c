/* tests/conformance/xds_dump.c — writes what meshd's xDS compiler produces for the
 * unit-test fixture (tests/unit/test_xds_compile_fixture.h) to files, so that
 * xds_e2e.sh can decode them with the OFFICIAL Envoy protos (decode.js).
 *
 *   xds_dump <dir>   writes, per node (web, reviews, db) and type (LDS RDS CDS EDS),
 *                    <dir>/<node>.<TYPE>.bin: a DiscoveryResponse holding every
 *                    resource of the type as an Any, exactly as ADS would send it;
 *                    plus <dir>/secret.default.bin and <dir>/secret.ROOTCA.bin;
 *                    and the proxyless gRPC view (sds/compiler/xds_compile_proxyless.h) of a client
 *                    allowed to call reviews (grpc-web.<TYPE>.bin, identity web) and of one
 *                    allowed nothing (grpc-stranger.<TYPE>.bin); and web with reviews'
 *                    health_check, circuit_breakers and a per_try_timeout (web-knobs.*).
 * Built by xds_e2e.sh against a libmesh.a; not part of the Criterion binary. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sds/compiler/xds_compile.h"
#include "sds/compiler/xds_compile_workload.h"
#include "sds/compiler/xds_compile_proxyless.h"
#include "sds/compiler/xds_compile_secret.h"
#include "tests/unit/test_xds_compile_fixture.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"

static const char *const type_names[XDS_TYPE_COUNT] = {
    [XDS_CDS] = "CDS", [XDS_EDS] = "EDS", [XDS_LDS] = "LDS", [XDS_RDS] = "RDS",
};

static int write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "xds_dump: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = len > 0 ? fwrite(buf, 1, len, f) : 0;
    if (fclose(f) != 0 || n != len) {
        fprintf(stderr, "xds_dump: %s: write failed\n", path);
        return -1;
    }
    return 0;
}

/* The type set as one DiscoveryResponse (what the ADS stream sends). */
static int dump_type(const char *dir, const char *node, const xds_snapshot *s, enum xds_type t)
{
    const xds_type_set *set = &s->types[t];
    Google__Protobuf__Any *anys = calloc(set->n + 1, sizeof *anys);
    Google__Protobuf__Any **ptrs = calloc(set->n + 1, sizeof *ptrs);
    if (anys == NULL || ptrs == NULL) {
        free(anys);
        free(ptrs);
        fprintf(stderr, "xds_dump: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < set->n; i++) {
        google__protobuf__any__init(&anys[i]);
        anys[i].type_url = (char *)xds_type_url(t);
        anys[i].value.data = set->items[i].data;
        anys[i].value.len = set->items[i].len;
        ptrs[i] = &anys[i];
    }
    Envoy__Service__Discovery__V3__DiscoveryResponse resp;
    envoy__service__discovery__v3__discovery_response__init(&resp);
    resp.version_info = (char *)set->version;
    resp.type_url = (char *)xds_type_url(t);
    resp.nonce = "1";
    resp.n_resources = set->n;
    resp.resources = ptrs;
    size_t len = envoy__service__discovery__v3__discovery_response__get_packed_size(&resp);
    uint8_t *buf = malloc(len + 1);
    int rc = -1;
    if (buf != NULL) {
        envoy__service__discovery__v3__discovery_response__pack(&resp, buf);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.%s.bin", dir, node, type_names[t]);
        rc = write_file(path, buf, len);
    }
    free(buf);
    free(anys);
    free(ptrs);
    return rc;
}

static int dump_node_health(const char *dir, const char *node, const mesh_config *cfg,
                            const char *id, const xds_health *health)
{
    xds_snapshot s;
    mesh_err err = { 0 };
    if (xds_compile_node_health(cfg, health, id, &s, &err) != MESH_OK) {
        fprintf(stderr, "xds_dump: compile %s: %s\n", id, err.msg);
        return -1;
    }
    int rc = 0;
    for (int t = 0; t < XDS_TYPE_COUNT && rc == 0; t++)
        rc = dump_type(dir, node, &s, (enum xds_type)t);
    xds_snapshot_free(&s);
    return rc;
}

static int dump_node(const char *dir, const char *node, const mesh_config *cfg, const char *id)
{
    return dump_node_health(dir, node, cfg, id, NULL);
}

/* web's view while meshd serves reviews-1 UNHEALTHY (its sidecar away past
 * --endpoint-grace): LbEndpoint.health_status = UNHEALTHY, checked with the
 * official protos as "web-health". */
static int dump_web_health(const char *dir, const mesh_config *cfg)
{
    const char *down[] = { "reviews-1" };
    xds_health h;
    mesh_err err = { 0 };
    if (xds_health_build(&h, down, 1, &err) != MESH_OK)
        return -1;
    int rc = dump_node_health(dir, "web-health", cfg, FX_WEB_ID, &h);
    xds_health_free(&h);
    return rc;
}

/* The proxyless view of identity id (xds_client_check.js checks it). */
static int dump_proxyless(const char *dir, const char *node, const mesh_config *cfg,
                          const char *id)
{
    xds_snapshot s;
    mesh_err err = { 0 };
    if (xds_compile_proxyless(cfg, id, &s, &err) != MESH_OK) {
        fprintf(stderr, "xds_dump: proxyless compile %s: %s\n", id, err.msg);
        return -1;
    }
    int rc = 0;
    for (int t = 0; t < XDS_TYPE_COUNT && rc == 0; t++)
        rc = dump_type(dir, node, &s, (enum xds_type)t);
    xds_snapshot_free(&s);
    return rc;
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

#define FAKE_CERT "-----BEGIN CERTIFICATE-----\nMIIBdump\n-----END CERTIFICATE-----\n"
#define FAKE_CRL "-----BEGIN X509 CRL-----\nMIIBdumpcrl\n-----END X509 CRL-----\n"

static int dump_secrets(const char *dir)
{
    uint8_t *buf;
    size_t len;
    mesh_err err = { 0 };
    char path[4096];
    if (xds_secret_tls_certificate(XDS_SECRET_DEFAULT, FAKE_CERT, strlen(FAKE_CERT), &buf, &len,
                                   &err) != MESH_OK) {
        fprintf(stderr, "xds_dump: %s\n", err.msg);
        return -1;
    }
    snprintf(path, sizeof path, "%s/secret.default.bin", dir);
    int rc = write_file(path, buf, len);
    free(buf);
    if (rc != 0)
        return rc;
    if (xds_secret_validation_context(XDS_SECRET_ROOTCA, FAKE_CERT FAKE_CERT,
                                      2 * strlen(FAKE_CERT), FAKE_CRL FAKE_CRL,
                                      2 * strlen(FAKE_CRL), &buf, &len, &err) != MESH_OK) {
        fprintf(stderr, "xds_dump: %s\n", err.msg);
        return -1;
    }
    snprintf(path, sizeof path, "%s/secret.ROOTCA.bin", dir);
    rc = write_file(path, buf, len);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: xds_dump <dir>\n");
        return 2;
    }
    xds_fixture f;
    xds_fixture_init(&f);
    if (dump_node(argv[1], "web", &f.cfg, FX_WEB_ID) != 0 ||
        dump_node(argv[1], "reviews", &f.cfg, FX_REVIEWS_ID) != 0 ||
        dump_node(argv[1], "db", &f.cfg, FX_DB_ID) != 0 || dump_secrets(argv[1]) != 0 ||
        dump_web_health(argv[1], &f.cfg) != 0)
        return 1;
    xds_fixture k;
    fixture_knobs(&k);
    if (dump_node(argv[1], "web-knobs", &k.cfg, FX_WEB_ID) != 0)
        return 1;
    if (dump_proxyless(argv[1], "grpc-web", &f.cfg, FX_WEB_ID) != 0 ||
        dump_proxyless(argv[1], "grpc-stranger", &f.cfg, "spiffe://mesh.test/ns/default/sa/stranger") != 0)
        return 1;
    /* web and reviews as grpc services: the HTTP/2 shapes (HCM http2_protocol_options,
     * ALPN, the clusters' HttpProtocolOptions) decoded and validated like the rest. */
    xds_fixture_init(&f);
    f.services[0].protocol = MESH_PROTO_GRPC;
    f.services[1].protocol = MESH_PROTO_GRPC;
    if (dump_node(argv[1], "h2-web", &f.cfg, FX_WEB_ID) != 0 ||
        dump_node(argv[1], "h2-reviews", &f.cfg, FX_REVIEWS_ID) != 0)
        return 1;
    return 0;
}
