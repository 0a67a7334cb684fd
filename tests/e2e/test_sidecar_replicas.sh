#!/usr/bin/env bash
# tests/e2e/test_sidecar_replicas.sh — identity per service account (issue 13): two
# replicas of api share one SPIFFE ID, each registered as its own instance with its own
# join token; both get SVIDs, both serve, and one authorization entry for the identity
# admits web's calls to both. The instance a sidecar is served comes from its verified
# certificate's enrolment: a copy of api-2's credentials claiming api-1 in Node.id is
# refused and audited. Old registrations (one per identity) keep working.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup

WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api

echo "replicas: setup"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
sc_port P_WEB_IN; sc_port P_WEB_OUT; sc_port P_WEB_APP
sc_port P_A1_IN; sc_port P_A1_APP; sc_port P_A2_IN; sc_port P_A2_APP
cat >"$D/mesh.yaml" <<YAML
services:
  - {name: web, protocol: http, port: $P_WEB_APP}
  - {name: api, protocol: http, port: 8080}
workloads:
  - {name: web-1, spiffe_id: "$WEB", service: web, inbound: "127.0.0.1:$P_WEB_IN",
     app: "127.0.0.1:$P_WEB_APP", outbound: "127.0.0.1:$P_WEB_OUT"}
  - {name: api-1, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_A1_IN",
     app: "127.0.0.1:$P_A1_APP"}
  - {name: api-2, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_A2_IN",
     app: "127.0.0.1:$P_A2_APP"}
authorization:
  - {service: api, allow: ["$WEB"]}
YAML
check "apply accepts two replicas sharing one identity" "$M" apply -f "$D/mesh.yaml"

token_of() { jq -r '.token | select(startswith("mjt_"))'; }
"$M" --output json workload add web-1 --id "$WEB" | token_of >"$D/web.token"
"$M" --output json workload add api-1 --id "$API" | token_of >"$D/api-1.token"
"$M" --output json workload add api-2 --id "$API" | token_of >"$D/api-2.token"
check "a join token per instance" test -s "$D/api-1.token" -a -s "$D/api-2.token" -a \
    "$(cat "$D/api-1.token")" != "$(cat "$D/api-2.token")"
check_err "registering api-1 under another identity is refused" "has identity $API" \
    "$M" workload add api-1 --id "$WEB"
check_err "a second registration of one instance is refused" "api-1" \
    "$M" workload add api-1 --id "$API"
check_err "an instance name needs --id" "--id" "$M" workload add api-3
check_out "workload list names both instances of the identity" "api-2" "$M" workload list

start app-a1 "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_A1_APP" --name api-1
start app-a2 "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_A2_APP" --name api-2
check "app api-1 is up" wait_port "$P_A1_APP" 10
check "app api-2 is up" wait_port "$P_A2_APP" 10
sc_start_meshd
check "meshd is up" wait_port "$MESHD_PORT" 10

echo "replicas: both get SVIDs and serve"
sc_start_sidecar web "$WEB" --workload web-1
sc_start_sidecar api-1 "$API" --workload api-1
# No --workload: Node.id is the identity, and meshd serves the instance the token enrolled.
sc_start_sidecar api-2 "$API"
for n in web api-1 api-2; do
    check "sidecar $n becomes ready" wait_for 15 sc_ready "$n"
done
check "api-1 listens on its own inbound" wait_port "$P_A1_IN" 10
check "api-2 listens on its own inbound" wait_port "$P_A2_IN" 10
"$M" --output json cert list >"$D/certs.json" 2>/dev/null
check "two SVIDs of the shared identity were issued" \
    test "$(jq --arg id "$API" '[.[] | select(.spiffe_id == $id)] | length' "$D/certs.json")" -ge 2
check_out "meshd logged api-1's enrolment" "instance=api-1" cat "$D/meshd.log"
check_out "meshd logged api-2's enrolment" "instance=api-2" cat "$D/meshd.log"

echo "replicas: one authorization entry admits both"
check "outbound listener is up" wait_port "$P_WEB_OUT" 10
counts=$(sc_count_apps api "$P_WEB_OUT" 40 | tr '\n' ' ')
n1=$(printf '%s\n' "$counts" | sed -n 's/.*api-1=\([0-9]*\).*/\1/p')
n2=$(printf '%s\n' "$counts" | sed -n 's/.*api-2=\([0-9]*\).*/\1/p')
check "every request answered ($counts)" test $((${n1:-0} + ${n2:-0})) -eq 40
check "api-1 serves ($counts)" test "${n1:-0}" -ge 5
check "api-2 serves ($counts)" test "${n2:-0}" -ge 5
check "proxy-status has a row per replica" \
    bash -c "'$M' proxy-status --output json | jq -e '[.[] | select(.node_id == \"api-1\" or .node_id == \"api-2\")] | length == 2'"

echo "replicas: the instance comes from the enrolment, never from Node.id"
sc_stop "$PID_api_2"
cp -a "$D/state-api-2" "$D/state-imp"
rm -f "$D/state-imp"/xds-*.pb
sc_start_sidecar imp "$API" --workload api-1
denied() { grep -q "is not the instance this certificate was enrolled for" "$D/meshd.log"; }
check "api-2's certificate claiming api-1 is refused" wait_for 10 denied
check "the refusal is audited" bash -c "'$M' audit --limit 100 | grep -q xds.denied"
check_out "api-1 still serves" '"app":"api-1"' sc_body api "$P_WEB_OUT" /
sc_stop "$PID_imp"

echo "replicas: stop"
for n in web api-1; do
    var="PID_${n//-/_}"
    sc_stop "${!var}"
    check "SIGTERM: $n exited 0" test $? -eq 0
done
e2e_finish
