#!/usr/bin/env bash
# tests/e2e/test_cli_help.sh — the operator's first contact with the binaries:
# every meshctl command answers --help with 0, every binary answers --version,
# mistyped commands and flags get "did you mean", usage errors exit 2, and
# meshd refuses a listen port gRPC would silently replace.
. "$(dirname "$0")/lib.sh"
e2e_setup

# exit_is N CMD...: CMD exits with status N.
exit_is() {
    local want=$1
    shift
    "$@" >/dev/null 2>&1
    test $? -eq "$want"
}

echo "meshctl: help for every command"
for cmd in ca workload cert apply validate describe get delete proxy-status audit store drill version help; do
    check_out "meshctl $cmd --help exits 0 with usage" "usage: meshctl" "$M" "$cmd" --help
    check_out "meshctl help $cmd exits 0 with usage" "usage: meshctl" "$M" help "$cmd"
done
check_out "meshctl cert -h shows cert's flags" "cert revoke SERIAL" "$M" cert -h
check "cert --help does not show apply" bash -c "! '$M' cert --help | grep -q 'apply -f'"
check_out "meshctl apply --help names --dry-run" "--dry-run" "$M" apply --help
check_out "meshctl --help documents the exit status" "Exit status" "$M" --help
check "meshctl with no command exits 2" exit_is 2 "$M"
check "meshctl help (no command) exits 0" exit_is 0 "$M" help

echo "meshctl: version"
check_out "meshctl version names the release and revision" "meshctl 0." "$M" version
check_out "meshctl --version" "(git " "$M" --version
check_out "meshctl version -o json is JSON with the revision" "true" \
    bash -c "'$M' version -o json | jq -e '.version and .revision and .openssl and .grpc' "
check "meshctl version needs no store" env -u MESHD_DB "$M" version
for b in meshd mesh-sidecar mesh-testapp mesh-xdsclient; do
    check_out "$b --version exits 0" "$b 0." "$MESH_BIN/$b" --version
done

echo "meshctl: typos get a suggestion and exit 2"
check_err "a mistyped command" "did you mean 'proxy-status'?" "$M" proxy-stauts
check "a mistyped command exits 2" exit_is 2 "$M" proxy-stauts
check_err "a mistyped global option" "did you mean '--output'?" "$M" --ouput json ca show
check_err "a mistyped global option after the command" "did you mean '--output'?" \
    "$M" cert list --ouput json
check_err "a mistyped subcommand flag" "did you mean '--token-ttl'?" \
    "$M" workload token x --token-tll 1h
check "a mistyped flag exits 2" exit_is 2 "$M" workload token x --token-tll 1h
check_err "a flag without its value says so" "option '--reason' needs a value" \
    "$M" cert revoke 01 --reason
check_err "help for an unknown command" "did you mean 'audit'?" "$M" help adit
check_err "an unknown word gets no wild guess" "unknown command 'frobnicate'" "$M" frobnicate

echo "meshd and mesh-sidecar: flags"
ca_init
"$M" apply -f "$REPO/examples/mesh.yaml" >/dev/null
check_out "describe workload names its identity and callers" "May be called by" \
    "$M" describe workload backend-v2-1
check_out "describe workload -o json lists the routes to it" "100" \
    bash -c "'$M' -o json describe workload backend-v2-1 | jq '.routes[0].share_percent'"
check_err "describe of an unknown workload suggests one" 'did you mean "frontend-1"?' \
    "$M" describe workload frontend-2
check "describe of an unknown workload exits 1" exit_is 1 "$M" describe workload frontend-2
check "describe of another kind is a usage error" exit_is 2 "$M" describe pod x
P=$(free_port)
check_err "meshd --listen port 99999 is refused" "must be a number from 1 to 65535" \
    "$MD" --db "$MESHD_DB" --listen 127.0.0.1:99999
check "meshd --listen port 99999 exits 2" exit_is 2 "$MD" --db "$MESHD_DB" --listen 127.0.0.1:99999
check_err "meshd --listen needs an IP" "must be an IP address" "$MD" --db "$MESHD_DB" --listen nohost:$P
check_err "meshd flag typo" "did you mean '--svid-ttl'?" "$MD" --db "$MESHD_DB" --svid-tll 1h
check_err "meshd flag without value" "option '--workers' needs a value" "$MD" --db "$MESHD_DB" --workers
check_err "mesh-sidecar flag typo" "did you mean '--state-dir'?" \
    "$MESH_BIN/mesh-sidecar" --meshd 127.0.0.1:$P --stat-dir "$D/s"
# A port held by someone else: meshd says so and exits non-zero.
python3 -c "
import socket, time, sys
s = socket.socket(); s.bind(('127.0.0.1', $P)); s.listen(); time.sleep(30)" &
holder=$!
wait_port "$P" 5 || true
check_err "meshd on a port in use exits with a clear error" "cannot listen on 127.0.0.1:$P" \
    timeout 20 "$MD" --db "$MESHD_DB" --listen 127.0.0.1:$P
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
e2e_finish
