#!/usr/bin/env bash
# tests/e2e/test_pg_replicas.sh — three meshd replicas on one PostgreSQL store (issue 14,
# docs/store.md "Several replicas"): a config applied once with meshctl is pushed by every
# replica to its xDS client within 1 s, through LISTEN/NOTIFY with the safety-net poll set
# to a minute (so a poll cannot be what delivers it); the push convergence (apply returned
# -> the client received the new RDS) is measured over several rounds and printed.
. "$(dirname "$0")/lib.sh"
e2e_setup
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api
ROUNDS=${PG_REPLICAS_ROUNDS:-10}

e2e_pg_up "the replica checks"

"$M" ca init --trust-domain example.org --key-dir "$D/keys" >/dev/null
"$M" ca bundle >"$D/bundle.pem"
write_web_api_mesh 2s "$API" "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null

echo "three replicas, one store"
PORTS=()
for r in 1 2 3; do
    p=$(free_port)
    PORTS+=("$p")
    # --poll-interval 60s: only a notification can deliver a change within the test's bounds.
    start "meshd-r$r" "$MD" --db "$MESHD_DB" --listen 127.0.0.1:"$p" --instance "r$r" \
        --poll-interval 60s
    eval "MESHD_PID_R$r=$LAST_PID"
done
for r in 1 2 3; do
    check "replica r$r listens" wait_port "${PORTS[$((r - 1))]}" 15
done
notified() { grep -q "store changes are notified (listen)" "$D/meshd-r$1.log"; }
for r in 1 2 3; do check "replica r$r says changes are notified (LISTEN)" wait_for 10 notified "$r"; done
srv() { echo --server 127.0.0.1:"${PORTS[$(($1 - 1))]}" --bundle "$D/bundle.pem"; }
# shellcheck disable=SC2046
check "web enrols at replica r1" \
    "$XC" $(srv 1) --token "$(workload_add "$WEB")" --id "$WEB" --state-dir "$D/web" --no-stream
for r in 1 2 3; do
    # shellcheck disable=SC2046
    start "web-r$r" "$XC" $(srv "$r") --state-dir "$D/web" --sub 'rds=outbound|http' \
        --node-id "web-r$r" --timeout 300s
    eval "WEB_PID_R$r=$LAST_PID"
done
for r in 1 2 3; do
    check "the client of r$r has its first RDS" wait_count 15 "web-r$r" RDS 1
done

echo "apply once, every replica pushes (within 1 s)"
: >"$D/latency.txt"
late=0
for round in $(seq 1 "$ROUNDS"); do
    declare -A before=()
    for r in 1 2 3; do before[$r]=$(count "web-r$r" RDS); done
    write_web_api_mesh "$((round + 2))s" "$API" "$API"
    "$M" apply -f "$D/mesh.yaml" >/dev/null
    t_applied=$(date +%s%3N)
    for r in 1 2 3; do
        if ! wait_count 3 "web-r$r" RDS $((before[$r] + 1)); then
            late=$((late + 1))
            echo "  round $round: r$r pushed nothing within 3 s" >>"$D/latency.txt"
            continue
        fi
        got=$(last "web-r$r" RDS | jq -r .wall_ms)
        lat=$((got - t_applied))
        [ "$lat" -lt 0 ] && lat=0   # the push beat meshctl's own exit
        echo "$r $lat" >>"$D/latency.txt"
    done
done
over=$(awk 'NF == 2 && $2 > 1000' "$D/latency.txt" | wc -l)
check "every replica pushed every one of $ROUNDS applies" test "$late" -eq 0
check "every push arrived within 1 s of the apply" test "$over" -eq 0
stats() { # stats [REPLICA]: "p50 p90 max" in ms
    awk -v r="${1:-}" 'NF == 2 && (r == "" || $1 == r) {print $2}' "$D/latency.txt" | sort -n |
        awk '{v[NR] = $1} END {if (NR == 0) {print "- - -"; exit}
             printf "%d %d %d\n", v[int((NR + 1) / 2)], v[int((NR * 9 + 9) / 10)], v[NR]}'
}
read -r p50 p90 pmax <<<"$(stats 1)"
echo "  push convergence, one replica (r1), $ROUNDS applies: p50 ${p50} ms, p90 ${p90} ms, max ${pmax} ms"
read -r a50 a90 amax <<<"$(stats)"
echo "  push convergence, all 3 replicas, $((ROUNDS * 3)) pushes: p50 ${a50} ms, p90 ${a90} ms, max ${amax} ms"
check "one replica's p50 is well under 100 ms (${p50} ms)" test "${p50:-1000}" -lt 100

