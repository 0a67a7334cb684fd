/* sds/compiler/xds_compile_pb.c — building blocks of the xDS compiler: the arena that owns
 * every protobuf-c struct of one compile, Any packing, wrappers, addresses, the
 * ADS config source and the SDS-based TLS contexts shared by listeners and
 * clusters. */
#include "sds/compiler/xds_compile_internal.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---------------------------------------------------------------- */

#define XC_BLOCK_SIZE 16384

struct xc_block {
    xc_block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char mem[];
};

void *xc_alloc(xc_arena *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - align)
        return NULL;
    n = (n + align - 1) & ~(align - 1);
    xc_block *b = a->head;
    if (b == NULL || b->cap - b->used < n) {
        /* Big requests get a block of their own so small ones keep filling the current one. */
        size_t cap = n > XC_BLOCK_SIZE ? n : XC_BLOCK_SIZE;
        xc_block *nb = malloc(sizeof *nb + cap);
        if (nb == NULL)
            return NULL;
        nb->used = 0;
        nb->cap = cap;
        if (b != NULL && n > XC_BLOCK_SIZE) {
            nb->next = b->next;   /* keep the partly used block at the head */
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
        }
        b = nb;
    }
    void *p = b->mem + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void *xc_array(xc_arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return xc_alloc(a, n * size);
}

char *xc_printf(xc_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    char *p = xc_alloc(a, (size_t)len + 1);
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return p;
}

void xc_arena_free(xc_arena *a)
{
    xc_block *b = a->head;
    while (b != NULL) {
        xc_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---- well-known types ----------------------------------------------------- */

Google__Protobuf__Any *xc_any(xc_ctx *c, const char *type_url, const ProtobufCMessage *m)
{
    Google__Protobuf__Any *any = xc_alloc(&c->arena, sizeof *any);
    if (any == NULL)
        return xc_oom(c);
    google__protobuf__any__init(any);
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xc_alloc(&c->arena, len);
    if (buf == NULL)
        return xc_oom(c);
    protobuf_c_message_pack(m, buf);
    any->type_url = (char *)type_url;
    any->value.data = buf;
    any->value.len = len;
    return any;
}

Google__Protobuf__Duration *xc_duration_ms(xc_ctx *c, int64_t ms)
{
    Google__Protobuf__Duration *d = xc_alloc(&c->arena, sizeof *d);
    if (d == NULL)
        return xc_oom(c);
    google__protobuf__duration__init(d);
    d->seconds = ms / 1000;
    d->nanos = (int32_t)((ms % 1000) * 1000000);
    return d;
}

Google__Protobuf__UInt32Value *xc_u32(xc_ctx *c, uint32_t v)
{
    Google__Protobuf__UInt32Value *w = xc_alloc(&c->arena, sizeof *w);
    if (w == NULL)
        return xc_oom(c);
    google__protobuf__uint32_value__init(w);
    w->value = v;
    return w;
}

Google__Protobuf__BoolValue *xc_bool(xc_ctx *c, int v)
{
    Google__Protobuf__BoolValue *w = xc_alloc(&c->arena, sizeof *w);
    if (w == NULL)
        return xc_oom(c);
    google__protobuf__bool_value__init(w);
    w->value = v ? 1 : 0;
    return w;
}

/* ---- addresses ------------------------------------------------------------ */

/* Splits "host:port" / "[v6]:port". Returns 0 with host (arena copy, brackets
 * removed) and port, or -1 with a reason. */
static int split_hostport(xc_arena *a, const char *s, char **host, uint32_t *port,
                          const char **why)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL) {
        *why = "expected host:port";
        return -1;
    }
    const char *h = s;
    size_t hlen = (size_t)(colon - s);
    if (hlen > 0 && h[0] == '[') {
        if (hlen < 3 || h[hlen - 1] != ']') {
            *why = "an IPv6 host must be written [addr]:port";
            return -1;
        }
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen) != NULL) {
        *why = "an IPv6 host must be written [addr]:port";
        return -1;
    }
    if (hlen == 0) {
        *why = "empty host";
        return -1;
    }
    const char *p = colon + 1;
    if (*p == '\0') {
        *why = "empty port";
        return -1;
    }
    unsigned long v = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            *why = "port is not a number";
            return -1;
        }
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535) {
            *why = "port is above 65535";
            return -1;
        }
    }
    if (v == 0) {
        *why = "port 0 is not a fixed port";
        return -1;
    }
    char *hc = xc_alloc(a, hlen + 1);
    if (hc == NULL) {
        *why = NULL;
        return -1;
    }
    memcpy(hc, h, hlen);
    *host = hc;
    *port = (uint32_t)v;
    return 0;
}

Envoy__Config__Core__V3__Address *xc_address(xc_ctx *c, const char *hostport, const char *what)
{
    if (hostport == NULL || hostport[0] == '\0') {
        mesh_err_set(c->err, MESH_EINVAL, "xds compile for %s: %s: address is missing",
                     c->spiffe_id, what);
        return NULL;
    }
    char *host;
    uint32_t port;
    const char *why = NULL;
    if (split_hostport(&c->arena, hostport, &host, &port, &why) != 0) {
        if (why == NULL)
            return xc_oom(c);
        mesh_err_set(c->err, MESH_EINVAL, "xds compile for %s: %s: \"%s\": %s", c->spiffe_id,
                     what, hostport, why);
        return NULL;
    }
    Envoy__Config__Core__V3__SocketAddress *sa = xc_alloc(&c->arena, sizeof *sa);
    Envoy__Config__Core__V3__Address *addr = xc_alloc(&c->arena, sizeof *addr);
    if (sa == NULL || addr == NULL)
        return xc_oom(c);
    envoy__config__core__v3__socket_address__init(sa);
    sa->protocol = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PROTOCOL__TCP;
    sa->address = host;
    sa->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    sa->port_value = port;
    envoy__config__core__v3__address__init(addr);
    addr->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    addr->socket_address = sa;
    return addr;
}

