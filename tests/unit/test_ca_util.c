/* tests/unit/test_ca_util.c — helpers shared by the test_ca_*.c suites. */
#include "tests/unit/test_ca_util.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "ca/csr.h"

void tca_setup(tca_env *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/meshd-test-XXXXXX");
    cr_assert_not_null(mkdtemp(e->dir), "mkdtemp failed");
    snprintf(e->db, sizeof e->db, "%s/mesh.db", e->dir);
    snprintf(e->keydir, sizeof e->keydir, "%s/keys", e->dir);
    mesh_err err = {0};
    store_open_opts create = {.create = 1};
    int rc = store_open_with(&e->st, e->db, &create, &err);
    cr_assert_eq(rc, MESH_OK, "store_open: %s", err.msg);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tca_teardown(tca_env *e)
{
    store_close(e->st);
    e->st = NULL;
    if (e->dir[0])
        nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int64_t tca_init(tca_env *e, const char *key_type, int64_t ttl)
{
    ca_init_opts o = {.trust_domain = TCA_TD, .key_dir = e->keydir, .key_type = key_type,
                      .ttl_seconds = ttl};
    mesh_err err = {0};
    int64_t id = 0;
    int rc = ca_init(e->st, &o, &id, &err);
    cr_assert_eq(rc, MESH_OK, "ca_init: %s", err.msg);
    cr_assert_gt(id, 0);
    return id;
}

mesh_ca *tca_load(tca_env *e)
{
    mesh_ca *ca = NULL;
    mesh_err err = {0};
    int rc = ca_load(e->st, &ca, &err);
    cr_assert_eq(rc, MESH_OK, "ca_load: %s", err.msg);
    return ca;
}

EVP_PKEY *tca_key_ec(const char *curve)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    cr_assert_not_null(k, "EC keygen %s", curve);
    return k;
}

EVP_PKEY *tca_key_rsa(unsigned bits)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    cr_assert_not_null(k, "RSA keygen %u", bits);
    return k;
}

EVP_PKEY *tca_key_ed25519(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    cr_assert_not_null(k, "Ed25519 keygen");
    return k;
}

static void push_names(GENERAL_NAMES *gens, int type, const char *const *names)
{
    for (size_t i = 0; names && names[i]; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        cr_assert(g && s);
        cr_assert_eq(ASN1_STRING_set(s, names[i], (int)strlen(names[i])), 1);
        GENERAL_NAME_set0_value(g, type, s);
        cr_assert(sk_GENERAL_NAME_push(gens, g));
    }
}

char *tca_csr_custom(EVP_PKEY *key, const tca_csr_opts *o)
{
    X509_REQ *req = X509_REQ_new();
    cr_assert_not_null(req);
    cr_assert_eq(X509_REQ_set_pubkey(req, key), 1);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    if (!o->no_san) {
        GENERAL_NAMES *gens = GENERAL_NAMES_new();
        push_names(gens, GEN_URI, o->uris);
        push_names(gens, GEN_DNS, o->dns);
        X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, 1, gens);
        cr_assert_not_null(ext);
        sk_X509_EXTENSION_push(exts, ext);
        GENERAL_NAMES_free(gens);
    }
    if (o->ca_true) {
        BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
        bc->ca = 0xff;
        X509_EXTENSION *ext = X509V3_EXT_i2d(NID_basic_constraints, 1, bc);
        cr_assert_not_null(ext);
        sk_X509_EXTENSION_push(exts, ext);
        BASIC_CONSTRAINTS_free(bc);
    }
    if (sk_X509_EXTENSION_num(exts) > 0)
        cr_assert_eq(X509_REQ_add_extensions(req, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    const EVP_MD *md = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? NULL
                       : o->md                                       ? o->md
                                                                     : EVP_sha256();
    cr_assert_gt(X509_REQ_sign(req, key, md), 0, "CSR signing failed");
    BIO *bio = BIO_new(BIO_s_mem());
    cr_assert_eq(PEM_write_bio_X509_REQ(bio, req), 1);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *pem = strndup(data, (size_t)n);
    BIO_free(bio);
    X509_REQ_free(req);
    return pem;
}

char *tca_csr(const char *key_type, const char *id, EVP_PKEY **key_out)
{
    EVP_PKEY *key = NULL;
    mesh_err err = {0};
    cr_assert_eq(csr_keygen(key_type, &key, &err), MESH_OK, "csr_keygen: %s", err.msg);
    char *pem = NULL;
    cr_assert_eq(csr_create(key, id, &pem, &err), MESH_OK, "csr_create: %s", err.msg);
    if (key_out)
        *key_out = key;
    else
        EVP_PKEY_free(key);
    return pem;
}

void tca_issue(mesh_ca *ca, mesh_store *st, const char *id, int64_t ttl, ca_issued *out)
{
    char *csr = tca_csr(NULL, id, NULL);
    ca_issue_req req = {.csr_pem = csr, .authorised_id = id, .ttl_seconds = ttl,
                        .actor = "test"};
    mesh_err err = {0};
    int rc = ca_issue_svid(ca, st, &req, out, &err);
    free(csr);
    cr_assert_eq(rc, MESH_OK, "ca_issue_svid: %s", err.msg);
}

int64_t tca_cert_count(mesh_store *st)
{
    store_cert *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_cert_list(st, NULL, 1, 0, &list, &n, &err), MESH_OK, "%s", err.msg);
    store_cert_free_list(list, n);
    return (int64_t)n;
}

int tca_audit_count(mesh_store *st, const char *action, int ok)
{
    store_audit_entry *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_audit_list(st, 1000, &list, &n, &err), MESH_OK, "%s", err.msg);
    int c = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].action, action) == 0 && list[i].ok == ok)
            c++;
    store_audit_free_list(list, n);
    return c;
}

int tca_sh(char *out, size_t outlen, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[4200];
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    size_t got = 0;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
        if (out && got + 1 < outlen) {
            size_t room = outlen - 1 - got;
            size_t c = n < room ? n : room;
            memcpy(out + got, buf, c);
            got += c;
        }
    }
    if (out && outlen)
        out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void tca_write(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(data, f);
    fclose(f);
}

char *tca_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    cr_assert_not_null(buf);
    size_t got = fread(buf, 1, (size_t)len, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

int tca_count(const char *hay, const char *needle)
{
    int c = 0;
    size_t nl = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += nl)
        c++;
    return c;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    cr_assert_not_null(ext, "extension %d=%s", nid, value);
    cr_assert_eq(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

char *tca_make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int64_t nb_off,
                    int64_t na_off, int is_ca, const char *cn)
{
    X509 *x = X509_new();
    cr_assert_not_null(x);
    X509_set_version(x, X509_VERSION_3);
    unsigned char sn[8];
    RAND_bytes(sn, sizeof sn);
    sn[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(sn, sizeof sn, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)TCA_TD, -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);
    time_t now = time(NULL);
    ASN1_TIME_set(X509_getm_notBefore(x), now + nb_off);
    ASN1_TIME_set(X509_getm_notAfter(x), now + na_off);
    X509_set_pubkey(x, key);
    if (is_ca) {
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
    }
    add_ext(x, issuer, NID_subject_key_identifier, "hash");
    cr_assert_gt(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()), 0);
    mesh_err err = {0};
    char *pem = NULL;
    cr_assert_eq(pem_write_cert(x, &pem, &err), MESH_OK, "%s", err.msg);
    X509_free(x);
    return pem;
}
