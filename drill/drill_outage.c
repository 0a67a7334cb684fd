/* drill/drill_outage.c — the rules that move a drill through its phases:
 *
 *   steady ──kill-after──▶ outage ──first SVID expires──▶ expired ──restart──▶
 *   recovery ──every sidecar ready, renewed, synced + 3 clean seconds──▶ recovered
 *
 * what each probe answer means for a sidecar, the outage budget and who expires
 * first, and what "recovered" takes. Pure: drill_phase.c and drill_probe.c do the
 * killing, starting and probing and pass the times in.
 *
 * While meshd is down nothing can renew an SVID, so the SVID a sidecar holds
 * during the outage fixes when it expires; it is kept apart (outage_svid) because
 * a rotation may land in the last second before the kill.
 *
 * "Recovered" means, for every sidecar at once: /ready answers 200, its SVID is
 * valid and (if it expired during the outage) a new one, and meshd reports its
 * xDS stream reconnected since the restart with every type ACKed at the version
 * sent; and traffic has been clean (answers, no failures) for 3 whole seconds. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "drill/drill_outage.h"

/* ---- probe answers ----------------------------------------------------------------- */

void drill_note_certs(drill_run *r, drill_sidecar *s, const drill_svid *v, double now,
                      double wall_now)
{
    s->svid = *v;
    s->probed_at = now;
    if (r->phase == DRILL_PH_OUTAGE || r->phase == DRILL_PH_EXPIRED) {
        s->outage_svid = *v;
        s->expires_at = drill_wall_to_t(r, v->not_after);
    }
    /* Stamped when the answer arrives, not at the next check. */
    if (r->phase == DRILL_PH_RECOVERY && s->fresh_at < 0 && drill_sidecar_fresh(s, wall_now))
        s->fresh_at = s->probed_at;
}

void drill_note_ready(drill_run *r, drill_sidecar *s, int status, const char *fail,
                      const char *body, size_t body_len, double now)
{
    s->ready = status == 200;
    if (s->ready) {
        s->ready_msg[0] = '\0';
        if (r->phase == DRILL_PH_RECOVERY && s->ready_at < 0)
            s->ready_at = now;
        return;
    }
    if (status) {
        size_t o = 0;
        for (size_t i = 0; i < body_len && o + 1 < sizeof s->ready_msg; i++) {
            char ch = body[i];
            if (ch == '\n' || ch == '\r')
                break;
            s->ready_msg[o++] = ch;
        }
        s->ready_msg[o] = '\0';
    } else {
        snprintf(s->ready_msg, sizeof s->ready_msg, "admin endpoint: %s",
                 fail ? fail : "no answer");
    }
}

/* ---- kill, expiry, restart ------------------------------------------------------------ */

int drill_kill_due(const drill_run *r, double now)
{
    return now + 1e-6 >= (double)r->o->kill_after_ms / 1000.0;
}

void drill_outage_begin(drill_run *r, double now)
{
    r->killed_at = now;
    r->phase = DRILL_PH_OUTAGE;
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        s->outage_svid = s->svid;
        s->expires_at = s->svid.present ? drill_wall_to_t(r, s->svid.not_after) : -1;
    }
}

size_t drill_first_to_expire_list(const drill_run *r, const char **names, size_t max)
{
    size_t n = 0;
    for (int i = 0; i < r->n_sc && n < max; i++)
        if (r->sc[i].expires_at >= 0 && r->sc[i].expires_at - r->first_expiry_at < 1e-6)
            names[n++] = r->sc[i].name;
    return n;
}

void drill_first_to_expire(const drill_run *r, char *buf, size_t len)
{
    int n = 0;
    const char *who = "?";
    for (int i = 0; i < r->n_sc; i++)
        if (r->sc[i].expires_at >= 0 && r->sc[i].expires_at - r->first_expiry_at < 1e-6) {
            if (!n)
                who = r->sc[i].name;
            n++;
        }
    if (n > 1)
        snprintf(buf, len, "%s and %d more", who, n - 1);
    else
        snprintf(buf, len, "%s", who);
}

/* Expiry times come from the SVIDs held during the outage (probes refresh them:
 * a rotation may have landed in the last second before the kill). */
void drill_update_expiry(drill_run *r)
{
    r->first_expiry_at = r->last_expiry_at = -1;
    for (int i = 0; i < r->n_sc; i++) {
        double e = r->sc[i].expires_at;
        if (e < 0)
            continue;
        if (r->first_expiry_at < 0 || e < r->first_expiry_at)
            r->first_expiry_at = e;
        if (e > r->last_expiry_at)
            r->last_expiry_at = e;
    }
    if (r->first_expiry_at >= 0)
        drill_first_to_expire(r, r->budget_min_name, sizeof r->budget_min_name);
    /* The outage budget: seconds from the kill to each sidecar's expiry. */
    if (r->first_expiry_at >= 0) {
        r->budget_min_s = (int64_t)llround(r->first_expiry_at - r->killed_at);
        r->budget_max_s = (int64_t)llround(r->last_expiry_at - r->killed_at);
    }
    if (r->o->outage_ms)
        r->planned_restart_at = r->killed_at + (double)r->o->outage_ms / 1000.0;
    else if (r->last_expiry_at >= 0)
        r->planned_restart_at = ceil(r->last_expiry_at) + DRILL_OUTAGE_MARGIN_S;
    else
        r->planned_restart_at = r->killed_at + (double)r->o->ttl_s + DRILL_OUTAGE_MARGIN_S;
}

