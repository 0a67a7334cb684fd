#!/usr/bin/env bash
# tests/e2e/test_fleet_breakers.sh — circuit breakers in the caller's sidecar (issue 13):
# api sets circuit_breakers {max_requests: 3}; its app answers /delay/MS slowly. 3
# concurrent slow requests from web all succeed; 8 concurrent ones get exactly 3
# answers from api and 5 local 503s with Envoy's x-envoy-overloaded: true, counted as
# upstream_rq_pending_overflow in /stats (Envoy's Prometheus name, checked by promtool)
# and in /clusters. Once they are done there is room again. On the old code the limit
# was compiled into CDS and ignored: all 8 went through.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup

WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api

echo "fleet breakers: setup"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
sc_port P_WEB_IN; sc_port P_WEB_OUT; sc_port P_WEB_APP; sc_port P_API_IN; sc_port P_API_APP
cat >"$D/mesh.yaml" <<YAML
services:
  - {name: web, protocol: http, port: $P_WEB_APP}
  - name: api
    protocol: http
    port: 8080
    circuit_breakers: {max_requests: 3}
workloads:
  - {name: web-1, spiffe_id: "$WEB", service: web, inbound: "127.0.0.1:$P_WEB_IN",
     app: "127.0.0.1:$P_WEB_APP", outbound: "127.0.0.1:$P_WEB_OUT"}
  - {name: api-1, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_API_IN",
     app: "127.0.0.1:$P_API_APP"}
routes:
  - name: api
    rules:
      - match: {prefix: /}
        destinations: [{service: api, weight: 100}]
        timeout: 10s
authorization:
  - {service: api, allow: ["$WEB"]}
YAML
"$M" apply -f "$D/mesh.yaml" >"$D/apply.out" 2>&1
check "apply the mesh" test $? -eq 0
check_fails "apply no longer warns that circuit_breakers are not enforced" \
    grep -q "circuit_breakers.*does not enforce" "$D/apply.out"
token_of() { jq -r '.token | select(startswith("mjt_"))'; }
"$M" --output json workload add web-1 --id "$WEB" | token_of >"$D/web-1.token"
"$M" --output json workload add api-1 --id "$API" | token_of >"$D/api-1.token"
start app-api "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_API_APP" --name api-1
check "app api is up" wait_port "$P_API_APP" 10
sc_start_meshd
check "meshd is up" wait_port "$MESHD_PORT" 10
sc_start_sidecar web-1 "$WEB" --workload web-1 --access-log "$D/web-access.log"
sc_start_sidecar api-1 "$API" --workload api-1
for n in web-1 api-1; do check "sidecar $n becomes ready" wait_for 15 sc_ready "$n"; done
check "outbound listener is up" wait_port "$P_WEB_OUT" 10
check "api inbound is up" wait_port "$P_API_IN" 10
check "a request goes through" test "$(sc_get api "$P_WEB_OUT")" = 200

# wave N MS: N concurrent requests to /delay/MS; one "status overloaded-header" line each
# in $D/wave.txt.
wave() {
    local i pids=()
    rm -f "$D"/wave-*.h
    for i in $(seq 1 "$1"); do
        curl -s -m 20 -o /dev/null -D "$D/wave-$i.h" -H "Host: api" \
            "http://127.0.0.1:$P_WEB_OUT/delay/$2" &
        pids+=($!)
    done
    wait "${pids[@]}"   # not a bare wait: the sidecars are children too
    for i in $(seq 1 "$1"); do
        local st ov
        st=$(awk 'NR == 1 {print $2}' "$D/wave-$i.h")
        ov=$(tr -d '\r' <"$D/wave-$i.h" | awk 'tolower($1) == "x-envoy-overloaded:" {print $2}')
        echo "$st ${ov:-none}"
    done >"$D/wave.txt"
}
stat_of() {
    sc_admin web-1 /stats | awk -v m="$1{envoy_cluster_name=\"outbound|api\"}" '$1 == m {print $2}'
}
summary() { sort "$D/wave.txt" | uniq -c | tr '\n' ' '; }

echo "fleet breakers: within the limit"
wave 3 1500
check "3 concurrent slow requests all succeed ($(summary))" \
    test "$(grep -c '^200 none$' "$D/wave.txt")" -eq 3
check "no overflow counted ($(stat_of envoy_cluster_upstream_rq_pending_overflow_total))" \
    test "$(stat_of envoy_cluster_upstream_rq_pending_overflow_total)" = 0

echo "fleet breakers: beyond the limit"
wave 8 2000
check "3 of 8 concurrent requests reach api ($(summary))" \
    test "$(grep -c '^200 none$' "$D/wave.txt")" -eq 3
check "5 of 8 get a local 503 with x-envoy-overloaded: true ($(summary))" \
    test "$(grep -c '^503 true$' "$D/wave.txt")" -eq 5
check "nothing else ($(summary))" test "$(wc -l <"$D/wave.txt")" -eq 8
sleep 1.2   # the access log is written at least once a second
check "the access log marks the 5 overflows UO (Envoy's upstream overflow flag)" \
    test "$(jq -c 'select(.response_flags == "UO" and .response_code == 503)' "$D/web-access.log" | wc -l)" -eq 5
check "/stats counts 5 upstream_rq_pending_overflow" \
    test "$(stat_of envoy_cluster_upstream_rq_pending_overflow_total)" = 5
check "/stats: no connection overflow" test "$(stat_of envoy_cluster_upstream_cx_overflow_total)" = 0
check "/stats: mesh_sidecar_upstream_overflow_total{limit=max_requests} is 5" bash -c \
    "curl -s http://127.0.0.1:$ADMIN_web_1/stats | grep -qx 'mesh_sidecar_upstream_overflow_total{limit=\"max_requests\"} 5'"
check_out "/clusters shows the overflows" "outbound|api::upstream_rq_pending_overflow::5" \
    sc_admin web-1 /clusters
check_out "/clusters shows the limit" "outbound|api::default_priority::max_requests::3" \
    sc_admin web-1 /clusters
check "/clusters?format=json has the thresholds and the counter" bash -c \
    "curl -s 'http://127.0.0.1:$ADMIN_web_1/clusters?format=json' | jq -e '.cluster_statuses[]
     | select(.name == \"outbound|api\") | (.circuit_breakers.thresholds[0].max_requests == 3)
       and ([.stats[] | select(.name == \"upstream_rq_pending_overflow\")][0].value == \"5\")'"
check "/stats/prometheus passes promtool check metrics" bash -c \
    "curl -s http://127.0.0.1:$ADMIN_web_1/stats/prometheus | promtool check metrics"
check "no request is in flight any more ($(stat_of envoy_cluster_upstream_rq_active))" \
    test "$(stat_of envoy_cluster_upstream_rq_active)" = 0

echo "fleet breakers: room again"
wave 3 200
check "3 concurrent requests succeed after the burst ($(summary))" \
    test "$(grep -c '^200 none$' "$D/wave.txt")" -eq 3

echo "fleet breakers: stop"
sc_stop "$PID_web_1"
sc_stop "$PID_api_1"
e2e_finish
