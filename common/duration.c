/* common/duration.c — duration parsing and formatting (see duration.h). */
#include "common/duration.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define DURATION_HINT "a whole number and a unit ms, s, m, h or d, e.g. 250ms, 30s, 15m, 24h"

int duration_parse_ms(const char *s, enum duration_bare bare, int64_t *ms_out, mesh_err *err)
{
    if (!s)
        s = "";
    const char *p = s;
    int64_t v = 0;
    if (!isdigit((unsigned char)*p))
        return mesh_err_set(err, MESH_EINVAL, "'%s' is not a duration: give " DURATION_HINT, s);
    while (isdigit((unsigned char)*p)) {
        int digit = *p - '0';
        if (v > (INT64_MAX - digit) / 10)
            return mesh_err_set(err, MESH_EINVAL, "'%s' is too large for a duration", s);
        v = v * 10 + digit;
        p++;
    }
    int64_t mult;
    if (*p == '\0') mult = bare == DURATION_BARE_MILLIS ? 1 : 1000;
    else if (strcmp(p, "ms") == 0) mult = 1;
    else if (strcmp(p, "s") == 0) mult = 1000;
    else if (strcmp(p, "m") == 0) mult = 60 * 1000;
    else if (strcmp(p, "h") == 0) mult = 3600 * 1000;
    else if (strcmp(p, "d") == 0) mult = 86400 * 1000LL;
    else if (strcmp(p, "y") == 0) mult = 365 * 86400 * 1000LL;
    else
        return mesh_err_set(err, MESH_EINVAL,
                            "'%s' is not a duration: the unit must be ms, s, m, h, d or y, "
                            "right after the number",
                            s);
    if (v > INT64_MAX / mult)
        return mesh_err_set(err, MESH_EINVAL, "'%s' is too large for a duration", s);
    *ms_out = v * mult;
    return MESH_OK;
}

void duration_format(int64_t seconds, char *buf, size_t len)
{
    if (seconds <= 0) {
        snprintf(buf, len, "%s0s", seconds < 0 ? "-" : "");
        if (seconds < 0)
            snprintf(buf, len, "-%llds", (long long)-seconds);
        return;
    }
    int64_t d = seconds / 86400, h = seconds % 86400 / 3600, m = seconds % 3600 / 60,
            s = seconds % 60;
    size_t n = 0;
    buf[0] = '\0';
    if (d && n < len) n += (size_t)snprintf(buf + n, len - n, "%lldd", (long long)d);
    if (h && n < len) n += (size_t)snprintf(buf + n, len - n, "%lldh", (long long)h);
    if (m && n < len) n += (size_t)snprintf(buf + n, len - n, "%lldm", (long long)m);
    if (s && n < len) snprintf(buf + n, len - n, "%llds", (long long)s);
}

void duration_format_ms(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0 || ms % 1000 == 0) {
        duration_format(ms / 1000, buf, len);
        return;
    }
    size_t n = 0;
    buf[0] = '\0';
    if (ms >= 1000) {
        duration_format(ms / 1000, buf, len);
        n = strlen(buf);
    }
    if (n < len)
        snprintf(buf + n, len - n, "%lldms", (long long)(ms % 1000));
}
