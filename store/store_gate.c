/* store/store_gate.c — the in-process write gate: one per database file,
 * shared by every handle this process has open on that file.
 *
 * Why: meshd's worker threads each have their own store handle. When two of
 * them want to write at once, SQLite lets one take the write lock and makes
 * the other sleep in its busy handler in 1, 2, 5, 10 ms ... steps, although
 * the lock is usually free again after one commit (a fraction of a
 * millisecond). Those sleeps set the tail latency of concurrent issuance
 * (p99 ~5-10 ms with two threads). Queueing the threads of one process
 * instead hands the lock over as soon as the commit is done. The queue is
 * first come, first served with direct hand-over: the leaving thread passes
 * the gate to the oldest waiter, so on a busy machine a thread that has just
 * committed cannot barge in again before a waiter that is slow to be
 * scheduled (which would stretch that waiter's latency over several of the
 * other's transactions). SQLite's own locking is unchanged and still
 * decides: the gate only orders this process's writers, so other processes
 * (meshctl next to meshd) still wait through the busy timeout exactly as
 * before.
 *
 * Only explicit write transactions pass the gate (store_begin and the
 * outermost store_op_begin(write)), held until their commit or rollback;
 * reads never do. A thread that already holds the gate through another
 * handle of the same file is not made to wait for itself: it goes straight
 * to SQLite, which answers SQLITE_BUSY after the busy timeout, as before.
 *
 * Process-wide state: the registry below (store_gate_registry) is the one
 * piece of mutable state the store keeps outside a handle, by design (the
 * gate must be shared by handles that know nothing of each other). Gates are
 * keyed by the database file's device and inode, so two spellings of a path
 * share one gate, and are freed when their last handle closes. After fork()
 * the child ignores the parent's gates (they may be held by threads that do
 * not exist in the child) and makes its own; the registry lock is taken
 * around fork() so the child never inherits it locked. (SQLite itself does
 * not support forking while a transaction is open; this only keeps the
 * gate's own state sound.) */
#include "store/store_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A thread queueing for the gate; lives on that thread's stack. */
typedef struct gate_waiter {
    pthread_t thread;
    int granted;                /* set by store_gate_leave when it hands over */
    struct gate_waiter *next;
} gate_waiter;

struct store_gate {
    dev_t dev;
    ino_t ino;
    pid_t pid;                  /* the process that made it; others must not use it */
    int refs;                   /* handles attached; under the registry lock */
    pthread_mutex_t lock;       /* guards everything below */
    pthread_cond_t handed_over; /* broadcast when a waiter is granted the gate */
    int held;
    pthread_t holder;           /* the thread inside, when held */
    gate_waiter *head, *tail;   /* FIFO of waiters */
    store_gate *next;
};

/* Every gate of this process. */
typedef struct store_gate_registry {
    pthread_mutex_t lock;   /* guards the list and each gate's refs */
    store_gate *gates;
    pthread_once_t atfork_once;
} store_gate_registry;

static store_gate_registry gate_registry = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .gates = NULL,
    .atfork_once = PTHREAD_ONCE_INIT,
};

/* fork() while another thread holds the registry lock would leave it locked
 * forever in the child: take it around fork so it is consistent on both
 * sides. */
static void registry_prepare(void) { pthread_mutex_lock(&gate_registry.lock); }
static void registry_after(void) { pthread_mutex_unlock(&gate_registry.lock); }
static void registry_install_atfork(void)
{
    (void)pthread_atfork(registry_prepare, registry_after, registry_after);
}

static store_gate *gate_new(dev_t dev, ino_t ino)
{
    store_gate *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    pthread_condattr_t ca;
    int ok = pthread_condattr_init(&ca) == 0;
    /* Timed waits use CLOCK_MONOTONIC: a wall-clock step must not cut or
     * stretch the wait. */
    ok = ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0;
    ok = ok && pthread_cond_init(&g->handed_over, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok) {
        free(g);
        return NULL;
    }
    if (pthread_mutex_init(&g->lock, NULL) != 0) {
        pthread_cond_destroy(&g->handed_over);
        free(g);
        return NULL;
    }
    g->dev = dev;
    g->ino = ino;
    g->pid = getpid();
    return g;
}

