/* meshd/meshd_internal.h — the pieces of the meshd process and the one context that ties them.
 *
 * Threads (docs/control-plane.md has the full picture):
 *   main        parses flags, starts everything, waits for SIGTERM/SIGINT, shuts down
 *   cq x N      drain the gRPC completion queue: new calls, received messages, send
 *               completions, closes. They never touch SQLite.
 *   worker x M  jobs that need the store or the CA: CreateCertificate, FetchSecrets,
 *               a new stream's first view (snapshot + secrets), SVID rotations
 *   notify      waits for the store's change notifications and wakes the watcher
 *   watcher     looks at store changes (config, CA/bundle, certs), recompiles
 *               snapshots for connected identities, pushes, schedules rotations,
 *               renews meshd's own serving cert
 *   status      writes proxy status and audit rows in batches (one transaction)
 *               and the replica's heartbeat
 * Every thread that needs SQLite has its own mesh_store handle.
 *
 * Lock order: a call's mutex may be held while taking the leaf locks of the
 * work queue, status queue or TLS state; the cache and registry mutexes are
 * never held while taking a call's mutex. The audit gate's mutex may be held
 * while queueing a status event (its summary row), never the other way round. */
#ifndef MESH_MESHD_MESHD_INTERNAL_H
#define MESH_MESHD_MESHD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "common/error.h"
#include "common/log.h"
#include "common/rate.h"
#include "common/xds_wire.h"
#include "config/mesh_config.h"
#include "sds/protocol/ads_delta_state.h"
#include "sds/protocol/ads_state.h"
#include "sds/protocol/sds_secret_set.h"
#include "sds/compiler/xds_health.h"
#include "sds/compiler/xds_snapshot.h"
#include "meshd/meshd_metrics.h"
#include "meshd/meshd_status_rows.h"
#include "store/store.h"

#define MD_SERVING_NS "mesh-system"
#define MD_SERVING_SA "meshd"

/* Defaults of the bounds (md_opts). 100 streams per connection is HTTP/2's
 * recommended minimum (RFC 9113 6.5.2) and far more than a sidecar uses (one
 * ADS stream, now and then a CreateCertificate). A SotW stream has at most one
 * response per type awaiting its ACK: one in flight and four queued behind it,
 * so four messages of the delivery limit never cancel a client that reads. */
#define MD_DEFAULT_STREAMS_PER_CONN 100
#define MD_DEFAULT_STREAMS_PER_IDENTITY 1000
#define MD_DEFAULT_SEND_QUEUE ((size_t)4 * XDS_WIRE_MAX_MESSAGE)
#define MD_DEFAULT_SEND_QUEUE_TOTAL ((size_t)256 * 1024 * 1024)

/* ---- options (meshd_flags.c) ------------------------------------------------ */

typedef struct md_opts {
    const char *db_path;
    const char *listen;           /* host:port, default 127.0.0.1:15010 */
    int64_t svid_ttl;             /* default TTL of SVIDs we sign (s) */
    double rotate_fraction;       /* renew at this fraction of lifetime (0.5) */
    enum log_level log_level;
    const char *instance;         /* name in proxy status; default meshd-<host>-<pid> */
    int cq_threads;
    int workers;
    int64_t poll_ms;              /* store change polling interval */
    int64_t debounce_ms;          /* wait for a burst of writes to settle */
    size_t max_pending_csr;       /* admission control for CreateCertificate */
    const char *plain_listen;     /* plaintext xDS port for proxyless gRPC clients, NULL = off
                                   * (meshd/meshd_proxyless.h) */
    int plain_remote;             /* ... which may bind a non-loopback address */
    /* Bounds on what a peer can make meshd hold (docs/control-plane.md "Bounds"). */
    int max_streams_per_conn;     /* HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS */
    size_t max_streams_per_identity; /* xDS streams one SPIFFE ID may hold at once */
    size_t max_send_queue;        /* bytes queued for one call before it is cancelled */
    size_t max_send_queue_total;  /* ... and for all calls together */
    int64_t keepalive_ms;         /* ping an idle connection this often ... */
    int64_t keepalive_timeout_ms; /* ... and close it when the ping is not answered */
    const char *metrics_listen;   /* /metrics, /healthz, /readyz, /logging; NULL = off */
    enum log_format log_format;
    int64_t endpoint_grace_s;     /* EDS UNHEALTHY after this long without a stream; 0 = off */
} md_opts;

/* 0 = run, 1 = help printed (exit 0), <0 = error in err. */
int md_opts_parse(int argc, char **argv, md_opts *o, mesh_err *err);

