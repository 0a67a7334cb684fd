#!/usr/bin/env bash
# tests/e2e/test_meshd_sotw_resume.sh — State-of-the-World reconnects against a real meshd on
# 127.0.0.1 (issue 15): a client whose first request per type carries the version_info it
# holds (Envoy's reconnect) gets nothing resent for the types it already has, is shown
# synced in proxy-status all the same, and gets exactly the types that changed while it was
# away; a restarted meshd resends nothing either (versions are content hashes); versions it
# does not hold, or an empty state, are answered in full.
. "$(dirname "$0")/lib.sh"
e2e_setup
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api
SUBS=(--sub 'cds=*' --sub 'lds=*' --sub 'rds=outbound|http' --sub 'eds=outbound|api' --sub sds=default,ROOTCA)

metric() {
    curl -s -m 3 "http://127.0.0.1:$P_METRICS/metrics" |
        awk -v s="$1" 'index($0, s " ") == 1 { print $2 }'
}
resumed() {
    local t sum=0 v
    for t in sds cds eds lds rds; do
        v=$(metric "mesh_meshd_xds_resumed_total{type=\"$t\"}")
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
resumed_ge() { test "$(resumed)" -ge "$1"; }
responses() { count_where "$1" 'has("type")'; }
web_synced() { test "$(synced web-sotw)" -eq 5; }
# client NAME [ARGS...]: web's SotW client with its saved versions, in the background.
client() {
    local name=$1
    shift
    start "$name" "$XC" "${S[@]}" --state-dir "$D/web" "${SUBS[@]}" --node-id web-sotw \
        --sotw-state "$D/web.versions" --timeout 60s "$@"
    CLIENT_PID=$LAST_PID
}
stop_client() { kill -TERM "$CLIENT_PID" 2>/dev/null; wait "$CLIENT_PID" 2>/dev/null; sleep 0.3; }

ca_init
write_web_api_mesh 2s "$API"
check_out "config applies" "config version" "$M" apply -f "$D/mesh.yaml"
P_METRICS=$(free_port)
start_meshd meshd --instance e2e-resume --log-level debug --metrics-listen 127.0.0.1:"$P_METRICS"
check "meshd listens" wait_port "$MESHD_PORT" 15
enrol "$WEB" web

echo "meshd sotw resume: first connection gets everything"
client first
check "all five types arrive" wait_for 10 has_types first SDS CDS EDS LDS RDS
check "proxy status: five types ACKed" wait_for 10 web_synced
check "the held versions are saved" test "$(wc -l <"$D/web.versions")" -eq 5
check "nothing was resumed on a first connection" test "$(resumed)" -eq 0
stop_client

echo "meshd sotw resume: reconnect with current versions"
client re1
check "meshd resumes all five types" wait_for 10 resumed_ge 5
sleep 1
check "and sends no response at all" test "$(responses re1)" -eq 0
check "proxy status shows the reconnected node synced on five types" wait_for 10 web_synced
check "meshd logged the resume" grep -q "resume RDS v=.* not resent" "$D/meshd.log"
rds=$(count re1 RDS)
write_web_api_mesh 3s "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "a route change after the resume is pushed" wait_count 10 re1 RDS $((rds + 1))
sleep 1
check "and only the route" test "$(responses re1)" -eq 1
check "it is ACKed" wait_for 10 web_synced
stop_client

echo "meshd sotw resume: a change made while away"
write_web_api_mesh 4s "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
sleep 1
client re2
check "the changed route is sent on reconnect" wait_count 10 re2 RDS 1
sleep 1
check "nothing else" test "$(responses re2)" -eq 1
stop_client

echo "meshd sotw resume: restarted meshd"
kill -TERM "$MESHD_PID"
wait "$MESHD_PID" 2>/dev/null
start_meshd meshd2 --instance e2e-resume --log-level debug --metrics-listen 127.0.0.1:"$P_METRICS"
check "meshd restarts" wait_port "$MESHD_PORT" 15
client re3
check "a restarted meshd resumes all five" wait_for 10 resumed_ge 5
sleep 1
check "and resends nothing (versions are content hashes)" test "$(responses re3)" -eq 0
stop_client

echo "meshd sotw resume: versions the client does not hold"
printf 'SDS\t0123456789abcdef\nCDS\tnot-ours\nEDS\t\nLDS\t%s\nRDS\tffffffffffffffff\n' \
    "$(printf 'x%.0s' $(seq 1 40))" >"$D/web.versions"
client stale
check "every type is answered" wait_for 10 has_types stale SDS CDS EDS LDS RDS
check "once each" test "$(responses stale)" -eq 5
stop_client
rm -f "$D/web.versions"
client empty
check "no saved versions: every type is answered" wait_for 10 has_types empty SDS CDS EDS LDS RDS
stop_client

echo "meshd sotw resume: a CA rotation counts a resumed bundle as trusted"
out=$("$M" ca rotate --timeout 2s 2>&1)
check "ca rotate waits for the node that is away (prepares CA 2)" test $? -eq 1
client fresh
check "the new bundle reaches the client" wait_for 10 has_types fresh SDS
check "and is ACKed" wait_for 10 web_synced
stop_client
kill -TERM "$MESHD_PID"
wait "$MESHD_PID" 2>/dev/null
start_meshd meshd3 --instance e2e-resume --log-level debug --metrics-listen 127.0.0.1:"$P_METRICS"
check "meshd restarts again" wait_port "$MESHD_PORT" 15
client re4
check "the reconnect resumes SDS with the new bundle" wait_for 10 resumed_ge 1
check "nothing is sent" test "$(responses re4)" -eq 0
check_out "ca rotate is not held up by a node that resumed (its bundle ACK is on record)" "CA 2 is now active" \
    "$M" ca rotate --timeout 20s
stop_client

check_err "--sotw-state keeps one stream" "--sotw-state keeps one SotW stream" \
    "$XC" "${S[@]}" --state-dir "$D/web" --sotw-state "$D/x" --streams 2 --timeout 2s
check_err "--sotw-state is not for --delta" "--sotw-state keeps one SotW stream" \
    "$XC" "${S[@]}" --state-dir "$D/web" --sotw-state "$D/x" --delta --timeout 2s
e2e_finish
