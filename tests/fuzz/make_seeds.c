/* tests/fuzz/make_seeds.c — writes the binary seed corpora of the protobuf
 * fuzz targets (the text ones are committed as written): SotW and Delta
 * DiscoveryRequests from our encoders, and DiscoveryResponses of every type
 * the compiler produces for the example mesh's workloads. Run by hand
 * (docs/fuzzing.md) to regenerate tests/fuzz/corpus/{ads_sotw,ads_delta,
 * xds_response}/; not part of any build.
 *
 *   cc -I. -Ibuild/gen tests/fuzz/make_seeds.c build/libmesh.a $(LDLIBS) -o /tmp/make_seeds
 *   /tmp/make_seeds examples/mesh.yaml tests/fuzz/corpus */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/mesh_config.h"
#include "sds/compiler/xds_compile.h"
#include "sds/protocol/ads_codec.h"
#include "sds/protocol/ads_delta_codec.h"

static void put(const char *dir, const char *target, const char *name, const uint8_t *b,
                size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void must(int rc, const mesh_err *err)
{
    if (rc != MESH_OK) {
        fprintf(stderr, "make_seeds: %s\n", err->msg);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_seeds MESH.yaml CORPUS_DIR\n");
        return 2;
    }
    const char *dir = argv[2];
    mesh_err err = {0};
    mesh_config cfg;
    memset(&cfg, 0, sizeof cfg);
    must(mesh_config_parse_file(argv[1], &cfg, &err), &err);
    uint8_t *b;
    size_t n;
    const char *names[] = {"default", "ROOTCA", "spiffe://example.org/ns/default/sa/web"};
    must(ads_request_encode("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                            "", "", names, 3, "sidecar~127.0.0.1~web-1", NULL, &b, &n, &err),
         &err);
    put(dir, "ads_sotw", "sds_first", b, n);
    free(b);
    must(ads_request_encode("type.googleapis.com/envoy.config.listener.v3.Listener", "v1", "n1",
                            NULL, 0, NULL, "listener 'x': bad", &b, &n, &err),
         &err);
    put(dir, "ads_sotw", "lds_nack", b, n);
    free(b);
    const char *vers[] = {"a1", "b2"};
    ads_delta_request_args a = {
        .type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        .subscribe = names, .n_subscribe = 2, .unsubscribe = names + 2, .n_unsubscribe = 1,
        .init_names = names, .init_versions = vers, .n_init = 2, .nonce = "",
        .node_id = "sidecar~127.0.0.1~web-1"};
    must(ads_delta_request_encode(&a, &b, &n, &err), &err);
    put(dir, "ads_delta", "cds_first", b, n);
    free(b);
    ads_delta_request_args nack = {.type_url = "type.googleapis.com/envoy.config.listener.v3.Listener",
                                   .nonce = "7", .error_message = "no"};
    must(ads_delta_request_encode(&nack, &b, &n, &err), &err);
    put(dir, "ads_delta", "lds_nack", b, n);
    free(b);
    for (size_t w = 0; w < cfg.n_workloads; w++) {
        xds_snapshot snap;
        memset(&snap, 0, sizeof snap);
        must(xds_compile_node(&cfg, cfg.workloads[w].spiffe_id, &snap, &err), &err);
        for (int t = 0; t < XDS_TYPE_COUNT; t++) {
            const xds_type_set *set = &snap.types[t];
            const xds_resource **items = calloc(set->n ? set->n : 1, sizeof *items);
            for (size_t i = 0; i < set->n; i++)
                items[i] = &set->items[i];
            must(ads_response_encode(xds_type_url(t), set->version, "1", items, set->n, "meshd",
                                     &b, &n, &err),
                 &err);
            char name[64];
            static const char *const short_names[] = {"cds", "eds", "lds", "rds"};
            snprintf(name, sizeof name, "%s_w%zu", short_names[t], w);
            put(dir, "xds_response", name, b, n);
            free(b);
            free(items);
        }
        xds_snapshot_free(&snap);
    }
    mesh_config_free(&cfg);
    return 0;
}
