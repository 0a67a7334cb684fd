#!/usr/bin/env bash
# tests/e2e/test_fleet_eds.sh — endpoints that reflect reality (issue 13): meshd serves a
# workload's endpoint UNHEALTHY in EDS once its sidecar has held no xDS stream for
# --endpoint-grace, and the sidecars' load balancers skip it. A never-started canary
# gets no traffic after the grace (0 failures in N requests without retries, where the
# old code sent a third of them to the dead endpoint); a killed replica's sidecar is
# steered around after the grace and comes back at once when it restarts; proxy-status
# shows a row per instance with connected/stale/down; during a meshd outage the
# sidecars keep what they have. Then the demo's canary on subsets: a weighted route
# across subsets v1/v2 splits 1000 requests 90/10 (+-4 %), and a header rule picks v2.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup

WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api
GRACE=4
# meshd's health flags; FLEET_EDS_MESHD_ARGS="" runs the same checks against a meshd
# without endpoint health (how the defects were shown on the old code).
read -r -a HEALTH_ARGS <<<"${FLEET_EDS_MESHD_ARGS---endpoint-grace ${GRACE}s}"

echo "fleet-eds: setup"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
sc_port P_WEB_IN; sc_port P_WEB_OUT; sc_port P_WEB_APP
sc_port P_A1_IN; sc_port P_A1_APP; sc_port P_A2_IN; sc_port P_A2_APP
sc_port P_C_IN; sc_port P_C_APP
cat >"$D/mesh.yaml" <<YAML
services:
  - {name: web, protocol: http, port: $P_WEB_APP}
  - name: api
    protocol: http
    port: 8080
    subsets:
      - {name: v1, labels: {version: v1}}
      - {name: v2, labels: {version: v2}}
workloads:
  - {name: web-1, spiffe_id: "$WEB", service: web, inbound: "127.0.0.1:$P_WEB_IN",
     app: "127.0.0.1:$P_WEB_APP", outbound: "127.0.0.1:$P_WEB_OUT"}
  - {name: api-1, spiffe_id: "$API", service: api, labels: {version: v1},
     inbound: "127.0.0.1:$P_A1_IN", app: "127.0.0.1:$P_A1_APP"}
  - {name: api-2, spiffe_id: "$API", service: api, labels: {version: v1},
     inbound: "127.0.0.1:$P_A2_IN", app: "127.0.0.1:$P_A2_APP"}
  - {name: api-canary, spiffe_id: "$API", service: api, labels: {version: v2},
     inbound: "127.0.0.1:$P_C_IN", app: "127.0.0.1:$P_C_APP"}
authorization:
  - {service: api, allow: ["$WEB"]}
routes:
  # No retries: a request sent to a dead endpoint fails, so a failure count shows
  # exactly how much traffic went where it should not.
  - name: api
    hosts: [api]
    rules:
      - {match: {prefix: /}, destinations: [{service: api, weight: 100}], retries: 0}
  - name: split
    hosts: [split]
    rules:
      - match: {prefix: /, headers: [{name: x-canary, exact: "1"}]}
        destinations: [{service: api, subset: v2, weight: 100}]
      - match: {prefix: /}
        destinations: [{service: api, subset: v1, weight: 90}, {service: api, subset: v2, weight: 10}]
YAML
check "apply the mesh" "$M" apply -f "$D/mesh.yaml"
token_of() { jq -r '.token | select(startswith("mjt_"))'; }
"$M" --output json workload add web-1 --id "$WEB" | token_of >"$D/web.token"
for n in api-1 api-2 api-canary; do
    "$M" --output json workload add "$n" --id "$API" | token_of >"$D/$n.token"
done
start app-a1 "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_A1_APP" --name api-1
start app-a2 "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_A2_APP" --name api-2
check "apps are up" wait_port "$P_A2_APP" 10
check_err "--endpoint-grace refuses a bad value" "--endpoint-grace" \
    "$MESH_BIN/meshd" --db "$MESHD_DB" --endpoint-grace 3x
