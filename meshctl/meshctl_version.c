/* meshctl/meshctl_version.c — `meshctl version`: the release, the git revision
 * of the build, and the libraries it runs on (what a bug report needs). */
#include "meshctl/meshctl.h"

#include <event2/event.h>
#include <grpc/grpc.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>

#include "common/version.h"

int ctl_cmd_version(ctl_ctx *c, int argc, char **argv)
{
    if (argc > 1)
        return ctl_usage_error(c, "version: unexpected argument '%s'", argv[1]);
    int pq = PQlibVersion();
    char pqv[32];
    snprintf(pqv, sizeof pqv, "%d.%d", pq / 10000, pq % 10000);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "version", MESH_VERSION);
        json_key_str(&j, "revision", mesh_build_rev());
        json_key_str(&j, "openssl", OpenSSL_version(OPENSSL_VERSION));
        json_key_str(&j, "grpc", grpc_version_string());
        json_key_str(&j, "sqlite", sqlite3_libversion());
        json_key_str(&j, "libpq", pqv);
        json_key_str(&j, "libevent", event_get_version());
        json_obj_end(&j);
        return ctl_print_json(&j);
    }
    printf("meshctl %s\n%s, gRPC core %s, SQLite %s, libpq %s, libevent %s\n", mesh_version(),
           OpenSSL_version(OPENSSL_VERSION), grpc_version_string(), sqlite3_libversion(), pqv,
           event_get_version());
    return 0;
}
