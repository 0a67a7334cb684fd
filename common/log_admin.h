/* common/log_admin.h — Envoy's admin /logging endpoint, shared by meshd's
 * metrics listener and the sidecar's admin listener: GET shows the log level,
 * POST /logging?level=debug|info|warn|error changes it. Who may POST is the
 * caller's decision (meshd checks the peer; the sidecar's admin is loopback). */
#ifndef MESH_COMMON_LOG_ADMIN_H
#define MESH_COMMON_LOG_ADMIN_H

#include <stddef.h>

struct evhttp_request;

/* Handles req (changing the level on a valid POST, logged at warn under comp):
 * writes the plain-text reply into body and returns its HTTP status (200, or
 * 400 for a missing or unknown level). The caller sends it. */
int log_admin_logging(struct evhttp_request *req, const char *comp, char *body, size_t n);

#endif
