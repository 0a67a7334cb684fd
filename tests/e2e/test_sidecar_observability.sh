#!/usr/bin/env bash
# tests/e2e/test_sidecar_observability.sh — what an operator reads off a sidecar:
# the access log (--access-log: one JSON object per exchange, both directions,
# with peer identity, upstream host, bytes, request id) and the per-cluster,
# per-route and per-peer series with latency histograms on /stats/prometheus,
# accepted by promtool. Bad --access-log values are refused up front.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup
WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api

echo "observability: a mesh with access logs"
sc_mesh_init
SC_WEB_ARGS="--access-log $E2E_DIR/web-access.log" SC_API_ARGS="--access-log $E2E_DIR/api-access.log" \
    sc_web_api_up
for i in 1 2 3 4 5; do
    curl -s -m 5 -o /dev/null -H "Host: api" -H "x-request-id: obs-$i" "http://127.0.0.1:$P_WEB_OUT/obs?x=$i"
done
curl -s -m 5 -o /dev/null -H "Host: api" -H "x-request-id: obs-post" --data-binary hello \
    "http://127.0.0.1:$P_WEB_OUT/upload"
curl -s -m 5 -o /dev/null -H "Host: api" "http://127.0.0.1:$P_WEB_OUT/status/404"
# lines are written in batches, at least once a second
sleep 1.5
WL="$E2E_DIR/web-access.log"
AL="$E2E_DIR/api-access.log"
check "web's access log has one line per request (7)" test "$(wc -l <"$WL")" -eq 7
check "api's access log has one line per request (7)" test "$(wc -l <"$AL")" -eq 7
check "every line is a JSON object" bash -c "jq -e 'type == \"object\"' '$WL' '$AL' >/dev/null"

check "outbound line: method, path, status, direction" \
    bash -c "line() { grep -F \"\\\"request_id\\\":\\\"\$2\\\"\" \"\$1\" | head -n 1; }; line '$WL' obs-3 |
        jq -e '.method == \"GET\" and .path == \"/obs?x=3\" and .response_code == 200 and
               .direction == \"outbound\" and .authority == \"api\" and .protocol == \"HTTP/1.1\"'"
check "outbound line: the upstream is api's sidecar, peer is api's SPIFFE ID" \
    bash -c "grep -F obs-1 '$WL' | jq -e '.upstream_host == \"127.0.0.1:$P_API_IN\" and
        .peer_spiffe_id == \"$API\" and (.upstream_cluster | length > 0) and .attempts == 1 and
        .duration_ms >= 0 and (.start_time | test(\"Z\$\"))'"
check "outbound line counts the request body (5 bytes) and the response bytes" \
    bash -c "grep -F obs-post '$WL' | jq -e '.method == \"POST\" and .bytes_received == 5 and .bytes_sent > 0'"
check "inbound line: the caller's SPIFFE ID, the local app as upstream, the same request id" \
    bash -c "grep -F obs-2 '$AL' | jq -e '.direction == \"inbound\" and .peer_spiffe_id == \"$WEB\" and
        .upstream_host == \"127.0.0.1:$P_API_APP\" and .response_code == 200'"
check "a 404 from the app is logged as such" \
    bash -c "grep -F '/status/404' '$WL' | jq -e '.response_code == 404'"

echo "observability: per-cluster, per-peer series"
sc_admin web /stats/prometheus >"$D/web-stats.txt"
sc_admin api /stats/prometheus >"$D/api-stats.txt"
if command -v promtool >/dev/null 2>&1; then
    check "promtool accepts web's /stats/prometheus with the new series" promtool check metrics <"$D/web-stats.txt"
    check "promtool accepts api's /stats/prometheus" promtool check metrics <"$D/api-stats.txt"
else
    missing_dep "promtool is installed (tools/deps.sh installs prometheus)" "promtool missing"
fi
val() { # FILE REGEX: the value of the first series matching REGEX
    grep -E "$2" "$1" | head -n 1 | awk '{print $NF}'
}
check "web counts 6 2xx to api's identity on its outbound cluster" \
    test "$(val "$D/web-stats.txt" "^mesh_sidecar_cluster_requests_total\\{direction=\"outbound\",cluster=\"[^\"]*\",route=\"[^\"]*\",peer=\"$API\",code_class=\"2xx\"\\}")" = 6
check "web counts the 404 as 4xx" \
    test "$(val "$D/web-stats.txt" "^mesh_sidecar_cluster_requests_total\\{direction=\"outbound\".*peer=\"$API\",code_class=\"4xx\"\\}")" = 1
check "api counts 7 requests from web's identity (inbound)" \
    test "$(grep -E "^mesh_sidecar_cluster_requests_total\\{direction=\"inbound\".*peer=\"$WEB\"" "$D/api-stats.txt" | awk '{s += $NF} END {print s}')" = 7
check "web has a latency histogram for the cluster (count 7)" \
    test "$(val "$D/web-stats.txt" "^mesh_sidecar_cluster_request_duration_seconds_count\\{direction=\"outbound\".*peer=\"$API\"")" = 7
check "web counts the request bytes it forwarded (5)" \
    test "$(val "$D/web-stats.txt" "^mesh_sidecar_cluster_request_bytes_total\\{direction=\"outbound\".*peer=\"$API\"")" = 5
check "no access log line was dropped" \
    test "$(val "$D/web-stats.txt" "^mesh_sidecar_access_log_dropped_total")" = 0

echo "observability: bad --access-log"
check_err "an unwritable --access-log is refused with its path" "--access-log /nonexistent-dir/a.log" \
    timeout 10 "$MESH_BIN/mesh-sidecar" --meshd "127.0.0.1:$MESHD_PORT" --state-dir "$D/state-web" \
    --id "$WEB" --access-log /nonexistent-dir/a.log
check_err "an empty --access-log is refused" "--access-log needs a file" \
    "$MESH_BIN/mesh-sidecar" --meshd "127.0.0.1:$MESHD_PORT" --state-dir "$D/x" --access-log ""
e2e_finish
