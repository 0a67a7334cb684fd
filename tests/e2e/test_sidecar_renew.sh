#!/usr/bin/env bash
# tests/e2e/test_sidecar_renew.sh — the sidecar renews by itself when meshd does not push:
# with meshd pushing fresh SVIDs only at 90% of their lifetime (--rotate-fraction 0.9),
# each sidecar re-keys at 55-60% over mTLS (CreateCertificate with a NEW key), swaps the
# SVID without failing a request, persists the new key, and keeps its ADS stream.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup
TTL=20
WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api

echo "sidecar renew: setup (SVID TTL ${TTL}s, meshd pushes at 90%)"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
sc_web_api_up --svid-ttl "${TTL}s" --rotate-fraction 0.9

key_hash() {
    awk '/^\[current-key\]/{f=1;next} /^\[/{f=0} f' "$D/state-$1/cert-pool" | sha256sum | cut -c1-16
}
k_web0=$(key_hash web)
check "the persisted pool has a key" test -n "$k_web0"

echo "sidecar renew: requests across the self-renewal"
renewed() { grep -q "meshd issued a new SVID (mTLS renewal)" "$D/sc-web.log"; }
errors=0
n=0
for i in $(seq 1 80); do
    [ "$(sc_get api "$P_WEB_OUT")" = 200 ] || errors=$((errors + 1))
    n=$((n + 1))
    renewed && grep -q "meshd issued a new SVID (mTLS renewal)" "$D/sc-api.log" && break
    sleep 0.25
done
check "web renewed by itself over mTLS" renewed
check_out "api renewed by itself over mTLS" "mTLS renewal" grep "meshd issued a new SVID" "$D/sc-api.log"
check "$n requests across the renewal, $errors failed" test "$errors" -eq 0
saved() { [ "$(key_hash web)" != "$k_web0" ]; }
check "the renewal used a new key, and the pool file has it" wait_for 5 saved
check_fails "web's ADS stream was never refused" grep -q "ADS stream to meshd .* ended" "$D/sc-web.log"
check_out "requests still flow with the new SVIDs" 200 sc_get api "$P_WEB_OUT"

sc_stop "$PID_web"
check "SIGTERM: web exited 0" test $? -eq 0
sc_stop "$PID_api"
check "SIGTERM: api exited 0" test $? -eq 0
check "no sanitizer report (ASan builds)" \
    sh -c "! grep -q 'Sanitizer\\|runtime error' '$D/sc-web.log' '$D/sc-api.log'"
e2e_finish
