#!/usr/bin/env bash
# tests/e2e/test_drill_replicas.sh — `meshctl drill --replicas N --kill-replica` end to end
# on 127.0.0.1: three meshd replicas on the drill's store, the one most sidecars are on
# is SIGKILLed, every sidecar that was on it moves to another replica within 2 s (the
# drill times each move from the sidecar's admin), no request fails, the JSON report
# carries the verdicts; an impossible --expect-failover-within exits 3; the replica
# options' usage errors exit 2; nothing is left running.
. "$(dirname "$0")/lib.sh"
e2e_setup

no_process_with() { ! pgrep -f -- "$1" >/dev/null; }
verdict() { jq -e --arg id "$2" '.verdicts[] | select(.id == $id) | .pass == true' "$1" >/dev/null; }

echo "drill replicas: usage errors"
usage_case() {   # usage_case "what" "expected text" ARGS...
    local what=$1 want=$2 out rc
    shift 2
    out=$("$M" drill "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq 2 ] && printf '%s' "$out" | grep -qF -- "$want"; then
        pass "$what"
    else
        fail "$what" "exit $rc: $(printf '%s' "$out" | tail -n 2)"
    fi
}
usage_case "--kill-replica alone" "--replicas 2" --kill-replica
usage_case "--replicas without --kill-replica" "needs --kill-replica" --replicas 3
usage_case "--replicas out of range" "--replicas" --replicas 9 --kill-replica
usage_case "--expect-failover-within without --kill-replica" "goes with --kill-replica" \
    --expect-failover-within 2s
usage_case "--expect-fail-closed makes no sense with a replica kill" "do not apply" \
    --replicas 2 --kill-replica --expect-fail-closed

echo "drill replicas: 3 replicas, 3 clients + 1 server, kill the busiest"
"$M" drill --sidecars 3 --servers 1 --replicas 3 --kill-replica --kill-after 4s --outage 5s \
    --rate 40 --expect-failover-within 2s --expect-zero-failures-before-expiry \
    --json "$D/run1.json" --dir "$D/run1" >"$D/run1.out" 2>&1
rc=$?
check "the drill passes (exit 0, was $rc)" test "$rc" -eq 0
check_out "three replicas are started" "meshd replica 3 on" cat "$D/run1.out"
check_out "the busiest replica is killed" "killed (SIGKILL);" cat "$D/run1.out"
check_out "each move is reported with its time" "after the kill" cat "$D/run1.out"
check "the report says every affected sidecar moved" verdict "$D/run1.json" sidecars_moved
check "the report says no request failed" verdict "$D/run1.json" zero_failures
check "the expectations are met" \
    jq -e '[.expectations[] | .met] | all and length == 2' "$D/run1.json"
check "the JSON report times each move, all under 2 s" jq -e \
    '[.sidecars[] | select(.on_killed_replica)] | length > 0 and all(.failover_s != null and .failover_s < 2)' \
    "$D/run1.json"
check "and names the killed replica" jq -e '.drill.killed_replica >= 1 and .drill.replicas == 3' \
    "$D/run1.json"
MOVED=$(grep -c "moved to 127.0.0.1:" "$D/run1.out")
check "at least one sidecar moved ($MOVED)" test "$MOVED" -ge 1
check "the sidecars' logs name the fail-over" \
    grep -lq "reconnecting to 127.0.0.1" "$D"/run1/sc-*.log
check "nothing of the drill is left running" no_process_with "$D/run1"
grep -E "moved to|^  (PASS|FAIL|INFO|met|NOT MET) " "$D/run1.out" | sed 's/^/    /'

echo "drill replicas: an impossible expectation exits 3"
"$M" drill --sidecars 2 --replicas 2 --kill-replica --kill-after 3s --outage 2s --rate 20 \
    --quiet --expect-failover-within 1ms --dir "$D/run2" >"$D/run2.out" 2>&1
rc=$?
check "exit status 3 (was $rc)" test "$rc" -eq 3
check_out "the expectation is named as not met" "NOT MET  --expect-failover-within 1ms" \
    cat "$D/run2.out"
check "nothing of the second drill is left running" no_process_with "$D/run2"

e2e_finish
