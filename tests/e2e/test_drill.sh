#!/usr/bin/env bash
# tests/e2e/test_drill.sh — `meshctl drill` end to end on 127.0.0.1:
#   - bad options are usage errors (exit 2) that name the option, and start nothing
#   - a drill with 15 s SVIDs: zero failed requests until the first expiry, requests
#     failing closed once every SVID expired, recovery after meshd's restart with
#     renewed SVIDs; the JSON report, the CSV and the SVG agree with each other and
#     with what the sidecars logged; no process is left behind; --db is not touched
#   - an outage shorter than the budget: no failure at all; an unmet expectation
#     exits 3; --output json puts the report on stdout
#   - SIGINT stops the drill and every child, exit 130, a partial report
#   - target mode: a running meshd and its store, killed and started by the operator's
#     commands; the drill's workloads and config are gone from that store afterwards,
#     the operator's registration and meshd are untouched; a failing --kill-cmd exits 1
#   - setup errors (missing binaries, a reused --dir) exit 1 with a clear message
. "$(dirname "$0")/lib.sh"
e2e_setup
D="$E2E_DIR"
M="$MESH_BIN/meshctl"

# jget FILE EXPR: evaluates a JavaScript expression over the parsed report `r`.
jget() {
    if command -v node >/dev/null 2>&1; then
        node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
                 const v = eval(process.argv[2]); console.log(typeof v === "object" ? JSON.stringify(v) : v);' "$1" "$2"
    else
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
    fi
}
# jtrue FILE EXPR: passes when EXPR is true.
jtrue() { [ "$(jget "$1" "$2" 2>&1)" = true ]; }
# no_process_with ARG: nothing runs with ARG in its command line.
no_process_with() { ! pgrep -f -- "$1" >/dev/null; }

