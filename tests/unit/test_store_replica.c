/* tests/unit/test_store_replica.c — meshd replicas in the store (store/store_replica.c,
 * issue 14), on either backend (make unit-pg): registration, heartbeat, stop and the
 * list's states; a proxy row held by a replica whose heartbeat is older than
 * STORE_REPLICA_STALE_S (or that stopped) reads as not connected and stale, last seen at
 * that heartbeat, while rows of live replicas and of instances without a replicas row
 * read as stored; a replica that starts again clears its own old rows and nobody
 * else's; bad ids are refused. */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "tests/unit/test_store_util.h"

static tstore_env env;
static void setup(void) { tstore_setup_any(&env, 1); }
static void teardown(void) { tstore_teardown(&env); }
TestSuite(store_replica, .init = setup, .fini = teardown);

static int64_t now_s(void) { return (int64_t)time(NULL); }

static void reg(const char *id, int starting, int64_t at)
{
    mesh_err err = {0};
    cr_assert_eq(store_replica_register(env.st, id, "127.0.0.1:15010", 42, starting, at, &err),
                 MESH_OK, "%s", err.msg);
}

static void held(const char *node, const char *replica, int64_t seen)
{
    mesh_err err = {0};
    cr_assert_eq(store_proxy_upsert(env.st, node, TSTORE_ID_WEB, "127.0.0.1:1", 1, 0, replica,
                                    seen, &err),
                 MESH_OK, "%s", err.msg);
}

static const store_proxy *row(const store_proxy *list, size_t n, const char *node)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].node_id, node) == 0)
            return &list[i];
    cr_assert_fail("no row for %s", node);
    return NULL;
}

Test(store_replica, register_heartbeat_stop_and_states)
{
    int64_t now = now_s();
    reg("r1", 1, now - 100);
    mesh_err err = {0};
    store_replica *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_replica_list(env.st, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(list[0].id, "r1");
    cr_assert_str_eq(list[0].address, "127.0.0.1:15010");
    cr_assert_eq(list[0].pid, 42);
    cr_assert_str_eq(store_replica_state(&list[0], now), "stale", "heartbeat 100 s old");
    store_replica_free_list(list, n);

    cr_assert_eq(store_replica_heartbeat(env.st, "r1", now, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_replica_list(env.st, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_replica_state(&list[0], now), "up");
    cr_assert_eq(list[0].started, now - 100, "a heartbeat keeps the start time");
    store_replica_free_list(list, n);

    cr_assert_eq(store_replica_stop(env.st, "r1", now, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_replica_list(env.st, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(store_replica_state(&list[0], now), "stopped");
    store_replica_free_list(list, n);
    cr_assert_eq(store_replica_heartbeat(env.st, "r1", now, &err), MESH_ENOTFOUND,
                 "a stopped replica does not heartbeat");
    cr_assert_eq(store_replica_heartbeat(env.st, "nobody", now, &err), MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "not registered"), "%s", err.msg);
    reg("r1", 0, now);
    cr_assert_eq(store_replica_heartbeat(env.st, "r1", now, &err), MESH_OK,
                 "registered again: %s", err.msg);
}

Test(store_replica, rows_of_a_quiet_replica_read_as_not_connected)
{
    int64_t now = now_s();
    reg("alive", 1, now);
    reg("crashed", 1, now - STORE_REPLICA_STALE_S - 5);
    reg("stopped", 1, now);
    held("a", "alive", now - 500);
    held("c", "crashed", now - 500);
    held("s", "stopped", now - 500);
    held("o", "pre-7-meshd", now - 500); /* no replicas row */
    mesh_err err = {0};
    /* After the rows: store_replica_stop would also be followed by meshd's own
     * disconnect; here only the replicas row says it stopped. */
    cr_assert_eq(store_replica_stop(env.st, "stopped", now, &err), MESH_OK, "%s", err.msg);
    store_proxy *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_proxy_list(env.st, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 4);
    const store_proxy *a = row(list, n, "a"), *c = row(list, n, "c"), *s = row(list, n, "s"),
                      *o = row(list, n, "o");
    cr_assert(a->connected && !a->stale, "a live replica's row is connected");
    cr_assert(!c->connected && c->stale, "a crashed replica's row is not connected");
    cr_assert_eq(c->last_seen, now - STORE_REPLICA_STALE_S - 5, "seen last at its heartbeat");
    cr_assert(!s->connected && s->stale, "a stopped replica's row is not connected");
    cr_assert(o->connected && !o->stale, "no replicas row: read as stored");
    store_proxy_free_list(list, n);
    cr_assert_eq(store_proxy_list_rows(env.st, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert(!row(list, n, "c")->connected, "the rows-only list (endpoint health) agrees");
    store_proxy_free_list(list, n);
    /* The crashed replica comes back: its heartbeat makes nothing connected by
     * itself, its start clears what it held. */
    reg("crashed", 1, now);
    cr_assert_eq(store_proxy_list(env.st, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert(!row(list, n, "c")->connected && !row(list, n, "c")->stale,
              "a restarted replica cleared its own old row");
    cr_assert(row(list, n, "a")->connected, "and nobody else's");
    store_proxy_free_list(list, n);
}

Test(store_replica, bad_ids_are_refused)
{
    mesh_err err = {0};
    cr_assert_eq(store_replica_register(env.st, "", "x", 1, 1, 1, &err), MESH_EINVAL);
    cr_assert_eq(store_replica_register(env.st, NULL, "x", 1, 1, 1, &err), MESH_EINVAL);
    cr_assert_eq(store_replica_heartbeat(env.st, "", 1, &err), MESH_EINVAL);
    cr_assert_eq(store_replica_stop(env.st, NULL, 1, &err), MESH_EINVAL);
}
