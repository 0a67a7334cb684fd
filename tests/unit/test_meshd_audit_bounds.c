/* tests/unit/test_meshd_audit_bounds.c — the bounds a client can run into in a loop
 * (meshd/meshd_stream.c xds.limit and xds.oversize, meshd/meshd_call.c xds.overflow) are
 * audited and logged through the refusal rate limit (meshd/meshd_audit.c): a burst of N
 * events at one instant (the gate's clock stands still) writes at most the bucket's
 * burst of rows and log lines, each with its detail, and then one "audit.suppressed"
 * row counting the rest. Real store (tsd_env) and status writer; meshd's stderr goes to
 * a file for the length of a flood so its log lines can be counted. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mgrpc.h"
#include "meshd/meshd_internal.h"
#include "tests/unit/test_meshd_util.h"
#include "tests/unit/test_sds_util.h"

#define FLOOD ((int)MD_AUDIT_VERIFIED_BURST * 3)
#define NOW_MS 5000000

static tsd_env env;

static void setup(void)
{
    grpc_init();
    tsd_setup(&env);
}

static void teardown(void)
{
    tsd_teardown(&env);
    grpc_shutdown();
}

TestSuite(meshd_audit_bounds, .init = setup, .fini = teardown);

/* ---- the three events, one at a time ------------------------------------------------ */

static md_call *verified_call(md_ctx *ctx)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    snprintf(c->pubkey_sha, sizeof c->pubkey_sha, "%064d", 0);
    snprintf(c->peer_addr, sizeof c->peer_addr, "ipv4:127.0.0.1:4242");
    return c;
}

/* A stream over --max-streams-per-identity (0 here: every one is over). */
static void one_limit(md_ctx *ctx)
{
    ctx->opts.max_streams_per_identity = 0;
    md_call *c = verified_call(ctx);
    md_stream_open(c);
    cr_assert_eq(tmd_queued(c), 1);
    cr_assert_eq(tmd_queued_at(c, 0)->code, GRPC_STATUS_RESOURCE_EXHAUSTED,
                 "every refused client is still told why");
    tmd_call_free(c);
}

/* A response over the delivery limit, withheld. */
static void one_oversize(md_ctx *ctx)
{
    md_call *c = verified_call(ctx);
    md_stream *s = tmd_stream_new(c);
    snprintf(s->node_id, sizeof s->node_id, "web-1");
    pthread_mutex_lock(&c->mu);
    cr_assert(md_stream_over_limit_locked(c, XDS_TYPE_URL_CLUSTER, "v9",
                                          XDS_WIRE_MAX_MESSAGE + 1));
    pthread_mutex_unlock(&c->mu);
    tmd_call_free(c);
}

/* A client that does not read: its queue goes over --max-send-queue. */
static void one_overflow(md_ctx *ctx)
{
    ctx->opts.max_send_queue = 8;
    md_call *c = verified_call(ctx);
    uint8_t *buf = malloc(64);
    cr_assert_not_null(buf);
    memset(buf, 'x', 64);
    pthread_mutex_lock(&c->mu);
    md_call_send_locked(c, mgrpc_buffer_take(buf, 64));
    pthread_mutex_unlock(&c->mu);
    cr_assert(c->send_overflow);
    tmd_call_free(c);
}

/* ---- the flood ---------------------------------------------------------------------- */

static int count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static void flood(const char *action, void (*one)(md_ctx *), const char *detail_part)
{
    md_ctx *ctx = tmd_ctx_new(env.db);
    ctx->audit_gate.fixed_now_ms = NOW_MS;
    mesh_err err = {0};
    cr_assert_eq(md_status_start(ctx, &err), MESH_OK, "%s", err.msg);
    char log_path[600];
    snprintf(log_path, sizeof log_path, "%s/meshd-stderr.log", env.dir);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    close(fd);
    for (int i = 0; i < FLOOD; i++)
        one(ctx);
    /* Later, the writer's flush reports what the gate dropped. */
    md_audit_flush(ctx, NOW_MS + MD_AUDIT_FLUSH_MS + 1);
    md_status_stop(ctx);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    store_audit_entry *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_audit_list(env.st, 10000, &list, &n, &err), MESH_OK, "%s", err.msg);
    int rows = 0, summaries = 0;
    unsigned long long dropped = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].action, action) == 0) {
            rows++;
            cr_assert_str_eq(list[i].actor, TSD_WEB);
            cr_assert(strstr(list[i].detail, "peer=ipv4:127.0.0.1:4242") &&
                          strstr(list[i].detail, detail_part),
                      "each row written keeps its detail: %s", list[i].detail);
        }
        if (strcmp(list[i].action, "audit.suppressed") == 0) {
            summaries++;
            cr_assert_eq(sscanf(list[i].detail, "%llu refusal(s) by verified identities",
                                &dropped), 1, "%s", list[i].detail);
        }
    }
    store_audit_free_list(list, n);
    cr_assert_eq(rows, (int)MD_AUDIT_VERIFIED_BURST, "%d %s rows for %d events", rows, action,
                 FLOOD);
    cr_assert_eq(summaries, 1);
    cr_assert_eq(dropped, (unsigned long long)(FLOOD - rows), "the summary counts the rest");
    char refused[80];
    snprintf(refused, sizeof refused, "%s refused for %s", action, TSD_WEB);
    int lines = count_lines(log_path, refused);
    cr_assert_eq(lines, (int)MD_AUDIT_VERIFIED_BURST, "%d log lines for %d events", lines,
                 FLOOD);
    cr_assert_eq(count_lines(log_path, "refusal(s) by verified identities were not recorded"), 1,
                 "the log says what it left out");
    tmd_ctx_free(ctx);
}

Test(meshd_audit_bounds, streams_over_the_identity_limit)
{
    flood("xds.limit", one_limit, "already holds 0 xDS streams");
}

Test(meshd_audit_bounds, responses_over_the_delivery_limit)
{
    flood("xds.oversize", one_oversize, "over the 4194304-byte delivery limit");
}

Test(meshd_audit_bounds, clients_that_do_not_read)
{
    flood("xds.overflow", one_overflow, "over meshd's limit of 8 (--max-send-queue)");
}
