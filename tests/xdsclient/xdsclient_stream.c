/* tests/xdsclient/xdsclient_stream.c — the client's channels, unary calls and xDS streams.
 *
 * One completion queue, one thread: every stream keeps a receive posted and
 * a FIFO of requests with at most one send in flight, like the server. Each
 * response is printed as one JSON line:
 *   {"stream":0,"t_ms":12,"type":"LDS","version":"..","nonce":"..","count":2,
 *    "resources":["a","b"],"reply":"ack"}
 * plus, for secrets, what the Secret holds (serial, SPIFFE ID, expiry and
 * whether the certificate matches our private key). Delta streams
 * (--delta) share the plumbing; their requests, responses and JSON lines are
 * tests/xdsclient/xdsclient_delta.c. */
#include "tests/xdsclient/xdsclient.h"

#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "ca/csr.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "sds/protocol/ads_codec.h"
#include "common/mgrpc.h"
#include "common/xds_wire.h"

grpc_channel *xcl_channel(const xcl_opts *o, const char *roots, const char *key_pem,
                          const char *chain_pem, int local_pool)
{
    grpc_ssl_pem_key_cert_pair pair = {.private_key = key_pem, .cert_chain = chain_pem};
    grpc_channel_credentials *creds =
        grpc_ssl_credentials_create_ex(roots, key_pem ? &pair : NULL, NULL, NULL);
    grpc_arg args[3];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_STRING;
    args[0].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[0].value.string = "meshd";
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = XDS_WIRE_MAX_MESSAGE;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[2].value.integer = 1;
    grpc_channel_args ca = {.num_args = local_pool ? 3 : 2, .args = args};
    grpc_channel *ch = grpc_channel_create(o->server, creds, &ca);
    grpc_channel_credentials_release(creds);
    return ch;
}

static char *slice_str(grpc_slice s)
{
    size_t n = GRPC_SLICE_LENGTH(s);
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, GRPC_SLICE_START_PTR(s), n);
        out[n] = '\0';
    }
    return out;
}

int xcl_unary(grpc_channel *ch, const char *method, const uint8_t *req, size_t len,
              const grpc_metadata *md, size_t n_md, int64_t timeout_ms, uint8_t **resp,
              size_t *resp_len, grpc_status_code *status, char **details, mesh_err *err)
{
    *resp = NULL;
    *resp_len = 0;
    *status = GRPC_STATUS_UNKNOWN;
    *details = NULL;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline = mgrpc_deadline_ms(timeout_ms);
    grpc_slice m = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m, NULL,
                                               deadline, NULL);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        grpc_call_unref(call);
        grpc_completion_queue_shutdown(cq);
        grpc_completion_queue_destroy(cq);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    memcpy(copy, req, len);
    grpc_byte_buffer *send = mgrpc_buffer_take(copy, len);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array init_md, trail_md;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    grpc_slice det = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = (grpc_metadata *)md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = status;
    ops[5].data.recv_status_on_client.status_details = &det;
    int rc = MESH_OK;
    if (grpc_call_start_batch(call, ops, 6, (void *)1, NULL) != GRPC_CALL_OK) {
        rc = mesh_err_set(err, MESH_EINTERNAL, "cannot start the %s call", method);
    } else {
        grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        *details = slice_str(det);
        if (recv)
            rc = mgrpc_buffer_to_bytes(recv, resp, resp_len, err);
    }
    if (recv)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(det);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    return rc;
}

/* ---- streams --------------------------------------------------------------------------- */

enum { TAG_START = 1, TAG_RECV, TAG_SEND, TAG_STATUS };

typedef struct xcl_stream xcl_stream;

typedef struct xcl_tag {
    int kind;
    xcl_stream *s;
} xcl_tag;

typedef struct xcl_out {
    struct xcl_out *next;
    grpc_byte_buffer *bb;
} xcl_out;

struct xcl_stream {
    int idx;
    grpc_channel *ch;
    grpc_call *call;
    xcl_tag t_start, t_recv, t_send, t_status;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *recv_buf;
    xcl_out *q_head, *q_tail;
    grpc_byte_buffer *inflight;
    int pending;                  /* batches in flight */
    int done;                     /* status received */
    int node_sent;
    long nacks;
    char acked[ADS_T_COUNT][64];
    unsigned responses;
    xcl_delta *delta;             /* --delta streams */
    int64_t retry_at;             /* --retry: re-open at this time (0 = not waiting) */
    int backoff_ms;               /* --retry: the next delay before jitter */
};

