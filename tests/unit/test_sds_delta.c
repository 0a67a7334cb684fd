/* tests/unit/test_sds_delta.c — the Incremental (Delta) xDS state machine (sds/protocol/ads_delta_state.c)
 * and its codec (sds/protocol/ads_delta_codec.c) as pure logic: no gRPC, no store. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "sds/protocol/ads_delta_codec.h"
#include "sds/protocol/ads_delta_state.h"

#define TD    "example.org"
#define ME    "spiffe://example.org/ns/default/sa/web"
#define OTHER "spiffe://example.org/ns/default/sa/db"

/* A hand-built type set: items sorted by name; a resource's version is its data. */
typedef struct dset {
    xds_resource items[8];
    xds_type_set set;
} dset;

static void dset_make(dset *d, const char *const *names, const char *const *versions, size_t n)
{
    memset(d, 0, sizeof *d);
    for (size_t i = 0; i < n; i++) {
        d->items[i].name = (char *)names[i];
        d->items[i].data = (uint8_t *)versions[i];
        d->items[i].len = strlen(versions[i]);
        snprintf(d->items[i].version, sizeof d->items[i].version, "%s", versions[i]);
    }
    d->set.items = d->items;
    d->set.n = n;
}

static void dnonce(void *ctx, char *buf, size_t len)
{
    unsigned *counter = ctx;
    snprintf(buf, len, "n%u", ++*counter);
}

typedef struct dfx {
    ads_delta_state st;
    unsigned counter;
    ads_delta_send sends[ADS_T_COUNT];
    size_t n;
} dfx;

static void dfx_init(dfx *f)
{
    memset(f, 0, sizeof *f);
    ads_delta_init(&f->st, ME, TD);
}

static void dfx_fini(dfx *f)
{
    ads_delta_send_free(f->sends, f->n);
    ads_delta_free(&f->st);
}

typedef struct dreq {
    const char *const *sub;
    size_t n_sub;
    const char *const *unsub;
    size_t n_unsub;
    const char *const *init_names;
    const char *const *init_versions;
    size_t n_init;
    const char *nonce;
    const char *error;
} dreq;

static ads_req_result dsend(dfx *f, enum ads_type t, dreq r)
{
    ads_delta_request q = {
        .type_url = ads_type_url(t),
        .subscribe = r.sub,
        .n_subscribe = r.n_sub,
        .unsubscribe = r.unsub,
        .n_unsubscribe = r.n_unsub,
        .initial_names = r.init_names,
        .initial_versions = r.init_versions,
        .n_initial = r.n_init,
        .response_nonce = r.nonce ? r.nonce : "",
        .has_error = r.error != NULL,
        .error_message = r.error,
    };
    ads_req_result res;
    mesh_err err = {0};
    cr_assert_eq(ads_delta_on_request(&f->st, &q, &res, &err), MESH_OK, "%s", err.msg);
    return res;
}

static size_t dcollect(dfx *f, const ads_view *v)
{
    ads_delta_send_free(f->sends, f->n);
    f->n = 0;
    mesh_err err = {0};
    cr_assert_eq(ads_delta_collect(&f->st, v, dnonce, &f->counter, f->sends, &f->n, &err),
                 MESH_OK);
    return f->n;
}

/* ACKs the response in sends[i]. */
static void dack(dfx *f, size_t i)
{
    char nonce[ADS_NONCE_MAX];
    snprintf(nonce, sizeof nonce, "%s", f->sends[i].nonce);
    ads_req_result r = dsend(f, f->sends[i].type, (dreq){.nonce = nonce});
    cr_assert_eq(r.kind, ADS_REQ_ACK);
}

static int has_item(const ads_delta_send *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i]->name, name) == 0)
            return 1;
    return 0;
}

static int has_removed(const ads_delta_send *s, const char *name)
{
    for (size_t i = 0; i < s->n_removed; i++)
        if (strcmp(s->removed[i], name) == 0)
            return 1;
    return 0;
}

static const char *const L3[] = {"a", "b", "c"};
static const char *const V3[] = {"1111111111111111", "2222222222222222", "3333333333333333"};

Test(sds_delta_state, legacy_wildcard_first_request_sends_everything)
{
    dfx f;
    dfx_init(&f);
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_LDS] = &d.set}};
    ads_req_result r = dsend(&f, ADS_T_LDS, (dreq){0});
    cr_assert_eq(r.kind, ADS_REQ_SUBSCRIBE);
    cr_assert(r.subscription_changed);
    cr_assert(f.st.types[ADS_T_LDS].wildcard);
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].type, ADS_T_LDS);
    cr_assert_eq(f.sends[0].n, 3);
    cr_assert_eq(f.sends[0].n_removed, 0);
    cr_assert_str_eq(f.sends[0].nonce, "n1");
    cr_assert_eq(strlen(f.sends[0].version), 16);
    cr_assert_str_eq(ads_delta_known_version(&f.st, ADS_T_LDS, "b"), V3[1]);
    cr_assert_eq(dcollect(&f, &v), 0, "one response per type awaits its ACK");
    dfx_fini(&f);
}

Test(sds_delta_state, system_version_is_the_sotw_subset_version)
{
    dfx f;
    dfx_init(&f);
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_CDS] = &d.set}};
    dsend(&f, ADS_T_CDS, (dreq){0});
    cr_assert_eq(dcollect(&f, &v), 1);
    const xds_resource *all[3] = {&d.items[0], &d.items[1], &d.items[2]};
    char want[ADS_VERSION_MAX];
    ads_subset_version(all, 3, want);
    cr_assert_str_eq(f.sends[0].version, want);
    dfx_fini(&f);
}

