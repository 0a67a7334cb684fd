/* sidecar/http_wire.c — serialising heads and bodies (see http_wire.h). */
#include "sidecar/http_wire.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool dp_wire_hop_by_hop(const char *name, size_t len)
{
    static const char *const hop[] = {
        "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding",
        "upgrade", "trailer", "proxy-authenticate", "proxy-authorization", "expect",
        "content-length",
    };
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (strlen(hop[i]) == len && strncasecmp(hop[i], name, len) == 0)
            return true;
    return false;
}

static bool name_is(const dp_http_header *x, const char *n)
{
    size_t l = strlen(n);
    return x->name_len == l && strncasecmp(x->name, n, l) == 0;
}

/* Header names listed in Connection: are hop-by-hop for this message too. */
static bool named_by_connection(const dp_http_head *h, const dp_http_header *x)
{
    char name[128];
    if (x->name_len >= sizeof name)
        return false;
    memcpy(name, x->name, x->name_len);
    name[x->name_len] = '\0';
    return dp_http_head_has_token(h, "connection", name);
}

bool dp_wire_mesh_owned(const char *name, size_t len)
{
    return dp_h1_name_like(name, len, "x-forwarded-client-cert") ||
           dp_h1_name_like(name, len, "x-request-id") ||
           dp_h1_name_like(name, len, "x-forwarded-proto");
}

/* The only field line named exactly `name` (any case), NULL if there is
 * none or several, or if a look-alike spelling ('_' for '-') is present. */
static const dp_http_header *single(const dp_http_head *h, const char *name)
{
    const dp_http_header *found = NULL;
    for (size_t i = 0; i < h->n; i++) {
        const dp_http_header *x = &h->view[i];
        if (!dp_h1_name_like(x->name, x->name_len, name))
            continue;
        if (found || !name_is(x, name))
            return NULL;
        found = x;
    }
    return found;
}

bool dp_wire_client_request_id(const dp_http_head *h, char *out, size_t len)
{
    const dp_http_header *x = single(h, "x-request-id");
    if (!x || x->value_len == 0 || x->value_len >= len)
        return false;
    for (size_t i = 0; i < x->value_len; i++)
        if ((unsigned char)x->value[i] < 0x21 || (unsigned char)x->value[i] > 0x7e)
            return false;
    memcpy(out, x->value, x->value_len);
    out[x->value_len] = '\0';
    return true;
}

const char *dp_wire_forwarded_proto(const dp_http_head *h, bool inbound)
{
    const dp_http_header *x = single(h, "x-forwarded-proto");
    if (x && x->value_len == 4 && strncasecmp(x->value, "http", 4) == 0)
        return "http";
    if (x && x->value_len == 5 && strncasecmp(x->value, "https", 5) == 0)
        return "https";
    return inbound ? "https" : "http";
}

/* The end-to-end fields; returns how many were written, -1 on failure. */
static int add_headers(struct evbuffer *out, const dp_http_head *h, bool drop_mesh_owned)
{
    int lines = 0;
    for (size_t i = 0; i < h->n; i++) {
        const dp_http_header *x = &h->view[i];
        if (dp_wire_hop_by_hop(x->name, x->name_len) || named_by_connection(h, x))
            continue;
        /* Sanitize-and-set, like Envoy's sidecar default: a caller cannot
         * forge the identity, request id or protocol the next hop sees. */
        if (drop_mesh_owned && dp_wire_mesh_owned(x->name, x->name_len))
            continue;
        if (evbuffer_add_printf(out, "%.*s: %.*s\r\n", (int)x->name_len, x->name,
                                (int)x->value_len, x->value) < 0)
            return -1;
        lines++;
    }
    return lines;
}

