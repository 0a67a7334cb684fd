/* tests/unit/test_sidecar_config.c — dp_config: building, validation (the
 * NACK messages), freezing, copying, lookups; numeric addresses; SPIFFE IDs. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>

#include "sidecar/dp_addr.h"
#include "sidecar/dp_config.h"
#include "sidecar/dp_spiffe.h"

static char *ids_ok[] = {"spiffe://example.org/ns/default/sa/web"};

static dp_listener inbound_listener(const char *name, const char *addr)
{
    dp_listener l = {
        .name = (char *)name,
        .address = (char *)addr,
        .kind = DP_LISTENER_INBOUND_HTTP,
        .allowed_ids = ids_ok,
        .n_allowed = 1,
        .local_cluster = "inbound|web|local",
    };
    return l;
}

static dp_config *basic_config(void)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    dp_listener in = inbound_listener("inbound|9080", "127.0.0.1:15006");
    cr_assert_eq(dp_config_add_listener(c, &in, &e), MESH_OK, "%s", e.msg);
    dp_listener out = {.name = "outbound|http", .address = "127.0.0.1:15001",
                       .kind = DP_LISTENER_OUTBOUND_HTTP, .route_table = "outbound|http"};
    cr_assert_eq(dp_config_add_listener(c, &out, &e), MESH_OK, "%s", e.msg);
    dp_endpoint app = {.address = "127.0.0.1:9080"};
    dp_cluster local = {.name = "inbound|web|local", .endpoints = &app, .n_endpoints = 1};
    cr_assert_eq(dp_config_add_cluster(c, &local, &e), MESH_OK, "%s", e.msg);
    dp_cluster reviews = {.name = "outbound|reviews", .tls = true, .eds = true,
                          .lb = DP_LB_LEAST_REQUEST};
    cr_assert_eq(dp_config_add_cluster(c, &reviews, &e), MESH_OK, "%s", e.msg);
    dp_endpoint eps[2] = {{.address = "10.0.0.1:15006"},
                          {.address = "10.0.0.2:15006", .health = DP_HEALTH_UNHEALTHY}};
    dp_load_assignment la = {.cluster_name = "outbound|reviews", .endpoints = eps,
                             .n_endpoints = 2};
    cr_assert_eq(dp_config_add_assignment(c, &la, &e), MESH_OK, "%s", e.msg);
    dp_weighted_cluster wc = {.cluster = "outbound|reviews", .weight = 1};
    dp_route r = {.path_kind = DP_PATH_PREFIX, .path = "/", .clusters = &wc, .n_clusters = 1,
                  .timeout_ms = 1000};
    char *doms[] = {"reviews", "reviews:9080"};
    dp_virtual_host vh = {.name = "reviews", .domains = doms, .n_domains = 2, .routes = &r,
                          .n_routes = 1};
    dp_route_table rt = {.name = "outbound|http", .vhosts = &vh, .n_vhosts = 1};
    cr_assert_eq(dp_config_add_route_table(c, &rt, &e), MESH_OK, "%s", e.msg);
    return c;
}

Test(sidecar_config, builds_freezes_and_looks_up)
{
    mesh_err e;
    dp_config *c = basic_config();
    cr_assert_eq(dp_config_freeze(c, &e), MESH_OK, "%s", e.msg);
    cr_assert(dp_config_is_frozen(c));
    const dp_listener *l = dp_config_find_listener(c, "outbound|http");
    cr_assert_not_null(l);
    cr_assert_eq(l->sa.ss_family, AF_INET);
    cr_assert_eq(dp_addr_port((const struct sockaddr *)&l->sa), 15001);
    size_t idx = 99;
    const dp_cluster *cl = dp_config_find_cluster(c, "outbound|reviews", &idx);
    cr_assert_not_null(cl);
    cr_assert_eq(dp_config_cluster_at(c, idx), cl);
    size_t n;
    const dp_endpoint *eps = dp_config_cluster_endpoints(c, cl, &n);
    cr_assert_eq(n, 2, "EDS endpoints resolved from the load assignment");
    cr_assert_str_eq(eps[1].address, "10.0.0.2:15006");
    cr_assert_eq(dp_addr_port((const struct sockaddr *)&eps[1].sa), 15006);
    const dp_route_table *rt = dp_config_find_route_table(c, "outbound|http");
    cr_assert_not_null(rt);
    cr_assert_eq(rt->vhosts[0].routes[0].total_weight, 1);
    cr_assert_null(dp_config_find_cluster(c, "nope", NULL));
    cr_assert_null(dp_config_find_listener(c, "nope"));
    /* Frozen snapshots refuse edits. */
    dp_cluster x = {.name = "x"};
    cr_assert_eq(dp_config_add_cluster(c, &x, &e), MESH_EINVAL);
    cr_assert(strstr(e.msg, "frozen"), "%s", e.msg);
    dp_config_unref(c);
}

