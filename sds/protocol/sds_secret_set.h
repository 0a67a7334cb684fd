/* sds/protocol/sds_secret_set.h — the SDS resources meshd serves to one caller.
 *
 * For a caller identified by its SPIFFE ID and the public key of the
 * certificate it presented, the secret set holds (sorted by name):
 *   "ROOTCA"          validation_context.trusted_ca = the trust bundle,
 *                     validation_context.crl = the CRL of each CA in it
 *   "default"         tls_certificate.certificate_chain = the caller's current SVID
 *                     (leaf + intermediates); private_key is left empty: the
 *                     key never leaves the sidecar, which pairs it locally
 *   <caller's SPIFFE ID>  same content as "default" under SPIRE's name
 *   "spiffe://<td>"   same content as "ROOTCA" under SPIRE's name
 * "Current SVID" is the newest unrevoked, unexpired cert in the store for
 * that identity whose public key is the presented one, so replicas sharing
 * an identity (each with its own key) each get their own certificate.
 *
 * The Secret messages themselves come from sds/compiler/xds_compile_secret.h. The bundle part
 * is built once per bundle change and shared (refcounted) between every
 * stream's set; only the per-caller part is per stream. */
#ifndef MESH_SDS_PROTOCOL_SDS_SECRET_SET_H
#define MESH_SDS_PROTOCOL_SDS_SECRET_SET_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "sds/compiler/xds_snapshot.h"
#include "store/store.h"

/* Shared, immutable once built: the bundle as the two bundle-named secrets. */
typedef struct sds_bundle sds_bundle;

/* crl_pem: the CRLs of the bundle's CAs (ca_crl_bundle_pem), NULL or "" = none. */
int sds_bundle_build(const char *bundle_pem, const char *crl_pem, const char *trust_domain,
                     sds_bundle **out, mesh_err *err);
sds_bundle *sds_bundle_ref(sds_bundle *b);
void sds_bundle_unref(sds_bundle *b);
const char *sds_bundle_pem(const sds_bundle *b);
const char *sds_bundle_crl_pem(const sds_bundle *b);
/* Content version of the bundle and its CRLs (16 hex chars). */
const char *sds_bundle_version(const sds_bundle *b);
/* The roots it holds: sorted, comma-separated SHA-256 fingerprints ("" when
 * the PEM names none), as store_proxy_trust records them once ACKed. */
const char *sds_bundle_roots(const sds_bundle *b);

/* The caller's current SVID as found in the store. */
typedef struct sds_svid {
    int found;
    char serial_hex[48];
    int64_t not_before, not_after;
    int64_t ca_id;
    char *chain_pem;          /* leaf + intermediates (malloc'd) */
} sds_svid;

/* Looks up the current SVID for (spiffe_id, pubkey_sha256). cas is the
 * store's CA list (for the intermediates). found = 0 when none qualifies.
 * When presented_serial is given, *presented_revoked tells whether that
 * cert (the one the caller connected with) has been revoked since. */
int sds_svid_lookup(mesh_store *st, const char *spiffe_id, const char *pubkey_sha256,
                    const store_ca *cas, size_t n_cas, int64_t now,
                    const char *presented_serial, int *presented_revoked, sds_svid *out,
                    mesh_err *err);
void sds_svid_free(sds_svid *s);

/* Leaf + the intermediates of the CA that signed it (no root). */
int sds_chain_for_cert(const char *leaf_pem, int64_t ca_id, const store_ca *cas, size_t n_cas,
                       char **chain_pem, mesh_err *err);

typedef struct sds_secret_set {
    xds_type_set set;         /* what the ADS state machine selects from */
    xds_resource items[4];
    sds_bundle *bundle;       /* reference held */
    uint8_t *svid_data[2];    /* owned encodings of "default" and the SPIFFE-ID name */
    char *own_name;
} sds_secret_set;

/* Builds the set; svid_chain_pem NULL leaves "default" and the SPIFFE-ID
 * name out (the caller has no current SVID in the store). set.items points
 * into *out, so a built set must not be copied or moved (keep it on the
 * heap and swap pointers). */
int sds_secret_set_build(const char *spiffe_id, const char *svid_chain_pem, sds_bundle *bundle,
                         sds_secret_set *out, mesh_err *err);
void sds_secret_set_free(sds_secret_set *s);

#endif
