/* meshd/meshd_admin.c — meshd's metrics and health listener (--metrics-listen), on a thread of its own.
 *
 *   GET  /metrics           Prometheus text exposition 0.0.4 (meshd_metrics.c)
 *   GET  /healthz           200 "ok" while the process runs
 *   GET  /readyz            200 once the store is open and healthy, the CA loaded and
 *                           the gRPC server serving; 503 with the reason otherwise
 *   GET  /logging           the current log level
 *   POST /logging?level=L   change it (debug|info|warn|error); loopback peers only
 *
 * Plain HTTP/1.1 by libevent's evhttp (docs/control-plane.md says why): the
 * sidecar's admin endpoint uses the same, so there is one HTTP server library
 * in the tree for both admin surfaces. Its event loop runs on its own thread
 * and only reads atomics and takes the registry/call locks briefly, so a slow
 * scrape never delays a gRPC completion queue or the watcher. It is started
 * before the store is opened: /readyz answers 503 while meshd comes up. */
#include "meshd/meshd_internal.h"
#include "common/cli.h"
#include "common/log_admin.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct md_admin {
    md_ctx *ctx;
    struct event_base *base;
    struct evhttp *http;
    struct event *wake_ev;
    int wake[2];                  /* a byte on wake[1] stops the loop */
    pthread_t th;
    int started;
    int port;
};

int md_admin_check_listen(const char *addr, mesh_err *err)
{
    return cli_listen_addr("--metrics-listen", addr, 0, "127.0.0.1:15014", err);
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                  const char *body)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "content-type", ctype);
    evhttp_add_header(evhttp_request_get_output_headers(req), "cache-control", "no-store");
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void h_metrics(md_admin *a, struct evhttp_request *req)
{
    char *page = md_metrics_render(a->ctx, md_now());
    if (!page) {
        reply(req, 500, "Internal Server Error", "text/plain", "out of memory\n");
        return;
    }
    reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", page);
    free(page);
}

static void h_readyz(md_admin *a, struct evhttp_request *req)
{
    char why[800], body[820];
    int ok = md_ready(a->ctx, why, sizeof why);
    snprintf(body, sizeof body, "%s%s\n", ok ? "" : "not ready: ", why);
    reply(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", "text/plain", body);
}

static int peer_is_loopback(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    const struct sockaddr *sa = conn ? evhttp_connection_get_addr(conn) : NULL;
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 0;
}

/* Envoy's admin shape (common/log_admin.c); a POST only from this host. */
static void h_logging(md_admin *a, struct evhttp_request *req)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST && !peer_is_loopback(req)) {
        reply(req, 403, "Forbidden", "text/plain",
              "changing the log level is allowed from this host (loopback) only\n");
        return;
    }
    char body[200];
    int code = log_admin_logging(req, "meshd", body, sizeof body);
    reply(req, code, code == 200 ? "OK" : "Bad Request", "text/plain", body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    md_admin *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !path[0])
        path = "/";
    int is_post = evhttp_request_get_command(req) == EVHTTP_REQ_POST;
    if (strcmp(path, "/logging") == 0) {
        h_logging(a, req);
        return;
    }
    if (is_post) {
        reply(req, 405, "Method Not Allowed", "text/plain", "only /logging takes POST\n");
        return;
    }
    if (strcmp(path, "/metrics") == 0)
        h_metrics(a, req);
    else if (strcmp(path, "/healthz") == 0)
        reply(req, 200, "OK", "text/plain", "ok\n");
    else if (strcmp(path, "/readyz") == 0)
        h_readyz(a, req);
    else
        reply(req, 404, "Not Found", "text/plain",
              "unknown path; try /metrics /healthz /readyz /logging\n");
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    md_admin *a = arg;
    event_base_loopbreak(a->base);
}

static void *admin_main(void *arg)
{
    md_admin *a = arg;
    event_base_dispatch(a->base);
    return NULL;
}

static void admin_free(md_admin *a)
{
    if (a->http)
        evhttp_free(a->http);
    if (a->wake_ev)
        event_free(a->wake_ev);
    if (a->base)
        event_base_free(a->base);
    if (a->wake[0] >= 0)
        close(a->wake[0]);
    if (a->wake[1] >= 0)
        close(a->wake[1]);
    free(a);
}

int md_admin_start(md_ctx *ctx, const char *addr, md_admin **out, mesh_err *err)
{
    *out = NULL;
    int rc = md_admin_check_listen(addr, err);
    if (rc != MESH_OK)
        return rc;
    md_admin *a = calloc(1, sizeof *a);
    if (!a)
        return mesh_err_set(err, MESH_ENOMEM, "metrics listener: out of memory");
    a->ctx = ctx;
    a->wake[0] = a->wake[1] = -1;
    if (pipe(a->wake) != 0 || !(a->base = event_base_new()) || !(a->http = evhttp_new(a->base)) ||
        !(a->wake_ev = event_new(a->base, a->wake[0], EV_READ, on_wake, a)) ||
        event_add(a->wake_ev, NULL) != 0) {
        admin_free(a);
        return mesh_err_set(err, MESH_ENOMEM, "metrics listener: cannot set up its event loop");
    }
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    /* Requests are tiny; a client that sends more is not a scraper. */
    evhttp_set_max_headers_size(a->http, 8192);
    evhttp_set_max_body_size(a->http, 1024);
    evhttp_set_timeout(a->http, 10);
    evhttp_set_gencb(a->http, on_request, a);
    const char *colon = strrchr(addr, ':');
    char host[64];
    size_t hl = (size_t)(colon - addr);
    if (addr[0] == '[' && hl >= 2) { /* [::1] -> ::1 */
        addr++;
        hl -= 2;
    }
    if (hl >= sizeof host)
        hl = sizeof host - 1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    int port = atoi(colon + 1);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(a->http, host, (uint16_t)port);
    if (!bs) {
        int se = EVUTIL_SOCKET_ERROR();
        admin_free(a);
        return mesh_err_set(err, MESH_EIO,
                            "--metrics-listen %s%s: cannot bind: %s (is another process on "
                            "that port?)",
                            host, colon, evutil_socket_error_to_string(se));
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    a->port = port;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&bound, &bl) == 0)
        a->port = ntohs(bound.ss_family == AF_INET6
                            ? ((struct sockaddr_in6 *)&bound)->sin6_port
                            : ((struct sockaddr_in *)&bound)->sin_port);
    if (pthread_create(&a->th, NULL, admin_main, a) != 0) {
        admin_free(a);
        return mesh_err_set(err, MESH_EINTERNAL, "metrics listener: cannot start its thread");
    }
    a->started = 1;
    log_info("meshd", "metrics and health on http://%s%s%s:%d (/metrics /healthz /readyz "
             "/logging)", strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
             a->port);
    *out = a;
    return MESH_OK;
}

int md_admin_port(const md_admin *a) { return a ? a->port : 0; }

void md_admin_stop(md_admin *a)
{
    if (!a)
        return;
    if (a->started) {
        char b = 1;
        if (write(a->wake[1], &b, 1) != 1)
            log_warn("meshd", "metrics listener: cannot wake its thread to stop");
        pthread_join(a->th, NULL);
    }
    admin_free(a);
}
