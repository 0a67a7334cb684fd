/* tests/unit/test_sidecar_xds_client.c — the real xDS client thread against an
 * in-process fake ADS server over mTLS on 127.0.0.1: what goes over the wire. The
 * first request carries the Node; an accepted response is ACKed with its version and
 * nonce; a bad one is NACKed with google.rpc.Status code 3 and the reason while the
 * version stays; a stream the server drops is re-opened (backoff) and the new initial
 * requests carry the versions the client holds, with no nonce. With several replicas
 * a dead one is skipped at once and a lost one is left for the next within 2 s. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "istio/v1/auth/ca.pb-c.h"
#include "common/mgrpc.h"
#include "sidecar/xds_client.h"
#include "sidecar/xds_grpc.h"
#include "sidecar/xds_probe.h"
#include "test_sidecar_xds_util.h"

/* ---- a scripted fake ADS server ---------------------------------------------------------- */

typedef struct fake {
    grpc_server *srv;
    grpc_completion_queue *cq;
    void *method;
    int port;
    /* the current call */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *recv;
    int cancelled;
    int closed;         /* RECV_CLOSE_ON_SERVER completed */
    int tag_new, tag_recv, tag_send, tag_close, tag_status, tag_shutdown;
} fake;

/* Waits for want; other tags of the call are noted. */
static void fk_wait(fake *f, void *want, int secs)
{
    gpr_timespec until = xdsc_deadline_ms(secs * 1000);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(f->cq, until, NULL);
        cr_assert_eq(ev.type, GRPC_OP_COMPLETE, "fake server: timed out waiting");
        if (ev.tag == &f->tag_close)
            f->closed = 1;
        if (ev.tag == want)
            return;
    }
}

static void fk_start_on(fake *f, tx_ca *ca, int port);
static void fk_start(fake *f, tx_ca *ca) { fk_start_on(f, ca, 0); }

/* port 0: any free one. */
static void fk_start_on(fake *f, tx_ca *ca, int port)
{
    memset(f, 0, sizeof *f);
    char *key, *cert;
    tx_ca_issue_server(ca, "meshd", &key, &cert);
    f->cq = grpc_completion_queue_create_for_next(NULL);
    f->srv = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(f->srv, f->cq, NULL);
    f->method = grpc_server_register_method(f->srv, XDS_METHOD_ADS, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    grpc_server_credentials *sc = grpc_ssl_server_credentials_create_ex(
        ca->pem, &pair, 1, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    f->port = grpc_server_add_http2_port(f->srv, addr, sc);
    grpc_server_credentials_release(sc);
    cr_assert_gt(f->port, 0);
    grpc_server_start(f->srv);
    free(key);
    free(cert);
}

static void fk_accept(fake *f)
{
    f->closed = 0;
    grpc_metadata_array_init(&f->md);
    cr_assert_eq(grpc_server_request_registered_call(f->srv, f->method, &f->call, &f->deadline,
                                                     &f->md, NULL, f->cq, f->cq, &f->tag_new),
                 GRPC_CALL_OK);
    fk_wait(f, &f->tag_new, 10);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &f->cancelled;
    cr_assert_eq(grpc_call_start_batch(f->call, ops, 1, &f->tag_send, NULL), GRPC_CALL_OK);
    fk_wait(f, &f->tag_send, 5);
    cr_assert_eq(grpc_call_start_batch(f->call, ops + 1, 1, &f->tag_close, NULL), GRPC_CALL_OK);
}

static Envoy__Service__Discovery__V3__DiscoveryRequest *fk_recv(fake *f)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &f->recv;
    cr_assert_eq(grpc_call_start_batch(f->call, &op, 1, &f->tag_recv, NULL), GRPC_CALL_OK);
    fk_wait(f, &f->tag_recv, 10);
    cr_assert_not_null(f->recv, "the client closed the stream");
    uint8_t *b;
    size_t len;
    cr_assert_eq(mgrpc_buffer_to_bytes(f->recv, &b, &len, NULL), MESH_OK);
    grpc_byte_buffer_destroy(f->recv);
    f->recv = NULL;
    Envoy__Service__Discovery__V3__DiscoveryRequest *r =
        envoy__service__discovery__v3__discovery_request__unpack(NULL, len, b);
    free(b);
    cr_assert_not_null(r);
    return r;
}

/* Receives requests until one of type t answering nonce arrives (others are
 * dropped: the order of a stream's initial requests and the ACKs interleave
 * depending on timing). */
static Envoy__Service__Discovery__V3__DiscoveryRequest *fk_recv_type(fake *f, enum xdsc_type t,
                                                                    const char *nonce)
{
    for (int i = 0; i < 10; i++) {
        Envoy__Service__Discovery__V3__DiscoveryRequest *r = fk_recv(f);
        if (strcmp(r->type_url, xdsc_type_url(t)) == 0 && strcmp(r->response_nonce, nonce) == 0)
            return r;
        envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
    }
    cr_assert_fail("no %s request answering nonce '%s'", xdsc_type_short(t), nonce);
    return NULL;
}

static void fk_send(fake *f, Envoy__Service__Discovery__V3__DiscoveryResponse *resp)
{
    size_t len = envoy__service__discovery__v3__discovery_response__get_packed_size(resp);
    uint8_t *b = malloc(len);
    envoy__service__discovery__v3__discovery_response__pack(resp, b);
    grpc_byte_buffer *bb = mgrpc_buffer_take(b, len);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    cr_assert_eq(grpc_call_start_batch(f->call, &op, 1, &f->tag_send, NULL), GRPC_CALL_OK);
    fk_wait(f, &f->tag_send, 5);
    grpc_byte_buffer_destroy(bb);
    tx_response_free(resp);
}

/* Ends the call with UNAVAILABLE, as a meshd going away would. */
static void fk_drop(fake *f)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op.data.send_status_from_server.status = GRPC_STATUS_UNAVAILABLE;
    grpc_slice d = grpc_slice_from_static_string("test drops the stream");
    op.data.send_status_from_server.status_details = &d;
    cr_assert_eq(grpc_call_start_batch(f->call, &op, 1, &f->tag_status, NULL), GRPC_CALL_OK);
    fk_wait(f, &f->tag_status, 5);
    if (!f->closed)
        fk_wait(f, &f->tag_close, 5);
    grpc_call_unref(f->call);
    f->call = NULL;
    grpc_metadata_array_destroy(&f->md);
}

