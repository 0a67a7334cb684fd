#!/usr/bin/env bash
# tests/e2e/test_sidecar_certs.sh — mesh-sidecar certificates with short SVIDs (meshd
# --svid-ttl 20s): a live keep-alive connection survives a rotation (no new handshake,
# no error), requests fail closed once the SVIDs expire while meshd is down, sidecars
# recover by themselves (expired-SVID recovery) when meshd is back, and a sidecar whose
# recovery meshd refuses (its SVID was revoked) re-enrols from a new token written to
# its --token-file, without a restart.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup
TTL=20

WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api

echo "sidecar certs: setup (SVID TTL ${TTL}s)"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
sc_web_api_up --svid-ttl "${TTL}s"
check_out "a request flows" 200 sc_get api "$P_WEB_OUT"

serial() { sc_admin "$1" /certs | jq -r '.current.serial // empty'; }
stat_of() { sc_admin "$1" /stats | sed -n "s/^$2 //p"; }

echo "sidecar certs: a live keep-alive connection survives a rotation"
s_web0=$(serial web)
s_api0=$(serial api)
up0=$(stat_of web 'mesh_sidecar_upstream_handshakes_total{result="ok"}')
down0=$(stat_of api 'mesh_sidecar_downstream_handshakes_total{result="ok"}')
# One client connection, a request every 0.5 s: the SVIDs (20 s) rotate at about
# 10-12 s of their lifetime, before the first ones expire.
cat >"$D/keepalive.py" <<'PY'
import http.client, sys, time
port = int(sys.argv[1]); seconds = float(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
c.connect()
local = c.sock.getsockname()
ok = bad = 0
end = time.time() + seconds
while time.time() < end:
    c.request("GET", "/ka", headers={"Host": "api"})
    r = c.getresponse(); r.read()
    if r.status == 200 and c.sock is not None and c.sock.getsockname() == local:
        ok += 1
    else:
        bad += 1
    time.sleep(0.5)
print("ok=%d bad=%d" % (ok, bad))
sys.exit(0 if bad == 0 and ok > 0 else 1)
PY
# Run until 6 s before the first SVIDs expire (the pooled connection is closed at that
# moment by design); meshd pushes the next ones at half their lifetime, well before.
left=$(sc_admin web /certs | jq -r '.current.seconds_left // empty')
dur=$(( ${left:-0} - 6 ))
check "enough SVID lifetime left for the rotation window (${left}s)" test "$dur" -ge 8
check_out "${dur} s of requests on one keep-alive connection across a rotation, none failed" \
    "bad=0" python3 "$D/keepalive.py" "$P_WEB_OUT" "$dur"
rotated() { s=$(serial web); [ -n "$s" ] && [ "$s" != "$s_web0" ]; }
check "web's SVID rotated meanwhile" wait_for 5 rotated
rotated_api() { s=$(serial api); [ -n "$s" ] && [ "$s" != "$s_api0" ]; }
check "api's SVID rotated meanwhile" wait_for 5 rotated_api
check "no new upstream handshake: the pooled mTLS connection lived on" \
    test "$(stat_of web 'mesh_sidecar_upstream_handshakes_total{result="ok"}')" = "$up0"
check "no new downstream handshake at api" \
    test "$(stat_of api 'mesh_sidecar_downstream_handshakes_total{result="ok"}')" = "$down0"
pool_serial() {
    awk '/^\[current-chain\]/{f=1;next} /^\[/{f=0} f' "$D/state-web/cert-pool" |
        openssl x509 -noout -serial | cut -d= -f2 | tr A-F a-f
}
# The pool file is written by the sidecar's xDS thread after the swap: give it a moment.
pool_is_current() { test "$(pool_serial)" = "$(serial web)"; }
check "the persisted pool holds the rotated SVID" wait_for 5 pool_is_current

echo "sidecar certs: expiry while meshd is down fails closed"
{ kill -9 "$MESHD_PID"; wait "$MESHD_PID"; } 2>/dev/null
expired() { sc_admin "$1" /ready | grep -q expired; }
check "web's SVID expires (its /ready says so)" wait_for $((TTL + 10)) expired web
check "api's SVID expires (its /ready says so)" wait_for $((TTL + 10)) expired api
check_fails "requests fail closed" test "$(sc_get api "$P_WEB_OUT")" = 200
check_out "web logs that it refuses mTLS" "refusing mTLS" cat "$D/sc-web.log"

echo "sidecar certs: meshd returns, sidecars recover by themselves"
# Revoke api's expired SVID: its recovery must be refused, web's must succeed.
s_api=$(serial api)
check "revoke api's expired SVID (offline, meshd is down)" "$M" cert revoke "$s_api"
sc_start_meshd --svid-ttl "${TTL}s"
check "meshd is back" wait_port "$MESHD_PORT" 10
web_recovered() { sc_ready web; }
check "web recovers with its expired SVID" wait_for 15 web_recovered
check_out "web used expired-SVID recovery" "expired-SVID recovery" cat "$D/sc-web.log"
refused() { grep -q "refused self-recovery" "$D/sc-api.log"; }
check "api's recovery is refused and logged with what to do" wait_for 15 refused
check_out "the refusal names the token file" "$D/api.token" grep "refused self-recovery" "$D/sc-api.log"
check_fails "api is not ready" sc_ready api
sc_token "$API" "$D/api.token"
check "api re-enrols from the new token in its --token-file" wait_for 20 sc_ready api
ok_again() { [ "$(sc_get api "$P_WEB_OUT")" = 200 ]; }
check "requests flow again" wait_for 15 ok_again
check "the token never appears in the logs" \
    sh -c "! grep -qF '$(cat "$D/api.token")' '$D/sc-api.log'"

echo "sidecar certs: graceful stop"
sc_stop "$PID_api"
check "SIGTERM: api exited 0" test $? -eq 0
sc_stop "$PID_web"
check "SIGTERM: web exited 0" test $? -eq 0
check_out "api logged its stop" "stopped" cat "$D/sc-api.log"
check "no sanitizer report from either sidecar (ASan builds)" \
    sh -c "! grep -q 'Sanitizer\|runtime error' '$D/sc-api.log' '$D/sc-web.log'"

e2e_finish
