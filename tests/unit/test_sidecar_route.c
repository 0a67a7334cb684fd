/* tests/unit/test_sidecar_route.c — route matching (virtual hosts by Host
 * with and without port, prefix vs exact path, header matchers, first match
 * wins) and weighted cluster picks; load balancing (round robin order,
 * least-request preference, health). */
#include <criterion/criterion.h>
#include <string.h>

#include "sidecar/dp_lb.h"
#include "sidecar/dp_route.h"

/* A frozen route table built from stack structs. */
static dp_config *cfg_with(dp_virtual_host *vh, size_t n)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    dp_route_table rt = {.name = "rt", .vhosts = vh, .n_vhosts = n};
    cr_assert_eq(dp_config_add_route_table(c, &rt, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(dp_config_freeze(c, &e), MESH_OK, "%s", e.msg);
    return c;
}

static const char *route_to(const dp_route_table *rt, const char *host, const char *path,
                            const dp_http_header *h, size_t nh)
{
    dp_route_req rq = {.host = host, .host_len = host ? strlen(host) : 0, .path = path,
                       .path_len = strlen(path), .headers = h, .n_headers = nh};
    const dp_route *r = dp_route_match(rt, &rq, NULL);
    return r ? r->clusters[0].cluster : NULL;
}

static dp_http_header hdr(const char *n, const char *v)
{
    dp_http_header h = {.name = n, .name_len = strlen(n), .value = v, .value_len = strlen(v)};
    return h;
}

#define ROUTE(kind, p, cl) {.path_kind = kind, .path = p, .clusters = cl, .n_clusters = 1}

Test(sidecar_route, host_with_and_without_port)
{
    dp_weighted_cluster a = {"a", 1}, b = {"b", 1}, star = {"star", 1}, sfx = {"suffix", 1},
                        pfx = {"prefix", 1}, withport = {"withport", 1};
    dp_route ra[] = {ROUTE(DP_PATH_PREFIX, "/", &a)}, rb[] = {ROUTE(DP_PATH_PREFIX, "/", &b)},
             rs[] = {ROUTE(DP_PATH_PREFIX, "/", &star)},
             rx[] = {ROUTE(DP_PATH_PREFIX, "/", &sfx)},
             rp[] = {ROUTE(DP_PATH_PREFIX, "/", &pfx)},
             rw[] = {ROUTE(DP_PATH_PREFIX, "/", &withport)};
    char *da[] = {"reviews"}, *db[] = {"ratings", "ratings.default.svc"}, *ds[] = {"*"},
         *dx[] = {"*.example.com"}, *dpf[] = {"api.*"}, *dw[] = {"reviews:9999"};
    dp_virtual_host vh[] = {
        {.name = "star", .domains = ds, .n_domains = 1, .routes = rs, .n_routes = 1},
        {.name = "a", .domains = da, .n_domains = 1, .routes = ra, .n_routes = 1},
        {.name = "b", .domains = db, .n_domains = 2, .routes = rb, .n_routes = 1},
        {.name = "x", .domains = dx, .n_domains = 1, .routes = rx, .n_routes = 1},
        {.name = "p", .domains = dpf, .n_domains = 1, .routes = rp, .n_routes = 1},
        {.name = "w", .domains = dw, .n_domains = 1, .routes = rw, .n_routes = 1},
    };
    dp_config *c = cfg_with(vh, 6);
    const dp_route_table *rt = dp_config_find_route_table(c, "rt");
    cr_assert_str_eq(route_to(rt, "reviews", "/", NULL, 0), "a");
    cr_assert_str_eq(route_to(rt, "reviews:9080", "/", NULL, 0), "a", "port is stripped");
    cr_assert_str_eq(route_to(rt, "REVIEWS:9080", "/", NULL, 0), "a", "case-insensitive");
    cr_assert_str_eq(route_to(rt, "reviews:9999", "/", NULL, 0), "withport",
                     "an exact host:port domain wins over the bare host");
    cr_assert_str_eq(route_to(rt, "ratings.default.svc:80", "/", NULL, 0), "b");
    cr_assert_str_eq(route_to(rt, "foo.example.com", "/", NULL, 0), "suffix");
    cr_assert_str_eq(route_to(rt, "api.internal:8080", "/", NULL, 0), "prefix");
    cr_assert_str_eq(route_to(rt, "unknown", "/", NULL, 0), "star", "'*' is the fallback");
    cr_assert_str_eq(route_to(rt, NULL, "/", NULL, 0), "star");
    cr_assert_str_eq(route_to(rt, ".example.com", "/", NULL, 0), "star",
                     "a wildcard must match at least one character");
    dp_config_unref(c);
}

Test(sidecar_route, no_virtual_host_means_no_route)
{
    dp_weighted_cluster a = {"a", 1};
    dp_route r[] = {ROUTE(DP_PATH_PREFIX, "/", &a)};
    char *d[] = {"only"};
    dp_virtual_host vh = {.name = "v", .domains = d, .n_domains = 1, .routes = r, .n_routes = 1};
    dp_config *c = cfg_with(&vh, 1);
    const dp_route_table *rt = dp_config_find_route_table(c, "rt");
    const dp_virtual_host *got = (const dp_virtual_host *)1;
    dp_route_req rq = {.host = "other", .host_len = 5, .path = "/", .path_len = 1};
    cr_assert_null(dp_route_match(rt, &rq, &got));
    cr_assert_null(got);
    dp_config_unref(c);
}

Test(sidecar_route, prefix_exact_and_first_match_wins)
{
    dp_weighted_cluster exact = {"exact", 1}, v2 = {"v2", 1}, root = {"root", 1},
                        shadow = {"shadowed", 1};
    dp_route r[] = {
        ROUTE(DP_PATH_EXACT, "/api/health", &exact),
        ROUTE(DP_PATH_PREFIX, "/api/v2", &v2),
        ROUTE(DP_PATH_PREFIX, "/", &root),
        ROUTE(DP_PATH_PREFIX, "/api/v2/never", &shadow),
    };
    char *d[] = {"*"};
    dp_virtual_host vh = {.name = "v", .domains = d, .n_domains = 1, .routes = r, .n_routes = 4};
    dp_config *c = cfg_with(&vh, 1);
    const dp_route_table *rt = dp_config_find_route_table(c, "rt");
    cr_assert_str_eq(route_to(rt, "h", "/api/health", NULL, 0), "exact");
    cr_assert_str_eq(route_to(rt, "h", "/api/health?verbose=1", NULL, 0), "exact",
                     "exact path ignores the query string");
    cr_assert_str_eq(route_to(rt, "h", "/api/healthz", NULL, 0), "root",
                     "exact is not a prefix");
    cr_assert_str_eq(route_to(rt, "h", "/api/v2/never/x", NULL, 0), "v2",
                     "first match wins over a longer later prefix");
    cr_assert_str_eq(route_to(rt, "h", "/api/v2", NULL, 0), "v2");
    cr_assert_str_eq(route_to(rt, "h", "/api/V2", NULL, 0), "root", "paths are case-sensitive");
    dp_config_unref(c);
}

Test(sidecar_route, header_matchers)
{
    dp_weighted_cluster canary = {"canary", 1}, beta = {"beta", 1}, dbg = {"debug", 1},
                        notmob = {"not-mobile", 1}, dflt = {"default", 1};
    dp_header_matcher m_exact = {.name = "x-user", .kind = DP_HDR_EXACT, .value = "jason"};
    dp_header_matcher m_prefix = {.name = "X-Version", .kind = DP_HDR_PREFIX, .value = "beta-"};
    dp_header_matcher m_present = {.name = "x-debug", .kind = DP_HDR_PRESENT};
    dp_header_matcher m_inv = {.name = "x-client", .kind = DP_HDR_EXACT, .value = "mobile",
                               .invert = true};
    dp_header_matcher both[] = {m_exact, m_present};
    dp_route r[] = {
        {.path = "/", .headers = both, .n_headers = 2, .clusters = &dbg, .n_clusters = 1},
        {.path = "/", .headers = &m_exact, .n_headers = 1, .clusters = &canary, .n_clusters = 1},
        {.path = "/", .headers = &m_prefix, .n_headers = 1, .clusters = &beta, .n_clusters = 1},
        {.path = "/p", .headers = &m_inv, .n_headers = 1, .clusters = &notmob, .n_clusters = 1},
        {.path = "/", .clusters = &dflt, .n_clusters = 1},
    };
    char *d[] = {"*"};
    dp_virtual_host vh = {.name = "v", .domains = d, .n_domains = 1, .routes = r, .n_routes = 5};
    dp_config *c = cfg_with(&vh, 1);
    const dp_route_table *rt = dp_config_find_route_table(c, "rt");
    dp_http_header h1[] = {hdr("X-User", "jason")};
    cr_assert_str_eq(route_to(rt, "h", "/", h1, 1), "canary", "exact, name case-insensitive");
    dp_http_header h2[] = {hdr("x-user", "Jason")};
    cr_assert_str_eq(route_to(rt, "h", "/", h2, 1), "default", "values are case-sensitive");
    dp_http_header h3[] = {hdr("x-user", "jason"), hdr("x-debug", "")};
    cr_assert_str_eq(route_to(rt, "h", "/", h3, 2), "debug", "all matchers must hold; empty "
                     "value still counts as present");
    dp_http_header h4[] = {hdr("x-version", "beta-7")};
    cr_assert_str_eq(route_to(rt, "h", "/", h4, 1), "beta");
    dp_http_header h5[] = {hdr("x-version", "beta")};
    cr_assert_str_eq(route_to(rt, "h", "/", h5, 1), "default", "prefix longer than the value");
    dp_http_header h6[] = {hdr("x-user", "jason"), hdr("x-user", "other")};
    cr_assert_str_eq(route_to(rt, "h", "/", h6, 2), "default",
                     "repeated headers match as one joined value 'jason,other'");
    cr_assert_str_eq(route_to(rt, "h", "/p", NULL, 0), "not-mobile", "inverted: absent ok");
    dp_http_header h7[] = {hdr("x-client", "mobile")};
    cr_assert_str_eq(route_to(rt, "h", "/p", h7, 1), "default", "inverted: match excludes");
    dp_config_unref(c);
}

Test(sidecar_route, weighted_pick_distribution)
{
    dp_weighted_cluster wc[] = {{"v1", 70}, {"v2", 20}, {"v3", 10}};
    dp_route r = {.path = "/", .clusters = wc, .n_clusters = 3};
    char *d[] = {"*"};
    dp_virtual_host vh = {.name = "v", .domains = d, .n_domains = 1, .routes = &r,
                          .n_routes = 1};
    dp_config *c = cfg_with(&vh, 1);
    const dp_route *fr = &dp_config_find_route_table(c, "rt")->vhosts[0].routes[0];
    cr_assert_eq(fr->total_weight, 100);
    dp_rng rng;
    dp_rng_seed(&rng, 42);
    int counts[3] = {0};
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        const char *p = dp_route_pick_cluster(fr, &rng);
        counts[p[1] - '1']++;
    }
    /* Binomial sd at n=1e5 is <= 150; 1% tolerance is > 6 sd. */
    cr_assert(counts[0] > 69000 && counts[0] < 71000, "v1 %d", counts[0]);
    cr_assert(counts[1] > 19000 && counts[1] < 21000, "v2 %d", counts[1]);
    cr_assert(counts[2] > 9000 && counts[2] < 11000, "v3 %d", counts[2]);
    /* Same seed, same sequence. */
    dp_rng a, b;
    dp_rng_seed(&a, 7);
    dp_rng_seed(&b, 7);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(dp_route_pick_cluster(fr, &a), dp_route_pick_cluster(fr, &b));
    dp_config_unref(c);
}

