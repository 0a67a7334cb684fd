/* sds/protocol/sds_names.h — which SDS secret names a caller may ask for.
 *
 * A sidecar may only read its own certificate and the trust bundle. The names
 * follow Istio and SPIRE:
 *   "default"            the caller's own current SVID chain (Istio)
 *   "ROOTCA"             the trust bundle (Istio)
 *   the caller's SPIFFE ID  same as "default" (SPIRE)
 *   "spiffe://<td>"      the trust bundle of our trust domain (SPIRE)
 * Anything else (notably another workload's SPIFFE ID) is refused. Pure logic:
 * no store, no I/O, so it is unit-tested on its own. */
#ifndef MESH_SDS_PROTOCOL_SDS_NAMES_H
#define MESH_SDS_PROTOCOL_SDS_NAMES_H

#include "common/error.h"

#define SDS_NAME_DEFAULT "default"
#define SDS_NAME_ROOTCA  "ROOTCA"

enum sds_name_kind {
    SDS_NAME_DENIED = 0,
    SDS_NAME_IS_DEFAULT,  /* "default" or the caller's own SPIFFE ID */
    SDS_NAME_IS_BUNDLE,   /* "ROOTCA" or "spiffe://<td>" */
};

/* Classifies one requested name for a caller authenticated as peer_id in
 * trust domain td. On SDS_NAME_DENIED, err (if non-NULL) says why, naming the
 * identity the caller asked for and the one it proved. */
enum sds_name_kind sds_name_classify(const char *name, const char *peer_id, const char *td,
                                     mesh_err *err);

#endif
