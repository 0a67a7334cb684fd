#!/usr/bin/env bash
# tests/e2e/test_meshd_metrics.sh — control-plane observability with real processes on
# 127.0.0.1: meshd's --metrics-listen (/metrics checked by promtool from Debian's
# prometheus package, /healthz, /readyz 503 while the store is locked by another process
# and 200 once meshd is up), counters that move (issuance, join tokens redeemed / spent /
# unknown, pushes, ACKs, a NACK, push convergence, streams, SVIDs, CA expiry, store
# latency, gRPC calls); --log-format json for meshd and the sidecar (every line parses
# with python3's json); the log level changed at run time (POST /logging, SIGUSR1/2, the
# sidecar's admin /logging); the sidecar's /stats/prometheus through promtool; bad flag
# values refused with a clear message.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup
WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api

# metric NAME_WITH_LABELS: the value of one series on meshd's /metrics ("" if absent).
metric() {
    curl -s -m 3 "http://127.0.0.1:$P_METRICS/metrics" |
        awk -v s="$1" 'index($0, s " ") == 1 { print $2 }'
}
# metric_ge SERIES N: the series is at least N.
metric_ge() { local v; v=$(metric "$1"); [ -n "$v" ] && awk -v v="$v" -v n="$2" 'BEGIN { exit !(v + 0 >= n + 0) }'; }
http_code() { curl -s -m 3 -o /dev/null -w '%{http_code}' "$@"; }
readyz() { curl -s -m 3 -w ' %{http_code}' "http://127.0.0.1:$P_METRICS/readyz" | tr -d '\n'; }
# json_log FILE: every line of FILE is a JSON object with ts (RFC 3339, ms), level,
# comp and msg.
json_log() {
    python3 - "$1" <<'PY'
import json, re, sys
n = 0
for i, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    o = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["ts"]), (i, o["ts"])
    assert o["level"] in ("debug", "info", "warn", "error"), (i, o)
    assert isinstance(o["comp"], str) and isinstance(o["msg"], str), (i, o)
    n += 1
assert n > 0, "no lines"
print(n, "lines")
PY
}
count_level() { grep -c "\"level\":\"$2\"" "$D/$1.log"; }
has_debug_lines() { test "$(count_level meshd debug)" -gt 0; }
level_is() { curl -s -m 3 "http://127.0.0.1:$P_METRICS/logging" | grep -q "^level: $1\$"; }

echo "meshd metrics: flags"
check_err "--metrics-listen port 99999 is refused" "port must be a number from 0 to 65535" \
    "$MD" --db "$MESHD_DB" --metrics-listen 127.0.0.1:99999
check_err "--metrics-listen without a port is refused" "give HOST:PORT" \
    "$MD" --db "$MESHD_DB" --metrics-listen 127.0.0.1
check_err "--metrics-listen with a host name is refused" "the host must be an IP address" \
    "$MD" --db "$MESHD_DB" --metrics-listen localhost:15014
check_err "--log-format xml is refused (meshd)" "--log-format 'xml': use text or json" \
    "$MD" --db "$MESHD_DB" --log-format xml
check_err "--log-format xml is refused (sidecar)" "--log-format 'xml': use text or json" \
    "$MESH_BIN/mesh-sidecar" --meshd 127.0.0.1:1 --state-dir "$D/x" --log-format xml
check_out "meshd --help documents --metrics-listen" "--metrics-listen HOST:PORT" "$MD" --help

sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
sc_port P_METRICS
sc_port P_TAKEN
start blocker python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1', $P_TAKEN)); s.listen(); time.sleep(60)"
BLOCKER=$LAST_PID
wait_port "$P_TAKEN" 5
check_err "a taken metrics port fails startup, named" "--metrics-listen 127.0.0.1:$P_TAKEN: cannot bind" \
    "$MD" --db "$MESHD_DB" --listen 127.0.0.1:"$MESHD_PORT" --metrics-listen 127.0.0.1:"$P_TAKEN"
kill "$BLOCKER" 2>/dev/null

echo "meshd metrics: /readyz while the store is locked, then ready"
# Another process holds the store in SQLite's exclusive locking mode: meshd's open
# waits for it (busy timeout) and /readyz says why it is not ready meanwhile.
start locker python3 -c "
import sqlite3, sys, time
db = sqlite3.connect('$MESHD_DB', isolation_level=None)
db.execute('PRAGMA locking_mode=EXCLUSIVE'); db.execute('BEGIN EXCLUSIVE')
db.execute('SELECT count(*) FROM sqlite_master').fetchall()
print('locked', flush=True); time.sleep(4); db.execute('COMMIT'); db.close()"
check "the store is locked by another process" wait_for 10 grep -q locked "$D/locker.log"
start_meshd meshd --metrics-listen 127.0.0.1:"$P_METRICS" --log-format json
check "the metrics listener is up first" wait_port "$P_METRICS" 5
check_out "/healthz answers 200 while meshd starts" "200" http_code "http://127.0.0.1:$P_METRICS/healthz"
check_out "/readyz is 503 while the store cannot be opened" "not ready: store $MESHD_DB not open yet 503" readyz
check "meshd opens the store once the lock is gone" wait_port "$MESHD_PORT" 15
check_out "/readyz is 200 once serving" "ready 200" readyz
check_out "/metrics says ready" "1" metric mesh_meshd_ready
check_out "an unknown path is 404" "404" http_code "http://127.0.0.1:$P_METRICS/nope"
check_out "POST to /metrics is 405" "405" http_code -X POST "http://127.0.0.1:$P_METRICS/metrics"

