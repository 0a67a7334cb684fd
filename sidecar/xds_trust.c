/* sidecar/xds_trust.c — meshd's certificate chain, looked at by the sidecar itself
 * (see xds_trust.h). OpenSSL 3 only; blocking I/O bounded by a timeout, run on the
 * control-plane thread after a failed attempt, never on the data path. */
#include "sidecar/xds_trust.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "sidecar/tls_util.h"

#define SHORT_FP 16

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "host:port" (also "[v6]:port" and gRPC's "dns:///host:port") -> parts. */
static int split_target(const char *target, char *host, size_t hlen, char *port, size_t plen)
{
    if (strncmp(target, "dns:///", 7) == 0)
        target += 7;
    else if (strncmp(target, "ipv4:", 5) == 0)
        target += 5;
    const char *colon = strrchr(target, ':');
    if (!colon || colon == target || !colon[1])
        return -1;
    const char *h = target;
    size_t n = (size_t)(colon - target);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= hlen || strlen(colon + 1) >= plen)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    snprintf(port, plen, "%s", colon + 1);
    return 0;
}

/* A connected TCP socket within the deadline, or -1. */
static int connect_by(const char *host, const char *port, int64_t deadline_ms, mesh_err *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        mesh_err_set(err, MESH_EIO, "cannot resolve %s: %s", host, gai_strerror(g));
        return -1;
    }
    int fd = -1, last = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int64_t left = deadline_ms - mono_ms();
            rc = left > 0 && poll(&p, 1, (int)left) == 1 ? 0 : -1;
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (rc == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr)) {
                errno = soerr ? soerr : errno;
                rc = -1;
            } else if (rc != 0) {
                errno = ETIMEDOUT;
            }
        }
        if (rc != 0) {
            last = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        mesh_err_set(err, MESH_EIO, "cannot connect to %s:%s: %s", host, port,
                     strerror(last ? last : ECONNREFUSED));
        return -1;
    }
    /* Blocking from here on, each read and write bounded by what is left. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    int64_t left = deadline_ms - mono_ms();
    if (left < 1)
        left = 1;
    struct timeval tv = {.tv_sec = (time_t)(left / 1000), .tv_usec = (suseconds_t)(left % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

int xdsc_trust_fetch_chain(const char *target, const char *server_name, int timeout_ms,
                           STACK_OF(X509) **chain_out, mesh_err *err)
{
    *chain_out = NULL;
    char host[256], port[16];
    if (!target || split_target(target, host, sizeof host, port, sizeof port) != 0)
        return mesh_err_set(err, MESH_EINVAL, "cannot tell host and port in '%s'",
                            target ? target : "");
    int fd = connect_by(host, port, mono_ms() + timeout_ms, err);
    if (fd < 0)
        return MESH_EIO;
    int rc = MESH_OK;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    if (!ssl) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot set up TLS to look at meshd's chain");
        goto out;
    }
    static const unsigned char alpn[] = {2, 'h', '2'};
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Verification is ours, afterwards, against explicit roots or a pin. */
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    SSL_set_alpn_protos(ssl, alpn, sizeof alpn);
    if (server_name && server_name[0])
        SSL_set_tlsext_host_name(ssl, server_name);
    SSL_set_fd(ssl, fd);
    /* Even a handshake that fails late (meshd refusing us) has shown us
     * its certificate by then. */
    int hs = SSL_connect(ssl);
    STACK_OF(X509) *peer = SSL_get_peer_cert_chain(ssl);
    if (!peer || sk_X509_num(peer) == 0) {
        rc = hs == 1 ? mesh_err_set(err, MESH_ECRYPTO, "meshd presented no certificate")
                     : mesh_err_openssl(err, MESH_ECRYPTO, "TLS handshake with meshd failed");
        goto out;
    }
    STACK_OF(X509) *copy = sk_X509_new_null();
    for (int i = 0; copy && i < sk_X509_num(peer); i++) {
        X509 *x = sk_X509_value(peer, i);
        if (X509_up_ref(x) != 1 || !sk_X509_push(copy, x)) {
            sk_X509_pop_free(copy, X509_free);
            copy = NULL;
        }
    }
    if (!copy) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto out;
    }
    *chain_out = copy;
    if (hs == 1)
        SSL_shutdown(ssl);
out:
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return rc;
}

void xdsc_trust_describe_roots(const char *roots_pem, char *buf, size_t len)
{
    if (!len)
        return;
    buf[0] = '\0';
    STACK_OF(X509) *roots = NULL;
    mesh_err e;
    if (!roots_pem || tls_parse_certs(roots_pem, "bundle", &roots, &e) != MESH_OK) {
        snprintf(buf, len, "none");
        return;
    }
    size_t off = 0;
    for (int i = 0; i < sk_X509_num(roots) && off + 1 < len; i++) {
        char fp[65];
        tls_cert_sha256(sk_X509_value(roots, i), fp);
        int w = snprintf(buf + off, len - off, "%s%.*s", i ? ", " : "", SHORT_FP, fp);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    sk_X509_pop_free(roots, X509_free);
}

/* X509_verify_cert of chain[0] with the rest as untrusted intermediates, as
 * a TLS client checks a server: at `now`, for server_name, purpose server. */
static int verify_chain(STACK_OF(X509) *chain, STACK_OF(X509) *roots, const char *server_name,
                        int64_t now, int *x509_err, X509 **failed_at)
{
    *x509_err = X509_V_ERR_UNSPECIFIED;
    *failed_at = NULL;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int ok = 0;
    if (!store || !vctx || !untrusted || sk_X509_num(chain) < 1)
        goto out;
    for (int i = 0; i < sk_X509_num(roots); i++)
        X509_STORE_add_cert(store, sk_X509_value(roots, i));
    for (int i = 1; i < sk_X509_num(chain); i++)
        sk_X509_push(untrusted, sk_X509_value(chain, i));
    if (X509_STORE_CTX_init(vctx, store, sk_X509_value(chain, 0), untrusted) != 1)
        goto out;
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(vctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)now);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    if (server_name && server_name[0])
        X509_VERIFY_PARAM_set1_host(param, server_name, 0);
    ok = X509_verify_cert(vctx) == 1;
    if (!ok) {
        *x509_err = X509_STORE_CTX_get_error(vctx);
        *failed_at = X509_STORE_CTX_get_current_cert(vctx);
        if (*failed_at)
            X509_up_ref(*failed_at);
    }
out:
    ERR_clear_error();
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    return ok;
}

