#!/usr/bin/env bash
# tests/e2e/test_ca_rotate_safe.sh — `meshctl ca rotate` end to end with continuous mTLS
# traffic through two sidecars (web -> api) and 20 s SVIDs: a third sidecar (db) is away,
# so the rotation refuses and names it; db comes back and picks up the bundle, the rerun
# resumes and activates; SVIDs are re-signed from the new CA and keep rotating; pruning
# before the old CA's last SVID expired is refused with the count and the time; meshd
# prunes the old root by itself once that SVID expired. Zero failed requests throughout.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup
D="$E2E_DIR"
TTL=20
WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api
DB=spiffe://$TD/ns/default/sa/db

echo "safe rotation: setup (SVID TTL ${TTL}s)"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
sc_token "$WEB" "$D/web.token"
sc_token "$API" "$D/api.token"
sc_token "$DB" "$D/db.token"
sc_port P_WEB_IN; sc_port P_WEB_OUT; sc_port P_WEB_APP; sc_port P_API_IN; sc_port P_API_APP
sc_port P_DB_IN; sc_port P_DB_APP
cat >"$D/mesh.yaml" <<YAML
services:
  - {name: web, protocol: http, port: $P_WEB_APP}
  - {name: api, protocol: http, port: $P_API_APP}
  - {name: db, protocol: http, port: $P_DB_APP}
workloads:
  - {name: web-1, spiffe_id: "$WEB", service: web, inbound: "127.0.0.1:$P_WEB_IN",
     app: "127.0.0.1:$P_WEB_APP", outbound: "127.0.0.1:$P_WEB_OUT"}
  - {name: api-1, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_API_IN",
     app: "127.0.0.1:$P_API_APP"}
  - {name: db-1, spiffe_id: "$DB", service: db, inbound: "127.0.0.1:$P_DB_IN",
     app: "127.0.0.1:$P_DB_APP"}
authorization:
  - {service: api, allow: ["$WEB"]}
  - {service: db, allow: ["$WEB"]}
YAML
check "apply the mesh" "$M" apply -f "$D/mesh.yaml"
start app-api "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_API_APP" --name api
sc_start_meshd --svid-ttl "${TTL}s"
check "meshd is up" wait_port "$MESHD_PORT" 10
sc_start_sidecar web "$WEB" --workload web-1
sc_start_sidecar api "$API" --workload api-1
sc_start_sidecar db "$DB" --workload db-1
check "sidecar web becomes ready" wait_for 15 sc_ready web
check "sidecar api becomes ready" wait_for 15 sc_ready api
check "sidecar db becomes ready" wait_for 15 sc_ready db
check "outbound listener is up" wait_port "$P_WEB_OUT" 10
check_out "web -> api works" 200 sc_get api "$P_WEB_OUT"
ca_of_serial() {
    "$M" cert list --all --output json | sed 's/},{/}\n{/g' | grep "\"serial\":\"$1\"" |
        sed -nE 's/.*"ca_id":([0-9]+).*/\1/p'
}
cur_serial() { sc_admin "$1" /certs | sed -nE 's/.*"current":\{[^}]*"serial":"([0-9a-f]+)".*/\1/p'; }
svid_ca() {   # svid_ca NAME: the CA id of the SVID the sidecar serves with now
    local s
    s=$(cur_serial "$1")
    [ -n "$s" ] && ca_of_serial "$s"
}
FNS="$(declare -f sc_admin cur_serial svid_ca ca_of_serial); M='$M'"

echo "safe rotation: continuous traffic web -> api (mTLS between the sidecars)"
# Each curl sends 10 requests over one client connection, then a new one; the sidecars
# open upstream mTLS connections and keep them, so new handshakes and long-lived
# connections (closed when a certificate on them expires) are both exercised.
traffic() {
    local args=() i
    for i in $(seq 1 10); do args+=(-o /dev/null "http://127.0.0.1:$P_WEB_OUT/"); done
    while [ ! -e "$D/stop-traffic" ]; do
        curl -s -m 10 -w '%{http_code}\n' -H 'Host: api' "${args[@]}" >>"$D/codes" 2>/dev/null
        sleep 0.02
    done
}
traffic &
TRAFFIC_PID=$!
E2E_PIDS+=("$TRAFFIC_PID")
check "traffic flows" wait_for 5 sh -c "grep -c 200 '$D/codes' | grep -qv '^0$'"

