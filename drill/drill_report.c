/* drill/drill_report.c — the drill's conclusions for the operator: the terminal
 * summary (verdicts, requests, latency, expectations), the per-second CSV, and
 * the output files every report goes to ("-" is stdout). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drill/drill_report.h"
#include "drill/drill_stats.h"

void drill_print_summary(const drill_run *r, const drill_results *res, FILE *f)
{
    fprintf(f, "\nDrill: %d client + %d server sidecars, SVID TTL %llds, %.0f req/s\n",
            r->o->n_clients, r->o->n_servers, (long long)r->o->ttl_s, r->o->rate);
    for (int i = 0; i < res->n_v; i++)
        fprintf(f, "  %-4s  %s\n", res->v[i].pass > 0 ? "PASS" : res->v[i].pass == 0 ? "FAIL" : "INFO",
                res->v[i].text);
    const drill_hist *st = &r->phase_hist[DRILL_PH_STEADY], *ou = &r->phase_hist[DRILL_PH_OUTAGE];
    fprintf(f, "  requests: %llu ok, %llu failed, %llu skipped", (unsigned long long)r->total_ok,
            (unsigned long long)r->total_failed, (unsigned long long)r->total_skipped);
    if (st->n)
        fprintf(f, "; latency p50/p99 steady %.2f/%.2f ms", drill_hist_quantile(st, 0.5),
                drill_hist_quantile(st, 0.99));
    if (ou->n)
        fprintf(f, ", during the outage %.2f/%.2f ms", drill_hist_quantile(ou, 0.5),
                drill_hist_quantile(ou, 0.99));
    fputc('\n', f);
    if (res->n_e) {
        fprintf(f, "Expectations:\n");
        for (int i = 0; i < res->n_e; i++)
            fprintf(f, "  %-7s  %s: %s\n", res->e[i].met ? "met" : "NOT MET", res->e[i].flag,
                    res->e[i].detail);
    }
    fflush(f);
}

FILE *drill_open_out(const char *path, mesh_err *err)
{
    if (strcmp(path, "-") == 0)
        return stdout;
    FILE *f = fopen(path, "w");
    if (!f)
        mesh_err_set(err, MESH_EIO, "cannot write %s: %m", path);
    return f;
}

int drill_close_out(FILE *f, const char *path, mesh_err *err)
{
    if (f == stdout)
        return fflush(f) == 0 ? MESH_OK : mesh_err_set(err, MESH_EIO, "writing stdout: %m");
    if (ferror(f) | fclose(f))
        return mesh_err_set(err, MESH_EIO, "cannot write %s: %m", path);
    return MESH_OK;
}

void drill_print_csv(const drill_run *r, FILE *f)
{
    /* The first six columns are the documented core; more may be appended later. */
    fputs("t,phase,ok,failed,min_budget_s,meshd_up,skipped,max_budget_s,ready,expired,"
          "p50_ms,p99_ms\n", f);
    for (size_t i = 0; i < r->n_secs; i++) {
        const drill_second *s = &r->secs[i];
        fprintf(f, "%d,%s,%u,%u,%lld,%d,%u,%lld,%d,%d,%.3f,%.3f\n", s->t,
                drill_phase_name(s->phase), s->ok, s->failed, (long long)floor(s->min_budget),
                s->meshd_up, s->skipped, (long long)floor(s->max_budget), s->ready, s->expired,
                s->p50_ms, s->p99_ms);
    }
}

int drill_write_csv(const drill_run *r, const char *path, mesh_err *err)
{
    FILE *f = drill_open_out(path, err);
    if (!f)
        return MESH_EIO;
    drill_print_csv(r, f);
    return drill_close_out(f, path, err);
}
