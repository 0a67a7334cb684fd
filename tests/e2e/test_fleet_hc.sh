#!/usr/bin/env bash
# tests/e2e/test_fleet_hc.sh — active health checks in the caller's sidecar (issue 13):
# three replicas of api share one identity; api sets an HTTP health_check on /healthz.
# The app of api-3 is made to fail its health path only (mesh-testapp
# --health-fail-file): its other paths keep answering 200, so outlier detection never
# sees a failure and only the active check can find it. After detection /clusters shows
# api-3 with /failed_active_hc and 300 requests go to api-1 and api-2 only, none failing;
# once it passes again it gets traffic back. A second part checks that the probes go over
# mTLS as the caller: with web no longer allowed to call api, every host fails its probe
# (the peers answer 403). On the old code the health check was compiled into CDS and
# ignored: api-3 kept a third of the traffic.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup

WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api

echo "fleet hc: setup"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
sc_port P_WEB_IN; sc_port P_WEB_OUT; sc_port P_WEB_APP
for i in 1 2 3; do sc_port "P_A${i}_IN"; sc_port "P_A${i}_APP"; done
write_mesh() {
    cat >"$D/mesh.yaml" <<YAML
services:
  - {name: web, protocol: http, port: $P_WEB_APP}
  - name: api
    protocol: http
    port: 8080
    health_check: {type: http, path: /healthz, interval: 500ms, timeout: 400ms,
                   unhealthy_threshold: 2, healthy_threshold: 2}
workloads:
  - {name: web-1, spiffe_id: "$WEB", service: web, inbound: "127.0.0.1:$P_WEB_IN",
     app: "127.0.0.1:$P_WEB_APP", outbound: "127.0.0.1:$P_WEB_OUT"}
  - {name: api-1, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_A1_IN",
     app: "127.0.0.1:$P_A1_APP"}
  - {name: api-2, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_A2_IN",
     app: "127.0.0.1:$P_A2_APP"}
  - {name: api-3, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_A3_IN",
     app: "127.0.0.1:$P_A3_APP"}
routes:
  - name: api
    rules:
      - match: {prefix: /}
        destinations: [{service: api, weight: 100}]
        timeout: 5s
authorization:
  - {service: api, allow: ["$1"]}
YAML
}
write_mesh "$WEB"
"$M" apply -f "$D/mesh.yaml" >"$D/apply.out" 2>&1
check "apply the mesh" test $? -eq 0
check_fails "apply no longer warns that health_check is not enforced" \
    grep -q "does not enforce" "$D/apply.out"
token_of() { jq -r '.token | select(startswith("mjt_"))'; }
"$M" --output json workload add web-1 --id "$WEB" | token_of >"$D/web-1.token"
for i in 1 2 3; do
    "$M" --output json workload add "api-$i" --id "$API" | token_of >"$D/api-$i.token"
    var="P_A${i}_APP"
    start "app-a$i" "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:${!var}" --name "api-$i" \
        --health-path /healthz --health-fail-file "$D/api-$i.sick"
    check "app api-$i is up" wait_port "${!var}" 10
done
sc_start_meshd
check "meshd is up" wait_port "$MESHD_PORT" 10
sc_start_sidecar web-1 "$WEB" --workload web-1
for i in 1 2 3; do sc_start_sidecar "api-$i" "$API" --workload "api-$i"; done
for n in web-1 api-1 api-2 api-3; do check "sidecar $n becomes ready" wait_for 15 sc_ready "$n"; done
check "outbound listener is up" wait_port "$P_WEB_OUT" 10
for i in 1 2 3; do var="P_A${i}_IN"; check "api-$i inbound is up" wait_port "${!var}" 10; done

A3="127.0.0.1:$P_A3_IN"
flags_of() { sc_admin web-1 /clusters | awk -F'::' -v h="$1" '$1 == "outbound|api" && $2 == h && $3 == "health_flags" {print $4}'; }
probes_of() { sc_admin web-1 /clusters | awk -F'::' -v h="$1" -v k="$2" '$1 == "outbound|api" && $2 == h && $3 == k {print $4}'; }
# statuses N PATH: N requests through web's outbound listener on one connection.
statuses() {
    local i
    for i in $(seq 1 "$1"); do
        printf 'url = "http://127.0.0.1:%s%s"\n' "$P_WEB_OUT" "$2"
    done >"$D/burst.cfg"
    curl -s -m 120 -H "Host: api" -w '\n' -K "$D/burst.cfg" | jq -r '.app // "error"' 2>/dev/null
}

