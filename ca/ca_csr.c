/* ca/ca_csr.c — server-side CSR validation before anything is signed.
 *
 * A CSR is untrusted input from the network. We check it in order of cost
 * and give each failure its own message: the PEM/DER is sound, the key is a
 * type and size we sign for, the self-signature proves possession of the
 * key, and the one URI SAN is a SPIFFE ID in our trust domain equal to the
 * identity the caller authenticated as. Nothing from the CSR except its
 * public key and that checked ID reaches the certificate.
 *
 * Key policy: EC P-256 and P-384, RSA 2048..8192 bits with an odd public
 * exponent >= 3. Ed25519 is refused: Envoy and many TLS peers do not accept
 * Ed25519 certificates, and neither Istio nor SPIRE issue them. */
#include "ca/ca_internal.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "ca/csr.h"
#include "ca/spiffe_id.h"

#define CSR_PEM_MAX (64 * 1024)
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192 /* bigger keys only cost us verification time */

static int parse_pem(const char *csr_pem, X509_REQ **out, mesh_err *err)
{
    if (!csr_pem || !csr_pem[0])
        return mesh_err_set(err, MESH_EINVAL, "CSR is empty");
    if (strnlen(csr_pem, CSR_PEM_MAX + 1) > CSR_PEM_MAX)
        return mesh_err_set(err, MESH_EINVAL, "CSR is larger than %d bytes", CSR_PEM_MAX);
    const char *begin = strstr(csr_pem, "-----BEGIN CERTIFICATE REQUEST-----");
    const char *end_tag = "-----END CERTIFICATE REQUEST-----";
    if (!begin) {
        begin = strstr(csr_pem, "-----BEGIN NEW CERTIFICATE REQUEST-----");
        end_tag = "-----END NEW CERTIFICATE REQUEST-----";
    }
    if (!begin)
        return mesh_err_set(err, MESH_EINVAL,
                            "CSR is not a PEM certificate request (expected a "
                            "-----BEGIN CERTIFICATE REQUEST----- block)");
    if (!strstr(begin, end_tag))
        return mesh_err_set(err, MESH_EINVAL,
                            "CSR PEM is truncated (no -----END CERTIFICATE REQUEST----- line)");
    BIO *bio = BIO_new_mem_buf(begin, -1);
    if (!bio)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!req) {
        ERR_clear_error();
        return mesh_err_set(err, MESH_EINVAL,
                            "CSR PEM does not hold a valid PKCS#10 request (damaged base64 or DER)");
    }
    *out = req;
    return MESH_OK;
}

static int check_rsa_key(EVP_PKEY *pk, const char *what, mesh_err *err)
{
    int bits = EVP_PKEY_get_bits(pk);
    if (bits < RSA_MIN_BITS)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s is RSA-%d; RSA keys must have at least %d bits (or use EC "
                            "P-256)",
                            what, bits, RSA_MIN_BITS);
    if (bits > RSA_MAX_BITS)
        return mesh_err_set(err, MESH_EINVAL, "%s is RSA-%d; the limit is %d bits", what, bits,
                            RSA_MAX_BITS);
    BIGNUM *e = NULL;
    if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        ERR_clear_error();
        return mesh_err_set(err, MESH_EINVAL, "%s (RSA) has no readable public exponent", what);
    }
    int ok = BN_is_odd(e) && BN_num_bits(e) >= 2; /* odd and >= 3 */
    BN_free(e);
    if (!ok)
        return mesh_err_set(err, MESH_EINVAL, "%s (RSA) has an unsafe public exponent", what);
    return MESH_OK;
}

int ca_check_leaf_key(EVP_PKEY *pk, const char *what, mesh_err *err)
{
    if (!pk) {
        ERR_clear_error();
        return mesh_err_set(err, MESH_EINVAL, "%s cannot be decoded", what);
    }
    char kt[64];
    key_type_describe(pk, kt, sizeof kt);
    int id = EVP_PKEY_get_base_id(pk);
    if (id == EVP_PKEY_RSA)
        return check_rsa_key(pk, what, err);
    if (id == EVP_PKEY_EC) {
        if (strcmp(kt, "ec-p256") == 0 || strcmp(kt, "ec-p384") == 0)
            return MESH_OK;
        return mesh_err_set(err, MESH_EINVAL,
                            "%s is EC on curve %s; only P-256 and P-384 are accepted", what,
                            kt + 3);
    }
    if (id == EVP_PKEY_ED25519)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s is Ed25519, which meshd does not sign (Envoy and many TLS "
                            "peers reject Ed25519 certificates); use EC P-256",
                            what);
    return mesh_err_set(err, MESH_EINVAL,
                        "%s type %s is not accepted; use EC P-256/P-384 or RSA >= 2048", what, kt);
}

