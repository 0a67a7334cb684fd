#!/usr/bin/env bash
# tests/e2e/test_pg_store.sh — meshd and meshctl on a PostgreSQL store (docs/store.md):
# a throwaway cluster (tests/pg/pg_start.sh, 127.0.0.1, random port); `meshctl ca init
# --db postgres://...` creates the store, meshd serves a client its SVID, secrets and
# config, and a config applied by meshctl while meshd runs is pushed to the client;
# proxy status and the audit log land in PostgreSQL; a join token is spent once; bad
# --db values are refused with a clear message and create nothing.
. "$(dirname "$0")/lib.sh"
e2e_setup
WEB=spiffe://example.org/ns/demo/sa/web
API=spiffe://example.org/ns/demo/sa/api

e2e_pg_up "the PostgreSQL store checks"

echo "meshctl: creating a store in PostgreSQL"
check_err "ca init without --key-dir is refused" "give --key-dir" \
    "$M" ca init --trust-domain example.org
check_out "ca init --db postgres://... creates the store" "initialised for trust domain" \
    "$M" ca init --trust-domain example.org --key-dir "$D/keys"
"$M" ca bundle >"$D/bundle.pem"
check "the schema is in PostgreSQL" \
    test "$(psql -Atq "$MESHD_DB" -c 'SELECT version FROM meshd_schema')" -ge 6
check_err "a second ca init finds the CA" "already" \
    "$M" ca init --trust-domain example.org --key-dir "$D/keys"
write_web_api_mesh 2s "$API" "$API"
check_out "config applies" "config version" "$M" apply -f "$D/mesh.yaml"

echo "meshd: serving from PostgreSQL"
start_meshd meshd --instance e2e-pg
check "meshd listens" wait_port "$MESHD_PORT" 15
check_out "meshd names the backend, without a password" "(postgres," cat "$D/meshd.log"
TOKEN=$(workload_add "$WEB")
check "web enrols with its join token" \
    "$XC" "${S[@]}" --token "$TOKEN" --id "$WEB" --state-dir "$D/web" --no-stream
check_fails "the spent token does not enrol again" \
    "$XC" "${S[@]}" --token "$TOKEN" --id "$WEB" --state-dir "$D/web2" --no-stream
check "the issued SVID is recorded in PostgreSQL" \
    test "$(psql -Atq "$MESHD_DB" -c "SELECT count(*) FROM certs WHERE spiffe_id = '$WEB'")" -eq 1
start web-ads "$XC" "${S[@]}" --state-dir "$D/web" --sub 'cds=*' --sub 'lds=*' \
    --sub 'rds=outbound|http' --sub 'eds=outbound|api' --sub sds=default,ROOTCA \
    --node-id web-node --timeout 120s
check "web gets all five types" wait_for 10 has_types web-ads SDS CDS EDS LDS RDS
check_out "the default secret is web's own SVID" '"name":"default","kind":"tls_certificate","certs":1' \
    cat "$D/web-ads.log"
web_synced() { test "$(synced web-node)" -eq 5; }
check "every type is ACKed (proxy-status from PostgreSQL)" wait_for 10 web_synced

echo "meshd: a config applied while it runs is pushed"
write_web_api_mesh 3s "$API" "$API"
"$M" apply -f "$D/mesh.yaml" >/dev/null
check "the route change reaches web (RDS)" wait_count 10 web-ads RDS 2
check "web ACKed it" wait_for 10 web_synced
check_out "the audit log is in PostgreSQL" "cert.issue" "$M" audit

echo "bad --db values"
check_err "an unknown scheme is refused" "unknown scheme" "$M" --db "mysql://127.0.0.1/mesh" ca show
check_err "a database without a store is not taken for one" "holds no meshd store" \
    "$M" --db "$PG_URL" ca show
check "and nothing was created in it" \
    test "$(psql -Atq "$PG_URL" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" -eq 0
check_err "an unreachable server is named, the password hidden" "postgres://meshtest:***@" \
    "$M" --db "postgres://meshtest:hunter2@127.0.0.1:1/mesh" ca show
check_fails "the password is in no message" \
    sh -c "'$M' --db 'postgres://meshtest:hunter2@127.0.0.1:1/mesh' ca show 2>&1 | grep -q hunter2"
psql -q "$PG_URL" -c "CREATE DATABASE other" -c "" >/dev/null
psql -q "${PG_URL%/postgres}/other" -c "CREATE TABLE customers (id int)" >/dev/null
check_err "another application's database is refused" "another application" \
    "$M" --db "${PG_URL%/postgres}/other" ca init --trust-domain example.org --key-dir "$D/k2"
check_err "meshd refuses a database without a store" "holds no meshd store" \
    "$MD" --db "$PG_URL" --listen 127.0.0.1:"$(free_port)"

e2e_finish
