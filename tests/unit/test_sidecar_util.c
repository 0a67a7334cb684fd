/* tests/unit/test_sidecar_util.c — test CA, backend and client (see the header). */
#include "test_sidecar_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sidecar/http_msg.h"

/* ---- certificates --------------------------------------------------------------- */

static char *bio_str(BIO *b)
{
    char *d;
    long n = BIO_get_mem_data(b, &d);
    char *s = malloc((size_t)n + 1);
    memcpy(s, d, (size_t)n);
    s[n] = '\0';
    return s;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *val)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, val);
    if (e) {
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
}

static void random_serial(X509 *x)
{
    unsigned char b[16];
    RAND_bytes(b, sizeof b);
    b[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
}

tsc_ca *tsc_ca_new(const char *cn)
{
    tsc_ca *ca = calloc(1, sizeof *ca);
    ca->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ca->cert = X509_new();
    X509_set_version(ca->cert, 2);
    random_serial(ca->cert);
    X509_NAME *n = X509_get_subject_name(ca->cert);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(ca->cert, n);
    X509_gmtime_adj(X509_getm_notBefore(ca->cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(ca->cert), 3600L * 24 * 365);
    X509_set_pubkey(ca->cert, ca->key);
    add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash");
    X509_sign(ca->cert, ca->key, EVP_sha256());
    return ca;
}

void tsc_ca_free(tsc_ca *ca)
{
    if (!ca)
        return;
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca);
}

char *tsc_ca_pem(const tsc_ca *ca)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, ca->cert);
    char *s = bio_str(b);
    BIO_free(b);
    return s;
}

static char *issue(tsc_ca *ca, EVP_PKEY *pub, const char *uri, int64_t nb, int64_t na)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    random_serial(x);
    X509_set_issuer_name(x, X509_get_subject_name(ca->cert));
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb);
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na);
    X509_set_pubkey(x, pub);
    add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature");
    add_ext(x, ca->cert, NID_ext_key_usage, "serverAuth,clientAuth");
    if (uri) {
        char san[1024];
        const char *bar = strchr(uri, '|');
        if (bar)
            snprintf(san, sizeof san, "critical,URI:%.*s,URI:%s", (int)(bar - uri), uri, bar + 1);
        else
            snprintf(san, sizeof san, "critical,URI:%s", uri);
        add_ext(x, ca->cert, NID_subject_alt_name, san);
    }
    X509_sign(x, ca->key, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *s = bio_str(b);
    BIO_free(b);
    X509_free(x);
    return s;
}

char *tsc_crl(tsc_ca *ca, const char *const *revoked_pems, size_t n, int reason, int64_t number,
              int64_t this_update, int64_t next_update)
{
    X509_CRL *crl = X509_CRL_new();
    X509_CRL_set_version(crl, X509_CRL_VERSION_2);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert));
    ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)this_update);
    X509_CRL_set1_lastUpdate(crl, t);
    ASN1_TIME_set(t, (time_t)next_update);
    X509_CRL_set1_nextUpdate(crl, t);
    for (size_t i = 0; i < n; i++) {
        BIO *b = BIO_new_mem_buf(revoked_pems[i], -1);
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        X509_REVOKED *r = X509_REVOKED_new();
        X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(x));
        ASN1_TIME_set(t, (time_t)this_update);
        X509_REVOKED_set_revocationDate(r, t);
        if (reason > 0) {
            ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();
            ASN1_ENUMERATED_set(e, reason);
            X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, e, 0, 0);
            ASN1_ENUMERATED_free(e);
        }
        X509_CRL_add0_revoked(crl, r);
        X509_free(x);
    }
    ASN1_TIME_free(t);
    if (number >= 0) {
        ASN1_INTEGER *num = ASN1_INTEGER_new();
        ASN1_INTEGER_set_int64(num, number);
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0);
        ASN1_INTEGER_free(num);
    }
    X509_CRL_sort(crl);
    X509_CRL_sign(crl, ca->key, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_CRL(b, crl);
    char *pem = bio_str(b);
    BIO_free(b);
    X509_CRL_free(crl);
    return pem;
}

