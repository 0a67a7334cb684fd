/* sidecar/proxy.c — data plane lifecycle: the event loop thread, the mailbox
 * from the control plane, applying config snapshots (listeners bind/close,
 * snapshot swap), and the counters other threads read. */
#include "sidecar/proxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "sidecar/dp_addr.h"
#include "sidecar/proxy_internal.h"

enum { MSG_CONFIG = 1 };

typedef struct dp_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    mesh_err err;
} dp_wait;

struct dp_msg {
    dp_msg *next;
    int kind;
    dp_config *cfg;
    dp_wait *wait;              /* NULL: nobody waits (post) */
};

/* ---- small shared helpers ------------------------------------------------------- */

int64_t dp_now(void)
{
    return (int64_t)time(NULL);
}

int64_t dp_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dp_stat_inc(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void dp_stat_dec(_Atomic uint64_t *c)
{
    atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
}

int dp_code_class(int status)
{
    if (status < 100 || status > 599)
        return 0;
    return status / 100;
}

struct timeval dp_timeval_ms(int64_t ms)
{
    if (ms < 0)
        ms = 0;
    return (struct timeval){.tv_sec = (time_t)(ms / 1000),
                            .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

void dp_timer_ms(struct event *ev, int64_t ms)
{
    struct timeval tv = dp_timeval_ms(ms);
    evtimer_add(ev, &tv);
}

void dp_timer_at(struct event *ev, int64_t deadline)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    /* Cap at a day: a timer re-armed daily cannot overflow timeval maths and
     * the owner simply re-checks. A certificate counts as expired from its
     * notAfter second on (now >= notAfter), as for the cert pool, /certs,
     * /ready and OpenSSL's own verification, so fire at notAfter; a timer
     * that fires early is re-armed by its owner. */
    int64_t ms = deadline * 1000 - now_ms;
    if (ms > 86400LL * 1000)
        ms = 86400LL * 1000;
    dp_timer_ms(ev, ms);
}

/* ---- listeners ------------------------------------------------------------------ */

static void lrt_free(dp_lrt *l)
{
    if (!l)
        return;
    if (l->lev)
        evconnlistener_free(l->lev);
    free(l->name);
    free(l->address);
    free(l);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    dp_lrt *lrt = arg;
    dp_proxy *px = lrt->px;
    const dp_listener *l = px->active ? dp_config_find_listener(px->active->cfg, lrt->name)
                                      : NULL;
    if (!l) {
        evutil_closesocket(fd);
        return;
    }
    /* Small request/response writes must not wait for Nagle. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bool http = l->kind == DP_LISTENER_INBOUND_HTTP || l->kind == DP_LISTENER_OUTBOUND_HTTP;
    dp_session_accept(px, l, fd, !http ? &dp_tcp_session_ops
                                 : l->h2.enabled ? &dp_h2_session_ops : &dp_http_session_ops);
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    dp_lrt *lrt = arg;
    int e = EVUTIL_SOCKET_ERROR();
    /* EMFILE and friends: libevent keeps the listener; say why clients wait. */
    log_warn(DP_LOG, "listener '%s' (%s): accept failed: %s", lrt->name, lrt->address,
             evutil_socket_error_to_string(e));
}

static dp_lrt *lrt_bind(dp_proxy *px, const dp_listener *l, mesh_err *err)
{
    dp_lrt *lrt = calloc(1, sizeof *lrt);
    if (!lrt || !(lrt->name = strdup(l->name)) || !(lrt->address = strdup(l->address))) {
        lrt_free(lrt);
        mesh_err_set(err, MESH_ENOMEM, "out of memory binding listener '%s'", l->name);
        return NULL;
    }
    lrt->px = px;
    lrt->lev = evconnlistener_new_bind(px->base, on_accept, lrt,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                           LEV_OPT_CLOSE_ON_EXEC,
                                       1024, (const struct sockaddr *)&l->sa, (int)l->sa_len);
    if (!lrt->lev) {
        int e = EVUTIL_SOCKET_ERROR();
        mesh_err_set(err, MESH_EIO, "listener '%s': cannot bind %s: %s", l->name, l->address,
                     evutil_socket_error_to_string(e));
        lrt_free(lrt);
        return NULL;
    }
    evconnlistener_set_error_cb(lrt->lev, on_accept_error);
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    if (getsockname(evconnlistener_get_fd(lrt->lev), (struct sockaddr *)&bound, &bl) == 0)
        lrt->port = dp_addr_port((struct sockaddr *)&bound);
    log_info(DP_LOG, "listener '%s' (%s) bound to %s, port %d", l->name,
             dp_listener_kind_name(l->kind), l->address, lrt->port);
    return lrt;
}

/* Binds what is new, keeps what is unchanged (same address), and only then
 * closes what went away — so a failed bind changes nothing. */
static int apply_listeners(dp_proxy *px, dp_config *cfg, mesh_err *err)
{
    size_t n = dp_config_n_listeners(cfg);
    dp_lrt **next = calloc(n ? n : 1, sizeof *next);
    bool *fresh = calloc(n ? n : 1, sizeof *fresh);
    if (!next || !fresh) {
        free(next);
        free(fresh);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory applying listeners");
    }
    /* Detach old listeners into a local list we pick from. */
    dp_lrt *old = px->listeners;
    px->listeners = NULL;
    int rc = MESH_OK;
    for (size_t i = 0; i < n && rc == MESH_OK; i++) {
        const dp_listener *l = dp_config_listener_at(cfg, i);
        dp_lrt **pp = &old, *hit = NULL;
        /* Same name and address first, then a rename at the same address. */
        for (int pass = 0; pass < 2 && !hit; pass++) {
            for (pp = &old; *pp; pp = &(*pp)->next) {
                if (strcmp((*pp)->address, l->address) == 0 &&
                    (pass == 1 || strcmp((*pp)->name, l->name) == 0)) {
                    hit = *pp;
                    *pp = hit->next;
                    hit->next = NULL;
                    break;
                }
            }
        }
        if (hit) {
            if (strcmp(hit->name, l->name) != 0) {
                char *nn = strdup(l->name);
                if (!nn) {
                    rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
                    hit->next = old;
                    old = hit;
                    break;
                }
                free(hit->name);
                hit->name = nn;
            }
            next[i] = hit;
        } else {
            next[i] = lrt_bind(px, l, err);
            fresh[i] = true;
            if (!next[i])
                rc = err ? err->code : MESH_EIO;
        }
    }
    if (rc != MESH_OK) {
        /* Roll back: fresh binds go, kept ones return to the old list. */
        for (size_t i = 0; i < n; i++) {
            if (!next[i])
                continue;
            if (fresh[i]) {
                lrt_free(next[i]);
            } else {
                next[i]->next = old;
                old = next[i];
            }
        }
        px->listeners = old;
        free(next);
        free(fresh);
        return rc;
    }
    while (old) {
        dp_lrt *o = old;
        old = o->next;
        log_info(DP_LOG, "listener '%s' (%s) closed: no longer in the config; its live "
                 "connections finish normally", o->name, o->address);
        lrt_free(o);
    }
    for (size_t i = n; i > 0; i--) {
        next[i - 1]->next = px->listeners;
        px->listeners = next[i - 1];
    }
    free(next);
    free(fresh);
    return MESH_OK;
}

static void publish(dp_proxy *px, dp_config *cfg)
{
    size_t n = 0;
    for (dp_lrt *l = px->listeners; l; l = l->next)
        n++;
    dp_port_entry *ports = calloc(n ? n : 1, sizeof *ports);
    size_t i = 0;
    for (dp_lrt *l = px->listeners; l && ports; l = l->next, i++) {
        snprintf(ports[i].name, sizeof ports[i].name, "%s", l->name);
        ports[i].port = l->port;
    }
    pthread_mutex_lock(&px->pub_mu);
    dp_config *old = px->pub_cfg;
    px->pub_cfg = dp_config_ref(cfg);
    free(px->pub_ports);
    px->pub_ports = ports;
    px->n_pub_ports = ports ? n : 0;
    pthread_mutex_unlock(&px->pub_mu);
    dp_config_unref(old);
}

static int apply_config(dp_proxy *px, dp_config *cfg, mesh_err *err)
{
    if (!dp_config_is_frozen(cfg))
        return mesh_err_set(err, MESH_EINVAL, "config snapshot is not frozen; call "
                            "dp_config_freeze (which validates it) before applying");
    dp_active *na = NULL;
    int rc = dp_active_build(px, cfg, &na, err);
    if (rc != MESH_OK)
        return rc;
    /* Listeners look the config up at accept time, so binding before the
     * swap is safe: a connection accepted in between sees the old snapshot
     * and is closed if its listener is not in it. */
    rc = apply_listeners(px, cfg, err);
    if (rc != MESH_OK) {
        dp_active_unref(px, na);
        return rc;
    }
    dp_active *old = px->active;
    px->active = na;
    dp_active_unref(px, old);
    dp_hc_sync(px);
    publish(px, cfg);
    atomic_store(&px->config_applied, true);
    log_info(DP_LOG, "config applied: %zu listeners, %zu route tables, %zu clusters, %zu load "
             "assignments", dp_config_n_listeners(cfg), dp_config_n_route_tables(cfg),
             dp_config_n_clusters(cfg), dp_config_n_assignments(cfg));
    return MESH_OK;
}

/* ---- mailbox --------------------------------------------------------------------- */

static void complete(dp_msg *m, int rc, const mesh_err *e)
{
    if (m->wait) {
        pthread_mutex_lock(&m->wait->mu);
        m->wait->rc = rc;
        if (e && rc != MESH_OK)
            m->wait->err = *e;
        m->wait->done = true;
        pthread_cond_signal(&m->wait->cv);
        pthread_mutex_unlock(&m->wait->mu);
    }
    dp_config_unref(m->cfg);
    free(m);
}

/* Everything queued so far; closing: later posts get MESH_EBUSY. */
static dp_msg *mailbox_take(dp_proxy *px, bool closing)
{
    pthread_mutex_lock(&px->mb_mu);
    if (closing)
        px->mb_closed = true;
    dp_msg *m = px->mb_head;
    px->mb_head = px->mb_tail = NULL;
    pthread_mutex_unlock(&px->mb_mu);
    return m;
}

/* Closes the mailbox and answers whoever still waits with MESH_EBUSY. */
static void mailbox_refuse_all(dp_proxy *px, const char *why)
{
    dp_msg *m = mailbox_take(px, true);
    mesh_err e;
    mesh_err_set(&e, MESH_EBUSY, "%s", why);
    while (m) {
        dp_msg *nx = m->next;
        complete(m, MESH_EBUSY, &e);
        m = nx;
    }
}

static void on_mailbox(evutil_socket_t fd, short what, void *arg)
{
    dp_proxy *px = arg;
    uint64_t cnt;
    ssize_t r = read(px->mb_fd, &cnt, sizeof cnt);
    (void)r;    /* EAGAIN when woken twice for one batch is fine */
    dp_msg *m = mailbox_take(px, false);
    while (m) {
        dp_msg *nx = m->next;
        mesh_err e;
        mesh_err_clear(&e);
        int rc = apply_config(px, m->cfg, &e);
        if (rc != MESH_OK && !m->wait)
            log_error(DP_LOG, "config not applied (the previous one stays): %s", e.msg);
        complete(m, rc, &e);
        m = nx;
    }
    dp_revoke_sweep(px);
    if (atomic_load(&px->stop_requested))
        event_base_loopexit(px->base, NULL);
}

static int post(dp_proxy *px, dp_msg *m, mesh_err *err)
{
    pthread_mutex_lock(&px->mb_mu);
    if (px->mb_closed) {
        pthread_mutex_unlock(&px->mb_mu);
        return mesh_err_set(err, MESH_EBUSY, "data plane is stopping");
    }
    m->next = NULL;
    if (px->mb_tail)
        px->mb_tail->next = m;
    else
        px->mb_head = m;
    px->mb_tail = m;
    pthread_mutex_unlock(&px->mb_mu);
    uint64_t one = 1;
    ssize_t w = write(px->mb_fd, &one, sizeof one);
    (void)w;    /* the counter only saturates after 2^64-1 wakeups */
    return MESH_OK;
}

static bool on_loop_thread(dp_proxy *px)
{
    return atomic_load(&px->loop_running) && pthread_equal(pthread_self(), px->loop_tid);
}

int dp_proxy_apply_config(dp_proxy *px, dp_config *cfg, mesh_err *err)
{
    if (!atomic_load(&px->loop_running) || on_loop_thread(px))
        return apply_config(px, cfg, err);
    dp_wait w = {.done = false, .rc = MESH_OK};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    dp_msg *m = calloc(1, sizeof *m);
    if (!m)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    m->kind = MSG_CONFIG;
    m->cfg = dp_config_ref(cfg);
    m->wait = &w;
    int rc = post(px, m, err);
    if (rc != MESH_OK) {
        dp_config_unref(m->cfg);
        free(m);
    } else {
        /* The loop (or the teardown after it) always completes the message. */
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.rc;
        if (rc != MESH_OK && err)
            *err = w.err;
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

int dp_proxy_post_config(dp_proxy *px, dp_config *cfg, mesh_err *err)
{
    if (!atomic_load(&px->loop_running) || on_loop_thread(px))
        return apply_config(px, cfg, err);
    if (!dp_config_is_frozen(cfg))
        return mesh_err_set(err, MESH_EINVAL, "config snapshot is not frozen");
    dp_msg *m = calloc(1, sizeof *m);
    if (!m)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    m->kind = MSG_CONFIG;
    m->cfg = dp_config_ref(cfg);
    int rc = post(px, m, err);
    if (rc != MESH_OK) {
        dp_config_unref(m->cfg);
        free(m);
    }
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    dp_proxy *px = arg;
    cert_pool_tick(px->pool, dp_now());
    dp_revoke_sweep(px);
}

int dp_proxy_new(const dp_proxy_opts *opts, dp_proxy **out, mesh_err *err)
{
    if (!opts || !opts->pool)
        return mesh_err_set(err, MESH_EINVAL, "dp_proxy_new: a cert pool is required");
    /* A peer closing while we write must be an error return, not the death
     * of the process (OpenSSL and libevent write with plain send/writev). */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
    dp_proxy *px = calloc(1, sizeof *px);
    if (!px)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    px->opts = *opts;
    px->opts.admin_address = NULL;      /* not kept: the caller's string */
    if (px->opts.handshake_timeout_ms <= 0)
        px->opts.handshake_timeout_ms = 10000;
    if (px->opts.idle_timeout_ms <= 0)
        px->opts.idle_timeout_ms = 300000;
    if (px->opts.request_headers_timeout_ms <= 0)
        px->opts.request_headers_timeout_ms = DP_REQUEST_HEADERS_TIMEOUT_MS;
    if (px->opts.max_idle_per_endpoint == 0)
        px->opts.max_idle_per_endpoint = 64;
    if (px->opts.retry_buffer_bytes == 0)
        px->opts.retry_buffer_bytes = 64 * 1024;
    px->pool = opts->pool;
    px->mb_fd = -1;
    px->admin_port = -1;
    atomic_init(&px->loop_running, false);
    atomic_init(&px->config_applied, false);
    atomic_init(&px->stop_requested, false);
    atomic_init(&px->crl_changed, false);
    px->crl_gen_seen = cert_pool_crl_generation(opts->pool);
    pthread_mutex_init(&px->mb_mu, NULL);
    pthread_mutex_init(&px->pub_mu, NULL);
    pthread_mutex_init(&px->xds_mu, NULL);
    if (opts->rng_fn)
        dp_rng_custom(&px->rng, opts->rng_fn, opts->rng_arg);
    else
        dp_rng_seed(&px->rng, opts->rng_seed);

    px->base = event_base_new();
    if (!px->base) {
        mesh_err_set(err, MESH_EINTERNAL, "cannot create the event loop (libevent)");
        goto fail;
    }
    px->mb_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (px->mb_fd < 0) {
        mesh_err_set(err, MESH_EIO, "eventfd: %s", strerror(errno));
        goto fail;
    }
    px->mb_ev = event_new(px->base, px->mb_fd, EV_READ | EV_PERSIST, on_mailbox, px);
    px->tick_ev = event_new(px->base, -1, EV_PERSIST, on_tick, px);
    if (!px->mb_ev || !px->tick_ev) {
        mesh_err_set(err, MESH_ENOMEM, "out of memory creating events");
        goto fail;
    }
    if (dp_sessions_init(px, err) != MESH_OK)
        goto fail;
    if (!(px->metrics = dp_metrics_new())) {
        mesh_err_set(err, MESH_ENOMEM, "out of memory creating the request metrics");
        goto fail;
    }
    if (opts->access_log && dp_access_log_open(opts->access_log, px->base, &px->alog, err) != MESH_OK)
        goto fail;
    px->opts.access_log = NULL;         /* not kept: the caller's string */
    event_add(px->mb_ev, NULL);
    struct timeval sec = {1, 0};
    event_add(px->tick_ev, &sec);
    cert_pool_set_crl_listener(px->pool, dp_revoke_on_crl_change, px);
    if (opts->admin_address && dp_admin_start(px, opts->admin_address, err) != MESH_OK)
        goto fail;
    *out = px;
    return MESH_OK;
fail:
    dp_proxy_free(px);
    return err ? err->code : MESH_EINTERNAL;
}

static void *loop_main(void *arg)
{
    dp_proxy *px = arg;
    dp_proxy_run(px, NULL);
    return NULL;
}

int dp_proxy_run(dp_proxy *px, mesh_err *err)
{
    px->loop_tid = pthread_self();
    atomic_store(&px->loop_running, true);
    int rc = event_base_dispatch(px->base);
    /* Anyone still waiting gets an answer; later calls apply directly. */
    mailbox_refuse_all(px, "data plane stopped before applying the config");
    atomic_store(&px->loop_running, false);
    if (rc < 0)
        return mesh_err_set(err, MESH_EINTERNAL, "event loop failed");
    return MESH_OK;
}

int dp_proxy_start(dp_proxy *px, mesh_err *err)
{
    if (px->thread_started)
        return mesh_err_set(err, MESH_EINVAL, "data plane already started");
    /* Mark running before the thread exists so that a config applied right
     * after start goes through the mailbox, not into the loop's state. */
    atomic_store(&px->loop_running, true);
    int e = pthread_create(&px->thread, NULL, loop_main, px);
    if (e != 0) {
        atomic_store(&px->loop_running, false);
        return mesh_err_set(err, MESH_EINTERNAL, "cannot start the data plane thread: %s",
                            strerror(e));
    }
    px->loop_tid = px->thread;
    px->thread_started = true;
    return MESH_OK;
}

void dp_proxy_stop(dp_proxy *px)
{
    /* A flag plus a wake-up: no allocation, so stopping cannot fail.
     * (event_base_loopexit itself is not safe from another thread without
     * libevent's global locking, which we do not enable.) */
    atomic_store(&px->stop_requested, true);
    uint64_t one = 1;
    ssize_t w = write(px->mb_fd, &one, sizeof one);
    (void)w;
}

void dp_proxy_free(dp_proxy *px)
{
    if (!px)
        return;
    if (px->mb_fd >= 0)
        cert_pool_set_crl_listener(px->pool, NULL, NULL);
    if (px->thread_started) {
        dp_proxy_stop(px);
        pthread_join(px->thread, NULL);
        px->thread_started = false;
    }
    /* Sessions first: they hold snapshot and endpoint references. */
    dp_sessions_free_all(px);
    dp_h2_up_free_all(px);
    while (px->listeners) {
        dp_lrt *l = px->listeners;
        px->listeners = l->next;
        lrt_free(l);
    }
    dp_admin_stop(px);
    dp_access_log_close(px->alog);      /* flushes: the last requests are not lost */
    px->alog = NULL;
    dp_metrics_free(px->metrics);
    px->metrics = NULL;
    dp_hc_stop_all(px);
    dp_active_unref(px, px->active);
    px->active = NULL;
    mailbox_refuse_all(px, "data plane freed");
    if (px->mb_ev)
        event_free(px->mb_ev);
    if (px->tick_ev)
        event_free(px->tick_ev);
    if (px->mb_fd >= 0)
        close(px->mb_fd);
    if (px->base)
        event_base_free(px->base);
    dp_config_unref(px->pub_cfg);
    free(px->pub_ports);
    pthread_mutex_destroy(&px->mb_mu);
    pthread_mutex_destroy(&px->pub_mu);
    pthread_mutex_destroy(&px->xds_mu);
    free(px);
}

dp_config *dp_proxy_current_config(dp_proxy *px)
{
    pthread_mutex_lock(&px->pub_mu);
    dp_config *c = dp_config_ref(px->pub_cfg);
    pthread_mutex_unlock(&px->pub_mu);
    return c;
}

int dp_proxy_listener_port(dp_proxy *px, const char *name)
{
    int port = -1;
    pthread_mutex_lock(&px->pub_mu);
    for (size_t i = 0; i < px->n_pub_ports; i++)
        if (strcmp(px->pub_ports[i].name, name) == 0)
            port = px->pub_ports[i].port;
    pthread_mutex_unlock(&px->pub_mu);
    return port;
}

int dp_proxy_admin_port(dp_proxy *px)
{
    return px->admin_port;
}

/* ---- xDS bookkeeping and counters ---------------------------------------------------- */

const char *dp_xds_type_name(dp_xds_type t)
{
    static const char *names[] = {"lds", "rds", "cds", "eds", "sds"};
    return (unsigned)t < DP_XDS_TYPE_COUNT ? names[t] : "unknown";
}

void dp_proxy_xds_accepted(dp_proxy *px, dp_xds_type t, const char *version)
{
    if ((unsigned)t >= DP_XDS_TYPE_COUNT)
        return;
    pthread_mutex_lock(&px->xds_mu);
    snprintf(px->xds[t].version, sizeof px->xds[t].version, "%s", version ? version : "");
    px->xds[t].last_update = dp_now();
    pthread_mutex_unlock(&px->xds_mu);
    dp_stat_inc(&px->st.xds_updates[t]);
}

void dp_proxy_xds_rejected(dp_proxy *px, dp_xds_type t, const char *version, const char *error)
{
    if ((unsigned)t >= DP_XDS_TYPE_COUNT)
        return;
    pthread_mutex_lock(&px->xds_mu);
    snprintf(px->xds[t].rejected_version, sizeof px->xds[t].rejected_version, "%s",
             version ? version : "");
    snprintf(px->xds[t].last_error, sizeof px->xds[t].last_error, "%s", error ? error : "");
    px->xds[t].last_reject = dp_now();
    pthread_mutex_unlock(&px->xds_mu);
    dp_stat_inc(&px->st.xds_rejections[t]);
}

void dp_proxy_xds_connected(dp_proxy *px, bool connected, const char *server)
{
    pthread_mutex_lock(&px->xds_mu);
    px->xds_connected = connected;
    snprintf(px->xds_server, sizeof px->xds_server, "%s", server ? server : "");
    /* A stream to another replica than the last one is a fail-over; a reconnect
     * to the same replica (a new SVID, a restart) is not. */
    if (connected && server && server[0]) {
        if (px->xds_last_server[0] && strcmp(px->xds_last_server, server) != 0)
            dp_stat_inc(&px->st.xds_failovers);
        snprintf(px->xds_last_server, sizeof px->xds_last_server, "%s", server);
    }
    pthread_mutex_unlock(&px->xds_mu);
}

static uint64_t ld(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void dp_proxy_get_stats(dp_proxy *px, dp_stats_view *o)
{
    memset(o, 0, sizeof *o);
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 6; c++)
            o->rq_by_class[d][c] = ld(&px->st.rq_by_class[d][c]);
    o->up_hs_ok = ld(&px->st.up_hs_ok);
    o->up_hs_failed = ld(&px->st.up_hs_failed);
    o->down_hs_ok = ld(&px->st.down_hs_ok);
    o->down_hs_failed = ld(&px->st.down_hs_failed);
    o->rbac_denied = ld(&px->st.rbac_denied);
    o->retries = ld(&px->st.retries);
    o->timeouts = ld(&px->st.timeouts);
    o->tls_refused_expired = ld(&px->st.tls_refused_expired);
    o->closed_cert_expiry = ld(&px->st.closed_cert_expiry);
    o->closed_revoked = ld(&px->st.closed_revoked);
    cert_pool_info info;
    cert_pool_get_info(px->pool, dp_now(), &info);
    o->tls_refused_revoked = info.refused_revoked;
    o->active_down = ld(&px->st.active_down);
    o->active_up = ld(&px->st.active_up);
    o->outlier_ejections = ld(&px->st.outlier_ejections);
    o->per_try_timeouts = ld(&px->st.per_try_timeouts);
    o->hc_ok = ld(&px->st.hc_ok);
    o->hc_failed = ld(&px->st.hc_failed);
    o->overflow_cx = ld(&px->st.overflow_cx);
    o->overflow_pending = ld(&px->st.overflow_pending);
    o->overflow_rq = ld(&px->st.overflow_rq);
    o->overflow_retry = ld(&px->st.overflow_retry);
    for (int t = 0; t < DP_XDS_TYPE_COUNT; t++) {
        o->xds_updates[t] = ld(&px->st.xds_updates[t]);
        o->xds_rejections[t] = ld(&px->st.xds_rejections[t]);
    }
    o->xds_failovers = ld(&px->st.xds_failovers);
}
