/* ca/spiffe_id.c — SPIFFE ID parsing and formatting (see spiffe_id.h).
 *
 * The rules follow the SPIFFE-ID specification (and go-spiffe's checks) so
 * that an ID we accept is accepted by every other SPIFFE implementation:
 * lowercase "spiffe" scheme, trust domain of [a-z0-9._-], path segments of
 * [a-zA-Z0-9._-] with no empty, "." or ".." segment and no trailing slash,
 * no percent-encoding, query, fragment, port or userinfo. */
#include "ca/spiffe_id.h"

#include <string.h>
#include <strings.h>

#include "ca/ca_internal.h"

#define SCHEME "spiffe://"
#define SCHEME_LEN 9
#define TRUST_DOMAIN_MAX 255

static int td_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int path_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

/* Explains a character that may not appear in a trust domain or path. The
 * URL-structure characters get their own message because they are the
 * usual mistakes ("spiffe://td:8443", "spiffe://user@td", "?x=1"). */
static int bad_char(const char *what, char c, const char *uri, mesh_err *err)
{
    char q[128];
    ca_quote(uri, q, sizeof q);
    switch (c) {
    case '?':
        return mesh_err_set(err, MESH_EINVAL, "invalid SPIFFE ID '%s': a query is not allowed", q);
    case '#':
        return mesh_err_set(err, MESH_EINVAL, "invalid SPIFFE ID '%s': a fragment is not allowed",
                            q);
    case '%':
        return mesh_err_set(err, MESH_EINVAL,
                            "invalid SPIFFE ID '%s': percent-encoding is not allowed", q);
    case ':':
        if (strcmp(what, "trust domain") == 0)
            return mesh_err_set(err, MESH_EINVAL,
                                "invalid SPIFFE ID '%s': a port is not allowed in the trust domain",
                                q);
        break;
    case '@':
        if (strcmp(what, "trust domain") == 0)
            return mesh_err_set(err, MESH_EINVAL,
                                "invalid SPIFFE ID '%s': userinfo is not allowed", q);
        break;
    default:
        break;
    }
    if (strcmp(what, "trust domain") == 0 && c >= 'A' && c <= 'Z')
        return mesh_err_set(err, MESH_EINVAL,
                            "invalid SPIFFE ID '%s': the trust domain must be lowercase", q);
    unsigned char uc = (unsigned char)c;
    if (uc >= 0x21 && uc < 0x7f)
        return mesh_err_set(err, MESH_EINVAL,
                            "invalid SPIFFE ID '%s': character '%c' is not allowed in the %s "
                            "(letters, digits, '.', '-', '_')",
                            q, c, what);
    return mesh_err_set(err, MESH_EINVAL,
                        "invalid SPIFFE ID '%s': byte 0x%02x is not allowed in the %s", q, uc,
                        what);
}

/* Validates the trust domain [td, td+n) of uri (uri only for messages). */
static int check_td(const char *td, size_t n, const char *uri, mesh_err *err)
{
    char q[128];
    if (n == 0)
        return mesh_err_set(err, MESH_EINVAL, "invalid SPIFFE ID '%s': the trust domain is empty",
                            ca_quote(uri, q, sizeof q));
    for (size_t i = 0; i < n; i++)
        if (!td_char_ok(td[i]))
            return bad_char("trust domain", td[i], uri, err);
    if (n > TRUST_DOMAIN_MAX)
        return mesh_err_set(err, MESH_EINVAL,
                            "invalid SPIFFE ID '%s': the trust domain is %zu bytes; the limit is %d",
                            ca_quote(uri, q, sizeof q), n, TRUST_DOMAIN_MAX);
    return MESH_OK;
}

