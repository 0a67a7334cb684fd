#!/usr/bin/env bash
# tests/e2e/test_xds_client_core.sh — TWO real proxyless xDS clients nobody here wrote,
# side by side against one meshd: grpc C core's own xDS client (Debian's python3-grpcio
# 1.51, tests/conformance/xds_client.py; the core that C++, Python, Ruby, PHP and C# wrap)
# and @grpc/grpc-js-xds (tests/conformance/xds_client.js). Both call meshtest.Echo/Who on
# xds:///backend, with the same calls, and the backends (two grpc core servers,
# xds_client_backend.py, and one grpc-js server, xds_client_backend.js) say who answered.
# Every route feature meshd emits for proxyless views must be ACKed by both (no NACK in
# proxy-status) and steer their traffic as the mesh config says:
#   - exact path + exact header (x-canary: 1) -> a;
#   - path prefix + header prefix (x-canary: beta...) -> c, no timeout: a slow call works;
#   - header present (x-retry) -> b with 2 retries: a call whose first two attempts fail
#     UNAVAILABLE succeeds on the third;
#   - header present (x-slow) -> c with a 300 ms timeout (max_stream_duration): a 1 s call
#     ends DEADLINE_EXCEEDED, a quick one answers. grpc core 1.51 ends every call on a
#     rule with a sub-second timeout at once (its own bug, docs/xds-clients.md): checked
#     as such, so that a fixed grpc core shows up here;
#   - a rule no gRPC path can match (prefix /a/b/c): dropped, not sent;
#   - everything else: weights 1/3 (not summing to 100) over a and b, no retries: the
#     same failing call fails UNAVAILABLE.
# Before meshd emitted header matchers C core reads, C core NACKed this route table
# ("Invalid route header matcher specified.") and every call failed.
# In CI (CI=true) a missing node or python3-grpcio is a failure, elsewhere a skip.
. "$(dirname "$0")/lib.sh"
e2e_setup

need_node "npm ci installs @grpc/grpc-js-xds"
PY=/usr/bin/python3   # Debian's python3 and its python3-grpcio, not a pyenv or venv one
if ! "$PY" -c 'import grpc, google.protobuf' 2>/dev/null; then
    missing_dep "python3-grpcio is installed (tools/deps.sh installs it)" \
        "python3-grpcio not installed (run tools/deps.sh)"
    e2e_finish
    exit $?
fi

TD=example.org
CLIENT=spiffe://$TD/ns/demo/sa/client
NODE_CORE="$CLIENT#grpc-core"
NODE_JS="$CLIENT#grpc-js"
PA=$(free_port); PB=$(free_port); PC=$(free_port)
MTLS=$(free_port); PLAIN=$(free_port)
IA=$(free_port); IB=$(free_port); IC=$(free_port)

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
      - match:
          path: /meshtest.Echo/Who
          headers: [{name: x-canary, exact: "1"}]
        destinations: [{service: backend-a}]
      - match:
          prefix: /meshtest.Echo/
          headers: [{name: x-canary, prefix: beta}]
        destinations: [{service: backend-c}]
      - match:
          prefix: /
          headers: [{name: x-retry, present: true}]
        destinations: [{service: backend-b}]
        retries: 2
      - match:
          prefix: /
          headers: [{name: x-slow, present: true}]
        destinations: [{service: backend-c}]
        timeout: 300ms
      - match: {prefix: /a/b/c}
        destinations: [{service: backend-c}]
      - match: {prefix: /}
        destinations: [{service: backend-a, weight: 1}, {service: backend-b, weight: 3}]
authorization:
  - {service: backend-a, allow: [$CLIENT]}
  - {service: backend-b, allow: [$CLIENT]}
  - {service: backend-c, allow: [$CLIENT]}
EOF

