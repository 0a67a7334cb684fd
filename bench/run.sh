#!/usr/bin/env bash
# bench/run.sh — every benchmark, a summary table, and one JSON file of results.
#
#   make bench                                  (sets MESH_BIN=build/bin)
#   MESH_BIN=build/bin bench/run.sh [issue|fanout|dataplane|decode ...]
#   BENCH_QUICK=1 MESH_BIN=build/bin bench/run.sh   smoke sizes, under a minute
#
# Installs the bench tools first (MESHD_DEPS_BENCH=1 tools/deps.sh: haproxy,
# wrk, valgrind), then runs bench_issue.sh, bench_fanout.sh,
# bench_dataplane.sh and bench_decode.sh. A part whose binaries or tools are missing is skipped
# with the reason; the others still run. Every figure comes with a reference
# measured in the same invocation (see docs/benchmarks.md). Results:
# $BUILD/bench-results/latest.json (also printed) plus a dated copy.
# Exit status: 0 if every part ran or was skipped, 1 if one failed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
: "${MESH_BIN:?MESH_BIN must point at the directory of built binaries (make bench sets it)}"
MESH_BIN=$(cd "$MESH_BIN" && pwd)
export MESH_BIN
export BENCH_BUILD=${BENCH_BUILD:-$(dirname "$MESH_BIN")}
export BENCH_QUICK=${BENCH_QUICK:-0}
PARTS=("$@")
[ ${#PARTS[@]} -eq 0 ] && PARTS=(issue fanout dataplane decode)

echo "== bench: deps (MESHD_DEPS_BENCH=1 tools/deps.sh)"
if ! MESHD_DEPS_BENCH=1 "$ROOT/tools/deps.sh"; then
    echo "bench: tools/deps.sh failed; parts needing a missing tool will be skipped" >&2
fi

OUT="$BENCH_BUILD/bench-results"
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
PARTS_DIR="$OUT/parts-$STAMP"
mkdir -p "$PARTS_DIR"

echo "== bench: building the bench programs"
if ! make -s -C "$ROOT" -f bench/Makefile BUILD="$BENCH_BUILD" bench-progs; then
    echo "bench: the bench programs do not build; issuance and fan-out will be skipped" >&2
fi

declare -A STATUS SECONDS_TAKEN
t_all=$(date +%s)
for part in "${PARTS[@]}"; do
    script="$HERE/bench_$part.sh"
    if [ ! -x "$script" ]; then
        echo "bench: unknown part '$part' (issue, fanout, dataplane, decode)" >&2
        STATUS[$part]=failed
        continue
    fi
    echo
    echo "== bench: $part$([ "$BENCH_QUICK" = 1 ] && echo " (quick)")"
    t0=$(date +%s)
    BENCH_JSON="$PARTS_DIR/$part.json" "$script"
    rc=$?
    SECONDS_TAKEN[$part]=$(($(date +%s) - t0))
    case $rc in
    0) STATUS[$part]=ok ;;
    77) STATUS[$part]="skipped: $(cat "$PARTS_DIR/$part.json.skip" 2>/dev/null || echo "see above")" ;;
    *) STATUS[$part]=failed; echo "bench: $part FAILED (exit $rc)" >&2 ;;
    esac
done
total_s=$(($(date +%s) - t_all))

# ---- summary ------------------------------------------------------------------------------
# line_of FILE KEY: the line of FILE holding "KEY": (each phase/run/setup is one line).
line_of() { grep -m1 "\"$2\":" "$1" 2>/dev/null; }
# field LINE KEY: the value of "KEY": in LINE.
field() { sed -n "s/.*\"$2\": \([^,}]*\).*/\1/p" <<<"$1" | head -1 | tr -d '"'; }

echo
echo "== bench: summary ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)$([ "$BENCH_QUICK" = 1 ] && echo ", QUICK sizes"))"
printf '  %-38s %-40s %s\n' "figure" "value" "vs same-run reference"
f="$PARTS_DIR/issue.json"
if [ "${STATUS[issue]:-}" = ok ]; then
    ref=$(line_of "$f" ref)
    ceil=$(field "$ref" ceiling_per_s_per_core)
    for k in disk_1t disk_mt tmpfs_1t tmpfs_mt; do
        l=$(line_of "$f" "$k")
        [ -n "$l" ] || continue
        printf '  %-38s %-40s %s\n' "issuance $k (SVIDs/s)" \
            "$(field "$l" per_s) (p99 $(field "$l" p99_ms) ms)" \
            "$(field "$l" ratio_to_ceiling) of openssl verify+sign ceiling ($ceil/s/core x $(field "$l" threads))"
    done
    sp=$(line_of "$f" split_ms)
    printf '  %-38s %-40s %s\n' "issuance cost split (ms/SVID)" \
        "check $(field "$sp" csr_check) sign+db $(field "$sp" sign_store_cpu) fsync $(field "$sp" durability)" \
        "of $(field "$sp" total_disk) on disk (tmpfs run minus disk run)"
    pr=$(line_of "$f" profile_ir_share_pct)
    if [ -n "$pr" ]; then
        printf '  %-38s %-40s %s\n' "issuance CPU by instructions (%)" \
            "ECDSA verify $(field "$pr" ecdsa_verify) sign $(field "$pr" ecdsa_sign)" \
            "OpenSSL key (de)coder set-up $(awk -v a="$(field "$pr" ossl_decoder_setup)" -v b="$(field "$pr" ossl_encoder_setup)" 'BEGIN {print a + b}'), SQLite $(field "$pr" store), other $(field "$pr" other)"
    fi