typedef struct xcl_run {
    const xcl_opts *o;
    const xcl_identity *id;
    grpc_completion_queue *cq;
    xcl_stream *streams;
    int n;
    long total;
    int done_count;
    int64_t t0;
    long by_type[ADS_T_COUNT];
    int64_t first_ms, last_ms;
    int bad_status;
    long retries;
    int retry_pending;            /* streams waiting to re-open (the loop scans only then) */
    unsigned rng;                 /* --retry jitter (rand_r) */
} xcl_run;

static int start_batch(xcl_stream *s, const grpc_op *ops, size_t n, xcl_tag *tag)
{
    if (grpc_call_start_batch(s->call, ops, n, tag, NULL) != GRPC_CALL_OK) {
        fprintf(stderr, "mesh-xdsclient: stream %d: start_batch failed\n", s->idx);
        return -1;
    }
    s->pending++;
    return 0;
}

static void kick(xcl_stream *s)
{
    if (s->inflight || !s->q_head || s->done)
        return;
    xcl_out *o = s->q_head;
    s->q_head = o->next;
    if (!s->q_head)
        s->q_tail = NULL;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = o->bb;
    s->inflight = o->bb;
    free(o);
    if (start_batch(s, &op, 1, &s->t_send) != 0) {
        grpc_byte_buffer_destroy(s->inflight);
        s->inflight = NULL;
    }
}

static void enqueue(xcl_stream *s, uint8_t *buf, size_t len)
{
    xcl_out *o = calloc(1, sizeof *o);
    if (!o) {
        free(buf);
        return;
    }
    o->bb = mgrpc_buffer_take(buf, len);
    if (s->q_tail)
        s->q_tail->next = o;
    else
        s->q_head = o;
    s->q_tail = o;
    kick(s);
}

static const xcl_sub *sub_for(const xcl_opts *o, enum ads_type t)
{
    for (int i = 0; i < o->n_subs; i++)
        if (o->subs[i].type == t)
            return &o->subs[i];
    return NULL;
}

/* Delta requests go through here (xcl_send_fn). */
static void stream_send(void *stream, uint8_t *buf, size_t len)
{
    enqueue(stream, buf, len);
}

void xcl_node_id(const xcl_opts *o, const xcl_identity *id, int idx, int n, char *buf, size_t len)
{
    if (o->node_id && n == 1)
        snprintf(buf, len, "%s", o->node_id);
    else if (o->node_id)
        snprintf(buf, len, "%s-%d", o->node_id, idx);
    else
        snprintf(buf, len, "%s~xdsclient-%d", id->spiffe_id, idx);
}

static void send_request(xcl_run *r, xcl_stream *s, enum ads_type t, const char *version,
                         const char *nonce, const char *error)
{
    const xcl_sub *sub = sub_for(r->o, t);
    char node[600];
    const char *node_id = NULL;
    if (!s->node_sent) {
        xcl_node_id(r->o, r->id, s->idx, r->n, node, sizeof node);
        node_id = node;
        s->node_sent = 1;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    mesh_err err = {0};
    if (ads_request_encode(ads_type_url(t), version, nonce,
                           sub ? (const char *const *)sub->names : NULL, sub ? sub->n : 0,
                           node_id, error, &buf, &len, &err) != MESH_OK) {
        fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
        return;
    }
    enqueue(s, buf, len);
}

/* --sotw-state: one "TYPE<TAB>VERSION" line per type held (short type
 * names), like a sidecar's persisted versions. A missing file holds nothing. */
static void sotw_state_load(const xcl_opts *o, xcl_stream *s)
{
    char *data = NULL;
    size_t len = 0;
    mesh_err err = {0};
    if (!o->sotw_state || access(o->sotw_state, F_OK) != 0)
        return;
    if (xcl_read_file(o->sotw_state, &data, &len, &err) != MESH_OK) {
        fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
        return;
    }
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        enum ads_type t;
        if (!tab)
            continue;
        *tab = '\0';
        if (ads_type_parse(line, &t) == 0)
            snprintf(s->acked[t], sizeof s->acked[t], "%s", tab + 1);
    }
    free(data);
}

