#!/usr/bin/env bash
# tests/e2e/test_sidecar_mesh.sh — mesh-sidecar against a real meshd on 127.0.0.1:
# first contact with join tokens, routed HTTP over outbound -> mTLS -> inbound -> app,
# RBAC denial (403), a weight change applied with meshctl shifting traffic, kill -9 of
# meshd with zero request errors, a sidecar restarted while meshd is down serving from
# its persisted state, reconnection when meshd returns, and a graceful SIGTERM.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup

WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api-v1
API2=spiffe://$TD/ns/default/sa/api-v2
SECRET=spiffe://$TD/ns/default/sa/secret

echo "sidecar: setup"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
sc_token "$WEB" "$D/web.token"
sc_token "$API" "$D/api-v1.token"
sc_token "$API2" "$D/api-v2.token"
sc_token "$SECRET" "$D/secret.token"
sc_port P_WEB_IN; sc_port P_WEB_OUT; sc_port P_WEB_APP
sc_port P_V1_IN; sc_port P_V1_APP
sc_port P_V2_IN; sc_port P_V2_APP
sc_port P_S_IN; sc_port P_S_APP

mesh_yaml() {   # $1 = api-v1 weight, $2 = api-v2 weight
    cat <<YAML
services:
  - {name: web, protocol: http, port: $P_WEB_APP}
  - {name: api-v1, protocol: http, port: $P_V1_APP}
  - {name: api-v2, protocol: http, port: $P_V2_APP}
  - {name: secret, protocol: http, port: $P_S_APP}
workloads:
  - {name: web-1, spiffe_id: "$WEB", service: web, inbound: "127.0.0.1:$P_WEB_IN",
     app: "127.0.0.1:$P_WEB_APP", outbound: "127.0.0.1:$P_WEB_OUT"}
  - {name: api-v1-1, spiffe_id: "$API", service: api-v1, inbound: "127.0.0.1:$P_V1_IN",
     app: "127.0.0.1:$P_V1_APP"}
  - {name: api-v2-1, spiffe_id: "$API2", service: api-v2, inbound: "127.0.0.1:$P_V2_IN",
     app: "127.0.0.1:$P_V2_APP"}
  - {name: secret-1, spiffe_id: "$SECRET", service: secret, inbound: "127.0.0.1:$P_S_IN",
     app: "127.0.0.1:$P_S_APP"}
routes:
  - name: api
    hosts: [api]
    rules:
      - match: {prefix: /}
        destinations: [{service: api-v1, weight: $1}, {service: api-v2, weight: $2}]
authorization:
  - {service: api-v1, allow: ["$WEB"]}
  - {service: api-v2, allow: ["$WEB"]}
  - {service: secret, allow: ["$API"]}
YAML
}
mesh_yaml 100 0 >"$D/mesh.yaml"
check "apply the mesh" "$M" apply -f "$D/mesh.yaml"

start app-v1 "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_V1_APP" --name api-v1
start app-v2 "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_V2_APP" --name api-v2
start app-s "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_S_APP" --name secret
for p in "$P_V1_APP" "$P_V2_APP" "$P_S_APP"; do
    check "test app on port $p is up" wait_port "$p" 10
done
sc_start_meshd
check "meshd is up" wait_port "$MESHD_PORT" 10

echo "sidecar: first contact"
check_err "first contact without a token is refused clearly" "join token" \
    "$MESH_BIN/mesh-sidecar" --meshd "127.0.0.1:$MESHD_PORT" --ca-bundle "$D/bundle.pem" \
    --state-dir "$D/state-none" --id "$WEB"
check_err "first contact without --id is refused clearly" "--id" \
    "$MESH_BIN/mesh-sidecar" --meshd "127.0.0.1:$MESHD_PORT" --ca-bundle "$D/bundle.pem" \
    --state-dir "$D/state-none2" --token-file "$D/web.token"
check_err "unknown flags are refused" "unknown" "$MESH_BIN/mesh-sidecar" --meshd x --state-dir y --bogus
sc_start_sidecar web "$WEB" --workload web-1
sc_start_sidecar api-v1 "$API" --workload api-v1-1
sc_start_sidecar api-v2 "$API2" --workload api-v2-1
sc_start_sidecar secret "$SECRET" --workload secret-1
for n in web api-v1 api-v2 secret; do
    check "sidecar $n becomes ready" wait_for 15 sc_ready "$n"
done
check "state dir is 0700" test "$(stat -c %a "$D/state-web")" = 700
check "cert pool is 0600" test "$(stat -c %a "$D/state-web/cert-pool")" = 600
check "persisted LDS is 0600" test "$(stat -c %a "$D/state-web/xds-lds.pb")" = 600
check "the join token is not in the logs" sh -c "! grep -qF '$(cat "$D/web.token")' '$D/sc-web.log'"
check_out "config_dump shows the ADS connection" '"connected":true' sc_admin web /config_dump
sc_admin web /config_dump >"$D/dump.json"
check "config_dump carries Envoy's ConfigDump list (clusters, endpoints, listeners, routes, secrets)" \
    jq -e '[.configs[]."@type"] == ["type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
        "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
        "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
        "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
        "type.googleapis.com/envoy.admin.v3.SecretsConfigDump"]' "$D/dump.json"
