/* tests/unit/test_store_config.c — mesh config resources and the config
 * version, proxy status, the audit log, and explicit transactions. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xds_wire.h"
#include "store/store.h"
#include "tests/unit/test_store_util.h"

static tstore_env env;

static void setup(void) { tstore_setup_any(&env, 1); }
static void teardown(void) { tstore_teardown(&env); }

static int put(const char *kind, const char *name, const char *body)
{
    int changed = -1;
    mesh_err err = {0};
    int rc = store_resource_put(env.st, kind, name, body, "mesh.yaml:1", &changed, &err);
    cr_assert_eq(rc, MESH_OK, "put %s/%s: %s", kind, name, err.msg);
    return changed;
}

static store_resource get_one(const char *kind, const char *name)
{
    store_resource *list = NULL, out;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_resource_list(env.st, kind, &list, &n, &err), MESH_OK, "%s", err.msg);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, name) == 0) {
            out = list[i];
            memset(&list[i], 0, sizeof list[i]);
            store_resource_free_list(list, n);
            return out;
        }
    }
    cr_assert_fail("%s %s not found", kind, name);
    return out;
}

/* ---- resources -------------------------------------------------------------- */

Test(store_resource, put_noop_change_delete_versions, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_config_version(env.st), 0);
    cr_assert_eq(put("service", "web", "name: web\nport: 8080\n"), 1);
    cr_assert_eq(store_config_version(env.st), 1);
    store_resource r = get_one("service", "web");
    cr_assert_eq(r.version, 1);
    cr_assert_str_eq(r.source, "mesh.yaml:1");
    cr_assert_str_eq(r.body, "name: web\nport: 8080\n");
    cr_assert_geq(r.updated_at, (int64_t)time(NULL) - 5);
    store_resource_free(&r);

    /* Identical body: nothing changes, not even the version. */
    cr_assert_eq(put("service", "web", "name: web\nport: 8080\n"), 0);
    cr_assert_eq(store_config_version(env.st), 1);

    /* Changed body: new version, stamped on the resource. */
    cr_assert_eq(put("service", "web", "name: web\nport: 9090\n"), 1);
    cr_assert_eq(store_config_version(env.st), 2);
    r = get_one("service", "web");
    cr_assert_eq(r.version, 2);
    cr_assert_str_eq(r.body, "name: web\nport: 9090\n");
    store_resource_free(&r);

    /* Same name, other kind: a different resource. */
    cr_assert_eq(put("route", "web", "name: web\n"), 1);
    cr_assert_eq(store_config_version(env.st), 3);

    cr_assert_eq(store_resource_delete(env.st, "route", "web", &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_config_version(env.st), 4);
    cr_assert_eq(store_resource_delete(env.st, "route", "web", &err), MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "no route named web"), "%s", err.msg);
    cr_assert_eq(store_config_version(env.st), 4, "failed delete bumped the version");
}

