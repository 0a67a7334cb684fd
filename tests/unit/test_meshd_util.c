/* tests/unit/test_meshd_util.c — fixtures for the meshd runtime tests (test_meshd_util.h). */
#include "tests/unit/test_meshd_util.h"

#include <criterion/criterion.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "ca/csr.h"
#include "common/mgrpc.h"
#include "tests/unit/test_sds_util.h"

const char TMD_MESH_YAML[] =
    "services:\n"
    "  - name: web\n"
    "    protocol: http\n"
    "    port: 8080\n"
    "  - name: api\n"
    "    protocol: http\n"
    "    port: 8081\n"
    "workloads:\n"
    "  - name: web-1\n"
    "    spiffe_id: " TSD_WEB "\n"
    "    service: web\n"
    "    inbound: 127.0.0.1:15001\n"
    "    app: 127.0.0.1:18080\n"
    "    outbound: 127.0.0.1:15101\n"
    "  - name: api-1\n"
    "    spiffe_id: " TSD_API "\n"
    "    service: api\n"
    "    inbound: 127.0.0.1:15002\n"
    "    app: 127.0.0.1:18081\n"
    "authorization:\n"
    "  - service: api\n"
    "    allow:\n"
    "      - " TSD_WEB "\n";

md_ctx *tmd_ctx_new(const char *db_path)
{
    md_ctx *ctx = calloc(1, sizeof *ctx);
    cr_assert_not_null(ctx);
    char *argv[] = {"meshd", "--db", "unused.db", "--instance", TMD_INSTANCE, NULL};
    mesh_err err = {0};
    cr_assert_eq(md_opts_parse(5, argv, &ctx->opts, &err), 0, "%s", err.msg);
    ctx->opts.db_path = db_path;
    snprintf(ctx->trust_domain, sizeof ctx->trust_domain, "%s", TSD_TD);
    cr_assert_eq(md_ctx_init(ctx, &err), MESH_OK, "%s", err.msg);
    return ctx;
}

void tmd_ctx_free(md_ctx *ctx)
{
    md_registry_destroy(ctx);
    md_cache_destroy(&ctx->cache);
    md_tls_destroy(&ctx->tls);
    md_audit_gate_destroy(&ctx->audit_gate);
    md_metrics_destroy(&ctx->metrics);
    pthread_mutex_destroy(&ctx->life_mu);
    pthread_cond_destroy(&ctx->life_cv);
    pthread_mutex_destroy(&ctx->reg_mu);
    pthread_mutex_destroy(&ctx->work.mu);
    pthread_cond_destroy(&ctx->work.cv);
    pthread_mutex_destroy(&ctx->status.mu);
    pthread_cond_destroy(&ctx->status.cv);
    free(ctx);
}

void tmd_config(const char *yaml, mesh_config *out)
{
    mesh_err err = {0};
    cr_assert_eq(mesh_config_parse_buffer("mesh.yaml", yaml, strlen(yaml), out, &err), MESH_OK,
                 "%s", err.msg);
}

void tmd_cache_config(md_ctx *ctx, const char *yaml, int64_t version)
{
    mesh_config cfg;
    tmd_config(yaml, &cfg);
    mesh_err err = {0};
    cr_assert_eq(md_cache_set_config(ctx, &cfg, version, &err), MESH_OK, "%s", err.msg);
}