int tsc_leaf(tsc_ca *ca, const char *uri, int64_t nb, int64_t na, char **chain_pem,
             char **key_pem)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!k)
        return -1;
    *chain_pem = issue(ca, k, uri, nb, na);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    *key_pem = bio_str(b);
    BIO_free(b);
    EVP_PKEY_free(k);
    return 0;
}

char *tsc_sign_csr(tsc_ca *ca, const char *csr_pem, int64_t nb, int64_t na)
{
    BIO *b = BIO_new_mem_buf(csr_pem, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!req)
        return NULL;
    char uri[2100] = "";
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_subject_alt_name)
            continue;
        GENERAL_NAMES *g = X509V3_EXT_d2i(e);
        for (int j = 0; g && j < sk_GENERAL_NAME_num(g); j++) {
            GENERAL_NAME *gn = sk_GENERAL_NAME_value(g, j);
            if (gn->type == GEN_URI)
                snprintf(uri, sizeof uri, "%s",
                         (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier));
        }
        GENERAL_NAMES_free(g);
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    EVP_PKEY *pub = X509_REQ_get_pubkey(req);
    char *pem = (pub && X509_REQ_verify(req, pub) == 1) ? issue(ca, pub, uri, nb, na) : NULL;
    EVP_PKEY_free(pub);
    X509_REQ_free(req);
    return pem;
}

char *tsc_tmpdir(void)
{
    char tmpl[] = "/tmp/meshd-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

/* ---- backend --------------------------------------------------------------------- */

typedef struct bconn bconn;

struct tsc_backend {
    struct event_base *base;
    struct evconnlistener *lev;
    struct event *stop_ev;
    int stop_pipe[2];
    bconn *conns;           /* every open connection, freed at stop */
    pthread_t thread;
    char name[64];
    bool tcp_echo;
    int port;
    atomic_int requests;
};

struct bconn {
    bconn *prev, *next;
    tsc_backend *b;
    struct bufferevent *bev;
    dp_http_reader rd;
    struct event *delay_ev;
    bool waiting, keep_alive;
    int status;
    size_t bytes;
    size_t size;            /* /bytes/N: answer N bytes */
    char body[4096];
};

static void bconn_free(bconn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    event_free(c->delay_ev);
    bufferevent_free(c->bev);
    dp_http_reader_free(&c->rd);
    free(c);
}

static int b_head(void *arg, dp_http_reader *r)
{
    bconn *c = arg;
    size_t ul;
    const char *url = dp_http_head_url(&r->head, &ul);
    const dp_http_header *x = dp_http_head_find(&r->head, "x-forwarded-client-cert");
    c->status = 200;
    if (ul > 8 && strncmp(url, "/status/", 8) == 0)
        c->status = atoi(url + 8);
    c->keep_alive = r->head.keep_alive;
    c->bytes = 0;
    c->size = ul > 7 && strncmp(url, "/bytes/", 7) == 0 ? (size_t)atol(url + 7) : 0;
    snprintf(c->body, sizeof c->body,
             "{\"app\":\"%s\",\"method\":\"%s\",\"path\":\"%.*s\",\"xfcc\":\"%.*s\"", c->b->name,
             http_method_str((enum http_method)r->head.method), (int)ul, url,
             x ? (int)x->value_len : 0, x ? x->value : "");
    if (ul >= 8 && strncmp(url, "/headers", 8) == 0) {
        /* Every field line as received: ,"hdrs":"name=value;..." */
        size_t l = strlen(c->body);
        l += (size_t)snprintf(c->body + l, sizeof c->body - l, ",\"hdrs\":\"");
        for (size_t i = 0; i < r->head.n && l < sizeof c->body; i++) {
            const dp_http_header *h = &r->head.view[i];
            l += (size_t)snprintf(c->body + l, sizeof c->body - l, "%.*s=%.*s;",
                                  (int)h->name_len, h->name, (int)h->value_len, h->value);
        }
        if (l < sizeof c->body)
            snprintf(c->body + l, sizeof c->body - l, "\"");
    }
    return 0;
}

static int b_body(void *arg, const char *at, size_t len)
{
    ((bconn *)arg)->bytes += len;
    return 0;
}

static void b_respond(bconn *c)
{
    atomic_fetch_add(&c->b->requests, 1);
    if (c->size) {
        char chunk[65536];
        memset(chunk, 'x', sizeof chunk);
        struct evbuffer *out = bufferevent_get_output(c->bev);
        evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\ncontent-length: %zu\r\n%s\r\n", c->size,
                            c->keep_alive ? "" : "connection: close\r\n");
        for (size_t left = c->size; left > 0;) {
            size_t n = left < sizeof chunk ? left : sizeof chunk;
            evbuffer_add(out, chunk, n);
            left -= n;
        }
        return;
    }
    size_t l = strlen(c->body);
    snprintf(c->body + l, sizeof c->body - l, ",\"bytes\":%zu}", c->bytes);
    evbuffer_add_printf(bufferevent_get_output(c->bev),
                        "HTTP/1.1 %d X\r\ncontent-length: %zu\r\n%s\r\n%s", c->status,
                        strlen(c->body), c->keep_alive ? "" : "connection: close\r\n", c->body);
}

