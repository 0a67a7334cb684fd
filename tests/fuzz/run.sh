#!/usr/bin/env bash
# tests/fuzz/run.sh — runs libFuzzer targets built by `make fuzz-build`.
#
#   FUZZ_BIN=build-fuzz/fuzz FUZZ_SECONDS=60 tests/fuzz/run.sh http_request csr ...
#
# Each target first replays its committed seed corpus (tests/fuzz/corpus/<t>/),
# then fuzzes for FUZZ_SECONDS. New inputs go to build-fuzz/corpus/<t>/ (not
# committed; copy the interesting ones into the seed corpus by hand), crashes
# to build-fuzz/crashes/<t>/. FUZZ_SMOKE=1 (make fuzz-smoke, make test) is the
# same with a few seconds per target and nothing kept. Exit status: 1 if any
# target crashed, leaked, timed out or ran out of memory.
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${FUZZ_BIN:?FUZZ_BIN is the directory of the built targets (make fuzz-build)}"
seconds=${FUZZ_SECONDS:-60}
out=$(dirname "$FUZZ_BIN")
failed=()
for t in "$@"; do
  bin=$FUZZ_BIN/$t
  seeds=tests/fuzz/corpus/$t
  if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
    echo "fuzz: $t: no target $bin or no seed corpus $seeds" >&2
    failed+=("$t")
    continue
  fi
  if [ "${FUZZ_SMOKE:-0}" = 1 ]; then
    work=$(mktemp -d)
  else
    work=$out/corpus/$t
    mkdir -p "$work"
  fi
  crashes=$out/crashes/$t
  mkdir -p "$crashes"
  log=$out/$t.log
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a blow-up.
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "${dict[@]}" "$work" "$seeds" \
    >"$log" 2>&1
  rc=$?
  [ "${FUZZ_SMOKE:-0}" = 1 ] && rm -rf "$work"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc) after ${runs:-?} runs; log $log, inputs in $crashes/" >&2
    grep -m3 -E 'ERROR|SUMMARY|runtime error' "$log" >&2
    failed+=("$t")
  else
    echo "fuzz: $t ok: ${runs:-?} runs in ${seconds}s, ${cov:-cov: ?}"
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