static void sotw_state_save(const xcl_opts *o, const xcl_stream *s)
{
    if (!o->sotw_state)
        return;
    char buf[ADS_T_COUNT * 96];
    size_t off = 0;
    for (int t = 0; t < ADS_T_COUNT; t++)
        if (s->acked[t][0])
            off += (size_t)snprintf(buf + off, sizeof buf - off, "%s\t%s\n",
                                    ads_type_name((enum ads_type)t), s->acked[t]);
    mesh_err err = {0};
    if (xcl_write_file(o->sotw_state, buf, off, 0644, &err) != MESH_OK)
        fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
}

/* Field 1 (a string) of a serialized message: the resource name for every
 * xDS type we serve (Listener, Cluster, RouteConfiguration, Secret .name;
 * ClusterLoadAssignment .cluster_name). */
static void field1_string(const uint8_t *p, size_t len, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t i = 0;
    while (i < len) {
        uint64_t key = 0;
        int shift = 0;
        while (i < len && shift < 64) {
            key |= (uint64_t)(p[i] & 0x7f) << shift;
            shift += 7;
            if (!(p[i++] & 0x80))
                break;
        }
        uint64_t wt = key & 7, field = key >> 3;
        uint64_t v = 0;
        shift = 0;
        if (wt == 0 || wt == 2) {
            while (i < len && shift < 64) {
                v |= (uint64_t)(p[i] & 0x7f) << shift;
                shift += 7;
                if (!(p[i++] & 0x80))
                    break;
            }
        }
        if (wt == 2) {
            if (v > len - i)
                return;
            if (field == 1) {
                size_t n = v < outlen - 1 ? (size_t)v : outlen - 1;
                memcpy(out, p + i, n);
                out[n] = '\0';
                return;
            }
            i += (size_t)v;
        } else if (wt == 1) {
            i += 8;
        } else if (wt == 5) {
            i += 4;
        } else if (wt != 0) {
            return;
        }
    }
}

static size_t count_certs(const uint8_t *p, size_t n)
{
    size_t c = 0;
    const char *tag = "-----BEGIN CERTIFICATE-----";
    size_t tl = strlen(tag);
    for (size_t i = 0; i + tl <= n; i++)
        if (memcmp(p + i, tag, tl) == 0)
            c++;
    return c;
}

void xcl_describe_secret(const xcl_identity *id, const uint8_t *data, size_t len, char *buf,
                         size_t cap, size_t *off)
{
    Envoy__Extensions__TransportSockets__Tls__V3__Secret *sec =
        envoy__extensions__transport_sockets__tls__v3__secret__unpack(NULL, len, data);
    if (!sec) {
        *off += (size_t)snprintf(buf + *off, cap - *off, "{\"error\":\"undecodable Secret\"}");
        return;
    }
    *off += (size_t)snprintf(buf + *off, cap - *off, "{\"name\":");
    xcl_json_str(buf, cap, off, sec->name);
    const Envoy__Config__Core__V3__DataSource *ds = NULL;
    if (sec->type_case ==
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE &&
        sec->tls_certificate) {
        ds = sec->tls_certificate->certificate_chain;
        int has_key = sec->tls_certificate->private_key != NULL;
        char *pem = NULL;
        if (ds && ds->specifier_case ==
                      ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES) {
            pem = malloc(ds->inline_bytes.len + 1);
            if (pem) {
                memcpy(pem, ds->inline_bytes.data, ds->inline_bytes.len);
                pem[ds->inline_bytes.len] = '\0';
            }
        } else if (ds && ds->specifier_case ==
                             ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING) {
            pem = strdup(ds->inline_string);
        }
        X509 *x = NULL;
        mesh_err err = {0};
        char sid[512] = "", serial[48] = "";
        int64_t nb = 0, na = 0;
        if (pem && pem_read_cert(pem, &x, &err) == MESH_OK) {
            cert_spiffe_id(x, sid, sizeof sid, &err);
            cert_serial_hex(x, serial, sizeof serial, &err);
            cert_validity(x, &nb, &na, &err);
        }
        *off += (size_t)snprintf(buf + *off, cap - *off,
                                 ",\"kind\":\"tls_certificate\",\"certs\":%zu,\"serial\":\"%s\","
                                 "\"spiffe_id\":",
                                 pem ? count_certs((const uint8_t *)pem, strlen(pem)) : 0,
                                 serial);
        xcl_json_str(buf, cap, off, sid);
        *off += (size_t)snprintf(buf + *off, cap - *off,
                                 ",\"not_after\":%lld,\"key_match\":%s,\"has_private_key\":%s}",
                                 (long long)na,
                                 x && id->key && cert_key_matches(x, id->key) ? "true" : "false",
                                 has_key ? "true" : "false");
        X509_free(x);
        free(pem);
    } else if (sec->type_case ==
                   ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT &&
               sec->validation_context) {
        ds = sec->validation_context->trusted_ca;
        size_t n = 0;
        if (ds && ds->specifier_case ==
                      ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES)
            n = count_certs(ds->inline_bytes.data, ds->inline_bytes.len);
        else if (ds && ds->specifier_case ==
                           ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING)
            n = count_certs((const uint8_t *)ds->inline_string, strlen(ds->inline_string));
        *off += (size_t)snprintf(buf + *off, cap - *off,
                                 ",\"kind\":\"validation_context\",\"certs\":%zu}", n);
    } else {
        *off += (size_t)snprintf(buf + *off, cap - *off, ",\"kind\":\"other\"}");
    }
    envoy__extensions__transport_sockets__tls__v3__secret__free_unpacked(sec, NULL);
}

