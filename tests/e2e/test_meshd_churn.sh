#!/usr/bin/env bash
# tests/e2e/test_meshd_churn.sh — meshd under connection churn, on 127.0.0.1: many clients
# open ADS, SDS and Delta streams and go away while meshd is still setting them up
# (client-side cancels at short deadlines, and SIGKILL at random moments). Regression
# check for a race in which a call's close completed on another completion-queue thread
# while the new call was being set up: the call was freed under the thread opening it
# (use-after-free; meshd crashed at ~100 enrolling sidecars), or its stream was
# registered after it had closed (a leaked call that blocked SIGTERM forever).
# Afterwards meshd must be alive, serve new and existing streams, have closed every
# stream it opened, and stop cleanly on SIGTERM. The race is timing-dependent: this
# script makes it likely (thousands of openings), not certain; an ASan build of meshd
# (MESH_BIN) turns any use-after-free into a crash. Bounded: ~25 s.
. "$(dirname "$0")/lib.sh"
e2e_setup
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api
CHURN_SECONDS=${CHURN_SECONDS:-10}

# Streams meshd registered ("<kind> stream from <id>") and streams it saw close.
opened() { grep -c ' stream from spiffe://' "$D/meshd.log" 2>/dev/null || true; }
closed() { grep -c ') closed after [0-9]* requests' "$D/meshd.log" 2>/dev/null || true; }
# still_open N: exactly N registered streams have not closed.
still_open() { test $(($(opened) - $(closed))) -eq "$1"; }

ca_init
write_web_api_mesh 2s
check_out "config applies" "config version" "$M" apply -f "$D/mesh.yaml"
start_meshd meshd --instance e2e-churn --log-level info
check "meshd listens" wait_port "$MESHD_PORT" 15
enrol "$WEB" web
enrol "$API" api
WEB_SUBS=(--sub 'cds=*' --sub 'lds=*' --sub 'rds=outbound|http' --sub sds=default,ROOTCA)

echo "meshd: a steady stream, then churn"
start steady "$XC" "${S[@]}" --state-dir "$D/web" "${WEB_SUBS[@]}" --node-id steady-node --timeout 90s
check "the steady stream gets its config" wait_for 15 has_types steady RDS SDS

# One round: three clients of 30 streams each (one connection per stream), each gone
# after a random 20-400 ms: one cancels its calls at its deadline, two are SIGKILLed
# (a SotW ADS one and a Delta/SDS one), so streams end at every stage of their setup.
# The churn runs for CHURN_SECONDS and, on a loaded machine where clients die
# before they connect, longer (up to 3x) until meshd has opened CHURN_MIN_OPENED
# streams: what is checked is meshd under churn, not how fast this box is.
CHURN_MIN_OPENED=${CHURN_MIN_OPENED:-100}
rounds=0
start_s=$SECONDS
end=$((SECONDS + CHURN_SECONDS))
churning() {
    [ "$SECONDS" -lt "$end" ] && return 0
    [ "$(opened)" -lt "$CHURN_MIN_OPENED" ] && [ "$SECONDS" -lt $((start_s + 3 * CHURN_SECONDS)) ]
}
while churning && kill -0 "$MESHD_PID" 2>/dev/null; do
    "$XC" "${S[@]}" --state-dir "$D/api" --streams 30 --quiet --timeout "$((20 + RANDOM % 380))ms" \
        >/dev/null 2>&1 &
    p1=$!
    "$XC" "${S[@]}" --state-dir "$D/web" --streams 30 --quiet --timeout 30s >/dev/null 2>&1 &
    p2=$!
    if [ $((rounds % 2)) -eq 0 ]; then
        "$XC" "${S[@]}" --state-dir "$D/api" --delta --streams 30 --quiet --timeout 30s >/dev/null 2>&1 &
    else
        "$XC" "${S[@]}" --state-dir "$D/web" --sds --sub sds=default,ROOTCA --streams 30 --quiet \
            --timeout 30s >/dev/null 2>&1 &
    fi
    p3=$!
    sleep "$(printf '0.%03d' $((20 + RANDOM % 380)))"
    kill -KILL "$p2" 2>/dev/null
    sleep "0.0$((RANDOM % 10))"
    kill -KILL "$p3" 2>/dev/null
    wait "$p1" "$p2" "$p3" 2>/dev/null
    rounds=$((rounds + 1))
done 2>/dev/null # bash's "Killed" job notices
echo "  ($rounds rounds of 90 streams in $((SECONDS - start_s))s; meshd opened $(opened) of them)"
check "churn ran (at least 5 rounds)" test "$rounds" -ge 5
check "meshd survived the churn" kill -0 "$MESHD_PID"
check "the churn reached meshd (at least $CHURN_MIN_OPENED streams opened)" \
    test "$(opened)" -ge "$CHURN_MIN_OPENED"

echo "meshd: still serving after the churn"
check_out "a new stream is answered (ADS: CDS+LDS+SDS)" '"responses":3' \
    "$XC" "${S[@]}" --state-dir "$D/api" --sub 'cds=*' --sub 'lds=*' --sub sds=default \
    --exit-after 3 --summary --timeout 15s
check_out "a new Delta stream is answered" '"responses":3' \
    "$XC" "${S[@]}" --state-dir "$D/api" --delta --sub 'cds=*' --sub 'lds=*' --sub sds=default \
    --exit-after 3 --summary --timeout 15s
rds_before=$(count steady RDS)
write_web_api_mesh 3s
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "a route change still reaches the steady stream" wait_count 10 steady RDS $((rds_before + 1))
check "the steady stream is still connected" node_connected steady-node true
# Every stream meshd registered has been seen to close, but the steady one: a stream
# registered after its call had ended would never be.
check "every churned stream was closed and unregistered" wait_for 15 still_open 1
check "meshd is still running" kill -0 "$MESHD_PID"

echo "meshd: clean stop after the churn"
kill -TERM "$MESHD_PID"
check "SIGTERM stops meshd within 10 s (no call left behind)" wait_for 10 not_running "$MESHD_PID"
# A meshd hung in shutdown must not hang this script.
kill -0 "$MESHD_PID" 2>/dev/null && kill -KILL "$MESHD_PID"
wait "$MESHD_PID" 2>/dev/null
rc=$?
check "meshd exits 0" test "$rc" -eq 0
check "no sanitizer report" sh -c "! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' '$D/meshd.log'"

e2e_finish
