/* sds/certsvc/svid_rotation.c — renewal time of an SVID (see svid_rotation.h). */
#include "sds/certsvc/svid_rotation.h"

#include <string.h>

#include "ca/ca.h"
#include "sds/compiler/xds_version.h"

int64_t svid_rotation_due(int64_t nb, int64_t na, double fraction, const char *serial)
{
    /* Lifetime counts from issuance, not from the backdated notBefore: with
     * a 60 s drill TTL the 10 s backdate would otherwise pull renewal 5 s
     * early on every round (and a 10 s SVID would be due at once). */
    if (na - nb >= 2 * CA_BACKDATE_SECONDS)
        nb += CA_BACKDATE_SECONDS;
    uint64_t h = 0;
    if (xds_hash64(serial ? serial : "", serial ? strlen(serial) : 0, &h) != 0)
        h = 1000; /* no jitter rather than none at all working */
    double jitter = ((double)(h % 2001) - 1000.0) / 1000.0 * SVID_ROTATION_JITTER;
    double f = fraction * (1.0 + jitter);
    if (f > 0.95)
        f = 0.95;
    if (f < 0.05)
        f = 0.05;
    return nb + (int64_t)((double)(na - nb) * f);
}
