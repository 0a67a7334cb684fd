/* sidecar/xds_ca.h — the sidecar's CreateCertificate client (Istio's CA API on meshd).
 *
 * One unary call per attempt, as a single batch on the client's completion
 * queue. How the caller is authenticated is chosen by the channel and the
 * metadata (see sds/certsvc/cert_service.h):
 *   XDSC_CSR_TOKEN     server-authenticated TLS + "authorization: Bearer mjt_..."
 *   XDSC_CSR_RENEW     mTLS with the current SVID
 *   XDSC_CSR_RECOVER   server-authenticated TLS + "x-meshd-expired-svid:
 *                      base64(expired SVID PEM)"; the CSR is signed by that
 *                      SVID's key
 * The response's chain is leaf first; a trailing self-signed root is dropped
 * (the bundle carries roots), and root_cert (meshd's whole trust bundle) is
 * returned as one PEM bundle. */
#ifndef MESH_SIDECAR_XDS_CA_H
#define MESH_SIDECAR_XDS_CA_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "sidecar/xds_grpc.h"

#define XDSC_CSR_TIMEOUT_MS 20000
#define XDSC_RECOVER_HEADER "x-meshd-expired-svid"

enum xdsc_csr_mode { XDSC_CSR_TOKEN = 0, XDSC_CSR_RENEW, XDSC_CSR_RECOVER };

const char *xdsc_csr_mode_name(enum xdsc_csr_mode m);

typedef struct xdsc_csr_call {
    enum xdsc_csr_mode mode;
    grpc_channel *ch;
    grpc_call *call;
    xdsc_tag tag;
    bool busy;                  /* the batch has not completed */
    grpc_metadata md[1];
    size_t n_md;
    grpc_metadata_array md_initial, md_trailing;
    grpc_byte_buffer *send_buf, *recv_buf;
    grpc_status_code status;
    grpc_slice details;
    char *md_value;             /* the metadata value (wiped on free: may be a token) */
} xdsc_csr_call;

/* Starts the call on ch (taken over). md_value is the authorization or
 * recovery header value for TOKEN / RECOVER (copied), NULL for RENEW. */
int xdsc_csr_start(xdsc_csr_call *c, grpc_completion_queue *cq, grpc_channel *ch,
                   enum xdsc_csr_mode mode, const char *csr_pem, const char *md_value,
                   int64_t timeout_ms, mesh_err *err);

typedef struct xdsc_csr_result {
    char *chain_pem;            /* leaf first, no root */
    char *roots_pem;            /* root_cert.ca_cert as one PEM; NULL if none */
    grpc_status_code status;    /* GRPC_STATUS_OK on success */
} xdsc_csr_result;

/* After the tag completed: decodes the outcome. MESH_OK with *out filled, or
 * an error whose message says what meshd answered; out->status is the gRPC
 * status either way (UNAVAILABLE/DEADLINE_EXCEEDED mean "try again later",
 * UNAUTHENTICATED/PERMISSION_DENIED/INVALID_ARGUMENT mean "refused"). */
int xdsc_csr_finish(xdsc_csr_call *c, bool ok, xdsc_csr_result *out, mesh_err *err);
void xdsc_csr_result_free(xdsc_csr_result *r);
/* Cancels a busy call (its tag still completes). */
void xdsc_csr_cancel(xdsc_csr_call *c);
void xdsc_csr_destroy(xdsc_csr_call *c);

/* Whether a status means meshd refused us (as opposed to being unreachable). */
bool xdsc_csr_refused(grpc_status_code s);

/* Standard base64 of len bytes (NUL-terminated, malloc'd). */
char *xdsc_base64(const void *data, size_t len);

#endif
