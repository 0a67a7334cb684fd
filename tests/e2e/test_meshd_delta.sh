#!/usr/bin/env bash
# tests/e2e/test_meshd_delta.sh — Incremental (Delta) xDS against a real meshd on 127.0.0.1:
# the first DeltaAggregatedResources response per type and its ACK; a route change pushes only
# the changed resource, a policy change only the listener it touches; deleting a workload
# yields removed_resources; a reconnect with initial_resource_versions (also to a restarted
# meshd) gets nothing resent; a NACK is recorded and the rejected versions are not sent again;
# DeltaSecrets serves own secrets and refuses another identity's; every response decodes with
# the official Envoy protos.
. "$(dirname "$0")/lib.sh"
e2e_setup
M="$MESH_BIN/meshctl"
XC="$MESH_BIN/mesh-xdsclient"
D="$E2E_DIR"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CONF="$REPO/tests/conformance"
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api

add() { "$M" workload add "$1" --output json | sed -nE 's/.*"token":"([^"]+)".*/\1/p'; }
# count LOG TYPE: responses of TYPE a client printed so far.
count() { grep -c "\"type\":\"$2\"" "$D/$1.log" 2>/dev/null || true; }
at_least() { test "$(count "$1" "$2")" -ge "$3"; }
# last LOG TYPE: the last response line of TYPE.
last() { grep "\"type\":\"$2\"" "$D/$1.log" | tail -n 1; }
# node_json NODE: that node's object from proxy-status --output json (one line).
node_json() { "$M" proxy-status --output json | sed 's/},{"node_id"/}\n{"node_id"/g' | grep -F "\"node_id\":\"$1\""; }
synced() { node_json "$1" | grep -o '"synced":true' | wc -l; }
waitc() { # waitc SECONDS LOG TYPE N: until LOG has N responses of TYPE
    wait_for "$1" sh -c "$(declare -f count at_least); D='$D'; at_least '$2' '$3' '$4'"
}

write_config() { # write_config ROUTE_TIMEOUT WEB_ALLOW
    cat >"$D/mesh.yaml" <<EOF
services:
  - {name: web, protocol: http, port: 18080}
  - {name: api, protocol: http, port: 18081}
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
routes:
  - name: api
    rules:
      - match: {prefix: /}
        destinations: [{service: api, weight: 100}]
        timeout: $1
authorization:
  - {service: api, allow: [$WEB]}
  - {service: web, allow: [$2]}
EOF
}

"$M" ca init --trust-domain example.org >/dev/null
"$M" ca bundle >"$D/bundle.pem"
write_config 2s "$API"
check_out "config applies" "config version" "$M" apply -f "$D/mesh.yaml"
PORT=$(free_port)
start meshd "$MESH_BIN/meshd" --db "$MESHD_DB" --listen 127.0.0.1:"$PORT" --instance e2e-delta --log-level debug
MESHD_PID=$LAST_PID
check "meshd listens" wait_port "$PORT" 15
S=(--server 127.0.0.1:"$PORT" --bundle "$D/bundle.pem")
"$XC" "${S[@]}" --token "$(add "$WEB")" --id "$WEB" --state-dir "$D/web" --no-stream >/dev/null
"$XC" "${S[@]}" --token "$(add "$API")" --id "$API" --state-dir "$D/api" --no-stream >/dev/null
WEB_SUBS=(--sub 'cds=*' --sub 'lds=*' --sub 'rds=outbound|http' --sub 'eds=outbound|api' --sub sds=default,ROOTCA)
mkdir -p "$D/dump/api"

echo "meshd delta: first responses and ACKs"
start web "$XC" "${S[@]}" --delta --state-dir "$D/web" "${WEB_SUBS[@]}" --node-id web-delta \
    --delta-state "$D/web.state" --dump-dir "$D/dump" --timeout 120s
WEB_PID=$LAST_PID
check "web gets all five types over DeltaAggregatedResources" wait_for 10 sh -c \
    "$(declare -f count at_least); D='$D'; for t in SDS CDS EDS LDS RDS; do at_least web \$t 1 || exit 1; done"
check_out "listeners come as Resources with names and versions" \
    '"resources":["inbound|15001","outbound|http"],"versions":{"inbound|15001":"' last web LDS
check_out "clusters: local, api and web" '"resources":["inbound|web|local","outbound|api","outbound|web"]' last web CDS
check_out "the route by name" '"resources":["outbound|http"]' last web RDS
check_out "secrets: the client's own SVID (key matches) and the bundle" '"key_match":true' last web SDS
check_out "ROOTCA over delta too" '"name":"ROOTCA","kind":"validation_context"' last web SDS
check "nothing removed at first" test "$(grep -c '"removed":\[\]' "$D/web.log")" -eq "$(grep -c '"mode":"delta"' "$D/web.log")"
check "every response passes the client's checks and is ACKed" \
    test "$(grep -c '"reply":"ack"' "$D/web.log")" -eq "$(grep -c '"mode":"delta"' "$D/web.log")"
