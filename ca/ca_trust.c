/* ca/ca_trust.c — naming trust anchors: the root of a stored CA, SHA-256
 * fingerprints of roots and of whole bundles.
 *
 * A fingerprint is the SHA-256 of a certificate's DER, lowercase hex: what
 * `openssl x509 -noout -fingerprint -sha256` prints, without the colons, and
 * what a sidecar's /certs shows for its roots. A bundle is named by the
 * sorted, comma-separated fingerprints of its certificates, so "does this
 * sidecar trust CA #2" is a substring question that needs no PEM, and a CRL
 * or reordering in the bundle does not change the answer. */
#include "ca/ca_internal.h"

#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "ca/csr.h"

int ca_cert_sha256_hex(X509 *x, char out[65], mesh_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (!x || X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32)
        return mesh_err_openssl(err, MESH_ECRYPTO, "cannot hash a certificate");
    ca_hex(md, n, out);
    return MESH_OK;
}

int ca_root_cert(const store_ca *c, X509 **out, mesh_err *err)
{
    *out = NULL;
    if (!c->chain_pem || !c->chain_pem[0])
        return pem_read_cert(c->cert_pem, out, err);
    STACK_OF(X509) *sk = NULL;
    int rc = pem_read_cert_chain(c->chain_pem, &sk, err);
    if (rc != MESH_OK)
        return rc;
    *out = sk_X509_pop(sk);
    sk_X509_pop_free(sk, X509_free);
    return *out ? MESH_OK : mesh_err_set(err, MESH_ECORRUPT, "CA #%lld has an empty chain",
                                         (long long)c->id);
}

int ca_root_info(const store_ca *c, char **pem_out, char sha256_out[65], mesh_err *err)
{
    if (pem_out)
        *pem_out = NULL;
    X509 *root = NULL;
    int rc = ca_root_cert(c, &root, err);
    if (rc == MESH_OK && sha256_out)
        rc = ca_cert_sha256_hex(root, sha256_out, err);
    if (rc == MESH_OK && pem_out)
        rc = pem_write_cert(root, pem_out, err);
    X509_free(root);
    if (rc != MESH_OK)
        mesh_err_prefix(err, "root of CA #%lld", (long long)c->id);
    return rc;
}

static int cmp_fp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

int ca_bundle_fingerprints(const char *pem, char **csv_out, mesh_err *err)
{
    *csv_out = NULL;
    STACK_OF(X509) *sk = NULL;
    int rc = pem_read_cert_chain(pem ? pem : "", &sk, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "trust bundle");
    int n = sk_X509_num(sk);
    char (*fps)[65] = calloc((size_t)(n > 0 ? n : 1), sizeof *fps);
    char *csv = calloc((size_t)(n > 0 ? n : 1), 65);
    if (!fps || !csv) {
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n && rc == MESH_OK; i++)
        rc = ca_cert_sha256_hex(sk_X509_value(sk, i), fps[i], err);
    if (rc != MESH_OK)
        goto out;
    qsort(fps, (size_t)n, sizeof *fps, cmp_fp);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && strcmp(fps[i], fps[i - 1]) == 0)
            continue;
        if (off)
            csv[off++] = ',';
        memcpy(csv + off, fps[i], 64);
        off += 64;
    }
    csv[off] = '\0';
    *csv_out = csv;
    csv = NULL;
out:
    free(fps);
    free(csv);
    sk_X509_pop_free(sk, X509_free);
    return rc;
}

int ca_fingerprints_contain(const char *csv, const char *fp)
{
    if (!csv || !fp || strlen(fp) != 64)
        return 0;
    for (const char *p = csv; *p;) {
        if (strncmp(p, fp, 64) == 0 && (p[64] == ',' || p[64] == '\0'))
            return 1;
        const char *comma = strchr(p, ',');
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}
