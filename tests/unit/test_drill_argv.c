/* tests/unit/test_drill_argv.c — what the drill hands its children: the exact
 * command lines of meshd, a sidecar and a test app (the join token goes by file,
 * never on a command line), and the mesh YAML, read back by config/'s parser and
 * validator: retries 0, the route's timeout, and an authorization that lets
 * exactly the client sidecars call the server. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/mesh_config.h"
#include "drill/drill_argv.h"
#include "tests/unit/test_drill_util.h"

static size_t argv_len(char **argv)
{
    size_t n = 0;
    while (argv[n])
        n++;
    return n;
}

static void assert_argv(char **argv, const char *const *want, size_t n)
{
    cr_assert_not_null(argv);
    cr_assert_eq(argv_len(argv), n, "%zu arguments, wanted %zu", argv_len(argv), n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(argv[i], want[i], "argument %zu", i);
}
#define ASSERT_ARGV(argv, ...)                                                                 \
    do {                                                                                       \
        const char *const w_[] = {__VA_ARGS__};                                                \
        assert_argv((argv), w_, sizeof w_ / sizeof w_[0]);                                     \
    } while (0)

Test(drill_argv, meshd)
{
    drill_run *r = tdr_run(2, 1);
    r->o->ttl_s = 15;
    char **argv = drill_meshd_argv(r);
    ASSERT_ARGV(argv, "/opt/mesh/bin/meshd", "--db", "/tmp/meshd-drill-test/meshd.db", "--listen",
                "127.0.0.1:20000", "--svid-ttl", "15s", "--instance", "meshd-drill");
    drill_argv_free(argv);
    r->o->rotate_fraction = "0.3";
    argv = drill_meshd_argv(r);
    ASSERT_ARGV(argv, "/opt/mesh/bin/meshd", "--db", "/tmp/meshd-drill-test/meshd.db", "--listen",
                "127.0.0.1:20000", "--svid-ttl", "15s", "--instance", "meshd-drill",
                "--rotate-fraction", "0.3");
    drill_argv_free(argv);
    tdr_run_free(r);
}

Test(drill_argv, sidecar)
{
    drill_run *r = tdr_run(2, 1);
    char **argv = drill_sidecar_argv(r, &r->sc[1]);
    ASSERT_ARGV(argv, "/opt/mesh/bin/mesh-sidecar", "--meshd", "127.0.0.1:20000", "--ca-bundle",
                "/tmp/meshd-drill-test/bundle.pem", "--state-dir",
                "/tmp/meshd-drill-test/state/client-2", "--id",
                "spiffe://drill.example/ns/drill/sa/client-2", "--token-file",
                "/tmp/meshd-drill-test/tokens/client-2.token", "--workload", "client-2", "--admin",
                "127.0.0.1:22001", "--drain-time", "200ms");
    for (char **p = argv; *p; p++)
        cr_assert_null(strstr(*p, "mjt_"), "no join token on a command line: %s", *p);
    drill_argv_free(argv);
    r->o->reconnect_max = "1s";
    argv = drill_sidecar_argv(r, &r->sc[2]);
    cr_assert_eq(argv_len(argv), 19);
    cr_assert_str_eq(argv[12], "server-1");
    cr_assert_str_eq(argv[17], "--reconnect-max");
    cr_assert_str_eq(argv[18], "1s");
    drill_argv_free(argv);
    tdr_run_free(r);
}

/* Replica mode: each replica its own port and instance name on the one store; each
 * sidecar every replica, starting at a different one (sidecar i at replica i mod N). */
Test(drill_argv, replicas)
{
    drill_run *r = tdr_run(2, 1);
    r->o->replicas = 3;
    r->o->kill_replica = 1;
    for (int k = 0; k < 3; k++)
        snprintf(r->replica_addr[k], sizeof r->replica_addr[k], "127.0.0.1:%d", 20000 + 10 * k);
    char **argv = drill_replica_argv(r, 2);
    ASSERT_ARGV(argv, "/opt/mesh/bin/meshd", "--db", "/tmp/meshd-drill-test/meshd.db", "--listen",
                "127.0.0.1:20020", "--svid-ttl", "60s", "--instance", "meshd-drill-3");
    drill_argv_free(argv);
    argv = drill_replica_argv(r, 0);
    cr_assert_str_eq(argv[4], "127.0.0.1:20000", "replica 1 is the classic meshd");
    cr_assert_str_eq(argv[8], "meshd-drill");
    drill_argv_free(argv);
    static const char *const lists[] = {
        "127.0.0.1:20000,127.0.0.1:20010,127.0.0.1:20020",
        "127.0.0.1:20010,127.0.0.1:20020,127.0.0.1:20000",
        "127.0.0.1:20020,127.0.0.1:20000,127.0.0.1:20010",
    };
    for (int i = 0; i < 3; i++) {
        argv = drill_sidecar_argv(r, &r->sc[i]);
        cr_assert_str_eq(argv[1], "--meshd");
        cr_assert_str_eq(argv[2], lists[i], "sidecar %d", i);
        drill_argv_free(argv);
    }
    tdr_run_free(r);
}

Test(drill_argv, testapp)
{
    drill_run *r = tdr_run(1, 2);
    char **argv = drill_testapp_argv(r, &r->sc[2]);
    ASSERT_ARGV(argv, "/opt/mesh/bin/mesh-testapp", "--listen", "127.0.0.1:23002", "--name",
                "server-2");
    drill_argv_free(argv);
    drill_argv_free(NULL);
    tdr_run_free(r);
}

