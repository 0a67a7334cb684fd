/* sds/compiler/xds_snapshot.c — the per-sidecar resource set: sorted insert, lookup and
 * content versions (see xds_snapshot.h).
 *
 * Item version: SHA-256(data) truncated to 64 bits (xds_version.h).
 * Type version: the sum mod 2^64 of SHA-256(name, NUL, item version) over the
 * items. A sum, rather than one hash over the sorted list, lets xds_snapshot_add
 * update the version in O(1) instead of rehashing the whole set on every insert
 * (a sidecar in a large mesh has thousands of clusters). Names are unique within
 * a type, so no two terms cancel by construction; an accidental collision is a
 * 2^-64 event. The ADS layer versions what it actually sends separately
 * (ads_subset_version), so this one is only for "did anything change". */
#include "sds/compiler/xds_snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sds/compiler/xds_version.h"

static const char *const type_urls[XDS_TYPE_COUNT] = {
    [XDS_CDS] = XDS_TYPE_URL_CLUSTER,
    [XDS_EDS] = XDS_TYPE_URL_ENDPOINT,
    [XDS_LDS] = XDS_TYPE_URL_LISTENER,
    [XDS_RDS] = XDS_TYPE_URL_ROUTE,
};

const char *xds_type_url(enum xds_type t)
{
    if ((int)t < 0 || t >= XDS_TYPE_COUNT)
        return NULL;
    return type_urls[t];
}

int xds_type_from_url(const char *type_url, enum xds_type *out)
{
    if (type_url == NULL)
        return -1;
    for (int t = 0; t < XDS_TYPE_COUNT; t++) {
        if (strcmp(type_url, type_urls[t]) == 0) {
            *out = (enum xds_type)t;
            return 0;
        }
    }
    return -1;
}

/* Index of name in set, or -(insertion point) - 1 when absent. */
static long search(const xds_type_set *set, const char *name)
{
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(set->items[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

const xds_resource *xds_snapshot_find(const xds_snapshot *s, enum xds_type t, const char *name)
{
    if (s == NULL || name == NULL || (int)t < 0 || t >= XDS_TYPE_COUNT)
        return NULL;
    long i = search(&s->types[t], name);
    return i >= 0 ? &s->types[t].items[i] : NULL;
}

/* One item's share of its type version; -1 if hashing failed. */
static int item_term(const xds_resource *r, uint64_t *out)
{
    return xds_hash64_named(r->name, r->version, strlen(r->version), out);
}

static void set_version_recompute(xds_type_set *set)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < set->n; i++) {
        uint64_t term;
        if (item_term(&set->items[i], &term) != 0) {
            /* Out of memory inside OpenSSL: a value that is never a real
             * version, so the set is pushed again rather than skipped. */
            snprintf(set->version, sizeof set->version, "unhashed-%07zu", set->n % 10000000);
            return;
        }
        sum += term;
    }
    xds_version_format(sum, set->version);
}

int xds_snapshot_add(xds_snapshot *s, enum xds_type t, const char *name, uint8_t *data,
                     size_t len, mesh_err *err)
{
    /* Ownership of data passes to us in every case, so callers never have to
     * guess whether to free it after an error. */
    if (s == NULL || (int)t < 0 || t >= XDS_TYPE_COUNT) {
        free(data);
        return mesh_err_set(err, MESH_EINVAL, "xds snapshot: bad snapshot or resource type %d",
                            (int)t);
    }
    if (name == NULL || name[0] == '\0') {
        free(data);
        return mesh_err_set(err, MESH_EINVAL, "xds snapshot: %s resource without a name",
                            type_urls[t]);
    }
    if (data == NULL && len > 0) {
        return mesh_err_set(err, MESH_EINVAL, "xds snapshot: resource %s has length %zu but no data",
                            name, len);
    }
    xds_type_set *set = &s->types[t];
    long pos = search(set, name);
    if (pos >= 0) {
        free(data);
        return mesh_err_set(err, MESH_EEXISTS,
                            "xds snapshot: two %s resources named \"%s\"", type_urls[t], name);
    }
    size_t at = (size_t)(-pos - 1);

    char *name_copy = strdup(name);
    xds_resource *items = name_copy ? realloc(set->items, (set->n + 1) * sizeof *items) : NULL;
    if (items == NULL) {
        free(name_copy);
        free(data);
        return mesh_err_set(err, MESH_ENOMEM, "xds snapshot: out of memory adding %s", name);
    }
    set->items = items;
    memmove(&items[at + 1], &items[at], (set->n - at) * sizeof *items);
    xds_resource *r = &items[at];
    memset(r, 0, sizeof *r);
    r->name = name_copy;
    r->data = data;
    r->len = len;
    xds_version_of(data, len, r->version);
    set->n++;

    /* O(1) update of the sum unless the previous version is not a plain sum
     * (empty set never finished, or an earlier hashing failure). */
    uint64_t sum, term;
    if (set->n > 1 && xds_version_parse(set->version, &sum) == 0 && item_term(r, &term) == 0)
        xds_version_format(sum + term, set->version);
    else
        set_version_recompute(set);
    return MESH_OK;
}

void xds_snapshot_finish(xds_snapshot *s)
{
    if (s == NULL)
        return;
    for (int t = 0; t < XDS_TYPE_COUNT; t++) {
        xds_type_set *set = &s->types[t];
        for (size_t i = 0; i < set->n; i++)
            xds_version_of(set->items[i].data, set->items[i].len, set->items[i].version);
        set_version_recompute(set);
    }
}

void xds_snapshot_free(xds_snapshot *s)
{
    if (s == NULL)
        return;
    for (int t = 0; t < XDS_TYPE_COUNT; t++) {
        xds_type_set *set = &s->types[t];
        for (size_t i = 0; i < set->n; i++) {
            free(set->items[i].name);
            free(set->items[i].data);
        }
        free(set->items);
        set->items = NULL;
        set->n = 0;
        set->version[0] = '\0';
    }
}
