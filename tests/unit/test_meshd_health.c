/* tests/unit/test_meshd_health.c — endpoint health from meshd's view (issue 13):
 * the grace decision with injected time, which proxy-status rows stand for
 * which workload, the unhealthy set meshd computes from rows, and what the
 * compiler makes of it (EDS health_status UNHEALTHY for exactly those
 * workloads, a new EDS version only for the views that hold one of them). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "config/mesh_config.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "meshd/meshd_health.h"
#include "sds/compiler/xds_compile.h"
#include "sds/compiler/xds_compile_workload.h"
#include "sds/compiler/xds_health.h"

#define TD "spiffe://example.org/ns/demo/sa/"
static const char MESH[] =
    "services:\n"
    "  - {name: web, protocol: http, port: 8080}\n"
    "  - {name: backend, protocol: http, port: 9000}\n"
    "  - {name: db, protocol: tcp, port: 5432}\n"
    "workloads:\n"
    "  - {name: web-1, spiffe_id: \"" TD "web\", service: web, inbound: \"127.0.0.1:15001\", "
    "app: \"127.0.0.1:18001\", outbound: \"127.0.0.1:15101\"}\n"
    "  - {name: backend-1, spiffe_id: \"" TD "backend\", service: backend, "
    "inbound: \"127.0.0.1:15011\", app: \"127.0.0.1:18011\"}\n"
    "  - {name: backend-2, spiffe_id: \"" TD "backend\", service: backend, "
    "inbound: \"127.0.0.1:15012\", app: \"127.0.0.1:18012\"}\n"
    "  - {name: db-1, spiffe_id: \"" TD "db\", service: db, inbound: \"127.0.0.1:15021\", "
    "app: \"127.0.0.1:18021\"}\n"
    "authorization:\n"
    "  - {service: backend, allow: [\"" TD "web\"]}\n";

static void parse(mesh_config *cfg)
{
    mesh_err err = {0};
    cr_assert_eq(mesh_config_parse_buffer("mesh.yaml", MESH, strlen(MESH), cfg, &err), MESH_OK,
                 "parse: %s", err.msg);
}

/* ---- the decision ------------------------------------------------------------ */

Test(meshd_health, grace_decision)
{
    /* off: always up */
    cr_assert(md_health_endpoint_up(false, 0, 0, 1000000, 0));
    /* connected: up whatever the times */
    cr_assert(md_health_endpoint_up(true, 0, 0, 1000000, 30));
    /* never seen: counted from when meshd first saw the workload */
    cr_assert(md_health_endpoint_up(false, 0, 1000, 1029, 30));
    cr_assert_not(md_health_endpoint_up(false, 0, 1000, 1030, 30));
    /* went away at 2000: still up within the grace, down from 2030 */
    cr_assert(md_health_endpoint_up(false, 2000, 1000, 2029, 30));
    cr_assert_not(md_health_endpoint_up(false, 2000, 1000, 2030, 30));
    /* an old last_seen before meshd (re)started: the grace runs from the start */
    cr_assert(md_health_endpoint_up(false, 500, 1000, 1010, 30));
    cr_assert_not(md_health_endpoint_up(false, 500, 1000, 1031, 30));
}

Test(meshd_health, which_rows_stand_for_which_instance)
{
    cr_assert_str_eq(md_health_row_instance(TD "web", "web-1"), "web-1");
    cr_assert_str_eq(md_health_row_instance(TD "web", TD "web"), "", "identity-wide");
    cr_assert_str_eq(md_health_row_instance(TD "web", TD "web#web-2"), "web-2");
    cr_assert_str_eq(md_health_row_instance(TD "web", TD "webx#web-2"), TD "webx#web-2",
                     "a prefix of another identity is just a node name");
    cr_assert_null(md_health_row_instance("unverified:" TD "web", "web-1"),
                   "a plaintext claim proves nothing");
    cr_assert_null(md_health_row_instance(NULL, "x"));
}

static store_proxy row(const char *id, const char *node, int connected, int64_t last_seen)
{
    store_proxy p;
    memset(&p, 0, sizeof p);
    p.spiffe_id = (char *)id;
    p.node_id = (char *)node;
    p.connected = connected;
    p.last_seen = last_seen;
    return p;
}

static void assert_set(const xds_health *h, const char *const *want, size_t n)
{
    cr_assert_eq(h->n, n, "%zu unhealthy, want %zu (first: %s)", h->n, n,
                 h->n ? h->unhealthy[0] : "-");
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(h->unhealthy[i], want[i]);
}

