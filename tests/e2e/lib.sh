# tests/e2e/lib.sh — shared helpers for end-to-end tests (sourced, not run).
#
# Every e2e script: `. "$(dirname "$0")/lib.sh"`, then e2e_setup, then
# `check "what" cmd...` / `check_out "what" "expected substring" cmd...`, and
# finally `e2e_finish` (prints "N passed, N failed" and sets the exit code).
# Everything listens on 127.0.0.1 only; every started process is killed on exit.
# tests/e2e/README.md says what else is here and how to write a new test.

set -u
: "${MESH_BIN:?MESH_BIN must point at the directory of built binaries}"
E2E_PASSED=0
E2E_FAILED=0
E2E_PIDS=()
E2E_NAME=$(basename "$0" .sh)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CONF="$REPO/tests/conformance"   # the official Envoy protos (npm) and the node tools
M="$MESH_BIN/meshctl"
MD="$MESH_BIN/meshd"
XC="$MESH_BIN/mesh-xdsclient"

e2e_setup() {
    E2E_DIR=$(mktemp -d "/tmp/meshd-e2e-${E2E_NAME}-XXXXXX")
    D=$E2E_DIR
    export MESHD_DB="$E2E_DIR/meshd.db"
    trap e2e_cleanup EXIT
}

e2e_cleanup() {
    local pid
    for pid in "${E2E_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    sleep 0.2
    for pid in "${E2E_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "$E2E_FAILED" -eq 0 ] && [ -z "${E2E_KEEP:-}" ]; then
        rm -rf "$E2E_DIR"
    else
        echo "  (logs kept in $E2E_DIR)"
    fi
}

