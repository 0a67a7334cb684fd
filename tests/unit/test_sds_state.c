/* tests/unit/test_sds_state.c — the SotW state machine (sds/protocol/ads_state.c) and SDS name
 * authorisation (sds/protocol/sds_names.c) as pure logic: no gRPC, no store. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sds/protocol/ads_state.h"
#include "sds/protocol/sds_names.h"

#define TD   "example.org"
#define ME   "spiffe://example.org/ns/default/sa/web"
#define OTHER "spiffe://example.org/ns/default/sa/db"

/* A hand-built type set: items sorted by name, version = given string. */
typedef struct test_set {
    xds_resource items[8];
    xds_type_set set;
} test_set;

static void set_make(test_set *ts, const char *const *names, const char *const *versions, size_t n)
{
    memset(ts, 0, sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        ts->items[i].name = (char *)names[i];
        ts->items[i].data = (uint8_t *)versions[i];
        ts->items[i].len = strlen(versions[i]);
        snprintf(ts->items[i].version, sizeof ts->items[i].version, "%s", versions[i]);
    }
    ts->set.items = ts->items;
    ts->set.n = n;
}

static void test_nonce(void *ctx, char *buf, size_t len)
{
    unsigned *counter = ctx;
    snprintf(buf, len, "n%u", ++*counter);
}

typedef struct fixture {
    ads_state st;
    unsigned counter;
    ads_send sends[ADS_T_COUNT];
    size_t n;
} fixture;

static void fx_init(fixture *f)
{
    memset(f, 0, sizeof *f);
    ads_state_init(&f->st, ME, TD);
}

static void fx_fini(fixture *f)
{
    ads_send_free(f->sends, f->n);
    ads_state_free(&f->st);
}

static ads_req_result req(fixture *f, enum ads_type t, const char *version, const char *nonce,
                          const char *const *names, size_t n, const char *error)
{
    ads_request r = {
        .type_url = ads_type_url(t),
        .version_info = version,
        .response_nonce = nonce,
        .names = names,
        .n_names = n,
        .has_error = error != NULL,
        .error_message = error,
    };
    ads_req_result res;
    mesh_err err = {0};
    cr_assert_eq(ads_state_on_request(&f->st, &r, &res, &err), MESH_OK);
    return res;
}

static size_t collect(fixture *f, const ads_view *v)
{
    ads_send_free(f->sends, f->n);
    mesh_err err = {0};
    cr_assert_eq(ads_state_collect(&f->st, v, test_nonce, &f->counter, f->sends, &f->n, &err),
                 MESH_OK);
    return f->n;
}

static const char *const L2[] = {"inbound|8080", "outbound|http"};
static const char *const V_A[] = {"aaaa", "bbbb"};
static const char *const V_B[] = {"aaaa", "cccc"};

Test(sds_state, wildcard_lds_first_request_sends_everything)
{
    fixture f;
    fx_init(&f);
    test_set s;
    set_make(&s, L2, V_A, 2);
    ads_view v = {.sets = {[ADS_T_LDS] = &s.set}};
    ads_req_result r = req(&f, ADS_T_LDS, "", "", NULL, 0, NULL);
    cr_assert_eq(r.kind, ADS_REQ_SUBSCRIBE);
    cr_assert(r.subscription_changed);
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert_eq(f.sends[0].type, ADS_T_LDS);
    cr_assert_eq(f.sends[0].n, 2);
    cr_assert_str_eq(f.sends[0].items[0]->name, "inbound|8080");
    cr_assert_str_eq(f.sends[0].nonce, "n1");
    cr_assert_eq(strlen(f.sends[0].version), 16);
    /* Awaiting the ACK: nothing more, even when asked again. */
    cr_assert_eq(collect(&f, &v), 0);
    fx_fini(&f);
}

Test(sds_state, ack_recorded_and_same_version_not_resent)
{
    fixture f;
    fx_init(&f);
    test_set s;
    set_make(&s, L2, V_A, 2);
    ads_view v = {.sets = {[ADS_T_CDS] = &s.set}};
    req(&f, ADS_T_CDS, "", "", NULL, 0, NULL);
    cr_assert_eq(collect(&f, &v), 1);
    char ver[ADS_VERSION_MAX];
    snprintf(ver, sizeof ver, "%s", f.sends[0].version);
    ads_req_result r = req(&f, ADS_T_CDS, ver, "n1", NULL, 0, NULL);
    cr_assert_eq(r.kind, ADS_REQ_ACK);
    cr_assert_not(r.subscription_changed);
    cr_assert_str_eq(f.st.types[ADS_T_CDS].acked_version, ver);
    cr_assert_eq(collect(&f, &v), 0, "an ACKed, unchanged version must not be pushed again");
    fx_fini(&f);
}

