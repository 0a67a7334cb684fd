/* tests/unit/test_sidecar_metrics.c — per-cluster/route/peer request metrics:
 * counting, the histogram, the exposition's shape, and the series bound. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/prom_out.h"
#include "sidecar/dp_metrics.h"

static char *render(const dp_metrics *m)
{
    prom_out p;
    prom_init(&p);
    dp_metrics_write(m, &p);
    char *s = strdup(prom_text(&p));
    prom_free(&p);
    return s;
}

Test(sidecar_metrics, counts_by_cluster_route_peer_and_class)
{
    dp_metrics *m = dp_metrics_new();
    cr_assert_not_null(m);
    dp_metrics_sample ok = {.inbound = 0, .cluster = "outbound|backend", .route = "backend",
                            .peer = "spiffe://example.org/ns/default/sa/backend",
                            .status = 200, .duration_us = 3000, .bytes_in = 10, .bytes_out = 20};
    dp_metrics_record(m, &ok);
    dp_metrics_record(m, &ok);
    dp_metrics_sample bad = ok;
    bad.status = 503;
    bad.duration_us = 2000000;
    dp_metrics_record(m, &bad);
    dp_metrics_sample reset = {.inbound = 1, .status = 0, .duration_us = 1};
    dp_metrics_record(m, &reset);
    cr_assert_eq(dp_metrics_series(m), 2);
    char *t = render(m);
    cr_assert_not_null(strstr(t, "# TYPE mesh_sidecar_cluster_requests_total counter\n"), "%s", t);
    cr_assert_not_null(strstr(t, "mesh_sidecar_cluster_requests_total{direction=\"outbound\","
                                 "cluster=\"outbound|backend\",route=\"backend\",peer=\"spiffe:"
                                 "//example.org/ns/default/sa/backend\",code_class=\"2xx\"} 2\n"),
                       "%s", t);
    cr_assert_not_null(strstr(t, "code_class=\"5xx\"} 1\n"), "%s", t);
    cr_assert_not_null(strstr(t, "mesh_sidecar_cluster_requests_total{direction=\"inbound\","
                                 "cluster=\"none\",route=\"none\",peer=\"unknown\","
                                 "code_class=\"reset\"} 1\n"),
                       "%s", t);
    cr_assert_not_null(strstr(t, "# TYPE mesh_sidecar_cluster_request_duration_seconds "
                                 "histogram\n"), "%s", t);
    /* 3 ms twice in le=0.005, 2 s in le=2.5; cumulative; count 3 */
    cr_assert_not_null(strstr(t, "route=\"backend\",peer=\"spiffe://example.org/ns/default/sa/"
                                 "backend\",le=\"0.005\"} 2\n"), "%s", t);
    cr_assert_not_null(strstr(t, "le=\"2.5\"} 3\n"), "%s", t);
    cr_assert_not_null(strstr(t, "mesh_sidecar_cluster_request_duration_seconds_count{direction="
                                 "\"outbound\",cluster=\"outbound|backend\",route=\"backend\","
                                 "peer=\"spiffe://example.org/ns/default/sa/backend\"} 3\n"),
                       "%s", t);
    cr_assert_not_null(strstr(t, "mesh_sidecar_cluster_request_bytes_total{direction=\"outbound\","
                                 "cluster=\"outbound|backend\",route=\"backend\",peer=\"spiffe://"
                                 "example.org/ns/default/sa/backend\"} 30\n"), "%s", t);
    free(t);
    dp_metrics_free(m);
}

/* A peer that sends a new SPIFFE ID per request cannot grow memory: past the
 * bound, new keys land in one overflow series; old keys still count. */
Test(sidecar_metrics, series_are_bounded)
{
    dp_metrics *m = dp_metrics_new();
    char peer[64];
    for (int i = 0; i < DP_METRICS_MAX_SERIES + 500; i++) {
        snprintf(peer, sizeof peer, "spiffe://example.org/ns/x/sa/p%d", i);
        dp_metrics_sample s = {.inbound = 1, .cluster = "inbound", .route = "r", .peer = peer,
                               .status = 200};
        dp_metrics_record(m, &s);
    }
    cr_assert_eq(dp_metrics_series(m), DP_METRICS_MAX_SERIES + 1);
    dp_metrics_sample old = {.inbound = 1, .cluster = "inbound", .route = "r",
                             .peer = "spiffe://example.org/ns/x/sa/p0", .status = 200};
    dp_metrics_record(m, &old);
    char *t = render(m);
    cr_assert_not_null(strstr(t, "peer=\"spiffe://example.org/ns/x/sa/p0\",code_class=\"2xx\"} 2\n"),
                       "a known key still counts");
    cr_assert_not_null(strstr(t, "cluster=\"overflow\",route=\"overflow\",peer=\"overflow\","
                                 "code_class=\"2xx\"} 500\n"));
    free(t);
    dp_metrics_free(m);
}

Test(sidecar_metrics, label_values_are_escaped)
{
    dp_metrics *m = dp_metrics_new();
    dp_metrics_sample s = {.inbound = 1, .cluster = "c\"1\\\n", .route = "r", .peer = "p",
                           .status = 404};
    dp_metrics_record(m, &s);
    char *t = render(m);
    cr_assert_not_null(strstr(t, "cluster=\"c\\\"1\\\\\\n\""), "%s", t);
    free(t);
    dp_metrics_free(m);
}