# calls LOG CALL: the client's log lines for CALL.
calls() { json_lines "$1" '.call == $c' --arg c "$2"; }
# recent LOG CALL N NAME [ATTEMPTS]: the last N replies to CALL came from backend NAME
# (after ATTEMPTS attempts when given).
recent() {
    local filter='.ok == true and .name == $n and ($a == "" or (.attempts | tostring) == $a)'
    [ "$(calls "$1" "$2" | tail -n "$3" | count_where - "$filter" --arg n "$4" --arg a "${5:-}")" -eq "$3" ]
}
# recent_fail LOG CALL N STATUS: the last N calls to CALL failed with STATUS.
recent_fail() {
    local filter='.ok == false and (.code | type) == "number" and .status == $s'
    [ "$(calls "$1" "$2" | tail -n "$3" | count_where - "$filter" --arg s "$4")" -eq "$3" ]
}
# weighted LOG: at least 40 "plain" calls, the last 40 all answered, by both a and b, b
# more often (weights 1/3: a chance of about 1e-5 that a random split fails this).
weighted() {
    local last na nb
    last=$(calls "$1" plain | tail -n 40)
    [ "$(printf '%s\n' "$last" | count_where - '.ok == true')" -eq 40 ] || return 1
    na=$(printf '%s\n' "$last" | count_where - '.name == "a"')
    nb=$(printf '%s\n' "$last" | count_where - '.name == "b"')
    [ "$na" -gt 0 ] && [ "$nb" -gt "$na" ] && [ $((na + nb)) -eq 40 ]
}
# status_check NODE: NODE's proxy-status row is connected with LDS, RDS, CDS and EDS all
# ACKed at the version last sent and no NACK; prints what is wrong otherwise.
status_check() {
    "$M" proxy-status --output json | jq -nr --arg id "$1" '
        input | (first(.[] | select(.node_id == $id)) // ("no proxy-status row for \($id)\n" | halt_error(1)))
        | [ if .connected then empty else "not connected" end,
            (.types as $types | "LDS", "RDS", "CDS", "EDS" | . as $t | $types[$t]
             | if . == null then "\($t) never sent"
               else (if .synced then empty else "\($t) sent \(.sent_version) acked \(.acked_version)" end),
                    (if (.nack_version // "") != "" or (.nack_error // "") != ""
                     then "\($t) NACK \(.nack_version): \(.nack_error)" else empty end)
               end) ] as $bad
        | if $bad == [] then .types | tojson else $bad | join("; ") + "\n" | halt_error(1) end'
}

echo "xds client core: setup"
"$M" ca init --trust-domain "$TD" >/dev/null
check_out "the client's identity is registered" '"registered":true' "$M" workload add "$CLIENT" --output json
check_out "mesh config applies" "config version" "$M" apply -f "$D/mesh.yaml"
MESHD_PORT=$MTLS
start_meshd meshd --xds-plaintext-listen 127.0.0.1:"$PLAIN" --instance e2e-xds-core
check "meshd listens (plaintext xDS)" wait_port "$PLAIN" 15
start backend-a "$PY" "$CONF/xds_client_backend.py" --name a --listen 127.0.0.1:"$PA"
start backend-b "$PY" "$CONF/xds_client_backend.py" --name b --listen 127.0.0.1:"$PB"
start backend-c node "$CONF/xds_client_backend.js" --name c --listen 127.0.0.1:"$PC"
backends_up() { wait_port "$PA" 15 && wait_port "$PB" 15 && wait_port "$PC" 15; }
check "the three gRPC backends listen (two grpc core, one grpc-js)" backends_up
for n in core js; do
    node_id=$NODE_CORE
    [ "$n" = js ] && node_id=$NODE_JS
    cat >"$D/bootstrap-$n.json" <<EOF
{
  "xds_servers": [{"server_uri": "127.0.0.1:$PLAIN", "channel_creds": [{"type": "insecure"}],
                   "server_features": ["xds_v3"]}],
  "node": {"id": "$node_id", "cluster": "grpc-clients", "locality": {}}
}
EOF
done
CALLS=(--call plain=xds:///backend
       --call canary=xds:///backend,x-canary=1
       --call timed-slow=xds:///backend,x-slow=1,@sleep_ms=1000
       --call timed=xds:///backend,x-slow=1
       --call beta-slow=xds:///backend,x-canary=beta-7,@sleep_ms=400
       --call retried=xds:///backend,x-retry=yes,@fail_first=2
       --call not-retried=xds:///backend,@fail_first=2
       --interval 50 --deadline 3000)
GRPC_XDS_BOOTSTRAP="$D/bootstrap-core.json" start core "$PY" "$CONF/xds_client.py" "${CALLS[@]}"
CORE_PID=$LAST_PID
GRPC_XDS_BOOTSTRAP="$D/bootstrap-js.json" start js node "$CONF/xds_client.js" "${CALLS[@]}"
JS_PID=$LAST_PID

for log in core js; do
    node_id=$NODE_CORE
    [ "$log" = js ] && node_id=$NODE_JS
    echo "xds client core: $log (node $node_id)"
    check "$log: exact path + x-canary: 1 reaches a" wait_for 30 recent "$log" canary 5 a
    check "$log: x-slow present: a 1 s call ends at the rule's 300 ms timeout" \
        wait_for 10 recent_fail "$log" timed-slow 3 DEADLINE_EXCEEDED
    if [ "$log" = js ]; then
        check "$log: and a quick call there is answered by c" wait_for 10 recent "$log" timed 3 c
    else
        check "$log: and a quick call there fails too: grpc core 1.51's sub-second timeout bug" \
            wait_for 10 recent_fail "$log" timed 3 DEADLINE_EXCEEDED
    fi
    check "$log: prefix + x-canary: beta-7 reaches c, slow calls too (no timeout)" \
        wait_for 10 recent "$log" beta-slow 3 c
    check_out "$log: c saw the header the route matched" '"name":"c","canary":"beta-7"' \
        tail -n 40 "$D/$log.log"
    check "$log: x-retry present reaches b; two failed attempts retried, the third answers" \
        wait_for 10 recent "$log" retried 3 b 3
    check "$log: without a retry policy the same call fails UNAVAILABLE" \
        wait_for 10 recent_fail "$log" not-retried 3 UNAVAILABLE
    check "$log: everything else is split 1/3 over a and b" wait_for 40 weighted "$log"
    check "$log: LDS, RDS, CDS and EDS ACKed, no NACK" wait_for 10 status_check "$node_id"
done
check "both clients still run" kill -0 "$CORE_PID" "$JS_PID"

e2e_finish
