/* drill/drill_model.c — the drill's record itself: a run with every event still
 * "not yet", its release, the names of the phases, how a child ended in words,
 * and the progress lines. No process, socket or clock is touched here. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "drill/drill_model.h"

drill_run *drill_run_new(drill_opts *o)
{
    drill_run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->o = o;
    r->n_sc = o->n_clients + o->n_servers;
    r->sc = calloc((size_t)r->n_sc, sizeof *r->sc);
    if (!r->sc) {
        free(r);
        return NULL;
    }
    r->meshd_starts = 0;
    double *events[] = {&r->killed_at, &r->planned_restart_at, &r->restarted_at, &r->listening_at,
                        &r->first_expiry_at, &r->last_expiry_at, &r->first_fail_at,
                        &r->all_fresh_at, &r->all_ready_at, &r->converged_at, &r->healthy_from,
                        &r->recovered_at, &r->ended_at};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        *events[i] = -1;
    for (int p = 0; p < DRILL_N_PHASES; p++)
        r->phase_first_fail_at[p] = -1;
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        s->run = r;
        s->index = i;
        s->role = i < o->n_clients ? DRILL_CLIENT : DRILL_SERVER;
        s->probed_at = s->expires_at = s->fresh_at = s->ready_at = s->converged_at = -1;
        s->first_fail_at = -1;
        s->moved_at = -1;
    }
    r->killed_replica = -1;
    return r;
}

void drill_run_free(drill_run *r)
{
    if (!r)
        return;
    if (r->st)
        store_close(r->st);
    free(r->secs);
    free(r->fail_t);
    free(r->sc);
    free(r);
}

const char *drill_phase_name(enum drill_phase p)
{
    static const char *names[DRILL_N_PHASES] = {"steady", "outage", "expired", "recovery",
                                                "recovered"};
    return (unsigned)p < DRILL_N_PHASES ? names[p] : "?";
}

void drill_child_describe(const drill_child *ch, char *buf, size_t len)
{
    if (!ch->exited)
        snprintf(buf, len, "running (pid %d)", (int)ch->pid);
    else if (WIFEXITED(ch->status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(ch->status));
    else if (WIFSIGNALED(ch->status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(ch->status),
                 strsignal(WTERMSIG(ch->status)));
    else
        snprintf(buf, len, "ended (wait status %d)", ch->status);
}

double drill_wall_to_t(const drill_run *r, int64_t wall)
{
    return (double)wall - r->wall_t0;
}

void drill_say(const drill_run *r, const char *fmt, ...)
{
    if (r->o->quiet)
        return;
    FILE *f = r->o->progress_stderr ? stderr : stdout;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
}