Test(meshd_health, compute_from_rows_with_injected_time)
{
    mesh_config cfg;
    parse(&cfg);
    md_health_tracker t = {0};
    mesh_err err = {0};
    xds_health h;
    /* meshd starts at 1000: web-1 and backend-1 connected, backend-2 left at 990
     * (before the start), db-1 never connected. */
    store_proxy rows[] = {row(TD "web", "web-1", 1, 1000), row(TD "backend", "backend-1", 1, 995),
                          row(TD "backend", "backend-2", 0, 990),
                          row("unverified:" TD "db", "db-1", 1, 1000)};
    cr_assert_eq(md_health_compute(&t, &cfg, rows, 4, 1000, 30, &h, &err), MESH_OK, "%s", err.msg);
    assert_set(&h, NULL, 0);
    xds_health_free(&h);
    cr_assert_eq(md_health_compute(&t, &cfg, rows, 4, 1029, 30, &h, &err), MESH_OK);
    assert_set(&h, NULL, 0);
    xds_health_free(&h);
    /* 30 s after meshd first saw them: the two without a verified stream are down */
    cr_assert_eq(md_health_compute(&t, &cfg, rows, 4, 1030, 30, &h, &err), MESH_OK);
    const char *down[] = {"backend-2", "db-1"};
    assert_set(&h, down, 2);
    xds_health_free(&h);
    /* backend-2 reconnects (as "<id>#<instance>"): healthy at once */
    rows[2] = row(TD "backend", TD "backend#backend-2", 1, 1031);
    cr_assert_eq(md_health_compute(&t, &cfg, rows, 4, 1031, 30, &h, &err), MESH_OK);
    const char *down2[] = {"db-1"};
    assert_set(&h, down2, 1);
    xds_health_free(&h);
    /* an identity-wide sidecar of db serves db-1 */
    rows[3] = row(TD "db", TD "db", 1, 1032);
    cr_assert_eq(md_health_compute(&t, &cfg, rows, 4, 1032, 30, &h, &err), MESH_OK);
    assert_set(&h, NULL, 0);
    xds_health_free(&h);
    /* web-1 goes away at 1040: down from 1070, not before */
    rows[0] = row(TD "web", "web-1", 0, 1040);
    cr_assert_eq(md_health_compute(&t, &cfg, rows, 4, 1069, 30, &h, &err), MESH_OK);
    assert_set(&h, NULL, 0);
    xds_health_free(&h);
    cr_assert_eq(md_health_compute(&t, &cfg, rows, 4, 1070, 30, &h, &err), MESH_OK);
    const char *down3[] = {"web-1"};
    assert_set(&h, down3, 1);
    xds_health_free(&h);
    /* grace 0: health is off */
    cr_assert_eq(md_health_compute(&t, &cfg, rows, 4, 5000, 0, &h, &err), MESH_OK);
    assert_set(&h, NULL, 0);
    xds_health_free(&h);
    md_health_tracker_free(&t);
    mesh_config_free(&cfg);
}

Test(meshd_health, a_workload_added_later_gets_its_grace_from_then)
{
    mesh_config cfg;
    parse(&cfg);
    md_health_tracker t = {0};
    mesh_err err = {0};
    xds_health h;
    /* The tracker saw only web-1 at 1000 (a config without the others). */
    size_t n_all = cfg.n_workloads;
    cfg.n_workloads = 1;
    store_proxy none[1];
    cr_assert_eq(md_health_compute(&t, &cfg, none, 0, 1000, 30, &h, &err), MESH_OK);
    xds_health_free(&h);
    cfg.n_workloads = n_all;
    /* At 1040 the others appear: web-1 is down (40 s), the newcomers are not yet. */
    cr_assert_eq(md_health_compute(&t, &cfg, none, 0, 1040, 30, &h, &err), MESH_OK);
    const char *down[] = {"web-1"};
    assert_set(&h, down, 1);
    xds_health_free(&h);
    cr_assert_eq(md_health_compute(&t, &cfg, none, 0, 1070, 30, &h, &err), MESH_OK);
    const char *all[] = {"backend-1", "backend-2", "db-1", "web-1"};
    assert_set(&h, all, 4);
    xds_health_free(&h);
    md_health_tracker_free(&t);
    mesh_config_free(&cfg);
}