Test(sidecar_config, copy_keeps_selected_tables_and_is_deep)
{
    mesh_err e;
    dp_config *c = basic_config();
    cr_assert_eq(dp_config_freeze(c, &e), MESH_OK);
    dp_config *d = dp_config_copy(c, DP_TABLE_ALL & ~DP_TABLE_ASSIGNMENTS);
    cr_assert_not_null(d);
    cr_assert(!dp_config_is_frozen(d));
    cr_assert_eq(dp_config_n_listeners(d), 2);
    cr_assert_eq(dp_config_n_assignments(d), 0);
    dp_endpoint ep = {.address = "10.0.0.9:15006"};
    dp_load_assignment la = {.cluster_name = "outbound|reviews", .endpoints = &ep,
                             .n_endpoints = 1};
    cr_assert_eq(dp_config_add_assignment(d, &la, &e), MESH_OK);
    dp_config_unref(c);     /* the copy must not point into the original */
    cr_assert_eq(dp_config_freeze(d, &e), MESH_OK, "%s", e.msg);
    size_t n;
    const dp_endpoint *eps =
        dp_config_cluster_endpoints(d, dp_config_find_cluster(d, "outbound|reviews", NULL), &n);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(eps[0].address, "10.0.0.9:15006");
    cr_assert_str_eq(dp_config_find_listener(d, "inbound|9080")->allowed_ids[0], ids_ok[0]);
    dp_config_unref(d);
}

Test(sidecar_config, refcount_keeps_snapshot_alive)
{
    mesh_err e;
    dp_config *c = basic_config();
    cr_assert_eq(dp_config_freeze(c, &e), MESH_OK);
    dp_config *held = dp_config_ref(c);
    dp_config_unref(c);
    cr_assert_str_eq(dp_config_listener_at(held, 0)->name, "inbound|9080");
    dp_config_unref(held);
    dp_config_unref(NULL);
}

Test(sidecar_config, unknown_references_are_allowed)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    dp_listener out = {.name = "o", .address = "127.0.0.1:0", .kind = DP_LISTENER_OUTBOUND_HTTP,
                       .route_table = "not-yet"};
    cr_assert_eq(dp_config_add_listener(c, &out, &e), MESH_OK);
    dp_weighted_cluster wc = {.cluster = "unknown-cluster", .weight = 5};
    dp_route r = {.path = "/", .clusters = &wc, .n_clusters = 1};
    char *doms[] = {"*"};
    dp_virtual_host vh = {.name = "all", .domains = doms, .n_domains = 1, .routes = &r,
                          .n_routes = 1};
    dp_route_table rt = {.name = "rt", .vhosts = &vh, .n_vhosts = 1};
    cr_assert_eq(dp_config_add_route_table(c, &rt, &e), MESH_OK);
    dp_cluster eds = {.name = "eds-without-assignment", .tls = true, .eds = true};
    cr_assert_eq(dp_config_add_cluster(c, &eds, &e), MESH_OK);
    cr_assert_eq(dp_config_freeze(c, &e), MESH_OK, "route to an unknown cluster is fine: %s",
                 e.msg);
    size_t n = 7;
    cr_assert_null(dp_config_cluster_endpoints(
        c, dp_config_find_cluster(c, "eds-without-assignment", NULL), &n));
    cr_assert_eq(n, 0);
    dp_config_unref(c);
}

/* Builds a config with one broken element and checks the message names it. */
static void expect_invalid(dp_config *c, const char *needle)
{
    mesh_err e;
    mesh_err_clear(&e);
    cr_assert_eq(dp_config_validate(c, &e), MESH_EINVAL, "expected a validation error (%s)",
                 needle);
    cr_assert(strstr(e.msg, needle), "message '%s' should mention '%s'", e.msg, needle);
    cr_assert_eq(dp_config_freeze(c, &e), MESH_EINVAL);
    cr_assert(!dp_config_is_frozen(c), "a failed freeze leaves the snapshot mutable");
    dp_config_unref(c);
}

