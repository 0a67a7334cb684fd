#!/usr/bin/env node
// tests/conformance/xds_client_check.js <dir> — checks meshd's proxyless gRPC view as
// xds_dump.c wrote it (grpc-web.<TYPE>.bin: a client allowed to call reviews;
// grpc-stranger.<TYPE>.bin: one allowed nothing) in two ways:
//   1. content, from the JSON decode.js made with the upstream protos: API listeners per
//      host with RDS over ADS and the router as the only filter, one virtual host per
//      table with domains [host], max_stream_duration and retry_on "unavailable",
//      plaintext ROUND_ROBIN EDS clusters, app endpoints in a weighted locality only
//      where the identity is authorised;
//   2. acceptance by a real client: every resource goes through @grpc/grpc-js-xds's own
//      XdsResourceType.decode — the exact validation that decides ACK or NACK in the
//      client. As a control, the sidecar view (web.*.bin) must be rejected by it (so
//      this check can fail, and a separate view is needed).
// Prints each failure; "N passed, M failed"; exit 1 on any failure.
'use strict';

const fs = require('fs');
const path = require('path');
const { loadUpstream } = require('./protoroots');

const dir = process.argv[2];
if (!dir) {
  console.error('usage: xds_client_check.js <dir>');
  process.exit(2);
}

// register() installs the HTTP filters and LB policies the validators look up, as
// it does in a client process.
require('@grpc/grpc-js-xds').register();
const XDS = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const RT = (f) => require(path.join(XDS, 'build', 'src', 'xds-resource-type', f));
const VALIDATORS = {
  LDS: RT('listener-resource-type').ListenerResourceType.get(),
  RDS: RT('route-config-resource-type').RouteConfigurationResourceType.get(),
  CDS: RT('cluster-resource-type').ClusterResourceType.get(),
  EDS: RT('endpoint-resource-type').EndpointResourceType.get(),
};
// What decode() reads from its context: the bootstrap's certificate providers (none:
// our bootstrap has none) and the server (for LRS, unused).
const CONTEXT = { bootstrap: { certificateProviders: {} }, server: { server_uri: 'meshd' } };

const T = 'type.googleapis.com/';
const URL = {
  HCM: T + 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  ROUTER: T + 'envoy.extensions.filters.http.router.v3.Router',
};

