/* sidecar/xds_ca.c — CreateCertificate calls (see xds_ca.h). */
#include "sidecar/xds_ca.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "istio/v1/auth/ca.pb-c.h"
#include "common/mgrpc.h"
#include "sidecar/tls_util.h"

const char *xdsc_csr_mode_name(enum xdsc_csr_mode m)
{
    switch (m) {
    case XDSC_CSR_TOKEN: return "join token";
    case XDSC_CSR_RENEW: return "mTLS renewal";
    case XDSC_CSR_RECOVER: return "expired-SVID recovery";
    default: return "?";
    }
}

char *xdsc_base64(const void *data, size_t len)
{
    size_t cap = 4 * ((len + 2) / 3) + 1;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    if (n < 0) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    return out;
}

bool xdsc_csr_refused(grpc_status_code s)
{
    return s == GRPC_STATUS_UNAUTHENTICATED || s == GRPC_STATUS_PERMISSION_DENIED ||
           s == GRPC_STATUS_INVALID_ARGUMENT || s == GRPC_STATUS_FAILED_PRECONDITION ||
           s == GRPC_STATUS_NOT_FOUND;
}

int xdsc_csr_start(xdsc_csr_call *c, grpc_completion_queue *cq, grpc_channel *ch,
                   enum xdsc_csr_mode mode, const char *csr_pem, const char *md_value,
                   int64_t timeout_ms, mesh_err *err)
{
    memset(c, 0, sizeof *c);
    c->mode = mode;
    c->ch = ch;
    c->tag = (xdsc_tag){XDSC_TAG_CSR, c};
    c->details = grpc_empty_slice();
    grpc_metadata_array_init(&c->md_initial);
    grpc_metadata_array_init(&c->md_trailing);

    Istio__V1__Auth__IstioCertificateRequest req = ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
    req.csr = (char *)csr_pem;
    req.validity_duration = 0;   /* meshd's configured TTL */
    size_t len = istio__v1__auth__istio_certificate_request__get_packed_size(&req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        xdsc_csr_destroy(c);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    istio__v1__auth__istio_certificate_request__pack(&req, buf);
    c->send_buf = mgrpc_buffer_take(buf, len);
    if (!c->send_buf) {
        xdsc_csr_destroy(c);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    if (md_value && mode != XDSC_CSR_RENEW) {
        if (!(c->md_value = strdup(md_value))) {
            xdsc_csr_destroy(c);
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
        }
        c->md[0].key = grpc_slice_from_static_string(mode == XDSC_CSR_TOKEN ? "authorization"
                                                                            : XDSC_RECOVER_HEADER);
        c->md[0].value = grpc_slice_from_static_string(c->md_value);
        c->n_md = 1;
    }
    grpc_slice method = grpc_slice_from_static_string(XDS_METHOD_CREATE_CERTIFICATE);
    c->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                       xdsc_deadline_ms(timeout_ms), NULL);
    if (!c->call) {
        xdsc_csr_destroy(c);
        return mesh_err_set(err, MESH_EINTERNAL, "cannot create the CreateCertificate call");
    }
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = c->n_md;
    ops[0].data.send_initial_metadata.metadata = c->n_md ? c->md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->send_buf;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &c->recv_buf;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &c->md_trailing;
    ops[5].data.recv_status_on_client.status = &c->status;
    ops[5].data.recv_status_on_client.status_details = &c->details;
    if (grpc_call_start_batch(c->call, ops, 6, &c->tag, NULL) != GRPC_CALL_OK) {
        xdsc_csr_destroy(c);
        return mesh_err_set(err, MESH_EINTERNAL, "cannot start the CreateCertificate call");
    }
    c->busy = true;
    return MESH_OK;
}

/* Appends pem + '\n' if needed to *buf. */
static int append_pem(char **buf, size_t *len, const char *pem)
{
    size_t n = strlen(pem);
    bool nl = n > 0 && pem[n - 1] != '\n';
    char *b = realloc(*buf, *len + n + 2);
    if (!b)
        return MESH_ENOMEM;
    memcpy(b + *len, pem, n);
    *len += n;
    if (nl)
        b[(*len)++] = '\n';
    b[*len] = '\0';
    *buf = b;
    return MESH_OK;
}

static bool self_signed(const char *pem)
{
    STACK_OF(X509) *sk = NULL;
    if (tls_parse_certs(pem, "certificate", &sk, NULL) != MESH_OK)
        return false;
    X509 *x = sk_X509_value(sk, 0);
    bool ss = X509_check_issued(x, x) == X509_V_OK;
    sk_X509_pop_free(sk, X509_free);
    return ss;
}

int xdsc_csr_finish(xdsc_csr_call *c, bool ok, xdsc_csr_result *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    c->busy = false;
    out->status = ok ? c->status : GRPC_STATUS_UNAVAILABLE;
    if (!ok)
        return mesh_err_set(err, MESH_EIO, "CreateCertificate did not complete");
    if (c->status != GRPC_STATUS_OK) {
        char d[400];
        xdsc_status_text(c->details, d, sizeof d);
        int code = xdsc_csr_refused(c->status) ? MESH_EPERM : MESH_EIO;
        return mesh_err_set(err, code, "meshd answered %s: %s",
                            mgrpc_status_name(c->status), d[0] ? d : "(no details)");
    }
    if (!c->recv_buf)
        return mesh_err_set(err, MESH_EIO, "CreateCertificate returned no message");
    uint8_t *bytes;
    size_t len;
    int rc = mgrpc_buffer_to_bytes(c->recv_buf, &bytes, &len, err);
    if (rc != MESH_OK)
        return rc;
    Istio__V1__Auth__IstioCertificateResponse *resp =
        istio__v1__auth__istio_certificate_response__unpack(NULL, len, bytes);
    free(bytes);
    if (!resp)
        return mesh_err_set(err, MESH_EINVAL, "CreateCertificate response does not decode");
    char *chain = NULL, *roots = NULL;
    size_t clen = 0, rlen = 0;
    rc = MESH_OK;
    for (size_t i = 0; rc == MESH_OK && i < resp->n_cert_chain; i++) {
        /* Istio order: leaf, intermediates, root. The root is not something
         * we present; and alone it is not the bundle either (during a CA
         * rotation the bundle holds old and new roots), so it is dropped. */
        if (i > 0 && i + 1 == resp->n_cert_chain && self_signed(resp->cert_chain[i]))
            continue;
        rc = append_pem(&chain, &clen, resp->cert_chain[i]);
    }
    /* root_cert, when present, is meshd's whole trust bundle. */
    for (size_t i = 0; rc == MESH_OK && resp->root_cert && i < resp->root_cert->n_ca_cert; i++)
        rc = append_pem(&roots, &rlen, resp->root_cert->ca_cert[i]);
    istio__v1__auth__istio_certificate_response__free_unpacked(resp, NULL);
    if (rc != MESH_OK) {
        free(chain);
        free(roots);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    if (!chain) {
        free(roots);
        return mesh_err_set(err, MESH_EINVAL, "CreateCertificate returned an empty chain");
    }
    out->chain_pem = chain;
    out->roots_pem = roots;
    return MESH_OK;
}

void xdsc_csr_result_free(xdsc_csr_result *r)
{
    free(r->chain_pem);
    free(r->roots_pem);
    memset(r, 0, sizeof *r);
}

void xdsc_csr_cancel(xdsc_csr_call *c)
{
    if (c->call && c->busy)
        grpc_call_cancel(c->call, NULL);
}

void xdsc_csr_destroy(xdsc_csr_call *c)
{
    if (c->call)
        grpc_call_unref(c->call);
    if (c->ch)
        grpc_channel_destroy(c->ch);
    if (c->send_buf)
        grpc_byte_buffer_destroy(c->send_buf);
    if (c->recv_buf)
        grpc_byte_buffer_destroy(c->recv_buf);
    grpc_metadata_array_destroy(&c->md_initial);
    grpc_metadata_array_destroy(&c->md_trailing);
    grpc_slice_unref(c->details);
    if (c->md_value) {
        OPENSSL_cleanse(c->md_value, strlen(c->md_value));
        free(c->md_value);
    }
    memset(c, 0, sizeof *c);
}
