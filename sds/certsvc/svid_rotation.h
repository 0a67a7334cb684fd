/* sds/certsvc/svid_rotation.h — when meshd renews an SVID (and its own serving cert).
 *
 * At --rotate-fraction (default 0.5, like Istio) of the certificate's
 * lifetime, counted from issuance rather than from the backdated notBefore,
 * with +-10% jitter derived from the serial so a fleet issued in one burst
 * renews spread out, and the same certificate always gets the same time
 * (no re-rolling the dice on every pass). Pure arithmetic, unit-tested. */
#ifndef MESH_SDS_CERTSVC_SVID_ROTATION_H
#define MESH_SDS_CERTSVC_SVID_ROTATION_H

#include <stdint.h>

#define SVID_ROTATION_JITTER 0.10

/* Unix time at which the certificate (not_before nb, not_after na, serial)
 * is due for renewal. fraction is clamped to what the jitter leaves below
 * 0.95 of the lifetime. */
int64_t svid_rotation_due(int64_t nb, int64_t na, double fraction, const char *serial);

#endif
