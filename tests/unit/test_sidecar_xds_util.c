/* tests/unit/test_sidecar_xds_util.c — fixtures for the sidecar xDS client tests. */
#include "test_sidecar_xds_util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "sds/compiler/xds_compile.h"

/* The config's strings are string literals; only the arrays are allocated. */
void tx_mesh(mesh_config *cfg, int with_outbound, uint32_t api_v1_weight)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->n_services = 4;
    cfg->services = calloc(4, sizeof *cfg->services);
    cr_assert_not_null(cfg->services);
    mesh_service *s = cfg->services;
    s[0] = (mesh_service){.name = "web", .protocol = MESH_PROTO_HTTP, .port = 8080,
                          .connect_timeout_ms = 1000, .source = "t.yaml:1"};
    s[1] = (mesh_service){.name = "api-v1", .protocol = MESH_PROTO_HTTP, .port = 8081,
                          .lb = MESH_LB_LEAST_REQUEST, .connect_timeout_ms = 500,
                          .source = "t.yaml:2"};
    s[2] = (mesh_service){.name = "api-v2", .protocol = MESH_PROTO_HTTP, .port = 8082,
                          .connect_timeout_ms = 1000, .source = "t.yaml:3"};
    s[3] = (mesh_service){.name = "db", .protocol = MESH_PROTO_TCP, .port = 5432,
                          .connect_timeout_ms = 1000, .source = "t.yaml:4"};

    cfg->n_workloads = 4;
    cfg->workloads = calloc(4, sizeof *cfg->workloads);
    cr_assert_not_null(cfg->workloads);
    mesh_tcp_outbound *tcp = calloc(1, sizeof *tcp);
    cr_assert_not_null(tcp);
    *tcp = (mesh_tcp_outbound){.service = "db", .listen = "127.0.0.1:15201"};
    mesh_workload *w = cfg->workloads;
    w[0] = (mesh_workload){.name = "web-1", .spiffe_id = TX_WEB_ID, .service = "web",
                           .inbound = "127.0.0.1:15001", .app = "127.0.0.1:18080",
                           .outbound = with_outbound ? "127.0.0.1:15101" : NULL,
                           .tcp_outbound = tcp, .n_tcp_outbound = 1, .source = "t.yaml:10"};
    w[1] = (mesh_workload){.name = "api-v1-1", .spiffe_id = TX_API_ID, .service = "api-v1",
                           .inbound = "127.0.0.1:15002", .app = "127.0.0.1:18081",
                           .source = "t.yaml:11"};
    w[2] = (mesh_workload){.name = "api-v2-1", .spiffe_id = TX_API_ID, .service = "api-v2",
                           .inbound = "127.0.0.1:15003", .app = "127.0.0.1:18082",
                           .source = "t.yaml:12"};
    w[3] = (mesh_workload){.name = "db-1", .spiffe_id = TX_DB_ID, .service = "db",
                           .inbound = "127.0.0.1:15004", .app = "127.0.0.1:18432",
                           .source = "t.yaml:13"};

    cfg->n_routes = 1;
    cfg->routes = calloc(1, sizeof *cfg->routes);
    cr_assert_not_null(cfg->routes);
    static char *hosts[] = {"api", "api.example"};
    mesh_route_rule *rules = calloc(2, sizeof *rules);
    mesh_destination *d0 = calloc(1, sizeof *d0);
    mesh_destination *d1 = calloc(2, sizeof *d1);
    mesh_header_matcher *h = calloc(1, sizeof *h);
    cr_assert(rules && d0 && d1 && h);
    *h = (mesh_header_matcher){.name = "x-canary", .kind = MESH_HDR_EXACT, .value = "1"};
    d0[0] = (mesh_destination){.service = "api-v2", .weight = 100};
    rules[0] = (mesh_route_rule){.prefix = "/", .headers = h, .n_headers = 1, .destinations = d0,
                                 .n_destinations = 1, .timeout_ms = 2000, .retries = 2};
    d1[0] = (mesh_destination){.service = "api-v1", .weight = api_v1_weight};
    d1[1] = (mesh_destination){.service = "api-v2", .weight = 100 - api_v1_weight};
    rules[1] = (mesh_route_rule){.prefix = "/", .destinations = d1, .n_destinations = 2};
    cfg->routes[0] = (mesh_route){.name = "api", .hosts = hosts, .n_hosts = 2, .rules = rules,
                                  .n_rules = 2, .source = "t.yaml:20"};

    cfg->n_authz = 3;
    cfg->authz = calloc(3, sizeof *cfg->authz);
    static char *api_allow[] = {TX_WEB_ID};
    static char *db_allow[] = {TX_WEB_ID, TX_API_ID};
    cr_assert_not_null(cfg->authz);
    cfg->authz[0] = (mesh_authorization){.service = "api-v1", .allow = api_allow, .n_allow = 1};
    cfg->authz[1] = (mesh_authorization){.service = "api-v2", .allow = api_allow, .n_allow = 1};
    cfg->authz[2] = (mesh_authorization){.service = "db", .allow = db_allow, .n_allow = 2};
}

