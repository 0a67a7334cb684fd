/* common/duration.h — parsing human durations ("90s", "15m", "24h", "7d", "250ms").
 *
 * Used by every command-line flag that takes a time span (meshd, mesh-sidecar,
 * meshctl and its drill, mesh-xdsclient), so that "24h" means the same thing
 * to all of them. The grammar: a whole number, then at most one unit of ms,
 * s, m, h, d or y (365 days). Nothing else: no sign, no space, no fraction,
 * so " +5m" and "1.5s" are refused everywhere. A number without a unit counts
 * in the flag's own unit, which its help text names (duration_bare). The
 * YAML mesh config has its own stricter rule (config/config_check.c). */
#ifndef MESH_COMMON_DURATION_H
#define MESH_COMMON_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* What a bare number ("200") counts. Seconds unless a flag's help says
 * milliseconds, as meshd's --poll-interval does. */
enum duration_bare {
    DURATION_BARE_SECONDS,
    DURATION_BARE_MILLIS,
};

/* Parses into milliseconds. */
int duration_parse_ms(const char *s, enum duration_bare bare, int64_t *ms_out, mesh_err *err);
/* Formats seconds as "1d2h3m4s" (shortest form, "0s" for 0). */
void duration_format(int64_t seconds, char *buf, size_t len);
/* Formats milliseconds the same way, with a "ms" part when not whole
 * seconds: "250ms", "1s500ms", "1m". */
void duration_format_ms(int64_t ms, char *buf, size_t len);

#endif
