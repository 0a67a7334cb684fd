#!/usr/bin/env bash
# tests/e2e/test_meshd_ca.sh — meshd's CA service and its edges, with real processes:
# startup errors, first contact with a join token (spent once), mTLS renewal, revocation,
# refusals mapped to gRPC codes, hostile bytes and oversized messages, UNIMPLEMENTED for
# unserved methods, SIGKILL right after issuance, graceful SIGTERM.
. "$(dirname "$0")/lib.sh"
e2e_setup
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api

# cert_event FIELD: FIELD of the certificate event in mesh-xdsclient's output on stdin.
cert_event() { json_lines - '.event == "certificate"' | jq -r --arg f "$1" '.[$f]' | head -n 1; }
pubkey_of_cert() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum; }
pubkey_of_key() { openssl pkey -in "$1" -pubout -outform DER | sha256sum; }

echo "meshd: startup errors"
P=$(free_port)
check_err "meshd needs --db" "--db" "$MD" --listen 127.0.0.1:"$P"
check_err "meshd on a store without CA says to run meshctl ca init" "meshctl ca init" \
    "$MD" --db "$D/empty.db" --listen 127.0.0.1:"$P"
head -c 4096 /dev/urandom >"$D/corrupt.db"
check_err "meshd on a damaged store says so" "damaged" "$MD" --db "$D/corrupt.db" --listen 127.0.0.1:"$P"
check_err "bad --svid-ttl is refused" "--svid-ttl" "$MD" --db "$MESHD_DB" --svid-ttl 5x
check_err "--svid-ttl above 90 days is refused" "--svid-ttl" "$MD" --db "$MESHD_DB" --svid-ttl 91d
check_err "bad --rotate-fraction is refused" "--rotate-fraction" "$MD" --db "$MESHD_DB" --rotate-fraction 2

ca_init
start_meshd meshd --instance e2e-ca
check "meshd listens" wait_port "$MESHD_PORT" 15
S+=(--timeout 10s)
check_err "a second meshd on the same port says why" "cannot listen" "$MD" --db "$MESHD_DB" --listen 127.0.0.1:"$MESHD_PORT"

echo "meshd: first contact with a join token"
TOK=$(workload_add "$WEB")
out=$("$XC" "${S[@]}" --token "$TOK" --id "$WEB" --state-dir "$D/web" --no-stream 2>&1)
check_out "SVID issued for a join token" '"auth":"token"' echo "$out"
check_out "SVID carries the registered identity" "\"spiffe_id\":\"$WEB\"" echo "$out"
check_out "CreateCertificate returns leaf and root (Istio order)" '"chain":2' echo "$out"
check "the key file is 0600" test "$(stat -c %a "$D/web/key.pem")" = 600
check_out "openssl verifies the SVID against the bundle" "OK" openssl verify -CAfile "$D/bundle.pem" "$D/web/cert.pem"
check "the SVID is for the client's own key" test "$(pubkey_of_cert "$D/web/cert.pem")" = "$(pubkey_of_key "$D/web/key.pem")"
serial=$(printf '%s' "$out" | cert_event serial)
check_out "the store recorded the SVID" "$WEB" "$M" cert show "$serial"
check_err "a spent join token is refused" "UNAUTHENTICATED" "$XC" "${S[@]}" --token "$TOK" --id "$WEB" --no-stream
check_err "an unknown join token is refused" "UNAUTHENTICATED" \
    "$XC" "${S[@]}" --token mjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA --id "$WEB" --no-stream
check_err "a malformed authorization header is refused" "UNAUTHENTICATED" \
    "$XC" "${S[@]}" --token "not-a-token" --id "$WEB" --no-stream
"$M" workload add "$API" >/dev/null
check_err "a token cannot buy another identity" "PERMISSION_DENIED" \
    "$XC" "${S[@]}" --token "$(workload_token "$WEB")" --id "$WEB" --csr-id "$API" --no-stream
check_err "a request without credentials is refused" "UNAUTHENTICATED" \
    "$XC" "${S[@]}" --anonymous --id "$WEB" --no-stream
check_err "validity above 90 days is rejected, not shortened" "INVALID_ARGUMENT" \
    "$XC" "${S[@]}" --token "$(workload_token "$WEB")" --id "$WEB" --ttl 91d --no-stream
out=$("$XC" "${S[@]}" --token "$(workload_token "$WEB")" --id "$WEB" --ttl 1h --no-stream 2>&1)
nb=$(printf '%s' "$out" | cert_event not_before)
na=$(printf '%s' "$out" | cert_event not_after)
check "validity_duration is honoured (1h)" test "$((na - nb))" -le 3610 -a "$((na - nb))" -ge 3590
out=$("$XC" "${S[@]}" --token "$(workload_token "$WEB")" --id "$WEB" --no-stream 2>&1)
nb=$(printf '%s' "$out" | cert_event not_before)
na=$(printf '%s' "$out" | cert_event not_after)
check "validity 0 means meshd's --svid-ttl (24h)" test "$((na - nb))" -ge 86390 -a "$((na - nb))" -le 86410

echo "meshd: renewal over mTLS"
out=$("$XC" "${S[@]}" --state-dir "$D/web" --renew --no-stream 2>&1)
check_out "renewal with the current SVID" '"auth":"mtls"' echo "$out"
check "renewal keeps the key" test "$(pubkey_of_cert "$D/web/cert.pem")" = "$(pubkey_of_key "$D/web/key.pem")"
check_err "renewal cannot ask for another identity" "PERMISSION_DENIED" \
    "$XC" "${S[@]}" --state-dir "$D/web" --renew --csr-id "$API" --no-stream
