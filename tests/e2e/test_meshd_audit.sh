#!/usr/bin/env bash
# tests/e2e/test_meshd_audit.sh — an audit and log you can believe (issue 11), with real
# processes on 127.0.0.1: a newline or invalid UTF-8 in a requested SDS name forges no
# line in meshd's log or in `meshctl audit` (text shows escapes, JSON stays valid); a
# client cert from a foreign CA and an expired one are refused by meshd and audited
# (actor "unauthenticated", the claim marked unverified, peer address, reason); a
# recovery with a foreign-CA expired cert names no verified actor; a flood of bad
# handshakes is rate-limited and the drop reported; a client with its own SVID that
# claims another sidecar's Node.id gets its own proxy-status row and is audited.
. "$(dirname "$0")/lib.sh"
e2e_setup
M="$MESH_BIN/meshctl"
XC="$MESH_BIN/mesh-xdsclient"
D="$E2E_DIR"
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api

add() { "$M" workload add "$1" --output json | sed -nE 's/.*"token":"([^"]+)".*/\1/p'; }

"$M" ca init --trust-domain example.org >/dev/null
"$M" ca bundle >"$D/bundle.pem"
PORT=$(free_port)
start meshd "$MESH_BIN/meshd" --db "$MESHD_DB" --listen 127.0.0.1:"$PORT" --instance e2e-audit
MESHD_PID=$LAST_PID
check "meshd listens" wait_port "$PORT" 15
S=(--server 127.0.0.1:"$PORT" --bundle "$D/bundle.pem")
"$XC" "${S[@]}" --token "$(add "$WEB")" --id "$WEB" --state-dir "$D/web" --no-stream >/dev/null
"$XC" "${S[@]}" --token "$(add "$API")" --id "$API" --state-dir "$D/api" --no-stream >/dev/null
# Short-lived: expired by the time the TLS checks run.
"$XC" "${S[@]}" --token "$(add spiffe://example.org/ns/demo/sa/short)" \
    --id spiffe://example.org/ns/demo/sa/short --ttl 10s --state-dir "$D/short" --no-stream >/dev/null
SHORT_UNTIL=$(($(date +%s) + 11))

echo "meshd audit: injection through a requested SDS name"
FORGED='2030-01-01T00:00:00.000Z level=error comp=meshd FORGED'
check_err "a name with a newline is refused" "PERMISSION_DENIED" \
    "$XC" "${S[@]}" --state-dir "$D/web" --sds --sub "sds=default"$'\n'"$FORGED" --timeout 10s
check_err "a name with invalid UTF-8 is refused" "PERMISSION_DENIED" \
    "$XC" "${S[@]}" --state-dir "$D/web" --sds --sub "sds=bad"$'\xff\xfe\x1b'"[2J" --timeout 10s
sleep 0.5
check "meshd's log has no forged line" sh -c "! grep -q '^2030-01-01' '$D/meshd.log'"
check_out "the newline shows as an escape inside one line" "default\\n$FORGED" cat "$D/meshd.log"
check_out "invalid UTF-8 and ESC show as escapes" 'bad\xff\xfe\x1b[2J' cat "$D/meshd.log"
check "no raw 0xff or ESC byte in meshd's log" bash -c "! LC_ALL=C grep -q \$'[\\xff\\x1b]' '$D/meshd.log'"
"$M" audit --limit 50 >"$D/audit.txt"
check "meshctl audit: no forged line" sh -c "! grep -q '^2030-01-01' '$D/audit.txt'"
check_out "meshctl audit shows the escaped name" "default\\n$FORGED" cat "$D/audit.txt"
check_out "meshctl audit shows \\xff escapes" 'bad\xff\xfe\x1b[2J' cat "$D/audit.txt"
check "meshctl audit: no raw 0xff or ESC byte" bash -c "! LC_ALL=C grep -q \$'[\\xff\\x1b]' '$D/audit.txt'"
check "meshctl audit --output json is valid JSON" bash -c "'$M' audit --limit 50 --output json | python3 -c 'import json,sys; json.load(sys.stdin)'"

echo "meshd audit: refusals at the TLS layer"
# A CA nobody in this mesh trusts, and a client cert from it that claims web.
openssl ecparam -name prime256v1 -genkey -noout -out "$D/evil-ca.key" 2>/dev/null
openssl req -x509 -new -key "$D/evil-ca.key" -subj /CN=evil-ca -days 2 -out "$D/evil-ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$D/evil.key" 2>/dev/null
openssl req -new -key "$D/evil.key" -subj / -out "$D/evil.csr" 2>/dev/null
printf 'subjectAltName=critical,URI:%s\nextendedKeyUsage=clientAuth,serverAuth\n' "$WEB" >"$D/evil.ext"
openssl x509 -req -in "$D/evil.csr" -CA "$D/evil-ca.pem" -CAkey "$D/evil-ca.key" -CAcreateserial \
    -days 1 -extfile "$D/evil.ext" -out "$D/evil.pem" 2>/dev/null
check "the foreign cert was made" test -s "$D/evil.pem"
check_err "a foreign-CA client cert is refused" '"UNAUTHENTICATED","message":"client certificate refused: unable to get local issuer certificate' \
    "$XC" "${S[@]}" --cert "$D/evil.pem" --key "$D/evil.key" --sds --sub sds=default --timeout 10s
left=$((SHORT_UNTIL - $(date +%s)))
[ "$left" -gt 0 ] && sleep "$left"
check_err "an expired client cert is refused" "client certificate refused: certificate has expired" \
    "$XC" "${S[@]}" --cert "$D/short/cert.pem" --key "$D/short/key.pem" --sds --sub sds=default --timeout 10s
