/* tests/unit/test_common_grpc_status.c — mgrpc_status_from_mesh, the one
 * MESH_E* -> gRPC status mapping: the whole table, row by row, and the rules
 * the rows follow (a refused credential is UNAUTHENTICATED whatever the
 * reason; meshd's own failures are never blamed on the client). */
#include <criterion/criterion.h>

#include "common/error.h"
#include "common/mgrpc.h"

static const int every_code[] = {
    MESH_OK,      MESH_EINVAL,  MESH_ENOTFOUND, MESH_EEXISTS, MESH_EPERM,  MESH_EEXPIRED,
    MESH_EIO,     MESH_ECORRUPT, MESH_ECRYPTO,  MESH_ENOMEM,  MESH_EBUSY,  MESH_EINTERNAL,
    MESH_ENOSPC,
};
#define N_CODES (sizeof every_code / sizeof every_code[0])

/* The documented table (common/mgrpc.h), one row per code. */
static const struct {
    int code;
    grpc_status_code request, credential, server;
} table[] = {
    {MESH_OK, GRPC_STATUS_OK, GRPC_STATUS_OK, GRPC_STATUS_OK},
    {MESH_EINVAL, GRPC_STATUS_INVALID_ARGUMENT, GRPC_STATUS_UNAUTHENTICATED, GRPC_STATUS_INTERNAL},
    {MESH_ENOTFOUND, GRPC_STATUS_NOT_FOUND, GRPC_STATUS_UNAUTHENTICATED, GRPC_STATUS_INTERNAL},
    {MESH_EEXISTS, GRPC_STATUS_ALREADY_EXISTS, GRPC_STATUS_UNAUTHENTICATED, GRPC_STATUS_INTERNAL},
    {MESH_EPERM, GRPC_STATUS_PERMISSION_DENIED, GRPC_STATUS_UNAUTHENTICATED, GRPC_STATUS_INTERNAL},
    {MESH_EEXPIRED, GRPC_STATUS_FAILED_PRECONDITION, GRPC_STATUS_UNAUTHENTICATED,
     GRPC_STATUS_INTERNAL},
    {MESH_EIO, GRPC_STATUS_INTERNAL, GRPC_STATUS_INTERNAL, GRPC_STATUS_INTERNAL},
    {MESH_ECORRUPT, GRPC_STATUS_INTERNAL, GRPC_STATUS_INTERNAL, GRPC_STATUS_INTERNAL},
    {MESH_ECRYPTO, GRPC_STATUS_INTERNAL, GRPC_STATUS_INTERNAL, GRPC_STATUS_INTERNAL},
    {MESH_ENOMEM, GRPC_STATUS_RESOURCE_EXHAUSTED, GRPC_STATUS_RESOURCE_EXHAUSTED,
     GRPC_STATUS_RESOURCE_EXHAUSTED},
    {MESH_EBUSY, GRPC_STATUS_UNAVAILABLE, GRPC_STATUS_UNAVAILABLE, GRPC_STATUS_UNAVAILABLE},
    {MESH_EINTERNAL, GRPC_STATUS_INTERNAL, GRPC_STATUS_INTERNAL, GRPC_STATUS_INTERNAL},
    /* A full disk is temporary: the client must retry, not give up (issue 12). */
    {MESH_ENOSPC, GRPC_STATUS_UNAVAILABLE, GRPC_STATUS_UNAVAILABLE, GRPC_STATUS_UNAVAILABLE},
};

Test(grpc_status, the_documented_table)
{
    cr_assert_eq(sizeof table / sizeof table[0], N_CODES, "one row per MESH_E* code");
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        int c = table[i].code;
        const char *n = mesh_status_name(c);
        cr_assert_eq(mgrpc_status_from_mesh(c, MGRPC_FAULT_REQUEST), table[i].request,
                     "%s in a request: %s", n,
                     mgrpc_status_name(mgrpc_status_from_mesh(c, MGRPC_FAULT_REQUEST)));
        cr_assert_eq(mgrpc_status_from_mesh(c, MGRPC_FAULT_CREDENTIAL), table[i].credential,
                     "%s in a credential: %s", n,
                     mgrpc_status_name(mgrpc_status_from_mesh(c, MGRPC_FAULT_CREDENTIAL)));
        cr_assert_eq(mgrpc_status_from_mesh(c, MGRPC_FAULT_SERVER), table[i].server,
                     "%s in meshd's own work: %s", n,
                     mgrpc_status_name(mgrpc_status_from_mesh(c, MGRPC_FAULT_SERVER)));
    }
}

Test(grpc_status, unknown_codes_are_internal)
{
    const int odd[] = {-13, -100, 1, 42};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        cr_assert_eq(mgrpc_status_from_mesh(odd[i], MGRPC_FAULT_REQUEST), GRPC_STATUS_INTERNAL);
        cr_assert_eq(mgrpc_status_from_mesh(odd[i], MGRPC_FAULT_CREDENTIAL), GRPC_STATUS_INTERNAL);
        cr_assert_eq(mgrpc_status_from_mesh(odd[i], MGRPC_FAULT_SERVER), GRPC_STATUS_INTERNAL);
    }
}

/* A credential check never answers OK for a failure, and meshd short of
 * memory or busy while checking a token must not read as "token refused":
 * the sidecar gives up on refusals (xdsc_csr_refused) but retries these. */
Test(grpc_status, credential_refusals_and_meshd_failures_stay_apart)
{
    for (size_t i = 0; i < N_CODES; i++) {
        int c = every_code[i];
        grpc_status_code s = mgrpc_status_from_mesh(c, MGRPC_FAULT_CREDENTIAL);
        if (c == MESH_OK)
            continue;
        cr_assert_neq(s, GRPC_STATUS_OK, "%s", mesh_status_name(c));
        int refusal = c == MESH_EINVAL || c == MESH_ENOTFOUND || c == MESH_EEXISTS ||
                      c == MESH_EPERM || c == MESH_EEXPIRED;
        cr_assert_eq(s == GRPC_STATUS_UNAUTHENTICATED, refusal, "%s -> %s", mesh_status_name(c),
                     mgrpc_status_name(s));
    }
}

/* meshd's own store or reply failing is never reported as the client's fault. */
Test(grpc_status, server_faults_never_blame_the_request)
{
    for (size_t i = 0; i < N_CODES; i++) {
        grpc_status_code s = mgrpc_status_from_mesh(every_code[i], MGRPC_FAULT_SERVER);
        cr_assert(s == GRPC_STATUS_OK || s == GRPC_STATUS_INTERNAL ||
                      s == GRPC_STATUS_UNAVAILABLE || s == GRPC_STATUS_RESOURCE_EXHAUSTED,
                  "%s -> %s", mesh_status_name(every_code[i]), mgrpc_status_name(s));
    }
}