static int check_signature(X509_REQ *req, EVP_PKEY *pk, mesh_err *err)
{
    int md_nid = NID_undef, pk_nid = NID_undef;
    int sig_nid = X509_REQ_get_signature_nid(req);
    if (OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) == 1 &&
        (md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_md4))
        return mesh_err_set(err, MESH_EINVAL,
                            "CSR is signed with %s; use SHA-256 or stronger", OBJ_nid2sn(md_nid));
    if (X509_REQ_verify(req, pk) != 1) {
        ERR_clear_error();
        return mesh_err_set(err, MESH_EINVAL,
                            "CSR signature does not verify: the request was altered or was not "
                            "signed by the key it contains");
    }
    return MESH_OK;
}

/* Refuses CSRs that ask to be a CA, via basicConstraints or keyUsage. We
 * would not honour it anyway; a client asking for it is misconfigured or
 * probing, and deserves a clear answer. */
static int check_not_ca(const X509_EXTENSION *ext, mesh_err *err)
{
    int nid = OBJ_obj2nid(X509_EXTENSION_get_object((X509_EXTENSION *)ext));
    if (nid == NID_basic_constraints) {
        BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i((X509_EXTENSION *)ext);
        if (!bc) {
            ERR_clear_error();
            return mesh_err_set(err, MESH_EINVAL, "CSR basicConstraints extension is malformed");
        }
        int is_ca = bc->ca != 0;
        BASIC_CONSTRAINTS_free(bc);
        if (is_ca)
            return mesh_err_set(err, MESH_EINVAL,
                                "CSR asks for a CA certificate (basicConstraints CA:TRUE); "
                                "SVIDs are leaf certificates");
    } else if (nid == NID_key_usage) {
        ASN1_BIT_STRING *ku = X509V3_EXT_d2i((X509_EXTENSION *)ext);
        if (!ku) {
            ERR_clear_error();
            return mesh_err_set(err, MESH_EINVAL, "CSR keyUsage extension is malformed");
        }
        int cert_sign = ASN1_BIT_STRING_get_bit(ku, 5) || ASN1_BIT_STRING_get_bit(ku, 6);
        ASN1_BIT_STRING_free(ku);
        if (cert_sign)
            return mesh_err_set(err, MESH_EINVAL,
                                "CSR asks for keyCertSign/cRLSign key usage; SVIDs are leaf "
                                "certificates");
    }
    return MESH_OK;
}

static const char *gen_type_name(int type)
{
    switch (type) {
    case GEN_DNS: return "DNS name";
    case GEN_IPADD: return "IP address";
    case GEN_EMAIL: return "email address";
    case GEN_DIRNAME: return "directory name";
    case GEN_RID: return "registered ID";
    default: return "other name";
    }
}