sleep 0.5
"$M" audit --limit 100 --output json >"$D/audit.json"
row() { # row ACTION SUBSTRING...: one audit row (JSON line) with ACTION containing every substring
    python3 - "$D/audit.json" "$@" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
action, subs = sys.argv[2], sys.argv[3:]
hits = [r for r in rows if r["action"] == action and all(s in json.dumps(r) for s in subs)]
print(json.dumps(hits[0]) if hits else "no %s row with %s" % (action, subs))
sys.exit(0 if hits else 1)
PY
}
no_refusal_by() { # no_refusal_by ACTOR ACTION: no refused ACTION row in $D/audit.json names ACTOR
    python3 - "$D/audit.json" "$1" "$2" <<'PY'
import json, sys
bad = [r for r in json.load(open(sys.argv[1]))
       if r["actor"] == sys.argv[2] and r["action"] == sys.argv[3] and not r["ok"]]
print(json.dumps(bad))
sys.exit(1 if bad else 0)
PY
}
check_out "the foreign-CA handshake is audited as unauthenticated" '"actor": "unauthenticated"' \
    row tls.denied "unable to get local issuer" "claimed=\\\"$WEB\\\" (unverified)" "peer=ipv4:127.0.0.1:" "issuer=/CN=evil-ca"
check_out "the expired client cert is audited" '"ok": false' \
    row tls.denied "certificate has expired" "claimed=\\\"spiffe://example.org/ns/demo/sa/short\\\" (unverified)" "peer=ipv4:127.0.0.1:"
check_out "meshd logged the refusals" "tls.denied refused for unauthenticated" cat "$D/meshd.log"

echo "meshd audit: recovery with a foreign-CA expired cert"
check_err "recovery with a foreign cert is refused" "not issued by this mesh" \
    "$XC" "${S[@]}" --cert "$D/evil.pem" --key "$D/evil.key" --recover --no-stream --timeout 10s
sleep 0.5
"$M" audit --limit 100 --output json >"$D/audit.json"
check_out "its row names no verified actor" '"actor": "unauthenticated"' \
    row cert.denied "credential=expired SVID" "claimed=\\\"$WEB\\\" (unverified)"
check "no cert.denied row names the claimed identity as actor" no_refusal_by "$WEB" cert.denied
check_err "a validity request out of range is refused" "90-day maximum" \
    "$XC" "${S[@]}" --state-dir "$D/web" --renew --ttl 100d --no-stream --timeout 10s
sleep 0.5
"$M" audit --limit 100 --output json >"$D/audit.json"
check_out "and audited under the verified mTLS identity" "\"actor\": \"$WEB\"" row cert.denied "90-day maximum"

echo "meshd audit: an impostor Node.id"
start real "$XC" "${S[@]}" --state-dir "$D/web" --node-id web-1 --timeout 120s
check "the real sidecar's row is up" wait_for 10 sh -c "'$M' proxy-status --output json | grep -q '\"node_id\":\"web-1\",\"spiffe_id\":\"$WEB\",[^}]*\"connected\":true'"
REAL_PEER=$("$M" proxy-status --output json | python3 -c "import json,sys; print([r for r in json.load(sys.stdin) if r['node_id']=='web-1' and r['spiffe_id']=='$WEB'][0]['peer'])")
start fake "$XC" "${S[@]}" --state-dir "$D/api" --node-id web-1 --timeout 120s
check "the impostor gets a row of its own" wait_for 10 sh -c "'$M' proxy-status --output json | grep -q '\"node_id\":\"web-1\",\"spiffe_id\":\"$API\",[^}]*\"connected\":true'"
"$M" proxy-status --output json >"$D/ps.json"
check_out "the real row is untouched (same peer, still connected)" "True $REAL_PEER" python3 -c "
import json; r=[r for r in json.load(open('$D/ps.json')) if r['node_id']=='web-1' and r['spiffe_id']=='$WEB'][0]
print(r['connected'], r['peer'])"
check_out "proxy-status text names both, by identity and node" "$API" "$M" proxy-status
sleep 0.5
"$M" audit --limit 100 --output json >"$D/audit.json"
check_out "the impostor attempt is audited" "\"actor\": \"$API\"" row xds.node_claim "web-1" "$WEB"
kill "$LAST_PID" 2>/dev/null
sleep 1
check "the impostor leaving does not disconnect the real sidecar" sh -c "'$M' proxy-status --output json | grep -q '\"node_id\":\"web-1\",\"spiffe_id\":\"$WEB\",[^}]*\"connected\":true'"

echo "meshd audit: a flood of bad handshakes is rate-limited"
before=$(python3 -c "import json; print(sum(1 for r in json.load(open('$D/audit.json')) if r['action']=='tls.denied'))")
"$XC" "${S[@]}" --cert "$D/evil.pem" --key "$D/evil.key" --sds --sub sds=default --streams 120 \
    --quiet --timeout 30s >/dev/null 2>&1
sleep 1
"$M" audit --limit 1000 --output json >"$D/audit.json"
after=$(python3 -c "import json; print(sum(1 for r in json.load(open('$D/audit.json')) if r['action']=='tls.denied'))")
check "at most the burst of rows was written ($((after - before)) of 120)" test $((after - before)) -le 70
check "the flood wrote rows up to the burst" test $((after - before)) -ge 50
check "the drop is reported" wait_for 20 sh -c "'$M' audit --limit 1000 | grep -q 'audit.suppressed.*refusal(s) by unauthenticated peers were not recorded'"
check "meshd is still running" kill -0 "$MESHD_PID"

e2e_finish
