/* tests/unit/test_config_store.c — apply / delete / load_store against a real store. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "config/mesh_config.h"
#include "store/store.h"

typedef struct env {
    char dir[64];
    char db[128];
    mesh_store *st;
} env;

static void env_setup(env *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/meshd-test-XXXXXX");
    cr_assert_not_null(mkdtemp(e->dir));
    snprintf(e->db, sizeof e->db, "%s/mesh.db", e->dir);
    mesh_err err;
    store_open_opts create = {.create = 1};
    cr_assert_eq(store_open_with(&e->st, e->db, &create, &err), MESH_OK, "%s", err.msg);
}

static void env_teardown(env *e)
{
    store_close(e->st);
    DIR *d = opendir(e->dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", e->dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(e->dir);
}

static void parse_ok(const char *name, const char *yaml, mesh_config *cfg)
{
    mesh_err err;
    mesh_err_clear(&err);
    cr_assert_eq(mesh_config_parse_buffer(name, yaml, strlen(yaml), cfg, &err), MESH_OK, "%s",
                 err.msg);
}

static int apply_yaml(mesh_store *st, const char *name, const char *yaml, int *changed,
                      mesh_err *err)
{
    mesh_config cfg;
    parse_ok(name, yaml, &cfg);
    mesh_err_clear(err);
    int rc = mesh_config_apply(st, &cfg, changed, err);
    mesh_config_free(&cfg);
    return rc;
}

static int apply_example(mesh_store *st, int *changed, mesh_err *err)
{
    mesh_config cfg;
    mesh_err_clear(err);
    cr_assert_eq(mesh_config_parse_file("tests/unit/data/mesh_versions.yaml", &cfg, err), MESH_OK,
                 "%s", err->msg);
    int rc = mesh_config_apply(st, &cfg, changed, err);
    mesh_config_free(&cfg);
    return rc;
}

/* Everything in the resources table as one string, for before/after comparisons. */
static char *snapshot(mesh_store *st)
{
    store_resource *rows;
    size_t n;
    mesh_err err;
    cr_assert_eq(store_resource_list(st, NULL, &rows, &n, &err), MESH_OK, "%s", err.msg);
    size_t cap = 64;
    for (size_t i = 0; i < n; i++)
        cap += strlen(rows[i].kind) + strlen(rows[i].name) + strlen(rows[i].body) +
               strlen(rows[i].source) + 64;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    size_t used = (size_t)snprintf(s, cap, "v=%lld\n", (long long)store_config_version(st));
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(s + used, cap - used, "%s/%s@%lld from %s\n%s\n", rows[i].kind,
                                 rows[i].name, (long long)rows[i].version, rows[i].source,
                                 rows[i].body);
    store_resource_free_list(rows, n);
    return s;
}

static size_t count_rows(mesh_store *st, const char *kind)
{
    store_resource *rows;
    size_t n;
    mesh_err err;
    cr_assert_eq(store_resource_list(st, kind, &rows, &n, &err), MESH_OK);
    store_resource_free_list(rows, n);
    return n;
}

