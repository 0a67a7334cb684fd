/* tests/unit/test_common_escape.c — the one escaping function (common/escape.c) and the
 * places that must use it: the log sink (common/log.c), JSON output (common/json_out.c),
 * mgrpc_printable (common/mgrpc.c); and the token bucket that bounds what a flood of
 * refusals writes (common/rate.c). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/escape.h"
#include "common/json_out.h"
#include "common/log.h"
#include "common/mgrpc.h"
#include "common/rate.h"

static const char *esc(const char *s, unsigned flags)
{
    static char buf[1024];
    mesh_escape(s, strlen(s), flags, buf, sizeof buf);
    return buf;
}

Test(escape, printable_ascii_and_utf8_pass_unchanged)
{
    cr_assert_str_eq(esc("spiffe://example.org/ns/demo/sa/web", 0),
                     "spiffe://example.org/ns/demo/sa/web");
    cr_assert_str_eq(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0),
                     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    cr_assert_str_eq(esc("a\\b \"q\"", 0), "a\\b \"q\"", "backslash and quotes are kept");
    cr_assert(mesh_escape_is_clean("caf\xc3\xa9", 5));
}

Test(escape, controls_become_visible)
{
    cr_assert_str_eq(esc("default\nlevel=error forged", 0), "default\\nlevel=error forged");
    cr_assert_str_eq(esc("a\rb\tc", 0), "a\\rb\\tc");
    cr_assert_str_eq(esc("\x1b[31mred\x1b[0m", 0), "\\x1b[31mred\\x1b[0m");
    cr_assert_str_eq(esc("nul\x01 del\x7f", 0), "nul\\x01 del\\x7f");
    cr_assert_not(mesh_escape_is_clean("a\nb", 3));
}

Test(escape, invalid_utf8_byte_by_byte)
{
    cr_assert_str_eq(esc("x\xffy", 0), "x\\xffy");
    cr_assert_str_eq(esc("\xc3", 0), "\\xc3", "truncated sequence");
    cr_assert_str_eq(esc("\xc3(", 0), "\\xc3(", "bad continuation; resumes at the next byte");
    cr_assert_str_eq(esc("\xc0\xaf", 0), "\\xc0\\xaf", "overlong '/'");
    cr_assert_str_eq(esc("\xe0\x80\xaf", 0), "\\xe0\\x80\\xaf", "overlong 3-byte form");
    cr_assert_str_eq(esc("\xed\xa0\x80", 0), "\\xed\\xa0\\x80", "UTF-16 surrogate");
    cr_assert_str_eq(esc("\xf4\x90\x80\x80", 0), "\\xf4\\x90\\x80\\x80", "past U+10FFFF");
    cr_assert_str_eq(esc("\x80", 0), "\\x80", "lone continuation byte");
    cr_assert_not(mesh_escape_is_clean("\xff", 1));
}

Test(escape, c1_separators_and_bidi_controls_as_code_points)
{
    cr_assert_str_eq(esc("\xc2\x9b" "2J", 0), "\\u009b2J", "C1 CSI");
    cr_assert_str_eq(esc("a\xe2\x80\xa8" "b", 0), "a\\u2028b", "line separator");
    cr_assert_str_eq(esc("\xe2\x80\xae" "evil", 0), "\\u202eevil", "right-to-left override");
    cr_assert_str_eq(esc("\xe2\x81\xa6", 0), "\\u2066");
}

Test(escape, idempotent)
{
    const char *inputs[] = {"a\nb", "\xff\xfe", "\x1b]0;title\x07", "\xe2\x80\xae", "plain"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        char once[256], twice[256];
        mesh_escape(inputs[i], strlen(inputs[i]), 0, once, sizeof once);
        mesh_escape(once, strlen(once), 0, twice, sizeof twice);
        cr_assert_str_eq(twice, once, "input %zu", i);
        cr_assert(mesh_escape_is_clean(once, strlen(once)));
    }
}

Test(escape, flags)
{
    cr_assert_str_eq(esc("-----BEGIN\nline\tx\x1b\n", MESH_ESC_KEEP_LINES),
                     "-----BEGIN\nline\tx\\x1b\n");
    cr_assert_str_eq(esc("a\"b", MESH_ESC_QUOTES), "a\\x22b");
}

Test(escape, never_cuts_a_unit)
{
    char out[6];
    size_t need = mesh_escape("ab\ncd", 5, 0, out, sizeof out);
    cr_assert_eq(need, 6);
    cr_assert_str_eq(out, "ab\\nc", "5 of 6 bytes fit");
    need = mesh_escape("abcd\n", 5, 0, out, sizeof out);
    cr_assert_str_eq(out, "abcd", "the 2-byte escape does not fit: left out whole");
    need = mesh_escape("abc\xe2\x82\xac", 6, 0, out, 5);
    cr_assert_str_eq(out, "abc", "a UTF-8 sequence is not split");
    char *dup = mesh_escape_dup("x\xff", 0);
    cr_assert_str_eq(dup, "x\\xff");
    free(dup);
    dup = mesh_escape_dup(NULL, 0);
    cr_assert_str_eq(dup, "");
    free(dup);
}

/* ---- the log sink ------------------------------------------------------------------------ */