Test(sds_state, push_only_when_version_changed)
{
    fixture f;
    fx_init(&f);
    test_set a, b;
    set_make(&a, L2, V_A, 2);
    set_make(&b, L2, V_B, 2);
    ads_view va = {.sets = {[ADS_T_LDS] = &a.set}};
    ads_view vb = {.sets = {[ADS_T_LDS] = &b.set}};
    req(&f, ADS_T_LDS, "", "", NULL, 0, NULL);
    cr_assert_eq(collect(&f, &va), 1);
    char v1[ADS_VERSION_MAX];
    snprintf(v1, sizeof v1, "%s", f.sends[0].version);
    req(&f, ADS_T_LDS, v1, "n1", NULL, 0, NULL);
    /* Recompiled but identical snapshot: nothing. */
    test_set a2;
    set_make(&a2, L2, V_A, 2);
    ads_view va2 = {.sets = {[ADS_T_LDS] = &a2.set}};
    cr_assert_eq(collect(&f, &va2), 0);
    /* Changed: pushed with a new version and a fresh nonce. */
    cr_assert_eq(collect(&f, &vb), 1);
    cr_assert_str_neq(f.sends[0].version, v1);
    cr_assert_str_eq(f.sends[0].nonce, "n2");
    fx_fini(&f);
}

Test(sds_state, change_while_awaiting_ack_is_coalesced)
{
    fixture f;
    fx_init(&f);
    static const char *const V_C[] = {"aaaa", "dddd"};
    test_set a, b, c;
    set_make(&a, L2, V_A, 2);
    set_make(&b, L2, V_B, 2);
    set_make(&c, L2, V_C, 2);
    ads_view va = {.sets = {[ADS_T_LDS] = &a.set}};
    ads_view vb = {.sets = {[ADS_T_LDS] = &b.set}};
    ads_view vc = {.sets = {[ADS_T_LDS] = &c.set}};
    req(&f, ADS_T_LDS, "", "", NULL, 0, NULL);
    cr_assert_eq(collect(&f, &va), 1);
    char v1[ADS_VERSION_MAX];
    snprintf(v1, sizeof v1, "%s", f.sends[0].version);
    cr_assert_eq(collect(&f, &vb), 0, "B must wait for the ACK of A");
    cr_assert_eq(collect(&f, &vc), 0);
    req(&f, ADS_T_LDS, v1, "n1", NULL, 0, NULL);
    cr_assert_eq(collect(&f, &vc), 1);
    cr_assert_str_eq(f.sends[0].items[1]->version, "dddd", "only the newest is sent");
    fx_fini(&f);
}

Test(sds_state, nack_keeps_last_good_and_does_not_resend)
{
    fixture f;
    fx_init(&f);
    test_set a, b;
    set_make(&a, L2, V_A, 2);
    set_make(&b, L2, V_B, 2);
    ads_view va = {.sets = {[ADS_T_LDS] = &a.set}};
    ads_view vb = {.sets = {[ADS_T_LDS] = &b.set}};
    req(&f, ADS_T_LDS, "", "", NULL, 0, NULL);
    collect(&f, &va);
    char good[ADS_VERSION_MAX];
    snprintf(good, sizeof good, "%s", f.sends[0].version);
    req(&f, ADS_T_LDS, good, "n1", NULL, 0, NULL);
    cr_assert_eq(collect(&f, &vb), 1);
    char bad[ADS_VERSION_MAX];
    snprintf(bad, sizeof bad, "%s", f.sends[0].version);
    /* Envoy NACKs with the last good version and the rejected nonce. */
    ads_req_result r = req(&f, ADS_T_LDS, good, "n2", NULL, 0, "listener port in use");
    cr_assert_eq(r.kind, ADS_REQ_NACK);
    ads_type_state *ts = &f.st.types[ADS_T_LDS];
    cr_assert_str_eq(ts->nack_version, bad);
    cr_assert_str_eq(ts->nack_error, "listener port in use");
    cr_assert_str_eq(ts->acked_version, good, "last good stays the ACKed one");
    cr_assert_eq(collect(&f, &vb), 0, "the rejected version must not be sent again");
    cr_assert_eq(collect(&f, &vb), 0);
    /* The operator reverts: content equal to the old good one is a new push. */
    cr_assert_eq(collect(&f, &va), 1);
    cr_assert_str_eq(f.sends[0].version, good);
    fx_fini(&f);
}