Test(store_resource, list_order_and_kind_filter, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    put("workload", "b", "w-b");
    put("service", "z", "s-z");
    put("service", "a", "s-a");
    put("authorization", "a", "authz-a");
    store_resource *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_resource_list(env.st, NULL, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 4);
    const char *want[][2] = {{"authorization", "a"}, {"service", "a"}, {"service", "z"},
                             {"workload", "b"}};
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(list[i].kind, want[i][0]);
        cr_assert_str_eq(list[i].name, want[i][1]);
    }
    store_resource_free_list(list, n);

    cr_assert_eq(store_resource_list(env.st, "service", &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(list[0].name, "a");
    cr_assert_str_eq(list[1].name, "z");
    store_resource_free_list(list, n);

    cr_assert_eq(store_resource_list(env.st, "route", &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 0);
    free(list);
}

Test(store_resource, invalid_input, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int changed = -1;
    cr_assert_eq(store_resource_put(env.st, "gateway", "x", "b", "", &changed, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "gateway"), "%s", err.msg);
    cr_assert_eq(changed, 0);
    cr_assert_eq(store_resource_put(env.st, NULL, "x", "b", "", &changed, &err), MESH_EINVAL);
    cr_assert_eq(store_resource_put(env.st, "service", "", "b", "", &changed, &err), MESH_EINVAL);
    cr_assert_eq(store_resource_put(env.st, "service", "x", NULL, "", &changed, &err),
                 MESH_EINVAL);
    cr_assert_eq(store_resource_delete(env.st, "gateway", "x", &err), MESH_EINVAL);
    store_resource *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_resource_list(env.st, "gateway", &list, &n, &err), MESH_EINVAL);
    cr_assert_eq(store_config_version(env.st), 0);
    /* NULL source and NULL changed_out are accepted. */
    cr_assert_eq(store_resource_put(env.st, "service", "x", "b", NULL, NULL, &err), MESH_OK);
    store_resource r = get_one("service", "x");
    cr_assert_str_eq(r.source, "");
    store_resource_free(&r);
}

/* ---- transactions ---------------------------------------------------------------- */

Test(store_tx, one_apply_one_version, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    put("service", "keep", "same");
    cr_assert_eq(store_config_version(env.st), 1);
    cr_assert_eq(store_begin(env.st, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(put("service", "a", "1"), 1);
    cr_assert_eq(put("service", "b", "1"), 1);
    cr_assert_eq(put("service", "keep", "same"), 0);
    cr_assert_eq(store_resource_delete(env.st, "service", "keep", &err), MESH_OK);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_config_version(env.st), 2, "one transaction, one version");
    store_resource a = get_one("service", "a"), b = get_one("service", "b");
    cr_assert_eq(a.version, 2);
    cr_assert_eq(b.version, 2);
    store_resource_free(&a);
    store_resource_free(&b);

    /* The next transaction gets the next version. */
    cr_assert_eq(store_begin(env.st, &err), MESH_OK);
    cr_assert_eq(put("service", "a", "2"), 1);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK);
    cr_assert_eq(store_config_version(env.st), 3);
}

Test(store_tx, rollback_discards_everything, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_begin(env.st, &err), MESH_OK);
    put("service", "a", "1");
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_OK);
    store_rollback(env.st);
    cr_assert_eq(store_config_version(env.st), 0);
    store_registration r;
    cr_assert_eq(store_registration_get(env.st, "", TSTORE_ID_WEB, &r, &err), MESH_ENOTFOUND);
    store_resource *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_resource_list(env.st, NULL, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 0);
    free(list);
    /* After a rollback the version bump starts over. */
    cr_assert_eq(store_begin(env.st, &err), MESH_OK);
    put("service", "a", "1");
    cr_assert_eq(store_commit(env.st, &err), MESH_OK);
    cr_assert_eq(store_config_version(env.st), 1);
    store_resource a = get_one("service", "a");
    cr_assert_eq(a.version, 1);
    store_resource_free(&a);
}

Test(store_tx, failed_call_inside_tx_undoes_only_itself, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_begin(env.st, &err), MESH_OK);
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_OK);
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_EEXISTS);
    cr_assert_eq(store_registration_remove(env.st, "", TSTORE_ID_DB, &err), MESH_ENOTFOUND);
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_DB, "", "", &err), MESH_OK);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
    store_registration *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_registration_list(env.st, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 2);
    store_registration_free_list(list, n);
}

Test(store_tx, misuse_is_reported, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_commit(env.st, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "without an open transaction"), "%s", err.msg);
    store_rollback(env.st);   /* harmless without a transaction */
    cr_assert_eq(store_begin(env.st, &err), MESH_OK);
    cr_assert_eq(store_begin(env.st, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "nested"), "%s", err.msg);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK, "%s", err.msg);
}

Test(store_tx, reader_sees_snapshot_while_writer_open, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    mesh_store *reader = NULL;
    cr_assert_eq(store_open(&reader, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_begin(env.st, &err), MESH_OK);
    put("service", "a", "1");
    /* WAL: the reader neither blocks nor sees uncommitted data. */
    store_resource *list = NULL;
    size_t n = 9;
    cr_assert_eq(store_resource_list(reader, NULL, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 0);
    free(list);
    cr_assert_eq(store_config_version(reader), 0);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK);
    cr_assert_eq(store_config_version(reader), 1);
    store_close(reader);
}

/* ---- proxy status ------------------------------------------------------------------ */

static store_proxy *find_proxy(store_proxy *list, size_t n, const char *node)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].node_id, node) == 0)
            return &list[i];
    cr_assert_fail("proxy %s not listed", node);
    return NULL;
}

