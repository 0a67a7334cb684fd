/* common/version.h — what every binary answers to --version.
 *
 * MESH_VERSION is the release; the revision is the git commit the build came
 * from ($(BUILD)/gen/mesh_build.h, written by the Makefile, "unknown" outside
 * a git checkout), so a bug report names the exact code. */
#ifndef MESH_COMMON_VERSION_H
#define MESH_COMMON_VERSION_H

#include <stdio.h>

#define MESH_VERSION "0.1.0"

/* "0.1.0 (git 1a2b3c4d5e6f)" */
const char *mesh_version(void);
/* The git revision alone. */
const char *mesh_build_rev(void);
/* If argv holds --version (before a "--"), print "PROG VERSION" and the
 * libraries it runs on to out and return 1; else 0. Every main calls it
 * first, so --version works with any other flags and needs no store. */
int mesh_version_flag(int argc, char **argv, const char *prog, FILE *out);

#endif
