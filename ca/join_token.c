/* ca/join_token.c — one-time join tokens (see join_token.h).
 *
 * 32 bytes from RAND_bytes, shown once as "mjt_" + 43 base64url characters
 * (no padding). Only the SHA-256 hex of the whole token string reaches the
 * store, so a copy of the database does not let anyone join. The token
 * itself never appears in a log line or an error message. */
#include "ca/join_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca_internal.h"
#include "ca/spiffe_id.h"
#include "common/log.h"

#define TOKEN_PREFIX "mjt_"
#define TOKEN_PREFIX_LEN 4
#define TOKEN_RAW_BYTES 32
#define TOKEN_B64_LEN 43 /* ceil(32 * 8 / 6), unpadded */
#define TOKEN_LEN (TOKEN_PREFIX_LEN + TOKEN_B64_LEN)
#define TOKEN_MAX_TTL (30LL * 24 * 3600)

static void b64url_encode(const unsigned char *in, size_t n, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = alphabet[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
}

static int b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

void join_token_hash(const char *token, char out_hex[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    if (!token || EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL) != 1 ||
        n != sizeof md) {
        /* Cannot happen with the default provider; an impossible hash
         * matches no stored token. */
        out_hex[0] = '\0';
        return;
    }
    ca_hex(md, sizeof md, out_hex);
}

int join_token_create(mesh_store *st, const char *instance, const char *id_str,
                      int64_t ttl_seconds, char **token_out, mesh_err *err)
{
    *token_out = NULL;
    if (!instance)
        instance = "";
    if (!instance[0] && !id_str)
        return mesh_err_set(err, MESH_EINVAL, "join token: give an instance name or a SPIFFE ID");
    int rc = id_str ? spiffe_id_parse(id_str, NULL, err) : MESH_OK;
    if (rc != MESH_OK)
        return rc;
    if (ttl_seconds == 0)
        ttl_seconds = JOIN_TOKEN_DEFAULT_TTL;
    if (ttl_seconds < 0 || ttl_seconds > TOKEN_MAX_TTL)
        return mesh_err_set(err, MESH_EINVAL,
                            "join token TTL of %lld s is out of range (1 s to %lld s)",
                            (long long)ttl_seconds, TOKEN_MAX_TTL);

    /* No transaction of our own: callers such as 'meshctl workload add'
     * create the registration and its first token in one transaction of
     * theirs, and store transactions do not nest. */
    store_registration reg;
    rc = store_registration_get(st, instance, id_str, &reg, err);
    if (rc == MESH_ENOTFOUND) {
        if (instance[0])
            mesh_err_prefix(err, "no join token for instance %s", instance);
        else
            mesh_err_set(err, MESH_ENOTFOUND,
                         "no registration for %s; add it with 'meshctl workload add NAME --id %s'",
                         id_str, id_str);
        return rc;
    }
    if (rc != MESH_OK)
        return rc;

    unsigned char raw[TOKEN_RAW_BYTES];
    char *tok = NULL;
    if (RAND_bytes(raw, sizeof raw) != 1) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "random token generation failed");
        goto out;
    }
    if (!(tok = malloc(TOKEN_LEN + 1))) {
        OPENSSL_cleanse(raw, sizeof raw);
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(tok, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
    b64url_encode(raw, sizeof raw, tok + TOKEN_PREFIX_LEN);
    OPENSSL_cleanse(raw, sizeof raw);
    char hash[65];
    join_token_hash(tok, hash);
    int64_t expires = (int64_t)time(NULL) + ttl_seconds;
    if ((rc = store_token_add(st, hash, reg.spiffe_id, reg.name, expires, err)) != MESH_OK) {
        mesh_err_prefix(err, "storing the join token");
        OPENSSL_clear_free(tok, TOKEN_LEN + 1);
        tok = NULL;
        goto out;
    }
    char t[32];
    /* The hash prefix identifies the token in logs without revealing it. */
    log_info("ca", "join token for %s%s%s created (sha256 %.12s..., expires %s)",
             reg.name[0] ? reg.name : "", reg.name[0] ? " of " : "", reg.spiffe_id, hash,
             ca_fmt_time(expires, t, sizeof t));
    *token_out = tok;
out:
    store_registration_free(&reg);
    return rc;
}

int join_token_redeem(mesh_store *st, const char *token, int64_t now, char **spiffe_id_out,
                      char **instance_out, mesh_err *err)
{
    *spiffe_id_out = NULL;
    if (instance_out)
        *instance_out = NULL;
    if (!token || !token[0])
        return mesh_err_set(err, MESH_EINVAL, "join token is empty");
    /* A token read from a file or pasted often carries a trailing newline;
     * trimming it is harmless and spares the operator a confusing failure. */
    size_t len = strnlen(token, TOKEN_LEN + 8);
    while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r' ||
                       token[len - 1] == ' ' || token[len - 1] == '\t'))
        len--;
    if (len != TOKEN_LEN || strncmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
        return mesh_err_set(err, MESH_EINVAL,
                            "join token is malformed: expected 'mjt_' followed by %d base64url "
                            "characters",
                            TOKEN_B64_LEN);
    for (size_t i = TOKEN_PREFIX_LEN; i < len; i++)
        if (!b64url_char(token[i]))
            return mesh_err_set(err, MESH_EINVAL,
                                "join token is malformed: character %zu is not base64url", i + 1);
    char canon[TOKEN_LEN + 1];
    memcpy(canon, token, TOKEN_LEN);
    canon[TOKEN_LEN] = '\0';
    char hash[65];
    join_token_hash(canon, hash);
    OPENSSL_cleanse(canon, sizeof canon);
    char *instance = NULL;
    int rc = store_token_consume(st, hash, now, spiffe_id_out, &instance, err);
    if (rc == MESH_ENOTFOUND)
        return mesh_err_set(err, MESH_ENOTFOUND,
                            "join token is not known (mistyped, or its registration was removed); "
                            "ask for a new one with 'meshctl workload token'");
    if (rc == MESH_EEXPIRED)
        return mesh_err_set(err, MESH_EEXPIRED,
                            "join token has expired; ask for a new one with 'meshctl workload token'");
    if (rc == MESH_EPERM)
        return mesh_err_set(err, MESH_EPERM,
                            "join token was already used; tokens work once (renewals use the "
                            "current SVID). Ask for a new one if this workload lost its key");
    if (rc != MESH_OK)
        return rc;
    log_info("ca", "join token (sha256 %.12s...) redeemed for %s%s%s", hash,
             instance[0] ? instance : "", instance[0] ? " of " : "", *spiffe_id_out);
    if (instance_out)
        *instance_out = instance;
    else
        free(instance);
    return MESH_OK;
}