/* ---- string-keyed hash map (meshd_map.c) ------------------------------------- */

typedef struct md_map md_map;
md_map *md_map_new(size_t n_buckets);
void md_map_free(md_map *m, void (*free_val)(void *));
void *md_map_get(const md_map *m, const char *key);
int md_map_put(md_map *m, const char *key, void *val, void **old);
void *md_map_remove(md_map *m, const char *key);
size_t md_map_count(const md_map *m);
/* Calls fn for every entry, in no particular order. fn may remove the entry it
 * is given (to prune while walking; key is freed then), but no other; entries it
 * adds may or may not be visited. */
void md_map_each(md_map *m, void (*fn)(const char *key, void *val, void *ctx), void *ctx);

typedef struct md_ctx md_ctx;

/* ---- serving TLS (meshd_tls.c) ----------------------------------------------- */

typedef struct md_tls {
    pthread_mutex_t mu;
    char *roots_pem;              /* the bundle: verifies client SVIDs */
    X509_STORE *roots_store;      /* the same, for md_tls_verify_client */
    char *key_pem;                /* meshd's serving key (in memory only) */
    char *chain_pem;              /* serving cert + intermediates */
    uint64_t gen;                 /* bumped on every change */
    uint64_t delivered;           /* gen last handed to gRPC */
    int64_t not_before, not_after;
    int64_t ca_id;
    char serial[48];
} md_tls;

int md_tls_init(md_tls *t);
void md_tls_destroy(md_tls *t);
/* Issues a fresh serving cert (new key) from ca and installs it. */
int md_tls_issue_serving(md_ctx *ctx, mesh_ca *ca, mesh_store *st, mesh_err *err);
void md_tls_set_roots(md_tls *t, const char *roots_pem);
/* 1 when the serving cert is past the rotation fraction or not from ca_id. */
int md_tls_renew_due(md_tls *t, int64_t now, double fraction, int64_t active_ca_id);
grpc_server_credentials *md_tls_server_creds(md_ctx *ctx);
/* Verifies a client certificate (PEM) and the chain the peer sent with it
 * (may be NULL) against the bundle at time now, as libssl would have at the
 * handshake. MESH_OK, or MESH_EPERM with why in err ("client certificate
 * refused: certificate has expired"); MESH_EBUSY before a bundle is loaded. */
int md_tls_verify_client(md_tls *t, const char *leaf_pem, const char *chain_pem, int64_t now,
                         mesh_err *err);
/* What an unverified client certificate claims, for an audit detail: its URI
 * SANs (comma-separated, raw) and "serial=.. issuer=.. not_after=..". */
void md_tls_describe_client(const char *leaf_pem, char *claim, size_t claim_len, char *info,
                            size_t info_len);

/* ---- calls (meshd_call.c) ---------------------------------------------------- */

/* Every kind before MD_CALL_UNIMPL is a registered method. DADS/DSDS are the
 * Incremental (Delta) twins of ADS/SDS. */
enum md_call_kind { MD_CALL_ADS = 0, MD_CALL_SDS, MD_CALL_FETCH, MD_CALL_CSR, MD_CALL_DADS,
                    MD_CALL_DSDS, MD_CALL_UNIMPL, MD_CALL_KIND_COUNT };
enum md_op { MD_OP_REQUEST = 1, MD_OP_RECV, MD_OP_SEND, MD_OP_CLOSE, MD_OP_SHUTDOWN };

typedef struct md_tag {
    enum md_op op;
    void *p;
} md_tag;

typedef struct md_out {
    struct md_out *next;
    grpc_byte_buffer *bb;         /* NULL for a status-only item */
    size_t len;                   /* bytes of bb */
    int has_status;
    grpc_status_code code;
    char *msg;
} md_out;

typedef struct md_stream md_stream;

typedef struct md_call {
    md_ctx *ctx;
    enum md_call_kind kind;
    grpc_call *call;
    atomic_int refs;
    pthread_mutex_t mu;
    md_tag recv_tag, send_tag, close_tag;
    grpc_metadata_array req_md;   /* client's initial metadata */
    char method[160];             /* for UNIMPLEMENTED replies and logs */
    grpc_byte_buffer *recv_buf;
    int cancelled;                /* RECV_CLOSE_ON_SERVER result */
    int closed;                   /* the call is over (close completed) */
    int finishing;                /* a status is queued or sent: no more messages */
    int initial_md_sent;
    md_out *q_head, *q_tail;
    md_out *inflight;
    size_t queued_bytes;          /* message bytes queued or in flight (not yet taken by
                                   * the transport): bounded by opts.max_send_queue */
    int send_overflow;            /* cancelled because its client did not read */
    uint64_t sent_bytes;          /* message bytes the transport has taken */
    grpc_slice status_details;
    int status_details_set;
    char peer_addr[128];
    char spiffe_id[512];          /* verified peer identity, "" if none */
    char *peer_cert_pem;          /* certificate the peer presented, NULL if none */
    char pubkey_sha[65];          /* of that certificate, "" if none */
    md_stream *stream;            /* ADS / SDS streams only */
    int plaintext;                /* came over the plaintext xDS port (meshd_proxyless.c) */
    struct md_call *reg_prev, *reg_next;  /* stream registry links */
    int registered;               /* linked: the watcher sees it */
    int admitted;                 /* counted against its identity's stream limit */
} md_call;

