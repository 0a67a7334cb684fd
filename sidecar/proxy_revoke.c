/* sidecar/proxy_revoke.c — revocation on live connections.
 *
 * New handshakes use the cert pool's CRLs at once (its SSL_CTX checks them).
 * Connections already established were verified against older CRLs, so when
 * the pool takes new ones (an SDS push: its listener wakes the loop; the 1 s
 * tick looks too) every established mTLS connection is checked again — the
 * inbound sessions (through the shared session lifecycle, proxy_session.c)
 * and the upstream connections, in use or pooled — and one whose peer
 * certificate, or our own certificate on it, is now revoked is closed
 * ("closing ...: the peer's certificate serial S of ID was revoked at T
 * (keyCompromise)"), counted in mesh_sidecar_connections_closed_revoked_total.
 * A handshake that was in flight during the sweep is checked when it
 * completes (dp_revoke_check), so none slips between the two. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "sidecar/proxy_internal.h"

void dp_revoke_on_crl_change(void *arg)
{
    dp_proxy *px = arg;
    atomic_store(&px->crl_changed, true);
    uint64_t one = 1;
    ssize_t w = write(px->mb_fd, &one, sizeof one);   /* the loop runs on_mailbox */
    (void)w;
}

bool dp_revoke_check(dp_proxy *px, SSL *ssl, char *why, size_t len)
{
    if (!ssl)
        return false;
    char what[DP_REVOKED_WHY];
    /* The peer, as verified in this handshake (leaf first, anchor last). */
    STACK_OF(X509) *peer = SSL_get0_verified_chain(ssl);
    if (peer && cert_pool_chain_revoked(px->pool, peer, what, sizeof what)) {
        snprintf(why, len, "the peer's %s", what);
        return true;
    }
    /* Our own side: a connection made with a certificate of ours that has
     * since been revoked is no more trustworthy than the peer's. */
    X509 *local = SSL_get_certificate(ssl);
    STACK_OF(X509) *own = local ? sk_X509_new_null() : NULL;
    bool revoked = false;
    if (own && sk_X509_push(own, local) &&
        cert_pool_chain_revoked(px->pool, own, what, sizeof what)) {
        snprintf(why, len, "our own %s", what);
        revoked = true;
    }
    sk_X509_free(own);
    return revoked;
}

static SSL *established_ssl(struct bufferevent *bev)
{
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    return ssl && SSL_is_init_finished(ssl) ? ssl : NULL;
}

void dp_revoke_sweep(dp_proxy *px)
{
    bool woken = atomic_exchange(&px->crl_changed, false);
    uint64_t gen = cert_pool_crl_generation(px->pool);
    if (gen == px->crl_gen_seen && !woken)
        return;
    px->crl_gen_seen = gen;
    size_t closed = dp_sessions_close_revoked(px);
    /* Upstream connections die from their own timer (the path a certificate
     * expiry takes), not from here: their owner's callbacks may free others. */
    for (dp_upconn *uc = px->upconns; uc; uc = uc->all_next) {
        SSL *ssl = uc->tls && uc->connected ? established_ssl(uc->bev) : NULL;
        if (ssl && !uc->revoked_why[0] &&
            dp_revoke_check(px, ssl, uc->revoked_why, sizeof uc->revoked_why)) {
            dp_stat_inc(&px->st.closed_revoked);
            closed++;
            event_active(uc->timer, EV_TIMEOUT, 1);
        }
    }
    if (closed)
        log_info(DP_LOG, "new CRLs: closing %zu live connection(s) with a revoked certificate",
                 closed);
}