static uint64_t fixed_seq(void *arg)
{
    uint64_t *v = arg;
    return (*v)++;
}

Test(sidecar_route, weighted_pick_with_injected_rng_is_exact)
{
    dp_weighted_cluster wc[] = {{"a", 1}, {"zero", 0}, {"b", 3}};
    dp_route r = {.path = "/", .clusters = wc, .n_clusters = 3, .total_weight = 4};
    dp_rng rng;
    uint64_t next = 0;
    dp_rng_custom(&rng, fixed_seq, &next);
    /* Values 0,1,2,3 map to a,b,b,b; a zero weight is never picked. */
    cr_assert_str_eq(dp_route_pick_cluster(&r, &rng), "a");
    cr_assert_str_eq(dp_route_pick_cluster(&r, &rng), "b");
    cr_assert_str_eq(dp_route_pick_cluster(&r, &rng), "b");
    cr_assert_str_eq(dp_route_pick_cluster(&r, &rng), "b");
    cr_assert_str_eq(dp_route_pick_cluster(&r, &rng), "a");
}

/* ---- load balancing ------------------------------------------------------------------ */

Test(sidecar_lb, round_robin_order_skips_unhealthy)
{
    dp_endpoint eps[4] = {{.address = "a"}, {.address = "b", .health = DP_HEALTH_UNHEALTHY},
                          {.address = "c", .health = DP_HEALTH_HEALTHY}, {.address = "d"}};
    uint64_t cur = 0;
    dp_rng rng;
    dp_rng_seed(&rng, 1);
    long want[] = {0, 2, 3, 0, 2, 3, 0};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_eq(dp_lb_pick(DP_LB_ROUND_ROBIN, eps, 4, NULL, &cur, &rng, -1), want[i],
                     "step %zu", i);
    /* avoid: a retry goes to another endpoint when one exists. */
    cur = 0;
    cr_assert_eq(dp_lb_pick(DP_LB_ROUND_ROBIN, eps, 4, NULL, &cur, &rng, 0), 2);
    dp_endpoint one[1] = {{.address = "x"}};
    cur = 0;
    cr_assert_eq(dp_lb_pick(DP_LB_ROUND_ROBIN, one, 1, NULL, &cur, &rng, 0), 0,
                 "the only endpoint is used even if it is the one to avoid");
}

