/* meshd/meshd_trust.c — which trust bundle each sidecar has ACKed.
 *
 * `meshctl ca rotate` activates a prepared CA only once every sidecar trusts
 * its root, so meshd records per node the roots of the bundle the node holds
 * after an ACK. At most one SDS response per stream awaits its answer (SotW
 * and Delta alike), so the response an ACK answers is the last one sent:
 * when it carried a bundle-named secret ("ROOTCA" or "spiffe://<td>"), its
 * roots are pending until the ACK; a NACK leaves the client with what it had.
 * A Delta response without the bundle leaves the client's bundle as it was.
 * Only a change of the ACKed roots is written (a batched status event), to
 * the row of the stream's proxy-status key (verified identity, Node.id): a
 * client naming itself like another sidecar ACKs only for itself. */
#include "meshd/meshd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sds/protocol/sds_names.h"

static int is_bundle_name(const md_ctx *ctx, const char *name)
{
    if (strcmp(name, SDS_NAME_ROOTCA) == 0)
        return 1;
    return strncmp(name, "spiffe://", 9) == 0 && strcmp(name + 9, ctx->trust_domain) == 0;
}

static void set_str(char **slot, const char *v)
{
    char *copy = v ? strdup(v) : NULL;
    if (v && !copy) {
        log_error("meshd", "out of memory tracking trust bundle ACKs");
        return;
    }
    free(*slot);
    *slot = copy;
}

void md_trust_on_sds_sent_locked(md_call *c, const xds_resource *const *items, size_t n)
{
    md_stream *s = c->stream;
    if (!s->secrets || !s->secrets->bundle)
        return;
    for (size_t i = 0; i < n; i++) {
        if (items[i] && items[i]->name && is_bundle_name(c->ctx, items[i]->name)) {
            set_str(&s->sds_pending_roots, sds_bundle_roots(s->secrets->bundle));
            return;
        }
    }
}

void md_trust_on_sds_reply_locked(md_call *c, enum ads_req_kind kind)
{
    md_stream *s = c->stream;
    if (kind == ADS_REQ_NACK) {
        set_str(&s->sds_pending_roots, s->sds_acked_roots);
        return;
    }
    if (kind != ADS_REQ_ACK || !s->sds_pending_roots || !s->node_known)
        return;
    if (s->sds_acked_roots && strcmp(s->sds_acked_roots, s->sds_pending_roots) == 0)
        return;
    set_str(&s->sds_acked_roots, s->sds_pending_roots);
    md_status_trust(c->ctx, s->node_id, md_stream_row_id(c), s->sds_pending_roots);
    log_debug("meshd", "node %s (%s) ACKed a trust bundle with roots %.40s%s", s->node_id,
              c->spiffe_id, s->sds_pending_roots, strlen(s->sds_pending_roots) > 40 ? "..." : "");
}