static void fk_stop(fake *f)
{
    if (f->call) {
        grpc_call_cancel(f->call, NULL);
        if (!f->closed)
            fk_wait(f, &f->tag_close, 5);
        grpc_call_unref(f->call);
        grpc_metadata_array_destroy(&f->md);
    }
    grpc_server_shutdown_and_notify(f->srv, f->cq, &f->tag_shutdown);
    grpc_server_cancel_all_calls(f->srv);
    fk_wait(f, &f->tag_shutdown, 5);
    grpc_server_destroy(f->srv);
    grpc_completion_queue_shutdown(f->cq);
    while (grpc_completion_queue_next(f->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(f->cq);
}

/* ---- the test ------------------------------------------------------------------------------ */

static int applies;
static int hook_apply(void *ctx, dp_config *cfg, mesh_err *err)
{
    (void)ctx;
    (void)cfg;
    (void)err;
    __atomic_add_fetch(&applies, 1, __ATOMIC_SEQ_CST);
    return MESH_OK;
}

Test(sidecar_xds_client, ack_nack_and_reconnect_on_the_wire, .timeout = 60)
{
    grpc_init();
    tx_ca ca;
    tx_ca_new(&ca, "wire root");
    int64_t now = (int64_t)time(NULL);
    cert_pool *pool;
    mesh_err err = {0};
    cr_assert_eq(cert_pool_new(&pool, &err), MESH_OK);
    cr_assert_eq(cert_pool_set_bundle(pool, ca.pem, now, &err), MESH_OK, "%s", err.msg);
    char *csr;
    cr_assert_eq(cert_pool_make_csr(pool, TX_WEB_ID, false, &csr, &err), MESH_OK);
    char *leaf = tx_ca_sign(&ca, csr, now - 10, now + 3600);
    cr_assert_eq(cert_pool_offer_svid(pool, leaf, NULL, now, &err), MESH_OK, "%s", err.msg);
    free(leaf);
    free(csr);

    fake f;
    fk_start(&f, &ca);
    char dir[64], target[64];
    tx_tmpdir(dir, sizeof dir);
    snprintf(target, sizeof target, "127.0.0.1:%d", f.port);
    xdsc_client_opts o = {
        .meshd = target,
        .state_dir = dir,
        .node_id = "web-1",
        .pool = pool,
        .hooks = {.apply = hook_apply},
        .backoff_min_ms = 20,
        .backoff_max_ms = 200,
    };
    xdsc_client *c;
    cr_assert_eq(xdsc_client_start(&o, &c, &err), MESH_OK, "%s", err.msg);

    /* Stream 1: the initial requests. */
    fk_accept(&f);
    Envoy__Service__Discovery__V3__DiscoveryRequest *r = fk_recv(&f);
    cr_assert_str_eq(r->type_url, XDS_TYPE_URL_SECRET, "secrets are asked for first");
    cr_assert_not_null(r->node, "the first request carries the Node");
    cr_assert_str_eq(r->node->id, "web-1");
    cr_assert_eq(r->n_resource_names, 2);
    cr_assert_str_eq(r->version_info, "");
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
    r = fk_recv_type(&f, XDSC_CDS, "");
    cr_assert_null(r->node, "only the first request carries the Node");
    cr_assert_eq(r->n_resource_names, 0, "CDS is a wildcard subscription");
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);

    xds_snapshot s;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    fk_send(&f, tx_response_from(&s, XDSC_CDS, "c1", "nonce-1"));
    r = fk_recv_type(&f, XDSC_CDS, "nonce-1");
    cr_assert_str_eq(r->version_info, "c1");
    cr_assert_null(r->error_detail);
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
    r = fk_recv_type(&f, XDSC_EDS, "");
    cr_assert_eq(r->n_resource_names, 4, "EDS asks for the clusters' names");
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);

    /* A listener on port 77777: NACK with the reason, version unchanged. */
    const xds_type_set *lds = tx_set(&s, XDSC_LDS);
    const uint8_t *data[8];
    size_t len[8];
    uint8_t *bad = NULL;
    for (size_t i = 0; i < lds->n; i++) {
        data[i] = lds->items[i].data;
        len[i] = lds->items[i].len;
        if (strcmp(lds->items[i].name, "outbound|http") == 0) {
            Envoy__Config__Listener__V3__Listener *l = envoy__config__listener__v3__listener__unpack(
                NULL, len[i], data[i]);
            l->address->socket_address->port_value = 77777;
            bad = tx_pack(&l->base, &len[i]);
            data[i] = bad;
            envoy__config__listener__v3__listener__free_unpacked(l, NULL);
        }
    }
    fk_send(&f, tx_response(XDSC_LDS, "l1", "nonce-2", data, len, lds->n));
    free(bad);
    r = fk_recv_type(&f, XDSC_LDS, "nonce-2");
    cr_assert_str_eq(r->version_info, "", "a NACK keeps the last accepted version");
    cr_assert_not_null(r->error_detail, "a NACK carries error_detail");
    cr_assert_eq(r->error_detail->code, 3);
    cr_assert(strstr(r->error_detail->message, "77777") != NULL, "%s", r->error_detail->message);
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);

    /* The next good version is ACKed. */
    fk_send(&f, tx_response_from(&s, XDSC_LDS, "l2", "nonce-3"));
    r = fk_recv_type(&f, XDSC_LDS, "nonce-3");
    cr_assert_str_eq(r->version_info, "l2");
    cr_assert_null(r->error_detail);
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
    r = fk_recv_type(&f, XDSC_RDS, "");
    cr_assert_eq(r->n_resource_names, 1);
    cr_assert_str_eq(r->resource_names[0], "outbound|http");
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);

    xdsc_client_status st;
    xdsc_client_get_status(c, &st);
    cr_assert(st.connected);
    cr_assert_eq(st.rejected[XDSC_LDS], 1);
    cr_assert_eq(st.accepted[XDSC_LDS], 1);
    cr_assert_str_eq(st.version[XDSC_CDS], "c1");
    cr_assert(__atomic_load_n(&applies, __ATOMIC_SEQ_CST) >= 2);

    /* The server drops the stream; the client comes back offering what it holds. */
    fk_drop(&f);
    fk_accept(&f);
    r = fk_recv(&f);
    cr_assert_not_null(r->node, "a new stream starts with the Node again");
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
    r = fk_recv_type(&f, XDSC_CDS, "");
    cr_assert_str_eq(r->version_info, "c1", "initial request offers the held CDS version");
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
    r = fk_recv_type(&f, XDSC_LDS, "");
    cr_assert_str_eq(r->version_info, "l2");
    cr_assert_null(r->error_detail, "the old stream's NACK is not repeated");
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
    xdsc_client_get_status(c, &st);
    cr_assert_geq(st.streams, 2);

    xdsc_client_stop(c);
    fk_stop(&f);
    xds_snapshot_free(&s);
    cert_pool_free(pool);
    tx_ca_free(&ca);
    tx_rmdir(dir);
    grpc_shutdown();
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

