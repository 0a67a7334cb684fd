/* sds/protocol/ads_state.c — SotW per-stream state machine (see ads_state.h for the rules). */
#include "sds/protocol/ads_state.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xds_wire.h"
#include "sds/protocol/sds_names.h"

static const char *const type_urls[ADS_T_COUNT] = {
    [ADS_T_SDS] = XDS_TYPE_URL_SECRET,
    [ADS_T_CDS] = XDS_TYPE_URL_CLUSTER,
    [ADS_T_EDS] = XDS_TYPE_URL_ENDPOINT,
    [ADS_T_LDS] = XDS_TYPE_URL_LISTENER,
    [ADS_T_RDS] = XDS_TYPE_URL_ROUTE,
};


const char *ads_type_url(enum ads_type t)
{
    return (unsigned)t < ADS_T_COUNT ? type_urls[t] : "";
}

const char *ads_type_name(enum ads_type t)
{
    return (unsigned)t < ADS_T_COUNT ? xds_wire_short_name(type_urls[t]) : "?";
}

int ads_type_parse(const char *s, enum ads_type *out)
{
    if (!s)
        return -1;
    const char *url = xds_wire_type_url(s); /* a short name ("lds") */
    if (!url)
        url = s;
    for (int i = 0; i < ADS_T_COUNT; i++) {
        if (strcmp(url, type_urls[i]) == 0) {
            *out = (enum ads_type)i;
            return 0;
        }
    }
    return -1;
}

const char *ads_req_kind_name(enum ads_req_kind k)
{
    switch (k) {
    case ADS_REQ_SUBSCRIBE: return "subscribe";
    case ADS_REQ_UPDATE: return "update";
    case ADS_REQ_ACK: return "ack";
    case ADS_REQ_NACK: return "nack";
    case ADS_REQ_STALE: return "stale";
    case ADS_REQ_UNKNOWN_TYPE: return "unknown-type";
    case ADS_REQ_DENIED: return "denied";
    }
    return "?";
}

void ads_state_init(ads_state *s, const char *peer_id, const char *trust_domain)
{
    memset(s, 0, sizeof *s);
    snprintf(s->peer_id, sizeof s->peer_id, "%s", peer_id ? peer_id : "");
    snprintf(s->trust_domain, sizeof s->trust_domain, "%s", trust_domain ? trust_domain : "");
}

static void free_names(ads_type_state *ts)
{
    for (size_t i = 0; i < ts->n_names; i++)
        free(ts->names[i]);
    free(ts->names);
    ts->names = NULL;
    ts->n_names = 0;
}

void ads_state_free(ads_state *s)
{
    for (int i = 0; i < ADS_T_COUNT; i++) {
        free_names(&s->types[i]);
        free(s->types[i].nack_error);
        s->types[i].nack_error = NULL;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Builds the sorted, de-duplicated copy of a request's names. */
static int copy_names(const char *const *names, size_t n, char ***out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return MESH_OK;
    char **v = calloc(n, sizeof *v);
    if (!v)
        return MESH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i] = strdup(names[i] ? names[i] : "");
        if (!v[i]) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return MESH_ENOMEM;
        }
    }
    qsort(v, n, sizeof *v, cmp_str);
    size_t w = 1;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i], v[w - 1]) == 0)
            free(v[i]);
        else
            v[w++] = v[i];
    }
    *out = v;
    *n_out = w;
    return MESH_OK;
}

static int names_equal(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

static int has_star(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], "*") == 0)
            return 1;
    return 0;
}

/* Forgets what was sent, so that a later re-subscription is answered. */
static void reset_sent(ads_type_state *ts)
{
    ts->sent = 0;
    ts->awaiting = 0;
    ts->sent_version[0] = '\0';
    ts->sent_nonce[0] = '\0';
    ts->client_version[0] = '\0';
}

/* A no-nonce request before anything was sent on this stream: remember the
 * version the client says it holds. One longer than ours cannot be ours. */
static void note_client_version(ads_type_state *ts, const char *version)
{
    if (ts->sent || ts->ever_sent)
        return;
    if (strlen(version) < sizeof ts->client_version)
        memcpy(ts->client_version, version, strlen(version) + 1);
    else
        ts->client_version[0] = '\0';
}

/* Applies the name list of a (non-stale) request to the type's subscription. */
static int apply_subscription(ads_type_state *ts, enum ads_type t, const ads_request *req,
                              int *changed)
{
    char **names;
    size_t n;
    int rc = copy_names(req->names, req->n_names, &names, &n);
    if (rc != MESH_OK)
        return rc;
    int wildcard_type = (t == ADS_T_LDS || t == ADS_T_CDS);
    int wildcard = has_star(names, n) || (wildcard_type && n == 0);
    if (wildcard) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        names = NULL;
        n = 0;
    }
    int was_subscribed = ts->subscribed;
    int now_subscribed = wildcard || n > 0;
    int same = was_subscribed == now_subscribed &&
               (!now_subscribed ||
                (ts->wildcard == wildcard && names_equal(ts->names, ts->n_names, names, n)));
    *changed = !same;
    free_names(ts);
    ts->names = names;
    ts->n_names = n;
    ts->wildcard = wildcard;
    ts->subscribed = now_subscribed;
    if (!now_subscribed)
        reset_sent(ts);
    return MESH_OK;
}