static int b_done(void *arg, dp_http_reader *r)
{
    bconn *c = arg;
    size_t ul;
    const char *url = dp_http_head_url(&r->head, &ul);
    dp_http_reader_pause(r, true);
    if (ul > 7 && strncmp(url, "/delay/", 7) == 0) {
        long ms = strtol(url + 7, NULL, 10);
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        c->waiting = true;
        evtimer_add(c->delay_ev, &tv);
        return 0;
    }
    b_respond(c);
    return 0;
}

static const dp_http_reader_cbs b_cbs = {.on_head = b_head, .on_body = b_body,
                                         .on_done = b_done};

static void b_process(bconn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (!c->waiting && evbuffer_get_length(in) > 0) {
        if (HTTP_PARSER_ERRNO(&c->rd.parser) == HPE_PAUSED)
            dp_http_reader_pause(&c->rd, false);
        struct evbuffer_iovec v;
        evbuffer_peek(in, -1, NULL, &v, 1);
        int st;
        size_t n = dp_http_reader_feed(&c->rd, v.iov_base, v.iov_len, &st);
        evbuffer_drain(in, n);
        if (st == DP_HTTP_ERROR) {
            bconn_free(c);
            return;
        }
    }
}

static void b_delay(evutil_socket_t fd, short w, void *arg)
{
    bconn *c = arg;
    c->waiting = false;
    b_respond(c);
    b_process(c);
}

static void b_read(struct bufferevent *bev, void *arg)
{
    bconn *c = arg;
    if (c->b->tcp_echo) {
        evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
        return;
    }
    b_process(c);
}

