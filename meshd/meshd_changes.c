/* meshd/meshd_changes.c — the watcher's decisions (meshd/meshd_changes.h): the audit-log
 * change feed, the CA list fingerprint, what each stream needs on a pass,
 * when its SVID is renewed, when a refused stream is ended, when the CRLs
 * are refreshed and when a retired CA leaves the bundle. meshd/meshd_watch.c
 * applies them. */
#include "meshd/meshd_changes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshd/meshd_proxyless.h"
#include "sds/certsvc/svid_rotation.h"

void md_stream_facts_of(md_call *c, md_stream_facts *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_lock(&c->mu);
    md_stream *s = c->stream;
    if (s && !c->closed && !c->finishing) {
        f->ready = s->view_ready;
        f->cfg_gen = s->cfg_gen;
        f->bundle_gen = s->bundle_gen;
        f->have_svid = s->svid.found;
        snprintf(f->serial, sizeof f->serial, "%s", s->svid.serial_hex);
        snprintf(f->presented, sizeof f->presented, "%s", s->presented_serial);
        snprintf(f->instance, sizeof f->instance, "%s", s->instance);
        f->nb = s->svid.not_before;
        f->na = s->svid.not_after;
        f->ca_id = s->svid.ca_id;
        f->refused = s->refusal != NULL;
        f->connected_at = s->connected_at;
    }
    pthread_mutex_unlock(&c->mu);
}

md_refresh_plan md_refresh_plan_for(const md_stream_facts *f, int plaintext, int cert_dirty,
                                    const md_current *now)
{
    md_refresh_plan p;
    memset(&p, 0, sizeof p);
    /* Plaintext (proxyless) streams have no certificate and no secrets. */
    int want_svid = !plaintext && cert_dirty;
    if (!f->ready) {
        /* Its first view is being built (from what the store holds by then,
         * or not: look again next pass). */
        p.defer = want_svid;
        return p;
    }
    p.snap = now->cfg_gen != 0 && f->cfg_gen != now->cfg_gen;
    p.bundle = !plaintext && now->have_bundle && f->bundle_gen != now->bundle_gen;
    p.svid_lookup = want_svid && now->have_cas;
    return p;
}

int md_refusal_overdue(const md_stream_facts *f, int64_t now)
{
    return f->refused && now - f->connected_at >= MD_REFUSAL_WAIT_S;
}

int md_crl_sync_due(int store_changed, int64_t now_ms, int64_t last_sync_ms)
{
    return store_changed || now_ms - last_sync_ms >= MD_CRL_CHECK_MS;
}

int md_svid_changed(const md_stream_facts *f, const sds_svid *found)
{
    return found->found != f->have_svid || strcmp(found->serial_hex, f->serial) != 0;
}

enum md_rotation md_rotation_decide(const md_stream_facts *f, int have_peer_cert, int64_t now,
                                    double fraction, int64_t active_ca_id)
{
    if (!f->ready || !f->have_svid || !have_peer_cert)
        return MD_ROTATE_NO;
    if (f->na <= now)
        return MD_ROTATE_NO; /* expired: the sidecar must recover; a new stream would show it */
    if (active_ca_id && f->ca_id != active_ca_id)
        return MD_ROTATE_OLD_CA;
    if (now >= svid_rotation_due(f->nb, f->na, fraction, f->serial))
        return MD_ROTATE_DUE;
    return MD_ROTATE_NO;
}

int64_t md_rotation_ttl(int64_t nb, int64_t na)
{
    int64_t ttl = na - nb - CA_BACKDATE_SECONDS;
    if (ttl < CA_MIN_SVID_TTL)
        ttl = CA_MIN_SVID_TTL;
    if (ttl > CA_MAX_SVID_TTL)
        ttl = CA_MAX_SVID_TTL;
    return ttl;
}

char *md_ca_fingerprint(const store_ca *list, size_t n)
{
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += strlen(list[i].state) + strlen(list[i].serial_hex) + 32;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t off = 0;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(s + off, cap - off, "%lld:%s:%s;", (long long)list[i].id,
                                list[i].state, list[i].serial_hex);
    return s;
}

md_prune_plan md_prune_plan_for(const ca_retired *r, size_t n, int64_t now)
{
    md_prune_plan p = {.prune = 0, .next_check_at = now + MD_PRUNE_CHECK_S};
    for (size_t i = 0; i < n; i++) {
        if (r[i].live == 0)
            p.prune = 1;
        else if (r[i].last_not_after + 1 < p.next_check_at)
            /* at notAfter the leaf is still valid; one second later it is not */
            p.next_check_at = r[i].last_not_after + 1;
    }
    return p;
}

int md_audit_feed_read(mesh_store *st, int64_t *last_id, md_map *dirty)
{
    store_audit_entry *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    /* Usually a handful of rows are new (proxy-status batches write none):
     * read a small page, and a big one only when the small one has no
     * overlap with what we saw last time. Rows come newest first. */
    size_t limit = MD_AUDIT_FEED_PAGE;
    for (;;) {
        if (store_audit_list(st, limit, &list, &n, &err) != MESH_OK) {
            log_warn("meshd", "reading the audit log: %s", err.msg);
            return 1;
        }
        int gap = n == limit && list[n - 1].id > *last_id + 1;
        if (!gap || limit == MD_AUDIT_FEED_LIMIT)
            break;
        store_audit_free_list(list, n);
        list = NULL;
        limit = MD_AUDIT_FEED_LIMIT;
    }
    /* Even the big page does not reach back to what we saw: rows were missed. */
    int overflow = n == MD_AUDIT_FEED_LIMIT && list[n - 1].id > *last_id + 1;
    int64_t newest = *last_id;
    for (size_t i = 0; i < n && list[i].id > *last_id; i++) {
        const store_audit_entry *a = &list[i];
        if (a->id > newest)
            newest = a->id;
        if (!a->ok)
            continue;
        if (strcmp(a->action, "cert.issue") == 0 || strcmp(a->action, "cert.recover") == 0) {
            md_map_put(dirty, a->subject, (void *)1, NULL);
        } else if (strcmp(a->action, "cert.revoke") == 0) {
            store_cert c;
            memset(&c, 0, sizeof c);
            if (store_cert_get(st, a->subject, &c, &err) == MESH_OK)
                md_map_put(dirty, c.spiffe_id, (void *)1, NULL);
            else
                overflow = 1; /* cannot tell whose: look at everyone */
            store_cert_free(&c);
        }
    }
    *last_id = newest;
    store_audit_free_list(list, n);
    return overflow;
}

char **md_distinct_view_keys(md_call **calls, size_t n, size_t *n_out)
{
    *n_out = 0;
    char **ids = calloc(n ? n : 1, sizeof *ids);
    md_map *seen = md_map_new(4096);
    if (!ids || !seen) {
        free(ids);
        md_map_free(seen, NULL);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *key = md_call_view_key(calls[i]);
        if (md_map_get(seen, key))
            continue;
        md_map_put(seen, key, (void *)1, NULL);
        ids[(*n_out)++] = (char *)key;
    }
    md_map_free(seen, NULL);
    return ids;
}
