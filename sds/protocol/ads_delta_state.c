/* sds/protocol/ads_delta_state.c — Incremental (Delta) xDS per-stream state machine
 * (see ads_delta_state.h).
 *
 * Every per-type set here is a sorted array: explicit names, what the client
 * holds, the view's resources. ads_delta_collect walks the three in one
 * merge, so a push to a node with thousands of clusters costs O(n) string
 * compares and no allocation when nothing changed. Every operation first
 * allocates what it needs and only then changes the state, so an allocation
 * failure leaves the stream exactly as it was. */
#include "sds/protocol/ads_delta_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sds/protocol/sds_names.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const ads_delta_entry *)a)->name, ((const ads_delta_entry *)b)->name);
}

static int in_sorted(char *const *v, size_t n, const char *name)
{
    return n > 0 && bsearch(&name, v, n, sizeof *v, cmp_str) != NULL;
}

static ads_delta_entry *known_find(const ads_delta_type *ts, const char *name)
{
    if (ts->n_known == 0)
        return NULL;
    ads_delta_entry key = {.name = (char *)name};
    return bsearch(&key, ts->known, ts->n_known, sizeof key, cmp_entry);
}

static int wildcard_type(enum ads_type t)
{
    return t == ADS_T_LDS || t == ADS_T_CDS;
}

void ads_delta_init(ads_delta_state *s, const char *peer_id, const char *trust_domain)
{
    memset(s, 0, sizeof *s);
    snprintf(s->peer_id, sizeof s->peer_id, "%s", peer_id ? peer_id : "");
    snprintf(s->trust_domain, sizeof s->trust_domain, "%s", trust_domain ? trust_domain : "");
}

static void free_type(ads_delta_type *ts)
{
    for (size_t i = 0; i < ts->n_names; i++)
        free(ts->names[i]);
    free(ts->names);
    for (size_t i = 0; i < ts->n_known; i++)
        free(ts->known[i].name);
    free(ts->known);
    free(ts->nack_error);
    memset(ts, 0, sizeof *ts);
}

void ads_delta_free(ads_delta_state *s)
{
    for (int t = 0; t < ADS_T_COUNT; t++)
        free_type(&s->types[t]);
}

const char *ads_delta_known_version(const ads_delta_state *s, enum ads_type t, const char *name)
{
    if ((unsigned)t >= ADS_T_COUNT || !name)
        return NULL;
    const ads_delta_entry *e = known_find(&s->types[t], name);
    return e ? e->version : NULL;
}

/* ---- requests ------------------------------------------------------------------- */

/* Sorted, de-duplicated copy of a request's name list without "*" (pointers
 * borrowed from the request). *star tells whether "*" was in it. */
static int sorted_names(const char *const *names, size_t n, const char ***out, size_t *n_out,
                        int *star)
{
    *out = NULL;
    *n_out = 0;
    *star = 0;
    if (n == 0)
        return MESH_OK;
    const char **v = calloc(n, sizeof *v);
    if (!v)
        return MESH_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i] ? names[i] : "";
        if (strcmp(name, "*") == 0)
            *star = 1;
        else
            v[k++] = name;
    }
    qsort(v, k, sizeof *v, cmp_str);
    size_t w = 0;
    for (size_t i = 0; i < k; i++)
        if (w == 0 || strcmp(v[i], v[w - 1]) != 0)
            v[w++] = v[i];
    *out = v;
    *n_out = w;
    return MESH_OK;
}

/* Everything a request will change, allocated before anything is changed. */
typedef struct req_plan {
    const char **sub, **unsub;
    size_t n_sub, n_unsub;
    int star_sub, star_unsub;
    char **names;                 /* the new explicit set: old pointers + fresh copies */
    size_t n_names;
    unsigned char *fresh;         /* names[i] was allocated for this request */
    ads_delta_entry *initial;     /* first request: the known set from initial versions */
    size_t n_initial;
    int wildcard;
} req_plan;

static void plan_free(req_plan *p, int committed)
{
    if (!committed) {
        for (size_t i = 0; i < p->n_names; i++)
            if (p->fresh[i])
                free(p->names[i]);
        free(p->names);
        for (size_t i = 0; i < p->n_initial; i++)
            free(p->initial[i].name);
        free(p->initial);
    }
    free(p->fresh);
    free(p->sub);
    free(p->unsub);
}

/* new explicit set = (old - unsubscribed) + subscribed: unsubscribe first, so a
 * name in both lists ends up subscribed. */
