/* common/mgrpc.c — gRPC C core helpers (see mgrpc.h). */
#include "common/mgrpc.h"

#include "common/escape.h"
#include "common/rate.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

int mgrpc_buffer_to_bytes(grpc_byte_buffer *bb, uint8_t **out, size_t *len_out, mesh_err *err)
{
    *out = NULL;
    *len_out = 0;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return mesh_err_set(err, MESH_EINVAL, "cannot read a received message (bad compression?)");
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    size_t len = GRPC_SLICE_LENGTH(all);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        grpc_slice_unref(all);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory reading a %zu-byte message", len);
    }
    if (len)
        memcpy(buf, GRPC_SLICE_START_PTR(all), len);
    grpc_slice_unref(all);
    *out = buf;
    *len_out = len;
    return MESH_OK;
}

grpc_byte_buffer *mgrpc_buffer_take(uint8_t *data, size_t len)
{
    if (len == 0) {
        free(data);
        grpc_slice empty = grpc_empty_slice();
        return grpc_raw_byte_buffer_create(&empty, 1);
    }
    grpc_slice s = grpc_slice_new(data, len, free);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s); /* the buffer holds its own reference */
    return bb;
}

long mgrpc_md_get(const grpc_metadata_array *md, const char *key, char *buf, size_t len)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < md->count; i++) {
        const grpc_metadata *m = &md->metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) != klen ||
            memcmp(GRPC_SLICE_START_PTR(m->key), key, klen) != 0)
            continue;
        size_t vlen = GRPC_SLICE_LENGTH(m->value);
        if (vlen + 1 > len)
            return -2;
        memcpy(buf, GRPC_SLICE_START_PTR(m->value), vlen);
        buf[vlen] = '\0';
        return (long)vlen;
    }
    return -1;
}

/* A malloc'd NUL-terminated copy of the first property named name, or NULL. */
static int copy_property(grpc_auth_context *ctx, const char *name, char **out, mesh_err *err)
{
    *out = NULL;
    grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ctx, name);
    const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
    if (!p || p->value_length == 0)
        return MESH_OK;
    char *v = malloc(p->value_length + 1);
    if (!v)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory copying the peer's %s", name);
    memcpy(v, p->value, p->value_length);
    v[p->value_length] = '\0';
    *out = v;
    return MESH_OK;
}

