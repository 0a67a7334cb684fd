/* sidecar/cert_pool_file.c — persisting the cert pool (cert_pool_save/load).
 *
 * Why: a sidecar restarted while meshd is unreachable must keep serving until
 * its SVID expires (Istio keeps certs only in memory). One text file, written
 * atomically, mode 0600 because it holds the private key:
 *
 *     meshd-cert-pool 1
 *     # holds this sidecar's private key; keep it mode 0600
 *     [current-key]     PEM PKCS#8 key
 *     [current-chain]   PEM certificates, leaf first
 *     [next-key] [next-chain] [pending-key]   (when present)
 *     [bundle]          PEM roots
 *     [crl]             PEM X509 CRLs from ROOTCA (when any), so revocations hold
 *                       across a restart during a meshd outage
 *     sha256 <hex of every byte above this line>
 *
 * The trailing digest turns a truncated write or a hand edit into a clear
 * "corrupt" error instead of a half-loaded identity. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "sidecar/cert_pool.h"
#include "sidecar/cert_pool_internal.h"
#include "sidecar/tls_crl.h"
#include "sidecar/tls_util.h"

#define CP_MAGIC "meshd-cert-pool 1\n"
#define CP_MAX_FILE (4 * 1024 * 1024)

/* A growable byte buffer whose contents are wiped on free (it holds keys). */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *np = malloc(ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        if (b->p) {
            memcpy(np, b->p, b->len);
            OPENSSL_cleanse(b->p, b->cap);
            free(b->p);
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_free(sbuf *b)
{
    if (b->p) {
        OPENSSL_cleanse(b->p, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof *b);
}

/* Appends "[name]\n<pem>" with the PEM freed (and wiped if secret). */
static void add_section(sbuf *b, const char *name, char *pem, bool secret)
{
    if (!pem) {
        b->oom = true;
        return;
    }
    sb_str(b, "[");
    sb_str(b, name);
    sb_str(b, "]\n");
    sb_str(b, pem);
    if (secret)
        OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cert_pool_save(cert_pool *p, const char *path, mesh_err *err)
{
    sbuf b = {0};
    sb_str(&b, CP_MAGIC);
    sb_str(&b, "# holds this sidecar's private key; keep it mode 0600\n");
    pthread_mutex_lock(&p->mu);
    if (p->cur) {
        add_section(&b, "current-key", tls_key_to_pem(p->cur->key), true);
        add_section(&b, "current-chain", tls_certs_to_pem(p->cur->chain), false);
    }
    if (p->next) {
        add_section(&b, "next-key", tls_key_to_pem(p->next->key), true);
        add_section(&b, "next-chain", tls_certs_to_pem(p->next->chain), false);
    }
    if (p->pending_key)
        add_section(&b, "pending-key", tls_key_to_pem(p->pending_key), true);
    if (p->bundle)
        add_section(&b, "bundle", tls_certs_to_pem(p->bundle), false);
    if (p->crls && sk_X509_CRL_num(p->crls) > 0)
        add_section(&b, "crl", tls_crls_to_pem(p->crls), false);
    pthread_mutex_unlock(&p->mu);
    if (b.oom) {
        sb_free(&b);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory serialising the cert pool");
    }
    char hex[65];
    tls_sha256_hex(b.p, b.len, hex);
    sb_str(&b, "sha256 ");
    sb_str(&b, hex);
    sb_str(&b, "\n");

    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    char *dircopy = strdup(path);
    if (!tmp || !dircopy || b.oom) {
        free(tmp);
        free(dircopy);
        sb_free(&b);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory saving the cert pool");
    }
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    int rc = MESH_OK;
    int fd = mkstemp(tmp);     /* created 0600 */
    if (fd < 0) {
        rc = mesh_err_set(err, MESH_EIO, "cannot create %s: %s (does the directory exist and "
                          "is it writable?)", tmp, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, b.p, b.len) != 0 || fsync(fd) != 0) {
        rc = mesh_err_set(err, MESH_EIO, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0) {
        rc = mesh_err_set(err, MESH_EIO, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = mesh_err_set(err, MESH_EIO, "cannot rename %s to %s: %s", tmp, path,
                          strerror(errno));
        unlink(tmp);
        goto out;
    }
    /* Make the rename itself durable. */
    int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    free(tmp);
    free(dircopy);
    sb_free(&b);
    return rc;
}

/* ---- loading ---------------------------------------------------------------- */

static int read_file(const char *path, sbuf *b, mesh_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return mesh_err_set(err, MESH_ENOTFOUND, "cert pool file %s does not exist", path);
        return mesh_err_set(err, MESH_EIO, "cannot open cert pool file %s: %s", path,
                            strerror(errno));
    }
    struct stat st;
    int rc = MESH_OK;
    if (fstat(fd, &st) != 0) {
        rc = mesh_err_set(err, MESH_EIO, "cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = mesh_err_set(err, MESH_EINVAL, "cert pool %s is not a regular file", path);
    } else if (st.st_mode & 077) {
        /* Like ssh with its keys: a key others could read may be stolen. */
        rc = mesh_err_set(err, MESH_EPERM, "cert pool file %s has mode %04o; it holds a private "
                          "key and must not be accessible to group/others (chmod 600 it, and "
                          "consider the key compromised if others could read it)", path,
                          (unsigned)(st.st_mode & 07777));
    } else if (st.st_size > CP_MAX_FILE) {
        rc = mesh_err_set(err, MESH_ECORRUPT, "cert pool file %s is %lld bytes; too large to be "
                          "ours", path, (long long)st.st_size);
    }
    if (rc != MESH_OK) {
        close(fd);
        return rc;
    }
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = mesh_err_set(err, MESH_EIO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        sb_add(b, chunk, (size_t)n);
        if (b->len > CP_MAX_FILE) {
            rc = mesh_err_set(err, MESH_ECORRUPT, "cert pool file %s grew past %d bytes", path,
                              CP_MAX_FILE);
            break;
        }
    }
    OPENSSL_cleanse(chunk, sizeof chunk);
    close(fd);
    if (rc == MESH_OK && b->oom)
        rc = mesh_err_set(err, MESH_ENOMEM, "out of memory reading %s", path);
    if (rc == MESH_OK && !b->p)
        sb_add(b, "", 0);
    return rc;
}

enum { S_CUR_KEY, S_CUR_CHAIN, S_NEXT_KEY, S_NEXT_CHAIN, S_PENDING_KEY, S_BUNDLE, S_CRL,
       S_COUNT };
static const char *const section_names[S_COUNT] = {
    "current-key", "current-chain", "next-key", "next-chain", "pending-key", "bundle", "crl",
};

/* Splits the body into sections, NUL-terminating each in place. */
static int split_sections(char *body, const char *path, char *sect[S_COUNT], mesh_err *err)
{
    char *line = body;
    int cur = -1;
    while (*line) {
        char *nl = strchr(line, '\n');
        char *next = nl ? nl + 1 : line + strlen(line);
        if (line[0] == '[') {
            char *close = strchr(line, ']');
            if (!close || (nl && close > nl))
                return mesh_err_set(err, MESH_ECORRUPT, "cert pool file %s: malformed section "
                                    "header", path);
            int found = -1;
            for (int i = 0; i < S_COUNT; i++)
                if ((size_t)(close - line - 1) == strlen(section_names[i]) &&
                    strncmp(line + 1, section_names[i], strlen(section_names[i])) == 0)
                    found = i;
            if (found < 0)
                return mesh_err_set(err, MESH_ECORRUPT, "cert pool file %s: unknown section "
                                    "'%.*s'", path, (int)(close - line - 1), line + 1);
            if (sect[found])
                return mesh_err_set(err, MESH_ECORRUPT, "cert pool file %s: section [%s] "
                                    "appears twice", path, section_names[found]);
            line[0] = '\0';     /* ends the previous section's text */
            sect[found] = next;
            cur = found;
        } else if (cur < 0 && line[0] != '#' && line[0] != '\n') {
            return mesh_err_set(err, MESH_ECORRUPT, "cert pool file %s: text outside any "
                                "section", path);
        }
        line = next;
    }
    return MESH_OK;
}

/* A part that does not parse means the file is damaged, whatever the parser
 * called it. */
static int as_corrupt(mesh_err *err, const char *path)
{
    mesh_err_prefix(err, "cert pool file %s", path);
    if (err)
        err->code = MESH_ECORRUPT;
    return MESH_ECORRUPT;
}

static int load_svid(const char *path, const char *key_pem, const char *chain_pem,
                     const char *which, cp_svid **out, mesh_err *err)
{
    if (!key_pem && !chain_pem)
        return MESH_OK;
    if (!key_pem || !chain_pem)
        return mesh_err_set(err, MESH_ECORRUPT, "cert pool file %s: %s SVID has a %s but no %s",
                            path, which, key_pem ? "key" : "chain", key_pem ? "chain" : "key");
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *chain = NULL;
    int rc = tls_parse_key(key_pem, which, &key, err);
    if (rc == MESH_OK)
        rc = tls_parse_certs(chain_pem, which, &chain, err);
    if (rc == MESH_OK) {
        rc = cp_svid_make(key, chain, out, err);
        key = NULL;
        chain = NULL;
    }
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
    if (rc != MESH_OK)
        return as_corrupt(err, path);
    return MESH_OK;
}

int cert_pool_load(const char *path, cert_pool **out, mesh_err *err)
{
    sbuf b = {0};
    int rc = read_file(path, &b, err);
    if (rc != MESH_OK) {
        sb_free(&b);
        return rc;
    }
    const char *recover = "delete it and restart the sidecar with a join token, or wait for "
                          "meshd to issue a new SVID";
    if (b.len < sizeof CP_MAGIC - 1 || memcmp(b.p, CP_MAGIC, sizeof CP_MAGIC - 1) != 0) {
        bool other = strncmp(b.p, "meshd-cert-pool ", 16) == 0;
        rc = mesh_err_set(err, MESH_ECORRUPT, "cert pool file %s: %s; %s", path,
                          other ? "written in an unsupported format version"
                                : "not a meshd cert pool file (bad header)", recover);
        sb_free(&b);
        return rc;
    }
    /* The digest line is the last line. */
    char *end = b.p + b.len;
    if (end > b.p && end[-1] == '\n')
        end--;
    char *last = end;
    while (last > b.p && last[-1] != '\n')
        last--;
    if (end - last != 7 + 64 || strncmp(last, "sha256 ", 7) != 0) {
        rc = mesh_err_set(err, MESH_ECORRUPT, "cert pool file %s: missing checksum line "
                          "(truncated write?); %s", path, recover);
        sb_free(&b);
        return rc;
    }
    char hex[65];
    tls_sha256_hex(b.p, (size_t)(last - b.p), hex);
    if (memcmp(hex, last + 7, 64) != 0) {
        rc = mesh_err_set(err, MESH_ECORRUPT, "cert pool file %s: checksum mismatch (the file "
                          "was damaged or edited); %s", path, recover);
        sb_free(&b);
        return rc;
    }
    *last = '\0';
    char *sect[S_COUNT] = {0};
    rc = split_sections(b.p + sizeof CP_MAGIC - 1, path, sect, err);
    cert_pool *p = NULL;
    if (rc == MESH_OK)
        rc = cert_pool_new(&p, err);
    if (rc == MESH_OK)
        rc = load_svid(path, sect[S_CUR_KEY], sect[S_CUR_CHAIN], "current", &p->cur, err);
    if (rc == MESH_OK)
        rc = load_svid(path, sect[S_NEXT_KEY], sect[S_NEXT_CHAIN], "next", &p->next, err);
    if (rc == MESH_OK && sect[S_PENDING_KEY]) {
        rc = tls_parse_key(sect[S_PENDING_KEY], "pending key", &p->pending_key, err);
        if (rc != MESH_OK)
            rc = as_corrupt(err, path);
    }
    if (rc == MESH_OK && sect[S_BUNDLE]) {
        rc = tls_parse_certs(sect[S_BUNDLE], "trust bundle", &p->bundle, err);
        if (rc != MESH_OK)
            rc = as_corrupt(err, path);
    }
    if (rc == MESH_OK && sect[S_CRL]) {
        /* Enforced at once, also while meshd is unreachable (docs/security.md). */
        rc = tls_parse_crls(sect[S_CRL], &p->crls, err);
        if (rc != MESH_OK)
            rc = as_corrupt(err, path);
        else if (sk_X509_CRL_num(p->crls) > 0)
            p->crl_generation = 1;
    }
    if (rc == MESH_OK && p->cur && p->next && strcmp(p->cur->id, p->next->id) != 0)
        rc = mesh_err_set(err, MESH_ECORRUPT, "cert pool file %s: current (%s) and next (%s) "
                          "SVIDs name different identities", path, p->cur->id, p->next->id);
    if (rc == MESH_OK)
        rc = cp_rebuild_ctx(p, err);
    sb_free(&b);
    if (rc != MESH_OK) {
        cert_pool_free(p);
        return rc;
    }
    p->generation = 1;
    *out = p;
    return MESH_OK;
}
