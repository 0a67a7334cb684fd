#!/usr/bin/env bash
# tests/e2e/test_sidecar_grpc.sh — gRPC through two sidecars with a real gRPC client and
# server nobody here wrote (Debian's python3-grpcio; tests/e2e/grpc_app.py, grpc_client.py):
# h2c with prior knowledge into web's outbound listener, h2 over mTLS (ALPN) to api's
# sidecars, h2c to the apps. Unary with trailers, the caller's identity in XFCC, server
# streaming, bidi with 10,000 messages, a 16 MB message, a deadline, a cancellation reaching
# the app, an error as a trailers-only response, RBAC as PERMISSION_DENIED, per-request load
# balancing over 2 endpoints on one client connection; HTTP/1.1 still served on the same
# listener; a malformed h2 frame answered with GOAWAY and a broken preface with 400.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup

PY=/usr/bin/python3
if ! "$PY" -c 'import grpc' 2>/dev/null; then
    missing_dep "python3-grpcio is installed" "python3-grpcio is not installed (tools/deps.sh)"
    e2e_finish
    exit
fi
HERE=$(cd "$(dirname "$0")" && pwd)
WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api
SECRET=spiffe://$TD/ns/default/sa/secret
PLAIN=spiffe://$TD/ns/default/sa/plain

echo "sidecar grpc: setup"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
sc_port P_WEB_IN; sc_port P_WEB_OUT; sc_port P_WEB_APP
sc_port P_A1_IN; sc_port P_A1_APP; sc_port P_A2_IN; sc_port P_A2_APP
sc_port P_S_IN; sc_port P_S_APP; sc_port P_P_IN; sc_port P_P_APP
cat >"$D/mesh.yaml" <<YAML
services:
  - {name: web, protocol: http, port: $P_WEB_APP}
  - {name: api, protocol: grpc, port: $P_A1_APP}
  - {name: secret, protocol: grpc, port: $P_S_APP}
  - {name: plain, protocol: http, port: $P_P_APP}
workloads:
  - {name: web-1, spiffe_id: "$WEB", service: web, inbound: "127.0.0.1:$P_WEB_IN",
     app: "127.0.0.1:$P_WEB_APP", outbound: "127.0.0.1:$P_WEB_OUT"}
  - {name: api-1, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_A1_IN",
     app: "127.0.0.1:$P_A1_APP"}
  - {name: api-2, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_A2_IN",
     app: "127.0.0.1:$P_A2_APP"}
  - {name: secret-1, spiffe_id: "$SECRET", service: secret, inbound: "127.0.0.1:$P_S_IN",
     app: "127.0.0.1:$P_S_APP"}
  - {name: plain-1, spiffe_id: "$PLAIN", service: plain, inbound: "127.0.0.1:$P_P_IN",
     app: "127.0.0.1:$P_P_APP"}
routes:
  - name: api-slow
    hosts: [api-slow]
    rules:
      - match: {prefix: /mesh.Test/}
        destinations: [{service: api}]
        timeout: 1s
  - name: api-stream          # long streams: more than the default 15 s route timeout
    hosts: [api-stream]
    rules:
      - match: {prefix: /mesh.Test/}
        destinations: [{service: api}]
        timeout: 10m
authorization:
  - {service: api, allow: ["$WEB"]}
  - {service: plain, allow: ["$WEB"]}
YAML
check "apply a mesh with grpc services" "$M" apply -f "$D/mesh.yaml"
# Replicas sharing an identity are enrolled one by one (docs/control-plane.md).
token_of() { jq -r '.token | select(startswith("mjt_"))'; }
enrol_as() { "$M" --output json workload add "$1" --id "$2" | token_of >"$D/$3.token"; }
enrol_as web-1 "$WEB" web
enrol_as api-1 "$API" api-1
enrol_as api-2 "$API" api-2
enrol_as secret-1 "$SECRET" secret
enrol_as plain-1 "$PLAIN" plain
start app-api-1 "$PY" "$HERE/grpc_app.py" "127.0.0.1:$P_A1_APP" api-1 "$D"
start app-api-2 "$PY" "$HERE/grpc_app.py" "127.0.0.1:$P_A2_APP" api-2 "$D"
start app-secret "$PY" "$HERE/grpc_app.py" "127.0.0.1:$P_S_APP" secret "$D"
start app-plain "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_P_APP" --name plain
check "gRPC apps are up" wait_port "$P_A2_APP" 15
sc_start_meshd
check "meshd is up" wait_port "$MESHD_PORT" 10
sc_start_sidecar web "$WEB" --workload web-1
sc_start_sidecar api-1 "$API" --workload api-1
sc_start_sidecar api-2 "$API" --workload api-2
sc_start_sidecar secret "$SECRET" --workload secret-1
sc_start_sidecar plain "$PLAIN" --workload plain-1
for n in web api-1 api-2 secret plain; do
    check "sidecar $n becomes ready" wait_for 40 sc_ready "$n"
done
check "outbound listener is up" wait_port "$P_WEB_OUT" 10

gc() { "$PY" "$HERE/grpc_client.py" "127.0.0.1:$P_WEB_OUT" "$@"; }
# wait until the route and both endpoints are in place (EDS may trail LDS)
wait_for 15 gc api unary >/dev/null 2>&1