Test(store_proxy, upsert_types_disconnect_list, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    const char *lds = XDS_TYPE_URL_LISTENER;
    const char *cds = XDS_TYPE_URL_CLUSTER;
    cr_assert_eq(store_proxy_upsert(env.st, "node-b", TSTORE_ID_DB, "127.0.0.1:5001", 1, 9000,
                                     "meshd-1", 100, &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(store_proxy_upsert(env.st, "node-a", TSTORE_ID_WEB, "127.0.0.1:5000", 1, 8000,
                                     "meshd-1", 100, &err),
                 MESH_OK);
    cr_assert_eq(store_proxy_upsert(env.st, "node-c", TSTORE_ID_WEB, "127.0.0.1:5002", 1, 8000,
                                     "meshd-2", 100, &err),
                 MESH_OK);
    cr_assert_eq(store_proxy_type_update(env.st, "node-a", TSTORE_ID_WEB, lds, "v1", NULL, NULL, NULL, 101, &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(store_proxy_type_update(env.st, "node-b", TSTORE_ID_DB, cds, "v1", "v1", NULL, NULL, 101, &err),
                 MESH_OK);
    cr_assert_eq(store_proxy_type_update(env.st, "node-a", TSTORE_ID_WEB, cds, "v2", "v1", "v2", "bad cluster",
                                         102, &err),
                 MESH_OK);
    /* ACK of the LDS push: only acked_version changes, the rest is kept. */
    cr_assert_eq(store_proxy_type_update(env.st, "node-a", TSTORE_ID_WEB, lds, NULL, "v1", NULL, NULL, 103, &err),
                 MESH_OK);
    /* A later good CDS version clears the NACK explicitly with "". */
    cr_assert_eq(store_proxy_type_update(env.st, "node-b", TSTORE_ID_DB, cds, "v3", "v3", "", "", 104, &err),
                 MESH_OK);

    cr_assert_eq(store_proxy_disconnect_all(env.st, "meshd-1", &err), MESH_OK, "%s", err.msg);

    store_proxy *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_proxy_list(env.st, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(list[0].node_id, "node-a");
    cr_assert_str_eq(list[1].node_id, "node-b");
    cr_assert_str_eq(list[2].node_id, "node-c");

    store_proxy *a = find_proxy(list, n, "node-a");
    cr_assert_eq(a->connected, 0);
    cr_assert_eq(a->connected_at, 100);
    cr_assert_eq(a->last_seen, 100);
    cr_assert_eq(a->svid_not_after, 8000);
    cr_assert_str_eq(a->spiffe_id, TSTORE_ID_WEB);
    cr_assert_str_eq(a->peer, "127.0.0.1:5000");
    cr_assert_str_eq(a->meshd_instance, "meshd-1");
    cr_assert_eq(a->n_types, 2);
    /* Ordered by type URL: cluster before listener. */
    cr_assert_str_eq(a->types[0].type_url, cds);
    cr_assert_str_eq(a->types[0].sent_version, "v2");
    cr_assert_str_eq(a->types[0].acked_version, "v1");
    cr_assert_str_eq(a->types[0].nack_version, "v2");
    cr_assert_str_eq(a->types[0].nack_error, "bad cluster");
    cr_assert_str_eq(a->types[1].type_url, lds);
    cr_assert_str_eq(a->types[1].sent_version, "v1");
    cr_assert_str_eq(a->types[1].acked_version, "v1");
    cr_assert_str_eq(a->types[1].nack_version, "");
    cr_assert_eq(a->types[1].updated_at, 103);

    store_proxy *b = find_proxy(list, n, "node-b");
    cr_assert_eq(b->connected, 0);
    cr_assert_eq(b->n_types, 1);
    cr_assert_str_eq(b->types[0].acked_version, "v3");
    cr_assert_str_eq(b->types[0].nack_error, "");

    store_proxy *c = find_proxy(list, n, "node-c");
    cr_assert_eq(c->connected, 1, "another meshd's proxy was disconnected");
    cr_assert_eq(c->n_types, 0);
    cr_assert_null(c->types);
    store_proxy_free_list(list, n);
}

Test(store_proxy, reconnect_and_stale_disconnect, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_proxy_upsert(env.st, "n", TSTORE_ID_WEB, "p1", 1, 10, "meshd-1", 100, &err),
                 MESH_OK);
    /* Keep-alive: still connected, connected_at unchanged, last_seen moves. */
    cr_assert_eq(store_proxy_upsert(env.st, "n", TSTORE_ID_WEB, NULL, 1, 20, "meshd-1", 150, &err), MESH_OK);
    /* The sidecar moves to meshd-2... */
    cr_assert_eq(store_proxy_upsert(env.st, "n", TSTORE_ID_WEB, "p2", 1, 20, "meshd-2", 200, &err),
                 MESH_OK);
    /* ...and meshd-1 notices its dead stream late: must not clobber meshd-2's row. */
    cr_assert_eq(store_proxy_upsert(env.st, "n", TSTORE_ID_WEB, "p1", 0, 20, "meshd-1", 210, &err),
                 MESH_OK);
    cr_assert_eq(store_proxy_disconnect_all(env.st, "meshd-1", &err), MESH_OK);

    store_proxy *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_proxy_list(env.st, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(list[0].connected, 1);
    cr_assert_str_eq(list[0].meshd_instance, "meshd-2");
    cr_assert_str_eq(list[0].peer, "p2");
    cr_assert_eq(list[0].connected_at, 100, "connected_at moved without a disconnect");
    cr_assert_eq(list[0].last_seen, 200);
    cr_assert_eq(list[0].svid_not_after, 20);
    store_proxy_free_list(list, n);

    /* The holder disconnects; a later reconnect stamps a new connected_at. */
    cr_assert_eq(store_proxy_upsert(env.st, "n", TSTORE_ID_WEB, NULL, 0, 20, "meshd-2", 300, &err), MESH_OK);
    cr_assert_eq(store_proxy_upsert(env.st, "n", TSTORE_ID_WEB, "p3", 1, 30, "meshd-1", 400, &err), MESH_OK);
    cr_assert_eq(store_proxy_list(env.st, &list, &n, &err), MESH_OK);
    cr_assert_eq(list[0].connected, 1);
    cr_assert_eq(list[0].connected_at, 400);
    cr_assert_str_eq(list[0].peer, "p3");
    cr_assert_str_eq(list[0].meshd_instance, "meshd-1");
    store_proxy_free_list(list, n);
}

Test(store_proxy, invalid_input, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_proxy_upsert(env.st, "", TSTORE_ID_WEB, NULL, 1, 0, "m", 1, &err),
                 MESH_EINVAL);
    cr_assert_eq(store_proxy_upsert(env.st, NULL, TSTORE_ID_WEB, NULL, 1, 0, "m", 1, &err),
                 MESH_EINVAL);
    /* The identity is half of the row's key: a row without one is refused. */
    cr_assert_eq(store_proxy_upsert(env.st, "n", NULL, NULL, 1, 0, "m", 1, &err), MESH_EINVAL);
    cr_assert_eq(store_proxy_upsert(env.st, "n", "", NULL, 1, 0, "m", 1, &err), MESH_EINVAL);
    cr_assert_eq(store_proxy_type_update(env.st, "ghost", TSTORE_ID_WEB, "t", "v", NULL, NULL,
                                         NULL, 1, &err),
                 MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "ghost"), "%s", err.msg);
    cr_assert_eq(store_proxy_upsert(env.st, "n", TSTORE_ID_WEB, NULL, 1, 0, "m", 1, &err),
                 MESH_OK);
    cr_assert_eq(store_proxy_type_update(env.st, "n", TSTORE_ID_WEB, "", "v", NULL, NULL, NULL, 1,
                                         &err),
                 MESH_EINVAL);
    cr_assert_eq(store_proxy_type_update(env.st, "n", NULL, "t", "v", NULL, NULL, NULL, 1, &err),
                 MESH_EINVAL);
    /* Types of node n under another identity have no row to belong to. */
    cr_assert_eq(store_proxy_type_update(env.st, "n", TSTORE_ID_DB, "t", "v", NULL, NULL, NULL,
                                         1, &err),
                 MESH_ENOTFOUND);
    cr_assert_eq(store_proxy_disconnect_all(env.st, NULL, &err), MESH_EINVAL);
    store_proxy *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_proxy_list(env.st, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(list[0].n_types, 0);
    cr_assert_str_eq(list[0].spiffe_id, TSTORE_ID_WEB);
    store_proxy_free_list(list, n);
}

/* One Node.id under two identities: two rows, each with its own types;
 * neither write touches the other's (the impostor case of issue 11). */
Test(store_proxy, same_node_two_identities_two_rows, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    const char *cds = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    cr_assert_eq(store_proxy_upsert(env.st, "web-1", TSTORE_ID_WEB, "p-real", 1, 8000, "m", 100,
                                     &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(store_proxy_type_update(env.st, "web-1", TSTORE_ID_WEB, cds, "v1", "v1", NULL,
                                         NULL, 101, &err),
                 MESH_OK, "%s", err.msg);
    char holder[200], peer[64];
    cr_assert_eq(store_proxy_other_holder(env.st, "web-1", TSTORE_ID_DB, holder, sizeof holder,
                                          peer, sizeof peer, &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_str_eq(holder, TSTORE_ID_WEB);
    cr_assert_str_eq(peer, "p-real");
    cr_assert_eq(store_proxy_other_holder(env.st, "web-1", TSTORE_ID_WEB, holder, sizeof holder,
                                          peer, sizeof peer, &err),
                 MESH_OK);
    cr_assert_str_eq(holder, "", "its own row is no conflict");
    cr_assert_eq(store_proxy_upsert(env.st, "web-1", TSTORE_ID_DB, "p-fake", 1, 9000, "m", 102,
                                     &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(store_proxy_type_update(env.st, "web-1", TSTORE_ID_DB, cds, "v9", NULL, NULL,
                                         NULL, 103, &err),
                 MESH_OK);
    cr_assert_eq(store_proxy_upsert(env.st, "web-1", TSTORE_ID_DB, "p-fake", 0, 9000, "m", 104,
                                     &err),
                 MESH_OK);
    store_proxy *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_proxy_list(env.st, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 2);
    const store_proxy *real = strcmp(list[0].spiffe_id, TSTORE_ID_WEB) == 0 ? &list[0] : &list[1];
    const store_proxy *fake = real == &list[0] ? &list[1] : &list[0];
    cr_assert_str_eq(real->spiffe_id, TSTORE_ID_WEB);
    cr_assert_eq(real->connected, 1, "the impostor's disconnect left the real row alone");
    cr_assert_str_eq(real->peer, "p-real");
    cr_assert_eq(real->svid_not_after, 8000);
    cr_assert_eq(real->n_types, 1);
    cr_assert_str_eq(real->types[0].sent_version, "v1");
    cr_assert_str_eq(fake->spiffe_id, TSTORE_ID_DB);
    cr_assert_eq(fake->connected, 0);
    cr_assert_eq(fake->n_types, 1);
    cr_assert_str_eq(fake->types[0].sent_version, "v9");
    store_proxy_free_list(list, n);
    cr_assert_eq(store_proxy_other_holder(env.st, "web-1", TSTORE_ID_WEB, holder, sizeof holder,
                                          peer, sizeof peer, &err),
                 MESH_OK);
    cr_assert_str_eq(holder, "", "a disconnected row holds nothing");
}

/* ---- audit --------------------------------------------------------------------------- */

Test(store_audit, newest_first_with_limit, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    char subject[32];
    for (int i = 0; i < 5; i++) {
        snprintf(subject, sizeof subject, "s%d", i);
        cr_assert_eq(store_audit(env.st, "meshctl", "cert.revoke", subject, i % 2 ? "d" : NULL,
                                 i % 2, &err),
                     MESH_OK, "%s", err.msg);
    }
    store_audit_entry *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_audit_list(env.st, 3, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(list[0].subject, "s4");
    cr_assert_str_eq(list[1].subject, "s3");
    cr_assert_str_eq(list[2].subject, "s2");
    cr_assert_gt(list[0].id, list[1].id);
    cr_assert_str_eq(list[0].actor, "meshctl");
    cr_assert_str_eq(list[0].action, "cert.revoke");
    cr_assert_str_eq(list[0].detail, "");
    cr_assert_eq(list[0].ok, 0);
    cr_assert_str_eq(list[1].detail, "d");
    cr_assert_eq(list[1].ok, 1);
    cr_assert_geq(list[0].at, (int64_t)time(NULL) - 5);
    store_audit_free_list(list, n);
}

Test(store_audit, default_limit_is_100, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_begin(env.st, &err), MESH_OK);
    for (int i = 0; i < 105; i++)
        cr_assert_eq(store_audit(env.st, "meshd", "cert.issue", "x", "", 1, &err), MESH_OK);
    cr_assert_eq(store_commit(env.st, &err), MESH_OK);
    store_audit_entry *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_audit_list(env.st, 0, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 100);
    store_audit_free_list(list, n);
    cr_assert_eq(store_audit_list(env.st, 1000, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 105);
    store_audit_free_list(list, n);
}

Test(store_audit, invalid_input, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    cr_assert_eq(store_audit(env.st, NULL, "a", "", "", 1, &err), MESH_EINVAL);
    cr_assert_eq(store_audit(env.st, "meshd", "", "", "", 1, &err), MESH_EINVAL);
    store_audit_entry *list = NULL;
    size_t n = 9;
    cr_assert_eq(store_audit_list(env.st, 10, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 0);
    free(list);
}
