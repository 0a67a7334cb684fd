/* tests/unit/test_ca_plugin.c — plug-in CA: operator material made with the
 * openssl CLI is imported, signs SVIDs that verify up to the operator's
 * root, and bad material is refused with a clear reason. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ca/ca.h"
#include "ca/csr.h"
#include "tests/unit/test_ca_util.h"

static const char CNF[] =
    "[req]\n"
    "distinguished_name = dn\n"
    "prompt = no\n"
    "[dn]\n"
    "O = example.org\n"
    "CN = Plug-in Test Root\n"
    "[v3_root]\n"
    "basicConstraints = critical,CA:TRUE\n"
    "keyUsage = critical,keyCertSign,cRLSign\n"
    "subjectKeyIdentifier = hash\n"
    "[v3_int]\n"
    "basicConstraints = critical,CA:TRUE,pathlen:0\n"
    "keyUsage = critical,keyCertSign,cRLSign\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid:always\n"
    "subjectAltName = URI:spiffe://example.org\n"
    "[v3_leaf]\n"
    "basicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature\n";

/* <dir>/pki/{root,int,leafish,root2}.{pem,key}: a root, an intermediate it
 * signed (20 days), a non-CA cert it signed, and an unrelated second root. */
static void make_pki(const tca_env *e, char *pki, size_t len)
{
    snprintf(pki, len, "%s/pki", e->dir);
    cr_assert_eq(mkdir(pki, 0700), 0);
    char path[256], out[8192];
    snprintf(path, sizeof path, "%s/ca.cnf", pki);
    tca_write(path, CNF);
    int rc = tca_sh(
        out, sizeof out,
        "cd %s && "
        "openssl req -x509 -config ca.cnf -extensions v3_root -newkey ec -pkeyopt "
        "ec_paramgen_curve:P-256 -nodes -keyout root.key -out root.pem -days 30 && "
        "openssl req -x509 -config ca.cnf -extensions v3_root -newkey ec -pkeyopt "
        "ec_paramgen_curve:P-256 -nodes -keyout root2.key -out root2.pem -days 30 "
        "-subj '/O=example.org/CN=Other Root' && "
        "openssl req -new -config ca.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-keyout int.key -out int.csr -subj '/O=example.org/CN=Plug-in Test Intermediate' && "
        "openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 20 "
        "-extfile ca.cnf -extensions v3_int -out int.pem && "
        "openssl req -new -config ca.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-keyout leafish.key -out leafish.csr -subj '/O=example.org/CN=not a CA' && "
        "openssl x509 -req -in leafish.csr -CA root.pem -CAkey root.key -CAcreateserial "
        "-days 20 -extfile ca.cnf -extensions v3_leaf -out leafish.pem && "
        "cat int.pem root.pem > int-chain.pem",
        pki);
    cr_assert_eq(rc, 0, "openssl: %s", out);
}

static int import(tca_env *e, const char *td, const char *pki, const char *cert, const char *key,
                  const char *chain, mesh_err *err)
{
    char c[256], k[256], ch[256];
    snprintf(c, sizeof c, "%s/%s", pki, cert);
    snprintf(k, sizeof k, "%s/%s", pki, key);
    snprintf(ch, sizeof ch, "%s/%s", pki, chain ? chain : "");
    ca_init_opts o = {.trust_domain = td, .key_dir = e->keydir, .import_cert_path = c,
                      .import_key_path = k, .import_chain_path = chain ? ch : NULL};
    int64_t id = 0;
    return ca_init(e->st, &o, &id, err);
}

