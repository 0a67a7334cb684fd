#!/usr/bin/env bash
# tests/e2e/test_xdsclient_retry.sh — mesh-xdsclient --retry, what the fan-out bench's
# load relies on (issue 15): streams opened while meshd is down wait for it instead of
# failing at gRPC's connect deadline, streams ended by a meshd restart re-open with a
# jittered backoff and carry the versions they hold (so nothing is resent), and without
# --retry the same client gives up as before.
. "$(dirname "$0")/lib.sh"
e2e_setup
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api
SUBS=(--sub 'cds=*' --sub 'lds=*' --sub 'rds=outbound|http' --sub 'eds=outbound|api' --sub sds=default,ROOTCA)
# initial LOG N: N streams of LOG hold all five types.
initial() {
    test "$(json_lines "$1" 'has("type")' | jq -r '"\(.stream) \(.type)"' | sort -u |
        awk '{n[$1]++} END {c = 0; for (s in n) if (n[s] == 5) c++; print c}')" -ge "$2"
}
summary_of() { json_lines "$1" '.event == "summary"'; }

ca_init
write_web_api_mesh 2s "$API"
check_out "config applies" "config version" "$M" apply -f "$D/mesh.yaml"
start_meshd meshd --instance e2e-retry
check "meshd listens" wait_port "$MESHD_PORT" 15
enrol "$WEB" web
kill -TERM "$MESHD_PID"
wait "$MESHD_PID" 2>/dev/null

echo "xdsclient retry: streams opened while meshd is down"
start noretry "$XC" "${S[@]}" --state-dir "$D/web" "${SUBS[@]}" --streams 2 --timeout 30s
NORETRY_PID=$LAST_PID
start retry "$XC" "${S[@]}" --state-dir "$D/web" "${SUBS[@]}" --streams 4 --retry --timeout 60s
RETRY_PID=$LAST_PID
sleep 3
check "without --retry the streams fail while meshd is down" wait_for 10 not_running "$NORETRY_PID"
check_out "with UNAVAILABLE" '"status":"UNAVAILABLE"' cat "$D/noretry.log"
check "with --retry the client is still waiting" kill -0 "$RETRY_PID"
start_meshd meshd2 --instance e2e-retry --log-level debug
check "meshd comes up" wait_port "$MESHD_PORT" 15
check "all four waiting streams get their config" wait_for 20 initial retry 4

echo "xdsclient retry: a meshd restart ends the streams; they re-open"
before=$(count_where retry 'has("type")')
kill -TERM "$MESHD_PID"
wait "$MESHD_PID" 2>/dev/null
check "the streams ended with an error" wait_for 10 logged retry '.event == "status"'
start_meshd meshd3 --instance e2e-retry --log-level debug
check "meshd comes back" wait_port "$MESHD_PORT" 15
resumed4() { test "$(grep -c 'resume RDS' "$D/meshd3.log")" -ge 4; }
check "the four streams re-open and present their versions (RDS resumed 4 times)" \
    wait_for 30 resumed4
check "nothing was resent to them" test "$(count_where retry 'has("type")')" -eq "$before"
write_web_api_mesh 3s "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "a route change reaches the re-opened streams" wait_for 15 sh -c \
    "test \$(grep -c '\"type\":\"RDS\"' '$D/retry.log') -ge 8"
check_err "--retry is refused with --expect-status" "--retry re-opens failed streams" \
    "$XC" "${S[@]}" --state-dir "$D/web" --retry --expect-status 7 --timeout 2s
check_err "and with --exit-after" "--retry re-opens failed streams" \
    "$XC" "${S[@]}" --state-dir "$D/web" --retry --exit-after 3 --timeout 2s
e2e_finish
