/* tests/unit/test_sidecar_h2_hdrs.c — the header lists an HTTP/2 exchange forwards
 * (sidecar/proxy_h2_xchg.c): pseudo-headers first, connection-specific and mesh-owned
 * fields dropped, TE only as "trailers", the 64 KiB / 128-field limits. */
#include <criterion/criterion.h>
#include <string.h>

#include "sidecar/proxy_h2.h"

static void add(dp_h2_hdrs *h, const char *n, const char *v)
{
    cr_assert_eq(dp_h2_hdrs_add(h, (const uint8_t *)n, strlen(n), (const uint8_t *)v,
                                strlen(v)), MESH_OK, "%s", n);
}

static const char *val(const dp_h2_hdrs *h, const char *n)
{
    const nghttp2_nv *nv = dp_h2_hdrs_find(h, n);
    return nv ? (const char *)nv->value : NULL;
}

Test(sidecar_h2_hdrs, forward_drops_connection_and_mesh_fields)
{
    dp_h2_hdrs in = {0}, out;
    add(&in, "content-type", "application/grpc");
    add(&in, ":method", "POST");
    add(&in, "x-forwarded-client-cert", "By=spoofed;URI=spiffe://evil/x");
    add(&in, "connection", "close");
    add(&in, "keep-alive", "5");
    add(&in, "te", "trailers");
    add(&in, ":path", "/pkg.Svc/Method");
    add(&in, "transfer-encoding", "chunked");
    add(&in, "upgrade", "h2c");
    add(&in, "grpc-timeout", "1S");
    const nghttp2_nv xfcc = {(uint8_t *)"x-forwarded-client-cert", (uint8_t *)"By=a;URI=b", 23, 10,
                             NGHTTP2_NV_FLAG_NONE};
    cr_assert_eq(dp_h2_hdrs_forward(&in, &xfcc, 1, &out), MESH_OK);
    cr_assert_eq(out.n, 6, "got %zu fields", out.n);
    cr_assert_str_eq((const char *)out.nv[0].name, ":method", "pseudo-headers first");
    cr_assert_str_eq((const char *)out.nv[1].name, ":path");
    cr_assert_str_eq(val(&out, "te"), "trailers");
    cr_assert_str_eq(val(&out, "grpc-timeout"), "1S");
    cr_assert_str_eq(val(&out, "x-forwarded-client-cert"), "By=a;URI=b", "ours, not the caller's");
    cr_assert_null(val(&out, "connection"));
    cr_assert_null(val(&out, "keep-alive"));
    cr_assert_null(val(&out, "transfer-encoding"));
    cr_assert_null(val(&out, "upgrade"));
    dp_h2_hdrs_free(&out);

    dp_h2_hdrs_free(&in);
    add(&in, "te", "gzip");
    cr_assert_eq(dp_h2_hdrs_forward(&in, NULL, 0, &out), MESH_OK);
    cr_assert_null(val(&out, "te"), "TE other than trailers is hop-by-hop");
    dp_h2_hdrs_free(&out);
    dp_h2_hdrs_free(&in);
}

Test(sidecar_h2_hdrs, limits)
{
    dp_h2_hdrs h = {0};
    char name[16];
    for (int i = 0; i < 128; i++) {
        snprintf(name, sizeof name, "x-f%d", i);
        add(&h, name, "v");
    }
    cr_assert_eq(dp_h2_hdrs_add(&h, (const uint8_t *)"x-one-more", 10, (const uint8_t *)"v", 1),
                 MESH_EINVAL, "field 129 is refused");
    dp_h2_hdrs_free(&h);

    static char big[40 * 1024];
    memset(big, 'a', sizeof big - 1);
    add(&h, "x-big", big);
    cr_assert_eq(dp_h2_hdrs_add(&h, (const uint8_t *)"x-big2", 6, (const uint8_t *)big,
                                strlen(big)), MESH_EINVAL, "over 64 KiB in all is refused");
    dp_h2_hdrs_free(&h);
}

Test(sidecar_h2_hdrs, grpc_timeout)
{
    cr_assert_eq(dp_h2_grpc_timeout_ms("1S", 2), 1000);
    cr_assert_eq(dp_h2_grpc_timeout_ms("250m", 4), 250);
    cr_assert_eq(dp_h2_grpc_timeout_ms("2M", 2), 120000);
    cr_assert_eq(dp_h2_grpc_timeout_ms("1H", 2), 3600000);
    cr_assert_eq(dp_h2_grpc_timeout_ms("1500u", 5), 2, "rounded up");
    cr_assert_eq(dp_h2_grpc_timeout_ms("1n", 2), 1, "never 0");
    cr_assert_eq(dp_h2_grpc_timeout_ms("99999999S", 9), 99999999000LL, "8 digits");
    cr_assert_eq(dp_h2_grpc_timeout_ms("999999999S", 10), -1, "9 digits");
    cr_assert_eq(dp_h2_grpc_timeout_ms("S", 1), -1);
    cr_assert_eq(dp_h2_grpc_timeout_ms("10", 2), -1, "no unit");
    cr_assert_eq(dp_h2_grpc_timeout_ms("1s", 2), -1, "units are case-sensitive");
    cr_assert_eq(dp_h2_grpc_timeout_ms("-1S", 3), -1);
}
