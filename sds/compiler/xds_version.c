/* sds/compiler/xds_version.c — SHA-256-truncated content versions (see xds_version.h). */
#include "sds/compiler/xds_version.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

static int hash_parts(const void *a, size_t alen, const void *b, size_t blen, uint64_t *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    if (ok && alen > 0)
        ok = EVP_DigestUpdate(ctx, a, alen) == 1;
    if (ok && blen > 0)
        ok = EVP_DigestUpdate(ctx, b, blen) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= 8;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | md[i];
    *out = v;
    return 0;
}

int xds_hash64(const void *data, size_t len, uint64_t *out)
{
    return hash_parts(data, len, NULL, 0, out);
}

int xds_hash64_named(const char *name, const void *data, size_t len, uint64_t *out)
{
    /* The NUL keeps ("ab", "c...") apart from ("a", "bc..."). */
    return hash_parts(name, strlen(name) + 1, data, len, out);
}

void xds_version_format(uint64_t v, char out[XDS_VERSION_LEN + 1])
{
    snprintf(out, XDS_VERSION_LEN + 1, "%016llx", (unsigned long long)v);
}

int xds_version_parse(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;
    for (i = 0; i < XDS_VERSION_LEN; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return -1;
        v = (v << 4) | (uint64_t)d;
    }
    if (s[i] != '\0')
        return -1;
    *out = v;
    return 0;
}

void xds_version_of(const void *data, size_t len, char out[XDS_VERSION_LEN + 1])
{
    uint64_t v;
    if (xds_hash64(data, len, &v) == 0)
        xds_version_format(v, out);
    else
        snprintf(out, XDS_VERSION_LEN + 1, "unhashed-%07zu", len % 10000000);
}