Test(sds_delta_state, ack_then_unchanged_view_sends_nothing)
{
    dfx f;
    dfx_init(&f);
    dset d, same;
    dset_make(&d, L3, V3, 3);
    dset_make(&same, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_LDS] = &d.set}};
    ads_view v2 = {.sets = {[ADS_T_LDS] = &same.set}};
    dsend(&f, ADS_T_LDS, (dreq){0});
    dcollect(&f, &v);
    char ver[ADS_VERSION_MAX];
    snprintf(ver, sizeof ver, "%s", f.sends[0].version);
    dack(&f, 0);
    cr_assert_str_eq(f.st.types[ADS_T_LDS].acked_version, ver);
    cr_assert_eq(dcollect(&f, &v), 0);
    cr_assert_eq(dcollect(&f, &v2), 0, "a recompiled identical snapshot pushes nothing");
    dfx_fini(&f);
}

Test(sds_delta_state, only_the_changed_resource_is_sent)
{
    dfx f;
    dfx_init(&f);
    static const char *const V3b[] = {"1111111111111111", "2222222222222229",
                                      "3333333333333333"};
    dset d, changed;
    dset_make(&d, L3, V3, 3);
    dset_make(&changed, L3, V3b, 3);
    ads_view v = {.sets = {[ADS_T_CDS] = &d.set}};
    ads_view vc = {.sets = {[ADS_T_CDS] = &changed.set}};
    dsend(&f, ADS_T_CDS, (dreq){0});
    dcollect(&f, &v);
    char v1[ADS_VERSION_MAX];
    snprintf(v1, sizeof v1, "%s", f.sends[0].version);
    dack(&f, 0);
    cr_assert_eq(dcollect(&f, &vc), 1);
    cr_assert_eq(f.sends[0].n, 1, "only b changed");
    cr_assert_str_eq(f.sends[0].items[0]->name, "b");
    cr_assert_str_eq(f.sends[0].items[0]->version, V3b[1]);
    cr_assert_eq(f.sends[0].n_removed, 0);
    cr_assert_str_neq(f.sends[0].version, v1, "the system version moves too");
    cr_assert_str_eq(f.sends[0].nonce, "n2");
    dfx_fini(&f);
}

Test(sds_delta_state, wildcard_additions_and_removals)
{
    dfx f;
    dfx_init(&f);
    static const char *const L3b[] = {"a", "c", "d"};
    static const char *const V3b[] = {"1111111111111111", "3333333333333333",
                                      "4444444444444444"};
    dset d, next, empty;
    dset_make(&d, L3, V3, 3);
    dset_make(&next, L3b, V3b, 3);
    dset_make(&empty, NULL, NULL, 0);
    ads_view v = {.sets = {[ADS_T_LDS] = &d.set}};
    ads_view vn = {.sets = {[ADS_T_LDS] = &next.set}};
    ads_view ve = {.sets = {[ADS_T_LDS] = &empty.set}};
    dsend(&f, ADS_T_LDS, (dreq){0});
    dcollect(&f, &v);
    dack(&f, 0);
    cr_assert_eq(dcollect(&f, &vn), 1);
    cr_assert_eq(f.sends[0].n, 1);
    cr_assert(has_item(&f.sends[0], "d"));
    cr_assert_eq(f.sends[0].n_removed, 1);
    cr_assert(has_removed(&f.sends[0], "b"));
    cr_assert_null(ads_delta_known_version(&f.st, ADS_T_LDS, "b"),
                   "a removed wildcard resource is forgotten");
    dack(&f, 0);
    /* Everything gone (the workload was deleted): all three removed. */
    cr_assert_eq(dcollect(&f, &ve), 1);
    cr_assert_eq(f.sends[0].n, 0);
    cr_assert_eq(f.sends[0].n_removed, 3);
    cr_assert(has_removed(&f.sends[0], "a") && has_removed(&f.sends[0], "c") &&
              has_removed(&f.sends[0], "d"));
    dack(&f, 0);
    cr_assert_eq(dcollect(&f, &ve), 0, "removals are sent once");
    dfx_fini(&f);
}

Test(sds_delta_state, by_name_subscribe_and_unsubscribe)
{
    dfx f;
    dfx_init(&f);
    static const char *const A[] = {"a"};
    static const char *const B[] = {"b"};
    static const char *const V3b[] = {"1111111111111119", "2222222222222222",
                                      "3333333333333333"};
    dset d, changed;
    dset_make(&d, L3, V3, 3);
    dset_make(&changed, L3, V3b, 3);
    ads_view v = {.sets = {[ADS_T_RDS] = &d.set}};
    ads_view vc = {.sets = {[ADS_T_RDS] = &changed.set}};
    ads_req_result r = dsend(&f, ADS_T_RDS, (dreq){.sub = A, .n_sub = 1});
    cr_assert_eq(r.kind, ADS_REQ_SUBSCRIBE);
    cr_assert_not(f.st.types[ADS_T_RDS].wildcard);
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 1);
    cr_assert_str_eq(f.sends[0].items[0]->name, "a");
    dack(&f, 0);
    /* A spontaneous request adds b: only b is sent. */
    r = dsend(&f, ADS_T_RDS, (dreq){.sub = B, .n_sub = 1});
    cr_assert_eq(r.kind, ADS_REQ_UPDATE);
    cr_assert(r.subscription_changed);
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 1);
    cr_assert_str_eq(f.sends[0].items[0]->name, "b");
    dack(&f, 0);
    /* Unsubscribing a: no answer needed, and a's changes no longer pushed. */
    r = dsend(&f, ADS_T_RDS, (dreq){.unsub = A, .n_unsub = 1});
    cr_assert(r.subscription_changed);
    cr_assert_null(ads_delta_known_version(&f.st, ADS_T_RDS, "a"));
    cr_assert_eq(dcollect(&f, &v), 0);
    cr_assert_eq(dcollect(&f, &vc), 0, "a changed but is no longer subscribed");
    /* A phantom unsubscription changes nothing. */
    static const char *const Z[] = {"zz"};
    r = dsend(&f, ADS_T_RDS, (dreq){.unsub = Z, .n_unsub = 1});
    cr_assert_not(r.subscription_changed);
    dfx_fini(&f);
}

