#!/usr/bin/env bash
# tests/e2e/test_meshd_xds.sh — meshd's ADS and SDS with real processes on 127.0.0.1:
# a sidecar-like client gets its SVID, secrets and config and ACKs them; a route change
# is pushed to that client only; an identical apply pushes nothing; a NACK is recorded
# and not answered with the same version, and the next good version applies; SDS names
# are authorised; 50 concurrent streams are served.
. "$(dirname "$0")/lib.sh"
e2e_setup
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api
DB=spiffe://example.org/ns/demo/sa/db

# lines LOG: the response lines a client logged so far.
lines() { count_where "$1" 'has("stream")'; }
web_synced() { test "$(synced web-node)" -eq 5; }

ca_init
write_web_api_mesh 2s "$API" "$API"
check_out "config applies" "config version" "$M" apply -f "$D/mesh.yaml"
start_meshd meshd --instance e2e-xds --log-level debug
check "meshd listens" wait_port "$MESHD_PORT" 15
enrol "$WEB" web
enrol "$API" api
WEB_SUBS=(--sub 'cds=*' --sub 'lds=*' --sub 'rds=outbound|http' --sub 'eds=outbound|api' --sub sds=default,ROOTCA)

echo "meshd: ADS and SDS for a sidecar"
start web-ads "$XC" "${S[@]}" --state-dir "$D/web" "${WEB_SUBS[@]}" --node-id web-node --timeout 120s --dump-dir "$D"
start api-ads "$XC" "${S[@]}" --state-dir "$D/api" --sub 'cds=*' --sub 'lds=*' --sub sds=default,ROOTCA --node-id api-node --timeout 120s
check "web gets all five types" wait_for 10 has_types web-ads SDS CDS EDS LDS RDS
check_out "default secret is the client's own SVID (key matches)" '"name":"default","kind":"tls_certificate","certs":1' cat "$D/web-ads.log"
check_out "default secret matches the client's key" '"key_match":true' cat "$D/web-ads.log"
check_out "ROOTCA carries the bundle" '"name":"ROOTCA","kind":"validation_context","certs":1' cat "$D/web-ads.log"
check "no private key is ever served" \
    test "$(count_where web-ads 'any(.secrets[]?; .has_private_key == true)')" -eq 0
check_out "web gets its listeners" '"inbound|15001","outbound|http"' cat "$D/web-ads.log"
check_out "web gets the outbound route" '"resources":["outbound|http"]' cat "$D/web-ads.log"
check_out "responses name the control plane" '"control_plane":"meshd/e2e-xds"' cat "$D/web-ads.log"
check "raw responses were dumped" test "$(ls "$D" | grep -c '^000-.*-LDS.pb$')" -ge 1
check "every type is ACKed (proxy-status: 5 synced)" wait_for 10 web_synced
check_out "proxy-status shows the SVID expiry" '"svid_seconds_left":' "$M" proxy-status --output json
check "api is served too" wait_for 10 has_types api-ads LDS CDS SDS

echo "meshd: pushes go only where something changed"
sleep 0.5
api_before=$(lines api-ads)
cds_before=$(count web-ads CDS)
lds_before=$(count web-ads LDS)
write_web_api_mesh 3s "$API" "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "the route change reaches web (RDS)" wait_count 10 web-ads RDS 2
sleep 1
check "web got only RDS (CDS unchanged)" test "$(count web-ads CDS)" -eq "$cds_before"
check "web got only RDS (LDS unchanged)" test "$(count web-ads LDS)" -eq "$lds_before"
check "api, unaffected, got nothing" test "$(lines api-ads)" -eq "$api_before"
check "web ACKed the new route" wait_for 10 web_synced
last_rds() { last web-ads RDS | jq -r .version; }
v_route=$(last_rds)
"$M" delete route api >/dev/null
check "deleting the route is pushed" wait_count 10 web-ads RDS 3
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "re-adding it is pushed" wait_count 10 web-ads RDS 4
check "versions are content hashes: same route, same version" test "$(last_rds)" = "$v_route"
rds_now=$(count web-ads RDS)
"$M" apply -f "$D/mesh.yaml" >/dev/null
sleep 1.5
check "an identical apply pushes nothing" test "$(count web-ads RDS)" -eq "$rds_now"

echo "meshd: NACK"
start nack "$XC" "${S[@]}" --state-dir "$D/web" "${WEB_SUBS[@]}" --node-id nack-node --nack-type lds --nack-count 1 --timeout 120s
check "the NACK client gets LDS" wait_count 10 nack LDS 1
check_out "it NACKed it" '"type":"LDS"' json_lines nack '.reply == "nack"'
sleep 0.5
check_out "proxy-status records the NACK and its message" "rejected by --nack-type" proxy_node nack-node
sleep 1.5
check "the rejected version is not sent again" test "$(count nack LDS)" -eq 1
write_web_api_mesh 3s "$API, $DB" "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "the next good version is pushed after a NACK" wait_count 10 nack LDS 2
check_out "and ACKed" '"type":"LDS"' json_lines nack '.reply == "ack"'
check "web (which ACKed before) gets the new LDS too" wait_count 10 web-ads LDS $((lds_before + 1))
check "api's listeners did not change: no push" test "$(count api-ads LDS)" -eq 1

echo "meshd: SDS names are authorised"
check_err "another identity's secret is refused" "PERMISSION_DENIED" \
    "$XC" "${S[@]}" --state-dir "$D/web" --sds --sub "sds=default,$API" --timeout 10s
check_out "the refusal names the identity" "$API" \
    even_if_fails "$XC" "${S[@]}" --state-dir "$D/web" --sds --sub "sds=$API" --timeout 10s
sleep 0.3
check_out "the refusal is audited as sds.denied" "sds.denied" "$M" audit --limit 50
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
check "web's stream is still up" node_connected web-node true

e2e_finish