echo "drill: usage errors"
usage_case() {   # usage_case "what" "expected text" ARGS...
    local what=$1 want=$2
    shift 2
    local out rc
    out=$("$M" drill --dir "$D/never" "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq 2 ] && printf '%s' "$out" | grep -qF -- "$want" && [ ! -e "$D/never" ]; then
        pass "$what"
    else
        fail "$what" "exit $rc, wanted 2 and '$want' in: $(printf '%s' "$out" | tail -n 2)"
    fi
}
usage_case "--sidecars 0 is refused" "--sidecars" --sidecars 0
usage_case "--sidecars 501 is refused" "--sidecars" --sidecars 501
usage_case "--servers 0 is refused" "--servers" --servers 0
usage_case "--ttl below 10s is refused" "--ttl" --ttl 5s
usage_case "--ttl in milliseconds is refused" "whole seconds" --ttl 15500ms
usage_case "--ttl garbage is refused" "--ttl" --ttl soon
usage_case "--rate 0 is refused" "--rate" --rate 0
usage_case "--rate garbage is refused" "--rate" --rate 10x
usage_case "--kill-after 0s is refused" "--kill-after" --kill-after 0s
usage_case "--outage garbage is refused" "--outage" --outage forever
usage_case "--reconnect-max below 250ms is refused" "--reconnect-max" --reconnect-max 10ms
usage_case "--rotate-fraction 2 is refused" "--rotate-fraction" --rotate-fraction 2
usage_case "--expect-recovery-within garbage is refused" "--expect-recovery-within" \
    --expect-recovery-within fast
usage_case "--expect-fail-closed with an outage shorter than the TTL is refused" \
    "--expect-fail-closed" --expect-fail-closed --ttl 20s --outage 5s
usage_case "JSON and CSV both on stdout are refused" "stdout" --json - --csv -
usage_case "an unknown option is refused" "unknown" --bogus
usage_case "a stray argument is refused" "unexpected argument" now
usage_case "a missing option value is refused" "incomplete" --ttl
usage_case "--target needs the kill and start commands" "--kill-cmd" --target 127.0.0.1:1
usage_case "--target needs a HOST:PORT" "--target" --target nowhere --kill-cmd x --start-cmd y
usage_case "--target with --ttl is refused" "--ttl" --target 127.0.0.1:1 --kill-cmd x \
    --start-cmd y --ttl 30s
usage_case "--kill-cmd without --target is refused" "--target" --kill-cmd x
out=$(env -u MESHD_DB "$M" drill --target 127.0.0.1:1 --kill-cmd x --start-cmd y 2>&1)
rc=$?
check "--target without a store is a usage error (exit $rc)" test "$rc" -eq 2
check_out "and asks for --db" "--db" printf '%s' "$out"
check_out "drill --help explains the expectations" "--expect-zero-failures-before-expiry" \
    "$M" drill --help

echo "drill: setup errors"
out=$("$M" drill --bin-dir "$D/nobin" --dir "$D/nobin-run" 2>&1)
rc=$?
check "missing binaries: exit 1 (got $rc)" test "$rc" -eq 1
check_out "missing binaries: the message says where it looked and what to do" "--bin-dir" \
    printf '%s' "$out"

echo "drill: 3 client + 2 server sidecars, 15 s SVIDs, meshd killed until every SVID expired"
"$M" drill --sidecars 3 --servers 2 --ttl 15s --kill-after 3s --rate 60 --reconnect-max 1s \
    --dir "$D/run1" --json "$D/r1.json" --csv "$D/r1.csv" --svg "$D/r1.svg" \
    --expect-zero-failures-before-expiry --expect-fail-closed --expect-recovery-within 20s \
    >"$D/run1.out" 2>&1
rc=$?
check "the drill met its expectations (exit 0; output in run1.out)" test "$rc" -eq 0
R="$D/r1.json"
check "the JSON report was written" test -s "$R"
check "the outage was observed" jtrue "$R" 'r.result.outage_observed === true'
check "no request failed before the first SVID expired" \
    jtrue "$R" 'r.requests.failed_before_expiry === 0'
check "traffic flowed while meshd was down and SVIDs were valid" \
    jtrue "$R" 'r.requests.ok_in_outage_before_expiry > 100'
check "the first expiry came after the kill, inside the TTL" \
    jtrue "$R" 'r.events.first_expiry_at > r.events.meshd_killed_at &&
                r.events.first_expiry_at < r.events.meshd_killed_at + 15.5'
check "the outage budget at the kill is between 1 s and the TTL" \
    jtrue "$R" 'r.outage.budget_at_kill_min_s >= 1 && r.outage.budget_at_kill_max_s <= 15'
check "requests failed after the expiry" jtrue "$R" 'r.requests.failed_while_expired > 0'
check "none succeeded once every SVID had expired (fail closed)" \
    jtrue "$R" 'r.outage.every_svid_expired === true && r.requests.ok_after_every_svid_expired === 0'
check "the failures were answered by the sidecars (503), not timeouts" \
    jtrue "$R" 'r.requests.failures.http_503 > 0 && r.requests.failures.timeout === 0'
check "meshd was restarted after the last expiry" \
    jtrue "$R" 'r.events.meshd_restarted_at > r.events.last_expiry_at'
check "recovered within 20 s of the restart" \
    jtrue "$R" 'r.result.recovered === true && r.recovery.recovery_s > 0 && r.recovery.recovery_s <= 20'
check "every sidecar holds a new SVID after the recovery" \
    jtrue "$R" 'r.sidecars.length === 5 && r.sidecars.every(s => s.expired_in_outage &&
                s.svid_at_end.serial !== s.outage_svid.serial && s.renewed_at > r.events.meshd_restarted_at)'
check "no request failed after the recovery" jtrue "$R" 'r.requests.failed_after_recovery === 0'
check "the verdicts say so" \
    jtrue "$R" 'r.verdicts.filter(v => v.pass === true).map(v => v.id).join() ===
                "zero_failures_before_expiry,fail_closed,recovered"'
check "the timeline adds up to the totals" \
    jtrue "$R" 'r.timeline.reduce((a, s) => a + s.ok, 0) === r.requests.ok &&
                r.timeline.reduce((a, s) => a + s.failed, 0) === r.requests.failed'
