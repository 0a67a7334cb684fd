/* tests/unit/test_sidecar_session.c — the session lifecycle HTTP and TCP
 * share (sidecar/proxy_session.c), driven without sockets: a probe protocol
 * over a bufferevent pair on a data plane whose loop the test runs itself.
 * Kill stops every callback at once but frees nothing until the loop's next
 * pass; a session killed from inside its own callback can still be touched
 * there; teardown frees live and killed sessions alike; close-after-flush
 * waits for the output; a failed init leaves nothing behind. (Under `make
 * asan` the use-after-free cases are checked by ASan itself.) */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <string.h>

#include "sidecar/proxy_internal.h"

/* What the probe protocol saw; lives outside the sessions so it can be read
 * after they are freed. */
typedef struct probe {
    int inits, opens, reads, writes, events, stops, releases;
    short last_event;
    bool fail_init;
    bool ignore_events;         /* on_event does not kill */
    bool kill_in_read;          /* on_read kills its own session, then reads it */
    char seen_after_kill[300];
} probe;

/* The ops carry the probe: no global state. */
typedef struct probe_ops {
    dp_session_ops ops;
    probe *p;
} probe_ops;

typedef struct probe_session {
    dp_session base;
    char scratch[32];
} probe_session;

static probe *probe_of(dp_session *s)
{
    return ((const probe_ops *)s->ops)->p;
}

static int p_init(dp_session *s)
{
    probe *p = probe_of(s);
    p->inits++;
    return p->fail_init ? MESH_ENOMEM : MESH_OK;
}

static void p_open(dp_session *s)
{
    probe_of(s)->opens++;
    bufferevent_enable(s->down, EV_READ | EV_WRITE);
}

static void p_on_read(dp_session *s)
{
    probe *p = probe_of(s);
    p->reads++;
    evbuffer_drain(bufferevent_get_input(s->down), (size_t)-1);
    if (p->kill_in_read) {
        dp_session_kill(s);
        dp_session_kill(s);     /* twice, as nested error paths do */
        /* Still valid memory until the loop regains control. */
        snprintf(p->seen_after_kill, sizeof p->seen_after_kill, "%s/%d", s->listener,
                 (int)s->phase);
    }
}

static void p_on_write(dp_session *s)
{
    probe_of(s)->writes++;
}

static void p_on_event(dp_session *s, short what)
{
    probe *p = probe_of(s);
    p->events++;
    p->last_event = what;
    if (!p->ignore_events)
        dp_session_kill(s);
}

static void p_stop(dp_session *s)
{
    probe_of(s)->stops++;
}

static void p_release(dp_session *s)
{
    probe_of(s)->releases++;
}

/* A data plane whose loop the test runs, and the probe protocol's ops. */
typedef struct rig {
    cert_pool *pool;
    dp_proxy *px;
    probe p;
    probe_ops po;
} rig;

static void rig_up(rig *r)
{
    memset(r, 0, sizeof *r);
    r->po = (probe_ops){
        .ops = {.log_name = "inbound probe", .size = sizeof(probe_session), .init = p_init,
                .open = p_open, .on_read = p_on_read, .on_write = p_on_write,
                .on_event = p_on_event, .stop = p_stop, .release = p_release},
        .p = &r->p,
    };
    mesh_err e;
    cr_assert_eq(cert_pool_new(&r->pool, &e), MESH_OK);
    dp_proxy_opts o = {.pool = r->pool};
    cr_assert_eq(dp_proxy_new(&o, &r->px, &e), MESH_OK, "%s", e.msg);
}

/* The client closes: a pair's partner sees EOF only after a BEV_FINISHED
 * flush (freeing one side alone just unlinks it). */
static void hang_up(struct bufferevent *client)
{
    bufferevent_flush(client, EV_WRITE, BEV_FINISHED);
    bufferevent_free(client);
}

/* Runs what is ready (deferred callbacks, zero-delay events), never waits. */
static void spin(rig *r)
{
    for (int i = 0; i < 10; i++)
        event_base_loop(r->px->base, EVLOOP_NONBLOCK);
}

/* The client goes first and the loop runs its close to the end: a deferred
 * callback still queued at event_base_free would keep its bufferevent. */
static void rig_down(rig *r, struct bufferevent *client)
{
    if (client)
        bufferevent_free(client);
    spin(r);
    dp_proxy_free(r->px);
    cert_pool_free(r->pool);
}

static uint64_t active_down(rig *r)
{
    dp_stats_view v;
    dp_proxy_get_stats(r->px, &v);
    return v.active_down;
}

/* A session on pair[0]; the test plays the client on *client. */
static dp_session *start(rig *r, struct bufferevent **client)
{
    struct bufferevent *pair[2];
    cr_assert_eq(bufferevent_pair_new(r->px->base, BEV_OPT_CLOSE_ON_FREE |
                                                       BEV_OPT_DEFER_CALLBACKS, pair), 0);
    *client = pair[1];
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    return dp_session_start(r->px, "probe|listener", false, pair[0], &r->po.ops);
}

Test(sidecar_session, kill_stops_at_once_and_frees_at_the_next_pass)
{
    rig r;
    rig_up(&r);
    struct bufferevent *client;
    dp_session *s = start(&r, &client);
    cr_assert_not_null(s);
    cr_assert_eq(r.p.inits, 1);
    cr_assert_eq(r.p.opens, 1, "a plain (outbound) session opens at accept");
    cr_assert_eq(s->phase, DP_SESSION_OPEN);
    cr_assert_eq(r.px->sessions.live, s);
    cr_assert_eq(active_down(&r), 1);

    dp_session_kill(s);
    cr_assert(dp_session_dead(s));
    cr_assert_eq(r.p.stops, 1);
    cr_assert_eq(r.p.releases, 0, "killing never frees");
    cr_assert_null(r.px->sessions.live);
    cr_assert_eq(r.px->sessions.graveyard, s);
    cr_assert_eq(active_down(&r), 1);
    dp_session_kill(s);
    cr_assert_eq(r.p.stops, 1, "kill is idempotent");

    spin(&r);
    cr_assert_eq(r.p.releases, 1);
    cr_assert_null(r.px->sessions.graveyard);
    cr_assert_eq(active_down(&r), 0);
    rig_down(&r, client);
}