/* Nothing of a refused import remains: no CA row, no key file. */
static void assert_nothing_imported(tca_env *e)
{
    store_ca *list = NULL;
    size_t n = 0;
    mesh_err err = {0};
    cr_assert_eq(store_ca_list(e->st, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 0, "no CA row");
    char out[256];
    tca_sh(out, sizeof out, "ls %s 2>/dev/null | wc -l", e->keydir);
    cr_assert_eq(atoi(out), 0, "no key file left: %s", out);
}

Test(ca_plugin, intermediate_signs_svids_that_verify_to_operator_root)
{
    tca_env e;
    tca_setup(&e);
    char pki[128];
    make_pki(&e, pki, sizeof pki);
    mesh_err err = {0};
    cr_assert_eq(import(&e, TCA_TD, pki, "int.pem", "int.key", "root.pem", &err), MESH_OK, "%s",
                 err.msg);

    /* stored: the intermediate, its chain (the root), a 0600 copy of the key */
    store_ca row;
    cr_assert_eq(store_ca_get_active(e.st, &row, &err), MESH_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/root.pem", pki);
    char *root_pem = tca_read(path);
    snprintf(path, sizeof path, "%s/int.pem", pki);
    char *int_pem = tca_read(path);
    cr_assert_str_eq(row.chain_pem, root_pem);
    cr_assert_str_eq(row.cert_pem, int_pem);
    cr_assert(strncmp(row.key_path, e.keydir, strlen(e.keydir)) == 0, "%s", row.key_path);
    struct stat sb;
    cr_assert_eq(stat(row.key_path, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, 0600);
    cr_assert_str_eq(row.key_type, "ec-p256");

    /* bundle: just the operator's root */
    char *bundle = NULL;
    cr_assert_eq(ca_bundle_pem(e.st, &bundle, &err), MESH_OK);
    cr_assert_str_eq(bundle, root_pem);

    mesh_ca *ca = tca_load(&e);
    ca_issued out;
    tca_issue(ca, e.st, TCA_ID_WEB, 3600, &out);
    cr_assert_eq(out.chain_len, 2, "leaf + intermediate (root left out)");
    cr_assert_str_eq(out.chain[1], int_pem);
    cr_assert_eq(tca_count(out.chain_pem, "BEGIN CERTIFICATE"), 2);

    char leaf[256], chain[256], rootf[256], o[4096];
    snprintf(leaf, sizeof leaf, "%s/leaf.pem", e.dir);
    snprintf(chain, sizeof chain, "%s/chain.pem", e.dir);
    snprintf(rootf, sizeof rootf, "%s/bundle.pem", e.dir);
    tca_write(leaf, out.cert_pem);
    tca_write(chain, out.chain_pem);
    tca_write(rootf, bundle);
    cr_assert_eq(tca_sh(o, sizeof o, "openssl verify -x509_strict -CAfile %s -untrusted %s %s",
                        rootf, chain, leaf),
                 0, "%s", o);
    /* and without the intermediate it must not verify: the chain matters */
    cr_assert_neq(tca_sh(o, sizeof o, "openssl verify -CAfile %s %s", rootf, leaf), 0, "%s", o);
    ca_issued_free(&out);

    /* the intermediate lives 20 days: a 30-day SVID would outlive it */
    char *csr = tca_csr(NULL, TCA_ID_WEB, NULL);
    ca_issue_req req = {.csr_pem = csr, .authorised_id = TCA_ID_WEB,
                        .ttl_seconds = 30LL * 24 * 3600};
    int64_t n = tca_cert_count(e.st);
    cr_assert_eq(ca_issue_svid(ca, e.st, &req, &out, &err), MESH_EEXPIRED);
    cr_assert(strstr(err.msg, "expires at"), "%s", err.msg);
    cr_assert_eq(tca_cert_count(e.st), n);

    free(csr);
    ca_free(ca);
    free(bundle);
    free(root_pem);
    free(int_pem);
    store_ca_free(&row);
    tca_teardown(&e);
}

Test(ca_plugin, istio_layout_chain_in_cert_file)
{
    tca_env e;
    tca_setup(&e);
    char pki[128];
    make_pki(&e, pki, sizeof pki);
    mesh_err err = {0};
    cr_assert_eq(import(&e, TCA_TD, pki, "int-chain.pem", "int.key", NULL, &err), MESH_OK, "%s",
                 err.msg);
    char *bundle = NULL;
    cr_assert_eq(ca_bundle_pem(e.st, &bundle, &err), MESH_OK);
    cr_assert_eq(tca_count(bundle, "BEGIN CERTIFICATE"), 1);
    free(bundle);
    tca_teardown(&e);
}

Test(ca_plugin, operator_root_as_ca)
{
    tca_env e;
    tca_setup(&e);
    char pki[128];
    make_pki(&e, pki, sizeof pki);
    mesh_err err = {0};
    cr_assert_eq(import(&e, TCA_TD, pki, "root.pem", "root.key", NULL, &err), MESH_OK, "%s",
                 err.msg);
    mesh_ca *ca = tca_load(&e);
    ca_issued out;
    tca_issue(ca, e.st, TCA_ID_DB, 600, &out);
    cr_assert_eq(out.chain_len, 1);
    char leaf[256], rootf[256], o[4096];
    snprintf(leaf, sizeof leaf, "%s/leaf.pem", e.dir);
    snprintf(rootf, sizeof rootf, "%s/root.pem", pki);
    tca_write(leaf, out.cert_pem);
    cr_assert_eq(tca_sh(o, sizeof o, "openssl verify -x509_strict -CAfile %s %s", rootf, leaf), 0,
                 "%s", o);
    ca_issued_free(&out);
    ca_free(ca);
    tca_teardown(&e);
}

Test(ca_plugin, mismatched_key)
{
    tca_env e;
    tca_setup(&e);
    char pki[128];
    make_pki(&e, pki, sizeof pki);
    mesh_err err = {0};
    cr_assert_eq(import(&e, TCA_TD, pki, "int.pem", "root.key", "root.pem", &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "does not match the certificate"), "%s", err.msg);
    cr_assert(strstr(err.msg, "root.key"), "names the file: %s", err.msg);
    assert_nothing_imported(&e);
    tca_teardown(&e);
}

Test(ca_plugin, non_ca_cert)
{
    tca_env e;
    tca_setup(&e);
    char pki[128];
    make_pki(&e, pki, sizeof pki);
    mesh_err err = {0};
    cr_assert_eq(import(&e, TCA_TD, pki, "leafish.pem", "leafish.key", "root.pem", &err),
                 MESH_EINVAL);
    cr_assert(strstr(err.msg, "is not a CA certificate"), "%s", err.msg);
    assert_nothing_imported(&e);
    tca_teardown(&e);
}

Test(ca_plugin, expired_and_not_yet_valid_cert)
{
    tca_env e;
    tca_setup(&e);
    char pki[128];
    make_pki(&e, pki, sizeof pki);
    EVP_PKEY *k = tca_key_ec("P-256");
    char *pem = NULL;
    mesh_err err = {0};
    cr_assert_eq(pem_write_private_key(k, &pem, &err), MESH_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/old.key", pki);
    tca_write(path, pem);
    char *old = tca_make_cert(k, NULL, NULL, -7200, -3600, 1, "expired root");
    snprintf(path, sizeof path, "%s/old.pem", pki);
    tca_write(path, old);
    cr_assert_eq(import(&e, TCA_TD, pki, "old.pem", "old.key", NULL, &err), MESH_EEXPIRED);
    cr_assert(strstr(err.msg, "expired at"), "%s", err.msg);
    assert_nothing_imported(&e);

    char *future = tca_make_cert(k, NULL, NULL, 3600, 7200, 1, "future root");
    snprintf(path, sizeof path, "%s/future.pem", pki);
    tca_write(path, future);
    cr_assert_eq(import(&e, TCA_TD, pki, "future.pem", "old.key", NULL, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "not valid until"), "%s", err.msg);
    assert_nothing_imported(&e);
    free(future);
    free(old);
    free(pem);
    EVP_PKEY_free(k);
    tca_teardown(&e);
}

Test(ca_plugin, broken_chains)
{
    tca_env e;
    tca_setup(&e);
    char pki[128];
    make_pki(&e, pki, sizeof pki);
    mesh_err err = {0};
    /* intermediate without any chain */
    cr_assert_eq(import(&e, TCA_TD, pki, "int.pem", "int.key", NULL, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "is not self-signed"), "%s", err.msg);
    /* chain with an unrelated root */
    cr_assert_eq(import(&e, TCA_TD, pki, "int.pem", "int.key", "root2.pem", &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "does not chain to a root"), "%s", err.msg);
    /* chain holding no root at all */
    cr_assert_eq(import(&e, TCA_TD, pki, "int.pem", "int.key", "leafish.pem", &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "no self-signed root"), "%s", err.msg);
    /* missing and garbage files */
    cr_assert_eq(import(&e, TCA_TD, pki, "int.pem", "int.key", "missing.pem", &err),
                 MESH_ENOTFOUND);
    cr_assert(strstr(err.msg, "missing.pem"), "%s", err.msg);
    cr_assert_eq(import(&e, TCA_TD, pki, "ca.cnf", "int.key", "root.pem", &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "no certificate found"), "%s", err.msg);
    cr_assert_eq(import(&e, TCA_TD, pki, "int.pem", "ca.cnf", "root.pem", &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "not a PEM private key"), "%s", err.msg);
    /* a CA for another SPIFFE trust domain */
    cr_assert_eq(import(&e, "other.org", pki, "int.pem", "int.key", "root.pem", &err),
                 MESH_EINVAL);
    cr_assert(strstr(err.msg, "trust domain 'example.org', not 'other.org'"), "%s", err.msg);
    assert_nothing_imported(&e);
    tca_teardown(&e);
}

Test(ca_plugin, encrypted_key_refused)
{
    tca_env e;
    tca_setup(&e);
    char pki[128];
    make_pki(&e, pki, sizeof pki);
    char o[4096];
    cr_assert_eq(tca_sh(o, sizeof o,
                        "cd %s && openssl pkey -in int.key -aes256 -passout pass:secret -out "
                        "int-enc.key",
                        pki),
                 0, "%s", o);
    mesh_err err = {0};
    cr_assert_eq(import(&e, TCA_TD, pki, "int.pem", "int-enc.key", "root.pem", &err),
                 MESH_EINVAL);
    cr_assert(strstr(err.msg, "encrypted"), "%s", err.msg);
    assert_nothing_imported(&e);
    tca_teardown(&e);
}
