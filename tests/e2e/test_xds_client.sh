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
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CONF="$REPO/tests/conformance"
M="$MESH_BIN/meshctl"
D="$E2E_DIR"

if ! command -v node >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then
        fail "node is installed (tools/deps.sh installs it)"
    else
        echo "  skip: node not installed (run tools/deps.sh)"
    fi
    e2e_finish
    exit $?
fi
if [ ! -d "$CONF/node_modules/@grpc/grpc-js-xds" ]; then
    check "npm ci installs @grpc/grpc-js-xds" \
        bash -c "cd '$CONF' && npm ci --no-audit --no-fund --loglevel=error"
fi

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

# recent CALL N NAME: the last N replies to CALL all came from backend NAME.
recent() {
    local got
    got=$(grep -F "\"call\":\"$1\"" "$D/client.log" | tail -n "$2")
    [ "$(printf '%s\n' "$got" | grep -c "\"ok\":true,\"name\":\"$3\"")" -eq "$2" ]
}
# recent_fail CALL N STATUS: the last N calls to CALL failed with STATUS.
recent_fail() {
    local got
    got=$(grep -F "\"call\":\"$1\"" "$D/client.log" | tail -n "$2")
    [ "$(printf '%s\n' "$got" | grep -c "\"ok\":false,\"code\":[0-9]*,\"status\":\"$3\"")" -eq "$2" ]
}
# status_check: the client's proxy-status row (node = its SPIFFE ID) is connected and
# has LDS, RDS, CDS and EDS all ACKed at the version last sent, with no NACK ever.
status_check() {
    "$M" proxy-status --output json | node -e '
        const id = process.argv[1];
        const rows = JSON.parse(require("fs").readFileSync(0, "utf8"));
        const r = rows.find((x) => x.node_id === id);
        if (!r) { console.log("no proxy-status row for " + id); process.exit(1); }
        const bad = [];
        if (!r.connected) bad.push("not connected");
        if (!r.peer.startsWith("plaintext:")) bad.push("peer " + r.peer);
        for (const t of ["LDS", "RDS", "CDS", "EDS"]) {
            const s = r.types[t];
            if (!s) { bad.push(t + " never sent"); continue; }
            if (!s.synced) bad.push(t + " sent " + s.sent_version + " acked " + s.acked_version);
            if (s.nack_version || s.nack_error) bad.push(t + " NACK " + s.nack_version + ": " + s.nack_error);
        }
        if (r.types.SDS) bad.push("SDS was sent");
        if (bad.length) { console.log(bad.join("; ")); process.exit(1); }
        console.log(JSON.stringify(r.types));' "$CLIENT"
}
acked() { # acked TYPE: the version of TYPE the client last ACKed
    "$M" proxy-status --output json | node -e '
        const r = JSON.parse(require("fs").readFileSync(0, "utf8")).find((x) => x.node_id === process.argv[1]);
        console.log(r && r.types[process.argv[2]] ? r.types[process.argv[2]].acked_version : "");' "$CLIENT" "$1"
}

echo "xds client: setup"
"$M" ca init --trust-domain $TD >/dev/null
check_out "the client's identity is registered" '"registered":true' "$M" workload add "$CLIENT" --output json
write_config "$WEIGHTS_A" "$CLIENT-nobody"
check_out "mesh config applies" "config version" "$M" apply -f "$D/mesh.yaml"
check_err "meshd refuses a non-loopback plaintext port" "not a loopback address" \
    "$MESH_BIN/meshd" --db "$MESHD_DB" --listen 127.0.0.1:"$MTLS" --xds-plaintext-listen 0.0.0.0:"$PLAIN"
check_err "meshd refuses the mTLS address as plaintext port" "that is the mTLS --listen address" \
    "$MESH_BIN/meshd" --db "$MESHD_DB" --listen 127.0.0.1:"$MTLS" --xds-plaintext-listen 127.0.0.1:"$MTLS"