static void redirect(void)
{
    cr_redirect_stderr();
}

Test(log_sink, a_newline_in_a_message_cannot_forge_a_line, .init = redirect)
{
    log_set_level(LOG_INFO);
    log_warn("meshd", "sds.denied name=%s", "default\n2030-01-01T00:00:00.000Z level=error forged");
    log_info("meshd", "raw \xff\xfe and \x1b[2J");
    fflush(stderr);
    char buf[4096];
    FILE *f = cr_get_redirected_stderr();
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    int lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += buf[i] == '\n';
    cr_assert_eq(lines, 2, "two messages, two lines: %s", buf);
    cr_assert_not_null(strstr(buf, "name=default\\n2030-01-01T00:00:00.000Z level=error forged\n"),
                       "%s", buf);
    cr_assert_not_null(strstr(buf, "raw \\xff\\xfe and \\x1b[2J\n"), "%s", buf);
    cr_assert_null(strchr(buf, '\x1b'));
    cr_assert_null(strchr(buf, '\xff'));
}

Test(log_sink, an_overlong_message_is_cut_and_marked, .init = redirect)
{
    log_set_level(LOG_INFO);
    char *big = malloc(LOG_MSG_MAX * 2);
    memset(big, '\x01', LOG_MSG_MAX * 2 - 1);
    big[LOG_MSG_MAX * 2 - 1] = '\0';
    log_info("t", "%s", big);
    free(big);
    fflush(stderr);
    static char buf[LOG_LINE_MAX * 2];
    size_t n = fread(buf, 1, sizeof buf - 1, cr_get_redirected_stderr());
    buf[n] = '\0';
    cr_assert(n < LOG_LINE_MAX, "%zu", n);
    cr_assert_eq(buf[n - 1], '\n');
    cr_assert_not_null(strstr(buf, "\\x01...(cut)\n"));
    cr_assert_eq(strchr(buf, '\n'), buf + n - 1, "one line");
}

/* ---- JSON --------------------------------------------------------------------------------- */

static char *json_of(const char *s)
{
    json_out j;
    json_init(&j);
    json_str(&j, s);
    char *out = strdup(json_text(&j));
    json_free(&j);
    return out;
}

Test(json_out, invalid_utf8_becomes_replacement_characters)
{
    char *t = json_of("a\xff" "b\xc3");
    cr_assert_str_eq(t, "\"a\\ufffdb\\ufffd\"");
    free(t);
    t = json_of("\xed\xa0\x80");
    cr_assert_str_eq(t, "\"\\ufffd\\ufffd\\ufffd\"", "a surrogate is not valid UTF-8");
    free(t);
}

Test(json_out, controls_and_separators_escaped_utf8_kept)
{
    char *t = json_of("q\"\\\n\x1b\x7f\xc2\x9b\xe2\x80\xa8 caf\xc3\xa9");
    cr_assert_str_eq(t, "\"q\\\"\\\\\\n\\u001b\\u007f\\u009b\\u2028 caf\xc3\xa9\"");
    free(t);
}

/* ---- mgrpc_printable ---------------------------------------------------------------------- */

Test(mgrpc_printable, escapes_instead_of_question_marks)
{
    char buf[64];
    cr_assert_str_eq(mgrpc_printable("node\n\xff", buf, sizeof buf), "node\\n\\xff");
    cr_assert_str_eq(mgrpc_printable(NULL, buf, sizeof buf), "");
    char small[10];
    cr_assert_str_eq(mgrpc_printable("abcdefghijklmnop", small, sizeof small), "abcdef...");
    cr_assert_str_eq(mgrpc_printable("abcde\nfgh", small, sizeof small), "abcde...",
                     "the escape that does not fit is left out whole");
}

/* ---- token bucket ------------------------------------------------------------------------- */

Test(rate, burst_then_refill_and_the_dropped_count)
{
    mesh_rate r;
    mesh_rate_init(&r, 2.0, 3.0);
    for (int i = 0; i < 3; i++)
        cr_assert(mesh_rate_allow(&r, 1000), "burst %d", i);
    cr_assert_not(mesh_rate_allow(&r, 1000));
    cr_assert_not(mesh_rate_allow(&r, 1200));
    int64_t since = 0;
    cr_assert_eq(r.dropped, 2);
    cr_assert(mesh_rate_allow(&r, 1500), "1 s at 2/s: one token back after 0.5 s");
    cr_assert_not(mesh_rate_allow(&r, 1500));
    cr_assert_eq(mesh_rate_take_dropped(&r, &since), 3);
    cr_assert_eq(since, 1000);
    cr_assert_eq(mesh_rate_take_dropped(&r, &since), 0, "taking resets the count");
    cr_assert(mesh_rate_allow(&r, 100000));
    cr_assert(mesh_rate_allow(&r, 100000));
    cr_assert(mesh_rate_allow(&r, 100000));
    cr_assert_not(mesh_rate_allow(&r, 100000), "refill stops at the burst");
    cr_assert(mesh_rate_allow(&r, 99000) == 0, "a clock that steps back gives nothing");
}