Test(sds_state, newer_version_after_nack_applies)
{
    fixture f;
    fx_init(&f);
    static const char *const V_C[] = {"aaaa", "eeee"};
    test_set a, b, c;
    set_make(&a, L2, V_A, 2);
    set_make(&b, L2, V_B, 2);
    set_make(&c, L2, V_C, 2);
    ads_view va = {.sets = {[ADS_T_CDS] = &a.set}};
    ads_view vb = {.sets = {[ADS_T_CDS] = &b.set}};
    ads_view vc = {.sets = {[ADS_T_CDS] = &c.set}};
    req(&f, ADS_T_CDS, "", "", NULL, 0, NULL);
    collect(&f, &va);
    req(&f, ADS_T_CDS, "", "n1", NULL, 0, "bad");
    cr_assert_eq(collect(&f, &va), 0);
    cr_assert_eq(collect(&f, &vb), 1);
    char vbv[ADS_VERSION_MAX];
    snprintf(vbv, sizeof vbv, "%s", f.sends[0].version);
    req(&f, ADS_T_CDS, "", "n2", NULL, 0, "bad again");
    cr_assert_eq(collect(&f, &vc), 1, "one failed update never wedges later ones");
    req(&f, ADS_T_CDS, f.sends[0].version, "n3", NULL, 0, NULL);
    cr_assert_str_eq(f.st.types[ADS_T_CDS].acked_version, f.sends[0].version);
    cr_assert_str_eq(f.st.types[ADS_T_CDS].nack_version, vbv);
    fx_fini(&f);
}

Test(sds_state, stale_nonce_ignored)
{
    fixture f;
    fx_init(&f);
    static const char *const R1[] = {"outbound|http"};
    static const char *const R2[] = {"other"};
    test_set a, b;
    set_make(&a, L2, V_A, 2);
    set_make(&b, L2, V_B, 2);
    ads_view va = {.sets = {[ADS_T_RDS] = &a.set}};
    ads_view vb = {.sets = {[ADS_T_RDS] = &b.set}};
    req(&f, ADS_T_RDS, "", "", R1, 1, NULL);
    collect(&f, &va);
    char v1[ADS_VERSION_MAX];
    snprintf(v1, sizeof v1, "%s", f.sends[0].version);
    req(&f, ADS_T_RDS, v1, "n1", R1, 1, NULL);
    collect(&f, &vb);                          /* n2 in flight */
    ads_req_result r = req(&f, ADS_T_RDS, v1, "n1", R2, 1, NULL);  /* late, old nonce */
    cr_assert_eq(r.kind, ADS_REQ_STALE);
    ads_type_state *ts = &f.st.types[ADS_T_RDS];
    cr_assert_eq(ts->n_names, 1);
    cr_assert_str_eq(ts->names[0], "outbound|http", "a stale request must not change names");
    cr_assert(ts->awaiting, "a stale request is not an ACK");
    r = req(&f, ADS_T_RDS, "x", "never-sent", R1, 1, NULL);
    cr_assert_eq(r.kind, ADS_REQ_STALE);
    fx_fini(&f);
}

Test(sds_state, ack_before_any_send_is_stale)
{
    fixture f;
    fx_init(&f);
    ads_req_result r = req(&f, ADS_T_LDS, "v", "n1", NULL, 0, NULL);
    cr_assert_eq(r.kind, ADS_REQ_STALE);
    cr_assert_not(f.st.types[ADS_T_LDS].subscribed);
    fx_fini(&f);
}

Test(sds_state, by_name_subscription_and_change)
{
    fixture f;
    fx_init(&f);
    static const char *const EN[] = {"outbound|api", "outbound|db", "outbound|web"};
    static const char *const EV[] = {"1111", "2222", "3333"};
    test_set s;
    set_make(&s, EN, EV, 3);
    ads_view v = {.sets = {[ADS_T_EDS] = &s.set}};
    static const char *const want1[] = {"outbound|web", "outbound|api", "outbound|web"};
    ads_req_result r = req(&f, ADS_T_EDS, "", "", want1, 3, NULL);
    cr_assert_eq(r.kind, ADS_REQ_SUBSCRIBE);
    cr_assert_eq(f.st.types[ADS_T_EDS].n_names, 2, "names are de-duplicated");
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 2);
    cr_assert_str_eq(f.sends[0].items[0]->name, "outbound|api");
    cr_assert_str_eq(f.sends[0].items[1]->name, "outbound|web");
    char v1[ADS_VERSION_MAX];
    snprintf(v1, sizeof v1, "%s", f.sends[0].version);
    /* ACK that also adds a name: answered with the larger subset. */
    static const char *const want2[] = {"outbound|api", "outbound|db", "outbound|web"};
    r = req(&f, ADS_T_EDS, v1, "n1", want2, 3, NULL);
    cr_assert_eq(r.kind, ADS_REQ_ACK);
    cr_assert(r.subscription_changed);
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 3);
    char v2[ADS_VERSION_MAX];
    snprintf(v2, sizeof v2, "%s", f.sends[0].version);
    /* Adding a name that does not exist changes nothing the client would get. */
    static const char *const want3[] = {"outbound|api", "outbound|db", "outbound|web", "nope"};
    req(&f, ADS_T_EDS, v2, "n2", want3, 4, NULL);
    cr_assert_eq(collect(&f, &v), 0);
    fx_fini(&f);
}

