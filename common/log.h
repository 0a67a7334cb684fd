/* common/log.h — one-line structured logs to stderr.
 *
 * Two formats, chosen once at start-up (--log-format):
 *   text  "2026-11-25T14:40:01.123Z level=info comp=ca msg..." so that logs of
 *         meshd, sidecars and tests interleave readably;
 *   json  one JSON object per line (JSON Lines) for log shippers:
 *         {"ts":"2026-11-25T14:40:01.123Z","level":"info","comp":"ca","msg":"..."}
 *         always valid JSON and valid UTF-8 (json_out's escaping: control
 *         characters as \u escapes, invalid bytes as U+FFFD).
 * Secrets (private keys, join tokens) are never passed here. The level
 * threshold may change at run time from any thread (an admin endpoint, a
 * signal): it is an atomic read on every call. Every text message is escaped
 * at the sink (common/escape.h): control characters and invalid UTF-8 never
 * reach the log raw, whoever formatted them. A message longer than
 * LOG_MSG_MAX (or whose escaped form does not fit a line) is cut and ends with
 * "...(cut)". */
#ifndef MESH_COMMON_LOG_H
#define MESH_COMMON_LOG_H

#include <stddef.h>
#include <time.h>

#define LOG_MSG_MAX 4096   /* formatted message, before escaping */
#define LOG_LINE_MAX 8192  /* prefix + escaped message + newline */

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level lvl);
void log_set_format(enum log_format fmt);
int log_format_parse(const char *s, enum log_format *out);
/* A structured field of a log line: in the JSON format it is a key of its
 * own next to msg ("spiffe_id", "serial", "node", ...); the text format
 * leaves fields out, because the call site's message already says the same
 * in words. Keys are the call site's constants; values may be NULL (skipped)
 * and are escaped like the message. At most LOG_FIELDS_MAX are written. */
typedef struct log_field {
    const char *key;
    const char *value;
} log_field;
#define LOG_FIELDS_MAX 8

/* Writes one complete line (with its newline, NUL-terminated) of msg into
 * out, as log_msg would print it at time ts; returns its length. out_len
 * should be LOG_LINE_MAX. cut: msg was already cut by the formatter. */
size_t log_format_line(enum log_format fmt, enum log_level lvl, const char *comp,
                       const struct timespec *ts, const char *msg, int cut,
                       const log_field *fields, size_t n_fields, char *out, size_t out_len);
void log_msg(enum log_level lvl, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* log_msg with structured fields (see log_field). */
void log_msg_fields(enum log_level lvl, const char *comp, const log_field *fields,
                    size_t n_fields, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define log_debug(comp, ...) log_msg(LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...)  log_msg(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...)  log_msg(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_msg(LOG_ERROR, comp, __VA_ARGS__)

#endif
