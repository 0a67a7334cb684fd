#!/usr/bin/env bash
# bench/bench_hostile.sh — the hostile-client attack of issue 12, at full scale: one
# mTLS identity opens HOSTILE_STREAMS (12,000) ADS streams on 3 connections and never
# reads them, while a well-behaved sidecar (another identity) keeps its stream.
# Reported: meshd's RSS before, its peak during 30 s of the flood, the streams meshd
# held and refused, the push latency to the well-behaved sidecar during the flood
# (`meshctl apply` -> its new LDS, three changes), and RSS 5 s after the flood left.
# Usage: MESH_BIN=build/bin bench/bench_hostile.sh [meshd flags...], e.g.
# `--max-streams-per-connection 4000` to see the per-identity limit do the work.
# Not part of `make bench` (a load test, not a speed figure); figures in
# docs/benchmarks.md "Hostile clients". Runs from the repository root.
cd "$(dirname "$0")/.." && . tests/e2e/lib.sh
e2e_setup
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api
ca_init
write_web_api_mesh 2s
"$M" apply -f "$D/mesh.yaml" >/dev/null
start_meshd meshd --log-level info "$@"
wait_port "$MESHD_PORT" 15
enrol "$WEB" web
enrol "$API" api
rss() { awk '/^VmRSS:/ {print $2}' /proc/$MESHD_PID/status; }
start steady "$XC" "${S[@]}" --state-dir "$D/api" --sub 'cds=*' --sub 'lds=*' --sub sds=default --node-id steady-node --timeout 300s
wait_for 15 has_types steady CDS LDS SDS
echo "args: $* ; rss before: $(rss) kB"
start flood "$XC" "${S[@]}" --state-dir "$D/web" --sub 'cds=*' --sub 'lds=*' --sub 'rds=outbound|http' --sub sds=default,ROOTCA --streams "${HOSTILE_STREAMS:-12000}" --connections 3 --no-read --summary --timeout 120s
FP=$LAST_PID
peak=0
for i in $(seq 1 30); do sleep 1; r=$(rss); [ "$r" -gt "$peak" ] && peak=$r; done
echo "flood: peak rss $peak kB; refused $(grep -c RESOURCE_EXHAUSTED $D/flood.log); streams open $(($(grep -c ' stream from spiffe://' $D/meshd.log) - $(grep -c ') closed after' $D/meshd.log)))"
for k in 1 2 3; do
  n=$(count steady LDS); t0=$(date +%s%N)
  sed -i "s|{service: api, allow: \[\(.*\)\]}|{service: api, allow: [\1, spiffe://example.org/ns/demo/sa/o$k]}|" "$D/mesh.yaml"
  "$M" apply -f "$D/mesh.yaml" >/dev/null
  wait_for 20 at_least steady LDS $((n+1))
  echo "push latency (apply -> steady LDS) $k: $((($(date +%s%N) - t0) / 1000000)) ms"
done
kill -TERM $FP; wait $FP 2>/dev/null
sleep 5
echo "after flood left: rss $(rss) kB"
grep "calls closed since" $D/meshd.log | tail -2 | cut -c 40-
e2e_finish >/dev/null
