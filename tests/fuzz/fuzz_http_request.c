/* tests/fuzz/fuzz_http_request.c — libFuzzer target: the sidecar's HTTP/1.1
 * request reader (sidecar/http_msg.c + http_strict.c on http-parser) and the
 * request head writer (sidecar/http_wire.c). Any input: no crash, a refusal
 * always carries a status and a reason, and every head it accepts is written
 * (as the inbound side forwards it, XFCC added) into a head that the strict
 * reader accepts again. */
#include "tests/fuzz/fuzz_http.h"

#include "sidecar/http_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int write_request(struct evbuffer *out, const dp_http_head *h)
{
    dp_wire_req_opts o = {
        .inbound = true,
        .request_id = "00000000-0000-4000-8000-000000000000",
        .own_id = "spiffe://example.org/ns/default/sa/api",
        .peer_id = "spiffe://example.org/ns/default/sa/web",
    };
    return dp_wire_request_head(out, h, &o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_http_run(HTTP_REQUEST, data, size, write_request);
}
