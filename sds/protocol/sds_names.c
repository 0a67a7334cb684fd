/* sds/protocol/sds_names.c — SDS resource-name authorisation (see sds_names.h). */
#include "sds/protocol/sds_names.h"

#include <stdio.h>
#include <string.h>

enum sds_name_kind sds_name_classify(const char *name, const char *peer_id, const char *td,
                                     mesh_err *err)
{
    if (!name || !name[0]) {
        mesh_err_set(err, MESH_EPERM, "empty secret name; ask for \"default\" or \"ROOTCA\"");
        return SDS_NAME_DENIED;
    }
    if (strcmp(name, SDS_NAME_DEFAULT) == 0)
        return SDS_NAME_IS_DEFAULT;
    if (strcmp(name, SDS_NAME_ROOTCA) == 0)
        return SDS_NAME_IS_BUNDLE;
    if (peer_id && peer_id[0] && strcmp(name, peer_id) == 0)
        return SDS_NAME_IS_DEFAULT;
    if (td && td[0] && strncmp(name, "spiffe://", 9) == 0 && strcmp(name + 9, td) == 0)
        return SDS_NAME_IS_BUNDLE;
    if (strncmp(name, "spiffe://", 9) == 0)
        mesh_err_set(err, MESH_EPERM,
                     "secret \"%s\" belongs to another identity; caller is %s and may read only "
                     "its own SVID (\"default\" or its SPIFFE ID) and the bundle",
                     name, peer_id ? peer_id : "(unauthenticated)");
    else
        mesh_err_set(err, MESH_EPERM,
                     "unknown secret name \"%s\" requested by %s; meshd serves \"default\", "
                     "\"ROOTCA\", the caller's own SPIFFE ID and spiffe://%s",
                     name, peer_id ? peer_id : "(unauthenticated)", td ? td : "");
    return SDS_NAME_DENIED;
}
