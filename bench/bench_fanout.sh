#!/usr/bin/env bash
# bench/bench_fanout.sh — xDS fan-out: a route change pushed to N ADS streams.
#
# For each N: a fresh meshd, then mesh-xdsclient processes opening N mTLS ADS
# streams in total (FANOUT_CLIENTS processes, one SPIFFE identity each, every
# stream on its own connection, subscribed to CDS/EDS/LDS/RDS/SDS like a
# sidecar with HTTP egress). Measured:
#   initial   launch -> each stream holds all five types (mTLS handshake,
#             first compile, five responses): the in-run reference
#   push      `meshctl apply` of a weight change -> each stream received the
#             new RDS (it ACKs in the same loop turn); p50/p99/max over all
#             streams x changes; spread = last minus first receipt of one
#             change, the fan-out itself without meshd's detection delay
#   acked     `meshctl apply` -> meshd's proxy status shows every connected
#             node ACKing the new RDS version (polled; coarse); median of changes
#   memory    meshd RSS growth from idle to N streams connected, per stream
#   cpu       meshd CPU spent on the pushes, per stream and change (10 ms ticks)
# ratios: push/initial (p50, p99), push(N)/push(1) (what fan-out adds over
# one stream; the floor is meshd's store poll, 200 ms, plus its 100 ms debounce).
# Receipt times come from bench_stamp (wall clock, same as `date +%s%N`).
#   N = "1 100 1000 5000", 5 changes each (BENCH_QUICK=1: "1 100", 3 changes);
#   FANOUT_NS, FANOUT_CHANGES, FANOUT_CLIENTS override.
. "$(dirname "$0")/lib.sh"
bench_setup fanout
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bench_need_bin meshd meshctl mesh-xdsclient

if [ "$BENCH_QUICK" = 1 ]; then
    NS=${FANOUT_NS:-"1 100"}; PUSH_REPS=${FANOUT_CHANGES:-3}
else
    NS=${FANOUT_NS:-"1 100 1000 5000"}; PUSH_REPS=${FANOUT_CHANGES:-5}
fi
K=${FANOUT_CLIENTS:-2}
# Clients retry with jitter (mesh-xdsclient --retry) unless FANOUT_RETRY=0, so a
# stream that meets the handshake storm waits instead of failing at 20 s.
RETRY=--retry
[ "${FANOUT_RETRY:-1}" = 0 ] && RETRY=
INITIAL_LIMIT=${FANOUT_INITIAL_LIMIT:-180}   # seconds for all streams to connect
PUSH_LIMIT=${FANOUT_PUSH_LIMIT:-60}

make -s -C "$ROOT" -f bench/Makefile BUILD="$BENCH_BUILD" "$BENCH_PROGS/bench_stamp" >&2 ||
    bench_skip "bench_stamp does not build"
STAMP="$BENCH_PROGS/bench_stamp"

# One connection per stream on both ends: raise the descriptor limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fit=""
for n in $NS; do
    if [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((n + 256)) ]; then
        fit="$fit $n"
    else
        bench_info "N=$n left out: the open-file limit $(ulimit -n) is too low (raise ulimit -Hn)"
    fi
done
NS=$fit
[ -n "$NS" ] || bench_skip "the open-file limit $(ulimit -n) is too low for any N"

M="$MESH_BIN/meshctl"
export MESHD_DB="$BW/meshd.db"
# meshd's store poll interval (from its --help) bounds how fast it sees a change;
# after seeing one it waits out a 100 ms debounce (meshd/meshd_flags.c).
POLL=$("$MESH_BIN/meshd" --help 2>&1 | sed -n 's/.*--poll-interval.*(default \([0-9a-z]*\)).*/\1/p')
POLL=${POLL:-unknown}
TD=bench.example.org
"$M" ca init --trust-domain "$TD" >/dev/null || bench_skip "meshctl ca init failed"
"$M" ca bundle >"$BW/bundle.pem"

