#!/usr/bin/env bash
# tests/e2e/test_sidecar_revoke.sh — revocation enforced by every sidecar, and
# keyCompromise revoking the key (issue 11), with real processes on 127.0.0.1:
#   - `meshctl cert revoke SERIAL --reason keyCompromise` on web's SVID: within 2 s no
#     new handshake with it succeeds at any sidecar (openssl s_client and curl with
#     the revoked cert + key straight to api's inbound listener), a live mTLS
#     connection made with it is closed, meshd pushed the new CRL in ROOTCA (decoded
#     with the official Envoy protos; openssl verifies the CRL against the bundle);
#   - every cert of that key is revoked (a sibling made with the same key too) and no
#     path certifies the key again: renewal over mTLS with the sibling, expired-SVID
#     style recovery, `meshctl cert issue`;
#   - web does not loop: its /ready and `meshctl proxy-status` say it is stranded and
#     why; a new join token in its --token-file re-keys it without a restart;
#   - a certificate revoked as superseded re-keys by itself over mTLS, no token;
#   - with meshd down, a sidecar restarted from its state directory still refuses the
#     revoked certificate (the CRL is persisted with the cert pool).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup
D="$E2E_DIR"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CONF="$REPO/tests/conformance"
XC="$MESH_BIN/mesh-xdsclient"

WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api

echo "sidecar revoke: setup"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
SC_WEB_APP=1 SC_AUTHZ_EXTRA='  - {service: web, allow: ["'"$API"'"]}' sc_web_api_up
ok_flow() { [ "$(sc_get api "$P_WEB_OUT")" = 200 ]; }
check "web -> api flows" wait_for 10 ok_flow

# web's SVID and key, as an attacker who stole the state directory has them.
section() { awk -v s="[$2]" '$0 == s {f = 1; next} /^\[/ {f = 0} /^sha256 / {f = 0} f' "$1"; }
section "$D/state-web/cert-pool" current-key >"$D/web.key"
section "$D/state-web/cert-pool" current-chain | openssl x509 >"$D/web.crt"
web_serial=$(openssl x509 -in "$D/web.crt" -noout -serial | cut -d= -f2 | tr A-F a-f)
check "web's certificate and key were read from its pool" test -n "$web_serial" -a -s "$D/web.key"

# s_client / curl straight to a sidecar's inbound listener with web's cert + key.
s_client_status() {
    printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" |
        timeout 5 openssl s_client -quiet -tls1_3 -connect "127.0.0.1:$1" \
            -cert "$D/web.crt" -key "$D/web.key" 2>&1 | sed -n 's/^HTTP\/1.1 \([0-9]*\).*/\1/p' |
        head -n 1
}
curl_status() {   # prints 000 (and succeeds) when the handshake is refused
    curl -sk -m 5 --cert "$D/web.crt" --key "$D/web.key" -o /dev/null -w '%{http_code}' \
        -H "Host: $2" "https://127.0.0.1:$1/" || true
}
check_out "control: s_client with web's cert gets 200 from api's inbound" 200 \
    s_client_status "$P_API_IN" api
check_out "control: curl with web's cert gets 200 from api's inbound" 200 \
    curl_status "$P_API_IN" api

# A sibling of web's key, as meshd's same-key rotation makes: a CSR from the same key.
openssl req -new -key "$D/web.key" -subj / \
    -addext "subjectAltName=critical,URI:$WEB" -out "$D/web.csr" 2>/dev/null
check "a sibling certificate for web's key" "$M" cert issue --csr "$D/web.csr" --id "$WEB" \
    --ttl 1h --out "$D/sibling.crt"
sib_serial=$(openssl x509 -in "$D/sibling.crt" -noout -serial | cut -d= -f2 | tr A-F a-f)