sc_start_meshd "${HEALTH_ARGS[@]}"
check "meshd is up" wait_port "$MESHD_PORT" 10
sc_start_sidecar web "$WEB" --workload web-1
sc_start_sidecar api-1 "$API" --workload api-1
sc_start_sidecar api-2 "$API" --workload api-2
for n in web api-1 api-2; do
    check "sidecar $n becomes ready" wait_for 15 sc_ready "$n"
done
check "web's outbound listener is up" wait_port "$P_WEB_OUT" 10

# health_in_web CLUSTER PORT: the health web's sidecar holds for that endpoint.
health_in_web() {
    sc_admin web /config_dump | jq -r --arg c "$1" --arg a "127.0.0.1:$2" \
        '.clusters[] | select(.name == $c) | .endpoints[] | select(.address == $a) | .health'
}
health_is() { [ "$(health_in_web "$1" "$2")" = "$3" ]; }
# fails HOST N [HEADER]: how many of N requests did not get a 200.
fails() {
    local i bad=0 code
    for i in $(seq 1 "$2"); do
        code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Host: $1" ${3:+-H "$3"} \
            "http://127.0.0.1:$P_WEB_OUT/")
        [ "$code" = 200 ] || bad=$((bad + 1))
    done
    echo "$bad"
}
# apps_of HOST N [HEADER]: N requests over one connection; prints "app=count" lines.
apps_of() {
    local urls=() i
    for i in $(seq 1 "$2"); do urls+=("http://127.0.0.1:$P_WEB_OUT/"); done
    curl -s -m 120 -H "Host: $1" ${3:+-H "$3"} -w '\n' "${urls[@]}" |
        jq -r '.app // "error"' 2>/dev/null | sort | uniq -c | awk '{print $2"="$1}'
}
count_of() { printf '%s\n' "$2" | sed -n "s/^$1=\([0-9]*\)$/\1/p"; }

echo "fleet-eds: a never-started canary gets no traffic after the grace"
check "the canary's endpoint becomes UNHEALTHY in web's EDS" \
    wait_for $((GRACE + 10)) health_is "outbound|api" "$P_C_IN" UNHEALTHY
check "the running replicas stay HEALTHY" health_is "outbound|api" "$P_A1_IN" HEALTHY
check "... both of them" health_is "outbound|api" "$P_A2_IN" HEALTHY
check "the subset cluster says the same" health_is "outbound|api|v2" "$P_C_IN" UNHEALTHY
check_out "meshd says why" "api-canary: its sidecar has held no xDS stream" cat "$D/meshd.log"
n=$(fails api 150)
check "0 of 150 requests failed without retries (got $n)" test "$n" -eq 0

echo "fleet-eds: proxy-status, one row per instance"
"$M" proxy-status --output json >"$D/ps.json"
row_state() { jq -r --arg w "$1" '.[] | select(.workload == $w) | .state' "$D/ps.json"; }
check "web-1 is connected" test "$(row_state web-1)" = connected
check "api-1 is connected" test "$(row_state api-1)" = connected
check "the canary is a down row, never seen" \
    jq -e '.[] | select(.workload == "api-canary") | .state == "down" and .last_seen_at == null' "$D/ps.json"
check "rows carry the identity" \
    jq -e --arg id "$API" '[.[] | select(.spiffe_id == $id)] | length == 3' "$D/ps.json"
check "connected rows have RFC 3339 times" \
    jq -e '.[] | select(.workload == "api-1") | .connected_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")' "$D/ps.json"
check "per-type versions, all ACKed" \
    jq -e '.[] | select(.workload == "api-1") | [.types[] | .synced] | all and length >= 3' "$D/ps.json"
check_out "text shows the workload column and states" "api-canary" "$M" proxy-status
"$M" proxy-status >"$D/ps.txt"
check "text: web-1 connected" grep -Eq '^web-1 +.*connected' "$D/ps.txt"
check "text: the canary down, never seen" grep -Eq '^api-canary +.*down +never' "$D/ps.txt"

