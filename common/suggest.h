/* common/suggest.h — "did you mean": the closest of a set of known words.
 *
 * One implementation for every place a name can be mistyped: mesh config
 * fields and enum values (config/), meshctl commands, and every binary's
 * long flags (common/cli.c). */
#ifndef MESH_COMMON_SUGGEST_H
#define MESH_COMMON_SUGGEST_H

#include <stddef.h>

/* The candidate closest to s by optimal-string-alignment distance (an
 * insertion, deletion, substitution or swap of neighbours costs 1), if it is
 * within 1 edit for words of up to 4 characters and 2 for longer ones; an
 * exact match ignoring case wins. NULL when nothing is close. */
const char *mesh_suggest(const char *s, const char *const *candidates, size_t n);

#endif
