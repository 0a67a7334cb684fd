#!/usr/bin/env bash
# tools/demo.sh — the live demo behind `make demo` (MESH_BIN = the built binaries).
#
# In a temporary directory, on 127.0.0.1 with the ports of examples/mesh.yaml:
#   1. meshctl ca init, register the example's workloads (join tokens), apply the mesh
#   2. start meshd, the five sidecars (three backend replicas of one identity) and their mesh-testapps
#   3. traffic through the frontend sidecar to host "backend": the 90/10 split, the
#      x-canary header rule, a tcp service over mTLS, meshctl proxy-status
#   4. a route weight change pushed live, a call the authorization policy denies (403)
#   5. one backend v1 replica's app killed mid-traffic: retries and outlier detection in
#      the frontend's sidecar steer around it (0 failed requests), /clusters shows it ejected
#   6. a short outage drill (meshctl drill, its own throwaway mesh), then clean up
# Everything started here is stopped on exit, also on Ctrl-C. DEMO_KEEP=1 keeps the
# temporary directory (logs, store). The drill's JSON/CSV/SVG land in $DEMO_OUT
# (default: beside MESH_BIN, e.g. build/demo/).
set -uo pipefail
: "${MESH_BIN:?set MESH_BIN to the directory holding meshctl, meshd, mesh-sidecar, mesh-testapp}"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXAMPLE="$ROOT/examples/mesh.yaml"
MESH_BIN=$(cd "$MESH_BIN" && pwd)
DEMO_OUT=${DEMO_OUT:-$(dirname "$MESH_BIN")/demo}
TD=example.org
MESHD_ADDR=127.0.0.1:15010
PIDS=()

if [ -t 1 ]; then B=$'\033[1m' G=$'\033[32m' R=$'\033[31m' N=$'\033[0m'; else B= G= R= N=; fi
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
say() { printf '   %s\n' "$*"; }
ok() { printf '   %sok%s  %s\n' "$G" "$N" "$*"; }
die() { printf '\n%sdemo failed:%s %s\n' "$R" "$N" "$*" >&2; [ -n "${DEMO_DIR:-}" ] && echo "   logs: $DEMO_DIR" >&2; DEMO_KEEP=1; exit 1; }
# show CMD...: prints the command as an operator would type it, then runs it.
show() { printf '   %s$ %s%s\n' "$B" "$(printf '%s ' "$@" | sed "s#$MESH_BIN/##g")" "$N"; "$@" 2>&1 | sed 's/^/     /'; return "${PIPESTATUS[0]}"; }

stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    PIDS=()
}
cleanup() {
    stop_all
    if [ -n "${DEMO_DIR:-}" ] && [ -z "${DEMO_KEEP:-}" ]; then rm -rf "$DEMO_DIR"; fi
}
trap cleanup EXIT
trap 'echo; die "interrupted"' INT TERM

