/* sidecar/proxy_down.c — the downstream (inbound) side of mTLS: accepting
 * with the current server context (or refusing when the SVID is missing or
 * expired: fail closed), checking the caller's SVID after the handshake, and
 * RBAC against a listener's allowed SPIFFE IDs. */
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "sidecar/proxy_internal.h"
#include "sidecar/tls_util.h"

struct bufferevent *dp_down_tls_accept(dp_proxy *px, evutil_socket_t fd)
{
    SSL_CTX *ctx = NULL;
    mesh_err e;
    int64_t now = dp_now();
    int rc = cert_pool_server_ctx(px->pool, now, &ctx, &e);
    if (rc != MESH_OK) {
        evutil_closesocket(fd);
        dp_stat_inc(&px->st.down_hs_failed);
        if (rc == MESH_EEXPIRED)
            dp_stat_inc(&px->st.tls_refused_expired);
        /* One line per 10 s: a refusing sidecar under load must not flood. */
        if (now - px->last_refuse_log >= 10) {
            log_warn(DP_LOG, "refusing inbound mTLS connection: %s", e.msg);
            px->last_refuse_log = now;
        }
        return NULL;
    }
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx);
    if (!ssl) {
        ERR_clear_error();
        evutil_closesocket(fd);
        return NULL;
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        px->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

struct bufferevent *dp_down_accept(dp_proxy *px, evutil_socket_t fd, bool inbound)
{
    if (inbound)
        return dp_down_tls_accept(px, fd);
    struct bufferevent *bev =
        bufferevent_socket_new(px->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev)
        evutil_closesocket(fd);
    return bev;
}

int dp_down_tls_established(dp_proxy *px, struct bufferevent *bev, char *peer_id, size_t plen,
                            char *own_id, size_t olen, int64_t *deadline, char *why,
                            size_t whylen)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    mesh_err e;
    if (tls_peer_spiffe_id(ssl, peer_id, plen, &e) != MESH_OK) {
        snprintf(why, whylen, "caller's certificate is not an X.509-SVID: %s", e.msg);
        return MESH_EPERM;
    }
    X509 *local = SSL_get_certificate(ssl);
    if (!local || tls_cert_spiffe_id(local, own_id, olen, &e) != MESH_OK) {
        snprintf(why, whylen, "our own certificate has no SPIFFE ID");
        return MESH_EINTERNAL;
    }
    /* One bundle = one trust domain: a chain that verifies but names another
     * domain would be a mis-issued or federated cert we do not accept. */
    size_t ol = strcspn(own_id + 9, "/"), pl = strcspn(peer_id + 9, "/");
    if (ol != pl || strncmp(own_id + 9, peer_id + 9, ol) != 0) {
        snprintf(why, whylen, "caller %s is not in our trust domain", peer_id);
        return MESH_EPERM;
    }
    /* A handshake that began before the pool took new CRLs (the sweep
     * skips unfinished ones). */
    char rwhy[DP_REVOKED_WHY];
    if (dp_revoke_check(px, ssl, rwhy, sizeof rwhy)) {
        snprintf(why, whylen, "%s", rwhy);
        return MESH_EPERM;
    }
    *deadline = tls_conn_deadline(ssl);
    return MESH_OK;
}

void dp_tls_error_string(struct bufferevent *bev, char *buf, size_t len)
{
    buf[0] = '\0';
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (ssl) {
        long vr = SSL_get_verify_result(ssl);
        if (vr != X509_V_OK) {
            snprintf(buf, len, "peer certificate rejected: %s",
                     X509_verify_cert_error_string(vr));
            while (bufferevent_get_openssl_error(bev))
                ;
            return;
        }
    }
    unsigned long e;
    size_t off = 0;
    while ((e = bufferevent_get_openssl_error(bev)) != 0) {
        if (off + 2 >= len)
            continue;
        if (off)
            off += (size_t)snprintf(buf + off, len - off, "; ");
        char one[256];
        ERR_error_string_n(e, one, sizeof one);
        off += (size_t)snprintf(buf + off, len - off, "%s", one);
        if (off >= len)
            off = len - 1;
    }
    if (!buf[0]) {
        int se = EVUTIL_SOCKET_ERROR();
        snprintf(buf, len, "%s", se ? evutil_socket_error_to_string(se)
                                    : "connection closed during the TLS handshake");
    }
}

bool dp_listener_allows(const dp_listener *l, const char *peer_id)
{
    for (size_t i = 0; i < l->n_allowed; i++)
        if (strcmp(l->allowed_ids[i], peer_id) == 0)
            return true;
    return false;
}