check_err "--xds-plaintext-allow-remote alone is an error" "needs --xds-plaintext-listen" \
    "$MESH_BIN/meshd" --db "$MESHD_DB" --xds-plaintext-allow-remote
MESHD=("$MESH_BIN/meshd" --db "$MESHD_DB" --listen 127.0.0.1:"$MTLS"
       --xds-plaintext-listen 127.0.0.1:"$PLAIN" --instance e2e-xds-client --log-level debug)
start meshd "${MESHD[@]}"
MESHD_PID=$LAST_PID
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
check "the new RDS is ACKed, nothing NACKed" wait_for 10 sh -c "$(declare -f status_check acked); M='$M'; CLIENT='$CLIENT'; status_check >/dev/null && [ \"\$(acked RDS)\" != '$rds1' ]"
rds2=$(acked RDS)
write_config "$CANARY" "$CLIENT-nobody"
check_out "a header rule applied" "1 changed" "$M" apply -f "$D/mesh.yaml"
check "x-canary: 1 now goes to backend a" wait_for 20 recent canary 10 a
check "other calls stay on backend b" recent plain 10 b
check_out "the backend saw the header the route matched" '"name":"a","canary":"1"' tail -n 20 "$D/client.log"
check "ACKed again, no NACK" wait_for 10 sh -c "$(declare -f status_check acked); M='$M'; CLIENT='$CLIENT'; status_check >/dev/null && [ \"\$(acked RDS)\" != '$rds2' ]"

echo "xds client: authorization decides which endpoints it gets"
before="$(acked LDS) $(acked RDS) $(acked CDS)"
eds1=$(acked EDS)
write_config "$CANARY" "$CLIENT"
check_out "the client may now call backend-c" "1 changed" "$M" apply -f "$D/mesh.yaml"
check "xds:///backend-c now reaches backend c" wait_for 20 recent denied 5 c
check "the new EDS is ACKed, no NACK" wait_for 10 sh -c "$(declare -f status_check acked); M='$M'; CLIENT='$CLIENT'; status_check >/dev/null && [ \"\$(acked EDS)\" != '$eds1' ]"
check "LDS, RDS and CDS did not move" test "$(acked LDS) $(acked RDS) $(acked CDS)" = "$before"

echo "xds client: meshd is on the config path only"
kill -TERM "$MESHD_PID"
check "meshd stops" wait_for 10 sh -c "! kill -0 $MESHD_PID 2>/dev/null"
n_before=$(grep -c '"call":"plain"' "$D/client.log")
sleep 2
check "with meshd down the client keeps calling (cached config)" recent plain 10 b
check "and made calls meanwhile" test "$(grep -c '"call":"plain"' "$D/client.log")" -gt $((n_before + 10))
start meshd2 "${MESHD[@]}"
MESHD_PID=$LAST_PID
check "meshd is back" wait_port "$PLAIN" 15
check "the client reconnects and is in sync again" wait_for 30 status_check
check "traffic is unaffected" recent plain 10 b
check "the client process is still running" kill -0 "$CLIENT_PID"

echo "xds client: what the plaintext port refuses"
RAW=(node "$CONF/xds_client_raw.js")
S=(--server 127.0.0.1:"$PLAIN")
# Another instance of the client's identity: "<SPIFFE ID>#<instance>" keeps its
# proxy-status row apart from the real client's.
check_out "a registered identity gets its listener" '"names":["backend"]' \
    "${RAW[@]}" ads "${S[@]}" --node-id "$CLIENT#raw-1" --type lds --names backend
check_out "an instance name shows as its own node" "\"node_id\":\"$CLIENT#raw-1\"" "$M" proxy-status --output json
check_out "a bad instance name is refused" "names the instance" \
    "${RAW[@]}" ads "${S[@]}" --node-id "$CLIENT#bad/instance" --expect-status UNAUTHENTICATED
check_out "an unregistered Node.id is refused" "is not a registered identity" \
    "${RAW[@]}" ads "${S[@]}" --node-id "spiffe://$TD/ns/demo/sa/stranger" --expect-status PERMISSION_DENIED
