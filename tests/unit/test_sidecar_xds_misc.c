/* tests/unit/test_sidecar_xds_misc.c — the xDS client's small pieces: backoff bounds
 * (full jitter between a floor and a cap), renewal timing, join token files,
 * base64, refusal classification, and persisted-file damage. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sidecar/xds_backoff.h"
#include "sidecar/xds_ca.h"
#include "sidecar/xds_client.h"
#include "sidecar/xds_persist.h"
#include "test_sidecar_xds_util.h"

Test(sidecar_xds_backoff, grows_to_the_cap_and_stays_within_bounds)
{
    xdsc_backoff b;
    xdsc_backoff_init(&b, 250, 30000, 42);
    int64_t expect_ceiling[] = {250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    for (size_t i = 0; i < sizeof expect_ceiling / sizeof *expect_ceiling; i++) {
        cr_assert_eq(xdsc_backoff_ceiling(&b), expect_ceiling[i], "attempt %zu", i);
        int64_t d = xdsc_backoff_next(&b);
        cr_assert(d >= 250 && d <= expect_ceiling[i], "attempt %zu: %lld", i, (long long)d);
    }
    /* Many more attempts never overflow or exceed the cap. */
    for (int i = 0; i < 1000; i++) {
        int64_t d = xdsc_backoff_next(&b);
        cr_assert(d >= 250 && d <= 30000, "%lld", (long long)d);
    }
    xdsc_backoff_reset(&b);
    cr_assert_eq(xdsc_backoff_ceiling(&b), 250);
    cr_assert_eq(xdsc_backoff_next(&b), 250, "the first window is exactly the floor");
}

Test(sidecar_xds_backoff, full_jitter_spreads_a_fleet)
{
    /* 200 sidecars losing meshd at once, each at its 8th attempt: their delays
     * must spread over the window, not cluster at one value. */
    int buckets[10] = {0};
    for (uint64_t seed = 1; seed <= 200; seed++) {
        xdsc_backoff b;
        xdsc_backoff_init(&b, 250, 30000, seed * 7919);
        int64_t d = 0;
        for (int i = 0; i < 8; i++)
            d = xdsc_backoff_next(&b);
        cr_assert(d >= 250 && d <= 30000);
        buckets[(d - 250) * 10 / (30000 - 250 + 1)]++;
    }
    for (int i = 0; i < 10; i++)
        cr_assert(buckets[i] >= 5, "bucket %d has %d of 200", i, buckets[i]);
}

Test(sidecar_xds_backoff, bad_bounds_are_clamped)
{
    xdsc_backoff b;
    xdsc_backoff_init(&b, 0, -5, 0);
    cr_assert_eq(b.min_ms, 1);
    cr_assert_eq(b.max_ms, 1);
    cr_assert_eq(xdsc_backoff_next(&b), 1);
    cr_assert_eq(xdsc_backoff_uniform(&b, 10, 10), 10);
    cr_assert_eq(xdsc_backoff_uniform(&b, 10, 3), 10);
}

Test(sidecar_xds_misc, renewal_time_is_55_to_60_percent)
{
    cr_assert_eq(xdsc_renew_time(1000, 2000, 0.55), 1550);
    cr_assert_eq(xdsc_renew_time(1000, 2000, 0.60), 1600);
    cr_assert_eq(xdsc_renew_time(1000, 2000, 0.10), 1550, "clamped up");
    cr_assert_eq(xdsc_renew_time(1000, 2000, 0.99), 1600, "clamped down");
    cr_assert_eq(xdsc_renew_time(1000, 1000, 0.55), 1000);
    /* A day-long SVID renews after meshd's 50% push would have come. */
    int64_t r = xdsc_renew_time(0, 86400, 0.57);
    cr_assert(r > 43200 && r < 86400);
}

