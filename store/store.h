/* store/store.h — the store, meshd's source of truth.
 *
 * Two backends behind this one API (docs/store.md): an SQLite file, the
 * embedded default, and a PostgreSQL database through libpq, chosen by the
 * --db value: "/path/meshd.db" or "sqlite:///path" versus "postgres://...".
 * Both run the same numbered migrations. The SQLite file (WAL mode,
 * synchronous=FULL, busy timeout) holds: settings (trust
 * domain, ...), CA material metadata (certs in PEM; private keys live in 0600
 * files whose path is recorded here), registrations, join tokens (SHA-256
 * hashes only), issued SVIDs, mesh config resources with versions, proxy
 * status reported by meshd, and an audit log. Schema changes go through
 * numbered migrations tracked by PRAGMA user_version.
 *
 * Every writing call commits before it returns (unless inside store_begin /
 * store_commit), so a cert that was handed to a client is on disk even if the
 * process is SIGKILLed right after. A mesh_store handle is used by one thread
 * at a time; meshd opens one handle per thread that needs it.
 *
 * Strings returned inside structs are heap-allocated and released with the
 * matching *_free function. Times are Unix seconds (int64_t). */
#ifndef MESH_STORE_STORE_H
#define MESH_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct mesh_store mesh_store;

/* Opens the existing store at path, checks it, and applies pending
 * migrations. Never creates one: a missing or empty file is MESH_ENOTFOUND
 * (a mistyped --db must not become a new, empty store).
 *
 * Checks: the first handle to open the store (nobody else has it open) runs
 * the full PRAGMA integrity_check when the previous session did not close
 * cleanly or the file changed while closed, PRAGMA quick_check otherwise;
 * later handles run quick_check. Every open compares the store with its
 * witness file "<path>-witness" (a high-water mark of committed changes kept
 * outside the database) and refuses a store that moved backwards (WAL
 * frames lost, an older copy put back), was replaced by another store, or
 * is missing or empty although the witness saw it hold data.
 *
 * A damaged, rolled-back or lost store gives MESH_ECORRUPT with a message
 * naming the file and the backup to restore; a file that is not a meshd
 * store, or one from a newer meshd, gives MESH_EINVAL. A refused file is
 * left as it was. See docs/control-plane.md, "Store integrity". */
int store_open(mesh_store **out, const char *path, mesh_err *err);

typedef struct store_open_opts {
    /* Create a new store when path is missing or an empty file, unless its
     * witness saw a store with data there (then MESH_ECORRUPT: restore it).
     * Only `meshctl ca init` and `meshctl --init` ask for this. */
    int create;
} store_open_opts;
int store_open_with(mesh_store **out, const char *path, const store_open_opts *opts,
                    mesh_err *err);
/* What opening st checked: "integrity_check", "quick_check" or "none" (new). */
const char *store_open_check(const mesh_store *st);

/* Closes the handle; the last handle of the store to close records a clean
 * close in the witness once SQLite has checkpointed and removed the WAL. */
void store_close(mesh_store *st);
/* Does this --db value name a PostgreSQL store (postgres:// or postgresql://)? */
int store_db_is_postgres(const char *db);
/* The file path, or the PostgreSQL URL without its password. */
const char *store_path(const mesh_store *st);
/* "sqlite" or "postgres". */
const char *store_backend_name(const mesh_store *st);
int store_schema_version(mesh_store *st);
int store_latest_schema_version(void);

/* PRAGMA data_version: changes when another connection commits. meshd polls
 * it to notice `meshctl apply` while running. */
int64_t store_data_version(mesh_store *st);

/* ---- change notifications (store_notify.c) --------------------------------
 * Wakes a reader when another connection (meshctl, a worker, another meshd
 * replica) commits a change, so meshd need not poll (docs/store.md, "Change
 * notification"). PostgreSQL: a connection of its own that LISTENs on the
 * channel the store's triggers NOTIFY at commit (migration 6 -> 7); a
 * notification arrives once the change is visible. SQLite: an inotify watch
 * on the database's directory for writes to the file and its -wal; the
 * event may come a little before the commit is visible (the WAL index is
 * updated after the write), so the reader re-checks data_version shortly
 * after. Either way a slow poll stays the safety net. */