echo "meshd metrics: a mesh with two sidecars"
sc_token "$WEB" "$D/web.token"
sc_token "$API" "$D/api.token"
sc_port P_WEB_IN; sc_port P_WEB_OUT; sc_port P_WEB_APP; sc_port P_API_IN; sc_port P_API_APP
mesh_yaml() {
    cat <<YAML
services:
  - {name: web, protocol: http, port: $P_WEB_APP}
  - {name: api, protocol: http, port: $P_API_APP}
workloads:
  - {name: web-1, spiffe_id: "$WEB", service: web, inbound: "127.0.0.1:$P_WEB_IN",
     app: "127.0.0.1:$P_WEB_APP", outbound: "127.0.0.1:$P_WEB_OUT"}
  - {name: api-1, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_API_IN",
     app: "127.0.0.1:$P_API_APP"}
routes:
  - name: api
    hosts: [api]
    rules:
      - match: {prefix: /}
        timeout: $1
        destinations: [{service: api}]
authorization:
  - {service: api, allow: ["$WEB"]}
YAML
}
mesh_yaml 2s >"$D/mesh.yaml"
check "apply the mesh" "$M" apply -f "$D/mesh.yaml"
start app-api "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_API_APP" --name api
sc_start_sidecar web "$WEB" --log-format json
sc_start_sidecar api "$API"
check "sidecar web becomes ready" wait_for 15 sc_ready web
check "sidecar api becomes ready" wait_for 15 sc_ready api
check "web's outbound listener is up" wait_port "$P_WEB_OUT" 10
check_out "traffic flows web -> api" "200" sc_get api "$P_WEB_OUT"

check "issuances: two SVIDs signed" metric_ge 'mesh_meshd_issuances_total{result="ok"}' 2
check "join tokens: two redeemed" metric_ge 'mesh_meshd_join_tokens_total{result="ok"}' 2
check "CreateCertificate OK calls counted" metric_ge 'mesh_meshd_grpc_calls_total{method="CreateCertificate",code="OK"}' 2
check "two ADS streams serving" metric_ge 'mesh_meshd_xds_streams{type="ads",state="serving"}' 2
check "LDS pushed" metric_ge 'mesh_meshd_xds_pushes_total{type="lds"}' 2
check "SDS ACKed" metric_ge 'mesh_meshd_xds_acks_total{type="sds"}' 2
check "connected SVIDs counted" metric_ge 'mesh_meshd_connected_svids' 2
check_out "no connected SVID is due for renewal yet" "0" metric mesh_meshd_svids_in_renewal_window
check "CA expiry is in the future (years)" metric_ge 'mesh_meshd_ca_expiry_seconds' 86400
check "store latency observed (issue)" metric_ge 'mesh_meshd_store_latency_seconds_count{op="issue"}' 2
check "store latency observed (poll)" metric_ge 'mesh_meshd_store_latency_seconds_count{op="poll"}' 1
check_out "no store errors" "0" metric 'mesh_meshd_store_errors_total{op="poll"}'

echo "meshd metrics: join token refusals"
check_err "a spent token is refused" "already used" \
    "$XC" "${S[@]}" --token "$(cat "$D/web.token")" --id "$WEB" --state-dir "$D/spent" --no-stream
check "join tokens: one spent" metric_ge 'mesh_meshd_join_tokens_total{result="spent"}' 1
check_err "an unknown token is refused" "not known" \
    "$XC" "${S[@]}" --token "mjt_$(printf "A%.0s" $(seq 43))" --id "$WEB" --state-dir "$D/unknown" --no-stream
check "join tokens: one unknown" metric_ge 'mesh_meshd_join_tokens_total{result="unknown"}' 1
check "issuances: refusals counted as unauthenticated" metric_ge 'mesh_meshd_issuances_total{result="refused",reason="unauthenticated"}' 2

echo "meshd metrics: a config change is pushed, ACKed and converges"
rds_before=$(metric 'mesh_meshd_xds_pushes_total{type="rds"}')
ack_before=$(metric 'mesh_meshd_xds_acks_total{type="rds"}')
conv_before=$(metric 'mesh_meshd_push_convergence_seconds_count')
mesh_yaml 3s >"$D/mesh.yaml"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "the route change is pushed" wait_for 10 metric_ge 'mesh_meshd_xds_pushes_total{type="rds"}' $((rds_before + 1))
check "and ACKed" wait_for 10 metric_ge 'mesh_meshd_xds_acks_total{type="rds"}' $((ack_before + 1))
check "push convergence observed" wait_for 10 metric_ge 'mesh_meshd_push_convergence_seconds_count' $((conv_before + 1))
check "it converged within 5 s" metric_ge 'mesh_meshd_push_convergence_seconds_bucket{le="5"}' $((conv_before + 1))

