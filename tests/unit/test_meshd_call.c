/* tests/unit/test_meshd_call.c — a call's outgoing queue and its end (meshd/meshd_call.c):
 * at most one final status, nothing queued after it or after the close, a failed send
 * dropping what was queued, the close unregistering a stream, and a half-close. Calls
 * come from test_meshd_util.h (a send is "in flight", so the queue is observable). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/mgrpc.h"
#include "meshd/meshd_internal.h"
#include "tests/unit/test_meshd_util.h"
#include "tests/unit/test_sds_util.h"

static md_ctx *ctx;

static void setup(void)
{
    grpc_init();
    ctx = tmd_ctx_new(NULL);
}

static void teardown(void)
{
    tmd_ctx_free(ctx);
    grpc_shutdown();
}

TestSuite(meshd_call, .init = setup, .fini = teardown);

static grpc_byte_buffer *message(const char *text)
{
    size_t len = strlen(text);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    memcpy(buf, text, len);
    return mgrpc_buffer_take(buf, len);
}

Test(meshd_call, kinds)
{
    cr_assert(md_call_kind_is_stream(MD_CALL_ADS) && md_call_kind_is_stream(MD_CALL_SDS));
    cr_assert(md_call_kind_is_stream(MD_CALL_DADS) && md_call_kind_is_stream(MD_CALL_DSDS));
    cr_assert(!md_call_kind_is_stream(MD_CALL_CSR) && !md_call_kind_is_stream(MD_CALL_FETCH));
    cr_assert(!md_call_kind_is_stream(MD_CALL_UNIMPL));
    cr_assert(md_call_kind_is_delta(MD_CALL_DADS) && md_call_kind_is_delta(MD_CALL_DSDS));
    cr_assert(!md_call_kind_is_delta(MD_CALL_ADS) && !md_call_kind_is_delta(MD_CALL_SDS));
}

Test(meshd_call, messages_queue_in_order_behind_the_send_in_flight)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    pthread_mutex_lock(&c->mu);
    md_call_send_locked(c, message("one"));
    md_call_send_locked(c, message("two"));
    md_call_send_locked(c, NULL); /* an encode failure upstream: nothing to send */
    pthread_mutex_unlock(&c->mu);
    cr_assert_eq(tmd_queued(c), 2);
    size_t len = 0;
    uint8_t *b = tmd_bytes_at(c, 0, &len);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(b, "one", 3), 0);
    free(b);
    b = tmd_bytes_at(c, 1, &len);
    cr_assert_eq(memcmp(b, "two", 3), 0);
    free(b);
    cr_assert_eq(c->q_tail, tmd_queued_at(c, 1));
    tmd_call_free(c);
}

/* After the final status nothing more goes out: no second status, no message. */
Test(meshd_call, one_final_status)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_call_finish(c, GRPC_STATUS_PERMISSION_DENIED, "first");
    md_call_finish(c, GRPC_STATUS_INTERNAL, "second");
    pthread_mutex_lock(&c->mu);
    md_call_send_locked(c, message("late push"));
    md_call_reply_locked(c, message("late reply"), GRPC_STATUS_OK, "");
    pthread_mutex_unlock(&c->mu);
    cr_assert_eq(tmd_queued(c), 1);
    const md_out *o = tmd_queued_at(c, 0);
    cr_assert(o->has_status);
    cr_assert_null(o->bb);
    cr_assert_eq(o->code, GRPC_STATUS_PERMISSION_DENIED);
    cr_assert_str_eq(o->msg, "first");
    tmd_call_free(c);
}

Test(meshd_call, unary_reply_is_message_and_status_together)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_CSR, "");
    pthread_mutex_lock(&c->mu);
    md_call_reply_locked(c, message("certs"), GRPC_STATUS_OK, NULL);
    pthread_mutex_unlock(&c->mu);
    cr_assert_eq(tmd_queued(c), 1, "one batch: message + status");
    const md_out *o = tmd_queued_at(c, 0);
    cr_assert_not_null(o->bb);
    cr_assert(o->has_status);
    cr_assert_eq(o->code, GRPC_STATUS_OK);
    cr_assert_str_eq(o->msg, "", "NULL details are sent as empty");
    cr_assert(c->finishing);
    tmd_call_free(c);
}

/* The stream closed (client gone) with pushes still queued: they are dropped,
 * the stream leaves the registry, and later pushes are refused. */
Test(meshd_call, close_drops_the_queue_and_unregisters)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_stream *s = tmd_stream_new(c);
    md_stream_note_node_locked(c, 1, "web-1");
    md_stream_status_sync_locked(c);
    md_registry_add(ctx, c);
    pthread_mutex_lock(&c->mu);
    md_call_send_locked(c, message("queued-1"));
    md_call_send_locked(c, message("queued-2"));
    pthread_mutex_unlock(&c->mu);
    md_call_ref(c); /* the test's own, so the close's unref leaves the call alive */
    md_call_on_close(c, 1);
    cr_assert(c->closed);
    cr_assert_eq(tmd_queued(c), 0);
    cr_assert_null(c->q_tail);
    cr_assert_eq(c->registered, 0);
    cr_assert_eq(ctx->reg_count, 0);
    cr_assert_eq(s->status_opened, 0);
    cr_assert_eq(tmd_refs(c), 1, "the creation reference was the close batch's");
    pthread_mutex_lock(&c->mu);
    md_call_send_locked(c, message("after close"));
    md_call_reply_locked(c, NULL, GRPC_STATUS_OK, "after close");
    pthread_mutex_unlock(&c->mu);
    cr_assert_eq(tmd_queued(c), 0);
    tmd_call_free(c);
}

/* The transport failed a send: what was queued behind it can never go out. */
Test(meshd_call, failed_send_drops_the_rest)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_SDS, TSD_WEB);
    pthread_mutex_lock(&c->mu);
    md_call_send_locked(c, message("a"));
    md_call_send_locked(c, message("b"));
    pthread_mutex_unlock(&c->mu);
    md_call_ref(c); /* the in-flight batch's reference */
    md_call_on_send(c, 0);
    cr_assert_null(c->inflight);
    cr_assert_eq(tmd_queued(c), 0);
    cr_assert_null(c->q_tail);
    cr_assert_eq(tmd_refs(c), 1, "the batch's reference is dropped");
    tmd_call_free(c);
}

Test(meshd_call, half_close_ends_a_stream_cleanly_and_a_unary_call_with_an_error)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_call_ref(c); /* the receive batch's reference */
    md_call_on_recv(c, 1); /* ok, but no message: the client half-closed */
    cr_assert_eq(tmd_queued(c), 1);
    cr_assert_eq(tmd_queued_at(c, 0)->code, GRPC_STATUS_OK);
    cr_assert_eq(tmd_refs(c), 1);
    tmd_call_free(c);

    c = tmd_call_new(ctx, MD_CALL_CSR, "");
    md_call_ref(c);
    md_call_on_recv(c, 1);
    cr_assert_eq(tmd_queued_at(c, 0)->code, GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(tmd_queued_at(c, 0)->msg, "no request message"));
    tmd_call_free(c);

    c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_call_ref(c);
    md_call_on_recv(c, 0); /* the call failed (cancelled, deadline): the close follows */
    cr_assert_eq(tmd_queued(c), 0);
    cr_assert_eq(tmd_refs(c), 1);
    tmd_call_free(c);
}