/* Extracts the single URI SAN into id_out. */
static int extract_uri(STACK_OF(X509_EXTENSION) *exts, const char *authorised_id, char *id_out,
                       size_t id_len, mesh_err *err)
{
    char q[160];
    char hint[SPIFFE_ID_MAX + 64] = "";
    if (authorised_id)
        snprintf(hint, sizeof hint, " (the caller is authorised for '%s')",
                 ca_quote(authorised_id, q, sizeof q));
    GENERAL_NAMES *gens = NULL;
    int san_exts = 0;
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name)
            continue;
        if (++san_exts > 1) {
            GENERAL_NAMES_free(gens);
            return mesh_err_set(err, MESH_EINVAL,
                                "CSR has more than one subjectAltName extension");
        }
        gens = X509V3_EXT_d2i(ext);
        if (!gens) {
            ERR_clear_error();
            return mesh_err_set(err, MESH_EINVAL, "CSR subjectAltName extension is malformed");
        }
    }
    if (!gens)
        return mesh_err_set(err, MESH_EINVAL,
                            "CSR has no URI SAN; it must ask for exactly one SPIFFE ID%s", hint);
    int uris = 0;
    int rc = MESH_OK;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens) && rc == MESH_OK; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI) {
            rc = mesh_err_set(err, MESH_EINVAL,
                              "CSR asks for a %s SAN; an SVID carries only its SPIFFE ID",
                              gen_type_name(g->type));
            break;
        }
        if (++uris > 1)
            continue;
        const ASN1_IA5STRING *s = g->d.uniformResourceIdentifier;
        int n = ASN1_STRING_length(s);
        const unsigned char *d = ASN1_STRING_get0_data(s);
        if (n <= 0 || (size_t)n >= id_len || memchr(d, '\0', (size_t)n))
            rc = mesh_err_set(err, MESH_EINVAL,
                              "CSR URI SAN is empty, too long (%d bytes) or contains NUL", n);
        else {
            memcpy(id_out, d, (size_t)n);
            id_out[n] = '\0';
        }
    }
    GENERAL_NAMES_free(gens);
    if (rc != MESH_OK)
        return rc;
    if (uris == 0)
        return mesh_err_set(err, MESH_EINVAL,
                            "CSR has no URI SAN; it must ask for exactly one SPIFFE ID%s", hint);
    if (uris > 1)
        return mesh_err_set(err, MESH_EINVAL,
                            "CSR has %d URI SANs; an X.509-SVID carries exactly one SPIFFE ID%s",
                            uris, hint);
    return MESH_OK;
}

static int check_identity(const char *id, const char *trust_domain, const char *authorised_id,
                          mesh_err *err)
{
    char q1[160], q2[160];
    spiffe_id_parts parsed;
    int rc = spiffe_id_parse(id, &parsed, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "CSR URI SAN");
    if (strcmp(parsed.trust_domain, trust_domain) != 0)
        return mesh_err_set(err, MESH_EINVAL,
                            "CSR asks for '%s' in trust domain '%s'; this CA signs only for '%s'",
                            ca_quote(id, q1, sizeof q1),
                            ca_quote(parsed.trust_domain, q2, sizeof q2), trust_domain);
    if (authorised_id && strcmp(id, authorised_id) != 0)
        return mesh_err_set(err, MESH_EPERM,
                            "CSR asks for '%s' but the caller is authorised only for '%s'",
                            ca_quote(id, q1, sizeof q1), ca_quote(authorised_id, q2, sizeof q2));
    return MESH_OK;
}

int ca_csr_parse_checked(const char *csr_pem, const char *trust_domain,
                         const char *authorised_id, X509_REQ **req_out, char *id_out,
                         size_t id_len, mesh_err *err)
{
    if (!trust_domain || !trust_domain[0])
        return mesh_err_set(err, MESH_EINVAL, "no trust domain given for the CSR check");
    if (authorised_id) {
        int rc = spiffe_id_parse(authorised_id, NULL, err);
        if (rc != MESH_OK)
            return mesh_err_prefix(err, "authorised identity");
    }
    X509_REQ *req = NULL;
    int rc = parse_pem(csr_pem, &req, err);
    if (rc != MESH_OK)
        return rc;
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    STACK_OF(X509_EXTENSION) *exts = NULL;
    if ((rc = ca_check_leaf_key(pk, "CSR key", err)) != MESH_OK || (rc = check_signature(req, pk, err)) != MESH_OK)
        goto out;
    exts = X509_REQ_get_extensions(req);
    ERR_clear_error(); /* NULL just means "no extensions" here; a bad SAN is caught below */
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++)
        if ((rc = check_not_ca(sk_X509_EXTENSION_value(exts, i), err)) != MESH_OK)
            goto out;
    if ((rc = extract_uri(exts, authorised_id, id_out, id_len, err)) != MESH_OK ||
        (rc = check_identity(id_out, trust_domain, authorised_id, err)) != MESH_OK)
        goto out;
    if (req_out) {
        *req_out = req;
        req = NULL;
    }
out:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    return rc;
}

int ca_csr_check(const char *csr_pem, const char *trust_domain, const char *authorised_id,
                 mesh_err *err)
{
    char id[SPIFFE_ID_MAX + 1];
    return ca_csr_parse_checked(csr_pem, trust_domain, authorised_id, NULL, id, sizeof id, err);
}