/* Three replicas, the first down: the client skips it at once (the backoff is 10 s,
 * so anything that waits for it fails the deadline), and when the replica it is on
 * goes away it is on the next within 2 s, offering the version it holds. */
Test(sidecar_xds_client, fails_over_to_the_next_replica_at_once, .timeout = 60)
{
    grpc_init();
    tx_ca ca;
    tx_ca_new(&ca, "failover root");
    int64_t now = (int64_t)time(NULL);
    cert_pool *pool;
    mesh_err err = {0};
    cr_assert_eq(cert_pool_new(&pool, &err), MESH_OK);
    cr_assert_eq(cert_pool_set_bundle(pool, ca.pem, now, &err), MESH_OK, "%s", err.msg);
    char *csr;
    cr_assert_eq(cert_pool_make_csr(pool, TX_WEB_ID, false, &csr, &err), MESH_OK);
    char *leaf = tx_ca_sign(&ca, csr, now - 10, now + 3600);
    cr_assert_eq(cert_pool_offer_svid(pool, leaf, NULL, now, &err), MESH_OK, "%s", err.msg);
    free(leaf);
    free(csr);

    int dead = free_port();
    fake f1, f2;
    fk_start(&f1, &ca);
    fk_start(&f2, &ca);
    char dir[64], list[128], second[64], third[64];
    tx_tmpdir(dir, sizeof dir);
    snprintf(list, sizeof list, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", dead, f1.port,
             f2.port);
    snprintf(second, sizeof second, "127.0.0.1:%d", f1.port);
    snprintf(third, sizeof third, "127.0.0.1:%d", f2.port);
    xdsc_client_opts o = {
        .meshd = list,
        .state_dir = dir,
        .node_id = "web-1",
        .pool = pool,
        .hooks = {.apply = hook_apply},
        .backoff_min_ms = 10000,
        .backoff_max_ms = 20000,
    };
    xdsc_client *c;
    int64_t t0 = xdsc_now_ms();
    cr_assert_eq(xdsc_client_start(&o, &c, &err), MESH_OK, "%s", err.msg);
    fk_accept(&f1);
    int64_t took = xdsc_now_ms() - t0;
    cr_assert_lt(took, 3000, "a dead first replica cost %lld ms (no backoff between replicas)",
                 (long long)took);
    Envoy__Service__Discovery__V3__DiscoveryRequest *r = fk_recv_type(&f1, XDSC_CDS, "");
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
    xds_snapshot s;
    tx_compile(TX_WEB_ID, 1, 90, &s);
    fk_send(&f1, tx_response_from(&s, XDSC_CDS, "c1", "nonce-1"));
    r = fk_recv_type(&f1, XDSC_CDS, "nonce-1");
    cr_assert_str_eq(r->version_info, "c1");
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
    xdsc_client_status st;
    xdsc_client_get_status(c, &st);
    cr_assert_str_eq(st.server, second);

    /* The replica goes away (its server shuts down, as a killed meshd's would). */
    t0 = xdsc_now_ms();
    fk_stop(&f1);
    fk_accept(&f2);
    took = xdsc_now_ms() - t0;
    cr_assert_lt(took, 2000, "fail-over took %lld ms", (long long)took);
    r = fk_recv_type(&f2, XDSC_CDS, "");
    cr_assert_str_eq(r->version_info, "c1", "the new replica is offered the version held");
    cr_assert_null(r->error_detail);
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
    fk_send(&f2, tx_response_from(&s, XDSC_CDS, "c1", "nonce-9"));
    r = fk_recv_type(&f2, XDSC_CDS, "nonce-9");
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
    xdsc_client_get_status(c, &st);
    cr_assert(st.connected);
    cr_assert_str_eq(st.server, third);
    cr_assert_eq(st.failovers, 1);

    xdsc_client_stop(c);
    fk_stop(&f2);
    xds_snapshot_free(&s);
    cert_pool_free(pool);
    tx_ca_free(&ca);
    tx_rmdir(dir);
    grpc_shutdown();
}

