/* sidecar/xds_probe.h — a cheap "is any meshd back?" check while the client backs off.
 *
 * After a long outage the reconnect backoff may have grown to --reconnect-max (30 s
 * by default); waiting it out would leave a sidecar on stale config for up to that
 * long after meshd returns. Instead, while a wait longer than XDSC_PROBE_EVERY_MS is
 * pending, the client thread opens a non-blocking TCP connect to every known address
 * every XDSC_PROBE_EVERY_MS (no TLS, no gRPC: a refused connect costs the replica
 * nothing) and polls it on its normal tick. The probe is edge-triggered: it only cuts
 * the wait short when a round that found every address down is followed by one that
 * finds an address up, so a meshd that accepts TCP but keeps failing the TLS or xDS
 * exchange is still retried on the backoff schedule, not every few seconds. */
#ifndef MESH_SIDECAR_XDS_PROBE_H
#define MESH_SIDECAR_XDS_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "sidecar/xds_targets.h"

#define XDSC_PROBE_EVERY_MS 2000
#define XDSC_PROBE_WAIT_MS 1000     /* a round's connects get this long */

typedef struct xdsc_probe {
    int fd[XDSC_TARGETS_MAX];
    size_t n;
    bool active;
    bool saw_all_down;      /* the last finished round found no address up */
    int64_t started_ms;
    int64_t next_ms;        /* when the next round may start */
} xdsc_probe;

enum { XDSC_PROBE_PENDING = -1, XDSC_PROBE_ALL_DOWN = -2, XDSC_PROBE_IDLE = -3 };

void xdsc_probe_init(xdsc_probe *p);
/* Starts a round of connects to every address of t (numeric ones; others count as
 * down). */
void xdsc_probe_start(xdsc_probe *p, const xdsc_targets *t, int64_t now_ms);
/* Polls without blocking. Returns the index (into t->addr) of an address that
 * accepted a connection, XDSC_PROBE_PENDING, XDSC_PROBE_ALL_DOWN (round over) or
 * XDSC_PROBE_IDLE (no round running). A finished round closes its sockets. */
int xdsc_probe_poll(xdsc_probe *p, int64_t now_ms);
/* One step for the client loop: starts a round when one is due, polls a running one,
 * and returns an index only on the down -> up edge (else a negative value). */
int xdsc_probe_step(xdsc_probe *p, const xdsc_targets *t, int64_t now_ms);
/* Closes any sockets; the edge state is forgotten (after a success). */
void xdsc_probe_stop(xdsc_probe *p);

#endif
