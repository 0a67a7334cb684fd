/* ca/ca.h — the SPIFFE certificate authority.
 *
 * Creates or imports CA material (ca_init), validates CSRs against the
 * identity the caller was authenticated as, signs X.509-SVIDs per the SPIFFE
 * rules (exactly one URI SAN, CA:FALSE, keyUsage critical digitalSignature
 * [+keyEncipherment for RSA], EKU serverAuth+clientAuth, random 128-bit
 * serial, notBefore backdated 10 s), records each issued cert in the store
 * before returning it, and exports the trust bundle. Also the CA-rotation
 * steps (prepare, activate, prune). All crypto is OpenSSL 3 (EVP API).
 *
 * The CA private key lives in a 0600 file under the key directory; the store
 * keeps only its path. Keys never reach logs or error messages. */
#ifndef MESH_CA_CA_H
#define MESH_CA_CA_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "store/store.h"

#define CA_DEFAULT_SVID_TTL   (24 * 3600)        /* Istio's default */
#define CA_MAX_SVID_TTL       (90 * 24 * 3600)   /* longer requests are rejected, not shortened */
#define CA_MIN_SVID_TTL       10
#define CA_DEFAULT_ROOT_TTL   (10LL * 365 * 24 * 3600)
#define CA_BACKDATE_SECONDS   10

typedef struct ca_init_opts {
    const char *trust_domain;      /* required, e.g. "example.org" */
    const char *key_dir;           /* directory for CA key files (created 0700) */
    const char *key_type;          /* "ec-p256" (default) or "rsa-3072" */
    int64_t ttl_seconds;           /* CA validity; 0 = CA_DEFAULT_ROOT_TTL */
    /* Plug-in CA: operator-supplied signing cert + key (an intermediate or a
     * root); chain_path holds the certs above it up to the root. When set,
     * key_type and ttl_seconds are ignored. */
    const char *import_cert_path;
    const char *import_key_path;
    const char *import_chain_path;
} ca_init_opts;

/* First CA for a store: fails with MESH_EEXISTS if one exists. The new CA is
 * "active". Records the trust domain setting. */
int ca_init(mesh_store *st, const ca_init_opts *opts, int64_t *ca_id_out, mesh_err *err);

/* A new CA's key directory must not already hold CA keys ("ca-*.key") that
 * no CA of st (NULL: of any store) records: they witness a CA whose store
 * went missing, which a new CA would silently replace. MESH_EEXISTS naming
 * the key and what to do. ca_init checks this; meshctl checks it before it
 * creates a new store for `ca init`. */
int ca_keydir_check_unclaimed(const char *dir, mesh_store *st, mesh_err *err);

/* Rotation, step 1: add a new CA in state "prepared" (published in the bundle,
 * not yet signing). Same options as ca_init; trust domain must match. */
int ca_prepare(mesh_store *st, const ca_init_opts *opts, int64_t *ca_id_out, mesh_err *err);
/* Step 2: the prepared CA becomes active, the old active becomes retired. */
int ca_activate(mesh_store *st, int64_t ca_id, mesh_err *err);
/* Step 3: retired CAs with no unexpired leaf left go to "removed" (out of the bundle). */
int ca_prune(mesh_store *st, int64_t now, int *removed_out, mesh_err *err);

/* ---- safe activation and pruning (ca_rollout.c) ----------------------------
 * A prepared CA may start signing only once every sidecar that could meet a
 * leaf it signs trusts its root. meshd records, per proxy, the roots of the
 * bundle it last ACKed (store_proxy_trust); each proxy-status row is judged: */
enum ca_peer_state {
    CA_PEER_READY = 0,   /* ACKed a bundle that holds the new root (connected or not) */
    CA_PEER_LAGGING,     /* connected, has not ACKed such a bundle yet: blocks */
    CA_PEER_OFFLINE,     /* disconnected with an older bundle, but could come back by
                          * itself (its SVID is valid or within the recovery grace): blocks */
    CA_PEER_GONE,        /* disconnected and its SVID expired more than CA_ROLLOUT_GONE_AFTER
                          * ago: it cannot return without a new join token (which pins the
                          * current root) or a new --ca-bundle, so it does not block */
    CA_PEER_NO_TRUST,    /* never asked meshd for secrets (proxyless, plaintext): its trust
                          * is not meshd's to give; does not block */
    CA_PEER_STATE_COUNT
};

/* Equal to the self-recovery grace of expired SVIDs (CERT_RECOVER_GRACE). */
#define CA_ROLLOUT_GONE_AFTER (7LL * 24 * 3600)

typedef struct ca_rollout_peer {
    char *node_id, *spiffe_id, *meshd_instance;
    enum ca_peer_state state;
    int connected;
    int64_t last_seen, svid_not_after;
    int64_t trust_acked_at;       /* when it last ACKed a bundle; 0 = never seen */
    size_t trust_roots;           /* roots in that bundle */
} ca_rollout_peer;

typedef struct ca_rollout {
    int64_t ca_id;                /* the CA waiting to be activated */
    char root_sha256[65];         /* its root's fingerprint */
    ca_rollout_peer *peers;
    size_t n_peers;
    size_t count[CA_PEER_STATE_COUNT];
} ca_rollout;

