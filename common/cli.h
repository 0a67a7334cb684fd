/* common/cli.h — checking command-line flag values, one way for every binary.
 *
 * meshd, mesh-sidecar, meshctl (and its drill) and mesh-xdsclient parse their
 * numbers and durations here, so a value means the same to all of them and a
 * bad one is refused the same way: before anything starts, with an error that
 * names the flag, the value and what it accepts, e.g.
 *   --poll-interval '5x' is not a duration: the unit must be ms, s, m, h, d or y, ...
 *   --svid-ttl '91d': must be between 10s and 90d
 * Durations follow common/duration.h; a bare number counts in the unit the
 * caller passes, which the flag's help text must name. */
#ifndef MESH_COMMON_CLI_H
#define MESH_COMMON_CLI_H

#include <stdint.h>

#include "common/duration.h"
#include "common/error.h"
#include "common/log.h"

/* A whole number (decimal, optional leading '-') in [lo, hi]. */
int cli_long(const char *flag, const char *value, long lo, long hi, long *out, mesh_err *err);
/* A finite decimal number in [lo, hi]. */
int cli_double(const char *flag, const char *value, double lo, double hi, double *out,
               mesh_err *err);
/* A size in bytes in [lo, hi]: a whole number with an optional binary unit,
 * KiB, MiB or GiB ("512KiB", "8MiB"); a bare number is bytes. */
int cli_bytes(const char *flag, const char *value, int64_t lo, int64_t hi, int64_t *out,
              mesh_err *err);
/* No upper bound for a duration (the library that takes the value checks it). */
#define CLI_NO_MAX INT64_MAX

/* A duration in [lo_ms, hi_ms], in milliseconds. */
int cli_duration_ms(const char *flag, const char *value, enum duration_bare bare, int64_t lo_ms,
                    int64_t hi_ms, int64_t *out, mesh_err *err);
/* A duration of whole seconds in [lo_s, hi_s] (a bare number is seconds). */
int cli_duration_s(const char *flag, const char *value, int64_t lo_s, int64_t hi_s, int64_t *out,
                   mesh_err *err);

/* debug, info, warn or error. */
int cli_log_level(const char *flag, const char *value, enum log_level *out, mesh_err *err);

/* A listen address: an IP literal (IPv6 in brackets) and a port from
 * min_port to 65535, e.g. 127.0.0.1:15010 or [::1]:15010; example goes in the
 * error. (A host name would make the bound address depend on the resolver.) */
int cli_listen_addr(const char *flag, const char *value, long min_port, const char *example,
                    mesh_err *err);

/* After getopt_long returned '?': "option '--x' needs a value" for a known
 * flag given without one, else "unknown option '--x'" with "; did you mean
 * '--y'?" when one of longopts (may be NULL) is close, then hint
 * ("; see --help") unless NULL. */
struct option;
int cli_bad_option(int argc, char **argv, const struct option *longopts, const char *hint,
                   mesh_err *err);

#endif