# mesh_yaml V1 V2: K web identities with HTTP egress, routed to api-v1/api-v2.
mesh_yaml() {
    local k
    echo "services:"
    echo "  - {name: web, protocol: http, port: 18080}"
    echo "  - {name: api-v1, protocol: http, port: 18081}"
    echo "  - {name: api-v2, protocol: http, port: 18082}"
    echo "workloads:"
    for k in $(seq 0 $((K - 1))); do
        echo "  - {name: web-$k, spiffe_id: \"spiffe://$TD/ns/bench/sa/web-$k\", service: web,"
        echo "     inbound: \"127.0.0.1:$((16000 + k))\", app: \"127.0.0.1:$((17000 + k))\","
        echo "     outbound: \"127.0.0.1:$((18000 + k))\"}"
    done
    echo "  - {name: api-v1-1, spiffe_id: \"spiffe://$TD/ns/bench/sa/api-v1\", service: api-v1,"
    echo "     inbound: \"127.0.0.1:15991\", app: \"127.0.0.1:18081\"}"
    echo "  - {name: api-v2-1, spiffe_id: \"spiffe://$TD/ns/bench/sa/api-v2\", service: api-v2,"
    echo "     inbound: \"127.0.0.1:15992\", app: \"127.0.0.1:18082\"}"
    echo "routes:"
    echo "  - name: api"
    echo "    hosts: [api]"
    echo "    rules:"
    echo "      - match: {prefix: /}"
    echo "        destinations: [{service: api-v1, weight: $1}, {service: api-v2, weight: $2}]"
    echo "authorization:"
    for svc in api-v1 api-v2; do
        echo "  - service: $svc"
        echo "    allow:"
        for k in $(seq 0 $((K - 1))); do echo "      - spiffe://$TD/ns/bench/sa/web-$k"; done
    done
}
mesh_yaml 90 10 >"$BW/mesh-a.yaml"
mesh_yaml 80 20 >"$BW/mesh-b.yaml"
"$M" apply -f "$BW/mesh-a.yaml" >/dev/null || bench_skip "meshctl apply of the bench mesh failed"
NEXT_YAML=b

start_meshd() {
    bench_port MESHD_PORT
    bstart "meshd-$1" "$MESH_BIN/meshd" --db "$MESHD_DB" --listen "127.0.0.1:$MESHD_PORT" --log-level warn
    MESHD_PID=$LAST_PID
    wait_port "$MESHD_PORT" 15 || { cat "$BW/meshd-$1.log" >&2; bench_skip "meshd did not start listening"; }
}

# Enrol each identity once (join token -> SVID in st-k); streams reuse it.
start_meshd enrol
for k in $(seq 0 $((K - 1))); do
    id="spiffe://$TD/ns/bench/sa/web-$k"
    tok=$("$M" --output json workload add "$id" | sed -n 's/.*"token":"\(mjt_[^"]*\)".*/\1/p')
    "$MESH_BIN/mesh-xdsclient" --server "127.0.0.1:$MESHD_PORT" --token "$tok" --id "$id" \
        --bundle "$BW/bundle.pem" --state-dir "$BW/st-$k" --no-stream >"$BW/enrol-$k.log" 2>&1 ||
        { cat "$BW/enrol-$k.log" >&2; bench_skip "mesh-xdsclient could not enrol $id"; }
done
bstop "$MESHD_PID"

SUBS=(--sub 'cds=*' --sub 'lds=*' --sub 'rds=outbound|http'
      --sub 'eds=outbound|api-v1,outbound|api-v2,outbound|web' --sub 'sds=default,ROOTCA')

