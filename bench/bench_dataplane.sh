#!/usr/bin/env bash
# bench/bench_dataplane.sh — HTTP through two sidecars (mTLS hop) vs direct vs haproxy.
#
# Backend: mesh-testapp. Load: wrk -t1 -c32 -d10s --latency (BENCH_QUICK=1: -d3s),
# after a 1 s warm-up on the same path (pools and TLS connections established).
# All three setups are started first, then measured in interleaved rounds
# (direct, sidecar, haproxy; 3 rounds, quick: 1) so that drift on a shared VM
# hits all of them alike; each figure is the median over the rounds.
#   direct    wrk -> app
#   sidecar   wrk -> web sidecar outbound (Host: api, routed by RDS) ==mTLS==>
#             api sidecar inbound (SVID verified, RBAC) -> app. Real meshd-issued
#             SVIDs: meshctl ca init, workload add, meshd, two mesh-sidecar.
#   haproxy   wrk -> haproxy A (plain in, `server ... ssl crt ... ca-file ... verify
#             required`) ==mTLS==> haproxy B (`bind ... ssl crt ... ca-file ... verify
#             required`) -> app, certificates from our CA (`meshctl cert issue`).
#             One thread each (nbthread 1), like the sidecars' one data-plane loop.
# Reported per setup: req/s, latency p50/p99, and the proxies' CPU per request;
# ratios sidecar/direct and sidecar/haproxy; added latency over direct.
# Everything shares the machine's cores with wrk: absolute numbers are for
# comparison within one run, not capacity planning.
. "$(dirname "$0")/lib.sh"
bench_setup dataplane
bench_need_bin mesh-testapp
command -v wrk >/dev/null || bench_skip "wrk is not installed (MESHD_DEPS_BENCH=1 tools/deps.sh)"

if [ "$BENCH_QUICK" = 1 ]; then
    DUR=${DATAPLANE_DURATION:-3s}; ROUNDS=${DATAPLANE_ROUNDS:-1}
else
    DUR=${DATAPLANE_DURATION:-10s}; ROUNDS=${DATAPLANE_ROUNDS:-3}
fi
CONNS=${DATAPLANE_CONNS:-32}
M="$MESH_BIN/meshctl"
export MESHD_DB="$BW/meshd.db"
TD=bench.example.org
WEB="spiffe://$TD/ns/bench/sa/web"
API="spiffe://$TD/ns/bench/sa/api"

# to_ms VALUE: wrk's "312.45us" / "1.20ms" / "2.01s" in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n = n * 60000;
        else if (v ~ /s$/) n = n * 1000
        printf "%.3f\n", n }'
}

# run_wrk NAME PORT [wrk args]: warm-up, then the measured run. Appends one
# line "rps requests p50_ms p99_ms errors cpu_us_per_req" to $BW/NAME.rounds;
# the CPU is what the processes in PIDS_<NAME> spent, per request.
run_wrk() {
    local name=$1 port=$2 out="$BW/wrk-$1-$ROUND.txt" c0=0 c1=0 p pids_var="PIDS_$1"
    shift 2
    wrk -t1 -c"$CONNS" -d1s "$@" "http://127.0.0.1:$port/bench" >/dev/null 2>&1
    for p in ${!pids_var:-}; do c0=$((c0 + $(proc_cpu_ms "$p"))); done
    wrk -t1 -c"$CONNS" -d"$DUR" --latency "$@" "http://127.0.0.1:$port/bench" >"$out" 2>&1
    for p in ${!pids_var:-}; do c1=$((c1 + $(proc_cpu_ms "$p"))); done
    local rps reqs p50 p99 non2xx sockerr cpu=null
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    reqs=$(awk '/requests in/ {print $1}' "$out")
    if [ -z "$rps" ] || [ -z "$reqs" ]; then
        bench_info "$name: wrk produced no result:"
        cat "$out" >&2
        return 1
    fi
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    sockerr=$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out")
    if [ -n "${!pids_var:-}" ] && [ "$reqs" -gt 0 ]; then
        cpu=$(fdiv $(((c1 - c0) * 1000)) "$reqs" 1)
    fi
    bench_info "round $ROUND $name: $rps req/s, p50 $p50 ms, p99 $p99 ms, errors $((${non2xx:-0} + ${sockerr:-0})), proxies' CPU ${cpu} us/req"
    echo "$rps $reqs $p50 $p99 $((${non2xx:-0} + ${sockerr:-0})) $cpu" >>"$BW/$name.rounds"
}