Test(sds_delta_state, missing_name_is_signalled_removed_once)
{
    dfx f;
    dfx_init(&f);
    static const char *const X[] = {"x"};
    static const char *const LX[] = {"x"};
    static const char *const VX[] = {"5555555555555555"};
    dset none, withx;
    dset_make(&none, NULL, NULL, 0);
    dset_make(&withx, LX, VX, 1);
    ads_view vn = {.sets = {[ADS_T_EDS] = &none.set}};
    ads_view vx = {.sets = {[ADS_T_EDS] = &withx.set}};
    dsend(&f, ADS_T_EDS, (dreq){.sub = X, .n_sub = 1});
    cr_assert_eq(dcollect(&f, &vn), 1);
    cr_assert_eq(f.sends[0].n, 0);
    cr_assert_eq(f.sends[0].n_removed, 1, "the spec's \"does not exist\" signal");
    cr_assert_str_eq(f.sends[0].removed[0], "x");
    dack(&f, 0);
    cr_assert_eq(dcollect(&f, &vn), 0, "said once");
    cr_assert_eq(dcollect(&f, &vx), 1, "x springs into existence: sent");
    cr_assert_eq(f.sends[0].n, 1);
    cr_assert_eq(f.sends[0].n_removed, 0);
    dack(&f, 0);
    cr_assert_eq(dcollect(&f, &vn), 1, "and goes away again: removed");
    cr_assert_eq(f.sends[0].n_removed, 1);
    dfx_fini(&f);
}

Test(sds_delta_state, resubscribing_resends_a_current_resource)
{
    dfx f;
    dfx_init(&f);
    static const char *const A[] = {"a"};
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_EDS] = &d.set}};
    dsend(&f, ADS_T_EDS, (dreq){.sub = A, .n_sub = 1});
    dcollect(&f, &v);
    dack(&f, 0);
    ads_req_result r = dsend(&f, ADS_T_EDS, (dreq){.sub = A, .n_sub = 1});
    cr_assert_not(r.subscription_changed);
    cr_assert_eq(dcollect(&f, &v), 1, "the client may have forgotten it");
    cr_assert_eq(f.sends[0].n, 1);
    dfx_fini(&f);
}

Test(sds_delta_state, initial_resource_versions_suppress_resends)
{
    dfx f;
    dfx_init(&f);
    /* Reconnect: holds a (current), b (old) and gone (deleted meanwhile). */
    static const char *const IN[] = {"a", "b", "gone"};
    static const char *const IV[] = {"1111111111111111", "2222222222222220",
                                     "9999999999999999"};
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_LDS] = &d.set}};
    dsend(&f, ADS_T_LDS, (dreq){.init_names = IN, .init_versions = IV, .n_init = 3});
    cr_assert(f.st.types[ADS_T_LDS].wildcard, "initial versions alone keep the legacy wildcard");
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 2);
    cr_assert(has_item(&f.sends[0], "b"));
    cr_assert(has_item(&f.sends[0], "c"));
    cr_assert_not(has_item(&f.sends[0], "a"), "a is current: not resent");
    cr_assert_eq(f.sends[0].n_removed, 1);
    cr_assert_str_eq(f.sends[0].removed[0], "gone");
    dfx_fini(&f);
}

Test(sds_delta_state, reconnect_with_everything_current_gets_an_empty_answer)
{
    dfx f;
    dfx_init(&f);
    static const char *const A[] = {"a", "c"};
    static const char *const AV[] = {"1111111111111111", "3333333333333333"};
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_CDS] = &d.set, [ADS_T_RDS] = &d.set}};
    dsend(&f, ADS_T_CDS, (dreq){.init_names = L3, .init_versions = V3, .n_init = 3});
    dsend(&f, ADS_T_RDS, (dreq){.sub = A, .n_sub = 2, .init_names = A, .init_versions = AV,
                                .n_init = 2});
    cr_assert_eq(dcollect(&f, &v), 2, "each type's first request is answered");
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(f.sends[i].n, 0, "nothing is resent");
        cr_assert_eq(f.sends[i].n_removed, 0);
    }
    dack(&f, 0);
    dack(&f, 1);
    cr_assert_eq(dcollect(&f, &v), 0);
    cr_assert_str_eq(ads_delta_known_version(&f.st, ADS_T_RDS, "c"), V3[2]);
    dfx_fini(&f);
}

Test(sds_delta_state, initial_versions_count_only_first_and_only_subscribed)
{
    dfx f;
    dfx_init(&f);
    static const char *const A[] = {"a"};
    static const char *const B[] = {"b"};
    static const char *const IN[] = {"a", "z"};
    static const char *const IV[] = {"1111111111111111", "3333333333333333"};
    static const char *const BV[] = {"2222222222222222"};
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_EDS] = &d.set}};
    dsend(&f, ADS_T_EDS, (dreq){.sub = A, .n_sub = 1, .init_names = IN, .init_versions = IV,
                                .n_init = 2});
    cr_assert_null(ads_delta_known_version(&f.st, ADS_T_EDS, "z"), "z is not subscribed");
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 0);
    dack(&f, 0);
    /* Later initial versions are not a reconnect: b is sent anyway. */
    dsend(&f, ADS_T_EDS, (dreq){.sub = B, .n_sub = 1, .init_names = B, .init_versions = BV,
                                .n_init = 1});
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 1);
    cr_assert_str_eq(f.sends[0].items[0]->name, "b");
    dfx_fini(&f);
}

