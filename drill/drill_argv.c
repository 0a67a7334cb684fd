/* drill/drill_argv.c — the command lines of the drill's children: meshd, a
 * sidecar, a test app. Built before fork (nothing but exec happens in the child).
 * Join tokens go by file (--token-file), never on a command line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "drill/drill_argv.h"

typedef struct argv_b {
    char **v;
    size_t n, cap;
    int oom;
} argv_b;

static void av_add(argv_b *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void av_add(argv_b *a, const char *fmt, ...)
{
    if (a->oom)
        return;
    if (a->n + 2 > a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 32;
        char **nv = realloc(a->v, nc * sizeof *nv);
        if (!nv) {
            a->oom = 1;
            return;
        }
        a->v = nv;
        a->cap = nc;
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s) {
        a->oom = 1;
        return;
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static char **av_done(argv_b *a)
{
    if (a->oom) {
        if (a->v) {
            a->v[a->n] = NULL;
            drill_argv_free(a->v);
        }
        return NULL;
    }
    return a->v;
}

void drill_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

char **drill_meshd_argv(const drill_run *r) { return drill_replica_argv(r, 0); }

char **drill_replica_argv(const drill_run *r, int i)
{
    argv_b a = {0};
    av_add(&a, "%s", r->bin_meshd);
    av_add(&a, "--db");
    av_add(&a, "%s/meshd.db", r->dir);
    av_add(&a, "--listen");
    av_add(&a, "%s", i == 0 ? r->meshd_addr : r->replica_addr[i]);
    av_add(&a, "--svid-ttl");
    av_add(&a, "%llds", (long long)r->o->ttl_s);
    /* The same instance name across the restart: at start meshd marks the streams
     * the killed process held as disconnected, so proxy status is truthful. */
    av_add(&a, "--instance");
    if (i == 0)
        av_add(&a, "meshd-drill");
    else
        av_add(&a, "meshd-drill-%d", i + 1);
    if (r->o->rotate_fraction) {
        av_add(&a, "--rotate-fraction");
        av_add(&a, "%s", r->o->rotate_fraction);
    }
    return av_done(&a);
}

char **drill_sidecar_argv(const drill_run *r, const drill_sidecar *s)
{
    argv_b a = {0};
    av_add(&a, "%s", r->bin_sidecar);
    av_add(&a, "--meshd");
    if (r->o->replicas > 1) {
        /* Every replica, starting at a different one per sidecar so they spread. */
        char list[DRILL_MAX_REPLICAS * 32 + 8] = "";
        size_t n = 0;
        for (int k = 0; k < r->o->replicas; k++) {
            int j = (s->index + k) % r->o->replicas;
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", k ? "," : "",
                                  r->replica_addr[j]);
        }
        av_add(&a, "%s", list);
    } else {
        av_add(&a, "%s", r->meshd_addr);
    }
    av_add(&a, "--ca-bundle");
    av_add(&a, "%s/bundle.pem", r->dir);
    av_add(&a, "--state-dir");
    av_add(&a, "%s/state/%s", r->dir, s->name);
    av_add(&a, "--id");
    av_add(&a, "%s", s->spiffe_id);
    av_add(&a, "--token-file");
    av_add(&a, "%s/tokens/%s.token", r->dir, s->name);
    av_add(&a, "--workload");
    av_add(&a, "%s", s->name);
    av_add(&a, "--admin");
    av_add(&a, "127.0.0.1:%d", s->port_admin);
    /* Nothing is in flight when the drill stops them: no need to wait. */
    av_add(&a, "--drain-time");
    av_add(&a, "200ms");
    if (r->o->reconnect_max) {
        av_add(&a, "--reconnect-max");
        av_add(&a, "%s", r->o->reconnect_max);
    }
    return av_done(&a);
}

char **drill_testapp_argv(const drill_run *r, const drill_sidecar *s)
{
    argv_b a = {0};
    av_add(&a, "%s", r->bin_testapp);
    av_add(&a, "--listen");
    av_add(&a, "127.0.0.1:%d", s->port_app);
    av_add(&a, "--name");
    av_add(&a, "%s", s->name);
    return av_done(&a);
}
