/* tests/unit/test_meshd_map.c — meshd's string-keyed hash map (meshd/meshd_map.c): the
 * tables keyed by SPIFFE ID or node id (snapshots, rotations in flight, proxy status). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshd/meshd_internal.h"

static int freed;

static void count_free(void *p)
{
    freed++;
    free(p);
}

static int *boxed(int v)
{
    int *p = malloc(sizeof *p);
    cr_assert_not_null(p);
    *p = v;
    return p;
}

Test(meshd_map, get_on_empty_and_missing_keys)
{
    md_map *m = md_map_new(16);
    cr_assert_not_null(m);
    cr_assert_eq(md_map_count(m), 0);
    cr_assert_null(md_map_get(m, "spiffe://example.org/ns/a/sa/b"));
    cr_assert_null(md_map_get(m, ""));
    cr_assert_null(md_map_remove(m, "nothing"));
    cr_assert_eq(md_map_count(m), 0);
    md_map_free(m, NULL);
}

Test(meshd_map, put_replaces_and_returns_the_old_value)
{
    md_map *m = md_map_new(8);
    int a = 1, b = 2;
    void *old = (void *)&a; /* must be reset to NULL for a new key */
    cr_assert_eq(md_map_put(m, "k", &a, &old), MESH_OK);
    cr_assert_null(old);
    cr_assert_eq(md_map_put(m, "k", &b, &old), MESH_OK);
    cr_assert_eq(old, &a);
    cr_assert_eq(md_map_get(m, "k"), &b);
    cr_assert_eq(md_map_count(m), 1, "replacing must not add an entry");
    cr_assert_eq(md_map_put(m, "k", &a, NULL), MESH_OK); /* old is optional */
    cr_assert_eq(md_map_get(m, "k"), &a);
    md_map_free(m, NULL);
}

Test(meshd_map, keys_are_copied)
{
    md_map *m = md_map_new(8);
    char key[32];
    snprintf(key, sizeof key, "node-1");
    int v = 7;
    md_map_put(m, key, &v, NULL);
    snprintf(key, sizeof key, "node-2"); /* the caller's buffer changes */
    cr_assert_eq(md_map_get(m, "node-1"), &v);
    cr_assert_null(md_map_get(m, "node-2"));
    md_map_free(m, NULL);
}

/* One bucket: every key collides, so chains are walked and unlinked in the middle. */
Test(meshd_map, collisions_in_one_bucket)
{
    md_map *m = md_map_new(1);
    int vals[50];
    char key[32];
    for (int i = 0; i < 50; i++) {
        vals[i] = i;
        snprintf(key, sizeof key, "id-%d", i);
        cr_assert_eq(md_map_put(m, key, &vals[i], NULL), MESH_OK);
    }
    cr_assert_eq(md_map_count(m), 50);
    for (int i = 0; i < 50; i += 2) { /* head, middle and tail of the chain */
        snprintf(key, sizeof key, "id-%d", i);
        cr_assert_eq(md_map_remove(m, key), &vals[i]);
    }
    cr_assert_eq(md_map_count(m), 25);
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "id-%d", i);
        if (i % 2)
            cr_assert_eq(md_map_get(m, key), &vals[i], "%s lost", key);
        else
            cr_assert_null(md_map_get(m, key), "%s still there", key);
    }
    md_map_free(m, NULL);
}

Test(meshd_map, zero_buckets_means_a_default_size)
{
    md_map *m = md_map_new(0);
    cr_assert_not_null(m);
    int v = 1;
    cr_assert_eq(md_map_put(m, "a", &v, NULL), MESH_OK);
    cr_assert_eq(md_map_get(m, "a"), &v);
    md_map_free(m, NULL);
}

Test(meshd_map, prefix_keys_are_distinct)
{
    /* Proxyless cache keys are "proxyless|" + a SPIFFE ID: neither may shadow the other. */
    md_map *m = md_map_new(64);
    int a = 1, b = 2;
    md_map_put(m, "spiffe://example.org/ns/d/sa/web", &a, NULL);
    md_map_put(m, "proxyless|spiffe://example.org/ns/d/sa/web", &b, NULL);
    cr_assert_eq(md_map_get(m, "spiffe://example.org/ns/d/sa/web"), &a);
    cr_assert_eq(md_map_get(m, "proxyless|spiffe://example.org/ns/d/sa/web"), &b);
    cr_assert_null(md_map_get(m, "spiffe://example.org/ns/d/sa/we"));
    md_map_free(m, NULL);
}

typedef struct walk {
    int visits;
    int sum;
    md_map *m;
} walk;

static void sum_values(const char *key, void *val, void *arg)
{
    walk *w = arg;
    w->visits++;
    w->sum += *(int *)val;
    cr_assert_eq(md_map_get(w->m, key), val);
}

Test(meshd_map, each_visits_every_entry_once)
{
    md_map *m = md_map_new(4);
    char key[16];
    for (int i = 1; i <= 20; i++) {
        snprintf(key, sizeof key, "k%d", i);
        md_map_put(m, key, boxed(i), NULL);
    }
    walk w = {0, 0, m};
    md_map_each(m, sum_values, &w);
    cr_assert_eq(w.visits, 20);
    cr_assert_eq(w.sum, 210);
    freed = 0;
    md_map_free(m, count_free);
    cr_assert_eq(freed, 20, "free_val must run once per value");
}

static void prune_odd(const char *key, void *val, void *arg)
{
    walk *w = arg;
    w->visits++;
    if (*(int *)val % 2)
        free(md_map_remove(w->m, key)); /* key is freed with the entry */
}

/* The watcher and status tables prune while walking; removing the visited
 * entry must not break the walk (a use-after-free under ASan before). */
Test(meshd_map, each_survives_removal_of_the_visited_entry)
{
    md_map *m = md_map_new(1); /* one chain: removal unlinks the node being walked */
    char key[16];
    for (int i = 1; i <= 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        md_map_put(m, key, boxed(i), NULL);
    }
    walk w = {0, 0, m};
    md_map_each(m, prune_odd, &w);
    cr_assert_eq(w.visits, 10, "every entry is visited even as some are removed");
    cr_assert_eq(md_map_count(m), 5);
    for (int i = 1; i <= 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_eq(md_map_get(m, key) != NULL, i % 2 == 0, "%s", key);
    }
    freed = 0;
    md_map_free(m, count_free);
    cr_assert_eq(freed, 5);
}

Test(meshd_map, free_accepts_null)
{
    md_map_free(NULL, count_free);
    md_map *m = md_map_new(2);
    md_map_put(m, "a", NULL, NULL); /* a NULL value is stored (the count tells) */
    cr_assert_eq(md_map_count(m), 1);
    cr_assert_null(md_map_get(m, "a"));
    md_map_free(m, NULL);
}
