#!/usr/bin/env bash
# tests/e2e/test_meshd_xds.sh — meshd's ADS and SDS with real processes on 127.0.0.1:
# a sidecar-like client gets its SVID, secrets and config and ACKs them; a route change
# is pushed to that client only; an identical apply pushes nothing; a NACK is recorded
# and not answered with the same version, and the next good version applies; SDS names
# are authorised; 50 concurrent streams are served.
. "$(dirname "$0")/lib.sh"
e2e_setup
M="$MESH_BIN/meshctl"
XC="$MESH_BIN/mesh-xdsclient"
D="$E2E_DIR"
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api

add() { "$M" workload add "$1" --output json | sed -nE 's/.*"token":"([^"]+)".*/\1/p'; }
# count LOG TYPE: responses of TYPE printed by a client so far.
count() { grep -c "\"type\":\"$2\"" "$D/$1.log" 2>/dev/null || true; }
lines() { grep -c '"stream":' "$D/$1.log" 2>/dev/null || true; }
at_least() { test "$(count "$1" "$2")" -ge "$3"; }
# node_json NODE: that node's object from proxy-status --output json (one line).
node_json() { "$M" proxy-status --output json | sed 's/},{"node_id"/}\n{"node_id"/g' | grep -F "\"node_id\":\"$1\""; }
synced() { node_json "$1" | grep -o '"synced":true' | wc -l; }

write_config() { # write_config ROUTE_TIMEOUT EXTRA_ALLOW
    cat >"$D/mesh.yaml" <<EOF
services:
  - {name: web, protocol: http, port: 18080}
  - {name: api, protocol: http, port: 18081}
  - {name: db, protocol: tcp, port: 18432}
workloads:
  - name: web-1
    spiffe_id: $WEB
    service: web
    inbound: 127.0.0.1:15001
    app: 127.0.0.1:18080
    outbound: 127.0.0.1:15101
  - name: api-1
    spiffe_id: $API
    service: api
    inbound: 127.0.0.1:15002
    app: 127.0.0.1:18081
  - name: db-1
    spiffe_id: spiffe://example.org/ns/demo/sa/db
    service: db
    inbound: 127.0.0.1:15003
    app: 127.0.0.1:18432
routes:
  - name: api
    rules:
      - match: {prefix: /}
        destinations: [{service: api, weight: 100}]
        timeout: $1
authorization:
  - {service: api, allow: [$WEB]}
  - {service: web, allow: [$2]}
  - {service: db, allow: [$API]}
EOF
}

"$M" ca init --trust-domain example.org >/dev/null
"$M" ca bundle >"$D/bundle.pem"
write_config 2s "$API"
check_out "config applies" "config version" "$M" apply -f "$D/mesh.yaml"
PORT=$(free_port)
start meshd "$MESH_BIN/meshd" --db "$MESHD_DB" --listen 127.0.0.1:"$PORT" --instance e2e-xds --log-level debug
MESHD_PID=$LAST_PID
check "meshd listens" wait_port "$PORT" 15
S=(--server 127.0.0.1:"$PORT" --bundle "$D/bundle.pem")
"$XC" "${S[@]}" --token "$(add "$WEB")" --id "$WEB" --state-dir "$D/web" --no-stream >/dev/null
"$XC" "${S[@]}" --token "$(add "$API")" --id "$API" --state-dir "$D/api" --no-stream >/dev/null
WEB_SUBS=(--sub 'cds=*' --sub 'lds=*' --sub 'rds=outbound|http' --sub 'eds=outbound|api' --sub sds=default,ROOTCA)

echo "meshd: ADS and SDS for a sidecar"
start web-ads "$XC" "${S[@]}" --state-dir "$D/web" "${WEB_SUBS[@]}" --node-id web-node --timeout 120s --dump-dir "$D"
start api-ads "$XC" "${S[@]}" --state-dir "$D/api" --sub 'cds=*' --sub 'lds=*' --sub sds=default,ROOTCA --node-id api-node --timeout 120s
check "web gets all five types" wait_for 10 sh -c "$(declare -f count at_least); D='$D'; at_least web-ads SDS 1 && at_least web-ads CDS 1 && at_least web-ads EDS 1 && at_least web-ads LDS 1 && at_least web-ads RDS 1"
check_out "default secret is the client's own SVID (key matches)" '"name":"default","kind":"tls_certificate","certs":1' cat "$D/web-ads.log"
check_out "default secret matches the client's key" '"key_match":true' cat "$D/web-ads.log"
check_out "ROOTCA carries the bundle" '"name":"ROOTCA","kind":"validation_context","certs":1' cat "$D/web-ads.log"
check "no private key is ever served" test "$(grep -c '"has_private_key":true' "$D/web-ads.log")" -eq 0
check_out "web gets its listeners" '"inbound|15001","outbound|http"' cat "$D/web-ads.log"
check_out "web gets the outbound route" '"resources":["outbound|http"]' cat "$D/web-ads.log"
check_out "responses name the control plane" '"control_plane":"meshd/e2e-xds"' cat "$D/web-ads.log"
check "raw responses were dumped" test "$(ls "$D" | grep -c '^000-.*-LDS.pb$')" -ge 1
check "every type is ACKed (proxy-status: 5 synced)" wait_for 10 sh -c "$(declare -f node_json synced); M='$M'; test \$(synced web-node) -eq 5"
check_out "proxy-status shows the SVID expiry" '"svid_seconds_left":' "$M" proxy-status --output json
check "api is served too" wait_for 10 sh -c "$(declare -f count at_least); D='$D'; at_least api-ads LDS 1 && at_least api-ads CDS 1 && at_least api-ads SDS 1"

