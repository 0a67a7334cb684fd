/* tests/fuzz/fuzz_http_response.c — libFuzzer target: the sidecar's HTTP/1.1
 * response reader (what an upstream application sends back: the same
 * smuggling rules as requests) and the response head writer. Any input: no
 * crash, a refusal carries a reason, and every head it accepts is written
 * for the downstream client into a head the strict reader accepts again. */
#include "tests/fuzz/fuzz_http.h"

#include "sidecar/http_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int write_response(struct evbuffer *out, const dp_http_head *h)
{
    bool keep_alive = true, chunked = false;
    return dp_wire_response_head(out, h, false, false, &keep_alive, &chunked);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_http_run(HTTP_RESPONSE, data, size, write_response);
}