Test(meshd_health, set_is_sorted_unique_and_compares)
{
    const char *names[] = {"b", "a", "b", "c"};
    xds_health x, y, z;
    mesh_err err = {0};
    cr_assert_eq(xds_health_build(&x, names, 4, &err), MESH_OK);
    cr_assert_eq(x.n, 3);
    cr_assert(xds_health_is_unhealthy(&x, "a") && xds_health_is_unhealthy(&x, "c"));
    cr_assert_not(xds_health_is_unhealthy(&x, "d"));
    cr_assert_not(xds_health_is_unhealthy(NULL, "a"));
    const char *same[] = {"c", "b", "a"};
    cr_assert_eq(xds_health_build(&y, same, 3, &err), MESH_OK);
    cr_assert(xds_health_equal(&x, &y));
    cr_assert_eq(xds_health_build(&z, names, 1, &err), MESH_OK);
    cr_assert_not(xds_health_equal(&x, &z));
    cr_assert(xds_health_equal(NULL, &(xds_health){0}));
    xds_health_free(&x);
    xds_health_free(&y);
    xds_health_free(&z);
}

/* ---- what the compiler makes of it ------------------------------------------------ */

static int health_of(const xds_snapshot *s, const char *cluster, int port)
{
    const xds_resource *r = xds_snapshot_find(s, XDS_EDS, cluster);
    cr_assert_not_null(r, "no EDS %s", cluster);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla =
        envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, r->len, r->data);
    cr_assert_not_null(cla);
    int found = -1;
    for (size_t i = 0; i < cla->n_endpoints; i++)
        for (size_t j = 0; j < cla->endpoints[i]->n_lb_endpoints; j++) {
            const Envoy__Config__Endpoint__V3__LbEndpoint *le = cla->endpoints[i]->lb_endpoints[j];
            if ((int)le->endpoint->address->socket_address->port_value == port)
                found = le->health_status;
        }
    envoy__config__endpoint__v3__cluster_load_assignment__free_unpacked(cla, NULL);
    cr_assert_neq(found, -1, "no endpoint on port %d in %s", port, cluster);
    return found;
}

Test(meshd_health, eds_carries_unhealthy_and_only_affected_views_change)
{
    mesh_config cfg;
    parse(&cfg);
    mesh_err err = {0};
    xds_snapshot before, after, db_before, db_after;
    cr_assert_eq(xds_compile_workload_health(&cfg, NULL, TD "web", "web-1", &before, &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(health_of(&before, "outbound|backend", 15011),
                 ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY);
    cr_assert_eq(xds_compile_workload_health(&cfg, NULL, TD "db", "db-1", &db_before, &err),
                 MESH_OK);

    const char *down[] = {"backend-2"};
    xds_health h;
    cr_assert_eq(xds_health_build(&h, down, 1, &err), MESH_OK);
    cr_assert_eq(xds_compile_workload_health(&cfg, &h, TD "web", "web-1", &after, &err), MESH_OK);
    cr_assert_eq(health_of(&after, "outbound|backend", 15011),
                 ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY);
    cr_assert_eq(health_of(&after, "outbound|backend", 15012),
                 ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY);
    /* web's EDS changed, nothing else of web's did; db's view holds no backend. */
    cr_assert_str_neq(before.types[XDS_EDS].version, after.types[XDS_EDS].version);
    cr_assert_str_eq(before.types[XDS_CDS].version, after.types[XDS_CDS].version);
    cr_assert_str_eq(before.types[XDS_LDS].version, after.types[XDS_LDS].version);
    cr_assert_str_eq(before.types[XDS_RDS].version, after.types[XDS_RDS].version);
    cr_assert_eq(xds_compile_workload_health(&cfg, &h, TD "db", "db-1", &db_after, &err),
                 MESH_OK);
    for (int t = 0; t < XDS_TYPE_COUNT; t++)
        cr_assert_str_eq(db_before.types[t].version, db_after.types[t].version);
    /* The identity-wide entry point honours the set too. */
    xds_snapshot node;
    cr_assert_eq(xds_compile_node_health(&cfg, &h, TD "web", &node, &err), MESH_OK);
    cr_assert_eq(health_of(&node, "outbound|backend", 15012),
                 ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY);
    xds_snapshot_free(&node);
    xds_health_free(&h);
    xds_snapshot_free(&before);
    xds_snapshot_free(&after);
    xds_snapshot_free(&db_before);
    xds_snapshot_free(&db_after);
    mesh_config_free(&cfg);
}