void tmd_cache_cas(md_ctx *ctx, mesh_store *st)
{
    mesh_err err = {0};
    store_ca *list = NULL;
    size_t n = 0;
    char *bundle = NULL;
    cr_assert_eq(store_ca_list(st, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca_bundle_pem(st, &bundle, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(md_cache_set_cas(ctx, list, n, bundle, &err), MESH_OK, "%s", err.msg);
    free(bundle);
}

md_call *tmd_call_new(md_ctx *ctx, enum md_call_kind kind, const char *spiffe_id)
{
    md_call *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    cr_assert_eq(pthread_mutex_init(&c->mu, NULL), 0);
    c->ctx = ctx;
    c->kind = kind;
    atomic_init(&c->refs, 1);
    c->recv_tag = (md_tag){MD_OP_RECV, c};
    c->send_tag = (md_tag){MD_OP_SEND, c};
    c->close_tag = (md_tag){MD_OP_CLOSE, c};
    grpc_metadata_array_init(&c->req_md);
    snprintf(c->method, sizeof c->method, "%s", "/test/method");
    snprintf(c->peer_addr, sizeof c->peer_addr, "%s", "ipv4:127.0.0.1:40000");
    snprintf(c->spiffe_id, sizeof c->spiffe_id, "%s", spiffe_id ? spiffe_id : "");
    c->inflight = calloc(1, sizeof *c->inflight); /* see the header */
    cr_assert_not_null(c->inflight);
    return c;
}

md_stream *tmd_stream_new(md_call *c)
{
    md_stream *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    ads_state_init(&s->st, c->spiffe_id, c->ctx->trust_domain);
    if (md_call_kind_is_delta(c->kind)) {
        s->delta = calloc(1, sizeof *s->delta);
        cr_assert_not_null(s->delta);
        ads_delta_init(s->delta, c->spiffe_id, c->ctx->trust_domain);
    }
    c->stream = s;
    return s;
}

static void out_free(md_out *o)
{
    if (o->bb)
        grpc_byte_buffer_destroy(o->bb);
    free(o->msg);
    free(o);
}

void tmd_call_free(md_call *c)
{
    cr_assert_eq(c->registered, 0, "a test left a call in the stream registry");
    while (c->q_head) {
        md_out *o = c->q_head;
        c->q_head = o->next;
        out_free(o);
    }
    if (c->inflight)
        out_free(c->inflight);
    grpc_metadata_array_destroy(&c->req_md);
    if (c->stream)
        md_stream_free(c->stream);
    free(c->peer_cert_pem);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

size_t tmd_queued(md_call *c)
{
    size_t n = 0;
    for (md_out *o = c->q_head; o; o = o->next)
        n++;
    return n;
}

const md_out *tmd_queued_at(md_call *c, size_t i)
{
    md_out *o = c->q_head;
    for (; o && i > 0; i--)
        o = o->next;
    cr_assert_not_null(o, "fewer items queued than expected");
    return o;
}

uint8_t *tmd_bytes_at(md_call *c, size_t i, size_t *len)
{
    const md_out *o = tmd_queued_at(c, i);
    cr_assert_not_null(o->bb, "queued item %zu is a status, not a message", i);
    uint8_t *buf = NULL;
    mesh_err err = {0};
    cr_assert_eq(mgrpc_buffer_to_bytes(o->bb, &buf, len, &err), MESH_OK, "%s", err.msg);
    return buf;
}

Envoy__Service__Discovery__V3__DiscoveryResponse *tmd_response_at(md_call *c, size_t i)
{
    size_t len = 0;
    uint8_t *buf = tmd_bytes_at(c, i, &len);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, buf);
    free(buf);
    cr_assert_not_null(r, "queued item %zu is not a DiscoveryResponse", i);
    return r;
}

void tmd_connect_with_svid(tsd_env *e, md_call *c, int64_t ttl, char serial[48],
                           EVP_PKEY **key_out)
{
    EVP_PKEY *key = NULL;
    free(tsd_csr(c->spiffe_id, &key));
    free(c->peer_cert_pem);
    c->peer_cert_pem = tsd_issue(e, key, c->spiffe_id, ttl, serial, NULL);
    mesh_err err = {0};
    cr_assert_eq(pubkey_sha256_hex(key, c->pubkey_sha, &err), MESH_OK, "%s", err.msg);
    if (key_out)
        *key_out = key;
    else
        EVP_PKEY_free(key);
}

void tmd_run_job(md_ctx *ctx, tsd_env *e, void (*fn)(md_worker *, md_job *), md_job *j)
{
    md_worker w = {.ctx = ctx, .idx = 0};
    mesh_err err = {0};
    cr_assert_eq(store_open(&w.st, e->db, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(ca_load(w.st, &w.ca, &err), MESH_OK, "%s", err.msg);
    w.ca_gen = atomic_load(&ctx->cache.ca_gen);
    fn(&w, j);
    md_job_free(j);
    ca_free(w.ca);
    store_close(w.st);
}

void tmd_watch_tables(md_ctx *ctx)
{
    md_watch *w = &ctx->watch;
    cr_assert_eq(pthread_mutex_init(&w->mu, NULL), 0);
    cr_assert_eq(pthread_cond_init(&w->cv, NULL), 0);
    w->dirty = md_map_new(64);
    w->rotating = md_map_new(64);
    w->rot_backoff = md_map_new(64);
    cr_assert(w->dirty && w->rotating && w->rot_backoff);
}

int tmd_refs(md_call *c)
{
    return atomic_load(&c->refs);
}

int tmd_crl_lists(const char *pem, const char *serial_hex)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    BIGNUM *want = NULL;
    cr_assert(BN_hex2bn(&want, serial_hex) > 0);
    int found = 0;
    X509_CRL *crl;
    while (!found && (crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
        STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
        for (int i = 0; i < sk_X509_REVOKED_num(rev) && !found; i++) {
            const X509_REVOKED *r = sk_X509_REVOKED_value(rev, i);
            BIGNUM *got = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r), NULL);
            found = BN_cmp(got, want) == 0;
            BN_free(got);
        }
        X509_CRL_free(crl);
    }
    ERR_clear_error();
    BN_free(want);
    BIO_free(bio);
    return found;
}
