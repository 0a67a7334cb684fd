#!/usr/bin/env bash
# tests/e2e/test_ca_rotate_recover.sh — a sidecar that missed a CA rotation (the README tour's
# step 6 with the sidecar stopped): `meshctl ca rotate` refuses to activate and names it;
# --force activates and warns about it; restarted with its old state, it says why meshd's
# certificate does not verify and what to do (not gRPC's bare "certificate verify failed");
# it then recovers, without deleting its state directory, by a current --ca-bundle and,
# after a second forced rotation, by a new join token alone (the token pins meshd's root).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup
D="$E2E_DIR"
WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api

# meshd re-issues its serving cert from a newly active CA on its next pass;
# until then a sidecar with the old bundle still verifies it.
meshd_serves_ca() {
    "$M" cert list --id "spiffe://$TD/ns/mesh-system/sa/meshd" --output json |
        grep -q "\"ca_id\":$1"
}

echo "rotation recovery: setup"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
sc_web_api_up
check_out "web -> api works" 200 sc_get api "$P_WEB_OUT"

echo "rotation recovery: api is away during the rotation"
sc_stop "$PID_api"
out=$("$M" ca rotate --timeout 3s 2>&1)
rc=$?
check "ca rotate refuses while api is away (exit 1)" test "$rc" -eq 1
check_out "the refusal names the sidecar that lags" "api-1" echo "$out"
check_out "the refusal says it is offline" "offline" echo "$out"
check_out "the refusal says how to proceed" "--force" echo "$out"
check_out "the new CA stays prepared" "prepared" "$M" ca show
check_out "and its root is already in the bundle" "2" sh -c "'$M' ca bundle | grep -c 'BEGIN CERTIFICATE'"
out=$("$M" --output json ca rotate --force 2>"$D/force.err")
check_out "--force activates" '"step":"activated"' echo "$out"
check_out "--force says it was forced" '"forced":true' echo "$out"
check_out "--force warns about exactly the sidecar that will fail" "api-1" cat "$D/force.err"
check_fails "--force does not warn about a sidecar that has the root" grep -q "web-1" "$D/force.err"
check_out "the audit records the forced activation" "forced" "$M" audit --limit 20
check "web gets an SVID from the new CA" wait_for 15 sh -c \
    "'$M' cert list --id '$WEB' --output json | grep -q '\"ca_id\":2'"

echo "rotation recovery: api restarted with its old state cannot verify meshd"
check "meshd serves a certificate from the new CA" wait_for 15 meshd_serves_ca 2
cp "$D/bundle.pem" "$D/bundle-old.pem"
sc_start_sidecar api "$API" --workload api-1
check "api says why meshd's certificate does not verify" \
    wait_for 15 grep -q "not signed by any root in this sidecar's bundle" "$D/sc-api.log"
check_out "and what to do" "current --ca-bundle" grep "not signed by any root" "$D/sc-api.log"
check_fails "no raw 'certificate verify failed' above debug level" \
    sh -c "grep -v 'level=debug' '$D/sc-api.log' | grep -q 'certificate verify failed'"
sc_stop "$PID_api"

echo "rotation recovery: a current --ca-bundle wins over the state directory"
"$M" ca bundle >"$D/bundle-new.pem"
start_api_with_bundle() {
    sc_port port
    ADMIN_api=$port
    start sc-api "$MESH_BIN/mesh-sidecar" --meshd "127.0.0.1:$MESHD_PORT" \
        --ca-bundle "$1" --state-dir "$D/state-api" --id "$API" --workload api-1 \
        --token-file "$D/api.token" --admin "127.0.0.1:$port" --reconnect-max 1s
    PID_api=$LAST_PID
}
start_api_with_bundle "$D/bundle-new.pem"
check "api takes the new bundle in" wait_for 10 grep -q "is new since the last start" "$D/sc-api.log"
check "api reconnects to meshd" wait_for 15 sh -c "'$M' proxy-status | grep -Eq 'sa/api +(connected|stale)'"
check "api gets an SVID from the new CA" wait_for 15 sh -c \
    "'$M' cert list --id '$API' --output json | grep -q '\"ca_id\":2'"
check "web -> api works again" wait_for 15 sh -c "test \"\$(curl -s -m 3 -o /dev/null -w '%{http_code}' -H 'Host: api' http://127.0.0.1:$P_WEB_OUT/)\" = 200"
check "the state directory was kept" test -s "$D/state-api/cert-pool"
sc_stop "$PID_api"
start_api_with_bundle "$D/bundle-new.pem"
check "the same --ca-bundle again changes nothing" wait_for 10 sc_ready api
check_fails "... and is not taken in twice" sh -c "test \$(grep -c 'is new since the last start' '$D/sc-api.log') -gt 0"

echo "rotation recovery: a new join token alone recovers it"
sc_stop "$PID_api"
check "a second forced rotation while api is away" sh -c "'$M' ca rotate --force --timeout 5s 2>'$D/force2.err' >/dev/null"
check_out "it warns about api again" "api-1" cat "$D/force2.err"
check "meshd serves a certificate from the newest CA" wait_for 15 meshd_serves_ca 3
start_api_with_bundle "$D/bundle-new.pem"
check "with only its old material api cannot verify meshd" \
    wait_for 15 grep -q "not signed by any root in this sidecar's bundle" "$D/sc-api.log"
sc_stop "$PID_api"
"$M" --output json workload token "$API" | sed -n 's/.*"token":"\(mjt_[^"]*\)".*/\1/p' >"$D/api.token"
check_out "new tokens pin meshd's CA root" "." sh -c "cut -c48- '$D/api.token'"
start_api_with_bundle "$D/bundle-new.pem"
check "api re-enrols with the new token" wait_for 15 grep -q "re-enrolling with it" "$D/sc-api.log"
check "it trusts the root the token pins" wait_for 15 grep -q "the join token pins" "$D/sc-api.log"
check "api gets an SVID from the newest CA" wait_for 15 sh -c \
    "'$M' cert list --id '$API' --output json | grep -q '\"ca_id\":3'"
check "web -> api works again" wait_for 20 sh -c "test \"\$(curl -s -m 3 -o /dev/null -w '%{http_code}' -H 'Host: api' http://127.0.0.1:$P_WEB_OUT/)\" = 200"
check "api is connected to meshd" wait_for 10 sh -c "'$M' proxy-status | grep -Eq 'sa/api +(connected|stale)'"
sc_stop "$PID_api"
start_api_with_bundle "$D/bundle-new.pem"
check "after a restart it is ready at once" wait_for 10 sc_ready api
check_fails "a spent token does not re-enrol it again" sh -c "test \$(grep -c 're-enrolling with it' '$D/sc-api.log') -gt 0"

sc_stop "$PID_web"
sc_stop "$PID_api"
check "no sanitizer report (ASan builds)" \
    sh -c "! grep -q 'Sanitizer\\|runtime error' '$D/sc-web.log' '$D/sc-api.log' '$D/meshd.log'"
e2e_finish