typedef struct store_notifier store_notifier;
int store_notifier_open(const char *db, store_notifier **out, mesh_err *err);
/* A descriptor to poll for POLLIN; -1 while there is none (PostgreSQL
 * connection lost: call store_notifier_reconnect). */
int store_notifier_fd(const store_notifier *n);
/* Consumes what is pending. 1: something may have changed; 0: nothing for
 * this store (e.g. a notification of a store in another schema); <0: the
 * watch broke (err says why; the fd is gone until a reconnect). */
int store_notifier_drain(store_notifier *n, mesh_err *err);
/* Re-establishes a broken watch. MESH_OK when it works again (the caller
 * must look at the store: changes may have been missed meanwhile). */
int store_notifier_reconnect(store_notifier *n, mesh_err *err);
/* 1 when a notification means the change is already visible (PostgreSQL),
 * 0 when it may come slightly earlier (SQLite). */
int store_notifier_after_commit(const store_notifier *n);
/* "listen" (PostgreSQL LISTEN/NOTIFY) or "inotify". */
const char *store_notifier_kind(const store_notifier *n);
void store_notifier_close(store_notifier *n);

/* Explicit transactions (BEGIN IMMEDIATE). Nested calls are an error. */
int store_begin(mesh_store *st, mesh_err *err);
int store_commit(mesh_store *st, mesh_err *err);
void store_rollback(mesh_store *st);

/* ---- integrity: check, backup, restore ----------------------------------- */
typedef enum store_health {
    STORE_HEALTHY = 0,
    STORE_DAMAGED,            /* integrity_check found problems */
    STORE_ROLLED_BACK,        /* holds fewer committed changes than its witness saw */
    STORE_REPLACED,           /* another store's file than the one the witness describes */
    STORE_LOST,               /* missing or empty, although its witness saw it hold data */
    STORE_WITNESS_UNREADABLE, /* the witness file holds no intact record */
} store_health;

typedef struct store_check_opts {
    /* Rebuild the indexes (REINDEX) when only indexes are damaged; the
     * rows are intact, so nothing is lost. Needs the store not in use. */
    int repair;
    /* The operator decided to keep the store as it is: record its current
     * state as the witness's high-water mark (for a lost store: forget it,
     * so that `meshctl ca init` may create a new one). Refused when the
     * store is damaged or in use. */
    int accept_loss;
} store_check_opts;

typedef struct store_check_report {
    store_health health;
    char **problems;          /* integrity_check findings (at most 100) */
    size_t n_problems;
    int index_only;           /* every finding is in an index: REINDEX repairs it */
    char *damaged_indexes;    /* "idx (table), ..." when index_only, else "" */
    int64_t pages, page_size, elapsed_ms;
    int schema_version;
    int counter_read;         /* seq and store_id could be read (not from a wrecked file) */
    int64_t seq;              /* the store's change counter */
    char store_id[33];
    int witness_present;
    int64_t witness_seq;
    char witness_store_id[33];
    int witness_clean;        /* the last session closed cleanly */
    char backup_path[1024];   /* the last `meshctl store backup`, "" if none */
    int64_t backup_at, backup_seq;
    int in_use;               /* another process had the store open */
    int repaired;             /* --repair rebuilt the indexes and the check passes now */
    int loss_accepted;        /* --accept-loss recorded the current state */
} store_check_report;

/* Examines the store at path without opening it as a store (so it works on
 * one that store_open refuses, and next to a running meshd): full
 * integrity_check, and the change counter against the witness. MESH_OK
 * whenever the examination ran, whatever it found (see out->health);
 * MESH_ENOTFOUND if there is no store and nothing witnesses one. */
int store_check(const char *path, const store_check_opts *opts, store_check_report *out,
                mesh_err *err);
void store_check_report_free(store_check_report *r);
const char *store_health_name(store_health h);