static int plan_names(const ads_delta_type *ts, req_plan *p)
{
    size_t cap = ts->n_names + p->n_sub;
    if (cap == 0)
        return MESH_OK;
    p->names = calloc(cap, sizeof *p->names);
    p->fresh = calloc(cap, 1);
    if (!p->names || !p->fresh)
        return MESH_ENOMEM;
    size_t i = 0, j = 0, n = 0;
    while (i < ts->n_names || j < p->n_sub) {
        int c = i >= ts->n_names ? 1 : j >= p->n_sub ? -1 : strcmp(ts->names[i], p->sub[j]);
        if (c < 0) {
            if (!in_sorted((char *const *)p->unsub, p->n_unsub, ts->names[i]))
                p->names[n++] = ts->names[i];
            i++;
        } else if (c == 0) {
            p->names[n++] = ts->names[i];
            i++;
            j++;
        } else {
            p->names[n] = strdup(p->sub[j]);
            if (!p->names[n]) {
                p->n_names = n;
                return MESH_ENOMEM;
            }
            p->fresh[n++] = 1;
            j++;
        }
    }
    p->n_names = n;
    return MESH_OK;
}

typedef struct initial_item {
    const char *name;
    const char *version;
    size_t idx;
} initial_item;

static int cmp_initial(const void *a, const void *b)
{
    const initial_item *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx ? 1 : 0;
}

/* What the client says it already has, limited to what it subscribes to. A
 * map key given twice keeps its last value, as protobuf maps do. */
static int plan_initial(const ads_delta_request *req, req_plan *p)
{
    if (req->n_initial == 0)
        return MESH_OK;
    initial_item *v = calloc(req->n_initial, sizeof *v);
    if (!v)
        return MESH_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < req->n_initial; i++) {
        const char *name = req->initial_names[i] ? req->initial_names[i] : "";
        if (!p->wildcard && !in_sorted(p->names, p->n_names, name))
            continue;
        v[k].name = name;
        v[k].version = req->initial_versions && req->initial_versions[i]
                           ? req->initial_versions[i]
                           : "";
        v[k].idx = i;
        k++;
    }
    qsort(v, k, sizeof *v, cmp_initial);
    int rc = MESH_OK;
    if (k > 0) {
        p->initial = calloc(k, sizeof *p->initial);
        if (!p->initial)
            rc = MESH_ENOMEM;
    }
    for (size_t i = 0; rc == MESH_OK && i < k; i++) {
        if (i + 1 < k && strcmp(v[i].name, v[i + 1].name) == 0)
            continue; /* a later value of the same key follows */
        ads_delta_entry *e = &p->initial[p->n_initial];
        e->name = strdup(v[i].name);
        if (!e->name) {
            rc = MESH_ENOMEM;
            break;
        }
        p->n_initial++;
        /* Our versions are 16 hex chars: anything empty or longer cannot be
         * current, so it is resent whatever it says. */
        if (v[i].version[0] && strlen(v[i].version) < ADS_VERSION_MAX)
            snprintf(e->version, sizeof e->version, "%s", v[i].version);
        else
            snprintf(e->version, sizeof e->version, "%s", ADS_DELTA_UNKNOWN);
    }
    free(v);
    return rc;
}

/* Drops (or marks for resending) the known entries a request touches. No
 * allocation: entries are compacted in place. */
static void commit_known(ads_delta_type *ts, const req_plan *p, int wildcard_was)
{
    size_t w = 0;
    for (size_t i = 0; i < ts->n_known; i++) {
        ads_delta_entry *e = &ts->known[i];
        int explicit_now = in_sorted(p->names, p->n_names, e->name);
        int keep = 1;
        if (wildcard_was && !p->wildcard && !explicit_now)
            keep = 0; /* held through the wildcard only, which is gone */
        if (in_sorted((char *const *)p->sub, p->n_sub, e->name)) {
            keep = 0; /* (re)subscribed: send it again whatever we think it holds */
        } else if (!explicit_now && in_sorted(ts->names, ts->n_names, e->name)) {
            /* Unsubscribed. Under the wildcard the client cannot tell whether
             * it still covers the name: answer with the resource or a removal. */
            if (p->wildcard)
                snprintf(e->version, sizeof e->version, "%s", ADS_DELTA_UNKNOWN);
            else
                keep = 0;
        }
        if (keep)
            ts->known[w++] = *e;
        else
            free(e->name);
    }
    ts->n_known = w;
}

