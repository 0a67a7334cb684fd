# tests/e2e/lib.sh — shared helpers for end-to-end tests (sourced, not run).
#
# Every e2e script: `. "$(dirname "$0")/lib.sh"`, then e2e_setup, then
# `check "what" cmd...` / `check_out "what" "expected substring" cmd...`, and
# finally `e2e_finish` (prints "N passed, N failed" and sets the exit code).
# Everything listens on 127.0.0.1 only; every started process is killed on exit.

set -u
: "${MESH_BIN:?MESH_BIN must point at the directory of built binaries}"
E2E_PASSED=0
E2E_FAILED=0
E2E_PIDS=()
E2E_NAME=$(basename "$0" .sh)

e2e_setup() {
    E2E_DIR=$(mktemp -d "/tmp/meshd-e2e-${E2E_NAME}-XXXXXX")
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