Test(sds_delta_state, odd_initial_versions_are_resent_and_last_key_wins)
{
    dfx f;
    dfx_init(&f);
    /* "a" twice (the later value is current), "b" empty, "c" overlong. */
    static const char *const IN[] = {"a", "b", "c", "a"};
    static const char *const IV[] = {"0000000000000000", "", "33333333333333330000",
                                     "1111111111111111"};
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_CDS] = &d.set}};
    dsend(&f, ADS_T_CDS, (dreq){.init_names = IN, .init_versions = IV, .n_init = 4});
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 2);
    cr_assert(has_item(&f.sends[0], "b") && has_item(&f.sends[0], "c"));
    dfx_fini(&f);
}

Test(sds_delta_state, first_request_naming_a_cluster_is_not_wildcard)
{
    dfx f;
    dfx_init(&f);
    static const char *const A[] = {"a"};
    static const char *const X[] = {"x"};
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_CDS] = &d.set}};
    dsend(&f, ADS_T_CDS, (dreq){.sub = A, .n_sub = 1});
    cr_assert_not(f.st.types[ADS_T_CDS].wildcard);
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 1);
    dack(&f, 0);
    /* An empty request later is an ACK-less no-op, not a wildcard. */
    dsend(&f, ADS_T_CDS, (dreq){0});
    cr_assert_not(f.st.types[ADS_T_CDS].wildcard);
    /* But an explicit "*" is, beside the name. */
    static const char *const STAR[] = {"*"};
    ads_req_result r = dsend(&f, ADS_T_CDS, (dreq){.sub = STAR, .n_sub = 1});
    cr_assert(r.subscription_changed);
    cr_assert(f.st.types[ADS_T_CDS].wildcard);
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 2, "b and c join; a is current");
    dack(&f, 0);
    /* The legacy wildcard keeps going when a name is added beside it. */
    dsend(&f, ADS_T_CDS, (dreq){.sub = X, .n_sub = 1});
    cr_assert(f.st.types[ADS_T_CDS].wildcard);
    dfx_fini(&f);
}

Test(sds_delta_state, unsubscribing_star_keeps_explicit_names)
{
    dfx f;
    dfx_init(&f);
    static const char *const A[] = {"a"};
    static const char *const STAR[] = {"*"};
    static const char *const V3b[] = {"1111111111111119", "2222222222222229",
                                      "3333333333333339"};
    dset d, changed;
    dset_make(&d, L3, V3, 3);
    dset_make(&changed, L3, V3b, 3);
    ads_view v = {.sets = {[ADS_T_LDS] = &d.set}};
    ads_view vc = {.sets = {[ADS_T_LDS] = &changed.set}};
    dsend(&f, ADS_T_LDS, (dreq){0});
    dcollect(&f, &v);
    dack(&f, 0);
    dsend(&f, ADS_T_LDS, (dreq){.sub = A, .n_sub = 1});
    cr_assert_eq(dcollect(&f, &v), 1, "subscribing a name resends it");
    dack(&f, 0);
    ads_req_result r = dsend(&f, ADS_T_LDS, (dreq){.unsub = STAR, .n_unsub = 1});
    cr_assert(r.subscription_changed);
    cr_assert_not(f.st.types[ADS_T_LDS].wildcard);
    cr_assert_null(ads_delta_known_version(&f.st, ADS_T_LDS, "b"));
    cr_assert_not_null(ads_delta_known_version(&f.st, ADS_T_LDS, "a"));
    cr_assert_eq(dcollect(&f, &v), 0, "no answer is owed for an unsubscription");
    cr_assert_eq(dcollect(&f, &vc), 1);
    cr_assert_eq(f.sends[0].n, 1, "only the explicit name is still pushed");
    cr_assert_str_eq(f.sends[0].items[0]->name, "a");
    dfx_fini(&f);
}

Test(sds_delta_state, unsubscribing_a_name_under_the_wildcard_is_answered)
{
    dfx f;
    dfx_init(&f);
    static const char *const AX[] = {"a", "x"};
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_LDS] = &d.set}};
    dsend(&f, ADS_T_LDS, (dreq){0});
    dcollect(&f, &v);
    dack(&f, 0);
    dsend(&f, ADS_T_LDS, (dreq){.sub = AX, .n_sub = 2});
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert(has_item(&f.sends[0], "a"));
    cr_assert(has_removed(&f.sends[0], "x"), "x does not exist");
    dack(&f, 0);
    /* The client cannot tell whether the wildcard covers a and x: say so. */
    dsend(&f, ADS_T_LDS, (dreq){.unsub = AX, .n_unsub = 2});
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 1);
    cr_assert(has_item(&f.sends[0], "a"), "a is still covered by the wildcard");
    cr_assert_eq(f.sends[0].n_removed, 1);
    cr_assert(has_removed(&f.sends[0], "x"), "x is not covered by the wildcard");
    dack(&f, 0);
    cr_assert_eq(dcollect(&f, &v), 0);
    cr_assert_null(ads_delta_known_version(&f.st, ADS_T_LDS, "x"));
    dfx_fini(&f);
}