Test(drill_argv, long_paths_are_not_cut)
{
    drill_run *r = tdr_run(1, 1);
    memset(r->dir, 'd', 4000);
    r->dir[0] = '/';
    r->dir[4000] = '\0';
    char **argv = drill_meshd_argv(r);
    cr_assert_eq(strlen(argv[2]), 4000 + strlen("/meshd.db"));
    drill_argv_free(argv);
    tdr_run_free(r);
}

/* ---- the mesh YAML ------------------------------------------------------------------------ */

static void parse_yaml(const drill_run *r, mesh_config *cfg)
{
    char *yaml = drill_mesh_yaml(r);
    cr_assert_not_null(yaml);
    mesh_err err = {0};
    memset(cfg, 0, sizeof *cfg);
    cr_assert_eq(mesh_config_parse_buffer("drill-mesh.yaml", yaml, strlen(yaml), cfg, &err),
                 MESH_OK, "the drill's YAML does not parse: %s\n%s", err.msg, yaml);
    cr_assert_eq(mesh_config_validate(cfg, r->td, &err), MESH_OK, "invalid: %s\n%s", err.msg,
                 yaml);
    cr_assert_not_null(strstr(yaml, "# Retries are 0 on purpose"));
    free(yaml);
}

Test(drill_argv, yaml_is_a_valid_mesh_config)
{
    drill_run *r = tdr_run(3, 2);
    r->o->request_timeout_ms = 2500;
    mesh_config cfg;
    parse_yaml(r, &cfg);

    cr_assert_eq(cfg.n_services, 2);
    const mesh_service *srv = mesh_config_find_service(&cfg, "drill-server");
    const mesh_service *cli = mesh_config_find_service(&cfg, "drill-client");
    cr_assert_not_null(srv);
    cr_assert_not_null(cli);
    cr_assert_eq(srv->protocol, MESH_PROTO_HTTP);
    cr_assert_eq(srv->port, r->sc[3].port_app);

    cr_assert_eq(cfg.n_workloads, 5);
    for (size_t i = 0; i < cfg.n_workloads; i++) {
        const mesh_workload *w = &cfg.workloads[i];
        const drill_sidecar *s = &r->sc[i];
        char addr[32];
        cr_assert_str_eq(w->name, s->name);
        cr_assert_str_eq(w->spiffe_id, s->spiffe_id);
        cr_assert_str_eq(w->service, s->role == DRILL_CLIENT ? "drill-client" : "drill-server");
        snprintf(addr, sizeof addr, "127.0.0.1:%d", s->port_in);
        cr_assert_str_eq(w->inbound, addr);
        snprintf(addr, sizeof addr, "127.0.0.1:%d", s->port_app);
        cr_assert_str_eq(w->app, addr);
        if (s->role == DRILL_CLIENT) {
            snprintf(addr, sizeof addr, "127.0.0.1:%d", s->port_out);
            cr_assert_str_eq(w->outbound, addr);
        } else {
            cr_assert_null(w->outbound, "servers have no outbound listener");
        }
    }

    cr_assert_eq(cfg.n_routes, 1);
    const mesh_route *rt = &cfg.routes[0];
    cr_assert_eq(rt->n_hosts, 1);
    cr_assert_str_eq(rt->hosts[0], "drill-server");
    cr_assert_eq(rt->n_rules, 1);
    cr_assert_str_eq(rt->rules[0].prefix, "/");
    cr_assert_eq(rt->rules[0].retries, 0, "the drill counts every failure");
    cr_assert_eq(rt->rules[0].timeout_ms, 2500);
    cr_assert_eq(rt->rules[0].n_destinations, 1);
    cr_assert_str_eq(rt->rules[0].destinations[0].service, "drill-server");

    cr_assert_eq(cfg.n_authz, 2);
    const mesh_authorization *a = NULL, *b = NULL;
    for (size_t i = 0; i < cfg.n_authz; i++) {
        if (strcmp(cfg.authz[i].service, "drill-server") == 0)
            a = &cfg.authz[i];
        if (strcmp(cfg.authz[i].service, "drill-client") == 0)
            b = &cfg.authz[i];
    }
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_eq(a->n_allow, 3, "exactly the client sidecars call the server");
    for (size_t i = 0; i < 3; i++)
        cr_assert_str_eq(a->allow[i], r->sc[i].spiffe_id);
    cr_assert_eq(b->n_allow, 0, "nobody calls the clients");
    mesh_config_free(&cfg);
    tdr_run_free(r);
}

Test(drill_argv, yaml_in_target_mode_carries_the_prefix)
{
    drill_run *r = tdr_run(1, 1);
    snprintf(r->prefix, sizeof r->prefix, "drill4242-");
    snprintf(r->svc_server, sizeof r->svc_server, "drill4242-drill-server");
    snprintf(r->svc_client, sizeof r->svc_client, "drill4242-drill-client");
    snprintf(r->td, sizeof r->td, "staging.example");
    for (int i = 0; i < r->n_sc; i++) {
        char name[64];
        snprintf(name, sizeof name, "drill4242-%.40s", r->sc[i].name);
        snprintf(r->sc[i].name, sizeof r->sc[i].name, "%s", name);
        snprintf(r->sc[i].spiffe_id, sizeof r->sc[i].spiffe_id,
                 "spiffe://staging.example/ns/meshd-drill/sa/%s", name);
    }
    mesh_config cfg;
    parse_yaml(r, &cfg);
    cr_assert_not_null(mesh_config_find_service(&cfg, "drill4242-drill-server"));
    cr_assert_str_eq(cfg.routes[0].hosts[0], "drill4242-drill-server");
    cr_assert_str_eq(cfg.workloads[0].name, "drill4242-client-1");
    cr_assert_not_null(mesh_config_find_workload_by_id(
        &cfg, "spiffe://staging.example/ns/meshd-drill/sa/drill4242-server-1"));
    mesh_config_free(&cfg);
    tdr_run_free(r);
}