/* 1 for the xDS streams (ADS, SDS and their Delta twins). */
int md_call_kind_is_stream(enum md_call_kind k);
/* 1 for DeltaAggregatedResources and DeltaSecrets. */
int md_call_kind_is_delta(enum md_call_kind k);
md_call *md_call_new(md_ctx *ctx, enum md_call_kind kind, grpc_call *call,
                     grpc_metadata_array *md_moved, const char *method);
void md_call_ref(md_call *c);
void md_call_unref(md_call *c);
int md_call_start_close(md_call *c);
int md_call_start_recv(md_call *c);
/* With c->mu held: queue a message / a final status / a unary reply. */
void md_call_send_locked(md_call *c, grpc_byte_buffer *bb);
void md_call_finish_locked(md_call *c, grpc_status_code code, const char *msg);
void md_call_reply_locked(md_call *c, grpc_byte_buffer *bb, grpc_status_code code,
                          const char *msg);
/* Locks c and finishes it (any thread). */
void md_call_finish(md_call *c, grpc_status_code code, const char *msg);
void md_call_on_recv(md_call *c, int ok);
void md_call_on_send(md_call *c, int ok);
void md_call_on_close(md_call *c, int ok);

/* ---- ADS / SDS streams (meshd_stream.c) --------------------------------------- */

/* One encoded DiscoveryResponse body (all but the nonce), shared by every
 * stream that sends this (type, subset version) of a snapshot. */
typedef struct md_snap_enc {
    char version[ADS_VERSION_MAX]; /* "" = empty slot */
    grpc_slice body;               /* refcounted: the snapshot and each queued message */
} md_snap_enc;

typedef struct md_snap {
    atomic_int refs;
    uint64_t gen;                 /* config generation it was compiled from */
    uint64_t checked_gen;         /* newest generation tried for this identity (cache mu) */
    xds_snapshot snap;
    pthread_mutex_t enc_mu;       /* guards enc (streams of one identity on many threads) */
    md_snap_enc enc[ADS_T_COUNT]; /* the last body encoded per type (meshd_encode.c) */
} md_snap;

/* meshd_encode.c. The message for one ads_send (its nonce included): the body
 * comes from snap's shared encoding when it holds this type and version (snap
 * NULL: encoded for this message alone, as for secrets). *len is the message
 * size (the delivery limit is checked by the caller before queueing). NULL
 * with err set on failure. */
grpc_byte_buffer *md_encode_response(md_ctx *ctx, md_snap *snap, const ads_send *sd,
                                     size_t *len, mesh_err *err);
void md_snap_enc_init(md_snap *s);
void md_snap_enc_free(md_snap *s);

/* The snapshot cache key of an enrolled instance: "<SPIFFE ID>#<instance>"
 * (a SPIFFE ID cannot contain '#'; proxyless keys have their own prefix). */
#define MD_INSTANCE_KEY_SEP '#'

struct md_stream {
    ads_state st;                 /* SotW streams */
    ads_delta_state *delta;       /* Delta streams (heap), NULL for SotW */
    char node_id[256];            /* Node.id as named by the first request, escaped; an
                                   * enrolled instance when Node.id only repeats the identity */
    char row_id[530];             /* identity of its proxy-status row: md_stream_row_id */
    char node_claim[256];         /* the first request's Node.id, "" if none */
    char *view_key;               /* snapshot cache key (md_call_view_key); NULL = spiffe_id.
                                   * Set before the call is registered, never changed after */
    char instance[128];           /* the instance the peer's certificate was enrolled for
                                   * ("" = identity-wide), from the store, not from Node.id */
    int instance_known;           /* instance settled (the worker read the enrolment) */
    int node_known;
    int status_opened;
    int64_t reported_not_after;
    int view_ready;
    md_snap *snap;                /* ref held; NULL = config not loaded */
    uint64_t cfg_gen;
    sds_secret_set *secrets;      /* heap (self-referential), NULL until ready */
    sds_svid svid;                /* current SVID (with chain PEM) */
    uint64_t bundle_gen;
    uint64_t cert_gen;
    char presented_serial[48];    /* serial of the cert the peer connected with */
    char *refusal;                /* that cert is revoked: the message to close with once
                                   * the first request names the node (meshd_revoke.c) */
    int64_t connected_at;
    unsigned requests, responses;
    /* Trust roots (sds_bundle_roots) the client holds once it ACKs the SDS
     * response in flight, and those it last ACKed (meshd_trust.c). */
    char *sds_pending_roots;
    char *sds_acked_roots;
    /* Push convergence (md_metrics.convergence): the store change a push
     * carried (while md_stream_update_locked runs, else 0), the earliest
     * change not yet converged and the types pushed for it awaiting ACK. */
    int64_t push_change_ms;
    int64_t conv_since_ms;
    unsigned conv_types;
};

