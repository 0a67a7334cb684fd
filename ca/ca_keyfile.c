/* ca/ca_keyfile.c — the CA private key on disk.
 *
 * The key is the one secret meshd holds. It lives in a 0600 file inside a
 * directory nobody else can write to; it is created with O_EXCL (never
 * overwriting a key that may still sign live certs), fsynced before the
 * store records its path, and refused at load time if its permissions were
 * loosened. Its bytes never reach an error message or a log line. */
#include "ca/ca_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/csr.h"

#define KEY_FILE_MAX (64 * 1024)

static int mkdir_one(const char *path, mesh_err *err)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return MESH_OK;
    return mesh_err_set(err, MESH_EIO, "cannot create key directory %s: %s", path,
                        strerror(errno));
}

int ca_keydir_prepare(const char *dir, mesh_err *err)
{
    if (!dir || !dir[0])
        return mesh_err_set(err, MESH_EINVAL, "no CA key directory given");
    char buf[PATH_MAX];
    if (strlen(dir) >= sizeof buf)
        return mesh_err_set(err, MESH_EINVAL, "CA key directory path is too long");
    snprintf(buf, sizeof buf, "%s", dir);
    /* mkdir -p, every created level 0700. */
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir_one(buf, err);
        *p = '/';
        if (rc != MESH_OK)
            return rc;
    }
    int rc = mkdir_one(buf, err);
    if (rc != MESH_OK)
        return rc;
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return mesh_err_set(err, MESH_EIO, "cannot stat key directory %s: %s", dir,
                            strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return mesh_err_set(err, MESH_EINVAL, "CA key directory %s is not a directory", dir);
    if (sb.st_mode & (S_IWGRP | S_IWOTH))
        return mesh_err_set(err, MESH_EPERM,
                            "CA key directory %s (mode %04o) is writable by group or others, who "
                            "could replace the key; use a private directory (chmod 700 %s)",
                            dir, (unsigned)(sb.st_mode & 07777), dir);
    return MESH_OK;
}

static int fsync_parent(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int ca_keyfile_write(const char *path, EVP_PKEY *key, mesh_err *err)
{
    char *pem = NULL;
    int rc = pem_write_private_key(key, &pem, err);
    if (rc != MESH_OK)
        return rc;
    size_t len = strlen(pem);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        OPENSSL_clear_free(pem, len);
        if (e == EEXIST)
            return mesh_err_set(err, MESH_EEXISTS,
                                "CA key file %s already exists; refusing to overwrite it", path);
        return mesh_err_set(err, MESH_EIO, "cannot create CA key file %s: %s", path,
                            strerror(e));
    }
    /* The umask may only have removed bits; make the mode exactly 0600. */
    if (fchmod(fd, 0600) != 0) {
        rc = mesh_err_set(err, MESH_EIO, "cannot chmod CA key file %s: %s", path,
                          strerror(errno));
        goto fail;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, pem + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = mesh_err_set(err, MESH_EIO, "cannot write CA key file %s: %s", path,
                              n < 0 ? strerror(errno) : "short write");
            goto fail;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = mesh_err_set(err, MESH_EIO, "cannot fsync CA key file %s: %s", path,
                          strerror(errno));
        goto fail;
    }
    close(fd);
    OPENSSL_clear_free(pem, len);
    /* The store will record this path; the name must survive a crash too. */
    if (fsync_parent(path) != 0) {
        rc = mesh_err_set(err, MESH_EIO, "cannot fsync the directory of %s: %s", path,
                          strerror(errno));
        unlink(path);
        return rc;
    }
    return MESH_OK;
fail:
    close(fd);
    unlink(path);
    OPENSSL_clear_free(pem, len);
    return rc;
}

int ca_keyfile_load(const char *path, EVP_PKEY **out, mesh_err *err)
{
    *out = NULL;
    if (!path || !path[0])
        return mesh_err_set(err, MESH_ECORRUPT, "the store records no CA key file path");
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return mesh_err_set(err, MESH_ENOTFOUND,
                                "CA key file %s is missing; restore it from backup (the CA cannot "
                                "sign without it)",
                                path);
        if (e == EACCES)
            return mesh_err_set(err, MESH_EPERM,
                                "CA key file %s is not readable by this user (uid %d)", path,
                                (int)geteuid());
        if (e == ELOOP)
            return mesh_err_set(err, MESH_EPERM,
                                "CA key file %s is a symbolic link; refusing to follow it", path);
        return mesh_err_set(err, MESH_EIO, "cannot open CA key file %s: %s", path, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return mesh_err_set(err, MESH_EIO, "cannot stat CA key file %s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return mesh_err_set(err, MESH_EINVAL, "CA key file %s is not a regular file", path);
    }
    if (sb.st_mode & 077) {
        close(fd);
        return mesh_err_set(err, MESH_EPERM,
                            "CA key file %s has mode %04o, which lets group or others read it; "
                            "refusing to use it. Fix with 'chmod 600 %s' (and consider the key "
                            "exposed if others could read it)",
                            path, (unsigned)(sb.st_mode & 07777), path);
    }
    if (sb.st_size <= 0 || sb.st_size > KEY_FILE_MAX) {
        close(fd);
        return mesh_err_set(err, MESH_EINVAL, "CA key file %s has an implausible size (%lld bytes)",
                            path, (long long)sb.st_size);
    }
    size_t cap = (size_t)sb.st_size + 1;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    size_t got = 0;
    int rc = MESH_OK;
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = mesh_err_set(err, MESH_EIO, "cannot read CA key file %s: %s", path,
                              strerror(errno));
            break;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    if (rc == MESH_OK) {
        rc = pem_read_private_key(buf, out, err);
        if (rc != MESH_OK)
            mesh_err_prefix(err, "CA key file %s", path);
    }
    OPENSSL_clear_free(buf, cap);
    return rc;
}

/* Is the key file dir/name recorded by a CA of st? */
static int key_claimed(mesh_store *st, const char *dir_abs, const char *name)
{
    if (!st)
        return 0;
    store_ca *list = NULL;
    size_t n = 0;
    if (store_ca_list(st, &list, &n, NULL) != MESH_OK)
        return 0;
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", dir_abs, name);
    int claimed = 0;
    for (size_t i = 0; i < n && !claimed; i++)
        claimed = list[i].key_path && strcmp(list[i].key_path, path) == 0;
    store_ca_free_list(list, n);
    return claimed;
}

int ca_keydir_check_unclaimed(const char *dir, mesh_store *st, mesh_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return MESH_OK; /* missing: nothing in it; created later */
    char dir_abs[PATH_MAX];
    if (!realpath(dir, dir_abs))
        snprintf(dir_abs, sizeof dir_abs, "%s", dir);
    int rc = MESH_OK;
    struct dirent *de;
    while (rc == MESH_OK && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 8 || strncmp(de->d_name, "ca-", 3) != 0 ||
            strcmp(de->d_name + len - 4, ".key") != 0 || key_claimed(st, dir_abs, de->d_name))
            continue;
        rc = mesh_err_set(err, MESH_EEXISTS,
                          "key directory %s already holds a CA key (%s) that this store does "
                          "not use: a CA existed here before, and its store may be lost. "
                          "Restore that store ('meshctl store restore BACKUP') instead of "
                          "creating a new CA; if this is meant to be a separate CA, give it "
                          "its own --key-dir",
                          dir_abs, de->d_name);
    }
    closedir(d);
    return rc;
}
