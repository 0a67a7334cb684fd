/* tests/xdsclient/xdsclient_cert.c — the client's identity: key, CSR, CreateCertificate, state dir.
 *
 * Mirrors what a sidecar does: the key is generated here and never leaves;
 * meshd gets a CSR. First contact authenticates with a join token over
 * server-authenticated TLS, renewal with the current SVID over mTLS, and
 * recovery with the expired SVID in metadata plus a CSR signed by the same
 * key. The state dir holds key.pem (0600), cert.pem (leaf + intermediates)
 * and bundle.pem. */
#include "tests/xdsclient/xdsclient.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpc/slice.h>
#include <grpc/support/alloc.h>

#include "ca/ca.h"
#include "ca/csr.h"
#include "istio/v1/auth/ca.pb-c.h"
#include "common/mgrpc.h"
#include "common/xds_wire.h"
#include "store/store.h"

void xcl_identity_free(xcl_identity *id)
{
    EVP_PKEY_free(id->key);
    if (id->key_pem)
        OPENSSL_clear_free(id->key_pem, strlen(id->key_pem));
    free(id->chain_pem);
    free(id->bundle_pem);
    memset(id, 0, sizeof *id);
}

static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int read_in_dir(const char *dir, const char *name, char **out, mesh_err *err)
{
    char *p = path_in(dir, name);
    if (!p)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    int rc = xcl_read_file(p, out, NULL, err);
    free(p);
    return rc;
}

static int load_bundle(const xcl_opts *o, xcl_identity *id, mesh_err *err)
{
    if (o->bundle_file)
        return xcl_read_file(o->bundle_file, &id->bundle_pem, NULL, err);
    if (o->bundle_db) {
        mesh_store *st = NULL;
        int rc = store_open(&st, o->bundle_db, err);
        if (rc == MESH_OK)
            rc = ca_bundle_pem(st, &id->bundle_pem, err);
        store_close(st);
        return rc;
    }
    if (o->state_dir && read_in_dir(o->state_dir, "bundle.pem", &id->bundle_pem, err) == MESH_OK)
        return MESH_OK;
    return mesh_err_set(err, MESH_EINVAL,
                        "no trust bundle to verify meshd: give --bundle FILE (from 'meshctl ca "
                        "bundle'), --bundle-db DB, or a --state-dir holding bundle.pem");
}

static int save_state(const char *dir, const xcl_identity *id, mesh_err *err)
{
    if (mkdir(dir, 0700) != 0 && access(dir, W_OK) != 0)
        return mesh_err_set(err, MESH_EIO, "cannot create state dir %s", dir);
    const char *names[3] = {"key.pem", "cert.pem", "bundle.pem"};
    const char *data[3] = {id->key_pem, id->chain_pem, id->bundle_pem};
    const int modes[3] = {0600, 0644, 0644};
    for (int i = 0; i < 3; i++) {
        if (!data[i])
            continue;
        char *p = path_in(dir, names[i]);
        if (!p)
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
        int rc = xcl_write_file(p, data[i], strlen(data[i]), modes[i], err);
        free(p);
        if (rc != MESH_OK)
            return rc;
    }
    return MESH_OK;
}

static char *b64(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    return out;
}

/* The first CERTIFICATE block of a PEM chain, malloc'd. */
static char *first_pem(const char *pem)
{
    const char *end = strstr(pem, "-----END CERTIFICATE-----");
    if (!end)
        return NULL;
    end += strlen("-----END CERTIFICATE-----");
    const char *begin = strstr(pem, "-----BEGIN CERTIFICATE-----");
    if (!begin || begin > end)
        return NULL;
    size_t n = (size_t)(end - begin);
    char *out = malloc(n + 2);
    if (out) {
        memcpy(out, begin, n);
        out[n] = '\n';
        out[n + 1] = '\0';
    }
    return out;
}

