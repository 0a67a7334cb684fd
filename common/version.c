/* common/version.c — the release and build revision (see version.h). */
#include "common/version.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <string.h>

#include "mesh_build.h"

const char *mesh_version(void) { return MESH_VERSION " (git " MESH_BUILD_REV ")"; }

const char *mesh_build_rev(void) { return MESH_BUILD_REV; }

int mesh_version_flag(int argc, char **argv, const char *prog, FILE *out)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "--version") == 0) {
            fprintf(out, "%s %s\n%s, libevent %s\n", prog, mesh_version(),
                    OpenSSL_version(OPENSSL_VERSION), event_get_version());
            return 1;
        }
    }
    return 0;
}
