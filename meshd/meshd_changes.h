/* meshd/meshd_changes.h — the watcher's decisions: what changed in the store, and what
 * each connected stream must get because of it (meshd_changes.c).
 *
 * meshd/meshd_watch.c runs the loop and applies what these decide; they are
 * apart so the decisions can be tested without a running watcher: every one
 * is either pure or reads the store and nothing else. */
#ifndef MESH_MESHD_MESHD_CHANGES_H
#define MESH_MESHD_MESHD_CHANGES_H

#include <stddef.h>
#include <stdint.h>

#include "meshd/meshd_internal.h"

/* A stream as the watcher sees it: copied under the call's mutex, decided on
 * without it. */
typedef struct md_stream_facts {
    int ready;                    /* first view installed, call not over */
    uint64_t cfg_gen, bundle_gen; /* generations of what it was last given */
    int have_svid;
    char serial[48];              /* of the SVID it holds */
    char presented[48];           /* of the certificate it connected with */
    char instance[128];           /* its enrolled instance ("" = identity-wide) */
    int64_t nb, na, ca_id;        /* of the SVID it holds */
    int refused;                  /* its certificate is revoked; waiting for the node's name */
    int64_t connected_at;
} md_stream_facts;

/* Takes c->mu. A finished or closed call (or one without a stream) reads as
 * all zero: not ready. */
void md_stream_facts_of(md_call *c, md_stream_facts *f);

/* What the shared state holds now. */
typedef struct md_current {
    uint64_t cfg_gen;             /* 0 = no config loaded yet */
    uint64_t bundle_gen;
    int have_bundle;
    int have_cas;
} md_current;

/* What one stream needs on this pass. */
typedef struct md_refresh_plan {
    int defer;                    /* not ready: its identity stays dirty for next pass */
    int snap;                     /* the snapshot of the current config generation */
    int bundle;                   /* the current trust bundle */
    int svid_lookup;              /* look its current SVID up in the store */
} md_refresh_plan;

/* cert_dirty: a cert of the stream's identity was issued or revoked (or the
 * pass looks at every stream). Plaintext (proxyless) streams never get a
 * bundle or an SVID. A stream that is not ready gets nothing. */
md_refresh_plan md_refresh_plan_for(const md_stream_facts *f, int plaintext, int cert_dirty,
                                    const md_current *now);

/* A stream refused for a revoked certificate is ended once its first request
 * names the node (so proxy status can say why under that name); one that
 * never sends a request is ended this long after it connected. */
#define MD_REFUSAL_WAIT_S 5
int md_refusal_overdue(const md_stream_facts *f, int64_t now);

/* The CRLs in ROOTCA are refreshed on every store change (a revocation,
 * another replica's new CRL, a new CA) and at least this often, so one
 * nearing its nextUpdate is re-signed even when nothing changes. */
#define MD_CRL_CHECK_MS 60000
int md_crl_sync_due(int store_changed, int64_t now_ms, int64_t last_sync_ms);

/* 1 when the SVID found in the store is not the one the stream holds. */
int md_svid_changed(const md_stream_facts *f, const sds_svid *found);

enum md_rotation { MD_ROTATE_NO = 0, MD_ROTATE_DUE, MD_ROTATE_OLD_CA };

/* Whether the stream's SVID is renewed now: at its rotation time
 * (svid_rotation_due), or at once when it is from a CA that is no longer the
 * active one (active_ca_id 0 = unknown). Never for a stream that is not ready,
 * holds no SVID, has no peer certificate (whose key would be re-certified) or
 * whose SVID has expired (the sidecar must recover). */
enum md_rotation md_rotation_decide(const md_stream_facts *f, int have_peer_cert, int64_t now,
                                    double fraction, int64_t active_ca_id);

/* Lifetime of the renewal of an SVID valid [nb, na]: the same as the one it
 * replaces (nb was backdated), within the CA's limits. */
int64_t md_rotation_ttl(int64_t nb, int64_t na);

/* A string that changes whenever a CA is added or removed, changes state, or
 * is replaced; malloc'd, NULL when out of memory. */
char *md_ca_fingerprint(const store_ca *list, size_t n);

/* Reads the audit rows newer than *last_id (the change feed: cert.issue and
 * cert.recover name the identity, cert.revoke the serial, whose owner is looked
 * up), marks the identities with new or revoked certs in dirty, and advances
 * *last_id. Returns 1 when it cannot tell everything that changed (rows were
 * missed, a revoked serial is unknown, the log cannot be read): then every
 * stream must be looked at. */
int md_audit_feed_read(mesh_store *st, int64_t *last_id, md_map *dirty);
/* The feed reads this many rows first, and up to the limit when they do not
 * reach back to *last_id. */
#define MD_AUDIT_FEED_PAGE 32
#define MD_AUDIT_FEED_LIMIT 2000

/* The prune pass: a retired CA leaves the trust bundle once no leaf it signed
 * is unexpired (ca_prune). The watcher looks when the CA list changes, and
 * otherwise at next_check_at: one second after the last leaf of a retired CA
 * expires, and at least every MD_PRUNE_CHECK_S (leaves are issued and
 * revoked meanwhile). */
#define MD_PRUNE_CHECK_S 60
typedef struct md_prune_plan {
    int prune;                    /* some retired CA has no unexpired leaf: prune now */
    int64_t next_check_at;        /* Unix s */
} md_prune_plan;
/* r: ca_retired_list at now. */
md_prune_plan md_prune_plan_for(const ca_retired *r, size_t n, int64_t now);

/* The distinct snapshot keys (md_call_view_key) of calls, borrowed from them;
 * free the array. NULL when out of memory. */
char **md_distinct_view_keys(md_call **calls, size_t n, size_t *n_out);

#endif
