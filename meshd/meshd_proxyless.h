/* meshd/meshd_proxyless.h — meshd's plaintext xDS port for proxyless gRPC clients.
 *
 * Off by default. `--xds-plaintext-listen HOST:PORT` adds a second, insecure port
 * to meshd's gRPC server for clients that cannot do mTLS to the control plane
 * (@grpc/grpc-js-xds 1.14 knows only "insecure" and "google_default" bootstrap
 * channel_creds; gRFC A65 "tls" is not implemented there). On that port:
 *   - only StreamAggregatedResources (SotW) is served, and on it only LDS, RDS,
 *     CDS and EDS: an SDS request closes the stream, CreateCertificate,
 *     StreamSecrets, FetchSecrets and Delta xDS are refused before reading a
 *     byte of their request — no certificate, key, bundle or join token is
 *     ever handled in plaintext;
 *   - the client's identity is its claim: Node.id must be the SPIFFE ID of an
 *     identity registered with `meshctl workload add` (checked when the stream
 *     opens), in meshd's trust domain, optionally followed by "#<instance>" so
 *     that replicas of one identity show as separate nodes in proxy-status;
 *   - what it gets is the proxyless view (sds/compiler/xds_compile_proxyless.h): API
 *     listeners, per-host routes, plaintext clusters, app endpoints of the
 *     services that identity may call.
 * Because the claim is not proven, the port binds a loopback address or a
 * UNIX socket (unix:PATH), unless --xds-plaintext-allow-remote says the
 * network is trusted.
 * docs/xds-clients.md has the trade-off. */
#ifndef MESH_MESHD_MESHD_PROXYLESS_H
#define MESH_MESHD_MESHD_PROXYLESS_H

#include "sds/protocol/ads_codec.h"
#include "meshd/meshd_internal.h"

/* Node.id = "<SPIFFE ID>" or "<SPIFFE ID>#<instance>" (replicas of one identity). */
#define MD_PROXYLESS_INSTANCE_MAX 128

/* Cache keys of proxyless snapshots: this prefix + the SPIFFE ID. A SPIFFE ID
 * starts with "spiffe://", so the two key spaces cannot meet. */
#define MD_PROXYLESS_KEY_PREFIX "proxyless|"

/* Flag checks (meshd_flags.c): the plaintext address is host:port or unix:PATH,
 * differs from --listen, and is loopback (or a UNIX socket) unless allow_remote. */
int md_proxyless_check_opts(const md_opts *o, mesh_err *err);
/* 1 if host (no port, IPv6 without brackets or with) is a loopback address or
 * "localhost". */
int md_proxyless_is_loopback(const char *host);

/* md_server_bind: adds the plaintext port when configured. */
int md_proxyless_bind(md_ctx *ctx, mesh_err *err);

/* on_new_call, for stream and unary kinds: 0 if the call came over TLS (the
 * caller goes on as before); 1 if it came over the plaintext port, in which
 * case it was opened as a proxyless ADS stream or refused. */
int md_proxyless_call(md_call *c);

/* md_stream_on_message, c->mu held, for plaintext calls only: settles the
 * identity on the first request and refuses SDS. MESH_OK to go on with the
 * request; anything else means the call was finished. */
int md_proxyless_on_request_locked(md_call *c, const ads_decoded *d);

/* The worker's job for a plaintext stream's first view (MD_JOB_STREAM_INIT). */
void md_job_proxyless_init(md_worker *w, md_job *j);

/* The snapshot cache key of a call's stream: its SPIFFE ID, or the proxyless
 * key for plaintext streams. Stable once the call is in the stream registry. */
const char *md_call_view_key(const md_call *c);
/* The SPIFFE ID inside a proxyless cache key, or NULL if key is not one. */
const char *md_proxyless_key_id(const char *key);

#endif
