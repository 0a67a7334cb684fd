/* meshd/meshd_proxyless.c — the plaintext xDS port for proxyless gRPC clients
 * (meshd/meshd_proxyless.h; docs/xds-clients.md).
 *
 * The port is one more address of the same gRPC server, with insecure
 * credentials; a call is recognised as plaintext by its auth context. Such a
 * call never reaches the TLS code paths: unary and secret methods are refused
 * here, and an ADS stream is opened without an identity, which its first
 * request supplies (Node.id). Only then is the stream registered (so the
 * watcher never sees a half-made identity) and its first view built on a
 * worker, which also checks that the identity is registered. From there on it
 * is an ordinary SotW stream whose snapshot is the proxyless view and which
 * never holds secrets. */
#include "meshd/meshd_proxyless.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <grpc/grpc_security.h>

#include "ca/spiffe_id.h"
#include "common/mgrpc.h"

/* ---- flags ---------------------------------------------------------------------------- */

int md_proxyless_is_loopback(const char *host)
{
    if (host == NULL)
        return 0;
    char buf[256];
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        if (len - 2 >= sizeof buf)
            return 0;
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
    }
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return 0;
}

int md_proxyless_check_opts(const md_opts *o, mesh_err *err)
{
    const char *a = o->plain_listen;
    if (a == NULL) {
        if (o->plain_remote)
            return mesh_err_set(err, MESH_EINVAL,
                                "--xds-plaintext-allow-remote needs --xds-plaintext-listen");
        return MESH_OK;
    }
    if (o->listen != NULL && strcmp(a, o->listen) == 0)
        return mesh_err_set(err, MESH_EINVAL,
                            "--xds-plaintext-listen %s: that is the mTLS --listen address; give "
                            "the plaintext port its own address",
                            a);
    if (strncmp(a, "unix:", 5) == 0) {
        /* A UNIX socket is local by nature; its directory's permissions decide
         * which local users may connect. */
        if (a[5] == '\0' || strlen(a) > 108)
            return mesh_err_set(err, MESH_EINVAL,
                                "--xds-plaintext-listen '%s': give unix:/path/to/socket "
                                "(at most 103 bytes of path)", a);
        return MESH_OK;
    }
    const char *colon = strrchr(a, ':');
    if (colon == NULL || colon == a || colon[1] == '\0' || strlen(a) > 255)
        return mesh_err_set(err, MESH_EINVAL,
                            "--xds-plaintext-listen '%s': give HOST:PORT, e.g. 127.0.0.1:15012", a);
    char host[256];
    memcpy(host, a, (size_t)(colon - a));
    host[colon - a] = '\0';
    if (!o->plain_remote && !md_proxyless_is_loopback(host))
        return mesh_err_set(err, MESH_EINVAL,
                            "--xds-plaintext-listen %s: not a loopback address. On this port a "
                            "client's identity is only its claim (Node.id), so by default only "
                            "local clients may reach it; on a network you trust, add "
                            "--xds-plaintext-allow-remote",
                            a);
    return MESH_OK;
}

/* ---- server --------------------------------------------------------------------------- */

int md_proxyless_bind(md_ctx *ctx, mesh_err *err)
{
    const char *addr = ctx->opts.plain_listen;
    if (addr == NULL)
        return MESH_OK;
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    if (creds == NULL)
        return mesh_err_set(err, MESH_EINTERNAL, "cannot create insecure server credentials");
    int port = grpc_server_add_http2_port(ctx->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (port == 0)
        return mesh_err_set(err, MESH_EIO,
                            "cannot listen on %s (--xds-plaintext-listen): the address is in use "
                            "or invalid",
                            addr);
    log_info("meshd", "plaintext xDS port for proxyless gRPC clients on %s: SotW LDS/RDS/CDS/EDS "
                      "only, identity = Node.id of a registered identity, no certificates or "
                      "secrets%s",
             addr, ctx->opts.plain_remote ? "; remote clients allowed" : "; local clients only");
    return MESH_OK;
}

/* The insecure credentials' auth context says "insecure"; TLS ones say "ssl"
 * or "tls". No context at all is treated as plaintext: the restricted path. */
static int arrived_in_plaintext(grpc_call *call)
{
    grpc_auth_context *ctx = grpc_call_auth_context(call);
    if (ctx == NULL)
        return 1;
    grpc_auth_property_iterator it =
        grpc_auth_context_find_properties_by_name(ctx, GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
    const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
    int plain = p != NULL && p->value_length == strlen("insecure") &&
                memcmp(p->value, "insecure", p->value_length) == 0;
    grpc_auth_context_release(ctx);
    return plain;
}

static void open_stream(md_call *c)
{
    md_ctx *ctx = c->ctx;
    md_stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        md_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "meshd is out of memory");
        return;
    }
    /* No identity yet: the first request names it (md_proxyless_on_request_locked). */
    ads_state_init(&s->st, "", ctx->trust_domain);
    s->connected_at = md_now();
    c->stream = s;
    if (md_call_start_recv(c) != MESH_OK) {
        md_call_finish(c, GRPC_STATUS_INTERNAL, "cannot receive on the stream");
        return;
    }
    log_info("meshd", "ADS stream from %s (proxyless; identity from Node.id)", c->peer_addr);
}