Test(sidecar_lb, degraded_then_panic_fallback)
{
    uint64_t cur = 0;
    dp_rng rng;
    dp_rng_seed(&rng, 1);
    dp_endpoint bad[2] = {{.address = "a", .health = DP_HEALTH_UNHEALTHY},
                          {.address = "b", .health = DP_HEALTH_DRAINING}};
    /* Panic: nothing healthy or degraded, so every endpoint takes traffic
     * (in turn for round robin; avoid still moves a retry to the other). */
    cr_assert_eq(dp_lb_pick(DP_LB_ROUND_ROBIN, bad, 2, NULL, &cur, &rng, -1), 0);
    cr_assert_eq(dp_lb_pick(DP_LB_ROUND_ROBIN, bad, 2, NULL, &cur, &rng, -1), 1);
    cr_assert_eq(dp_lb_pick(DP_LB_ROUND_ROBIN, bad, 2, NULL, &cur, &rng, 0), 1);
    int seen[2] = {0};
    for (int i = 0; i < 200; i++) {
        long k = dp_lb_pick(DP_LB_LEAST_REQUEST, bad, 2, NULL, &cur, &rng, -1);
        cr_assert(k == 0 || k == 1);
        seen[k]++;
    }
    cr_assert(seen[0] > 0 && seen[1] > 0, "panic spreads over all: %d/%d", seen[0], seen[1]);
    cr_assert_eq(dp_lb_pick(DP_LB_LEAST_REQUEST, bad, 2, NULL, &cur, &rng, 1), 0);
    cr_assert_eq(dp_lb_pick(DP_LB_ROUND_ROBIN, NULL, 0, NULL, &cur, &rng, -1), -1);
    cr_assert_eq(dp_lb_pick(DP_LB_LEAST_REQUEST, NULL, 0, NULL, &cur, &rng, -1), -1);
    dp_endpoint deg[2] = {{.address = "a", .health = DP_HEALTH_UNHEALTHY},
                          {.address = "b", .health = DP_HEALTH_DEGRADED}};
    cr_assert_eq(dp_lb_pick(DP_LB_ROUND_ROBIN, deg, 2, NULL, &cur, &rng, -1), 1);
    cr_assert_eq(dp_lb_pick(DP_LB_LEAST_REQUEST, deg, 2, NULL, &cur, &rng, -1), 1);
}