Test(sds_state, named_type_empty_list_unsubscribes_and_resubscribe_resends)
{
    fixture f;
    fx_init(&f);
    static const char *const R1[] = {"outbound|http"};
    static const char *const RN[] = {"outbound|http"};
    static const char *const RV[] = {"9999"};
    test_set s;
    set_make(&s, RN, RV, 1);
    ads_view v = {.sets = {[ADS_T_RDS] = &s.set}};
    req(&f, ADS_T_RDS, "", "", R1, 1, NULL);
    collect(&f, &v);
    char v1[ADS_VERSION_MAX];
    snprintf(v1, sizeof v1, "%s", f.sends[0].version);
    req(&f, ADS_T_RDS, v1, "n1", R1, 1, NULL);
    ads_req_result r = req(&f, ADS_T_RDS, v1, "", NULL, 0, NULL);
    cr_assert(r.subscription_changed);
    cr_assert_not(f.st.types[ADS_T_RDS].subscribed);
    cr_assert_eq(collect(&f, &v), 0, "unsubscribed: nothing is pushed");
    r = req(&f, ADS_T_RDS, v1, "", R1, 1, NULL);
    cr_assert_eq(r.kind, ADS_REQ_SUBSCRIBE);
    cr_assert_eq(collect(&f, &v), 1, "re-subscription is answered even at the same version");
    cr_assert_str_eq(f.sends[0].version, v1);
    fx_fini(&f);
}

Test(sds_state, first_named_request_with_nothing_known_gets_empty_response)
{
    fixture f;
    fx_init(&f);
    static const char *const R1[] = {"missing"};
    test_set s;
    set_make(&s, L2, V_A, 2);
    ads_view v = {.sets = {[ADS_T_RDS] = &s.set}};
    req(&f, ADS_T_RDS, "", "", R1, 1, NULL);
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 0);
    fx_fini(&f);
}

Test(sds_state, cds_and_lds_empty_or_star_are_wildcard)
{
    fixture f;
    fx_init(&f);
    static const char *const STAR[] = {"*"};
    req(&f, ADS_T_CDS, "", "", NULL, 0, NULL);
    cr_assert(f.st.types[ADS_T_CDS].wildcard);
    req(&f, ADS_T_LDS, "", "", STAR, 1, NULL);
    cr_assert(f.st.types[ADS_T_LDS].wildcard);
    static const char *const ONE[] = {"inbound|8080"};
    ads_req_result r = req(&f, ADS_T_LDS, "", "", ONE, 1, NULL);
    cr_assert(r.subscription_changed);
    cr_assert_not(f.st.types[ADS_T_LDS].wildcard);
    test_set s;
    set_make(&s, L2, V_A, 2);
    ads_view v = {.sets = {[ADS_T_LDS] = &s.set}};
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert_eq(f.sends[0].n, 1, "explicit names on LDS select by name");
    /* An empty RDS list is not wildcard. */
    req(&f, ADS_T_RDS, "", "", NULL, 0, NULL);
    cr_assert_not(f.st.types[ADS_T_RDS].wildcard);
    cr_assert_not(f.st.types[ADS_T_RDS].subscribed);
    fx_fini(&f);
}