static void dump(xcl_run *r, xcl_stream *s, const char *tname, const uint8_t *p, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%03d-%04u-%s.pb", r->o->dump_dir, s->idx, s->responses,
             tname);
    mesh_err err = {0};
    if (xcl_write_file(path, p, len, 0644, &err) != MESH_OK)
        fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
}

/* Counts one response; returns its time since the start. */
static int64_t count_response(xcl_run *r, xcl_stream *s)
{
    int64_t t = xcl_now_ms() - r->t0;
    s->responses++;
    r->total++;
    if (!r->first_ms)
        r->first_ms = t ? t : 1;
    r->last_ms = t;
    return t;
}

static void on_delta_response(xcl_run *r, xcl_stream *s, const uint8_t *p, size_t len)
{
    int64_t t = count_response(r, s);
    int type = xcl_delta_on_response(s->delta, p, len, t, s->responses, stream_send, s);
    if (type >= 0)
        r->by_type[type]++;
}

static void on_response(xcl_run *r, xcl_stream *s, const uint8_t *p, size_t len)
{
    const xcl_opts *o = r->o;
    int64_t t = count_response(r, s);
    Envoy__Service__Discovery__V3__DiscoveryResponse *m =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, p);
    if (!m) {
        printf("{\"stream\":%d,\"t_ms\":%lld,\"error\":\"undecodable DiscoveryResponse\"}\n",
               s->idx, (long long)t);
        return;
    }
    enum ads_type type;
    int known = ads_type_parse(m->type_url, &type) == 0;
    const char *tname = known ? ads_type_name(type) : "UNKNOWN";
    if (known)
        r->by_type[type]++;
    if (o->dump_dir)
        dump(r, s, tname, p, len);
    const char *reply = "none";
    if (known && !o->no_ack) {
        if (o->nack_type == (int)type && (o->nack_count < 0 || s->nacks < o->nack_count)) {
            s->nacks++;
            reply = "nack";
            send_request(r, s, type, s->acked[type], m->nonce,
                         "mesh-xdsclient: rejected by --nack-type");
        } else {
            reply = "ack";
            snprintf(s->acked[type], sizeof s->acked[type], "%s", m->version_info);
            send_request(r, s, type, m->version_info, m->nonce, NULL);
            sotw_state_save(o, s);
        }
    }
    if (!o->quiet && !o->summary) {
        size_t cap = 64 * 1024, off = 0;
        char *buf = malloc(cap);
        if (buf) {
            /* wall_ms: Unix milliseconds at receipt, so a test can measure push
             * convergence across processes (several clients, several meshd). */
            struct timespec wall;
            clock_gettime(CLOCK_REALTIME, &wall);
            off += (size_t)snprintf(buf, cap, "{\"stream\":%d,\"t_ms\":%lld,\"wall_ms\":%lld,"
                                              "\"type\":\"%s\",\"type_url\":",
                                    s->idx, (long long)t,
                                    (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000,
                                    tname);
            xcl_json_str(buf, cap, &off, m->type_url);
            off += (size_t)snprintf(buf + off, cap - off, ",\"version\":");
            xcl_json_str(buf, cap, &off, m->version_info);
            off += (size_t)snprintf(buf + off, cap - off, ",\"nonce\":");
            xcl_json_str(buf, cap, &off, m->nonce);
            off += (size_t)snprintf(buf + off, cap - off, ",\"count\":%zu,\"resources\":[",
                                    m->n_resources);
            for (size_t i = 0; i < m->n_resources && off + 600 < cap; i++) {
                char name[512];
                field1_string(m->resources[i]->value.data, m->resources[i]->value.len, name,
                              sizeof name);
                if (i)
                    buf[off++] = ',';
                xcl_json_str(buf, cap, &off, name);
            }
            off += (size_t)snprintf(buf + off, cap - off, "]");
            if (known && type == ADS_T_SDS) {
                off += (size_t)snprintf(buf + off, cap - off, ",\"secrets\":[");
                for (size_t i = 0; i < m->n_resources && off + 2000 < cap; i++) {
                    if (i)
                        buf[off++] = ',';
                    xcl_describe_secret(r->id, m->resources[i]->value.data,
                                        m->resources[i]->value.len, buf, cap, &off);
                }
                off += (size_t)snprintf(buf + off, cap - off, "]");
            }
            if (m->control_plane) {
                off += (size_t)snprintf(buf + off, cap - off, ",\"control_plane\":");
                xcl_json_str(buf, cap, &off, m->control_plane->identifier);
            }
            snprintf(buf + off, cap - off, ",\"reply\":\"%s\"}", reply);
            printf("%s\n", buf);
            fflush(stdout);
            free(buf);
        }
    }
    envoy__service__discovery__v3__discovery_response__free_unpacked(m, NULL);
}