Test(sidecar_config, bad_listener_address)
{
    mesh_err e;
    const char *bad[] = {"127.0.0.1:99999", "localhost:80", "127.0.0.1", "::1:80", "1.2.3.4:x",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dp_config *c = dp_config_new();
        dp_listener l = inbound_listener("inbound|bad", bad[i]);
        cr_assert_eq(dp_config_add_listener(c, &l, &e), MESH_OK);
        expect_invalid(c, "listener 'inbound|bad'");
    }
    dp_config *c = dp_config_new();
    dp_listener l = inbound_listener("inbound|bad", "127.0.0.1:99999");
    dp_config_add_listener(c, &l, &e);
    expect_invalid(c, "port must be");
}

Test(sidecar_config, duplicate_names_and_addresses)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    dp_listener a = inbound_listener("a", "127.0.0.1:1000");
    dp_listener b = inbound_listener("b", "127.0.0.1:1000");
    dp_config_add_listener(c, &a, &e);
    dp_config_add_listener(c, &b, &e);
    expect_invalid(c, "already used by listener 'a'");

    c = dp_config_new();
    dp_config_add_listener(c, &a, &e);
    a.address = "127.0.0.1:1001";
    dp_config_add_listener(c, &a, &e);
    expect_invalid(c, "duplicate name");

    c = dp_config_new();
    dp_cluster cl = {.name = "c"};
    dp_config_add_cluster(c, &cl, &e);
    dp_config_add_cluster(c, &cl, &e);
    expect_invalid(c, "cluster 'c': duplicate name");

    /* Two ephemeral-port listeners do not collide. */
    c = dp_config_new();
    dp_listener z1 = inbound_listener("z1", "127.0.0.1:0");
    dp_listener z2 = inbound_listener("z2", "127.0.0.1:0");
    dp_config_add_listener(c, &z1, &e);
    dp_config_add_listener(c, &z2, &e);
    cr_assert_eq(dp_config_validate(c, &e), MESH_OK, "%s", e.msg);
    dp_config_unref(c);
}

Test(sidecar_config, listener_kind_requirements)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    dp_listener l = {.name = "o", .address = "127.0.0.1:1", .kind = DP_LISTENER_OUTBOUND_TCP};
    dp_config_add_listener(c, &l, &e);
    expect_invalid(c, "needs cluster");

    c = dp_config_new();
    l.kind = DP_LISTENER_OUTBOUND_HTTP;
    dp_config_add_listener(c, &l, &e);
    expect_invalid(c, "needs route_table");

    c = dp_config_new();
    l.kind = DP_LISTENER_INBOUND_TCP;
    dp_config_add_listener(c, &l, &e);
    expect_invalid(c, "needs local_cluster");

    c = dp_config_new();
    char *bad_ids[] = {"http://example.org/x"};
    dp_listener in = inbound_listener("in", "127.0.0.1:2");
    in.allowed_ids = bad_ids;
    dp_config_add_listener(c, &in, &e);
    expect_invalid(c, "allowed_ids[0]");
}

Test(sidecar_config, bad_routes)
{
    mesh_err e;
    struct {
        dp_route r;
        const char *needle;
    } cases[] = {
        {{.path_kind = DP_PATH_EXACT, .path = "x"}, "must start with '/'"},
        {{.path = "/"}, "no destination cluster"},
    };
    for (size_t i = 0; i < 2; i++) {
        dp_config *c = dp_config_new();
        char *doms[] = {"h"};
        dp_virtual_host vh = {.name = "v", .domains = doms, .n_domains = 1,
                              .routes = &cases[i].r, .n_routes = 1};
        dp_route_table rt = {.name = "rt", .vhosts = &vh, .n_vhosts = 1};
        cr_assert_eq(dp_config_add_route_table(c, &rt, &e), MESH_OK);
        expect_invalid(c, cases[i].needle);
    }
    /* Weights summing to zero. */
    dp_config *c = dp_config_new();
    dp_weighted_cluster wc[2] = {{.cluster = "a"}, {.cluster = "b"}};
    dp_route r = {.path = "/", .clusters = wc, .n_clusters = 2};
    char *doms[] = {"h"};
    dp_virtual_host vh = {.name = "v", .domains = doms, .n_domains = 1, .routes = &r,
                          .n_routes = 1};
    dp_route_table rt = {.name = "rt", .vhosts = &vh, .n_vhosts = 1};
    dp_config_add_route_table(c, &rt, &e);
    expect_invalid(c, "sum to 0");
    /* A header matcher without a value. */
    c = dp_config_new();
    wc[0].weight = 1;
    dp_header_matcher hm = {.name = "x-user", .kind = DP_HDR_EXACT};
    r.headers = &hm;
    r.n_headers = 1;
    dp_config_add_route_table(c, &rt, &e);
    expect_invalid(c, "header 'x-user'");
    /* The same domain in two virtual hosts; a '*' in the middle. */
    c = dp_config_new();
    r.n_headers = 0;
    char *doms2[] = {"H"};
    dp_virtual_host two[2] = {vh, vh};
    two[1].name = "w";
    two[1].domains = doms2;
    dp_route_table rt2 = {.name = "rt", .vhosts = two, .n_vhosts = 2};
    dp_config_add_route_table(c, &rt2, &e);
    expect_invalid(c, "appears in virtual hosts");
    c = dp_config_new();
    char *doms3[] = {"a.*.com"};
    vh.domains = doms3;
    dp_config_add_route_table(c, &rt, &e);
    expect_invalid(c, "'*' may only");
}

