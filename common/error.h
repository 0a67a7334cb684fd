/* common/error.h — the error carrier every module returns through.
 *
 * Functions return an int status (MESH_OK or a negative MESH_E* code) and, when
 * they fail, fill a caller-provided mesh_err with a message an operator can act
 * on ("join token expired at 2026-11-25T10:00:00Z; ask for a new one with
 * 'meshctl workload add'"), never a bare errno. A NULL mesh_err is allowed. */
#ifndef MESH_COMMON_ERROR_H
#define MESH_COMMON_ERROR_H

#include <stddef.h>

enum mesh_status {
    MESH_OK        = 0,
    MESH_EINVAL    = -1,  /* bad input: malformed, out of range, wrong identity */
    MESH_ENOTFOUND = -2,  /* no such registration, cert, token, resource */
    MESH_EEXISTS   = -3,  /* already exists (duplicate registration, CA already initialised) */
    MESH_EPERM     = -4,  /* not authorised: identity mismatch, revoked, token spent */
    MESH_EEXPIRED  = -5,  /* token or certificate past its lifetime */
    MESH_EIO       = -6,  /* file system or database I/O */
    MESH_ECORRUPT  = -7,  /* on-disk data is damaged */
    MESH_ECRYPTO   = -8,  /* OpenSSL failure */
    MESH_ENOMEM    = -9,
    MESH_EBUSY     = -10, /* database locked past the busy timeout, throttled */
    MESH_EINTERNAL = -11,
    MESH_ENOSPC    = -12, /* the file system holding the store is full: retry once space is freed */
};

typedef struct mesh_err {
    int code;
    char msg[512];
} mesh_err;

/* Sets code and a printf-style message; returns code so callers can write
 * `return mesh_err_set(err, MESH_EINVAL, "...")`. */
int mesh_err_set(mesh_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with context ("loading CA: <old message>"). */
int mesh_err_prefix(mesh_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends the OpenSSL error queue (and clears it) to the message. */
int mesh_err_openssl(mesh_err *err, int code, const char *what);

void mesh_err_clear(mesh_err *err);

/* Short stable name of a status code ("EINVAL"), for JSON output and logs. */
const char *mesh_status_name(int code);

#endif
