/* ca/join_token.c — one-time join tokens (see join_token.h).
 *
 * 32 bytes from RAND_bytes, shown once as "mjt_" + 43 base64url characters
 * (no padding), followed by the pins of the CA roots (join_token.h). Only the
 * SHA-256 hex of the secret part reaches the store, so a copy of the database
 * does not let anyone join. The secret never appears in a log line or an
 * error message. */
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

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* 43 unpadded base64url characters -> 32 bytes; -1 if not exactly that. */
static int b64url_decode32(const char *in, unsigned char out[32])
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < TOKEN_B64_LEN; i++) {
        int v = b64url_value(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o < 32)
                out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* 43 * 6 = 258 bits: 256 of data and 2 that must be zero. */
    return o == 32 && acc == 0 ? 0 : -1;
}

int join_token_parse(const char *token, join_token_parts *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    if (!token || !token[0])
        return mesh_err_set(err, MESH_EINVAL, "join token is empty");
    /* A token read from a file or pasted often carries a trailing newline;
     * trimming it is harmless and spares the operator a confusing failure. */
    while (*token == ' ' || *token == '\t' || *token == '\r' || *token == '\n')
        token++;
    size_t max = TOKEN_LEN + JOIN_TOKEN_MAX_PINS * (1 + TOKEN_B64_LEN);
    size_t len = strnlen(token, max + 8);
    while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r' ||
                       token[len - 1] == ' ' || token[len - 1] == '\t'))
        len--;
    size_t pins = len > TOKEN_LEN ? (len - TOKEN_LEN) / (1 + TOKEN_B64_LEN) : 0;
    if (len < TOKEN_LEN || len > max || len != TOKEN_LEN + pins * (1 + TOKEN_B64_LEN) ||
        strncmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
        return mesh_err_set(err, MESH_EINVAL,
                            "join token is malformed: expected 'mjt_' followed by %d base64url "
                            "characters (and '.' + %d more per pinned CA root)",
                            TOKEN_B64_LEN, TOKEN_B64_LEN);
    for (size_t i = TOKEN_PREFIX_LEN; i < TOKEN_LEN; i++)
        if (!b64url_char(token[i]))
            return mesh_err_set(err, MESH_EINVAL,
                                "join token is malformed: character %zu is not base64url", i + 1);
    memcpy(out->secret, token, TOKEN_LEN);
    out->secret[TOKEN_LEN] = '\0';
    for (size_t p = 0; p < pins; p++) {
        const char *pin = token + TOKEN_LEN + p * (1 + TOKEN_B64_LEN);
        unsigned char raw[32];
        if (pin[0] != '.' || b64url_decode32(pin + 1, raw) != 0) {
            OPENSSL_cleanse(out, sizeof *out);
            return mesh_err_set(err, MESH_EINVAL,
                                "join token is malformed: CA pin %zu is not '.' + %d base64url "
                                "characters of a SHA-256",
                                p + 1, TOKEN_B64_LEN);
        }
        ca_hex(raw, sizeof raw, out->pins_hex[p]);
    }
    out->n_pins = pins;
    return MESH_OK;
}

/* ".<b64url>" for each root to pin: the active CA's, then a prepared one's. */
static int token_pins(mesh_store *st, char *out, size_t len, mesh_err *err)
{
    out[0] = '\0';
    store_ca *list = NULL;
    size_t n = 0;
    int rc = store_ca_list(st, &list, &n, err);
    if (rc != MESH_OK)
        return rc;
    size_t off = 0, pinned = 0;
    static const char *const order[] = {CA_STATE_ACTIVE, CA_STATE_PREPARED};
    for (size_t k = 0; k < 2 && rc == MESH_OK; k++) {
        for (size_t i = 0; i < n && rc == MESH_OK && pinned < JOIN_TOKEN_MAX_PINS; i++) {
            if (strcmp(list[i].state, order[k]) != 0)
                continue;
            char hex[65];
            unsigned char raw[32];
            if ((rc = ca_root_info(&list[i], NULL, hex, err)) != MESH_OK)
                break;
            for (size_t b = 0; b < 32; b++) {
                unsigned int v = 0;
                sscanf(hex + 2 * b, "%2x", &v);
                raw[b] = (unsigned char)v;
            }
            if (off + 1 + TOKEN_B64_LEN + 1 > len)
                break;
            out[off++] = '.';
            b64url_encode(raw, sizeof raw, out + off);
            off += TOKEN_B64_LEN;
            pinned++;
        }
    }
    store_ca_free_list(list, n);
    return rc;
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
    size_t tok_cap = 0;
    if (RAND_bytes(raw, sizeof raw) != 1) {
        rc = mesh_err_openssl(err, MESH_ECRYPTO, "random token generation failed");
        goto out;
    }
    char pins[JOIN_TOKEN_MAX_PINS * (1 + TOKEN_B64_LEN) + 1];
    if ((rc = token_pins(st, pins, sizeof pins, err)) != MESH_OK) {
        OPENSSL_cleanse(raw, sizeof raw);
        mesh_err_prefix(err, "pinning the CA root in the join token");
        goto out;
    }
    tok_cap = TOKEN_LEN + strlen(pins) + 1;
    if (!(tok = malloc(tok_cap))) {
        OPENSSL_cleanse(raw, sizeof raw);
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(tok, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
    b64url_encode(raw, sizeof raw, tok + TOKEN_PREFIX_LEN);
    OPENSSL_cleanse(raw, sizeof raw);
    char hash[65];
    join_token_hash(tok, hash);   /* the secret part only */
    memcpy(tok + TOKEN_LEN, pins, strlen(pins) + 1);
    int64_t expires = (int64_t)time(NULL) + ttl_seconds;
    if ((rc = store_token_add(st, hash, reg.spiffe_id, reg.name, expires, err)) != MESH_OK) {
        mesh_err_prefix(err, "storing the join token");
        OPENSSL_clear_free(tok, tok_cap);
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
    join_token_parts parts;
    int prc = join_token_parse(token, &parts, err);
    if (prc != MESH_OK)
        return prc;
    char hash[65];
    join_token_hash(parts.secret, hash);
    OPENSSL_cleanse(&parts, sizeof parts);
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