check "the timeline walks through every phase in order" \
    jtrue "$R" '[...new Set(r.timeline.map(s => s.phase))].join() === "steady,outage,expired,recovery,recovered"'
check "meshd was up before the kill, down in the outage, up at the end" \
    jtrue "$R" 'r.timeline.every(s => s.t + 1 <= r.events.meshd_killed_at ? s.meshd_up
                : s.t >= r.events.meshd_killed_at && s.t + 1 <= r.events.meshd_restarted_at ? !s.meshd_up
                : true) && r.timeline[r.timeline.length - 1].meshd_up'
rows=$(($(wc -l <"$D/r1.csv") - 1))
check "the CSV has one row per second of the timeline ($rows)" \
    test "$rows" = "$(jget "$R" 'r.timeline.length')"
check_out "the CSV header starts with the documented columns" "t,phase,ok,failed,min_budget_s,meshd_up" \
    head -n 1 "$D/r1.csv"
check "the CSV shows failed requests in the expired phase" \
    awk -F, '$2 == "expired" && $4 > 0 { found = 1 } END { exit !found }' "$D/r1.csv"
check_out "the SVG is an SVG" "<svg xmlns=\"http://www.w3.org/2000/svg\"" head -n 2 "$D/r1.svg"
check "the SVG is complete" sh -c "tail -n 1 '$D/r1.svg' | grep -qx '</svg>'"
if command -v python3 >/dev/null 2>&1; then
    check "the SVG is well-formed XML" python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$D/r1.svg"
fi
check_out "the SVG marks the kill" "meshd killed" cat "$D/r1.svg"
check_out "the sidecars logged that they refused mTLS with an expired SVID" "refusing mTLS" \
    sh -c "cat '$D'/run1/sc-*.log"
check "meshd was started twice (meshd-1.log, meshd-2.log)" \
    test -s "$D/run1/meshd-1.log" -a -s "$D/run1/meshd-2.log"
check_out "the terminal showed the kill" "meshd killed (SIGKILL)" cat "$D/run1.out"
check_out "the terminal showed the verdict" "PASS  traffic survived the outage with zero failed requests until expiry" \
    cat "$D/run1.out"
check "no drill process is left" no_process_with "$D/run1/"
check "the store named by MESHD_DB was not touched" test ! -e "$MESHD_DB"
check "join tokens stay out of the terminal output" sh -c "! grep -q mjt_ '$D/run1.out'"
check "token files are 0600" test "$(stat -c %a "$D/run1/tokens/client-1.token")" = 600
out=$("$M" drill --dir "$D/run1" --quiet 2>&1)
rc=$?
check "a --dir holding a drill is refused with exit 1 (got $rc)" test "$rc" -eq 1
check_out "and says why" "already holds a drill" printf '%s' "$out"

echo "drill: an outage shorter than the budget, an unmet expectation, --output json"
"$M" --output json drill --sidecars 2 --ttl 10s --kill-after 2s --outage 2s --rate 40 \
    --reconnect-max 1s --dir "$D/run2" --expect-zero-failures-before-expiry \
    --expect-budget-at-least 1h >"$D/r2.json" 2>"$D/run2.err"
rc=$?
check "an unmet expectation exits 3 (got $rc)" test "$rc" -eq 3
R2="$D/r2.json"
check "stdout is the JSON report" jtrue "$R2" 'r.drill.client_sidecars === 2'
check "the unmet expectation is named" \
    jtrue "$R2" 'r.expectations.find(e => e.flag === "--expect-budget-at-least 1h").met === false'
check "the met one is met" \
    jtrue "$R2" 'r.expectations.find(e => e.flag === "--expect-zero-failures-before-expiry").met === true'
check "no request failed at all: no SVID expired in a 2 s outage" \
    jtrue "$R2" 'r.requests.failed === 0 && r.outage.every_svid_expired === false && r.events.first_expiry_at === null'
check "the sidecars kept their SVIDs and recovered" \
    jtrue "$R2" 'r.result.recovered === true && r.sidecars.every(s => !s.expired_in_outage)'