/* Called on a new ADS/SDS call: authenticates, registers, queues the first view. */
void md_stream_open(md_call *c);
void md_stream_on_message(md_call *c, const uint8_t *buf, size_t len);
/* A change to a stream's view. Parts not flagged are kept. */
typedef struct md_view_update {
    int set_snap;                 /* snap (ref taken over; NULL = no config) + cfg_gen */
    md_snap *snap;
    uint64_t cfg_gen;
    sds_svid *svid;               /* moved in when non-NULL, with cert_gen */
    uint64_t cert_gen;
    sds_bundle *bundle;           /* borrowed (a ref is taken) when non-NULL */
    uint64_t bundle_gen;
    int64_t change_ms;            /* md_now_ms when the watcher saw the store change, 0 = none */
} md_view_update;

/* c->mu held: apply the update, then push whatever the client should now get. */
void md_stream_update_locked(md_call *c, md_view_update *u);
void md_stream_on_close(md_call *c);
void md_stream_free(md_stream *s);
/* c->mu held: names the node after the first request's Node.id (the
 * verified SPIFFE ID when it has none); later requests change nothing.
 * Returns 0 when the stream was refused (its certificate is revoked: the
 * node's proxy-status row says so and the call is finished; or, once the
 * instance is known too, Node.id claims another instance: md_stream_settle_*).
 */
int md_stream_note_node_locked(md_call *c, int has_node, const char *node_id);
/* The identity a stream's proxy-status row is keyed by (with its node): the
 * verified SPIFFE ID; on the plaintext port, where the identity is only
 * claimed, "unverified:<claim>", so such a row can never share a key with a
 * verified one. Set when the node is noted. */
const char *md_stream_row_id(const md_call *c);
/* c->mu held, on an mTLS stream whose enrolled instance was just read: records
 * it, and, if Node.id claimed to be another instance of the identity, refuses
 * the stream (PERMISSION_DENIED, audited): a sidecar is served the instance its
 * certificate was enrolled for, or nothing. Returns 0 when refused. */
int md_stream_settle_instance_locked(md_call *c, const char *instance);
/* c->mu held: queues the proxy-status open / SVID-expiry rows once the node is known. */
void md_stream_status_sync_locked(md_call *c);
/* What a SotW or Delta request ended as, for operators: ACK/NACK go to proxy
 * status; a refused SDS name is audited, logged and ends the stream with
 * PERMISSION_DENIED (returns 0 then, 1 otherwise). Call with c->mu held. */
int md_stream_note_reply_locked(md_call *c, enum ads_req_kind kind, const char *type_url,
                                const char *acked_version, const char *nack_version,
                                const char *nack_error, const char *denied_name,
                                const char *denied_why);

/* ---- revocation (meshd_revoke.c) ------------------------------------------------ */

/* The certificate c's stream connected with is revoked. Logs, audits, tells
 * the sidecar why and what it needs (the status message), marks the node
 * stranded in proxy status and ends the stream — at once when the node is
 * known, else when its first request names it. st: the caller's own store
 * handle (worker or watcher). Takes c->mu. */
void md_stream_refuse_revoked(md_call *c, mesh_store *st);
/* Refreshes the CRLs in the store (ca_crl_refresh) and installs the current
 * ones in the cache; returns 1 when the ROOTCA bundle changed. */
int md_crl_sync(md_ctx *ctx, mesh_store *st);

/* ---- trust bundle ACKs (meshd_trust.c) ----------------------------------------- */

/* c->mu held: an SDS response with these resources was sent on c. */
void md_trust_on_sds_sent_locked(md_call *c, const xds_resource *const *items, size_t n);
/* c->mu held: the client answered the SDS response in flight (ACK or NACK);
 * an ACK of a bundle with other roots than the last one is recorded. */