echo "every replica sees what the others did"
all_listed() {
    test "$("$M" proxy-status --output json | jq -r '[.[] | select(.node_id | startswith("web-r"))
        | "\(.node_id)@\(.meshd_instance)"] | sort | join(" ")')" = "web-r1@r1 web-r2@r2 web-r3@r3"
}
check "proxy-status (any replica's rows, one store) lists the sidecars of all three" all_listed
replicas_up() { test "$("$M" replicas --output json | jq '[.[] | select(.state == "up")] | length')" -eq "$1"; }
check "meshctl replicas lists three replicas up" replicas_up 3
check_out "with their addresses" "127.0.0.1:${PORTS[1]}" "$M" replicas
# One token presented at two replicas at the same instant: exactly one enrols.
race_ok=1
for round in 1 2 3 4 5; do
    tok=$(workload_token "$WEB")
    # shellcheck disable=SC2046
    "$XC" $(srv 1) --token "$tok" --id "$WEB" --state-dir "$D/race-a$round" --no-stream \
        >"$D/race-a$round.log" 2>&1 &
    a=$!
    # shellcheck disable=SC2046
    "$XC" $(srv 2) --token "$tok" --id "$WEB" --state-dir "$D/race-b$round" --no-stream \
        >"$D/race-b$round.log" 2>&1 &
    b=$!
    wa=0; wb=0
    wait "$a" && wa=1
    wait "$b" && wb=1
    if [ $((wa + wb)) -ne 1 ]; then
        race_ok=0
        echo "  round $round: $((wa + wb)) of 2 enrolled with one token"
    fi
done
check "a join token presented at two replicas at once enrols exactly once (5 rounds)" \
    test "$race_ok" -eq 1
check "serials are unique across replicas" test "$(psql -Atq "$MESHD_DB" -c \
    'SELECT count(*) - count(DISTINCT serial_hex) FROM certs')" -eq 0
# A revocation made once (meshctl, the store) is enforced by every replica.
rserial=$(openssl x509 -in "$D/web/cert.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
"$M" cert revoke "$rserial" --reason keyCompromise >/dev/null
for r in 2 3; do
    # shellcheck disable=SC2046
    check_err "replica r$r refuses to renew the revoked SVID" "revoked" \
        "$XC" $(srv "$r") --state-dir "$D/web" --renew --no-stream
done
check "replica r3 closes the stream of the revoked SVID" wait_for 10 not_running "$WEB_PID_R3"
check_out "and says why" "revoked" cat "$D/web-r3.log"

echo "a CA rotation made once reaches the sidecars of every replica"
"$M" workload add "$API" >/dev/null
# shellcheck disable=SC2046
check "api enrols at r1" "$XC" $(srv 1) --token "$(workload_token "$API")" --id "$API" \
    --state-dir "$D/api-rot" --no-stream
for r in 1 2; do
    # shellcheck disable=SC2046
    start "rot-r$r" "$XC" $(srv "$r") --state-dir "$D/api-rot" --sub sds=ROOTCA \
        --node-id "rot-r$r" --timeout 300s
done
for r in 1 2; do check "rot-r$r has the trust bundle" wait_count 15 "rot-r$r" SDS 1; done
rot_out=$("$M" ca rotate --key-dir "$D/keys" --timeout 30s 2>&1)
rot_rc=$?
echo "$rot_out" >"$D/rotate.out"
check "ca rotate activates: the sidecars at r1 and r2 ACKed the new roots" test "$rot_rc" -eq 0
for r in 1 2; do
    check "rot-r$r was pushed the new trust bundle by its replica" wait_count 10 "rot-r$r" SDS 2
done
[ -n "${E2E_VERBOSE:-}" ] && echo "$rot_out"
"$M" ca bundle >"$D/bundle.pem"   # meshd's serving certs now come from the new CA

echo "a replica that crashes"
enrol_fresh() { # enrol_fresh DIR REPLICA
    # shellcheck disable=SC2046
    "$XC" $(srv "$2") --token "$(workload_token "$API")" --id "$API" --state-dir "$D/$1" \
        --no-stream >/dev/null
}
check "api enrols at r3" enrol_fresh api 3
# shellcheck disable=SC2046
start api-r3 "$XC" $(srv 3) --state-dir "$D/api" --sub 'cds=*' --node-id api-r3 --timeout 300s
check "api's stream at r3 is up" wait_count 15 api-r3 CDS 1
check "proxy-status shows api-r3 connected" wait_for 10 node_connected api-r3 true
kill -KILL "$MESHD_PID_R3"
wait "$MESHD_PID_R3" 2>/dev/null
node_lost() { "$M" proxy-status --output json | json_is 'any(.[]; .node_id == "api-r3" and .state == "lost" and .connected == false and .replica_lost == true)'; }
check "after r3's heartbeat is over ${STALE_S:-10} s old its sidecar reads lost, not connected" \
    wait_for 20 node_lost
replica_state() { test "$("$M" replicas --output json | jq -r --arg r "$1" '.[] | select(.id == $r) | .state')" = "$2"; }
check "meshctl replicas shows r3 stale" replica_state r3 stale
check "and r1 up" replica_state r1 up
start meshd-r3b "$MD" --db "$MESHD_DB" --listen 127.0.0.1:"${PORTS[2]}" --instance r3 \
    --poll-interval 60s
check "r3 restarts" wait_port "${PORTS[2]}" 15
check "the restarted r3 is up" wait_for 10 replica_state r3 up
node_down() { "$M" proxy-status --output json | json_is 'any(.[]; .node_id == "api-r3" and .state == "down")'; }
check "it cleared its old rows: api-r3 is down (not lost, not connected)" wait_for 10 node_down

e2e_finish