/* ---- config source and TLS ------------------------------------------------ */

Envoy__Config__Core__V3__ConfigSource *xc_ads_source(xc_ctx *c)
{
    Envoy__Config__Core__V3__AggregatedConfigSource *ads = xc_alloc(&c->arena, sizeof *ads);
    Envoy__Config__Core__V3__ConfigSource *src = xc_alloc(&c->arena, sizeof *src);
    if (ads == NULL || src == NULL)
        return xc_oom(c);
    envoy__config__core__v3__aggregated_config_source__init(ads);
    envoy__config__core__v3__config_source__init(src);
    src->config_source_specifier_case = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
    src->ads = ads;
    src->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    return src;
}

static Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *sds_ref(xc_ctx *c,
                                                                              const char *name)
{
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *s = xc_alloc(&c->arena, sizeof *s);
    if (s == NULL)
        return xc_oom(c);
    envoy__extensions__transport_sockets__tls__v3__sds_secret_config__init(s);
    s->name = (char *)name;
    s->sds_config = xc_ads_source(c);
    return s->sds_config ? s : NULL;
}

static Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *
san_validation(xc_ctx *c, const char *const *sans, size_t n)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *v =
        xc_alloc(&c->arena, sizeof *v);
    Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher **m =
        xc_array(&c->arena, n, sizeof *m);
    if (v == NULL || m == NULL)
        return xc_oom(c);
    envoy__extensions__transport_sockets__tls__v3__certificate_validation_context__init(v);
    for (size_t i = 0; i < n; i++) {
        Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher *sm =
            xc_alloc(&c->arena, sizeof *sm);
        Envoy__Type__Matcher__V3__StringMatcher *str = xc_alloc(&c->arena, sizeof *str);
        if (sm == NULL || str == NULL)
            return xc_oom(c);
        envoy__type__matcher__v3__string_matcher__init(str);
        str->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
        str->exact = (char *)sans[i];
        envoy__extensions__transport_sockets__tls__v3__subject_alt_name_matcher__init(sm);
        sm->san_type = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__URI;
        sm->matcher = str;
        m[i] = sm;
    }
    v->n_match_typed_subject_alt_names = n;
    v->match_typed_subject_alt_names = m;
    return v;
}

Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *
xc_common_tls(xc_ctx *c, const char *const *sans, size_t n_sans)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *t = xc_alloc(&c->arena, sizeof *t);
    Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters *p = xc_alloc(&c->arena, sizeof *p);
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig **certs =
        xc_array(&c->arena, 1, sizeof *certs);
    if (t == NULL || p == NULL || certs == NULL)
        return xc_oom(c);
    envoy__extensions__transport_sockets__tls__v3__common_tls_context__init(t);
    envoy__extensions__transport_sockets__tls__v3__tls_parameters__init(p);
    /* Mesh traffic is between our own sidecars: no reason to accept anything older. */
    p->tls_minimum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3;
    p->tls_maximum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3;
    t->tls_params = p;
    if ((certs[0] = sds_ref(c, XC_SECRET_DEFAULT)) == NULL)
        return NULL;
    t->n_tls_certificate_sds_secret_configs = 1;
    t->tls_certificate_sds_secret_configs = certs;

    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *root = sds_ref(c, XC_SECRET_ROOTCA);
    if (root == NULL)
        return NULL;
    if (n_sans == 0) {
        t->validation_context_type_case =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
        t->validation_context_sds_secret_config = root;
        return t;
    }
    /* The bundle comes by SDS, the expected peer identities with the cluster:
     * Envoy merges the two (Istio's shape). */
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext
        *comb = xc_alloc(&c->arena, sizeof *comb);
    if (comb == NULL)
        return xc_oom(c);
    envoy__extensions__transport_sockets__tls__v3__common_tls_context__combined_certificate_validation_context__init(comb);
    comb->default_validation_context = san_validation(c, sans, n_sans);
    if (comb->default_validation_context == NULL)
        return NULL;
    comb->validation_context_sds_secret_config = root;
    t->validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT;
    t->combined_validation_context = comb;
    return t;
}

Envoy__Config__Core__V3__TransportSocket *xc_tls_socket(xc_ctx *c, const char *type_url,
                                                        const ProtobufCMessage *tls_ctx)
{
    Envoy__Config__Core__V3__TransportSocket *ts = xc_alloc(&c->arena, sizeof *ts);
    if (ts == NULL)
        return xc_oom(c);
    envoy__config__core__v3__transport_socket__init(ts);
    ts->name = XC_SOCKET_TLS;
    ts->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts->typed_config = xc_any(c, type_url, tls_ctx);
    return ts->typed_config ? ts : NULL;
}

/* ---- lists ---------------------------------------------------------------- */

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char **xc_sorted_unique(xc_ctx *c, const char *const *v, size_t n, size_t *n_out)
{
    const char **out = xc_array(&c->arena, n, sizeof *out);
    if (out == NULL)
        return xc_oom(c);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] != NULL)
            out[k++] = v[i];
    }
    qsort(out, k, sizeof *out, cmp_strp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u == 0 || strcmp(out[u - 1], out[i]) != 0)
            out[u++] = out[i];
    }
    *n_out = u;
    return out;
}