Test(sds_delta_state, nack_recorded_and_rejected_versions_not_resent)
{
    dfx f;
    dfx_init(&f);
    static const char *const V3b[] = {"1111111111111111", "2222222222222229",
                                      "3333333333333333"};
    static const char *const V3c[] = {"1111111111111111", "2222222222222228",
                                      "3333333333333333"};
    dset d, bad, good;
    dset_make(&d, L3, V3, 3);
    dset_make(&bad, L3, V3b, 3);
    dset_make(&good, L3, V3c, 3);
    ads_view v = {.sets = {[ADS_T_LDS] = &d.set}};
    ads_view vb = {.sets = {[ADS_T_LDS] = &bad.set}};
    ads_view vg = {.sets = {[ADS_T_LDS] = &good.set}};
    dsend(&f, ADS_T_LDS, (dreq){0});
    dcollect(&f, &v);
    char good_v[ADS_VERSION_MAX];
    snprintf(good_v, sizeof good_v, "%s", f.sends[0].version);
    dack(&f, 0);
    cr_assert_eq(dcollect(&f, &vb), 1);
    char bad_v[ADS_VERSION_MAX], nonce[ADS_NONCE_MAX];
    snprintf(bad_v, sizeof bad_v, "%s", f.sends[0].version);
    snprintf(nonce, sizeof nonce, "%s", f.sends[0].nonce);
    ads_req_result r = dsend(&f, ADS_T_LDS, (dreq){.nonce = nonce, .error = "port in use"});
    cr_assert_eq(r.kind, ADS_REQ_NACK);
    ads_delta_type *ts = &f.st.types[ADS_T_LDS];
    cr_assert_str_eq(ts->nack_version, bad_v);
    cr_assert_str_eq(ts->nack_error, "port in use");
    cr_assert_str_eq(ts->acked_version, good_v, "the last good version stays ACKed");
    cr_assert_eq(dcollect(&f, &vb), 0, "the rejected versions are not sent again");
    cr_assert_eq(dcollect(&f, &vb), 0);
    cr_assert_eq(dcollect(&f, &vg), 1, "the next different version is");
    cr_assert_eq(f.sends[0].n, 1);
    cr_assert_str_eq(f.sends[0].items[0]->version, V3c[1]);
    dack(&f, 0);
    cr_assert_str_eq(ts->nack_version, bad_v, "the NACK stays on record");
    dfx_fini(&f);
}

Test(sds_delta_state, stale_nonce_applies_subscription_but_is_no_ack)
{
    dfx f;
    dfx_init(&f);
    static const char *const A[] = {"a"};
    static const char *const B[] = {"b"};
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_EDS] = &d.set}};
    dsend(&f, ADS_T_EDS, (dreq){.sub = A, .n_sub = 1});
    cr_assert_eq(dcollect(&f, &v), 1);
    ads_req_result r = dsend(&f, ADS_T_EDS, (dreq){.sub = B, .n_sub = 1, .nonce = "n0"});
    cr_assert_eq(r.kind, ADS_REQ_STALE);
    cr_assert(r.subscription_changed, "the spec: honour subscription changes of stale requests");
    cr_assert_eq(dcollect(&f, &v), 0, "still awaiting the answer to n1");
    r = dsend(&f, ADS_T_EDS, (dreq){.nonce = "n1", .error = "late NACK of another"});
    cr_assert_eq(r.kind, ADS_REQ_NACK);
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 1);
    cr_assert_str_eq(f.sends[0].items[0]->name, "b");
    /* A second answer to an already answered nonce is stale. */
    dack(&f, 0);
    r = dsend(&f, ADS_T_EDS, (dreq){.nonce = "n2"});
    cr_assert_eq(r.kind, ADS_REQ_STALE);
    dfx_fini(&f);
}

Test(sds_delta_state, ack_before_any_response_is_stale)
{
    dfx f;
    dfx_init(&f);
    ads_req_result r = dsend(&f, ADS_T_CDS, (dreq){.nonce = "n1"});
    cr_assert_eq(r.kind, ADS_REQ_STALE);
    cr_assert(f.st.types[ADS_T_CDS].seen);
    dfx_fini(&f);
}

Test(sds_delta_state, changes_while_awaiting_are_coalesced)
{
    dfx f;
    dfx_init(&f);
    static const char *const V3b[] = {"1111111111111119", "2222222222222222",
                                      "3333333333333333"};
    static const char *const L2[] = {"a", "b"};
    static const char *const V2[] = {"1111111111111111", "2222222222222228"};
    dset d, mid, last;
    dset_make(&d, L3, V3, 3);
    dset_make(&mid, L3, V3b, 3);
    dset_make(&last, L2, V2, 2);
    ads_view v = {.sets = {[ADS_T_CDS] = &d.set}};
    ads_view vm = {.sets = {[ADS_T_CDS] = &mid.set}};
    ads_view vl = {.sets = {[ADS_T_CDS] = &last.set}};
    dsend(&f, ADS_T_CDS, (dreq){0});
    dcollect(&f, &v);
    char nonce[ADS_NONCE_MAX];
    snprintf(nonce, sizeof nonce, "%s", f.sends[0].nonce);
    cr_assert_eq(dcollect(&f, &vm), 0);
    cr_assert_eq(dcollect(&f, &vl), 0);
    dsend(&f, ADS_T_CDS, (dreq){.nonce = nonce});
    cr_assert_eq(dcollect(&f, &vl), 1);
    /* a went 1..1 -> 1..9 -> 1..1: back to what the client has, not sent. */
    cr_assert_eq(f.sends[0].n, 1);
    cr_assert_str_eq(f.sends[0].items[0]->name, "b");
    cr_assert_eq(f.sends[0].n_removed, 1);
    cr_assert_str_eq(f.sends[0].removed[0], "c");
    dfx_fini(&f);
}