/* --resubscribe N: N pairs of "unsubscribe" (no names) and "subscribe again"
 * requests for the first by-name type. meshd answers every re-subscription
 * with a fresh response (the type's sent state is forgotten on unsubscribe),
 * so a client that also does not read makes meshd queue N responses. */
static void resubscribe(xcl_run *r, xcl_stream *s)
{
    const xcl_opts *o = r->o;
    const xcl_sub *sub = NULL;
    for (int i = 0; i < o->n_subs && !sub; i++) {
        enum ads_type t = o->subs[i].type;
        if ((t == ADS_T_RDS || t == ADS_T_EDS || t == ADS_T_SDS) && o->subs[i].n > 0 &&
            (o->mode != XCL_SDS || t == ADS_T_SDS))
            sub = &o->subs[i];
    }
    if (!sub) {
        fprintf(stderr, "mesh-xdsclient: --resubscribe needs a --sub of rds, eds or sds with "
                        "names\n");
        return;
    }
    for (long k = 0; k < o->resubscribe; k++) {
        for (int half = 0; half < 2; half++) {
            uint8_t *buf = NULL;
            size_t len = 0;
            mesh_err err = {0};
            if (ads_request_encode(ads_type_url(sub->type), "", "",
                                   half ? (const char *const *)sub->names : NULL,
                                   half ? sub->n : 0, NULL, NULL, &buf, &len, &err) != MESH_OK) {
                fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
                return;
            }
            enqueue(s, buf, len);
        }
    }
}

