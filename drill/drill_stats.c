/* drill/drill_stats.c — counting what the traffic did: latency histograms, each
 * finished request into its second, phase and totals, failures by cause and in
 * words, and the closing of each second of the timeline with the sidecars'
 * remaining budgets. Pure: the runtime passes the times in.
 *
 * Every failure's own time is kept (up to MAX_FAIL_TIMES) so that "before expiry"
 * is decided exactly once the expiry times are final (drill_verdict.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drill/drill_stats.h"

#define MAX_FAIL_TIMES 4000000

/* ---- latency histogram --------------------------------------------------------------- */

int drill_lat_bucket(double ms)
{
    double us = ms * 1000.0;
    if (us < 0)
        us = 0;
    if (us < 1000)
        return (int)(us / 10);
    if (us < 10000)
        return 100 + (int)((us - 1000) / 100);
    if (us < 100000)
        return 190 + (int)((us - 10000) / 1000);
    if (us < 1000000)
        return 280 + (int)((us - 100000) / 10000);
    if (us < 10000000)
        return 370 + (int)((us - 1000000) / 100000);
    return DRILL_LAT_BUCKETS - 1;
}

double drill_lat_bucket_ms(int b)
{
    double us;
    if (b < 100)
        us = b * 10 + 5;
    else if (b < 190)
        us = 1000 + (b - 100) * 100 + 50;
    else if (b < 280)
        us = 10000 + (b - 190) * 1000 + 500;
    else if (b < 370)
        us = 100000 + (b - 280) * 10000 + 5000;
    else
        us = 1000000 + (b - 370) * 100000.0 + 50000;
    return us / 1000.0;
}

void drill_hist_add(drill_hist *h, double ms)
{
    int b = drill_lat_bucket(ms);
    if (b >= DRILL_LAT_BUCKETS)
        b = DRILL_LAT_BUCKETS - 1;
    h->b[b]++;
    h->n++;
}

double drill_hist_quantile(const drill_hist *h, double q)
{
    if (!h->n)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0;
    if (want == 0)
        want = 1;
    for (int b = 0; b < DRILL_LAT_BUCKETS; b++) {
        seen += h->b[b];
        if (seen >= want)
            return drill_lat_bucket_ms(b);
    }
    return drill_lat_bucket_ms(DRILL_LAT_BUCKETS - 1);
}

/* ---- counting ----------------------------------------------------------------------- */

void drill_count(drill_run *r, drill_sidecar *s, double now_t, int ok, double ms,
                 const char *fail_desc)
{
    int ph = (int)r->phase;
    if (ok) {
        r->cur_ok++;
        r->total_ok++;
        r->phase_ok[ph]++;
        s->ok++;
        drill_hist_add(&r->cur_hist, ms);
        drill_hist_add(&r->phase_hist[ph], ms);
        return;
    }
    r->cur_failed++;
    r->total_failed++;
    r->phase_failed[ph]++;
    s->failed++;
    if (s->first_fail_at < 0)
        s->first_fail_at = now_t;
    if (r->first_fail_at < 0) {
        r->first_fail_at = now_t;
        snprintf(r->first_fail_desc, sizeof r->first_fail_desc, "%s",
                 fail_desc ? fail_desc : "failed");
    }
    if (r->phase_first_fail_at[ph] < 0) {
        r->phase_first_fail_at[ph] = now_t;
        snprintf(r->phase_first_fail[ph], sizeof r->phase_first_fail[ph], "%s",
                 fail_desc ? fail_desc : "failed");
        /* Failures going on from the expired phase into recovery are no news. */
        if (r->phase != DRILL_PH_RECOVERY || r->phase_first_fail_at[DRILL_PH_EXPIRED] < 0)
            drill_say(r, "  >> T+%.1fs  first failed request%s: %s", now_t,
                      r->phase == DRILL_PH_EXPIRED ? " since the expiry"
                      : r->phase == DRILL_PH_STEADY ? " (meshd up!)"
                      : r->phase == DRILL_PH_OUTAGE ? " (no SVID expired yet!)" : "",
                      r->phase_first_fail[ph]);
    }
    if (r->n_fail_t == r->cap_fail_t && !r->fail_t_capped) {
        size_t nc = r->cap_fail_t ? r->cap_fail_t * 2 : 4096;
        float *nf = nc <= MAX_FAIL_TIMES ? realloc(r->fail_t, nc * sizeof *nf) : NULL;
        if (nf) {
            r->fail_t = nf;
            r->cap_fail_t = nc;
        } else {
            r->fail_t_capped = 1;
        }
    }
    if (r->n_fail_t < r->cap_fail_t)
        r->fail_t[r->n_fail_t++] = (float)now_t;
}