check_out "progress went to stderr" "NOT MET  --expect-budget-at-least" cat "$D/run2.err"

echo "drill: SIGINT"
"$M" drill --sidecars 2 --ttl 20s --kill-after 30s --dir "$D/run3" --json "$D/r3.json" \
    >"$D/run3.out" 2>&1 &
drill_pid=$!
started() { grep -q "starting traffic" "$D/run3.out"; }
check "the drill starts" wait_for 20 started
sleep 1
kill -INT "$drill_pid"
wait "$drill_pid"
rc=$?
check "SIGINT: exit 130 (got $rc)" test "$rc" -eq 130
check "SIGINT: no drill process is left" no_process_with "$D/run3/"
check "SIGINT: a partial report says interrupted" jtrue "$D/r3.json" 'r.result.interrupted === true'

echo "drill: target mode"
TDB="$D/target/meshd.db"
mkdir -p "$D/target"
check "a staging store with a CA" "$M" --db "$TDB" ca init --trust-domain staging.example
check "and an operator's workload" "$M" --db "$TDB" workload add spiffe://staging.example/ns/prod/sa/real
TP=$(free_port)
START="'$MESH_BIN/meshd' --db '$TDB' --listen 127.0.0.1:$TP --svid-ttl 10s >>'$D/target/meshd.log' 2>&1 & echo \$! >'$D/target/meshd.pid'"
KILL="kill -9 \$(cat '$D/target/meshd.pid')"
sh -c "$START"
E2E_PIDS+=("$(cat "$D/target/meshd.pid")")   # stopped by e2e_cleanup whatever happens
check "the operator's meshd is up" wait_port "$TP" 10
"$M" --db "$TDB" drill --target "127.0.0.1:$TP" --kill-cmd "$KILL" --start-cmd "$START" \
    --sidecars 2 --kill-after 2s --rate 30 --reconnect-max 1s --dir "$D/run4" --json "$D/r4.json" \
    --expect-zero-failures-before-expiry --expect-fail-closed --expect-recovery-within 20s \
    >"$D/run4.out" 2>&1
rc=$?
E2E_PIDS+=("$(cat "$D/target/meshd.pid")")   # the one --start-cmd started
check "target mode: the drill met its expectations (exit $rc; run4.out)" test "$rc" -eq 0
check "target mode: the SVID lifetime is meshd's (10 s)" jtrue "$D/r4.json" 'r.drill.svid_ttl_s === 10'
check "target mode: expiry, fail-closed and recovery were observed" \
    jtrue "$D/r4.json" 'r.outage.every_svid_expired && r.requests.failed_before_expiry === 0 &&
                        r.requests.ok_after_every_svid_expired === 0 && r.result.recovered'
check "target mode: the drill's workloads carry its prefix" \
    jtrue "$D/r4.json" 'r.sidecars.every(s => /^drill[0-9]+-/.test(s.name))'
check "target mode: its registrations are gone, the operator's remains" \
    test "$("$M" --db "$TDB" --output json workload list | grep -o '"spiffe_id":"[^"]*"' | tr '\n' ' ')" \
    = '"spiffe_id":"spiffe://staging.example/ns/prod/sa/real" '
check "target mode: its config is gone" sh -c "! '$M' --db '$TDB' get | grep -q drill"
check "target mode: the operator's meshd runs on" sh -c "kill -0 \$(cat '$D/target/meshd.pid')"
check "target mode: no drill sidecar is left" no_process_with "$D/run4/"
out=$("$M" --db "$TDB" drill --target "127.0.0.1:$TP" --kill-cmd "echo no such unit >&2; exit 5" \
    --start-cmd "$START" --sidecars 1 --kill-after 1s --dir "$D/run5" 2>&1)
rc=$?
check "target mode: a failing --kill-cmd stops the drill with exit 1 (got $rc)" test "$rc" -eq 1
check_out "and says which command failed and why" "no such unit" printf '%s' "$out"
check "and its workloads are removed all the same" sh -c "! '$M' --db '$TDB' workload list | grep -q drill"

e2e_finish
