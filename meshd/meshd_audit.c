/* meshd/meshd_audit.c — refusals as audit rows and log lines, bounded by a rate limit.
 *
 * Who a refused caller is comes only from verified material: the SPIFFE ID of
 * a client certificate that md_tls_verify_client accepted. Anything else — a
 * foreign or expired certificate's SAN, the identity a plaintext proxyless
 * client names — is a claim: the row's actor is "unauthenticated" and the
 * claim goes in the detail, quoted, escaped and marked "(unverified)".
 *
 * Refusal rows (ok = 0) pass a token bucket per class before they are queued
 * for the status writer, so a flood of bad handshakes or of refused requests
 * cannot fill the disk: unauthenticated peers MD_AUDIT_UNAUTH_BURST at once
 * then MD_AUDIT_UNAUTH_PER_SEC, verified identities MD_AUDIT_VERIFIED_BURST
 * then MD_AUDIT_VERIFIED_PER_SEC. The log line of a refusal shares its row's
 * fate. What was dropped is never silent: an "audit.suppressed" row (and a
 * log line) says how many rows of which class were not written, and since
 * when, at the next admitted row or within MD_AUDIT_FLUSH_MS (the status
 * writer calls md_audit_flush). Successful actions are never limited. The
 * bounds a peer runs into (xds.limit, xds.overflow, xds.oversize: one client
 * can hit them in a loop) take the same path, log line included. */
#include "meshd/meshd_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/escape.h"

static const char *const class_names[MD_AUDIT_CLASSES] = {
    [MD_AUDIT_UNAUTH] = "unauthenticated peers",
    [MD_AUDIT_VERIFIED] = "verified identities",
};

int md_audit_gate_init(md_audit_gate *g)
{
    memset(g, 0, sizeof *g);
    mesh_rate_init(&g->rate[MD_AUDIT_UNAUTH], MD_AUDIT_UNAUTH_PER_SEC, MD_AUDIT_UNAUTH_BURST);
    mesh_rate_init(&g->rate[MD_AUDIT_VERIFIED], MD_AUDIT_VERIFIED_PER_SEC,
                   MD_AUDIT_VERIFIED_BURST);
    return pthread_mutex_init(&g->mu, NULL) == 0 ? MESH_OK : MESH_EINTERNAL;
}

void md_audit_gate_destroy(md_audit_gate *g)
{
    pthread_mutex_destroy(&g->mu);
}

/* Writes the summary of what class k dropped, if anything; g->mu held. */
static void flush_class_locked(md_ctx *ctx, int k, int64_t now_ms)
{
    md_audit_gate *g = &ctx->audit_gate;
    int64_t since = 0;
    uint64_t n = mesh_rate_take_dropped(&g->rate[k], &since);
    if (n == 0)
        return;
    char detail[300];
    snprintf(detail, sizeof detail,
             "%llu refusal(s) by %s were not recorded (audit rows and log lines) in the last "
             "%.1f s: rate limit %g/s, burst %g",
             (unsigned long long)n, class_names[k], (double)(now_ms - since) / 1000.0,
             g->rate[k].per_sec, g->rate[k].burst);
    g->suppressed_total += n;
    md_status_audit_ungated(ctx, "meshd", "audit.suppressed", class_names[k], detail, 0);
    log_warn("meshd", "%s", detail);
}

void md_audit_flush(md_ctx *ctx, int64_t now_ms)
{
    md_audit_gate *g = &ctx->audit_gate;
    pthread_mutex_lock(&g->mu);
    for (int k = 0; k < MD_AUDIT_CLASSES; k++)
        if (g->rate[k].dropped && now_ms - g->rate[k].first_drop_ms >= MD_AUDIT_FLUSH_MS)
            flush_class_locked(ctx, k, now_ms);
    pthread_mutex_unlock(&g->mu);
}

int64_t md_audit_now(md_ctx *ctx)
{
    int64_t fixed = ctx->audit_gate.fixed_now_ms;
    return fixed > 0 ? fixed : md_now_ms();
}

int md_audit_admit(md_ctx *ctx, const char *actor, int64_t now_ms)
{
    int k = strcmp(actor, STORE_AUDIT_UNAUTHENTICATED) == 0 ? MD_AUDIT_UNAUTH : MD_AUDIT_VERIFIED;
    md_audit_gate *g = &ctx->audit_gate;
    pthread_mutex_lock(&g->mu);
    int ok = mesh_rate_allow(&g->rate[k], now_ms);
    if (ok)
        flush_class_locked(ctx, k, now_ms);
    pthread_mutex_unlock(&g->mu);
    return ok;
}

/* The actor a call's refusal is recorded under, and what it claimed. */
static const char *call_actor(const md_call *c, const char **claim)
{
    *claim = NULL;
    if (c->spiffe_id[0] && !c->plaintext)
        return c->spiffe_id;   /* verified (meshd_server.c clears it otherwise) */
    if (c->spiffe_id[0])
        *claim = c->spiffe_id; /* plaintext port: named by Node.id, never proven */
    return STORE_AUDIT_UNAUTHENTICATED;
}

/* One refusal's row and log line, if its class's bucket admits it. */
static void refusal_at_level(md_ctx *ctx, enum log_level lvl, const char *actor,
                             const char *claim, const char *peer, const char *action,
                             const char *subject, const char *reason)
{
    if (!md_audit_admit(ctx, actor, md_audit_now(ctx)))
        return;
    char quoted[700] = "";
    if (claim && claim[0]) {
        char esc[600];
        mesh_escape(claim, strlen(claim), MESH_ESC_QUOTES, esc, sizeof esc);
        snprintf(quoted, sizeof quoted, " claimed=\"%s\" (unverified)", esc);
    }
    char detail[1800];
    snprintf(detail, sizeof detail, "peer=%s%s: %s", peer && peer[0] ? peer : "?", quoted,
             reason ? reason : "");
    md_status_audit_ungated(ctx, actor, action, subject, detail, 0);
    log_field lf[] = {{"action", action}, {"actor", actor}, {"subject", subject},
                      {"peer", peer}, {"claimed", claim}, {"reason", reason}};
    log_msg_fields(lvl, "meshd", lf, sizeof lf / sizeof lf[0],
                   "%s refused for %s (subject %s): %s", action, actor,
                   subject && subject[0] ? subject : "-", detail);
}

void md_audit_refusal_as(md_ctx *ctx, const char *actor, const char *claim, const char *peer,
                         const char *action, const char *subject, const char *reason)
{
    refusal_at_level(ctx, LOG_WARN, actor, claim, peer, action, subject, reason);
}

void md_audit_refusal(md_ctx *ctx, const md_call *c, const char *action, const char *subject,
                      const char *reason)
{
    const char *claim;
    const char *actor = call_actor(c, &claim);
    md_audit_refusal_as(ctx, actor, claim, c->peer_addr, action, subject, reason);
}

void md_audit_bound(md_ctx *ctx, const md_call *c, enum log_level lvl, const char *action,
                    const char *subject, const char *reason)
{
    const char *claim;
    const char *actor = call_actor(c, &claim);
    refusal_at_level(ctx, lvl, actor, claim, c->peer_addr, action, subject, reason);
}
