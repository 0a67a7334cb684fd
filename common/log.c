/* common/log.c — stderr logger, text or JSON lines (see log.h). */
#include "common/log.h"

#include "common/escape.h"
#include "common/json_out.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* Process-wide logging settings: the threshold changes at run time (admin
 * endpoint, signals), the format is set once from the command line. Both are
 * atomics so any thread may read them on every call without a lock. */
static struct {
    atomic_int threshold;
    atomic_int format;
} g_log_settings = {LOG_INFO, LOG_FORMAT_TEXT};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level lvl) { atomic_store(&g_log_settings.threshold, (int)lvl); }

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&g_log_settings.threshold);
}

const char *log_level_name(enum log_level lvl)
{
    return lvl >= LOG_DEBUG && lvl <= LOG_ERROR ? level_names[lvl] : "?";
}

void log_set_format(enum log_format fmt) { atomic_store(&g_log_settings.format, (int)fmt); }

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_format_parse(const char *s, enum log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return -1;
    return 0;
}

static void rfc3339_ms(const struct timespec *ts, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000000);
}

static const char cut_marker[] = "...(cut)";

/* The text line: prefix, the message escaped at the sink (common/escape.h),
 * so a peer-supplied name with a newline or a terminal escape in it shows as
 * "\n" or "\x1b" inside one line. */
static size_t text_line(enum log_level lvl, const char *comp, const char *when, const char *msg,
                        int cut, char *line, size_t line_len)
{
    int n = snprintf(line, line_len, "%s level=%s comp=%s ", when, log_level_name(lvl), comp);
    if (n < 0 || (size_t)n >= line_len)
        n = 0;
    /* Room for the cut marker and the newline. */
    size_t room = line_len - (size_t)n - sizeof cut_marker - 1;
    size_t need = mesh_escape(msg, strlen(msg), 0, line + n, room);
    size_t len = strlen(line);
    if (need >= room || cut) {
        memcpy(line + len, cut_marker, sizeof cut_marker - 1);
        len += sizeof cut_marker - 1;
    }
    line[len++] = '\n';
    line[len] = '\0';
    return len;
}

/* The JSON line: json_out escapes exactly (RFC 8259, valid UTF-8 always).
 * An escaped message is at most 6x its bytes; one that does not fit the line
 * is cut at a byte count that keeps the result under LOG_LINE_MAX. */
static size_t json_line(enum log_level lvl, const char *comp, const char *when, const char *msg,
                        int cut, const log_field *fields, size_t n_fields, char *line,
                        size_t line_len)
{
    if (n_fields > LOG_FIELDS_MAX)
        n_fields = LOG_FIELDS_MAX;
    char part[LOG_MSG_MAX + sizeof cut_marker];
    size_t keep = strlen(msg);
    for (;;) {
        if (keep > LOG_MSG_MAX)
            keep = LOG_MSG_MAX;
        memcpy(part, msg, keep);
        part[keep] = '\0';
        if (cut || keep < strlen(msg))
            strcat(part, cut_marker);
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "ts", when);
        json_key_str(&j, "level", log_level_name(lvl));
        json_key_str(&j, "comp", comp);
        json_key_str(&j, "msg", part);
        /* Fields go only into a line that still has room for the whole
         * message (they repeat what it says); the first cut drops them. */
        for (size_t i = 0; keep == strlen(msg) && i < n_fields; i++)
            if (fields[i].key && fields[i].value)
                json_key_str(&j, fields[i].key, fields[i].value);
        json_obj_end(&j);
        const char *t = json_text(&j);
        size_t tl = t ? strlen(t) : 0;
        if (t && tl + 2 <= line_len) {
            memcpy(line, t, tl);
            line[tl++] = '\n';
            line[tl] = '\0';
            json_free(&j);
            return tl;
        }
        json_free(&j);
        if (!t || keep == 0) {
            int n = snprintf(line, line_len,
                             "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"(unloggable message)\"}\n",
                             when, log_level_name(lvl));
            return n > 0 && (size_t)n < line_len ? (size_t)n : 0;
        }
        keep /= 2;
    }
}

size_t log_format_line(enum log_format fmt, enum log_level lvl, const char *comp,
                       const struct timespec *ts, const char *msg, int cut,
                       const log_field *fields, size_t n_fields, char *out, size_t out_len)
{
    char when[96];
    rfc3339_ms(ts, when, sizeof when);
    if (fmt == LOG_FORMAT_JSON)
        return json_line(lvl, comp, when, msg, cut, fields, n_fields, out, out_len);
    return text_line(lvl, comp, when, msg, cut, out, out_len);
}

static void emit(enum log_level lvl, const char *comp, const log_field *fields, size_t n_fields,
                 const char *fmt, va_list ap)
{
    char msg[LOG_MSG_MAX];
    int mn = vsnprintf(msg, sizeof msg, fmt, ap);
    if (mn < 0)
        snprintf(msg, sizeof msg, "(unformattable log message)");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char line[LOG_LINE_MAX];
    log_format_line((enum log_format)atomic_load(&g_log_settings.format), lvl, comp, &ts, msg,
                    mn > 0 && (size_t)mn >= sizeof msg, fields, n_fields, line, sizeof line);
    /* One fputs per line so concurrent threads do not interleave mid-line. */
    fputs(line, stderr);
}

static int enabled(enum log_level lvl)
{
    return (int)lvl >= atomic_load_explicit(&g_log_settings.threshold, memory_order_relaxed);
}

void log_msg(enum log_level lvl, const char *comp, const char *fmt, ...)
{
    if (!enabled(lvl))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(lvl, comp, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_msg_fields(enum log_level lvl, const char *comp, const log_field *fields,
                    size_t n_fields, const char *fmt, ...)
{
    if (!enabled(lvl))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(lvl, comp, fields, n_fields, fmt, ap);
    va_end(ap);
}