Test(sds_delta_state, sds_names_are_authorised)
{
    dfx f;
    dfx_init(&f);
    static const char *const MIXED[] = {"default", OTHER};
    mesh_err err = {0};
    ads_delta_request q = {.type_url = XDS_TYPE_URL_SECRET, .subscribe = MIXED, .n_subscribe = 2};
    ads_req_result res;
    cr_assert_eq(ads_delta_on_request(&f.st, &q, &res, &err), MESH_OK);
    cr_assert_eq(res.kind, ADS_REQ_DENIED);
    cr_assert_str_eq(res.denied_name, OTHER);
    cr_assert(strstr(err.msg, OTHER) && strstr(err.msg, ME), "names both: %s", err.msg);
    cr_assert_not(f.st.types[ADS_T_SDS].seen, "a refused request changes nothing");
    cr_assert_eq(f.st.types[ADS_T_SDS].n_names, 0);
    static const char *const STAR[] = {"*"};
    static const char *const ALL[] = {"ALL"};
    cr_assert_eq(dsend(&f, ADS_T_SDS, (dreq){.sub = STAR, .n_sub = 1}).kind, ADS_REQ_DENIED);
    cr_assert_eq(dsend(&f, ADS_T_SDS, (dreq){.sub = ALL, .n_sub = 1}).kind, ADS_REQ_DENIED);
    static const char *const OWN[] = {"default", "ROOTCA", ME, "spiffe://example.org"};
    ads_req_result r = dsend(&f, ADS_T_SDS, (dreq){.sub = OWN, .n_sub = 4});
    cr_assert_eq(r.kind, ADS_REQ_SUBSCRIBE);
    cr_assert_eq(f.st.types[ADS_T_SDS].n_names, 4);
    cr_assert_not(f.st.types[ADS_T_SDS].wildcard, "SDS has no legacy wildcard");
    /* Unsubscribing a foreign name reveals nothing and is harmless. */
    static const char *const FOREIGN[] = {OTHER};
    cr_assert_neq(dsend(&f, ADS_T_SDS, (dreq){.unsub = FOREIGN, .n_unsub = 1}).kind,
                  ADS_REQ_DENIED);
    dfx_fini(&f);
}

Test(sds_delta_state, initial_versions_of_foreign_secrets_are_ignored)
{
    dfx f;
    dfx_init(&f);
    static const char *const SUB[] = {"default"};
    static const char *const IN[] = {OTHER};
    static const char *const IV[] = {"1111111111111111"};
    ads_req_result r = dsend(&f, ADS_T_SDS, (dreq){.sub = SUB, .n_sub = 1, .init_names = IN,
                                                   .init_versions = IV, .n_init = 1});
    cr_assert_eq(r.kind, ADS_REQ_SUBSCRIBE);
    cr_assert_null(ads_delta_known_version(&f.st, ADS_T_SDS, OTHER));
    dfx_fini(&f);
}

Test(sds_delta_state, push_order_and_views_not_ready)
{
    dfx f;
    dfx_init(&f);
    static const char *const SEC[] = {"ROOTCA", "default"};
    static const char *const SECV[] = {"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"};
    static const char *const A[] = {"a"};
    dset d, sec;
    dset_make(&d, L3, V3, 3);
    dset_make(&sec, SEC, SECV, 2);
    dsend(&f, ADS_T_RDS, (dreq){.sub = A, .n_sub = 1});
    dsend(&f, ADS_T_LDS, (dreq){0});
    dsend(&f, ADS_T_EDS, (dreq){.sub = A, .n_sub = 1});
    dsend(&f, ADS_T_CDS, (dreq){0});
    dsend(&f, ADS_T_SDS, (dreq){.sub = SEC, .n_sub = 2});
    ads_view none = {0};
    cr_assert_eq(dcollect(&f, &none), 0, "nothing before the view is known");
    ads_view v = {.sets = {[ADS_T_SDS] = &sec.set, [ADS_T_CDS] = &d.set, [ADS_T_EDS] = &d.set,
                           [ADS_T_LDS] = &d.set, [ADS_T_RDS] = &d.set}};
    cr_assert_eq(dcollect(&f, &v), 5);
    enum ads_type order[] = {ADS_T_SDS, ADS_T_CDS, ADS_T_EDS, ADS_T_LDS, ADS_T_RDS};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(f.sends[i].type, order[i]);
    cr_assert_eq(f.sends[0].n, 2);
    cr_assert_eq(f.sends[2].n, 1);
    dfx_fini(&f);
}

Test(sds_delta_state, type_never_requested_is_not_pushed)
{
    dfx f;
    dfx_init(&f);
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_LDS] = &d.set, [ADS_T_CDS] = &d.set}};
    dsend(&f, ADS_T_CDS, (dreq){0});
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].type, ADS_T_CDS);
    dfx_fini(&f);
}

Test(sds_delta_state, empty_first_rds_request_is_answered_empty)
{
    dfx f;
    dfx_init(&f);
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_RDS] = &d.set}};
    dsend(&f, ADS_T_RDS, (dreq){0});
    cr_assert_not(f.st.types[ADS_T_RDS].wildcard, "RDS is by name");
    cr_assert_eq(dcollect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 0);
    cr_assert_eq(f.sends[0].n_removed, 0);
    dfx_fini(&f);
}

Test(sds_delta_state, unknown_type_and_short_names_are_ignored)
{
    dfx f;
    dfx_init(&f);
    mesh_err err = {0};
    ads_req_result res;
    const char *urls[] = {XDS_TYPE_URL_PREFIX "envoy.service.runtime.v3.Runtime", "LDS", "",
                          NULL};
    for (size_t i = 0; i < 4; i++) {
        ads_delta_request q = {.type_url = urls[i]};
        cr_assert_eq(ads_delta_on_request(&f.st, &q, &res, &err), MESH_OK);
        cr_assert_eq(res.kind, ADS_REQ_UNKNOWN_TYPE, "url %zu", i);
    }
    for (int t = 0; t < ADS_T_COUNT; t++)
        cr_assert_not(f.st.types[t].seen);
    dfx_fini(&f);
}

