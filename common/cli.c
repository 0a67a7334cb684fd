/* common/cli.c — command-line flag values (see cli.h). */
#include "common/cli.h"
#include "common/suggest.h"

#include <errno.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_long(const char *flag, const char *value, long lo, long hi, long *out, mesh_err *err)
{
    char *end = NULL;
    errno = 0;
    long v = value ? strtol(value, &end, 10) : 0;
    /* strtol skips leading space and takes '+': a flag value is digits only. */
    int plain = value && (value[0] == '-' || (value[0] >= '0' && value[0] <= '9'));
    char range[64];
    if (hi == LONG_MAX)
        snprintf(range, sizeof range, "at least %ld", lo);
    else
        snprintf(range, sizeof range, "between %ld and %ld", lo, hi);
    if (!value || !plain || errno || end == value || *end)
        return mesh_err_set(err, MESH_EINVAL, "%s '%s': give a whole number %s", flag,
                            value ? value : "", range);
    if (v < lo || v > hi)
        return mesh_err_set(err, MESH_EINVAL, "%s '%s': must be %s", flag, value, range);
    *out = v;
    return MESH_OK;
}

int cli_double(const char *flag, const char *value, double lo, double hi, double *out,
               mesh_err *err)
{
    char *end = NULL;
    errno = 0;
    double v = value ? strtod(value, &end) : 0;
    /* Decimal only: strtod also takes leading space, '+', hex and "inf". */
    int plain = value &&
                (value[0] == '-' || value[0] == '.' || (value[0] >= '0' && value[0] <= '9')) &&
                !strpbrk(value, "xX");
    if (!value || !plain || errno || end == value || *end || !isfinite(v))
        return mesh_err_set(err, MESH_EINVAL, "%s '%s': give a number between %g and %g", flag,
                            value ? value : "", lo, hi);
    /* Written so that NaN, which compares false with both bounds, fails too. */
    if (!(v >= lo && v <= hi))
        return mesh_err_set(err, MESH_EINVAL, "%s '%s': must be between %g and %g", flag, value,
                            lo, hi);
    *out = v;
    return MESH_OK;
}

/* 4194304 -> "4MiB", 1000 -> "1000" (exact units only, for messages). */
static void bytes_format(int64_t v, char *buf, size_t len)
{
    static const char *const units[] = {"GiB", "MiB", "KiB"};
    for (int i = 0; i < 3; i++) {
        int64_t unit = (int64_t)1 << (10 * (3 - i));
        if (v >= unit && v % unit == 0) {
            snprintf(buf, len, "%lld%s", (long long)(v / unit), units[i]);
            return;
        }
    }
    snprintf(buf, len, "%lld", (long long)v);
}

int cli_bytes(const char *flag, const char *value, int64_t lo, int64_t hi, int64_t *out,
              mesh_err *err)
{
    char los[32], his[32];
    bytes_format(lo, los, sizeof los);
    bytes_format(hi, his, sizeof his);
    const char *p = value ? value : "";
    int64_t v = 0;
    size_t digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (v > (INT64_MAX - 9) / 10) {
            digits = 0; /* overflow: report as not a size */
            break;
        }
        v = v * 10 + (*p - '0');
    }
    int shift = -1;
    if (*p == '\0')
        shift = 0;
    else if (strcmp(p, "KiB") == 0)
        shift = 10;
    else if (strcmp(p, "MiB") == 0)
        shift = 20;
    else if (strcmp(p, "GiB") == 0)
        shift = 30;
    if (digits == 0 || shift < 0 || v > (INT64_MAX >> shift))
        return mesh_err_set(err, MESH_EINVAL,
                            "%s '%s': give a whole number of bytes, optionally with KiB, MiB or "
                            "GiB (e.g. 8MiB), between %s and %s",
                            flag, value ? value : "", los, his);
    v <<= shift;
    if (v < lo || v > hi)
        return mesh_err_set(err, MESH_EINVAL, "%s '%s': must be between %s and %s", flag, value,
                            los, his);
    *out = v;
    return MESH_OK;
}

/* "between 10ms and 1m", or "at least 250ms" without an upper bound. */
static void duration_range(int64_t lo_ms, int64_t hi_ms, char *buf, size_t len)
{
    char lo[48], hi[48];
    duration_format_ms(lo_ms, lo, sizeof lo);
    duration_format_ms(hi_ms, hi, sizeof hi);
    if (hi_ms == CLI_NO_MAX)
        snprintf(buf, len, "at least %s", lo);
    else
        snprintf(buf, len, "between %s and %s", lo, hi);
}