const char *ca_peer_state_name(enum ca_peer_state s);
/* Judges every proxy against the root of CA ca_id at time now. */
int ca_rollout_check(mesh_store *st, int64_t ca_id, int64_t now, ca_rollout *out, mesh_err *err);
/* Peers that block activation (LAGGING + OFFLINE). */
size_t ca_rollout_blocking(const ca_rollout *r);
void ca_rollout_free(ca_rollout *r);
/* The prepared CA, if there is one: MESH_ENOTFOUND otherwise. */
int ca_prepared_id(mesh_store *st, int64_t *id_out, mesh_err *err);
/* Checks and activates in one write transaction, so no sidecar can ACK its
 * way out of (or into) the decision between the two. Without force, any
 * blocking peer refuses with MESH_EBUSY (nothing changes); with force the CA
 * is activated anyway and the audit records the blocking peers. *out holds
 * the judgement either way (free it with ca_rollout_free). */
int ca_activate_safely(mesh_store *st, int64_t ca_id, int64_t now, int force, ca_rollout *out,
                       mesh_err *err);

/* Retired CAs and what keeps each in the bundle. */
typedef struct ca_retired {
    int64_t ca_id;
    char serial_hex[48];
    int64_t live;                 /* unexpired leaves it signed */
    int64_t last_not_after;       /* when the last of them expires (0 = none live) */
} ca_retired;
int ca_retired_list(mesh_store *st, int64_t now, ca_retired **out, size_t *n_out, mesh_err *err);

/* The loaded, active signing CA. */
typedef struct mesh_ca mesh_ca;

int ca_load(mesh_store *st, mesh_ca **out, mesh_err *err);
void ca_free(mesh_ca *ca);
const char *ca_trust_domain(const mesh_ca *ca);
int64_t ca_id(const mesh_ca *ca);

typedef struct ca_issue_req {
    const char *csr_pem;
    const char *authorised_id;  /* SPIFFE ID the caller proved; the CSR must ask for exactly this */
    const char *instance;       /* the instance its enrolment names ("" or NULL: identity-wide);
                                 * recorded with the cert, never taken from the CSR */
    int64_t ttl_seconds;        /* 0 = CA_DEFAULT_SVID_TTL; outside [MIN, MAX] is MESH_EINVAL */
    const char *actor;          /* for the audit log: "meshctl", a SPIFFE ID, "token:<id>" */
    const char *const *dns_names; /* optional extra DNS SANs (meshd's serving cert); NULL-terminated */
} ca_issue_req;

typedef struct ca_issued {
    char *cert_pem;       /* the leaf */
    char **chain;         /* leaf first, then intermediates up to (not incl.) the root */
    size_t chain_len;
    char *chain_pem;      /* the same chain concatenated */
    char serial_hex[48];
    char spiffe_id[512];
    char instance[128];   /* as recorded ("" = identity-wide) */
    int64_t not_before, not_after;
} ca_issued;

/* Validates a CSR PEM: parses, verifies its self-signature, key is EC P-256/
 * P-384 or RSA >= 2048, exactly one URI SAN which is a valid SPIFFE ID in our
 * trust domain equal to authorised_id (if non-NULL), no basicConstraints CA:TRUE
 * request. Each failure gets its own message. */
int ca_csr_check(const char *csr_pem, const char *trust_domain, const char *authorised_id,
                 mesh_err *err);

/* Checks the CSR, signs it, stores the cert (durably), audits, returns it. */
int ca_issue_svid(mesh_ca *ca, mesh_store *st, const ca_issue_req *req, ca_issued *out,
                  mesh_err *err);
void ca_issued_free(ca_issued *c);

/* Generates a key in-process and issues a cert for it (meshd's own serving
 * SVID). *key_pem_out is the PKCS#8 PEM private key. */
int ca_issue_with_new_key(mesh_ca *ca, mesh_store *st, const char *spiffe_id,
                          const char *const *dns_names, int64_t ttl_seconds,
                          char **key_pem_out, ca_issued *out, mesh_err *err);

/* Trust anchors by name (ca_trust.c). A fingerprint is the SHA-256 of a
 * certificate's DER as 64 lowercase hex characters (`openssl x509
 * -fingerprint -sha256` without colons). */
/* The root above a stored CA (itself when self-signed): its PEM and/or its
 * fingerprint (either output may be NULL). */
int ca_root_info(const store_ca *c, char **pem_out, char sha256_out[65], mesh_err *err);
/* Every certificate of a PEM bundle as sorted, deduplicated, comma-separated
 * fingerprints ("a1..,f0.."): the name of the set of roots a bundle trusts. */
int ca_bundle_fingerprints(const char *pem, char **csv_out, mesh_err *err);
/* 1 if fp (64 hex) is one of the fingerprints in csv. */
int ca_fingerprints_contain(const char *csv, const char *fp);

/* Trust bundle: the root certificates of every CA in state prepared, active or
 * retired, deduplicated, PEM-concatenated. */
int ca_bundle_pem(mesh_store *st, char **pem_out, mesh_err *err);

#endif
