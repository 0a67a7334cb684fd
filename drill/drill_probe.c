/* drill/drill_probe.c — what every sidecar says about itself, once a second:
 * GET /certs (its current SVID: serial, notBefore, notAfter) and GET /ready on its
 * admin endpoint, each on its own keep-alive connection so a slow one never
 * delays the other. A probe still in flight from the last second is not doubled.
 * What an answer means for the sidecar is drill_outage.c's (drill_note_certs,
 * drill_note_ready). */

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
    drill_svid v;
    if (res->status != 200 || drill_parse_certs(res->body, &v) != 0 || !v.present)
        return;   /* keep what we knew; /ready tells whether it is healthy */
    drill_note_certs(s->run, s, &v, drill_now_t(s->run), drill_wall_now());
}

static void on_ready(void *arg, const drill_hc_result *res)
{
    drill_sidecar *s = arg;
    drill_note_ready(s->run, s, res->status, res->fail, res->body, res->body_len,
                     drill_now_t(s->run));
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