Test(sds_state, push_order_sds_cds_eds_lds_rds)
{
    fixture f;
    fx_init(&f);
    test_set s;
    set_make(&s, L2, V_A, 2);
    static const char *const SN[] = {"ROOTCA", "default"};
    test_set sec;
    set_make(&sec, SN, V_A, 2);
    ads_view v = {.sets = {[ADS_T_LDS] = &s.set, [ADS_T_RDS] = &s.set, [ADS_T_CDS] = &s.set,
                           [ADS_T_EDS] = &s.set, [ADS_T_SDS] = &sec.set}};
    /* Subscribe in the "wrong" order. */
    req(&f, ADS_T_RDS, "", "", L2, 2, NULL);
    req(&f, ADS_T_LDS, "", "", NULL, 0, NULL);
    req(&f, ADS_T_EDS, "", "", L2, 2, NULL);
    req(&f, ADS_T_CDS, "", "", NULL, 0, NULL);
    req(&f, ADS_T_SDS, "", "", SN, 2, NULL);
    cr_assert_eq(collect(&f, &v), 5);
    cr_assert_eq(f.sends[0].type, ADS_T_SDS);
    cr_assert_eq(f.sends[1].type, ADS_T_CDS);
    cr_assert_eq(f.sends[2].type, ADS_T_EDS);
    cr_assert_eq(f.sends[3].type, ADS_T_LDS);
    cr_assert_eq(f.sends[4].type, ADS_T_RDS);
    for (size_t i = 0; i < 5; i++)
        for (size_t j = i + 1; j < 5; j++)
            cr_assert_str_neq(f.sends[i].nonce, f.sends[j].nonce, "nonces are unique");
    fx_fini(&f);
}

Test(sds_state, type_not_known_yet_waits)
{
    fixture f;
    fx_init(&f);
    req(&f, ADS_T_LDS, "", "", NULL, 0, NULL);
    ads_view none = {{NULL}};
    cr_assert_eq(collect(&f, &none), 0);
    cr_assert_eq(collect(&f, NULL), 0);
    test_set s;
    set_make(&s, L2, V_A, 2);
    ads_view v = {.sets = {[ADS_T_LDS] = &s.set}};
    cr_assert_eq(collect(&f, &v), 1);
    fx_fini(&f);
}

Test(sds_state, nonce_match_with_other_version_clears_wait_without_ack)
{
    fixture f;
    fx_init(&f);
    test_set a;
    set_make(&a, L2, V_A, 2);
    ads_view va = {.sets = {[ADS_T_LDS] = &a.set}};
    req(&f, ADS_T_LDS, "", "", NULL, 0, NULL);
    collect(&f, &va);
    ads_req_result r = req(&f, ADS_T_LDS, "something-else", "n1", NULL, 0, NULL);
    cr_assert_eq(r.kind, ADS_REQ_UPDATE);
    cr_assert_str_eq(f.st.types[ADS_T_LDS].acked_version, "");
    cr_assert_not(f.st.types[ADS_T_LDS].awaiting);
    fx_fini(&f);
}

Test(sds_state, unknown_type_ignored)
{
    fixture f;
    fx_init(&f);
    ads_request r = {.type_url = XDS_TYPE_URL_PREFIX "envoy.config.core.v3.TypedExtensionConfig",
                     .version_info = "", .response_nonce = ""};
    ads_req_result res;
    mesh_err err = {0};
    cr_assert_eq(ads_state_on_request(&f.st, &r, &res, &err), MESH_OK);
    cr_assert_eq(res.kind, ADS_REQ_UNKNOWN_TYPE);
    /* Short names are not accepted on the wire, nor is an empty type. */
    r.type_url = "LDS";
    ads_state_on_request(&f.st, &r, &res, &err);
    cr_assert_eq(res.kind, ADS_REQ_UNKNOWN_TYPE);
    r.type_url = "";
    ads_state_on_request(&f.st, &r, &res, &err);
    cr_assert_eq(res.kind, ADS_REQ_UNKNOWN_TYPE);
    for (int t = 0; t < ADS_T_COUNT; t++)
        cr_assert_not(f.st.types[t].subscribed);
    fx_fini(&f);
}

Test(sds_state, sds_foreign_identity_denied_without_state_change)
{
    fixture f;
    fx_init(&f);
    static const char *const OK[] = {"default", "ROOTCA", ME, "spiffe://" TD};
    ads_req_result r = req(&f, ADS_T_SDS, "", "", OK, 4, NULL);
    cr_assert_eq(r.kind, ADS_REQ_SUBSCRIBE);
    cr_assert_eq(f.st.types[ADS_T_SDS].n_names, 4);
    static const char *const BAD[] = {"default", OTHER};
    ads_request rq = {.type_url = XDS_TYPE_URL_SECRET, .version_info = "", .response_nonce = "",
                      .names = BAD, .n_names = 2};
    mesh_err err = {0};
    cr_assert_eq(ads_state_on_request(&f.st, &rq, &r, &err), MESH_OK);
    cr_assert_eq(r.kind, ADS_REQ_DENIED);
    cr_assert_str_eq(r.denied_name, OTHER);
    cr_assert(strstr(err.msg, OTHER) && strstr(err.msg, ME), "message names both: %s", err.msg);
    cr_assert_eq(f.st.types[ADS_T_SDS].n_names, 4, "a refused request changes nothing");
    fx_fini(&f);
}