# start NAME CMD...: in the background, output in $DEMO_DIR/NAME.log.
start() { local name=$1; shift; "$@" >"$DEMO_DIR/$name.log" 2>&1 & PIDS+=("$!"); }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { local i; for i in $(seq 1 100); do port_busy "$1" && return 0; sleep 0.1; done; return 1; }
ready() { [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/ready")" = 200 ]; }
wait_ready() { local i; for i in $(seq 1 150); do ready "$1" && return 0; sleep 0.1; done; return 1; }
# get HOST [HEADER]: one request through the frontend sidecar's outbound listener.
get() { curl -s -m 5 -H "Host: $1" ${2:+-H "$2"} "http://127.0.0.1:15101/demo"; }
code() { curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:15101/demo"; }
# split N [HEADER]: N requests to host backend, counted by the app that answered.
split() {
    local i
    for i in $(seq 1 "$1"); do get backend "${2:-}" | sed -n 's/.*"app":"\([^"]*\)".*/\1/p'; done |
        sort | uniq -c | awk '{printf "%s%s: %d", sep, $2, $1; sep = ", "} END {print ""}'
}
rds_version() { curl -s -m 2 http://127.0.0.1:15901/config_dump | sed -n 's/.*"rds":{"version":"\([^"]*\)".*/\1/p'; }
token_for() {   # token_for NAME SPIFFE_ID FILE: registers instance NAME, writes its join token (0600)
    local out
    out=$("$MESH_BIN/meshctl" --output json workload add "$1" --id "$2") || return 1
    (umask 077; printf '%s\n' "$out" | sed -n 's/.*"token":"\(mjt_[^"]*\)".*/\1/p' >"$3")
    [ -s "$3" ]
}
# sidecar NAME SPIFFE_ID ADMIN_PORT: one sidecar for workload NAME.
sidecar() {
    start "sc-$1" "$MESH_BIN/mesh-sidecar" --meshd "$MESHD_ADDR" --ca-bundle "$DEMO_DIR/bundle.pem" \
        --state-dir "$DEMO_DIR/state-$1" --id "$2" --token-file "$DEMO_DIR/$1.token" \
        --workload "$1" --admin "127.0.0.1:$3" --reconnect-max 2s
}

for b in meshctl meshd mesh-sidecar mesh-testapp; do
    [ -x "$MESH_BIN/$b" ] || die "$MESH_BIN/$b is missing; build with 'make' first"
done
command -v curl >/dev/null || die "curl is needed (tools/deps.sh installs it)"
[ -r "$EXAMPLE" ] || die "cannot read $EXAMPLE"
for p in 15001 15002 15003 15004 15005 15006 15010 15101 15202 15203 15205 15901 15902 15903 \
         15904 15905 15906 18080 18081 18082 18083 18084 18432; do
    port_busy "$p" && die "port 127.0.0.1:$p is in use; the demo needs the ports of examples/mesh.yaml"
done

DEMO_DIR=$(mktemp -d /tmp/meshd-demo-XXXXXX) || die "cannot create a temporary directory"
export MESHD_DB="$DEMO_DIR/meshd.db"
printf '%smeshd demo%s: a CA, meshd, five sidecars and their apps on 127.0.0.1, then an outage drill.\n' "$B" "$N"
say "working in $DEMO_DIR (MESHD_DB=$MESHD_DB)"

step "1. A CA, the example's workloads, the mesh config (meshctl writes the store; meshd is not running yet)"
show "$MESH_BIN/meshctl" ca init --trust-domain "$TD" || die "ca init"
"$MESH_BIN/meshctl" ca bundle >"$DEMO_DIR/bundle.pem" || die "ca bundle"
FRONTEND=spiffe://$TD/ns/default/sa/frontend
BACKEND=spiffe://$TD/ns/default/sa/backend
# The three backend replicas (two of v1, one v2 canary) share one identity: the service account.
declare -A ID=([frontend-1]=$FRONTEND [backend-v1-1]=$BACKEND [backend-v1-2]=$BACKEND
               [backend-v2-1]=$BACKEND [db-1]=spiffe://$TD/ns/default/sa/db)
show "$MESH_BIN/meshctl" apply -f "$EXAMPLE" || die "apply"
for w in frontend-1 backend-v1-1 backend-v1-2 backend-v2-1 db-1; do
    token_for "$w" "${ID[$w]}" "$DEMO_DIR/$w.token" || die "workload add $w --id ${ID[$w]}"
    ok "registered instance $w of ${ID[$w]}; its one-time join token is in $w.token (0600)"
done

step "2. meshd, then the apps and one sidecar per workload"
start meshd "$MESH_BIN/meshd" --db "$MESHD_DB" --listen "$MESHD_ADDR"
wait_port 15010 || die "meshd did not start (see $DEMO_DIR/meshd.log)"
ok "meshd serves xDS/SDS and the CA on $MESHD_ADDR"
start app-frontend "$MESH_BIN/mesh-testapp" --listen 127.0.0.1:18080 --name frontend
start app-backend-v1-1 "$MESH_BIN/mesh-testapp" --listen 127.0.0.1:18081 --name backend-v1-1
start app-backend-v1-2 "$MESH_BIN/mesh-testapp" --listen 127.0.0.1:18083 --name backend-v1-2
APP_V1_2=${PIDS[-1]}
start app-backend-v2-1 "$MESH_BIN/mesh-testapp" --listen 127.0.0.1:18082 --name backend-v2-1
start app-db "$MESH_BIN/mesh-testapp" --listen 127.0.0.1:18432 --name db --tcp-echo
sidecar frontend-1 "${ID[frontend-1]}" 15901
sidecar backend-v1-1 "${ID[backend-v1-1]}" 15902
sidecar backend-v2-1 "${ID[backend-v2-1]}" 15903
sidecar db-1 "${ID[db-1]}" 15904
sidecar backend-v1-2 "${ID[backend-v1-2]}" 15905
for a in 15901 15902 15903 15904 15905; do
    wait_ready "$a" || die "a sidecar is not ready (admin 127.0.0.1:$a; logs in $DEMO_DIR)"
done
ok "5 sidecars ready (3 backend replicas of one identity, each its own instance): each got its SVID from meshd (CSR, key never left it) and its config over ADS"
say "frontend-1's certificate, from its admin endpoint:"
curl -s http://127.0.0.1:15901/certs | sed -n 's/.*"current":{\([^}]*\)}.*/\1/p' | tr ',' '\n' |
    grep -E 'spiffe_id|serial|not_after|seconds_left' | sed 's/^/     /'

step "3. Traffic: the frontend app's requests to host 'backend' go through its sidecar (127.0.0.1:15101)"
wait_port 15101 || die "frontend's outbound listener is not up"
for i in $(seq 1 50); do [ "$(code backend)" = 200 ] && break; sleep 0.1; done
say "one request (curl -H 'Host: backend' 127.0.0.1:15101/demo); the app echoes what it saw:"
get backend | sed 's/,"/,\n       "/g; s/^/     /'
echo
say "the backend app sees the caller's SPIFFE ID in x-forwarded-client-cert: mTLS end to end"
say "100 requests, the route's 90/10 split between subsets v1 (2 replicas) and v2:"
say "                                            $(split 100)"
say "20 requests with 'x-canary: 1' (pinned to v2): $(split 20 'x-canary: 1')"
echo_tcp=$(exec 3<>/dev/tcp/127.0.0.1/15202 && printf 'ping over mTLS\n' >&3 && timeout 3 head -n 1 <&3)
say "tcp: backend-v1-1's local port 15202 -> db over mTLS, echo says: ${echo_tcp:-<nothing>}"
echo
show "$MESH_BIN/meshctl" proxy-status

step "4. A route change is pushed live; a call the policy does not allow is refused"
sed -e 's/weight: 90/weight: 50/' -e 's/weight: 10$/weight: 50/' "$EXAMPLE" >"$DEMO_DIR/mesh-50-50.yaml"
before=$(rds_version)
t0=$(date +%s%N)
show "$MESH_BIN/meshctl" apply -f "$DEMO_DIR/mesh-50-50.yaml" || die "apply 50/50"
pushed=
for i in $(seq 1 200); do
    v=$(rds_version)
    if [ -n "$v" ] && [ "$v" != "$before" ]; then pushed=$(( ($(date +%s%N) - t0) / 1000000 )); break; fi
    sleep 0.02
done
[ -n "$pushed" ] || die "the new route never reached frontend-1"
ok "frontend-1 runs route version $v (was $before) ${pushed} ms after the apply; no restart"
say "100 requests now:                           $(split 100)"
cat >"$DEMO_DIR/ledger.yaml" <<YAML
# A new service that only the backend identity may call.
services:
  - {name: ledger, protocol: http, port: 18084}
workloads:
  - {name: ledger-1, spiffe_id: "spiffe://$TD/ns/default/sa/ledger", service: ledger,
     inbound: "127.0.0.1:15006", app: "127.0.0.1:18084"}
routes:
  - {name: ledger, hosts: [ledger], rules: [{match: {prefix: /}, destinations: [{service: ledger}]}]}
authorization:
  - {service: ledger, allow: ["$BACKEND"]}
YAML
show "$MESH_BIN/meshctl" apply -f "$DEMO_DIR/ledger.yaml" || die "apply ledger"
token_for ledger-1 "spiffe://$TD/ns/default/sa/ledger" "$DEMO_DIR/ledger-1.token" ||
    die "workload add ledger-1"
start app-ledger "$MESH_BIN/mesh-testapp" --listen 127.0.0.1:18084 --name ledger
sidecar ledger-1 "spiffe://$TD/ns/default/sa/ledger" 15906
wait_ready 15906 || die "ledger-1 is not ready"
for i in $(seq 1 50); do c=$(code ledger); [ "$c" = 403 ] && break; sleep 0.1; done
say "frontend calls host 'ledger' (only the backend identity may): HTTP $c"
say "  $(get ledger | head -c 200)"
say "  ledger-1 counted it: $(curl -s http://127.0.0.1:15906/stats | grep '^mesh_sidecar_rbac_denied_total')"
[ "$c" = 403 ] || die "expected 403 from the ledger's authorization policy, got $c"

step "5. A backend replica dies mid-traffic: the frontend's sidecar steers around it"
# codes N: N requests to host backend, one status per line.
codes() { local i; for i in $(seq 1 "$1"); do code backend; echo; done; }
codes 400 >"$DEMO_DIR/kill-traffic.txt" &
traffic=$!
for i in $(seq 1 100); do [ "$(wc -l <"$DEMO_DIR/kill-traffic.txt")" -ge 50 ] && break; sleep 0.05; done
kill -KILL "$APP_V1_2" 2>/dev/null
wait "$APP_V1_2" 2>/dev/null
say "killed backend-v1-2's app (pid $APP_V1_2) after 50 of 400 requests; its sidecar now"
say "answers 503 to every call it gets"
wait "$traffic"
bad=$(grep -vc '^200$' "$DEMO_DIR/kill-traffic.txt")
ok "400 requests across the kill: $((400 - bad)) answered 200, $bad failed (a 503 from the dead replica is retried on another host: previous_hosts)"
say "100 requests after detection:              $(split 100)"
flags=$(curl -s http://127.0.0.1:15901/clusters | awk -F'::' '$2 == "127.0.0.1:15005" && $3 == "health_flags" {print $1 " " $2 " " $4}')
say "frontend-1's /clusters for backend-v1-2: ejected by outlier detection (5 errors in a row) in"
say "the v1 subset's cluster, which carries the traffic (the whole service's cluster carries none here):"
printf '%s\n' "${flags:-<not shown>}" | sed 's/^/     /'
codes 200 >"$DEMO_DIR/after-kill.txt"
bad2=$(grep -vc '^200$' "$DEMO_DIR/after-kill.txt")
ok "200 more requests: $bad2 failed; backend-v1-2 gets none until its ejection time is over"
[ "$bad" -eq 0 ] && [ "$bad2" -eq 0 ] || die "requests failed around the killed replica ($bad, then $bad2)"

step "6. The outage drill: kill the control plane, watch the budget run out, restart, recover"
say "stopping the demo mesh first; the drill builds its own throwaway mesh on free ports"
stop_all
mkdir -p "$DEMO_OUT"
show "$MESH_BIN/meshctl" drill --sidecars 3 --ttl 20s --kill-after 5s --rate 30 --reconnect-max 2s \
    --json "$DEMO_OUT/drill.json" --csv "$DEMO_OUT/drill.csv" --svg "$DEMO_OUT/drill.svg" \
    --expect-zero-failures-before-expiry --expect-recovery-within 30s
rc=$?
echo
say "report: $DEMO_OUT/drill.json, per second: $DEMO_OUT/drill.csv, chart: $DEMO_OUT/drill.svg"
[ "$rc" -eq 0 ] || die "the drill's expectations were not met (exit $rc)"
printf '\n%sdemo done.%s Everything it started is stopped; docs/drill.md explains the drill.\n' "$B" "$N"