int ads_delta_on_request(ads_delta_state *s, const ads_delta_request *req, ads_req_result *out,
                         mesh_err *err)
{
    memset(out, 0, sizeof *out);
    enum ads_type t;
    if (!req->type_url || ads_type_parse(req->type_url, &t) != 0 ||
        strcmp(req->type_url, ads_type_url(t)) != 0) {
        out->kind = ADS_REQ_UNKNOWN_TYPE; /* short names are for humans only */
        return MESH_OK;
    }
    out->type = t;
    ads_delta_type *ts = &s->types[t];

    if (t == ADS_T_SDS) {
        for (size_t i = 0; i < req->n_subscribe; i++) {
            const char *name = req->subscribe[i] ? req->subscribe[i] : "";
            if (sds_name_classify(name, s->peer_id, s->trust_domain, err) == SDS_NAME_DENIED) {
                out->kind = ADS_REQ_DENIED;
                snprintf(out->denied_name, sizeof out->denied_name, "%s", name);
                return MESH_OK;
            }
        }
    }

    req_plan p;
    memset(&p, 0, sizeof p);
    int first = !ts->seen;
    int rc = sorted_names(req->subscribe, req->n_subscribe, &p.sub, &p.n_sub, &p.star_sub);
    if (rc == MESH_OK)
        rc = sorted_names(req->unsubscribe, req->n_unsubscribe, &p.unsub, &p.n_unsub,
                          &p.star_unsub);
    if (rc == MESH_OK)
        rc = plan_names(ts, &p);
    if (rc == MESH_OK && p.n_names > ADS_DELTA_MAX_NAMES) {
        size_t n = p.n_names;
        plan_free(&p, 0);
        return mesh_err_set(err, MESH_EINVAL,
                            "%s subscription would hold %zu names; the limit per stream is %d",
                            ads_type_name(t), n, ADS_DELTA_MAX_NAMES);
    }
    p.wildcard = ts->wildcard;
    if (first && wildcard_type(t) && req->n_subscribe == 0 && req->n_unsubscribe == 0)
        p.wildcard = 1; /* legacy wildcard: nothing named on the first request */
    if (p.star_unsub)
        p.wildcard = 0;
    if (p.star_sub)
        p.wildcard = 1;
    if (rc == MESH_OK && first)
        rc = plan_initial(req, &p);
    const char *nonce = req->response_nonce ? req->response_nonce : "";
    int answers = nonce[0] && ts->awaiting && strcmp(nonce, ts->sent_nonce) == 0;
    char *nack_msg = NULL;
    if (rc == MESH_OK && answers && req->has_error &&
        !(nack_msg = strdup(req->error_message ? req->error_message : "")))
        rc = MESH_ENOMEM;
    if (rc != MESH_OK) {
        plan_free(&p, 0);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory recording a delta request");
    }

    /* Nothing below allocates: commit. */
    int wildcard_was = ts->wildcard;
    out->subscription_changed = first || wildcard_was != p.wildcard || ts->n_names != p.n_names;
    for (size_t i = 0; !out->subscription_changed && i < p.n_names; i++)
        out->subscription_changed = strcmp(ts->names[i], p.names[i]) != 0;
    commit_known(ts, &p, wildcard_was);
    for (size_t i = 0; i < ts->n_names; i++)
        if (!in_sorted(p.names, p.n_names, ts->names[i]))
            free(ts->names[i]);
    free(ts->names);
    ts->names = p.names;
    ts->n_names = p.n_names;
    ts->wildcard = p.wildcard;
    if (first) {
        /* Nothing was sent for the type yet, so nothing is known but this. */
        for (size_t i = 0; i < ts->n_known; i++)
            free(ts->known[i].name);
        free(ts->known);
        ts->known = p.initial;
        ts->n_known = p.n_initial;
        ts->force_reply = 1;
    }
    if (!wildcard_was && p.wildcard)
        ts->force_reply = 1;
    ts->seen = 1;
    plan_free(&p, 1);

    if (!nonce[0]) {
        out->kind = first ? ADS_REQ_SUBSCRIBE : ADS_REQ_UPDATE;
        return MESH_OK;
    }
    if (!answers) {
        /* An answer to an older response (or a duplicate): its subscription
         * changes count, its ACK/NACK does not. */
        out->kind = ADS_REQ_STALE;
        return MESH_OK;
    }
    if (req->has_error) {
        free(ts->nack_error);
        ts->nack_error = nack_msg;
        memcpy(ts->nack_version, ts->sent_version, sizeof ts->nack_version);
        out->kind = ADS_REQ_NACK;
    } else {
        memcpy(ts->acked_version, ts->sent_version, sizeof ts->acked_version);
        out->kind = ADS_REQ_ACK;
    }
    ts->awaiting = 0;
    return MESH_OK;
}

