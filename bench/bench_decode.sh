#!/usr/bin/env bash
# bench/bench_decode.sh — what meshd's unknown-group walk (common/pb_groups.c) adds to
# decoding a DiscoveryRequest, against protobuf-c's plain decode of the same bytes in the
# same run: an Envoy-sized ACK (~12 KB: Node with metadata and 150 extensions, as Envoy
# sends on every request), a small request, and the Envoy-sized one carrying unknown
# groups (the copy path). Writes its JSON to $BENCH_JSON.
#   20000 iterations (BENCH_QUICK=1: 2000); BENCH_DECODE_N overrides.
. "$(dirname "$0")/lib.sh"
bench_setup decode
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "$BENCH_QUICK" = 1 ]; then N=${BENCH_DECODE_N:-2000}; else N=${BENCH_DECODE_N:-20000}; fi

make -s -C "$ROOT" -f bench/Makefile BUILD="$BENCH_BUILD" "$BENCH_PROGS/bench_pb_groups" >&2 ||
    bench_skip "bench_pb_groups does not build (see the compiler output above)"
"$BENCH_PROGS/bench_pb_groups" "$N" >"$BW/lines" || exit 1
{
    echo "{"
    echo "  \"iterations\": $N,"
    sed 's/^{"shape": "\([a-z_]*\)", /"\1": {/; $! s/$/,/; s/^/  /' "$BW/lines"
    echo "}"
} >"$BW/decode.json"
cat "$BW/decode.json" >&2
[ -n "${BENCH_JSON:-}" ] && cp "$BW/decode.json" "$BENCH_JSON"
exit 0