# responses FILE...: "<µs> <client:stream> <TYPE> <version>" per stamped response line.
responses() {
    local f k
    for f in "$@"; do
        k=${f##*/out-}; k=${k%.txt}
        sed -n 's/^\([0-9]*\)\t{"stream":\([0-9]*\),"t_ms":[0-9]*,"type":"\([A-Z]*\)".*"version":"\([^"]*\)".*/\1 '"$k"':\2 \3 \4/p' "$f"
    done
}

# initial_done_us: per stream, the time it held all five types (one number per line).
initial_done_us() {
    responses "$BW"/out-*.txt | awk '!seen[$2 " " $3]++ { n[$2]++; if (n[$2] == 5) print $1 }'
}

# pushed_us T0 VERSION: per stream, receipt time of the first RDS with VERSION after T0.
pushed_us() {
    responses "$BW"/out-*.txt |
        awk -v t0="$1" -v v="$2" '$1 > t0 && $3 == "RDS" && $4 == v && !seen[$2]++ { print $1 }'
}

# acked_nodes VERSION: connected nodes whose ACKed RDS version is VERSION, per meshd.
acked_nodes() {
    # One line per node: rows start with "workload" (or "node_id" before it was added);
    # split on either, or every row lands on one line and this never reaches N.
    "$M" --output json proxy-status 2>/dev/null | sed -E 's/\{"(workload|node_id)"/\n/g' |
        grep '"connected":true' | grep -c "\"RDS\":{[^}]*\"acked_version\":\"$1\""
}

# stats_ms NAME < ms-values: JSON fields NAME_{p50,p99,max}_ms.
stats_ms() {
    local name=$1 vals
    vals=$(cat)
    printf '"%s_p50_ms": %s, "%s_p99_ms": %s, "%s_max_ms": %s' \
        "$name" "$(pctl 50 <<<"$vals")" "$name" "$(pctl 99 <<<"$vals")" "$name" "$(pctl 100 <<<"$vals")"
}

# lines_at_least N: the clients printed at least N lines so far (cheap: no parsing,
# so polling it does not steal much CPU from meshd and the clients).
lines_at_least() { [ "$(cat "$BW"/out-*.txt 2>/dev/null | wc -l)" -ge "$1" ]; }

json_get() { sed -n "s/.*\"$2\": \([^,}]*\).*/\1/p" <<<"$1"; }

RESULTS=()
for N in $NS; do
    kk=$K
    [ "$N" -lt "$kk" ] && kk=$N
    bench_info "N=$N streams over $kk client process(es)"
    rm -f "$BW"/out-*.txt
    start_meshd "n$N"
    sleep 0.5
    rss0=$(proc_rss_kb "$MESHD_PID")
    t_launch=$(now_us)
    CLIENT_PIDS=()
    for k in $(seq 0 $((kk - 1))); do
        per=$((N / kk + (k < N % kk ? 1 : 0)))
        "$MESH_BIN/mesh-xdsclient" --server "127.0.0.1:$MESHD_PORT" --state-dir "$BW/st-$k" \
            "${SUBS[@]}" --streams "$per" --timeout 900s $RETRY \
            > >("$STAMP" >"$BW/out-$k.txt") 2>"$BW/client-$N-$k.log" &
        CLIENT_PIDS+=($!)
        BENCH_PIDS+=($!)
    done
    all_initial() { lines_at_least $((5 * N)) && [ "$(initial_done_us | wc -l)" -ge "$N" ]; }
    if ! wait_for "$INITIAL_LIMIT" all_initial; then
        bench_info "only $(initial_done_us | wc -l) of $N streams got their initial config in ${INITIAL_LIMIT}s"
        tail -3 "$BW"/client-"$N"-*.log >&2
        RESULTS+=("{\"streams\": $N, \"error\": \"initial config incomplete\"}")
        for p in "${CLIENT_PIDS[@]}"; do bstop "$p"; done
        bstop "$MESHD_PID"
        continue
    fi
    t_initial_all=$(initial_done_us | sort -n | tail -1)
    initial_json=$(initial_done_us | awk -v t0="$t_launch" '{printf "%.3f\n", ($1 - t0) / 1000}' | stats_ms initial)
    sleep 1 # let late ACKs and status writes settle before measuring
    rss1=$(proc_rss_kb "$MESHD_PID")
    cur_rds=$(responses "$BW"/out-*.txt | awk '$3 == "RDS" {v = $4} END {print v}')

    # PUSH_REPS route changes, alternating two weight splits; every stream's
    # receipt time of every change goes into one distribution (the store poll
    # phase is random, so one change alone would be a coin toss of 0-200 ms).
    : >"$BW/push-ms.txt"
    spreads="" ackeds="" applies="" pushed_ok=1 other=0 reps_done=0
    cpu0=$(proc_cpu_ms "$MESHD_PID")
    for rep in $(seq 1 "$PUSH_REPS"); do
        lines0=$(cat "$BW"/out-*.txt | wc -l)
        t_apply=$(now_us)
        "$M" apply -f "$BW/mesh-$NEXT_YAML.yaml" >/dev/null || bench_skip "meshctl apply (route change) failed"
        t_applied=$(now_us)
        applies="$applies $(fdiv $((t_applied - t_apply)) 1000 1)"
        if [ "$NEXT_YAML" = b ]; then NEXT_YAML=a; else NEXT_YAML=b; fi
        new_rds_seen() { lines_at_least $((lines0 + 1)) && responses "$BW"/out-*.txt | awk -v t0="$t_apply" '$1 > t0 && $3 == "RDS" {f = 1} END {exit !f}'; }
        wait_for "$PUSH_LIMIT" new_rds_seen
        new_rds=$(responses "$BW"/out-*.txt | awk -v t0="$t_apply" '$1 > t0 && $3 == "RDS" {print $4; exit}')
        all_pushed() { lines_at_least $((lines0 + N)) && [ "$(pushed_us "$t_apply" "$new_rds" | wc -l)" -ge "$N" ]; }
        if [ -z "$new_rds" ] || [ "$new_rds" = "$cur_rds" ] || ! wait_for "$PUSH_LIMIT" all_pushed; then
            pushed_ok=0
            bench_info "change $rep: only $(pushed_us "$t_apply" "${new_rds:-none}" | wc -l) of $N streams got a new RDS (${new_rds:-none})"
            break
        fi
        cur_rds=$new_rds
        pushed_us "$t_apply" "$new_rds" | awk -v t0="$t_apply" '{printf "%.3f\n", ($1 - t0) / 1000}' >"$BW/push-rep.txt"
        cat "$BW/push-rep.txt" >>"$BW/push-ms.txt"
        spreads="$spreads $(awk 'NR == 1 || $1 < lo {lo = $1} NR == 1 || $1 > hi {hi = $1} END {printf "%.3f", hi - lo}' "$BW/push-rep.txt")"
        all_acked() { [ "$(acked_nodes "$new_rds")" -ge "$N" ]; }
        if wait_for "$PUSH_LIMIT" all_acked; then
            ackeds="$ackeds $(fdiv $(($(now_us) - t_apply)) 1000 1)"
        fi
        other=$((other + $(responses "$BW"/out-*.txt | awk -v t0="$t_apply" '$1 > t0 && $3 != "RDS"' | wc -l)))
        reps_done=$rep
        bench_info "change $rep: all $N streams got RDS $new_rds; max $(sort -g "$BW/push-rep.txt" | tail -1) ms after apply"
        sleep 0.3
    done
    cpu1=$(proc_cpu_ms "$MESHD_PID")
    rss2=$(proc_rss_kb "$MESHD_PID")
    push_json=$(stats_ms push <"$BW/push-ms.txt")
    for p in "${CLIENT_PIDS[@]}"; do bstop "$p"; done
    bstop "$MESHD_PID"

    med_of() { tr ' ' '\n' <<<"$1" | grep . | pctl 50; }
    r="{\"streams\": $N, \"clients\": $kk, \"changes\": $reps_done, \"pushed_all\": $([ $pushed_ok = 1 ] && echo true || echo false)"
    r="$r, $initial_json, \"initial_all_ms\": $(fdiv $((t_initial_all - t_launch)) 1000 1)"
    r="$r, $push_json, \"push_spread_median_ms\": $(med_of "$spreads"), \"acked_all_median_ms\": $(med_of "$ackeds")"
    r="$r, \"apply_cmd_median_ms\": $(med_of "$applies"), \"other_type_pushes\": $other"
    r="$r, \"meshd_rss_idle_kb\": $rss0, \"meshd_rss_kb\": $rss1, \"meshd_rss_after_push_kb\": $rss2"
    r="$r, \"rss_per_stream_kb\": $(fdiv $((rss1 - rss0)) "$N" 1)"
    # /proc CPU times tick every 10 ms: below ~100 ms in total the per-stream
    # figure would be mostly rounding, so it is left out (null).
    cpu_per=null
    if [ $((cpu1 - cpu0)) -ge 100 ] && [ "$reps_done" -gt 0 ]; then
        cpu_per=$(fdiv $(((cpu1 - cpu0) * 1000)) $((N * reps_done)) 1)
    fi
    r="$r, \"push_cpu_ms\": $((cpu1 - cpu0)), \"push_cpu_us_per_stream_change\": $cpu_per"
    RESULTS+=("$r}")
done

# Ratios: push vs initial in the same run, and push(N) vs push(1).
base_p50=null
for r in "${RESULTS[@]}"; do
    [ "$(json_get "$r" streams)" = 1 ] && base_p50=$(json_get "$r" push_p50_ms)
done
{
    echo "{"
    echo "  \"meshd_poll\": \"$POLL\", \"meshd_debounce_ms\": 100,"
    echo "  \"runs\": ["
    i=0
    for r in "${RESULTS[@]}"; do
        i=$((i + 1))
        p50=$(json_get "$r" push_p50_ms); p99=$(json_get "$r" push_p99_ms)
        ip50=$(json_get "$r" initial_p50_ms); ip99=$(json_get "$r" initial_p99_ms)
        extra=", \"ratio_push_initial_p50\": $(fdiv "$p50" "$ip50"), \"ratio_push_initial_p99\": $(fdiv "$p99" "$ip99")"
        extra="$extra, \"ratio_push_vs_1_stream_p50\": $(fdiv "$p50" "$base_p50")"
        printf '    %s%s}%s\n' "${r%\}}" "$extra" "$([ $i -lt ${#RESULTS[@]} ] && echo ,)"
    done
    echo "  ]"
    echo "}"
} >"$BW/fanout.json"

printf 'fan-out: route changes pushed over N mTLS ADS streams (meshd: store poll %s + debounce 100ms)\n' "$POLL"
printf '  %6s %4s  %8s %8s %8s %8s  %9s %9s  %8s  %7s %7s %7s  %7s  %8s\n' streams chg "push p50" "push p99" \
    "push max" spread "init p50" "init p99" "acked" "p50/ini" "p99/ini" "p50/N=1" "KB/strm" "cpu us"
sed -n 's/^    {/{/p' "$BW/fanout.json" | while read -r r; do
    if [ -n "$(json_get "$r" error)" ]; then
        printf '  %6s  %s\n' "$(json_get "$r" streams)" "$(json_get "$r" error)"
        continue
    fi
    printf '  %6s %4s  %8s %8s %8s %8s  %9s %9s  %8s  %7s %7s %7s  %7s  %8s\n' "$(json_get "$r" streams)" \
        "$(json_get "$r" changes)" "$(json_get "$r" push_p50_ms)" "$(json_get "$r" push_p99_ms)" \
        "$(json_get "$r" push_max_ms)" "$(json_get "$r" push_spread_median_ms)" \
        "$(json_get "$r" initial_p50_ms)" "$(json_get "$r" initial_p99_ms)" "$(json_get "$r" acked_all_median_ms)" \
        "$(json_get "$r" ratio_push_initial_p50)" "$(json_get "$r" ratio_push_initial_p99)" \
        "$(json_get "$r" ratio_push_vs_1_stream_p50)" "$(json_get "$r" rss_per_stream_kb)" \
        "$(json_get "$r" push_cpu_us_per_stream_change)"
done
printf '  (ms. push: apply -> stream got the new RDS, over all streams x changes; spread: first to last\n'
printf '   stream within one change; init: launch -> stream held all five types; acked: apply -> every\n'
printf '   node ACKed in proxy-status; KB/strm: meshd RSS growth / N; cpu us: meshd CPU per stream per change)\n'
[ -n "${BENCH_JSON:-}" ] && cp "$BW/fanout.json" "$BENCH_JSON"
exit 0