Test(sidecar_config, bad_clusters_and_assignments)
{
    mesh_err e;
    dp_config *c = dp_config_new();
    char *sans[] = {"spiffe://UPPER.case/x"};
    dp_cluster cl = {.name = "c", .tls = true, .san_ids = sans, .n_san = 1};
    dp_config_add_cluster(c, &cl, &e);
    expect_invalid(c, "san_ids[0]");

    c = dp_config_new();
    dp_endpoint ep = {.address = "10.0.0.1:0"};
    dp_cluster st = {.name = "s", .endpoints = &ep, .n_endpoints = 1};
    dp_config_add_cluster(c, &st, &e);
    expect_invalid(c, "cluster 's': endpoint 0");

    c = dp_config_new();
    dp_endpoint ep2 = {.address = "not-an-ip:80"};
    dp_load_assignment la = {.cluster_name = "x", .endpoints = &ep2, .n_endpoints = 1};
    dp_config_add_assignment(c, &la, &e);
    expect_invalid(c, "load assignment 'x'");

    c = dp_config_new();
    dp_cluster neg = {.name = "n", .connect_timeout_ms = -1};
    dp_config_add_cluster(c, &neg, &e);
    expect_invalid(c, "connect_timeout");

    c = dp_config_new();
    cr_assert_eq(dp_config_add_cluster(c, &(dp_cluster){.name = ""}, &e), MESH_EINVAL);
    cr_assert(strstr(e.msg, "without a name"));
    dp_config_unref(c);
}

Test(sidecar_config, addresses)
{
    struct sockaddr_storage sa;
    socklen_t sl;
    mesh_err e;
    cr_assert_eq(dp_addr_parse("[::1]:8080", false, &sa, &sl, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(sa.ss_family, AF_INET6);
    char buf[80];
    dp_addr_format((struct sockaddr *)&sa, buf, sizeof buf);
    cr_assert_str_eq(buf, "[::1]:8080");
    cr_assert_eq(dp_addr_parse("10.1.2.3:0", false, &sa, &sl, &e), MESH_EINVAL);
    cr_assert_eq(dp_addr_parse("10.1.2.3:0", true, &sa, &sl, &e), MESH_OK);
    cr_assert_eq(dp_addr_parse("[::1]8080", false, &sa, &sl, &e), MESH_EINVAL);
    cr_assert(strstr(e.msg, "[addr]:port"), "%s", e.msg);
    cr_assert_eq(dp_addr_join(buf, sizeof buf, "fe80::1", 443, &e), MESH_OK);
    cr_assert_str_eq(buf, "[fe80::1]:443");
    cr_assert_eq(dp_addr_join(buf, sizeof buf, "10.0.0.1", 70000, &e), MESH_EINVAL);
}

Test(sidecar_config, spiffe_ids)
{
    char td[256];
    mesh_err e;
    cr_assert_eq(dp_spiffe_check("spiffe://example.org/ns/a/sa/b", td, sizeof td, &e), MESH_OK);
    cr_assert_str_eq(td, "example.org");
    const char *bad[] = {"spiffe://", "spiffe://Example.org/x", "spiffe://td/a//b",
                         "spiffe://td/a/../b", "spiffe://td/", "https://td/x",
                         "spiffe://td/a?b=c", "spiffe://td:443/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(dp_spiffe_check(bad[i], NULL, 0, &e), MESH_EINVAL, "%s accepted", bad[i]);
}