void tx_mesh_free(mesh_config *cfg)
{
    free(cfg->services);
    if (cfg->workloads)
        free(cfg->workloads[0].tcp_outbound);
    free(cfg->workloads);
    if (cfg->routes) {
        mesh_route_rule *r = cfg->routes[0].rules;
        free(r[0].headers);
        free(r[0].destinations);
        free(r[1].destinations);
        free(r);
    }
    free(cfg->routes);
    free(cfg->authz);
    memset(cfg, 0, sizeof *cfg);
}

void tx_compile(const char *id, int with_outbound, uint32_t api_v1_weight, xds_snapshot *out)
{
    mesh_config cfg;
    tx_mesh(&cfg, with_outbound, api_v1_weight);
    mesh_err err = {0};
    int rc = xds_compile_node(&cfg, id, out, &err);
    tx_mesh_free(&cfg);
    cr_assert_eq(rc, MESH_OK, "xds_compile_node: %s", err.msg);
}

const xds_type_set *tx_set(const xds_snapshot *s, enum xdsc_type t)
{
    switch (t) {
    case XDSC_LDS: return &s->types[XDS_LDS];
    case XDSC_RDS: return &s->types[XDS_RDS];
    case XDSC_CDS: return &s->types[XDS_CDS];
    case XDSC_EDS: return &s->types[XDS_EDS];
    default: cr_assert_fail("no compiled set for %s", xdsc_type_short(t)); return NULL;
    }
}

Envoy__Service__Discovery__V3__DiscoveryResponse *tx_response(enum xdsc_type t, const char *version,
                                                              const char *nonce,
                                                              const uint8_t *const *data,
                                                              const size_t *len, size_t n)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    envoy__service__discovery__v3__discovery_response__init(r);
    r->version_info = strdup(version);
    r->nonce = strdup(nonce);
    r->type_url = strdup(xdsc_type_url(t));
    r->n_resources = n;
    r->resources = calloc(n ? n : 1, sizeof *r->resources);
    for (size_t i = 0; i < n; i++) {
        Google__Protobuf__Any *a = calloc(1, sizeof *a);
        cr_assert_not_null(a);
        google__protobuf__any__init(a);
        a->type_url = strdup(xdsc_type_url(t));
        a->value.len = len[i];
        a->value.data = malloc(len[i] ? len[i] : 1);
        memcpy(a->value.data, data[i], len[i]);
        r->resources[i] = a;
    }
    return r;
}

Envoy__Service__Discovery__V3__DiscoveryResponse *tx_response_from(const xds_snapshot *s,
                                                                   enum xdsc_type t,
                                                                   const char *version,
                                                                   const char *nonce)
{
    const xds_type_set *set = tx_set(s, t);
    const uint8_t *data[64];
    size_t len[64];
    cr_assert_leq(set->n, 64);
    for (size_t i = 0; i < set->n; i++) {
        data[i] = set->items[i].data;
        len[i] = set->items[i].len;
    }
    return tx_response(t, version, nonce, data, len, set->n);
}

