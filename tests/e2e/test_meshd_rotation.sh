#!/usr/bin/env bash
# tests/e2e/test_meshd_rotation.sh — certificate lifecycle with real processes and short
# TTLs: SVID rotation for the same key at half-life pushed over SDS, CA rotation (bundle
# with both roots pushed first, leaves re-issued from the new CA on activation, meshd's
# own serving cert too, streams stay up), and expired-SVID self-recovery with its refusals.
. "$(dirname "$0")/lib.sh"
e2e_setup
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api

# default_serial N: serial of the default secret in the Nth SDS response ("last" = newest).
default_serial() {
    local l
    if [ "$1" = last ]; then l=$(last web-sds SDS)
    else l=$(json_lines web-sds '.type == "SDS"' | sed -n "${1}p"); fi
    printf '%s' "$l" | jq -r '.secrets[] | select(.name == "default" and .kind == "tls_certificate") | .serial'
}
# cert_field SERIAL FIELD: FIELD of the stored certificate SERIAL.
cert_field() {
    "$M" cert list --all --output json | jq -r --arg s "$1" --arg f "$2" '.[] | select(.serial == $s) | .[$f]'
}
ca_of() { cert_field "$1" ca_id; }
pubkey_of() { cert_field "$1" pubkey_sha256; }
served_issuer() { openssl s_client -connect 127.0.0.1:"$MESHD_PORT" -servername meshd </dev/null 2>/dev/null | openssl x509 -noout -issuer 2>/dev/null; }
svid_from_new_ca() { test "$(ca_of "$(default_serial last)")" = "$NEW_CA"; }
serving_cert_changed() { test -n "$(served_issuer)" -a "$(served_issuer)" != "$issuer_before"; }

ca_init
start_meshd meshd --instance e2e-rot --log-level debug
check "meshd listens" wait_port "$MESHD_PORT" 15

# A short-lived SVID that will have expired by the recovery checks below.
enrol "$API" api --ttl 10s
API_ISSUED=$(date +%s)
enrol "$WEB" web --ttl 20s

echo "meshd: SVID rotation"
start web-sds "$XC" "${S[@]}" --state-dir "$D/web" --sds --sub sds=default,ROOTCA --node-id web-sds --timeout 120s
check "the first default secret arrives" wait_count 10 web-sds SDS 1
s1=$(default_serial 1)
check "a rotated default secret is pushed before the 20 s SVID expires" \
    wait_count 18 web-sds SDS 2
s2=$(default_serial 2)
check "the rotated SVID is a new certificate" test -n "$s2" -a "$s1" != "$s2"
check "the rotated SVID certifies the same key" test -n "$(pubkey_of "$s2")" -a "$(pubkey_of "$s1")" = "$(pubkey_of "$s2")"
second_sds() { json_lines web-sds '.type == "SDS"' | sed -n 2p; }
check_out "the client's key still matches" '"key_match":true' second_sds
check_out "rotations are audited" "same-key" "$M" audit --limit 100
check_out "proxy-status shows the new expiry" '"svid_seconds_left":' "$M" proxy-status --output json

echo "meshd: CA rotation"
issuer_before=$(served_issuer)
out=$("$M" ca rotate --prepare --output json)
NEW_CA=$(printf '%s' "$out" | jq -r '.ca_id // empty')
check "a new CA is prepared" test -n "$NEW_CA"
check "ROOTCA with both roots is pushed before activation" \
    wait_for 10 logged web-sds 'any(.secrets[]?; .name == "ROOTCA" and .kind == "validation_context" and .certs == 2)'
"$M" ca bundle >"$D/bundle2.pem"
check_out "ca rotate --activate" "now active" "$M" ca rotate --activate "$NEW_CA"
check "the SVID is re-issued from the new CA and pushed" \
    wait_for 15 svid_from_new_ca
check "meshd's own serving cert comes from the new CA" wait_for 10 serving_cert_changed
check "the SDS stream survived the CA rotation" kill -0 "$(pgrep -f -- '--node-id web-sds' | head -n 1)"
S2=(--server 127.0.0.1:"$MESHD_PORT" --bundle "$D/bundle2.pem")
check_out "new connections verify meshd with the new bundle" '"resources":["default"]' \
    "$XC" "${S2[@]}" --state-dir "$D/web" --fetch --sub sds=default --timeout 10s

echo "meshd: expired-SVID recovery"
left=$((API_ISSUED + 12 - $(date +%s)))
[ "$left" -gt 0 ] && sleep "$left"
check "the 10 s SVID has expired" sh -c "! openssl x509 -in '$D/api/cert.pem' -noout -checkend 0 >/dev/null"
cp -r "$D/api" "$D/api-old"
# meshd verifies client certs itself (so it can audit the refusal): the
# handshake completes and the call is refused with the reason.
check_err "an expired SVID cannot renew over mTLS" "UNAUTHENTICATED: client certificate refused: certificate has expired" \
    "$XC" "${S2[@]}" --state-dir "$D/api" --renew --no-stream --timeout 5s
check_err "recovery with a different key is refused" "same private key" \
    "$XC" "${S2[@]}" --cert "$D/api-old/cert.pem" --key "$D/web/key.pem" --recover --no-stream
out=$("$XC" "${S2[@]}" --state-dir "$D/api" --recover --no-stream 2>&1)
check_out "recovery with the expired SVID and the same key" '"auth":"recover"' echo "$out"
check_out "the recovered SVID is valid again" "will not expire" openssl x509 -in "$D/api/cert.pem" -noout -checkend 0
check "it certifies the same key" test "$(openssl x509 -in "$D/api/cert.pem" -noout -pubkey)" = "$(openssl x509 -in "$D/api-old/cert.pem" -noout -pubkey)"
check_out "recovery is audited" "cert.recover" "$M" audit --limit 50
old_serial=$(openssl x509 -in "$D/api-old/cert.pem" -noout -serial | cut -d= -f2)
"$M" cert revoke "$old_serial" --reason cessationOfOperation >/dev/null
check_err "recovery from a revoked SVID is refused" "revoked" \
    "$XC" "${S2[@]}" --cert "$D/api-old/cert.pem" --key "$D/api-old/key.pem" --recover --no-stream
"$M" workload remove "$WEB" >/dev/null
check "meshd is still running" kill -0 "$MESHD_PID"

e2e_finish
