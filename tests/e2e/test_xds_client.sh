#!/usr/bin/env bash
# tests/e2e/test_xds_client.sh — a REAL third-party xDS client against meshd: an unmodified
# @grpc/grpc-js + @grpc/grpc-js-xds program (tests/conformance/xds_client.js) with a
# bootstrap pointing at meshd's plaintext xDS port calls meshtest.Echo/Who through
# xds:///<host> and reaches the backend meshd's routes choose (two small gRPC servers,
# tests/conformance/xds_client_backend.js, registered as workloads whose `app` they are).
#   - it gets LDS (API listener), RDS, CDS and EDS and ACKs every version (proxy-status:
#     all four types synced, no NACK);
#   - route edits applied with meshctl move its traffic while it runs: weights 100/0 ->
#     0/100, then a header rule; an authorization edit hands it a backend it could not
#     reach before;
#   - meshd is off the request path: stopped, the client keeps calling; restarted, it
#     reconnects and is in sync again;
#   - the plaintext port refuses what it must (CreateCertificate, secrets, Delta, unknown
#     or unregistered identities) and binds loopback only unless told otherwise; a UNIX
#     socket works too.
# In CI (CI=true) a missing node is a failure, elsewhere a skip.
. "$(dirname "$0")/lib.sh"
e2e_setup

need_node "npm ci installs @grpc/grpc-js-xds"

TD=example.org
CLIENT=spiffe://$TD/ns/demo/sa/client
PA=$(free_port); PB=$(free_port); PC=$(free_port)
MTLS=$(free_port); PLAIN=$(free_port)
# Inbound (sidecar) ports are part of a workload's config; nothing listens there.
IA=$(free_port); IB=$(free_port); IC=$(free_port)