echo "meshd metrics: a NACK"
XWEB=(--state-dir "$D/xweb" --sub 'cds=*' --sub 'lds=*' --sub sds=default,ROOTCA)
"$XC" "${S[@]}" --token "$(workload_token "$WEB")" --id "$WEB" --state-dir "$D/xweb" --no-stream >/dev/null
start nack "$XC" "${S[@]}" "${XWEB[@]}" --node-id nack-node --nack-type lds --nack-count 1 --timeout 60s
check "an LDS NACK is counted" wait_for 10 metric_ge 'mesh_meshd_xds_nacks_total{type="lds"}' 1

echo "meshd metrics: promtool"
if command -v promtool >/dev/null 2>&1; then
    curl -s -m 3 "http://127.0.0.1:$P_METRICS/metrics" >"$D/metrics.txt"
    check "promtool accepts meshd's /metrics" promtool check metrics <"$D/metrics.txt"
    check_out "every family has HELP and TYPE" "ok" awk '
        /^# HELP / { help[$3] = 1 } /^# TYPE / { type[$3] = 1 }
        !/^#/ { n = $1; sub(/\{.*/, "", n); sub(/_(bucket|sum|count)$/, "", n); fam[n] = 1 }
        END { n = 0; for (f in fam) { n++; if (!help[f] || !type[f]) { print "missing " f; exit 1 } }
              if (n < 14) { print "only " n " families"; exit 1 } print "ok" }' "$D/metrics.txt"
    check_out "histogram buckets end in +Inf" 'mesh_meshd_push_convergence_seconds_bucket{le="+Inf"}' cat "$D/metrics.txt"
    sc_admin web /stats/prometheus >"$D/sidecar-stats.txt"
    check "promtool accepts the sidecar's /stats/prometheus" promtool check metrics <"$D/sidecar-stats.txt"
    check_out "the sidecar's /stats/prometheus is Prometheus text" "# TYPE mesh_sidecar_upstream_retries_total counter" \
        grep -B1 '^# TYPE mesh_sidecar_upstream_retries_total' "$D/sidecar-stats.txt"
    check_out "  ... with HELP on every family" "# HELP mesh_sidecar_upstream_retries_total" cat "$D/sidecar-stats.txt"
    check_out "the sidecar's /stats/prometheus has its counters" "mesh_sidecar_http_requests_total" cat "$D/sidecar-stats.txt"
else
    missing_dep "promtool (Debian package prometheus; tools/deps.sh installs it)" "promtool checks skipped"
fi

echo "meshd metrics: log level at run time"
check_out "GET /logging shows the level" "level: info" curl -s -m 3 "http://127.0.0.1:$P_METRICS/logging"
check_out "a bad level is refused (400)" "400" http_code -X POST "http://127.0.0.1:$P_METRICS/logging?level=loud"
check "no debug lines at info" test "$(count_level meshd debug)" -eq 0
check_out "POST /logging?level=debug" "level: debug" curl -s -m 3 -X POST "http://127.0.0.1:$P_METRICS/logging?level=debug"
mesh_yaml 4s >"$D/mesh.yaml"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "debug lines appear after the change" wait_for 10 has_debug_lines
kill -USR2 "$MESHD_PID"
check "SIGUSR2: one level less verbose" wait_for 5 level_is info
check_out "the change is logged" "log level changed from debug to info (SIGUSR2)" cat "$D/meshd.log"
kill -USR1 "$MESHD_PID"
check "SIGUSR1: one level more verbose" wait_for 5 level_is debug
check_out "that change is logged too" "log level changed from info to debug (SIGUSR1)" cat "$D/meshd.log"
check_out "the sidecar's admin takes POST /logging" "level: debug" \
    curl -s -m 3 -X POST "http://127.0.0.1:$ADMIN_web/logging?level=debug"
check_out "the sidecar logs the change" "log level changed from info to debug" cat "$D/sc-web.log"
check_out "the sidecar refuses a bad level" "400" http_code -X POST "http://127.0.0.1:$ADMIN_web/logging?level=x"
check_out "the sidecar refuses POST elsewhere" "405" http_code -X POST "http://127.0.0.1:$ADMIN_web/stats"

echo "meshd metrics: JSON lines"
check_out "meshd's log is JSON lines" "lines" json_log "$D/meshd.log"
check_out "the sidecar's log is JSON lines" "lines" json_log "$D/sc-web.log"
check_out "structured fields: an issuance names its identity and path" \
    "\"spiffe_id\":\"$WEB\",\"serial\":" grep '"msg":"CreateCertificate: ' "$D/meshd.log"
check_out "structured fields: a NACK names node and type" '"node":"nack-node","spiffe_id":' \
    grep 'NACKed' "$D/meshd.log"

e2e_finish