Test(config_store, apply_writes_then_reapply_is_noop)
{
    env e;
    env_setup(&e);
    mesh_err err;
    int changed = -1;
    int64_t v0 = store_config_version(e.st);
    cr_assert_eq(apply_example(e.st, &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(changed, 12);
    cr_assert_eq(count_rows(e.st, "service"), 4);
    cr_assert_eq(count_rows(e.st, "workload"), 4);
    cr_assert_eq(count_rows(e.st, "route"), 1);
    cr_assert_eq(count_rows(e.st, "authorization"), 3);
    int64_t v1 = store_config_version(e.st);
    cr_assert_eq(v1, v0 + 1, "one apply = one version (%lld -> %lld)", (long long)v0,
                 (long long)v1);

    /* sources are file:line */
    store_resource *rows;
    size_t n;
    cr_assert_eq(store_resource_list(e.st, "route", &rows, &n, &err), MESH_OK);
    cr_assert_str_eq(rows[0].name, "backend");
    const char *fx = "tests/unit/data/mesh_versions.yaml:";
    cr_assert_eq(strncmp(rows[0].source, fx, strlen(fx)), 0, "%s", rows[0].source);
    cr_assert_gt(atoi(rows[0].source + strlen(fx)), 0);
    store_resource_free_list(rows, n);

    char *before = snapshot(e.st);
    changed = -1;
    cr_assert_eq(apply_example(e.st, &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(changed, 0);
    char *after = snapshot(e.st);
    cr_assert_str_eq(before, after, "re-applying the same file must change nothing");
    cr_assert_eq(store_config_version(e.st), v1);
    free(before);
    free(after);
    env_teardown(&e);
}

Test(config_store, a_change_bumps_version_once)
{
    env e;
    env_setup(&e);
    mesh_err err;
    int changed;
    cr_assert_eq(apply_example(e.st, &changed, &err), MESH_OK, "%s", err.msg);
    int64_t v1 = store_config_version(e.st);
    /* change the split and one service: two resources, one version */
    const char *patch = "services:\n"
                        "  - {name: db, protocol: tcp, port: 18432, connect_timeout: 2s}\n"
                        "routes:\n"
                        "  - name: backend\n"
                        "    rules:\n"
                        "      - match: {prefix: /}\n"
                        "        destinations:\n"
                        "          - {service: backend-v1, weight: 80}\n"
                        "          - {service: backend-v2, weight: 20}\n";
    cr_assert_eq(apply_yaml(e.st, "patch.yaml", patch, &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(changed, 2);
    cr_assert_eq(store_config_version(e.st), v1 + 1);
    /* untouched resources remain (apply is an upsert, not a replace) */
    cr_assert_eq(count_rows(e.st, "service"), 4);
    cr_assert_eq(count_rows(e.st, "workload"), 4);

    mesh_config cfg;
    cr_assert_eq(mesh_config_load_store(e.st, &cfg, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(cfg.n_routes, 1);
    cr_assert_eq(cfg.routes[0].n_rules, 1);
    cr_assert_eq(cfg.routes[0].rules[0].destinations[0].weight, 80);
    cr_assert_str_eq(cfg.routes[0].source, "patch.yaml:4");
    cr_assert_eq(mesh_config_find_service(&cfg, "db")->connect_timeout_ms, 2000);
    mesh_config_free(&cfg);
    env_teardown(&e);
}

Test(config_store, failing_apply_writes_nothing)
{
    env e;
    env_setup(&e);
    mesh_err err;
    int changed;
    cr_assert_eq(apply_example(e.st, &changed, &err), MESH_OK, "%s", err.msg);
    char *before = snapshot(e.st);

    /* a valid change followed by an invalid resource: nothing may land */
    const char *bad = "services:\n"
                      "  - {name: db, protocol: tcp, port: 18432, connect_timeout: 3s}\n"
                      "  - {name: cache, protocol: tcp, port: 18500}\n"
                      "workloads:\n"
                      "  - name: cache-1\n"                                          /* 5 */
                      "    spiffe_id: spiffe://example.org/ns/default/sa/cache\n"
                      "    service: cahce\n"
                      "    inbound: 127.0.0.1:15005\n"
                      "    app: 127.0.0.1:18500\n";
    changed = -1;
    int rc = apply_yaml(e.st, "bad.yaml", bad, &changed, &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_str_eq(err.msg, "bad.yaml:5: workloads[0].service: unknown service \"cahce\" "
                              "(define it under services)");
    cr_assert_eq(changed, 0);
    char *after = snapshot(e.st);
    cr_assert_str_eq(before, after);
    free(after);

    /* a clash with a stored workload's listener */
    const char *clash = "workloads:\n"
                        "  - name: extra-1\n"
                        "    spiffe_id: spiffe://example.org/ns/default/sa/extra\n"
                        "    service: frontend\n"
                        "    inbound: 127.0.0.1:15002\n"
                        "    app: 127.0.0.1:18600\n";
    rc = apply_yaml(e.st, "clash.yaml", clash, &changed, &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "clash.yaml:2: workloads[0].inbound: address "
                                       "127.0.0.1:15002 is already a listener of "
                                       "store:workload/backend-v1-1 inbound"),
                       "%s", err.msg);
    after = snapshot(e.st);
    cr_assert_str_eq(before, after);
    free(after);

    /* turning a routed service into tcp breaks the stored route: the error names it */
    const char *retype = "services:\n  - {name: backend-v2, protocol: tcp, port: 18082}\n";
    rc = apply_yaml(e.st, "retype.yaml", retype, &changed, &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "store:route/backend: rules[0].destinations[0].service: "
                                       "service \"backend-v2\" is tcp"),
                       "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "last applied from tests/unit/data/mesh_versions.yaml:"), "%s", err.msg);
    after = snapshot(e.st);
    cr_assert_str_eq(before, after);
    free(after);
    free(before);
    env_teardown(&e);
}

Test(config_store, references_resolve_against_the_store)
{
    env e;
    env_setup(&e);
    mesh_err err;
    int changed;
    const char *svcs = "services:\n  - {name: web, protocol: http, port: 18001}\n";
    const char *wls = "workloads:\n"
                      "  - name: web-1\n"
                      "    spiffe_id: spiffe://example.org/ns/default/sa/web\n"
                      "    service: web\n"
                      "    inbound: 127.0.0.1:15001\n"
                      "    app: 127.0.0.1:18001\n";
    /* workloads first: the service is not known yet */
    cr_assert_eq(apply_yaml(e.st, "w.yaml", wls, &changed, &err), MESH_EINVAL);
    cr_assert_eq(count_rows(e.st, NULL), 0);
    cr_assert_eq(apply_yaml(e.st, "s.yaml", svcs, &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(apply_yaml(e.st, "w.yaml", wls, &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(changed, 1);
    env_teardown(&e);
}

Test(config_store, trust_domain_from_store)
{
    env e;
    env_setup(&e);
    mesh_err err;
    int changed;
    cr_assert_eq(store_setting_set(e.st, "trust_domain", "other.org", &err), MESH_OK);
    char *before = snapshot(e.st);
    int rc = apply_example(e.st, &changed, &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "is not in the mesh's trust domain \"other.org\""), "%s",
                       err.msg);
    cr_assert_not_null(strstr(err.msg, "workloads[0].spiffe_id"), "%s", err.msg);
    char *after = snapshot(e.st);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    cr_assert_eq(store_setting_set(e.st, "trust_domain", "example.org", &err), MESH_OK);
    cr_assert_eq(apply_example(e.st, &changed, &err), MESH_OK, "%s", err.msg);
    env_teardown(&e);
}

Test(config_store, empty_apply_touches_nothing)
{
    env e;
    env_setup(&e);
    mesh_err err;
    int changed = -1;
    mesh_config empty = {0};
    int64_t v = store_config_version(e.st);
    cr_assert_eq(mesh_config_apply(e.st, &empty, &changed, &err), MESH_OK);
    cr_assert_eq(changed, 0);
    cr_assert_eq(store_config_version(e.st), v);
    env_teardown(&e);
}

Test(config_store, dry_run_changes_nothing)
{
    env e;
    env_setup(&e);
    mesh_err err;
    int changed = -1;
    mesh_config cfg;
    cr_assert_eq(mesh_config_parse_file("tests/unit/data/mesh_versions.yaml", &cfg, &err),
                 MESH_OK);
    char *before = snapshot(e.st);
    cr_assert_eq(mesh_config_apply_dry_run(e.st, &cfg, &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(changed, 12);
    char *after = snapshot(e.st);
    cr_assert_str_eq(before, after);
    cr_assert_eq(mesh_config_apply(e.st, &cfg, &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(mesh_config_apply_dry_run(e.st, &cfg, &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(changed, 0);
    mesh_config_free(&cfg);
    free(before);
    free(after);
    env_teardown(&e);
}

Test(config_store, delete_refuses_referenced)
{
    env e;
    env_setup(&e);
    mesh_err err;
    int changed;
    cr_assert_eq(apply_example(e.st, &changed, &err), MESH_OK, "%s", err.msg);
    char *before = snapshot(e.st);

    int rc = mesh_config_delete(e.st, "service", "backend-v2", &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_str_eq(err.msg,
                     "cannot delete service \"backend-v2\": still referenced by workload "
                     "\"backend-v2-1\" (service), route \"backend\" (rules[0].destinations[0]), "
                     "route \"backend\" (rules[1].destinations[1]), authorization \"backend-v2\" "
                     "(service); delete or change those first");
    rc = mesh_config_delete(e.st, "service", "db", &err);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "workload \"backend-v1-1\" (tcp_outbound[0])"), "%s",
                       err.msg);
    char *after = snapshot(e.st);
    cr_assert_str_eq(before, after);
    free(after);

    cr_assert_eq(mesh_config_delete(e.st, "service", "nope", &err), MESH_ENOTFOUND);
    cr_assert_str_eq(err.msg, "no service named \"nope\" in the store");
    cr_assert_eq(mesh_config_delete(e.st, "services", "db", &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "unknown kind \"services\""), "%s", err.msg);
    cr_assert_eq(mesh_config_delete(e.st, "route", "", &err), MESH_EINVAL);
    cr_assert_eq(mesh_config_delete(e.st, NULL, "x", &err), MESH_EINVAL);

    /* unreferenced things go, one version each; then the service can go */
    int64_t v = store_config_version(e.st);
    cr_assert_eq(mesh_config_delete(e.st, "route", "backend", &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_config_version(e.st), v + 1);
    cr_assert_eq(mesh_config_delete(e.st, "authorization", "backend-v2", &err), MESH_OK);
    cr_assert_eq(mesh_config_delete(e.st, "workload", "backend-v2-1", &err), MESH_OK);
    cr_assert_eq(mesh_config_delete(e.st, "service", "backend-v2", &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(count_rows(e.st, "service"), 3);
    cr_assert_eq(count_rows(e.st, NULL), 8);

    mesh_config cfg;
    cr_assert_eq(mesh_config_load_store(e.st, &cfg, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(mesh_config_validate(&cfg, "example.org", &err), MESH_OK, "%s", err.msg);
    mesh_config_free(&cfg);
    free(before);
    env_teardown(&e);
}

Test(config_store, load_store_roundtrip)
{
    env e;
    env_setup(&e);
    mesh_err err;
    int changed;
    mesh_config cfg, loaded;
    cr_assert_eq(mesh_config_parse_file("examples/mesh.yaml", &cfg, &err), MESH_OK);
    cr_assert_eq(mesh_config_apply(e.st, &cfg, &changed, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(mesh_config_load_store(e.st, &loaded, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(loaded.n_services, cfg.n_services);
    cr_assert_eq(loaded.n_workloads, cfg.n_workloads);
    cr_assert_eq(loaded.n_routes, cfg.n_routes);
    cr_assert_eq(loaded.n_authz, cfg.n_authz);
    /* the store orders by name; match by name */
    for (size_t i = 0; i < cfg.n_services; i++) {
        const mesh_service *s = mesh_config_find_service(&loaded, cfg.services[i].name);
        cr_assert_not_null(s);
        cr_assert(config_service_equal(s, &cfg.services[i]));
        cr_assert_str_eq(s->source, cfg.services[i].source);
    }
    for (size_t i = 0; i < cfg.n_workloads; i++) {
        /* by name: replicas share their SPIFFE ID */
        const mesh_workload *w = mesh_config_find_workload(&loaded, cfg.workloads[i].name);
        cr_assert_not_null(w);
        cr_assert(config_workload_equal(w, &cfg.workloads[i]), "%s", w->name);
        cr_assert_str_eq(w->source, cfg.workloads[i].source);
    }
    cr_assert(config_route_equal(&loaded.routes[0], &cfg.routes[0]));
    for (size_t i = 0; i < cfg.n_authz; i++) {
        int found = 0;
        for (size_t j = 0; j < loaded.n_authz; j++)
            if (strcmp(loaded.authz[j].service, cfg.authz[i].service) == 0) {
                cr_assert(config_authorization_equal(&loaded.authz[j], &cfg.authz[i]));
                found = 1;
            }
        cr_assert(found);
    }
    cr_assert_eq(mesh_config_validate(&loaded, "example.org", &err), MESH_OK, "%s", err.msg);
    mesh_config_free(&loaded);
    mesh_config_free(&cfg);

    /* an empty store loads as an empty config */
    env e2;
    env_setup(&e2);
    cr_assert_eq(mesh_config_load_store(e2.st, &loaded, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(loaded.n_services + loaded.n_workloads + loaded.n_routes + loaded.n_authz, 0);
    mesh_config_free(&loaded);
    env_teardown(&e2);
    env_teardown(&e);
}

Test(config_store, damaged_rows_are_reported)
{
    env e;
    env_setup(&e);
    mesh_err err;
    int changed;
    mesh_config cfg;
    cr_assert_eq(store_resource_put(e.st, "service", "web",
                                    "name: web\nprotocol: udp\nport: 80\n", "x.yaml:1", &changed,
                                    &err),
                 MESH_OK, "%s", err.msg);
    int rc = mesh_config_load_store(e.st, &cfg, &err);
    cr_assert_eq(rc, MESH_ECORRUPT);
    cr_assert_str_eq(err.msg,
                     "store:service/web:2: protocol: must be one of http, tcp, http2, grpc, got \"udp\"");
    cr_assert_eq(cfg.n_services, 0);

    cr_assert_eq(store_resource_put(e.st, "service", "web",
                                    "name: api\nprotocol: http\nport: 80\n", "x.yaml:1", &changed,
                                    &err),
                 MESH_OK);
    rc = mesh_config_load_store(e.st, &cfg, &err);
    cr_assert_eq(rc, MESH_ECORRUPT);
    cr_assert_not_null(strstr(err.msg, "store:service/web: the body names \"api\""), "%s", err.msg);

    /* apply refuses to build on a damaged store, and writes nothing */
    char *before = snapshot(e.st);
    rc = apply_yaml(e.st, "m.yaml", "services:\n  - {name: db, protocol: tcp, port: 5432}\n",
                    &changed, &err);
    cr_assert_eq(rc, MESH_ECORRUPT);
    char *after = snapshot(e.st);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    env_teardown(&e);
}

Test(config_store, nested_transaction_is_refused)
{
    env e;
    env_setup(&e);
    mesh_err err;
    int changed;
    cr_assert_eq(store_begin(e.st, &err), MESH_OK);
    cr_assert_neq(apply_example(e.st, &changed, &err), MESH_OK);
    store_rollback(e.st);
    cr_assert_eq(count_rows(e.st, NULL), 0);
    env_teardown(&e);
}

/* ---- declarative apply: apply sets, --prune, --dry-run (issue 13) ---------- */

static int apply_set(mesh_store *st, const char *set, const char *yaml, int prune, int dry,
                     mesh_apply_result *res, mesh_err *err)
{
    mesh_config cfg;
    parse_ok("f.yaml", yaml, &cfg);
    mesh_apply_opts o = {.apply_set = set, .prune = prune, .dry_run = dry};
    int rc = mesh_config_apply_ex(st, &cfg, &o, res, err);
    mesh_config_free(&cfg);
    return rc;
}

static int stored(mesh_store *st, const char *kind, const char *name)
{
    mesh_config cfg;
    mesh_err err = {0};
    cr_assert_eq(mesh_config_load_store(st, &cfg, &err), MESH_OK, "%s", err.msg);
    int found = 0;
    if (strcmp(kind, "service") == 0)
        found = mesh_config_find_service(&cfg, name) != NULL;
    else
        found = mesh_config_find_workload(&cfg, name) != NULL;
    mesh_config_free(&cfg);
    return found;
}

#define SVC(n, p) "  - {name: " n ", protocol: http, port: " p "}\n"
#define WL(n, svc, port)                                                                         \
    "  - {name: " n ", spiffe_id: \"spiffe://example.org/ns/d/sa/" svc "\", service: " svc      \
    ", inbound: \"127.0.0.1:1" port "\", app: \"127.0.0.1:2" port "\"}\n"

Test(config_store, prune_removes_only_what_the_set_no_longer_holds)
{
    env e;
    env_setup(&e);
    mesh_err err = {0};
    mesh_apply_result r;
    cr_assert_eq(apply_set(e.st, "a.yaml", "services:\n" SVC("web", "80") SVC("api", "81")
                           "workloads:\n" WL("api-1", "api", "5001") WL("api-2", "api", "5002"),
                           0, 0, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(r.n_changes, 4);
    mesh_apply_result_free(&r);
    cr_assert_eq(apply_set(e.st, "b.yaml", "services:\n" SVC("extra", "82"), 0, 0, &r, &err),
                 MESH_OK, "%s", err.msg);
    mesh_apply_result_free(&r);
    /* A resource of no set (as meshctl wrote them before apply sets). */
    mesh_config none;
    parse_ok("old.yaml", "services:\n" SVC("legacy", "83"), &none);
    cr_assert_eq(mesh_config_apply(e.st, &none, NULL, &err), MESH_OK, "%s", err.msg);
    mesh_config_free(&none);

    const char *next = "services:\n" SVC("web", "80") SVC("api", "81")
                       "workloads:\n" WL("api-1", "api", "5001");
    /* Without --prune: nothing removed. */
    cr_assert_eq(apply_set(e.st, "a.yaml", next, 0, 0, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(r.n_changes, 0);
    mesh_apply_result_free(&r);
    cr_assert(stored(e.st, "workload", "api-2"));

    /* Dry run: the removal is reported, nothing is written. */
    int64_t v0 = store_config_version(e.st);
    cr_assert_eq(apply_set(e.st, "a.yaml", next, 1, 1, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(r.n_changes, 1);
    cr_assert_eq(r.changes[0].what, MESH_CHANGE_REMOVE);
    cr_assert_str_eq(r.changes[0].kind, "workload");
    cr_assert_str_eq(r.changes[0].name, "api-2");
    cr_assert_not_null(r.changes[0].before);
    cr_assert_null(r.changes[0].after);
    cr_assert_eq(r.unchanged, 3);
    mesh_apply_result_free(&r);
    cr_assert(stored(e.st, "workload", "api-2"), "a dry run writes nothing");
    cr_assert_eq(store_config_version(e.st), v0);

    /* Prune: api-2 goes; b.yaml's and the set-less service stay. */
    cr_assert_eq(apply_set(e.st, "a.yaml", next, 1, 0, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(r.n_changes, 1);
    mesh_apply_result_free(&r);
    cr_assert_not(stored(e.st, "workload", "api-2"));
    cr_assert(stored(e.st, "service", "extra"), "another apply set is never pruned");
    cr_assert(stored(e.st, "service", "legacy"), "a resource of no apply set is never pruned");
    cr_assert_gt(store_config_version(e.st), v0);

    /* A prune that would leave a dangling reference fails whole. */
    cr_assert_eq(apply_set(e.st, "a.yaml", "services:\n" SVC("web", "80"), 1, 0, &r, &err),
                 MESH_OK, "%s: api and api-1 leave together", err.msg);
    mesh_apply_result_free(&r);
    cr_assert_eq(apply_set(e.st, "c.yaml", "services:\n" SVC("api", "81") "workloads:\n"
                           WL("api-1", "api", "5001"), 0, 0, &r, &err), MESH_OK, "%s", err.msg);
    mesh_apply_result_free(&r);
    cr_assert_eq(apply_set(e.st, "d.yaml", "workloads:\n" WL("api-9", "api", "5009"), 0, 0, &r,
                           &err), MESH_OK, "%s", err.msg);
    mesh_apply_result_free(&r);
    cr_assert_eq(apply_set(e.st, "c.yaml", "workloads:\n" WL("api-1", "api", "5001"), 1, 0, &r,
                           &err), MESH_EINVAL, "api is still the service of d.yaml's api-9");
    cr_assert(strstr(err.msg, "--prune removes service/api"), "%s", err.msg);
    cr_assert(stored(e.st, "service", "api"), "nothing was removed");

    /* --prune needs a set. */
    cr_assert_eq(apply_set(e.st, NULL, "services:\n" SVC("web", "80"), 1, 0, &r, &err),
                 MESH_EINVAL);
    env_teardown(&e);
}
