/* sidecar/xds_trust.h — meshd's certificate chain, looked at by the sidecar itself.
 *
 * gRPC verifies meshd on every connection and, when that fails, reports only
 * "certificate verify failed". These helpers fetch the chain meshd serves
 * (one TLS handshake that trusts nothing: its result is only compared with
 * trust the sidecar already has, or with a pin) and say in operator terms
 * why it does not verify against the bundle: most often because the CA was
 * rotated while the sidecar was away. A join token may pin meshd's root
 * (ca/join_token.h); xdsc_trust_pinned_root finds that root in the served
 * chain, so a sidecar with no current bundle can trust meshd again. */
#ifndef MESH_SIDECAR_XDS_TRUST_H
#define MESH_SIDECAR_XDS_TRUST_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define XDSC_PROBE_TIMEOUT_MS 2000

/* Connects to target ("host:port", "[v6]:port", optionally "dns:///..."),
 * handshakes TLS with SNI server_name and ALPN h2 without verifying, and
 * returns the chain meshd presented (leaf first). MESH_EIO when meshd cannot
 * be reached within timeout_ms, MESH_ECRYPTO when no chain came back. */
int xdsc_trust_fetch_chain(const char *target, const char *server_name, int timeout_ms,
                           STACK_OF(X509) **chain_out, mesh_err *err);

/* MESH_OK if chain verifies against roots_pem for server_name at time now
 * (as gRPC would check it). Otherwise MESH_EPERM and a message that names
 * the cause and what to do: not signed by any root of the bundle (listing
 * both sides' fingerprints; the likely cause is a CA rotation while away:
 * a current --ca-bundle or a new join token for spiffe_id), expired or not
 * yet valid (the clock), or issued for another name (--server-name). */
int xdsc_trust_explain(STACK_OF(X509) *chain, const char *roots_pem, const char *server_name,
                       const char *spiffe_id, int64_t now, mesh_err *err);

/* Looks for a CA certificate in chain whose SHA-256 fingerprint is one of
 * pins (lowercase hex) and verifies the chain against that root alone for
 * server_name at now. On success *root_pem_out is the root (malloc'd PEM).
 * MESH_ENOTFOUND when no pinned root is in the chain, MESH_EPERM when the
 * chain does not verify against it. */
int xdsc_trust_pinned_root(STACK_OF(X509) *chain, const char (*pins)[65], size_t n_pins,
                           const char *server_name, int64_t now, char **root_pem_out,
                           mesh_err *err);

/* "1a2b3c4d5e6f7a8b, 9f8e7d6c5b4a3928" — short fingerprints of the roots in
 * a PEM bundle, for messages. */
void xdsc_trust_describe_roots(const char *roots_pem, char *buf, size_t len);

#endif