echo "safe rotation: db is away, so the rotation refuses and names it"
sc_stop "$PID_db"
out=$("$M" --output json ca rotate --timeout 3s 2>"$D/refuse.err")
rc=$?
check "ca rotate refuses (exit 1)" test "$rc" -eq 1
check_out "the answer says refused" '"step":"refused"' echo "$out"
check_out "it names db as lagging, disconnected" '"node_id":"db-1","spiffe_id":"'"$DB"'","state":"offline","connected":false' echo "$out"
check_out "with its last-seen time" '"last_seen":"20' echo "$out"
check_out "web and api already trust the new root" '"ready":2' echo "$out"
check_out "progress went to stderr" "waiting for db-1 (offline)" cat "$D/refuse.err"
check_out "the new CA is prepared, not active" "prepared" "$M" ca show
NEW_CA=$(printf '%s' "$out" | sed -nE 's/.*"ca_id":([0-9]+).*/\1/p' | head -n 1)
check "the refusal says which CA waits" test "$NEW_CA" = 2
check_out "SVIDs still come from the old CA" 1 svid_ca web

echo "safe rotation: db comes back, the rerun resumes and activates"
sc_start_sidecar db "$DB" --workload db-1
check "db is ready again" wait_for 15 sc_ready db
out=$("$M" ca rotate --timeout 30s 2>&1)
rc=$?
check "ca rotate activates (exit 0)" test "$rc" -eq 0
check_out "it resumed with the prepared CA" "CA 2 was prepared earlier" echo "$out"
check_out "it activated it" "CA 2 is now active" echo "$out"
check_out "and says when the old CA goes" "CA 1 is retired" echo "$out"
check_out "the audit has the activation" "ca.activate" "$M" audit --limit 30
check "web serves an SVID from the new CA" wait_for 15 bash -c "$FNS; ADMIN_web=$ADMIN_web; test \"\$(svid_ca web)\" = 2"
check "api serves an SVID from the new CA" wait_for 15 bash -c "$FNS; ADMIN_api=$ADMIN_api; test \"\$(svid_ca api)\" = 2"

echo "safe rotation: pruning before the old CA's last SVID expired is refused"
out=$("$M" ca rotate --prune 2>&1)
rc=$?
check "--prune refuses (exit 1)" test "$rc" -eq 1
check_out "it says how many SVIDs are unexpired" "SVID(s) it signed are unexpired" echo "$out"
check_out "and when pruning becomes possible" "the last expires 20" echo "$out"
out=$("$M" --output json ca rotate --prune 2>/dev/null)
check_out "--prune --output json gives the time" '"prunable_at":"20' echo "$out"
check_out "the old root is still in the bundle" 2 sh -c "'$M' ca bundle | grep -c 'BEGIN CERTIFICATE'"

echo "safe rotation: leaves keep rotating from the new CA; meshd prunes the old root"
s_web=$(cur_serial web)
check "web's SVID rotates again, from the new CA" wait_for 20 bash -c \
    "$FNS; ADMIN_web=$ADMIN_web; s=\$(cur_serial web); test -n \"\$s\" -a \"\$s\" != '$s_web' -a \"\$(svid_ca web)\" = 2"
check "meshd removes the old CA once its last SVID expired" wait_for $((TTL + 20)) sh -c \
    "'$M' ca show --output json | grep -q '\"id\":1,\"state\":\"removed\"'"
check_out "the bundle holds only the new root" 1 sh -c "'$M' ca bundle | grep -c 'BEGIN CERTIFICATE'"
check "sidecars get the pruned bundle" wait_for 5 bash -c \
    "$FNS; ADMIN_web=$ADMIN_web; ADMIN_api=$ADMIN_api; sc_admin web /certs | grep -q '\"bundle_roots\":1[,}]' && sc_admin api /certs | grep -q '\"bundle_roots\":1[,}]'"
check_out "pruning was audited" "ca.remove" "$M" audit --limit 1000
check_out "--prune now has nothing left to do" "nothing to prune" "$M" ca rotate --prune
sleep 2
touch "$D/stop-traffic"
wait "$TRAFFIC_PID" 2>/dev/null
total=$(wc -l <"$D/codes")
failed=$(grep -vc '^200$' "$D/codes")
check "$total requests across prepare, wait, activate, re-sign and prune: $failed failed" \
    test "$total" -ge 500 -a "$failed" -eq 0

sc_stop "$PID_web"
sc_stop "$PID_api"
sc_stop "$PID_db"
check "no sanitizer report (ASan builds)" \
    sh -c "! grep -q 'Sanitizer\\|runtime error' '$D'/sc-*.log '$D/meshd.log'"
e2e_finish
