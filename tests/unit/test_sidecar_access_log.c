/* tests/unit/test_sidecar_access_log.c — the access log's JSON lines, its
 * batching to the file, and its bound when the file does not keep up. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json_out.h"
#include "sidecar/dp_access_log.h"

static dp_access_entry sample(void)
{
    return (dp_access_entry){
        .start_unix_us = 1765152000123456LL, /* 2025-12-08T00:00:00.123Z */
        .duration_us = 4567,
        .direction = "inbound",
        .listener = "inbound|15002",
        .method = "GET",
        .path = "/a\"b",
        .authority = "backend",
        .protocol = "HTTP/1.1",
        .status = 200,
        .bytes_received = 3,
        .bytes_sent = 42,
        .upstream_cluster = "inbound|app",
        .upstream_host = "127.0.0.1:18081",
        .route = "backend",
        .peer_id = "spiffe://example.org/ns/default/sa/frontend",
        .request_id = "r-1",
        .attempts = 1,
        .response_flags = "",
    };
}

Test(sidecar_access_log, formats_one_json_object)
{
    dp_access_entry e = sample();
    json_out j;
    json_init(&j);
    dp_access_log_format(&e, &j);
    cr_assert_str_eq(json_text(&j),
                     "{\"start_time\":\"2025-12-08T00:00:00.123Z\",\"direction\":\"inbound\","
                     "\"listener\":\"inbound|15002\",\"method\":\"GET\",\"path\":\"/a\\\"b\","
                     "\"authority\":\"backend\",\"protocol\":\"HTTP/1.1\",\"response_code\":200,"
                     "\"response_flags\":\"\",\"duration_ms\":4,\"bytes_received\":3,"
                     "\"bytes_sent\":42,\"upstream_cluster\":\"inbound|app\","
                     "\"upstream_host\":\"127.0.0.1:18081\",\"route_name\":\"backend\","
                     "\"peer_spiffe_id\":\"spiffe://example.org/ns/default/sa/frontend\","
                     "\"request_id\":\"r-1\",\"attempts\":1}");
    json_free(&j);
}

Test(sidecar_access_log, unknowns_are_null)
{
    dp_access_entry e = {.direction = "outbound", .start_unix_us = 0};
    json_out j;
    json_init(&j);
    dp_access_log_format(&e, &j);
    const char *t = json_text(&j);
    cr_assert_not_null(strstr(t, "\"method\":null"), "%s", t);
    cr_assert_not_null(strstr(t, "\"response_code\":0"), "%s", t);
    cr_assert_not_null(strstr(t, "\"peer_spiffe_id\":null"), "%s", t);
    cr_assert_not_null(strstr(t, "\"upstream_host\":null"), "%s", t);
    json_free(&j);
}

Test(sidecar_access_log, lines_reach_the_file_on_flush)
{
    char dir[] = "/tmp/meshd-alog-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/access.log", dir);
    dp_access_log *l = NULL;
    mesh_err err = {0};
    cr_assert_eq(dp_access_log_open(path, NULL, &l, &err), MESH_OK, "%s", err.msg);
    dp_access_entry e = sample();
    dp_access_log_write(l, &e);
    dp_access_log_write(l, &e);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_size, 0, "batched, not written per line");
    dp_access_log_close(l); /* flushes */
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        cr_assert_eq(line[0], '{');
        cr_assert_eq(line[strlen(line) - 1], '\n');
        n++;
    }
    fclose(f);
    cr_assert_eq(n, 2);
    unlink(path);
    rmdir(dir);
}

Test(sidecar_access_log, refuses_an_unwritable_path)
{
    dp_access_log *l = NULL;
    mesh_err err = {0};
    cr_assert_eq(dp_access_log_open("/nonexistent-dir/access.log", NULL, &l, &err), MESH_EIO);
    cr_assert_not_null(strstr(err.msg, "--access-log /nonexistent-dir/access.log"), "%s",
                       err.msg);
}

/* A reader that stops reading: the log holds at most 4 MiB, then drops and
 * counts, and never blocks the caller. */
Test(sidecar_access_log, bounded_when_the_reader_stalls, .timeout = 20)
{
    char dir[] = "/tmp/meshd-alog-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/fifo", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    int rd = open(path, O_RDONLY | O_NONBLOCK);
    cr_assert_geq(rd, 0);
    dp_access_log *l = NULL;
    mesh_err err = {0};
    cr_assert_eq(dp_access_log_open(path, NULL, &l, &err), MESH_OK, "%s", err.msg);
    dp_access_entry e = sample();
    for (int i = 0; i < 40000; i++) /* ~16 MB of lines */
        dp_access_log_write(l, &e);
    cr_assert_gt(dp_access_log_dropped(l), 0, "lines beyond the bound are dropped");
    cr_assert_lt(dp_access_log_dropped(l), 40000, "lines within the bound are kept");
    dp_access_log_close(l);
    close(rd);
    unlink(path);
    rmdir(dir);
}
