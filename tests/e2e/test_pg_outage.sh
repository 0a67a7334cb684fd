#!/usr/bin/env bash
# tests/e2e/test_pg_outage.sh — PostgreSQL unreachable under two meshd replicas (issue 14,
# docs/store.md "What each failure does"): the server is stopped (pg_ctl stop -m fast);
# the replicas keep serving the config and secrets they hold to the connected sidecar and
# to one that reconnects, refuse issuance and renewal with UNAVAILABLE and a message
# naming the store, /readyz says 503 and why; once the server is back they recover by
# themselves: /readyz 200, a token enrols, a config applied is pushed to the stream that
# stayed up all along (the LISTEN connection came back too).
. "$(dirname "$0")/lib.sh"
e2e_setup
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api

e2e_pg_up "the outage checks"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PG_PORT=${PG_URL##*:}
PG_PORT=${PG_PORT%%/*}
pg_as() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$(stat -c %U "$PG_DIR/data")" -- "$@"; else "$@"; fi; }
pg_down() { pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null; }
pg_up() {
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_DIR \
            -c fsync=off -c full_page_writes=off -c max_connections=200" start >/dev/null
}

"$M" ca init --trust-domain example.org --key-dir "$D/keys" >/dev/null
"$M" ca bundle >"$D/bundle.pem"
write_web_api_mesh 2s "$API" "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
"$M" workload add "$API" >/dev/null

PORTS=() MPORTS=()
for r in 1 2; do
    PORTS+=("$(free_port)")
    MPORTS+=("$(free_port)")
    start "meshd-r$r" "$MD" --db "$MESHD_DB" --listen 127.0.0.1:"${PORTS[$((r - 1))]}" \
        --instance "r$r" --metrics-listen 127.0.0.1:"${MPORTS[$((r - 1))]}"
done
for r in 1 2; do check "replica r$r listens" wait_port "${PORTS[$((r - 1))]}" 15; done
srv() { echo --server 127.0.0.1:"${PORTS[$(($1 - 1))]}" --bundle "$D/bundle.pem"; }
readyz() { curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:${MPORTS[$(($1 - 1))]}/readyz"; }
ready_is() { test "$(readyz "$1")" = "$2"; }
check "r1 is ready" wait_for 10 ready_is 1 200
# shellcheck disable=SC2046
check "web enrols at r1" \
    "$XC" $(srv 1) --token "$(workload_add "$WEB")" --id "$WEB" --state-dir "$D/web" --no-stream
# shellcheck disable=SC2046
start web-ads "$XC" $(srv 1) --state-dir "$D/web" --sub 'cds=*' --sub 'lds=*' \
    --sub 'rds=outbound|http' --sub sds=default,ROOTCA --node-id web-node --timeout 300s
WEB_PID=$LAST_PID
check "web's stream has its config and secrets" wait_for 15 has_types web-ads SDS CDS LDS RDS

echo "PostgreSQL stops"
pg_down
check "r1's /readyz says 503 within 5 s" wait_for 5 ready_is 1 503
check_out "and why, naming the store" "cannot read its store postgres://meshtest@127.0.0.1:$PG_PORT/mesh" \
    curl -s "127.0.0.1:${MPORTS[0]}/readyz"
check "r2's /readyz says 503 too" wait_for 5 ready_is 2 503
sleep 1
check "web's stream stays up" kill -0 "$WEB_PID"
# shellcheck disable=SC2046
check_err "a new enrolment is refused with UNAVAILABLE" "UNAVAILABLE" \
    "$XC" $(srv 1) --token mjt_whatever --id "$API" --state-dir "$D/api-down" --no-stream
# shellcheck disable=SC2046
check_err "renewal is refused, naming the store" "postgres://meshtest@127.0.0.1:$PG_PORT/mesh" \
    "$XC" $(srv 2) --state-dir "$D/web" --renew --no-stream
# A sidecar that reconnects to the replica that knew it gets what that replica holds.
# shellcheck disable=SC2046
start web-again "$XC" $(srv 1) --state-dir "$D/web" --sub 'cds=*' --sub 'lds=*' \
    --sub sds=ROOTCA --node-id web-node-2 --timeout 300s
check "a reconnecting sidecar is served its config and the trust bundle from memory" \
    wait_for 15 has_types web-again CDS LDS SDS
check_out "meshd logged the store failure once, with what it does meanwhile" \
    "serving the config and secrets it has" cat "$D/meshd-r1.log"

echo "PostgreSQL is back"
pg_up
check "r1 is ready again by itself" wait_for 20 ready_is 1 200
check "r2 too" wait_for 20 ready_is 2 200
enrol_api() {
    # shellcheck disable=SC2046
    "$XC" $(srv 2) --token "$(workload_token "$API")" --id "$API" --state-dir "$D/api" --no-stream
}
check "a token enrols again (at r2)" wait_for 10 enrol_api
before=$(count web-ads RDS)
write_web_api_mesh 7s "$API" "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "a config applied now reaches the stream that stayed up" wait_count 5 web-ads RDS $((before + 1))
check_out "the change listener reconnected" "change listener reconnected" cat "$D/meshd-r1.log"

e2e_finish
