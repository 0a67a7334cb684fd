/* ca/ca_util.c — small string, time and file helpers for the CA module. */
#include "ca/ca_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *ca_quote(const char *s, char *buf, size_t len)
{
    if (len == 0)
        return "";
    if (!s) {
        snprintf(buf, len, "(null)");
        return buf;
    }
    /* Keep room for "..." when the input is longer than the buffer. */
    size_t max = len > 4 ? len - 4 : len - 1;
    size_t i = 0;
    for (; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s[i] && len > 4) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

const char *ca_fmt_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(buf, len, "@%lld", (long long)t);
        return buf;
    }
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void ca_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

int ca_read_file(const char *path, size_t max_bytes, char **out, mesh_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mesh_err_set(err, errno == ENOENT ? MESH_ENOTFOUND : MESH_EIO,
                            "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return mesh_err_set(err, MESH_EINVAL, "%s is not a regular file", path);
    }
    if ((size_t)sb.st_size > max_bytes) {
        close(fd);
        return mesh_err_set(err, MESH_EINVAL, "%s is too large (%lld bytes, limit %zu)", path,
                            (long long)sb.st_size, max_bytes);
    }
    size_t cap = (size_t)sb.st_size + 1;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory reading %s", path);
    }
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return mesh_err_set(err, MESH_EIO, "cannot read %s: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    return MESH_OK;
}

int ca_bio_to_string(BIO *bio, char **out, mesh_err *err)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n < 0)
        return mesh_err_set(err, MESH_ECRYPTO, "cannot read memory BIO");
    char *s = malloc((size_t)n + 1);
    if (!s)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    if (n > 0)
        memcpy(s, data, (size_t)n);
    s[n] = '\0';
    *out = s;
    return MESH_OK;
}

int ca_der_sha256_hex(unsigned char *der, int n, const char *what, char out_hex[65],
                      mesh_err *err)
{
    if (n <= 0)
        return mesh_err_openssl(err, MESH_ECRYPTO, what);
    unsigned char md[32];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (ok != 1 || mdlen != sizeof md)
        return mesh_err_openssl(err, MESH_ECRYPTO, "SHA-256 failed");
    ca_hex(md, sizeof md, out_hex);
    return MESH_OK;
}
