/* tests/unit/test_sidecar_http_state.c — the HTTP exchange state machine
 * (sidecar/proxy_http_state.c) as a table: the paths an exchange takes, and
 * every event that must be refused in a phase where it cannot happen. */
#include <criterion/criterion.h>
#include <string.h>

#include "sidecar/proxy_http.h"

#define NEXT(from, ev, req_done) dp_hx_next(DP_HX_##from, DP_HX_EV_##ev, req_done)

Test(sidecar_http_state, a_proxied_exchange)
{
    cr_assert_eq(NEXT(IDLE, REQUEST_HEAD, false), DP_HX_ROUTING);
    cr_assert_eq(NEXT(ROUTING, ROUTED, false), DP_HX_AWAITING_UPSTREAM);
    cr_assert_eq(NEXT(AWAITING_UPSTREAM, UPSTREAM_READY, false), DP_HX_AWAITING_RESPONSE);
    cr_assert_eq(NEXT(AWAITING_RESPONSE, RESPONSE_HEAD, true), DP_HX_STREAMING_RESPONSE);
    cr_assert_eq(NEXT(STREAMING_RESPONSE, RESPONSE_DONE, true), DP_HX_IDLE,
                 "both directions done: the exchange is over");
}

Test(sidecar_http_state, a_response_before_the_request_ends_drains_the_request)
{
    /* The upstream answered while the client was still sending a body. */
    cr_assert_eq(NEXT(STREAMING_RESPONSE, RESPONSE_DONE, false), DP_HX_DRAINING_REQUEST);
    cr_assert_eq(NEXT(DRAINING_REQUEST, REQUEST_DONE, true), DP_HX_IDLE);
    /* Another response for the same request cannot happen. */
    cr_assert_eq(NEXT(DRAINING_REQUEST, RESPONSE_DONE, true), DP_HX_INVALID);
    cr_assert_eq(NEXT(DRAINING_REQUEST, RESPONSE_HEAD, false), DP_HX_INVALID);
}

Test(sidecar_http_state, local_replies_come_before_any_forwarded_response)
{
    /* 400 to a head that did not parse, 404/403/503 while routing, 503 after
     * failed attempts, 504 while waiting for the response. */
    static const dp_hx_state before[] = {DP_HX_IDLE, DP_HX_ROUTING, DP_HX_AWAITING_UPSTREAM,
                                         DP_HX_AWAITING_RESPONSE};
    for (size_t i = 0; i < sizeof before / sizeof before[0]; i++) {
        cr_assert_eq(dp_hx_next(before[i], DP_HX_EV_RESPONSE_DONE, true), DP_HX_IDLE, "%s",
                     dp_hx_state_name(before[i]));
        cr_assert_eq(dp_hx_next(before[i], DP_HX_EV_RESPONSE_DONE, false),
                     DP_HX_DRAINING_REQUEST, "%s", dp_hx_state_name(before[i]));
        cr_assert_not(dp_hx_response_started(before[i]));
    }
}

Test(sidecar_http_state, retries_only_before_the_client_saw_a_response)
{
    cr_assert_eq(NEXT(AWAITING_UPSTREAM, RETRY, false), DP_HX_AWAITING_UPSTREAM,
                 "connect failure: another endpoint");
    cr_assert_eq(NEXT(AWAITING_RESPONSE, RETRY, true), DP_HX_AWAITING_UPSTREAM,
                 "reset before headers or a retryable 5xx");
    cr_assert_eq(NEXT(STREAMING_RESPONSE, RETRY, true), DP_HX_INVALID);
    cr_assert_eq(NEXT(DRAINING_REQUEST, RETRY, false), DP_HX_INVALID);
    cr_assert_eq(NEXT(ROUTING, RETRY, false), DP_HX_INVALID, "no attempt yet");
    cr_assert_eq(NEXT(IDLE, RETRY, false), DP_HX_INVALID);
}

Test(sidecar_http_state, one_exchange_at_a_time)
{
    /* A pipelined head is only parsed once the exchange before it ended. */
    for (int st = DP_HX_ROUTING; st < DP_HX_STATE_COUNT; st++)
        cr_assert_eq(dp_hx_next((dp_hx_state)st, DP_HX_EV_REQUEST_HEAD, false), DP_HX_INVALID,
                     "%s", dp_hx_state_name((dp_hx_state)st));
}