void store_gate_attach(mesh_store *st)
{
    st->gate = NULL;
    st->gate_held = 0;
    struct stat sb;
    /* No gate is not an error: the handle then relies on SQLite's busy
     * timeout alone, as every handle did before the gate existed. */
    if (stat(st->path, &sb) != 0)
        return;
    pthread_once(&gate_registry.atfork_once, registry_install_atfork);
    pid_t me = getpid();
    pthread_mutex_lock(&gate_registry.lock);
    store_gate *g = gate_registry.gates;
    while (g && !(g->dev == sb.st_dev && g->ino == sb.st_ino && g->pid == me))
        g = g->next;
    if (!g && (g = gate_new(sb.st_dev, sb.st_ino)) != NULL) {
        g->next = gate_registry.gates;
        gate_registry.gates = g;
    }
    if (g) {
        g->refs++;
        st->gate = g;
    }
    pthread_mutex_unlock(&gate_registry.lock);
}

void store_gate_detach(mesh_store *st)
{
    store_gate *g = st->gate;
    if (!g)
        return;
    store_gate_leave(st);
    st->gate = NULL;
    /* A handle inherited across fork() points at the parent's gate: leave
     * that alone (its lock may be held by a thread that is not here). */
    if (g->pid != getpid())
        return;
    pthread_mutex_lock(&gate_registry.lock);
    if (--g->refs == 0) {
        store_gate **pp = &gate_registry.gates;
        while (*pp && *pp != g)
            pp = &(*pp)->next;
        if (*pp)
            *pp = g->next;
        pthread_cond_destroy(&g->handed_over);
        pthread_mutex_destroy(&g->lock);
        free(g);
    }
    pthread_mutex_unlock(&gate_registry.lock);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_gate_enter(mesh_store *st, int64_t *waited_ms, mesh_err *err)
{
    *waited_ms = 0;
    store_gate *g = st->gate;
    if (!g || st->gate_held || g->pid != getpid())
        return MESH_OK;
    pthread_mutex_lock(&g->lock);
    if (g->held && pthread_equal(g->holder, pthread_self())) {
        pthread_mutex_unlock(&g->lock); /* see the header comment: never wait for ourselves */
        return MESH_OK;
    }
    if (!g->held && !g->head) {
        g->held = 1;
        g->holder = pthread_self();
        pthread_mutex_unlock(&g->lock);
        st->gate_held = 1;
        return MESH_OK;
    }
    int64_t start = mono_ms();
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += STORE_BUSY_TIMEOUT_MS / 1000;
    deadline.tv_nsec += (long)(STORE_BUSY_TIMEOUT_MS % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    gate_waiter me = {.thread = pthread_self()};
    if (g->tail)
        g->tail->next = &me;
    else
        g->head = &me;
    g->tail = &me;
    while (!me.granted) {
        int r = pthread_cond_timedwait(&g->handed_over, &g->lock, &deadline);
        if (r == ETIMEDOUT && !me.granted) {
            /* Give up our place; leave() has not reached us (granted is
             * still 0 under the lock), so we are still in the queue. */
            gate_waiter **pp = &g->head, *prev = NULL;
            while (*pp != &me) {
                prev = *pp;
                pp = &(*pp)->next;
            }
            *pp = me.next;
            if (g->tail == &me)
                g->tail = prev;
            pthread_mutex_unlock(&g->lock);
            return mesh_err_set(err, MESH_EBUSY,
                                "store %s: another thread of this process held the store's "
                                "write lock for more than %d s, retry",
                                st->path, STORE_BUSY_TIMEOUT_MS / 1000);
        }
    }
    /* leave() made us the holder (held stayed 1 through the hand-over). */
    pthread_mutex_unlock(&g->lock);
    st->gate_held = 1;
    *waited_ms = mono_ms() - start;
    return MESH_OK;
}

void store_gate_leave(mesh_store *st)
{
    store_gate *g = st->gate;
    if (!g || !st->gate_held)
        return;
    st->gate_held = 0;
    pthread_mutex_lock(&g->lock);
    gate_waiter *next = g->head;
    if (next) {
        /* Direct hand-over to the oldest waiter: the gate never looks free,
         * so nobody can overtake it. Broadcast, as the waiters share one
         * condition variable and only the granted one proceeds. */
        g->head = next->next;
        if (!g->head)
            g->tail = NULL;
        next->granted = 1;
        g->holder = next->thread;
        pthread_cond_broadcast(&g->handed_over);
    } else {
        g->held = 0;
    }
    pthread_mutex_unlock(&g->lock);
}
