/* tests/unit/test_meshd_metrics.c — meshd's metrics and readiness (meshd/meshd_metrics.c):
 * /readyz's verdict at each startup step and under store trouble (read or write side), the
 * counters bumped where calls finish (issuances by result and reason, gRPC calls by
 * method and status), and the push-convergence measurement (observed once every pushed
 * type is ACKed, never for a NACK), as rendered on /metrics. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/xds_wire.h"
#include "tests/unit/test_meshd_util.h"
#include "tests/unit/test_sds_util.h"

static md_ctx *ctx;

static void setup(void) { ctx = tmd_ctx_new(NULL); }
static void teardown(void) { tmd_ctx_free(ctx); }

TestSuite(meshd_metrics, .init = setup, .fini = teardown);

static int ready(char *why, size_t len) { return md_ready(ctx, why, len); }

Test(meshd_metrics, readyz_follows_startup_then_store_health)
{
    char why[800];
    ctx->opts.db_path = "/var/lib/meshd/mesh.db";
    cr_assert_eq(ready(why, sizeof why), 0);
    cr_assert_str_eq(why, "store /var/lib/meshd/mesh.db not open yet");
    atomic_store(&ctx->metrics.store_opened, 1);
    cr_assert_eq(ready(why, sizeof why), 0);
    cr_assert_str_eq(why, "CA not loaded yet");
    atomic_store(&ctx->metrics.ca_loaded, 1);
    cr_assert_eq(ready(why, sizeof why), 0);
    cr_assert_str_eq(why, "gRPC server not serving yet");
    atomic_store(&ctx->metrics.serving, 1);
    cr_assert_eq(ready(why, sizeof why), 1);

    md_metrics_store_health(&ctx->metrics, MD_HEALTH_WRITE, "disk I/O error");
    cr_assert_eq(ready(why, sizeof why), 0);
    cr_assert_str_eq(why, "store trouble: disk I/O error");
    /* A healthy read does not clear the write side's trouble. */
    md_metrics_store_health(&ctx->metrics, MD_HEALTH_READ, NULL);
    cr_assert_eq(ready(why, sizeof why), 0);
    md_metrics_store_health(&ctx->metrics, MD_HEALTH_READ, "cannot read");
    cr_assert_str_eq((ready(why, sizeof why), why), "store trouble: cannot read");
    md_metrics_store_health(&ctx->metrics, MD_HEALTH_WRITE, NULL);
    md_metrics_store_health(&ctx->metrics, MD_HEALTH_READ, NULL);
    cr_assert_eq(ready(why, sizeof why), 1);
    cr_assert_str_eq(why, "ready");

    atomic_store(&ctx->shutting_down, 1);
    cr_assert_eq(ready(why, sizeof why), 0);
    cr_assert_str_eq(why, "shutting down");
}

static char *page(void)
{
    char *p = md_metrics_render(ctx, md_now());
    cr_assert_not_null(p);
    return p;
}

static void assert_has(const char *p, const char *line)
{
    char want[400];
    snprintf(want, sizeof want, "\n%s\n", line);
    cr_assert_not_null(strstr(p, want), "no line '%s' in:\n%s", line, p);
}

Test(meshd_metrics, every_family_has_help_and_type)
{
    char *p = page();
    static const char *families[] = {
        "mesh_meshd_issuances_total counter", "mesh_meshd_join_tokens_total counter",
        "mesh_meshd_xds_pushes_total counter", "mesh_meshd_xds_acks_total counter",
        "mesh_meshd_xds_nacks_total counter", "mesh_meshd_xds_resumed_total counter",
        "mesh_meshd_push_convergence_seconds histogram",
        "mesh_meshd_store_latency_seconds histogram", "mesh_meshd_store_errors_total counter",
        "mesh_meshd_grpc_calls_total counter", "mesh_meshd_xds_streams gauge",
        "mesh_meshd_connected_svids gauge", "mesh_meshd_svids_in_renewal_window gauge",
        "mesh_meshd_ca_expiry_seconds gauge", "mesh_meshd_ready gauge"};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char name[100];
        snprintf(name, sizeof name, "%s", families[i]);
        *strchr(name, ' ') = '\0';
        char help[120], type[160];
        snprintf(help, sizeof help, "# HELP %s ", name);
        snprintf(type, sizeof type, "# TYPE %s\n", families[i]);
        cr_assert_not_null(strstr(p, help), "%s", help);
        cr_assert_not_null(strstr(p, type), "%s", type);
    }
    assert_has(p, "mesh_meshd_xds_streams{type=\"delta_ads\",state=\"serving\"} 0");
    assert_has(p, "mesh_meshd_store_latency_seconds_bucket{op=\"issue\",le=\"+Inf\"} 0");
    /* No CA in the cache yet: the expiry gauge has no sample. */
    cr_assert_null(strstr(p, "\nmesh_meshd_ca_expiry_seconds "));
    free(p);
}

