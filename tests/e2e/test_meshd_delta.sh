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
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api
DB=spiffe://example.org/ns/demo/sa/db

# delta_lines LOG: the Delta responses a client logged so far.
delta_lines() { count_where "$1" '.mode == "delta"'; }
web_synced() { test "$(synced web-delta)" -eq 5; }
nack_lds_synced() { proxy_node nack-delta | json_is '.types.LDS.synced'; }

ca_init
write_web_api_mesh 2s "$API"
check_out "config applies" "config version" "$M" apply -f "$D/mesh.yaml"
start_meshd meshd --instance e2e-delta --log-level debug
check "meshd listens" wait_port "$MESHD_PORT" 15
enrol "$WEB" web
enrol "$API" api
WEB_SUBS=(--sub 'cds=*' --sub 'lds=*' --sub 'rds=outbound|http' --sub 'eds=outbound|api' --sub sds=default,ROOTCA)
mkdir -p "$D/dump/api"

echo "meshd delta: first responses and ACKs"
start web "$XC" "${S[@]}" --delta --state-dir "$D/web" "${WEB_SUBS[@]}" --node-id web-delta \
    --delta-state "$D/web.state" --dump-dir "$D/dump" --timeout 120s
WEB_PID=$LAST_PID
check "web gets all five types over DeltaAggregatedResources" wait_for 10 has_types web SDS CDS EDS LDS RDS
check_out "listeners come as Resources with names and versions" \
    '"resources":["inbound|15001","outbound|http"],"versions":{"inbound|15001":"' last web LDS
check_out "clusters: local, api and web" '"resources":["inbound|web|local","outbound|api","outbound|web"]' last web CDS
check_out "the route by name" '"resources":["outbound|http"]' last web RDS
check_out "secrets: the client's own SVID (key matches) and the bundle" '"key_match":true' last web SDS
check_out "ROOTCA over delta too" '"name":"ROOTCA","kind":"validation_context"' last web SDS
check "nothing removed at first" test "$(count_where web '.removed == []')" -eq "$(delta_lines web)"
check "every response passes the client's checks and is ACKed" \
    test "$(count_where web '.reply == "ack"')" -eq "$(delta_lines web)"
check_out "responses name the control plane" '"control_plane":"meshd/e2e-delta"' last web LDS
check "proxy status: five types ACKed" wait_for 10 web_synced
check "the held versions are saved for a reconnect" test "$(wc -l <"$D/web.state")" -ge 8

start api "$XC" "${S[@]}" --delta --state-dir "$D/api" --sub 'cds=*' --sub 'lds=*' --sub sds=default \
    --node-id api-delta --dump-dir "$D/dump/api" --timeout 120s
check "api gets its listener and cluster" wait_count 10 api LDS 1
check_out "api's inbound listener" '"resources":["inbound|15002"]' last api LDS

echo "meshd delta: only what changed is pushed"
sleep 0.5
for t in SDS CDS EDS LDS RDS; do eval "before_$t=\$(count web $t)"; done
write_web_api_mesh 3s "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "the route change reaches web" wait_count 10 web RDS $((before_RDS + 1))
sleep 1
check "no other type was pushed" test "$(count web CDS)$(count web EDS)$(count web LDS)$(count web SDS)" = \
    "$before_CDS$before_EDS$before_LDS$before_SDS"
check_out "the RDS response holds the one changed resource" '"count":1,"resources":["outbound|http"]' last web RDS
api_lines=$(delta_lines api)
write_web_api_mesh 3s "$API, $DB"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "a policy change for web pushes LDS" wait_count 10 web LDS $((before_LDS + 1))
check_out "with only the inbound listener, not outbound|http" '"count":1,"resources":["inbound|15001"]' last web LDS
sleep 1
check "api, unaffected, got nothing" test "$(delta_lines api)" -eq "$api_lines"
check "web ACKed the new versions" wait_for 10 web_synced

echo "meshd delta: removed_resources"
for t in CDS EDS LDS; do eval "before_$t=\$(count web $t)"; eval "api_$t=\$(count api $t)"; done
"$M" delete workload api-1 >/dev/null
check "the deleted workload's listener is removed" wait_count 10 api LDS $((api_LDS + 1))
check_out "LDS names it in removed_resources" '"count":0,"resources":[],"versions":{},"removed":["inbound|15002"]' last api LDS
check "and its local cluster" wait_count 10 api CDS $((api_CDS + 1))
check_out "CDS removed_resources" '"removed":["inbound|api|local"]' last api CDS
check_out "the client no longer holds any listener" '"held":0' last api LDS
check "web hears of api's empty endpoints" wait_count 10 web EDS $((before_EDS + 1))
check_out "as an update of outbound|api, not a removal" '"resources":["outbound|api"]' last web EDS
check "and of api's cluster (no SAN left) alone" wait_count 10 web CDS $((before_CDS + 1))
check_out "CDS sends only outbound|api" '"count":1,"resources":["outbound|api"]' last web CDS
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "re-adding the workload sends the listener again" wait_count 10 api LDS $((api_LDS + 2))
check_out "as a resource" '"resources":["inbound|15002"]' last api LDS
check "web is in sync again" wait_for 10 web_synced

