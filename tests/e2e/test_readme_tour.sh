#!/usr/bin/env bash
# tests/e2e/test_readme_tour.sh — runs the README's tour as written: every
# ```sh block preceded by "<!-- tour -->", in order, in one bash with `set -e`,
# from the checkout's root, with P (its first port) and TOUR (its directory)
# chosen here. So the README and the code cannot drift apart.
. "$(dirname "$0")/lib.sh"
e2e_setup

script="$D/tour.sh"
awk '/^<!-- tour -->$/ { want = 1; next }
     want && /^```sh$/ { inblock = 1; want = 0; next }
     inblock && /^```$/ { inblock = 0; print ""; next }
     inblock { print; next }
     /[^[:space:]]/ { want = 0 }' "$REPO/README.md" > "$script"
blocks=$(grep -c '^<!-- tour -->$' "$REPO/README.md")
check "the README has tour blocks" test "$blocks" -ge 5
check "every tour block was extracted" test "$(grep -c '^# [0-9]\.' "$script")" -eq "$blocks"

# Eleven consecutive free ports: P .. P+10.
P=""
for try in $(seq 1 40); do
    base=$(( (RANDOM % 2000) * 11 + 20000 ))
    ok=1
    for k in $(seq 0 10); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$((base + k))") 2>/dev/null; then ok=0; break; fi
    done
    [ "$ok" = 1 ] && { P=$base; break; }
done
check "found 11 free ports" test -n "$P"

out="$D/tour.out"
# The tour runs its own background jobs; timeout bounds a wedged step.
(cd "$REPO" && PATH="$MESH_BIN:$PATH" P=$P TOUR="$D/tour" timeout 180 bash -e "$script") > "$out" 2>&1
rc=$?
check "the tour runs to the end (exit 0)" test "$rc" -eq 0
[ "$rc" -ne 0 ] && { echo "       tour output (tail):"; tail -n 25 "$out" | sed 's/^/       /'; }

check "validate found the file valid" grep -q "mesh.yaml: valid, 0 errors" "$out"
check "apply wrote the config" grep -q "resources, .* changed" "$out"
check "workload list shows the three instances" \
    bash -c "grep -q frontend-1 '$out' && grep -q backend-1 '$out' && grep -q backend-2 '$out'"
n_ok=$(grep -c '"app":"backend-[12]"' "$out")
check "requests reached the backend through the mesh ($n_ok of 5)" test "$n_ok" -eq 5
check "both backend replicas served" \
    bash -c "grep -q '\"app\":\"backend-1\"' '$out' && grep -q '\"app\":\"backend-2\"' '$out'"
check "the backend saw the frontend's SPIFFE ID (mTLS)" \
    grep -q 'URI=spiffe://example.org/ns/default/sa/frontend' "$out"
check "proxy-status lists the sidecars" grep -q "backend-2" "$out"
check "the sidecar's /certs names its identity" \
    grep -q '"spiffe_id":"spiffe://example.org/ns/default/sa/frontend"' "$out"
check "describe shows who may call backend-2" \
    bash -c "grep -q 'May be called by' '$out' && grep -q 'sa/frontend  (frontend-1)' '$out'"
check "describe shows the route that reaches it" grep -q "route backend rule 0 (prefix /): 100% to backend" "$out"
check "the sidecar's /config_dump is Envoy's ConfigDump" \
    grep -q 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump' "$out"
check "no tour process is left running" bash -c "! pgrep -f -- '[m]esh-sidecar --meshd 127.0.0.1:$P ' >/dev/null && ! pgrep -f -- '[m]eshd --db $D/tour/' >/dev/null"
e2e_finish
