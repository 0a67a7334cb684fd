/* sidecar/xds_inputs.h — which explicit trust material a state directory has already taken in.
 *
 * Precedence at start (docs/dataplane.md, "Trust material"): what the operator
 * gives on the command line wins over what the state directory holds, but
 * only when it is new. A --ca-bundle file whose content differs from the one
 * last taken in replaces the persisted roots; the same file given again
 * (typically left in a unit file) changes nothing, so it cannot undo the
 * bundle meshd pushed since. A join token this state directory has never used
 * re-enrols the sidecar (new key, new SVID) even while its SVID is valid; a
 * spent one is ignored. This file remembers the hashes that decide "new":
 *
 *     meshd-explicit-inputs 1
 *     bundle <sha256 hex of the --ca-bundle file's content>
 *     token <sha256 hex of a join token's secret part>     (used or refused; newest last)
 *
 * Hashes only (no secret), mode 0600, written atomically. */
#ifndef MESH_SIDECAR_XDS_INPUTS_H
#define MESH_SIDECAR_XDS_INPUTS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define XDSC_INPUTS_FILE "explicit-inputs"
#define XDSC_INPUTS_MAX_TOKENS 16

typedef struct xdsc_inputs {
    bool exists;                               /* the file was there */
    char bundle[65];                           /* "" = no bundle recorded */
    size_t n_tokens;
    char tokens[XDSC_INPUTS_MAX_TOKENS][65];   /* oldest first */
} xdsc_inputs;

/* A missing file is an empty record (exists = false); a damaged one is
 * MESH_ECORRUPT (the caller may treat it as empty: it holds no secret). */
int xdsc_inputs_load(const char *state_dir, xdsc_inputs *out, mesh_err *err);
int xdsc_inputs_save(const char *state_dir, const xdsc_inputs *in, mesh_err *err);
bool xdsc_inputs_has_token(const xdsc_inputs *in, const char *hash);
/* Appends (dropping the oldest beyond XDSC_INPUTS_MAX_TOKENS); no duplicates. */
void xdsc_inputs_add_token(xdsc_inputs *in, const char *hash);
/* Loads, adds the token hash, saves: for the control-plane thread once a
 * token was spent or refused. Failures are logged, not returned. */
void xdsc_inputs_note_token(const char *state_dir, const char *hash);

/* SHA-256 hex of a join token's secret part (the part meshd stores hashed);
 * of the whole string if it does not parse as a token. */
void xdsc_token_hash(const char *token, char out[65]);

#endif