/* meshd is down long enough for a 20 s backoff; when it comes back the TCP probe
 * notices and the client reconnects within seconds instead of sitting the wait out. */
Test(sidecar_xds_client, a_returning_meshd_cuts_a_long_backoff_short, .timeout = 60)
{
    grpc_init();
    tx_ca ca;
    tx_ca_new(&ca, "probe root");
    int64_t now = (int64_t)time(NULL);
    cert_pool *pool;
    mesh_err err = {0};
    cr_assert_eq(cert_pool_new(&pool, &err), MESH_OK);
    cr_assert_eq(cert_pool_set_bundle(pool, ca.pem, now, &err), MESH_OK, "%s", err.msg);
    char *csr;
    cr_assert_eq(cert_pool_make_csr(pool, TX_WEB_ID, false, &csr, &err), MESH_OK);
    char *leaf = tx_ca_sign(&ca, csr, now - 10, now + 3600);
    cr_assert_eq(cert_pool_offer_svid(pool, leaf, NULL, now, &err), MESH_OK, "%s", err.msg);
    free(leaf);
    free(csr);

    int port = free_port();
    char dir[64], target[64];
    tx_tmpdir(dir, sizeof dir);
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    xdsc_client_opts o = {
        .meshd = target,
        .state_dir = dir,
        .node_id = "web-1",
        .pool = pool,
        .hooks = {.apply = hook_apply},
        .backoff_min_ms = 20000,
        .backoff_max_ms = 20000,
    };
    xdsc_client *c;
    cr_assert_eq(xdsc_client_start(&o, &c, &err), MESH_OK, "%s", err.msg);
    /* The first attempt fails; the probe then finds the port closed. */
    struct timespec ts = {.tv_sec = 3};
    nanosleep(&ts, NULL);
    fake f;
    int64_t t0 = xdsc_now_ms();
    fk_start_on(&f, &ca, port);
    fk_accept(&f);
    int64_t took = xdsc_now_ms() - t0;
    cr_assert_lt(took, XDSC_PROBE_EVERY_MS + XDSC_PROBE_WAIT_MS + 1500,
                 "reconnected %lld ms after meshd came back (the backoff was 20 s)",
                 (long long)took);
    Envoy__Service__Discovery__V3__DiscoveryRequest *r = fk_recv(&f);
    cr_assert_not_null(r->node);
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);

    xdsc_client_stop(c);
    fk_stop(&f);
    cert_pool_free(pool);
    tx_ca_free(&ca);
    tx_rmdir(dir);
    grpc_shutdown();
}

