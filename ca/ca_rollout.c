/* ca/ca_rollout.c — when a prepared CA may start signing, and when a retired one may go.
 *
 * Activation is safe once every sidecar that could meet a leaf from the new
 * CA (or meshd's serving cert, which is re-issued from it at once) trusts the
 * new root. meshd records, per proxy, the roots of the bundle it last ACKed
 * (store_proxy_trust); ca_rollout_check judges each proxy-status row against
 * the prepared CA's root (see enum ca_peer_state in ca.h for the policy), and
 * ca_activate_safely makes the judgement and the switch one write
 * transaction. Pruning is decided per retired CA by its unexpired leaves. */
#include "ca/ca_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

const char *ca_peer_state_name(enum ca_peer_state s)
{
    switch (s) {
    case CA_PEER_READY: return "ready";
    case CA_PEER_LAGGING: return "lagging";
    case CA_PEER_OFFLINE: return "offline";
    case CA_PEER_GONE: return "gone";
    case CA_PEER_NO_TRUST: return "no-sds";
    default: return "?";
    }
}

static int is_secret_type(const char *url)
{
    static const char suffix[] = ".Secret";
    size_t ul = url ? strlen(url) : 0, sl = sizeof suffix - 1;
    return ul >= sl && strcmp(url + ul - sl, suffix) == 0;
}

/* t is sorted by (spiffe_id, node_id) in strcmp order (store_proxy_trust_list):
 * a binary search keeps a 10,000-sidecar check, polled twice a second by
 * `meshctl ca rotate`, linear in the rows. */
static const store_proxy_trust *find_trust(const store_proxy_trust *t, size_t n,
                                           const char *spiffe_id, const char *node)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t[mid].spiffe_id, spiffe_id);
        if (c == 0)
            c = strcmp(t[mid].node_id, node);
        if (c == 0)
            return &t[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static size_t count_roots(const char *csv)
{
    if (!csv || !csv[0])
        return 0;
    size_t n = 1;
    for (const char *p = csv; *p; p++)
        n += *p == ',';
    return n;
}

static enum ca_peer_state judge(const store_proxy *p, const store_proxy_trust *t,
                                const char *root, int64_t now)
{
    if (t && ca_fingerprints_contain(t->roots, root))
        return CA_PEER_READY;
    int asked_secrets = t != NULL;
    for (size_t i = 0; i < p->n_types && !asked_secrets; i++)
        asked_secrets = is_secret_type(p->types[i].type_url);
    if (!asked_secrets)
        return CA_PEER_NO_TRUST;
    if (p->connected)
        return CA_PEER_LAGGING;
    /* Could it come back by itself with what it holds? With a valid SVID,
     * or an expired one meshd would still let it recover from, yes. */
    int64_t base = p->svid_not_after ? p->svid_not_after : p->last_seen;
    return base + CA_ROLLOUT_GONE_AFTER < now ? CA_PEER_GONE : CA_PEER_OFFLINE;
}

static char *dup_str(const char *s, int *ok)
{
    char *d = strdup(s ? s : "");
    if (!d)
        *ok = 0;
    return d;
}

int ca_prepared_id(mesh_store *st, int64_t *id_out, mesh_err *err)
{
    *id_out = 0;
    store_ca *list = NULL;
    size_t n = 0;
    int rc = store_ca_list(st, &list, &n, err);
    if (rc != MESH_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].state, CA_STATE_PREPARED) == 0)
            *id_out = list[i].id;
    store_ca_free_list(list, n);
    return *id_out ? MESH_OK : mesh_err_set(err, MESH_ENOTFOUND, "no prepared CA");
}

static int root_of(mesh_store *st, int64_t ca_id, char out[65], mesh_err *err)
{
    store_ca *list = NULL;
    size_t n = 0;
    int rc = store_ca_list(st, &list, &n, err);
    if (rc != MESH_OK)
        return rc;
    rc = mesh_err_set(err, MESH_ENOTFOUND, "no CA #%lld ('meshctl ca show' lists them)",
                      (long long)ca_id);
    for (size_t i = 0; i < n; i++)
        if (list[i].id == ca_id)
            rc = ca_root_info(&list[i], NULL, out, err);
    store_ca_free_list(list, n);
    return rc;
}

