/* ca/ca_spki.c — putting the subject's public key into a leaf, and the
 * SubjectPublicKeyInfo fingerprint the store records.
 *
 * Why this is not just X509_set_pubkey: with OpenSSL 3.0 providers,
 * X509_set_pubkey encodes the EVP_PKEY with a freshly set-up OSSL_ENCODER
 * and parses the result back with a freshly set-up OSSL_DECODER, and
 * i2d_PUBKEY (the old fingerprint) sets up yet another encoder. Those
 * set-ups walk every provider's (de)coder and dominated the CPU of an
 * issuance (about half of it, by callgrind), far above the ECDSA maths.
 *
 * For the common case, an EC P-256/P-384 key on a named curve with an
 * uncompressed point (every key meshd's sidecars and `openssl req` make),
 * the SPKI is fully described by three facts: the algorithm
 * (id-ecPublicKey), the curve OID and the point octets. We write exactly
 * those into the leaf with X509_PUBKEY_set0_param. They come from the CSR's
 * already-parsed X509_PUBKEY when there is one (no provider call at all),
 * else from the key's own parameters (group name, encoding, encoded point:
 * cheap provider getters, no encoder). The bytes are identical to what the
 * provider encoder writes for that key (RFC 5480: named curve OID, point in
 * the key's own form; OpenSSL checked when the key was parsed that the
 * point is on the curve with coordinates below the field prime, so its
 * octets are the canonical ones), which tests/unit/test_ca_issue.c checks
 * against i2d_PUBKEY for every issuing path. Every other key (RSA,
 * compressed points, explicit curve parameters, a legacy key whose
 * parameters cannot be read) keeps the general X509_set_pubkey path, so its
 * output is unchanged by construction.
 *
 * The fingerprint is the SHA-256 of the leaf's own encoded SPKI: the key as
 * the certificate carries it, the same bytes as i2d_PUBKEY of the key. */
#include "ca/ca_internal.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <string.h>

/* Longest uncompressed point we take the fast path for (P-384). */
#define EC_POINT_MAX (1 + 2 * 48)

/* The EC curves a leaf may use, with the length of an uncompressed point
 * (0x04 || X || Y) on each. */
static size_t ec_uncompressed_len(int curve_nid)
{
    switch (curve_nid) {
    case NID_X9_62_prime256v1: return 1 + 2 * 32;
    case NID_secp384r1: return 1 + 2 * 48;
    default: return 0;
    }
}

/* The curve NID when spki is an EC key on a named P-256/P-384 curve with an
 * uncompressed point of the right length (point and point_len set), else
 * NID_undef: the caller then takes the general path. */
static int canonical_ec_spki(const X509_PUBKEY *spki, const unsigned char **point,
                             int *point_len)
{
    ASN1_OBJECT *alg_obj = NULL;
    X509_ALGOR *alg = NULL;
    const unsigned char *pk = NULL;
    int pk_len = 0;
    if (!spki || X509_PUBKEY_get0_param(&alg_obj, &pk, &pk_len, &alg, spki) != 1 || !alg ||
        OBJ_obj2nid(alg_obj) != NID_X9_62_id_ecPublicKey)
        return NID_undef;
    const ASN1_OBJECT *param_alg = NULL;
    const void *param = NULL;
    int param_type = V_ASN1_UNDEF;
    X509_ALGOR_get0(&param_alg, &param_type, &param, alg);
    if (param_type != V_ASN1_OBJECT || !param)
        return NID_undef; /* explicit parameters (or none): general path */
    int curve = OBJ_obj2nid((const ASN1_OBJECT *)param);
    size_t want = ec_uncompressed_len(curve);
    if (want == 0 || !pk || pk_len < 0 || (size_t)pk_len != want || pk[0] != 0x04)
        return NID_undef;
    *point = pk;
    *point_len = pk_len;
    return curve;
}

/* The same facts read from an EVP_PKEY (no CSR at hand: same-key rotation,
 * meshd's own key): curve NID, or NID_undef for anything but a named
 * P-256/P-384 curve with an uncompressed point. point must hold
 * EC_POINT_MAX bytes. Getter failures only mean "take the general path". */
static int canonical_ec_pkey(EVP_PKEY *pk, unsigned char *point, int *point_len)
{
    if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC)
        return NID_undef;
    char group[64] = "", encoding[32] = "", format[32] = "";
    size_t n = 0;
    /* The encoded-point getter always answers uncompressed; the encoder
     * writes the key's own point format, so that is checked separately. */
    int ok = EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            NULL) == 1 &&
             EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_ENCODING, encoding,
                                            sizeof encoding, NULL) == 1 &&
             EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                            format, sizeof format, NULL) == 1 &&
             EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                             EC_POINT_MAX, &n) == 1;
    if (!ok) {
        ERR_clear_error();
        return NID_undef;
    }
    int curve = OBJ_sn2nid(group);
    size_t want = ec_uncompressed_len(curve);
    if (strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP) != 0 ||
        strcmp(format, OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) != 0 || want == 0 ||
        n != want || point[0] != 0x04)
        return NID_undef;
    *point_len = (int)n;
    return curve;
}

/* Writes id-ecPublicKey + named curve + point into the leaf's (empty) SPKI. */
static int set_ec_spki(X509 *x, int curve, const unsigned char *point, int point_len,
                       mesh_err *err)
{
    X509_PUBKEY *dst = X509_get_X509_PUBKEY(x);
    unsigned char *copy = OPENSSL_memdup(point, (size_t)point_len);
    if (!dst || !copy) {
        OPENSSL_free(copy);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    /* OBJ_nid2obj returns OpenSSL's static objects for built-in NIDs; the
     * X509_ALGOR may "free" them, which is a no-op for static objects. */
    if (X509_PUBKEY_set0_param(dst, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                               OBJ_nid2obj(curve), copy, point_len) != 1) {
        /* set0 took the buffer only if the key bits now point at it. */
        const unsigned char *now = NULL;
        int now_len = 0;
        if (X509_PUBKEY_get0_param(NULL, &now, &now_len, NULL, dst) != 1 || now != copy)
            OPENSSL_free(copy);
        return mesh_err_openssl(err, MESH_ECRYPTO, "cannot set the SVID public key");
    }
    return MESH_OK;
}

int ca_leaf_set_pubkey(X509 *x, EVP_PKEY *pubkey, const X509_PUBKEY *spki, mesh_err *err)
{
    const unsigned char *point = NULL;
    unsigned char buf[EC_POINT_MAX];
    int point_len = 0;
    int curve = canonical_ec_spki(spki, &point, &point_len);
    if (curve == NID_undef && !spki) {
        curve = canonical_ec_pkey(pubkey, buf, &point_len);
        point = buf;
    }
    if (curve != NID_undef)
        return set_ec_spki(x, curve, point, point_len, err);
    if (X509_set_pubkey(x, pubkey) != 1)
        return mesh_err_openssl(err, MESH_ECRYPTO, "cannot set the SVID public key");
    return MESH_OK;
}

int ca_leaf_spki_sha256_hex(X509 *x, char out_hex[65], mesh_err *err)
{
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    return ca_der_sha256_hex(der, n, "cannot encode the SVID public key", out_hex, err);
}