Test(sidecar_session, a_dead_session_gets_no_callbacks)
{
    rig r;
    rig_up(&r);
    struct bufferevent *client;
    dp_session *s = start(&r, &client);
    bufferevent_write(client, "hello", 5);
    spin(&r);
    cr_assert_eq(r.p.reads, 1);

    /* Bytes already on their way when the session dies reach nobody. */
    bufferevent_write(client, "more", 4);
    dp_session_kill(s);
    hang_up(client);            /* and the peer's close neither */
    spin(&r);
    cr_assert_eq(r.p.reads, 1);
    cr_assert_eq(r.p.events, 0);
    cr_assert_eq(r.p.releases, 1);
    rig_down(&r, NULL);
}

Test(sidecar_session, killed_inside_its_own_callback_it_stays_readable_there)
{
    rig r;
    rig_up(&r);
    r.p.kill_in_read = true;
    struct bufferevent *client;
    start(&r, &client);
    bufferevent_write(client, "x", 1);
    spin(&r);
    cr_assert_eq(r.p.reads, 1);
    cr_assert_eq(r.p.stops, 1);
    cr_assert_str_eq(r.p.seen_after_kill, "probe|listener/3");   /* DP_SESSION_DEAD */
    cr_assert_eq(r.p.releases, 1, "freed once the callback returned");
    cr_assert_eq(active_down(&r), 0);
    rig_down(&r, client);
}

Test(sidecar_session, the_peer_closing_reaches_the_protocol_once)
{
    rig r;
    rig_up(&r);
    struct bufferevent *client;
    start(&r, &client);
    hang_up(client);
    spin(&r);
    cr_assert_eq(r.p.events, 1);
    cr_assert(r.p.last_event & BEV_EVENT_EOF);
    cr_assert_eq(r.p.stops, 1);
    cr_assert_eq(r.p.releases, 1);
    rig_down(&r, NULL);
}

Test(sidecar_session, teardown_frees_live_and_killed_sessions)
{
    rig r;
    rig_up(&r);
    r.p.ignore_events = true;
    struct bufferevent *c1, *c2, *c3;
    start(&r, &c1);
    dp_session *s2 = start(&r, &c2);
    start(&r, &c3);
    hang_up(c1);
    hang_up(c2);
    hang_up(c3);
    spin(&r);               /* the EOFs are seen and ignored: all three stay open */
    cr_assert_eq(r.p.events, 3);
    dp_session_kill(s2);    /* in the graveyard; the loop never runs again */
    cr_assert_eq(active_down(&r), 3);
    dp_proxy_free(r.px);
    cr_assert_eq(r.p.releases, 3);
    cr_assert_eq(r.p.stops, 1, "teardown releases without stopping: release must not rely "
                 "on stop");
    cert_pool_free(r.pool);
}

Test(sidecar_session, a_failed_init_leaves_nothing)
{
    rig r;
    rig_up(&r);
    r.p.fail_init = true;
    struct bufferevent *client;
    cr_assert_null(start(&r, &client));
    cr_assert_eq(r.p.inits, 1);
    cr_assert_eq(r.p.opens, 0);
    cr_assert_eq(r.p.releases, 1, "release frees what init got before failing");
    cr_assert_null(r.px->sessions.live);
    cr_assert_null(r.px->sessions.graveyard);
    cr_assert_eq(active_down(&r), 0);
    rig_down(&r, client);
}

Test(sidecar_session, close_after_flush_waits_for_the_output)
{
    rig r;
    rig_up(&r);
    struct bufferevent *client;
    dp_session *s = start(&r, &client);
    /* The client does not read yet: the reply stays in our output. */
    bufferevent_disable(client, EV_READ);
    bufferevent_write(s->down, "bye\n", 4);
    dp_session_close_after_flush(s);
    cr_assert_eq(s->phase, DP_SESSION_CLOSING);
    cr_assert_eq(bufferevent_get_enabled(s->down) & EV_READ, 0, "a closing session stops "
                 "reading");
    spin(&r);
    cr_assert_eq(r.p.stops, 0, "not before the output is written");
    bufferevent_write(client, "ignored", 7);
    spin(&r);
    cr_assert_eq(r.p.reads, 0, "no reads once closing");

    bufferevent_enable(client, EV_READ);
    spin(&r);
    cr_assert_eq(r.p.stops, 1);
    cr_assert_eq(r.p.releases, 1);
    char got[16] = "";
    size_t n = bufferevent_read(client, got, sizeof got - 1);
    got[n] = '\0';
    cr_assert_str_eq(got, "bye\n", "everything sent before the close arrives");
    rig_down(&r, client);
}

Test(sidecar_session, close_after_flush_with_nothing_to_send_kills_at_once)
{
    rig r;
    rig_up(&r);
    struct bufferevent *client;
    dp_session *s = start(&r, &client);
    dp_session_close_after_flush(s);
    cr_assert(dp_session_dead(s));
    cr_assert_eq(r.p.stops, 1);
    dp_session_close_after_flush(s);    /* on a dead session: nothing */
    cr_assert_eq(r.p.stops, 1);
    spin(&r);
    cr_assert_eq(r.p.releases, 1);
    rig_down(&r, client);
}