Test(sds_delta_state, subscription_size_is_bounded)
{
    dfx f;
    dfx_init(&f);
    size_t n = 6000;
    char **names = calloc(n, sizeof *names);
    char **more = calloc(n, sizeof *more);
    cr_assert(names && more);
    for (size_t i = 0; i < n; i++) {
        cr_assert_gt(asprintf(&names[i], "r-%05zu", i), 0);
        cr_assert_gt(asprintf(&more[i], "s-%05zu", i), 0);
    }
    dsend(&f, ADS_T_EDS, (dreq){.sub = (const char *const *)names, .n_sub = n});
    cr_assert_eq(f.st.types[ADS_T_EDS].n_names, n);
    ads_delta_request q = {.type_url = XDS_TYPE_URL_ENDPOINT,
                           .subscribe = (const char *const *)more,
                           .n_subscribe = n};
    ads_req_result res;
    mesh_err err = {0};
    cr_assert_eq(ads_delta_on_request(&f.st, &q, &res, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "limit"), "%s", err.msg);
    cr_assert_eq(f.st.types[ADS_T_EDS].n_names, n, "a refused request changes nothing");
    /* Replacing half of them stays within the limit. */
    q.unsubscribe = (const char *const *)names;
    q.n_unsubscribe = n;
    cr_assert_eq(ads_delta_on_request(&f.st, &q, &res, &err), MESH_OK);
    cr_assert_eq(f.st.types[ADS_T_EDS].n_names, n);
    cr_assert_str_eq(f.st.types[ADS_T_EDS].names[0], "s-00000");
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
        free(more[i]);
    }
    free(names);
    free(more);
    dfx_fini(&f);
}

Test(sds_delta_state, name_in_both_lists_ends_subscribed)
{
    dfx f;
    dfx_init(&f);
    static const char *const A[] = {"a", "a"};
    ads_req_result r = dsend(&f, ADS_T_EDS, (dreq){.sub = A, .n_sub = 2, .unsub = A,
                                                   .n_unsub = 1});
    cr_assert_eq(r.kind, ADS_REQ_SUBSCRIBE);
    cr_assert_eq(f.st.types[ADS_T_EDS].n_names, 1);
    cr_assert_str_eq(f.st.types[ADS_T_EDS].names[0], "a");
    dfx_fini(&f);
}

/* A client that applies responses the way Envoy does and reconnects with what
 * it holds: through the codec, the reconnect resends nothing. */
Test(sds_delta_state, codec_roundtrip_reconnect_resends_nothing)
{
    dfx f;
    dfx_init(&f);
    dset d;
    dset_make(&d, L3, V3, 3);
    ads_view v = {.sets = {[ADS_T_LDS] = &d.set}};
    dsend(&f, ADS_T_LDS, (dreq){0});
    cr_assert_eq(dcollect(&f, &v), 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = {0};
    cr_assert_eq(ads_delta_response_encode(XDS_TYPE_URL_LISTENER, f.sends[0].version,
                                           f.sends[0].nonce, f.sends[0].items, f.sends[0].n,
                                           (const char *const *)f.sends[0].removed,
                                           f.sends[0].n_removed, "meshd/t", &buf, &len, &err),
                 MESH_OK);
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *m =
        envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, buf);
    cr_assert_not_null(m);
    const char *names[3], *versions[3];
    for (size_t i = 0; i < m->n_resources; i++) {
        names[i] = m->resources[i]->name;
        versions[i] = m->resources[i]->version;
    }
    dfx g;
    dfx_init(&g);
    dsend(&g, ADS_T_LDS, (dreq){.init_names = names, .init_versions = versions,
                                .n_init = m->n_resources});
    cr_assert_eq(dcollect(&g, &v), 1);
    cr_assert_eq(g.sends[0].n, 0);
    cr_assert_eq(g.sends[0].n_removed, 0);
    cr_assert_str_eq(g.sends[0].version, f.sends[0].version, "versions are content hashes");
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(m, NULL);
    free(buf);
    dfx_fini(&g);
    dfx_fini(&f);
}

/* ---- codec ---------------------------------------------------------------------- */