int xdsc_trust_explain(STACK_OF(X509) *chain, const char *roots_pem, const char *server_name,
                       const char *spiffe_id, int64_t now, mesh_err *err)
{
    STACK_OF(X509) *roots = NULL;
    if (!chain || sk_X509_num(chain) < 1)
        return mesh_err_set(err, MESH_EINVAL, "meshd presented no certificate");
    int rc = tls_parse_certs(roots_pem ? roots_pem : "", "this sidecar's trust bundle", &roots,
                             err);
    if (rc != MESH_OK)
        return rc;
    int xerr = 0;
    X509 *at = NULL;
    int ok = verify_chain(chain, roots, server_name, now, &xerr, &at);
    sk_X509_pop_free(roots, X509_free);
    if (ok)
        return MESH_OK;
    X509 *leaf = sk_X509_value(chain, 0);
    X509 *top = sk_X509_value(chain, sk_X509_num(chain) - 1);
    char mine[160], top_fp[65], issuer[200], t1[32], t2[32], t3[32];
    xdsc_trust_describe_roots(roots_pem, mine, sizeof mine);
    tls_cert_sha256(top, top_fp);
    X509_NAME_oneline(X509_get_issuer_name(top), issuer, sizeof issuer);
    const char *id = spiffe_id && spiffe_id[0] ? spiffe_id : "<spiffe-id>";
    switch (xerr) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        tls_format_time(tls_cert_not_before(at ? at : leaf), t1, sizeof t1);
        tls_format_time(tls_cert_not_after(at ? at : leaf), t2, sizeof t2);
        tls_format_time(now, t3, sizeof t3);
        rc = mesh_err_set(err, MESH_EPERM,
                          "meshd's certificate chain is valid from %s to %s but this host's "
                          "clock says %s: check the clock (NTP) here and on meshd's host",
                          t1, t2, t3);
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
        rc = mesh_err_set(err, MESH_EPERM,
                          "meshd's certificate is not issued for the name '%s': check "
                          "--server-name and --meshd",
                          server_name ? server_name : "");
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        rc = mesh_err_set(err, MESH_EPERM,
                          "meshd's certificate is not signed by any root in this sidecar's "
                          "bundle (roots: sha256 %s; meshd's chain ends at %.80s, sha256 "
                          "%.16s); the CA was probably rotated while this sidecar was away: "
                          "restart it with a current --ca-bundle (meshctl ca bundle) or a new "
                          "--token (meshctl workload token %.200s)",
                          mine, issuer, top_fp, id);
        break;
    default:
        rc = mesh_err_set(err, MESH_EPERM,
                          "meshd's certificate does not verify against this sidecar's bundle "
                          "(roots: sha256 %s): %s; a current --ca-bundle (meshctl ca bundle) "
                          "or a new --token may be needed",
                          mine, X509_verify_cert_error_string(xerr));
        break;
    }
    X509_free(at);
    return rc;
}

int xdsc_trust_pinned_root(STACK_OF(X509) *chain, const char (*pins)[65], size_t n_pins,
                           const char *server_name, int64_t now, char **root_pem_out,
                           mesh_err *err)
{
    *root_pem_out = NULL;
    if (!chain || sk_X509_num(chain) < 1)
        return mesh_err_set(err, MESH_EINVAL, "meshd presented no certificate");
    X509 *pinned = NULL;
    for (int i = 0; i < sk_X509_num(chain) && !pinned; i++) {
        X509 *x = sk_X509_value(chain, i);
        char fp[65];
        tls_cert_sha256(x, fp);
        for (size_t p = 0; p < n_pins && !pinned; p++)
            if (strcmp(fp, pins[p]) == 0 && X509_check_ca(x) != 0)
                pinned = x;
    }
    if (!pinned)
        return mesh_err_set(err, MESH_ENOTFOUND,
                            "meshd's chain holds none of the CA roots the join token pins "
                            "(sha256 %.16s...): the CA changed after the token was made; make "
                            "a new one ('meshctl workload token')",
                            n_pins ? pins[0] : "");
    STACK_OF(X509) *anchor = sk_X509_new_null();
    if (!anchor || !sk_X509_push(anchor, pinned)) {
        sk_X509_free(anchor);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    int xerr = 0;
    X509 *at = NULL;
    int ok = verify_chain(chain, anchor, server_name, now, &xerr, &at);
    X509_free(at);
    int rc = MESH_OK;
    if (!ok) {
        rc = mesh_err_set(err, MESH_EPERM,
                          "meshd's certificate does not verify against the root the join "
                          "token pins: %s",
                          X509_verify_cert_error_string(xerr));
    } else {
        *root_pem_out = tls_certs_to_pem(anchor);
        if (!*root_pem_out)
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    sk_X509_free(anchor);
    return rc;
}