RESULTS=()
SKIPPED=()

# ---- backend --------------------------------------------------------------------
bench_port P_APP
bstart app "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_APP" --name api
wait_port "$P_APP" 10 || bench_skip "mesh-testapp did not start"

# ---- (a) direct: nothing to start -----------------------------------------------------
# shellcheck disable=SC2034  # PIDS_<setup> are read through ${!pids_var} in run_wrk
PIDS_direct=""

# ---- mesh store and CA (sidecars and haproxy both use it) ------------------------
"$M" ca init --trust-domain "$TD" >/dev/null || bench_skip "meshctl ca init failed"
"$M" ca bundle >"$BW/bundle.pem"

# ---- (b) two sidecars --------------------------------------------------------------
sidecar_ready() { [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/ready")" = 200 ]; }
run_sidecars() {
    local b
    for b in meshd mesh-sidecar; do
        [ -x "$MESH_BIN/$b" ] || { SKIPPED+=("sidecar: $MESH_BIN/$b is not built"); return 1; }
    done
    command -v curl >/dev/null || { SKIPPED+=("sidecar: curl is needed to poll /ready"); return 1; }
    bench_port P_MESHD; bench_port P_WEB_IN; bench_port P_WEB_OUT; bench_port P_WEB_APP
    bench_port P_API_IN; bench_port A_WEB; bench_port A_API
    cat >"$BW/mesh.yaml" <<YAML
services:
  - {name: web, protocol: http, port: $P_WEB_APP}
  - {name: api, protocol: http, port: $P_APP}
workloads:
  - {name: web-1, spiffe_id: "$WEB", service: web, inbound: "127.0.0.1:$P_WEB_IN",
     app: "127.0.0.1:$P_WEB_APP", outbound: "127.0.0.1:$P_WEB_OUT"}
  - {name: api-1, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_API_IN",
     app: "127.0.0.1:$P_APP"}
routes:
  - name: api
    hosts: [api]
    rules:
      - match: {prefix: /}
        destinations: [{service: api, weight: 100}]
authorization:
  - {service: api, allow: ["$WEB"]}
YAML
    "$M" apply -f "$BW/mesh.yaml" >/dev/null || { SKIPPED+=("sidecar: meshctl apply failed"); return 1; }
    local id name tok
    for name in web api; do
        if [ $name = web ]; then id=$WEB; else id=$API; fi
        tok=$("$M" --output json workload add "$id" | sed -n 's/.*"token":"\(mjt_[^"]*\)".*/\1/p')
        printf '%s\n' "$tok" >"$BW/$name.token"
    done
    bstart meshd "$MESH_BIN/meshd" --db "$MESHD_DB" --listen "127.0.0.1:$P_MESHD" --log-level warn
    wait_port "$P_MESHD" 15 || { SKIPPED+=("sidecar: meshd did not start (see $BW/meshd.log)"); return 1; }
    bstart sc-web "$MESH_BIN/mesh-sidecar" --meshd "127.0.0.1:$P_MESHD" --ca-bundle "$BW/bundle.pem" \
        --state-dir "$BW/state-web" --id "$WEB" --token-file "$BW/web.token" --workload web-1 \
        --admin "127.0.0.1:$A_WEB" --log-level warn
    local pid_web=$LAST_PID
    bstart sc-api "$MESH_BIN/mesh-sidecar" --meshd "127.0.0.1:$P_MESHD" --ca-bundle "$BW/bundle.pem" \
        --state-dir "$BW/state-api" --id "$API" --token-file "$BW/api.token" --workload api-1 \
        --admin "127.0.0.1:$A_API" --log-level warn
    local pid_api=$LAST_PID
    if ! wait_for 20 sidecar_ready "$A_WEB" || ! wait_for 20 sidecar_ready "$A_API" ||
        ! wait_port "$P_WEB_OUT" 10 || ! wait_port "$P_API_IN" 10; then
        SKIPPED+=("sidecar: the sidecars did not become ready (logs: $BW/sc-*.log)")
        tail -5 "$BW"/sc-*.log >&2
        return 1
    fi
    local code
    code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H 'Host: api' "http://127.0.0.1:$P_WEB_OUT/bench")
    if [ "$code" != 200 ]; then
        SKIPPED+=("sidecar: a request through the sidecars answered $code, not 200")
        return 1
    fi
    # shellcheck disable=SC2034
    PIDS_sidecar="$pid_web $pid_api"
}
SETUPS=(direct)
if run_sidecars; then SETUPS+=(sidecar); else bench_info "${SKIPPED[-1]}"; fi

