/* common/error.c — formatting for mesh_err (see error.h). */
#include "common/error.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mesh_err_set(mesh_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int mesh_err_prefix(mesh_err *err, const char *fmt, ...)
{
    if (!err)
        return MESH_EINTERNAL;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    size_t plen = strlen(prefix);
    if (plen > sizeof err->msg - 3)
        plen = sizeof err->msg - 3;
    memcpy(err->msg, prefix, plen);
    memcpy(err->msg + plen, ": ", 2);
    size_t room = sizeof err->msg - plen - 2;
    size_t olen = strnlen(old, room - 1);
    memcpy(err->msg + plen + 2, old, olen);
    err->msg[plen + 2 + olen] = '\0';
    return err->code;
}

int mesh_err_openssl(mesh_err *err, int code, const char *what)
{
    char detail[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    if (detail[0])
        return mesh_err_set(err, code, "%s: %s", what, detail);
    return mesh_err_set(err, code, "%s", what);
}

void mesh_err_clear(mesh_err *err)
{
    if (err) {
        err->code = MESH_OK;
        err->msg[0] = '\0';
    }
}

const char *mesh_status_name(int code)
{
    switch (code) {
    case MESH_OK: return "OK";
    case MESH_EINVAL: return "EINVAL";
    case MESH_ENOTFOUND: return "ENOTFOUND";
    case MESH_EEXISTS: return "EEXISTS";
    case MESH_EPERM: return "EPERM";
    case MESH_EEXPIRED: return "EEXPIRED";
    case MESH_EIO: return "EIO";
    case MESH_ECORRUPT: return "ECORRUPT";
    case MESH_ECRYPTO: return "ECRYPTO";
    case MESH_ENOMEM: return "ENOMEM";
    case MESH_EBUSY: return "EBUSY";
    case MESH_ENOSPC: return "ENOSPC";
    default: return "EINTERNAL";
    }
}
