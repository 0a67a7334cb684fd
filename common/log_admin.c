/* common/log_admin.c — the /logging admin request (see log_admin.h). */
#include "common/log_admin.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

int log_admin_logging(struct evhttp_request *req, const char *comp, char *body, size_t n)
{
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        snprintf(body, n, "level: %s\n(POST /logging?level=debug|info|warn|error)\n",
                 log_level_name(log_get_level()));
        return 200;
    }
    struct evkeyvalq q;
    memset(&q, 0, sizeof q); /* an empty list; evhttp_parse_query_str initialises it */
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    const char *level = NULL;
    if (query && evhttp_parse_query_str(query, &q) == 0)
        level = evhttp_find_header(&q, "level");
    enum log_level lvl;
    if (!level || log_level_parse(level, &lvl) != 0) {
        snprintf(body, n, "give ?level=debug|info|warn|error (got '%.40s')\n", level ? level : "");
        evhttp_clear_headers(&q);
        return 400;
    }
    evhttp_clear_headers(&q);
    enum log_level was = log_get_level();
    log_set_level(lvl);
    /* Said at warn so the change shows whatever the new threshold is. */
    log_warn(comp, "log level changed from %s to %s (POST /logging)", log_level_name(was),
             log_level_name(lvl));
    snprintf(body, n, "level: %s\n", log_level_name(lvl));
    return 200;
}
