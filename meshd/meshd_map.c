/* meshd/meshd_map.c — a small string-keyed hash map (chained, fixed bucket count).
 *
 * meshd keys several tables by SPIFFE ID or node id (snapshots, per-node
 * proxy status, rotations in flight) that hold thousands of entries in a
 * large mesh; a linear list would make every connect O(n). Not thread-safe:
 * each owner guards its map with its own mutex. */
#include "meshd/meshd_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct md_map_entry {
    struct md_map_entry *next;
    char *key;
    void *val;
} md_map_entry;

struct md_map {
    md_map_entry **buckets;
    size_t n_buckets;
    size_t count;
};

static size_t hash_key(const char *s)
{
    /* FNV-1a: keys are our own identifiers, not attacker-chosen at scale. */
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

md_map *md_map_new(size_t n_buckets)
{
    md_map *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n_buckets = n_buckets ? n_buckets : 1024;
    m->buckets = calloc(m->n_buckets, sizeof *m->buckets);
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    return m;
}

void md_map_free(md_map *m, void (*free_val)(void *))
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_buckets; i++) {
        md_map_entry *e = m->buckets[i];
        while (e) {
            md_map_entry *next = e->next;
            if (free_val)
                free_val(e->val);
            free(e->key);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    free(m);
}

void *md_map_get(const md_map *m, const char *key)
{
    for (md_map_entry *e = m->buckets[hash_key(key) % m->n_buckets]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->val;
    return NULL;
}

int md_map_put(md_map *m, const char *key, void *val, void **old)
{
    if (old)
        *old = NULL;
    size_t b = hash_key(key) % m->n_buckets;
    for (md_map_entry *e = m->buckets[b]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            if (old)
                *old = e->val;
            e->val = val;
            return MESH_OK;
        }
    }
    md_map_entry *e = calloc(1, sizeof *e);
    if (!e)
        return MESH_ENOMEM;
    e->key = strdup(key);
    if (!e->key) {
        free(e);
        return MESH_ENOMEM;
    }
    e->val = val;
    e->next = m->buckets[b];
    m->buckets[b] = e;
    m->count++;
    return MESH_OK;
}

void *md_map_remove(md_map *m, const char *key)
{
    md_map_entry **pp = &m->buckets[hash_key(key) % m->n_buckets];
    for (; *pp; pp = &(*pp)->next) {
        md_map_entry *e = *pp;
        if (strcmp(e->key, key) == 0) {
            void *val = e->val;
            *pp = e->next;
            free(e->key);
            free(e);
            m->count--;
            return val;
        }
    }
    return NULL;
}

size_t md_map_count(const md_map *m)
{
    return m->count;
}

void md_map_each(md_map *m, void (*fn)(const char *key, void *val, void *ctx), void *ctx)
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        md_map_entry *next;
        for (md_map_entry *e = m->buckets[i]; e; e = next) {
            next = e->next; /* fn may remove e (and only e) */
            fn(e->key, e->val, ctx);
        }
    }
}