echo "sidecar grpc: calls"
check_out "unary call with trailing metadata" "ok unary" gc api unary
check_out "the app sees the caller's SPIFFE ID in XFCC" "ok xfcc" gc api who "URI=$WEB"
check_out "server streaming, 1000 messages" "ok 1000 messages" gc api stream 1000
check_out "bidi streaming, 10,000 messages in order" "ok bidi 10000" gc api bidi 10000
check_out "a 16 MB message both ways" "ok 16 MB round trip" gc api big
check_out "a deadline that expires" "ok StatusCode.DEADLINE_EXCEEDED" gc api deadline
check_out "the route timeout ends a slow call as DEADLINE_EXCEEDED" \
    "ok StatusCode.DEADLINE_EXCEEDED 'upstream request timeout'" gc api-slow slow
rm -f "$D"/cancelled-*
check_out "a cancelled call" "ok cancelled" gc api cancel
check "the cancellation (RST_STREAM) reached the app through both sidecars" \
    wait_for 5 sh -c "cat '$D'/cancelled-api-* 2>/dev/null | grep -q cancelled"
check_out "an error as a trailers-only response" "ok StatusCode.NOT_FOUND 'no such thing'" gc api error
check_out "RBAC refusal as PERMISSION_DENIED" "ok StatusCode.PERMISSION_DENIED" gc secret code PERMISSION_DENIED
check_out "an unknown host as UNIMPLEMENTED (404)" "ok StatusCode.UNIMPLEMENTED" gc nosuch code UNIMPLEMENTED
check_out "40 calls on one connection spread over both endpoints" "ok spread" gc api spread 40

echo "sidecar grpc: flow control end to end"
# A client that stops reading a 128 MiB server stream: each sidecar holds what the HTTP/2
# windows allow (64 KiB per stream, 1 MiB per connection, plus 1 MiB of socket backlog),
# not the stream. Before and while it stalls, the resident memory of every sidecar on the
# path is sampled.
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
path_rss() { echo $(( $(rss_kb "$PID_web") + $(rss_kb "$PID_api_1") + $(rss_kb "$PID_api_2") )); }
# ASan's quarantine keeps freed memory resident: a looser bound there (the unbounded
# design grows by more than the 128 MiB stream either way).
limit=24
ldd "$MESH_BIN/mesh-sidecar" 2>/dev/null | grep -q libasan && limit=64
before=$(path_rss)
gc api-stream stall 4 >"$D/stall.out" 2>&1 &
stall_pid=$!
wait_for 10 grep -q stalling "$D/stall.out"
sleep 2.5
during=$(path_rss)
echo "  (sidecars' RSS: ${before} kB before, ${during} kB with the reader stalled)"
check "a stalled reader of 128 MiB grows the sidecars by < $limit MiB (got $(( (during - before) / 1024 )) MiB)" \
    test $((during - before)) -lt $((limit * 1024))
wait "$stall_pid"
check_out "the stalled reader then gets every message" "ok stalled reader got 128 of 128" \
    cat "$D/stall.out"

echo "sidecar grpc: the listener still speaks HTTP/1.1"
check_out "HTTP/1.1 to an http service on the same listener" "200" sc_get plain "$P_WEB_OUT" /
check_out "HTTP/1.1 to a grpc service is refused, not mistranslated" "502" sc_get api "$P_WEB_OUT" /

echo "sidecar grpc: malformed input"
raw() { "$PY" - "$P_WEB_OUT" "$1" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
if sys.argv[2] == "frame":      # a SETTINGS frame of 5 bytes (RFC 9113 6.5: FRAME_SIZE_ERROR)
    s.sendall(preface + b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"\x00" * 5)
elif sys.argv[2] == "stream0":  # HEADERS on stream 0 (PROTOCOL_ERROR)
    s.sendall(preface + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\x00\x00\x01\x01\x05\x00\x00\x00\x00\x82")
else:                           # a broken preface: not HTTP/2, and not HTTP/1.1 either
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
data = b""
t0 = time.time()
while time.time() - t0 < 3:
    try:
        b = s.recv(65536)
    except socket.timeout:
        break
    if not b:
        break
    data += b
if sys.argv[2] == "preface":
    print("closed with", data.split(b"\r\n")[0].decode(errors="replace"))
    sys.exit(0)
# walk the frames for a GOAWAY (type 7) and print its error code
i = 0
while i + 9 <= len(data):
    ln = int.from_bytes(data[i:i + 3], "big"); ty = data[i + 3]
    if ty == 7 and i + 9 + 8 <= len(data):
        print("GOAWAY error", int.from_bytes(data[i + 13:i + 17], "big"), "then closed")
        sys.exit(0)
    i += 9 + ln
print("no GOAWAY in", data[:64])
sys.exit(1)
PY
}
check_out "a malformed SETTINGS frame gets GOAWAY FRAME_SIZE_ERROR" "GOAWAY error 6" raw frame
check_out "HEADERS on stream 0 gets GOAWAY PROTOCOL_ERROR" "GOAWAY error 1" raw stream0
check_out "a broken preface is refused as HTTP/1.1 (400)" "closed with HTTP/1.1 400" raw preface
check "web's sidecar is still running" kill -0 "$PID_web"
check_out "and still serves gRPC" "ok unary" gc api unary

for n in web api_1 api_2 secret plain; do
    pid_var="PID_$n"
    sc_stop "${!pid_var}"
    check "sidecar $n stops on SIGTERM" not_running "${!pid_var}"
done
check "no sanitizer report from any sidecar (ASan builds)" \
    sh -c "! grep -q 'Sanitizer\|runtime error' '$D'/sc-*.log"

e2e_finish
