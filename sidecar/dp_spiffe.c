/* sidecar/dp_spiffe.c — SPIFFE ID syntax checks (see dp_spiffe.h). */
#include "sidecar/dp_spiffe.h"

#include <string.h>

static int td_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int path_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

int dp_spiffe_check(const char *id, char *td, size_t tdlen, mesh_err *err)
{
    static const char scheme[] = "spiffe://";
    if (!id || !*id)
        return mesh_err_set(err, MESH_EINVAL, "SPIFFE ID is empty");
    size_t len = strlen(id);
    if (len > DP_SPIFFE_ID_MAX)
        return mesh_err_set(err, MESH_EINVAL, "SPIFFE ID longer than %d bytes",
                            DP_SPIFFE_ID_MAX);
    if (strncmp(id, scheme, sizeof scheme - 1) != 0)
        return mesh_err_set(err, MESH_EINVAL, "'%.200s' is not a SPIFFE ID (must start with "
                            "spiffe://)", id);
    const char *p = id + sizeof scheme - 1;
    const char *slash = strchr(p, '/');
    size_t tl = slash ? (size_t)(slash - p) : strlen(p);
    if (tl == 0)
        return mesh_err_set(err, MESH_EINVAL, "SPIFFE ID '%.200s' has no trust domain", id);
    if (tl > 255)
        return mesh_err_set(err, MESH_EINVAL, "SPIFFE ID '%.200s': trust domain too long", id);
    for (size_t i = 0; i < tl; i++) {
        if (!td_char(p[i]))
            return mesh_err_set(err, MESH_EINVAL,
                                "SPIFFE ID '%.200s': trust domain may only contain lowercase "
                                "letters, digits, '.', '-', '_'", id);
    }
    if (slash) {
        const char *seg = slash + 1;
        for (;;) {
            const char *end = strchr(seg, '/');
            size_t sl = end ? (size_t)(end - seg) : strlen(seg);
            if (sl == 0)
                return mesh_err_set(err, MESH_EINVAL, "SPIFFE ID '%.200s': empty path segment "
                                    "(or trailing '/')", id);
            if ((sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
                return mesh_err_set(err, MESH_EINVAL,
                                    "SPIFFE ID '%.200s': '.' and '..' segments are not allowed",
                                    id);
            for (size_t i = 0; i < sl; i++) {
                if (!path_char(seg[i]))
                    return mesh_err_set(err, MESH_EINVAL,
                                        "SPIFFE ID '%.200s': path may only contain letters, "
                                        "digits, '.', '-', '_'", id);
            }
            if (!end)
                break;
            seg = end + 1;
        }
    }
    if (td) {
        if (tdlen <= tl)
            return mesh_err_set(err, MESH_EINVAL, "trust domain buffer too small");
        memcpy(td, p, tl);
        td[tl] = '\0';
    }
    return MESH_OK;
}
