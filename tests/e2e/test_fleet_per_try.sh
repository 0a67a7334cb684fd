#!/usr/bin/env bash
# tests/e2e/test_fleet_per_try.sh — the route's per_try_timeout (issue 13): two replicas
# of api share one identity; the app of api-2 hangs (mesh-testapp --hang-file: it reads
# requests and never answers). With retries: 2 and per_try_timeout: 300ms under a 5 s
# route timeout, every request that lands on api-2 is abandoned there after 300 ms and
# retried on api-1 (previous_hosts), so 20 requests all succeed, each well within the
# route timeout, and the abandoned attempts are counted. Outlier detection is off so
# that api-2 keeps being picked. Without the per-try timeout the same requests wait the
# whole 5 s route timeout and fail with 504 (checked in the last part).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup

WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api

echo "fleet per-try: setup"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
sc_port P_WEB_IN; sc_port P_WEB_OUT; sc_port P_WEB_APP
for i in 1 2; do sc_port "P_A${i}_IN"; sc_port "P_A${i}_APP"; done
write_mesh() {
    cat >"$D/mesh.yaml" <<YAML
services:
  - {name: web, protocol: http, port: $P_WEB_APP}
  - name: api
    protocol: http
    port: 8080
    outlier_detection: {consecutive_5xx: 0}
workloads:
  - {name: web-1, spiffe_id: "$WEB", service: web, inbound: "127.0.0.1:$P_WEB_IN",
     app: "127.0.0.1:$P_WEB_APP", outbound: "127.0.0.1:$P_WEB_OUT"}
  - {name: api-1, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_A1_IN",
     app: "127.0.0.1:$P_A1_APP"}
  - {name: api-2, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_A2_IN",
     app: "127.0.0.1:$P_A2_APP"}
routes:
  - name: api
    rules:
      - match: {prefix: /}
        destinations: [{service: api, weight: 100}]
        timeout: 5s
        retries: 2
$1
authorization:
  - {service: api, allow: ["$WEB"]}
YAML
}
write_mesh "        per_try_timeout: 300ms"
check "apply the mesh" "$M" apply -f "$D/mesh.yaml"
token_of() { jq -r '.token | select(startswith("mjt_"))'; }
"$M" --output json workload add web-1 --id "$WEB" | token_of >"$D/web-1.token"
for i in 1 2; do
    "$M" --output json workload add "api-$i" --id "$API" | token_of >"$D/api-$i.token"
    var="P_A${i}_APP"
    start "app-a$i" "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:${!var}" --name "api-$i" \
        --hang-file "$D/api-$i.hang"
    check "app api-$i is up" wait_port "${!var}" 10
done
sc_start_meshd
check "meshd is up" wait_port "$MESHD_PORT" 10
sc_start_sidecar web-1 "$WEB" --workload web-1
for i in 1 2; do sc_start_sidecar "api-$i" "$API" --workload "api-$i"; done
for n in web-1 api-1 api-2; do check "sidecar $n becomes ready" wait_for 15 sc_ready "$n"; done
check "outbound listener is up" wait_port "$P_WEB_OUT" 10
for i in 1 2; do var="P_A${i}_IN"; check "api-$i inbound is up" wait_port "${!var}" 10; done
both() { sc_count_apps api "$P_WEB_OUT" 6 | grep -q '^api-2='; }
check "both replicas serve" wait_for 5 both

stat() { sc_admin web-1 /stats | awk -v m="$1" '$1 == m {print $2}'; }
# requests N: N requests, one at a time; "status seconds app" per line.
requests() {
    local i
    for i in $(seq 1 "$1"); do
        curl -s -m 20 -H "Host: api" -o "$D/body.json" -w '%{http_code} %{time_total} ' \
            "http://127.0.0.1:$P_WEB_OUT/"
        jq -r '.app // "none"' "$D/body.json" 2>/dev/null || echo none
    done
}

echo "fleet per-try: api-2 hangs; requests retry on api-1 within the per-try timeout"
touch "$D/api-2.hang"
t0=$(stat mesh_sidecar_upstream_per_try_timeouts_total)
requests 20 >"$D/run.txt"
t1=$(stat mesh_sidecar_upstream_per_try_timeouts_total)
summary() { awk '{print $1, $3}' "$1" | sort | uniq -c | tr '\n' ' '; }
check "20 answers ($(wc -l <"$D/run.txt"))" test "$(wc -l <"$D/run.txt")" -eq 20
check "all 20 succeed, from api-1 ($(summary "$D/run.txt"))" \
    test "$(grep -c '^200 [0-9.]* api-1$' "$D/run.txt")" -eq 20
slowest=$(awk '{print $2}' "$D/run.txt" | sort -n | tail -1)
check "each within ~one per-try timeout, far from the 5 s route timeout (slowest ${slowest}s)" \
    awk -v s="$slowest" 'BEGIN { exit !(s < 2.0) }'
hung=$(awk '$2 >= 0.29' "$D/run.txt" | wc -l)
check "some requests waited out the per-try timeout on api-2 first ($hung)" test "$hung" -ge 3
check "the abandoned attempts are counted ($((t1 - t0)) per-try timeouts)" test $((t1 - t0)) -ge 3
check "  ... one per slow request ($((t1 - t0)) vs $hung)" test $((t1 - t0)) -eq "$hung"

echo "fleet per-try: without a per-try timeout the hung replica costs the route timeout"
write_mesh ""
check "apply the route without per_try_timeout" "$M" apply -f "$D/mesh.yaml"
no_per_try() { sc_admin web-1 /config_dump | jq -e '[.. | objects | select(has("per_try_timeout_ms")) | .per_try_timeout_ms] | all(. == 0)' >/dev/null; }
check "web's sidecar has the new route" wait_for 10 no_per_try
requests 4 >"$D/slow.txt"
check "requests landing on api-2 now fail with 504 after the route timeout ($(summary "$D/slow.txt"))" \
    test "$(grep -c '^504 ' "$D/slow.txt")" -ge 1

echo "fleet per-try: stop"
rm -f "$D/api-2.hang"
for n in web-1 api-1 api-2; do
    var="PID_${n//-/_}"
    sc_stop "${!var}"
done
e2e_finish