/* ---- a fake CA replica: answers one CreateCertificate ------------------------------- */

typedef struct fake_ca {
    grpc_server *srv;
    grpc_completion_queue *cq;
    void *method;
    int port;
    int tag_new, tag_done, tag_shutdown;
} fake_ca;

static void fca_start(fake_ca *f, tx_ca *ca)
{
    memset(f, 0, sizeof *f);
    char *key, *cert;
    tx_ca_issue_server(ca, "meshd", &key, &cert);
    f->cq = grpc_completion_queue_create_for_next(NULL);
    f->srv = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(f->srv, f->cq, NULL);
    f->method = grpc_server_register_method(f->srv, XDS_METHOD_CREATE_CERTIFICATE, NULL,
                                            GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    grpc_server_credentials *sc = grpc_ssl_server_credentials_create_ex(
        ca->pem, &pair, 1, GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY, NULL);
    f->port = grpc_server_add_http2_port(f->srv, "127.0.0.1:0", sc);
    grpc_server_credentials_release(sc);
    cr_assert_gt(f->port, 0);
    grpc_server_start(f->srv);
    free(key);
    free(cert);
}

static void fca_wait(fake_ca *f, void *want, int secs)
{
    gpr_timespec until = xdsc_deadline_ms(secs * 1000);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(f->cq, until, NULL);
        cr_assert_eq(ev.type, GRPC_OP_COMPLETE, "fake CA: timed out waiting");
        if (ev.tag == want)
            return;
    }
}