echo "meshd delta: reconnect with initial_resource_versions"
kill -TERM "$WEB_PID"
wait "$WEB_PID" 2>/dev/null
sleep 0.3
# reconnect NAME: one more run of web's client with its saved state, 5 responses.
reconnect() {
    "$XC" "${S[@]}" --delta --state-dir "$D/web" "${WEB_SUBS[@]}" --node-id web-delta \
        --delta-state "$D/web.state" --exit-after 5 --timeout 15s >"$D/$1.log" 2>&1
}
# empty LOG: how many responses in LOG hold nothing at all.
empty() { count_where "$1" '.count == 0 and .resources == [] and .versions == {} and .removed == []'; }
reconnect re1
check "each type answers the reconnect once" test "$(delta_lines re1)" -eq 5
check "nothing is resent" test "$(empty re1)" -eq 5
write_web_api_mesh 4s "$API, $DB"
"$M" apply -f "$D/mesh.yaml" >/dev/null
sleep 1
reconnect re2
check_out "a change made while away: only that resource" '"count":1,"resources":["outbound|http"]' last re2 RDS
check "and nothing else" test "$(empty re2)" -eq 4
kill -TERM "$MESHD_PID"
wait "$MESHD_PID" 2>/dev/null
start_meshd meshd2 --instance e2e-delta --log-level debug
check "meshd restarts" wait_port "$MESHD_PORT" 15
reconnect re3
check "a restarted meshd resends nothing either (versions are content hashes)" \
    test "$(empty re3)" -eq 5
check_out "the state file is a plain list" "$(printf 'RDS\toutbound|http\t')" cat "$D/web.state"
printf 'LDS\tonly-two-fields\n' >"$D/bad.state"
check_err "a malformed --delta-state is refused with its line" "bad.state:1" \
    "$XC" "${S[@]}" --delta --state-dir "$D/web" --delta-state "$D/bad.state" --timeout 5s
check_err "--delta-state needs --delta" "needs --delta" \
    "$XC" "${S[@]}" --state-dir "$D/web" --delta-state "$D/web.state" --timeout 5s

echo "meshd delta: NACK"
start nack "$XC" "${S[@]}" --delta --state-dir "$D/web" "${WEB_SUBS[@]}" --node-id nack-delta \
    --nack-type lds --nack-count 1 --timeout 120s
check "the NACK client gets LDS" wait_count 10 nack LDS 1
check_out "and NACKs it" '"reply":"nack"' last nack LDS
sleep 0.5
check_out "proxy status records the NACK and its message" "rejected by --nack-type" proxy_node nack-delta
sleep 1.5
check "the rejected versions are not sent again" test "$(count nack LDS)" -eq 1
write_web_api_mesh 4s "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "the next version is pushed after the NACK" wait_count 10 nack LDS 2
check_out "holding only the resource that changed" '"count":1,"resources":["inbound|15001"]' last nack LDS
check_out "and is ACKed" '"reply":"ack"' last nack LDS
check "proxy status: LDS synced after the NACK" wait_for 10 nack_lds_synced

echo "meshd delta: DeltaSecrets"
check_out "own secrets by Istio names" '"resources":["ROOTCA","default"]' \
    "$XC" "${S[@]}" --delta --sds --state-dir "$D/web" --sub sds=default,ROOTCA --exit-after 1 --timeout 10s
check_out "and by SPIRE names" "\"resources\":[\"spiffe://example.org\",\"$WEB\"]" \
    "$XC" "${S[@]}" --delta --sds --state-dir "$D/web" --sub "sds=$WEB,spiffe://example.org" --exit-after 1 --timeout 10s
check_err "another identity's secret is refused" "PERMISSION_DENIED" \
    "$XC" "${S[@]}" --delta --sds --state-dir "$D/web" --sub "sds=default,$API" --timeout 10s
check_out "the refusal names the identity" "$API" \
    even_if_fails "$XC" "${S[@]}" --delta --sds --state-dir "$D/web" --sub "sds=$API" --timeout 10s
sleep 0.3
check_out "and is audited as sds.denied" "sds.denied" "$M" audit --limit 20
check_err "over DeltaAggregatedResources too" "PERMISSION_DENIED" \
    "$XC" "${S[@]}" --delta --state-dir "$D/web" --sub "sds=$API" --timeout 10s
check_err "a Delta stream without a client certificate is refused" "UNAUTHENTICATED" \
    "$XC" "${S[@]}" --delta --anonymous --timeout 10s
check_err "garbage on a Delta stream gets INVALID_ARGUMENT" "INVALID_ARGUMENT" \
    "$XC" "${S[@]}" --state-dir "$D/web" --timeout 10s --raw-size 64 \
    --method /envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources
check "meshd is still running" kill -0 "$MESHD_PID"

echo "meshd delta: responses decode with the official protos"
if ! have_official_protos; then
    missing_dep "node and tests/conformance/node_modules are installed (tools/deps.sh)" \
        "node or tests/conformance/node_modules missing (run tools/deps.sh)"
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
    check "removed_resources decode too" grep -q '"removed_resources"' "$D"/dump/api/*.json
fi

e2e_finish