void md_trust_on_sds_reply_locked(md_call *c, enum ads_req_kind kind);

/* ---- Delta xDS streams (meshd_delta.c) ------------------------------------------ */

void md_delta_on_message(md_call *c, const uint8_t *buf, size_t len);
/* c->mu held: 1 if a response of len bytes is over the delivery limit, in which
 * case it was recorded for the node (proxy-status, audit) and must not be sent. */
int md_stream_over_limit_locked(md_call *c, const char *type_url, const char *version,
                                size_t len);
/* c->mu held: sends what the Delta state machine says the view requires. */
void md_delta_push_locked(md_call *c, const ads_view *v);
/* c->mu held: a response of type t was queued on c (pushes counter and the
 * push-convergence measurement, meshd_stream.c). */
void md_stream_count_push_locked(md_call *c, enum ads_type t);

/* Registry of live streams (the watcher walks it), counted per identity
 * (c->spiffe_id). md_registry_admit counts c against its identity unless that
 * already holds opts.max_streams_per_identity streams (MESH_EBUSY; *held = how
 * many); it does not link c, so a stream is admitted when it opens and is
 * seen by the watcher only once md_registry_add links it (its view key set).
 * md_registry_add links c (counting it too if it was not admitted); both are
 * idempotent, and md_registry_remove undoes whichever happened. */
int md_registry_admit(md_ctx *ctx, md_call *c, size_t *held);
void md_registry_add(md_ctx *ctx, md_call *c);
size_t md_registry_count_of(md_ctx *ctx, const char *spiffe_id);
/* Frees the per-identity counts (every stream gone). */
void md_registry_destroy(md_ctx *ctx);
void md_registry_remove(md_ctx *ctx, md_call *c);
/* Array of referenced calls; release with md_registry_release. */
md_call **md_registry_list(md_ctx *ctx, size_t *n_out);
void md_registry_release(md_call **list, size_t n);

/* ---- unary calls (meshd_unary.c) ----------------------------------------------- */

void md_unary_on_message(md_call *c, const uint8_t *buf, size_t len);

/* ---- workers (meshd_work.c) ---------------------------------------------------- */

enum md_job_kind { MD_JOB_STREAM_INIT = 0, MD_JOB_CSR, MD_JOB_FETCH, MD_JOB_ROTATE };

typedef struct md_job {
    struct md_job *next;
    enum md_job_kind kind;
    md_call *call;                /* ref held (not for ROTATE) */
    void *msg;                    /* decoded request (CSR: IstioCertificateRequest, FETCH: ads_decoded) */
    char *authorization;          /* CSR metadata copies */
    char *expired_svid;
    char *spiffe_id;              /* ROTATE */
    char *cert_pem;               /* ROTATE: a cert holding the public key to re-certify */
    char instance[128];           /* ROTATE: the instance the new cert records */
    char rot_key[600];            /* ROTATE: "<spiffe id>|<pubkey sha>" */
    int64_t ttl;                  /* ROTATE */
    int64_t enqueued_ms;
} md_job;

typedef struct md_worker {
    md_ctx *ctx;
    pthread_t th;
    int idx;
    mesh_store *st;
    mesh_ca *ca;
    uint64_t ca_gen;
} md_worker;

typedef struct md_workq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    md_job *head, *tail;
    size_t n, n_csr;
    int stop;
    md_worker *workers;
    int n_workers;
} md_workq;

int md_work_start(md_ctx *ctx, mesh_err *err);
void md_work_stop(md_ctx *ctx);
/* Takes ownership of job. MESH_EBUSY when CSR admission is full (job freed). */
int md_work_submit(md_ctx *ctx, md_job *job);
/* The same, for a caller holding job->call's mutex: when the pool is stopping
 * the job is freed and MESH_EBUSY returned; finishing the call is the caller's. */
int md_work_submit_locked(md_ctx *ctx, md_job *job);
/* q->mu held: takes the oldest job off the queue (NULL when empty); taking a
 * CSR job frees its admission slot. */
md_job *md_workq_pop_locked(md_workq *q);
void md_job_free(md_job *j);
/* The worker's CA, reloaded when the active CA changed. */
int md_worker_ca(md_worker *w, mesh_ca **out, mesh_err *err);
void md_job_stream_init(md_worker *w, md_job *j);
void md_job_csr(md_worker *w, md_job *j);
void md_job_fetch(md_worker *w, md_job *j);
void md_job_rotate(md_worker *w, md_job *j);

