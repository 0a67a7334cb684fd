/* meshd/meshd_status.c — the proxy-status and audit writer thread.
 *
 * Stream events (connect, response sent, ACK, NACK, SVID change, close) and
 * audit rows are queued by whoever sees them and written by this thread in
 * one transaction per batch, so a CQ thread never waits on SQLite and a
 * burst of 5,000 reconnects costs a handful of commits, not 5,000 fsyncs.
 * A node may hold several streams (ADS and SDS); it shows as disconnected
 * only when its last stream closes (the node table: meshd_status_rows.c).
 * On stop the queue is flushed and every proxy of this instance is marked
 * disconnected. */
#include "meshd/meshd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

enum md_ev_kind { EV_OPEN, EV_SVID, EV_CLOSE, EV_TYPE, EV_AUDIT, EV_PROBLEM, EV_TRUST };

typedef struct md_ev {
    struct md_ev *next;
    enum md_ev_kind kind;
    int64_t at;
    char *id;                     /* the stream's verified identity (node events) */
    char *a, *b, *c, *d, *e, *f;  /* meaning per kind, see the md_status_* functions */
    int64_t num;
    int ok;
} md_ev;

static void ev_free(md_ev *e)
{
    free(e->id);
    free(e->a);
    free(e->b);
    free(e->c);
    free(e->d);
    free(e->e);
    free(e->f);
    free(e);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void push(md_ctx *ctx, md_ev *e)
{
    md_status *s = &ctx->status;
    e->at = md_now();
    pthread_mutex_lock(&s->mu);
    if (!s->started || s->stop) {
        pthread_mutex_unlock(&s->mu);
        ev_free(e);
        return;
    }
    if (s->tail)
        s->tail->next = e;
    else
        s->head = e;
    s->tail = e;
    s->n++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static md_ev *ev_new(enum md_ev_kind k)
{
    md_ev *e = calloc(1, sizeof *e);
    if (e)
        e->kind = k;
    else
        log_error("meshd", "out of memory recording proxy status");
    return e;
}

void md_status_open(md_ctx *ctx, const char *node, const char *spiffe_id, const char *peer,
                    int64_t svid_not_after)
{
    md_ev *e = ev_new(EV_OPEN);
    if (!e)
        return;
    e->a = strdup(node);
    e->id = strdup(spiffe_id);
    e->c = strdup(peer);
    e->num = svid_not_after;
    push(ctx, e);
}

void md_status_svid(md_ctx *ctx, const char *node, const char *spiffe_id,
                    int64_t svid_not_after)
{
    md_ev *e = ev_new(EV_SVID);
    if (!e)
        return;
    e->a = strdup(node);
    e->id = strdup(spiffe_id);
    e->num = svid_not_after;
    push(ctx, e);
}

void md_status_close(md_ctx *ctx, const char *node, const char *spiffe_id)
{
    md_ev *e = ev_new(EV_CLOSE);
    if (!e)
        return;
    e->a = strdup(node);
    e->id = strdup(spiffe_id);
    push(ctx, e);
}

void md_status_type(md_ctx *ctx, const char *node, const char *spiffe_id, const char *type_url,
                    const char *sent, const char *acked, const char *nack_version,
                    const char *nack_error)
{
    md_ev *e = ev_new(EV_TYPE);
    if (!e)
        return;
    e->a = strdup(node);
    e->id = strdup(spiffe_id);
    e->b = strdup(type_url);
    e->c = dup_or_null(sent);
    e->d = dup_or_null(acked);
    e->e = dup_or_null(nack_version);
    e->f = dup_or_null(nack_error);
    push(ctx, e);
}

void md_status_audit(md_ctx *ctx, const char *actor, const char *action, const char *subject,
                     const char *detail, int ok)
{
    if (!ok && !md_audit_admit(ctx, actor, md_audit_now(ctx)))
        return;
    md_status_audit_ungated(ctx, actor, action, subject, detail, ok);
}

void md_status_audit_ungated(md_ctx *ctx, const char *actor, const char *action,
                             const char *subject, const char *detail, int ok)
{
    md_ev *e = ev_new(EV_AUDIT);
    if (!e)
        return;
    e->a = strdup(actor);
    e->b = strdup(action);
    e->c = strdup(subject ? subject : "");
    e->d = strdup(detail ? detail : "");
    e->ok = ok;
    push(ctx, e);
}

void md_status_problem(md_ctx *ctx, const char *node, const char *spiffe_id,
                       const char *problem)
{
    md_ev *e = ev_new(EV_PROBLEM);
    if (!e)
        return;
    e->a = strdup(node);
    e->id = strdup(spiffe_id);
    e->c = strdup(problem ? problem : "");
    push(ctx, e);
}

void md_status_trust(md_ctx *ctx, const char *node, const char *spiffe_id, const char *roots)
{
    md_ev *e = ev_new(EV_TRUST);
    if (!e)
        return;
    e->a = strdup(node);
    e->id = strdup(spiffe_id);
    e->b = strdup(roots);
    push(ctx, e);
}

static int apply(md_ctx *ctx, md_ev *e, mesh_err *err)
{
    md_status_rows *r = &ctx->status.rows;
    if (e->kind != EV_AUDIT && (!e->a || !e->id)) /* strdup failed when it was queued */
        return mesh_err_set(err, MESH_ENOMEM, "out of memory recording proxy status");
    switch (e->kind) {
    case EV_OPEN:
        return md_status_rows_open(r, e->a, e->id, e->c, e->num, e->at, err);
    case EV_SVID:
        return md_status_rows_svid(r, e->a, e->id, e->num, e->at, err);
    case EV_CLOSE:
        return md_status_rows_close(r, e->a, e->id, e->at, err);
    case EV_TYPE:
        return md_status_rows_type(r, e->a, e->id, e->b, e->c, e->d, e->e, e->f, e->at, err);
    case EV_AUDIT:
        return store_audit(ctx->status.st, e->a, e->b, e->c, e->d, e->ok, err);
    case EV_PROBLEM:
        return md_status_rows_problem(r, e->a, e->id, e->c, e->at, err);
    case EV_TRUST:
        return md_status_rows_trust(r, e->a, e->id, e->b, e->at, err);
    }
    return MESH_OK;
}

static void write_batch(md_ctx *ctx, md_ev *list)
{
    md_status *s = &ctx->status;
    mesh_err err = {0};
    int64_t t0 = md_mono_us();
    int in_tx = store_begin(s->st, &err) == MESH_OK;
    if (!in_tx)
        log_warn("meshd", "proxy status: %s; writing without a transaction", err.msg);
    size_t failed = 0;
    while (list) {
        md_ev *e = list;
        list = e->next;
        if (apply(ctx, e, &err) != MESH_OK) {
            if (failed++ == 0)
                log_warn("meshd", "proxy status/audit write failed: %s", err.msg);
        }
        ev_free(e);
    }
    char problem[700] = "";
    if (in_tx && store_commit(s->st, &err) != MESH_OK) {
        store_rollback(s->st);
        log_error("meshd", "proxy status batch lost: %s", err.msg);
        snprintf(problem, sizeof problem, "writing proxy status and audit rows failed: %s",
                 err.msg);
    } else if (!in_tx || failed) {
        snprintf(problem, sizeof problem, "%zu proxy status/audit writes failed: %s", failed,
                 err.msg);
    }
    md_metrics_store_op(&ctx->metrics, MD_STORE_STATUS_WRITE, t0,
                        problem[0] ? MESH_EIO : MESH_OK);
    md_metrics_store_health(&ctx->metrics, MD_HEALTH_WRITE, problem[0] ? problem : NULL);
}

/* The replica's heartbeat (store_replica.h), from this thread: it has a
 * store handle of its own and wakes at least every STORE_REPLICA_HEARTBEAT_S.
 * Not from the watcher: on SQLite its own commit would wake it (inotify) for
 * a change its connection cannot see. A row that vanished is registered
 * again (its proxies are this process's now: the status rows rewrite them). */
static void heartbeat(md_ctx *ctx)
{
    md_status *s = &ctx->status;
    int64_t now = md_now();
    if (now - s->last_heartbeat < STORE_REPLICA_HEARTBEAT_S)
        return;
    mesh_err err = {0};
    int rc = store_replica_heartbeat(s->st, ctx->instance, now, &err);
    if (rc == MESH_ENOTFOUND) {
        log_warn("meshd", "%s", err.msg);
        rc = store_replica_register(s->st, ctx->instance, ctx->opts.listen, (int64_t)getpid(),
                                    0, now, &err);
    }
    if (rc != MESH_OK) {
        char problem[700];
        snprintf(problem, sizeof problem, "recording this replica's heartbeat failed: %s",
                 err.msg);
        md_metrics_store_health(&ctx->metrics, MD_HEALTH_WRITE, problem);
        if (!s->heartbeat_failing)
            log_warn("meshd", "replica heartbeat: %s; after %ds without one, other replicas and "
                              "meshctl read this replica's sidecars as not connected",
                     err.msg, STORE_REPLICA_STALE_S);
        s->heartbeat_failing = 1;
        return;
    }
    /* A committed write: the store takes writes again (a failed status
     * batch would otherwise keep /readyz at 503 until the next event). */
    md_metrics_store_health(&ctx->metrics, MD_HEALTH_WRITE, NULL);
    if (s->heartbeat_failing)
        log_info("meshd", "replica heartbeat recorded again");
    s->heartbeat_failing = 0;
    s->last_heartbeat = now;
}

static void *status_main(void *arg)
{
    md_ctx *ctx = arg;
    md_status *s = &ctx->status;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        /* Wake now and then with nothing queued, to report dropped audit rows
         * once a flood is over. */
        while (!s->head && !s->stop) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += STORE_REPLICA_HEARTBEAT_S; /* < MD_AUDIT_FLUSH_MS / 2 */
            if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0)
                break;
        }
        md_ev *list = s->head;
        int stop = s->stop;
        s->head = s->tail = NULL;
        s->n = 0;
        pthread_mutex_unlock(&s->mu);
        if (list)
            write_batch(ctx, list);
        if (stop && !list)
            break;
        if (!stop) {
            md_audit_flush(ctx, md_audit_now(ctx));
            heartbeat(ctx);
        }
        /* Let a burst accumulate into one transaction. */
        if (!stop) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* A stream names itself after a node another identity holds (md_status_rows.h):
 * both keep their rows; the newcomer's attempt is audited, as a refusal
 * would be (rate-limited), since that is what an impostor looks like. */
static void on_node_conflict(void *arg, const char *node, const char *spiffe_id,
                             const char *peer, const char *other_id, const char *other_peer)
{
    md_ctx *ctx = arg;
    char reason[1400];
    snprintf(reason, sizeof reason,
             "Node.id \"%s\" is in use by connected identity %s (peer %s); the stream of %s "
             "gets its own proxy-status row and %s's is untouched",
             node, other_id, other_peer, spiffe_id, other_id);
    md_audit_refusal_as(ctx, spiffe_id, NULL, peer, "xds.node_claim", node, reason);
}

int md_status_start(md_ctx *ctx, mesh_err *err)
{
    md_status *s = &ctx->status;
    int rc = store_open(&s->st, ctx->opts.db_path, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "opening the store for proxy status");
    rc = md_status_rows_init(&s->rows, s->st, ctx->instance, err);
    if (rc != MESH_OK)
        return rc;
    s->rows.conflict_fn = on_node_conflict;
    s->rows.conflict_arg = ctx;
    pthread_mutex_lock(&s->mu);
    s->started = 1;
    pthread_mutex_unlock(&s->mu);
    if (pthread_create(&s->th, NULL, status_main, ctx) != 0) {
        s->started = 0;
        return mesh_err_set(err, MESH_EINTERNAL, "cannot start the status thread");
    }
    return MESH_OK;
}

void md_status_stop(md_ctx *ctx)
{
    md_status *s = &ctx->status;
    pthread_mutex_lock(&s->mu);
    int started = s->started;
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (started)
        pthread_join(s->th, NULL);
    if (s->st) {
        mesh_err err = {0};
        if (store_proxy_disconnect_all(s->st, ctx->instance, &err) != MESH_OK)
            log_warn("meshd", "marking proxies disconnected: %s", err.msg);
        if (store_replica_stop(s->st, ctx->instance, md_now(), &err) != MESH_OK)
            log_warn("meshd", "recording this replica's stop: %s", err.msg);
        store_close(s->st);
        s->st = NULL;
    }
    md_status_rows_free(&s->rows);
}