typedef struct store_backup_info {
    char path[4096];          /* absolute path of the backup */
    char store_id[33];
    int64_t seq, pages, bytes, at, elapsed_ms;
} store_backup_info;

/* Copies the store to dest with SQLite's online backup API: one consistent
 * snapshot, taken while meshd keeps reading and writing. The copy is a
 * self-contained file (rollback journal mode, 0600), verified with
 * integrity_check and fsynced before it gets its name; dest must not exist
 * unless overwrite. Recorded in the witness as the backup to restore. */
int store_backup(mesh_store *st, const char *dest, int overwrite, store_backup_info *info,
                 mesh_err *err);

typedef struct store_restore_info {
    char kept_path[4200];     /* where the replaced store was moved, "" if none */
    char store_id[33];
    int64_t seq;              /* the restored store's change counter */
    int64_t witness_seq;      /* the witness's mark before the restore */
} store_restore_info;

/* Puts backup in place of the store at path, which must not be in use: the
 * backup is verified (meshd store, integrity_check), the current files are
 * kept as "<path>.replaced-<time>" (and its -wal), and the witness is reset
 * to the backup's counter, deliberately. A backup of another store (other
 * store id) is refused unless force. */
int store_restore(const char *path, const char *backup, int force, store_restore_info *info,
                  mesh_err *err);

/* ---- settings (key/value) ---------------------------------------------- */
/* *value_out is malloc'd; MESH_ENOTFOUND if unset. */
int store_setting_get(mesh_store *st, const char *key, char **value_out, mesh_err *err);
int store_setting_set(mesh_store *st, const char *key, const char *value, mesh_err *err);

/* ---- CA material --------------------------------------------------------- */
/* state: "prepared" (in bundle, not signing), "active" (signing; exactly one),
 * "retired" (kept in bundle until its last leaf expires), "removed" (gone
 * from bundle). */
typedef struct store_ca {
    int64_t id;
    char *state;
    char *cert_pem;   /* this CA's certificate */
    char *chain_pem;  /* certs above it up to and including the root ("" if self-signed root) */
    char *key_path;   /* private key file, mode 0600; never the key itself */
    char *serial_hex;
    char *subject;
    char *key_type;   /* "ec-p256", "rsa-3072", ... */
    int64_t not_before, not_after, created_at;
} store_ca;

int store_ca_insert(mesh_store *st, const store_ca *ca, int64_t *id_out, mesh_err *err);
/* All CAs ordered by id ascending. */
int store_ca_list(mesh_store *st, store_ca **out, size_t *n_out, mesh_err *err);
int store_ca_get_active(mesh_store *st, store_ca *out, mesh_err *err);
int store_ca_set_state(mesh_store *st, int64_t id, const char *state, mesh_err *err);
void store_ca_free(store_ca *ca);               /* frees members, not ca itself */
void store_ca_free_list(store_ca *list, size_t n);

/* ---- registrations ------------------------------------------------------- */
/* Who may join. The identity is the service account, shared by every replica;
 * a registration is one instance of it: `name` is the instance (the workload's
 * name in the mesh config), with its own join tokens. name "" is the identity
 * as a whole (any instance of it: one workload per identity), the only kind
 * stores of schema 1 held; it stays valid.
 * Keys: (name, spiffe_id) with name non-empty is the instance `name` (spiffe_id
 * NULL = whatever its identity, else it must be this one); name "" (or NULL) is
 * the identity-wide registration of spiffe_id. */
typedef struct store_registration {
    int64_t id;
    char *name;       /* the instance; "" = identity-wide */
    char *spiffe_id;
    char *selectors;  /* free-form "k:v,k:v" ("" if none) */
    char *address;    /* host:port of the workload's sidecar inbound ("" if none) */
    int64_t created_at;
} store_registration;

/* MESH_EEXISTS for a second instance of one name, or a second identity-wide
 * registration of one identity. */
int store_registration_add(mesh_store *st, const char *name, const char *spiffe_id,
                           const char *selectors, const char *address, mesh_err *err);
