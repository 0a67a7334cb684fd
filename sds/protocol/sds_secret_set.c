/* sds/protocol/sds_secret_set.c — per-caller SDS secret sets (see sds_secret_set.h). */
#include "sds/protocol/sds_secret_set.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "sds/certsvc/cert_service.h"
#include "sds/protocol/sds_names.h"
#include "sds/compiler/xds_compile_secret.h"
#include "sds/compiler/xds_version.h"

struct sds_bundle {
    atomic_int refs;
    char *pem;
    char *crl_pem;                 /* "" when no CA has a CRL */
    char version[XDS_VERSION_LEN + 1];
    char *td_name;                 /* "spiffe://<td>" */
    uint8_t *rootca, *td;          /* encoded Secrets */
    size_t rootca_len, td_len;
    char rootca_version[XDS_VERSION_LEN + 1];
    char td_version[XDS_VERSION_LEN + 1];
    char *roots;                   /* fingerprints of the roots (ca_bundle_fingerprints) */
};

static void bundle_free(sds_bundle *b)
{
    if (!b)
        return;
    free(b->pem);
    free(b->crl_pem);
    free(b->td_name);
    free(b->rootca);
    free(b->td);
    free(b->roots);
    free(b);
}

int sds_bundle_build(const char *bundle_pem, const char *crl_pem, const char *trust_domain,
                     sds_bundle **out, mesh_err *err)
{
    *out = NULL;
    sds_bundle *b = calloc(1, sizeof *b);
    if (!b)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    atomic_init(&b->refs, 1);
    size_t tdn = strlen(trust_domain) + 10;
    b->pem = strdup(bundle_pem ? bundle_pem : "");
    b->crl_pem = strdup(crl_pem ? crl_pem : "");
    b->td_name = malloc(tdn);
    if (!b->pem || !b->crl_pem || !b->td_name) {
        bundle_free(b);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    snprintf(b->td_name, tdn, "spiffe://%s", trust_domain);
    size_t plen = strlen(b->pem), clen = strlen(b->crl_pem);
    int rc = xds_secret_validation_context(SDS_NAME_ROOTCA, b->pem, plen, b->crl_pem, clen,
                                           &b->rootca, &b->rootca_len, err);
    if (rc == MESH_OK)
        rc = xds_secret_validation_context(b->td_name, b->pem, plen, b->crl_pem, clen, &b->td,
                                           &b->td_len, err);
    if (rc != MESH_OK) {
        bundle_free(b);
        return rc;
    }
    /* The bundle's version covers its CRLs: a revocation is a new ROOTCA. */
    xds_version_of(b->rootca, b->rootca_len, b->version);
    xds_version_of(b->rootca, b->rootca_len, b->rootca_version);
    xds_version_of(b->td, b->td_len, b->td_version);
    /* What a client holds once it ACKs this bundle (CA rotation waits on it).
     * PEM that does not parse as certificates names no root. */
    mesh_err ferr;
    if (ca_bundle_fingerprints(b->pem, &b->roots, &ferr) != MESH_OK)
        b->roots = strdup("");
    if (!b->roots) {
        bundle_free(b);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    *out = b;
    return MESH_OK;
}

sds_bundle *sds_bundle_ref(sds_bundle *b)
{
    if (b)
        atomic_fetch_add(&b->refs, 1);
    return b;
}

void sds_bundle_unref(sds_bundle *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        bundle_free(b);
}

const char *sds_bundle_pem(const sds_bundle *b) { return b->pem; }
const char *sds_bundle_crl_pem(const sds_bundle *b) { return b->crl_pem; }
const char *sds_bundle_version(const sds_bundle *b) { return b->version; }
const char *sds_bundle_roots(const sds_bundle *b) { return b->roots; }

int sds_chain_for_cert(const char *leaf_pem, int64_t ca_id, const store_ca *cas, size_t n_cas,
                       char **chain_pem, mesh_err *err)
{
    *chain_pem = NULL;
    const store_ca *ca = NULL;
    for (size_t i = 0; i < n_cas; i++)
        if (cas[i].id == ca_id)
            ca = &cas[i];
    /* Intermediates: the CA cert and the certs above it, minus the root,
     * when the CA is not itself a self-signed root (chain_pem empty). */
    char **above = NULL;
    size_t n_above = 0;
    if (ca && ca->chain_pem && ca->chain_pem[0]) {
        int rc = cert_service_split_pem(ca->chain_pem, &above, &n_above, err);
        if (rc != MESH_OK)
            return rc;
    }
    size_t total = strlen(leaf_pem) + 2;
    if (n_above > 0)
        total += strlen(ca->cert_pem) + 1;
    for (size_t i = 0; i + 1 < n_above; i++)
        total += strlen(above[i]);
    char *out = malloc(total);
    if (!out) {
        cert_service_free_strings(above, n_above);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    size_t off = 0;
    off += (size_t)snprintf(out + off, total - off, "%s", leaf_pem);
    if (off > 0 && out[off - 1] != '\n')
        out[off++] = '\n';
    if (n_above > 0) {
        off += (size_t)snprintf(out + off, total - off, "%s", ca->cert_pem);
        if (out[off - 1] != '\n' && off + 1 < total)
            out[off++] = '\n';
    }
    for (size_t i = 0; i + 1 < n_above; i++)
        off += (size_t)snprintf(out + off, total - off, "%s", above[i]);
    out[off] = '\0';
    cert_service_free_strings(above, n_above);
    *chain_pem = out;
    return MESH_OK;
}

void sds_svid_free(sds_svid *s)
{
    if (s) {
        free(s->chain_pem);
        memset(s, 0, sizeof *s);
    }
}

int sds_svid_lookup(mesh_store *st, const char *spiffe_id, const char *pubkey_sha256,
                    const store_ca *cas, size_t n_cas, int64_t now,
                    const char *presented_serial, int *presented_revoked, sds_svid *out,
                    mesh_err *err)
{
    memset(out, 0, sizeof *out);
    if (presented_revoked)
        *presented_revoked = 0;
    store_cert *list = NULL;
    size_t n = 0;
    int rc = store_cert_list(st, spiffe_id, 0, now, &list, &n, err);
    if (rc != MESH_OK)
        return rc;
    if (presented_serial && presented_revoked)
        for (size_t i = 0; i < n; i++)
            if (list[i].revoked && strcmp(list[i].serial_hex, presented_serial) == 0)
                *presented_revoked = 1;
    /* Ordered newest first: the first unrevoked match is the current one. */
    for (size_t i = 0; i < n; i++) {
        const store_cert *c = &list[i];
        if (c->revoked || c->not_after <= now || strcmp(c->pubkey_sha256, pubkey_sha256) != 0)
            continue;
        rc = sds_chain_for_cert(c->cert_pem, c->ca_id, cas, n_cas, &out->chain_pem, err);
        if (rc != MESH_OK)
            break;
        out->found = 1;
        snprintf(out->serial_hex, sizeof out->serial_hex, "%s", c->serial_hex);
        out->not_before = c->not_before;
        out->not_after = c->not_after;
        out->ca_id = c->ca_id;
        break;
    }
    store_cert_free_list(list, n);
    return rc;
}

void sds_secret_set_free(sds_secret_set *s)
{
    if (!s)
        return;
    free(s->svid_data[0]);
    free(s->svid_data[1]);
    free(s->own_name);
    sds_bundle_unref(s->bundle);
    memset(s, 0, sizeof *s);
}

static int cmp_res(const void *a, const void *b)
{
    return strcmp(((const xds_resource *)a)->name, ((const xds_resource *)b)->name);
}

int sds_secret_set_build(const char *spiffe_id, const char *svid_chain_pem, sds_bundle *bundle,
                         sds_secret_set *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    out->bundle = sds_bundle_ref(bundle);
    size_t n = 0;
    out->items[n].name = (char *)SDS_NAME_ROOTCA;
    out->items[n].data = bundle->rootca;
    out->items[n].len = bundle->rootca_len;
    memcpy(out->items[n].version, bundle->rootca_version, sizeof out->items[n].version);
    n++;
    out->items[n].name = bundle->td_name;
    out->items[n].data = bundle->td;
    out->items[n].len = bundle->td_len;
    memcpy(out->items[n].version, bundle->td_version, sizeof out->items[n].version);
    n++;
    if (svid_chain_pem) {
        size_t l0 = 0, l1 = 0;
        out->own_name = strdup(spiffe_id);
        if (!out->own_name) {
            sds_secret_set_free(out);
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
        }
        size_t clen = strlen(svid_chain_pem);
        int rc = xds_secret_tls_certificate(SDS_NAME_DEFAULT, svid_chain_pem, clen,
                                            &out->svid_data[0], &l0, err);
        if (rc == MESH_OK)
            rc = xds_secret_tls_certificate(spiffe_id, svid_chain_pem, clen, &out->svid_data[1],
                                            &l1, err);
        if (rc != MESH_OK) {
            sds_secret_set_free(out);
            return rc;
        }
        out->items[n].name = (char *)SDS_NAME_DEFAULT;
        out->items[n].data = out->svid_data[0];
        out->items[n].len = l0;
        xds_version_of(out->svid_data[0], l0, out->items[n].version);
        n++;
        out->items[n].name = out->own_name;
        out->items[n].data = out->svid_data[1];
        out->items[n].len = l1;
        xds_version_of(out->svid_data[1], l1, out->items[n].version);
        n++;
    }
    qsort(out->items, n, sizeof out->items[0], cmp_res);
    out->set.items = out->items;
    out->set.n = n;
    /* The set version is unused by ADS (it versions the subset it sends). */
    snprintf(out->set.version, sizeof out->set.version, "secrets");
    return MESH_OK;
}