"$XC" "${S[@]}" --token "$(workload_token "$WEB")" --id "$WEB" --state-dir "$D/web-revoked" --no-stream >/dev/null 2>&1
rserial=$(openssl x509 -in "$D/web-revoked/cert.pem" -noout -serial | cut -d= -f2)
"$M" cert revoke "$rserial" --reason cessationOfOperation >/dev/null
check_err "renewal with a revoked SVID is refused" "revoked" \
    "$XC" "${S[@]}" --state-dir "$D/web-revoked" --renew --no-stream
"$M" workload remove "$API" >/dev/null
TOK_API=$(workload_add "$API")
"$XC" "${S[@]}" --token "$TOK_API" --id "$API" --state-dir "$D/api" --no-stream >/dev/null 2>&1
"$M" workload remove "$API" >/dev/null
check_err "renewal of a removed registration is refused" "no longer registered" \
    "$XC" "${S[@]}" --state-dir "$D/api" --renew --no-stream

echo "meshd: hostile input"
check_err "garbage bytes on ADS get INVALID_ARGUMENT" "INVALID_ARGUMENT" \
    "$XC" "${S[@]}" --state-dir "$D/web" --raw-size 64
check_err "a 5 MB message is refused (4 MiB limit)" "RESOURCE_EXHAUSTED" \
    "$XC" "${S[@]}" --state-dir "$D/web" --raw-size 5000000
check_err "garbage CreateCertificate gets INVALID_ARGUMENT" "INVALID_ARGUMENT" \
    "$XC" "${S[@]}" --state-dir "$D/web" --method /istio.v1.auth.IstioCertificateService/CreateCertificate --raw-size 32
check_err "an unserved method gets UNIMPLEMENTED at once" "UNIMPLEMENTED" \
    "$XC" "${S[@]}" --state-dir "$D/web" --timeout 5s \
    --method /envoy.service.listener.v3.ListenerDiscoveryService/DeltaListeners --raw-size 0
check_err "ADS without a client certificate gets UNAUTHENTICATED" "UNAUTHENTICATED" \
    "$XC" "${S[@]}" --anonymous
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >"$D/http.txt"
(exec 3<>"/dev/tcp/127.0.0.1/$MESHD_PORT" && cat "$D/http.txt" >&3 && timeout 2 cat <&3 >/dev/null) 2>/dev/null
check "meshd survives all of it" kill -0 "$MESHD_PID"
check_out "and still serves" '"type":"SDS"' "$XC" "${S[@]}" --state-dir "$D/web" --sub sds=default --exit-after 1

echo "meshd: CSR admission control"
PORT_ADM=$(free_port)
start meshd-adm "$MD" --db "$MESHD_DB" --listen 127.0.0.1:"$PORT_ADM" --instance e2e-adm --workers 1 --max-pending-csr 1
ADM_PID=$LAST_PID
check "a second meshd (1 worker, 1 pending CSR) listens" wait_port "$PORT_ADM" 15
pids=()
for i in $(seq 1 40); do
    "$XC" --server 127.0.0.1:"$PORT_ADM" --bundle "$D/bundle.pem" --timeout 20s --cert "$D/web/cert.pem" \
        --key "$D/web/key.pem" --renew --no-stream >"$D/adm-$i.out" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
check "a burst beyond the admission limit gets UNAVAILABLE" test "$(grep -l 'meshd is busy' "$D"/adm-*.out | wc -l)" -ge 1
check "and the admitted requests are served" \
    test "$(cat "$D"/adm-*.out | count_where - '.auth == "mtls"')" -ge 1
kill -TERM "$ADM_PID"

echo "meshd: audit"
audit=$("$M" audit --limit 200)
check_out "issuances are audited" "cert.issue" echo "$audit"
check_out "refusals are audited" "cert.denied" echo "$audit"
TOKEN_RE='mjt_[A-Za-z0-9_-]{43}'
check "no join token reaches the audit log" test "$(printf '%s' "$audit" | grep -cE "$TOKEN_RE")" -eq 0
check "no join token reaches meshd's log" test "$(grep -cE "$TOKEN_RE" "$D/meshd.log")" -eq 0
check_err "a stream opened with a revoked SVID is closed" "revoked" \
    "$XC" "${S[@]}" --state-dir "$D/web-revoked" --sub sds=default

echo "meshd: SIGKILL right after issuance loses nothing"
out=$("$XC" "${S[@]}" --token "$(workload_token "$WEB")" --id "$WEB" --no-stream 2>&1)
{ kill -KILL "$MESHD_PID" && wait "$MESHD_PID"; } 2>/dev/null
serial=$(printf '%s' "$out" | cert_event serial)
check "a certificate was issued before the kill" test -n "$serial"
check_out "the certificate is in the store after SIGKILL" "$serial" "$M" cert show "$serial"

echo "meshd: graceful shutdown"
start_meshd meshd2 --instance e2e-ca
PID2=$MESHD_PID
check "meshd restarts on the same store" wait_port "$MESHD_PORT" 15
start client "$XC" "${S[@]}" --state-dir "$D/web" --node-id graceful-node --timeout 30s
check "a client is connected" wait_for 10 node_connected graceful-node true
kill -TERM "$PID2"
wait "$PID2"
check "SIGTERM exits 0" test $? -eq 0
check_out "the log says it stopped" "stopped" cat "$D/meshd2.log"
check "proxies are marked disconnected" node_connected graceful-node false
check_out "the client saw the stream end" '"event":"status"' cat "$D/client.log"

e2e_finish
