/* meshd/meshd_encode.c — DiscoveryResponses encoded once per snapshot and shared.
 *
 * Every stream of one identity holds the same compiled snapshot (meshd_cache.c),
 * and after a config change they all send the same response for a type, bar the
 * nonce. Encoding it per stream cost a malloc and a copy of every resource per
 * stream per change, and each queued message held its own copy. Here the body
 * (the response without its nonce) is encoded once per (snapshot, type, subset
 * version) into a refcounted grpc_slice; each message is that slice plus a
 * few bytes of nonce field, as a two-slice byte buffer. Protobuf decodes fields
 * in any order, so body + nonce is the same message (tests/unit/test_sds_codec.c).
 *
 * The slot keeps only the last body per type: streams of an identity normally
 * ask for the same names, and a stream with another subset just encodes its
 * own (and takes the slot) instead of growing a cache without bound. */
#include "meshd/meshd_internal.h"

#include <stdlib.h>
#include <string.h>

#include "sds/protocol/ads_codec.h"

void md_snap_enc_init(md_snap *s)
{
    pthread_mutex_init(&s->enc_mu, NULL);
    for (int t = 0; t < ADS_T_COUNT; t++) {
        s->enc[t].version[0] = '\0';
        s->enc[t].body = grpc_empty_slice();
    }
}

void md_snap_enc_free(md_snap *s)
{
    for (int t = 0; t < ADS_T_COUNT; t++) {
        grpc_slice_unref(s->enc[t].body);
        s->enc[t].body = grpc_empty_slice();
        s->enc[t].version[0] = '\0';
    }
    pthread_mutex_destroy(&s->enc_mu);
}

static int encode_body(md_ctx *ctx, const ads_send *sd, grpc_slice *out, mesh_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = ads_response_encode_body(ads_type_url(sd->type), sd->version, sd->items, sd->n,
                                      ctx->control_plane_id, &buf, &len, err);
    if (rc != MESH_OK)
        return rc;
    *out = len ? grpc_slice_new(buf, len, free) : grpc_empty_slice();
    if (!len)
        free(buf);
    return MESH_OK;
}

/* A reference to the shared body of (sd->type, sd->version), encoding it
 * first if the slot holds another version. */
static int shared_body(md_ctx *ctx, md_snap *snap, const ads_send *sd, grpc_slice *out,
                       mesh_err *err)
{
    md_snap_enc *e = &snap->enc[sd->type];
    pthread_mutex_lock(&snap->enc_mu);
    if (e->version[0] && strcmp(e->version, sd->version) == 0) {
        *out = grpc_slice_ref(e->body);
        pthread_mutex_unlock(&snap->enc_mu);
        return MESH_OK;
    }
    pthread_mutex_unlock(&snap->enc_mu);
    /* Encode outside the lock: a big type must not stall the identity's
     * other streams; two threads racing here both encode, one slot wins. */
    grpc_slice body;
    int rc = encode_body(ctx, sd, &body, err);
    if (rc != MESH_OK)
        return rc;
    pthread_mutex_lock(&snap->enc_mu);
    grpc_slice old = e->body;
    e->body = grpc_slice_ref(body);
    memcpy(e->version, sd->version, sizeof e->version);
    pthread_mutex_unlock(&snap->enc_mu);
    grpc_slice_unref(old);
    *out = body;
    return MESH_OK;
}

grpc_byte_buffer *md_encode_response(md_ctx *ctx, md_snap *snap, const ads_send *sd,
                                     size_t *len, mesh_err *err)
{
    *len = 0;
    grpc_slice body;
    int rc = snap ? shared_body(ctx, snap, sd, &body, err) : encode_body(ctx, sd, &body, err);
    if (rc != MESH_OK)
        return NULL;
    uint8_t nf[ADS_NONCE_FIELD_MAX];
    size_t nlen = ads_response_nonce_field(sd->nonce, nf, sizeof nf);
    if (!nlen && sd->nonce[0]) {
        grpc_slice_unref(body);
        mesh_err_set(err, MESH_EINTERNAL, "nonce '%s' too long to encode", sd->nonce);
        return NULL;
    }
    grpc_slice parts[2] = {body, grpc_slice_from_copied_buffer((const char *)nf, nlen)};
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(parts, nlen ? 2 : 1);
    *len = GRPC_SLICE_LENGTH(body) + nlen;
    grpc_slice_unref(parts[0]);
    grpc_slice_unref(parts[1]);
    if (!bb)
        mesh_err_set(err, MESH_ENOMEM, "out of memory building a DiscoveryResponse");
    return bb;
}