echo "fleet-eds: a killed replica's sidecar is steered around after the grace"
kill -KILL "$PID_api_2"; wait "$PID_api_2" 2>/dev/null
check "just after the kill api-2 is still HEALTHY (the grace)" \
    health_is "outbound|api" "$P_A2_IN" HEALTHY
check "api-2 becomes UNHEALTHY in web's EDS" \
    wait_for $((GRACE + 10)) health_is "outbound|api" "$P_A2_IN" UNHEALTHY
n=$(fails api 150)
check "0 of 150 requests failed with api-2's sidecar dead (got $n)" test "$n" -eq 0
"$M" proxy-status --output json >"$D/ps.json"
check "proxy-status: api-2 is down with a last-seen time" \
    jq -e '.[] | select(.workload == "api-2") | .state == "down" and (.last_seen_at | test("Z$"))' "$D/ps.json"
check "proxy-status: a sidecar that went away shows nothing SYNCED" \
    jq -e '.[] | select(.workload == "api-2") | [.types[] | .synced] | any | not' "$D/ps.json"
check "text: api-2 down, no SYNCED" sh -c "'$M' proxy-status | grep -E '^api-2 ' | grep -v SYNCED | grep -q down"

echo "fleet-eds: a restarted sidecar is HEALTHY again at once"
sc_start_sidecar api-2 "$API" --workload api-2
check "api-2's sidecar is ready again" wait_for 15 sc_ready api-2
check "api-2 is HEALTHY again within 5 s" wait_for 5 health_is "outbound|api" "$P_A2_IN" HEALTHY
out=$(apps_of api 60 | tr '\n' ' ')
check "traffic reaches api-2 again ($out)" test "$(count_of api-2 "$(printf '%s\n' $out)")" -ge 5

echo "fleet-eds: during a meshd outage the sidecars keep what they have"
sc_stop "$MESHD_PID"
n=$(fails api 60)
check "0 of 60 requests failed with meshd down (got $n)" test "$n" -eq 0
check "web still holds the canary UNHEALTHY" health_is "outbound|api" "$P_C_IN" UNHEALTHY
check "... and the replicas HEALTHY" health_is "outbound|api" "$P_A1_IN" HEALTHY
sc_start_meshd "${HEALTH_ARGS[@]}"
check "meshd is back" wait_port "$MESHD_PORT" 10
check "web reconnects" wait_for 15 sh -c "'$M' proxy-status --output json | jq -e '.[] | select(.workload == \"web-1\") | .state == \"connected\"'"

echo "fleet-eds: the canary on subsets"
start app-c "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_C_APP" --name api-canary
sc_start_sidecar api-canary "$API" --workload api-canary
check "the canary's sidecar is ready" wait_for 15 sc_ready api-canary
check "the canary is HEALTHY once its sidecar connects" \
    wait_for 10 health_is "outbound|api|v2" "$P_C_IN" HEALTHY
out=$(apps_of split 1000)
c=$(count_of api-canary "$out"); a1=$(count_of api-1 "$out"); a2=$(count_of api-2 "$out")
tot=$(( ${c:-0} + ${a1:-0} + ${a2:-0} ))
check "all 1000 split requests answered ($(echo $out))" test "$tot" -eq 1000
check "the canary got 10 % +-4 (${c:-0} of 1000)" test "${c:-0}" -ge 60 -a "${c:-0}" -le 140
check "both v1 replicas share the 90 % (${a1:-0}/${a2:-0})" test "${a1:-0}" -ge 300 -a "${a2:-0}" -ge 300
out=$(apps_of split 50 "x-canary: 1")
check "x-canary: 1 picks v2 every time ($(echo $out))" test "$(count_of api-canary "$out")" = 50

echo "fleet-eds: stop"
for n in web api-1 api-2 api-canary; do
    var="PID_${n//-/_}"
    sc_stop "${!var}"
done
e2e_finish