Test(sds_delta_codec, request_roundtrip)
{
    static const char *const SUB[] = {"outbound|http", "*"};
    static const char *const UNSUB[] = {"old"};
    static const char *const IN[] = {"a", "b"};
    static const char *const IV[] = {"1111111111111111", "2222222222222222"};
    ads_delta_request_args a = {.type_url = XDS_TYPE_URL_ROUTE, .subscribe = SUB, .n_subscribe = 2,
                                .unsubscribe = UNSUB, .n_unsubscribe = 1, .init_names = IN,
                                .init_versions = IV, .n_init = 2, .nonce = "n7",
                                .node_id = "web-1", .error_message = "bad route"};
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = {0};
    cr_assert_eq(ads_delta_request_encode(&a, &buf, &len, &err), MESH_OK);
    ads_delta_decoded d;
    cr_assert_eq(ads_delta_request_decode(buf, len, &d, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(d.req.type_url, XDS_TYPE_URL_ROUTE);
    cr_assert_eq(d.req.n_subscribe, 2);
    cr_assert_str_eq(d.req.subscribe[1], "*");
    cr_assert_eq(d.req.n_unsubscribe, 1);
    cr_assert_str_eq(d.req.unsubscribe[0], "old");
    cr_assert_eq(d.req.n_initial, 2);
    int seen_b = 0;
    for (size_t i = 0; i < 2; i++)
        if (strcmp(d.req.initial_names[i], "b") == 0)
            seen_b = strcmp(d.req.initial_versions[i], IV[1]) == 0;
    cr_assert(seen_b);
    cr_assert_str_eq(d.req.response_nonce, "n7");
    cr_assert(d.req.has_error);
    cr_assert_str_eq(d.req.error_message, "bad route");
    cr_assert(d.has_node);
    cr_assert_str_eq(d.node_id, "web-1");
    cr_assert_str_eq(d.user_agent, "mesh-xdsclient");
    ads_delta_decoded_free(&d);
    free(buf);
}

Test(sds_delta_codec, empty_request_decodes)
{
    ads_delta_decoded d;
    mesh_err err = {0};
    cr_assert_eq(ads_delta_request_decode((const uint8_t *)"", 0, &d, &err), MESH_OK);
    cr_assert_str_eq(d.req.type_url, "");
    cr_assert_eq(d.req.n_subscribe + d.req.n_unsubscribe + d.req.n_initial, 0);
    cr_assert_not(d.has_node);
    cr_assert_not(d.req.has_error);
    ads_delta_decoded_free(&d);
}

Test(sds_delta_codec, garbage_is_refused)
{
    uint8_t junk[64];
    memset(junk, 0xff, sizeof junk);
    ads_delta_decoded d;
    mesh_err err = {0};
    cr_assert_eq(ads_delta_request_decode(junk, sizeof junk, &d, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "not valid protobuf"), "%s", err.msg);
    cr_assert_null(d.msg);
}

static int encode_decode(const ads_delta_request_args *a, ads_delta_decoded *d, mesh_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(ads_delta_request_encode(a, &buf, &len, err), MESH_OK);
    int rc = ads_delta_request_decode(buf, len, d, err);
    free(buf);
    return rc;
}

Test(sds_delta_codec, abusive_requests_are_refused)
{
    size_t n = ADS_MAX_NAMES / 2 + 1;
    const char **names = calloc(n, sizeof *names);
    cr_assert_not_null(names);
    for (size_t i = 0; i < n; i++)
        names[i] = "x";
    ads_delta_decoded d;
    mesh_err err = {0};
    /* Subscribe and unsubscribe count together. */
    ads_delta_request_args a = {.type_url = XDS_TYPE_URL_ENDPOINT, .subscribe = names,
                                .n_subscribe = n, .unsubscribe = names, .n_unsubscribe = n};
    cr_assert_eq(encode_decode(&a, &d, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "limit"), "%s", err.msg);
    cr_assert_null(d.msg);
    free(names);

    char *long_name = malloc(ADS_MAX_NAME_LEN + 2);
    cr_assert_not_null(long_name);
    memset(long_name, 'n', ADS_MAX_NAME_LEN + 1);
    long_name[ADS_MAX_NAME_LEN + 1] = '\0';
    const char *one[] = {long_name};
    const char *ok[] = {"ok"};
    ads_delta_request_args b = {.type_url = XDS_TYPE_URL_ENDPOINT, .unsubscribe = one,
                                .n_unsubscribe = 1};
    cr_assert_eq(encode_decode(&b, &d, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "resource_names_unsubscribe[0]"), "%s", err.msg);
    ads_delta_request_args c = {.type_url = XDS_TYPE_URL_ENDPOINT, .init_names = ok,
                                .init_versions = one, .n_init = 1};
    cr_assert_eq(encode_decode(&c, &d, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "initial_resource_versions[0]"), "%s", err.msg);
    free(long_name);

    size_t m = ADS_MAX_NAMES + 1;
    const char **keys = calloc(m, sizeof *keys);
    cr_assert_not_null(keys);
    for (size_t i = 0; i < m; i++)
        keys[i] = "k";
    ads_delta_request_args e = {.type_url = XDS_TYPE_URL_CLUSTER, .init_names = keys,
                                .init_versions = keys, .n_init = m};
    cr_assert_eq(encode_decode(&e, &d, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "initial_resource_versions"), "%s", err.msg);
    free(keys);
}

Test(sds_delta_codec, response_wraps_resources_with_name_and_version)
{
    static const char *const L[] = {"a", "b"};
    static const char *const V[] = {"1111111111111111", "2222222222222222"};
    dset d;
    dset_make(&d, L, V, 2);
    const xds_resource *items[2] = {&d.items[0], &d.items[1]};
    const char *removed[] = {"gone"};
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = {0};
    cr_assert_eq(ads_delta_response_encode(XDS_TYPE_URL_CLUSTER, "abcdef0123456789", "n1", items, 2,
                                           removed, 1, "meshd/x", &buf, &len, &err),
                 MESH_OK);
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *m =
        envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, buf);
    cr_assert_not_null(m);
    cr_assert_str_eq(m->system_version_info, "abcdef0123456789");
    cr_assert_str_eq(m->type_url, XDS_TYPE_URL_CLUSTER);
    cr_assert_str_eq(m->nonce, "n1");
    cr_assert_eq(m->n_resources, 2);
    cr_assert_str_eq(m->resources[1]->name, "b");
    cr_assert_str_eq(m->resources[1]->version, V[1]);
    cr_assert_str_eq(m->resources[1]->resource->type_url, XDS_TYPE_URL_CLUSTER);
    cr_assert_eq(m->resources[1]->resource->value.len, strlen(V[1]));
    cr_assert_eq(memcmp(m->resources[1]->resource->value.data, V[1], strlen(V[1])), 0);
    cr_assert_eq(m->n_removed_resources, 1);
    cr_assert_str_eq(m->removed_resources[0], "gone");
    cr_assert_str_eq(m->control_plane->identifier, "meshd/x");
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(m, NULL);
    free(buf);

    /* An empty answer is a valid message too. */
    cr_assert_eq(ads_delta_response_encode(XDS_TYPE_URL_CLUSTER, "v", "n2", NULL, 0, NULL, 0, NULL,
                                           &buf, &len, &err),
                 MESH_OK);
    m = envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, buf);
    cr_assert_not_null(m);
    cr_assert_eq(m->n_resources + m->n_removed_resources, 0);
    cr_assert_null(m->control_plane);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(m, NULL);
    free(buf);
}
