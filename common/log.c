/* common/log.c — stderr logger (see log.h). */
#include "common/log.h"

#include "common/escape.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Process-wide threshold: set once at start-up from the command line. */
static enum log_level g_log_threshold = LOG_INFO;

void log_set_level(enum log_level lvl) { g_log_threshold = lvl; }

int log_level_parse(const char *s, enum log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* The formatted message is escaped here, at the sink, so that no caller can
 * forget: a peer-supplied name with a newline or a terminal escape in it
 * shows as "\n" or "\x1b" inside one line (common/escape.h). */
void log_msg(enum log_level lvl, const char *comp, const char *fmt, ...)
{
    if (lvl < g_log_threshold)
        return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    char msg[LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int mn = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (mn < 0)
        snprintf(msg, sizeof msg, "(unformattable log message)");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[LOG_LINE_MAX];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[lvl], comp);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    /* Room for the cut marker and the newline. */
    static const char cut[] = "...(cut)";
    size_t room = sizeof line - (size_t)n - sizeof cut - 1;
    size_t need = mesh_escape(msg, strlen(msg), 0, line + n, room);
    size_t len = strlen(line);
    if (need >= room || (mn > 0 && (size_t)mn >= sizeof msg)) {
        memcpy(line + len, cut, sizeof cut - 1);
        len += sizeof cut - 1;
    }
    line[len++] = '\n';
    line[len] = '\0';
    /* One fputs per line so concurrent threads do not interleave mid-line. */
    fputs(line, stderr);
}