Test(sds_state, version_is_content_hash)
{
    static const char *const N1[] = {"a", "b"};
    static const char *const VA[] = {"1", "2"};
    static const char *const VB[] = {"1", "3"};
    static const char *const N2[] = {"ab", "c"};
    static const char *const V2[] = {"", "c"};
    test_set a, a2, b, c;
    set_make(&a, N1, VA, 2);
    set_make(&a2, N1, VA, 2);
    set_make(&b, N1, VB, 2);
    set_make(&c, N2, V2, 2);
    const xds_resource *pa[] = {&a.items[0], &a.items[1]};
    const xds_resource *pa2[] = {&a2.items[0], &a2.items[1]};
    const xds_resource *pb[] = {&b.items[0], &b.items[1]};
    const xds_resource *pc[] = {&c.items[0], &c.items[1]};
    char va[ADS_VERSION_MAX], va2[ADS_VERSION_MAX], vb[ADS_VERSION_MAX], vc[ADS_VERSION_MAX],
        ve[ADS_VERSION_MAX];
    ads_subset_version(pa, 2, va);
    ads_subset_version(pa2, 2, va2);
    ads_subset_version(pb, 2, vb);
    ads_subset_version(pc, 2, vc);
    ads_subset_version(NULL, 0, ve);
    cr_assert_str_eq(va, va2);
    cr_assert_str_neq(va, vb);
    cr_assert_str_neq(va, vc);
    cr_assert_str_neq(va, ve);
    cr_assert_eq(strlen(ve), 16);
}

/* ---- reconnects: the client's version_info (Envoy semantics) ------------------------- */

/* The version collect would send for these items (what a client that ACKed
 * it on an earlier stream echoes on its first request of the next one). */
static void version_of(const test_set *s, size_t from, size_t n, char out[ADS_VERSION_MAX])
{
    const xds_resource *items[8];
    for (size_t i = 0; i < n; i++)
        items[i] = &s->items[from + i];
    ads_subset_version(items, n, out);
}

Test(sds_state, reconnect_with_current_version_is_not_resent)
{
    fixture f;
    fx_init(&f);
    test_set s;
    set_make(&s, L2, V_A, 2);
    char held[ADS_VERSION_MAX];
    version_of(&s, 0, 2, held);
    ads_view v = {.sets = {[ADS_T_LDS] = &s.set}};
    ads_req_result r = req(&f, ADS_T_LDS, held, "", NULL, 0, NULL);
    cr_assert_eq(r.kind, ADS_REQ_SUBSCRIBE);
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert(f.sends[0].resumed, "the client holds this version: nothing to write");
    cr_assert_str_eq(f.sends[0].version, held);
    cr_assert_str_eq(f.sends[0].nonce, "", "no response, so no nonce was spent");
    ads_type_state *ts = &f.st.types[ADS_T_LDS];
    cr_assert_str_eq(ts->acked_version, held, "counts as ACKed (proxy-status)");
    cr_assert_not(ts->awaiting, "no ACK awaited for what was not sent");
    cr_assert_eq(collect(&f, &v), 0, "resumed once, then quiet");
    /* The next change is pushed as usual, and its ACK is an ACK. */
    test_set s2;
    set_make(&s2, L2, V_B, 2);
    v.sets[ADS_T_LDS] = &s2.set;
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert_not(f.sends[0].resumed);
    cr_assert_str_eq(f.sends[0].nonce, "n1");
    char v2[ADS_VERSION_MAX];
    snprintf(v2, sizeof v2, "%s", f.sends[0].version);
    cr_assert_str_neq(v2, held);
    r = req(&f, ADS_T_LDS, v2, "n1", NULL, 0, NULL);
    cr_assert_eq(r.kind, ADS_REQ_ACK);
    cr_assert_str_eq(ts->acked_version, v2);
    fx_fini(&f);
}

Test(sds_state, reconnect_with_other_version_is_answered)
{
    fixture f;
    fx_init(&f);
    test_set s, old;
    set_make(&s, L2, V_A, 2);
    set_make(&old, L2, V_B, 2);
    char held[ADS_VERSION_MAX];
    version_of(&old, 0, 2, held);
    ads_view v = {.sets = {[ADS_T_CDS] = &s.set}};
    req(&f, ADS_T_CDS, held, "", NULL, 0, NULL);
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert_not(f.sends[0].resumed, "the client holds an older version");
    cr_assert_str_eq(f.sends[0].nonce, "n1");
    cr_assert_eq(f.sends[0].n, 2);
    cr_assert_str_eq(f.st.types[ADS_T_CDS].acked_version, "", "not ACKed until it is");
    fx_fini(&f);
}

