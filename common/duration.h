/* common/duration.h — parsing human durations ("90s", "15m", "24h", "7d", "250ms").
 *
 * Used by every command-line flag and config field that takes a time span, so
 * that "24h" means the same thing to meshctl, meshd and the sidecar. */
#ifndef MESH_COMMON_DURATION_H
#define MESH_COMMON_DURATION_H

#include <stdint.h>

#include "common/error.h"

/* Parses into milliseconds. A bare number is seconds. Units: ms s m h d y. */
int duration_parse_ms(const char *s, int64_t *ms_out, mesh_err *err);
/* Same, in whole seconds (sub-second values are rejected). */
int duration_parse_s(const char *s, int64_t *s_out, mesh_err *err);
/* Formats seconds as "1d2h3m4s" (shortest form, "0s" for 0). */
void duration_format(int64_t seconds, char *buf, size_t len);

#endif
