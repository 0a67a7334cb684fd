/* tests/unit/test_sidecar_certpool.c — the cert pool: install, rotation
 * (current -> next), CA rotation ordering, fail-closed expiry, CSR key
 * custody, TLS contexts (real in-memory handshakes), persistence (0600,
 * round trip, corruption). */
#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sidecar/cert_pool.h"
#include "sidecar/tls_util.h"
#include "test_sidecar_util.h"

#define ID_A "spiffe://example.org/ns/default/sa/a"
#define ID_B "spiffe://example.org/ns/default/sa/b"

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* A pool holding an SVID for id valid [nb, na] and the CA's bundle. */
static cert_pool *pool_with(tsc_ca *ca, const char *id, int64_t nb, int64_t na, int64_t now)
{
    mesh_err e;
    cert_pool *p;
    cr_assert_eq(cert_pool_new(&p, &e), MESH_OK);
    char *chain, *key, *bundle = tsc_ca_pem(ca);
    tsc_leaf(ca, id, nb, na, &chain, &key);
    cr_assert_eq(cert_pool_set_bundle(p, bundle, now, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(cert_pool_offer_svid(p, chain, key, now, &e), MESH_OK, "%s", e.msg);
    free(chain);
    free(key);
    free(bundle);
    return p;
}

/* Runs a TLS handshake between contexts over a memory BIO pair. Returns 1
 * when both sides completed; *server_saw gets the client's SPIFFE ID. */
static int handshake(SSL_CTX *sctx, SSL_CTX *cctx, char *server_saw, size_t len)
{
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    BIO *bs, *bc;
    BIO_new_bio_pair(&bs, 0, &bc, 0);
    SSL_set_bio(s, bs, bs);
    SSL_set_bio(c, bc, bc);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    int sd = 0, cd = 0, ok = 0;
    for (int i = 0; i < 50 && !(sd && cd); i++) {
        if (!cd) {
            int r = SSL_do_handshake(c);
            if (r == 1)
                cd = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                break;
        }
        if (!sd) {
            int r = SSL_do_handshake(s);
            if (r == 1)
                sd = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
                break;
        }
    }
    if (sd && cd) {
        ok = SSL_version(c) == TLS1_3_VERSION;
        if (server_saw && tls_peer_spiffe_id(s, server_saw, len, NULL) != MESH_OK)
            ok = 0;
    }
    ERR_clear_error();
    SSL_free(s);
    SSL_free(c);
    return ok;
}

Test(sidecar_certpool, install_ready_and_handshake)
{
    tsc_ca *ca = tsc_ca_new("test root");
    int64_t now = now_s();
    cert_pool *pa = pool_with(ca, ID_A, now - 10, now + 3600, now);
    cert_pool *pb = pool_with(ca, ID_B, now - 10, now + 3600, now);
    cr_assert(cert_pool_ready(pa, now));
    int64_t left = cert_pool_seconds_left(pa, now);
    cr_assert(left >= 3599 && left <= 3600, "%lld", (long long)left);
    char id[2100];
    cr_assert_eq(cert_pool_spiffe_id(pa, id, sizeof id), MESH_OK);
    cr_assert_str_eq(id, ID_A);
    cert_pool_info info;
    cert_pool_get_info(pa, now, &info);
    cr_assert(info.current.present);
    cr_assert(!info.next.present);
    cr_assert_str_eq(info.trust_domain, "example.org");
    cr_assert_eq(info.n_roots, 1);
    cr_assert(strstr(info.roots[0].subject, "test root"), "%s", info.roots[0].subject);
    cr_assert_eq(strlen(info.current.serial_hex) > 0, 1);

    SSL_CTX *s, *c;
    mesh_err e;
    cr_assert_eq(cert_pool_server_ctx(pa, now, &s, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(cert_pool_client_ctx(pb, now, &c, &e), MESH_OK, "%s", e.msg);
    char saw[2100] = "";
    cr_assert(handshake(s, c, saw, sizeof saw), "TLS 1.3 mTLS handshake between a and b");
    cr_assert_str_eq(saw, ID_B);
    SSL_CTX_free(s);
    SSL_CTX_free(c);

    /* A peer from another CA is refused by the chain check. */
    tsc_ca *other = tsc_ca_new("other root");
    cert_pool *px = pool_with(other, ID_B, now - 10, now + 3600, now);
    cr_assert_eq(cert_pool_server_ctx(pa, now, &s, &e), MESH_OK);
    cr_assert_eq(cert_pool_client_ctx(px, now, &c, &e), MESH_OK);
    cr_assert(!handshake(s, c, NULL, 0), "a foreign CA must not pass");
    SSL_CTX_free(s);
    SSL_CTX_free(c);
    cert_pool_free(px);
    tsc_ca_free(other);
    cert_pool_free(pa);
    cert_pool_free(pb);
    tsc_ca_free(ca);
}

Test(sidecar_certpool, nothing_yet_means_not_ready)
{
    cert_pool *p;
    mesh_err e;
    cert_pool_new(&p, &e);
    int64_t now = now_s();
    SSL_CTX *c;
    cr_assert_eq(cert_pool_client_ctx(p, now, &c, &e), MESH_ENOTFOUND);
    cr_assert(strstr(e.msg, "no SVID"), "%s", e.msg);
    cr_assert(!cert_pool_ready(p, now));
    cr_assert_eq(cert_pool_seconds_left(p, now), CERT_POOL_NO_SVID);
    /* SVID without a bundle: still not ready, says why. */
    tsc_ca *ca = tsc_ca_new("r");
    char *chain, *key;
    tsc_leaf(ca, ID_A, now - 10, now + 100, &chain, &key);
    cr_assert_eq(cert_pool_offer_svid(p, chain, key, now, &e), MESH_OK, "%s", e.msg);
    cr_assert_eq(cert_pool_server_ctx(p, now, &c, &e), MESH_ENOTFOUND);
    cr_assert(strstr(e.msg, "trust bundle"), "%s", e.msg);
    free(chain);
    free(key);
    cert_pool_free(p);
    tsc_ca_free(ca);
}

Test(sidecar_certpool, swap_current_to_next)
{
    tsc_ca *ca = tsc_ca_new("r");
    int64_t now = now_s();
    cert_pool *p = pool_with(ca, ID_A, now - 10, now + 600, now);
    cert_pool_info before;
    cert_pool_get_info(p, now, &before);
    /* A renewed SVID valid only from now+100: held as next. */
    char *chain, *key;
    mesh_err e;
    tsc_leaf(ca, ID_A, now + 100, now + 1000, &chain, &key);
    cr_assert_eq(cert_pool_offer_svid(p, chain, key, now, &e), MESH_OK, "%s", e.msg);
    cert_pool_info mid;
    cert_pool_get_info(p, now, &mid);
    cr_assert(mid.next.present, "held as next until notBefore");
    cr_assert_str_eq(mid.current.serial_hex, before.current.serial_hex);
    cr_assert(!cert_pool_tick(p, now + 50));
    cr_assert(cert_pool_tick(p, now + 101), "promoted once notBefore has passed");
    cert_pool_info after;
    cert_pool_get_info(p, now + 101, &after);
    cr_assert(!after.next.present);
    cr_assert_str_eq(after.current.serial_hex, mid.next.serial_hex);
    cr_assert_eq(after.current.not_after, now + 1000);
    cr_assert(after.generation > before.generation);
    /* Re-offering the same SVID (SDS re-send) changes nothing. */
    cr_assert_eq(cert_pool_offer_svid(p, chain, key, now + 101, &e), MESH_OK);
    cert_pool_info again;
    cert_pool_get_info(p, now + 101, &again);
    cr_assert_eq(again.generation, after.generation);
    free(chain);
    free(key);
    cert_pool_free(p);
    tsc_ca_free(ca);
}

Test(sidecar_certpool, ca_rotation_waits_for_the_bundle)
{
    tsc_ca *old = tsc_ca_new("old root"), *neu = tsc_ca_new("new root");
    int64_t now = now_s();
    cert_pool *p = pool_with(old, ID_A, now - 10, now + 600, now);
    char *chain, *key;
    mesh_err e;
    tsc_leaf(neu, ID_A, now - 10, now + 900, &chain, &key);
    cr_assert_eq(cert_pool_offer_svid(p, chain, key, now, &e), MESH_OK, "%s", e.msg);
    cert_pool_info i1;
    cert_pool_get_info(p, now, &i1);
    cr_assert(i1.next.present, "an SVID from a CA not in the bundle is held");
    char *po = tsc_ca_pem(old), *pn = tsc_ca_pem(neu);
    size_t bl = strlen(po) + strlen(pn) + 1;
    char *both = malloc(bl);
    snprintf(both, bl, "%s%s", po, pn);
    cr_assert_eq(cert_pool_set_bundle(p, both, now, &e), MESH_OK, "%s", e.msg);
    cert_pool_info i2;
    cert_pool_get_info(p, now, &i2);
    cr_assert(!i2.next.present, "promoted once the bundle trusts it");
    cr_assert_str_eq(i2.current.serial_hex, i1.next.serial_hex);
    cr_assert_eq(i2.n_roots, 2);
    free(po);
    free(pn);
    free(both);
    free(chain);
    free(key);
    cert_pool_free(p);
    tsc_ca_free(old);
    tsc_ca_free(neu);
}

Test(sidecar_certpool, expired_current_refuses_handshakes)
{
    tsc_ca *ca = tsc_ca_new("r");
    int64_t now = now_s();
    cert_pool *p = pool_with(ca, ID_A, now - 100, now + 50, now);
    SSL_CTX *c;
    mesh_err e;
    cr_assert_eq(cert_pool_client_ctx(p, now + 49, &c, &e), MESH_OK);
    SSL_CTX_free(c);
    int64_t later = now + 60;
    cr_assert_eq(cert_pool_client_ctx(p, later, &c, &e), MESH_EEXPIRED);
    cr_assert(strstr(e.msg, ID_A), "%s", e.msg);
    cr_assert(strstr(e.msg, "expired at"), "%s", e.msg);
    cr_assert(strstr(e.msg, "refusing mTLS until meshd issues a new one"), "%s", e.msg);
    cr_assert_eq(cert_pool_server_ctx(p, later, &c, &e), MESH_EEXPIRED);
    cr_assert(!cert_pool_ready(p, later));
    cr_assert_eq(cert_pool_seconds_left(p, later), -10);
    /* The expired identity is still exportable for self-recovery. */
    char *k, *ch;
    cr_assert_eq(cert_pool_export_identity(p, &k, &ch, &e), MESH_OK);
    cr_assert(strstr(k, "PRIVATE KEY"));
    cr_assert(strstr(ch, "BEGIN CERTIFICATE"));
    free(k);
    free(ch);
    /* A fresh SVID recovers it at once (no usable current: no waiting). */
    char *chain, *key;
    tsc_leaf(ca, ID_A, later - 5, later + 600, &chain, &key);
    cr_assert_eq(cert_pool_offer_svid(p, chain, key, later, &e), MESH_OK, "%s", e.msg);
    cr_assert(cert_pool_ready(p, later));
    free(chain);
    free(key);
    cert_pool_free(p);
    tsc_ca_free(ca);
}

Test(sidecar_certpool, offer_rejections)
{
    tsc_ca *ca = tsc_ca_new("r");
    int64_t now = now_s();
    cert_pool *p = pool_with(ca, ID_A, now - 10, now + 600, now);
    mesh_err e;
    char *chain, *key, *chain2, *key2;

    tsc_leaf(ca, ID_A, now - 100, now - 1, &chain, &key);
    cr_assert_eq(cert_pool_offer_svid(p, chain, key, now, &e), MESH_EEXPIRED);
    cr_assert(strstr(e.msg, "not installing"), "%s", e.msg);
    free(chain);
    free(key);

    tsc_leaf(ca, ID_A, now - 10, now + 100, &chain, &key);
    tsc_leaf(ca, ID_A, now - 10, now + 100, &chain2, &key2);
    cr_assert_eq(cert_pool_offer_svid(p, chain, key2, now, &e), MESH_EINVAL);
    cr_assert(strstr(e.msg, "does not match"), "%s", e.msg);
    cr_assert_eq(cert_pool_offer_svid(p, chain, NULL, now, &e), MESH_EINVAL,
                 "no key given and none of ours matches");
    cr_assert(strstr(e.msg, "matches no key"), "%s", e.msg);
    free(chain);
    free(key);
    free(chain2);
    free(key2);

    tsc_leaf(ca, ID_B, now - 10, now + 100, &chain, &key);
    cr_assert_eq(cert_pool_offer_svid(p, chain, key, now, &e), MESH_EINVAL);
    cr_assert(strstr(e.msg, "identity does not change"), "%s", e.msg);
    free(chain);
    free(key);

    tsc_leaf(ca, NULL, now - 10, now + 100, &chain, &key);
    cr_assert_eq(cert_pool_offer_svid(p, chain, key, now, &e), MESH_EINVAL);
    cr_assert(strstr(e.msg, "subjectAltName"), "%s", e.msg);
    free(chain);
    free(key);

    tsc_leaf(ca, ID_A "|spiffe://example.org/other", now - 10, now + 100, &chain, &key);
    cr_assert_eq(cert_pool_offer_svid(p, chain, key, now, &e), MESH_EINVAL);
    cr_assert(strstr(e.msg, "exactly one"), "%s", e.msg);
    free(chain);
    free(key);

    char *root = tsc_ca_pem(ca);
    cr_assert_eq(cert_pool_offer_svid(p, root, NULL, now, &e), MESH_EINVAL);
    cr_assert_eq(cert_pool_offer_svid(p, "garbage", NULL, now, &e), MESH_EINVAL);
    cr_assert(strstr(e.msg, "no PEM certificate"), "%s", e.msg);
    cr_assert_eq(cert_pool_offer_svid(p, "-----BEGIN CERTIFICATE-----\nAAAA\n"
                                         "-----END CERTIFICATE-----\n", NULL, now, &e),
                 MESH_EINVAL);
    cr_assert_eq(cert_pool_set_bundle(p, "", now, &e), MESH_EINVAL);
    tsc_leaf(ca, ID_A, now - 10, now + 100, &chain, &key);
    cr_assert_eq(cert_pool_set_bundle(p, chain, now, &e), MESH_EINVAL, "a leaf is no root");
    cr_assert(strstr(e.msg, "not a CA"), "%s", e.msg);
    free(chain);
    free(key);
    free(root);
    /* Nothing above changed the pool. */
    cr_assert(cert_pool_ready(p, now));
    cert_pool_info info;
    cert_pool_get_info(p, now, &info);
    cr_assert(!info.next.present);
    cert_pool_free(p);
    tsc_ca_free(ca);
}

Test(sidecar_certpool, csr_key_custody)
{
    tsc_ca *ca = tsc_ca_new("r");
    int64_t now = now_s();
    cert_pool *p;
    mesh_err e;
    cert_pool_new(&p, &e);
    char *csr;
    cr_assert_eq(cert_pool_make_csr(p, "not a spiffe id", false, &csr, &e), MESH_EINVAL);
    cr_assert_eq(cert_pool_make_csr(p, ID_A, false, &csr, &e), MESH_OK, "%s", e.msg);
    cr_assert(strstr(csr, "CERTIFICATE REQUEST"));
    cert_pool_info i;
    cert_pool_get_info(p, now, &i);
    cr_assert(i.pending_key);
    char *leaf = tsc_sign_csr(ca, csr, now - 10, now + 600);
    cr_assert_not_null(leaf, "the CSR verifies and carries the URI SAN");
    cr_assert_eq(cert_pool_offer_svid(p, leaf, NULL, now, &e), MESH_OK, "%s", e.msg);
    cert_pool_get_info(p, now, &i);
    cr_assert(!i.pending_key, "the pending key now belongs to the SVID");
    cr_assert_str_eq(i.current.spiffe_id, ID_A);
    free(csr);
    free(leaf);
    /* Renewal with the same key, then with a rotated key. */
    cr_assert_eq(cert_pool_make_csr(p, ID_A, false, &csr, &e), MESH_OK);
    cert_pool_get_info(p, now, &i);
    cr_assert(!i.pending_key, "same key: nothing pending");
    leaf = tsc_sign_csr(ca, csr, now - 5, now + 700);
    cr_assert_eq(cert_pool_offer_svid(p, leaf, NULL, now, &e), MESH_OK, "%s", e.msg);
    free(csr);
    free(leaf);
    cr_assert_eq(cert_pool_make_csr(p, ID_A, true, &csr, &e), MESH_OK);
    leaf = tsc_sign_csr(ca, csr, now - 5, now + 800);
    char *bundle = tsc_ca_pem(ca);
    cert_pool_set_bundle(p, bundle, now, &e);
    cr_assert_eq(cert_pool_offer_svid(p, leaf, NULL, now, &e), MESH_OK, "%s", e.msg);
    cert_pool_get_info(p, now, &i);
    cr_assert_eq(i.current.not_after, now + 800);
    cr_assert(!i.pending_key);
    free(csr);
    free(leaf);
    free(bundle);
    cert_pool_free(p);
    tsc_ca_free(ca);
}

/* ---- persistence -------------------------------------------------------------------- */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_all(const char *path, const char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, len, f), len);
    fclose(f);
    chmod(path, 0600);
}

Test(sidecar_certpool, persist_and_reload)
{
    tsc_ca *ca = tsc_ca_new("persist root");
    int64_t now = now_s();
    cert_pool *p = pool_with(ca, ID_A, now - 10, now + 600, now);
    /* Also a next SVID (future notBefore) and a pending key. */
    char *chain, *key, *csr;
    mesh_err e;
    tsc_leaf(ca, ID_A, now + 300, now + 900, &chain, &key);
    cr_assert_eq(cert_pool_offer_svid(p, chain, key, now, &e), MESH_OK);
    cr_assert_eq(cert_pool_make_csr(p, ID_A, true, &csr, &e), MESH_OK);
    char *dir = tsc_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/pool", dir);
    cr_assert_eq(cert_pool_save(p, path, &e), MESH_OK, "%s", e.msg);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);

    cert_pool *q;
    cr_assert_eq(cert_pool_load(path, &q, &e), MESH_OK, "%s", e.msg);
    cert_pool_info a, b;
    cert_pool_get_info(p, now, &a);
    cert_pool_get_info(q, now, &b);
    cr_assert_str_eq(a.current.serial_hex, b.current.serial_hex);
    cr_assert_str_eq(a.next.serial_hex, b.next.serial_hex);
    cr_assert_eq(a.current.not_after, b.current.not_after);
    cr_assert(b.pending_key);
    cr_assert_eq(b.n_roots, 1);
    cr_assert_str_eq(a.roots[0].sha256, b.roots[0].sha256);
    cr_assert(cert_pool_ready(q, now), "a restarted sidecar serves from the file");
    /* The reloaded key still answers a CSR round trip (pending key kept). */
    char *leaf = tsc_sign_csr(ca, csr, now - 1, now + 1200);
    cr_assert_eq(cert_pool_offer_svid(q, leaf, NULL, now, &e), MESH_OK, "%s", e.msg);
    /* Saving again over the old file works (rename replaces it). */
    cr_assert_eq(cert_pool_save(q, path, &e), MESH_OK, "%s", e.msg);
    free(leaf);
    free(csr);
    free(chain);
    free(key);
    cert_pool_free(p);
    cert_pool_free(q);
    unlink(path);
    rmdir(dir);
    free(dir);
    tsc_ca_free(ca);
}

Test(sidecar_certpool, reload_of_an_expired_pool_reports_it)
{
    tsc_ca *ca = tsc_ca_new("r");
    int64_t now = now_s();
    cert_pool *p = pool_with(ca, ID_A, now - 100, now + 5, now);
    char *dir = tsc_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/pool", dir);
    mesh_err e;
    cr_assert_eq(cert_pool_save(p, path, &e), MESH_OK);
    cert_pool *q;
    cr_assert_eq(cert_pool_load(path, &q, &e), MESH_OK, "an expired SVID still loads: %s",
                 e.msg);
    cr_assert(!cert_pool_ready(q, now + 10));
    cr_assert_eq(cert_pool_seconds_left(q, now + 10), -5);
    cert_pool_free(p);
    cert_pool_free(q);
    unlink(path);
    rmdir(dir);
    free(dir);
    tsc_ca_free(ca);
}

Test(sidecar_certpool, corrupt_pool_file_is_a_clear_error)
{
    tsc_ca *ca = tsc_ca_new("r");
    int64_t now = now_s();
    cert_pool *p = pool_with(ca, ID_A, now - 10, now + 600, now);
    char *dir = tsc_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/pool", dir);
    mesh_err e;
    cert_pool *q = NULL;
    cr_assert_eq(cert_pool_load(path, &q, &e), MESH_ENOTFOUND);
    cr_assert(strstr(e.msg, "does not exist"), "%s", e.msg);
    cr_assert_eq(cert_pool_save(p, path, &e), MESH_OK);
    size_t len;
    char *orig = read_all(path, &len);

    /* One flipped byte in the middle. */
    char *bad = malloc(len + 1);
    memcpy(bad, orig, len + 1);
    bad[len / 2] ^= 0x01;
    write_all(path, bad, len);
    cr_assert_eq(cert_pool_load(path, &q, &e), MESH_ECORRUPT);
    cr_assert(strstr(e.msg, "checksum mismatch"), "%s", e.msg);
    cr_assert(strstr(e.msg, path), "names the file: %s", e.msg);

    /* Truncated. */
    write_all(path, orig, len - 40);
    cr_assert_eq(cert_pool_load(path, &q, &e), MESH_ECORRUPT);
    cr_assert(strstr(e.msg, "checksum"), "%s", e.msg);

    /* Not ours. */
    write_all(path, "hello\n", 6);
    cr_assert_eq(cert_pool_load(path, &q, &e), MESH_ECORRUPT);
    cr_assert(strstr(e.msg, "not a meshd cert pool"), "%s", e.msg);
    write_all(path, "", 0);
    cr_assert_eq(cert_pool_load(path, &q, &e), MESH_ECORRUPT);

    /* A consistent checksum over damaged PEM: the part is named. */
    char *body = malloc(len + 1);
    memcpy(body, orig, len + 1);
    char *sha = strstr(body, "sha256 ");
    *sha = '\0';
    char *k = strstr(body, "[current-chain]\n-----BEGIN CERTIFICATE-----\n");
    cr_assert_not_null(k);
    k += strlen("[current-chain]\n-----BEGIN CERTIFICATE-----\n");
    k[0] = k[0] == 'A' ? 'B' : 'A';
    k[1] = '!';
    unsigned char md[32];
    unsigned int ml;
    EVP_Digest(body, strlen(body), md, &ml, EVP_sha256(), NULL);
    char line[80] = "sha256 ";
    for (int i = 0; i < 32; i++)
        snprintf(line + 7 + 2 * i, 3, "%02x", md[i]);
    size_t bl = strlen(body);
    char *full = malloc(bl + 80);
    snprintf(full, bl + 80, "%s%s\n", body, line);
    write_all(path, full, strlen(full));
    cr_assert_eq(cert_pool_load(path, &q, &e), MESH_ECORRUPT);
    cr_assert(strstr(e.msg, "current"), "%s", e.msg);

    /* Readable by others: refused before parsing. */
    write_all(path, orig, len);
    chmod(path, 0644);
    cr_assert_eq(cert_pool_load(path, &q, &e), MESH_EPERM);
    cr_assert(strstr(e.msg, "0644"), "%s", e.msg);
    chmod(path, 0600);
    cr_assert_eq(cert_pool_load(path, &q, &e), MESH_OK, "restored file loads: %s", e.msg);
    cert_pool_free(q);

    /* Saving into a missing directory. */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope/pool", dir);
    cr_assert_eq(cert_pool_save(p, missing, &e), MESH_EIO);
    cr_assert(strstr(e.msg, "does the directory exist"), "%s", e.msg);

    free(orig);
    free(bad);
    free(body);
    free(full);
    cert_pool_free(p);
    unlink(path);
    rmdir(dir);
    free(dir);
    tsc_ca_free(ca);
}
