/* ca/ca_x509.c — X.509 building blocks: serials and the extensions meshd puts
 * on CA certs and SVIDs.
 *
 * Extensions are built as typed structures and encoded with
 * X509_add1_ext_i2d rather than through OpenSSL's config-string parser, so a
 * caller-supplied name (a DNS SAN, a URI) can never inject extra
 * extension syntax. */
#include "ca/ca_internal.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <string.h>

int ca_random_serial(X509 *x, mesh_err *err)
{
    unsigned char buf[16];
    static const unsigned char zero[16];
    /* A zero serial is invalid (RFC 5280 4.1.2.2): 2^-127 odds, but cheap to rule out. */
    do {
        if (RAND_bytes(buf, sizeof buf) != 1)
            return mesh_err_openssl(err, MESH_ECRYPTO, "random serial generation failed");
        buf[0] &= 0x7f;
    } while (memcmp(buf, zero, sizeof buf) == 0);
    BIGNUM *bn = BN_bin2bn(buf, sizeof buf, NULL);
    ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    BN_free(bn);
    int ok = ai && X509_set_serialNumber(x, ai) == 1;
    ASN1_INTEGER_free(ai);
    if (!ok)
        return mesh_err_openssl(err, MESH_ECRYPTO, "cannot set certificate serial");
    return MESH_OK;
}

static int add_ext(X509 *x, int nid, void *value, int crit, const char *what, mesh_err *err)
{
    if (X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_REPLACE) != 1)
        return mesh_err_openssl(err, MESH_ECRYPTO, what);
    return MESH_OK;
}

int ca_add_basic_constraints(X509 *x, int is_ca, mesh_err *err)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    if (!bc)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    bc->ca = is_ca ? 0xff : 0;
    int rc = add_ext(x, NID_basic_constraints, bc, 1, "cannot add basicConstraints", err);
    BASIC_CONSTRAINTS_free(bc);
    return rc;
}

int ca_add_key_usage(X509 *x, int digital_signature, int key_encipherment, int cert_sign,
                     mesh_err *err)
{
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    if (!ku)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    /* Bit numbers from RFC 5280 4.2.1.3. */
    int ok = 1;
    if (digital_signature)
        ok &= ASN1_BIT_STRING_set_bit(ku, 0, 1);
    if (key_encipherment)
        ok &= ASN1_BIT_STRING_set_bit(ku, 2, 1);
    if (cert_sign) {
        ok &= ASN1_BIT_STRING_set_bit(ku, 5, 1); /* keyCertSign */
        ok &= ASN1_BIT_STRING_set_bit(ku, 6, 1); /* cRLSign */
    }
    int rc = ok ? add_ext(x, NID_key_usage, ku, 1, "cannot add keyUsage", err)
                : mesh_err_openssl(err, MESH_ECRYPTO, "cannot build keyUsage");
    ASN1_BIT_STRING_free(ku);
    return rc;
}

int ca_add_eku_server_client(X509 *x, mesh_err *err)
{
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    if (!eku)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    int rc;
    /* OBJ_nid2obj returns static objects for built-in NIDs: not freed. */
    if (!sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) ||
        !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)))
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
    else
        rc = add_ext(x, NID_ext_key_usage, eku, 0, "cannot add extendedKeyUsage", err);
    sk_ASN1_OBJECT_free(eku);
    return rc;
}

/* RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bit string. */
static ASN1_OCTET_STRING *key_hash(X509 *x)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_pubkey_digest(x, EVP_sha1(), md, &n) != 1)
        return NULL;
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    if (os && ASN1_OCTET_STRING_set(os, md, (int)n) != 1) {
        ASN1_OCTET_STRING_free(os);
        return NULL;
    }
    return os;
}

