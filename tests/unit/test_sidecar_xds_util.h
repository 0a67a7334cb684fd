/* tests/unit/test_sidecar_xds_util.h — shared fixtures for the sidecar xDS client tests:
 * a hand-built mesh config compiled by meshd's own compiler (sds/compiler/xds_compile.h), and
 * helpers that wrap compiled resources into DiscoveryResponses. */
#ifndef MESH_TEST_SIDECAR_XDS_UTIL_H
#define MESH_TEST_SIDECAR_XDS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "config/mesh_config.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "sds/compiler/xds_snapshot.h"
#include "sidecar/xds_sotw.h"

#define TX_WEB_ID "spiffe://example.org/ns/default/sa/web"
#define TX_API_ID "spiffe://example.org/ns/default/sa/api"
#define TX_DB_ID  "spiffe://example.org/ns/default/sa/db"

/* web (http) calls api (http, weighted route api-v1/api-v2) and db (tcp);
 * api allows web; db allows web and api. with_outbound=0 drops web's HTTP
 * egress listener (so RDS is no longer referenced). api_v1_weight changes
 * the route's split. */
void tx_mesh(mesh_config *cfg, int with_outbound, uint32_t api_v1_weight);
void tx_mesh_free(mesh_config *cfg);

/* Compiles tx_mesh for id into out (criterion-asserts success). */
void tx_compile(const char *id, int with_outbound, uint32_t api_v1_weight, xds_snapshot *out);

/* The compiled type set matching an xDS client type. */
const xds_type_set *tx_set(const xds_snapshot *s, enum xdsc_type t);

/* A DiscoveryResponse of type t from raw serialized resources; free with
 * tx_response_free. */
Envoy__Service__Discovery__V3__DiscoveryResponse *tx_response(enum xdsc_type t, const char *version,
                                                              const char *nonce,
                                                              const uint8_t *const *data,
                                                              const size_t *len, size_t n);
/* All resources of type t of a compiled snapshot as one response. */
Envoy__Service__Discovery__V3__DiscoveryResponse *tx_response_from(const xds_snapshot *s,
                                                                   enum xdsc_type t,
                                                                   const char *version,
                                                                   const char *nonce);
void tx_response_free(Envoy__Service__Discovery__V3__DiscoveryResponse *r);

/* Packs any protobuf-c message into a malloc'd buffer. */
uint8_t *tx_pack(const ProtobufCMessage *m, size_t *len);

/* A throwaway CA (EC P-256, self-signed) that signs CSRs into SVIDs the way
 * meshd does (CA:FALSE, the CSR's URI SAN, serverAuth+clientAuth). */
typedef struct tx_ca {
    void *key;      /* EVP_PKEY */
    void *cert;     /* X509 */
    char *pem;      /* the root, PEM */
} tx_ca;
void tx_ca_new(tx_ca *ca, const char *cn);
/* Signs csr_pem; validity [not_before, not_after] in Unix seconds. */
char *tx_ca_sign(tx_ca *ca, const char *csr_pem, int64_t not_before, int64_t not_after);
void tx_ca_free(tx_ca *ca);
/* A server certificate (DNS SAN dns_name, plus a SPIFFE URI) and its key, PEM. */
void tx_ca_issue_server(tx_ca *ca, const char *dns_name, char **key_pem, char **cert_pem);

/* A fresh 0700 temp dir under /tmp (criterion-asserts). */
void tx_tmpdir(char *buf, size_t len);
void tx_rmdir(const char *dir);

#endif
