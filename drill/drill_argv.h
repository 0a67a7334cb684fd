/* drill/drill_argv.h — what the drill's children are given: the command lines of
 * meshd, a sidecar and a test app (drill_argv.c), and the mesh config the drill
 * applies for them (drill_yaml.c). Pure: built before fork, nothing but exec
 * happens in the child. */
#ifndef MESH_DRILL_DRILL_ARGV_H
#define MESH_DRILL_DRILL_ARGV_H

#include "drill/drill_model.h"

/* NULL-terminated, malloc'd (drill_argv_free); NULL when out of memory. */
char **drill_meshd_argv(const drill_run *r);
/* Replica i (0-based; 0 = drill_meshd_argv) of --replicas: its own port and instance
 * name, the same store. */
char **drill_replica_argv(const drill_run *r, int i);
char **drill_sidecar_argv(const drill_run *r, const drill_sidecar *s);
char **drill_testapp_argv(const drill_run *r, const drill_sidecar *s);
void drill_argv_free(char **argv);

/* The mesh YAML for the run's services, workloads and ports (malloc'd); NULL
 * when out of memory. */
char *drill_mesh_yaml(const drill_run *r);

#endif