/* ---- shared compiled state (meshd_cache.c) ------------------------------------- */

typedef struct md_cfg {
    atomic_int refs;
    uint64_t gen;
    int64_t version;              /* store config_version it was loaded at */
    mesh_config cfg;              /* empty when base is set */
    struct md_cfg *base;          /* a health-only generation: the config is base's (ref held) */
    xds_health health;            /* endpoints served UNHEALTHY (meshd_health.h) */
} md_cfg;

typedef struct md_cas {
    atomic_int refs;
    store_ca *list;
    size_t n;
    int64_t active_id;
} md_cas;

typedef struct md_cache {
    pthread_mutex_t mu;
    md_cfg *cfg;                  /* NULL until a config loaded */
    md_map *snaps;                /* spiffe id -> md_snap* (ref held) */
    sds_bundle *bundle;
    uint64_t bundle_gen;
    char *crl_pem;                /* the CRLs the bundle carries ("" = none yet) */
    md_cas *cas;
    xds_health health;            /* the current endpoint health (watcher writes) */
    atomic_uint_fast64_t cfg_gen; /* readable without the mutex; bumped by a new config and
                                   * by a change of endpoint health */
    atomic_uint_fast64_t ca_gen;  /* bumped when the active CA changes */
    atomic_uint_fast64_t cert_gen;/* bumped when certs changed (issued/revoked) */
    md_map *enrolled;             /* certificate serial -> enrolled instance (malloc'd), as
                                   * read from the store: a stream that reconnects while
                                   * the store is unreachable still gets its view */
} md_cache;

int md_cache_init(md_cache *c);
void md_cache_destroy(md_cache *c);
/* Snapshot for an identity at the current config (compiled on demand; if
 * that fails, the identity's last good snapshot). NULL when there is none.
 * *gen_out = the config generation this answer stands for. */
md_snap *md_cache_snapshot(md_ctx *ctx, const char *spiffe_id, uint64_t *gen_out);
void md_snap_unref(md_snap *s);
md_snap *md_snap_ref(md_snap *s);
/* Installs a freshly loaded config (moved in); drops compiled snapshots. */
int md_cache_set_config(md_ctx *ctx, mesh_config *cfg, int64_t version, mesh_err *err);
/* A new endpoint health set (moved in): returns 1 when it differs from the
 * current one (a new generation: the caller recompiles and pushes, and only
 * the views whose EDS changed get anything), 0 when not, <0 on error. */
int md_cache_set_health(md_ctx *ctx, xds_health *h, mesh_err *err);
/* The current config generation (ref taken; NULL when none) and its config. */
md_cfg *md_cache_cfg_ref(md_ctx *ctx);
const mesh_config *md_cfg_config(const md_cfg *c);
void md_cfg_unref(md_cfg *c);
/* Recompiles the given identities at the current config (watcher). */
void md_cache_recompile(md_ctx *ctx, char **ids, size_t n);
sds_bundle *md_cache_bundle(md_ctx *ctx, uint64_t *gen_out);
int md_cache_set_cas(md_ctx *ctx, store_ca *list, size_t n, const char *bundle_pem,
                     mesh_err *err);
md_cas *md_cache_cas(md_ctx *ctx);
/* New CRLs for ROOTCA: rebuilds the bundle (new bundle_gen) when they differ.
 * Returns 1 when it changed, 0 when not, <0 on error (err set). */
int md_cache_set_crl(md_ctx *ctx, const char *crl_pem, mesh_err *err);
void md_cas_unref(md_cas *c);
/* The instance a certificate was enrolled for, as a worker last read it from
 * the store (at most MD_ENROLLED_MAX serials are kept); md_cache_enrolment
 * returns 1 and copies it when known. Only used while the store cannot be
 * read: the store stays the source of truth. A certificate this replica saw
 * refused as revoked is forgotten (md_cache_forget_enrolment); one revoked
 * while it was never connected here is not known to be revoked during an
 * outage and gets its own instance's config, not secrets (the SVID lookup
 * needs the store). */
#define MD_ENROLLED_MAX 100000
void md_cache_remember_enrolment(md_ctx *ctx, const char *serial, const char *instance);
int md_cache_enrolment(md_ctx *ctx, const char *serial, char *out, size_t n);
void md_cache_forget_enrolment(md_ctx *ctx, const char *serial);

/* ---- watcher (meshd_watch.c) ---------------------------------------------------- */

