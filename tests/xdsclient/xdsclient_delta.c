/* tests/xdsclient/xdsclient_delta.c — the client side of Incremental (Delta) xDS for mesh-xdsclient.
 *
 * Behaves like Envoy's delta subscription: the first request per type names
 * what it subscribes to (none for LDS/CDS: legacy wildcard) and, with
 * --delta-state, the resources it already holds (initial_resource_versions).
 * Each response is checked (every Resource has a name, a version and an Any
 * of the response's type, no name twice), then applied — resources added or
 * replaced, removed_resources dropped — and ACKed; or NACKed without being
 * applied (as told by --nack-type, or when the check fails). One JSON line
 * per response:
 *   {"stream":0,"t_ms":12,"mode":"delta","type":"RDS","type_url":"..",
 *    "version":"<system_version_info>","nonce":"..","count":1,
 *    "resources":["outbound|http"],"versions":{"outbound|http":".."},
 *    "removed":[],"held":3,"reply":"ack"}
 * --delta-state FILE keeps what is held (TYPE<TAB>NAME<TAB>VERSION lines),
 * rewritten after every applied response, so a later run reconnects the way
 * a restarted sidecar with a persisted cache would. */
#include "tests/xdsclient/xdsclient.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "sds/protocol/ads_delta_codec.h"

typedef Envoy__Service__Discovery__V3__DeltaDiscoveryResponse delta_resp;

typedef struct xcl_held {
    char *name;
    char *version;
} xcl_held;

typedef struct xcl_held_set {
    xcl_held *v;                  /* sorted by name */
    size_t n, cap;
} xcl_held_set;

struct xcl_delta {
    const xcl_opts *o;
    const xcl_identity *id;
    int idx, n_streams;
    int node_sent;
    long nacks;
    xcl_held_set held[ADS_T_COUNT];
};

/* ---- what the client holds --------------------------------------------------------- */