Test(sidecar_lb, least_request_prefers_fewer_active)
{
    dp_endpoint eps[3] = {{.address = "a"}, {.address = "b"}, {.address = "c"}};
    uint32_t active[3] = {10, 0, 10};
    dp_rng rng;
    dp_rng_seed(&rng, 99);
    uint64_t cur = 0;
    int hits[3] = {0};
    for (int i = 0; i < 3000; i++)
        hits[dp_lb_pick(DP_LB_LEAST_REQUEST, eps, 3, active, &cur, &rng, -1)]++;
    /* P2C picks b whenever it is sampled: 2 of the 3 pairs contain it. */
    cr_assert(hits[1] > 1800 && hits[1] < 2200, "b picked %d/3000", hits[1]);
    cr_assert(hits[0] + hits[2] > 800, "the busy ones still get the b-less pairs");
    /* Two endpoints: the less loaded always wins. */
    uint32_t two[2] = {5, 1};
    for (int i = 0; i < 100; i++)
        cr_assert_eq(dp_lb_pick(DP_LB_LEAST_REQUEST, eps, 2, two, &cur, &rng, -1), 1);
    /* Equal load spreads across all. */
    uint32_t eq[3] = {0, 0, 0};
    int spread[3] = {0};
    for (int i = 0; i < 3000; i++)
        spread[dp_lb_pick(DP_LB_LEAST_REQUEST, eps, 3, eq, &cur, &rng, -1)]++;
    for (int i = 0; i < 3; i++)
        cr_assert(spread[i] > 800, "endpoint %d got %d", i, spread[i]);
}