# start NAME CMD...: runs CMD in the background, logs to $E2E_DIR/NAME.log,
# remembers the pid in $LAST_PID and for cleanup.
start() {
    local name=$1
    shift
    "$@" >"$E2E_DIR/$name.log" 2>&1 &
    LAST_PID=$!
    E2E_PIDS+=("$LAST_PID")
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT.
wait_port() {
    local port=$1 limit=${2:-10} i=0
    while [ "$i" -lt $((limit * 10)) ]; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# wait_for SECONDS CMD...: until CMD succeeds.
wait_for() {
    local limit=$1 i=0
    shift
    while [ "$i" -lt $((limit * 10)) ]; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

pass() { E2E_PASSED=$((E2E_PASSED + 1)); echo "  ok   $1"; }
fail() { E2E_FAILED=$((E2E_FAILED + 1)); echo "  FAIL $1"; [ $# -gt 1 ] && echo "       $2"; return 0; }

# check "description" CMD...: passes when CMD exits 0.
check() {
    local what=$1
    shift
    local out
    if out=$("$@" 2>&1); then
        pass "$what"
    else
        fail "$what" "$(printf '%s' "$out" | tail -n 5)"
    fi
}

# check_fails "description" CMD...: passes when CMD exits non-zero.
check_fails() {
    local what=$1
    shift
    local out
    if out=$("$@" 2>&1); then
        fail "$what" "expected failure, got success: $(printf '%s' "$out" | tail -n 3)"
    else
        pass "$what"
    fi
}

# check_out "description" "substring" CMD...: CMD succeeds and its output contains substring.
check_out() {
    local what=$1 want=$2
    shift 2
    local out
    if out=$("$@" 2>&1) && printf '%s' "$out" | grep -qF -- "$want"; then
        pass "$what"
    else
        fail "$what" "wanted '$want' in: $(printf '%s' "$out" | tail -n 5)"
    fi
}

# check_err "description" "substring" CMD...: CMD fails and says substring.
check_err() {
    local what=$1 want=$2
    shift 2
    local out
    if out=$("$@" 2>&1); then
        fail "$what" "expected failure, got success"
    elif printf '%s' "$out" | grep -qF -- "$want"; then
        pass "$what"
    else
        fail "$what" "wanted '$want' in: $(printf '%s' "$out" | tail -n 5)"
    fi
}

# Stops every started process (SIGTERM, then SIGKILL after 5 s) so that
# sanitizer builds get to print their exit-time reports.
e2e_stop_all() {
    local pid i
    for pid in "${E2E_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${E2E_PIDS[@]}"; do
        i=0
        while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    E2E_PIDS=()
}

e2e_finish() {
    # Under `make asan` every process we started must also exit clean: an
    # AddressSanitizer, LeakSanitizer or UBSan report in any log is a failure.
    e2e_stop_all
    local reports
    reports=$(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
        "$E2E_DIR"/*.log "$E2E_DIR"/*/*.log 2>/dev/null)
    if [ -n "$reports" ]; then
        fail "no sanitizer reports in process logs" "$(echo $reports)"
    fi
    echo "$E2E_NAME: $E2E_PASSED passed, $E2E_FAILED failed"
    [ "$E2E_FAILED" -eq 0 ]
}

# --- a throwaway PostgreSQL ------------------------------------------------------
# e2e_pg_up WHAT: starts a PostgreSQL cluster in a temp dir on 127.0.0.1 (tests/pg/
# pg_start.sh, as an unprivileged user when root), creates database "mesh" and exports
# MESHD_DB as its URL; PG_DIR and PG_URL (the server's postgres database) are set, and
# the EXIT trap stops the server after e2e_cleanup and the caller's own e2e_pg_extra_cleanup
# (if defined). Without a PostgreSQL server, or if it cannot start, it ends the script:
# a skip ("WHAT were skipped") off CI, a failure in CI.
e2e_pg_cleanup() {
    declare -F e2e_pg_extra_cleanup >/dev/null && e2e_pg_extra_cleanup
    e2e_cleanup
    "$REPO/tests/pg/pg_stop.sh" "$PG_DIR" 2>/dev/null
    rm -rf "$PG_DIR"
}
e2e_pg_up() {
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        missing_dep "PostgreSQL server (tools/deps.sh installs postgresql)" \
            "no PostgreSQL server: $1 were skipped"
        e2e_finish
        exit
    fi
    PG_DIR=$(mktemp -d /tmp/meshd-e2e-pg-XXXXXX)
    trap e2e_pg_cleanup EXIT
    if ! PG_URL=$("$REPO/tests/pg/pg_start.sh" "$PG_DIR" 2>"$D/pg_start.log"); then
        fail "a throwaway PostgreSQL starts" "$(cat "$D/pg_start.log")"
        e2e_finish
        exit
    fi
    psql -q "$PG_URL" -c "CREATE DATABASE mesh" >/dev/null
    export MESHD_DB=${PG_URL%/postgres}/mesh
}

# --- node and the official Envoy protos ------------------------------------------

have_node() { command -v node >/dev/null 2>&1; }
# have_official_protos: node runs and tests/conformance holds its npm packages.
have_official_protos() { have_node && [ -d "$CONF/node_modules/@grpc/grpc-js-xds" ]; }

# missing_dep "what is needed" "skip note": a failed check in CI (CI=true), elsewhere
# only a note that the checks needing it were skipped.
missing_dep() {
    if [ "${CI:-}" = true ]; then
        fail "$1"
    else
        echo "  skip: $2"
    fi
}

npm_ci() { (cd "$CONF" && npm ci --no-audit --no-fund --loglevel=error); }

# need_node "name of the npm ci check": without node the script ends here (a failure in
# CI, a skip elsewhere); without tests/conformance/node_modules, `npm ci` fills it as a
# check of that name.
need_node() {
    if ! have_node; then
        missing_dep "node is installed (tools/deps.sh installs it)" "node not installed (run tools/deps.sh)"
        e2e_finish
        exit $?
    fi
    if [ ! -d "$CONF/node_modules/@grpc/grpc-js-xds" ]; then
        check "$1" npm_ci
    fi
}

# --- meshctl and meshd -------------------------------------------------------------

# ca_init [TRUST_DOMAIN]: a CA (example.org unless told) in $MESHD_DB, its bundle in
# $D/bundle.pem.
ca_init() {
    "$M" ca init --trust-domain "${1:-example.org}" >/dev/null || return 1
    "$M" ca bundle >"$D/bundle.pem"
}

# workload_add ID: registers ID and prints its join token.
workload_add() { "$M" workload add "$1" --output json | jq -r .token; }
# workload_token ID: mints a new join token for the registered ID and prints it.
workload_token() { "$M" workload token "$1" --output json | jq -r .token; }

# start_meshd NAME [ARGS...]: meshd on the store, listening on 127.0.0.1:$MESHD_PORT (a
# free port, chosen on the first call when unset), logging to NAME.log. Sets MESHD_PID,
# and S: the mesh-xdsclient options to reach it with the bundle from ca_init. It does not
# wait: follow it with `check "meshd listens" wait_port "$MESHD_PORT" 15`.
start_meshd() {
    local name=$1
    shift
    : "${MESHD_PORT:=$(free_port)}"
    start "$name" "$MD" --db "$MESHD_DB" --listen 127.0.0.1:"$MESHD_PORT" "$@"
    MESHD_PID=$LAST_PID
    S=(--server 127.0.0.1:"$MESHD_PORT" --bundle "$D/bundle.pem")
}

# enrol ID STATE_DIR [ARGS...]: registers ID and has mesh-xdsclient fetch its first SVID
# with the join token into $D/STATE_DIR (ARGS: more mesh-xdsclient options, e.g. --ttl).
enrol() {
    local id=$1 dir=$2
    shift 2
    "$XC" "${S[@]}" --token "$(workload_add "$id")" --id "$id" --state-dir "$D/$dir" \
        --no-stream "$@" >/dev/null
}

# not_running PID: the process is gone.
not_running() { ! kill -0 "$1" 2>/dev/null; }

# even_if_fails CMD...: runs CMD and succeeds whatever its exit status, for check_out on
# what a refused request prints.
even_if_fails() { "$@"; true; }

# write_web_api_mesh ROUTE_TIMEOUT [WEB_ALLOW [DB_ALLOW]]: $D/mesh.yaml for the xDS
# tests: services web and api with a workload each ($WEB and $API; web's outbound
# listener on 127.0.0.1:15101), a route to api with ROUTE_TIMEOUT, and api callable by
# $WEB. WEB_ALLOW (YAML list items) adds a rule for who may call web; DB_ALLOW adds a TCP
# service db, its workload spiffe://example.org/ns/demo/sa/db and who may call it.
write_web_api_mesh() {
    local timeout=$1 web_allow=${2:-} db_allow=${3:-}
    {
        echo "services:"
        echo "  - {name: web, protocol: http, port: 18080}"
        echo "  - {name: api, protocol: http, port: 18081}"
        if [ -n "$db_allow" ]; then echo "  - {name: db, protocol: tcp, port: 18432}"; fi
        cat <<EOF
workloads:
  - name: web-1
    spiffe_id: $WEB
    service: web
    inbound: 127.0.0.1:15001
    app: 127.0.0.1:18080
    outbound: 127.0.0.1:15101
  - name: api-1
    spiffe_id: $API
    service: api
    inbound: 127.0.0.1:15002
    app: 127.0.0.1:18081
EOF
        if [ -n "$db_allow" ]; then
            cat <<EOF
  - name: db-1
    spiffe_id: spiffe://example.org/ns/demo/sa/db
    service: db
    inbound: 127.0.0.1:15003
    app: 127.0.0.1:18432
EOF
        fi
        cat <<EOF
routes:
  - name: api
    rules:
      - match: {prefix: /}
        destinations: [{service: api, weight: 100}]
        timeout: $timeout
authorization:
  - {service: api, allow: [$WEB]}
EOF
        if [ -n "$web_allow" ]; then echo "  - {service: web, allow: [$web_allow]}"; fi
        if [ -n "$db_allow" ]; then echo "  - {service: db, allow: [$db_allow]}"; fi
    } >"$D/mesh.yaml"
}

# --- JSON, read with jq ------------------------------------------------------------

# json_true FILE FILTER: FILTER (jq) over the JSON document in FILE gives true. A filter
# that errors, gives nothing or gives anything else fails.
json_true() { [ "$(jq -r "$2" "$1" 2>&1)" = true ]; }
# json_is FILTER [JQ OPTIONS...]: the same for the JSON document on stdin; no input at all
# fails too (a bare `jq -e` passes on empty input).
json_is() {
    local filter=$1
    shift
    jq -ne "$@" "input | ($filter) == true" >/dev/null
}

# json_lines LOG FILTER [JQ OPTIONS...]: the lines of $D/LOG.log (of stdin if LOG is -)
# that are JSON objects for which FILTER (jq) is true, printed as they were written.
# Other lines (stderr in the same log, a line half written) are passed over.
# mesh-xdsclient prints a line per response ({"stream":0,"t_ms":..,"type":"LDS",..}) and
# per event ({"event":"certificate","auth":"token",..}).
json_lines() {
    local log=$1 filter=$2 file
    shift 2
    file=$D/$log.log
    [ "$log" = - ] && file=/dev/stdin
    jq -rR "$@" "select(any(fromjson? | objects | $filter; . == true))" "$file" 2>/dev/null
}
# count_where LOG FILTER [JQ OPTIONS...]: how many such lines.
count_where() { json_lines "$@" | wc -l; }
# logged LOG FILTER [JQ OPTIONS...]: at least one such line.
logged() { [ "$(count_where "$@")" -gt 0 ]; }

# count LOG TYPE: the responses of TYPE (LDS, SDS, ...) a client logged so far.
count() { count_where "$1" '.type == $t' --arg t "$2"; }
# at_least LOG TYPE N: the client logged at least N responses of TYPE.
at_least() { test "$(count "$1" "$2")" -ge "$3"; }
# has_types LOG TYPE...: the client logged at least one response of each TYPE.
has_types() {
    local log=$1 t
    shift
    for t in "$@"; do at_least "$log" "$t" 1 || return 1; done
}
# wait_count SECONDS LOG TYPE N: until LOG holds N responses of TYPE.
wait_count() { wait_for "$1" at_least "$2" "$3" "$4"; }
# last LOG TYPE: the last response line of TYPE.
last() { json_lines "$1" '.type == $t' --arg t "$2" | tail -n 1; }

# proxy_node NODE: NODE's row of `meshctl proxy-status --output json`, on one line.
proxy_node() { "$M" proxy-status --output json | jq -c --arg n "$1" '.[] | select(.node_id == $n)'; }
# synced NODE: how many xDS types NODE has ACKed at the version meshd sent last.
synced() {
    "$M" proxy-status --output json |
        jq --arg n "$1" '[.[] | select(.node_id == $n) | .types[] | select(.synced == true)] | length'
}
# node_connected NODE true|false: proxy-status shows NODE connected (or not).
node_connected() {
    "$M" proxy-status --output json |
        json_is 'any(.[]; .node_id == $n and .connected == $c)' --arg n "$1" --argjson c "$2"
}