int drill_watch_expiry(drill_run *r, double now)
{
    if (r->phase != DRILL_PH_OUTAGE || r->first_expiry_at < 0 || now < r->first_expiry_at)
        return 0;
    r->phase = DRILL_PH_EXPIRED;
    char who[96];
    drill_first_to_expire(r, who, sizeof who);
    drill_say(r, "  >> T+%.1fs  first SVID expired (%s), %.1fs into the outage: mTLS that "
              "needs it now fails closed", r->first_expiry_at, who,
              r->first_expiry_at - r->killed_at);
    return 1;
}

int drill_restart_due(const drill_run *r, double now)
{
    return now + 1e-6 >= r->planned_restart_at;
}

int drill_outage_end(drill_run *r, double now)
{
    r->restarted_at = now;
    r->phase = DRILL_PH_RECOVERY;
    int expired = 0;
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        s->expired_in_outage = s->expires_at >= 0 && s->expires_at <= now;
        expired += s->expired_in_outage;
    }
    return expired;
}

/* ---- recovery ---------------------------------------------------------------------- */

int drill_sidecar_fresh(const drill_sidecar *s, double wall_now)
{
    if (!s->svid.present || (double)s->svid.not_after <= wall_now)
        return 0;
    return !s->expired_in_outage || strcmp(s->svid.serial, s->outage_svid.serial) != 0;
}

int drill_stream_synced(const store_proxy *p, int64_t since)
{
    if (!p->connected || p->connected_at < since || p->n_types == 0)
        return 0;
    for (size_t t = 0; t < p->n_types; t++) {
        const store_proxy_type_status *ts = &p->types[t];
        if (!ts->sent_version[0])
            continue;
        if (strcmp(ts->sent_version, ts->acked_version) != 0)
            return 0;
        if (ts->nack_version[0] && strcmp(ts->nack_version, ts->sent_version) == 0)
            return 0;
    }
    return 1;
}

void drill_note_proxy_status(drill_run *r, const store_proxy *list, size_t n, double now)
{
    int64_t since = (int64_t)floor(r->wall_t0 + r->restarted_at);
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        if (s->converged_at >= 0)
            continue;
        for (size_t k = 0; k < n; k++)
            if (strcmp(list[k].node_id, s->name) == 0 && drill_stream_synced(&list[k], since))
                s->converged_at = now;
    }
}

int drill_recovery_state(drill_run *r, double now, double wall_now)
{
    int n_fresh = 0, n_ready = 0, n_conv = 0;
    double last_fresh = 0, last_ready = 0, last_conv = 0;
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        if (drill_sidecar_fresh(s, wall_now)) {
            if (s->fresh_at < 0)
                s->fresh_at = now;
            n_fresh++;
            last_fresh = fmax(last_fresh, s->fresh_at);
        }
        if (s->ready) {
            if (s->ready_at < 0)
                s->ready_at = now;
            n_ready++;
            last_ready = fmax(last_ready, s->ready_at);
        }
        if (s->converged_at >= 0) {
            n_conv++;
            last_conv = fmax(last_conv, s->converged_at);
        }
    }
    if (n_fresh == r->n_sc && r->all_fresh_at < 0) {
        r->all_fresh_at = last_fresh;
        drill_say(r, "  >> T+%.1fs  every sidecar holds a valid SVID (renewed where it had "
                  "expired)", r->all_fresh_at);
    }
    if (n_ready == r->n_sc && r->all_ready_at < 0)
        r->all_ready_at = last_ready;
    if (n_conv == r->n_sc && r->converged_at < 0) {
        r->converged_at = last_conv;
        drill_say(r, "  >> T+%.1fs  config converged: meshd reports every sidecar reconnected "
                  "and ACKed", r->converged_at);
    }
    return n_fresh == r->n_sc && n_ready == r->n_sc && n_conv == r->n_sc;
}

int drill_recovery_second(drill_run *r, const drill_second *sec, int all)
{
    if ((double)sec->t >= r->restarted_at - 1e-6 && sec->ok > 0 && sec->failed == 0) {
        if (r->healthy_streak++ == 0)
            r->healthy_from = sec->t;
    } else {
        r->healthy_streak = 0;
        r->healthy_from = -1;
    }
    if (!all || r->healthy_streak < DRILL_HEALTHY_SECONDS)
        return 0;
    r->recovered_at = fmax(fmax(r->healthy_from, r->all_fresh_at),
                           fmax(r->all_ready_at, r->converged_at));
    return 1;
}

void drill_mark_recovered(drill_run *r)
{
    r->phase = DRILL_PH_RECOVERED;
    /* The seconds mostly after the moment of recovery count as recovered. */
    for (size_t i = 0; i < r->n_secs; i++)
        if ((double)r->secs[i].t + 0.5 >= r->recovered_at)
            r->secs[i].phase = DRILL_PH_RECOVERED;
}

int drill_recovery_timed_out(const drill_run *r, double now)
{
    return now - r->restarted_at >= (double)r->o->recovery_timeout_ms / 1000.0 - 1e-6;
}

const char *drill_not_recovered_reason(const drill_sidecar *s, double wall_now)
{
    if (!s->ready)
        return s->ready_msg[0] ? s->ready_msg : "not ready";
    if (!drill_sidecar_fresh(s, wall_now))
        return "SVID not renewed";
    if (s->converged_at < 0)
        return "meshd does not report its config in sync";
    return NULL;
}
