/* tests/unit/test_xds_compile_snapshot.c — xds_snapshot: sorted insert, lookup,
 * ownership on error, and content versions (incremental == recomputed, change
 * iff (name, data) changes, independent of insertion order). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "sds/compiler/xds_snapshot.h"
#include "sds/compiler/xds_version.h"

static uint8_t *dup_bytes(const char *s)
{
    size_t n = strlen(s);
    uint8_t *p = malloc(n > 0 ? n : 1);
    cr_assert_not_null(p);
    memcpy(p, s, n);
    return p;
}

static void add_ok(xds_snapshot *s, enum xds_type t, const char *name, const char *data)
{
    mesh_err err = { 0 };
    int rc = xds_snapshot_add(s, t, name, dup_bytes(data), strlen(data), &err);
    cr_assert_eq(rc, MESH_OK, "add %s: %s", name, err.msg);
}

Test(xds_compile_snapshot, type_urls_round_trip)
{
    for (int t = 0; t < XDS_TYPE_COUNT; t++) {
        enum xds_type back;
        cr_assert_not_null(xds_type_url((enum xds_type)t));
        cr_assert_eq(xds_type_from_url(xds_type_url((enum xds_type)t), &back), 0);
        cr_assert_eq((int)back, t);
    }
    cr_assert_str_eq(xds_type_url(XDS_LDS), XDS_TYPE_URL_LISTENER);
    cr_assert_str_eq(xds_type_url(XDS_EDS),
                     XDS_TYPE_URL_ENDPOINT);
    enum xds_type t;
    cr_assert_eq(xds_type_from_url(XDS_TYPE_URL_SECRET, &t), -1, "SDS is not a snapshot type");
    cr_assert_eq(xds_type_from_url("envoy.config.listener.v3.Listener", &t), -1);
    cr_assert_eq(xds_type_from_url(NULL, &t), -1);
    cr_assert_null(xds_type_url(XDS_TYPE_COUNT));
}

Test(xds_compile_snapshot, sorted_insert_and_find)
{
    xds_snapshot s = { 0 };
    add_ok(&s, XDS_CDS, "outbound|web", "w");
    add_ok(&s, XDS_CDS, "inbound|a|local", "a");
    add_ok(&s, XDS_CDS, "outbound|db", "d");
    add_ok(&s, XDS_CDS, "zzz", "z");
    cr_assert_eq(s.types[XDS_CDS].n, 4);
    const char *want[] = { "inbound|a|local", "outbound|db", "outbound|web", "zzz" };
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_eq(s.types[XDS_CDS].items[i].name, want[i]);
    const xds_resource *r = xds_snapshot_find(&s, XDS_CDS, "outbound|db");
    cr_assert_not_null(r);
    cr_assert_eq(r->len, 1);
    cr_assert_eq(r->data[0], 'd');
    cr_assert_null(xds_snapshot_find(&s, XDS_CDS, "outbound|dbx"));
    cr_assert_null(xds_snapshot_find(&s, XDS_LDS, "outbound|db"), "types are separate");
    cr_assert_null(xds_snapshot_find(&s, XDS_TYPE_COUNT, "outbound|db"));
    cr_assert_null(xds_snapshot_find(NULL, XDS_CDS, "outbound|db"));
    xds_snapshot_free(&s);
    cr_assert_eq(s.types[XDS_CDS].n, 0);
    xds_snapshot_free(&s);   /* idempotent */
}

Test(xds_compile_snapshot, add_errors_take_ownership)
{
    /* Run under ASan/valgrind: every refused add must free its data. */
    xds_snapshot s = { 0 };
    mesh_err err = { 0 };
    add_ok(&s, XDS_LDS, "l", "1");
    char v[17];
    memcpy(v, s.types[XDS_LDS].version, 17);
    cr_assert_eq(xds_snapshot_add(&s, XDS_LDS, "l", dup_bytes("2"), 1, &err), MESH_EEXISTS);
    cr_assert(strstr(err.msg, "\"l\"") != NULL, "%s", err.msg);
    cr_assert_eq(s.types[XDS_LDS].n, 1);
    cr_assert_eq(s.types[XDS_LDS].items[0].data[0], '1', "the first one stays");
    cr_assert_str_eq(s.types[XDS_LDS].version, v);
    cr_assert_eq(xds_snapshot_add(&s, XDS_LDS, "", dup_bytes("x"), 1, &err), MESH_EINVAL);
    cr_assert_eq(xds_snapshot_add(&s, XDS_LDS, NULL, dup_bytes("x"), 1, &err), MESH_EINVAL);
    cr_assert_eq(xds_snapshot_add(&s, XDS_TYPE_COUNT, "x", dup_bytes("x"), 1, &err), MESH_EINVAL);
    cr_assert_eq(xds_snapshot_add(NULL, XDS_LDS, "x", dup_bytes("x"), 1, &err), MESH_EINVAL);
    cr_assert_eq(xds_snapshot_add(&s, XDS_LDS, "x", NULL, 5, &err), MESH_EINVAL);
    cr_assert_eq(xds_snapshot_add(&s, XDS_LDS, "empty", NULL, 0, &err), MESH_OK,
                 "a message with all defaults encodes to zero bytes");
    cr_assert_eq(s.types[XDS_LDS].n, 2);
    xds_snapshot_free(&s);
}

