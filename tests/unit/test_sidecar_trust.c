/* tests/unit/test_sidecar_trust.c — a sidecar that missed a CA rotation: what it says when
 * meshd's chain does not verify (xds_trust.c), the root a join token pins, and which
 * trust material wins at start (run_boot.c + xds_inputs.c): a new --ca-bundle replaces
 * the persisted roots, the same one again does not undo meshd's pushes, an old state
 * directory without records merges, a token never used re-enrols, a spent one does not,
 * and a pinned token is enough for first contact. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ca/ca.h"
#include "ca/csr.h"
#include "ca/join_token.h"
#include "sidecar/run.h"
#include "sidecar/tls_util.h"
#include "sidecar/xds_inputs.h"
#include "sidecar/xds_trust.h"
#include "tests/unit/test_ca_util.h"
#include "test_sidecar_util.h"

#define MESHD_ID "spiffe://example.org/ns/mesh-system/sa/meshd"
#define WEB "spiffe://example.org/ns/default/sa/web"
#define TOKEN_SECRET "mjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* meshd's serving chain as meshd serves it: leaf (DNS "meshd") + the root. */
typedef struct served {
    tca_env e;
    STACK_OF(X509) *chain;
    char *root_pem;
    char root_fp[65];
} served;

static void serve(served *s, int64_t ttl)
{
    memset(s, 0, sizeof *s);
    tca_setup(&s->e);
    tca_init(&s->e, NULL, 0);
    mesh_ca *ca = tca_load(&s->e);
    static const char *const dns[] = {"meshd", "localhost", NULL};
    char *key = NULL;
    ca_issued iss;
    mesh_err err = {0};
    cr_assert_eq(ca_issue_with_new_key(ca, s->e.st, MESHD_ID, dns, ttl, &key, &iss, &err),
                 MESH_OK, "%s", err.msg);
    ca_free(ca);
    free(key);
    store_ca active;
    cr_assert_eq(store_ca_get_active(s->e.st, &active, &err), MESH_OK);
    cr_assert_eq(ca_root_info(&active, &s->root_pem, s->root_fp, &err), MESH_OK);
    store_ca_free(&active);
    size_t a = strlen(iss.chain_pem), b = strlen(s->root_pem);
    char *pem = malloc(a + b + 1);
    memcpy(pem, iss.chain_pem, a);
    memcpy(pem + a, s->root_pem, b + 1);
    cr_assert_eq(tls_parse_certs(pem, "chain", &s->chain, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(sk_X509_num(s->chain), 2);
    free(pem);
    ca_issued_free(&iss);
}

static void unserve(served *s)
{
    sk_X509_pop_free(s->chain, X509_free);
    free(s->root_pem);
    tca_teardown(&s->e);
}

Test(sidecar_trust, explain_a_chain_from_a_rotated_ca)
{
    served s;
    serve(&s, 3600);
    int64_t now = time(NULL);
    mesh_err err = {0};
    cr_assert_eq(xdsc_trust_explain(s.chain, s.root_pem, "meshd", WEB, now, &err), MESH_OK,
                 "%s", err.msg);
    /* the sidecar's bundle holds another root: the CA was rotated while it was away */
    tsc_ca *old = tsc_ca_new("old root");
    char *old_pem = tsc_ca_pem(old);
    cr_assert_eq(xdsc_trust_explain(s.chain, old_pem, "meshd", WEB, now, &err), MESH_EPERM);
    cr_assert(strstr(err.msg, "not signed by any root in this sidecar's bundle"), "%s", err.msg);
    cr_assert(strstr(err.msg, "rotated while this sidecar was away"), "%s", err.msg);
    cr_assert(strstr(err.msg, "--ca-bundle (meshctl ca bundle)"), "%s", err.msg);
    cr_assert(strstr(err.msg, "meshctl workload token " WEB), "%s", err.msg);
    char old_fp[65];
    STACK_OF(X509) *o = NULL;
    cr_assert_eq(tls_parse_certs(old_pem, "old", &o, &err), MESH_OK);
    tls_cert_sha256(sk_X509_value(o, 0), old_fp);
    sk_X509_pop_free(o, X509_free);
    char want[40];
    snprintf(want, sizeof want, "roots: sha256 %.16s", old_fp);
    cr_assert(strstr(err.msg, want), "our roots are named: %s", err.msg);
    snprintf(want, sizeof want, "sha256 %.16s", s.root_fp);
    cr_assert(strstr(err.msg, want), "meshd's root is named: %s", err.msg);
    cr_assert_null(strstr(err.msg, "certificate verify failed"));
    /* old and new roots together (what a sidecar that got the bundle holds) verify */
    size_t a = strlen(old_pem), b = strlen(s.root_pem);
    char *both = malloc(a + b + 1);
    memcpy(both, old_pem, a);
    memcpy(both + a, s.root_pem, b + 1);
    cr_assert_eq(xdsc_trust_explain(s.chain, both, "meshd", WEB, now, &err), MESH_OK, "%s",
                 err.msg);
    free(both);
    free(old_pem);
    tsc_ca_free(old);
    unserve(&s);
}

Test(sidecar_trust, explain_clock_and_name_problems)
{
    served s;
    serve(&s, 3600);
    int64_t now = time(NULL);
    mesh_err err = {0};
    cr_assert_eq(xdsc_trust_explain(s.chain, s.root_pem, "meshd", WEB, now + 7200, &err),
                 MESH_EPERM);
    cr_assert(strstr(err.msg, "check the clock"), "%s", err.msg);
    cr_assert_eq(xdsc_trust_explain(s.chain, s.root_pem, "meshd", WEB, now - 7200, &err),
                 MESH_EPERM);
    cr_assert(strstr(err.msg, "check the clock"), "%s", err.msg);
    cr_assert_eq(xdsc_trust_explain(s.chain, s.root_pem, "control.example", WEB, now, &err),
                 MESH_EPERM);
    cr_assert(strstr(err.msg, "not issued for the name 'control.example'"), "%s", err.msg);
    cr_assert(strstr(err.msg, "--server-name"), "%s", err.msg);
    /* nothing to compare with */
    cr_assert_neq(xdsc_trust_explain(s.chain, "", "meshd", WEB, now, &err), MESH_OK);
    cr_assert_neq(xdsc_trust_explain(NULL, s.root_pem, "meshd", WEB, now, &err), MESH_OK);
    unserve(&s);
}

Test(sidecar_trust, pinned_root_found_in_the_served_chain)
{
    served s;
    serve(&s, 3600);
    int64_t now = time(NULL);
    mesh_err err = {0};
    char pins[2][65];
    snprintf(pins[0], 65, "%064d", 0);
    memcpy(pins[1], s.root_fp, 65);
    char *root = NULL;
    cr_assert_eq(xdsc_trust_pinned_root(s.chain, (const char (*)[65])pins, 2, "meshd", now,
                                        &root, &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_str_eq(root, s.root_pem);
    free(root);
    /* the leaf's own fingerprint is no pin: only a CA certificate can be the anchor */
    char leaf_fp[65];
    tls_cert_sha256(sk_X509_value(s.chain, 0), leaf_fp);
    memcpy(pins[0], leaf_fp, 65);
    cr_assert_eq(xdsc_trust_pinned_root(s.chain, (const char (*)[65])pins, 1, "meshd", now,
                                        &root, &err),
                 MESH_ENOTFOUND);
    cr_assert(strstr(err.msg, "the CA changed after the token was made"), "%s", err.msg);
    cr_assert_null(root);
    /* the pinned root is there, but the chain is not for this name */
    memcpy(pins[0], s.root_fp, 65);
    cr_assert_eq(xdsc_trust_pinned_root(s.chain, (const char (*)[65])pins, 1, "other", now,
                                        &root, &err),
                 MESH_EPERM);
    /* a chain without the root (an older meshd) cannot be pinned */
    STACK_OF(X509) *leaf_only = sk_X509_new_null();
    sk_X509_push(leaf_only, sk_X509_value(s.chain, 0));
    cr_assert_eq(xdsc_trust_pinned_root(leaf_only, (const char (*)[65])pins, 1, "meshd", now,
                                        &root, &err),
                 MESH_ENOTFOUND);
    sk_X509_free(leaf_only);
    unserve(&s);
}

Test(sidecar_trust, fetch_chain_errors)
{
    STACK_OF(X509) *chain = NULL;
    mesh_err err = {0};
    cr_assert_eq(xdsc_trust_fetch_chain("no-port", "meshd", 500, &chain, &err), MESH_EINVAL);
    cr_assert_eq(xdsc_trust_fetch_chain("127.0.0.1:1", "meshd", 500, &chain, &err), MESH_EIO);
    cr_assert(strstr(err.msg, "cannot connect to 127.0.0.1:1"), "%s", err.msg);
    cr_assert_null(chain);
}

Test(sidecar_trust, inputs_record_round_trip_and_damage)
{
    char *dir = tsc_tmpdir();
    xdsc_inputs in;
    mesh_err err = {0};
    cr_assert_eq(xdsc_inputs_load(dir, &in, &err), MESH_OK);
    cr_assert_not(in.exists);
    char h[65];
    snprintf(in.bundle, sizeof in.bundle, "%064d", 1);
    for (int i = 0; i < XDSC_INPUTS_MAX_TOKENS + 3; i++) {
        snprintf(h, sizeof h, "%064d", 100 + i);
        xdsc_inputs_add_token(&in, h);
    }
    xdsc_inputs_add_token(&in, h);   /* no duplicates */
    xdsc_inputs_add_token(&in, "not-hex");
    cr_assert_eq(in.n_tokens, XDSC_INPUTS_MAX_TOKENS);
    cr_assert_eq(xdsc_inputs_save(dir, &in, &err), MESH_OK, "%s", err.msg);
    xdsc_inputs back;
    cr_assert_eq(xdsc_inputs_load(dir, &back, &err), MESH_OK, "%s", err.msg);
    cr_assert(back.exists);
    cr_assert_str_eq(back.bundle, in.bundle);
    cr_assert_eq(back.n_tokens, XDSC_INPUTS_MAX_TOKENS);
    cr_assert(xdsc_inputs_has_token(&back, h), "the newest is kept");
    snprintf(h, sizeof h, "%064d", 100);
    cr_assert_not(xdsc_inputs_has_token(&back, h), "the oldest was dropped");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, XDSC_INPUTS_FILE);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0077, 0, "mode %o", st.st_mode & 0777);
    tca_write(path, "meshd-explicit-inputs 1\ntoken zz\n");
    cr_assert_eq(xdsc_inputs_load(dir, &back, &err), MESH_ECORRUPT);
    tca_write(path, "something else\n");
    cr_assert_eq(xdsc_inputs_load(dir, &back, &err), MESH_ECORRUPT);
    /* the hash of a token is that of its secret part, with or without pins */
    char a[65], b[65], c[65];
    xdsc_token_hash(TOKEN_SECRET, a);
    xdsc_token_hash(TOKEN_SECRET ".BfPCXsW7WYFplyABOQRGPY8WK2ihOTA4Dj6LNKETKDs\n", b);
    join_token_hash(TOKEN_SECRET, c);
    cr_assert_str_eq(a, b);
    cr_assert_str_eq(a, c);
    tca_sh(NULL, 0, "rm -rf %s", dir);
    free(dir);
}

/* ---- start-up precedence ---------------------------------------------------------- */

typedef struct boot_env {
    char *dir;           /* holds state/, bundle files, token file */
    char state[300];
    tsc_ca *ca_a, *ca_b;
    char fp_a[65], fp_b[65];
    char bundle_a[320], bundle_b[320];
} boot_env;

static void fp_of(tsc_ca *ca, char out[65])
{
    tls_cert_sha256(ca->cert, out);
}

static void boot_setup(boot_env *b)
{
    memset(b, 0, sizeof *b);
    b->dir = tsc_tmpdir();
    snprintf(b->state, sizeof b->state, "%s/state", b->dir);
    b->ca_a = tsc_ca_new("root A");
    b->ca_b = tsc_ca_new("root B");
    fp_of(b->ca_a, b->fp_a);
    fp_of(b->ca_b, b->fp_b);
    snprintf(b->bundle_a, sizeof b->bundle_a, "%s/a.pem", b->dir);
    snprintf(b->bundle_b, sizeof b->bundle_b, "%s/b.pem", b->dir);
    char *pa = tsc_ca_pem(b->ca_a), *pb = tsc_ca_pem(b->ca_b);
    tca_write(b->bundle_a, pa);
    tca_write(b->bundle_b, pb);
    free(pa);
    free(pb);
    /* a state directory that enrolled with CA A (before explicit-input records) */
    mkdir(b->state, 0700);
    cert_pool *p = NULL;
    mesh_err err = {0};
    cr_assert_eq(cert_pool_new(&p, &err), MESH_OK);
    char *bundle = tsc_ca_pem(b->ca_a);
    int64_t now = time(NULL);
    cr_assert_eq(cert_pool_set_bundle(p, bundle, now, &err), MESH_OK, "%s", err.msg);
    free(bundle);
    char *csr = NULL;
    cr_assert_eq(cert_pool_make_csr(p, WEB, true, &csr, &err), MESH_OK, "%s", err.msg);
    char *chain = tsc_sign_csr(b->ca_a, csr, now - 10, now + 3600);
    cr_assert_eq(cert_pool_offer_svid(p, chain, NULL, now, &err), MESH_OK, "%s", err.msg);
    char path[400];
    snprintf(path, sizeof path, "%s/cert-pool", b->state);
    cr_assert_eq(cert_pool_save(p, path, &err), MESH_OK, "%s", err.msg);
    cert_pool_free(p);
    free(csr);
    free(chain);
}

static void boot_teardown(boot_env *b)
{
    tsc_ca_free(b->ca_a);
    tsc_ca_free(b->ca_b);
    tca_sh(NULL, 0, "rm -rf %s", b->dir);
    free(b->dir);
}

/* Boots, checks the bundle it ends with holds exactly `want` roots (fps, NULL-ended). */
static sc_boot_info boot(boot_env *b, const char *bundle_flag, const char *token,
                         const char *const *want)
{
    sc_opts o;
    memset(&o, 0, sizeof o);
    o.meshd = "127.0.0.1:1";
    o.state_dir = b->state;
    o.ca_bundle = bundle_flag;
    o.token = token;
    o.spiffe_id = WEB;
    cert_pool *p = NULL;
    sc_boot_info info;
    mesh_err err = {0};
    cr_assert_eq(sc_boot_identity(&o, &p, &info, &err), MESH_OK, "%s", err.msg);
    cert_pool_info ci;
    cert_pool_get_info(p, time(NULL), &ci);
    size_t n = 0;
    while (want && want[n])
        n++;
    cr_assert_eq(ci.n_roots, n, "roots after boot");
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t j = 0; j < ci.n_roots; j++)
            found |= strcmp(ci.roots[j].sha256, want[i]) == 0;
        cr_assert(found, "root %.16s missing", want[i]);
    }
    /* what the xDS client would persist */
    char path[400];
    snprintf(path, sizeof path, "%s/cert-pool", b->state);
    cr_assert_eq(cert_pool_save(p, path, &err), MESH_OK);
    cert_pool_free(p);
    return info;
}

