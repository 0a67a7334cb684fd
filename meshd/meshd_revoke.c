/* meshd/meshd_revoke.c — revocation as meshd's runtime acts on it: keeping the
 * CRLs that ride in ROOTCA current (the watcher calls md_crl_sync), and
 * refusing a stream whose certificate was revoked so that the sidecar and the
 * operator both learn why and what to do (md_stream_refuse_revoked). */
#include "meshd/meshd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca_revoke.h"

int md_crl_sync(md_ctx *ctx, mesh_store *st)
{
    mesh_err err = {0};
    int signed_n = 0;
    if (ca_crl_refresh(st, md_now(), &signed_n, &err) != MESH_OK)
        log_error("meshd", "refreshing the CRLs: %s; sidecars keep the CRLs they have", err.msg);
    char *pem = NULL;
    if (ca_crl_bundle_pem(st, &pem, &err) != MESH_OK) {
        log_warn("meshd", "reading the CRLs: %s", err.msg);
        return 0;
    }
    int rc = md_cache_set_crl(ctx, pem, &err);
    free(pem);
    if (rc < 0) {
        log_error("meshd", "installing the CRLs in ROOTCA: %s", err.msg);
        return 0;
    }
    if (rc > 0)
        log_info("meshd", "ROOTCA now carries new CRLs: pushing the bundle to every stream");
    return rc > 0;
}

/* What the sidecar (and the operator) should be told about a revoked cert. */
static void refusal_text(mesh_store *st, const char *spiffe_id, const char *serial, char *buf,
                         size_t len)
{
    store_cert c;
    mesh_err err = {0};
    if (store_cert_get(st, serial, &c, &err) != MESH_OK) {
        snprintf(buf, len, "client certificate serial %s was revoked; the workload needs a new "
                 "join token ('meshctl workload token %.512s')", serial, spiffe_id);
        return;
    }
    store_compromised_key k;
    int compromised = store_key_compromised_get(st, c.pubkey_sha256, &k, NULL) == MESH_OK;
    store_compromised_key_free(&k);
    int code = ca_revoke_reason_code(c.revoke_reason);
    char when[32];
    time_t t = (time_t)c.revoked_at;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *next;
    if (compromised || code == CA_REASON_KEY_COMPROMISE)
        next = "its key was reported compromised: the workload needs a new key and, without "
               "another valid SVID, a new join token";
    else if (code == CA_REASON_SUPERSEDED)
        next = "renew over mTLS with a new key";
    else
        next = "a revoked certificate cannot renew: the workload needs a new join token "
               "unless it holds another valid SVID";
    snprintf(buf, len, "client certificate serial %s of %.512s was revoked at %s (%s); %s "
             "('meshctl workload token %.512s')", serial, spiffe_id, when,
             ca_revoke_reason_name(code), next, spiffe_id);
    store_cert_free(&c);
}

void md_stream_refuse_revoked(md_call *c, mesh_store *st)
{
    char serial[48];
    pthread_mutex_lock(&c->mu);
    snprintf(serial, sizeof serial, "%s", c->stream ? c->stream->presented_serial : "");
    pthread_mutex_unlock(&c->mu);
    /* Never again served from memory during a store outage. */
    md_cache_forget_enrolment(c->ctx, serial);
    char why[2048];
    refusal_text(st, c->spiffe_id, serial, why, sizeof why);
    /* Audited and logged (rate-limited) with the verified identity as actor. */
    md_audit_refusal(c->ctx, c, "sds.denied", serial, why);
    pthread_mutex_lock(&c->mu);
    md_stream *s = c->stream;
    if (c->closed || c->finishing || !s) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (s->node_known) {
        md_status_problem(c->ctx, s->node_id, md_stream_row_id(c), why);
        md_call_finish_locked(c, GRPC_STATUS_PERMISSION_DENIED, why);
    } else if (!s->refusal) {
        /* The first request names the node; md_stream_note_node_locked
         * records the problem under it and ends the call then. */
        s->refusal = strdup(why);
        if (!s->refusal)
            md_call_finish_locked(c, GRPC_STATUS_PERMISSION_DENIED, why);
    }
    pthread_mutex_unlock(&c->mu);
}
