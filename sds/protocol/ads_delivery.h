/* sds/protocol/ads_delivery.h — does a mesh config fit the delivery limit?
 *
 * Compiles the config for every workload (sds/compiler) and encodes
 * each type's whole SotW response as meshd would send it (ads_codec), to
 * refuse, before it is stored, a config with a response bigger than
 * XDS_WIRE_MAX_MESSAGE (common/xds_wire.h): meshd would never send it, and the
 * sidecar would keep its old config. `meshctl apply` calls it. */
#ifndef MESH_SDS_PROTOCOL_ADS_DELIVERY_H
#define MESH_SDS_PROTOCOL_ADS_DELIVERY_H

#include <stddef.h>

#include "common/error.h"
#include "config/mesh_config.h"

/* Room left in the size check for what only meshd knows (its nonce and
 * control_plane.identifier), so that a config this check passes is one meshd
 * sends. */
#define ADS_DELIVERY_HEADROOM 1024

/* MESH_OK if every workload's every response fits in limit bytes (less the
 * headroom); MESH_EINVAL naming the workload, its SPIFFE ID, the type and the
 * size of the first that does not; other codes if compiling fails. */
int ads_delivery_check(const mesh_config *cfg, size_t limit, mesh_err *err);

#endif
