/* drill/drill_traffic.c — the drill's traffic: GET /drill with Host drill-server
 * sent to every client sidecar's outbound listener, round robin, paced to --rate
 * requests per second over the whole run (open loop: the schedule does not slow
 * down when answers do).
 *
 * Each client sidecar gets a small pool of keep-alive connections (2 to start, up to
 * DRILL_MAX_CONNS when answers are slow). A request that finds every connection
 * busy and the pool full is "skipped": not sent, counted apart, never hidden. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "drill/drill.h"

#define INITIAL_CONNS 2
#define BODY_KEEP 400   /* enough to quote a failure's reason */

static drill_hc *new_conn(drill_run *r, drill_sidecar *s)
{
    if (s->n_conns >= DRILL_MAX_CONNS)
        return NULL;
    /* The client-side timeout is a backstop one second after the route's own
     * timeout, so a slow upstream shows as the sidecar's 504, not as ours. */
    drill_hc *c = drill_hc_new(r->base, s->port_out, r->svc_server,
                               (int)r->o->request_timeout_ms + 1000, BODY_KEEP);
    if (c)
        s->conns[s->n_conns++] = c;
    return c;
}

int drill_traffic_init(drill_run *r, mesh_err *err)
{
    for (int i = 0; i < r->o->n_clients; i++)
        for (int k = 0; k < INITIAL_CONNS; k++)
            if (!new_conn(r, &r->sc[i]))
                return mesh_err_set(err, MESH_ENOMEM, "out of memory for traffic connections");
    return MESH_OK;
}

static void on_answer(void *arg, const drill_hc_result *res)
{
    drill_sidecar *s = arg;
    drill_run *r = s->run;
    double now = drill_now_t(r);
    if (res->status == 200) {
        drill_count(r, s, now, 1, res->ms, NULL);
        return;
    }
    drill_failkinds_add(&r->kinds, res->status, res->fail);
    char desc[320];
    drill_failure_text(s, res->status, res->fail, res->body, res->body_len, desc, sizeof desc);
    drill_count(r, s, now, 0, res->ms, desc);
}

static void issue_one(drill_run *r, double now)
{
    drill_sidecar *s = &r->sc[r->rr++ % (uint64_t)r->o->n_clients];
    drill_hc *c = NULL;
    for (int i = 0; i < s->n_conns && !c; i++)
        if (!drill_hc_busy(s->conns[i]))
            c = s->conns[i];
    if (!c)
        c = new_conn(r, s);
    if (!c) {
        r->cur_skipped++;
        r->total_skipped++;
        return;
    }
    if (drill_hc_get(c, DRILL_TRAFFIC_PATH, on_answer, s) != 0) {
        r->kinds.other++;
        char desc[200];
        snprintf(desc, sizeof desc, "cannot open a connection to %s's outbound listener", s->name);
        drill_count(r, s, now, 0, 0, desc);
    }
}

void drill_traffic_tick(drill_run *r, double now_t)
{
    if (r->stopping || now_t < 0)
        return;
    /* Request k is due at k / rate; the first at T+0. */
    int64_t due = (int64_t)floor(r->o->rate * now_t) + 1;
    while (r->issued < due) {
        r->issued++;
        issue_one(r, now_t);
    }
}

void drill_traffic_free(drill_run *r)
{
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        for (int k = 0; k < s->n_conns; k++) {
            r->stale_retries += drill_hc_stale_retries(s->conns[k]);
            drill_hc_free(s->conns[k]);
            s->conns[k] = NULL;
        }
        s->n_conns = 0;
    }
}