int md_proxyless_call(md_call *c)
{
    md_ctx *ctx = c->ctx;
    if (ctx->opts.plain_listen == NULL || !arrived_in_plaintext(c->call))
        return 0;
    c->plaintext = 1;
    char peer[sizeof c->peer_addr];
    snprintf(peer, sizeof peer, "%s", c->peer_addr);
    snprintf(c->peer_addr, sizeof c->peer_addr, "plaintext:%.*s",
             (int)(sizeof c->peer_addr - sizeof "plaintext:"), peer);
    if (c->kind == MD_CALL_ADS) {
        open_stream(c);
        return 1;
    }
    md_audit_refusal(ctx, c, "xds.denied", c->method,
                     "only StreamAggregatedResources is served on the plaintext xDS port");
    if (!md_call_kind_is_delta(c->kind)) {
        /* CreateCertificate, FetchSecrets, StreamSecrets: credentials and secrets
         * never travel in plaintext. */
        md_call_finish(c, GRPC_STATUS_UNAUTHENTICATED,
                       "this method is not served on meshd's plaintext xDS port, which serves "
                       "only StreamAggregatedResources (LDS/RDS/CDS/EDS) to proxyless gRPC "
                       "clients; use the mTLS port (--listen) with an SVID");
    } else {
        md_call_finish(c, GRPC_STATUS_UNIMPLEMENTED,
                       "meshd's plaintext xDS port serves State-of-the-World ADS only "
                       "(StreamAggregatedResources); Delta xDS is served on the mTLS port");
    }
    return 1;
}

/* ---- streams -------------------------------------------------------------------------- */

static int refuse_locked(md_call *c, grpc_status_code code, const char *claim, const char *msg)
{
    /* Node.id is all a plaintext client has: a claim, never an actor. */
    md_audit_refusal_as(c->ctx, STORE_AUDIT_UNAUTHENTICATED, claim, c->peer_addr, "xds.denied",
                        "plaintext ADS", msg);
    md_call_finish_locked(c, code, msg);
    return MESH_EPERM;
}

/* "<SPIFFE ID>#<instance>": replicas sharing an identity name themselves apart,
 * so each has its own proxy-status row. SPIFFE IDs cannot contain '#'. */