int ads_state_on_request(ads_state *s, const ads_request *req, ads_req_result *out,
                         mesh_err *err)
{
    memset(out, 0, sizeof *out);
    enum ads_type t;
    if (ads_type_parse(req->type_url, &t) != 0 || strcmp(req->type_url, ads_type_url(t)) != 0) {
        /* Short names are for humans; on the wire only the full URL counts. */
        out->kind = ADS_REQ_UNKNOWN_TYPE;
        return MESH_OK;
    }
    out->type = t;
    ads_type_state *ts = &s->types[t];

    if (t == ADS_T_SDS) {
        for (size_t i = 0; i < req->n_names; i++) {
            if (sds_name_classify(req->names[i], s->peer_id, s->trust_domain, err) ==
                SDS_NAME_DENIED) {
                out->kind = ADS_REQ_DENIED;
                snprintf(out->denied_name, sizeof out->denied_name, "%s",
                         req->names[i] ? req->names[i] : "");
                return MESH_OK;
            }
        }
    }

    const char *nonce = req->response_nonce ? req->response_nonce : "";
    const char *version = req->version_info ? req->version_info : "";
    if (nonce[0]) {
        if (!ts->sent || strcmp(nonce, ts->sent_nonce) != 0) {
            out->kind = ADS_REQ_STALE;
            return MESH_OK;
        }
        ts->awaiting = 0;
        if (req->has_error) {
            char *msg = strdup(req->error_message ? req->error_message : "");
            if (!msg)
                return mesh_err_set(err, MESH_ENOMEM, "out of memory recording a NACK");
            free(ts->nack_error);
            ts->nack_error = msg;
            memcpy(ts->nack_version, ts->sent_version, sizeof ts->nack_version);
            out->kind = ADS_REQ_NACK;
        } else if (strcmp(version, ts->sent_version) == 0) {
            memcpy(ts->acked_version, ts->sent_version, sizeof ts->acked_version);
            out->kind = ADS_REQ_ACK;
        } else {
            out->kind = ADS_REQ_UPDATE;
        }
    } else {
        out->kind = ts->subscribed ? ADS_REQ_UPDATE : ADS_REQ_SUBSCRIBE;
    }

    int rc = apply_subscription(ts, t, req, &out->subscription_changed);
    if (rc != MESH_OK)
        return mesh_err_set(err, rc, "out of memory recording a subscription");
    /* After apply_subscription: an unsubscribe forgets it with the rest. */
    if (!nonce[0] && ts->subscribed && !s->no_resume)
        note_client_version(ts, version);
    return MESH_OK;
}

static int in_names(char **names, size_t n, const char *name)
{
    return bsearch(&name, names, n, sizeof *names, cmp_str) != NULL;
}

void ads_subset_version(const xds_resource *const *items, size_t n, char out[ADS_VERSION_MAX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++) {
        /* NUL separators keep ("ab","c") and ("a","bc") apart. */
        ok = EVP_DigestUpdate(ctx, items[i]->name, strlen(items[i]->name) + 1) &&
             EVP_DigestUpdate(ctx, items[i]->version, strlen(items[i]->version) + 1);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen < 8) {
        /* Only on allocation failure inside OpenSSL; a version that never
         * matches makes the next collect resend rather than stay silent. */
        snprintf(out, ADS_VERSION_MAX, "unhashed-%06zu", n % 1000000);
        return;
    }
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The items of set the subscription selects, in name order. */
static int select_items(const ads_type_state *ts, const xds_type_set *set,
                        const xds_resource ***out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (set->n == 0)
        return MESH_OK;
    const xds_resource **v = calloc(set->n, sizeof *v);
    if (!v)
        return MESH_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++)
        if (ts->wildcard || in_names(ts->names, ts->n_names, set->items[i].name))
            v[n++] = &set->items[i];
    if (n == 0) {
        free(v);
        v = NULL;
    }
    *out = v;
    *n_out = n;
    return MESH_OK;
}

int ads_state_collect(ads_state *s, const ads_view *v, ads_nonce_fn nonce, void *nonce_ctx,
                      ads_send out[ADS_T_COUNT], size_t *n_out, mesh_err *err)
{
    *n_out = 0;
    for (int t = 0; t < ADS_T_COUNT; t++) {
        ads_type_state *ts = &s->types[t];
        const xds_type_set *set = v ? v->sets[t] : NULL;
        if (!ts->subscribed || ts->awaiting || !set)
            continue;
        const xds_resource **items;
        size_t n;
        if (select_items(ts, set, &items, &n) != MESH_OK) {
            ads_send_free(out, *n_out);
            *n_out = 0;
            return mesh_err_set(err, MESH_ENOMEM, "out of memory building a response");
        }
        char version[ADS_VERSION_MAX];
        ads_subset_version(items, n, version);
        if (ts->sent && strcmp(version, ts->sent_version) == 0) {
            free(items);
            continue;
        }
        ads_send *o = &out[(*n_out)++];
        memset(o, 0, sizeof *o);
        o->type = (enum ads_type)t;
        memcpy(o->version, version, sizeof o->version);
        o->items = items;
        o->n = n;
        /* Reconnect of a client that holds this very version: nothing to
         * write. A later request echoing an old nonce is stale (sent_nonce
         * is ""), one without a nonce is an update, as before. */
        o->resumed = !ts->sent && ts->client_version[0] &&
                     strcmp(ts->client_version, version) == 0;
        ts->client_version[0] = '\0';
        ts->sent = 1;
        ts->ever_sent = 1;
        memcpy(ts->sent_version, version, sizeof ts->sent_version);
        if (o->resumed) {
            ts->awaiting = 0;
            ts->sent_nonce[0] = '\0';
            memcpy(ts->acked_version, version, sizeof ts->acked_version);
        } else {
            nonce(nonce_ctx, o->nonce, sizeof o->nonce);
            ts->awaiting = 1;
            snprintf(ts->sent_nonce, sizeof ts->sent_nonce, "%s", o->nonce);
        }
    }
    return MESH_OK;
}

void ads_send_free(ads_send *sends, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(sends[i].items);
        sends[i].items = NULL;
        sends[i].n = 0;
    }
}