typedef struct md_watch {
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    md_map *dirty;                /* spiffe ids whose certs changed in-process */
    md_map *rotating;             /* rot_key -> (void*)1 while a rotation job runs */
    md_map *rot_backoff;          /* rot_key -> int64_t* retry-after (failed rotations) */
    mesh_store *st;
    void *local;                  /* watcher-thread-only state (meshd_watch.c) */
    /* Change notification (meshd_notify.c): a thread waits on the store's
     * notifier and sets poked (under mu) to wake the watcher at once; the
     * --poll-interval poll stays as the safety net. */
    int poked;
    atomic_int notify_live;       /* notifications work now (else poll faster) */
    int notify_after_commit;      /* a poke means the change is visible (PostgreSQL) */
    store_notifier *notifier;     /* NULL: polling only */
    pthread_t notify_th;
    int notify_started;
    int notify_stop_fd;           /* eventfd that ends the notify thread; -1 = none */
} md_watch;

int md_watch_start(md_ctx *ctx, mesh_err *err);
void md_watch_stop(md_ctx *ctx);
/* The notify thread (meshd_notify.c): MESH_OK also when notifications are
 * unavailable (logged; the watcher polls). Stopped before the watcher. */
int md_notify_start(md_ctx *ctx, mesh_err *err);
void md_notify_stop(md_ctx *ctx);
/* Wakes the watcher as a store change notification does. */
void md_watch_poke(md_watch *w);
/* While notifications do not work the watcher polls at least this often. */
#define MD_POLL_FALLBACK_MS 200
/* A worker issued (or failed to issue) a cert for spiffe_id; rot_key non-NULL
 * for rotations. Wakes the watcher. */
void md_watch_cert_changed(md_ctx *ctx, const char *spiffe_id, const char *rot_key, int ok);
/* Claims rot_key for a rotation job (released by md_watch_cert_changed). 0 when
 * one is running for it, or a failed one is backing off (until now reaches its
 * retry time). */
int md_watch_rotation_claim(md_watch *w, const char *rot_key, int64_t now);

/* ---- proxy status and audit writer (meshd_status.c) ---------------------------- */

typedef struct md_status {
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    struct md_ev *head, *tail;
    size_t n;
    mesh_store *st;
    md_status_rows rows;          /* what each node's rows say (writer thread only) */
    int64_t last_heartbeat;       /* replica heartbeat (writer thread only) */
    int heartbeat_failing;
} md_status;

int md_status_start(md_ctx *ctx, mesh_err *err);
/* Flushes, marks this instance's proxies disconnected, closes its store. */
void md_status_stop(md_ctx *ctx);
void md_status_open(md_ctx *ctx, const char *node, const char *spiffe_id, const char *peer,
                    int64_t svid_not_after);
/* Node events name the row by (node, spiffe_id): the stream's Node.id and its
 * verified identity (meshd_status_rows.h). */
void md_status_svid(md_ctx *ctx, const char *node, const char *spiffe_id,
                    int64_t svid_not_after);
void md_status_close(md_ctx *ctx, const char *node, const char *spiffe_id);
void md_status_type(md_ctx *ctx, const char *node, const char *spiffe_id, const char *type_url,
                    const char *sent, const char *acked, const char *nack_version,
                    const char *nack_error);
/* Queues an audit row. A refusal (ok = 0) passes the rate limit of its
 * actor's class first (meshd_audit.c) and is dropped, counted, past it. */
void md_status_audit(md_ctx *ctx, const char *actor, const char *action, const char *subject,
                     const char *detail, int ok);
/* The same without the rate limit: for meshd_audit.c, which applied it. */
void md_status_audit_ungated(md_ctx *ctx, const char *actor, const char *action,
                             const char *subject, const char *detail, int ok);
/* The sidecar of (node, spiffe_id: the row id) is stranded (its SVID was
 * revoked ...): shown by proxy-status until it connects again with a valid SVID. */
void md_status_problem(md_ctx *ctx, const char *node, const char *spiffe_id,
                       const char *problem);
/* (node, spiffe_id) ACKed a trust bundle holding exactly `roots` (store_proxy_trust). */
void md_status_trust(md_ctx *ctx, const char *node, const char *spiffe_id, const char *roots);

/* ---- refusals: audit rows and log lines (meshd_audit.c) --------------------------- */

enum { MD_AUDIT_UNAUTH = 0, MD_AUDIT_VERIFIED, MD_AUDIT_CLASSES };
#define MD_AUDIT_UNAUTH_PER_SEC 1.0     /* sustained refusal rows of unauthenticated peers */
#define MD_AUDIT_UNAUTH_BURST 60.0
#define MD_AUDIT_VERIFIED_PER_SEC 5.0   /* ... of verified identities */
#define MD_AUDIT_VERIFIED_BURST 100.0
#define MD_AUDIT_FLUSH_MS 10000         /* a dropped count is reported within this */