Test(meshd_metrics, a_call_status_counts_once_by_method_and_code)
{
    md_call *csr = tmd_call_new(ctx, MD_CALL_CSR, "");
    pthread_mutex_lock(&csr->mu);
    md_call_reply_locked(csr, NULL, GRPC_STATUS_PERMISSION_DENIED, "no");
    md_call_reply_locked(csr, NULL, GRPC_STATUS_OK, "late"); /* ignored: already finishing */
    pthread_mutex_unlock(&csr->mu);
    md_call *ok = tmd_call_new(ctx, MD_CALL_CSR, TSD_WEB);
    pthread_mutex_lock(&ok->mu);
    md_call_reply_locked(ok, NULL, GRPC_STATUS_OK, "");
    pthread_mutex_unlock(&ok->mu);
    md_call *ads = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_call_finish(ads, GRPC_STATUS_UNAVAILABLE, "going away");
    char *p = page();
    assert_has(p, "mesh_meshd_issuances_total{result=\"ok\"} 1");
    assert_has(p, "mesh_meshd_issuances_total{result=\"refused\",reason=\"permission_denied\"} 1");
    assert_has(p, "mesh_meshd_issuances_total{result=\"refused\",reason=\"unavailable\"} 0");
    assert_has(p, "mesh_meshd_grpc_calls_total{method=\"CreateCertificate\",code=\"OK\"} 1");
    assert_has(p, "mesh_meshd_grpc_calls_total{method=\"CreateCertificate\","
                  "code=\"PERMISSION_DENIED\"} 1");
    assert_has(p, "mesh_meshd_grpc_calls_total{method=\"StreamAggregatedResources\","
                  "code=\"UNAVAILABLE\"} 1");
    free(p);
    tmd_call_free(csr);
    tmd_call_free(ok);
    tmd_call_free(ads);
}

static void ack(md_call *c, const char *type_url, enum ads_req_kind kind)
{
    md_stream_note_reply_locked(c, kind, type_url, "v1", "v1", kind == ADS_REQ_NACK ? "bad" : NULL,
                                NULL, NULL);
    md_view_update none;
    memset(&none, 0, sizeof none);
    md_stream_update_locked(c, &none); /* the push pass after a reply settles the measurement */
}

static uint64_t conv_count(void)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= ctx->metrics.convergence.n_bounds; i++)
        n += atomic_load(&ctx->metrics.convergence.counts[i]);
    return n;
}

Test(meshd_metrics, convergence_is_observed_when_every_pushed_type_is_acked)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_stream *s = tmd_stream_new(c);
    pthread_mutex_lock(&c->mu);
    /* A store change seen 300 ms ago is pushed as LDS and RDS. */
    s->push_change_ms = md_now_ms() - 300;
    md_stream_count_push_locked(c, ADS_T_LDS);
    md_stream_count_push_locked(c, ADS_T_RDS);
    s->push_change_ms = 0;
    ack(c, XDS_TYPE_URL_LISTENER, ADS_REQ_ACK);
    cr_assert_eq(conv_count(), 0, "RDS is still awaiting its ACK");
    /* A push without a change (the client asked) joins the open measurement. */
    md_stream_count_push_locked(c, ADS_T_EDS);
    ack(c, XDS_TYPE_URL_ROUTE, ADS_REQ_ACK);
    cr_assert_eq(conv_count(), 0, "EDS is still awaiting its ACK");
    ack(c, XDS_TYPE_URL_ENDPOINT, ADS_REQ_ACK);
    cr_assert_eq(conv_count(), 1);
    cr_assert_eq(atomic_load(&ctx->metrics.convergence.counts[0]), 0, "not under 10 ms");
    cr_assert_geq(atomic_load(&ctx->metrics.convergence.sum_micro), 300000);
    /* Measured once: more ACKs observe nothing. */
    ack(c, XDS_TYPE_URL_LISTENER, ADS_REQ_ACK);
    cr_assert_eq(conv_count(), 1);
    cr_assert_eq(atomic_load(&ctx->metrics.pushes[ADS_T_LDS]), 1);
    cr_assert_eq(atomic_load(&ctx->metrics.acks[ADS_T_LDS]), 2);
    pthread_mutex_unlock(&c->mu);
    tmd_call_free(c);
}

Test(meshd_metrics, a_nack_ends_the_measurement_unobserved)
{
    md_call *c = tmd_call_new(ctx, MD_CALL_ADS, TSD_WEB);
    md_stream *s = tmd_stream_new(c);
    pthread_mutex_lock(&c->mu);
    s->push_change_ms = md_now_ms();
    md_stream_count_push_locked(c, ADS_T_CDS);
    s->push_change_ms = 0;
    ack(c, XDS_TYPE_URL_CLUSTER, ADS_REQ_NACK);
    cr_assert_eq(conv_count(), 0);
    cr_assert_eq(atomic_load(&ctx->metrics.nacks[ADS_T_CDS]), 1);
    /* A later push without a change opens nothing. */
    md_stream_count_push_locked(c, ADS_T_CDS);
    ack(c, XDS_TYPE_URL_CLUSTER, ADS_REQ_ACK);
    cr_assert_eq(conv_count(), 0);
    pthread_mutex_unlock(&c->mu);
    tmd_call_free(c);
}

Test(meshd_metrics, a_store_op_counts_latency_and_errors)
{
    int64_t t0 = md_mono_us() - 2000; /* 2 ms ago */
    md_metrics_store_op(&ctx->metrics, MD_STORE_POLL, t0, MESH_OK);
    md_metrics_store_op(&ctx->metrics, MD_STORE_POLL, t0, MESH_EIO);
    char *p = page();
    assert_has(p, "mesh_meshd_store_latency_seconds_bucket{op=\"poll\",le=\"0.001\"} 0");
    assert_has(p, "mesh_meshd_store_latency_seconds_count{op=\"poll\"} 2");
    assert_has(p, "mesh_meshd_store_errors_total{op=\"poll\"} 1");
    assert_has(p, "mesh_meshd_store_errors_total{op=\"issue\"} 0");
    free(p);
}
