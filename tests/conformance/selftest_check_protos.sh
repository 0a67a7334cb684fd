#!/bin/sh
# tests/conformance/selftest_check_protos.sh — proves check_protos.js can fail: copies proto/
# to a temp dir, plants one mismatch of each kind it must catch, and expects every one named.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /tmp/meshd-test-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cp -r "$repo/proto" "$tmp/proto"
p=$tmp/proto/envoy

# field number, type, label, oneof membership, enum value, method streaming, wrong file,
# unknown field, number collision with an upstream field we dropped, istio shape.
sed -i 's/string version_info = 1;/string version_info = 9;/' "$p/service/discovery/v3/discovery.proto"
sed -i 's/string cluster_name = 1;/bytes cluster_name = 1;/' "$p/config/endpoint/v3/endpoint.proto"
sed -i 's/repeated string domains = 2;/string domains = 2;/' "$p/config/route/v3/route_components.proto"
sed -i 's/^    bool present_match = 7;$//; s/^  bool invert_match = 8;$/  bool invert_match = 8;\n  bool present_match = 7;/' "$p/config/route/v3/route_components.proto"
sed -i 's/TLSv1_3 = 4;/TLSv1_3 = 5;/' "$p/extensions/transport_sockets/tls/v3/common.proto"
sed -i 's/rpc FetchSecrets(envoy.service.discovery.v3.DiscoveryRequest)/rpc FetchSecrets(stream envoy.service.discovery.v3.DiscoveryRequest)/' "$p/service/secret/v3/sds.proto"
sed -i 's/^message ApiListener {/message ApiListenerX {\n  string a = 1;\n}\nmessage ApiListener {/' "$p/config/listener/v3/api_listener.proto"
sed -i 's/  string hostname = 3;/  string hostname = 3;\n  string meshd_extra = 2;/' "$p/config/endpoint/v3/endpoint_components.proto"
sed -i 's/int64 validity_duration = 3;/int32 validity_duration = 3;/' "$tmp/proto/istio/v1/auth/ca.proto"
# a message moved to another file than upstream's
sed -i '/^message ControlPlane {/,/^}/d' "$p/config/core/v3/base.proto"
printf 'message ControlPlane {\n  string identifier = 1;\n}\n' >> "$p/config/core/v3/address.proto"

out=$(MESH_PROTO_DIR="$tmp/proto" node "$here/check_protos.js" || true)
fail=0
for want in \
  'DiscoveryRequest.version_info: number 9 vs upstream 1' \
  'ClusterLoadAssignment.cluster_name: type bytes vs upstream string' \
  'VirtualHost.domains: label optional vs upstream repeated' \
  'HeaderMatcher.present_match: oneof null vs upstream header_match_specifier' \
  'TlsProtocol.TLSv1_3 = 5: upstream has 4' \
  'SecretDiscoveryService/FetchSecrets: request streaming differs' \
  'ApiListenerX: no type of that name upstream' \
  'Endpoint.meshd_extra: no such field upstream' \
  'Endpoint.meshd_extra = 2: upstream uses 2 for health_check_config' \
  'IstioCertificateRequest.validity_duration' \
  'ControlPlane: declared in envoy/config/core/v3/address.proto, upstream in envoy/config/core/v3/base.proto'
do
  if ! printf '%s\n' "$out" | grep -qF "$want"; then
    echo "selftest: check_protos.js did not report: $want"; fail=1
  fi
done
if printf '%s\n' "$out" | tail -1 | grep -q ' 0 failed'; then echo "selftest: checker claimed 0 failed"; fail=1; fi
[ $fail = 0 ] && echo "selftest: all planted mismatches reported"
exit $fail