Test(sidecar_trust, a_new_bundle_replaces_the_persisted_roots_the_same_one_does_not)
{
    boot_env b;
    boot_setup(&b);
    const char *a[] = {b.fp_a, NULL}, *bb[] = {b.fp_b, NULL}, *ab[] = {b.fp_a, b.fp_b, NULL};
    /* no record yet (a state dir from before): the file is merged, never loses trust */
    boot(&b, b.bundle_b, NULL, ab);
    /* meshd pushed a bundle with only A; then a restart with the same file: A stays */
    cert_pool *p = NULL;
    mesh_err err = {0};
    char path[400];
    snprintf(path, sizeof path, "%s/cert-pool", b.state);
    cr_assert_eq(cert_pool_load(path, &p, &err), MESH_OK, "%s", err.msg);
    char *pa = tsc_ca_pem(b.ca_a);
    cr_assert_eq(cert_pool_set_bundle(p, pa, time(NULL), &err), MESH_OK);
    cr_assert_eq(cert_pool_save(p, path, &err), MESH_OK);
    cert_pool_free(p);
    free(pa);
    boot(&b, b.bundle_b, NULL, a);
    /* a bundle file with new content wins over the state directory */
    char *pb = tsc_ca_pem(b.ca_b);
    char newer[400];
    snprintf(newer, sizeof newer, "%s/current.pem", b.dir);
    tca_write(newer, pb);
    free(pb);
    boot(&b, b.bundle_a, NULL, a);   /* A's file: new content, replaces (A) */
    boot(&b, newer, NULL, bb);       /* "current" (B): replaces again */
    boot(&b, newer, NULL, bb);       /* unchanged */
    boot(&b, NULL, NULL, bb);        /* no flag: the persisted roots */
    /* a damaged bundle file is an error, and the state is untouched */
    tca_write(newer, "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n");
    sc_opts o;
    memset(&o, 0, sizeof o);
    o.meshd = "127.0.0.1:1";
    o.state_dir = b.state;
    o.ca_bundle = newer;
    cert_pool *q = NULL;
    sc_boot_info info;
    cr_assert_neq(sc_boot_identity(&o, &q, &info, &err), MESH_OK);
    cr_assert(strstr(err.msg, "--ca-bundle"), "%s", err.msg);
    cr_assert_null(q);
    boot(&b, NULL, NULL, bb);
    boot_teardown(&b);
}