check_out "a request without Node.id is refused" "must carry Node.id" \
    "${RAW[@]}" ads "${S[@]}" --node-id "" --expect-status UNAUTHENTICATED
check_out "a Node.id that is no SPIFFE ID is refused" "not a usable SPIFFE ID" \
    "${RAW[@]}" ads "${S[@]}" --node-id "grpc-client-1" --expect-status UNAUTHENTICATED
check_out "a foreign trust domain is refused" "meshd serves \\\"$TD\\\"" \
    "${RAW[@]}" ads "${S[@]}" --node-id "spiffe://other.org/ns/demo/sa/client" --expect-status PERMISSION_DENIED
check_out "secrets are never served in plaintext" "secrets are never served" \
    "${RAW[@]}" ads "${S[@]}" --node-id "$CLIENT#raw-2" --type sds --names default,ROOTCA --expect-status PERMISSION_DENIED
check_out "CreateCertificate is refused in plaintext" "UNAUTHENTICATED" \
    "${RAW[@]}" unary "${S[@]}" --method /istio.v1.auth.IstioCertificateService/CreateCertificate --expect-status UNAUTHENTICATED
check_out "FetchSecrets is refused in plaintext" "UNAUTHENTICATED" \
    "${RAW[@]}" unary "${S[@]}" --method /envoy.service.secret.v3.SecretDiscoveryService/FetchSecrets --expect-status UNAUTHENTICATED
check_out "StreamSecrets is refused in plaintext" "UNAUTHENTICATED" \
    "${RAW[@]}" unary "${S[@]}" --method /envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets --expect-status UNAUTHENTICATED
check_out "Delta ADS is not served in plaintext" "State-of-the-World ADS only" \
    "${RAW[@]}" unary "${S[@]}" --method /envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources --expect-status UNIMPLEMENTED
check_out "the refusals are audited" "xds.denied" "$M" audit --limit 50
# A sidecar-like client with an SVID on the mTLS port, while the plaintext port is on.
BACKEND_A=spiffe://$TD/ns/demo/sa/backend-a
"$M" ca bundle >"$D/bundle.pem"
tok=$("$M" workload add "$BACKEND_A" --output json | sed -nE 's/.*"token":"([^"]+)".*/\1/p')
XC=("$MESH_BIN/mesh-xdsclient" --server 127.0.0.1:"$MTLS" --bundle "$D/bundle.pem")
check "a sidecar gets its SVID over TLS with the plaintext port on" \
    "${XC[@]}" --token "$tok" --id "$BACKEND_A" --state-dir "$D/sidecar" --no-stream
check_out "and its sidecar view (mTLS listener) over mTLS" '"inbound|'"$IA"'"' \
    "${XC[@]}" --state-dir "$D/sidecar" --sub 'lds=*' --node-id sidecar-a --exit-after 1 --timeout 10s
check_fails "the mTLS port still wants TLS" \
    "${RAW[@]}" ads --server 127.0.0.1:"$MTLS" --node-id "$CLIENT#raw-3" --timeout 3000
check "meshd is still running" kill -0 "$MESHD_PID"
check "the real client is still in sync" status_check

echo "xds client: a UNIX socket instead of loopback TCP"
kill -TERM "$MESHD_PID"
wait_for 10 sh -c "! kill -0 $MESHD_PID 2>/dev/null"
start meshd3 "$MESH_BIN/meshd" --db "$MESHD_DB" --listen 127.0.0.1:"$MTLS" \
    --xds-plaintext-listen "unix:$D/xds.sock" --instance e2e-xds-client
check "meshd serves xDS on unix:$D/xds.sock" wait_for 15 test -S "$D/xds.sock"
check_out "a registered identity gets its listener over the socket" '"names":["backend"]' \
    "${RAW[@]}" ads --server "unix://$D/xds.sock" --node-id "$CLIENT#uds" --type lds --names backend

e2e_finish
