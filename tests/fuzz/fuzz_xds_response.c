/* tests/fuzz/fuzz_xds_response.c — libFuzzer target: the sidecar's
 * DiscoveryResponse translation (sidecar/xds_translate.c, xds_sotw.c): the
 * bytes meshd sends, unpacked, each Any checked and named, the table for
 * its type rebuilt on an empty snapshot and frozen — what the xDS engine
 * does before it ACKs. Any input: no crash, a NACK always says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sidecar/dp_config.h"
#include "sidecar/xds_translate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void nacked(int rc, const mesh_err *err)
{
    if (rc != MESH_OK && !err->msg[0])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        log_set_level(LOG_ERROR);
        quiet = 1;
    }
    Envoy__Service__Discovery__V3__DiscoveryResponse *resp =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, size, data);
    if (!resp)
        return 0;
    enum xdsc_type t;
    if (!resp->type_url || xdsc_type_from_url(resp->type_url, &t) != 0 || t == XDSC_SDS) {
        envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
        return 0;
    }
    xdsc_resource *res = calloc(resp->n_resources ? resp->n_resources : 1, sizeof *res);
    if (!res)
        abort();
    size_t n = 0;
    mesh_err err = {0};
    int rc = MESH_OK;
    for (size_t i = 0; i < resp->n_resources && rc == MESH_OK; i++) {
        rc = xdsc_resource_from_any(t, resp->resources[i], &res[n], &err);
        nacked(rc, &err);
        if (rc == MESH_OK)
            n++;
    }
    if (rc == MESH_OK) {
        dp_config *cfg = dp_config_new();
        if (!cfg)
            abort();
        rc = xdsc_translate_table(cfg, t, res, n, &err);
        nacked(rc, &err);
        if (rc == MESH_OK) {
            mesh_err ferr = {0};
            nacked(dp_config_freeze(cfg, &ferr), &ferr);
        }
        dp_config_unref(cfg);
    }
    xdsc_resources_free(res, n);
    envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
    return 0;
}
