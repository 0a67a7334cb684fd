/* common/duration.c — duration parsing and formatting (see duration.h). */
#include "common/duration.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int duration_parse_ms(const char *s, int64_t *ms_out, mesh_err *err)
{
    if (!s || !*s)
        return mesh_err_set(err, MESH_EINVAL, "empty duration (use e.g. 30s, 15m, 24h)");
    const char *p = s;
    int64_t v = 0;
    if (!isdigit((unsigned char)*p))
        return mesh_err_set(err, MESH_EINVAL, "bad duration '%s' (use e.g. 30s, 15m, 24h)", s);
    while (isdigit((unsigned char)*p)) {
        if (v > (INT64_MAX / 10) - 10)
            return mesh_err_set(err, MESH_EINVAL, "duration '%s' is too large", s);
        v = v * 10 + (*p - '0');
        p++;
    }
    int64_t mult;
    if (*p == '\0' || strcmp(p, "s") == 0) mult = 1000;
    else if (strcmp(p, "ms") == 0) mult = 1;
    else if (strcmp(p, "m") == 0) mult = 60 * 1000;
    else if (strcmp(p, "h") == 0) mult = 3600 * 1000;
    else if (strcmp(p, "d") == 0) mult = 86400 * 1000LL;
    else if (strcmp(p, "y") == 0) mult = 365 * 86400 * 1000LL;
    else
        return mesh_err_set(err, MESH_EINVAL, "bad duration unit in '%s' (units: ms s m h d y)", s);
    if (v > INT64_MAX / mult)
        return mesh_err_set(err, MESH_EINVAL, "duration '%s' is too large", s);
    *ms_out = v * mult;
    return MESH_OK;
}

int duration_parse_s(const char *s, int64_t *s_out, mesh_err *err)
{
    int64_t ms;
    int rc = duration_parse_ms(s, &ms, err);
    if (rc)
        return rc;
    if (ms % 1000)
        return mesh_err_set(err, MESH_EINVAL, "duration '%s' must be whole seconds", s);
    *s_out = ms / 1000;
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
