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

# report FILE FILTER: passes when the jq FILTER over the drill's JSON report is true.
# jq orders null below every number and lets null + 1 be 1, so fields that are compared
# go through `num` (or `text`), which fails the check when the field is missing or of
# another type.
REPORT_DEFS='def num: if type == "number" then . else error("not a number: \(tojson)") end;
             def text: if type == "string" then . else error("not a string: \(tojson)") end;'
report() { json_true "$1" "$REPORT_DEFS $2"; }
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
usage_case "a mistyped option gets a suggestion" "did you mean '--sidecars'" --sidcars 2
usage_case "a stray argument is refused" "unexpected argument" now
usage_case "a missing option value is refused" "needs a value" --ttl
usage_case "--ports needs LO-HI" "give LO-HI" --ports 40000
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
    --dir "$D/run1" --json "$D/r1.json" --csv "$D/r1.csv" --svg "$D/r1.svg" --ports 41000-41999 \
    --expect-zero-failures-before-expiry --expect-fail-closed --expect-recovery-within 20s \
    >"$D/run1.out" 2>&1
rc=$?
check "the drill met its expectations (exit 0; output in run1.out)" test "$rc" -eq 0
R="$D/r1.json"
check "the JSON report was written" test -s "$R"
check "the outage was observed" report "$R" '.result.outage_observed == true'
check "no request failed before the first SVID expired" \
    report "$R" '.requests.failed_before_expiry == 0'
check "traffic flowed while meshd was down and SVIDs were valid" \
    report "$R" '.requests.ok_in_outage_before_expiry > 100'
check "the first expiry came after the kill, inside the TTL" \
    report "$R" '.events | (.first_expiry_at | num) > (.meshd_killed_at | num) and
                              .first_expiry_at < .meshd_killed_at + 15.5'
check "the outage budget at the kill is between 1 s and the TTL" \
    report "$R" '.outage | .budget_at_kill_min_s >= 1 and (.budget_at_kill_max_s | num) <= 15'
check "who expires first is data, not prose (budget_min_sidecars lists names)" \
    report "$R" '.outage.budget_min_sidecars | length >= 1 and all(.[]; type == "string" and test("^(client|server)-"))'
check "every port came from --ports 41000-41999" \
    report "$R" '[.sidecars[] | .admin_port, (.outbound_port // empty)] | all(. >= 41000 and . <= 41999)'
check "requests failed after the expiry" report "$R" '.requests.failed_while_expired > 0'
check "none succeeded once every SVID had expired (fail closed)" \
    report "$R" '.outage.every_svid_expired == true and .requests.ok_after_every_svid_expired == 0'
check "the failures were answered by the sidecars (503), not timeouts" \
    report "$R" '.requests.failures | .http_503 > 0 and .timeout == 0'
check "meshd was restarted after the last expiry" \
    report "$R" '.events | .meshd_restarted_at > (.last_expiry_at | num)'
check "recovered within 20 s of the restart" \
    report "$R" '.result.recovered == true and .recovery.recovery_s > 0 and .recovery.recovery_s <= 20'
check "every sidecar holds a new SVID after the recovery" \
    report "$R" '(.sidecars | length) == 5 and ((.events.meshd_restarted_at | num) as $restart |
                all(.sidecars[]; .expired_in_outage == true and
                    (.svid_at_end.serial | text) != (.outage_svid.serial | text) and .renewed_at > $restart))'
check "no request failed after the recovery" report "$R" '.requests.failed_after_recovery == 0'
check "the verdicts say so" \
    report "$R" '[.verdicts[] | select(.pass == true) | .id] | join(",") ==
                "zero_failures_before_expiry,fail_closed,recovered"'
check "the timeline adds up to the totals" \
    report "$R" 'reduce .timeline[].ok as $n (0; . + ($n | num)) == .requests.ok and
                reduce .timeline[].failed as $n (0; . + ($n | num)) == .requests.failed'
check "the timeline walks through every phase in order" \
    report "$R" 'reduce .timeline[].phase as $p ([]; if index([$p]) then . else . + [$p] end) | join(",") ==
                "steady,outage,expired,recovery,recovered"'
check "meshd was up before the kill, down in the outage, up at the end" \
    report "$R" '(.events.meshd_killed_at | num) as $kill | (.events.meshd_restarted_at | num) as $restart |
                all(.timeline[]; (.t | num) as $t |
                    if $t + 1 <= $kill then .meshd_up == true
                    elif $t >= $kill and $t + 1 <= $restart then .meshd_up == false
                    else true end) and .timeline[-1].meshd_up == true'
rows=$(($(wc -l <"$D/r1.csv") - 1))
check "the CSV has one row per second of the timeline ($rows)" \
    test "$rows" = "$(jq '.timeline | length' "$R")"
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
check "stdout is the JSON report" report "$R2" '.drill.client_sidecars == 2'
check "the unmet expectation is named" \
    report "$R2" 'first(.expectations[] | select(.flag == "--expect-budget-at-least 1h")).met == false'
check "the met one is met" \
    report "$R2" 'first(.expectations[] | select(.flag == "--expect-zero-failures-before-expiry")).met == true'
check "no request failed at all: no SVID expired in a 2 s outage" \
    report "$R2" '.requests.failed == 0 and .outage.every_svid_expired == false and
                  (.events | has("first_expiry_at") and .first_expiry_at == null)'
check "the sidecars kept their SVIDs and recovered" \
    report "$R2" '.result.recovered == true and all(.sidecars[]; .expired_in_outage | not)'
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
check "SIGINT: a partial report says interrupted" report "$D/r3.json" '.result.interrupted == true'

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
check "target mode: the SVID lifetime is meshd's (10 s)" report "$D/r4.json" '.drill.svid_ttl_s == 10'
check "target mode: expiry, fail-closed and recovery were observed" \
    report "$D/r4.json" '.outage.every_svid_expired == true and .requests.failed_before_expiry == 0 and
                         .requests.ok_after_every_svid_expired == 0 and .result.recovered == true'
check "target mode: the drill's workloads carry its prefix" \
    report "$D/r4.json" 'all(.sidecars[]; .name | test("^drill[0-9]+-"))'
check "target mode: its registrations are gone, the operator's remains" \
    test "$("$M" --db "$TDB" --output json workload list | jq -r '[.[].spiffe_id] | join(" ")')" \
    = spiffe://staging.example/ns/prod/sa/real
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