echo "meshd: pushes go only where something changed"
sleep 0.5
api_before=$(lines api-ads)
cds_before=$(count web-ads CDS)
lds_before=$(count web-ads LDS)
write_config 3s "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "the route change reaches web (RDS)" wait_for 10 sh -c "$(declare -f count at_least); D='$D'; at_least web-ads RDS 2"
sleep 1
check "web got only RDS (CDS unchanged)" test "$(count web-ads CDS)" -eq "$cds_before"
check "web got only RDS (LDS unchanged)" test "$(count web-ads LDS)" -eq "$lds_before"
check "api, unaffected, got nothing" test "$(lines api-ads)" -eq "$api_before"
check "web ACKed the new route" wait_for 10 sh -c "$(declare -f node_json synced); M='$M'; test \$(synced web-node) -eq 5"
last_rds() { grep '"type":"RDS"' "$D/web-ads.log" | tail -n 1 | sed -nE 's/.*"version":"([^"]+)".*/\1/p'; }
v_route=$(last_rds)
"$M" delete route api >/dev/null
check "deleting the route is pushed" wait_for 10 sh -c "$(declare -f count at_least); D='$D'; at_least web-ads RDS 3"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "re-adding it is pushed" wait_for 10 sh -c "$(declare -f count at_least); D='$D'; at_least web-ads RDS 4"
check "versions are content hashes: same route, same version" test "$(last_rds)" = "$v_route"
rds_now=$(count web-ads RDS)
"$M" apply -f "$D/mesh.yaml" >/dev/null
sleep 1.5
check "an identical apply pushes nothing" test "$(count web-ads RDS)" -eq "$rds_now"

echo "meshd: NACK"
start nack "$XC" "${S[@]}" --state-dir "$D/web" "${WEB_SUBS[@]}" --node-id nack-node --nack-type lds --nack-count 1 --timeout 120s
check "the NACK client gets LDS" wait_for 10 sh -c "$(declare -f count at_least); D='$D'; at_least nack LDS 1"
check_out "it NACKed it" '"type":"LDS"' grep '"reply":"nack"' "$D/nack.log"
check_out "proxy-status records the NACK and its message" "rejected by --nack-type" \
    sh -c "sleep 0.5; $(declare -f node_json); M='$M'; node_json nack-node"
sleep 1.5
check "the rejected version is not sent again" test "$(count nack LDS)" -eq 1
write_config 3s "$API, spiffe://example.org/ns/demo/sa/db"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "the next good version is pushed after a NACK" wait_for 10 sh -c "$(declare -f count at_least); D='$D'; at_least nack LDS 2"
check_out "and ACKed" '"type":"LDS"' sh -c "grep '\"reply\":\"ack\"' '$D/nack.log'"
check "web (which ACKed before) gets the new LDS too" wait_for 10 sh -c "$(declare -f count at_least); D='$D'; at_least web-ads LDS $((lds_before + 1))"
check "api's listeners did not change: no push" test "$(count api-ads LDS)" -eq 1

echo "meshd: SDS names are authorised"
check_err "another identity's secret is refused" "PERMISSION_DENIED" \
    "$XC" "${S[@]}" --state-dir "$D/web" --sds --sub "sds=default,$API" --timeout 10s
check_out "the refusal names the identity" "$API" sh -c "'$XC' --server 127.0.0.1:$PORT --bundle '$D/bundle.pem' --state-dir '$D/web' --sds --sub 'sds=$API' --timeout 10s; true"
check_out "the refusal is audited as sds.denied" "sds.denied" sh -c "sleep 0.3; '$M' audit --limit 50"
check_err "'ALL' is refused" "PERMISSION_DENIED" "$XC" "${S[@]}" --state-dir "$D/web" --sds --sub "sds=ALL" --timeout 10s
check_out "SPIRE names: own SPIFFE ID and trust domain" "\"resources\":[\"spiffe://example.org\",\"$WEB\"]" \
    "$XC" "${S[@]}" --state-dir "$D/web" --sds --sub "sds=$WEB,spiffe://example.org" --exit-after 1 --timeout 10s
check_out "FetchSecrets returns default" '"resources":["default"]' \
    "$XC" "${S[@]}" --state-dir "$D/web" --fetch --sub sds=default --timeout 10s
check_err "FetchSecrets refuses another identity" "PERMISSION_DENIED" \
    "$XC" "${S[@]}" --state-dir "$D/web" --fetch --sub "sds=$API" --timeout 10s

echo "meshd: 50 concurrent streams"
out=$("$XC" "${S[@]}" --state-dir "$D/api" --streams 50 --sub 'cds=*' --sub 'lds=*' --sub sds=default \
    --exit-after 150 --summary --timeout 60s 2>&1)
check_out "50 streams x 3 types answered" '"responses":150' echo "$out"
check "meshd is still running" kill -0 "$MESHD_PID"
check "web's stream is still up" sh -c "'$M' proxy-status --output json | grep -q '\"node_id\":\"web-node\",[^}]*\"connected\":true'"

e2e_finish