Test(sidecar_trust, a_token_never_used_reenrols_a_spent_one_does_not)
{
    boot_env b;
    boot_setup(&b);
    const char *a[] = {b.fp_a, NULL};
    sc_boot_info info = boot(&b, NULL, NULL, a);
    cr_assert_not(info.reenrol);
    cr_assert_not(info.first_contact);
    info = boot(&b, NULL, TOKEN_SECRET, a);
    cr_assert(info.reenrol, "a token this state dir never used");
    char h[65];
    xdsc_token_hash(TOKEN_SECRET, h);
    xdsc_inputs_note_token(b.state, h);   /* the xDS client spent it */
    info = boot(&b, NULL, TOKEN_SECRET, a);
    cr_assert_not(info.reenrol, "spent");
    info = boot(&b, NULL, TOKEN_SECRET ".BfPCXsW7WYFplyABOQRGPY8WK2ihOTA4Dj6LNKETKDs", a);
    cr_assert_not(info.reenrol, "the same secret with a pin is the same token");
    info = boot(&b, NULL, "mjt_BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", a);
    cr_assert(info.reenrol, "another token");
    boot_teardown(&b);
}

Test(sidecar_trust, first_contact_needs_a_bundle_or_a_pinned_token)
{
    char *dir = tsc_tmpdir();
    char state[300];
    snprintf(state, sizeof state, "%s/fresh", dir);
    sc_opts o;
    memset(&o, 0, sizeof o);
    o.meshd = "127.0.0.1:1";
    o.state_dir = state;
    o.spiffe_id = WEB;
    o.token = TOKEN_SECRET;
    cert_pool *p = NULL;
    sc_boot_info info;
    mesh_err err = {0};
    cr_assert_eq(sc_boot_identity(&o, &p, &info, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "give --ca-bundle"), "%s", err.msg);
    cr_assert(strstr(err.msg, "pins the CA"), "%s", err.msg);
    o.token = TOKEN_SECRET ".BfPCXsW7WYFplyABOQRGPY8WK2ihOTA4Dj6LNKETKDs";
    cr_assert_eq(sc_boot_identity(&o, &p, &info, &err), MESH_OK, "%s", err.msg);
    cr_assert(info.first_contact);
    cert_pool_free(p);
    tca_sh(NULL, 0, "rm -rf %s", dir);
    free(dir);
}
