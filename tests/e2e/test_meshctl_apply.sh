#!/usr/bin/env bash
# tests/e2e/test_meshctl_apply.sh — declarative apply (issue 13): `meshctl apply --prune`
# removes what the file applied before and no longer holds, in the same transaction, and
# never what another file (apply set) or an older meshctl wrote; `--dry-run` shows each
# add / update / remove, in text and JSON, and writes nothing.
. "$(dirname "$0")/lib.sh"
e2e_setup

TD=example.org
ca_init "$TD" >/dev/null || { fail "CA init"; e2e_finish; exit 1; }

full() {
    cat <<YAML
services:
  - {name: web, protocol: http, port: 8080}
  - {name: api, protocol: http, port: 8081}
workloads:
  - {name: web-1, spiffe_id: "spiffe://$TD/ns/d/sa/web", service: web,
     inbound: "127.0.0.1:15001", app: "127.0.0.1:18001"}
  - {name: api-1, spiffe_id: "spiffe://$TD/ns/d/sa/api", service: api,
     inbound: "127.0.0.1:15002", app: "127.0.0.1:18002"}
  - {name: api-2, spiffe_id: "spiffe://$TD/ns/d/sa/api", service: api,
     inbound: "127.0.0.1:15003", app: "127.0.0.1:18003"}
routes:
  - {name: api, rules: [{match: {prefix: /}, destinations: [{service: api}]}]}
authorization:
  - {service: api, allow: ["spiffe://$TD/ns/d/sa/web"]}
YAML
}
full >"$D/mesh.yaml"
check "apply the full mesh" "$M" apply -f "$D/mesh.yaml"
cat >"$D/other.yaml" <<YAML
services:
  - {name: extra, protocol: tcp, port: 9000}
YAML
check "another file applies its own service" "$M" apply -f "$D/other.yaml"

echo "apply: --dry-run shows the diff and writes nothing"
# api-2 and the route leave; api-1 moves.
full | sed -e '/name: api-2/,+1d' -e 's/127.0.0.1:18002/127.0.0.1:18012/' \
    -e '/^routes:/,/^authorization:/{/^authorization:/!d}' >"$D/mesh2.yaml"
# The same file, edited: its apply set is its absolute path.
cp "$D/mesh.yaml" "$D/mesh1.yaml"
cp "$D/mesh2.yaml" "$D/mesh.yaml"
"$M" apply -f "$D/mesh.yaml" --prune --dry-run >"$D/dry.txt" 2>&1
check_out "dry run: the moved workload is an update" "update workload/api-1" cat "$D/dry.txt"
check_out "dry run: the update shows the changed line" "+ " cat "$D/dry.txt"
check_out "dry run: the new address is in the diff" "127.0.0.1:18012" cat "$D/dry.txt"
check_out "dry run: the dropped replica is a removal" "remove workload/api-2" cat "$D/dry.txt"
check_out "dry run: the dropped route is a removal" "remove route/api" cat "$D/dry.txt"
check_out "dry run: says nothing was written" "dry run, nothing written" cat "$D/dry.txt"
check "dry run: another file's service is not pruned" sh -c "! grep -q 'service/extra' '$D/dry.txt'"
"$M" --output json apply -f "$D/mesh.yaml" --prune --dry-run >"$D/dry.json"
check "dry run JSON: 3 changes" json_true "$D/dry.json" '.changes | length == 3'
check "dry run JSON: one update with before and after" json_true "$D/dry.json" \
    '[.changes[] | select(.action == "update" and .kind == "workload" and .name == "api-1" and (.before | test("18002")) and (.after | test("18012")))] | length == 1'
check "dry run JSON: removals of api-2 and the route" json_true "$D/dry.json" \
    '[.changes[] | select(.action == "remove")] | map(.kind + "/" + .name) | sort == ["route/api", "workload/api-2"]'
check "dry run JSON: dry_run and prune set" json_true "$D/dry.json" '.dry_run and .prune'
check_out "dry run: api-2 is still stored" "api-2" "$M" get workloads

echo "apply: --prune removes, in one transaction"
check_out "without --prune nothing is removed" "0 removed" "$M" apply -f "$D/mesh.yaml"
check_out "api-2 still stored after a plain apply" "api-2" "$M" get workloads
check_out "--prune removes the two" "2 removed" "$M" apply -f "$D/mesh.yaml" --prune
check "api-2 is gone" sh -c "! '$M' get workloads | grep -q api-2"
check "the route is gone" sh -c "! '$M' get routes | grep -q 'name: api'"
check_out "another file's service survives" "extra" "$M" get services
check_out "re-apply with --prune changes nothing" "0 changed" "$M" apply -f "$D/mesh.yaml" --prune
check_out "the prune is audited" "config.apply.prune" "$M" audit --limit 20

echo "apply: a prune that breaks a reference fails whole"
cat >"$D/route.yaml" <<YAML
routes:
  - {name: api2, rules: [{match: {prefix: /}, destinations: [{service: api}]}]}
YAML
check "another file routes to api" "$M" apply -f "$D/route.yaml"
cat >"$D/only-svc.yaml" <<YAML
services:
  - {name: web, protocol: http, port: 8080}
YAML
check_err "pruning a service another file still routes to is refused, naming the prune" \
    "--prune removes" "$M" apply -f "$D/only-svc.yaml" --apply-set "$(realpath "$D/mesh.yaml")" --prune
check_out "and nothing was removed" "api-1" "$M" get workloads
check_err "--apply-set needs a name" "--apply-set" "$M" apply -f "$D/mesh.yaml" --apply-set ""

e2e_finish