static size_t held_lower(const xcl_held_set *h, const char *name)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(h->v[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int held_put(xcl_held_set *h, const char *name, const char *version)
{
    size_t i = held_lower(h, name);
    char *ver = strdup(version);
    if (!ver)
        return MESH_ENOMEM;
    if (i < h->n && strcmp(h->v[i].name, name) == 0) {
        free(h->v[i].version);
        h->v[i].version = ver;
        return MESH_OK;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        xcl_held *nv = realloc(h->v, cap * sizeof *nv);
        if (!nv) {
            free(ver);
            return MESH_ENOMEM;
        }
        h->v = nv;
        h->cap = cap;
    }
    char *nm = strdup(name);
    if (!nm) {
        free(ver);
        return MESH_ENOMEM;
    }
    memmove(&h->v[i + 1], &h->v[i], (h->n - i) * sizeof *h->v);
    h->v[i].name = nm;
    h->v[i].version = ver;
    h->n++;
    return MESH_OK;
}

static void held_remove(xcl_held_set *h, const char *name)
{
    size_t i = held_lower(h, name);
    if (i >= h->n || strcmp(h->v[i].name, name) != 0)
        return;
    free(h->v[i].name);
    free(h->v[i].version);
    memmove(&h->v[i], &h->v[i + 1], (h->n - i - 1) * sizeof *h->v);
    h->n--;
}

static void held_free(xcl_held_set *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        free(h->v[i].version);
    }
    free(h->v);
    memset(h, 0, sizeof *h);
}

/* ---- --delta-state ------------------------------------------------------------------ */

static int state_load(xcl_delta *d, const char *path, mesh_err *err)
{
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return MESH_OK; /* first run: nothing held yet */
    char *text = NULL;
    int rc = xcl_read_file(path, &text, NULL, err);
    if (rc != MESH_OK)
        return rc;
    int line = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l && rc == MESH_OK;
         l = strtok_r(NULL, "\n", &save)) {
        line++;
        char *t1 = strchr(l, '\t');
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        enum ads_type t;
        if (!t2 || strchr(t2 + 1, '\t') || t1 == l || t2 == t1 + 1 || !t2[1]) {
            rc = mesh_err_set(err, MESH_EINVAL,
                              "--delta-state %s:%d: expected TYPE<TAB>NAME<TAB>VERSION", path,
                              line);
            break;
        }
        *t1 = *t2 = '\0';
        if (ads_type_parse(l, &t) != 0) {
            rc = mesh_err_set(err, MESH_EINVAL, "--delta-state %s:%d: unknown type '%s'", path,
                              line, l);
            break;
        }
        if (held_put(&d->held[t], t1 + 1, t2 + 1) != MESH_OK)
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    free(text);
    return rc;
}

static void state_save(const xcl_delta *d)
{
    size_t cap = 4096, off = 0;
    char *buf = malloc(cap);
    for (int t = 0; buf && t < ADS_T_COUNT; t++) {
        const xcl_held_set *h = &d->held[t];
        for (size_t i = 0; buf && i < h->n; i++) {
            /* Names with a tab or newline cannot be written back: skipped
             * (meshd never makes one), so a reload resends them. */
            if (strpbrk(h->v[i].name, "\t\n") || strpbrk(h->v[i].version, "\t\n"))
                continue;
            size_t need = strlen(h->v[i].name) + strlen(h->v[i].version) + 16;
            if (off + need > cap) {
                cap = (off + need) * 2;
                char *nb = realloc(buf, cap);
                if (!nb) {
                    free(buf);
                    buf = NULL;
                    break;
                }
                buf = nb;
            }
            off += (size_t)snprintf(buf + off, cap - off, "%s\t%s\t%s\n",
                                    ads_type_name((enum ads_type)t), h->v[i].name,
                                    h->v[i].version);
        }
    }
    mesh_err err = {0};
    if (!buf)
        fprintf(stderr, "mesh-xdsclient: out of memory saving --delta-state\n");
    else if (xcl_write_file(d->o->delta_state, buf, off, 0644, &err) != MESH_OK)
        fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
    free(buf);
}

/* ---- requests ------------------------------------------------------------------------ */

int xcl_delta_new(const xcl_opts *o, const xcl_identity *id, int idx, int n, xcl_delta **out,
                  mesh_err *err)
{
    *out = NULL;
    xcl_delta *d = calloc(1, sizeof *d);
    if (!d)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    d->o = o;
    d->id = id;
    d->idx = idx;
    d->n_streams = n;
    if (o->delta_state) {
        int rc = state_load(d, o->delta_state, err);
        if (rc != MESH_OK) {
            xcl_delta_free(d);
            return rc;
        }
    }
    *out = d;
    return MESH_OK;
}

void xcl_delta_free(xcl_delta *d)
{
    if (!d)
        return;
    for (int t = 0; t < ADS_T_COUNT; t++)
        held_free(&d->held[t]);
    free(d);
}

static void send_req(xcl_delta *d, ads_delta_request_args *a, xcl_send_fn send, void *stream)
{
    char node[600];
    if (!d->node_sent) {
        xcl_node_id(d->o, d->id, d->idx, d->n_streams, node, sizeof node);
        a->node_id = node;
        d->node_sent = 1;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = {0};
    if (ads_delta_request_encode(a, &buf, &len, &err) != MESH_OK) {
        fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
        return;
    }
    send(stream, buf, len);
}

void xcl_delta_start(xcl_delta *d, xcl_send_fn send, void *stream)
{
    for (int i = 0; i < d->o->n_subs; i++) {
        const xcl_sub *sub = &d->o->subs[i];
        if (d->o->mode == XCL_SDS && sub->type != ADS_T_SDS)
            continue;
        const xcl_held_set *h = &d->held[sub->type];
        const char **names = h->n ? calloc(h->n, sizeof *names) : NULL;
        const char **versions = h->n ? calloc(h->n, sizeof *versions) : NULL;
        if (h->n && (!names || !versions)) {
            fprintf(stderr, "mesh-xdsclient: out of memory\n");
            free(names);
            free(versions);
            return;
        }
        for (size_t k = 0; k < h->n; k++) {
            names[k] = h->v[k].name;
            versions[k] = h->v[k].version;
        }
        ads_delta_request_args a = {
            .type_url = ads_type_url(sub->type),
            .subscribe = (const char *const *)sub->names,
            .n_subscribe = sub->n,
            .init_names = names,
            .init_versions = versions,
            .n_init = h->n,
        };
        send_req(d, &a, send, stream);
        free(names);
        free(versions);
    }
}

/* ---- responses ----------------------------------------------------------------------- */

/* Envoy's checks on a delta response, so that a server bug shows as a NACK. */
static int check_response(const delta_resp *m, char *why, size_t len)
{
    for (size_t i = 0; i < m->n_resources; i++) {
        const Envoy__Service__Discovery__V3__Resource *r = m->resources[i];
        if (!r->name || !r->name[0] || !r->version || !r->version[0]) {
            snprintf(why, len, "resource %zu has no name or no version", i);
            return -1;
        }
        if (!r->resource || strcmp(r->resource->type_url, m->type_url) != 0) {
            snprintf(why, len, "resource %s is not a %s", r->name, m->type_url);
            return -1;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(m->resources[k]->name, r->name) == 0) {
                snprintf(why, len, "resource %s appears twice", r->name);
                return -1;
            }
        }
    }
    for (size_t i = 0; i < m->n_removed_resources; i++) {
        for (size_t k = 0; k < m->n_resources; k++) {
            if (strcmp(m->removed_resources[i], m->resources[k]->name) == 0) {
                snprintf(why, len, "resource %s is both sent and removed", m->resources[k]->name);
                return -1;
            }
        }
    }
    return 0;
}

static int apply(xcl_delta *d, enum ads_type t, const delta_resp *m)
{
    for (size_t i = 0; i < m->n_resources; i++)
        if (held_put(&d->held[t], m->resources[i]->name, m->resources[i]->version) != MESH_OK)
            return MESH_ENOMEM;
    for (size_t i = 0; i < m->n_removed_resources; i++)
        held_remove(&d->held[t], m->removed_resources[i]);
    return MESH_OK;
}

static void print_line(const xcl_delta *d, const delta_resp *m, const char *tname, int known,
                       enum ads_type t, int64_t t_ms, const char *reply, const char *why)
{
    size_t cap = 256 * 1024, off = 0;
    char *buf = malloc(cap);
    if (!buf)
        return;
    off += (size_t)snprintf(buf, cap,
                            "{\"stream\":%d,\"t_ms\":%lld,\"mode\":\"delta\",\"type\":\"%s\","
                            "\"type_url\":",
                            d->idx, (long long)t_ms, tname);
    xcl_json_str(buf, cap, &off, m->type_url);
    off += (size_t)snprintf(buf + off, cap - off, ",\"version\":");
    xcl_json_str(buf, cap, &off, m->system_version_info);
    off += (size_t)snprintf(buf + off, cap - off, ",\"nonce\":");
    xcl_json_str(buf, cap, &off, m->nonce);
    off += (size_t)snprintf(buf + off, cap - off, ",\"count\":%zu,\"resources\":[", m->n_resources);
    for (size_t i = 0; i < m->n_resources && off + 4096 < cap; i++) {
        if (i)
            buf[off++] = ',';
        xcl_json_str(buf, cap, &off, m->resources[i]->name);
    }
    off += (size_t)snprintf(buf + off, cap - off, "],\"versions\":{");
    for (size_t i = 0; i < m->n_resources && off + 4096 < cap; i++) {
        if (i)
            buf[off++] = ',';
        xcl_json_str(buf, cap, &off, m->resources[i]->name);
        buf[off++] = ':';
        xcl_json_str(buf, cap, &off, m->resources[i]->version);
    }
    off += (size_t)snprintf(buf + off, cap - off, "},\"removed\":[");
    for (size_t i = 0; i < m->n_removed_resources && off + 4096 < cap; i++) {
        if (i)
            buf[off++] = ',';
        xcl_json_str(buf, cap, &off, m->removed_resources[i]);
    }
    off += (size_t)snprintf(buf + off, cap - off, "]");
    if (known && t == ADS_T_SDS) {
        off += (size_t)snprintf(buf + off, cap - off, ",\"secrets\":[");
        for (size_t i = 0; i < m->n_resources && off + 4096 < cap; i++) {
            if (i)
                buf[off++] = ',';
            const Google__Protobuf__Any *a = m->resources[i]->resource;
            if (a)
                xcl_describe_secret(d->id, a->value.data, a->value.len, buf, cap, &off);
            else
                off += (size_t)snprintf(buf + off, cap - off, "{}");
        }
        off += (size_t)snprintf(buf + off, cap - off, "]");
    }
    if (known)
        off += (size_t)snprintf(buf + off, cap - off, ",\"held\":%zu", d->held[t].n);
    if (m->control_plane) {
        off += (size_t)snprintf(buf + off, cap - off, ",\"control_plane\":");
        xcl_json_str(buf, cap, &off, m->control_plane->identifier);
    }
    if (why) {
        off += (size_t)snprintf(buf + off, cap - off, ",\"problem\":");
        xcl_json_str(buf, cap, &off, why);
    }
    snprintf(buf + off, cap - off, ",\"reply\":\"%s\"}", reply);
    printf("%s\n", buf);
    fflush(stdout);
    free(buf);
}

int xcl_delta_on_response(xcl_delta *d, const uint8_t *p, size_t len, int64_t t_ms, unsigned seq,
                          xcl_send_fn send, void *stream)
{
    const xcl_opts *o = d->o;
    delta_resp *m = envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, p);
    if (!m) {
        printf("{\"stream\":%d,\"t_ms\":%lld,\"mode\":\"delta\",\"error\":\"undecodable "
               "DeltaDiscoveryResponse\"}\n",
               d->idx, (long long)t_ms);
        fflush(stdout);
        return -1;
    }
    enum ads_type t = ADS_T_SDS;
    int known = ads_type_parse(m->type_url, &t) == 0 && strcmp(m->type_url, ads_type_url(t)) == 0;
    const char *tname = known ? ads_type_name(t) : "UNKNOWN";
    if (o->dump_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%03d-%04u-%s.pb", o->dump_dir, d->idx, seq, tname);
        mesh_err err = {0};
        if (xcl_write_file(path, p, len, 0644, &err) != MESH_OK)
            fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
    }
    const char *reply = "none";
    char why[600] = "";
    if (known && check_response(m, why, sizeof why) != 0) {
        reply = "nack";
        char msg[700];
        snprintf(msg, sizeof msg, "mesh-xdsclient: %s", why);
        ads_delta_request_args a = {.type_url = m->type_url, .nonce = m->nonce,
                                    .error_message = msg};
        send_req(d, &a, send, stream);
    } else if (known && !o->no_ack) {
        ads_delta_request_args a = {.type_url = m->type_url, .nonce = m->nonce};
        if (o->nack_type == (int)t && (o->nack_count < 0 || d->nacks < o->nack_count)) {
            d->nacks++;
            reply = "nack";
            a.error_message = "mesh-xdsclient: rejected by --nack-type";
        } else if (apply(d, t, m) != MESH_OK) {
            reply = "nack";
            a.error_message = "mesh-xdsclient: out of memory applying the response";
        } else {
            reply = "ack";
            if (o->delta_state)
                state_save(d);
        }
        send_req(d, &a, send, stream);
    }
    if (!o->quiet && !o->summary)
        print_line(d, m, tname, known, t, t_ms, reply, why[0] ? why : NULL);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(m, NULL);
    return known ? (int)t : -1;
}
