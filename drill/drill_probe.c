/* drill/drill_probe.c — what every sidecar says about itself, once a second:
 * GET /certs (its current SVID: serial, notBefore, notAfter) and GET /ready on its
 * admin endpoint, each on its own keep-alive connection so a slow one never
 * delays the other. A probe still in flight from the last second is not doubled.
 *
 * While meshd is down nothing can renew an SVID, so the SVID a sidecar holds
 * during the outage fixes when it expires; it is kept apart (outage_svid) because
 * a rotation may land in the last second before the kill. */
#include <stdio.h>
#include <string.h>

#include "drill/drill.h"

#define PROBE_TIMEOUT_MS 2000

int drill_probe_init(drill_run *r, mesh_err *err)
{
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        s->probe_certs = drill_hc_new(r->base, s->port_admin, "127.0.0.1", PROBE_TIMEOUT_MS, 16384);
        s->probe_ready = drill_hc_new(r->base, s->port_admin, "127.0.0.1", PROBE_TIMEOUT_MS, 256);
        if (!s->probe_certs || !s->probe_ready)
            return mesh_err_set(err, MESH_ENOMEM, "out of memory for admin probes");
    }
    return MESH_OK;
}

static void on_certs(void *arg, const drill_hc_result *res)
{
    drill_sidecar *s = arg;
    drill_run *r = s->run;
    drill_svid v;
    if (res->status != 200 || drill_parse_certs(res->body, &v) != 0 || !v.present)
        return;   /* keep what we knew; /ready tells whether it is healthy */
    s->svid = v;
    s->probed_at = drill_now_t(r);
    if (r->phase == DRILL_PH_OUTAGE || r->phase == DRILL_PH_EXPIRED) {
        s->outage_svid = v;
        s->expires_at = drill_wall_to_t(r, v.not_after);
    }
    /* Stamped when the answer arrives, not at the next check. */
    if (r->phase == DRILL_PH_RECOVERY && s->fresh_at < 0 &&
        drill_sidecar_fresh(s, drill_wall_now()))
        s->fresh_at = s->probed_at;
}

static void on_ready(void *arg, const drill_hc_result *res)
{
    drill_sidecar *s = arg;
    s->ready = res->status == 200;
    if (s->ready) {
        s->ready_msg[0] = '\0';
        if (s->run->phase == DRILL_PH_RECOVERY && s->ready_at < 0)
            s->ready_at = drill_now_t(s->run);
        return;
    }
    if (res->status) {
        size_t o = 0;
        for (size_t i = 0; i < res->body_len && o + 1 < sizeof s->ready_msg; i++) {
            char ch = res->body[i];
            if (ch == '\n' || ch == '\r')
                break;
            s->ready_msg[o++] = ch;
        }
        s->ready_msg[o] = '\0';
    } else {
        snprintf(s->ready_msg, sizeof s->ready_msg, "admin endpoint: %s",
                 res->fail ? res->fail : "no answer");
    }
}

void drill_probe_all(drill_run *r)
{
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        if (!drill_hc_busy(s->probe_certs))
            drill_hc_get(s->probe_certs, "/certs", on_certs, s);
        if (!drill_hc_busy(s->probe_ready))
            drill_hc_get(s->probe_ready, "/ready", on_ready, s);
    }
}

void drill_probe_free(drill_run *r)
{
    for (int i = 0; i < r->n_sc; i++) {
        drill_hc_free(r->sc[i].probe_certs);
        drill_hc_free(r->sc[i].probe_ready);
        r->sc[i].probe_certs = r->sc[i].probe_ready = NULL;
    }
}