# ---- (c) haproxy doing the same two-hop mTLS -------------------------------------------
# issue_pem NAME ID: key + CSR (openssl), SVID from our CA (meshctl cert issue); NAME.pem = cert+key.
issue_pem() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$BW/$1.key" \
        -subj "/" -addext "subjectAltName=URI:$2" -out "$BW/$1.csr" 2>/dev/null &&
        "$M" cert issue --csr "$BW/$1.csr" --id "$2" --out "$BW/$1.crt" >/dev/null &&
        cat "$BW/$1.crt" "$BW/$1.key" >"$BW/$1.pem"
}
run_haproxy() {
    command -v haproxy >/dev/null || { SKIPPED+=("haproxy: not installed (MESHD_DEPS_BENCH=1 tools/deps.sh)"); return 1; }
    issue_pem hap-web "spiffe://$TD/ns/bench/sa/haproxy-web" &&
        issue_pem hap-api "spiffe://$TD/ns/bench/sa/haproxy-api" ||
        { SKIPPED+=("haproxy: could not issue its certificates"); return 1; }
    bench_port P_H_OUT; bench_port P_H_IN
    local common="global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    http-reuse safe"
    cat >"$BW/haproxy-out.cfg" <<CFG
$common
frontend outbound
    bind 127.0.0.1:$P_H_OUT
    default_backend peer
backend peer
    server api 127.0.0.1:$P_H_IN ssl crt $BW/hap-web.pem ca-file $BW/bundle.pem verify required ssl-min-ver TLSv1.3
CFG
    cat >"$BW/haproxy-in.cfg" <<CFG
$common
frontend inbound
    bind 127.0.0.1:$P_H_IN ssl crt $BW/hap-api.pem ca-file $BW/bundle.pem verify required ssl-min-ver TLSv1.3
    default_backend app
backend app
    server app 127.0.0.1:$P_APP
CFG
    haproxy -c -q -f "$BW/haproxy-out.cfg" && haproxy -c -q -f "$BW/haproxy-in.cfg" ||
        { SKIPPED+=("haproxy: configuration refused (haproxy -c)"); return 1; }
    bstart haproxy-in haproxy -db -f "$BW/haproxy-in.cfg"
    local pid_in=$LAST_PID
    bstart haproxy-out haproxy -db -f "$BW/haproxy-out.cfg"
    local pid_out=$LAST_PID
    wait_port "$P_H_OUT" 10 && wait_port "$P_H_IN" 10 || { SKIPPED+=("haproxy: did not start (logs: $BW/haproxy-*.log)"); return 1; }
    local code
    code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_H_OUT/bench")
    [ "$code" = 200 ] || { SKIPPED+=("haproxy: a request through it answered $code, not 200"); return 1; }
    # shellcheck disable=SC2034
    PIDS_haproxy="$pid_out $pid_in"
}
if run_haproxy; then SETUPS+=(haproxy); else bench_info "${SKIPPED[-1]}"; fi

# ---- measurement rounds -------------------------------------------------------------------
for ROUND in $(seq 1 "$ROUNDS"); do
    for setup in "${SETUPS[@]}"; do
        case $setup in
        direct) run_wrk direct "$P_APP" ;;
        sidecar) run_wrk sidecar "$P_WEB_OUT" -H "Host: api" ;;
        haproxy) run_wrk haproxy "$P_H_OUT" ;;
        esac || bench_skip "wrk against the $setup setup failed"
    done
done

