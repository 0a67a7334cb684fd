/* sds/protocol/ads_delivery.c — the delivery-limit check of a whole mesh
 * config (see ads_delivery.h). Compiled as meshd serves it: a SPIFFE ID of one
 * workload as that identity (xds_compile_node), each replica of a shared
 * identity as its own instance (xds_compile_workload), since the union of
 * replicas is no view any sidecar gets. */
#include "sds/protocol/ads_delivery.h"

#include <stdlib.h>
#include <string.h>

#include "sds/compiler/xds_compile.h"
#include "sds/compiler/xds_compile_workload.h"
#include "sds/protocol/ads_codec.h"

/* The encoded size of the SotW response of one type of snap. */
static int response_size(const xds_snapshot *snap, enum xds_type t, size_t *out, mesh_err *err)
{
    const xds_type_set *set = &snap->types[t];
    const xds_resource **items = NULL;
    if (set->n && !(items = calloc(set->n, sizeof *items)))
        return mesh_err_set(err, MESH_ENOMEM, "out of memory sizing a response");
    for (size_t i = 0; i < set->n; i++)
        items[i] = &set->items[i];
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = ads_response_encode(xds_type_url(t), set->version, "", items, set->n, "", &buf,
                                 &len, err);
    free(items);
    free(buf);
    *out = len;
    return rc;
}

static int identity_is_shared(const mesh_config *cfg, size_t i)
{
    for (size_t k = 0; k < cfg->n_workloads; k++)
        if (k != i && strcmp(cfg->workloads[k].spiffe_id, cfg->workloads[i].spiffe_id) == 0)
            return 1;
    return 0;
}

int ads_delivery_check(const mesh_config *cfg, size_t limit, mesh_err *err)
{
    size_t room = limit > ADS_DELIVERY_HEADROOM ? limit - ADS_DELIVERY_HEADROOM : 0;
    for (size_t i = 0; i < cfg->n_workloads; i++) {
        const mesh_workload *w = &cfg->workloads[i];
        xds_snapshot snap;
        memset(&snap, 0, sizeof snap);
        mesh_err e = {0};
        int rc = identity_is_shared(cfg, i)
                     ? xds_compile_workload(cfg, w->spiffe_id, w->name, &snap, &e)
                     : xds_compile_node(cfg, w->spiffe_id, &snap, &e);
        if (rc != MESH_OK) {
            xds_snapshot_free(&snap);
            return mesh_err_set(err, rc, "workload %s (%s): compiling its xDS config: %s",
                                w->name, w->spiffe_id, e.msg);
        }
        for (int t = 0; t < XDS_TYPE_COUNT && rc == MESH_OK; t++) {
            size_t len = 0;
            if ((rc = response_size(&snap, (enum xds_type)t, &len, &e)) != MESH_OK) {
                rc = mesh_err_set(err, rc, "workload %s (%s): %s", w->name, w->spiffe_id, e.msg);
                break;
            }
            if (len > room)
                rc = mesh_err_set(err, MESH_EINVAL,
                                  "workload %s (%s): its %s response would be %zu bytes, over "
                                  "the %zu-byte delivery limit (%zu with meshd's headroom); "
                                  "meshd could not send it: give this workload fewer services, "
                                  "routes or endpoints to know about",
                                  w->name, w->spiffe_id,
                                  xds_wire_short_name(xds_type_url((enum xds_type)t)), len,
                                  limit, room);
        }
        xds_snapshot_free(&snap);
        if (rc != MESH_OK)
            return rc;
    }
    return MESH_OK;
}