/* MESH_ENOTFOUND (also when the instance belongs to another identity). */
int store_registration_get(mesh_store *st, const char *name, const char *spiffe_id,
                           store_registration *out, mesh_err *err);
/* Ordered by SPIFFE ID, then name (the identity-wide one first). */
int store_registration_list(mesh_store *st, store_registration **out, size_t *n_out,
                            mesh_err *err);
/* How many registrations (of either kind) an identity has. */
int store_registration_count(mesh_store *st, const char *spiffe_id, int64_t *n_out,
                             mesh_err *err);
/* Also deletes the registration's unused join tokens. MESH_ENOTFOUND. */
int store_registration_remove(mesh_store *st, const char *name, const char *spiffe_id,
                              mesh_err *err);
void store_registration_free(store_registration *r);
void store_registration_free_list(store_registration *list, size_t n);

/* ---- join tokens (stored as SHA-256 hex of the token, never the token) --- */
/* A token admits one registration: the instance `instance` of spiffe_id, or
 * (instance "" or NULL) its identity-wide registration, which must exist
 * (MESH_ENOTFOUND otherwise). */
int store_token_add(mesh_store *st, const char *token_hash_hex, const char *spiffe_id,
                    const char *instance, int64_t expires_at, mesh_err *err);
/* Atomically checks and spends a token: MESH_ENOTFOUND (unknown),
 * MESH_EEXPIRED (past expires_at), MESH_EPERM (already used). On success
 * *spiffe_id_out and *instance_out (malloc'd; "" for an identity-wide token;
 * instance_out may be NULL) are what the token was issued for. */
int store_token_consume(mesh_store *st, const char *token_hash_hex, int64_t now,
                        char **spiffe_id_out, char **instance_out, mesh_err *err);

/* ---- issued certificates ------------------------------------------------- */
typedef struct store_cert {
    char *serial_hex;      /* lowercase hex, no leading "0x" */
    char *spiffe_id;
    char *instance;        /* the instance it was enrolled for ("" = identity-wide); a
                            * renewal or recovery carries it over. NULL inserts "" */
    char *pubkey_sha256;   /* hex SHA-256 of the DER SubjectPublicKeyInfo */
    int64_t not_before, not_after, issued_at;
    int64_t ca_id;
    int revoked;
    int64_t revoked_at;
    char *revoke_reason;   /* "" unless revoked */
    char *cert_pem;
} store_cert;

int store_cert_insert(mesh_store *st, const store_cert *c, mesh_err *err); /* durable on return */
int store_cert_get(mesh_store *st, const char *serial_hex, store_cert *out, mesh_err *err);
/* spiffe_id NULL = all; include_expired 0 hides certs with not_after < now.
 * Ordered by issued_at descending. */
int store_cert_list(mesh_store *st, const char *spiffe_id, int include_expired, int64_t now,
                    store_cert **out, size_t *n_out, mesh_err *err);
/* The newest unrevoked cert for an identity; MESH_ENOTFOUND if none. */
int store_cert_latest(mesh_store *st, const char *spiffe_id, store_cert *out, mesh_err *err);
int store_cert_revoke(mesh_store *st, const char *serial_hex, const char *reason, int64_t now,
                      mesh_err *err);     /* MESH_ENOTFOUND; revoking twice is MESH_EEXISTS */
/* Number of unexpired certs signed by a CA (decides when a retired CA may leave the bundle). */
int store_cert_count_live_for_ca(mesh_store *st, int64_t ca_id, int64_t now, int64_t *count_out,
                                 mesh_err *err);
/* The same count and the latest notAfter among them (0 when none): when the CA may go. */
int store_cert_live_summary_for_ca(mesh_store *st, int64_t ca_id, int64_t now,
                                   int64_t *count_out, int64_t *last_not_after_out,
                                   mesh_err *err);
void store_cert_free(store_cert *c);
void store_cert_free_list(store_cert *list, size_t n);