static char *join(char **v, size_t n)
{
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += strlen(v[i]) + 1;
    char *out = malloc(total);
    if (!out)
        return NULL;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        memcpy(out + off, v[i], l);
        off += l;
        if (l && v[i][l - 1] != '\n')
            out[off++] = '\n';
    }
    out[off] = '\0';
    return out;
}

static void print_cert_event(const xcl_identity *id, const char *auth, size_t chain_len,
                             size_t n_roots)
{
    X509 *x = NULL;
    mesh_err err = {0};
    char serial[48] = "";
    int64_t nb = 0, na = 0;
    if (pem_read_cert(id->chain_pem, &x, &err) == MESH_OK) {
        cert_serial_hex(x, serial, sizeof serial, &err);
        cert_validity(x, &nb, &na, &err);
    }
    int match = x && cert_key_matches(x, id->key);
    X509_free(x);
    char buf[1500];
    size_t off = (size_t)snprintf(buf, sizeof buf, "{\"event\":\"certificate\",\"auth\":\"%s\","
                                                   "\"spiffe_id\":",
                                  auth);
    xcl_json_str(buf, sizeof buf, &off, id->spiffe_id);
    off += (size_t)snprintf(buf + off, sizeof buf - off,
                            ",\"serial\":\"%s\",\"not_before\":%lld,\"not_after\":%lld,"
                            "\"chain\":%zu,\"roots\":%zu,\"key_match\":%s}",
                            serial, (long long)nb, (long long)na, chain_len, n_roots,
                            match ? "true" : "false");
    printf("%s\n", buf);
    fflush(stdout);
}

