/* drill/drill_failover.c — replica mode: who to kill, who moved, the verdicts
 * (see drill_failover.h). Pure. */
#include "drill/drill_failover.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int drill_failover_pick(const drill_run *r)
{
    int best = -1, best_n = 0;
    for (int k = 0; k < r->o->replicas && k < DRILL_MAX_REPLICAS; k++) {
        int n = 0;
        for (int i = 0; i < r->n_sc; i++)
            n += r->sc[i].server[0] && strcmp(r->sc[i].server, r->replica_addr[k]) == 0;
        if (n > best_n) {
            best = k;
            best_n = n;
        }
    }
    return best;
}

int drill_failover_mark(drill_run *r, int k, double now)
{
    int n = 0;
    r->killed_replica = k;
    r->killed_at = now;
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        s->on_killed = strcmp(s->server, r->replica_addr[k]) == 0;
        s->moved_at = -1;
        s->moved_to[0] = '\0';
        n += s->on_killed;
    }
    return n;
}

void drill_failover_note(drill_run *r, drill_sidecar *s, const char *server, double now)
{
    snprintf(s->server, sizeof s->server, "%s", server ? server : "");
    if (r->killed_replica < 0 || !s->on_killed || s->moved_at >= 0 || !s->server[0] ||
        strcmp(s->server, r->replica_addr[r->killed_replica]) == 0)
        return;
    s->moved_at = now;
    snprintf(s->moved_to, sizeof s->moved_to, "%s", s->server);
}

int drill_failover_all_moved(const drill_run *r)
{
    for (int i = 0; i < r->n_sc; i++)
        if (r->sc[i].on_killed && r->sc[i].moved_at < 0)
            return 0;
    return 1;
}

void drill_failover_parse_server(const char *json, char *out, size_t len)
{
    out[0] = '\0';
    const char *x = json ? strstr(json, "\"xds\"") : NULL;
    if (!x)
        return;
    const char *c = strstr(x, "\"connected\":");
    if (!c || strncmp(c + 12, "true", 4) != 0)
        return;
    const char *s = strstr(x, "\"server\":\"");
    if (!s)
        return;
    s += 10;
    size_t n = 0;
    while (s[n] && s[n] != '"' && n + 1 < len)
        n++;
    if (s[n] != '"')
        return;     /* cut off or too long: not a server we know */
    memcpy(out, s, n);
    out[n] = '\0';
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void drill_failover_derive(const drill_run *r, drill_failover_facts *f)
{
    memset(f, 0, sizeof *f);
    f->max_s = f->median_s = -1;
    double *t = calloc((size_t)r->n_sc + 1, sizeof *t);
    for (int i = 0; i < r->n_sc; i++) {
        const drill_sidecar *s = &r->sc[i];
        if (!s->on_killed)
            continue;
        f->affected++;
        if (s->moved_at < 0)
            continue;
        double d = s->moved_at - r->killed_at;
        if (t)
            t[f->moved] = d;
        f->moved++;
        if (d > f->max_s) {
            f->max_s = d;
            snprintf(f->slowest, sizeof f->slowest, "%s", s->name);
        }
    }
    if (t && f->moved) {
        qsort(t, (size_t)f->moved, sizeof *t, cmp_double);
        f->median_s = f->moved % 2 ? t[f->moved / 2]
                                   : (t[f->moved / 2 - 1] + t[f->moved / 2]) / 2;
    }
    free(t);
}

static void verdict(drill_results *res, const char *id, int pass, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void verdict(drill_results *res, const char *id, int pass, const char *fmt, ...)
{
    if (res->n_v >= (int)(sizeof res->v / sizeof res->v[0]))
        return;
    drill_verdict *v = &res->v[res->n_v++];
    v->id = id;
    v->pass = pass;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->text, sizeof v->text, fmt, ap);
    va_end(ap);
}

void drill_failover_evaluate(const drill_run *r, drill_results *res)
{
    memset(res, 0, sizeof *res);
    drill_failover_facts f;
    drill_failover_derive(r, &f);
    int killed = r->killed_replica >= 0 && r->killed_at >= 0;
    if (!killed) {
        verdict(res, "replica_killed", 0, "no replica was killed (no sidecar was connected at "
                "--kill-after, or the drill stopped before)");
    } else {
        verdict(res, "replica_killed", -1, "replica %d of %d (%s) killed at T+%.1fs; %d of %d "
                "sidecars were on it", r->killed_replica + 1, r->o->replicas,
                r->replica_addr[r->killed_replica], r->killed_at, f.affected, r->n_sc);
        if (f.affected == 0)
            verdict(res, "sidecars_moved", 0, "no sidecar was on the killed replica: nothing "
                    "failed over");
        else if (f.moved == f.affected)
            verdict(res, "sidecars_moved", 1, "all %d moved to another replica: fail-over "
                    "%.2fs at most (%s), median %.2fs", f.affected, f.max_s, f.slowest,
                    f.median_s);
        else
            verdict(res, "sidecars_moved", 0, "%d of %d did not move to another replica",
                    f.affected - f.moved, f.affected);
    }
    uint64_t failed = r->total_failed;
    verdict(res, "zero_failures", failed == 0 ? 1 : 0, "%llu of %llu requests failed over the "
            "whole run (%llu after the kill)", (unsigned long long)failed,
            (unsigned long long)(r->total_ok + r->total_failed),
            (unsigned long long)r->phase_failed[DRILL_PH_OUTAGE]);
    if (!killed)
        snprintf(res->headline, sizeof res->headline, "no replica killed");
    else
        snprintf(res->headline, sizeof res->headline, "replica killed: %d of %d sidecars moved%s "
                 "| %llu failed requests", f.moved, f.affected,
                 f.moved ? "" : " (none)", (unsigned long long)failed);
    if (killed && f.moved) {
        size_t o = strlen(res->headline);
        snprintf(res->headline + o, sizeof res->headline - o, " | fail-over %.2fs at most",
                 f.max_s);
    }

    res->all_met = 1;
    if (r->o->expect_zero_before_expiry) {
        drill_expect *e = &res->e[res->n_e++];
        e->flag = "--expect-zero-failures-before-expiry";
        e->met = killed && failed == 0;
        snprintf(e->detail, sizeof e->detail, "%llu failed", (unsigned long long)failed);
    }
    if (r->o->expect_failover_ms >= 0) {
        drill_expect *e = &res->e[res->n_e++];
        snprintf(e->flag_buf, sizeof e->flag_buf, "--expect-failover-within %s",
                 r->o->expect_failover_arg ? r->o->expect_failover_arg : "?");
        e->flag = e->flag_buf;
        e->met = killed && f.affected > 0 && f.moved == f.affected &&
                 f.max_s * 1000.0 <= (double)r->o->expect_failover_ms;
        if (!killed || f.affected == 0)
            snprintf(e->detail, sizeof e->detail, "nothing failed over");
        else if (f.moved < f.affected)
            snprintf(e->detail, sizeof e->detail, "%d of %d sidecars did not move",
                     f.affected - f.moved, f.affected);
        else
            snprintf(e->detail, sizeof e->detail, "slowest %s in %.2fs", f.slowest, f.max_s);
    }
    for (int i = 0; i < res->n_e; i++)
        res->all_met &= res->e[i].met;
}