Test(sidecar_http_state, each_event_has_its_one_phase)
{
    for (int st = 0; st < DP_HX_STATE_COUNT; st++) {
        dp_hx_state s = (dp_hx_state)st;
        cr_assert_eq(dp_hx_next(s, DP_HX_EV_ROUTED, false) != DP_HX_INVALID,
                     s == DP_HX_ROUTING, "routed in %s", dp_hx_state_name(s));
        cr_assert_eq(dp_hx_next(s, DP_HX_EV_UPSTREAM_READY, false) != DP_HX_INVALID,
                     s == DP_HX_AWAITING_UPSTREAM, "upstream-ready in %s", dp_hx_state_name(s));
        cr_assert_eq(dp_hx_next(s, DP_HX_EV_RESPONSE_HEAD, false) != DP_HX_INVALID,
                     s == DP_HX_AWAITING_RESPONSE, "response-head in %s", dp_hx_state_name(s));
        cr_assert_eq(dp_hx_next(s, DP_HX_EV_REQUEST_DONE, true) != DP_HX_INVALID,
                     s == DP_HX_DRAINING_REQUEST, "request-done in %s", dp_hx_state_name(s));
    }
}

Test(sidecar_http_state, every_answer_is_a_state_or_invalid)
{
    for (int st = 0; st < DP_HX_STATE_COUNT; st++)
        for (int ev = 0; ev < DP_HX_EVENT_COUNT; ev++)
            for (int rd = 0; rd < 2; rd++) {
                dp_hx_state to = dp_hx_next((dp_hx_state)st, (dp_hx_event)ev, rd);
                cr_assert(to <= DP_HX_INVALID);
                /* A retry never happens once any response reached the client. */
                if (ev == DP_HX_EV_RETRY && dp_hx_response_started((dp_hx_state)st))
                    cr_assert_eq(to, DP_HX_INVALID);
                /* Nothing but the end of an exchange leads back to IDLE. */
                if (to == DP_HX_IDLE)
                    cr_assert(ev == DP_HX_EV_RESPONSE_DONE || ev == DP_HX_EV_REQUEST_DONE);
            }
}

Test(sidecar_http_state, out_of_range_input_is_refused)
{
    cr_assert_eq(dp_hx_next(DP_HX_INVALID, DP_HX_EV_RESPONSE_DONE, true), DP_HX_INVALID);
    cr_assert_eq(dp_hx_next((dp_hx_state)99, DP_HX_EV_REQUEST_HEAD, false), DP_HX_INVALID);
    cr_assert_eq(dp_hx_next(DP_HX_IDLE, DP_HX_EVENT_COUNT, false), DP_HX_INVALID);
    cr_assert_eq(dp_hx_next(DP_HX_IDLE, (dp_hx_event)-1, false), DP_HX_INVALID);
    cr_assert_str_eq(dp_hx_state_name(DP_HX_INVALID), "invalid");
    cr_assert_str_eq(dp_hx_event_name(DP_HX_EVENT_COUNT), "invalid");
}

Test(sidecar_http_state, in_flight_and_started_phases)
{
    cr_assert_not(dp_hx_in_flight(DP_HX_IDLE));
    cr_assert(dp_hx_in_flight(DP_HX_ROUTING));
    cr_assert(dp_hx_in_flight(DP_HX_AWAITING_UPSTREAM));
    cr_assert(dp_hx_in_flight(DP_HX_AWAITING_RESPONSE));
    cr_assert(dp_hx_in_flight(DP_HX_STREAMING_RESPONSE));
    cr_assert_not(dp_hx_in_flight(DP_HX_DRAINING_REQUEST), "its response is complete");
    cr_assert(dp_hx_response_started(DP_HX_STREAMING_RESPONSE));
    cr_assert(dp_hx_response_started(DP_HX_DRAINING_REQUEST));
    cr_assert_not(dp_hx_response_started(DP_HX_AWAITING_RESPONSE));
}

Test(sidecar_http_state, names_are_distinct)
{
    for (int a = 0; a < DP_HX_STATE_COUNT; a++) {
        cr_assert_str_neq(dp_hx_state_name((dp_hx_state)a), "invalid");
        for (int b = a + 1; b < DP_HX_STATE_COUNT; b++)
            cr_assert_str_neq(dp_hx_state_name((dp_hx_state)a),
                              dp_hx_state_name((dp_hx_state)b));
    }
    for (int a = 0; a < DP_HX_EVENT_COUNT; a++) {
        cr_assert_str_neq(dp_hx_event_name((dp_hx_event)a), "invalid");
        for (int b = a + 1; b < DP_HX_EVENT_COUNT; b++)
            cr_assert_str_neq(dp_hx_event_name((dp_hx_event)a),
                              dp_hx_event_name((dp_hx_event)b));
    }
}
