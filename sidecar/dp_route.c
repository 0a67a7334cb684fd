/* sidecar/dp_route.c — virtual host and route matching (see dp_route.h). */
#include "sidecar/dp_route.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How well a domain pattern matches a host: 0 = no match; higher is better.
 * Exact beats suffix wildcards beats prefix wildcards beats "*"; within a
 * wildcard class the longer literal part wins (Envoy's ordering). */
static size_t domain_score(const char *pat, const char *host, size_t hl)
{
    size_t pl = strlen(pat);
    if (pl >= 4096)
        return 0;   /* longer than any DNS name; keeps the score classes apart */
    if (pl == 1 && pat[0] == '*')
        return 1;
    if (pat[0] == '*') {
        size_t sl = pl - 1;     /* literal suffix; must leave >= 1 char for the '*' */
        if (hl > sl && strncasecmp(host + hl - sl, pat + 1, sl) == 0)
            return 2 * 4096 + sl;
        return 0;
    }
    if (pat[pl - 1] == '*') {
        size_t sl = pl - 1;
        if (hl > sl && strncasecmp(host, pat, sl) == 0)
            return 1 * 4096 + sl;
        return 0;
    }
    if (pl == hl && strncasecmp(host, pat, hl) == 0)
        return 3 * 4096 * 4096;
    return 0;
}

static const dp_virtual_host *best_vhost(const dp_route_table *rt, const char *host, size_t hl,
                                         size_t *score_out)
{
    const dp_virtual_host *best = NULL;
    size_t best_score = 0;
    for (size_t v = 0; v < rt->n_vhosts; v++) {
        const dp_virtual_host *vh = &rt->vhosts[v];
        for (size_t d = 0; d < vh->n_domains; d++) {
            size_t s = domain_score(vh->domains[d], host, hl);
            if (s > best_score) {
                best_score = s;
                best = vh;
            }
        }
    }
    *score_out = best_score;
    return best;
}

/* Length of host without a trailing ":port" (IPv6 literals keep their
 * brackets: "[::1]:80" -> "[::1]"). */
static size_t strip_port(const char *host, size_t hl)
{
    for (size_t i = hl; i > 0; i--) {
        char c = host[i - 1];
        if (c == ':')
            return i - 1 > 0 ? i - 1 : hl;
        if (c < '0' || c > '9')
            return hl;
    }
    return hl;
}

const dp_virtual_host *dp_route_find_vhost(const dp_route_table *rt, const char *host,
                                           size_t host_len)
{
    if (!host) {
        host = "";
        host_len = 0;
    }
    size_t s_full, s_bare;
    const dp_virtual_host *full = best_vhost(rt, host, host_len, &s_full);
    size_t bl = strip_port(host, host_len);
    if (bl == host_len)
        return full;
    const dp_virtual_host *bare = best_vhost(rt, host, bl, &s_bare);
    /* An exact "host:port" domain wins; otherwise the better of the two. */
    return s_bare > s_full ? bare : full;
}

static bool name_eq(const dp_http_header *h, const char *name, size_t nl)
{
    return h->name_len == nl && strncasecmp(h->name, name, nl) == 0;
}

static bool header_matches(const dp_header_matcher *m, const dp_http_header *hdrs, size_t n)
{
    size_t nl = strlen(m->name);
    size_t count = 0, total = 0;
    const dp_http_header *first = NULL;
    for (size_t i = 0; i < n; i++) {
        if (name_eq(&hdrs[i], m->name, nl)) {
            if (!first)
                first = &hdrs[i];
            count++;
            total += hdrs[i].value_len + 1;
        }
    }
    bool res;
    if (m->kind == DP_HDR_PRESENT) {
        res = count > 0;
    } else if (count == 0) {
        res = false;
    } else {
        const char *val = first->value;
        size_t vl = first->value_len;
        char *joined = NULL;
        if (count > 1) {
            joined = malloc(total);
            if (!joined)
                return false;   /* out of memory: fail the match, never a wrong route */
            size_t off = 0;
            for (size_t i = 0; i < n; i++) {
                if (!name_eq(&hdrs[i], m->name, nl))
                    continue;
                if (off)
                    joined[off++] = ',';
                memcpy(joined + off, hdrs[i].value, hdrs[i].value_len);
                off += hdrs[i].value_len;
            }
            val = joined;
            vl = off;
        }
        size_t ml = strlen(m->value);
        if (m->kind == DP_HDR_EXACT)
            res = vl == ml && memcmp(val, m->value, ml) == 0;
        else
            res = vl >= ml && memcmp(val, m->value, ml) == 0;
        free(joined);
    }
    return m->invert ? !res : res;
}

static bool path_matches(const dp_route *r, const char *path, size_t pl)
{
    size_t ml = strlen(r->path);
    if (r->path_kind == DP_PATH_PREFIX)
        return pl >= ml && memcmp(path, r->path, ml) == 0;
    const char *q = memchr(path, '?', pl);
    size_t bare = q ? (size_t)(q - path) : pl;
    return bare == ml && memcmp(path, r->path, ml) == 0;
}

const dp_route *dp_route_match(const dp_route_table *rt, const dp_route_req *req,
                               const dp_virtual_host **vh_out)
{
    const dp_virtual_host *vh = dp_route_find_vhost(rt, req->host, req->host_len);
    if (vh_out)
        *vh_out = vh;
    if (!vh)
        return NULL;
    const char *path = req->path ? req->path : "";
    for (size_t i = 0; i < vh->n_routes; i++) {
        const dp_route *r = &vh->routes[i];
        if (!path_matches(r, path, req->path_len))
            continue;
        bool ok = true;
        for (size_t h = 0; h < r->n_headers && ok; h++)
            ok = header_matches(&r->headers[h], req->headers, req->n_headers);
        if (ok)
            return r;
    }
    return NULL;
}

const char *dp_route_pick_cluster(const dp_route *r, dp_rng *rng)
{
    if (r->n_clusters == 1)
        return r->clusters[0].cluster;
    uint64_t total = r->total_weight;
    if (total == 0) {
        for (size_t i = 0; i < r->n_clusters; i++)
            total += r->clusters[i].weight;
        if (total == 0)
            return r->n_clusters ? r->clusters[0].cluster : NULL;
    }
    uint64_t x = dp_rng_below(rng, total);
    for (size_t i = 0; i < r->n_clusters; i++) {
        if (x < r->clusters[i].weight)
            return r->clusters[i].cluster;
        x -= r->clusters[i].weight;
    }
    return r->clusters[r->n_clusters - 1].cluster;
}