/* ---- responses ------------------------------------------------------------------ */

/* One step of the merge over (view resources, known entries, explicit names). */
typedef struct merge_step {
    const char *name;
    const xds_resource *item;      /* NULL: the resource does not exist */
    const ads_delta_entry *known;  /* NULL: the client holds nothing by that name */
    int subscribed;
    int is_explicit;
} merge_step;

typedef struct merge_iter {
    const ads_delta_type *ts;
    const xds_type_set *set;
    size_t i, j, k;
} merge_iter;

static int merge_next(merge_iter *m, merge_step *st)
{
    const ads_delta_type *ts = m->ts;
    const char *cand[3] = {
        m->i < m->set->n ? m->set->items[m->i].name : NULL,
        m->j < ts->n_known ? ts->known[m->j].name : NULL,
        m->k < ts->n_names ? ts->names[m->k] : NULL,
    };
    const char *min = NULL;
    for (int c = 0; c < 3; c++)
        if (cand[c] && (!min || strcmp(cand[c], min) < 0))
            min = cand[c];
    if (!min)
        return 0;
    memset(st, 0, sizeof *st);
    st->name = min;
    if (cand[0] && strcmp(cand[0], min) == 0)
        st->item = &m->set->items[m->i++];
    if (cand[1] && strcmp(cand[1], min) == 0)
        st->known = &ts->known[m->j++];
    if (cand[2] && strcmp(cand[2], min) == 0) {
        st->is_explicit = 1;
        m->k++;
    }
    st->subscribed = ts->wildcard || st->is_explicit;
    return 1;
}

enum step_action { KEEP_NONE = 0, KEEP_ITEM, KEEP_ABSENT, KEEP_AS_IS };

/* What one name contributes: sent, removed, and what stays known. */
static enum step_action step_decide(const merge_step *st, int *send, int *removed)
{
    *send = 0;
    *removed = 0;
    if (!st->subscribed)
        return KEEP_NONE;
    if (st->item) {
        *send = !st->known || strcmp(st->known->version, st->item->version) != 0;
        return KEEP_ITEM;
    }
    /* Subscribed, does not exist: tell a client that holds it (or may) or
     * that named it and was never answered. */
    if (st->known ? st->known->version[0] != '\0' : st->is_explicit)
        *removed = 1;
    if (!st->is_explicit)
        return KEEP_NONE;
    return st->known && st->known->version[0] == '\0' ? KEEP_AS_IS : KEEP_ABSENT;
}

typedef struct type_plan {
    size_t n_send, n_removed, n_known, n_selected;
    int known_changed;
} type_plan;

static void plan_type(const ads_delta_type *ts, const xds_type_set *set, type_plan *tp)
{
    memset(tp, 0, sizeof *tp);
    merge_iter m = {.ts = ts, .set = set};
    merge_step st;
    while (merge_next(&m, &st)) {
        int send, removed;
        enum step_action a = step_decide(&st, &send, &removed);
        tp->n_send += (size_t)send;
        tp->n_removed += (size_t)removed;
        if (st.item && st.subscribed)
            tp->n_selected++;
        if (a != KEEP_NONE)
            tp->n_known++;
        /* Does the entry for this name differ after the step? */
        int changed;
        if (a == KEEP_NONE)
            changed = st.known != NULL;
        else if (!st.known)
            changed = 1;
        else if (a == KEEP_ITEM)
            changed = send;
        else
            changed = a == KEEP_ABSENT; /* KEEP_ABSENT: the entry was not "" yet */
        tp->known_changed |= changed;
    }
}

/* Builds the response and the new known set for one type, then installs the
 * latter. Returns 1 when *o was filled, 0 when there is nothing to send. */