int dp_wire_request_head(struct evbuffer *out, const dp_http_head *h, const dp_wire_req_opts *o)
{
    size_t ul;
    const char *url = dp_http_head_url(h, &ul);
    if (evbuffer_add_printf(out, "%s %.*s HTTP/1.1\r\n",
                            http_method_str((enum http_method)h->method), (int)ul, url) < 0)
        return -1;
    const char *proto = o->forwarded_proto ? o->forwarded_proto
                                           : dp_wire_forwarded_proto(h, o->inbound);
    int lines = add_headers(out, h, true);
    if (lines < 0)
        return -1;
    if (h->chunked) {
        evbuffer_add_printf(out, "transfer-encoding: chunked\r\n");
        lines++;
    } else if (h->has_length) {
        evbuffer_add_printf(out, "content-length: %llu\r\n",
                            (unsigned long long)h->content_length);
        lines++;
    }
    if (o->request_id) {
        evbuffer_add_printf(out, "x-request-id: %s\r\n", o->request_id);
        lines++;
    }
    evbuffer_add_printf(out, "x-forwarded-proto: %s\r\n", proto);
    lines++;
    if (o->inbound && o->own_id && o->peer_id) {
        evbuffer_add_printf(out, "x-forwarded-client-cert: By=%s;URI=%s\r\n", o->own_id,
                            o->peer_id);
        lines++;
    }
    return evbuffer_add(out, "\r\n", 2) == 0 ? lines : -1;
}

int dp_wire_response_head(struct evbuffer *out, const dp_http_head *h, bool is_head_req,
                          bool client_http10, bool *keep_alive, bool *chunked_out)
{
    size_t rl;
    const char *reason = dp_http_head_reason(h, &rl);
    if (rl == 0) {
        reason = http_status_str((enum http_status)h->status);
        rl = strlen(reason);
    }
    if (evbuffer_add_printf(out, "HTTP/1.1 %d %.*s\r\n", h->status, (int)rl, reason) < 0)
        return -1;
    if (add_headers(out, h, false) < 0)
        return -1;
    bool no_body = is_head_req || h->status == 204 || h->status == 304 ||
                   (h->status >= 100 && h->status < 200);
    *chunked_out = false;
    if (no_body) {
        /* HEAD: Content-Length tells the size the GET would have had. */
        if (h->has_length && h->status != 204)
            evbuffer_add_printf(out, "content-length: %llu\r\n",
                                (unsigned long long)h->content_length);
    } else if (h->has_length && !h->chunked) {
        evbuffer_add_printf(out, "content-length: %llu\r\n",
                            (unsigned long long)h->content_length);
    } else if (!client_http10) {
        evbuffer_add_printf(out, "transfer-encoding: chunked\r\n");
        *chunked_out = true;
    } else {
        *keep_alive = false;    /* HTTP/1.0 client: the close delimits the body */
    }
    if (!*keep_alive)
        evbuffer_add_printf(out, "connection: close\r\n");
    else if (client_http10)
        evbuffer_add_printf(out, "connection: keep-alive\r\n");
    return evbuffer_add(out, "\r\n", 2);
}

int dp_wire_local_reply(struct evbuffer *out, int code, const char *body, bool is_head_req,
                        bool keep_alive, bool client_http10, const char *request_id)
{
    return dp_wire_local_reply_ex(out, code, body, is_head_req, keep_alive, client_http10,
                                  request_id, NULL);
}

int dp_wire_local_reply_ex(struct evbuffer *out, int code, const char *body, bool is_head_req,
                           bool keep_alive, bool client_http10, const char *request_id,
                           const char *extra_field)
{
    size_t bl = strlen(body);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\n"
                        "content-length: %zu\r\n", code,
                        http_status_str((enum http_status)code), bl + 1);
    if (request_id && *request_id)
        evbuffer_add_printf(out, "x-request-id: %s\r\n", request_id);
    if (extra_field)
        evbuffer_add_printf(out, "%s\r\n", extra_field);
    if (!keep_alive)
        evbuffer_add_printf(out, "connection: close\r\n");
    else if (client_http10)
        evbuffer_add_printf(out, "connection: keep-alive\r\n");
    evbuffer_add(out, "\r\n", 2);
    if (!is_head_req) {
        evbuffer_add(out, body, bl);
        evbuffer_add(out, "\n", 1);
    }
    return 0;
}

int dp_wire_chunk(struct evbuffer *out, const char *data, size_t len)
{
    if (len == 0)
        return evbuffer_add(out, "0\r\n\r\n", 5);
    if (evbuffer_add_printf(out, "%zx\r\n", len) < 0 || evbuffer_add(out, data, len) < 0)
        return -1;
    return evbuffer_add(out, "\r\n", 2);
}

void dp_wire_request_id(dp_rng *rng, char out[37])
{
    uint64_t a = dp_rng_next(rng), b = dp_rng_next(rng);
    unsigned char u[16];
    for (int i = 0; i < 8; i++) {
        u[i] = (unsigned char)(a >> (8 * i));
        u[8 + i] = (unsigned char)(b >> (8 * i));
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);   /* version 4 */
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
}