Test(sds_state, reconnect_version_is_of_the_subset_asked_for_now)
{
    fixture f;
    fx_init(&f);
    static const char *const EN[] = {"outbound|api", "outbound|db"};
    static const char *const EV[] = {"1111", "2222"};
    test_set s;
    set_make(&s, EN, EV, 2);
    char both[ADS_VERSION_MAX], api[ADS_VERSION_MAX];
    version_of(&s, 0, 2, both);
    version_of(&s, 0, 1, api);
    ads_view v = {.sets = {[ADS_T_EDS] = &s.set}};
    /* Held api+db before; now asks for api alone: a different subset. */
    static const char *const want_api[] = {"outbound|api"};
    req(&f, ADS_T_EDS, both, "", want_api, 1, NULL);
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert_not(f.sends[0].resumed, "the names changed: answered");
    cr_assert_eq(f.sends[0].n, 1);
    cr_assert_str_eq(f.sends[0].version, api);
    fx_fini(&f);

    /* Same names as the held version: resumed (by-name types too). */
    fx_init(&f);
    static const char *const want_both[] = {"outbound|db", "outbound|api"};
    req(&f, ADS_T_EDS, both, "", want_both, 2, NULL);
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert(f.sends[0].resumed);
    fx_fini(&f);
}

Test(sds_state, reconnect_waits_for_the_type_then_compares)
{
    fixture f;
    fx_init(&f);
    test_set s;
    set_make(&s, L2, V_A, 2);
    char held[ADS_VERSION_MAX];
    version_of(&s, 0, 2, held);
    req(&f, ADS_T_LDS, held, "", NULL, 0, NULL);
    ads_view none = {0};
    cr_assert_eq(collect(&f, &none), 0, "not compiled yet: nothing decided");
    ads_view v = {.sets = {[ADS_T_LDS] = &s.set}};
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert(f.sends[0].resumed, "the held version is compared once the type is known");
    fx_fini(&f);
}

Test(sds_state, reconnect_old_nonce_is_stale_after_resume)
{
    fixture f;
    fx_init(&f);
    test_set s;
    set_make(&s, L2, V_A, 2);
    char held[ADS_VERSION_MAX];
    version_of(&s, 0, 2, held);
    ads_view v = {.sets = {[ADS_T_CDS] = &s.set}};
    req(&f, ADS_T_CDS, held, "", NULL, 0, NULL);
    collect(&f, &v);
    cr_assert(f.sends[0].resumed);
    /* A nonce from the previous stream names nothing sent on this one. */
    ads_req_result r = req(&f, ADS_T_CDS, held, "n-old-stream", NULL, 0, NULL);
    cr_assert_eq(r.kind, ADS_REQ_STALE);
    r = req(&f, ADS_T_CDS, held, "", NULL, 0, NULL);
    cr_assert_eq(r.kind, ADS_REQ_UPDATE);
    cr_assert_eq(collect(&f, &v), 0, "same version: still nothing to send");
    fx_fini(&f);
}

Test(sds_state, reconnect_version_only_before_the_first_response)
{
    fixture f;
    fx_init(&f);
    test_set s, s2;
    set_make(&s, L2, V_A, 2);
    set_make(&s2, L2, V_B, 2);
    char va[ADS_VERSION_MAX], vb[ADS_VERSION_MAX];
    version_of(&s, 0, 2, va);
    version_of(&s2, 0, 2, vb);
    ads_view v = {.sets = {[ADS_T_CDS] = &s.set}};
    req(&f, ADS_T_CDS, "", "", NULL, 0, NULL);
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert_not(f.sends[0].resumed);
    /* An ACK-less, nonce-less request claiming the next version changes
     * nothing: after the first response only nonces count. */
    req(&f, ADS_T_CDS, "", "n1", NULL, 0, "rejected");
    req(&f, ADS_T_CDS, vb, "", NULL, 0, NULL);
    v.sets[ADS_T_CDS] = &s2.set;
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert_not(f.sends[0].resumed, "claimed versions are not believed mid-stream");
    fx_fini(&f);
}

