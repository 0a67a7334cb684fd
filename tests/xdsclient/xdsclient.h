/* tests/xdsclient/xdsclient.h — pieces of mesh-xdsclient, the test and diagnostic xDS client.
 *
 * mesh-xdsclient gets an SVID from meshd (join token, renewal over mTLS or
 * expired-SVID recovery), then opens ADS / SDS streams over mTLS — State of
 * the World, or Incremental with --delta — and prints one JSON line per
 * response (or a summary), ACKing or NACKing as told. It is what the e2e
 * tests and the fan-out benchmark drive meshd with. */
#ifndef MESH_TESTS_XDSCLIENT_XDSCLIENT_H
#define MESH_TESTS_XDSCLIENT_XDSCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <openssl/evp.h>

#include "common/error.h"
#include "sds/protocol/ads_state.h"

enum xcl_mode { XCL_ADS = 0, XCL_SDS, XCL_FETCH, XCL_NONE };

typedef struct xcl_sub {
    enum ads_type type;
    char **names;
    size_t n;
} xcl_sub;

typedef struct xcl_opts {
    const char *server;
    const char *bundle_file;
    const char *bundle_db;
    const char *id;
    const char *csr_id;           /* SPIFFE ID put in the CSR (default: id) */
    const char *token;
    const char *cert_file, *key_file;
    int renew, recover;
    int anonymous;                /* no client certificate, no credentials */
    int64_t ttl;
    const char *state_dir;
    const char *key_type;
    enum xcl_mode mode;
    xcl_sub subs[ADS_T_COUNT];
    int n_subs;
    const char *node_id;
    int nack_type;                /* -1 = none */
    long nack_count;              /* -1 = every response of nack_type */
    int no_ack;
    const char *dump_dir;
    long exit_after;              /* 0 = no limit */
    int64_t timeout_ms;
    int streams;
    int connections;              /* --connections: streams share this many connections (0 =
                                   * one connection per stream) */
    int no_read;                  /* --no-read: never receive (a peer that does not read) */
    long resubscribe;             /* --resubscribe N: then N unsubscribe/subscribe pairs of
                                   * the first by-name type, without reading */
    const char *raw_file;
    long raw_size;
    const char *method;
    int expect_status;            /* -1 = none */
    int summary;
    int quiet;
    int delta;                    /* Incremental xDS (DeltaAggregatedResources / DeltaSecrets) */
    const char *delta_state;      /* --delta-state FILE: resource versions kept across runs */
    const char *sotw_state;       /* --sotw-state FILE: SotW version_info per type, ditto */
    int retry;                    /* --retry: streams wait for the connection and re-open
                                   * after an error, with jittered backoff (load tests) */
} xcl_opts;

/* What the client holds after the certificate step. */
typedef struct xcl_identity {
    EVP_PKEY *key;
    char *key_pem;
    char *chain_pem;              /* leaf first */
    char *bundle_pem;             /* roots to verify meshd (and peers) */
    char spiffe_id[512];
    int csr_status;               /* gRPC status of CreateCertificate, -1 if not called */
} xcl_identity;

int xcl_parse_opts(int argc, char **argv, xcl_opts *o, mesh_err *err);
void xcl_free_opts(xcl_opts *o);

/* Loads/creates the key, gets a cert if asked, saves the state dir. */
int xcl_identity_setup(const xcl_opts *o, xcl_identity *id, mesh_err *err);
void xcl_identity_free(xcl_identity *id);

/* Channel to meshd: server-authenticated TLS, plus our SVID when given;
 * local_pool gives each channel its own connection (fan-out tests). */
grpc_channel *xcl_channel(const xcl_opts *o, const char *roots, const char *key_pem,
                          const char *chain_pem, int local_pool);

/* One blocking unary call. *status and *details (malloc'd) are always set. */
int xcl_unary(grpc_channel *ch, const char *method, const uint8_t *req, size_t len,
              const grpc_metadata *md, size_t n_md, int64_t timeout_ms, uint8_t **resp,
              size_t *resp_len, grpc_status_code *status, char **details, mesh_err *err);

/* Runs the streams; returns the process exit code. */
int xcl_run_streams(const xcl_opts *o, const xcl_identity *id);

/* Node.id of the first request of stream idx (of n). */
void xcl_node_id(const xcl_opts *o, const xcl_identity *id, int idx, int n, char *buf, size_t len);
/* Appends a JSON object describing a serialized Secret (serial, SPIFFE ID,
 * expiry, whether the certificate matches our key) to buf at *off. */
void xcl_describe_secret(const xcl_identity *id, const uint8_t *data, size_t len, char *buf,
                         size_t cap, size_t *off);

/* ---- Delta xDS (xdsclient_delta.c) ----------------------------------------- */

/* One Delta stream's client side: what it holds per type (name -> version),
 * applied from ACKed responses the way Envoy applies them. */
typedef struct xcl_delta xcl_delta;
/* Queues one request on the stream (takes ownership of buf). */
typedef void (*xcl_send_fn)(void *stream, uint8_t *buf, size_t len);

/* Loads --delta-state (if given and present) as the resources already held. */
int xcl_delta_new(const xcl_opts *o, const xcl_identity *id, int idx, int n, xcl_delta **out,
                  mesh_err *err);
void xcl_delta_free(xcl_delta *d);
/* The first request per --sub type, with initial_resource_versions. */
void xcl_delta_start(xcl_delta *d, xcl_send_fn send, void *stream);
/* Handles one DeltaDiscoveryResponse: applies or NACKs it, answers, prints
 * one JSON line (t_ms since start; seq numbers dumps). Returns the type, or
 * -1 when the response could not be decoded or names an unknown type. */
int xcl_delta_on_response(xcl_delta *d, const uint8_t *p, size_t len, int64_t t_ms, unsigned seq,
                          xcl_send_fn send, void *stream);

/* JSON helpers (stdout, one line per event). */
void xcl_json_str(char *buf, size_t len, size_t *off, const char *s);
void xcl_print_status(int stream, grpc_status_code code, const char *details);
int xcl_status_parse(const char *s);

int xcl_read_file(const char *path, char **out, size_t *len, mesh_err *err);
int xcl_write_file(const char *path, const void *data, size_t len, int mode, mesh_err *err);
int64_t xcl_now_ms(void);

#endif
