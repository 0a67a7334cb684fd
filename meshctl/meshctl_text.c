/* meshctl/meshctl_text.c — escaping for meshctl's text output (see ctl_esc in meshctl.h).
 *
 * Everything meshctl prints in text mode that came from the store (names,
 * identities, audit details, NACK messages written from what a sidecar sent)
 * goes through ctl_esc, so a stored newline or terminal escape shows as
 * "\n" / "\x1b" and can neither forge a row nor drive the operator's
 * terminal. JSON output escapes in common/json_out.c instead. */
#include <stdlib.h>
#include <string.h>

#include "common/escape.h"
#include "meshctl/meshctl.h"

static const char *ring_keep(ctl_ctx *c, char *s)
{
    if (!s)
        return "(out of memory)";
    size_t i = c->esc_next++ % CTL_ESC_RING;
    free(c->esc_ring[i]);
    c->esc_ring[i] = s;
    return s;
}

const char *ctl_esc(ctl_ctx *c, const char *s)
{
    return ring_keep(c, mesh_escape_dup(s, 0));
}

const char *ctl_esc_lines(ctl_ctx *c, const char *s)
{
    return ring_keep(c, mesh_escape_dup(s, MESH_ESC_KEEP_LINES));
}

void ctl_text_free(ctl_ctx *c)
{
    for (size_t i = 0; i < CTL_ESC_RING; i++) {
        free(c->esc_ring[i]);
        c->esc_ring[i] = NULL;
    }
}