int ca_add_key_ids(X509 *x, X509 *issuer, mesh_err *err)
{
    ASN1_OCTET_STRING *ski = key_hash(x);
    if (!ski)
        return mesh_err_openssl(err, MESH_ECRYPTO, "cannot compute subjectKeyIdentifier");
    int rc = add_ext(x, NID_subject_key_identifier, ski, 0, "cannot add subjectKeyIdentifier",
                     err);
    ASN1_OCTET_STRING_free(ski);
    if (rc != MESH_OK)
        return rc;

    /* Point at the issuer's own SKI when it has one, so path building matches
     * whatever method the issuer used (a plug-in CA may not use method 1). */
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    if (!akid)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    /* For a self-signed cert (issuer == x) the SKI just added is the same
     * hash; computing it again avoids reading x's extension cache while x
     * is still being built. */
    const ASN1_OCTET_STRING *issuer_ski = issuer == x ? NULL : X509_get0_subject_key_id(issuer);
    akid->keyid = issuer_ski ? ASN1_OCTET_STRING_dup(issuer_ski) : key_hash(issuer);
    if (!akid->keyid)
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "cannot compute authorityKeyIdentifier");
    else
        rc = add_ext(x, NID_authority_key_identifier, akid, 0,
                     "cannot add authorityKeyIdentifier", err);
    AUTHORITY_KEYID_free(akid);
    return rc;
}

/* A DNS SAN: letters, digits, '-', '.', with an optional leading "*.". */
static int dns_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    if (!*s || *s == '.')
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || (c == '.' && p[1] != '.' && p[1] != '\0');
        if (!ok)
            return 0;
    }
    return 1;
}

/* Appends one name of type GEN_URI, GEN_DNS or GEN_IPADD (s is then an IP
 * literal already checked by the caller). */
static int push_name(GENERAL_NAMES *gens, int type, const char *s, mesh_err *err)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_STRING *v = NULL;
    unsigned char ip[16];
    int iplen = 0;
    if (type == GEN_IPADD) {
        if (inet_pton(AF_INET, s, ip) == 1)
            iplen = 4;
        else if (inet_pton(AF_INET6, s, ip) == 1)
            iplen = 16;
        v = ASN1_OCTET_STRING_new();
    } else {
        v = ASN1_IA5STRING_new();
    }
    if (!g || !v) {
        GENERAL_NAME_free(g);
        ASN1_STRING_free(v);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    int ok = type == GEN_IPADD ? ASN1_OCTET_STRING_set(v, ip, iplen)
                               : ASN1_STRING_set(v, s, (int)strlen(s));
    if (ok != 1) {
        GENERAL_NAME_free(g);
        ASN1_STRING_free(v);
        return mesh_err_openssl(err, MESH_ECRYPTO, "cannot build subjectAltName");
    }
    GENERAL_NAME_set0_value(g, type, v);
    if (!sk_GENERAL_NAME_push(gens, g)) {
        GENERAL_NAME_free(g);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    return MESH_OK;
}

int ca_add_san(X509 *x, const char *uri, const char *const *dns_names, int critical,
               mesh_err *err)
{
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    if (!gens)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    int rc = push_name(gens, GEN_URI, uri, err);
    if (rc != MESH_OK)
        goto out;
    for (size_t i = 0; dns_names && dns_names[i]; i++) {
        const char *name = dns_names[i];
        unsigned char ip[16];
        int type;
        /* IP literals become iPAddress SANs: a client dialling 127.0.0.1
         * checks the IP SAN, not a DNS name. */
        if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1) {
            type = GEN_IPADD;
        } else if (dns_name_ok(name)) {
            type = GEN_DNS;
        } else {
            char q[128];
            rc = mesh_err_set(err, MESH_EINVAL,
                              "'%s' is neither a DNS name nor an IP address; cannot put it in a "
                              "certificate SAN",
                              ca_quote(name, q, sizeof q));
            goto out;
        }
        rc = push_name(gens, type, name, err);
        if (rc != MESH_OK)
            goto out;
    }
    rc = add_ext(x, NID_subject_alt_name, gens, critical, "cannot add subjectAltName", err);
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

const EVP_MD *ca_sign_digest(EVP_PKEY *key)
{
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC && EVP_PKEY_get_bits(key) >= 384)
        return EVP_sha384();
    return EVP_sha256();
}