check_out "responses name the control plane" '"control_plane":"meshd/e2e-delta"' last web LDS
check "proxy status: five types ACKed" wait_for 10 sh -c "$(declare -f node_json synced); M='$M'; test \$(synced web-delta) -eq 5"
check "the held versions are saved for a reconnect" test "$(wc -l <"$D/web.state")" -ge 8

start api "$XC" "${S[@]}" --delta --state-dir "$D/api" --sub 'cds=*' --sub 'lds=*' --sub sds=default \
    --node-id api-delta --dump-dir "$D/dump/api" --timeout 120s
check "api gets its listener and cluster" waitc 10 api LDS 1
check_out "api's inbound listener" '"resources":["inbound|15002"]' last api LDS

echo "meshd delta: only what changed is pushed"
sleep 0.5
for t in SDS CDS EDS LDS RDS; do eval "before_$t=\$(count web $t)"; done
write_config 3s "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "the route change reaches web" waitc 10 web RDS $((before_RDS + 1))
sleep 1
check "no other type was pushed" test "$(count web CDS)$(count web EDS)$(count web LDS)$(count web SDS)" = \
    "$before_CDS$before_EDS$before_LDS$before_SDS"
check_out "the RDS response holds the one changed resource" '"count":1,"resources":["outbound|http"]' last web RDS
api_lines=$(grep -c '"mode":"delta"' "$D/api.log")
write_config 3s "$API, spiffe://example.org/ns/demo/sa/db"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "a policy change for web pushes LDS" waitc 10 web LDS $((before_LDS + 1))
check_out "with only the inbound listener, not outbound|http" '"count":1,"resources":["inbound|15001"]' last web LDS
sleep 1
check "api, unaffected, got nothing" test "$(grep -c '"mode":"delta"' "$D/api.log")" -eq "$api_lines"
check "web ACKed the new versions" wait_for 10 sh -c "$(declare -f node_json synced); M='$M'; test \$(synced web-delta) -eq 5"

echo "meshd delta: removed_resources"
for t in CDS EDS LDS; do eval "before_$t=\$(count web $t)"; eval "api_$t=\$(count api $t)"; done
"$M" delete workload api-1 >/dev/null
check "the deleted workload's listener is removed" waitc 10 api LDS $((api_LDS + 1))
check_out "LDS names it in removed_resources" '"count":0,"resources":[],"versions":{},"removed":["inbound|15002"]' last api LDS
check "and its local cluster" waitc 10 api CDS $((api_CDS + 1))
check_out "CDS removed_resources" '"removed":["inbound|api|local"]' last api CDS
check_out "the client no longer holds any listener" '"held":0' last api LDS
check "web hears of api's empty endpoints" waitc 10 web EDS $((before_EDS + 1))
check_out "as an update of outbound|api, not a removal" '"resources":["outbound|api"]' last web EDS
check "and of api's cluster (no SAN left) alone" waitc 10 web CDS $((before_CDS + 1))
check_out "CDS sends only outbound|api" '"count":1,"resources":["outbound|api"]' last web CDS
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "re-adding the workload sends the listener again" waitc 10 api LDS $((api_LDS + 2))
check_out "as a resource" '"resources":["inbound|15002"]' last api LDS
check "web is in sync again" wait_for 10 sh -c "$(declare -f node_json synced); M='$M'; test \$(synced web-delta) -eq 5"

echo "meshd delta: reconnect with initial_resource_versions"
kill -TERM "$WEB_PID"
wait "$WEB_PID" 2>/dev/null
sleep 0.3
# reconnect NAME: one more run of web's client with its saved state, 5 responses.
reconnect() {
    "$XC" "${S[@]}" --delta --state-dir "$D/web" "${WEB_SUBS[@]}" --node-id web-delta \
        --delta-state "$D/web.state" --exit-after 5 --timeout 15s >"$D/$1.log" 2>&1
}
empty='"count":0,"resources":\[\],"versions":{},"removed":\[\]'
reconnect re1
check "each type answers the reconnect once" test "$(grep -c '"mode":"delta"' "$D/re1.log")" -eq 5
check "nothing is resent" test "$(grep -c "$empty" "$D/re1.log")" -eq 5
write_config 4s "$API, spiffe://example.org/ns/demo/sa/db"
"$M" apply -f "$D/mesh.yaml" >/dev/null
sleep 1
reconnect re2
check_out "a change made while away: only that resource" '"count":1,"resources":["outbound|http"]' last re2 RDS
check "and nothing else" test "$(grep -c "$empty" "$D/re2.log")" -eq 4
kill -TERM "$MESHD_PID"
wait "$MESHD_PID" 2>/dev/null
start meshd2 "$MESH_BIN/meshd" --db "$MESHD_DB" --listen 127.0.0.1:"$PORT" --instance e2e-delta --log-level debug
MESHD_PID=$LAST_PID
check "meshd restarts" wait_port "$PORT" 15
reconnect re3
check "a restarted meshd resends nothing either (versions are content hashes)" \
    test "$(grep -c "$empty" "$D/re3.log")" -eq 5
