/* common/log.h — one-line structured logs to stderr.
 *
 * Format: "2026-11-25T14:40:01.123Z level=info comp=ca msg..." so that logs of
 * meshd, sidecars and tests interleave readably. Secrets (private keys, join
 * tokens) are never passed here. The level threshold lives in the caller's
 * context; log_set_level is called once from main before threads start.
 * Every message is escaped at the sink (common/escape.h): control characters
 * and invalid UTF-8 never reach the log raw, whoever formatted them. A message
 * longer than LOG_MSG_MAX (or whose escaped form does not fit a line) is cut
 * and ends with "...(cut)". */
#ifndef MESH_COMMON_LOG_H
#define MESH_COMMON_LOG_H

#define LOG_MSG_MAX 4096   /* formatted message, before escaping */
#define LOG_LINE_MAX 8192  /* prefix + escaped message + newline */

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_set_level(enum log_level lvl);
int log_level_parse(const char *s, enum log_level *out);
void log_msg(enum log_level lvl, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(comp, ...) log_msg(LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...)  log_msg(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...)  log_msg(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_msg(LOG_ERROR, comp, __VA_ARGS__)

#endif
