/* sidecar/xds_persist.c — on-disk copy of the last accepted xDS resources (see xds_persist.h). */
#include "sidecar/xds_persist.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sidecar/tls_util.h"

#define PERSIST_MAGIC "MXDS1"
#define PERSIST_MAX (64u * 1024 * 1024)

static const char *const file_names[XDSC_TYPE_COUNT] = {
    [XDSC_SDS] = "xds-sds.pb", [XDSC_CDS] = "xds-cds.pb", [XDSC_EDS] = "xds-eds.pb",
    [XDSC_LDS] = "xds-lds.pb", [XDSC_RDS] = "xds-rds.pb",
};

const char *xdsc_persist_file(enum xdsc_type t)
{
    return (unsigned)t < XDSC_TYPE_COUNT ? file_names[t] : NULL;
}

static int type_path(const char *dir, enum xdsc_type t, char *buf, size_t len, mesh_err *err)
{
    int n = snprintf(buf, len, "%s/%s", dir, file_names[t]);
    if (n < 0 || (size_t)n >= len)
        return mesh_err_set(err, MESH_EINVAL, "state directory path is too long");
    return MESH_OK;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int xdsc_write_file_atomic(const char *path, const void *data, size_t len, mesh_err *err)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return mesh_err_set(err, MESH_EINVAL, "path too long: %s", path);
    unlink(tmp);   /* a leftover of a crashed earlier run with the same pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return mesh_err_set(err, MESH_EIO, "cannot create %s: %s", tmp, strerror(errno));
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return mesh_err_set(err, MESH_EIO, "cannot write %s: %s", tmp, strerror(e));
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return mesh_err_set(err, MESH_EIO, "cannot write %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mesh_err_set(err, MESH_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    /* The rename is durable only once the directory entry is. */
    char dcopy[4096];
    snprintf(dcopy, sizeof dcopy, "%s", path);
    int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return MESH_OK;
}

int xdsc_read_file(const char *path, size_t max, char **out, size_t *len_out, mesh_err *err)
{
    *out = NULL;
    if (len_out)
        *len_out = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return mesh_err_set(err, MESH_ENOTFOUND, "%s does not exist", path);
        return mesh_err_set(err, MESH_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mesh_err_set(err, MESH_EIO, "%s is not a regular file", path);
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return mesh_err_set(err, MESH_EINVAL, "%s is larger than %zu bytes", path, max);
    }
    size_t cap = (size_t)st.st_size;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory reading %s", path);
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    if (len_out)
        *len_out = got;
    return MESH_OK;
}

int xdsc_persist_save(const char *dir, enum xdsc_type t, const char *version,
                      const xdsc_resource *res, size_t n, mesh_err *err)
{
    char path[4096];
    int rc = type_path(dir, t, path, sizeof path, err);
    if (rc != MESH_OK)
        return rc;
    Google__Protobuf__Any *anys = calloc(n ? n : 1, sizeof *anys);
    Google__Protobuf__Any **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!anys || !ptrs) {
        free(anys);
        free(ptrs);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        google__protobuf__any__init(&anys[i]);
        anys[i].type_url = (char *)xdsc_type_url(t);
        anys[i].value.data = res[i].data;
        anys[i].value.len = res[i].len;
        ptrs[i] = &anys[i];
    }
    Envoy__Service__Discovery__V3__DiscoveryResponse resp =
        ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
    resp.version_info = (char *)(version ? version : "");
    resp.type_url = (char *)xdsc_type_url(t);
    resp.resources = ptrs;
    resp.n_resources = n;
    size_t plen = envoy__service__discovery__v3__discovery_response__get_packed_size(&resp);
    char header[128];
    uint8_t *buf = malloc(plen + sizeof header);
    if (!buf) {
        free(anys);
        free(ptrs);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    envoy__service__discovery__v3__discovery_response__pack(&resp, buf + sizeof header);
    free(anys);
    free(ptrs);
    char hex[65];
    if (tls_sha256_hex(buf + sizeof header, plen, hex) != MESH_OK) {
        free(buf);
        return mesh_err_set(err, MESH_ECRYPTO, "SHA-256 failed");
    }
    int hl = snprintf(header, sizeof header, "%s %s %zu\n", PERSIST_MAGIC, hex, plen);
    /* Move the header right in front of the payload. */
    uint8_t *start = buf + sizeof header - (size_t)hl;
    memcpy(start, header, (size_t)hl);
    rc = xdsc_write_file_atomic(path, start, (size_t)hl + plen, err);
    free(buf);
    return rc;
}

int xdsc_persist_load(const char *dir, enum xdsc_type t,
                      Envoy__Service__Discovery__V3__DiscoveryResponse **out, mesh_err *err)
{
    *out = NULL;
    char path[4096];
    int rc = type_path(dir, t, path, sizeof path, err);
    if (rc != MESH_OK)
        return rc;
    char *buf = NULL;
    size_t len = 0;
    rc = xdsc_read_file(path, PERSIST_MAX, &buf, &len, err);
    if (rc != MESH_OK)
        return rc;
    char magic[8] = "", hex[65] = "";
    size_t plen = 0;
    int consumed = 0;
    char *nl = memchr(buf, '\n', len < 128 ? len : 128);
    if (!nl || sscanf(buf, "%7s %64s %zu%n", magic, hex, &plen, &consumed) != 3 ||
        strcmp(magic, PERSIST_MAGIC) != 0 || buf + consumed != nl) {
        free(buf);
        return mesh_err_set(err, MESH_ECORRUPT, "%s: not a persisted xDS file (bad header); "
                            "delete it to start that type empty", path);
    }
    const uint8_t *payload = (const uint8_t *)nl + 1;
    size_t have = len - (size_t)(payload - (const uint8_t *)buf);
    char got[65];
    if (have != plen || tls_sha256_hex(payload, plen, got) != MESH_OK || strcmp(got, hex) != 0) {
        free(buf);
        return mesh_err_set(err, MESH_ECORRUPT, "%s: truncated or damaged (%zu of %zu payload "
                            "bytes, checksum %s); it will be rewritten from meshd", path, have,
                            plen, have == plen ? "mismatch" : "not checked");
    }
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, plen, payload);
    free(buf);
    if (!r)
        return mesh_err_set(err, MESH_ECORRUPT, "%s: payload does not decode", path);
    if (strcmp(r->type_url, xdsc_type_url(t)) != 0) {
        envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
        return mesh_err_set(err, MESH_ECORRUPT, "%s: holds another type's resources", path);
    }
    *out = r;
    return MESH_OK;
}

void xdsc_persist_clear(const char *dir)
{
    char path[4096];
    for (int t = 0; t < XDSC_TYPE_COUNT; t++)
        if (type_path(dir, (enum xdsc_type)t, path, sizeof path, NULL) == MESH_OK)
            unlink(path);
}