static int build_type(ads_delta_type *ts, const xds_type_set *set, const type_plan *tp,
                      ads_delta_send *o, int emit, int *rc)
{
    *rc = MESH_OK;
    const xds_resource **items = tp->n_send ? calloc(tp->n_send, sizeof *items) : NULL;
    const xds_resource **selected = tp->n_selected ? calloc(tp->n_selected, sizeof *selected)
                                                   : NULL;
    char **removed = tp->n_removed ? calloc(tp->n_removed, sizeof *removed) : NULL;
    ads_delta_entry *known = tp->n_known ? calloc(tp->n_known, sizeof *known) : NULL;
    unsigned char *fresh = tp->n_known ? calloc(tp->n_known, 1) : NULL;
    unsigned char *moved = ts->n_known ? calloc(ts->n_known, 1) : NULL;
    size_t ns = 0, nsel = 0, nr = 0, nk = 0;
    int ok = (!tp->n_send || items) && (!tp->n_selected || selected) &&
             (!tp->n_removed || removed) && (!tp->n_known || (known && fresh)) &&
             (!ts->n_known || moved);
    merge_iter m = {.ts = ts, .set = set};
    merge_step st;
    while (ok && merge_next(&m, &st)) {
        int send, rem;
        enum step_action a = step_decide(&st, &send, &rem);
        if (send)
            items[ns++] = st.item;
        if (st.item && st.subscribed)
            selected[nsel++] = st.item;
        if (rem) {
            if (!(removed[nr] = strdup(st.name))) {
                ok = 0;
                break;
            }
            nr++;
        }
        if (a == KEEP_NONE)
            continue;
        ads_delta_entry *e = &known[nk];
        if (st.known) {
            e->name = st.known->name;
            moved[st.known - ts->known] = 1;
        } else if ((e->name = strdup(st.name)) != NULL) {
            fresh[nk] = 1;
        } else {
            ok = 0;
            break;
        }
        nk++;
        const char *version = a == KEEP_ITEM ? st.item->version
                              : a == KEEP_ABSENT ? ""
                                                 : st.known->version;
        snprintf(e->version, sizeof e->version, "%s", version);
    }
    if (!ok) {
        for (size_t i = 0; i < nr; i++)
            free(removed[i]);
        for (size_t i = 0; i < nk; i++)
            if (fresh[i])
                free(known[i].name);
        free(items);
        free(selected);
        free(removed);
        free(known);
        free(fresh);
        free(moved);
        *rc = MESH_ENOMEM;
        return 0;
    }
    for (size_t i = 0; i < ts->n_known; i++)
        if (!moved[i])
            free(ts->known[i].name);
    free(ts->known);
    ts->known = known;
    ts->n_known = nk;
    free(fresh);
    free(moved);
    if (!emit) {
        free(items);
        free(selected);
        free(removed);
        return 0;
    }
    memset(o, 0, sizeof *o);
    ads_subset_version(selected, nsel, o->version);
    free(selected);
    o->items = items;
    o->n = ns;
    o->removed = removed;
    o->n_removed = nr;
    return 1;
}

int ads_delta_collect(ads_delta_state *s, const ads_view *v, ads_nonce_fn nonce, void *nonce_ctx,
                      ads_delta_send out[ADS_T_COUNT], size_t *n_out, mesh_err *err)
{
    *n_out = 0;
    int failed = 0;
    for (int t = 0; t < ADS_T_COUNT; t++) {
        ads_delta_type *ts = &s->types[t];
        const xds_type_set *set = v ? v->sets[t] : NULL;
        if (!ts->seen || ts->awaiting || !set)
            continue;
        type_plan tp;
        plan_type(ts, set, &tp);
        int emit = tp.n_send > 0 || tp.n_removed > 0 || ts->force_reply;
        if (!emit && !tp.known_changed)
            continue;
        ads_delta_send *o = &out[*n_out];
        int rc;
        if (!build_type(ts, set, &tp, o, emit, &rc)) {
            if (rc != MESH_OK)
                failed = 1;
            continue;
        }
        o->type = (enum ads_type)t;
        nonce(nonce_ctx, o->nonce, sizeof o->nonce);
        ts->sent = 1;
        ts->awaiting = 1;
        ts->force_reply = 0;
        memcpy(ts->sent_version, o->version, sizeof ts->sent_version);
        snprintf(ts->sent_nonce, sizeof ts->sent_nonce, "%s", o->nonce);
        (*n_out)++;
    }
    if (failed)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory building a delta response");
    return MESH_OK;
}

void ads_delta_send_free(ads_delta_send *sends, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(sends[i].items);
        for (size_t k = 0; k < sends[i].n_removed; k++)
            free(sends[i].removed[k]);
        free(sends[i].removed);
        sends[i].items = NULL;
        sends[i].removed = NULL;
        sends[i].n = sends[i].n_removed = 0;
    }
}
