#!/usr/bin/env bash
# tests/e2e/run.sh — runs every tests/e2e/test_*.sh (or those named) and sums their results.
# Each script prints "<name>: N passed, N failed" last and exits non-zero on failure.
set -u
cd "$(dirname "$0")"
: "${MESH_BIN:?set MESH_BIN to the directory of built binaries}"
total_pass=0
total_fail=0
failed_scripts=()
scripts=("$@")
[ ${#scripts[@]} -eq 0 ] && scripts=(test_*.sh)
for t in "${scripts[@]}"; do
    [ -f "$t" ] || continue
    echo "== $t"
    out=$(bash "$t" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    p=$(printf '%s' "$line" | sed -nE 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1/p')
    f=$(printf '%s' "$line" | sed -nE 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\2/p')
    total_pass=$((total_pass + ${p:-0}))
    total_fail=$((total_fail + ${f:-0}))
    if [ "$rc" -ne 0 ]; then
        failed_scripts+=("$t")
        # A script that died before counting still counts as one failure.
        [ "${f:-0}" -eq 0 ] && total_fail=$((total_fail + 1))
    fi
done
if [ ${#failed_scripts[@]} -gt 0 ]; then
    echo "failed scripts: ${failed_scripts[*]}"
fi
echo "e2e: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