else
    printf '  %-38s %s\n' "issuance" "${STATUS[issue]:-not run}"
fi
f="$PARTS_DIR/fanout.json"
if [ "${STATUS[fanout]:-}" = ok ]; then
    grep '"streams":' "$f" | while read -r l; do
        n=$(field "$l" streams)
        if [ -n "$(field "$l" error)" ]; then
            printf '  %-38s %s\n' "fan-out N=$n" "$(field "$l" error)"
            continue
        fi
        printf '  %-38s %-40s %s\n' "fan-out N=$n push p50/p99 (ms)" \
            "$(field "$l" push_p50_ms) / $(field "$l" push_p99_ms) (spread $(field "$l" push_spread_median_ms))" \
            "x$(field "$l" ratio_push_initial_p50)/x$(field "$l" ratio_push_initial_p99) of initial config p50/p99"
        printf '  %-38s %-40s %s\n' "fan-out N=$n meshd memory" "$(field "$l" rss_per_stream_kb) KB/stream" \
            "all ACKed in proxy-status after $(field "$l" acked_all_median_ms) ms; x$(field "$l" ratio_push_vs_1_stream_p50) of N=1 push p50"
    done
else
    printf '  %-38s %s\n' "fan-out" "${STATUS[fanout]:-not run}"
fi
f="$PARTS_DIR/dataplane.json"
if [ "${STATUS[dataplane]:-}" = ok ]; then
    for s in direct sidecar haproxy; do
        l=$(line_of "$f" "$s")
        [ -n "$l" ] || { printf '  %-38s %s\n' "data plane $s" "not run"; continue; }
        ref=""
        case $s in
        sidecar) ref="x$(field "$(line_of "$f" ratio_rps_sidecar_direct)" ratio_rps_sidecar_direct) of direct, x$(field "$(line_of "$f" ratio_rps_sidecar_haproxy)" ratio_rps_sidecar_haproxy) of haproxy" ;;
        haproxy) ref="x$(field "$(line_of "$f" ratio_rps_haproxy_direct)" ratio_rps_haproxy_direct) of direct" ;;
        esac
        printf '  %-38s %-40s %s\n' "data plane $s req/s (p50/p99 ms)" \
            "$(field "$l" rps) ($(field "$l" p50_ms)/$(field "$l" p99_ms))" "$ref"
    done
    printf '  %-38s %-40s\n' "added latency p50/p99 (ms)" \
        "sidecar $(field "$(line_of "$f" added_p50_ms_sidecar)" added_p50_ms_sidecar)/$(field "$(line_of "$f" added_p99_ms_sidecar)" added_p99_ms_sidecar), haproxy $(field "$(line_of "$f" added_p50_ms_haproxy)" added_p50_ms_haproxy)/$(field "$(line_of "$f" added_p99_ms_haproxy)" added_p99_ms_haproxy)"
else
    printf '  %-38s %s\n' "data plane" "${STATUS[dataplane]:-not run}"
fi

f="$PARTS_DIR/decode.json"
if [ "${STATUS[decode]:-}" = ok ]; then
    for s in small envoy_ack envoy_ack_with_groups; do
        l=$(line_of "$f" "$s")
        [ -n "$l" ] || continue
        printf '  %-38s %-40s %s\n' "DiscoveryRequest decode $s (ns)" \
            "$(field "$l" pb_unpack_ns) ($(field "$l" bytes) bytes; walk $(field "$l" walk_ns))" \
            "x$(field "$l" ratio_pb_unpack_to_plain) of protobuf-c's plain decode ($(field "$l" plain_ns))"
    done
else
    printf '  %-38s %s\n' "decode" "${STATUS[decode]:-not run}"
fi

# ---- one JSON document --------------------------------------------------------------------
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
latest="$OUT/latest.json"
{
    echo "{"
    echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
    echo "  \"quick\": $([ "$BENCH_QUICK" = 1 ] && echo true || echo false),"
    echo "  \"machine\": {\"cores\": $(nproc), \"cpu\": $(json_str "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"), \"kernel\": $(json_str "$(uname -r)"), \"openssl\": $(json_str "$(openssl version 2>/dev/null)")},"
    echo "  \"total_seconds\": $total_s,"
    printf '  "status": {'
    i=0
    for part in "${PARTS[@]}"; do
        [ $i -gt 0 ] && printf ', '
        printf '"%s": {"result": %s, "seconds": %s}' "$part" "$(json_str "${STATUS[$part]:-failed}")" "${SECONDS_TAKEN[$part]:-0}"
        i=$((i + 1))
    done
    echo "},"
    i=0
    for part in "${PARTS[@]}"; do
        i=$((i + 1))
        printf '  "%s": ' "$part"
        if [ "${STATUS[$part]:-}" = ok ] && [ -s "$PARTS_DIR/$part.json" ]; then
            sed '1!s/^/  /' "$PARTS_DIR/$part.json" | sed '$ s/[[:space:]]*$//' | tr -d '\r' | awk '{a[NR] = $0} END {for (j = 1; j <= NR; j++) printf "%s%s", a[j], (j < NR ? "\n" : "")}'
        else
            printf 'null'
        fi
        [ $i -lt ${#PARTS[@]} ] && echo "," || echo
    done
    echo "}"
} >"$latest"
cp "$latest" "$OUT/results-$STAMP.json"
rm -rf "$PARTS_DIR"
echo
echo "== bench: results in $latest (total ${total_s}s)"
cat "$latest"

for part in "${PARTS[@]}"; do
    [ "${STATUS[$part]:-failed}" = failed ] && exit 1
done
exit 0