static int open_stream(xcl_run *r, xcl_stream *s, grpc_channel *shared)
{
    const xcl_opts *o = r->o;
    s->ch = shared ? shared
                   : xcl_channel(o, r->id->bundle_pem, o->anonymous ? NULL : r->id->key_pem,
                                 r->id->chain_pem, 1);
    const char *method = XDS_METHOD_ADS;
    if (o->method)
        method = o->method;
    else if (o->delta)
        method = o->mode == XCL_SDS ? XDS_METHOD_DELTA_SDS : XDS_METHOD_DELTA_ADS;
    else if (o->mode == XCL_SDS)
        method = XDS_METHOD_SDS;
    s->call = grpc_channel_create_call(s->ch, NULL, GRPC_PROPAGATE_DEFAULTS, r->cq,
                                       grpc_slice_from_static_string(method), NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    s->t_start = (xcl_tag){TAG_START, s};
    s->t_recv = (xcl_tag){TAG_RECV, s};
    s->t_send = (xcl_tag){TAG_SEND, s};
    s->t_status = (xcl_tag){TAG_STATUS, s};
    grpc_metadata_array_init(&s->init_md);
    grpc_metadata_array_init(&s->trail_md);
    s->details = grpc_empty_slice();
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    /* --retry: wait through connection failures (gRPC's own jittered
     * reconnect backoff) instead of failing the call at the first one. */
    if (o->retry)
        ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
    if (start_batch(s, ops, 2, &s->t_start) != 0)
        return -1;
    grpc_op st;
    memset(&st, 0, sizeof st);
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &s->trail_md;
    st.data.recv_status_on_client.status = &s->status;
    st.data.recv_status_on_client.status_details = &s->details;
    if (start_batch(s, &st, 1, &s->t_status) != 0)
        return -1;
    if (!o->no_read) {
        grpc_op rv;
        memset(&rv, 0, sizeof rv);
        rv.op = GRPC_OP_RECV_MESSAGE;
        rv.data.recv_message.recv_message = &s->recv_buf;
        if (start_batch(s, &rv, 1, &s->t_recv) != 0)
            return -1;
    }
    if (o->raw_file || o->raw_size) {
        uint8_t *buf = NULL;
        size_t len = 0;
        mesh_err err = {0};
        if (o->raw_file) {
            char *data = NULL;
            if (xcl_read_file(o->raw_file, &data, &len, &err) != MESH_OK) {
                fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
                return -1;
            }
            buf = (uint8_t *)data;
        } else {
            len = (size_t)o->raw_size;
            buf = malloc(len ? len : 1);
            if (!buf)
                return -1;
            /* 0xff bytes: an invalid protobuf tag, whatever the length. */
            memset(buf, 0xff, len);
        }
        /* With --delta, what comes back is read (and ACKed) as Delta responses. */
        if (o->delta && xcl_delta_new(o, r->id, s->idx, r->n, &s->delta, &err) != MESH_OK) {
            fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
            free(buf);
            return -1;
        }
        enqueue(s, buf, len);
        return 0;
    }
    if (o->delta) {
        mesh_err err = {0};
        if (xcl_delta_new(o, r->id, s->idx, r->n, &s->delta, &err) != MESH_OK) {
            fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
            return -1;
        }
        xcl_delta_start(s->delta, stream_send, s);
        return 0;
    }
    /* A reconnect (Envoy): the first request per type carries the version
     * held and no nonce; meshd answers only types whose version differs. */
    sotw_state_load(o, s);
    for (int i = 0; i < o->n_subs; i++) {
        if (o->mode == XCL_SDS && o->subs[i].type != ADS_T_SDS)
            continue;
        send_request(r, s, o->subs[i].type, s->acked[o->subs[i].type], "", NULL);
    }
    if (o->resubscribe)
        resubscribe(r, s);
    return 0;
}

/* --retry: 1 s doubling to 10 s, each delay x0.5-1.5 at random so that
 * thousands of streams refused together do not come back together. */
static void schedule_retry(xcl_run *r, xcl_stream *s)
{
    if (s->backoff_ms <= 0)
        s->backoff_ms = 1000;
    int64_t d = s->backoff_ms / 2 + (int64_t)(rand_r(&r->rng) % (unsigned)(s->backoff_ms + 1));
    s->retry_at = xcl_now_ms() + d;
    s->backoff_ms = s->backoff_ms >= 5000 ? 10000 : s->backoff_ms * 2;
    r->retries++;
    r->retry_pending++;
}

/* Re-opens a stream whose call ended and whose batches all completed, on
 * the same channel. The versions it ACKed are kept: its first requests
 * carry them, as a sidecar's reconnect does. */
static int reopen_stream(xcl_run *r, xcl_stream *s)
{
    while (s->q_head) {
        xcl_out *n = s->q_head->next;
        grpc_byte_buffer_destroy(s->q_head->bb);
        free(s->q_head);
        s->q_head = n;
    }
    s->q_tail = NULL;
    if (s->call) {
        grpc_call_unref(s->call);
        s->call = NULL;
        grpc_metadata_array_destroy(&s->init_md);
        grpc_metadata_array_destroy(&s->trail_md);
        grpc_slice_unref(s->details);
    }
    xcl_delta_free(s->delta);
    s->delta = NULL;
    s->done = 0;
    s->node_sent = 0;
    s->retry_at = 0;
    r->retry_pending--;
    return open_stream(r, s, s->ch);
}

static void on_event(xcl_run *r, xcl_tag *tag, int ok)
{
    xcl_stream *s = tag->s;
    s->pending--;
    switch (tag->kind) {
    case TAG_START:
        break;
    case TAG_SEND:
        if (s->inflight)
            grpc_byte_buffer_destroy(s->inflight);
        s->inflight = NULL;
        if (ok)
            kick(s);
        break;
    case TAG_RECV: {
        grpc_byte_buffer *bb = s->recv_buf;
        s->recv_buf = NULL;
        if (!ok || !bb)
            break; /* the status follows */
        uint8_t *buf = NULL;
        size_t len = 0;
        mesh_err err = {0};
        if (mgrpc_buffer_to_bytes(bb, &buf, &len, &err) == MESH_OK) {
            if (s->delta)
                on_delta_response(r, s, buf, len);
            else
                on_response(r, s, buf, len);
        }
        free(buf);
        grpc_byte_buffer_destroy(bb);
        grpc_op rv;
        memset(&rv, 0, sizeof rv);
        rv.op = GRPC_OP_RECV_MESSAGE;
        rv.data.recv_message.recv_message = &s->recv_buf;
        start_batch(s, &rv, 1, &s->t_recv);
        break;
    }
    case TAG_STATUS: {
        s->done = 1;
        char *d = slice_str(s->details);
        if (!r->o->quiet)
            xcl_print_status(s->idx, s->status, d);
        free(d);
        if (r->o->retry && s->status != GRPC_STATUS_OK) {
            schedule_retry(r, s);
            break;
        }
        r->done_count++;
        int expected = r->o->expect_status >= 0 ? r->o->expect_status : GRPC_STATUS_OK;
        if ((int)s->status != expected)
            r->bad_status = 1;
        break;
    }
    }
}

static void print_summary(xcl_run *r, const char *why)
{
    printf("{\"event\":\"summary\",\"why\":\"%s\",\"streams\":%d,\"responses\":%ld,"
           "\"ended\":%d,\"retries\":%ld,\"first_ms\":%lld,\"last_ms\":%lld,\"by_type\":{",
           why, r->n, r->total, r->done_count, r->retries, (long long)r->first_ms,
           (long long)r->last_ms);
    for (int t = 0; t < ADS_T_COUNT; t++)
        printf("%s\"%s\":%ld", t ? "," : "", ads_type_name((enum ads_type)t), r->by_type[t]);
    printf("}}\n");
    fflush(stdout);
}

static int run_fetch(const xcl_opts *o, const xcl_identity *id)
{
    const xcl_sub *sub = sub_for(o, ADS_T_SDS);
    uint8_t *req = NULL, *resp = NULL;
    size_t len = 0, resp_len = 0;
    mesh_err err = {0};
    if (ads_request_encode(ads_type_url(ADS_T_SDS), "", "",
                           sub ? (const char *const *)sub->names : NULL, sub ? sub->n : 0,
                           id->spiffe_id, NULL, &req, &len, &err) != MESH_OK) {
        fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
        return 1;
    }
    grpc_channel *ch =
        xcl_channel(o, id->bundle_pem, o->anonymous ? NULL : id->key_pem, id->chain_pem, 0);
    grpc_status_code status;
    char *details = NULL;
    int rc = xcl_unary(ch, XDS_METHOD_FETCH_SDS, req, len, NULL, 0, o->timeout_ms, &resp, &resp_len,
                       &status, &details, &err);
    grpc_channel_destroy(ch);
    free(req);
    int code = 1;
    if (rc != MESH_OK) {
        fprintf(stderr, "mesh-xdsclient: %s\n", err.msg);
    } else if (status != GRPC_STATUS_OK) {
        xcl_print_status(0, status, details);
        code = (o->expect_status >= 0 && (int)status == o->expect_status) ? 0 : 1;
    } else {
        xcl_run r;
        memset(&r, 0, sizeof r);
        xcl_stream s;
        memset(&s, 0, sizeof s);
        xcl_opts quiet_replies = *o;
        quiet_replies.no_ack = 1;
        r.o = &quiet_replies;
        r.id = id;
        r.n = 1;
        r.t0 = xcl_now_ms();
        on_response(&r, &s, resp, resp_len);
        code = o->expect_status >= 0 ? 1 : 0;
    }
    free(details);
    free(resp);
    return code;
}

int xcl_run_streams(const xcl_opts *o, const xcl_identity *id)
{
    if (o->mode == XCL_FETCH)
        return run_fetch(o, id);
    xcl_run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.id = id;
    r.n = o->streams;
    r.t0 = xcl_now_ms();
    r.rng = (unsigned)getpid() ^ (unsigned)r.t0;
    r.cq = grpc_completion_queue_create_for_next(NULL);
    r.streams = calloc((size_t)r.n, sizeof *r.streams);
    if (!r.streams) {
        fprintf(stderr, "mesh-xdsclient: out of memory\n");
        return 1;
    }
    grpc_channel *shared =
        r.n == 1
            ? xcl_channel(o, id->bundle_pem, o->anonymous ? NULL : id->key_pem, id->chain_pem, 0)
            : NULL;
    /* --connections C: C channels of their own (one connection each), the
     * streams dealt out over them round robin. */
    int n_conns = r.n > 1 ? o->connections : 0;
    grpc_channel **conns = n_conns ? calloc((size_t)n_conns, sizeof *conns) : NULL;
    for (int i = 0; i < n_conns && conns; i++)
        conns[i] = xcl_channel(o, id->bundle_pem, o->anonymous ? NULL : id->key_pem,
                               id->chain_pem, 1);
    int code = n_conns && !conns ? 1 : -1;
    for (int i = 0; i < r.n && code < 0; i++) {
        r.streams[i].idx = i;
        if (open_stream(&r, &r.streams[i], conns ? conns[i % n_conns] : shared) != 0) {
            code = 1;
            break;
        }
    }
    const char *why = "error";
    int64_t deadline = r.t0 + o->timeout_ms;
    while (code < 0) {
        int64_t left = deadline - xcl_now_ms();
        if (left <= 0) {
            why = "timeout";
            code = 3;
            fprintf(stderr, "mesh-xdsclient: timed out after %lld ms (%ld responses)\n",
                    (long long)o->timeout_ms, r.total);
            break;
        }
        int64_t now = xcl_now_ms(), wait = left;
        /* Only while some stream waits to re-open: a scan of every stream
         * per event is what a 1,800-stream flood client cannot afford. */
        for (int i = 0; r.retry_pending && i < r.n; i++) {
            xcl_stream *s = &r.streams[i];
            if (!s->retry_at)
                continue;
            if (s->retry_at <= now && s->pending == 0) {
                if (reopen_stream(&r, s) != 0)
                    schedule_retry(&r, s);
            } else if (s->retry_at - now < wait) {
                wait = s->retry_at > now ? s->retry_at - now : 10;
            }
        }
        grpc_event ev = grpc_completion_queue_next(r.cq, mgrpc_deadline_ms(wait), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        on_event(&r, ev.tag, ev.success);
        if (o->exit_after > 0 && r.total >= o->exit_after) {
            why = "exit-after";
            code = 0;
        } else if (r.done_count == r.n) {
            why = "streams-ended";
            code = r.bad_status ? 1 : 0;
        }
    }
    if (o->summary)
        print_summary(&r, why);
    /* Tear down: cancel what is still open and drain every batch. */
    for (int i = 0; i < r.n; i++)
        if (r.streams[i].call && !r.streams[i].done)
            grpc_call_cancel(r.streams[i].call, NULL);
    for (;;) {
        int pending = 0;
        for (int i = 0; i < r.n; i++)
            pending += r.streams[i].pending;
        if (pending == 0)
            break;
        grpc_event ev = grpc_completion_queue_next(r.cq, mgrpc_deadline_ms(5000), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        xcl_tag *tag = ev.tag;
        tag->s->pending--;
        if (tag->kind == TAG_SEND && tag->s->inflight) {
            grpc_byte_buffer_destroy(tag->s->inflight);
            tag->s->inflight = NULL;
        }
        if (tag->kind == TAG_RECV && tag->s->recv_buf) {
            grpc_byte_buffer_destroy(tag->s->recv_buf);
            tag->s->recv_buf = NULL;
        }
    }
    for (int i = 0; i < r.n; i++) {
        xcl_stream *s = &r.streams[i];
        while (s->q_head) {
            xcl_out *n = s->q_head->next;
            grpc_byte_buffer_destroy(s->q_head->bb);
            free(s->q_head);
            s->q_head = n;
        }
        if (s->call) {
            grpc_call_unref(s->call);
            grpc_metadata_array_destroy(&s->init_md);
            grpc_metadata_array_destroy(&s->trail_md);
            grpc_slice_unref(s->details);
        }
        if (s->ch && s->ch != shared && !conns)
            grpc_channel_destroy(s->ch);
        xcl_delta_free(s->delta);
    }
    if (shared)
        grpc_channel_destroy(shared);
    for (int i = 0; i < n_conns && conns; i++)
        grpc_channel_destroy(conns[i]);
    free(conns);
    grpc_completion_queue_shutdown(r.cq);
    while (grpc_completion_queue_next(r.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(r.cq);
    free(r.streams);
    return code;
}
