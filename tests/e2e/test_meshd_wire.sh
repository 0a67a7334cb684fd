#!/usr/bin/env bash
# tests/e2e/test_meshd_wire.sh — what meshd actually puts on the wire, decoded with the
# OFFICIAL Envoy protos (tests/conformance/decode.js, from the npm package
# @grpc/grpc-js-xds): every SotW DiscoveryResponse a sidecar-like client receives over
# ADS and over the standalone SDS stream decodes strictly (no field number upstream does
# not define) and passes Envoy's validation rules, with the upstream type URLs, and the
# secrets mean what they should (default = own chain without a key, ROOTCA = bundle).
. "$(dirname "$0")/lib.sh"
e2e_setup
WEB=spiffe://example.org/ns/demo/sa/web

if ! have_official_protos; then
    missing_dep "node and the official protos are installed (test_conformance.sh runs npm ci)" \
        "node or tests/conformance/node_modules missing"
    e2e_finish
    exit $?
fi

ca_init
cat >"$D/mesh.yaml" <<YAML
services:
  - {name: web, protocol: http, port: 18080}
  - {name: api, protocol: http, port: 18081}
  - {name: db, protocol: tcp, port: 18432}
workloads:
  - {name: web-1, spiffe_id: "$WEB", service: web, inbound: "127.0.0.1:15001",
     app: "127.0.0.1:18080", outbound: "127.0.0.1:15101",
     tcp_outbound: [{service: db, listen: "127.0.0.1:15201"}]}
  - {name: api-1, spiffe_id: "spiffe://example.org/ns/demo/sa/api", service: api,
     inbound: "127.0.0.1:15002", app: "127.0.0.1:18081"}
  - {name: db-1, spiffe_id: "spiffe://example.org/ns/demo/sa/db", service: db,
     inbound: "127.0.0.1:15003", app: "127.0.0.1:18432"}
routes:
  - name: api
    rules:
      - match: {prefix: /v2, headers: [{name: x-canary, exact: "1"}]}
        destinations: [{service: api, weight: 100}]
        timeout: 2s
        retries: 2
authorization:
  - {service: web, allow: ["spiffe://example.org/ns/demo/sa/api"]}
  - {service: api, allow: ["$WEB"]}
  - {service: db, allow: ["$WEB"]}
YAML
"$M" apply -f "$D/mesh.yaml" >/dev/null
start_meshd meshd --instance e2e-wire
check "meshd listens" wait_port "$MESHD_PORT" 15
token=$(workload_add "$WEB")
check "client enrols with its join token" "$XC" "${S[@]}" --token "$token" --id "$WEB" --state-dir "$D/web" --no-stream
mkdir -p "$D/ads" "$D/sds"
check "ADS: all five types received" "$XC" "${S[@]}" --state-dir "$D/web" --node-id web-1 \
    --sub 'cds=*' --sub 'lds=*' --sub 'rds=outbound|http' --sub 'eds=outbound|api,outbound|db' \
    --sub sds=default,ROOTCA --dump-dir "$D/ads" --exit-after 5 --timeout 20s
check "SDS stream: secrets received" "$XC" "${S[@]}" --state-dir "$D/web" --sds --sub sds=default,ROOTCA \
    --dump-dir "$D/sds" --exit-after 1 --timeout 20s

decoded=0
bad=""
for f in "$D"/ads/*.pb "$D"/sds/*.pb; do
    [ -f "$f" ] || continue
    if node "$CONF/decode.js" --strict-unknown --validate envoy.service.discovery.v3.DiscoveryResponse \
        "$f" >"$f.json" 2>"$f.err"; then
        decoded=$((decoded + 1))
    else
        bad="$bad $(basename "$f"): $(head -c 300 "$f.err")"
    fi
done
check "every response decodes strictly and passes Envoy's validation rules ($decoded files)" \
    test -z "$bad" -a "$decoded" -ge 6
[ -n "$bad" ] && echo "       $bad"
all() { cat "$D"/ads/*.json "$D"/sds/*.json 2>/dev/null; }
for t in envoy.config.listener.v3.Listener envoy.config.route.v3.RouteConfiguration \
         envoy.config.cluster.v3.Cluster envoy.config.endpoint.v3.ClusterLoadAssignment \
         envoy.extensions.transport_sockets.tls.v3.Secret; do
    check_out "resources are Any of type.googleapis.com/$t" "\"@type\": \"type.googleapis.com/$t\"" all
done
check_out "SDS responses have the Secret type_url" '"type_url": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"' cat "$D"/sds/000-0001-SDS.pb.json
check_out "inbound listener requires client certificates" '"require_client_certificate": {' all
check_out "inbound listener gets its cert from SDS 'default'" '"name": "default"' all
check_out "validation context from SDS 'ROOTCA'" '"name": "ROOTCA"' all
check_out "TLS 1.3 minimum" '"tls_minimum_protocol_version": "TLSv1_3"' all
check_out "RBAC allows the caller by SPIFFE ID" "\"exact\": \"$WEB\"" all
check_out "HCM uses RDS over ADS" '"route_config_name": "outbound|http"' all
check_out "header matcher for x-canary" '"x-canary"' all
check_out "retry policy carries the retries" '"num_retries": {' all
check_out "EDS cluster for api" '"service_name": "outbound|api"' all
check_out "endpoint is api's inbound listener" '"port_value": 15002' all
check_out "tcp_proxy for db" 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy' all
sds_json=$(cat "$D"/sds/*.json)
check "the default secret carries a certificate chain" grep -q '"certificate_chain"' <<<"$sds_json"
no_private_key() { ! all | grep -q '"private_key"'; }
check "no secret ever carries a private key" no_private_key
check "ROOTCA carries trusted_ca" grep -q '"trusted_ca"' <<<"$sds_json"
e2e_finish