int ca_rollout_check(mesh_store *st, int64_t ca_id, int64_t now, ca_rollout *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    out->ca_id = ca_id;
    int rc = root_of(st, ca_id, out->root_sha256, err);
    if (rc != MESH_OK)
        return rc;
    store_proxy *px = NULL;
    size_t npx = 0;
    store_proxy_trust *tr = NULL;
    size_t ntr = 0;
    if ((rc = store_proxy_list(st, &px, &npx, err)) != MESH_OK ||
        (rc = store_proxy_trust_list(st, &tr, &ntr, err)) != MESH_OK)
        goto out;
    out->peers = calloc(npx ? npx : 1, sizeof *out->peers);
    if (!out->peers) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < npx; i++) {
        const store_proxy_trust *t = find_trust(tr, ntr, px[i].spiffe_id, px[i].node_id);
        ca_rollout_peer *p = &out->peers[out->n_peers];
        int ok = 1;
        p->node_id = dup_str(px[i].node_id, &ok);
        p->spiffe_id = dup_str(px[i].spiffe_id, &ok);
        p->meshd_instance = dup_str(px[i].meshd_instance, &ok);
        out->n_peers++;
        if (!ok) {
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
            goto out;
        }
        p->connected = px[i].connected;
        p->last_seen = px[i].last_seen;
        p->svid_not_after = px[i].svid_not_after;
        p->trust_acked_at = t ? t->acked_at : 0;
        p->trust_roots = t ? count_roots(t->roots) : 0;
        p->state = judge(&px[i], t, out->root_sha256, now);
        out->count[p->state]++;
    }
out:
    store_proxy_free_list(px, npx);
    store_proxy_trust_free_list(tr, ntr);
    if (rc != MESH_OK)
        ca_rollout_free(out);
    return rc;
}

size_t ca_rollout_blocking(const ca_rollout *r)
{
    return r->count[CA_PEER_LAGGING] + r->count[CA_PEER_OFFLINE];
}

void ca_rollout_free(ca_rollout *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_peers; i++) {
        free(r->peers[i].node_id);
        free(r->peers[i].spiffe_id);
        free(r->peers[i].meshd_instance);
    }
    free(r->peers);
    int64_t id = r->ca_id;
    memset(r, 0, sizeof *r);
    r->ca_id = id;
}

/* "forced: 2 sidecar(s) without the new root: web-1,api-1" (cut to fit). */
static void forced_note(const ca_rollout *r, char *buf, size_t len)
{
    int off = snprintf(buf, len, "forced: %zu sidecar(s) without the new root:",
                       ca_rollout_blocking(r));
    const char *sep = " ";
    for (size_t i = 0; i < r->n_peers && off > 0 && (size_t)off < len; i++) {
        enum ca_peer_state s = r->peers[i].state;
        if (s != CA_PEER_LAGGING && s != CA_PEER_OFFLINE)
            continue;
        off += snprintf(buf + off, len - (size_t)off, "%s%.64s", sep, r->peers[i].node_id);
        sep = ",";
    }
}

int ca_activate_safely(mesh_store *st, int64_t ca_id, int64_t now, int force, ca_rollout *out,
                       mesh_err *err)
{
    memset(out, 0, sizeof *out);
    if (!st)
        return mesh_err_set(err, MESH_EINVAL, "missing store");
    int rc = store_begin(st, err);
    if (rc != MESH_OK)
        return rc;
    if ((rc = ca_rollout_check(st, ca_id, now, out, err)) != MESH_OK) {
        store_rollback(st);
        return rc;
    }
    size_t blocking = ca_rollout_blocking(out);
    if (blocking > 0 && !force) {
        store_rollback(st);
        return mesh_err_set(err, MESH_EBUSY,
                            "%zu sidecar(s) have not ACKed a trust bundle holding CA #%lld's "
                            "root; not activating it",
                            blocking, (long long)ca_id);
    }
    char note[400] = "";
    if (blocking > 0)
        forced_note(out, note, sizeof note);
    int64_t old = 0;
    if ((rc = ca_activate_in_tx(st, ca_id, note, &old, err)) != MESH_OK ||
        (rc = store_commit(st, err)) != MESH_OK) {
        store_rollback(st);
        return rc;
    }
    if (blocking > 0)
        log_warn("ca", "CA #%lld activated by force; %s", (long long)ca_id, note);
    log_info("ca", "CA #%lld is now active; CA #%lld retired (stays in the bundle until its "
                   "last SVID expires)",
             (long long)ca_id, (long long)old);
    return MESH_OK;
}

int ca_retired_list(mesh_store *st, int64_t now, ca_retired **out, size_t *n_out, mesh_err *err)
{
    *out = NULL;
    *n_out = 0;
    store_ca *list = NULL;
    size_t n = 0;
    int rc = store_ca_list(st, &list, &n, err);
    if (rc != MESH_OK)
        return rc;
    ca_retired *r = calloc(n ? n : 1, sizeof *r);
    size_t k = 0;
    if (!r)
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == MESH_OK; i++) {
        if (strcmp(list[i].state, CA_STATE_RETIRED) != 0)
            continue;
        r[k].ca_id = list[i].id;
        snprintf(r[k].serial_hex, sizeof r[k].serial_hex, "%s", list[i].serial_hex);
        rc = store_cert_live_summary_for_ca(st, list[i].id, now, &r[k].live,
                                            &r[k].last_not_after, err);
        k++;
    }
    store_ca_free_list(list, n);
    if (rc != MESH_OK) {
        free(r);
        return rc;
    }
    *out = r;
    *n_out = k;
    return MESH_OK;
}