# write_config RULES AUTHZ_C: the backend route's rules (YAML, indented 6) and who
# may call backend-c ("$CLIENT-nobody": an identity that never connects).
write_config() {
    cat >"$D/mesh.yaml" <<EOF
services:
  - {name: backend-a, protocol: http, port: $PA}
  - {name: backend-b, protocol: http, port: $PB}
  - {name: backend-c, protocol: http, port: $PC}
workloads:
  - {name: backend-a-1, spiffe_id: spiffe://$TD/ns/demo/sa/backend-a, service: backend-a, inbound: 127.0.0.1:$IA, app: 127.0.0.1:$PA}
  - {name: backend-b-1, spiffe_id: spiffe://$TD/ns/demo/sa/backend-b, service: backend-b, inbound: 127.0.0.1:$IB, app: 127.0.0.1:$PB}
  - {name: backend-c-1, spiffe_id: spiffe://$TD/ns/demo/sa/backend-c, service: backend-c, inbound: 127.0.0.1:$IC, app: 127.0.0.1:$PC}
routes:
  - name: backend
    rules:
$1
authorization:
  - {service: backend-a, allow: [$CLIENT]}
  - {service: backend-b, allow: [$CLIENT]}
  - {service: backend-c, allow: [$2]}
EOF
}
WEIGHTS_A='      - match: {prefix: /}
        destinations: [{service: backend-a, weight: 100}, {service: backend-b, weight: 0}]'
WEIGHTS_B='      - match: {prefix: /}
        destinations: [{service: backend-a, weight: 0}, {service: backend-b, weight: 100}]'
CANARY='      - match:
          prefix: /meshtest.Echo/
          headers: [{name: x-canary, exact: "1"}]
        destinations: [{service: backend-a}]
        timeout: 2s
      - match: {prefix: /}
        destinations: [{service: backend-b}]'

# calls CALL: the client's log lines ({"seq":..,"call":"plain","ok":true,"name":"a",..}) for CALL.
calls() { json_lines client '.call == $c' --arg c "$1"; }
# recent CALL N NAME: the last N replies to CALL all came from backend NAME.
recent() {
    [ "$(calls "$1" | tail -n "$2" | count_where - '.ok == true and .name == $n' --arg n "$3")" -eq "$2" ]
}
# recent_fail CALL N STATUS: the last N calls to CALL failed with STATUS.
recent_fail() {
    local filter='.ok == false and (.code | type) == "number" and .status == $s'
    [ "$(calls "$1" | tail -n "$2" | count_where - "$filter" --arg s "$3")" -eq "$2" ]
}
# status_check: the client's proxy-status row (node = its SPIFFE ID) is connected and
# has LDS, RDS, CDS and EDS all ACKed at the version last sent, with no NACK ever.
# It prints what is wrong, or the row's types when all is well.
status_check() {
    "$M" proxy-status --output json | jq -nr --arg id "$CLIENT" '
        input | (first(.[] | select(.node_id == $id)) // ("no proxy-status row for \($id)\n" | halt_error(1)))
        | [ if .connected then empty else "not connected" end,
            if .peer | startswith("plaintext:") then empty else "peer \(.peer)" end,
            (.types as $types | "LDS", "RDS", "CDS", "EDS" | . as $t | $types[$t]
             | if . == null then "\($t) never sent"
               else (if .synced then empty else "\($t) sent \(.sent_version) acked \(.acked_version)" end),
                    (if (.nack_version // "") != "" or (.nack_error // "") != ""
                     then "\($t) NACK \(.nack_version): \(.nack_error)" else empty end)
               end),
            if .types.SDS then "SDS was sent" else empty end ] as $bad
        | if $bad == [] then .types | tojson else $bad | join("; ") + "\n" | halt_error(1) end'
}
acked() { # acked TYPE: the version of TYPE the client last ACKed
    "$M" proxy-status --output json |
        jq -r --arg id "$CLIENT" --arg t "$1" 'first(.[] | select(.node_id == $id)).types[$t].acked_version // ""'
}
# acked_moved TYPE VERSION: the client is in sync and has ACKed TYPE at another version.
acked_moved() { status_check >/dev/null && [ "$(acked "$1")" != "$2" ]; }

echo "xds client: setup"
"$M" ca init --trust-domain "$TD" >/dev/null
check_out "the client's identity is registered" '"registered":true' "$M" workload add "$CLIENT" --output json
write_config "$WEIGHTS_A" "$CLIENT-nobody"
check_out "mesh config applies" "config version" "$M" apply -f "$D/mesh.yaml"
check_err "meshd refuses a non-loopback plaintext port" "not a loopback address" \
    "$MESH_BIN/meshd" --db "$MESHD_DB" --listen 127.0.0.1:"$MTLS" --xds-plaintext-listen 0.0.0.0:"$PLAIN"
check_err "meshd refuses the mTLS address as plaintext port" "that is the mTLS --listen address" \
    "$MESH_BIN/meshd" --db "$MESHD_DB" --listen 127.0.0.1:"$MTLS" --xds-plaintext-listen 127.0.0.1:"$MTLS"
check_err "--xds-plaintext-allow-remote alone is an error" "needs --xds-plaintext-listen" \
    "$MESH_BIN/meshd" --db "$MESHD_DB" --xds-plaintext-allow-remote
MESHD_PORT=$MTLS
MESHD_ARGS=(--xds-plaintext-listen 127.0.0.1:"$PLAIN" --instance e2e-xds-client --log-level debug)
start_meshd meshd "${MESHD_ARGS[@]}"
check "meshd listens (mTLS)" wait_port "$MTLS" 15
check "meshd listens (plaintext xDS)" wait_port "$PLAIN" 15
for b in a:"$PA" b:"$PB" c:"$PC"; do
    start "backend-${b%%:*}" node "$CONF/xds_client_backend.js" --name "${b%%:*}" --listen 127.0.0.1:"${b#*:}"
done
backends_up() { wait_port "$PA" 15 && wait_port "$PB" 15 && wait_port "$PC" 15; }
check "the three gRPC backends listen" backends_up
cat >"$D/bootstrap.json" <<EOF
{
  "xds_servers": [{"server_uri": "127.0.0.1:$PLAIN", "channel_creds": [{"type": "insecure"}],
                   "server_features": ["xds_v3"]}],
  "node": {"id": "$CLIENT", "cluster": "grpc-clients", "locality": {}}
}
EOF

echo "xds client: a real @grpc/grpc-js-xds client through xds:///"
GRPC_XDS_BOOTSTRAP="$D/bootstrap.json" start client node "$CONF/xds_client.js" \
    --call plain=xds:///backend --call canary=xds:///backend,x-canary=1 \
    --call direct=xds:///backend-b --call denied=xds:///backend-c --interval 100 --deadline 1000
CLIENT_PID=$LAST_PID
check "xds:///backend reaches backend a (weights 100/0)" wait_for 20 recent plain 5 a
check "xds:///backend-b (a service's own host) reaches b" wait_for 10 recent direct 5 b
check "xds:///backend-c, which the client may not call, fails UNAVAILABLE" wait_for 10 recent_fail denied 5 UNAVAILABLE
check "the client ACKed LDS, RDS, CDS and EDS, no NACK" wait_for 10 status_check
check_out "its peer shows the plaintext port" '"peer":"plaintext:' "$M" proxy-status --output json
rds1=$(acked RDS)

echo "xds client: route changes move its traffic"
write_config "$WEIGHTS_B" "$CLIENT-nobody"
check_out "weights 0/100 applied" "1 changed" "$M" apply -f "$D/mesh.yaml"
check "xds:///backend now reaches backend b" wait_for 20 recent plain 10 b
check "the new RDS is ACKed, nothing NACKed" wait_for 10 acked_moved RDS "$rds1"
rds2=$(acked RDS)
write_config "$CANARY" "$CLIENT-nobody"
check_out "a header rule applied" "1 changed" "$M" apply -f "$D/mesh.yaml"
check "x-canary: 1 now goes to backend a" wait_for 20 recent canary 10 a
check "other calls stay on backend b" recent plain 10 b
check_out "the backend saw the header the route matched" '"name":"a","canary":"1"' tail -n 20 "$D/client.log"
check "ACKed again, no NACK" wait_for 10 acked_moved RDS "$rds2"

echo "xds client: authorization decides which endpoints it gets"
before="$(acked LDS) $(acked RDS) $(acked CDS)"
eds1=$(acked EDS)
write_config "$CANARY" "$CLIENT"
check_out "the client may now call backend-c" "1 changed" "$M" apply -f "$D/mesh.yaml"
check "xds:///backend-c now reaches backend c" wait_for 20 recent denied 5 c
check "the new EDS is ACKed, no NACK" wait_for 10 acked_moved EDS "$eds1"
check "LDS, RDS and CDS did not move" test "$(acked LDS) $(acked RDS) $(acked CDS)" = "$before"

echo "xds client: meshd is on the config path only"
kill -TERM "$MESHD_PID"
check "meshd stops" wait_for 10 not_running "$MESHD_PID"
n_before=$(calls plain | wc -l)
sleep 2
check "with meshd down the client keeps calling (cached config)" recent plain 10 b
check "and made calls meanwhile" test "$(calls plain | wc -l)" -gt $((n_before + 10))
start_meshd meshd2 "${MESHD_ARGS[@]}"
check "meshd is back" wait_port "$PLAIN" 15
check "the client reconnects and is in sync again" wait_for 30 status_check
check "traffic is unaffected" recent plain 10 b
check "the client process is still running" kill -0 "$CLIENT_PID"

echo "xds client: what the plaintext port refuses"
RAW=(node "$CONF/xds_client_raw.js")
PLAIN_XDS=(--server 127.0.0.1:"$PLAIN")   # the plaintext xDS port
# Another instance of the client's identity: "<SPIFFE ID>#<instance>" keeps its
# proxy-status row apart from the real client's.
check_out "a registered identity gets its listener" '"names":["backend"]' \
    "${RAW[@]}" ads "${PLAIN_XDS[@]}" --node-id "$CLIENT#raw-1" --type lds --names backend
check_out "an instance name shows as its own node" "\"node_id\":\"$CLIENT#raw-1\"" "$M" proxy-status --output json
check_out "a bad instance name is refused" "names the instance" \
    "${RAW[@]}" ads "${PLAIN_XDS[@]}" --node-id "$CLIENT#bad/instance" --expect-status UNAUTHENTICATED
check_out "an unregistered Node.id is refused" "is not a registered identity" \
    "${RAW[@]}" ads "${PLAIN_XDS[@]}" --node-id "spiffe://$TD/ns/demo/sa/stranger" --expect-status PERMISSION_DENIED
check_out "a request without Node.id is refused" "must carry Node.id" \
    "${RAW[@]}" ads "${PLAIN_XDS[@]}" --node-id "" --expect-status UNAUTHENTICATED
check_out "a Node.id that is no SPIFFE ID is refused" "not a usable SPIFFE ID" \
    "${RAW[@]}" ads "${PLAIN_XDS[@]}" --node-id "grpc-client-1" --expect-status UNAUTHENTICATED
check_out "a foreign trust domain is refused" "meshd serves \\\"$TD\\\"" \
    "${RAW[@]}" ads "${PLAIN_XDS[@]}" --node-id "spiffe://other.org/ns/demo/sa/client" --expect-status PERMISSION_DENIED
check_out "secrets are never served in plaintext" "secrets are never served" \
    "${RAW[@]}" ads "${PLAIN_XDS[@]}" --node-id "$CLIENT#raw-2" --type sds --names default,ROOTCA --expect-status PERMISSION_DENIED
check_out "CreateCertificate is refused in plaintext" "UNAUTHENTICATED" \
    "${RAW[@]}" unary "${PLAIN_XDS[@]}" --method /istio.v1.auth.IstioCertificateService/CreateCertificate --expect-status UNAUTHENTICATED
check_out "FetchSecrets is refused in plaintext" "UNAUTHENTICATED" \
    "${RAW[@]}" unary "${PLAIN_XDS[@]}" --method /envoy.service.secret.v3.SecretDiscoveryService/FetchSecrets --expect-status UNAUTHENTICATED
check_out "StreamSecrets is refused in plaintext" "UNAUTHENTICATED" \
    "${RAW[@]}" unary "${PLAIN_XDS[@]}" --method /envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets --expect-status UNAUTHENTICATED
check_out "Delta ADS is not served in plaintext" "State-of-the-World ADS only" \
    "${RAW[@]}" unary "${PLAIN_XDS[@]}" --method /envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources --expect-status UNIMPLEMENTED
check_out "the refusals are audited" "xds.denied" "$M" audit --limit 50
# A sidecar-like client with an SVID on the mTLS port, while the plaintext port is on.
BACKEND_A=spiffe://$TD/ns/demo/sa/backend-a
"$M" ca bundle >"$D/bundle.pem"
tok=$(workload_add "$BACKEND_A")
check "a sidecar gets its SVID over TLS with the plaintext port on" \
    "$XC" "${S[@]}" --token "$tok" --id "$BACKEND_A" --state-dir "$D/sidecar" --no-stream
check_out "and its sidecar view (mTLS listener) over mTLS" '"inbound|'"$IA"'"' \
    "$XC" "${S[@]}" --state-dir "$D/sidecar" --sub 'lds=*' --node-id sidecar-a --exit-after 1 --timeout 10s
check_fails "the mTLS port still wants TLS" \
    "${RAW[@]}" ads --server 127.0.0.1:"$MTLS" --node-id "$CLIENT#raw-3" --timeout 3000
check "meshd is still running" kill -0 "$MESHD_PID"
check "the real client is still in sync" status_check

echo "xds client: a UNIX socket instead of loopback TCP"
kill -TERM "$MESHD_PID"
wait_for 10 not_running "$MESHD_PID"
start_meshd meshd3 --xds-plaintext-listen "unix:$D/xds.sock" --instance e2e-xds-client
check "meshd serves xDS on unix:$D/xds.sock" wait_for 15 test -S "$D/xds.sock"
check_out "a registered identity gets its listener over the socket" '"names":["backend"]' \
    "${RAW[@]}" ads --server "unix://$D/xds.sock" --node-id "$CLIENT#uds" --type lds --names backend

e2e_finish