/* Validates the path (starting with '/', or empty) of uri. */
static int check_path(const char *path, const char *uri, mesh_err *err)
{
    char q[128];
    const char *p = path;
    while (*p) {
        /* p points at a '/' that starts a segment. */
        const char *seg = p + 1;
        const char *end = seg;
        while (*end && *end != '/') {
            if (!path_char_ok(*end))
                return bad_char("path", *end, uri, err);
            end++;
        }
        size_t n = (size_t)(end - seg);
        if (n == 0)
            return mesh_err_set(err, MESH_EINVAL,
                                *end ? "invalid SPIFFE ID '%s': the path has an empty segment"
                                     : "invalid SPIFFE ID '%s': the path has a trailing '/'",
                                ca_quote(uri, q, sizeof q));
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return mesh_err_set(err, MESH_EINVAL,
                                "invalid SPIFFE ID '%s': path segments '.' and '..' are not allowed",
                                ca_quote(uri, q, sizeof q));
        p = end;
    }
    return MESH_OK;
}

/* Fills ns/sa when path is exactly /ns/<ns>/sa/<sa>. */
static void split_workload(const char *path, spiffe_id_parts *out)
{
    out->ns[0] = out->sa[0] = '\0';
    if (strncmp(path, "/ns/", 4) != 0)
        return;
    const char *ns = path + 4;
    const char *slash = strchr(ns, '/');
    if (!slash || strncmp(slash, "/sa/", 4) != 0)
        return;
    const char *sa = slash + 4;
    size_t ns_len = (size_t)(slash - ns);
    size_t sa_len = strlen(sa);
    /* check_path already refused empty segments; a further '/' after sa
     * means more segments than the shape allows. */
    if (ns_len == 0 || sa_len == 0 || strchr(sa, '/') || ns_len >= sizeof out->ns ||
        sa_len >= sizeof out->sa)
        return;
    memcpy(out->ns, ns, ns_len);
    out->ns[ns_len] = '\0';
    memcpy(out->sa, sa, sa_len + 1);
}

int spiffe_id_parse(const char *uri, spiffe_id_parts *out, mesh_err *err)
{
    char q[128];
    spiffe_id_parts tmp;
    memset(&tmp, 0, sizeof tmp);
    if (!uri || !uri[0])
        return mesh_err_set(err, MESH_EINVAL, "SPIFFE ID is empty");
    size_t len = strnlen(uri, SPIFFE_ID_MAX + 1);
    if (len > SPIFFE_ID_MAX)
        return mesh_err_set(err, MESH_EINVAL, "SPIFFE ID '%s' is longer than %d bytes",
                            ca_quote(uri, q, sizeof q), SPIFFE_ID_MAX);
    if (strncmp(uri, SCHEME, SCHEME_LEN) != 0) {
        if (strncasecmp(uri, SCHEME, SCHEME_LEN) == 0)
            return mesh_err_set(err, MESH_EINVAL,
                                "invalid SPIFFE ID '%s': the scheme must be lowercase 'spiffe://'",
                                ca_quote(uri, q, sizeof q));
        return mesh_err_set(err, MESH_EINVAL,
                            "invalid SPIFFE ID '%s': it must start with 'spiffe://'",
                            ca_quote(uri, q, sizeof q));
    }
    const char *td = uri + SCHEME_LEN;
    const char *slash = strchr(td, '/');
    size_t td_len = slash ? (size_t)(slash - td) : strlen(td);
    int rc = check_td(td, td_len, uri, err);
    if (rc != MESH_OK)
        return rc;
    const char *path = td + td_len;
    rc = check_path(path, uri, err);
    if (rc != MESH_OK)
        return rc;
    memcpy(tmp.trust_domain, td, td_len);
    tmp.trust_domain[td_len] = '\0';
    /* len <= SPIFFE_ID_MAX and the scheme takes 9 bytes, so the path fits. */
    memcpy(tmp.path, path, strlen(path) + 1);
    split_workload(tmp.path, &tmp);
    if (out)
        *out = tmp;
    return MESH_OK;
}