void drill_failkinds_add(drill_failkinds *k, int status, const char *fail)
{
    if (status >= 100 && status <= 599) {
        k->by_status[status / 100]++;
        switch (status) {
        case 502: k->s502++; break;
        case 503: k->s503++; break;
        case 504: k->s504++; break;
        case 403: k->s403++; break;
        case 404: k->s404++; break;
        default: break;
        }
    } else if (fail && strcmp(fail, "timeout") == 0) {
        k->timeout++;
    } else if (fail && strcmp(fail, "connection refused") == 0) {
        k->refused++;
    } else if (fail && strncmp(fail, "connection", 10) == 0) {
        k->closed++;
    } else {
        k->other++;
    }
}

void drill_body_line(const char *body, size_t body_len, char *out, size_t len)
{
    size_t o = 0, i = 0;
    for (; i < body_len && o + 4 < len; i++) {
        unsigned char ch = (unsigned char)body[i];
        if (ch == '\n' || ch == '\r')
            break;
        out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (i < body_len && body[i] != '\n' && body[i] != '\r') {
        memcpy(out + o, "...", 3);   /* cut short: say so */
        o += 3;
    }
    out[o] = '\0';
}

void drill_failure_text(const drill_sidecar *s, int status, const char *fail, const char *body,
                        size_t body_len, char *out, size_t len)
{
    if (status) {
        char line[200];
        drill_body_line(body, body_len, line, sizeof line);
        snprintf(out, len, "HTTP %d via %s%s%s", status, s->name, line[0] ? ": " : "", line);
    } else {
        snprintf(out, len, "%s via %s (its outbound listener 127.0.0.1:%d)",
                 fail ? fail : "no answer", s->name, s->port_out);
    }
}

/* ---- one second of the timeline ----------------------------------------------------- */

static void sample_budgets(const drill_run *r, drill_second *sec, double wall_now)
{
    int have = 0;
    for (int i = 0; i < r->n_sc; i++) {
        const drill_sidecar *s = &r->sc[i];
        if (s->ready)
            sec->ready++;
        if (!s->svid.present)
            continue;
        double b = (double)s->svid.not_after - wall_now;
        if (b <= 0)
            sec->expired++;
        if (!have || b < sec->min_budget)
            sec->min_budget = b;
        if (!have || b > sec->max_budget)
            sec->max_budget = b;
        have = 1;
    }
}

drill_second *drill_second_close(drill_run *r, double wall_now, int meshd_up)
{
    if (r->n_secs == r->cap_secs) {
        size_t nc = r->cap_secs ? r->cap_secs * 2 : 256;
        drill_second *ns = realloc(r->secs, nc * sizeof *ns);
        if (!ns)
            return NULL;
        r->secs = ns;
        r->cap_secs = nc;
    }
    drill_second *sec = &r->secs[r->n_secs++];
    memset(sec, 0, sizeof *sec);
    sec->t = r->cur_sec;
    sec->phase = r->phase;
    sec->ok = r->cur_ok;
    sec->failed = r->cur_failed;
    sec->skipped = r->cur_skipped;
    sec->p50_ms = drill_hist_quantile(&r->cur_hist, 0.50);
    sec->p99_ms = drill_hist_quantile(&r->cur_hist, 0.99);
    sample_budgets(r, sec, wall_now);
    sec->meshd_up = meshd_up;
    r->cur_sec++;
    r->cur_ok = r->cur_failed = r->cur_skipped = 0;
    memset(&r->cur_hist, 0, sizeof r->cur_hist);
    return sec;
}

/* One line per second; T is the start of the second the line counts. */
void drill_print_second(const drill_run *r, const drill_second *s)
{
    if (s->t % 20 == 0)
        drill_say(r, "  %5s  %-9s %6s %6s %7s %6s %7s %-5s %7s", "T", "PHASE", "OK/S", "FAIL/S",
                  "BUDGET", "READY", "EXPIRED", "MESHD", "P99");
    char budget[16], ready[16], expired[16], p99[16];
    snprintf(budget, sizeof budget, "%.0fs", floor(s->min_budget));
    snprintf(ready, sizeof ready, "%d/%d", s->ready, r->n_sc);
    snprintf(expired, sizeof expired, "%d/%d", s->expired, r->n_sc);
    if (s->ok)
        snprintf(p99, sizeof p99, "%.1fms", s->p99_ms);
    else
        snprintf(p99, sizeof p99, "-");
    drill_say(r, "  %5d  %-9s %6u %6u %7s %6s %7s %-5s %7s", s->t, drill_phase_name(s->phase),
              s->ok, s->failed, budget, ready, expired, s->meshd_up ? "up" : "down", p99);
}