Test(xds_compile_snapshot, item_version_is_content_hash)
{
    xds_snapshot s = { 0 };
    add_ok(&s, XDS_EDS, "a", "same");
    add_ok(&s, XDS_EDS, "b", "same");
    add_ok(&s, XDS_EDS, "c", "other");
    const xds_type_set *set = &s.types[XDS_EDS];
    cr_assert_eq(strlen(set->items[0].version), 16);
    cr_assert_str_eq(set->items[0].version, set->items[1].version);
    cr_assert_str_neq(set->items[0].version, set->items[2].version);
    char v[17];
    xds_version_of("same", 4, v);
    cr_assert_str_eq(set->items[0].version, v);
    /* SHA-256("same")[0..8]: pinned so the hash cannot silently change. */
    cr_assert_str_eq(v, "0967115f2813a354");
    xds_snapshot_free(&s);
}

Test(xds_compile_snapshot, set_version_incremental_equals_recomputed)
{
    xds_snapshot s = { 0 };
    const char *names[] = { "m", "c", "x", "a", "q" };
    for (size_t i = 0; i < 5; i++)
        add_ok(&s, XDS_RDS, names[i], names[i]);
    char inc[17];
    memcpy(inc, s.types[XDS_RDS].version, 17);
    xds_snapshot_finish(&s);
    cr_assert_str_eq(s.types[XDS_RDS].version, inc);

    /* Another insertion order, same content: same version. */
    xds_snapshot t = { 0 };
    for (size_t i = 5; i-- > 0;)
        add_ok(&t, XDS_RDS, names[i], names[i]);
    cr_assert_str_eq(t.types[XDS_RDS].version, inc);
    xds_snapshot_free(&t);
    xds_snapshot_free(&s);
}

Test(xds_compile_snapshot, set_version_tracks_names_and_data)
{
    xds_snapshot a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 }, e = { 0 };
    add_ok(&a, XDS_CDS, "x", "1");
    add_ok(&a, XDS_CDS, "y", "2");
    add_ok(&b, XDS_CDS, "x", "2");   /* data swapped between names */
    add_ok(&b, XDS_CDS, "y", "1");
    add_ok(&c, XDS_CDS, "x", "1");   /* one item fewer */
    add_ok(&d, XDS_CDS, "x", "1");   /* renamed */
    add_ok(&d, XDS_CDS, "z", "2");
    xds_snapshot_finish(&e);         /* empty */
    cr_assert_str_neq(a.types[XDS_CDS].version, b.types[XDS_CDS].version);
    cr_assert_str_neq(a.types[XDS_CDS].version, c.types[XDS_CDS].version);
    cr_assert_str_neq(a.types[XDS_CDS].version, d.types[XDS_CDS].version);
    cr_assert_str_neq(c.types[XDS_CDS].version, e.types[XDS_CDS].version);
    cr_assert_eq(strlen(e.types[XDS_CDS].version), 16);
    /* Other types are untouched by adds to CDS. */
    cr_assert_str_eq(a.types[XDS_LDS].version, "");
    xds_snapshot_free(&a);
    xds_snapshot_free(&b);
    xds_snapshot_free(&c);
    xds_snapshot_free(&d);
}

Test(xds_compile_snapshot, finish_refreshes_edited_data)
{
    /* Someone who edits data in place must call finish; it recomputes both levels. */
    xds_snapshot s = { 0 };
    add_ok(&s, XDS_LDS, "l", "abc");
    char item[17], set[17];
    memcpy(item, s.types[XDS_LDS].items[0].version, 17);
    memcpy(set, s.types[XDS_LDS].version, 17);
    s.types[XDS_LDS].items[0].data[0] = 'X';
    xds_snapshot_finish(&s);
    cr_assert_str_neq(s.types[XDS_LDS].items[0].version, item);
    cr_assert_str_neq(s.types[XDS_LDS].version, set);
    xds_snapshot_free(&s);
}

Test(xds_compile_snapshot, version_parse_format)
{
    uint64_t v;
    char buf[17];
    xds_version_format(0x0123456789abcdefULL, buf);
    cr_assert_str_eq(buf, "0123456789abcdef");
    cr_assert_eq(xds_version_parse(buf, &v), 0);
    cr_assert_eq(v, 0x0123456789abcdefULL);
    cr_assert_eq(xds_version_parse("0123456789ABCDEF", &v), -1, "lower case only");
    cr_assert_eq(xds_version_parse("0123456789abcde", &v), -1);
    cr_assert_eq(xds_version_parse("0123456789abcdef0", &v), -1);
    cr_assert_eq(xds_version_parse("", &v), -1);
}