int spiffe_id_parse_workload(const char *uri, spiffe_id_parts *out, mesh_err *err)
{
    spiffe_id_parts tmp;
    int rc = spiffe_id_parse(uri, &tmp, err);
    if (rc != MESH_OK)
        return rc;
    if (!tmp.ns[0]) {
        char q[128];
        return mesh_err_set(err, MESH_EINVAL,
                            "SPIFFE ID '%s' is not a workload identity: expected "
                            "spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>",
                            ca_quote(uri, q, sizeof q));
    }
    if (out)
        *out = tmp;
    return MESH_OK;
}

int spiffe_id_valid_trust_domain(const char *td, mesh_err *err)
{
    if (!td || !td[0])
        return mesh_err_set(err, MESH_EINVAL, "trust domain is empty");
    size_t n = strnlen(td, TRUST_DOMAIN_MAX + 1);
    char q[128];
    if (strncmp(td, SCHEME, SCHEME_LEN) == 0)
        return mesh_err_set(err, MESH_EINVAL,
                            "trust domain '%s' must be given without the 'spiffe://' scheme",
                            ca_quote(td, q, sizeof q));
    for (size_t i = 0; i < n; i++) {
        char c = td[i];
        if (td_char_ok(c))
            continue;
        if (c >= 'A' && c <= 'Z')
            return mesh_err_set(err, MESH_EINVAL, "trust domain '%s' must be lowercase",
                                ca_quote(td, q, sizeof q));
        if (c == ':')
            return mesh_err_set(err, MESH_EINVAL, "trust domain '%s' must not contain a port",
                                ca_quote(td, q, sizeof q));
        return mesh_err_set(err, MESH_EINVAL,
                            "trust domain '%s' may only contain lowercase letters, digits, '.', "
                            "'-' and '_'",
                            ca_quote(td, q, sizeof q));
    }
    if (n > TRUST_DOMAIN_MAX)
        return mesh_err_set(err, MESH_EINVAL, "trust domain '%s' is longer than %d bytes",
                            ca_quote(td, q, sizeof q), TRUST_DOMAIN_MAX);
    return MESH_OK;
}

/* One segment of a workload ID (namespace or service account). */
static int check_segment(const char *what, const char *s, size_t max, mesh_err *err)
{
    char q[128];
    if (!s || !s[0])
        return mesh_err_set(err, MESH_EINVAL, "%s is empty", what);
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return mesh_err_set(err, MESH_EINVAL, "%s may not be '.' or '..'", what);
    size_t n = strnlen(s, max);
    if (n >= max)
        return mesh_err_set(err, MESH_EINVAL, "%s '%s' is longer than %zu bytes", what,
                            ca_quote(s, q, sizeof q), max - 1);
    for (size_t i = 0; i < n; i++)
        if (!path_char_ok(s[i]))
            return mesh_err_set(err, MESH_EINVAL,
                                "%s '%s' may only contain letters, digits, '.', '-' and '_'", what,
                                ca_quote(s, q, sizeof q));
    return MESH_OK;
}

int spiffe_id_format_workload(char *buf, size_t len, const char *td, const char *ns,
                              const char *sa, mesh_err *err)
{
    int rc = spiffe_id_valid_trust_domain(td, err);
    if (rc != MESH_OK)
        return rc;
    spiffe_id_parts scratch;
    if ((rc = check_segment("namespace", ns, sizeof scratch.ns, err)) != MESH_OK ||
        (rc = check_segment("service account", sa, sizeof scratch.sa, err)) != MESH_OK)
        return rc;
    int n = snprintf(buf, len, "spiffe://%s/ns/%s/sa/%s", td, ns, sa);
    if (n < 0 || (size_t)n >= len)
        return mesh_err_set(err, MESH_EINVAL, "SPIFFE ID for %s/%s does not fit in %zu bytes", ns,
                            sa, len);
    if ((size_t)n > SPIFFE_ID_MAX)
        return mesh_err_set(err, MESH_EINVAL, "SPIFFE ID for %s/%s is longer than %d bytes", ns,
                            sa, SPIFFE_ID_MAX);
    return MESH_OK;
}