/* Waits for one CreateCertificate and answers it with the CSR signed by ca. */
static void fca_serve_one(fake_ca *f, tx_ca *ca, int secs)
{
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload = NULL;
    grpc_metadata_array_init(&md);
    cr_assert_eq(grpc_server_request_registered_call(f->srv, f->method, &call, &deadline, &md,
                                                     &payload, f->cq, f->cq, &f->tag_new),
                 GRPC_CALL_OK);
    fca_wait(f, &f->tag_new, secs);
    uint8_t *b;
    size_t len;
    cr_assert_eq(mgrpc_buffer_to_bytes(payload, &b, &len, NULL), MESH_OK);
    grpc_byte_buffer_destroy(payload);
    Istio__V1__Auth__IstioCertificateRequest *req =
        istio__v1__auth__istio_certificate_request__unpack(NULL, len, b);
    free(b);
    cr_assert_not_null(req);
    int64_t now = (int64_t)time(NULL);
    char *leaf = tx_ca_sign(ca, req->csr, now - 10, now + 3600);
    istio__v1__auth__istio_certificate_request__free_unpacked(req, NULL);
    Istio__V1__Auth__IstioCertificateResponse resp = ISTIO__V1__AUTH__ISTIO_CERTIFICATE_RESPONSE__INIT;
    char *chain[2] = {leaf, ca->pem};
    resp.cert_chain = chain;
    resp.n_cert_chain = 2;
    size_t rl = istio__v1__auth__istio_certificate_response__get_packed_size(&resp);
    uint8_t *rb = malloc(rl ? rl : 1);
    istio__v1__auth__istio_certificate_response__pack(&resp, rb);
    grpc_byte_buffer *bb = mgrpc_buffer_take(rb, rl);
    int cancelled = 0;
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = bb;
    ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[3].data.recv_close_on_server.cancelled = &cancelled;
    cr_assert_eq(grpc_call_start_batch(call, ops, 4, &f->tag_done, NULL), GRPC_CALL_OK);
    fca_wait(f, &f->tag_done, 5);
    grpc_byte_buffer_destroy(bb);
    grpc_call_unref(call);
    grpc_metadata_array_destroy(&md);
    free(leaf);
}

static void fca_stop(fake_ca *f)
{
    grpc_server_shutdown_and_notify(f->srv, f->cq, &f->tag_shutdown);
    grpc_server_cancel_all_calls(f->srv);
    fca_wait(f, &f->tag_shutdown, 5);
    grpc_server_destroy(f->srv);
    grpc_completion_queue_shutdown(f->cq);
    while (grpc_completion_queue_next(f->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(f->cq);
}

/* A renewal that is due goes to the next replica at once when the first is down:
 * with a 10 s backoff, a CreateCertificate within 3 s proves no backoff was taken. */
Test(sidecar_xds_client, renewal_fails_over_to_the_next_replica_at_once, .timeout = 60)
{
    grpc_init();
    tx_ca ca;
    tx_ca_new(&ca, "renew root");
    int64_t now = (int64_t)time(NULL);
    cert_pool *pool;
    mesh_err err = {0};
    cr_assert_eq(cert_pool_new(&pool, &err), MESH_OK);
    cr_assert_eq(cert_pool_set_bundle(pool, ca.pem, now, &err), MESH_OK, "%s", err.msg);
    char *csr;
    cr_assert_eq(cert_pool_make_csr(pool, TX_WEB_ID, false, &csr, &err), MESH_OK);
    /* 80% of its lifetime gone: the renewal is due at once. */
    char *leaf = tx_ca_sign(&ca, csr, now - 400, now + 100);
    cr_assert_eq(cert_pool_offer_svid(pool, leaf, NULL, now, &err), MESH_OK, "%s", err.msg);
    free(leaf);
    free(csr);
    cert_pool_info before;
    cert_pool_get_info(pool, now, &before);

    int dead = free_port();
    fake_ca f;
    fca_start(&f, &ca);
    char dir[64], list[96];
    tx_tmpdir(dir, sizeof dir);
    snprintf(list, sizeof list, "127.0.0.1:%d,127.0.0.1:%d", dead, f.port);
    xdsc_client_opts o = {
        .meshd = list,
        .state_dir = dir,
        .node_id = "web-1",
        .pool = pool,
        .hooks = {.apply = hook_apply},
        .backoff_min_ms = 10000,
        .backoff_max_ms = 20000,
    };
    xdsc_client *c;
    int64_t t0 = xdsc_now_ms();
    cr_assert_eq(xdsc_client_start(&o, &c, &err), MESH_OK, "%s", err.msg);
    fca_serve_one(&f, &ca, 5);
    int64_t took = xdsc_now_ms() - t0;
    cr_assert_lt(took, 3000, "the renewal reached the second replica after %lld ms",
                 (long long)took);
    xdsc_client_status st;
    for (int i = 0; i < 50; i++) {
        xdsc_client_get_status(c, &st);
        if (st.csr_ok)
            break;
        struct timespec ts = {.tv_nsec = 20000000};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(st.csr_ok, 1, "the renewed SVID was taken");
    cert_pool_info after;
    cert_pool_get_info(pool, (int64_t)time(NULL), &after);
    cr_assert_str_neq(after.current.serial_hex, before.current.serial_hex);

    xdsc_client_stop(c);
    fca_stop(&f);
    cert_pool_free(pool);
    tx_ca_free(&ca);
    tx_rmdir(dir);
    grpc_shutdown();
}