check_out "the state file is a plain list" "$(printf 'RDS\toutbound|http\t')" cat "$D/web.state"
printf 'LDS\tonly-two-fields\n' >"$D/bad.state"
check_err "a malformed --delta-state is refused with its line" "bad.state:1" \
    "$XC" "${S[@]}" --delta --state-dir "$D/web" --delta-state "$D/bad.state" --timeout 5s
check_err "--delta-state needs --delta" "needs --delta" \
    "$XC" "${S[@]}" --state-dir "$D/web" --delta-state "$D/web.state" --timeout 5s

echo "meshd delta: NACK"
start nack "$XC" "${S[@]}" --delta --state-dir "$D/web" "${WEB_SUBS[@]}" --node-id nack-delta \
    --nack-type lds --nack-count 1 --timeout 120s
check "the NACK client gets LDS" waitc 10 nack LDS 1
check_out "and NACKs it" '"reply":"nack"' last nack LDS
check_out "proxy status records the NACK and its message" "rejected by --nack-type" \
    sh -c "sleep 0.5; $(declare -f node_json); M='$M'; node_json nack-delta"
sleep 1.5
check "the rejected versions are not sent again" test "$(count nack LDS)" -eq 1
write_config 4s "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "the next version is pushed after the NACK" waitc 10 nack LDS 2
check_out "holding only the resource that changed" '"count":1,"resources":["inbound|15001"]' last nack LDS
check_out "and is ACKed" '"reply":"ack"' last nack LDS
check "proxy status: LDS synced after the NACK" wait_for 10 sh -c \
    "$(declare -f node_json); M='$M'; node_json nack-delta | grep -q '\"LDS\":{[^}]*\"synced\":true'"

echo "meshd delta: DeltaSecrets"
check_out "own secrets by Istio names" '"resources":["ROOTCA","default"]' \
    "$XC" "${S[@]}" --delta --sds --state-dir "$D/web" --sub sds=default,ROOTCA --exit-after 1 --timeout 10s
check_out "and by SPIRE names" "\"resources\":[\"spiffe://example.org\",\"$WEB\"]" \
    "$XC" "${S[@]}" --delta --sds --state-dir "$D/web" --sub "sds=$WEB,spiffe://example.org" --exit-after 1 --timeout 10s
check_err "another identity's secret is refused" "PERMISSION_DENIED" \
    "$XC" "${S[@]}" --delta --sds --state-dir "$D/web" --sub "sds=default,$API" --timeout 10s
check_out "the refusal names the identity" "$API" \
    sh -c "'$XC' --server 127.0.0.1:$PORT --bundle '$D/bundle.pem' --delta --sds --state-dir '$D/web' --sub 'sds=$API' --timeout 10s; true"
check_out "and is audited as sds.denied" "sds.denied" sh -c "sleep 0.3; '$M' audit --limit 20"
check_err "over DeltaAggregatedResources too" "PERMISSION_DENIED" \
    "$XC" "${S[@]}" --delta --state-dir "$D/web" --sub "sds=$API" --timeout 10s
check_err "a Delta stream without a client certificate is refused" "UNAUTHENTICATED" \
    "$XC" "${S[@]}" --delta --anonymous --timeout 10s
check_err "garbage on a Delta stream gets INVALID_ARGUMENT" "INVALID_ARGUMENT" \
    "$XC" "${S[@]}" --state-dir "$D/web" --timeout 10s --raw-size 64 \
    --method /envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources
check "meshd is still running" kill -0 "$MESHD_PID"

echo "meshd delta: responses decode with the official protos"
if ! command -v node >/dev/null 2>&1 || [ ! -d "$CONF/node_modules/@grpc/grpc-js-xds" ]; then
    if [ "${CI:-}" = true ]; then
        fail "node and tests/conformance/node_modules are installed (tools/deps.sh)"
    else
        echo "  skip: node or tests/conformance/node_modules missing (run tools/deps.sh)"
    fi
else
    n=0
    bad=""
    for f in "$D"/dump/*.pb "$D"/dump/api/*.pb; do
        n=$((n + 1))
        node "$CONF/decode.js" --strict-unknown --validate envoy.service.discovery.v3.DeltaDiscoveryResponse \
            "$f" >"$f.json" 2>"$f.err" || bad="$bad $(basename "$f")"
    done
    check "$n dumped DeltaDiscoveryResponses decode strictly and pass PGV rules" test -z "$bad" -a "$n" -ge 10
    rds=$(ls "$D"/dump/*-RDS.pb | tail -n 1)
    check_out "a Resource carries name, version and the unpacked RouteConfiguration" \
        '"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"' cat "$rds.json"
    check_out "system_version_info is set" '"system_version_info": "' cat "$rds.json"
    check "removed_resources decode too" sh -c "grep -l '\"removed_resources\"' '$D'/dump/api/*.json | grep -q ."
fi

e2e_finish