/* ---- revocation (store_revoke.c) ------------------------------------------- */
/* Certificates of any identity with this public key and not_after >= now,
 * newest first: what a keyCompromise revocation must revoke. */
int store_cert_list_by_pubkey(mesh_store *st, const char *pubkey_sha256, int64_t now,
                              store_cert **out, size_t *n_out, mesh_err *err);
/* Revoked certificates signed by ca_id with not_after >= min_not_after,
 * ordered by serial: the entries of that CA's CRL. cert_pem is left empty. */
int store_cert_list_revoked_for_ca(mesh_store *st, int64_t ca_id, int64_t min_not_after,
                                   store_cert **out, size_t *n_out, mesh_err *err);
/* Sets the reason of a revoked certificate (a later keyCompromise report on a
 * cert revoked for another reason); MESH_ENOTFOUND unless it is revoked. */
int store_cert_set_revoke_reason(mesh_store *st, const char *serial_hex, const char *reason,
                                 mesh_err *err);

/* A public key reported compromised: no certificate is issued for it again. */
typedef struct store_compromised_key {
    char *pubkey_sha256;
    char *serial_hex;     /* the revoked certificate that reported it */
    char *spiffe_id;
    int64_t reported_at;
} store_compromised_key;

/* MESH_EEXISTS when the key is already recorded. */
int store_key_compromised_add(mesh_store *st, const char *pubkey_sha256, const char *serial_hex,
                              const char *spiffe_id, int64_t now, mesh_err *err);
/* MESH_ENOTFOUND when the key was never reported (out is zeroed). */
int store_key_compromised_get(mesh_store *st, const char *pubkey_sha256,
                              store_compromised_key *out, mesh_err *err);
void store_compromised_key_free(store_compromised_key *k);

/* The signed CRL of one CA (ca/ca_crl.c builds it). entries_sha256 is a
 * digest of the revoked entries it lists, so a refresh can tell whether the
 * revocations changed without parsing the CRL. */
typedef struct store_crl {
    int64_t ca_id;
    int64_t crl_number;
    int64_t this_update, next_update;
    int64_t n_entries;
    char *entries_sha256;
    char *crl_pem;
} store_crl;

int store_crl_get(mesh_store *st, int64_t ca_id, store_crl *out, mesh_err *err); /* ENOTFOUND */
/* Inserts or replaces the CRL of c->ca_id. */
int store_crl_put(mesh_store *st, const store_crl *c, mesh_err *err);
/* Every stored CRL, by ca_id. */
int store_crl_list(mesh_store *st, store_crl **out, size_t *n_out, mesh_err *err);
void store_crl_free(store_crl *c);
void store_crl_free_list(store_crl *list, size_t n);

/* ---- mesh config resources ----------------------------------------------- */
/* kind: "service", "workload", "route", "authorization". body: the canonical
 * YAML of one resource as written by config/. Each change bumps the global
 * config version (settings key "config_version") and stamps the resource with
 * it; writing an identical body is a no-op (*changed_out = 0). */
typedef struct store_resource {
    char *kind;
    char *name;
    char *body;
    char *source;     /* "mesh.yaml:12" where it was last applied from */
    int64_t version;  /* config version at which it last changed */
    int64_t updated_at;
    char *apply_set;  /* the apply set that last applied it ("" = none): what a
                       * `meshctl apply --prune` of that set may remove */
} store_resource;

/* Keeps the row's apply set (a new row gets none). */
int store_resource_put(mesh_store *st, const char *kind, const char *name, const char *body,
                       const char *source, int *changed_out, mesh_err *err);
/* The same, recording apply_set (NULL = keep) as the row's owner. An identical
 * body whose source or apply set differ has those two updated without a new
 * config version (*changed_out 0): provenance is not config. */
int store_resource_put_from(mesh_store *st, const char *kind, const char *name,
                            const char *body, const char *source, const char *apply_set,
                            int *changed_out, mesh_err *err);
int store_resource_delete(mesh_store *st, const char *kind, const char *name,
                          mesh_err *err);    /* MESH_ENOTFOUND */
