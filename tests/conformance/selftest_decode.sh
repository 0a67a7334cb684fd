#!/bin/sh
# tests/conformance/selftest_decode.sh — proves decode.js can fail: bytes that do not
# parse, a field number upstream does not define (--strict-unknown), an Any of an
# unknown type, and resources that break Envoy's validation rules (--validate) must
# each exit non-zero with a message naming the problem; a valid one must pass.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/meshd-test-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

# Encodes JSON-ish objects with the upstream protos (the same root decode.js uses).
HERE="$here" node - "$tmp" <<'JS'
const fs = require('fs');
const path = require('path');
const roots = require(path.join(process.env.HERE || '.', 'protoroots.js'));
const dir = process.argv[2];
const up = roots.loadUpstream([
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/config/listener/v3/listener.proto',
]).root;
const enc = (t, o) => { const T = up.lookup(t); return T.encode(T.fromObject(o)).finish(); };
const any = (t, o) => ({ type_url: 'type.googleapis.com/' + t, value: enc(t, o) });
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const w = (n, b) => fs.writeFileSync(path.join(dir, n), b);
w('good_cluster.bin', enc('envoy.config.cluster.v3.Cluster', { name: 'c', connect_timeout: { seconds: 1 } }));
w('zero_timeout.bin', enc('envoy.config.cluster.v3.Cluster', { name: 'c', connect_timeout: { seconds: 0 } }));
w('empty_name.bin', enc('envoy.config.cluster.v3.Cluster', { name: '', connect_timeout: { seconds: 1 } }));
w('hcm_no_prefix.bin', enc('envoy.config.listener.v3.Listener', { name: 'l', filter_chains: [{ filters: [
  { name: 'envoy.filters.network.http_connection_manager', typed_config: any(HCM, { rds: { route_config_name: 'r', config_source: { ads: {} } } }) }] }] }));
w('hcm_no_routes.bin', enc('envoy.config.listener.v3.Listener', { name: 'l', filter_chains: [{ filters: [
  { name: 'envoy.filters.network.http_connection_manager', typed_config: any(HCM, { stat_prefix: 'x' }) }] }] }));
w('unknown_any.bin', enc('envoy.config.listener.v3.Listener', { name: 'l', filter_chains: [{ filters: [
  { name: 'x', typed_config: { type_url: 'type.googleapis.com/no.such.Type', value: Buffer.from([8, 1]) } }] }] }));
// field 99 (varint) appended to a valid Cluster
w('unknown_field.bin', Buffer.concat([Buffer.from(enc('envoy.config.cluster.v3.Cluster', { name: 'c', connect_timeout: { seconds: 1 } })), Buffer.from([0x98, 0x06, 0x01])]));
w('truncated.bin', Buffer.from(enc('envoy.config.cluster.v3.Cluster', { name: 'cluster-with-a-name' })).subarray(0, 5));
JS

expect() {  # expect <0|1> <needle> <decode.js args...>
    want=$1; needle=$2; shift 2
    if out=$(node "$here/decode.js" "$@" 2>&1); then got=0; else got=1; fi
    if [ "$got" != "$want" ] || ! printf '%s' "$out" | grep -qF -- "$needle"; then
        echo "selftest_decode: decode.js $* -> exit $got, want $want with \"$needle\":"; echo "$out" | head -5
        fail=1
    fi
}
C=envoy.config.cluster.v3.Cluster
L=envoy.config.listener.v3.Listener
expect 0 '"name": "c"' --strict-unknown --validate $C "$tmp/good_cluster.bin"
expect 1 'connect_timeout: must be >' --validate $C "$tmp/zero_timeout.bin"
expect 1 'Cluster.name: needs at least 1' --validate $C "$tmp/empty_name.bin"
expect 1 'stat_prefix: needs at least 1' --validate $L "$tmp/hcm_no_prefix.bin"
expect 1 'oneof route_specifier is required' --validate $L "$tmp/hcm_no_routes.bin"
expect 1 'Any of unknown type type.googleapis.com/no.such.Type' $L "$tmp/unknown_any.bin"
expect 1 'field number 99, unknown upstream' --strict-unknown $C "$tmp/unknown_field.bin"
expect 0 '"name": "c"' $C "$tmp/unknown_field.bin"
expect 1 'not a valid envoy.config.cluster.v3.Cluster' $C "$tmp/truncated.bin"
expect 1 'unknown message type' no.Such "$tmp/good_cluster.bin"
expect 1 'cannot read' $C "$tmp/missing.bin"
[ $fail = 0 ] && echo "selftest_decode: all checks behaved"
exit $fail