static void b_write(struct bufferevent *bev, void *arg)
{
    bconn *c = arg;
    if (!c->b->tcp_echo && !c->keep_alive && !c->waiting &&
        HTTP_PARSER_ERRNO(&c->rd.parser) == HPE_PAUSED &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bconn_free(c);
}

static void b_event(struct bufferevent *bev, short what, void *arg)
{
    bconn_free(arg);
}

static void b_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int sl,
                     void *arg)
{
    tsc_backend *b = arg;
    bconn *c = calloc(1, sizeof *c);
    c->b = b;
    c->next = b->conns;
    if (b->conns)
        b->conns->prev = c;
    b->conns = c;
    c->bev = bufferevent_socket_new(b->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->delay_ev = evtimer_new(b->base, b_delay, c);
    dp_http_reader_init(&c->rd, HTTP_REQUEST, &b_cbs, c);
    bufferevent_setcb(c->bev, b_read, b_write, b_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void *b_main(void *arg)
{
    tsc_backend *b = arg;
    event_base_dispatch(b->base);
    return NULL;
}

static void b_stop(evutil_socket_t fd, short w, void *arg)
{
    event_base_loopexit(arg, NULL);
}

tsc_backend *tsc_backend_start(const char *name, bool tcp_echo)
{
    tsc_backend *b = calloc(1, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    b->tcp_echo = tcp_echo;
    b->base = event_base_new();
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    b->lev = evconnlistener_new_bind(b->base, b_accept, b, LEV_OPT_CLOSE_ON_FREE |
                                     LEV_OPT_REUSEABLE, 128, (struct sockaddr *)&sa, sizeof sa);
    if (!b->lev)
        return NULL;
    struct sockaddr_in bound;
    socklen_t bl = sizeof bound;
    getsockname(evconnlistener_get_fd(b->lev), (struct sockaddr *)&bound, &bl);
    b->port = ntohs(bound.sin_port);
    /* Stopped through a pipe: no cross-thread libevent calls needed. */
    if (pipe(b->stop_pipe) != 0)
        return NULL;
    b->stop_ev = event_new(b->base, b->stop_pipe[0], EV_READ, b_stop, b->base);
    event_add(b->stop_ev, NULL);
    pthread_create(&b->thread, NULL, b_main, b);
    return b;
}

int tsc_backend_port(const tsc_backend *b) { return b->port; }
int tsc_backend_requests(const tsc_backend *b) { return atomic_load(&((tsc_backend *)b)->requests); }

void tsc_backend_stop(tsc_backend *b)
{
    if (!b)
        return;
    ssize_t w = write(b->stop_pipe[1], "x", 1);
    (void)w;
    pthread_join(b->thread, NULL);
    while (b->conns)
        bconn_free(b->conns);
    evconnlistener_free(b->lev);
    event_free(b->stop_ev);
    event_base_free(b->base);
    close(b->stop_pipe[0]);
    close(b->stop_pipe[1]);
    free(b);
}

/* ---- client ---------------------------------------------------------------------- */

int tsc_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tsc_send(int fd, const char *data)
{
    size_t n = strlen(data);
    while (n > 0) {
        ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

typedef struct rstate {
    char *body;
    size_t cap, len, total;
    bool done;
} rstate;

static int r_body(http_parser *p, const char *at, size_t len)
{
    rstate *s = p->data;
    s->total += len;
    size_t room = s->cap > s->len + 1 ? s->cap - s->len - 1 : 0;
    size_t n = len < room ? len : room;
    memcpy(s->body + s->len, at, n);
    s->len += n;
    s->body[s->len] = '\0';
    return 0;
}

static int r_done(http_parser *p)
{
    ((rstate *)p->data)->done = true;
    http_parser_pause(p, 1);
    return 0;
}

int tsc_read_response(int fd, char *body, size_t body_len)
{
    size_t total;
    return tsc_read_response_total(fd, body, body_len, &total);
}

int tsc_read_response_total(int fd, char *body, size_t body_len, size_t *total)
{
    static const http_parser_settings st = {.on_body = r_body, .on_message_complete = r_done};
    char dummy[1];
    rstate s = {.body = body ? body : dummy, .cap = body ? body_len : 1};
    s.body[0] = '\0';
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &s;
    /* Byte at a time after the first response byte would be slow; read in
     * chunks but never past the message (MSG_PEEK then consume). */
    char buf[8192];
    while (!s.done) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK);
        if (n <= 0) {
            if (n == 0)
                http_parser_execute(&p, &st, NULL, 0);   /* close-delimited end */
            break;
        }
        size_t used = http_parser_execute(&p, &st, buf, (size_t)n);
        if (HTTP_PARSER_ERRNO(&p) != HPE_OK && HTTP_PARSER_ERRNO(&p) != HPE_PAUSED)
            return 0;
        if (recv(fd, buf, used, 0) != (ssize_t)used)
            return 0;
    }
    *total = s.total;
    return s.done ? (int)p.status_code : 0;
}

int tsc_http_get(int port, const char *host, const char *path, const char *extra_headers,
                 char *body, size_t body_len)
{
    int fd = tsc_connect(port);
    if (fd < 0)
        return 0;
    char req[4096];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n", path,
             host, extra_headers ? extra_headers : "");
    int status = 0;
    if (tsc_send(fd, req) == 0)
        status = tsc_read_response(fd, body, body_len);
    close(fd);
    return status;
}

bool tsc_wait_closed(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t end;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    end = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + ms;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t left = end - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        if (left <= 0)
            return false;
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return true;
    }
}