# Medians per setup (each column on its own) -> RPS_x, P50_x, P99_x and a JSON entry.
med() { awk -v c="$2" '{print $c}' "$BW/$1.rounds" | pctl 50; }
for setup in "${SETUPS[@]}"; do
    rps=$(med "$setup" 1); p50=$(med "$setup" 3); p99=$(med "$setup" 4); cpu=$(med "$setup" 6)
    errs=$(awk '{e += $5} END {print e + 0}' "$BW/$setup.rounds")
    reqs=$(awk '{r += $2} END {print r + 0}' "$BW/$setup.rounds")
    rounds=$(awk '{printf "%s[%s, %s, %s]", (NR > 1 ? ", " : ""), $1, $3, $4}' "$BW/$setup.rounds")
    RESULTS+=("\"$setup\": {\"rps\": $rps, \"p50_ms\": $p50, \"p99_ms\": $p99, \"errors\": $errs, \"requests\": $reqs, \"proxy_cpu_us_per_req\": $cpu, \"rounds_rps_p50_p99\": [$rounds]}")
    eval "RPS_$setup=$rps P50_$setup=$p50 P99_$setup=$p99"
done

# ---- report -----------------------------------------------------------------------------
v() { local n="$1_$2"; echo "${!n:-}"; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "null"; else printf "%.3f\n", a - b }'; }
{
    echo "{"
    echo "  \"wrk\": \"-t1 -c$CONNS -d$DUR --latency\", \"rounds\": $ROUNDS,"
    for r in "${RESULTS[@]}"; do echo "  $r,"; done
    echo "  \"ratio_rps_sidecar_direct\": $(fdiv "$(v RPS sidecar)" "$(v RPS direct)"),"
    echo "  \"ratio_rps_sidecar_haproxy\": $(fdiv "$(v RPS sidecar)" "$(v RPS haproxy)"),"
    echo "  \"ratio_rps_haproxy_direct\": $(fdiv "$(v RPS haproxy)" "$(v RPS direct)"),"
    echo "  \"ratio_p50_sidecar_haproxy\": $(fdiv "$(v P50 sidecar)" "$(v P50 haproxy)"),"
    echo "  \"ratio_p99_sidecar_haproxy\": $(fdiv "$(v P99 sidecar)" "$(v P99 haproxy)"),"
    echo "  \"added_p50_ms_sidecar\": $(added "$(v P50 sidecar)" "$(v P50 direct)"),"
    echo "  \"added_p99_ms_sidecar\": $(added "$(v P99 sidecar)" "$(v P99 direct)"),"
    echo "  \"added_p50_ms_haproxy\": $(added "$(v P50 haproxy)" "$(v P50 direct)"),"
    echo "  \"added_p99_ms_haproxy\": $(added "$(v P99 haproxy)" "$(v P99 direct)"),"
    printf '  "skipped": ['
    i=0
    for s in "${SKIPPED[@]}"; do
        [ $i -gt 0 ] && printf ', '
        printf '"%s"' "${s//\"/\'}"
        i=$((i + 1))
    done
    printf ']\n}\n'
} >"$BW/dataplane.json"

printf 'data plane: HTTP/1.1 keep-alive, wrk -t1 -c%s -d%s, backend mesh-testapp, median of %s round(s)\n' \
    "$CONNS" "$DUR" "$ROUNDS"
printf '  %-8s %10s %9s %9s %10s %8s\n' setup "req/s" "p50 ms" "p99 ms" "cpu us/req" "errors"
for s in direct sidecar haproxy; do
    r=$(printf '%s\n' "${RESULTS[@]}" | grep "^\"$s\"") || { printf '  %-8s %s\n' "$s" "(not run)"; continue; }
    g() { sed -n "s/.*\"$1\": \([^,}]*\).*/\1/p" <<<"$r"; }
    printf '  %-8s %10s %9s %9s %10s %8s\n' "$s" "$(g rps)" "$(g p50_ms)" "$(g p99_ms)" \
        "$(g proxy_cpu_us_per_req)" "$(g errors)"
done
printf '  sidecar/direct req/s %s, sidecar/haproxy req/s %s; added p50/p99 over direct: sidecar %s/%s ms, haproxy %s/%s ms\n' \
    "$(fdiv "$(v RPS sidecar)" "$(v RPS direct)")" "$(fdiv "$(v RPS sidecar)" "$(v RPS haproxy)")" \
    "$(added "$(v P50 sidecar)" "$(v P50 direct)")" "$(added "$(v P99 sidecar)" "$(v P99 direct)")" \
    "$(added "$(v P50 haproxy)" "$(v P50 direct)")" "$(added "$(v P99 haproxy)" "$(v P99 direct)")"
for s in "${SKIPPED[@]}"; do printf '  not run: %s\n' "$s"; done
[ -n "${BENCH_JSON:-}" ] && cp "$BW/dataplane.json" "$BENCH_JSON"
exit 0
