#!/usr/bin/env bash
# tests/e2e/test_cli_durations.sh — every binary reads numbers and durations by
# the one rule of common/duration.h and common/cli.h: a whole number and a unit,
# a bare number in the unit the flag's help names (seconds, but milliseconds for
# meshd --poll-interval), and a refusal that names the flag. meshd used to have
# its own parser that took --svid-ttl " +5m" (meshctl refused it) and refused the
# documented --poll-interval 200.
. "$(dirname "$0")/lib.sh"
e2e_setup
B="$MESH_BIN"
M="$B/meshctl"
D="$E2E_DIR"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
ID=spiffe://example.org/ns/demo/sa/web

# usage_err "what" "expected text" CMD...: CMD exits 2 and says the text. A binary
# that accepts the value starts instead: the timeout stops it (and fails the check).
usage_err() {
    local what=$1 want=$2 out rc
    shift 2
    out=$(timeout 10 "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq 2 ] && printf '%s' "$out" | grep -qF -- "$want"; then
        pass "$what"
    else
        fail "$what" "exit $rc, wanted 2 and '$want' in: $(printf '%s' "$out" | tail -n 2)"
    fi
}

"$M" ca init --trust-domain example.org >/dev/null
"$M" workload add "$ID" >/dev/null
# meshd with a value it should refuse: were it accepted, meshd would serve here.
MD=("$B/meshd" --db "$MESHD_DB" --listen "127.0.0.1:$(free_port)")

echo "cli: ' +5m' is refused by every binary, naming the flag"
usage_err "meshd --svid-ttl ' +5m'" "--svid-ttl ' +5m' is not a duration" \
    "${MD[@]}" --svid-ttl " +5m"
usage_err "meshd --poll-interval ' +5m'" "--poll-interval ' +5m' is not a duration" \
    "${MD[@]}" --poll-interval " +5m"
usage_err "mesh-sidecar --drain-time ' +5m'" "--drain-time ' +5m' is not a duration" \
    "$B/mesh-sidecar" --meshd 127.0.0.1:1 --state-dir "$D/sc" --drain-time " +5m"
usage_err "mesh-sidecar --reconnect-max ' +5m'" "--reconnect-max ' +5m' is not a duration" \
    "$B/mesh-sidecar" --meshd 127.0.0.1:1 --state-dir "$D/sc" --reconnect-max " +5m"
usage_err "meshctl ca rotate --ttl ' +5m'" "--ttl ' +5m' is not a duration" "$M" ca rotate --ttl " +5m"
usage_err "meshctl workload token --token-ttl ' +5m'" "--token-ttl ' +5m' is not a duration" \
    "$M" workload token "$ID" --token-ttl " +5m"
usage_err "meshctl cert issue --ttl ' +5m'" "--ttl ' +5m' is not a duration" \
    "$M" cert issue --csr /dev/null --id "$ID" --ttl " +5m"
usage_err "meshctl drill --kill-after ' +5m'" "--kill-after ' +5m' is not a duration" \
    "$M" drill --dir "$D/never" --kill-after " +5m"
usage_err "meshctl drill --ttl ' +5m'" "--ttl ' +5m' is not a duration" \
    "$M" drill --dir "$D/never" --ttl " +5m"
usage_err "mesh-xdsclient --timeout ' +5m'" "--timeout ' +5m' is not a duration" \
    "$B/mesh-xdsclient" --anonymous --timeout " +5m"
check "nothing was created by a refused command line" test ! -e "$D/sc" -a ! -e "$D/never"

echo "cli: garbage and out-of-range values name their flag"
usage_err "meshd --svid-ttl 1.5h" "--svid-ttl" "${MD[@]}" --svid-ttl 1.5h
usage_err "meshd --svid-ttl 5s (below the CA's minimum)" "--svid-ttl '5s': must be between 10s" \
    "${MD[@]}" --svid-ttl 5s
usage_err "meshd --poll-interval soon" "--poll-interval 'soon' is not a duration" \
    "${MD[@]}" --poll-interval soon
usage_err "meshd --poll-interval 5 (5 ms, below 10ms)" "--poll-interval '5': must be between 10ms" \
    "${MD[@]}" --poll-interval 5
usage_err "meshd --poll-interval 200s (above 60s)" "--poll-interval '200s'" \
    "${MD[@]}" --poll-interval 200s
usage_err "meshd --workers ' 2'" "--workers ' 2'" "${MD[@]}" --workers " 2"
usage_err "meshd --rotate-fraction 0x1p-1" "--rotate-fraction" \
    "${MD[@]}" --rotate-fraction 0x1p-1
usage_err "mesh-sidecar --drain-time 6m" "--drain-time '6m': must be between 0s and 5m" \
    "$B/mesh-sidecar" --meshd 127.0.0.1:1 --state-dir "$D/sc" --drain-time 6m
usage_err "meshctl audit --limit lots" "--limit 'lots'" "$M" audit --limit lots
usage_err "meshctl workload token --token-ttl 0" "--token-ttl '0': must be at least 1s" \
    "$M" workload token "$ID" --token-ttl 0
usage_err "meshctl drill --request-timeout 1.5s" "--request-timeout" \
    "$M" drill --dir "$D/never" --request-timeout 1.5s
usage_err "mesh-xdsclient --streams 0" "--streams '0'" "$B/mesh-xdsclient" --anonymous --streams 0

echo "cli: a bare number counts in the flag's unit"
check_out "meshctl workload token --token-ttl 120 lasts 120 seconds" '"token":"mjt_' \
    "$M" workload token "$ID" --token-ttl 120 --output json
exp=$("$M" workload token "$ID" --token-ttl 120 --output json |
    sed -nE 's/.*"token_expires_at":"([^"]*)".*/\1/p')
left=$(( $(date -u -d "$exp" +%s) - $(date -u +%s) ))
check "the bare 120 is seconds (expires in ${left}s)" test "$left" -ge 100 -a "$left" -le 121

PORT=$(free_port)
start meshd "$B/meshd" --db "$MESHD_DB" --listen "127.0.0.1:$PORT" --poll-interval 200
check "meshd starts with --poll-interval 200 (documented as milliseconds)" wait_port "$PORT" 15
"$M" apply -f "$REPO/examples/mesh.yaml" >/dev/null
# Polling every 200 s would leave the change unseen; every 200 ms sees it at once.
check "meshd sees a config change within 3 s: it polls every 200 ms" \
    wait_for 3 grep -q "mesh config version 1 loaded" "$D/meshd.log"

e2e_finish