static int valid_instance(const char *inst)
{
    size_t n = strlen(inst);
    if (n == 0 || n > MD_PROXYLESS_INSTANCE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = inst[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-' || ch == ':'))
            return 0;
    }
    return 1;
}

/* First request: Node.id must be a SPIFFE ID of meshd's trust domain, optionally
 * followed by #<instance>. Whether it is registered is the worker's check (it
 * needs the store). */
static int settle_identity_locked(md_call *c, const ads_decoded *d)
{
    md_ctx *ctx = c->ctx;
    md_stream *s = c->stream;
    const char *node = d->has_node ? d->node_id : "";
    char msg[700];
    if (node[0] == '\0')
        return refuse_locked(c, GRPC_STATUS_UNAUTHENTICATED, NULL,
                             "the first request on meshd's plaintext xDS port must carry Node.id "
                             "= the client's SPIFFE ID (optionally #<instance>), registered with "
                             "'meshctl workload add'");
    char id[sizeof c->spiffe_id];
    const char *hash = strchr(node, '#');
    size_t id_len = hash ? (size_t)(hash - node) : strlen(node);
    if (hash != NULL && !valid_instance(hash + 1))
        return refuse_locked(c, GRPC_STATUS_UNAUTHENTICATED, node,
                             "Node.id: the part after '#' names the instance: 1 to 128 letters, "
                             "digits, '.', '_', '-' or ':'");
    spiffe_id_parts parts;
    mesh_err err = {0};
    int prc;
    if (id_len >= sizeof id) {
        prc = mesh_err_set(&err, MESH_EINVAL, "longer than %zu bytes", sizeof id - 1);
    } else {
        memcpy(id, node, id_len);
        id[id_len] = '\0';
        prc = spiffe_id_parse(id, &parts, &err);
    }
    if (prc != MESH_OK) {
        snprintf(msg, sizeof msg, "Node.id is not a usable SPIFFE ID (%s); set the bootstrap's "
                 "node.id to the client's SPIFFE ID, optionally followed by #<instance>",
                 err.msg);
        return refuse_locked(c, GRPC_STATUS_UNAUTHENTICATED, node, msg);
    }
    if (strcmp(parts.trust_domain, ctx->trust_domain) != 0) {
        snprintf(msg, sizeof msg, "Node.id is in trust domain \"%.255s\"; meshd serves \"%.255s\"",
                 parts.trust_domain, ctx->trust_domain);
        return refuse_locked(c, GRPC_STATUS_PERMISSION_DENIED, node, msg);
    }
    size_t len = strlen(MD_PROXYLESS_KEY_PREFIX) + strlen(id) + 1;
    char *key = malloc(len);
    md_job *j = calloc(1, sizeof *j);
    if (key == NULL || j == NULL) {
        free(key);
        free(j);
        md_call_finish_locked(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "meshd is out of memory");
        return MESH_ENOMEM;
    }
    snprintf(key, len, "%s%s", MD_PROXYLESS_KEY_PREFIX, id);
    snprintf(c->spiffe_id, sizeof c->spiffe_id, "%s", id);
    ads_state_init(&s->st, id, ctx->trust_domain);   /* nothing was applied to it yet */
    s->view_key = key;
    /* Registered only now: the watcher reads spiffe_id and the view key of
     * registered calls without their mutex. */
    size_t held = 0;
    if (md_registry_admit(ctx, c, &held) != MESH_OK) {
        free(j);
        snprintf(msg, sizeof msg,
                 "%.300s already holds %zu xDS streams on meshd, its limit "
                 "(--max-streams-per-identity %zu); close streams it no longer uses",
                 id, held, ctx->opts.max_streams_per_identity);
        log_warn("meshd", "proxyless stream from %s refused: %s", c->peer_addr, msg);
        md_call_finish_locked(c, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
        return MESH_EBUSY;
    }
    md_registry_add(ctx, c);
    j->kind = MD_JOB_STREAM_INIT;
    md_call_ref(c);
    j->call = c;
    if (md_work_submit_locked(ctx, j) != MESH_OK) {   /* j freed */
        md_call_finish_locked(c, GRPC_STATUS_UNAVAILABLE, "meshd is shutting down");
        return MESH_EBUSY;
    }
    return MESH_OK;
}

int md_proxyless_on_request_locked(md_call *c, const ads_decoded *d)
{
    if (c->stream->view_key == NULL) {
        int rc = settle_identity_locked(c, d);
        if (rc != MESH_OK)
            return rc;
    }
    if (d->req.type_url != NULL && strcmp(d->req.type_url, XDS_TYPE_URL_SECRET) == 0)
        return refuse_locked(c, GRPC_STATUS_PERMISSION_DENIED, c->spiffe_id,
                             "secrets are never served on meshd's plaintext xDS port; a client "
                             "that needs SDS connects to the mTLS port with its SVID");
    return MESH_OK;
}

void md_job_proxyless_init(md_worker *w, md_job *j)
{
    md_call *c = j->call;
    md_ctx *ctx = w->ctx;
    pthread_mutex_lock(&c->mu);
    int gone = c->closed || c->finishing;
    pthread_mutex_unlock(&c->mu);
    if (gone)
        return;
    /* Any registration of the identity will do (an instance or the identity
     * as a whole): on this port the instance is only a claim anyway. */
    int64_t n_reg = 0;
    mesh_err err = {0};
    int rc = store_registration_count(w->st, c->spiffe_id, &n_reg, &err);
    if (rc == MESH_OK && n_reg == 0)
        rc = MESH_ENOTFOUND;
    if (rc != MESH_OK) {
        char msg[2 * sizeof c->spiffe_id + 100];
        pthread_mutex_lock(&c->mu);
        if (rc == MESH_ENOTFOUND) {
            snprintf(msg, sizeof msg, "Node.id %s is not a registered identity; register it "
                     "with 'meshctl workload add NAME --id %s'", c->spiffe_id, c->spiffe_id);
            refuse_locked(c, GRPC_STATUS_PERMISSION_DENIED, c->spiffe_id, msg);
        } else {
            log_warn("meshd", "proxyless stream of %s: reading its registration: %s",
                     c->spiffe_id, err.msg);
            md_call_finish_locked(c, GRPC_STATUS_UNAVAILABLE,
                                  "meshd cannot read its store right now; retry with backoff");
        }
        pthread_mutex_unlock(&c->mu);
        return;
    }
    uint64_t cfg_gen = 0;
    md_snap *snap = md_cache_snapshot(ctx, md_call_view_key(c), &cfg_gen);
    pthread_mutex_lock(&c->mu);
    if (!c->closed && !c->finishing) {
        /* Ready without secrets: this stream never has any. */
        c->stream->view_ready = 1;
        md_view_update u = {.set_snap = 1, .snap = snap, .cfg_gen = cfg_gen};
        md_stream_update_locked(c, &u);
        snap = u.snap;   /* NULL: taken over */
    }
    pthread_mutex_unlock(&c->mu);
    if (snap)
        md_snap_unref(snap);
    log_info("meshd", "proxyless stream of %s (%s) served%s", c->spiffe_id, c->peer_addr,
             cfg_gen ? "" : "; no mesh config loaded yet");
}

/* ---- cache keys ----------------------------------------------------------------------- */

const char *md_call_view_key(const md_call *c)
{
    if (c->stream != NULL && c->stream->view_key != NULL)
        return c->stream->view_key;
    return c->spiffe_id;
}

const char *md_proxyless_key_id(const char *key)
{
    size_t n = strlen(MD_PROXYLESS_KEY_PREFIX);
    if (key == NULL || strncmp(key, MD_PROXYLESS_KEY_PREFIX, n) != 0)
        return NULL;
    return key + n;
}
