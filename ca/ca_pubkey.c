/* ca/ca_pubkey.c — issuing an SVID for an already-certified public key (see
 * ca_pubkey.h): meshd's same-key rotation of a connected sidecar's SVID.
 *
 * Only the input checks live here. The certificate itself is built, signed,
 * stored and audited by ca_sign_leaf (ca_issue.c), the same code path as
 * ca_issue_svid, so the leaf profile and the store/audit guarantees cannot
 * drift apart; the key passes the same policy as a CSR key. */
#include "ca/ca_pubkey.h"

#include <string.h>

#include "ca/ca_internal.h"
#include "ca/spiffe_id.h"

int ca_issue_for_pubkey(mesh_ca *ca, mesh_store *st, EVP_PKEY *pubkey, const char *id_str,
                        const char *instance, int64_t ttl_seconds, const char *actor,
                        ca_issued *out, mesh_err *err)
{
    if (!ca || !st || !pubkey || !id_str || !out)
        return mesh_err_set(err, MESH_EINVAL, "ca_issue_for_pubkey: missing argument");
    memset(out, 0, sizeof *out);
    actor = actor && actor[0] ? actor : "meshd";
    int rc = ca_check_ttl(&ttl_seconds, err);
    if (rc != MESH_OK)
        return rc;
    spiffe_id_parts parsed;
    if ((rc = spiffe_id_parse(id_str, &parsed, err)) != MESH_OK)
        return rc;
    if (strcmp(parsed.trust_domain, ca->trust_domain) != 0) {
        char q[160];
        return mesh_err_set(err, MESH_EINVAL, "'%s' is not in this CA's trust domain '%s'",
                            ca_quote(id_str, q, sizeof q), ca->trust_domain);
    }
    if ((rc = ca_check_leaf_key(pubkey, "public key", err)) != MESH_OK)
        return rc;
    return ca_sign_leaf(ca, st, pubkey, id_str, instance, NULL, ttl_seconds, actor,
                        "rotation=same-key", out, err);
}
