/* tests/unit/test_sidecar_breaker.c — circuit breaker checks and the per-cluster
 * load registry (dp_breaker.c): each limit admits up to its value and refuses the
 * next, counting the refusal under Envoy's stat (max_requests also in
 * upstream_rq_pending_overflow), and loads are shared by cluster name. */
#include <criterion/criterion.h>

#include "sidecar/dp_breaker.h"

static const dp_breaker_cfg B = {
    .set = true, .max_connections = 2, .max_pending_requests = 1, .max_requests = 3,
    .max_retries = 1,
};

Test(sidecar_breaker, requests_admitted_up_to_the_limit)
{
    dp_cluster_load l = {0};
    for (int i = 0; i < 3; i++) {
        cr_assert(dp_breaker_admit(&B, &l, DP_BREAKER_REQUESTS), "request %d", i + 1);
        l.rq_active++;
    }
    cr_assert_not(dp_breaker_admit(&B, &l, DP_BREAKER_REQUESTS), "the 4th overflows");
    cr_assert_eq(l.rq_overflow, 1);
    cr_assert_eq(l.rq_pending_overflow, 1, "Envoy counts it as upstream_rq_pending_overflow");
    cr_assert_eq(l.cx_overflow + l.rq_retry_overflow, 0);
    l.rq_active--;
    cr_assert(dp_breaker_admit(&B, &l, DP_BREAKER_REQUESTS), "room again once one finished");
}

Test(sidecar_breaker, each_limit_counts_its_own_overflow)
{
    dp_cluster_load l = {.cx = 2, .rq_pending = 1, .rq_retry = 1};
    cr_assert_not(dp_breaker_admit(&B, &l, DP_BREAKER_CONNECTIONS));
    cr_assert_not(dp_breaker_admit(&B, &l, DP_BREAKER_PENDING));
    cr_assert_not(dp_breaker_admit(&B, &l, DP_BREAKER_RETRIES));
    cr_assert_eq(l.cx_overflow, 1);
    cr_assert_eq(l.rq_pending_overflow, 1);
    cr_assert_eq(l.rq_retry_overflow, 1);
    cr_assert_eq(l.rq_overflow, 0);
    l.cx = 1;
    cr_assert(dp_breaker_admit(&B, &l, DP_BREAKER_CONNECTIONS));
    cr_assert_eq(l.cx_overflow, 1, "an admission counts nothing");
}

Test(sidecar_breaker, zero_retries_means_none)
{
    dp_breaker_cfg b = B;
    b.max_retries = 0;
    dp_cluster_load l = {0};
    cr_assert_not(dp_breaker_admit(&b, &l, DP_BREAKER_RETRIES));
    cr_assert_eq(l.rq_retry_overflow, 1);
}

Test(sidecar_breaker, limit_names_and_values)
{
    cr_assert_str_eq(dp_breaker_limit_name(DP_BREAKER_CONNECTIONS), "max_connections");
    cr_assert_str_eq(dp_breaker_limit_name(DP_BREAKER_PENDING), "max_pending_requests");
    cr_assert_str_eq(dp_breaker_limit_name(DP_BREAKER_REQUESTS), "max_requests");
    cr_assert_str_eq(dp_breaker_limit_name(DP_BREAKER_RETRIES), "max_retries");
    cr_assert_eq(dp_breaker_max(&B, DP_BREAKER_CONNECTIONS), 2);
    cr_assert_eq(dp_breaker_max(&B, DP_BREAKER_PENDING), 1);
    cr_assert_eq(dp_breaker_max(&B, DP_BREAKER_REQUESTS), 3);
    cr_assert_eq(dp_breaker_max(&B, DP_BREAKER_RETRIES), 1);
}

Test(sidecar_breaker, loads_are_shared_by_name_and_freed_with_the_last_ref)
{
    dp_cluster_load *head = NULL;
    dp_cluster_load *a = dp_load_get(&head, "outbound|api");
    dp_cluster_load *b = dp_load_get(&head, "outbound|web");
    dp_cluster_load *a2 = dp_load_get(&head, "outbound|api");
    cr_assert(a && b && a2);
    cr_assert_eq(a, a2, "one load per cluster name (snapshots share it)");
    cr_assert_neq(a, b);
    a->rq_active = 7;
    dp_load_unref(&head, a);
    cr_assert_eq(a2->rq_active, 7, "still there while a reference is held");
    dp_load_unref(&head, a2);
    cr_assert_eq(head, b, "the last reference unlinks it");
    dp_cluster_load *a3 = dp_load_get(&head, "outbound|api");
    cr_assert_eq(a3->rq_active, 0, "a new one starts from zero");
    dp_load_unref(&head, a3);
    dp_load_unref(&head, b);
    cr_assert_null(head);
    dp_load_unref(&head, NULL);
}