int mgrpc_peer_identity(grpc_call *call, char *spiffe_id, size_t spiffe_len, char **cert_pem,
                        char **chain_pem, mesh_err *err)
{
    spiffe_id[0] = '\0';
    *cert_pem = NULL;
    if (chain_pem)
        *chain_pem = NULL;
    grpc_auth_context *ctx = grpc_call_auth_context(call);
    if (!ctx)
        return MESH_OK;
    grpc_auth_property_iterator it =
        grpc_auth_context_find_properties_by_name(ctx, GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
    const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
    int rc = MESH_OK;
    if (p && p->value_length > 0) {
        if (p->value_length >= spiffe_len)
            rc = mesh_err_set(err, MESH_EINVAL, "peer SPIFFE ID is longer than %zu bytes",
                              spiffe_len - 1);
        else {
            memcpy(spiffe_id, p->value, p->value_length);
            spiffe_id[p->value_length] = '\0';
        }
    }
    if (rc == MESH_OK)
        rc = copy_property(ctx, GRPC_X509_PEM_CERT_PROPERTY_NAME, cert_pem, err);
    if (rc == MESH_OK && chain_pem)
        rc = copy_property(ctx, GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME, chain_pem, err);
    grpc_auth_context_release(ctx);
    if (rc != MESH_OK) {
        spiffe_id[0] = '\0';
        free(*cert_pem);
        *cert_pem = NULL;
        if (chain_pem) {
            free(*chain_pem);
            *chain_pem = NULL;
        }
    }
    return rc;
}

grpc_status_code mgrpc_status_from_mesh(int code, mgrpc_fault fault)
{
    /* Codes that mean the same whatever was being checked. */
    switch (code) {
    case MESH_OK: return GRPC_STATUS_OK;
    case MESH_EBUSY: return GRPC_STATUS_UNAVAILABLE;
    case MESH_ENOSPC: return GRPC_STATUS_UNAVAILABLE; /* disk full: retry once space is freed */
    case MESH_ENOMEM: return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case MESH_EINVAL:
    case MESH_ENOTFOUND:
    case MESH_EEXISTS:
    case MESH_EPERM:
    case MESH_EEXPIRED: break; /* a refusal: depends on what was checked */
    default: return GRPC_STATUS_INTERNAL;
    }
    if (fault == MGRPC_FAULT_CREDENTIAL)
        return GRPC_STATUS_UNAUTHENTICATED;
    if (fault != MGRPC_FAULT_REQUEST)
        return GRPC_STATUS_INTERNAL;
    switch (code) {
    case MESH_EINVAL: return GRPC_STATUS_INVALID_ARGUMENT;
    case MESH_ENOTFOUND: return GRPC_STATUS_NOT_FOUND;
    case MESH_EEXISTS: return GRPC_STATUS_ALREADY_EXISTS;
    case MESH_EPERM: return GRPC_STATUS_PERMISSION_DENIED;
    default: return GRPC_STATUS_FAILED_PRECONDITION; /* MESH_EEXPIRED */
    }
}

const char *mgrpc_status_name(grpc_status_code code)
{
    static const char *const names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if (code == GRPC_STATUS_UNAUTHENTICATED)
        return "UNAUTHENTICATED";
    if ((unsigned)code < sizeof names / sizeof names[0])
        return names[code];
    return "UNKNOWN";
}

/* gRPC core's log callback takes no user data, so the rate limit of its
 * per-connection error lines is this one process-wide context: a flood of
 * bad handshakes (garbage, plain HTTP on the TLS port, a client that
 * refuses meshd's certificate) would otherwise write a line each. At most
 * MGRPC_LOG_BURST lines at once, MGRPC_LOG_PER_SEC after that; the next line
 * that passes says how many were dropped. */
#define MGRPC_LOG_PER_SEC 5.0
#define MGRPC_LOG_BURST 50.0

static struct mgrpc_log_limit {
    pthread_mutex_t mu;
    mesh_rate rate;
    int ready;
} g_grpc_log_limit = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t mono_ms(void)
{
    gpr_timespec t = gpr_now(GPR_CLOCK_MONOTONIC);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* gRPC core calls this from any of its threads; log_msg is thread-safe
 * (one fputs per line). Core "errors" are per-connection events (a failed
 * handshake, a peer reset), not meshd failures, hence warn; its "info" lines
 * are internals (poller choice, "could not get common name" for our
 * subject-less SVIDs), hence debug. */
static void grpc_log_to_mesh(gpr_log_func_args *args)
{
    enum log_level lvl = LOG_DEBUG;
    if (args->severity == GPR_LOG_SEVERITY_ERROR)
        lvl = LOG_WARN;
    uint64_t dropped = 0;
    int64_t since = 0;
    if (lvl == LOG_WARN) {
        struct mgrpc_log_limit *l = &g_grpc_log_limit;
        pthread_mutex_lock(&l->mu);
        if (!l->ready) {
            mesh_rate_init(&l->rate, MGRPC_LOG_PER_SEC, MGRPC_LOG_BURST);
            l->ready = 1;
        }
        int64_t now = mono_ms();
        int ok = mesh_rate_allow(&l->rate, now);
        if (ok)
            dropped = mesh_rate_take_dropped(&l->rate, &since);
        pthread_mutex_unlock(&l->mu);
        if (!ok)
            return;
        if (dropped)
            log_warn("grpc", "%llu gRPC core log lines were dropped in the last %.1f s (rate "
                             "limit %g/s, burst %g)",
                     (unsigned long long)dropped, (double)(now - since) / 1000.0,
                     MGRPC_LOG_PER_SEC, MGRPC_LOG_BURST);
    }
    const char *file = args->file ? strrchr(args->file, '/') : NULL;
    file = file ? file + 1 : (args->file ? args->file : "?");
    log_msg(lvl, "grpc", "%s (%s:%d)", args->message ? args->message : "", file, args->line);
}

void mgrpc_log_setup(enum log_level lvl)
{
    gpr_set_log_function(grpc_log_to_mesh);
    gpr_set_log_verbosity(lvl <= LOG_DEBUG ? GPR_LOG_SEVERITY_INFO : GPR_LOG_SEVERITY_ERROR);
}

/* The same for a client that checks a failed server chain itself and says
 * why (the sidecar, sidecar/xds_trust.c): core's bare "certificate verify
 * failed" for the handshake goes to debug instead of competing with that. */
static void grpc_log_to_mesh_client(gpr_log_func_args *args)
{
    if (args->severity == GPR_LOG_SEVERITY_ERROR && args->message &&
        strstr(args->message, "certificate verify failed")) {
        const char *file = args->file ? strrchr(args->file, '/') : NULL;
        file = file ? file + 1 : (args->file ? args->file : "?");
        log_msg(LOG_DEBUG, "grpc", "%s (%s:%d)", args->message, file, args->line);
        return;
    }
    grpc_log_to_mesh(args);
}

void mgrpc_log_setup_client(enum log_level lvl)
{
    gpr_set_log_function(grpc_log_to_mesh_client);
    gpr_set_log_verbosity(lvl <= LOG_DEBUG ? GPR_LOG_SEVERITY_INFO : GPR_LOG_SEVERITY_ERROR);
}

const char *mgrpc_printable(const char *s, char *buf, size_t len)
{
    if (!len)
        return "";
    s = s ? s : "";
    static const char dots[] = "...";
    size_t need = mesh_escape(s, strlen(s), 0, buf, len);
    if (need < len || len < sizeof dots)
        return buf;
    /* Cut: make room for the marker without splitting an escape or a UTF-8
     * sequence (mesh_escape only writes whole units). */
    mesh_escape(s, strlen(s), 0, buf, len - (sizeof dots - 1));
    strcat(buf, dots);
    return buf;
}

gpr_timespec mgrpc_deadline_ms(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}