Test(sds_state, reconnect_version_too_long_or_garbage_is_answered)
{
    fixture f;
    fx_init(&f);
    test_set s;
    set_make(&s, L2, V_A, 2);
    char held[ADS_VERSION_MAX], longer[64];
    version_of(&s, 0, 2, held);
    snprintf(longer, sizeof longer, "%sextra", held);
    ads_view v = {.sets = {[ADS_T_LDS] = &s.set, [ADS_T_CDS] = &s.set}};
    req(&f, ADS_T_LDS, longer, "", NULL, 0, NULL);
    req(&f, ADS_T_CDS, "not-a-version", "", NULL, 0, NULL);
    cr_assert_eq(collect(&f, &v), 2);
    cr_assert_not(f.sends[0].resumed);
    cr_assert_not(f.sends[1].resumed);
    fx_fini(&f);
}

Test(sds_state, reconnect_sds_by_name_resumed)
{
    fixture f;
    fx_init(&f);
    static const char *const SN[] = {"ROOTCA", "default"};
    static const char *const SV[] = {"r001", "d001"};
    test_set s;
    set_make(&s, SN, SV, 2);
    char held[ADS_VERSION_MAX];
    version_of(&s, 0, 2, held);
    ads_view v = {.sets = {[ADS_T_SDS] = &s.set}};
    static const char *const want[] = {"default", "ROOTCA"};
    ads_req_result r = req(&f, ADS_T_SDS, held, "", want, 2, NULL);
    cr_assert_eq(r.kind, ADS_REQ_SUBSCRIBE);
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert(f.sends[0].resumed);
    cr_assert_eq(f.sends[0].n, 2, "items are given so the caller can see the bundle was held");
    fx_fini(&f);
}

Test(sds_state, reconnect_no_resume_answers_every_type)
{
    fixture f;
    fx_init(&f);
    f.st.no_resume = 1;
    test_set s;
    set_make(&s, L2, V_A, 2);
    char held[ADS_VERSION_MAX];
    version_of(&s, 0, 2, held);
    ads_view v = {.sets = {[ADS_T_LDS] = &s.set}};
    req(&f, ADS_T_LDS, held, "", NULL, 0, NULL);
    cr_assert_eq(collect(&f, &v), 1);
    cr_assert_not(f.sends[0].resumed, "a client that needs a response gets one");
    cr_assert_str_eq(f.sends[0].nonce, "n1");
    fx_fini(&f);
}

Test(sds_state, type_parse)
{
    enum ads_type t;
    cr_assert_eq(ads_type_parse("lds", &t), 0);
    cr_assert_eq(t, ADS_T_LDS);
    cr_assert_eq(ads_type_parse(XDS_TYPE_URL_SECRET, &t), 0);
    cr_assert_eq(t, ADS_T_SDS);
    cr_assert_eq(ads_type_parse("xds", &t), -1);
    cr_assert_eq(ads_type_parse(NULL, &t), -1);
    cr_assert_str_eq(ads_type_name(ADS_T_RDS), "RDS");
}

Test(sds_names, classify)
{
    mesh_err err = {0};
    cr_assert_eq(sds_name_classify("default", ME, TD, &err), SDS_NAME_IS_DEFAULT);
    cr_assert_eq(sds_name_classify(ME, ME, TD, &err), SDS_NAME_IS_DEFAULT);
    cr_assert_eq(sds_name_classify("ROOTCA", ME, TD, &err), SDS_NAME_IS_BUNDLE);
    cr_assert_eq(sds_name_classify("spiffe://" TD, ME, TD, &err), SDS_NAME_IS_BUNDLE);
}

Test(sds_names, refusals)
{
    mesh_err err = {0};
    cr_assert_eq(sds_name_classify(OTHER, ME, TD, &err), SDS_NAME_DENIED);
    cr_assert_eq(err.code, MESH_EPERM);
    cr_assert(strstr(err.msg, OTHER));
    cr_assert_eq(sds_name_classify("spiffe://other.org", ME, TD, &err), SDS_NAME_DENIED);
    cr_assert_eq(sds_name_classify("", ME, TD, &err), SDS_NAME_DENIED);
    cr_assert_eq(sds_name_classify(NULL, ME, TD, &err), SDS_NAME_DENIED);
    cr_assert_eq(sds_name_classify("ALL", ME, TD, &err), SDS_NAME_DENIED);
    cr_assert(strstr(err.msg, "ALL"));
    cr_assert_eq(sds_name_classify("rootca", ME, TD, &err), SDS_NAME_DENIED, "case matters");
    cr_assert_eq(sds_name_classify(ME "/x", ME, TD, &err), SDS_NAME_DENIED);
    /* No proven identity: only the fixed names work. */
    cr_assert_eq(sds_name_classify(ME, "", TD, &err), SDS_NAME_DENIED);
    cr_assert_eq(sds_name_classify("spiffe://", ME, "", &err), SDS_NAME_DENIED);
}
