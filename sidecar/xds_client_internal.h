/* sidecar/xds_client_internal.h — the control-plane client's state, shared by
 * xds_client.c (thread, ADS, lifecycle) and xds_identity.c (SVID enrolment, renewal and
 * recovery, checking meshd's chain). Private to those two files. */
#ifndef MESH_SIDECAR_XDS_CLIENT_INTERNAL_H
#define MESH_SIDECAR_XDS_CLIENT_INTERNAL_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>

#include "sidecar/xds_ads.h"
#include "sidecar/xds_backoff.h"
#include "sidecar/xds_ca.h"
#include "sidecar/xds_client.h"
#include "sidecar/xds_engine.h"
#include "sidecar/xds_probe.h"
#include "sidecar/xds_targets.h"

struct xdsc_client {
    /* Options (strings copied). */
    char *meshd, *server_name, *state_dir, *spiffe_id, *node_id, *token_file;
    /* meshd replicas (--meshd list, resolved): the ADS stream and the CA calls
     * each go round them (xds_targets.h); the probe cuts a long backoff short
     * when one comes back (xds_probe.h). */
    xdsc_targets targets;
    xdsc_rotor ads_rot, csr_rot;
    char ads_target[XDSC_TARGET_LEN];  /* the address of the current/last ADS stream */
    char csr_target[XDSC_TARGET_LEN];  /* ... and of the current/last CA call */
    xdsc_probe probe;
    char *token;                    /* wiped once spent */
    cert_pool *pool;
    xdsc_hooks hooks;
    char pool_path[4096];

    pthread_t th;
    bool th_started;
    atomic_bool stop;

    grpc_completion_queue *cq;
    xdsc_engine eng;
    Envoy__Config__Core__V3__Node node;

    /* ADS */
    xdsc_ads ads;
    bool ads_active;                /* ads holds a call (maybe closing) */
    bool ads_connected;             /* the stream delivered a response */
    bool ads_planned_close;         /* we cancelled it to re-open with a new SVID */
    char ads_serial[80];            /* SVID serial the stream's channel presents */
    int64_t ads_next_ms;
    xdsc_backoff ads_bo;
    uint64_t ads_failures;          /* consecutive attempts that got no response */
    int64_t ads_last_fail_log;      /* Unix seconds */

    /* Identity */
    xdsc_csr_call csr;
    bool csr_active;
    int64_t csr_next_ms;
    xdsc_backoff csr_bo;
    uint64_t pool_gen;
    bool pool_gen_seen;
    char cur_serial[80];
    int64_t renew_at;               /* Unix seconds; 0 = none */
    bool recovery_refused;
    bool rekey_refused;             /* meshd refused to renew with our revoked SVID */
    char revoked_serial[80];        /* serial meshd refused our ADS stream for (revoked) */
    char refused_token[65];         /* SHA-256 of a token meshd refused or we spent */
    int64_t last_no_token_log;
    uint64_t csr_failures;          /* consecutive failed attempts */
    int64_t csr_last_fail_log;      /* Unix seconds */
    int csr_last_rc;                /* outcome of the previous attempt */
    bool reenrol;                   /* enrol with the (new) join token even if the SVID is valid */
    int64_t token_check_at;         /* next look for a new token in --token-file (Unix s) */

    /* meshd's chain as we checked it ourselves after a failed attempt */
    int64_t trust_checked_at;       /* Unix seconds; 0 = never */
    char trust_error[512];          /* why meshd's chain does not verify; "" = it does / unknown */

    pthread_mutex_t mu;             /* guards status */
    xdsc_client_status status;
};

/* The address meshd's chain is checked at: the ADS stream's, else the first. */
const char *xdsc_client_check_target(const xdsc_client *c);
/* The CA call to csr_target failed without a refusal: the delay before the next
 * attempt, which goes to the next replica at once unless a whole round failed. */
int64_t xdsc_id_next_delay(xdsc_client *c);

/* Records the newest error for xdsc_client_get_status (any thread may read it). */
void xdsc_client_set_error(xdsc_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* free() after wiping: for tokens and keys. */
void xdsc_wipe_free(char *s);

/* xds_identity.c: saves the pool when it changed and, for a new SVID, plans
 * its self-renewal. */
void xdsc_id_watch_pool(xdsc_client *c, int64_t now);
/* Starts a CreateCertificate call if one is due (first contact, renewal,
 * recovery). */
void xdsc_id_step(xdsc_client *c, int64_t now_ms, int64_t now);
/* The CreateCertificate call completed. */
void xdsc_id_on_csr_done(xdsc_client *c, bool ok, int64_t now_ms);
/* meshd ended the ADS stream with PERMISSION_DENIED because the SVID it was
 * opened with (serial) is revoked; details is meshd's message. */
void xdsc_id_on_revoked(xdsc_client *c, const char *serial, const char *details);
/* After a failed attempt to reach meshd: fetches meshd's chain and, when it
 * does not verify against our bundle, logs why and what to do (at most every
 * 30 s) and keeps it in trust_error. Returns true if it logged such a reason. */
bool xdsc_id_check_meshd(xdsc_client *c, int64_t now);

#endif