int cli_duration_ms(const char *flag, const char *value, enum duration_bare bare, int64_t lo_ms,
                    int64_t hi_ms, int64_t *out, mesh_err *err)
{
    char range[112];
    duration_range(lo_ms, hi_ms, range, sizeof range);
    int64_t ms;
    mesh_err why = {0};
    if (duration_parse_ms(value, bare, &ms, &why) != MESH_OK)
        /* "--poll-interval 'fast' is not a duration: give ...; between 10ms and 1m" */
        return mesh_err_set(err, MESH_EINVAL, "%s %s%s; %s", flag, why.msg,
                            bare == DURATION_BARE_MILLIS ? ", or a bare number of milliseconds"
                                                         : "",
                            range);
    if (ms < lo_ms || ms > hi_ms)
        return mesh_err_set(err, MESH_EINVAL, "%s '%s': must be %s", flag, value, range);
    *out = ms;
    return MESH_OK;
}

int cli_duration_s(const char *flag, const char *value, int64_t lo_s, int64_t hi_s, int64_t *out,
                   mesh_err *err)
{
    int64_t ms;
    int64_t hi_ms = hi_s > CLI_NO_MAX / 1000 ? CLI_NO_MAX : hi_s * 1000;
    if (cli_duration_ms(flag, value, DURATION_BARE_SECONDS, lo_s * 1000, hi_ms, &ms, err) !=
        MESH_OK)
        return MESH_EINVAL;
    if (ms % 1000)
        return mesh_err_set(err, MESH_EINVAL, "%s '%s': must be whole seconds", flag, value);
    *out = ms / 1000;
    return MESH_OK;
}

int cli_log_level(const char *flag, const char *value, enum log_level *out, mesh_err *err)
{
    if (!value || log_level_parse(value, out) != 0)
        return mesh_err_set(err, MESH_EINVAL, "%s '%s': use debug, info, warn or error", flag,
                            value ? value : "");
    return MESH_OK;
}

int cli_bad_option(int argc, char **argv, const struct option *longopts, const char *hint,
                   mesh_err *err)
{
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
    if (!hint)
        hint = "";
    /* The flag's name: "--name" or "--name=value" (getopt_long's forms). */
    char name[96] = "";
    if (arg[0] == '-' && arg[1] == '-' && arg[2]) {
        size_t n = strcspn(arg + 2, "=");
        if (n < sizeof name) {
            memcpy(name, arg + 2, n);
            name[n] = '\0';
        }
    }
    const char *names[256];
    size_t nn = 0;
    for (size_t i = 0; longopts && longopts[i].name && nn < 256; i++) {
        if (name[0] && strcmp(longopts[i].name, name) == 0 &&
            longopts[i].has_arg == required_argument)
            return mesh_err_set(err, MESH_EINVAL, "option '--%s' needs a value%s", name, hint);
        names[nn++] = longopts[i].name;
    }
    const char *close = name[0] ? mesh_suggest(name, names, nn) : NULL;
    if (close)
        return mesh_err_set(err, MESH_EINVAL, "unknown option '%s'; did you mean '--%s'?%s", arg,
                            close, hint);
    return mesh_err_set(err, MESH_EINVAL, "unknown option '%s'%s", arg, hint);
}

int cli_listen_addr(const char *flag, const char *value, long min_port, const char *example,
                    mesh_err *err)
{
    const char *colon = value ? strrchr(value, ':') : NULL;
    if (!colon || colon == value)
        return mesh_err_set(err, MESH_EINVAL, "%s '%s': give HOST:PORT, e.g. %s", flag,
                            value ? value : "", example);
    const char *p = colon + 1;
    long port = 0;
    size_t digits = strspn(p, "0123456789");
    if (digits > 0 && digits <= 5 && p[digits] == '\0')
        port = strtol(p, NULL, 10);
    if (digits == 0 || digits > 5 || p[digits] != '\0' || port < min_port || port > 65535)
        return mesh_err_set(err, MESH_EINVAL, "%s '%s': the port must be a number from %ld to 65535",
                            flag, value, min_port);
    /* An IP literal: IPv4, or IPv6 in brackets (a host name would make the
     * bound address depend on the resolver). */
    char host[64];
    size_t hl = (size_t)(colon - value);
    int v6 = hl >= 2 && value[0] == '[' && value[hl - 1] == ']';
    const char *h = v6 ? value + 1 : value;
    size_t n = v6 ? hl - 2 : hl;
    unsigned char bin[sizeof(struct in6_addr)];
    int ok = n < sizeof host;
    if (ok) {
        memcpy(host, h, n);
        host[n] = '\0';
        ok = inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) == 1;
    }
    if (!ok)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s '%s': the host must be an IP address (IPv6 in brackets), e.g. %s",
                            flag, value, example);
    return MESH_OK;
}
