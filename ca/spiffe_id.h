/* ca/spiffe_id.h — parsing and building SPIFFE IDs.
 *
 * Follows the SPIFFE-ID spec: scheme "spiffe", trust domain of lowercase
 * letters, digits, '.', '-', '_'; path segments of letters, digits, '.', '-',
 * '_' with no empty, "." or ".." segment; no query, fragment, port or
 * userinfo; at most 2048 bytes. Workload identities in meshd have the Istio
 * shape spiffe://<td>/ns/<namespace>/sa/<service-account>. */
#ifndef MESH_CA_SPIFFE_ID_H
#define MESH_CA_SPIFFE_ID_H

#include <stddef.h>

#include "common/error.h"

#define SPIFFE_ID_MAX 2048

typedef struct spiffe_id_parts {
    char trust_domain[256];
    char path[SPIFFE_ID_MAX];   /* "/ns/default/sa/web", "" for a trust-domain ID */
    char ns[256];               /* set when the path has the ns/sa shape, else "" */
    char sa[256];
} spiffe_id_parts;

int spiffe_id_parse(const char *uri, spiffe_id_parts *out, mesh_err *err);
/* Like parse, but also requires the /ns/<ns>/sa/<sa> shape. */
int spiffe_id_parse_workload(const char *uri, spiffe_id_parts *out, mesh_err *err);
int spiffe_id_valid_trust_domain(const char *td, mesh_err *err);
/* Writes spiffe://td/ns/ns/sa/sa into buf; MESH_EINVAL if a part is invalid. */
int spiffe_id_format_workload(char *buf, size_t len, const char *td, const char *ns,
                              const char *sa, mesh_err *err);

#endif