typedef struct md_audit_gate {
    pthread_mutex_t mu;
    mesh_rate rate[MD_AUDIT_CLASSES];
    uint64_t suppressed_total;    /* rows dropped since start (reported ones) */
    int64_t fixed_now_ms;         /* > 0: the gate's clock stands still here (unit tests) */
} md_audit_gate;

int md_audit_gate_init(md_audit_gate *g);
void md_audit_gate_destroy(md_audit_gate *g);
/* 1 when a refusal row of actor may be written now (its class's bucket had a
 * token); writes the "audit.suppressed" summary of the class first, if any. */
int md_audit_admit(md_ctx *ctx, const char *actor, int64_t now_ms);
/* Reports every class's dropped rows that are older than MD_AUDIT_FLUSH_MS. */
void md_audit_flush(md_ctx *ctx, int64_t now_ms);
/* The gate's clock: md_now_ms(), or audit_gate.fixed_now_ms when a test set it. */
int64_t md_audit_now(md_ctx *ctx);
/* A refused call, audited and logged (rate-limited): the actor is the call's
 * verified SPIFFE ID, or "unauthenticated" with what it claimed in the detail;
 * peer address and reason in the detail. */
void md_audit_refusal(md_ctx *ctx, const md_call *c, const char *action, const char *subject,
                      const char *reason);
/* The same with the actor (verified material only), claim (or NULL) and peer given. */
void md_audit_refusal_as(md_ctx *ctx, const char *actor, const char *claim, const char *peer,
                         const char *action, const char *subject, const char *reason);
/* A bound a peer ran into (xds.limit, xds.overflow, xds.oversize): the same row
 * and log line, at level lvl, under the same rate limit — one client hitting a
 * bound in a loop must not flood the audit table or the log. */
void md_audit_bound(md_ctx *ctx, const md_call *c, enum log_level lvl, const char *action,
                    const char *subject, const char *reason);

/* ---- server (meshd_server.c) --------------------------------------------------- */

typedef struct md_slot {
    md_tag tag;
    md_ctx *ctx;
    enum md_call_kind kind;
    void *method;                 /* registered method handle; NULL = generic */
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    gpr_timespec deadline;
    grpc_byte_buffer *payload;
} md_slot;

#define MD_SLOTS_PER_METHOD 4
#define MD_MAX_CQ_THREADS 8

/* Creates the server and binds the port (fails fast if it is taken). */
int md_server_bind(md_ctx *ctx, mesh_err *err);
/* Starts serving: request slots and completion-queue threads. */
int md_server_run(md_ctx *ctx, mesh_err *err);
/* Stops accepting, cancels every call, waits for them, stops the CQ threads. */
void md_server_stop(md_ctx *ctx);

/* ---- the context -------------------------------------------------------------- */

struct md_ctx {
    md_opts opts;
    char trust_domain[256];
    char instance[128];
    char control_plane_id[200];
    uint32_t nonce_prefix;
    atomic_uint_fast64_t nonce_counter;
    atomic_int shutting_down;

    mesh_store *main_st;          /* main thread's handle (startup, shutdown) */
    mesh_ca *main_ca;

    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t cq_threads[MD_MAX_CQ_THREADS];
    int n_cq_threads;
    md_slot *slots;
    size_t n_slots;
    md_tag shutdown_tag;

    /* message bytes queued in every call (md_call.queued_bytes summed) */
    atomic_size_t send_queued_total;

    /* live call accounting, for an orderly shutdown */
    pthread_mutex_t life_mu;
    pthread_cond_t life_cv;
    long live_calls;
    int server_shutdown_done;
    atomic_uint_fast64_t calls_closed; /* calls freed since start (memory trimming) */

    pthread_mutex_t reg_mu;
    md_call *reg_head;
    size_t reg_count;
    md_map *reg_by_id;            /* spiffe id -> streams registered (as uintptr_t) */

    md_tls tls;
    md_cache cache;
    md_workq work;
    md_watch watch;
    md_status status;
    md_audit_gate audit_gate;
    md_metrics metrics;
    md_admin *admin;              /* the metrics listener, NULL when off */
};

/* Locks, the cache, the TLS state, nonce prefix, instance name (ctx->opts set;
 * meshd_ctx.c). The pieces' threads are started later, one by one. */
int md_ctx_init(md_ctx *ctx, mesh_err *err);
/* Process-unique xDS nonce (ads_nonce_fn). */
void md_nonce(void *ctx, char *buf, size_t len);
int64_t md_now(void);
int64_t md_now_ms(void);

#endif
