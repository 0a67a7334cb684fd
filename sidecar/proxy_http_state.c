/* sidecar/proxy_http_state.c — the HTTP exchange state machine as a pure
 * function (drawn in proxy_http.h), so that which phase may follow which is
 * written down once and unit tested without sockets. The actions belong to
 * dp_http_step (proxy_http.c). */
#include "sidecar/proxy_http.h"

/* Where a complete response leads: the exchange is over once both
 * directions are, otherwise the rest of the request is read and dropped. */
static dp_hx_state after_response(bool request_done)
{
    return request_done ? DP_HX_IDLE : DP_HX_DRAINING_REQUEST;
}

dp_hx_state dp_hx_next(dp_hx_state from, dp_hx_event ev, bool request_done)
{
    switch (ev) {
    case DP_HX_EV_REQUEST_HEAD:
        return from == DP_HX_IDLE ? DP_HX_ROUTING : DP_HX_INVALID;
    case DP_HX_EV_ROUTED:
        return from == DP_HX_ROUTING ? DP_HX_AWAITING_UPSTREAM : DP_HX_INVALID;
    case DP_HX_EV_RETRY:
        /* Only before the client saw any of a response. */
        return from == DP_HX_AWAITING_UPSTREAM || from == DP_HX_AWAITING_RESPONSE
                   ? DP_HX_AWAITING_UPSTREAM
                   : DP_HX_INVALID;
    case DP_HX_EV_UPSTREAM_READY:
        return from == DP_HX_AWAITING_UPSTREAM ? DP_HX_AWAITING_RESPONSE : DP_HX_INVALID;
    case DP_HX_EV_RESPONSE_HEAD:
        return from == DP_HX_AWAITING_RESPONSE ? DP_HX_STREAMING_RESPONSE : DP_HX_INVALID;
    case DP_HX_EV_RESPONSE_DONE:
        /* The forwarded response ends in STREAMING_RESPONSE; a local reply
         * can come in any phase before it (IDLE: the head did not parse). */
        if (from == DP_HX_DRAINING_REQUEST || from >= DP_HX_STATE_COUNT)
            return DP_HX_INVALID;
        return after_response(request_done);
    case DP_HX_EV_REQUEST_DONE:
        /* Elsewhere the end of the request is only a flag: the response
         * still decides when the exchange is over. */
        return from == DP_HX_DRAINING_REQUEST ? DP_HX_IDLE : DP_HX_INVALID;
    case DP_HX_EVENT_COUNT:
        break;
    }
    return DP_HX_INVALID;
}

bool dp_hx_in_flight(dp_hx_state st)
{
    return st >= DP_HX_ROUTING && st <= DP_HX_STREAMING_RESPONSE;
}

bool dp_hx_response_started(dp_hx_state st)
{
    return st == DP_HX_STREAMING_RESPONSE || st == DP_HX_DRAINING_REQUEST;
}

const char *dp_hx_state_name(dp_hx_state st)
{
    static const char *names[] = {
        "idle", "routing", "awaiting-upstream", "awaiting-response", "streaming-response",
        "draining-request",
    };
    return (unsigned)st < DP_HX_STATE_COUNT ? names[st] : "invalid";
}

const char *dp_hx_event_name(dp_hx_event ev)
{
    static const char *names[] = {
        "request-head", "routed", "retry", "upstream-ready", "response-head", "response-done",
        "request-done",
    };
    return (unsigned)ev < DP_HX_EVENT_COUNT ? names[ev] : "invalid";
}