let passed = 0;
const failed = [];
function eq(got, want, what) {
  const ok = JSON.stringify(got) === JSON.stringify(want);
  if (ok) passed++;
  else failed.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

function load(node, type) {
  const r = JSON.parse(fs.readFileSync(path.join(dir, `${node}.${type}.json`), 'utf8'));
  const m = {};
  for (const x of r.resources || []) m[x.name || x.cluster_name] = x;
  return m;
}

// ---- 1. content ------------------------------------------------------------------------

function checkContent() {
  const lds = load('grpc-web', 'LDS');
  eq(Object.keys(lds), ['reviews', 'web'], 'LDS: one API listener per host');
  for (const host of Object.keys(lds)) {
    const l = lds[host];
    eq(l.address, undefined, `LDS ${host}: no socket address`);
    eq(l.filter_chains, undefined, `LDS ${host}: no filter chains`);
    const hcm = l.api_listener && l.api_listener.api_listener;
    eq(hcm && hcm['@type'], URL.HCM, `LDS ${host}: api_listener is an HttpConnectionManager`);
    eq(hcm && hcm.rds, { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: host },
       `LDS ${host}: RDS "${host}" over ADS`);
    eq((hcm && hcm.http_filters || []).map((f) => [f.name, f.typed_config && f.typed_config['@type']]),
       [['envoy.filters.http.router', URL.ROUTER]], `LDS ${host}: the router is the only filter`);
  }

  const rds = load('grpc-web', 'RDS');
  eq(Object.keys(rds), ['reviews', 'web'], 'RDS: one table per host');
  const vr = rds.reviews.virtual_hosts;
  eq(vr.length, 1, 'RDS reviews: one virtual host');
  eq(vr[0].domains, ['reviews'], 'RDS reviews: domains = the host');
  const [r0, r1] = vr[0].routes;
  // exact_match, not string_match: gRPC C core 1.51 NACKs string_match (grpc-js-xds reads both).
  eq(r0.match, { prefix: '/v2', headers: [{ name: 'x-canary', exact_match: '1' }] },
     'RDS reviews rules[0] match');
  eq(r0.route.weighted_clusters.total_weight, { value: 100 },
     'RDS reviews rules[0]: total_weight = the weights\' sum (gRPC C core checks it)');
  eq(r0.route.weighted_clusters.clusters.map((c) => [c.name, c.weight.value]),
     [['outbound|reviews', 90], ['outbound|web', 10]], 'RDS reviews rules[0] weights');
  eq(r0.route.timeout, undefined, 'RDS reviews rules[0]: no Envoy timeout');
  eq(r0.route.max_stream_duration, { max_stream_duration: { seconds: '2' } },
     'RDS reviews rules[0]: the 2s timeout as max_stream_duration (gRFC A31)');
  eq(r0.route.retry_policy, { retry_on: 'unavailable', num_retries: { value: 3 } },
     'RDS reviews rules[0]: 3 retries on UNAVAILABLE (gRFC A44)');
  eq(r1.route, { cluster: 'outbound|reviews' }, 'RDS reviews rules[1]: no deadline cap, no retries');
  eq(rds.web.virtual_hosts.map((v) => [v.name, v.domains, v.routes[0].route]),
     [['service|web', ['web'], { cluster: 'outbound|web' }]], 'RDS web: everything to web');

  const cds = load('grpc-web', 'CDS');
  eq(Object.keys(cds), ['outbound|reviews', 'outbound|web'], 'CDS names');
  for (const [name, c] of Object.entries(cds)) {
    eq(c.type, 'EDS', `CDS ${name}: EDS`);
    eq(c.eds_cluster_config, { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name },
       `CDS ${name}: EDS over ADS`);
    eq(c.lb_policy || 'ROUND_ROBIN', 'ROUND_ROBIN', `CDS ${name}: ROUND_ROBIN`);
    eq(c.transport_socket, undefined, `CDS ${name}: plaintext to the app`);
  }

  const eps = (node) => {
    const m = load(node, 'EDS');
    const out = {};
    for (const [name, cla] of Object.entries(m)) {
      out[name] = (cla.endpoints || []).map((loc) => ({
        locality: loc.locality,
        weight: loc.load_balancing_weight && loc.load_balancing_weight.value,
        at: loc.lb_endpoints.map((e) => `${e.endpoint.address.socket_address.address}:` +
                                        `${e.endpoint.address.socket_address.port_value}`),
      }));
    }
    return out;
  };
  eq(eps('grpc-web'), {
    'outbound|reviews': [{ locality: {}, weight: 1, at: ['127.0.0.1:8082'] }],
    'outbound|web': [],
  }, 'EDS grpc-web: reviews\' app (web may call it), nothing for web (nobody may)');
  eq(eps('grpc-stranger'), { 'outbound|reviews': [], 'outbound|web': [] },
     'EDS grpc-stranger: no endpoints anywhere');
  eq(load('grpc-stranger', 'LDS').reviews, lds.reviews, 'LDS is the same for every identity');
}

// ---- 2. what the real client accepts ----------------------------------------------------

function anys(node, type) {
  const { root } = loadUpstream(['envoy/service/discovery/v3/discovery.proto']);
  const Resp = root.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
  const r = Resp.decode(fs.readFileSync(path.join(dir, `${node}.${type}.bin`)));
  return r.resources.map((a) => ({ type_url: a.type_url, value: Buffer.from(a.value) }));
}

function clientVerdicts(node, type) {
  return anys(node, type).map((a) => {
    try {
      const r = VALIDATORS[type].decode(CONTEXT, a);
      return { name: r.name, error: r.error };
    } catch (e) {
      return { name: '?', error: e.message };
    }
  });
}

function checkClientAcceptance() {
  for (const node of ['grpc-web', 'grpc-stranger']) {
    for (const type of Object.keys(VALIDATORS)) {
      const v = clientVerdicts(node, type);
      eq(v.length > 0, true, `${node} ${type}: resources to validate`);
      for (const r of v)
        eq(r.error, undefined, `${node} ${type} ${r.name}: accepted by @grpc/grpc-js-xds`);
    }
  }
  // Control: the sidecar's cluster (LEAST_REQUEST, SDS-based TLS) is NACKed by the client.
  const sidecar = clientVerdicts('web', 'CDS').find((r) => r.name === 'outbound|reviews');
  eq(Boolean(sidecar && sidecar.error), true,
     'control: the sidecar view\'s outbound|reviews is rejected by @grpc/grpc-js-xds');
}

checkContent();
checkClientAcceptance();
for (const f of failed) console.log(`FAIL ${f}`);
console.log(`xds_client_check: ${passed} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
