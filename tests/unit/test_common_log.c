/* tests/unit/test_common_log.c — the log line formats (common/log.h): JSON lines always valid
 * JSON and valid UTF-8 (control characters, quotes, UTF-8 passthrough, invalid UTF-8,
 * overlong messages cut), the RFC 3339 timestamp with milliseconds, the text format, and
 * the level threshold changed at run time. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static const struct timespec at = {0, 123456789};

static const char *json_line(const char *msg)
{
    static char line[LOG_LINE_MAX];
    size_t n = log_format_line(LOG_FORMAT_JSON, LOG_WARN, "meshd", &at, msg, 0, NULL, 0, line,
                               sizeof line);
    cr_assert_eq(n, strlen(line));
    cr_assert_eq(line[n - 1], '\n', "one complete line");
    cr_assert_eq(strchr(line, '\n'), line + n - 1, "exactly one newline: %s", line);
    return line;
}

Test(log_json, fields_and_timestamp)
{
    cr_assert_str_eq(json_line("hello"), "{\"ts\":\"1970-01-01T00:00:00.123Z\",\"level\":\"warn\","
                                         "\"comp\":\"meshd\",\"msg\":\"hello\"}\n");
}

Test(log_json, control_characters_quotes_and_backslashes_are_escaped)
{
    const char *l = json_line("a\nb\r\tc\x01\x1b[2J \"q\" back\\slash \x7f");
    cr_assert_not_null(strstr(l, "\"msg\":\"a\\nb\\r\\tc\\u0001\\u001b[2J \\\"q\\\" back\\\\slash "
                                 "\\u007f\"}"),
                       "%s", l);
    for (const char *p = l; *p != '\n'; p++)
        cr_assert((unsigned char)*p >= 0x20 && *p != 0x7f, "raw control byte in %s", l);
}

Test(log_json, utf8_passes_through)
{
    const char *l = json_line("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x94\x92");
    cr_assert_not_null(strstr(l, "\"msg\":\"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x94\x92\""), "%s", l);
}

Test(log_json, invalid_utf8_becomes_replacement_characters)
{
    const char *l = json_line("bad \xff\xfe and cut \xe2\x9c and overlong \xc0\xaf");
    cr_assert_not_null(strstr(l, "\"msg\":\"bad \\ufffd\\ufffd and cut \\ufffd\\ufffd and "
                                 "overlong \\ufffd\\ufffd\""),
                       "%s", l);
}

Test(log_json, an_overlong_message_is_cut_into_one_valid_line)
{
    /* Every byte escapes to six: the escaped message cannot fit one line. */
    char *big = malloc(LOG_MSG_MAX);
    memset(big, '\x01', LOG_MSG_MAX - 1);
    big[LOG_MSG_MAX - 1] = '\0';
    const char *l = json_line(big);
    free(big);
    cr_assert(strlen(l) < LOG_LINE_MAX);
    size_t n = strlen(l);
    cr_assert_str_eq(l + n - strlen("...(cut)\"}\n"), "...(cut)\"}\n", "%s", l + n - 40);
    cr_assert_eq(strncmp(l, "{\"ts\":", 6), 0);
}

Test(log_json, a_message_cut_by_the_formatter_is_marked)
{
    char line[LOG_LINE_MAX];
    log_format_line(LOG_FORMAT_JSON, LOG_INFO, "c", &at, "partial", 1, NULL, 0, line, sizeof line);
    cr_assert_not_null(strstr(line, "\"msg\":\"partial...(cut)\"}\n"), "%s", line);
}

Test(log_text, format_is_unchanged)
{
    char line[LOG_LINE_MAX];
    log_format_line(LOG_FORMAT_TEXT, LOG_INFO, "ca", &at, "issued\nx", 0, NULL, 0, line,
                    sizeof line);
    cr_assert_str_eq(line, "1970-01-01T00:00:00.123Z level=info comp=ca issued\\nx\n");
}

Test(log_json, structured_fields_follow_msg_and_are_escaped)
{
    log_field f[] = {{"spiffe_id", "spiffe://example.org/ns/a/sa/b"},
                     {"skipped", NULL},
                     {"node", "n\"1\n\xff"}};
    char line[LOG_LINE_MAX];
    log_format_line(LOG_FORMAT_JSON, LOG_INFO, "meshd", &at, "m", 0, f, 3, line, sizeof line);
    cr_assert_str_eq(line, "{\"ts\":\"1970-01-01T00:00:00.123Z\",\"level\":\"info\","
                           "\"comp\":\"meshd\",\"msg\":\"m\","
                           "\"spiffe_id\":\"spiffe://example.org/ns/a/sa/b\","
                           "\"node\":\"n\\\"1\\n\\ufffd\"}\n");
    /* The text format carries them in its message already. */
    log_format_line(LOG_FORMAT_TEXT, LOG_INFO, "meshd", &at, "m", 0, f, 3, line, sizeof line);
    cr_assert_str_eq(line, "1970-01-01T00:00:00.123Z level=info comp=meshd m\n");
}

Test(log_format, names_parse)
{
    enum log_format f = LOG_FORMAT_TEXT;
    cr_assert_eq(log_format_parse("json", &f), 0);
    cr_assert_eq(f, LOG_FORMAT_JSON);
    cr_assert_eq(log_format_parse("text", &f), 0);
    cr_assert_eq(f, LOG_FORMAT_TEXT);
    cr_assert_eq(log_format_parse("JSON", &f), -1);
    cr_assert_eq(log_format_parse("", &f), -1);
    cr_assert_str_eq(log_level_name(LOG_DEBUG), "debug");
    cr_assert_str_eq(log_level_name(LOG_ERROR), "error");
}

static void redirect(void) { cr_redirect_stderr(); }

Test(log_level, threshold_changes_at_run_time, .init = redirect)
{
    log_set_level(LOG_ERROR);
    cr_assert_eq(log_get_level(), LOG_ERROR);
    log_warn("t", "hidden");
    log_set_level(LOG_DEBUG);
    log_debug("t", "shown");
    log_set_format(LOG_FORMAT_JSON);
    log_info("t", "as json");
    log_set_format(LOG_FORMAT_TEXT);
    log_set_level(LOG_INFO);
    fflush(stderr);
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, cr_get_redirected_stderr());
    buf[n] = '\0';
    cr_assert_null(strstr(buf, "hidden"), "%s", buf);
    cr_assert_not_null(strstr(buf, "level=debug comp=t shown\n"), "%s", buf);
    cr_assert_not_null(strstr(buf, "\"level\":\"info\",\"comp\":\"t\",\"msg\":\"as json\"}\n"),
                       "%s", buf);
}
