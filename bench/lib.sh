# bench/lib.sh — shared helpers for the benchmark scripts (sourced, not run).
#
# Each bench script: `. "$(dirname "$0")/lib.sh"`, then bench_setup NAME. It
# gets $BW (a fresh work directory on the build disk, removed on exit unless
# BENCH_KEEP=1), $BENCH_PROGS (bench_issue, bench_stamp), bstart/bstop for
# background processes (all killed on exit), port and statistics helpers, and
# bench_skip for a part that cannot run (exit 77, with the reason).
#
# Environment: MESH_BIN (required: the built binaries), BENCH_QUICK=1 (smoke
# sizes), BENCH_JSON=FILE (where the script writes its JSON result),
# BENCH_KEEP=1 (keep the work directory and logs). Only 127.0.0.1 is used.

set -u
: "${MESH_BIN:?MESH_BIN must point at the directory of built binaries (make bench sets it)}"
MESH_BIN=$(cd "$MESH_BIN" && pwd)
BENCH_BUILD=${BENCH_BUILD:-$(dirname "$MESH_BIN")}
# shellcheck disable=SC2034  # used by the scripts that source this file
BENCH_PROGS="$BENCH_BUILD/bench"
BENCH_QUICK=${BENCH_QUICK:-0}
BENCH_PIDS=()
BENCH_SKIP=77

bench_setup() {
    BENCH_NAME=$1
    # On the build disk, not /tmp: /tmp can be tmpfs, which would hide fsync costs.
    mkdir -p "$BENCH_BUILD/bench-work"
    BW=$(mktemp -d "$BENCH_BUILD/bench-work/$BENCH_NAME-XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${BENCH_PIDS[@]}"; do
        bench_wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "  ($BENCH_NAME: work directory and logs kept in $BW)" >&2
    else
        rm -rf "$BW"
    fi
}

# bench_skip REASON: this part cannot run here; run.sh shows REASON in its summary.
bench_skip() {
    echo "$BENCH_NAME: SKIPPED: $*" >&2
    [ -n "${BENCH_JSON:-}" ] && printf '%s\n' "$*" >"$BENCH_JSON.skip"
    exit "$BENCH_SKIP"
}

# bench_need_bin NAME...: skip unless $MESH_BIN/NAME exists for each.
bench_need_bin() {
    local b
    for b in "$@"; do
        [ -x "$MESH_BIN/$b" ] || bench_skip "$MESH_BIN/$b is not built"
    done
}

# bstart NAME CMD...: CMD in the background, output in $BW/NAME.log; pid in $LAST_PID.
bstart() {
    local name=$1
    shift
    "$@" >"$BW/$name.log" 2>&1 &
    LAST_PID=$!
    BENCH_PIDS+=("$LAST_PID")
}

# bench_wait_gone PID TENTHS: until PID has exited (at most TENTHS x 0.1 s).
bench_wait_gone() {
    local pid=$1 limit=$2 i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt "$limit" ]; do
        sleep 0.1
        i=$((i + 1))
    done
    ! kill -0 "$pid" 2>/dev/null
}

# bstop PID: SIGTERM, wait up to 3 s, then SIGKILL.
bstop() {
    kill -TERM "$1" 2>/dev/null
    bench_wait_gone "$1" 30 || kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# bench_port VAR: a free port on 127.0.0.1 below the kernel's ephemeral range
# (32768+), never handed out twice in one run; set in this shell (not $(...)).
BENCH_PORTS=" "
bench_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        case "$BENCH_PORTS" in *" $p "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            BENCH_PORTS="$BENCH_PORTS$p "
            printf -v "$1" '%s' "$p"
            return
        fi
    done
}

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT.
wait_port() {
    local port=$1 limit=${2:-10} i=0
    while [ "$i" -lt $((limit * 10)) ]; do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# wait_for SECONDS CMD...: until CMD succeeds (polled every 0.1 s).
wait_for() {
    local limit=$1 i=0
    shift
    while [ "$i" -lt $((limit * 10)) ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

now_us() { echo $(($(date +%s%N) / 1000)); }

# proc_rss_kb PID: resident set size in KiB.
proc_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# proc_cpu_ms PID: user+system CPU time of the whole process (all threads) in ms.
proc_cpu_ms() {
    local tck
    tck=$(getconf CLK_TCK)
    # Field 2 (comm) may hold spaces; count from after its closing parenthesis.
    sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null |
        awk -v t="$tck" '{printf "%d\n", ($12 + $13) * 1000 / t}'
}

# pctl P < numbers: nearest-rank percentile P (0-100) of the numbers on stdin.
pctl() {
    sort -g | awk -v p="$1" '{v[NR] = $1} END {
        if (NR == 0) { print "null"; exit }
        k = int(p / 100 * NR + 0.999999); if (k < 1) k = 1; if (k > NR) k = NR; print v[k] }'
}

# fdiv A B [DIGITS]: A / B, or null when B is 0 or either is null/empty.
fdiv() {
    awk -v a="${1:-}" -v b="${2:-}" -v d="${3:-3}" 'BEGIN {
        if (a == "" || b == "" || a == "null" || b == "null" || b + 0 == 0) print "null";
        else printf "%.*f\n", d, a / b }'
}

# bench_info MSG: progress on stderr, so stdout stays the report.
bench_info() { echo "  [$BENCH_NAME] $*" >&2; }
