/* common/escape.h — the one escaping function for text that a person reads: log lines,
 * audit rows, meshctl's text output.
 *
 * Peer-supplied strings (SDS names, Node.id, claimed SPIFFE IDs, error details)
 * must not forge a line, move a terminal's cursor or smuggle bytes a viewer
 * shows differently. mesh_escape keeps printable ASCII and valid UTF-8 as they
 * are and writes everything else as a visible escape:
 *   \n \r \t            newline, carriage return, tab
 *   \xHH                other C0 controls, DEL, and each byte of invalid UTF-8
 *                       (bad lead or continuation bytes, overlong forms,
 *                       surrogates, code points past U+10FFFF)
 *   \uHHHH              C1 controls (U+0080..U+009F), the line and paragraph
 *                       separators U+2028/U+2029 and the bidirectional controls
 *                       (U+200E/F, U+202A..U+202E, U+2066..U+2069)
 * A backslash is kept as it is, so escaping is idempotent: escaping an already
 * escaped string changes nothing, and a caller may escape a value it embeds
 * while the log sink escapes the whole line again. The price is that a literal
 * "\n" typed by a peer reads like an escaped newline; the line structure and
 * the terminal are never at the peer's mercy. (JSON output is exact.) */
#ifndef MESH_COMMON_ESCAPE_H
#define MESH_COMMON_ESCAPE_H

#include <stddef.h>
#include <stdint.h>

/* Keep '\n' and '\t' as they are (multi-line text such as PEM or YAML bodies);
 * everything else is escaped as usual. */
#define MESH_ESC_KEEP_LINES 1u
/* Also write '"' as \x22: for a claimed value quoted inside a larger text
 * (an audit detail), so the claim cannot end its own quotes. */
#define MESH_ESC_QUOTES 2u

/* Escapes s[0..len) into out (always NUL-terminated when out_len > 0), never
 * cutting an escape or a UTF-8 sequence in half. Returns the length the full
 * escaped text needs (excluding the NUL): a result >= out_len means it was cut. */
size_t mesh_escape(const char *s, size_t len, unsigned flags, char *out, size_t out_len);

/* mesh_escape of a NUL-terminated string into out; NULL reads as "". Returns out. */
const char *mesh_escape_str(const char *s, char *out, size_t out_len);

/* A malloc'd escaped copy of s (NULL reads as ""); NULL when out of memory. */
char *mesh_escape_dup(const char *s, unsigned flags);

/* 1 when s[0..len) is all printable ASCII or valid UTF-8 that mesh_escape keeps. */
int mesh_escape_is_clean(const char *s, size_t len);

/* Decodes one UTF-8 sequence at p (n bytes available): returns its length
 * (1..4) and the code point, or 0 when the bytes there are not valid UTF-8
 * (including overlong forms, surrogates and values past U+10FFFF). */
size_t mesh_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);

/* 1 for the code points mesh_escape writes as \uHHHH (see above). */
int mesh_escape_is_format_char(uint32_t cp);

#endif