check "config_dump's listeners are typed Envoy resources with typed filters" \
    jq -e '.configs[2].dynamic_listeners[0].active_state.listener."@type" ==
        "type.googleapis.com/envoy.config.listener.v3.Listener" and
        ([.configs[2].dynamic_listeners[].active_state.listener.filter_chains[].filters[].typed_config."@type"]
         | length > 0)' "$D/dump.json"
check "config_dump's clusters carry their version" \
    jq -e '.configs[0].version_info | length > 0' "$D/dump.json"
check "config_dump shows no private key" bash -c "! grep -q 'PRIVATE KEY' '$D/dump.json'"

# CPU ticks (user+sys) of a process, from /proc.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# An idle sidecar measures 0 ticks in 5 s; a control-plane loop that wakes every
# millisecond (a past retry time used as a deadline) measured 11.
t0=$(cpu_ticks "$PID_web")
sleep 5
t1=$(cpu_ticks "$PID_web")
check "an idle sidecar is idle (<= 4 CPU ticks in 5 s, used $((t1 - t0)))" test $((t1 - t0)) -le 4

echo "sidecar: routing and authorization"
check "outbound listener is up" wait_port "$P_WEB_OUT" 10
check_out "routed request reaches api-v1 over mTLS" '"app":"api-v1"' sc_body api "$P_WEB_OUT" /hello
check_out "the app sees the caller's SPIFFE ID" "URI=$WEB" sc_body api "$P_WEB_OUT" /hello
check_out "caller not allowed by RBAC gets 403" 403 sc_get secret "$P_WEB_OUT"
check_out "unknown host gets 404" 404 sc_get nowhere "$P_WEB_OUT"
check_out "meshctl proxy-status shows the sidecars synced" "SYNCED" "$M" proxy-status

echo "sidecar: weight change"
mesh_yaml 20 80 >"$D/mesh2.yaml"
# The RDS version the sidecar runs changes once meshd pushed the new split. It is read
# before the apply: meshd can push within milliseconds of it.
rds_version() { sc_admin web /config_dump | jq -r '.xds.rds.version // empty'; }
rds0=$(rds_version)
check "apply 20/80" "$M" apply -f "$D/mesh2.yaml"
rds_changed() { v=$(rds_version); [ -n "$rds0" ] && [ -n "$v" ] && [ "$v" != "$rds0" ]; }
check "the new route version reaches the sidecar" wait_for 10 rds_changed
counts=$(sc_count_apps api "$P_WEB_OUT" 100 | tr '\n' ' ')
v2=$(printf '%s\n' "$counts" | sed -n 's/.*api-v2=\([0-9]*\).*/\1/p')
v1=$(printf '%s\n' "$counts" | sed -n 's/.*api-v1=\([0-9]*\).*/\1/p')
check "about 80% go to api-v2 ($counts)" test "${v2:-0}" -ge 60 -a "${v2:-0}" -le 95
check "about 20% go to api-v1 ($counts)" test "${v1:-0}" -ge 5
check_out "RDS update was ACKed (no NACK)" '"rejections":0' sc_admin web /config_dump

echo "sidecar: meshd killed with kill -9"
{ kill -9 "$MESHD_PID"; wait "$MESHD_PID"; } 2>/dev/null
errors=0
for i in $(seq 1 60); do
    [ "$(sc_get api "$P_WEB_OUT")" = 200 ] || errors=$((errors + 1))
done
check "60 requests during the outage, $errors errors" test "$errors" -eq 0
check_out "config_dump says disconnected" '"connected":false' sc_admin web /config_dump

echo "sidecar: restart while meshd is down"
sc_stop "$PID_web"
check "SIGTERM: the sidecar exited 0" test $? -eq 0
check_out "SIGTERM: it drained and stopped" "stopped" cat "$D/sc-web.log"
start sc-web2 "$MESH_BIN/mesh-sidecar" --meshd "127.0.0.1:$MESHD_PORT" --state-dir "$D/state-web" \
    --admin "127.0.0.1:$ADMIN_web" --reconnect-max 1s
PID_web=$LAST_PID
check "restarted sidecar re-opens its outbound listener" wait_port "$P_WEB_OUT" 10
check_out "and serves from the persisted pool and config" '"app":"api-v' sc_body api "$P_WEB_OUT"
errors=0
for i in $(seq 1 30); do
    [ "$(sc_get api "$P_WEB_OUT")" = 200 ] || errors=$((errors + 1))
done
check "30 requests from the restarted sidecar, $errors errors" test "$errors" -eq 0
check_out "its log says it restored the config" "restored LDS" cat "$D/sc-web2.log"

echo "sidecar: meshd comes back"
sc_start_meshd
reconnected() { sc_admin web /config_dump | json_is '.xds.connected'; }
check "the restarted sidecar reconnects to meshd" wait_for 15 reconnected
mesh_yaml 100 0 >"$D/mesh3.yaml"
rds0=$(rds_version)
check "apply 100/0 while connected" "$M" apply -f "$D/mesh3.yaml"
check "the change reaches the restarted sidecar" wait_for 10 rds_changed
check_out "api-v1 only after the change" "api-v1=20" sc_count_apps api "$P_WEB_OUT" 20

echo "sidecar: graceful stop"
for n in web api-v1 api-v2 secret; do
    var="PID_${n//-/_}"
    sc_stop "${!var}"
    check "SIGTERM: $n exited 0" test $? -eq 0
done
check "no sanitizer report from any sidecar (ASan builds)" \
    sh -c "! grep -q 'Sanitizer\|runtime error' '$D'/sc-*.log"

e2e_finish
