#!/usr/bin/env bash
# tests/e2e/test_meshctl.sh — the operator CLI against a real store file:
# CA init, workloads and tokens, offline issuance checked by the openssl CLI,
# config apply, and the error paths (bad input gets a clear error, nothing lost).
. "$(dirname "$0")/lib.sh"
e2e_setup
ID=spiffe://example.org/ns/demo/sa/web

echo "meshctl: CA and workloads"
check_err "commands need a store" "--db" env -u MESHD_DB "$M" ca show
check_err "ca show before init says what to do" "meshctl ca init" "$M" ca show
check_err "ca init needs a trust domain" "--trust-domain" "$M" ca init
check_err "ca init rejects a bad trust domain" "trust domain" "$M" ca init --trust-domain 'Bad_Domain!'
check_out "ca init (EC P-256)" "initialised for trust domain example.org" "$M" ca init --trust-domain example.org
check_err "ca init twice is refused" "already" "$M" ca init --trust-domain example.org
check_out "ca show lists the active CA" "active" "$M" ca show
key=$(ls "$D"/ca-keys/*.key 2>/dev/null | head -n 1)
check "CA key file is mode 0600" test "$(stat -c %a "$key")" = 600
check_out "ca show --output json" '"trust_domain":"example.org"' "$M" ca show --output json
"$M" ca bundle >"$D/bundle.pem"
check_out "bundle is a CA certificate" "CA:TRUE" openssl x509 -in "$D/bundle.pem" -noout -text

check_out "workload add prints a join token" '"token":"mjt_' "$M" workload add "$ID" --output json
check_err "duplicate workload is refused" "already exists" "$M" workload add "$ID"
check_err "workload in another trust domain is refused" "trust domain" "$M" workload add spiffe://other.org/ns/a/sa/b
check_err "malformed SPIFFE ID is refused" "spiffe" "$M" workload add "http://example.org/ns/a/sa/b"
check_out "workload list shows it" "$ID" "$M" workload list
check_out "workload token mints a new token" "mjt_" "$M" workload token "$ID"
check_err "token for an unknown workload is refused" "spiffe://example.org/ns/demo/sa/nobody" "$M" workload token spiffe://example.org/ns/demo/sa/nobody

echo "meshctl: offline issuance"
openssl ecparam -name prime256v1 -genkey -noout -out "$D/w.key" 2>/dev/null
openssl req -new -key "$D/w.key" -subj / -addext "subjectAltName=URI:$ID" -out "$D/w.csr" 2>/dev/null
check_out "cert issue writes a chain" "written to" "$M" cert issue --csr "$D/w.csr" --id "$ID" --ttl 1h --out "$D/w.pem"
check_out "openssl verify accepts the SVID against the bundle" "OK" openssl verify -CAfile "$D/bundle.pem" "$D/w.pem"
text=$(openssl x509 -in "$D/w.pem" -noout -text)
check "SVID has exactly one URI SAN" test "$(printf '%s' "$text" | grep -o 'URI:' | wc -l)" -eq 1
check "SVID URI SAN is the workload's ID" grep -qF "URI:$ID" <<<"$text"
check "SVID is not a CA" grep -q "CA:FALSE" <<<"$text"
check "SVID has serverAuth and clientAuth" grep -q "TLS Web Server Authentication, TLS Web Client Authentication" <<<"$text"
check "SVID lives one hour" test "$(( $(date -d "$(openssl x509 -in "$D/w.pem" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s) ))" -le 3600
serial=$(openssl x509 -in "$D/w.pem" -noout -serial | cut -d= -f2)
check_out "cert list shows the serial" "$(printf '%s' "$serial" | tr 'A-F' 'a-f')" "$M" cert list
check_out "cert show accepts openssl's uppercase serial" "$ID" "$M" cert show "$serial"

# stored_certs: how many certificates the store holds.
stored_certs() { "$M" cert list --all --output json | jq length; }
n_before=$(stored_certs)
check_err "CSR for another identity is refused" "authorised only for" "$M" cert issue --csr "$D/w.csr" --id spiffe://example.org/ns/demo/sa/other
printf 'not a csr\n' >"$D/garbage.csr"
check_err "garbage CSR is refused" "CSR" "$M" cert issue --csr "$D/garbage.csr" --id "$ID"
check_err "missing CSR file is named" "$D/missing.csr" "$M" cert issue --csr "$D/missing.csr" --id "$ID"
openssl genrsa -out "$D/weak.key" 1024 2>/dev/null
openssl req -new -key "$D/weak.key" -subj / -addext "subjectAltName=URI:$ID" -out "$D/weak.csr" 2>/dev/null
check_err "RSA-1024 CSR is refused" "1024" "$M" cert issue --csr "$D/weak.csr" --id "$ID"
check_err "TTL above 90 days is refused" "90" "$M" cert issue --csr "$D/w.csr" --id "$ID" --ttl 91d
check_err "bad TTL is a usage error" "duration" "$M" cert issue --csr "$D/w.csr" --id "$ID" --ttl soon
n_after=$(stored_certs)
check "refused requests stored no cert" test "$n_before" -eq "$n_after"
# --out to something that is not a regular file (a FIFO here, /dev/null in real
# life) is written in place: renaming a temp file over it replaced the node with
# a file (as root even /dev/null).
mkfifo "$D/out.fifo"
timeout 10 cat "$D/out.fifo" >"$D/fifo.got" &
FIFO_READER=$!
check "cert issue --out FIFO succeeds" timeout 10 "$M" cert issue --csr "$D/w.csr" --id "$ID" --ttl 1h --out "$D/out.fifo"
wait "$FIFO_READER"
check "... the FIFO is still a FIFO" test -p "$D/out.fifo"
check "... and its reader got the chain" grep -q "BEGIN CERTIFICATE" "$D/fifo.got"
check_out "revoke" "revoked" "$M" cert revoke "$serial" --reason keyCompromise
check_err "revoking twice is refused" "already" "$M" cert revoke "$serial"
check_out "cert show reports the revocation" "keyCompromise" "$M" cert show "$serial"
check_out "audit records the refusal" "FAIL" "$M" audit

echo "meshctl: mesh config"
check_out "apply the example mesh" "changed" "$M" apply -f "$REPO/examples/mesh.yaml"
check_out "re-apply changes nothing" "0 changed" "$M" apply -f "$REPO/examples/mesh.yaml"
config_version() { "$M" get --output json | jq .config_version; }
v1=$(config_version)
cat >"$D/bad.yaml" <<'YAML'
services:
  - name: web
    protocol: smtp
    port: 8080
YAML
check_err "bad config names file, line and field" "bad.yaml:3" "$M" apply -f "$D/bad.yaml"
v2=$(config_version)
check "a failed apply changes nothing" test "$v1" = "$v2"
check_err "deleting a referenced service is refused" "referenced" "$M" delete service backend

check "get -o json gives each resource as a JSON object (spec), not only YAML text" \
    bash -c "'$M' get --output json | jq -e '.resources | length > 0 and all(.[]; (.spec | type) == \"object\" and .spec.name != null or .kind == \"authorization\")'"

echo "meshctl: validate (no store needed, every error, warnings)"
cat >"$D/multi.yaml" <<'YAML'
services:
  - {name: api, protocol: http, port: 9090, subsets: [{name: v1, labels: {version: v1}}]}
workloads:
  - {name: api-1, spiffe_id: "spiffe://other.org/ns/default/sa/api", service: apii,
     inbound: "127.0.0.1:15003", app: "127.0.0.1:9090", labels: {version: v1}}
routes:
  - name: api
    hosts: [api]
    rules:
      - match: {prefix: /}
        destinations: [{service: api, subset: v1, weight: 95}, {service: api, subset: v3, weight: 15}]
YAML
vout=$(env -u MESHD_DB "$M" validate -f "$D/multi.yaml" --trust-domain example.org 2>&1)
vrc=$?
check "validate of a bad file exits 1" test "$vrc" -eq 1
check "validate reports the trust-domain error" grep -qF "is not in the mesh's trust domain" <<<"$vout"
check "validate reports the unknown service too" grep -qF 'unknown service "apii"' <<<"$vout"
check "validate reports the unknown subset too" grep -qF 'has no subset "v3"' <<<"$vout"
check "validate warns about weights off 100" grep -qF "weights sum to 110, not 100" <<<"$vout"
check "validate warns about a service nobody may call" grep -qF "has no authorization entry" <<<"$vout"
check "validate sums it up" grep -qF "invalid, 3 errors" <<<"$vout"
check_out "validate -o json lists every error" "3" \
    bash -c "env -u MESHD_DB '$M' -o json validate -f '$D/multi.yaml' --trust-domain example.org | jq '.errors | length'"
check_out "a valid file passes without a store" "valid, 0 errors" \
    env -u MESHD_DB "$M" validate -f "$REPO/examples/mesh.yaml" --trust-domain example.org
v_before=$(config_version)
check_out "validate with the store's trust domain" "valid, 0 errors" "$M" validate -f "$REPO/examples/mesh.yaml"
check "validate writes nothing to the store" test "$v_before" = "$(config_version)"
check_err "validate names a missing file" "$D/none.yaml" env -u MESHD_DB "$M" validate -f "$D/none.yaml"
check_err "validate needs -f" "validate needs -f FILE" env -u MESHD_DB "$M" validate

echo "meshctl: damaged store"
head -c 4096 /dev/urandom >"$D/corrupt.db"
sum=$(md5sum <"$D/corrupt.db")
check_err "a corrupt store is refused with a clear error" "corrupt" "$M" --db "$D/corrupt.db" ca show
check "the corrupt file is left untouched" test "$sum" = "$(md5sum <"$D/corrupt.db")"
check_err "unknown command is a usage error" "unknown command" "$M" frobnicate
e2e_finish
