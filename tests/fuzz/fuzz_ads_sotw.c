/* tests/fuzz/fuzz_ads_sotw.c — libFuzzer target: meshd's SotW
 * DiscoveryRequest decoder (sds/protocol/ads_codec.c), the first code that
 * reads what a (possibly hostile) xDS client sends. Any input: no crash, a
 * refusal says why, and what decodes has the bounded shape the state
 * machine relies on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sds/protocol/ads_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ads_decoded d;
    memset(&d, 0, sizeof d);
    mesh_err err = {0};
    if (ads_request_decode(data, size, &d, &err) != MESH_OK) {
        if (!err.msg[0])
            abort();
        return 0;
    }
    if (!d.node_id || !d.user_agent || d.req.n_names > ADS_MAX_NAMES)
        abort();
    for (size_t i = 0; i < d.req.n_names; i++)
        if (!d.req.names[i] || strlen(d.req.names[i]) > ADS_MAX_NAME_LEN)
            abort();
    ads_decoded_free(&d);
    return 0;
}