/* CreateCertificate with the given auth; fills id->chain_pem / bundle_pem. */
static int create_certificate(const xcl_opts *o, xcl_identity *id, const char *auth,
                              const char *csr_pem, mesh_err *err)
{
    grpc_metadata md[1];
    size_t n_md = 0;
    char *md_value = NULL;
    const char *client_key = NULL, *client_chain = NULL;
    if (strcmp(auth, "token") == 0) {
        size_t l = strlen(o->token) + 8;
        md_value = malloc(l);
        if (!md_value)
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
        snprintf(md_value, l, "Bearer %s", o->token);
        md[0].key = grpc_slice_from_static_string("authorization");
    } else if (strcmp(auth, "recover") == 0) {
        char *leaf = first_pem(id->chain_pem);
        md_value = leaf ? b64(leaf) : NULL;
        free(leaf);
        if (!md_value)
            return mesh_err_set(err, MESH_EINVAL, "no certificate to recover from");
        md[0].key = grpc_slice_from_static_string("x-meshd-expired-svid");
    } else if (strcmp(auth, "mtls") == 0) {
        client_key = id->key_pem;
        client_chain = id->chain_pem;
    }
    if (md_value) {
        md[0].value = grpc_slice_from_copied_string(md_value);
        memset(&md[0].internal_data, 0, sizeof md[0].internal_data);
        n_md = 1;
    }
    Istio__V1__Auth__IstioCertificateRequest req = ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
    req.csr = (char *)csr_pem;
    req.validity_duration = o->ttl;
    size_t len = istio__v1__auth__istio_certificate_request__get_packed_size(&req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        free(md_value);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    istio__v1__auth__istio_certificate_request__pack(&req, buf);
    grpc_channel *ch = xcl_channel(o, id->bundle_pem, client_key, client_chain, 0);
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    char *details = NULL;
    int rc = xcl_unary(ch, XDS_METHOD_CREATE_CERTIFICATE, buf, len, md, n_md, o->timeout_ms, &resp,
                       &resp_len, &status, &details, err);
    grpc_channel_destroy(ch);
    free(buf);
    if (n_md)
        grpc_slice_unref(md[0].value);
    if (md_value)
        OPENSSL_clear_free(md_value, strlen(md_value));
    id->csr_status = (int)status;
    if (rc == MESH_OK && status != GRPC_STATUS_OK) {
        xcl_print_status(-1, status, details);
        rc = mesh_err_set(err, MESH_EPERM, "CreateCertificate failed: %s: %s",
                          mgrpc_status_name(status), details ? details : "");
    }
    free(details);
    if (rc != MESH_OK) {
        free(resp);
        return rc;
    }
    Istio__V1__Auth__IstioCertificateResponse *r =
        istio__v1__auth__istio_certificate_response__unpack(NULL, resp_len, resp);
    free(resp);
    if (!r || r->n_cert_chain == 0) {
        if (r)
            istio__v1__auth__istio_certificate_response__free_unpacked(r, NULL);
        return mesh_err_set(err, MESH_EINVAL, "CreateCertificate returned no certificate");
    }
    /* Istio order: leaf, intermediates, root. Our chain is all but the root. */
    size_t keep = r->n_cert_chain > 1 ? r->n_cert_chain - 1 : 1;
    free(id->chain_pem);
    id->chain_pem = join(r->cert_chain, keep);
    size_t n_roots = r->root_cert ? r->root_cert->n_ca_cert : 0;
    if (n_roots > 0) {
        free(id->bundle_pem);
        id->bundle_pem = join(r->root_cert->ca_cert, n_roots);
    }
    size_t chain_len = r->n_cert_chain;
    istio__v1__auth__istio_certificate_response__free_unpacked(r, NULL);
    if (!id->chain_pem || !id->bundle_pem)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    X509 *x = NULL;
    rc = pem_read_cert(id->chain_pem, &x, err);
    if (rc == MESH_OK)
        rc = cert_spiffe_id(x, id->spiffe_id, sizeof id->spiffe_id, err);
    X509_free(x);
    if (rc == MESH_OK)
        print_cert_event(id, auth, chain_len, n_roots);
    return rc;
}

int xcl_identity_setup(const xcl_opts *o, xcl_identity *id, mesh_err *err)
{
    memset(id, 0, sizeof *id);
    id->csr_status = -1;
    int rc = load_bundle(o, id, err);
    if (rc != MESH_OK)
        return rc;
    if (o->cert_file) {
        if ((rc = xcl_read_file(o->key_file, &id->key_pem, NULL, err)) != MESH_OK ||
            (rc = xcl_read_file(o->cert_file, &id->chain_pem, NULL, err)) != MESH_OK)
            return rc;
    } else if (!o->token && !o->anonymous && o->state_dir) {
        if ((rc = read_in_dir(o->state_dir, "key.pem", &id->key_pem, err)) != MESH_OK ||
            (rc = read_in_dir(o->state_dir, "cert.pem", &id->chain_pem, err)) != MESH_OK)
            return mesh_err_prefix(err, "state dir %s", o->state_dir);
    }
    if (o->token || o->anonymous) {
        if ((rc = csr_keygen(o->key_type, &id->key, err)) != MESH_OK ||
            (rc = pem_write_private_key(id->key, &id->key_pem, err)) != MESH_OK)
            return rc;
    } else {
        if ((rc = pem_read_private_key(id->key_pem, &id->key, err)) != MESH_OK)
            return rc;
        X509 *x = NULL;
        rc = pem_read_cert(id->chain_pem, &x, err);
        if (rc == MESH_OK)
            rc = cert_spiffe_id(x, id->spiffe_id, sizeof id->spiffe_id, err);
        X509_free(x);
        if (rc != MESH_OK)
            return mesh_err_prefix(err, "our certificate");
    }
    const char *auth = o->token ? "token" : o->recover ? "recover" : o->renew ? "mtls" : NULL;
    if (o->anonymous)
        auth = o->id ? "none" : NULL;
    if (auth) {
        const char *want = o->csr_id ? o->csr_id : o->id ? o->id : id->spiffe_id;
        char *csr = NULL;
        if ((rc = csr_create(id->key, want, &csr, err)) != MESH_OK)
            return rc;
        rc = create_certificate(o, id, auth, csr, err);
        free(csr);
        if (rc != MESH_OK)
            return rc;
    }
    if (o->state_dir && !o->anonymous && (rc = save_state(o->state_dir, id, err)) != MESH_OK)
        return rc;
    return MESH_OK;
}