/* kind NULL = all kinds; ordered by kind, name. */
int store_resource_list(mesh_store *st, const char *kind, store_resource **out, size_t *n_out,
                        mesh_err *err);
int64_t store_config_version(mesh_store *st);
void store_resource_free(store_resource *r);
void store_resource_free_list(store_resource *list, size_t n);

/* ---- proxy status (written by meshd, read by meshctl proxy-status) -------- */
typedef struct store_proxy_type_status {
    char *type_url;
    char *sent_version;
    char *acked_version;
    char *nack_version;   /* "" if none */
    char *nack_error;     /* "" if none */
    int64_t updated_at;
} store_proxy_type_status;

typedef struct store_proxy {
    char *node_id;        /* the instance: Node.id as the stream named it (escaped) */
    char *spiffe_id;      /* the verified identity; with node_id, the row's key */
    char *peer;           /* remote address */
    int connected;
    int64_t connected_at, last_seen;
    int64_t svid_not_after;
    char *meshd_instance; /* which meshd process holds the stream */
    char *problem;        /* why the sidecar is stranded ("" if not), e.g. its SVID was revoked */
    int stale;            /* its row says connected, but the replica holding the stream has
                           * stopped or not heartbeaten for STORE_REPLICA_STALE_S: read as
                           * not connected (connected = 0), last_seen = its last heartbeat */
    store_proxy_type_status *types;
    size_t n_types;
} store_proxy;

/* A proxy row is keyed by (spiffe_id, node_id): the verified identity and
 * the instance it names itself (Node.id). Both are required. */
int store_proxy_upsert(mesh_store *st, const char *node_id, const char *spiffe_id,
                       const char *peer, int connected, int64_t svid_not_after,
                       const char *meshd_instance, int64_t now, mesh_err *err);
int store_proxy_type_update(mesh_store *st, const char *node_id, const char *spiffe_id,
                            const char *type_url, const char *sent_version,
                            const char *acked_version, const char *nack_version,
                            const char *nack_error, int64_t now,
                            mesh_err *err);   /* NULL fields keep their stored value */
/* The SPIFFE ID (and peer) of a connected row with node_id under another
 * identity than spiffe_id, the longest connected first; "" when none. */
int store_proxy_other_holder(mesh_store *st, const char *node_id, const char *spiffe_id,
                             char *holder, size_t holder_len, char *peer, size_t peer_len,
                             mesh_err *err);
/* Records why the sidecar of (spiffe_id, node_id) cannot go on (its SVID was
 * revoked, ...); "" clears. Creates a disconnected row for an unknown one. A
 * connected upsert clears it: the sidecar is back with a valid SVID. */
int store_proxy_set_problem(mesh_store *st, const char *node_id, const char *spiffe_id,
                            const char *problem, int64_t now, mesh_err *err);
/* The workload instance a row stands for, from its key: "" for a sidecar
 * enrolled for the identity as a whole (its node is the SPIFFE ID), the part
 * after '#' of "<SPIFFE ID>#<instance>", else the node itself. NULL for a
 * row that proves no identity (the plaintext port's "unverified:<claim>").
 * Points into node_id. */
const char *store_proxy_instance_of(const char *spiffe_id, const char *node_id);
/* Marks every proxy held by meshd_instance disconnected (meshd start/stop). */
int store_proxy_disconnect_all(mesh_store *st, const char *meshd_instance, mesh_err *err);
int store_proxy_list(mesh_store *st, store_proxy **out, size_t *n_out, mesh_err *err);
/* The rows alone (n_types 0): who is connected, to which meshd, last seen
 * when; what meshd's endpoint health reads every second. */
int store_proxy_list_rows(mesh_store *st, store_proxy **out, size_t *n_out, mesh_err *err);
void store_proxy_free_list(store_proxy *list, size_t n);