Test(sidecar_xds_misc, token_file_reading)
{
    char dir[64], path[128];
    tx_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/t", dir);
    char *tok = NULL;
    mesh_err err = {0};
    cr_assert_eq(xdsc_read_token_file(path, &tok, &err), MESH_ENOTFOUND);
    cr_assert(strstr(err.msg, path) != NULL, "%s", err.msg);
    FILE *f = fopen(path, "w");
    fputs("  \n mjt_abc123 \t\nsecond line\n", f);
    fclose(f);
    cr_assert_eq(xdsc_read_token_file(path, &tok, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(tok, "mjt_abc123");
    free(tok);
    f = fopen(path, "w");
    fputs(" \n\t\n", f);
    fclose(f);
    cr_assert_eq(xdsc_read_token_file(path, &tok, &err), MESH_ENOTFOUND);
    cr_assert(strstr(err.msg, "empty") != NULL, "%s", err.msg);
    cr_assert_null(tok);
    tx_rmdir(dir);
}

Test(sidecar_xds_misc, base64_and_refusals)
{
    char *b = xdsc_base64("hello world", 11);
    cr_assert_str_eq(b, "aGVsbG8gd29ybGQ=");
    free(b);
    b = xdsc_base64("", 0);
    cr_assert_str_eq(b, "");
    free(b);
    cr_assert(xdsc_csr_refused(GRPC_STATUS_PERMISSION_DENIED));
    cr_assert(xdsc_csr_refused(GRPC_STATUS_UNAUTHENTICATED));
    cr_assert(xdsc_csr_refused(GRPC_STATUS_INVALID_ARGUMENT));
    cr_assert(!xdsc_csr_refused(GRPC_STATUS_UNAVAILABLE), "unreachable is not a refusal");
    cr_assert(!xdsc_csr_refused(GRPC_STATUS_DEADLINE_EXCEEDED));
    cr_assert(!xdsc_csr_refused(GRPC_STATUS_RESOURCE_EXHAUSTED), "throttled: retry");
}

Test(sidecar_xds_misc, persisted_files_of_another_type_or_shape_are_refused)
{
    char dir[64], a[128], b[128];
    tx_tmpdir(dir, sizeof dir);
    xdsc_resource r = {.name = "x", .data = (uint8_t *)"\x0a\x01x", .len = 3};
    mesh_err err = {0};
    cr_assert_eq(xdsc_persist_save(dir, XDSC_CDS, "v1", &r, 1, &err), MESH_OK, "%s", err.msg);
    Envoy__Service__Discovery__V3__DiscoveryResponse *resp = NULL;
    cr_assert_eq(xdsc_persist_load(dir, XDSC_CDS, &resp, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(resp->version_info, "v1");
    cr_assert_eq(resp->n_resources, 1);
    cr_assert_str_eq(resp->resources[0]->type_url, XDS_TYPE_URL_CLUSTER);
    envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);

    /* A CDS file where LDS is expected. */
    snprintf(a, sizeof a, "%s/xds-cds.pb", dir);
    snprintf(b, sizeof b, "%s/xds-lds.pb", dir);
    cr_assert_eq(link(a, b), 0);
    cr_assert_eq(xdsc_persist_load(dir, XDSC_LDS, &resp, &err), MESH_ECORRUPT);
    cr_assert(strstr(err.msg, "another type") != NULL, "%s", err.msg);

    /* Not our format at all. */
    FILE *f = fopen(a, "w");
    fputs("hello\n", f);
    fclose(f);
    cr_assert_eq(xdsc_persist_load(dir, XDSC_CDS, &resp, &err), MESH_ECORRUPT);
    cr_assert(strstr(err.msg, "bad header") != NULL, "%s", err.msg);

    /* Writes leave no temp files behind and are 0600 even under a loose umask. */
    mode_t old = umask(0);
    cr_assert_eq(xdsc_persist_save(dir, XDSC_EDS, "", NULL, 0, &err), MESH_OK, "%s", err.msg);
    umask(old);
    struct stat st;
    snprintf(a, sizeof a, "%s/xds-eds.pb", dir);
    cr_assert_eq(stat(a, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(xdsc_persist_load(dir, XDSC_EDS, &resp, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(resp->n_resources, 0);
    envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
    xdsc_persist_clear(dir);
    cr_assert_neq(stat(a, &st), 0);
    cr_assert_neq(stat(b, &st), 0);
    tx_rmdir(dir);

    cr_assert_eq(xdsc_persist_save("/nonexistent/dir", XDSC_EDS, "", NULL, 0, &err), MESH_EIO);
    cr_assert(strstr(err.msg, "/nonexistent/dir") != NULL, "%s", err.msg);
}