void tx_response_free(Envoy__Service__Discovery__V3__DiscoveryResponse *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_resources; i++) {
        free(r->resources[i]->type_url);
        free(r->resources[i]->value.data);
        free(r->resources[i]);
    }
    free(r->resources);
    free(r->version_info);
    free(r->nonce);
    free(r->type_url);
    free(r);
}

uint8_t *tx_pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    cr_assert_not_null(buf);
    protobuf_c_message_pack(m, buf);
    return buf;
}

void tx_tmpdir(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/meshd-test-XXXXXX");
    cr_assert_not_null(mkdtemp(buf));
}

void tx_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* ---- a throwaway CA ------------------------------------------------------------------ */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    cr_assert_not_null(e, "extension %d=%s", nid, value);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

static void set_serial(X509 *x)
{
    unsigned char b[16];
    RAND_bytes(b, sizeof b);
    b[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
}

static char *cert_pem(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, x);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *out = strndup(data, (size_t)n);
    BIO_free(bio);
    return out;
}

void tx_ca_new(tx_ca *ca, const char *cn)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cr_assert_not_null(k);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    set_serial(x);
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, name);
    X509_NAME_free(name);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600 * 24 * 30);
    X509_set_pubkey(x, k);
    add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(x, x, NID_subject_key_identifier, "hash");
    cr_assert(X509_sign(x, k, EVP_sha256()) > 0);
    ca->key = k;
    ca->cert = x;
    ca->pem = cert_pem(x);
}

char *tx_ca_sign(tx_ca *ca, const char *csr_pem, int64_t not_before, int64_t not_after)
{
    BIO *bio = BIO_new_mem_buf(csr_pem, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    BIO_free(bio);
    cr_assert_not_null(req, "CSR does not parse");
    EVP_PKEY *pub = X509_REQ_get_pubkey(req);
    cr_assert(X509_REQ_verify(req, pub) == 1);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    set_serial(x);
    X509_set_issuer_name(x, X509_get_subject_name(ca->cert));
    X509_NAME *empty = X509_NAME_new();
    X509_set_subject_name(x, empty);
    X509_NAME_free(empty);
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before);
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after);
    X509_set_pubkey(x, pub);
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name)
            X509_add_ext(x, e, -1);
    }
    add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature");
    add_ext(x, ca->cert, NID_ext_key_usage, "serverAuth,clientAuth");
    add_ext(x, ca->cert, NID_authority_key_identifier, "keyid");
    cr_assert(X509_sign(x, ca->key, EVP_sha256()) > 0);
    char *out = cert_pem(x);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    EVP_PKEY_free(pub);
    X509_REQ_free(req);
    X509_free(x);
    return out;
}

void tx_ca_free(tx_ca *ca)
{
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca->pem);
    memset(ca, 0, sizeof *ca);
}

void tx_ca_issue_server(tx_ca *ca, const char *dns_name, char **key_pem, char **crt_pem)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cr_assert_not_null(k);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    set_serial(x);
    X509_set_issuer_name(x, X509_get_subject_name(ca->cert));
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)dns_name, -1, -1,
                               0);
    X509_set_subject_name(x, name);
    X509_NAME_free(name);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    char san[300];
    snprintf(san, sizeof san, "DNS:%s", dns_name);
    add_ext(x, ca->cert, NID_subject_alt_name, san);
    add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, ca->cert, NID_ext_key_usage, "serverAuth,clientAuth");
    cr_assert(X509_sign(x, ca->key, EVP_sha256()) > 0);
    *crt_pem = cert_pem(x);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    *key_pem = strndup(data, (size_t)n);
    BIO_free(bio);
    X509_free(x);
    EVP_PKEY_free(k);
}