# A live mTLS connection with web's certificate (keep-alive requests), to api's inbound.
cat >"$D/live.py" <<'PY'
import select, socket, ssl, sys, time
port, crt, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(crt, key)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
def get():
    s.sendall(b"GET /live HTTP/1.1\r\nHost: api\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise EOFError()
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    while len(body) < n:
        body += s.recv(4096)
    return int(head.split()[1])
ok = 0
end = time.time() + 30
try:
    while time.time() < end:
        if get() != 200:
            break
        ok += 1
        open(out, "w").write("ok=%d\n" % ok)
        r, _, _ = select.select([s], [], [], 0.1)
        if r and not s.recv(1):
            raise EOFError()
except (EOFError, OSError, ssl.SSLError):
    open(out, "w").write("ok=%d closed_at_ms=%d\n" % (ok, int(time.time() * 1000)))
    sys.exit(0)
sys.exit(1)
PY
start live python3 "$D/live.py" "$P_API_IN" "$D/web.crt" "$D/web.key" "$D/live.out"
LIVE_PID=$LAST_PID
live_ok() { grep -q '^ok=[1-9]' "$D/live.out" 2>/dev/null; }
check "a live mTLS connection with web's cert is serving requests" wait_for 10 live_ok
crl_of() { sc_admin "$1" /certs | sed -n 's/.*"crls":\[\([^]]*\)\].*/\1/p'; }

echo "sidecar revoke: keyCompromise of web's SVID"
t0=$(date +%s%3N)
"$M" cert revoke "$web_serial" --reason keyCompromise >"$D/revoke.out" 2>&1
check "meshctl cert revoke succeeds" test $? -eq 0
# How long until api holds the CRL (meshd notices the store change, signs, pushes).
crl_at_api() { sc_admin api /certs | grep -q '"revoked":2'; }
for _ in $(seq 1 100); do crl_at_api && break; sleep 0.02; done
t1=$(date +%s%3N)
check "meshd pushed the CRL to api within about a second ($((t1 - t0)) ms)" \
    sh -c "curl -s -m 2 http://127.0.0.1:$ADMIN_api/certs | grep -q '\"revoked\":2' &&
           test $((t1 - t0)) -le 1500"
refused_now() {
    [ -z "$(s_client_status "$P_API_IN" api)" ] && [ "$(curl_status "$P_API_IN" api)" = 000 ]
}
now_ms=$(date +%s%3N)
[ $((t0 + 2000 - now_ms)) -gt 0 ] && sleep "$(awk "BEGIN {print ($t0 + 2000 - $now_ms) / 1000}")"
check "2 s after the revoke no new handshake with the revoked cert succeeds at api" refused_now
check "web, the revoked sidecar, refuses the cert too (its own)" \
    test -z "$(s_client_status "$P_WEB_IN" web)"
live_closed() { grep -q closed_at_ms "$D/live.out" 2>/dev/null; }
check "the live connection made with the revoked cert is closed" wait_for 3 live_closed
closed_ms=$(sed -n 's/.*closed_at_ms=\([0-9]*\).*/\1/p' "$D/live.out")
check "closed within 2 s of the revoke ($(( ${closed_ms:-0} - t0 )) ms)" \
    test -n "$closed_ms" -a "$(( ${closed_ms:-0} - t0 ))" -le 2000
check_out "api logs the refusal clearly" "refusing inbound mTLS with a revoked peer: certificate serial $web_serial of $WEB" \
    cat "$D/sc-api.log"
check_out "api logs closing the live connection" "was revoked at" \
    grep "closing inbound connection from $WEB" "$D/sc-api.log"
check "api's stats count both" sh -c "curl -s http://127.0.0.1:$ADMIN_api/stats |
    grep -q '^mesh_sidecar_connections_closed_revoked_total [1-9]' &&
    curl -s http://127.0.0.1:$ADMIN_api/stats | grep -q '^mesh_sidecar_tls_refused_revoked_total [1-9]'"

check_out "it revoked both certificates of the key" "revoked 2 certificate(s)" cat "$D/revoke.out"
check_out "it lists the sibling" "$sib_serial" cat "$D/revoke.out"
check_out "it records the key as compromised" "recorded as compromised" cat "$D/revoke.out"
check_out "it says the workload needs a new key" "needs a new key" cat "$D/revoke.out"
check_out "it says a new join token is needed and how" "meshctl workload token $WEB" \
    cat "$D/revoke.out"

echo "sidecar revoke: the key is never certified again"
check_out "the sibling is revoked with the key" "revoked: keyCompromise" "$M" cert show "$sib_serial"
check_err "renewal over mTLS with the sibling is refused" "compromised" \
    "$XC" --server "127.0.0.1:$MESHD_PORT" --bundle "$D/bundle.pem" --cert "$D/sibling.crt" \
    --key "$D/web.key" --renew --no-stream --timeout 10s
check_err "recovery with the revoked SVID and its key is refused" "revoked" \
    "$XC" --server "127.0.0.1:$MESHD_PORT" --bundle "$D/bundle.pem" --cert "$D/web.crt" \
    --key "$D/web.key" --recover --no-stream --timeout 10s
check_err "meshctl cert issue for the key is refused, naming why" "compromised" \
    "$M" cert issue --csr "$D/web.csr" --id "$WEB"
check_out "the refusals are audited" "cert.denied" "$M" audit --limit 20

echo "sidecar revoke: the stranded sidecar says so, and re-keys from a new token"
stranded() { sc_admin web /ready | grep -q "revoked"; }
check "web's /ready says its SVID is revoked" wait_for 5 stranded
check_fails "web is not ready" sc_ready web
needs_token() { sc_admin web /ready | grep -q "join token"; }
check "web's /ready says it needs a new join token" wait_for 10 needs_token
# proxy-status prints "    stranded: <why>" under the node's row (audit-log's layout).
ps_stranded() { "$M" proxy-status | grep -A1 "web-1" | grep -q "^ *stranded: .*revoked"; }
check "proxy-status shows web-1 stranded, with the reason" wait_for 5 ps_stranded
n_streams() { grep -c "stream from $WEB" "$D/meshd.log"; }
s0=$(n_streams); sleep 3; s1=$(n_streams)
check "web does not loop reconnecting with its revoked SVID ($s0 -> $s1 streams)" \
    test "$((s1 - s0))" -le 1
check_fails "requests from web fail (it refuses mTLS with a revoked SVID)" ok_flow
sc_token "$WEB" "$D/web.token"
check "web re-enrols from the new token in its --token-file, no restart" wait_for 20 sc_ready web
check "requests flow again" wait_for 15 ok_flow
new_key_sha=$(section "$D/state-web/cert-pool" current-key | openssl pkey -pubout 2>/dev/null | sha256sum)
old_key_sha=$(openssl pkey -in "$D/web.key" -pubout 2>/dev/null | sha256sum)
check "web has a new key" test "$new_key_sha" != "$old_key_sha"
ps_clear() { ! "$M" proxy-status | grep -A1 "web-1" | grep -q "^ *stranded:"; }
check "proxy-status no longer shows web-1 stranded" wait_for 5 ps_clear
check_fails "the old cert is still refused" test -n "$(s_client_status "$P_API_IN" api)"

echo "sidecar revoke: ROOTCA on the wire (official Envoy protos)"
probe_tok=$("$M" --output json workload add "spiffe://$TD/ns/default/sa/probe" |
    sed -n 's/.*"token":"\(mjt_[^"]*\)".*/\1/p')
mkdir -p "$D/dump"
check "a client receives ROOTCA" "$XC" --server "127.0.0.1:$MESHD_PORT" --bundle "$D/bundle.pem" \
    --token "$probe_tok" --id "spiffe://$TD/ns/default/sa/probe" --state-dir "$D/probe" \
    --sds --sub sds=ROOTCA --dump-dir "$D/dump" --exit-after 1 --timeout 20s
if command -v node >/dev/null 2>&1 && [ -d "$CONF/node_modules/@grpc/grpc-js-xds" ]; then
    f=$(ls "$D"/dump/*.pb | head -n 1)
    check "the ROOTCA response decodes strictly and passes Envoy's validation rules" \
        sh -c "node '$CONF/decode.js' --strict-unknown --validate \
            envoy.service.discovery.v3.DiscoveryResponse '$f' >'$D/rootca.json'"
    node -e '
        const j = JSON.parse(require("fs").readFileSync(process.argv[1]));
        const find = (o) => { if (!o || typeof o !== "object") return null;
            if (o.crl && o.crl.inline_bytes) return o; for (const k in o) { const r = find(o[k]);
            if (r) return r; } return null; };
        const vc = find(j);
        if (!vc) process.exit(1);
        process.stdout.write(Buffer.from(vc.crl.inline_bytes, "base64").toString());
        process.stderr.write(String(vc.only_verify_leaf_cert_crl));' "$D/rootca.json" \
        >"$D/crl.pem" 2>"$D/leafonly.txt"
    check "ROOTCA carries validation_context.crl" grep -q "BEGIN X509 CRL" "$D/crl.pem"
    check_out "... with only_verify_leaf_cert_crl" true cat "$D/leafonly.txt"
    check_out "openssl verifies the CRL against the trust bundle" "verify OK" \
        openssl crl -in "$D/crl.pem" -CAfile "$D/bundle.pem" -noout
    check_out "the CRL lists web's serial" "$(echo "$web_serial" | tr a-f A-F)" \
        openssl crl -in "$D/crl.pem" -noout -text
    check_out "with reason Key Compromise" "Key Compromise" openssl crl -in "$D/crl.pem" -noout -text
    check_out "and a CRL number" "X509v3 CRL Number" openssl crl -in "$D/crl.pem" -noout -text
else
    echo "  skip: node or tests/conformance/node_modules missing (decode with the official protos)"
fi

echo "sidecar revoke: superseded re-keys by itself"
section "$D/state-api/cert-pool" current-chain | openssl x509 >"$D/api.crt"
api_serial=$(openssl x509 -in "$D/api.crt" -noout -serial | cut -d= -f2 | tr A-F a-f)
check_out "revoke api's SVID as superseded: no token needed" "no new token is needed" \
    "$M" cert revoke "$api_serial" --reason superseded
new_api() {
    s=$(sc_admin api /certs | sed -n 's/.*"current":{[^}]*"serial":"\([0-9a-f]*\)".*/\1/p')
    [ -n "$s" ] && [ "$s" != "$api_serial" ] && sc_ready api
}
check "api re-keys over mTLS by itself and is ready again" wait_for 15 new_api
check_out "meshd audited the re-key" "cert.rekey" "$M" audit --limit 30
check "requests flow to api's new certificate" wait_for 15 ok_flow

echo "sidecar revoke: meshd down, a restarted sidecar still refuses the revoked cert"
{ kill -9 "$MESHD_PID"; wait "$MESHD_PID"; } 2>/dev/null
sc_stop "$PID_api"
sc_start_sidecar api "$API" --workload api-1
check "api restarts from its state directory while meshd is down" wait_for 15 sc_ready api
check "web -> api still flows during the outage" wait_for 15 ok_flow
check "the revoked cert is still refused (CRL from the pool file)" \
    test -z "$(s_client_status "$P_API_IN" api)"
check_out "curl agrees" 000 curl_status "$P_API_IN" api
check_out "the restarted api logs the refusal" "refusing inbound mTLS with a revoked peer" \
    cat "$D/sc-api.log"

sc_stop "$PID_api"
sc_stop "$PID_web"
e2e_finish
