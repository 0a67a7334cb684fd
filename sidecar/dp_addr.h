/* sidecar/dp_addr.h — numeric "ip:port" addresses for listeners and endpoints.
 *
 * The data plane never resolves names: EDS hands it IPs, and a listener must
 * bind exactly where the control plane said. So only numeric IPv4
 * ("10.0.0.1:80") and bracketed IPv6 ("[::1]:80") are accepted. */
#ifndef MESH_SIDECAR_DP_ADDR_H
#define MESH_SIDECAR_DP_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/error.h"

/* Parses "ip:port" / "[ipv6]:port". allow_port0 admits port 0 (an ephemeral
 * listener port, used by tests). The message explains what is wrong. */
int dp_addr_parse(const char *s, bool allow_port0, struct sockaddr_storage *sa, socklen_t *len,
                  mesh_err *err);
/* "ip:port" or "[ipv6]:port" from an IP string and port (what an Envoy
 * SocketAddress carries). MESH_EINVAL if it does not fit or ip has a ':' and
 * is not IPv6. */
int dp_addr_join(char *buf, size_t len, const char *ip, uint32_t port, mesh_err *err);
/* Formats a sockaddr as above; "?" if the family is unknown. */
void dp_addr_format(const struct sockaddr *sa, char *buf, size_t len);
/* The port of an AF_INET/AF_INET6 sockaddr, 0 otherwise. */
uint16_t dp_addr_port(const struct sockaddr *sa);

#endif