/* ---- meshd replicas (store_replica.c; written by meshd, read by meshctl) ---
 * Every meshd registers itself under its instance name (--instance; the
 * name proxy rows record in meshd_instance) and heartbeats every
 * STORE_REPLICA_HEARTBEAT_S. A proxy row held by a replica whose heartbeat is
 * older than STORE_REPLICA_STALE_S, or that stopped, reads as not connected
 * (store_proxy.stale): a replica that crashed or lost the store does not
 * leave its sidecars "connected" forever. Rows of an instance with no
 * replicas row (a meshd before schema 7) are taken as they are. */
#define STORE_REPLICA_HEARTBEAT_S 2
#define STORE_REPLICA_STALE_S 10

typedef struct store_replica {
    char *id;             /* the instance name */
    char *address;        /* its xDS listen address */
    int64_t pid;
    int64_t started, heartbeat;
    int64_t stopped;      /* Unix s of a clean stop, 0 while it runs */
} store_replica;

/* Registers (or, after a restart, re-registers) replica id. With
 * starting, in the same transaction, marks every proxy row it held
 * disconnected: a process that starts holds no stream yet, whatever its
 * previous run left behind (without: a running replica whose row vanished). */
int store_replica_register(mesh_store *st, const char *id, const char *address, int64_t pid,
                           int starting, int64_t now, mesh_err *err);
/* MESH_ENOTFOUND when the row is gone (deleted by an operator): register again. */
int store_replica_heartbeat(mesh_store *st, const char *id, int64_t now, mesh_err *err);
int store_replica_stop(mesh_store *st, const char *id, int64_t now, mesh_err *err);
/* Ordered by id. */
int store_replica_list(mesh_store *st, store_replica **out, size_t *n_out, mesh_err *err);
void store_replica_free_list(store_replica *list, size_t n);
/* "up", "stale" (no heartbeat for STORE_REPLICA_STALE_S) or "stopped". */
const char *store_replica_state(const store_replica *r, int64_t now);

/* ---- trust bundle each proxy ACKed (written by meshd, read by `ca rotate`) */
typedef struct store_proxy_trust {
    char *node_id;
    char *spiffe_id;      /* with node_id, the key (as proxy rows are keyed) */
    char *roots;          /* sorted, comma-separated SHA-256 hex of the roots it ACKed */
    char *meshd_instance; /* the meshd that saw the ACK */
    int64_t acked_at;
} store_proxy_trust;

/* Records that (spiffe_id, node_id) ACKed a bundle holding exactly `roots`. */
int store_proxy_trust_set(mesh_store *st, const char *node_id, const char *spiffe_id,
                          const char *roots, const char *meshd_instance, int64_t now,
                          mesh_err *err);
/* Ordered by (spiffe_id, node_id), byte-wise (strcmp order). */
int store_proxy_trust_list(mesh_store *st, store_proxy_trust **out, size_t *n_out,
                           mesh_err *err);
void store_proxy_trust_free_list(store_proxy_trust *list, size_t n);

/* ---- audit log ------------------------------------------------------------ */
/* The actor of a row whose requester proved no identity (no, an unverifiable
 * or an expired certificate; a bad token). What it claimed is in the detail,
 * marked "(unverified)". docs/security.md, "Audit and logs". */
#define STORE_AUDIT_UNAUTHENTICATED "unauthenticated"

typedef struct store_audit_entry {
    int64_t id, at;
    char *actor;    /* verified SPIFFE ID, "token:<spiffe-id>" (a redeemed join token),
                     * "meshctl", "meshd", "ca" or STORE_AUDIT_UNAUTHENTICATED */
    char *action;   /* "cert.issue", "cert.revoke", "sds.denied", ... */
    char *subject;
    char *detail;
    int ok;
} store_audit_entry;

/* Every field is stored escaped (common/escape.h). */
int store_audit(mesh_store *st, const char *actor, const char *action, const char *subject,
                const char *detail, int ok, mesh_err *err);
/* Newest first, at most limit entries (0 = 100). */
int store_audit_list(mesh_store *st, size_t limit, store_audit_entry **out, size_t *n_out,
                     mesh_err *err);
void store_audit_free_list(store_audit_entry *list, size_t n);

#endif