echo "fleet hc: every replica passes its probes and serves"
probed() { [ "$(probes_of "$A3" hc_probes_ok)" -ge 2 ] 2>/dev/null; }
check "web's sidecar probes api-3 ($(probes_of "$A3" hc_probes_ok) ok)" wait_for 10 probed
check_out "api-3 is healthy in /clusters" "healthy" flags_of "$A3"
statuses 30 / >"$D/before.txt"
check "api-3 serves before ($(sort "$D/before.txt" | uniq -c | tr '\n' ' '))" \
    grep -qx api-3 "$D/before.txt"

echo "fleet hc: api-3's app fails its health path"
touch "$D/api-3.sick"
check "api-3's app still answers other paths (the failure is on /healthz only)" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_A3_APP/")" = 200
check "api-3's app answers /healthz with 503" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_A3_APP/healthz")" = 503
marked() { flags_of "$A3" | grep -q /failed_active_hc; }
check "/clusters marks api-3 /failed_active_hc" wait_for 10 marked
check_out "web's sidecar logged it" "active health check: $A3 of cluster 'outbound|api' is now unhealthy" \
    cat "$D/sc-web-1.log"
check "api-1 is not marked ($(flags_of "127.0.0.1:$P_A1_IN"))" test "$(flags_of "127.0.0.1:$P_A1_IN")" = healthy
statuses 300 / >"$D/during.txt"
summary() { sort "$1" | uniq -c | tr '\n' ' '; }
check "300 answers ($(wc -l <"$D/during.txt"))" test "$(wc -l <"$D/during.txt")" -eq 300
check "0 of 300 failed ($(summary "$D/during.txt"))" test "$(grep -c '^error$' "$D/during.txt")" -eq 0
check "api-3 got none of them ($(summary "$D/during.txt"))" test "$(grep -c '^api-3$' "$D/during.txt")" -eq 0
check "api-1 and api-2 shared them ($(summary "$D/during.txt"))" \
    test "$(grep -c '^api-1$' "$D/during.txt")" -ge 100 -a "$(grep -c '^api-2$' "$D/during.txt")" -ge 100
hc_failed() { sc_admin web-1 /stats | awk '$1 == "mesh_sidecar_health_checks_total{result=\"failed\"}" {print $2}'; }
check "/stats counts the failed probes ($(hc_failed))" test "$(hc_failed)" -ge 2
check "/clusters?format=json says failed_active_health_check" bash -c \
    "curl -s 'http://127.0.0.1:$ADMIN_web_1/clusters?format=json' | jq -e '[.cluster_statuses[]
     | select(.name == \"outbound|api\") | .host_statuses[]
     | select(.health_status.failed_active_health_check)] | length == 1'"

echo "fleet hc: api-3 recovers"
rm -f "$D/api-3.sick"
recovered() { [ "$(flags_of "$A3")" = healthy ]; }
check "/clusters lists api-3 healthy again" wait_for 10 recovered
statuses 30 / >"$D/after.txt"
check "api-3 gets traffic again ($(summary "$D/after.txt"))" grep -qx api-3 "$D/after.txt"
check "0 of 30 failed" test "$(grep -c '^error$' "$D/after.txt")" -eq 0

echo "fleet hc: probes go over mTLS as the caller (the peer's authorization applies)"
write_mesh "spiffe://$TD/ns/default/sa/someone-else"
check "apply an authorization that no longer allows web" "$M" apply -f "$D/mesh.yaml"
all_marked() {
    local i var
    for i in 1 2 3; do
        var="P_A${i}_IN"
        flags_of "127.0.0.1:${!var}" | grep -q /failed_active_hc || return 1
    done
}
check "every api host fails its probe (the peers answer 403 to web)" wait_for 15 all_marked

echo "fleet hc: stop"
for n in web-1 api-1 api-2 api-3; do
    var="PID_${n//-/_}"
    sc_stop "${!var}"
done
e2e_finish
