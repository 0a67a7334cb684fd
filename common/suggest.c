/* common/suggest.c — "did you mean" (see suggest.h). */
#include "common/suggest.h"

#include <string.h>
#include <strings.h>

/* Optimal-string-alignment distance: insertions, deletions, substitutions
 * and swaps of two neighbours ("htpp" -> "http" is 1) each cost 1. Words
 * longer than 64 characters are never close (bounded stack, no allocation). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *mesh_suggest(const char *s, const char *const *candidates, size_t n)
{
    if (!s || !*s)
        return NULL;
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        if (!candidates[i])
            continue;
        if (strcasecmp(s, candidates[i]) == 0)
            return candidates[i];
        size_t d = edit_distance(s, candidates[i]);
        /* One typo in a short word, two in a longer one: catches "protcol",
         * "weigth", "htpp" without offering "tcp" for "udp". */
        size_t max_d = strlen(candidates[i]) <= 4 ? 1 : 2;
        if (d <= max_d && d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}
